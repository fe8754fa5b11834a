//! A small feed-forward network for static feature tables, after Saxe & Berlin (2015):
//! standardised inputs, two hidden layers (128, 64) with ReLU or PReLU, dropout, Adam,
//! sigmoid (binary) or softmax output, early stopping.
//!
//! Math is f64 (so finite differences can prove the hand-written backward pass); weights
//! are rounded to f32 after training so a stored model predicts exactly as the trained one.

use serde::{Deserialize, Serialize};

/// Training data: row-major `x` of `n_features` columns and class indices `y`.
#[derive(Debug, Clone, Copy)]
pub struct Dataset<'a> {
    pub x: &'a [f32],
    pub n_features: usize,
    pub y: &'a [usize],
}

#[derive(Debug, thiserror::Error)]
pub enum MlpError {
    #[error("invalid parameter: {0}")]
    Param(String),
    #[error("invalid data: {0}")]
    Data(String),
    #[error("invalid model: {0}")]
    Model(String),
}

fn check_x(x: &[f32], n_features: usize) -> Result<usize, MlpError> {
    mallard_tables::row_count(x.len(), n_features).map_err(MlpError::Data)
}

/// Softmax of `z` into `p`, shifted by the largest score so large scores cannot overflow.
fn softmax(z: &[f64], p: &mut [f64]) {
    let top = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut sum = 0.0;
    for (q, &v) in p.iter_mut().zip(z) {
        *q = (v - top).exp();
        sum += *q;
    }
    p.iter_mut().for_each(|q| *q /= sum);
}

/// Hidden-layer non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    Relu,
    /// ReLU with a learned slope per unit for negative inputs (Saxe & Berlin), starting at 0.25.
    Prelu,
}

/// Training parameters; the defaults mirror the baseline's scikit-learn `MLPClassifier`
/// (hidden (128, 64), ReLU, Adam 1e-3, L2 1e-4, batch 200) plus a little dropout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MlpParams {
    pub hidden: Vec<usize>,
    pub activation: Activation,
    /// Probability of zeroing a hidden unit during training.
    pub dropout: f64,
    pub learning_rate: f64,
    pub l2: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    /// Stop after this many epochs without improvement of the validation loss (training
    /// loss by more than `tol` when there is no validation set).
    pub patience: usize,
    pub tol: f64,
    pub seed: u64,
}

impl Default for MlpParams {
    fn default() -> Self {
        MlpParams {
            hidden: vec![128, 64],
            activation: Activation::Relu,
            dropout: 0.1,
            learning_rate: 1e-3,
            l2: 1e-4,
            batch_size: 200,
            max_epochs: 200,
            patience: 10,
            tol: 1e-4,
            seed: 42,
        }
    }
}

/// What a stored network needs besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpMeta {
    pub n_features: usize,
    pub n_classes: usize,
    pub epochs: usize,
    pub params: MlpParams,
}

#[derive(Debug, Clone, PartialEq)]
struct Layer {
    n_in: usize,
    n_out: usize,
    /// `[n_in, n_out]` row-major.
    w: Vec<f64>,
    b: Vec<f64>,
    /// PReLU slopes (hidden layers with [`Activation::Prelu`] only).
    a: Option<Vec<f64>>,
}

/// A trained network.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    meta: MlpMeta,
    mean: Vec<f64>,
    std: Vec<f64>,
    layers: Vec<Layer>,
}

/// The one generator (`mallard-rand`): shuffles, dropout masks and initial weights.
use mallard_rand::SplitMix64 as Rng;

/// Per-layer values kept by the forward pass for the backward pass.
struct Cache {
    /// Inputs of each layer (`acts[0]` = standardised batch), `[B, n_in]`.
    acts: Vec<Vec<f64>>,
    /// Pre-activations of each hidden layer.
    pre: Vec<Vec<f64>>,
    /// Inverted-dropout multipliers (0 or 1/(1-p)) of each hidden layer, empty when off.
    masks: Vec<Vec<f64>>,
}

fn n_out(n_classes: usize) -> usize {
    if n_classes == 2 {
        1
    } else {
        n_classes
    }
}

impl Layer {
    /// `out[b, o] = x[b, :] · w[:, o] + b[o]`
    fn affine(&self, x: &[f64], rows: usize) -> Vec<f64> {
        let mut z = Vec::with_capacity(rows * self.n_out);
        for r in 0..rows {
            z.extend_from_slice(&self.b);
            let zr = &mut z[r * self.n_out..];
            for (i, &xi) in x[r * self.n_in..(r + 1) * self.n_in].iter().enumerate() {
                if xi == 0.0 {
                    continue;
                }
                let wi = &self.w[i * self.n_out..(i + 1) * self.n_out];
                for (zo, &w) in zr.iter_mut().zip(wi) {
                    *zo += xi * w;
                }
            }
        }
        z
    }
}

impl Mlp {
    fn forward(
        &self,
        x: &[f64],
        rows: usize,
        dropout: Option<(&mut Rng, f64)>,
    ) -> (Vec<f64>, Cache) {
        let mut cache = Cache {
            acts: vec![x.to_vec()],
            pre: Vec::new(),
            masks: Vec::new(),
        };
        let mut dropout = dropout;
        let last = self.layers.len() - 1;
        for (li, layer) in self.layers.iter().enumerate() {
            let z = layer.affine(cache.acts.last().map(|v| v.as_slice()).unwrap_or(&[]), rows);
            if li == last {
                return (z, cache);
            }
            let mut h = z.clone();
            for (j, v) in h.iter_mut().enumerate() {
                if *v < 0.0 {
                    *v *= layer.a.as_ref().map_or(0.0, |a| a[j % layer.n_out]);
                }
            }
            let mut mask = Vec::new();
            if let Some((rng, p)) = dropout.as_mut() {
                if *p > 0.0 {
                    let keep = 1.0 / (1.0 - *p);
                    mask = (0..h.len())
                        .map(|_| if rng.next_f64() < *p { 0.0 } else { keep })
                        .collect();
                    for (v, m) in h.iter_mut().zip(&mask) {
                        *v *= m;
                    }
                }
            }
            cache.pre.push(z);
            cache.masks.push(mask);
            cache.acts.push(h);
        }
        unreachable!("a network has an output layer")
    }

    /// Mean cross-entropy of the batch (+ L2 term) and its gradient w.r.t. every parameter,
    /// in [`Mlp::params_mut`] order.
    fn loss_grad(
        &self,
        x: &[f64],
        y: &[usize],
        l2: f64,
        dropout: Option<(&mut Rng, f64)>,
    ) -> (f64, Vec<Vec<f64>>) {
        let rows = y.len();
        let k = self.layers.last().map_or(1, |l| l.n_out);
        let (z, cache) = self.forward(x, rows, dropout);
        // dL/dz of the output layer
        let mut loss = 0.0;
        let mut dz = vec![0.0; rows * k];
        for r in 0..rows {
            let zr = &z[r * k..(r + 1) * k];
            if k == 1 {
                let t = (y[r] == 1) as u8 as f64;
                // log(1 + e^z) - t z, stable
                loss += zr[0].max(0.0) + (-zr[0].abs()).exp().ln_1p() - t * zr[0];
                dz[r] = 1.0 / (1.0 + (-zr[0]).exp()) - t;
            } else {
                let m = zr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = m + zr.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
                loss += lse - zr[y[r]];
                for c in 0..k {
                    dz[r * k + c] = (zr[c] - lse).exp() - (y[r] == c) as u8 as f64;
                }
            }
        }
        let inv = 1.0 / rows as f64;
        loss *= inv;
        for v in dz.iter_mut() {
            *v *= inv;
        }
        let nl = self.layers.len();
        let mut per_layer: Vec<Vec<Vec<f64>>> = vec![Vec::new(); nl];
        let mut pending_a: Option<Vec<f64>> = None;
        for li in (0..nl).rev() {
            let layer = &self.layers[li];
            let xin = &cache.acts[li];
            let (ni, no) = (layer.n_in, layer.n_out);
            let mut gw = vec![0.0; ni * no];
            let mut gb = vec![0.0; no];
            for r in 0..rows {
                let d = &dz[r * no..(r + 1) * no];
                for (g, &v) in gb.iter_mut().zip(d) {
                    *g += v;
                }
                for (i, &xi) in xin[r * ni..(r + 1) * ni].iter().enumerate() {
                    if xi == 0.0 {
                        continue;
                    }
                    for (g, &v) in gw[i * no..(i + 1) * no].iter_mut().zip(d) {
                        *g += xi * v;
                    }
                }
            }
            for (g, &w) in gw.iter_mut().zip(&layer.w) {
                *g += l2 * w * inv;
            }
            loss += 0.5 * l2 * inv * layer.w.iter().map(|w| w * w).sum::<f64>();
            per_layer[li].push(gw);
            per_layer[li].push(gb);
            if let Some(a) = pending_a.take() {
                per_layer[li].push(a);
            }
            if li > 0 {
                // back through the previous hidden layer's dropout and activation
                let mut dx = vec![0.0; rows * ni];
                for r in 0..rows {
                    let d = &dz[r * no..(r + 1) * no];
                    for i in 0..ni {
                        let w = &layer.w[i * no..(i + 1) * no];
                        dx[r * ni + i] = w.iter().zip(d).map(|(a, b)| a * b).sum();
                    }
                }
                let prev = &self.layers[li - 1];
                let pre = &cache.pre[li - 1];
                let mask = &cache.masks[li - 1];
                let mut ga = prev.a.as_ref().map(|a| vec![0.0; a.len()]);
                for (j, v) in dx.iter_mut().enumerate() {
                    if !mask.is_empty() {
                        *v *= mask[j];
                    }
                    let p = pre[j];
                    if p < 0.0 {
                        if let (Some(ga), Some(a)) = (ga.as_mut(), prev.a.as_ref()) {
                            ga[j % ni] += *v * p;
                            *v *= a[j % ni];
                        } else {
                            *v = 0.0;
                        }
                    }
                }
                dz = dx;
                pending_a = ga;
            }
        }
        let grads: Vec<Vec<f64>> = per_layer.into_iter().flatten().collect();
        (loss, grads)
    }

    /// Parameter vectors front to back: per layer `w`, `b`, then the PReLU slopes `a` of a
    /// PReLU hidden layer (the order of [`Mlp::loss_grad`]'s gradients).
    fn params_mut(&mut self) -> Vec<&mut Vec<f64>> {
        let mut v = Vec::new();
        for l in self.layers.iter_mut() {
            v.push(&mut l.w);
            v.push(&mut l.b);
            if let Some(a) = l.a.as_mut() {
                v.push(a);
            }
        }
        v
    }

    fn standardize(&self, x: &[f32], rows: usize) -> Vec<f64> {
        let nf = self.meta.n_features;
        let mut out = Vec::with_capacity(rows * nf);
        for r in 0..rows {
            for f in 0..nf {
                let v = x[r * nf + f] as f64;
                out.push(if v.is_finite() {
                    (v - self.mean[f]) / self.std[f]
                } else {
                    0.0
                });
            }
        }
        out
    }

    fn new(n_features: usize, n_classes: usize, params: &MlpParams, rng: &mut Rng) -> Mlp {
        let mut sizes = vec![n_features];
        sizes.extend(&params.hidden);
        sizes.push(n_out(n_classes));
        let layers = sizes
            .windows(2)
            .enumerate()
            .map(|(li, w)| {
                let bound = (6.0 / (w[0] + w[1]) as f64).sqrt();
                Layer {
                    n_in: w[0],
                    n_out: w[1],
                    w: (0..w[0] * w[1])
                        .map(|_| (2.0 * rng.next_f64() - 1.0) * bound)
                        .collect(),
                    b: vec![0.0; w[1]],
                    a: (params.activation == Activation::Prelu && li + 2 < sizes.len())
                        .then(|| vec![0.25; w[1]]),
                }
            })
            .collect();
        Mlp {
            meta: MlpMeta {
                n_features,
                n_classes,
                epochs: 0,
                params: params.clone(),
            },
            mean: vec![0.0; n_features],
            std: vec![1.0; n_features],
            layers,
        }
    }

    /// Trains with Adam on shuffled mini-batches; with `valid`, keeps the weights of the epoch
    /// with the lowest validation loss.
    pub fn fit(
        train: Dataset<'_>,
        n_classes: usize,
        params: &MlpParams,
        valid: Option<Dataset<'_>>,
    ) -> Result<Mlp, MlpError> {
        let nf = train.n_features;
        let n = check_x(train.x, nf)?;
        if n == 0 || train.y.len() != n {
            return Err(MlpError::Data(format!(
                "{n} rows but {} labels",
                train.y.len()
            )));
        }
        if n_classes < 2 || train.y.iter().any(|&c| c >= n_classes) {
            return Err(MlpError::Data(format!(
                "labels must be class indices below {n_classes} (>= 2)"
            )));
        }
        if params.hidden.is_empty() || params.hidden.contains(&0) {
            return Err(MlpError::Param("hidden layer sizes must be >= 1".into()));
        }
        if !(0.0..1.0).contains(&params.dropout)
            || params.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
            || params.batch_size == 0
        {
            return Err(MlpError::Param(
                "dropout in [0, 1), learning_rate > 0, batch_size >= 1".into(),
            ));
        }
        let mut rng = Rng::new(params.seed);
        let mut net = Mlp::new(nf, n_classes, params, &mut rng);
        for f in 0..nf {
            let vals: Vec<f64> = (0..n)
                .map(|r| train.x[r * nf + f] as f64)
                .filter(|v| v.is_finite())
                .collect();
            if vals.is_empty() {
                continue;
            }
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
            net.mean[f] = m;
            net.std[f] = if var > 0.0 { var.sqrt() } else { 1.0 };
        }
        let xs = net.standardize(train.x, n);
        let vdata = match valid {
            Some(v) => {
                let nv = check_x(v.x, nf)?;
                if v.n_features != nf || v.y.len() != nv || v.y.iter().any(|&c| c >= n_classes) {
                    return Err(MlpError::Data(
                        "validation set does not match the training set".into(),
                    ));
                }
                Some((net.standardize(v.x, nv), v.y))
            }
            None => None,
        };
        let (b1, b2, eps) = (0.9, 0.999, 1e-8);
        let mut m: Vec<Vec<f64>> = net
            .params_mut()
            .iter()
            .map(|p| vec![0.0; p.len()])
            .collect();
        let mut v2 = m.clone();
        let mut step = 0i32;
        let mut order: Vec<usize> = (0..n).collect();
        let mut best = (f64::INFINITY, net.clone(), 0usize);
        let mut since = 0;
        let bs = params.batch_size.min(n);
        let mut xb = Vec::with_capacity(bs * nf);
        let mut yb = Vec::with_capacity(bs);
        for epoch in 0..params.max_epochs {
            for i in (1..n).rev() {
                order.swap(i, rng.modulo(i as u64 + 1) as usize);
            }
            let mut epoch_loss = 0.0;
            for chunk in order.chunks(bs) {
                xb.clear();
                yb.clear();
                for &r in chunk {
                    xb.extend_from_slice(&xs[r * nf..(r + 1) * nf]);
                    yb.push(train.y[r]);
                }
                let (loss, grads) =
                    net.loss_grad(&xb, &yb, params.l2, Some((&mut rng, params.dropout)));
                epoch_loss += loss * chunk.len() as f64;
                step += 1;
                let lr = params.learning_rate * (1.0 - f64::powi(b2, step)).sqrt()
                    / (1.0 - f64::powi(b1, step));
                for (((p, g), m), v) in net
                    .params_mut()
                    .into_iter()
                    .zip(&grads)
                    .zip(&mut m)
                    .zip(&mut v2)
                {
                    for j in 0..p.len() {
                        m[j] = b1 * m[j] + (1.0 - b1) * g[j];
                        v[j] = b2 * v[j] + (1.0 - b2) * g[j] * g[j];
                        p[j] -= lr * m[j] / (v[j].sqrt() + eps);
                    }
                }
            }
            epoch_loss /= n as f64;
            net.meta.epochs = epoch + 1;
            let (watch, better) = match &vdata {
                Some((vx, vy)) => {
                    let l = net.loss_grad(vx, vy, 0.0, None).0;
                    (l, l < best.0)
                }
                None => (epoch_loss, epoch_loss < best.0 - params.tol),
            };
            if better {
                since = 0;
                best.0 = watch;
                if vdata.is_some() {
                    best.1 = net.clone();
                }
                best.2 = epoch + 1;
            } else {
                since += 1;
                if since >= params.patience {
                    break;
                }
            }
            if !watch.is_finite() {
                return Err(MlpError::Data("training diverged (non-finite loss)".into()));
            }
        }
        if vdata.is_some() {
            let epochs = best.2;
            net = best.1;
            net.meta.epochs = epochs;
        }
        for p in net.params_mut() {
            for w in p.iter_mut() {
                *w = *w as f32 as f64;
            }
        }
        for v in net.mean.iter_mut().chain(net.std.iter_mut()) {
            *v = *v as f32 as f64;
        }
        Ok(net)
    }

    pub fn meta(&self) -> &MlpMeta {
        &self.meta
    }

    /// Class probabilities, row-major `[rows, n_classes]` (binary: `[1 − p, p]`).
    pub fn predict_proba(&self, x: &[f32]) -> Result<Vec<f32>, MlpError> {
        let nf = self.meta.n_features;
        let rows = check_x(x, nf)?;
        let xs = self.standardize(x, rows);
        let (z, _) = self.forward(&xs, rows, None);
        let k = n_out(self.meta.n_classes);
        let mut out = Vec::with_capacity(rows * self.meta.n_classes);
        let mut p = vec![0.0; k];
        for zr in z.chunks(k) {
            if k == 1 {
                let q = 1.0 / (1.0 + (-zr[0]).exp());
                out.extend([(1.0 - q) as f32, q as f32]);
            } else {
                softmax(zr, &mut p);
                out.extend(p.iter().map(|&v| v as f32));
            }
        }
        Ok(out)
    }

    /// Tensors: `dnn.mean`, `dnn.std` `[n_features]`; per layer `dnn.l{i}.weight`
    /// `[n_in, n_out]`, `dnn.l{i}.bias`, and `dnn.l{i}.prelu` for PReLU hidden layers.
    pub fn to_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut t = vec![
            ("dnn.mean".to_string(), vec![self.mean.len()], f(&self.mean)),
            ("dnn.std".to_string(), vec![self.std.len()], f(&self.std)),
        ];
        for (i, l) in self.layers.iter().enumerate() {
            t.push((format!("dnn.l{i}.weight"), vec![l.n_in, l.n_out], f(&l.w)));
            t.push((format!("dnn.l{i}.bias"), vec![l.n_out], f(&l.b)));
            if let Some(a) = &l.a {
                t.push((format!("dnn.l{i}.prelu"), vec![l.n_out], f(a)));
            }
        }
        t
    }

    /// Rebuilds a network from its meta and [`Mlp::to_tensors`]; checks every shape.
    pub fn from_parts(
        meta: MlpMeta,
        tensors: &[(String, Vec<usize>, Vec<f32>)],
    ) -> Result<Mlp, MlpError> {
        let get = |name: &str, shape: &[usize]| -> Result<Vec<f64>, MlpError> {
            let t = tensors
                .iter()
                .find(|t| t.0 == name)
                .ok_or_else(|| MlpError::Model(format!("missing tensor {name}")))?;
            let len = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            if t.1 != shape || Some(t.2.len()) != len {
                return Err(MlpError::Model(format!(
                    "{name}: shape {:?}, expected {shape:?}",
                    t.1
                )));
            }
            Ok(t.2.iter().map(|&v| v as f64).collect())
        };
        if meta.n_classes < 2 || meta.n_features == 0 || meta.params.hidden.contains(&0) {
            return Err(MlpError::Model("bad network sizes".into()));
        }
        let nf = meta.n_features;
        let mut sizes = vec![nf];
        sizes.extend(&meta.params.hidden);
        sizes.push(n_out(meta.n_classes));
        let mut layers = Vec::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let prelu = meta.params.activation == Activation::Prelu && i + 2 < sizes.len();
            layers.push(Layer {
                n_in: w[0],
                n_out: w[1],
                w: get(&format!("dnn.l{i}.weight"), &[w[0], w[1]])?,
                b: get(&format!("dnn.l{i}.bias"), &[w[1]])?,
                a: if prelu {
                    Some(get(&format!("dnn.l{i}.prelu"), &[w[1]])?)
                } else {
                    None
                },
            });
        }
        let std = get("dnn.std", &[nf])?;
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(MlpError::Model("dnn.std must be finite and > 0".into()));
        }
        Ok(Mlp {
            mean: get("dnn.mean", &[nf])?,
            std,
            layers,
            meta,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite differences in f64 against the hand-written backward pass, for ReLU and PReLU,
    /// binary and softmax heads, with the L2 term on.
    #[test]
    #[allow(clippy::needless_range_loop)]
    fn gradients_match_finite_differences() {
        for (act, classes) in [
            (Activation::Relu, 2),
            (Activation::Prelu, 2),
            (Activation::Prelu, 3),
            (Activation::Relu, 4),
        ] {
            let params = MlpParams {
                hidden: vec![5, 4],
                activation: act,
                ..Default::default()
            };
            let mut rng = Rng::new(7);
            let mut net = Mlp::new(3, classes, &params, &mut rng);
            // non-zero biases and slopes so every branch is exercised
            for p in net.params_mut() {
                for v in p.iter_mut() {
                    *v += 0.1 * (2.0 * rng.next_f64() - 1.0);
                }
            }
            let rows = 6;
            let x: Vec<f64> = (0..rows * 3).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
            let y: Vec<usize> = (0..rows).map(|r| r % classes).collect();
            let l2 = 0.3;
            let (_, grads) = net.loss_grad(&x, &y, l2, None);
            let h = 1e-6;
            let mut checked = 0;
            let n_groups = net.params_mut().len();
            for g in 0..n_groups {
                let len = net.params_mut()[g].len();
                assert_eq!(grads[g].len(), len, "group {g}");
                for j in 0..len {
                    let orig = net.params_mut()[g][j];
                    net.params_mut()[g][j] = orig + h;
                    let lp = net.loss_grad(&x, &y, l2, None).0;
                    net.params_mut()[g][j] = orig - h;
                    let lm = net.loss_grad(&x, &y, l2, None).0;
                    net.params_mut()[g][j] = orig;
                    let fd = (lp - lm) / (2.0 * h);
                    let an = grads[g][j];
                    assert!(
                        (fd - an).abs() <= 1e-6 * (1.0 + fd.abs()),
                        "{act:?} k={classes} group {g} index {j}: fd {fd} vs analytic {an}"
                    );
                    checked += 1;
                }
            }
            assert!(checked > 40);
        }
    }

    fn rings(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
        // class = inside the unit circle; not linearly separable, easy for a hidden layer
        let mut r = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b) = (4.0 * r.next_f64() - 2.0, 4.0 * r.next_f64() - 2.0);
            x.extend([a as f32 * 100.0 + 5000.0, b as f32, f32::NAN]);
            y.push((a * a + b * b < 1.2) as usize);
        }
        (x, y)
    }

    #[test]
    fn learns_a_nonlinear_boundary_and_round_trips() {
        let (x, y) = rings(600, 1);
        let (vx, vy) = rings(300, 2);
        let params = MlpParams {
            hidden: vec![32, 16],
            max_epochs: 150,
            batch_size: 32,
            ..Default::default()
        };
        let train = Dataset {
            x: &x,
            n_features: 3,
            y: &y,
        };
        let valid = Dataset {
            x: &vx,
            n_features: 3,
            y: &vy,
        };
        let net = Mlp::fit(train, 2, &params, Some(valid)).unwrap();
        let p = net.predict_proba(&vx).unwrap();
        let acc = vy
            .iter()
            .enumerate()
            .filter(|(i, &c)| (p[i * 2 + 1] >= 0.5) == (c == 1))
            .count() as f64
            / vy.len() as f64;
        assert!(
            acc > 0.93,
            "accuracy {acc} after {} epochs",
            net.meta().epochs
        );
        let back = Mlp::from_parts(net.meta().clone(), &net.to_tensors()).unwrap();
        assert_eq!(back.predict_proba(&vx).unwrap(), p);
        // deterministic for a seed
        let again = Mlp::fit(train, 2, &params, Some(valid)).unwrap();
        assert_eq!(again, net);
        // PReLU, softmax head, no validation set
        let y3: Vec<usize> = (0..y.len())
            .map(|i| {
                if y[i] == 1 {
                    2
                } else {
                    (x[i * 3 + 1] > 0.0) as usize
                }
            })
            .collect();
        let params = MlpParams {
            activation: Activation::Prelu,
            ..params
        };
        let net = Mlp::fit(
            Dataset {
                x: &x,
                n_features: 3,
                y: &y3,
            },
            3,
            &params,
            None,
        )
        .unwrap();
        let p = net.predict_proba(&x).unwrap();
        let acc = y3
            .iter()
            .enumerate()
            .filter(|(i, &c)| (0..3).all(|k| p[i * 3 + c] >= p[i * 3 + k]))
            .count() as f64
            / y3.len() as f64;
        assert!(acc > 0.9, "3-class accuracy {acc}");
        let back = Mlp::from_parts(net.meta().clone(), &net.to_tensors()).unwrap();
        assert_eq!(back.predict_proba(&x).unwrap(), p);
        assert!(Mlp::from_parts(net.meta().clone(), &net.to_tensors()[1..]).is_err());
    }
}
