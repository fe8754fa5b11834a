//! [`train`]: `mallard_rnn::train` with the minibatches run on the GPU.

use std::time::{Duration, Instant};

use mallard_rnn::{
    targets_for, EarlyStopping, EpochOrder, EpochReport, Loss, Net, Output, RnnError, Stopping,
    TrainConfig, TrainPlan, TrainSummary,
};

use crate::net::probs_row;
use crate::{GpuError, GpuNet};

/// How often, at most, `on_batch` hears about progress within an epoch (each report waits for
/// the device, so reporting every minibatch would serialise host and GPU).
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Unweighted loss of one row from its logits, with the CPU kernel's formulas (in f64).
fn row_loss(output: Output, loss: Loss, z: &[f32], y: &[f32], p: &[f32]) -> f64 {
    match (loss, output) {
        (Loss::CrossEntropy, Output::Sigmoid) => {
            let (zv, yv) = (z[0] as f64, y[0] as f64);
            zv.max(0.0) - yv * zv + (-zv.abs()).exp().ln_1p()
        }
        (Loss::CrossEntropy, Output::Softmax(_)) => {
            let m = z
                .iter()
                .map(|&v| v as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|&v| (v as f64 - m).exp()).sum::<f64>().ln();
            z.iter()
                .zip(y)
                .map(|(&zv, &yv)| yv as f64 * (lse - zv as f64))
                .sum()
        }
        (Loss::Mse, _) => {
            p.iter()
                .zip(y)
                .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
                .sum::<f64>()
                / p.len() as f64
        }
    }
}

/// Mean (unweighted) loss and accuracy of `rows`, from logits computed on the GPU.
fn evaluate(
    gpu: &mut GpuNet,
    seqs: &[Vec<u32>],
    labels: &[usize],
    rows: &[usize],
    loss: Loss,
) -> Result<(f32, f32), GpuError> {
    let cfg = gpu.config().clone();
    let k = cfg.n_out();
    let batch: Vec<&[u32]> = rows.iter().map(|&i| seqs[i].as_slice()).collect();
    let z = gpu.logits(&batch)?;
    let mut y = Vec::with_capacity(k);
    let mut p = vec![0.0f32; k];
    let (mut lsum, mut correct) = (0.0f64, 0usize);
    for (r, &i) in rows.iter().enumerate() {
        y.clear();
        targets_for(&cfg, labels[i], &mut y);
        let zr = &z[r * k..(r + 1) * k];
        probs_row(cfg.output, zr, &mut p);
        lsum += row_loss(cfg.output, loss, zr, &y, &p);
        let pred = match cfg.output {
            Output::Sigmoid => usize::from(p[0] > 0.5),
            Output::Softmax(_) => (0..k).fold(0, |b, j| if p[j] > p[b] { j } else { b }),
        };
        correct += usize::from(pred == labels[i]);
    }
    let n = rows.len().max(1) as f64;
    Ok(((lsum / n) as f32, (correct as f64 / n) as f32))
}

/// [`mallard_rnn::train`] on the GPU: the same checks, validation rows (the last
/// `validation_split` of the rows), class weights, loss, optimizer, per-epoch SplitMix64
/// shuffle (so the same row order as the CPU for the same seed), gradient-norm clipping,
/// early stopping with the best weights restored, and the same [`TrainSummary`]. Forward,
/// backward, clipping and the optimizer step run on the GPU; validation runs there too, with
/// the loss and accuracy computed on the host from the logits.
///
/// Differences from the CPU function:
/// - `on_batch(done, total, running_loss)` is called after the last minibatch of each epoch
///   and otherwise at most about once a second (each call waits for the device), not after
///   every minibatch; `done` is the number of minibatches finished.
/// - A non-finite minibatch loss is noticed at the next such report, not at once; the error
///   names that minibatch's loss as the CPU's does, but `net` is then left unchanged (the CPU
///   leaves the weights of the steps before the failing minibatch).
/// - `cfg.threads` is ignored.
/// - Results agree with the CPU's to float rounding (GPU sums in another order), not bit for
///   bit, so a validation loss within rounding of the best so far could in principle decide
///   early stopping differently.
///
/// At the end `net` holds the trained weights (the best epoch's with early stopping).
pub fn train(
    net: &mut Net,
    seqs: &[Vec<u32>],
    labels: &[usize],
    cfg: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
    on_batch: &mut dyn FnMut(usize, usize, f32),
) -> Result<TrainSummary, GpuError> {
    train_reporting(net, seqs, labels, cfg, on_epoch, on_batch, REPORT_EVERY)
}

/// [`train`] with `on_batch` at most every `every` within an epoch (zero: every minibatch).
pub(crate) fn train_reporting(
    net: &mut Net,
    seqs: &[Vec<u32>],
    labels: &[usize],
    cfg: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
    on_batch: &mut dyn FnMut(usize, usize, f32),
    every: Duration,
) -> Result<TrainSummary, GpuError> {
    let ncfg = net.config().clone();
    let n = seqs.len();
    let plan = TrainPlan::new(&ncfg, seqs, labels, cfg)?;
    let all: Vec<&[u32]> = seqs.iter().map(|s| s.as_slice()).collect();

    let mut gpu = GpuNet::from_net(net)?;
    let mut targets = Vec::with_capacity(n * ncfg.n_out());
    for &l in labels {
        targets_for(&ncfg, l, &mut targets);
    }
    let weights: Option<Vec<f32>> = cfg
        .class_weights
        .as_ref()
        .map(|cw| labels.iter().map(|&l| cw[l]).collect());

    let mut epochs = EpochOrder::new(plan.n_train, cfg);
    let mut stopping = EarlyStopping::new(cfg.early_stopping_patience);
    let bs = cfg.batch_size;
    let total_batches = plan.total_batches;
    let mut summary = TrainSummary::default();
    let mut best_weights = None;

    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        let order = epochs.next_epoch();
        // `l` holds the weighted row losses of the first `done` minibatches, each minibatch's
        // rows together, so the running loss and the per-minibatch check are the CPU's.
        let mut progress = |done: usize, l: &[f32]| -> Result<(), GpuError> {
            let mut lsum = 0.0f64;
            for rows in l.chunks(bs) {
                let s: f64 = rows.iter().map(|&x| x as f64).sum();
                let mean = s / rows.len() as f64;
                if !mean.is_finite() {
                    return Err(RnnError::NonFinite(mean as f32).into());
                }
                lsum += s;
            }
            on_batch(done, total_batches, (lsum / l.len().max(1) as f64) as f32);
            Ok(())
        };
        let rowloss = gpu.run_epoch(
            &all,
            &targets,
            weights.as_deref(),
            order,
            bs,
            cfg.loss,
            cfg.optimizer,
            cfg.clip_norm,
            Some(every),
            &mut progress,
        )?;
        let loss =
            (rowloss.iter().map(|&x| x as f64).sum::<f64>() / rowloss.len().max(1) as f64) as f32;
        let val = if plan.val_rows.is_empty() {
            None
        } else {
            Some(evaluate(&mut gpu, seqs, labels, &plan.val_rows, cfg.loss)?)
        };
        match summary.end_epoch(epoch, loss, val, start, &mut stopping, on_epoch) {
            Stopping::Best => gpu.snapshot(&mut best_weights),
            Stopping::Stop => break,
            Stopping::Continue => {}
        }
    }
    if let Some(b) = &best_weights {
        gpu.restore(b);
    }
    *net = gpu.to_net()?;
    Ok(summary)
}
