//! One model-file format and one trait for every mallard classifier.
//!
//! `train`, `eval` and `scan` see models only through [`Model`]: class probabilities,
//! reasons for a score, and a [`ModelFile`] to save. [`load`] picks the implementation from
//! the file's metadata.

pub mod describe;
mod ensemble;
mod file;
pub mod fit;
pub mod malconv;
mod ngram;
mod sequence;
pub mod stack;
mod svm;
mod table;
pub mod train;

pub use ensemble::Ensemble;
pub use file::{
    pack_strings, unpack_strings, ModelFile, Tensor, FORMAT, FORMAT_VERSION, META_TENSOR,
    TRAINING_TENSOR,
};
pub use mallard_apiseq::canon::NameCounts;
pub use mallard_gbdt::GbdtParams;
pub use mallard_io::Caps;
pub use mallard_mlp::MlpParams;
pub use mallard_tables as tables;
pub use mallard_tokenizer::Tokenizer;
pub use ngram::NgramSeqModel;
pub use sequence::{RnnModel, SeqInput};
pub use svm::SvmSeqModel;
pub use table::{TableLearner, TableModel};

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// Refused before reading: not a regular file, or over `max_model_bytes`.
    #[error(transparent)]
    File(#[from] mallard_io::IoError),
    #[error("not a mallard model: {0}")]
    Foreign(String),
    #[error("corrupt mallard model: {0}")]
    Corrupt(String),
    #[error("model file format version {found} is newer than this mallard supports ({supported}); upgrade mallard")]
    Newer { found: u32, supported: u32 },
    #[error("invalid model: {0}")]
    Invalid(String),
    #[error("unknown model kind {0:?}")]
    UnknownKind(String),
    #[error("this model reads {expected}, not {got}")]
    WrongInput {
        expected: &'static str,
        got: &'static str,
    },
    #[error("{0}")]
    Compute(String),
}

/// What a model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// A sequence of API-call names.
    ApiSequence,
    /// A fixed-length feature vector.
    Features,
    /// A file's raw bytes.
    Bytes,
}

/// One input to a model.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    Apis(&'a [String]),
    Features(&'a [f32]),
    Bytes(&'a [u8]),
}

impl<'a> Input<'a> {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Input::Apis(_) => "API-call sequences",
            Input::Features(_) => "feature vectors",
            Input::Bytes(_) => "file bytes",
        }
    }

    /// The bytes, or the error a byte model gives for any other input.
    pub fn bytes(&self) -> Result<&'a [u8], ModelError> {
        match self {
            Input::Bytes(b) => Ok(b),
            other => Err(ModelError::WrongInput {
                expected: "file bytes",
                got: other.kind_name(),
            }),
        }
    }

    /// The API calls, or the error a sequence model gives for any other input.
    pub fn apis(&self) -> Result<&'a [String], ModelError> {
        match self {
            Input::Apis(a) => Ok(a),
            other => Err(ModelError::WrongInput {
                expected: "API-call sequences",
                got: other.kind_name(),
            }),
        }
    }
}

/// Everything about a model except its weights; stored as JSON in the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub mallard_version: String,
    /// Implementation tag, e.g. `lstm`, `gru`, `bilstm`, `ngram`, `svm`, `ensemble`.
    pub kind: String,
    pub input: InputKind,
    /// Class names in output order.
    pub labels: Vec<String>,
    /// Index of the malicious class for binary models; `None` for family-only models.
    pub positive: Option<usize>,
    /// Decision threshold on P(positive).
    pub threshold: f32,
    /// The training sequences listed each API once, in order of first use (MalBehavD's
    /// form); inputs are brought to that form before scoring, so raw traces match.
    #[serde(default)]
    pub distinct_calls: bool,
    /// Runs of the same API called back to back count as one call (raw traces repeat a
    /// call thousands of times in a row).
    #[serde(default)]
    pub collapse_runs: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<Tokenizer>,
    /// Feature models: the column names, in input order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub feature_names: Vec<String>,
    /// Feature models: the extractor whose columns they read (`pe-header`, `ember-v2`,
    /// `saxe-1024`, `opcodes`), so that files can be scored directly. Sequence models:
    /// `opcodes` when their tokens are the mnemonics of a PE file's code, none for API calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_set: Option<String>,
    /// Kind-specific settings needed to rebuild the model.
    #[serde(default)]
    pub config: serde_json::Value,
    /// How it was trained: data, options, per-epoch losses, time.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Held-out metrics measured at training time, if any.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The built-in model's name (`pe`, `api`, ...) when it was loaded as one
    /// ([`load_builtin_for_scoring`]); never written to a file.
    #[serde(skip)]
    pub builtin: Option<&'static str>,
}

impl Meta {
    pub fn new(kind: &str, input: InputKind, labels: Vec<String>) -> Self {
        let positive = positive_index(&labels);
        Meta {
            mallard_version: env!("CARGO_PKG_VERSION").to_string(),
            kind: kind.to_string(),
            input,
            labels,
            positive,
            threshold: 0.5,
            distinct_calls: false,
            collapse_runs: false,
            tokenizer: None,
            feature_names: Vec::new(),
            feature_set: None,
            config: serde_json::Value::Null,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            builtin: None,
        }
    }
}

/// A two-class probability row with `p` at `positive`.
pub(crate) fn binary_row(p: f32, positive: usize) -> [f32; 2] {
    let mut row = [1.0 - p; 2];
    row[positive.min(1)] = p;
    row
}

/// The malicious class of a two-class label set: the label that is not `benign`
/// (`clean`, `goodware` and `0` count as benign too).
pub fn positive_index(labels: &[String]) -> Option<usize> {
    if labels.len() != 2 {
        return None;
    }
    let benign = |s: &str| {
        matches!(
            s.to_ascii_lowercase().as_str(),
            "benign" | "clean" | "cleanware" | "goodware" | "0"
        )
    };
    match (benign(&labels[0]), benign(&labels[1])) {
        (true, false) => Some(1),
        (false, true) => Some(0),
        _ => Some(1),
    }
}

/// Keeps the first occurrence of each API, in order.
pub fn distinct_in_order(apis: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(apis.len().min(4096));
    apis.iter()
        .filter(|a| seen.insert(a.as_str()))
        .cloned()
        .collect()
}

/// (known, total) over the distinct names of `apis`.
pub(crate) fn count_known(apis: &[String], known: impl Fn(&str) -> bool) -> (usize, usize) {
    let d = distinct_in_order(apis);
    (d.iter().filter(|a| known(a)).count(), d.len())
}

/// Drops calls equal to the call before them.
pub fn collapse_runs(apis: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(apis.len().min(4096));
    for a in apis {
        if out.last() != Some(a) {
            out.push(a.clone());
        }
    }
    out
}

/// The sequence a model with `meta` should see.
pub(crate) fn model_view<'a>(meta: &Meta, apis: &'a [String]) -> std::borrow::Cow<'a, [String]> {
    if meta.distinct_calls {
        std::borrow::Cow::Owned(distinct_in_order(apis))
    } else if meta.collapse_runs {
        std::borrow::Cow::Owned(collapse_runs(apis))
    } else {
        std::borrow::Cow::Borrowed(apis)
    }
}

/// The sequence a model scores: every name the model never saw replaced by the first other
/// name of the same call that it knows (`mallard_apiseq::canon`), then brought to the
/// model's view. Names it knows are never touched, so inputs written in its own vocabulary
/// score exactly as before; names it cannot map stay, to be ignored as before.
pub(crate) fn scoring_view<'a>(
    meta: &Meta,
    apis: &'a [String],
    knows: impl Fn(&str) -> bool,
) -> std::borrow::Cow<'a, [String]> {
    use std::borrow::Cow;
    // Opcode models read mnemonics, which have no other names.
    if meta.feature_set.is_some() {
        return model_view(meta, apis);
    }
    // Mapped first, then reduced: two names of one call become one call.
    match mallard_apiseq::canon::map_sequence(apis, knows).apis {
        Cow::Borrowed(a) => model_view(meta, a),
        Cow::Owned(v) if meta.distinct_calls => Cow::Owned(distinct_in_order(&v)),
        Cow::Owned(v) if meta.collapse_runs => Cow::Owned(collapse_runs(&v)),
        Cow::Owned(v) => Cow::Owned(v),
    }
}

/// Counts of the distinct names of `apis` that a vocabulary (`knows`) holds as they are,
/// holds under another name of the same call, or does not hold.
pub(crate) fn name_counts(apis: &[String], knows: impl Fn(&str) -> bool) -> NameCounts {
    mallard_apiseq::canon::map_sequence(apis, knows).counts
}

/// Why a model scored an input as it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// `api`, `ngram`, `feature`, `rule`...
    pub kind: String,
    pub name: String,
    /// Contribution toward the malicious (or predicted) class; larger is more suspicious.
    pub weight: f32,
    /// The model column behind `name`, when `name` describes it in words (EMBER reasons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<String>,
}

/// A trained classifier.
pub trait Model: Send + Sync {
    fn meta(&self) -> &Meta;

    /// Class probabilities, row-major `[inputs.len(), labels.len()]`.
    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError>;

    /// The input's parts that moved the score most, by absolute weight, strongest first.
    /// Positive weights push toward the malicious (or predicted) class.
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError>;

    /// [`Model::explain`] on up to `threads` threads (the caller's and more), for one
    /// input while cores would idle; the same reasons, weights to the bit, as
    /// [`Model::explain`]. Models that cannot share the work use one thread.
    fn explain_with(
        &self,
        input: &Input<'_>,
        top: usize,
        _threads: usize,
    ) -> Result<Vec<Reason>, ModelError> {
        self.explain(input, top)
    }

    /// How many of the distinct API names in `apis` the model has seen in training, as they
    /// are written; `None` when the model does not read API calls.
    fn known_apis(&self, _apis: &[String]) -> Option<(usize, usize)> {
        None
    }

    /// How the distinct API names of `apis` meet the model's vocabulary: known as they are,
    /// mapped to another name of the same call that the model knows (and scored as that
    /// name), or unseen (ignored). `None` when the model does not read API calls.
    fn api_names(&self, _apis: &[String]) -> Option<NameCounts> {
        None
    }

    /// Weights and metadata, ready to write.
    fn to_file(&self) -> Result<ModelFile, ModelError>;

    fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.to_file()?.write(path)
    }
}

/// Builds the model a file describes, with the default [`Caps`].
pub fn from_file(file: ModelFile) -> Result<Box<dyn Model>, ModelError> {
    from_file_with(file, &Caps::default())
}

/// Builds the model a file describes; every size, count and depth in it is checked
/// against `caps` before it is used.
pub fn from_file_with(file: ModelFile, caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    check_meta(&file.meta)?;
    match file.meta.kind.as_str() {
        "lstm" | "gru" | "bilstm" => Ok(Box::new(RnnModel::from_file(file, caps)?)),
        "ngram" => Ok(Box::new(NgramSeqModel::from_file(file)?)),
        "svm" => Ok(Box::new(SvmSeqModel::from_file(file)?)),
        "ensemble" => Ok(Box::new(Ensemble::from_file(file, caps)?)),
        "gbdt" | "dnn" => Ok(Box::new(TableModel::from_file(file, caps)?)),
        "malconv" => Ok(Box::new(malconv::MalConvModel::from_file(file, caps)?)),
        "stack" => Ok(Box::new(stack::StackModel::from_file(file, caps)?)),
        other => Err(ModelError::UnknownKind(other.to_string())),
    }
}

/// What every model kind indexes by: the positive class must be one of the labels.
fn check_meta(meta: &Meta) -> Result<(), ModelError> {
    if let Some(p) = meta.positive {
        if p >= meta.labels.len() {
            return Err(ModelError::Corrupt(format!(
                "positive class {p} is not one of the {} labels",
                meta.labels.len()
            )));
        }
    }
    if !meta.threshold.is_finite() {
        return Err(ModelError::Corrupt(format!(
            "threshold {} is not a number",
            meta.threshold
        )));
    }
    Ok(())
}

/// The column encodings a feature model was trained with.
pub fn table_schema(meta: &Meta) -> Result<tables::TableSchema, ModelError> {
    let v = meta
        .config
        .get("schema")
        .cloned()
        .ok_or(ModelError::WrongInput {
            expected: "feature vectors",
            got: "a table",
        })?;
    if v.as_str() == Some(table::NUMERIC) {
        return Ok(tables::TableSchema::numeric(&meta.feature_names));
    }
    serde_json::from_value(v).map_err(|e| ModelError::Corrupt(format!("schema: {e}")))
}

/// Reads a model file from disk.
pub fn load(path: &Path) -> Result<Box<dyn Model>, ModelError> {
    load_with(path, &Caps::default())
}

/// Reads a model file from disk under `caps` (see [`ModelFile::read_with`]).
pub fn load_with(path: &Path, caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    from_file_with(ModelFile::read_with(path, caps)?, caps)
}

/// Reads a model file from memory (the built-in defaults).
pub fn load_bytes(bytes: &[u8]) -> Result<Box<dyn Model>, ModelError> {
    load_bytes_with(bytes, &Caps::default())
}

/// [`load_bytes`] under `caps`.
pub fn load_bytes_with(bytes: &[u8], caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    from_file_with(ModelFile::from_bytes_with(bytes, caps)?, caps)
}

/// [`Meta`] as scoring needs it: the training history and metrics (a third of the built-in
/// PE model's metadata) are skipped unparsed, and the kind's config is kept as JSON text
/// for the model to read directly. Same fields and defaults as [`Meta`].
#[derive(Deserialize)]
struct ScoringMeta {
    mallard_version: String,
    kind: String,
    input: InputKind,
    labels: Vec<String>,
    positive: Option<usize>,
    threshold: f32,
    #[serde(default)]
    distinct_calls: bool,
    #[serde(default)]
    collapse_runs: bool,
    #[serde(default)]
    tokenizer: Option<Tokenizer>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_set: Option<String>,
    #[serde(default)]
    config: Option<Box<serde_json::value::RawValue>>,
    #[serde(default, rename = "training")]
    _training: serde::de::IgnoredAny,
    #[serde(default, rename = "metrics")]
    _metrics: serde::de::IgnoredAny,
}

/// Loads a model to score with, from a file held in memory, checked under `caps` exactly
/// as [`load_bytes_with`] checks it. Faster to load (a one-file scan waits for it): the
/// model's `meta().training` and `meta().metrics` are `Null`, and a table model's
/// `meta().config` is `Null` too (its settings are read into the model); use
/// [`load_bytes_with`] for a model to inspect or save.
pub fn load_bytes_for_scoring(bytes: &[u8], caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    scoring(Source::Borrowed(file::Header::read(bytes, caps)?), caps)
}

/// [`load_bytes_for_scoring`] of a model that lives as long as the program (one compiled
/// into it): its trees read their nodes where they lie instead of a copy, which is most of
/// what loading the built-in PE model cost a one-file scan. Checked alike.
pub fn load_static_for_scoring(
    bytes: &'static [u8],
    caps: &Caps,
) -> Result<Box<dyn Model>, ModelError> {
    scoring(Source::Static(file::Header::read(bytes, caps)?), caps)
}

/// [`load_static_for_scoring`] of a built-in model: one compiled into the program whose
/// every check runs in its test suite. The file's header, metadata and tensor shapes are
/// checked as for any file; a tree model's nodes are not (their checks were most of a
/// one-file scan's wait for the model), and each tree's depth and expected value are
/// measured when an explanation first needs them. Never for bytes from outside.
pub fn load_builtin_for_scoring(
    name: &'static str,
    bytes: &'static [u8],
    caps: &Caps,
) -> Result<Box<dyn Model>, ModelError> {
    scoring(
        Source::Trusted(file::Header::read(bytes, caps)?, name),
        caps,
    )
}

/// A checked header, of a file held for the load or for the program's life.
enum Source<'a> {
    Borrowed(file::Header<'a>),
    Static(file::Header<'static>),
    /// A built-in model's, and its name ([`load_builtin_for_scoring`]).
    Trusted(file::Header<'static>, &'static str),
}

fn scoring(source: Source<'_>, caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    // A big tree model's trees are checked on a thread of their own while this one reads
    // the metadata (docs/decisions.md); the model takes them if they agree with it.
    use table::le_tensor;
    let depth = caps.max_tree_depth;
    match &source {
        Source::Borrowed(h) => {
            let ahead = le_tensor(h, "gbdt.tree_sizes")
                .zip(le_tensor(h, "gbdt.nodes"))
                .and_then(|(s, n)| mallard_gbdt::TreesAhead::new(s, n, depth));
            std::thread::scope(|s| {
                if let Some(a) = &ahead {
                    // Without the thread, the model checks every tree itself.
                    let _ = std::thread::Builder::new().spawn_scoped(s, || a.work());
                }
                let model = scoring_with(&source, ahead.as_ref(), caps);
                if let Some(a) = &ahead {
                    a.cancel();
                }
                model
            })
        }
        Source::Static(h) => {
            // Nodes that live as long as the program: the thread is not waited for. On a
            // busy machine it may start only after this one has checked every tree; then
            // it finds nothing left and ends.
            let ahead = le_tensor(h, "gbdt.tree_sizes")
                .zip(le_tensor(h, "gbdt.nodes"))
                .and_then(|(s, n)| mallard_gbdt::TreesAhead::new_static(s, n, depth))
                .map(std::sync::Arc::new);
            if let Some(a) = &ahead {
                let a = a.clone();
                let _ = std::thread::Builder::new().spawn(move || a.work());
            }
            let model = scoring_with(&source, ahead.as_deref(), caps);
            if let Some(a) = &ahead {
                a.cancel();
            }
            model
        }
        Source::Trusted(..) => scoring_with(&source, None, caps),
    }
}

fn scoring_with(
    source: &Source<'_>,
    ahead: Option<&mallard_gbdt::TreesAhead<'_>>,
    caps: &Caps,
) -> Result<Box<dyn Model>, ModelError> {
    let (header, builtin) = match source {
        Source::Borrowed(h) | Source::Static(h) => (h, None),
        Source::Trusted(h, name) => (h, Some(*name)),
    };
    let m: ScoringMeta = serde_json::from_str(&header.meta_json)
        .map_err(|e| ModelError::Corrupt(format!("metadata: {e}")))?;
    let mut meta = Meta {
        mallard_version: m.mallard_version,
        kind: m.kind,
        input: m.input,
        labels: m.labels,
        positive: m.positive,
        threshold: m.threshold,
        distinct_calls: m.distinct_calls,
        collapse_runs: m.collapse_runs,
        tokenizer: m.tokenizer,
        feature_names: m.feature_names,
        feature_set: m.feature_set,
        config: serde_json::Value::Null,
        training: serde_json::Value::Null,
        metrics: serde_json::Value::Null,
        builtin,
    };
    check_meta(&meta)?;
    let config = m.config.as_deref().map_or("null", |c| c.get());
    if matches!(meta.kind.as_str(), "gbdt" | "dnn") {
        let parts = match source {
            Source::Borrowed(h) => table::Parts::Raw(h),
            Source::Static(h) => table::Parts::Static(h),
            Source::Trusted(h, _) => table::Parts::Trusted(h),
        };
        return Ok(Box::new(TableModel::for_scoring(
            meta, config, parts, ahead, caps,
        )?));
    }
    meta.config =
        serde_json::from_str(config).map_err(|e| ModelError::Corrupt(format!("metadata: {e}")))?;
    let file = match source {
        Source::Borrowed(h) => h.to_file(meta)?,
        Source::Static(h) | Source::Trusted(h, _) => h.to_file(meta)?,
    };
    from_file_with(file, caps)
}

/// [`load_bytes_for_scoring`] of a file on disk, read as [`ModelFile::read_with`] reads it.
pub fn load_for_scoring(path: &Path, caps: &Caps) -> Result<Box<dyn Model>, ModelError> {
    let bytes = mallard_io::read_capped(path, caps.max_model_bytes)?;
    load_bytes_for_scoring(&bytes, caps)
}

#[cfg(test)]
mod scoring_load_tests {
    use super::*;

    const FILES: [&[u8]; 3] = [
        include_bytes!("../../../models/default-pe.mallard"),
        include_bytes!("../../../models/clamp-pe.mallard"),
        include_bytes!("../../../models/default-api.mallard"),
    ];

    fn err(r: Result<Box<dyn Model>, ModelError>) -> String {
        match r {
            Ok(_) => panic!("an edited model was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_model_loaded_for_scoring_scores_as_the_whole_model() {
        let caps = Caps::default();
        for bytes in FILES {
            let full = load_bytes_with(bytes, &caps).unwrap();
            let fast = load_bytes_for_scoring(bytes, &caps).unwrap();
            let (a, b) = (full.meta(), fast.meta());
            let mut stripped = a.clone();
            stripped.training = serde_json::Value::Null;
            stripped.metrics = serde_json::Value::Null;
            if matches!(a.kind.as_str(), "gbdt" | "dnn") {
                stripped.config = serde_json::Value::Null;
            }
            assert_eq!(
                serde_json::to_string(&stripped).unwrap(),
                serde_json::to_string(b).unwrap()
            );
            let (fa, fb) = (full.to_file().unwrap(), fast.to_file().unwrap());
            assert_eq!(fa.tensors, fb.tensors);
            assert_eq!(fa.blobs, fb.blobs);
            assert_eq!(fa.meta.config, fb.meta.config);
            if a.input == InputKind::Features {
                let n = a.feature_names.len();
                for seed in 0..4u32 {
                    let x: Vec<f32> = (0..n)
                        .map(|j| (((j as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 7.0)
                        .collect();
                    let i = Input::Features(&x);
                    assert_eq!(
                        full.predict_proba(&[i]).unwrap(),
                        fast.predict_proba(&[i]).unwrap()
                    );
                    assert_eq!(full.explain(&i, 5).unwrap(), fast.explain(&i, 5).unwrap());
                }
            }
        }
    }

    #[test]
    fn edited_trees_are_refused_by_both_loaders_alike() {
        let caps = Caps::default();
        let base = ModelFile::from_bytes(FILES[1]).unwrap();
        type Edit = fn(&mut ModelFile);
        fn tensor<'a>(f: &'a mut ModelFile, name: &str) -> &'a mut Tensor {
            f.tensors.iter_mut().find(|t| t.name == name).unwrap()
        }
        let edits: [(&str, Edit); 11] = [
            ("child out of range", |f| {
                tensor(f, "gbdt.nodes").data[3] = 1e6;
            }),
            ("child before parent", |f| {
                tensor(f, "gbdt.nodes").data[8 + 3] = 0.0;
            }),
            ("feature out of range", |f| {
                tensor(f, "gbdt.nodes").data[0] = 1e5;
            }),
            ("tree sizes", |f| {
                tensor(f, "gbdt.tree_sizes").data[0] += 1.0;
            }),
            ("missing tensor", |f| {
                f.tensors.retain(|t| t.name != "gbdt.init")
            }),
            ("means", |f| {
                let t = tensor(f, "table.means");
                t.data.pop();
                t.shape = vec![t.data.len()];
            }),
            ("means of two dimensions", |f| {
                let t = tensor(f, "table.means");
                t.shape = vec![1, t.data.len()];
            }),
            ("means twice", |f| {
                let n = f.meta.feature_names.len();
                f.meta.config["means"] = serde_json::json!(vec![0.0; n]);
            }),
            ("no means", |f| {
                f.tensors.retain(|t| t.name != "table.means")
            }),
            ("schema", |f| {
                let mut names = f.meta.feature_names.clone();
                names.pop();
                let columns = tables::TableSchema::numeric(&names);
                f.meta.config["schema"] = serde_json::to_value(columns).unwrap();
            }),
            ("schema word", |f| {
                f.meta.config["schema"] = "numbers".into();
            }),
        ];
        for (what, edit) in edits {
            let mut f = base.clone();
            edit(&mut f);
            let bytes = f.to_bytes().unwrap();
            assert_eq!(
                err(load_bytes_with(&bytes, &caps)),
                err(load_bytes_for_scoring(&bytes, &caps)),
                "{what}"
            );
        }
        let tight = Caps {
            max_tree_depth: 2,
            ..Caps::default()
        };
        let e = err(load_bytes_for_scoring(FILES[1], &tight));
        assert!(e.contains("max_tree_depth"), "{e}");
        let small = Caps {
            max_model_bytes: 1000,
            ..Caps::default()
        };
        let e = err(load_bytes_for_scoring(FILES[1], &small));
        assert!(e.contains("max_model_bytes"), "{e}");
    }
}
