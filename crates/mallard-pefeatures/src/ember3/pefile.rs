//! The view of a PE file that pefile 2024.8.26 (`pefile.PE(data=...)`, full load) gives
//! EMBER2024's feature code: headers, data directories, sections sorted by address, pefile's
//! address arithmetic (`adjust_*`, `contains_rva`, `get_data`, `get_offset_from_rva`), the
//! overlay, imports, exports, base relocations and the Rich header.
//!
//! pefile is lenient in its own ways and differs from the loader and from LIEF, so this is a
//! reading of its own rules (facts from its source, not its code). Every loop is capped by
//! pefile's own caps or by the file size.

// foldhash: seeded per process like std's SipHash, several times faster on the integer keys of
// relocation, exception and import-thunk tables (hashing was ~5% of an ember-v3 extraction).
use foldhash::{HashMap, HashSet};
use mallard_io::le;

/// Why pefile refuses a file (`PEFormatError`): EMBER2024 then sets `is_pe` to 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotPe(pub &'static str);

const MAX_SECTIONS: usize = 0x800;
const MAX_IMPORT_SYMBOLS: usize = 0x2000;
const MAX_IMPORT_NAME_LENGTH: usize = 0x200;
const MAX_DLL_LENGTH: usize = 0x200;
const MAX_SYMBOL_NAME_LENGTH: usize = 0x200;
const MAX_STRING_LENGTH: usize = 0x10_0000;
const MAX_SYMBOL_EXPORT_COUNT: usize = 0x2000;
/// `PE(max_repeated_symbol=120)`, the default.
const MAX_REPEATED_SYMBOL: usize = 120;
/// Base-relocation blocks read (pefile has no cap; each block needs 8 bytes of the image, so
/// this is far above any real file and only stops a pathological loop).
const MAX_RELOC_BLOCKS: usize = 1 << 20;

// pefile reads a field past the end of the data as 0.
fn u16_at(d: &[u8], o: usize) -> u16 {
    le::u16_at(d, o).unwrap_or(0)
}
fn u32_at(d: &[u8], o: usize) -> u32 {
    le::u32_at(d, o).unwrap_or(0)
}
fn u64_at(d: &[u8], o: usize) -> u64 {
    le::u64_at(d, o).unwrap_or(0)
}

/// Python's `data[a:b]` for non-negative bounds.
fn slice(d: &[u8], a: u64, b: u64) -> &[u8] {
    let n = d.len() as u64;
    let a = a.min(n) as usize;
    let b = b.min(n) as usize;
    if b <= a {
        &[]
    } else {
        &d[a..b]
    }
}

/// The 17 DOS header fields EMBER2024 keeps, in its order.
pub const DOS_MEMBERS: [&str; 17] = [
    "e_magic",
    "e_cblp",
    "e_cp",
    "e_crlc",
    "e_cparhdr",
    "e_minalloc",
    "e_maxalloc",
    "e_ss",
    "e_sp",
    "e_csum",
    "e_ip",
    "e_cs",
    "e_lfarlc",
    "e_ovno",
    "e_oemid",
    "e_oeminfo",
    "e_lfanew",
];
/// Byte offsets of those fields in the DOS header (e_lfanew is a dword).
const DOS_OFFSETS: [usize; 17] = [
    0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 36, 38, 60,
];

#[derive(Clone, Debug, Default)]
pub struct FileHeader {
    pub machine: u16,
    pub number_of_sections: u16,
    pub time_date_stamp: u32,
    pub pointer_to_symbol_table: u32,
    pub number_of_symbols: u32,
    pub size_of_optional_header: u16,
    pub characteristics: u16,
}

#[derive(Clone, Debug, Default)]
pub struct OptionalHeader {
    pub magic: u16,
    pub major_linker_version: u8,
    pub minor_linker_version: u8,
    pub size_of_code: u32,
    pub size_of_initialized_data: u32,
    pub size_of_uninitialized_data: u32,
    pub address_of_entry_point: u32,
    pub base_of_code: u32,
    pub image_base: u64,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub major_operating_system_version: u16,
    pub minor_operating_system_version: u16,
    pub major_image_version: u16,
    pub minor_image_version: u16,
    pub major_subsystem_version: u16,
    pub minor_subsystem_version: u16,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub check_sum: u32,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub size_of_stack_reserve: u64,
    pub size_of_stack_commit: u64,
    pub size_of_heap_reserve: u64,
    pub size_of_heap_commit: u64,
    pub number_of_rva_and_sizes: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Section {
    pub name: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    pub characteristics: u32,
    next_va: Option<u32>,
    va_adj: u64,
    ptr_adj: u64,
}

/// One imported function as pefile and EMBER2024 see it: a name, or an ordinal.
#[derive(Clone, Debug, PartialEq)]
pub enum ImportName {
    Name(Vec<u8>),
    Ordinal(u16),
}

pub struct PeFile<'a> {
    data: &'a [u8],
    pub dos: [u32; 17],
    pub file: FileHeader,
    pub opt: OptionalHeader,
    /// Where the optional header starts in the file.
    pub opt_offset: usize,
    /// `PE_TYPE`: 32 or 64 bits; `None` for an unknown magic (read as PE32).
    pub pe64: Option<bool>,
    /// (VirtualAddress, Size) of each directory pefile read (at most 16).
    pub dirs: Vec<(u32, u32)>,
    /// Sections in pefile's order (sorted by VirtualAddress, stable).
    pub sections: Vec<Section>,
    header_len: usize,
    /// pefile's `_get_section_by_rva_last_used`: lookups try this section first, which
    /// matters where sections overlap in memory. Only the overlay's lookups use it (they come
    /// last; [`super::warnings`] follows the cache through the full parse before them).
    pub last_used: std::cell::Cell<Option<usize>>,
    /// `has_dynamic_relocs()`, from [`super::warnings`]' walk of the load config.
    pub has_dynamic_relocs: std::cell::Cell<bool>,
}

impl<'a> PeFile<'a> {
    /// `pefile.PE(data=data)` up to the point where it raises `PEFormatError` or has the
    /// headers and sections.
    pub fn parse(data: &'a [u8]) -> Result<PeFile<'a>, NotPe> {
        if data.len() < 64 {
            return Err(NotPe(
                "Unable to read the DOS Header, possibly a truncated file.",
            ));
        }
        let e_magic = u16_at(data, 0);
        if e_magic == 0x4D5A {
            return Err(NotPe("Probably a ZM Executable (not a PE file)."));
        }
        if e_magic != 0x5A4D {
            return Err(NotPe("DOS Header magic not found."));
        }
        let mut dos = [0u32; 17];
        for (i, &o) in DOS_OFFSETS.iter().enumerate() {
            dos[i] = if i == 16 {
                u32_at(data, o)
            } else {
                u32::from(u16_at(data, o))
            };
        }
        let nt = dos[16] as usize;
        if nt > data.len() {
            return Err(NotPe("Invalid e_lfanew value, probably not a PE file"));
        }
        if data.len() - nt < 4 {
            return Err(NotPe("NT Headers not found."));
        }
        let sig = u32_at(data, nt);
        if sig == 0 {
            return Err(NotPe("NT Headers not found."));
        }
        match sig & 0xFFFF {
            0x454E => return Err(NotPe("Invalid NT Headers signature. Probably a NE file")),
            0x454C => return Err(NotPe("Invalid NT Headers signature. Probably a LE file")),
            0x584C => return Err(NotPe("Invalid NT Headers signature. Probably a LX file")),
            0x5A56 => return Err(NotPe("Invalid NT Headers signature. Probably a TE file")),
            _ => {}
        }
        if sig != 0x0000_4550 {
            return Err(NotPe("Invalid NT Headers signature."));
        }
        let fh = nt + 4;
        if data.len().saturating_sub(fh) < 20 {
            return Err(NotPe("File Header missing"));
        }
        let file = FileHeader {
            machine: u16_at(data, fh),
            number_of_sections: u16_at(data, fh + 2),
            time_date_stamp: u32_at(data, fh + 4),
            pointer_to_symbol_table: u32_at(data, fh + 8),
            number_of_symbols: u32_at(data, fh + 12),
            size_of_optional_header: u16_at(data, fh + 16),
            characteristics: u16_at(data, fh + 18),
        };
        let opt_offset = fh + 20;
        let avail = data.len().saturating_sub(opt_offset);
        // pefile unpacks a PE32 header from up to 256 bytes, else from the first 0x200 bytes
        // padded with zeros when there are at least 69; PE32+ likewise from 0x200 (73).
        let mut buf = slice(data, opt_offset as u64, opt_offset as u64 + 0x200).to_vec();
        if avail < 69 {
            return Err(NotPe(
                "No Optional Header found, invalid PE32 or PE32+ file.",
            ));
        }
        buf.resize(buf.len() + 128, 0);
        let magic = u16_at(&buf, 0);
        let pe64 = match magic {
            0x10b => Some(false),
            0x20b => Some(true),
            _ => None,
        };
        if pe64 == Some(true) && avail < 73 {
            return Err(NotPe(
                "No Optional Header found, invalid PE32 or PE32+ file.",
            ));
        }
        let b = &buf;
        let wide = pe64 == Some(true);
        let q = |o: usize| {
            if wide {
                u64_at(b, o)
            } else {
                u64::from(u32_at(b, o))
            }
        };
        let (image_base, stack_at) = if wide {
            (u64_at(b, 24), 72)
        } else {
            (u64::from(u32_at(b, 28)), 72)
        };
        let step = if wide { 8 } else { 4 };
        let opt = OptionalHeader {
            magic,
            major_linker_version: b[2],
            minor_linker_version: b[3],
            size_of_code: u32_at(b, 4),
            size_of_initialized_data: u32_at(b, 8),
            size_of_uninitialized_data: u32_at(b, 12),
            address_of_entry_point: u32_at(b, 16),
            base_of_code: u32_at(b, 20),
            image_base,
            section_alignment: u32_at(b, 32),
            file_alignment: u32_at(b, 36),
            major_operating_system_version: u16_at(b, 40),
            minor_operating_system_version: u16_at(b, 42),
            major_image_version: u16_at(b, 44),
            minor_image_version: u16_at(b, 46),
            major_subsystem_version: u16_at(b, 48),
            minor_subsystem_version: u16_at(b, 50),
            size_of_image: u32_at(b, 56),
            size_of_headers: u32_at(b, 60),
            check_sum: u32_at(b, 64),
            subsystem: u16_at(b, 68),
            dll_characteristics: u16_at(b, 70),
            size_of_stack_reserve: q(stack_at),
            size_of_stack_commit: q(stack_at + step),
            size_of_heap_reserve: q(stack_at + 2 * step),
            size_of_heap_commit: q(stack_at + 3 * step),
            number_of_rva_and_sizes: u32_at(b, stack_at + 4 * step + 4),
        };
        let opt_size = if wide { 112 } else { 96 };
        // Data directories: at most 16, read past the end as zeros (one short entry).
        let mut dirs = Vec::new();
        let mut off = opt_offset + opt_size;
        let n = (opt.number_of_rva_and_sizes & 0x7FFF_FFFF) as usize;
        for _ in 0..n.min(16) {
            if data.len() == off {
                break;
            }
            // A short last entry is read padded with zeros.
            let mut e = [0u8; 8];
            let have = slice(data, off as u64, off as u64 + 8);
            e[..have.len()].copy_from_slice(have);
            dirs.push((u32_at(&e, 0), u32_at(&e, 4)));
            off += 8;
            if off >= opt_offset + opt_size + 8 * 16 {
                break;
            }
        }
        let mut pe = PeFile {
            data,
            dos,
            file,
            opt,
            opt_offset,
            pe64,
            dirs,
            sections: Vec::new(),
            header_len: 0,
            last_used: std::cell::Cell::new(None),
            has_dynamic_relocs: std::cell::Cell::new(false),
        };
        let sections_offset = opt_offset + usize::from(pe.file.size_of_optional_header);
        let offset = pe.parse_sections(sections_offset)?;
        let lowest = pe
            .sections
            .iter()
            .filter(|s| s.pointer_to_raw_data > 0)
            .map(|s| u64::from(s.pointer_to_raw_data & !0x1FF))
            .min();
        pe.header_len = match lowest {
            Some(l) if l != 0 && l >= offset as u64 => (l as usize).min(data.len()),
            _ => offset.min(data.len()),
        };
        Ok(pe)
    }

    fn parse_sections(&mut self, offset: usize) -> Result<usize, NotPe> {
        let data = self.data;
        let sa = self.opt.section_alignment;
        let fa = self.opt.file_alignment;
        let n = usize::from(self.file.number_of_sections);
        for i in 0..n {
            if i >= MAX_SECTIONS {
                break;
            }
            let so = offset + 40 * i;
            let raw = slice(data, so as u64, so as u64 + 40);
            if raw.len() == 40 && raw.iter().all(|&b| b == 0) {
                break;
            }
            if raw.is_empty() {
                break;
            }
            if raw.len() < 40 {
                // Section.__unpack__ raises, and nothing catches it.
                return Err(NotPe("Data length less than expected header length."));
            }
            let mut name = [0u8; 8];
            name.copy_from_slice(&raw[..8]);
            let s = Section {
                name,
                virtual_size: u32_at(raw, 8),
                virtual_address: u32_at(raw, 12),
                size_of_raw_data: u32_at(raw, 16),
                pointer_to_raw_data: u32_at(raw, 20),
                characteristics: u32_at(raw, 36),
                next_va: None,
                va_adj: adjust_section_alignment(u32_at(raw, 12), sa, fa),
                ptr_adj: 0,
            };
            let mut errors = 0;
            let len = data.len() as u64;
            if u64::from(s.size_of_raw_data) + u64::from(s.pointer_to_raw_data) > len {
                errors += 1;
            }
            if u64::from(s.pointer_to_raw_data & !0x1FF) > len {
                errors += 1;
            }
            if s.virtual_size > 0x1000_0000 {
                errors += 1;
            }
            if s.va_adj > 0x1000_0000 {
                errors += 1;
            }
            if fa != 0 && !s.pointer_to_raw_data.is_multiple_of(fa) {
                errors += 1;
            }
            if errors >= 3 {
                break;
            }
            self.sections.push(s);
        }
        self.sections.sort_by_key(|s| s.virtual_address);
        let k = self.sections.len();
        for i in 0..k {
            let next = self.sections.get(i + 1).map(|s| s.virtual_address);
            let s = &mut self.sections[i];
            s.next_va = next;
            let mut p = u64::from(s.pointer_to_raw_data & !0x1FF);
            if sa < 0x1000 && s.pointer_to_raw_data == s.virtual_address {
                p = u64::from(s.virtual_address);
            }
            s.ptr_adj = p;
        }
        Ok(if n > 0 && !self.sections.is_empty() {
            offset + 40 * n
        } else {
            offset
        })
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// `section.contains_rva(rva)`.
    pub fn contains_rva(&self, s: &Section, rva: u64) -> bool {
        let len = self.data.len() as i128;
        let size = if len - i128::from(s.ptr_adj) < i128::from(s.size_of_raw_data) {
            u64::from(s.virtual_size)
        } else {
            u64::from(s.size_of_raw_data.max(s.virtual_size))
        };
        let mut size = size;
        if let Some(next) = s.next_va {
            if next > s.virtual_address && s.va_adj + size > u64::from(next) {
                size = u64::from(next).wrapping_sub(s.va_adj);
            }
        }
        s.va_adj <= rva && rva < s.va_adj.saturating_add(size)
    }

    /// `get_section_by_rva` (without pefile's last-used cache, which only matters for
    /// sections that overlap in memory).
    pub fn section_by_rva(&self, rva: u64) -> Option<&Section> {
        self.sections.iter().find(|s| self.contains_rva(s, rva))
    }

    /// `section.get_data(start, length)`.
    fn section_data(&self, s: &Section, start: Option<u64>, length: Option<u64>) -> &'a [u8] {
        let offset = match start {
            None => s.ptr_adj as i128,
            Some(rva) => i128::from(rva) - i128::from(s.va_adj) + i128::from(s.ptr_adj),
        };
        let mut end = match length {
            Some(l) => offset + i128::from(l),
            None => offset + i128::from(s.size_of_raw_data),
        };
        let cap = i128::from(s.pointer_to_raw_data) + i128::from(s.size_of_raw_data);
        if end > cap {
            end = cap;
        }
        py_slice(self.data, offset, end)
    }

    /// A section's bytes as `section.get_data()` gives them (its entropy's input).
    pub fn section_bytes(&self, s: &Section) -> &'a [u8] {
        &self.data[self.section_range(s)]
    }

    /// Where [`Self::section_bytes`] lie in the file.
    pub fn section_range(&self, s: &Section) -> std::ops::Range<usize> {
        let n = self.data.len() as i128;
        let a = i128::from(s.ptr_adj).min(n);
        let end = (i128::from(s.ptr_adj) + i128::from(s.size_of_raw_data))
            .min(i128::from(s.pointer_to_raw_data) + i128::from(s.size_of_raw_data));
        let b = if end < 0 {
            (n + end).max(0)
        } else {
            end.min(n)
        };
        if b <= a {
            0..0
        } else {
            a as usize..b as usize
        }
    }

    /// `pe.get_data(rva, length)`; `None` where pefile raises.
    pub fn get_data(&self, rva: u64, length: Option<u64>) -> Option<&'a [u8]> {
        match self.section_by_rva(rva) {
            Some(s) => Some(self.section_data(s, Some(rva), length)),
            None => {
                let end = length.map(|l| rva.saturating_add(l));
                if rva < self.header_len as u64 {
                    let h = &self.data[..self.header_len];
                    return Some(slice(h, rva, end.unwrap_or(u64::MAX)));
                }
                if rva < self.data.len() as u64 {
                    return Some(slice(self.data, rva, end.unwrap_or(u64::MAX)));
                }
                None
            }
        }
    }

    /// `pe.get_offset_from_rva(rva)`; `None` where pefile raises.
    pub fn offset_from_rva(&self, rva: u64) -> Option<i128> {
        match self.section_by_rva(rva) {
            Some(s) => Some(i128::from(rva) - i128::from(s.va_adj) + i128::from(s.ptr_adj)),
            None if rva < self.data.len() as u64 => Some(i128::from(rva)),
            None => None,
        }
    }

    /// `get_offset_from_rva` through pefile's last-used-section cache.
    fn offset_from_rva_cached(&self, rva: u64) -> Option<i128> {
        let cached = self.last_used.get().filter(|&i| {
            self.sections
                .get(i)
                .is_some_and(|s| self.contains_rva(s, rva))
        });
        let idx = cached.or_else(|| self.sections.iter().position(|s| self.contains_rva(s, rva)));
        match idx {
            Some(i) => {
                self.last_used.set(Some(i));
                let s = &self.sections[i];
                Some(i128::from(rva) - i128::from(s.va_adj) + i128::from(s.ptr_adj))
            }
            None if rva < self.data.len() as u64 => Some(i128::from(rva)),
            None => None,
        }
    }

    /// `pe.get_string_at_rva(rva, max_length)`: bytes up to the first NUL.
    pub fn string_at_rva(&self, rva: u64, max_length: usize) -> Vec<u8> {
        let raw = match self.section_by_rva(rva) {
            None => slice(self.data, rva, rva.saturating_add(max_length as u64)),
            Some(s) => self.section_data(s, Some(rva), Some(max_length as u64)),
        };
        let end = memchr::memchr(0, raw).unwrap_or(raw.len());
        raw[..end].to_vec()
    }

    /// `get_overlay_data_start_offset()`.
    pub fn overlay_offset(&self) -> Option<usize> {
        let len = self.data.len() as i128;
        let mut best: i128 = 0;
        let mut consider = |off: i128, size: i128| {
            let s = off + size;
            if best < s && s <= len {
                best = s;
            }
        };
        consider(
            self.opt_offset as i128,
            i128::from(self.file.size_of_optional_header),
        );
        for s in &self.sections {
            consider(
                i128::from(s.pointer_to_raw_data),
                i128::from(s.size_of_raw_data),
            );
        }
        for (i, &(va, size)) in self.dirs.iter().enumerate() {
            if i == 4 {
                continue;
            }
            if let Some(off) = self.offset_from_rva_cached(u64::from(va)) {
                consider(off, i128::from(size));
            }
        }
        if len > best {
            Some(best as usize)
        } else {
            None
        }
    }

    /// The entry section's name as EMBER2024 picks it: the last section that contains the
    /// entry point, else the first executable one.
    pub fn entry_section(&self) -> Option<&Section> {
        let ep = u64::from(self.opt.address_of_entry_point);
        let mut found: Option<&Section> = None;
        for s in &self.sections {
            if self.contains_rva(s, ep) {
                found = Some(s);
            }
        }
        found
    }

    /// `has_relocs()`: the base-relocation directory parsed into at least one block.
    pub fn has_relocs(&self) -> bool {
        let Some(&(va, size)) = self.dirs.get(5) else {
            return false;
        };
        if va == 0 || !self.directory_is_parsed(5) {
            return false;
        }
        let mut rva = u64::from(va);
        let end = rva + u64::from(size);
        let image = u64::from(self.opt.size_of_image);
        let mut blocks = 0;
        while rva < end && blocks < MAX_RELOC_BLOCKS {
            let Some(d) = self.get_data(rva, Some(8)) else {
                return blocks > 0;
            };
            if d.len() < 8 {
                return blocks > 0;
            }
            let block_va = u64::from(u32_at(d, 0));
            let block_size = u64::from(u32_at(d, 4));
            if block_va > image || block_size > image {
                return blocks > 0;
            }
            blocks += 1;
            if block_size == 0 {
                break;
            }
            rva += block_size;
        }
        blocks > 0
    }

    /// pefile parses directories in a fixed order and stops at the first index the header
    /// lacks: whether directory `index` is reached.
    fn directory_is_parsed(&self, index: usize) -> bool {
        const ORDER: [usize; 10] = [1, 0, 2, 6, 5, 9, 10, 13, 11, 3];
        for &i in &ORDER {
            if i >= self.dirs.len() {
                return false;
            }
            if i == index {
                return true;
            }
        }
        false
    }

    /// The Rich header's decoded values (comp_id, count, ...), as `RICH_HEADER.values`.
    pub fn rich_values(&self) -> Vec<u32> {
        const RICH: u32 = 0x6863_6952;
        let data = self.data;
        let end = self.opt_offset.min(data.len());
        if end <= 0x80 {
            return Vec::new();
        }
        let Some(pos) = memchr::memmem::find(&data[0x80..end], b"Rich") else {
            return Vec::new();
        };
        let rich_index = 0x80 + pos;
        let rd = slice(data, 0x80, rich_index as u64 + 8);
        let rd = &rd[..4 * (rd.len() / 4)];
        let words: Vec<u32> = rd.chunks_exact(4).map(|c| u32_at(c, 0)).collect();
        let Some(ri) = words.iter().position(|&w| w == RICH) else {
            return Vec::new();
        };
        // pefile would raise IndexError here (no key after "Rich"); read as no header.
        let Some(&key) = words.get(ri + 1) else {
            return Vec::new();
        };
        let mut values = Vec::new();
        let w = words.get(4..).unwrap_or(&[]);
        for i in 0..w.len() / 2 {
            if w[2 * i] == RICH {
                break;
            }
            values.push(w[2 * i] ^ key);
            values.push(w[2 * i + 1] ^ key);
        }
        values
    }

    /// The import directory as pefile parses it: (dll name, functions) per descriptor kept.
    pub fn imports(&self) -> Vec<(Vec<u8>, Vec<ImportName>)> {
        let mut out = Vec::new();
        let Some(&(va, _size)) = self.dirs.get(1) else {
            return out;
        };
        if va == 0 {
            return out;
        }
        let mut total_symbols = 0usize;
        let mut rva = u64::from(va);
        let mut error_count = 0;
        let len = self.data.len() as i128;
        // Descriptors are 20 bytes; the file size bounds how many can be distinct.
        for _ in 0..(self.data.len() / 20 + 2) {
            let Some(d) = self.get_data(rva, Some(20)) else {
                break;
            };
            if d.len() < 20 || d.iter().all(|&b| b == 0) {
                break;
            }
            let file_offset = self.offset_from_rva(rva).unwrap_or(0);
            let oft = u64::from(u32_at(d, 0));
            let name_rva = u64::from(u32_at(d, 12));
            let ft = u64::from(u32_at(d, 16));
            rva += 20;
            let mut max_len: i128 = len - file_offset;
            if rva > oft || rva > ft {
                max_len = (i128::from(rva) - i128::from(oft)).max(i128::from(rva) - i128::from(ft));
            }
            let syms = self.parse_imports(oft, ft, max_len, &mut total_symbols);
            if error_count > 5 {
                break;
            }
            let syms = match syms {
                Some(s) if !s.is_empty() => s,
                _ => {
                    error_count += 1;
                    continue;
                }
            };
            let mut dll = self.string_at_rva(name_rva, MAX_DLL_LENGTH);
            if !is_valid_dos_filename(&dll) {
                dll = b"*invalid*".to_vec();
            }
            if dll.is_empty() {
                continue;
            }
            let lower = dll.to_ascii_lowercase();
            let syms = syms
                .into_iter()
                .map(|s| match s {
                    ImportName::Ordinal(o) => match super::ordinals::lookup(&lower, o) {
                        Some(name) => ImportName::Name(name),
                        None => ImportName::Ordinal(o),
                    },
                    n => n,
                })
                .collect();
            out.push((dll, syms));
        }
        out
    }

    /// `parse_imports`: `None` or empty where pefile gives no symbols (or raises).
    fn parse_imports(
        &self,
        oft: u64,
        ft: u64,
        max_len: i128,
        total: &mut usize,
    ) -> Option<Vec<ImportName>> {
        let ilt = self.import_table(oft, max_len, total);
        let iat = self.import_table(ft, max_len, total);
        let ilt_some = ilt.as_ref().is_some_and(|t| !t.is_empty());
        let iat_some = iat.as_ref().is_some_and(|t| !t.is_empty());
        if !ilt_some && !iat_some {
            return Some(Vec::new());
        }
        let table = if ilt_some { ilt? } else { iat? };
        let (ordinal_flag, mask): (u64, u64) = if self.pe64 == Some(true) {
            (1 << 63, 0x7FFF_FFFF_FFFF_FFFF)
        } else {
            (0x8000_0000, 0x7FFF_FFFF)
        };
        let mut out = Vec::new();
        let mut num_invalid = 0usize;
        for (idx, &entry) in table.iter().enumerate() {
            let mut ord: Option<u16> = None;
            let mut name: Option<Vec<u8>> = None;
            if entry != 0 {
                if entry & ordinal_flag != 0 {
                    ord = Some((entry & 0xFFFF) as u16);
                } else if self.get_data(entry & mask, Some(2)).is_some() {
                    let mut n = self.string_at_rva(entry.wrapping_add(2), MAX_IMPORT_NAME_LENGTH);
                    if !is_valid_function_name(&n, false) {
                        n = b"*invalid*".to_vec();
                    }
                    name = Some(n);
                }
            }
            if ord.is_none() && name.is_none() {
                // "Invalid entries, aborting parsing."
                return None;
            }
            if name.as_deref() == Some(b"*invalid*".as_slice()) {
                if num_invalid > 1000 && num_invalid == idx {
                    return None;
                }
                num_invalid += 1;
                continue;
            }
            match (ord, name) {
                (Some(o), _) if o != 0 => out.push(ImportName::Ordinal(o)),
                (_, Some(n)) if !n.is_empty() => out.push(ImportName::Name(n)),
                _ => {}
            }
        }
        Some(out)
    }

    /// `get_import_table`: thunk values, `None` where pefile returns None.
    fn import_table(&self, rva0: u64, max_len: i128, total: &mut usize) -> Option<Vec<u64>> {
        let wide = self.pe64 == Some(true);
        let size: u64 = if wide { 8 } else { 4 };
        let ordinal_flag: u64 = if wide { 1 << 63 } else { 0x8000_0000 };
        let mut table = Vec::new();
        let mut repeated = 0usize;
        let mut set32: HashSet<u64> = HashSet::default();
        let mut set64: HashSet<u64> = HashSet::default();
        let (mut min32, mut max32, mut min64, mut max64) = (u64::MAX, 0u64, u64::MAX, 0u64);
        let mut rva = rva0;
        while rva != 0 {
            if i128::from(rva) >= i128::from(rva0) + max_len {
                break;
            }
            if *total > MAX_IMPORT_SYMBOLS {
                break;
            }
            *total += 1;
            if repeated >= 15 {
                return Some(Vec::new());
            }
            let spread = 128u64 << 20;
            if (!set32.is_empty() && max32 - min32 > spread)
                || (!set64.is_empty() && max64 - min64 > spread)
            {
                return Some(Vec::new());
            }
            let d = self.get_data(rva, Some(size))?;
            if d.len() as u64 != size {
                return None;
            }
            let v = if wide {
                u64_at(d, 0)
            } else {
                u64::from(u32_at(d, 0))
            };
            if v >= rva0 && v <= rva {
                break;
            }
            if v != 0 {
                if v & ordinal_flag != 0 {
                    if v & 0x7FFF_FFFF > 0xFFFF {
                        return Some(Vec::new());
                    }
                } else if v >= 1 << 32 {
                    if !set64.insert(v) {
                        repeated += 1;
                    }
                    min64 = min64.min(v);
                    max64 = max64.max(v);
                } else {
                    if !set32.insert(v) {
                        repeated += 1;
                    }
                    min32 = min32.min(v);
                    max32 = max32.max(v);
                }
            }
            if v == 0 {
                break;
            }
            rva += size;
            table.push(v);
        }
        Some(table)
    }

    /// Exported names (or `None` for an export by ordinal only) with their ordinals, in
    /// pefile's order.
    pub fn exports(&self) -> Vec<(Option<Vec<u8>>, u32)> {
        let mut out = Vec::new();
        let Some(&(va, size)) = self.dirs.first() else {
            return out;
        };
        if va == 0 || !self.directory_is_parsed(0) {
            return out;
        }
        let rva = u64::from(va);
        let size = u64::from(size);
        let Some(d) = self.get_data(rva, Some(40)) else {
            return out;
        };
        if d.len() < 40 {
            return out;
        }
        let base = u32_at(d, 16);
        let n_funcs = u64::from(u32_at(d, 20));
        let n_names = u64::from(u32_at(d, 24));
        let a_funcs = u64::from(u32_at(d, 28));
        let a_names = u64::from(u32_at(d, 32));
        let a_ords = u64::from(u32_at(d, 36));
        let len = self.data.len() as i128;
        let until_eof = |r: u64| self.offset_from_rva(r).map(|o| len - o);
        let clamp = |x: i128, y: u64| -> i128 { x.min(i128::from(y)) };
        let get = |r: u64, l: i128| -> Option<&'a [u8]> {
            if l < 0 {
                // A negative length reads nothing in Python but still checks the address.
                return self.get_data(r, Some(0)).map(|_| &[][..]);
            }
            self.get_data(r, Some(l as u64))
        };
        let (Some(e1), Some(e2), Some(e3)) =
            (until_eof(a_names), until_eof(a_ords), until_eof(a_funcs))
        else {
            return out;
        };
        let (Some(names), Some(ords), Some(funcs)) = (
            get(a_names, clamp(e1, n_names * 4)),
            get(a_ords, clamp(e2, n_names * 4)),
            get(a_funcs, clamp(e3, n_funcs * 4)),
        ) else {
            return out;
        };
        let boundary = |r: u64| -> i128 {
            match self.section_by_rva(r) {
                Some(s) => {
                    i128::from(s.virtual_address) + self.section_bytes(s).len() as i128
                        - i128::from(r)
                }
                None => len,
            }
        };
        let word = |d: &[u8], i: u64| -> Option<u64> {
            let o = (i as usize).checked_mul(2)?;
            d.get(o..o + 2)
                .map(|b| u64::from(u16::from_le_bytes([b[0], b[1]])))
        };
        let dword = |d: &[u8], i: u64| -> Option<u64> {
            let o = (i as usize).checked_mul(4)?;
            d.get(o..o + 4).map(|b| u64::from(u32_at(b, 0)))
        };
        let py_int_div4 = |b: i128| -> u64 {
            // int(b / 4) truncates toward zero; negative bounds give no iterations.
            if b <= 0 {
                0
            } else {
                (b / 4) as u64
            }
        };
        let mut counts: HashMap<(Vec<u8>, u64), usize> = HashMap::default();
        let mut ordinals: HashSet<u64> = HashSet::default();
        let mut failures = 10i32;
        let limit = n_names.min(py_int_div4(boundary(a_names)));
        for i in 0..limit {
            let Some(sym_ord) = word(ords, i) else {
                return Vec::new();
            };
            if sym_ord * 4 >= funcs.len() as u64 {
                return Vec::new();
            }
            let Some(addr) = dword(funcs, sym_ord) else {
                return Vec::new();
            };
            if addr == 0 {
                continue;
            }
            if addr >= rva && addr < rva + size && self.offset_from_rva(addr).is_none() {
                continue;
            }
            let name_addr = dword(names, i);
            if name_addr.is_none() {
                failures -= 1;
                if failures <= 0 {
                    break;
                }
            }
            let Some(name_addr) = name_addr else {
                break;
            };
            let name = self.string_at_rva(name_addr, MAX_SYMBOL_NAME_LENGTH);
            if !is_valid_function_name(&name, true) {
                break;
            }
            if self.offset_from_rva(name_addr).is_none() {
                failures -= 1;
                if failures <= 0 {
                    break;
                }
                failures -= 1;
                if failures <= 0 {
                    break;
                }
                continue;
            }
            let c = counts.entry((name.clone(), addr)).or_insert(0);
            *c += 1;
            if *c > 10 || counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                break;
            }
            let ordinal = u64::from(base) + sym_ord;
            ordinals.insert(ordinal);
            out.push((Some(name), ordinal as u32));
        }
        let mut counts: HashMap<Option<u64>, usize> = HashMap::default();
        let mut failures = 10i32;
        let limit = n_funcs.min(py_int_div4(boundary(a_funcs)));
        for idx in 0..limit {
            if ordinals.contains(&(idx + u64::from(base))) {
                continue;
            }
            let addr = dword(funcs, idx);
            if addr.is_none() {
                failures -= 1;
                if failures <= 0 {
                    // The loop did not complete: pefile returns no export directory.
                    return Vec::new();
                }
                // Otherwise pefile goes on and keeps an export without an address.
            }
            if addr == Some(0) {
                continue;
            }
            let c = counts.entry(addr).or_insert(0);
            *c += 1;
            if *c > MAX_REPEATED_SYMBOL || counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                break;
            }
            out.push((None, (u64::from(base) + idx) as u32));
        }
        let _ = MAX_STRING_LENGTH;
        out
    }
}

/// Python's `data[a:b]` with possibly negative or out-of-range bounds (negative bounds count
/// from the end, as Python does).
fn py_slice(d: &[u8], a: i128, b: i128) -> &[u8] {
    let n = d.len() as i128;
    let fix = |x: i128| -> i128 {
        if x < 0 {
            (n + x).max(0)
        } else {
            x.min(n)
        }
    };
    let (a, b) = (fix(a), fix(b));
    if b <= a {
        &[]
    } else {
        &d[a as usize..b as usize]
    }
}

/// pefile's `cache_adjust_SectionAlignment`.
fn adjust_section_alignment(va: u32, sa: u32, fa: u32) -> u64 {
    let sa = if sa < 0x1000 { fa } else { sa };
    let va = u64::from(va);
    let sa = u64::from(sa);
    if sa != 0 && va % sa != 0 {
        // sa * int(va / sa): float division, exact for 32-bit values.
        sa * (va / sa)
    } else {
        va
    }
}

fn is_valid_dos_filename(s: &[u8]) -> bool {
    s.iter()
        .all(|&c| c.is_ascii_alphanumeric() || b"!#$%&'()-@^_`{}~+,.;=[]:\\/".contains(&c))
}

fn is_valid_function_name(s: &[u8], relaxed: bool) -> bool {
    let extra: &[u8] = if relaxed {
        b"!\"#$%&'()*+,-./:<>?[\\]^_`{|}~@"
    } else {
        b"._?@$()<>"
    };
    s.iter()
        .all(|&c| c.is_ascii_alphanumeric() || extra.contains(&c))
}
