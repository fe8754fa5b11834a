//! Embedding → LSTM / GRU / BiLSTM → Dense classifiers for token sequences (API-call traces),
//! with a CPU kernel written for this one shape of network.
//!
//! Why a dedicated kernel: general frameworks pad every batch to its longest row and build a
//! graph per step. Here rows are sorted by length so each step runs one fused-gate GEMM over
//! only the rows still running, the input projection is a per-batch lookup table
//! (`E·W + b`, one row per vocabulary entry), the backward pass (BPTT) is hand-written and
//! reuses saved gate activations, and minibatches are split across threads (a bidirectional
//! layer's two directions first).
//!
//! Semantics follow Keras (TF2) so published models can be reproduced: gate order, layouts and
//! tensor names match, and a row's final state is its state after its own last token (Keras
//! `mask_zero=True` on pre-padded input). To reproduce a model that ran over zero padding,
//! pass the padded rows: token 0 is an ordinary embedding row.

mod fastmath;
mod kernel;
mod optim;
mod packed;
mod params;
mod real;
mod rng;
mod scratch;
mod train;

#[cfg(test)]
mod tests;

pub use kernel::BatchLayout;
pub use optim::{OptState, Optimizer};
pub use packed::{simd, Simd};
pub use params::{Cell, Head, NetConfig, Output};
pub use train::{
    targets_for, train, EarlyStopping, EpochOrder, EpochReport, Stopping, TrainConfig, TrainPlan,
    TrainSummary,
};

use std::sync::OnceLock;

use params::Params;

/// Errors from building, running or training a network.
#[derive(Debug, thiserror::Error)]
pub enum RnnError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("row {row}, position {pos}: token {token} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        row: usize,
        pos: usize,
        token: u32,
        vocab: usize,
    },
    #[error("expected {expected} {what}, got {got}")]
    Length {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("tensor {name}: {problem}")]
    Tensor { name: String, problem: String },
    #[error("label {label} of row {row} is not below the {classes} classes")]
    Label {
        row: usize,
        label: usize,
        classes: usize,
    },
    #[error("non-finite loss ({0}); lower the learning rate or clip gradients")]
    NonFinite(f32),
}

/// Training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean squared error between probabilities and targets (the published model's loss).
    Mse,
    /// Binary cross-entropy for `Sigmoid`, categorical cross-entropy for `Softmax`,
    /// computed from the logits as Keras does.
    CrossEntropy,
}

/// A named tensor: (Keras name, shape, row-major values).
pub type Tensor = (String, Vec<usize>, Vec<f32>);

/// Gradients of the loss with respect to every parameter, in the network's layouts.
#[derive(Clone, Debug)]
pub struct Grads {
    cfg: NetConfig,
    p: Params<f32>,
}

impl Grads {
    /// Gradients named like [`Net::tensors`].
    pub fn tensors(&self) -> Vec<Tensor> {
        named(&self.cfg, &self.p)
    }

    /// Euclidean norm over all gradients.
    pub fn global_norm(&self) -> f32 {
        self.p
            .slices()
            .iter()
            .flat_map(|s| s.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt() as f32
    }
}

/// An embedding + recurrent + dense classifier.
pub struct Net {
    cfg: NetConfig,
    p: Params<f32>,
    /// Input tables and packed recurrent kernels for inference, built on first use.
    prep: OnceLock<kernel::Prepared<f32>>,
}

impl Clone for Net {
    fn clone(&self) -> Self {
        Net {
            cfg: self.cfg.clone(),
            p: self.p.clone(),
            prep: OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn named(cfg: &NetConfig, p: &Params<f32>) -> Vec<Tensor> {
    cfg.tensor_specs()
        .into_iter()
        .zip(p.slices())
        .map(|((name, shape), data)| (name, shape, data.to_vec()))
        .collect()
}

/// Reject tokens outside the vocabulary (they would index past the embedding table).
pub fn check_tokens(vocab: usize, batch: &[&[u32]]) -> Result<(), RnnError> {
    for (row, seq) in batch.iter().enumerate() {
        if let Some(pos) = seq.iter().position(|&t| t as usize >= vocab) {
            return Err(RnnError::TokenOutOfRange {
                row,
                pos,
                token: seq[pos],
                vocab,
            });
        }
    }
    Ok(())
}

/// Checks a training batch against a net's shape: tokens inside the vocabulary, one target
/// row per sequence, one weight per sequence. The CPU and GPU nets share it.
pub fn check_batch(
    cfg: &NetConfig,
    batch: &[&[u32]],
    targets: &[f32],
    weights: Option<&[f32]>,
) -> Result<(), RnnError> {
    check_tokens(cfg.vocab, batch)?;
    let n = batch.len();
    let k = cfg.n_out();
    if targets.len() != n * k {
        return Err(RnnError::Length {
            what: "target values",
            expected: n * k,
            got: targets.len(),
        });
    }
    if let Some(w) = weights {
        if w.len() != n {
            return Err(RnnError::Length {
                what: "row weights",
                expected: n,
                got: w.len(),
            });
        }
    }
    Ok(())
}

fn threads_available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Net {
    /// Keras-default initialisation (uniform ±0.05 embedding, Glorot-uniform kernels,
    /// orthogonal recurrent kernels, forget-gate bias 1) drawn from SplitMix64 seeded by `seed`.
    pub fn new(cfg: NetConfig, seed: u64) -> Result<Net, RnnError> {
        cfg.validate()?;
        let p = params::init_params(&cfg, seed);
        Ok(Net {
            cfg,
            p,
            prep: OnceLock::new(),
        })
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Probabilities, row-major [n, n_out], in input order. Uses all available cores.
    pub fn predict(&self, batch: &[&[u32]]) -> Result<Vec<f32>, RnnError> {
        self.predict_threads(batch, threads_available())
    }

    /// [`Net::predict`] with an explicit thread count.
    pub fn predict_threads(&self, batch: &[&[u32]], threads: usize) -> Result<Vec<f32>, RnnError> {
        check_tokens(self.cfg.vocab, batch)?;
        let k = self.cfg.n_out();
        let z = kernel::logits_impl(&self.cfg, &self.p, self.prepared(), batch, threads.max(1));
        let mut out = vec![0.0f32; z.len()];
        for (o, zr) in out.chunks_exact_mut(k).zip(z.chunks_exact(k)) {
            kernel::probs_row(self.cfg.output, zr, o);
        }
        Ok(out)
    }

    /// Mean loss over the batch (per-row `weights` multiply each row's loss; the sum is still
    /// divided by the row count, as Keras does with sample weights) and its gradients.
    /// `targets` is [n, n_out]: 0/1 for sigmoid, one-hot (or soft) rows for softmax.
    pub fn loss_grad(
        &self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
        loss: Loss,
    ) -> Result<(f32, Grads), RnnError> {
        self.loss_grad_threads(batch, targets, weights, loss, 1)
    }

    /// [`Net::loss_grad`] with the batch split across `threads` threads.
    pub fn loss_grad_threads(
        &self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
        loss: Loss,
        threads: usize,
    ) -> Result<(f32, Grads), RnnError> {
        self.check_batch(batch, targets, weights)?;
        let (l, p) = kernel::loss_grad_impl(
            &self.cfg,
            &self.p,
            batch,
            targets,
            weights,
            loss,
            threads.max(1),
            &scratch::Scratch::new(),
        );
        Ok((
            l as f32,
            Grads {
                cfg: self.cfg.clone(),
                p,
            },
        ))
    }

    fn check_batch(
        &self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
    ) -> Result<(), RnnError> {
        check_batch(&self.cfg, batch, targets, weights)
    }

    /// Named tensors with Keras names and layouts (e.g. `rnn/lstm_cell/kernel` [embed, 4*hidden]).
    pub fn tensors(&self) -> Vec<Tensor> {
        named(&self.cfg, &self.p)
    }

    /// Build a network from named tensors (any order); every tensor must be present with its
    /// Keras shape, and unknown names are rejected.
    pub fn from_tensors(cfg: NetConfig, tensors: &[Tensor]) -> Result<Net, RnnError> {
        cfg.validate()?;
        let specs = cfg.tensor_specs();
        for (name, _, _) in tensors {
            if !specs.iter().any(|(s, _)| s == name) {
                return Err(RnnError::Tensor {
                    name: name.clone(),
                    problem: "unknown tensor name".into(),
                });
            }
        }
        // Every shape is checked against the data actually given before the parameters
        // are allocated, so an edited size in a model file cannot allocate more than the
        // file holds.
        let mut given = Vec::with_capacity(specs.len());
        for (name, shape) in &specs {
            let found: Vec<&Tensor> = tensors.iter().filter(|t| &t.0 == name).collect();
            let t = match found.as_slice() {
                [t] => *t,
                [] => {
                    return Err(RnnError::Tensor {
                        name: name.clone(),
                        problem: "missing".into(),
                    })
                }
                _ => {
                    return Err(RnnError::Tensor {
                        name: name.clone(),
                        problem: "given more than once".into(),
                    })
                }
            };
            let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if &t.1 != shape || Some(t.2.len()) != len {
                return Err(RnnError::Tensor {
                    name: name.clone(),
                    problem: format!(
                        "shape {:?} with {} values, expected {:?}",
                        t.1,
                        t.2.len(),
                        shape
                    ),
                });
            }
            given.push(t);
        }
        let mut p = Params::<f32>::zeros(&cfg);
        for (t, dst) in given.into_iter().zip(p.slices_mut()) {
            if t.2.len() != dst.len() {
                return Err(RnnError::Tensor {
                    name: t.0.clone(),
                    problem: format!("{} values, expected {}", t.2.len(), dst.len()),
                });
            }
            dst.copy_from_slice(&t.2);
        }
        Ok(Net {
            cfg,
            p,
            prep: OnceLock::new(),
        })
    }

    /// Per-token importance by occlusion: the score minus the score with that token removed
    /// (score = positive-class probability for sigmoid, probability of the predicted class for
    /// softmax). Positive values push towards the prediction. Costs one batched forward pass.
    pub fn token_attributions(&self, seq: &[u32]) -> Result<Vec<f32>, RnnError> {
        check_tokens(self.cfg.vocab, &[seq])?;
        let full = self.predict_threads(&[seq], 1)?;
        let k = self.cfg.n_out();
        let class = match self.cfg.output {
            Output::Sigmoid => 0,
            Output::Softmax(_) => (0..k).fold(0, |b, j| if full[j] > full[b] { j } else { b }),
        };
        let dropped: Vec<Vec<u32>> = (0..seq.len())
            .map(|i| {
                seq.iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &t)| t)
                    .collect()
            })
            .collect();
        let refs: Vec<&[u32]> = dropped.iter().map(|v| v.as_slice()).collect();
        let p = self.predict(&refs)?;
        Ok((0..seq.len())
            .map(|i| full[class] - p[i * k + class])
            .collect())
    }

    pub(crate) fn params(&self) -> &Params<f32> {
        &self.p
    }

    /// Mutable parameters; drops the cached inference tables.
    pub(crate) fn params_mut(&mut self) -> &mut Params<f32> {
        self.prep = OnceLock::new();
        &mut self.p
    }

    pub(crate) fn prepared(&self) -> &kernel::Prepared<f32> {
        self.prep
            .get_or_init(|| kernel::prepare(&self.cfg, &self.p, false))
    }
}
