use std::path::{Path, PathBuf};

/// Why an input could not be read. Every message is one line and starts with the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    #[error("{}: cannot read: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: malformed JSON at line {line}, column {column}: {msg}", .path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    #[error("{}: report has no behavior section (static-only or non-Windows analysis?)", .path.display())]
    NoBehavior { path: PathBuf },
    #[error("{}: no API calls recorded", .path.display())]
    NoCalls { path: PathBuf },
    #[error("{}: more than {limit} bytes after decompression, over the cap (max_report_decompressed for reports)", .path.display())]
    TooLarge { path: PathBuf, limit: u64 },
    /// Refused before reading: not a regular file, or too large on disk.
    #[error(transparent)]
    File(mallard_io::IoError),
    /// A line-oriented file (CSV, JSONL, Mal-API) has a bad line; `line` counts from 1.
    #[error("{}: line {line}: {msg}", .path.display())]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },
    /// The input as a whole does not fit the expected layout.
    #[error("{}: {msg}", .path.display())]
    Invalid { path: PathBuf, msg: String },
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::Json { path, .. }
            | ReadError::NoBehavior { path }
            | ReadError::NoCalls { path }
            | ReadError::TooLarge { path, .. }
            | ReadError::Line { path, .. }
            | ReadError::Invalid { path, .. } => path,
            ReadError::File(e) => match e {
                mallard_io::IoError::NotRegular { path, .. }
                | mallard_io::IoError::TooLarge { path, .. }
                | mallard_io::IoError::Io { path, .. } => path,
            },
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ReadError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn line(path: &Path, line: usize, msg: impl Into<String>) -> Self {
        ReadError::Line {
            path: path.to_path_buf(),
            line,
            msg: msg.into(),
        }
    }

    pub(crate) fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        ReadError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }
}

impl From<mallard_io::IoError> for ReadError {
    fn from(e: mallard_io::IoError) -> Self {
        match e {
            // Plain I/O failures keep their usual variant.
            mallard_io::IoError::Io { path, source } => ReadError::Io { path, source },
            other => ReadError::File(other),
        }
    }
}

/// A dataset format name that [`crate::Format`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dataset format '{0}' (expected one of: malbehavd, malapi, cuckoo, cape, jsonl)")]
pub struct UnknownFormat(pub String);
