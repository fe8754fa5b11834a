//! `FORMAT:PATH` dataset reading options as flags; the reading is `mallard-datasets`.

use mallard_datasets::ReadOptions;
use std::path::PathBuf;

/// How datasets are read, shared by `train`, `eval` and `cv`.
#[derive(clap::Args, Clone, Debug)]
pub struct ReadArgs {
    /// Keep only the first N calls of each sample when reading.
    #[arg(long, value_name = "N")]
    pub max_calls: Option<usize>,
    /// Reports: one sample per monitored process instead of one per report.
    #[arg(long)]
    pub per_process: bool,
    /// csv: the column holding the label (in --labels-file when that is given); ember: the
    /// field whose text is the label instead of EMBER's 0/1, e.g. `avclass` for families.
    #[arg(long, value_name = "COL")]
    pub label_column: Option<String>,
    /// Tables: leave out the rows of labels with fewer rows than N (families too small to
    /// learn and test).
    #[arg(long, value_name = "N", value_parser = mallard_experiment::settings::check::positive_usize)]
    pub min_class_rows: Option<usize>,
    /// csv: a separate id,label file joined on --id-column.
    #[arg(long, value_name = "FILE")]
    pub labels_file: Option<PathBuf>,
    /// csv: the column holding a row id (never a feature).
    #[arg(long, value_name = "COL")]
    pub id_column: Option<String>,
    /// Columns not to use as features (csv: e.g. ids; ember/pe: e.g. header_timestamp).
    #[arg(long, value_name = "COL", value_delimiter = ',')]
    pub drop_columns: Vec<String>,
    /// pe: the feature set to extract (ember-v2, ember-v2-hardened, ember-v3, pe-header,
    /// saxe-1024, opcodes, image; default ember-v2).
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
    /// pe: a tab-separated NAME<TAB>GROUP file giving files (by name) a group, such as a
    /// malware family or a benign project: a group never straddles a split.
    #[arg(long = "groups", value_name = "FILE.tsv")]
    pub groups_file: Option<PathBuf>,
}

impl ReadArgs {
    /// The flags as the library's options: the same names, the table cap in bytes.
    #[rustfmt::skip]
    pub fn options(&self) -> ReadOptions {
        let a = self.clone();
        macro_rules! same {
            ($($f:ident),*) => { ReadOptions { $($f: a.$f,)* max_table_bytes: a.max_table_mib.saturating_mul(1 << 20) } };
        }
        same!(max_calls, per_process, label_column, labels_file, id_column, drop_columns, feature_set, group_by,
            max_cell_bytes, max_depth, groups_file, min_class_rows)
    }
}
