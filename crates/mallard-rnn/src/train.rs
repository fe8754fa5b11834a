//! Minibatch training loop with Keras `fit` semantics (validation split, class weights,
//! early stopping on validation loss).

use std::time::Instant;

use crate::kernel;
use crate::optim::{OptState, Optimizer};
use crate::params::{NetConfig, Output, Params};
use crate::rng::SplitMix64;
use crate::{check_tokens, Loss, Net, RnnError};

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    pub loss: Loss,
    /// Fraction held out for validation: the *last* rows, before shuffling (as Keras does).
    pub validation_split: f32,
    /// Stop after this many epochs without a lower monitored loss (validation loss, or training
    /// loss without a validation split) and restore the best weights.
    pub early_stopping_patience: Option<usize>,
    /// Weight per class, multiplying each training row's loss (not applied to validation).
    pub class_weights: Option<Vec<f32>>,
    pub seed: u64,
    /// Shuffle the training rows every epoch.
    pub shuffle: bool,
    /// Worker threads per minibatch (1 = no threads spawned).
    pub threads: usize,
    /// Clip the global gradient norm to this value before each step.
    pub clip_norm: Option<f32>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            optimizer: Optimizer::adam(),
            loss: Loss::CrossEntropy,
            validation_split: 0.0,
            early_stopping_patience: None,
            class_weights: None,
            seed: 0,
            shuffle: true,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            clip_norm: None,
        }
    }
}

/// One finished epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's minibatches, weighted by batch size.
    pub loss: f32,
    pub val_loss: Option<f32>,
    pub val_accuracy: Option<f32>,
    pub seconds: f64,
}

/// What training did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSummary {
    pub history: Vec<EpochReport>,
    /// 1-based epoch whose weights the network holds at the end when early stopping is on.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
}

fn targets_for(cfg: &NetConfig, label: usize, out: &mut Vec<f32>) {
    match cfg.output {
        Output::Sigmoid => out.push(label as f32),
        Output::Softmax(k) => out.extend((0..k).map(|j| if j == label { 1.0 } else { 0.0 })),
    }
}

/// Mean loss and accuracy of `rows` (unweighted), with the given thread count.
fn evaluate(
    net: &Net,
    seqs: &[Vec<u32>],
    labels: &[usize],
    rows: &[usize],
    loss: Loss,
    threads: usize,
) -> (f32, f32) {
    let cfg = &net.cfg;
    let k = cfg.n_out();
    let batch: Vec<&[u32]> = rows.iter().map(|&i| seqs[i].as_slice()).collect();
    let z = kernel::logits_impl(cfg, net.params(), net.prepared(), &batch, threads);
    let mut y = Vec::with_capacity(k);
    let (mut lsum, mut correct) = (0.0f64, 0usize);
    let mut p = vec![0.0f32; k];
    for (r, &i) in rows.iter().enumerate() {
        y.clear();
        targets_for(cfg, labels[i], &mut y);
        let zr = &z[r * k..(r + 1) * k];
        lsum += kernel::row_loss(cfg.output, loss, zr, &y, None);
        kernel::probs_row(cfg.output, zr, &mut p);
        let pred = match cfg.output {
            Output::Sigmoid => usize::from(p[0] > 0.5),
            Output::Softmax(_) => (0..k).fold(0, |b, j| if p[j] > p[b] { j } else { b }),
        };
        correct += usize::from(pred == labels[i]);
    }
    let n = rows.len().max(1) as f64;
    ((lsum / n) as f32, (correct as f64 / n) as f32)
}

fn clip(g: &mut Params<f32>, max_norm: f32) {
    let norm = g
        .slices()
        .iter()
        .flat_map(|s| s.iter())
        .map(|&x| (x as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    if norm > max_norm as f64 && norm > 0.0 {
        let s = (max_norm as f64 / norm) as f32;
        for t in g.slices_mut() {
            t.iter_mut().for_each(|x| *x *= s);
        }
    }
}

/// Train `net` on `seqs` with integer `labels` (0/1 for sigmoid, class index for softmax).
/// `on_epoch` sees each finished epoch; `on_batch(done, total, running_loss)` each minibatch.
pub fn train(
    net: &mut Net,
    seqs: &[Vec<u32>],
    labels: &[usize],
    cfg: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
    on_batch: &mut dyn FnMut(usize, usize, f32),
) -> Result<TrainSummary, RnnError> {
    let ncfg = net.cfg.clone();
    let n = seqs.len();
    if labels.len() != n {
        return Err(RnnError::Length {
            what: "labels",
            expected: n,
            got: labels.len(),
        });
    }
    if cfg.batch_size == 0 {
        return Err(RnnError::Config("batch_size must be positive".into()));
    }
    if !(0.0..1.0).contains(&cfg.validation_split) {
        return Err(RnnError::Config(
            "validation_split must be in [0, 1)".into(),
        ));
    }
    let classes = ncfg.n_classes();
    if let Some((row, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
        return Err(RnnError::Label {
            row,
            label,
            classes,
        });
    }
    if let Some(cw) = &cfg.class_weights {
        if cw.len() != classes {
            return Err(RnnError::Length {
                what: "class weights",
                expected: classes,
                got: cw.len(),
            });
        }
    }
    let all: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();
    check_tokens(ncfg.vocab, &all)?;

    let n_train = if cfg.validation_split > 0.0 {
        (n as f64 * (1.0 - cfg.validation_split as f64)) as usize
    } else {
        n
    };
    if n_train == 0 {
        return Err(RnnError::Config("no training rows".into()));
    }
    let val_rows: Vec<usize> = (n_train..n).collect();
    if cfg.validation_split > 0.0 && val_rows.is_empty() {
        return Err(RnnError::Config(
            "validation split leaves no validation rows".into(),
        ));
    }
    let threads = cfg.threads.max(1);
    let mut rng = SplitMix64::new(cfg.seed);
    let mut opt = OptState::new(cfg.optimizer, net.params());
    let mut order: Vec<usize> = (0..n_train).collect();
    let total_batches = n_train.div_ceil(cfg.batch_size);
    let mut summary = TrainSummary {
        history: Vec::new(),
        best_epoch: None,
        stopped_early: false,
    };
    let mut best: Option<(f32, Params<f32>)> = None;
    let mut wait = 0usize;
    let (mut batch, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());

    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        if cfg.shuffle {
            rng.shuffle(&mut order);
        }
        let (mut lsum, mut seen) = (0.0f64, 0usize);
        for (bi, rows) in order.chunks(cfg.batch_size).enumerate() {
            batch.clear();
            targets.clear();
            weights.clear();
            for &i in rows {
                batch.push(seqs[i].as_slice());
                targets_for(&ncfg, labels[i], &mut targets);
                weights.push(cfg.class_weights.as_ref().map_or(1.0, |cw| cw[labels[i]]));
            }
            let w = cfg.class_weights.as_ref().map(|_| weights.as_slice());
            let (l, mut g) =
                kernel::loss_grad_impl(&ncfg, net.params(), &batch, &targets, w, cfg.loss, threads);
            if !l.is_finite() {
                return Err(RnnError::NonFinite(l as f32));
            }
            if let Some(c) = cfg.clip_norm {
                clip(&mut g, c);
            }
            opt.step(net.params_mut(), &g);
            lsum += l * rows.len() as f64;
            seen += rows.len();
            on_batch(bi + 1, total_batches, (lsum / seen as f64) as f32);
        }
        let loss = (lsum / seen.max(1) as f64) as f32;
        let (val_loss, val_accuracy) = if val_rows.is_empty() {
            (None, None)
        } else {
            let (vl, va) = evaluate(net, seqs, labels, &val_rows, cfg.loss, threads);
            (Some(vl), Some(va))
        };
        let report = EpochReport {
            epoch,
            loss,
            val_loss,
            val_accuracy,
            seconds: start.elapsed().as_secs_f64(),
        };
        on_epoch(&report);
        summary.history.push(report);
        if let Some(patience) = cfg.early_stopping_patience {
            let monitored = val_loss.unwrap_or(loss);
            if best.as_ref().is_none_or(|(b, _)| monitored < *b) {
                best = Some((monitored, net.params().clone()));
                summary.best_epoch = Some(epoch);
                wait = 0;
            } else {
                wait += 1;
                if wait >= patience {
                    summary.stopped_early = true;
                    break;
                }
            }
        }
    }
    if let Some((_, p)) = best {
        *net.params_mut() = p;
    }
    Ok(summary)
}
