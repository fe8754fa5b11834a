//! Edits of a PE file that a published evasion attack makes without changing what the file
//! does (Anderson et al. 2018, Kreuk et al. 2018, Demetrio et al. 2021): bytes after the
//! last section, section names, the slack after a section's data, the DOS header and stub,
//! header fields the loader does not check for user-mode programs, the debug directory, the
//! Rich header, the Authenticode certificate, new sections and imports that are never called.
//!
//! Every mutant is checked, not assumed: [`check_preserved`] parses it with the project's
//! own PE reader and compares the entry point, the bytes of every code section (as mapped)
//! and the import table with the original's.

use mallard_pe::{dir, scn, Pe};
use mallard_rand::SplitMix64;

mod search;
pub use search::{attack, random_mutant, Outcome, Strategy};

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
    /// Import a few functions of a system DLL that the code never calls (a new import
    /// descriptor, in a new section with a copy of the old ones).
    AddImports,
}

/// Every action, in a fixed order.
pub const ACTIONS: [Action; 14] = [
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
    Action::AddImports,
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
            Action::AddImports => "add-imports",
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
        Action::AddImports => return add_imports(&pe, rng, params),
    }
    Ok(out)
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Where a new section goes: its header in the zero room after the section table, its raw
/// data where the sections' raw data ends (any overlay moves back), its RVA after every
/// section's.
struct NewSection {
    header_at: usize,
    raw_end: usize,
    raw_ptr: u64,
    va: u64,
    fa: u64,
    sa: u64,
}

fn plan_section(pe: &Pe<'_>, action: Action) -> Result<NewSection, AttackError> {
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
    let va = pe
        .sections
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.size_of_raw_data)))
        .max()
        .map(|end| mallard_pe::align_up(end, sa))
        .unwrap_or(0);
    Ok(NewSection {
        header_at: at,
        raw_end: raw_end as usize,
        raw_ptr: mallard_pe::align_up(raw_end, fa),
        va,
        fa,
        sa,
    })
}

/// The file with `body` as a new section named `name` with `flags`, as `plan` says;
/// SizeOfImage grown to cover it, a certificate in the overlay moved with it.
fn place_section(
    pe: &Pe<'_>,
    plan: &NewSection,
    body: &[u8],
    name: &[u8],
    flags: u32,
    params: &Params<'_>,
) -> Result<Vec<u8>, AttackError> {
    let data = pe.data();
    let len = body.len() as u64;
    let raw_size = mallard_pe::align_up(len, plan.fa);
    let image = mallard_pe::align_up(plan.va + len, plan.sa);
    let grow = (plan.raw_ptr - plan.raw_end as u64) + raw_size;
    let total = data.len() as u64 + grow;
    if image > u64::from(u32::MAX) || plan.raw_ptr + raw_size > u64::from(u32::MAX) {
        return Err(AttackError::TooLarge(total as usize));
    }
    if total > params.max_size as u64 {
        return Err(AttackError::TooLarge(total as usize));
    }
    let (at, raw_end) = (plan.header_at, plan.raw_end);
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&data[..raw_end]);
    out.resize(plan.raw_ptr as usize, 0);
    out.extend_from_slice(body);
    out.resize((plan.raw_ptr + raw_size) as usize, 0);
    out.extend_from_slice(&data[raw_end..]);
    // The header: name, VirtualSize, VirtualAddress, SizeOfRawData, PointerToRawData, flags.
    let n = name.len().min(8);
    out[at..at + n].copy_from_slice(&name[..n]);
    put_u32(&mut out, at + 8, len as u32);
    put_u32(&mut out, at + 12, plan.va as u32);
    put_u32(&mut out, at + 16, raw_size as u32);
    put_u32(&mut out, at + 20, plan.raw_ptr as u32);
    put_u32(&mut out, at + 36, flags);
    let lfanew = pe.dos.e_lfanew as usize;
    let count = (pe.sections.len() + 1) as u16;
    out[lfanew + 6..lfanew + 8].copy_from_slice(&count.to_le_bytes());
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

/// Adds a readable data section of benign bytes.
fn add_section(
    pe: &Pe<'_>,
    rng: &mut SplitMix64,
    params: &Params<'_>,
) -> Result<Vec<u8>, AttackError> {
    let plan = plan_section(pe, Action::AddSection)?;
    let len = 1 + rng.below(params.max_append.max(1) as u64) as usize;
    let body = content(rng, params.benign, len);
    let name = COMMON_NAMES[rng.below(COMMON_NAMES.len() as u64) as usize];
    let flags = scn::CNT_INITIALIZED_DATA | scn::MEM_READ;
    place_section(pe, &plan, &body, name, flags, params)
}

/// Functions every desktop Windows exports, by DLL: imports a program may carry without
/// calling them (the loader resolves them; nothing runs).
const BENIGN_IMPORTS: [(&str, &[&str]); 3] = [
    (
        "KERNEL32.dll",
        &[
            "GetTickCount",
            "GetSystemTimeAsFileTime",
            "GetCurrentProcessId",
            "GetCurrentThreadId",
            "QueryPerformanceCounter",
            "GetModuleHandleW",
            "GetLastError",
            "SetLastError",
            "GetCommandLineW",
            "GetStartupInfoW",
            "InitializeCriticalSection",
            "DeleteCriticalSection",
            "EnterCriticalSection",
            "LeaveCriticalSection",
            "GetProcessHeap",
            "HeapAlloc",
            "HeapFree",
            "MultiByteToWideChar",
            "WideCharToMultiByte",
            "GetFileType",
            "GetStdHandle",
            "CloseHandle",
            "GetUserDefaultLCID",
            "lstrlenW",
            "FormatMessageW",
            "GetACP",
        ],
    ),
    (
        "USER32.dll",
        &[
            "MessageBoxW",
            "LoadIconW",
            "LoadCursorW",
            "GetSystemMetrics",
            "DrawTextW",
            "GetDC",
            "ReleaseDC",
            "DefWindowProcW",
            "RegisterClassExW",
            "CreateWindowExW",
            "ShowWindow",
            "UpdateWindow",
            "GetMessageW",
            "TranslateMessage",
            "DispatchMessageW",
            "PostQuitMessage",
            "SetWindowTextW",
            "GetClientRect",
            "InvalidateRect",
        ],
    ),
    (
        "GDI32.dll",
        &[
            "CreateFontW",
            "SelectObject",
            "DeleteObject",
            "GetStockObject",
            "BitBlt",
            "CreateCompatibleDC",
            "DeleteDC",
            "SetTextColor",
            "SetBkMode",
            "GetDeviceCaps",
        ],
    ),
];

/// Import descriptors of `pe` as they are in the file, up to the null one (at most 4,096).
fn raw_descriptors<'a>(pe: &Pe<'a>) -> Option<Vec<&'a [u8]>> {
    let d = pe.data_directory(dir::IMPORT)?;
    if d.virtual_address == 0 {
        return Some(Vec::new());
    }
    let (_, bytes) = pe.rva_bytes(d.virtual_address)?;
    let mut out = Vec::new();
    for c in bytes.chunks(20).take(4096) {
        if c.len() < 20 || c.iter().all(|&b| b == 0) {
            return (c.len() == 20).then_some(out);
        }
        out.push(c);
    }
    None
}

/// Adds a section holding a copy of the import descriptors plus one more for a system DLL
/// whose functions are never called (its own lookup and address tables), and points the
/// import directory at it. The original descriptors keep their tables, so every address the
/// code reads from the IAT stays where it was.
fn add_imports(
    pe: &Pe<'_>,
    rng: &mut SplitMix64,
    params: &Params<'_>,
) -> Result<Vec<u8>, AttackError> {
    let action = Action::AddImports;
    // Native and EFI programs have no user-mode loader to resolve them.
    if !matches!(pe.optional.subsystem, 2 | 3) || pe.data_directories.len() <= dir::IAT {
        return Err(na(action, "not a Windows GUI or console program"));
    }
    let old = raw_descriptors(pe).ok_or_else(|| na(action, "import descriptors unreadable"))?;
    let plan = plan_section(pe, action)?;
    let (dll, names) = BENIGN_IMPORTS[rng.below(BENIGN_IMPORTS.len() as u64) as usize];
    let k = 1 + rng.below(6.min(names.len() as u64)) as usize;
    let mut picked: Vec<&str> = Vec::with_capacity(k);
    while picked.len() < k {
        let f = names[rng.below(names.len() as u64) as usize];
        if !picked.contains(&f) {
            picked.push(f);
        }
    }
    let w = if pe.is_pe32_plus() { 8 } else { 4 };
    // Layout: descriptors (old, new, null), ILT, IAT, DLL name, hint/name entries.
    let descs = 20 * (old.len() + 2);
    let ilt = descs;
    let iat = ilt + w * (k + 1);
    let dll_at = iat + w * (k + 1);
    let mut body = vec![0u8; dll_at];
    body.extend_from_slice(dll.as_bytes());
    body.push(0);
    let va = plan.va as u32;
    let mut hints = Vec::with_capacity(k);
    for f in &picked {
        if body.len() % 2 == 1 {
            body.push(0);
        }
        hints.push(va + body.len() as u32);
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(f.as_bytes());
        body.push(0);
    }
    for (i, d) in old.iter().enumerate() {
        body[20 * i..20 * i + 20].copy_from_slice(d);
    }
    let new = 20 * old.len();
    put_u32(&mut body, new, va + ilt as u32);
    put_u32(&mut body, new + 12, va + dll_at as u32);
    put_u32(&mut body, new + 16, va + iat as u32);
    for (i, h) in hints.iter().enumerate() {
        put_u32(&mut body, ilt + w * i, *h);
        put_u32(&mut body, iat + w * i, *h);
    }
    let flags = scn::CNT_INITIALIZED_DATA | scn::MEM_READ | scn::MEM_WRITE;
    let mut out = place_section(pe, &plan, &body, b".idata", flags, params)?;
    let at = dir_entry_offset(pe, dir::IMPORT);
    if !(put_u32(&mut out, at, va) && put_u32(&mut out, at + 4, descs as u32)) {
        return Err(na(action, "directory entry outside the file"));
    }
    // Bound imports describe the old table; without them the loader binds as usual.
    let bound = dir_entry_offset(pe, dir::BOUND_IMPORT);
    put_u32(&mut out, bound, 0);
    put_u32(&mut out, bound + 4, 0);
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
    // Imports may be added, never lost or moved: the original descriptors come first, with
    // the same names and the same address tables.
    let (ia, ib) = (a.lief_imports().imports, b.lief_imports().imports);
    if ib.len() < ia.len() || ia[..] != ib[..ia.len()] {
        return broken("import table changed".into());
    }
    let iat = |d: &[u8]| get_u32(d, 16);
    let (da, db) = (raw_descriptors(&a), raw_descriptors(&b));
    if let Some(da) = da {
        let same = db.is_some_and(|db| {
            db.len() >= da.len() && da.iter().zip(&db).all(|(x, y)| iat(x) == iat(y))
        });
        if !same {
            return broken("an import address table moved".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
