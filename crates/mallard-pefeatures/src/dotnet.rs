//! `dotnet`: what a .NET assembly's metadata says (ECMA-335 tables and heaps, read by
//! [`mallard_pe::clr`]). EMBER's features see a .NET file as one import (`mscoree.dll`) and
//! ASCII strings; the types and members it uses, its P/Invoke imports and its UTF-16 user
//! strings are invisible to them, and they are where .NET malware shows what it does.
//!
//! | columns | group |
//! |---|---|
//! | 0..30 | summary: CLR header and metadata read, runtime and metadata versions, COMIMAGE flags, resources, strong-name signature, v-table fixups, entry point kind, streams, heap sizes, user-string statistics, truncated or unknown tables, identifier statistics (TypeDef, MethodDef, Field names: mean length, share with non-ASCII or control bytes, share of 1-2 bytes), share of methods without a body |
//! | 30..75 | log2(1 + rows) of each of the 45 tables |
//! | then 512 | TypeRefs `"Namespace.Name"`, hashed (FeatureHasher, MurmurHash3, ±1 as EMBER's imports) |
//! | then 1024 | MemberRefs `"Namespace.Type::Name"` (parent TypeRef or TypeDef; else `"::Name"`) |
//! | then 256 | P/Invoke imports `"module:function"` (module lowercased, `.dll` dropped) |
//! | then 64 | AssemblyRef names |
//! | then 512 | user strings (`#US`, UTF-16 to UTF-8, at most 256 characters each) |
//!
//! A file that is not .NET, or whose metadata cannot be read, gets zeros but for column 0
//! (and 1): the set is meant to sit beside a set that reads every file.

use mallard_pe::clr::{self, table as t, Metadata, Tables, TABLES, TABLE_NAMES};
use mallard_pe::Pe;

use crate::hasher::bucket;
use crate::FeatureError;

const SUMMARY: usize = 30;
const TYPE_REFS: usize = 512;
const MEMBER_REFS: usize = 1024;
const PINVOKES: usize = 256;
const ASSEMBLY_REFS: usize = 64;
const USER_STRINGS: usize = 512;
/// Rows read per table, and user strings read per file.
pub const MAX_ITEMS: u32 = 1 << 18;
/// Characters of a user string hashed.
const MAX_USER_STRING: usize = 256;

/// Number of columns.
pub const DIM: usize =
    SUMMARY + TABLES + TYPE_REFS + MEMBER_REFS + PINVOKES + ASSEMBLY_REFS + USER_STRINGS;

const SUMMARY_NAMES: [&str; SUMMARY] = [
    "dotnet_clr_header",
    "dotnet_metadata_read",
    "dotnet_tables_read",
    "dotnet_runtime_version",
    "dotnet_metadata_version",
    "dotnet_il_only",
    "dotnet_require_32bit",
    "dotnet_prefer_32bit",
    "dotnet_strong_name_signed",
    "dotnet_native_entrypoint",
    "dotnet_log2_resources_size",
    "dotnet_log2_strong_name_signature_size",
    "dotnet_log2_vtable_fixups_size",
    "dotnet_entry_point_kind",
    "dotnet_streams",
    "dotnet_duplicate_streams",
    "dotnet_nonstandard_streams",
    "dotnet_log2_strings_heap",
    "dotnet_log2_user_strings_heap",
    "dotnet_log2_blob_heap",
    "dotnet_log2_user_strings",
    "dotnet_user_string_mean_length",
    "dotnet_log2_user_string_max_length",
    "dotnet_user_strings_non_ascii_share",
    "dotnet_tables_truncated",
    "dotnet_unknown_tables",
    "dotnet_identifier_mean_length",
    "dotnet_identifier_odd_share",
    "dotnet_identifier_short_share",
    "dotnet_methods_without_body_share",
];

pub fn names() -> Vec<String> {
    let mut n: Vec<String> = SUMMARY_NAMES.map(String::from).to_vec();
    n.extend(TABLE_NAMES.iter().map(|t| format!("dotnet_log2_rows_{t}")));
    let hashed = [
        ("typeref", TYPE_REFS),
        ("memberref", MEMBER_REFS),
        ("pinvoke", PINVOKES),
        ("assemblyref", ASSEMBLY_REFS),
        ("userstring", USER_STRINGS),
    ];
    for (g, k) in hashed {
        n.extend((0..k).map(|i| format!("dotnet_{g}_hash{i}")));
    }
    n
}

pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    let pe = Pe::parse(bytes)?;
    let mut v = vec![0f32; DIM];
    fill(&pe, &mut v);
    Ok(v)
}

fn log2p(x: f64) -> f32 {
    (x + 1.0).log2() as f32
}

/// "v4.0.30319" -> 4.0; anything else -> 0.
fn version_number(s: &str) -> f32 {
    let mut parts = s.trim_start_matches(['v', 'V']).split('.');
    let major = parts.next().and_then(|p| p.parse::<u16>().ok());
    let minor = parts
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(0);
    major.map_or(0.0, |m| f32::from(m) + f32::from(minor.min(9)) / 10.0)
}

/// A user string's first [`MAX_USER_STRING`] UTF-16 units as UTF-8 (lone surrogates as
/// U+FFFD).
fn user_string(units: &[u8]) -> String {
    let it = units
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take(MAX_USER_STRING);
    char::decode_utf16(it)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Adds ±1 for `name` to the hashed block `block` (FeatureHasher's sign).
fn add(block: &mut [f32], name: &[u8]) {
    let (i, sign) = bucket(name, block.len());
    if let Some(o) = block.get_mut(i) {
        *o += sign as f32;
    }
}

/// Fills `v` (zeros, [`DIM`] long) from a parsed PE file.
pub fn fill(pe: &Pe<'_>, v: &mut [f32]) {
    v[0] = f32::from(u8::from(pe.is_dotnet()));
    let Ok(md) = pe.clr_metadata() else {
        return;
    };
    let h = &md.cor20;
    let flag = |f: u32| f32::from(u8::from(h.flags & f != 0));
    let streams: Vec<&str> = md.streams.iter().map(|s| s.name.as_str()).collect();
    let distinct: std::collections::HashSet<&str> = streams.iter().copied().collect();
    const STANDARD: [&str; 7] = ["#~", "#-", "#Strings", "#US", "#GUID", "#Blob", "#Pdb"];
    let (strings_heap, us_heap, blob_heap) = md.heap_sizes();
    let (mut n_us, mut us_len, mut us_max, mut us_non_ascii) = (0u32, 0usize, 0usize, 0u32);
    let us_block = SUMMARY + TABLES + TYPE_REFS + MEMBER_REFS + PINVOKES + ASSEMBLY_REFS;
    for (_, units) in md.user_strings().take(MAX_ITEMS as usize) {
        n_us += 1;
        let chars = units.len() / 2;
        us_len += chars;
        us_max = us_max.max(chars);
        if units.chunks_exact(2).any(|c| c[1] != 0 || c[0] >= 0x80) {
            us_non_ascii += 1;
        }
        add(
            &mut v[us_block..us_block + USER_STRINGS],
            user_string(units).as_bytes(),
        );
    }
    let ep_kind = match h.entry_point_token >> 24 {
        0 => 0.0,
        0x06 => 1.0,
        0x26 => 2.0,
        _ => 3.0,
    };
    let summary: [f32; 26] = [
        v[0],
        1.0,
        f32::from(u8::from(md.tables.is_some())),
        f32::from(h.runtime_major) + f32::from(h.runtime_minor.min(9)) / 10.0,
        version_number(&md.version),
        flag(clr::flags::IL_ONLY),
        flag(clr::flags::REQUIRE_32BIT),
        flag(clr::flags::PREFER_32BIT),
        flag(clr::flags::STRONG_NAME_SIGNED),
        flag(clr::flags::NATIVE_ENTRYPOINT),
        log2p(f64::from(h.resources.size)),
        log2p(f64::from(h.strong_name_signature.size)),
        log2p(f64::from(h.vtable_fixups.size)),
        ep_kind,
        streams.len() as f32,
        (streams.len() - distinct.len()) as f32,
        streams.iter().filter(|s| !STANDARD.contains(s)).count() as f32,
        log2p(strings_heap as f64),
        log2p(us_heap as f64),
        log2p(blob_heap as f64),
        log2p(f64::from(n_us)),
        if n_us == 0 {
            0.0
        } else {
            us_len as f32 / n_us as f32
        },
        log2p(us_max as f64),
        if n_us == 0 {
            0.0
        } else {
            us_non_ascii as f32 / n_us as f32
        },
        0.0,
        0.0,
    ];
    v[..summary.len()].copy_from_slice(&summary);
    if let Some(tb) = &md.tables {
        tables(&md, tb, v);
    }
}

fn tables(md: &Metadata<'_>, tb: &Tables<'_>, v: &mut [f32]) {
    v[24] = f32::from(u8::from((0..TABLES).any(|i| tb.rows(i) < tb.declared(i))));
    v[25] = f32::from(u8::from(tb.has_unknown_tables()));
    // Identifiers of what the assembly defines: obfuscators rename them to short or
    // unprintable names.
    let (mut n, mut len, mut odd, mut short) = (0u32, 0usize, 0u32, 0u32);
    for (table, col) in [(t::TYPE_DEF, 1), (t::METHOD_DEF, 3), (t::FIELD, 1)] {
        for r in 1..=tb.rows(table).min(MAX_ITEMS) {
            let name = tb.cell(table, r, col).map_or(&[][..], |i| md.string(i));
            n += 1;
            len += name.len();
            odd += u32::from(name.iter().any(|&b| !(0x20..0x7f).contains(&b)));
            short += u32::from(name.len() <= 2);
        }
    }
    if n > 0 {
        v[26] = len as f32 / n as f32;
        v[27] = odd as f32 / n as f32;
        v[28] = short as f32 / n as f32;
    }
    let methods = tb.rows(t::METHOD_DEF).min(MAX_ITEMS);
    if methods > 0 {
        let bodiless = (1..=methods)
            .filter(|&r| tb.cell(t::METHOD_DEF, r, 0) == Some(0))
            .count();
        v[29] = bodiless as f32 / methods as f32;
    }
    for i in 0..TABLES {
        v[SUMMARY + i] = log2p(f64::from(tb.declared(i)));
    }
    let blocks = [TYPE_REFS, MEMBER_REFS, PINVOKES, ASSEMBLY_REFS];
    each_name(md, tb, &mut |block, name| {
        let at = SUMMARY + TABLES + blocks[..block as usize].iter().sum::<usize>();
        add(&mut v[at..at + blocks[block as usize]], name);
    });
}

/// The hashed groups of names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    TypeRef = 0,
    MemberRef = 1,
    Pinvoke = 2,
    AssemblyRef = 3,
}

/// Every name the hashed columns count, with its group: TypeRefs `"Namespace.Name"`,
/// MemberRefs `"Namespace.Type::Name"`, P/Invoke imports `"module:function"`, AssemblyRef
/// names (at most [`MAX_ITEMS`] rows of each table).
fn each_name(md: &Metadata<'_>, tb: &Tables<'_>, f: &mut dyn FnMut(Block, &[u8])) {
    let mut name = Vec::with_capacity(128);
    let string = |table: usize, row: u32, col: usize| {
        tb.cell(table, row, col).map_or(&[][..], |i| md.string(i))
    };
    // "Namespace.Name" of a TypeRef or TypeDef row (both: name column 1, namespace 2).
    let type_name = |buf: &mut Vec<u8>, table: usize, row: u32| {
        if table != t::TYPE_REF && table != t::TYPE_DEF {
            return;
        }
        let ns = string(table, row, 2);
        if !ns.is_empty() {
            buf.extend_from_slice(ns);
            buf.push(b'.');
        }
        buf.extend_from_slice(string(table, row, 1));
    };
    for r in 1..=tb.rows(t::TYPE_REF).min(MAX_ITEMS) {
        name.clear();
        type_name(&mut name, t::TYPE_REF, r);
        f(Block::TypeRef, &name);
    }
    for r in 1..=tb.rows(t::MEMBER_REF).min(MAX_ITEMS) {
        name.clear();
        if let Some((table, row)) = tb.coded(t::MEMBER_REF, r, 0) {
            type_name(&mut name, table, row);
        }
        name.extend_from_slice(b"::");
        name.extend_from_slice(string(t::MEMBER_REF, r, 1));
        f(Block::MemberRef, &name);
    }
    for r in 1..=tb.rows(t::IMPL_MAP).min(MAX_ITEMS) {
        name.clear();
        let module = tb
            .cell(t::IMPL_MAP, r, 3)
            .map_or(&[][..], |m| string(t::MODULE_REF, m, 0))
            .to_ascii_lowercase();
        name.extend_from_slice(module.strip_suffix(b".dll").unwrap_or(&module));
        name.push(b':');
        name.extend_from_slice(string(t::IMPL_MAP, r, 2));
        f(Block::Pinvoke, &name);
    }
    for r in 1..=tb.rows(t::ASSEMBLY_REF).min(MAX_ITEMS) {
        f(Block::AssemblyRef, string(t::ASSEMBLY_REF, r, 6));
    }
}

/// A hashed column of this set in words, for a file's bytes: the names of the file that
/// fall in its bucket (`calls System.Reflection.Assembly::Load`), or that none does. `None`
/// for the other columns and for files whose metadata does not read.
pub fn describe(bytes: &[u8], column: &str) -> Option<String> {
    describe_many(bytes, &[column]).pop().flatten()
}

/// A hashed column asked about: its group (`None`: user strings), the group's bucket count,
/// the column's bucket, and the verb its names are told with.
type Wanted = (Option<Block>, usize, usize, &'static str);

/// [`describe`] for several columns of one file: the file is parsed once and its names
/// walked once, whatever the number of columns.
pub fn describe_many(bytes: &[u8], columns: &[&str]) -> Vec<Option<String>> {
    let wanted: Vec<Option<Wanted>> = columns
        .iter()
        .map(|c| {
            let (group, index) = c.strip_prefix("dotnet_")?.split_once("_hash")?;
            let (block, size, verb) = match group {
                "typeref" => (Some(Block::TypeRef), TYPE_REFS, "uses type"),
                "memberref" => (Some(Block::MemberRef), MEMBER_REFS, "calls"),
                "pinvoke" => (Some(Block::Pinvoke), PINVOKES, "imports (P/Invoke)"),
                "assemblyref" => (
                    Some(Block::AssemblyRef),
                    ASSEMBLY_REFS,
                    "references assembly",
                ),
                "userstring" => (None, USER_STRINGS, "holds the string"),
                _ => return None,
            };
            Some((block, size, index.parse().ok()?, verb))
        })
        .collect();
    let none = || vec![None; columns.len()];
    if wanted.iter().all(Option::is_none) {
        return none();
    }
    let Some(md) = Pe::parse(bytes).ok().and_then(|pe| pe.clr_metadata().ok()) else {
        return none();
    };
    let mut hits: Vec<Vec<String>> = vec![Vec::new(); columns.len()];
    let mut keep = |block: Option<Block>, name: &[u8]| {
        for (w, h) in wanted.iter().zip(hits.iter_mut()) {
            if let Some((b, size, want, _)) = w {
                if *b == block && h.len() < 4 && bucket(name, *size).0 == *want {
                    let s = String::from_utf8_lossy(name).into_owned();
                    if !h.contains(&s) {
                        h.push(s);
                    }
                }
            }
        }
    };
    if let Some(tb) = &md.tables {
        if wanted.iter().flatten().any(|w| w.0.is_some()) {
            each_name(&md, tb, &mut |blk, name| keep(Some(blk), name));
        }
    }
    if wanted.iter().flatten().any(|w| w.0.is_none()) {
        for (_, units) in md.user_strings().take(MAX_ITEMS as usize) {
            keep(None, user_string(units).as_bytes());
        }
    }
    (wanted.iter().zip(columns).zip(hits))
        .map(|((w, column), hits)| {
            let (block, _, _, verb) = (*w)?;
            Some(if hits.is_empty() {
                format!("no .NET name in {column}")
            } else {
                let shown: Vec<String> = hits
                    .iter()
                    .map(|h| {
                        let h: String = h.chars().take(100).collect();
                        if block.is_none() {
                            format!("{h:?}")
                        } else {
                            h
                        }
                    })
                    .collect();
                format!("{verb} {}", shown.join(", "))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_dimension_and_versions_parse() {
        assert_eq!(names().len(), DIM);
        assert_eq!(version_number("v4.0.30319"), 4.0);
        assert_eq!(version_number("v2.0.50727"), 2.0);
        assert_eq!(version_number("Standard CLI 2005"), 0.0);
    }
}
