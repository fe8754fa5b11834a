//! `FORMAT:PATH` dataset arguments.

use anyhow::{bail, Context, Result};
use mallard_apiseq::{read_dataset, DatasetOptions, Format, Sample};
use std::path::PathBuf;

#[derive(Clone, Debug)]
pub struct DatasetArg {
    pub format: Format,
    pub path: PathBuf,
}

impl std::str::FromStr for DatasetArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = Format::ALL.map(|f| f.name()).join(", ");
        let (f, p) = s.split_once(':').ok_or_else(|| format!("expected FORMAT:PATH with FORMAT one of {names}"))?;
        let format = f.parse::<Format>().map_err(|_| format!("unknown dataset format {f:?} (one of {names})"))?;
        if p.is_empty() {
            return Err("empty path after FORMAT:".into());
        }
        Ok(DatasetArg { format, path: PathBuf::from(p) })
    }
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
}

/// Reads a labelled dataset; per-file errors in report folders are printed and skipped.
pub fn load_labelled(arg: &DatasetArg, read: &ReadArgs, quiet: bool) -> Result<(Vec<Sample>, Vec<String>)> {
    let opts = DatasetOptions { max_calls: read.max_calls, per_process: read.per_process, ..DatasetOptions::default() };
    let ds = read_dataset(arg.format, &arg.path, &opts)
        .with_context(|| format!("reading {}:{}", arg.format, arg.path.display()))?;
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
