//! Model choice and training settings, as every front end gives them: `None` takes the
//! model kind's default. One place maps them to the learners' own parameters.

use crate::Error;
use mallard_model::fit::{StrataFn, TableFit};
use mallard_model::tables::Table;
use mallard_model::train::{ModelKind, Preset, TrainOptions};
use mallard_model::{GbdtParams, MlpParams, TableLearner};

/// What to train and how: the flags of `mallard train` and `mallard cv` (with the `clap`
/// feature this struct is those flags; its docs are their help). `None` takes the model
/// kind's default.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ModelSettings {
    /// Model kind. Sequences: svm (kernel SVM over the set of distinct API names; the default
    /// for two labels), ngram (TF-IDF n-grams + logistic regression; the default for
    /// families), lstm, gru, bilstm, ensemble (LSTM + n-grams).
    /// Feature tables (csv): gbdt (default, boosted trees) or dnn (feed-forward net).
    /// Raw bytes of PE files (pe:DIR): malconv (gated convolution over 512-byte windows).
    #[cfg_attr(feature = "clap", arg(long = "model", value_name = "KIND"))]
    pub kind: Option<String>,
    /// Boosted trees: number of rounds (default 100).
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub n_estimators: Option<usize>,
    /// Boosted trees: leaves per tree (default 31).
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::at_least_two))]
    pub num_leaves: Option<usize>,
    /// Boosted trees: share of the features each tree may use, drawn per tree (default 1).
    #[cfg_attr(feature = "clap", arg(long, value_name = "F", value_parser = check::share))]
    pub feature_fraction: Option<f64>,
    /// Boosted trees: fewest training rows in a leaf (default 20).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", value_parser = check::positive_usize))]
    pub min_data_in_leaf: Option<usize>,
    /// Boosted trees on EMBER v2 columns: weight the rows so that every kind of PE file
    /// (32-/64-bit EXE, DLL, .NET, read from the columns) has the overall malicious:benign
    /// mix, so the trees learn content rather than which kinds the corpus happens to hold
    /// more malware of. POWER in (0, 1] tempers the weights (weight^POWER); given without a
    /// value, 1.
    #[cfg_attr(feature = "clap", arg(long, value_name = "POWER", num_args = 0..=1, default_missing_value = "1", value_parser = check::share))]
    pub balance_kinds: Option<f64>,
    /// Boosted trees: columns the score may only rise with, comma-separated: NAME or +NAME
    /// rising, -NAME falling, PREFIX* every column so named (e.g. general_imports,section_count).
    /// A defence against edits that can only add (imports, sections, bytes): the trees cannot
    /// learn "more of it means benign" (LightGBM's monotone constraints, basic method).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "COLUMNS", allow_hyphen_values = true)
    )]
    pub monotone: Option<String>,
    /// Boosted trees: cap on each leaf's output before the learning rate (LightGBM's
    /// max_delta_step; default none), bounding what one tree can add to a score.
    #[cfg_attr(feature = "clap", arg(long, value_name = "F", value_parser = check::positive_f64))]
    pub max_delta_step: Option<f64>,
    /// Set the decision threshold so that the false-positive rate of 5-fold out-of-fold
    /// predictions on the training data is at most this, in (0, 1) (e.g. 0.01); default
    /// threshold 0.5.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FPR", value_parser = check::open_fraction))]
    pub calibrate_fpr: Option<f64>,
    /// Settings to start from: `default` (mallard's) or `published` (the Keras pipeline of the
    /// literature: Keras tokenizer, pre-padding, Embedding 32, LSTM 100, mse, RMSprop, batch 64, 5 epochs).
    #[cfg_attr(feature = "clap", arg(long, default_value = "default"))]
    pub preset: String,
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub epochs: Option<usize>,
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub batch_size: Option<usize>,
    /// adam or rmsprop.
    #[cfg_attr(feature = "clap", arg(long))]
    pub optimizer: Option<String>,
    #[cfg_attr(feature = "clap", arg(long = "lr", value_parser = check::positive_f32))]
    pub learning_rate: Option<f32>,
    /// Embedding width.
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub embed: Option<usize>,
    /// Recurrent units (per direction).
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub hidden: Option<usize>,
    /// What the dense layer sees of the recurrent states: last, mean or max (pooling over time).
    #[cfg_attr(feature = "clap", arg(long))]
    pub head: Option<String>,
    /// Longest token sequence the recurrent net reads.
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub maxlen: Option<usize>,
    /// Fraction of the training data held out for early stopping, in [0, 1) (sequence
    /// models: default 0.1; tables: off unless this or --patience is given, then 0.1,
    /// grouped and stratified, and at most 0.5).
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::holdout))]
    pub validation_split: Option<f32>,
    /// Epochs (boosted trees: rounds, default 10) without a better validation loss before stopping.
    #[cfg_attr(feature = "clap", arg(long, value_parser = check::positive_usize))]
    pub patience: Option<usize>,
    /// Train recurrent nets (lstm, gru, bilstm, ensemble) and malconv on the GPU through
    /// Vulkan; needs a build with `--features gpu`. Same training semantics as the CPU.
    #[cfg_attr(feature = "clap", arg(long))]
    pub gpu: bool,
    /// Weight classes by inverse frequency (default); `--no-class-weights` turns it off.
    #[cfg_attr(feature = "clap", arg(long = "no-class-weights", action = clap::ArgAction::SetFalse, help = "Do not weight classes by inverse frequency"))]
    pub class_weights: bool,
    /// Seed for initialisation, shuffling and splits: same seed, same model.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 42))]
    pub seed: u64,
    /// Count back-to-back repeats of a call once (raw sandbox traces); the model remembers
    /// this and applies it when scoring.
    #[cfg_attr(feature = "clap", arg(long))]
    pub collapse_repeats: bool,
    /// svm: kernel width gamma of K = exp(-gamma (1 - Tanimoto similarity of the API sets)).
    #[cfg_attr(feature = "clap", arg(long, value_name = "GAMMA", default_value_t = 3.0, value_parser = check::positive_f64))]
    pub svm_gamma: f64,
    /// svm: box constraint C (soft-margin penalty; larger fits the training data harder).
    #[cfg_attr(feature = "clap", arg(long, value_name = "C", default_value_t = 3.0, value_parser = check::positive_f64))]
    pub svm_c: f64,
    /// ngram: longest n-gram of API calls (1 to 8).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = 4, value_parser = check::ngram_len))]
    pub ngram_max: usize,
    /// ngram: inverse regularisation C of the logistic regression.
    #[cfg_attr(feature = "clap", arg(long, value_name = "C", default_value_t = 30.0, value_parser = check::positive_f64))]
    pub ngram_c: f64,
    /// Worker threads for training (front ends set it from their own thread option).
    #[cfg_attr(feature = "clap", arg(skip = default_threads()))]
    pub threads: usize,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for ModelSettings {
    fn default() -> Self {
        ModelSettings {
            kind: None,
            n_estimators: None,
            num_leaves: None,
            feature_fraction: None,
            min_data_in_leaf: None,
            balance_kinds: None,
            monotone: None,
            max_delta_step: None,
            calibrate_fpr: None,
            preset: "default".into(),
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
            gpu: false,
            class_weights: true,
            seed: 42,
            collapse_repeats: false,
            svm_gamma: 3.0,
            svm_c: 3.0,
            ngram_max: 4,
            ngram_c: 30.0,
            threads: default_threads(),
        }
    }
}

fn bad(msg: String) -> Error {
    Error::Settings(msg)
}

impl ModelSettings {
    /// The kind's name as reports and file names give it.
    pub fn table_kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("gbdt")
    }

    /// The table learner (gbdt or dnn) with these settings.
    pub fn learner(&self) -> Result<TableLearner, Error> {
        match self.table_kind() {
            "gbdt" => {
                let mut p = GbdtParams::default();
                set(&mut p.n_estimators, self.n_estimators);
                set(&mut p.num_leaves, self.num_leaves);
                set(&mut p.learning_rate, self.learning_rate.map(f64::from));
                if let Some(ff) = self.feature_fraction {
                    if !(ff > 0.0 && ff <= 1.0) {
                        return Err(bad(format!("feature fraction must be in (0, 1], got {ff}")));
                    }
                    p.feature_fraction = ff;
                }
                set(&mut p.min_data_in_leaf, self.min_data_in_leaf);
                set(&mut p.max_delta_step, self.max_delta_step);
                p.seed = self.seed;
                if self.table_holdout().is_some() {
                    p.early_stopping_rounds = Some(self.patience.unwrap_or(10));
                }
                p.n_threads = Some(self.threads);
                Ok(TableLearner::Gbdt(p))
            }
            "dnn" if self.monotone.is_some() || self.max_delta_step.is_some() => Err(bad(
                "monotone constraints and --max-delta-step apply to boosted trees (gbdt), not dnn"
                    .into(),
            )),
            "dnn" => {
                let mut p = MlpParams::default();
                set(&mut p.max_epochs, self.epochs);
                set(&mut p.learning_rate, self.learning_rate.map(f64::from));
                set(&mut p.batch_size, self.batch_size);
                set(&mut p.patience, self.patience);
                p.seed = self.seed;
                Ok(TableLearner::Dnn(p))
            }
            other => Err(bad(format!(
                "model kind {other:?} does not read feature tables (gbdt, dnn)"
            ))),
        }
    }

    /// Share of a table held out for early stopping: the validation split, or 0.1 when only
    /// a patience is given; none by default, so trees keep LightGBM's fixed 100 rounds.
    pub fn table_holdout(&self) -> Option<f32> {
        match (self.validation_split, self.patience) {
            (Some(f), _) if f > 0.0 => Some(f),
            (None, Some(_)) => Some(0.1),
            _ => None,
        }
    }

    /// How a model of `table` is trained: the learner, splits, holdout and kind balancing.
    pub fn table_fit(&self, table: &Table) -> Result<TableFit, Error> {
        if self.balance_kinds.is_some() && mallard_datasets::pe_kinds(table).is_none() {
            return Err(bad(
                "balancing PE kinds (--balance-kinds) reads the kind from EMBER v2 columns; this table has none"
                    .into(),
            ));
        }
        let mut learner = self.learner()?;
        if let (TableLearner::Gbdt(p), Some(spec)) = (&mut learner, &self.monotone) {
            p.monotone = monotone_constraints(spec, &table.columns)?;
        }
        Ok(TableFit {
            learner,
            feature_set: table.feature_set.clone().or_else(|| {
                mallard_datasets::guess_feature_set(&table.columns).map(str::to_string)
            }),
            seed: self.seed,
            holdout: self.table_holdout(),
            balance: self
                .balance_kinds
                .map(|p| (mallard_datasets::pe_kinds as StrataFn, p)),
        })
    }

    /// Settings for sequence models; `n_labels` picks the default kind (svm is two-class).
    pub fn sequence_options(&self, n_labels: usize) -> Result<TrainOptions, Error> {
        let default = if n_labels == 2 { "svm" } else { "ngram" };
        let name = self.kind.as_deref().unwrap_or(default);
        let kind = ModelKind::parse(name).ok_or_else(|| {
            bad(format!("model kind {name:?} does not read API-call sequences (ngram, lstm, gru, bilstm, ensemble, svm)"))
        })?;
        let preset = Preset::parse(&self.preset).ok_or_else(|| {
            bad(format!(
                "unknown preset {:?} (default, published)",
                self.preset
            ))
        })?;
        if self.gpu && !cfg!(feature = "gpu") {
            return Err(bad("GPU training: this mallard was built without GPU support; rebuild with `cargo build --release --features gpu`".into()));
        }
        let mut o = TrainOptions::new(kind, preset);
        o.epochs = self.epochs;
        o.batch_size = self.batch_size;
        o.optimizer = self.optimizer.clone();
        o.learning_rate = self.learning_rate;
        o.embed = self.embed;
        o.hidden = self.hidden;
        o.head = self.head.clone();
        o.maxlen = self.maxlen;
        o.validation_split = self.validation_split;
        o.patience = self.patience;
        o.class_weights = (!self.class_weights).then_some(false);
        o.seed = self.seed;
        o.gpu = self.gpu;
        o.collapse_runs = self.collapse_repeats;
        o.threads = self.threads;
        o.svm_gamma = Some(self.svm_gamma);
        o.svm_c = Some(self.svm_c);
        o.ngram_max = Some(self.ngram_max);
        o.ngram_c = Some(self.ngram_c);
        Ok(o)
    }
}

impl ModelSettings {
    /// Whether the kind reads raw file bytes (`malconv`).
    pub fn reads_bytes(&self) -> bool {
        self.kind
            .as_deref()
            .is_some_and(|k| k.eq_ignore_ascii_case("malconv"))
    }

    /// MalConv's settings: defaults (docs/decisions.md) with the flags that apply.
    pub fn malconv_options(&self) -> Result<mallard_model::malconv::MalConvOptions, Error> {
        let mut o = mallard_model::malconv::MalConvOptions::default();
        set(&mut o.settings.embed, self.embed);
        set(&mut o.settings.hidden, self.hidden);
        set(&mut o.train.epochs, self.epochs);
        set(&mut o.train.batch_size, self.batch_size);
        set(&mut o.validation, self.validation_split);
        if self.patience.is_some() {
            o.train.patience = self.patience;
        }
        let lr = self.learning_rate.unwrap_or(1e-3);
        o.train.optimizer = match self.optimizer.as_deref().unwrap_or("adam") {
            "adam" => mallard_model::malconv::Optimizer::Adam {
                lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-7,
            },
            "rmsprop" => mallard_model::malconv::Optimizer::RmsProp {
                lr,
                rho: 0.9,
                eps: 1e-7,
            },
            other => return Err(bad(format!("unknown optimizer {other:?} (adam, rmsprop)"))),
        };
        o.class_weights = self.class_weights;
        o.train.seed = self.seed;
        o.train.threads = self.threads.max(1);
        if self.gpu && !cfg!(feature = "gpu") {
            return Err(bad("GPU training: this mallard was built without GPU support; rebuild with `cargo build --release --features gpu`".into()));
        }
        o.gpu = self.gpu;
        Ok(o)
    }
}

/// One constraint per column from `--monotone`'s list: `NAME` or `+NAME` rising, `-NAME`
/// falling, `PREFIX*` every column starting so. Every entry must name a column, and no
/// column may be given both ways.
pub fn monotone_constraints(spec: &str, columns: &[String]) -> Result<Vec<i8>, Error> {
    let mut out = vec![0i8; columns.len()];
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (dir, name) = if let Some(n) = entry.strip_prefix('-') {
            (-1, n)
        } else {
            (1, entry.strip_prefix('+').unwrap_or(entry))
        };
        let hit = |c: &str| match name.strip_suffix('*') {
            Some(prefix) => c.starts_with(prefix),
            None => c == name,
        };
        let mut any = false;
        for (slot, c) in out.iter_mut().zip(columns) {
            if hit(c) {
                if *slot == -dir {
                    return Err(bad(format!(
                        "--monotone: column {c} is constrained both ways"
                    )));
                }
                *slot = dir;
                any = true;
            }
        }
        if !any {
            return Err(bad(format!(
                "--monotone: {name:?} names no column of the table ({} columns, e.g. {})",
                columns.len(),
                columns
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok(out)
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Parsers for numeric settings: a value that makes no sense is refused with a message
/// (front ends add the option's name) instead of training a useless model.
pub mod check {
    fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
        s.trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number"))
    }

    fn count(s: &str, min: usize) -> Result<usize, String> {
        let n: usize = number(s)?;
        if n < min {
            return Err(format!("must be at least {min}"));
        }
        Ok(n)
    }

    pub fn positive_usize(s: &str) -> Result<usize, String> {
        count(s, 1)
    }

    pub fn at_least_two(s: &str) -> Result<usize, String> {
        count(s, 2)
    }

    pub fn ngram_len(s: &str) -> Result<usize, String> {
        let n = count(s, 1)?;
        if n > 8 {
            return Err("must be from 1 to 8".into());
        }
        Ok(n)
    }

    /// Finite and > 0 (NaN fails every comparison, so it is refused too).
    pub fn positive_f64(s: &str) -> Result<f64, String> {
        let x: f64 = number(s)?;
        if !(x > 0.0 && x.is_finite()) {
            return Err("must be a finite number above 0".into());
        }
        Ok(x)
    }

    pub fn positive_f32(s: &str) -> Result<f32, String> {
        let x = positive_f64(s)? as f32;
        if !(x > 0.0 && x.is_finite()) {
            return Err("must be a finite number above 0".into());
        }
        Ok(x)
    }

    /// In (0, 1]: a share that must keep something.
    pub fn share(s: &str) -> Result<f64, String> {
        let x: f64 = number(s)?;
        if !(x > 0.0 && x <= 1.0) {
            return Err("must be in (0, 1]".into());
        }
        Ok(x)
    }

    /// In (0, 1): a rate strictly between the extremes.
    pub fn open_fraction(s: &str) -> Result<f64, String> {
        let x: f64 = number(s)?;
        if !(x > 0.0 && x < 1.0) {
            return Err("must be in (0, 1)".into());
        }
        Ok(x)
    }

    /// In [0, 1): 0 turns the holdout off.
    pub fn holdout(s: &str) -> Result<f32, String> {
        let x: f64 = number(s)?;
        if !((0.0..1.0).contains(&x)) {
            return Err("must be in [0, 1)".into());
        }
        Ok(x as f32)
    }

    /// A probability threshold in [0, 1].
    pub fn probability(s: &str) -> Result<f32, String> {
        let x: f64 = number(s)?;
        if !((0.0..=1.0).contains(&x)) {
            return Err("a threshold is a probability in [0, 1]".into());
        }
        Ok(x as f32)
    }

    /// Seconds of a time limit: above 0, at most a year (which keeps `Duration` from
    /// overflowing and is as good as no limit).
    pub fn seconds(s: &str) -> Result<f64, String> {
        let t: f64 = number(s)?;
        if !(t > 0.0 && t <= 31_536_000.0) {
            return Err("a time limit is a number of seconds above 0 (at most a year)".into());
        }
        Ok(t)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn nan_zero_negative_and_out_of_range_are_refused() {
            for bad in ["NaN", "nan", "0", "-1", "1", "2", "inf", "x", ""] {
                assert!(open_fraction(bad).is_err(), "{bad}");
            }
            assert_eq!(open_fraction("0.01"), Ok(0.01));
            for bad in ["NaN", "0", "-0.5", "1.5"] {
                assert!(share(bad).is_err(), "{bad}");
            }
            assert_eq!(share("1"), Ok(1.0));
            for bad in ["0", "-3", "2.5", "x"] {
                assert!(positive_usize(bad).is_err(), "{bad}");
            }
            assert_eq!(positive_usize("3"), Ok(3));
            assert!(at_least_two("1").is_err());
            for bad in ["NaN", "0", "-0.1", "inf", "1e39"] {
                assert!(positive_f32(bad).is_err(), "{bad}");
            }
            assert_eq!(positive_f32("0.05"), Ok(0.05));
            assert!(holdout("0").is_ok() && holdout("1").is_err() && holdout("NaN").is_err());
            assert!(probability("1").is_ok() && probability("NaN").is_err());
            assert!(ngram_len("9").is_err() && ngram_len("8").is_ok());
            for bad in ["0", "-1", "NaN", "inf", "4e7"] {
                assert!(seconds(bad).is_err(), "{bad}");
            }
            assert_eq!(seconds("0.5"), Ok(0.5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_lists_name_columns_by_name_sign_and_prefix() {
        let cols: Vec<String> = [
            "general_size",
            "general_imports",
            "section_size_hash0",
            "section_size_hash1",
            "x",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            monotone_constraints("general_size, -general_imports,+section_size_hash*", &cols)
                .unwrap(),
            vec![1, -1, 1, 1, 0]
        );
        let e = monotone_constraints("general_size,nope", &cols)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"nope\" names no column"), "{e}");
        let e = monotone_constraints("section_size_hash1,-section_*", &cols)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("section_size_hash1 is constrained both ways"),
            "{e}"
        );
        let s = ModelSettings {
            kind: Some("dnn".into()),
            max_delta_step: Some(1.0),
            ..ModelSettings::default()
        };
        assert!(s.learner().is_err());
    }

    #[test]
    fn unset_values_keep_the_learners_defaults() {
        let s = ModelSettings::default();
        let TableLearner::Gbdt(p) = s.learner().unwrap() else {
            panic!("gbdt expected");
        };
        let d = GbdtParams::default();
        assert_eq!(
            (p.n_estimators, p.num_leaves, p.early_stopping_rounds),
            (d.n_estimators, d.num_leaves, None)
        );
        // Two labels: svm; families: ngram.
        assert_eq!(s.sequence_options(2).unwrap().kind, ModelKind::Svm);
        assert_eq!(s.sequence_options(9).unwrap().kind, ModelKind::Ngram);
    }

    #[test]
    fn a_patience_alone_holds_out_a_tenth_and_stops_early() {
        let s = ModelSettings {
            patience: Some(7),
            n_estimators: Some(300),
            ..ModelSettings::default()
        };
        assert_eq!(s.table_holdout(), Some(0.1));
        let TableLearner::Gbdt(p) = s.learner().unwrap() else {
            panic!("gbdt expected");
        };
        assert_eq!((p.n_estimators, p.early_stopping_rounds), (300, Some(7)));
        let off = ModelSettings {
            validation_split: Some(0.0),
            ..ModelSettings::default()
        };
        assert_eq!(off.table_holdout(), None);
    }

    #[test]
    fn kinds_that_do_not_fit_the_data_are_refused_by_name() {
        let s = ModelSettings {
            kind: Some("lstm".into()),
            ..ModelSettings::default()
        };
        assert!(s.learner().unwrap_err().to_string().contains("\"lstm\""));
        let s = ModelSettings {
            kind: Some("gbdt".into()),
            ..ModelSettings::default()
        };
        assert!(s.sequence_options(2).is_err());
        let s = ModelSettings {
            preset: "fast".into(),
            ..ModelSettings::default()
        };
        assert!(s
            .sequence_options(2)
            .unwrap_err()
            .to_string()
            .contains("fast"));
    }
}
