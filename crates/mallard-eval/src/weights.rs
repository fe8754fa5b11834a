//! Row weights that take a stratum (a kind of file, a source) out of the label.

use crate::EvalError;

/// Weights under which every stratum has the overall class mix: a row of class `c` in
/// stratum `s` weighs `(share_c × n_s / n_{s,c})^power`, then all weights are scaled to
/// mean 1. `power` 1 balances fully, 0 leaves every weight at 1, values between temper it.
/// Rows of a stratum that holds one class only keep weight 1 before scaling (nothing to
/// balance there).
///
/// Why: when a corpus has most of its malware among 32-bit EXEs and most of its benign
/// files among 64-bit DLLs, a learner can score the kind instead of the content.
pub fn stratum_balanced_weights(
    strata: &[usize],
    y: &[usize],
    power: f64,
) -> Result<Vec<f32>, EvalError> {
    if strata.len() != y.len() {
        return Err(EvalError::LengthMismatch {
            what: "strata",
            expected: y.len(),
            got: strata.len(),
        });
    }
    if y.is_empty() {
        return Err(EvalError::Empty);
    }
    if !(power.is_finite() && (0.0..=1.0).contains(&power)) {
        return Err(EvalError::InvalidPower(power));
    }
    let k = y.iter().max().map_or(0, |m| m + 1);
    let s = strata.iter().max().map_or(0, |m| m + 1);
    let mut class = vec![0usize; k];
    let mut cell = vec![0usize; s * k];
    let mut size = vec![0usize; s];
    for (&st, &c) in strata.iter().zip(y) {
        class[c] += 1;
        cell[st * k + c] += 1;
        size[st] += 1;
    }
    let n = y.len() as f64;
    let mixed: Vec<bool> = (0..s)
        .map(|st| {
            cell[st * k..(st + 1) * k]
                .iter()
                .filter(|&&m| m > 0)
                .count()
                >= 2
        })
        .collect();
    let raw: Vec<f64> = strata
        .iter()
        .zip(y)
        .map(|(&st, &c)| {
            if !mixed[st] {
                return 1.0;
            }
            let share = class[c] as f64 / n;
            (share * size[st] as f64 / cell[st * k + c] as f64).powf(power)
        })
        .collect();
    let mean = raw.iter().sum::<f64>() / n;
    Ok(raw.iter().map(|w| (w / mean) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balances_each_stratum_to_the_overall_mix() {
        // Stratum 0: 1 positive of 4; stratum 1: 3 of 4. Overall share 1/2, so the lone
        // positive of stratum 0 weighs 1/2 × 4 / 1 = 2 and its negatives 1/2 × 4 / 3.
        let strata = [0, 0, 0, 0, 1, 1, 1, 1];
        let y = [1, 0, 0, 0, 1, 1, 1, 0];
        let w = stratum_balanced_weights(&strata, &y, 1.0).unwrap();
        let third = 2.0 / 3.0;
        let want = [2.0, third, third, third, third, third, third, 2.0];
        for (a, b) in w.iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{w:?}");
        }
        // power 0: unweighted; power 1/2: square roots, rescaled to mean 1
        assert!(stratum_balanced_weights(&strata, &y, 0.0)
            .unwrap()
            .iter()
            .all(|&v| v == 1.0));
        let h = stratum_balanced_weights(&strata, &y, 0.5).unwrap();
        let m = (2f64.sqrt() * 2.0 + third.sqrt() * 6.0) / 8.0;
        assert!((h[0] as f64 - 2f64.sqrt() / m).abs() < 1e-6);
        assert!((h.iter().map(|&v| v as f64).sum::<f64>() - 8.0).abs() < 1e-5);
    }

    #[test]
    fn one_class_strata_and_bad_input() {
        // stratum 1 holds negatives only: weight 1 before scaling, like the balanced ones
        // that already have the overall mix.
        let w = stratum_balanced_weights(&[0, 0, 1, 1], &[1, 0, 0, 0], 1.0).unwrap();
        // overall share of class 1 = 1/4: stratum 0 gives 1/4×2/1 = 0.5 and 3/4×2/1 = 1.5
        let raw = [0.5, 1.5, 1.0, 1.0];
        for (a, b) in w.iter().zip(raw) {
            assert!((*a as f64 - b).abs() < 1e-6, "{w:?}");
        }
        assert!(stratum_balanced_weights(&[0], &[0, 1], 1.0).is_err());
        assert!(stratum_balanced_weights(&[], &[], 1.0).is_err());
        assert!(stratum_balanced_weights(&[0, 0], &[0, 1], 1.5).is_err());
        assert!(stratum_balanced_weights(&[0, 0], &[0, 1], f64::NAN).is_err());
    }
}
