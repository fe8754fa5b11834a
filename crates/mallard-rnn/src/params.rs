//! Network configuration, parameter storage (Keras layouts) and Keras-style initialisation.

use crate::real::Real;
use crate::rng::SplitMix64;
use crate::RnnError;

/// Recurrent cell type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Keras LSTM (gates i, f, c, o; sigmoid recurrent activation).
    Lstm,
    /// Keras GRU with `reset_after=True` (gates z, r, h; two bias rows).
    Gru,
    /// Bidirectional LSTM; the head sees `[forward_last, backward_last]`.
    BiLstm,
}

/// Output layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// One sigmoid unit (binary classification).
    Sigmoid,
    /// Softmax over this many classes (at least 2).
    Softmax(usize),
}

/// What the dense layer sees from the recurrent layer (per direction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Head {
    /// State after the row's last token (Keras `LSTM(...)` with `mask_zero=True`).
    #[default]
    Last,
    /// Mean of the hidden states over the row's tokens (zeros for an empty row).
    Mean,
    /// Element-wise max of the hidden states over the row's tokens (zeros for an empty row).
    /// Often better for API-call traces, where one telling call may sit anywhere.
    Max,
}

/// Network shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Number of embedding rows; tokens must be `< vocab`.
    pub vocab: usize,
    /// Embedding width.
    pub embed: usize,
    /// Recurrent units (per direction for `BiLstm`).
    pub hidden: usize,
    pub cell: Cell,
    pub output: Output,
    pub head: Head,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Lstm,
    Gru,
}

impl Kind {
    pub(crate) fn gates(self) -> usize {
        match self {
            Kind::Lstm => 4,
            Kind::Gru => 3,
        }
    }
}

impl NetConfig {
    pub(crate) fn kind(&self) -> Kind {
        match self.cell {
            Cell::Gru => Kind::Gru,
            Cell::Lstm | Cell::BiLstm => Kind::Lstm,
        }
    }
    pub(crate) fn dirs(&self) -> usize {
        if self.cell == Cell::BiLstm {
            2
        } else {
            1
        }
    }
    /// Gate width G (4H or 3H).
    pub(crate) fn g(&self) -> usize {
        self.kind().gates() * self.hidden
    }
    /// Width of the recurrent output fed to the dense layer.
    pub(crate) fn hout(&self) -> usize {
        self.dirs() * self.hidden
    }
    /// Number of outputs per row.
    pub fn n_out(&self) -> usize {
        match self.output {
            Output::Sigmoid => 1,
            Output::Softmax(k) => k,
        }
    }
    /// Number of classes a label may take.
    pub fn n_classes(&self) -> usize {
        match self.output {
            Output::Sigmoid => 2,
            Output::Softmax(k) => k,
        }
    }
    /// Bias length per direction (GRU keeps input and recurrent biases).
    pub(crate) fn bias_len(&self) -> usize {
        match self.kind() {
            Kind::Lstm => self.g(),
            Kind::Gru => 2 * self.g(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), RnnError> {
        if self.vocab == 0 || self.embed == 0 || self.hidden == 0 {
            return Err(RnnError::Config(
                "vocab, embed and hidden must be positive".into(),
            ));
        }
        if let Output::Softmax(k) = self.output {
            if k < 2 {
                return Err(RnnError::Config("softmax needs at least 2 classes".into()));
            }
        }
        // Sizes come from model files too: every product must fit before anything is
        // allocated or indexed with it.
        let fits = (|| {
            let g = self.kind().gates().checked_mul(self.hidden)?;
            let hout = self.dirs().checked_mul(self.hidden)?;
            let bias = g.checked_mul(2)?;
            let mut total = self.vocab.checked_mul(self.embed)?;
            for part in [
                self.embed.checked_mul(g)?,
                self.hidden.checked_mul(g)?,
                bias,
            ] {
                total = total.checked_add(part.checked_mul(self.dirs())?)?;
            }
            total = total.checked_add(hout.checked_mul(self.n_out())?)?;
            total.checked_add(self.n_out())
        })();
        if fits.is_none() {
            return Err(RnnError::Config(format!(
                "vocab {} x embed {} x hidden {} overflows",
                self.vocab, self.embed, self.hidden
            )));
        }
        Ok(())
    }

    /// Keras names and shapes in the canonical order used by [`Params::slices`].
    pub(crate) fn tensor_specs(&self) -> Vec<(String, Vec<usize>)> {
        let (h, g) = (self.hidden, self.g());
        let mut v = vec![(
            "embedding/embeddings".to_string(),
            vec![self.vocab, self.embed],
        )];
        let prefixes: Vec<&str> = match self.cell {
            Cell::Lstm => vec!["rnn/lstm_cell/"],
            Cell::Gru => vec!["rnn/gru_cell/"],
            Cell::BiLstm => vec![
                "rnn/forward_lstm/lstm_cell/",
                "rnn/backward_lstm/lstm_cell/",
            ],
        };
        for p in prefixes {
            v.push((format!("{p}kernel"), vec![self.embed, g]));
            v.push((format!("{p}recurrent_kernel"), vec![h, g]));
            let bshape = match self.kind() {
                Kind::Lstm => vec![g],
                Kind::Gru => vec![2, g],
            };
            v.push((format!("{p}bias"), bshape));
        }
        v.push(("dense/kernel".to_string(), vec![self.hout(), self.n_out()]));
        v.push(("dense/bias".to_string(), vec![self.n_out()]));
        v
    }
}

/// One recurrent direction: kernel W [E, G], recurrent kernel U [H, G], bias.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DirParams<T> {
    pub w: Vec<T>,
    pub u: Vec<T>,
    /// LSTM: [G]; GRU: [2, G] (input bias then recurrent bias).
    pub b: Vec<T>,
}

/// All trainable tensors, in Keras layouts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Params<T> {
    pub emb: Vec<T>,
    pub dirs: Vec<DirParams<T>>,
    pub dense_w: Vec<T>,
    pub dense_b: Vec<T>,
}

impl<T: Real> Params<T> {
    pub(crate) fn zeros(cfg: &NetConfig) -> Self {
        let (h, g, e) = (cfg.hidden, cfg.g(), cfg.embed);
        Params {
            emb: vec![T::ZERO; cfg.vocab * e],
            dirs: (0..cfg.dirs())
                .map(|_| DirParams {
                    w: vec![T::ZERO; e * g],
                    u: vec![T::ZERO; h * g],
                    b: vec![T::ZERO; cfg.bias_len()],
                })
                .collect(),
            dense_w: vec![T::ZERO; cfg.hout() * cfg.n_out()],
            dense_b: vec![T::ZERO; cfg.n_out()],
        }
    }

    pub(crate) fn slices(&self) -> Vec<&[T]> {
        let mut v: Vec<&[T]> = vec![&self.emb];
        for d in &self.dirs {
            v.push(&d.w);
            v.push(&d.u);
            v.push(&d.b);
        }
        v.push(&self.dense_w);
        v.push(&self.dense_b);
        v
    }

    pub(crate) fn slices_mut(&mut self) -> Vec<&mut [T]> {
        let mut v: Vec<&mut [T]> = vec![&mut self.emb];
        for d in &mut self.dirs {
            v.push(&mut d.w);
            v.push(&mut d.u);
            v.push(&mut d.b);
        }
        v.push(&mut self.dense_w);
        v.push(&mut self.dense_b);
        v
    }

    #[cfg(test)]
    pub(crate) fn map<U: Real>(&self, f: impl Fn(T) -> U) -> Params<U> {
        let m = |v: &Vec<T>| v.iter().map(|&x| f(x)).collect::<Vec<U>>();
        Params {
            emb: m(&self.emb),
            dirs: self
                .dirs
                .iter()
                .map(|d| DirParams {
                    w: m(&d.w),
                    u: m(&d.u),
                    b: m(&d.b),
                })
                .collect(),
            dense_w: m(&self.dense_w),
            dense_b: m(&self.dense_b),
        }
    }
}

fn glorot(rng: &mut SplitMix64, fan_in: usize, fan_out: usize, n: usize) -> Vec<f32> {
    let limit = (6.0 / (fan_in + fan_out) as f64).sqrt();
    (0..n).map(|_| rng.range(-limit, limit) as f32).collect()
}

/// Keras `Orthogonal` for a [rows, cols] matrix with rows <= cols: orthonormal rows.
fn orthogonal(rng: &mut SplitMix64, rows: usize, cols: usize) -> Vec<f32> {
    let mut q: Vec<Vec<f64>> = Vec::with_capacity(rows);
    while q.len() < rows {
        let mut v: Vec<f64> = (0..cols).map(|_| rng.normal()).collect();
        // Modified Gram-Schmidt, applied twice for numerical orthogonality.
        for _ in 0..2 {
            for u in &q {
                let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                for (x, y) in v.iter_mut().zip(u) {
                    *x -= dot * y;
                }
            }
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            v.iter_mut().for_each(|x| *x /= norm);
            q.push(v);
        }
    }
    q.into_iter().flatten().map(|x| x as f32).collect()
}

/// Keras default initialisers, drawn from SplitMix64(seed) in tensor order.
pub(crate) fn init_params(cfg: &NetConfig, seed: u64) -> Params<f32> {
    let mut rng = SplitMix64::new(seed);
    let mut p = Params::<f32>::zeros(cfg);
    let (h, g, e) = (cfg.hidden, cfg.g(), cfg.embed);
    p.emb = (0..cfg.vocab * e)
        .map(|_| rng.range(-0.05, 0.05) as f32)
        .collect();
    for d in &mut p.dirs {
        d.w = glorot(&mut rng, e, g, e * g);
        d.u = orthogonal(&mut rng, h, g);
        if cfg.kind() == Kind::Lstm {
            // unit_forget_bias: the forget block (second of i, f, c, o) starts at 1.
            d.b[h..2 * h].iter_mut().for_each(|x| *x = 1.0);
        }
    }
    p.dense_w = glorot(&mut rng, cfg.hout(), cfg.n_out(), cfg.hout() * cfg.n_out());
    p
}
