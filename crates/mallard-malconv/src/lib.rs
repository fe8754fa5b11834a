//! MalConv (Raff et al., 2018): raw bytes -> 8-wide embedding -> gated 1-D convolution
//! (kernel = stride = one window) -> global max pooling -> dense ReLU -> sigmoid.
//!
//! Pooling is done chunk by chunk as MalConv2 (Raff et al., 2021) does, keeping only the
//! running maximum of every channel and where it was, so a file of any length is scored in
//! the memory of one chunk. Max pooling passes gradient to one window per channel, so
//! training recomputes only those windows (MalConv2's trick): a training step costs about
//! one forward pass.
//!
//! The first layer is an sgemm (windows x window*embed) . (window*embed x 2 channels); its
//! cost per byte is `embed * 2 * channels` multiply-adds, which sets the default width (see
//! docs/decisions.md, "MalConv").

// Index loops over channels read as the maths does.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "wgpu")]
pub mod gpu;
mod train;

pub use train::{
    predict_rows, predict_rows_pooled, train, train_pooled, BatchPooler, Source, TrainConfig,
};

use mallard_rand::SplitMix64;
use std::io::Read;

/// The token of positions past the end of the file (its embedding is zero, never trained).
pub const PAD: usize = 256;
/// Embedding rows: 256 byte values and [`PAD`].
pub const TOKENS: usize = 257;
/// Windows per sgemm (64 windows of 512 bytes: 32 KB of input, 1 MB of activations).
pub const CHUNK_WINDOWS: usize = 64;

/// Errors from building, reading or training a network.
#[derive(Debug, thiserror::Error)]
pub enum MalConvError {
    #[error("MalConv settings: {0}")]
    Config(String),
    #[error("tensor `{name}`: expected {expected} values, got {got}")]
    Tensor {
        name: String,
        expected: usize,
        got: usize,
    },
    #[error("reading input: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Train(String),
    #[error("GPU: {0}")]
    Gpu(String),
}

/// Layer sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Embedding width per byte.
    pub embed: usize,
    /// Gated channels (the convolution has twice as many outputs: values and gates).
    pub channels: usize,
    /// Convolution kernel and stride, in bytes.
    pub window: usize,
    /// Units of the dense layer after pooling.
    pub hidden: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            embed: 8,
            channels: 64,
            window: 512,
            hidden: 64,
        }
    }
}

impl Config {
    /// Values in one window's input row.
    pub fn k(&self) -> usize {
        self.window * self.embed
    }

    /// Sizes within caps, so a model file cannot ask for gigabytes.
    pub fn check(&self) -> Result<(), MalConvError> {
        let within = |name: &str, v: usize, max: usize| {
            if v == 0 || v > max {
                Err(MalConvError::Config(format!(
                    "{name} {v} is not in 1..={max}"
                )))
            } else {
                Ok(())
            }
        };
        within("embed", self.embed, 64)?;
        within("channels", self.channels, 1024)?;
        within("window", self.window, 65536)?;
        within("hidden", self.hidden, 4096)?;
        if self.k() * 2 * self.channels > 1 << 26 {
            return Err(MalConvError::Config(format!(
                "a convolution of {} x {} weights is over the cap of 2^26",
                self.k(),
                2 * self.channels
            )));
        }
        Ok(())
    }
}

/// A named tensor: name, shape, row-major values.
pub type Tensor = (String, Vec<usize>, Vec<f32>);

/// Weights (or gradients of the same shapes).
#[derive(Clone, Debug, PartialEq)]
pub struct Weights {
    /// `[TOKENS, embed]`; the [`PAD`] row stays zero.
    pub embed: Vec<f32>,
    /// `[window * embed, 2 * channels]`: value channels first, then gates.
    pub conv: Vec<f32>,
    /// `[2 * channels]`.
    pub conv_bias: Vec<f32>,
    /// `[channels, hidden]`.
    pub dense: Vec<f32>,
    /// `[hidden]`.
    pub dense_bias: Vec<f32>,
    /// `[hidden]`.
    pub out: Vec<f32>,
    /// `[1]`.
    pub out_bias: Vec<f32>,
}

impl Weights {
    fn zeros(c: &Config) -> Self {
        Weights {
            embed: vec![0.0; TOKENS * c.embed],
            conv: vec![0.0; c.k() * 2 * c.channels],
            conv_bias: vec![0.0; 2 * c.channels],
            dense: vec![0.0; c.channels * c.hidden],
            dense_bias: vec![0.0; c.hidden],
            out: vec![0.0; c.hidden],
            out_bias: vec![0.0; 1],
        }
    }

    fn shapes(c: &Config) -> [(&'static str, Vec<usize>); 7] {
        [
            ("embed", vec![TOKENS, c.embed]),
            ("conv", vec![c.k(), 2 * c.channels]),
            ("conv_bias", vec![2 * c.channels]),
            ("dense", vec![c.channels, c.hidden]),
            ("dense_bias", vec![c.hidden]),
            ("out", vec![c.hidden]),
            ("out_bias", vec![1]),
        ]
    }

    pub fn slices(&self) -> Vec<&[f32]> {
        vec![
            &self.embed,
            &self.conv,
            &self.conv_bias,
            &self.dense,
            &self.dense_bias,
            &self.out,
            &self.out_bias,
        ]
    }

    pub fn slices_mut(&mut self) -> Vec<&mut [f32]> {
        vec![
            &mut self.embed,
            &mut self.conv,
            &mut self.conv_bias,
            &mut self.dense,
            &mut self.dense_bias,
            &mut self.out,
            &mut self.out_bias,
        ]
    }

    fn fill_zero(&mut self) {
        for s in self.slices_mut() {
            s.fill(0.0);
        }
    }

    fn add(&mut self, other: &Weights) {
        for (a, b) in self.slices_mut().into_iter().zip(other.slices()) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }
}

/// The pooled channels of one input: every channel's largest gated value, the window it
/// came from and its two pre-activations there (value, gate).
#[derive(Clone, Debug, PartialEq)]
pub struct Pooled {
    pub z: Vec<f32>,
    pub at: Vec<u64>,
    value: Vec<f32>,
    gate: Vec<f32>,
    /// Windows read (at least one: an empty input is one window of padding).
    pub windows: u64,
}

impl Pooled {
    fn new(channels: usize) -> Self {
        Pooled {
            z: vec![f32::NEG_INFINITY; channels],
            at: vec![0; channels],
            value: vec![0.0; channels],
            gate: vec![0.0; channels],
            windows: 0,
        }
    }
}

/// Buffers reused between chunks (and files) by one thread.
#[derive(Default)]
pub struct Scratch {
    x: Vec<f32>,
    y: Vec<f32>,
}

impl Scratch {
    /// Bytes held: bounded by one chunk, whatever the input's length.
    pub fn bytes(&self) -> usize {
        (self.x.capacity() + self.y.capacity()) * 4
    }
}

/// A byte range that drove the score: gradient x activation of the pooled channels whose
/// maximum lies in it, summed (positive: toward malicious).
#[derive(Clone, Debug, PartialEq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
    pub weight: f32,
    /// Channels whose maximum lies in this window.
    pub channels: usize,
}

/// A MalConv network.
#[derive(Clone, Debug, PartialEq)]
pub struct MalConv {
    cfg: Config,
    w: Weights,
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl MalConv {
    /// A new network: Glorot-uniform convolution and dense layers, embedding uniform in
    /// +-0.05 (Keras' defaults), zero biases.
    pub fn new(cfg: Config, seed: u64) -> Result<Self, MalConvError> {
        cfg.check()?;
        let mut rng = SplitMix64::new(seed);
        let mut w = Weights::zeros(&cfg);
        let mut uniform = |v: &mut [f32], limit: f64| {
            for x in v.iter_mut() {
                *x = rng.range(-limit, limit) as f32;
            }
        };
        uniform(&mut w.embed[..256 * cfg.embed], 0.05);
        let glorot = |fan_in: usize, fan_out: usize| (6.0 / (fan_in + fan_out) as f64).sqrt();
        uniform(&mut w.conv, glorot(cfg.k(), 2 * cfg.channels));
        uniform(&mut w.dense, glorot(cfg.channels, cfg.hidden));
        uniform(&mut w.out, glorot(cfg.hidden, 1));
        Ok(MalConv { cfg, w })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn weights(&self) -> &Weights {
        &self.w
    }

    /// Every weight tensor, named, for a model file.
    pub fn tensors(&self) -> Vec<Tensor> {
        Weights::shapes(&self.cfg)
            .into_iter()
            .zip(self.w.slices())
            .map(|((n, shape), v)| (n.to_string(), shape, v.to_vec()))
            .collect()
    }

    /// Rebuilds a network from [`MalConv::tensors`]; sizes are checked before use.
    pub fn from_tensors(cfg: Config, tensors: &[Tensor]) -> Result<Self, MalConvError> {
        cfg.check()?;
        let mut w = Weights::zeros(&cfg);
        for ((name, shape), dst) in Weights::shapes(&cfg).into_iter().zip(w.slices_mut()) {
            let expected: usize = shape.iter().product();
            let (_, _, v) =
                tensors
                    .iter()
                    .find(|t| t.0 == name)
                    .ok_or_else(|| MalConvError::Tensor {
                        name: name.to_string(),
                        expected,
                        got: 0,
                    })?;
            if v.len() != expected {
                return Err(MalConvError::Tensor {
                    name: name.to_string(),
                    expected,
                    got: v.len(),
                });
            }
            if v.iter().any(|x| !x.is_finite()) {
                return Err(MalConvError::Config(format!(
                    "tensor `{name}` holds a non-number"
                )));
            }
            dst.copy_from_slice(v);
        }
        w.embed[PAD * cfg.embed..].fill(0.0);
        Ok(MalConv { cfg, w })
    }

    /// Pools `bytes` (whole windows, the last one padded), the first being window `first`.
    fn pool_chunk(&self, bytes: &[u8], first: u64, p: &mut Pooled, s: &mut Scratch) {
        let (e, win, c) = (self.cfg.embed, self.cfg.window, self.cfg.channels);
        let k = self.cfg.k();
        let m = bytes.len().div_ceil(win).max(1);
        s.x.clear();
        s.x.resize(m * k, 0.0);
        for (i, row) in s.x.chunks_exact_mut(k).enumerate() {
            let start = (i * win).min(bytes.len());
            let end = (start + win).min(bytes.len());
            for (dst, &b) in row.chunks_exact_mut(e).zip(&bytes[start..end]) {
                dst.copy_from_slice(&self.w.embed[b as usize * e..(b as usize + 1) * e]);
            }
        }
        s.y.clear();
        s.y.resize(m * 2 * c, 0.0);
        // SAFETY: x is m x k, conv is k x 2c and y is m x 2c, all row-major and sized above.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                2 * c,
                1.0,
                s.x.as_ptr(),
                k as isize,
                1,
                self.w.conv.as_ptr(),
                (2 * c) as isize,
                1,
                0.0,
                s.y.as_mut_ptr(),
                (2 * c) as isize,
                1,
            );
        }
        let bias = &self.w.conv_bias;
        for (i, row) in s.y.chunks_exact(2 * c).enumerate() {
            let window = first + i as u64;
            for ch in 0..c {
                let a = row[ch] + bias[ch];
                let g = row[c + ch] + bias[c + ch];
                let z = a * sigmoid(g);
                // Strictly greater: the first window wins ties, in any chunking.
                if z > p.z[ch] {
                    p.z[ch] = z;
                    p.at[ch] = window;
                    p.value[ch] = a;
                    p.gate[ch] = g;
                }
            }
        }
        p.windows = first + m as u64;
    }

    /// Pools a whole input held in memory, chunk by chunk.
    pub fn pool_bytes(&self, bytes: &[u8], s: &mut Scratch) -> Pooled {
        let mut p = Pooled::new(self.cfg.channels);
        let step = CHUNK_WINDOWS * self.cfg.window;
        if bytes.is_empty() {
            self.pool_chunk(&[], 0, &mut p, s);
        }
        for (i, chunk) in bytes.chunks(step).enumerate() {
            self.pool_chunk(chunk, (i * CHUNK_WINDOWS) as u64, &mut p, s);
        }
        p
    }

    /// Pools at most `max_bytes` of a stream, holding one chunk at a time: memory does not
    /// grow with the input's length. The same result as [`MalConv::pool_bytes`] on the
    /// same bytes.
    pub fn pool_reader<R: Read>(
        &self,
        r: R,
        max_bytes: u64,
        s: &mut Scratch,
    ) -> Result<Pooled, MalConvError> {
        let mut r = r.take(max_bytes);
        let mut p = Pooled::new(self.cfg.channels);
        let step = CHUNK_WINDOWS * self.cfg.window;
        let mut buf = vec![0u8; step];
        let mut first = 0u64;
        loop {
            let mut filled = 0;
            while filled < step {
                match r.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if filled > 0 || first == 0 {
                self.pool_chunk(&buf[..filled], first, &mut p, s);
            }
            if filled < step {
                return Ok(p);
            }
            first += CHUNK_WINDOWS as u64;
        }
    }

    /// Dense layer after pooling: (hidden activations, logit).
    fn head(&self, z: &[f32]) -> (Vec<f32>, f32) {
        let h_n = self.cfg.hidden;
        let mut h = self.w.dense_bias.clone();
        for (zc, row) in z.iter().zip(self.w.dense.chunks_exact(h_n)) {
            for (hj, wj) in h.iter_mut().zip(row) {
                *hj += zc * wj;
            }
        }
        for hj in h.iter_mut() {
            *hj = hj.max(0.0);
        }
        let logit = self.w.out_bias[0] + h.iter().zip(&self.w.out).map(|(a, b)| a * b).sum::<f32>();
        (h, logit)
    }

    /// The logit of pooled channels.
    pub fn logit(&self, p: &Pooled) -> f32 {
        self.head(&p.z).1
    }

    /// P(malicious) of pooled channels.
    pub fn probability(&self, p: &Pooled) -> f32 {
        sigmoid(self.logit(p))
    }

    /// P(malicious) of an input held in memory.
    pub fn score_bytes(&self, bytes: &[u8], s: &mut Scratch) -> f32 {
        self.probability(&self.pool_bytes(bytes, s))
    }

    /// d logit / d z for every pooled channel.
    fn dlogit_dz(&self, z: &[f32]) -> Vec<f32> {
        let h_n = self.cfg.hidden;
        let (h, _) = self.head(z);
        let dh: Vec<f32> = (0..h_n)
            .map(|j| if h[j] > 0.0 { self.w.out[j] } else { 0.0 })
            .collect();
        self.w
            .dense
            .chunks_exact(h_n)
            .map(|row| row.iter().zip(&dh).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// The windows that drove the logit, strongest (by absolute weight) first: each
    /// channel's gradient x activation at its maximum, summed per window.
    pub fn attributions(&self, p: &Pooled) -> Vec<ByteRange> {
        let dz = self.dlogit_dz(&p.z);
        let mut by_window: std::collections::BTreeMap<u64, (f32, usize)> = Default::default();
        for ch in 0..self.cfg.channels {
            let e = by_window.entry(p.at[ch]).or_default();
            e.0 += dz[ch] * p.z[ch];
            e.1 += 1;
        }
        let win = self.cfg.window as u64;
        let mut out: Vec<ByteRange> = by_window
            .into_iter()
            .map(|(w, (weight, channels))| ByteRange {
                start: w * win,
                end: (w + 1) * win,
                weight,
                channels,
            })
            .collect();
        out.sort_by(|a, b| {
            b.weight
                .abs()
                .total_cmp(&a.weight.abs())
                .then(a.start.cmp(&b.start))
        });
        out
    }

    /// Adds the gradient of `weight * binary cross-entropy(target)` on one input to `g`
    /// and returns that loss.
    pub fn accumulate_grad(
        &self,
        bytes: &[u8],
        target: f32,
        weight: f32,
        g: &mut Weights,
        s: &mut Scratch,
    ) -> f32 {
        let p = self.pool_bytes(bytes, s);
        self.accumulate_grad_pooled(bytes, &p, target, weight, g)
    }

    /// [`MalConv::accumulate_grad`] with `bytes` already pooled (by this network's
    /// current weights, on any backend): the backward pass reads only each channel's
    /// winning window.
    pub fn accumulate_grad_pooled(
        &self,
        bytes: &[u8],
        p: &Pooled,
        target: f32,
        weight: f32,
        g: &mut Weights,
    ) -> f32 {
        let (e, win, c, h_n) = (
            self.cfg.embed,
            self.cfg.window,
            self.cfg.channels,
            self.cfg.hidden,
        );
        let (h, logit) = self.head(&p.z);
        // Stable: softplus(l) - t*l.
        let loss = weight * (logit.max(0.0) + (-logit.abs()).exp().ln_1p() - target * logit);
        let dl = weight * (sigmoid(logit) - target);
        g.out_bias[0] += dl;
        let mut dh = vec![0.0f32; h_n];
        for j in 0..h_n {
            g.out[j] += dl * h[j];
            if h[j] > 0.0 {
                dh[j] = dl * self.w.out[j];
            }
        }
        let mut dz = vec![0.0f32; c];
        for ch in 0..c {
            let row = ch * h_n..(ch + 1) * h_n;
            for ((gd, wd), dhj) in g.dense[row.clone()]
                .iter_mut()
                .zip(&self.w.dense[row])
                .zip(&dh)
            {
                *gd += p.z[ch] * dhj;
                dz[ch] += wd * dhj;
            }
        }
        for (gb, dhj) in g.dense_bias.iter_mut().zip(&dh) {
            *gb += dhj;
        }
        let c2 = 2 * c;
        for ch in 0..c {
            let sg = sigmoid(p.gate[ch]);
            let da = dz[ch] * sg;
            let dg = dz[ch] * p.value[ch] * sg * (1.0 - sg);
            if da == 0.0 && dg == 0.0 {
                continue;
            }
            g.conv_bias[ch] += da;
            g.conv_bias[c + ch] += dg;
            let start = (p.at[ch] as usize).saturating_mul(win);
            for pos in 0..win {
                let Some(&b) = bytes.get(start.saturating_add(pos)) else {
                    break; // padding: zero embedding, nothing to learn
                };
                let b = b as usize;
                for d in 0..e {
                    let kk = (pos * e + d) * c2;
                    let x = self.w.embed[b * e + d];
                    g.conv[kk + ch] += x * da;
                    g.conv[kk + c + ch] += x * dg;
                    g.embed[b * e + d] += self.w.conv[kk + ch] * da + self.w.conv[kk + c + ch] * dg;
                }
            }
        }
        loss
    }

    pub(crate) fn weights_mut(&mut self) -> &mut Weights {
        &mut self.w
    }

    pub(crate) fn zero_grads(&self) -> Weights {
        Weights::zeros(&self.cfg)
    }
}

pub(crate) fn fill_zero(w: &mut Weights) {
    w.fill_zero()
}

pub(crate) fn add_into(a: &mut Weights, b: &Weights) {
    a.add(b)
}

#[cfg(test)]
mod tests;
