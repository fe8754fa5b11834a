//! The CLR metadata reader against dnfile 0.18.0 (an independent Python reader): the same
//! version string, table row counts, TypeRefs, MemberRefs (parent and name), P/Invoke imports,
//! AssemblyRefs and MethodDefs (RVA and name), compared as digests of one text dump per file
//! (tests/data/clr_dnfile.tsv, made by tests/data/dnfile_dump.py; no sample is stored).
//!
//! Run: cargo test --release -p mallard-pe --test clr_dnfile -- --ignored
//! (the malware half needs MALLARD_MALWARE_DIR: pe-corpus/malware-small.zip unzipped, as
//! `.ci/run` does.)

use mallard_pe::clr::{table as t, ClrError, Metadata};
use mallard_pe::Pe;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

/// The dump dnfile_dump.py prints, line for line.
fn dump(bytes: &[u8]) -> Vec<String> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let Ok(pe) = Pe::parse(bytes) else {
        return vec!["ERR\tPEFormatError".into()];
    };
    let md = match Metadata::read(&pe) {
        Ok(m) => m,
        Err(ClrError::Absent | ClrError::Header(_) | ClrError::Metadata(_)) => {
            return vec!["NOMD".into()]
        }
    };
    let mut out = vec![format!("V\t{}", md.version)];
    let Some(tb) = &md.tables else {
        out.push("NOTABLES".into());
        return out;
    };
    let name = |table, r, col| s(md.string(tb.cell(table, r, col).unwrap_or(u32::MAX)));
    let rows: Vec<String> = (0..0x2D).map(|i| tb.rows(i).to_string()).collect();
    out.push(format!("R\t{}", rows.join(",")));
    for r in 1..=tb.rows(t::TYPE_REF) {
        out.push(format!(
            "TR\t{}\t{}",
            name(t::TYPE_REF, r, 2),
            name(t::TYPE_REF, r, 1)
        ));
    }
    for r in 1..=tb.rows(t::MEMBER_REF) {
        let (pt, pr) = tb
            .coded(t::MEMBER_REF, r, 0)
            .map_or((-1, 0), |(a, b)| (a as i64, b));
        out.push(format!("MR\t{pt}\t{pr}\t{}", name(t::MEMBER_REF, r, 1)));
    }
    for r in 1..=tb.rows(t::IMPL_MAP) {
        let module = tb
            .cell(t::IMPL_MAP, r, 3)
            .and_then(|m| tb.cell(t::MODULE_REF, m, 0))
            .map(|i| s(md.string(i)))
            .unwrap_or_default();
        out.push(format!("IM\t{module}\t{}", name(t::IMPL_MAP, r, 2)));
    }
    for r in 1..=tb.rows(t::ASSEMBLY_REF) {
        out.push(format!("AR\t{}", name(t::ASSEMBLY_REF, r, 6)));
    }
    for r in 1..=tb.rows(t::METHOD_DEF) {
        let rva = tb.cell(t::METHOD_DEF, r, 0).unwrap_or(0);
        out.push(format!("MD\t{rva}\t{}", name(t::METHOD_DEF, r, 3)));
    }
    out
}

fn digest(lines: &[String]) -> String {
    let mut h = Sha256::new();
    for l in lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// (key, digest, lines) of the reference.
fn reference() -> Vec<(String, String, usize)> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/clr_dnfile.tsv");
    std::fs::read_to_string(p)
        .expect("tests/data/clr_dnfile.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().expect("lines"),
            )
        })
        .collect()
}

fn check(prefix: &str, path_of: impl Fn(&str) -> PathBuf) -> usize {
    let mut n = 0;
    let mut bad = Vec::new();
    for (key, want, lines) in reference() {
        let Some(rest) = key.strip_prefix(prefix) else {
            continue;
        };
        let p = path_of(rest);
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        let got = dump(&bytes);
        n += 1;
        if digest(&got) != want {
            bad.push(format!("{key}: {} lines, dnfile {lines}", got.len()));
        }
    }
    assert!(bad.is_empty(), "differs from dnfile:\n{}", bad.join("\n"));
    n
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn clr_metadata_reads_as_dnfile_on_benign_files() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pe-benign");
    let n = check("benign/", |name| dir.join(name));
    assert_eq!(n, 10);
}

#[test]
#[ignore = "data: needs MALLARD_MALWARE_DIR (set by .ci/run)"]
fn clr_metadata_reads_as_dnfile_on_malware() {
    let dir =
        PathBuf::from(std::env::var_os("MALLARD_MALWARE_DIR").expect("set MALLARD_MALWARE_DIR"));
    let n = check("malware/", |sha| dir.join(format!("{sha}.bin")));
    assert_eq!(n, 186);
}
