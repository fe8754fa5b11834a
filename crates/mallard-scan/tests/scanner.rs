//! The scan engine as a library user drives it: `Scanner::builtin`, one input at a time and
//! in isolated batches.

use mallard_scan::{builtin, scan_batch, BatchOptions, ScanOptions, Scanner, Verdict};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mallard-scan-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[test]
fn builtin_models_load_and_say_what_they_read() {
    for name in builtin::NAMES {
        let m = builtin::load(name).expect("known name").expect("loads");
        assert!(!m.meta().labels.is_empty(), "{name}");
    }
    assert!(builtin::load("nope").is_none());
    let api = builtin::load("api").unwrap().unwrap();
    assert_eq!(api.meta().input, mallard_model::InputKind::ApiSequence);
    let pe = builtin::load("pe").unwrap().unwrap();
    assert_eq!(pe.meta().feature_set.as_deref(), Some("ember-v2-hardened"));
}

#[test]
fn a_pe_file_and_a_report_get_verdicts_with_reasons() {
    let d = tmp("verdicts");
    let pe = d.join("tiny.exe");
    std::fs::write(&pe, mallard_pe::synth::tiny_pe32()).unwrap();
    let report = d.join("r.json");
    let calls: Vec<serde_json::Value> =
        ["NtCreateFile", "NtWriteFile", "RegSetValueExW", "NtClose"]
            .iter()
            .map(|a| serde_json::json!({"api": a, "arguments": {}}))
            .collect();
    let r = serde_json::json!({
        "info": {"version": "2.0.7"},
        "behavior": {"processes": [{"pid": 4, "process_name": "x.exe", "calls": calls}]}
    });
    std::fs::write(&report, r.to_string()).unwrap();
    let scanner = Scanner::builtin(ScanOptions::default()).unwrap();
    let threshold = |name: &str| builtin::load(name).unwrap().unwrap().meta().threshold;
    for (p, model) in [(&pe, "pe"), (&report, "api")] {
        let r = scanner.scan_path(p);
        assert_ne!(r.verdict, Verdict::Error, "{r:?}");
        let s = r.score.unwrap();
        assert!((0.0..=1.0).contains(&s), "{r:?}");
        assert!(!r.reasons.is_empty() && r.reasons.len() <= 5, "{r:?}");
        assert_eq!(
            r.verdict == Verdict::Malicious,
            s >= threshold(model),
            "{r:?}"
        );
    }
    // no reasons asked, none computed
    let quiet = Scanner::builtin(ScanOptions {
        top: 0,
        ..ScanOptions::default()
    })
    .unwrap();
    assert!(quiet.scan_path(&pe).reasons.is_empty());
}

#[test]
fn bad_inputs_are_error_results_and_the_batch_goes_on() {
    let d = tmp("bad");
    let good = d.join("tiny.exe");
    std::fs::write(&good, mallard_pe::synth::tiny_pe32()).unwrap();
    let truncated = d.join("cut.exe");
    std::fs::write(&truncated, &mallard_pe::synth::tiny_pe32()[..100]).unwrap();
    let junk = d.join("junk.json");
    std::fs::write(&junk, b"{ not json").unwrap();
    let missing = d.join("missing.exe");
    let fifo = d.join("pipe.exe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());
    let mut files = vec![good.clone(), truncated, junk, missing];
    if made {
        files.push(fifo);
    }
    let scanner = Arc::new(Scanner::builtin(ScanOptions::default()).unwrap());
    let mut results = Vec::new();
    scan_batch(
        scanner,
        files.clone(),
        BatchOptions {
            threads: 2,
            per_file: Duration::from_secs(30),
        },
        &AtomicBool::new(false),
        &mut |i, r| results.push((i, r)),
    );
    results.sort_by_key(|(i, _)| *i);
    assert_eq!(results.len(), files.len(), "one result per input");
    assert_ne!(results[0].1.verdict, Verdict::Error, "{:?}", results[0].1);
    for (i, r) in &results[1..] {
        assert_eq!(r.verdict, Verdict::Error, "{i}: {r:?}");
        let e = r.error.as_deref().unwrap_or_default();
        assert!(
            !e.is_empty() && !e.contains('\n'),
            "{i}: one-line error: {e:?}"
        );
    }
}

/// No file of ../shared/data/pe-benign is flagged by the built-in PE model (none was
/// trained on; README gives the same figure).
#[test]
#[ignore = "data: reads ../shared/data"]
fn pe_benign_is_not_flagged_through_the_library() {
    let dir = shared().join("data/pe-benign");
    let scanner = Scanner::builtin(ScanOptions::default()).unwrap();
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if !mallard_io::starts_like_pe(&p).unwrap_or(false) {
            continue;
        }
        let r = scanner.scan_path(&p);
        assert_eq!(r.verdict, Verdict::Benign, "{r:?}");
        n += 1;
    }
    assert_eq!(n, 217);
}

/// A Cuckoo 2 report of one process making `calls` in order.
fn report_of(path: &std::path::Path, calls: &[&str]) {
    let calls: Vec<serde_json::Value> = calls
        .iter()
        .map(|a| serde_json::json!({"api": a, "arguments": {}}))
        .collect();
    let r = serde_json::json!({
        "info": {"version": "2.0.7"},
        "behavior": {"processes": [{"pid": 4, "process_name": "x.exe", "calls": calls}]}
    });
    std::fs::write(path, r.to_string()).unwrap();
}

/// The same behaviour as Cuckoo logs it (names of the built-in model's MalBehavD vocabulary)
/// and as CAPE logs it (other layers, other spellings), call for call.
const CUCKOO_STYLE: [&str; 16] = [
    "LdrLoadDll",
    "LdrGetProcedureAddress",
    "CreateProcessInternalW",
    "WriteProcessMemory",
    "NtProtectVirtualMemory",
    "NtUnmapViewOfSection",
    "GetSystemTimeAsFileTime",
    "SHGetFolderPathW",
    "CopyFileW",
    "DeleteFileW",
    "connect",
    "HttpOpenRequestW",
    "RegSetValueExW",
    "NtClose",
    "NtDelayExecution",
    "NtTerminateProcess",
];
const CAPE_STYLE: [&str; 16] = [
    "LoadLibraryExW",
    "LdrGetProcedureAddressForCaller",
    "CreateProcessA",
    "NtWriteVirtualMemory",
    "VirtualProtectEx",
    "NtUnmapViewOfSectionEx",
    "NtQuerySystemTime",
    "SHGetKnownFolderPath",
    "CopyFileExW",
    "DeleteFileA",
    "ConnectEx",
    "WinHttpOpenRequest",
    "RegSetValueExW",
    "ZwClose",
    "SleepEx",
    "NtTerminateProcess",
];

#[test]
fn a_report_written_cape_style_scores_like_the_same_report_cuckoo_style() {
    let d = tmp("styles");
    let scanner = Scanner::builtin(ScanOptions::default()).unwrap();
    let (cuckoo, cape) = (d.join("cuckoo.json"), d.join("cape.json"));
    // Calls repeat and interleave as in a real trace.
    let twice = |names: &[&'static str]| -> Vec<&'static str> {
        names.iter().chain(names.iter().rev()).copied().collect()
    };
    report_of(&cuckoo, &twice(&CUCKOO_STYLE));
    report_of(&cape, &twice(&CAPE_STYLE));
    let a = scanner.scan_path(&cuckoo);
    let b = scanner.scan_path(&cape);
    assert_ne!(a.verdict, Verdict::Error, "{a:?}");
    assert_eq!(a.score, b.score, "{a:?}\n{b:?}");
    assert_eq!(a.verdict, b.verdict);
    assert_eq!(a.reasons, b.reasons);
    let (na, nb) = (a.api_names.unwrap(), b.api_names.unwrap());
    assert_eq!((na.known, na.mapped, na.unseen), (16, 0, 0), "{na:?}");
    // Two CAPE names are Cuckoo's too (RegSetValueExW, NtTerminateProcess).
    assert_eq!((nb.known, nb.mapped, nb.unseen), (2, 14, 0), "{nb:?}");
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    assert_eq!(
        b.warnings,
        ["14 of 16 distinct API names were read as the model's name for the same call"]
    );
    // JSON: the old keys as they were, the counts added.
    let j = serde_json::to_value(&b).unwrap();
    for k in ["path", "verdict", "score", "reasons", "calls", "warnings"] {
        assert!(j.get(k).is_some(), "{k} missing: {j}");
    }
    assert_eq!(
        j["api_names"],
        serde_json::json!({"distinct": 16, "known": 2, "mapped": 14, "unseen": 0})
    );
}

#[test]
fn foreign_names_do_not_move_the_score() {
    let d = tmp("foreign");
    let scanner = Scanner::builtin(ScanOptions::default()).unwrap();
    let plain = d.join("plain.json");
    report_of(&plain, &CAPE_STYLE);
    let base = scanner.scan_path(&plain);
    assert_ne!(base.verdict, Verdict::Error, "{base:?}");
    // Made-up names and real CAPE calls with no name in the model's vocabulary, in growing
    // numbers and anywhere in the trace.
    let real = ["memcpy", "NtWaitForSingleObject", "srand", "__anomaly__"];
    for n in [1usize, 10, 100, 1000] {
        let made_up: Vec<String> = (0..n).map(|i| format!("ZzMadeUpApi{i:04}W")).collect();
        let mut calls: Vec<&str> = Vec::new();
        for (i, c) in CAPE_STYLE.iter().enumerate() {
            calls.push(c);
            calls.extend(
                made_up
                    .iter()
                    .skip(i)
                    .step_by(CAPE_STYLE.len())
                    .map(String::as_str),
            );
        }
        calls.extend(real);
        let p = d.join(format!("noisy{n}.json"));
        report_of(&p, &calls);
        let r = scanner.scan_path(&p);
        assert_eq!(r.score, base.score, "{n} foreign names: {r:?}");
        assert_eq!(r.verdict, base.verdict);
        assert_eq!(r.reasons, base.reasons);
        let c = r.api_names.unwrap();
        assert_eq!(
            (c.known, c.mapped, c.unseen),
            (2, 14, n + real.len()),
            "{c:?}"
        );
        assert_eq!(
            r.warnings,
            [format!(
                "{} of {} distinct API names were never seen in training; 14 more were read as the model's name for the same call",
                n + 4,
                n + 20
            )]
        );
    }
    // Only foreign names: an error, not a guess.
    let p = d.join("only.json");
    report_of(&p, &real);
    let r = scanner.scan_path(&p);
    assert_eq!(r.verdict, Verdict::Error);
    assert!(r.error.unwrap().contains("known to the model"));
}

/// A one-file scan reads its file and runs the rules on `prepare`'s rules thread; the result
/// must be what the same file gets when it is one of two inputs (read and ruled during the
/// scan), and the pre-read must serve that one scan only.
#[test]
fn a_one_file_scan_rules_its_file_early_with_the_same_result() {
    use mallard_scan::setup::{prepare, Plan};
    let d = tmp("prescan");
    let pe = d.join("tiny.exe");
    std::fs::write(&pe, mallard_pe::synth::tiny_pe32()).unwrap();
    let rules = d.join("early.yar");
    // Both hold for any PE file: the MZ magic at 0 and the "PE\0\0" signature.
    std::fs::write(
        &rules,
        "rule starts_mz : malicious { condition: uint16(0) == 0x5A4D }\n\
         rule has_pe_signature { strings: $s = { 50 45 00 00 } condition: $s }\n",
    )
    .unwrap();
    let plan = Plan {
        models: Vec::new(),
        rules: vec![rules],
        builtin_rules: false,
        allow: None,
        deny: None,
        walk: Default::default(),
    };
    let caps = mallard_io::Caps::default();
    let json = |r: &mallard_scan::ScanResult| serde_json::to_string(r).unwrap();
    let (one, errors) = prepare(
        &plan,
        std::slice::from_ref(&pe),
        ScanOptions::default(),
        &caps,
    )
    .unwrap();
    assert!(errors.is_empty());
    let early = one.scan_path(&pe);
    assert_eq!(early.verdict, Verdict::Malicious);
    assert_eq!(early.decided_by, "rules");
    assert_eq!(early.rules.len(), 2, "{:?}", early.rules);
    assert!(early.rules[0].ends_with(":starts_mz"), "{:?}", early.rules);
    assert!(
        early.rules[1].ends_with(":has_pe_signature"),
        "{:?}",
        early.rules
    );
    let (two, _) = prepare(
        &plan,
        &[pe.clone(), pe.clone()],
        ScanOptions::default(),
        &caps,
    )
    .unwrap();
    assert_eq!(json(&early), json(&two.scan_path(&pe)));
    // The second scan of the path reads it again: a changed file is seen as it is now.
    std::fs::write(&pe, b"MZ but not a PE file").unwrap();
    let again = one.scan_path(&pe);
    assert_ne!(json(&early), json(&again));
    assert_eq!(json(&again), json(&two.scan_path(&pe)));
}

/// The built-in PE model's .NET specialist: on a .NET assembly the scan's score is
/// `sigmoid(logit(pe) + intercept + weight x logit(dotnet))` with each model's score taken
/// from the built-in models themselves and the two numbers from `models/default-dotnet.json`;
/// on a native file it is the PE model's score alone. A user's model gets no specialist.
#[test]
#[ignore = "data: reads ../shared/data"]
fn the_builtin_dotnet_specialist_adds_to_the_pe_model_on_net_files_only() {
    use mallard_model::stack::logit;
    use mallard_pefeatures::{extract, FeatureSet};
    let dir = shared().join("data/pe-benign");
    let params: serde_json::Value = serde_json::from_str(builtin::DOTNET_STACKING).unwrap();
    let (a, b) = (
        params["intercept"].as_f64().unwrap(),
        params["weight"].as_f64().unwrap(),
    );
    let score = |name: &str, set: FeatureSet, bytes: &[u8]| {
        let m = builtin::load(name).unwrap().unwrap();
        let names = mallard_pefeatures::names(set);
        let v = extract(set, bytes).unwrap();
        let row: Vec<f32> = (m.meta().feature_names.iter())
            .map(|c| names.iter().position(|n| n == c).map_or(f32::NAN, |i| v[i]))
            .collect();
        m.predict_proba(&[mallard_model::Input::Features(&row)])
            .unwrap()[1]
    };
    let scanner = Scanner::builtin(ScanOptions::default()).unwrap();
    let (mut net, mut native) = (0, 0);
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "dll" && x != "exe") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        let pe = score("pe", FeatureSet::EmberV2Hardened, &bytes);
        let r = scanner.scan_path(&p);
        let inside = extract(FeatureSet::Dotnet, &bytes).unwrap()[1] != 0.0;
        let want = if inside {
            net += 1;
            let d = score("dotnet", FeatureSet::Dotnet, &bytes);
            let z = logit(pe) as f64 + a + b * logit(d) as f64;
            let named = r
                .reasons
                .iter()
                .any(|x| x.name.starts_with(".NET metadata model scores"))
                || r.reasons.iter().any(|x| x.name.starts_with("[.NET]"));
            assert!(named || r.reasons.len() == 5, "{r:?}");
            (1.0 / (1.0 + (-z).exp())) as f32
        } else {
            native += 1;
            pe
        };
        let got = r.score.unwrap();
        assert!(
            (got - want).abs() < 1e-5,
            "{}: {got} vs {want}",
            p.display()
        );
    }
    assert!(net >= 5 && native >= 100, "{net} .NET, {native} native");
    // The same model given as a file is a user's model: no specialist.
    let user = Scanner::new(
        None,
        Some(builtin::load("pe").unwrap().unwrap()),
        ScanOptions::default(),
    )
    .unwrap();
    let p = dir.join("pythonnet__Python.Runtime.dll");
    let pe = score(
        "pe",
        FeatureSet::EmberV2Hardened,
        &std::fs::read(&p).unwrap(),
    );
    assert!((user.scan_path(&p).score.unwrap() - pe).abs() < 1e-6);
}
