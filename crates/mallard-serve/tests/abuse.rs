//! Abuse from many clients at once against a daemon in a process of its own (this test
//! binary run again as the daemon), so that its resident memory can be read: 1,000 idle
//! connections, garbage, oversized chunks, streams dropped half-way, paths outside the
//! roots. Every one gets clamd's error reply, the daemon keeps serving, its memory comes
//! back to where it was, and SIGTERM stops it leaving no file behind.

mod common;
use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The daemon, when this binary is started with MALLARD_SERVE_CHILD=CONFIG.
#[test]
#[ignore = "helper: the daemon process of abuse_leaves_the_daemon_serving_in_flat_memory"]
fn child_daemon() {
    let Some(conf) = std::env::var_os("MALLARD_SERVE_CHILD") else {
        return;
    };
    let c = mallard_serve::Config::from_file(Path::new(&conf)).unwrap();
    let s = mallard_serve::Server::bind(c).unwrap();
    s.stop_on_signals().unwrap();
    s.run().unwrap();
}

fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ask(sock: &Path, b: &[u8]) -> String {
    text(unix(sock, b))
}

#[test]
fn abuse_leaves_the_daemon_serving_in_flat_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sock = d.join("s.sock");
    let tmp = d.join("tmp");
    std::fs::create_dir_all(d.join("root")).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::write(d.join("rules.yar"), RULE).unwrap();
    let conf = d.join("mallard.conf");
    std::fs::write(
        &conf,
        format!(
            "LocalSocket {}\nScanRoot {}\nRules {}\nBuiltinRules no\nMaxConnections 64\nMaxThreads 2\nCommandReadTimeout 1\nIdleTimeout 1\nStreamMaxLength 100K\n",
            sock.display(),
            d.join("root").display(),
            d.join("rules.yar").display()
        ),
    )
    .unwrap();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["child_daemon", "--exact", "--ignored", "--nocapture"])
        .env("MALLARD_SERVE_CHILD", &conf)
        .env("TMPDIR", &tmp)
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let pid = child.0.id();
    let t0 = Instant::now();
    while UnixStream::connect(&sock).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the daemon did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pe = mallard_pe::synth::tiny_pe32();
    let mut marked = b"x".to_vec();
    marked.extend_from_slice(MARKER);
    let round = |n: usize| {
        for _ in 0..n {
            assert!(ask(&sock, &instream("n", &pe)).starts_with("stream: "));
            assert_eq!(
                ask(&sock, &instream("z", &marked)),
                "stream: Mallard.Rule.Serve_Test_Marker FOUND\0"
            );
        }
    };
    round(30);
    std::thread::sleep(Duration::from_millis(1500));
    let base = rss_kib(pid);
    let base_threads = threads(pid);

    // 1,000 idle connections: past MaxConnections an error at once, the rest time out.
    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let (mut refused, mut timed_out) = (0, 0);
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        match r.as_str() {
            "Too many connections. ERROR\n" => refused += 1,
            "COMMAND READ TIMED OUT\n" => timed_out += 1,
            other => panic!("idle connection got {other:?}"),
        }
    }
    assert!(
        refused > 0 && timed_out > 0,
        "{refused} refused, {timed_out} timed out"
    );
    assert_eq!(ask(&sock, b"nPING\n"), "PONG\n");

    // Bad input from 8 clients at once.
    let workers: Vec<_> = (0..8)
        .map(|k| {
            let sock = sock.clone();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let mut g: Vec<u8> = (0..512u32)
                        .map(|j| (j.wrapping_mul(2654435761) >> (i % 24)) as u8)
                        .collect();
                    g[0] = 0xfe;
                    assert_eq!(ask(&sock, &g), "UNKNOWN COMMAND\n");
                    let mut b = b"nINSTREAM\n".to_vec();
                    b.extend_from_slice(&u32::MAX.to_be_bytes());
                    assert_eq!(ask(&sock, &b), "INSTREAM size limit exceeded. ERROR\n");
                    assert_eq!(
                        ask(&sock, b"nSCAN /etc/passwd\n"),
                        "/etc/passwd: Access denied. ERROR\n"
                    );
                    assert_eq!(ask(&sock, b"nNOSUCHCOMMAND\n"), "UNKNOWN COMMAND\n");
                    // A stream dropped half-way.
                    let mut s = UnixStream::connect(&sock).unwrap();
                    s.write_all(b"nINSTREAM\n").unwrap();
                    s.write_all(&5000u32.to_be_bytes()).unwrap();
                    s.write_all(&[k as u8; 100]).unwrap();
                    drop(s);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    round(30);
    std::thread::sleep(Duration::from_millis(2500));
    let after = rss_kib(pid);
    let after_threads = threads(pid);
    println!("daemon RSS: {base} KiB before abuse, {after} KiB after; threads {base_threads} -> {after_threads}");
    assert!(
        after <= base + base / 10 + 2048,
        "RSS grew from {base} to {after} KiB"
    );
    assert!(
        after_threads <= base_threads + 1,
        "threads {base_threads} -> {after_threads}"
    );
    assert_eq!(
        entries(&tmp.read_dir().unwrap().next().unwrap().unwrap().path()),
        0
    );

    // SIGTERM: a clean exit, no socket and no stream folder left.
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "SIGTERM did not stop the daemon"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!sock.exists(), "socket left behind");
    assert_eq!(entries(&tmp), 0, "stream folder left behind");
}
