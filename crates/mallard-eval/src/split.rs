//! Group-aware, stratified splits.
//!
//! MalBehavD-V1 repeats identical API sequences under different hashes: a random
//! row split puts copies on both sides and inflates every metric. Rows are
//! therefore grouped (same sequence, optionally same sha256) and whole groups are
//! assigned to one side. All randomness comes from [`SplitMix64`] with the given
//! seed, so a seed reproduces the same split on every platform.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::rng::SplitMix64;
use crate::EvalError;

/// Dense group id per row: equal keys get equal ids, numbered by first appearance.
pub fn group_ids<T: Hash + Eq>(keys: &[T]) -> Vec<usize> {
    let mut ids: HashMap<&T, usize> = HashMap::with_capacity(keys.len());
    keys.iter()
        .map(|k| {
            let next = ids.len();
            *ids.entry(k).or_insert(next)
        })
        .collect()
}

fn find(parent: &mut [usize], mut x: usize) -> usize {
    while parent[x] != x {
        parent[x] = parent[parent[x]];
        x = parent[x];
    }
    x
}

/// Groups rows that share `keys_a` (e.g. the sequence) *or* a present `keys_b`
/// (e.g. the sha256), transitively (union–find). Ids are dense, by first appearance.
pub fn groups_union<A: Hash + Eq, B: Hash + Eq>(
    keys_a: &[A],
    keys_b: &[Option<B>],
) -> Result<Vec<usize>, EvalError> {
    if keys_a.len() != keys_b.len() {
        return Err(EvalError::LengthMismatch {
            what: "keys_b",
            expected: keys_a.len(),
            got: keys_b.len(),
        });
    }
    let a = group_ids(keys_a);
    let mut parent: Vec<usize> = (0..keys_a.len()).collect();
    let mut first_a: HashMap<usize, usize> = HashMap::new();
    let mut first_b: HashMap<&B, usize> = HashMap::new();
    for i in 0..keys_a.len() {
        let mut roots = vec![*first_a.entry(a[i]).or_insert(i)];
        if let Some(b) = &keys_b[i] {
            roots.push(*first_b.entry(b).or_insert(i));
        }
        for r in roots {
            let (x, y) = (find(&mut parent, i), find(&mut parent, r));
            if x != y {
                parent[x.max(y)] = x.min(y);
            }
        }
    }
    let roots: Vec<usize> = (0..keys_a.len()).map(|i| find(&mut parent, i)).collect();
    Ok(group_ids(&roots))
}

/// Rows of `0..n` not in `idx` (e.g. the training rows of a fold), ascending.
pub fn complement(n: usize, idx: &[usize]) -> Vec<usize> {
    let mut taken = vec![false; n];
    for &i in idx {
        if i < n {
            taken[i] = true;
        }
    }
    (0..n).filter(|&i| !taken[i]).collect()
}

/// Group indices per label, labels ascending (BTreeMap: deterministic order).
type ByLabel = BTreeMap<usize, Vec<usize>>;

struct Group {
    rows: Vec<usize>,
    /// Majority label; the grouping by label lives in the map beside it.
    #[cfg_attr(not(test), allow(dead_code))]
    label: usize,
}

/// Groups with their rows and majority label (ties: smallest label), and the
/// group indices per label in ascending label order.
fn collect_groups(groups: &[usize], y: &[usize]) -> Result<(Vec<Group>, ByLabel), EvalError> {
    if groups.len() != y.len() {
        return Err(EvalError::LengthMismatch {
            what: "y",
            expected: groups.len(),
            got: y.len(),
        });
    }
    if groups.is_empty() {
        return Err(EvalError::Empty);
    }
    let dense = group_ids(groups);
    let n_groups = dense.iter().max().map_or(0, |m| m + 1);
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); n_groups];
    for (i, &g) in dense.iter().enumerate() {
        rows[g].push(i);
    }
    let mut out = Vec::with_capacity(n_groups);
    let mut by_label: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (g, rows) in rows.into_iter().enumerate() {
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        for &i in &rows {
            *counts.entry(y[i]).or_default() += 1;
        }
        // max_by_key returns the last maximum; iterate in reverse so the smallest label wins.
        let label = counts
            .iter()
            .rev()
            .max_by_key(|(_, &c)| c)
            .map_or(0, |(&l, _)| l);
        by_label.entry(label).or_default().push(g);
        out.push(Group { rows, label });
    }
    Ok((out, by_label))
}

/// Shuffles each label's groups, then orders them largest first (stable, so equal
/// sizes stay in shuffled order): big groups are placed while there is room to
/// balance. Which fold gets the biggest group does not matter: every fold is tested.
fn ordered_groups(
    all: &[Group],
    by_label: &BTreeMap<usize, Vec<usize>>,
    seed: u64,
) -> Vec<(usize, Vec<usize>)> {
    let mut rng = SplitMix64::new(seed);
    by_label
        .iter()
        .map(|(&label, gs)| {
            let mut gs = gs.clone();
            rng.shuffle(&mut gs);
            gs.sort_by_key(|&g| std::cmp::Reverse(all[g].rows.len()));
            (label, gs)
        })
        .collect()
}

/// K folds of whole groups, stratified by label; returns each fold's test rows (ascending).
///
/// A group whose rows disagree on the label counts as its majority label (ties:
/// the smallest label). Per label, groups go largest first to the fold with the
/// fewest rows of that label (ties: fewest rows overall, then lowest fold), so
/// per-label counts differ between folds by at most the largest group size.
/// Errors unless `2 <= k <= number of groups`.
pub fn stratified_group_kfold(
    groups: &[usize],
    y: &[usize],
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, EvalError> {
    let (all, by_label) = collect_groups(groups, y)?;
    if k < 2 || k > all.len() {
        return Err(EvalError::InvalidFolds {
            k,
            groups: all.len(),
        });
    }
    let mut folds: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut total = vec![0usize; k];
    for (_, gs) in ordered_groups(&all, &by_label, seed) {
        let mut in_label = vec![0usize; k];
        for g in gs {
            let f = (0..k)
                .min_by_key(|&f| (in_label[f], total[f], f))
                .unwrap_or(0);
            let size = all[g].rows.len();
            in_label[f] += size;
            total[f] += size;
            folds[f].extend_from_slice(&all[g].rows);
        }
    }
    for f in &mut folds {
        f.sort_unstable();
    }
    Ok(folds)
}

/// One train/test split of whole groups, stratified by label; returns `(train, test)` rows
/// (ascending).
///
/// For each label (majority label per group, as in [`stratified_group_kfold`]) the groups
/// are shuffled and, in that order, put into test whenever they still fit under
/// `round(test_fraction * rows of the label)`; the rest go to train. Shuffled order
/// (not largest first) gives a big group the same chance as any other to be tested.
/// Errors if either side ends up empty.
pub fn stratified_group_split(
    groups: &[usize],
    y: &[usize],
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), EvalError> {
    if !(test_fraction > 0.0 && test_fraction < 1.0) {
        return Err(EvalError::InvalidFraction(test_fraction));
    }
    let (all, by_label) = collect_groups(groups, y)?;
    let (mut train, mut test) = (Vec::new(), Vec::new());
    let mut rng = SplitMix64::new(seed);
    for gs in by_label.values() {
        let mut gs = gs.clone();
        rng.shuffle(&mut gs);
        let rows: usize = gs.iter().map(|&g| all[g].rows.len()).sum();
        let target = (test_fraction * rows as f64).round() as usize;
        let mut taken = 0usize;
        for g in gs {
            let size = all[g].rows.len();
            if taken + size <= target {
                taken += size;
                test.extend_from_slice(&all[g].rows);
            } else {
                train.extend_from_slice(&all[g].rows);
            }
        }
    }
    if test.is_empty() {
        return Err(EvalError::EmptySplit("test"));
    }
    if train.is_empty() {
        return Err(EvalError::EmptySplit("train"));
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Synthetic data: groups of size 1..=4, 70/30 labels, some mixed groups.
    fn synthetic(seed: u64) -> (Vec<usize>, Vec<usize>) {
        let mut rng = SplitMix64::new(seed);
        let (mut groups, mut y) = (Vec::new(), Vec::new());
        for g in 0..300 {
            let label = usize::from(rng.below(10) < 3);
            for _ in 0..=rng.below(4) {
                groups.push(g * 7 + 3); // sparse, non-dense ids
                let flip = rng.below(20) == 0;
                y.push(if flip { 1 - label } else { label });
            }
        }
        // Interleave rows so group members are not adjacent.
        let mut order: Vec<usize> = (0..groups.len()).collect();
        rng.shuffle(&mut order);
        (
            order.iter().map(|&i| groups[i]).collect(),
            order.iter().map(|&i| y[i]).collect(),
        )
    }

    #[test]
    fn group_ids_dense_first_appearance() {
        assert_eq!(group_ids(&["b", "a", "b", "c", "a"]), vec![0, 1, 0, 2, 1]);
        assert!(group_ids::<u8>(&[]).is_empty());
    }

    #[test]
    fn union_is_transitive() {
        // Rows 0-1 share sequence, 1-2 share hash, 3 alone, 4-0 share hash.
        let seq = ["x", "x", "y", "z", "w"];
        let sha = [Some(9u64), Some(1), Some(1), None, Some(9)];
        assert_eq!(groups_union(&seq, &sha).unwrap(), vec![0, 0, 0, 1, 0]);
        let sha2: [Option<u64>; 5] = [None; 5];
        assert_eq!(groups_union(&seq, &sha2).unwrap(), vec![0, 0, 1, 2, 3]);
        assert!(groups_union(&seq, &sha2[..2]).is_err());
    }

    #[test]
    fn majority_label_with_tie_to_smallest() {
        let (g, by) = collect_groups(&[5, 5, 5, 6, 6], &[1, 2, 2, 3, 1]).unwrap();
        assert_eq!(g[0].label, 2);
        assert_eq!(g[1].label, 1);
        assert_eq!(by.keys().copied().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn kfold_properties() {
        let (groups, y) = synthetic(11);
        let n = groups.len();
        let k = 5;
        let folds = stratified_group_kfold(&groups, &y, k, 42).unwrap();
        assert_eq!(folds.len(), k);
        // Every row in exactly one test fold.
        let mut seen = vec![0u8; n];
        for f in &folds {
            for &i in f {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1));
        // No group on both sides of any fold.
        for f in &folds {
            let test_groups: HashSet<usize> = f.iter().map(|&i| groups[i]).collect();
            for i in complement(n, f) {
                assert!(!test_groups.contains(&groups[i]));
            }
        }
        // Balance: per majority-label row counts differ by at most the largest group (4).
        let (all, _) = collect_groups(&groups, &y).unwrap();
        let dense = group_ids(&groups);
        for label in 0..2 {
            let counts: Vec<usize> = folds
                .iter()
                .map(|f| f.iter().filter(|&&i| all[dense[i]].label == label).count())
                .collect();
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 4, "label {label}: {counts:?}");
        }
        let sizes: Vec<usize> = folds.iter().map(Vec::len).collect();
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 8, "{sizes:?}");
        // Deterministic for a seed, different for another.
        assert_eq!(folds, stratified_group_kfold(&groups, &y, k, 42).unwrap());
        assert_ne!(folds, stratified_group_kfold(&groups, &y, k, 43).unwrap());
    }

    #[test]
    fn kfold_errors() {
        assert_eq!(
            stratified_group_kfold(&[], &[], 2, 0),
            Err(EvalError::Empty)
        );
        assert_eq!(
            stratified_group_kfold(&[1, 1, 2], &[0, 0, 1], 3, 0),
            Err(EvalError::InvalidFolds { k: 3, groups: 2 })
        );
        assert!(stratified_group_kfold(&[1, 2], &[0, 1], 1, 0).is_err());
        assert!(stratified_group_kfold(&[1, 2], &[0], 2, 0).is_err());
        // k == groups: one group per fold.
        let f = stratified_group_kfold(&[4, 4, 9], &[0, 0, 1], 2, 0).unwrap();
        assert!(f.contains(&vec![0, 1]) && f.contains(&vec![2]));
    }

    #[test]
    fn split_properties() {
        let (groups, y) = synthetic(5);
        let n = groups.len();
        let (train, test) = stratified_group_split(&groups, &y, 0.2, 42).unwrap();
        assert_eq!(train.len() + test.len(), n);
        assert_eq!(complement(n, &test), train);
        let test_groups: HashSet<usize> = test.iter().map(|&i| groups[i]).collect();
        assert!(train.iter().all(|i| !test_groups.contains(&groups[*i])));
        // Per majority label, test share within one group size (4 rows) of 20 %
        // (in practice exact: singletons fill the gap).
        let (all, _) = collect_groups(&groups, &y).unwrap();
        let dense = group_ids(&groups);
        for label in 0..2 {
            let total = (0..n).filter(|&i| all[dense[i]].label == label).count() as f64;
            let t = test
                .iter()
                .filter(|&&i| all[dense[i]].label == label)
                .count() as f64;
            assert!(
                (t - 0.2 * total).abs() <= 4.0,
                "label {label}: {t} of {total}"
            );
        }
        assert_eq!(
            (train.clone(), test.clone()),
            stratified_group_split(&groups, &y, 0.2, 42).unwrap()
        );
        assert_ne!(test, stratified_group_split(&groups, &y, 0.2, 7).unwrap().1);
    }

    #[test]
    fn split_does_not_always_test_the_biggest_group() {
        // One group of 10 rows and 90 singletons, all one label.
        let groups: Vec<usize> = (0..100usize).map(|i| i.saturating_sub(9)).collect();
        let y = vec![0; 100];
        let hits = (0..100)
            .filter(|&seed| {
                let (_, test) = stratified_group_split(&groups, &y, 0.2, seed).unwrap();
                assert_eq!(test.len(), 20);
                test.contains(&0)
            })
            .count();
        assert!((3..60).contains(&hits), "{hits}");
    }

    #[test]
    fn split_errors() {
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                stratified_group_split(&[1, 2], &[0, 1], bad, 0),
                Err(EvalError::InvalidFraction(_))
            ));
        }
        // One group cannot be split.
        assert_eq!(
            stratified_group_split(&[1, 1], &[0, 1], 0.5, 0),
            Err(EvalError::EmptySplit("test"))
        );
        assert_eq!(
            stratified_group_split(&[1, 2], &[0, 0], 0.9, 0),
            Err(EvalError::EmptySplit("train"))
        );
        assert_eq!(
            stratified_group_split(&[1, 2], &[0, 0], 0.1, 0),
            Err(EvalError::EmptySplit("test"))
        );
    }
}
