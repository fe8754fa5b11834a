//! Issue #12, scan side: one bad input must never cost the batch. Each test runs the real
//! binary on a hostile input and checks that it ends, names the input, and goes on.
#![cfg(target_os = "linux")]

mod common;
use common::{mallard, mallard_within, mkfifo, sha256sum};

use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp_in("mallard-hostile", name)
}

fn rows(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn tiny_pe(path: &Path) {
    std::fs::write(path, mallard_pe::synth::tiny_pe32()).unwrap();
}

/// A path as an argument; leaked so that temporaries can be passed (tests are short-lived).
fn s(p: impl AsRef<Path>) -> &'static str {
    Box::leak(p.as_ref().to_str().unwrap().to_string().into_boxed_str())
}

/// A Cuckoo report naming `sha` as its target.
fn report(path: &Path, sha: &str, apis: &[&str]) {
    let calls: Vec<Value> =
        apis.iter().map(|a| serde_json::json!({"api": a, "arguments": {}})).collect();
    let r = serde_json::json!({
        "info": {"version": "2.0.7"},
        "target": {"file": {"name": "x.exe", "sha256": sha}},
        "behavior": {"processes": [{"pid": 4, "process_name": "x.exe", "calls": calls}]}
    });
    std::fs::write(path, r.to_string()).unwrap();
}

#[test]
fn link_loops_give_each_file_once_and_rules_compile_once() {
    let d = tmp("loops");
    std::fs::create_dir_all(d.join("in/sub")).unwrap();
    tiny_pe(&d.join("in/sub/tiny.dll"));
    for (name, to) in [("a", "."), ("b", "."), ("up", "..")] {
        symlink(to, d.join("in/sub").join(name)).unwrap();
    }
    std::fs::create_dir_all(d.join("rules")).unwrap();
    std::fs::write(
        d.join("rules/tiny.yar"),
        "rule tiny_dll : malicious { condition: uint16(0) == 0x5A4D and filesize == 0x600 }",
    )
    .unwrap();
    symlink(".", d.join("rules/self1")).unwrap();
    symlink(".", d.join("rules/self2")).unwrap();
    for follow in [false, true] {
        let mut args = vec!["scan", "--json", "--rules", s(d.join("rules")), s(d.join("in"))];
        if follow {
            args.push("--follow-symlinks");
        }
        let out = mallard_within(&args, 120).expect("scan hung on link loops");
        let r = rows(&out.stdout);
        assert_eq!(r.len(), 1, "follow={follow}: {r:?}");
        assert_eq!(r[0]["decided_by"], "rules");
        let tiny: Vec<&Value> = r[0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x.as_str().unwrap().ends_with(":tiny_dll"))
            .collect();
        assert_eq!(tiny.len(), 1, "the rules file compiled more than once: {r:?}");
        assert_eq!(out.status.code(), Some(1));
    }
}

#[test]
fn a_fifo_in_a_folder_or_as_a_path_is_an_error_and_the_batch_goes_on() {
    let d = tmp("fifo");
    tiny_pe(&d.join("ok.dll"));
    mkfifo(&d.join("pipe.exe"));
    // Outside the scanned folder: a FIFO inside it is (rightly) an error result of its own.
    std::fs::create_dir_all(d.join("../fifo-lists")).unwrap();
    let list = d.join("../fifo-lists/list.txt");
    let _ = std::fs::remove_file(&list);
    mkfifo(&list);
    for args in [
        vec!["scan", "--json", s(&d)],
        vec!["scan", "--json", s(d.join("pipe.exe")), s(d.join("ok.dll"))],
    ] {
        let out = mallard_within(&args, 60).expect("scan hung on a FIFO");
        assert_eq!(out.status.code(), Some(2));
        let r = rows(&out.stdout);
        assert_eq!(r.len(), 2, "{r:?}");
        let pipe = r.iter().find(|x| x["path"].as_str().unwrap().ends_with("pipe.exe"));
        let pipe = pipe.expect("no result for the FIFO");
        assert_eq!(pipe["verdict"], "error");
        assert!(pipe["error"].as_str().unwrap().contains("FIFO"), "{pipe}");
        let ok = r.iter().find(|x| x["path"].as_str().unwrap().ends_with("ok.dll"));
        assert_ne!(ok.unwrap()["verdict"], "error");
    }
    for flag in ["--allow", "--deny"] {
        let args = ["scan", flag, s(&list), s(d.join("ok.dll"))];
        let out = mallard_within(&args, 60).expect("scan hung on a FIFO list");
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("list.txt") && err.contains("FIFO"), "{err}");
    }
}

#[test]
fn huge_sparse_inputs_are_refused_by_size_before_reading() {
    let d = tmp("sparse");
    let pe = d.join("big.exe");
    let f = std::fs::File::create(&pe).unwrap();
    std::io::Write::write_all(&mut &f, b"MZ").unwrap();
    f.set_len(1 << 30).unwrap();
    let rep = d.join("big.json");
    std::fs::File::create(&rep).unwrap().set_len(3 << 30).unwrap();
    let t = std::time::Instant::now();
    let out = mallard_within(&["scan", "--json", s(&pe), s(&rep)], 60).expect("hung");
    assert_eq!(out.status.code(), Some(2));
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 2);
    // Results come as they finish (no --sort): each is found by its path.
    for (name, size) in [("big.exe", "1073741824 bytes"), ("big.json", "3221225472 bytes")] {
        let row = r
            .iter()
            .find(|x| x["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("no result for {name}"));
        let e = row["error"].as_str().unwrap_or_default();
        assert!(e.contains(size) && e.contains("cap"), "{row}");
    }
    // Reading 256 MiB (the old behaviour) would take far longer on this machine than
    // refusing by the size on disk.
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
}

#[test]
fn an_unreadable_file_is_an_error_result_with_exit_2() {
    use std::os::unix::fs::PermissionsExt;
    let d = tmp("perm");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(d.join("in")).unwrap();
    std::fs::set_permissions(d.join("in"), std::fs::Permissions::from_mode(0o755)).unwrap();
    tiny_pe(&d.join("in/ok.dll"));
    tiny_pe(&d.join("in/secret.exe"));
    std::fs::set_permissions(d.join("in/secret.exe"), std::fs::Permissions::from_mode(0o0))
        .unwrap();
    let args = ["scan", "--json", s(d.join("in"))];
    // Root reads anything: run a copy of the binary as `nobody` so the check is real.
    let out = if unsafe_is_root() {
        let bin = d.join("mallard");
        std::fs::copy(env!("CARGO_BIN_EXE_mallard"), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .env("HOME", &d)
            .output()
            .expect("setpriv (util-linux) is needed to run this test as root")
    } else {
        mallard(&args)
    };
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 2, "{r:?} {}", String::from_utf8_lossy(&out.stderr));
    let secret = r
        .iter()
        .find(|x| x["path"].as_str().unwrap().ends_with("secret.exe"))
        .expect("the unreadable file was skipped silently");
    assert_eq!(secret["verdict"], "error");
    assert!(secret["error"].as_str().unwrap().contains("ermission denied"), "{secret}");
    assert_eq!(out.status.code(), Some(2));
}

fn unsafe_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn a_report_for_another_file_never_changes_a_verdict() {
    let d = tmp("evasion");
    let pe = d.join("dropper.exe");
    tiny_pe(&pe);
    let sha = sha256sum(&pe);
    let alone = mallard(&["scan", "--json", s(&pe)]);
    let alone = &rows(&alone.stdout)[0];
    assert_eq!(alone["decided_by"], "static model");
    let apis = ["NtOpenFile", "NtReadFile", "NtClose", "GetSystemTime"];
    let other = "ab".repeat(32);
    // Beside the file under each name the lookup knows, with another file's sha256 or none.
    for (name, target) in [
        ("dropper.exe.json", other.as_str()),
        ("dropper.exe.report.json", ""),
        (&format!("{sha}.json") as &str, other.as_str()),
    ] {
        report(&d.join(name), target, &apis);
        let out = mallard(&["scan", "--json", s(&pe)]);
        let r = &rows(&out.stdout)[0];
        assert_eq!(r["decided_by"], "static model", "{name}: {r}");
        assert_eq!(r["score"], alone["score"]);
        assert_eq!(r["verdict"], alone["verdict"]);
        let w = r["warnings"].to_string();
        assert!(w.contains(name) && w.contains("not used"), "{name}: {w}");
        std::fs::remove_file(d.join(name)).unwrap();
    }
    // The same report naming this file's sha256 is paired.
    report(&d.join("dropper.exe.json"), &sha.to_uppercase(), &apis);
    let out = mallard(&["scan", "--json", s(&pe)]);
    let r = &rows(&out.stdout)[0];
    assert_eq!(r["decided_by"], "static+dynamic ensemble", "{r}");
    // --report with another sha256 is not paired either.
    std::fs::remove_file(d.join("dropper.exe.json")).unwrap();
    report(&d.join("elsewhere.json"), &other, &apis);
    let out = mallard(&["scan", "--json", "--report", s(d.join("elsewhere.json")), s(&pe)]);
    let r = &rows(&out.stdout)[0];
    assert_eq!(r["decided_by"], "static model", "{r}");
    std::fs::remove_file(d.join("elsewhere.json")).unwrap();
    // Named by this file's sha256 and naming it: paired (the hash is computed only when a
    // report could pair, so both lookups by hash are checked here).
    report(&d.join(format!("{sha}.json")), &sha, &apis);
    let out = mallard(&["scan", "--json", s(&pe)]);
    assert_eq!(rows(&out.stdout)[0]["decided_by"], "static+dynamic ensemble");
    std::fs::remove_file(d.join(format!("{sha}.json"))).unwrap();
    let elsewhere = tmp("evasion-reports");
    report(&elsewhere.join("r.json"), &sha, &apis);
    let out = mallard(&["scan", "--json", "--report", s(elsewhere.join("r.json")), s(&pe)]);
    assert_eq!(rows(&out.stdout)[0]["decided_by"], "static+dynamic ensemble");
}

#[test]
fn careless_options_are_refused_plainly() {
    let d = tmp("opts");
    tiny_pe(&d.join("a.dll"));
    let pe = d.join("a.dll");
    for t in ["NaN", "inf", "1.5", "-0.1"] {
        let out = mallard(&["scan", &format!("--threshold={t}"), s(&pe)]);
        assert_eq!(out.status.code(), Some(2), "--threshold {t}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("threshold") || err.contains("[0, 1]"), "{err}");
        assert!(out.stdout.is_empty());
    }
    for t in ["0", "nan", "-3"] {
        let out = mallard(&["scan", &format!("--file-timeout={t}"), s(&pe)]);
        assert_eq!(out.status.code(), Some(2), "--file-timeout {t}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("seconds above 0"), "{err}");
    }
    let out = mallard_within(&["--threads", "100000", "scan", s(&pe)], 30).expect("hung");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most"));
    // A sane explicit count still works.
    let out = mallard(&["--threads", "2", "scan", "--json", s(&pe)]);
    assert!(matches!(out.status.code(), Some(0 | 1)));
}

#[test]
fn a_bad_report_option_is_an_error_result_and_the_scan_goes_on() {
    let d = tmp("badreport");
    tiny_pe(&d.join("a.dll"));
    std::fs::write(d.join("broken.json"), r#"{"behavior": {"processes": ["#).unwrap();
    report(&d.join("nosha.json"), "", &["NtClose"]);
    let out = mallard(&[
        "scan",
        "--json",
        "--report",
        s(d.join("broken.json")),
        "--report",
        s(d.join("nosha.json")),
        s(d.join("a.dll")),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 3, "{r:?}");
    let find = |n: &str| r.iter().find(|x| x["path"].as_str().unwrap().ends_with(n)).unwrap();
    assert_eq!(find("broken.json")["verdict"], "error");
    assert!(find("nosha.json")["error"].as_str().unwrap().contains("sha256"));
    assert_eq!(find("a.dll")["decided_by"], "static model");
}

#[test]
fn control_characters_in_names_cannot_forge_plain_lines() {
    let d = tmp("names");
    let evil = d.join("x\nforged.exe: benign (score 0.000)");
    tiny_pe(&evil);
    let out = mallard(&["scan", s(&evil)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("x\\nforged.exe"), "{text}");
    // JSON keeps the real name.
    let out = mallard(&["scan", "--json", s(&evil)]);
    assert_eq!(rows(&out.stdout)[0]["path"], s(&evil));
}

#[test]
fn an_input_over_its_time_budget_is_an_error_and_the_others_still_get_results() {
    let d = tmp("timeout");
    tiny_pe(&d.join("a.dll"));
    tiny_pe(&d.join("b.dll"));
    let out =
        mallard_within(&["scan", "--json", "--file-timeout", "0.000001", s(&d)], 60).expect("hung");
    assert_eq!(out.status.code(), Some(2));
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 2);
    for x in &r {
        assert!(x["error"].as_str().unwrap().contains("took longer than 0.000001 s"), "{x}");
    }
    // With a generous budget the same inputs are scanned.
    let out = mallard(&["scan", "--json", "--file-timeout", "600", s(&d)]);
    assert!(rows(&out.stdout).iter().all(|x| x["verdict"] != "error"));
}

#[test]
fn results_stream_and_ctrl_c_prints_the_summary_and_exits_130() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let d = tmp("sigint");
    let bytes = mallard_pe::synth::tiny_pe32();
    let n = 3000;
    for i in 0..n {
        std::fs::write(d.join(format!("f{i:05}.dll")), &bytes).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_mallard"))
        .args(["--threads", "1", "scan", "--json", "--top", "0", s(&d)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // The first result arrives while the others are still being scanned (streaming).
    let first = lines.next().expect("no result streamed").unwrap();
    assert!(first.contains("f00000.dll"), "{first}");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let rest = lines.count();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(rest + 1 < n, "all {n} files were scanned before the interrupt");
    let want = format!("scanned {}:", rest + 1);
    assert!(err.contains(&want) && err.contains("interrupted"), "{err}");
}

/// Each cap of docs/limits.md that a scan applies has a flag, and the flag moves the cap:
/// inputs under the default caps but over the lowered ones become error results naming
/// the cap, and the batch goes on.
#[test]
fn scan_caps_are_flags() {
    use std::io::Write;
    let d = tmp("capflags");
    // a 2 MiB PE file (a tiny PE with zeros appended)
    let pe = d.join("big.exe");
    let mut bytes = mallard_pe::synth::tiny_pe32();
    bytes.resize(2 << 20, 0);
    std::fs::write(&pe, &bytes).unwrap();
    let small = d.join("small.exe");
    tiny_pe(&small);
    // a gzip report that inflates to ~2 MiB of calls
    let rep = d.join("r.json.gz");
    let apis: Vec<&str> = std::iter::repeat_n("NtClose", 60_000).collect();
    let plain = d.join("plain.json");
    report(&plain, "00", &apis);
    let text = std::fs::read(&plain).unwrap();
    assert!(text.len() > (3 << 20) / 2, "{}", text.len());
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&rep).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&text).unwrap();
    gz.finish().unwrap();
    std::fs::remove_file(&plain).unwrap();

    // defaults: all three scan
    let out = mallard(&["scan", "--json", "--sort", s(&pe), s(&small), s(&rep)]);
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 3);
    assert!(r.iter().all(|row| row["verdict"] != "error"), "{r:?}");

    let out = mallard(&[
        "scan",
        "--json",
        "--sort",
        "--max-file-mib",
        "1",
        "--max-report-decompressed-mib",
        "1",
        s(&pe),
        s(&small),
        s(&rep),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let r = rows(&out.stdout);
    assert_eq!(r.len(), 3, "{r:?}");
    assert_eq!(r[0]["verdict"], "error", "{}", r[0]);
    assert!(r[0]["error"].as_str().unwrap().contains("cap"), "{}", r[0]);
    assert_ne!(r[1]["verdict"], "error", "{}", r[1]);
    assert_eq!(r[2]["verdict"], "error", "{}", r[2]);

    // a model file over --max-model-mib is refused before it is read
    let model = d.join("m.mallard");
    let f = std::fs::File::create(&model).unwrap();
    f.set_len(2 << 20).unwrap();
    let out = mallard(&["scan", "--max-model-mib", "1", "--model", s(&model), s(&small)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("m.mallard") && err.contains("cap"), "{err}");

    // --max-depth 0: files in subfolders are not reached
    std::fs::create_dir_all(d.join("tree/sub")).unwrap();
    tiny_pe(&d.join("tree/top.exe"));
    tiny_pe(&d.join("tree/sub/deep.exe"));
    let out = mallard(&["scan", "--json", "--max-depth", "0", s(d.join("tree"))]);
    let r = rows(&out.stdout);
    assert!(r.iter().any(|row| row["path"].as_str().unwrap().ends_with("top.exe")), "{r:?}");
    assert!(
        !r.iter()
            .any(|row| row["path"].as_str().unwrap().ends_with("deep.exe")
                && row["verdict"] != "error"),
        "{r:?}"
    );

    // nonsense values are usage errors
    for bad in [["--max-file-mib", "0"], ["--rule-timeout", "0"], ["--max-calls", "-1"]] {
        let out = mallard(&["scan", bad[0], bad[1], s(&small)]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
}
