//! Forward and backward passes over packed variable-length batches.
//!
//! Rows are sorted by length (descending) so the rows still running at step `t` are a prefix
//! `0..n_t`; step `t`'s values live in a packed block starting at `off_t = n_0 + .. + n_{t-1}`.
//! Each step costs one GEMM `h[0..n_t] · U` over exactly the live rows. The input projection is
//! a table `E·W + b` (one row per vocabulary entry), so a step gathers rows instead of
//! multiplying, and the backward pass scatters gate gradients into that table's gradient.

use crate::packed::{Add, Packed};
use crate::params::{Head, Kind, NetConfig, Output, Params};
use crate::real::{gemm, rm, tr, Real};
use crate::scratch::Scratch;
use crate::Loss;

/// Rows of a batch sorted by length, longest first, with the live-prefix size of every
/// step: the packed layout both the CPU kernel and the GPU shaders step through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLayout {
    /// Batch row indices, longest first (ties by index).
    pub rows: Vec<usize>,
    pub lens: Vec<usize>,
    /// (packed offset, live rows) per step.
    pub steps: Vec<(usize, usize)>,
    pub ntok: usize,
}

impl BatchLayout {
    /// `rows` of `batch`, sorted here by length, longest first (ties by index).
    pub fn sorted(batch: &[&[u32]], rows: &[usize]) -> BatchLayout {
        let mut rows = rows.to_vec();
        rows.sort_by(|&a, &b| batch[b].len().cmp(&batch[a].len()).then(a.cmp(&b)));
        BatchLayout::new(rows, batch)
    }

    /// `rows` must already be sorted by length, longest first.
    pub fn new(rows: Vec<usize>, batch: &[&[u32]]) -> BatchLayout {
        let lens: Vec<usize> = rows.iter().map(|&r| batch[r].len()).collect();
        let tmax = lens.first().copied().unwrap_or(0);
        let mut steps = Vec::with_capacity(tmax);
        let mut off = 0;
        let mut n = lens.len();
        for t in 0..tmax {
            while n > 0 && lens[n - 1] <= t {
                n -= 1;
            }
            steps.push((off, n));
            off += n;
        }
        BatchLayout {
            rows,
            lens,
            steps,
            ntok: off,
        }
    }
}

/// Sort rows longest first and deal them round-robin into `parts` chunks of similar work.
pub(crate) fn split_rows(batch: &[&[u32]], parts: usize) -> Vec<Vec<usize>> {
    let n = batch.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| batch[b].len().cmp(&batch[a].len()).then(a.cmp(&b)));
    let parts = parts.clamp(1, n.max(1));
    (0..parts)
        .map(|c| order.iter().skip(c).step_by(parts).copied().collect())
        .collect()
}

/// Run `f` on every item (a chunk of rows, a direction), item 0 on the calling thread;
/// results in item order.
pub(crate) fn run_parallel<I, R, F>(items: &[I], f: F) -> Vec<R>
where
    I: Sync,
    R: Send,
    F: Fn(&I) -> R + Sync,
{
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = items[1..].iter().map(|c| s.spawn(move || f(c))).collect();
        let mut out = vec![f(&items[0])];
        for h in handles {
            match h.join() {
                Ok(r) => out.push(r),
                Err(e) => std::panic::resume_unwind(e),
            }
        }
        out
    })
}

/// `f(0), .., f(n - 1)` in order, on threads of their own with `par` (a bidirectional
/// layer's directions are independent until the dense layer).
pub(crate) fn each_dir<R, F>(par: bool, n: usize, f: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize) -> R + Sync,
{
    let dirs: Vec<usize> = (0..n).collect();
    if par {
        run_parallel(&dirs, |&d| f(d))
    } else {
        dirs.into_iter().map(f).collect()
    }
}

/// Saved activations of one direction over one chunk.
pub(crate) struct DirCache<T> {
    /// Activated gates per packed token: LSTM [i, f, g, o]; GRU [z, r, n].
    acts: Vec<T>,
    /// Previous hidden state per packed token.
    hp: Vec<T>,
    /// LSTM: previous cell state; GRU: recurrent candidate term `h·U_h + b'_h`.
    aux: Vec<T>,
    /// LSTM: tanh of the new cell state; GRU: unused.
    aux2: Vec<T>,
    /// Table row used by each packed token.
    idx: Vec<u32>,
    /// Final hidden state per sorted row [n0, H].
    pub h: Vec<T>,
    /// Head::Mean: sum of states; Head::Max: running max [n0, H] (empty for Head::Last).
    pool: Vec<T>,
    /// Head::Max: step of each maximum [n0, H].
    argmax: Vec<u32>,
}

impl<T: Copy + Default> DirCache<T> {
    /// Hands the large saved buffers back for the next batch.
    fn recycle(self, scratch: &Scratch<T>) {
        for v in [self.acts, self.hp, self.aux, self.aux2] {
            scratch.give(v);
        }
    }
}

/// Per-parameter-set precomputation shared by all chunks (and cached by `Net` for inference).
pub(crate) struct Prepared<T> {
    /// Input projection table per direction.
    tables: Vec<Vec<T>>,
    /// U [H, G] per direction.
    u: Vec<Packed<T>>,
    /// U^T [G, H] per direction (backward only).
    ut: Vec<Packed<T>>,
}

pub(crate) fn prepare<T: Real>(cfg: &NetConfig, p: &Params<T>, backward: bool) -> Prepared<T> {
    let (hd, g) = (cfg.hidden, cfg.g());
    let dirs = 0..cfg.dirs();
    Prepared {
        tables: dirs.clone().map(|d| input_table(cfg, p, d)).collect(),
        u: dirs
            .clone()
            .map(|d| Packed::new(rm(&p.dirs[d].u, g), hd, g))
            .collect(),
        ut: if backward {
            dirs.map(|d| Packed::new(tr(&p.dirs[d].u, g), g, hd))
                .collect()
        } else {
            Vec::new()
        },
    }
}

/// Input projection table `E·W + b_in` [V, G] for direction `d`.
pub(crate) fn input_table<T: Real>(cfg: &NetConfig, p: &Params<T>, d: usize) -> Vec<T> {
    let (v, e, g) = (cfg.vocab, cfg.embed, cfg.g());
    let dp = &p.dirs[d];
    let mut t = Vec::with_capacity(v * g);
    for _ in 0..v {
        t.extend_from_slice(&dp.b[..g]);
    }
    gemm(
        v,
        e,
        g,
        T::ONE,
        rm(&p.emb, e),
        rm(&dp.w, g),
        T::ONE,
        &mut t,
        g,
    );
    t
}

#[inline]
fn token_at(seq: &[u32], len: usize, t: usize, reverse: bool) -> usize {
    (if reverse { seq[len - 1 - t] } else { seq[t] }) as usize
}

/// Dispatch: on AVX2/FMA CPUs the whole step loop (gathers, activations, elementwise
/// gate maths) is compiled for AVX2; elsewhere the portable build runs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_dir<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    table: &[T],
    u: &Packed<T>,
    brec: &[T],
    lay: &BatchLayout,
    batch: &[&[u32]],
    reverse: bool,
    save: bool,
    scratch: &Scratch<T>,
) -> DirCache<T> {
    #[cfg(target_arch = "x86_64")]
    if T::packed_kernel() {
        // SAFETY: packed_kernel() is true only when the CPU has AVX2 and FMA.
        return unsafe {
            forward_dir_avx2(
                kind, head, hd, table, u, brec, lay, batch, reverse, save, scratch,
            )
        };
    }
    forward_dir_body(
        kind, head, hd, table, u, brec, lay, batch, reverse, save, scratch,
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_dir_avx2<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    table: &[T],
    u: &Packed<T>,
    brec: &[T],
    lay: &BatchLayout,
    batch: &[&[u32]],
    reverse: bool,
    save: bool,
    scratch: &Scratch<T>,
) -> DirCache<T> {
    forward_dir_body(
        kind, head, hd, table, u, brec, lay, batch, reverse, save, scratch,
    )
}

/// Run one direction. With `save`, every step's values are kept for the backward pass;
/// without, one step's worth of scratch is reused (inference).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_dir_body<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    table: &[T],
    u: &Packed<T>,
    brec: &[T],
    lay: &BatchLayout,
    batch: &[&[u32]],
    reverse: bool,
    save: bool,
    scratch: &Scratch<T>,
) -> DirCache<T> {
    let g = kind.gates() * hd;
    let n0 = lay.rows.len();
    let slots = if save { lay.ntok } else { n0 };
    // Every slot of these is written at its step before anything reads it.
    let mut acts = scratch.take(slots * g);
    let mut hp = scratch.take(slots * hd);
    let mut aux = scratch.take(slots * hd);
    let mut aux2 = if kind == Kind::Lstm {
        scratch.take(slots * hd)
    } else {
        Vec::new()
    };
    let mut rec = if kind == Kind::Gru {
        vec![T::ZERO; n0 * g]
    } else {
        Vec::new()
    };
    let mut idx = Vec::with_capacity(if save { lay.ntok } else { 0 });
    let mut step_idx: Vec<u32> = Vec::with_capacity(n0);
    let mut h = vec![T::ZERO; n0 * hd];
    let mut c = if kind == Kind::Lstm {
        vec![T::ZERO; n0 * hd]
    } else {
        Vec::new()
    };
    let mut pool = if head == Head::Last {
        Vec::new()
    } else {
        vec![T::ZERO; n0 * hd]
    };
    let mut argmax = if head == Head::Max {
        vec![0u32; n0 * hd]
    } else {
        Vec::new()
    };

    for (t, &(off, n)) in lay.steps.iter().enumerate() {
        let base = if save { off } else { 0 };
        let a = &mut acts[base * g..(base + n) * g];
        step_idx.clear();
        step_idx
            .extend((0..n).map(|r| token_at(batch[lay.rows[r]], lay.lens[r], t, reverse) as u32));
        if save {
            idx.extend_from_slice(&step_idx);
        }
        let hpb = &mut hp[base * hd..(base + n) * hd];
        hpb.copy_from_slice(&h[..n * hd]);
        let auxb = &mut aux[base * hd..(base + n) * hd];
        match kind {
            Kind::Lstm => {
                // Gates = h·U + the tokens' rows of the input table, gathered as stored.
                let rows = Add::Rows {
                    table,
                    idx: &step_idx,
                    ld: g,
                };
                u.matmul_add(n, hpb, hd, rows, a, g);
                let tcb = &mut aux2[base * hd..(base + n) * hd];
                for r in 0..n {
                    let s = r * hd..(r + 1) * hd;
                    lstm_cell(
                        &mut a[r * g..(r + 1) * g],
                        &mut c[s.clone()],
                        &mut h[s.clone()],
                        &mut auxb[s.clone()],
                        &mut tcb[s],
                    );
                }
            }
            Kind::Gru => {
                for (r, &tok) in step_idx.iter().enumerate() {
                    let tok = tok as usize;
                    a[r * g..(r + 1) * g].copy_from_slice(&table[tok * g..(tok + 1) * g]);
                }
                let rb = &mut rec[..n * g];
                for r in 0..n {
                    rb[r * g..(r + 1) * g].copy_from_slice(brec);
                }
                u.matmul(n, hpb, hd, true, rb, g);
                for r in 0..n {
                    let s = r * hd..(r + 1) * hd;
                    gru_cell(
                        &mut a[r * g..(r + 1) * g],
                        &rb[r * g..(r + 1) * g],
                        &mut h[s.clone()],
                        &mut auxb[s],
                    );
                }
            }
        }
        // Every non-empty row is live at step 0, so step 0 initialises the running max.
        match head {
            Head::Last => {}
            Head::Mean => {
                for (s, &v) in pool[..n * hd].iter_mut().zip(&h[..n * hd]) {
                    *s += v;
                }
            }
            Head::Max => {
                let am = &mut argmax[..n * hd];
                for (j, (s, &v)) in pool[..n * hd].iter_mut().zip(&h[..n * hd]).enumerate() {
                    if t == 0 || v > *s {
                        *s = v;
                        am[j] = t as u32;
                    }
                }
            }
        }
    }
    DirCache {
        acts,
        hp,
        aux,
        aux2,
        idx,
        h,
        pool,
        argmax,
    }
}

/// One LSTM row: `a` holds pre-activations [i, f, g, o] and is overwritten with activations.
#[inline]
fn lstm_cell<T: Real>(a: &mut [T], c: &mut [T], h: &mut [T], cp: &mut [T], tc: &mut [T]) {
    if T::lstm_cell_simd(a, c, h, cp, tc) {
        return;
    }
    let hd = c.len();
    T::sigmoid_slice(&mut a[..2 * hd]);
    T::tanh_slice(&mut a[2 * hd..3 * hd]);
    T::sigmoid_slice(&mut a[3 * hd..]);
    let (ai, rest) = a.split_at(hd);
    let (af, rest) = rest.split_at(hd);
    let (ag, ao) = rest.split_at(hd);
    for j in 0..hd {
        let cprev = c[j];
        cp[j] = cprev;
        c[j] = af[j] * cprev + ai[j] * ag[j];
    }
    tc.copy_from_slice(c);
    T::tanh_slice(tc);
    for j in 0..hd {
        h[j] = ao[j] * tc[j];
    }
}

/// One GRU row: `a` holds the input projections [x_z, x_r, x_h] (overwritten with [z, r, n]),
/// `rec` the recurrent projections with bias; `h` is updated in place; `hh` saves rec_h.
#[inline]
fn gru_cell<T: Real>(a: &mut [T], rec: &[T], h: &mut [T], hh: &mut [T]) {
    let hd = h.len();
    for j in 0..2 * hd {
        a[j] += rec[j];
    }
    T::sigmoid_slice(&mut a[..2 * hd]);
    hh.copy_from_slice(&rec[2 * hd..]);
    let (zr, an) = a.split_at_mut(2 * hd);
    for j in 0..hd {
        an[j] += zr[hd + j] * hh[j];
    }
    T::tanh_slice(an);
    for j in 0..hd {
        let z = zr[j];
        h[j] = z * h[j] + (T::ONE - z) * an[j];
    }
}

/// Dispatch: on AVX2/FMA CPUs the whole step loop (gathers, activations, elementwise
/// gate maths) is compiled for AVX2; elsewhere the portable build runs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward_dir<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    ut: &Packed<T>,
    lay: &BatchLayout,
    cache: &DirCache<T>,
    dfinal: &[T],
    dtable: &mut [T],
    du: &mut [T],
    dbrec: &mut [T],
    scratch: &Scratch<T>,
) {
    #[cfg(target_arch = "x86_64")]
    if T::packed_kernel() {
        // SAFETY: packed_kernel() is true only when the CPU has AVX2 and FMA.
        return unsafe {
            backward_dir_avx2(
                kind, head, hd, ut, lay, cache, dfinal, dtable, du, dbrec, scratch,
            )
        };
    }
    backward_dir_body(
        kind, head, hd, ut, lay, cache, dfinal, dtable, du, dbrec, scratch,
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_dir_avx2<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    ut: &Packed<T>,
    lay: &BatchLayout,
    cache: &DirCache<T>,
    dfinal: &[T],
    dtable: &mut [T],
    du: &mut [T],
    dbrec: &mut [T],
    scratch: &Scratch<T>,
) {
    backward_dir_body(
        kind, head, hd, ut, lay, cache, dfinal, dtable, du, dbrec, scratch,
    )
}

/// Tokens per block of steps in the backward pass (see there): a block's gate gradients,
/// 160 KB for the published LSTM, stay in the L2 cache. The unit tests' batches are small,
/// so there blocks are a few tokens, for the finite-difference checks to cross them.
const BLOCK_TOKENS: usize = if cfg!(test) { 5 } else { 128 };

/// Gradients of one direction over one chunk, accumulated into `dtable` [V, G], `du` [H, G]
/// and (GRU) `dbrec` [G]. `dfinal` [n0, H] is dLoss/d(final hidden state) per sorted row.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_dir_body<T: Real>(
    kind: Kind,
    head: Head,
    hd: usize,
    ut: &Packed<T>,
    lay: &BatchLayout,
    cache: &DirCache<T>,
    dfinal: &[T],
    dtable: &mut [T],
    du: &mut [T],
    dbrec: &mut [T],
    scratch: &Scratch<T>,
) {
    let g = kind.gates() * hd;
    let n0 = lay.rows.len();
    let mut dh = vec![T::ZERO; n0 * hd];
    let mut dc = if kind == Kind::Lstm {
        vec![T::ZERO; n0 * hd]
    } else {
        Vec::new()
    };
    // Steps are taken in blocks of consecutive steps holding about BLOCK_TOKENS tokens
    // (packed tokens of consecutive steps are contiguous). A block's gate gradients stay in
    // cache from the step that writes them to the dU product and the table's scatter at the
    // block's end, instead of a whole batch's going out to memory and coming back.
    let cap = BLOCK_TOKENS.max(n0);
    // Gate-input gradients per token of the block (LSTM: also the recurrent-side
    // gradients), every slot written at its step before it is read.
    let mut dx = scratch.take(cap * g);
    // GRU only: recurrent-side gradients (differ from dx in the candidate block).
    let mut drec = if kind == Kind::Gru {
        scratch.take(cap * g)
    } else {
        Vec::new()
    };
    let nsteps = lay.steps.len();
    let mut t_end = nsteps;
    while t_end > 0 {
        let mut t_lo = t_end - 1;
        let mut ntok = lay.steps[t_lo].1;
        while t_lo > 0 && ntok + lay.steps[t_lo - 1].1 <= cap {
            t_lo -= 1;
            ntok += lay.steps[t_lo].1;
        }
        let base = lay.steps[t_lo].0;
        for t in (t_lo..t_end).rev() {
            let (off, n) = lay.steps[t];
            let nnext = if t + 1 < nsteps {
                lay.steps[t + 1].1
            } else {
                0
            };
            match head {
                // Rows whose last token is at step t receive the head's gradient here.
                Head::Last => dh[nnext * hd..n * hd].copy_from_slice(&dfinal[nnext * hd..n * hd]),
                // Pooling heads feed every step (`dfinal` is pre-divided by length for Mean).
                Head::Mean => {
                    for (d, &v) in dh[..n * hd].iter_mut().zip(&dfinal[..n * hd]) {
                        *d += v;
                    }
                }
                Head::Max => {
                    let am = &cache.argmax[..n * hd];
                    for (j, (d, &v)) in dh[..n * hd].iter_mut().zip(&dfinal[..n * hd]).enumerate() {
                        if am[j] as usize == t {
                            *d += v;
                        }
                    }
                }
            }
            // This step's rows in the block buffers.
            let lo = off - base;
            match kind {
                Kind::Lstm => {
                    for r in 0..n {
                        let k = off + r;
                        let acts = &cache.acts[k * g..(k + 1) * g];
                        let cp = &cache.aux[k * hd..(k + 1) * hd];
                        let tc = &cache.aux2[k * hd..(k + 1) * hd];
                        let da = &mut dx[(lo + r) * g..(lo + r + 1) * g];
                        let dhr = &dh[r * hd..(r + 1) * hd];
                        let dcr = &mut dc[r * hd..(r + 1) * hd];
                        lstm_cell_back(acts, cp, tc, dhr, dcr, da);
                    }
                    ut.matmul(n, &dx[lo * g..(lo + n) * g], g, false, &mut dh, hd);
                }
                Kind::Gru => {
                    for r in 0..n {
                        let k = off + r;
                        let acts = &cache.acts[k * g..(k + 1) * g];
                        let hh = &cache.aux[k * hd..(k + 1) * hd];
                        let hp = &cache.hp[k * hd..(k + 1) * hd];
                        let dxr = &mut dx[(lo + r) * g..(lo + r + 1) * g];
                        let drr = &mut drec[(lo + r) * g..(lo + r + 1) * g];
                        let dhr = &mut dh[r * hd..(r + 1) * hd];
                        gru_cell_back(acts, hh, hp, dhr, dxr, drr);
                    }
                    ut.matmul(n, &drec[lo * g..(lo + n) * g], g, true, &mut dh, hd);
                }
            }
        }
        let dr: &[T] = if kind == Kind::Gru { &drec } else { &dx };
        let dr = &dr[..ntok * g];
        // dU += sum over the block's tokens of h_prev^T · dgates.
        gemm(
            hd,
            ntok,
            g,
            T::ONE,
            tr(&cache.hp[base * hd..(base + ntok) * hd], hd),
            rm(dr, g),
            T::ONE,
            du,
            g,
        );
        if kind == Kind::Gru {
            for row in dr.chunks_exact(g) {
                for (b, v) in dbrec.iter_mut().zip(row) {
                    *b += *v;
                }
            }
        }
        for (k, &tok) in cache.idx[base..base + ntok].iter().enumerate() {
            let dst = &mut dtable[tok as usize * g..(tok as usize + 1) * g];
            for (d, v) in dst.iter_mut().zip(&dx[k * g..(k + 1) * g]) {
                *d += *v;
            }
        }
        t_end = t_lo;
    }
    scratch.give(dx);
    scratch.give(drec);
}

#[inline]
fn lstm_cell_back<T: Real>(acts: &[T], cp: &[T], tc: &[T], dh: &[T], dc: &mut [T], da: &mut [T]) {
    if T::lstm_cell_back_simd(acts, cp, tc, dh, dc, da) {
        return;
    }
    let hd = dh.len();
    let one = T::ONE;
    for j in 0..hd {
        let i = acts[j];
        let f = acts[hd + j];
        let gg = acts[2 * hd + j];
        let o = acts[3 * hd + j];
        let t = tc[j];
        let dcv = dc[j] + dh[j] * o * (one - t * t);
        da[j] = dcv * gg * i * (one - i);
        da[hd + j] = dcv * cp[j] * f * (one - f);
        da[2 * hd + j] = dcv * i * (one - gg * gg);
        da[3 * hd + j] = dh[j] * t * o * (one - o);
        dc[j] = dcv * f;
    }
}

#[inline]
fn gru_cell_back<T: Real>(
    acts: &[T],
    hh: &[T],
    hp: &[T],
    dh: &mut [T],
    dx: &mut [T],
    drec: &mut [T],
) {
    let hd = dh.len();
    let one = T::ONE;
    for j in 0..hd {
        let z = acts[j];
        let r = acts[hd + j];
        let nn = acts[2 * hd + j];
        let d = dh[j];
        let dz = d * (hp[j] - nn);
        let dan = d * (one - z) * (one - nn * nn);
        let daz = dz * z * (one - z);
        let dar = dan * hh[j] * r * (one - r);
        dx[j] = daz;
        dx[hd + j] = dar;
        dx[2 * hd + j] = dan;
        drec[j] = daz;
        drec[hd + j] = dar;
        drec[2 * hd + j] = dan * r;
        dh[j] = d * z;
    }
}

/// Forward pass of one chunk up to the logits.
pub(crate) struct ChunkForward<T> {
    pub lay: BatchLayout,
    caches: Vec<DirCache<T>>,
    /// Recurrent features fed to the dense layer [n, hout], sorted-row order.
    feat: Vec<T>,
    /// [n, n_out], sorted-row order.
    pub logits: Vec<T>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn forward_chunk<T: Real>(
    cfg: &NetConfig,
    p: &Params<T>,
    prep: &Prepared<T>,
    batch: &[&[u32]],
    rows: Vec<usize>,
    save: bool,
    par_dirs: bool,
    scratch: &Scratch<T>,
) -> ChunkForward<T> {
    let lay = BatchLayout::new(rows, batch);
    let (hd, g, hout, k) = (cfg.hidden, cfg.g(), cfg.hout(), cfg.n_out());
    let nc = lay.rows.len();
    let kind = cfg.kind();
    let mut feat = vec![T::ZERO; nc * hout];
    let mut caches = Vec::new();
    let dir_caches = each_dir(par_dirs, prep.tables.len(), |d| {
        let brec: &[T] = if kind == Kind::Gru {
            &p.dirs[d].b[g..2 * g]
        } else {
            &[]
        };
        forward_dir(
            kind,
            cfg.head,
            hd,
            &prep.tables[d],
            &prep.u[d],
            brec,
            &lay,
            batch,
            d == 1,
            save,
            scratch,
        )
    });
    for (d, cache) in dir_caches.into_iter().enumerate() {
        for r in 0..nc {
            let dst = &mut feat[r * hout + d * hd..r * hout + (d + 1) * hd];
            match cfg.head {
                Head::Last => dst.copy_from_slice(&cache.h[r * hd..(r + 1) * hd]),
                Head::Max => dst.copy_from_slice(&cache.pool[r * hd..(r + 1) * hd]),
                Head::Mean => {
                    let inv = T::from_f64(1.0 / lay.lens[r].max(1) as f64);
                    for (o, &s) in dst.iter_mut().zip(&cache.pool[r * hd..(r + 1) * hd]) {
                        *o = s * inv;
                    }
                }
            }
        }
        if save {
            caches.push(cache);
        } else {
            cache.recycle(scratch);
        }
    }
    let mut logits = Vec::with_capacity(nc * k);
    for _ in 0..nc {
        logits.extend_from_slice(&p.dense_b);
    }
    gemm(
        nc,
        hout,
        k,
        T::ONE,
        rm(&feat, hout),
        rm(&p.dense_w, k),
        T::ONE,
        &mut logits,
        k,
    );
    ChunkForward {
        lay,
        caches,
        feat,
        logits,
    }
}

#[inline]
fn sigmoid<T: Real>(z: T) -> T {
    if z >= T::ZERO {
        T::ONE / (T::ONE + (-z).exp())
    } else {
        let e = z.exp();
        e / (T::ONE + e)
    }
}

/// Probabilities of one row from its logits.
pub(crate) fn probs_row<T: Real>(output: Output, z: &[T], out: &mut [T]) {
    match output {
        Output::Sigmoid => out[0] = sigmoid(z[0]),
        Output::Softmax(_) => {
            let m = z
                .iter()
                .copied()
                .fold(z[0], |a, b| if b > a { b } else { a });
            let mut s = T::ZERO;
            for (o, &v) in out.iter_mut().zip(z) {
                *o = (v - m).exp();
                s += *o;
            }
            for o in out.iter_mut() {
                *o = *o / s;
            }
        }
    }
}

/// Unweighted loss of one row; with `dz`, also writes dloss/dlogits.
pub(crate) fn row_loss<T: Real>(
    output: Output,
    loss: Loss,
    z: &[T],
    y: &[T],
    dz: Option<&mut [T]>,
) -> f64 {
    let k = z.len();
    let mut p = vec![T::ZERO; k];
    probs_row(output, z, &mut p);
    match (loss, output) {
        (Loss::CrossEntropy, Output::Sigmoid) => {
            let (zv, yv) = (z[0].to_f64(), y[0].to_f64());
            if let Some(dz) = dz {
                dz[0] = p[0] - y[0];
            }
            zv.max(0.0) - yv * zv + (-zv.abs()).exp().ln_1p()
        }
        (Loss::CrossEntropy, Output::Softmax(_)) => {
            let m = z
                .iter()
                .map(|v| v.to_f64())
                .fold(f64::NEG_INFINITY, f64::max);
            let lse = m + z.iter().map(|v| (v.to_f64() - m).exp()).sum::<f64>().ln();
            let ysum: T = y.iter().fold(T::ZERO, |a, &b| a + b);
            if let Some(dz) = dz {
                for j in 0..k {
                    dz[j] = p[j] * ysum - y[j];
                }
            }
            z.iter()
                .zip(y)
                .map(|(zv, yv)| yv.to_f64() * (lse - zv.to_f64()))
                .sum()
        }
        (Loss::Mse, _) => {
            let kf = T::from_f64(k as f64);
            let l: f64 = p
                .iter()
                .zip(y)
                .map(|(a, b)| (a.to_f64() - b.to_f64()).powi(2))
                .sum::<f64>()
                / k as f64;
            if let Some(dz) = dz {
                let two = T::from_f64(2.0);
                let gp: Vec<T> = p.iter().zip(y).map(|(&a, &b)| two * (a - b) / kf).collect();
                match output {
                    Output::Sigmoid => dz[0] = gp[0] * p[0] * (T::ONE - p[0]),
                    Output::Softmax(_) => {
                        let s = gp.iter().zip(&p).fold(T::ZERO, |a, (&x, &q)| a + x * q);
                        for j in 0..k {
                            dz[j] = p[j] * (gp[j] - s);
                        }
                    }
                }
            }
            l
        }
    }
}

struct ChunkGrads<T> {
    loss: f64,
    dtables: Vec<Vec<T>>,
    du: Vec<Vec<T>>,
    dbrec: Vec<Vec<T>>,
    dwd: Vec<T>,
    dbd: Vec<T>,
}

#[allow(clippy::too_many_arguments)]
fn chunk_grad<T: Real>(
    cfg: &NetConfig,
    p: &Params<T>,
    prep: &Prepared<T>,
    batch: &[&[u32]],
    rows: &[usize],
    targets: &[T],
    weights: Option<&[T]>,
    loss: Loss,
    par_dirs: bool,
    scratch: &Scratch<T>,
) -> ChunkGrads<T> {
    let fwd = forward_chunk(cfg, p, prep, batch, rows.to_vec(), true, par_dirs, scratch);
    let (hd, g, hout, k, v) = (cfg.hidden, cfg.g(), cfg.hout(), cfg.n_out(), cfg.vocab);
    let nc = fwd.lay.rows.len();
    let inv_n = T::from_f64(1.0 / batch.len() as f64);
    let mut dz = vec![T::ZERO; nc * k];
    let mut loss_sum = 0.0;
    for r in 0..nc {
        let gi = fwd.lay.rows[r];
        let dzr = &mut dz[r * k..(r + 1) * k];
        let l = row_loss(
            cfg.output,
            loss,
            &fwd.logits[r * k..(r + 1) * k],
            &targets[gi * k..(gi + 1) * k],
            Some(dzr),
        );
        let w = weights.map_or(T::ONE, |w| w[gi]);
        loss_sum += w.to_f64() * l;
        let s = w * inv_n;
        dzr.iter_mut().for_each(|x| *x *= s);
    }
    let mut dwd = vec![T::ZERO; hout * k];
    gemm(
        hout,
        nc,
        k,
        T::ONE,
        tr(&fwd.feat, hout),
        rm(&dz, k),
        T::ZERO,
        &mut dwd,
        k,
    );
    let mut dbd = vec![T::ZERO; k];
    for row in dz.chunks_exact(k) {
        for (b, x) in dbd.iter_mut().zip(row) {
            *b += *x;
        }
    }
    let mut dfeat = vec![T::ZERO; nc * hout];
    gemm(
        nc,
        k,
        hout,
        T::ONE,
        rm(&dz, k),
        tr(&p.dense_w, k),
        T::ZERO,
        &mut dfeat,
        hout,
    );
    let mut out = ChunkGrads {
        loss: loss_sum,
        dtables: vec![],
        du: vec![],
        dbrec: vec![],
        dwd,
        dbd,
    };
    let grads = each_dir(par_dirs, fwd.caches.len(), |d| {
        let mut dfinal = vec![T::ZERO; nc * hd];
        for r in 0..nc {
            let src = &dfeat[r * hout + d * hd..r * hout + (d + 1) * hd];
            let scale = if cfg.head == Head::Mean {
                T::from_f64(1.0 / fwd.lay.lens[r].max(1) as f64)
            } else {
                T::ONE
            };
            for (o, &v) in dfinal[r * hd..(r + 1) * hd].iter_mut().zip(src) {
                *o = v * scale;
            }
        }
        let mut dtable = vec![T::ZERO; v * g];
        let mut du = vec![T::ZERO; hd * g];
        let mut dbrec = vec![T::ZERO; if cfg.kind() == Kind::Gru { g } else { 0 }];
        backward_dir(
            cfg.kind(),
            cfg.head,
            hd,
            &prep.ut[d],
            &fwd.lay,
            &fwd.caches[d],
            &dfinal,
            &mut dtable,
            &mut du,
            &mut dbrec,
            scratch,
        );
        (dtable, du, dbrec)
    });
    for (dtable, du, dbrec) in grads {
        out.dtables.push(dtable);
        out.du.push(du);
        out.dbrec.push(dbrec);
    }
    for cache in fwd.caches {
        cache.recycle(scratch);
    }
    out
}

fn add_into<T: Real>(dst: &mut [T], src: &[T]) {
    for (a, b) in dst.iter_mut().zip(src) {
        *a += *b;
    }
}

/// Loss (weighted sum over rows / n, as Keras) and gradients of all parameters.
/// Inputs must already be validated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn loss_grad_impl<T: Real>(
    cfg: &NetConfig,
    p: &Params<T>,
    batch: &[&[u32]],
    targets: &[T],
    weights: Option<&[T]>,
    loss: Loss,
    threads: usize,
    scratch: &Scratch<T>,
) -> (f64, Params<T>) {
    let (e, g, v) = (cfg.embed, cfg.g(), cfg.vocab);
    let mut grads = Params::<T>::zeros(cfg);
    if batch.is_empty() {
        return (0.0, grads);
    }
    let prep = prepare(cfg, p, true);
    // A bidirectional layer's two directions run on two threads over the same rows (each
    // direction sees every row: bigger products, and both halves of the work are equal);
    // rows are split across what threads remain.
    let par_dirs = cfg.dirs() == 2 && threads >= 2;
    let chunks = split_rows(batch, if par_dirs { threads / 2 } else { threads });
    let mut outs = run_parallel(&chunks, |rows| {
        chunk_grad(
            cfg, p, &prep, batch, rows, targets, weights, loss, par_dirs, scratch,
        )
    });
    let mut total = outs.remove(0);
    for o in &outs {
        total.loss += o.loss;
        add_into(&mut total.dwd, &o.dwd);
        add_into(&mut total.dbd, &o.dbd);
        for d in 0..cfg.dirs() {
            add_into(&mut total.dtables[d], &o.dtables[d]);
            add_into(&mut total.du[d], &o.du[d]);
            add_into(&mut total.dbrec[d], &o.dbrec[d]);
        }
    }
    grads.dense_w = total.dwd;
    grads.dense_b = total.dbd;
    for d in 0..cfg.dirs() {
        let dt = &total.dtables[d];
        let gd = &mut grads.dirs[d];
        // table = E·W + b  =>  dW = E^T·dT, dE += dT·W^T, db = column sums of dT.
        gemm(
            e,
            v,
            g,
            T::ONE,
            tr(&p.emb, e),
            rm(dt, g),
            T::ZERO,
            &mut gd.w,
            g,
        );
        gemm(
            v,
            g,
            e,
            T::ONE,
            rm(dt, g),
            tr(&p.dirs[d].w, g),
            T::ONE,
            &mut grads.emb,
            e,
        );
        for row in dt.chunks_exact(g) {
            add_into(&mut gd.b[..g], row);
        }
        gd.u = std::mem::take(&mut total.du[d]);
        if cfg.kind() == Kind::Gru {
            gd.b[g..].copy_from_slice(&total.dbrec[d]);
        }
    }
    (total.loss / batch.len() as f64, grads)
}

/// Logits [n, n_out] in input order. Rows are processed in blocks of similar length.
pub(crate) fn logits_impl<T: Real>(
    cfg: &NetConfig,
    p: &Params<T>,
    prep: &Prepared<T>,
    batch: &[&[u32]],
    threads: usize,
) -> Vec<T> {
    let k = cfg.n_out();
    let n = batch.len();
    let mut out = vec![T::ZERO; n * k];
    if n == 0 {
        return out;
    }
    const BLOCK: usize = 1024;
    let scratch = Scratch::new();
    let order = split_rows(batch, 1).remove(0);
    for block in order.chunks(BLOCK) {
        let parts = threads.clamp(1, block.len().div_ceil(16).max(1));
        let chunks: Vec<Vec<usize>> = (0..parts)
            .map(|c| block.iter().skip(c).step_by(parts).copied().collect())
            .collect();
        let res = run_parallel(&chunks, |rows| {
            forward_chunk(cfg, p, prep, batch, rows.to_vec(), false, false, &scratch)
        });
        for f in res {
            for (r, &gi) in f.lay.rows.iter().enumerate() {
                out[gi * k..(gi + 1) * k].copy_from_slice(&f.logits[r * k..(r + 1) * k]);
            }
        }
    }
    out
}
