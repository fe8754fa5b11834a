//! Vectorisable f32 sigmoid and tanh.
//!
//! Why: the LSTM applies ~5 transcendental functions per hidden unit per token; libm's scalar
//! `expf`/`tanhf` would cost about as much as the GEMMs. These branch-free versions (Cephes-style
//! polynomials, max error a few ulp) compile to 8-wide AVX2 code when the CPU has it, and
//! are written with AVX-512 intrinsics for the widest path.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
const MAGIC: f32 = 12_582_912.0;

/// e^x for x clamped to [-87, 88] (beyond that the callers saturate anyway).
#[inline(always)]
fn exp_approx(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let ni = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_2e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((ni + 127) as u32) << 23)
}

#[inline(always)]
fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp_approx(-x))
}

#[inline(always)]
fn tanh1(x: f32) -> f32 {
    let ax = x.abs();
    // Small |x|: odd polynomial (no cancellation); otherwise (1 - e^-2|x|) / (1 + e^-2|x|).
    let z = x * x;
    let small = ((((-5.704_988_7e-3 * z + 2.063_909e-2) * z - 5.373_971_6e-2) * z + 0.133_314_42)
        * z
        - 0.333_332_8)
        * z
        * x
        + x;
    let e = exp_approx(-2.0 * ax);
    let large = ((1.0 - e) / (1.0 + e)).copysign(x);
    if ax < 0.625 {
        small
    } else {
        large
    }
}

#[inline(always)]
fn sigmoid_generic(x: &mut [f32]) {
    for v in x {
        *v = sigmoid1(*v);
    }
}

#[inline(always)]
fn tanh_generic(x: &mut [f32]) {
    for v in x {
        *v = tanh1(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sigmoid_avx2(x: &mut [f32]) {
    sigmoid_generic(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tanh_avx2(x: &mut [f32]) {
    tanh_generic(x)
}

/// The AVX-512 activations, written with intrinsics: the same polynomials, but with fused
/// multiply-adds, `scalef` for the power of two, a 14-bit reciprocal refined by one Newton
/// step instead of a division (a third of an LSTM's inference time went to the divisions and
/// the scalar tail), and masked loads and stores for a slice's last partial vector.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{LN2_HI, LN2_LO, LOG2E};
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn exp(x: __m512) -> __m512 {
        let x = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(-87.0)),
            _mm512_set1_ps(88.0),
        );
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm512_mul_ps(x, _mm512_set1_ps(LOG2E)),
        );
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
        let mut p = _mm512_set1_ps(1.987_569_2e-4);
        for c in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let e = _mm512_add_ps(
            _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
            _mm512_set1_ps(1.0),
        );
        _mm512_scalef_ps(e, n)
    }

    /// 1 / d for d >= 1 (the only use): 14-bit estimate, one Newton step.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn recip(d: __m512) -> __m512 {
        let y = _mm512_rcp14_ps(d);
        let err = _mm512_fnmadd_ps(d, y, _mm512_set1_ps(1.0));
        _mm512_fmadd_ps(y, err, y)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn sigmoid(x: __m512) -> __m512 {
        let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
        recip(_mm512_add_ps(_mm512_set1_ps(1.0), e))
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tanh(x: __m512) -> __m512 {
        let sign = _mm512_set1_epi32(i32::MIN);
        let xi = _mm512_castps_si512(x);
        let ax = _mm512_castsi512_ps(_mm512_andnot_si512(sign, xi));
        let z = _mm512_mul_ps(x, x);
        let mut q = _mm512_set1_ps(-5.704_988_7e-3);
        for c in [2.063_909e-2, -5.373_971_6e-2, 0.133_314_42, -0.333_332_8] {
            q = _mm512_fmadd_ps(q, z, _mm512_set1_ps(c));
        }
        let small = _mm512_fmadd_ps(_mm512_mul_ps(q, z), x, x);
        let e = exp(_mm512_mul_ps(_mm512_set1_ps(-2.0), ax));
        let one = _mm512_set1_ps(1.0);
        let large = _mm512_mul_ps(_mm512_sub_ps(one, e), recip(_mm512_add_ps(one, e)));
        let large = _mm512_castsi512_ps(_mm512_or_si512(
            _mm512_castps_si512(large),
            _mm512_and_si512(xi, sign),
        ));
        let is_small = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(ax, _mm512_set1_ps(0.625));
        _mm512_mask_blend_ps(is_small, large, small)
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn one<const TANH: bool>(v: __m512) -> __m512 {
        if TANH {
            tanh(v)
        } else {
            sigmoid(v)
        }
    }

    /// tanh (`TANH`) or the sigmoid over `x`, in place. (A const flag, not a closure: a
    /// closure does not carry the target feature, so each call would go through memory.)
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn map<const TANH: bool>(x: &mut [f32]) {
        let mut chunks = x.chunks_exact_mut(16);
        for c in &mut chunks {
            let p = c.as_mut_ptr();
            _mm512_storeu_ps(p, one::<TANH>(_mm512_loadu_ps(p)));
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let m: __mmask16 = (1u16 << rest.len()) - 1;
            let p = rest.as_mut_ptr();
            _mm512_mask_storeu_ps(p, m, one::<TANH>(_mm512_maskz_loadu_ps(m, p)));
        }
    }

    /// Lanes of the chunk at `j` of a row of `hd`: all 16, or the row's last few.
    #[inline(always)]
    fn lanes(hd: usize, j: usize) -> __mmask16 {
        let w = (hd - j).min(16);
        if w == 16 {
            0xffff
        } else {
            (1u16 << w) - 1
        }
    }

    /// One LSTM row in one pass (see `kernel::lstm_cell`, whose bits it gives: the same
    /// activations lane by lane, the same products and sums without fused multiply-adds).
    /// Callers have checked: a has 4·hd values, the others hd.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lstm_cell(
        hd: usize,
        a: *mut f32,
        c: *mut f32,
        h: *mut f32,
        cp: *mut f32,
        tc: *mut f32,
    ) {
        let mut j = 0;
        while j < hd {
            let m = lanes(hd, j);
            let ld = |p: *mut f32| _mm512_maskz_loadu_ps(m, p.add(j));
            let i = sigmoid(ld(a));
            let f = sigmoid(ld(a.add(hd)));
            let g = tanh(ld(a.add(2 * hd)));
            let o = sigmoid(ld(a.add(3 * hd)));
            _mm512_mask_storeu_ps(a.add(j), m, i);
            _mm512_mask_storeu_ps(a.add(hd + j), m, f);
            _mm512_mask_storeu_ps(a.add(2 * hd + j), m, g);
            _mm512_mask_storeu_ps(a.add(3 * hd + j), m, o);
            let cprev = ld(c);
            _mm512_mask_storeu_ps(cp.add(j), m, cprev);
            let cn = _mm512_add_ps(_mm512_mul_ps(f, cprev), _mm512_mul_ps(i, g));
            _mm512_mask_storeu_ps(c.add(j), m, cn);
            let t = tanh(cn);
            _mm512_mask_storeu_ps(tc.add(j), m, t);
            _mm512_mask_storeu_ps(h.add(j), m, _mm512_mul_ps(o, t));
            j += 16;
        }
    }

    /// One LSTM row's backward step (see `kernel::lstm_cell_back`, whose bits it gives).
    /// Callers have checked: acts and da have 4·hd values, the others hd.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn lstm_cell_back(
        hd: usize,
        acts: *const f32,
        cp: *const f32,
        tc: *const f32,
        dh: *const f32,
        dc: *mut f32,
        da: *mut f32,
    ) {
        let one = _mm512_set1_ps(1.0);
        let mul = |x, y| _mm512_mul_ps(x, y);
        let mut j = 0;
        while j < hd {
            let m = lanes(hd, j);
            let ld = |p: *const f32| _mm512_maskz_loadu_ps(m, p.add(j));
            let i = ld(acts);
            let f = ld(acts.add(hd));
            let g = ld(acts.add(2 * hd));
            let o = ld(acts.add(3 * hd));
            let t = ld(tc);
            let dhv = ld(dh);
            let dcv = _mm512_add_ps(ld(dc), mul(mul(dhv, o), _mm512_sub_ps(one, mul(t, t))));
            let st = |k: usize, v| _mm512_mask_storeu_ps(da.add(k * hd + j), m, v);
            st(0, mul(mul(mul(dcv, g), i), _mm512_sub_ps(one, i)));
            st(1, mul(mul(mul(dcv, ld(cp)), f), _mm512_sub_ps(one, f)));
            st(2, mul(mul(dcv, i), _mm512_sub_ps(one, mul(g, g))));
            st(3, mul(mul(mul(dhv, t), o), _mm512_sub_ps(one, o)));
            _mm512_mask_storeu_ps(dc.add(j), m, mul(dcv, f));
            j += 16;
        }
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn sigmoid_slice(x: &mut [f32]) {
        map::<false>(x)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tanh_slice(x: &mut [f32]) {
        map::<true>(x)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn sigmoid_avx512(x: &mut [f32]) {
    avx512::sigmoid_slice(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tanh_avx512(x: &mut [f32]) {
    avx512::tanh_slice(x)
}

/// One LSTM row with AVX-512 (see `kernel::lstm_cell`); false where that is not the path.
pub(crate) fn lstm_cell_f32(
    a: &mut [f32],
    c: &mut [f32],
    h: &mut [f32],
    cp: &mut [f32],
    tc: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd() == crate::packed::Simd::Avx512 {
        let hd = c.len();
        assert!(a.len() == 4 * hd && h.len() == hd && cp.len() == hd && tc.len() == hd);
        // SAFETY: the CPU has AVX-512F; every pointer covers the lengths checked above.
        unsafe {
            avx512::lstm_cell(
                hd,
                a.as_mut_ptr(),
                c.as_mut_ptr(),
                h.as_mut_ptr(),
                cp.as_mut_ptr(),
                tc.as_mut_ptr(),
            )
        };
        return true;
    }
    let _ = (a, c, h, cp, tc);
    false
}

/// One LSTM row's backward step with AVX-512 (see `kernel::lstm_cell_back`); false where
/// that is not the path.
pub(crate) fn lstm_cell_back_f32(
    acts: &[f32],
    cp: &[f32],
    tc: &[f32],
    dh: &[f32],
    dc: &mut [f32],
    da: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd() == crate::packed::Simd::Avx512 {
        let hd = dh.len();
        assert!(acts.len() == 4 * hd && da.len() == 4 * hd);
        assert!(cp.len() == hd && tc.len() == hd && dc.len() == hd);
        // SAFETY: the CPU has AVX-512F; every pointer covers the lengths checked above.
        unsafe {
            avx512::lstm_cell_back(
                hd,
                acts.as_ptr(),
                cp.as_ptr(),
                tc.as_ptr(),
                dh.as_ptr(),
                dc.as_mut_ptr(),
                da.as_mut_ptr(),
            )
        };
        return true;
    }
    let _ = (acts, cp, tc, dh, dc, da);
    false
}

pub(crate) fn sigmoid_slice_f32(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd() == crate::packed::Simd::Avx512 {
        // SAFETY: the CPU supports the enabled features.
        unsafe { sigmoid_avx512(x) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd_available() {
        // SAFETY: the CPU supports the enabled features.
        unsafe { sigmoid_avx2(x) };
        return;
    }
    sigmoid_generic(x)
}

pub(crate) fn tanh_slice_f32(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd() == crate::packed::Simd::Avx512 {
        // SAFETY: the CPU supports the enabled features.
        unsafe { tanh_avx512(x) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if crate::packed::simd_available() {
        // SAFETY: the CPU supports the enabled features.
        unsafe { tanh_avx2(x) };
        return;
    }
    tanh_generic(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_match_libm() {
        let xs: Vec<f32> = (-40_000..=40_000)
            .map(|i| i as f32 * 5e-4)
            .chain([-200.0, 200.0, 1e-30, -1e-7])
            .collect();
        // Each path against f64 libm within the same bounds.
        let check = |s: &[f32], t: &[f32], path: &str| {
            for (i, &x) in xs.iter().enumerate() {
                let ws = 1.0 / (1.0 + (-(x as f64)).exp());
                let wt = (x as f64).tanh();
                assert!(
                    (s[i] as f64 - ws).abs() <= 2e-7 * ws.max(1e-30) + 1e-30,
                    "{path}: sigmoid({x}) = {} vs {ws}",
                    s[i]
                );
                assert!(
                    (t[i] as f64 - wt).abs() <= 3e-7 * wt.abs() + 1e-37,
                    "{path}: tanh({x}) = {} vs {wt}",
                    t[i]
                );
            }
        };
        let (mut s, mut t) = (xs.clone(), xs.clone());
        sigmoid_slice_f32(&mut s);
        tanh_slice_f32(&mut t);
        check(&s, &t, "dispatched");
        // The portable code too, whichever path `simd()` chose above (CI runs this test
        // again under MALLARD_SIMD=avx2 and =scalar). The AVX-512 path rounds differently
        // (fused multiply-adds, a refined reciprocal), within the same bounds.
        let (mut gs, mut gt) = (xs.clone(), xs.clone());
        sigmoid_generic(&mut gs);
        tanh_generic(&mut gt);
        check(&gs, &gt, "portable");
    }

    /// The one-pass AVX-512 cell against the activations over slices plus the scalar
    /// products, forward and backward, bit for bit; rows of whole and partial vectors.
    /// `.ci/run` runs it where the CPU has AVX-512F and says "skipped" elsewhere.
    #[test]
    #[ignore = "needs a CPU with AVX-512F"]
    fn fused_lstm_rows_give_the_bits_of_the_slice_path() {
        assert_eq!(
            crate::packed::simd(),
            crate::packed::Simd::Avx512,
            "AVX-512F absent or capped by MALLARD_SIMD"
        );
        let mut rng = crate::rng::SplitMix64::new(21);
        let mut r = |s: f64| (rng.range(-s, s)) as f32;
        for hd in [100, 37, 16, 5] {
            let a0: Vec<f32> = (0..4 * hd).map(|_| r(6.0)).collect();
            let c0: Vec<f32> = (0..hd).map(|_| r(3.0)).collect();
            let (mut a, mut c) = (a0.clone(), c0.clone());
            let (mut h, mut cp, mut tc) = (vec![0.0; hd], vec![0.0; hd], vec![0.0; hd]);
            assert!(lstm_cell_f32(&mut a, &mut c, &mut h, &mut cp, &mut tc));
            let mut wa = a0.clone();
            sigmoid_slice_f32(&mut wa[..2 * hd]);
            tanh_slice_f32(&mut wa[2 * hd..3 * hd]);
            sigmoid_slice_f32(&mut wa[3 * hd..]);
            let wc: Vec<f32> = (0..hd)
                .map(|j| wa[hd + j] * c0[j] + wa[j] * wa[2 * hd + j])
                .collect();
            let mut wt = wc.clone();
            tanh_slice_f32(&mut wt);
            let wh: Vec<f32> = (0..hd).map(|j| wa[3 * hd + j] * wt[j]).collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&wa), "acts, hd {hd}");
            assert_eq!(bits(&c), bits(&wc), "c, hd {hd}");
            assert_eq!(bits(&cp), bits(&c0), "c_prev, hd {hd}");
            assert_eq!(bits(&tc), bits(&wt), "tanh c, hd {hd}");
            assert_eq!(bits(&h), bits(&wh), "h, hd {hd}");

            let dh: Vec<f32> = (0..hd).map(|_| r(1.0)).collect();
            let dc0: Vec<f32> = (0..hd).map(|_| r(1.0)).collect();
            let (mut dc, mut da) = (dc0.clone(), vec![f32::NAN; 4 * hd]);
            assert!(lstm_cell_back_f32(&a, &cp, &tc, &dh, &mut dc, &mut da));
            let (mut wdc, mut wda) = (dc0.clone(), vec![0.0f32; 4 * hd]);
            for j in 0..hd {
                let (i, f, g, o, t) = (a[j], a[hd + j], a[2 * hd + j], a[3 * hd + j], tc[j]);
                let dcv = wdc[j] + dh[j] * o * (1.0 - t * t);
                wda[j] = dcv * g * i * (1.0 - i);
                wda[hd + j] = dcv * cp[j] * f * (1.0 - f);
                wda[2 * hd + j] = dcv * i * (1.0 - g * g);
                wda[3 * hd + j] = dh[j] * t * o * (1.0 - o);
                wdc[j] = dcv * f;
            }
            assert_eq!(bits(&da), bits(&wda), "dgates, hd {hd}");
            assert_eq!(bits(&dc), bits(&wdc), "dc, hd {hd}");
        }
    }
}
