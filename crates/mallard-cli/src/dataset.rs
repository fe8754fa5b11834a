//! `FORMAT:PATH` dataset arguments.

use anyhow::{anyhow, bail, Context, Result};
use mallard_apiseq::{read_dataset, DatasetOptions, Format, Sample};
use mallard_model::tables::{read_csv, read_csv_with_schema, CsvOptions, Table, TableSchema};
use std::path::PathBuf;

/// What a dataset holds: API-call sequences (of some format) or a feature table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Seq(Format),
    Csv,
}

#[derive(Clone, Debug)]
pub struct DatasetArg {
    pub format: DataFormat,
    pub path: PathBuf,
}

impl DatasetArg {
    /// The sequence format, or an error explaining that this command needs sequences.
    pub fn seq_format(&self) -> Result<Format> {
        match self.format {
            DataFormat::Seq(f) => Ok(f),
            DataFormat::Csv => Err(anyhow!("{}: a feature table, but this model reads API-call sequences", self.path.display())),
        }
    }
}

impl std::str::FromStr for DatasetArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = format!("{}, csv", Format::ALL.map(|f| f.name()).join(", "));
        let (f, p) = s.split_once(':').ok_or_else(|| format!("expected FORMAT:PATH with FORMAT one of {names}"))?;
        let format = if f.eq_ignore_ascii_case("csv") {
            DataFormat::Csv
        } else {
            DataFormat::Seq(f.parse::<Format>().map_err(|_| format!("unknown dataset format {f:?} (one of {names})"))?)
        };
        if p.is_empty() {
            return Err("empty path after FORMAT:".into());
        }
        Ok(DatasetArg { format, path: PathBuf::from(p) })
    }
}

/// Reads a labelled CSV feature table; with `schema`, columns are taken by name and encoded
/// as the model was trained.
pub fn load_table(arg: &DatasetArg, read: &ReadArgs, schema: Option<&TableSchema>) -> Result<Table> {
    let label_column = read
        .label_column
        .clone()
        .ok_or_else(|| anyhow!("{}: a csv dataset needs --label-column", arg.path.display()))?;
    let opts = CsvOptions {
        label_column: Some(label_column),
        id_column: read.id_column.clone(),
        labels_file: read.labels_file.clone(),
        drop_columns: read.drop_columns.clone(),
        drop_empty_columns: true,
    };
    let t = match schema {
        Some(s) => read_csv_with_schema(&arg.path, &opts, s),
        None => read_csv(&arg.path, &opts),
    }
    .with_context(|| format!("reading csv:{}", arg.path.display()))?;
    if t.n_rows() == 0 {
        bail!("{}: no rows", arg.path.display());
    }
    Ok(t)
}

/// The feature extractor whose columns a table holds, if any: then files can be scored.
pub fn guess_feature_set(columns: &[String]) -> Option<&'static str> {
    use mallard_pefeatures::FeatureSet;
    FeatureSet::ALL.into_iter().find_map(|set| {
        let names = mallard_pefeatures::names(set);
        columns.iter().all(|c| names.contains(c)).then_some(set.name())
    })
}

/// How datasets are read, shared by `train`, `eval` and `cv`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReadArgs {
    /// Keep only the first N calls of each sample when reading.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<usize>,
    /// Reports: one sample per monitored process instead of one per report.
    #[arg(long)]
    pub per_process: bool,
    /// csv: the column holding the label (in --labels-file when that is given).
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,
    /// csv: a separate id,label file joined on --id-column.
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// csv: the column holding a row id (never a feature).
    #[arg(long, value_name = "COL")]
    pub id_column: Option<String>,
    /// csv: columns that are not features.
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub drop_columns: Vec<String>,
}

/// Reads a labelled dataset; per-file errors in report folders are printed and skipped.
pub fn load_labelled(arg: &DatasetArg, read: &ReadArgs, quiet: bool) -> Result<(Vec<Sample>, Vec<String>)> {
    let opts = DatasetOptions { max_calls: read.max_calls, per_process: read.per_process, ..DatasetOptions::default() };
    let format = arg.seq_format()?;
    let ds = read_dataset(format, &arg.path, &opts)
        .with_context(|| format!("reading {}:{}", format, arg.path.display()))?;
    for (p, e) in &ds.errors {
        eprintln!("warning: skipped {}: {e}", p.display());
    }
    if !quiet {
        for w in &ds.warnings {
            eprintln!("warning: {w}");
        }
    }
    let mut samples = Vec::with_capacity(ds.samples.len());
    let mut labels = Vec::with_capacity(ds.samples.len());
    let mut unlabelled = 0usize;
    let mut empty = 0usize;
    for s in ds.samples {
        match &s.label {
            None => unlabelled += 1,
            Some(_) if s.apis.is_empty() => empty += 1,
            Some(l) => {
                labels.push(l.clone());
                samples.push(s);
            }
        }
    }
    if unlabelled > 0 {
        eprintln!("warning: {unlabelled} samples without a label were skipped");
    }
    if empty > 0 {
        eprintln!("warning: {empty} samples without API calls were skipped");
    }
    if samples.is_empty() {
        bail!("{}: no labelled samples with API calls", arg.path.display());
    }
    Ok((samples, labels))
}
