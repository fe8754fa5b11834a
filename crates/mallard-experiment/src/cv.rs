//! Grouped k-fold cross-validation on a dataset.

use crate::settings::ModelSettings;
use crate::{during, pass_on, Error, Observer};
use mallard_datasets::{DatasetSpec, ReadOptions};
use mallard_model::fit::{self, CvRun};
use mallard_model::train::label_set;

/// What to cross-validate.
pub struct CvRequest<'a> {
    pub datasets: &'a [DatasetSpec],
    pub read: &'a ReadOptions,
    pub settings: &'a ModelSettings,
    /// Number of folds (at least 2).
    pub folds: usize,
    /// Tables: train each fold on this share of its training groups (learning curves).
    pub train_fraction: Option<f64>,
}

/// Out-of-fold predictions with what a report needs beside them.
pub struct CvOutcome {
    pub run: CvRun,
    /// The model kind cross-validated.
    pub kind: String,
    /// Every row's id, in dataset order.
    pub ids: Vec<String>,
    /// Settings and sizes for the JSON report.
    pub extra: serde_json::Value,
}

/// Folds never split identical sequences, samples with the same sha256, identical feature
/// rows or named groups; out-of-fold predictions are kept for pooled metrics.
pub fn cross_validate(req: &CvRequest<'_>, obs: &mut dyn Observer) -> Result<CvOutcome, Error> {
    let first = req
        .datasets
        .first()
        .ok_or_else(|| Error::Invalid("no dataset given".into()))?;
    if req.settings.reads_bytes() {
        let files = crate::train::byte_files(req.datasets, req.read, obs)?;
        let opts = req.settings.malconv_options()?;
        let set = mallard_model::malconv::FileSet {
            paths: &files.paths,
            labels: &files.labels,
            groups: &files.groups,
        };
        let run = during(
            "cross-validation",
            mallard_model::malconv::cross_validate_files(
                &set,
                &opts,
                req.folds,
                req.settings.seed,
                obs,
            ),
        )?;
        return Ok(CvOutcome {
            run,
            kind: "malconv".into(),
            ids: files
                .paths
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            extra: serde_json::json!({ "rows": files.paths.len(), "malconv": opts.settings }),
        });
    }
    if first.is_table() {
        let mut w = Vec::new();
        let table = mallard_datasets::load_tables(req.datasets, req.read, &mut w);
        pass_on(obs, w, Vec::new());
        let table = table?;
        let fit = req.settings.table_fit(&table)?;
        let run = during(
            "cross-validation",
            fit::cross_validate_table(&table, &fit, req.folds, req.train_fraction, obs),
        )?;
        let ids = (0..table.n_rows())
            .map(|i| {
                (table.ids.as_ref())
                    .and_then(|v| v.get(i).cloned())
                    .unwrap_or_else(|| format!("row {}", i + 1))
            })
            .collect();
        let extra = serde_json::json!({ "train_fraction": req.train_fraction.unwrap_or(1.0), "rows": table.n_rows() });
        return Ok(CvOutcome {
            run,
            kind: req.settings.table_kind().to_string(),
            ids,
            extra,
        });
    }
    if req.train_fraction.is_some() {
        return Err(Error::Invalid(
            "a training share is for feature tables".into(),
        ));
    }
    let (mut w, mut n) = (Vec::new(), Vec::new());
    let data = mallard_datasets::load_labelled(
        mallard_datasets::single(req.datasets)?,
        req.read,
        &mut w,
        &mut n,
    );
    pass_on(obs, w, n);
    let data = data?;
    let opts = req
        .settings
        .sequence_options(label_set(&data.labels).len())?;
    let seqs: Vec<Vec<String>> = data.samples.iter().map(|s| s.apis.clone()).collect();
    let sha: Vec<Option<String>> = data.samples.iter().map(|s| s.sha256.clone()).collect();
    let samples = fit::SampleSet {
        seqs: &seqs,
        labels: &data.labels,
        sha256: &sha,
    };
    let run = during(
        "cross-validation",
        fit::cross_validate_samples(samples, &opts, req.folds, req.settings.seed, obs),
    )?;
    Ok(CvOutcome {
        run,
        kind: opts.kind.name().to_string(),
        ids: data.samples.into_iter().map(|s| s.id).collect(),
        extra: serde_json::json!({}),
    })
}
