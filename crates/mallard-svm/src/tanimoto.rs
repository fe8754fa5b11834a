//! The Tanimoto (Jaccard) similarity of sets and its exponentiated kernel
//! `K(a, b) = exp(-gamma (1 - |a & b| / |a | b|))`, positive definite for `gamma > 0` (the
//! exponential of a PSD kernel is PSD). Sets are strictly increasing id slices; a set may also
//! hold elements without an id (names never seen in training), counted by its size only.

use crate::{Kernel, Precomputed, SvmError};

/// `|a & b|` of two strictly increasing slices.
pub fn intersection(a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// Tanimoto similarity from the intersection size and the two set sizes; two empty sets are
/// identical (1).
pub fn similarity(inter: usize, size_a: usize, size_b: usize) -> f64 {
    let union = size_a + size_b - inter.min(size_a + size_b);
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// The exponentiated Tanimoto kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpTanimoto {
    pub gamma: f64,
}

impl ExpTanimoto {
    pub fn new(gamma: f64) -> Result<Self, SvmError> {
        if gamma.is_finite() && gamma > 0.0 {
            Ok(ExpTanimoto { gamma })
        } else {
            Err(SvmError::Param(format!(
                "gamma must be finite and > 0, got {gamma}"
            )))
        }
    }

    /// `K` from the intersection and set sizes.
    pub fn from_counts(&self, inter: usize, size_a: usize, size_b: usize) -> f64 {
        (-self.gamma * (1.0 - similarity(inter, size_a, size_b))).exp()
    }

    /// `K(a, b)` for two id sets with no extra elements.
    pub fn eval(&self, a: &[u32], b: &[u32]) -> f64 {
        self.from_counts(intersection(a, b), a.len(), b.len())
    }

    /// The full kernel matrix of `sets` (stored as f32), rows split over `threads` threads.
    /// Every entry is computed the same way whatever the thread count.
    pub fn matrix(&self, sets: &[Vec<u32>], threads: usize) -> Result<Precomputed<f32>, SvmError> {
        let n = sets.len();
        let len = n.checked_mul(n).ok_or_else(|| {
            SvmError::Param(format!("a {n} x {n} kernel matrix does not fit in memory"))
        })?;
        let mut data = vec![0.0f32; len];
        if n > 0 {
            let threads = threads.clamp(1, n);
            let rows_per = n.div_ceil(threads);
            std::thread::scope(|s| {
                for (c, chunk) in data.chunks_mut(rows_per * n).enumerate() {
                    s.spawn(move || {
                        for (r, row) in chunk.chunks_mut(n).enumerate() {
                            let a = &sets[c * rows_per + r];
                            for (o, b) in row.iter_mut().zip(sets) {
                                *o = self.eval(a, b) as f32;
                            }
                        }
                    });
                }
            });
        }
        Precomputed::new(n, data)
    }
}

/// The exponentiated Tanimoto kernel over id sets, evaluated on demand.
pub struct SetKernel<'a> {
    pub kernel: ExpTanimoto,
    pub sets: &'a [Vec<u32>],
}

impl Kernel for SetKernel<'_> {
    fn len(&self) -> usize {
        self.sets.len()
    }
    fn eval(&self, i: usize, j: usize) -> f64 {
        self.kernel.eval(&self.sets[i], &self.sets[j])
    }
}
