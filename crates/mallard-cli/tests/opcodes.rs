//! Sequence models over opcodes (`--dataset opcodes:DIR`): trained, evaluated and scanned
//! with, end to end, on tiny PE files whose code is hand-assembled (two styles of code).

mod common;
use common::mallard;

use mallard_pe::synth::{off, set_u32, tiny_pe32};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The tiny PE with `code` at its entry point (RVA 0x1000, file 0x200), no exports.
fn pe_with_code(path: &Path, code: &[u8]) {
    let mut b = tiny_pe32();
    b[0x200..0x400].fill(0xcc);
    b[0x200..0x200 + code.len()].copy_from_slice(code);
    set_u32(&mut b, off::DATA_DIRECTORIES, 0);
    std::fs::write(path, b).unwrap();
}

/// "Malicious" code: a xor-decoding loop (xor, inc, loop); "benign": a stack frame and
/// calls. `i` varies the padding so no two files are the same.
fn code(malicious: bool, i: usize) -> Vec<u8> {
    let mut c = vec![0x90; i % 4]; // nops
    if malicious {
        // mov ecx, 16; l: xor byte [esi], 0x5a; inc esi; loop l; ret
        c.extend([0xb9, 0x10, 0, 0, 0, 0x80, 0x36, 0x5a, 0x46, 0xe2, 0xfa, 0xc3]);
    } else {
        // push ebp; mov ebp, esp; sub esp, 8; mov eax, [ebp+8]; leave; ret
        c.extend([0x55, 0x8b, 0xec, 0x83, 0xec, 0x08, 0x8b, 0x45, 0x08, 0xc9, 0xc3]);
    }
    c
}

fn corpus(d: &Path) -> PathBuf {
    let root = d.join("corpus");
    for (label, mal) in [("malicious", true), ("benign", false)] {
        std::fs::create_dir_all(root.join(label)).unwrap();
        for i in 0..12 {
            pe_with_code(&root.join(label).join(format!("{i}.exe")), &code(mal, i));
        }
    }
    root
}

#[test]
fn ngram_model_trains_evaluates_and_scans_on_opcode_sequences() {
    let d = common::tmp_in("mallard-opcodes", "ngram");
    let root = corpus(&d);
    let model = d.join("op.mallard");
    let ds = format!("opcodes:{}", root.display());
    let out =
        mallard(&["train", "--model", "ngram", "--dataset", &ds, "--out", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = mallard(&["inspect", model.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["feature_set"], "opcodes", "{meta}");

    let report = d.join("eval.json");
    let out = mallard(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &ds,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["accuracy"].as_f64(), Some(1.0), "{r}");

    // A scan reads the PE file's code with the same walk.
    let fresh = d.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    pe_with_code(&fresh.join("decoder.exe"), &code(true, 5));
    pe_with_code(&fresh.join("frame.exe"), &code(false, 6));
    let out =
        mallard(&["scan", "--json", "--model", model.to_str().unwrap(), fresh.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let verdicts: Vec<(String, String)> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (v["path"].as_str().unwrap().to_string(), v["verdict"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(verdicts.len(), 2, "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for (path, verdict) in verdicts {
        let want = if path.ends_with("decoder.exe") { "malicious" } else { "benign" };
        assert_eq!(verdict, want, "{path}: {text}");
    }

    // An opcode model refuses API-call data, with a message naming both.
    let api = d.join("api.jsonl");
    std::fs::write(&api, r#"{"id": "a", "label": "benign", "apis": ["NtClose"]}"#).unwrap();
    let out = mallard(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &format!("jsonl:{}", api.display()),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("API calls") && err.contains("opcode sequences"), "{err}");
}
