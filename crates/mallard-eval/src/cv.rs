//! Cross-validation aggregation.
//!
//! The headline numbers are *pooled*: out-of-fold predictions are concatenated and
//! evaluated once. With small folds (MalBehavD: ~50 negatives per fold) a per-fold
//! TPR at 0.1 % FPR is a coarse, noisy step function, and averaging per-fold AUCs
//! is not the AUC of anything. The per-fold mean ± sd is reported next to it as a
//! measure of spread.

use serde::Serialize;

use crate::metrics::{evaluate, probs_matrix, Evaluation};
use crate::EvalError;

/// Out-of-fold predictions of one fold, in the layout [`evaluate`] takes.
#[derive(Debug, Clone, Copy)]
pub struct FoldPredictions<'a> {
    pub y_true: &'a [usize],
    pub probs: &'a [f32],
}

/// Mean and sample standard deviation (n - 1 denominator; 0 for one value) over the
/// folds where the metric is defined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

impl MeanSd {
    fn of(values: impl IntoIterator<Item = Option<f64>>) -> Option<MeanSd> {
        let v: Vec<f64> = values.into_iter().flatten().collect();
        if v.is_empty() {
            return None;
        }
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        Some(MeanSd {
            mean,
            sd,
            n: v.len(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TprAtFprSummary {
    #[serde(rename = "0.001")]
    pub fpr_0_001: Option<MeanSd>,
    #[serde(rename = "0.01")]
    pub fpr_0_01: Option<MeanSd>,
}

/// Per-fold metrics summarised; `None` where no fold defines the metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldSummary {
    pub accuracy: Option<MeanSd>,
    pub roc_auc: Option<MeanSd>,
    pub tpr_at_fpr: TprAtFprSummary,
    pub precision: Option<MeanSd>,
    pub recall: Option<MeanSd>,
    pub f1: Option<MeanSd>,
    pub macro_f1: Option<MeanSd>,
    pub log_loss: Option<MeanSd>,
}

/// Pooled evaluation, each fold's evaluation, and their mean ± sd.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossValidation {
    pub pooled: Evaluation,
    pub folds: Vec<Evaluation>,
    pub per_fold: FoldSummary,
}

/// Evaluates every fold and the concatenation of all folds (see the module docs).
///
/// Arguments after `folds` are as in [`evaluate`]. Any fold error (e.g. an empty
/// fold) is returned; a fold with one class only leaves its AUC out of the mean.
pub fn pooled(
    labels: &[String],
    folds: &[FoldPredictions<'_>],
    positive: Option<usize>,
    threshold: Option<f32>,
) -> Result<CrossValidation, EvalError> {
    let k = labels.len();
    let per: Vec<Evaluation> = folds
        .iter()
        .map(|f| evaluate(labels, f.y_true, f.probs, positive, threshold))
        .collect::<Result<_, _>>()?;
    if per.is_empty() {
        return Err(EvalError::Empty);
    }
    // Each fold is valid here, so bring them to one [n, k] layout and concatenate.
    let pos = if k == 2 { positive.unwrap_or(1) } else { 0 };
    let (mut y, mut p) = (Vec::new(), Vec::new());
    for f in folds {
        y.extend_from_slice(f.y_true);
        p.extend_from_slice(&probs_matrix(k, f.y_true.len(), f.probs, pos)?);
    }
    let pooled = evaluate(labels, &y, &p, positive, threshold)?;
    let m = |g: fn(&Evaluation) -> Option<f64>| MeanSd::of(per.iter().map(g));
    let per_fold = FoldSummary {
        accuracy: m(|e| Some(e.accuracy)),
        roc_auc: m(|e| e.roc_auc),
        tpr_at_fpr: TprAtFprSummary {
            fpr_0_001: m(|e| e.tpr_at_fpr.map(|t| t.fpr_0_001)),
            fpr_0_01: m(|e| e.tpr_at_fpr.map(|t| t.fpr_0_01)),
        },
        precision: m(|e| e.precision),
        recall: m(|e| e.recall),
        f1: m(|e| e.f1),
        macro_f1: m(|e| Some(e.macro_f1)),
        log_loss: m(|e| Some(e.log_loss)),
    };
    Ok(CrossValidation {
        pooled,
        folds: per,
        per_fold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_equals_concatenation_and_mean_sd_by_hand() {
        let labels = vec!["benign".to_string(), "malicious".to_string()];
        let (y1, p1) = ([0usize, 1, 1], [0.2f32, 0.9, 0.4]);
        let (y2, p2) = ([0usize, 0, 1], [0.6f32, 0.1, 0.8]);
        let cv = pooled(
            &labels,
            &[
                FoldPredictions {
                    y_true: &y1,
                    probs: &p1,
                },
                FoldPredictions {
                    y_true: &y2,
                    probs: &p2,
                },
            ],
            None,
            None,
        )
        .unwrap();
        let y: Vec<usize> = y1.iter().chain(&y2).copied().collect();
        let p: Vec<f32> = p1.iter().chain(&p2).copied().collect();
        assert_eq!(cv.pooled, evaluate(&labels, &y, &p, None, None).unwrap());
        // Fold accuracies 2/3 and 2/3; AUCs 1.0 and 1.0; pooled AUC: pos {0.9, 0.4, 0.8},
        // neg {0.2, 0.6, 0.1} -> 8 of 9 pairs ordered.
        let acc = cv.per_fold.accuracy.unwrap();
        assert!((acc.mean - 2.0 / 3.0).abs() < 1e-12 && acc.sd == 0.0 && acc.n == 2);
        assert_eq!(cv.pooled.roc_auc, Some(8.0 / 9.0));
        // log-loss per fold by hand; sample sd of two values is |a - b| / sqrt(2).
        let ll1 = -((1.0f32 - 0.2) as f64).ln() - (0.9f32 as f64).ln() - (0.4f32 as f64).ln();
        let ll2 =
            -((1.0f32 - 0.6) as f64).ln() - ((1.0f32 - 0.1) as f64).ln() - (0.8f32 as f64).ln();
        let (a, b) = (ll1 / 3.0, ll2 / 3.0);
        let ll = cv.per_fold.log_loss.unwrap();
        assert!((ll.mean - (a + b) / 2.0).abs() < 1e-12);
        assert!((ll.sd - (a - b).abs() / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn single_class_fold_skipped_in_auc_mean() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let cv = pooled(
            &labels,
            &[
                FoldPredictions {
                    y_true: &[1, 1],
                    probs: &[0.7, 0.2],
                },
                FoldPredictions {
                    y_true: &[0, 1],
                    probs: &[0.3, 0.6],
                },
            ],
            None,
            None,
        )
        .unwrap();
        assert_eq!(cv.per_fold.roc_auc.unwrap().n, 1);
        assert!(pooled(&labels, &[], None, None).is_err());
        assert!(pooled(
            &labels,
            &[FoldPredictions {
                y_true: &[],
                probs: &[]
            }],
            None,
            None
        )
        .is_err());
    }
}
