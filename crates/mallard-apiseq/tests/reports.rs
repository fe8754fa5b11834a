//! Hand-written reports in tests/data with hand-computed expectations.

use mallard_apiseq::{read_report, CallSource, Flavor, ReadError, ReportOptions};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn v(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

#[test]
fn cuckoo2_processes_and_time_merge() {
    let r = read_report(&data("cuckoo2_small.json"), &ReportOptions::default()).unwrap();
    assert_eq!(r.flavor, Flavor::Cuckoo);
    assert_eq!(r.version.as_deref(), Some("2.0.7"));
    assert_eq!(r.target_name.as_deref(), Some("a.exe"));
    assert_eq!(r.sha256.as_deref(), Some(&"a".repeat(64)[..]));
    assert_eq!(r.family_hint, None);
    assert_eq!(
        r.source,
        CallSource::Calls,
        "calls exist, so apistats must not be used"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    // Three processes, the third without calls; nested "api" keys in arguments are not calls.
    assert_eq!(r.processes.len(), 3);
    let p = &r.processes[0];
    assert_eq!(
        (p.pid, p.name.as_deref(), p.path.as_deref()),
        (100, Some("a.exe"), Some("C:\\Temp\\a.exe"))
    );
    assert_eq!(
        r.process_apis(0),
        v(&["NtCreateFile", "NtWriteFile", "NtClose", "LdrLoadDll"])
    );
    assert_eq!(r.processes[1].pid, 200);
    assert_eq!(
        r.process_apis(1),
        v(&[
            "RegOpenKeyExW",
            "NtClose",
            "CreateProcessInternalW",
            "NtTerminateProcess"
        ])
    );
    assert_eq!((r.processes[2].pid, r.processes[2].calls.len()), (300, 0));
    assert_eq!(r.call_count(), 8);
    // Times: a 10, 12, 12, 15.5; b 11, 12, 14, 20. The three calls at t=12 keep process order.
    assert_eq!(
        r.sequence(),
        v(&[
            "NtCreateFile",
            "RegOpenKeyExW",
            "NtWriteFile",
            "NtClose",
            "NtClose",
            "CreateProcessInternalW",
            "LdrLoadDll",
            "NtTerminateProcess"
        ])
    );
}

#[test]
fn cuckoo1_string_timestamps_merge_and_repeated() {
    let r = read_report(&data("cuckoo1_small.json"), &ReportOptions::default()).unwrap();
    assert_eq!(r.flavor, Flavor::Cuckoo1);
    assert_eq!(r.version.as_deref(), Some("1.2"));
    assert_eq!(
        r.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        vec![252, 312]
    );
    assert_eq!(r.processes[1].name.as_deref(), Some("WScript.exe"));
    assert_eq!(
        r.process_apis(0),
        v(&["LdrLoadDll", "NtOpenFile", "NtClose"])
    );
    // .433 a, .500 b, .980 a, .999 b, 27.001 b, 27.010 a
    let merged = v(&[
        "LdrLoadDll",
        "LdrGetDllHandle",
        "NtOpenFile",
        "NtAllocateVirtualMemory",
        "NtFreeVirtualMemory",
        "NtClose",
    ]);
    assert_eq!(r.sequence(), merged);

    let opts = ReportOptions {
        expand_repeated: true,
        ..ReportOptions::default()
    };
    let r = read_report(&data("cuckoo1_small.json"), &opts).unwrap();
    assert_eq!(
        r.process_apis(0),
        v(&[
            "LdrLoadDll",
            "NtOpenFile",
            "NtOpenFile",
            "NtOpenFile",
            "NtClose"
        ])
    );
    assert_eq!(r.call_count(), 8);
}

#[test]
fn cape_gzip_detected_by_magic_with_family() {
    for name in ["cape_small.json.gz", "cape_gzip_without_gz_name.json"] {
        let r = read_report(&data(name), &ReportOptions::default()).unwrap();
        assert_eq!(r.flavor, Flavor::Cape, "{name}");
        assert_eq!(r.version.as_deref(), Some("2.4-CAPE"));
        assert_eq!(r.family_hint.as_deref(), Some("SunCrypt"));
        assert_eq!(r.sha256.as_deref(), Some(&"c".repeat(64)[..]));
        assert_eq!(
            r.processes[0].path.as_deref(),
            Some("C:\\Users\\u\\AppData\\Local\\Temp\\evil.exe")
        );
        assert_eq!(r.processes[1].pid, 576);
        // evil 14.015, 15.300, 16.000; svchost 15.450, 15.999, 16.000 (tie: evil first)
        let merged = v(&[
            "NtDelayExecution",
            "CreateProcessInternalW",
            "NtClose",
            "NtCreateSection",
            "NtTerminateProcess",
            "NtMapViewOfSection",
        ]);
        assert_eq!(r.sequence(), merged);
    }
}

#[test]
fn cape22_detection_string_not_malfamily_tag() {
    let r = read_report(
        &data("cape22_detection_string.json"),
        &ReportOptions::default(),
    )
    .unwrap();
    assert_eq!(r.flavor, Flavor::Cape);
    assert_eq!(r.family_hint.as_deref(), Some("QakBot"));
    assert_eq!(r.sequence(), v(&["GetSystemTimeAsFileTime"]));
}

#[test]
fn apistats_fallback_keeps_counts() {
    let r = read_report(&data("apistats_only.json"), &ReportOptions::default()).unwrap();
    assert_eq!(r.source, CallSource::ApiStats);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.contains("calls not logged; using behavior.apistats (order lost)")));
    assert_eq!(r.processes.len(), 2);
    assert_eq!(r.processes[0].name.as_deref(), Some("p.exe"));
    // Most frequent first, ties by name.
    let p0 = v(&[
        "LdrLoadDll",
        "LdrLoadDll",
        "LdrLoadDll",
        "NtClose",
        "NtClose",
        "NtOpenFile",
        "NtOpenFile",
    ]);
    assert_eq!(r.process_apis(0), p0);
    assert_eq!(r.processes[1].pid, 1400);
    assert_eq!(r.process_apis(1), v(&["Sleep"]));
    let mut seq = p0.clone();
    seq.push("Sleep".into());
    assert_eq!(r.sequence(), seq);
}

#[test]
fn max_calls_keeps_first_calls_in_file_order() {
    let opts = ReportOptions {
        max_calls: 5,
        ..ReportOptions::default()
    };
    let r = read_report(&data("cuckoo2_small.json"), &opts).unwrap();
    assert_eq!(r.processes[0].calls.len(), 4);
    assert_eq!(r.process_apis(1), v(&["RegOpenKeyExW"]));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("kept the first 5 of 8")),
        "{:?}",
        r.warnings
    );
    assert_eq!(
        r.sequence(),
        v(&[
            "NtCreateFile",
            "RegOpenKeyExW",
            "NtWriteFile",
            "NtClose",
            "LdrLoadDll"
        ])
    );
}

#[test]
fn truncated_json_reports_position() {
    let err = read_report(&data("truncated.json"), &ReportOptions::default()).unwrap_err();
    let text = std::fs::read_to_string(data("truncated.json")).unwrap();
    let last_line = text.rsplit('\n').next().unwrap();
    match &err {
        ReadError::Json {
            line, column, msg, ..
        } => {
            assert_eq!(*line, text.matches('\n').count() + 1);
            assert_eq!(*column, last_line.len());
            assert!(msg.contains("EOF"), "{msg}");
        }
        other => panic!("expected a JSON error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(
        shown.contains("truncated.json") && shown.contains("malformed JSON at line 11"),
        "{shown}"
    );
    assert!(!shown.contains('\n'));
}

#[test]
fn no_behavior_and_no_calls_errors() {
    let err = read_report(&data("no_behavior.json"), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReadError::NoBehavior { .. }));
    assert!(err.to_string().ends_with(
        "no_behavior.json: report has no behavior section (static-only or non-Windows analysis?)"
    ));
    let err = read_report(&data("empty_processes.json"), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReadError::NoCalls { .. }));
    assert!(err
        .to_string()
        .ends_with("empty_processes.json: no API calls recorded"));
}

#[test]
fn unexpected_types_are_skipped_with_warnings() {
    let r = read_report(&data("odd_types.json"), &ReportOptions::default()).unwrap();
    assert_eq!(r.version, None);
    assert_eq!(r.sha256, None);
    assert_eq!(r.family_hint, None);
    assert_eq!(r.processes.len(), 2);
    assert_eq!(r.processes[0].pid, 77);
    assert_eq!(r.process_apis(0), v(&["NtClose", "NtOpenKey"]));
    assert_eq!(
        (r.processes[1].pid, r.processes[1].name.as_deref()),
        (0, Some("nopid.exe"))
    );
    assert_eq!(r.sequence(), v(&["NtClose", "NtOpenKey"]));
    let w = r.warnings.join(" | ");
    assert!(
        w.contains("skipped 4 call records without an 'api' name"),
        "{w}"
    );
    assert!(w.contains("skipped 1 entries of behavior.processes"), "{w}");
    assert!(w.contains("1 processes have no pid"), "{w}");
}

#[test]
fn expected_flavor_mismatch_warns_but_reads() {
    let opts = ReportOptions {
        expect: Some(Flavor::Cape),
        ..ReportOptions::default()
    };
    let r = read_report(&data("cuckoo2_small.json"), &opts).unwrap();
    assert_eq!(r.flavor, Flavor::Cuckoo);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("expected a CAPE report")),
        "{:?}",
        r.warnings
    );
    // Cuckoo 1.x is a kind of Cuckoo report: no warning.
    let opts = ReportOptions {
        expect: Some(Flavor::Cuckoo),
        ..ReportOptions::default()
    };
    assert!(read_report(&data("cuckoo1_small.json"), &opts)
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn max_bytes_limits_decompressed_size() {
    let opts = ReportOptions {
        max_bytes: 1000,
        ..ReportOptions::default()
    };
    // The gzip file is 729 bytes but inflates past 1000.
    let err = read_report(&data("cape_small.json.gz"), &opts).unwrap_err();
    assert!(
        matches!(err, ReadError::TooLarge { limit: 1000, .. }),
        "{err:?}"
    );
    let opts = ReportOptions {
        max_bytes: 1 << 20,
        ..ReportOptions::default()
    };
    assert_eq!(
        read_report(&data("cape_small.json.gz"), &opts)
            .unwrap()
            .call_count(),
        6
    );
}

#[test]
fn missing_file_is_io_error_naming_it() {
    let err = read_report(&data("does_not_exist.json"), &ReportOptions::default()).unwrap_err();
    assert!(matches!(err, ReadError::Io { .. }));
    assert!(err.to_string().contains("does_not_exist.json: cannot read"));
}

#[test]
fn compact_views_agree_with_the_full_sequence() {
    for name in [
        "cuckoo2_small.json",
        "cuckoo1_small.json",
        "apistats_only.json",
    ] {
        let r = read_report(&data(name), &ReportOptions::default()).unwrap();
        let seq = r.sequence();
        // The ids map back to the same names.
        let by_id: Vec<String> = r
            .sequence_ids()
            .iter()
            .map(|&i| r.api_names()[i as usize].clone())
            .collect();
        assert_eq!(by_id, seq, "{name}");
        // Distinct in order of first use, computed here the obvious way.
        let mut want: Vec<&str> = Vec::new();
        for a in &seq {
            if !want.contains(&a.as_str()) {
                want.push(a);
            }
        }
        assert_eq!(r.distinct_apis(), want, "{name}");
        let mut runs = seq.clone();
        runs.dedup();
        assert_eq!(r.collapsed_sequence(), runs, "{name}");
        // Each distinct name is stored once.
        let mut names = r.api_names().to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), r.api_names().len(), "{name}");
    }
}
