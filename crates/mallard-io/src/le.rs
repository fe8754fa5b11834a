//! Bounds-checked little-endian reads: `None` when the value does not fit inside the data
//! (offsets near `usize::MAX` included), never a panic. The one copy for every reader of
//! binary formats.

/// The `N` bytes at `at`, if all are inside `d`.
#[inline]
pub fn bytes_at<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[inline]
pub fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    bytes_at(d, at).map(u16::from_le_bytes)
}

#[inline]
pub fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    bytes_at(d, at).map(u32::from_le_bytes)
}

#[inline]
pub fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    bytes_at(d, at).map(u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inside_the_data_and_nothing_past_it() {
        let d = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(u16_at(&d, 0), Some(0x0201));
        assert_eq!(u32_at(&d, 1), Some(0x0504_0302));
        assert_eq!(u64_at(&d, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(u16_at(&d, 8), None, "one byte left");
        assert_eq!(u32_at(&d, 6), None);
        assert_eq!(u64_at(&d, 2), None);
        assert_eq!(u32_at(&d, usize::MAX - 1), None, "offset overflow");
        assert_eq!(u16_at(&[], 0), None);
    }
}
