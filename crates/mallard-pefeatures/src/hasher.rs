//! scikit-learn's `FeatureHasher` (alternate_sign=True) over MurmurHash3 x86_32, seed 0.

/// MurmurHash3 x86_32 of `data` with `seed`, as a signed 32-bit value (sklearn's
/// `murmurhash3_32(..., positive=False)`).
pub fn murmur3_32(data: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for b in &mut blocks {
        let mut k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, &t) in tail.iter().enumerate() {
            k |= u32::from(t) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

/// Column and sign FeatureHasher gives a feature name with `n` columns.
#[inline]
pub fn bucket(name: &[u8], n: usize) -> (usize, f64) {
    let h = murmur3_32(name, 0);
    let n64 = n as i64;
    let idx = if h == i32::MIN {
        (2_147_483_647i64 - (n64 - 1)).rem_euclid(n64)
    } else {
        i64::from(h).abs() % n64
    };
    let sign = if h >= 0 { 1.0 } else { -1.0 };
    (idx as usize, sign)
}

/// `FeatureHasher(n, input_type="string")` over one sample: each string adds ±1.
pub fn hash_strings<'s, I: IntoIterator<Item = &'s str>>(items: I, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; n];
    for s in items {
        let (i, sign) = bucket(s.as_bytes(), n);
        if let Some(o) = out.get_mut(i) {
            *o += sign;
        }
    }
    out
}

/// `FeatureHasher(n, input_type="pair")` over one sample: each (name, value) adds ±value.
pub fn hash_pairs<'s, I: IntoIterator<Item = (&'s str, f64)>>(items: I, n: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; n];
    for (s, v) in items {
        if v == 0.0 {
            continue;
        }
        let (i, sign) = bucket(s.as_bytes(), n);
        if let Some(o) = out.get_mut(i) {
            *o += sign * v;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_sklearn() {
        // Values printed by sklearn.utils.murmurhash3_32(x, 0) (scikit-learn 1.1.3).
        assert_eq!(murmur3_32(b"", 0), 0);
        assert_eq!(murmur3_32(b"a", 0), 1_009_084_850);
        assert_eq!(murmur3_32(b"abcd", 0), 1_139_631_978);
        assert_eq!(murmur3_32(b"abcde", 0), -392_455_434);
        assert_eq!(murmur3_32(b"kernel32.dll:CreateFileA", 0), 1_443_906_363);
        assert_eq!(murmur3_32(b".text", 0), -2_097_954_141);
    }

    #[test]
    fn hasher_matches_sklearn() {
        // FeatureHasher(10, input_type='string').transform([['I386']]) -> column 5 = +1.
        let v = hash_strings(["I386"], 10);
        let mut want = vec![0.0; 10];
        want[5] = 1.0;
        assert_eq!(v, want);
        // ".text" hashes negative: column abs(h) % 50 gets -1.
        let v = hash_strings([".text"], 50);
        assert_eq!(v[(2_097_954_141usize) % 50], -1.0);
        let v = hash_pairs([(".text", 512.0), (".text", 0.0)], 50);
        assert_eq!(v[(2_097_954_141usize) % 50], -512.0);
    }
}
