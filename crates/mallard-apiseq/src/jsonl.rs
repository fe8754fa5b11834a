//! mallard's own interchange format: one JSON object per line,
//! `{"id": "...", "label": "...", "apis": ["NtCreateFile", ...], "sha256": "..."}`.

use crate::input::{self, next_line};
use crate::malbehavd::binary_label;
use crate::{ReadError, Sample};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    label: Option<LabelValue>,
    apis: Vec<String>,
    #[serde(default)]
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum LabelValue {
    Text(String),
    Int(u64),
}

#[derive(Serialize)]
struct RecordOut<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    apis: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
}

/// Reads JSONL samples. `id` and `apis` are required; `label` and `sha256` are optional and
/// other keys are ignored. A numeric label 0 / 1 becomes "benign" / "malicious", the
/// MalBehavD convention, so converted binary datasets read the same; any other integer
/// becomes its decimal text (a class index). Blank lines are skipped.
pub fn read_jsonl(path: &Path) -> Result<Vec<Sample>, ReadError> {
    let mut input = input::open(path, None)?;
    let mut buf = Vec::new();
    let mut line_no = 0;
    let mut out = Vec::new();
    while next_line(&mut input, path, &mut buf)? {
        line_no += 1;
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: Record = serde_json::from_slice(&buf).map_err(|e| {
            let full = e.to_string();
            let msg = full
                .rsplit_once(" at line ")
                .map_or(full.as_str(), |(m, _)| m);
            ReadError::line(
                path,
                line_no,
                format!("bad sample at column {}: {msg}", e.column()),
            )
        })?;
        let label = match rec.label {
            None => None,
            Some(LabelValue::Text(s)) => Some(s),
            Some(LabelValue::Int(n)) => {
                let text = n.to_string();
                Some(binary_label(&text).map_or(text, str::to_owned))
            }
        };
        out.push(Sample {
            id: rec.id,
            label,
            apis: rec.apis,
            sha256: rec.sha256,
        });
    }
    Ok(out)
}

/// Writes samples as JSONL that [`read_jsonl`] reads back unchanged.
pub fn write_jsonl<W: Write>(mut out: W, samples: &[Sample]) -> std::io::Result<()> {
    for s in samples {
        let rec = RecordOut {
            id: &s.id,
            label: s.label.as_deref(),
            apis: &s.apis,
            sha256: s.sha256.as_deref(),
        };
        serde_json::to_writer(&mut out, &rec)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
