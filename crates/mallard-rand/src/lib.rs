//! SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference constants): mallard's one random
//! generator. Folds, shuffles, feature draws and initial weights must reproduce bit for bit
//! across platforms and crate versions, so the generator is written here instead of
//! depending on a crate whose stream may change.
//!
//! Index draws come in the forms earlier code used, kept so that existing folds and models
//! stay the same: [`SplitMix64::below`] (Lemire, unbiased), [`SplitMix64::modulo`] (raw value
//! modulo n) and [`SplitMix64::below_53`] (the 53 high bits modulo n).

/// Small, fast, fixed-stream PRNG. Not for cryptography.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Standard normal (Box-Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64(); // (0, 1]
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Uniform integer in `0..n` without modulo bias (Lemire's method). `n == 0` gives 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// `next_u64() % n` (`n > 0`): the boosted trees' feature draws and the sequence
    /// models' shuffles. The bias is below 2^-40 for any n we use.
    pub fn modulo(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// The 53 high bits modulo n (`n > 0`): the recurrent nets' batch order.
    pub fn below_53(&mut self, n: u64) -> u64 {
        (self.next_u64() >> 11) % n
    }

    /// Fisher-Yates shuffle (from the back), using [`Self::below`].
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_and_index_draws_follow_the_stream() {
        let raw: Vec<u64> = {
            let mut r = SplitMix64::new(42);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = SplitMix64::new(42);
        assert_eq!(r.next_f64(), (raw[0] >> 11) as f64 / (1u64 << 53) as f64);
        assert_eq!(r.modulo(1000), raw[1] % 1000);
        assert_eq!(r.below_53(7), (raw[2] >> 11) % 7);
        let x = r.range(2.0, 4.0);
        assert_eq!(x, 2.0 + 2.0 * ((raw[3] >> 11) as f64 / (1u64 << 53) as f64));
    }

    #[test]
    fn reference_stream() {
        // Values from an independent Python implementation of splitmix64.c.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut r = SplitMix64::new(7);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            counts[r.below(6) as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..100).collect();
        SplitMix64::new(3).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
    }
}
