//! Leaf-wise growth of one tree on binned data (the LightGBM strategy): keep every leaf's
//! best split, always split the leaf whose split lowers the loss most, build the histogram
//! of the smaller child only and get the larger one by subtraction from the parent.

use crate::bins::FeatureBins;
use crate::tree::{Node, Tree};
use crate::GbdtParams;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Bin {
    g: f64,
    h: f64,
    n: u32,
}

impl Bin {
    #[inline]
    fn add(&mut self, o: &Bin) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
    #[inline]
    fn minus(&self, o: &Bin) -> Bin {
        Bin {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n.wrapping_sub(o.n),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Split {
    feature: usize,
    /// Last value bin that goes left.
    bin: usize,
    default_left: bool,
    gain: f64,
    left: Bin,
    right: Bin,
}

/// What a threshold scan needs about the leaf and the parameters.
struct ScanCtx {
    sum: Bin,
    parent: f64,
    lambda: f64,
    min_n: i64,
    total_n: i64,
    min_h: f64,
    min_gain: f64,
    /// Rows per unit of hessian; negative: count rows exactly.
    fac: f64,
}

impl ScanCtx {
    #[inline(always)]
    fn est(&self, b: &Bin) -> i64 {
        if self.fac >= 0.0 {
            (b.h * self.fac + 0.5) as i64
        } else {
            b.n as i64
        }
    }

    /// Keeps the split if its other side passes the hessian check and its gain beats `best`
    /// (the count checks are done by the scans).
    #[inline(always)]
    fn consider(&self, f: usize, left: Bin, right: Bin, bin: usize, default_left: bool, best: &mut Option<Split>) {
        if left.n == 0 || right.n == 0 || left.h < self.min_h || right.h < self.min_h {
            return;
        }
        let gain = left.g * left.g / (left.h + self.lambda) + right.g * right.g / (right.h + self.lambda) - self.parent;
        if gain > self.min_gain && best.is_none_or(|b| gain > b.gain) {
            *best = Some(Split {
                feature: f,
                bin,
                default_left,
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
    hist: Vec<Bin>,
    best: Option<Split>,
    /// Features worth scanning here: a feature with no valid split in a leaf is not tried
    /// again below it (as in LightGBM, whose trees we reproduce).
    alive: Vec<bool>,
}

/// Work below this many (row, feature) cells stays on one thread: rayon's hand-off costs
/// more than it saves on small leaves.
const PAR_CELLS: usize = 1 << 15;

/// Largest table (rows x features) that also gets a row-major bin copy.
const ROW_MAJOR_CELLS: usize = 1 << 26;

/// Relative gain difference below which two features' best splits count as a tie.
const TIE: f64 = 1e-10;

pub(crate) struct Grower<'a> {
    pub mappers: &'a [FeatureBins],
    pub bins: &'a [Vec<u8>],
    pub params: &'a GbdtParams,
    offsets: Vec<usize>,
    total: usize,
    perm: Vec<u32>,
    scratch: Vec<u32>,
    /// Row-major copy of the bins (`[row * n_features + f]`) for single-threaded histograms:
    /// one pass over a leaf's rows beats one pass per feature. Empty for very large tables.
    row_bins: Vec<u8>,
    /// Histogram buffers of finished trees, reused: fresh ones of this size come from mmap
    /// and page-fault on first touch.
    pool: Vec<Vec<Bin>>,
}

impl<'a> Grower<'a> {
    pub fn new(mappers: &'a [FeatureBins], bins: &'a [Vec<u8>], params: &'a GbdtParams, n_rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(mappers.len() + 1);
        let mut total = 0;
        for m in mappers {
            offsets.push(total);
            total += m.n_bins() + 1;
        }
        offsets.push(total);
        let nf = mappers.len();
        let row_bins = if n_rows * nf <= ROW_MAJOR_CELLS {
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
            scratch: vec![0; n_rows],
            row_bins,
            pool: Vec::new(),
        }
    }

    fn leaf_value(&self, s: &Bin) -> f32 {
        let v = -s.g / (s.h + self.params.lambda_l2) * self.params.learning_rate;
        if v.is_finite() {
            v as f32
        } else {
            0.0
        }
    }

    /// Histogram of a leaf's rows. Every bin sums its rows in leaf order whichever path
    /// runs, so the result does not depend on the thread count.
    fn build_hist(&self, rows: &[u32], grad: &[f64], hess: &[f64], mut hist: Vec<Bin>) -> Vec<Bin> {
        let nf = self.mappers.len();
        let parallel = rows.len() * nf >= PAR_CELLS && rayon::current_num_threads() > 1;
        if !parallel && !self.row_bins.is_empty() {
            let offsets = &self.offsets[..nf];
            for &r in rows {
                let (g, hs) = (grad[r as usize], hess[r as usize]);
                let rb = &self.row_bins[r as usize * nf..(r as usize + 1) * nf];
                for (&o, &b) in offsets.iter().zip(rb) {
                    let e = &mut hist[o + b as usize];
                    e.g += g;
                    e.h += hs;
                    e.n += 1;
                }
            }
            return hist;
        }
        let gh: Vec<(f64, f64)> = rows
            .iter()
            .map(|&r| (grad[r as usize], hess[r as usize]))
            .collect();
        let mut parts: Vec<(usize, &mut [Bin])> = Vec::with_capacity(nf);
        let mut rest: &mut [Bin] = &mut hist;
        for f in 0..nf {
            let (a, b) = rest.split_at_mut(self.offsets[f + 1] - self.offsets[f]);
            parts.push((f, a));
            rest = b;
        }
        let fill = |(f, h): (usize, &mut [Bin])| {
            let col = &self.bins[f];
            for (&r, &(g, hs)) in rows.iter().zip(&gh) {
                let b = &mut h[col[r as usize] as usize];
                b.g += g;
                b.h += hs;
                b.n += 1;
            }
        };
        if parallel {
            parts.into_par_iter().for_each(fill);
        } else {
            parts.into_iter().for_each(fill);
        }
        hist
    }

    /// A zeroed histogram buffer.
    fn buffer(&mut self) -> Vec<Bin> {
        match self.pool.pop() {
            Some(mut b) => {
                b.fill(Bin::default());
                b
            }
            None => vec![Bin::default(); self.total],
        }
    }

    fn score(&self, s: &Bin) -> f64 {
        s.g * s.g / (s.h + self.params.lambda_l2)
    }

    /// Best split of one feature in a leaf, or `None` when no threshold passes the
    /// constraints with a positive gain.
    ///
    /// Two scans, as LightGBM makes them: NaN to the left, accumulating the right side from
    /// the top bin down; and (with NaNs in the leaf) NaN to the right, accumulating the left
    /// side from bin 0. The scan direction decides which side the estimated row count is
    /// summed on, so it is part of reproducing LightGBM's trees.
    fn feature_best(&self, f: usize, hist: &[Bin], sum: &Bin) -> Option<Split> {
        let p = self.params;
        let m = &self.mappers[f];
        if !m.usable {
            return None;
        }
        let h = &hist[self.offsets[f]..self.offsets[f + 1]];
        let nb = m.n_bins();
        let nan = h[nb];
        let ctx = ScanCtx {
            sum: *sum,
            parent: self.score(sum),
            lambda: p.lambda_l2,
            min_n: p.min_data_in_leaf.max(1) as i64,
            total_n: sum.n as i64,
            min_h: p.min_sum_hessian_in_leaf,
            min_gain: p.min_gain_to_split,
            // Row counts for min_data_in_leaf: exact, or LightGBM's estimate from the
            // hessian share, each bin counting (h_bin * n_leaf / H_leaf + 0.5) as int rows.
            // Estimates can run below zero (see `implied_first`), hence i64.
            fac: if p.min_data_by_hessian && sum.h > 0.0 { sum.n as f64 / sum.h } else { -1.0 },
        };
        let mut best: Option<Split> = None;
        let mut right = Bin::default();
        let mut right_n = 0i64;
        for t in (0..nb - 1).rev() {
            right.add(&h[t + 1]);
            right_n += ctx.est(&h[t + 1]);
            if right_n < ctx.min_n || right.h < ctx.min_h {
                continue;
            }
            if ctx.total_n - right_n < ctx.min_n {
                break;
            }
            let left = ctx.sum.minus(&right);
            ctx.consider(f, left, right, t, true, &mut best);
        }
        if nan.n > 0 {
            let mut left = Bin::default();
            let mut left_n = 0i64;
            let mut start = 0;
            if m.implied_first {
                // bin 0 as LightGBM sees it: the leaf minus every other bin
                let mut rest = Bin::default();
                let mut rest_n = 0i64;
                for b in &h[1..=nb] {
                    rest.add(b);
                    rest_n += ctx.est(b);
                }
                left = ctx.sum.minus(&rest);
                left_n = ctx.total_n - rest_n;
                start = 1;
                if left_n >= ctx.min_n && left.h >= ctx.min_h && ctx.total_n - left_n >= ctx.min_n {
                    ctx.consider(f, left, rest, 0, false, &mut best);
                }
            }
            for (t, b) in h.iter().enumerate().take(nb).skip(start) {
                left.add(b);
                left_n += ctx.est(b);
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
        if leaf.len < 2 * p.min_data_in_leaf.max(1) {
            return;
        }
        if p.max_depth.is_some_and(|d| leaf.depth >= d) {
            return;
        }
        let nf = self.mappers.len();
        let one = |f: usize| {
            if leaf.alive[f] {
                self.feature_best(f, &leaf.hist, &leaf.sum)
            } else {
                None
            }
        };
        let cands: Vec<Option<Split>> = if nf * 64 >= PAR_CELLS {
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

    /// Grows one tree on the gradients; adds each row's leaf value to `scores` (stride
    /// `stride`, offset `out`) and returns the tree.
    pub fn grow(&mut self, grad: &[f64], hess: &[f64], scores: &mut [f64], stride: usize, out: usize) -> Tree {
        let n = self.perm.len();
        for (i, p) in self.perm.iter_mut().enumerate() {
            *p = i as u32;
        }
        let mut sum = Bin::default();
        for i in 0..n {
            sum.add(&Bin {
                g: grad[i],
                h: hess[i],
                n: 1,
            });
        }
        let buf = self.buffer();
        let hist = self.build_hist(&self.perm, grad, hess, buf);
        let mut nodes = vec![Node::leaf(self.leaf_value(&sum), n as f32)];
        let mut root = Leaf {
            start: 0,
            len: n,
            sum,
            depth: 0,
            node: 0,
            hist,
            best: None,
            alive: self.mappers.iter().map(|m| m.usable).collect(),
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
            let s = leaves[li].best.take().unwrap_or_else(|| unreachable!());
            let (start, len, depth, node) = (leaves[li].start, leaves[li].len, leaves[li].depth, leaves[li].node);

            // stable partition of the leaf's rows
            let m = &self.mappers[s.feature];
            let nan_bin = m.nan_bin() as u8;
            let col = &self.bins[s.feature];
            let goes_left = |r: u32| {
                let b = col[r as usize];
                if b == nan_bin {
                    s.default_left
                } else {
                    b as usize <= s.bin
                }
            };
            let seg = &mut self.perm[start..start + len];
            let mut nl = 0;
            let mut nr = 0;
            for i in 0..len {
                let r = seg[i];
                if goes_left(r) {
                    seg[nl] = r;
                    nl += 1;
                } else {
                    self.scratch[nr] = r;
                    nr += 1;
                }
            }
            seg[nl..].copy_from_slice(&self.scratch[..nr]);
            debug_assert_eq!(nl as u32, s.left.n);

            let threshold = if s.bin + 1 >= m.n_bins() {
                f32::INFINITY
            } else {
                m.cuts[s.bin]
            };
            let has_nan = leaves[li].hist[self.offsets[s.feature] + m.nan_bin()].n > 0;
            let default_left = if has_nan { s.default_left } else { 0.0 <= threshold };
            let (il, ir) = (nodes.len(), nodes.len() + 1);
            nodes.push(Node::leaf(self.leaf_value(&s.left), s.left.n as f32));
            nodes.push(Node::leaf(self.leaf_value(&s.right), s.right.n as f32));
            let nd = &mut nodes[node];
            nd.feature = Some(s.feature as u32);
            nd.threshold = threshold;
            nd.default_left = default_left;
            nd.left = il as u32;
            nd.right = ir as u32;
            nd.gain = s.gain as f32;

            let parent_hist = std::mem::take(&mut leaves[li].hist);
            let left_small = nl <= len - nl;
            let (sm_start, sm_len) = if left_small { (start, nl) } else { (start + nl, len - nl) };
            let buf = self.buffer();
            let small = self.build_hist(&self.perm[sm_start..sm_start + sm_len], grad, hess, buf);
            let mut large = parent_hist;
            for (a, b) in large.iter_mut().zip(&small) {
                *a = a.minus(b);
            }
            let (hl, hr) = if left_small { (small, large) } else { (large, small) };
            let mut left = Leaf {
                start,
                len: nl,
                sum: s.left,
                depth: depth + 1,
                node: il,
                hist: hl,
                best: None,
                alive: leaves[li].alive.clone(),
            };
            let mut right = Leaf {
                start: start + nl,
                len: len - nl,
                sum: s.right,
                depth: depth + 1,
                node: ir,
                hist: hr,
                best: None,
                alive: leaves[li].alive.clone(),
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
        Tree { nodes }
    }
}
