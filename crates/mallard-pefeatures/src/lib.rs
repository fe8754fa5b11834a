//! mallard-pefeatures: static PE feature sets selected by name.
//!
//! * `ember-v2`: EMBER feature version 2 (raw JSON object + 2,381 floats), matching
//!   elastic/ember `features.py` with lief 0.12.3 (see README.md for the measured parity).
//! * `pe-header`: ClaMP's 55 raw header columns, in the column order of `ClaMP_Raw-5184.csv`.
//! * `saxe-1024`: Saxe & Berlin (2015) style 4 x 256 features.
//!
//! ```no_run
//! use mallard_pefeatures::{extract, names, FeatureSet};
//! let bytes = std::fs::read("some.exe").unwrap();
//! let set: FeatureSet = "ember-v2".parse().unwrap();
//! let v = extract(set, &bytes).unwrap();
//! assert_eq!(v.len(), names(set).len());
//! ```

#![forbid(unsafe_code)]

pub mod bytes;
pub mod clamp;
pub mod ember;
pub mod hasher;
pub mod saxe;

use std::path::Path;

pub use mallard_pe::{Limits, Pe, PeError, DEFAULT_MAX_FILE_SIZE};

/// Errors: one line naming the problem (and the file, where there is one).
#[derive(Debug, thiserror::Error)]
pub enum FeatureError {
    #[error("{0}")]
    Pe(#[from] PeError),
    #[error("{0}")]
    Raw(String),
    #[error("unknown feature set '{0}' (known: ember-v2, pe-header, saxe-1024)")]
    UnknownSet(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: Box<FeatureError>,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The feature sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureSet {
    EmberV2,
    PeHeader,
    Saxe1024,
}

impl FeatureSet {
    pub const ALL: [FeatureSet; 3] = [
        FeatureSet::EmberV2,
        FeatureSet::PeHeader,
        FeatureSet::Saxe1024,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::EmberV2 => "ember-v2",
            FeatureSet::PeHeader => "pe-header",
            FeatureSet::Saxe1024 => "saxe-1024",
        }
    }

    pub fn dim(self) -> usize {
        match self {
            FeatureSet::EmberV2 => ember::DIM,
            FeatureSet::PeHeader => clamp::DIM,
            FeatureSet::Saxe1024 => saxe::DIM,
        }
    }
}

impl std::fmt::Display for FeatureSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FeatureSet {
    type Err = FeatureError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ember-v2" | "ember" | "emberv2" => Ok(FeatureSet::EmberV2),
            "pe-header" | "clamp" => Ok(FeatureSet::PeHeader),
            "saxe-1024" | "saxe" => Ok(FeatureSet::Saxe1024),
            _ => Err(FeatureError::UnknownSet(s.to_string())),
        }
    }
}

/// Column names of a feature set, in vector order.
pub fn names(set: FeatureSet) -> Vec<String> {
    match set {
        FeatureSet::EmberV2 => ember::names(),
        FeatureSet::PeHeader => clamp::names(),
        FeatureSet::Saxe1024 => saxe::names(),
    }
}

/// Feature vector of `bytes` for `set`.
pub fn extract(set: FeatureSet, bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    check_size(bytes)?;
    match set {
        FeatureSet::EmberV2 => ember::extract(bytes),
        FeatureSet::PeHeader => clamp::extract(bytes),
        FeatureSet::Saxe1024 => saxe::extract(bytes),
    }
}

/// Refuses inputs above the extractors' size cap, naming the real size.
fn check_size(bytes: &[u8]) -> Result<(), FeatureError> {
    if bytes.len() > DEFAULT_MAX_FILE_SIZE {
        return Err(PeError::TooLarge {
            size: bytes.len(),
            limit: DEFAULT_MAX_FILE_SIZE,
        }
        .into());
    }
    Ok(())
}

/// EMBER's raw feature object for `bytes`.
pub fn ember_raw(bytes: &[u8]) -> Result<serde_json::Value, FeatureError> {
    check_size(bytes)?;
    ember::raw_features(bytes)
}

/// EMBER's raw object (without the sha256, which the vector does not use) and its vector,
/// extracted once: the raw object lets [`ember_describe`] put the vector's columns in words.
pub fn ember_raw_and_vector(bytes: &[u8]) -> Result<(serde_json::Value, Vec<f32>), FeatureError> {
    check_size(bytes)?;
    ember::raw_and_vector(bytes)
}

pub use ember::explain::describe as ember_describe;

/// Whether `bytes` parse as a PE file (headers and section table). EMBER's extractor scores
/// files that do not, from their bytes and strings alone; a scanner refuses them instead, so a
/// truncated or broken file is reported rather than quietly called benign.
pub fn check_pe(bytes: &[u8]) -> Result<(), FeatureError> {
    mallard_pe::Pe::parse(bytes)
        .map(|_| ())
        .map_err(FeatureError::from)
}

/// EMBER's vector of a raw object (ours, or a line of an EMBER raw jsonl file).
pub fn ember_vectorize(raw: &serde_json::Value) -> Result<Vec<f32>, FeatureError> {
    ember::vectorize(raw)
}

/// Read a file once (refusing files above `max_size` bytes) and extract `set`; errors name
/// the file.
pub fn extract_file(
    set: FeatureSet,
    path: &Path,
    max_size: usize,
) -> Result<Vec<f32>, FeatureError> {
    let bytes = read_capped(path, max_size)?;
    extract(set, &bytes).map_err(|e| FeatureError::File {
        path: path.display().to_string(),
        source: Box::new(e),
    })
}

/// Read at most `max_size` bytes of `path`; larger files are an error.
pub fn read_capped(path: &Path, max_size: usize) -> Result<Vec<u8>, FeatureError> {
    use std::io::Read;
    let io = |source| FeatureError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    f.take(max_size as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() > max_size {
        return Err(FeatureError::File {
            path: path.display().to_string(),
            source: Box::new(
                PeError::TooLarge {
                    size: buf.len(),
                    limit: max_size,
                }
                .into(),
            ),
        });
    }
    Ok(buf)
}
