//! Stacking of PE models that read different things of a file (EMBER trees, opcode models,
//! byte-plot trees, MalConv): each member reads the file its own way, and a logistic
//! regression over the members' logits, fitted on their *out-of-fold* predictions, gives
//! the score. The stack reads a file's bytes, so `scan` and `eval` treat it as MalConv.

use crate::{Input, InputKind, Meta, Model, ModelError, ModelFile, Reason};
use mallard_pefeatures::FeatureSet;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// How a member model's input is made from a PE file's bytes.
pub enum PeReader {
    /// A feature vector of `set`, mapped to the model's columns by name (absent: NaN).
    Features {
        set: FeatureSet,
        columns: Vec<Option<usize>>,
        /// The model column that says whether a file is in the set's domain
        /// ([`mallard_pefeatures::domain_column`]).
        domain: Option<usize>,
    },
    /// The mnemonics of the reachable code (`opcodes` sequence models).
    Opcodes,
    /// The bytes themselves.
    Bytes,
}

impl PeReader {
    /// The reader a model needs, or why it cannot read PE files.
    pub fn for_model(m: &dyn Model) -> Result<Self, ModelError> {
        let meta = m.meta();
        if meta.input == InputKind::Bytes {
            return Ok(PeReader::Bytes);
        }
        let name = meta.feature_set.as_deref().ok_or_else(|| {
            ModelError::Invalid(format!(
                "the {} model names no feature set: it cannot read PE files",
                meta.kind
            ))
        })?;
        let set: FeatureSet = name
            .parse()
            .map_err(|e| ModelError::Invalid(format!("{e}")))?;
        if meta.input == InputKind::ApiSequence {
            if set != FeatureSet::Opcodes {
                return Err(ModelError::Invalid(format!(
                    "the {} model reads sequences of {name}, which PE files do not give",
                    meta.kind
                )));
            }
            return Ok(PeReader::Opcodes);
        }
        let names = mallard_pefeatures::names(set);
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.as_str()).or_insert(i);
        }
        let columns = meta
            .feature_names
            .iter()
            .map(|c| index.get(c.as_str()).copied())
            .collect();
        let domain = mallard_pefeatures::domain_column(set)
            .and_then(|d| meta.feature_names.iter().position(|c| c == d));
        Ok(PeReader::Features {
            set,
            columns,
            domain,
        })
    }

    /// Builds the member's input from a file's bytes and hands it to `f`, with whether the
    /// file is in the reader's domain (always, but for sets with a domain column).
    fn with_input<T>(
        &self,
        bytes: &[u8],
        f: impl FnOnce(&Input<'_>, bool) -> Result<T, ModelError>,
    ) -> Result<T, ModelError> {
        let fail = |e: mallard_pefeatures::FeatureError| ModelError::Invalid(e.to_string());
        match self {
            PeReader::Bytes => f(&Input::Bytes(bytes), true),
            PeReader::Opcodes => {
                let caps = mallard_pefeatures::opcodes::Caps::default();
                let seq: Vec<String> = mallard_pefeatures::opcodes::sequence(bytes, &caps)
                    .map_err(fail)?
                    .into_iter()
                    .map(String::from)
                    .collect();
                f(&Input::Apis(&seq), true)
            }
            PeReader::Features {
                set,
                columns,
                domain,
            } => {
                let v = mallard_pefeatures::extract(*set, bytes).map_err(fail)?;
                let row: Vec<f32> = columns
                    .iter()
                    .map(|c| c.and_then(|i| v.get(i).copied()).unwrap_or(f32::NAN))
                    .collect();
                let inside = domain.is_none_or(|d| row.get(d).is_some_and(|&x| x != 0.0));
                f(&Input::Features(&row), inside)
            }
        }
    }

    /// P(malicious) of `m` on a file, read this way.
    pub fn score(&self, m: &dyn Model, bytes: &[u8]) -> Result<f32, ModelError> {
        self.score_in_domain(m, bytes).map(|(p, _)| p)
    }

    /// P(malicious) of `m` on a file, and whether the file is in the reader's domain.
    pub fn score_in_domain(&self, m: &dyn Model, bytes: &[u8]) -> Result<(f32, bool), ModelError> {
        let (probs, inside) = self.with_input(bytes, |i, inside| {
            Ok((m.predict_proba(std::slice::from_ref(i))?, inside))
        })?;
        let pos = m.meta().positive.unwrap_or(1);
        let p = probs
            .get(pos)
            .copied()
            .ok_or_else(|| ModelError::Compute("a member gave no probability".into()))?;
        Ok((p, inside))
    }

    /// The member's reasons on a file, read this way, in words where the set can say more
    /// than a column's name.
    fn explain(&self, m: &dyn Model, bytes: &[u8], top: usize) -> Result<Vec<Reason>, ModelError> {
        let mut reasons = self.with_input(bytes, |i, _| m.explain(i, top))?;
        if let PeReader::Features { set, .. } = self {
            describe_reasons(&mut reasons, *set, bytes);
        }
        Ok(reasons)
    }
}

/// Feature reasons of a model on `set` in words ([`mallard_pefeatures::describe`]); the
/// column's name moves to `feature`.
pub fn describe_reasons(reasons: &mut [Reason], set: FeatureSet, bytes: &[u8]) {
    let columns: Vec<&str> = (reasons.iter())
        .filter(|r| r.kind == "feature")
        .map(|r| r.name.as_str())
        .collect();
    let words = mallard_pefeatures::describe_many(set, bytes, &columns);
    let features = reasons.iter_mut().filter(|r| r.kind == "feature");
    for (r, words) in features.zip(words) {
        if let Some(words) = words {
            r.feature = Some(std::mem::replace(&mut r.name, words));
        }
    }
}

/// Logit with probabilities clamped to [1e-8, 1 - 1e-8]: a member's certainty cannot
/// outvote the others without bound, and no two f32 probabilities become equal (f32 holds
/// nothing between 1 - 6e-8 and 1), so a member's ranking survives the transform.
pub fn logit(p: f32) -> f32 {
    let p = (p as f64).clamp(1e-8, 1.0 - 1e-8);
    (p / (1.0 - p)).ln() as f32
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z.clamp(-40.0, 40.0)).exp())
}

#[allow(clippy::needless_range_loop)]
/// L2-regularised logistic regression by Newton's method: `x` rows of member logits, `y`
/// 0/1; returns (intercept, weights...). The intercept is not penalised.
pub fn fit_logistic(x: &[Vec<f32>], y: &[usize], l2: f64) -> Vec<f64> {
    let d = x.first().map_or(0, |r| r.len()) + 1;
    let mut w = vec![0.0f64; d];
    let row = |i: usize, j: usize| if j == 0 { 1.0 } else { x[i][j - 1] as f64 };
    for _ in 0..100 {
        let mut g: Vec<f64> = (0..d)
            .map(|j| if j == 0 { 0.0 } else { l2 * w[j] })
            .collect();
        let mut h = vec![vec![0.0f64; d]; d];
        for (j, hj) in h.iter_mut().enumerate().skip(1) {
            hj[j] = l2;
        }
        for i in 0..x.len() {
            let z: f64 = (0..d).map(|j| w[j] * row(i, j)).sum();
            let p = sigmoid(z);
            let t = y[i] as f64;
            for a in 0..d {
                g[a] += (p - t) * row(i, a);
                for b in 0..d {
                    h[a][b] += p * (1.0 - p) * row(i, a) * row(i, b);
                }
            }
        }
        h[0][0] += 1e-9; // a constant column: keep the system solvable
        let step = solve(h, g);
        let mut biggest = 0.0f64;
        for (wj, s) in w.iter_mut().zip(&step) {
            *wj -= s;
            biggest = biggest.max(s.abs());
        }
        if !biggest.is_finite() || biggest < 1e-10 {
            break;
        }
    }
    w
}

#[allow(clippy::needless_range_loop)]
/// L2-regularised logistic regression with a fixed offset per row (z = offset + x . w) and
/// no intercept of its own (give a column of ones, penalised like the rest); Newton's method.
/// Returns `None` when the fit does not stay finite.
pub fn fit_logistic_offset(
    x: &[Vec<f64>],
    offset: &[f64],
    y: &[usize],
    l2: f64,
) -> Option<Vec<f64>> {
    let d = x.first().map_or(0, |r| r.len());
    let mut w = vec![0.0f64; d];
    for _ in 0..100 {
        let mut g: Vec<f64> = w.iter().map(|v| l2 * v).collect();
        let mut h = vec![vec![0.0f64; d]; d];
        for (j, hj) in h.iter_mut().enumerate() {
            hj[j] = l2;
        }
        for ((xi, &o), &t) in x.iter().zip(offset).zip(y) {
            let p = sigmoid(o + xi.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>());
            for a in 0..d {
                g[a] += (p - t as f64) * xi[a];
                for b in 0..d {
                    h[a][b] += p * (1.0 - p) * xi[a] * xi[b];
                }
            }
        }
        let step = solve(h, g);
        let mut biggest = 0.0f64;
        for (wj, s) in w.iter_mut().zip(&step) {
            *wj -= s;
            biggest = biggest.max(s.abs());
        }
        if !biggest.is_finite() {
            return None;
        }
        if biggest < 1e-10 {
            break;
        }
    }
    w.iter().all(|v| v.is_finite()).then_some(w)
}

/// A member that speaks only for the files of its domain (a model on .NET metadata, for
/// .NET assemblies): on such a file it adds `intercept + weight * logit(p)` to the stack's
/// logit, and on any other file nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Specialist {
    pub member: usize,
    pub intercept: f64,
    pub weight: f64,
}

/// L2 penalty of the specialists' fit: a member that separates its domain perfectly must
/// not drive its weight to infinity (checked on the folds of the static detectors: 1e-2
/// and 1 give the same figures there, 1 never diverged).
const SPECIALIST_L2: f64 = 1.0;

/// Specialists fitted on top of a stack's logit, cross-fitted.
pub struct SpecialistFit {
    /// Fitted on every row.
    pub specialists: Vec<Specialist>,
    /// Each row's P(malicious) with the specialists fitted without the row's fold.
    pub cross_fitted: Vec<f32>,
    /// (intercept, weight) of each specialist, per fold.
    pub fold_weights: Vec<Vec<f64>>,
}

/// Fits `members` (columns of `p`) as specialists on top of `base` (each row's
/// P(malicious) from the rest of the stack, itself out of fold): for each fold, on the other
/// folds' rows inside any specialist's domain, a logistic regression with the base's logit
/// as offset and, per specialist, an intercept and a weight that apply inside its domain
/// only. Rows outside every domain keep the base's score exactly.
pub fn fit_specialists(
    base: &[f32],
    p: &[Vec<f32>],
    inside: &[Vec<bool>],
    members: &[usize],
    y: &[usize],
    folds: &[Vec<usize>],
) -> Result<SpecialistFit, ModelError> {
    let row = |i: usize| -> Vec<f64> {
        members
            .iter()
            .flat_map(|&j| {
                let d = f64::from(u8::from(inside[i][j]));
                [d, d * logit(p[i][j]) as f64]
            })
            .collect()
    };
    let offset: Vec<f64> = base.iter().map(|&v| logit(v) as f64).collect();
    let in_any = |i: usize| members.iter().any(|&j| inside[i][j]);
    let fit = |rows: &[usize]| {
        let rows: Vec<usize> = rows.iter().copied().filter(|&i| in_any(i)).collect();
        if rows.is_empty() {
            // No file of any specialist's domain to learn from: they add nothing.
            return Ok(vec![0.0; 2 * members.len()]);
        }
        let x: Vec<Vec<f64>> = rows.iter().map(|&i| row(i)).collect();
        let o: Vec<f64> = rows.iter().map(|&i| offset[i]).collect();
        let t: Vec<usize> = rows.iter().map(|&i| y[i]).collect();
        fit_logistic_offset(&x, &o, &t, SPECIALIST_L2)
            .ok_or_else(|| ModelError::Compute("the specialists' fit did not converge".into()))
    };
    let score = |w: &[f64], i: usize| {
        let z = offset[i] + row(i).iter().zip(w).map(|(a, b)| a * b).sum::<f64>();
        sigmoid(z) as f32
    };
    let mut cross_fitted = base.to_vec();
    let mut fold_weights = Vec::new();
    for test in folds {
        let w = fit(&mallard_eval::complement(y.len(), test))?;
        for &i in test {
            if in_any(i) {
                cross_fitted[i] = score(&w, i);
            }
        }
        fold_weights.push(w);
    }
    let all: Vec<usize> = (0..y.len()).collect();
    let w = fit(&all)?;
    let specialists = members
        .iter()
        .enumerate()
        .map(|(k, &member)| Specialist {
            member,
            intercept: w[2 * k],
            weight: w[2 * k + 1],
        })
        .collect();
    Ok(SpecialistFit {
        specialists,
        cross_fitted,
        fold_weights,
    })
}

/// Whether the stack with specialists beats it without them out of fold at the operating
/// points: better in TPR at 1% or at 0.1% FPR, and worse in neither (a gain at one bought
/// with a loss at the other is as likely noise as not; a tie keeps the simpler stack). ROC
/// AUC is not asked: a specialist moves its domain's scores against everyone else's, which
/// reorders the low-scoring files (the AUC of the built-in PE model's stack moved by 1e-4)
/// without touching a detection at a usable threshold.
pub fn specialists_help(y: &[usize], without: &[f32], with: &[f32]) -> Result<bool, ModelError> {
    let at = |p: &[f32]| operating(y, p).map(|(t1, t01, _)| (t1, t01));
    let (a, b) = (at(without)?, at(with)?);
    Ok(b.0 >= a.0 && b.1 >= a.1 && b != a)
}

/// Rows of `table` outside its feature set's domain ([`mallard_pefeatures::domain_column`]
/// is 0 or missing there); empty when the set has no domain.
pub fn outside_domain(table: &mallard_tables::Table) -> Vec<bool> {
    let set = table
        .feature_set
        .as_deref()
        .and_then(|s| s.parse::<FeatureSet>().ok());
    let col = set.and_then(mallard_pefeatures::domain_column);
    let Some(j) = col.and_then(|c| table.columns.iter().position(|n| n == c)) else {
        return Vec::new();
    };
    let k = table.columns.len();
    (0..table.n_rows())
        .map(|i| {
            table
                .values
                .get(i * k + j)
                .is_none_or(|&v| v == 0.0 || v.is_nan())
        })
        .collect()
}

#[allow(clippy::needless_range_loop)]
/// Gauss-Jordan with partial pivoting (d is the member count plus one).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let d = b.len();
    for c in 0..d {
        let piv = (c..d)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .unwrap_or(c);
        a.swap(c, piv);
        b.swap(c, piv);
        if a[c][c].abs() < 1e-300 {
            continue;
        }
        for r in 0..d {
            if r != c {
                let f = a[r][c] / a[c][c];
                for k in c..d {
                    a[r][k] -= f * a[c][k];
                }
                b[r] -= f * b[c];
            }
        }
    }
    (0..d)
        .map(|i| {
            if a[i][i].abs() < 1e-300 {
                0.0
            } else {
                b[i] / a[i][i]
            }
        })
        .collect()
}

/// Stacker weights fitted out of fold, and the figure a skeptic would ask for.
pub struct StackFit {
    /// Fitted on every row: the stack's weights.
    pub weights: Vec<f64>,
    /// Each row's P(malicious) from the stack as written, the logistic weighting fitted
    /// without the row's fold (or the fallback member's own out-of-fold score).
    pub cross_fitted: Vec<f32>,
    /// The logistic weighting's cross-fitted P(malicious), whether or not it was kept.
    pub weighted_cross_fitted: Vec<f32>,
    /// Test rows of each fold.
    pub folds: Vec<Vec<usize>>,
    /// The weights of each fold's fit.
    pub fold_weights: Vec<Vec<f64>>,
    /// The member the stack fell back to (its weight 1, the others 0), when no weighting
    /// beat that member alone out of fold.
    pub fallback: Option<usize>,
}

/// A score column's TPR at 1% and at 0.1% FPR, and its ROC AUC.
fn operating(y: &[usize], p: &[f32]) -> Result<(f64, f64, f64), ModelError> {
    let pos: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    let err = |e: mallard_eval::EvalError| ModelError::Invalid(e.to_string());
    let curve = mallard_eval::roc_curve(&pos, p).map_err(err)?;
    Ok((
        mallard_eval::tpr_at_fpr(&curve, 0.01),
        mallard_eval::tpr_at_fpr(&curve, 0.001),
        mallard_eval::roc_auc(&pos, p).map_err(err)?,
    ))
}

/// How a score column is compared out of fold: TPR at 1% FPR, then ROC AUC.
fn criterion(y: &[usize], p: &[f32]) -> Result<(f64, f64), ModelError> {
    operating(y, p).map(|(t1, _, auc)| (t1, auc))
}

/// Fits the stacker on member probabilities `p` (rows x members, themselves out of fold),
/// and cross-fits it over `folds` (each fold's test rows: stratified folds of whole groups,
/// or the members' own folds from a fold file). With `keep_weighting` the
/// weighting is kept even where one member alone does better out of fold (an ensemble wanted
/// for what it resists rather than for its figures).
pub fn fit_stack(
    p: &[Vec<f32>],
    y: &[usize],
    folds: &[Vec<usize>],
    keep_weighting: bool,
) -> Result<StackFit, ModelError> {
    const L2: f64 = 1e-2;
    if p.first().is_some_and(|r| r.len() == 1) {
        // One member: the stack's logit is its own (nothing to weigh, no recalibration
        // fitted per fold).
        let col: Vec<f32> = p.iter().map(|r| r[0]).collect();
        return Ok(StackFit {
            weights: vec![0.0, 1.0],
            cross_fitted: col.clone(),
            weighted_cross_fitted: col,
            folds: folds.to_vec(),
            fold_weights: Vec::new(),
            fallback: Some(0),
        });
    }
    let x: Vec<Vec<f32>> = p
        .iter()
        .map(|r| r.iter().map(|&v| logit(v)).collect())
        .collect();
    let mut cross_fitted = vec![0.0f32; y.len()];
    let mut fold_weights = Vec::new();
    for test in folds {
        let train = mallard_eval::complement(y.len(), test);
        let xs: Vec<Vec<f32>> = train.iter().map(|&i| x[i].clone()).collect();
        let ys: Vec<usize> = train.iter().map(|&i| y[i]).collect();
        let w = fit_logistic(&xs, &ys, L2);
        for &i in test {
            let z = w[0]
                + x[i]
                    .iter()
                    .zip(&w[1..])
                    .map(|(a, b)| *a as f64 * b)
                    .sum::<f64>();
            cross_fitted[i] = sigmoid(z) as f32;
        }
        fold_weights.push(w);
    }
    // Selection on the training data only: a weighting that does not beat the best member
    // out of fold is not worth its noise, and the stack becomes that member.
    let mut best = (criterion(y, &cross_fitted)?, None);
    let members = if keep_weighting {
        0
    } else {
        p.first().map_or(0, |r| r.len())
    };
    for j in 0..members {
        let col: Vec<f32> = p.iter().map(|r| r[j]).collect();
        let c = criterion(y, &col)?;
        if c >= best.0 {
            best = (c, Some(j));
        }
    }
    let (weights, chosen) = match best.1 {
        Some(j) => {
            let mut w = vec![0.0; p[0].len() + 1];
            w[j + 1] = 1.0;
            (
                w,
                p.iter()
                    .map(|r| sigmoid(logit(r[j]) as f64) as f32)
                    .collect(),
            )
        }
        None => (fit_logistic(&x, y, L2), cross_fitted.clone()),
    };
    Ok(StackFit {
        weights,
        cross_fitted: chosen,
        weighted_cross_fitted: cross_fitted,
        folds: folds.to_vec(),
        fold_weights,
        fallback: best.1,
    })
}

#[derive(Serialize, Deserialize)]
struct StoredMember {
    meta: Meta,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    /// Intercept, then one weight per member logit.
    weights: Vec<f64>,
    members: Vec<StoredMember>,
    /// Absent in stacks without specialists (their files read as before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    specialists: Vec<Specialist>,
}

/// Members and the logistic regression over their logits, plus specialists that add to it
/// on the files of their domain.
pub struct StackModel {
    meta: Meta,
    weights: Vec<f64>,
    members: Vec<(Box<dyn Model>, PeReader)>,
    specialists: Vec<Specialist>,
}

impl StackModel {
    /// Two-class PE models and `weights` (intercept first, then one per member).
    pub fn new(members: Vec<Box<dyn Model>>, weights: Vec<f64>) -> Result<Self, ModelError> {
        if members.is_empty() || weights.len() != members.len() + 1 {
            return Err(ModelError::Invalid(format!(
                "a stack of {} members needs {} weights, got {}",
                members.len(),
                members.len() + 1,
                weights.len()
            )));
        }
        if weights.iter().any(|w| !w.is_finite()) {
            return Err(ModelError::Invalid("stack weights must be numbers".into()));
        }
        let mut with_readers = Vec::new();
        for m in members {
            let meta = m.meta();
            if meta.labels.len() != 2 || meta.positive.is_none() {
                return Err(ModelError::Invalid(format!(
                    "member {} is not a two-class model with a benign label",
                    meta.kind
                )));
            }
            if meta.kind == "stack" {
                return Err(ModelError::Invalid("stacks do not nest".into()));
            }
            let r = PeReader::for_model(m.as_ref())?;
            with_readers.push((m, r));
        }
        let meta = Meta::new(
            "stack",
            InputKind::Bytes,
            vec!["benign".into(), "malicious".into()],
        );
        Ok(StackModel {
            meta,
            weights,
            members: with_readers,
            specialists: Vec::new(),
        })
    }

    /// The stack with `specialists` (each member at most once, finite values).
    pub fn with_specialists(mut self, specialists: Vec<Specialist>) -> Result<Self, ModelError> {
        let mut seen = std::collections::HashSet::new();
        for sp in &specialists {
            if sp.member >= self.members.len() || !seen.insert(sp.member) {
                return Err(ModelError::Invalid(format!(
                    "specialist member {} of a stack of {}",
                    sp.member,
                    self.members.len()
                )));
            }
            if !sp.intercept.is_finite() || !sp.weight.is_finite() {
                return Err(ModelError::Invalid(
                    "specialist weights must be numbers".into(),
                ));
            }
        }
        self.specialists = specialists;
        Ok(self)
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn specialists(&self) -> &[Specialist] {
        &self.specialists
    }

    /// Whether member `j` takes part in a file's score.
    fn used(&self, j: usize) -> bool {
        self.weights[j + 1] != 0.0 || self.specialists.iter().any(|s| s.member == j)
    }

    pub fn meta_mut(&mut self) -> &mut Meta {
        &mut self.meta
    }

    /// Every member's P(malicious) on a file (0.5, not computed, for a member that takes
    /// no part: a stack that fell back to one member runs only that one).
    pub fn member_scores(&self, bytes: &[u8]) -> Result<Vec<f32>, ModelError> {
        Ok(self
            .scores_in_domain(bytes)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    /// Every member's P(malicious) on a file and whether the file is in its domain.
    fn scores_in_domain(&self, bytes: &[u8]) -> Result<Vec<(f32, bool)>, ModelError> {
        (self.members.iter().enumerate())
            .map(|(j, (m, r))| {
                if self.used(j) {
                    r.score_in_domain(m.as_ref(), bytes)
                } else {
                    Ok((0.5, false))
                }
            })
            .collect()
    }

    fn combine(&self, scores: &[(f32, bool)]) -> f32 {
        let mut z = self.weights[0]
            + scores
                .iter()
                .zip(&self.weights[1..])
                .map(|(&(p, _), w)| w * logit(p) as f64)
                .sum::<f64>();
        for sp in &self.specialists {
            if let Some(&(p, true)) = scores.get(sp.member) {
                z += sp.intercept + sp.weight * logit(p) as f64;
            }
        }
        sigmoid(z) as f32
    }

    pub(crate) fn from_file(file: ModelFile, caps: &crate::Caps) -> Result<Self, ModelError> {
        let stored: Stored = serde_json::from_value(file.meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("stack config: {e}")))?;
        if stored.members.len() > 64 {
            return Err(ModelError::Corrupt("more than 64 stack members".into()));
        }
        let mut members = Vec::new();
        for (i, m) in stored.members.into_iter().enumerate() {
            if matches!(m.meta.kind.as_str(), "stack" | "ensemble") {
                return Err(ModelError::Corrupt("stacks do not nest".into()));
            }
            members.push(crate::from_file_with(file.member(i, m.meta), caps)?);
        }
        let mut s = StackModel::new(members, stored.weights)
            .and_then(|s| s.with_specialists(stored.specialists))
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        s.meta = file.meta;
        Ok(s)
    }
}

impl Model for StackModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let pos = self.meta.positive.unwrap_or(1);
        let mut out = Vec::with_capacity(inputs.len() * 2);
        for input in inputs {
            let p = self.combine(&self.scores_in_domain(input.bytes()?)?);
            out.extend(crate::binary_row(p, pos));
        }
        Ok(out)
    }

    /// Every member's reasons, scaled by the member's weight in the stack (a specialist's
    /// inside its domain) and named `[kind] reason`; the members' own scores come first.
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        let bytes = input.bytes()?;
        let mut all = Vec::new();
        for (i, (m, r)) in self.members.iter().enumerate() {
            if !self.used(i) {
                continue;
            }
            let (p, inside) = r.score_in_domain(m.as_ref(), bytes)?;
            let special = self.specialists.iter().find(|s| s.member == i);
            let w = self.weights[i + 1] as f32
                + special.filter(|_| inside).map_or(0.0, |s| s.weight as f32);
            if w == 0.0 {
                continue;
            }
            all.push(Reason {
                kind: "member".into(),
                name: format!("{} scores {p:.3}", member_name(m.as_ref())),
                weight: w * logit(p),
                feature: None,
            });
            for mut reason in r.explain(m.as_ref(), bytes, top)? {
                reason.weight *= w;
                reason.name = format!("[{}] {}", member_name(m.as_ref()), reason.name);
                all.push(reason);
            }
        }
        let (members, mut rest): (Vec<Reason>, Vec<Reason>) =
            all.into_iter().partition(|r| r.kind == "member");
        rest.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        let mut out = members;
        out.extend(rest);
        let kept = out.iter().filter(|r| r.kind == "member").count();
        out.truncate(top.max(kept));
        Ok(out)
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut out = ModelFile::container(self.meta.clone());
        let mut stored = Vec::new();
        for (i, (m, _)) in self.members.iter().enumerate() {
            let meta = out.add_member(i, m.to_file()?);
            stored.push(StoredMember { meta });
        }
        out.meta.config = serde_json::to_value(Stored {
            weights: self.weights.clone(),
            members: stored,
            specialists: self.specialists.clone(),
        })
        .map_err(|e| ModelError::Invalid(e.to_string()))?;
        Ok(out)
    }
}

/// `gbdt on ember-v2`, `malconv`, `ngram on opcodes`.
pub fn member_name(m: &dyn Model) -> String {
    match &m.meta().feature_set {
        Some(s) => format!("{} on {s}", m.meta().kind),
        None => m.meta().kind.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folds(groups: &[usize], y: &[usize]) -> Vec<Vec<usize>> {
        mallard_eval::stratified_group_kfold(groups, y, 5, 1).unwrap()
    }

    #[test]
    fn logistic_fit_recovers_known_weights() {
        // y drawn from sigmoid(-1 + 2 a - 0.5 b) on a grid: the fit must come back near.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut rng = mallard_rand::SplitMix64::new(4);
        for _ in 0..20000 {
            let a = rng.range(-3.0, 3.0) as f32;
            let b = rng.range(-3.0, 3.0) as f32;
            let p = sigmoid(-1.0 + 2.0 * a as f64 - 0.5 * b as f64);
            y.push(usize::from(rng.next_f64() < p));
            x.push(vec![a, b]);
        }
        let w = fit_logistic(&x, &y, 1e-3);
        assert!((w[0] + 1.0).abs() < 0.1, "{w:?}");
        assert!((w[1] - 2.0).abs() < 0.1, "{w:?}");
        assert!((w[2] + 0.5).abs() < 0.05, "{w:?}");
    }

    #[test]
    fn two_members_that_err_apart_beat_each_alone_and_noise_falls_back() {
        // Two members whose logits carry independent noise: their sum separates better
        // than either. A member of pure noise beside a good one adds nothing.
        let mut rng = mallard_rand::SplitMix64::new(8);
        let (mut p, mut y, mut noisy) = (Vec::new(), Vec::new(), Vec::new());
        let s = |z: f64| sigmoid(z) as f32;
        for i in 0..2000 {
            let mal = i % 2 == 0;
            let m = if mal { 2.0 } else { -2.0 };
            let (a, b) = (s(m + 1.5 * rng.normal()), s(m + 1.5 * rng.normal()));
            p.push(vec![a, b]);
            noisy.push(vec![a, rng.next_f64() as f32]);
            y.push(usize::from(mal));
        }
        let groups: Vec<usize> = (0..2000).collect();
        let fit = fit_stack(&p, &y, &folds(&groups, &y), false).unwrap();
        assert_eq!(fit.fallback, None);
        let auc = |s: &[f32]| {
            let pos: Vec<bool> = y.iter().map(|&v| v == 1).collect();
            mallard_eval::roc_auc(&pos, s).unwrap()
        };
        let col = |j: usize| p.iter().map(|r| r[j]).collect::<Vec<f32>>();
        assert!(
            auc(&fit.cross_fitted) > auc(&col(0)) + 0.01,
            "{}",
            auc(&fit.cross_fitted)
        );
        assert!(auc(&fit.cross_fitted) > auc(&col(1)) + 0.01);
        let fit = fit_stack(&noisy, &y, &folds(&groups, &y), false).unwrap();
        assert_eq!(fit.fallback, Some(0));
        assert_eq!(fit.weights, vec![0.0, 1.0, 0.0]);
        // kept on request: the fitted weighting, the noise member weighted near 0
        let kept = fit_stack(&noisy, &y, &folds(&groups, &y), true).unwrap();
        assert_eq!(kept.fallback, None);
        assert_eq!(kept.cross_fitted, kept.weighted_cross_fitted);
        assert!(
            kept.weights[1] > 0.5 && kept.weights[2].abs() < 0.5,
            "{:?}",
            kept.weights
        );
    }

    #[test]
    fn logistic_fit_with_offset_recovers_known_weights() {
        // y drawn from sigmoid(o + 0.7 - 1.5 a): the offset is taken as given.
        let mut rng = mallard_rand::SplitMix64::new(11);
        let (mut x, mut o, mut y) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..20000 {
            let a = rng.range(-2.0, 2.0);
            let off = rng.range(-3.0, 3.0);
            y.push(usize::from(rng.next_f64() < sigmoid(off + 0.7 - 1.5 * a)));
            x.push(vec![1.0, a]);
            o.push(off);
        }
        let w = fit_logistic_offset(&x, &o, &y, 1e-3).unwrap();
        assert!(
            (w[0] - 0.7).abs() < 0.1 && (w[1] + 1.5).abs() < 0.1,
            "{w:?}"
        );
    }

    #[test]
    fn a_specialist_lifts_its_domain_and_leaves_other_files_alone() {
        // A base member that reads every file but under-rates the malware of one kind (its
        // logit 2 lower there), and a specialist that separates that kind well and is a
        // constant elsewhere. Cross-fitted, the specialist must lift the kind's malware past
        // the base's 1%-FPR threshold, and every file outside the kind keep the base's score.
        let mut rng = mallard_rand::SplitMix64::new(21);
        let s = |z: f64| sigmoid(z) as f32;
        let (mut p, mut inside, mut y, mut base) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..3000 {
            let mal = i % 3 == 0;
            let kind = i % 4 == 0;
            let m = if mal { 2.5 } else { -2.5 };
            let b = s(m - if kind && mal { 3.0 } else { 0.0 } + rng.normal());
            let sp = if kind { s(m + 0.7 * rng.normal()) } else { 0.3 };
            base.push(b);
            p.push(vec![b, sp]);
            inside.push(vec![true, kind]);
            y.push(usize::from(mal));
        }
        let groups: Vec<usize> = (0..3000).collect();
        let folds = folds(&groups, &y);
        let fit = fit_specialists(&base, &p, &inside, &[1], &y, &folds).unwrap();
        for i in 0..3000 {
            if !inside[i][1] {
                assert_eq!(fit.cross_fitted[i], base[i]);
            }
        }
        assert!(fit.specialists[0].weight > 0.5, "{:?}", fit.specialists);
        assert!(specialists_help(&y, &base, &fit.cross_fitted).unwrap());
        let tpr = |sc: &[f32]| {
            let pos: Vec<bool> = y.iter().map(|&v| v == 1).collect();
            mallard_eval::tpr_at_fpr(&mallard_eval::roc_curve(&pos, sc).unwrap(), 0.01)
        };
        assert!(
            tpr(&fit.cross_fitted) > tpr(&base) + 0.1,
            "{} vs {}",
            tpr(&fit.cross_fitted),
            tpr(&base)
        );
        // Where the base rates the kind as well as the rest, a specialist of pure noise
        // does not help, and is left out.
        let fair: Vec<f32> = y
            .iter()
            .map(|&t| s(if t == 1 { 2.5 } else { -2.5 } + rng.normal()))
            .collect();
        let noise: Vec<Vec<f32>> = (fair.iter().zip(&inside))
            .map(|(&b, d)| vec![b, if d[1] { rng.next_f64() as f32 } else { 0.3 }])
            .collect();
        let fit = fit_specialists(&fair, &noise, &inside, &[1], &y, &folds).unwrap();
        assert!(!specialists_help(&y, &fair, &fit.cross_fitted).unwrap());
        assert!(
            fit.specialists[0].weight.abs() < 0.3,
            "{:?}",
            fit.specialists
        );
        // A specialist whose domain holds no file adds nothing (and does not fail).
        let nowhere: Vec<Vec<bool>> = inside.iter().map(|d| vec![d[0], false]).collect();
        let fit = fit_specialists(&fair, &noise, &nowhere, &[1], &y, &folds).unwrap();
        assert_eq!(fit.cross_fitted, fair);
        assert!(!specialists_help(&y, &fair, &fit.cross_fitted).unwrap());
    }

    #[test]
    fn separable_data_stays_finite() {
        let x: Vec<Vec<f32>> = (0..100).map(|i| vec![i as f32 - 50.0]).collect();
        let y: Vec<usize> = (0..100).map(|i| usize::from(i >= 50)).collect();
        let w = fit_logistic(&x, &y, 1e-2);
        assert!(w.iter().all(|v| v.is_finite()) && w[1] > 0.0, "{w:?}");
    }
}
