//! Model choice and training settings, as every front end gives them: `None` takes the
//! model kind's default. One place maps them to the learners' own parameters.

use crate::Error;
use mallard_model::fit::{StrataFn, TableFit};
use mallard_model::tables::Table;
use mallard_model::train::{ModelKind, Preset, TrainOptions};
use mallard_model::{GbdtParams, MlpParams, TableLearner};

/// What to train and how. Field names follow the command-line flags.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `gbdt`, `dnn` (tables); `svm`, `ngram`, `lstm`, `gru`, `bilstm`, `ensemble` (sequences).
    /// `None`: gbdt for tables, svm for two labels, ngram for families.
    pub kind: Option<String>,
    pub n_estimators: Option<usize>,
    pub num_leaves: Option<usize>,
    pub feature_fraction: Option<f64>,
    pub min_data_in_leaf: Option<usize>,
    /// Row weights equalising the malicious:benign mix per PE kind, tempered by this power.
    pub balance_kinds: Option<f64>,
    /// Boosted trees: columns the score may only rise with (`NAME`, `+NAME`) or only fall
    /// with (`-NAME`), comma-separated; a name ending in `*` is a prefix.
    pub monotone: Option<String>,
    /// Boosted trees: largest absolute leaf output before shrinkage.
    pub max_delta_step: Option<f64>,
    /// Threshold chosen for this out-of-fold false-positive rate.
    pub calibrate_fpr: Option<f64>,
    /// `default` or `published`.
    pub preset: String,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub optimizer: Option<String>,
    pub learning_rate: Option<f32>,
    pub embed: Option<usize>,
    pub hidden: Option<usize>,
    pub head: Option<String>,
    pub maxlen: Option<usize>,
    pub validation_split: Option<f32>,
    pub patience: Option<usize>,
    pub gpu: bool,
    pub class_weights: bool,
    pub seed: u64,
    pub collapse_repeats: bool,
    pub svm_gamma: f64,
    pub svm_c: f64,
    pub ngram_max: usize,
    pub ngram_c: f64,
    /// Worker threads for training.
    pub threads: usize,
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
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
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
