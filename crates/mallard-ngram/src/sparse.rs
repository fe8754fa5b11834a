use crate::{NgramError, Result};

/// Compressed sparse rows: the layout both the vectorizer produces and the
/// classifier consumes, so n-gram matrices never go dense.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrMatrix {
    n_cols: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f64>,
}

impl CsrMatrix {
    /// Builds a matrix, checking that `indptr` is monotone, column indices are in
    /// range and values are finite (the optimiser relies on finite inputs).
    pub fn new(
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f64>,
    ) -> Result<Self> {
        if indptr.first() != Some(&0) {
            return Err(NgramError::InvalidMatrix("indptr must start with 0".into()));
        }
        if indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(NgramError::InvalidMatrix("indptr is not monotone".into()));
        }
        let nnz = *indptr.last().unwrap_or(&0);
        if indices.len() != nnz || values.len() != nnz {
            return Err(NgramError::InvalidMatrix(format!(
                "indptr says {nnz} non-zeros, got {} indices and {} values",
                indices.len(),
                values.len()
            )));
        }
        if let Some(&c) = indices.iter().find(|&&c| c as usize >= n_cols) {
            return Err(NgramError::InvalidMatrix(format!(
                "column {c} out of range (n_cols = {n_cols})"
            )));
        }
        if values.iter().any(|v| !v.is_finite()) {
            return Err(NgramError::InvalidMatrix("non-finite value".into()));
        }
        Ok(Self {
            n_cols,
            indptr,
            indices,
            values,
        })
    }

    /// Trusted constructor for matrices built inside the crate.
    pub(crate) fn from_raw(
        n_cols: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f64>,
    ) -> Self {
        debug_assert_eq!(indices.len(), values.len());
        Self {
            n_cols,
            indptr,
            indices,
            values,
        }
    }

    /// Number of rows (documents).
    pub fn n_rows(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of columns (features).
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Number of stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// Column indices and values of row `i` (columns ascending for vectorizer output).
    ///
    /// # Panics
    /// If `i >= n_rows()`.
    pub fn row(&self, i: usize) -> (&[u32], &[f64]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Dense row-major copy; meant for tests and tiny matrices.
    pub fn to_dense(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.n_rows() * self.n_cols];
        for i in 0..self.n_rows() {
            let (idx, val) = self.row(i);
            for (&j, &v) in idx.iter().zip(val) {
                out[i * self.n_cols + j as usize] += v;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed() {
        assert!(CsrMatrix::new(2, vec![0, 1], vec![2], vec![1.0]).is_err());
        assert!(CsrMatrix::new(2, vec![0, 2], vec![0], vec![1.0]).is_err());
        assert!(CsrMatrix::new(2, vec![1, 1], vec![0], vec![1.0]).is_err());
        assert!(CsrMatrix::new(2, vec![0, 1], vec![0], vec![f64::NAN]).is_err());
        let m = CsrMatrix::new(3, vec![0, 1, 1, 3], vec![2, 0, 1], vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m.n_rows(), 3);
        assert_eq!(
            m.to_dense(),
            vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 2.0, 3.0, 0.0]
        );
    }
}
