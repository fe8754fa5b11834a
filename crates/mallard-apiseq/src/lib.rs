//! API-call sequences for malware detection, from sandbox reports and public datasets.
//!
//! Everything ends up as a [`Sample`]: an id, an optional label and the ordered API names.
//! Readers:
//! - [`read_report`]: Cuckoo 2.x, Cuckoo 1.2 and CAPEv2 `report.json`, plain or gzip,
//!   streamed so that memory follows the number of calls, not the size of the report.
//! - [`read_malbehavd`]: MalBehavD-V1 CSV.
//! - [`read_malapi`] / [`read_malapi_dir`] / [`MalApiReader`]: Mal-API-2019 integer-coded files.
//! - [`read_jsonl`] / [`write_jsonl`]: mallard's interchange format.
//! - [`read_dataset`]: one entry point by [`Format`], for the CLI.
//!
//! Any input may be gzip-compressed; it is recognised by its magic bytes, not its name.
//! Inputs are untrusted: malformed data gives a [`ReadError`] naming the file, never a panic.

pub mod canon;
mod error;
mod guard;
mod input;
mod jsonl;
mod malapi;
mod malbehavd;
mod report;

pub use error::{ReadError, UnknownFormat};
pub use jsonl::{read_jsonl, write_jsonl};
pub use malapi::{find_malapi_files, read_api_index, read_malapi, read_malapi_dir, MalApiReader};
pub use malbehavd::read_malbehavd;
pub use report::{
    read_report, read_report_from, CallSource, Flavor, ProcessCalls, Report, ReportOptions,
};

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One program run: its API calls in order, with a label when the dataset has one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub id: String,
    pub label: Option<String>,
    pub apis: Vec<String>,
    pub sha256: Option<String>,
}

/// Input formats known to [`read_dataset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    MalBehavD,
    MalApi,
    Cuckoo,
    Cape,
    Jsonl,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::MalBehavD,
        Format::MalApi,
        Format::Cuckoo,
        Format::Cape,
        Format::Jsonl,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::MalBehavD => "malbehavd",
            Format::MalApi => "malapi",
            Format::Cuckoo => "cuckoo",
            Format::Cape => "cape",
            Format::Jsonl => "jsonl",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, UnknownFormat> {
        let t = s.trim();
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Options for [`read_dataset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetOptions {
    /// Keep at most the first N calls of each sample (all formats). For reports, `None`
    /// means the [`ReportOptions`] default cap.
    pub max_calls: Option<usize>,
    /// Skip (as a per-file error) reports larger than this after decompression; `None`
    /// means the [`ReportOptions`] default (`Caps::max_report_decompressed`).
    pub max_bytes: Option<u64>,
    /// See [`ReportOptions::expand_repeated`].
    pub expand_repeated: bool,
    /// Report folders: take a report's label from the first folder below the root
    /// (`ROOT/<label>/.../report.json`); reports directly in ROOT get no label.
    pub labels_from_dirs: bool,
    /// Reports: one sample per monitored process with calls (id `REPORT#pid`), instead of
    /// one whole-sample sequence per report.
    pub per_process: bool,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            max_calls: None,
            max_bytes: None,
            expand_repeated: false,
            labels_from_dirs: true,
            per_process: false,
        }
    }
}

/// Samples read from one path, with what went wrong on the way.
#[derive(Debug, Default)]
pub struct Dataset {
    pub samples: Vec<Sample>,
    /// Files that could not be read. Only a folder of reports collects errors here: one bad
    /// report must not sink a batch. Single-file formats fail as a whole instead.
    pub errors: Vec<(PathBuf, ReadError)>,
    /// Warnings, each prefixed with its file.
    pub warnings: Vec<String>,
}

/// Reads a dataset in `format` from `path`.
///
/// - `malbehavd`, `jsonl`: a file.
/// - `malapi`: a folder (see [`read_malapi_dir`]) or its `*_calls.txt[.gz]` file.
/// - `cuckoo`, `cape`: one report, or a folder searched recursively for `*.json` and
///   `*.json.gz` (in sorted path order). Sample ids are paths relative to the folder;
///   labels come from folder names (see [`DatasetOptions::labels_from_dirs`]).
pub fn read_dataset(
    format: Format,
    path: &Path,
    opts: &DatasetOptions,
) -> Result<Dataset, ReadError> {
    let truncate = |mut samples: Vec<Sample>| {
        if let Some(n) = opts.max_calls {
            for s in &mut samples {
                s.apis.truncate(n);
            }
        }
        samples
    };
    match format {
        Format::MalBehavD => Ok(Dataset {
            samples: truncate(read_malbehavd(path)?),
            ..Dataset::default()
        }),
        Format::Jsonl => Ok(Dataset {
            samples: truncate(read_jsonl(path)?),
            ..Dataset::default()
        }),
        Format::MalApi => {
            let (calls, index, types) = if path.is_dir() {
                find_malapi_files(path)?
            } else {
                malapi_companions(path)?
            };
            let samples = read_malapi(&calls, &index, &types, opts.max_calls)?;
            Ok(Dataset {
                samples,
                ..Dataset::default()
            })
        }
        Format::Cuckoo | Format::Cape => {
            let defaults = ReportOptions::default();
            let ropts = ReportOptions {
                max_calls: opts.max_calls.unwrap_or(defaults.max_calls),
                max_bytes: opts.max_bytes.unwrap_or(defaults.max_bytes),
                expect: Some(if format == Format::Cape {
                    Flavor::Cape
                } else {
                    Flavor::Cuckoo
                }),
                expand_repeated: opts.expand_repeated,
                ..defaults
            };
            read_report_set(path, &ropts, opts.labels_from_dirs, opts.per_process)
        }
    }
}

fn malapi_companions(calls: &Path) -> Result<(PathBuf, PathBuf, PathBuf), ReadError> {
    let name = calls
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some(prefix) = name
        .strip_suffix("_calls.txt")
        .or_else(|| name.strip_suffix("_calls.txt.gz"))
    else {
        return Err(ReadError::invalid(
            calls,
            "a Mal-API calls file must be named <prefix>_calls.txt[.gz] (or pass its folder)",
        ));
    };
    let dir = calls.parent().unwrap_or(Path::new("."));
    let find = |n: String| {
        [dir.join(&n), dir.join(format!("{n}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    };
    let types = find(format!("{prefix}_types.txt"))
        .ok_or_else(|| ReadError::invalid(calls, format!("no {prefix}_types.txt beside it")))?;
    let index = find("ApiIndex.txt".to_string())
        .ok_or_else(|| ReadError::invalid(calls, "no ApiIndex.txt beside it"))?;
    Ok((calls.to_path_buf(), index, types))
}

/// Adds a report as one sample, or one per process with calls.
fn push_report(
    ds: &mut Dataset,
    report: &Report,
    id: String,
    label: Option<String>,
    per_process: bool,
) {
    if !per_process {
        ds.samples.push(report.to_sample(id, label));
        return;
    }
    for (i, p) in report.processes.iter().enumerate() {
        if p.calls.is_empty() {
            continue;
        }
        ds.samples.push(Sample {
            id: format!("{id}#{}", p.pid),
            label: label.clone(),
            apis: report
                .process_apis(i)
                .into_iter()
                .map(str::to_owned)
                .collect(),
            sha256: report.sha256.clone(),
        });
    }
}

fn read_report_set(
    path: &Path,
    ropts: &ReportOptions,
    labels_from_dirs: bool,
    per_process: bool,
) -> Result<Dataset, ReadError> {
    let mut ds = Dataset::default();
    if !path.is_dir() {
        let report = read_report(path, ropts)?;
        let id = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ds.warnings.extend(
            report
                .warnings
                .iter()
                .map(|w| format!("{}: {w}", path.display())),
        );
        push_report(&mut ds, &report, id, None, per_process);
        return Ok(ds);
    }
    let mut files = Vec::new();
    collect_reports(path, 0, &mut files, &mut ds.errors);
    files.sort();
    for file in files {
        let rel = file.strip_prefix(path).unwrap_or(&file);
        let label = if labels_from_dirs && rel.components().count() > 1 {
            rel.components()
                .next()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
        } else {
            None
        };
        match read_report(&file, ropts) {
            Ok(report) => {
                ds.warnings.extend(
                    report
                        .warnings
                        .iter()
                        .map(|w| format!("{}: {w}", file.display())),
                );
                let id = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                push_report(&mut ds, &report, id, label, per_process);
            }
            Err(e) => ds.errors.push((file, e)),
        }
    }
    Ok(ds)
}

/// Folder depth beyond which report search stops (symlinked folders are never followed).
const MAX_DEPTH: usize = 32;

fn collect_reports(
    dir: &Path,
    depth: usize,
    out: &mut Vec<PathBuf>,
    errors: &mut Vec<(PathBuf, ReadError)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push((dir.to_path_buf(), ReadError::io(dir, e)));
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                errors.push((dir.to_path_buf(), ReadError::io(dir, e)));
                continue;
            }
        };
        let p = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            if depth < MAX_DEPTH {
                collect_reports(&p, depth + 1, out, errors);
            }
        } else if (ft.is_file() || (ft.is_symlink() && p.is_file())) && is_report_name(&p) {
            out.push(p);
        }
    }
}

fn is_report_name(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".json") || name.ends_with(".json.gz")
}
