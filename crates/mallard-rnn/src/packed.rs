//! GEMM against a matrix packed once and reused for every time step.
//!
//! Why: a recurrent step multiplies a few dozen rows by the same recurrent kernel U, and a
//! general GEMM re-packs U (160 KB for the published model) on every call, which costs more
//! than the multiply. Packing once per minibatch into 16-column panels lets an AVX2/FMA
//! micro-kernel (6 rows x 16 columns, accumulators in registers) stream U straight from cache.
//! Other CPUs (and f64) fall back to `matrixmultiply` on a row-major copy.

use crate::real::{gemm, Mat, Real};

/// Columns per panel (two 8-float AVX registers, one 16-float AVX-512 register).
const NR: usize = 16;
/// Rows per micro-kernel call.
const MR: usize = 6;

/// What a product is added to as it is stored into C.
#[derive(Clone, Copy)]
pub(crate) enum Add<'a, T> {
    /// `C = A·B`.
    Nothing,
    /// `C += A·B`.
    C,
    /// `C[r] = A[r]·B + table[idx[r]]` (rows of `ld` values): a gather of each row's input
    /// projection fused into the store, so that it is not copied into C first.
    Rows {
        table: &'a [T],
        idx: &'a [u32],
        ld: usize,
    },
}

/// B [k, n] prepared for repeated `C = A·B (+ C)`.
pub(crate) struct Packed<T> {
    k: usize,
    n: usize,
    /// Row-major copy (fallback path).
    plain: Vec<T>,
    /// f32 panels: panel `j` holds columns `16j..16j+16` as [k][16], zero-padded.
    panels: Vec<f32>,
}

impl<T: Real> Packed<T> {
    pub(crate) fn new(b: Mat<'_, T>, k: usize, n: usize) -> Self {
        let mut plain = Vec::with_capacity(k * n);
        for i in 0..k {
            for j in 0..n {
                plain.push(b.data[i * b.rs + j * b.cs]);
            }
        }
        let panels = if T::packed_kernel() {
            let np = n.div_ceil(NR);
            let mut p = vec![0.0f32; np * k * NR];
            for jp in 0..np {
                for i in 0..k {
                    for jj in 0..NR {
                        let j = jp * NR + jj;
                        if j < n {
                            p[(jp * k + i) * NR + jj] = plain[i * n + j].to_f64() as f32;
                        }
                    }
                }
            }
            p
        } else {
            Vec::new()
        };
        Packed {
            k,
            n,
            plain,
            panels,
        }
    }

    /// `C[m, n] = A[m, k]·B + (C if accumulate)`, A row-major with stride `lda`, C with `ldc`.
    pub(crate) fn matmul(
        &self,
        m: usize,
        a: &[T],
        lda: usize,
        accumulate: bool,
        c: &mut [T],
        ldc: usize,
    ) {
        let add = if accumulate { Add::C } else { Add::Nothing };
        self.matmul_add(m, a, lda, add, c, ldc)
    }

    /// `C[m, n] = A[m, k]·B + add`, A row-major with stride `lda`, C with `ldc`.
    pub(crate) fn matmul_add(
        &self,
        m: usize,
        a: &[T],
        lda: usize,
        add: Add<'_, T>,
        c: &mut [T],
        ldc: usize,
    ) {
        let (k, n) = (self.k, self.n);
        if m == 0 || n == 0 {
            return;
        }
        assert!(
            ldc >= n && c.len() >= (m - 1) * ldc + n,
            "packed: C too small"
        );
        if let Add::Rows { table, idx, ld } = add {
            assert!(idx.len() >= m && ld >= n, "packed: rows to add");
            for &t in &idx[..m] {
                assert!(
                    t as usize * ld + n <= table.len(),
                    "packed: row past the table"
                );
            }
        }
        if !self.panels.is_empty() && k > 0 {
            assert!(
                lda >= k && a.len() >= (m - 1) * lda + k,
                "packed: A too small"
            );
            if T::packed_matmul(m, k, n, a, lda, &self.panels, add, c, ldc) {
                return;
            }
        }
        let beta = match add {
            Add::Nothing => T::ZERO,
            Add::C => T::ONE,
            Add::Rows { table, idx, ld } => {
                for (r, &t) in idx[..m].iter().enumerate() {
                    let src = &table[t as usize * ld..t as usize * ld + n];
                    c[r * ldc..r * ldc + n].copy_from_slice(src);
                }
                T::ONE
            }
        };
        gemm(
            m,
            k,
            n,
            T::ONE,
            Mat {
                data: a,
                rs: lda,
                cs: 1,
            },
            Mat {
                data: &self.plain,
                rs: n,
                cs: 1,
            },
            beta,
            c,
            ldc,
        );
    }
}

/// The vector units the kernels use: the widest the CPU has, capped by the environment
/// variable `MALLARD_SIMD` (`avx512`, `avx2` or `scalar`), read once. The cap tests every
/// path on one machine, and a model trained under `avx2` gets the same bits on any AVX2 CPU
/// (summation order differs between the paths, so the last bits of a model do too).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Portable code (and `matrixmultiply` for the GEMMs).
    Scalar,
    /// 8-float AVX2 + FMA.
    Avx2,
    /// 16-float AVX-512F micro-kernel for the GEMMs, 16-wide activations.
    Avx512,
}

/// The [`Simd`] level in use (see there).
pub fn simd() -> Simd {
    static LEVEL: std::sync::OnceLock<Simd> = std::sync::OnceLock::new();
    *LEVEL.get_or_init(|| {
        let hw = detect();
        match std::env::var("MALLARD_SIMD").ok().as_deref() {
            Some("scalar") => Simd::Scalar,
            Some("avx2") => hw.min(Simd::Avx2),
            _ => hw,
        }
    })
}

fn detect() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if avx2 && std::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if avx2 {
            return Simd::Avx2;
        }
    }
    Simd::Scalar
}

/// Whether the packed micro-kernels run (AVX2/FMA or wider).
pub(crate) fn simd_available() -> bool {
    simd() >= Simd::Avx2
}

/// f32 panel GEMM. Returns false when the CPU lacks AVX2/FMA (caller falls back).
/// Callers have checked: lda >= k, ldc >= n, a and c cover m rows, panels = ceil(n/16)*k*16.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_f32(
    m: usize,
    k: usize,
    n: usize,
    a: &[f32],
    lda: usize,
    panels: &[f32],
    add: Add<'_, f32>,
    c: &mut [f32],
    ldc: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let level = simd();
        if level >= Simd::Avx2 {
            assert_eq!(panels.len(), n.div_ceil(NR) * k * NR);
            let src = Src::of(add);
            // SAFETY: features checked by `simd`; bounds asserted here and by the caller.
            unsafe {
                if level == Simd::Avx512 {
                    avx512::matmul(m, k, n, a, lda, panels, src, c, ldc)
                } else {
                    avx::matmul(m, k, n, a, lda, panels, src, c, ldc)
                }
            };
            return true;
        }
    }
    let _ = (m, k, n, a, lda, panels, add, c, ldc);
    false
}

/// [`Add`] as the micro-kernels read it: where row `r`'s addend starts, at column `j0`.
#[derive(Clone, Copy)]
enum Src {
    Nothing,
    C,
    Rows {
        table: *const f32,
        idx: *const u32,
        ld: usize,
    },
}

impl Src {
    fn of(add: Add<'_, f32>) -> Src {
        match add {
            Add::Nothing => Src::Nothing,
            Add::C => Src::C,
            Add::Rows { table, idx, ld } => Src::Rows {
                table: table.as_ptr(),
                idx: idx.as_ptr(),
                ld,
            },
        }
    }

    /// The same source for the rows from `i` on.
    #[inline(always)]
    unsafe fn at_row(self, i: usize) -> Src {
        match self {
            Src::Rows { table, idx, ld } => Src::Rows {
                table,
                idx: idx.add(i),
                ld,
            },
            other => other,
        }
    }

    /// Row `r`'s addend at column `j0` (`cr` is row r of C at that column), if any.
    #[inline(always)]
    unsafe fn row(self, r: usize, j0: usize, cr: *const f32) -> Option<*const f32> {
        match self {
            Src::Nothing => None,
            Src::C => Some(cr),
            Src::Rows { table, idx, ld } => Some(table.add(*idx.add(r) as usize * ld + j0)),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{Src, MR, NR};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn matmul(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        panels: &[f32],
        src: Src,
        c: &mut [f32],
        ldc: usize,
    ) {
        let np = n.div_ceil(NR);
        // Panel outer, rows inner: one panel (k x 16) stays in L1 while all rows pass over it.
        for jp in 0..np {
            let bp = panels.as_ptr().add(jp * k * NR);
            let j0 = jp * NR;
            let ncols = (n - j0).min(NR);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let ap = a.as_ptr().add(i * lda);
                let cp = c.as_mut_ptr().add(i * ldc + j0);
                // Few rows: split k over S accumulator sets so at least 8 independent FMA chains
                // hide the FMA latency (the long-sequence tail runs with 1-2 live rows).
                match rows {
                    6 => tile::<6, 1>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                    5 => tile::<5, 1>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                    4 => tile::<4, 1>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                    3 => tile::<3, 2>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                    2 => tile::<2, 2>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                    _ => tile::<1, 4>(k, ap, lda, bp, cp, ldc, ncols, src.at_row(i), j0),
                }
                i += rows;
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const S: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        ncols: usize,
        src: Src,
        j0: usize,
    ) {
        let mut acc0 = [[_mm256_setzero_ps(); R]; S];
        let mut acc1 = [[_mm256_setzero_ps(); R]; S];
        let kmain = k - k % S;
        let mut p = 0;
        while p < kmain {
            for s in 0..S {
                let q = p + s;
                let b0 = _mm256_loadu_ps(b.add(q * NR));
                let b1 = _mm256_loadu_ps(b.add(q * NR + 8));
                for r in 0..R {
                    let av = _mm256_broadcast_ss(&*a.add(r * lda + q));
                    acc0[s][r] = _mm256_fmadd_ps(av, b0, acc0[s][r]);
                    acc1[s][r] = _mm256_fmadd_ps(av, b1, acc1[s][r]);
                }
            }
            p += S;
        }
        for q in kmain..k {
            let b0 = _mm256_loadu_ps(b.add(q * NR));
            let b1 = _mm256_loadu_ps(b.add(q * NR + 8));
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*a.add(r * lda + q));
                acc0[0][r] = _mm256_fmadd_ps(av, b0, acc0[0][r]);
                acc1[0][r] = _mm256_fmadd_ps(av, b1, acc1[0][r]);
            }
        }
        for s in 1..S {
            for r in 0..R {
                acc0[0][r] = _mm256_add_ps(acc0[0][r], acc0[s][r]);
                acc1[0][r] = _mm256_add_ps(acc1[0][r], acc1[s][r]);
            }
        }
        let (acc0, acc1) = (&mut acc0[0], &mut acc1[0]);
        for r in 0..R {
            let cr = c.add(r * ldc);
            let add = src.row(r, j0, cr);
            if ncols == NR {
                if let Some(s) = add {
                    acc0[r] = _mm256_add_ps(acc0[r], _mm256_loadu_ps(s));
                    acc1[r] = _mm256_add_ps(acc1[r], _mm256_loadu_ps(s.add(8)));
                }
                _mm256_storeu_ps(cr, acc0[r]);
                _mm256_storeu_ps(cr.add(8), acc1[r]);
            } else {
                let mut tmp = [0.0f32; NR];
                _mm256_storeu_ps(tmp.as_mut_ptr(), acc0[r]);
                _mm256_storeu_ps(tmp.as_mut_ptr().add(8), acc1[r]);
                for (j, &t) in tmp.iter().enumerate().take(ncols) {
                    let dst = cr.add(j);
                    *dst = match add {
                        Some(s) => *s.add(j) + t,
                        None => t,
                    };
                }
            }
        }
    }
}

/// The same panels with one 16-float register per row: half the FMAs of the AVX2 kernel,
/// and 32 registers, so up to 8 rows (x 1-8 accumulator sets) stay in registers.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Src, NR};
    use std::arch::x86_64::*;

    /// Rows per micro-kernel call.
    const MR: usize = 8;

    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn matmul(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        panels: &[f32],
        src: Src,
        c: &mut [f32],
        ldc: usize,
    ) {
        let np = n.div_ceil(NR);
        // Columns of panel jp that exist in C: all 16 but in the last panel.
        let mask_of = |jp: usize| -> __mmask16 {
            let ncols = (n - jp * NR).min(NR);
            if ncols == NR {
                0xffff
            } else {
                (1u16 << ncols) - 1
            }
        };
        let mut jp = 0;
        // Two panels at a time: each broadcast of A feeds two FMAs, so the loads no longer
        // outnumber the FMAs. Every element sums in the order of the one-panel tile.
        while jp + 1 < np {
            let b0 = panels.as_ptr().add(jp * k * NR);
            let b1 = panels.as_ptr().add((jp + 1) * k * NR);
            let mask = mask_of(jp + 1);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let ap = a.as_ptr().add(i * lda);
                let cp = c.as_mut_ptr().add(i * ldc + jp * NR);
                match rows {
                    8 => tile2::<8, 1>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    7 => tile2::<7, 2>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    6 => tile2::<6, 2>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    5 => tile2::<5, 2>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    4 => tile2::<4, 2>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    3 => tile2::<3, 3>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    2 => tile2::<2, 4>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                    _ => tile2::<1, 8>(k, ap, lda, [b0, b1], cp, ldc, mask, src.at_row(i), jp * NR),
                }
                i += rows;
            }
            jp += 2;
        }
        if jp < np {
            let bp = panels.as_ptr().add(jp * k * NR);
            let j0 = jp * NR;
            let mask = mask_of(jp);
            let mut i = 0;
            while i < m {
                let rows = (m - i).min(MR);
                let ap = a.as_ptr().add(i * lda);
                let cp = c.as_mut_ptr().add(i * ldc + j0);
                // At least 8 independent FMA chains hide the FMA latency on two ports.
                match rows {
                    8 => tile::<8, 1>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    7 => tile::<7, 2>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    6 => tile::<6, 2>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    5 => tile::<5, 2>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    4 => tile::<4, 2>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    3 => tile::<3, 3>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    2 => tile::<2, 4>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                    _ => tile::<1, 8>(k, ap, lda, bp, cp, ldc, mask, src.at_row(i), j0),
                }
                i += rows;
            }
        }
    }

    /// [`tile`] over two adjacent panels (`b[0]` full, `b[1]` masked by `mask`), each
    /// element's chains and their sum in the same order as there.
    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile2<const R: usize, const S: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: [*const f32; 2],
        c: *mut f32,
        ldc: usize,
        mask: __mmask16,
        src: Src,
        j0: usize,
    ) {
        let mut acc = [[[_mm512_setzero_ps(); 2]; R]; S];
        let kmain = k - k % S;
        let mut p = 0;
        while p < kmain {
            for (s, acc) in acc.iter_mut().enumerate() {
                let q = p + s;
                let b0 = _mm512_loadu_ps(b[0].add(q * NR));
                let b1 = _mm512_loadu_ps(b[1].add(q * NR));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * lda + q));
                    acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
                }
            }
            p += S;
        }
        for q in kmain..k {
            let b0 = _mm512_loadu_ps(b[0].add(q * NR));
            let b1 = _mm512_loadu_ps(b[1].add(q * NR));
            for (r, acc) in acc[0].iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * lda + q));
                acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
            }
        }
        let mut sum = acc[0];
        for more in &acc[1..] {
            for (t, v) in sum.iter_mut().zip(more) {
                t[0] = _mm512_add_ps(t[0], v[0]);
                t[1] = _mm512_add_ps(t[1], v[1]);
            }
        }
        for (r, v) in sum.iter().enumerate() {
            let cr = c.add(r * ldc);
            let (v0, v1) = if let Some(s) = src.row(r, j0, cr) {
                (
                    _mm512_add_ps(v[0], _mm512_loadu_ps(s)),
                    _mm512_add_ps(v[1], _mm512_maskz_loadu_ps(mask, s.add(NR))),
                )
            } else {
                (v[0], v[1])
            };
            _mm512_storeu_ps(cr, v0);
            _mm512_mask_storeu_ps(cr.add(NR), mask, v1);
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile<const R: usize, const S: usize>(
        k: usize,
        a: *const f32,
        lda: usize,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        mask: __mmask16,
        src: Src,
        j0: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); R]; S];
        let kmain = k - k % S;
        let mut p = 0;
        while p < kmain {
            for (s, acc) in acc.iter_mut().enumerate() {
                let q = p + s;
                let bv = _mm512_loadu_ps(b.add(q * NR));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_ps(*a.add(r * lda + q));
                    *acc = _mm512_fmadd_ps(av, bv, *acc);
                }
            }
            p += S;
        }
        for q in kmain..k {
            let bv = _mm512_loadu_ps(b.add(q * NR));
            for (r, acc) in acc[0].iter_mut().enumerate() {
                let av = _mm512_set1_ps(*a.add(r * lda + q));
                *acc = _mm512_fmadd_ps(av, bv, *acc);
            }
        }
        let mut sum = acc[0];
        for more in &acc[1..] {
            for (t, &v) in sum.iter_mut().zip(more) {
                *t = _mm512_add_ps(*t, v);
            }
        }
        for (r, &v) in sum.iter().enumerate() {
            let cr = c.add(r * ldc);
            // Masked: the columns past C's edge are neither read nor written.
            let v = if let Some(s) = src.row(r, j0, cr) {
                _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, s))
            } else {
                v
            };
            _mm512_mask_storeu_ps(cr, mask, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::real::{rm, tr};

    fn src_of(accumulate: bool) -> Src {
        Src::of(if accumulate { Add::C } else { Add::Nothing })
    }

    const T_LEVELS: [Simd; 2] = [Simd::Avx2, Simd::Avx512];

    /// Every row-count remainder, odd k, and n not a multiple of 16, against a naive f64 loop
    /// (the kernel `simd()` picks), and every kernel the CPU has against that one.
    /// The AVX-512 kernel's two-panel tile gives each element the bits the one-panel tile
    /// gives it: every panel computed on its own against the same panel in a full call.
    /// `.ci/run` runs it where the CPU has AVX-512F and says "skipped" elsewhere.
    #[test]
    #[cfg(target_arch = "x86_64")]
    #[ignore = "needs a CPU with AVX-512F"]
    fn two_panel_tiles_give_the_one_panel_bits() {
        assert!(detect() >= Simd::Avx512, "this CPU has no AVX-512F");
        let mut rng = crate::rng::SplitMix64::new(11);
        for &(m, k, n) in &[(64, 100, 400), (13, 33, 40), (7, 17, 48), (9, 5, 31)] {
            let b: Vec<f32> = (0..k * n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let a: Vec<f32> = (0..m * k).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let p = Packed::new(rm(&b, n), k, n);
            let c0: Vec<f32> = (0..m * n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            for accumulate in [false, true] {
                let mut full = c0.clone();
                // SAFETY: `detect` says the CPU has AVX-512F; sizes as the caller checks them.
                unsafe {
                    avx512::matmul(m, k, n, &a, k, &p.panels, src_of(accumulate), &mut full, n)
                };
                for jp in 0..n.div_ceil(NR) {
                    let (j0, w) = (jp * NR, (n - jp * NR).min(NR));
                    let mut one: Vec<f32> = (0..m)
                        .flat_map(|i| c0[i * n + j0..i * n + j0 + w].to_vec())
                        .collect();
                    let panel = &p.panels[jp * k * NR..(jp + 1) * k * NR];
                    // SAFETY: as above; one panel of w columns.
                    unsafe {
                        avx512::matmul(m, k, w, &a, k, panel, src_of(accumulate), &mut one, w)
                    };
                    for i in 0..m {
                        for j in 0..w {
                            assert_eq!(
                                full[i * n + j0 + j].to_bits(),
                                one[i * w + j].to_bits(),
                                "m{m} k{k} n{n} ({i},{})",
                                j0 + j
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn packed_matmul_matches_naive() {
        let mut rng = crate::rng::SplitMix64::new(3);
        for &(m, k, n) in &[
            (1, 7, 5),
            (13, 33, 40),
            (8, 9, 16),
            (23, 17, 33),
            (6, 100, 400),
            (31, 400, 100),
            (2, 3, 17),
        ] {
            let b: Vec<f32> = (0..k * n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let a: Vec<f32> = (0..m * (k + 3))
                .map(|_| rng.range(-1.0, 1.0) as f32)
                .collect();
            for transposed in [false, true] {
                // Transposed case: b holds B^T [n, k] row-major.
                let p = if transposed {
                    Packed::new(tr(&b, k), k, n)
                } else {
                    Packed::new(rm(&b, n), k, n)
                };
                let c0: Vec<f32> = (0..m * (n + 1))
                    .map(|_| rng.range(-1.0, 1.0) as f32)
                    .collect();
                for accumulate in [false, true] {
                    let mut c = c0.clone();
                    p.matmul(m, &a, k + 3, accumulate, &mut c, n + 1);
                    // Every kernel this CPU can run, not only the one `simd()` picks.
                    #[cfg(target_arch = "x86_64")]
                    // (Panels exist unless `MALLARD_SIMD=scalar`.)
                    if !p.panels.is_empty() {
                        let mut c2 = c0.clone();
                        for &l in T_LEVELS.iter().filter(|&&l| l <= detect()) {
                            assert_eq!(p.panels.len(), n.div_ceil(NR) * k * NR);
                            c2.copy_from_slice(&c0);
                            // SAFETY: `detect` says the CPU has the level's features.
                            unsafe {
                                match l {
                                    Simd::Avx512 => avx512::matmul(
                                        m,
                                        k,
                                        n,
                                        &a,
                                        k + 3,
                                        &p.panels,
                                        src_of(accumulate),
                                        &mut c2,
                                        n + 1,
                                    ),
                                    _ => avx::matmul(
                                        m,
                                        k,
                                        n,
                                        &a,
                                        k + 3,
                                        &p.panels,
                                        src_of(accumulate),
                                        &mut c2,
                                        n + 1,
                                    ),
                                }
                            }
                            for (x, y) in c2.iter().zip(&c) {
                                assert!((x - y).abs() < 1e-4, "{l:?} m{m} k{k} n{n}: {x} vs {y}");
                            }
                        }
                    }
                    for i in 0..m {
                        for j in 0..n {
                            let bij = |q: usize| if transposed { b[j * k + q] } else { b[q * n + j] } as f64;
                            let mut want: f64 =
                                (0..k).map(|q| a[i * (k + 3) + q] as f64 * bij(q)).sum();
                            if accumulate {
                                want += c0[i * (n + 1) + j] as f64;
                            }
                            let got = c[i * (n + 1) + j] as f64;
                            assert!(
                                (got - want).abs() < 1e-4,
                                "m{m} k{k} n{n} ({i},{j}): {got} vs {want}"
                            );
                        }
                        // The padding column must be untouched.
                        assert_eq!(c[i * (n + 1) + n], c0[i * (n + 1) + n]);
                    }
                }
            }
        }
    }

    #[test]
    fn rows_added_at_the_store_give_the_bits_of_copy_then_accumulate() {
        // The fused gather must be the old copy-then-accumulate to the bit, on every path
        // (`MALLARD_SIMD` runs this under each in CI); repeated and out-of-order rows.
        let mut rng = crate::rng::SplitMix64::new(5);
        for &(m, k, n) in &[(64, 100, 400), (13, 33, 40), (3, 7, 21), (1, 5, 16)] {
            let b: Vec<f32> = (0..k * n).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let a: Vec<f32> = (0..m * k).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let ld = n + 2;
            let table: Vec<f32> = (0..9 * ld).map(|_| rng.range(-1.0, 1.0) as f32).collect();
            let idx: Vec<u32> = (0..m).map(|_| rng.below(9) as u32).collect();
            let p = Packed::new(rm(&b, n), k, n);
            let mut want = vec![0.0f32; m * n];
            for (r, &t) in idx.iter().enumerate() {
                let t = t as usize;
                want[r * n..(r + 1) * n].copy_from_slice(&table[t * ld..t * ld + n]);
            }
            p.matmul(m, &a, k, true, &mut want, n);
            let mut got = vec![f32::NAN; m * n];
            let rows = Add::Rows {
                table: &table,
                idx: &idx,
                ld,
            };
            p.matmul_add(m, &a, k, rows, &mut got, n);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "m{m} k{k} n{n}");
        }
    }
}
