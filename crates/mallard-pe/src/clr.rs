//! The CLR (.NET) runtime header and its metadata (ECMA-335 partition II, 24): the stream
//! headers, the heaps and the rows of every table of the `#~` (or `#-`) stream.
//!
//! Hostile input: every read is bounds-checked; a table's rows are what its declared count
//! and the stream's bytes both allow ([`Tables::rows`] counts what fits, [`Tables::declared`]
//! what the header claims); a heap string is read up to [`MAX_NAME`] bytes; nothing is sized
//! from a header field. Where streams share a name the last one counts, as in the CLR's
//! loader (a trick obfuscators use against tools that take the first).

use crate::read::{u16_at, u32_at};
use crate::{dir, DataDirectory, Pe};

/// Longest `#Strings` entry read (bytes); longer ones are cut there.
pub const MAX_NAME: usize = 1024;
/// Stream headers read from the metadata root.
pub const MAX_STREAMS: usize = 64;
/// Number of tables ECMA-335 defines (0x00 Module .. 0x2C GenericParamConstraint).
pub const TABLES: usize = 0x2D;

/// Why a CLR header or its metadata cannot be read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ClrError {
    #[error("no CLR runtime header")]
    Absent,
    #[error("CLR header: {0}")]
    Header(&'static str),
    #[error("CLR metadata: {0}")]
    Metadata(&'static str),
}

/// IMAGE_COR20_HEADER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cor20 {
    pub size: u32,
    pub runtime_major: u16,
    pub runtime_minor: u16,
    pub metadata: DataDirectory,
    pub flags: u32,
    pub entry_point_token: u32,
    pub resources: DataDirectory,
    pub strong_name_signature: DataDirectory,
    pub code_manager_table: DataDirectory,
    pub vtable_fixups: DataDirectory,
    pub export_address_table_jumps: DataDirectory,
    pub managed_native_header: DataDirectory,
}

/// COMIMAGE_FLAGS_*.
pub mod flags {
    pub const IL_ONLY: u32 = 0x1;
    pub const REQUIRE_32BIT: u32 = 0x2;
    pub const IL_LIBRARY: u32 = 0x4;
    pub const STRONG_NAME_SIGNED: u32 = 0x8;
    pub const NATIVE_ENTRYPOINT: u32 = 0x10;
    pub const TRACK_DEBUG_DATA: u32 = 0x1_0000;
    pub const PREFER_32BIT: u32 = 0x2_0000;
}

/// A stream header as declared, and the bytes of the metadata it covers (cut at the end of
/// the metadata block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stream<'a> {
    pub name: String,
    pub offset: u32,
    pub size: u32,
    pub data: &'a [u8],
}

/// The table numbers this crate names.
pub mod table {
    pub const MODULE: usize = 0x00;
    pub const TYPE_REF: usize = 0x01;
    pub const TYPE_DEF: usize = 0x02;
    pub const FIELD: usize = 0x04;
    pub const METHOD_DEF: usize = 0x06;
    pub const PARAM: usize = 0x08;
    pub const MEMBER_REF: usize = 0x0A;
    pub const CUSTOM_ATTRIBUTE: usize = 0x0C;
    pub const EVENT: usize = 0x14;
    pub const PROPERTY: usize = 0x17;
    pub const MODULE_REF: usize = 0x1A;
    pub const TYPE_SPEC: usize = 0x1B;
    pub const IMPL_MAP: usize = 0x1C;
    pub const ASSEMBLY: usize = 0x20;
    pub const ASSEMBLY_REF: usize = 0x23;
    pub const FILE: usize = 0x26;
    pub const EXPORTED_TYPE: usize = 0x27;
    pub const MANIFEST_RESOURCE: usize = 0x28;
    pub const GENERIC_PARAM: usize = 0x2A;
}

/// Table names, by number.
pub const TABLE_NAMES: [&str; TABLES] = [
    "Module",
    "TypeRef",
    "TypeDef",
    "FieldPtr",
    "Field",
    "MethodPtr",
    "MethodDef",
    "ParamPtr",
    "Param",
    "InterfaceImpl",
    "MemberRef",
    "Constant",
    "CustomAttribute",
    "FieldMarshal",
    "DeclSecurity",
    "ClassLayout",
    "FieldLayout",
    "StandAloneSig",
    "EventMap",
    "EventPtr",
    "Event",
    "PropertyMap",
    "PropertyPtr",
    "Property",
    "MethodSemantics",
    "MethodImpl",
    "ModuleRef",
    "TypeSpec",
    "ImplMap",
    "FieldRVA",
    "EncLog",
    "EncMap",
    "Assembly",
    "AssemblyProcessor",
    "AssemblyOS",
    "AssemblyRef",
    "AssemblyRefProcessor",
    "AssemblyRefOS",
    "File",
    "ExportedType",
    "ManifestResource",
    "NestedClass",
    "GenericParam",
    "MethodSpec",
    "GenericParamConstraint",
];

/// Coded indices (II.24.2.6): tag bits and the tables the tag selects (`NONE`: unused tag).
struct Coded {
    bits: u32,
    tables: &'static [usize],
}

const NONE: usize = usize::MAX;
const TYPE_DEF_OR_REF: Coded = Coded {
    bits: 2,
    tables: &[0x02, 0x01, 0x1B],
};
const HAS_CONSTANT: Coded = Coded {
    bits: 2,
    tables: &[0x04, 0x08, 0x17],
};
const HAS_CUSTOM_ATTRIBUTE: Coded = Coded {
    bits: 5,
    tables: &[
        0x06, 0x04, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x00, 0x0E, 0x17, 0x14, 0x11, 0x1A, 0x1B, 0x20,
        0x23, 0x26, 0x27, 0x28, 0x2A, 0x2C, 0x2B,
    ],
};
const HAS_FIELD_MARSHAL: Coded = Coded {
    bits: 1,
    tables: &[0x04, 0x08],
};
const HAS_DECL_SECURITY: Coded = Coded {
    bits: 2,
    tables: &[0x02, 0x06, 0x20],
};
/// MemberRefParent: TypeDef, TypeRef, ModuleRef, MethodDef, TypeSpec.
const MEMBER_REF_PARENT: Coded = Coded {
    bits: 3,
    tables: &[0x02, 0x01, 0x1A, 0x06, 0x1B],
};
const HAS_SEMANTICS: Coded = Coded {
    bits: 1,
    tables: &[0x14, 0x17],
};
const METHOD_DEF_OR_REF: Coded = Coded {
    bits: 1,
    tables: &[0x06, 0x0A],
};
const MEMBER_FORWARDED: Coded = Coded {
    bits: 1,
    tables: &[0x04, 0x06],
};
const IMPLEMENTATION: Coded = Coded {
    bits: 2,
    tables: &[0x26, 0x23, 0x27],
};
const CUSTOM_ATTRIBUTE_TYPE: Coded = Coded {
    bits: 3,
    tables: &[NONE, NONE, 0x06, 0x0A, NONE],
};
/// ResolutionScope: Module, ModuleRef, AssemblyRef, TypeRef.
const RESOLUTION_SCOPE: Coded = Coded {
    bits: 2,
    tables: &[0x00, 0x1A, 0x23, 0x01],
};
const TYPE_OR_METHOD_DEF: Coded = Coded {
    bits: 1,
    tables: &[0x02, 0x06],
};

/// A column's type.
#[derive(Clone, Copy)]
enum Col {
    U16,
    U32,
    Str,
    Guid,
    Blob,
    /// Row index into one table.
    Idx(usize),
    Coded(&'static Coded),
}

use Col::{Blob, Guid, Idx, Str, U16, U32};
const fn c(k: &'static Coded) -> Col {
    Col::Coded(k)
}

/// Columns of each table, in order (II.22; Constant's type byte and padding read as one U16).
const SCHEMA: [&[Col]; TABLES] = [
    &[U16, Str, Guid, Guid, Guid],     // 00 Module
    &[c(&RESOLUTION_SCOPE), Str, Str], // 01 TypeRef
    &[U32, Str, Str, c(&TYPE_DEF_OR_REF), Idx(0x04), Idx(0x06)], // 02 TypeDef
    &[Idx(0x04)],                      // 03 FieldPtr
    &[U16, Str, Blob],                 // 04 Field
    &[Idx(0x06)],                      // 05 MethodPtr
    &[U32, U16, U16, Str, Blob, Idx(0x08)], // 06 MethodDef
    &[Idx(0x08)],                      // 07 ParamPtr
    &[U16, U16, Str],                  // 08 Param
    &[Idx(0x02), c(&TYPE_DEF_OR_REF)], // 09 InterfaceImpl
    &[c(&MEMBER_REF_PARENT), Str, Blob], // 0A MemberRef
    &[U16, c(&HAS_CONSTANT), Blob],    // 0B Constant
    &[c(&HAS_CUSTOM_ATTRIBUTE), c(&CUSTOM_ATTRIBUTE_TYPE), Blob], // 0C CustomAttribute
    &[c(&HAS_FIELD_MARSHAL), Blob],    // 0D FieldMarshal
    &[U16, c(&HAS_DECL_SECURITY), Blob], // 0E DeclSecurity
    &[U16, U32, Idx(0x02)],            // 0F ClassLayout
    &[U32, Idx(0x04)],                 // 10 FieldLayout
    &[Blob],                           // 11 StandAloneSig
    &[Idx(0x02), Idx(0x14)],           // 12 EventMap
    &[Idx(0x14)],                      // 13 EventPtr
    &[U16, Str, c(&TYPE_DEF_OR_REF)],  // 14 Event
    &[Idx(0x02), Idx(0x17)],           // 15 PropertyMap
    &[Idx(0x17)],                      // 16 PropertyPtr
    &[U16, Str, Blob],                 // 17 Property
    &[U16, Idx(0x06), c(&HAS_SEMANTICS)], // 18 MethodSemantics
    &[Idx(0x02), c(&METHOD_DEF_OR_REF), c(&METHOD_DEF_OR_REF)], // 19 MethodImpl
    &[Str],                            // 1A ModuleRef
    &[Blob],                           // 1B TypeSpec
    &[U16, c(&MEMBER_FORWARDED), Str, Idx(0x1A)], // 1C ImplMap
    &[U32, Idx(0x04)],                 // 1D FieldRVA
    &[U32, U32],                       // 1E EncLog
    &[U32],                            // 1F EncMap
    &[U32, U16, U16, U16, U16, U32, Blob, Str, Str], // 20 Assembly
    &[U32],                            // 21 AssemblyProcessor
    &[U32, U32, U32],                  // 22 AssemblyOS
    &[U16, U16, U16, U16, U32, Blob, Str, Str, Blob], // 23 AssemblyRef
    &[U32, Idx(0x23)],                 // 24 AssemblyRefProcessor
    &[U32, U32, U32, Idx(0x23)],       // 25 AssemblyRefOS
    &[U32, Str, Blob],                 // 26 File
    &[U32, U32, Str, Str, c(&IMPLEMENTATION)], // 27 ExportedType
    &[U32, U32, Str, c(&IMPLEMENTATION)], // 28 ManifestResource
    &[Idx(0x02), Idx(0x02)],           // 29 NestedClass
    &[U16, U16, c(&TYPE_OR_METHOD_DEF), Str], // 2A GenericParam
    &[c(&METHOD_DEF_OR_REF), Blob],    // 2B MethodSpec
    &[Idx(0x2A), c(&TYPE_DEF_OR_REF)], // 2C GenericParamConstraint
];

/// The `#~` stream's header and the place of every table's rows.
#[derive(Clone, Debug)]
pub struct Tables<'a> {
    pub major: u8,
    pub minor: u8,
    pub heap_sizes: u8,
    pub valid: u64,
    pub sorted: u64,
    declared: [u32; 64],
    /// Column widths (2 or 4) of each known table.
    widths: Vec<Vec<u8>>,
    /// Offset of each known table's rows in `data`, and the rows that fit there.
    start: [usize; TABLES],
    fits: [u32; TABLES],
    data: &'a [u8],
}

impl<'a> Tables<'a> {
    /// Rows table `t` declares (0 for an absent or unknown table number).
    pub fn declared(&self, t: usize) -> u32 {
        self.declared.get(t).copied().unwrap_or(0)
    }

    /// Rows of table `t` that lie inside the stream (at most [`Tables::declared`]).
    pub fn rows(&self, t: usize) -> u32 {
        self.fits.get(t).copied().unwrap_or(0)
    }

    /// Whether the valid mask names tables this reader does not know (after 0x2C); their
    /// rows come after every known table's, so the known ones are still read.
    pub fn has_unknown_tables(&self) -> bool {
        self.valid >> TABLES != 0
    }

    /// Column `col` of row `row` (1-based, as tokens count) of table `t`.
    pub fn cell(&self, t: usize, row: u32, col: usize) -> Option<u32> {
        if row == 0 || row > self.rows(t) {
            return None;
        }
        let widths = self.widths.get(t)?;
        let row_size: usize = widths.iter().map(|&w| usize::from(w)).sum();
        let within: usize = widths.get(..col)?.iter().map(|&w| usize::from(w)).sum();
        let off = self.start[t] + (row as usize - 1) * row_size + within;
        match widths.get(col)? {
            2 => u16_at(self.data, off as u64).map(u32::from),
            _ => u32_at(self.data, off as u64),
        }
    }

    /// A coded index of table `t`'s column `col`, split into (table, row); `None` for an
    /// unused tag or a column that is not a coded index.
    pub fn coded(&self, t: usize, row: u32, col: usize) -> Option<(usize, u32)> {
        let Col::Coded(k) = SCHEMA.get(t)?.get(col)? else {
            return None;
        };
        let v = self.cell(t, row, col)?;
        let tag = (v & ((1 << k.bits) - 1)) as usize;
        let table = *k.tables.get(tag)?;
        (table != NONE).then_some((table, v >> k.bits))
    }
}

/// A CLR header and its metadata.
#[derive(Clone, Debug)]
pub struct Metadata<'a> {
    pub cor20: Cor20,
    /// The metadata root's version string ("v4.0.30319"), lossy UTF-8, at most 255 bytes.
    pub version: String,
    /// Stream headers in file order.
    pub streams: Vec<Stream<'a>>,
    /// `None` when there is no `#~`/`#-` stream or its header does not fit.
    pub tables: Option<Tables<'a>>,
    strings: &'a [u8],
    user_strings: &'a [u8],
    blob: &'a [u8],
}

fn dd(d: &[u8], off: usize) -> Option<DataDirectory> {
    Some(DataDirectory {
        virtual_address: u32_at(d, off as u64)?,
        size: u32_at(d, off as u64 + 4)?,
    })
}

impl<'a> Metadata<'a> {
    /// Reads the CLR header of `pe` and the metadata it points at.
    pub fn read(pe: &Pe<'a>) -> Result<Metadata<'a>, ClrError> {
        let d = pe
            .data_directory(dir::CLR_RUNTIME)
            .filter(|d| d.virtual_address != 0)
            .ok_or(ClrError::Absent)?;
        let (_, h) = pe
            .rva_bytes(d.virtual_address)
            .ok_or(ClrError::Header("its RVA maps to no file bytes"))?;
        let short = ClrError::Header("shorter than 72 bytes");
        let cor20 = Cor20 {
            size: u32_at(h, 0).ok_or(short.clone())?,
            runtime_major: u16_at(h, 4).ok_or(short.clone())?,
            runtime_minor: u16_at(h, 6).ok_or(short.clone())?,
            metadata: dd(h, 8).ok_or(short.clone())?,
            flags: u32_at(h, 16).ok_or(short.clone())?,
            entry_point_token: u32_at(h, 20).ok_or(short.clone())?,
            resources: dd(h, 24).ok_or(short.clone())?,
            strong_name_signature: dd(h, 32).ok_or(short.clone())?,
            code_manager_table: dd(h, 40).ok_or(short.clone())?,
            vtable_fixups: dd(h, 48).ok_or(short.clone())?,
            export_address_table_jumps: dd(h, 56).ok_or(short.clone())?,
            managed_native_header: dd(h, 64).ok_or(short)?,
        };
        let (_, m) = pe
            .rva_bytes(cor20.metadata.virtual_address)
            .ok_or(ClrError::Metadata("its RVA maps to no file bytes"))?;
        // The declared size bounds the block; a file cut short keeps what it has.
        let m = &m[..m.len().min(cor20.metadata.size as usize)];
        if u32_at(m, 0) != Some(0x424A_5342) {
            return Err(ClrError::Metadata("no BSJB signature"));
        }
        let vlen = u32_at(m, 12).ok_or(ClrError::Metadata("root truncated"))? as usize;
        if vlen > 255 {
            return Err(ClrError::Metadata("version string longer than 255 bytes"));
        }
        let vbytes = m
            .get(16..16 + vlen)
            .ok_or(ClrError::Metadata("version string truncated"))?;
        let vend = vbytes.iter().position(|&b| b == 0).unwrap_or(vlen);
        let version = String::from_utf8_lossy(&vbytes[..vend]).into_owned();
        let at = 16 + vlen;
        let count = u16_at(m, at as u64 + 2).ok_or(ClrError::Metadata("root truncated"))?;
        let mut streams = Vec::new();
        let mut p = at + 4;
        for _ in 0..usize::from(count).min(MAX_STREAMS) {
            let (Some(offset), Some(size)) = (u32_at(m, p as u64), u32_at(m, p as u64 + 4)) else {
                break;
            };
            let name_area = m.get(p + 8..).unwrap_or(&[]);
            let name_area = &name_area[..name_area.len().min(32)];
            let Some(n) = name_area.iter().position(|&b| b == 0) else {
                break;
            };
            let name = String::from_utf8_lossy(&name_area[..n]).into_owned();
            let start = (offset as usize).min(m.len());
            let end = start.saturating_add(size as usize).min(m.len());
            streams.push(Stream {
                name,
                offset,
                size,
                data: &m[start..end],
            });
            p += 8 + (n + 4) / 4 * 4;
        }
        let last = |names: &[&str]| {
            streams
                .iter()
                .rev()
                .find(|s| names.contains(&s.name.as_str()))
                .map(|s| s.data)
        };
        let strings = last(&["#Strings"]).unwrap_or(&[]);
        let user_strings = last(&["#US"]).unwrap_or(&[]);
        let blob = last(&["#Blob"]).unwrap_or(&[]);
        let tables = last(&["#~", "#-"]).and_then(read_tables);
        Ok(Metadata {
            cor20,
            version,
            streams,
            tables,
            strings,
            user_strings,
            blob,
        })
    }

    /// The `#Strings` entry at `index` (empty when out of range), cut at [`MAX_NAME`] bytes.
    pub fn string(&self, index: u32) -> &'a [u8] {
        let rest = self.strings.get(index as usize..).unwrap_or(&[]);
        let rest = &rest[..rest.len().min(MAX_NAME)];
        let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..n]
    }

    /// The `#Blob` entry at `index` (empty when out of range or cut short).
    pub fn blob(&self, index: u32) -> &'a [u8] {
        heap_entry(self.blob, index as usize).map_or(&[], |(b, _)| b)
    }

    /// Sizes of the heaps read: (`#Strings`, `#US`, `#Blob`).
    pub fn heap_sizes(&self) -> (usize, usize, usize) {
        (self.strings.len(), self.user_strings.len(), self.blob.len())
    }

    /// The `#US` heap's strings in heap order (UTF-16LE, the final flag byte dropped), each
    /// as its UTF-16 units; an entry whose length runs past the heap ends the walk.
    pub fn user_strings(&self) -> UserStrings<'a> {
        UserStrings {
            heap: self.user_strings,
            at: 1,
        }
    }
}

/// Iterator over the `#US` heap (see [`Metadata::user_strings`]).
pub struct UserStrings<'a> {
    heap: &'a [u8],
    at: usize,
}

impl<'a> Iterator for UserStrings<'a> {
    /// (heap offset, the string's bytes without the flag byte).
    type Item = (usize, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        while self.at < self.heap.len() {
            let at = self.at;
            let (bytes, next) = heap_entry(self.heap, at)?;
            self.at = next;
            if !bytes.is_empty() {
                let n = bytes.len() & !1;
                return Some((at, &bytes[..n]));
            }
        }
        None
    }
}

/// A length-prefixed heap entry (II.24.2.4): its bytes and the offset after it.
fn heap_entry(heap: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let b0 = *heap.get(at)?;
    let (len, hdr) = if b0 & 0x80 == 0 {
        (usize::from(b0), 1)
    } else if b0 & 0xC0 == 0x80 {
        (
            usize::from(b0 & 0x3F) << 8 | usize::from(*heap.get(at + 1)?),
            2,
        )
    } else if b0 & 0xE0 == 0xC0 {
        let b = heap.get(at + 1..at + 4)?;
        (
            usize::from(b0 & 0x1F) << 24
                | usize::from(b[0]) << 16
                | usize::from(b[1]) << 8
                | usize::from(b[2]),
            4,
        )
    } else {
        return None;
    };
    let start = at + hdr;
    let end = start.checked_add(len)?;
    Some((heap.get(start..end)?, end))
}

fn read_tables(d: &[u8]) -> Option<Tables<'_>> {
    let major = *d.get(4)?;
    let minor = *d.get(5)?;
    let heap_sizes = *d.get(6)?;
    let valid = crate::read::u64_at(d, 8)?;
    let sorted = crate::read::u64_at(d, 16)?;
    let mut declared = [0u32; 64];
    let mut p = 24usize;
    for (t, slot) in declared.iter_mut().enumerate() {
        if valid >> t & 1 == 1 {
            *slot = u32_at(d, p as u64)?;
            p += 4;
        }
    }
    // "Extra data" flag (0x40): four bytes after the row counts.
    if heap_sizes & 0x40 != 0 {
        p += 4;
    }
    let heap = |bit: u8| if heap_sizes & bit != 0 { 4u8 } else { 2 };
    let index = |t: usize| if declared[t] < 1 << 16 { 2u8 } else { 4 };
    let coded = |k: &Coded| {
        let most = k
            .tables
            .iter()
            .filter(|&&t| t != NONE)
            .map(|&t| declared[t])
            .max()
            .unwrap_or(0);
        if u64::from(most) < 1u64 << (16 - k.bits) {
            2u8
        } else {
            4
        }
    };
    let widths: Vec<Vec<u8>> = SCHEMA
        .iter()
        .map(|cols| {
            cols.iter()
                .map(|c| match c {
                    Col::U16 => 2,
                    Col::U32 => 4,
                    Col::Str => heap(0x01),
                    Col::Guid => heap(0x02),
                    Col::Blob => heap(0x04),
                    Col::Idx(t) => index(*t),
                    Col::Coded(k) => coded(k),
                })
                .collect()
        })
        .collect();
    let mut start = [0usize; TABLES];
    let mut fits = [0u32; TABLES];
    for t in 0..TABLES {
        start[t] = p.min(d.len());
        let row_size: usize = widths[t].iter().map(|&w| usize::from(w)).sum();
        let room = d.len().saturating_sub(p) / row_size;
        fits[t] = declared[t].min(u32::try_from(room).unwrap_or(u32::MAX));
        p = p.saturating_add(row_size.saturating_mul(declared[t] as usize));
    }
    Some(Tables {
        major,
        minor,
        heap_sizes,
        valid,
        sorted,
        declared,
        widths,
        start,
        fits,
        data: d,
    })
}

/// The metadata of `pe`, or why not (see [`Metadata::read`]).
impl<'a> Pe<'a> {
    pub fn clr_metadata(&self) -> Result<Metadata<'a>, ClrError> {
        Metadata::read(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{off, set_u32, tiny_pe32};

    /// The tiny PE with its `.idata` section grown to 0x1000 bytes, a CLR header at RVA
    /// 0x2200 and `metadata` at RVA 0x2300.
    fn with_metadata(metadata: &[u8]) -> Vec<u8> {
        let mut b = tiny_pe32();
        b.resize(0x1400, 0);
        let idata = off::SECTION_TABLE + 40;
        set_u32(&mut b, idata + 8, 0x1000);
        set_u32(&mut b, idata + 16, 0x1000);
        set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::CLR_RUNTIME, 0x2200);
        set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::CLR_RUNTIME + 4, 72);
        let h = 0x600;
        set_u32(&mut b, h, 72);
        set_u32(&mut b, h + 4, 0x0005_0002);
        set_u32(&mut b, h + 8, 0x2300);
        set_u32(&mut b, h + 12, metadata.len() as u32);
        set_u32(&mut b, h + 16, flags::IL_ONLY);
        b[0x700..0x700 + metadata.len()].copy_from_slice(metadata);
        b
    }

    /// A metadata root with `streams` (name, bytes), laid out one after the other.
    fn root(streams: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut m = b"BSJB".to_vec();
        m.extend_from_slice(&[1, 0, 1, 0, 0, 0, 0, 0, 12, 0, 0, 0]);
        m.extend_from_slice(b"v4.0.30319\0\0");
        m.extend_from_slice(&[0, 0, streams.len() as u8, 0]);
        let header_len: usize = streams.iter().map(|(n, _)| 8 + (n.len() + 4) / 4 * 4).sum();
        let mut at = m.len() + header_len;
        for (name, data) in streams {
            m.extend_from_slice(&(at as u32).to_le_bytes());
            m.extend_from_slice(&(data.len() as u32).to_le_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize((name.len() + 4) / 4 * 4, 0);
            m.extend_from_slice(&n);
            at += data.len();
        }
        for (_, data) in streams {
            m.extend_from_slice(data);
        }
        m
    }

    /// A `#~` stream with TypeRef rows (scope, name, namespace) and `declared` rows claimed.
    fn type_refs(rows: &[[u16; 3]], declared: u32) -> Vec<u8> {
        let mut t = vec![0, 0, 0, 0, 2, 0, 0, 1];
        t.extend_from_slice(&(1u64 << TABLE_TYPE_REF).to_le_bytes());
        t.extend_from_slice(&0u64.to_le_bytes());
        t.extend_from_slice(&declared.to_le_bytes());
        for r in rows {
            for v in r {
                t.extend_from_slice(&v.to_le_bytes());
            }
        }
        t
    }
    const TABLE_TYPE_REF: u32 = 1;

    #[test]
    fn tables_heaps_and_the_last_stream_of_a_name() {
        let strings = b"\0Object\0System\0".to_vec();
        let decoy = b"\0Evil!!\0Decoy!\0".to_vec();
        let mut us = vec![0u8, 11];
        us.extend_from_slice(b"h\0e\0l\0l\0o\0\0");
        us.extend_from_slice(&[0x80, 129]); // two-byte length: 129
        us.extend(std::iter::repeat_n([b'A', 0], 64).flatten());
        us.push(0);
        us.extend_from_slice(&[0x7F, 1, 2, 3]); // runs past the heap: the walk ends
        let m = root(&[
            ("#~", type_refs(&[[6, 1, 8]], 1)),
            ("#Strings", decoy),
            ("#US", us),
            ("#Strings", strings),
        ]);
        let b = with_metadata(&m);
        let pe = Pe::parse(&b).unwrap();
        let md = pe.clr_metadata().unwrap();
        assert_eq!(md.version, "v4.0.30319");
        assert_eq!(md.cor20.runtime_major, 2);
        assert_eq!(md.cor20.flags, flags::IL_ONLY);
        assert_eq!(md.streams.len(), 4);
        let tb = md.tables.as_ref().unwrap();
        assert_eq!(
            (tb.declared(table::TYPE_REF), tb.rows(table::TYPE_REF)),
            (1, 1)
        );
        // scope 6: tag 2 (AssemblyRef), row 1
        assert_eq!(
            tb.coded(table::TYPE_REF, 1, 0),
            Some((table::ASSEMBLY_REF, 1))
        );
        assert_eq!(
            md.string(tb.cell(table::TYPE_REF, 1, 1).unwrap()),
            b"Object"
        );
        assert_eq!(
            md.string(tb.cell(table::TYPE_REF, 1, 2).unwrap()),
            b"System"
        );
        assert_eq!(tb.cell(table::TYPE_REF, 2, 1), None);
        assert_eq!(tb.cell(table::TYPE_REF, 0, 1), None);
        let us: Vec<(usize, usize)> = md.user_strings().map(|(at, s)| (at, s.len())).collect();
        assert_eq!(us, vec![(1, 10), (13, 128)]);
        assert_eq!(md.string(1_000_000), b"");
    }

    #[test]
    fn a_table_that_claims_more_rows_than_its_stream_holds_is_cut() {
        let m = root(&[
            ("#~", type_refs(&[[6, 1, 1], [6, 1, 1]], u32::MAX)),
            ("#Strings", b"\0A\0".to_vec()),
        ]);
        let b = with_metadata(&m);
        let md = Metadata::read(&Pe::parse(&b).unwrap()).unwrap();
        let tb = md.tables.unwrap();
        assert_eq!(tb.declared(table::TYPE_REF), u32::MAX);
        // Row counts of 2^16 or more widen the indices into the table (4 bytes): the 12
        // bytes written hold one row of 8.
        assert_eq!(tb.rows(table::TYPE_REF), 1);
        assert_eq!(tb.cell(table::TYPE_REF, 2, 1), None);
        assert_eq!(tb.widths[table::TYPE_REF], vec![4, 2, 2]);
    }

    #[test]
    fn broken_headers_are_errors_not_panics() {
        let good = root(&[("#Strings", b"\0A\0".to_vec())]);
        let mut b = with_metadata(&good);
        b[0x700] = b'X';
        assert_eq!(
            Metadata::read(&Pe::parse(&b).unwrap()).unwrap_err(),
            ClrError::Metadata("no BSJB signature")
        );
        let b = with_metadata(&good);
        for cut in (0x600..0x700 + good.len()).step_by(3) {
            let _ =
                Pe::parse(&b[..cut]).map(|pe| pe.clr_metadata().map(|m| m.user_strings().count()));
        }
        // A version string longer than 255 bytes, a metadata RVA outside every section.
        let mut v = with_metadata(&good);
        set_u32(&mut v, 0x700 + 12, 4096);
        assert!(Metadata::read(&Pe::parse(&v).unwrap()).is_err());
        let mut v = with_metadata(&good);
        set_u32(&mut v, 0x608, 0x9000);
        assert!(Metadata::read(&Pe::parse(&v).unwrap()).is_err());
        assert_eq!(
            Metadata::read(&Pe::parse(&tiny_pe32()).unwrap()).unwrap_err(),
            ClrError::Absent
        );
    }
}
