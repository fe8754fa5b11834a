//! `mallard train`: arguments in, a model file out (`mallard_experiment::train`).

use crate::dataset::ReadArgs;
use crate::ui::Progress;
use crate::Global;
use anyhow::{Context, Result};
use clap::Args;
use mallard_datasets::DatasetSpec;
use mallard_experiment::settings::ModelSettings;
use mallard_experiment::{train, TrainRequest};
use std::path::PathBuf;

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
    /// Raw bytes of PE files (pe:DIR): malconv (gated convolution over 512-byte windows).
    #[arg(long = "model", value_name = "KIND")]
    pub kind: Option<String>,
    /// Boosted trees: number of rounds (default 100).
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub n_estimators: Option<usize>,
    /// Boosted trees: leaves per tree (default 31).
    #[arg(long, value_parser = mallard_experiment::settings::check::at_least_two)]
    pub num_leaves: Option<usize>,
    /// Boosted trees: share of the features each tree may use, drawn per tree (default 1).
    #[arg(long, value_name = "F", value_parser = mallard_experiment::settings::check::share)]
    pub feature_fraction: Option<f64>,
    /// Boosted trees: fewest training rows in a leaf (default 20).
    #[arg(long, value_name = "N", value_parser = mallard_experiment::settings::check::positive_usize)]
    pub min_data_in_leaf: Option<usize>,
    /// Boosted trees on EMBER v2 columns: weight the rows so that every kind of PE file
    /// (32-/64-bit EXE, DLL, .NET, read from the columns) has the overall malicious:benign
    /// mix, so the trees learn content rather than which kinds the corpus happens to hold
    /// more malware of. POWER in (0, 1] tempers the weights (weight^POWER); given without a
    /// value, 1.
    #[arg(long, value_name = "POWER", num_args = 0..=1, default_missing_value = "1", value_parser = mallard_experiment::settings::check::share)]
    pub balance_kinds: Option<f64>,
    /// Boosted trees: columns the score may only rise with, comma-separated: NAME or +NAME
    /// rising, -NAME falling, PREFIX* every column so named (e.g. general_imports,section_count).
    /// A defence against edits that can only add (imports, sections, bytes): the trees cannot
    /// learn "more of it means benign" (LightGBM's monotone constraints, basic method).
    #[arg(long, value_name = "COLUMNS", allow_hyphen_values = true)]
    pub monotone: Option<String>,
    /// Boosted trees: cap on each leaf's output before the learning rate (LightGBM's
    /// max_delta_step; default none), bounding what one tree can add to a score.
    #[arg(long, value_name = "F", value_parser = mallard_experiment::settings::check::positive_f64)]
    pub max_delta_step: Option<f64>,
    /// Set the decision threshold so that the false-positive rate of 5-fold out-of-fold
    /// predictions on the training data is at most this, in (0, 1) (e.g. 0.01); default
    /// threshold 0.5.
    #[arg(long, value_name = "FPR", value_parser = mallard_experiment::settings::check::open_fraction)]
    pub calibrate_fpr: Option<f64>,
    /// Settings to start from: `default` (mallard's) or `published` (the Keras pipeline of the
    /// literature: Keras tokenizer, pre-padding, Embedding 32, LSTM 100, mse, RMSprop, batch 64, 5 epochs).
    #[arg(long, default_value = "default")]
    pub preset: String,
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub epochs: Option<usize>,
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub batch_size: Option<usize>,
    /// adam or rmsprop.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long = "lr", value_parser = mallard_experiment::settings::check::positive_f32)]
    pub learning_rate: Option<f32>,
    /// Embedding width.
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub embed: Option<usize>,
    /// Recurrent units (per direction).
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub hidden: Option<usize>,
    /// What the dense layer sees of the recurrent states: last, mean or max (pooling over time).
    #[arg(long)]
    pub head: Option<String>,
    /// Longest token sequence the recurrent net reads.
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub maxlen: Option<usize>,
    /// Fraction of the training data held out for early stopping, in [0, 1) (sequence
    /// models: default 0.1; tables: off unless this or --patience is given, then 0.1,
    /// grouped and stratified, and at most 0.5).
    #[arg(long, value_parser = mallard_experiment::settings::check::holdout)]
    pub validation_split: Option<f32>,
    /// Epochs (boosted trees: rounds, default 10) without a better validation loss before stopping.
    #[arg(long, value_parser = mallard_experiment::settings::check::positive_usize)]
    pub patience: Option<usize>,
    /// Train recurrent nets (lstm, gru, bilstm, ensemble) and malconv on the GPU through
    /// Vulkan; needs a build with `--features gpu`. Same training semantics as the CPU.
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
    #[arg(long, value_name = "GAMMA", default_value_t = 3.0, value_parser = mallard_experiment::settings::check::positive_f64)]
    pub svm_gamma: f64,
    /// svm: box constraint C (soft-margin penalty; larger fits the training data harder).
    #[arg(long, value_name = "C", default_value_t = 3.0, value_parser = mallard_experiment::settings::check::positive_f64)]
    pub svm_c: f64,
    /// ngram: longest n-gram of API calls (1 to 8).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = mallard_experiment::settings::check::ngram_len)]
    pub ngram_max: usize,
    /// ngram: inverse regularisation C of the logistic regression.
    #[arg(long, value_name = "C", default_value_t = 30.0, value_parser = mallard_experiment::settings::check::positive_f64)]
    pub ngram_c: f64,
}

impl ModelArgs {
    /// The flags as the library's settings: the same names, `no_class_weights` turned round.
    #[rustfmt::skip]
    pub fn settings(&self, threads: usize) -> ModelSettings {
        let m = self.clone();
        macro_rules! same {
            ($($f:ident),*) => { ModelSettings { $($f: m.$f,)* class_weights: !m.no_class_weights, threads } };
        }
        same!(kind, n_estimators, num_leaves, feature_fraction, min_data_in_leaf, balance_kinds,
            monotone, max_delta_step,
            calibrate_fpr, preset, epochs, batch_size, optimizer, learning_rate, embed, hidden,
            head, maxlen, validation_split, patience, gpu, seed, collapse_repeats, svm_gamma,
            svm_c, ngram_max, ngram_c)
    }
}

pub fn run(a: TrainArgs, g: &Global) -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let request = TrainRequest {
        datasets: &a.dataset,
        read: &a.read.options(),
        settings: &a.model.settings(g.threads),
        manifests: &a.manifest,
        command: &format!("mallard {}", argv.join(" ")),
    };
    let mut progress = Progress::new(g.quiet);
    let file = train(&request, &mut progress)?;
    drop(progress);
    file.write(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    if !g.quiet {
        eprintln!("wrote {}", a.out.display());
    }
    Ok(())
}
