/// Everything that can go wrong when fitting, applying or loading a model.
#[derive(Debug, thiserror::Error)]
pub enum NgramError {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// Fitting needs at least one document.
    #[error("no training documents")]
    EmptyInput,
    /// `min_df` / `max_features` removed every n-gram.
    #[error("vocabulary is empty after filtering (min_df / max_features too strict?)")]
    EmptyVocabulary,
    /// Two inputs that must agree in length do not.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A label is not in `0..n_classes`.
    #[error("label {label} at row {row} is not below n_classes = {n_classes}")]
    LabelOutOfRange {
        row: usize,
        label: usize,
        n_classes: usize,
    },
    /// A class has no (positively weighted) training sample, so its intercept would diverge.
    #[error("class {0} has no training samples with positive weight")]
    EmptyClass(usize),
    /// Tokens may not contain a space: it separates tokens in n-gram names.
    #[error("token {0:?} contains a space, which separates tokens in n-gram names")]
    TokenHasSpace(String),
    /// Sample weights must be finite and non-negative.
    #[error("invalid sample weight {value} at row {row}")]
    InvalidWeight { row: usize, value: f64 },
    /// A sparse matrix is malformed (indptr, indices or values).
    #[error("invalid sparse matrix: {0}")]
    InvalidMatrix(String),
    /// Saved model parts are inconsistent (names, shapes, vocabulary).
    #[error("invalid model parts: {0}")]
    InvalidParts(String),
    /// The optimiser met a non-finite loss or gradient.
    #[error("optimisation failed: {0}")]
    Optimization(String),
}
