//! EMBER v2 features of a PE file without what an evasion edit can change freely (issue 15):
//! the overlay (and the certificate in it), the DOS header and stub (the Rich header among
//! them), the timestamp, the checksum, the debug and certificate directory entries, section
//! names, the slack after a section's mapped bytes, and trailing sections nothing points at
//! (where an appended section goes). Those are the regions the published
//! functionality-preserving attacks write to; a model that never sees them cannot be moved by
//! them. The columns are EMBER v2's, so models, explanations and tables read them alike.

use mallard_pe::{dir, scn, Pe};
use serde_json::Value;

/// The file as the hardened features see it: cut after the last section's raw data, with
/// the attacker-controlled header bytes and section slack set to zero. Bytes that do not
/// parse as PE come back unchanged (the extractor and the scanner deal with them).
pub fn normalize(bytes: &[u8]) -> Vec<u8> {
    let Ok(pe) = Pe::parse(bytes) else {
        return bytes.to_vec();
    };
    let len = bytes.len();
    let lfanew = pe.dos.e_lfanew as usize;
    let opt_size = usize::from(pe.coff.size_of_optional_header);
    let table = lfanew + 24 + opt_size;
    let table_end = table + 40 * pe.sections.len();
    // Trailing sections nothing points at (no code, not the entry point's, no data directory
    // inside) are where an appended section goes: the view stops before them.
    let entry = u64::from(pe.optional.address_of_entry_point);
    let used = |s: &mallard_pe::Section| {
        let va = u64::from(s.virtual_address);
        let span = u64::from(s.virtual_size.max(s.size_of_raw_data));
        let inside = |rva: u64| rva >= va && rva < va + span;
        s.characteristics & (scn::CNT_CODE | scn::MEM_EXECUTE) != 0
            || inside(entry)
            || pe.data_directories.iter().enumerate().any(|(i, d)| {
                i != dir::CERTIFICATE
                    && i != dir::DEBUG
                    && d.virtual_address != 0
                    && inside(u64::from(d.virtual_address))
            })
    };
    let keep = pe.sections.iter().rposition(used).map_or(pe.sections.len(), |i| i + 1);
    let kept = &pe.sections[..keep];
    let raw_end = kept
        .iter()
        .filter(|s| s.size_of_raw_data > 0)
        .map(|s| s.pointer_to_raw_data as usize + s.size_of_raw_data as usize)
        .max()
        .unwrap_or(len);
    let headers = pe.optional.size_of_headers as usize;
    let end = raw_end.max(headers).max(table_end).min(len);
    let mut out = bytes[..end].to_vec();

    let zero = |out: &mut Vec<u8>, r: std::ops::Range<usize>| {
        let r = r.start.min(out.len())..r.end.min(out.len());
        if let Some(b) = out.get_mut(r) {
            b.fill(0);
        }
    };
    if lfanew >= 0x40 {
        zero(&mut out, 2..0x3c);
        zero(&mut out, 0x40..lfanew);
    }
    zero(&mut out, lfanew + 8..lfanew + 12); // TimeDateStamp
    if opt_size >= 68 {
        zero(&mut out, lfanew + 24 + 64..lfanew + 24 + 68); // CheckSum
    }
    let dirs = if pe.is_pe32_plus() { 112 } else { 96 };
    for i in [dir::DEBUG, dir::CERTIFICATE] {
        let at = dirs + 8 * i;
        if at + 8 <= opt_size && i < pe.data_directories.len() {
            zero(&mut out, lfanew + 24 + at..lfanew + 24 + at + 8);
        }
    }
    for i in 0..pe.sections.len() {
        let header = if i < keep { 8 } else { 40 };
        zero(&mut out, table + 40 * i..table + 40 * i + header);
    }
    if let Some(n) = out.get_mut(lfanew + 6..lfanew + 8) {
        n.copy_from_slice(&(keep as u16).to_le_bytes());
    }
    // SizeOfImage as the kept sections give it, for every file alike.
    let sa = u64::from(pe.optional.section_alignment.max(1));
    let image = kept
        .iter()
        .map(|s| u64::from(s.virtual_address) + u64::from(s.virtual_size.max(s.size_of_raw_data)))
        .max()
        .map_or(u64::from(pe.optional.size_of_image), |e| mallard_pe::align_up(e, sa));
    if opt_size >= 60 {
        if let Some(f) = out.get_mut(lfanew + 24 + 56..lfanew + 24 + 60) {
            f.copy_from_slice(&(image.min(u64::from(u32::MAX)) as u32).to_le_bytes());
        }
    }
    // Slack: raw data past the virtual size is not mapped. A virtual size of 0 means the
    // raw size to old linkers, and slack another section's data lies in is not slack.
    let mapped: Vec<std::ops::Range<usize>> = kept
        .iter()
        .map(|s| {
            let n = if s.virtual_size == 0 {
                s.size_of_raw_data
            } else {
                s.virtual_size.min(s.size_of_raw_data)
            };
            let p = s.pointer_to_raw_data as usize;
            p..p + n as usize
        })
        .collect();
    for s in kept {
        let (p, vs, raw) = (
            s.pointer_to_raw_data as usize,
            s.virtual_size as usize,
            s.size_of_raw_data as usize,
        );
        if vs == 0 || vs >= raw {
            continue;
        }
        let slack = p + vs..p + raw;
        if slack.start < headers
            || mapped
                .iter()
                .any(|m| m.start < slack.end && slack.start < m.end)
        {
            continue;
        }
        zero(&mut out, slack);
    }
    out
}

/// Sets the fields of an EMBER raw object that [`normalize`] removes from the bytes to what
/// a normalized file has: timestamp 0, no section names, no debug or certificate entry.
/// For raw objects of whole files (EMBER jsonl rows) this is all that can be done; their
/// byte histograms and strings still include any overlay.
pub fn mask_raw(raw: &mut Value) {
    if let Some(t) = raw.pointer_mut("/header/coff/timestamp") {
        *t = Value::from(0);
    }
    if let Some(g) = raw.get_mut("general").and_then(Value::as_object_mut) {
        for k in ["has_debug", "has_signature"] {
            if g.contains_key(k) {
                g.insert(k.into(), Value::from(0));
            }
        }
    }
    if let Some(s) = raw.get_mut("section").and_then(Value::as_object_mut) {
        if s.contains_key("entry") {
            s.insert("entry".into(), Value::from(""));
        }
        if let Some(list) = s.get_mut("sections").and_then(Value::as_array_mut) {
            for sec in list.iter_mut().filter_map(Value::as_object_mut) {
                sec.insert("name".into(), Value::from(""));
            }
        }
    }
    if let Some(dirs) = raw.get_mut("datadirectories").and_then(Value::as_array_mut) {
        for i in [dir::DEBUG, dir::CERTIFICATE] {
            if let Some(d) = dirs.get_mut(i).and_then(Value::as_object_mut) {
                for k in ["size", "virtual_address"] {
                    if d.contains_key(k) {
                        d.insert(k.into(), Value::from(0));
                    }
                }
            }
        }
    }
}
