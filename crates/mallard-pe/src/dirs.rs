//! Import, delay-import and export tables, read the way LIEF 0.12.3 reads them (its quirks
//! are what EMBER's features were computed with), with caps on work.

use crate::read::{c_string, u16_at, u32_at, u64_at};
use crate::{dir, Pe};

/// An imported function: by name or by ordinal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportEntry {
    /// `Some(n)` for an import by ordinal.
    pub ordinal: Option<u16>,
    /// Name for an import by name (printable ASCII, 1..=4096 bytes); empty for ordinals.
    pub name: String,
    /// The raw thunk value (ILT entry, or IAT entry when the ILT is empty).
    pub thunk: u64,
}

/// One import descriptor (one DLL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Import {
    /// DLL name (printable ASCII, 4..=255 bytes).
    pub name: String,
    pub entries: Vec<ImportEntry>,
}

/// A delay-load import descriptor.
pub type DelayImport = Import;

/// Imports (or delay imports) plus whether a cap cut the walk short.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportTable {
    pub imports: Vec<Import>,
    /// True when `Limits::max_import_descriptors` or `max_import_thunks` stopped the walk.
    pub truncated: bool,
}

/// One exported function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportEntry {
    pub ordinal: u16,
    /// Export address table value (an RVA, or the forwarder string's RVA).
    pub address: u32,
    /// True when the address points inside the export directory (a forwarder).
    pub forwarded: bool,
    /// Name bytes (LIEF: for a forwarder, the forwarder string `DLL.Function`); may be empty.
    pub name: Vec<u8>,
}

/// The export directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Export {
    /// The DLL name when LIEF would accept it.
    pub name: Option<String>,
    pub entries: Vec<ExportEntry>,
    pub truncated: bool,
}

/// LIEF's `is_printable` / `isprint` in the C locale.
fn printable(b: &[u8]) -> bool {
    b.iter().all(|&c| (0x20..0x7f).contains(&c))
}

fn valid_dll_name(b: &[u8]) -> bool {
    (4..=255).contains(&b.len()) && printable(b)
}

fn valid_import_name(b: &[u8]) -> bool {
    !b.is_empty() && b.len() <= 0x1000 && printable(b)
}

/// `peek_string_at(off)` as a DLL name candidate (LIEF reads it unbounded; only names of at
/// most 255 bytes can be valid, so 256 bytes are enough to decide).
fn dll_name_at(d: &[u8], off: u64) -> Option<String> {
    match c_string(d, off, 255) {
        Some(Ok(s)) if valid_dll_name(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

fn import_name_at(d: &[u8], off: u64) -> Option<String> {
    match c_string(d, off, 0x1000) {
        Some(Ok(s)) if valid_import_name(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

impl<'a> Pe<'a> {
    fn thunk_at(&self, off: u64) -> Option<u64> {
        if self.is_pe32_plus() {
            u64_at(self.data(), off)
        } else {
            u32_at(self.data(), off).map(u64::from)
        }
    }

    fn thunk_size(&self) -> u64 {
        if self.is_pe32_plus() {
            8
        } else {
            4
        }
    }

    /// LIEF's `ImportEntry::is_ordinal`: the top bit set and bits 15..62 (15..30) clear.
    pub fn thunk_is_ordinal(&self, data: u64) -> bool {
        let mask = if self.is_pe32_plus() {
            1u64 << 63
        } else {
            1u64 << 31
        };
        data & mask != 0 && (data & !mask) >> 15 == 0
    }

    fn thunk_entry(&self, data: u64) -> Option<ImportEntry> {
        if self.thunk_is_ordinal(data) {
            return Some(ImportEntry {
                ordinal: Some((data & 0xffff) as u16),
                name: String::new(),
                thunk: data,
            });
        }
        let hint_off = self.lief_rva_to_offset(data);
        let name = import_name_at(self.data(), hint_off.wrapping_add(2))?;
        Some(ImportEntry {
            ordinal: None,
            name,
            thunk: data,
        })
    }

    /// The import table as LIEF 0.12.3 reads it: descriptors from the IMPORT directory while
    /// inside `[offset, offset + Size)` (a Size of 0 means no imports), stopping at an all-zero
    /// descriptor or a zero Name RVA; descriptors whose DLL name is not 4..=255 printable bytes
    /// are skipped; thunks from the ILT (falling back to the IAT value where the ILT value is 0)
    /// until both are 0; names that are not 1..=4096 printable bytes are dropped.
    pub fn lief_imports(&self) -> ImportTable {
        let mut out = ImportTable::default();
        let Some(d) = self.lief_dir(dir::IMPORT) else {
            return out;
        };
        let data = self.data();
        let w = self.thunk_size();
        let start = self.lief_rva_to_offset(u64::from(d.virtual_address));
        let end = start.wrapping_add(u64::from(d.size));
        let mut pos = start;
        let mut descriptors = 0usize;
        let mut thunks = 0usize;
        let mut name_bytes = 0usize;
        'desc: while pos < end {
            let (Some(ilt), Some(ts), Some(fc), Some(name_rva), Some(iat)) = (
                u32_at(data, pos),
                u32_at(data, pos.wrapping_add(4)),
                u32_at(data, pos.wrapping_add(8)),
                u32_at(data, pos.wrapping_add(12)),
                u32_at(data, pos.wrapping_add(16)),
            ) else {
                break;
            };
            pos = pos.wrapping_add(20);
            if ilt == 0 && ts == 0 && fc == 0 && name_rva == 0 && iat == 0 {
                break;
            }
            if name_rva == 0 {
                break;
            }
            descriptors += 1;
            if descriptors > self.limits().max_import_descriptors {
                out.truncated = true;
                break;
            }
            let Some(name) = dll_name_at(data, self.lief_rva_to_offset(u64::from(name_rva))) else {
                continue;
            };
            let mut lt_off = if ilt > 0 {
                self.lief_rva_to_offset(u64::from(ilt))
            } else {
                0
            };
            let mut iat_off = if iat > 0 {
                self.lief_rva_to_offset(u64::from(iat))
            } else {
                0
            };
            let mut iat_v = 0u64;
            let mut table = 0u64;
            if iat_off > 0 {
                if let Some(v) = self.thunk_at(iat_off) {
                    iat_v = v;
                    table = v;
                    iat_off = iat_off.wrapping_add(w);
                }
            }
            if lt_off > 0 {
                if let Some(v) = self.thunk_at(lt_off) {
                    table = v;
                    lt_off = lt_off.wrapping_add(w);
                }
            }
            let mut imp = Import {
                name,
                entries: Vec::new(),
            };
            while table != 0 || iat_v != 0 {
                thunks += 1;
                if thunks > self.limits().max_import_thunks {
                    out.truncated = true;
                    out.imports.push(imp);
                    break 'desc;
                }
                let value = if table > 0 { table } else { iat_v };
                if let Some(e) = self.thunk_entry(value) {
                    name_bytes += e.name.len();
                    if name_bytes > self.limits().max_name_bytes {
                        out.truncated = true;
                        out.imports.push(imp);
                        break 'desc;
                    }
                    imp.entries.push(e);
                }
                iat_v = if iat_off > 0 {
                    match self.thunk_at(iat_off) {
                        Some(v) => {
                            iat_off = iat_off.wrapping_add(w);
                            v
                        }
                        None => 0,
                    }
                } else {
                    0
                };
                table = if lt_off > 0 {
                    match self.thunk_at(lt_off) {
                        Some(v) => {
                            lt_off = lt_off.wrapping_add(w);
                            v
                        }
                        None => 0,
                    }
                } else {
                    0
                };
            }
            out.imports.push(imp);
        }
        out
    }

    /// Delay-load imports as LIEF 0.12.3 reads them (32-byte descriptors inside
    /// `[offset, offset + Size)`, names from the delay name table until a 0 entry).
    pub fn lief_delay_imports(&self) -> ImportTable {
        let mut out = ImportTable::default();
        let Some(d) = self.lief_dir(dir::DELAY_IMPORT) else {
            return out;
        };
        let data = self.data();
        let w = self.thunk_size();
        let start = self.lief_rva_to_offset(u64::from(d.virtual_address));
        let end = start.wrapping_add(u64::from(d.size));
        let mut pos = start;
        let mut descriptors = 0usize;
        let mut thunks = 0usize;
        let mut name_bytes = 0usize;
        'desc: while pos < end {
            let mut f = [0u32; 8];
            for (k, v) in f.iter_mut().enumerate() {
                match u32_at(data, pos.wrapping_add(4 * k as u64)) {
                    Some(x) => *v = x,
                    None => break 'desc,
                }
            }
            pos = pos.wrapping_add(32);
            if f.iter().all(|&x| x == 0) {
                break;
            }
            descriptors += 1;
            if descriptors > self.limits().max_import_descriptors {
                out.truncated = true;
                break;
            }
            let [_, name_rva, _, _, name_table, ..] = f;
            let Some(name) = dll_name_at(data, self.lief_rva_to_offset(u64::from(name_rva))) else {
                continue;
            };
            let mut imp = Import {
                name,
                entries: Vec::new(),
            };
            let names_off = if name_table > 0 {
                self.lief_rva_to_offset(u64::from(name_table))
            } else {
                0
            };
            if names_off > 0 {
                let mut off = names_off;
                let mut val = self.thunk_at(off).unwrap_or(0);
                off = off.wrapping_add(w);
                while val > 0 {
                    thunks += 1;
                    if thunks > self.limits().max_import_thunks {
                        out.truncated = true;
                        out.imports.push(imp);
                        break 'desc;
                    }
                    if let Some(e) = self.thunk_entry(val) {
                        name_bytes += e.name.len();
                        if name_bytes > self.limits().max_name_bytes {
                            out.truncated = true;
                            out.imports.push(imp);
                            break 'desc;
                        }
                        imp.entries.push(e);
                    }
                    match self.thunk_at(off) {
                        Some(v) => {
                            val = v;
                            off = off.wrapping_add(w);
                        }
                        None => break,
                    }
                }
            }
            out.imports.push(imp);
        }
        out
    }

    /// The export table as LIEF 0.12.3 reads it. `None` when LIEF would record no exports
    /// (no directory, unreadable directory, empty DLL name, more than 0x1000000 entries).
    /// Entries come in export-address-table order; entries with address 0 or whose name
    /// could not be read are dropped; a forwarder's name is its forwarder string.
    pub fn lief_exports(&self) -> Option<Export> {
        let d = self.lief_dir(dir::EXPORT)?;
        let data = self.data();
        let rva = d.virtual_address;
        let range_end = rva.wrapping_add(d.size);
        let base = self.lief_rva_to_offset(u64::from(rva));
        let f = |k: u64| u32_at(data, base.wrapping_add(k));
        let (name_rva, ord_base, n_addr, n_names, eat_rva, npt_rva, ot_rva) =
            (f(12)?, f(16)?, f(20)?, f(24)?, f(28)?, f(32)?, f(36)?);
        u32_at(data, base.wrapping_add(36))?;
        let ord_base = ord_base as u16;
        // DLL name: peek_string_at(offset, 255).
        let name_off = self.lief_rva_to_offset(u64::from(name_rva));
        let dll = lief_string_max(data, name_off, 255);
        if dll.is_empty() {
            return None;
        }
        let name = valid_dll_name(&dll).then(|| String::from_utf8_lossy(&dll).into_owned());
        if n_addr > 0x0100_0000 || n_names > 0x0100_0000 {
            return None;
        }
        let eat = u64::from(self.lief_rva_to_offset(u64::from(eat_rva)) as u32);
        let ot = u64::from(self.lief_rva_to_offset(u64::from(ot_rva)) as u32);
        let npt = u64::from(self.lief_rva_to_offset(u64::from(npt_rva)) as u32);
        let cap = self.limits().max_exports;
        let mut truncated = false;
        let mut name_bytes = 0usize;
        let name_cap = self.limits().max_name_bytes;
        let mut entries: Vec<ExportEntry> = Vec::new();
        let mut corrupted = vec![0u64; 1024]; // bitset over u16 ordinals
        let mark = |o: u16, c: &mut Vec<u64>| {
            if let Some(w) = c.get_mut(usize::from(o) / 64) {
                *w |= 1 << (o % 64);
            }
        };
        for i in 0..u64::from(n_addr) {
            if entries.len() >= cap {
                truncated = true;
                break;
            }
            let Some(addr) = u32_at(data, eat + i * 4) else {
                break;
            };
            let ordinal = (i as u16).wrapping_add(ord_base);
            let forwarded = rva <= addr && addr < range_end;
            if addr == 0 {
                mark(ordinal, &mut corrupted);
            }
            let mut name = Vec::new();
            if forwarded && addr > 0 {
                let off = u64::from(self.lief_rva_to_offset(u64::from(addr)) as u32);
                if let Some(Ok(s)) = c_string(data, off, 3000) {
                    if printable(s) && name_bytes + s.len() <= name_cap {
                        name_bytes += s.len();
                        name = s.to_vec();
                    } else if printable(s) {
                        truncated = true;
                    }
                }
            }
            entries.push(ExportEntry {
                ordinal,
                address: if forwarded { 0 } else { addr },
                forwarded,
                name,
            });
        }
        for i in 0..u64::from(n_names) {
            if i >= cap as u64 {
                truncated = true;
                break;
            }
            let Some(idx) = u16_at(data, ot + i * 2) else {
                break;
            };
            let Some(entry) = entries.get_mut(usize::from(idx)) else {
                break;
            };
            if entry.name.is_empty() {
                let Some(nrva) = u32_at(data, npt + i * 4) else {
                    mark(entry.ordinal, &mut corrupted);
                    continue;
                };
                let off = u64::from(self.lief_rva_to_offset(u64::from(nrva)) as u32);
                match c_string(data, off, 3000) {
                    Some(Ok(s)) if !s.is_empty() => {
                        if name_bytes + s.len() > name_cap {
                            truncated = true;
                            break;
                        }
                        name_bytes += s.len();
                        entry.name = s.to_vec();
                    }
                    _ => mark(entry.ordinal, &mut corrupted),
                }
            }
        }
        let is_marked = |o: u16| {
            corrupted
                .get(usize::from(o) / 64)
                .is_some_and(|w| w & (1 << (o % 64)) != 0)
        };
        entries.retain(|e| !is_marked(e.ordinal));
        Some(Export {
            name,
            entries,
            truncated,
        })
    }
}

/// LIEF's `peek_string_at(offset, maxsize)`: at most `maxsize` bytes are read and the last
/// byte read is replaced by NUL (so a string with no NUL in `maxsize` bytes keeps
/// `maxsize - 1`); empty when the offset is past the end.
fn lief_string_max(d: &[u8], off: u64, maxsize: usize) -> Vec<u8> {
    let Ok(start) = usize::try_from(off) else {
        return Vec::new();
    };
    let Some(rest) = d.get(start..) else {
        return Vec::new();
    };
    let window = &rest[..rest.len().min(maxsize)];
    match window.iter().position(|&b| b == 0) {
        Some(n) => window[..n].to_vec(),
        None => window[..window.len().saturating_sub(1)].to_vec(),
    }
}
