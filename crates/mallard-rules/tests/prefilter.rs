//! `may_match_builtin` against yara-x itself: a file it rules out must never match a built-in
//! rule. Every shared PE file (pe-benign, and the malware corpus unzipped into
//! `MALLARD_MALWARE_DIR` by .ci/run), each also edited to match a rule (a UPX section name,
//! the entry point moved into the headers). Data-backed (`--ignored`): fails without the
//! data, never passes without running.

use mallard_rules::{may_match_builtin, BUILTIN};
use std::path::PathBuf;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// The section table's first entry and the optional header's entry point field, when the
/// file has them.
fn layout(d: &[u8]) -> Option<(usize, usize)> {
    let pe = u32::from_le_bytes(d.get(0x3c..0x40)?.try_into().ok()?) as usize;
    if d.get(pe..pe + 4)? != b"PE\0\0" {
        return None;
    }
    let opt_size = u16::from_le_bytes(d.get(pe + 20..pe + 22)?.try_into().ok()?) as usize;
    let table = pe + 24 + opt_size;
    d.get(table..table + 40)?;
    Some((table, pe + 24 + 16))
}

#[test]
#[ignore = "data: reads shared/data/pe-benign and MALLARD_MALWARE_DIR (set by .ci/run)"]
fn the_prefilter_never_rules_out_a_file_yara_x_matches() {
    let mut compiler = yara_x::Compiler::new();
    compiler.new_namespace("mallard");
    compiler.add_source(BUILTIN).unwrap();
    let rules = compiler.build();
    let mut scanner = yara_x::Scanner::new(&rules);
    let mut files = files_in(&shared().join("data/pe-benign"));
    let malware = std::env::var_os("MALLARD_MALWARE_DIR").expect("set MALLARD_MALWARE_DIR");
    files.extend(files_in(&PathBuf::from(malware)));
    assert!(files.len() > 1500, "{} files", files.len());
    let (mut checked, mut ruled_out, mut matched) = (0usize, 0usize, [0usize; 3]);
    let mut by_rule = std::collections::BTreeMap::<String, usize>::new();
    let mut check = |name: String, d: &[u8], kind: usize| {
        let hits: Vec<String> = scanner
            .scan(d)
            .unwrap()
            .matching_rules()
            .map(|r| r.identifier().to_string())
            .collect();
        let may = may_match_builtin(d);
        assert!(
            may || hits.is_empty(),
            "{name}: ruled out, but yara-x matches {hits:?}"
        );
        checked += 1;
        matched[kind] += usize::from(!hits.is_empty());
        for h in hits {
            *by_rule.entry(h).or_default() += 1;
        }
        ruled_out += usize::from(!may);
    };
    let eicar = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    check("EICAR".into(), eicar, 0);
    for f in &files {
        let d = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        check(name.clone(), &d, 0);
        let Some((table, entry)) = layout(&d) else {
            continue;
        };
        let mut upx = d.clone();
        upx[table..table + 8].copy_from_slice(b"UPX0\0\0\0\0");
        check(format!("{name} (first section UPX0)"), &upx, 1);
        let mut headers = d.clone();
        headers[entry..entry + 4].copy_from_slice(&0x10u32.to_le_bytes());
        check(format!("{name} (entry point in the headers)"), &headers, 2);
    }
    eprintln!(
        "{checked} files and edits, {ruled_out} ruled out without yara-x; yara-x matched \
         {} originals, {} UPX edits, {} entry edits; by rule {by_rule:?}",
        matched[0], matched[1], matched[2]
    );
    // Every rule matched somewhere, so each of the prefilter's tests was put to the proof.
    assert_eq!(by_rule.len(), 5, "{by_rule:?}");
    // The edits must actually make yara-x match, or the check above proves little.
    assert!(matched[1] > 1000 && matched[2] > 1000, "{matched:?}");
    // And the prefilter must be worth having: most plain files are ruled out.
    assert!(
        ruled_out * 4 > files.len(),
        "{ruled_out} of {}",
        files.len()
    );
}
