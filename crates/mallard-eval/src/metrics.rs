use serde::{Deserialize, Serialize};
use std::borrow::Cow;

use crate::roc::{roc_auc, roc_curve, tpr_at_fpr, RocPoint};
use crate::EvalError;

/// Slack for probabilities a hair outside [0, 1] from f32 rounding (softmax, sigmoid).
const PROB_SLACK: f32 = 1e-6;

/// Per-class scores; undefined ratios (0/0) are 0, as sklearn's `zero_division=0`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u64,
}

/// Best TPR on the ROC curve with FPR at most 0.1 % and 1 % (the baseline's metric).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TprAtFpr {
    #[serde(rename = "0.001")]
    pub fpr_0_001: f64,
    #[serde(rename = "0.01")]
    pub fpr_0_01: f64,
}

/// Result of [`evaluate`]; serialises to the `mallard eval --report` JSON (and reads
/// back, without the curve, e.g. to re-render a stored report).
///
/// Binary-only fields (`precision`, `recall`, `f1`, `tpr_at_fpr`, `threshold`,
/// `positive`) are `null` for multi-class. `roc_auc` and `tpr_at_fpr` are `null`
/// when undefined (a class missing from the truth). The ROC curve itself is kept
/// out of the JSON; get it with [`Evaluation::roc`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub n: usize,
    pub labels: Vec<String>,
    /// Index of the positive class (binary only).
    pub positive: Option<usize>,
    pub positive_label: Option<String>,
    /// Decision threshold on P(positive) (binary only).
    pub threshold: Option<f32>,
    pub accuracy: f64,
    /// Binary AUC, or macro one-vs-rest AUC for multi-class.
    pub roc_auc: Option<f64>,
    pub tpr_at_fpr: Option<TprAtFpr>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    /// Mean F1 over classes that occur in the truth or the predictions (sklearn's default).
    pub macro_f1: f64,
    /// Mean negative log-likelihood of the true class, probabilities clipped to
    /// `[eps, 1 - eps]` with `eps = f64::EPSILON` (sklearn 1.9 with float64 input).
    pub log_loss: f64,
    /// `confusion_matrix[true][predicted]`.
    pub confusion_matrix: Vec<Vec<u64>>,
    pub per_class: Vec<ClassMetrics>,
    #[serde(skip)]
    roc: Option<Vec<RocPoint>>,
}

impl Evaluation {
    /// Binary ROC curve of the positive class (all distinct thresholds), if defined.
    pub fn roc(&self) -> Option<&[RocPoint]> {
        self.roc.as_deref()
    }
}

/// Brings `probs` to row-major `[n, k]`; for `k == 2` a single column is P(positive).
pub(crate) fn probs_matrix<'a>(
    k: usize,
    n: usize,
    probs: &'a [f32],
    positive: usize,
) -> Result<Cow<'a, [f32]>, EvalError> {
    if let Some(index) = probs.iter().position(|p| !p.is_finite()) {
        return Err(EvalError::NonFinite { index });
    }
    if let Some(index) = probs
        .iter()
        .position(|&p| !(-PROB_SLACK..=1.0 + PROB_SLACK).contains(&p))
    {
        return Err(EvalError::ProbabilityOutOfRange {
            index,
            value: probs[index],
        });
    }
    if probs.len() == n.saturating_mul(k) {
        Ok(Cow::Borrowed(probs))
    } else if k == 2 && probs.len() == n {
        let mut m = vec![0f32; 2 * n];
        for (row, &p) in probs.iter().enumerate() {
            m[2 * row + positive] = p;
            m[2 * row + 1 - positive] = 1.0 - p;
        }
        Ok(Cow::Owned(m))
    } else {
        Err(EvalError::LengthMismatch {
            what: "probs (n * k)",
            expected: n.saturating_mul(k),
            got: probs.len(),
        })
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Computes all metrics from true class indices and predicted probabilities.
///
/// * `probs`: row-major `[n, k]` with `k = labels.len()`; for binary also `[n]`
///   holding P(positive).
/// * `positive`: positive class for binary metrics, default 1; ignored (and
///   reported as `null`) when `k > 2`.
/// * `threshold`: binary decision is `P(positive) >= threshold`, default 0.5.
///   Multi-class decision is the arg-max (first maximum on ties, like NumPy).
///
/// Errors on empty input, mismatched lengths, out-of-range classes, non-finite or
/// out-of-[0, 1] probabilities. A truth with one class is not an error: the
/// ranking metrics are then `None`.
pub fn evaluate(
    labels: &[String],
    y_true: &[usize],
    probs: &[f32],
    positive: Option<usize>,
    threshold: Option<f32>,
) -> Result<Evaluation, EvalError> {
    let k = labels.len();
    if k < 2 {
        return Err(EvalError::TooFewClasses(k));
    }
    let n = y_true.len();
    if n == 0 {
        return Err(EvalError::Empty);
    }
    if let Some((row, &class)) = y_true.iter().enumerate().find(|(_, &c)| c >= k) {
        return Err(EvalError::ClassOutOfRange { row, class, k });
    }
    let binary = k == 2;
    let pos = positive.unwrap_or(1);
    if binary && pos >= 2 {
        return Err(EvalError::InvalidPositive { positive: pos, k });
    }
    let thr = threshold.unwrap_or(0.5);
    if binary && !thr.is_finite() {
        return Err(EvalError::InvalidThreshold(thr));
    }
    let p = probs_matrix(k, n, probs, if binary { pos } else { 0 })?;
    let row = |i: usize| &p[i * k..(i + 1) * k];

    let y_pred: Vec<usize> = (0..n)
        .map(|i| {
            let r = row(i);
            if binary {
                if r[pos] >= thr {
                    pos
                } else {
                    1 - pos
                }
            } else {
                // First maximum wins, like numpy.argmax.
                (1..k).fold(0, |best, c| if r[c] > r[best] { c } else { best })
            }
        })
        .collect();

    let mut cm = vec![vec![0u64; k]; k];
    for (&t, &q) in y_true.iter().zip(&y_pred) {
        cm[t][q] += 1;
    }
    let correct: u64 = (0..k).map(|c| cm[c][c]).sum();
    let accuracy = correct as f64 / n as f64;

    let mut per_class = Vec::with_capacity(k);
    let (mut f1_sum, mut f1_count) = (0.0, 0usize);
    for c in 0..k {
        let tp = cm[c][c];
        let support: u64 = cm[c].iter().sum();
        let predicted: u64 = cm.iter().map(|r| r[c]).sum();
        let (fp, fn_) = (predicted - tp, support - tp);
        let f1 = ratio(2 * tp, 2 * tp + fp + fn_);
        if support + predicted > 0 {
            f1_sum += f1;
            f1_count += 1;
        }
        per_class.push(ClassMetrics {
            label: labels[c].clone(),
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1,
            support,
        });
    }
    let macro_f1 = if f1_count == 0 {
        0.0
    } else {
        f1_sum / f1_count as f64
    };

    let eps = f64::EPSILON;
    let log_loss = (0..n)
        .map(|i| -(row(i)[y_true[i]] as f64).clamp(eps, 1.0 - eps).ln())
        .sum::<f64>()
        / n as f64;

    let (mut roc_auc_v, mut tpr, mut roc) = (None, None, None);
    if binary {
        let truth: Vec<bool> = y_true.iter().map(|&t| t == pos).collect();
        let scores: Vec<f32> = (0..n).map(|i| row(i)[pos]).collect();
        match roc_curve(&truth, &scores) {
            Ok(curve) => {
                roc_auc_v = Some(roc_auc(&truth, &scores)?);
                tpr = Some(TprAtFpr {
                    fpr_0_001: tpr_at_fpr(&curve, 0.001),
                    fpr_0_01: tpr_at_fpr(&curve, 0.01),
                });
                roc = Some(curve);
            }
            Err(EvalError::SingleClass) => {}
            Err(e) => return Err(e),
        }
    } else {
        roc_auc_v = macro_ovr_auc(y_true, &p, k)?;
    }

    let pc = &per_class;
    Ok(Evaluation {
        n,
        labels: labels.to_vec(),
        positive: binary.then_some(pos),
        positive_label: binary.then(|| labels[pos].clone()),
        threshold: binary.then_some(thr),
        accuracy,
        roc_auc: roc_auc_v,
        tpr_at_fpr: tpr,
        precision: binary.then(|| pc[pos].precision),
        recall: binary.then(|| pc[pos].recall),
        f1: binary.then(|| pc[pos].f1),
        macro_f1,
        log_loss,
        confusion_matrix: cm,
        per_class,
        roc,
    })
}

/// Unweighted mean of one-vs-rest AUCs; `None` if any class is absent from the
/// truth (sklearn raises there).
fn macro_ovr_auc(y_true: &[usize], p: &[f32], k: usize) -> Result<Option<f64>, EvalError> {
    let mut sum = 0.0;
    for c in 0..k {
        let truth: Vec<bool> = y_true.iter().map(|&t| t == c).collect();
        let scores: Vec<f32> = (0..y_true.len()).map(|i| p[i * k + c]).collect();
        match roc_auc(&truth, &scores) {
            Ok(a) => sum += a,
            Err(EvalError::SingleClass) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(sum / k as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(k: usize) -> Vec<String> {
        (0..k).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn single_column_equals_two_columns() {
        let y = [0, 1, 1, 0];
        let p = [0.2f32, 0.7, 0.4, 0.6];
        let two: Vec<f32> = p.iter().flat_map(|&q| [1.0 - q, q]).collect();
        let a = evaluate(&labels(2), &y, &p, None, None).unwrap();
        let b = evaluate(&labels(2), &y, &two, None, None).unwrap();
        assert_eq!(a, b);
        // Hand-computed: predictions 0,1,0,1 -> TN=1 FP=1 FN=1 TP=1.
        assert_eq!(a.confusion_matrix, vec![vec![1, 1], vec![1, 1]]);
        assert_eq!(a.accuracy, 0.5);
    }

    #[test]
    fn positive_zero_flips_roles() {
        let y = [0, 0, 1];
        let p = [0.9f32, 0.1, 0.1, 0.9, 0.6, 0.4]; // P(class 0) high for rows 0, 2
        let e = evaluate(&labels(2), &y, &p, Some(0), None).unwrap();
        assert_eq!(e.positive, Some(0));
        // Decisions P(class 0) >= 0.5: rows -> 0, 1, 0.
        assert_eq!(e.confusion_matrix, vec![vec![1, 1], vec![1, 0]]);
        assert_eq!(e.precision, Some(0.5));
        assert_eq!(e.recall, Some(0.5));
        assert_eq!(e.roc_auc, Some(0.5)); // pos scores {0.9, 0.1}, neg {0.6}
    }

    #[test]
    fn input_errors() {
        let l = labels(2);
        assert_eq!(evaluate(&l, &[], &[], None, None), Err(EvalError::Empty));
        assert_eq!(
            evaluate(&labels(1), &[0], &[1.0], None, None),
            Err(EvalError::TooFewClasses(1))
        );
        assert_eq!(
            evaluate(&l, &[0, 1], &[0.5, f32::NAN], None, None),
            Err(EvalError::NonFinite { index: 1 })
        );
        assert!(matches!(
            evaluate(&l, &[0, 1], &[0.5, 1.5], None, None),
            Err(EvalError::ProbabilityOutOfRange { index: 1, .. })
        ));
        assert_eq!(
            evaluate(&l, &[0, 2], &[0.5, 0.5], None, None),
            Err(EvalError::ClassOutOfRange {
                row: 1,
                class: 2,
                k: 2
            })
        );
        assert_eq!(
            evaluate(&l, &[0, 1], &[0.5, 0.5], Some(2), None),
            Err(EvalError::InvalidPositive { positive: 2, k: 2 })
        );
        assert!(matches!(
            evaluate(&l, &[0, 1], &[0.5, 0.5], None, Some(f32::NAN)),
            Err(EvalError::InvalidThreshold(t)) if t.is_nan()
        ));
        assert!(matches!(
            evaluate(&l, &[0, 1], &[0.5, 0.5, 0.5], None, None),
            Err(EvalError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn multiclass_absent_class_gives_null_auc() {
        let y = [0, 1, 0];
        let p = [0.8f32, 0.1, 0.1, 0.2, 0.7, 0.1, 0.3, 0.3, 0.4];
        let e = evaluate(&labels(3), &y, &p, Some(1), Some(0.9)).unwrap();
        assert_eq!(e.roc_auc, None);
        assert_eq!(e.tpr_at_fpr, None);
        assert_eq!(e.threshold, None);
        assert_eq!(e.positive, None);
        assert!(e.roc().is_none());
        // Predictions 0, 1, 2: class 2 is only predicted -> counts in macro F1 as 0.
        assert_eq!(
            e.confusion_matrix,
            vec![vec![1, 0, 1], vec![0, 1, 0], vec![0, 0, 0]]
        );
        let f1_0 = 2.0 / 3.0;
        assert!((e.macro_f1 - (f1_0 + 1.0 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn argmax_ties_pick_first() {
        let e = evaluate(&labels(3), &[1], &[0.4, 0.4, 0.2], None, None).unwrap();
        assert_eq!(e.confusion_matrix[1], vec![1, 0, 0]);
    }
}
