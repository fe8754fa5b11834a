//! Vectorisable f32 sigmoid and tanh.
//!
//! Why: the LSTM applies ~5 transcendental functions per hidden unit per token; libm's scalar
//! `expf`/`tanhf` would cost about as much as the GEMMs. These branch-free versions (Cephes-style
//! polynomials, max error a few ulp) compile to 8-wide AVX2 code when the CPU has it.

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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn sigmoid_avx512(x: &mut [f32]) {
    sigmoid_generic(x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tanh_avx512(x: &mut [f32]) {
    tanh_generic(x)
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
        let mut s = xs.clone();
        let mut t = xs.clone();
        sigmoid_slice_f32(&mut s);
        tanh_slice_f32(&mut t);
        for (i, &x) in xs.iter().enumerate() {
            let ws = 1.0 / (1.0 + (-(x as f64)).exp());
            let wt = (x as f64).tanh();
            assert!(
                (s[i] as f64 - ws).abs() <= 2e-7 * ws.max(1e-30) + 1e-30,
                "sigmoid({x}) = {} vs {ws}",
                s[i]
            );
            assert!(
                (t[i] as f64 - wt).abs() <= 3e-7 * wt.abs() + 1e-37,
                "tanh({x}) = {} vs {wt}",
                t[i]
            );
        }
        let mut g = xs.clone();
        sigmoid_generic(&mut g);
        assert!(g
            .iter()
            .zip(&s)
            .all(|(a, b)| (a - b).abs() <= 1e-7 * b.abs().max(1e-30)));
    }
}
