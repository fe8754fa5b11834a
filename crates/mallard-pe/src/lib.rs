//! mallard-pe: a small PE (Portable Executable) reader for hostile input.
//!
//! * Input is a byte slice (the caller reads or maps the file once); nothing is copied except
//!   the small header structures and the names the caller asks for.
//! * Every read is bounds-checked (`Option`), arithmetic on header values is checked or
//!   explicitly wrapping (where LIEF's 32-bit arithmetic is reproduced on purpose), every loop
//!   is bounded by the file size and by a count cap from [`Limits`], and no allocation is sized
//!   from a header field (only from the file size or a cap).
//! * Two views where tools disagree: the loader-like view ([`Pe::rva_to_offset`]) and the
//!   LIEF 0.12 view ([`Pe::lief_rva_to_offset`], [`Pe::lief_imports`], ...) that EMBER's
//!   features were computed with. See README.md for the LIEF 0.12 behaviours reproduced.

#![forbid(unsafe_code)]

pub mod clr;
mod dirs;
mod read;
pub mod synth;

pub use dirs::{DelayImport, Export, ExportEntry, Import, ImportEntry, ImportTable};
use read::{u16_at, u32_at, u64_at};

/// Default cap on the input size: 256 MiB.
pub const DEFAULT_MAX_FILE_SIZE: usize = 256 << 20;

/// Caps on work and memory per file. Defaults are far above what real files use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Refuse larger inputs.
    pub max_file_size: usize,
    /// Section headers read (LIEF 0.12 reads at most 1000).
    pub max_sections: usize,
    /// Import (and delay-import) descriptors read.
    pub max_import_descriptors: usize,
    /// Thunks (import entries) visited over all descriptors of one table.
    pub max_import_thunks: usize,
    /// Export address-table entries and name pointers read.
    pub max_exports: usize,
    /// Bytes of import / export names kept per table (names may be shared by many thunks).
    pub max_name_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_sections: 1000,
            max_import_descriptors: 1 << 16,
            max_import_thunks: 1 << 20,
            max_exports: 1 << 20,
            max_name_bytes: 64 << 20,
        }
    }
}

/// Why a byte slice is not a PE file we can read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PeError {
    #[error("file too large: {size} bytes (limit {limit})")]
    TooLarge { size: usize, limit: usize },
    #[error("not a PE file: {0}")]
    NotPe(&'static str),
    #[error("truncated PE: {0}")]
    Truncated(&'static str),
    #[error("unknown optional header magic 0x{magic:x} and SizeOfOptionalHeader 0x{size:x}")]
    UnknownKind { magic: u16, size: u16 },
}

/// The IMAGE_DOS_HEADER (64 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DosHeader {
    pub e_magic: u16,
    pub e_cblp: u16,
    pub e_cp: u16,
    pub e_crlc: u16,
    pub e_cparhdr: u16,
    pub e_minalloc: u16,
    pub e_maxalloc: u16,
    pub e_ss: u16,
    pub e_sp: u16,
    pub e_csum: u16,
    pub e_ip: u16,
    pub e_cs: u16,
    pub e_lfarlc: u16,
    pub e_ovno: u16,
    pub e_res: [u16; 4],
    pub e_oemid: u16,
    pub e_oeminfo: u16,
    pub e_res2: [u16; 10],
    pub e_lfanew: u32,
}

/// The COFF file header (after `PE\0\0`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CoffHeader {
    pub machine: u16,
    pub number_of_sections: u16,
    pub time_date_stamp: u32,
    pub pointer_to_symbol_table: u32,
    pub number_of_symbols: u32,
    pub size_of_optional_header: u16,
    pub characteristics: u16,
}

/// PE32 or PE32+.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeKind {
    Pe32,
    Pe32Plus,
}

/// The optional header; PE32 and PE32+ fields widened to a common form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OptionalHeader {
    pub magic: u16,
    pub major_linker_version: u8,
    pub minor_linker_version: u8,
    pub size_of_code: u32,
    pub size_of_initialized_data: u32,
    pub size_of_uninitialized_data: u32,
    pub address_of_entry_point: u32,
    pub base_of_code: u32,
    /// PE32 only (0 for PE32+).
    pub base_of_data: u32,
    pub image_base: u64,
    pub section_alignment: u32,
    pub file_alignment: u32,
    pub major_operating_system_version: u16,
    pub minor_operating_system_version: u16,
    pub major_image_version: u16,
    pub minor_image_version: u16,
    pub major_subsystem_version: u16,
    pub minor_subsystem_version: u16,
    pub win32_version_value: u32,
    pub size_of_image: u32,
    pub size_of_headers: u32,
    pub check_sum: u32,
    pub subsystem: u16,
    pub dll_characteristics: u16,
    pub size_of_stack_reserve: u64,
    pub size_of_stack_commit: u64,
    pub size_of_heap_reserve: u64,
    pub size_of_heap_commit: u64,
    pub loader_flags: u32,
    pub number_of_rva_and_sizes: u32,
}

/// One data directory entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DataDirectory {
    pub virtual_address: u32,
    pub size: u32,
}

/// Data directory indices.
pub mod dir {
    pub const EXPORT: usize = 0;
    pub const IMPORT: usize = 1;
    pub const RESOURCE: usize = 2;
    pub const EXCEPTION: usize = 3;
    pub const CERTIFICATE: usize = 4;
    pub const BASE_RELOCATION: usize = 5;
    pub const DEBUG: usize = 6;
    pub const ARCHITECTURE: usize = 7;
    pub const GLOBAL_PTR: usize = 8;
    pub const TLS: usize = 9;
    pub const LOAD_CONFIG: usize = 10;
    pub const BOUND_IMPORT: usize = 11;
    pub const IAT: usize = 12;
    pub const DELAY_IMPORT: usize = 13;
    pub const CLR_RUNTIME: usize = 14;
    pub const RESERVED: usize = 15;
}

/// Section characteristics flags used by callers.
pub mod scn {
    pub const CNT_CODE: u32 = 0x0000_0020;
    pub const CNT_INITIALIZED_DATA: u32 = 0x0000_0040;
    pub const CNT_UNINITIALIZED_DATA: u32 = 0x0000_0080;
    pub const MEM_DISCARDABLE: u32 = 0x0200_0000;
    pub const MEM_EXECUTE: u32 = 0x2000_0000;
    pub const MEM_READ: u32 = 0x4000_0000;
    pub const MEM_WRITE: u32 = 0x8000_0000;
}

/// A section header (40 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// The raw 8-byte name field.
    pub name_raw: [u8; 8],
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub size_of_raw_data: u32,
    pub pointer_to_raw_data: u32,
    pub pointer_to_relocations: u32,
    pub pointer_to_linenumbers: u32,
    pub number_of_relocations: u16,
    pub number_of_linenumbers: u16,
    pub characteristics: u32,
}

impl Section {
    /// Name bytes up to the first NUL (what LIEF and most tools show).
    pub fn name_bytes(&self) -> &[u8] {
        let end = self.name_raw.iter().position(|&b| b == 0).unwrap_or(8);
        self.name_raw.get(..end).unwrap_or(&[])
    }

    /// Name as text, non-UTF-8 bytes replaced.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(self.name_bytes()).into_owned()
    }

    /// The file range LIEF 0.12 takes as the section's content (its entropy input):
    /// `min(VirtualSize, SizeOfRawData)` bytes (all of SizeOfRawData when VirtualSize is 0)
    /// from PointerToRawData, cut at the end of the file with LIEF's 32-bit arithmetic;
    /// empty when that range cannot be read.
    pub fn lief_content_range(&self, file_len: usize) -> std::ops::Range<usize> {
        let offset = self.pointer_to_raw_data;
        let mut size = if self.virtual_size > 0 {
            self.virtual_size.min(self.size_of_raw_data)
        } else {
            self.size_of_raw_data
        };
        let len32 = u32::try_from(file_len).unwrap_or(u32::MAX);
        let end32 = offset.wrapping_add(size);
        if end32 > len32 {
            size = size.wrapping_sub(end32.wrapping_sub(len32));
        }
        // LIEF refuses contents above 3 GB; peek_data needs the whole range in the file.
        if u64::from(size) > 3 * (1u64 << 30) {
            return 0..0;
        }
        let start = offset as usize;
        match start.checked_add(size as usize) {
            Some(end) if end <= file_len && start <= file_len => start..end,
            _ => 0..0,
        }
    }

    /// Whether `rva` falls in `[VirtualAddress, VirtualAddress + VirtualSize)`.
    pub fn contains_rva(&self, rva: u64) -> bool {
        let va = u64::from(self.virtual_address);
        va <= rva && rva < va + u64::from(self.virtual_size)
    }
}

/// A parsed PE file borrowing its bytes.
#[derive(Clone, Debug)]
pub struct Pe<'a> {
    data: &'a [u8],
    limits: Limits,
    pub kind: PeKind,
    pub dos: DosHeader,
    pub coff: CoffHeader,
    pub optional: OptionalHeader,
    /// False when the file ends inside the optional header (LIEF then keeps only the DOS and
    /// COFF headers: no sections, no directories).
    pub optional_complete: bool,
    /// The 16 data directory entries at the fixed position after the optional header (where
    /// LIEF 0.12 reads them, whatever NumberOfRvaAndSizes says); fewer when the file ends first.
    pub data_directories: Vec<DataDirectory>,
    /// True when all 16 directory entries could be read.
    pub data_directories_complete: bool,
    /// Section headers read (at most `Limits::max_sections`, stopping at the end of the file).
    pub sections: Vec<Section>,
}

const PE32_OPT_SIZE: u64 = 96;
const PE64_OPT_SIZE: u64 = 112;

fn parse_dos(d: &[u8]) -> Option<DosHeader> {
    let w = |i: u64| u16_at(d, i * 2);
    let mut res = [0u16; 4];
    for (k, r) in res.iter_mut().enumerate() {
        *r = w(14 + k as u64)?;
    }
    let mut res2 = [0u16; 10];
    for (k, r) in res2.iter_mut().enumerate() {
        *r = w(20 + k as u64)?;
    }
    Some(DosHeader {
        e_magic: w(0)?,
        e_cblp: w(1)?,
        e_cp: w(2)?,
        e_crlc: w(3)?,
        e_cparhdr: w(4)?,
        e_minalloc: w(5)?,
        e_maxalloc: w(6)?,
        e_ss: w(7)?,
        e_sp: w(8)?,
        e_csum: w(9)?,
        e_ip: w(10)?,
        e_cs: w(11)?,
        e_lfarlc: w(12)?,
        e_ovno: w(13)?,
        e_res: res,
        e_oemid: w(18)?,
        e_oeminfo: w(19)?,
        e_res2: res2,
        e_lfanew: u32_at(d, 60)?,
    })
}

fn parse_coff(d: &[u8], off: u64) -> Option<CoffHeader> {
    Some(CoffHeader {
        machine: u16_at(d, off)?,
        number_of_sections: u16_at(d, off + 2)?,
        time_date_stamp: u32_at(d, off + 4)?,
        pointer_to_symbol_table: u32_at(d, off + 8)?,
        number_of_symbols: u32_at(d, off + 12)?,
        size_of_optional_header: u16_at(d, off + 16)?,
        characteristics: u16_at(d, off + 18)?,
    })
}

fn parse_optional(d: &[u8], o: u64, kind: PeKind) -> Option<OptionalHeader> {
    let b = |i: u64| read::u8_at(d, o + i);
    let h = |i: u64| u16_at(d, o + i);
    let w = |i: u64| u32_at(d, o + i);
    let q = |i: u64| u64_at(d, o + i);
    let is64 = kind == PeKind::Pe32Plus;
    Some(OptionalHeader {
        magic: h(0)?,
        major_linker_version: b(2)?,
        minor_linker_version: b(3)?,
        size_of_code: w(4)?,
        size_of_initialized_data: w(8)?,
        size_of_uninitialized_data: w(12)?,
        address_of_entry_point: w(16)?,
        base_of_code: w(20)?,
        base_of_data: if is64 { 0 } else { w(24)? },
        image_base: if is64 { q(24)? } else { u64::from(w(28)?) },
        section_alignment: w(32)?,
        file_alignment: w(36)?,
        major_operating_system_version: h(40)?,
        minor_operating_system_version: h(42)?,
        major_image_version: h(44)?,
        minor_image_version: h(46)?,
        major_subsystem_version: h(48)?,
        minor_subsystem_version: h(50)?,
        win32_version_value: w(52)?,
        size_of_image: w(56)?,
        size_of_headers: w(60)?,
        check_sum: w(64)?,
        subsystem: h(68)?,
        dll_characteristics: h(70)?,
        size_of_stack_reserve: if is64 { q(72)? } else { u64::from(w(72)?) },
        size_of_stack_commit: if is64 { q(80)? } else { u64::from(w(76)?) },
        size_of_heap_reserve: if is64 { q(88)? } else { u64::from(w(80)?) },
        size_of_heap_commit: if is64 { q(96)? } else { u64::from(w(84)?) },
        loader_flags: if is64 { w(104)? } else { w(88)? },
        number_of_rva_and_sizes: if is64 { w(108)? } else { w(92)? },
    })
}

fn parse_section(d: &[u8], o: u64) -> Option<Section> {
    let mut name_raw = [0u8; 8];
    let start = usize::try_from(o).ok()?;
    name_raw.copy_from_slice(d.get(start..start.checked_add(8)?)?);
    Some(Section {
        name_raw,
        virtual_size: u32_at(d, o + 8)?,
        virtual_address: u32_at(d, o + 12)?,
        size_of_raw_data: u32_at(d, o + 16)?,
        pointer_to_raw_data: u32_at(d, o + 20)?,
        pointer_to_relocations: u32_at(d, o + 24)?,
        pointer_to_linenumbers: u32_at(d, o + 28)?,
        number_of_relocations: u16_at(d, o + 32)?,
        number_of_linenumbers: u16_at(d, o + 34)?,
        characteristics: u32_at(d, o + 36)?,
    })
}

/// LIEF's `align`: round `value` up to a multiple of `to` (unchanged when `to` is 0).
pub fn align_up(value: u64, to: u64) -> u64 {
    if to == 0 {
        return value;
    }
    let r = value % to;
    if r > 0 {
        value.wrapping_add(to - r)
    } else {
        value
    }
}

impl<'a> Pe<'a> {
    /// Parse with default [`Limits`].
    pub fn parse(data: &'a [u8]) -> Result<Pe<'a>, PeError> {
        Self::parse_with(data, Limits::default())
    }

    /// Parse headers, data directories and the section table. Accepts what LIEF 0.12 accepts:
    /// `MZ`, `PE\0\0` at e_lfanew, a readable COFF header and PE32 optional header, and a PE
    /// type from the optional header magic (or from SizeOfOptionalHeader 0xE0/0xF0).
    pub fn parse_with(data: &'a [u8], limits: Limits) -> Result<Pe<'a>, PeError> {
        if data.len() > limits.max_file_size {
            return Err(PeError::TooLarge {
                size: data.len(),
                limit: limits.max_file_size,
            });
        }
        let dos = parse_dos(data).ok_or(PeError::NotPe("shorter than a DOS header"))?;
        if dos.e_magic != 0x5a4d {
            return Err(PeError::NotPe("no MZ signature"));
        }
        let e_lfanew = dos.e_lfanew;
        let pe_off = u64::from(e_lfanew);
        match u32_at(data, pe_off) {
            Some(0x0000_4550) => {}
            Some(_) => return Err(PeError::NotPe("no PE signature at e_lfanew")),
            None => return Err(PeError::NotPe("e_lfanew points past the end of the file")),
        }
        let coff = parse_coff(data, pe_off + 4).ok_or(PeError::Truncated("COFF header"))?;
        let opt_off = pe_off + 24;
        // LIEF reads a whole PE32 optional header to learn the type.
        if u32_at(data, opt_off + PE32_OPT_SIZE - 4).is_none() {
            return Err(PeError::Truncated("optional header"));
        }
        let magic = u16_at(data, opt_off).unwrap_or(0);
        let kind = match (magic, coff.size_of_optional_header) {
            (0x10b, _) => PeKind::Pe32,
            (0x20b, _) => PeKind::Pe32Plus,
            (_, 0xe0) => PeKind::Pe32,
            (_, 0xf0) => PeKind::Pe32Plus,
            (m, s) => return Err(PeError::UnknownKind { magic: m, size: s }),
        };
        let mut pe = Pe {
            data,
            limits,
            kind,
            dos,
            coff,
            optional: OptionalHeader::default(),
            optional_complete: false,
            data_directories: Vec::new(),
            data_directories_complete: false,
            sections: Vec::new(),
        };
        match parse_optional(data, opt_off, kind) {
            Some(o) => {
                pe.optional = o;
                pe.optional_complete = true;
            }
            None => return Ok(pe),
        }
        // Sections: after SizeOfOptionalHeader bytes (LIEF: 32-bit offset arithmetic).
        let sec_off = u64::from(
            (e_lfanew.wrapping_add(24)).wrapping_add(u32::from(pe.coff.size_of_optional_header)),
        );
        let n = usize::from(pe.coff.number_of_sections).min(limits.max_sections);
        let mut sections = Vec::with_capacity(n.min(data.len() / 40));
        for i in 0..n as u64 {
            match parse_section(data, sec_off + i * 40) {
                Some(s) => sections.push(s),
                None => break,
            }
        }
        pe.sections = sections;
        // Data directories at the fixed position after the optional header.
        let dd_off = opt_off
            + if kind == PeKind::Pe32 {
                PE32_OPT_SIZE
            } else {
                PE64_OPT_SIZE
            };
        let mut dds = Vec::with_capacity(16);
        for i in 0..16u64 {
            let o = dd_off + i * 8;
            match (u32_at(data, o), u32_at(data, o + 4)) {
                (Some(va), Some(size)) => dds.push(DataDirectory {
                    virtual_address: va,
                    size,
                }),
                _ => break,
            }
        }
        pe.data_directories_complete = dds.len() == 16;
        pe.data_directories = dds;
        Ok(pe)
    }

    /// The bytes this view was parsed from.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn is_pe32_plus(&self) -> bool {
        self.kind == PeKind::Pe32Plus
    }

    /// Data directory `i` if it was read.
    pub fn data_directory(&self, i: usize) -> Option<DataDirectory> {
        self.data_directories.get(i).copied()
    }

    /// Data directory `i` when it was read and the directory parsing that LIEF does after
    /// reading all 16 entries can take place (its RVA is non-zero).
    fn lief_dir(&self, i: usize) -> Option<DataDirectory> {
        if !self.data_directories_complete {
            return None;
        }
        self.data_directory(i).filter(|d| d.virtual_address > 0)
    }

    /// Whether the CLR runtime header directory is set (.NET assembly).
    pub fn is_dotnet(&self) -> bool {
        self.data_directory(dir::CLR_RUNTIME)
            .is_some_and(|d| d.virtual_address != 0)
    }

    /// Loader-like RVA to file offset: inside the headers, or inside a section's raw data.
    pub fn rva_to_offset(&self, rva: u32) -> Option<usize> {
        self.rva_span(rva).map(|(off, _)| off)
    }

    /// The file bytes a loader maps at `rva`, up to the end of what the file holds for the
    /// headers or the section there: `(offset, bytes)`, never empty. `None` when the RVA is
    /// outside the headers and every section, or in a section's zero-filled tail.
    pub fn rva_bytes(&self, rva: u32) -> Option<(usize, &'a [u8])> {
        let (off, end) = self.rva_span(rva)?;
        Some((off, &self.data[off..end]))
    }

    fn rva_span(&self, rva: u32) -> Option<(usize, usize)> {
        let len = self.data.len();
        if rva < self.optional.size_of_headers && (rva as usize) < len {
            let end = (self.optional.size_of_headers as usize).min(len);
            return Some((rva as usize, end));
        }
        for s in &self.sections {
            let va = s.virtual_address;
            let span = s.virtual_size.max(s.size_of_raw_data);
            let Some(delta) = rva.checked_sub(va) else {
                continue;
            };
            if delta < span {
                if delta >= s.size_of_raw_data {
                    return None;
                }
                let base = if self.optional.file_alignment >= 0x200 {
                    s.pointer_to_raw_data & !0x1ff
                } else {
                    s.pointer_to_raw_data
                };
                let off = (base as usize).checked_add(delta as usize)?;
                let end = (base as usize)
                    .saturating_add(s.size_of_raw_data as usize)
                    .min(len);
                return (off < end).then_some((off, end));
            }
        }
        None
    }

    /// LIEF 0.12's `Binary::rva_to_offset`: the first section whose
    /// `[VA, VA + max(VirtualSize, SizeOfRawData))` holds `rva` maps it as
    /// `rva - align_up(VA, SectionAlignment') + align_up(PointerToRawData, FileAlignment)`
    /// (SectionAlignment' = FileAlignment when SectionAlignment < 0x1000), 64-bit wrapping;
    /// an RVA outside every section is returned unchanged.
    pub fn lief_rva_to_offset(&self, rva: u64) -> u64 {
        for s in &self.sections {
            let va = u64::from(s.virtual_address);
            let span = u64::from(s.virtual_size.max(s.size_of_raw_data));
            if va <= rva && rva < va + span {
                let mut sa = u64::from(self.optional.section_alignment);
                let fa = u64::from(self.optional.file_alignment);
                if sa < 0x1000 {
                    sa = fa;
                }
                let sva = align_up(va, sa);
                let soff = align_up(u64::from(s.pointer_to_raw_data), fa);
                return rva.wrapping_sub(sva).wrapping_add(soff);
            }
        }
        rva
    }

    /// LIEF 0.12's `section_from_rva`: first section with `VA <= rva < VA + VirtualSize`.
    pub fn section_index_from_rva(&self, rva: u64) -> Option<usize> {
        self.sections.iter().position(|s| s.contains_rva(rva))
    }

    /// LIEF 0.12's entry section: the section holding AddressOfEntryPoint, else the first
    /// executable section, else none.
    pub fn lief_entry_section(&self) -> Option<usize> {
        self.section_index_from_rva(u64::from(self.optional.address_of_entry_point))
            .or_else(|| {
                self.sections
                    .iter()
                    .position(|s| s.characteristics & scn::MEM_EXECUTE != 0)
            })
    }

    /// LIEF 0.12's `Binary::virtual_size`: headers end (e_lfanew + 24 + sizeof optional
    /// header struct) maxed with every section's VA + VirtualSize, rounded up to
    /// SectionAlignment.
    pub fn lief_virtual_size(&self) -> u64 {
        let opt = if self.kind == PeKind::Pe32 {
            PE32_OPT_SIZE
        } else {
            PE64_OPT_SIZE
        };
        let mut size = u64::from(self.dos.e_lfanew) + 24 + opt;
        for s in &self.sections {
            size = size.max(u64::from(s.virtual_address) + u64::from(s.virtual_size));
        }
        align_up(size, u64::from(self.optional.section_alignment))
    }

    /// Offset where the overlay (data after the last section's raw data) starts, if any.
    pub fn overlay_offset(&self) -> Option<usize> {
        let end = self
            .sections
            .iter()
            .map(|s| u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data))
            .max()?;
        let end = usize::try_from(end).ok()?;
        (end < self.data.len()).then_some(end)
    }

    /// LIEF 0.12 `has_debug`: the DEBUG directory has a non-zero RVA.
    pub fn lief_has_debug(&self) -> bool {
        self.lief_dir(dir::DEBUG).is_some()
    }

    /// LIEF 0.12 `has_tls`: a TLS directory structure (24 / 40 bytes) can be read.
    pub fn lief_has_tls(&self) -> bool {
        let Some(d) = self.lief_dir(dir::TLS) else {
            return false;
        };
        let off = self.lief_rva_to_offset(u64::from(d.virtual_address));
        let n = if self.is_pe32_plus() { 40 } else { 24 };
        read::range_ok(self.data, off, n)
    }

    /// LIEF 0.12 `has_relocations`: the first relocation block header (8 bytes) can be read
    /// (offset truncated to 32 bits as LIEF does).
    pub fn lief_has_relocations(&self) -> bool {
        let Some(d) = self.lief_dir(dir::BASE_RELOCATION) else {
            return false;
        };
        let off = self.lief_rva_to_offset(u64::from(d.virtual_address)) as u32;
        read::range_ok(self.data, u64::from(off), 8)
    }

    /// LIEF 0.12 `has_resources`: the root resource directory (16 bytes) and its first entry
    /// slot (8 bytes) can be read.
    pub fn lief_has_resources(&self) -> bool {
        let Some(d) = self.lief_dir(dir::RESOURCE) else {
            return false;
        };
        let off = self.lief_rva_to_offset(u64::from(d.virtual_address)) as u32;
        read::range_ok(self.data, u64::from(off), 24)
    }

    /// `has_signatures` approximated: the certificate table (a file offset) holds a
    /// WIN_CERTIFICATE whose blob is a DER PKCS#7 signedData. (LIEF parses the whole PKCS#7.)
    pub fn has_signature(&self) -> bool {
        let Some(d) = self.lief_dir(dir::CERTIFICATE) else {
            return false;
        };
        let off = u64::from(d.virtual_address);
        let Some(len) = u32_at(self.data, off) else {
            return false;
        };
        if len <= 8 || !read::range_ok(self.data, off, u64::from(len)) {
            return false;
        }
        let Some(blob) = read::slice(self.data, off + 8, u64::from(len) - 8) else {
            return false;
        };
        const SIGNED_DATA_OID: [u8; 11] = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02,
        ];
        blob.first() == Some(&0x30)
            && blob
                .windows(SIGNED_DATA_OID.len())
                .take(64)
                .any(|w| w == SIGNED_DATA_OID)
    }

    /// LIEF 0.12's symbol count: COFF symbol records read from PointerToSymbolTable, each
    /// followed by its auxiliary records, while `index < NumberOfSymbols` and the 18-byte
    /// record can be read (LIEF reads from offset 0 when PointerToSymbolTable is 0).
    pub fn lief_symbol_count(&self) -> u64 {
        let total = u64::from(self.coff.number_of_symbols);
        let mut off = self.coff.pointer_to_symbol_table;
        let mut idx = 0u64;
        let mut count = 0u64;
        let cap = self.data.len() as u64 / 18 + 1;
        while idx < total && count < cap {
            if !read::range_ok(self.data, u64::from(off), 18) {
                break;
            }
            let aux = u64::from(read::u8_at(self.data, u64::from(off) + 17).unwrap_or(0));
            off = off.wrapping_add(18u32.wrapping_mul(1 + aux as u32));
            idx += 1 + aux;
            count += 1;
        }
        count
    }

    /// Section index whose raw data holds file offset `off` (LIEF's `section_from_offset`).
    pub fn section_index_from_offset(&self, off: u64) -> Option<usize> {
        self.sections.iter().position(|s| {
            let p = u64::from(s.pointer_to_raw_data);
            p <= off && off < p + u64::from(s.size_of_raw_data)
        })
    }

    /// Walk the resource tree (loader-like offsets) and report whether a resource of type
    /// `type_id` (e.g. 16 = RT_VERSION) exists at the first level.
    pub fn has_resource_type(&self, type_id: u32) -> bool {
        let Some(d) = self.data_directory(dir::RESOURCE) else {
            return false;
        };
        if d.virtual_address == 0 {
            return false;
        }
        let Some(base) = self.rva_to_offset(d.virtual_address) else {
            return false;
        };
        let base = base as u64;
        let (Some(named), Some(ids)) = (u16_at(self.data, base + 12), u16_at(self.data, base + 14))
        else {
            return false;
        };
        let n = u64::from(named) + u64::from(ids);
        for i in 0..n.min(4096) {
            let e = base + 16 + i * 8;
            let Some(id) = u32_at(self.data, e) else {
                return false;
            };
            if id & 0x8000_0000 == 0 && id == type_id {
                return true;
            }
        }
        false
    }
}

/// Shannon entropy (bits per byte) of `bytes`; 0 for empty input.
pub fn entropy(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let counts = read::byte_counts(bytes);
    entropy_from_counts(&counts, bytes.len() as u64)
}

/// Shannon entropy from a byte histogram with `total` bytes.
pub fn entropy_from_counts(counts: &[u64; 256], total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    let mut e = 0.0f64;
    for &c in counts.iter() {
        if c > 0 {
            let p = c as f64 / t;
            e += p * p.log2();
        }
    }
    -e
}

pub use read::byte_counts;
