//! Features of an Arrow column read in place: the Rust half of `mallard.arrow`.
//!
//! Python hands over the buffers of one binary or string array (validity bitmap, offsets,
//! data) through the buffer protocol; the file bytes (or path strings) are borrowed where
//! they lie, and the values come back as one NumPy float32 array that `mallard.arrow` wraps
//! as a fixed-size-list column without copying. No Arrow library is linked here: the layout
//! of these four array types is small and fixed by the Arrow spec.

use crate::convert::Failure;
use numpy::{IntoPyArray, PyArray1};
use pyo3::buffer::PyUntypedBuffer;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::path::Path;

/// Files above this are refused before reading, as `mallard features` does by default.
const MAX_FILE_BYTES: usize = mallard_io::Caps::DEFAULT_MAX_PE_BYTES as usize;

/// The bytes of a C-contiguous buffer, borrowed in place.
///
/// Arrow arrays are immutable once built and pyarrow never writes their buffers, but it
/// exports them as writable, so "read-only" cannot be asked of the exporter. The contract,
/// stated in `mallard.arrow`'s docs as NumPy's nogil functions state theirs: the caller does
/// not write the array's buffers from another thread while the call runs.
#[allow(unsafe_code)]
fn bytes_in_place<'a>(buf: &'a PyUntypedBuffer, what: &str) -> PyResult<&'a [u8]> {
    if !buf.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{what} buffer is not contiguous"
        )));
    }
    let (ptr, len) = (buf.buf_ptr() as *const u8, buf.len_bytes());
    if len == 0 || ptr.is_null() {
        return Ok(&[]);
    }
    // SAFETY: `buf` holds the exporter's buffer export (PyObject_GetBuffer) until it is dropped,
    // which outlives 'a, so these `len` contiguous bytes stay allocated; u8 has no alignment or
    // validity requirements; no writer runs meanwhile (the contract above).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

fn buffer(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<PyUntypedBuffer> {
    PyUntypedBuffer::get(obj).map_err(|e| PyValueError::new_err(format!("{what} buffer: {e}")))
}

/// Element `i` of an Arrow offsets buffer of `width` bytes (4 or 8), little-endian.
fn offset_at(offsets: &[u8], width: usize, i: usize) -> Option<usize> {
    let b = offsets.get(i * width..(i + 1) * width)?;
    let v = if width == 4 {
        i64::from(i32::from_le_bytes(b.try_into().ok()?))
    } else {
        i64::from_le_bytes(b.try_into().ok()?)
    };
    usize::try_from(v).ok()
}

/// One array's values, checked against the Arrow layout before anything is read: offsets in
/// range and non-decreasing, so a hostile array cannot make a slice panic.
fn values<'a>(
    length: usize,
    offset: usize,
    width: usize,
    offsets: &[u8],
    data: &'a [u8],
    validity: Option<&[u8]>,
) -> PyResult<Vec<Option<&'a [u8]>>> {
    let bad = |why: String| PyValueError::new_err(format!("not a valid Arrow array: {why}"));
    let end = offset
        .checked_add(length)
        .ok_or_else(|| bad("offset + length overflows".into()))?;
    if offsets.len() < (end + 1).saturating_mul(width) {
        return Err(bad(format!(
            "{} offset bytes for {} values",
            offsets.len(),
            length
        )));
    }
    if let Some(v) = validity {
        if v.len() * 8 < end {
            return Err(bad(format!("{} validity bytes for {end} slots", v.len())));
        }
    }
    let mut out = Vec::with_capacity(length);
    let mut prev =
        offset_at(offsets, width, offset).ok_or_else(|| bad("negative offset".into()))?;
    for i in offset..end {
        let next = offset_at(offsets, width, i + 1).ok_or_else(|| bad("negative offset".into()))?;
        if next < prev || next > data.len() {
            return Err(bad(format!(
                "value {} spans {prev}..{next} of {} data bytes",
                i - offset,
                data.len()
            )));
        }
        let valid = validity.is_none_or(|v| v[i / 8] >> (i % 8) & 1 == 1);
        out.push(valid.then(|| &data[prev..next]));
        prev = next;
    }
    Ok(out)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One value's features into `row`: the bytes of a file, or (paths) the file they name.
/// Returns the sha256 of the file's bytes.
fn one(
    set: mallard_pefeatures::FeatureSet,
    value: Option<&[u8]>,
    paths: bool,
    index: usize,
    row: &mut [f32],
) -> Result<String, Failure> {
    let value_err = |m: String| Failure {
        kind: crate::convert::Kind::Value,
        message: m,
    };
    let v = value.ok_or_else(|| value_err(format!("item {index}: null")))?;
    let (bytes, name): (Cow<[u8]>, String) = if paths {
        let p = std::str::from_utf8(v)
            .map_err(|_| value_err(format!("item {index}: path is not UTF-8")))?;
        let b = mallard_pefeatures::read_capped(Path::new(p), MAX_FILE_BYTES)
            .map_err(|e| Failure::of(&e))?;
        (Cow::Owned(b), p.to_string())
    } else {
        (Cow::Borrowed(v), format!("item {index}"))
    };
    let f = mallard_pefeatures::extract(set, &bytes).map_err(|e| Failure::of(&e).named(&name))?;
    if f.len() != row.len() {
        return Err(value_err(format!(
            "{name}: {} values, expected {}",
            f.len(),
            row.len()
        )));
    }
    row.copy_from_slice(&f);
    Ok(hex(&Sha256::digest(&bytes)))
}

/// What `mallard.arrow` gets back: the values (NaN rows where an item failed), each item's
/// sha256 (None where it failed) and the failures as (index, exception class, message).
type Batch<'py> = (
    Bound<'py, PyArray1<f32>>,
    Vec<Option<String>>,
    Vec<(usize, &'static str, String)>,
);

/// Features of one Arrow binary/string array given as its buffers. `width`: 4 (binary,
/// string) or 8 (large_binary, large_string); `paths`: the values are paths to read.
#[pyfunction]
#[pyo3(signature = (length, offset, width, offsets, data, validity, paths, feature_set, threads = None))]
#[allow(clippy::too_many_arguments)]
pub fn _features_arrow<'py>(
    py: Python<'py>,
    length: usize,
    offset: usize,
    width: usize,
    offsets: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    validity: Option<&Bound<'py, PyAny>>,
    paths: bool,
    feature_set: &str,
    threads: Option<usize>,
) -> PyResult<Batch<'py>> {
    let set: mallard_pefeatures::FeatureSet = feature_set
        .parse()
        .map_err(|e| crate::convert::feature_err(&e))?;
    if width != 4 && width != 8 {
        return Err(PyValueError::new_err("offset width must be 4 or 8 bytes"));
    }
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    let (ob, db) = (buffer(offsets, "offsets")?, buffer(data, "data")?);
    let vb = validity.map(|v| buffer(v, "validity")).transpose()?;
    let (o, d) = (
        bytes_in_place(&ob, "offsets")?,
        bytes_in_place(&db, "data")?,
    );
    let v = vb
        .as_ref()
        .map(|b| bytes_in_place(b, "validity"))
        .transpose()?;
    let items = values(length, offset, width, o, d, v)?;
    let dim = set.dim();
    let workers = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
        .clamp(1, length.max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start {workers} threads: {e}")))?;
    let mut out = vec![0f32; length * dim];
    let results: Vec<Result<String, Failure>> = py.detach(|| {
        pool.install(|| {
            out.par_chunks_mut(dim.max(1))
                .zip(items.par_iter())
                .enumerate()
                .with_max_len(1)
                .map(|(i, (row, item))| {
                    let r = one(set, *item, paths, i, row);
                    if r.is_err() {
                        row.fill(f32::NAN);
                    }
                    r
                })
                .collect()
        })
    });
    let mut shas = Vec::with_capacity(length);
    let mut failures = Vec::new();
    for (i, r) in results.into_iter().enumerate() {
        match r {
            Ok(s) => shas.push(Some(s)),
            Err(f) => {
                shas.push(None);
                failures.push((i, f.class(), f.message));
            }
        }
    }
    Ok((out.into_pyarray(py), shas, failures))
}
