//! Evaluation for mallard: metrics that match scikit-learn, a plain-text report,
//! SVG pictures, and group-aware splits that keep duplicated samples on one side.
//!
//! Numbers follow scikit-learn 1.9 conventions so that results can be compared
//! with the published baselines (`tests/golden/` holds values generated with it).
//! TPR at FPR is the baseline's definition: the best TPR among ROC points whose
//! FPR is within the limit (no interpolation).
//!
//! ```
//! let labels = vec!["benign".to_string(), "malicious".to_string()];
//! // Binary: one P(malicious) per row, or rows of [P(benign), P(malicious)].
//! let e = mallard_eval::evaluate(&labels, &[0, 0, 1, 1], &[0.1, 0.6, 0.4, 0.9], None, None)?;
//! assert_eq!(e.accuracy, 0.5);
//! assert_eq!(e.roc_auc, Some(0.75));
//! println!("{}", mallard_eval::render_table(&e));
//! # Ok::<(), mallard_eval::EvalError>(())
//! ```

mod cv;
mod error;
mod foldplan;
mod metrics;
mod plot;
mod report;
mod rng;
mod roc;
mod split;
mod weights;

pub use cv::{pooled, CrossValidation, FoldPredictions, FoldSummary, MeanSd, TprAtFprSummary};
pub use error::EvalError;
pub use foldplan::{straddling_groups, FoldPlan, MAX_FOLDS};
pub use metrics::{evaluate, ClassMetrics, Evaluation, TprAtFpr};
pub use plot::{confusion_svg, roc_svg, score_shift_svg, RocSeries};
pub use report::render_table;
pub use rng::SplitMix64;
pub use roc::{drop_intermediate, roc_auc, roc_curve, threshold_at_fpr, tpr_at_fpr, RocPoint};
pub use split::{
    complement, group_ids, groups_union, stratified_group_kfold, stratified_group_split,
};
pub use weights::stratum_balanced_weights;
