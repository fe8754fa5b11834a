//! Issue #12 on the features/train side: one bad input must never cost the batch. Each test
//! runs the real binary on a hostile input (FIFOs, link loops, huge sparse files, unrelated
//! or concurrent output files, cut resume files, unreadable folders, huge cells, nonsense
//! options) and checks that it is refused with a line naming it while the rest goes on.

mod common;
use common::mallard;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("mallard-hostile", name)
}

/// Runs mallard under `timeout`, so a hang fails the test instead of stalling the suite.
fn mallard_within(secs: u32, args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(env!("CARGO_BIN_EXE_mallard"))
        .args(args)
        .output()
        .expect("run timeout (coreutils)");
    assert_ne!(out.status.code(), Some(124), "mallard {args:?} hung");
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn records(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo").arg(p).status();
    assert!(ok.map(|s| s.success()).unwrap_or(false), "mkfifo unavailable");
}

/// A small file that starts like a PE file; saxe-1024 featurises any bytes.
fn mz(p: &Path, tail: &str) {
    std::fs::write(p, format!("MZ{tail}")).unwrap();
}

fn features(paths: &[&Path], extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["features", "--set", "saxe-1024"];
    args.extend(extra);
    args.extend(paths.iter().map(|p| s(p)));
    mallard_within(60, &args)
}

#[test]
fn features_fifo_and_link_loop_are_error_lines_and_the_rest_goes_on() {
    let d = tmp("fifo");
    std::fs::create_dir(d.join("sub")).unwrap();
    mz(&d.join("a.exe"), "one");
    mz(&d.join("sub/b.dll"), "two");
    std::fs::write(d.join("notes.txt"), "not a PE").unwrap();
    mkfifo(&d.join("x.exe"));
    std::os::unix::fs::symlink(".", d.join("sub/loop")).unwrap();
    std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
    let fifo = d.join("x.exe");
    let out = features(&[&d, &fifo], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let rows = records(&String::from_utf8_lossy(&out.stdout));
    let errors: Vec<&Value> = rows.iter().filter(|r| r.get("error").is_some()).collect();
    // The FIFO inside the folder and the FIFO named on the command line.
    assert_eq!(errors.len(), 2, "{rows:?}");
    for e in &errors {
        assert!(e["path"].as_str().unwrap().ends_with("x.exe"));
        assert!(e["error"].as_str().unwrap().contains("FIFO"), "{e}");
    }
    let mut done: Vec<&str> = rows
        .iter()
        .filter(|r| r.get("vector").is_some())
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    done.sort();
    // Each real file exactly once: the loops are not followed.
    assert_eq!(done, vec![s(&d.join("a.exe")), s(&d.join("sub/b.dll"))]);
    assert!(stderr(&out).contains("x.exe"), "{}", stderr(&out));
}

#[test]
fn features_sparse_1gb_mz_file_is_refused_at_once_with_its_real_size() {
    let d = tmp("sparse");
    let big = d.join("big.exe");
    mz(&big, "");
    std::fs::OpenOptions::new().write(true).open(&big).unwrap().set_len(1 << 30).unwrap();
    mz(&d.join("ok.exe"), "fine");
    let t = std::time::Instant::now();
    let out = features(&[&d], &[]);
    assert!(t.elapsed().as_secs() < 10, "took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(2));
    let rows = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows.len(), 2);
    let e = rows.iter().find(|r| r.get("error").is_some()).unwrap();
    assert!(e["error"].as_str().unwrap().contains("1073741824 bytes"), "{e}");
    assert!(rows.iter().any(|r| r["path"] == s(&d.join("ok.exe"))
        && r["vector"].as_array().is_some_and(|v| v.len() == 1024)));
}

#[test]
fn features_will_not_overwrite_an_unrelated_file_unless_forced() {
    let d = tmp("unrelated");
    mz(&d.join("a.exe"), "x");
    let out_file = d.join("notes.jsonl");
    let precious = "{\"my\": \"notes\"}\nline two\n";
    std::fs::write(&out_file, precious).unwrap();
    let out = features(&[&d.join("a.exe")], &["--out", s(&out_file)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("notes.jsonl") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), precious);
    let out = features(&[&d.join("a.exe")], &["--out", s(&out_file), "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = records(&std::fs::read_to_string(&out_file).unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["vector"].as_array().unwrap().len(), 1024);
}

#[test]
fn features_resume_with_another_set_is_refused() {
    let d = tmp("otherset");
    mz(&d.join("a.exe"), "x");
    mz(&d.join("b.exe"), "y");
    let out_file = d.join("f.jsonl");
    let out = features(&[&d.join("a.exe")], &["--out", s(&out_file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&out_file).unwrap();
    let out = mallard_within(
        60,
        &[
            "features",
            "--set",
            "ember-v2",
            "--out",
            s(&out_file),
            s(&d.join("a.exe")),
            s(&d.join("b.exe")),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("saxe-1024") && err.contains("ember-v2"), "{err}");
    assert_eq!(std::fs::read(&out_file).unwrap(), before);
}

#[test]
fn features_second_run_on_one_out_is_refused_and_a_stale_lock_is_taken_over() {
    let d = tmp("lock");
    mz(&d.join("a.exe"), "x");
    let out_file = d.join("f.jsonl");
    let lock = d.join("f.jsonl.lock");
    // A live process holds the lock: this test's own.
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    let out = features(&[&d.join("a.exe")], &["--out", s(&out_file)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pid {}", std::process::id())) && err.contains("f.jsonl.lock"),
        "{err}"
    );
    assert!(!out_file.exists());
    assert!(lock.exists(), "another run's lock must be left alone");
    // A lock left by a process that no longer exists does not block.
    std::fs::write(&lock, "999999999\n").unwrap();
    let out = features(&[&d.join("a.exe")], &["--out", s(&out_file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!lock.exists(), "the lock is removed at exit");
    assert_eq!(records(&std::fs::read_to_string(&out_file).unwrap()).len(), 1);
}

#[test]
fn features_resume_drops_a_last_line_cut_mid_utf8() {
    let d = tmp("cut");
    let files: Vec<PathBuf> = (0..3).map(|i| d.join(format!("é{i}.exe"))).collect();
    for (i, f) in files.iter().enumerate() {
        mz(f, &format!("body {i}"));
    }
    let out_file = d.join("f.jsonl");
    let out = features(&[&files[0], &files[1]], &["--out", s(&out_file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A crash mid-record: the third record is cut inside the two bytes of "é".
    let mut bytes = std::fs::read(&out_file).unwrap();
    let third = format!("{{\"path\":\"{}", s(&files[2]));
    let cut = third.find('é').unwrap() + 1;
    bytes.extend_from_slice(&third.as_bytes()[..cut]);
    std::fs::write(&out_file, &bytes).unwrap();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = features(&paths, &["--out", s(&out_file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("2 files already done, 1 to go"), "{}", stderr(&out));
    let rows = records(&std::fs::read_to_string(&out_file).unwrap());
    let got: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
    let want: Vec<&str> = files.iter().map(|f| s(f)).collect();
    assert_eq!(got, want);
}

#[test]
fn features_unreadable_subfolder_is_an_error_record_and_the_rest_goes_on() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = tmp("perm");
    let data = d.join("data");
    std::fs::create_dir_all(data.join("closed")).unwrap();
    mz(&data.join("closed/hidden.exe"), "h");
    mz(&data.join("open.exe"), "o");
    std::fs::set_permissions(data.join("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
    // Root reads any folder: run the binary as nobody, from a copy it can reach.
    let out = if root {
        let bin = d.join("mallard");
        std::fs::copy(env!("CARGO_BIN_EXE_mallard"), &bin).unwrap();
        for p in [&d, &data, &bin] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // Another test thread forking while the copy was open can make the exec fail
        // with "Text file busy" for a moment; try again then.
        let mut tries = 0;
        loop {
            let out = Command::new("timeout")
                .args(["60", "setpriv", "--reuid=65534", "--regid=65534"])
                .arg("--clear-groups")
                .arg(&bin)
                .args(["features", "--set", "saxe-1024", s(&data)])
                .output()
                .expect("setpriv (util-linux) is needed to run this test as root");
            tries += 1;
            if tries == 10 || !stderr(&out).contains("Text file busy") {
                break out;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    } else {
        features(&[&data], &[])
    };
    std::fs::set_permissions(data.join("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let rows = records(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0]["path"].as_str().unwrap().ends_with("closed"));
    assert!(rows[0]["error"].as_str().unwrap().contains("ermission"));
    assert_eq!(rows[1]["path"], s(&data.join("open.exe")));
    assert_eq!(rows[1]["vector"].as_array().unwrap().len(), 1024);
}

/// A labelled two-column CSV where `x` decides the label.
fn toy_csv(rows: usize, extra: Option<(usize, String)>) -> String {
    let mut t = String::from("id,x,label\n");
    for i in 0..rows {
        let cell = match &extra {
            Some((r, big)) if *r == i => big.clone(),
            _ => format!("r{i}"),
        };
        t.push_str(&format!("{cell},{},{}\n", i % 2, i % 2));
    }
    t
}

#[test]
fn train_refuses_a_huge_cell_naming_file_line_and_column() {
    let d = tmp("bigcell");
    let csv = d.join("t.csv");
    // An id cell of 2 MiB on data line 5 (file line 6), over the 1 MiB default cap.
    std::fs::write(&csv, toy_csv(40, Some((4, "z".repeat(2 << 20))))).unwrap();
    let model = d.join("m.mallard");
    let dataset = format!("csv:{}", s(&csv));
    let args = [
        "train",
        "--dataset",
        &dataset,
        "--label-column",
        "label",
        "--id-column",
        "id",
        "--min-data-in-leaf",
        "1",
        "--out",
        s(&model),
    ];
    let out = mallard_within(60, &args);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("t.csv:6") && err.contains("\"id\"") && err.contains("1048576 bytes"),
        "{err}"
    );
    assert!(!model.exists());
    // The cap is a flag: raised above the cell, the same file trains.
    let mut raised = args.to_vec();
    raised.extend(["--max-cell-bytes", "4194304"]);
    let out = mallard_within(60, &raised);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(model.exists());
    // And a table over --max-table-mib is refused with its real size.
    let n = std::fs::metadata(&csv).unwrap().len();
    let mut small = raised.clone();
    small.extend(["--max-table-mib", "1"]);
    let out = mallard_within(60, &small);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&format!("{n} bytes")), "{}", stderr(&out));
}

#[test]
fn train_refuses_nonsense_numbers_naming_the_flag() {
    let d = tmp("options");
    let csv = d.join("t.csv");
    std::fs::write(&csv, toy_csv(40, None)).unwrap();
    let model = d.join("m.mallard");
    let dataset = format!("csv:{}", s(&csv));
    for (flag, value) in [
        ("--calibrate-fpr", "NaN"),
        ("--calibrate-fpr", "2"),
        ("--calibrate-fpr", "0"),
        ("--epochs", "0"),
        ("--lr", "0"),
        ("--lr", "NaN"),
        ("--n-estimators", "0"),
        ("--feature-fraction", "1.5"),
        ("--num-leaves", "1"),
        ("--validation-split", "NaN"),
    ] {
        let out = mallard(&[
            "train",
            "--dataset",
            &dataset,
            "--label-column",
            "label",
            "--out",
            s(&model),
            flag,
            value,
        ]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = stderr(&out);
        assert!(err.contains(flag) && err.contains(value), "{flag} {value}: {err}");
        assert!(!model.exists(), "{flag} {value} wrote a model");
    }
    // A manifest that never ends is refused, not hashed forever.
    let out = mallard_within(
        60,
        &[
            "train",
            "--dataset",
            &dataset,
            "--label-column",
            "label",
            "--min-data-in-leaf",
            "1",
            "--manifest",
            "/dev/zero",
            "--out",
            s(&model),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/dev/zero"), "{}", stderr(&out));
    let out = mallard(&["cv", "--dataset", &dataset, "--folds", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--folds"));
}

#[test]
fn pe_dataset_folders_skip_fifos_and_link_loops() {
    let d = tmp("pedataset");
    for (label, n) in [("malicious", 3), ("benign", 3)] {
        std::fs::create_dir_all(d.join(label)).unwrap();
        for i in 0..n {
            mz(&d.join(format!("{label}/{i}.exe")), &format!("{label} {i}"));
        }
    }
    mkfifo(&d.join("benign/pipe.exe"));
    std::os::unix::fs::symlink("..", d.join("malicious/up")).unwrap();
    // A link to a regular file elsewhere is taken (labelled views are made of links).
    let elsewhere = tmp("pedataset-elsewhere").join("x.exe");
    mz(&elsewhere, "linked");
    std::os::unix::fs::symlink(&elsewhere, d.join("benign/linked.exe")).unwrap();
    let model = d.join("m.mallard");
    let dataset = format!("pe:{}", s(&d));
    let out = mallard_within(
        120,
        &[
            "train",
            "--dataset",
            &dataset,
            "--feature-set",
            "saxe-1024",
            "--min-data-in-leaf",
            "1",
            "--n-estimators",
            "2",
            "--out",
            s(&model),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("pipe.exe") && err.contains("FIFO"), "{err}");
    // Seven files, each once: the link to the parent folder is not followed.
    assert!(err.contains("read 7 rows"), "{err}");
}
