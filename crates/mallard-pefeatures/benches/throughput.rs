//! Per-core throughput of each feature set over the pe-benign corpus.
//!
//! cargo bench -p mallard-pefeatures [-- SECONDS] [SET ...]
//!
//! Files are read into memory first (reading is not timed); each set runs single-threaded
//! over the whole corpus repeatedly for at least SECONDS (default 3) of CPU time. Prints MB/s
//! and files/s per core (process CPU time from /proc/self/stat, so other load on the machine
//! does not count against us), wall-clock MB/s, and peak RSS during the set (VmHWM after
//! resetting it through /proc/self/clear_refs).

use std::path::PathBuf;
use std::time::Instant;

use mallard_pefeatures::{extract, FeatureSet};

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Process CPU seconds (utime + stime).
fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = 100.0; // USER_HZ on Linux
    let ut: f64 = f.get(11).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (ut + st) / tick
}

fn vm_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs: f64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(3.0);
    let only: Vec<FeatureSet> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let dir = shared().join("data/pe-benign");
    let manifest = match std::fs::read_to_string(dir.join("MANIFEST.tsv")) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{}: {e} (set MALLARD_SHARED)", dir.display());
            return;
        }
    };
    let files: Vec<Vec<u8>> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter_map(|n| std::fs::read(dir.join(n)).ok())
        .collect();
    let total: usize = files.iter().map(|f| f.len()).sum();
    let corpus_rss = vm_kib("VmRSS:");
    println!(
        "pe-benign: {} files, {:.1} MB in memory (RSS {:.1} MiB before extraction)",
        files.len(),
        total as f64 / 1e6,
        corpus_rss as f64 / 1024.0
    );
    println!("| set | MB/s per core | files/s per core | MB/s wall | peak RSS (MiB) | passes |");
    println!("|---|---|---|---|---|---|");
    for set in FeatureSet::ALL {
        if !only.is_empty() && !only.contains(&set) {
            continue;
        }
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let c0 = cpu_seconds();
        let w0 = Instant::now();
        let mut passes = 0u32;
        let mut checksum = 0f64;
        loop {
            for f in &files {
                if let Ok(v) = extract(set, f) {
                    checksum += f64::from(v.iter().copied().filter(|x| x.is_finite()).sum::<f32>());
                }
            }
            passes += 1;
            if cpu_seconds() - c0 >= secs {
                break;
            }
        }
        let cpu = (cpu_seconds() - c0).max(1e-9);
        let wall = w0.elapsed().as_secs_f64();
        let bytes = total as f64 * f64::from(passes);
        let nfiles = files.len() as f64 * f64::from(passes);
        std::hint::black_box(checksum);
        println!(
            "| {} | {:.0} | {:.0} | {:.0} | {:.1} | {} |",
            set.name().to_string() + " (vector)",
            bytes / cpu / 1e6,
            nfiles / cpu,
            bytes / wall / 1e6,
            vm_kib("VmHWM:") as f64 / 1024.0,
            passes
        );
        if set == FeatureSet::EmberV2 {
            // The raw JSON object (with sha256), as written to EMBER-style jsonl.
            let _ = std::fs::write("/proc/self/clear_refs", "5");
            let c0 = cpu_seconds();
            let mut passes = 0u32;
            let mut len = 0usize;
            loop {
                for f in &files {
                    if let Ok(v) = mallard_pefeatures::ember_raw(f) {
                        len += v.to_string().len();
                    }
                }
                passes += 1;
                if cpu_seconds() - c0 >= secs {
                    break;
                }
            }
            let cpu = (cpu_seconds() - c0).max(1e-9);
            std::hint::black_box(len);
            println!(
                "| ember-v2 (raw JSON + sha256, serialised) | {:.0} | {:.0} | | {:.1} | {} |",
                total as f64 * f64::from(passes) / cpu / 1e6,
                files.len() as f64 * f64::from(passes) / cpu,
                vm_kib("VmHWM:") as f64 / 1024.0,
                passes
            );
        }
    }
}
