//! mallard-pefeatures: static PE feature sets selected by name.
//!
//! * `ember-v2`: EMBER feature version 2 (raw JSON object + 2,381 floats), matching
//!   elastic/ember `features.py` with lief 0.12.3 (see README.md for the measured parity).
//! * `ember-v3`: EMBER2024 feature version 3 (raw JSON object + 2,568 floats), matching
//!   FutureComputing4AI/EMBER2024 `features.py` (thrember) with pefile 2024.8.26 ([`ember3`]).
//! * `pe-header`: ClaMP's 55 raw header columns, in the column order of `ClaMP_Raw-5184.csv`.
//! * `saxe-1024`: Saxe & Berlin (2015) style 4 x 256 features.
//! * `image`: texture descriptors of the file's byte plot (`mallard-image`).
//! * `opcodes`: mnemonic shares and hashed 2-/3-grams of the x86/x64 code reached from the
//!   entry points (`mallard-disasm`).
//! * `dotnet`: a .NET assembly's metadata: table sizes, hashed TypeRefs, MemberRefs, P/Invoke
//!   imports, assembly references and user strings ([`dotnet`]).
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
pub mod dotnet;
pub mod ember;
pub mod ember3;
pub mod hardened;
pub mod hasher;
pub mod image;
pub mod opcodes;
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
    #[error("unknown feature set '{0}' (known: ember-v2, ember-v2-hardened, ember-v3, pe-header, saxe-1024, opcodes, image, dotnet)")]
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
    /// Refused or failed read (the message names the path, and the real size when too large).
    #[error("{0}")]
    Read(#[from] mallard_io::IoError),
}

/// The feature sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FeatureSet {
    EmberV2,
    /// EMBER v2's columns, of the file without the regions evasion edits write to
    /// ([`hardened`]).
    EmberV2Hardened,
    /// EMBER2024's feature version 3 ([`ember3`]).
    EmberV3,
    PeHeader,
    Saxe1024,
    Opcodes,
    Image,
    /// A .NET assembly's metadata ([`dotnet`]).
    Dotnet,
}

impl FeatureSet {
    pub const ALL: [FeatureSet; 8] = [
        FeatureSet::EmberV2,
        FeatureSet::EmberV2Hardened,
        FeatureSet::EmberV3,
        FeatureSet::PeHeader,
        FeatureSet::Saxe1024,
        FeatureSet::Opcodes,
        FeatureSet::Image,
        FeatureSet::Dotnet,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FeatureSet::EmberV2 => "ember-v2",
            FeatureSet::EmberV2Hardened => "ember-v2-hardened",
            FeatureSet::EmberV3 => "ember-v3",
            FeatureSet::PeHeader => "pe-header",
            FeatureSet::Saxe1024 => "saxe-1024",
            FeatureSet::Opcodes => "opcodes",
            FeatureSet::Image => "image",
            FeatureSet::Dotnet => "dotnet",
        }
    }

    pub fn dim(self) -> usize {
        match self {
            FeatureSet::EmberV2 | FeatureSet::EmberV2Hardened => ember::DIM,
            FeatureSet::EmberV3 => ember3::DIM,
            FeatureSet::PeHeader => clamp::DIM,
            FeatureSet::Saxe1024 => saxe::DIM,
            FeatureSet::Opcodes => opcodes::dim(),
            FeatureSet::Image => image::DIM,
            FeatureSet::Dotnet => dotnet::DIM,
        }
    }
}

impl FeatureSet {
    /// Whether the set has EMBER v2's columns (and rows come from EMBER raw objects).
    pub fn is_ember(self) -> bool {
        matches!(self, FeatureSet::EmberV2 | FeatureSet::EmberV2Hardened)
    }

    /// Whether the set has a raw JSON object per file (`features --raw`) that its vector is
    /// computed from: the EMBER sets.
    pub fn has_raw(self) -> bool {
        matches!(
            self,
            FeatureSet::EmberV2 | FeatureSet::EmberV2Hardened | FeatureSet::EmberV3
        )
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
            "ember-v2-hardened" | "ember-hardened" => Ok(FeatureSet::EmberV2Hardened),
            "ember-v3" | "emberv3" | "ember2024" | "thrember" => Ok(FeatureSet::EmberV3),
            "pe-header" | "clamp" => Ok(FeatureSet::PeHeader),
            "saxe-1024" | "saxe" => Ok(FeatureSet::Saxe1024),
            "opcodes" | "opcode" => Ok(FeatureSet::Opcodes),
            "image" | "byteplot" => Ok(FeatureSet::Image),
            "dotnet" | ".net" | "clr" => Ok(FeatureSet::Dotnet),
            _ => Err(FeatureError::UnknownSet(s.to_string())),
        }
    }
}

/// Column names of a feature set, in vector order.
pub fn names(set: FeatureSet) -> Vec<String> {
    match set {
        FeatureSet::EmberV2 | FeatureSet::EmberV2Hardened => ember::names(),
        FeatureSet::EmberV3 => ember3::names(),
        FeatureSet::PeHeader => clamp::names(),
        FeatureSet::Saxe1024 => saxe::names(),
        FeatureSet::Opcodes => opcodes::names(),
        FeatureSet::Image => image::names(),
        FeatureSet::Dotnet => dotnet::names(),
    }
}

/// The column that says whether a file lies in the set's domain (non-zero: it does), for
/// sets that describe only some files: `dotnet_metadata_read` of the .NET set. A model on
/// such a set has nothing to say about other files (they are all-zero rows to it), so a
/// stack lets it speak only for its domain ([`dotnet`]).
pub fn domain_column(set: FeatureSet) -> Option<&'static str> {
    match set {
        FeatureSet::Dotnet => Some("dotnet_metadata_read"),
        _ => None,
    }
}

/// A column of `set` in words for the file `bytes` (the names behind a hashed .NET column),
/// or `None` where the column name says it already. EMBER's columns are put in words from
/// their raw object instead ([`ember_describe`]).
pub fn describe(set: FeatureSet, bytes: &[u8], column: &str) -> Option<String> {
    describe_many(set, bytes, &[column]).pop().flatten()
}

/// [`describe`] for several columns of one file, reading the file once.
pub fn describe_many(set: FeatureSet, bytes: &[u8], columns: &[&str]) -> Vec<Option<String>> {
    match set {
        FeatureSet::Dotnet => dotnet::describe_many(bytes, columns),
        _ => vec![None; columns.len()],
    }
}

/// Feature vector of `bytes` for `set`.
pub fn extract(set: FeatureSet, bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    check_size(bytes)?;
    match set {
        FeatureSet::EmberV2 => ember::extract(bytes),
        FeatureSet::EmberV2Hardened => ember::raw_and_vector_hardened(bytes).map(|(_, v)| v),
        FeatureSet::EmberV3 => ember3::extract(bytes),
        FeatureSet::PeHeader => clamp::extract(bytes),
        FeatureSet::Saxe1024 => saxe::extract(bytes),
        FeatureSet::Opcodes => opcodes::extract(bytes),
        FeatureSet::Image => Ok(image::texture(bytes)),
        FeatureSet::Dotnet => dotnet::extract(bytes),
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

/// [`ember_raw_and_vector`] for either EMBER set: the hardened one's raw object is that of
/// the normalized file, masked ([`hardened`]).
pub fn ember_raw_and_vector_of(
    set: FeatureSet,
    bytes: &[u8],
) -> Result<(serde_json::Value, Vec<f32>), FeatureError> {
    check_size(bytes)?;
    match set {
        FeatureSet::EmberV2Hardened => ember::raw_and_vector_hardened(bytes),
        _ => ember::raw_and_vector(bytes),
    }
}

/// EMBER's raw object of `bytes` as `set` sees it (the hardened set: normalized and masked).
pub fn ember_raw_of(set: FeatureSet, bytes: &[u8]) -> Result<serde_json::Value, FeatureError> {
    check_size(bytes)?;
    match set {
        FeatureSet::EmberV2Hardened => ember::raw_features_hardened(bytes),
        FeatureSet::EmberV3 => ember3::raw_features(bytes),
        _ => ember::raw_features(bytes),
    }
}

/// The vector of an EMBER raw object for `set` (the hardened set masks the object first, so
/// rows of whole files from an EMBER jsonl file can train a hardened model).
pub fn ember_vectorize_as(
    set: FeatureSet,
    raw: &serde_json::Value,
) -> Result<Vec<f32>, FeatureError> {
    match set {
        FeatureSet::EmberV2Hardened => {
            let mut r = raw.clone();
            hardened::mask_raw(&mut r);
            ember::vectorize(&r)
        }
        FeatureSet::EmberV3 => ember3::vectorize(raw),
        _ => ember::vectorize(raw),
    }
}

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

/// Reads a regular file of at most `max_size` bytes through `mallard_io`: the size on disk
/// is checked before reading (a huge sparse file is refused at once, with its real size),
/// and FIFOs or devices are refused instead of hanging.
pub fn read_capped(path: &Path, max_size: usize) -> Result<Vec<u8>, FeatureError> {
    Ok(mallard_io::read_capped(path, max_size as u64)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("pefeatures-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sparse_mz_file_is_refused_at_once_with_its_real_size() {
        use std::io::Write;
        let d = scratch("sparse");
        let f = d.join("big.exe");
        let mut file = std::fs::File::create(&f).unwrap();
        file.write_all(b"MZ").unwrap();
        file.set_len(1 << 30).unwrap();
        let t = std::time::Instant::now();
        let e = extract_file(FeatureSet::Saxe1024, &f, 256 << 20)
            .unwrap_err()
            .to_string();
        assert!(t.elapsed().as_millis() < 500, "took {:?}", t.elapsed());
        assert!(
            e.contains("1073741824 bytes") && e.contains("big.exe"),
            "{e}"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn fifo_is_refused_without_hanging() {
        let d = scratch("fifo");
        let f = d.join("x.exe");
        let ok = std::process::Command::new("mkfifo").arg(&f).status();
        assert!(
            ok.map(|s| s.success()).unwrap_or(false),
            "mkfifo unavailable"
        );
        let e = read_capped(&f, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("FIFO") && e.contains("x.exe"), "{e}");
    }
}
