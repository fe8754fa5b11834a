use thiserror::Error;

/// Everything that can go wrong when evaluating or splitting; never a panic.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EvalError {
    #[error("no samples to evaluate")]
    Empty,
    #[error("balancing power must be in [0, 1], got {0}")]
    InvalidPower(f64),
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("need at least 2 class labels, got {0}")]
    TooFewClasses(usize),
    #[error("row {row}: class index {class} is out of range for {k} labels")]
    ClassOutOfRange { row: usize, class: usize, k: usize },
    #[error("value {index} is not finite (NaN or infinite)")]
    NonFinite { index: usize },
    #[error("probability {index} is {value}, outside [0, 1]")]
    ProbabilityOutOfRange { index: usize, value: f32 },
    #[error("positive class {positive} is out of range for {k} labels")]
    InvalidPositive { positive: usize, k: usize },
    #[error("decision threshold must be finite, got {0}")]
    InvalidThreshold(f32),
    #[error("ROC needs both positive and negative samples")]
    SingleClass,
    #[error("fold file: {0}")]
    FoldPlan(String),
    #[error("cannot make {k} folds from {groups} groups (need 2 <= k <= groups)")]
    InvalidFolds { k: usize, groups: usize },
    #[error("test fraction must be in (0, 1), got {0}")]
    InvalidFraction(f64),
    #[error("split left the {0} side empty; too few groups for this fraction")]
    EmptySplit(&'static str),
}
