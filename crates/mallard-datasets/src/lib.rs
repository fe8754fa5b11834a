//! mallard's datasets, named `FORMAT:PATH`: API-call samples (Cuckoo/CAPE reports,
//! MalBehavD-V1, Mal-API-2019, jsonl) and labelled feature tables (CSV, EMBER jsonl, folders
//! of PE files), with the caps of `mallard-io`. Nothing here prints: warnings come back to
//! the caller.

mod ember;
pub mod features_out;
mod pe;
pub use pe::{labelled_pe_files, read_groups_file, LabelledFiles};

use mallard_apiseq::{read_dataset, DatasetOptions, Format, Sample};
use mallard_tables::{read_csv, read_csv_with_schema, CsvOptions, Table, TableSchema};
use std::collections::HashMap;
use std::path::PathBuf;

pub use mallard_tables;

/// Everything that can go wrong reading a dataset; each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Io(#[from] mallard_io::IoError),
    /// A table that failed to read; `what` is `csv:PATH` or a path with a line.
    #[error("{what}: {cause}")]
    Table {
        what: String,
        cause: mallard_tables::TableError,
    },
    #[error("reading {what}: {cause}")]
    Samples {
        what: String,
        cause: mallard_apiseq::ReadError,
    },
    /// Bad content or a bad combination of datasets and options; the message names the file.
    #[error("{0}")]
    Invalid(String),
}

type Result<T, E = DatasetError> = std::result::Result<T, E>;

fn invalid(msg: impl Into<String>) -> DatasetError {
    DatasetError::Invalid(msg.into())
}

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
    /// The same folders read as sequences: the mnemonics of each file's reachable x86/x64
    /// code (`mallard-disasm`), for the sequence models.
    Opcodes,
}

/// One `FORMAT:PATH` dataset.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub format: DataFormat,
    pub path: PathBuf,
}

impl DatasetSpec {
    /// The sequence format, or an error explaining that sequences are needed.
    pub fn seq_format(&self) -> Result<Format> {
        match self.format {
            DataFormat::Seq(f) => Ok(f),
            DataFormat::Opcodes => Err(invalid(format!(
                "{}: opcode sequences, not API calls",
                self.path.display()
            ))),
            _ => Err(invalid(format!(
                "{}: a feature table, but this model reads API-call sequences",
                self.path.display()
            ))),
        }
    }

    /// True for feature tables (csv, ember, pe).
    pub fn is_table(&self) -> bool {
        !matches!(self.format, DataFormat::Seq(_) | DataFormat::Opcodes)
    }

    /// Where a sequence dataset's tokens come from, as a model records it
    /// (`Meta::feature_set`): `Some("opcodes")`, or `None` for API calls and tables.
    pub fn token_source(&self) -> Option<&'static str> {
        (self.format == DataFormat::Opcodes).then_some("opcodes")
    }
}

impl std::str::FromStr for DatasetSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let names = format!(
            "{}, csv, ember, pe, opcodes",
            Format::ALL.map(|f| f.name()).join(", ")
        );
        let (f, p) = s
            .split_once(':')
            .ok_or_else(|| format!("expected FORMAT:PATH with FORMAT one of {names}"))?;
        let format = match f.to_ascii_lowercase().as_str() {
            "csv" => DataFormat::Csv,
            "ember" => DataFormat::Ember,
            "pe" => DataFormat::Pe,
            "opcodes" => DataFormat::Opcodes,
            _ => DataFormat::Seq(
                f.parse::<Format>()
                    .map_err(|_| format!("unknown dataset format {f:?} (one of {names})"))?,
            ),
        };
        if p.is_empty() {
            return Err("empty path after FORMAT:".into());
        }
        Ok(DatasetSpec {
            format,
            path: PathBuf::from(p),
        })
    }
}

/// How datasets are read: the reading flags of `mallard train`, `eval` and `cv` (with the
/// `clap` feature this struct is those flags; its docs are their help).
#[derive(Clone, Debug)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct ReadOptions {
    /// Keep only the first N calls of each sample when reading.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N"))]
    pub max_calls: Option<usize>,
    /// Reports: one sample per monitored process instead of one per report.
    #[cfg_attr(feature = "clap", arg(long))]
    pub per_process: bool,
    /// csv: the column holding the label (in --labels-file when that is given); ember: the
    /// field whose text is the label instead of EMBER's 0/1, e.g. `avclass` for families.
    #[cfg_attr(feature = "clap", arg(long, value_name = "COL"))]
    pub label_column: Option<String>,
    /// Tables: leave out the rows of labels with fewer rows than N (families too small to
    /// learn and test).
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)))]
    pub min_class_rows: Option<usize>,
    /// csv: a separate id,label file joined on --id-column.
    #[cfg_attr(feature = "clap", arg(long, value_name = "FILE"))]
    pub labels_file: Option<PathBuf>,
    /// csv: the column holding a row id (never a feature).
    #[cfg_attr(feature = "clap", arg(long, value_name = "COL"))]
    pub id_column: Option<String>,
    /// Columns not to use as features (csv: e.g. ids; ember/pe: e.g. header_timestamp).
    #[cfg_attr(feature = "clap", arg(long, value_name = "COL", value_delimiter = ','))]
    pub drop_columns: Vec<String>,
    /// pe: the feature set to extract (ember-v2, ember-v2-hardened, ember-v3, pe-header,
    /// saxe-1024, opcodes, image, dotnet; default ember-v2).
    #[cfg_attr(feature = "clap", arg(long, value_name = "NAME"))]
    pub feature_set: Option<String>,
    /// ember: the fields that group rows for every split (folds, early-stopping holdout,
    /// calibration): the first non-empty one of them names a row's group, and a group is
    /// never split. Default `group,avclass`: an explicit group (a benign file's project),
    /// else the family hint. `group,source` holds out whole malware collections.
    #[cfg_attr(
        feature = "clap",
        arg(long, value_name = "FIELDS", value_delimiter = ',')
    )]
    pub group_by: Vec<String>,
    /// csv, ember: refuse table files larger than this many MiB (checked before reading).
    #[cfg_attr(feature = "clap", arg(long = "max-table-mib", value_name = "MIB", default_value_t = mallard_io::Caps::default().max_table_bytes >> 20, value_parser = mib_to_bytes))]
    pub max_table_bytes: u64,
    /// csv: refuse cells (labels and ids too) longer than this many bytes.
    #[cfg_attr(feature = "clap", arg(long, value_name = "BYTES", default_value_t = mallard_io::Caps::default().max_cell_bytes))]
    pub max_cell_bytes: usize,
    /// pe: deepest folder nesting searched below the dataset folder.
    #[cfg_attr(feature = "clap", arg(long, value_name = "N", default_value_t = mallard_io::Caps::default().max_walk_depth))]
    pub max_depth: usize,
    /// pe: a tab-separated NAME<TAB>GROUP file giving files (by name) a group, such as a
    /// malware family or a benign project: a group never straddles a split.
    #[cfg_attr(feature = "clap", arg(long = "groups", value_name = "FILE.tsv"))]
    pub groups_file: Option<PathBuf>,
}

/// `--max-table-mib`: MiB on the command line, bytes in [`ReadOptions`].
#[cfg(feature = "clap")]
fn mib_to_bytes(s: &str) -> Result<u64, String> {
    let mib: u64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number of MiB"))?;
    Ok(mib.saturating_mul(1 << 20))
}

impl Default for ReadOptions {
    fn default() -> Self {
        let caps = mallard_io::Caps::default();
        ReadOptions {
            max_calls: None,
            per_process: false,
            label_column: None,
            labels_file: None,
            id_column: None,
            drop_columns: Vec::new(),
            feature_set: None,
            group_by: Vec::new(),
            max_table_bytes: caps.max_table_bytes,
            max_cell_bytes: caps.max_cell_bytes,
            max_depth: caps.max_walk_depth,
            groups_file: None,
            min_class_rows: None,
        }
    }
}

impl ReadOptions {
    /// The grouping fields, or the default `group,avclass`.
    /// A field that is the label (`--label-column avclass`) groups nothing: a family as
    /// its own group could never be both trained on and tested.
    pub fn group_fields(&self) -> Vec<String> {
        let fields: Vec<String> = if self.group_by.is_empty() {
            vec!["group".into(), "avclass".into()]
        } else {
            self.group_by.clone()
        };
        fields
            .into_iter()
            .filter(|f| Some(f) != self.label_column.as_ref())
            .collect()
    }
}

/// Reads a labelled feature table (csv, ember or pe); with `schema`, columns are taken by
/// name and encoded as the model was trained. Skipped files are described in `warnings`.
pub fn load_table(
    spec: &DatasetSpec,
    read: &ReadOptions,
    schema: Option<&TableSchema>,
    warnings: &mut Vec<String>,
) -> Result<Table> {
    let t = match spec.format {
        DataFormat::Ember => ember::table(
            &spec.path,
            &read.group_fields(),
            read.label_column.as_deref(),
            read.max_table_bytes,
        )?,
        DataFormat::Pe => pe::table(&spec.path, read, warnings)?,
        DataFormat::Csv => return load_csv(spec, read, schema),
        DataFormat::Seq(_) | DataFormat::Opcodes => {
            return Err(invalid(format!(
                "{}: sequences, not a feature table",
                spec.path.display()
            )))
        }
    };
    if t.n_rows() == 0 {
        return Err(invalid(format!(
            "{}: no labelled rows",
            spec.path.display()
        )));
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
        feature_set: t.feature_set,
    }
}

fn numeric_schema(names: &[String]) -> TableSchema {
    TableSchema::numeric(names)
}

fn load_csv(spec: &DatasetSpec, read: &ReadOptions, schema: Option<&TableSchema>) -> Result<Table> {
    let label_column = read.label_column.clone().ok_or_else(|| {
        invalid(format!(
            "{}: a csv dataset needs a label column (--label-column)",
            spec.path.display()
        ))
    })?;
    let opts = CsvOptions {
        label_column: Some(label_column),
        id_column: read.id_column.clone(),
        labels_file: read.labels_file.clone(),
        drop_columns: read.drop_columns.clone(),
        drop_empty_columns: true,
        max_table_bytes: read.max_table_bytes,
        max_cell_bytes: read.max_cell_bytes,
    };
    let t = match schema {
        Some(s) => read_csv_with_schema(&spec.path, &opts, s),
        None => read_csv(&spec.path, &opts),
    }
    .map_err(|cause| DatasetError::Table {
        what: format!("reading csv:{}", spec.path.display()),
        cause,
    })?;
    if t.n_rows() == 0 {
        return Err(invalid(format!("{}: no rows", spec.path.display())));
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

/// Each row's kind of PE file (32-/64-bit EXE, DLL, .NET; see
/// `mallard_pefeatures::ember::kind`), read from EMBER v2 columns; `None` for other tables.
pub fn pe_kinds(table: &Table) -> Option<Vec<usize>> {
    let cols = mallard_pefeatures::ember::kind::KindColumns::find(&table.columns)?;
    Some(
        (0..table.n_rows())
            .map(|i| cols.kind(table.row(i)))
            .collect(),
    )
}

/// Reads several labelled tables and joins their rows (the first one's columns, in its
/// order); `drop_columns` applies to all.
pub fn load_tables(
    specs: &[DatasetSpec],
    read: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Table> {
    let mut it = specs.iter();
    let first = it.next().ok_or_else(|| invalid("no dataset given"))?;
    let mut t = load_table(first, read, None, warnings)?;
    if first.format != DataFormat::Csv {
        // csv drops its columns while reading; the other tables here.
        t.drop_columns(&read.drop_columns)
            .map_err(|e| invalid(format!("--drop-columns: {e}")))?;
    }
    for s in it {
        if !s.is_table() {
            return Err(invalid(format!(
                "{}: API-call sequences cannot be joined with a feature table",
                s.path.display()
            )));
        }
        let schema = t.schema.clone();
        let u = load_table(s, read, Some(&schema), warnings)?;
        t.append(u)
            .map_err(|e| invalid(format!("joining {}: {e}", s.path.display())))?;
    }
    if let Some(min) = read.min_class_rows {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for l in t.labels.iter() {
            *count.entry(l).or_default() += 1;
        }
        let keep: Vec<usize> = (0..t.n_rows())
            .filter(|&i| t.labels.get(i).is_some_and(|l| count[l] >= min))
            .collect();
        let dropped = count.values().filter(|&&c| c < min).count();
        if dropped > 0 {
            warnings.push(format!(
                "left out {} rows of {dropped} labels with fewer than {min} rows (--min-class-rows)",
                t.n_rows() - keep.len()
            ));
            t = t.select_rows(&keep);
        }
    }
    Ok(t)
}

/// The one dataset of a command that reads API-call sequences.
pub fn single(specs: &[DatasetSpec]) -> Result<&DatasetSpec> {
    match specs {
        [one] => Ok(one),
        [] => Err(invalid("no dataset given")),
        [first, ..] => Err(invalid(format!(
            "{}: API-call datasets are read one at a time; give --dataset once",
            first.path.display()
        ))),
    }
}

/// Names of the datasets for messages: `a.jsonl + b.jsonl`.
pub fn describe(specs: &[DatasetSpec]) -> String {
    specs
        .iter()
        .map(|a| a.path.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Labelled API-call samples, the labels beside them (same order).
pub struct Labelled {
    pub samples: Vec<Sample>,
    pub labels: Vec<String>,
}

/// Reads a labelled sample dataset. Files that fail, samples without a label or without
/// calls are skipped and described in `warnings`; `notes` gets the reader's remarks.
pub fn load_labelled(
    spec: &DatasetSpec,
    read: &ReadOptions,
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Result<Labelled> {
    let opts = DatasetOptions {
        max_calls: read.max_calls,
        per_process: read.per_process,
        ..DatasetOptions::default()
    };
    let samples_read = if spec.format == DataFormat::Opcodes {
        pe::opcode_samples(&spec.path, read, warnings)?
    } else {
        let format = spec.seq_format()?;
        let ds =
            read_dataset(format, &spec.path, &opts).map_err(|cause| DatasetError::Samples {
                what: format!("{}:{}", format, spec.path.display()),
                cause,
            })?;
        for (p, e) in &ds.errors {
            warnings.push(format!("skipped {}: {e}", p.display()));
        }
        notes.extend(ds.warnings);
        ds.samples
    };
    let mut samples = Vec::with_capacity(samples_read.len());
    let mut labels = Vec::with_capacity(samples_read.len());
    let (mut unlabelled, mut empty) = (0usize, 0usize);
    for s in samples_read {
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
        warnings.push(format!("{unlabelled} samples without a label were skipped"));
    }
    if empty > 0 {
        warnings.push(format!(
            "{empty} samples without calls or instructions were skipped"
        ));
    }
    if samples.is_empty() {
        return Err(invalid(format!(
            "{}: no labelled samples with API calls",
            spec.path.display()
        )));
    }
    Ok(Labelled { samples, labels })
}

/// For each of `samples`, whether its set of distinct API names appears in none of
/// `reference` (a training set): the rows a set-based model has not seen in another order.
pub fn novel_sets(samples: &[Sample], reference: &[Sample]) -> Vec<bool> {
    use std::collections::{BTreeSet, HashSet};
    let set = |s: &Sample| -> BTreeSet<String> { s.apis.iter().cloned().collect() };
    let seen: HashSet<BTreeSet<String>> = reference.iter().map(set).collect();
    samples.iter().map(|s| !seen.contains(&set(s))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novel_means_a_new_set_of_names_not_a_new_order() {
        let s = |apis: &[&str]| Sample {
            id: String::new(),
            label: None,
            apis: apis.iter().map(|a| a.to_string()).collect(),
            sha256: None,
        };
        let train = [s(&["A", "B", "A"]), s(&["C"])];
        let test = [s(&["B", "A"]), s(&["C", "D"]), s(&["C", "C"])];
        assert_eq!(novel_sets(&test, &train), [false, true, false]);
    }

    #[test]
    fn specs_parse_and_refuse_clearly() {
        let s: DatasetSpec = "CSV:a/b.csv".parse().unwrap();
        assert_eq!(s.format, DataFormat::Csv);
        assert_eq!(s.path, PathBuf::from("a/b.csv"));
        assert!(s.is_table());
        let s: DatasetSpec = "cuckoo:r".parse().unwrap();
        assert!(!s.is_table() && s.seq_format().is_ok());
        let e = "nope:x".parse::<DatasetSpec>().unwrap_err();
        assert!(
            e.contains("unknown dataset format") && e.contains("ember"),
            "{e}"
        );
        assert!("csv:".parse::<DatasetSpec>().is_err());
        assert!("plainpath".parse::<DatasetSpec>().is_err());
    }

    #[test]
    fn feature_vectors_of_any_set_read_as_ember_rows() {
        use mallard_pefeatures::{names, FeatureSet};
        let d = std::env::temp_dir().join(format!("mallard-datasets-set-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let dim = FeatureSet::PeHeader.dim();
        let row = |set: &str, label: i32, x: f32, fam: &str| {
            serde_json::json!({"set": set, "sha256": format!("{x}"), "vector": vec![x; dim],
                "label": label, "avclass": fam})
            .to_string()
        };
        let good = d.join("good.jsonl");
        let lines = [
            row("pe-header", 1, 1.0, "Emotet"),
            row("pe-header", 0, 2.0, ""),
        ];
        std::fs::write(&good, lines.join("\n")).unwrap();
        let spec: DatasetSpec = format!("ember:{}", good.display()).parse().unwrap();
        let mut w = Vec::new();
        let t = load_table(&spec, &ReadOptions::default(), None, &mut w).unwrap();
        assert_eq!(t.columns, names(FeatureSet::PeHeader));
        assert_eq!(t.n_rows(), 2);
        assert_eq!(t.row(1)[0], 2.0);
        assert_eq!(t.labels.get(0), Some("malicious"));
        assert_eq!(t.groups.as_ref().unwrap()[0], "avclass:emotet");
        let mixed = d.join("mixed.jsonl");
        let lines = [row("pe-header", 1, 1.0, ""), row("saxe-1024", 0, 2.0, "")];
        std::fs::write(&mixed, lines.join("\n")).unwrap();
        let spec: DatasetSpec = format!("ember:{}", mixed.display()).parse().unwrap();
        let e = load_table(&spec, &ReadOptions::default(), None, &mut w).unwrap_err();
        assert!(
            e.to_string()
                .contains("mixed.jsonl:2: a saxe-1024 row in a file of pe-header rows"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn tables_join_by_column_name_and_sequences_do_not_join() {
        let d = std::env::temp_dir().join(format!("mallard-datasets-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("a.csv"), "x,y,label\n1,2,b\n3,4,m\n").unwrap();
        std::fs::write(d.join("b.csv"), "y,x,label\n20,10,m\n").unwrap();
        let spec = |f: &str| format!("csv:{}", d.join(f).display()).parse().unwrap();
        let read = ReadOptions {
            label_column: Some("label".into()),
            ..ReadOptions::default()
        };
        let mut w = Vec::new();
        let t = load_tables(&[spec("a.csv"), spec("b.csv")], &read, &mut w).unwrap();
        assert_eq!(t.columns, ["x", "y"]);
        assert_eq!(t.row(2), [10.0, 20.0]);
        assert_eq!(t.labels.to_vec(), ["b", "m", "m"]);
        let seq: DatasetSpec = "jsonl:x.jsonl".parse().unwrap();
        let e = load_tables(&[spec("a.csv"), seq], &read, &mut w).unwrap_err();
        assert!(e.to_string().contains("cannot be joined"), "{e}");
        let e = load_tables(&[spec("a.csv")], &ReadOptions::default(), &mut w).unwrap_err();
        assert!(e.to_string().contains("label column"), "{e}");
        assert!(w.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}

#[cfg(test)]
mod family_tests {
    use super::*;

    #[test]
    fn ember_rows_labelled_by_family_keep_families_with_enough_rows_and_do_not_group_by_them() {
        let n = mallard_pefeatures::names(mallard_pefeatures::FeatureSet::PeHeader).len();
        let d = std::env::temp_dir().join(format!("mallard-family-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("m.jsonl");
        let mut text = String::new();
        for (i, fam) in ["a", "a", "a", "b", "b", "b", "c", ""].iter().enumerate() {
            let v: Vec<f32> = (0..n).map(|j| (i * n + j) as f32).collect();
            text += &serde_json::json!({"sha256": format!("{i}"), "label": 1, "avclass": fam, "set": "pe-header", "vector": v}).to_string();
            text.push('\n');
        }
        std::fs::write(&f, text).unwrap();
        let spec: DatasetSpec = format!("ember:{}", f.display()).parse().unwrap();
        let read = ReadOptions {
            label_column: Some("avclass".into()),
            min_class_rows: Some(2),
            ..ReadOptions::default()
        };
        let mut w = Vec::new();
        let t = load_tables(&[spec], &read, &mut w).unwrap();
        // The unlabelled row is skipped, family c (one row) left out and said so.
        assert_eq!(
            t.labels.iter().collect::<Vec<_>>(),
            ["a", "a", "a", "b", "b", "b"]
        );
        assert!(
            w.iter().any(|m| m.contains("left out 1 rows of 1 labels")),
            "{w:?}"
        );
        // The family is the label, so it is no group: every row is its own.
        assert!(
            t.groups.as_ref().unwrap().iter().all(|g| g.is_empty()),
            "{:?}",
            t.groups
        );
        assert_eq!(read.group_fields(), ["group"]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
