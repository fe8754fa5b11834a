//! MalConv's forward pass on a GPU (wgpu / WGSL on Vulkan): the gated convolution over every
//! window and the running max pooling, which is all but a sliver of the network's arithmetic
//! (a 512-byte window costs `window * embed * 2 * channels` = 524,288 multiply-adds; the
//! head and MalConv2's sparse backward, which reads one window per channel, cost under 1% of
//! that and stay on the CPU, see [`crate::BatchPooler`]).
//!
//! Memory is constant in the input's length, as on the CPU: windows go to the device in
//! chunks of at most [`GpuPooler::chunk_windows`] (2 MB of bytes and of activations at the
//! default sizes), and only each channel's running maximum is kept between chunks.
//! Windows are pooled in order with a strict `>`, so ties go to the first window as on the
//! CPU; values differ from the CPU's by float summation order only.

use crate::{BatchPooler, Config, MalConv, MalConvError, Pooled, PAD};
use mallard_gpu::{Arg, Buf, Ctx, GpuError, KernelSpec, MAX_GROUPS};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum K {
    Conv,
    Pool,
}

/// Windows one convolution workgroup computes (its weight reads are shared by them).
const WPG: usize = 8;
/// Embedded values of one window staged per tile (positions per tile = XS / embed).
const XS: usize = 256;
/// Bytes of input (and of activations) per chunk, at most.
const CHUNK_BYTES: usize = 2 << 20;

fn conv_src() -> String {
    format!(
        r#"
struct P {{ jobs: u32, c2: u32, win: u32, e: u32, tp: u32 }}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> bytes: array<u32>;
@group(0) @binding(2) var<storage, read> lens: array<u32>;
@group(0) @binding(3) var<storage, read> embed: array<f32>;
@group(0) @binding(4) var<storage, read> conv: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> y: array<f32>;

const WPG: u32 = {WPG}u;
const XS: u32 = {XS}u;
var<workgroup> xs: array<f32, {XSALL}>;

// Workgroup (x, y): windows x*WPG.. of the chunk, output columns y*64... Window j's bytes
// are bytes[j*win .. j*win + lens[j]] (little-endian in u32 words); past lens[j] is padding,
// whose embedding is zero.
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {{
    let j0 = wg.x * WPG;
    let o = wg.y * 64u + lid;
    var acc: array<f32, {WPG}>;
    for (var j = 0u; j < WPG; j++) {{ acc[j] = 0.0; }}
    let tile = p.tp * p.e;
    for (var pos0 = 0u; pos0 < p.win; pos0 += p.tp) {{
        let n = min(p.tp, p.win - pos0) * p.e;
        workgroupBarrier();
        for (var t = lid; t < WPG * tile; t += 64u) {{
            let j = t / tile;
            let r = t % tile;
            let pos = pos0 + r / p.e;
            let job = j0 + j;
            var v = 0.0;
            if (job < p.jobs && r < n && pos < lens[job]) {{
                let i = job * p.win + pos;
                let b = (bytes[i >> 2u] >> ((i & 3u) * 8u)) & 255u;
                v = embed[b * p.e + r % p.e];
            }}
            xs[j * XS + r] = v;
        }}
        workgroupBarrier();
        if (o < p.c2) {{
            let kbase = pos0 * p.e;
            for (var r = 0u; r < n; r++) {{
                let w = conv[(kbase + r) * p.c2 + o];
                for (var j = 0u; j < WPG; j++) {{
                    acc[j] += xs[j * XS + r] * w;
                }}
            }}
        }}
    }}
    if (o < p.c2) {{
        for (var j = 0u; j < WPG; j++) {{
            let job = j0 + j;
            if (job < p.jobs) {{ y[job * p.c2 + o] = acc[j] + bias[o]; }}
        }}
    }}
}}
"#,
        XSALL = WPG * XS
    )
}

const POOL_BODY: &str = r#"
struct P { files: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
// Per file of the chunk: first job, end job, first window's index in the file, state slot.
@group(0) @binding(1) var<storage, read> ranges: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> zs: array<f32>;
@group(0) @binding(4) var<storage, read_write> at: array<u32>;
@group(0) @binding(5) var<storage, read_write> val: array<f32>;
@group(0) @binding(6) var<storage, read_write> gate: array<f32>;


@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let i = g.x + g.y * 65535u * 64u;
    if (i >= p.files * p.c) { return; }
    let f = i / p.c;
    let ch = i % p.c;
    let c2 = 2u * p.c;
    let s = ranges[4u * f + 3u] * p.c + ch;
    var best = zs[s];
    var best_at = at[s];
    var best_a = val[s];
    var best_g = gate[s];
    let first = ranges[4u * f + 2u];
    let begin = ranges[4u * f];
    for (var j = begin; j < ranges[4u * f + 1u]; j++) {
        let a = y[j * c2 + ch];
        let gg = y[j * c2 + p.c + ch];
        let z = a * sigm(gg);
        // Strictly greater: the first window wins ties, as on the CPU.
        if (z > best) {
            best = z;
            best_at = first + (j - begin);
            best_a = a;
            best_g = gg;
        }
    }
    zs[s] = best;
    at[s] = best_at;
    val[s] = best_a;
    gate[s] = best_g;
}
"#;

/// A MalConv network's convolution weights on a GPU, pooling batches of inputs.
pub struct GpuPooler {
    ctx: Ctx<K>,
    cfg: Config,
    chunk: usize,
    embed: Buf,
    conv: Buf,
    bias: Buf,
    bytes: Buf,
    lens: Buf,
    y: Buf,
    ranges: Option<Buf>,
    state: Option<[Buf; 4]>,
    slots: usize,
}

fn gpu_err(e: GpuError) -> MalConvError {
    MalConvError::Gpu(e.to_string())
}

impl GpuPooler {
    /// Opens the first high-performance adapter wgpu finds (a GPU, or lavapipe) and uploads
    /// `net`'s weights.
    pub fn new(net: &MalConv) -> Result<GpuPooler, MalConvError> {
        let cfg = net.config().clone();
        let chunk = (CHUNK_BYTES / cfg.window).clamp(WPG, 4096);
        Self::with_chunk(net, chunk)
    }

    /// As [`GpuPooler::new`] with at most `chunk` windows per dispatch (tests use small
    /// chunks to cross chunk edges).
    pub fn with_chunk(net: &MalConv, chunk: usize) -> Result<GpuPooler, MalConvError> {
        let cfg = net.config().clone();
        cfg.check()?;
        let chunk = chunk.max(1);
        let ctx = Ctx::new(
            "mallard-malconv",
            vec![
                KernelSpec {
                    key: K::Conv,
                    src: conv_src(),
                    read_only: vec![true, true, true, true, true, false],
                },
                KernelSpec {
                    key: K::Pool,
                    src: format!("{}{POOL_BODY}", mallard_gpu::SIGMOID_WGSL),
                    read_only: vec![true, true, false, false, false, false],
                },
            ],
        )
        .map_err(gpu_err)?;
        let c2 = 2 * cfg.channels;
        let conv_bytes = (cfg.k() * c2 * 4) as u64;
        let y_bytes = (chunk * c2 * 4) as u64;
        let in_bytes = (chunk * cfg.window) as u64;
        let max = ctx.max_binding();
        if conv_bytes > max || y_bytes > max || in_bytes > max {
            return Err(MalConvError::Gpu(format!(
                "a {conv_bytes}-byte convolution or a {chunk}-window chunk exceeds the \
                 adapter's {max}-byte storage bindings"
            )));
        }
        if c2.div_ceil(64) > MAX_GROUPS as usize || chunk.div_ceil(WPG) > MAX_GROUPS as usize {
            return Err(MalConvError::Gpu(format!(
                "{c2} convolution outputs or a {chunk}-window chunk exceed the dispatch grid"
            )));
        }
        let mut pooler = GpuPooler {
            embed: ctx.buffer((crate::TOKENS * cfg.embed * 4) as u64, "embed"),
            conv: ctx.buffer(conv_bytes, "conv"),
            bias: ctx.buffer((c2 * 4) as u64, "conv_bias"),
            bytes: ctx.buffer(in_bytes, "bytes"),
            lens: ctx.buffer((chunk * 4) as u64, "lens"),
            y: ctx.buffer(y_bytes, "y"),
            ranges: None,
            state: None,
            slots: 0,
            ctx,
            cfg,
            chunk,
        };
        pooler.load_weights(net)?;
        Ok(pooler)
    }

    /// Name and backend of the adapter in use.
    pub fn adapter(&self) -> String {
        self.ctx.adapter()
    }

    /// True on a CPU (software) adapter such as lavapipe: timings there are not GPU figures.
    pub fn is_software(&self) -> bool {
        self.ctx.is_software()
    }

    /// Windows per dispatch.
    pub fn chunk_windows(&self) -> usize {
        self.chunk
    }

    fn load_weights(&mut self, net: &MalConv) -> Result<(), MalConvError> {
        if net.config() != &self.cfg {
            return Err(MalConvError::Config(format!(
                "the GPU holds a {:?} network, not {:?}",
                self.cfg,
                net.config()
            )));
        }
        let w = net.weights();
        let mut embed = w.embed.clone();
        embed[PAD * self.cfg.embed..].fill(0.0);
        self.ctx.upload(&self.embed, &embed);
        self.ctx.upload(&self.conv, &w.conv);
        self.ctx.upload(&self.bias, &w.conv_bias);
        Ok(())
    }

    fn ensure_state(&mut self, files: usize) {
        if self.slots >= files && self.state.is_some() {
            return;
        }
        let n = (files * self.cfg.channels * 4) as u64;
        let b = |l: &str| self.ctx.buffer(n, l);
        self.state = Some([b("z"), b("at"), b("value"), b("gate")]);
        self.ranges = Some(self.ctx.buffer((files * 16) as u64, "ranges"));
        self.slots = files;
    }

    /// Pools every input (whole windows, the last one padded) with the loaded weights.
    pub fn pool_inputs(&mut self, inputs: &[&[u8]]) -> Result<Vec<Pooled>, MalConvError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (c, win) = (self.cfg.channels, self.cfg.window);
        let files = inputs.len();
        self.ensure_state(files);
        let (Some(state), Some(ranges)) = (self.state.clone(), self.ranges.clone()) else {
            return Err(MalConvError::Gpu("state buffers missing".into()));
        };
        self.ctx
            .upload(&state[0], &vec![f32::NEG_INFINITY; files * c]);
        self.ctx.upload(&state[1], &vec![0u32; files * c]);
        let windows: Vec<usize> = inputs
            .iter()
            .map(|b| b.len().div_ceil(win).max(1))
            .collect();
        if windows.iter().any(|&w| w > u32::MAX as usize) {
            return Err(MalConvError::Gpu("an input of over 2^32 windows".into()));
        }
        // Walk (file, window) in order, one chunk of windows per submission.
        let mut chunk_bytes: Vec<u8> = Vec::with_capacity(self.chunk * win);
        let mut lens: Vec<u32> = Vec::with_capacity(self.chunk);
        let mut table: Vec<u32> = Vec::new();
        let (mut f, mut w) = (0usize, 0usize);
        while f < files {
            chunk_bytes.clear();
            lens.clear();
            table.clear();
            while f < files && lens.len() < self.chunk {
                let take = (windows[f] - w).min(self.chunk - lens.len());
                let begin = lens.len() as u32;
                for wi in w..w + take {
                    let start = (wi * win).min(inputs[f].len());
                    let end = (start + win).min(inputs[f].len());
                    chunk_bytes.extend_from_slice(&inputs[f][start..end]);
                    chunk_bytes.resize(chunk_bytes.len() + win - (end - start), 0);
                    lens.push((end - start) as u32);
                }
                table.extend_from_slice(&[begin, lens.len() as u32, w as u32, f as u32]);
                w += take;
                if w == windows[f] {
                    f += 1;
                    w = 0;
                }
            }
            self.run_chunk(&chunk_bytes, &lens, &table, &state, &ranges)?;
        }
        let n = files * c;
        let z = self.ctx.read_f32(&state[0], n).map_err(gpu_err)?;
        let at = self.ctx.read_u32(&state[1], n).map_err(gpu_err)?;
        let value = self.ctx.read_f32(&state[2], n).map_err(gpu_err)?;
        let gate = self.ctx.read_f32(&state[3], n).map_err(gpu_err)?;
        Ok((0..files)
            .map(|i| {
                let r = i * c..(i + 1) * c;
                Pooled {
                    z: z[r.clone()].to_vec(),
                    at: at[r.clone()].iter().map(|&a| a as u64).collect(),
                    value: value[r.clone()].to_vec(),
                    gate: gate[r].to_vec(),
                    windows: windows[i] as u64,
                }
            })
            .collect())
    }

    fn run_chunk(
        &self,
        bytes: &[u8],
        lens: &[u32],
        table: &[u32],
        state: &[Buf; 4],
        ranges: &Buf,
    ) -> Result<(), MalConvError> {
        let words: Vec<u32> = bytes
            .chunks(4)
            .map(|b| {
                let mut w = [0u8; 4];
                w[..b.len()].copy_from_slice(b);
                u32::from_le_bytes(w)
            })
            .collect();
        self.ctx.upload(&self.bytes, &words);
        self.ctx.upload(&self.lens, lens);
        self.ctx.upload(ranges, table);
        let (c, e) = (self.cfg.channels, self.cfg.embed);
        let c2 = 2 * c;
        let tp = (XS / e).max(1);
        let mut rec = self.ctx.recorder();
        let args: [Arg; 5] = [
            lens.len().into(),
            c2.into(),
            self.cfg.window.into(),
            e.into(),
            tp.into(),
        ];
        rec.dispatch(
            K::Conv,
            &args,
            &[
                &self.bytes,
                &self.lens,
                &self.embed,
                &self.conv,
                &self.bias,
                &self.y,
            ],
            (lens.len().div_ceil(WPG) as u32, c2.div_ceil(64) as u32),
        );
        let files = table.len() / 4;
        rec.dispatch_1d(
            K::Pool,
            &[files.into(), c.into()],
            &[ranges, &self.y, &state[0], &state[1], &state[2], &state[3]],
            files * c,
        );
        rec.submit(&self.ctx).map_err(gpu_err)
    }
}

impl BatchPooler for GpuPooler {
    fn load(&mut self, net: &MalConv) -> Result<(), MalConvError> {
        self.load_weights(net)
    }

    fn pool(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Pooled>, MalConvError> {
        let refs: Vec<&[u8]> = inputs.iter().map(|v| v.as_slice()).collect();
        self.pool_inputs(&refs)
    }
}

#[cfg(test)]
mod tests;
