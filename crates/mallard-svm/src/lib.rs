//! A binary C-support-vector classifier trained by sequential minimal optimisation.
//!
//! The dual problem is
//!
//! ```text
//! min_a  1/2 a'Qa - e'a   subject to  0 <= a_i <= C_i,  y'a = 0,   Q_ij = y_i y_j K(x_i, x_j)
//! ```
//!
//! solved two variables at a time with the second-order working-set selection ("WSS3") of
//! Fan, Chen and Lin (2005, JMLR 6), the rule libsvm uses. Each sample has its own upper bound
//! `C_i`, so class weights, sample weights and merged duplicate rows are all the same thing.
//! The kernel is given as a [`Kernel`]: a precomputed matrix ([`Precomputed`]), a closure
//! ([`FnKernel`]) or any type that can produce `K(i, j)`; rows are cached up to a memory budget.
//!
//! [`tanimoto`] holds the (exponentiated) Tanimoto kernel over sets of ids, and [`platt`]
//! Platt's sigmoid for turning decision values into probabilities.

mod kernel;
pub mod platt;
mod solver;
pub mod tanimoto;

pub use kernel::{FnKernel, Kernel, Precomputed, Subset};
pub use solver::{train, Svc, SvcParams};

/// Everything that can go wrong, all from the inputs; nothing here panics on bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SvmError {
    #[error("no training samples")]
    Empty,
    #[error("{what} has {got} entries, expected {expected}")]
    Length {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("training needs both classes; all {0} samples are in one")]
    OneClass(usize),
    #[error("C of sample {index} is {value}; it must be finite and > 0")]
    BadC { index: usize, value: f64 },
    #[error("kernel value K({i}, {j}) is {value}, not a finite number")]
    NonFinite { i: usize, j: usize, value: f64 },
    #[error("invalid parameter: {0}")]
    Param(String),
    #[error("index {index} out of range for {len} samples")]
    Index { index: usize, len: usize },
}
