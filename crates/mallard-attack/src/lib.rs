//! Edits of a PE file that a published evasion attack makes without changing what the file
//! does (Anderson et al. 2018, Kreuk et al. 2018, Demetrio et al. 2021): bytes after the
//! last section, section names, the slack after a section's data, the DOS header and stub,
//! header fields the loader does not check for user-mode programs, the debug directory, the
//! Rich header and the Authenticode certificate.
//!
//! Every mutant is checked, not assumed: [`check_preserved`] parses it with the project's
//! own PE reader and compares the entry point, the bytes of every code section (as mapped)
//! and the import table with the original's.

use mallard_pe::{dir, scn, Pe};
use mallard_rand::SplitMix64;

mod search;
pub use search::{attack, Outcome, Strategy};

/// Why an edit could not be made or a mutant failed its check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AttackError {
    /// The file has nothing this action edits (no slack, no certificate, ...).
    #[error("{action} does not apply: {why}")]
    NotApplicable {
        action: &'static str,
        why: &'static str,
    },
    #[error("not a PE file the reader accepts: {0}")]
    Parse(String),
    /// The mutant would be larger than the cap given.
    #[error("the mutant would be {0} bytes, over the cap")]
    TooLarge(usize),
    /// A mutant changed what it must keep.
    #[error("mutant not preserved: {0}")]
    Broken(String),
}

/// One kind of edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Append random bytes after the last section.
    OverlayRandom,
    /// Append zeros after the last section.
    OverlayZeros,
    /// Append a slice of a benign file after the last section.
    OverlayBenign,
    /// Rename a section (to a common name, or random printable bytes).
    SectionRename,
    /// Fill the slack after sections' data (raw size beyond the virtual size) with benign bytes.
    SlackFill,
    /// Rewrite the DOS header's fields other than `e_magic` and `e_lfanew`.
    DosHeader,
    /// Overwrite the DOS stub (0x40 up to the PE header) with benign bytes.
    DosStub,
    /// Set the COFF timestamp.
    Timestamp,
    /// Set the optional header's checksum (checked by the loader only for drivers).
    Checksum,
    /// Remove the debug directory entry.
    DebugDirectory,
    /// Erase the Rich header.
    RichHeader,
    /// Remove the Authenticode certificate (and its bytes when they end the file).
    RemoveCertificate,
    /// Add a readable data section holding benign bytes (its raw data after the last
    /// section's, before any overlay).
    AddSection,
}

/// Every action, in a fixed order.
pub const ACTIONS: [Action; 13] = [
    Action::OverlayRandom,
    Action::OverlayZeros,
    Action::OverlayBenign,
    Action::SectionRename,
    Action::SlackFill,
    Action::DosHeader,
    Action::DosStub,
    Action::Timestamp,
    Action::Checksum,
    Action::DebugDirectory,
    Action::RichHeader,
    Action::RemoveCertificate,
    Action::AddSection,
];

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::OverlayRandom => "overlay-random",
            Action::OverlayZeros => "overlay-zeros",
            Action::OverlayBenign => "overlay-benign",
            Action::SectionRename => "section-rename",
            Action::SlackFill => "slack-fill",
            Action::DosHeader => "dos-header",
            Action::DosStub => "dos-stub",
            Action::Timestamp => "timestamp",
            Action::Checksum => "checksum",
            Action::DebugDirectory => "debug-directory",
            Action::RichHeader => "rich-header",
            Action::RemoveCertificate => "remove-certificate",
            Action::AddSection => "add-section",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        ACTIONS.into_iter().find(|a| a.name() == name)
    }
}

/// Where benign content comes from and how large a mutant may grow.
pub struct Params<'a> {
    /// Bytes of benign files to copy from (overlay, slack, stub); random bytes when empty.
    pub benign: &'a [u8],
    /// Bytes appended per overlay edit, at most.
    pub max_append: usize,
    /// Size of a mutant, at most.
    pub max_size: usize,
}

impl Default for Params<'_> {
    fn default() -> Self {
        Params {
            benign: &[],
            max_append: 64 << 10,
            max_size: 256 << 20,
        }
    }
}

const COMMON_NAMES: [&[u8]; 10] = [
    b".text", b".data", b".rdata", b".rsrc", b".reloc", b".pdata", b".idata", b".tls", b"CODE",
    b"DATA",
];

fn parse(b: &[u8]) -> Result<Pe<'_>, AttackError> {
    Pe::parse(b).map_err(|e| AttackError::Parse(e.to_string()))
}

fn na(action: Action, why: &'static str) -> AttackError {
    AttackError::NotApplicable {
        action: action.name(),
        why,
    }
}

/// `n` bytes of benign content (a random slice of `benign`), or random bytes without any.
fn content(rng: &mut SplitMix64, benign: &[u8], n: usize) -> Vec<u8> {
    if benign.is_empty() {
        return (0..n).map(|_| rng.below(256) as u8).collect();
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let start = rng.below(benign.len() as u64) as usize;
        let take = (n - out.len()).min(benign.len() - start);
        out.extend_from_slice(&benign[start..start + take]);
    }
    out
}

fn put_u32(b: &mut [u8], at: usize, v: u32) -> bool {
    match b.get_mut(at..at + 4) {
        Some(s) => {
            s.copy_from_slice(&v.to_le_bytes());
            true
        }
        None => false,
    }
}

/// Offset of data directory `i`'s entry (where the loader and the reader look).
fn dir_entry_offset(pe: &Pe<'_>, i: usize) -> usize {
    let opt = if pe.is_pe32_plus() { 112 } else { 96 };
    pe.dos.e_lfanew as usize + 24 + opt + 8 * i
}

fn section_header_offset(pe: &Pe<'_>, i: usize) -> usize {
    pe.dos.e_lfanew as usize + 24 + pe.coff.size_of_optional_header as usize + 40 * i
}

/// Ranges of the file that data directories point into (file offsets), which slack
/// filling must leave alone.
fn directory_ranges(pe: &Pe<'_>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    for (i, d) in pe.data_directories.iter().enumerate() {
        if d.virtual_address == 0 || d.size == 0 {
            continue;
        }
        let start = if i == dir::CERTIFICATE {
            Some(d.virtual_address as usize)
        } else {
            pe.rva_to_offset(d.virtual_address)
        };
        if let Some(s) = start {
            out.push(s..s.saturating_add(d.size as usize));
        }
    }
    out
}

/// Applies `action` to `pe_bytes` with random choices from `rng`.
pub fn apply(
    pe_bytes: &[u8],
    action: Action,
    rng: &mut SplitMix64,
    params: &Params<'_>,
) -> Result<Vec<u8>, AttackError> {
    let pe = parse(pe_bytes)?;
    let mut out = pe_bytes.to_vec();
    let lfanew = pe.dos.e_lfanew as usize;
    match action {
        Action::OverlayRandom | Action::OverlayZeros | Action::OverlayBenign => {
            // Sections whose raw data runs past the end would take in the appended bytes.
            let raw_end = pe
                .sections
                .iter()
                .map(|s| u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data))
                .max()
                .unwrap_or(0);
            if raw_end > out.len() as u64 {
                return Err(na(action, "section data runs past the end of the file"));
            }
            let n = 1 + rng.below(params.max_append.max(1) as u64) as usize;
            if out.len() + n > params.max_size {
                return Err(AttackError::TooLarge(out.len() + n));
            }
            match action {
                Action::OverlayZeros => out.resize(out.len() + n, 0),
                Action::OverlayRandom => out.extend(content(rng, &[], n)),
                _ => out.extend(content(rng, params.benign, n)),
            }
        }
        Action::SectionRename => {
            if pe.sections.is_empty() {
                return Err(na(action, "no sections"));
            }
            let i = rng.below(pe.sections.len() as u64) as usize;
            // A name other than the section's own, so the edit is an edit.
            let mut name = pe.sections[i].name_raw;
            while name == pe.sections[i].name_raw {
                name = [0u8; 8];
                if rng.below(4) == 0 {
                    for c in name.iter_mut().take(1 + rng.below(8) as usize) {
                        *c = b'!' + rng.below(94) as u8;
                    }
                } else {
                    let n = COMMON_NAMES[rng.below(COMMON_NAMES.len() as u64) as usize];
                    name[..n.len()].copy_from_slice(n);
                }
            }
            let at = section_header_offset(&pe, i);
            match out.get_mut(at..at + 8) {
                Some(s) => s.copy_from_slice(&name),
                None => return Err(na(action, "section header outside the file")),
            }
        }
        Action::SlackFill => {
            let avoid = directory_ranges(&pe);
            let mut filled = 0usize;
            for s in &pe.sections {
                let (ptr, raw, vs) = (
                    s.pointer_to_raw_data as usize,
                    s.size_of_raw_data as usize,
                    s.virtual_size as usize,
                );
                if vs == 0 || vs >= raw {
                    continue;
                }
                let start = ptr.saturating_add(vs);
                let end = ptr.saturating_add(raw).min(out.len());
                if start >= end || avoid.iter().any(|r| r.start < end && start < r.end) {
                    continue;
                }
                let fill = content(rng, params.benign, end - start);
                out[start..end].copy_from_slice(&fill);
                filled += end - start;
            }
            if filled == 0 {
                return Err(na(action, "no section has slack"));
            }
        }
        Action::DosHeader => {
            if lfanew < 0x40 {
                return Err(na(action, "the PE header overlaps the DOS header"));
            }
            for b in &mut out[2..0x3c] {
                *b = rng.below(256) as u8;
            }
        }
        Action::DosStub => {
            if lfanew <= 0x40 || lfanew > out.len() {
                return Err(na(action, "no DOS stub"));
            }
            let fill = content(rng, params.benign, lfanew - 0x40);
            out[0x40..lfanew].copy_from_slice(&fill);
        }
        Action::Timestamp => {
            if !put_u32(&mut out, lfanew + 8, rng.next_u64() as u32) {
                return Err(na(action, "no COFF header"));
            }
        }
        Action::Checksum => {
            if !pe.optional_complete || !put_u32(&mut out, lfanew + 24 + 64, rng.next_u64() as u32)
            {
                return Err(na(action, "no optional header"));
            }
        }
        Action::DebugDirectory => {
            let d = pe.data_directory(dir::DEBUG).unwrap_or_default();
            if d.virtual_address == 0 && d.size == 0 {
                return Err(na(action, "no debug directory"));
            }
            let at = dir_entry_offset(&pe, dir::DEBUG);
            if !(put_u32(&mut out, at, 0) && put_u32(&mut out, at + 4, 0)) {
                return Err(na(action, "directory entry outside the file"));
            }
        }
        Action::RichHeader => {
            let Some(r) = rich_range(&out[..lfanew.min(out.len())]) else {
                return Err(na(action, "no Rich header"));
            };
            out[r].fill(0);
        }
        Action::RemoveCertificate => {
            let d = pe.data_directory(dir::CERTIFICATE).unwrap_or_default();
            if d.virtual_address == 0 || d.size == 0 {
                return Err(na(action, "no certificate"));
            }
            let at = dir_entry_offset(&pe, dir::CERTIFICATE);
            if !(put_u32(&mut out, at, 0) && put_u32(&mut out, at + 4, 0)) {
                return Err(na(action, "directory entry outside the file"));
            }
            let (start, end) = (
                d.virtual_address as usize,
                d.virtual_address as usize + d.size as usize,
            );
            let last_section_end = pe
                .sections
                .iter()
                .map(|s| s.pointer_to_raw_data as usize + s.size_of_raw_data as usize)
                .max()
                .unwrap_or(0);
            // Only bytes that end the file and lie past every section go.
            if end >= out.len() && start >= last_section_end && start < out.len() {
                out.truncate(start);
            }
        }
        Action::AddSection => return add_section(&pe, rng, params),
    }
    Ok(out)
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A new last section of benign bytes: a header in free (zero) space of the section table,
/// raw data where the sections end (an overlay moves back by as much, and a certificate in
/// it with it), SizeOfImage grown to cover it.
fn add_section(
    pe: &Pe<'_>,
    rng: &mut SplitMix64,
    params: &Params<'_>,
) -> Result<Vec<u8>, AttackError> {
    let action = Action::AddSection;
    let data = pe.data();
    let n = pe.sections.len();
    if n == 0 || !pe.optional_complete || n != pe.coff.number_of_sections as usize {
        return Err(na(action, "no complete section table"));
    }
    let (fa, sa) = (
        u64::from(pe.optional.file_alignment.max(1)),
        u64::from(pe.optional.section_alignment.max(1)),
    );
    let at = section_header_offset(pe, n);
    let first_raw = pe
        .sections
        .iter()
        .filter(|s| s.size_of_raw_data > 0)
        .map(|s| s.pointer_to_raw_data as usize)
        .min()
        .unwrap_or(usize::MAX);
    let headers_end = (pe.optional.size_of_headers as usize).min(first_raw);
    let in_directory = directory_ranges(pe)
        .iter()
        .any(|r| r.start < at + 40 && at < r.end);
    if at + 40 > headers_end
        || in_directory
        || data
            .get(at..at + 40)
            .is_none_or(|h| h.iter().any(|&b| b != 0))
    {
        return Err(na(action, "no free room for another section header"));
    }
    let raw_end = pe
        .sections
        .iter()
        .map(|s| u64::from(s.pointer_to_raw_data) + u64::from(s.size_of_raw_data))
        .max()
        .unwrap_or(0)
        .min(data.len() as u64);
    let raw_ptr = mallard_pe::align_up(raw_end, fa);
    let len = 1 + rng.below(params.max_append.max(1) as u64);
    let raw_size = mallard_pe::align_up(len, fa);
    let va = pe
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.size_of_raw_data)))
        .max()
        .map(|end| mallard_pe::align_up(end, sa))
        .unwrap_or(0);
    let image = mallard_pe::align_up(va + len, sa);
    let grow = (raw_ptr - raw_end) + raw_size;
    let total = data.len() as u64 + grow;
    if image > u64::from(u32::MAX) || raw_ptr + raw_size > u64::from(u32::MAX) {
        return Err(na(action, "the image would pass 4 GB"));
    }
    if total > params.max_size as u64 {
        return Err(AttackError::TooLarge(total as usize));
    }
    let raw_end = raw_end as usize;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&data[..raw_end]);
    out.resize(raw_ptr as usize, 0);
    out.extend(content(rng, params.benign, len as usize));
    out.resize((raw_ptr + raw_size) as usize, 0);
    out.extend_from_slice(&data[raw_end..]);
    // The header: name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData, flags.
    let mut name = [0u8; 8];
    let pick = COMMON_NAMES[rng.below(COMMON_NAMES.len() as u64) as usize];
    name[..pick.len()].copy_from_slice(pick);
    out[at..at + 8].copy_from_slice(&name);
    put_u32(&mut out, at + 8, len as u32);
    put_u32(&mut out, at + 12, va as u32);
    put_u32(&mut out, at + 16, raw_size as u32);
    put_u32(&mut out, at + 20, raw_ptr as u32);
    put_u32(&mut out, at + 36, scn::CNT_INITIALIZED_DATA | scn::MEM_READ);
    let lfanew = pe.dos.e_lfanew as usize;
    out[lfanew + 6..lfanew + 8].copy_from_slice(&((n + 1) as u16).to_le_bytes());
    put_u32(&mut out, lfanew + 24 + 56, image as u32);
    // A certificate lives at a file offset: it moves with the overlay.
    let cert = dir_entry_offset(pe, dir::CERTIFICATE);
    if let Some(off) = get_u32(&out, cert) {
        if off as usize >= raw_end && off != 0 {
            put_u32(&mut out, cert, off + grow as u32);
        }
    }
    Ok(out)
}

/// The Rich header's bytes in the DOS stub: from the encoded "DanS" to the key after "Rich".
fn rich_range(stub: &[u8]) -> Option<std::ops::Range<usize>> {
    let rich = (0x40..stub.len().saturating_sub(7))
        .step_by(4)
        .find(|&i| &stub[i..i + 4] == b"Rich")?;
    let key = u32::from_le_bytes(stub[rich + 4..rich + 8].try_into().ok()?);
    let mut i = rich;
    while i >= 0x40 + 4 {
        i -= 4;
        let v = u32::from_le_bytes(stub[i..i + 4].try_into().ok()?);
        if v ^ key == u32::from_le_bytes(*b"DanS") {
            return Some(i..rich + 8);
        }
    }
    None
}

/// The bytes of section `s` as mapped (raw data up to its virtual size).
fn mapped<'a>(data: &'a [u8], s: &mallard_pe::Section) -> Option<&'a [u8]> {
    let ptr = s.pointer_to_raw_data as usize;
    let raw = s.size_of_raw_data as usize;
    let n = if s.virtual_size == 0 {
        raw
    } else {
        raw.min(s.virtual_size as usize)
    };
    data.get(ptr..ptr.checked_add(n)?.min(data.len()))
}

/// Checks that `mutant` still parses and keeps `original`'s entry point, the mapped bytes of
/// every code section (and of the entry point's section) and its import table.
pub fn check_preserved(original: &[u8], mutant: &[u8]) -> Result<(), AttackError> {
    let a = parse(original)?;
    let b = Pe::parse(mutant).map_err(|e| AttackError::Broken(format!("does not parse: {e}")))?;
    let broken = |s: String| Err(AttackError::Broken(s));
    if a.optional.address_of_entry_point != b.optional.address_of_entry_point {
        return broken(format!(
            "entry point 0x{:x} became 0x{:x}",
            a.optional.address_of_entry_point, b.optional.address_of_entry_point
        ));
    }
    if a.kind != b.kind || a.coff.machine != b.coff.machine {
        return broken("machine or PE kind changed".into());
    }
    let entry = a.section_index_from_rva(u64::from(a.optional.address_of_entry_point));
    for (i, s) in a.sections.iter().enumerate() {
        let code = s.characteristics & (scn::CNT_CODE | scn::MEM_EXECUTE) != 0;
        if !code && Some(i) != entry {
            continue;
        }
        let Some(t) = b
            .sections
            .iter()
            .find(|t| t.virtual_address == s.virtual_address)
        else {
            return broken(format!(
                "code section at RVA 0x{:x} is gone",
                s.virtual_address
            ));
        };
        if t.virtual_size != s.virtual_size || t.characteristics != s.characteristics {
            return broken(format!(
                "code section at RVA 0x{:x} changed its size or flags",
                s.virtual_address
            ));
        }
        if mapped(original, s) != mapped(mutant, t) {
            return broken(format!(
                "bytes of the code section at RVA 0x{:x} changed",
                s.virtual_address
            ));
        }
    }
    if a.lief_imports().imports != b.lief_imports().imports {
        return broken("import table changed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
