//! Platt scaling: `P(positive | f) = 1 / (1 + exp(A f + B))`, fitted by Newton's method with
//! a backtracking line search on the regularised targets of Platt (1999), as described by
//! Lin, Lin & Weng (2007, "A note on Platt's probabilistic outputs for support vector
//! machines"). Samples carry weights (a merged duplicate counts as many).

use crate::SvmError;

/// A fitted sigmoid. Increasing in `f` whenever `a < 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sigmoid {
    pub a: f64,
    pub b: f64,
}

impl Sigmoid {
    pub fn prob(&self, f: f64) -> f64 {
        let z = self.a * f + self.b;
        // Written both ways so that exp never overflows.
        if z >= 0.0 {
            let e = (-z).exp();
            e / (1.0 + e)
        } else {
            1.0 / (1.0 + z.exp())
        }
    }
}

/// Fits the sigmoid to decision values `f` with labels `positive` and weights `w`.
pub fn fit(f: &[f64], positive: &[bool], w: &[f64]) -> Result<Sigmoid, SvmError> {
    let n = f.len();
    if n == 0 {
        return Err(SvmError::Empty);
    }
    for (what, got) in [("labels", positive.len()), ("weights", w.len())] {
        if got != n {
            return Err(SvmError::Length {
                what,
                got,
                expected: n,
            });
        }
    }
    if let Some(i) = f.iter().position(|v| !v.is_finite()) {
        return Err(SvmError::Param(format!(
            "decision value {i} is {}, not finite",
            f[i]
        )));
    }
    if let Some(i) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(SvmError::Param(format!(
            "weight {i} is {}; weights must be finite and >= 0",
            w[i]
        )));
    }
    let n_pos: f64 = (0..n).filter(|&i| positive[i]).map(|i| w[i]).sum();
    let n_neg: f64 = (0..n).filter(|&i| !positive[i]).map(|i| w[i]).sum();
    // Targets pulled off 0 and 1 by one pseudo-sample per class (Platt's prior).
    let hi = (n_pos + 1.0) / (n_pos + 2.0);
    let lo = 1.0 / (n_neg + 2.0);
    let t: Vec<f64> = positive.iter().map(|&p| if p { hi } else { lo }).collect();

    // Negative log-likelihood with p = 1 / (1 + exp(z)), z = A f + B, in a stable form.
    let loss = |a: f64, b: f64| -> f64 {
        (0..n)
            .map(|i| {
                let z = a * f[i] + b;
                let l = if z >= 0.0 {
                    t[i] * z + (-z).exp().ln_1p()
                } else {
                    (t[i] - 1.0) * z + z.exp().ln_1p()
                };
                w[i] * l
            })
            .sum()
    };
    let mut a = 0.0;
    let mut b = ((n_neg + 1.0) / (n_pos + 1.0)).ln();
    let mut value = loss(a, b);
    const SIGMA: f64 = 1e-12;
    for _ in 0..100 {
        // Gradient and Hessian of the loss in (A, B).
        let (mut h11, mut h22, mut h21) = (SIGMA, SIGMA, 0.0);
        let (mut g1, mut g2) = (0.0, 0.0);
        for i in 0..n {
            let z = a * f[i] + b;
            let (p, q) = if z >= 0.0 {
                let e = (-z).exp();
                (e / (1.0 + e), 1.0 / (1.0 + e))
            } else {
                let e = z.exp();
                (1.0 / (1.0 + e), e / (1.0 + e))
            };
            let d2 = w[i] * p * q;
            h11 += f[i] * f[i] * d2;
            h22 += d2;
            h21 += f[i] * d2;
            let d1 = w[i] * (t[i] - p);
            g1 += f[i] * d1;
            g2 += d1;
        }
        if g1.abs() < 1e-5 && g2.abs() < 1e-5 {
            break;
        }
        let det = h11 * h22 - h21 * h21;
        if !(det.is_finite() && det > 0.0) {
            break;
        }
        let da = -(h22 * g1 - h21 * g2) / det;
        let db = -(-h21 * g1 + h11 * g2) / det;
        let slope = g1 * da + g2 * db;
        let mut step = 1.0;
        let mut moved = false;
        while step >= 1e-10 {
            let (na, nb) = (a + step * da, b + step * db);
            let nv = loss(na, nb);
            if nv < value + 1e-4 * step * slope {
                a = na;
                b = nb;
                value = nv;
                moved = true;
                break;
            }
            step /= 2.0;
        }
        if !moved {
            break;
        }
    }
    Ok(Sigmoid { a, b })
}
