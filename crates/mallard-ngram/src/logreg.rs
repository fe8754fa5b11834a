use serde::{Deserialize, Serialize};

use crate::lbfgs::{self, Options};
use crate::{CsrMatrix, NgramError, Result};

/// Per-class sample weighting applied on top of any explicit sample weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// All samples weigh 1.
    #[default]
    None,
    /// `n_samples / (n_classes * count(class))`, scikit-learn's `"balanced"`.
    Balanced,
}

/// Logistic-regression settings, in scikit-learn's parameterisation:
/// minimise `C * sum_i w_i * logloss_i + 0.5 * ||coef||^2` (intercept not penalised).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogRegConfig {
    /// Inverse regularisation strength (> 0).
    pub c: f64,
    /// Stop when the max-abs gradient of the sample-weight-normalised objective is
    /// below this (scipy's `gtol`, as scikit-learn passes `tol`).
    pub tol: f64,
    /// L-BFGS iteration cap.
    pub max_iter: usize,
    /// Fit an unpenalised intercept.
    pub fit_intercept: bool,
    /// Class weighting.
    pub class_weight: ClassWeight,
    /// L-BFGS memory (scipy's default is 10).
    pub history: usize,
}

impl Default for LogRegConfig {
    fn default() -> Self {
        // Tighter than scikit-learn's tol=1e-4 so the result is the optimum, not
        // wherever a looser stopping rule happened to land.
        Self {
            c: 1.0,
            tol: 1e-6,
            max_iter: 2000,
            fit_intercept: true,
            class_weight: ClassWeight::None,
            history: 10,
        }
    }
}

impl LogRegConfig {
    /// Checks ranges; called by `fit`.
    pub fn validate(&self) -> Result<()> {
        if !(self.c > 0.0 && self.c.is_finite()) {
            return Err(NgramError::InvalidConfig(format!(
                "C must be > 0, got {}",
                self.c
            )));
        }
        if self.tol.is_nan() || self.tol < 0.0 {
            return Err(NgramError::InvalidConfig("tol must be >= 0".into()));
        }
        if self.max_iter == 0 || self.history == 0 {
            return Err(NgramError::InvalidConfig(
                "max_iter and history must be >= 1".into(),
            ));
        }
        Ok(())
    }
}

/// L2-regularised logistic regression on sparse rows: one logit for two classes
/// (like scikit-learn's binary case), softmax over K logits for K >= 3.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticRegression {
    n_classes: usize,
    n_features: usize,
    /// `[n_logits, n_features]` row-major, n_logits = 1 if binary else n_classes.
    coef: Vec<f64>,
    /// `[n_logits]`
    intercept: Vec<f64>,
    n_iter: usize,
    converged: bool,
}

fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// In-place softmax over `z`; returns log-sum-exp.
fn softmax(z: &mut [f64]) -> f64 {
    let m = z.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let mut s = 0.0;
    for v in z.iter_mut() {
        *v = (*v - m).exp();
        s += *v;
    }
    z.iter_mut().for_each(|v| *v /= s);
    m + s.ln()
}

impl LogisticRegression {
    /// Fits on rows of `x` with labels in `0..n_classes` and optional per-sample weights.
    pub fn fit(
        x: &CsrMatrix,
        y: &[usize],
        n_classes: usize,
        sample_weight: Option<&[f64]>,
        cfg: &LogRegConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        let n = x.n_rows();
        if n == 0 {
            return Err(NgramError::EmptyInput);
        }
        if n_classes < 2 {
            return Err(NgramError::InvalidConfig(format!(
                "n_classes must be >= 2, got {n_classes}"
            )));
        }
        if y.len() != n {
            return Err(NgramError::LengthMismatch {
                what: "labels",
                expected: n,
                got: y.len(),
            });
        }
        if let Some((row, &label)) = y.iter().enumerate().find(|(_, &l)| l >= n_classes) {
            return Err(NgramError::LabelOutOfRange {
                row,
                label,
                n_classes,
            });
        }
        let mut sw = match sample_weight {
            Some(w) => {
                if w.len() != n {
                    return Err(NgramError::LengthMismatch {
                        what: "sample weights",
                        expected: n,
                        got: w.len(),
                    });
                }
                if let Some((row, &value)) = w
                    .iter()
                    .enumerate()
                    .find(|(_, &v)| !(v >= 0.0 && v.is_finite()))
                {
                    return Err(NgramError::InvalidWeight { row, value });
                }
                w.to_vec()
            }
            None => vec![1.0; n],
        };
        let mut counts = vec![0usize; n_classes];
        y.iter().for_each(|&l| counts[l] += 1);
        if cfg.class_weight == ClassWeight::Balanced {
            let cw: Vec<f64> = counts
                .iter()
                .map(|&c| n as f64 / (n_classes as f64 * c.max(1) as f64))
                .collect();
            sw.iter_mut().zip(y).for_each(|(w, &l)| *w *= cw[l]);
        }
        let mut class_mass = vec![0.0; n_classes];
        sw.iter().zip(y).for_each(|(w, &l)| class_mass[l] += w);
        if let Some(k) = class_mass.iter().position(|&m| m <= 0.0) {
            return Err(NgramError::EmptyClass(k));
        }
        let sw_sum: f64 = class_mass.iter().sum();

        let d = x.n_cols();
        let k = if n_classes == 2 { 1 } else { n_classes };
        let n_coef = k * d;
        let n_params = n_coef + if cfg.fit_intercept { k } else { 0 };
        let l2 = 1.0 / (cfg.c * sw_sum);
        let inv_sum = 1.0 / sw_sum;
        let mut z = vec![0.0; n * k];

        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            let (w, b) = theta.split_at(n_coef);
            // Logits.
            for i in 0..n {
                let (idx, val) = x.row(i);
                let zi = &mut z[i * k..(i + 1) * k];
                for c in 0..k {
                    let wc = &w[c * d..(c + 1) * d];
                    let mut s = if b.is_empty() { 0.0 } else { b[c] };
                    for (&j, &v) in idx.iter().zip(val) {
                        s += wc[j as usize] * v;
                    }
                    zi[c] = s;
                }
            }
            // Loss and residuals (overwrite z with d loss / d z, already weighted).
            let mut loss = 0.0;
            for i in 0..n {
                let zi = &mut z[i * k..(i + 1) * k];
                let si = sw[i] * inv_sum;
                if k == 1 {
                    let t = if y[i] == 1 { 1.0 } else { 0.0 };
                    loss += si * (softplus(zi[0]) - t * zi[0]);
                    zi[0] = si * (sigmoid(zi[0]) - t);
                } else {
                    let zy = zi[y[i]];
                    let lse = softmax(zi);
                    loss += si * (lse - zy);
                    zi[y[i]] -= 1.0;
                    zi.iter_mut().for_each(|v| *v *= si);
                }
            }
            // Gradient.
            let (gw, gb) = grad.split_at_mut(n_coef);
            for (g, &wv) in gw.iter_mut().zip(w) {
                *g = l2 * wv;
            }
            gb.iter_mut().for_each(|g| *g = 0.0);
            for i in 0..n {
                let (idx, val) = x.row(i);
                let ri = &z[i * k..(i + 1) * k];
                for c in 0..k {
                    let r = ri[c];
                    if r == 0.0 {
                        continue;
                    }
                    let gc = &mut gw[c * d..(c + 1) * d];
                    for (&j, &v) in idx.iter().zip(val) {
                        gc[j as usize] += r * v;
                    }
                    if !gb.is_empty() {
                        gb[c] += r;
                    }
                }
            }
            loss + 0.5 * l2 * w.iter().map(|v| v * v).sum::<f64>()
        };

        let opt = Options {
            history: cfg.history,
            max_iter: cfg.max_iter,
            gtol: cfg.tol,
            ftol: 64.0 * f64::EPSILON,
            max_ls: 50,
        };
        let out = lbfgs::minimize(objective, vec![0.0; n_params], &opt)?;
        let mut theta = out.x;
        let intercept = if cfg.fit_intercept {
            let mut b = theta.split_off(n_coef);
            if k > 1 {
                // Softmax is invariant to a common shift; report the zero-sum one.
                let mean = b.iter().sum::<f64>() / k as f64;
                b.iter_mut().for_each(|v| *v -= mean);
            }
            b
        } else {
            vec![0.0; k]
        };
        Ok(Self {
            n_classes,
            n_features: d,
            coef: theta,
            intercept,
            n_iter: out.n_iter,
            converged: out.converged,
        })
    }

    /// Rebuilds a model from saved weights: `coef` is `[n_logits, n_features]`
    /// row-major with n_logits = 1 for two classes, else `n_classes`.
    pub fn from_parts(
        n_classes: usize,
        n_features: usize,
        coef: Vec<f64>,
        intercept: Vec<f64>,
    ) -> Result<Self> {
        if n_classes < 2 {
            return Err(NgramError::InvalidParts(format!(
                "n_classes = {n_classes} < 2"
            )));
        }
        let k = if n_classes == 2 { 1 } else { n_classes };
        if coef.len() != k * n_features || intercept.len() != k {
            return Err(NgramError::InvalidParts(format!(
                "coef has {} values and intercept {}, expected {}x{} and {}",
                coef.len(),
                intercept.len(),
                k,
                n_features,
                k
            )));
        }
        if coef.iter().chain(&intercept).any(|v| !v.is_finite()) {
            return Err(NgramError::InvalidParts("non-finite weight".into()));
        }
        Ok(Self {
            n_classes,
            n_features,
            coef,
            intercept,
            n_iter: 0,
            converged: true,
        })
    }

    /// Raw logits, row-major `[n, n_logits]`. Columns beyond `n_features` are ignored.
    pub fn decision_function(&self, x: &CsrMatrix) -> Vec<f64> {
        let k = self.n_logits();
        let d = self.n_features;
        let mut out = Vec::with_capacity(x.n_rows() * k);
        for i in 0..x.n_rows() {
            let (idx, val) = x.row(i);
            for c in 0..k {
                let wc = &self.coef[c * d..(c + 1) * d];
                let mut s = self.intercept[c];
                for (&j, &v) in idx.iter().zip(val) {
                    if let Some(w) = wc.get(j as usize) {
                        s += w * v;
                    }
                }
                out.push(s);
            }
        }
        out
    }

    /// Class probabilities, row-major `[n, n_classes]` (two columns for binary).
    pub fn predict_proba(&self, x: &CsrMatrix) -> Vec<f64> {
        let z = self.decision_function(x);
        if self.n_classes == 2 {
            z.iter()
                .flat_map(|&v| {
                    let p = sigmoid(v);
                    [1.0 - p, p]
                })
                .collect()
        } else {
            let mut z = z;
            z.chunks_mut(self.n_classes).for_each(|r| {
                softmax(r);
            });
            z
        }
    }

    /// Coefficients `[n_logits, n_features]` row-major (scikit-learn's `coef_`).
    pub fn coef(&self) -> &[f64] {
        &self.coef
    }

    /// Intercepts `[n_logits]` (scikit-learn's `intercept_`).
    pub fn intercept(&self) -> &[f64] {
        &self.intercept
    }

    /// 1 for two classes, else the number of classes.
    pub fn n_logits(&self) -> usize {
        self.intercept.len()
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// L-BFGS iterations used (0 for a loaded model).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// Whether the optimiser met its tolerance before `max_iter`.
    pub fn converged(&self) -> bool {
        self.converged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One feature, two points: the optimum solves a 2x2 system we can check by
    /// finite differences of the closed-form objective.
    #[test]
    fn gradient_is_zero_at_optimum_by_finite_differences() {
        let x = CsrMatrix::new(
            2,
            vec![0, 1, 2, 4],
            vec![0, 1, 0, 1],
            vec![1.0, 2.0, 0.5, -1.0],
        )
        .unwrap();
        let y = [0usize, 1, 1];
        let sw = [1.0, 2.0, 0.5];
        let cfg = LogRegConfig {
            c: 0.7,
            tol: 1e-12,
            ..Default::default()
        };
        let m = LogisticRegression::fit(&x, &y, 2, Some(&sw), &cfg).unwrap();
        assert!(m.converged());
        let obj = |w0: f64, w1: f64, b: f64| {
            let rows = [(1.0, 0.0), (0.0, 2.0), (0.5, -1.0)];
            let mut l = 0.0;
            for i in 0..3 {
                let z = w0 * rows[i].0 + w1 * rows[i].1 + b;
                let t = y[i] as f64;
                l += sw[i] * (softplus(z) - t * z);
            }
            cfg.c * l + 0.5 * (w0 * w0 + w1 * w1)
        };
        let (w0, w1, b) = (m.coef()[0], m.coef()[1], m.intercept()[0]);
        let h = 1e-6;
        let g0 = (obj(w0 + h, w1, b) - obj(w0 - h, w1, b)) / (2.0 * h);
        let g1 = (obj(w0, w1 + h, b) - obj(w0, w1 - h, b)) / (2.0 * h);
        let gb = (obj(w0, w1, b + h) - obj(w0, w1, b - h)) / (2.0 * h);
        assert!(
            g0.abs() < 1e-7 && g1.abs() < 1e-7 && gb.abs() < 1e-7,
            "{g0} {g1} {gb}"
        );
        // And it is a minimum, not a saddle: any nudge increases the objective.
        let f = obj(w0, w1, b);
        assert!(obj(w0 + 1e-3, w1, b) > f && obj(w0, w1 - 1e-3, b) > f);
        let p = m.predict_proba(&x);
        assert!((p[0] + p[1] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn rejects_bad_input() {
        let x = CsrMatrix::new(1, vec![0, 1, 2], vec![0, 0], vec![1.0, -1.0]).unwrap();
        let cfg = LogRegConfig::default();
        assert!(matches!(
            LogisticRegression::fit(&x, &[0, 2], 2, None, &cfg),
            Err(NgramError::LabelOutOfRange { .. })
        ));
        assert!(matches!(
            LogisticRegression::fit(&x, &[0, 0], 2, None, &cfg),
            Err(NgramError::EmptyClass(1))
        ));
        assert!(LogisticRegression::fit(&x, &[0], 2, None, &cfg).is_err());
        assert!(LogisticRegression::fit(&x, &[0, 1], 2, Some(&[1.0, f64::NAN]), &cfg).is_err());
        let bad = LogRegConfig { c: 0.0, ..cfg };
        assert!(LogisticRegression::fit(&x, &[0, 1], 2, None, &bad).is_err());
        assert!(LogisticRegression::from_parts(3, 2, vec![0.0; 4], vec![0.0; 3]).is_err());
    }
}
