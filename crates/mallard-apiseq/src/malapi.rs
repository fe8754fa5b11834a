//! Mal-API-2019 integer-coded subset: `<prefix>_calls.txt[.gz]` (one sample per line,
//! comma-separated API ids), `ApiIndex.txt` (`name=id`) and `<prefix>_types.txt` (one
//! family per line, aligned with the calls file).

use crate::input::{self, next_line, Input};
use crate::{ReadError, Sample};
use std::path::{Path, PathBuf};

/// Ids above this are refused: the real index stops at 341, and a hostile index must not
/// make us allocate a huge table.
const MAX_API_ID: u32 = 1_000_000;

/// Reads the whole subset into memory. Traces are long (up to 1.5 M calls, ~56 bytes per
/// call as `String`s), so pass `max_calls` (keep the first N calls of each sample) or use
/// [`MalApiReader`] to stream one sample at a time.
pub fn read_malapi(
    calls: &Path,
    index: &Path,
    types: &Path,
    max_calls: Option<usize>,
) -> Result<Vec<Sample>, ReadError> {
    MalApiReader::open(calls, index, types, max_calls)?.collect()
}

/// [`read_malapi`] on a folder holding exactly one `*_calls.txt[.gz]`, its
/// `*_types.txt[.gz]` with the same prefix, and `ApiIndex.txt`.
pub fn read_malapi_dir(dir: &Path, max_calls: Option<usize>) -> Result<Vec<Sample>, ReadError> {
    let (calls, index, types) = find_malapi_files(dir)?;
    read_malapi(&calls, &index, &types, max_calls)
}

/// Locates (calls, index, types) in `dir`.
pub fn find_malapi_files(dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf), ReadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ReadError::io(dir, e))?;
    let mut calls = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReadError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(prefix) = name
            .strip_suffix("_calls.txt")
            .or_else(|| name.strip_suffix("_calls.txt.gz"))
        {
            calls.push((prefix.to_owned(), entry.path()));
        }
    }
    calls.sort();
    let (prefix, calls_path) = match calls.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(ReadError::invalid(
                dir,
                "no *_calls.txt or *_calls.txt.gz file (Mal-API-2019 layout)",
            ))
        }
        many => {
            let names: Vec<String> = many.iter().map(|(p, _)| format!("{p}_calls")).collect();
            return Err(ReadError::invalid(
                dir,
                format!(
                    "several calls files ({}); pass one explicitly",
                    names.join(", ")
                ),
            ));
        }
    };
    let siblings = |name: &str| -> Option<PathBuf> {
        [name.to_owned(), format!("{name}.gz")]
            .into_iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file())
    };
    let types = siblings(&format!("{prefix}_types.txt")).ok_or_else(|| {
        ReadError::invalid(dir, format!("no {prefix}_types.txt next to {prefix}_calls"))
    })?;
    let index = siblings("ApiIndex.txt")
        .ok_or_else(|| ReadError::invalid(dir, "no ApiIndex.txt (id -> API name map)"))?;
    Ok((calls_path, index, types))
}

/// Reads `ApiIndex.txt`: `name=id` per line, blank lines allowed. Slot `id` holds the name.
pub fn read_api_index(path: &Path) -> Result<Vec<Option<String>>, ReadError> {
    let mut input = input::open(path, Some(64 << 20))?;
    let mut buf = Vec::new();
    let mut table: Vec<Option<String>> = Vec::new();
    let mut line_no = 0;
    while next_line(&mut input, path, &mut buf)? {
        line_no += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|_| ReadError::line(path, line_no, "not valid UTF-8"))?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (name, id) = line.rsplit_once('=').ok_or_else(|| {
            ReadError::line(path, line_no, format!("expected name=id, found {line:?}"))
        })?;
        let name = name.trim();
        let id: u32 = id
            .trim()
            .parse()
            .ok()
            .filter(|&id| id <= MAX_API_ID)
            .ok_or_else(|| {
                ReadError::line(
                    path,
                    line_no,
                    format!("id {:?} is not an integer in 0..={MAX_API_ID}", id.trim()),
                )
            })?;
        if name.is_empty() {
            return Err(ReadError::line(path, line_no, "empty API name"));
        }
        let slot = id as usize;
        if table.len() <= slot {
            table.resize(slot + 1, None);
        }
        if let Some(cell) = table.get_mut(slot) {
            if let Some(old) = cell {
                return Err(ReadError::line(
                    path,
                    line_no,
                    format!("id {id} is given twice ({old} and {name})"),
                ));
            }
            *cell = Some(name.to_owned());
        }
    }
    Ok(table)
}

/// Reads a labels file: one label per line; trailing blank lines are ignored.
pub(crate) fn read_label_lines(path: &Path) -> Result<Vec<String>, ReadError> {
    let mut input = input::open(path, Some(1 << 30))?;
    let mut buf = Vec::new();
    let mut labels = Vec::new();
    let mut blank: Option<usize> = None;
    let mut line_no = 0;
    while next_line(&mut input, path, &mut buf)? {
        line_no += 1;
        let line = std::str::from_utf8(&buf)
            .map_err(|_| ReadError::line(path, line_no, "not valid UTF-8"))?;
        let line = line.trim();
        if line.is_empty() {
            blank.get_or_insert(line_no);
            continue;
        }
        if let Some(b) = blank {
            return Err(ReadError::line(
                path,
                b,
                "blank line between labels (lines must align with the calls file)",
            ));
        }
        labels.push(line.to_owned());
    }
    Ok(labels)
}

/// Streams Mal-API samples one line at a time; memory is one sample.
///
/// Sample ids are `<calls file name>:<line>`; labels are the family names of the types
/// file. A bad line yields an error naming it, and iteration stops.
pub struct MalApiReader {
    path: PathBuf,
    file_name: String,
    input: Input,
    names: Vec<Option<String>>,
    labels: std::vec::IntoIter<String>,
    n_labels: usize,
    max_calls: Option<usize>,
    buf: Vec<u8>,
    line_no: usize,
    samples: usize,
    blank: Option<usize>,
    done: bool,
}

impl MalApiReader {
    pub fn open(
        calls: &Path,
        index: &Path,
        types: &Path,
        max_calls: Option<usize>,
    ) -> Result<Self, ReadError> {
        let names = read_api_index(index)?;
        let labels = read_label_lines(types)?;
        let input = input::open(calls, None)?;
        Ok(MalApiReader {
            path: calls.to_path_buf(),
            file_name: calls
                .file_name()
                .map_or_else(|| "calls".into(), |n| n.to_string_lossy().into_owned()),
            input,
            names,
            n_labels: labels.len(),
            labels: labels.into_iter(),
            max_calls,
            buf: Vec::new(),
            line_no: 0,
            samples: 0,
            blank: None,
            done: false,
        })
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, ReadError> {
        loop {
            if !next_line(&mut self.input, &self.path, &mut self.buf)? {
                if self.samples != self.n_labels {
                    return Err(ReadError::invalid(
                        &self.path,
                        format!(
                            "{} samples but the types file has {} labels",
                            self.samples, self.n_labels
                        ),
                    ));
                }
                return Ok(None);
            }
            self.line_no += 1;
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                self.blank.get_or_insert(self.line_no);
                continue;
            }
            if let Some(b) = self.blank {
                return Err(ReadError::line(
                    &self.path,
                    b,
                    "blank line between samples (lines must align with the types file)",
                ));
            }
            break;
        }
        let line = self.line_no;
        let cap = self.max_calls.unwrap_or(usize::MAX);
        let mut apis = Vec::new();
        for (field, raw) in self.buf.split(|&b| b == b',').enumerate() {
            let cell = raw.trim_ascii();
            if cell.is_empty() {
                continue;
            }
            let id = parse_id(cell).ok_or_else(|| {
                ReadError::line(
                    &self.path,
                    line,
                    format!(
                        "field {}: {:?} is not an API id",
                        field + 1,
                        String::from_utf8_lossy(cell)
                    ),
                )
            })?;
            let name = self
                .names
                .get(id as usize)
                .and_then(Option::as_ref)
                .ok_or_else(|| {
                    ReadError::line(
                        &self.path,
                        line,
                        format!("field {}: API id {id} is not in the index", field + 1),
                    )
                })?;
            if apis.len() < cap {
                apis.push(name.clone());
            }
        }
        let label = self.labels.next().ok_or_else(|| {
            ReadError::line(
                &self.path,
                line,
                format!(
                    "more samples than the {} labels of the types file",
                    self.n_labels
                ),
            )
        })?;
        self.samples += 1;
        Ok(Some(Sample {
            id: format!("{}:{line}", self.file_name),
            label: Some(label),
            apis,
            sha256: None,
        }))
    }
}

fn parse_id(cell: &[u8]) -> Option<u32> {
    if cell.is_empty() || cell.len() > 9 {
        return None;
    }
    cell.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

impl Iterator for MalApiReader {
    type Item = Result<Sample, ReadError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
