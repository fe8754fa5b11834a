//! EMBER2024 feature version 3 (`ember-v3`, 2,568 floats): the raw object and the vector of
//! thrember's `features.py` (EMBER2024 @ 0ef753e, pefile 2024.8.26, signify 0.7.1, numpy 2),
//! quirks included (`../shared/baselines/ember2024_reference/README.md`, cited as S1, B2, ...).
//!
//! The raw object is the JSON dict thrember's `raw_features` returns, so [`vectorize`] also
//! takes raw objects written by thrember itself.

pub mod authenticode;
mod ordinals;
pub mod pefile;
pub mod strings;
pub mod warnings;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::hasher::{hash_pairs, hash_strings};
use crate::FeatureError;
use pefile::{ImportName, PeFile, DOS_MEMBERS};

/// Length of the vector.
pub const DIM: usize = 2568;

/// (raw key, first index, length) of each group, in vector order.
pub const GROUPS: [(&str, usize, usize); 12] = [
    ("general", 0, 7),
    ("histogram", 7, 256),
    ("byteentropy", 263, 256),
    ("strings", 519, 177),
    ("header", 696, 74),
    ("section", 770, 224),
    ("imports", 994, 1282),
    ("exports", 2276, 129),
    ("datadirectories", 2405, 34),
    ("richheader", 2439, 33),
    ("authenticode", 2472, 8),
    ("pefilewarnings", 2480, 88),
];

/// pefile's machine names in EMBER2024's list order (the index is the feature value); 0x284
/// is AXP64 (H1).
const MACHINES: [(&str, u16); 36] = [
    ("UNKNOWN", 0x0),
    ("I386", 0x14c),
    ("R3000", 0x162),
    ("R4000", 0x166),
    ("R10000", 0x168),
    ("WCEMIPSV2", 0x169),
    ("ALPHA", 0x184),
    ("SH3", 0x1a2),
    ("SH3DSP", 0x1a3),
    ("SH3E", 0x1a4),
    ("SH4", 0x1a6),
    ("SH5", 0x1a8),
    ("ARM", 0x1c0),
    ("THUMB", 0x1c2),
    ("ARMNT", 0x1c4),
    ("AM33", 0x1d3),
    ("POWERPC", 0x1f0),
    ("POWERPCFP", 0x1f1),
    ("IA64", 0x200),
    ("MIPS16", 0x266),
    ("ALPHA64", 0x284),
    ("AXP64", 0x284),
    ("MIPSFPU", 0x366),
    ("MIPSFPU16", 0x466),
    ("TRICORE", 0x520),
    ("CEF", 0xcef),
    ("EBC", 0xebc),
    ("RISCV32", 0x5032),
    ("RISCV64", 0x5064),
    ("RISCV128", 0x5128),
    ("LOONGARCH32", 0x6232),
    ("LOONGARCH64", 0x6264),
    ("AMD64", 0x8664),
    ("M32R", 0x9041),
    ("ARM64", 0xaa64),
    ("CEE", 0xc0ee),
];

const SUBSYSTEMS: [(&str, u16); 14] = [
    ("UNKNOWN", 0),
    ("NATIVE", 1),
    ("WINDOWS_GUI", 2),
    ("WINDOWS_CUI", 3),
    ("OS2_CUI", 5),
    ("POSIX_CUI", 7),
    ("NATIVE_WINDOWS", 8),
    ("WINDOWS_CE_GUI", 9),
    ("EFI_APPLICATION", 10),
    ("EFI_BOOT_SERVICE_DRIVER", 11),
    ("EFI_RUNTIME_DRIVER", 12),
    ("EFI_ROM", 13),
    ("XBOX", 14),
    ("WINDOWS_BOOT_APPLICATION", 16),
];

/// COFF characteristics, EMBER2024's order (bit i).
const IMAGE_CHARACTERISTICS: [&str; 16] = [
    "RELOCS_STRIPPED",
    "EXECUTABLE_IMAGE",
    "LINE_NUMS_STRIPPED",
    "LOCAL_SYMS_STRIPPED",
    "AGGRESIVE_WS_TRIM",
    "LARGE_ADDRESS_AWARE",
    "16BIT_MACHINE",
    "BYTES_REVERSED_LO",
    "32BIT_MACHINE",
    "DEBUG_STRIPPED",
    "REMOVABLE_RUN_FROM_SWAP",
    "NET_RUN_FROM_SWAP",
    "SYSTEM",
    "DLL",
    "UP_SYSTEM_ONLY",
    "BYTES_REVERSED_HI",
];

/// DllCharacteristics, EMBER2024's order (bit i + 5).
const DLL_CHARACTERISTICS: [&str; 11] = [
    "HIGH_ENTROPY_VA",
    "DYNAMIC_BASE",
    "FORCE_INTEGRITY",
    "NX_COMPAT",
    "NO_ISOLATION",
    "NO_SEH",
    "NO_BIND",
    "APPCONTAINER",
    "WDM_DRIVER",
    "GUARD_CF",
    "TERMINAL_SERVER_AWARE",
];

/// pefile's section characteristics in its order (X3); aliases share a value.
const SECTION_FLAGS: [(&str, u32); 45] = [
    ("TYPE_DSECT", 0x1),
    ("TYPE_NOLOAD", 0x2),
    ("TYPE_GROUP", 0x4),
    ("TYPE_NO_PAD", 0x8),
    ("TYPE_COPY", 0x10),
    ("CNT_CODE", 0x20),
    ("CNT_INITIALIZED_DATA", 0x40),
    ("CNT_UNINITIALIZED_DATA", 0x80),
    ("LNK_OTHER", 0x100),
    ("LNK_INFO", 0x200),
    ("LNK_OVER", 0x400),
    ("LNK_REMOVE", 0x800),
    ("LNK_COMDAT", 0x1000),
    ("MEM_PROTECTED", 0x4000),
    ("NO_DEFER_SPEC_EXC", 0x4000),
    ("GPREL", 0x8000),
    ("MEM_FARDATA", 0x8000),
    ("MEM_SYSHEAP", 0x10000),
    ("MEM_PURGEABLE", 0x20000),
    ("MEM_16BIT", 0x20000),
    ("MEM_LOCKED", 0x40000),
    ("MEM_PRELOAD", 0x80000),
    ("ALIGN_1BYTES", 0x100000),
    ("ALIGN_2BYTES", 0x200000),
    ("ALIGN_4BYTES", 0x300000),
    ("ALIGN_8BYTES", 0x400000),
    ("ALIGN_16BYTES", 0x500000),
    ("ALIGN_32BYTES", 0x600000),
    ("ALIGN_64BYTES", 0x700000),
    ("ALIGN_128BYTES", 0x800000),
    ("ALIGN_256BYTES", 0x900000),
    ("ALIGN_512BYTES", 0xa00000),
    ("ALIGN_1024BYTES", 0xb00000),
    ("ALIGN_2048BYTES", 0xc00000),
    ("ALIGN_4096BYTES", 0xd00000),
    ("ALIGN_8192BYTES", 0xe00000),
    ("ALIGN_MASK", 0xf00000),
    ("LNK_NRELOC_OVFL", 0x1000000),
    ("MEM_DISCARDABLE", 0x2000000),
    ("MEM_NOT_CACHED", 0x4000000),
    ("MEM_NOT_PAGED", 0x8000000),
    ("MEM_SHARED", 0x10000000),
    ("MEM_EXECUTE", 0x20000000),
    ("MEM_READ", 0x40000000),
    ("MEM_WRITE", 0x80000000),
];

/// The COFF header fields of the vector, in order (before the machine and subsystem).
const COFF_FIELDS: [&str; 5] = [
    "timestamp",
    "number_of_sections",
    "number_of_symbols",
    "sizeof_optional_header",
    "pointer_to_symbol_table",
];

/// The optional header fields of the vector, in order.
const OPTIONAL_FIELDS: [&str; 23] = [
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
    "sizeof_image",
    "sizeof_initialized_data",
    "sizeof_uninitialized_data",
    "sizeof_stack_reserve",
    "sizeof_stack_commit",
    "sizeof_heap_reserve",
    "sizeof_heap_commit",
    "address_of_entrypoint",
    "base_of_code",
    "image_base",
    "section_alignment",
    "checksum",
    "number_of_rvas_and_sizes",
];

const DIRECTORY_NAMES: [&str; 16] = [
    "EXPORT",
    "IMPORT",
    "RESOURCE",
    "EXCEPTION",
    "SECURITY",
    "BASERELOC",
    "DEBUG",
    "COPYRIGHT",
    "GLOBALPTR",
    "TLS",
    "LOAD_CONFIG",
    "BOUND_IMPORT",
    "IAT",
    "DELAY_IMPORT",
    "COM_DESCRIPTOR",
    "RESERVED",
];

/// numpy's pairwise summation of float64.
pub fn np_pairwise_sum_f64(a: &[f64]) -> f64 {
    crate::bytes::np_pairwise_sum(a)
}

/// pefile's `entropy_H` (and EMBER2024's general entropy, B4): `math.log(p, 2)` summed over a
/// `Counter`, that is in order of each byte value's first occurrence.
pub fn entropy_h(
    data: &[u8],
    counts: Option<&[u64; 256]>,
    chunks: Option<(&crate::bytes::ChunkCounts, usize)>,
) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let own;
    let counts = match counts {
        Some(c) => c,
        None => {
            let c = crate::bytes::byte_counts(data);
            own = c;
            &own
        }
    };
    // Bytes in order of first occurrence: a scan of the head finds most in order; the few
    // that first show up later are found through the 1 KiB chunk counts when the caller has
    // them (only chunks holding the byte are searched) and sorted by position.
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    let mut order: Vec<u8> = Vec::with_capacity(distinct);
    let mut seen = [false; 256];
    let head = data.len().min(4096);
    for &b in &data[..head] {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            order.push(b);
            if order.len() == distinct {
                break;
            }
        }
    }
    if order.len() < distinct {
        let mut rest: Vec<(usize, u8)> = (0..=255u8)
            .filter(|&b| counts[usize::from(b)] > 0 && !seen[usize::from(b)])
            .map(|b| (first_after(data, head, b, chunks), b))
            .collect();
        rest.sort_unstable();
        order.extend(rest.into_iter().map(|(_, b)| b));
    }
    let n = data.len() as f64;
    let ln2 = std::f64::consts::LN_2;
    let mut e = 0.0f64;
    for &b in &order {
        let p = counts[usize::from(b)] as f64 / n;
        e -= p * (p.ln() / ln2);
    }
    e
}

/// Where byte `b` first occurs in `data` at or after `from` (`data.len()` if nowhere).
/// `chunks`: the 1 KiB chunk counts of the file `data` lies in, and `data`'s offset there.
fn first_after(
    data: &[u8],
    from: usize,
    b: u8,
    chunks: Option<(&crate::bytes::ChunkCounts, usize)>,
) -> usize {
    let Some((ch, off)) = chunks else {
        return memchr::memchr(b, &data[from..]).map_or(data.len(), |i| from + i);
    };
    let mut c = (off + from) / 1024;
    loop {
        let lo = (c * 1024).max(off + from) - off;
        if lo >= data.len() {
            return data.len();
        }
        match ch.get(c) {
            // Past the counted chunks: search the rest directly.
            None => return memchr::memchr(b, &data[lo..]).map_or(data.len(), |i| lo + i),
            Some(k) if k[usize::from(b)] > 0 => {
                let hi = ((c + 1) * 1024 - off).min(data.len());
                if let Some(i) = memchr::memchr(b, &data[lo..hi]) {
                    return lo + i;
                }
            }
            Some(_) => {}
        }
        c += 1;
    }
}

/// Python's `bytes.decode(errors="ignore")`: invalid UTF-8 sequences are dropped.
fn decode_ignore(mut b: &[u8]) -> String {
    let mut out = String::new();
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or(""));
                let skip = e.error_len().unwrap_or(rest.len());
                b = &rest[skip..];
            }
        }
    }
}

/// A section name as EMBER2024 keys it (X2).
fn section_name(raw: &[u8; 8]) -> String {
    let mut s: &[u8] = raw;
    while let [0, rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., 0] = s {
        s = rest;
    }
    decode_ignore(s).to_lowercase()
}

fn header_raw(pe: &PeFile) -> Value {
    let f = &pe.file;
    let o = &pe.opt;
    let machine = MACHINES
        .iter()
        .rev()
        .find(|(_, v)| *v == f.machine)
        .map_or("UNKNOWN", |(n, _)| n);
    let subsystem = SUBSYSTEMS
        .iter()
        .find(|(_, v)| *v == o.subsystem)
        .map_or("UNKNOWN", |(n, _)| n);
    let chars: Vec<&str> = IMAGE_CHARACTERISTICS
        .iter()
        .enumerate()
        .filter(|(i, _)| f.characteristics & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    let dll_chars: Vec<&str> = DLL_CHARACTERISTICS
        .iter()
        .enumerate()
        .filter(|(i, _)| o.dll_characteristics & (1 << (i + 5)) != 0)
        .map(|(_, n)| *n)
        .collect();
    let mut dos = Map::new();
    for (k, v) in DOS_MEMBERS.iter().zip(pe.dos.iter()) {
        dos.insert((*k).to_string(), json!(v));
    }
    json!({
        "coff": {
            "timestamp": f.time_date_stamp,
            "machine": format!("IMAGE_FILE_MACHINE_{machine}"),
            "number_of_sections": f.number_of_sections,
            "number_of_symbols": f.number_of_symbols,
            "sizeof_optional_header": f.size_of_optional_header,
            "pointer_to_symbol_table": f.pointer_to_symbol_table,
            "characteristics": chars,
        },
        "optional": {
            "magic": o.magic,
            "subsystem": format!("IMAGE_SUBSYSTEM_{subsystem}"),
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
            "sizeof_image": o.size_of_image,
            "sizeof_initialized_data": o.size_of_initialized_data,
            "sizeof_uninitialized_data": o.size_of_uninitialized_data,
            "sizeof_stack_reserve": o.size_of_stack_reserve,
            "sizeof_stack_commit": o.size_of_stack_commit,
            "sizeof_heap_reserve": o.size_of_heap_reserve,
            "sizeof_heap_commit": o.size_of_heap_commit,
            "address_of_entrypoint": o.address_of_entry_point,
            "base_of_code": o.base_of_code,
            "base_of_data": 0,
            "image_base": o.image_base,
            "section_alignment": o.section_alignment,
            "checksum": o.check_sum,
            "number_of_rvas_and_sizes": o.number_of_rva_and_sizes,
            "dll_characteristics": dll_chars,
        },
        "dos": dos,
    })
}

fn section_raw(pe: &PeFile, len: usize, chunks: &crate::bytes::ChunkCounts) -> Value {
    let n = len as f64;
    let mut entry = pe
        .entry_section()
        .map(|s| section_name(&s.name))
        .unwrap_or_default();
    if entry.is_empty() {
        for s in &pe.sections {
            if s.characteristics & 0x2000_0000 != 0 {
                entry = section_name(&s.name);
                if !entry.is_empty() {
                    break;
                }
            }
        }
    }
    let sections: Vec<Value> = pe
        .sections
        .iter()
        .map(|s| {
            let props: Vec<&str> = SECTION_FLAGS
                .iter()
                .filter(|(_, v)| s.characteristics & v != 0)
                .map(|(k, _)| *k)
                .collect();
            let r = pe.section_range(s);
            let c = crate::bytes::range_counts(pe.data(), chunks, r.clone());
            let entropy = entropy_h(&pe.data()[r.clone()], Some(&c), Some((chunks, r.start)));
            json!({
                "name": section_name(&s.name),
                "size": s.size_of_raw_data,
                "entropy": entropy,
                "vsize": s.virtual_size,
                "size_ratio": f64::from(s.size_of_raw_data) / n,
                "vsize_ratio": f64::from(s.size_of_raw_data) / f64::from(s.virtual_size.max(1)),
                "props": props,
            })
        })
        .collect();
    let overlay = match pe.overlay_offset() {
        Some(off) => {
            let ov = &pe.data()[off..];
            // Counts from the 1 KiB chunk counts (an installer's overlay is most of it).
            let c = crate::bytes::range_counts(pe.data(), chunks, off..pe.data().len());
            json!({
                "size": ov.len(),
                "size_ratio": ov.len() as f64 / n,
                "entropy": entropy_h(ov, Some(&c), Some((chunks, off))),
            })
        }
        None => json!({"size": 0, "size_ratio": 0, "entropy": 0}),
    };
    json!({"entry": entry, "sections": sections, "overlay": overlay})
}

fn imports_raw(pe: &PeFile) -> Value {
    let mut m = Map::new();
    for (dll, syms) in pe.imports() {
        // Valid DOS file names are ASCII, so this decodes as Python's does.
        let dll = String::from_utf8_lossy(&dll).into_owned();
        let list: Vec<Value> = syms
            .iter()
            .map(|s| match s {
                ImportName::Name(n) => {
                    let n = String::from_utf8_lossy(n);
                    Value::String(n.chars().take(10000).collect())
                }
                ImportName::Ordinal(o) => Value::String(format!("{dll}:ordinal{o}")),
            })
            .collect();
        // I1: a second descriptor of the same name replaces the first's list.
        m.insert(dll, Value::Array(list));
    }
    Value::Object(m)
}

fn exports_raw(pe: &PeFile) -> Value {
    Value::Array(
        pe.exports()
            .into_iter()
            .map(|(name, ord)| match name {
                Some(n) if !n.is_empty() => {
                    Value::String(String::from_utf8_lossy(&n).chars().take(10000).collect())
                }
                _ => Value::String(format!("ordinal{ord}")),
            })
            .collect(),
    )
}

fn datadirectories_raw(pe: &PeFile) -> Value {
    let mut out = vec![json!({
        "has_relocs": u8::from(pe.has_relocs()),
        "has_dynamic_relocs": u8::from(pe.has_dynamic_relocs.get()),
    })];
    for (i, &(va, size)) in pe.dirs.iter().enumerate() {
        out.push(json!({"name": DIRECTORY_NAMES[i], "size": size, "virtual_address": va}));
    }
    Value::Array(out)
}

/// What both the raw object and the direct vector start from: one pass of byte counts, the
/// strings, pefile's verdict and our view of the file.
struct Prepared<'a> {
    histogram: [u64; 256],
    byteentropy: [u64; 256],
    chunks: crate::bytes::ChunkCounts,
    st: strings::Strings,
    parsed: warnings::PefileParse,
    pe: Option<PeFile<'a>>,
}

fn prepare(bytes: &[u8]) -> Result<Prepared<'_>, FeatureError> {
    if bytes.is_empty() {
        // B5: thrember raises IndexError on an empty file.
        return Err(FeatureError::Raw("empty file".into()));
    }
    let (histogram, byteentropy, chunks) = crate::bytes::byte_histograms_chunked(bytes, true);
    let st = strings::strings(bytes);
    // pefile's own verdict decides `is_pe` (it also fails on a few AttributeErrors deep in
    // its directory parsers); our view of the same file gives the structures.
    let (parsed, state) = warnings::pefile_parse_counted(bytes, &histogram);
    let pe = match &parsed {
        warnings::PefileParse::Parsed { .. } => PeFile::parse(bytes).ok().inspect(|p| {
            p.last_used.set(state.last_used);
            p.has_dynamic_relocs.set(state.has_dynamic_relocs);
        }),
        warnings::PefileParse::NotPe(_) => None,
    };
    Ok(Prepared {
        histogram,
        byteentropy,
        chunks,
        st,
        parsed,
        pe,
    })
}

/// thrember's `raw_features(bytez)`.
pub fn raw_features(bytes: &[u8]) -> Result<Value, FeatureError> {
    let Prepared {
        histogram,
        byteentropy,
        chunks,
        st,
        parsed,
        pe,
    } = prepare(bytes)?;
    let general = json!({
        "size": bytes.len(),
        "entropy": entropy_h(bytes, Some(&histogram), Some((&chunks, 0))),
        "is_pe": u8::from(pe.is_some()),
        "start_bytes": [
            bytes[0],
            bytes.get(1).copied().unwrap_or(0),
            bytes.get(2).copied().unwrap_or(0),
            bytes.get(3).copied().unwrap_or(0),
        ],
    });
    let mut counts = Map::new();
    for (i, (k, _)) in strings::PATTERNS.iter().enumerate() {
        if st.counts[i] > 0 {
            counts.insert((*k).to_string(), json!(st.counts[i]));
        }
    }
    let strings_raw = if st.numstrings > 0 {
        json!({
            "numstrings": st.numstrings,
            "avlength": st.total_len as f64 / st.numstrings as f64,
            "printabledist": st.printabledist.to_vec(),
            "printables": st.printabledist.iter().sum::<u64>(),
            "entropy": strings::entropy(&st.printabledist),
            "string_counts": counts,
        })
    } else {
        json!({
            "numstrings": 0, "avlength": 0, "printabledist": vec![0.0f64; 96],
            "printables": 0, "entropy": 0.0, "string_counts": counts,
        })
    };
    let mut raw = Map::new();
    raw.insert("sha256".into(), json!(hex(&Sha256::digest(bytes))));
    raw.insert("general".into(), general);
    raw.insert("histogram".into(), json!(histogram.to_vec()));
    raw.insert("byteentropy".into(), json!(byteentropy.to_vec()));
    raw.insert("strings".into(), strings_raw);
    pe_groups(&mut raw, bytes, &chunks, pe.as_ref(), &parsed)?;
    Ok(Value::Object(raw))
}

/// The raw objects of groups 5-12 (empty ones when pefile refuses the file).
fn pe_groups(
    raw: &mut Map<String, Value>,
    bytes: &[u8],
    chunks: &crate::bytes::ChunkCounts,
    pe: Option<&PeFile>,
    parsed: &warnings::PefileParse,
) -> Result<(), FeatureError> {
    match pe {
        Some(pe) => {
            raw.insert("header".into(), header_raw(pe));
            raw.insert("section".into(), section_raw(pe, bytes.len(), chunks));
            raw.insert("imports".into(), imports_raw(pe));
            raw.insert("exports".into(), exports_raw(pe));
            raw.insert("datadirectories".into(), datadirectories_raw(pe));
            raw.insert("richheader".into(), json!(pe.rich_values()));
            let auth = authenticode::authenticode(bytes, pe.file.time_date_stamp);
            raw.insert(
                "authenticode".into(),
                serde_json::to_value(auth).map_err(|e| FeatureError::Raw(e.to_string()))?,
            );
            let w = match parsed {
                warnings::PefileParse::Parsed { warnings } => warnings::normalize(warnings),
                warnings::PefileParse::NotPe(_) => Vec::new(),
            };
            raw.insert("pefilewarnings".into(), json!(w));
        }
        None => {
            raw.insert("header".into(), json!({}));
            raw.insert("section".into(), json!({}));
            raw.insert("imports".into(), json!({}));
            raw.insert("exports".into(), json!([]));
            raw.insert("datadirectories".into(), json!([]));
            raw.insert("richheader".into(), json!([]));
            raw.insert("authenticode".into(), json!({}));
            raw.insert("pefilewarnings".into(), json!([]));
        }
    }
    Ok(())
}

fn hex(b: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

fn bad(what: &str) -> FeatureError {
    FeatureError::Raw(format!("ember-v3 raw object: bad or missing {what}"))
}

fn num(v: &Value, what: &str) -> Result<f64, FeatureError> {
    v.as_f64().ok_or_else(|| bad(what))
}

/// An integer field as numpy would hold it before the float32 cast (H2): exact for 64-bit
/// values; any value at or above 2^63 turns the whole group into float64 first.
fn int_or_float(v: &Value, what: &str) -> Result<Num, FeatureError> {
    if let Some(u) = v.as_u64() {
        Ok(Num::U(u))
    } else if let Some(i) = v.as_i64() {
        Ok(Num::I(i))
    } else {
        Ok(Num::F(num(v, what)?))
    }
}

#[derive(Clone, Copy)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

fn get<'v>(v: &'v Value, k: &str) -> Result<&'v Value, FeatureError> {
    v.get(k).ok_or_else(|| bad(k))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn f32s(out: &mut Vec<f32>, xs: impl IntoIterator<Item = f64>) {
    out.extend(xs.into_iter().map(|x| x as f32));
}

/// Normalised histogram in float32 (B1).
fn hist_f32(v: &Value, what: &str, n: usize) -> Result<Vec<f32>, FeatureError> {
    let a = v.as_array().ok_or_else(|| bad(what))?;
    if a.len() != n {
        return Err(bad(what));
    }
    let f: Vec<f32> = a
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32).ok_or_else(|| bad(what)))
        .collect::<Result<_, _>>()?;
    let s = crate::bytes::np_pairwise_sum_f32(&f);
    Ok(f.iter().map(|&x| x / s).collect())
}

/// thrember's `process_raw_features(raw)`.
pub fn vectorize(raw: &Value) -> Result<Vec<f32>, FeatureError> {
    let mut out: Vec<f32> = Vec::with_capacity(DIM);
    // general (float32 hstack)
    let g = get(raw, "general")?;
    out.push(num(get(g, "size")?, "size")? as f32);
    out.push(num(get(g, "entropy")?, "entropy")? as f32);
    out.push(num(get(g, "is_pe")?, "is_pe")? as f32);
    let sb = get(g, "start_bytes")?
        .as_array()
        .ok_or_else(|| bad("start_bytes"))?;
    if sb.len() != 4 {
        return Err(bad("start_bytes"));
    }
    for b in sb {
        out.push(num(b, "start_bytes")? as f32);
    }
    out.extend(hist_f32(get(raw, "histogram")?, "histogram", 256)?);
    out.extend(hist_f32(get(raw, "byteentropy")?, "byteentropy", 256)?);
    // strings (float64, then float32)
    let s = get(raw, "strings")?;
    let printables = num(get(s, "printables")?, "printables")?;
    let div = if printables > 0.0 { printables } else { 1.0 };
    out.push(num(get(s, "numstrings")?, "numstrings")? as f32);
    out.push(num(get(s, "avlength")?, "avlength")? as f32);
    out.push(printables as f32);
    let dist = get(s, "printabledist")?
        .as_array()
        .ok_or_else(|| bad("printabledist"))?;
    if dist.len() != 96 {
        return Err(bad("printabledist"));
    }
    for d in dist {
        out.push((num(d, "printabledist")? / div) as f32);
    }
    out.push(num(get(s, "entropy")?, "strings entropy")? as f32);
    let mut sc = [0f32; 77];
    if let Some(m) = get(s, "string_counts")?.as_object() {
        for (k, c) in m {
            let i = strings::PATTERNS
                .iter()
                .position(|(key, _)| key == k)
                .ok_or_else(|| bad("string_counts key"))?;
            sc[i] = num(c, "string_counts")? as f32;
        }
    }
    out.extend(sc);
    vectorize_pe_groups(raw, &mut out)?;
    if out.len() != DIM {
        return Err(FeatureError::Raw(format!(
            "ember-v3 vector has {} values, expected {DIM}",
            out.len()
        )));
    }
    Ok(out)
}

/// Groups 5-12 of a raw object, appended to `out`.
fn vectorize_pe_groups(raw: &Value, out: &mut Vec<f32>) -> Result<(), FeatureError> {
    vectorize_header(get(raw, "header")?, out)?;
    vectorize_section(get(raw, "section")?, out)?;
    vectorize_imports(get(raw, "imports")?, out)?;
    // exports
    let e = get(raw, "exports")?;
    if is_empty(e) {
        out.extend([0f32; 129]);
    } else {
        let names: Vec<&str> = e
            .as_array()
            .ok_or_else(|| bad("exports"))?
            .iter()
            .map(|x| x.as_str().ok_or_else(|| bad("exports")))
            .collect::<Result<_, _>>()?;
        out.push(128.0); // E1
        f32s(out, hash_strings(names, 128));
    }
    // data directories (D1: the last parsed entry is dropped)
    let d = get(raw, "datadirectories")?;
    let mut dd = [0f32; 34];
    if !is_empty(d) {
        let a = d.as_array().ok_or_else(|| bad("datadirectories"))?;
        for entry in a.iter().take(a.len().saturating_sub(1)).skip(1) {
            let name = get(entry, "name")?.as_str().ok_or_else(|| bad("name"))?;
            let idx = DIRECTORY_NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| bad("data directory name"))?;
            dd[2 * idx] = num(get(entry, "size")?, "size")? as f32;
            dd[2 * idx + 1] = num(get(entry, "virtual_address")?, "virtual_address")? as f32;
        }
        dd[32] = num(get(&a[0], "has_relocs")?, "has_relocs")? as f32;
        dd[33] = num(get(&a[0], "has_dynamic_relocs")?, "has_dynamic_relocs")? as f32;
    }
    out.extend(dd);
    // rich header
    let r = get(raw, "richheader")?;
    if is_empty(r) {
        out.extend([0f32; 33]);
    } else {
        let a = r.as_array().ok_or_else(|| bad("richheader"))?;
        let vals: Vec<f64> = a
            .iter()
            .map(|x| num(x, "richheader"))
            .collect::<Result<_, _>>()?;
        let keys: Vec<String> = vals
            .chunks_exact(2)
            .map(|p| format!("{}", p[0] as i64))
            .collect();
        let pairs = keys
            .iter()
            .zip(vals.chunks_exact(2))
            .map(|(k, p)| (k.as_str(), p[1]));
        out.push((vals.len() / 2) as f32);
        f32s(out, hash_pairs(pairs, 32));
    }
    // authenticode
    let a = get(raw, "authenticode")?;
    if is_empty(a) {
        out.extend([0f32; 8]);
    } else {
        for k in [
            "num_certs",
            "self_signed",
            "empty_program_name",
            "no_countersigner",
            "parse_error",
            "chain_max_depth",
            "latest_signing_time",
            "signing_time_diff",
        ] {
            out.push(num(get(a, k)?, k)? as f32);
        }
    }
    // pefile warnings
    let w = get(raw, "pefilewarnings")?;
    if is_empty(w) {
        out.extend([0f32; 88]);
    } else {
        let list: Vec<String> = w
            .as_array()
            .ok_or_else(|| bad("pefilewarnings"))?
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad("pefilewarnings"))
            })
            .collect::<Result<_, _>>()?;
        out.extend(warnings::vector(&list));
    }
    Ok(())
}

fn vectorize_header(h: &Value, out: &mut Vec<f32>) -> Result<(), FeatureError> {
    if is_empty(h) {
        out.extend([0f32; 74]);
        return Ok(());
    }
    let c = get(h, "coff")?;
    let o = get(h, "optional")?;
    let dos = get(h, "dos")?;
    let mut vals: Vec<Num> = Vec::with_capacity(74);
    for k in COFF_FIELDS {
        vals.push(int_or_float(get(c, k)?, k)?);
    }
    let machine = get(c, "machine")?.as_str().unwrap_or("");
    let mi = MACHINES
        .iter()
        .position(|(n, _)| machine.strip_prefix("IMAGE_FILE_MACHINE_") == Some(n))
        .unwrap_or(0);
    vals.push(Num::U(mi as u64));
    let subsystem = get(o, "subsystem")?.as_str().unwrap_or("");
    let si = SUBSYSTEMS
        .iter()
        .position(|(n, _)| subsystem.strip_prefix("IMAGE_SUBSYSTEM_") == Some(n))
        .unwrap_or(0);
    vals.push(Num::U(si as u64));
    for k in OPTIONAL_FIELDS {
        vals.push(int_or_float(get(o, k)?, k)?);
    }
    let has = |list: &Value, name: &str| {
        list.as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(name)))
    };
    let cc = get(c, "characteristics")?;
    for n in IMAGE_CHARACTERISTICS {
        vals.push(Num::U(u64::from(has(cc, n))));
    }
    let dc = get(o, "dll_characteristics")?;
    for n in DLL_CHARACTERISTICS {
        vals.push(Num::U(u64::from(has(dc, n))));
    }
    for m in DOS_MEMBERS {
        vals.push(int_or_float(get(dos, m)?, m)?);
    }
    // numpy: all int64 unless a value needs uint64 or is a float; then float64 (H2).
    let wide = vals.iter().any(|v| match v {
        Num::U(u) => *u > i64::MAX as u64,
        Num::F(_) => true,
        Num::I(_) => false,
    });
    for v in vals {
        out.push(match (v, wide) {
            (Num::U(u), false) => u as f32,
            (Num::I(i), false) => i as f32,
            (Num::U(u), true) => u as f64 as f32,
            (Num::I(i), true) => i as f64 as f32,
            (Num::F(f), _) => f as f32,
        });
    }
    Ok(())
}

fn vectorize_section(s: &Value, out: &mut Vec<f32>) -> Result<(), FeatureError> {
    if is_empty(s) {
        out.extend([0f32; 224]);
        return Ok(());
    }
    let secs = get(s, "sections")?
        .as_array()
        .ok_or_else(|| bad("sections"))?;
    let ov = get(s, "overlay")?;
    let ov_entropy = num(get(ov, "entropy")?, "overlay entropy")?;
    let ov_ratio = num(get(ov, "size_ratio")?, "overlay size_ratio")?;
    struct S<'v> {
        name: &'v str,
        size: f64,
        vsize: f64,
        entropy: f64,
        size_ratio: f64,
        vsize_ratio: f64,
        props: Vec<&'v str>,
    }
    let mut v = Vec::with_capacity(secs.len());
    for x in secs {
        v.push(S {
            name: get(x, "name")?
                .as_str()
                .ok_or_else(|| bad("section name"))?,
            size: num(get(x, "size")?, "size")?,
            vsize: num(get(x, "vsize")?, "vsize")?,
            entropy: num(get(x, "entropy")?, "entropy")?,
            size_ratio: num(get(x, "size_ratio")?, "size_ratio")?,
            vsize_ratio: num(get(x, "vsize_ratio")?, "vsize_ratio")?,
            props: get(x, "props")?
                .as_array()
                .ok_or_else(|| bad("props"))?
                .iter()
                .filter_map(|p| p.as_str())
                .collect(),
        });
    }
    let has = |s: &S, p: &str| s.props.contains(&p);
    let fmax = |xs: &[f64]| xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let fmin = |xs: &[f64]| xs.iter().copied().fold(f64::INFINITY, f64::min);
    let mut ent: Vec<f64> = v.iter().map(|s| s.entropy).collect();
    ent.extend([ov_entropy, 0.0]);
    let mut sr: Vec<f64> = v.iter().map(|s| s.size_ratio).collect();
    sr.extend([ov_ratio, 0.0]);
    let mut vr: Vec<f64> = v.iter().map(|s| s.vsize_ratio).collect();
    vr.push(0.0);
    let general = [
        v.len() as f64,
        v.iter().filter(|s| s.size == 0.0).count() as f64,
        v.iter().filter(|s| s.name.is_empty()).count() as f64,
        v.iter()
            .filter(|s| has(s, "MEM_READ") && has(s, "MEM_EXECUTE"))
            .count() as f64,
        v.iter().filter(|s| has(s, "MEM_WRITE")).count() as f64,
        fmax(&ent),
        fmin(&ent),
        fmax(&sr),
        fmin(&sr),
        fmax(&vr),
        fmin(&vr),
    ];
    f32s(out, general);
    f32s(out, hash_pairs(v.iter().map(|s| (s.name, s.size)), 50));
    f32s(out, hash_pairs(v.iter().map(|s| (s.name, s.vsize)), 50));
    f32s(out, hash_pairs(v.iter().map(|s| (s.name, s.entropy)), 50));
    let chars: Vec<String> = v
        .iter()
        .flat_map(|s| s.props.iter().map(move |p| format!("{}:{p}", s.name)))
        .collect();
    f32s(out, hash_strings(chars.iter().map(String::as_str), 50));
    let entry = get(s, "entry")?.as_str().ok_or_else(|| bad("entry"))?;
    f32s(out, hash_strings([entry], 10));
    out.push(num(get(ov, "size")?, "overlay size")? as f32);
    out.push(ov_ratio as f32);
    out.push(ov_entropy as f32);
    Ok(())
}

fn vectorize_imports(i: &Value, out: &mut Vec<f32>) -> Result<(), FeatureError> {
    if is_empty(i) {
        out.extend([0f32; 1282]);
        return Ok(());
    }
    let m = i.as_object().ok_or_else(|| bad("imports"))?;
    let mut libs: Vec<String> = m.keys().map(|k| py_lower(k)).collect();
    libs.sort();
    libs.dedup();
    let mut funcs: Vec<String> = Vec::new();
    for (lib, list) in m {
        let l = py_lower(lib);
        for e in list.as_array().ok_or_else(|| bad("imports list"))? {
            let e = e.as_str().ok_or_else(|| bad("import name"))?;
            funcs.push(format!("{l}:{e}"));
        }
    }
    out.push(funcs.len() as f32);
    out.push(libs.len() as f32);
    let unsigned = |names: &[String], n: usize| {
        let mut v = vec![0f64; n];
        for s in names {
            let (i, _) = crate::hasher::bucket(s.as_bytes(), n);
            v[i] += 1.0;
        }
        v
    };
    f32s(out, unsigned(&libs, 256));
    f32s(out, unsigned(&funcs, 1024));
    Ok(())
}

fn py_lower(s: &str) -> String {
    s.to_lowercase()
}

/// Raw object and vector of one file.
pub fn raw_and_vector(bytes: &[u8]) -> Result<(Value, Vec<f32>), FeatureError> {
    let raw = raw_features(bytes)?;
    let v = vectorize(&raw)?;
    Ok((raw, v))
}

/// The vector of one file: what `vectorize(raw_features(bytes))` gives, without building the
/// byte and string groups' JSON (a tenth of the time).
pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    let Prepared {
        histogram,
        byteentropy,
        chunks,
        st,
        parsed,
        pe,
    } = prepare(bytes)?;
    let mut out: Vec<f32> = Vec::with_capacity(DIM);
    out.push(bytes.len() as f32);
    out.push(entropy_h(bytes, Some(&histogram), Some((&chunks, 0))) as f32);
    out.push(if pe.is_some() { 1.0 } else { 0.0 });
    for i in 0..4 {
        out.push(f32::from(bytes.get(i).copied().unwrap_or(0)));
    }
    out.extend(crate::bytes::np_normalize_f32(&histogram));
    out.extend(crate::bytes::np_normalize_f32(&byteentropy));
    let printables: u64 = st.printabledist.iter().sum();
    out.push(st.numstrings as f32);
    if st.numstrings > 0 {
        out.push((st.total_len as f64 / st.numstrings as f64) as f32);
        out.push(printables as f32);
        let div = printables as f64;
        out.extend(st.printabledist.iter().map(|&c| (c as f64 / div) as f32));
        out.push(strings::entropy(&st.printabledist) as f32);
    } else {
        out.extend([0f32; 2 + 96 + 1]);
    }
    out.extend(st.counts.iter().map(|&c| c as f32));
    let mut raw = Map::new();
    pe_groups(&mut raw, bytes, &chunks, pe.as_ref(), &parsed)?;
    vectorize_pe_groups(&Value::Object(raw), &mut out)?;
    if out.len() != DIM {
        return Err(FeatureError::Raw(format!(
            "ember-v3 vector has {} values, expected {DIM}",
            out.len()
        )));
    }
    Ok(out)
}

/// Column names, `group.part`.
pub fn names() -> Vec<String> {
    let mut n: Vec<String> = Vec::with_capacity(DIM);
    n.extend(["general.size", "general.entropy", "general.is_pe"].map(String::from));
    n.extend((0..4).map(|i| format!("general.start_byte_{i}")));
    n.extend((0..256).map(|i| format!("histogram.{i}")));
    n.extend((0..256).map(|i| format!("byteentropy.{i}")));
    n.extend(
        [
            "strings.numstrings",
            "strings.avlength",
            "strings.printables",
        ]
        .map(String::from),
    );
    n.extend((0..96).map(|i| format!("strings.printabledist_{i}")));
    n.push("strings.entropy".into());
    n.extend(
        strings::PATTERNS
            .iter()
            .map(|(k, _)| format!("strings.count:{k}")),
    );
    n.extend(COFF_FIELDS.map(|k| format!("header.{k}")));
    n.extend(["header.machine", "header.subsystem"].map(String::from));
    n.extend(OPTIONAL_FIELDS.map(|k| format!("header.{k}")));
    n.extend(IMAGE_CHARACTERISTICS.map(|k| format!("header.characteristics:{k}")));
    n.extend(DLL_CHARACTERISTICS.map(|k| format!("header.dll_characteristics:{k}")));
    n.extend(DOS_MEMBERS.map(|k| format!("header.dos.{k}")));
    n.extend(
        [
            "n_sections",
            "n_zero_size",
            "n_empty_name",
            "n_rx",
            "n_w",
            "max_entropy",
            "min_entropy",
            "max_size_ratio",
            "min_size_ratio",
            "max_vsize_ratio",
            "min_vsize_ratio",
        ]
        .map(|k| format!("section.{k}")),
    );
    for part in ["size_hash", "vsize_hash", "entropy_hash", "props_hash"] {
        n.extend((0..50).map(|i| format!("section.{part}_{i}")));
    }
    n.extend((0..10).map(|i| format!("section.entry_hash_{i}")));
    n.extend(
        [
            "section.overlay_size",
            "section.overlay_size_ratio",
            "section.overlay_entropy",
        ]
        .map(String::from),
    );
    n.extend(["imports.functions", "imports.libraries"].map(String::from));
    n.extend((0..256).map(|i| format!("imports.library_hash_{i}")));
    n.extend((0..1024).map(|i| format!("imports.function_hash_{i}")));
    n.push("exports.present".into());
    n.extend((0..128).map(|i| format!("exports.hash_{i}")));
    for d in DIRECTORY_NAMES {
        n.push(format!("datadirectories.{d}.size"));
        n.push(format!("datadirectories.{d}.virtual_address"));
    }
    n.extend(
        [
            "datadirectories.has_relocs",
            "datadirectories.has_dynamic_relocs",
        ]
        .map(String::from),
    );
    n.push("richheader.pairs".into());
    n.extend((0..32).map(|i| format!("richheader.hash_{i}")));
    n.extend(
        [
            "num_certs",
            "self_signed",
            "empty_program_name",
            "no_countersigner",
            "parse_error",
            "chain_max_depth",
            "latest_signing_time",
            "signing_time_diff",
        ]
        .map(|k| format!("authenticode.{k}")),
    );
    n.extend(
        warnings::patterns()
            .into_iter()
            .map(|k| format!("pefilewarnings:{k}")),
    );
    n.push("pefilewarnings.count".into());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pefile's `entropy_H` as written: a Counter (first-occurrence order), then the sum.
    fn entropy_naive(data: &[u8]) -> f64 {
        let mut order: Vec<u8> = Vec::new();
        let mut counts = [0u64; 256];
        for &b in data {
            if counts[usize::from(b)] == 0 {
                order.push(b);
            }
            counts[usize::from(b)] += 1;
        }
        let n = data.len() as f64;
        let mut e = 0.0f64;
        for b in order {
            let p = counts[usize::from(b)] as f64 / n;
            e -= p * (p.ln() / std::f64::consts::LN_2);
        }
        e
    }

    #[test]
    fn entropy_through_chunk_counts_sums_in_first_occurrence_order() {
        // Late first occurrences (after the 4 KiB head), ranges not aligned to chunks.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut file: Vec<u8> = (0..40_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i < 9000 {
                    (x % 7) as u8
                } else {
                    (x >> 24) as u8
                }
            })
            .collect();
        file[39_999] = 0xfe;
        let (_, _, chunks) = crate::bytes::byte_histograms_chunked(&file, true);
        for (a, b) in [
            (0, 40_000),
            (100, 39_000),
            (5000, 5001),
            (1023, 20_481),
            (8191, 40_000),
        ] {
            let part = &file[a..b];
            let c = crate::bytes::range_counts(&file, &chunks, a..b);
            let want = entropy_naive(part);
            assert_eq!(
                entropy_h(part, Some(&c), Some((&chunks, a))).to_bits(),
                want.to_bits()
            );
            assert_eq!(entropy_h(part, None, None).to_bits(), want.to_bits());
        }
    }
}
