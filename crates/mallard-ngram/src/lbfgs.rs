//! Limited-memory BFGS with a strong-Wolfe line search (Nocedal & Wright,
//! algorithms 7.4, 3.5 and 3.6). Written for smooth convex objectives: the
//! logistic loss here. Stopping rules follow scipy's L-BFGS-B as used by
//! scikit-learn (`gtol` on the max-abs gradient, `ftol` on relative decrease).

use std::collections::VecDeque;

use crate::{NgramError, Result};

pub(crate) struct Options {
    pub history: usize,
    pub max_iter: usize,
    pub gtol: f64,
    pub ftol: f64,
    pub max_ls: usize,
}

pub(crate) struct Outcome {
    pub x: Vec<f64>,
    pub n_iter: usize,
    /// True when a stopping tolerance (not the iteration cap) ended the run.
    pub converged: bool,
}

const C1: f64 = 1e-4;
const C2: f64 = 0.9;

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `fg` (returns f, writes the gradient into its second argument).
pub(crate) fn minimize<F>(mut fg: F, x0: Vec<f64>, opt: &Options) -> Result<Outcome>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0;
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return Err(NgramError::Optimization("non-finite loss at start".into()));
    }
    let mut hist: VecDeque<(Vec<f64>, Vec<f64>, f64)> = VecDeque::with_capacity(opt.history);
    let mut d = vec![0.0; n];
    let mut xt = vec![0.0; n];
    let mut gt = vec![0.0; n];
    let mut alpha = vec![0.0; opt.history];
    if max_abs(&g) <= opt.gtol {
        return Ok(Outcome {
            x,
            n_iter: 0,
            converged: true,
        });
    }
    for iter in 1..=opt.max_iter {
        // Two-loop recursion: d = -H g.
        d.copy_from_slice(&g);
        for (k, (s, y, rho)) in hist.iter().enumerate().rev() {
            let a = rho * dot(s, &d);
            alpha[k] = a;
            d.iter_mut().zip(y).for_each(|(di, yi)| *di -= a * yi);
        }
        if let Some((s, y, _)) = hist.back() {
            let gamma = dot(s, y) / dot(y, y);
            d.iter_mut().for_each(|v| *v *= gamma);
        }
        for (k, (s, y, rho)) in hist.iter().enumerate() {
            let b = rho * dot(y, &d);
            let a = alpha[k];
            d.iter_mut().zip(s).for_each(|(di, si)| *di += (a - b) * si);
        }
        d.iter_mut().for_each(|v| *v = -*v);
        let mut dg = dot(&d, &g);
        if dg >= 0.0 || !dg.is_finite() {
            // Lost descent (numerical noise): restart from steepest descent.
            hist.clear();
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            dg = dot(&d, &g);
        }
        let step0 = if hist.is_empty() {
            (1.0 / dg.abs().sqrt()).min(1.0)
        } else {
            1.0
        };
        let Some((_step, ft)) =
            line_search(&mut fg, &x, f, dg, &d, step0, &mut xt, &mut gt, opt.max_ls)
        else {
            // No acceptable step: at the limit of floating-point precision.
            let converged = max_abs(&g) <= opt.gtol.max(1e-5);
            return Ok(Outcome {
                x,
                n_iter: iter,
                converged,
            });
        };
        // Curvature pair.
        let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&y, &y).max(f64::MIN_POSITIVE) {
            if hist.len() == opt.history {
                hist.pop_front();
            }
            hist.push_back((s, y, 1.0 / sy));
        }
        std::mem::swap(&mut x, &mut xt);
        std::mem::swap(&mut g, &mut gt);
        let f_old = f;
        f = ft;
        if max_abs(&g) <= opt.gtol {
            return Ok(Outcome {
                x,
                n_iter: iter,
                converged: true,
            });
        }
        if (f_old - f) / f_old.abs().max(f.abs()).max(1.0) <= opt.ftol {
            return Ok(Outcome {
                x,
                n_iter: iter,
                converged: true,
            });
        }
    }
    Ok(Outcome {
        x,
        n_iter: opt.max_iter,
        converged: false,
    })
}

/// Evaluates phi(a) = f(x + a d), leaving the point and gradient in `xt`, `gt`.
fn eval<F>(fg: &mut F, x: &[f64], d: &[f64], a: f64, xt: &mut [f64], gt: &mut [f64]) -> (f64, f64)
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    xt.iter_mut()
        .zip(x.iter().zip(d))
        .for_each(|(t, (xi, di))| *t = xi + a * di);
    let f = fg(xt, gt);
    (f, dot(gt, d))
}

/// Minimiser of the cubic through (a, fa, da), (b, fb, db), if it is safely inside.
fn cubic_min(a: f64, fa: f64, da: f64, b: f64, fb: f64, db: f64) -> Option<f64> {
    let d1 = da + db - 3.0 * (fa - fb) / (a - b);
    let disc = d1 * d1 - da * db;
    if disc.is_nan() || disc < 0.0 {
        return None;
    }
    let d2 = (b - a).signum() * disc.sqrt();
    let t = b - (b - a) * (db + d2 - d1) / (db - da + 2.0 * d2);
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let margin = 0.1 * (hi - lo);
    (t.is_finite() && t > lo + margin && t < hi - margin).then_some(t)
}

/// Strong-Wolfe line search; returns (step, f) with `xt`/`gt` at that step.
#[allow(clippy::too_many_arguments)]
fn line_search<F>(
    fg: &mut F,
    x: &[f64],
    f0: f64,
    dphi0: f64,
    d: &[f64],
    step0: f64,
    xt: &mut [f64],
    gt: &mut [f64],
    max_ls: usize,
) -> Option<(f64, f64)>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut evals = 0;
    let (mut a_prev, mut f_prev, mut d_prev) = (0.0, f0, dphi0);
    let mut a = step0;
    // Bracketing phase.
    let (mut lo, mut hi) = loop {
        if evals >= max_ls {
            return None;
        }
        let (fa, da) = eval(fg, x, d, a, xt, gt);
        evals += 1;
        if !fa.is_finite() || !da.is_finite() {
            // Overshoot into overflow: treat as "too far".
            break ((a_prev, f_prev, d_prev), (a, f64::INFINITY, f64::NAN));
        }
        if fa > f0 + C1 * a * dphi0 || (evals > 1 && fa >= f_prev) {
            break ((a_prev, f_prev, d_prev), (a, fa, da));
        }
        if da.abs() <= -C2 * dphi0 {
            return Some((a, fa));
        }
        if da >= 0.0 {
            break ((a, fa, da), (a_prev, f_prev, d_prev));
        }
        a_prev = a;
        f_prev = fa;
        d_prev = da;
        a *= 2.0;
    };
    // Zoom phase: `lo` always satisfies sufficient decrease and has the lowest f.
    while evals < max_ls {
        let t = if hi.1.is_finite() && hi.2.is_finite() {
            cubic_min(lo.0, lo.1, lo.2, hi.0, hi.1, hi.2)
        } else {
            None
        }
        .unwrap_or(0.5 * (lo.0 + hi.0));
        if (hi.0 - lo.0).abs() <= 1e-15 * lo.0.abs().max(1e-300) {
            break;
        }
        let (ft, dt) = eval(fg, x, d, t, xt, gt);
        evals += 1;
        if !ft.is_finite() || ft > f0 + C1 * t * dphi0 || ft >= lo.1 {
            hi = (t, ft, dt);
        } else {
            if dt.abs() <= -C2 * dphi0 {
                return Some((t, ft));
            }
            if dt * (hi.0 - lo.0) >= 0.0 {
                hi = lo;
            }
            lo = (t, ft, dt);
        }
    }
    // Fall back to the best point with sufficient decrease, if we moved at all.
    if lo.0 > 0.0 && lo.1 < f0 {
        let (f, _) = eval(fg, x, d, lo.0, xt, gt);
        return Some((lo.0, f));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rosenbrock() {
        let opt = Options {
            history: 10,
            max_iter: 1000,
            gtol: 1e-10,
            ftol: 0.0,
            max_ls: 50,
        };
        let out = minimize(
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            vec![-1.2, 1.0],
            &opt,
        )
        .unwrap();
        assert!(out.converged);
        assert!(
            (out.x[0] - 1.0).abs() < 1e-8 && (out.x[1] - 1.0).abs() < 1e-8,
            "{:?}",
            out.x
        );
    }

    #[test]
    fn ill_conditioned_quadratic() {
        let opt = Options {
            history: 10,
            max_iter: 3000,
            gtol: 1e-12,
            ftol: 0.0,
            max_ls: 50,
        };
        let scales: Vec<f64> = (0..50).map(|i| 10f64.powf(i as f64 / 49.0 * 4.0)).collect();
        let out = minimize(
            |x, g| {
                let mut f = 0.0;
                for i in 0..x.len() {
                    let r = x[i] - 1.0;
                    g[i] = scales[i] * r;
                    f += 0.5 * scales[i] * r * r;
                }
                f
            },
            vec![0.0; 50],
            &opt,
        )
        .unwrap();
        let err = out.x.iter().fold(0.0f64, |m, v| m.max((v - 1.0).abs()));
        // scipy's L-BFGS-B (maxcor=10) needs 1,387 iterations on this problem.
        assert!(
            out.converged && out.n_iter < 2000,
            "iter {} err {err}",
            out.n_iter
        );
        eprintln!("quadratic: {} iterations", out.n_iter);
        assert!(err < 1e-10, "{err}");
    }
}
