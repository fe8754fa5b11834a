//! Opening inputs: gzip is detected by its magic bytes, never by the file name, and an
//! optional byte cap applies to the decompressed stream (so a gzip bomb stops early).

use crate::guard::Guard;
use crate::ReadError;
use flate2::bufread::MultiGzDecoder;
use std::cell::Cell;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

const BUF: usize = 256 * 1024;

/// A buffered, decompressed view of a file, plus a flag raised when the byte cap was hit.
pub(crate) struct Input {
    pub reader: Box<dyn BufRead>,
    pub over_limit: Rc<Cell<bool>>,
    pub limit: Option<u64>,
    /// Object keys the JSON guard replaced as over-long (always 0 without a guard).
    pub long_keys: Rc<Cell<u64>>,
}

impl Input {
    /// Turns an I/O error into [`ReadError::TooLarge`] when it was caused by the byte cap.
    pub fn error(&self, path: &Path, e: io::Error) -> ReadError {
        match self.limit {
            Some(limit) if self.over_limit.get() => ReadError::TooLarge {
                path: path.to_path_buf(),
                limit,
            },
            _ => ReadError::io(path, e),
        }
    }
}

/// Opens a regular file (never a FIFO or device, which can hang) for line-oriented reading.
pub(crate) fn open(path: &Path, max_bytes: Option<u64>) -> Result<Input, ReadError> {
    let (file, _) = mallard_io::open_regular(path)?;
    from_reader(Box::new(file), path, max_bytes, None)
}

/// Opens a JSON report: a regular file of at most `max_file` bytes on disk, at most
/// `max_bytes` after decompression, strings longer than `max_string` replaced.
pub(crate) fn open_json(
    path: &Path,
    max_file: u64,
    max_bytes: u64,
    max_string: usize,
) -> Result<Input, ReadError> {
    let (file, _) = mallard_io::open_capped(path, max_file)?;
    // The size may grow after the check; never read more than the cap.
    let file: Box<dyn Read> = Box::new(file.take(max_file));
    from_reader(file, path, Some(max_bytes), Some(max_string))
}

/// Wraps any byte source: buffers it, inflates gzip, applies the byte cap and, for JSON,
/// the string guard (see [`crate::guard`]).
pub(crate) fn from_reader(
    source: Box<dyn Read>,
    path: &Path,
    max_bytes: Option<u64>,
    max_string: Option<usize>,
) -> Result<Input, ReadError> {
    let mut raw = BufReader::with_capacity(BUF, source);
    let head = raw.fill_buf().map_err(|e| ReadError::io(path, e))?;
    let gz = head.starts_with(&[0x1f, 0x8b]);
    let over_limit = Rc::new(Cell::new(false));
    let reader: Box<dyn BufRead> = match (gz, max_bytes) {
        (false, None) => Box::new(raw),
        (true, None) => Box::new(BufReader::with_capacity(BUF, MultiGzDecoder::new(raw))),
        (gz, Some(limit)) => {
            let inner: Box<dyn Read> = if gz {
                Box::new(MultiGzDecoder::new(raw))
            } else {
                Box::new(raw)
            };
            Box::new(BufReader::with_capacity(
                BUF,
                Capped {
                    inner,
                    left: limit,
                    hit: over_limit.clone(),
                },
            ))
        }
    };
    let long_keys = Rc::new(Cell::new(0));
    let reader: Box<dyn BufRead> = match max_string {
        None => reader,
        Some(cap) => {
            let g = Guard::new(reader, cap);
            let counter = g.long_keys.clone();
            return Ok(Input {
                reader: Box::new(BufReader::with_capacity(BUF, g)),
                over_limit,
                limit: max_bytes,
                long_keys: counter,
            });
        }
    };
    Ok(Input {
        reader,
        over_limit,
        limit: max_bytes,
        long_keys,
    })
}

/// Fails with an I/O error once more than `left` bytes have been read.
struct Capped {
    inner: Box<dyn Read>,
    left: u64,
    hit: Rc<Cell<bool>>,
}

impl Read for Capped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.hit.set(true);
            return Err(io::Error::other("input exceeds max_bytes"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads one line (without `\n` / `\r\n`) into `buf`; false at end of input.
pub(crate) fn next_line(
    input: &mut Input,
    path: &Path,
    buf: &mut Vec<u8>,
) -> Result<bool, ReadError> {
    buf.clear();
    let n = match input.reader.read_until(b'\n', buf) {
        Ok(n) => n,
        Err(e) => return Err(input.error(path, e)),
    };
    if n == 0 {
        return Ok(false);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(true)
}
