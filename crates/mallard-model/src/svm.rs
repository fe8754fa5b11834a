//! A kernel SVM over the *set* of distinct API names of a sample: one machine for two
//! classes, one per class (one-vs-rest) for families.
//!
//! Kernel: `K(a, b) = exp(-gamma (1 - |a & b| / |a | b|))` (exponentiated Tanimoto). A name
//! never seen in training is first read as another name of the same call that the model
//! knows (`mallard_apiseq::canon`: `NtWriteVirtualMemory` as `WriteProcessMemory`); names
//! still unknown are ignored, as the n-gram model does: counting them would pull every report
//! of another sandbox (CAPE names many calls Cuckoo never logs) toward the bias and a score
//! near 0.5, whatever it did. Training merges identical (set, label) rows into one with its count folded
//! into `C`, solves the C-SVC dual by SMO (`mallard-svm`), and keeps the support vectors as
//! sorted token ids into the training vocabulary. Probabilities come from Platt's sigmoid on
//! the decision value, fitted on 5-fold out-of-fold decision values of the training rows
//! (folds never split identical sets); the sigmoid is increasing, so rankings (ROC AUC) are
//! the decision value's. With families, each class's machine gets its own sigmoid and the
//! probabilities are normalised to sum to one.

use crate::train::{shuffle, TrainOptions};
use crate::{
    scoring_view, Input, InputKind, Meta, Model, ModelError, ModelFile, NameCounts, Reason, Tensor,
};
use mallard_svm::platt::{self, Sigmoid};
use mallard_svm::tanimoto::{intersection, ExpTanimoto, SetKernel};
use mallard_svm::{Kernel, Subset, SvcParams};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The vocabulary (packed strings), every support vector's token ids (u32 little-endian,
/// concatenated, each set strictly increasing) and each support vector's id count (u32).
const TOKENS: &str = "tokens";
const SV_IDS: &str = "sv_ids";
const SV_LENS: &str = "sv_lens";
/// `y_i a_i` of each support vector, one row per machine.
const DUAL_COEF: &str = "dual_coef";
/// `[bias, gamma, platt_a, platt_b]` per machine (gamma is the same in every row).
const PARAMS: &str = "params";

/// Default kernel width and box constraint (best pooled CV AUC on MalBehavD-V1).
pub const DEFAULT_GAMMA: f64 = 3.0;
pub const DEFAULT_C: f64 = 3.0;
/// Above this many distinct training rows the kernel is computed on demand instead of stored.
const MAX_PRECOMPUTED: usize = 8192;
const PLATT_FOLDS: usize = 5;

/// Human-readable settings, kept in the metadata; the numbers the model computes with are in
/// the `params` tensor.
#[derive(Serialize, Deserialize)]
struct Stored {
    kernel: String,
    gamma: f64,
    c: f64,
    class_weights: bool,
    calibration: String,
}

/// Bitsets of the support vectors, `words` u64 per vector.
struct SvBits {
    words: usize,
    bits: Vec<u64>,
}

/// Above this many bytes of bitsets, intersections merge sorted lists instead.
const MAX_SV_BITS_BYTES: usize = 64 << 20;

impl SvBits {
    fn new(svs: &[Vec<u32>], vocab: usize) -> Option<Self> {
        let words = vocab.div_ceil(64).max(1);
        let len = words.checked_mul(svs.len())?;
        if len.checked_mul(8)? > MAX_SV_BITS_BYTES {
            return None;
        }
        let mut bits = vec![0u64; len];
        for (j, sv) in svs.iter().enumerate() {
            let row = &mut bits[j * words..(j + 1) * words];
            for &id in sv {
                row[id as usize / 64] |= 1 << (id % 64);
            }
        }
        Some(SvBits { words, bits })
    }

    /// `|x & sv_j|` for every support vector, `x` given by its ids.
    fn intersections(&self, ids: &[u32], out: &mut Vec<usize>) {
        let mut x = vec![0u64; self.words];
        for &id in ids {
            x[id as usize / 64] |= 1 << (id % 64);
        }
        out.clear();
        out.extend(self.bits.chunks_exact(self.words).map(|row| {
            row.iter()
                .zip(&x)
                .map(|(a, b)| (a & b).count_ones() as usize)
                .sum::<usize>()
        }));
    }
}

/// One binary machine: the positive class (a label index) against the rest.
struct Machine {
    /// Dual coefficient per support vector of the model (0 where this machine does not use it).
    coef: Vec<f32>,
    bias: f32,
    /// Platt's `(A, B)`.
    sigmoid: (f32, f32),
}

impl Machine {
    fn prob(&self, f: f64) -> f64 {
        Sigmoid {
            a: self.sigmoid.0 as f64,
            b: self.sigmoid.1 as f64,
        }
        .prob(f)
    }
}

pub struct SvmSeqModel {
    meta: Meta,
    stored: Stored,
    vocab: Vec<String>,
    index: HashMap<String, u32>,
    svs: Vec<Vec<u32>>,
    /// The support vectors as bitsets over the vocabulary, when small enough: intersections
    /// by AND and popcount instead of merging sorted lists (20-50x faster for ~300 APIs).
    sv_bits: Option<SvBits>,
    gamma: f32,
    /// One machine for two labels (its positive class is `meta.positive`), else one per label.
    machines: Vec<Machine>,
}

fn compute(e: mallard_svm::SvmError) -> ModelError {
    ModelError::Compute(format!("svm: {e}"))
}

/// Strictly increasing ids of `apis`' known names (unknown names are dropped).
fn encode(index: &HashMap<String, u32>, apis: &[String]) -> Vec<u32> {
    let mut ids: Vec<u32> = apis.iter().filter_map(|a| index.get(a).copied()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl SvmSeqModel {
    pub(crate) fn from_file(file: ModelFile) -> Result<Self, ModelError> {
        let meta = file.meta.clone();
        let stored: Stored = serde_json::from_value(meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("svm config: {e}")))?;
        let vocab = crate::file::unpack_strings(file.blob(TOKENS)?)?;
        let u32s = |name: &str| -> Result<Vec<u32>, ModelError> {
            let b = file.blob(name)?;
            if b.len() % 4 != 0 {
                return Err(ModelError::Corrupt(format!(
                    "{name}: not a whole number of u32"
                )));
            }
            Ok(b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect())
        };
        let ids = u32s(SV_IDS)?;
        let lens = u32s(SV_LENS)?;
        let mut svs = Vec::with_capacity(lens.len());
        let mut rest = ids.as_slice();
        for &l in &lens {
            let (set, tail) = rest
                .split_at_checked(l as usize)
                .ok_or_else(|| ModelError::Corrupt("support vectors: ids truncated".into()))?;
            if set.windows(2).any(|w| w[0] >= w[1])
                || set.last().is_some_and(|&x| x as usize >= vocab.len())
            {
                return Err(ModelError::Corrupt(
                    "support vectors: ids not increasing or outside the vocabulary".into(),
                ));
            }
            svs.push(set.to_vec());
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(ModelError::Corrupt("support vectors: ids left over".into()));
        }
        let k = meta.labels.len();
        let m = if k == 2 { 1 } else { k };
        if k < 2 || (k == 2 && meta.positive.is_none()) {
            return Err(ModelError::Corrupt(
                "an svm model needs two labels with a positive one, or families".into(),
            ));
        }
        let coef = &file.tensor(DUAL_COEF)?.data;
        let params = &file.tensor(PARAMS)?.data;
        if coef.len() != m * svs.len() || params.len() != 4 * m {
            return Err(ModelError::Corrupt(format!(
                "svm: {} dual coefficients and {} parameters for {m} machine(s) and {} support vectors",
                coef.len(),
                params.len(),
                svs.len()
            )));
        }
        let gamma = params[1];
        if coef.iter().chain(params).any(|v| !v.is_finite())
            || gamma <= 0.0
            || params.chunks_exact(4).any(|p| p[1] != gamma || p[2] >= 0.0)
        {
            return Err(ModelError::Corrupt(
                "svm parameters not finite, gamma <= 0 or unequal, or a decreasing sigmoid".into(),
            ));
        }
        let n_sv = svs.len();
        let machines = params
            .chunks_exact(4)
            .enumerate()
            .map(|(i, p)| Machine {
                coef: coef[i * n_sv..(i + 1) * n_sv].to_vec(),
                bias: p[0],
                sigmoid: (p[2], p[3]),
            })
            .collect();
        let index = vocab
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect::<HashMap<_, _>>();
        if index.len() != vocab.len() {
            return Err(ModelError::Corrupt("svm vocabulary repeats a name".into()));
        }
        Ok(SvmSeqModel {
            meta,
            stored,
            sv_bits: SvBits::new(&svs, vocab.len()),
            vocab,
            index,
            svs,
            gamma,
            machines,
        })
    }

    fn kernel(&self) -> ExpTanimoto {
        ExpTanimoto {
            gamma: self.gamma as f64,
        }
    }

    /// Each machine's decision value for an encoded set.
    fn decisions(&self, ids: &[u32]) -> Vec<f64> {
        let k = self.kernel();
        let kv: Vec<f64> = match &self.sv_bits {
            Some(bits) => {
                let mut inter = Vec::with_capacity(self.svs.len());
                bits.intersections(ids, &mut inter);
                inter
                    .iter()
                    .zip(&self.svs)
                    .map(|(&i, sv)| k.from_counts(i, ids.len(), sv.len()))
                    .collect()
            }
            None => self
                .svs
                .iter()
                .map(|sv| k.from_counts(intersection(ids, sv), ids.len(), sv.len()))
                .collect(),
        };
        self.machines
            .iter()
            .map(|m| {
                m.coef
                    .iter()
                    .zip(&kv)
                    .map(|(&c, k)| c as f64 * k)
                    .sum::<f64>()
                    + m.bias as f64
            })
            .collect()
    }

    /// Decision values of raw inputs, row-major `[inputs, machines]` (one machine, whose
    /// positive class is the malicious one, for two labels; one per label for families).
    pub fn decision_values(&self, inputs: &[Input<'_>]) -> Result<Vec<f64>, ModelError> {
        let mut out = Vec::with_capacity(inputs.len() * self.machines.len());
        for i in inputs {
            let view = scoring_view(&self.meta, i.apis()?, |a| self.knows(a));
            out.extend(self.decisions(&encode(&self.index, &view)));
        }
        Ok(out)
    }

    /// Class probabilities from the machines' decision values.
    fn probs(&self, f: &[f64]) -> Vec<f32> {
        if let [m] = self.machines.as_slice() {
            let p = m.prob(f[0]) as f32;
            let mut row = vec![1.0 - p; 2];
            row[self.meta.positive.unwrap_or(1)] = p;
            return row;
        }
        let p: Vec<f64> = self
            .machines
            .iter()
            .zip(f)
            .map(|(m, &f)| m.prob(f))
            .collect();
        let sum: f64 = p.iter().sum();
        if sum > 0.0 {
            p.iter().map(|&v| (v / sum) as f32).collect()
        } else {
            vec![1.0 / p.len() as f32; p.len()]
        }
    }

    /// Whether the training vocabulary holds `api`.
    fn knows(&self, api: &str) -> bool {
        self.index.contains_key(api)
    }

    pub fn support_vectors(&self) -> usize {
        self.svs.len()
    }
}

impl Model for SvmSeqModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let m = self.machines.len();
        let f = self.decision_values(inputs)?;
        Ok(f.chunks_exact(m).flat_map(|f| self.probs(f)).collect())
    }

    /// Occlusion by API: the decision value's change when the API is removed from the set
    /// (weights in decision-value units, positive toward malicious, or with families toward
    /// the most likely family). One pass over the
    /// support vectors serves every API: removing `a` changes only the intersection (when a
    /// support vector holds `a`) or the union (when it does not).
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        let view = scoring_view(&self.meta, input.apis()?, |a| self.knows(a));
        let ids = encode(&self.index, &view);
        let size = ids.len();
        let k = self.kernel();
        let f = self.decisions(&ids);
        let probs = self.probs(&f);
        let mi = if self.machines.len() == 1 {
            0
        } else {
            (0..probs.len()).fold(0, |b, j| if probs[j] > probs[b] { j } else { b })
        };
        let machine = &self.machines[mi];
        let full = f[mi];
        // Without `a`: bias + sum_i out_i + sum_{i holds a} (in_i - out_i).
        let mut base = machine.bias as f64;
        let mut delta = vec![0.0f64; ids.len()];
        for (sv, &c) in self.svs.iter().zip(&machine.coef) {
            let c = c as f64;
            let inter = intersection(&ids, sv);
            let out = c * k.from_counts(inter, size.saturating_sub(1), sv.len());
            base += out;
            if inter == 0 {
                continue;
            }
            let inn = c * k.from_counts(inter - 1, size.saturating_sub(1), sv.len());
            let (mut p, mut q) = (0, 0);
            while p < ids.len() && q < sv.len() {
                match ids[p].cmp(&sv[q]) {
                    std::cmp::Ordering::Less => p += 1,
                    std::cmp::Ordering::Greater => q += 1,
                    std::cmp::Ordering::Equal => {
                        delta[p] += inn - out;
                        p += 1;
                        q += 1;
                    }
                }
            }
        }
        let mut reasons: Vec<Reason> = ids
            .iter()
            .zip(&delta)
            .map(|(&id, d)| (self.vocab[id as usize].clone(), full - (base + d)))
            .map(|(name, w)| Reason {
                kind: "api".into(),
                name,
                weight: w as f32,
                feature: None,
            })
            .collect();
        reasons.sort_by(|a, b| {
            b.weight
                .abs()
                .total_cmp(&a.weight.abs())
                .then_with(|| a.name.cmp(&b.name))
        });
        reasons.truncate(top);
        Ok(reasons)
    }

    fn known_apis(&self, apis: &[String]) -> Option<(usize, usize)> {
        Some(crate::count_known(apis, |a| self.knows(a)))
    }

    fn api_names(&self, apis: &[String]) -> Option<NameCounts> {
        Some(crate::name_counts(apis, |a| self.knows(a)))
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut meta = self.meta.clone();
        meta.config =
            serde_json::to_value(&self.stored).map_err(|e| ModelError::Invalid(e.to_string()))?;
        // One machine keeps 1-d tensors (the two-class layout), several a row each.
        let (m, n_sv) = (self.machines.len(), self.svs.len());
        let shape = |cols: usize| if m == 1 { vec![cols] } else { vec![m, cols] };
        let tensors = vec![
            Tensor::new(
                DUAL_COEF,
                shape(n_sv),
                self.machines.iter().flat_map(|x| x.coef.clone()).collect(),
            ),
            Tensor::new(
                PARAMS,
                shape(4),
                self.machines
                    .iter()
                    .flat_map(|x| [x.bias, self.gamma, x.sigmoid.0, x.sigmoid.1])
                    .collect(),
            ),
        ];
        let blobs = vec![
            (TOKENS.to_string(), crate::file::pack_strings(&self.vocab)),
            (
                SV_IDS.to_string(),
                self.svs
                    .iter()
                    .flatten()
                    .flat_map(|i| i.to_le_bytes())
                    .collect(),
            ),
            (
                SV_LENS.to_string(),
                self.svs
                    .iter()
                    .flat_map(|s| (s.len() as u32).to_le_bytes())
                    .collect(),
            ),
        ];
        Ok(ModelFile {
            meta,
            tensors,
            blobs,
        })
    }
}

/// Identical (set, label) rows merged, in order of first appearance.
struct Unique {
    sets: Vec<Vec<u32>>,
    label: Vec<usize>,
    /// Original rows per unique row.
    count: Vec<f64>,
    /// Index of the first unique row with the same set (whatever its label).
    group: Vec<usize>,
}

fn unique_rows(sets: Vec<Vec<u32>>, labels: &[usize]) -> Unique {
    let mut by_row: HashMap<(Vec<u32>, usize), usize> = HashMap::new();
    let mut by_set: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut u = Unique {
        sets: Vec::new(),
        label: Vec::new(),
        count: Vec::new(),
        group: Vec::new(),
    };
    for (s, &l) in sets.into_iter().zip(labels) {
        if let Some(&i) = by_row.get(&(s.clone(), l)) {
            u.count[i] += 1.0;
            continue;
        }
        let i = u.sets.len();
        let g = *by_set.entry(s.clone()).or_insert(i);
        by_row.insert((s.clone(), l), i);
        u.sets.push(s);
        u.label.push(l);
        u.count.push(1.0);
        u.group.push(g);
    }
    u
}

/// Out-of-fold decision values of every unique row (folds over sets, stratified by label),
/// or `None` when a class has too few distinct sets for `PLATT_FOLDS` folds.
fn oof_decisions(
    kernel: &dyn Kernel,
    u: &Unique,
    positive: &[bool],
    c: &[f64],
    seed: u64,
    params: &SvcParams,
) -> Result<Option<Vec<f64>>, ModelError> {
    let n = u.sets.len();
    let mut groups: Vec<usize> = (0..n).filter(|&i| u.group[i] == i).collect();
    for class in [true, false] {
        if groups.iter().filter(|&&g| positive[g] == class).count() < PLATT_FOLDS {
            return Ok(None);
        }
    }
    shuffle(&mut groups, seed ^ 0x005e_ed0f_01d5);
    let mut fold_of_group = vec![0usize; n];
    let mut next = [0usize; 2];
    for &g in &groups {
        let class = usize::from(positive[g]);
        fold_of_group[g] = next[class] % PLATT_FOLDS;
        next[class] += 1;
    }
    let fold: Vec<usize> = (0..n).map(|i| fold_of_group[u.group[i]]).collect();
    let mut out = vec![0.0f64; n];
    let mut row = vec![0.0f64; n];
    for f in 0..PLATT_FOLDS {
        let train_idx: Vec<usize> = (0..n).filter(|&i| fold[i] != f).collect();
        let pos: Vec<bool> = train_idx.iter().map(|&i| positive[i]).collect();
        if pos.iter().all(|&p| p) || !pos.iter().any(|&p| p) {
            return Ok(None);
        }
        let cs: Vec<f64> = train_idx.iter().map(|&i| c[i]).collect();
        let sub = Subset::new(kernel, &train_idx).map_err(compute)?;
        let m = mallard_svm::train(&sub, &pos, &cs, params).map_err(compute)?;
        for i in (0..n).filter(|&i| fold[i] == f) {
            kernel.row(i, &mut row);
            let k: Vec<f64> = train_idx.iter().map(|&t| row[t]).collect();
            out[i] = m.decision(&k);
        }
    }
    Ok(Some(out))
}

/// Trains the set-kernel SVM; `y` indexes `names`: one machine for two labels, one per
/// label (one-vs-rest) for more.
pub(crate) fn train_svm(
    seqs: &[Vec<String>],
    y: &[usize],
    names: &[String],
    distinct: bool,
    opts: &TrainOptions,
) -> Result<SvmSeqModel, ModelError> {
    let mut meta = Meta::new("svm", InputKind::ApiSequence, names.to_vec());
    let targets: Vec<usize> = match (names.len(), meta.positive) {
        (2, Some(p)) => vec![p],
        (k, _) if k > 2 => (0..k).collect(),
        (k, _) => {
            return Err(ModelError::Invalid(format!(
            "svm needs two labels (one of them malicious) or families; the data has {k} label(s)"
        )))
        }
    };
    meta.distinct_calls = distinct;
    let gamma = opts.svm_gamma.unwrap_or(DEFAULT_GAMMA);
    let c = opts.svm_c.unwrap_or(DEFAULT_C);
    // Round to what the file stores, so a loaded model computes exactly as the trained one.
    let gamma = gamma as f32 as f64;
    let kern =
        ExpTanimoto::new(gamma).map_err(|e| ModelError::Invalid(format!("--svm-gamma: {e}")))?;
    if !(c.is_finite() && c > 0.0) {
        return Err(ModelError::Invalid(format!(
            "--svm-c must be finite and > 0, got {c}"
        )));
    }

    let mut vocab: Vec<String> = seqs.iter().flatten().cloned().collect();
    vocab.sort_unstable();
    vocab.dedup();
    let index: HashMap<String, u32> = vocab
        .iter()
        .enumerate()
        .map(|(i, s)| (s.clone(), i as u32))
        .collect();
    let sets: Vec<Vec<u32>> = seqs.iter().map(|s| encode(&index, s)).collect();
    let u = unique_rows(sets, y);

    let params = SvcParams::default();
    let precomputed;
    let on_demand;
    let kernel: &dyn Kernel = if u.sets.len() <= MAX_PRECOMPUTED {
        precomputed = kern.matrix(&u.sets, opts.threads.max(1)).map_err(compute)?;
        &precomputed
    } else {
        on_demand = SetKernel {
            kernel: kern,
            sets: &u.sets,
        };
        &on_demand
    };

    let balanced = opts.class_weights.unwrap_or(true);
    let mut fitted = Vec::with_capacity(targets.len());
    let mut calibrations = Vec::new();
    let (mut iterations, mut converged) = (0usize, true);
    for &t in &targets {
        let positive: Vec<bool> = u.label.iter().map(|&l| l == t).collect();
        let n_pos = y.iter().filter(|&&l| l == t).count();
        let n_neg = y.len() - n_pos;
        let class_weight = |p: bool| {
            if !balanced {
                1.0
            } else {
                y.len() as f64 / (2.0 * if p { n_pos } else { n_neg }.max(1) as f64)
            }
        };
        let cs: Vec<f64> = (0..u.sets.len())
            .map(|i| c * class_weight(positive[i]) * u.count[i])
            .collect();
        let model = mallard_svm::train(kernel, &positive, &cs, &params).map_err(compute)?;
        iterations += model.iterations;
        converged &= model.converged;

        let (decisions, calibration) =
            match oof_decisions(kernel, &u, &positive, &cs, opts.seed, &params)? {
                Some(d) => (
                    d,
                    format!("platt on {PLATT_FOLDS}-fold out-of-fold decision values"),
                ),
                None => {
                    let mut row = vec![0.0; u.sets.len()];
                    let d = (0..u.sets.len())
                        .map(|i| {
                            kernel.row(i, &mut row);
                            model.decision(&row)
                        })
                        .collect();
                    (
                        d,
                        "platt on training decision values (too few distinct sets for folds)"
                            .to_string(),
                    )
                }
            };
        let mut sig = platt::fit(&decisions, &positive, &u.count).map_err(compute)?;
        let calibration = if (sig.a as f32) < 0.0 && sig.a.is_finite() && sig.b.is_finite() {
            calibration
        } else {
            // A sigmoid that does not increase would reorder the scores: the plain logistic.
            sig = Sigmoid { a: -1.0, b: 0.0 };
            "logistic of the decision value (platt fit was not increasing)".to_string()
        };
        if !calibrations.contains(&calibration) {
            calibrations.push(calibration);
        }
        fitted.push((model, sig));
    }

    // Support vectors: the rows any machine uses, in training order.
    let support: Vec<usize> = (0..u.sets.len())
        .filter(|&i| fitted.iter().any(|(m, _)| m.alpha[i] > 0.0))
        .collect();
    let svs: Vec<Vec<u32>> = support.iter().map(|&i| u.sets[i].clone()).collect();
    let machines: Vec<Machine> = fitted
        .iter()
        .map(|(m, sig)| Machine {
            coef: support.iter().map(|&i| m.coef[i] as f32).collect(),
            bias: m.bias as f32,
            sigmoid: (sig.a as f32, sig.b as f32),
        })
        .collect();
    let calibration = calibrations.join("; ");
    meta.training = serde_json::json!({
        "samples": seqs.len(),
        "distinct_rows": u.sets.len(),
        "support_vectors": svs.len(),
        "iterations": iterations,
        "converged": converged,
    });
    let stored = Stored {
        kernel: "exp-tanimoto over distinct API names".into(),
        gamma,
        c,
        class_weights: balanced,
        calibration,
    };
    Ok(SvmSeqModel {
        meta,
        stored,
        sv_bits: SvBits::new(&svs, vocab.len()),
        vocab,
        index,
        svs,
        gamma: gamma as f32,
        machines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::{ModelKind, Preset};

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// Rows of 3-6 APIs out of 12; malicious rows hold "Evil" or both "X1" and "X2".
    fn toy() -> (Vec<Vec<String>>, Vec<usize>) {
        let pool = [
            "A", "B", "C", "D", "E", "F", "G", "H", "X1", "X2", "Evil", "Calm",
        ];
        let (mut seqs, mut y) = (Vec::new(), Vec::new());
        let mut state = 7u64;
        for i in 0..80 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let mut row: Vec<String> = (0..8)
                .filter(|b| (state >> (20 + b)) & 1 == 1)
                .map(|b| pool[b].to_string())
                .collect();
            let mal = i % 2 == 0;
            if mal {
                row.extend(if i % 4 == 0 {
                    s(&["Evil"])
                } else {
                    s(&["X1", "X2"])
                });
            } else {
                row.push("Calm".into());
                if i % 3 == 0 {
                    row.push("X1".into());
                }
            }
            seqs.push(row);
            y.push(usize::from(mal));
        }
        (seqs, y)
    }

    fn fit(seqs: &[Vec<String>], y: &[usize]) -> SvmSeqModel {
        let mut o = TrainOptions::new(ModelKind::Svm, Preset::Default);
        o.threads = 2;
        train_svm(seqs, y, &s(&["benign", "malicious"]), true, &o).unwrap()
    }

    #[test]
    fn occlusion_weights_equal_removing_the_api() {
        let (seqs, y) = toy();
        let m = fit(&seqs, &y);
        assert!(m.stored.calibration.contains("out-of-fold"));
        // "Zzz" is unknown to the model: ignored, so no reason and no effect on the score.
        let x = s(&["A", "Evil", "C", "X1", "Zzz"]);
        let reasons = m.explain(&Input::Apis(&x), 10).unwrap();
        assert_eq!(reasons.len(), 4);
        assert!(reasons.iter().all(|r| r.name != "Zzz"));
        let full = m.decision_values(&[Input::Apis(&x)]).unwrap()[0];
        let known = m.decision_values(&[Input::Apis(&x[..4])]).unwrap()[0];
        assert_eq!(full, known);
        for r in &reasons {
            let without: Vec<String> = x.iter().filter(|a| **a != r.name).cloned().collect();
            let f = m.decision_values(&[Input::Apis(&without)]).unwrap()[0];
            assert!(
                ((full - f) as f32 - r.weight).abs() < 1e-5,
                "{}: {} vs {}",
                r.name,
                full - f,
                r.weight
            );
        }
        assert_eq!(reasons[0].name, "Evil");
        assert!(reasons[0].weight > 0.0);
        // A one-API input: removing it leaves the empty set.
        let one = s(&["Evil"]);
        let r = m.explain(&Input::Apis(&one), 3).unwrap();
        let f0 = m.decision_values(&[Input::Apis(&[])]).unwrap()[0];
        let f1 = m.decision_values(&[Input::Apis(&one)]).unwrap()[0];
        assert!(((f1 - f0) as f32 - r[0].weight).abs() < 1e-5);
    }

    #[test]
    fn probabilities_follow_the_decision_value() {
        let (seqs, y) = toy();
        let m = fit(&seqs, &y);
        let inputs: Vec<Input> = seqs.iter().map(|s| Input::Apis(s)).collect();
        let f = m.decision_values(&inputs).unwrap();
        let p = m.predict_proba(&inputs).unwrap();
        for i in 0..f.len() {
            assert!((p[2 * i] + p[2 * i + 1] - 1.0).abs() < 1e-6);
            for j in 0..f.len() {
                if f[i] < f[j] {
                    assert!(p[2 * i + 1] <= p[2 * j + 1]);
                }
            }
            // Separable: every training row on its side of both thresholds.
            assert_eq!(f[i] > 0.0, y[i] == 1, "row {i}: {}", f[i]);
            assert_eq!(p[2 * i + 1] > 0.5, y[i] == 1, "row {i}: {}", p[2 * i + 1]);
        }
    }

    #[test]
    fn duplicates_merge_into_one_row_with_their_count() {
        let sets = vec![vec![1, 2], vec![1, 2], vec![3], vec![1, 2], vec![3]];
        let u = unique_rows(sets, &[1, 1, 0, 0, 0]);
        assert_eq!(u.sets, vec![vec![1, 2], vec![3], vec![1, 2]]);
        assert_eq!(u.label, vec![1, 0, 0]);
        assert_eq!(u.count, vec![2.0, 2.0, 1.0]);
        assert_eq!(u.group, vec![0, 1, 0]);
    }

    /// Three families told apart by one marker API each, over shared noise.
    #[test]
    fn families_get_one_machine_each_and_probabilities_that_sum_to_one() {
        let names = s(&["adware", "trojan", "worm"]);
        let noise = ["A", "B", "C", "D", "E"];
        let (mut seqs, mut y) = (Vec::new(), Vec::new());
        for i in 0..60 {
            let fam = i % 3;
            let mut row: Vec<String> = (0..5)
                .filter(|b| (i * 7 + b * 3) % 4 != 0)
                .map(|b| noise[b].to_string())
                .collect();
            row.push(["Ad", "Troj", "Worm"][fam].to_string());
            seqs.push(row);
            y.push(fam);
        }
        let mut o = TrainOptions::new(ModelKind::Svm, Preset::Default);
        o.threads = 2;
        let m = train_svm(&seqs, &y, &names, true, &o).unwrap();
        assert_eq!(m.machines.len(), 3);
        assert_eq!(m.meta.positive, None);
        let inputs: Vec<Input> = seqs.iter().map(|s| Input::Apis(s)).collect();
        let p = m.predict_proba(&inputs).unwrap();
        for (i, row) in p.chunks_exact(3).enumerate() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let best = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
            assert_eq!(best, y[i], "row {i}: {row:?}");
        }
        // The reasons explain the winning family's machine: its marker comes first.
        let x = s(&["A", "Worm", "C"]);
        let r = m.explain(&Input::Apis(&x), 3).unwrap();
        assert_eq!(r[0].name, "Worm");
        assert!(r[0].weight > 0.0);
        let f = m.decision_values(&[Input::Apis(&x)]).unwrap();
        let g = m.decision_values(&[Input::Apis(&s(&["A", "C"]))]).unwrap();
        assert!(((f[2] - g[2]) as f32 - r[0].weight).abs() < 1e-5);
        // Written and read back, the same bytes.
        let bytes = m.to_file().unwrap().to_bytes().unwrap();
        let back = crate::load_bytes(&bytes).unwrap();
        assert_eq!(back.to_file().unwrap().to_bytes().unwrap(), bytes);
        assert_eq!(back.predict_proba(&inputs).unwrap(), p);
        // One label is not a classifier.
        assert!(train_svm(&seqs, &vec![0; 60], &names[..1], true, &o).is_err());
    }

    #[test]
    fn bitset_intersections_equal_merged_ones() {
        let (seqs, y) = toy();
        let mut m = fit(&seqs, &y);
        assert!(m.sv_bits.is_some());
        let mut inputs: Vec<Vec<String>> = seqs.clone();
        inputs.push(s(&["Zzz", "Evil", "H"]));
        inputs.push(Vec::new());
        let inputs: Vec<Input> = inputs.iter().map(|s| Input::Apis(s)).collect();
        let with_bits = m.decision_values(&inputs).unwrap();
        m.sv_bits = None;
        assert_eq!(m.decision_values(&inputs).unwrap(), with_bits);
    }
}
