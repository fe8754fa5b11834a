//! WGSL compute kernels. Every kernel takes its scalars from a uniform block at binding 0
//! (bound with a dynamic offset, so one buffer serves every dispatch of a submission) and its
//! arrays from storage bindings 1.. .
//!
//! Packed layout (as in the CPU kernel): rows sorted by length, longest first; step `t`'s
//! values for live rows `0..n_t` start at packed row `off_t`.

/// Activations shared by the recurrent kernels (with `mallard_gpu::SIGMOID_WGSL`). Own tanh
/// because some drivers compute the builtin as (e^2x - 1)/(e^2x + 1), which is NaN for large
/// |x|.
const TANH: &str = r#"
fn tanh_(x: f32) -> f32 {
    let ax = abs(x);
    if (ax < 0.1) {
        // Taylor series: the closed form below cancels badly near 0.
        let z = x * x;
        return x * (1.0 + z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0))));
    }
    let e = exp(-2.0 * ax);
    let t = (1.0 - e) / (1.0 + e);
    return select(t, -t, x < 0.0);
}
"#;

/// C = alpha * op(A) op(B) (+ bias row) (+ C). A workgroup of 16x16 threads computes a 64x64
/// tile of C, 4x4 outputs per thread, over K in slices of 16 staged in shared memory. A and B are
/// addressed through row/column strides, so transposed operands need no copies; with the
/// gather flag the k index of A goes through `gidx` (0xffffffff reads as 0), used for
/// dU = h_prev^T dgates.
pub(crate) const GEMM: &str = r#"
struct P {
    m: u32, n: u32, k: u32, flags: u32,
    a_off: u32, rsa: u32, csa: u32, b_off: u32,
    rsb: u32, csb: u32, c_off: u32, ldc: u32,
    bias_off: u32, alpha: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> gidx: array<u32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;

// [k][row of C] and [k][column of C].
var<workgroup> ta: array<array<f32, 64>, 16>;
var<workgroup> tb: array<array<f32, 64>, 16>;

fn load_a(i: u32, kk: u32) -> f32 {
    if (i >= p.m || kk >= p.k) {
        return 0.0;
    }
    var kr = kk;
    if ((p.flags & 1u) != 0u) {
        kr = gidx[kk];
        if (kr == 0xffffffffu) {
            return 0.0;
        }
    }
    return a[p.a_off + i * p.rsa + kr * p.csa];
}

fn load_b(kk: u32, j: u32) -> f32 {
    if (kk >= p.k || j >= p.n) {
        return 0.0;
    }
    return b[p.b_off + kk * p.rsb + j * p.csb];
}

fn store(i: u32, j: u32, acc: f32) {
    if (i < p.m && j < p.n) {
        let ci = p.c_off + i * p.ldc + j;
        var v = p.alpha * acc;
        if ((p.flags & 2u) != 0u) {
            v += bias[p.bias_off + j];
        }
        if ((p.flags & 4u) != 0u) {
            v += c[ci];
        }
        c[ci] = v;
    }
}

@compute @workgroup_size(16, 16)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    let i0 = w.y * 64u;
    let j0 = w.x * 64u;
    let tid = l.y * 16u + l.x;
    // Let neighbouring threads read neighbouring addresses whichever way A and B are strided.
    let a_k_fast = p.csa == 1u;
    let b_k_fast = p.csb != 1u;
    var c0 = vec4<f32>(0.0);
    var c1 = vec4<f32>(0.0);
    var c2 = vec4<f32>(0.0);
    var c3 = vec4<f32>(0.0);
    let tiles = (p.k + 15u) / 16u;
    for (var t = 0u; t < tiles; t++) {
        let k0 = t * 16u;
        for (var e = 0u; e < 4u; e++) {
            let x = tid + e * 256u;
            var kk = x / 64u;
            var ii = x % 64u;
            if (a_k_fast) {
                kk = x % 16u;
                ii = x / 16u;
            }
            ta[kk][ii] = load_a(i0 + ii, k0 + kk);
            kk = x / 64u;
            var jj = x % 64u;
            if (b_k_fast) {
                kk = x % 16u;
                jj = x / 16u;
            }
            tb[kk][jj] = load_b(k0 + kk, j0 + jj);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            let av = vec4<f32>(ta[kk][l.y * 4u], ta[kk][l.y * 4u + 1u], ta[kk][l.y * 4u + 2u], ta[kk][l.y * 4u + 3u]);
            let bv = vec4<f32>(tb[kk][l.x * 4u], tb[kk][l.x * 4u + 1u], tb[kk][l.x * 4u + 2u], tb[kk][l.x * 4u + 3u]);
            c0 += av.x * bv;
            c1 += av.y * bv;
            c2 += av.z * bv;
            c3 += av.w * bv;
        }
        workgroupBarrier();
    }
    let i = i0 + l.y * 4u;
    let j = j0 + l.x * 4u;
    for (var q = 0u; q < 4u; q++) {
        store(i, j + q, c0[q]);
        store(i + 1u, j + q, c1[q]);
        store(i + 2u, j + q, c2[q]);
        store(i + 3u, j + q, c3[q]);
    }
}
"#;

/// One forward time step over the live rows. Workgroup = 64 hidden units x RB rows; the
/// previous hidden states of those rows are staged in shared memory in chunks of 64, and each
/// thread keeps every gate of its unit for RB rows, so the cell update needs no second pass.
const STEP_FWD_BODY: &str = r#"
struct P {
    n: u32, hd: u32, g: u32, kind: u32,
    head: u32, save: u32, t: u32, has_prev: u32,
    cur: u32, prev: u32, base: u32, brec_off: u32,
    u_off: u32, n0: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> hs: array<f32>;
@group(0) @binding(5) var<storage, read_write> aux: array<f32>;
@group(0) @binding(6) var<storage, read_write> acts: array<f32>;
@group(0) @binding(7) var<storage, read_write> pool: array<f32>;

const RB: u32 = 4u;
// Previous hidden states of the workgroup's rows: component q is row r0 + q.
var<workgroup> hsh: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    let j = w.x * 64u + l.x;
    let r0 = w.y * RB;
    // One vec4 per gate (i, f, c, o or z, r, h), component q for row r0 + q: one shared-memory
    // read feeds 16 multiply-adds. Named accumulators rather than an indexed array, which
    // compilers may keep in memory.
    var s0 = vec4<f32>(0.0);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    var s3 = vec4<f32>(0.0);
    let lstm = p.kind == 0u;
    if (p.has_prev != 0u) {
        for (var i0 = 0u; i0 < p.hd; i0 += 64u) {
            var v = vec4<f32>(0.0);
            if (i0 + l.x < p.hd) {
                for (var q = 0u; q < RB; q++) {
                    if (r0 + q < p.n) {
                        v[q] = hs[(p.prev + r0 + q) * p.hd + i0 + l.x];
                    }
                }
            }
            hsh[l.x] = v;
            workgroupBarrier();
            if (j < p.hd) {
                let cnt = min(64u, p.hd - i0);
                for (var ii = 0u; ii < cnt; ii++) {
                    let urow = p.u_off + (i0 + ii) * p.g + j;
                    let h4 = hsh[ii];
                    s0 += h4 * params[urow];
                    s1 += h4 * params[urow + p.hd];
                    s2 += h4 * params[urow + 2u * p.hd];
                    if (lstm) {
                        s3 += h4 * params[urow + 3u * p.hd];
                    }
                }
            }
            workgroupBarrier();
        }
    }
    if (j >= p.hd) {
        return;
    }
    let hd = p.hd;
    for (var q = 0u; q < RB; q++) {
        let r = r0 + q;
        if (r >= p.n) {
            break;
        }
        let acc = vec4<f32>(s0[q], s1[q], s2[q], s3[q]);
        let tr = idx[p.base + r] * p.g + j;
        let hi = (p.cur + r) * hd + j;
        let pi = (p.prev + r) * hd + j;
        let ai = (p.base + r) * p.g + j;
        var h = 0.0;
        if (p.kind == 0u) {
            let gi = sigm(table[tr] + acc.x);
            let gf = sigm(table[tr + hd] + acc.y);
            let gg = tanh_(table[tr + 2u * hd] + acc.z);
            let go = sigm(table[tr + 3u * hd] + acc.w);
            var cp = 0.0;
            if (p.has_prev != 0u) {
                cp = aux[pi];
            }
            let c = gf * cp + gi * gg;
            h = go * tanh_(c);
            aux[hi] = c;
            if (p.save != 0u) {
                acts[ai] = gi;
                acts[ai + hd] = gf;
                acts[ai + 2u * hd] = gg;
                acts[ai + 3u * hd] = go;
            }
        } else {
            let rz = acc.x + params[p.brec_off + j];
            let rr = acc.y + params[p.brec_off + hd + j];
            let rh = acc.z + params[p.brec_off + 2u * hd + j];
            let z = sigm(table[tr] + rz);
            let rg = sigm(table[tr + hd] + rr);
            let nn = tanh_(table[tr + 2u * hd] + rg * rh);
            var hp = 0.0;
            if (p.has_prev != 0u) {
                hp = hs[pi];
            }
            h = z * hp + (1.0 - z) * nn;
            if (p.save != 0u) {
                aux[hi] = rh;
                acts[ai] = z;
                acts[ai + hd] = rg;
                acts[ai + 2u * hd] = nn;
            }
        }
        hs[hi] = h;
        // Pooling heads: step 0 initialises (every non-empty row is live at step 0).
        let pl = r * hd + j;
        if (p.head == 1u) {
            if (p.t == 0u) {
                pool[pl] = h;
            } else {
                pool[pl] += h;
            }
        } else if (p.head == 2u) {
            if (p.t == 0u || h > pool[pl]) {
                pool[pl] = h;
                pool[p.n0 * hd + pl] = bitcast<f32>(p.t);
            }
        }
    }
}
"#;

/// One backward time step. `dxr` holds the gate-input gradients per packed token and, for
/// GRU, the recurrent-side gradients after them (at `dr_off`); `carry` is dc (LSTM) or
/// dh*z (GRU) from the later step. The recurrent part of dh comes from step t+1's
/// gradients times U^T (`ut`, [G, H], so reads are contiguous across units).
const STEP_BWD_BODY: &str = r#"
struct P {
    n: u32, n_next: u32, hd: u32, g: u32,
    kind: u32, head: u32, t: u32, has_prev: u32,
    off: u32, off_next: u32, off_prev: u32, dr_off: u32,
    n0: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> ut: array<f32>;
@group(0) @binding(2) var<storage, read> acts: array<f32>;
@group(0) @binding(3) var<storage, read> hs: array<f32>;
@group(0) @binding(4) var<storage, read> aux: array<f32>;
@group(0) @binding(5) var<storage, read_write> dxr: array<f32>;
@group(0) @binding(6) var<storage, read_write> carry: array<f32>;
@group(0) @binding(7) var<storage, read> dfin: array<f32>;
@group(0) @binding(8) var<storage, read> pool: array<f32>;

const RB: u32 = 4u;
// Step t+1's gradients of the workgroup's rows: component q is row r0 + q.
var<workgroup> dsh: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    let j = w.x * 64u + l.x;
    let r0 = w.y * RB;
    // Component q of `acc` is row r0 + q.
    var acc = vec4<f32>(0.0);
    if (r0 < p.n_next) {
        for (var g0 = 0u; g0 < p.g; g0 += 64u) {
            var v = vec4<f32>(0.0);
            if (g0 + l.x < p.g) {
                for (var q = 0u; q < RB; q++) {
                    if (r0 + q < p.n_next) {
                        v[q] = dxr[p.dr_off + (p.off_next + r0 + q) * p.g + g0 + l.x];
                    }
                }
            }
            dsh[l.x] = v;
            workgroupBarrier();
            if (j < p.hd) {
                let cnt = min(64u, p.g - g0);
                for (var gg = 0u; gg < cnt; gg++) {
                    let u = ut[(g0 + gg) * p.hd + j];
                    acc += dsh[gg] * u;
                }
            }
            workgroupBarrier();
        }
    }
    if (j >= p.hd) {
        return;
    }
    let hd = p.hd;
    for (var q = 0u; q < RB; q++) {
        let r = r0 + q;
        if (r >= p.n) {
            break;
        }
        let cont = r < p.n_next;
        let ci = r * hd + j;
        var dh = select(0.0, acc[q], cont);
        if (p.head == 0u) {
            if (!cont) {
                dh += dfin[ci];
            }
        } else if (p.head == 1u) {
            dh += dfin[ci];
        } else if (bitcast<u32>(pool[p.n0 * hd + ci]) == p.t) {
            dh += dfin[ci];
        }
        let k = p.off + r;
        let ai = k * p.g + j;
        let pi = (p.off_prev + r) * hd + j;
        if (p.kind == 0u) {
            let gi = acts[ai];
            let gf = acts[ai + hd];
            let gg = acts[ai + 2u * hd];
            let go = acts[ai + 3u * hd];
            let tc = tanh_(aux[k * hd + j]);
            var cp = 0.0;
            if (p.has_prev != 0u) {
                cp = aux[pi];
            }
            let dcv = select(0.0, carry[ci], cont) + dh * go * (1.0 - tc * tc);
            dxr[ai] = dcv * gg * gi * (1.0 - gi);
            dxr[ai + hd] = dcv * cp * gf * (1.0 - gf);
            dxr[ai + 2u * hd] = dcv * gi * (1.0 - gg * gg);
            dxr[ai + 3u * hd] = dh * tc * go * (1.0 - go);
            carry[ci] = dcv * gf;
        } else {
            let d = dh + select(0.0, carry[ci], cont);
            let z = acts[ai];
            let rg = acts[ai + hd];
            let nn = acts[ai + 2u * hd];
            let hh = aux[k * hd + j];
            var hp = 0.0;
            if (p.has_prev != 0u) {
                hp = hs[pi];
            }
            let dan = d * (1.0 - z) * (1.0 - nn * nn);
            let daz = d * (hp - nn) * z * (1.0 - z);
            let dar = dan * hh * rg * (1.0 - rg);
            dxr[ai] = daz;
            dxr[ai + hd] = dar;
            dxr[ai + 2u * hd] = dan;
            dxr[p.dr_off + ai] = daz;
            dxr[p.dr_off + ai + hd] = dar;
            dxr[p.dr_off + ai + 2u * hd] = dan * rg;
            carry[ci] = d * z;
        }
    }
}
"#;

/// Features for the dense layer from one direction: last state, mean or max per row.
/// `rowinfo` is [row of the final state in `hs` (0xffffffff for an empty row), length].
pub(crate) const FEAT: &str = r#"
struct P { n0: u32, hd: u32, hout: u32, dir_off: u32, head: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> hs: array<f32>;
@group(0) @binding(2) var<storage, read> pool: array<f32>;
@group(0) @binding(3) var<storage, read> rowinfo: array<u32>;
@group(0) @binding(4) var<storage, read_write> feat: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.n0 * p.hd) {
        return;
    }
    let r = i / p.hd;
    let j = i % p.hd;
    let last = rowinfo[2u * r];
    let len = rowinfo[2u * r + 1u];
    var v = 0.0;
    if (len > 0u) {
        if (p.head == 0u) {
            v = hs[last * p.hd + j];
        } else if (p.head == 1u) {
            v = pool[i] * (1.0 / f32(len));
        } else {
            v = pool[i];
        }
    }
    feat[r * p.hout + p.dir_off + j] = v;
}
"#;

/// dLoss/d(recurrent output) of one direction from dLoss/d(features).
pub(crate) const HEAD_BACK: &str = r#"
struct P { n0: u32, hd: u32, hout: u32, dir_off: u32, head: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dfeat: array<f32>;
@group(0) @binding(2) var<storage, read> rowinfo: array<u32>;
@group(0) @binding(3) var<storage, read_write> dfin: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.n0 * p.hd) {
        return;
    }
    let r = i / p.hd;
    let j = i % p.hd;
    var s = 1.0;
    if (p.head == 1u) {
        s = 1.0 / f32(max(rowinfo[2u * r + 1u], 1u));
    }
    dfin[i] = dfeat[r * p.hout + p.dir_off + j] * s;
}
"#;

/// Per-row loss (times the row weight) and dLoss/dlogits (times weight / batch size), with the
/// same formulas as the CPU kernel. Sigmoid: one logit; softmax: k logits.
const LOSS_BODY: &str = r#"
struct P { n: u32, k: u32, softmax: u32, ce: u32, weighted: u32, loss_base: u32, inv_n: f32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read> wt: array<f32>;
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
@group(0) @binding(5) var<storage, read_write> rowloss: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let r = gid.x + gid.y * nw.x * 64u;
    if (r >= p.n) {
        return;
    }
    let k = p.k;
    let o = r * k;
    var w = 1.0;
    if (p.weighted != 0u) {
        w = wt[r];
    }
    let s = w * p.inv_n;
    var l = 0.0;
    if (p.softmax == 0u) {
        let zv = z[o];
        let yv = y[o];
        let pr = sigm(zv);
        if (p.ce != 0u) {
            l = max(zv, 0.0) - yv * zv + log(1.0 + exp(-abs(zv)));
            dz[o] = (pr - yv) * s;
        } else {
            l = (pr - yv) * (pr - yv);
            dz[o] = 2.0 * (pr - yv) * pr * (1.0 - pr) * s;
        }
    } else {
        var m = z[o];
        for (var j = 1u; j < k; j++) {
            m = max(m, z[o + j]);
        }
        var se = 0.0;
        for (var j = 0u; j < k; j++) {
            se += exp(z[o + j] - m);
        }
        let kf = f32(k);
        if (p.ce != 0u) {
            let lse = m + log(se);
            var ys = 0.0;
            for (var j = 0u; j < k; j++) {
                ys += y[o + j];
                l += y[o + j] * (lse - z[o + j]);
            }
            for (var j = 0u; j < k; j++) {
                dz[o + j] = (exp(z[o + j] - m) / se * ys - y[o + j]) * s;
            }
        } else {
            // d/dz of mean((p - y)^2) through the softmax Jacobian.
            var dot = 0.0;
            for (var j = 0u; j < k; j++) {
                let pj = exp(z[o + j] - m) / se;
                let d = pj - y[o + j];
                l += d * d;
                dot += 2.0 * d / kf * pj;
            }
            l = l / kf;
            for (var j = 0u; j < k; j++) {
                let pj = exp(z[o + j] - m) / se;
                dz[o + j] = pj * (2.0 * (pj - y[o + j]) / kf - dot) * s;
            }
        }
    }
    rowloss[p.loss_base + r] = w * l;
}
"#;

/// Gradient of the input table: dT[v] = sum of the gate gradients of the tokens equal to v
/// (CSR lists built on the host, so no float atomics are needed).
pub(crate) const DTABLE: &str = r#"
struct P { v: u32, g: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> csr_off: array<u32>;
@group(0) @binding(2) var<storage, read> csr_tok: array<u32>;
@group(0) @binding(3) var<storage, read> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> dt: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.v * p.g) {
        return;
    }
    let v = i / p.g;
    let c = i % p.g;
    var s = 0.0;
    for (var q = csr_off[v]; q < csr_off[v + 1u]; q++) {
        s += dx[csr_tok[q] * p.g + c];
    }
    dt[i] = s;
}
"#;

/// out[c] = sum over rows of in[in_off + r * ld + c].
pub(crate) const COLSUM: &str = r#"
struct P { rows: u32, cols: u32, ld: u32, in_off: u32, out_off: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.cols) {
        return;
    }
    var s = 0.0;
    for (var r = 0u; r < p.rows; r++) {
        s += src[p.in_off + r * p.ld + c];
    }
    dst[p.out_off + c] = s;
}
"#;

/// dst[c, r] = src[off + r * cols + c].
pub(crate) const TRANSPOSE: &str = r#"
struct P { rows: u32, cols: u32, off: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.rows * p.cols) {
        return;
    }
    let r = i / p.cols;
    let c = i % p.cols;
    dst[c * p.rows + r] = src[p.off + i];
}
"#;

/// Sum of squares of `src[0..len]` per workgroup of 256 threads, each over its `chunk` of
/// consecutive values (first stage of the global gradient norm for clipping).
pub(crate) const SUMSQ: &str = r#"
struct P { len: u32, chunk: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
    let start = w.x * p.chunk;
    let end = min(start + p.chunk, p.len);
    var s = 0.0;
    for (var i = start + l.x; i < end; i += 256u) {
        let x = src[i];
        s += x * x;
    }
    acc[l.x] = s;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h = h >> 1u) {
        if (l.x < h) {
            acc[l.x] += acc[l.x + h];
        }
        workgroupBarrier();
    }
    if (l.x == 0u) {
        part[w.x] = acc[0];
    }
}
"#;

/// One workgroup: the global norm from SUMSQ's `n` partial sums and the clip factor,
/// `out = [max_norm / norm if norm > max_norm else 1, norm]` (as `mallard_rnn`'s clipping).
pub(crate) const CLIP_SCALE: &str = r#"
struct P { n: u32, max_norm: f32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> acc: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) l: vec3<u32>) {
    var s = 0.0;
    for (var i = l.x; i < p.n; i += 256u) {
        s += part[i];
    }
    acc[l.x] = s;
    workgroupBarrier();
    for (var h = 128u; h > 0u; h = h >> 1u) {
        if (l.x < h) {
            acc[l.x] += acc[l.x + h];
        }
        workgroupBarrier();
    }
    if (l.x == 0u) {
        let norm = sqrt(acc[0]);
        var f = 1.0;
        if (norm > p.max_norm && norm > 0.0) {
            f = p.max_norm / norm;
        }
        out[0] = f;
        out[1] = norm;
    }
}
"#;

/// Adam / RMSprop step over the whole parameter buffer, Keras (TF2) update rules;
/// Adam's bias correction is folded into `lr` on the host. With `clip`, every gradient is
/// first multiplied by `scale[0]` (CLIP_SCALE's factor), as the CPU clips before stepping.
pub(crate) const OPTIM: &str = r#"
struct P { len: u32, adam: u32, lr: f32, b1: f32, b2: f32, eps: f32, clip: u32, }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> gr: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
// [clip factor, global norm] from CLIP_SCALE; read only when `clip` is set.
@group(0) @binding(5) var<storage, read> scale: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.x + gid.y * nw.x * 64u;
    if (i >= p.len) {
        return;
    }
    var g = gr[i];
    if (p.clip != 0u) {
        g *= scale[0];
    }
    if (p.adam != 0u) {
        m[i] += (g - m[i]) * (1.0 - p.b1);
        v[i] += (g * g - v[i]) * (1.0 - p.b2);
        w[i] -= m[i] * p.lr / (sqrt(v[i]) + p.eps);
    } else {
        v[i] = p.b2 * v[i] + (1.0 - p.b2) * g * g;
        w[i] -= p.lr * g / sqrt(v[i] + p.eps);
    }
}
"#;

pub(crate) fn step_fwd() -> String {
    format!("{}{TANH}{STEP_FWD_BODY}", mallard_gpu::SIGMOID_WGSL)
}

pub(crate) fn step_bwd() -> String {
    format!("{}{TANH}{STEP_BWD_BODY}", mallard_gpu::SIGMOID_WGSL)
}

pub(crate) fn loss() -> String {
    format!("{}{LOSS_BODY}", mallard_gpu::SIGMOID_WGSL)
}
