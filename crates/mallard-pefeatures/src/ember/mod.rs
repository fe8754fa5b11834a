//! EMBER feature version 2 (elastic/ember `features.py` @ d97a0b5 with lief 0.12.3):
//! the raw JSON object and the 2,381-float vector.

pub(crate) mod entropy_table;
pub mod explain;
pub mod kind;
mod lief_ordinals;

use mallard_pe::{Pe, PeError};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::bytes::{
    byte_histograms_chunked, np_normalize_f32, range_counts, string_stats, ByteStats, ChunkCounts,
    StringStats,
};
use crate::hasher::{hash_pairs, hash_strings};
use crate::FeatureError;

/// Vector length.
pub const DIM: usize = 2381;

/// Feature groups in vector order: (name, first column, width).
pub const GROUPS: [(&str, usize, usize); 9] = [
    ("histogram", 0, 256),
    ("byteentropy", 256, 256),
    ("strings", 512, 104),
    ("general", 616, 10),
    ("header", 626, 62),
    ("section", 688, 255),
    ("imports", 943, 1280),
    ("exports", 2223, 128),
    ("datadirectories", 2351, 30),
];

const DATA_DIRECTORY_NAMES: [&str; 16] = [
    "EXPORT_TABLE",
    "IMPORT_TABLE",
    "RESOURCE_TABLE",
    "EXCEPTION_TABLE",
    "CERTIFICATE_TABLE",
    "BASE_RELOCATION_TABLE",
    "DEBUG",
    "ARCHITECTURE",
    "GLOBAL_PTR",
    "TLS_TABLE",
    "LOAD_CONFIG_TABLE",
    "BOUND_IMPORT",
    "IAT",
    "DELAY_IMPORT_DESCRIPTOR",
    "CLR_RUNTIME_HEADER",
    "RESERVED",
];

/// LIEF 0.12.3 Python enum names (`str(enum).split('.')[-1]`; `???` for values pybind11
/// does not know).
const MACHINES: [(u16, &str); 23] = [
    (0xffff, "INVALID"),
    (0x0, "UNKNOWN"),
    (0x1d3, "AM33"),
    (0x8664, "AMD64"),
    (0x1c0, "ARM"),
    (0x1c4, "ARMNT"),
    (0xaa64, "ARM64"),
    (0xebc, "EBC"),
    (0x14c, "I386"),
    (0x200, "IA64"),
    (0x9041, "M32R"),
    (0x266, "MIPS16"),
    (0x366, "MIPSFPU"),
    (0x466, "MIPSFPU16"),
    (0x1f0, "POWERPC"),
    (0x1f1, "POWERPCFP"),
    (0x166, "R4000"),
    (0x1a2, "SH3"),
    (0x1a3, "SH3DSP"),
    (0x1a6, "SH4"),
    (0x1a8, "SH5"),
    (0x1c2, "THUMB"),
    (0x169, "WCEMIPSV2"),
];

fn machine_name(v: u16) -> &'static str {
    MACHINES
        .iter()
        .find(|(k, _)| *k == v)
        .map_or("???", |(_, n)| n)
}

const SUBSYSTEMS: [(u16, &str); 14] = [
    (0, "UNKNOWN"),
    (1, "NATIVE"),
    (2, "WINDOWS_GUI"),
    (3, "WINDOWS_CUI"),
    (5, "OS2_CUI"),
    (7, "POSIX_CUI"),
    (8, "NATIVE_WINDOWS"),
    (9, "WINDOWS_CE_GUI"),
    (10, "EFI_APPLICATION"),
    (11, "EFI_BOOT_SERVICE_DRIVER"),
    (12, "EFI_RUNTIME_DRIVER"),
    (13, "EFI_ROM"),
    (14, "XBOX"),
    (16, "WINDOWS_BOOT_APPLICATION"),
];

fn subsystem_name(v: u16) -> &'static str {
    SUBSYSTEMS
        .iter()
        .find(|(k, _)| *k == v)
        .map_or("???", |(_, n)| n)
}

const HEADER_CHARACTERISTICS: [(u64, &str); 15] = [
    (0x1, "RELOCS_STRIPPED"),
    (0x2, "EXECUTABLE_IMAGE"),
    (0x4, "LINE_NUMS_STRIPPED"),
    (0x8, "LOCAL_SYMS_STRIPPED"),
    (0x10, "AGGRESSIVE_WS_TRIM"),
    (0x20, "LARGE_ADDRESS_AWARE"),
    (0x80, "BYTES_REVERSED_LO"),
    (0x100, "CHARA_32BIT_MACHINE"),
    (0x200, "DEBUG_STRIPPED"),
    (0x400, "REMOVABLE_RUN_FROM_SWAP"),
    (0x800, "NET_RUN_FROM_SWAP"),
    (0x1000, "SYSTEM"),
    (0x2000, "DLL"),
    (0x4000, "UP_SYSTEM_ONLY"),
    (0x8000, "BYTES_REVERSED_HI"),
];

const DLL_CHARACTERISTICS: [(u64, &str); 11] = [
    (0x20, "HIGH_ENTROPY_VA"),
    (0x40, "DYNAMIC_BASE"),
    (0x80, "FORCE_INTEGRITY"),
    (0x100, "NX_COMPAT"),
    (0x200, "NO_ISOLATION"),
    (0x400, "NO_SEH"),
    (0x800, "NO_BIND"),
    (0x1000, "APPCONTAINER"),
    (0x2000, "WDM_DRIVER"),
    (0x4000, "GUARD_CF"),
    (0x8000, "TERMINAL_SERVER_AWARE"),
];

const SECTION_CHARACTERISTICS: [(u64, &str); 35] = [
    (0x8, "TYPE_NO_PAD"),
    (0x20, "CNT_CODE"),
    (0x40, "CNT_INITIALIZED_DATA"),
    (0x80, "CNT_UNINITIALIZED_DATA"),
    (0x100, "LNK_OTHER"),
    (0x200, "LNK_INFO"),
    (0x800, "LNK_REMOVE"),
    (0x1000, "LNK_COMDAT"),
    (0x8000, "GPREL"),
    (0x10000, "MEM_PURGEABLE"),
    (0x20000, "MEM_16BIT"),
    (0x40000, "MEM_LOCKED"),
    (0x80000, "MEM_PRELOAD"),
    (0x100000, "ALIGN_1BYTES"),
    (0x200000, "ALIGN_2BYTES"),
    (0x300000, "ALIGN_4BYTES"),
    (0x400000, "ALIGN_8BYTES"),
    (0x500000, "ALIGN_16BYTES"),
    (0x600000, "ALIGN_32BYTES"),
    (0x700000, "ALIGN_64BYTES"),
    (0x800000, "ALIGN_128BYTES"),
    (0x900000, "ALIGN_256BYTES"),
    (0xa00000, "ALIGN_512BYTES"),
    (0xb00000, "ALIGN_1024BYTES"),
    (0xc00000, "ALIGN_2048BYTES"),
    (0xd00000, "ALIGN_4096BYTES"),
    (0xe00000, "ALIGN_8192BYTES"),
    (0x1000000, "LNK_NRELOC_OVFL"),
    (0x2000000, "MEM_DISCARDABLE"),
    (0x4000000, "MEM_NOT_CACHED"),
    (0x8000000, "MEM_NOT_PAGED"),
    (0x10000000, "MEM_SHARED"),
    (0x20000000, "MEM_EXECUTE"),
    (0x40000000, "MEM_READ"),
    (0x80000000, "MEM_WRITE"),
];

/// Iteration order of a CPython 3.11 `set` built by adding small non-negative ints (hash =
/// value) in the given order: pybind11 turns LIEF's `std::set` of flags into such a set.
pub fn python_set_order(values: &[u64]) -> Vec<u64> {
    const PERTURB_SHIFT: u32 = 5;
    const LINEAR_PROBES: usize = 9;
    fn insert(table: &mut [Option<u64>], v: u64) {
        let mask = table.len() - 1;
        let mut perturb = v;
        let mut i = (v as usize) & mask;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in 0..=probes {
                if let Some(slot) = table.get_mut(i + j) {
                    if slot.is_none() {
                        *slot = Some(v);
                        return;
                    }
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i
                .wrapping_mul(5)
                .wrapping_add(1)
                .wrapping_add(perturb as usize))
                & mask;
        }
    }
    let mut table: Vec<Option<u64>> = vec![None; 8];
    let mut used = 0usize;
    for &v in values {
        if table.contains(&Some(v)) {
            continue;
        }
        insert(&mut table, v);
        used += 1;
        let mask = table.len() - 1;
        if used * 5 >= mask * 3 {
            let minused = if used > 50000 { used * 2 } else { used * 4 };
            let mut newsize = 8usize;
            while newsize <= minused {
                newsize <<= 1;
            }
            let old = std::mem::replace(&mut table, vec![None; newsize]);
            for v in old.into_iter().flatten() {
                insert(&mut table, v);
            }
        }
    }
    table.into_iter().flatten().collect()
}

fn flag_names(value: u64, table: &[(u64, &'static str)]) -> Vec<Value> {
    let mut set: Vec<u64> = table
        .iter()
        .filter(|(f, _)| value & f != 0)
        .map(|(f, _)| *f)
        .collect();
    set.sort_unstable();
    set.dedup();
    python_set_order(&set)
        .into_iter()
        .filter_map(|f| {
            table
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, n)| Value::from(*n))
        })
        .collect()
}

/// LIEF's Python string conversion (`safe_string_converter`): ASCII with backslashreplace.
pub fn lief_str(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c < 0x80 {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn ordinal_resolvable(lib: &str, ordinal: u16) -> bool {
    let lower = lib.to_ascii_lowercase();
    lief_ordinals::LIEF_ORDINAL_TABLES
        .iter()
        .find(|(n, _)| *n == lower)
        .is_some_and(|(_, ranges)| ranges.iter().any(|&(a, b)| a <= ordinal && ordinal <= b))
}

fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in d.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn strings_json(bs: &ByteStats) -> Value {
    let st = &bs.strings;
    let printables: u64 = st.printabledist.iter().sum();
    json!({
        "numstrings": st.numstrings,
        "avlength": if st.numstrings == 0 { json!(0) } else { json!(st.avlength()) },
        "printabledist": st.printabledist.to_vec(),
        "printables": printables,
        "entropy": f64::from(st.entropy()),
        "paths": st.paths,
        "urls": st.urls,
        "registry": st.registry,
        "MZ": st.mz,
    })
}

/// EMBER's raw feature object for `bytes` (keys sha256, histogram, byteentropy, strings,
/// general, header, section, imports, exports, datadirectories). Files LIEF cannot parse get
/// EMBER's defaults for the PE-based groups, as in EMBER.
pub fn raw_features(bytes: &[u8]) -> Result<Value, FeatureError> {
    raw_features_with(bytes, true)
}

/// Inputs from this size on have their two passes over every byte run side by side.
const TWO_THREADS_FROM: usize = 1 << 20;

/// The byte histograms (with the 1 KiB chunk counts) and the string statistics. On a large
/// input the strings pass runs on a second thread: the two passes are independent and about
/// equally long, and a large file's wait is what a scanning daemon's slowest replies are
/// made of; a small input is not worth a thread's start.
fn both_passes(bytes: &[u8]) -> (([u64; 256], [u64; 256], ChunkCounts), StringStats) {
    if bytes.len() < TWO_THREADS_FROM {
        return (byte_histograms_chunked(bytes, true), string_stats(bytes));
    }
    std::thread::scope(|s| {
        let strings = std::thread::Builder::new()
            .name("mallard-strings".into())
            .spawn_scoped(s, || string_stats(bytes));
        let hist = byte_histograms_chunked(bytes, true);
        let strings = match strings {
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            // No thread to be had: the same pass here.
            Err(_) => string_stats(bytes),
        };
        (hist, strings)
    })
}

/// `raw_features`, optionally without the sha256 (the vector does not use it).
fn raw_features_with(bytes: &[u8], with_sha256: bool) -> Result<Value, FeatureError> {
    // The 1 KiB chunk counts the byte-entropy pass makes anyway give the sections'
    // byte counts (and so their entropies) without a second pass over their bytes.
    let ((histogram, byteentropy, chunks), strings) = both_passes(bytes);
    let bs = ByteStats {
        histogram,
        byteentropy,
        strings,
    };
    let pe = match Pe::parse(bytes) {
        Ok(p) => Some(p),
        Err(e @ PeError::TooLarge { .. }) => return Err(FeatureError::Pe(e)),
        Err(_) => None,
    };
    let mut obj = Map::new();
    if with_sha256 {
        obj.insert("sha256".into(), Value::from(sha256_hex(bytes)));
    }
    obj.insert("histogram".into(), json!(bs.histogram.to_vec()));
    obj.insert("byteentropy".into(), json!(bs.byteentropy.to_vec()));
    obj.insert("strings".into(), strings_json(&bs));
    match pe.as_ref() {
        None => {
            obj.insert(
                "general".into(),
                json!({"size": bytes.len(), "vsize": 0, "has_debug": 0, "exports": 0, "imports": 0,
                       "has_relocations": 0, "has_resources": 0, "has_signature": 0, "has_tls": 0,
                       "symbols": 0}),
            );
            obj.insert("header".into(), default_header());
            obj.insert("section".into(), json!({"entry": "", "sections": []}));
            obj.insert("imports".into(), json!({}));
            obj.insert("exports".into(), json!([]));
            obj.insert("datadirectories".into(), json!([]));
        }
        Some(pe) => pe_groups(pe, bytes, &chunks, &mut obj),
    }
    Ok(Value::Object(obj))
}

fn default_header() -> Value {
    json!({
        "coff": {"timestamp": 0, "machine": "", "characteristics": []},
        "optional": {
            "subsystem": "", "dll_characteristics": [], "magic": "",
            "major_image_version": 0, "minor_image_version": 0,
            "major_linker_version": 0, "minor_linker_version": 0,
            "major_operating_system_version": 0, "minor_operating_system_version": 0,
            "major_subsystem_version": 0, "minor_subsystem_version": 0,
            "sizeof_code": 0, "sizeof_headers": 0, "sizeof_heap_commit": 0
        }
    })
}

fn pe_groups(pe: &Pe<'_>, bytes: &[u8], chunks: &ChunkCounts, obj: &mut Map<String, Value>) {
    let imports = pe.lief_imports();
    let delay = pe.lief_delay_imports();
    let exports = pe.lief_exports();

    // general
    let mut n_imported = 0u64;
    for imp in &imports.imports {
        for e in &imp.entries {
            match e.ordinal {
                None => n_imported += 1,
                Some(o) => n_imported += u64::from(ordinal_resolvable(&imp.name, o)),
            }
        }
    }
    for imp in &delay.imports {
        n_imported += imp.entries.iter().filter(|e| e.ordinal.is_none()).count() as u64;
    }
    let export_names: Vec<Value> = exports
        .as_ref()
        .map(|e| {
            e.entries
                .iter()
                .filter(|x| !x.name.is_empty())
                .map(|x| Value::from(lief_str(&x.name)))
                .collect()
        })
        .unwrap_or_default();
    obj.insert(
        "general".into(),
        json!({
            "size": bytes.len(),
            "vsize": pe.lief_virtual_size(),
            "has_debug": u8::from(pe.lief_has_debug()),
            "exports": export_names.len(),
            "imports": n_imported,
            "has_relocations": u8::from(pe.lief_has_relocations()),
            "has_resources": u8::from(pe.lief_has_resources()),
            "has_signature": u8::from(pe.has_signature()),
            "has_tls": u8::from(pe.lief_has_tls()),
            "symbols": pe.lief_symbol_count(),
        }),
    );

    // header
    let o = &pe.optional;
    let magic = if pe.is_pe32_plus() {
        "PE32_PLUS"
    } else {
        "PE32"
    };
    obj.insert(
        "header".into(),
        json!({
            "coff": {
                "timestamp": pe.coff.time_date_stamp,
                "machine": machine_name(pe.coff.machine),
                "characteristics": flag_names(u64::from(pe.coff.characteristics), &HEADER_CHARACTERISTICS),
            },
            "optional": {
                "subsystem": subsystem_name(o.subsystem),
                "dll_characteristics": flag_names(u64::from(o.dll_characteristics), &DLL_CHARACTERISTICS),
                "magic": magic,
                "major_image_version": o.major_image_version,
                "minor_image_version": o.minor_image_version,
                "major_linker_version": o.major_linker_version,
                "minor_linker_version": o.minor_linker_version,
                "major_operating_system_version": o.major_operating_system_version,
                "minor_operating_system_version": o.minor_operating_system_version,
                "major_subsystem_version": o.major_subsystem_version,
                "minor_subsystem_version": o.minor_subsystem_version,
                "sizeof_code": o.size_of_code,
                "sizeof_headers": o.size_of_headers,
                "sizeof_heap_commit": o.size_of_heap_commit,
            }
        }),
    );

    // section
    let entry = pe
        .lief_entry_section()
        .and_then(|i| pe.sections.get(i))
        .map(|s| lief_str(s.name_bytes()));
    let sections: Vec<Value> = pe
        .sections
        .iter()
        .map(|s| {
            let r = s.lief_content_range(bytes.len());
            let ent = match bytes.get(r.clone()) {
                Some(b) => {
                    mallard_pe::entropy_from_counts(&range_counts(bytes, chunks, r), b.len() as u64)
                }
                None => 0.0,
            };
            json!({
                "name": lief_str(s.name_bytes()),
                "size": s.size_of_raw_data,
                "entropy": ent,
                "vsize": s.virtual_size,
                "props": flag_names(u64::from(s.characteristics), &SECTION_CHARACTERISTICS),
            })
        })
        .collect();
    obj.insert(
        "section".into(),
        json!({"entry": entry.unwrap_or_default(), "sections": sections}),
    );

    // imports
    let mut imap = Map::new();
    for imp in &imports.imports {
        let list = imap
            .entry(imp.name.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = list {
            for e in &imp.entries {
                match e.ordinal {
                    Some(n) => a.push(Value::from(format!("ordinal{n}"))),
                    None => a.push(Value::from(e.name.clone())),
                }
            }
        }
    }
    obj.insert("imports".into(), Value::Object(imap));
    obj.insert("exports".into(), Value::Array(export_names));

    let dd: Vec<Value> = pe
        .data_directories
        .iter()
        .zip(DATA_DIRECTORY_NAMES.iter())
        .map(|(d, n)| json!({"name": n, "size": d.size, "virtual_address": d.virtual_address}))
        .collect();
    obj.insert("datadirectories".into(), Value::Array(dd));
}

// ---------------------------------------------------------------------------------------
// Vectorization (process_raw_features)

fn bad(what: &str) -> FeatureError {
    FeatureError::Raw(format!("EMBER raw object: {what}"))
}

fn get<'v>(v: &'v Value, key: &str) -> Result<&'v Value, FeatureError> {
    v.get(key)
        .ok_or_else(|| bad(&format!("missing key '{key}'")))
}

fn num(v: &Value, key: &str) -> Result<f64, FeatureError> {
    get(v, key)?
        .as_f64()
        .ok_or_else(|| bad(&format!("'{key}' is not a number")))
}

fn arr<'v>(v: &'v Value, key: &str) -> Result<&'v Vec<Value>, FeatureError> {
    get(v, key)?
        .as_array()
        .ok_or_else(|| bad(&format!("'{key}' is not a list")))
}

fn string<'v>(v: &'v Value, key: &str) -> Result<&'v str, FeatureError> {
    get(v, key)?
        .as_str()
        .ok_or_else(|| bad(&format!("'{key}' is not a string")))
}

fn str_list<'v>(v: &'v Value, key: &str) -> Result<Vec<&'v str>, FeatureError> {
    arr(v, key)?
        .iter()
        .map(|x| {
            x.as_str()
                .ok_or_else(|| bad(&format!("'{key}' holds a non-string")))
        })
        .collect()
}

fn counts(v: &Value, key: &str, n: usize) -> Result<Vec<u64>, FeatureError> {
    let a = arr(v, key)?;
    if a.len() != n {
        return Err(bad(&format!(
            "'{key}' has {} entries, expected {n}",
            a.len()
        )));
    }
    a.iter()
        .map(|x| {
            x.as_u64()
                .or_else(|| x.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .ok_or_else(|| bad(&format!("'{key}' holds a non-count")))
        })
        .collect()
}

/// int -> float32 as numpy does for Python ints and float64 values (via float64).
#[inline]
fn f(x: f64) -> f32 {
    x as f32
}

/// EMBER's `process_raw_features`: the 2,381-float vector of a raw object (ours or one
/// read from an EMBER jsonl file).
pub fn vectorize(raw: &Value) -> Result<Vec<f32>, FeatureError> {
    let mut out: Vec<f32> = Vec::with_capacity(DIM);
    // ByteHistogram, ByteEntropyHistogram
    out.extend(np_normalize_f32(&counts(raw, "histogram", 256)?));
    out.extend(np_normalize_f32(&counts(raw, "byteentropy", 256)?));
    // StringExtractor
    let s = get(raw, "strings")?;
    let printables = num(s, "printables")?;
    let div = if printables > 0.0 { printables } else { 1.0 };
    out.push(f(num(s, "numstrings")?));
    out.push(f(num(s, "avlength")?));
    out.push(f(printables));
    for c in counts(s, "printabledist", 96)? {
        out.push(f(c as f64 / div));
    }
    for k in ["entropy", "paths", "urls", "registry", "MZ"] {
        out.push(f(num(s, k)?));
    }
    // GeneralFileInfo
    let g = get(raw, "general")?;
    for k in [
        "size",
        "vsize",
        "has_debug",
        "exports",
        "imports",
        "has_relocations",
        "has_resources",
        "has_signature",
        "has_tls",
        "symbols",
    ] {
        out.push(f(num(g, k)?));
    }
    // HeaderFileInfo
    let h = get(raw, "header")?;
    let coff = get(h, "coff")?;
    let opt = get(h, "optional")?;
    out.push(f(num(coff, "timestamp")?));
    let push_hashed = |out: &mut Vec<f32>, v: Vec<f64>| out.extend(v.into_iter().map(f));
    push_hashed(&mut out, hash_strings([string(coff, "machine")?], 10));
    push_hashed(
        &mut out,
        hash_strings(str_list(coff, "characteristics")?, 10),
    );
    push_hashed(&mut out, hash_strings([string(opt, "subsystem")?], 10));
    push_hashed(
        &mut out,
        hash_strings(str_list(opt, "dll_characteristics")?, 10),
    );
    push_hashed(&mut out, hash_strings([string(opt, "magic")?], 10));
    for k in [
        "major_image_version",
        "minor_image_version",
        "major_linker_version",
        "minor_linker_version",
        "major_operating_system_version",
        "minor_operating_system_version",
        "major_subsystem_version",
        "minor_subsystem_version",
        "sizeof_code",
        "sizeof_headers",
        "sizeof_heap_commit",
    ] {
        out.push(f(num(opt, k)?));
    }
    // SectionInfo
    let sec = get(raw, "section")?;
    let sections = arr(sec, "sections")?;
    let entry = string(sec, "entry")?;
    struct S<'v> {
        name: &'v str,
        size: f64,
        entropy: f64,
        vsize: f64,
        props: Vec<&'v str>,
    }
    let ss: Vec<S<'_>> = sections
        .iter()
        .map(|s| {
            Ok(S {
                name: string(s, "name")?,
                size: num(s, "size")?,
                entropy: num(s, "entropy")?,
                vsize: num(s, "vsize")?,
                props: str_list(s, "props")?,
            })
        })
        .collect::<Result<_, FeatureError>>()?;
    out.push(f(ss.len() as f64));
    out.push(f(ss.iter().filter(|s| s.size == 0.0).count() as f64));
    out.push(f(ss.iter().filter(|s| s.name.is_empty()).count() as f64));
    out.push(f(ss
        .iter()
        .filter(|s| s.props.contains(&"MEM_READ") && s.props.contains(&"MEM_EXECUTE"))
        .count() as f64));
    out.push(f(
        ss.iter().filter(|s| s.props.contains(&"MEM_WRITE")).count() as f64,
    ));
    push_hashed(
        &mut out,
        hash_pairs(ss.iter().map(|s| (s.name, s.size)), 50),
    );
    push_hashed(
        &mut out,
        hash_pairs(ss.iter().map(|s| (s.name, s.entropy)), 50),
    );
    push_hashed(
        &mut out,
        hash_pairs(ss.iter().map(|s| (s.name, s.vsize)), 50),
    );
    // EMBER passes the entry name as a bare string: FeatureHasher hashes its characters.
    let mut buf = [0u8; 4];
    let chars: Vec<String> = entry
        .chars()
        .map(|c| c.encode_utf8(&mut buf).to_string())
        .collect();
    push_hashed(&mut out, hash_strings(chars.iter().map(|s| s.as_str()), 50));
    let entry_props: Vec<&str> = ss
        .iter()
        .filter(|s| s.name == entry)
        .flat_map(|s| s.props.iter().copied())
        .collect();
    push_hashed(&mut out, hash_strings(entry_props, 50));
    // ImportsInfo
    let imps = get(raw, "imports")?
        .as_object()
        .ok_or_else(|| bad("'imports' is not an object"))?;
    let mut libs: Vec<String> = imps.keys().map(|k| k.to_lowercase()).collect();
    libs.sort();
    libs.dedup();
    push_hashed(&mut out, hash_strings(libs.iter().map(|s| s.as_str()), 256));
    let mut full: Vec<String> = Vec::new();
    for (lib, list) in imps {
        let lower = lib.to_lowercase();
        for e in list
            .as_array()
            .ok_or_else(|| bad("an imports entry is not a list"))?
        {
            let e = e
                .as_str()
                .ok_or_else(|| bad("an import name is not a string"))?;
            full.push(format!("{lower}:{e}"));
        }
    }
    push_hashed(
        &mut out,
        hash_strings(full.iter().map(|s| s.as_str()), 1024),
    );
    // ExportsInfo
    push_hashed(&mut out, hash_strings(str_list(raw, "exports")?, 128));
    // DataDirectories
    let dds = arr(raw, "datadirectories")?;
    for i in 0..15 {
        match dds.get(i) {
            Some(d) => {
                out.push(f(num(d, "size")?));
                out.push(f(num(d, "virtual_address")?));
            }
            None => out.extend([0.0, 0.0]),
        }
    }
    if out.len() != DIM {
        return Err(bad(&format!(
            "vector has {} entries, expected {DIM}",
            out.len()
        )));
    }
    Ok(out)
}

/// Raw object and vector in one call.
pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    vectorize(&raw_features_with(bytes, false)?)
}

/// The raw object (without sha256) and its vector, from one extraction.
pub fn raw_and_vector(bytes: &[u8]) -> Result<(Value, Vec<f32>), FeatureError> {
    let raw = raw_features_with(bytes, false)?;
    let v = vectorize(&raw)?;
    Ok((raw, v))
}

/// The hardened set's raw object: of the normalized file, masked (`crate::hardened`).
pub fn raw_features_hardened(bytes: &[u8]) -> Result<Value, FeatureError> {
    let mut raw = raw_features_with(&crate::hardened::normalize(bytes), false)?;
    crate::hardened::mask_raw(&mut raw);
    // The file's own hash, which labels and groups are keyed on.
    if let Some(o) = raw.as_object_mut() {
        o.insert("sha256".into(), Value::from(sha256_hex(bytes)));
        o.insert("set".into(), Value::from("ember-v2-hardened"));
    }
    Ok(raw)
}

/// The hardened set's raw object (without sha256) and vector.
pub fn raw_and_vector_hardened(bytes: &[u8]) -> Result<(Value, Vec<f32>), FeatureError> {
    let mut raw = raw_features_with(&crate::hardened::normalize(bytes), false)?;
    crate::hardened::mask_raw(&mut raw);
    let v = vectorize(&raw)?;
    Ok((raw, v))
}

/// `parts` joined, numbers in decimal: built by hand because `format!` made EMBER's 2381
/// names cost a one-file scan ~0.1 ms (a model's columns are matched to them on load).
fn name(parts: &[&dyn NamePart]) -> String {
    let mut s = String::with_capacity(32);
    for p in parts {
        p.push_to(&mut s);
    }
    s
}

trait NamePart {
    fn push_to(&self, s: &mut String);
}

impl NamePart for &str {
    fn push_to(&self, s: &mut String) {
        s.push_str(self);
    }
}

impl NamePart for usize {
    fn push_to(&self, s: &mut String) {
        let (mut v, mut digits, mut k) = (*self, [0u8; 20], 20);
        loop {
            k -= 1;
            digits[k] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        s.push_str(std::str::from_utf8(&digits[k..]).unwrap_or_default());
    }
}

/// Column names: `<group>_<index>` plus the meaning where the column is not hashed.
pub fn names() -> Vec<String> {
    let mut n = Vec::with_capacity(DIM);
    for i in 0..256usize {
        n.push(name(&[&"histogram_", &i]));
    }
    for e in 0..16usize {
        for b in 0..16usize {
            n.push(name(&[&"byteentropy_h", &e, &"_n", &b]));
        }
    }
    n.extend(
        [
            "strings_numstrings",
            "strings_avlength",
            "strings_printables",
        ]
        .map(String::from),
    );
    for i in 0..96usize {
        n.push(name(&[&"strings_printabledist_", &i]));
    }
    n.extend(
        [
            "strings_entropy",
            "strings_paths",
            "strings_urls",
            "strings_registry",
            "strings_MZ",
        ]
        .map(String::from),
    );
    for k in [
        "size",
        "vsize",
        "has_debug",
        "exports",
        "imports",
        "has_relocations",
        "has_resources",
        "has_signature",
        "has_tls",
        "symbols",
    ] {
        n.push(name(&[&"general_", &k]));
    }
    n.push("header_timestamp".into());
    for g in [
        "machine",
        "characteristics",
        "subsystem",
        "dll_characteristics",
        "magic",
    ] {
        for i in 0..10usize {
            n.push(name(&[&"header_", &g, &"_hash", &i]));
        }
    }
    for k in [
        "major_image_version",
        "minor_image_version",
        "major_linker_version",
        "minor_linker_version",
        "major_operating_system_version",
        "minor_operating_system_version",
        "major_subsystem_version",
        "minor_subsystem_version",
        "sizeof_code",
        "sizeof_headers",
        "sizeof_heap_commit",
    ] {
        n.push(name(&[&"header_", &k]));
    }
    n.extend(
        [
            "section_count",
            "section_zero_size",
            "section_empty_name",
            "section_rx",
            "section_w",
        ]
        .map(String::from),
    );
    for g in ["size", "entropy", "vsize", "entry_name", "entry_props"] {
        for i in 0..50usize {
            n.push(name(&[&"section_", &g, &"_hash", &i]));
        }
    }
    for i in 0..256usize {
        n.push(name(&[&"imports_library_hash", &i]));
    }
    for i in 0..1024usize {
        n.push(name(&[&"imports_function_hash", &i]));
    }
    for i in 0..128usize {
        n.push(name(&[&"exports_hash", &i]));
    }
    for d in DATA_DIRECTORY_NAMES.iter().take(15) {
        n.push(name(&[&"datadirectories_", d, &"_size"]));
        n.push(name(&[&"datadirectories_", d, &"_virtual_address"]));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_order_matches_cpython() {
        // Orders seen in EMBER's output (CPython 3.11 set of pybind11 enums).
        assert_eq!(python_set_order(&[0x2, 0x100]), vec![0x100, 0x2]);
        assert_eq!(
            python_set_order(&[0x20, 0x2000_0000, 0x4000_0000]),
            vec![0x20, 0x2000_0000, 0x4000_0000]
        );
        assert_eq!(
            python_set_order(&[0x40, 0x100, 0x8000]),
            vec![0x40, 0x100, 0x8000]
        );
    }

    #[test]
    fn names_and_groups_cover_dim() {
        assert_eq!(names().len(), DIM);
        let mut end = 0;
        for (_, start, w) in GROUPS {
            assert_eq!(start, end);
            end += w;
        }
        assert_eq!(end, DIM);
    }

    #[test]
    fn lief_str_escapes() {
        assert_eq!(lief_str(b".text"), ".text");
        assert_eq!(lief_str(b"a\xe9"), "a\\xe9");
    }
}
