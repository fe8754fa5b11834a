//! Labelled numeric feature tables for mallard's static models.
//!
//! A [`Table`] is a row-major `f32` matrix with string labels. Reading a training file
//! *fits* a [`TableSchema`] (which columns, and the ordinal codes of text columns); the
//! schema is stored with a model so that prediction-time files are encoded the same way
//! ([`read_csv_with_schema`]).
//!
//! Encoding rules (those of the Python baseline `shared/baselines/lightgbm_tables.py`):
//! * empty cells are missing (`NaN`);
//! * a column with a non-numeric cell is categorical: categories are the distinct non-empty
//!   cells sorted byte-wise, code = position; a category unseen at fit time encodes as `-1`;
//! * optionally, columns empty in every row are dropped (ClaMP raw `e_res`, `e_res2`).

mod csv;
mod labels;
pub use labels::Labels;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Everything that can go wrong reading a table; every data error names file and line.
#[derive(Debug, Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {msg}")]
    Syntax {
        path: String,
        line: usize,
        msg: String,
    },
    #[error("{path}:{line}: column {column:?}: {msg}")]
    Cell {
        path: String,
        line: usize,
        column: String,
        msg: String,
    },
    #[error("{path}: no column named {column:?}")]
    MissingColumn { path: String, column: String },
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
    /// Refused or failed open (not a regular file, over the size cap): names the path.
    #[error("{0}")]
    Read(#[from] mallard_io::IoError),
}

/// One feature column: its name and, for a text column, the sorted categories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnSpec {
    pub name: String,
    /// `Some` for an ordinal-encoded text column: code = index in this sorted list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

/// The feature columns a model was trained on, in order, with their encodings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableSchema {
    pub columns: Vec<ColumnSpec>,
}

impl TableSchema {
    /// All columns numeric (no categories), as feature extractors give them.
    pub fn numeric(names: &[String]) -> TableSchema {
        TableSchema {
            columns: names
                .iter()
                .map(|n| ColumnSpec {
                    name: n.clone(),
                    categories: None,
                })
                .collect(),
        }
    }

    /// Column names in order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// Encodes one cell of column `index`: empty -> NaN, categorical -> code (unseen -> -1),
    /// numeric -> parsed value. The error is a short reason for the caller to place.
    pub fn encode(&self, index: usize, cell: &str) -> Result<f32, String> {
        let spec = self
            .columns
            .get(index)
            .ok_or_else(|| format!("no column {index} in the schema"))?;
        let cell = cell.trim();
        if cell.is_empty() {
            return Ok(f32::NAN);
        }
        match &spec.categories {
            Some(cats) => Ok(cats
                .binary_search_by(|c| c.as_str().cmp(cell))
                .map(|i| i as f32)
                .unwrap_or(-1.0)),
            None => parse_number(cell).ok_or_else(|| format!("{cell:?} is not a number")),
        }
    }
}

fn parse_number(cell: &str) -> Option<f32> {
    cell.parse::<f32>().ok()
}

/// A labelled numeric table; `values` is row-major `[n_rows, columns.len()]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub values: Vec<f32>,
    /// One label per row; empty when the source had no label column (prediction time).
    pub labels: Labels,
    pub ids: Option<Vec<String>>,
    /// Rows that must stay on one side of every split (same family, same package); rows
    /// without a group are grouped only with identical rows.
    pub groups: Option<Vec<String>>,
    /// How the columns were encoded; apply it to later files with [`read_csv_with_schema`].
    pub schema: TableSchema,
    /// The feature extractor the columns came from, where the reader knows it (EMBER rows
    /// name theirs); `None`: a reader of columns only.
    pub feature_set: Option<String>,
}

impl Table {
    /// A table of numeric columns: `values` row-major, one label per row, no ids or groups.
    pub fn numeric(columns: Vec<String>, values: Vec<f32>, labels: Labels) -> Table {
        Table {
            feature_set: None,
            schema: TableSchema::numeric(&columns),
            columns,
            values,
            labels,
            ids: None,
            groups: None,
        }
    }

    pub fn n_rows(&self) -> usize {
        if self.columns.is_empty() {
            0
        } else {
            self.values.len() / self.columns.len()
        }
    }

    pub fn n_cols(&self) -> usize {
        self.columns.len()
    }

    /// The feature values of row `i` (empty slice when out of range).
    pub fn row(&self, i: usize) -> &[f32] {
        let k = self.columns.len();
        self.values.get(i * k..(i + 1) * k).unwrap_or(&[])
    }

    /// The distinct labels in model order (see [`label_set`]).
    pub fn classes(&self) -> Vec<String> {
        label_set(&self.labels)
    }

    /// Each row's label as an index into `classes`; errors on a label not in `classes`.
    pub fn label_indices(&self, classes: &[String]) -> Result<Vec<usize>, TableError> {
        let map: HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        // Collected into an exact-size buffer: a million-row table should not pay for
        // the doubling of a growing one.
        let mut out = Vec::with_capacity(self.labels.len());
        for (row, l) in self.labels.iter().enumerate() {
            out.push(map.get(l).copied().ok_or_else(|| TableError::Invalid {
                path: "table".into(),
                msg: format!("row {row}: label {l:?} is not one of {classes:?}"),
            })?);
        }
        Ok(out)
    }

    /// A new table holding the given rows (in that order); out-of-range rows are skipped.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        let n = self.n_rows();
        let keep: Vec<usize> = rows.iter().copied().filter(|&r| r < n).collect();
        let mut values = Vec::with_capacity(keep.len() * self.n_cols());
        for &r in &keep {
            values.extend_from_slice(self.row(r));
        }
        Table {
            feature_set: self.feature_set.clone(),
            columns: self.columns.clone(),
            values,
            labels: self.labels.select(&keep),
            ids: self
                .ids
                .as_ref()
                .map(|ids| keep.iter().map(|&r| ids[r].clone()).collect()),
            groups: self
                .groups
                .as_ref()
                .map(|g| keep.iter().map(|&r| g[r].clone()).collect()),
            schema: self.schema.clone(),
        }
    }

    /// Removes the named columns (from the schema too); names it does not have are an error.
    pub fn drop_columns(&mut self, names: &[String]) -> Result<(), TableError> {
        if names.is_empty() {
            return Ok(());
        }
        for n in names {
            if !self.columns.contains(n) {
                return Err(TableError::Invalid {
                    path: "table".into(),
                    msg: format!("no column {n:?} to drop"),
                });
            }
        }
        let keep: Vec<usize> = (0..self.n_cols())
            .filter(|&j| !names.contains(&self.columns[j]))
            .collect();
        let mut values = Vec::with_capacity(self.n_rows() * keep.len());
        for i in 0..self.n_rows() {
            let row = self.row(i);
            values.extend(keep.iter().map(|&j| row[j]));
        }
        self.values = values;
        self.columns = keep.iter().map(|&j| self.columns[j].clone()).collect();
        self.schema.columns = keep
            .iter()
            .filter_map(|&j| self.schema.columns.get(j).cloned())
            .collect();
        Ok(())
    }

    /// Appends another table's rows. Columns must match by name and order; ids and groups
    /// missing on one side are filled with row numbers and empty groups.
    pub fn append(&mut self, other: Table) -> Result<(), TableError> {
        if let (Some(a), Some(b)) = (&self.feature_set, &other.feature_set) {
            if a != b {
                return Err(TableError::Invalid {
                    path: "table".into(),
                    msg: format!("tables of {a} and {b} features cannot be joined"),
                });
            }
        }
        if self.feature_set.is_none() {
            self.feature_set.clone_from(&other.feature_set);
        }
        if other.columns != self.columns {
            return Err(TableError::Invalid {
                path: "table".into(),
                msg: format!(
                    "tables have different columns ({} and {}): they cannot be joined",
                    self.n_cols(),
                    other.n_cols()
                ),
            });
        }
        let (n0, n1) = (self.n_rows(), other.n_rows());
        let ids_or = |ids: Option<Vec<String>>, start: usize, n: usize| {
            ids.unwrap_or_else(|| {
                (start..start + n)
                    .map(|i| format!("row {}", i + 1))
                    .collect()
            })
        };
        if self.ids.is_some() || other.ids.is_some() {
            let mut a = ids_or(self.ids.take(), 0, n0);
            a.extend(ids_or(other.ids, n0, n1));
            self.ids = Some(a);
        }
        if self.groups.is_some() || other.groups.is_some() {
            let mut a = self
                .groups
                .take()
                .unwrap_or_else(|| vec![String::new(); n0]);
            a.extend(other.groups.unwrap_or_else(|| vec![String::new(); n1]));
            self.groups = Some(a);
        }
        self.values.extend(other.values);
        self.labels.extend(&other.labels);
        Ok(())
    }
}

/// Rows in a row-major matrix of `values` numbers with `n_features` columns; `Err` says why
/// it is not one (no columns, or a cut row). Every learner checks its input with it.
pub fn row_count(values: usize, n_features: usize) -> Result<usize, String> {
    if n_features == 0 || !values.is_multiple_of(n_features) {
        return Err(format!(
            "{values} values are not a whole number of rows of {n_features} features"
        ));
    }
    Ok(values / n_features)
}

/// Distinct labels sorted numerically when all are numbers ("2" < "10"), else byte-wise.
/// With ClaMP's "0"/"1" this makes "1" (malware) the positive class.
pub fn label_set<S: AsRef<str>>(labels: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut set: BTreeSet<String> = BTreeSet::new();
    for l in labels {
        if !set.contains(l.as_ref()) {
            set.insert(l.as_ref().to_string());
        }
    }
    let mut v: Vec<String> = set.into_iter().collect();
    let nums: Option<Vec<f64>> = v.iter().map(|s| s.parse::<f64>().ok()).collect();
    if let Some(nums) = nums {
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| nums[a].total_cmp(&nums[b]).then(v[a].cmp(&v[b])));
        v = idx.into_iter().map(|i| v[i].clone()).collect();
    }
    v
}

/// How to read a labelled CSV.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// Column holding the label (in `labels_file` when that is set). `None`: unlabelled.
    pub label_column: Option<String>,
    /// Column holding a row id; kept in [`Table::ids`], never a feature.
    pub id_column: Option<String>,
    /// Separate `id,label` file joined on `id_column` (BIG 2015's `trainLabels.csv`).
    pub labels_file: Option<PathBuf>,
    /// Columns that are not features (beyond the label and id columns).
    pub drop_columns: Vec<String>,
    /// Drop columns that are empty in every row when fitting the schema.
    pub drop_empty_columns: bool,
    /// Largest table file read (bytes on disk, checked before reading).
    pub max_table_bytes: u64,
    /// Longest cell (label and id cells too): a longer one is an error naming file, line
    /// and column.
    pub max_cell_bytes: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        let caps = mallard_io::Caps::default();
        CsvOptions {
            label_column: None,
            id_column: None,
            labels_file: None,
            drop_columns: Vec::new(),
            drop_empty_columns: false,
            max_table_bytes: caps.max_table_bytes,
            max_cell_bytes: caps.max_cell_bytes,
        }
    }
}

/// An open table: its header read, positioned at the first data record.
struct Opened {
    path: String,
    header: Vec<String>,
    rd: csv::Reader<std::io::BufReader<std::fs::File>>,
}

/// Opens a regular file of at most `max_table_bytes` and reads its header.
fn open_table(path: &Path, opts: &CsvOptions) -> Result<Opened, TableError> {
    let p = path.display().to_string();
    let (file, _) = mallard_io::open_capped(path, opts.max_table_bytes)?;
    let r = std::io::BufReader::with_capacity(1 << 16, file);
    let mut rd = csv::Reader::new(r, &p, opts.max_cell_bytes);
    let mut header = Vec::new();
    if rd.next_record(&mut header)?.is_none() {
        return Err(TableError::Invalid {
            path: p,
            msg: "no header line".into(),
        });
    }
    for h in header.iter_mut() {
        let t = h.trim();
        if t.len() != h.len() {
            *h = t.to_string();
        }
    }
    let mut seen = BTreeSet::new();
    for h in &header {
        if !seen.insert(h.as_str()) {
            return Err(TableError::Invalid {
                path: p,
                msg: format!("column {h:?} appears twice in the header"),
            });
        }
    }
    rd.set_header(&header);
    Ok(Opened {
        path: p,
        header,
        rd,
    })
}

impl Opened {
    fn find(&self, column: &str) -> Result<usize, TableError> {
        self.header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| TableError::MissingColumn {
                path: self.path.clone(),
                column: column.to_string(),
            })
    }

    /// Calls `f` with each record's line and fields (always as many as the header has).
    fn for_each(
        mut self,
        mut f: impl FnMut(usize, &[String]) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        let mut fields = Vec::with_capacity(self.header.len());
        while let Some(line) = self.rd.next_record(&mut fields)? {
            if fields.len() != self.header.len() {
                return Err(TableError::Syntax {
                    path: self.path,
                    line,
                    msg: format!(
                        "{} fields, the header has {}",
                        fields.len(),
                        self.header.len()
                    ),
                });
            }
            f(line, &fields)?;
        }
        Ok(())
    }
}

/// Reads a labelled CSV and fits its schema (see the crate docs for the encoding rules).
/// The file is streamed: once to type the columns, once more for the categories of text
/// columns (if any), and once to encode, so memory holds the numbers, not the text.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Table, TableError> {
    let (schema, rows) = fit_schema(path, opts)?;
    build(path, opts, schema, rows)
}

/// Reads a CSV with a schema fitted earlier (prediction or test time): the schema's columns
/// are taken by name, other columns are ignored, categories unseen at fit time become -1.
pub fn read_csv_with_schema(
    path: &Path,
    opts: &CsvOptions,
    schema: &TableSchema,
) -> Result<Table, TableError> {
    build(path, opts, schema.clone(), 0)
}

fn non_feature_columns(o: &Opened, opts: &CsvOptions) -> Result<Vec<bool>, TableError> {
    let mut skip = vec![false; o.header.len()];
    if opts.labels_file.is_none() {
        if let Some(l) = &opts.label_column {
            skip[o.find(l)?] = true;
        }
    }
    if let Some(id) = &opts.id_column {
        skip[o.find(id)?] = true;
    }
    for d in &opts.drop_columns {
        skip[o.find(d)?] = true;
    }
    Ok(skip)
}

/// The schema of a training file and its number of data rows.
fn fit_schema(path: &Path, opts: &CsvOptions) -> Result<(TableSchema, usize), TableError> {
    let o = open_table(path, opts)?;
    let p = o.path.clone();
    let header = o.header.clone();
    let skip = non_feature_columns(&o, opts)?;
    let n = header.len();
    let (mut any, mut numeric) = (vec![false; n], vec![true; n]);
    let mut rows = 0usize;
    o.for_each(|_, f| {
        rows += 1;
        for j in (0..n).filter(|&j| !skip[j]) {
            let cell = f[j].trim();
            if cell.is_empty() {
                continue;
            }
            any[j] = true;
            if numeric[j] && parse_number(cell).is_none() {
                numeric[j] = false;
            }
        }
        Ok(())
    })?;
    let text_cols: Vec<usize> = (0..n).filter(|&j| !skip[j] && !numeric[j]).collect();
    let mut sets: Vec<BTreeSet<String>> = vec![BTreeSet::new(); text_cols.len()];
    if !text_cols.is_empty() {
        open_table(path, opts)?.for_each(|_, f| {
            for (k, &j) in text_cols.iter().enumerate() {
                let cell = f[j].trim();
                if !cell.is_empty() && !sets[k].contains(cell) {
                    sets[k].insert(cell.to_string());
                }
            }
            Ok(())
        })?;
    }
    let mut sets = sets.into_iter();
    let mut columns = Vec::new();
    for (j, name) in header.iter().enumerate() {
        if skip[j] || (!any[j] && opts.drop_empty_columns) {
            continue;
        }
        let categories = if numeric[j] {
            None
        } else {
            sets.next().map(|s| s.into_iter().collect())
        };
        columns.push(ColumnSpec {
            name: name.clone(),
            categories,
        });
    }
    if columns.is_empty() {
        return Err(TableError::Invalid {
            path: p,
            msg: "no feature columns".into(),
        });
    }
    Ok((TableSchema { columns }, rows))
}

fn read_labels(
    opts: &CsvOptions,
    label: &str,
    file: &Path,
) -> Result<HashMap<String, String>, TableError> {
    let o = open_table(file, opts)?;
    let p = o.path.clone();
    let id_col = opts
        .id_column
        .as_deref()
        .ok_or_else(|| TableError::Invalid {
            path: p.clone(),
            msg: "a labels file needs an id column to join on".into(),
        })?;
    let (i, l) = (o.find(id_col)?, o.find(label)?);
    let mut map = HashMap::new();
    o.for_each(|line, f| {
        let id = f[i].trim().to_string();
        let lab = f[l].trim().to_string();
        if lab.is_empty() {
            return Err(TableError::Cell {
                path: p.clone(),
                line,
                column: label.to_string(),
                msg: "empty label".into(),
            });
        }
        if map.insert(id.clone(), lab).is_some() {
            return Err(TableError::Cell {
                path: p.clone(),
                line,
                column: id_col.to_string(),
                msg: format!("id {id:?} appears twice"),
            });
        }
        Ok(())
    })?;
    Ok(map)
}

/// Encodes the rows of `path` with `schema`; `rows` (if known) sizes the value buffer.
fn build(
    path: &Path,
    opts: &CsvOptions,
    schema: TableSchema,
    rows: usize,
) -> Result<Table, TableError> {
    let o = open_table(path, opts)?;
    let p = o.path.clone();
    let header = o.header.clone();
    let idx: Vec<usize> = schema
        .columns
        .iter()
        .map(|c| o.find(&c.name))
        .collect::<Result<_, _>>()?;
    let id_idx = opts.id_column.as_deref().map(|c| o.find(c)).transpose()?;
    let joined = match (&opts.labels_file, &opts.label_column) {
        (Some(f), Some(l)) => Some(read_labels(opts, l, f)?),
        (Some(_), None) => {
            return Err(TableError::Invalid {
                path: p,
                msg: "a labels file needs a label column".into(),
            })
        }
        _ => None,
    };
    let label_idx = match (&joined, &opts.label_column) {
        (None, Some(l)) => Some(o.find(l)?),
        _ => None,
    };
    let mut values = Vec::with_capacity(rows.saturating_mul(idx.len()));
    let mut labels = Labels::with_capacity(if label_idx.is_some() || joined.is_some() {
        rows
    } else {
        0
    });
    let mut ids = id_idx.map(|_| Vec::with_capacity(rows));
    o.for_each(|line, f| {
        for (k, &j) in idx.iter().enumerate() {
            let v = schema.encode(k, &f[j]).map_err(|msg| TableError::Cell {
                path: p.clone(),
                line,
                column: header[j].clone(),
                msg,
            })?;
            values.push(v);
        }
        let id = id_idx.map(|j| f[j].trim());
        if let (Some(ids), Some(id)) = (ids.as_mut(), id) {
            ids.push(id.to_string());
        }
        let label = if let Some(map) = &joined {
            let id = id.unwrap_or_default();
            Some(
                map.get(id)
                    .map(String::as_str)
                    .ok_or_else(|| TableError::Cell {
                        path: p.clone(),
                        line,
                        column: opts.id_column.clone().unwrap_or_default(),
                        msg: format!("id {id:?} has no label in the labels file"),
                    })?,
            )
        } else if let Some(j) = label_idx {
            let l = f[j].trim();
            if l.is_empty() {
                return Err(TableError::Cell {
                    path: p.clone(),
                    line,
                    column: header[j].clone(),
                    msg: "empty label".into(),
                });
            }
            Some(l)
        } else {
            None
        };
        if let Some(l) = label {
            labels.push(l);
        }
        Ok(())
    })?;
    Ok(Table {
        groups: None,
        feature_set: None,
        columns: schema.names(),
        values,
        labels,
        ids,
        schema,
    })
}

fn clamp_options() -> CsvOptions {
    CsvOptions {
        label_column: Some("class".into()),
        drop_empty_columns: true,
        ..Default::default()
    }
}

/// A ClaMP CSV (raw or integrated; label `class`, 0 benign / 1 malware). Fits the schema:
/// empty-everywhere columns dropped, `packer_type` ordinal-encoded as in the baseline.
pub fn clamp(path: &Path) -> Result<Table, TableError> {
    read_csv(path, &clamp_options())
}

/// A ClaMP CSV encoded with the schema of the training file (test split, prediction).
pub fn clamp_with_schema(path: &Path, schema: &TableSchema) -> Result<Table, TableError> {
    read_csv_with_schema(path, &clamp_options(), schema)
}

/// BIG 2015 from its folder: `asm-counts-train.csv` joined with `trainLabels.csv` on `Id`;
/// labels are the class numbers "1".."9" as strings, ids the Kaggle sample ids.
pub fn big2015(dir: &Path) -> Result<Table, TableError> {
    read_csv(
        &dir.join("asm-counts-train.csv"),
        &CsvOptions {
            label_column: Some("Class".into()),
            id_column: Some("Id".into()),
            labels_file: Some(dir.join("trainLabels.csv")),
            ..Default::default()
        },
    )
}
