//! Peak memory of `train` on 100 MB CSVs of small cells (issue #12: 2.2 GB once). Each run's
//! peak is the child's own `ru_maxrss` from `wait4`, so other tests cannot blur it.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes a CSV of `features` one-digit columns and a label that depends on the first two,
/// until it holds `bytes`; returns its rows. A small xorshift keeps it reproducible.
fn write_csv(path: &Path, features: usize, bytes: u64) -> u64 {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let head: Vec<String> = (0..features).map(|i| format!("c{i}")).collect();
    writeln!(w, "{},class", head.join(",")).unwrap();
    let (mut state, mut written, mut rows) = (0x9E37_79B9_7F4A_7C15u64, 0u64, 0u64);
    let mut line = String::new();
    while written < bytes {
        line.clear();
        let mut first = [0u64; 2];
        for f in 0..features {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let d = state % 10;
            if let Some(slot) = first.get_mut(f) {
                *slot = d;
            }
            line.push(char::from(b'0' + d as u8));
            line.push(',');
        }
        line.push_str(if first[0] + first[1] > 9 { "m\n" } else { "b\n" });
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        rows += 1;
    }
    rows
}

/// Runs mallard and returns (exit code, stderr, peak resident KiB).
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn run_measured(args: &[&str]) -> (i32, String, i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mallard"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mallard");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data; wait4 fills it for this child, which std never reaps.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, err, usage.ru_maxrss)
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "slow: writes and trains on 100 MB CSVs; CI runs it in the release pass"]
fn training_on_a_100_mb_csv_of_small_cells_stays_under_300_mb() {
    let d = common::tmp_in("train-memory", "csv");
    // 10 million rows of 4 cells (the narrow extreme a boosting run pays most for per row)
    // and 2.4 million of 20.
    for features in [4usize, 20] {
        let csv = d.join(format!("t{features}.csv"));
        let rows = write_csv(&csv, features, 100_000_000);
        let model = d.join(format!("m{features}.mallard"));
        let dataset = format!("csv:{}", csv.display());
        let (code, err, peak_kib) = run_measured(&[
            "train",
            "--dataset",
            &dataset,
            "--label-column",
            "class",
            "--model",
            "gbdt",
            "--n-estimators",
            "3",
            "--out",
            &model.to_string_lossy(),
        ]);
        assert_eq!(code, 0, "{err}");
        println!("{rows} rows x {features} cells: peak {} MiB", peak_kib / 1024);
        assert!(peak_kib < 300 * 1024, "{rows} rows x {features}: peak RSS {peak_kib} KiB");
        // the model is usable: eval on the same table
        let out = common::mallard(&[
            "eval",
            "--dataset",
            &dataset,
            "--label-column",
            "class",
            "--model",
            &model.to_string_lossy(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("roc_auc"), "{text}");
        std::fs::remove_file(&csv).unwrap();
    }
    let _ = std::fs::remove_dir_all(&d);
}
