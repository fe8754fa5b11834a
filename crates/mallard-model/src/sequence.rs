//! Recurrent classifiers over tokenized API-call sequences.

use crate::{scoring_view, Input, Meta, Model, ModelError, ModelFile, NameCounts, Reason, Tensor};
use mallard_rnn::{Cell, Head, Net, NetConfig, Output};
use mallard_tokenizer::{Side, Tokenizer};
use serde::{Deserialize, Serialize};

/// How a token sequence is cut and fed to the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeqInput {
    /// Longest sequence the network sees.
    pub maxlen: usize,
    /// Which end a longer sequence loses (`pre` keeps the end, as Keras does).
    pub truncating: Side,
    /// Pre-pad every row with 0 to `maxlen` and run the net over the padding, as the
    /// published Keras pipeline (no masking) does. Off: only real tokens are processed.
    pub pad_to_maxlen: bool,
}

impl SeqInput {
    pub fn prepare(&self, ids: &[u32]) -> Vec<u32> {
        let t = mallard_tokenizer::truncate(ids, self.maxlen, self.truncating);
        if self.pad_to_maxlen && t.len() < self.maxlen {
            let mut row = vec![0; self.maxlen - t.len()];
            row.extend_from_slice(t);
            row
        } else {
            t.to_vec()
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RnnConfig {
    pub embed: usize,
    pub hidden: usize,
    /// `last`, `mean` or `max`: what the dense layer sees of the hidden states.
    #[serde(default = "last")]
    pub head: String,
    pub input: SeqInput,
}

fn last() -> String {
    "last".into()
}

pub(crate) fn head_of(name: &str) -> Option<Head> {
    match name {
        "last" => Some(Head::Last),
        "mean" => Some(Head::Mean),
        "max" => Some(Head::Max),
        _ => None,
    }
}

pub(crate) fn head_name(h: Head) -> &'static str {
    match h {
        Head::Last => "last",
        Head::Mean => "mean",
        Head::Max => "max",
    }
}

/// Embedding -> LSTM | GRU | BiLSTM -> dense, with its tokenizer.
pub struct RnnModel {
    meta: Meta,
    tokenizer: Tokenizer,
    input: SeqInput,
    net: Net,
}

pub(crate) fn cell_of(kind: &str) -> Option<Cell> {
    match kind {
        "lstm" => Some(Cell::Lstm),
        "gru" => Some(Cell::Gru),
        "bilstm" => Some(Cell::BiLstm),
        _ => None,
    }
}

pub(crate) fn output_for(labels: usize) -> Output {
    if labels == 2 {
        Output::Sigmoid
    } else {
        Output::Softmax(labels)
    }
}

fn compute(e: mallard_rnn::RnnError) -> ModelError {
    ModelError::Compute(e.to_string())
}

impl RnnModel {
    pub fn new(meta: Meta, tokenizer: Tokenizer, input: SeqInput, net: Net) -> Self {
        RnnModel {
            meta,
            tokenizer,
            input,
            net,
        }
    }

    pub(crate) fn from_file(file: ModelFile, caps: &crate::Caps) -> Result<Self, ModelError> {
        let meta = file.meta;
        let cell = cell_of(&meta.kind).ok_or_else(|| ModelError::UnknownKind(meta.kind.clone()))?;
        let cfg: RnnConfig = serde_json::from_value(meta.config.clone())
            .map_err(|e| ModelError::Corrupt(format!("{} config: {e}", meta.kind)))?;
        // Rows are padded to maxlen and explanations cost maxlen squared.
        if cfg.input.maxlen == 0 || cfg.input.maxlen > caps.max_seq_len {
            return Err(ModelError::Corrupt(format!(
                "maxlen {} is not between 1 and the cap of {} (max_seq_len)",
                cfg.input.maxlen, caps.max_seq_len
            )));
        }
        let tokenizer = meta
            .tokenizer
            .clone()
            .ok_or_else(|| ModelError::Corrupt("sequence model without tokenizer".into()))?;
        if meta.labels.len() < 2 {
            return Err(ModelError::Corrupt(
                "a classifier needs at least two labels".into(),
            ));
        }
        let ncfg = NetConfig {
            vocab: tokenizer.vocab_size(),
            embed: cfg.embed,
            hidden: cfg.hidden,
            cell,
            output: output_for(meta.labels.len()),
            head: head_of(&cfg.head)
                .ok_or_else(|| ModelError::Corrupt(format!("unknown head {:?}", cfg.head)))?,
        };
        let tensors: Vec<_> = file
            .tensors
            .into_iter()
            .map(|t| (t.name, t.shape, t.data))
            .collect();
        let net =
            Net::from_tensors(ncfg, &tensors).map_err(|e| ModelError::Corrupt(e.to_string()))?;
        Ok(RnnModel {
            meta,
            tokenizer,
            input: cfg.input,
            net,
        })
    }

    fn ids(&self, apis: &[String]) -> Vec<u32> {
        self.input.prepare(&self.encode(apis))
    }

    /// Token ids of the sequence the model scores (names mapped into its vocabulary).
    fn encode(&self, apis: &[String]) -> Vec<u32> {
        let view = scoring_view(&self.meta, apis, |a| self.tokenizer.knows(a));
        self.tokenizer.encode(&view)
    }

    fn probs(&self, rows: &[&[u32]]) -> Result<Vec<f32>, ModelError> {
        let p = self.net.predict(rows).map_err(compute)?;
        Ok(to_class_probs(&p, self.meta.labels.len()))
    }
}

/// Sigmoid nets give P(label 1); expand to [P(0), P(1)] rows.
pub(crate) fn to_class_probs(p: &[f32], labels: usize) -> Vec<f32> {
    if labels == 2 {
        p.iter().flat_map(|&q| [1.0 - q, q]).collect()
    } else {
        p.to_vec()
    }
}

/// The class whose probability a reason's weight moves: the malicious one for binary
/// models, else the predicted class.
pub(crate) fn explained_class(meta: &Meta, probs: &[f32]) -> usize {
    meta.positive.unwrap_or_else(|| argmax(probs))
}

pub(crate) fn argmax(p: &[f32]) -> usize {
    (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b })
}

impl Model for RnnModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let mut rows = Vec::with_capacity(inputs.len());
        for i in inputs {
            rows.push(self.ids(i.apis()?));
        }
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        self.probs(&refs)
    }

    /// Occlusion by API: the score change when every call of one API is removed.
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        let apis = input.apis()?;
        let tokens = mallard_tokenizer::truncate(
            &self.encode(apis),
            self.input.maxlen,
            self.input.truncating,
        )
        .to_vec();
        let mut distinct: Vec<u32> = tokens.clone();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.retain(|&t| t != 0);
        let mut rows = vec![self.input.prepare(&tokens)];
        for &d in &distinct {
            let without: Vec<u32> = tokens.iter().copied().filter(|&t| t != d).collect();
            rows.push(self.input.prepare(&without));
        }
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let p = self.probs(&refs)?;
        let k = self.meta.labels.len();
        let class = explained_class(&self.meta, &p[..k]);
        let mut reasons: Vec<Reason> = distinct
            .iter()
            .enumerate()
            .map(|(i, &d)| Reason {
                kind: "api".into(),
                name: self.tokenizer.word(d).unwrap_or("?").to_string(),
                weight: p[class] - p[(i + 1) * k + class],
                feature: None,
            })
            .collect();
        reasons.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        reasons.truncate(top);
        Ok(reasons)
    }

    fn known_apis(&self, apis: &[String]) -> Option<(usize, usize)> {
        Some(crate::count_known(apis, |a| self.tokenizer.knows(a)))
    }

    fn api_names(&self, apis: &[String]) -> Option<NameCounts> {
        Some(crate::name_counts(apis, |a| self.tokenizer.knows(a)))
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let cfg = self.net.config();
        let mut meta = self.meta.clone();
        meta.tokenizer = Some(self.tokenizer.clone());
        meta.config = serde_json::to_value(RnnConfig {
            embed: cfg.embed,
            hidden: cfg.hidden,
            head: head_name(cfg.head).into(),
            input: self.input.clone(),
        })
        .map_err(|e| ModelError::Invalid(e.to_string()))?;
        let tensors = self
            .net
            .tensors()
            .into_iter()
            .map(|(n, s, d)| Tensor::new(n, s, d))
            .collect();
        Ok(ModelFile {
            meta,
            tensors,
            blobs: Vec::new(),
        })
    }
}
