//! Peak memory of the streaming reader on the largest shared report (75 MB of JSON after
//! gunzip). Alone in its own test binary so that the process peak is this test's.

use mallard_apiseq::{read_report, ReportOptions};
use std::path::PathBuf;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "data: reads ../shared/data"]
fn largest_report_streams_in_small_memory() {
    let path = shared().join(
        "data/sandbox-reports/cape/capa-testfiles_v2.4_capesandboxcom_f5c93ac768c8206e.json.gz",
    );
    let r = read_report(&path, &ReportOptions::default()).unwrap();
    let seq = r.sequence();
    assert_eq!(seq.len(), 67_253);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    println!("peak RSS reading the largest report: {} KiB", peak_kib);
    // Holding the 75 MB document (let alone a serde_json::Value of it) would exceed this.
    assert!(peak_kib < 48 * 1024, "peak RSS {peak_kib} KiB");
}
