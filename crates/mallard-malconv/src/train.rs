//! Minibatch training with the recurrent nets' pieces: the same optimizers (Keras update
//! rules), early stopping that restores the best weights, class weights, seeded shuffles.

use crate::{add_into, fill_zero, MalConv, MalConvError, Pooled, Scratch, Weights};
use mallard_rand::SplitMix64;
use mallard_rnn::{EarlyStopping, EpochReport, OptState, Optimizer, Stopping, TrainSummary};
use std::time::Instant;

/// Training settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub optimizer: Optimizer,
    /// Stop after this many epochs without a lower validation loss (training loss without
    /// validation rows) and restore the best weights.
    pub patience: Option<usize>,
    /// Loss weight of class 0 (benign) and class 1 (malicious) training rows.
    pub class_weights: Option<[f32; 2]>,
    pub seed: u64,
    /// Worker threads per minibatch.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 16,
            optimizer: Optimizer::adam(),
            patience: Some(3),
            class_weights: None,
            seed: 0,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// Reads row `i`'s bytes (the caller caps their length); an error names the input.
pub type Source<'a> = dyn Fn(usize) -> Result<Vec<u8>, String> + Sync + 'a;

/// The forward pass over whole inputs on another device (the GPU backend, [`crate::gpu`]):
/// nearly all of MalConv's arithmetic. The head and the sparse backward stay on the CPU.
pub trait BatchPooler {
    /// Takes `net`'s current weights (called before the first batch and after every update).
    fn load(&mut self, net: &MalConv) -> Result<(), MalConvError>;
    /// Pools every input, in order, with the loaded weights.
    fn pool(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Pooled>, MalConvError>;
}

/// Trains `net` on `train_rows` (labels 0/1 in `labels`), early-stopping on `val_rows`
/// when given; `on_epoch` hears about every finished epoch.
pub fn train(
    net: &mut MalConv,
    source: &Source<'_>,
    labels: &[usize],
    train_rows: &[usize],
    val_rows: &[usize],
    cfg: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<TrainSummary, MalConvError> {
    train_impl(
        net, source, labels, train_rows, val_rows, cfg, None, on_epoch,
    )
}

/// [`train`] with every forward pass done by `pooler` (the same shuffles, optimizer,
/// early stopping and class weights; results differ from the CPU's by float rounding).
#[allow(clippy::too_many_arguments)]
pub fn train_pooled(
    net: &mut MalConv,
    source: &Source<'_>,
    labels: &[usize],
    train_rows: &[usize],
    val_rows: &[usize],
    cfg: &TrainConfig,
    pooler: &mut dyn BatchPooler,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<TrainSummary, MalConvError> {
    train_impl(
        net,
        source,
        labels,
        train_rows,
        val_rows,
        cfg,
        Some(pooler),
        on_epoch,
    )
}

#[allow(clippy::too_many_arguments)]
fn train_impl(
    net: &mut MalConv,
    source: &Source<'_>,
    labels: &[usize],
    train_rows: &[usize],
    val_rows: &[usize],
    cfg: &TrainConfig,
    mut pooler: Option<&mut dyn BatchPooler>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<TrainSummary, MalConvError> {
    if train_rows.is_empty() {
        return Err(MalConvError::Train("no training rows".into()));
    }
    if let Some(&bad) = train_rows
        .iter()
        .chain(val_rows)
        .find(|&&i| labels.get(i).is_none_or(|&y| y > 1))
    {
        return Err(MalConvError::Train(format!(
            "row {bad} has no 0/1 label (MalConv is a two-class model)"
        )));
    }
    let threads = cfg.threads.max(1);
    let batch = cfg.batch_size.max(1);
    let sizes: Vec<usize> = net.weights().slices().iter().map(|s| s.len()).collect();
    let mut opt = OptState::with_sizes(cfg.optimizer, &sizes);
    let mut rng = SplitMix64::new(cfg.seed);
    let mut order = train_rows.to_vec();
    let mut stopping = EarlyStopping::new(cfg.patience);
    let mut summary = TrainSummary::default();
    let mut best: Option<Weights> = None;
    let mut grads: Vec<Weights> = (0..threads).map(|_| net.zero_grads()).collect();
    let mut scratch: Vec<Scratch> = (0..threads).map(|_| Scratch::default()).collect();
    for epoch in 1..=cfg.epochs {
        let start = Instant::now();
        rng.shuffle(&mut order);
        let (mut loss_sum, mut rows) = (0.0f64, 0usize);
        if let Some(p) = pooler.as_deref_mut() {
            p.load(net)?;
        }
        for rows_b in order.chunks(batch) {
            let per = rows_b.len().div_ceil(threads);
            let net_ref = &*net;
            let losses: Vec<Result<f64, String>> = if let Some(p) = pooler.as_deref_mut() {
                let inputs = read_rows(source, rows_b, threads).map_err(MalConvError::Train)?;
                let pooled = p.pool(&inputs)?;
                std::thread::scope(|sc| {
                    let handles: Vec<_> = rows_b
                        .chunks(per)
                        .zip(inputs.chunks(per))
                        .zip(pooled.chunks(per))
                        .zip(grads.iter_mut())
                        .map(|(((part, ins), ps), g)| {
                            sc.spawn(move || {
                                fill_zero(g);
                                let mut l = 0.0f64;
                                for ((&i, bytes), pi) in part.iter().zip(ins).zip(ps) {
                                    let y = labels[i];
                                    let w = cfg.class_weights.map_or(1.0, |cw| cw[y]);
                                    l += net_ref.accumulate_grad_pooled(bytes, pi, y as f32, w, g)
                                        as f64;
                                }
                                Ok(l)
                            })
                        })
                        .collect();
                    join_all(handles, "a training thread panicked")
                })
            } else {
                std::thread::scope(|sc| {
                    let handles: Vec<_> = rows_b
                        .chunks(per)
                        .zip(grads.iter_mut())
                        .zip(scratch.iter_mut())
                        .map(|((part, g), s)| {
                            sc.spawn(move || {
                                fill_zero(g);
                                let mut l = 0.0f64;
                                for &i in part {
                                    let bytes = source(i)?;
                                    let y = labels[i];
                                    let w = cfg.class_weights.map_or(1.0, |cw| cw[y]);
                                    l += net_ref.accumulate_grad(&bytes, y as f32, w, g, s) as f64;
                                }
                                Ok(l)
                            })
                        })
                        .collect();
                    join_all(handles, "a training thread panicked")
                })
            };
            let used = rows_b.chunks(per).count();
            for l in losses {
                loss_sum += l.map_err(MalConvError::Train)?;
            }
            let (first, rest) = grads.split_at_mut(1);
            for g in rest.iter().take(used - 1) {
                add_into(&mut first[0], g);
            }
            let n = rows_b.len() as f32;
            let mut mean = first[0].clone();
            for s in mean.slices_mut() {
                for x in s.iter_mut() {
                    *x /= n;
                }
            }
            opt.step_slices(net.weights_mut().slices_mut(), mean.slices());
            if let Some(p) = pooler.as_deref_mut() {
                p.load(net)?;
            }
            rows += rows_b.len();
        }
        let loss = (loss_sum / rows.max(1) as f64) as f32;
        let val = if val_rows.is_empty() {
            None
        } else {
            Some(evaluate(
                net,
                source,
                labels,
                val_rows,
                threads,
                pooler.as_deref_mut(),
            )?)
        };
        let decision = summary.end_epoch(epoch, loss, val, start, &mut stopping, on_epoch);
        match decision {
            Stopping::Best => best = Some(net.weights().clone()),
            Stopping::Stop => break,
            Stopping::Continue => {}
        }
    }
    if let Some(b) = best {
        *net.weights_mut() = b;
    }
    Ok(summary)
}

/// P(malicious) of every row, on `threads` threads.
pub fn predict_rows(
    net: &MalConv,
    source: &Source<'_>,
    rows: &[usize],
    threads: usize,
) -> Result<Vec<f32>, MalConvError> {
    let per = rows.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Result<Vec<f32>, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = rows
            .chunks(per)
            .map(|part| {
                sc.spawn(move || {
                    let mut s = Scratch::default();
                    part.iter()
                        .map(|&i| Ok(net.score_bytes(&source(i)?, &mut s)))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a scoring thread panicked".into()))
            })
            .collect()
    });
    let mut out = Vec::with_capacity(rows.len());
    for p in parts {
        out.extend(p.map_err(MalConvError::Train)?);
    }
    Ok(out)
}

/// Rows scored per [`BatchPooler::pool`] call when predicting.
const PREDICT_GROUP: usize = 32;

/// [`predict_rows`] with the forward passes done by `pooler` (loaded with `net`).
pub fn predict_rows_pooled(
    net: &MalConv,
    source: &Source<'_>,
    rows: &[usize],
    threads: usize,
    pooler: &mut (dyn BatchPooler + '_),
) -> Result<Vec<f32>, MalConvError> {
    pooler.load(net)?;
    let mut out = Vec::with_capacity(rows.len());
    for group in rows.chunks(PREDICT_GROUP) {
        let inputs = read_rows(source, group, threads).map_err(MalConvError::Train)?;
        out.extend(pooler.pool(&inputs)?.iter().map(|p| net.probability(p)));
    }
    Ok(out)
}

/// Each row's bytes, read on up to `threads` threads, in row order.
fn read_rows(source: &Source<'_>, rows: &[usize], threads: usize) -> Result<Vec<Vec<u8>>, String> {
    let per = rows.len().div_ceil(threads.max(1)).max(1);
    let parts: Vec<Result<Vec<Vec<u8>>, String>> = std::thread::scope(|sc| {
        let handles: Vec<_> = rows
            .chunks(per)
            .map(|part| sc.spawn(move || part.iter().map(|&i| source(i)).collect()))
            .collect();
        join_all(handles, "a reading thread panicked")
    });
    let mut out = Vec::with_capacity(rows.len());
    for p in parts {
        out.extend(p?);
    }
    Ok(out)
}

fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<T, String>>>,
    panicked: &str,
) -> Vec<Result<T, String>> {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| Err(panicked.into())))
        .collect()
}

/// Mean (unweighted) loss and accuracy at 0.5.
fn evaluate(
    net: &MalConv,
    source: &Source<'_>,
    labels: &[usize],
    rows: &[usize],
    threads: usize,
    pooler: Option<&mut (dyn BatchPooler + '_)>,
) -> Result<(f32, f32), MalConvError> {
    let p = match pooler {
        Some(pl) => predict_rows_pooled(net, source, rows, threads, pl)?,
        None => predict_rows(net, source, rows, threads)?,
    };
    let (mut loss, mut right) = (0.0f64, 0usize);
    for (&i, &pi) in rows.iter().zip(&p) {
        let y = labels[i] as f32;
        let pi = pi.clamp(1e-7, 1.0 - 1e-7) as f64;
        loss -= y as f64 * pi.ln() + (1.0 - y as f64) * (1.0 - pi).ln();
        right += usize::from((pi >= 0.5) == (labels[i] == 1));
    }
    let n = rows.len().max(1) as f64;
    Ok(((loss / n) as f32, (right as f64 / n) as f32))
}
