//! Training a model file from datasets.

use crate::settings::ModelSettings;
use crate::{during, pass_on, Error, Observer};
use mallard_datasets::{DatasetSpec, ReadOptions};
use mallard_model::fit;
use mallard_model::train::label_set;
use mallard_model::{Model, ModelFile};
use std::path::PathBuf;
use std::time::Instant;

/// What to train on and how.
pub struct TrainRequest<'a> {
    /// API-call data (one dataset) or feature tables (their rows are joined).
    pub datasets: &'a [DatasetSpec],
    pub read: &'a ReadOptions,
    pub settings: &'a ModelSettings,
    /// Files whose sha256 the model records beside the datasets' (corpus manifests).
    pub manifests: &'a [PathBuf],
    /// The command that trained, recorded in the model file's provenance.
    pub command: &'a str,
}

/// Trains a model and returns its file, with the provenance (datasets, manifests, their
/// sha256, rows per label) and, for tables, the calibrated threshold in its metadata.
pub fn train(req: &TrainRequest<'_>, obs: &mut dyn Observer) -> Result<ModelFile, Error> {
    let first = req
        .datasets
        .first()
        .ok_or_else(|| Error::Invalid("no dataset given".into()))?;
    let paths: Vec<&std::path::Path> = req.datasets.iter().map(|d| d.path.as_path()).collect();
    if req.settings.reads_bytes() {
        return train_bytes(req, &paths, obs);
    }
    if first.is_table() {
        return train_table(req, &paths, obs);
    }
    let dataset = mallard_datasets::single(req.datasets)?;
    let t = Instant::now();
    let (mut warnings, mut notes) = (Vec::new(), Vec::new());
    let data = mallard_datasets::load_labelled(dataset, req.read, &mut warnings, &mut notes);
    pass_on(obs, warnings, notes);
    let data = data?;
    let opts = req
        .settings
        .sequence_options(label_set(&data.labels).len())?;
    obs.info(&format!(
        "read {} samples from {} in {:.2} s",
        data.samples.len(),
        dataset.path.display(),
        t.elapsed().as_secs_f64()
    ));
    let provenance = during(
        "provenance",
        fit::provenance(req.command, &paths, req.manifests, &data.labels),
    )?;
    let seqs: Vec<Vec<String>> = data.samples.into_iter().map(|s| s.apis).collect();
    let model = during(
        "training",
        mallard_model::train::train(&seqs, &data.labels, &opts, obs),
    )?;
    let mut file = during("training", model.to_file())?;
    file.meta.feature_set = dataset.token_source().map(String::from);
    if let Some(o) = file.meta.training.as_object_mut() {
        o.insert("provenance".into(), provenance);
    }
    obs.info(&format!(
        "trained {} (labels {:?}) in {:.1} s",
        file.meta.kind,
        file.meta.labels,
        t.elapsed().as_secs_f64()
    ));
    Ok(file)
}

fn train_table(
    req: &TrainRequest<'_>,
    paths: &[&std::path::Path],
    obs: &mut dyn Observer,
) -> Result<ModelFile, Error> {
    let t = Instant::now();
    let mut warnings = Vec::new();
    let table = mallard_datasets::load_tables(req.datasets, req.read, &mut warnings);
    pass_on(obs, warnings, Vec::new());
    let table = table?;
    let fit = req.settings.table_fit(&table)?;
    obs.info(&format!(
        "read {} rows x {} features from {} in {:.2} s{}",
        table.n_rows(),
        table.n_cols(),
        mallard_datasets::describe(req.datasets),
        t.elapsed().as_secs_f64(),
        fit.feature_set
            .as_ref()
            .map(|s| format!(" (columns of the {s} feature set: the model can scan PE files)"))
            .unwrap_or_default()
    ));
    // Everything that reads the table runs first, so that the fit can consume it.
    let provenance = during(
        "provenance",
        fit::provenance(req.command, paths, req.manifests, table.labels.iter()),
    )?;
    let calibration = match req.settings.calibrate_fpr {
        Some(fpr) => Some(during("calibrating", fit::calibrate(&table, &fit, fpr))?),
        None => None,
    };
    let t = Instant::now();
    let model = during("training", fit::fit_table_owned(table, &fit))?;
    let secs = t.elapsed().as_secs_f64();
    let mut file = during("training", model.to_file())?;
    if let Some(c) = &calibration {
        let p = c.chosen;
        obs.info(&format!(
            "calibrated threshold {:.6}: out-of-fold FPR <= {} at TPR {:.4}",
            p.threshold, p.max_fpr, p.oof_tpr
        ));
        for p in &c.points {
            obs.info(&format!(
                "  out-of-fold FPR <= {}: threshold {:.6}, TPR {:.4}",
                p.max_fpr, p.threshold, p.oof_tpr
            ));
        }
        file.meta.threshold = p.threshold;
    }
    if let Some(o) = file.meta.training.as_object_mut() {
        if let Some(c) = &calibration {
            o.insert("calibration".into(), c.to_json());
        }
        o.insert("provenance".into(), provenance);
        if let Some(p) = req.settings.balance_kinds {
            o.insert("balance_kinds".into(), p.into());
        }
    }
    let tr = &file.meta.training;
    let stopped = match (
        tr.get("validation_samples").and_then(|v| v.as_u64()),
        tr.get("rounds").or(tr.get("epochs")),
    ) {
        (Some(v), Some(r)) if v > 0 => {
            format!(", early stopping on {v} held-out rows kept {r} rounds")
        }
        _ => String::new(),
    };
    obs.info(&format!(
        "trained {} in {secs:.2} s{stopped} (labels {:?})",
        file.meta.kind, file.meta.labels
    ));
    if let Some(imp) = model.feature_importance() {
        let total: f64 = imp.iter().map(|r| r.1).sum::<f64>().max(f64::MIN_POSITIVE);
        let top: Vec<String> = imp
            .iter()
            .take(10)
            .map(|(n, gain, _)| format!("{n} {:.1}%", 100.0 * gain / total))
            .collect();
        obs.info(&format!("top features by gain: {}", top.join(", ")));
    }
    Ok(file)
}

/// The labelled files of the one `pe:` dataset a byte model reads.
pub(crate) fn byte_files(
    datasets: &[DatasetSpec],
    read: &ReadOptions,
    obs: &mut dyn Observer,
) -> Result<mallard_datasets::LabelledFiles, Error> {
    let d = mallard_datasets::single(datasets)?;
    if d.format != mallard_datasets::DataFormat::Pe {
        return Err(Error::Invalid(format!(
            "{}: MalConv reads the bytes of PE files: give a pe:DIR dataset (DIR/<label>/...)",
            d.path.display()
        )));
    }
    let mut w = Vec::new();
    let files = mallard_datasets::labelled_pe_files(&d.path, read, &mut w);
    pass_on(obs, w, Vec::new());
    let files = files?;
    if files.paths.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no PE files in label folders",
            d.path.display()
        )));
    }
    Ok(files)
}

fn train_bytes(
    req: &TrainRequest<'_>,
    paths: &[&std::path::Path],
    obs: &mut dyn Observer,
) -> Result<ModelFile, Error> {
    let t = Instant::now();
    let files = byte_files(req.datasets, req.read, obs)?;
    let opts = req.settings.malconv_options()?;
    obs.info(&format!(
        "read {} files from {}; MalConv {:?}",
        files.paths.len(),
        mallard_datasets::describe(req.datasets),
        opts.settings
    ));
    let provenance = during(
        "provenance",
        fit::provenance(req.command, paths, req.manifests, files.labels.iter()),
    )?;
    let set = mallard_model::malconv::FileSet {
        paths: &files.paths,
        labels: &files.labels,
        groups: &files.groups,
    };
    let model = during(
        "training",
        mallard_model::malconv::train_files(&set, &opts, obs),
    )?;
    let mut file = during("training", model.to_file())?;
    if let Some(o) = file.meta.training.as_object_mut() {
        o.insert("provenance".into(), provenance);
    }
    obs.info(&format!(
        "trained malconv (labels {:?}) in {:.1} s",
        file.meta.labels,
        t.elapsed().as_secs_f64()
    ));
    Ok(file)
}
