//! One regression tree as a flat node array (root at 0), stored exactly as it is serialized.

/// A node, laid out as a model file stores it (`gbdt.nodes`: eight little-endian f32 per
/// node), so that a model compiled into the binary is read where it lies instead of being
/// decoded into a copy (most of a one-file scan's model load). Indices are whole numbers
/// below 2^24, exact in an f32; a leaf's feature is -1. Read through the methods: the
/// checks on load ([`Tree::checked`]) make them valid.
#[derive(Debug, Clone, Copy, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
pub(crate) struct Node {
    feature: f32,
    /// Go left when `x[feature] <= threshold`.
    pub threshold: f32,
    /// Where NaN goes: left when not 0.
    default_left: f32,
    left: f32,
    right: f32,
    /// What the node would give as a leaf (the shrunken Newton output): what path
    /// contributions are made of.
    pub value: f32,
    /// Training rows that reached the node.
    pub count: f32,
    /// Loss reduction of the split (0 for leaves).
    pub gain: f32,
}

impl Node {
    pub fn leaf(value: f32, count: f32) -> Self {
        Node {
            feature: -1.0,
            threshold: 0.0,
            default_left: 0.0,
            left: 0.0,
            right: 0.0,
            value,
            count,
            gain: 0.0,
        }
    }

    /// Makes a leaf a split on `feature` into the nodes `left` and `right` (below 2^24).
    pub fn split(&mut self, feature: u32, threshold: f32, default_left: bool, children: [u32; 2]) {
        self.feature = feature as f32;
        self.threshold = threshold;
        self.default_left = default_left as u8 as f32;
        self.left = children[0] as f32;
        self.right = children[1] as f32;
    }

    /// The feature split on; `None` for a leaf.
    #[inline]
    pub fn feature(&self) -> Option<u32> {
        if self.feature < 0.0 {
            None
        } else {
            Some(self.feature as u32)
        }
    }

    #[inline]
    pub fn default_left(&self) -> bool {
        self.default_left != 0.0
    }

    #[inline]
    pub fn left(&self) -> u32 {
        self.left as u32
    }

    #[inline]
    pub fn right(&self) -> u32 {
        self.right as u32
    }

    /// The node's eight values as a model file stores them (indices and flags written as
    /// whole numbers, whatever spelling of them was read).
    pub fn to_row(self) -> [f32; 8] {
        [
            self.feature().map_or(-1.0, |f| f as f32),
            self.threshold,
            self.default_left() as u8 as f32,
            self.left() as f32,
            self.right() as f32,
            self.value,
            self.count,
            self.gain,
        ]
    }

    /// A node from a model file's eight values (checked by [`Tree::checked`]).
    pub fn from_row(r: [f32; 8]) -> Self {
        Node {
            feature: r[0],
            threshold: r[1],
            default_left: r[2],
            left: r[3],
            right: r[4],
            value: r[5],
            count: r[6],
            gain: r[7],
        }
    }
}

/// A tree's nodes: its own, or a model compiled into the binary's, read in place.
#[derive(Debug, Clone)]
pub(crate) enum Nodes {
    Owned(Vec<Node>),
    Static(&'static [Node]),
}

impl std::ops::Deref for Nodes {
    type Target = [Node];
    #[inline]
    fn deref(&self) -> &[Node] {
        match self {
            Nodes::Owned(v) => v,
            Nodes::Static(s) => s,
        }
    }
}

impl PartialEq for Nodes {
    fn eq(&self, other: &Nodes) -> bool {
        **self == **other
    }
}

/// A whole number below 2^24 (exact in an f32) as an index. A round trip through u32
/// tests for a whole number without `fract`, a libm call per value.
pub(crate) fn index(v: f32, what: &str) -> Result<u32, String> {
    if (0.0..16_777_216.0).contains(&v) && (v as u32) as f32 == v {
        Ok(v as u32)
    } else {
        Err(format!("{what} {v} is not a valid index"))
    }
}

/// Trees walked side by side by [`Tree::leaves`].
pub(crate) const GROUP: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tree {
    pub nodes: Nodes,
    /// Splits on the longest root-to-leaf path, and [`Tree::expected_value`]: what each
    /// TreeSHAP explanation needs, kept so that it does not walk every node for them. Found
    /// by the checks on load, or for a trusted tree ([`Tree::trusted`]) when first needed.
    pub(crate) shape: std::sync::OnceLock<(u32, f64)>,
}

impl Tree {
    /// A tree of `nodes` (children after their parents, as grown).
    pub fn new(nodes: Vec<Node>) -> Tree {
        let shape = measure(&nodes);
        Tree {
            nodes: Nodes::Owned(nodes),
            shape: std::sync::OnceLock::from(shape),
        }
    }

    /// A tree of nodes compiled into the program, taken without the checks of
    /// [`Tree::checked`]: for the built-in models only, which the test suite checks in full
    /// (a one-file scan waited for 45,056 nodes to be checked). Its shape is measured when
    /// an explanation first needs it. Nothing here is unsafe: a corrupt tree gives wrong
    /// numbers or a panic, which a scan reports as that file's error.
    pub fn trusted(nodes: Nodes) -> Tree {
        Tree {
            nodes,
            shape: std::sync::OnceLock::new(),
        }
    }

    fn shape(&self) -> (u32, f64) {
        *self.shape.get_or_init(|| measure(&self.nodes))
    }

    /// Whether the row goes left at split `n` on feature `f`.
    #[inline]
    fn goes_left(n: &Node, f: u32, x: &[f32]) -> bool {
        let v = x.get(f as usize).copied().unwrap_or(f32::NAN);
        if v.is_nan() {
            n.default_left()
        } else {
            v <= n.threshold
        }
    }

    /// The child the row goes to (one index converted, not two).
    #[inline]
    fn next(&self, n: &Node, f: u32, x: &[f32]) -> usize {
        (if Self::goes_left(n, f, x) {
            n.left
        } else {
            n.right
        }) as usize
    }

    /// The leaf values of `trees` (at most [`GROUP`]) for one row, in tree order, into
    /// `out`. The trees are walked side by side, one level per round: on a model larger than
    /// the cache each step of a walk is a likely miss, and independent walks let the
    /// processor wait for several at once. Same leaves as [`Tree::predict`] on each.
    pub fn leaves(trees: &[Tree], x: &[f32], out: &mut [f32; GROUP]) {
        let mut at = [0usize; GROUP];
        loop {
            let mut moved = false;
            for (t, i) in trees.iter().zip(at.iter_mut()) {
                let n = &t.nodes[*i];
                if let Some(f) = n.feature() {
                    *i = t.next(n, f, x);
                    moved = true;
                }
            }
            if !moved {
                break;
            }
        }
        for ((t, &i), o) in trees.iter().zip(&at).zip(out.iter_mut()) {
            *o = t.nodes[i].value;
        }
    }

    /// Leaf value for one row. Node links were validated when the tree was built or loaded.
    #[inline]
    pub fn predict(&self, x: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            match n.feature() {
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
            match n.feature() {
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

    /// A tree of `nodes` read from a model file, checked: indices, links, values and shape
    /// (children come after their parent, every node has at most one parent, so a tree and
    /// not a graph whose paths multiply, and no node is more than `max_depth` splits below
    /// the root). The same pass finds what [`Tree::new`] finds. `depth` is a buffer the
    /// trees of one model share.
    ///
    /// Two passes without messages first (what a one-file scan waits for: 45,056 nodes);
    /// only a tree they doubt goes through [`Tree::checked_in_order`], which names the
    /// first fault. Both accept the same trees (tested).
    pub fn checked(
        nodes: Nodes,
        n_features: usize,
        max_depth: usize,
        depth: &mut Vec<u32>,
    ) -> Result<Tree, Unchecked> {
        match shape_of(&nodes, n_features, max_depth, depth) {
            Some((deepest, expected, _)) => Ok(Tree {
                nodes,
                shape: std::sync::OnceLock::from((deepest, expected)),
            }),
            None => Self::checked_in_order(nodes, n_features, max_depth, depth),
        }
    }

    /// [`Tree::checked`] before the model's feature count is known: the tree and the
    /// features its splits need (one more than the highest), or `None` where
    /// [`Tree::checked`] with any feature count could refuse it.
    pub fn checked_ahead(
        nodes: Nodes,
        max_depth: usize,
        depth: &mut Vec<u32>,
    ) -> Option<(Tree, usize)> {
        let (deepest, expected, features) = shape_of(&nodes, usize::MAX, max_depth, depth)?;
        let tree = Tree {
            nodes,
            shape: std::sync::OnceLock::from((deepest, expected)),
        };
        Some((tree, features))
    }

    /// [`Tree::checked`] node by node, each check in turn: the first fault found is the
    /// one reported.
    pub fn checked_in_order(
        nodes: Nodes,
        n_features: usize,
        max_depth: usize,
        depth: &mut Vec<u32>,
    ) -> Result<Tree, Unchecked> {
        let bad = |m: String| Unchecked::Tree(m);
        let len = nodes.len();
        if len == 0 {
            return Err(bad("empty tree".into()));
        }
        let mut root = 0.0f64;
        let (mut deepest, mut expected) = (0u32, 0.0f64);
        // depth[i]: UNLINKED until a parent links to node i.
        const UNLINKED: u32 = u32::MAX;
        depth.clear();
        depth.resize(len, UNLINKED);
        depth[0] = 0;
        for (i, n) in nodes.iter().enumerate() {
            // Every index a whole number, leaves' unused links too.
            let feature = if n.feature == -1.0 {
                None
            } else {
                Some(index(n.feature, "feature").map_err(Unchecked::Node)?)
            };
            let left = index(n.left, "left child").map_err(Unchecked::Node)?;
            let right = index(n.right, "right child").map_err(Unchecked::Node)?;
            if !(n.count.is_finite() && n.count > 0.0 && n.value.is_finite()) {
                return Err(bad(format!(
                    "node {i}: count {} / value {} invalid",
                    n.count, n.value
                )));
            }
            if i == 0 {
                root = n.count as f64;
            }
            let Some(f) = feature else {
                // The same sum, in the same order, as Tree::new's.
                expected += n.value as f64 * n.count as f64 / root;
                continue;
            };
            if f as usize >= n_features {
                return Err(bad(format!("node {i}: feature {f} out of range")));
            }
            for c in [left, right] {
                if c as usize <= i || c as usize >= len {
                    return Err(bad(format!("node {i}: child {c} out of range")));
                }
            }
            if left == right {
                return Err(bad(format!("node {i}: both children are node {left}")));
            }
            // Children come after parents, so depth[i] is final when i is visited.
            let d = depth[i];
            if d != UNLINKED {
                if d as usize >= max_depth {
                    return Err(bad(format!(
                        "deeper than the cap of {max_depth} (max_tree_depth)"
                    )));
                }
                deepest = deepest.max(d + 1);
                for c in [left, right] {
                    let slot = &mut depth[c as usize];
                    if *slot != UNLINKED {
                        return Err(bad(format!("node {c} has two parents")));
                    }
                    *slot = d + 1;
                }
            }
        }
        Ok(Tree {
            nodes,
            shape: std::sync::OnceLock::from((deepest, expected)),
        })
    }
}

/// A grown tree's depth and expected value (the cover-weighted mean of its leaves, summed in
/// node order as the checks sum it): children come after their parents.
fn measure(nodes: &[Node]) -> (u32, f64) {
    let Some(root) = nodes.first() else {
        return (0, 0.0);
    };
    if root.count > 0.0 {
        measure_depth(nodes)
    } else {
        // No training rows at the root (not a tree the checks accept): its own value.
        (measure_depth(nodes).0, root.value as f64)
    }
}

/// [`measure`] in one pass: depths on the stack for a tree of up to 256 nodes (a grown
/// tree's usual size; the buffer is allocated only beyond), and the leaves' sum.
fn measure_depth(nodes: &[Node]) -> (u32, f64) {
    let mut small = [0u32; 256];
    let mut big = Vec::new();
    let depth: &mut [u32] = if nodes.len() <= small.len() {
        &mut small[..nodes.len()]
    } else {
        big.resize(nodes.len(), 0);
        &mut big
    };
    let root = nodes.first().map_or(1.0, |n| n.count as f64);
    let (mut max_depth, mut expected) = (0, 0.0);
    for (i, n) in nodes.iter().enumerate() {
        if n.feature().is_none() {
            expected += n.value as f64 * n.count as f64 / root;
            continue;
        }
        let d = depth[i] + 1;
        max_depth = max_depth.max(d);
        for c in [n.left(), n.right()] {
            if let Some(slot) = depth.get_mut(c as usize) {
                *slot = d;
            }
        }
    }
    (max_depth, expected)
}

/// Whether `v` is a whole number in [0, 2^24), without a branch or a conversion: below
/// 2^23, adding 2^23 rounds to a whole number (the spacing of f32 there is 1) and taking it
/// away again gives `v` back only if `v` was one; from 2^23 on every f32 is whole.
#[inline]
#[allow(clippy::manual_range_contains)] // `&`, not `contains`' `&&`: no branch
fn whole(v: f32) -> bool {
    const HALF: f32 = 8_388_608.0;
    (v >= 0.0) & (v < 2.0 * HALF) & ((v >= HALF) | ((v + HALF) - HALF == v))
}

/// The fast passes of [`Tree::checked`]: the tree's depth, expected value and the features
/// its splits need, or `None` at the first doubt. Accepts exactly what [`Tree::checked_in_order`] accepts and finds
/// the same values, bit for bit (the leaves' sum in the same order).
fn shape_of(
    nodes: &[Node],
    n_features: usize,
    max_depth: usize,
    depth: &mut Vec<u32>,
) -> Option<(u32, f64, usize)> {
    let len = nodes.len();
    let root = nodes.first()?.count as f64;
    // Every value, folded without branches so that the loop vectorizes.
    let values = nodes.iter().fold(true, |ok, n| {
        ok & ((n.feature == -1.0) | whole(n.feature))
            & whole(n.left)
            & whole(n.right)
            & n.count.is_finite()
            & (n.count > 0.0)
            & n.value.is_finite()
    });
    if !values {
        return None;
    }
    const UNLINKED: u32 = u32::MAX;
    depth.clear();
    depth.resize(len, UNLINKED);
    depth[0] = 0;
    let (mut deepest, mut expected, mut features) = (0u32, 0.0f64, 0usize);
    for (i, n) in nodes.iter().enumerate() {
        if n.feature == -1.0 {
            expected += n.value as f64 * n.count as f64 / root;
            continue;
        }
        // Whole numbers below 2^24 (the first pass): the conversions are exact.
        let (f, l, r) = (n.feature as usize, n.left as usize, n.right as usize);
        if !((f < n_features) & (l > i) & (r > i) & (l < len) & (r < len) & (l != r)) {
            return None;
        }
        features = features.max(f + 1);
        let d = depth[i];
        if d != UNLINKED {
            if d as usize >= max_depth || depth[l] != UNLINKED || depth[r] != UNLINKED {
                return None;
            }
            deepest = deepest.max(d + 1);
            depth[l] = d + 1;
            depth[r] = d + 1;
        }
    }
    Some((deepest, expected, features))
}

/// Why [`Tree::checked`] refused a tree: a value that is no index, or a tree that is not
/// one.
pub(crate) enum Unchecked {
    Node(String),
    Tree(String),
}

/// Gauss-Legendre quadrature with `m` points on [0, 1]: nodes and weights. Exact for
/// polynomials of degree up to 2m - 1. Roots of the Legendre polynomial P_m by Newton's
/// method from the usual cosine guesses.
fn gauss_legendre(m: usize) -> (Vec<f64>, Vec<f64>) {
    // P_m(x) and P_m'(x) by the three-term recurrence.
    let legendre = |x: f64| {
        let (mut p0, mut p1) = (1.0, x);
        for n in 2..=m {
            let nf = n as f64;
            let p2 = ((2.0 * nf - 1.0) * x * p1 - (nf - 1.0) * p0) / nf;
            p0 = p1;
            p1 = p2;
        }
        (p1, m as f64 * (x * p1 - p0) / (x * x - 1.0))
    };
    let (mut t, mut w) = (Vec::with_capacity(m), Vec::with_capacity(m));
    for k in 0..m {
        let mut x = (std::f64::consts::PI * (k as f64 + 0.75) / (m as f64 + 0.5)).cos();
        for _ in 0..100 {
            let (p, dp) = legendre(x);
            let dx = p / dp;
            x -= dx;
            if dx.abs() <= 1e-16 {
                break;
            }
        }
        let (_, dp) = legendre(x);
        // From [-1, 1] to [0, 1]: half the weight.
        t.push((1.0 + x) / 2.0);
        w.push(1.0 / ((1.0 - x * x) * dp * dp));
    }
    (t, w)
}

/// The feature's factor `zero * (1 - t) + one * t` of a path's polynomial.
#[inline]
fn factor(zero: f64, one: bool, t: f64) -> f64 {
    zero * (1.0 - t) + if one { t } else { 0.0 }
}

/// Buffers reused across the trees of one explanation.
pub(crate) struct Scratch {
    /// One tree's sums per feature, zero between trees.
    tree_sums: Vec<f64>,
    /// Features whose sum the current tree has touched (a feature may appear twice).
    touched: Vec<u32>,
    /// Quadrature rules by number of points, made when first needed.
    rules: Vec<Option<(Vec<f64>, Vec<f64>)>>,
    /// Per depth, `m` values each: the buffers of [`Walk`].
    p: Vec<f64>,
    u: Vec<f64>,
    g: Vec<f64>,
    inv: Vec<f64>,
    /// Per feature, while it is on the current root-to-node path: the product of its
    /// splits' cover fractions ("zero": the share of training rows that flow this way when
    /// the feature is unknown), and whether the row itself follows all of them ("one"),
    /// as [`OFF`], [`ZERO`] or [`ONE`]. Every walk leaves them all [`OFF`].
    zero: Vec<f64>,
    on: Vec<u8>,
}

/// Not on the path; on it with "one" false; on it with "one" true.
const OFF: u8 = 0;
const ZERO: u8 = 1;
const ONE: u8 = 2;

impl Scratch {
    pub fn new(n_features: usize) -> Self {
        Scratch {
            tree_sums: vec![0.0; n_features],
            touched: Vec::new(),
            rules: Vec::new(),
            p: Vec::new(),
            u: Vec::new(),
            g: Vec::new(),
            inv: Vec::new(),
            zero: vec![0.0; n_features],
            on: vec![OFF; n_features],
        }
    }
}

/// What both TreeSHAP walks need of split `n` on feature `f`: the child the row goes to
/// (`hot`) and the other, the shares of the training rows each got, and the feature's state
/// on the path above. A feature split on above: its factor is replaced by the combined one
/// below, and what the earlier split credited to the leaves below here is taken back. A
/// feature the row carries is below n_features (checked on load); one beyond reads as
/// absent and is never recorded.
struct Split {
    hot: usize,
    cold: usize,
    fh: f64,
    fc: f64,
    fi: usize,
    state: u8,
    prev: bool,
    za: f64,
    oa: bool,
    ca: f64,
}

impl Split {
    /// One over the factor of the earlier split on the same feature at point `t` (0 where
    /// that factor is 0).
    #[inline(always)]
    fn inv(&self, t: f64) -> f64 {
        let fa = factor(self.za, self.oa, t);
        if fa != 0.0 {
            1.0 / fa
        } else {
            0.0
        }
    }

    /// A child's factor relative to this node at point `t`, given [`Split::inv`] there.
    #[inline(always)]
    fn child_factor(&self, zc: f64, oc: bool, t: f64, inv: f64) -> f64 {
        let fq = factor(zc, oc, t);
        if self.prev {
            fq * inv
        } else {
            fq
        }
    }
}

/// What both walks keep per feature while it is on the path, and the tree's sums: the
/// buffers of [`Scratch`] one walk borrows.
struct Path<'a> {
    zero: &'a mut [f64],
    on: &'a mut [u8],
    sums: &'a mut [f64],
    touched: &'a mut Vec<u32>,
}

impl Path<'_> {
    /// The [`Split`] of node `n` on feature `f` among `nodes`, for row `x`.
    #[inline(always)]
    fn split(&self, nodes: &[Node], n: &Node, f: u32, x: &[f32]) -> Split {
        let (l, r) = (n.left() as usize, n.right() as usize);
        let (hot, cold) = if Tree::goes_left(n, f, x) {
            (l, r)
        } else {
            (r, l)
        };
        let cover = n.count as f64;
        let count = |c: usize| nodes.get(c).map_or(0.0, |n| n.count as f64);
        let frac = |c: usize| if cover > 0.0 { count(c) / cover } else { 0.5 };
        let (fh, fc) = (frac(hot), frac(cold));
        let fi = f as usize;
        let state = self.on.get(fi).copied().unwrap_or(OFF);
        let prev = state != OFF;
        let (za, oa) = if prev {
            (self.zero.get(fi).copied().unwrap_or(1.0), state == ONE)
        } else {
            (1.0, true)
        };
        let ca = if prev { oa as u8 as f64 - za } else { 0.0 };
        Split {
            hot,
            cold,
            fh,
            fc,
            fi,
            state,
            prev,
            za,
            oa,
            ca,
        }
    }

    /// The split's feature as a child below it sees it (`zc`, `oc`): set while the walk is
    /// below that child.
    #[inline(always)]
    fn enter(&mut self, s: &Split, zc: f64, oc: bool) {
        if let (Some(z), Some(o)) = (self.zero.get_mut(s.fi), self.on.get_mut(s.fi)) {
            *z = zc;
            *o = if oc { ONE } else { ZERO };
        }
    }

    /// The split's feature as it was above the split.
    #[inline(always)]
    fn leave(&mut self, s: &Split) {
        if let (Some(z), Some(o)) = (self.zero.get_mut(s.fi), self.on.get_mut(s.fi)) {
            *z = s.za;
            *o = s.state;
        }
    }

    /// Adds a child's contribution `phi` to feature `f`'s sum for the tree.
    #[inline(always)]
    fn credit(&mut self, f: u32, phi: f64) {
        if let Some(o) = self.sums.get_mut(f as usize) {
            if *o == 0.0 {
                self.touched.push(f);
            }
            *o += phi;
        }
    }
}

/// The value of node `c` if it is a leaf.
#[inline(always)]
fn leaf_value(nodes: &[Node], c: usize) -> Option<f64> {
    match nodes.get(c) {
        Some(n) if n.feature().is_none() => Some(n.value as f64),
        _ => None,
    }
}

/// One tree's Linear TreeSHAP walk (see [`Tree::shap_sums`]). Per depth, `m` values each:
/// `p` the path's polynomial at the quadrature points, `u` the sum over the leaves below of
/// value times the factors below the node, `g` a child's factor relative to its parent,
/// `inv` one over the factor of an earlier split on the node's feature.
struct Walk<'a> {
    tree: &'a Tree,
    x: &'a [f32],
    t: &'a [f64],
    w: &'a [f64],
    m: usize,
    p: &'a mut [f64],
    u: &'a mut [f64],
    g: &'a mut [f64],
    inv: &'a mut [f64],
    path: Path<'a>,
}

impl Walk<'_> {
    /// Node `j` at depth `d`, whose path polynomial is in `p[d]`: leaves in `u[d]` the sum
    /// over the leaves below of value times the factors below `j`, and adds to `sums` the
    /// contributions of the feature split on at `j`. The node's own polynomial times
    /// `u[d]` is the sum of value times path polynomial over those leaves, so a child's
    /// share comes without dividing its factor out again: the only divisions are by the
    /// factor of an earlier split on the same feature, which a split lower down replaces.
    ///
    /// Trees of depth 26 or less take [`FixedWalk`] instead; this walk serves any depth.
    fn node(&mut self, j: usize, d: usize) {
        let m = self.m;
        let n = &self.tree.nodes[j];
        let (lo, mid, hi) = (d * m, (d + 1) * m, (d + 2) * m);
        let Some(f) = n.feature() else {
            self.u[lo..mid].fill(n.value as f64);
            return;
        };
        let s = self.path.split(&self.tree.nodes, n, f, self.x);
        let t = &self.t[..m];
        if s.prev {
            for (inv, &t) in self.inv[lo..mid].iter_mut().zip(t) {
                *inv = s.inv(t);
            }
        }
        self.u[lo..mid].fill(0.0);
        for (c, zc, oc) in [(s.hot, s.za * s.fh, s.oa), (s.cold, s.za * s.fc, false)] {
            // A leaf child's sum below is its value at every point: credited here, without
            // a call that would write the value out only to have it read back at once.
            let leaf = leaf_value(&self.tree.nodes, c);
            {
                let inv = &self.inv[lo..mid];
                let (above, below) = self.p.split_at_mut(mid);
                let (p, pc, gc) = (&above[lo..mid], &mut below[..m], &mut self.g[mid..hi]);
                for q in 0..m {
                    let g = s.child_factor(zc, oc, t[q], inv[q]);
                    gc[q] = g;
                    if leaf.is_none() {
                        pc[q] = p[q] * g;
                    }
                }
            }
            if leaf.is_none() {
                self.path.enter(&s, zc, oc);
                self.node(c, d + 1);
                self.path.leave(&s);
            }
            let cc = oc as u8 as f64 - zc;
            let (at, below) = self.u.split_at_mut(mid);
            let parts = Credit {
                p: &self.p[lo..mid],
                u: &mut at[lo..mid],
                g: &self.g[mid..hi],
                inv: &self.inv[lo..mid],
                w: &self.w[..m],
                prev: s.prev,
                cc,
                ca: s.ca,
            };
            let phi = match leaf {
                Some(v) => parts.add(m, |_| v),
                None => {
                    let uc = &below[..m];
                    parts.add(m, |q| uc[q])
                }
            };
            self.path.credit(f, phi);
        }
    }
}

/// [`Walk`] for a number of quadrature points known when compiling (1 to 13: every tree of
/// depth 26 or less): the per-depth values live in arrays on the stack, passed down and
/// returned, instead of slices of shared buffers, so the loops over the points have no
/// bounds checks and stay in registers. The same operations in the same order as
/// [`Walk::node`], so the same bits (tested).
struct FixedWalk<'a, const M: usize> {
    nodes: &'a [Node],
    x: &'a [f32],
    t: &'a [f64; M],
    w: &'a [f64; M],
    path: Path<'a>,
}

impl<const M: usize> FixedWalk<'_, M> {
    /// Split node `j` whose path polynomial at the points is `p`: returns the sum over the
    /// leaves below of value times the factors below `j`, and adds to `sums` the
    /// contributions of the feature split on at `j` (see [`Walk::node`]).
    fn node(&mut self, j: usize, p: &[f64; M]) -> [f64; M] {
        let Some(n) = self.nodes.get(j) else {
            return [0.0; M];
        };
        let Some(f) = n.feature() else {
            return [n.value as f64; M];
        };
        let s = self.path.split(self.nodes, n, f, self.x);
        let t = self.t;
        let mut inv = [0.0; M];
        if s.prev {
            for q in 0..M {
                inv[q] = s.inv(t[q]);
            }
        }
        let mut u = [0.0; M];
        for (c, zc, oc) in [(s.hot, s.za * s.fh, s.oa), (s.cold, s.za * s.fc, false)] {
            let mut g = [0.0; M];
            for q in 0..M {
                g[q] = s.child_factor(zc, oc, t[q], inv[q]);
            }
            let uc = match leaf_value(self.nodes, c) {
                Some(v) => [v; M],
                None => {
                    let mut pc = [0.0; M];
                    for q in 0..M {
                        pc[q] = p[q] * g[q];
                    }
                    self.path.enter(&s, zc, oc);
                    let uc = self.node(c, &pc);
                    self.path.leave(&s);
                    uc
                }
            };
            let cc = oc as u8 as f64 - zc;
            let mut phi = 0.0;
            for q in 0..M {
                let base = p[q] * uc[q];
                let r = if s.prev {
                    let b = base * inv[q];
                    cc * b - s.ca * b * g[q]
                } else {
                    cc * base
                };
                phi += self.w[q] * r;
            }
            for q in 0..M {
                u[q] += g[q] * uc[q];
            }
            self.path.credit(f, phi);
        }
        u
    }
}

/// What a child adds to its parent (see [`Walk::node`]): `p` the parent's path polynomial,
/// `u` the parent's sum below, `g` the child's factor relative to the parent, `inv` one
/// over an earlier split's factor on the same feature (`prev`), `cc` and `ca` the child's
/// and that earlier split's one minus zero.
struct Credit<'a> {
    p: &'a [f64],
    u: &'a mut [f64],
    g: &'a [f64],
    inv: &'a [f64],
    w: &'a [f64],
    prev: bool,
    cc: f64,
    ca: f64,
}

impl Credit<'_> {
    /// Adds the child's sum below, `uc(q)` at point q, into the parent's and returns the
    /// feature's contribution. Inlined for each kind of `uc`, so a leaf's constant stays in
    /// a register.
    #[inline(always)]
    fn add(self, m: usize, uc: impl Fn(usize) -> f64) -> f64 {
        let (p, u, g, inv, w) = (
            &self.p[..m],
            &mut self.u[..m],
            &self.g[..m],
            &self.inv[..m],
            &self.w[..m],
        );
        let mut phi = 0.0;
        for q in 0..m {
            // The leaves' sum of value times path polynomial without this feature's
            // factor (and, for a repeated feature, without the earlier one's).
            let base = p[q] * uc(q);
            let r = if self.prev {
                let b = base * inv[q];
                self.cc * b - self.ca * b * g[q]
            } else {
                self.cc * base
            };
            phi += w[q] * r;
        }
        for q in 0..m {
            u[q] += g[q] * uc(q);
        }
        phi
    }
}

impl Tree {
    /// Cover-weighted mean output: what the tree predicts when no feature is known.
    pub fn expected_value(&self) -> f64 {
        self.shape().1
    }

    /// Splits on the longest root-to-leaf path.
    pub fn depth(&self) -> u32 {
        self.shape().0
    }

    /// Exact TreeSHAP values with training-row counts as cover (the values of Lundberg,
    /// Erion & Lee 2018, Algorithm 2), computed as Linear TreeSHAP (Yu et al. 2022): gives
    /// `emit(feature, value)` this tree's Shapley value of each feature it splits on
    /// (zeros left out); with [`Tree::expected_value`] they sum to [`Tree::predict`].
    ///
    /// A leaf credits feature i with value * (one_i - zero_i) * the integral over [0, 1]
    /// of the product, over the path's other features j, of zero_j (1 - t) + one_j t
    /// (the Shapley weights |S|! (d - |S| - 1)! / d! are Beta integrals; features off the
    /// path have factor 1 and change nothing). The product is a polynomial of degree
    /// below the tree's depth, so a Gauss-Legendre rule of depth / 2 points integrates it
    /// exactly. Sums over the leaves below a node share the node's factors, so one walk
    /// gives every feature's value: O(nodes * depth / 2) instead of O(leaves * depth^2).
    /// `scratch` holds buffers the trees of one explanation share. A tree's values are
    /// summed on their own before they are added to a total, so that trees explained on
    /// several threads add up to the same bits.
    pub fn shap_sums(&self, x: &[f32], scratch: &mut Scratch, emit: &mut dyn FnMut(u32, f64)) {
        self.shap_sums_by(x, scratch, emit, true);
    }

    /// [`Tree::shap_sums`]; `fixed`: whether a tree of depth 26 or less takes [`FixedWalk`]
    /// (the tests compare both walks).
    pub(crate) fn shap_sums_by(
        &self,
        x: &[f32],
        scratch: &mut Scratch,
        emit: &mut dyn FnMut(u32, f64),
        fixed: bool,
    ) {
        let max_depth = self.depth() as usize;
        if max_depth == 0 {
            return;
        }
        let m = max_depth.div_ceil(2);
        if scratch.rules.len() <= m {
            scratch.rules.resize_with(m + 1, || None);
        }
        let (t, w) = scratch.rules[m].get_or_insert_with(|| gauss_legendre(m));
        // Taken by whichever walk runs.
        let mut path = Some(Path {
            zero: &mut scratch.zero,
            on: &mut scratch.on,
            sums: &mut scratch.tree_sums,
            touched: &mut scratch.touched,
        });
        macro_rules! fixed {
            ($m:literal) => {{
                let points = (
                    <&[f64; $m]>::try_from(&t[..]),
                    <&[f64; $m]>::try_from(&w[..]),
                );
                // The path is taken only by a walk that runs.
                let ready = points.0.is_ok() && points.1.is_ok();
                if let (Ok(t), Ok(w), Some(path)) = (points.0, points.1, path.take_if(|_| ready)) {
                    let mut walk = FixedWalk::<$m> {
                        nodes: &self.nodes,
                        x,
                        t,
                        w,
                        path,
                    };
                    walk.node(0, &[1.0; $m]);
                    true
                } else {
                    false
                }
            }};
        }
        let walked = fixed
            && match m {
                1 => fixed!(1),
                2 => fixed!(2),
                3 => fixed!(3),
                4 => fixed!(4),
                5 => fixed!(5),
                6 => fixed!(6),
                7 => fixed!(7),
                8 => fixed!(8),
                9 => fixed!(9),
                10 => fixed!(10),
                11 => fixed!(11),
                12 => fixed!(12),
                13 => fixed!(13),
                _ => false,
            };
        if let (false, Some(path)) = (walked, path) {
            let levels = (max_depth + 2) * m;
            scratch.p.clear();
            scratch.p.resize(levels, 0.0);
            scratch.p[..m].fill(1.0);
            for b in [&mut scratch.u, &mut scratch.g, &mut scratch.inv] {
                b.clear();
                b.resize(levels, 0.0);
            }
            let mut walk = Walk {
                tree: self,
                x,
                t,
                w,
                m,
                p: &mut scratch.p,
                u: &mut scratch.u,
                g: &mut scratch.g,
                inv: &mut scratch.inv,
                path,
            };
            walk.node(0, 0);
        }
        // Every feature with a value was touched by the walk; taking it leaves zeros behind.
        // A zero adds nothing to a total that starts at +0 (which never becomes -0).
        for f in scratch.touched.drain(..) {
            if let Some(s) = scratch.tree_sums.get_mut(f as usize) {
                let v = std::mem::take(s);
                if v != 0.0 {
                    emit(f, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gauss_legendre;

    /// The rule integrates t^k exactly (1 / (k + 1)) up to degree 2m - 1, for every size a
    /// tree within the depth cap can ask for.
    #[test]
    fn gauss_legendre_integrates_polynomials_exactly() {
        for m in 1..=128 {
            let (t, w) = gauss_legendre(m);
            assert!(t.iter().all(|&t| t > 0.0 && t < 1.0), "m {m}");
            for k in 0..2 * m {
                let got: f64 = t.iter().zip(&w).map(|(t, w)| w * t.powi(k as i32)).sum();
                let want = 1.0 / (k + 1) as f64;
                assert!((got - want).abs() < 1e-13, "m {m} k {k}: {got} vs {want}");
            }
        }
    }
}
