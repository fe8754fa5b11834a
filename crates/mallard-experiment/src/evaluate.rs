//! Scoring a labelled dataset with a trained model, and its metrics.

use crate::{during, pass_on, Error, Observer};
use mallard_datasets::{DataFormat, DatasetSpec, ReadOptions};
use mallard_eval::{evaluate, Evaluation};
use mallard_model::{Input, InputKind, Model};
use std::time::Instant;

/// The model a dataset is scored with when none is named: `builtin:pe` for PE folders,
/// `builtin:api` for API-call data; feature tables have no default.
pub fn default_model(first: &DatasetSpec) -> Result<&'static str, Error> {
    match first.format {
        DataFormat::Pe => Ok("builtin:pe"),
        DataFormat::Csv | DataFormat::Ember | DataFormat::Opcodes => Err(Error::Invalid(format!(
            "{}: no built-in model reads this kind of data; name one with --model",
            first.path.display()
        ))),
        _ => Ok("builtin:api"),
    }
}

/// A dataset's rows with their true class ids and the model's probabilities.
pub struct Scored {
    /// The model's class names.
    pub labels: Vec<String>,
    pub positive: Option<usize>,
    /// The model's own threshold on P(positive).
    pub threshold: f32,
    /// Row ids (file names, sample ids, or `row N`).
    pub ids: Vec<String>,
    pub y: Vec<usize>,
    /// Row-major `[rows, labels]`.
    pub probs: Vec<f32>,
    /// Rows whose API-name set appears nowhere in the reference (training) data.
    pub novel: Option<Vec<bool>>,
    pub seconds: f64,
}

/// Reads `datasets` as the model expects (tables: its columns, by name) and scores every
/// row. `novel_against` (API-call data only) marks the rows whose set of API names is not
/// in that dataset.
pub fn score(
    model: &dyn Model,
    datasets: &[DatasetSpec],
    read: &ReadOptions,
    novel_against: Option<&DatasetSpec>,
    obs: &mut dyn Observer,
) -> Result<Scored, Error> {
    let meta = model.meta();
    let mut read = read.clone();
    if read.feature_set.is_none() {
        read.feature_set = meta.feature_set.clone();
    }
    let index = |labels: Vec<&str>| -> Result<Vec<usize>, Error> {
        labels
            .into_iter()
            .map(|l| {
                meta.labels.iter().position(|m| m == l).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: label {l:?} is not one the model knows ({:?})",
                        mallard_datasets::describe(datasets),
                        meta.labels
                    ))
                })
            })
            .collect()
    };
    let t = Instant::now();
    let mut novel = None;
    let (ids, y, probs) = if meta.input == InputKind::Bytes {
        if novel_against.is_some() {
            return Err(Error::Invalid(
                "novel rows are defined for API-call data".into(),
            ));
        }
        let files = crate::train::byte_files(datasets, &read, obs)?;
        let y = index(files.labels.iter().map(String::as_str).collect())?;
        let mut probs = Vec::with_capacity(y.len() * meta.labels.len());
        let max = mallard_model::Caps::default().max_pe_bytes;
        for p in &files.paths {
            let bytes = mallard_model::malconv::read_prefix(p, max).map_err(Error::Invalid)?;
            probs.extend(during(
                "scoring",
                model.predict_proba(&[Input::Bytes(&bytes)]),
            )?);
        }
        let ids = files
            .paths
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        (ids, y, probs)
    } else if meta.input == InputKind::Features {
        if novel_against.is_some() {
            return Err(Error::Invalid(
                "novel rows are defined for API-call data".into(),
            ));
        }
        let schema = during("model", mallard_model::table_schema(meta))?;
        let mut warnings = Vec::new();
        let mut table = None;
        for d in datasets {
            let more = mallard_datasets::load_table(d, &read, Some(&schema), &mut warnings);
            pass_on(obs, std::mem::take(&mut warnings), Vec::new());
            let more = more?;
            match &mut table {
                None => table = Some(more),
                Some(t) => t
                    .append(more)
                    .map_err(|e| Error::Invalid(format!("joining {}: {e}", d.path.display())))?,
            }
        }
        let table = table.ok_or_else(|| Error::Invalid("no dataset given".into()))?;
        let y = index(table.labels.iter().collect())?;
        let inputs: Vec<Input> = (0..table.n_rows())
            .map(|i| Input::Features(table.row(i)))
            .collect();
        let probs = during("scoring", model.predict_proba(&inputs))?;
        let ids = table
            .ids
            .clone()
            .unwrap_or_else(|| (1..=table.n_rows()).map(|i| format!("row {i}")).collect());
        (ids, y, probs)
    } else {
        let dataset = mallard_datasets::single(datasets)?;
        if dataset.token_source() != meta.feature_set.as_deref() {
            let what = |s: Option<&str>| s.map_or("API calls", |_| "opcode sequences of PE files");
            return Err(Error::Invalid(format!(
                "{}: {}, but the {} model reads {}",
                dataset.path.display(),
                what(dataset.token_source()),
                meta.kind,
                what(meta.feature_set.as_deref())
            )));
        }
        let data = load(dataset, &read, obs)?;
        let y = index(data.labels.iter().map(String::as_str).collect())?;
        let inputs: Vec<Input> = data.samples.iter().map(|s| Input::Apis(&s.apis)).collect();
        let probs = during("scoring", model.predict_proba(&inputs))?;
        if let Some(r) = novel_against {
            let reference = load(r, &read, &mut mallard_model::train::Quiet)?;
            novel = Some(mallard_datasets::novel_sets(
                &data.samples,
                &reference.samples,
            ));
        }
        (data.samples.into_iter().map(|s| s.id).collect(), y, probs)
    };
    let seconds = t.elapsed().as_secs_f64();
    obs.info(&format!(
        "read and scored {} samples in {seconds:.3} s ({:.3} ms per sample)",
        y.len(),
        seconds * 1e3 / y.len().max(1) as f64
    ));
    Ok(Scored {
        labels: meta.labels.clone(),
        positive: meta.positive,
        threshold: meta.threshold,
        ids,
        y,
        probs,
        novel,
        seconds,
    })
}

fn load(
    spec: &DatasetSpec,
    read: &ReadOptions,
    obs: &mut dyn Observer,
) -> Result<mallard_datasets::Labelled, Error> {
    let (mut w, mut n) = (Vec::new(), Vec::new());
    let r = mallard_datasets::load_labelled(spec, read, &mut w, &mut n);
    pass_on(obs, w, n);
    Ok(r?)
}

impl Scored {
    /// Metrics of all rows at `threshold` (default: the model's).
    pub fn evaluate(&self, threshold: Option<f32>) -> Result<Evaluation, Error> {
        self.evaluate_rows(None, threshold)
    }

    /// Metrics of the novel rows alone, with their number; `None` without a reference.
    pub fn evaluate_novel(
        &self,
        threshold: Option<f32>,
    ) -> Result<Option<(usize, Evaluation)>, Error> {
        let Some(mask) = &self.novel else {
            return Ok(None);
        };
        let keep: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        Ok(Some((
            keep.len(),
            self.evaluate_rows(Some(&keep), threshold)?,
        )))
    }

    fn evaluate_rows(
        &self,
        rows: Option<&[usize]>,
        threshold: Option<f32>,
    ) -> Result<Evaluation, Error> {
        let t = self.positive.map(|_| threshold.unwrap_or(self.threshold));
        let Some(rows) = rows else {
            return Ok(evaluate(
                &self.labels,
                &self.y,
                &self.probs,
                self.positive,
                t,
            )?);
        };
        let k = self.labels.len();
        let y: Vec<usize> = rows.iter().map(|&i| self.y[i]).collect();
        let p: Vec<f32> = rows
            .iter()
            .flat_map(|&i| self.probs[i * k..(i + 1) * k].iter().copied())
            .collect();
        Ok(evaluate(&self.labels, &y, &p, self.positive, t)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored() -> Scored {
        // Rows 0-3: two benign, two malicious, one of each mis-ranked; rows 2 and 3 novel.
        Scored {
            labels: vec!["benign".into(), "malicious".into()],
            positive: Some(1),
            threshold: 0.5,
            ids: (0..4).map(|i| format!("r{i}")).collect(),
            y: vec![0, 1, 0, 1],
            probs: vec![0.9, 0.1, 0.2, 0.8, 0.3, 0.7, 0.6, 0.4],
            novel: Some(vec![false, false, true, true]),
            seconds: 0.0,
        }
    }

    #[test]
    fn novel_rows_are_evaluated_apart_from_the_rest() {
        let s = scored();
        let all = s.evaluate(None).unwrap();
        // Hand count at 0.5: row 0 TN, row 1 TP, row 2 FP, row 3 FN.
        assert_eq!(all.confusion_matrix, vec![vec![1, 1], vec![1, 1]]);
        let (n, novel) = s.evaluate_novel(None).unwrap().unwrap();
        assert_eq!(n, 2);
        assert_eq!(novel.confusion_matrix, vec![vec![0, 1], vec![1, 0]]);
        // P(malicious) 0.7 for the benign row, 0.4 for the malicious one: AUC 0.
        assert_eq!(novel.roc_auc, Some(0.0));
        // A lower threshold flags the novel malicious row.
        let (_, low) = s.evaluate_novel(Some(0.35)).unwrap().unwrap();
        assert_eq!(low.confusion_matrix, vec![vec![0, 1], vec![0, 1]]);
    }

    #[test]
    fn tables_have_no_default_model_pe_folders_and_reports_do() {
        let spec = |s: &str| s.parse::<DatasetSpec>().unwrap();
        assert_eq!(default_model(&spec("pe:dir")).unwrap(), "builtin:pe");
        assert_eq!(default_model(&spec("cape:dir")).unwrap(), "builtin:api");
        assert!(default_model(&spec("csv:t.csv")).is_err());
    }
}
