//! Peak memory and speed of the streaming report reader.
//!
//! `cargo run --release -p mallard-apiseq --example report_mem -- [--view ids|distinct|strings] REPORT...`
//! reads real reports;
//! `... -- --synthetic 1024 [ARG_BYTES]` streams a generated CAPE-style report of 1024 MiB
//! (never stored on disk) whose calls carry ARG_BYTES (default 2000) of arguments each.

use mallard_apiseq::{read_report, read_report_from, ReportOptions};
use std::io::Read;
use std::path::Path;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Generates `{"info":..,"behavior":{"processes":[{..,"calls":[CALL,CALL,...]}]}}` on the fly.
struct Synthetic {
    left: u64,
    arg: String,
    buf: Vec<u8>,
    pos: usize,
    n: u64,
    state: u8, // 0 header, 1 calls, 2 footer, 3 done
}

const APIS: [&str; 6] = [
    "NtWriteFile",
    "NtReadFile",
    "NtClose",
    "LdrLoadDll",
    "RegOpenKeyExW",
    "NtDelayExecution",
];

impl Synthetic {
    fn refill(&mut self) {
        self.buf.clear();
        self.pos = 0;
        match self.state {
            0 => {
                self.buf.extend_from_slice(br#"{"info":{"version":"2.4-CAPE"},"behavior":{"processes":[{"process_id":1,"process_name":"x.exe","calls":["#);
                self.state = 1;
            }
            1 => {
                let sep = if self.n == 0 { "" } else { "," };
                let api = APIS[(self.n % APIS.len() as u64) as usize];
                let ms = self.n % 1000;
                let s = format!(
                    r#"{sep}{{"timestamp":"2023-07-22 10:59:31,{ms:03}","thread_id":"1","caller":"0x004d539f","category":"file","api":"{api}","status":true,"return":"0x00000000","repeated":0,"id":{},"arguments":[{{"name":"Buffer","value":"{}"}},{{"name":"Handle","value":"0x0000012c"}}]}}"#,
                    self.n, self.arg
                );
                self.buf.extend_from_slice(s.as_bytes());
                self.n += 1;
                self.left = self.left.saturating_sub(s.len() as u64);
                if self.left == 0 {
                    self.state = 2;
                }
            }
            2 => {
                self.buf.extend_from_slice(b"]}]}}");
                self.state = 3;
            }
            _ => {}
        }
    }
}

impl Read for Synthetic {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.buf.len() {
            if self.state == 3 {
                return Ok(0);
            }
            self.refill();
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = ReportOptions::default();
    if args.first().map(String::as_str) == Some("--synthetic") {
        let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
        let arg_bytes: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
        let gen = Synthetic {
            left: mib << 20,
            arg: "A".repeat(arg_bytes),
            buf: Vec::new(),
            pos: 0,
            n: 0,
            state: 0,
        };
        let t = Instant::now();
        let r =
            read_report_from(gen, Path::new("synthetic.json"), &opts).expect("synthetic report");
        let secs = t.elapsed().as_secs_f64();
        let seq = r.sequence();
        println!(
            "synthetic {mib} MiB ({arg_bytes} B args/call): {} calls, {:.2} s, {:.0} MiB/s, merged {} calls, peak RSS {} MiB",
            r.call_count(),
            secs,
            mib as f64 / secs,
            seq.len(),
            peak_rss_kib() / 1024
        );
        return;
    }
    // `--view ids|distinct|strings` (default strings): what is built from the report, to
    // compare the cost of the views a scanner can ask for.
    let mut view = "strings".to_string();
    let mut paths = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--view" {
            view = it.next().cloned().unwrap_or_default();
        } else {
            paths.push(a);
        }
    }
    for a in paths {
        let p = Path::new(a);
        let t = Instant::now();
        match read_report(p, &opts) {
            Ok(r) => {
                let secs = t.elapsed().as_secs_f64();
                let merged = match view.as_str() {
                    "ids" => r.sequence_ids().len(),
                    "distinct" => r.distinct_apis().len(),
                    _ => r.sequence().len(),
                };
                println!(
                    "{a}: {} processes, {} calls, view {view} of {merged}, read in {:.3} s, peak RSS so far {} MiB",
                    r.processes.len(),
                    r.call_count(),
                    secs,
                    peak_rss_kib() / 1024
                );
            }
            Err(e) => println!("{e}"),
        }
    }
}
