//! Classical baseline for API-call sequences: TF-IDF over token n-grams plus an
//! L2-regularised logistic regression, numerically matching scikit-learn's
//! `TfidfVectorizer` + `LogisticRegression(solver="lbfgs")`.
//!
//! It exists so every deep model in mallard can be compared against the baseline
//! the literature (and users) expect, on the same data and without Python.
//!
//! ```
//! use mallard_ngram::{NgramConfig, NgramModel};
//! let seqs = vec![
//!     vec!["NtOpenFile", "NtReadFile"],
//!     vec!["RegOpenKeyExW", "CryptEncrypt"],
//!     vec!["NtOpenFile", "NtClose"],
//!     vec!["CryptEncrypt", "DeleteFileW"],
//! ];
//! let model = NgramModel::fit(&seqs, &[0, 1, 0, 1], 2, &NgramConfig::default()).unwrap();
//! let p = model.predict_proba(&[vec!["CryptEncrypt"]]);
//! assert!(p[1] > 0.5); // row-major [n, 2]: P(benign), P(malicious)
//! ```

mod error;
mod lbfgs;
mod logreg;
mod model;
mod sparse;
mod vectorizer;

pub use error::NgramError;
pub use logreg::{ClassWeight, LogRegConfig, LogisticRegression};
pub use model::{NgramConfig, NgramModel, TENSOR_COEF, TENSOR_IDF, TENSOR_INTERCEPT};
pub use sparse::CsrMatrix;
pub use vectorizer::{NgramVectorizer, Norm, TfMode, VectorizerConfig, MAX_NGRAM};

/// Crate-wide result type.
pub type Result<T> = std::result::Result<T, NgramError>;
