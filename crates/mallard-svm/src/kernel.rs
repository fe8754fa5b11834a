//! Kernel sources for the solver.

use crate::SvmError;

/// A symmetric positive semi-definite kernel over `len()` training samples.
pub trait Kernel {
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `K(i, j)`; `i, j < len()`.
    fn eval(&self, i: usize, j: usize) -> f64;

    /// Row `i` into `out` (`out.len() == len()`); override when a row is cheaper as a whole.
    fn row(&self, i: usize, out: &mut [f64]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o = self.eval(i, j);
        }
    }
}

/// A full `n x n` kernel matrix, row-major.
#[derive(Debug, Clone)]
pub struct Precomputed<T = f64> {
    n: usize,
    data: Vec<T>,
}

impl<T: Copy + Into<f64>> Precomputed<T> {
    /// Checks the shape and that every value is finite (symmetry is the caller's promise).
    pub fn new(n: usize, data: Vec<T>) -> Result<Self, SvmError> {
        let expected = n.checked_mul(n).ok_or_else(|| {
            SvmError::Param(format!("a {n} x {n} kernel matrix does not fit in memory"))
        })?;
        if data.len() != expected {
            return Err(SvmError::Length {
                what: "kernel matrix",
                got: data.len(),
                expected,
            });
        }
        if let Some(k) = data.iter().position(|v| !(*v).into().is_finite()) {
            return Err(SvmError::NonFinite {
                i: k / n.max(1),
                j: k % n.max(1),
                value: data[k].into(),
            });
        }
        Ok(Precomputed { n, data })
    }

    /// Row `i` as stored.
    pub fn row_slice(&self, i: usize) -> &[T] {
        &self.data[i * self.n..(i + 1) * self.n]
    }
}

impl<T: Copy + Into<f64>> Kernel for Precomputed<T> {
    fn len(&self) -> usize {
        self.n
    }
    fn eval(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n + j].into()
    }
    fn row(&self, i: usize, out: &mut [f64]) {
        for (o, v) in out.iter_mut().zip(self.row_slice(i)) {
            *o = (*v).into();
        }
    }
}

/// A kernel computed on demand by a closure `f(i, j)`.
pub struct FnKernel<F> {
    n: usize,
    f: F,
}

impl<F: Fn(usize, usize) -> f64> FnKernel<F> {
    pub fn new(n: usize, f: F) -> Self {
        FnKernel { n, f }
    }
}

impl<F: Fn(usize, usize) -> f64> Kernel for FnKernel<F> {
    fn len(&self) -> usize {
        self.n
    }
    fn eval(&self, i: usize, j: usize) -> f64 {
        (self.f)(i, j)
    }
}

/// The rows and columns `idx` of another kernel (a training fold of a larger matrix).
pub struct Subset<'a, K: ?Sized> {
    inner: &'a K,
    idx: &'a [usize],
}

impl<'a, K: Kernel + ?Sized> Subset<'a, K> {
    pub fn new(inner: &'a K, idx: &'a [usize]) -> Result<Self, SvmError> {
        if let Some(&bad) = idx.iter().find(|&&i| i >= inner.len()) {
            return Err(SvmError::Index {
                index: bad,
                len: inner.len(),
            });
        }
        Ok(Subset { inner, idx })
    }
}

impl<K: Kernel + ?Sized> Kernel for Subset<'_, K> {
    fn len(&self) -> usize {
        self.idx.len()
    }
    fn eval(&self, i: usize, j: usize) -> f64 {
        self.inner.eval(self.idx[i], self.idx[j])
    }
}
