//! MalBehavD-V1 CSV: `sha256,labels,api0,api1,...`, one header line, CRLF, no quoting,
//! rows of varying width padded with trailing empty cells.

use crate::input::{self, next_line};
use crate::{ReadError, Sample};
use std::path::Path;

/// Label text for MalBehavD's `0` / `1`. The CSV does not say which is which; we follow
/// the source paper (Maniriho et al. 2023): 1 = malware, 0 = benign.
pub(crate) fn binary_label(v: &str) -> Option<&'static str> {
    match v {
        "0" => Some("benign"),
        "1" => Some("malicious"),
        _ => None,
    }
}

/// Reads a MalBehavD-V1 CSV (the original file or the `train.csv` / `test.csv` split).
///
/// `id` and `sha256` are the row's hash (the dataset repeats some hashes, so ids are not
/// unique). Empty cells may only trail the sequence; an empty cell followed by an API name
/// means the columns are misaligned and is an error, as is a label other than 0 or 1.
pub fn read_malbehavd(path: &Path) -> Result<Vec<Sample>, ReadError> {
    let mut input = input::open(path, None)?;
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    let mut samples = Vec::new();
    let mut header_seen = false;
    while next_line(&mut input, path, &mut buf)? {
        line_no += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|_| ReadError::line(path, line_no, "not valid UTF-8"))?;
        let line = line.strip_prefix('\u{feff}').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let mut cells = line.split(',');
        if !header_seen {
            let (a, b) = (
                cells.next().unwrap_or("").trim(),
                cells.next().unwrap_or("").trim(),
            );
            if !a.eq_ignore_ascii_case("sha256") || !b.eq_ignore_ascii_case("labels") {
                return Err(ReadError::line(
                    path,
                    line_no,
                    "expected the MalBehavD header 'sha256,labels,0,1,...'",
                ));
            }
            header_seen = true;
            continue;
        }
        let hash = cells.next().unwrap_or("").trim();
        if hash.is_empty() {
            return Err(ReadError::line(path, line_no, "empty sha256 cell"));
        }
        let label_cell = cells
            .next()
            .map(str::trim)
            .ok_or_else(|| ReadError::line(path, line_no, "row has no labels cell"))?;
        let label = binary_label(label_cell).ok_or_else(|| {
            ReadError::line(
                path,
                line_no,
                format!("label {label_cell:?} is neither 0 nor 1"),
            )
        })?;
        let mut apis = Vec::new();
        let mut gap_at = None;
        for (col, cell) in cells.enumerate() {
            let cell = cell.trim();
            if cell.is_empty() {
                gap_at.get_or_insert(col + 3);
            } else if let Some(gap) = gap_at {
                return Err(ReadError::line(
                    path,
                    line_no,
                    format!("empty cell in column {gap} inside the API sequence"),
                ));
            } else {
                apis.push(cell.to_owned());
            }
        }
        let sha256 = (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hash.to_ascii_lowercase());
        samples.push(Sample {
            id: hash.to_owned(),
            label: Some(label.to_owned()),
            apis,
            sha256,
        });
    }
    if !header_seen {
        return Err(ReadError::invalid(path, "empty file: no MalBehavD header"));
    }
    Ok(samples)
}
