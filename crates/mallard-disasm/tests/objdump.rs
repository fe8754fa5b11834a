//! The walk against GNU objdump (an independent disassembler) on every x86/x64 file of
//! `shared/data/pe-benign`: each instruction we reach in an executable section should start
//! where objdump's linear sweep has an instruction, with the same mnemonic (up to naming
//! conventions listed in `normalise`). Data-backed (`--ignored`): fails, naming what is
//! missing, without objdump or the data (never passes without running).

use mallard_disasm::{walk, Caps};
use mallard_pe::Pe;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// objdump's address -> mnemonic (prefixes such as `rep`, `lock`, `bnd`, `notrack` and
/// segment or size overrides dropped).
fn objdump(path: &std::path::Path) -> Option<HashMap<u64, String>> {
    let out = Command::new("objdump")
        .args(["-d", "-M", "intel", "--no-show-raw-insn", "-w"])
        .arg(path)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut map = HashMap::new();
    for line in text.lines() {
        let Some((addr, rest)) = line.trim_start().split_once(":\t") else {
            continue;
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            continue;
        };
        const PREFIXES: &[&str] = &[
            "rep", "repz", "repe", "repnz", "repne", "lock", "bnd", "notrack", "data16", "data32",
            "addr16", "addr32", "cs", "ds", "es", "fs", "gs", "ss", "rex", "rex.w", "rex.b",
            "rex.x", "rex.r", "xacquire", "xrelease",
        ];
        let m = rest
            .split_whitespace()
            .find(|t| !PREFIXES.contains(t) && !t.starts_with("rex."))
            .unwrap_or("");
        map.insert(addr, m.to_string());
    }
    Some(map)
}

/// The same instruction under iced-x86's name and objdump's Intel-syntax name.
fn normalise(iced: &str) -> &str {
    match iced {
        // String instructions: objdump names them without the size when it prints operands.
        "movsb" | "movsw" | "movsq" => "movs",
        "stosb" | "stosw" | "stosd" | "stosq" => "stos",
        "lodsb" | "lodsw" | "lodsd" | "lodsq" => "lods",
        "scasb" | "scasw" | "scasd" | "scasq" => "scas",
        "cmpsb" | "cmpsw" | "cmpsq" => "cmps",
        "insb" | "insw" | "insd" => "ins",
        "outsb" | "outsw" | "outsd" => "outs",
        "xlatb" => "xlat",
        "pushad" => "pusha",
        "popad" => "popa",
        "pushfd" => "pushf",
        "popfd" => "popf",
        "iretd" => "iret",
        "wait" => "fwait",
        other => other,
    }
}

fn agrees(iced: &str, objdump: &str) -> bool {
    let n = normalise(iced);
    n == objdump
        // movsd and cmpsd are both string and SSE instructions.
        || (iced == "movsd" && (objdump == "movs" || objdump == "movsd"))
        || (iced == "cmpsd" && (objdump == "cmps" || objdump == "cmpsd"))
        // GNU's name for mov with a 64-bit immediate or absolute address.
        || (iced == "mov" && objdump == "movabs")
        // 66 90 and the like: objdump prints the exchange, iced the nop it is.
        || (iced == "nop" && objdump == "xchg")
        // objdump's `ret`/`retf` with an immediate or size suffixes in 64-bit code.
        || (iced == "ret" && objdump.starts_with("ret"))
        || (iced == "retf" && (objdump == "lret" || objdump.starts_with("retf")))
}

#[test]
#[ignore = "data-backed: needs ../shared and GNU objdump"]
fn walk_agrees_with_objdump_on_pe_benign() {
    let dir = shared().join("data/pe-benign");
    assert!(dir.is_dir(), "needs {}", dir.display());
    assert!(
        Command::new("objdump").arg("--version").output().is_ok(),
        "needs GNU objdump (Debian's binutils)"
    );
    let caps = Caps {
        max_time: None,
        ..Caps::default()
    };
    let (mut files, mut ours, mut found, mut same) = (0, 0usize, 0usize, 0usize);
    let mut mismatches: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md" && e != "tsv"))
        .collect();
    paths.sort();
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(pe) = Pe::parse(&bytes) else { continue };
        let Ok(code) = walk(&pe, &caps) else { continue };
        let Some(theirs) = objdump(&path) else {
            continue;
        };
        files += 1;
        let base = pe.optional.image_base;
        for (i, m) in code.instructions.iter().zip(code.mnemonics()) {
            if !i.in_executable {
                continue;
            }
            ours += 1;
            if let Some(t) = theirs.get(&(base + u64::from(i.rva))) {
                found += 1;
                if agrees(m, t) {
                    same += 1;
                } else {
                    *mismatches.entry((m.to_string(), t.clone())).or_default() += 1;
                }
            }
        }
    }
    let mut worst: Vec<_> = mismatches.into_iter().collect();
    worst.sort_by_key(|b| std::cmp::Reverse(b.1));
    eprintln!(
        "{files} files: {ours} instructions reached in executable sections, {found} at an \
         instruction start of objdump's sweep ({:.2}%), same mnemonic {same} ({:.3}%); \
         most frequent differences: {:?}",
        100.0 * found as f64 / ours.max(1) as f64,
        100.0 * same as f64 / found.max(1) as f64,
        &worst[..worst.len().min(15)]
    );
    assert!(files >= 150, "only {files} files compared");
    assert!(found as f64 >= 0.95 * ours as f64);
    assert!(same as f64 >= 0.999 * found as f64);
}
