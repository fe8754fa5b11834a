//! `FORMAT:PATH` dataset arguments.

use anyhow::{anyhow, bail, Context, Result};
use mallard_apiseq::{read_dataset, DatasetOptions, Format, Sample};
use mallard_model::tables::{read_csv, read_csv_with_schema, CsvOptions, Table, TableSchema};
use std::path::PathBuf;

/// What a dataset holds: API-call sequences (of some format) or a feature table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataFormat {
    Seq(Format),
    /// A CSV feature table.
    Csv,
    /// EMBER jsonl: raw feature objects (vectorized with the ember-v2 code) or `vector`s,
    /// with EMBER's `label` (1 malicious, 0 benign, -1 unlabelled: skipped).
    Ember,
    /// A folder of PE files, labelled by their first sub-folder (`DIR/malicious/...`).
    Pe,
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
            _ => Err(anyhow!(
                "{}: a feature table, but this model reads API-call sequences",
                self.path.display()
            )),
        }
    }
}

impl std::str::FromStr for DatasetArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = format!(
            "{}, csv, ember, pe",
            Format::ALL.map(|f| f.name()).join(", ")
        );
        let (f, p) = s
            .split_once(':')
            .ok_or_else(|| format!("expected FORMAT:PATH with FORMAT one of {names}"))?;
        let format = match f.to_ascii_lowercase().as_str() {
            "csv" => DataFormat::Csv,
            "ember" => DataFormat::Ember,
            "pe" => DataFormat::Pe,
            _ => DataFormat::Seq(
                f.parse::<Format>()
                    .map_err(|_| format!("unknown dataset format {f:?} (one of {names})"))?,
            ),
        };
        if p.is_empty() {
            return Err("empty path after FORMAT:".into());
        }
        Ok(DatasetArg {
            format,
            path: PathBuf::from(p),
        })
    }
}

/// Reads a labelled feature table (csv, ember or pe); with `schema`, columns are taken by
/// name and encoded as the model was trained.
pub fn load_table(
    arg: &DatasetArg,
    read: &ReadArgs,
    schema: Option<&TableSchema>,
) -> Result<Table> {
    let t = match arg.format {
        DataFormat::Ember => ember_table(&arg.path, &read.group_fields(), read.max_table_bytes())?,
        DataFormat::Pe => pe_table(&arg.path, read)?,
        _ => return load_csv(arg, read, schema),
    };
    if t.n_rows() == 0 {
        bail!("{}: no labelled rows", arg.path.display());
    }
    Ok(match schema {
        Some(s) => reorder(t, s),
        None => t,
    })
}

/// Columns in the schema's order (absent columns: NaN).
fn reorder(t: Table, schema: &TableSchema) -> Table {
    let want = schema.names();
    if want == t.columns {
        return t;
    }
    let idx: Vec<Option<usize>> = want
        .iter()
        .map(|c| t.columns.iter().position(|x| x == c))
        .collect();
    let mut values = Vec::with_capacity(t.n_rows() * want.len());
    for i in 0..t.n_rows() {
        let row = t.row(i);
        values.extend(
            idx.iter()
                .map(|j| j.and_then(|j| row.get(j).copied()).unwrap_or(f32::NAN)),
        );
    }
    Table {
        columns: want,
        values,
        labels: t.labels,
        ids: t.ids,
        groups: t.groups,
        schema: schema.clone(),
    }
}

fn numeric_schema(names: &[String]) -> TableSchema {
    TableSchema {
        columns: names
            .iter()
            .map(|n| mallard_model::tables::ColumnSpec {
                name: n.clone(),
                categories: None,
            })
            .collect(),
    }
}

/// Opens a regular file of at most `max_bytes` on disk, decompressing it when it starts
/// with gzip's magic bytes (lines stay capped by the caller).
fn open_maybe_gz(path: &std::path::Path, max_bytes: u64) -> Result<Box<dyn std::io::BufRead>> {
    use std::io::{BufRead, BufReader};
    let (f, _) = mallard_io::open_capped(path, max_bytes)?;
    let mut r = BufReader::new(f);
    let gz = r
        .fill_buf()
        .with_context(|| format!("reading {}", path.display()))?
        .starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(r)))
    } else {
        Box::new(r)
    })
}

/// A row's group: the first of `fields` that is a non-empty string, as `field:value`
/// (lower-cased: family hints differ in case between collections).
fn row_group(v: &serde_json::Value, fields: &[String]) -> String {
    fields
        .iter()
        .find_map(|f| {
            v.get(f)
                .and_then(|x| x.as_str())
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(|x| format!("{f}:{}", x.to_lowercase()))
        })
        .unwrap_or_default()
}

/// Longest jsonl line read (an EMBER raw object is ~100 KB; a bigger line is not one).
const MAX_EMBER_LINE: u64 = 64 << 20;

fn ember_table(path: &std::path::Path, group_fields: &[String], max_bytes: u64) -> Result<Table> {
    use std::io::{BufRead, Read};
    let names = mallard_pefeatures::names(mallard_pefeatures::FeatureSet::EmberV2);
    let mut reader = open_maybe_gz(path, max_bytes)?;
    let (mut values, mut labels, mut ids, mut groups) = (
        Vec::new(),
        mallard_model::tables::Labels::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut buf = Vec::new();
    for i in 0.. {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_EMBER_LINE + 1)
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        if n as u64 > MAX_EMBER_LINE {
            bail!("{}: line longer than {} MiB", at(), MAX_EMBER_LINE >> 20);
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line).with_context(at)?;
        let label = match v.get("label").and_then(|l| l.as_i64()) {
            Some(1) => "malicious",
            Some(0) => "benign",
            _ => continue,
        };
        let vector: Vec<f32> = match v.get("vector").and_then(|x| x.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).unwrap_or(f32::NAN))
                .collect(),
            None => {
                mallard_pefeatures::ember_vectorize(&v).map_err(|e| anyhow!("{}: {e}", at()))?
            }
        };
        if vector.len() != names.len() {
            bail!(
                "{}: {} values, EMBER v2 has {}",
                at(),
                vector.len(),
                names.len()
            );
        }
        values.extend(vector);
        labels.push(label);
        groups.push(row_group(&v, group_fields));
        ids.push(
            v.get("sha256")
                .and_then(|s| s.as_str())
                .map_or_else(|| format!("line {}", i + 1), str::to_string),
        );
    }
    Ok(Table {
        schema: numeric_schema(&names),
        columns: names,
        values,
        labels,
        ids: Some(ids),
        groups: Some(groups),
    })
}

fn pe_table(dir: &std::path::Path, read: &ReadArgs) -> Result<Table> {
    use rayon::prelude::*;
    let set: mallard_pefeatures::FeatureSet = read
        .feature_set
        .as_deref()
        .unwrap_or("ember-v2")
        .parse()
        .map_err(|e| anyhow!("{e}"))?;
    let names = mallard_pefeatures::names(set);
    // One walk (depth capped); a file's label is its first sub-folder,
    // files directly in `dir` have none and are left out. Unreadable entries are warned
    // about and skipped, like files that fail to featurise.
    let head_errors = std::cell::RefCell::new(Vec::new());
    let keep = |p: &std::path::Path| match mallard_io::starts_like_pe(p) {
        Ok(pe) => pe,
        Err(e) => {
            head_errors.borrow_mut().push(e.to_string());
            false
        }
    };
    let opts = mallard_io::WalkOptions {
        follow_symlinks: false,
        max_depth: read.max_depth,
    };
    if !dir.is_dir() {
        bail!(
            "{}: not a folder (a pe dataset is a folder of label folders)",
            dir.display()
        );
    }
    let mut w = mallard_io::walk(&[dir.to_path_buf()], &opts, &keep);
    // Links to regular files are taken (a labelled view of a corpus is often made of
    // links); links to folders are not followed, so they cannot loop or leave the dataset.
    for link in std::mem::take(&mut w.links) {
        if std::fs::metadata(&link).is_ok_and(|m| m.is_file()) && keep(&link) {
            w.files.push(link);
        }
    }
    for (_, e) in &w.errors {
        eprintln!("warning: skipped {e}");
    }
    for e in head_errors.into_inner() {
        eprintln!("warning: skipped {e}");
    }
    let mut files: Vec<(PathBuf, String)> = w
        .files
        .into_iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(dir).ok()?;
            let mut parts = rel.components();
            let label = parts.next()?.as_os_str().to_string_lossy().into_owned();
            parts.next()?;
            Some((f, label))
        })
        .collect();
    files.sort();
    let rows: Vec<(String, String, Result<Vec<f32>, String>)> = files
        .par_iter()
        .map(|(f, l)| {
            let v = mallard_pefeatures::extract_file(
                set,
                f,
                mallard_io::Caps::DEFAULT_MAX_PE_BYTES as usize,
            )
            .map_err(|e| e.to_string());
            (f.display().to_string(), l.clone(), v)
        })
        .collect();
    let (mut values, mut labels, mut ids) =
        (Vec::new(), mallard_model::tables::Labels::new(), Vec::new());
    for (id, label, v) in rows {
        match v {
            Ok(v) => {
                values.extend(v);
                labels.push(&label);
                ids.push(id);
            }
            Err(e) => eprintln!("warning: skipped {e}"),
        }
    }
    Ok(Table {
        schema: numeric_schema(&names),
        columns: names,
        values,
        labels,
        ids: Some(ids),
        groups: None,
    })
}

fn load_csv(arg: &DatasetArg, read: &ReadArgs, schema: Option<&TableSchema>) -> Result<Table> {
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
        max_table_bytes: read.max_table_bytes(),
        max_cell_bytes: read.max_cell_bytes,
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
        columns
            .iter()
            .all(|c| names.contains(c))
            .then_some(set.name())
    })
}

/// How datasets are read, shared by `train`, `eval` and `cv`.
#[derive(clap::Args, Clone, Debug)]
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
    /// Columns not to use as features (csv: e.g. ids; ember/pe: e.g. header_timestamp).
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub drop_columns: Vec<String>,
    /// pe: the feature set to extract (ember-v2, pe-header, saxe-1024; default ember-v2).
    #[arg(long, value_name = "NAME")]
    pub feature_set: Option<String>,
    /// ember: the fields that group rows for every split (folds, early-stopping holdout,
    /// calibration): the first non-empty one of them names a row's group, and a group is
    /// never split. Default `group,avclass`: an explicit group (a benign file's project),
    /// else the family hint. `group,source` holds out whole malware collections.
    #[arg(long, value_name = "FIELDS", value_delimiter = ',')]
    pub group_by: Vec<String>,
    /// csv, ember: refuse table files larger than this many MiB (checked before reading).
    #[arg(long, value_name = "MIB", default_value_t = mallard_io::Caps::default().max_table_bytes >> 20)]
    pub max_table_mib: u64,
    /// csv: refuse cells (labels and ids too) longer than this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = mallard_io::Caps::default().max_cell_bytes)]
    pub max_cell_bytes: usize,
    /// pe: deepest folder nesting searched below the dataset folder.
    #[arg(long, value_name = "N", default_value_t = mallard_io::Caps::default().max_walk_depth)]
    pub max_depth: usize,
}

impl ReadArgs {
    fn max_table_bytes(&self) -> u64 {
        self.max_table_mib.saturating_mul(1 << 20)
    }

    /// The `--group-by` fields, or the default.
    pub fn group_fields(&self) -> Vec<String> {
        if self.group_by.is_empty() {
            vec!["group".into(), "avclass".into()]
        } else {
            self.group_by.clone()
        }
    }
}

/// Reads several labelled tables and joins their rows (the same columns in the same order).
pub fn load_tables(args: &[DatasetArg], read: &ReadArgs) -> Result<Table> {
    let mut it = args.iter();
    let first = it.next().ok_or_else(|| anyhow!("no --dataset given"))?;
    let mut t = load_table(first, read, None)?;
    if first.format != DataFormat::Csv {
        // csv drops its columns while reading; the other tables here.
        t.drop_columns(&read.drop_columns)
            .map_err(|e| anyhow!("--drop-columns: {e}"))?;
    }
    for a in it {
        if matches!(a.format, DataFormat::Seq(_)) {
            bail!(
                "{}: API-call sequences cannot be joined with a feature table",
                a.path.display()
            );
        }
        let schema = t.schema.clone();
        let u = load_table(a, read, Some(&schema))?;
        t.append(u)
            .map_err(|e| anyhow!("joining {}: {e}", a.path.display()))?;
    }
    Ok(t)
}

/// The one dataset of a command that reads API-call sequences.
pub fn single(args: &[DatasetArg]) -> Result<&DatasetArg> {
    match args {
        [one] => Ok(one),
        [] => bail!("no --dataset given"),
        [first, ..] => bail!(
            "{}: API-call datasets are read one at a time; give --dataset once",
            first.path.display()
        ),
    }
}

/// Names of the datasets for messages: `a.jsonl + b.jsonl`.
pub fn describe(args: &[DatasetArg]) -> String {
    args.iter()
        .map(|a| a.path.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Reads a labelled dataset; per-file errors in report folders are printed and skipped.
pub fn load_labelled(
    arg: &DatasetArg,
    read: &ReadArgs,
    quiet: bool,
) -> Result<(Vec<Sample>, Vec<String>)> {
    let opts = DatasetOptions {
        max_calls: read.max_calls,
        per_process: read.per_process,
        ..DatasetOptions::default()
    };
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

/// Each row's group for splitting: identical feature rows share one, and so do rows with
/// the same named group (family, package), transitively.
pub fn table_groups(table: &Table) -> Result<Vec<usize>> {
    let keys: Vec<Vec<u32>> = (0..table.n_rows())
        .map(|i| table.row(i).iter().map(|v| v.to_bits()).collect())
        .collect();
    let named: Vec<Option<&str>> = match &table.groups {
        Some(g) => g
            .iter()
            .map(|s| Some(s.as_str()).filter(|s| !s.is_empty()))
            .collect(),
        None => vec![None; keys.len()],
    };
    Ok(mallard_eval::groups_union(&keys, &named)?)
}

/// Stratified k-fold test indices of whole groups ([`table_groups`]), so duplicates and
/// relatives never straddle a fold boundary.
pub fn table_folds(table: &Table, y: &[usize], k: usize, seed: u64) -> Result<Vec<Vec<usize>>> {
    let groups = table_groups(table)?;
    Ok(mallard_eval::stratified_group_kfold(&groups, y, k, seed)?)
}
