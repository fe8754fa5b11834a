//! Training and validating models the leak-free way: grouped folds (identical rows and named
//! groups never straddle a split), an early-stopping holdout of whole groups, row weights
//! that balance classes within strata, thresholds calibrated out of fold, and
//! cross-validation of table and sequence models. Front ends only parse and print.

use crate::table::{TableLearner, TableModel};
use crate::train::{label_set, Observer, TrainOptions};
use crate::{Input, Model, ModelError};
use mallard_tables::Table;
use std::time::Instant;

fn invalid(msg: impl Into<String>) -> ModelError {
    ModelError::Invalid(msg.into())
}

fn eval_error(e: mallard_eval::EvalError) -> ModelError {
    ModelError::Invalid(e.to_string())
}

/// Per-row strata of a table (e.g. the PE kind read from its EMBER columns), or `None`
/// when the table has no such columns.
pub type StrataFn = fn(&Table) -> Option<Vec<usize>>;

/// How a table model is trained, beyond the learner's own parameters.
#[derive(Clone, Debug)]
pub struct TableFit {
    pub learner: TableLearner,
    /// The feature set whose columns the table holds (recorded so the model can scan files).
    pub feature_set: Option<String>,
    /// Seed of every split.
    pub seed: u64,
    /// Share of rows (whole groups, stratified) held out for early stopping.
    pub holdout: Option<f32>,
    /// Weights that balance the classes within each stratum, to this power (0: none, 1:
    /// fully), with the function giving every row's stratum.
    pub balance: Option<(StrataFn, f64)>,
}

/// Each row's group for splitting: identical feature rows share one, and so do rows with
/// the same named group (family, package), transitively.
pub fn table_groups(table: &Table) -> Result<Vec<usize>, ModelError> {
    let keys: Vec<Vec<u32>> = (0..table.n_rows())
        .map(|i| table.row(i).iter().map(|v| v.to_bits()).collect())
        .collect();
    let named: Vec<Option<&str>> = match &table.groups {
        Some(g) => g
            .iter()
            .map(|s| Some(s.as_str()).filter(|s| !s.is_empty()))
            .collect(),
        None => vec![None; keys.len()],
    };
    mallard_eval::groups_union(&keys, &named).map_err(eval_error)
}

/// Stratified k-fold test indices of whole groups ([`table_groups`]).
pub fn table_folds(
    table: &Table,
    y: &[usize],
    k: usize,
    seed: u64,
) -> Result<Vec<Vec<usize>>, ModelError> {
    let groups = table_groups(table)?;
    mallard_eval::stratified_group_kfold(&groups, y, k, seed).map_err(eval_error)
}

fn class_indices(table: &Table) -> Result<(Vec<String>, Vec<usize>), ModelError> {
    let names = label_set(&table.labels);
    let y = table
        .label_indices(&names)
        .map_err(|e| invalid(e.to_string()))?;
    Ok((names, y))
}

/// The row weights `fit` asks for (`None` without balancing).
pub fn row_weights(table: &Table, fit: &TableFit) -> Result<Option<Vec<f32>>, ModelError> {
    let Some((strata, power)) = fit.balance else {
        return Ok(None);
    };
    let kinds = strata(table).ok_or_else(|| {
        invalid("balancing by kind needs a table whose columns tell the kind (EMBER v2)")
    })?;
    let (_, y) = class_indices(table)?;
    mallard_eval::stratum_balanced_weights(&kinds, &y, power)
        .map(Some)
        .map_err(eval_error)
}

/// Trains a table model; with a holdout share, fold 1 of round(1/share) grouped, stratified
/// folds is set aside for early stopping.
pub fn fit_table(table: &Table, fit: &TableFit) -> Result<TableModel, ModelError> {
    let set = fit.feature_set.as_deref();
    let Some(share) = fit.holdout else {
        let w = row_weights(table, fit)?;
        return TableModel::train_weighted(table, w.as_deref(), None, &fit.learner, set);
    };
    if !(share > 0.0 && share < 0.5) {
        return Err(invalid(format!(
            "the validation share must be in (0, 0.5), got {share}"
        )));
    }
    let (_, y) = class_indices(table)?;
    let k = ((1.0 / share).round() as usize).max(2);
    let folds = table_folds(table, &y, k, fit.seed)?;
    let valid = folds.first().cloned().unwrap_or_default();
    let train_idx = mallard_eval::complement(table.n_rows(), &valid);
    let (tr, va) = (table.select_rows(&train_idx), table.select_rows(&valid));
    let w = row_weights(&tr, fit)?;
    TableModel::train_weighted(&tr, w.as_deref(), Some(&va), &fit.learner, set)
}

/// [`fit_table`] that consumes the table when no holdout is asked for, so boosted trees can
/// free its values once binned.
pub fn fit_table_owned(table: Table, fit: &TableFit) -> Result<TableModel, ModelError> {
    if fit.holdout.is_some() {
        return fit_table(&table, fit);
    }
    let w = row_weights(&table, fit)?;
    TableModel::train_owned(
        table,
        w.as_deref(),
        &fit.learner,
        fit.feature_set.as_deref(),
    )
}

/// One operating point: the threshold for at most `max_fpr` out-of-fold false positives
/// and the out-of-fold detection rate there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OperatingPoint {
    pub max_fpr: f64,
    pub threshold: f32,
    pub oof_tpr: f64,
}

/// A threshold calibrated on out-of-fold scores of the training table.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The point asked for.
    pub chosen: OperatingPoint,
    /// It and the standard points (1% and 0.1% FPR), highest FPR first.
    pub points: Vec<OperatingPoint>,
    pub folds: usize,
}

impl Calibration {
    /// What a model file records under `training.calibration`.
    pub fn to_json(&self) -> serde_json::Value {
        let points: Vec<serde_json::Value> = self
            .points
            .iter()
            .map(|p| serde_json::json!({ "max_fpr": p.max_fpr, "threshold": p.threshold, "oof_tpr": p.oof_tpr }))
            .collect();
        serde_json::json!({
            "max_fpr": self.chosen.max_fpr,
            "folds": self.folds,
            "threshold": self.chosen.threshold,
            "oof_tpr": self.chosen.oof_tpr,
            "points": points,
        })
    }
}

/// The operating points recorded with every calibration, beside the one asked for.
pub const STANDARD_FPRS: [f64; 2] = [0.01, 0.001];

/// Out-of-fold P(positive class) of the table's rows (`k` grouped folds): the negative
/// rows' scores and the positive rows' scores.
pub fn out_of_fold(
    table: &Table,
    fit: &TableFit,
    k: usize,
) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
    let (names, y) = class_indices(table)?;
    let pos = crate::positive_index(&names)
        .ok_or_else(|| invalid("calibration needs a two-class table"))?;
    let folds = table_folds(table, &y, k, fit.seed)?;
    let (mut neg, mut posv) = (Vec::new(), Vec::new());
    for test in &folds {
        let train_idx = mallard_eval::complement(table.n_rows(), test);
        let m = fit_table(&table.select_rows(&train_idx), fit)?;
        let inputs: Vec<Input> = test
            .iter()
            .map(|&i| Input::Features(table.row(i)))
            .collect();
        let p = m.predict_proba(&inputs)?;
        for (j, &i) in test.iter().enumerate() {
            let s = p[j * names.len() + pos];
            if y[i] == pos {
                posv.push(s)
            } else {
                neg.push(s)
            }
        }
    }
    Ok((neg, posv))
}

/// Calibrates the threshold for `max_fpr` on 5-fold out-of-fold scores.
pub fn calibrate(table: &Table, fit: &TableFit, max_fpr: f64) -> Result<Calibration, ModelError> {
    if !(max_fpr > 0.0 && max_fpr < 1.0) {
        return Err(invalid(format!(
            "the false-positive rate to calibrate for must be in (0, 1), got {max_fpr}"
        )));
    }
    let folds = 5;
    let (neg, pos) = out_of_fold(table, fit, folds)?;
    let point = |f: f64| {
        let (threshold, oof_tpr) = mallard_eval::threshold_at_fpr(&neg, &pos, f);
        OperatingPoint {
            max_fpr: f,
            threshold,
            oof_tpr,
        }
    };
    let mut fprs = STANDARD_FPRS.to_vec();
    if !fprs.contains(&max_fpr) {
        fprs.push(max_fpr);
    }
    fprs.sort_by(|a, b| b.total_cmp(a));
    Ok(Calibration {
        chosen: point(max_fpr),
        points: fprs.into_iter().map(point).collect(),
        folds,
    })
}

/// Out-of-fold predictions of a cross-validation run.
#[derive(Clone, Debug)]
pub struct CvRun {
    /// Class names, index = class id.
    pub names: Vec<String>,
    /// Every row's class id.
    pub y: Vec<usize>,
    /// Test rows of each fold.
    pub folds: Vec<Vec<usize>>,
    /// Per fold: probabilities, row-major `[test rows, classes]`.
    pub probs: Vec<Vec<f32>>,
    pub positive: Option<usize>,
    /// Groups that never straddle a fold.
    pub n_groups: usize,
    /// Time spent training, all folds.
    pub train_secs: f64,
}

impl CvRun {
    /// Per-fold and pooled metrics.
    pub fn metrics(&self) -> Result<mallard_eval::CrossValidation, ModelError> {
        let fold_y: Vec<Vec<usize>> = self
            .folds
            .iter()
            .map(|t| t.iter().map(|&i| self.y[i]).collect())
            .collect();
        let fp: Vec<mallard_eval::FoldPredictions> = fold_y
            .iter()
            .zip(&self.probs)
            .map(|(y, p)| mallard_eval::FoldPredictions {
                y_true: y,
                probs: p,
            })
            .collect();
        mallard_eval::pooled(&self.names, &fp, self.positive, self.positive.map(|_| 0.5))
            .map_err(eval_error)
    }

    /// Rows in fold order with their class ids and probabilities (for prediction files).
    pub fn pooled_rows(&self) -> (Vec<usize>, Vec<usize>, Vec<f32>) {
        let order: Vec<usize> = self.folds.iter().flatten().copied().collect();
        let ys = order.iter().map(|&i| self.y[i]).collect();
        (order, ys, self.probs.concat())
    }
}

/// A finished fold, for progress messages.
pub struct FoldDone {
    pub fold: usize,
    pub of: usize,
    pub train_rows: usize,
    pub test_rows: usize,
}

fn check_classes(model: &dyn Model, names: &[String], fold: usize) -> Result<(), ModelError> {
    if model.meta().labels != names {
        return Err(invalid(format!(
            "fold {} lacks a class: its model has labels {:?}",
            fold + 1,
            model.meta().labels
        )));
    }
    Ok(())
}

/// Grouped, stratified k-fold cross-validation of a table model; with `train_fraction`
/// below 1 each fold trains on that stratified share of its training groups (a learning
/// curve point) while the test folds stay the same. `fixed`: each fold's test rows given
/// ahead (a [`mallard_eval::FoldPlan`] shared with other detectors) instead of made here.
pub fn cross_validate_table(
    table: &Table,
    fit: &TableFit,
    k: usize,
    train_fraction: Option<f64>,
    fixed: Option<Vec<Vec<usize>>>,
    obs: &mut dyn Observer,
) -> Result<CvRun, ModelError> {
    if let Some(f) = train_fraction {
        if !(f > 0.0 && f <= 1.0) {
            return Err(invalid(format!(
                "the training share must be in (0, 1], got {f}"
            )));
        }
    }
    let (names, y) = class_indices(table)?;
    let groups = table_groups(table)?;
    let folds = match fixed {
        Some(folds) => {
            warn_straddling(&groups, &folds, obs);
            folds
        }
        None => {
            mallard_eval::stratified_group_kfold(&groups, &y, k, fit.seed).map_err(eval_error)?
        }
    };
    let fit_fold = |f: usize, train_idx: Vec<usize>| -> Result<FoldModel, ModelError> {
        let mut train_idx = train_idx;
        if let Some(frac) = train_fraction.filter(|&f| f < 1.0) {
            let sub_g: Vec<usize> = train_idx.iter().map(|&i| groups[i]).collect();
            let sub_y: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
            let (_, keep) = mallard_eval::stratified_group_split(
                &sub_g,
                &sub_y,
                frac,
                fit.seed ^ (f as u64 + 1),
            )
            .map_err(eval_error)?;
            train_idx = keep.iter().map(|&j| train_idx[j]).collect();
        }
        let t = Instant::now();
        let model = fit_table(&table.select_rows(&train_idx), fit)?;
        Ok((Box::new(model), train_idx.len(), t.elapsed().as_secs_f64()))
    };
    let score = |m: &dyn Model, test: &[usize]| {
        let inputs: Vec<Input> = test
            .iter()
            .map(|&i| Input::Features(table.row(i)))
            .collect();
        m.predict_proba(&inputs)
    };
    run_folds(
        names,
        y.clone(),
        &groups,
        folds,
        &fit_fold,
        &score,
        &mut |f| obs.fold_done(f),
    )
}

/// Fixed folds (a fold file) may split what this data's own grouping keeps together
/// (identical rows, named groups): worth saying, since those rows then test near-copies
/// of what trained.
pub fn warn_straddling(groups: &[usize], folds: &[Vec<usize>], obs: &mut dyn Observer) {
    let n = mallard_eval::straddling_groups(groups, folds);
    if n > 0 {
        obs.warning(&format!(
            "{n} groups of identical or grouped rows straddle the fold file's folds: \
             those rows are tested beside near-copies of training rows"
        ));
    }
}

/// Labelled API-call samples for cross-validation (same order everywhere).
#[derive(Clone, Copy)]
pub struct SampleSet<'a> {
    pub seqs: &'a [Vec<String>],
    pub labels: &'a [String],
    /// A sample's file hash, when known: samples of one file share a group.
    pub sha256: &'a [Option<String>],
}

/// Grouped, stratified k-fold cross-validation of an API-call model: samples with the same
/// API set or the same sha256 share a group, so near-duplicates never straddle a fold.
pub fn cross_validate_samples(
    samples: SampleSet<'_>,
    opts: &TrainOptions,
    k: usize,
    seed: u64,
    obs: &mut dyn Observer,
) -> Result<CvRun, ModelError> {
    let SampleSet {
        seqs,
        labels,
        sha256,
    } = samples;
    if seqs.len() != labels.len() || seqs.len() != sha256.len() {
        return Err(invalid("sequences, labels and hashes differ in number"));
    }
    let names = label_set(labels);
    let y: Vec<usize> = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap_or(0))
        .collect();
    let groups = mallard_eval::groups_union(seqs, sha256).map_err(eval_error)?;
    // The observer is borrowed by one fold at a time.
    let obs = std::cell::RefCell::new(obs);
    let fit_fold = |_: usize, train_idx: Vec<usize>| -> Result<FoldModel, ModelError> {
        let tr_x: Vec<Vec<String>> = train_idx.iter().map(|&i| seqs[i].clone()).collect();
        let tr_y: Vec<String> = train_idx.iter().map(|&i| labels[i].clone()).collect();
        let t = Instant::now();
        let model = crate::train::train(&tr_x, &tr_y, opts, *obs.borrow_mut())?;
        Ok((model, train_idx.len(), t.elapsed().as_secs_f64()))
    };
    let score = |m: &dyn Model, test: &[usize]| {
        let inputs: Vec<Input> = test.iter().map(|&i| Input::Apis(&seqs[i])).collect();
        m.predict_proba(&inputs)
    };
    let mut on_fold = |f: &FoldDone| obs.borrow_mut().fold_done(f);
    let folds = mallard_eval::stratified_group_kfold(&groups, &y, k, seed).map_err(eval_error)?;
    run_folds(names, y, &groups, folds, &fit_fold, &score, &mut on_fold)
}

/// A fold's model, its training rows and seconds spent training.
type FoldModel = (Box<dyn Model>, usize, f64);

/// Scores a fold's test rows with its model.
type ScoreFold<'a> = dyn Fn(&dyn Model, &[usize]) -> Result<Vec<f32>, ModelError> + 'a;

/// The fold loop both cross-validations share: stratified folds of whole groups, a model per
/// fold from `fit_fold(fold, training rows)`, its test rows scored by `score`.
#[allow(clippy::too_many_arguments)]
fn run_folds(
    names: Vec<String>,
    y: Vec<usize>,
    groups: &[usize],
    folds: Vec<Vec<usize>>,
    fit_fold: &dyn Fn(usize, Vec<usize>) -> Result<FoldModel, ModelError>,
    score: &ScoreFold<'_>,
    on_fold: &mut dyn FnMut(&FoldDone),
) -> Result<CvRun, ModelError> {
    let mut run = CvRun {
        n_groups: groups.iter().max().map_or(0, |m| m + 1),
        names,
        y,
        folds: Vec::new(),
        probs: Vec::new(),
        positive: None,
        train_secs: 0.0,
    };
    for (f, test) in folds.iter().enumerate() {
        let train_idx = mallard_eval::complement(groups.len(), test);
        let (model, train_rows, secs) = fit_fold(f, train_idx)?;
        run.train_secs += secs;
        check_classes(model.as_ref(), &run.names, f)?;
        run.positive = model.meta().positive;
        run.probs.push(score(model.as_ref(), test)?);
        on_fold(&FoldDone {
            fold: f + 1,
            of: folds.len(),
            train_rows,
            test_rows: test.len(),
        });
    }
    run.folds = folds;
    Ok(run)
}

/// The sha256 of a file's contents, lower-case hex. Regular files only: a FIFO or
/// /dev/zero given as a dataset or manifest must not hang.
pub fn file_sha256(p: &std::path::Path) -> Result<String, ModelError> {
    use sha2::{Digest, Sha256};
    let (mut f, _) = mallard_io::open_regular(p)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| ModelError::Io(p.display().to_string(), e))?;
    Ok(format!("{:x}", h.finalize()))
}

/// What a model was trained from, for its file: the command, each dataset file and manifest
/// with its sha256 (folders: none), and the rows (samples) per label.
pub fn provenance<S: AsRef<str>>(
    command: &str,
    datasets: &[&std::path::Path],
    manifests: &[std::path::PathBuf],
    labels: impl IntoIterator<Item = S>,
) -> Result<serde_json::Value, ModelError> {
    let mut files = Vec::new();
    for d in datasets {
        let sha = if d.is_file() {
            serde_json::Value::String(file_sha256(d)?)
        } else {
            serde_json::Value::Null
        };
        files.push(serde_json::json!({ "dataset": d.display().to_string(), "sha256": sha }));
    }
    for m in manifests {
        files.push(
            serde_json::json!({ "manifest": m.display().to_string(), "sha256": file_sha256(m)? }),
        );
    }
    // One pass, no copy of the labels: a table may have tens of millions of rows.
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for l in labels {
        let l = l.as_ref();
        match counts.get_mut(l) {
            Some(n) => *n += 1,
            None => {
                counts.insert(l.to_string(), 1);
            }
        }
    }
    let mut rows = serde_json::Map::new();
    for l in label_set(counts.keys()) {
        let n = counts.get(&l).copied().unwrap_or(0);
        rows.insert(l, n.into());
    }
    Ok(serde_json::json!({
        "command": command,
        "files": files,
        "rows": rows,
        "mallard": env!("CARGO_PKG_VERSION"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 rows, two features; `x` is informative but noisy, rows come in pairs of identical
    /// values (which must share a fold), and every fifth row names a group.
    fn table() -> Table {
        let mut rng = mallard_eval::SplitMix64::new(7);
        let (mut values, mut labels, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..100 {
            let m = i % 2 == 1;
            let x = if m { 1.0 } else { 0.0 }
                + (((rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * 1.6;
            let z = (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
            for _ in 0..2 {
                values.extend([x, z]);
                labels.push(if m { "malicious" } else { "benign" });
                groups.push(if i % 5 == 0 {
                    format!("g{}", i % 3)
                } else {
                    String::new()
                });
            }
        }
        let columns = vec!["x".to_string(), "z".to_string()];
        let mut t = Table::numeric(columns, values, labels.into_iter().collect());
        t.groups = Some(groups);
        t
    }

    fn fit() -> TableFit {
        TableFit {
            learner: TableLearner::Gbdt(crate::GbdtParams {
                n_estimators: 20,
                min_data_in_leaf: 5,
                n_threads: Some(1),
                ..Default::default()
            }),
            feature_set: None,
            seed: 3,
            holdout: None,
            balance: None,
        }
    }

    #[test]
    fn cv_folds_cover_every_row_once_and_keep_groups_whole() {
        let t = table();
        struct Count(usize);
        impl Observer for Count {
            fn fold_done(&mut self, _: &FoldDone) {
                self.0 += 1;
            }
        }
        let mut seen = Count(0);
        let run = cross_validate_table(&t, &fit(), 4, None, None, &mut seen).unwrap();
        assert_eq!(seen.0, 4);
        let mut fold_of = vec![usize::MAX; t.n_rows()];
        for (f, rows) in run.folds.iter().enumerate() {
            for &r in rows {
                assert_eq!(fold_of[r], usize::MAX, "row {r} twice");
                fold_of[r] = f;
            }
        }
        assert!(fold_of.iter().all(|&f| f < 4));
        let groups = t.groups.as_ref().unwrap();
        for a in 0..t.n_rows() {
            for b in 0..t.n_rows() {
                let same_named = !groups[a].is_empty() && groups[a] == groups[b];
                if t.row(a) == t.row(b) || same_named {
                    assert_eq!(fold_of[a], fold_of[b], "rows {a} and {b} straddle folds");
                }
            }
        }
        let m = run.metrics().unwrap();
        assert!(m.pooled.roc_auc.unwrap() > 0.7, "{:?}", m.pooled.roc_auc);
    }

    #[test]
    fn calibrated_threshold_keeps_out_of_fold_false_positives_under_the_rate() {
        let t = table();
        let c = calibrate(&t, &fit(), 0.05).unwrap();
        assert_eq!(c.chosen.max_fpr, 0.05);
        let fprs: Vec<f64> = c.points.iter().map(|p| p.max_fpr).collect();
        assert_eq!(fprs, [0.05, 0.01, 0.001]);
        // Recompute the out-of-fold scores (same seed, same folds and trees) and count.
        let (neg, pos) = out_of_fold(&t, &fit(), 5).unwrap();
        assert_eq!(neg.len() + pos.len(), t.n_rows());
        let fp = neg.iter().filter(|&&s| s >= c.chosen.threshold).count();
        assert!(
            fp as f64 <= 0.05 * neg.len() as f64,
            "{fp} of {}",
            neg.len()
        );
        let tp = pos.iter().filter(|&&s| s >= c.chosen.threshold).count();
        assert_eq!(tp as f64 / pos.len() as f64, c.chosen.oof_tpr);
        let j = c.to_json();
        assert_eq!(j["points"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn holdout_and_balance_are_checked() {
        let t = table();
        let mut f = fit();
        f.holdout = Some(0.7);
        assert!(fit_table(&t, &f)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("(0, 0.5)"));
        f.holdout = None;
        f.balance = Some((|_: &Table| None, 1.0));
        assert!(fit_table(&t, &f)
            .err()
            .unwrap()
            .to_string()
            .contains("kind"));
        f.balance = Some((
            |t: &Table| Some((0..t.n_rows()).map(|i| i % 2).collect()),
            1.0,
        ));
        let w = row_weights(&t, &f).unwrap().unwrap();
        assert_eq!(w.len(), t.n_rows());
    }
}
