//! Parity of the EMBER2024 PEFormatWarnings group (and pefile's parse/no-parse decision) with
//! pefile 2024.8.26 as thrember runs it.
//!
//! * pe-benign: ../shared/baselines/ember2024_reference/pe-benign.vectors.jsonl (raw warnings,
//!   outcome, vector indices 2480..2568).
//! * mutants: truncated / bit-flipped pe-benign files, rebuilt from the specs in
//!   tests/data/ember3_warnings_mutants.jsonl (reference made with pefile 2024.8.26).
//! * malware: tests/data/ember3_warnings_malware.jsonl; the samples are read from
//!   `MALLARD_MALWARE_DIR` (files named by sha256, as in pe-corpus/malware-small.zip) when set.
//!
//! Run: cargo test --release -p mallard-pefeatures --test ember3_warnings -- --ignored --nocapture
//! `MALLARD_WARN_DUMP=file` writes our outcome per file (JSON lines) for diffing.

use std::io::Write;
use std::path::PathBuf;

use mallard_pefeatures::ember3::warnings::{normalize, pefile_parse, vector, PefileParse};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn read_jsonl(p: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn warn_hash(w: &[String]) -> String {
    let h = Sha256::digest(w.join("\n").as_bytes());
    h.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn dump() -> Option<std::fs::File> {
    std::env::var_os("MALLARD_WARN_DUMP").map(|p| std::fs::File::create(p).expect("dump file"))
}

fn record(f: &mut Option<std::fs::File>, key: Value, r: &PefileParse) {
    if let Some(f) = f {
        let v = match r {
            PefileParse::NotPe(m) => json!({"key": key, "parsed": false, "error": m}),
            PefileParse::Parsed { warnings } => {
                json!({"key": key, "parsed": true, "warnings": warnings})
            }
        };
        writeln!(f, "{v}").expect("write dump");
    }
}

/// Compares one outcome with a compact reference row (parsed, n, sha, norm).
/// Returns (outcome agrees, warnings agree).
fn check_compact(r: &PefileParse, refr: &Value) -> (bool, bool) {
    let parsed = refr["parsed"].as_bool();
    match r {
        PefileParse::NotPe(_) => (parsed == Some(false), parsed == Some(false)),
        PefileParse::Parsed { warnings } => {
            if parsed != Some(true) {
                return (false, false);
            }
            let same = refr["sha"].as_str() == Some(&warn_hash(warnings))
                && refr["n"].as_u64() == Some(warnings.len() as u64);
            let norm = normalize(warnings);
            let rn: Vec<String> = refr["norm"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (true, same && norm == rn)
        }
    }
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn ember3_warnings_parity_on_pe_benign() {
    let root = shared();
    let refs = read_jsonl(&root.join("baselines/ember2024_reference/pe-benign.vectors.jsonl"));
    let manifest = std::fs::read_to_string(root.join("data/pe-benign/MANIFEST.tsv"))
        .expect("pe-benign manifest");
    let names: Vec<&str> = manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .filter(|n| !n.is_empty())
        .collect();
    let mut out = dump();
    let (mut n, mut outcome_ok, mut warn_ok, mut vec_ok) = (0, 0, 0, 0);
    for name in &names {
        let r = refs
            .iter()
            .find(|r| r["path"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name}: no reference row"));
        let bytes = std::fs::read(root.join("data/pe-benign").join(name)).expect("read sample");
        let got = pefile_parse(&bytes);
        record(&mut out, json!(name), &got);
        n += 1;
        let ref_parsed = r["pe_parsed"].as_bool() == Some(true);
        let (ours, warnings) = match &got {
            PefileParse::Parsed { warnings } => (true, warnings.clone()),
            PefileParse::NotPe(_) => (false, Vec::new()),
        };
        if ours == ref_parsed {
            outcome_ok += 1;
        } else {
            eprintln!("{name}: outcome ours={got:?} ref={}", r["pe_error"]);
        }
        let ref_w: Vec<String> = r["pefile_warnings"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if ref_w == warnings {
            warn_ok += 1;
        } else {
            let ours_only: Vec<_> = warnings.iter().filter(|w| !ref_w.contains(w)).collect();
            let ref_only: Vec<_> = ref_w.iter().filter(|w| !warnings.contains(w)).collect();
            eprintln!("{name}: warnings differ; ours only {ours_only:?}; ref only {ref_only:?}");
        }
        let v = vector(&normalize(&warnings));
        let rv = r["vector"].as_array().expect("vector");
        let same = (0..88).all(|i| rv[2480 + i].as_f64().map(|x| x as f32) == Some(v[i]));
        if same {
            vec_ok += 1;
        } else {
            eprintln!("{name}: vector 2480..2568 differs");
        }
    }
    println!(
        "ember3 warnings pe-benign: {n} files, outcome {outcome_ok}/{n}, raw warnings {warn_ok}/{n}, vector {vec_ok}/{n}"
    );
    assert_eq!(outcome_ok, n);
    assert_eq!(warn_ok, n);
    assert_eq!(vec_ok, n);
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn ember3_warnings_parity_on_mutants() {
    let root = shared();
    let refs = read_jsonl(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ember3_warnings_mutants.jsonl"),
    );
    let mut out = dump();
    let (mut n, mut outcome_ok, mut warn_ok) = (0, 0, 0);
    let mut cache: Option<(String, Vec<u8>)> = None;
    for r in &refs {
        let src = r["src"].as_str().expect("src").to_string();
        if cache.as_ref().is_none_or(|(s, _)| *s != src) {
            let b = std::fs::read(root.join("data/pe-benign").join(&src)).expect("read source");
            cache = Some((src.clone(), b));
        }
        let Some((_, orig)) = &cache else { continue };
        let mut b = orig.clone();
        let spec = &r["spec"];
        if let Some(t) = spec["truncate"].as_u64() {
            b.truncate(t as usize);
        } else {
            for f in spec["flips"].as_array().expect("flips") {
                let o = f[0].as_u64().expect("offset") as usize;
                b[o] ^= f[1].as_u64().expect("mask") as u8;
            }
        }
        let got = pefile_parse(&b);
        record(&mut out, json!({"src": src, "spec": spec}), &got);
        n += 1;
        let (o, w) = check_compact(&got, r);
        outcome_ok += o as usize;
        warn_ok += w as usize;
        if !w {
            eprintln!("mutant {src} {spec}: ours {got:?}");
        }
    }
    println!(
        "ember3 warnings mutants: {n} files, outcome {outcome_ok}/{n}, raw warnings {warn_ok}/{n}"
    );
    assert_eq!(outcome_ok, n);
    assert!(
        warn_ok * 100 >= n * 99,
        "raw warnings agree on {warn_ok}/{n}"
    );
}

#[test]
#[ignore = "data: reads MALLARD_MALWARE_DIR"]
fn ember3_warnings_parity_on_malware() {
    // .ci/run unzips the corpus and sets this; a run without it fails rather than passing
    // without having looked at a file.
    let dir = std::env::var_os("MALLARD_MALWARE_DIR").expect("set MALLARD_MALWARE_DIR");
    let dir = PathBuf::from(dir);
    let refs = read_jsonl(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/ember3_warnings_malware.jsonl"),
    );
    let mut out = dump();
    let (mut n, mut outcome_ok, mut warn_ok, mut norm_ok) = (0, 0, 0, 0);
    for r in &refs {
        let sha = r["sha256"].as_str().expect("sha256");
        let Ok(b) = std::fs::read(dir.join(format!("{sha}.bin"))) else {
            continue;
        };
        let got = pefile_parse(&b);
        record(&mut out, json!(sha), &got);
        n += 1;
        let (o, w) = check_compact(&got, r);
        outcome_ok += o as usize;
        warn_ok += w as usize;
        if let PefileParse::Parsed { warnings } = &got {
            let rn: Vec<String> = r["norm"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            norm_ok += (normalize(warnings) == rn) as usize;
        }
        if !w {
            eprintln!("malware {sha}: differs");
        }
    }
    println!(
        "ember3 warnings malware: {n} files, outcome {outcome_ok}/{n}, raw warnings {warn_ok}/{n}, normalised {norm_ok}/{n}"
    );
    assert_eq!(outcome_ok, n);
    assert!(
        warn_ok * 100 >= n * 99,
        "raw warnings agree on {warn_ok}/{n}"
    );
}
