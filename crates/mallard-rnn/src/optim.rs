//! Optimizers with the update rules of Keras 2.11+ (tf_keras), so training curves are comparable.

use crate::params::Params;

/// Gradient-descent rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// `m += (g-m)(1-β1); v += (g²-v)(1-β2); w -= lr·√(1-β2^t)/(1-β1^t) · m / (√v + eps)`.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    /// `v = ρv + (1-ρ)g²; w -= lr · g / √(v + eps)`. Keras TF2 (both the legacy and the 2.11+
    /// optimizer) adds eps *inside* the square root; standalone Keras 2.2 added it outside.
    RmsProp { lr: f32, rho: f32, eps: f32 },
}

impl Optimizer {
    /// Keras defaults: lr 1e-3, β1 0.9, β2 0.999, eps 1e-7.
    pub fn adam() -> Self {
        Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-7,
        }
    }
    /// Adam's step size at step `t` (from 1), with both bias corrections folded in as Keras
    /// does; `None` for other rules.
    pub fn adam_step_size(&self, t: u64) -> Option<f32> {
        let Optimizer::Adam {
            lr, beta1, beta2, ..
        } = *self
        else {
            return None;
        };
        let t = t.min(i32::MAX as u64) as i32;
        Some(
            (lr as f64 * (1.0 - (beta2 as f64).powi(t)).sqrt() / (1.0 - (beta1 as f64).powi(t)))
                as f32,
        )
    }

    /// Keras defaults: lr 1e-3, ρ 0.9, eps 1e-7.
    pub fn rmsprop() -> Self {
        Optimizer::RmsProp {
            lr: 1e-3,
            rho: 0.9,
            eps: 1e-7,
        }
    }
}

/// Per-parameter optimizer state over a fixed list of weight tensors (any network: the
/// recurrent nets and MalConv take the same steps).
#[derive(Clone, Debug)]
pub struct OptState {
    opt: Optimizer,
    t: u64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl OptState {
    pub(crate) fn new(opt: Optimizer, p: &Params<f32>) -> Self {
        let sizes: Vec<usize> = p.slices().iter().map(|s| s.len()).collect();
        Self::with_sizes(opt, &sizes)
    }

    /// State for tensors of these lengths, in the order [`OptState::step_slices`] gets them.
    pub fn with_sizes(opt: Optimizer, sizes: &[usize]) -> Self {
        let zeros = || sizes.iter().map(|&n| vec![0.0f32; n]).collect::<Vec<_>>();
        let m = match opt {
            Optimizer::Adam { .. } => zeros(),
            Optimizer::RmsProp { .. } => Vec::new(),
        };
        OptState {
            opt,
            t: 0,
            m,
            v: zeros(),
        }
    }

    pub(crate) fn step(&mut self, p: &mut Params<f32>, g: &Params<f32>) {
        self.step_slices(p.slices_mut(), g.slices());
    }

    /// One step: `weights[i] -= update(grads[i])`, tensors in the order of construction.
    pub fn step_slices(&mut self, weights: Vec<&mut [f32]>, grads: Vec<&[f32]>) {
        self.t += 1;
        match self.opt {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let alpha = self.opt.adam_step_size(self.t).unwrap_or(lr);
                let (c1, c2) = (1.0 - beta1, 1.0 - beta2);
                for (((w, gr), m), v) in weights
                    .into_iter()
                    .zip(grads)
                    .zip(&mut self.m)
                    .zip(&mut self.v)
                {
                    for i in 0..w.len() {
                        let gi = gr[i];
                        m[i] += (gi - m[i]) * c1;
                        v[i] += (gi * gi - v[i]) * c2;
                        w[i] -= m[i] * alpha / (v[i].sqrt() + eps);
                    }
                }
            }
            Optimizer::RmsProp { lr, rho, eps } => {
                for ((w, gr), v) in weights.into_iter().zip(grads).zip(&mut self.v) {
                    for i in 0..w.len() {
                        let gi = gr[i];
                        v[i] = rho * v[i] + (1.0 - rho) * gi * gi;
                        w[i] -= lr * gi / (v[i] + eps).sqrt();
                    }
                }
            }
        }
    }
}
