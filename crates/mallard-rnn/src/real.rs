//! Scalar abstraction so the same kernel runs in f32 (production) and f64 (gradient checks).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

pub(crate) trait Real:
    Copy
    + Default
    + Debug
    + PartialOrd
    + Send
    + Sync
    + 'static
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    const ZERO: Self;
    const ONE: Self;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn exp(self) -> Self;
    /// In-place logistic sigmoid over a slice.
    fn sigmoid_slice(x: &mut [Self]);
    /// In-place tanh over a slice.
    fn tanh_slice(x: &mut [Self]);
    /// One LSTM row in a single vector pass where the CPU has one for this type (see
    /// `kernel::lstm_cell`); false: the caller runs the portable code.
    fn lstm_cell_simd(
        _a: &mut [Self],
        _c: &mut [Self],
        _h: &mut [Self],
        _cp: &mut [Self],
        _tc: &mut [Self],
    ) -> bool {
        false
    }
    /// The same for `kernel::lstm_cell_back`.
    fn lstm_cell_back_simd(
        _acts: &[Self],
        _cp: &[Self],
        _tc: &[Self],
        _dh: &[Self],
        _dc: &mut [Self],
        _da: &mut [Self],
    ) -> bool {
        false
    }
    /// Whether [`crate::packed::Packed`] should build SIMD panels for this type.
    fn packed_kernel() -> bool {
        false
    }
    /// Panel GEMM (see `packed.rs`); false = not available, use the fallback.
    #[allow(clippy::too_many_arguments)]
    fn packed_matmul(
        _m: usize,
        _k: usize,
        _n: usize,
        _a: &[Self],
        _lda: usize,
        _panels: &[f32],
        _add: crate::packed::Add<'_, Self>,
        _c: &mut [Self],
        _ldc: usize,
    ) -> bool {
        false
    }
    /// Raw GEMM: C = alpha * A·B + beta * C with element strides.
    ///
    /// # Safety
    /// Pointers must cover every element addressed by the dimensions and strides.
    #[allow(clippy::too_many_arguments)]
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    #[inline]
    fn from_f64(x: f64) -> f32 {
        x as f32
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn exp(self) -> f32 {
        f32::exp(self)
    }
    fn sigmoid_slice(x: &mut [f32]) {
        crate::fastmath::sigmoid_slice_f32(x)
    }
    fn packed_kernel() -> bool {
        crate::packed::simd_available()
    }
    fn packed_matmul(
        m: usize,
        k: usize,
        n: usize,
        a: &[f32],
        lda: usize,
        panels: &[f32],
        add: crate::packed::Add<'_, f32>,
        c: &mut [f32],
        ldc: usize,
    ) -> bool {
        crate::packed::matmul_f32(m, k, n, a, lda, panels, add, c, ldc)
    }
    fn tanh_slice(x: &mut [f32]) {
        crate::fastmath::tanh_slice_f32(x)
    }
    fn lstm_cell_simd(
        a: &mut [f32],
        c: &mut [f32],
        h: &mut [f32],
        cp: &mut [f32],
        tc: &mut [f32],
    ) -> bool {
        crate::fastmath::lstm_cell_f32(a, c, h, cp, tc)
    }
    fn lstm_cell_back_simd(
        acts: &[f32],
        cp: &[f32],
        tc: &[f32],
        dh: &[f32],
        dc: &mut [f32],
        da: &mut [f32],
    ) -> bool {
        crate::fastmath::lstm_cell_back_f32(acts, cp, tc, dh, dc, da)
    }

    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f32,
        a: *const f32,
        rsa: isize,
        csa: isize,
        b: *const f32,
        rsb: isize,
        csb: isize,
        beta: f32,
        c: *mut f32,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            matrixmultiply::sgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    #[inline]
    fn from_f64(x: f64) -> f64 {
        x
    }
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn sigmoid_slice(x: &mut [f64]) {
        for v in x {
            *v = 1.0 / (1.0 + (-*v).exp());
        }
    }
    fn tanh_slice(x: &mut [f64]) {
        for v in x {
            *v = v.tanh();
        }
    }
    unsafe fn gemm_raw(
        m: usize,
        k: usize,
        n: usize,
        alpha: f64,
        a: *const f64,
        rsa: isize,
        csa: isize,
        b: *const f64,
        rsb: isize,
        csb: isize,
        beta: f64,
        c: *mut f64,
        rsc: isize,
        csc: isize,
    ) {
        // SAFETY: forwarded contract.
        unsafe {
            matrixmultiply::dgemm(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc)
        }
    }
}

/// A strided matrix view: (data, row stride, column stride).
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a, T> {
    pub data: &'a [T],
    pub rs: usize,
    pub cs: usize,
}

/// Row-major view of `data` with `cols` columns.
#[inline]
pub(crate) fn rm<T>(data: &[T], cols: usize) -> Mat<'_, T> {
    Mat {
        data,
        rs: cols,
        cs: 1,
    }
}

/// Transposed view of a row-major matrix with `cols` columns.
#[inline]
pub(crate) fn tr<T>(data: &[T], cols: usize) -> Mat<'_, T> {
    Mat {
        data,
        rs: 1,
        cs: cols,
    }
}

#[inline]
fn covers(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// Bounds-checked GEMM: C[m,n] (row-major, stride `ldc`) = alpha A[m,k] B[k,n] + beta C.
///
/// Dimension mismatches are internal bugs, so they panic instead of returning errors.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Real>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: Mat<'_, T>,
    b: Mat<'_, T>,
    beta: T,
    c: &mut [T],
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(covers(c.len(), m, n, ldc, 1), "gemm: C too small");
    if k == 0 {
        for i in 0..m {
            for v in &mut c[i * ldc..i * ldc + n] {
                *v *= beta;
            }
        }
        return;
    }
    assert!(covers(a.data.len(), m, k, a.rs, a.cs), "gemm: A too small");
    assert!(covers(b.data.len(), k, n, b.rs, b.cs), "gemm: B too small");
    // SAFETY: the asserts above prove every addressed element lies inside its slice.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            a.rs as isize,
            a.cs as isize,
            b.data.as_ptr(),
            b.rs as isize,
            b.cs as isize,
            beta,
            c.as_mut_ptr(),
            ldc as isize,
            1,
        )
    }
}
