//! EMBER jsonl tables: raw feature objects or vectors, EMBER's labels, groups for splits.

use crate::{invalid, numeric_schema, DatasetError, Result};
use mallard_tables::{Labels, Table};

/// Opens a regular file of at most `max_bytes` on disk, decompressing it when it starts
/// with gzip's magic bytes (lines stay capped by the caller).
fn open_maybe_gz(path: &std::path::Path, max_bytes: u64) -> Result<Box<dyn std::io::BufRead>> {
    use std::io::{BufRead, BufReader};
    let (f, _) = mallard_io::open_capped(path, max_bytes)?;
    let mut r = BufReader::new(f);
    let gz = r
        .fill_buf()
        .map_err(|e| io_error(path, e))?
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

pub(crate) fn table(
    path: &std::path::Path,
    group_fields: &[String],
    label_field: Option<&str>,
    max_bytes: u64,
) -> Result<Table> {
    use mallard_pefeatures::FeatureSet;
    use std::io::{BufRead, Read};
    // EMBER's raw objects and ember-v2 vectors; `mallard features` vectors of another set
    // name it in `set`. The first row decides; every row must agree.
    let mut set: Option<FeatureSet> = None;
    let mut names = Vec::new();
    let mut reader = open_maybe_gz(path, max_bytes)?;
    let (mut values, mut labels, mut ids, mut groups) =
        (Vec::new(), Labels::new(), Vec::new(), Vec::new());
    let mut buf = Vec::new();
    for i in 0.. {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_EMBER_LINE + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| io_error(path, e))?;
        if n == 0 {
            break;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        if n as u64 > MAX_EMBER_LINE {
            return Err(invalid(format!(
                "{}: line longer than {} MiB",
                at(),
                MAX_EMBER_LINE >> 20
            )));
        }
        let line = String::from_utf8_lossy(&buf);
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| invalid(format!("{}: {e}", at())))?;
        // EMBER's 0/1 label, or a named field's text (a family: `avclass`); rows without
        // one are unlabelled and skipped, as EMBER's -1.
        let named;
        let label = match label_field {
            Some(f) => {
                named = v
                    .get(f)
                    .and_then(|l| l.as_str())
                    .unwrap_or("")
                    .trim()
                    .to_string();
                if named.is_empty() {
                    continue;
                }
                named.as_str()
            }
            None => match v.get("label").and_then(|l| l.as_i64()) {
                Some(1) => "malicious",
                Some(0) => "benign",
                _ => continue,
            },
        };
        let row_set = match v.get("set").and_then(|x| x.as_str()) {
            Some(name) => name
                .parse::<FeatureSet>()
                .map_err(|e| invalid(format!("{}: {e}", at())))?,
            None => FeatureSet::EmberV2,
        };
        match set {
            None => {
                set = Some(row_set);
                names = mallard_pefeatures::names(row_set);
            }
            Some(s) if s != row_set => {
                return Err(invalid(format!(
                    "{}: a {row_set} row in a file of {s} rows",
                    at()
                )))
            }
            Some(_) => {}
        }
        let vector: Vec<f32> = match v.get("vector").and_then(|x| x.as_array()) {
            Some(a) => a
                .iter()
                .map(|x| x.as_f64().map(|f| f as f32).unwrap_or(f32::NAN))
                .collect(),
            None if row_set.has_raw() => mallard_pefeatures::ember_vectorize_as(row_set, &v)
                .map_err(|e| invalid(format!("{}: {e}", at())))?,
            None => {
                return Err(invalid(format!(
                    "{}: a {row_set} row without a vector",
                    at()
                )))
            }
        };
        if vector.len() != names.len() {
            return Err(invalid(format!(
                "{}: {} values, {} has {}",
                at(),
                vector.len(),
                row_set,
                names.len()
            )));
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
        feature_set: set.map(|s| s.name().to_string()),
        schema: numeric_schema(&names),
        columns: names,
        values,
        labels,
        ids: Some(ids),
        groups: Some(groups),
    })
}

fn io_error(path: &std::path::Path, e: std::io::Error) -> DatasetError {
    DatasetError::Io(mallard_io::IoError::io(path, e))
}
