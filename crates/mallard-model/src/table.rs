//! Classifiers over feature tables: boosted trees and a feed-forward net.

use crate::{Input, InputKind, Meta, Model, ModelError, ModelFile, Reason, Tensor};
use mallard_gbdt::{Dataset, Gbdt, GbdtMeta, GbdtParams};
use mallard_mlp::{Mlp, MlpMeta, MlpParams};
use mallard_tables::{Table, TableSchema};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Stored {
    schema: StoredSchema,
    /// Column means of the training data: the "absent" value for occlusion. Files of format
    /// version 3 on hold them in the tensor [`MEANS_TENSOR`] instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    means: Option<Vec<f32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gbdt: Option<GbdtMeta>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mlp: Option<MlpMeta>,
}

/// The column means as a tensor `[columns]` (format version 3 on).
pub(crate) const MEANS_TENSOR: &str = "table.means";

/// What a file holds for the schema: [`NUMERIC`] when every column is a number named as in
/// `feature_names` (every table a feature extractor makes: EMBER's 2381 column names
/// twice over were a third of the built-in model's metadata), else every column.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredSchema {
    Word(String),
    Columns(TableSchema),
}

/// The word for an all-numeric schema named as the feature names.
pub(crate) const NUMERIC: &str = "numeric";

impl StoredSchema {
    fn of(schema: &TableSchema, names: &[String]) -> StoredSchema {
        let numeric = schema.columns.len() == names.len()
            && schema
                .columns
                .iter()
                .zip(names)
                .all(|(c, n)| c.categories.is_none() && c.name == *n);
        if numeric {
            StoredSchema::Word(NUMERIC.into())
        } else {
            StoredSchema::Columns(schema.clone())
        }
    }

    /// The schema, and whether it is the all-numeric one (then empty here: the model
    /// makes it from its names when asked for).
    fn read(self) -> Result<(TableSchema, bool), ModelError> {
        match self {
            StoredSchema::Word(w) if w == NUMERIC => Ok((TableSchema::default(), true)),
            StoredSchema::Word(w) => Err(ModelError::Corrupt(format!(
                "table schema {w:?}: neither {NUMERIC:?} nor a list of columns"
            ))),
            StoredSchema::Columns(s) => Ok((s, false)),
        }
    }
}

/// [`Stored`] as scoring reads it: the schema and the means are kept as JSON text, with
/// only their lengths checked (boosted trees never read either; a net's means are parsed
/// at once). Parsing EMBER's 2381 columns and means was a tenth of a one-file scan.
#[derive(Deserialize)]
struct ScoringStored<'a> {
    #[serde(borrow)]
    schema: &'a serde_json::value::RawValue,
    #[serde(borrow, default)]
    means: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    gbdt: Option<GbdtMeta>,
    #[serde(default)]
    mlp: Option<MlpMeta>,
}

/// A schema's columns, counted without reading them.
#[derive(Deserialize)]
struct ColumnCount {
    columns: Vec<serde::de::IgnoredAny>,
}

/// A part of the config, parsed (trained or fully loaded models) or kept as JSON text
/// and parsed when first asked for (models loaded for scoring).
struct Deferred<T> {
    value: std::sync::OnceLock<T>,
    json: String,
}

impl<T: serde::de::DeserializeOwned + Default> Deferred<T> {
    fn ready(value: T) -> Self {
        Deferred {
            value: std::sync::OnceLock::from(value),
            json: String::new(),
        }
    }

    fn later(json: &str) -> Self {
        Deferred {
            value: std::sync::OnceLock::new(),
            json: json.to_string(),
        }
    }

    /// The value; text whose length was checked on load but whose items do not parse
    /// reads as empty (no scoring path reads it).
    fn get(&self) -> &T {
        self.value
            .get_or_init(|| serde_json::from_str(&self.json).unwrap_or_default())
    }
}

/// A table model's config as [`TableModel::build`] takes it, whichever way it was read.
struct Config {
    n_columns: usize,
    n_means: usize,
    schema: Deferred<TableSchema>,
    /// The schema is all-numeric, named as the feature names (made when asked for).
    numeric: bool,
    means: Deferred<Vec<f32>>,
    gbdt: Option<GbdtMeta>,
    mlp: Option<MlpMeta>,
}

/// Where a model's tensors come from.
pub(crate) enum Parts<'a> {
    Decoded(&'a [(String, Vec<usize>, Vec<f32>)]),
    Raw(&'a crate::file::Header<'a>),
    /// A file that lives as long as the program: trees read their nodes in place.
    Static(&'a crate::file::Header<'static>),
    /// A built-in model's file: its trees are taken without their checks.
    Trusted(&'a crate::file::Header<'static>),
}

enum Inner {
    Gbdt(Gbdt),
    Mlp(Mlp),
}

/// Boosted trees (`gbdt`) or a feed-forward net (`dnn`) over named feature columns.
pub struct TableModel {
    meta: Meta,
    schema: Deferred<TableSchema>,
    /// See [`Config::numeric`].
    numeric: bool,
    /// Columns of the schema (checked equal to the names and the means on load).
    n_columns: usize,
    means: Deferred<Vec<f32>>,
    inner: Inner,
}

/// The column means from the config JSON (format version 2) or the [`MEANS_TENSOR`]
/// (`shape`, values; version 3), never both.
fn one_of_means(
    stored: Option<Vec<f32>>,
    kept: Option<(&[usize], Vec<f32>)>,
) -> Result<Vec<f32>, ModelError> {
    match (stored, kept) {
        (Some(m), None) => Ok(m),
        (None, Some((shape, m))) if shape == [m.len()] => Ok(m),
        (None, Some((shape, _))) => Err(ModelError::Corrupt(format!(
            "{MEANS_TENSOR}: shape {shape:?}, expected one dimension"
        ))),
        (Some(_), Some(_)) => Err(ModelError::Corrupt(format!(
            "column means both in the config and in {MEANS_TENSOR}"
        ))),
        (None, None) => Err(ModelError::Corrupt("no column means".into())),
    }
}

fn compute(e: impl std::fmt::Display) -> ModelError {
    ModelError::Compute(e.to_string())
}

/// Which table learner to train.
#[derive(Debug, Clone)]
pub enum TableLearner {
    Gbdt(GbdtParams),
    Dnn(MlpParams),
}

/// Column means ignoring NaN (0 for an all-NaN column).
fn column_means(t: &Table) -> Vec<f32> {
    let k = t.n_cols();
    let mut sum = vec![0f64; k];
    let mut n = vec![0usize; k];
    for i in 0..t.n_rows() {
        for (j, &v) in t.row(i).iter().enumerate() {
            if v.is_finite() {
                sum[j] += v as f64;
                n[j] += 1;
            }
        }
    }
    sum.iter()
        .zip(&n)
        .map(|(&s, &c)| if c == 0 { 0.0 } else { (s / c as f64) as f32 })
        .collect()
}

fn importance(names: &[String], g: &Gbdt) -> Vec<(String, f64, usize)> {
    let gain = g.feature_importance(mallard_gbdt::Importance::Gain);
    let split = g.feature_importance(mallard_gbdt::Importance::Split);
    let mut v: Vec<(String, f64, usize)> = names
        .iter()
        .zip(gain.iter().zip(&split))
        .filter(|(_, (_, &s))| s > 0.0)
        .map(|(n, (&g, &s))| (n.clone(), g, s as usize))
        .collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Stored in the model's training summary so `mallard inspect` can show it without the trees.
fn importance_json(names: &[String], g: &Gbdt) -> serde_json::Value {
    importance(names, g)
        .into_iter()
        .map(|(name, gain, splits)| serde_json::json!({ "feature": name, "gain": gain, "splits": splits }))
        .collect()
}

impl TableModel {
    /// Trains on a labelled table. `feature_set` names the extractor whose columns the table
    /// holds (e.g. `pe-header`), so the model can score files directly.
    pub fn train(
        table: &Table,
        learner: &TableLearner,
        feature_set: Option<&str>,
    ) -> Result<Self, ModelError> {
        Self::train_validated(table, None, learner, feature_set)
    }

    /// [`TableModel::train`] with a held-out table for early stopping: boosted trees stop when
    /// `early_stopping_rounds` rounds bring no better validation log loss and keep the best
    /// round; the net stops after `patience` epochs without a better validation loss.
    pub fn train_validated(
        table: &Table,
        valid: Option<&Table>,
        learner: &TableLearner,
        feature_set: Option<&str>,
    ) -> Result<Self, ModelError> {
        Self::train_weighted(table, None, valid, learner, feature_set)
    }

    /// [`TableModel::train_validated`] with a weight per training row (boosted trees only;
    /// see `mallard_gbdt::Gbdt::fit_weighted`).
    pub fn train_weighted(
        table: &Table,
        weights: Option<&[f32]>,
        valid: Option<&Table>,
        learner: &TableLearner,
        feature_set: Option<&str>,
    ) -> Result<Self, ModelError> {
        let names = crate::train::label_set(&table.labels);
        crate::train::check_classes(&names)?;
        let y = table
            .label_indices(&names)
            .map_err(|e| ModelError::Invalid(e.to_string()))?;
        let data = Dataset {
            x: &table.values,
            n_features: table.n_cols(),
            y: &y,
        };
        let vy = match valid {
            Some(v) if v.columns != table.columns => {
                return Err(ModelError::Invalid(
                    "the validation table has other columns than the training table".into(),
                ))
            }
            // A class the training rows lack cannot be scored, so the validation rows must
            // use the training label set.
            Some(v) => Some(
                v.label_indices(&names)
                    .map_err(|e| ModelError::Invalid(format!("validation rows: {e}")))?,
            ),
            None => None,
        };
        let vdata = match (valid, &vy) {
            (Some(v), Some(vy)) => Some(Dataset {
                x: &v.values,
                n_features: v.n_cols(),
                y: vy,
            }),
            _ => None,
        };
        let (kind, inner) = match learner {
            TableLearner::Gbdt(p) => (
                "gbdt",
                Inner::Gbdt(
                    Gbdt::fit_weighted(data, weights, names.len(), p, vdata).map_err(compute)?,
                ),
            ),
            TableLearner::Dnn(_) if weights.is_some() => {
                return Err(ModelError::Invalid(
                    "row weights are supported for boosted trees (gbdt) only".into(),
                ))
            }
            TableLearner::Dnn(p) => {
                fn mlp_data(d: Dataset<'_>) -> mallard_mlp::Dataset<'_> {
                    mallard_mlp::Dataset {
                        x: d.x,
                        n_features: d.n_features,
                        y: d.y,
                    }
                }
                let fit = Mlp::fit(mlp_data(data), names.len(), p, vdata.map(mlp_data));
                ("dnn", Inner::Mlp(fit.map_err(compute)?))
            }
        };
        let mut meta = Meta::new(kind, InputKind::Features, names);
        meta.feature_names = table.columns.clone();
        meta.feature_set = feature_set.map(str::to_string);
        let mut training = serde_json::json!({
            "samples": table.n_rows(),
            "features": table.n_cols(),
            "validation_samples": valid.map_or(0, Table::n_rows),
            "weighted": weights.is_some(),
        });
        match &inner {
            Inner::Gbdt(g) => {
                training["rounds"] = g.meta().n_rounds.into();
                training["feature_importance"] = importance_json(&table.columns, g);
            }
            Inner::Mlp(m) => training["epochs"] = m.meta().epochs.into(),
        }
        meta.training = training;
        Ok(TableModel {
            meta,
            n_columns: table.schema.columns.len(),
            schema: Deferred::ready(table.schema.clone()),
            numeric: false,
            means: Deferred::ready(column_means(table)),
            inner,
        })
    }

    /// [`TableModel::train_weighted`] without validation rows that consumes the table, so
    /// boosted trees can free its values once binned (a table of tiny cells costs four
    /// bytes a cell as values, one as bins). The net borrows it as usual.
    pub fn train_owned(
        table: Table,
        weights: Option<&[f32]>,
        learner: &TableLearner,
        feature_set: Option<&str>,
    ) -> Result<Self, ModelError> {
        let TableLearner::Gbdt(p) = learner else {
            return Self::train_weighted(&table, weights, None, learner, feature_set);
        };
        let names = crate::train::label_set(&table.labels);
        crate::train::check_classes(&names)?;
        let means = column_means(&table);
        let (n_rows, n_cols) = (table.n_rows(), table.n_cols());
        let Table {
            columns,
            values,
            labels,
            schema,
            ..
        } = table;
        let y = labels.into_class_ids(&names).map_err(ModelError::Invalid)?;
        let g = Gbdt::fit_owned(values, n_cols, y, weights, names.len(), p).map_err(compute)?;
        let mut meta = Meta::new("gbdt", InputKind::Features, names);
        meta.feature_set = feature_set.map(str::to_string);
        meta.training = serde_json::json!({
            "samples": n_rows,
            "features": n_cols,
            "validation_samples": 0,
            "weighted": weights.is_some(),
            "rounds": g.meta().n_rounds,
            "feature_importance": importance_json(&columns, &g),
        });
        meta.feature_names = columns;
        Ok(TableModel {
            meta,
            n_columns: schema.columns.len(),
            schema: Deferred::ready(schema),
            numeric: false,
            means: Deferred::ready(means),
            inner: Inner::Gbdt(g),
        })
    }

    /// Boosted trees: `(feature, total gain, split count)` for every feature the trees split
    /// on, highest gain first; `None` for the net.
    pub fn feature_importance(&self) -> Option<Vec<(String, f64, usize)>> {
        match &self.inner {
            Inner::Gbdt(g) => Some(importance(&self.meta.feature_names, g)),
            Inner::Mlp(_) => None,
        }
    }

    pub fn schema(&self) -> &TableSchema {
        if self.numeric {
            let names = &self.meta.feature_names;
            return self
                .schema
                .value
                .get_or_init(|| TableSchema::numeric(names));
        }
        self.schema.get()
    }

    pub(crate) fn from_file(file: ModelFile, caps: &crate::Caps) -> Result<Self, ModelError> {
        // Read from the borrowed value: cloning the tree first cost thousands of
        // allocations for EMBER's 2381 columns.
        let stored = Stored::deserialize(&file.meta.config)
            .map_err(|e| ModelError::Corrupt(format!("{} config: {e}", file.meta.kind)))?;
        let tensors: Vec<_> = file
            .tensors
            .into_iter()
            .map(|t| (t.name, t.shape, t.data))
            .collect();
        let kept = tensors.iter().find(|t| t.0 == MEANS_TENSOR);
        let means = one_of_means(stored.means, kept.map(|t| (t.1.as_slice(), t.2.clone())))?;
        let (schema, numeric) = stored.schema.read()?;
        let config = Config {
            n_columns: if numeric {
                file.meta.feature_names.len()
            } else {
                schema.columns.len()
            },
            n_means: means.len(),
            // The all-numeric schema is made from the names when first asked for.
            schema: if numeric {
                Deferred::later("")
            } else {
                Deferred::ready(schema)
            },
            numeric,
            means: Deferred::ready(means),
            gbdt: stored.gbdt,
            mlp: stored.mlp,
        };
        Self::build(file.meta, config, Parts::Decoded(&tensors), None, caps)
    }

    /// The model of a file read for scoring: the config from its JSON text, and boosted
    /// trees decoded straight from the file's bytes (no intermediate tensors).
    pub(crate) fn for_scoring(
        meta: Meta,
        config: &str,
        parts: Parts<'_>,
        ahead: Option<&mallard_gbdt::TreesAhead<'_>>,
        caps: &crate::Caps,
    ) -> Result<Self, ModelError> {
        let corrupt =
            |e: serde_json::Error| ModelError::Corrupt(format!("{} config: {e}", meta.kind));
        let stored: ScoringStored<'_> = serde_json::from_str(config).map_err(corrupt)?;
        // An all-numeric schema is a word: its columns are the names, nothing to count.
        let schema_text = stored.schema.get();
        let numeric = schema_text.starts_with('"');
        let n_columns = if numeric {
            let word = serde_json::from_str::<StoredSchema>(schema_text).map_err(corrupt)?;
            word.read()?;
            meta.feature_names.len()
        } else {
            serde_json::from_str::<ColumnCount>(schema_text)
                .map_err(corrupt)?
                .columns
                .len()
        };
        let header = match &parts {
            Parts::Raw(h) => Some(*h),
            Parts::Static(h) | Parts::Trusted(h) => Some(*h as &crate::file::Header<'_>),
            Parts::Decoded(_) => None,
        };
        let kept = header.and_then(|h| h.tensors.iter().find(|t| t.name == MEANS_TENSOR));
        let (means, n_means) = match (stored.means, kept) {
            (Some(text), None) => {
                // Format version 2: means in the JSON, parsed only for a net.
                let means = if stored.mlp.is_some() {
                    Deferred::ready(serde_json::from_str::<Vec<f32>>(text.get()).map_err(corrupt)?)
                } else {
                    Deferred::later(text.get())
                };
                let n = match means.value.get() {
                    Some(m) => m.len(),
                    None => serde_json::from_str::<Vec<serde::de::IgnoredAny>>(text.get())
                        .map_err(corrupt)?
                        .len(),
                };
                (means, n)
            }
            (None, Some(t)) if !t.f32 => {
                return Err(ModelError::Corrupt(format!("{MEANS_TENSOR} is not F32")))
            }
            (stored, t) => {
                let kept = t.map(|t| (t.shape.as_slice(), crate::file::f32s(t.data)));
                let means = one_of_means(stored.map(|_| Vec::new()), kept)?;
                let n = means.len();
                (Deferred::ready(means), n)
            }
        };
        let config = Config {
            n_columns,
            n_means,
            // The all-numeric schema is made from the names when first asked for.
            schema: Deferred::later(if numeric { "" } else { schema_text }),
            numeric,
            means,
            gbdt: stored.gbdt,
            mlp: stored.mlp,
        };
        Self::build(meta, config, parts, ahead, caps)
    }

    fn build(
        meta: Meta,
        stored: Config,
        parts: Parts<'_>,
        ahead: Option<&mallard_gbdt::TreesAhead<'_>>,
        caps: &crate::Caps,
    ) -> Result<Self, ModelError> {
        let n = stored.n_columns;
        if stored.n_means != n || meta.feature_names.len() != n {
            return Err(ModelError::Corrupt(format!(
                "{n} schema columns, {} means, {} names",
                stored.n_means,
                meta.feature_names.len()
            )));
        }
        // Sizes the learner allocates by must agree with what the file actually lists.
        let sizes = |nf: usize, nc: usize| -> Result<(), ModelError> {
            if nf != n || nc != meta.labels.len() {
                return Err(ModelError::Corrupt(format!(
                    "{nf} features and {nc} classes, but {n} columns and {} labels",
                    meta.labels.len()
                )));
            }
            Ok(())
        };
        let corrupt = |e: &dyn std::fmt::Display| ModelError::Corrupt(e.to_string());
        let inner = match (meta.kind.as_str(), stored.gbdt, stored.mlp) {
            ("gbdt", Some(m), _) => {
                sizes(m.n_features, m.n_classes)?;
                let g = match parts {
                    Parts::Decoded(t) => Gbdt::from_parts_capped(m, t, caps.max_tree_depth),
                    Parts::Raw(h) => Gbdt::from_le_tensors(
                        m,
                        ["gbdt.init", "gbdt.tree_sizes", "gbdt.nodes"].map(|n| le_tensor(h, n)),
                        ahead,
                        caps.max_tree_depth,
                    ),
                    Parts::Static(h) => Gbdt::from_static_le_tensors(
                        m,
                        ["gbdt.init", "gbdt.tree_sizes", "gbdt.nodes"].map(|n| le_tensor(h, n)),
                        ahead,
                        caps.max_tree_depth,
                    ),
                    Parts::Trusted(h) => Gbdt::from_trusted_static_le_tensors(
                        m,
                        ["gbdt.init", "gbdt.tree_sizes", "gbdt.nodes"].map(|n| le_tensor(h, n)),
                        caps.max_tree_depth,
                    ),
                };
                Inner::Gbdt(g.map_err(|e| corrupt(&e))?)
            }
            ("dnn", _, Some(m)) => {
                sizes(m.n_features, m.n_classes)?;
                let decoded;
                let t = match parts {
                    Parts::Decoded(t) => t,
                    Parts::Raw(h) => {
                        decoded = mlp_tensors(h);
                        &decoded
                    }
                    Parts::Static(h) | Parts::Trusted(h) => {
                        decoded = mlp_tensors(h);
                        &decoded
                    }
                };
                Inner::Mlp(Mlp::from_parts(m, t).map_err(|e| corrupt(&e))?)
            }
            (k, _, _) => {
                return Err(ModelError::Corrupt(format!(
                    "{k} model without its parameters"
                )))
            }
        };
        Ok(TableModel {
            meta,
            schema: stored.schema,
            numeric: stored.numeric,
            n_columns: n,
            means: stored.means,
            inner,
        })
    }

    fn proba(&self, x: &[f32]) -> Result<Vec<f32>, ModelError> {
        match &self.inner {
            Inner::Gbdt(g) => g.predict_proba(x).map_err(compute),
            Inner::Mlp(m) => m.predict_proba(x).map_err(compute),
        }
    }

    fn row<'a>(&self, input: &Input<'a>) -> Result<&'a [f32], ModelError> {
        match input {
            Input::Features(x) if x.len() == self.n_columns => Ok(x),
            Input::Features(x) => Err(ModelError::Invalid(format!(
                "{} feature values, the model reads {}",
                x.len(),
                self.n_columns
            ))),
            other => Err(ModelError::WrongInput {
                expected: "feature vectors",
                got: other.kind_name(),
            }),
        }
    }
}

impl Model for TableModel {
    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
        let mut x = Vec::with_capacity(inputs.len() * self.n_columns);
        for i in inputs {
            x.extend_from_slice(self.row(i)?);
        }
        self.proba(&x)
    }

    /// Trees: TreeSHAP contributions to the explained class's raw score.
    /// Net: occlusion, the probability change when a feature takes its training mean.
    fn explain(&self, input: &Input<'_>, top: usize) -> Result<Vec<Reason>, ModelError> {
        self.explain_with(input, top, 1)
    }

    /// Trees share TreeSHAP's trees among `threads` threads; the net uses one.
    fn explain_with(
        &self,
        input: &Input<'_>,
        top: usize,
        threads: usize,
    ) -> Result<Vec<Reason>, ModelError> {
        let x = self.row(input)?;
        // A binary model explains its positive class: no need to score the row for it.
        let probs = || self.proba(x);
        let class = match self.meta.positive {
            Some(c) => c,
            None => crate::sequence::explained_class(&self.meta, &probs()?),
        };
        // One weight per feature; only the `top` kept are named (cloning 2381 names to
        // drop all but a few was a measurable part of a one-file scan).
        let weights: Vec<f32> = match &self.inner {
            Inner::Gbdt(g) => {
                let c = g
                    .contributions_with(x, mallard_gbdt::Explain::TreeShap, threads)
                    .map_err(compute)?;
                let nf = x.len();
                // Binary models have one output (toward class 1); multi-class one per class.
                let (row, sign) = if g.meta().n_outputs() == 1 {
                    (0, if class == 1 { 1.0 } else { -1.0 })
                } else {
                    (class, 1.0)
                };
                let c = c.get(row * (nf + 1)..row * (nf + 1) + nf).unwrap_or(&[]);
                c.iter().map(|&v| (sign * v) as f32).collect()
            }
            Inner::Mlp(_) => {
                let p = probs()?;
                // Occluded rows in batches: all n at once would cost n squared values.
                const BATCH: usize = 256;
                let mut q = Vec::with_capacity(x.len() * self.meta.labels.len());
                let mut rows = Vec::with_capacity(BATCH.min(x.len()) * x.len());
                for start in (0..x.len()).step_by(BATCH) {
                    rows.clear();
                    for j in start..(start + BATCH).min(x.len()) {
                        let at = rows.len();
                        rows.extend_from_slice(x);
                        rows[at + j] = self.means.get().get(j).copied().unwrap_or(0.0);
                    }
                    q.extend(self.proba(&rows)?);
                }
                let k = self.meta.labels.len();
                (0..x.len()).map(|j| p[class] - q[j * k + class]).collect()
            }
        };
        // A stable sort of the non-zero weights in column order: the same order as before.
        let mut kept: Vec<(usize, f32)> = weights
            .into_iter()
            .enumerate()
            .filter(|&(_, w)| w != 0.0)
            .collect();
        kept.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        kept.truncate(top);
        let names = &self.meta.feature_names;
        Ok(kept
            .into_iter()
            .map(|(j, weight)| Reason {
                kind: "feature".into(),
                name: names.get(j).cloned().unwrap_or_default(),
                weight,
                feature: None,
            })
            .collect())
    }

    fn to_file(&self) -> Result<ModelFile, ModelError> {
        let mut meta = self.meta.clone();
        let (gbdt, mlp, tensors) = match &self.inner {
            Inner::Gbdt(g) => (Some(g.meta().clone()), None, g.to_tensors()),
            Inner::Mlp(m) => (None, Some(m.meta().clone()), m.to_tensors()),
        };
        meta.config = serde_json::to_value(Stored {
            schema: StoredSchema::of(self.schema(), &self.meta.feature_names),
            means: None,
            gbdt,
            mlp,
        })
        .map_err(|e| ModelError::Invalid(e.to_string()))?;
        let means = self.means.get().clone();
        let mut tensors: Vec<Tensor> = tensors
            .into_iter()
            .map(|(n, s, d)| Tensor::new(n, s, d))
            .collect();
        tensors.push(Tensor::new(MEANS_TENSOR, vec![means.len()], means));
        Ok(ModelFile {
            meta,
            tensors,
            blobs: Vec::new(),
        })
    }
}

/// A file's f32 tensor by name, as the trees read it.
pub(crate) fn le_tensor<'s, 'd>(
    h: &'s crate::file::Header<'d>,
    name: &str,
) -> Option<mallard_gbdt::LeTensor<'s, 'd>> {
    h.tensors
        .iter()
        .find(|t| t.name == name && t.f32)
        .map(|t| mallard_gbdt::LeTensor {
            shape: &t.shape,
            data: t.data,
        })
}

/// A file's f32 tensors, decoded, as the network reads them.
fn mlp_tensors(h: &crate::file::Header<'_>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    h.tensors
        .iter()
        .filter(|t| t.f32)
        .map(|t| (t.name.clone(), t.shape.clone(), crate::file::f32s(t.data)))
        .collect()
}
