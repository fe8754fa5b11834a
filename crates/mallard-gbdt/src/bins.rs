//! Per-feature quantile bins: the learner only ever sees bin indices, which is what makes
//! split finding a scan over at most 255 histogram cells instead of over sorted values.

/// Cut points of one feature: bin `b` holds values `v` with `cuts[b-1] < v <= cuts[b]`;
/// NaN has its own bin after the last value bin.
#[derive(Debug, Clone)]
pub(crate) struct FeatureBins {
    pub cuts: Vec<f32>,
    /// False when no cut can leave `min_data_in_leaf` training rows on both sides: such a
    /// feature is never split (LightGBM's `feature_pre_filter`). This matters because leaf
    /// row counts are estimated from hessians during growth, which alone could let a rare
    /// value be split off.
    pub usable: bool,
    /// LightGBM leaves its "most frequent" bin out of stored histograms and, when that is
    /// bin 0, recovers bin 0's row count as the leaf's count minus the other bins' estimated
    /// counts. That changes the estimate in scans that accumulate from bin 0 (NaN to the
    /// right), so we track the same condition to reproduce LightGBM's trees.
    pub implied_first: bool,
    /// The training data had NaNs in this feature (LightGBM's missing type "NaN"): splits
    /// then try NaN on both sides. Otherwise NaN at prediction is read as 0.
    pub has_nan: bool,
}

/// Rows sampled (evenly spaced, deterministic) to place the cuts, as LightGBM does with
/// `bin_construct_sample_cnt`.
const SAMPLE: usize = 200_000;

impl FeatureBins {
    /// Number of value bins (NaN bin not counted).
    pub fn n_bins(&self) -> usize {
        self.cuts.len() + 1
    }

    /// Index of the NaN bin.
    pub fn nan_bin(&self) -> usize {
        self.cuts.len() + 1
    }

    pub fn bin(&self, v: f32) -> u8 {
        if v.is_nan() {
            self.nan_bin() as u8
        } else {
            self.cuts.partition_point(|&c| c < v) as u8
        }
    }

    /// Fits cuts on the (non-NaN) values. Zero gets a bin of its own (sparse counts and
    /// flags are mostly 0) and negatives and positives are binned separately, sharing the
    /// bin budget by row count. Within a side: with at most the budget of distinct values,
    /// one bin per value but each bin holding `min_data_in_bin` rows; with more,
    /// equal-frequency bins in which a value holding a bin's worth of rows stays alone.
    /// Edges fall midway between neighbouring distinct values.
    pub fn fit(values: &mut Vec<f32>, max_bin: usize, min_data_in_bin: usize) -> Self {
        let all = values.len();
        values.retain(|v| !v.is_nan());
        // the NaN bin counts against max_bin when the feature has NaNs
        let has_nan = values.len() < all;
        let max_bin = if has_nan { max_bin - 1 } else { max_bin };
        values.sort_by(|a, b| a.total_cmp(b));
        let mut distinct: Vec<(f32, usize)> = Vec::new();
        for &v in values.iter() {
            match distinct.last_mut() {
                // -0.0 and 0.0 compare equal: one value
                Some((last, n)) if *last == v => *n += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let n_neg = distinct.partition_point(|d| d.0 < 0.0);
        let n_nonpos = distinct.partition_point(|d| d.0 <= 0.0);
        let (neg, rest) = distinct.split_at(n_neg);
        let (_zero, pos) = rest.split_at(n_nonpos - n_neg);
        let cnt = |d: &[(f32, usize)]| d.iter().map(|x| x.1).sum::<usize>();
        let (cn, cp) = (cnt(neg), cnt(pos));
        // one bin is always reserved for zero (empty if no value is 0), so a feature's
        // positive side gets at most max_bin - 1 bins, like LightGBM's
        let budget = max_bin.saturating_sub(1).max(1);
        let neg_bins = if cn == 0 {
            0
        } else {
            (((cn as f64 / (cn + cp) as f64) * budget as f64) as usize).max(1)
        };
        let mut cuts = greedy(neg, neg_bins, min_data_in_bin);
        let used = if neg.is_empty() { 0 } else { cuts.len() + 1 };
        // the zero bin exists even when no value is 0, so bin numbers follow LightGBM's
        if !neg.is_empty() {
            // negatives | zero: the largest f32 below 0 keeps every negative value left
            cuts.push(-f32::from_bits(1));
        }
        if !pos.is_empty() {
            // zero | positives
            cuts.push(0.0);
        }
        cuts.extend(greedy(
            pos,
            budget.saturating_sub(used).max(1),
            min_data_in_bin,
        ));
        cuts.dedup();
        // bin indices (and the NaN bin after them) must fit in a u8
        cuts.truncate(254);
        FeatureBins {
            cuts,
            usable: true,
            implied_first: false,
            has_nan,
        }
    }
}

/// Cuts within one sorted run of distinct values (see [`FeatureBins::fit`]).
fn greedy(d: &[(f32, usize)], max_bin: usize, min_data_in_bin: usize) -> Vec<f32> {
    let mut cuts = Vec::new();
    if d.len() < 2 || max_bin < 2 {
        return cuts;
    }
    let min_data = min_data_in_bin.max(1);
    if d.len() <= max_bin {
        let mut acc = 0;
        for i in 0..d.len() - 1 {
            acc += d[i].1;
            if acc >= min_data {
                cuts.push(midpoint(d[i].0, d[i + 1].0));
                acc = 0;
            }
        }
        return cuts;
    }
    let total: usize = d.iter().map(|x| x.1).sum();
    let first_mean = total as f64 / max_bin as f64;
    let big: Vec<bool> = d.iter().map(|x| x.1 as f64 >= first_mean).collect();
    let n_big = big.iter().filter(|&&b| b).count();
    let mut rest_bins = max_bin.saturating_sub(n_big).max(1);
    let mut rest_cnt: usize = d
        .iter()
        .zip(&big)
        .filter(|(_, &b)| !b)
        .map(|(x, _)| x.1)
        .sum();
    let mut mean = rest_cnt as f64 / rest_bins as f64;
    let mut acc = 0usize;
    for i in 0..d.len() - 1 {
        if !big[i] {
            rest_cnt -= d[i].1;
        }
        acc += d[i].1;
        if big[i] || acc as f64 >= mean || (big[i + 1] && acc as f64 >= (mean * 0.5).max(1.0)) {
            cuts.push(midpoint(d[i].0, d[i + 1].0));
            if cuts.len() + 1 >= max_bin {
                break;
            }
            acc = 0;
            if !big[i] {
                rest_bins = rest_bins.saturating_sub(1).max(1);
                mean = rest_cnt as f64 / rest_bins as f64;
            }
        }
    }
    cuts
}

/// A cut strictly between `a < b` in f32, so that `v <= cut` sends `a` left and `b` right
/// even after the model is stored as f32.
fn midpoint(a: f32, b: f32) -> f32 {
    let m = ((a as f64 + b as f64) / 2.0) as f32;
    if m >= b || !m.is_finite() {
        a
    } else {
        m
    }
}

/// Fits all features' bins on row-major `x` and returns them with the column-major bin
/// matrix (`bins[f][row]`).
pub(crate) fn bin_matrix(
    x: &[f32],
    n_rows: usize,
    n_features: usize,
    max_bin: usize,
    min_data_in_bin: usize,
    min_data_in_leaf: usize,
) -> (Vec<FeatureBins>, Vec<Vec<u8>>) {
    use rayon::prelude::*;
    let step = n_rows.div_ceil(SAMPLE).max(1);
    (0..n_features)
        .into_par_iter()
        .map(|f| {
            let mut sample: Vec<f32> = (0..n_rows)
                .step_by(step)
                .map(|r| x[r * n_features + f])
                .collect();
            let mut fb = FeatureBins::fit(&mut sample, max_bin, min_data_in_bin);
            let col: Vec<u8> = (0..n_rows).map(|r| fb.bin(x[r * n_features + f])).collect();
            let mut counts = vec![0usize; fb.nan_bin() + 1];
            for &b in &col {
                counts[b as usize] += 1;
            }
            // LightGBM's most frequent bin: the fullest one (first on ties) if it holds at
            // least 70 % of the rows, else the bin of 0
            let (mut most, mut top) = (0usize, 0usize);
            for (b, &c) in counts.iter().enumerate() {
                if c > top {
                    (most, top) = (b, c);
                }
            }
            let zero_bin = fb.bin(0.0) as usize;
            if most != zero_bin && (top as f64) < 0.7 * n_rows as f64 {
                most = zero_bin;
            }
            fb.implied_first = most == 0;
            let need = min_data_in_leaf.max(1);
            let mut left = 0;
            fb.usable = counts[..counts.len() - 1].iter().any(|&c| {
                left += c;
                left >= need && n_rows - left >= need
            });
            (fb, col)
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_get_their_own_bins() {
        // bin 0 is the (here empty) zero bin
        let mut v = vec![3.0, 1.0, f32::NAN, 1.0, 2.0, 3.0];
        let b = FeatureBins::fit(&mut v, 255, 1);
        assert_eq!(b.cuts, vec![0.0, 1.5, 2.5]);
        assert_eq!(
            (b.bin(1.0), b.bin(1.5), b.bin(1.6), b.bin(9.0)),
            (1, 1, 2, 3)
        );
        assert_eq!(b.bin(f32::NAN), 4);
        assert_eq!((b.bin(-0.0), b.bin(-5.0)), (0, 0));
    }

    #[test]
    fn rare_values_share_a_bin_and_zero_has_its_own() {
        // counts 1, 1, 1, 5, 1, 1 with min_data_in_bin 3: {1,2,3} {4} {5,6}
        let mut v = vec![1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0, 4.0, 5.0, 6.0];
        let b = FeatureBins::fit(&mut v, 255, 3);
        assert_eq!(b.cuts, vec![0.0, 3.5, 4.5]);
        // zero alone between the signs, whatever its count
        let mut v = vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0];
        let b = FeatureBins::fit(&mut v, 255, 3);
        assert_eq!(b.cuts, vec![-f32::from_bits(1), 0.0]);
        assert_eq!(
            (b.bin(-1.0), b.bin(-0.0), b.bin(0.0), b.bin(0.5)),
            (0, 1, 1, 2)
        );
    }

    #[test]
    fn many_values_are_quantile_binned() {
        // 999 distinct positive values into 9 bins (one of the 10 is reserved for zero)
        let mut v: Vec<f32> = (1..=999).map(|i| i as f32).collect();
        let b = FeatureBins::fit(&mut v, 10, 3);
        assert_eq!(b.n_bins(), 10);
        let mut counts = [0usize; 10];
        for i in 1..=999 {
            counts[b.bin(i as f32) as usize] += 1;
        }
        assert!(
            counts[0] == 0 && counts[1..].iter().all(|&c| c == 111),
            "{counts:?}"
        );
        // a heavy value (half the rows) gets a bin of its own
        let mut v: Vec<f32> = (0..500)
            .map(|i| i as f32)
            .chain(std::iter::repeat_n(0.0, 500))
            .collect();
        let b = FeatureBins::fit(&mut v, 10, 3);
        assert_eq!(b.bin(0.0), 0);
        assert_eq!(b.bin(1.0), 1);
        assert_eq!(b.cuts[0], 0.0);
    }

    #[test]
    fn cuts_separate_adjacent_floats() {
        let a = 1.0f32;
        let c = f32::from_bits(a.to_bits() + 1);
        let mut v = vec![a, c];
        let b = FeatureBins::fit(&mut v, 255, 1);
        assert_eq!((b.bin(a), b.bin(c)), (1, 2));
    }
}
