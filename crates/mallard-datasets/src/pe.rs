//! Tables from folders of PE files labelled by their first sub-folder.

use crate::{invalid, numeric_schema, ReadOptions, Result};
use mallard_tables::{Labels, Table};
use std::collections::HashMap;
use std::path::PathBuf;

pub(crate) fn table(
    dir: &std::path::Path,
    read: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Table> {
    use rayon::prelude::*;
    let set: mallard_pefeatures::FeatureSet = read
        .feature_set
        .as_deref()
        .unwrap_or("ember-v2")
        .parse()
        .map_err(|e| invalid(format!("{e}")))?;
    let names = mallard_pefeatures::names(set);
    let files = labelled_files(dir, read, warnings)?;
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
    let named = read_groups(read)?;
    let (mut values, mut labels, mut ids, mut groups) =
        (Vec::new(), Labels::new(), Vec::new(), Vec::new());
    for ((id, label, v), (f, _)) in rows.into_iter().zip(&files) {
        match v {
            Ok(v) => {
                values.extend(v);
                labels.push(&label);
                ids.push(id);
                groups.push(group_of(&named, f).unwrap_or_default());
            }
            Err(e) => warnings.push(format!("skipped {e}")),
        }
    }
    Ok(Table {
        feature_set: Some(set.name().to_string()),
        schema: numeric_schema(&names),
        columns: names,
        values,
        labels,
        ids: Some(ids),
        groups: (!named.is_empty()).then_some(groups),
    })
}

/// Labelled files of a `pe:` folder, for models that read raw bytes.
#[derive(Clone, Debug, Default)]
pub struct LabelledFiles {
    pub paths: Vec<PathBuf>,
    pub labels: Vec<String>,
    /// Named groups from `ReadOptions::groups_file` (`None`: not listed).
    pub groups: Vec<Option<String>>,
}

/// The PE files below `dir` with their labels (first sub-folder) and named groups, sorted.
pub fn labelled_pe_files(
    dir: &std::path::Path,
    read: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<LabelledFiles> {
    let named = read_groups(read)?;
    let mut out = LabelledFiles::default();
    for (f, label) in labelled_files(dir, read, warnings)? {
        out.groups.push(group_of(&named, &f));
        out.paths.push(f);
        out.labels.push(label);
    }
    Ok(out)
}

/// `NAME<TAB>GROUP` lines (a first line `name<TAB>group` or without a tab, blank lines and
/// `#` comments are skipped); the file is capped like a table.
fn read_groups(read: &ReadOptions) -> Result<HashMap<String, String>> {
    match &read.groups_file {
        Some(path) => read_groups_file(path, read.max_table_bytes),
        None => Ok(HashMap::new()),
    }
}

/// A `NAME<TAB>GROUP` file (`--groups`) as a map, refused above `max_bytes`.
pub fn read_groups_file(path: &std::path::Path, max_bytes: u64) -> Result<HashMap<String, String>> {
    let bytes = mallard_io::read_capped(path, max_bytes).map_err(|e| invalid(e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| invalid(format!("{}: not UTF-8 text", path.display())))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split_once('\t') {
            Some(("name", "group")) if n == 0 => {}
            Some((name, group)) if !name.is_empty() && !group.is_empty() => {
                out.insert(name.to_string(), group.to_string());
            }
            _ if n == 0 => {}
            _ => {
                return Err(invalid(format!(
                    "{}:{}: expected NAME<TAB>GROUP",
                    path.display(),
                    n + 1
                )))
            }
        }
    }
    Ok(out)
}

/// A file's group: by its name, else by its name up to the first dot.
fn group_of(named: &HashMap<String, String>, f: &std::path::Path) -> Option<String> {
    let name = f.file_name()?.to_string_lossy();
    named
        .get(name.as_ref())
        .or_else(|| named.get(name.split('.').next()?))
        .cloned()
}

/// The files below `dir` that start like PE files, with their label (first sub-folder),
/// sorted; files directly in `dir` have none and are left out.
fn labelled_files(
    dir: &std::path::Path,
    read: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<(PathBuf, String)>> {
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
        return Err(invalid(format!(
            "{}: not a folder (a pe dataset is a folder of label folders)",
            dir.display()
        )));
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
        warnings.push(format!("skipped {e}"));
    }
    for e in head_errors.into_inner() {
        warnings.push(format!("skipped {e}"));
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
    Ok(files)
}

/// Opcode sequences of the PE files below `dir` (labels from the first sub-folder): the
/// mnemonics of the x86/x64 code reached from each file's entry points, in address order,
/// at most `read.max_calls` (default: the walk's cap). Files of other machines and files
/// that fail are skipped with a warning.
pub(crate) fn opcode_samples(
    dir: &std::path::Path,
    read: &ReadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<mallard_apiseq::Sample>> {
    use rayon::prelude::*;
    let files = labelled_files(dir, read, warnings)?;
    let mut caps = mallard_pefeatures::opcodes::Caps::default();
    if let Some(n) = read.max_calls {
        caps.max_instructions = n;
    }
    let rows: Vec<Result<mallard_apiseq::Sample, String>> = files
        .par_iter()
        .map(|(f, label)| {
            let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", f.display());
            let bytes =
                mallard_pefeatures::read_capped(f, mallard_io::Caps::DEFAULT_MAX_PE_BYTES as usize)
                    .map_err(|e| e.to_string())?;
            let seq = mallard_pefeatures::opcodes::sequence(&bytes, &caps).map_err(|e| fail(&e))?;
            Ok(mallard_apiseq::Sample {
                id: f.display().to_string(),
                label: Some(label.clone()),
                apis: seq.into_iter().map(String::from).collect(),
                sha256: None,
            })
        })
        .collect();
    let mut samples = Vec::with_capacity(rows.len());
    for r in rows {
        match r {
            Ok(s) => samples.push(s),
            Err(e) => warnings.push(format!("skipped {e}")),
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod groups_tests {
    use super::*;

    #[test]
    fn groups_file_names_files_by_name_or_stem_and_refuses_bad_lines() {
        let d = std::env::temp_dir().join(format!("mallard-groups-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("groups.tsv");
        std::fs::write(
            &f,
            "name\tgroup\n# comment\n\nabc\tfamily:x\nputty.exe\tproject:putty\r\n",
        )
        .unwrap();
        let read = ReadOptions {
            groups_file: Some(f.clone()),
            ..ReadOptions::default()
        };
        let g = read_groups(&read).unwrap();
        assert_eq!(g.len(), 2);
        let of = |n: &str| group_of(&g, std::path::Path::new(n));
        assert_eq!(of("/m/abc.bin").as_deref(), Some("family:x"));
        assert_eq!(of("/b/putty.exe").as_deref(), Some("project:putty"));
        assert_eq!(of("/b/other.exe"), None);
        std::fs::write(&f, "name\tgroup\nabc family:x\n").unwrap();
        let e = read_groups(&read).unwrap_err().to_string();
        assert!(e.contains("groups.tsv:2"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
