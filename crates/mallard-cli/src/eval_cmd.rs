//! `mallard eval` and `mallard cv`.

use crate::dataset::{
    describe, load_labelled, load_table, load_tables, single, DataFormat, ReadArgs,
};
use crate::train_cmd::{ModelArgs, Progress};
use crate::{load_model, Global};
use anyhow::anyhow;
use anyhow::{bail, Context, Result};
use clap::Args;
use mallard_datasets::DatasetSpec;
use mallard_eval::{confusion_svg, evaluate, render_table, roc_svg, Evaluation, RocSeries};
use mallard_model::fit::{self, CvRun, FoldDone};
use mallard_model::train::label_set;
use mallard_model::Input;
use mallard_model::InputKind;
use std::path::{Path, PathBuf};
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
    #[arg(long, value_parser = crate::train_cmd::check::probability)]
    pub threshold: Option<f32>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Write one JSON line per sample: id, label, predicted label, class probabilities.
    #[arg(long, value_name = "OUT.jsonl")]
    pub predictions: Option<PathBuf>,
    /// API-call data: also evaluate on the rows whose set of API names appears nowhere in
    /// this dataset (the training set), which a set-based model cannot have memorised.
    #[arg(long, value_name = "FORMAT:PATH")]
    pub novel_against: Option<DatasetSpec>,
}

/// One JSON line per sample with its true label and the model's probabilities.
fn write_predictions(
    path: &Path,
    labels: &[String],
    ids: &[&str],
    y: &[usize],
    probs: &[f32],
) -> Result<()> {
    use std::io::Write;
    let k = labels.len();
    let f = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    for (i, (id, &t)) in ids.iter().zip(y).enumerate() {
        let p = &probs[i * k..(i + 1) * k];
        let best = (0..k).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        let row = serde_json::json!({ "id": id, "label": labels[t], "predicted": labels[best], "probs": p });
        writeln!(w, "{row}")?;
    }
    w.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

pub fn run(a: EvalArgs, g: &Global) -> Result<()> {
    let first = &a.dataset[0];
    let model = match (&a.model, first.format) {
        (None, DataFormat::Pe) => load_model(Some(Path::new("builtin:pe")))?,
        (None, DataFormat::Csv | DataFormat::Ember) => {
            bail!("a {:?} table needs --model", first.format)
        }
        (m, _) => load_model(m.as_deref())?,
    };
    let mut read = a.read.clone();
    if read.feature_set.is_none() {
        read.feature_set = model.meta().feature_set.clone();
    }
    let meta = model.meta().clone();
    let index = |labels: Vec<&str>| -> Result<Vec<usize>> {
        labels
            .into_iter()
            .map(|l| {
                meta.labels.iter().position(|m| m == l).ok_or_else(|| {
                    anyhow!(
                        "{}: label {l:?} is not one the model knows ({:?})",
                        describe(&a.dataset),
                        meta.labels
                    )
                })
            })
            .collect()
    };
    let t = Instant::now();
    let mut novel: Option<Vec<bool>> = None;
    let (ids, y, probs, n) = if meta.input == InputKind::Features {
        if a.novel_against.is_some() {
            bail!("--novel-against is for API-call data");
        }
        let schema = mallard_model::table_schema(&meta)?;
        let mut table = load_table(first, &read, Some(&schema))?;
        for d in &a.dataset[1..] {
            let more = load_table(d, &read, Some(&schema))?;
            table
                .append(more)
                .map_err(|e| anyhow!("joining {}: {e}", d.path.display()))?;
        }
        let y = index(table.labels.iter().collect())?;
        let inputs: Vec<Input> = (0..table.n_rows())
            .map(|i| Input::Features(table.row(i)))
            .collect();
        let probs = model.predict_proba(&inputs).context("scoring")?;
        let ids: Vec<String> = table
            .ids
            .clone()
            .unwrap_or_else(|| (1..=table.n_rows()).map(|i| format!("row {i}")).collect());
        (ids, y, probs, table.n_rows())
    } else {
        let data = load_labelled(single(&a.dataset)?, &a.read, g.quiet)?;
        let (samples, labels) = (data.samples, data.labels);
        let y = index(labels.iter().map(String::as_str).collect())?;
        let inputs: Vec<Input> = samples.iter().map(|s| Input::Apis(&s.apis)).collect();
        let probs = model.predict_proba(&inputs).context("scoring")?;
        if let Some(r) = &a.novel_against {
            let reference = load_labelled(r, &a.read, true)?;
            novel = Some(mallard_datasets::novel_sets(&samples, &reference.samples));
        }
        (
            samples.iter().map(|s| s.id.clone()).collect(),
            y,
            probs,
            samples.len(),
        )
    };
    let secs = t.elapsed().as_secs_f64();
    if let Some(p) = &a.predictions {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        write_predictions(p, &meta.labels, &ids, &y, &probs)?;
    }
    let threshold = a.threshold.unwrap_or(meta.threshold);
    let ev = evaluate(
        &meta.labels,
        &y,
        &probs,
        meta.positive,
        meta.positive.map(|_| threshold),
    )
    .context("computing metrics")?;
    if !g.quiet {
        eprintln!(
            "read and scored {n} samples in {secs:.3} s ({:.3} ms per sample)",
            secs * 1e3 / n.max(1) as f64
        );
    }
    print!("{}", render_table(&ev));
    let mut extra =
        serde_json::json!({ "model": meta.kind, "dataset": describe(&a.dataset), "seconds": secs });
    if let Some(mask) = &novel {
        let k = meta.labels.len();
        let keep: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        let ny: Vec<usize> = keep.iter().map(|&i| y[i]).collect();
        let np: Vec<f32> = keep
            .iter()
            .flat_map(|&i| probs[i * k..(i + 1) * k].iter().copied())
            .collect();
        let nev = evaluate(
            &meta.labels,
            &ny,
            &np,
            meta.positive,
            meta.positive.map(|_| threshold),
        )
        .context("computing metrics on the novel rows")?;
        println!(
            "\nnovel rows: {} of {n} (their API-name set is not in {})",
            keep.len(),
            a.novel_against
                .as_ref()
                .map_or(String::new(), |r| r.path.display().to_string())
        );
        print!("{}", render_table(&nev));
        if let Some(o) = extra.as_object_mut() {
            o.insert("novel_rows".into(), keep.len().into());
            o.insert("novel".into(), serde_json::to_value(&nev)?);
        }
    }
    let name = format!("{} on {}", meta.kind, names_of(&a.dataset));
    finish(&ev, &name, a.report.as_deref(), a.plots.as_deref(), extra)
}

fn names_of(d: &[DatasetSpec]) -> String {
    d.iter()
        .map(|a| file_name(&a.path))
        .collect::<Vec<_>>()
        .join(" + ")
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn finish(
    ev: &Evaluation,
    title: &str,
    report: Option<&Path>,
    plots: Option<&Path>,
    extra: serde_json::Value,
) -> Result<()> {
    if let Some(out) = report {
        let mut j = serde_json::to_value(ev)?;
        if let (Some(o), serde_json::Value::Object(x)) = (j.as_object_mut(), extra) {
            o.extend(x);
        }
        std::fs::write(out, serde_json::to_string_pretty(&j)? + "\n")
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(dir) = plots {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let Some(points) = ev.roc() {
            let s = [RocSeries {
                name: title,
                points,
                auc: ev.roc_auc,
            }];
            let p = dir.join("roc.svg");
            std::fs::write(&p, roc_svg(&s, &format!("ROC: {title}"), true))
                .with_context(|| format!("writing {}", p.display()))?;
        }
        let p = dir.join("confusion.svg");
        std::fs::write(
            &p,
            confusion_svg(
                &ev.labels,
                &ev.confusion_matrix,
                &format!("Confusion matrix: {title}"),
            ),
        )
        .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

#[derive(Args)]
pub struct CvArgs {
    /// Labelled data as FORMAT:PATH. Feature tables may be given several times (e.g. malware
    /// and benign files): their rows are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetSpec>,
    /// Train each fold on this share of its training groups only (whole groups, stratified):
    /// points of a learning curve. The test folds stay the same.
    #[arg(long, value_name = "F", value_parser = crate::train_cmd::check::share)]
    pub train_fraction: Option<f64>,
    /// Number of folds (at least 2).
    #[arg(long, default_value_t = 5, value_parser = crate::train_cmd::check::at_least_two_folds)]
    pub folds: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub read: ReadArgs,
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

/// Folds never split identical sequences, samples with the same sha256, identical feature
/// rows or named groups; out-of-fold predictions are pooled and evaluated once (per-fold
/// spread reported beside).
pub fn run_cv(a: CvArgs, g: &Global) -> Result<()> {
    let t = Instant::now();
    let quiet = g.quiet;
    let mut on_fold = |f: &FoldDone| {
        if !quiet {
            eprintln!(
                "fold {}/{}: {} train, {} test",
                f.fold, f.of, f.train_rows, f.test_rows
            );
        }
    };
    let (run, kind, ids, extra) = if a.dataset[0].is_table() {
        let table = load_tables(&a.dataset, &a.read)?;
        let fit = a.model.table_fit(g.threads, &table)?;
        let run = fit::cross_validate_table(&table, &fit, a.folds, a.train_fraction, &mut on_fold)?;
        let ids: Vec<String> = (0..table.n_rows())
            .map(|i| {
                (table.ids.as_ref())
                    .and_then(|v| v.get(i).cloned())
                    .unwrap_or_else(|| format!("row {}", i + 1))
            })
            .collect();
        let kind = a.model.kind.clone().unwrap_or_else(|| "gbdt".into());
        let extra = serde_json::json!({ "train_fraction": a.train_fraction.unwrap_or(1.0), "rows": table.n_rows() });
        (run, kind, ids, extra)
    } else {
        if a.train_fraction.is_some() {
            bail!("--train-fraction is for feature tables");
        }
        let data = load_labelled(single(&a.dataset)?, &a.read, g.quiet)?;
        let opts = a.model.options(g.threads, label_set(&data.labels).len())?;
        let seqs: Vec<Vec<String>> = data.samples.iter().map(|s| s.apis.clone()).collect();
        let sha: Vec<Option<String>> = data.samples.iter().map(|s| s.sha256.clone()).collect();
        let mut progress = Progress::new(g.quiet);
        let samples = fit::SampleSet {
            seqs: &seqs,
            labels: &data.labels,
            sha256: &sha,
        };
        let run = fit::cross_validate_samples(
            samples,
            &opts,
            a.folds,
            a.model.seed,
            &mut progress,
            &mut on_fold,
        )?;
        drop(progress);
        let ids = data.samples.into_iter().map(|s| s.id).collect();
        (
            run,
            opts.kind.name().to_string(),
            ids,
            serde_json::json!({}),
        )
    };
    report_cv(&a, g, &run, &kind, &ids, t.elapsed().as_secs_f64(), extra)
}

fn report_cv(
    a: &CvArgs,
    g: &Global,
    run: &CvRun,
    kind: &str,
    ids: &[String],
    secs: f64,
    extra: serde_json::Value,
) -> Result<()> {
    if let Some(p) = &a.predictions {
        let (order, ys, ps) = run.pooled_rows();
        let ids: Vec<&str> = order.iter().map(|&i| ids[i].as_str()).collect();
        write_predictions(p, &run.names, &ids, &ys, &ps)?;
    }
    let cv = run.metrics()?;
    print!("{}", render_table(&cv.pooled));
    let k = run.folds.len();
    if !g.quiet {
        eprintln!(
            "{k}-fold cross-validation of {kind} in {secs:.1} s ({:.2} s training; {} groups never straddle a fold)",
            run.train_secs, run.n_groups
        );
    }
    let title = format!("{kind} {k}-fold CV on {}", names_of(&a.dataset));
    let mut info = serde_json::json!({ "model": kind, "folds": k, "per_fold": cv.per_fold, "seconds": secs, "train_seconds": run.train_secs });
    if let (Some(o), serde_json::Value::Object(x)) = (info.as_object_mut(), extra) {
        o.extend(x);
    }
    finish(
        &cv.pooled,
        &title,
        a.report.as_deref(),
        a.plots.as_deref(),
        info,
    )
}
