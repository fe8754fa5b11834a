use serde::Serialize;
use std::cmp::Ordering;

use crate::EvalError;

/// One ROC point: rates at decision rule `score >= threshold`.
///
/// The first point is `(0, 0, +inf)` as in scikit-learn >= 1.3.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RocPoint {
    pub fpr: f64,
    pub tpr: f64,
    pub threshold: f32,
}

/// Cumulative (false positives, true positives, threshold) at each distinct score,
/// highest score first, plus the totals (negatives, positives).
type Counts = (Vec<(u64, u64, f32)>, u64, u64);

fn cumulative_counts(y_true_pos: &[bool], scores: &[f32]) -> Result<Counts, EvalError> {
    if y_true_pos.len() != scores.len() {
        return Err(EvalError::LengthMismatch {
            what: "scores",
            expected: y_true_pos.len(),
            got: scores.len(),
        });
    }
    if scores.is_empty() {
        return Err(EvalError::Empty);
    }
    if let Some(index) = scores.iter().position(|s| !s.is_finite()) {
        return Err(EvalError::NonFinite { index });
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // partial_cmp (not total_cmp) so that -0.0 and 0.0 tie, as in NumPy.
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));

    let (mut fp, mut tp) = (0u64, 0u64);
    let mut steps = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if y_true_pos[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_tie = order.get(pos + 1).is_none_or(|&j| scores[j] != scores[i]);
        if last_of_tie {
            steps.push((fp, tp, scores[i]));
        }
    }
    Ok((steps, fp, tp))
}

/// ROC curve with one point per distinct score (ties form one step), like
/// `sklearn.metrics.roc_curve(..., drop_intermediate=False)`.
///
/// Needs both classes present (otherwise one rate is 0/0): [`EvalError::SingleClass`].
pub fn roc_curve(y_true_pos: &[bool], scores: &[f32]) -> Result<Vec<RocPoint>, EvalError> {
    let (steps, neg, pos) = cumulative_counts(y_true_pos, scores)?;
    if neg == 0 || pos == 0 {
        return Err(EvalError::SingleClass);
    }
    let mut curve = Vec::with_capacity(steps.len() + 1);
    curve.push(RocPoint {
        fpr: 0.0,
        tpr: 0.0,
        threshold: f32::INFINITY,
    });
    curve.extend(steps.iter().map(|&(fp, tp, t)| RocPoint {
        fpr: fp as f64 / neg as f64,
        tpr: tp as f64 / pos as f64,
        threshold: t,
    }));
    Ok(curve)
}

/// Area under the ROC curve, exact with ties (each tied positive/negative pair
/// counts 1/2, i.e. the Mann–Whitney U statistic divided by `P * N`).
///
/// Computed from integer counts, so it does not accumulate rounding error.
pub fn roc_auc(y_true_pos: &[bool], scores: &[f32]) -> Result<f64, EvalError> {
    let (steps, neg, pos) = cumulative_counts(y_true_pos, scores)?;
    if neg == 0 || pos == 0 {
        return Err(EvalError::SingleClass);
    }
    // Twice the trapezoid area in count units: sum dfp * (tp_prev + tp).
    let (mut fp_prev, mut tp_prev, mut twice) = (0u64, 0u64, 0u128);
    for &(fp, tp, _) in &steps {
        twice += (fp - fp_prev) as u128 * (tp + tp_prev) as u128;
        fp_prev = fp;
        tp_prev = tp;
    }
    Ok(twice as f64 / (2.0 * neg as f64 * pos as f64))
}

/// Removes points that lie on a straight horizontal or vertical run, keeping the
/// first and last, exactly like scikit-learn's `drop_intermediate=True`.
///
/// Area and every "best TPR at FPR <= x" value are unchanged; useful before plotting.
pub fn drop_intermediate(curve: &[RocPoint]) -> Vec<RocPoint> {
    // sklearn applies the rule before prepending the (0, 0, inf) point.
    let (head, rest) = match curve.split_first() {
        Some((h, r)) if h.threshold == f32::INFINITY => (Some(*h), r),
        _ => (None, curve),
    };
    let mut out: Vec<RocPoint> = head.into_iter().collect();
    if rest.len() <= 2 {
        out.extend_from_slice(rest);
        return out;
    }
    out.push(rest[0]);
    for w in rest.windows(3) {
        let d2f = (w[2].fpr - w[1].fpr) - (w[1].fpr - w[0].fpr);
        let d2t = (w[2].tpr - w[1].tpr) - (w[1].tpr - w[0].tpr);
        // Rates are count / total, so a real corner differs by >= 1 / total; the
        // tolerance only absorbs rounding of the divisions (exact for totals < 1e9).
        if d2f.abs() > 1e-12 || d2t.abs() > 1e-12 {
            out.push(w[1]);
        }
    }
    out.push(rest[rest.len() - 1]);
    out
}

/// Best TPR among curve points with `fpr <= max_fpr` (plus 1e-12 slack for float
/// rounding): the reference baseline's definition, no interpolation. 0 if none.
pub fn tpr_at_fpr(curve: &[RocPoint], max_fpr: f64) -> f64 {
    curve
        .iter()
        .filter(|p| p.fpr <= max_fpr + 1e-12)
        .map(|p| p.tpr)
        .fold(0.0, f64::max)
}

/// The smallest threshold at which at most `max_fpr` of the negative scores are flagged
/// (scores >= threshold are positive), and the share of positive scores flagged there.
pub fn threshold_at_fpr(neg: &[f32], pos: &[f32], max_fpr: f64) -> (f32, f64) {
    let mut neg = neg.to_vec();
    neg.sort_by(|a, b| b.total_cmp(a));
    let k = (max_fpr * neg.len() as f64).floor() as usize;
    // Just above the (k+1)-th highest negative score.
    let thr = neg
        .get(k)
        .map_or(0.5, |&s| f32::from_bits(s.to_bits() + 1).min(1.0));
    let tpr = pos.iter().filter(|&&s| s >= thr).count() as f64 / pos.len().max(1) as f64;
    (thr, tpr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_ties() {
        // pos scores {0.8, 0.5}, neg scores {0.5, 0.1}: pairs (0.8>0.5), (0.8>0.1),
        // (0.5=0.5 -> 1/2), (0.5>0.1) => U = 3.5 of 4.
        let y = [true, true, false, false];
        let s = [0.8, 0.5, 0.5, 0.1];
        assert_eq!(roc_auc(&y, &s).unwrap(), 0.875);
        let c = roc_curve(&y, &s).unwrap();
        let pts: Vec<_> = c.iter().map(|p| (p.fpr, p.tpr)).collect();
        assert_eq!(pts, vec![(0.0, 0.0), (0.0, 0.5), (0.5, 1.0), (1.0, 1.0)]);
        assert_eq!(c[2].threshold, 0.5);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        let y = [true, false];
        assert_eq!(roc_auc(&y, &[0.0, -0.0]).unwrap(), 0.5);
    }

    #[test]
    fn errors_instead_of_panics() {
        assert_eq!(roc_curve(&[], &[]), Err(EvalError::Empty));
        assert_eq!(
            roc_auc(&[true, true], &[0.1, 0.2]),
            Err(EvalError::SingleClass)
        );
        assert_eq!(
            roc_auc(&[true, false], &[f32::NAN, 0.2]),
            Err(EvalError::NonFinite { index: 0 })
        );
        assert!(matches!(
            roc_curve(&[true], &[0.1, 0.2]),
            Err(EvalError::LengthMismatch { .. })
        ));
        assert_eq!(tpr_at_fpr(&[], 0.01), 0.0);
        assert!(drop_intermediate(&[]).is_empty());
    }

    #[test]
    fn threshold_flags_at_most_the_allowed_share_of_negative_scores() {
        // 10 negatives 0.0, 0.1, ..., 0.9; at 10% FPR one may be flagged: the threshold
        // sits just above the second highest (0.8), so only 0.9 is >= it.
        let neg: Vec<f32> = (0..10).map(|i| i as f32 / 10.0).collect();
        let pos = [0.85f32, 0.95, 0.5, 0.81];
        let (t, tpr) = threshold_at_fpr(&neg, &pos, 0.1);
        assert!(t > 0.8 && t < 0.8 + 1e-6, "{t}");
        assert_eq!(neg.iter().filter(|&&s| s >= t).count(), 1);
        assert_eq!(tpr, 0.75); // 0.85, 0.95 and 0.81
                               // At 0% FPR nothing negative may pass: just above the highest.
        let (t0, tpr0) = threshold_at_fpr(&neg, &pos, 0.0);
        assert!(t0 > 0.9 && neg.iter().all(|&s| s < t0));
        assert_eq!(tpr0, 0.25);
    }
}
