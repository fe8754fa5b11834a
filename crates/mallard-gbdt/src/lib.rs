//! Gradient-boosted decision trees for mallard's static (tabular) features, in pure Rust.
//!
//! The learner follows LightGBM's design and defaults closely enough to grow the *same
//! trees* as Python LightGBM 4.7 on f32-representable data (`tests/golden.rs` checks raw
//! scores and TreeSHAP values to 1e-6): at most 255 quantile bins per feature with zero in a
//! bin of its own, NaN in a bin of its own sent to whichever side lowers the loss, leaf-wise
//! growth up to `num_leaves`, gain `GL²/(HL+λ) + GR²/(HR+λ) − G²/(H+λ)`, leaf values
//! `−G/(H+λ) × learning_rate`, `min_data_in_leaf` counted from hessian shares, boosting
//! from the average (log-odds / log class priors). Binary log-loss and multi-class softmax
//! (one tree per class per round); early stopping on a validation set; split/gain importance;
//! per-prediction contributions by TreeSHAP or Saabas ([`Explain`]).
//!
//! Training is deterministic: each histogram bin sums its rows in a fixed order whatever the
//! thread count, and near-ties between features go to the lowest feature index.
//!
//! Models serialise as f32 tensors plus a JSON-able [`GbdtMeta`] ([`Gbdt::to_tensors`],
//! [`Gbdt::from_parts`]) for mallard's safetensors model file; leaf values and the initial
//! score are rounded to f32 during training so a loaded model predicts bit-identically.
//!
//! [`dnn`] holds the small feed-forward network (Saxe & Berlin style) for the same tables.

mod bins;
mod grow;
mod tree;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tree::{Node, Nodes, Tree};

/// The most leaves a tree may grow (see `GbdtParams::validate`).
const MAX_LEAVES: usize = 1 << 23;

/// Everything that can go wrong training, predicting or loading; never a panic.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum GbdtError {
    #[error("invalid parameter: {0}")]
    Param(String),
    #[error("invalid data: {0}")]
    Data(String),
    #[error("invalid model: {0}")]
    Model(String),
}

/// Training parameters; [`Default`] is LightGBM's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GbdtParams {
    pub n_estimators: usize,
    pub learning_rate: f64,
    pub num_leaves: usize,
    /// `None`: no depth limit (leaf-wise growth is bounded by `num_leaves`).
    pub max_depth: Option<usize>,
    pub min_data_in_leaf: usize,
    /// Count a split side's rows for `min_data_in_leaf` by its share of the leaf's hessian
    /// (`n_leaf × H_side / H_leaf`), as LightGBM does, instead of exactly. This lets a split
    /// set apart a few hard (high-hessian) rows from many confidently classified ones, and it
    /// is needed to grow the same trees as LightGBM (`tests/golden.rs`).
    pub min_data_by_hessian: bool,
    pub min_sum_hessian_in_leaf: f64,
    pub lambda_l2: f64,
    pub min_gain_to_split: f64,
    pub max_bin: usize,
    pub min_data_in_bin: usize,
    /// Stop when the validation log loss has not improved for this many rounds (needs a
    /// validation set); the model keeps the best round.
    pub early_stopping_rounds: Option<usize>,
    /// Worker threads; `None` uses rayon's global pool (all cores). Results do not depend on it.
    pub n_threads: Option<usize>,
    /// Share of the features each tree may split on, drawn anew per tree (LightGBM's
    /// `feature_fraction`); 1.0 uses all. Below 1 no single column can carry the model,
    /// which helps when a few columns separate the training sources but not the classes.
    pub feature_fraction: f64,
    /// Seed of the per-tree feature draw.
    pub seed: u64,
    /// Monotone constraint per feature: +1 the score may only rise with the value, -1 only
    /// fall, 0 free; empty: none. Enforced as LightGBM's "basic" method (a split on a
    /// constrained feature must order its children's outputs, and their subtrees stay on
    /// their side of the midpoint), so the score is monotone in every such feature.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub monotone: Vec<i8>,
    /// Largest absolute leaf output before shrinkage (LightGBM's `max_delta_step`); 0: no
    /// cap. Bounds what any one tree, and so any one split, can add to a score.
    #[serde(skip_serializing_if = "is_zero")]
    pub max_delta_step: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

impl Default for GbdtParams {
    fn default() -> Self {
        GbdtParams {
            n_estimators: 100,
            learning_rate: 0.1,
            num_leaves: 31,
            max_depth: None,
            min_data_in_leaf: 20,
            min_data_by_hessian: true,
            min_sum_hessian_in_leaf: 1e-3,
            lambda_l2: 0.0,
            min_gain_to_split: 0.0,
            max_bin: 255,
            min_data_in_bin: 3,
            early_stopping_rounds: None,
            n_threads: None,
            feature_fraction: 1.0,
            seed: 42,
            monotone: Vec::new(),
            max_delta_step: 0.0,
        }
    }
}

impl GbdtParams {
    fn validate(&self) -> Result<(), GbdtError> {
        let bad = |m: &str| Err(GbdtError::Param(m.to_string()));
        if self.n_estimators == 0 {
            return bad("n_estimators must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate must be finite and > 0");
        }
        if self.num_leaves < 2 {
            return bad("num_leaves must be at least 2");
        }
        // A tree of num_leaves leaves has 2 * num_leaves - 1 nodes, whose indices a model
        // file (and a tree in memory, laid out as the file) holds as exact f32 values.
        if self.num_leaves > MAX_LEAVES {
            return bad("num_leaves must be at most 8388608 (2^23)");
        }
        if !(2..=255).contains(&self.max_bin) {
            return bad("max_bin must be in 2..=255");
        }
        if !(self.lambda_l2.is_finite() && self.lambda_l2 >= 0.0) {
            return bad("lambda_l2 must be finite and >= 0");
        }
        if !(self.min_sum_hessian_in_leaf.is_finite() && self.min_sum_hessian_in_leaf >= 0.0) {
            return bad("min_sum_hessian_in_leaf must be finite and >= 0");
        }
        if !self.min_gain_to_split.is_finite() {
            return bad("min_gain_to_split must be finite");
        }
        if self.max_depth == Some(0) {
            return bad("max_depth must be at least 1");
        }
        if !(self.max_delta_step.is_finite() && self.max_delta_step >= 0.0) {
            return bad("max_delta_step must be finite and >= 0");
        }
        if self.monotone.iter().any(|m| !(-1..=1).contains(m)) {
            return bad("monotone constraints must be -1, 0 or 1");
        }
        Ok(())
    }
}

/// What a stored model needs besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtMeta {
    pub n_features: usize,
    /// 2 for the binary objective (one tree per round, output P(class 1)).
    pub n_classes: usize,
    pub n_trees: usize,
    /// Rounds kept (early stopping keeps the best one).
    pub n_rounds: usize,
    pub params: GbdtParams,
}

impl GbdtMeta {
    /// Raw scores per row: 1 for binary, `n_classes` otherwise.
    pub fn n_outputs(&self) -> usize {
        if self.n_classes == 2 {
            1
        } else {
            self.n_classes
        }
    }
}

/// Which importance to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Importance {
    /// Number of splits on the feature.
    Split,
    /// Total loss reduction of those splits.
    Gain,
}

/// How [`Gbdt::contributions`] splits a raw score among the features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    /// Exact Shapley values of the trees (TreeSHAP, with training-row counts as cover, as
    /// LightGBM's `pred_contrib`): consistent and fair to correlated features; the choice for
    /// explaining a verdict.
    TreeShap,
    /// Saabas path attribution: each split on the row's path credits its feature with the
    /// change in node value. Cheaper, but biased toward splits near the leaves.
    Saabas,
}

/// Training data: row-major `x` of `n_features` columns and class indices `y`.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    pub x: &'a [f32],
    pub n_features: usize,
    pub y: &'a [usize],
}

/// A little-endian f32 tensor as a model file holds it (see [`Gbdt::from_le_tensors`]).
#[derive(Debug, Clone, Copy)]
pub struct LeTensor<'s, 'd> {
    pub shape: &'s [usize],
    /// `4 * shape.product()` bytes.
    pub data: &'d [u8],
}

/// A trained boosted-tree classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Gbdt {
    meta: GbdtMeta,
    init: Vec<f32>,
    trees: Vec<Tree>,
}

fn check_x(x: &[f32], n_features: usize) -> Result<usize, GbdtError> {
    mallard_tables::row_count(x.len(), n_features).map_err(GbdtError::Data)
}

fn sigmoid(s: f64) -> f64 {
    1.0 / (1.0 + (-s).exp())
}

/// Softmax of `s` into `p`, stable for large scores.
fn softmax(s: &[f64], p: &mut [f64]) {
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut z = 0.0;
    for (pi, &si) in p.iter_mut().zip(s) {
        *pi = (si - m).exp();
        z += *pi;
    }
    for pi in p.iter_mut() {
        *pi /= z;
    }
}

/// Each training row's class: one byte when there are at most 256 classes (a binary table
/// of ten million rows keeps 10 MB of labels instead of 80 as `usize`).
enum ClassIds {
    Small(Vec<u8>),
    Wide(Vec<u32>),
}

impl ClassIds {
    fn new(y: Vec<u32>, n_classes: usize) -> Self {
        if n_classes <= 256 {
            ClassIds::Small(y.into_iter().map(|c| c as u8).collect())
        } else {
            ClassIds::Wide(y)
        }
    }

    #[inline(always)]
    fn get(&self, i: usize) -> usize {
        match self {
            ClassIds::Small(v) => v[i] as usize,
            ClassIds::Wide(v) => v[i] as usize,
        }
    }
}

/// Class indices as `u32` (what training takes per row).
fn class_ids(y: &[usize]) -> Result<Vec<u32>, GbdtError> {
    y.iter()
        .enumerate()
        .map(|(i, &c)| {
            u32::try_from(c).map_err(|_| GbdtError::Data(format!("row {i}: class {c} too large")))
        })
        .collect()
}

/// Mean log loss of raw scores (probabilities clipped at 1e-15).
fn log_loss(scores: &[f64], y: &[usize], k_out: usize) -> f64 {
    let mut total = 0.0;
    let mut p = vec![0.0; k_out.max(2)];
    for (i, &yi) in y.iter().enumerate() {
        let pi = if k_out == 1 {
            let q = sigmoid(scores[i]);
            if yi == 1 {
                q
            } else {
                1.0 - q
            }
        } else {
            softmax(&scores[i * k_out..(i + 1) * k_out], &mut p[..k_out]);
            p[yi]
        };
        total -= pi.clamp(1e-15, 1.0).ln();
    }
    total / y.len().max(1) as f64
}

impl Gbdt {
    /// Trains on `train`; `valid` is only used for early stopping.
    pub fn fit(
        train: Dataset<'_>,
        n_classes: usize,
        params: &GbdtParams,
        valid: Option<Dataset<'_>>,
    ) -> Result<Gbdt, GbdtError> {
        Self::fit_weighted(train, None, n_classes, params, valid)
    }

    /// [`Gbdt::fit`] with a weight per training row (LightGBM's semantics: gradients,
    /// hessians and the starting score are weighted; `min_data_in_leaf` still counts rows).
    pub fn fit_weighted(
        train: Dataset<'_>,
        weights: Option<&[f32]>,
        n_classes: usize,
        params: &GbdtParams,
        valid: Option<Dataset<'_>>,
    ) -> Result<Gbdt, GbdtError> {
        let x = std::borrow::Cow::Borrowed(train.x);
        let y = class_ids(train.y)?;
        Self::fit_cow(x, train.n_features, y, weights, n_classes, params, valid)
    }

    /// [`Gbdt::fit_weighted`] that takes the row-major values and frees them once they are
    /// binned, before boosting: training then holds one byte per cell instead of five.
    /// Class indices come as `u32`, half the memory of `usize` on a narrow table.
    pub fn fit_owned(
        x: Vec<f32>,
        n_features: usize,
        y: Vec<u32>,
        weights: Option<&[f32]>,
        n_classes: usize,
        params: &GbdtParams,
    ) -> Result<Gbdt, GbdtError> {
        let x = std::borrow::Cow::Owned(x);
        Self::fit_cow(x, n_features, y, weights, n_classes, params, None)
    }

    fn fit_cow(
        x: std::borrow::Cow<'_, [f32]>,
        nf: usize,
        y: Vec<u32>,
        weights: Option<&[f32]>,
        n_classes: usize,
        params: &GbdtParams,
        valid: Option<Dataset<'_>>,
    ) -> Result<Gbdt, GbdtError> {
        params.validate()?;
        if !params.monotone.is_empty() && params.monotone.len() != nf {
            return Err(GbdtError::Param(format!(
                "{} monotone constraints for {nf} features",
                params.monotone.len()
            )));
        }
        if let Some(w) = weights {
            if w.len() != y.len() {
                return Err(GbdtError::Data(format!(
                    "{} weights for {} rows",
                    w.len(),
                    y.len()
                )));
            }
            if let Some((i, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v > 0.0))
            {
                return Err(GbdtError::Data(format!(
                    "row {i}: weight {v} (weights must be finite and positive)"
                )));
            }
        }
        match params.n_threads {
            Some(n) if n > 0 => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| GbdtError::Param(format!("thread pool: {e}")))?
                .install(|| Self::fit_inner(x, nf, y, weights, n_classes, params, valid)),
            _ => Self::fit_inner(x, nf, y, weights, n_classes, params, valid),
        }
    }

    fn fit_inner(
        x: std::borrow::Cow<'_, [f32]>,
        nf: usize,
        y: Vec<u32>,
        weights: Option<&[f32]>,
        n_classes: usize,
        params: &GbdtParams,
        valid: Option<Dataset<'_>>,
    ) -> Result<Gbdt, GbdtError> {
        let n = check_x(&x, nf)?;
        if n == 0 {
            return Err(GbdtError::Data("no training rows".into()));
        }
        if n > u32::MAX as usize {
            return Err(GbdtError::Data("too many rows".into()));
        }
        if n_classes < 2 {
            return Err(GbdtError::Param("need at least 2 classes".into()));
        }
        fn check_y(
            ys: impl ExactSizeIterator<Item = usize>,
            rows: usize,
            n_classes: usize,
            what: &str,
        ) -> Result<(), GbdtError> {
            if ys.len() != rows {
                return Err(GbdtError::Data(format!(
                    "{what}: {rows} rows but {} labels",
                    ys.len()
                )));
            }
            let mut ys = ys.enumerate();
            if let Some((i, c)) = ys.find(|&(_, c)| c >= n_classes) {
                return Err(GbdtError::Data(format!(
                    "{what} row {i}: class {c} >= {n_classes}"
                )));
            }
            Ok(())
        }
        check_y(y.iter().map(|&c| c as usize), n, n_classes, "train")?;
        let y = ClassIds::new(y, n_classes);
        let valid = match valid {
            Some(v) => {
                if v.n_features != nf {
                    return Err(GbdtError::Data(format!(
                        "validation has {} features, train {nf}",
                        v.n_features
                    )));
                }
                let nv = check_x(v.x, nf)?;
                check_y(v.y.iter().copied(), nv, n_classes, "validation")?;
                Some((v, nv))
            }
            None => None,
        };
        if params.early_stopping_rounds.is_some() && valid.is_none() {
            return Err(GbdtError::Param(
                "early stopping needs a validation set".into(),
            ));
        }

        let k_out = if n_classes == 2 { 1 } else { n_classes };
        let (mappers, bins) = bins::bin_matrix(
            &x,
            n,
            nf,
            params.max_bin,
            params.min_data_in_bin,
            params.min_data_in_leaf,
        );
        // Boosting reads the bins only; owned values go now.
        drop(x);

        // boost from the (weighted) average: log-odds, or log class priors for softmax
        let weight = |i: usize| weights.map_or(1.0, |w| w[i] as f64);
        let mut counts = vec![0f64; n_classes];
        for i in 0..n {
            counts[y.get(i)] += weight(i);
        }
        let total: f64 = counts.iter().sum();
        let init: Vec<f32> = if k_out == 1 {
            let p = (counts[1] / total).clamp(1e-15, 1.0 - 1e-15);
            vec![(p / (1.0 - p)).ln() as f32]
        } else {
            counts
                .iter()
                .map(|&c| (c / total).max(1e-15).ln() as f32)
                .collect()
        };

        let mut scores: Vec<f64> = (0..n)
            .flat_map(|_| init.iter().map(|&v| v as f64))
            .collect();
        let mut vscores: Vec<f64> = valid
            .as_ref()
            .map(|(_, nv)| {
                (0..*nv)
                    .flat_map(|_| init.iter().map(|&v| v as f64))
                    .collect()
            })
            .unwrap_or_default();
        // f32 like LightGBM's score_t: histograms still sum in f64, and a narrow table of
        // millions of rows saves eight bytes a row.
        let mut grad = vec![0f32; n * k_out];
        let mut hess = vec![0f32; n * k_out];
        let column = if k_out == 1 { 0 } else { n };
        let mut gk = vec![0f32; column];
        let mut hk = vec![0f32; column];
        let mut grower = grow::Grower::new(&mappers, &bins, params, n);
        let mut trees: Vec<Tree> = Vec::with_capacity(params.n_estimators * k_out);
        let mut best = (f64::INFINITY, 0usize);
        let factor = if k_out > 1 {
            k_out as f64 / (k_out as f64 - 1.0)
        } else {
            1.0
        };

        for round in 0..params.n_estimators {
            // gradients of the loss at the current scores
            grad.par_chunks_mut(k_out)
                .zip(hess.par_chunks_mut(k_out))
                .enumerate()
                .for_each_init(
                    || vec![0.0; k_out],
                    |p, (i, (g, h))| {
                        let y = y.get(i);
                        let w = weight(i);
                        if k_out == 1 {
                            let p = sigmoid(scores[i]);
                            g[0] = (w * (p - (y == 1) as u8 as f64)) as f32;
                            h[0] = (w * (p * (1.0 - p)).max(1e-16)) as f32;
                        } else {
                            softmax(&scores[i * k_out..(i + 1) * k_out], p);
                            for c in 0..k_out {
                                g[c] = (w * (p[c] - (y == c) as u8 as f64)) as f32;
                                h[c] = (w * (factor * p[c] * (1.0 - p[c])).max(1e-16)) as f32;
                            }
                        }
                    },
                );
            for c in 0..k_out {
                // One output: the gradients are already one column.
                let (gc, hc) = if k_out == 1 {
                    (&grad[..], &hess[..])
                } else {
                    for i in 0..n {
                        gk[i] = grad[i * k_out + c];
                        hk[i] = hess[i * k_out + c];
                    }
                    (&gk[..], &hk[..])
                };
                let tree = grower.grow(gc, hc, &mut scores, k_out, c);
                if let Some((v, nv)) = &valid {
                    for r in 0..*nv {
                        vscores[r * k_out + c] += tree.predict(&v.x[r * nf..(r + 1) * nf]) as f64;
                    }
                }
                trees.push(tree);
            }
            if let (Some((v, _)), Some(patience)) = (&valid, params.early_stopping_rounds) {
                let loss = log_loss(&vscores, v.y, k_out);
                if loss < best.0 {
                    best = (loss, round);
                } else if round - best.1 >= patience {
                    break;
                }
            }
        }
        let n_rounds = if params.early_stopping_rounds.is_some() {
            best.1 + 1
        } else {
            trees.len() / k_out
        };
        trees.truncate(n_rounds * k_out);
        Ok(Gbdt {
            meta: GbdtMeta {
                n_features: nf,
                n_classes,
                n_trees: trees.len(),
                n_rounds,
                params: params.clone(),
            },
            init,
            trees,
        })
    }

    pub fn meta(&self) -> &GbdtMeta {
        &self.meta
    }

    /// Raw scores (log-odds, or softmax logits), row-major `[rows, n_outputs]`.
    pub fn predict_raw(&self, x: &[f32]) -> Result<Vec<f64>, GbdtError> {
        let nf = self.meta.n_features;
        let n = check_x(x, nf)?;
        let k = self.meta.n_outputs();
        let mut out = vec![0.0; n * k];
        let one = |(r, o): (usize, &mut [f64])| {
            let row = &x[r * nf..(r + 1) * nf];
            for (c, oc) in o.iter_mut().enumerate() {
                *oc = self.init[c] as f64;
            }
            // Summed in tree order, as one tree at a time would.
            let mut vals = [0f32; tree::GROUP];
            for (g, ts) in self.trees.chunks(tree::GROUP).enumerate() {
                Tree::leaves(ts, row, &mut vals);
                for (j, v) in vals[..ts.len()].iter().enumerate() {
                    o[(g * tree::GROUP + j) % k] += *v as f64;
                }
            }
        };
        if n * self.trees.len() >= 20_000 {
            out.par_chunks_mut(k).enumerate().for_each(one);
        } else {
            out.chunks_mut(k).enumerate().for_each(one);
        }
        Ok(out)
    }

    /// Class probabilities, row-major `[rows, n_classes]` (binary: `[1 − p, p]`).
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<f32>, GbdtError> {
        let raw = self.predict_raw(x)?;
        let k = self.meta.n_outputs();
        let mut out = Vec::with_capacity(raw.len() / k * self.meta.n_classes);
        let mut p = vec![0.0; k];
        for s in raw.chunks(k) {
            if k == 1 {
                let q = sigmoid(s[0]);
                out.extend([(1.0 - q) as f32, q as f32]);
            } else {
                softmax(s, &mut p);
                out.extend(p.iter().map(|&v| v as f32));
            }
        }
        Ok(out)
    }

    /// Per-feature split count or total gain, summed over all trees (and classes).
    pub fn feature_importance(&self, kind: Importance) -> Vec<f64> {
        let mut imp = vec![0.0; self.meta.n_features];
        for t in &self.trees {
            for n in t.nodes.iter() {
                if let Some(f) = n.feature() {
                    imp[f as usize] += match kind {
                        Importance::Split => 1.0,
                        Importance::Gain => n.gain as f64,
                    };
                }
            }
        }
        imp
    }

    /// Why this row scored as it did: row-major `[n_outputs, n_features + 1]` raw-score
    /// contributions; the last column is the bias (the score with no feature known). Each
    /// output's row sums to its raw score. See [`Explain`] for the two methods.
    pub fn contributions(&self, row: &[f32], how: Explain) -> Result<Vec<f64>, GbdtError> {
        self.contributions_with(row, how, 1)
    }

    /// [`Gbdt::contributions`] with TreeSHAP's trees shared among `threads` threads (the
    /// caller's and `threads - 1` more), for one row explained while cores are idle. The
    /// result is the same, bit for bit, for any number of threads: each tree's
    /// contributions are summed on their own and added to the total in tree order.
    pub fn contributions_with(
        &self,
        row: &[f32],
        how: Explain,
        threads: usize,
    ) -> Result<Vec<f64>, GbdtError> {
        let nf = self.meta.n_features;
        if row.len() != nf {
            return Err(GbdtError::Data(format!(
                "row has {} values, model expects {nf}",
                row.len()
            )));
        }
        let k = self.meta.n_outputs();
        let mut out = vec![0.0; k * (nf + 1)];
        for c in 0..k {
            out[c * (nf + 1) + nf] = self.init[c] as f64;
        }
        if how == Explain::Saabas {
            for (t, tree) in self.trees.iter().enumerate() {
                let c = t % k;
                let o = &mut out[c * (nf + 1)..(c + 1) * (nf + 1)];
                let bias = tree.saabas(row, &mut o[..nf]);
                o[nf] += bias;
            }
            return Ok(out);
        }
        // Trees in chunks, taken in turn by whichever thread is free; each chunk's sums
        // are kept as (slot in `out`, value) and added in chunk order at the end.
        const CHUNK: usize = 25;
        let n_chunks = self.trees.len().div_ceil(CHUNK);
        let threads = threads.clamp(1, n_chunks.max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let work = || {
            let mut scratch = tree::Scratch::new(nf);
            let mut done: Vec<(usize, Vec<(u32, f64)>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n_chunks {
                    return done;
                }
                let mut sums = Vec::new();
                let end = ((i + 1) * CHUNK).min(self.trees.len());
                for t in i * CHUNK..end {
                    let base = (t % k) * (nf + 1);
                    self.trees[t].shap_sums(row, &mut scratch, &mut |f, v| {
                        sums.push(((base + f as usize) as u32, v))
                    });
                }
                done.push((i, sums));
            }
        };
        let mut chunks = if threads == 1 {
            work()
        } else {
            // Helpers hand their chunks over as they finish instead of being joined: a join
            // waits for the thread's exit and its thread-local clean-up (~0.1 ms of a
            // one-file scan), the scope only for the closures to return.
            let handed = std::sync::Mutex::new(Vec::new());
            let mut all = std::thread::scope(|s| {
                for _ in 1..threads {
                    let help = || {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
                        if let Ok(mut h) = handed.lock() {
                            h.push(r);
                        }
                    };
                    let _ = std::thread::Builder::new().spawn_scoped(s, help);
                }
                work()
            });
            for r in handed.into_inner().unwrap_or_else(|p| p.into_inner()) {
                // A helper's panic is this explanation's, as it would be inline.
                all.extend(r.unwrap_or_else(|p| std::panic::resume_unwind(p)));
            }
            all
        };
        chunks.sort_unstable_by_key(|c| c.0);
        for (_, sums) in chunks {
            for (slot, v) in sums {
                if let Some(o) = out.get_mut(slot as usize) {
                    *o += v;
                }
            }
        }
        for (t, tree) in self.trees.iter().enumerate() {
            out[(t % k) * (nf + 1) + nf] += tree.expected_value();
        }
        Ok(out)
    }

    /// Tensors for the model file: `gbdt.init` `[n_outputs]`, `gbdt.tree_sizes` `[n_trees]`
    /// and `gbdt.nodes` `[total_nodes, 8]` with columns feature (−1 for a leaf), threshold,
    /// default_left, left, right, value, count, gain; child indices are within the tree.
    pub fn to_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let total: usize = self.trees.iter().map(|t| t.nodes.len()).sum();
        let mut nodes = Vec::with_capacity(total * 8);
        for t in &self.trees {
            for n in t.nodes.iter() {
                nodes.extend(n.to_row());
            }
        }
        vec![
            ("gbdt.init".into(), vec![self.init.len()], self.init.clone()),
            (
                "gbdt.tree_sizes".into(),
                vec![self.trees.len()],
                self.trees.iter().map(|t| t.nodes.len() as f32).collect(),
            ),
            ("gbdt.nodes".into(), vec![total, 8], nodes),
        ]
    }

    /// Rebuilds a model from [`Gbdt::meta`] and the tensors of [`Gbdt::to_tensors`]
    /// (looked up by name); checks every shape and link, and refuses trees deeper than
    /// the default `Caps::max_tree_depth`.
    pub fn from_parts(
        meta: GbdtMeta,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<Gbdt, GbdtError> {
        Self::from_parts_capped(meta, tensors, mallard_io::Caps::default().max_tree_depth)
    }

    /// [`Gbdt::from_parts`] with trees at most `max_depth` deep (the root is depth 0).
    /// The depth is checked without recursion, so that TreeSHAP's recursion is bounded.
    pub fn from_parts_capped(
        meta: GbdtMeta,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
        max_depth: usize,
    ) -> Result<Gbdt, GbdtError> {
        let get = |name: &str| {
            tensors
                .iter()
                .find(|t| t.0 == name)
                .ok_or_else(|| GbdtError::Model(format!("missing tensor {name}")))
        };
        let (init, sizes, nodes) = (
            get("gbdt.init")?,
            get("gbdt.tree_sizes")?,
            get("gbdt.nodes")?,
        );
        // Eight values a node; any other length fails the shape check.
        let rows: &[Node] = bytemuck::try_cast_slice(&nodes.2).unwrap_or(&[]);
        Self::build(
            meta,
            (&init.1, init.2.clone()),
            (&sizes.1, &sizes.2),
            (&nodes.1, nodes.2.len(), NodeSource::Copied(rows)),
            None,
            max_depth,
            false,
        )
    }

    /// [`Gbdt::from_parts_capped`] from the little-endian bytes of the tensors `gbdt.init`,
    /// `gbdt.tree_sizes` and `gbdt.nodes` (in that order; `None`: missing), as a model file
    /// holds them: the nodes are copied as they lie (decoded value by value only where the
    /// bytes are not aligned for f32 or the machine is big-endian).
    ///
    /// `ahead`: the same nodes' trees, checked while the model's settings were read
    /// ([`TreesAhead`]); used when they agree with the settings, else checked again here.
    pub fn from_le_tensors(
        meta: GbdtMeta,
        tensors: [Option<LeTensor<'_, '_>>; 3],
        ahead: Option<&TreesAhead<'_>>,
        max_depth: usize,
    ) -> Result<Gbdt, GbdtError> {
        Self::from_le(meta, tensors, None, ahead, max_depth, false)
    }

    /// [`Gbdt::from_le_tensors`] from tensors that live as long as the program (a model
    /// compiled into it): the trees read their nodes where they lie, without a copy, when
    /// the bytes are aligned for f32 on a little-endian machine. Checked alike.
    pub fn from_static_le_tensors(
        meta: GbdtMeta,
        tensors: [Option<LeTensor<'_, 'static>>; 3],
        ahead: Option<&TreesAhead<'_>>,
        max_depth: usize,
    ) -> Result<Gbdt, GbdtError> {
        let nodes = tensors[2].as_ref().and_then(|t| in_place(t.data));
        Self::from_le(meta, tensors, nodes, ahead, max_depth, false)
    }

    /// [`Gbdt::from_static_le_tensors`] of a model compiled into the program and checked by
    /// its test suite (mallard's built-in models): the tensors' shapes are checked, the trees
    /// are taken without their node-by-node checks ([`Tree::trusted`]). Nodes that cannot be
    /// read where they lie are checked as usual.
    pub fn from_trusted_static_le_tensors(
        meta: GbdtMeta,
        tensors: [Option<LeTensor<'_, 'static>>; 3],
        max_depth: usize,
    ) -> Result<Gbdt, GbdtError> {
        let nodes = tensors[2].as_ref().and_then(|t| in_place(t.data));
        let trusted = nodes.is_some();
        Self::from_le(meta, tensors, nodes, None, max_depth, trusted)
    }

    /// `in_place_nodes`: the nodes tensor's nodes, read where they lie (`None`: copied).
    fn from_le(
        meta: GbdtMeta,
        [init, sizes, nodes]: [Option<LeTensor<'_, '_>>; 3],
        in_place_nodes: Option<&'static [Node]>,
        ahead: Option<&TreesAhead<'_>>,
        max_depth: usize,
        trusted: bool,
    ) -> Result<Gbdt, GbdtError> {
        let missing = |name: &str| GbdtError::Model(format!("missing tensor {name}"));
        let init = init.ok_or_else(|| missing("gbdt.init"))?;
        let sizes = sizes.ok_or_else(|| missing("gbdt.tree_sizes"))?;
        let nodes = nodes.ok_or_else(|| missing("gbdt.nodes"))?;
        let f = |c: &[u8]| f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        let size_values: Vec<f32> = sizes.data.chunks_exact(4).map(f).collect();
        let decoded: Vec<Node>;
        let source = match (in_place_nodes, in_place(nodes.data)) {
            (Some(s), _) => NodeSource::Static(s),
            (None, Some(s)) => NodeSource::Copied(s),
            (None, None) => {
                decoded = nodes
                    .data
                    .chunks_exact(32)
                    .map(|r| Node::from_row(std::array::from_fn(|j| f(&r[j * 4..j * 4 + 4]))))
                    .collect();
                NodeSource::Copied(&decoded)
            }
        };
        Self::build(
            meta,
            (init.shape, init.data.chunks_exact(4).map(f).collect()),
            (sizes.shape, &size_values),
            (nodes.shape, nodes.data.len() / 4, source),
            ahead,
            max_depth,
            trusted,
        )
    }

    /// Checks every shape, index and link; `nodes` is (shape, number of values, the nodes
    /// of all trees one after the other). `trusted`: the shapes only (see
    /// [`Gbdt::from_trusted_static_le_tensors`]).
    fn build(
        meta: GbdtMeta,
        (init_shape, init): (&[usize], Vec<f32>),
        (sizes_shape, sizes): (&[usize], &[f32]),
        (nodes_shape, nodes_len, source): (&[usize], usize, NodeSource<'_>),
        ahead: Option<&TreesAhead<'_>>,
        max_depth: usize,
        trusted: bool,
    ) -> Result<Gbdt, GbdtError> {
        let bad = |m: String| GbdtError::Model(m);
        if meta.n_classes < 2 || meta.n_features == 0 {
            return Err(bad("n_classes must be >= 2 and n_features >= 1".into()));
        }
        let k = meta.n_outputs();
        if init_shape != [k] || init.len() != k {
            return Err(bad(format!("gbdt.init must have shape [{k}]")));
        }
        if sizes_shape != [meta.n_trees]
            || sizes.len() != meta.n_trees
            || !meta.n_trees.is_multiple_of(k)
        {
            return Err(bad(format!(
                "gbdt.tree_sizes must have shape [{}], a multiple of {k}",
                meta.n_trees
            )));
        }
        let int = |v: f32, what: &str| tree::index(v, what).map_err(bad);
        let mut total = 0usize;
        for &s in sizes {
            total += int(s, "tree size")? as usize;
        }
        if nodes_shape != [total, 8] || nodes_len != total * 8 || source.len() != total {
            return Err(bad(format!("gbdt.nodes must have shape [{total}, 8]")));
        }
        // Tree t's nodes start at starts[t].
        let mut starts = Vec::with_capacity(sizes.len() + 1);
        starts.push(0usize);
        for &s in sizes {
            starts.push(starts[starts.len() - 1] + s as usize);
        }
        if trusted {
            let trees = (0..sizes.len())
                .map(|t| Tree::trusted(source.tree(starts[t]..starts[t + 1])))
                .collect();
            return Ok(Gbdt { meta, init, trees });
        }
        let n_features = meta.n_features;
        if let Some(trees) = ahead.and_then(|a| a.take(&source, &starts, n_features, max_depth)) {
            return Ok(Gbdt { meta, init, trees });
        }
        let make = |range: std::ops::Range<usize>| -> Result<Vec<Tree>, GbdtError> {
            let mut trees = Vec::with_capacity(range.len());
            let mut depth = Vec::new();
            for t in range {
                let nodes = source.tree(starts[t]..starts[t + 1]);
                let tree = Tree::checked(nodes, n_features, max_depth, &mut depth).map_err(
                    |e| match e {
                        tree::Unchecked::Node(m) => bad(m),
                        tree::Unchecked::Tree(m) => bad(format!("tree {t}: {m}")),
                    },
                )?;
                trees.push(tree);
            }
            Ok(trees)
        };
        let n = sizes.len();
        // A big model's trees are built in two halves side by side: loading the built-in
        // PE model is most of a one-file scan's wait, and the second core is idle then.
        let trees = if total < BIG_MODEL {
            make(0..n)?
        } else {
            let half = starts.partition_point(|&s| s < total / 2).min(n);
            let (mut first, second) = std::thread::scope(|s| {
                let second = std::thread::Builder::new().spawn_scoped(s, || make(half..n));
                let first = make(0..half);
                let second = match second {
                    Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    Err(_) => make(half..n),
                };
                (first, second)
            });
            // The first half's error first: the message names the lowest bad tree.
            if let Ok(v) = &mut first {
                v.extend(second?);
            }
            first?
        };
        Ok(Gbdt { meta, init, trees })
    }
}

/// A model file's trees checked on threads of their own while the model's settings are read
/// (for the built-in PE model the metadata JSON takes about as long as its 45,056 nodes):
/// the checks need only the tensors and the depth cap, and the features the splits use are
/// compared with the feature count once it is known. Any number of threads may call
/// [`TreesAhead::work`]; [`Gbdt::from_static_le_tensors`] and [`Gbdt::from_le_tensors`]
/// take the trees when everything agrees, and otherwise check them again in order, so that
/// what is refused, and the message, are the same as without.
pub struct TreesAhead<'a> {
    source: NodeSource<'a>,
    starts: Vec<usize>,
    max_depth: usize,
    next: std::sync::atomic::AtomicUsize,
    state: std::sync::Mutex<AheadState>,
    finished: std::sync::Condvar,
}

/// Per chunk of [`AHEAD_CHUNK`] trees: its trees and the features each needs (`None`: one
/// was refused), once done.
struct AheadState {
    done: usize,
    chunks: Vec<Option<Vec<(Tree, usize)>>>,
}

const AHEAD_CHUNK: usize = 25;

/// [`TreesAhead::next`] once cancelled: past any chunk, far from overflowing.
const CANCELLED: usize = usize::MAX / 2;

/// Nodes from which a model's trees are worth checking on two threads (the built-in PE
/// model has 45,056; the ClaMP one, a few thousand).
const BIG_MODEL: usize = 20_000;

impl<'a> TreesAhead<'a> {
    /// The trees of `sizes` and `nodes`, read in place (`None` when the bytes are not
    /// aligned, or the sizes are not whole, or the model is small: then the usual load).
    pub fn new(sizes: LeTensor<'_, '_>, nodes: LeTensor<'_, 'a>, max_depth: usize) -> Option<Self> {
        let nodes = NodeSource::Copied(in_place(nodes.data)?);
        Self::with(sizes, nodes, max_depth, BIG_MODEL)
    }

    /// [`TreesAhead::new`] of a model compiled into the program: the trees borrow its nodes.
    pub fn new_static(
        sizes: LeTensor<'_, '_>,
        nodes: LeTensor<'_, 'static>,
        max_depth: usize,
    ) -> Option<TreesAhead<'static>> {
        let nodes = NodeSource::Static(in_place(nodes.data)?);
        TreesAhead::with(sizes, nodes, max_depth, BIG_MODEL)
    }

    /// `big`: the fewest nodes worth a thread.
    fn with(
        sizes: LeTensor<'_, '_>,
        source: NodeSource<'a>,
        max_depth: usize,
        big: usize,
    ) -> Option<Self> {
        let mut starts = vec![0usize];
        for c in sizes.data.chunks_exact(4) {
            let size = tree::index(f32::from_le_bytes([c[0], c[1], c[2], c[3]]), "").ok()?;
            starts.push(starts[starts.len() - 1] + size as usize);
        }
        let total = starts[starts.len() - 1];
        if total != source.len() || total < big {
            return None;
        }
        let n_chunks = (starts.len() - 1).div_ceil(AHEAD_CHUNK);
        Some(TreesAhead {
            source,
            starts,
            max_depth,
            next: std::sync::atomic::AtomicUsize::new(0),
            state: std::sync::Mutex::new(AheadState {
                done: 0,
                chunks: (0..n_chunks).map(|_| None).collect(),
            }),
            finished: std::sync::Condvar::new(),
        })
    }

    /// Checks chunks of trees until none is left.
    pub fn work(&self) {
        let n_trees = self.starts.len() - 1;
        let n_chunks = n_trees.div_ceil(AHEAD_CHUNK);
        let mut depth = Vec::new();
        loop {
            let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i >= n_chunks {
                return;
            }
            let check = || -> Option<Vec<(Tree, usize)>> {
                (i * AHEAD_CHUNK..((i + 1) * AHEAD_CHUNK).min(n_trees))
                    .map(|t| {
                        let nodes = self.source.tree(self.starts[t]..self.starts[t + 1]);
                        Tree::checked_ahead(nodes, self.max_depth, &mut depth)
                    })
                    .collect()
            };
            // A panic would leave the chunk undone and `take` waiting: it counts as refused.
            let chunk = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check))
                .ok()
                .flatten();
            // Nothing panics while the lock is held; a poisoned one is used all the same.
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = state.chunks.get_mut(i) {
                *slot = chunk;
            }
            state.done += 1;
            self.finished.notify_all();
        }
    }

    /// Hands out no more chunks (a thread finishes the one it holds); the trees cannot be
    /// taken after.
    pub fn cancel(&self) {
        self.next
            .store(CANCELLED, std::sync::atomic::Ordering::Relaxed);
    }

    /// The trees, once every chunk is done (checking those left here), if they are of the
    /// same nodes and `starts` and cap, every tree was accepted and every split's feature is
    /// below `n_features`; else `None`.
    fn take(
        &self,
        source: &NodeSource<'_>,
        starts: &[usize],
        n_features: usize,
        max_depth: usize,
    ) -> Option<Vec<Tree>> {
        if self.source.addr() != source.addr() || self.starts != starts {
            return None;
        }
        let n_chunks = (starts.len() - 1).div_ceil(AHEAD_CHUNK);
        let cancelled = self.next.load(std::sync::atomic::Ordering::Relaxed) >= CANCELLED;
        if self.max_depth != max_depth || cancelled {
            return None;
        }
        self.work();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while state.done < n_chunks {
            state = self.finished.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        // Taken once: a second take finds no chunks.
        if state.chunks.len() != n_chunks {
            return None;
        }
        let mut trees = Vec::with_capacity(starts.len() - 1);
        for chunk in std::mem::take(&mut state.chunks) {
            for (tree, features) in chunk? {
                if features > n_features {
                    return None;
                }
                trees.push(tree);
            }
        }
        Some(trees)
    }
}

/// Where a model's nodes come from as it loads: a file's bytes, copied into each tree, or
/// a model compiled into the program, read in place.
enum NodeSource<'a> {
    Copied(&'a [Node]),
    Static(&'static [Node]),
}

impl NodeSource<'_> {
    fn len(&self) -> usize {
        match self {
            NodeSource::Copied(s) => s.len(),
            NodeSource::Static(s) => s.len(),
        }
    }

    /// Where the nodes lie, and how many.
    fn addr(&self) -> (usize, usize) {
        match self {
            NodeSource::Copied(s) => (s.as_ptr() as usize, s.len()),
            NodeSource::Static(s) => (s.as_ptr() as usize, s.len()),
        }
    }

    /// One tree's nodes (`range` within [`NodeSource::len`]).
    fn tree(&self, range: std::ops::Range<usize>) -> Nodes {
        match self {
            NodeSource::Copied(s) => Nodes::Owned(s[range].to_vec()),
            NodeSource::Static(s) => Nodes::Static(&s[range]),
        }
    }
}

/// Little-endian f32 bytes as nodes, where they lie: only on a little-endian machine, and
/// when the bytes are aligned for f32 and hold whole nodes.
fn in_place(bytes: &[u8]) -> Option<&[Node]> {
    if cfg!(target_endian = "little") {
        bytemuck::try_cast_slice(bytes).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod shared_shap_tests {
    use super::*;

    /// A 3-class model of `rounds` rounds on `n` rows of `nf` hashed features (the label
    /// from the features at `a` and `b`), and its rows.
    fn toy(n: usize, nf: usize, rounds: usize, (a, b): (usize, usize)) -> (Gbdt, Vec<f32>) {
        let x = hashed_rows(n, nf);
        let y: Vec<usize> = (0..n)
            .map(|i| ((x[i * nf + a] + x[i * nf + b] * 0.5) as usize) % 3)
            .collect();
        let params = GbdtParams {
            n_estimators: rounds,
            n_threads: Some(1),
            ..Default::default()
        };
        (fitted(&x, nf, &y, 3, &params), x)
    }

    /// `n` rows of `nf` values in [0, 10), hashed from their position.
    fn hashed_rows(n: usize, nf: usize) -> Vec<f32> {
        (0..n * nf)
            .map(|i| ((i as u32).wrapping_mul(2654435761) % 1000) as f32 / 100.0)
            .collect()
    }

    fn fitted(x: &[f32], nf: usize, y: &[usize], classes: usize, params: &GbdtParams) -> Gbdt {
        let data = Dataset {
            x,
            n_features: nf,
            y,
        };
        Gbdt::fit(data, classes, params, None).unwrap()
    }

    #[test]
    fn trees_walked_side_by_side_give_each_tree_s_own_leaf() {
        // 3 classes x 23 rounds = 69 trees: groups of 8 with a short last one, classes
        // interleaved across group edges; rows with NaN take the default branches.
        let nf = 5;
        let (m, x) = toy(400, nf, 23, (1, 3));
        assert_eq!(m.trees.len(), 69);
        for r in 0..50 {
            let mut row = x[r * nf..(r + 1) * nf].to_vec();
            if r % 3 == 0 {
                row[r % nf] = f32::NAN;
            }
            let mut want: Vec<f64> = m.init.iter().map(|&v| v as f64).collect();
            for (t, tree) in m.trees.iter().enumerate() {
                want[t % 3] += tree.predict(&row) as f64;
            }
            let got = m.predict_raw(&row).unwrap();
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "row {r}");
        }
    }

    /// Trees of depth 26 or less are explained by a walk whose per-depth values are arrays
    /// sized when compiling; every other tree by the walk over buffers. Both must give the
    /// same bits, on trees from shallow to deep and on rows that take default branches.
    #[test]
    fn treeshap_fixed_and_any_depth_walks_give_the_same_bits() {
        let mut points = std::collections::BTreeSet::new();
        for (nf, leaves, rounds, max_depth) in [
            (6usize, 4usize, 12usize, None),
            (6, 31, 8, Some(6)),
            (5, 31, 8, Some(10)),
            (5, 31, 8, None),
            (3, 90, 5, None),
            (2, 200, 3, None),
        ] {
            let n = 1500;
            let x = hashed_rows(n, nf);
            let y: Vec<usize> = (0..n)
                .map(|i| ((x[i * nf] * 3.0 + x[i * nf + 1]) as usize) % 2)
                .collect();
            let params = GbdtParams {
                n_estimators: rounds,
                num_leaves: leaves,
                max_depth,
                min_data_in_leaf: 2,
                n_threads: Some(1),
                ..Default::default()
            };
            let m = fitted(&x, nf, &y, 2, &params);
            let mut scratch = tree::Scratch::new(nf);
            for tree in &m.trees {
                points.insert(tree.depth().div_ceil(2));
                for r in 0..40 {
                    let mut row = x[r * nf..(r + 1) * nf].to_vec();
                    if r % 4 == 0 {
                        row[r % nf] = f32::NAN;
                    }
                    let mut walks = [true, false].map(|fixed| {
                        let mut got = Vec::new();
                        tree.shap_sums_by(
                            &row,
                            &mut scratch,
                            &mut |f, v| got.push((f, v.to_bits())),
                            fixed,
                        );
                        got
                    });
                    walks[0].sort_unstable();
                    walks[1].sort_unstable();
                    assert!(!walks[0].is_empty());
                    assert_eq!(walks[0], walks[1], "depth {} row {r}", tree.depth());
                }
            }
        }
        // Many sizes of the fixed walk were compared (1 to 13 points), and deeper trees too.
        let fixed = points.range(1..=13).count();
        assert!(fixed >= 7 && points.last() > Some(&13), "{points:?}");
    }

    #[test]
    fn treeshap_on_several_threads_gives_the_same_bits() {
        // 3 classes, 60 rounds: 180 trees in 8 chunks, classes interleaved.
        let nf = 6;
        let (m, x) = toy(600, nf, 60, (0, 2));
        for r in 0..20 {
            let row = &x[r * nf..(r + 1) * nf];
            let one = m.contributions(row, Explain::TreeShap).unwrap();
            let raw = m.predict_raw(row).unwrap();
            for c in 0..3 {
                let s: f64 = one[c * (nf + 1)..(c + 1) * (nf + 1)].iter().sum();
                assert!((s - raw[c]).abs() < 1e-9, "{s} vs {}", raw[c]);
            }
            for threads in [2, 3, 16] {
                let par = m
                    .contributions_with(row, Explain::TreeShap, threads)
                    .unwrap();
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&one), bits(&par), "{threads} threads");
            }
        }
    }

    /// A loaded tree's depth and expected value come from the checks' pass; a grown tree's
    /// from `Tree::new`. They must be the same, bit for bit, and match a count by hand.
    #[test]
    fn loaded_trees_keep_what_grown_trees_computed() {
        let (m, _) = toy(400, 5, 20, (1, 3));
        let loaded = Gbdt::from_parts(m.meta().clone(), &m.to_tensors()).unwrap();
        assert_eq!(m.trees.len(), loaded.trees.len());
        for (a, b) in m.trees.iter().zip(&loaded.trees) {
            assert_eq!(a, b);
            assert_eq!(a.expected_value().to_bits(), b.expected_value().to_bits());
            // By hand: the longest path by a walk from the root, the mean by leaf shares.
            let mut deepest = 0;
            let mut stack = vec![(0usize, 0u32)];
            while let Some((i, d)) = stack.pop() {
                let n = &a.nodes[i];
                if n.feature().is_some() {
                    stack.push((n.left() as usize, d + 1));
                    stack.push((n.right() as usize, d + 1));
                } else {
                    deepest = deepest.max(d);
                }
            }
            assert_eq!(a.depth(), deepest);
            let root = a.nodes[0].count as f64;
            let mean: f64 = a
                .nodes
                .iter()
                .filter(|n| n.feature().is_none())
                .map(|n| n.value as f64 * n.count as f64 / root)
                .sum();
            assert!((a.expected_value() - mean).abs() <= 1e-12 * mean.abs().max(1.0));
        }
    }

    /// What `Tree::checked` makes of a tree: its depth and expected value's bits, or the
    /// message.
    fn outcome(r: Result<Tree, tree::Unchecked>) -> Result<(u32, u64, Vec<u32>), String> {
        match r {
            Ok(t) => Ok((
                t.depth(),
                t.expected_value().to_bits(),
                bytemuck::cast_slice::<Node, u32>(&t.nodes).to_vec(),
            )),
            Err(tree::Unchecked::Node(m)) => Err(format!("node: {m}")),
            Err(tree::Unchecked::Tree(m)) => Err(format!("tree: {m}")),
        }
    }

    /// The fast checks accept exactly the trees the checks in order accept, with the same
    /// depth and expected value, and give the same message: every tree of a model, then
    /// thousands of copies with one value edited to something a hostile file could hold.
    #[test]
    fn fast_tree_checks_agree_with_the_checks_in_order() {
        let (m, _) = toy(300, 5, 12, (0, 2));
        let nf = m.meta().n_features;
        let bad = [
            -1.0,
            -0.0,
            0.5,
            1.0,
            2.0,
            3.0,
            5.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -2.0,
            1e9,
            8_388_607.0,
            8_388_608.0,
            8_388_609.0,
            16_777_215.0,
            16_777_216.0,
            0.0,
        ];
        let mut depth = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let (mut accepted, mut refused) = (0, 0);
        for t in &m.trees {
            let rows: Vec<[f32; 8]> = t.nodes.iter().map(|n| n.to_row()).collect();
            let check = |rows: &[[f32; 8]], depth: &mut Vec<u32>, max_depth: usize| {
                let nodes: Vec<Node> = rows.iter().map(|&r| Node::from_row(r)).collect();
                let fast = Tree::checked(Nodes::Owned(nodes.clone()), nf, max_depth, depth);
                let slow = Tree::checked_in_order(Nodes::Owned(nodes), nf, max_depth, depth);
                (outcome(fast), outcome(slow))
            };
            let (fast, slow) = check(&rows, &mut depth, 64);
            assert!(fast.is_ok());
            assert_eq!(fast, slow);
            for _ in 0..300 {
                let mut edited = rows.clone();
                let (i, j) = (next(rows.len()), next(8));
                edited[i][j] = match next(3) {
                    0 => bad[next(bad.len())],
                    1 => next(rows.len() + 2) as f32,
                    _ => rows[next(rows.len())][j],
                };
                let cap = [64, t.depth() as usize, 1][next(3)];
                let (fast, slow) = check(&edited, &mut depth, cap);
                assert_eq!(fast, slow, "node {i} value {j} = {}", edited[i][j]);
                if fast.is_ok() {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        // Both kinds of outcome were tried many times.
        assert!(
            accepted > 200 && refused > 200,
            "{accepted} accepted, {refused} refused"
        );
    }

    /// Tensors that live as long as the program are read in place when aligned; a
    /// misaligned copy and a file held for the load are copied. All score alike.
    #[test]
    fn static_tensors_are_read_in_place_and_score_alike() {
        let (m, x) = toy(300, 5, 12, (0, 2));
        let tensors = m.to_tensors();
        let le = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|f| f.to_le_bytes()).collect() };
        let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| le(&t.2)).collect();
        // The nodes as f32 values, leaked: aligned for f32, and alive for the program.
        let aligned: &'static [f32] = Box::leak(tensors[2].2.clone().into_boxed_slice());
        let aligned: &'static [u8] = bytemuck::cast_slice(aligned);
        // One byte in: not aligned for f32.
        let mut shifted = vec![0u8; aligned.len() + 1];
        shifted[1..].copy_from_slice(aligned);
        let shifted: &'static [u8] = &Box::leak(shifted.into_boxed_slice())[1..];
        let lt = |i: usize, data: &'static [u8]| {
            Some(LeTensor {
                shape: &tensors[i].1,
                data,
            })
        };
        let head = |i: usize| -> &'static [u8] { Box::leak(bytes[i].clone().into_boxed_slice()) };
        let (init, sizes) = (head(0), head(1));
        let in_place = |g: &Gbdt| g.trees.iter().all(|t| matches!(t.nodes, Nodes::Static(_)));
        let read = Gbdt::from_static_le_tensors(
            m.meta().clone(),
            [lt(0, init), lt(1, sizes), lt(2, aligned)],
            None,
            64,
        )
        .unwrap();
        assert!(in_place(&read));
        let copied = Gbdt::from_static_le_tensors(
            m.meta().clone(),
            [lt(0, init), lt(1, sizes), lt(2, shifted)],
            None,
            64,
        )
        .unwrap();
        let held = Gbdt::from_le_tensors(
            m.meta().clone(),
            [lt(0, init), lt(1, sizes), lt(2, aligned)],
            None,
            64,
        )
        .unwrap();
        for g in [&copied, &held] {
            assert!(g.trees.iter().all(|t| matches!(t.nodes, Nodes::Owned(_))));
        }
        let want = m.predict_raw(&x).unwrap();
        for g in [&read, &copied, &held] {
            assert_eq!(g, &m);
            assert_eq!(g.predict_raw(&x).unwrap(), want);
        }
        // Trusted (a built-in model): in place and unchecked, the trees' depth and expected
        // value measured when first asked for, to the bit what the checks found; misaligned
        // nodes are copied and checked as usual.
        let trusted = |nodes| {
            Gbdt::from_trusted_static_le_tensors(
                m.meta().clone(),
                [lt(0, init), lt(1, sizes), lt(2, nodes)],
                64,
            )
            .unwrap()
        };
        let (taken, fallback) = (trusted(aligned), trusted(shifted));
        assert!(in_place(&taken));
        assert!(taken.trees.iter().all(|t| t.shape.get().is_none()));
        assert!(fallback.trees.iter().all(|t| t.shape.get().is_some()));
        let explain = |g: &Gbdt, r: &[f32]| g.contributions(r, Explain::TreeShap).unwrap();
        for r in x.chunks(5).take(30) {
            let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(explain(&taken, r)), bits(explain(&m, r)));
        }
        for g in [&taken, &fallback] {
            for (a, b) in g.trees.iter().zip(&m.trees) {
                assert_eq!(a.depth(), b.depth());
                assert_eq!(a.expected_value().to_bits(), b.expected_value().to_bits());
            }
            assert_eq!(g, &m);
            assert_eq!(g.predict_raw(&x).unwrap(), want);
        }
        // Only the shapes are checked: a tensor of the wrong size is still refused.
        let short = &aligned[..aligned.len() - 32];
        assert!(Gbdt::from_trusted_static_le_tensors(
            m.meta().clone(),
            [lt(0, init), lt(1, sizes), lt(2, short)],
            64,
        )
        .is_err());
    }

    /// Trees checked ahead are what the load would make when the settings agree; when they
    /// do not (too few features, a smaller depth cap, an edited tree) the load checks again
    /// and says what it would have said without them.
    #[test]
    fn trees_checked_ahead_agree_with_the_load() {
        let (m, _) = toy(300, 5, 12, (0, 2));
        let t = m.to_tensors();
        let leak = |v: Vec<f32>| -> &'static [u8] {
            bytemuck::cast_slice(Box::leak(v.into_boxed_slice()))
        };
        let (init, sizes) = (leak(t[0].2.clone()), leak(t[1].2.clone()));
        let mut edited = t[2].2.clone();
        // Node 1 of tree 0 splits, and its left child becomes node 0: a loop.
        assert_ne!(edited[8], -1.0);
        edited[8 + 3] = 0.0;
        let lt = |i: usize, data: &'static [u8]| {
            Some(LeTensor {
                shape: &t[i].1,
                data,
            })
        };
        // Trees of `nodes` to check ahead, and the model built from them with `ahead`.
        let early = |nodes: &'static [u8]| {
            let source = NodeSource::Static(in_place(nodes).unwrap());
            TreesAhead::with(lt(1, sizes).unwrap(), source, 64, 0).unwrap()
        };
        let build = |nodes, meta, ahead: Option<&TreesAhead<'_>>, cap| {
            let tensors = [lt(0, init), lt(1, sizes), lt(2, nodes)];
            Gbdt::from_static_le_tensors(meta, tensors, ahead, cap).map_err(|e| e.to_string())
        };
        let load = |nodes: &'static [u8], meta: GbdtMeta, cap: usize, ahead: bool| {
            let early = early(nodes);
            std::thread::scope(|s| {
                if ahead {
                    s.spawn(|| early.work());
                }
                build(nodes, meta, ahead.then_some(&early), cap)
            })
        };
        let nodes = leak(t[2].2.clone());
        let bad = leak(edited);
        let mut narrow = m.meta().clone();
        narrow.n_features = 2;
        let cases = [
            (nodes, m.meta().clone(), 64, true),
            (nodes, narrow, 64, false),
            (nodes, m.meta().clone(), 2, false),
            (bad, m.meta().clone(), 64, false),
        ];
        for (nodes, meta, cap, ok) in cases {
            let with = load(nodes, meta.clone(), cap, true);
            assert_eq!(with, load(nodes, meta, cap, false));
            assert_eq!(with.is_ok(), ok, "{with:?}");
        }
        assert_eq!(load(nodes, m.meta().clone(), 64, true).unwrap(), m);
        // Taken twice, or after a cancel: the load checks the trees itself (and does not wait
        // for chunks nobody will check).
        let twice = early(nodes);
        for _ in 0..2 {
            assert_eq!(build(nodes, m.meta().clone(), Some(&twice), 64).unwrap(), m);
        }
        let cancelled = early(nodes);
        cancelled.cancel();
        assert_eq!(
            build(nodes, m.meta().clone(), Some(&cancelled), 64).unwrap(),
            m
        );
    }
}
