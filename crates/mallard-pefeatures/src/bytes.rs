//! Whole-file byte statistics in one pass: byte histogram, EMBER's byte-entropy histogram
//! (window 2048, step 1024), printable-string statistics and marker counts.

use crate::ember::entropy_table::NEG_PLOG2P_2048;

/// numpy's pairwise summation of float32 (`np.sum` on a contiguous float32 array).
pub fn np_pairwise_sum_f32(a: &[f32]) -> f32 {
    np_pairwise_sum(a)
}

/// numpy's pairwise summation (`np.sum` on a contiguous array of f32 or f64): sequential
/// below 8 values, 8 accumulators up to 128, halves (at a multiple of 8) above.
pub fn np_pairwise_sum<T>(a: &[T]) -> T
where
    T: Copy + Default + std::ops::Add<Output = T> + std::ops::AddAssign,
{
    let n = a.len();
    if n < 8 {
        let mut res = T::default();
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [T::default(); 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        let mut i = 8;
        while i < full {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &x in &a[full..] {
            res += x;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        np_pairwise_sum(&a[..n2]) + np_pairwise_sum(&a[n2..])
    }
}

/// `counts / counts.sum()` in float32 as numpy does it (NaN for an all-zero histogram).
pub fn np_normalize_f32(counts: &[u64]) -> Vec<f32> {
    let f: Vec<f32> = counts.iter().map(|&c| c as f32).collect();
    let s = np_pairwise_sum_f32(&f);
    f.iter().map(|&x| x / s).collect()
}

/// EMBER's entropy bin of a 16-bin nibble histogram (p = c / 2048 in float32, numpy's
/// float32 log2, numpy's pairwise sum, `int(H * 2 * 2)`, 16 -> 15).
#[inline]
pub fn entropy_bin(c: &[u32; 16]) -> usize {
    let mut terms = [0.0f32; 16];
    let mut k = 0;
    for &x in c.iter() {
        if x > 0 {
            let idx = (x as usize).min(2048) - 1;
            terms[k] = f32::from_bits(NEG_PLOG2P_2048[idx]);
            k += 1;
        }
    }
    let h = np_pairwise_sum_f32(&terms[..k]) * 2.0;
    let hb = (h * 2.0) as usize;
    hb.min(15)
}

/// Printable-string statistics as EMBER's StringExtractor computes them.
#[derive(Clone, Debug, PartialEq)]
pub struct StringStats {
    /// Runs of 5 or more bytes in 0x20..=0x7f.
    pub numstrings: u64,
    /// Total length of those runs.
    pub total_len: u64,
    /// Histogram of the bytes in those runs (index = byte - 0x20).
    pub printabledist: [u64; 96],
    /// `c:\` (case-insensitive `c`).
    pub paths: u64,
    /// `http://` or `https://` (case-insensitive).
    pub urls: u64,
    /// `HKEY_`.
    pub registry: u64,
    /// `MZ`.
    pub mz: u64,
}

impl StringStats {
    /// EMBER's `avlength`.
    pub fn avlength(&self) -> f64 {
        if self.numstrings == 0 {
            0.0
        } else {
            self.total_len as f64 / self.numstrings as f64
        }
    }

    /// EMBER's `entropy`: float32 computation over the printable distribution.
    pub fn entropy(&self) -> f32 {
        let csum: u64 = self.printabledist.iter().sum();
        if self.numstrings == 0 || csum == 0 {
            return 0.0;
        }
        let cs = csum as f32;
        let mut terms = Vec::with_capacity(96);
        for &c in self.printabledist.iter() {
            if c > 0 {
                let p = c as f32 / cs;
                // numpy uses its own (AVX-512) float32 log2; correctly rounded here.
                let l = (f64::from(p)).log2() as f32;
                terms.push(-p * l);
            }
        }
        np_pairwise_sum_f32(&terms)
    }
}

/// Everything EMBER computes from the raw bytes.
#[derive(Clone, Debug)]
pub struct ByteStats {
    pub histogram: [u64; 256],
    /// 16 x 16, row = entropy bin, column = high nibble.
    pub byteentropy: [u64; 256],
    pub strings: StringStats,
}

fn nibbles_from_hist(h: &[u32; 256]) -> [u32; 16] {
    let mut n = [0u32; 16];
    for (i, c) in h.chunks_exact(16).enumerate() {
        n[i] = c.iter().sum();
    }
    n
}

/// Counts of one chunk of at most 65,535 bytes. Four interleaved u16 tables (2 KiB, all in
/// L1): runs of one byte do not serialise on one counter, and the final sum vectorizes.
fn chunk_hist16(chunk: &[u8]) -> [u16; 256] {
    debug_assert!(chunk.len() <= usize::from(u16::MAX));
    let mut t = [[0u16; 256]; 4];
    let mut q = chunk.chunks_exact(4);
    for c in &mut q {
        t[0][usize::from(c[0])] += 1;
        t[1][usize::from(c[1])] += 1;
        t[2][usize::from(c[2])] += 1;
        t[3][usize::from(c[3])] += 1;
    }
    for &b in q.remainder() {
        t[0][usize::from(b)] += 1;
    }
    let mut h = [0u16; 256];
    for (i, o) in h.iter_mut().enumerate() {
        *o = t[0][i] + t[1][i] + t[2][i] + t[3][i];
    }
    h
}

/// Byte counts of `data` of any length, through [`chunk_hist16`] on 65,535-byte parts.
pub fn byte_counts(data: &[u8]) -> [u64; 256] {
    let mut c = [0u64; 256];
    for part in data.chunks(usize::from(u16::MAX)) {
        for (o, &x) in c.iter_mut().zip(chunk_hist16(part).iter()) {
            *o += u64::from(x);
        }
    }
    c
}

fn chunk_hist(chunk: &[u8], h: &mut [u32; 256]) {
    // Two interleaved tables halve store-to-load dependencies on repeated bytes.
    let mut h2 = [0u32; 256];
    let mut pairs = chunk.chunks_exact(2);
    for p in &mut pairs {
        h[p[0] as usize] += 1;
        h2[p[1] as usize] += 1;
    }
    for &b in pairs.remainder() {
        h[b as usize] += 1;
    }
    for (a, b) in h.iter_mut().zip(h2.iter()) {
        *a += *b;
    }
}

/// Compute all byte statistics in one pass over `data`.
pub fn byte_stats(data: &[u8]) -> ByteStats {
    let (histogram, byteentropy) = byte_histograms(data);
    ByteStats {
        histogram,
        byteentropy,
        strings: string_stats(data),
    }
}

/// The byte histogram and EMBER's byte-entropy histogram (both EMBER v2 and EMBER2024).
pub fn byte_histograms(data: &[u8]) -> ([u64; 256], [u64; 256]) {
    let (h, e, _) = byte_histograms_chunked(data, false);
    (h, e)
}

/// Byte counts of 1 KiB chunks (chunk i covers bytes 1024 i ..): what the byte-entropy pass
/// counts anyway, kept so that ranges of the file (sections) are counted from 256 sums per
/// chunk instead of 1024 bytes. Empty for files under 2 KiB.
pub type ChunkCounts = Vec<[u16; 256]>;

/// Counts of the bytes `data[range]`, from the chunk counts where whole chunks lie inside.
pub fn range_counts(
    data: &[u8],
    chunks: &ChunkCounts,
    range: std::ops::Range<usize>,
) -> [u64; 256] {
    let mut c = [0u64; 256];
    let (a, b) = (range.start.min(data.len()), range.end.min(data.len()));
    if b <= a {
        return c;
    }
    let first = a.div_ceil(1024);
    let last = b / 1024; // chunks first..last lie inside
    let direct = |c: &mut [u64; 256], bytes: &[u8]| {
        let mut h = [0u32; 256];
        chunk_hist(bytes, &mut h);
        for (o, &x) in c.iter_mut().zip(h.iter()) {
            *o += u64::from(x);
        }
    };
    if chunks.is_empty() || first >= last || last > chunks.len() {
        direct(&mut c, &data[a..b]);
        return c;
    }
    let mut acc = [0u32; 256];
    for ch in &chunks[first..last] {
        for (o, &x) in acc.iter_mut().zip(ch.iter()) {
            *o += u32::from(x);
        }
    }
    for (o, &x) in c.iter_mut().zip(acc.iter()) {
        *o = u64::from(x);
    }
    direct(&mut c, &data[a..first * 1024]);
    direct(&mut c, &data[last * 1024..b]);
    c
}

/// [`byte_histograms`], also returning the 1 KiB chunk counts when `keep` is set.
pub fn byte_histograms_chunked(data: &[u8], keep: bool) -> ([u64; 256], [u64; 256], ChunkCounts) {
    let mut kept: ChunkCounts = Vec::new();
    let mut histogram = [0u64; 256];
    let mut byteentropy = [0u64; 256];
    const STEP: usize = 1024;
    const WINDOW: usize = 2048;
    if data.len() < WINDOW {
        let mut h = [0u32; 256];
        chunk_hist(data, &mut h);
        let nib = nibbles_from_hist(&h);
        let bin = entropy_bin(&nib);
        for (k, &c) in nib.iter().enumerate() {
            byteentropy[bin * 16 + k] += u64::from(c);
        }
        for (o, &c) in histogram.iter_mut().zip(h.iter()) {
            *o += u64::from(c);
        }
    } else {
        let nwin = (data.len() - WINDOW) / STEP + 1;
        let mut prev: Option<[u32; 16]> = None;
        let mut chunks = data.chunks(STEP);
        // Chunks 0..=nwin take part in windows; the rest only in the histogram.
        if keep {
            kept.reserve(data.len().div_ceil(STEP));
        }
        for (ci, chunk) in (&mut chunks).enumerate() {
            // A chunk holds at most 1024 bytes: every count fits in 16 bits.
            let h = chunk_hist16(chunk);
            if keep {
                kept.push(h);
            }
            for (o, &c) in histogram.iter_mut().zip(h.iter()) {
                *o += u64::from(c);
            }
            if ci <= nwin {
                let mut nib = [0u32; 16];
                for (n, c) in nib.iter_mut().zip(h.chunks_exact(16)) {
                    *n = c.iter().map(|&x| u32::from(x)).sum();
                }
                if let Some(p) = prev {
                    let mut w = [0u32; 16];
                    for k in 0..16 {
                        w[k] = p[k] + nib[k];
                    }
                    let bin = entropy_bin(&w);
                    for (k, &c) in w.iter().enumerate() {
                        byteentropy[bin * 16 + k] += u64::from(c);
                    }
                }
                prev = Some(nib);
            }
        }
    }
    (histogram, byteentropy, kept)
}

/// Bit i set when byte i of `block` (at most 64 bytes) is in 0x20..=0x7f.
#[inline(always)]
fn printable_mask(block: &[u8]) -> u64 {
    if block.len() < 64 {
        let mut m = 0u64;
        for (i, &b) in block.iter().enumerate() {
            m |= u64::from(b.wrapping_sub(0x20) < 0x60) << i;
        }
        return m;
    }
    // As a signed byte, 0x20..=0x7f is exactly "greater than 0x1f": one vector compare and
    // one movemask per 16 bytes. (Written as a plain loop, LLVM built the mask with a dozen
    // shuffles per 16 bytes: the strings pass ran at a third of this speed.)
    let above = wide::i8x16::splat(0x1f);
    let mut m = 0u64;
    for (k, w) in block.chunks_exact(16).enumerate() {
        let v = wide::i8x16::from(lanes(w, 0).map(|b| b as i8));
        m |= u64::from(v.simd_gt(above).to_bitmask() & 0xffff) << (16 * k);
    }
    m
}

/// The 16 bytes of `d` at `at` (zeros when fewer are left: callers never ask for those).
#[inline(always)]
fn lanes(d: &[u8], at: usize) -> [u8; 16] {
    mallard_io::le::bytes_at(d, at).unwrap_or([0; 16])
}

/// EMBER's counts over the whole file (Python `re` matches, which never overlap here: no
/// pattern overlaps itself): `MZ`, `HKEY_`, `c:\` (either case of c) and `http://` or
/// `https://` (any case). One pass: a vector compare per 16 bytes finds where a pattern's
/// first two bytes stand, and only those places are checked.
fn pattern_counts(data: &[u8]) -> (u64, u64, u64, u64) {
    let (mut mz, mut registry, mut paths, mut urls) = (0u64, 0u64, 0u64, 0u64);
    let mut check = |p: usize| {
        let at = data.get(p..).unwrap_or(&[]);
        if at.starts_with(b"MZ") {
            mz += 1;
        } else if at.starts_with(b"HKEY_") {
            registry += 1;
        } else if at.starts_with(b":\\") {
            paths += u64::from(p > 0 && matches!(data.get(p - 1), Some(b'c' | b'C')));
        } else if at.starts_with(b"://") {
            let ends_with = |k: usize, pat: &[u8]| {
                p >= k
                    && data
                        .get(p - k..p)
                        .is_some_and(|s| s.eq_ignore_ascii_case(pat))
            };
            urls += u64::from(ends_with(5, b"https") || ends_with(4, b"http"));
        }
    };
    use wide::u8x16;
    let eq = |v: u8x16, b: u8| v.simd_eq(u8x16::splat(b));
    let mut i = 0;
    // Each block needs the byte after it: blocks end one byte before the data does.
    while i + 17 <= data.len() {
        let a = u8x16::from(lanes(data, i));
        let b = u8x16::from(lanes(data, i + 1));
        let hit = (eq(a, b'M') & eq(b, b'Z'))
            | (eq(a, b'H') & eq(b, b'K'))
            | (eq(a, b':') & (eq(b, b'\\') | eq(b, b'/')));
        let mut m = hit.to_bitmask() & 0xffff;
        while m != 0 {
            check(i + m.trailing_zeros() as usize);
            m &= m - 1;
        }
        i += 16;
    }
    for p in i..data.len() {
        check(p);
    }
    (mz, registry, paths, urls)
}

/// Calls `f(start, end)` for every maximal run of at least 5 bytes in 0x20..=0x7f (EMBER's
/// and EMBER2024's strings, `[\x20-\x7f]{5,}`), in order.
///
/// Shorter runs never reach `f`: a byte belongs to a long run exactly when a window of five
/// printable bytes starting at most 4 bytes before it exists, so the mask of long-run bytes
/// is the printable mask's 5-wide "all set" starts, dilated by 4. Binary code has many short
/// runs and few long ones; only the long ones cost events.
pub fn for_each_printable_run<F: FnMut(usize, usize)>(data: &[u8], mut f: F) {
    let mask = |i: usize| -> u64 {
        let lo = i * 64;
        if lo >= data.len() {
            0
        } else {
            printable_mask(&data[lo..(lo + 64).min(data.len())])
        }
    };
    let nblocks = data.len().div_ceil(64);
    let mut cur = mask(0);
    let mut prev_starts = 0u64; // 5-wide starts of the block before
    let mut prev_bit = 0u64; // 1 when the byte before this block is in a long run
    let mut run_start = 0usize;
    for bi in 0..nblocks {
        let next = mask(bi + 1);
        let w = u128::from(cur) | (u128::from(next) << 64);
        let starts = (w & (w >> 1) & (w >> 2) & (w >> 3) & (w >> 4)) as u64;
        let s = u128::from(prev_starts) | (u128::from(starts) << 64);
        let long = ((s | (s << 1) | (s << 2) | (s << 3) | (s << 4)) >> 64) as u64;
        let base = bi * 64;
        let mut events = long ^ ((long << 1) | prev_bit);
        while events != 0 {
            let i = events.trailing_zeros() as usize;
            events &= events - 1;
            if long & (1u64 << i) != 0 {
                run_start = base + i;
            } else {
                f(run_start, base + i);
            }
        }
        prev_bit = long >> 63;
        prev_starts = starts;
        cur = next;
    }
    if prev_bit == 1 {
        f(run_start, data.len());
    }
}

/// EMBER's string statistics.
pub fn string_stats(data: &[u8]) -> StringStats {
    let mut st = StringStats {
        numstrings: 0,
        total_len: 0,
        printabledist: [0; 96],
        paths: 0,
        urls: 0,
        registry: 0,
        mz: 0,
    };
    // Four interleaved tables for the bytes of qualifying runs.
    let mut dist4 = [[0u32; 128]; 4];
    let mut close = |start: usize, end: usize, st: &mut StringStats| {
        let len = end.saturating_sub(start);
        if len >= 5 {
            st.numstrings += 1;
            st.total_len += len as u64;
            let run = data.get(start..end).unwrap_or(&[]);
            let mut q = run.chunks_exact(4);
            for c in &mut q {
                dist4[0][usize::from(c[0] & 0x7f)] += 1;
                dist4[1][usize::from(c[1] & 0x7f)] += 1;
                dist4[2][usize::from(c[2] & 0x7f)] += 1;
                dist4[3][usize::from(c[3] & 0x7f)] += 1;
            }
            for &b in q.remainder() {
                dist4[0][usize::from(b & 0x7f)] += 1;
            }
        }
    };
    for_each_printable_run(data, |start, end| close(start, end, &mut st));
    let mut dist = [0u64; 96];
    for (k, d) in dist.iter_mut().enumerate() {
        let c = k + 0x20;
        *d = u64::from(dist4[0][c])
            + u64::from(dist4[1][c])
            + u64::from(dist4[2][c])
            + u64::from(dist4[3][c]);
    }
    st.printabledist = dist;
    (st.mz, st.registry, st.paths, st.urls) = pattern_counts(data);
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_sum_matches_numpy_order() {
        // 9 elements: r[0..8] = a[0..8], then a[8] added after the tree.
        let a: Vec<f32> = (0..9).map(|i| 1.0 + i as f32 * 1e-8).collect();
        let mut r = [0f32; 8];
        r.copy_from_slice(&a[..8]);
        let want = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7])) + a[8];
        assert_eq!(np_pairwise_sum_f32(&a), want);
        assert_eq!(np_pairwise_sum_f32(&[1.0, 2.0, 3.0]), 6.0);
    }

    /// Maximal runs of >= 5 printable bytes, found one byte at a time.
    fn runs_naive(data: &[u8]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, &b) in data.iter().chain(std::iter::once(&0u8)).enumerate() {
            match ((0x20..=0x7f).contains(&b) && i < data.len(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    if i - s >= 5 {
                        out.push((s, i));
                    }
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    #[test]
    fn long_runs_equal_a_byte_by_byte_scan() {
        // Densities from binary code to text, lengths around block edges.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..400 {
            let len = [0, 1, 4, 5, 63, 64, 65, 127, 128, 129, 700][case % 11] + case / 11;
            let dense = (case % 7) as u64;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x % 8 < dense {
                        b'a' + (x >> 20) as u8 % 26
                    } else {
                        (x >> 32) as u8
                    }
                })
                .collect();
            let mut got = Vec::new();
            for_each_printable_run(&data, |s, e| got.push((s, e)));
            assert_eq!(got, runs_naive(&data), "case {case}, len {len}");
        }
    }

    #[test]
    fn pattern_counts_equal_one_search_per_pattern() {
        use memchr::memmem;
        let reference = |d: &[u8]| {
            let before =
                |p: usize, k: usize, pat: &[u8]| p >= k && d[p - k..p].eq_ignore_ascii_case(pat);
            (
                memmem::find_iter(d, b"MZ").count() as u64,
                memmem::find_iter(d, b"HKEY_").count() as u64,
                memmem::find_iter(d, b":\\")
                    .filter(|&p| p > 0 && matches!(d[p - 1], b'c' | b'C'))
                    .count() as u64,
                memmem::find_iter(d, b"://")
                    .filter(|&p| before(p, 5, b"https") || before(p, 4, b"http"))
                    .count() as u64,
            )
        };
        let pieces: [&[u8]; 9] = [
            b"MZ",
            b"HKEY_",
            b"HKEY",
            b"c:\\",
            b"C:\\",
            b"hTTp://",
            b"https://",
            b"://",
            b"M",
        ];
        let mut rng = mallard_rand::SplitMix64::new(5);
        for case in 0..300 {
            let len = [0, 1, 2, 15, 16, 17, 31, 33, 64, 200][case % 10] + case / 10;
            let mut d = Vec::with_capacity(len + 8);
            while d.len() < len {
                if rng.below(5) == 0 {
                    d.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
                } else {
                    d.push(rng.next_u64() as u8);
                }
            }
            assert_eq!(pattern_counts(&d), reference(&d), "case {case}: {d:?}");
        }
        // Every pattern ending on the last byte, and straddling a 16-byte block edge.
        for pad in 0..40 {
            for p in pieces {
                let mut d = vec![b'.'; pad];
                d.extend_from_slice(p);
                assert_eq!(pattern_counts(&d), reference(&d), "{pad} {p:?}");
            }
        }
    }

    #[test]
    fn strings_by_hand() {
        let data = b"\x00abcd\x00abcde\x01C:\\x http://a HTTPS://b HKEY_ MZMZ\xff";
        let s = string_stats(data);
        // Runs: "abcd" (4, too short), "abcde" (5), "C:\\x http://a HTTPS://b HKEY_ MZMZ" (34).
        assert_eq!(s.numstrings, 2);
        assert_eq!(s.total_len, 5 + 34);
        assert_eq!(s.paths, 1);
        assert_eq!(s.urls, 2);
        assert_eq!(s.registry, 1);
        assert_eq!(s.mz, 2);
        assert_eq!(s.printabledist[usize::from(b'a') - 0x20], 2);
        assert_eq!(s.printabledist.iter().sum::<u64>(), 39);
        // 0x7f counts as printable for EMBER's regex.
        let s = string_stats(b"\x7f\x7f\x7f\x7f\x7f");
        assert_eq!(s.numstrings, 1);
        // Long runs across the 8-byte fast path.
        let mut v = vec![b'A'; 100];
        v.push(0);
        v.extend_from_slice(&[b'B'; 3]);
        let s = string_stats(&v);
        assert_eq!((s.numstrings, s.total_len), (1, 100));
    }

    /// Straightforward reading of EMBER's regex `[\x20-\x7f]{5,}` (maximal runs).
    fn naive_strings(data: &[u8]) -> (u64, u64, [u64; 96]) {
        let (mut n, mut total, mut dist) = (0u64, 0u64, [0u64; 96]);
        let mut i = 0;
        while i < data.len() {
            if (0x20..=0x7f).contains(&data[i]) {
                let s = i;
                while i < data.len() && (0x20..=0x7f).contains(&data[i]) {
                    i += 1;
                }
                if i - s >= 5 {
                    n += 1;
                    total += (i - s) as u64;
                    for &b in &data[s..i] {
                        dist[usize::from(b) - 0x20] += 1;
                    }
                }
            } else {
                i += 1;
            }
        }
        (n, total, dist)
    }

    #[test]
    fn strings_match_naive_scan() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 5, 63, 64, 65, 127, 128, 129, 1000, 4096, 10_001] {
            for bias in [0u64, 3, 7] {
                let data: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly printable runs of varied lengths, some high bytes and controls.
                        if x % 8 < bias {
                            (x >> 8) as u8
                        } else {
                            0x20 + ((x >> 16) % 0x60) as u8
                        }
                    })
                    .collect();
                let s = string_stats(&data);
                let (n, t, d) = naive_strings(&data);
                assert_eq!((s.numstrings, s.total_len), (n, t), "len {len} bias {bias}");
                assert_eq!(s.printabledist, d, "len {len} bias {bias}");
            }
        }
    }

    #[test]
    fn byteentropy_by_hand() {
        // 4096 zero bytes: windows at 0, 1024, 2048 -> 3 windows of entropy 0, nibble 0.
        let s = byte_stats(&[0u8; 4096]);
        assert_eq!(s.byteentropy[0], 3 * 2048);
        assert_eq!(s.byteentropy.iter().sum::<u64>(), 3 * 2048);
        assert_eq!(s.histogram[0], 4096);
        // 2048 bytes cycling over all 256 values: nibble counts 128 each -> p = 1/16,
        // H = 4 bits -> *2 = 8 -> bin int(16) -> 15.
        let v: Vec<u8> = (0..2048).map(|i| i as u8).collect();
        let s = byte_stats(&v);
        for k in 0..16 {
            assert_eq!(s.byteentropy[15 * 16 + k], 128);
        }
        // Small file: p = c / 2048 even though the block is shorter.
        let s = byte_stats(&[0u8; 10]);
        assert_eq!(s.byteentropy[0], 10);
    }

    #[test]
    fn range_counts_equal_direct_counts_at_every_alignment() {
        let mut x = 12345u64;
        let data: Vec<u8> = (0..10_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 7 == 0 {
                    0
                } else {
                    (x >> 32) as u8
                }
            })
            .collect();
        let (h, _, chunks) = byte_histograms_chunked(&data, true);
        assert_eq!(chunks.len(), 10);
        let direct = |r: std::ops::Range<usize>| {
            let mut c = [0u64; 256];
            for &b in &data[r] {
                c[usize::from(b)] += 1;
            }
            c
        };
        assert_eq!(range_counts(&data, &chunks, 0..data.len()), h);
        for (a, b) in [
            (0, 0),
            (1, 5),
            (0, 1024),
            (1000, 3100),
            (1024, 4096),
            (1023, 9999),
            (512, 10_000),
            (9000, 20_000),
        ] {
            assert_eq!(
                range_counts(&data, &chunks, a..b),
                direct(a.min(10_000)..b.min(10_000)),
                "{a}..{b}"
            );
        }
        // No chunk counts (small files): counted directly.
        assert_eq!(range_counts(&data, &Vec::new(), 5..6000), direct(5..6000));
    }
}
