//! Gzip bombs: a small `.json.gz` holding one gigantic string (API name, process name,
//! sha256, object key) must cost neither gigabytes of memory nor many seconds. Alone in
//! its own test binary so that the peak RSS checked at the end is these reads'.

use mallard_apiseq::{read_report, read_report_from, ReadError, Report, ReportOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// MiB of 'A's in each bomb: 1 GiB in release builds, less in slow debug builds.
const MIB: usize = if cfg!(debug_assertions) { 48 } else { 1024 };

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// `before` + MIB MiB of 'A' + `after`, as concatenated gzip members: the 1 MiB member is
/// compressed once and repeated, so building a 1 GiB bomb takes milliseconds.
fn bomb(before: &str, after: &str) -> Vec<u8> {
    let mib = gz(&vec![b'A'; 1 << 20]);
    let mut out = gz(before.as_bytes());
    for _ in 0..MIB {
        out.extend_from_slice(&mib);
    }
    out.extend_from_slice(&gz(after.as_bytes()));
    out
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mallard-bombs-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Reads the bomb both from a file and from a reader; checks it was fast.
fn read_both(name: &str, bytes: &[u8], opts: &ReportOptions) -> [Result<Report, ReadError>; 2] {
    let path = scratch(name);
    std::fs::write(&path, bytes).unwrap();
    let limit = Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 20 });
    let t = Instant::now();
    let a = read_report(&path, opts);
    assert!(t.elapsed() < limit, "{name}: {:?} from a file", t.elapsed());
    let t = Instant::now();
    let b = read_report_from(std::io::Cursor::new(bytes.to_vec()), &path, opts);
    assert!(
        t.elapsed() < limit,
        "{name}: {:?} from a reader",
        t.elapsed()
    );
    let _ = std::fs::remove_file(&path);
    [a, b]
}

const CALL: &str = r#"{"api": "NtClose", "time": 1.0}"#;

fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

#[test]
fn string_bombs_are_dropped_fast_in_small_memory() {
    let opts = ReportOptions::default();
    let long_warning = |r: &Report, what: &str| {
        r.warnings.iter().any(|w| {
            w.contains(&format!(
                "1 {what} longer than max_string_bytes = 4096 bytes"
            ))
        })
    };

    // API name: the call is skipped with a warning, the other call is kept.
    let b = bomb(
        r#"{"behavior": {"processes": [{"pid": 1, "calls": [{"time": 0.5, "api": ""#,
        &format!(r#""}}, {CALL}]}}]}}}}"#),
    );
    assert!(b.len() < (MIB + 64) << 10, "bomb is {} bytes", b.len());
    for r in read_both("api.json.gz", &b, &opts) {
        let r = r.unwrap();
        assert_eq!(r.sequence(), vec!["NtClose".to_string()]);
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("skipped 1 calls whose API name is longer")),
            "{:?}",
            r.warnings
        );
        assert!(!r.warnings.iter().any(|w| w.contains("without an 'api'")));
        assert!(r.api_names().iter().all(|n| n.len() < 100));
    }

    // Process name: left out, calls kept.
    let b = bomb(
        r#"{"behavior": {"processes": [{"pid": 7, "process_name": ""#,
        &format!(r#"", "calls": [{CALL}]}}]}}}}"#),
    );
    for r in read_both("pname.json.gz", &b, &opts) {
        let r = r.unwrap();
        assert_eq!(r.processes[0].pid, 7);
        assert_eq!(r.processes[0].name, None);
        assert_eq!(r.call_count(), 1);
        assert!(
            long_warning(&r, "names, paths or hashes"),
            "{:?}",
            r.warnings
        );
    }

    // Target sha256: left out.
    let b = bomb(
        r#"{"target": {"file": {"name": "a.exe", "sha256": ""#,
        &format!(r#""}}}}, "behavior": {{"processes": [{{"pid": 1, "calls": [{CALL}]}}]}}}}"#),
    );
    for r in read_both("sha.json.gz", &b, &opts) {
        let r = r.unwrap();
        assert_eq!(r.sha256, None);
        assert_eq!(r.target_name.as_deref(), Some("a.exe"));
        assert!(
            long_warning(&r, "names, paths or hashes"),
            "{:?}",
            r.warnings
        );
    }

    // An object key (inside behavior, before the processes): ignored.
    let b = bomb(
        r#"{"behavior": {""#,
        &format!(r#"": [1, 2], "processes": [{{"pid": 1, "calls": [{CALL}, {CALL}]}}]}}}}"#),
    );
    for r in read_both("key.json.gz", &b, &opts) {
        let r = r.unwrap();
        assert_eq!(r.call_count(), 2);
        assert!(long_warning(&r, "object keys"), "{:?}", r.warnings);
    }

    // A long value in a skipped section (an argument buffer) is normal in real reports:
    // cheap, and no warning.
    let b = bomb(
        r#"{"behavior": {"processes": [{"pid": 1, "calls": [{"api": "NtWriteFile", "arguments": {"buffer": ""#,
        r#""}}]}]}}"#,
    );
    for r in read_both("arg.json.gz", &b, &opts) {
        let r = r.unwrap();
        assert_eq!(r.sequence(), vec!["NtWriteFile".to_string()]);
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }

    let peak = peak_rss_mib();
    println!("peak RSS over all bombs: {peak} MiB");
    assert!(peak < 300, "peak RSS {peak} MiB");
}

#[test]
fn decompressed_and_on_disk_caps_name_the_file_and_cap() {
    let b = bomb(r#"{"behavior": {"processes": [], "x": ""#, r#""}}"#);
    let opts = ReportOptions {
        max_bytes: 8 << 20,
        ..ReportOptions::default()
    };
    for e in read_both("capped.json.gz", &b, &opts) {
        let e = e.unwrap_err();
        assert!(
            matches!(e, ReadError::TooLarge { limit, .. } if limit == 8 << 20),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("capped.json.gz") && msg.contains(&(8u64 << 20).to_string()),
            "{msg}"
        );
    }
    // On disk: refused before reading, with the real size.
    let path = scratch("ondisk.json.gz");
    std::fs::write(&path, &b).unwrap();
    let opts = ReportOptions {
        max_file_bytes: 1000,
        ..ReportOptions::default()
    };
    let msg = read_report(&path, &opts).unwrap_err().to_string();
    assert!(
        msg.contains("ondisk.json.gz") && msg.contains(&format!("{} bytes", b.len())),
        "{msg}"
    );
    assert!(msg.contains("1000"), "{msg}");
    let _ = std::fs::remove_file(&path);
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_hanging() {
    let path = scratch("fifo.json");
    let _ = std::fs::remove_file(&path);
    let ok = std::process::Command::new("mkfifo").arg(&path).status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "mkfifo failed");
    let msg = read_report(&path, &ReportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("FIFO"), "{msg}");
    let _ = std::fs::remove_file(Path::new(&path));
}
