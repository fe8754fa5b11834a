//! `mallard eval` and `mallard cv`.

use crate::dataset::{
    describe, guess_feature_set, load_labelled, load_table, load_tables, single, DataFormat,
    DatasetArg, ReadArgs,
};
use crate::train_cmd::{ModelArgs, Progress};
use crate::{load_model, Global};
use anyhow::anyhow;
use anyhow::{bail, Context, Result};
use clap::Args;
use mallard_eval::{confusion_svg, evaluate, render_table, roc_svg, Evaluation, RocSeries};
use mallard_model::train::{label_set, train};
use mallard_model::Input;
use mallard_model::{InputKind, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled data as FORMAT:PATH (malbehavd, malapi, cuckoo, cape, jsonl; csv, ember, pe).
    /// Feature tables may be given several times: their rows are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetArg>,
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
        (None, DataFormat::Pe) => crate::load_default_pe_model()?,
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
    let (ids, y, probs, n) = if meta.input == InputKind::Features {
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
        let (samples, labels) = load_labelled(single(&a.dataset)?, &a.read, g.quiet)?;
        let y = index(labels.iter().map(String::as_str).collect())?;
        let inputs: Vec<Input> = samples.iter().map(|s| Input::Apis(&s.apis)).collect();
        let probs = model.predict_proba(&inputs).context("scoring")?;
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
    let name = format!("{} on {}", meta.kind, names_of(&a.dataset));
    finish(
        &ev,
        &name,
        a.report.as_deref(),
        a.plots.as_deref(),
        serde_json::json!({ "model": meta.kind, "dataset": describe(&a.dataset), "seconds": secs }),
    )
}

fn names_of(d: &[DatasetArg]) -> String {
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
    pub dataset: Vec<DatasetArg>,
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

/// Folds never split identical sequences or samples with the same sha256; out-of-fold
/// predictions are pooled and evaluated once (per-fold spread reported beside).
pub fn run_cv(a: CvArgs, g: &Global) -> Result<()> {
    if !matches!(a.dataset[0].format, DataFormat::Seq(_)) {
        return run_cv_table(a, g);
    }
    if a.train_fraction.is_some() {
        bail!("--train-fraction is for feature tables");
    }
    let (samples, labels) = load_labelled(single(&a.dataset)?, &a.read, g.quiet)?;
    let names = label_set(&labels);
    let opts = a.model.options(g.threads, names.len())?;
    let y: Vec<usize> = labels
        .iter()
        .map(|l| names.iter().position(|n| n == l).unwrap_or(0))
        .collect();
    let seqs: Vec<Vec<String>> = samples.iter().map(|s| s.apis.clone()).collect();
    let sha: Vec<Option<String>> = samples.iter().map(|s| s.sha256.clone()).collect();
    let groups = mallard_eval::groups_union(&seqs, &sha)?;
    let folds = mallard_eval::stratified_group_kfold(&groups, &y, a.folds, a.model.seed)?;
    let mut fold_y: Vec<Vec<usize>> = Vec::new();
    let mut fold_p: Vec<Vec<f32>> = Vec::new();
    let mut positive = None;
    let t = Instant::now();
    for (f, test) in folds.iter().enumerate() {
        let train_idx = mallard_eval::complement(seqs.len(), test);
        if !g.quiet {
            eprintln!(
                "fold {}/{}: {} train, {} test",
                f + 1,
                folds.len(),
                train_idx.len(),
                test.len()
            );
        }
        let tr_x: Vec<Vec<String>> = train_idx.iter().map(|&i| seqs[i].clone()).collect();
        let tr_y: Vec<String> = train_idx.iter().map(|&i| labels[i].clone()).collect();
        let mut progress = Progress::new(g.quiet);
        let model = train(&tr_x, &tr_y, &opts, &mut progress)?;
        drop(progress);
        if model.meta().labels != names {
            bail!(
                "fold {} lacks a class: its model has labels {:?}",
                f + 1,
                model.meta().labels
            );
        }
        positive = model.meta().positive;
        let inputs: Vec<Input> = test.iter().map(|&i| Input::Apis(&seqs[i])).collect();
        fold_p.push(model.predict_proba(&inputs)?);
        fold_y.push(test.iter().map(|&i| y[i]).collect());
    }
    if let Some(p) = &a.predictions {
        let order: Vec<usize> = folds.iter().flatten().copied().collect();
        let ids: Vec<&str> = order.iter().map(|&i| samples[i].id.as_str()).collect();
        let ys: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        let ps: Vec<f32> = fold_p.concat();
        write_predictions(p, &names, &ids, &ys, &ps)?;
    }
    let fp: Vec<mallard_eval::FoldPredictions> = fold_y
        .iter()
        .zip(&fold_p)
        .map(|(y, p)| mallard_eval::FoldPredictions {
            y_true: y,
            probs: p,
        })
        .collect();
    let cv = mallard_eval::pooled(&names, &fp, positive, positive.map(|_| 0.5))?;
    print!("{}", render_table(&cv.pooled));
    if !g.quiet {
        eprintln!(
            "{}-fold cross-validation of {} in {:.1} s",
            folds.len(),
            opts.kind.name(),
            t.elapsed().as_secs_f64()
        );
    }
    let title = format!(
        "{} {}-fold CV on {}",
        opts.kind.name(),
        folds.len(),
        names_of(&a.dataset)
    );
    finish(
        &cv.pooled,
        &title,
        a.report.as_deref(),
        a.plots.as_deref(),
        serde_json::json!({ "model": opts.kind.name(), "folds": folds.len(), "per_fold": cv.per_fold, "seconds": t.elapsed().as_secs_f64() }),
    )
}

/// Table cross-validation: identical feature rows share a group, so duplicates never
/// straddle a fold boundary.
fn run_cv_table(a: CvArgs, g: &Global) -> Result<()> {
    let learner = a.model.learner(g.threads)?;
    let table = load_tables(&a.dataset, &a.read)?;
    let set = guess_feature_set(&table.columns);
    let names = label_set(&table.labels);
    let y = table.label_indices(&names).map_err(|e| anyhow!("{e}"))?;
    let groups = crate::dataset::table_groups(&table)?;
    let folds = mallard_eval::stratified_group_kfold(&groups, &y, a.folds, a.model.seed)?;
    if let Some(f) = a.train_fraction {
        if !(f > 0.0 && f <= 1.0) {
            bail!("--train-fraction must be in (0, 1], got {f}");
        }
    }
    if !g.quiet {
        let n_groups = groups.iter().max().map_or(0, |m| m + 1);
        eprintln!(
            "{} rows ({}) in {n_groups} groups that never straddle a fold",
            table.n_rows(),
            names
                .iter()
                .enumerate()
                .map(|(k, n)| format!("{} {n}", y.iter().filter(|&&v| v == k).count()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let t = Instant::now();
    let mut fold_y = Vec::new();
    let mut fold_p = Vec::new();
    let mut positive = None;
    let mut train_secs = 0.0;
    for (f, test) in folds.iter().enumerate() {
        let mut train_idx = mallard_eval::complement(table.n_rows(), test);
        if let Some(frac) = a.train_fraction.filter(|&f| f < 1.0) {
            let sub_g: Vec<usize> = train_idx.iter().map(|&i| groups[i]).collect();
            let sub_y: Vec<usize> = train_idx.iter().map(|&i| y[i]).collect();
            let (_, keep) = mallard_eval::stratified_group_split(
                &sub_g,
                &sub_y,
                frac,
                a.model.seed ^ (f as u64 + 1),
            )?;
            train_idx = keep.iter().map(|&k| train_idx[k]).collect();
        }
        let tt = Instant::now();
        let model =
            crate::train_cmd::fit_table(&table.select_rows(&train_idx), &a.model, &learner, set)?;
        train_secs += tt.elapsed().as_secs_f64();
        if model.meta().labels != names {
            bail!(
                "fold {} lacks a class: its model has labels {:?}",
                f + 1,
                model.meta().labels
            );
        }
        positive = model.meta().positive;
        let inputs: Vec<Input> = test
            .iter()
            .map(|&i| Input::Features(table.row(i)))
            .collect();
        fold_p.push(model.predict_proba(&inputs)?);
        fold_y.push(test.iter().map(|&i| y[i]).collect::<Vec<_>>());
        if !g.quiet {
            eprintln!(
                "fold {}/{}: {} train, {} test",
                f + 1,
                folds.len(),
                train_idx.len(),
                test.len()
            );
        }
    }
    if let Some(p) = &a.predictions {
        let order: Vec<usize> = folds.iter().flatten().copied().collect();
        let ids: Vec<String> = order
            .iter()
            .map(|&i| {
                table
                    .ids
                    .as_ref()
                    .and_then(|v| v.get(i).cloned())
                    .unwrap_or_else(|| format!("row {}", i + 1))
            })
            .collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let ys: Vec<usize> = order.iter().map(|&i| y[i]).collect();
        write_predictions(p, &names, &ids, &ys, &fold_p.concat())?;
    }
    let fp: Vec<mallard_eval::FoldPredictions> = fold_y
        .iter()
        .zip(&fold_p)
        .map(|(y, p)| mallard_eval::FoldPredictions {
            y_true: y,
            probs: p,
        })
        .collect();
    let cv = mallard_eval::pooled(&names, &fp, positive, positive.map(|_| 0.5))?;
    print!("{}", render_table(&cv.pooled));
    let kind = a.model.kind.clone().unwrap_or_else(|| "gbdt".into());
    if !g.quiet {
        eprintln!(
            "{}-fold cross-validation of {kind} in {:.1} s ({train_secs:.2} s training)",
            folds.len(),
            t.elapsed().as_secs_f64()
        );
    }
    let title = format!("{kind} {}-fold CV on {}", folds.len(), names_of(&a.dataset));
    finish(
        &cv.pooled,
        &title,
        a.report.as_deref(),
        a.plots.as_deref(),
        serde_json::json!({ "model": kind, "folds": folds.len(), "per_fold": cv.per_fold, "train_seconds": train_secs, "train_fraction": a.train_fraction.unwrap_or(1.0), "rows": table.n_rows() }),
    )
}
