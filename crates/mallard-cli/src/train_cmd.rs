//! `mallard train`.

use crate::dataset::{describe, guess_feature_set, load_labelled, load_tables, ReadArgs};
use crate::Global;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_datasets::DatasetSpec;
use mallard_model::fit::{self, TableFit};
use mallard_model::train::{
    label_set, train, EpochReport, ModelKind, Observer, Preset, TrainOptions,
};
use mallard_model::{GbdtParams, MlpParams, Model, TableLearner};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct TrainArgs {
    /// Training data as FORMAT:PATH (malbehavd, malapi, cuckoo, cape, jsonl; csv, ember, pe).
    /// Feature tables may be given several times (e.g. malware and benign files): their rows
    /// are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetSpec>,
    /// Record this file's sha256 in the model file as part of its training provenance (the
    /// corpus manifests); may be repeated.
    #[arg(long, value_name = "FILE")]
    pub manifest: Vec<PathBuf>,
    /// Where to write the model file.
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

/// Model choice and training settings, shared by `train` and `cv`.
#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Model kind. Sequences: svm (kernel SVM over the set of distinct API names; the default
    /// for two labels), ngram (TF-IDF n-grams + logistic regression; the default for
    /// families), lstm, gru, bilstm, ensemble (LSTM + n-grams).
    /// Feature tables (csv): gbdt (default, boosted trees) or dnn (feed-forward net).
    #[arg(long = "model", value_name = "KIND")]
    pub kind: Option<String>,
    /// Boosted trees: number of rounds (default 100).
    #[arg(long, value_parser = check::positive_usize)]
    pub n_estimators: Option<usize>,
    /// Boosted trees: leaves per tree (default 31).
    #[arg(long, value_parser = check::at_least_two)]
    pub num_leaves: Option<usize>,
    /// Boosted trees: share of the features each tree may use, drawn per tree (default 1).
    #[arg(long, value_name = "F", value_parser = check::share)]
    pub feature_fraction: Option<f64>,
    /// Boosted trees: fewest training rows in a leaf (default 20).
    #[arg(long, value_name = "N", value_parser = check::positive_usize)]
    pub min_data_in_leaf: Option<usize>,
    /// Boosted trees on EMBER v2 columns: weight the rows so that every kind of PE file
    /// (32-/64-bit EXE, DLL, .NET, read from the columns) has the overall malicious:benign
    /// mix, so the trees learn content rather than which kinds the corpus happens to hold
    /// more malware of. POWER in (0, 1] tempers the weights (weight^POWER); given without a
    /// value, 1.
    #[arg(long, value_name = "POWER", num_args = 0..=1, default_missing_value = "1", value_parser = check::share)]
    pub balance_kinds: Option<f64>,
    /// Set the decision threshold so that the false-positive rate of 5-fold out-of-fold
    /// predictions on the training data is at most this, in (0, 1) (e.g. 0.01); default
    /// threshold 0.5.
    #[arg(long, value_name = "FPR", value_parser = check::open_fraction)]
    pub calibrate_fpr: Option<f64>,
    /// Settings to start from: `default` (mallard's) or `published` (the Keras pipeline of the
    /// literature: Keras tokenizer, pre-padding, Embedding 32, LSTM 100, mse, RMSprop, batch 64, 5 epochs).
    #[arg(long, default_value = "default")]
    pub preset: String,
    #[arg(long, value_parser = check::positive_usize)]
    pub epochs: Option<usize>,
    #[arg(long, value_parser = check::positive_usize)]
    pub batch_size: Option<usize>,
    /// adam or rmsprop.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long = "lr", value_parser = check::positive_f32)]
    pub learning_rate: Option<f32>,
    /// Embedding width.
    #[arg(long, value_parser = check::positive_usize)]
    pub embed: Option<usize>,
    /// Recurrent units (per direction).
    #[arg(long, value_parser = check::positive_usize)]
    pub hidden: Option<usize>,
    /// What the dense layer sees of the recurrent states: last, mean or max (pooling over time).
    #[arg(long)]
    pub head: Option<String>,
    /// Longest token sequence the recurrent net reads.
    #[arg(long, value_parser = check::positive_usize)]
    pub maxlen: Option<usize>,
    /// Fraction of the training data held out for early stopping, in [0, 1) (sequence
    /// models: default 0.1; tables: off unless this or --patience is given, then 0.1,
    /// grouped and stratified, and at most 0.5).
    #[arg(long, value_parser = check::holdout)]
    pub validation_split: Option<f32>,
    /// Epochs (boosted trees: rounds, default 10) without a better validation loss before stopping.
    #[arg(long, value_parser = check::positive_usize)]
    pub patience: Option<usize>,
    /// Train recurrent nets (lstm, gru, bilstm, ensemble) on the GPU through Vulkan; needs a
    /// build with `--features gpu`. Same training semantics as the CPU.
    #[arg(long)]
    pub gpu: bool,
    /// Do not weight classes by inverse frequency.
    #[arg(long)]
    pub no_class_weights: bool,
    /// Seed for initialisation, shuffling and splits: same seed, same model.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Count back-to-back repeats of a call once (raw sandbox traces); the model remembers
    /// this and applies it when scoring.
    #[arg(long)]
    pub collapse_repeats: bool,
    /// svm: kernel width gamma of K = exp(-gamma (1 - Tanimoto similarity of the API sets)).
    #[arg(long, value_name = "GAMMA", default_value_t = 3.0, value_parser = check::positive_f64)]
    pub svm_gamma: f64,
    /// svm: box constraint C (soft-margin penalty; larger fits the training data harder).
    #[arg(long, value_name = "C", default_value_t = 3.0, value_parser = check::positive_f64)]
    pub svm_c: f64,
    /// ngram: longest n-gram of API calls (1 to 8).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = check::ngram_len)]
    pub ngram_max: usize,
    /// ngram: inverse regularisation C of the logistic regression.
    #[arg(long, value_name = "C", default_value_t = 30.0, value_parser = check::positive_f64)]
    pub ngram_c: f64,
}

impl ModelArgs {
    /// The table learner for csv data.
    pub fn learner(&self, threads: usize) -> Result<TableLearner> {
        match self.kind.as_deref().unwrap_or("gbdt") {
            "gbdt" => {
                let mut p = GbdtParams::default();
                if let Some(n) = self.n_estimators {
                    p.n_estimators = n;
                }
                if let Some(n) = self.num_leaves {
                    p.num_leaves = n;
                }
                if let Some(lr) = self.learning_rate {
                    p.learning_rate = lr as f64;
                }
                if let Some(ff) = self.feature_fraction {
                    if !(ff > 0.0 && ff <= 1.0) {
                        bail!("--feature-fraction must be in (0, 1], got {ff}");
                    }
                    p.feature_fraction = ff;
                }
                if let Some(n) = self.min_data_in_leaf {
                    p.min_data_in_leaf = n;
                }
                p.seed = self.seed;
                if self.table_holdout().is_some() {
                    p.early_stopping_rounds = Some(self.patience.unwrap_or(10));
                }
                p.n_threads = Some(threads);
                Ok(TableLearner::Gbdt(p))
            }
            "dnn" => {
                let mut p = MlpParams::default();
                if let Some(e) = self.epochs {
                    p.max_epochs = e;
                }
                if let Some(lr) = self.learning_rate {
                    p.learning_rate = lr as f64;
                }
                if let Some(b) = self.batch_size {
                    p.batch_size = b;
                }
                if let Some(n) = self.patience {
                    p.patience = n;
                }
                p.seed = self.seed;
                Ok(TableLearner::Dnn(p))
            }
            other => Err(anyhow!(
                "model kind {other:?} does not read feature tables (gbdt, dnn)"
            )),
        }
    }

    /// Share of a table held out for early stopping: `--validation-split`, or 0.1 when only
    /// `--patience` is given; none by default, so trees keep LightGBM's fixed 100 rounds.
    pub fn table_holdout(&self) -> Option<f32> {
        match (self.validation_split, self.patience) {
            (Some(f), _) if f > 0.0 => Some(f),
            (None, Some(_)) => Some(0.1),
            _ => None,
        }
    }

    /// How a model of `table` is trained: the learner, splits, holdout and kind balancing.
    pub fn table_fit(
        &self,
        threads: usize,
        table: &mallard_model::tables::Table,
    ) -> Result<TableFit> {
        let feature_set = guess_feature_set(&table.columns);
        if self.balance_kinds.is_some() && mallard_datasets::pe_kinds(table).is_none() {
            bail!("--balance-kinds reads the PE kind from EMBER v2 columns; this table has none");
        }
        Ok(TableFit {
            learner: self.learner(threads)?,
            feature_set: feature_set.map(str::to_string),
            seed: self.seed,
            holdout: self.table_holdout(),
            balance: self
                .balance_kinds
                .map(|p| (mallard_datasets::pe_kinds as fit::StrataFn, p)),
        })
    }

    /// Settings for sequence models; `n_labels` picks the default kind (svm is two-class).
    pub fn options(&self, threads: usize, n_labels: usize) -> Result<TrainOptions> {
        let default = if n_labels == 2 { "svm" } else { "ngram" };
        let name = self.kind.as_deref().unwrap_or(default);
        let kind = ModelKind::parse(name)
            .ok_or_else(|| anyhow!("model kind {name:?} does not read API-call sequences (ngram, lstm, gru, bilstm, ensemble, svm)"))?;
        let preset = Preset::parse(&self.preset)
            .ok_or_else(|| anyhow!("unknown preset {:?} (default, published)", self.preset))?;
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
        o.class_weights = if self.no_class_weights {
            Some(false)
        } else {
            None
        };
        o.seed = self.seed;
        if self.gpu && !cfg!(feature = "gpu") {
            bail!("--gpu: this mallard was built without GPU support; rebuild with `cargo build --release --features gpu`");
        }
        o.gpu = self.gpu;
        o.collapse_runs = self.collapse_repeats;
        o.threads = threads;
        o.svm_gamma = Some(self.svm_gamma);
        o.svm_c = Some(self.svm_c);
        o.ngram_max = Some(self.ngram_max);
        o.ngram_c = Some(self.ngram_c);
        Ok(o)
    }
}

/// Progress on stderr: a bar per epoch on a terminal, one line per epoch otherwise.
pub struct Progress {
    quiet: bool,
    bar: Option<ProgressBar>,
    epochs: usize,
    batches: usize,
    done_epochs: usize,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            quiet,
            bar: None,
            epochs: 0,
            batches: 0,
            done_epochs: 0,
        }
    }
}

impl Observer for Progress {
    fn stage(&mut self, what: &str) {
        if !self.quiet {
            eprintln!("{what}...");
        }
    }
    fn epoch_start(&mut self, _epoch: usize, epochs: usize, batches: usize) {
        self.epochs = epochs;
        self.batches = batches.max(1);
        if !self.quiet {
            // One tick per minibatch, so long epochs show progress too.
            let bar = ProgressBar::new((epochs * self.batches) as u64);
            bar.set_style(
                ProgressStyle::with_template("training {bar:30} {msg} [{elapsed}<{eta}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.bar = Some(bar);
        }
    }
    fn batch(&mut self, done: usize, total: usize, loss: f32) {
        if let Some(b) = &self.bar {
            b.set_position((self.done_epochs * self.batches + done) as u64);
            b.set_message(format!(
                "epoch {}/{} batch {done}/{total} loss {loss:.4}",
                self.done_epochs + 1,
                self.epochs
            ));
        }
    }
    fn epoch_end(&mut self, r: &EpochReport) {
        self.done_epochs = r.epoch;
        if self.quiet {
            return;
        }
        let val = match (r.val_loss, r.val_accuracy) {
            (Some(l), Some(a)) => format!(" val_loss {l:.4} val_acc {a:.4}"),
            _ => String::new(),
        };
        let line = format!(
            "epoch {}/{}: loss {:.4}{val} ({:.2} s)",
            r.epoch, self.epochs, r.loss, r.seconds
        );
        match &self.bar {
            Some(b) if !b.is_hidden() => {
                b.set_position((r.epoch * self.batches) as u64);
                b.println(line);
            }
            _ => eprintln!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

pub fn run(a: TrainArgs, g: &Global) -> Result<()> {
    if a.dataset[0].is_table() {
        return run_table(a, g);
    }
    let dataset = mallard_datasets::single(&a.dataset)?;
    let t = Instant::now();
    let data = load_labelled(dataset, &a.read, g.quiet)?;
    let opts = a.model.options(g.threads, label_set(&data.labels).len())?;
    if !g.quiet {
        eprintln!(
            "read {} samples from {} in {:.2} s",
            data.samples.len(),
            dataset.path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let seqs: Vec<Vec<String>> = data.samples.into_iter().map(|s| s.apis).collect();
    let mut progress = Progress::new(g.quiet);
    let model = train(&seqs, &data.labels, &opts, &mut progress).context("training")?;
    drop(progress);
    model
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    if !g.quiet {
        eprintln!(
            "wrote {} ({} model, labels {:?}) in {:.1} s",
            a.out.display(),
            model.meta().kind,
            model.meta().labels,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn run_table(a: TrainArgs, g: &Global) -> Result<()> {
    let t = Instant::now();
    let table = load_tables(&a.dataset, &a.read)?;
    let set = guess_feature_set(&table.columns);
    let fit = a.model.table_fit(g.threads, &table)?;
    if !g.quiet {
        eprintln!(
            "read {} rows x {} features from {} in {:.2} s{}",
            table.n_rows(),
            table.n_cols(),
            describe(&a.dataset),
            t.elapsed().as_secs_f64(),
            set.map(|s| format!(" (columns of the {s} feature set: the model can scan PE files)"))
                .unwrap_or_default()
        );
    }
    // Everything that reads the table runs first, so that a plain fit can consume it.
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let datasets: Vec<&std::path::Path> = a.dataset.iter().map(|d| d.path.as_path()).collect();
    let provenance = fit::provenance(
        &format!("mallard {}", argv.join(" ")),
        &datasets,
        &a.manifest,
        &table,
    )?;
    let calibration = match a.model.calibrate_fpr {
        Some(fpr) => Some(fit::calibrate(&table, &fit, fpr)?),
        None => None,
    };
    let t = Instant::now();
    let model = fit::fit_table_owned(table, &fit).context("training")?;
    let secs = t.elapsed().as_secs_f64();
    let mut file = model.to_file()?;
    if let Some(c) = &calibration {
        if !g.quiet {
            let p = c.chosen;
            eprintln!(
                "calibrated threshold {:.6}: out-of-fold FPR <= {} at TPR {:.4}",
                p.threshold, p.max_fpr, p.oof_tpr
            );
            for p in &c.points {
                eprintln!(
                    "  out-of-fold FPR <= {}: threshold {:.6}, TPR {:.4}",
                    p.max_fpr, p.threshold, p.oof_tpr
                );
            }
        }
        file.meta.threshold = c.chosen.threshold;
    }
    if let Some(o) = file.meta.training.as_object_mut() {
        if let Some(c) = &calibration {
            o.insert("calibration".into(), c.to_json());
        }
        o.insert("provenance".into(), provenance);
        if let Some(p) = a.model.balance_kinds {
            o.insert("balance_kinds".into(), p.into());
        }
    }
    file.write(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    if !g.quiet {
        let t = &model.meta().training;
        let stopped = match (
            t.get("validation_samples").and_then(|v| v.as_u64()),
            t.get("rounds").or(t.get("epochs")),
        ) {
            (Some(v), Some(r)) if v > 0 => {
                format!(", early stopping on {v} held-out rows kept {r} rounds")
            }
            _ => String::new(),
        };
        eprintln!(
            "trained {} in {secs:.2} s{stopped}; wrote {} (labels {:?})",
            model.meta().kind,
            a.out.display(),
            model.meta().labels
        );
        if let Some(imp) = model.feature_importance() {
            let total: f64 = imp.iter().map(|r| r.1).sum::<f64>().max(f64::MIN_POSITIVE);
            let top: Vec<String> = imp
                .iter()
                .take(10)
                .map(|(n, gain, _)| format!("{n} {:.1}%", 100.0 * gain / total))
                .collect();
            eprintln!("top features by gain: {}", top.join(", "));
        }
    }
    Ok(())
}

/// Value parsers for numeric options: a value that makes no sense is refused by clap with
/// a message naming the flag, instead of training a useless model.
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

    pub fn at_least_two_folds(s: &str) -> Result<usize, String> {
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
            return Err("must be in [0, 1]".into());
        }
        Ok(x as f32)
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
        }
    }
}
