//! SMO with second-order working-set selection (Fan, Chen & Lin 2005, "WSS3").
//!
//! Notation: `g = Qa - e` is the gradient of the dual objective. A step moves the pair
//! `(i, j)` along `a_i += y_i t`, `a_j -= y_j t` (which keeps `y'a = 0`); along it the objective
//! changes by `-b t + a t^2 / 2` with `b = -y_i g_i + y_j g_j` and
//! `a = K_ii + K_jj - 2 K_ij`, so the best unclipped step is `t = b / a`.
//! `i` is the most violating index of the "up" set, `j` the index of the "low" set that
//! promises the largest decrease `b^2 / (2a)`; the run stops when the largest violation
//! `max_up(-y g) - min_low(-y g)` is below `eps`.

use crate::{Kernel, SvmError};

/// Stand-in for a non-positive curvature `a` (a kernel that is not quite PSD).
const TAU: f64 = 1e-12;

/// Solver settings.
#[derive(Debug, Clone)]
pub struct SvcParams {
    /// Stopping tolerance on the maximal KKT violation (libsvm's `-e`, default 1e-3).
    pub eps: f64,
    /// Iteration cap; `None`: `max(10_000_000, 100 n)`, as libsvm.
    pub max_iter: Option<usize>,
    /// Memory for cached kernel rows, in bytes (at least two rows are always kept).
    pub cache_bytes: usize,
}

impl Default for SvcParams {
    fn default() -> Self {
        SvcParams {
            eps: 1e-3,
            max_iter: None,
            cache_bytes: 256 << 20,
        }
    }
}

/// A trained binary C-SVC: `f(x) = sum_i coef_i K(x_i, x) + bias`, positive class when `f > 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Svc {
    /// `a_i` of every training sample (0 for non-support vectors).
    pub alpha: Vec<f64>,
    /// `y_i a_i` of every training sample: the dual coefficients.
    pub coef: Vec<f64>,
    /// `-rho` in libsvm's notation.
    pub bias: f64,
    /// Final dual objective `1/2 a'Qa - e'a`.
    pub objective: f64,
    pub iterations: usize,
    /// False when the iteration cap stopped the run before the tolerance was met.
    pub converged: bool,
}

impl Svc {
    /// Indices of the support vectors (`a_i > 0`).
    pub fn support(&self) -> Vec<usize> {
        (0..self.alpha.len())
            .filter(|&i| self.alpha[i] > 0.0)
            .collect()
    }

    /// The decision value for a point whose kernel values against the training samples are
    /// `k_row` (in training order).
    pub fn decision(&self, k_row: &[f64]) -> f64 {
        self.coef.iter().zip(k_row).map(|(c, k)| c * k).sum::<f64>() + self.bias
    }
}

/// Kernel rows kept in memory up to a budget, least recently used evicted first.
struct RowCache<'a, K: ?Sized> {
    kernel: &'a K,
    rows: Vec<Option<Vec<f64>>>,
    last_used: Vec<u64>,
    clock: u64,
    held: usize,
    max_rows: usize,
}

impl<'a, K: Kernel + ?Sized> RowCache<'a, K> {
    fn new(kernel: &'a K, cache_bytes: usize) -> Self {
        let n = kernel.len();
        let per_row = n.max(1) * std::mem::size_of::<f64>();
        RowCache {
            kernel,
            rows: vec![None; n],
            last_used: vec![0; n],
            clock: 0,
            held: 0,
            max_rows: (cache_bytes / per_row).clamp(2, n.max(2)),
        }
    }

    /// Makes row `i` resident without evicting `keep`.
    fn ensure(&mut self, i: usize, keep: usize) -> Result<(), SvmError> {
        self.clock += 1;
        self.last_used[i] = self.clock;
        if self.rows[i].is_some() {
            return Ok(());
        }
        let mut buf = None;
        if self.held >= self.max_rows {
            let victim = (0..self.rows.len())
                .filter(|&r| r != keep && r != i && self.rows[r].is_some())
                .min_by_key(|&r| self.last_used[r]);
            if let Some(v) = victim {
                buf = self.rows[v].take();
                self.held -= 1;
            }
        }
        let mut row = buf.unwrap_or_else(|| vec![0.0; self.rows.len()]);
        self.kernel.row(i, &mut row);
        if let Some(j) = row.iter().position(|v| !v.is_finite()) {
            return Err(SvmError::NonFinite {
                i,
                j,
                value: row[j],
            });
        }
        self.rows[i] = Some(row);
        self.held += 1;
        Ok(())
    }

    fn get(&self, i: usize) -> &[f64] {
        self.rows[i].as_deref().unwrap_or(&[])
    }
}

/// Trains a C-SVC on `kernel` with labels `positive` (true: class +1) and per-sample upper
/// bounds `c` (C times the sample's weight).
pub fn train<K: Kernel + ?Sized>(
    kernel: &K,
    positive: &[bool],
    c: &[f64],
    params: &SvcParams,
) -> Result<Svc, SvmError> {
    let n = kernel.len();
    if n == 0 {
        return Err(SvmError::Empty);
    }
    for (what, got) in [("labels", positive.len()), ("C", c.len())] {
        if got != n {
            return Err(SvmError::Length {
                what,
                got,
                expected: n,
            });
        }
    }
    if let Some(index) = c.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
        return Err(SvmError::BadC {
            index,
            value: c[index],
        });
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == n {
        return Err(SvmError::OneClass(n));
    }
    if !(params.eps.is_finite() && params.eps > 0.0) {
        return Err(SvmError::Param(format!(
            "eps must be finite and > 0, got {}",
            params.eps
        )));
    }
    let y: Vec<f64> = positive
        .iter()
        .map(|&p| if p { 1.0 } else { -1.0 })
        .collect();
    let diag: Vec<f64> = (0..n).map(|i| kernel.eval(i, i)).collect();
    if let Some(i) = diag.iter().position(|v| !v.is_finite()) {
        return Err(SvmError::NonFinite {
            i,
            j: i,
            value: diag[i],
        });
    }
    let max_iter = params
        .max_iter
        .unwrap_or(10_000_000usize.max(n.saturating_mul(100)));
    let mut alpha = vec![0.0f64; n];
    let mut grad = vec![-1.0f64; n];
    let mut cache = RowCache::new(kernel, params.cache_bytes);

    // -y_t g_t is what the selection compares; "up" may increase y_t a_t, "low" may decrease it.
    let in_up = |t: usize, a: &[f64]| if y[t] > 0.0 { a[t] < c[t] } else { a[t] > 0.0 };
    let in_low = |t: usize, a: &[f64]| if y[t] > 0.0 { a[t] > 0.0 } else { a[t] < c[t] };

    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        // i: the largest -y g over the up set.
        let mut i = None;
        let mut m_up = f64::NEG_INFINITY;
        for t in 0..n {
            if in_up(t, &alpha) {
                let v = -y[t] * grad[t];
                if v >= m_up {
                    m_up = v;
                    i = Some(t);
                }
            }
        }
        let Some(i) = i else {
            converged = true;
            break;
        };
        cache.ensure(i, i)?;
        // j: over the low set with -y g below m_up, the largest decrease b^2 / a.
        let k_i = cache.get(i);
        let mut j = None;
        let mut m_low = f64::INFINITY;
        let mut best = f64::NEG_INFINITY;
        for t in 0..n {
            if !in_low(t, &alpha) {
                continue;
            }
            let v = -y[t] * grad[t];
            m_low = m_low.min(v);
            let b = m_up - v;
            if b > 0.0 {
                let mut a = diag[i] + diag[t] - 2.0 * k_i[t];
                if a <= 0.0 {
                    a = TAU;
                }
                let gain = b * b / a;
                if gain >= best {
                    best = gain;
                    j = Some(t);
                }
            }
        }
        if m_up - m_low < params.eps {
            converged = true;
            break;
        }
        let Some(j) = j else {
            converged = true;
            break;
        };
        iterations += 1;
        cache.ensure(j, i)?;
        let (k_i, k_j) = (cache.get(i), cache.get(j));

        let b = m_up + y[j] * grad[j];
        let mut a = diag[i] + diag[j] - 2.0 * k_i[j];
        if a <= 0.0 {
            a = TAU;
        }
        // Largest feasible step for each variable (t >= 0 moves y_i a_i up, y_j a_j down).
        let room_i = if y[i] > 0.0 {
            c[i] - alpha[i]
        } else {
            alpha[i]
        };
        let room_j = if y[j] > 0.0 {
            alpha[j]
        } else {
            c[j] - alpha[j]
        };
        let t = (b / a).min(room_i).min(room_j).max(0.0);
        let (old_i, old_j) = (alpha[i], alpha[j]);
        alpha[i] = old_i + y[i] * t;
        alpha[j] = old_j - y[j] * t;
        // Land exactly on a bound that the step reached, so that bound tests stay exact.
        if t >= room_i {
            alpha[i] = if y[i] > 0.0 { c[i] } else { 0.0 };
        }
        if t >= room_j {
            alpha[j] = if y[j] > 0.0 { 0.0 } else { c[j] };
        }
        alpha[i] = alpha[i].clamp(0.0, c[i]);
        alpha[j] = alpha[j].clamp(0.0, c[j]);
        let (d_i, d_j) = (alpha[i] - old_i, alpha[j] - old_j);
        // g_k += Q_ki d_i + Q_kj d_j with Q_kl = y_k y_l K_kl.
        let (s_i, s_j) = (y[i] * d_i, y[j] * d_j);
        for k in 0..n {
            grad[k] += y[k] * (s_i * k_i[k] + s_j * k_j[k]);
        }
    }

    let bias = -rho(&alpha, &grad, &y, c);
    let objective = 0.5
        * alpha
            .iter()
            .zip(&grad)
            .map(|(a, g)| a * (g - 1.0))
            .sum::<f64>();
    let coef = alpha.iter().zip(&y).map(|(a, y)| a * y).collect();
    Ok(Svc {
        alpha,
        coef,
        bias,
        objective,
        iterations,
        converged,
    })
}

/// The offset `rho` (`f(x) = sum a_i y_i K - rho`): at the optimum every free sample has
/// `y_t g_t = rho`, so their mean; with none free, the middle of the interval the bounded
/// samples leave open.
fn rho(alpha: &[f64], grad: &[f64], y: &[f64], c: &[f64]) -> f64 {
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let (mut sum, mut free) = (0.0, 0usize);
    for t in 0..alpha.len() {
        let v = y[t] * grad[t];
        let at_upper = alpha[t] >= c[t];
        let at_lower = alpha[t] <= 0.0;
        if !at_upper && !at_lower {
            sum += v;
            free += 1;
        } else if (y[t] > 0.0 && at_upper) || (y[t] < 0.0 && at_lower) {
            // y f_t <= 1 (positive at C) or negative at 0: rho >= y g.
            lo = lo.max(v);
        } else {
            hi = hi.min(v);
        }
    }
    if free > 0 {
        sum / free as f64
    } else if lo.is_finite() && hi.is_finite() {
        (lo + hi) / 2.0
    } else if lo.is_finite() {
        lo
    } else {
        hi
    }
}
