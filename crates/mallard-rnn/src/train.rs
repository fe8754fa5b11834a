//! Minibatch training loop with Keras `fit` semantics (validation split, class weights,
//! early stopping on validation loss).

use std::time::Instant;

use crate::kernel;
use crate::optim::{OptState, Optimizer};
use crate::params::{NetConfig, Output, Params};
use crate::rng::{ShuffleHigh, SplitMix64};
use crate::scratch::Scratch;
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
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TrainSummary {
    pub history: Vec<EpochReport>,
    /// 1-based epoch whose weights the network holds at the end when early stopping is on.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
}

impl TrainSummary {
    /// Records a finished epoch (validation loss and accuracy in `val`), tells `on_epoch`
    /// and applies `stopping`: on [`Stopping::Best`] the caller keeps the current weights,
    /// on [`Stopping::Stop`] it stops.
    pub fn end_epoch(
        &mut self,
        epoch: usize,
        loss: f32,
        val: Option<(f32, f32)>,
        start: Instant,
        stopping: &mut EarlyStopping,
        on_epoch: &mut dyn FnMut(&EpochReport),
    ) -> Stopping {
        let report = EpochReport {
            epoch,
            loss,
            val_loss: val.map(|v| v.0),
            val_accuracy: val.map(|v| v.1),
            seconds: start.elapsed().as_secs_f64(),
        };
        on_epoch(&report);
        self.history.push(report);
        let decision = stopping.update(loss, val.map(|v| v.0));
        match decision {
            Stopping::Best => self.best_epoch = Some(epoch),
            Stopping::Stop => self.stopped_early = true,
            Stopping::Continue => {}
        }
        decision
    }
}

/// The one-hot (softmax) or 0/1 (sigmoid) target of `label`, appended to `out`.
pub fn targets_for(cfg: &NetConfig, label: usize, out: &mut Vec<f32>) {
    match cfg.output {
        Output::Sigmoid => out.push(label as f32),
        Output::Softmax(k) => out.extend((0..k).map(|j| if j == label { 1.0 } else { 0.0 })),
    }
}

/// The checked inputs of a training run and its split. Public so that other backends
/// (`mallard-rnn-gpu`) check, split, shuffle and stop exactly as [`train`] does.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainPlan {
    /// The first `n_train` rows are trained on.
    pub n_train: usize,
    /// The rest: validation rows (Keras' `validation_split` takes the last rows, unshuffled).
    pub val_rows: Vec<usize>,
    /// Minibatches per epoch.
    pub total_batches: usize,
}

impl TrainPlan {
    pub fn new(
        net: &NetConfig,
        seqs: &[Vec<u32>],
        labels: &[usize],
        cfg: &TrainConfig,
    ) -> Result<Self, RnnError> {
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
        let classes = net.n_classes();
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
        check_tokens(net.vocab, &all)?;

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
        Ok(TrainPlan {
            n_train,
            val_rows,
            total_batches: n_train.div_ceil(cfg.batch_size),
        })
    }
}

/// The order of the training rows, epoch after epoch: SplitMix64 seeded with `cfg.seed`, one
/// Fisher-Yates pass per epoch over the previous epoch's order (when `cfg.shuffle`).
#[derive(Clone, Debug)]
pub struct EpochOrder {
    rng: SplitMix64,
    order: Vec<usize>,
    shuffle: bool,
}

impl EpochOrder {
    pub fn new(n_train: usize, cfg: &TrainConfig) -> Self {
        EpochOrder {
            rng: SplitMix64::new(cfg.seed),
            order: (0..n_train).collect(),
            shuffle: cfg.shuffle,
        }
    }

    /// The next epoch's row order.
    pub fn next_epoch(&mut self) -> &[usize] {
        if self.shuffle {
            self.rng.shuffle_53(&mut self.order);
        }
        &self.order
    }
}

/// What early stopping makes of an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopping {
    /// A new best: keep these weights.
    Best,
    Continue,
    /// `patience` epochs without a new best: stop and restore the best weights.
    Stop,
}

/// Keras' `EarlyStopping(restore_best_weights=True)` on the validation loss, or the training
/// loss without a validation split; without a patience every epoch is [`Stopping::Continue`].
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    patience: Option<usize>,
    best: Option<f32>,
    wait: usize,
}

impl EarlyStopping {
    pub fn new(patience: Option<usize>) -> Self {
        EarlyStopping {
            patience,
            best: None,
            wait: 0,
        }
    }

    pub fn update(&mut self, loss: f32, val_loss: Option<f32>) -> Stopping {
        let Some(patience) = self.patience else {
            return Stopping::Continue;
        };
        let monitored = val_loss.unwrap_or(loss);
        if self.best.is_none_or(|b| monitored < b) {
            self.best = Some(monitored);
            self.wait = 0;
            Stopping::Best
        } else {
            self.wait += 1;
            if self.wait >= patience {
                Stopping::Stop
            } else {
                Stopping::Continue
            }
        }
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
    let plan = TrainPlan::new(&ncfg, seqs, labels, cfg)?;
    let threads = cfg.threads.max(1);
    let mut epochs = EpochOrder::new(plan.n_train, cfg);
    let mut stopping = EarlyStopping::new(cfg.early_stopping_patience);
    let mut opt = OptState::new(cfg.optimizer, net.params());
    let total_batches = plan.total_batches;
    let mut summary = TrainSummary::default();
    let mut best: Option<Params<f32>> = None;
    let (mut batch, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
    let scratch = Scratch::new();

    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        let (mut lsum, mut seen) = (0.0f64, 0usize);
        for (bi, rows) in epochs.next_epoch().chunks(cfg.batch_size).enumerate() {
            batch.clear();
            targets.clear();
            weights.clear();
            for &i in rows {
                batch.push(seqs[i].as_slice());
                targets_for(&ncfg, labels[i], &mut targets);
                weights.push(cfg.class_weights.as_ref().map_or(1.0, |cw| cw[labels[i]]));
            }
            let w = cfg.class_weights.as_ref().map(|_| weights.as_slice());
            let (l, mut g) = kernel::loss_grad_impl(
                &ncfg,
                net.params(),
                &batch,
                &targets,
                w,
                cfg.loss,
                threads,
                &scratch,
            );
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
        let val = (!plan.val_rows.is_empty())
            .then(|| evaluate(net, seqs, labels, &plan.val_rows, cfg.loss, threads));
        match summary.end_epoch(epoch, loss, val, start, &mut stopping, on_epoch) {
            Stopping::Best => best = Some(net.params().clone()),
            Stopping::Stop => break,
            Stopping::Continue => {}
        }
    }
    if let Some(p) = best {
        *net.params_mut() = p;
    }
    Ok(summary)
}

#[cfg(test)]
mod loop_parts {
    use super::*;

    #[test]
    fn early_stopping_counts_epochs_without_a_new_best() {
        let mut s = EarlyStopping::new(Some(2));
        // Validation loss is monitored when there is one, training loss otherwise.
        assert_eq!(s.update(9.0, Some(1.0)), Stopping::Best);
        assert_eq!(s.update(0.1, Some(1.0)), Stopping::Continue); // equal is not better
        assert_eq!(s.update(0.1, Some(0.5)), Stopping::Best);
        assert_eq!(s.update(0.1, Some(0.7)), Stopping::Continue);
        assert_eq!(s.update(0.1, Some(0.6)), Stopping::Stop);
        let mut none = EarlyStopping::new(None);
        assert!((0..5).all(|i| none.update(i as f32, None) == Stopping::Continue));
    }

    #[test]
    fn plan_holds_out_the_last_rows_and_epoch_order_is_a_permutation() {
        let cfg = NetConfig {
            vocab: 5,
            embed: 2,
            hidden: 2,
            cell: crate::Cell::Gru,
            output: Output::Sigmoid,
            head: crate::Head::Last,
        };
        let seqs: Vec<Vec<u32>> = (0..10).map(|i| vec![1 + i % 4]).collect();
        let labels = vec![0usize; 10];
        let tc = TrainConfig {
            validation_split: 0.25,
            batch_size: 3,
            ..TrainConfig::default()
        };
        let plan = TrainPlan::new(&cfg, &seqs, &labels, &tc).unwrap();
        assert_eq!((plan.n_train, plan.total_batches), (7, 3));
        assert_eq!(plan.val_rows, vec![7, 8, 9]);
        let mut order = EpochOrder::new(plan.n_train, &tc);
        let (a, b) = (order.next_epoch().to_vec(), order.next_epoch().to_vec());
        assert_ne!(a, b);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
        // Same seed, same orders; a label outside the output is an error.
        let mut again = EpochOrder::new(plan.n_train, &tc);
        assert_eq!(again.next_epoch(), a.as_slice());
        assert!(TrainPlan::new(&cfg, &seqs, &[2; 10], &tc).is_err());
    }
}
