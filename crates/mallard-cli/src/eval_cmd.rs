//! `mallard eval` and `mallard cv`: arguments in, metrics printed and written
//! (`mallard_experiment::{score, cross_validate}`).

use crate::ui::Progress;
use crate::Global;
use anyhow::Result;
use clap::Args;
use mallard_datasets::{DatasetSpec, ReadOptions};
use mallard_eval::{render_table, FoldPlan};
use mallard_experiment::attack::malicious_pe_files;
use mallard_experiment::output::{dataset_names, write_outputs, write_predictions};
use mallard_experiment::settings::{check, ModelSettings};
use mallard_experiment::{
    cross_validate, default_model, read_fold_plan, score, write_fold_plan, CvRequest,
};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled data as FORMAT:PATH (malbehavd, malapi, cuckoo, cape, jsonl; csv, ember, pe).
    /// Feature tables may be given several times: their rows are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetSpec>,
    /// Model file (default: the built-in MalBehavD model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Write the metrics as JSON here.
    #[arg(long, value_name = "OUT.json")]
    pub report: Option<PathBuf>,
    /// Draw roc.svg and confusion.svg into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Decision threshold on P(malicious) (default: the model's).
    #[arg(long, value_parser = check::probability)]
    pub threshold: Option<f32>,
    #[command(flatten)]
    pub read: ReadOptions,
    /// Write one JSON line per sample: id, label, predicted label, class probabilities.
    #[arg(long, value_name = "OUT.jsonl")]
    pub predictions: Option<PathBuf>,
    /// API-call data: also evaluate on the rows whose set of API names appears nowhere in
    /// this dataset (the training set), which a set-based model cannot have memorised.
    #[arg(long, value_name = "FORMAT:PATH")]
    pub novel_against: Option<DatasetSpec>,
    /// PE files (`pe:` datasets): also attack the malicious files with functionality-preserving
    /// edits (as `mallard attack`) and report how many detected files evade; the report gets
    /// an `attack` object and --plots an attack.svg.
    #[arg(long)]
    pub attack: bool,
    /// Model queries per file for --attack.
    #[arg(long, value_name = "N", default_value_t = 1000, requires = "attack")]
    pub attack_budget: usize,
    /// Search for --attack: greedy or random.
    #[arg(long, default_value = "greedy", requires = "attack")]
    pub attack_strategy: String,
    /// A benign file whose bytes the --attack edits use (default: random bytes).
    #[arg(long, value_name = "FILE", requires = "attack")]
    pub attack_benign: Option<PathBuf>,
}

pub fn run(a: EvalArgs, g: &Global) -> Result<()> {
    let attacked = if a.attack { malicious_pe_files(&a.dataset, &a.read)? } else { Vec::new() };
    let spec = match &a.model {
        Some(m) => m.clone(),
        None => PathBuf::from(default_model(&a.dataset[0])?),
    };
    // The full model, not the scan's scoring-only load: reading a table takes its schema.
    let model = mallard_scan::setup::load_full_model(&spec, &mallard_io::Caps::default())?;
    let mut progress = Progress::new(g.quiet);
    let read = &a.read;
    let scored = score(model.as_ref(), &a.dataset, read, a.novel_against.as_ref(), &mut progress)?;
    drop(progress);
    if let Some(p) = &a.predictions {
        let ids: Vec<&str> = scored.ids.iter().map(String::as_str).collect();
        write_predictions(p, &scored.labels, &ids, &scored.y, &scored.probs, &[])?;
    }
    let ev = scored.evaluate(a.threshold)?;
    print!("{}", render_table(&ev));
    let kind = &model.meta().kind;
    let mut extra = serde_json::json!({ "model": kind, "dataset": mallard_datasets::describe(&a.dataset), "seconds": scored.seconds });
    if let (Some((n, nev)), Some(r)) = (scored.evaluate_novel(a.threshold)?, &a.novel_against) {
        let (all, against) = (scored.y.len(), r.path.display());
        println!("\nnovel rows: {n} of {all} (their API-name set is not in {against})");
        print!("{}", render_table(&nev));
        extra["novel_rows"] = n.into();
        extra["novel"] = serde_json::to_value(&nev)?;
    }
    if a.attack {
        extra["attack"] = attack(model.as_ref(), &attacked, &a, g)?;
    }
    let title = format!("{kind} on {}", dataset_names(&a.dataset));
    Ok(write_outputs(&ev, &title, a.report.as_deref(), a.plots.as_deref(), extra)?)
}

/// `eval --attack`: `files` attacked at the model's own threshold; prints the summary,
/// draws attack.svg into --plots, returns the JSON report.
fn attack(
    model: &dyn mallard_model::Model,
    files: &[PathBuf],
    a: &EvalArgs,
    g: &Global,
) -> Result<serde_json::Value> {
    use anyhow::Context;
    use mallard_experiment::attack::{attack_files, read_benign, strategy, AttackOptions};
    let caps = mallard_io::Caps::default();
    let benign = read_benign(a.attack_benign.as_deref(), &caps)?;
    let opts = AttackOptions {
        budget: a.attack_budget,
        strategy: strategy(&a.attack_strategy)?,
        seed: 0,
        benign: &benign,
        max_bytes: caps.max_pe_bytes,
        out_dir: None,
    };
    let bar = crate::ui::bar(g.quiet, files.len(), "attacking {wide_bar} {pos}/{len} files");
    let report = attack_files(model, files, &opts, &mut |f| {
        if f.outcome.is_err() {
            crate::ui::line(bar.as_ref(), &f.line());
        }
        bar.iter().for_each(|b| b.inc(1));
    })?;
    bar.iter().for_each(|b| b.finish_and_clear());
    let (n, s) = (a.attack_budget, &a.attack_strategy);
    println!("\nattack ({n} queries per file, {s}): {}", report.summary());
    if let Some(dir) = &a.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let p = dir.join("attack.svg");
        std::fs::write(&p, report.svg()).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(report.to_json(&opts))
}

#[derive(Args)]
pub struct CvArgs {
    /// Labelled data as FORMAT:PATH. Feature tables may be given several times (e.g. malware
    /// and benign files): their rows are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetSpec>,
    /// Train each fold on this share of its training groups only (whole groups, stratified):
    /// points of a learning curve. The test folds stay the same.
    #[arg(long, value_name = "F", value_parser = check::share)]
    pub train_fraction: Option<f64>,
    /// Number of folds (at least 2).
    #[arg(long, default_value_t = 5, value_parser = check::at_least_two, conflicts_with = "fold_file")]
    pub folds: usize,
    /// Take the folds from this file (SHA256<TAB>FOLD lines, folds from 1, as --write-folds
    /// writes them) instead of making them: detectors on the same files (EMBER rows, pe:
    /// folders, MalConv) then test every file in the same fold
    #[arg(long, value_name = "FILE.tsv")]
    pub fold_file: Option<PathBuf>,
    /// Write the folds used, by file sha256, for other detectors' --fold-file
    #[arg(long, value_name = "OUT.tsv")]
    pub write_folds: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelSettings,
    #[command(flatten)]
    pub read: ReadOptions,
    /// Write pooled and per-fold metrics as JSON here.
    #[arg(long, value_name = "OUT.json")]
    pub report: Option<PathBuf>,
    /// Draw roc.svg and confusion.svg (pooled out-of-fold) into this folder.
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
    /// Write every sample's out-of-fold prediction as a JSON line.
    #[arg(long, value_name = "OUT.jsonl")]
    pub predictions: Option<PathBuf>,
}

pub fn run_cv(a: CvArgs, g: &Global) -> Result<()> {
    let t = Instant::now();
    let plan = a.fold_file.as_deref().map(read_fold_plan).transpose()?;
    let request = CvRequest {
        datasets: &a.dataset,
        read: &a.read,
        settings: &ModelSettings { threads: g.threads, ..a.model.clone() },
        folds: plan.as_ref().map_or(a.folds, FoldPlan::k),
        train_fraction: a.train_fraction,
        fold_plan: plan.as_ref(),
        want_keys: a.write_folds.is_some(),
    };
    let mut progress = Progress::new(g.quiet);
    let out = cross_validate(&request, &mut progress)?;
    drop(progress);
    let (run, kind, secs) = (&out.run, &out.kind, t.elapsed().as_secs_f64());
    if let Some(p) = &a.predictions {
        out.write_predictions(p)?;
    }
    if let (Some(p), Some(keys)) = (&a.write_folds, &out.keys) {
        write_fold_plan(p, keys, &run.folds)?;
    }
    let cv = run.metrics()?;
    print!("{}", render_table(&cv.pooled));
    let k = run.folds.len();
    if !g.quiet {
        let (tr, n) = (run.train_secs, run.n_groups);
        let how = a.fold_file.as_ref().map_or(format!("{n} groups never straddle a fold"), |p| {
            format!("folds from {}", p.display())
        });
        eprintln!("{k}-fold cross-validation of {kind} in {secs:.1} s ({tr:.2} s training; {how})");
    }
    let title = format!("{kind} {k}-fold CV on {}", dataset_names(&a.dataset));
    let mut info = serde_json::json!({ "model": kind, "folds": k, "per_fold": cv.per_fold, "seconds": secs, "train_seconds": run.train_secs });
    if let (Some(o), serde_json::Value::Object(x)) = (info.as_object_mut(), out.extra) {
        o.extend(x);
    }
    Ok(write_outputs(&cv.pooled, &title, a.report.as_deref(), a.plots.as_deref(), info)?)
}
