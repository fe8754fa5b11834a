//! Parity of the EMBER2024 (thrember) Authenticode group with thrember's own outputs
//! (features.py @ 0ef753e + signify 0.7.1) on the pe-benign corpus:
//! ../shared/baselines/ember2024_reference/pe-benign.{raw,vectors}.jsonl.
//!
//! Run: cargo test --release -p mallard-pefeatures --test ember3_authenticode -- --ignored --nocapture

use std::collections::HashMap;
use std::path::PathBuf;

use mallard_pefeatures::ember3::authenticode::{authenticode, Authenticode};
use serde_json::Value;

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

/// FILE_HEADER.TimeDateStamp (the reference files all parse as PE).
fn coff_timestamp(d: &[u8]) -> u32 {
    let at = |o: usize| u32::from_le_bytes([d[o], d[o + 1], d[o + 2], d[o + 3]]);
    at(at(0x3c) as usize + 8)
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn authenticode_parity_on_pe_benign() {
    let root = shared();
    let refdir = root.join("baselines/ember2024_reference");
    let raws = read_jsonl(&refdir.join("pe-benign.raw.jsonl"));
    let vectors = read_jsonl(&refdir.join("pe-benign.vectors.jsonl"));
    let raw_by_sha: HashMap<String, &Value> = raws
        .iter()
        .map(|r| (r["sha256"].as_str().expect("sha256").to_string(), r))
        .collect();
    let vec_by_path: HashMap<String, &Value> = vectors
        .iter()
        .map(|v| (v["path"].as_str().expect("path").to_string(), v))
        .collect();

    let data = root.join("data/pe-benign");
    let manifest = std::fs::read_to_string(data.join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let (mut files, mut raw_ok, mut vec_ok, mut signed) = (0, 0, 0, 0);
    let mut bad = Vec::new();
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, sha) = (cols[0], cols[1]);
        let bytes = std::fs::read(data.join(name)).expect("file");
        files += 1;
        let got = authenticode(&bytes, coff_timestamp(&bytes));
        if got.num_certs > 0 {
            signed += 1;
        }
        let want: Authenticode =
            serde_json::from_value(raw_by_sha[sha]["authenticode"].clone()).expect("raw object");
        // Times compare exactly as f64: both sides are integer microseconds / 1e6.
        if got == want {
            raw_ok += 1;
        } else {
            bad.push(format!("{name}: raw got {got:?} want {want:?}"));
        }
        let v = vec_by_path[name]["vector"].as_array().expect("vector");
        let want_v: Vec<f32> = v[2472..2480]
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        let got_v = got.vector();
        if got_v
            .iter()
            .zip(&want_v)
            .all(|(a, b)| a.to_bits() == b.to_bits())
        {
            vec_ok += 1;
        } else {
            bad.push(format!("{name}: vector got {got_v:?} want {want_v:?}"));
        }
    }
    println!(
        "ember3 authenticode: {raw_ok}/{files} raw objects exact, {vec_ok}/{files} vectors \
         bit-exact ({signed} signed files)"
    );
    for b in &bad {
        println!("  {b}");
    }
    assert!(files >= 217, "only {files} files in the manifest");
    assert!(bad.is_empty(), "{} mismatches", bad.len());
}
