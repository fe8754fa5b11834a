//! A conservative test of whether a file *might* match one of the built-in rules, checked
//! before yara-x is started: on a one-file scan, loading the rules, instantiating their WASM
//! and running the `pe` module cost more than the model. "No" must be certain (a file for
//! which [`may_match_builtin`] is false never matches a built-in rule: tested against yara-x
//! itself on every shared PE file and on files made to match each rule); "yes" only means
//! yara-x decides. Anything unusual in the headers answers "yes".
//!
//! The reasoning is about the five rules of `rules/mallard.yar` as they are written; a test
//! pins that text, so a changed rule cannot silently leave this behind.

use mallard_io::le::{u16_at, u32_at};
use memchr::memmem;

/// Whether `data` might match a built-in rule.
pub fn may_match_builtin(data: &[u8]) -> bool {
    // The header-only checks first: a file they leave open needs no pass over its bytes.
    eicar_possible(data)
        || !entry_inside_a_section(data)
        || upx_possible(data)
        || injection_possible(data)
        || keylogger_possible(data)
}

/// `eicar_test_file` compares the first 68 bytes with the EICAR string.
fn eicar_possible(data: &[u8]) -> bool {
    data.len() >= 68 && data.starts_with(b"X5O!")
}

/// `upx_packed` needs a section named UPX0 or UPX1; yara-x's `pe.sections[i].name` is the
/// 8 bytes of the section table (trailing zeros removed), so the bytes are in the file.
fn upx_possible(data: &[u8]) -> bool {
    memmem::find_iter(data, b"UPX").any(|i| matches!(data.get(i + 3), Some(b'0' | b'1')))
}

/// `process_injection_imports` needs three imports by name; yara-x compares imported names
/// ignoring ASCII case and names ordinal imports only for ws2_32, wsock32 and oleaut32, so
/// each name is in the file, in some case.
fn injection_possible(data: &[u8]) -> bool {
    contains_ignore_case(data, b"createremotethread")
        && contains_ignore_case(data, b"virtualallocex")
        && contains_ignore_case(data, b"writeprocessmemory")
}

/// `keylogger_imports` needs GetAsyncKeyState and SetWindowsHookExA or ...W by name.
fn keylogger_possible(data: &[u8]) -> bool {
    contains_ignore_case(data, b"getasynckeystate")
        && contains_ignore_case(data, b"setwindowshookex")
}

/// Whether `needle` (lower case ASCII letters, at least two) occurs in `hay` in any mix of
/// cases. A letter with bit 5 set is its lower case, and no other byte becomes a lower-case
/// letter that way: one vector compare per 16 bytes on the needle's first and last letters
/// finds the places to check (a first-letter search stopped at every `c` or `s` in text).
fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    use wide::u8x16;
    let (Some(&first), Some(&last)) = (needle.first(), needle.last()) else {
        return true;
    };
    let span = needle.len() - 1;
    let at = |p: usize| {
        hay.get(p..p + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    };
    let lanes = |p: usize| {
        mallard_io::le::bytes_at::<16>(hay, p)
            .map_or(u8x16::splat(0), |w| u8x16::from(w) | u8x16::splat(0x20))
    };
    let (f, l) = (u8x16::splat(first), u8x16::splat(last));
    let mut p = 0;
    // Blocks of 16 starting places whose last letters are all inside `hay`.
    while p + span + 16 <= hay.len() {
        let hit = lanes(p).simd_eq(f) & lanes(p + span).simd_eq(l);
        let mut m = hit.to_bitmask() & 0xffff;
        while m != 0 {
            if at(p + m.trailing_zeros() as usize) {
                return true;
            }
            m &= m - 1;
        }
        p += 16;
    }
    (p..hay.len()).any(at)
}

/// True only when `no_sections_entry_outside` certainly does not match: the file parses as a
/// PE the way yara-x's `pe` module reads one, and the entry point's file offset (the
/// module's `pe.entry_point`) lies inside the raw data of a section. Following the
/// module's RVA-to-offset rule: an RVA below every section maps to itself; otherwise the
/// containing section (virtual address up to the larger of virtual and raw size) with the
/// highest address is used, and its raw data offset is first rounded down to the file
/// alignment (at most 512) and, for section alignments of 4 KiB or more, to 512. Only the
/// plain case is claimed: exactly one section contains the entry point, within its raw
/// size, and its raw data offset needs no rounding.
fn entry_inside_a_section(d: &[u8]) -> bool {
    entry_inside(d).is_some()
}

fn entry_inside(d: &[u8]) -> Option<()> {
    if d.len() < 64 || !d.starts_with(b"MZ") {
        return None;
    }
    let pe = d.get(u32_at(d, 0x3c)? as usize..)?;
    if !pe.starts_with(b"PE\0\0") {
        return None;
    }
    let sections = usize::from(u16_at(pe, 6)?);
    let optional_size = usize::from(u16_at(pe, 20)?);
    let opt = pe.get(24..)?;
    // The module reads the optional header's fixed fields from here whatever the size
    // field says; a file too short for them gets zeros, so leave it to yara-x.
    let fixed = if u16_at(opt, 0)? == 0x20b { 112 } else { 96 };
    if opt.len() < fixed || sections == 0 || sections > 96 {
        return None;
    }
    let entry = u32_at(opt, 16)?;
    let section_alignment = u32_at(opt, 32)?;
    let file_alignment = u32_at(opt, 36)?;
    let table = pe.get(24 + optional_size..24 + optional_size + 40 * sections)?;
    let mut lowest = u32::MAX;
    let mut found = None;
    for s in table.chunks_exact(40) {
        let (virtual_size, va) = (u32_at(s, 8)?, u32_at(s, 12)?);
        let (raw_size, raw_offset) = (u32_at(s, 16)?, u32_at(s, 20)?);
        lowest = lowest.min(va);
        let end = va.saturating_add(virtual_size.max(raw_size));
        if (va..end).contains(&entry) {
            if found.is_some() {
                return None;
            }
            found = Some((va, raw_size, raw_offset));
        }
    }
    let (va, raw_size, raw_offset) = found?;
    if entry < lowest || entry - va >= raw_size {
        return None;
    }
    let fa = file_alignment.min(0x200);
    if (fa != 0 && raw_offset % fa != 0)
        || (section_alignment >= 0x1000 && raw_offset % 0x200 != 0)
        || u64::from(raw_offset) + u64::from(raw_size) > u64::from(u32::MAX)
    {
        return None;
    }
    // The offset is raw_offset + (entry - va), below raw_offset + raw_size.
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_this_reasons_about_are_the_shipped_ones() {
        use sha2::{Digest, Sha256};
        let digest: String = Sha256::digest(crate::BUILTIN.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest, "b5f1fec808b8b4a9ec5247bedf73358b7285d1f4290ed3f9a0f437d1e4393f04",
            "rules/mallard.yar changed: check that may_match_builtin still answers \"yes\" \
             for every file a rule could match, then update this digest"
        );
    }

    #[test]
    fn case_is_ignored_and_partial_words_do_not_count() {
        assert!(contains_ignore_case(
            b"xxGETasyncKEYstate",
            b"getasynckeystate"
        ));
        assert!(contains_ignore_case(
            b"gGetAsyncKeyState",
            b"getasynckeystate"
        ));
        assert!(!contains_ignore_case(
            b"GetAsyncKeyStat",
            b"getasynckeystate"
        ));
        assert!(!contains_ignore_case(b"", b"getasynckeystate"));
    }

    #[test]
    fn the_vector_search_agrees_with_a_window_by_window_one() {
        let needle = b"virtualallocex";
        let naive = |h: &[u8]| {
            h.windows(needle.len())
                .any(|w| w.eq_ignore_ascii_case(needle))
        };
        // Near misses (one letter, a wrong last letter, '@' where a 'v' or 'V' belongs) and
        // the needle in mixed case, at offsets all around the 16-byte blocks and at the end.
        let fillers: [&[u8]; 4] = [
            b"V",
            b"virtualallocey",
            b"\x40irtualallocex",
            b"vIRTUALALLOCEx",
        ];
        let mut rng = mallard_rand::SplitMix64::new(9);
        for case in 0..2000 {
            let mut h = Vec::new();
            let len = case % 70;
            while h.len() < len {
                if rng.below(4) == 0 {
                    h.extend_from_slice(fillers[rng.below(fillers.len() as u64) as usize]);
                } else {
                    h.push(rng.next_u64() as u8);
                }
            }
            assert_eq!(contains_ignore_case(&h, needle), naive(&h), "{h:?}");
        }
        for pad in 0..40 {
            let mut h = vec![b'.'; pad];
            h.extend_from_slice(b"VirtualAllocEx");
            assert!(contains_ignore_case(&h, needle), "{pad}");
            h.pop();
            assert!(!contains_ignore_case(&h, needle), "{pad}");
        }
    }

    /// A minimal PE32 with one section: raw data at `raw_offset`, `raw_size` bytes,
    /// mapped at RVA 0x1000, and the entry point at `entry`.
    fn pe(entry: u32, raw_offset: u32, raw_size: u32) -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        d[0x86..0x88].copy_from_slice(&1u16.to_le_bytes());
        d[0x94..0x96].copy_from_slice(&224u16.to_le_bytes());
        let opt = 0x98;
        d[opt..opt + 2].copy_from_slice(&0x10bu16.to_le_bytes());
        d[opt + 16..opt + 20].copy_from_slice(&entry.to_le_bytes());
        d[opt + 32..opt + 36].copy_from_slice(&0x1000u32.to_le_bytes());
        d[opt + 36..opt + 40].copy_from_slice(&0x200u32.to_le_bytes());
        let s = opt + 224;
        d[s..s + 8].copy_from_slice(b".text\0\0\0");
        d[s + 8..s + 12].copy_from_slice(&0x1000u32.to_le_bytes());
        d[s + 12..s + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        d[s + 16..s + 20].copy_from_slice(&raw_size.to_le_bytes());
        d[s + 20..s + 24].copy_from_slice(&raw_offset.to_le_bytes());
        d
    }

    #[test]
    fn the_entry_point_check_claims_only_the_plain_case() {
        // Hand-computed: RVA 0x1010 in a section at 0x1000 whose raw data is 0x200 bytes at
        // 0x200 is file offset 0x210, inside the section.
        assert!(entry_inside_a_section(&pe(0x1010, 0x200, 0x200)));
        assert!(!may_match_builtin(&pe(0x1010, 0x200, 0x200)));
        // Past the raw data (yara-x has no offset for it), below every section (the RVA is
        // the offset), a raw offset yara-x would round: not claimed.
        assert!(!entry_inside_a_section(&pe(0x1300, 0x200, 0x200)));
        assert!(!entry_inside_a_section(&pe(0x10, 0x200, 0x200)));
        assert!(!entry_inside_a_section(&pe(0x1010, 0x210, 0x200)));
        // Not a PE, or cut short before the optional header's fields.
        assert!(!entry_inside_a_section(&pe(0x1010, 0x200, 0x200)[..0x100]));
        assert!(!entry_inside_a_section(b"MZ"));
        assert!(may_match_builtin(&[0u8; 10]));
    }
}
