//! One regression tree as a flat node array (root at 0), stored exactly as it is serialized.

/// A node. Leaves have `feature == None`; `value` is the (shrunken) Newton output the node
/// would give as a leaf, which is what path contributions are made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Node {
    pub feature: Option<u32>,
    /// Go left when `x[feature] <= threshold`.
    pub threshold: f32,
    /// Where NaN goes.
    pub default_left: bool,
    pub left: u32,
    pub right: u32,
    pub value: f32,
    /// Training rows that reached the node.
    pub count: f32,
    /// Loss reduction of the split (0 for leaves).
    pub gain: f32,
}

impl Node {
    pub fn leaf(value: f32, count: f32) -> Self {
        Node {
            feature: None,
            threshold: 0.0,
            default_left: false,
            left: 0,
            right: 0,
            value,
            count,
            gain: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    pub nodes: Vec<Node>,
}

impl Tree {
    #[inline]
    fn next(&self, n: &Node, f: u32, x: &[f32]) -> usize {
        let v = x.get(f as usize).copied().unwrap_or(f32::NAN);
        let left = if v.is_nan() {
            n.default_left
        } else {
            v <= n.threshold
        };
        (if left { n.left } else { n.right }) as usize
    }

    /// Leaf value for one row. Node links were validated when the tree was built or loaded.
    #[inline]
    pub fn predict(&self, x: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            match n.feature {
                None => return n.value,
                Some(f) => i = self.next(n, f, x),
            }
        }
    }

    /// Saabas path attribution: each split on the row's path credits its feature with the
    /// change of node value; the root value is the bias. Adds into `out[feature]` and
    /// returns the root value, so that bias + sum(out) equals [`Tree::predict`].
    pub fn saabas(&self, x: &[f32], out: &mut [f64]) -> f64 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            match n.feature {
                None => return self.nodes[0].value as f64,
                Some(f) => {
                    let j = self.next(n, f, x);
                    if let Some(o) = out.get_mut(f as usize) {
                        *o += self.nodes[j].value as f64 - n.value as f64;
                    }
                    i = j;
                }
            }
        }
    }

    /// Checks links, values and shape: children come after their parent, every node has
    /// at most one parent (a tree, not a graph whose paths multiply), and no node is more
    /// than `max_depth` splits below the root.
    /// `depth` is a buffer the trees of one model share.
    pub fn validate_with(
        &self,
        n_features: usize,
        max_depth: usize,
        depth: &mut Vec<Option<usize>>,
    ) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("empty tree".into());
        }
        // depth[i]: None until a parent links to node i.
        depth.clear();
        depth.resize(self.nodes.len(), None);
        depth[0] = Some(0);
        for (i, n) in self.nodes.iter().enumerate() {
            if !(n.count.is_finite() && n.count > 0.0 && n.value.is_finite()) {
                return Err(format!(
                    "node {i}: count {} / value {} invalid",
                    n.count, n.value
                ));
            }
            if let Some(f) = n.feature {
                if f as usize >= n_features {
                    return Err(format!("node {i}: feature {f} out of range"));
                }
                for c in [n.left, n.right] {
                    if c as usize <= i || c as usize >= self.nodes.len() {
                        return Err(format!("node {i}: child {c} out of range"));
                    }
                }
                if n.left == n.right {
                    return Err(format!("node {i}: both children are node {}", n.left));
                }
                // Children come after parents, so depth[i] is final when i is visited.
                if let Some(d) = depth[i] {
                    for c in [n.left, n.right] {
                        let slot = &mut depth[c as usize];
                        if slot.is_some() {
                            return Err(format!("node {c} has two parents"));
                        }
                        if d + 1 > max_depth {
                            return Err(format!(
                                "deeper than the cap of {max_depth} (max_tree_depth)"
                            ));
                        }
                        *slot = Some(d + 1);
                    }
                }
            }
        }
        Ok(())
    }
}

/// One feature on the current root-to-node path of TreeSHAP: the fraction of "zero"
/// (feature unknown: cover-weighted) paths that flow through, whether the row itself
/// follows it ("one" is 0 or 1 when explaining a single row), and the permutation weight.
#[derive(Debug, Clone, Copy)]
struct PathElem {
    feature: i64,
    zero: f64,
    one: bool,
    w: f64,
}

fn extend(path: &mut Vec<PathElem>, zero: f64, one: bool, feature: i64) {
    let l = path.len();
    path.push(PathElem {
        feature,
        zero,
        one,
        w: if l == 0 { 1.0 } else { 0.0 },
    });
    let inv = 1.0 / (l + 1) as f64;
    if one {
        for i in (0..l).rev() {
            let w = path[i].w;
            path[i + 1].w += w * (i + 1) as f64 * inv;
            path[i].w = zero * w * (l - i) as f64 * inv;
        }
    } else {
        for i in (0..l).rev() {
            path[i].w *= zero * (l - i) as f64 * inv;
        }
    }
}

/// Removes element `i`, undoing its [`extend`].
fn unwind(path: &mut Vec<PathElem>, i: usize) {
    let l = path.len() - 1;
    let (one, zero) = (path[i].one, path[i].zero);
    let lp = (l + 1) as f64;
    if one {
        let mut n = path[l].w;
        for j in (0..l).rev() {
            let t = path[j].w;
            path[j].w = n * lp / (j + 1) as f64;
            n = t - path[j].w * zero * (l - j) as f64 / lp;
        }
    } else {
        for j in (0..l).rev() {
            path[j].w *= lp / (zero * (l - j) as f64);
        }
    }
    // The weights stay where they are; only the features move up.
    for j in i..l {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
    path.pop();
}

/// Buffers reused across the nodes and trees of one explanation: one path per depth, and
/// the per-leaf factors. Allocating per node made the allocator the hot spot; per tree it
/// still cost a one-file scan about 10,000 allocations for 600 trees.
pub(crate) struct Scratch {
    /// One tree's sums per feature, zero between trees.
    tree_sums: Vec<f64>,
    stack: Vec<Vec<PathElem>>,
    /// `(l + 1) / (j + 1)` and `(l - j) / (l + 1)` for the current leaf's path length.
    up: Vec<f64>,
    down: Vec<f64>,
    /// The elements the row follows: their `zero`, output slot, and running sums.
    hot_zero: Vec<f64>,
    hot_feature: Vec<i64>,
    hot_n: Vec<f64>,
    hot_total: Vec<f64>,
}

impl Scratch {
    pub fn new(n_features: usize) -> Self {
        Scratch {
            tree_sums: vec![0.0; n_features],
            stack: Vec::new(),
            up: Vec::new(),
            down: Vec::new(),
            hot_zero: Vec::new(),
            hot_feature: Vec::new(),
            hot_n: Vec::new(),
            hot_total: Vec::new(),
        }
    }

    /// Adds the leaf's contributions. Each feature's share is the unwound sum times
    /// (one - zero) times value. The unwound sum of an element the row does not follow is S / zero with S
    /// the same for all of them, so they all get -S * value; the others each need one pass
    /// over the path, done here for all of them at once so the inner loop vectorizes.
    fn leaf(&mut self, path: &[PathElem], value: f64, out: &mut [f64]) {
        let l = path.len() - 1;
        if l == 0 {
            return;
        }
        let lp = (l + 1) as f64;
        let inv_lp = 1.0 / lp;
        self.up.clear();
        self.down.clear();
        for j in 0..l {
            self.up.push(lp / (j + 1) as f64);
            self.down.push((l - j) as f64 * inv_lp);
        }
        self.hot_zero.clear();
        self.hot_feature.clear();
        let mut any_cold = false;
        for e in &path[1..] {
            if e.one {
                self.hot_zero.push(e.zero);
                self.hot_feature.push(e.feature);
            } else {
                any_cold = true;
            }
        }
        if any_cold {
            let s: f64 = (0..l).map(|j| path[j].w / self.down[j]).sum();
            let c = -s * value;
            for e in &path[1..] {
                if !e.one {
                    if let Some(o) = out.get_mut(e.feature as usize) {
                        *o += c;
                    }
                }
            }
        }
        let h = self.hot_zero.len();
        if h == 0 {
            return;
        }
        self.hot_n.clear();
        self.hot_n.resize(h, path[l].w);
        self.hot_total.clear();
        self.hot_total.resize(h, 0.0);
        let (zs, ns, ts) = (
            &self.hot_zero[..h],
            &mut self.hot_n[..h],
            &mut self.hot_total[..h],
        );
        for j in (0..l).rev() {
            let (a, d, w) = (self.up[j], self.down[j], path[j].w);
            for k in 0..h {
                let t = ns[k] * a;
                ts[k] += t;
                ns[k] = w - t * zs[k] * d;
            }
        }
        for k in 0..h {
            if let Some(o) = out.get_mut(self.hot_feature[k] as usize) {
                *o += ts[k] * (1.0 - zs[k]) * value;
            }
        }
    }
}

impl Tree {
    /// Cover-weighted mean output: what the tree predicts when no feature is known.
    pub fn expected_value(&self) -> f64 {
        let root = self.nodes[0].count as f64;
        if root <= 0.0 {
            return self.nodes[0].value as f64;
        }
        self.nodes
            .iter()
            .filter(|n| n.feature.is_none())
            .map(|n| n.value as f64 * n.count as f64 / root)
            .sum()
    }

    /// Exact TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2) with training-row counts as
    /// cover: gives `emit(feature, value)` this tree's Shapley value of each feature it
    /// splits on (summed over its leaves; zeros left out); with [`Tree::expected_value`]
    /// they sum to [`Tree::predict`]. `scratch` holds buffers the trees of one explanation
    /// share. A tree's values are summed on their own before they are added to a total, so
    /// that trees explained on several threads add up to the same bits.
    pub fn shap_sums(&self, x: &[f32], scratch: &mut Scratch, emit: &mut dyn FnMut(u32, f64)) {
        // One path buffer per depth, reused: cloning the path at every node made the
        // allocator the hot spot of explaining a verdict. The root's parent path, at
        // depth 0, is empty and never written.
        if scratch.stack.is_empty() {
            scratch.stack.push(Vec::new());
        }
        let mut sums = std::mem::take(&mut scratch.tree_sums);
        self.shap_rec(0, 0, x, &mut sums, scratch, 1.0, true, -1);
        // Every feature with a value is split on somewhere; taking it leaves zeros behind.
        // A zero adds nothing to a total that starts at +0 (which never becomes -0).
        for n in &self.nodes {
            let Some(f) = n.feature else { continue };
            if let Some(s) = sums.get_mut(f as usize) {
                let v = std::mem::take(s);
                if v != 0.0 {
                    emit(f, v);
                }
            }
        }
        scratch.tree_sums = sums;
    }

    /// The path at node `j` lives in `stack[depth + 1]`, a copy of its parent's in
    /// `stack[depth]` extended by the split that led here.
    #[allow(clippy::too_many_arguments)]
    fn shap_rec(
        &self,
        j: usize,
        depth: usize,
        x: &[f32],
        out: &mut [f64],
        scratch: &mut Scratch,
        zero: f64,
        one: bool,
        feature: i64,
    ) {
        if scratch.stack.len() < depth + 2 {
            scratch.stack.resize_with(depth + 2, Vec::new);
        }
        let mut stack = std::mem::take(&mut scratch.stack);
        let (parents, rest) = stack.split_at_mut(depth + 1);
        let path = &mut rest[0];
        path.clear();
        path.extend_from_slice(&parents[depth]);
        extend(path, zero, one, feature);
        let n = &self.nodes[j];
        match n.feature {
            None => {
                scratch.leaf(path, n.value as f64, out);
                scratch.stack = stack;
            }
            Some(f) => {
                let hot = self.next(n, f, x);
                let cold = if hot == n.left as usize {
                    n.right as usize
                } else {
                    n.left as usize
                };
                let (mut iz, mut io) = (1.0, true);
                if let Some(k) = path.iter().skip(1).position(|e| e.feature == f as i64) {
                    let k = k + 1;
                    iz = path[k].zero;
                    io = path[k].one;
                    unwind(path, k);
                }
                let cover = n.count as f64;
                let frac = |c: usize| {
                    if cover > 0.0 {
                        self.nodes[c].count as f64 / cover
                    } else {
                        0.5
                    }
                };
                let (zh, zc) = (iz * frac(hot), iz * frac(cold));
                scratch.stack = stack;
                self.shap_rec(hot, depth + 1, x, out, scratch, zh, io, f as i64);
                self.shap_rec(cold, depth + 1, x, out, scratch, zc, false, f as i64);
            }
        }
    }
}
