//! Bounds-checked little-endian reads at 64-bit offsets.

#[inline]
pub(crate) fn slice(d: &[u8], off: u64, n: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(usize::try_from(n).ok()?)?;
    d.get(start..end)
}

#[inline]
pub(crate) fn range_ok(d: &[u8], off: u64, n: u64) -> bool {
    off.checked_add(n).is_some_and(|end| end <= d.len() as u64)
}

#[inline]
pub(crate) fn u8_at(d: &[u8], off: u64) -> Option<u8> {
    d.get(usize::try_from(off).ok()?).copied()
}

#[inline]
pub(crate) fn u16_at(d: &[u8], off: u64) -> Option<u16> {
    mallard_io::le::u16_at(d, usize::try_from(off).ok()?)
}

#[inline]
pub(crate) fn u32_at(d: &[u8], off: u64) -> Option<u32> {
    mallard_io::le::u32_at(d, usize::try_from(off).ok()?)
}

#[inline]
pub(crate) fn u64_at(d: &[u8], off: u64) -> Option<u64> {
    mallard_io::le::u64_at(d, usize::try_from(off).ok()?)
}

/// A NUL-terminated string read the way LIEF 0.12's `peek_string_at` does, looking at no more
/// than `max_len + 2` bytes: returns `None` when the offset is past the end (LIEF: empty
/// string), `Some(Err(()))` when the string is longer than `max_len`, else the bytes. As in
/// LIEF, a string that runs to the end of the file without a NUL loses its last byte.
pub(crate) fn c_string(d: &[u8], off: u64, max_len: usize) -> Option<Result<&[u8], ()>> {
    let start = usize::try_from(off).ok()?;
    let rest = d.get(start..)?;
    if rest.is_empty() {
        return None;
    }
    let window = &rest[..rest.len().min(max_len.saturating_add(2))];
    match memchr0(window) {
        Some(n) => {
            if n > max_len {
                Some(Err(()))
            } else {
                Some(Ok(&window[..n]))
            }
        }
        None => {
            if window.len() < rest.len() {
                // Longer than max_len + 2 without a NUL.
                Some(Err(()))
            } else {
                // Runs to EOF: LIEF overwrites the last byte read with NUL.
                let n = window.len().saturating_sub(1);
                if n > max_len {
                    Some(Err(()))
                } else {
                    Some(Ok(&window[..n]))
                }
            }
        }
    }
}

#[inline]
fn memchr0(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == 0)
}

/// Byte histogram with four interleaved tables (fewer store-to-load stalls on runs).
pub fn byte_counts(bytes: &[u8]) -> [u64; 256] {
    let mut t = [[0u32; 256]; 4];
    let mut out = [0u64; 256];
    // Flush the u32 tables before they could overflow.
    for block in bytes.chunks(1 << 30) {
        let mut chunks = block.chunks_exact(16);
        for c in &mut chunks {
            for k in 0..4 {
                t[0][c[4 * k] as usize] += 1;
                t[1][c[4 * k + 1] as usize] += 1;
                t[2][c[4 * k + 2] as usize] += 1;
                t[3][c[4 * k + 3] as usize] += 1;
            }
        }
        for &b in chunks.remainder() {
            t[0][b as usize] += 1;
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o += u64::from(t[0][i]) + u64::from(t[1][i]) + u64::from(t[2][i]) + u64::from(t[3][i]);
        }
        t = [[0u32; 256]; 4];
    }
    out
}
