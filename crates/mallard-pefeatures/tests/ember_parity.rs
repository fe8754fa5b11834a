//! Parity with EMBER's own outputs (elastic/ember features.py @ d97a0b5 + lief 0.12.3) on the
//! pe-benign corpus: ../shared/baselines/ember_reference/pe-benign/*.jsonl.
//!
//! Run: cargo test --release -p mallard-pefeatures -- --ignored --nocapture

use std::collections::BTreeMap;
use std::path::PathBuf;

use mallard_pefeatures::ember::GROUPS;
use mallard_pefeatures::{ember_raw, ember_vectorize};
use serde_json::Value;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Vector entries agree when equal (NaN = NaN) or within 1e-5 (relative above magnitude 1).
fn agree(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-5 * b.abs().max(1.0)
}

fn read_jsonl(p: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// JSON values equal, floats within 1e-9 relative (LIEF computes section entropy with long
/// double; EMBER's string entropy uses numpy's float32 log2).
fn json_close(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= tol * y.abs().max(1.0)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q, tol))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w, tol)))
        }
        _ => a == b,
    }
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn ember_v2_parity_on_pe_benign() {
    let root = shared();
    let refdir = root.join("baselines/ember_reference/pe-benign");
    let raws = read_jsonl(&refdir.join("pe-benign.raw.jsonl"));
    let vecs = read_jsonl(&refdir.join("pe-benign.vectors.jsonl"));
    let vec_by_path: BTreeMap<String, &Value> = vecs
        .iter()
        .map(|v| (v["path"].as_str().unwrap_or("").to_string(), v))
        .collect();
    assert_eq!(raws.len(), 217, "reference lines");

    let raw_keys = [
        "sha256",
        "histogram",
        "byteentropy",
        "strings",
        "general",
        "header",
        "section",
        "imports",
        "exports",
        "datadirectories",
    ];
    let mut raw_agree: BTreeMap<&str, usize> = BTreeMap::new();
    let mut raw_exact: BTreeMap<&str, usize> = BTreeMap::new();
    // per group: (files fully agreeing, entries agreeing, entries bit-identical, entries total)
    let mut grp: BTreeMap<&str, (usize, usize, usize, usize)> = BTreeMap::new();
    let mut files_all = 0usize;
    let mut files_vec_from_ref_raw = 0usize;
    let (mut ent_ok, mut ent_tot) = (0usize, 0usize);
    let mut report = Vec::new();
    for r in &raws {
        let name = r["path"].as_str().expect("path").to_string();
        let bytes =
            std::fs::read(root.join("data/pe-benign").join(&name)).expect("read corpus file");
        let ours = ember_raw(&bytes).expect("ember_raw");
        for k in raw_keys {
            if ours[k] == r[k] {
                *raw_exact.entry(k).or_default() += 1;
            }
            // strings.entropy is a float32 computed with numpy's own (AVX-512) log2: allow a
            // few float32 ulps there; elsewhere 1e-9 relative (LIEF's long-double entropy).
            let tol = if k == "strings" { 1e-6 } else { 1e-9 };
            if json_close(&ours[k], &r[k], tol) {
                *raw_agree.entry(k).or_default() += 1;
            } else if report.len() < 40 {
                let a = ours[k].to_string();
                let b = r[k].to_string();
                report.push(format!(
                    "{name}: raw '{k}' differs\n   ours {}\n   ref  {}",
                    &a[..a.len().min(600)],
                    &b[..b.len().min(600)]
                ));
            }
        }
        let refv: Vec<f32> = vec_by_path[&name]["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().expect("float") as f32)
            .collect();
        assert_eq!(refv.len(), 2381);
        // Vectorizing EMBER's own raw object must give EMBER's vector.
        let from_ref_raw = ember_vectorize(r).expect("vectorize reference raw");
        if from_ref_raw.iter().zip(&refv).all(|(a, b)| agree(*a, *b)) {
            files_vec_from_ref_raw += 1;
        } else if report.len() < 40 {
            let bad: Vec<usize> = (0..2381)
                .filter(|&i| !agree(from_ref_raw[i], refv[i]))
                .take(8)
                .collect();
            report.push(format!(
                "{name}: vectorize(reference raw) differs at {bad:?}"
            ));
        }
        let v = ember_vectorize(&ours).expect("vectorize");
        let mut file_ok = true;
        for (g, start, w) in GROUPS {
            let e = grp.entry(g).or_default();
            let mut all = true;
            for i in start..start + w {
                let ok = agree(v[i], refv[i]);
                all &= ok;
                e.1 += usize::from(ok);
                e.2 += usize::from(
                    v[i].to_bits() == refv[i].to_bits() || (v[i].is_nan() && refv[i].is_nan()),
                );
                e.3 += 1;
                ent_ok += usize::from(ok);
                ent_tot += 1;
            }
            e.0 += usize::from(all);
            file_ok &= all;
            if !all && report.len() < 40 {
                let bad: Vec<String> = (start..start + w)
                    .filter(|&i| !agree(v[i], refv[i]))
                    .take(5)
                    .map(|i| format!("[{i}] {} vs {}", v[i], refv[i]))
                    .collect();
                report.push(format!("{name}: vector group {g}: {}", bad.join(", ")));
            }
        }
        files_all += usize::from(file_ok);
    }
    let n = raws.len();
    println!("\nEMBER v2 parity on pe-benign ({n} files)");
    for line in &report {
        println!("{line}");
    }
    println!("\n| raw key | files equal (tolerance) | files identical |");
    println!("|---|---|---|");
    for k in raw_keys {
        println!(
            "| {k} | {}/{n} | {}/{n} |",
            raw_agree.get(k).copied().unwrap_or(0),
            raw_exact.get(k).copied().unwrap_or(0)
        );
    }
    println!("\n| vector group | files fully agreeing | entries agreeing (1e-5) | entries bit-identical |");
    println!("|---|---|---|---|");
    for (g, _, _) in GROUPS {
        let (f, e, b, t) = grp[g];
        println!(
            "| {g} | {f}/{n} ({:.1}%) | {:.4}% | {:.4}% |",
            100.0 * f as f64 / n as f64,
            100.0 * e as f64 / t as f64,
            100.0 * b as f64 / t as f64
        );
    }
    let share = ent_ok as f64 / ent_tot as f64;
    println!(
        "| all | {files_all}/{n} ({:.1}%) | {:.4}% | |",
        100.0 * files_all as f64 / n as f64,
        100.0 * share
    );
    println!("vectorize(EMBER raw) == EMBER vector: {files_vec_from_ref_raw}/{n} files");

    for g in ["histogram", "byteentropy", "strings"] {
        assert_eq!(grp[g].0, n, "group {g} must agree on every file");
    }
    for k in raw_keys {
        assert_eq!(
            raw_agree.get(k).copied().unwrap_or(0),
            n,
            "raw '{k}' must agree on every file"
        );
    }
    assert!(
        share >= 0.99,
        "only {:.4}% of vector entries agree",
        100.0 * share
    );
    assert_eq!(
        files_vec_from_ref_raw, n,
        "vectorizing EMBER's raw objects must reproduce EMBER's vectors"
    );
}

/// The kind read back from EMBER's own vectors matches the kind in EMBER's raw objects
/// (machine, DLL flag, CLR header), for every pe-benign file.
#[test]
#[ignore = "data: reads ../shared/data"]
fn kind_from_vector_matches_raw_object() {
    use mallard_pefeatures::ember::kind::{KindColumns, KINDS};
    let refdir = shared().join("baselines/ember_reference/pe-benign");
    let raws = read_jsonl(&refdir.join("pe-benign.raw.jsonl"));
    let vecs = read_jsonl(&refdir.join("pe-benign.vectors.jsonl"));
    let vec_by_path: BTreeMap<&str, &Value> = vecs
        .iter()
        .map(|v| (v["path"].as_str().unwrap_or(""), v))
        .collect();
    let cols = KindColumns::find(&mallard_pefeatures::ember::names()).expect("ember columns");
    let mut seen = BTreeMap::new();
    for r in &raws {
        let coff = &r["header"]["coff"];
        let bits = match coff["machine"].as_str().unwrap_or("") {
            "I386" => "32-bit",
            "AMD64" | "ARM64" => "64-bit",
            _ => "other",
        };
        let clr = r["datadirectories"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|d| d["name"] == "CLR_RUNTIME_HEADER" && d["size"].as_u64().unwrap_or(0) > 0);
        let dll = coff["characteristics"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c == "DLL");
        let want = format!(
            "{bits} {}",
            if clr {
                ".net"
            } else if dll {
                "dll"
            } else {
                "exe"
            }
        );
        let path = r["path"].as_str().expect("path");
        let v: Vec<f32> = vec_by_path[path]["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().expect("float") as f32)
            .collect();
        assert_eq!(KINDS[cols.kind(&v)], want, "{path}");
        *seen.entry(want).or_insert(0) += 1;
    }
    eprintln!("kinds: {seen:?}");
    assert!(seen.len() >= 5, "the corpus covers several kinds: {seen:?}");
}
