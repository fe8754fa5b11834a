//! EMBER2024 ("thrember", feature version 3) `PEFormatWarnings` group, and pefile's decision
//! whether a file parses at all.
//!
//! thrember calls `pefile.PE(data=bytez)` (pefile 2024.8.26, full load) and keeps
//! `pe.get_warnings()`. A PEFormatError or AttributeError out of that call means "not a PE" and
//! zeroes eight groups. This module re-derives, from the bytes, what that parse does: which
//! exceptions escape and which warnings it records. It follows pefile's own (lenient, sometimes
//! odd) reading of the file rather than the PE specification: Python slice semantics, its
//! section lookup cache, its caps on imports, exports, resources and relocations, and the places
//! where a malformed field raises instead of warning.
//!
//! Warnings that only depend on calls made after the parse (README W3: `get_warnings()` is read
//! last) are covered: pefile's alignment warnings fire on the first section lookup, which the
//! parse itself already makes whenever a section header is read.

// foldhash: seeded per process like std's SipHash, several times faster on the integer keys of
// relocation, exception and import-thunk tables (hashing was ~5% of an ember-v3 extraction).
use foldhash::{HashMap, HashSet};

// Warning patterns from EMBER2024 (src/thrember/pefile_warnings.txt, MIT licence); line order
// is the vector index.
const PATTERNS: &str = include_str!("pefile_warnings.txt");

/// What `pefile.PE(data=bytez)` (fast_load=False, the full parse) does with these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PefileParse {
    /// pefile raised: the PEFormatError message (its `value`), or `AttributeError: ...`.
    /// Any other Python exception (thrember itself would fail on such a file) is reported as
    /// `<ExceptionType>: ...` too.
    NotPe(String),
    /// pefile parsed the file: the distinct raw warning strings, sorted.
    Parsed { warnings: Vec<String> },
}

/// Runs the emulated parse.
pub fn pefile_parse(data: &[u8]) -> PefileParse {
    let mut counts = [0u64; 256];
    for &b in data {
        counts[usize::from(b)] += 1;
    }
    pefile_parse_counted(data, &counts).0
}

/// What the full parse leaves behind that EMBER2024 reads later.
#[derive(Clone, Copy, Debug, Default)]
pub struct PefileState {
    /// pefile's `_get_section_by_rva_last_used` (an index into the sections sorted by
    /// address): later address lookups try it first.
    pub last_used: Option<usize>,
    /// `pe.has_dynamic_relocs()`.
    pub has_dynamic_relocs: bool,
}

/// [`pefile_parse`] given the file's byte histogram (the caller has it already), also
/// returning what EMBER2024 reads of the parse later ([`PefileState`]).
pub fn pefile_parse_counted(data: &[u8], counts: &[u64; 256]) -> (PefileParse, PefileState) {
    let mut p = Parser::new(data);
    let r = p.parse_counted(counts);
    let last = PefileState {
        last_used: p.last_used,
        has_dynamic_relocs: p.dynamic_relocs,
    };
    let out = match r {
        Ok(()) => {
            let mut w = std::mem::take(&mut p.w);
            w.sort();
            w.dedup();
            PefileParse::Parsed { warnings: w }
        }
        Err(Exc::Format(m)) => PefileParse::NotPe(m),
        Err(Exc::Attr(m)) => PefileParse::NotPe(format!("AttributeError: {m}")),
        Err(Exc::Other(m)) => PefileParse::NotPe(m),
    };
    (out, last)
}

/// The 87 pattern lines, in file (vector) order.
pub fn patterns() -> Vec<&'static str> {
    PATTERNS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// thrember's normalisation: distinct warnings -> sorted list of pattern lines ("...suffix" or
/// "prefix..."); unknown ones dropped.
///
/// thrember tries the suffix patterns first, then the prefixes, each in Python set order, and
/// keeps the first hit. Only two overlaps exist (README W1): `...Assuming corrupt.` against the
/// longer `... entries. Assuming corrupt.` suffixes, and `Error parsing the Delay import
/// directory...` against its `... at RVA...` variant. With PYTHONHASHSEED=0 (the reference run)
/// the shorter pattern comes first in both sets, so the shortest matching pattern is taken.
pub fn normalize(warnings: &[String]) -> Vec<String> {
    let pats = patterns();
    let mut out: Vec<String> = Vec::new();
    for w in warnings {
        let mut best: Option<&str> = None;
        for p in pats.iter().filter(|p| p.starts_with("...")) {
            if w.ends_with(&p[3..]) && best.is_none_or(|b| p.len() < b.len()) {
                best = Some(p);
            }
        }
        if best.is_none() {
            for p in pats.iter().filter(|p| !p.starts_with("...")) {
                let pre = p.strip_suffix("...").unwrap_or(p);
                if w.starts_with(pre) && best.is_none_or(|b| p.len() < b.len()) {
                    best = Some(p);
                }
            }
        }
        if let Some(b) = best {
            out.push(b.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// thrember's process_raw_features: 88 floats (87 flags in file order + count); all zeros for
/// an empty list.
pub fn vector(normalized: &[String]) -> [f32; 88] {
    let mut v = [0f32; 88];
    if normalized.is_empty() {
        return v;
    }
    let pats = patterns();
    for n in normalized {
        if let Some(i) = pats.iter().position(|p| p == n) {
            if i < 87 {
                v[i] = 1.0;
            }
        }
    }
    v[87] = normalized.len() as f32;
    v
}

// ---------------------------------------------------------------------------------------------
// Python semantics helpers

/// A Python exception escaping a pefile routine.
#[derive(Debug)]
enum Exc {
    /// PEFormatError(value)
    Format(String),
    /// AttributeError (thrember also treats it as "not a PE").
    Attr(String),
    /// Anything else (IndexError, struct.error): thrember itself would fail.
    Other(String),
}

type R<T> = Result<T, Exc>;

const SHORT: &str = "Data length less than expected header length.";

/// `buf[start:end]` with Python's clamping and negative indices.
fn pyslice(buf: &[u8], start: i128, end: Option<i128>) -> &[u8] {
    let n = buf.len() as i128;
    let norm = |x: i128| {
        if x < 0 {
            (x + n).max(0)
        } else {
            x.min(n)
        }
    };
    let s = norm(start);
    let e = end.map_or(n, norm);
    if e <= s {
        &[]
    } else {
        &buf[s as usize..e as usize]
    }
}

/// Python's `'%x' % n` / `f"{n:x}"`.
fn hx(n: i128) -> String {
    if n < 0 {
        format!("-{:x}", -n)
    } else {
        format!("{n:x}")
    }
}

/// Python's `hex(n)`.
fn pyhex(n: i128) -> String {
    if n < 0 {
        format!("-0x{:x}", -n)
    } else {
        format!("0x{n:x}")
    }
}

/// `repr()` of an ASCII str (PEFormatError.__str__ is repr(value)).
fn py_repr_str(s: &str) -> String {
    let dq = s.contains('\'') && !s.contains('"');
    let q = if dq { '"' } else { '\'' };
    let mut o = String::new();
    o.push(q);
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' if !dq => o.push_str("\\'"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                o.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => o.push(c),
        }
    }
    o.push(q);
    o
}

/// `repr()` of a bytes object.
fn py_repr_bytes(b: &[u8]) -> String {
    let dq = b.contains(&b'\'') && !b.contains(&b'"');
    let q = if dq { '"' } else { '\'' };
    let mut o = String::from("b");
    o.push(q);
    for &c in b {
        match c {
            b'\\' => o.push_str("\\\\"),
            b'\'' if !dq => o.push_str("\\'"),
            b'\n' => o.push_str("\\n"),
            b'\r' => o.push_str("\\r"),
            b'\t' => o.push_str("\\t"),
            0x20..=0x7e => o.push(c as char),
            _ => o.push_str(&format!("\\x{c:02x}")),
        }
    }
    o.push(q);
    o
}

fn u16at(b: &[u8], o: usize) -> u16 {
    match b.get(o..o + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn u32at(b: &[u8], o: usize) -> u32 {
    match b.get(o..o + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn u64at(b: &[u8], o: usize) -> u64 {
    match b.get(o..o + 8) {
        Some(s) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        }
        None => 0,
    }
}

fn find_from(h: &[u8], needle: &[u8], start: usize) -> Option<usize> {
    if start > h.len() {
        return None;
    }
    memchr::memmem::find(&h[start..], needle).map(|i| i + start)
}

/// `get_string_from_data(0, ...)`: up to the first NUL.
fn cstr(b: &[u8]) -> &[u8] {
    match memchr::memchr(0, b) {
        Some(i) => &b[..i],
        None => b,
    }
}

/// pefile's is_valid_function_name (an empty name passes).
fn valid_function_name(s: &[u8], relax: bool) -> bool {
    let extra: &[u8] = if relax {
        b"!\"#$%&'()*+,-./:<>?[\\]^_`{|}~@"
    } else {
        b"._?@$()<>"
    };
    s.iter()
        .all(|c| c.is_ascii_alphanumeric() || extra.contains(c))
}

/// Python's `string.printable` for one byte.
fn printable(c: u8) -> bool {
    (0x20..=0x7e).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

// ---------------------------------------------------------------------------------------------
// The parser state (pefile's PE object, reduced to what decides warnings)

#[derive(Debug, Clone)]
struct Section {
    vsize: u32,
    va: u32,
    raw_size: u32,
    raw_ptr: u32,
    ptr_adj: i128,
    va_adj: i128,
    /// contains_rva's [min, max) (pefile caches it on first use; it never changes after
    /// the sections are sorted).
    lo: i128,
    hi: i128,
}

/// One UNWIND_INFO, shared by the RUNTIME_FUNCTIONs that point at it.
#[derive(Debug, Default, Clone)]
struct UnwindInfo {
    file_offset: i128,
    full_size: usize,
    finished: bool,
    has_epilog_size: bool,
    function_entry: Option<u32>,
    chained: bool,
}

/// A parsed resource directory (only what the RT_STRING and RT_VERSION passes read).
#[derive(Debug, Default)]
struct ResDir {
    entries: Vec<ResEntry>,
}

#[derive(Debug)]
struct ResEntry {
    id: Option<u32>,
    directory: Option<ResDir>,
    /// IMAGE_RESOURCE_DATA_ENTRY (OffsetToData, Size).
    data: Option<(u32, u32)>,
}

const MAX_IMPORT_SYMBOLS: u64 = 0x2000;
const MAX_SYMBOL_EXPORT_COUNT: usize = 0x2000;
const MAX_REPEATED_SYMBOL: u32 = 120;
const MAX_SECTIONS: u32 = 0x800;
const MAX_RESOURCE_ENTRIES: u64 = 0x8000;
const MAX_RESOURCE_DEPTH: u32 = 32;
const MAX_STRING_LENGTH: i128 = 0x100000;
const PE32: u16 = 0x10b;
const PE32P: u16 = 0x20b;

// Field types of IMAGE_LOAD_CONFIG_DIRECTORY(64), in order (pefile 2024.8.26).
const LOAD_CONFIG32: &[u8] = b"IIHHIIIIIIIIIIHHIIIIIIIIIHHIIIIIIIIIIIHHIIIIIIIIIIII";
const LOAD_CONFIG64: &[u8] = b"IIHHIIIQQQQQQIHHQQQQQQQQIHHIIQQQQQQQQIHHQIIQQQQQQQQQ";

fn type_size(t: u8) -> usize {
    match t {
        b'H' => 2,
        b'Q' => 8,
        _ => 4,
    }
}

struct Parser<'a> {
    data: &'a [u8],
    w: Vec<String>,
    secs: Vec<Section>,
    header_len: usize,
    last_used: Option<usize>,
    pe_type: Option<u16>,
    machine: u16,
    image_base: u64,
    size_of_image: u32,
    sa: u32,
    fa: u32,
    fa_warned: bool,
    sa_warned: bool,
    dirs: Vec<(u32, u32)>,
    total_resource_entries: u64,
    total_resource_bytes: i128,
    resource_limit_reached: bool,
    total_import_symbols: u64,
    /// `has_dynamic_relocs()`: the load config parsed with a non-empty dynamic relocation
    /// list (entries of symbol 3 and above).
    dynamic_relocs: bool,
}

impl<'a> Parser<'a> {
    fn new(data: &'a [u8]) -> Self {
        Parser {
            data,
            w: Vec::new(),
            secs: Vec::new(),
            header_len: 0,
            last_used: None,
            pe_type: None,
            machine: 0,
            image_base: 0,
            size_of_image: 0,
            sa: 0,
            fa: 0,
            fa_warned: false,
            sa_warned: false,
            dirs: Vec::new(),
            total_resource_entries: 0,
            total_resource_bytes: 0,
            resource_limit_reached: false,
            total_import_symbols: 0,
            dynamic_relocs: false,
        }
    }

    fn warn(&mut self, s: String) {
        self.w.push(s);
    }

    fn len(&self) -> i128 {
        self.data.len() as i128
    }

    /// `__unpack_data__`: the structure's bytes, or None after a "Corrupt header" warning.
    fn unpack<'b>(
        &mut self,
        name: &str,
        data: &'b [u8],
        size: usize,
        file_offset: i128,
    ) -> Option<&'b [u8]> {
        if data.len() < size {
            self.warn(format!(
                "Corrupt header \"{name}\" at file offset {file_offset}. Exception: {}",
                py_repr_str(SHORT)
            ));
            return None;
        }
        Some(&data[..size])
    }

    fn adjust_ptr(&mut self, val: u32) -> i128 {
        if self.fa >= 0x200 && !self.fa_warned && !self.fa.is_power_of_two() {
            self.warn(format!(
                "If FileAlignment > 0x200 it should be a power of 2. Value: {:x}",
                self.fa
            ));
            self.fa_warned = true;
        }
        (val & !0x1ff) as i128
    }

    fn adjust_sa(&mut self, val: u32) -> i128 {
        if self.sa < 0x1000 && self.fa != self.sa && !self.sa_warned {
            self.warn(format!(
                "If SectionAlignment(0x{:x}) < 0x1000 it should equal FileAlignment(0x{:x})",
                self.sa, self.fa
            ));
            self.sa_warned = true;
        }
        let a = if self.sa < 0x1000 { self.fa } else { self.sa };
        if a != 0 && !val.is_multiple_of(a) {
            (a as i128) * ((val / a) as i128)
        } else {
            val as i128
        }
    }

    fn contains_rva(&self, i: usize, rva: i128) -> bool {
        let s = &self.secs[i];
        s.lo <= rva && rva < s.hi
    }

    fn section_by_rva(&mut self, rva: i128) -> Option<usize> {
        if let Some(i) = self.last_used {
            if self.contains_rva(i, rva) {
                return Some(i);
            }
        }
        let f = (0..self.secs.len()).find(|&i| self.contains_rva(i, rva));
        if f.is_some() {
            self.last_used = f;
        }
        f
    }

    fn section_by_offset(&self, off: i128) -> Option<usize> {
        self.secs
            .iter()
            .position(|s| s.ptr_adj <= off && off < s.ptr_adj + s.raw_size as i128)
    }

    /// SectionStructure.get_data.
    fn sec_data(&self, i: usize, start: Option<i128>, length: Option<i128>) -> &'a [u8] {
        let s = &self.secs[i];
        let offset = match start {
            None => s.ptr_adj,
            Some(st) => st - s.va_adj + s.ptr_adj,
        };
        let mut end = match length {
            Some(l) => offset + l,
            None => offset + s.raw_size as i128,
        };
        let lim = s.raw_ptr as i128 + s.raw_size as i128;
        if end > lim {
            end = lim;
        }
        pyslice(self.data, offset, Some(end))
    }

    /// PE.get_data.
    fn get_data(&mut self, rva: i128, length: Option<i128>) -> R<&'a [u8]> {
        let s = self.section_by_rva(rva);
        let end = length.map(|l| rva + l);
        match s {
            Some(i) => Ok(self.sec_data(i, Some(rva), length)),
            None => {
                if rva < self.header_len as i128 {
                    Ok(pyslice(&self.data[..self.header_len], rva, end))
                } else if rva < self.len() {
                    Ok(pyslice(self.data, rva, end))
                } else {
                    Err(Exc::Format(
                        "data at RVA can't be fetched. Corrupt header?".into(),
                    ))
                }
            }
        }
    }

    fn get_offset_from_rva(&mut self, rva: i128) -> R<i128> {
        match self.section_by_rva(rva) {
            Some(i) => {
                let s = &self.secs[i];
                Ok(rva - s.va_adj + s.ptr_adj)
            }
            None => {
                if rva < self.len() {
                    Ok(rva)
                } else {
                    Err(Exc::Format(format!(
                        "data at RVA 0x{} can't be fetched",
                        hx(rva)
                    )))
                }
            }
        }
    }

    fn get_string_at_rva(&mut self, rva: i128, max_len: i128) -> &'a [u8] {
        match self.section_by_rva(rva) {
            None => cstr(pyslice(self.data, rva, Some(rva + max_len))),
            Some(i) => cstr(self.sec_data(i, Some(rva), Some(max_len))),
        }
    }

    fn get_dword_at_rva(&mut self, rva: i128) -> Option<u32> {
        match self.get_data(rva, Some(4)) {
            Ok(d) if d.len() >= 4 => Some(u32at(d, 0)),
            _ => None,
        }
    }

    /// get_string_u_at_rva: the string as pefile encodes it (utf-8 or ascii, both with
    /// backslashreplace); only its length and, for VS_VERSION_INFO, its text matter.
    fn get_string_u_at_rva(&mut self, rva: i128, max_len: i128, ascii: bool) -> R<Vec<u8>> {
        if max_len == 0 {
            return Ok(Vec::new());
        }
        self.get_data(rva, Some(2))?;
        let max_bytes = max_len * 2;
        let mut requested = max_bytes.min(256);
        let mut data: Vec<u8> = self.get_data(rva, Some(requested))?.to_vec();
        let mut null_index: i128 = -1;
        loop {
            let start = (null_index + 1).max(0) as usize;
            match find_from(&data, b"\0\0", start) {
                None => {
                    let dl = data.len() as i128;
                    if dl < requested || dl == max_bytes {
                        null_index = dl >> 1;
                        break;
                    }
                    let more = self.get_data(rva + dl, Some(max_bytes - dl))?;
                    data.extend_from_slice(more);
                    null_index = requested - 1;
                    requested = max_bytes;
                }
                Some(i) => {
                    if i % 2 == 0 {
                        null_index = (i >> 1) as i128;
                        break;
                    }
                    null_index = i as i128;
                }
            }
        }
        let n = (null_index.max(0) as usize).min(data.len() / 2);
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let c = u16::from_le_bytes([data[2 * k], data[2 * k + 1]]);
            if ascii {
                if c < 0x80 {
                    out.push(c as u8);
                } else if c < 0x100 {
                    out.extend_from_slice(format!("\\x{c:02x}").as_bytes());
                } else {
                    out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
                }
            } else if (0xd800..0xe000).contains(&c) {
                out.extend_from_slice(format!("\\u{c:04x}").as_bytes());
            } else {
                let ch = char::from_u32(c as u32).unwrap_or('\u{fffd}');
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
        Ok(out)
    }

    // -----------------------------------------------------------------------------------------
    // __parse__

    fn parse_counted(&mut self, counts: &[u64; 256]) -> R<()> {
        let data = self.data;
        let n = data.len();
        if n > 0 {
            // pefile walks a Counter (first-occurrence order); the list is sorted at the end,
            // so byte order is enough here.
            for b in (0..256).filter(|&b| counts[b] > 0) {
                let c = counts[b];
                let frac = c as f64 / n as f64;
                if (b == 0 && frac > 0.5) || (b != 0 && frac > 0.15) {
                    self.warn(format!(
                        "Byte 0x{b:02x} makes up {:.4}% of the file's contents. This may indicate truncation / malformation.",
                        100.0 * c as f64 / n as f64
                    ));
                }
            }
        }

        if n < 64 {
            return Err(Exc::Format(
                "Unable to read the DOS Header, possibly a truncated file.".into(),
            ));
        }
        let e_magic = u16at(data, 0);
        if e_magic == 0x4d5a {
            return Err(Exc::Format(
                "Probably a ZM Executable (not a PE file).".into(),
            ));
        }
        if e_magic != 0x5a4d {
            return Err(Exc::Format("DOS Header magic not found.".into()));
        }
        let lfanew = u32at(data, 60) as usize;
        if lfanew > n {
            return Err(Exc::Format(
                "Invalid e_lfanew value, probably not a PE file".into(),
            ));
        }
        let nt = lfanew as i128;
        let sig_bytes = pyslice(data, nt, Some(nt + 8));
        let Some(sig) = self.unpack("IMAGE_NT_HEADERS", sig_bytes, 4, nt) else {
            return Err(Exc::Format("NT Headers not found.".into()));
        };
        let sig = u32at(sig, 0);
        if sig == 0 {
            return Err(Exc::Format("NT Headers not found.".into()));
        }
        let sig16 = sig & 0xffff;
        for (v, k) in [
            (0x454e, "NE"),
            (0x454c, "LE"),
            (0x584c, "LX"),
            (0x5a56, "TE"),
        ] {
            if sig16 == v {
                return Err(Exc::Format(format!(
                    "Invalid NT Headers signature. Probably a {k} file"
                )));
            }
        }
        if sig != 0x4550 {
            return Err(Exc::Format("Invalid NT Headers signature.".into()));
        }
        let fh_bytes = pyslice(data, nt + 4, Some(nt + 4 + 32));
        let Some(fh) = self.unpack("IMAGE_FILE_HEADER", fh_bytes, 20, nt + 4) else {
            return Err(Exc::Format("File Header missing".into()));
        };
        self.machine = u16at(fh, 0);
        let nsections = u16at(fh, 2) as u32;
        let size_opt = u16at(fh, 16) as i128;
        let opt_off = nt + 24;
        let sections_offset = opt_off + size_opt;

        // Optional header: 32-bit layout first, then the 64-bit one for PE32+; short data is
        // retried with zero padding when at least 69 (73) bytes are there.
        let mut opt: Option<Vec<u8>> = None;
        let first = pyslice(data, opt_off, Some(opt_off + 256));
        if let Some(o) = self.unpack("IMAGE_OPTIONAL_HEADER", first, 96, opt_off) {
            opt = Some(o.to_vec());
        } else {
            let s = pyslice(data, opt_off, Some(opt_off + 0x200));
            if s.len() >= 69 {
                let mut p = s.to_vec();
                p.resize(s.len() + 128, 0);
                opt = Some(p[..96].to_vec());
            }
        }
        let mut osize = 96usize;
        if let Some(o) = &opt {
            let magic = u16at(o, 0);
            if magic == PE32 {
                self.pe_type = Some(PE32);
            } else if magic == PE32P {
                self.pe_type = Some(PE32P);
                osize = 112;
                let s = pyslice(data, opt_off, Some(opt_off + 0x200));
                opt = match self.unpack("IMAGE_OPTIONAL_HEADER64", s, 112, opt_off) {
                    Some(o) => Some(o.to_vec()),
                    None if s.len() >= 73 => {
                        let mut p = s.to_vec();
                        p.resize(s.len() + 128, 0);
                        Some(p[..112].to_vec())
                    }
                    None => None,
                };
            }
        }
        let Some(opt) = opt else {
            return Err(Exc::Format(
                "No Optional Header found, invalid PE32 or PE32+ file.".into(),
            ));
        };
        let magic = u16at(&opt, 0);
        if self.pe_type.is_none() {
            self.warn(format!("Invalid type 0x{magic:04x} in Optional Header."));
        }
        let plus = self.pe_type == Some(PE32P);
        let aoep = u32at(&opt, 16);
        self.image_base = if plus {
            u64at(&opt, 24)
        } else {
            u32at(&opt, 28) as u64
        };
        self.sa = u32at(&opt, 32);
        self.fa = u32at(&opt, 36);
        self.size_of_image = u32at(&opt, 56);
        let size_headers = u32at(&opt, 60);
        let nrva = u32at(&opt, if plus { 108 } else { 92 });

        if aoep < size_headers {
            self.warn(
                "SizeOfHeaders is smaller than AddressOfEntryPoint: this file cannot run under Windows 8."
                    .into(),
            );
        }
        if nrva > 0x10 {
            self.warn(format!(
                "Suspicious NumberOfRvaAndSizes in the Optional Header. Normal values are never larger than 0x10, the value is: 0x{nrva:x}"
            ));
        }
        let mut off = opt_off + osize as i128;
        let dir_end = opt_off + osize as i128 + 8 * 16;
        for i in 0..(nrva & 0x7fff_ffff) {
            if self.len() - off == 0 {
                break;
            }
            let entry: Vec<u8> = if self.len() - off < 8 {
                let mut v = pyslice(data, off, None).to_vec();
                v.extend_from_slice(&[0u8; 8]);
                v
            } else {
                pyslice(data, off, Some(off + 8)).to_vec()
            };
            if i >= 16 {
                break;
            }
            self.dirs.push((u32at(&entry, 0), u32at(&entry, 4)));
            off += 8;
            if off >= dir_end {
                break;
            }
        }

        let end_of_table = self.parse_sections(sections_offset, nsections)?;

        let lowest = self
            .secs
            .iter()
            .filter(|s| s.raw_ptr > 0)
            .map(|s| s.ptr_adj)
            .min();
        let hl = match lowest {
            Some(l) if l != 0 && l >= end_of_table => l,
            _ => end_of_table,
        };
        self.header_len = hl.clamp(0, self.len()) as usize;

        if self.section_by_rva(aoep as i128).is_some() {
            let ep = self.get_offset_from_rva(aoep as i128)?;
            if ep > self.len() {
                self.warn(format!(
                    "Possibly corrupt file. AddressOfEntryPoint lies outside the file. AddressOfEntryPoint: 0x{aoep:x}"
                ));
            }
        } else {
            self.warn(format!(
                "AddressOfEntryPoint lies outside the sections' boundaries. AddressOfEntryPoint: 0x{aoep:x}"
            ));
        }

        self.parse_data_directories()?;
        self.parse_rich_header(opt_off)?;
        Ok(())
    }

    fn parse_sections(&mut self, offset: i128, nsections: u32) -> R<i128> {
        let data = self.data;
        let mut secs: Vec<Section> = Vec::new();
        for i in 0..nsections {
            if i >= MAX_SECTIONS {
                self.warn(format!("Too many sections {nsections} (>={MAX_SECTIONS})"));
                break;
            }
            let so = offset + 40 * i as i128;
            let sd = pyslice(data, so, Some(so + 40));
            if sd.len() == 40 && sd.iter().all(|&b| b == 0) {
                self.warn(format!("Invalid section {i}. Contents are null-bytes."));
                break;
            }
            if sd.is_empty() {
                self.warn(format!(
                    "Invalid section {i}. No data in the file (is this corkami's virtsectblXP?)."
                ));
                break;
            }
            if sd.len() < 40 {
                return Err(Exc::Format(SHORT.into()));
            }
            let mut name = [0u8; 8];
            name.copy_from_slice(&sd[..8]);
            let vsize = u32at(sd, 8);
            let va = u32at(sd, 12);
            let raw_size = u32at(sd, 16);
            let raw_ptr = u32at(sd, 20);
            let chars = u32at(sd, 36);
            let mut errors = 0;
            if raw_size as i128 + raw_ptr as i128 > self.len() {
                errors += 1;
                self.warn(format!(
                    "Error parsing section {i}. SizeOfRawData is larger than file."
                ));
            }
            if self.adjust_ptr(raw_ptr) > self.len() {
                errors += 1;
                self.warn(format!(
                    "Error parsing section {i}. PointerToRawData points beyond the end of the file."
                ));
            }
            if vsize > 0x1000_0000 {
                errors += 1;
                self.warn(format!(
                    "Suspicious value found parsing section {i}. VirtualSize is extremely large > 256MiB."
                ));
            }
            if self.adjust_sa(va) > 0x1000_0000 {
                errors += 1;
                self.warn(format!(
                    "Suspicious value found parsing section {i}. VirtualAddress is beyond 0x10000000."
                ));
            }
            if self.fa != 0 && !raw_ptr.is_multiple_of(self.fa) {
                errors += 1;
                self.warn(format!(
                    "Error parsing section {i}. PointerToRawData should normally be a multiple of FileAlignment, this might imply the file is trying to confuse tools which parse this incorrectly."
                ));
            }
            if errors >= 3 {
                self.warn("Too many warnings parsing section. Aborting.".into());
                break;
            }
            if chars & 0x8000_0000 != 0 && chars & 0x2000_0000 != 0 {
                let trimmed = {
                    let mut e = 8;
                    while e > 0 && name[e - 1] == 0 {
                        e -= 1;
                    }
                    &name[..e]
                };
                if trimmed == b"PAGE" {
                    // is_driver() parses the import directory now, before the section list
                    // is complete: pefile then trips over attributes it has not set yet
                    // (`header`, `next_section_virtual_address`).
                    if self.dirs.len() > 1 && self.dirs[1].0 != 0 {
                        return Err(Exc::Attr(if secs.is_empty() {
                            "'PE' object has no attribute 'header'".into()
                        } else {
                            "'SectionStructure' object has no attribute 'next_section_virtual_address'"
                                .into()
                        }));
                    }
                }
                self.warn(format!(
                    "Suspicious flags set for section {i}. Both IMAGE_SCN_MEM_WRITE and IMAGE_SCN_MEM_EXECUTE are set. This might indicate a packed executable."
                ));
            }
            let mut ptr_adj = self.adjust_ptr(raw_ptr);
            if self.sa < 0x1000 && raw_ptr == va {
                ptr_adj = va as i128;
            }
            let va_adj = self.adjust_sa(va);
            secs.push(Section {
                vsize,
                va,
                raw_size,
                raw_ptr,
                ptr_adj,
                va_adj,
                lo: 0,
                hi: 0,
            });
        }
        secs.sort_by_key(|s| s.va);
        let len = self.len();
        let nexts: Vec<Option<u32>> = (0..secs.len())
            .map(|i| secs.get(i + 1).map(|s| s.va))
            .collect();
        for (s, next) in secs.iter_mut().zip(nexts) {
            let mut size = if len - s.ptr_adj < s.raw_size as i128 {
                s.vsize as i128
            } else {
                s.raw_size.max(s.vsize) as i128
            };
            if let Some(nv) = next {
                if nv > s.va && s.va_adj + size > nv as i128 {
                    size = nv as i128 - s.va_adj;
                }
            }
            s.lo = s.va_adj;
            s.hi = s.va_adj + size;
        }
        let any = !secs.is_empty();
        self.secs = secs;
        if nsections > 0 && any {
            Ok(offset + 40 * nsections as i128)
        } else {
            Ok(offset)
        }
    }

    fn parse_rich_header(&mut self, opt_off: i128) -> R<()> {
        let data = self.data;
        let end = (opt_off.max(0) as usize).min(data.len());
        if end < 0x80 + 4 {
            return Ok(());
        }
        let Some(ri) = find_from(&data[..end], b"Rich", 0x80) else {
            return Ok(());
        };
        let rd = pyslice(data, 0x80, Some(ri as i128 + 8));
        let rd = &rd[..4 * (rd.len() / 4)];
        let words: Vec<u32> = rd.chunks_exact(4).map(|c| u32at(c, 0)).collect();
        const RICH: u32 = 0x6863_6952;
        const DANS: u32 = 0x536e_6144;
        let Some(pos) = words.iter().position(|&w| w == RICH) else {
            return Ok(());
        };
        let Some(&key) = words.get(pos + 1) else {
            return Err(Exc::Other("IndexError: list index out of range".into()));
        };
        let get = |i: usize| {
            words
                .get(i)
                .copied()
                .ok_or_else(|| Exc::Other("IndexError: list index out of range".into()))
        };
        if get(0)? ^ key != DANS || get(1)? != key || get(2)? != key || get(3)? != key {
            self.warn("Rich Header is not in Microsoft format, possibly malformed".into());
        }
        let rest = words.get(4..).unwrap_or(&[]);
        for i in 0..rest.len() / 2 {
            if rest[2 * i] == RICH {
                if rest[2 * i + 1] != key {
                    self.warn("Rich Header is malformed".into());
                }
                break;
            }
        }
        Ok(())
    }

    fn parse_data_directories(&mut self) -> R<()> {
        const ORDER: [(usize, &str); 10] = [
            (1, "IMAGE_DIRECTORY_ENTRY_IMPORT"),
            (0, "IMAGE_DIRECTORY_ENTRY_EXPORT"),
            (2, "IMAGE_DIRECTORY_ENTRY_RESOURCE"),
            (6, "IMAGE_DIRECTORY_ENTRY_DEBUG"),
            (5, "IMAGE_DIRECTORY_ENTRY_BASERELOC"),
            (9, "IMAGE_DIRECTORY_ENTRY_TLS"),
            (10, "IMAGE_DIRECTORY_ENTRY_LOAD_CONFIG"),
            (13, "IMAGE_DIRECTORY_ENTRY_DELAY_IMPORT"),
            (11, "IMAGE_DIRECTORY_ENTRY_BOUND_IMPORT"),
            (3, "IMAGE_DIRECTORY_ENTRY_EXCEPTION"),
        ];
        for (idx, name) in ORDER {
            let Some(&(va, size)) = self.dirs.get(idx) else {
                break;
            };
            if va == 0 {
                continue;
            }
            let (rva, size) = (va as i128, size as i128);
            let r = match idx {
                1 => self.parse_import_directory(rva),
                0 => self.parse_export_directory(rva, size),
                2 => self
                    .parse_resources_directory(rva, rva, 0, &[rva])
                    .map(|_| ()),
                6 => self.parse_debug_directory(rva, size),
                5 => self.parse_base_relocations(rva, size, None),
                9 => self.parse_tls(rva),
                10 => self.parse_load_config(rva),
                13 => self.parse_delay_import_directory(rva),
                11 => self.parse_bound_imports(rva),
                _ => self.parse_exceptions(rva, size),
            };
            match r {
                Ok(()) => {}
                Err(Exc::Format(m)) => {
                    if idx == 10 {
                        self.dynamic_relocs = false;
                    }
                    self.warn(format!(
                        "Failed to process directory \"{name}\": {}",
                        py_repr_str(&m)
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Imports

    fn normalize_import_va(&self, va: u64) -> u64 {
        let begin = self.image_base as u128;
        let end = begin + self.size_of_image as u128;
        if begin <= va as u128 && (va as u128) < end {
            va - self.image_base
        } else {
            va
        }
    }

    fn parse_import_directory(&mut self, mut rva: i128) -> R<()> {
        let mut error_count = 0;
        // Names of the symbols of each accepted descriptor (None: by ordinal).
        let mut descs: Vec<Vec<Option<Vec<u8>>>> = Vec::new();
        loop {
            let data = match self.get_data(rva, Some(20)) {
                Ok(d) => d,
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Error parsing the import directory at RVA: 0x{}",
                        hx(rva)
                    ));
                    break;
                }
                Err(e) => return Err(e),
            };
            let fo = self.get_offset_from_rva(rva)?;
            let Some(d) = self.unpack("IMAGE_IMPORT_DESCRIPTOR", data, 20, fo) else {
                break;
            };
            if d.iter().all(|&b| b == 0) {
                break;
            }
            let oft = u32at(d, 0) as i128;
            let name_rva = u32at(d, 12) as i128;
            let ft = u32at(d, 16) as i128;
            rva += 20;
            let mut max_len = self.len() - fo;
            if rva > oft || rva > ft {
                max_len = (rva - oft).max(rva - ft);
            }
            let import_data = match self.parse_imports(oft, ft, max_len, false) {
                Ok(v) => v,
                Err(Exc::Format(m)) => {
                    self.warn(format!(
                        "Error parsing the import directory. Invalid Import data at RVA: 0x{} ({m})",
                        hx(rva)
                    ));
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            if error_count > 5 {
                self.warn(format!(
                    "Too many errors parsing the import directory. Invalid import data at RVA: 0x{}",
                    hx(rva)
                ));
                break;
            }
            if import_data.is_empty() {
                error_count += 1;
                continue;
            }
            // The DLL name only feeds ordinal name lookups (ws2_32, oleaut32...), none of
            // which starts with LoadLibrary/GetProcAddress.
            let _ = self.get_string_at_rva(name_rva, 0x200);
            descs.push(import_data);
        }
        let mut suspicious = 0;
        let mut total = 0;
        for d in &descs {
            for name in d {
                if let Some(n) = name {
                    if !n.is_empty()
                        && (n.starts_with(b"LoadLibrary") || n.starts_with(b"GetProcAddress"))
                    {
                        suspicious += 1;
                    }
                }
                total += 1;
            }
        }
        if suspicious == 2 && total < 20 {
            self.warn("Imported symbols contain entries typical of packed executables.".into());
        }
        Ok(())
    }

    fn parse_delay_import_directory(&mut self, mut rva: i128) -> R<()> {
        let mut error_count = 0;
        loop {
            let data = match self.get_data(rva, Some(32)) {
                Ok(d) => d,
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Error parsing the Delay import directory at RVA: 0x{}",
                        hx(rva)
                    ));
                    break;
                }
                Err(e) => return Err(e),
            };
            let fo = self.get_offset_from_rva(rva)?;
            let Some(d) = self.unpack("IMAGE_DELAY_IMPORT_DESCRIPTOR", data, 32, fo) else {
                break;
            };
            if d.iter().all(|&b| b == 0) {
                break;
            }
            let attrs = u32at(d, 0);
            let mut sz_name = u32at(d, 4) as u64;
            let mut piat = u32at(d, 12) as u64;
            let mut pint = u32at(d, 16) as u64;
            let mut contains_addresses = false;
            if attrs == 0 && self.machine == 0x14c {
                piat = self.normalize_import_va(piat);
                pint = self.normalize_import_va(pint);
                sz_name = self.normalize_import_va(sz_name);
                contains_addresses = true;
            }
            rva += 32;
            let (piat, pint) = (piat as i128, pint as i128);
            let mut max_len = self.len() - fo;
            if rva > pint || rva > piat {
                max_len = (rva - pint).max(rva - piat);
            }
            let import_data = match self.parse_imports(pint, piat, max_len, contains_addresses) {
                Ok(v) => v,
                Err(Exc::Format(m)) => {
                    self.warn(format!(
                        "Error parsing the Delay import directory. Invalid import data at RVA: 0x{} ({m})",
                        hx(rva)
                    ));
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            if error_count > 5 {
                self.warn(format!(
                    "Too many errors parsing the Delay import directory. Invalid import data at RVA: 0x{}",
                    hx(rva)
                ));
                break;
            }
            if import_data.is_empty() {
                error_count += 1;
                continue;
            }
            if self.total_import_symbols > MAX_IMPORT_SYMBOLS {
                self.warn(format!(
                    "Error, too many imported symbols {} (>{MAX_IMPORT_SYMBOLS})",
                    self.total_import_symbols
                ));
                break;
            }
            self.get_string_at_rva(sz_name as i128, 0x200);
        }
        Ok(())
    }

    /// parse_imports: the names of the symbols kept (None for by-ordinal ones).
    fn parse_imports(
        &mut self,
        oft: i128,
        ft: i128,
        max_len: i128,
        contains_addresses: bool,
    ) -> R<Vec<Option<Vec<u8>>>> {
        let ilt = self.get_import_table(oft, max_len, contains_addresses)?;
        let iat = self.get_import_table(ft, max_len, contains_addresses)?;
        let ilt_empty = ilt.as_ref().is_none_or(|t| t.is_empty());
        let iat_empty = iat.as_ref().is_none_or(|t| t.is_empty());
        if ilt_empty && iat_empty {
            self.warn(format!(
                "Damaged Import Table information. ILT and/or IAT appear to be broken. OriginalFirstThunk: 0x{} FirstThunk: 0x{}",
                hx(oft),
                hx(ft)
            ));
            return Ok(Vec::new());
        }
        let table = if !ilt_empty { ilt } else { iat }.unwrap_or_default();
        let (flag, mask): (u64, u64) = if self.pe_type == Some(PE32P) {
            (1 << 63, 0x7fff_ffff_ffff_ffff)
        } else {
            (0x8000_0000, 0x7fff_ffff)
        };
        let mut out = Vec::new();
        let mut num_invalid = 0usize;
        for (idx, &addr) in table.iter().enumerate() {
            let mut imp_ord: Option<u64> = None;
            let mut imp_name: Option<Vec<u8>> = None;
            if addr != 0 {
                if addr & flag != 0 {
                    imp_ord = Some(addr & 0xffff);
                } else {
                    match self.get_data((addr & mask) as i128, Some(2)) {
                        Ok(_) => {
                            let nm = self.get_string_at_rva(addr as i128 + 2, 0x200);
                            imp_name = Some(if valid_function_name(nm, false) {
                                nm.to_vec()
                            } else {
                                b"*invalid*".to_vec()
                            });
                            match self.get_offset_from_rva(addr as i128 + 2) {
                                Ok(_) | Err(Exc::Format(_)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Err(Exc::Format(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            if imp_ord.is_none() && imp_name.is_none() {
                return Err(Exc::Format("Invalid entries, aborting parsing.".into()));
            }
            if imp_name.as_deref() == Some(b"*invalid*") {
                if num_invalid > 1000 && num_invalid == idx {
                    return Err(Exc::Format(
                        "Too many invalid names, aborting parsing.".into(),
                    ));
                }
                num_invalid += 1;
                continue;
            }
            if imp_ord.unwrap_or(0) != 0 || imp_name.as_ref().is_some_and(|n| !n.is_empty()) {
                out.push(imp_name);
            }
        }
        Ok(out)
    }

    /// get_import_table: AddressOfData of each thunk; None after "Invalid data".
    fn get_import_table(
        &mut self,
        mut rva: i128,
        max_len: i128,
        contains_addresses: bool,
    ) -> R<Option<Vec<u64>>> {
        let plus = self.pe_type == Some(PE32P);
        let (flag, size): (u64, usize) = if plus { (1 << 63, 8) } else { (0x8000_0000, 4) };
        const SPREAD: u64 = 128 << 20;
        let mut repeated = 0;
        let mut set32: HashSet<u64> = HashSet::default();
        let mut set64: HashSet<u64> = HashSet::default();
        let (mut lo32, mut hi32, mut lo64, mut hi64) = (u64::MAX, 0u64, u64::MAX, 0u64);
        let start = rva;
        let mut table = Vec::new();
        while rva != 0 {
            if rva >= start + max_len {
                self.warn("Error parsing the import table. Entries go beyond bounds.".into());
                break;
            }
            if self.total_import_symbols > MAX_IMPORT_SYMBOLS {
                self.warn(format!(
                    "Excessive number of imports {} (>{MAX_IMPORT_SYMBOLS})",
                    self.total_import_symbols
                ));
                break;
            }
            self.total_import_symbols += 1;
            if repeated >= 15 {
                return Ok(Some(Vec::new()));
            }
            if (!set32.is_empty() && hi32 - lo32 > SPREAD)
                || (!set64.is_empty() && hi64 - lo64 > SPREAD)
            {
                return Ok(Some(Vec::new()));
            }
            let data = match self.get_data(rva, Some(size as i128)) {
                Ok(d) if d.len() == size => d,
                Ok(_) | Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Error parsing the import table. Invalid data at RVA: 0x{}",
                        hx(rva)
                    ));
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            self.get_offset_from_rva(rva)?;
            let mut addr = if plus {
                u64at(data, 0)
            } else {
                u32at(data, 0) as u64
            };
            if contains_addresses {
                addr = self.normalize_import_va(addr);
            }
            if (addr as i128) >= start && (addr as i128) <= rva {
                self.warn(format!(
                    "Error parsing the import table. AddressOfData overlaps with THUNK_DATA for THUNK at RVA 0x{}",
                    hx(rva)
                ));
                break;
            }
            if addr != 0 {
                if addr & flag != 0 {
                    if addr & 0x7fff_ffff > 0xffff {
                        return Ok(Some(Vec::new()));
                    }
                } else if addr >= 1 << 32 {
                    if !set64.insert(addr) {
                        repeated += 1;
                    }
                    lo64 = lo64.min(addr);
                    hi64 = hi64.max(addr);
                } else {
                    if !set32.insert(addr) {
                        repeated += 1;
                    }
                    lo32 = lo32.min(addr);
                    hi32 = hi32.max(addr);
                }
            }
            if data.iter().all(|&b| b == 0) {
                break;
            }
            rva += size as i128;
            table.push(addr);
        }
        Ok(Some(table))
    }

    // -----------------------------------------------------------------------------------------
    // Exports

    fn parse_export_directory(&mut self, rva: i128, size: i128) -> R<()> {
        let err_msg = format!("Error parsing export directory at RVA: 0x{}", hx(rva));
        let hdr = match self.get_data(rva, Some(40)) {
            Ok(d) => match self.get_offset_from_rva(rva) {
                Ok(fo) => (d, fo),
                Err(Exc::Format(_)) => {
                    self.warn(err_msg);
                    return Ok(());
                }
                Err(e) => return Err(e),
            },
            Err(Exc::Format(_)) => {
                self.warn(err_msg);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let Some(ed) = self.unpack("IMAGE_EXPORT_DIRECTORY", hdr.0, 40, hdr.1) else {
            return Ok(());
        };
        let base = u32at(ed, 16) as i128;
        let nfuncs = u32at(ed, 20) as i128;
        let nnames = u32at(ed, 24) as i128;
        let aof = u32at(ed, 28) as i128;
        let aon = u32at(ed, 32) as i128;
        let aono = u32at(ed, 36) as i128;

        let arrays = (|| -> R<(&'a [u8], &'a [u8], &'a [u8])> {
            let l = self.len() - self.get_offset_from_rva(aon)?;
            let names = self.get_data(aon, Some(l.min(nnames * 4)))?;
            let l = self.len() - self.get_offset_from_rva(aono)?;
            let ords = self.get_data(aono, Some(l.min(nnames * 4)))?;
            let l = self.len() - self.get_offset_from_rva(aof)?;
            let funcs = self.get_data(aof, Some(l.min(nfuncs * 4)))?;
            Ok((names, ords, funcs))
        })();
        let (names, ords, funcs) = match arrays {
            Ok(a) => a,
            Err(Exc::Format(_)) => {
                self.warn(err_msg);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let dword = |d: &[u8], i: i128| -> Option<u32> {
            if (i + 1) * 4 > d.len() as i128 {
                None
            } else {
                Some(u32at(d, (i * 4) as usize))
            }
        };
        let word = |d: &[u8], i: i128| -> Option<u16> {
            if (i + 1) * 2 > d.len() as i128 {
                None
            } else {
                Some(u16at(d, (i * 2) as usize))
            }
        };

        let mut max_failed = 10;
        let mut safety = self.len();
        if let Some(s) = self.section_by_rva(aon) {
            safety = self.secs[s].va as i128 + self.sec_data(s, None, None).len() as i128 - aon;
        }
        let mut counts: HashMap<(Vec<u8>, u32), u32> = HashMap::default();
        let mut ok = true;
        let mut ordinals: HashSet<i128> = HashSet::default();
        let mut n_exports = 0usize;
        let all_zero = ed.iter().all(|&b| b == 0);
        let name_rva = u32at(ed, 12) as i128;
        let n1 = nnames.min(safety / 4);
        let mut i: i128 = 0;
        while i < n1 {
            let idx = i;
            i += 1;
            let symbol_ordinal = word(ords, idx);
            let address = match symbol_ordinal {
                Some(o) if (o as usize) * 4 < funcs.len() => dword(funcs, o as i128),
                _ => return Ok(()),
            };
            let Some(address) = address else { continue };
            if address == 0 {
                continue;
            }
            let ordv = symbol_ordinal.unwrap_or(0) as i128;
            let addr = address as i128;
            if addr >= rva && addr < rva + size {
                self.section_by_rva(addr);
                match self.get_offset_from_rva(addr) {
                    Ok(_) => {}
                    Err(Exc::Format(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
            let name_rva = dword(names, idx);
            if name_rva.is_none() {
                max_failed -= 1;
                if max_failed <= 0 {
                    ok = false;
                    break;
                }
            }
            let Some(name_rva) = name_rva else {
                // get_string_at_rva(None) is None: not a valid name.
                ok = false;
                break;
            };
            let name = self.get_string_at_rva(name_rva as i128, 0x200);
            if !valid_function_name(name, true) {
                ok = false;
                break;
            }
            if let Err(e) = self.get_offset_from_rva(name_rva as i128) {
                let Exc::Format(_) = e else { return Err(e) };
                max_failed -= 1;
                if max_failed <= 0 {
                    ok = false;
                    break;
                }
                // The same lookup is retried once and fails the same way.
                max_failed -= 1;
                if max_failed <= 0 {
                    ok = false;
                    break;
                }
                continue;
            }
            let c = counts.entry((name.to_vec(), address)).or_insert(0);
            *c += 1;
            if *c > 10 {
                self.warn(format!(
                    "Export directory contains more than 10 repeated entries ({}, 0x{address:x}). Assuming corrupt.",
                    py_repr_bytes(name)
                ));
                break;
            } else if counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                self.warn(format!(
                    "Export directory contains more than {MAX_SYMBOL_EXPORT_COUNT} symbol entries. Assuming corrupt."
                ));
                break;
            }
            self.get_offset_from_rva(aono + 2 * idx)?;
            self.get_offset_from_rva(aof + 4 * ordv)?;
            ordinals.insert(base + ordv);
            n_exports += 1;
        }
        if !ok {
            self.warn(format!(
                "RVA AddressOfNames in the export directory points to an invalid address: {}",
                hx(aon)
            ));
        }

        let mut max_failed = 10;
        let mut safety = self.len();
        if let Some(s) = self.section_by_rva(aof) {
            safety = self.secs[s].va as i128 + self.sec_data(s, None, None).len() as i128 - aof;
        }
        let mut counts: HashMap<Option<u32>, u32> = HashMap::default();
        let mut ok = true;
        let n2 = nfuncs.min(safety / 4);
        let mut idx: i128 = 0;
        while idx < n2 {
            let k = idx;
            idx += 1;
            if ordinals.contains(&(k + base)) {
                continue;
            }
            let address = dword(funcs, k);
            if address.is_none() {
                max_failed -= 1;
                if max_failed <= 0 {
                    ok = false;
                    break;
                }
            }
            if address == Some(0) {
                continue;
            }
            if let Some(a) = address {
                if (a as i128) >= rva && (a as i128) < rva + size {
                    self.section_by_rva(a as i128);
                }
            }
            let c = counts.entry(address).or_insert(0);
            *c += 1;
            if *c > MAX_REPEATED_SYMBOL {
                let a = address.map_or_else(|| "None".to_string(), |a| format!("{a:x}"));
                self.warn(format!(
                    "Export directory contains more than {MAX_REPEATED_SYMBOL} repeated ordinal entries (0x{a}). Assuming corrupt."
                ));
                break;
            } else if counts.len() > MAX_SYMBOL_EXPORT_COUNT {
                self.warn(format!(
                    "Export directory contains more than {MAX_SYMBOL_EXPORT_COUNT} ordinal entries. Assuming corrupt."
                ));
                break;
            }
            n_exports += 1;
        }
        if !ok {
            self.warn(format!(
                "RVA AddressOfFunctions in the export directory points to an invalid address: {}",
                hx(aof)
            ));
            return Ok(());
        }
        if n_exports > 0 || !all_zero {
            self.get_string_at_rva(name_rva, MAX_STRING_LENGTH);
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Resources

    fn parse_resources_directory(
        &mut self,
        mut rva: i128,
        base_rva: i128,
        level: u32,
        dirs: &[i128],
    ) -> R<Option<ResDir>> {
        if level > MAX_RESOURCE_DEPTH {
            self.warn(format!(
                "Error parsing the resources directory. Excessively nested table depth {level} (>{MAX_RESOURCE_DEPTH})"
            ));
            return Ok(None);
        }
        let data = match self.get_data(rva, Some(16)) {
            Ok(d) => d,
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Invalid resources directory. Can't read directory data at RVA: 0x{}",
                    hx(rva)
                ));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let fo = self.get_offset_from_rva(rva)?;
        let Some(rd) = self.unpack("IMAGE_RESOURCE_DIRECTORY", data, 16, fo) else {
            self.warn(format!(
                "Invalid resources directory. Can't parse directory data at RVA: 0x{}",
                hx(rva)
            ));
            return Ok(None);
        };
        rva += 16;
        let n = u16at(rd, 12) as u64 + u16at(rd, 14) as u64;
        if n > 4096 {
            self.warn(format!(
                "Error parsing the resources directory. The directory contains {n} entries (>4096)"
            ));
            return Ok(None);
        }
        self.total_resource_entries += n;
        if self.total_resource_entries > MAX_RESOURCE_ENTRIES {
            self.warn(format!(
                "Error parsing the resources directory. The file contains at least {} entries (>{MAX_RESOURCE_ENTRIES})",
                self.total_resource_entries
            ));
            return Ok(None);
        }
        let mut strings: Vec<i128> = Vec::new();
        let mut last_name: Option<(i128, i128)> = None;
        let mut entries: Vec<ResEntry> = Vec::new();
        for idx in 0..n {
            if !self.resource_limit_reached && self.total_resource_bytes > self.len() {
                self.resource_limit_reached = true;
                self.warn(format!(
                    "Resource size 0x{} exceeds file size 0x{}, overlapping resources found.",
                    hx(self.total_resource_bytes),
                    hx(self.len())
                ));
            }
            let Some((name, otd)) = self.parse_resource_entry(rva)? else {
                self.warn(format!(
                    "Error parsing the resources directory, Entry {idx} is invalid, RVA = 0x{}. ",
                    hx(rva)
                ));
                break;
            };
            let mut entry_id = None;
            if name & 0x8000_0000 == 0 {
                entry_id = Some(name);
            } else {
                let ustr = base_rva + (name & 0x7fff_ffff) as i128;
                let plen = self.word_at_rva(ustr).unwrap_or(0) as i128;
                self.total_resource_bytes += plen;
                if let Some((b, e)) = last_name {
                    if b < ustr && e >= ustr {
                        strings.pop();
                        self.warn(format!(
                            "Error parsing the resources directory, attempting to read entry name. Entry names overlap 0x{}",
                            hx(ustr)
                        ));
                        break;
                    }
                }
                last_name = Some((ustr, ustr + plen));
                strings.push(ustr);
            }
            let to_dir = (otd & 0x8000_0000) != 0;
            let off = base_rva + (otd & 0x7fff_ffff) as i128;
            if to_dir {
                if dirs.contains(&off) {
                    break;
                }
                let mut sub_dirs = dirs.to_vec();
                sub_dirs.push(off);
                let Some(sub) =
                    self.parse_resources_directory(off, base_rva, level + 1, &sub_dirs)?
                else {
                    break;
                };
                if entry_id == Some(6) {
                    self.rt_strings(&sub)?;
                }
                entries.push(ResEntry {
                    id: entry_id,
                    directory: Some(sub),
                    data: None,
                });
            } else {
                let Some(de) = self.parse_resource_data_entry(off)? else {
                    break;
                };
                self.total_resource_bytes += de.1 as i128;
                entries.push(ResEntry {
                    id: entry_id,
                    directory: None,
                    data: Some(de),
                });
            }
            if level == 0 && name & 0xffff == 16 {
                let versions: Vec<(u32, u32)> = entries
                    .last()
                    .and_then(|e| e.directory.as_ref())
                    .and_then(|d| d.entries.first())
                    .and_then(|e| e.directory.as_ref())
                    .map(|d| d.entries.iter().filter_map(|e| e.data).collect())
                    .unwrap_or_default();
                for v in versions {
                    self.parse_version_information(v)?;
                }
            }
            rva += 8;
        }
        for s in strings {
            self.render_pascal_16(s)?;
        }
        Ok(Some(ResDir { entries }))
    }

    /// The word at an RVA, or None (UnicodeStringWrapperPostProcessor's length read).
    fn word_at_rva(&mut self, rva: i128) -> Option<u16> {
        match self.get_data(rva, Some(2)) {
            Ok(d) if d.len() >= 2 => Some(u16at(d, 0)),
            _ => None,
        }
    }

    fn render_pascal_16(&mut self, rva: i128) -> R<()> {
        let len = self.word_at_rva(rva).unwrap_or(0) as i128;
        match self.get_string_u_at_rva(rva + 2, len, false) {
            Ok(_) => Ok(()),
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Failed rendering pascal string, attempting to read from RVA 0x{}",
                    hx(rva + 2)
                ));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn rt_strings(&mut self, dir: &ResDir) -> R<()> {
        for rid in &dir.entries {
            let Some(sub) = &rid.directory else { continue };
            for lang in &sub.entries {
                let Some((otd, size)) = lang.data else {
                    continue;
                };
                if rid.id.is_none() {
                    continue;
                }
                match self.get_data(otd as i128, Some(size as i128)) {
                    Ok(_) => {}
                    Err(Exc::Format(_)) => self.warn(format!(
                        "Error parsing resource of type RT_STRING at RVA 0x{otd:x} with size {size}"
                    )),
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// IMAGE_RESOURCE_DIRECTORY_ENTRY (Name, OffsetToData), or None.
    fn parse_resource_entry(&mut self, rva: i128) -> R<Option<(u32, u32)>> {
        let data = match self.get_data(rva, Some(8)) {
            Ok(d) => d,
            Err(Exc::Format(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fo = self.get_offset_from_rva(rva)?;
        Ok(self
            .unpack("IMAGE_RESOURCE_DIRECTORY_ENTRY", data, 8, fo)
            .map(|d| (u32at(d, 0), u32at(d, 4))))
    }

    fn parse_resource_data_entry(&mut self, rva: i128) -> R<Option<(u32, u32)>> {
        let data = match self.get_data(rva, Some(16)) {
            Ok(d) => d,
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Error parsing a resource directory data entry, the RVA is invalid: 0x{}",
                    hx(rva)
                ));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let fo = self.get_offset_from_rva(rva)?;
        Ok(self
            .unpack("IMAGE_RESOURCE_DATA_ENTRY", data, 16, fo)
            .map(|d| (u32at(d, 0), u32at(d, 4))))
    }

    fn dword_align(offset: i128, base: i128) -> i128 {
        ((offset + base + 3) & 0xffff_fffc) - (base & 0xffff_fffc)
    }

    fn parse_version_information(&mut self, (otd, size): (u32, u32)) -> R<()> {
        let base = otd as i128;
        let start = match self.get_offset_from_rva(base) {
            Ok(s) => s,
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Error parsing the version information, attempting to read OffsetToData with RVA: 0x{otd:x}"
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let raw = pyslice(self.data, start, Some(start + size as i128));
        let Some(vi) = self.unpack("VS_VERSIONINFO", raw, 6, start) else {
            return Ok(());
        };
        let vi_len = u16at(vi, 0) as i128;
        let ustr = base + 6;
        let section_end = self.section_by_rva(ustr).map(|i| {
            self.secs[i].va as i128 + self.secs[i].raw_size.max(self.secs[i].vsize) as i128
        });
        let max = match section_end {
            None => 1 << 16,
            Some(e) => (e - ustr) >> 1,
        };
        let vstr = match self.get_string_u_at_rva(ustr, max, true) {
            Ok(s) => s,
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Error parsing the version information, attempting to read VS_VERSION_INFO string. Can't read unicode string at offset 0x{}",
                    hx(ustr)
                ));
                self.warn("Invalid VS_VERSION_INFO block: None".into());
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if vstr != b"VS_VERSION_INFO" {
            let shown = if vstr.len() > 128 {
                let ex = String::from_utf8_lossy(&vstr[..128]).into_owned();
                let cut = match ex.rfind("\\u") {
                    Some(p) => p,
                    None => ex.len().saturating_sub(1),
                };
                format!(
                    "{} ... ({} bytes, too long to display)",
                    &ex[..cut],
                    vstr.len()
                )
            } else {
                String::from_utf8_lossy(&vstr).into_owned()
            };
            self.warn(format!(
                "Invalid VS_VERSION_INFO block: {}",
                shown.replace('\0', "\\00")
            ));
            return Ok(());
        }
        let ffi_off = Self::dword_align(6 + 2 * (vstr.len() as i128 + 1), base);
        let ffi = pyslice(raw, ffi_off, None);
        if self
            .unpack("VS_FIXEDFILEINFO", ffi, 52, start + ffi_off)
            .is_none()
        {
            return Ok(());
        }
        let mut sfi_off = Self::dword_align(ffi_off + 52, base);
        loop {
            let Some(sfi) = self.unpack(
                "StringFileInfo",
                pyslice(raw, sfi_off, None),
                6,
                start + sfi_off,
            ) else {
                self.warn("Error parsing StringFileInfo/VarFileInfo struct".into());
                return Ok(());
            };
            let (sfi_len, sfi_vlen, sfi_type) =
                (u16at(sfi, 0) as i128, u16at(sfi, 2), u16at(sfi, 4));
            let ustr = base + sfi_off + 6;
            let sfi_str = match self.get_string_u_at_rva(ustr, 1 << 16, false) {
                Ok(s) => s,
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Error parsing the version information, attempting to read StringFileInfo string. Can't read unicode string at offset 0x{}",
                        hx(ustr)
                    ));
                    break;
                }
                Err(e) => return Err(e),
            };
            if sfi_str.starts_with(b"StringFileInfo") {
                if sfi_type <= 1 && sfi_vlen == 0 {
                    let mut st_off =
                        Self::dword_align(sfi_off + 6 + 2 * (sfi_str.len() as i128 + 1), base);
                    while let Some(st) =
                        self.unpack("StringTable", pyslice(raw, st_off, None), 6, start + st_off)
                    {
                        let st_len = u16at(st, 0) as i128;
                        let ustr = base + st_off + 6;
                        let st_str = match self.get_string_u_at_rva(ustr, 1 << 16, false) {
                            Ok(s) => s,
                            Err(Exc::Format(_)) => {
                                self.warn(format!(
                                    "Error parsing the version information, attempting to read StringTable string. Can't read unicode string at offset 0x{}",
                                    hx(ustr)
                                ));
                                break;
                            }
                            Err(e) => return Err(e),
                        };
                        let mut e_off =
                            Self::dword_align(st_off + 6 + 2 * (st_str.len() as i128 + 1), base);
                        while e_off < st_off + st_len {
                            let Some(s) =
                                self.unpack("String", pyslice(raw, e_off, None), 6, start + e_off)
                            else {
                                break;
                            };
                            let (s_len, s_vlen) = (u16at(s, 0) as i128, u16at(s, 2) as i128);
                            let ustr = base + e_off + 6;
                            let key = match self
                                .get_string_u_at_rva(ustr, 1 << 16, false)
                                .and_then(|k| self.get_offset_from_rva(ustr).map(|_| k))
                            {
                                Ok(k) => k,
                                Err(Exc::Format(_)) => {
                                    self.warn(format!(
                                        "Error parsing the version information, attempting to read StringTable Key string. Can't read unicode string at offset 0x{}",
                                        hx(ustr)
                                    ));
                                    break;
                                }
                                Err(e) => return Err(e),
                            };
                            let v_off =
                                Self::dword_align(2 * (key.len() as i128 + 1) + e_off + 6, base);
                            let ustr = base + v_off;
                            match self
                                .get_string_u_at_rva(ustr, s_vlen, false)
                                .and_then(|_| self.get_offset_from_rva(ustr))
                            {
                                Ok(_) => {}
                                Err(Exc::Format(_)) => {
                                    self.warn(format!(
                                        "Error parsing the version information, attempting to read StringTable Value string. Can't read unicode string at offset 0x{}",
                                        hx(ustr)
                                    ));
                                    break;
                                }
                                Err(e) => return Err(e),
                            }
                            e_off = if s_len == 0 {
                                st_off + st_len
                            } else {
                                Self::dword_align(s_len + e_off, base)
                            };
                        }
                        let new_off = Self::dword_align(st_len + st_off, base);
                        if new_off == st_off {
                            break;
                        }
                        st_off = new_off;
                        if st_off >= sfi_len {
                            break;
                        }
                    }
                }
            } else if sfi_str.starts_with(b"VarFileInfo") && sfi_type <= 1 && sfi_vlen == 0 {
                let var_off =
                    Self::dword_align(sfi_off + 6 + 2 * (sfi_str.len() as i128 + 1), base);
                // pefile reads one Var and stops (its loop condition is always true).
                if self
                    .unpack("Var", pyslice(raw, var_off, None), 6, start + var_off)
                    .is_some()
                {
                    let ustr = base + var_off + 6;
                    match self.get_string_u_at_rva(ustr, 1 << 16, false) {
                        Ok(_) => {}
                        Err(Exc::Format(_)) => self.warn(format!(
                            "Error parsing the version information, attempting to read VarFileInfo Var string. Can't read unicode string at offset 0x{}",
                            hx(ustr)
                        )),
                        Err(e) => return Err(e),
                    }
                }
            }
            sfi_off = Self::dword_align(sfi_len + sfi_off, base);
            if sfi_len == 0 || sfi_off >= vi_len {
                break;
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Debug, relocations, TLS, load config, bound imports, exceptions

    fn parse_debug_directory(&mut self, rva: i128, size: i128) -> R<()> {
        for idx in 0..size / 28 {
            let at = rva + 28 * idx;
            let data = match self.get_data(at, Some(28)) {
                Ok(d) => d,
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Invalid debug information. Can't read data at RVA: 0x{}",
                        hx(rva)
                    ));
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            let fo = self.get_offset_from_rva(at)?;
            let Some(d) = self.unpack("IMAGE_DEBUG_DIRECTORY", data, 28, fo) else {
                return Ok(());
            };
            let typ = u32at(d, 12);
            let dsize = u32at(d, 16) as i128;
            let dptr = u32at(d, 24) as i128;
            let td = pyslice(self.data, dptr, Some(dptr + dsize));
            match typ {
                2 => {
                    let (name, fixed) = if td.starts_with(b"RSDS") {
                        ("CV_INFO_PDB70", 24)
                    } else if td.starts_with(b"NB10") {
                        ("CV_INFO_PDB20", 16)
                    } else {
                        continue;
                    };
                    let need = if dsize - fixed > 0 { dsize } else { fixed };
                    if (td.len() as i128) < need {
                        self.unpack(name, td, usize::MAX, dptr);
                    }
                }
                4 => {
                    if td.len() < 12 {
                        self.unpack("IMAGE_DEBUG_MISC", td, 12, dptr);
                    } else if td[8] <= 1 {
                        let need = if dsize - 12 > 0 { dsize } else { 12 };
                        if (td.len() as i128) < need {
                            self.unpack("IMAGE_DEBUG_MISC", td, usize::MAX, dptr);
                        }
                    }
                }
                20 if self
                    .unpack("IMAGE_DEBUG_EX_DLLCHARACTERISTICS", td, 4, dptr)
                    .is_none() =>
                {
                    return Err(Exc::Attr(
                        "'NoneType' object has no attribute 'ExDllCharacteristics'".into(),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// parse_image_base_relocation_list; `fmt` is the entry size and whether it is a typed
    /// word (None) or a dynamic relocation with a 12-bit page offset (Some(size)).
    fn parse_base_relocations(&mut self, mut rva: i128, size: i128, fmt: Option<usize>) -> R<()> {
        let end = rva + size;
        while rva < end {
            let got = (|| -> R<(&'a [u8], i128)> {
                let d = self.get_data(rva, Some(8))?;
                Ok((d, self.get_offset_from_rva(rva)?))
            })();
            let (d, fo) = match got {
                Ok(x) => x,
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Invalid relocation information. Can't read data at RVA: 0x{}",
                        hx(rva)
                    ));
                    break;
                }
                Err(e) => return Err(e),
            };
            let Some(b) = self.unpack("IMAGE_BASE_RELOCATION", d, 8, fo) else {
                break;
            };
            let (va, sob) = (u32at(b, 0), u32at(b, 4));
            if va > self.size_of_image {
                self.warn(format!(
                    "Invalid relocation information. VirtualAddress outside of Image: 0x{va:x}"
                ));
                break;
            }
            if sob > self.size_of_image {
                self.warn(format!(
                    "Invalid relocation information. SizeOfBlock too large: {sob}"
                ));
                break;
            }
            self.parse_relocation_entries(rva + 8, va as i128, sob as i128 - 8, fmt)?;
            if sob == 0 {
                break;
            }
            rva += sob as i128;
        }
        Ok(())
    }

    fn parse_relocation_entries(
        &mut self,
        data_rva: i128,
        rva: i128,
        size: i128,
        fmt: Option<usize>,
    ) -> R<()> {
        let got = (|| -> R<&'a [u8]> {
            let d = self.get_data(data_rva, Some(size))?;
            self.get_offset_from_rva(data_rva)?;
            Ok(d)
        })();
        let data = match got {
            Ok(d) => d,
            Err(Exc::Format(_)) => {
                self.warn(format!("Bad RVA in relocation data: 0x{}", hx(data_rva)));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let esize = fmt.unwrap_or(2);
        let mut seen: HashSet<u32> = HashSet::default();
        for c in data.chunks_exact(esize) {
            let key = match fmt {
                None => u16at(c, 0) as u32,
                Some(4) => u32at(c, 0) & 0xfff,
                Some(_) => u16at(c, 0) as u32 & 0xfff,
            };
            if !seen.insert(key) {
                self.warn(format!(
                    "Overlapping offsets in relocation data at RVA: 0x{}",
                    hx((key & 0xfff) as i128 + rva)
                ));
                break;
            }
        }
        Ok(())
    }

    fn parse_tls(&mut self, rva: i128) -> R<()> {
        let size = if self.pe_type == Some(PE32P) { 40 } else { 24 };
        let got = (|| -> R<(&'a [u8], i128)> {
            let d = self.get_data(rva, Some(size as i128))?;
            Ok((d, self.get_offset_from_rva(rva)?))
        })();
        match got {
            Ok((d, fo)) => {
                self.unpack("IMAGE_TLS_DIRECTORY", d, size, fo);
            }
            Err(Exc::Format(_)) => self.warn(format!(
                "Invalid TLS information. Can't read data at RVA: 0x{}",
                hx(rva)
            )),
            Err(e) => return Err(e),
        }
        Ok(())
    }

    fn parse_load_config(&mut self, rva: i128) -> R<()> {
        let types = match self.pe_type {
            Some(PE32) => LOAD_CONFIG32,
            Some(_) => LOAD_CONFIG64,
            None => {
                self.warn(
                    "Don't know how to parse LOAD_CONFIG information for non-PE32/PE32+ file"
                        .into(),
                );
                return Ok(());
            }
        };
        let declared = self.get_dword_at_rva(rva);
        let mut fields = 0usize;
        let mut cum = 0usize;
        for &t in types {
            fields += 1;
            cum += type_size(t);
            if declared == Some(cum as u32) {
                break;
            }
        }
        let offsets: Vec<usize> = types
            .iter()
            .scan(0usize, |o, &t| {
                let here = *o;
                *o += type_size(t);
                Some(here)
            })
            .collect();
        let size: usize = types[..fields].iter().map(|&t| type_size(t)).sum();
        let got = (|| -> R<(&'a [u8], i128)> {
            let d = self.get_data(rva, Some(size as i128))?;
            Ok((d, self.get_offset_from_rva(rva)?))
        })();
        let s = match got {
            Ok((d, fo)) => self.unpack("IMAGE_LOAD_CONFIG_DIRECTORY", d, size, fo),
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Invalid LOAD_CONFIG information. Can't read data at RVA: 0x{}",
                    hx(rva)
                ));
                None
            }
            Err(e) => return Err(e),
        };
        let Some(s) = s else { return Ok(()) };
        if fields > 35 {
            // Fields 36 and 37 end before DynamicValueRelocTableOffset (field 38), which
            // pefile then reads anyway.
            if fields < 38 {
                return Err(Exc::Attr(
                    "'Structure' object has no attribute 'DynamicValueRelocTableOffset'".into(),
                ));
            }
            let dvrt_off = u32at(s, offsets[37]);
            let dvrt_sec = if fields > 38 {
                u16at(s, offsets[38])
            } else {
                return Err(Exc::Attr(
                    "'Structure' object has no attribute 'DynamicValueRelocTableSection'".into(),
                ));
            };
            let n = self.parse_dynamic_relocations(dvrt_off, dvrt_sec)?;
            self.dynamic_relocs = n > 0;
        }
        Ok(())
    }

    /// The number of entries pefile keeps in `dynamic_relocations`.
    fn parse_dynamic_relocations(&mut self, off: u32, sec: u16) -> R<usize> {
        if off == 0 || sec == 0 || sec as usize > self.secs.len() {
            return Ok(0);
        }
        let mut rva = self.secs[sec as usize - 1].va as i128 + off as i128;
        let got = (|| -> R<(&'a [u8], i128)> {
            let d = self.get_data(rva, Some(8))?;
            Ok((d, self.get_offset_from_rva(rva)?))
        })();
        let t = match got {
            Ok((d, fo)) => self.unpack("IMAGE_DYNAMIC_RELOCATION_TABLE", d, 8, fo),
            Err(Exc::Format(_)) => {
                self.warn(format!(
                    "Invalid IMAGE_DYNAMIC_RELOCATION_TABLE information. Can't read data at RVA: 0x{}",
                    hx(rva)
                ));
                return Ok(0);
            }
            Err(e) => return Err(e),
        };
        let Some(t) = t else {
            return Err(Exc::Attr(
                "'NoneType' object has no attribute 'Version'".into(),
            ));
        };
        let (version, tsize) = (u32at(t, 0), u32at(t, 4));
        if version != 1 {
            self.warn(format!(
                "No parsing available for IMAGE_DYNAMIC_RELOCATION_TABLE.Version = {version}"
            ));
            return Ok(0);
        }
        rva += 8;
        let end = rva + tsize as i128;
        let plus = self.pe_type == Some(PE32P);
        let rsize: usize = if plus { 12 } else { 8 };
        let mut kept = 0usize;
        while rva < end {
            let got = (|| -> R<(&'a [u8], i128)> {
                let d = self.get_data(rva, Some(rsize as i128))?;
                Ok((d, self.get_offset_from_rva(rva)?))
            })();
            let name = if plus {
                "IMAGE_DYNAMIC_RELOCATION64"
            } else {
                "IMAGE_DYNAMIC_RELOCATION"
            };
            let r = match got {
                Ok((d, fo)) => self.unpack(name, d, rsize, fo),
                Err(Exc::Format(_)) => {
                    self.warn(format!(
                        "Invalid relocation information. Can't read data at RVA: 0x{}",
                        hx(rva)
                    ));
                    None
                }
                Err(e) => return Err(e),
            };
            let Some(r) = r else { break };
            let (symbol, bsize) = if plus {
                (u64at(r, 0), u32at(r, 8))
            } else {
                (u32at(r, 0) as u64, u32at(r, 4))
            };
            rva += rsize as i128;
            match symbol {
                3 => self.parse_base_relocations(rva, bsize as i128, Some(4))?,
                4 | 5 => self.parse_base_relocations(rva, bsize as i128, Some(2))?,
                7 => self.parse_function_override(rva)?,
                s if s > 5 => self.parse_base_relocations(rva, bsize as i128, None)?,
                _ => {}
            }
            kept += usize::from(symbol >= 3);
            rva += bsize as i128;
        }
        Ok(kept)
    }

    fn parse_function_override(&mut self, mut rva: i128) -> R<()> {
        let d = self.get_data(rva, Some(4))?;
        let fo = self.get_offset_from_rva(rva)?;
        let Some(h) = self.unpack("IMAGE_FUNCTION_OVERRIDE_HEADER", d, 4, fo) else {
            self.warn(format!(
                "Invalid function override header. Can't read data at RVA: 0x{}",
                hx(rva)
            ));
            return Ok(());
        };
        rva += 4;
        let fend = rva + u32at(h, 0) as i128;
        while rva < fend {
            let d = self.get_data(rva, Some(16))?;
            let fo = self.get_offset_from_rva(rva)?;
            let Some(fi) = self.unpack("IMAGE_FUNCTION_OVERRIDE_DYNAMIC_RELOCATION", d, 16, fo)
            else {
                self.warn(format!(
                    "Invalid function override info. Can't read data at RVA: 0x{}",
                    hx(rva)
                ));
                return Ok(());
            };
            let (rva_size, brs) = (u32at(fi, 8) as i128, u32at(fi, 12) as i128);
            rva += 16;
            for _ in 0..rva_size / 4 {
                if self.get_data(rva, Some(4))?.len() < 4 {
                    return Err(Exc::Other(
                        "error: unpack requires a buffer of 4 bytes".into(),
                    ));
                }
                rva += 4;
            }
            self.parse_base_relocations(rva, brs, None)?;
            rva += brs;
        }
        let d = self.get_data(rva, Some(8))?;
        let fo = self.get_offset_from_rva(rva)?;
        let Some(bi) = self.unpack("IMAGE_BDD_INFO", d, 8, fo) else {
            self.warn(format!(
                "Invalid bdd info. Can't read data at RVA: 0x{}",
                hx(rva)
            ));
            return Ok(());
        };
        rva += 8;
        for _ in 0..u32at(bi, 4) / 8 {
            let d = self.get_data(rva, Some(8))?;
            let fo = self.get_offset_from_rva(rva)?;
            if self
                .unpack("IMAGE_BDD_DYNAMIC_RELOCATION", d, 8, fo)
                .is_none()
            {
                self.warn(format!(
                    "Invalid bdd dynamic relocation. Can't read data at RVA: 0x{}",
                    hx(rva)
                ));
                return Ok(());
            }
            rva += 8;
        }
        Ok(())
    }

    fn parse_bound_imports(&mut self, rva0: i128) -> R<()> {
        let data = self.data;
        let start = rva0;
        let mut rva = rva0;
        loop {
            let Some(d) = self.unpack(
                "IMAGE_BOUND_IMPORT_DESCRIPTOR",
                pyslice(data, rva, Some(rva + 8)),
                8,
                rva,
            ) else {
                self.warn("The Bound Imports directory exists but can't be parsed.".into());
                return Ok(());
            };
            if d.iter().all(|&b| b == 0) {
                break;
            }
            let name_off = u16at(d, 4) as i128;
            let nrefs = u16at(d, 6) as i128;
            rva += 8;
            let mut section = self.section_by_offset(rva);
            let fo = self.get_offset_from_rva(rva)?;
            let safety;
            match section {
                None => {
                    let mut sb = self.len() - fo;
                    let after = self
                        .secs
                        .iter()
                        .map(|s| s.raw_ptr as i128)
                        .filter(|&p| p > fo)
                        .min();
                    if let Some(first) = after {
                        section = self.section_by_offset(first);
                        if let Some(s) = section {
                            sb = self.secs[s].raw_ptr as i128 - fo;
                        }
                    }
                    safety = sb;
                }
                Some(s) => {
                    safety = self.secs[s].raw_ptr as i128
                        + self.sec_data(s, None, None).len() as i128
                        - fo;
                }
            }
            if section.is_none() {
                self.warn(format!(
                    "RVA of IMAGE_BOUND_IMPORT_DESCRIPTOR points to an invalid address: {}",
                    hx(rva)
                ));
                return Ok(());
            }
            for _ in 0..nrefs.min(safety / 8).max(0) {
                let Some(r) = self.unpack(
                    "IMAGE_BOUND_FORWARDER_REF",
                    pyslice(data, rva, Some(rva + 8)),
                    8,
                    rva,
                ) else {
                    return Err(Exc::Format(
                        "IMAGE_BOUND_FORWARDER_REF cannot be read".into(),
                    ));
                };
                rva += 8;
                let o = start + u16at(r, 4) as i128;
                let s = cstr(pyslice(data, o, Some(o + MAX_STRING_LENGTH)));
                if !s.is_empty() && (s.len() > 256 || !s.iter().all(|&c| printable(c))) {
                    break;
                }
            }
            let o = start + name_off;
            let s = cstr(pyslice(data, o, Some(o + MAX_STRING_LENGTH)));
            if !s.is_empty() && (s.len() > 256 || !s.iter().all(|&c| printable(c))) {
                break;
            }
            if s.is_empty() {
                break;
            }
        }
        Ok(())
    }

    fn parse_exceptions(&mut self, mut rva: i128, size: i128) -> R<()> {
        if self.machine != 0x8664 && self.machine != 0x200 {
            return Ok(());
        }
        let mut infos: Vec<UnwindInfo> = Vec::new();
        let mut by_rva: HashMap<u32, usize> = HashMap::default();
        // (file offset of the RUNTIME_FUNCTION, its unwind info)
        let mut funcs: Vec<(i128, Option<usize>)> = Vec::new();
        let mut begins: HashSet<u32> = HashSet::default();
        for _ in 0..size / 12 {
            let d = self.get_data(rva, Some(12))?;
            let fo = self.get_offset_from_rva(rva)?;
            let Some(rf) = self.unpack("RUNTIME_FUNCTION", d, 12, fo) else {
                break;
            };
            let begin = u32at(rf, 0);
            let unwind = u32at(rf, 8);
            let mut ui_idx = None;
            if unwind & 1 == 0 {
                let i = match by_rva.get(&unwind) {
                    Some(&i) => i,
                    None => {
                        let ufo = self.get_offset_from_rva(unwind as i128)?;
                        infos.push(UnwindInfo {
                            file_offset: ufo,
                            full_size: 4,
                            ..Default::default()
                        });
                        by_rva.insert(unwind, infos.len() - 1);
                        infos.len() - 1
                    }
                };
                let ufo = infos[i].file_offset;
                let mut stop = false;
                for _ in 0..2 {
                    let sz = infos[i].full_size as i128;
                    let ud = self.get_data(unwind as i128, Some(sz))?;
                    if let Some(w) = unpack_unwind(&mut infos[i], ud, ufo)? {
                        self.warn(w);
                        stop = true;
                        break;
                    }
                }
                if stop {
                    break;
                }
                ui_idx = Some(i);
            }
            funcs.push((fo, ui_idx));
            begins.insert(begin);
            rva += 12;
        }
        for (fo, ui) in funcs {
            let Some(i) = ui else { continue };
            let Some(fe) = infos[i].function_entry else {
                continue;
            };
            if !begins.contains(&fe) {
                self.warn(format!(
                    "FunctionEntry of UNWIND_INFO at {} points to an entry that does not exist",
                    hx(fo)
                ));
                continue;
            }
            if infos[i].chained {
                self.warn(format!(
                    "Failed parsing FunctionEntry of UNWIND_INFO at {}: {}",
                    hx(fo),
                    py_repr_str("Chained function entry cannot be changed")
                ));
                continue;
            }
            infos[i].chained = true;
        }
        Ok(())
    }
}

/// UnwindInfo.unpack_in_stages: Some(warning) stops the exception directory.
fn unpack_unwind(ui: &mut UnwindInfo, data: &[u8], file_offset: i128) -> R<Option<String>> {
    if ui.finished {
        return Ok(None);
    }
    if data.len() < 4 {
        return Err(Exc::Format(SHORT.into()));
    }
    let version = data[0] & 7;
    let flags = data[0] >> 3;
    let count = data[2] as usize;
    let codes_max = (count + 1) & !1;
    let hdlr = 4 + codes_max * 2;
    ui.full_size = hdlr + if flags != 0 { 4 } else { 0 };
    if data.len() < ui.full_size {
        return Ok(None);
    }
    if version != 1 && version != 2 {
        return Ok(Some(format!(
            "Unsupported version of UNWIND_INFO at {}",
            pyhex(file_offset)
        )));
    }
    let mut ro = 4usize;
    let mut left = count as i64;
    while left > 0 {
        if ro + 2 > data.len() {
            return Err(Exc::Format(SHORT.into()));
        }
        let op = data[ro + 1] & 0xf;
        let info = data[ro + 1] >> 4;
        let slots = match op {
            0 | 2 | 3 | 10 => 1,
            1 => {
                if info == 0 {
                    2
                } else {
                    3
                }
            }
            4 | 8 => 2,
            5 | 9 => 3,
            6 => {
                if !ui.has_epilog_size && info & 1 == 0 {
                    2
                } else {
                    1
                }
            }
            _ => {
                return Ok(Some(format!(
                    "Unknown UNWIND_CODE at {}",
                    pyhex(file_offset + ro as i128)
                )))
            }
        };
        if ro + 2 * slots > data.len() {
            return Err(Exc::Format(SHORT.into()));
        }
        if op == 6 {
            ui.has_epilog_size = true;
        }
        ro += 2 * slots;
        left -= slots as i64;
    }
    if flags & 4 != 0 {
        ui.function_entry = Some(u32at(data, hdlr));
    }
    ui.finished = true;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mallard_pe::synth::{set_u16, set_u32, tiny_pe32};

    const DD: usize = 0x98 + 96;
    const SEC: usize = 0x178;

    /// tiny_pe32 plus a third section `.data` (RVA 0x3000, file 0x600, 0x1000 bytes) to
    /// hold hand-built structures.
    fn big() -> Vec<u8> {
        let mut b = tiny_pe32();
        b.resize(0x1600, 0);
        set_u16(&mut b, 0x86, 3);
        set_u32(&mut b, 0x98 + 56, 0x4000);
        let s = SEC + 80;
        b[s..s + 5].copy_from_slice(b".data");
        set_u32(&mut b, s + 8, 0x1000);
        set_u32(&mut b, s + 12, 0x3000);
        set_u32(&mut b, s + 16, 0x1000);
        set_u32(&mut b, s + 20, 0x600);
        set_u32(&mut b, s + 36, 0x4000_0040);
        // Fill so the file is not mostly zeros.
        for (i, x) in b[0x700..0x1600].iter_mut().enumerate() {
            *x = (i % 251) as u8 | 1;
        }
        b
    }

    /// File offset of an RVA in `.data`.
    fn d(rva: usize) -> usize {
        rva - 0x3000 + 0x600
    }

    fn dir(b: &mut [u8], idx: usize, va: u32, size: u32) {
        set_u32(b, DD + 8 * idx, va);
        set_u32(b, DD + 8 * idx + 4, size);
    }

    fn parsed(b: &[u8]) -> Vec<String> {
        match pefile_parse(b) {
            PefileParse::Parsed { warnings } => warnings,
            PefileParse::NotPe(m) => panic!("not a PE: {m}"),
        }
    }

    /// Hand-edited files and the pattern line each must produce (checked against pefile
    /// 2024.8.26 on the same bytes).
    fn cases() -> Vec<(&'static str, Vec<u8>)> {
        let mut v: Vec<(&'static str, Vec<u8>)> = Vec::new();
        let mut push = |pat: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = big();
            f(&mut b);
            v.push((pat, b));
        };
        push(
            "AddressOfEntryPoint lies outside the sections' boundaries...",
            &|b| set_u32(b, 0x98 + 16, 0x9000),
        );
        push(
            "SizeOfHeaders is smaller than AddressOfEntryPoint...",
            &|b| set_u32(b, 0x98 + 16, 0x100),
        );
        push(
            "Suspicious NumberOfRvaAndSizes in the Optional Header...",
            &|b| set_u32(b, 0x98 + 92, 0x20),
        );
        push("Invalid type 0x...", &|b| set_u16(b, 0x98, 0x10c));
        push(
            "Don't know how to parse LOAD_CONFIG information for non-PE32...",
            &|b| {
                set_u16(b, 0x98, 0x10c);
                dir(b, 10, 0x3000, 0x40);
            },
        );
        push("Suspicious flags set for section...", &|b| {
            set_u32(b, SEC + 36, 0xe000_0020)
        });
        push(
            "If FileAlignment > 0x200 it should be a power of 2. Value...",
            &|b| set_u32(b, 0x98 + 36, 0x300),
        );
        push("If SectionAlignment...", &|b| set_u32(b, 0x98 + 32, 0x800));
        push("...SizeOfRawData is larger than file.", &|b| {
            set_u32(b, SEC + 80 + 16, 0x10000)
        });
        push(
            "...PointerToRawData points beyond the end of the file.",
            &|b| set_u32(b, SEC + 80 + 20, 0x10000),
        );
        push("Suspicious value found parsing section...", &|b| {
            set_u32(b, SEC + 80 + 8, 0x2000_0000)
        });
        push(
            "...PointerToRawData should normally be a multiple of FileAlignment, this might imply the file is trying to confuse tools which parse this incorrectly.",
            &|b| set_u32(b, SEC + 80 + 20, 0x610),
        );
        push("Too many warnings parsing section. Aborting...", &|b| {
            set_u32(b, SEC + 80 + 20, 0x10010);
        });
        push("...Contents are null-bytes.", &|b| {
            b[SEC + 80..SEC + 120].fill(0)
        });
        push("Byte 0x...", &|b| b.truncate(0x600));
        push(
            "Rich Header is not in Microsoft format, possibly malformed...",
            &|b| {
                // e_lfanew 0x90: the search for "Rich" covers 0x80..0xa8.
                let hdr = b[0x80..0x1f0].to_vec();
                b[0x90..0x200].copy_from_slice(&hdr);
                set_u32(b, 0x3c, 0x90);
                b[0x80..0x84].copy_from_slice(b"Rich");
                set_u32(b, 0x84, 0x1234_5678);
            },
        );
        // Imports
        push("Error parsing the import directory at RVA...", &|b| {
            dir(b, 1, 0x9000, 0x28)
        });
        push("Damaged Import Table information...", &|b| {
            set_u32(b, 0x400, 0x3000);
            set_u32(b, 0x400 + 16, 0x3000);
        });
        push(
            "Error parsing the import table. Invalid data at RVA...",
            &|b| {
                set_u32(b, 0x400, 0x9000);
            },
        );
        push(
            "Error parsing the import table. AddressOfData overlaps with THUNK_DATA for THUNK at RVA...",
            &|b| set_u32(b, 0x480, 0x2080),
        );
        push(
            "Error parsing the import directory. Invalid Import data at RVA...",
            &|b| {
                set_u32(b, 0x480, 0x0700_0000);
                set_u32(b, 0x4a0, 0x0700_0000);
            },
        );
        push("Too many errors parsing the import directory...", &|b| {
            dir(b, 1, 0x3000, 0x100);
            b[d(0x3000)..d(0x3100)].fill(0);
            for k in 0..8 {
                set_u32(b, d(0x3000) + 20 * k + 12, 0x20c0);
                set_u32(b, d(0x3000) + 20 * k + 16, 0x9000);
            }
        });
        push("Excessive number of imports...", &|b| {
            b[d(0x3000)..d(0x4000)].fill(0);
            for k in 0..0x3ff {
                set_u32(b, d(0x3000) + 4 * k, 0x8000_0001 + k as u32);
            }
            for k in 0..6 {
                set_u32(b, 0x400 + 20 * k, 0x3000);
                set_u32(b, 0x400 + 20 * k + 12, 0x20c0);
                set_u32(b, 0x400 + 20 * k + 16, 0x3000);
            }
            dir(b, 1, 0x2000, 0x80);
        });
        push(
            "Imported symbols contain entries typical of packed executables...",
            &|b| {
                set_u32(b, 0x484, 0x2170);
                set_u32(b, 0x4a4, 0x2170);
                b[0x4e2..0x4ee].copy_from_slice(b"LoadLibraryA");
                b[0x570..0x582].copy_from_slice(b"\0\0GetProcAddress\0\0");
                set_u32(b, 0x488, 0);
                set_u32(b, 0x4a8, 0);
            },
        );
        // Exports
        push("Error parsing export directory at RVA...", &|b| {
            dir(b, 0, 0x9000, 0x60)
        });
        push(
            "RVA AddressOfNames in the export directory points to an invalid...",
            &|b| set_u32(b, 0x530, 0x1000),
        );
        push("...Assuming corrupt.", &|b| {
            set_u32(b, 0x500 + 20, 200);
            set_u32(b, 0x500 + 24, 0);
            set_u32(b, 0x500 + 28, 0x3000);
            for k in 0..200 {
                set_u32(b, d(0x3000) + 4 * k, 0x1004);
            }
        });
        // Resources
        push("Invalid resources directory. Can't read...", &|b| {
            dir(b, 2, 0x9000, 0x10)
        });
        push(
            "Invalid resources directory. Can't parse directory data at RVA...",
            &|b| dir(b, 2, 0x15f8, 0x10),
        );
        push(
            "Error parsing the resources directory. The directory contains...",
            &|b| {
                dir(b, 2, 0x3000, 0x10);
                set_u16(b, d(0x3000) + 14, 5000);
            },
        );
        push("Error parsing a resource directory data entry...", &|b| {
            dir(b, 2, 0x3000, 0x100);
            b[d(0x3000)..d(0x3100)].fill(0);
            set_u16(b, d(0x3000) + 14, 1);
            set_u32(b, d(0x3010), 3);
            set_u32(b, d(0x3014), 0x0100_0000);
        });
        push(
            "Error parsing the resources directory. Excessively nested table depth...",
            &|b| {
                dir(b, 2, 0x3000, 0x1000);
                b[d(0x3000)..d(0x3800)].fill(0);
                for k in 0..40usize {
                    let at = d(0x3000) + 0x18 * k;
                    set_u16(b, at + 14, 1);
                    set_u32(b, at + 16, 1);
                    set_u32(b, at + 20, 0x8000_0000 | (0x18 * (k as u32 + 1)));
                }
            },
        );
        push(
            "Error parsing the resources directory, attempting to read entry name. Entry names overlap...",
            &|b| {
                dir(b, 2, 0x3000, 0x100);
                b[d(0x3000)..d(0x3100)].fill(0);
                set_u16(b, d(0x3000) + 12, 2);
                set_u32(b, d(0x3010), 0x8000_0080);
                set_u32(b, d(0x3014), 0x40);
                set_u32(b, d(0x3018), 0x8000_0082);
                set_u32(b, d(0x301c), 0x40);
                set_u16(b, d(0x3080), 8);
                set_u16(b, d(0x3082), 8);
            },
        );
        push("Resource size...", &|b| {
            dir(b, 2, 0x3000, 0x100);
            b[d(0x3000)..d(0x3100)].fill(0);
            set_u16(b, d(0x3000) + 14, 2);
            set_u32(b, d(0x3010), 1);
            set_u32(b, d(0x3014), 0x40);
            set_u32(b, d(0x3018), 2);
            set_u32(b, d(0x301c), 0x40);
            set_u32(b, d(0x3040), 0x3000);
            set_u32(b, d(0x3044), 0x10_0000);
        });
        push("Invalid VS_VERSION_INFO block...", &|b| {
            dir(b, 2, 0x3000, 0x200);
            b[d(0x3000)..d(0x3200)].fill(0);
            // root -> id 16 -> id 1 -> lang entry -> data entry
            set_u16(b, d(0x3000) + 14, 1);
            set_u32(b, d(0x3010), 16);
            set_u32(b, d(0x3014), 0x8000_0020);
            set_u16(b, d(0x3020) + 14, 1);
            set_u32(b, d(0x3030), 1);
            set_u32(b, d(0x3034), 0x8000_0040);
            set_u16(b, d(0x3040) + 14, 1);
            set_u32(b, d(0x3050), 0x409);
            set_u32(b, d(0x3054), 0x60);
            set_u32(b, d(0x3060), 0x3100);
            set_u32(b, d(0x3064), 0x40);
            set_u16(b, d(0x3100), 0x40);
            for (k, c) in "VS_VERSION_INFX".encode_utf16().enumerate() {
                set_u16(b, d(0x3106) + 2 * k, c);
            }
        });
        // Relocations
        push("Invalid relocation information. Can't read...", &|b| {
            dir(b, 5, 0x9000, 0x10)
        });
        push(
            "Invalid relocation information. VirtualAddress outside...",
            &|b| {
                dir(b, 5, 0x3000, 0x10);
                set_u32(b, d(0x3000), 0x10_0000);
                set_u32(b, d(0x3004), 0x10);
            },
        );
        push(
            "Invalid relocation information. SizeOfBlock too large...",
            &|b| {
                dir(b, 5, 0x3000, 0x10);
                set_u32(b, d(0x3000), 0x1000);
                set_u32(b, d(0x3004), 0x10_0000);
            },
        );
        push("Overlapping offsets in relocation data...", &|b| {
            dir(b, 5, 0x3000, 0x10);
            set_u32(b, d(0x3000), 0x1000);
            set_u32(b, d(0x3004), 0x10);
            set_u32(b, d(0x3008), 0x3004_3004);
            set_u32(b, d(0x300c), 0);
        });
        push("Bad RVA in relocation data...", &|b| {
            b.truncate(0x600);
            set_u16(b, 0x86, 2);
            dir(b, 5, 0x5f8, 0x10);
            set_u32(b, 0x5f8, 0x1000);
            set_u32(b, 0x5fc, 0x10);
        });
        // Debug, TLS, load config, delay imports, bound imports
        push("Invalid debug information...", &|b| dir(b, 6, 0x9000, 0x1c));
        push("Invalid TLS information. Can't read...", &|b| {
            dir(b, 9, 0x9000, 0x18)
        });
        push("Invalid LOAD_CONFIG information...", &|b| {
            dir(b, 10, 0x9000, 0x40)
        });
        push("Error parsing the Delay import directory...", &|b| {
            dir(b, 13, 0x9000, 0x20)
        });
        push(
            "The Bound Imports directory exists but can't be parsed...",
            &|b| dir(b, 11, 0x15fc, 0x8),
        );
        push("RVA of IMAGE_BOUND_IMPORT_DESCRIPTOR points...", &|b| {
            b.extend_from_slice(&[1u8; 16]);
            dir(b, 11, 0x1600, 0x8);
        });
        push("Corrupt header...", &|b| dir(b, 0, 0x15f0, 0x28));
        push(
            "No parsing available for IMAGE_DYNAMIC_RELOCATION_TABLE...",
            &|b| {
                dir(b, 10, 0x3000, 0x90);
                b[d(0x3000)..d(0x3200)].fill(0);
                set_u32(b, d(0x3000), 0x90);
                // DynamicValueRelocTableOffset / Section (fields 38 and 39)
                set_u32(b, d(0x3000) + 0x88, 0x100);
                set_u16(b, d(0x3000) + 0x8c, 3);
                set_u32(b, d(0x3100), 2);
            },
        );
        // Exceptions (x64 machine)
        let x64 = |b: &mut Vec<u8>, unwind: &[u8]| {
            set_u16(b, 0x84, 0x8664);
            dir(b, 3, 0x3000, 12);
            b[d(0x3000)..d(0x3100)].fill(0);
            set_u32(b, d(0x3000), 0x1000);
            set_u32(b, d(0x3004), 0x1010);
            set_u32(b, d(0x3008), 0x3080);
            b[d(0x3080)..d(0x3080) + unwind.len()].copy_from_slice(unwind);
        };
        push("Unsupported version of UNWIND_INFO...", &|b| {
            x64(b, &[3, 0, 0, 0])
        });
        push("Unknown UNWIND_CODE at...", &|b| {
            x64(b, &[1, 0, 1, 0, 0, 7])
        });
        push("FunctionEntry of UNWIND_INFO at...", &|b| {
            x64(b, &[0x21, 0, 0, 0, 0, 0x50, 0, 0])
        });
        push("Failed parsing FunctionEntry of UNWIND_INFO at...", &|b| {
            x64(b, &[0x21, 0, 0, 0, 0, 0x10, 0, 0]);
            dir(b, 3, 0x3000, 24);
            set_u32(b, d(0x300c), 0x1010);
            set_u32(b, d(0x3010), 0x1020);
            set_u32(b, d(0x3014), 0x3080);
        });
        push("Failed to process directory...", &|b| {
            set_u16(b, 0x84, 0x8664);
            dir(b, 3, 0x9000, 12);
        });
        v
    }

    #[test]
    fn hand_built_files_raise_their_warning() {
        let mut bad = Vec::new();
        for (pat, b) in cases() {
            let n = match pefile_parse(&b) {
                PefileParse::Parsed { warnings } => normalize(&warnings),
                PefileParse::NotPe(m) => vec![m],
            };
            if !n.iter().any(|x| x == pat) {
                bad.push(format!("{pat}: got {n:?}"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn every_pattern_line_is_known() {
        let p = patterns();
        assert_eq!(p.len(), 87);
        for (pat, _) in cases() {
            assert!(p.contains(&pat), "{pat}");
        }
    }

    #[test]
    fn tiny_pe_is_clean_apart_from_zero_bytes() {
        let w = parsed(&big());
        assert!(w.is_empty(), "{w:?}");
        let w = parsed(&tiny_pe32());
        assert_eq!(normalize(&w), vec!["Byte 0x...".to_string()]);
    }

    #[test]
    fn not_pe_decisions() {
        let np = |b: &[u8]| matches!(pefile_parse(b), PefileParse::NotPe(_));
        assert!(np(b""));
        assert!(np(b"MZ"));
        let mut b = big();
        b[0..2].copy_from_slice(b"ZM");
        assert!(np(&b));
        let mut b = big();
        set_u32(&mut b, 0x3c, 0x10_0000);
        assert!(np(&b));
        let mut b = big();
        b[0x80..0x84].copy_from_slice(b"NE\0\0");
        assert_eq!(
            pefile_parse(&b),
            PefileParse::NotPe("Invalid NT Headers signature. Probably a NE file".into())
        );
        // Truncated inside the section table: the header unpack raises.
        let mut b = big();
        b.truncate(0x1b0);
        assert!(np(&b));
        // Load config whose Size stops at field 36: pefile reads a field it did not unpack.
        let mut b = big();
        dir(&mut b, 10, 0x3000, 0x90);
        set_u32(&mut b, d(0x3000), 0x8c);
        assert!(
            matches!(pefile_parse(&b), PefileParse::NotPe(m) if m.starts_with("AttributeError"))
        );
        // Debug entry of type 20 without data.
        let mut b = big();
        dir(&mut b, 6, 0x3000, 0x1c);
        b[d(0x3000)..d(0x3020)].fill(0);
        set_u32(&mut b, d(0x3000) + 12, 20);
        set_u32(&mut b, d(0x3000) + 24, 0x10_0000);
        assert!(
            matches!(pefile_parse(&b), PefileParse::NotPe(m) if m.starts_with("AttributeError"))
        );
        // A writable+executable PAGE section makes pefile call is_driver() mid-parse.
        let mut b = big();
        b[SEC..SEC + 8].copy_from_slice(b"PAGE\0\0\0\0");
        set_u32(&mut b, SEC + 36, 0xe000_0020);
        assert!(
            matches!(pefile_parse(&b), PefileParse::NotPe(m) if m.starts_with("AttributeError"))
        );
    }

    #[test]
    fn normalize_and_vector() {
        let w = vec![
            "Export directory contains more than 8192 symbol entries. Assuming corrupt."
                .to_string(),
            "Error parsing the Delay import directory at RVA: 0x9000".to_string(),
            "Byte 0x00 makes up 60.0000% of the file's contents.".to_string(),
            "something pefile never says".to_string(),
        ];
        let n = normalize(&w);
        assert_eq!(
            n,
            vec![
                "...Assuming corrupt.".to_string(),
                "Byte 0x...".to_string(),
                "Error parsing the Delay import directory...".to_string(),
            ]
        );
        let v = vector(&n);
        assert_eq!(v[87], 3.0);
        assert_eq!(v[2], 1.0);
        assert_eq!(v[86], 1.0);
        assert_eq!(v.iter().take(87).sum::<f32>(), 3.0);
        assert_eq!(vector(&[]), [0f32; 88]);
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        let base = big();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..400 {
            let mut b = base.clone();
            for _ in 0..(next() % 16 + 1) {
                let o = (next() % 0x700) as usize;
                b[o] = next() as u8;
            }
            let _ = pefile_parse(&b);
            let t = (next() % b.len() as u64) as usize;
            let _ = pefile_parse(&b[..t]);
        }
        for (_, b) in cases() {
            for t in [0x40, 0x100, 0x1c0, 0x600, b.len() / 2] {
                let _ = pefile_parse(&b[..t.min(b.len())]);
            }
        }
    }

    /// Writes the hand-built files to MALLARD_WARN_CASES (to check them with pefile).
    #[test]
    #[ignore = "writes files for an external check"]
    fn dump_cases() {
        let Some(dir) = std::env::var_os("MALLARD_WARN_CASES") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        for (k, (pat, b)) in cases().into_iter().enumerate() {
            let ours = match pefile_parse(&b) {
                PefileParse::Parsed { warnings } => warnings.join("\n"),
                PefileParse::NotPe(m) => format!("NOTPE {m}"),
            };
            std::fs::write(
                dir.join(format!("case{k:03}.txt")),
                format!("{pat}\n{ours}"),
            )
            .expect("write case");
            std::fs::write(dir.join(format!("case{k:03}.bin")), b).expect("write case");
        }
    }
}
