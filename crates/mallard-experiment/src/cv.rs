//! Grouped k-fold cross-validation on a dataset.

use crate::settings::ModelSettings;
use crate::{during, pass_on, Error, Observer};
use mallard_datasets::{DataFormat, DatasetSpec, ReadOptions};
use mallard_eval::FoldPlan;
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
    /// Folds fixed ahead, by file sha256 (PE files and EMBER rows only): several detectors
    /// on the same files then test each file in the same fold.
    pub fold_plan: Option<&'a FoldPlan>,
    /// Find each row's sha256 even without a plan (to write the folds used as a plan).
    pub want_keys: bool,
}

/// Out-of-fold predictions with what a report needs beside them.
pub struct CvOutcome {
    pub run: CvRun,
    /// The model kind cross-validated.
    pub kind: String,
    /// Every row's id, in dataset order.
    pub ids: Vec<String>,
    /// Every row's sha256 in dataset order, when a plan was given or `want_keys` asked.
    pub keys: Option<Vec<String>>,
    /// Settings and sizes for the JSON report.
    pub extra: serde_json::Value,
    /// Rows outside the feature set's domain, in dataset order (empty: every row is in it):
    /// written to the predictions so that a stack lets the model speak for its domain only.
    pub outside: Vec<bool>,
}

impl CvOutcome {
    /// Every row's out-of-fold prediction as a JSON line (`output::write_predictions`).
    pub fn write_predictions(&self, path: &std::path::Path) -> Result<(), Error> {
        let (order, ys, ps) = self.run.pooled_rows();
        let ids: Vec<&str> = order.iter().map(|&i| self.ids[i].as_str()).collect();
        let outside: Vec<bool> = (order.iter())
            .map(|&i| self.outside.get(i).copied().unwrap_or(false))
            .collect();
        crate::output::write_predictions(path, &self.run.names, &ids, &ys, &ps, &outside)
    }
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
        let keys = wanted_keys(req, || files_sha256(&files.paths, obs))?;
        let fixed = plan_folds(req, keys.as_deref())?;
        let run = during(
            "cross-validation",
            mallard_model::malconv::cross_validate_files(
                &set,
                &opts,
                req.folds,
                req.settings.seed,
                fixed,
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
            keys,
            extra: serde_json::json!({ "rows": files.paths.len(), "malconv": opts.settings }),
            outside: Vec::new(),
        });
    }
    if first.is_table() {
        let mut w = Vec::new();
        let table = mallard_datasets::load_tables(req.datasets, req.read, &mut w);
        pass_on(obs, w, Vec::new());
        let table = table?;
        let fit = req.settings.table_fit(&table)?;
        let ids: Vec<String> = (0..table.n_rows())
            .map(|i| {
                (table.ids.as_ref())
                    .and_then(|v| v.get(i).cloned())
                    .unwrap_or_else(|| format!("row {}", i + 1))
            })
            .collect();
        // EMBER rows carry their file's sha256 as id; rows of a `pe:` folder, its path.
        let keys = wanted_keys(req, || {
            if req.datasets.iter().all(|d| d.format == DataFormat::Pe) {
                let paths: Vec<std::path::PathBuf> = ids.iter().map(Into::into).collect();
                files_sha256(&paths, obs)
            } else if table.ids.is_some() {
                Ok(ids.clone())
            } else {
                Err(Error::Invalid(
                    "a fold file needs rows with a sha256 (EMBER rows or pe: folders)".into(),
                ))
            }
        })?;
        let fixed = plan_folds(req, keys.as_deref())?;
        let run = during(
            "cross-validation",
            fit::cross_validate_table(&table, &fit, req.folds, req.train_fraction, fixed, obs),
        )?;
        let extra = serde_json::json!({ "train_fraction": req.train_fraction.unwrap_or(1.0), "rows": table.n_rows() });
        return Ok(CvOutcome {
            run,
            kind: req.settings.table_kind().to_string(),
            ids,
            keys,
            extra,
            outside: mallard_model::stack::outside_domain(&table),
        });
    }
    if req.train_fraction.is_some() {
        return Err(Error::Invalid(
            "a training share is for feature tables".into(),
        ));
    }
    if req.fold_plan.is_some() || req.want_keys {
        return Err(Error::Invalid(
            "fold files are for PE files and EMBER rows (keyed by sha256), not sequences".into(),
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
        keys: None,
        extra: serde_json::json!({}),
        outside: Vec::new(),
    })
}

/// The rows' sha256 keys when a plan is given or they are wanted; `find` computes them.
fn wanted_keys(
    req: &CvRequest<'_>,
    find: impl FnOnce() -> Result<Vec<String>, Error>,
) -> Result<Option<Vec<String>>, Error> {
    if req.fold_plan.is_some() || req.want_keys {
        find().map(Some)
    } else {
        Ok(None)
    }
}

/// Each fold's test rows from the plan, checked against `--folds`.
fn plan_folds(
    req: &CvRequest<'_>,
    keys: Option<&[String]>,
) -> Result<Option<Vec<Vec<usize>>>, Error> {
    let (Some(plan), Some(keys)) = (req.fold_plan, keys) else {
        return Ok(None);
    };
    if plan.k() != req.folds {
        return Err(Error::Invalid(format!(
            "the fold file has {} folds, but {} were asked for (--folds)",
            plan.k(),
            req.folds
        )));
    }
    Ok(Some(plan.folds(keys)?))
}

/// The sha256 of each file's contents, lower-case hex (regular files only).
fn files_sha256(
    paths: &[std::path::PathBuf],
    obs: &mut dyn Observer,
) -> Result<Vec<String>, Error> {
    obs.stage("hashing files for the fold file");
    paths
        .iter()
        .map(|p| fit::file_sha256(p).map_err(|e| Error::Invalid(e.to_string())))
        .collect()
}

/// Largest fold file read: some 3 million files.
const MAX_FOLD_FILE_BYTES: u64 = 256 << 20;

/// Reads a fold file (see [`FoldPlan`]) under a size cap.
pub fn read_fold_plan(path: &std::path::Path) -> Result<FoldPlan, Error> {
    let text = mallard_io::read_capped(path, MAX_FOLD_FILE_BYTES)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    FoldPlan::parse(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// Writes the folds a cross-validation used (each fold's test rows), keyed by the rows'
/// sha256, as a fold file other detectors can be given.
pub fn write_fold_plan(
    path: &std::path::Path,
    keys: &[String],
    folds: &[Vec<usize>],
) -> Result<(), Error> {
    std::fs::write(path, FoldPlan::render(keys, folds)).map_err(|error| Error::Write {
        path: path.display().to_string(),
        error,
    })
}
