//! [`GpuNet`]: the network's weights on the device, with inference, gradients and training.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use mallard_rnn::{
    BatchLayout, Cell, Head, Loss, Net, NetConfig, Optimizer, Output, RnnError, Tensor,
};

use crate::kernels::{Ctx, Recorder, K};
use crate::GpuError;
use mallard_gpu::{Arg, Buf, MAX_GROUPS};

/// Marks "no row" in index arrays read by the kernels.
const NONE: u32 = u32::MAX;
/// Rows per workgroup in the step kernels (`RB` in the WGSL).
const RB: usize = 4;
/// Rows per submission in `predict` (bounds the index buffers, not correctness).
const PREDICT_BLOCK: usize = 4096;

/// Gradients from [`GpuNet::loss_grad`], named and laid out like [`Net::tensors`].
#[derive(Clone, Debug)]
pub struct GpuGrads {
    tensors: Vec<Tensor>,
}

impl GpuGrads {
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    pub fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }

    /// Euclidean norm over all gradients.
    pub fn global_norm(&self) -> f32 {
        self.tensors
            .iter()
            .flat_map(|t| t.2.iter())
            .map(|&x| (x as f64) * (x as f64))
            .sum::<f64>()
            .sqrt() as f32
    }
}

/// Where each tensor lives in the flat parameter (and gradient) buffer.
struct ParamLayout {
    /// (name, shape, offset) in `Net::tensors` order.
    specs: Vec<(String, Vec<usize>, usize)>,
    emb: usize,
    w: Vec<usize>,
    u: Vec<usize>,
    b: Vec<usize>,
    dw: usize,
    db: usize,
    total: usize,
}

impl ParamLayout {
    /// `tensors` come from `Net::tensors`: embedding, (kernel, recurrent kernel, bias) per
    /// direction, dense kernel, dense bias.
    fn new(tensors: &[Tensor], dirs: usize) -> Result<ParamLayout, GpuError> {
        if tensors.len() != 3 + 3 * dirs {
            return Err(GpuError::Unsupported(format!(
                "expected {} tensors, the network has {}",
                3 + 3 * dirs,
                tensors.len()
            )));
        }
        let mut specs = Vec::new();
        let mut off = 0;
        for (name, shape, data) in tensors {
            specs.push((name.clone(), shape.clone(), off));
            off += data.len();
        }
        let at = |i: usize| specs[i].2;
        Ok(ParamLayout {
            emb: at(0),
            w: (0..dirs).map(|d| at(1 + 3 * d)).collect(),
            u: (0..dirs).map(|d| at(2 + 3 * d)).collect(),
            b: (0..dirs).map(|d| at(3 + 3 * d)).collect(),
            dw: at(1 + 3 * dirs),
            db: at(2 + 3 * dirs),
            total: off,
            specs,
        })
    }

    fn split(&self, flat: &[f32]) -> Vec<Tensor> {
        self.specs
            .iter()
            .map(|(name, shape, off)| {
                let n: usize = shape.iter().product();
                (name.clone(), shape.clone(), flat[*off..*off + n].to_vec())
            })
            .collect()
    }
}

/// CSR lists of packed positions per vocabulary entry: (offsets [V + 1], positions).
fn csr(idx: &[u32], vocab: usize) -> (Vec<u32>, Vec<u32>) {
    let mut off = vec![0u32; vocab + 1];
    for &t in idx {
        off[t as usize + 1] += 1;
    }
    for v in 0..vocab {
        off[v + 1] += off[v];
    }
    let mut fill = off.clone();
    let mut pos = vec![0u32; idx.len()];
    for (k, &t) in idx.iter().enumerate() {
        pos[fill[t as usize] as usize] = k as u32;
        fill[t as usize] += 1;
    }
    (off, pos)
}

/// Grow-only scratch buffers by name, so a training epoch allocates only on its first batches.
#[derive(Default)]
struct Workspace {
    bufs: HashMap<String, Buf>,
}

impl Workspace {
    fn get(&mut self, ctx: &Ctx, name: &str, bytes: usize) -> Buf {
        let bytes = bytes as u64;
        if let Some(b) = self.bufs.get(name) {
            if b.size >= bytes {
                return b.clone();
            }
        }
        // Headroom so slowly growing batches do not reallocate every time.
        let b = ctx.buffer(bytes + bytes / 4, name);
        self.bufs.insert(name.to_string(), b.clone());
        b
    }
}

/// Called by [`GpuNet::run_epoch`] with (minibatches done, their rows' weighted losses).
pub(crate) type Progress<'a> = dyn FnMut(usize, &[f32]) -> Result<(), GpuError> + 'a;

/// Buffers of one forward pass kept for the backward pass.
struct Forward {
    lay: BatchLayout,
    hs: Vec<Buf>,
    aux: Vec<Buf>,
    acts: Vec<Buf>,
    pool: Vec<Buf>,
    idx: Vec<Vec<u32>>,
    rowinfo: Buf,
    feat: Buf,
    logits: Buf,
}

struct OptState {
    opt: Optimizer,
    t: u64,
    m: Buf,
    v: Buf,
}

/// A [`Net`]'s weights on the GPU, with batched inference, gradients and training steps that
/// match the CPU network's results.
pub struct GpuNet {
    ctx: Ctx,
    cfg: NetConfig,
    lay: ParamLayout,
    params: Buf,
    grads: Buf,
    ws: Workspace,
    opt: Option<OptState>,
    /// Whether the input tables in the workspace match the current weights (inference reuses
    /// them; training rebuilds them every minibatch).
    tables_fresh: bool,
}

impl std::fmt::Debug for GpuNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuNet")
            .field("cfg", &self.cfg)
            .field("adapter", &self.ctx.info.name)
            .finish_non_exhaustive()
    }
}

fn kind_of(cfg: &NetConfig) -> u32 {
    match cfg.cell {
        Cell::Gru => 1,
        Cell::Lstm | Cell::BiLstm => 0,
    }
}

fn head_of(cfg: &NetConfig) -> u32 {
    match cfg.head {
        Head::Last => 0,
        Head::Mean => 1,
        Head::Max => 2,
    }
}

fn dirs_of(cfg: &NetConfig) -> usize {
    if cfg.cell == Cell::BiLstm {
        2
    } else {
        1
    }
}

fn gates_of(cfg: &NetConfig) -> usize {
    match cfg.cell {
        Cell::Gru => 3 * cfg.hidden,
        Cell::Lstm | Cell::BiLstm => 4 * cfg.hidden,
    }
}

/// The index buffers the shaders read, built from the layout the CPU kernel uses too.
trait ShaderLayout {
    fn n0(&self) -> usize;
    /// Token per packed position for direction `d` (1 = reversed rows).
    fn tokens(&self, batch: &[&[u32]], d: usize) -> Vec<u32>;
    /// [row of the final state, length] per sorted row; `ring` for inference, where step t's
    /// states live in block `t % 2` of an [2, n0, H] buffer instead of at packed offsets.
    fn rowinfo(&self, ring: bool) -> Vec<u32>;
    /// Packed row of each token's previous hidden state (NONE at step 0).
    fn prevrows(&self) -> Vec<u32>;
}

impl ShaderLayout for BatchLayout {
    fn n0(&self) -> usize {
        self.rows.len()
    }

    fn tokens(&self, batch: &[&[u32]], d: usize) -> Vec<u32> {
        let mut idx = Vec::with_capacity(self.ntok);
        for (t, &(_, n)) in self.steps.iter().enumerate() {
            for r in 0..n {
                let seq = batch[self.rows[r]];
                let len = self.lens[r];
                idx.push(if d == 1 { seq[len - 1 - t] } else { seq[t] });
            }
        }
        idx
    }

    fn rowinfo(&self, ring: bool) -> Vec<u32> {
        let n0 = self.n0();
        let mut v = Vec::with_capacity(2 * n0);
        for (r, &len) in self.lens.iter().enumerate() {
            let last = match len {
                0 => NONE,
                _ if ring => (((len - 1) % 2) * n0 + r) as u32,
                _ => (self.steps[len - 1].0 + r) as u32,
            };
            v.push(last);
            v.push(len as u32);
        }
        v
    }

    fn prevrows(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(self.ntok);
        for (t, &(_, n)) in self.steps.iter().enumerate() {
            for r in 0..n {
                v.push(if t == 0 {
                    NONE
                } else {
                    (self.steps[t - 1].0 + r) as u32
                });
            }
        }
        v
    }
}

pub(crate) fn check_tokens(vocab: usize, batch: &[&[u32]]) -> Result<(), GpuError> {
    Ok(mallard_rnn::check_tokens(vocab, batch)?)
}

fn gemm_args(
    (m, n, k): (usize, usize, usize),
    flags: u32,
    (a_off, rsa, csa): (usize, usize, usize),
    (b_off, rsb, csb): (usize, usize, usize),
    (c_off, ldc): (usize, usize),
    bias_off: usize,
) -> Vec<Arg> {
    vec![
        m.into(),
        n.into(),
        k.into(),
        flags.into(),
        a_off.into(),
        rsa.into(),
        csa.into(),
        b_off.into(),
        rsb.into(),
        csb.into(),
        c_off.into(),
        ldc.into(),
        bias_off.into(),
        1.0f32.into(),
    ]
}

/// Workgroups of the GEMM kernel (64x64 tiles of C).
fn gemm_groups(m: usize, n: usize) -> (u32, u32) {
    (n.div_ceil(64) as u32, m.div_ceil(64) as u32)
}

const G_GATHER: u32 = 1;
const G_BIAS: u32 = 2;
const G_ACC: u32 = 4;

impl GpuNet {
    /// Upload `net`'s weights to the first high-performance adapter wgpu finds.
    pub fn from_net(net: &Net) -> Result<GpuNet, GpuError> {
        let ctx = crate::kernels::open()?;
        Self::with_ctx(ctx, net)
    }

    fn with_ctx(ctx: Ctx, net: &Net) -> Result<GpuNet, GpuError> {
        let cfg = net.config().clone();
        let tensors = net.tensors();
        let lay = ParamLayout::new(&tensors, dirs_of(&cfg))?;
        let flat: Vec<f32> = tensors.iter().flat_map(|t| t.2.iter().copied()).collect();
        let max_bind = ctx.device.limits().max_storage_buffer_binding_size as usize;
        let table = cfg.vocab * gates_of(&cfg) * 4;
        if flat.len() * 4 > max_bind || table > max_bind || flat.len() > u32::MAX as usize / 2 {
            return Err(GpuError::Unsupported(format!(
                "{} parameters / a {}-row input table exceed the adapter's {} byte storage bindings",
                flat.len(),
                cfg.vocab,
                max_bind
            )));
        }
        if cfg.vocab.div_ceil(64) > MAX_GROUPS as usize {
            return Err(GpuError::Unsupported(format!(
                "vocabulary of {} rows (at most {})",
                cfg.vocab,
                MAX_GROUPS as usize * 64
            )));
        }
        let params = ctx.buffer((flat.len() * 4) as u64, "params");
        ctx.upload(&params, &flat);
        let grads = ctx.buffer((flat.len() * 4) as u64, "grads");
        Ok(GpuNet {
            ctx,
            cfg,
            lay,
            params,
            grads,
            ws: Workspace::default(),
            opt: None,
            tables_fresh: false,
        })
    }

    /// Name and backend of the adapter in use, e.g. "NVIDIA H100 (Vulkan)".
    pub fn adapter(&self) -> String {
        self.ctx.adapter()
    }

    /// True on a CPU (software) adapter such as lavapipe: timings there are not GPU figures.
    pub fn is_software(&self) -> bool {
        self.ctx.is_software()
    }

    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Current weights, named like [`Net::tensors`].
    pub fn tensors(&self) -> Result<Vec<Tensor>, GpuError> {
        let flat = self.ctx.read_f32(&self.params, self.lay.total)?;
        Ok(self.lay.split(&flat))
    }

    /// The current weights as a CPU network.
    pub fn to_net(&self) -> Result<Net, GpuError> {
        Ok(Net::from_tensors(self.cfg.clone(), &self.tensors()?)?)
    }

    /// Replace the weights (e.g. after training on the CPU); resets optimizer state.
    pub fn load(&mut self, net: &Net) -> Result<(), GpuError> {
        if net.config() != &self.cfg {
            return Err(GpuError::Unsupported(
                "load: the network's configuration differs".into(),
            ));
        }
        let flat: Vec<f32> = net
            .tensors()
            .iter()
            .flat_map(|t| t.2.iter().copied())
            .collect();
        self.ctx.upload(&self.params, &flat);
        self.opt = None;
        self.tables_fresh = false;
        Ok(())
    }

    /// Reject batches whose packed sizes would overflow 32-bit indices, the grid or the
    /// adapter's binding size.
    fn check_sizes(&self, lay: &BatchLayout, save: bool) -> Result<(), GpuError> {
        let g = gates_of(&self.cfg);
        let per_tok = if save { 2 * g } else { 1 };
        let max_bind = self.ctx.device.limits().max_storage_buffer_binding_size as usize;
        let big = lay.ntok.saturating_mul(per_tok).saturating_mul(4);
        if lay.n0().div_ceil(RB) > MAX_GROUPS as usize || big > max_bind || big > u32::MAX as usize
        {
            return Err(GpuError::Unsupported(format!(
                "batch of {} rows / {} tokens is too large for one pass; split it",
                lay.n0(),
                lay.ntok
            )));
        }
        Ok(())
    }

    /// Record the forward pass up to the logits ([n0, n_out], sorted-row order).
    fn record_forward(
        &mut self,
        rec: &mut Recorder,
        batch: &[&[u32]],
        lay: BatchLayout,
        save: bool,
    ) -> Forward {
        let cfg = self.cfg.clone();
        let (hd, g, e, v) = (cfg.hidden, gates_of(&cfg), cfg.embed, cfg.vocab);
        let dirs = dirs_of(&cfg);
        let hout = dirs * hd;
        let k = cfg.n_out();
        let n0 = lay.n0();
        let ctx = &self.ctx;
        let ws = &mut self.ws;
        let rowinfo = ws.get(ctx, "rowinfo", 8 * n0);
        ctx.upload(&rowinfo, &lay.rowinfo(!save));
        let feat = ws.get(ctx, "feat", 4 * n0 * hout);
        let logits = ws.get(ctx, "logits", 4 * n0 * k);
        let mut out = Forward {
            lay,
            hs: vec![],
            aux: vec![],
            acts: vec![],
            pool: vec![],
            idx: vec![],
            rowinfo: rowinfo.clone(),
            feat: feat.clone(),
            logits: logits.clone(),
        };
        for d in 0..dirs {
            let lay = &out.lay;
            let table = ws.get(ctx, &format!("table{d}"), 4 * v * g);
            if save || !self.tables_fresh {
                rec.dispatch(
                    K::Gemm,
                    &gemm_args(
                        (v, g, e),
                        G_BIAS,
                        (self.lay.emb, e, 1),
                        (self.lay.w[d], g, 1),
                        (0, g),
                        self.lay.b[d],
                    ),
                    &[
                        &self.params,
                        &self.params,
                        &table,
                        &ctx.dummy_r,
                        &self.params,
                    ],
                    gemm_groups(v, g),
                );
            }
            let idx = lay.tokens(batch, d);
            let idx_buf = ws.get(ctx, &format!("idx{d}"), 4 * idx.len());
            ctx.upload(&idx_buf, &idx);
            let slots = if save { lay.ntok } else { 2 * n0 };
            let hs = ws.get(ctx, &format!("hs{d}"), 4 * slots * hd);
            let aux = ws.get(ctx, &format!("aux{d}"), 4 * slots * hd);
            let acts = if save {
                ws.get(ctx, &format!("acts{d}"), 4 * lay.ntok * g)
            } else {
                ctx.dummy_w[0].clone()
            };
            let pool = if cfg.head == Head::Last {
                ctx.dummy_w[1].clone()
            } else {
                ws.get(ctx, &format!("pool{d}"), 8 * n0 * hd)
            };
            for (t, &(off, n)) in lay.steps.iter().enumerate() {
                let (cur, prev) = if save {
                    (off, if t > 0 { lay.steps[t - 1].0 } else { 0 })
                } else {
                    ((t % 2) * n0, ((t + 1) % 2) * n0)
                };
                let args: Vec<Arg> = vec![
                    n.into(),
                    hd.into(),
                    g.into(),
                    kind_of(&cfg).into(),
                    head_of(&cfg).into(),
                    u32::from(save).into(),
                    t.into(),
                    u32::from(t > 0).into(),
                    cur.into(),
                    prev.into(),
                    off.into(),
                    (self.lay.b[d] + g).into(),
                    self.lay.u[d].into(),
                    n0.into(),
                ];
                rec.dispatch(
                    K::StepFwd,
                    &args,
                    &[&table, &self.params, &idx_buf, &hs, &aux, &acts, &pool],
                    (hd.div_ceil(64) as u32, n.div_ceil(RB) as u32),
                );
            }
            rec.dispatch_1d(
                K::Feat,
                &[
                    n0.into(),
                    hd.into(),
                    hout.into(),
                    (d * hd).into(),
                    head_of(&cfg).into(),
                ],
                &[&hs, &pool, &rowinfo, &feat],
                n0 * hd,
            );
            out.hs.push(hs);
            out.aux.push(aux);
            out.acts.push(acts);
            out.pool.push(pool);
            out.idx.push(idx);
        }
        rec.dispatch(
            K::Gemm,
            &gemm_args(
                (n0, k, hout),
                G_BIAS,
                (0, hout, 1),
                (self.lay.dw, k, 1),
                (0, k),
                self.lay.db,
            ),
            &[
                &feat,
                &self.params,
                &logits,
                &self.ctx.dummy_r,
                &self.params,
            ],
            gemm_groups(n0, k),
        );
        out
    }

    /// Probabilities, row-major [n, n_out], in input order.
    pub fn predict(&mut self, batch: &[&[u32]]) -> Result<Vec<f32>, GpuError> {
        let k = self.cfg.n_out();
        let mut out = self.logits(batch)?;
        let mut p = vec![0.0f32; k];
        for row in out.chunks_exact_mut(k) {
            probs_row(self.cfg.output, row, &mut p);
            row.copy_from_slice(&p);
        }
        Ok(out)
    }

    /// Logits, row-major [n, n_out], in input order.
    pub(crate) fn logits(&mut self, batch: &[&[u32]]) -> Result<Vec<f32>, GpuError> {
        check_tokens(self.cfg.vocab, batch)?;
        let k = self.cfg.n_out();
        let mut out = vec![0.0f32; batch.len() * k];
        // Longest first, so each block's rows have similar lengths (less idle tail).
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| batch[b].len().cmp(&batch[a].len()).then(a.cmp(&b)));
        for block in order.chunks(PREDICT_BLOCK) {
            let lay = BatchLayout::sorted(batch, block);
            self.check_sizes(&lay, false)?;
            let n0 = lay.n0();
            let mut rec = self.ctx.recorder();
            let fwd = self.record_forward(&mut rec, batch, lay, false);
            rec.submit(&self.ctx)?;
            self.tables_fresh = true;
            let z = self.ctx.read_f32(&fwd.logits, n0 * k)?;
            for (r, &gi) in fwd.lay.rows.iter().enumerate() {
                out[gi * k..(gi + 1) * k].copy_from_slice(&z[r * k..(r + 1) * k]);
            }
        }
        Ok(out)
    }

    fn check_batch(
        &self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
    ) -> Result<(), GpuError> {
        Ok(mallard_rnn::check_batch(
            &self.cfg, batch, targets, weights,
        )?)
    }

    /// Record forward, loss and backward for `rows` of `batch`: gradients land in
    /// `self.grads`, weighted per-row losses at `rowloss[loss_base..]`. `inv_n` scales the
    /// gradients (1 / rows in the minibatch, as Keras averages).
    #[allow(clippy::too_many_arguments)]
    fn record_grad(
        &mut self,
        rec: &mut Recorder,
        batch: &[&[u32]],
        rows: &[usize],
        targets: &[f32],
        weights: Option<&[f32]>,
        loss: Loss,
        rowloss: &Buf,
        loss_base: usize,
    ) -> Result<(), GpuError> {
        let lay = BatchLayout::sorted(batch, rows);
        self.check_sizes(&lay, true)?;
        let cfg = self.cfg.clone();
        let (hd, g, e, v) = (cfg.hidden, gates_of(&cfg), cfg.embed, cfg.vocab);
        let dirs = dirs_of(&cfg);
        let hout = dirs * hd;
        let k = cfg.n_out();
        let n0 = lay.n0();
        let ntok = lay.ntok;
        let fwd = self.record_forward(rec, batch, lay, true);
        let lay = &fwd.lay;
        let ctx = &self.ctx;
        let ws = &mut self.ws;
        let p = &self.lay;

        // Loss and dLoss/dlogits, rows in sorted order.
        let mut y = Vec::with_capacity(n0 * k);
        let mut w = Vec::with_capacity(n0);
        for &gi in &lay.rows {
            y.extend_from_slice(&targets[gi * k..(gi + 1) * k]);
            w.push(weights.map_or(1.0, |w| w[gi]));
        }
        let ybuf = ws.get(ctx, "targets", 4 * y.len());
        ctx.upload(&ybuf, &y);
        let wbuf = ws.get(ctx, "weights", 4 * w.len());
        ctx.upload(&wbuf, &w);
        let dz = ws.get(ctx, "dz", 4 * n0 * k);
        rec.dispatch_1d(
            K::Loss,
            &[
                n0.into(),
                k.into(),
                u32::from(matches!(cfg.output, Output::Softmax(_))).into(),
                u32::from(loss == Loss::CrossEntropy).into(),
                u32::from(weights.is_some()).into(),
                loss_base.into(),
                (1.0 / n0 as f32).into(),
            ],
            &[&fwd.logits, &ybuf, &wbuf, &dz, rowloss],
            n0,
        );

        // Dense layer.
        rec.dispatch(
            K::Gemm,
            &gemm_args((hout, k, n0), 0, (0, 1, hout), (0, k, 1), (p.dw, k), 0),
            &[&fwd.feat, &dz, &self.grads, &ctx.dummy_r, &ctx.dummy_r],
            gemm_groups(hout, k),
        );
        rec.dispatch_1d(
            K::ColSum,
            &[n0.into(), k.into(), k.into(), 0u32.into(), p.db.into()],
            &[&dz, &self.grads],
            k,
        );
        let dfeat = ws.get(ctx, "dfeat", 4 * n0 * hout);
        rec.dispatch(
            K::Gemm,
            &gemm_args((n0, hout, k), 0, (0, k, 1), (p.dw, 1, k), (0, hout), 0),
            &[&dz, &self.params, &dfeat, &ctx.dummy_r, &ctx.dummy_r],
            gemm_groups(n0, hout),
        );

        let prev = lay.prevrows();
        let prevbuf = ws.get(ctx, "prevrow", 4 * prev.len());
        ctx.upload(&prevbuf, &prev);
        let gru = cfg.cell == Cell::Gru;
        let dr_off = if gru { ntok * g } else { 0 };
        let nsteps = lay.steps.len();
        for d in 0..dirs {
            let dfin = ws.get(ctx, &format!("dfin{d}"), 4 * n0 * hd);
            rec.dispatch_1d(
                K::HeadBack,
                &[
                    n0.into(),
                    hd.into(),
                    hout.into(),
                    (d * hd).into(),
                    head_of(&cfg).into(),
                ],
                &[&dfeat, &fwd.rowinfo, &dfin],
                n0 * hd,
            );
            let ut = ws.get(ctx, &format!("ut{d}"), 4 * hd * g);
            rec.dispatch_1d(
                K::Transpose,
                &[hd.into(), g.into(), p.u[d].into()],
                &[&self.params, &ut],
                hd * g,
            );
            let carry = ws.get(ctx, &format!("carry{d}"), 4 * n0 * hd);
            rec.clear(&carry);
            let dxr = ws.get(
                ctx,
                &format!("dxr{d}"),
                4 * ntok * g * if gru { 2 } else { 1 },
            );
            let pool_r = if cfg.head == Head::Max {
                fwd.pool[d].clone()
            } else {
                ctx.dummy_r.clone()
            };
            for t in (0..nsteps).rev() {
                let (off, n) = lay.steps[t];
                let (off_next, n_next) = lay.steps.get(t + 1).copied().unwrap_or((0, 0));
                let off_prev = if t > 0 { lay.steps[t - 1].0 } else { 0 };
                let args: Vec<Arg> = vec![
                    n.into(),
                    n_next.into(),
                    hd.into(),
                    g.into(),
                    kind_of(&cfg).into(),
                    head_of(&cfg).into(),
                    t.into(),
                    u32::from(t > 0).into(),
                    off.into(),
                    off_next.into(),
                    off_prev.into(),
                    dr_off.into(),
                    n0.into(),
                ];
                rec.dispatch(
                    K::StepBwd,
                    &args,
                    &[
                        &ut,
                        &fwd.acts[d],
                        &fwd.hs[d],
                        &fwd.aux[d],
                        &dxr,
                        &carry,
                        &dfin,
                        &pool_r,
                    ],
                    (hd.div_ceil(64) as u32, n.div_ceil(RB) as u32),
                );
            }
            // dT (table gradient) -> dW, dEmb, input bias.
            let (coff, ctok) = csr(&fwd.idx[d], v);
            let coff_b = ws.get(ctx, &format!("csr_off{d}"), 4 * coff.len());
            ctx.upload(&coff_b, &coff);
            let ctok_b = ws.get(ctx, &format!("csr_tok{d}"), 4 * ctok.len());
            ctx.upload(&ctok_b, &ctok);
            let dt = ws.get(ctx, &format!("dtable{d}"), 4 * v * g);
            rec.dispatch_1d(
                K::DTable,
                &[v.into(), g.into()],
                &[&coff_b, &ctok_b, &dxr, &dt],
                v * g,
            );
            rec.dispatch(
                K::Gemm,
                &gemm_args((e, g, v), 0, (p.emb, 1, e), (0, g, 1), (p.w[d], g), 0),
                &[&self.params, &dt, &self.grads, &ctx.dummy_r, &ctx.dummy_r],
                gemm_groups(e, g),
            );
            rec.dispatch(
                K::Gemm,
                &gemm_args(
                    (v, e, g),
                    if d > 0 { G_ACC } else { 0 },
                    (0, g, 1),
                    (p.w[d], 1, g),
                    (p.emb, e),
                    0,
                ),
                &[&dt, &self.params, &self.grads, &ctx.dummy_r, &ctx.dummy_r],
                gemm_groups(v, e),
            );
            rec.dispatch_1d(
                K::ColSum,
                &[v.into(), g.into(), g.into(), 0u32.into(), p.b[d].into()],
                &[&dt, &self.grads],
                g,
            );
            if gru {
                rec.dispatch_1d(
                    K::ColSum,
                    &[
                        ntok.into(),
                        g.into(),
                        g.into(),
                        dr_off.into(),
                        (p.b[d] + g).into(),
                    ],
                    &[&dxr, &self.grads],
                    g,
                );
            }
            // dU = sum over tokens of h_prev^T dgates (h_prev gathered by packed row).
            rec.dispatch(
                K::Gemm,
                &gemm_args(
                    (hd, g, ntok),
                    G_GATHER,
                    (0, 1, hd),
                    (dr_off, g, 1),
                    (p.u[d], g),
                    0,
                ),
                &[&fwd.hs[d], &dxr, &self.grads, &prevbuf, &ctx.dummy_r],
                gemm_groups(hd, g),
            );
        }
        Ok(())
    }

    /// Mean loss over the batch (row `weights` multiply each row's loss; the sum is divided
    /// by the row count, as Keras does) and its gradients, like [`Net::loss_grad`].
    pub fn loss_grad(
        &mut self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
        loss: Loss,
    ) -> Result<(f32, GpuGrads), GpuError> {
        self.check_batch(batch, targets, weights)?;
        let n = batch.len();
        if n == 0 {
            let zeros: Vec<f32> = vec![0.0; self.lay.total];
            return Ok((
                0.0,
                GpuGrads {
                    tensors: self.lay.split(&zeros),
                },
            ));
        }
        let rows: Vec<usize> = (0..n).collect();
        let rowloss = self.ws.get(&self.ctx, "rowloss", 4 * n);
        let mut rec = self.ctx.recorder();
        self.record_grad(&mut rec, batch, &rows, targets, weights, loss, &rowloss, 0)?;
        rec.submit(&self.ctx)?;
        self.tables_fresh = true;
        let l = self.ctx.read_f32(&rowloss, n)?;
        let flat = self.ctx.read_f32(&self.grads, self.lay.total)?;
        let mean = l.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
        Ok((
            mean as f32,
            GpuGrads {
                tensors: self.lay.split(&flat),
            },
        ))
    }

    /// One pass over `order` (row indices into `batch`, in training order) in minibatches of
    /// `batch_size`: forward, backward and an optimizer step per minibatch, all on the GPU,
    /// with the host waiting only once at the end. Returns the mean (weighted) training loss
    /// over the epoch, as `mallard_rnn::train` reports it. Optimizer state persists across
    /// calls while the same optimizer is given.
    #[allow(clippy::too_many_arguments)]
    pub fn train_epoch(
        &mut self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
        order: &[usize],
        batch_size: usize,
        loss: Loss,
        opt: Optimizer,
    ) -> Result<f32, GpuError> {
        self.check_batch(batch, targets, weights)?;
        if batch_size == 0 {
            return Err(RnnError::Config("batch_size must be positive".into()).into());
        }
        if let Some(&bad) = order.iter().find(|&&i| i >= batch.len()) {
            return Err(RnnError::Config(format!(
                "order names row {bad} of a {}-row batch",
                batch.len()
            ))
            .into());
        }
        if order.is_empty() {
            return Ok(0.0);
        }
        let l = self.run_epoch(
            batch,
            targets,
            weights,
            order,
            batch_size,
            loss,
            opt,
            None,
            None,
            &mut |_, _| Ok(()),
        )?;
        let mean = (l.iter().map(|&x| x as f64).sum::<f64>() / order.len() as f64) as f32;
        if !mean.is_finite() {
            return Err(RnnError::NonFinite(mean).into());
        }
        Ok(mean)
    }

    /// The body of [`GpuNet::train_epoch`], inputs already checked and `order` not empty:
    /// returns the weighted loss of every row, minibatch after minibatch (within a minibatch
    /// the rows are in length order, not `order`'s). With `clip`, each minibatch's gradients
    /// are scaled to at most that global norm before the step. `progress(batches_done,
    /// row_losses_so_far)` runs after the last minibatch and, with `every`, after any
    /// minibatch once that long has passed since the previous call (each call waits for the
    /// device); an error from it ends the epoch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_epoch(
        &mut self,
        batch: &[&[u32]],
        targets: &[f32],
        weights: Option<&[f32]>,
        order: &[usize],
        batch_size: usize,
        loss: Loss,
        opt: Optimizer,
        clip: Option<f32>,
        every: Option<Duration>,
        progress: &mut Progress<'_>,
    ) -> Result<Vec<f32>, GpuError> {
        if self.opt.as_ref().is_none_or(|s| s.opt != opt) {
            let bytes = (self.lay.total * 4) as u64;
            self.opt = Some(OptState {
                opt,
                t: 0,
                // New buffers start zeroed.
                m: self.ctx.buffer(bytes, "adam_m"),
                v: self.ctx.buffer(bytes, "opt_v"),
            });
        }
        let rowloss = self.ws.get(&self.ctx, "epoch_loss", 4 * order.len());
        self.tables_fresh = false;
        let nb = order.len().div_ceil(batch_size);
        let mut last = Instant::now();
        for (bi, rows) in order.chunks(batch_size).enumerate() {
            let mut rec = self.ctx.recorder();
            self.record_grad(
                &mut rec,
                batch,
                rows,
                targets,
                weights,
                loss,
                &rowloss,
                bi * batch_size,
            )?;
            self.record_step(&mut rec, clip)?;
            rec.submit(&self.ctx)?;
            if bi + 1 == nb {
                let l = self.ctx.read_f32(&rowloss, order.len())?;
                progress(nb, &l)?;
                return Ok(l);
            }
            if every.is_some_and(|d| last.elapsed() >= d) {
                let done = ((bi + 1) * batch_size).min(order.len());
                let l = self.ctx.read_f32(&rowloss, done)?;
                progress(bi + 1, &l)?;
                last = Instant::now();
            }
        }
        // Not reached: `order` is not empty, so the last minibatch returned above.
        Ok(Vec::new())
    }

    /// Copy the current weights into `dst` (allocated on first use), on the device.
    pub(crate) fn snapshot(&self, dst: &mut Option<Buf>) {
        let bytes = (self.lay.total * 4) as u64;
        let b = dst.get_or_insert_with(|| self.ctx.buffer(bytes, "snapshot"));
        self.ctx.copy(&self.params, b, bytes);
    }

    /// Make the weights those of a [`GpuNet::snapshot`] (optimizer state is kept).
    pub(crate) fn restore(&mut self, src: &Buf) {
        self.ctx
            .copy(src, &self.params, (self.lay.total * 4) as u64);
        self.tables_fresh = false;
    }

    /// Optimizer update of every weight from `self.grads`, after scaling them to at most a
    /// global norm of `clip`.
    fn record_step(&mut self, rec: &mut Recorder, clip: Option<f32>) -> Result<(), GpuError> {
        let n = self.lay.total;
        let scale = match clip {
            Some(c) => {
                // Stage 1: partial sums of squares (at most 1024 workgroups of 256 threads);
                // stage 2: one workgroup adds them and writes the clip factor.
                let groups = n.div_ceil(1024).clamp(1, 1024);
                let chunk = n.div_ceil(groups);
                let part = self.ws.get(&self.ctx, "clip_part", 4 * groups);
                let scale = self.ws.get(&self.ctx, "clip_scale", 8);
                rec.dispatch(
                    K::SumSq,
                    &[n.into(), chunk.into()],
                    &[&self.grads, &part],
                    (groups as u32, 1),
                );
                rec.dispatch(
                    K::ClipScale,
                    &[groups.into(), c.into()],
                    &[&part, &scale],
                    (1, 1),
                );
                Some(scale)
            }
            None => None,
        };
        let Some(st) = self.opt.as_mut() else {
            return Err(GpuError::Device("optimizer state missing".into()));
        };
        st.t += 1;
        let args: Vec<Arg> = match st.opt {
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let alpha = st.opt.adam_step_size(st.t).unwrap_or(lr);
                vec![
                    n.into(),
                    1u32.into(),
                    alpha.into(),
                    beta1.into(),
                    beta2.into(),
                    eps.into(),
                    u32::from(clip.is_some()).into(),
                ]
            }
            Optimizer::RmsProp { lr, rho, eps } => vec![
                n.into(),
                0u32.into(),
                lr.into(),
                0.0f32.into(),
                rho.into(),
                eps.into(),
                u32::from(clip.is_some()).into(),
            ],
        };
        let scale = scale.unwrap_or_else(|| self.ctx.dummy_r.clone());
        rec.dispatch_1d(
            K::Optim,
            &args,
            &[&self.params, &self.grads, &st.m, &st.v, &scale],
            n,
        );
        Ok(())
    }
}

fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// Probabilities of one row from its logits (host side: n_out values per row).
pub(crate) fn probs_row(output: Output, z: &[f32], out: &mut [f32]) {
    match output {
        Output::Sigmoid => out[0] = sigmoid(z[0]),
        Output::Softmax(_) => {
            let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut s = 0.0;
            for (o, &v) in out.iter_mut().zip(z) {
                *o = (v - m).exp();
                s += *o;
            }
            for o in out.iter_mut() {
                *o /= s;
            }
        }
    }
}
