//! Training any sequence model from labelled API-call sequences, with named presets.

use crate::sequence::{head_of, output_for, RnnModel, SeqInput};
use crate::{Ensemble, InputKind, Meta, Model, ModelError, NgramSeqModel};
use mallard_ngram::{ClassWeight, NgramConfig, NgramModel};
pub use mallard_rnn::EpochReport;
use mallard_rnn::{Cell, Head, Loss, Net, NetConfig, Optimizer, TrainConfig};
use mallard_tokenizer::{Side, TextMode, Tokenizer, TokenizerConfig};
use serde::Serialize;

/// Model families `train` can build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelKind {
    Lstm,
    Gru,
    BiLstm,
    Ngram,
    /// LSTM and n-gram model, probabilities averaged.
    Ensemble,
    /// Kernel SVM over the set of distinct API names (exponentiated Tanimoto kernel).
    Svm,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Lstm => "lstm",
            ModelKind::Gru => "gru",
            ModelKind::BiLstm => "bilstm",
            ModelKind::Ngram => "ngram",
            ModelKind::Ensemble => "ensemble",
            ModelKind::Svm => "svm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ModelKind::Lstm,
            ModelKind::Gru,
            ModelKind::BiLstm,
            ModelKind::Ngram,
            ModelKind::Ensemble,
            ModelKind::Svm,
        ]
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(s))
    }

    fn cell(self) -> Option<Cell> {
        match self {
            ModelKind::Lstm => Some(Cell::Lstm),
            ModelKind::Gru => Some(Cell::Gru),
            ModelKind::BiLstm => Some(Cell::BiLstm),
            ModelKind::Ensemble => Some(Cell::Lstm),
            ModelKind::Ngram | ModelKind::Svm => None,
        }
    }
}

/// Starting points for the recurrent settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The published pipeline: Keras default tokenizer, pre-padding to the longest training
    /// sequence with no masking, Embedding 32, 100 units, sigmoid, mse, RMSprop, batch 64,
    /// 5 epochs, no validation split. With families (more than two labels), the Mal-API-2019
    /// paper's settings instead: the first 2,000 calls, Embedding 16, 100 units, softmax with
    /// cross-entropy, Adam, batch 50.
    Published,
    /// mallard's defaults: exact API names, no work on padding, cross-entropy, Adam,
    /// class weights, a validation split with early stopping.
    Default,
}

impl Preset {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "published" | "keras" => Some(Preset::Published),
            "default" => Some(Preset::Default),
            _ => None,
        }
    }
}

/// Everything `train` needs besides data. `None` fields take the preset's value.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub kind: ModelKind,
    pub preset: Preset,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    /// `adam` or `rmsprop`.
    pub optimizer: Option<String>,
    pub learning_rate: Option<f32>,
    pub embed: Option<usize>,
    pub hidden: Option<usize>,
    /// `last`, `mean` or `max` pooling of the hidden states.
    pub head: Option<String>,
    pub maxlen: Option<usize>,
    pub validation_split: Option<f32>,
    pub patience: Option<usize>,
    pub class_weights: Option<bool>,
    /// Treat back-to-back repeats of a call as one (recorded in the model, applied when scoring).
    pub collapse_runs: bool,
    pub seed: u64,
    pub threads: usize,
    /// Train recurrent nets on the GPU (needs the `gpu` feature).
    pub gpu: bool,
    /// SVM: kernel width `gamma` of `exp(-gamma (1 - Tanimoto))` (default 3).
    pub svm_gamma: Option<f64>,
    /// SVM: box constraint C (default 3).
    pub svm_c: Option<f64>,
    /// n-gram model: longest n-gram (default 4).
    pub ngram_max: Option<usize>,
    /// n-gram model: inverse regularisation C of the logistic regression (default 30).
    pub ngram_c: Option<f64>,
}

impl TrainOptions {
    pub fn new(kind: ModelKind, preset: Preset) -> Self {
        TrainOptions {
            kind,
            preset,
            epochs: None,
            batch_size: None,
            optimizer: None,
            learning_rate: None,
            embed: None,
            hidden: None,
            head: None,
            maxlen: None,
            validation_split: None,
            patience: None,
            class_weights: None,
            collapse_runs: false,
            seed: 42,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            gpu: false,
            svm_gamma: None,
            svm_c: None,
            ngram_max: None,
            ngram_c: None,
        }
    }
}

/// Training events, for progress bars.
pub trait Observer {
    fn stage(&mut self, _what: &str) {}
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _batches: usize) {}
    fn batch(&mut self, _done: usize, _total: usize, _loss: f32) {}
    fn epoch_end(&mut self, _report: &EpochReport) {}
    /// A cross-validation fold has been trained and scored.
    fn fold_done(&mut self, _fold: &crate::fit::FoldDone) {}
    /// A line worth showing a person: what was read, chosen or written.
    fn info(&mut self, _line: &str) {}
    /// Something was skipped or looks wrong, but the work goes on.
    fn warning(&mut self, _message: &str) {}
    /// A detail (e.g. a reader's note on what it skipped on purpose) for verbose output.
    fn note(&mut self, _message: &str) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl Observer for Quiet {}

/// The most classes a model is trained for: a label column with more distinct values is most
/// likely one of identifiers, and boosted trees grow a tree per class per round (200,000
/// classes asked for gradients of terabytes). docs/limits.md.
pub const MAX_CLASSES: usize = 1_000;

/// Refuses label sets a model cannot be trained on: fewer than two classes, or more than
/// [`MAX_CLASSES`].
pub(crate) fn check_classes(names: &[String]) -> Result<(), ModelError> {
    if names.len() < 2 {
        return Err(ModelError::Invalid(format!(
            "training needs at least two classes; the data has {names:?}"
        )));
    }
    if names.len() > MAX_CLASSES {
        return Err(ModelError::Invalid(format!(
            "the labels have {} distinct values, over the cap of {MAX_CLASSES} classes (is the label column one of identifiers?)",
            names.len()
        )));
    }
    Ok(())
}

/// Label names in model order: [`mallard_tables::label_set`]'s order (numeric when every
/// label is a number, so "2" < "10"; else byte-wise), with a benign class first in two-class
/// sets so that the sigmoid output is P(malicious).
pub fn label_set<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut set = mallard_tables::label_set(labels);
    if set.len() == 2 && crate::positive_index(&set) == Some(0) {
        set.swap(0, 1);
    }
    set
}

#[derive(Serialize)]
struct EpochJson {
    epoch: usize,
    loss: f32,
    val_loss: Option<f32>,
    val_accuracy: Option<f32>,
}

/// Trains a model of `opts.kind` on sequences with string labels.
pub fn train(
    seqs: &[Vec<String>],
    labels: &[String],
    opts: &TrainOptions,
    obs: &mut dyn Observer,
) -> Result<Box<dyn Model>, ModelError> {
    if seqs.len() != labels.len() {
        return Err(ModelError::Invalid(format!(
            "{} sequences but {} labels",
            seqs.len(),
            labels.len()
        )));
    }
    let names = label_set(labels);
    check_classes(&names)?;
    let y: Vec<usize> = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap_or(0))
        .collect();
    let collapsed: Vec<Vec<String>>;
    let seqs = if opts.collapse_runs {
        collapsed = seqs.iter().map(|s| crate::collapse_runs(s)).collect();
        &collapsed[..]
    } else {
        seqs
    };
    let distinct = seqs
        .iter()
        .all(|s| crate::distinct_in_order(s).len() == s.len());
    let mut model = train_kind(seqs, &y, names, distinct, opts, obs)?;
    if opts.collapse_runs {
        // Rebuild through the file so every member records the flag.
        let mut f = model.to_file()?;
        set_collapse(&mut f.meta);
        model = crate::from_file(f)?;
    }
    Ok(model)
}

fn set_collapse(meta: &mut Meta) {
    meta.collapse_runs = true;
    if let Some(members) = meta
        .config
        .get_mut("members")
        .and_then(|m| m.as_array_mut())
    {
        for m in members {
            if let Some(inner) = m.get_mut("meta") {
                inner["collapse_runs"] = serde_json::Value::Bool(true);
            }
        }
    }
}

fn train_kind(
    seqs: &[Vec<String>],
    y: &[usize],
    names: Vec<String>,
    distinct: bool,
    opts: &TrainOptions,
    obs: &mut dyn Observer,
) -> Result<Box<dyn Model>, ModelError> {
    let y = y.to_vec();
    match opts.kind {
        ModelKind::Ngram => Ok(Box::new(train_ngram(
            seqs, &y, &names, distinct, opts, obs,
        )?)),
        ModelKind::Svm => {
            obs.stage("fitting kernel SVM");
            Ok(Box::new(crate::svm::train_svm(
                seqs, &y, &names, distinct, opts,
            )?))
        }
        ModelKind::Lstm | ModelKind::Gru | ModelKind::BiLstm => {
            Ok(Box::new(train_rnn(seqs, &y, &names, distinct, opts, obs)?))
        }
        ModelKind::Ensemble => {
            let rnn = train_rnn(seqs, &y, &names, distinct, opts, obs)?;
            let ngram = train_ngram(seqs, &y, &names, distinct, opts, obs)?;
            let mut meta = Meta::new("ensemble", InputKind::ApiSequence, names);
            meta.distinct_calls = distinct;
            meta.training = serde_json::json!({
                "samples": seqs.len(),
                "members": [rnn.meta().training.clone(), ngram.meta().training.clone()],
            });
            Ok(Box::new(Ensemble::new(
                meta,
                vec![(0.5, Box::new(rnn)), (0.5, Box::new(ngram))],
            )?))
        }
    }
}

fn train_ngram(
    seqs: &[Vec<String>],
    y: &[usize],
    names: &[String],
    distinct: bool,
    opts: &TrainOptions,
    obs: &mut dyn Observer,
) -> Result<NgramSeqModel, ModelError> {
    obs.stage("fitting n-gram model");
    let mut cfg = NgramConfig::tuned();
    cfg.logreg.class_weight = ClassWeight::Balanced;
    if let Some(n) = opts.ngram_max {
        if !(1..=8).contains(&n) {
            return Err(ModelError::Invalid(format!(
                "--ngram-max must be 1 to 8, got {n}"
            )));
        }
        cfg.vectorizer.ngram_max = n;
    }
    if let Some(c) = opts.ngram_c {
        if !(c.is_finite() && c > 0.0) {
            return Err(ModelError::Invalid(format!(
                "--ngram-c must be finite and > 0, got {c}"
            )));
        }
        cfg.logreg.c = c;
    }
    let model = NgramModel::fit(seqs, y, names.len(), &cfg)
        .map_err(|e| ModelError::Compute(e.to_string()))?;
    let mut meta = Meta::new("ngram", InputKind::ApiSequence, names.to_vec());
    meta.distinct_calls = distinct;
    meta.training = serde_json::json!({
        "samples": seqs.len(),
        "features": model.vocab().len(),
    });
    Ok(NgramSeqModel::new(meta, model))
}

fn train_rnn(
    seqs: &[Vec<String>],
    y: &[usize],
    names: &[String],
    distinct: bool,
    opts: &TrainOptions,
    obs: &mut dyn Observer,
) -> Result<RnnModel, ModelError> {
    let published = opts.preset == Preset::Published;
    // Families under the published preset take the Mal-API-2019 paper's settings instead:
    // Embedding 16, 100 units, softmax with cross-entropy, Adam, batch 50, first 2,000 calls.
    let published_families = published && names.len() > 2;
    let cell = opts.kind.cell().unwrap_or(Cell::BiLstm);
    let tok_cfg = TokenizerConfig {
        text: if published {
            TextMode::keras_default()
        } else {
            TextMode::Exact
        },
        num_words: None,
        oov_token: None,
    };
    obs.stage("tokenizing");
    let tokenizer = Tokenizer::fit(tok_cfg, seqs.iter());
    let ids: Vec<Vec<u32>> = seqs.iter().map(|s| tokenizer.encode(s)).collect();
    let longest = ids.iter().map(Vec::len).max().unwrap_or(1).max(1);
    let input = if published {
        SeqInput {
            maxlen: opts
                .maxlen
                .unwrap_or(if published_families { 2000 } else { longest }),
            truncating: if published_families {
                Side::Post
            } else {
                Side::Pre
            },
            pad_to_maxlen: true,
        }
    } else {
        SeqInput {
            maxlen: opts.maxlen.unwrap_or(2000).min(longest.max(1)).max(1),
            truncating: Side::Post,
            pad_to_maxlen: false,
        }
    };
    let rows: Vec<Vec<u32>> = ids.iter().map(|s| input.prepare(s)).collect();

    let ncfg = NetConfig {
        vocab: tokenizer.vocab_size(),
        embed: opts
            .embed
            .unwrap_or(if published_families { 16 } else { 32 }),
        hidden: opts.hidden.unwrap_or(if published { 100 } else { 64 }),
        cell,
        output: output_for(names.len()),
        head: match opts.head.as_deref() {
            Some(h) => head_of(h).ok_or_else(|| {
                ModelError::Invalid(format!("unknown head {h:?} (last, mean, max)"))
            })?,
            None if published => Head::Last,
            None => Head::Last,
        },
    };
    let mut net =
        Net::new(ncfg.clone(), opts.seed).map_err(|e| ModelError::Invalid(e.to_string()))?;
    let optimizer = match opts
        .optimizer
        .as_deref()
        .unwrap_or(if published && !published_families {
            "rmsprop"
        } else {
            "adam"
        }) {
        "rmsprop" => Optimizer::rmsprop(),
        "adam" => Optimizer::adam(),
        other => {
            return Err(ModelError::Invalid(format!(
                "unknown optimizer {other:?} (adam, rmsprop)"
            )))
        }
    };
    let optimizer = match (optimizer, opts.learning_rate) {
        (
            Optimizer::Adam {
                beta1, beta2, eps, ..
            },
            Some(lr),
        ) => Optimizer::Adam {
            lr,
            beta1,
            beta2,
            eps,
        },
        (Optimizer::RmsProp { rho, eps, .. }, Some(lr)) => Optimizer::RmsProp { lr, rho, eps },
        (o, None) => o,
    };
    let class_weights = if opts.class_weights.unwrap_or(!published) {
        let k = names.len();
        let mut counts = vec![0usize; k];
        y.iter().for_each(|&c| counts[c] += 1);
        Some(
            counts
                .iter()
                .map(|&c| {
                    if c == 0 {
                        0.0
                    } else {
                        y.len() as f32 / (k as f32 * c as f32)
                    }
                })
                .collect(),
        )
    } else {
        None
    };
    let cfg = TrainConfig {
        epochs: opts.epochs.unwrap_or(if published { 5 } else { 20 }),
        batch_size: opts
            .batch_size
            .unwrap_or(match (published, published_families) {
                (true, true) => 50,
                (true, false) => 64,
                _ => 32,
            }),
        optimizer,
        loss: if published && !published_families {
            Loss::Mse
        } else {
            Loss::CrossEntropy
        },
        validation_split: opts
            .validation_split
            .unwrap_or(if published { 0.0 } else { 0.1 }),
        early_stopping_patience: opts.patience.or(if published { None } else { Some(3) }),
        class_weights,
        seed: opts.seed,
        shuffle: true,
        threads: opts.threads.max(1),
        clip_norm: if published { None } else { Some(5.0) },
    };

    // Keras takes the validation rows from the end: shuffle first so they are a fair sample.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    shuffle(&mut order, opts.seed ^ 0x9e37_79b9_7f4a_7c15);
    let rows: Vec<Vec<u32>> = order.iter().map(|&i| rows[i].clone()).collect();
    let y: Vec<usize> = order.iter().map(|&i| y[i]).collect();

    let n_train = rows.len() - (rows.len() as f32 * cfg.validation_split) as usize;
    let batches = n_train.div_ceil(cfg.batch_size.max(1));
    let mut history = Vec::new();
    obs.epoch_start(1, cfg.epochs, batches);
    // Both callbacks report to the observer; a RefCell lets the two closures share it.
    let obs = std::cell::RefCell::new(obs);
    let summary = train_net(
        opts.gpu,
        &mut net,
        &rows,
        &y,
        &cfg,
        &mut |r: &EpochReport| {
            obs.borrow_mut().epoch_end(r);
            history.push(EpochJson {
                epoch: r.epoch,
                loss: r.loss,
                val_loss: r.val_loss,
                val_accuracy: r.val_accuracy,
            });
        },
        &mut |done, total, loss| obs.borrow_mut().batch(done, total, loss),
    )?;

    let mut meta = Meta::new(
        opts.kind.cell().map_or("bilstm", |c| match c {
            Cell::Lstm => "lstm",
            Cell::Gru => "gru",
            Cell::BiLstm => "bilstm",
        }),
        InputKind::ApiSequence,
        names.to_vec(),
    );
    meta.distinct_calls = distinct;
    meta.training = serde_json::json!({
        "preset": if published { "published" } else { "default" },
        "samples": rows.len(),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "optimizer": format!("{:?}", cfg.optimizer),
        "loss": format!("{:?}", cfg.loss),
        "validation_split": cfg.validation_split,
        "device": if opts.gpu { "gpu" } else { "cpu" },
        "best_epoch": summary.best_epoch,
        "stopped_early": summary.stopped_early,
        "seed": opts.seed,
        "history": history,
    });
    Ok(RnnModel::new(meta, tokenizer, input, net))
}

/// Fisher-Yates with SplitMix64 (raw value modulo the range): deterministic for a seed on
/// every platform.
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    let mut rng = mallard_rand::SplitMix64::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.modulo(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// The CPU kernel, or with `gpu` the wgpu backend, whose `train` has the same semantics
/// (same shuffle order, clipping, early stopping; tested against the CPU to ~1e-7).
fn train_net(
    gpu: bool,
    net: &mut Net,
    rows: &[Vec<u32>],
    y: &[usize],
    cfg: &TrainConfig,
    on_epoch: &mut dyn FnMut(&EpochReport),
    on_batch: &mut dyn FnMut(usize, usize, f32),
) -> Result<mallard_rnn::TrainSummary, ModelError> {
    if gpu {
        #[cfg(feature = "gpu")]
        return mallard_rnn_gpu::train(net, rows, y, cfg, on_epoch, on_batch)
            .map_err(|e| ModelError::Compute(format!("GPU: {e}")));
        #[cfg(not(feature = "gpu"))]
        return Err(ModelError::Invalid(
            "this mallard was built without GPU support; rebuild with `cargo build --release --features gpu`".into(),
        ));
    }
    mallard_rnn::train(net, rows, y, cfg, on_epoch, on_batch)
        .map_err(|e| ModelError::Compute(e.to_string()))
}

#[cfg(test)]
mod label_order {
    use super::{check_classes, label_set, MAX_CLASSES};

    /// One class, or a column of identifiers (more than the cap), is refused by name; two
    /// and the cap itself are not.
    #[test]
    fn a_label_set_needs_two_classes_and_at_most_the_cap() {
        let names = |n: usize| (0..n).map(|i| format!("c{i}")).collect::<Vec<_>>();
        let err = |n: usize| check_classes(&names(n)).unwrap_err().to_string();
        assert!(err(1).contains("at least two classes"), "{}", err(1));
        assert!(
            err(MAX_CLASSES + 1).contains("1001 distinct values"),
            "{}",
            err(1001)
        );
        assert!(check_classes(&names(2)).is_ok());
        assert!(check_classes(&names(MAX_CLASSES)).is_ok());
    }

    #[test]
    fn numbers_sort_as_numbers_and_benign_comes_first() {
        assert_eq!(label_set(["10", "9", "2", "9"]), ["2", "9", "10"]);
        assert_eq!(label_set(["malicious", "benign"]), ["benign", "malicious"]);
        assert_eq!(label_set(["1", "0"]), ["0", "1"]);
        // a benign name that sorts last still comes first
        assert_eq!(
            label_set(["aaa-malware", "clean"]),
            ["clean", "aaa-malware"]
        );
        assert_eq!(label_set(["b", "a", "c"]), ["a", "b", "c"]);
    }
}
