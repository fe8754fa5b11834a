//! Leaf-wise growth of one tree on binned data (the LightGBM strategy): keep every leaf's
//! best split, always split the leaf whose split lowers the loss most, build the histogram
//! of the smaller child only and get the larger one by subtraction from the parent.
//!
//! Split finding follows LightGBM's documented behaviour closely enough to grow the same
//! trees (`tests/golden.rs`): row counts for `min_data_in_leaf` estimated from hessians, the
//! two scan directions for missing values, and features that found no split in a leaf not
//! being tried again below it.

use crate::bins::FeatureBins;
use crate::tree::{Node, Tree};
use crate::GbdtParams;
use rayon::prelude::*;

/// Gradient and hessian sums of one histogram bin (or of a leaf).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bin {
    g: f64,
    h: f64,
}

impl Bin {
    #[inline(always)]
    fn add(&mut self, o: &Bin) {
        self.g += o.g;
        self.h += o.h;
    }
    #[inline(always)]
    fn minus(&self, o: &Bin) -> Bin {
        Bin {
            g: self.g - o.g,
            h: self.h - o.h,
        }
    }
}

/// A leaf's histograms for all features (bins laid out by `Grower::offsets`); `n` holds
/// exact row counts and is filled only when `min_data_by_hessian` is off; `nan` counts the
/// leaf's NaN rows of each feature (exactly: a hessian sum left over from a subtraction
/// cannot tell "no NaN" apart).
#[derive(Default)]
struct Hist {
    gh: Vec<Bin>,
    n: Vec<u32>,
    nan: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    /// Last value bin that goes left.
    bin: usize,
    /// Which scan found it: NaN goes left in the reverse scan, right in the forward one.
    nan_left: bool,
    gain: f64,
    left: Bin,
    right: Bin,
}

/// What a threshold scan needs about the leaf and the parameters.
struct ScanCtx<'h> {
    sum: Bin,
    parent: f64,
    lambda: f64,
    min_n: i64,
    total_n: i64,
    min_h: f64,
    min_gain: f64,
    /// Rows per unit of hessian (LightGBM's count estimate)...
    fac: f64,
    /// ... or, when not empty, the exact counts of this feature's bins.
    counts: &'h [u32],
    /// Outputs are bounded (monotone constraints or `max_delta_step`): gains are computed
    /// from the bounded outputs and monotone splits must order them.
    bounded: Option<Bounds>,
    /// This feature's monotone constraint.
    mono: i8,
}

/// What a leaf's output may be: `[lo, hi]` from monotone splits above it, and `|v| <= cap`
/// (`max_delta_step`; infinite when off). Outputs are before shrinkage.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    lo: f64,
    hi: f64,
    cap: f64,
    lambda: f64,
}

impl Bounds {
    fn output(&self, s: &Bin) -> f64 {
        let v = -s.g / (s.h + self.lambda);
        let v = if v.is_finite() { v } else { 0.0 };
        v.clamp(-self.cap, self.cap).clamp(self.lo, self.hi)
    }

    /// Loss reduction of a leaf with output `o` against output 0; with the unbounded
    /// output it equals `g^2 / (h + lambda)`.
    fn gain(&self, s: &Bin) -> f64 {
        let o = self.output(s);
        -(2.0 * s.g * o + (s.h + self.lambda) * o * o)
    }
}

impl ScanCtx<'_> {
    /// Rows in bin `t`: exact, or LightGBM's `(h_bin * n_leaf / H_leaf + 0.5) as int`.
    #[inline(always)]
    fn est(&self, t: usize, b: &Bin) -> i64 {
        if self.counts.is_empty() {
            (b.h * self.fac + 0.5) as i64
        } else {
            self.counts[t] as i64
        }
    }

    /// Keeps the split if both sides pass the hessian check and its gain beats `best` (the
    /// count checks are done by the scans).
    #[inline(always)]
    fn consider(
        &self,
        f: usize,
        left: Bin,
        right: Bin,
        bin: usize,
        nan_left: bool,
        best: &mut Option<Split>,
    ) {
        if left.h < self.min_h || right.h < self.min_h {
            return;
        }
        let gain = match &self.bounded {
            None => {
                left.g * left.g / (left.h + self.lambda)
                    + right.g * right.g / (right.h + self.lambda)
                    - self.parent
            }
            Some(b) => {
                let (ol, or) = (b.output(&left), b.output(&right));
                if (self.mono > 0 && ol > or) || (self.mono < 0 && ol < or) {
                    return;
                }
                b.gain(&left) + b.gain(&right) - self.parent
            }
        };
        if gain > self.min_gain && best.is_none_or(|b| gain > b.gain) {
            *best = Some(Split {
                feature: f,
                bin,
                nan_left,
                gain,
                left,
                right,
            });
        }
    }
}

struct Leaf {
    start: usize,
    len: usize,
    sum: Bin,
    depth: usize,
    node: usize,
    hist: Hist,
    best: Option<Split>,
    /// Features worth scanning here: a feature with no valid split in a leaf is not tried
    /// again below it (as in LightGBM).
    alive: Vec<bool>,
    /// Output bounds from monotone splits above.
    lo: f64,
    hi: f64,
}

/// Work below this many (row, feature) cells stays on one thread: rayon's hand-off costs
/// more than it saves on small leaves.
const PAR_CELLS: usize = 1 << 15;

/// Split finding in a leaf goes parallel over features from this many histogram bins on
/// (a few hundred features): below, one scan takes microseconds and threads only add waits.
const PAR_BINS: usize = 1 << 16;

/// Largest table (rows x features) that also gets a row-major bin copy...
const ROW_MAJOR_CELLS: usize = 1 << 26;
/// ... if it has this many features: on a narrow table the per-feature passes are as fast
/// and the copy would only cost memory.
const ROW_MAJOR_MIN_FEATURES: usize = 16;

/// Rows whose gradients are gathered at once for the per-feature histogram passes.
const GATHER_ROWS: usize = 1 << 16;

/// Relative gain difference below which two features' best splits count as a tie.
const TIE: f64 = 1e-10;

pub(crate) struct Grower<'a> {
    mappers: &'a [FeatureBins],
    bins: &'a [Vec<u8>],
    params: &'a GbdtParams,
    offsets: Vec<usize>,
    total: usize,
    perm: Vec<u32>,
    scratch: Vec<u32>,
    /// Row-major copy of the bins (`[row * n_features + f]`) for single-threaded histograms:
    /// one pass over a leaf's rows beats one pass per feature. Empty for very large tables.
    row_bins: Vec<u8>,
    /// Histogram buffers of finished trees, reused: fresh ones of this size come from mmap
    /// and page-fault on first touch.
    pool: Vec<Hist>,
    /// Draws each tree's features when `feature_fraction < 1`.
    rng: mallard_rand::SplitMix64,
}

impl<'a> Grower<'a> {
    pub fn new(
        mappers: &'a [FeatureBins],
        bins: &'a [Vec<u8>],
        params: &'a GbdtParams,
        n_rows: usize,
    ) -> Self {
        let mut offsets = Vec::with_capacity(mappers.len() + 1);
        let mut total = 0;
        for m in mappers {
            offsets.push(total);
            total += m.n_bins() + 1;
        }
        offsets.push(total);
        let nf = mappers.len();
        let row_bins = if n_rows * nf <= ROW_MAJOR_CELLS && nf >= ROW_MAJOR_MIN_FEATURES {
            let mut rb = vec![0u8; n_rows * nf];
            for (f, col) in bins.iter().enumerate() {
                for (r, &b) in col.iter().enumerate() {
                    rb[r * nf + f] = b;
                }
            }
            rb
        } else {
            Vec::new()
        };
        Grower {
            mappers,
            bins,
            params,
            offsets,
            total,
            perm: (0..n_rows as u32).collect(),
            scratch: vec![0; n_rows / 2 + 1],
            row_bins,
            pool: Vec::new(),
            rng: mallard_rand::SplitMix64::new(params.seed),
        }
    }

    fn exact_counts(&self) -> bool {
        !self.params.min_data_by_hessian
    }

    fn leaf_value(&self, s: &Bin, lo: f64, hi: f64) -> f32 {
        let v = match self.bounds(lo, hi) {
            None => -s.g / (s.h + self.params.lambda_l2),
            Some(b) => b.output(s),
        } * self.params.learning_rate;
        if v.is_finite() {
            v as f32
        } else {
            0.0
        }
    }

    /// Whether outputs are bounded at all: without monotone constraints or a cap, split
    /// finding keeps LightGBM's unbounded formulas (and its trees).
    fn bounded(&self) -> bool {
        self.params.max_delta_step > 0.0 || self.params.monotone.iter().any(|&m| m != 0)
    }

    fn bounds(&self, lo: f64, hi: f64) -> Option<Bounds> {
        self.bounded().then_some(Bounds {
            lo,
            hi,
            cap: if self.params.max_delta_step > 0.0 {
                self.params.max_delta_step
            } else {
                f64::INFINITY
            },
            lambda: self.params.lambda_l2,
        })
    }

    fn mono(&self, f: usize) -> i8 {
        self.params.monotone.get(f).copied().unwrap_or(0)
    }

    /// A zeroed histogram buffer.
    fn buffer(&mut self) -> Hist {
        let exact = self.exact_counts();
        match self.pool.pop() {
            Some(mut b) => {
                b.gh.fill(Bin::default());
                b.n.fill(0);
                b.nan.fill(0);
                b
            }
            None => Hist {
                gh: vec![Bin::default(); self.total],
                n: if exact {
                    vec![0; self.total]
                } else {
                    Vec::new()
                },
                nan: vec![0; self.mappers.len()],
            },
        }
    }

    /// Fills `hist` (zeroed) from a leaf's rows. Every bin sums its rows in leaf order
    /// whichever path runs, so the result does not depend on the thread count.
    fn build_hist(&self, rows: &[u32], grad: &[f32], hess: &[f32], hist: &mut Hist) {
        let nf = self.mappers.len();
        for (f, m) in self.mappers.iter().enumerate() {
            if m.has_nan {
                let (col, nan) = (&self.bins[f], m.nan_bin() as u8);
                hist.nan[f] = rows.iter().filter(|&&r| col[r as usize] == nan).count() as u32;
            }
        }
        let parallel = rows.len() * nf >= PAR_CELLS && rayon::current_num_threads() > 1;
        if !parallel && !self.row_bins.is_empty() {
            let offsets = &self.offsets[..nf];
            for &r in rows {
                let e = Bin {
                    g: grad[r as usize] as f64,
                    h: hess[r as usize] as f64,
                };
                let rb = &self.row_bins[r as usize * nf..(r as usize + 1) * nf];
                for (&o, &b) in offsets.iter().zip(rb) {
                    hist.gh[o + b as usize].add(&e);
                }
                if !hist.n.is_empty() {
                    for (&o, &b) in offsets.iter().zip(rb) {
                        hist.n[o + b as usize] += 1;
                    }
                }
            }
            return;
        }
        let mut parts: Vec<(usize, &mut [Bin], &mut [u32])> = Vec::with_capacity(nf);
        let (mut rest, mut rest_n): (&mut [Bin], &mut [u32]) = (&mut hist.gh, &mut hist.n);
        for f in 0..nf {
            let w = self.offsets[f + 1] - self.offsets[f];
            let (a, b) = rest.split_at_mut(w);
            let (an, bn) = if rest_n.is_empty() {
                (Default::default(), Default::default())
            } else {
                rest_n.split_at_mut(w)
            };
            parts.push((f, a, an));
            rest = b;
            rest_n = bn;
        }
        // Gradients are gathered a block of rows at a time (contiguous for the per-feature
        // passes) instead of all at once: the root of a 10-million-row table would take
        // another 160 MB. Every bin still adds its rows in leaf order.
        let mut gh: Vec<Bin> = Vec::with_capacity(rows.len().min(GATHER_ROWS));
        for block in rows.chunks(GATHER_ROWS) {
            gh.clear();
            gh.extend(block.iter().map(|&r| Bin {
                g: grad[r as usize] as f64,
                h: hess[r as usize] as f64,
            }));
            let fill = |(f, h, hn): &mut (usize, &mut [Bin], &mut [u32])| {
                let col = &self.bins[*f];
                for (&r, e) in block.iter().zip(&gh) {
                    h[col[r as usize] as usize].add(e);
                }
                if !hn.is_empty() {
                    for &r in block {
                        hn[col[r as usize] as usize] += 1;
                    }
                }
            };
            if parallel {
                parts.par_iter_mut().for_each(fill);
            } else {
                parts.iter_mut().for_each(fill);
            }
        }
    }

    fn score(&self, s: &Bin) -> f64 {
        s.g * s.g / (s.h + self.params.lambda_l2)
    }

    /// Best split of one feature in a leaf, or `None` when no threshold passes the
    /// constraints with a positive gain.
    ///
    /// Two scans, as LightGBM makes them: NaN to the left, accumulating the right side from
    /// the top bin down; and (when the leaf has NaNs in this feature) NaN to the right,
    /// accumulating the left side from bin 0. The scan direction decides which side the
    /// estimated row count is summed on, so it is part of reproducing LightGBM's trees.
    fn feature_best(&self, f: usize, leaf: &Leaf) -> Option<Split> {
        let p = self.params;
        let m = &self.mappers[f];
        let range = self.offsets[f]..self.offsets[f + 1];
        let h = &leaf.hist.gh[range.clone()];
        let nb = m.n_bins();
        let bounded = self.bounds(leaf.lo, leaf.hi);
        let ctx = ScanCtx {
            sum: leaf.sum,
            parent: match &bounded {
                None => self.score(&leaf.sum),
                Some(b) => b.gain(&leaf.sum),
            },
            lambda: p.lambda_l2,
            min_n: p.min_data_in_leaf.max(1) as i64,
            total_n: leaf.len as i64,
            min_h: p.min_sum_hessian_in_leaf,
            min_gain: p.min_gain_to_split,
            fac: if leaf.sum.h > 0.0 {
                leaf.len as f64 / leaf.sum.h
            } else {
                0.0
            },
            counts: if leaf.hist.n.is_empty() {
                &[]
            } else {
                &leaf.hist.n[range]
            },
            bounded,
            mono: self.mono(f),
        };
        let mut best: Option<Split> = None;
        let mut right = Bin::default();
        let mut right_n = 0i64;
        for t in (0..nb - 1).rev() {
            let b = &h[t + 1];
            if b.h == 0.0 && b.g == 0.0 && ctx.counts.is_empty() {
                // an empty bin changes neither side: same split as the previous threshold,
                // which a strictly larger gain is needed to replace
                continue;
            }
            right.add(b);
            right_n += ctx.est(t + 1, b);
            if right_n < ctx.min_n || right.h < ctx.min_h {
                continue;
            }
            if ctx.total_n - right_n < ctx.min_n {
                break;
            }
            ctx.consider(f, ctx.sum.minus(&right), right, t, true, &mut best);
        }
        if leaf.hist.nan[f] > 0 {
            let mut left = Bin::default();
            let mut left_n = 0i64;
            let mut start = 0;
            if m.implied_first {
                // bin 0 as LightGBM sees it: the leaf minus every other bin
                let mut rest = Bin::default();
                let mut rest_n = 0i64;
                for (t, b) in h.iter().enumerate().skip(1) {
                    rest.add(b);
                    rest_n += ctx.est(t, b);
                }
                left = ctx.sum.minus(&rest);
                left_n = ctx.total_n - rest_n;
                start = 1;
                if left_n >= ctx.min_n && left.h >= ctx.min_h && ctx.total_n - left_n >= ctx.min_n {
                    ctx.consider(f, left, rest, 0, false, &mut best);
                }
            }
            for (t, b) in h.iter().enumerate().take(nb).skip(start) {
                if b.h == 0.0 && b.g == 0.0 && ctx.counts.is_empty() {
                    continue;
                }
                left.add(b);
                left_n += ctx.est(t, b);
                if left_n < ctx.min_n || left.h < ctx.min_h {
                    continue;
                }
                if ctx.total_n - left_n < ctx.min_n {
                    break;
                }
                ctx.consider(f, left, ctx.sum.minus(&left), t, false, &mut best);
            }
        }
        best
    }

    fn find_best(&self, leaf: &mut Leaf) {
        let p = self.params;
        leaf.best = None;
        if leaf.len < 2 * p.min_data_in_leaf.max(1) || p.max_depth.is_some_and(|d| leaf.depth >= d)
        {
            return;
        }
        let nf = self.mappers.len();
        let one = |f: usize| {
            if leaf.alive[f] {
                self.feature_best(f, leaf)
            } else {
                None
            }
        };
        let cands: Vec<Option<Split>> =
            if self.total >= PAR_BINS && rayon::current_num_threads() > 1 {
                (0..nf).into_par_iter().map(one).collect()
            } else {
                (0..nf).map(one).collect()
            };
        for (a, c) in leaf.alive.iter_mut().zip(&cands) {
            *a = c.is_some();
        }
        // Gains equal up to rounding (the same partition found through two features sums
        // its histograms in a different order) are a tie, which the lowest feature wins.
        leaf.best = cands
            .into_iter()
            .flatten()
            .fold(None, |acc: Option<Split>, s| match acc {
                Some(a) if s.gain <= a.gain + TIE * a.gain.abs() => Some(a),
                _ => Some(s),
            });
    }

    /// The features this tree may split on: the usable ones, or a fresh random share of
    /// them (`feature_fraction`, at least one) drawn from the grower's own stream.
    fn tree_features(&mut self) -> Vec<bool> {
        let usable: Vec<usize> = (0..self.mappers.len())
            .filter(|&f| self.mappers[f].usable)
            .collect();
        let mut alive = vec![false; self.mappers.len()];
        let ff = self.params.feature_fraction;
        if !(ff > 0.0 && ff < 1.0) || usable.len() < 2 {
            for &f in &usable {
                alive[f] = true;
            }
            return alive;
        }
        let k = ((ff * usable.len() as f64).round() as usize).clamp(1, usable.len());
        // Partial Fisher-Yates: the first k of a shuffled copy.
        let mut pool = usable;
        for i in 0..k {
            let j = i + self.rng.modulo((pool.len() - i) as u64) as usize;
            pool.swap(i, j);
            alive[pool[i]] = true;
        }
        alive
    }

    /// Grows one tree on the gradients; adds each row's leaf value to `scores` (stride
    /// `stride`, offset `out`) and returns the tree.
    pub fn grow(
        &mut self,
        grad: &[f32],
        hess: &[f32],
        scores: &mut [f64],
        stride: usize,
        out: usize,
    ) -> Tree {
        let n = self.perm.len();
        for (i, p) in self.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        let mut sum = Bin::default();
        for i in 0..n {
            sum.add(&Bin {
                g: grad[i] as f64,
                h: hess[i] as f64,
            });
        }
        let mut hist = self.buffer();
        self.build_hist(&self.perm, grad, hess, &mut hist);
        let (lo, hi) = (f64::NEG_INFINITY, f64::INFINITY);
        let mut nodes = vec![Node::leaf(self.leaf_value(&sum, lo, hi), n as f32)];
        let mut root = Leaf {
            start: 0,
            len: n,
            sum,
            depth: 0,
            node: 0,
            hist,
            best: None,
            alive: self.tree_features(),
            lo,
            hi,
        };
        self.find_best(&mut root);
        let mut leaves = vec![root];
        while leaves.len() < self.params.num_leaves {
            let mut pick: Option<(usize, f64)> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(s) = &l.best {
                    if pick.is_none_or(|(_, g)| s.gain > g) {
                        pick = Some((i, s.gain));
                    }
                }
            }
            let Some((li, _)) = pick else { break };
            let Some(s) = leaves[li].best.take() else {
                break;
            };
            let (start, len, depth, node, lo, hi) = (
                leaves[li].start,
                leaves[li].len,
                leaves[li].depth,
                leaves[li].node,
                leaves[li].lo,
                leaves[li].hi,
            );
            // Children of a monotone split stay on their side of the midpoint of their
            // outputs, so that nothing grown below can reverse the order.
            let ((l_lo, l_hi), (r_lo, r_hi)) = match (self.bounds(lo, hi), self.mono(s.feature)) {
                (Some(b), m) if m != 0 => {
                    let mid = 0.5 * (b.output(&s.left) + b.output(&s.right));
                    if m > 0 {
                        ((lo, mid), (mid, hi))
                    } else {
                        ((mid, hi), (lo, mid))
                    }
                }
                _ => ((lo, hi), (lo, hi)),
            };

            // stable partition of the leaf's rows
            let m = &self.mappers[s.feature];
            let nan_bin = m.nan_bin() as u8;
            let col = &self.bins[s.feature];
            let seg = &mut self.perm[start..start + len];
            let goes_left = |r: u32| {
                let b = col[r as usize];
                if b == nan_bin {
                    s.nan_left
                } else {
                    b as usize <= s.bin
                }
            };
            // Stable: one side is compacted in place, the smaller one goes through
            // `scratch`, which therefore needs half the rows.
            let nl = seg.iter().filter(|&&r| goes_left(r)).count();
            let nr = len - nl;
            if nr <= nl {
                let (mut l, mut k) = (0, 0);
                for i in 0..len {
                    let r = seg[i];
                    if goes_left(r) {
                        seg[l] = r;
                        l += 1;
                    } else {
                        self.scratch[k] = r;
                        k += 1;
                    }
                }
                seg[nl..].copy_from_slice(&self.scratch[..nr]);
            } else {
                let (mut w, mut k) = (len, nl);
                for i in (0..len).rev() {
                    let r = seg[i];
                    if goes_left(r) {
                        k -= 1;
                        self.scratch[k] = r;
                    } else {
                        w -= 1;
                        seg[w] = r;
                    }
                }
                seg[..nl].copy_from_slice(&self.scratch[..nl]);
            }
            if nl == 0 || nr == 0 {
                // only possible with min_sum_hessian_in_leaf = 0 and a count estimate of a
                // bin that holds no row: not a split
                continue;
            }

            let threshold = if s.bin + 1 >= m.n_bins() {
                f32::INFINITY
            } else {
                m.cuts[s.bin]
            };
            // NaN follows the scan for features that had NaNs in training; for the others
            // it is read as 0 (LightGBM's missing-type "None")
            let default_left = if m.has_nan {
                s.nan_left
            } else {
                0.0 <= threshold
            };
            let (il, ir) = (nodes.len(), nodes.len() + 1);
            nodes.push(Node::leaf(self.leaf_value(&s.left, l_lo, l_hi), nl as f32));
            nodes.push(Node::leaf(self.leaf_value(&s.right, r_lo, r_hi), nr as f32));
            let nd = &mut nodes[node];
            nd.split(
                s.feature as u32,
                threshold,
                default_left,
                [il as u32, ir as u32],
            );
            nd.gain = s.gain as f32;

            let mut large = std::mem::take(&mut leaves[li].hist);
            let left_small = nl <= nr;
            let (sm_start, sm_len) = if left_small {
                (start, nl)
            } else {
                (start + nl, nr)
            };
            let mut small = self.buffer();
            self.build_hist(
                &self.perm[sm_start..sm_start + sm_len],
                grad,
                hess,
                &mut small,
            );
            for (a, b) in large.gh.iter_mut().zip(&small.gh) {
                *a = a.minus(b);
            }
            for (a, b) in large.n.iter_mut().zip(&small.n) {
                *a -= b;
            }
            for (a, b) in large.nan.iter_mut().zip(&small.nan) {
                *a -= b;
            }
            let (hl, hr) = if left_small {
                (small, large)
            } else {
                (large, small)
            };
            let alive = std::mem::take(&mut leaves[li].alive);
            let mut left = Leaf {
                start,
                len: nl,
                sum: s.left,
                depth: depth + 1,
                node: il,
                hist: hl,
                best: None,
                alive: alive.clone(),
                lo: l_lo,
                hi: l_hi,
            };
            let mut right = Leaf {
                start: start + nl,
                len: nr,
                sum: s.right,
                depth: depth + 1,
                node: ir,
                hist: hr,
                best: None,
                alive,
                lo: r_lo,
                hi: r_hi,
            };
            self.find_best(&mut left);
            self.find_best(&mut right);
            leaves[li] = left;
            leaves.push(right);
        }
        for l in &mut leaves {
            let v = nodes[l.node].value as f64;
            for &r in &self.perm[l.start..l.start + l.len] {
                scores[r as usize * stride + out] += v;
            }
            self.pool.push(std::mem::take(&mut l.hist));
        }
        Tree::new(nodes)
    }
}
