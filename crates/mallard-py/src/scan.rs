//! `mallard.scan`: verdicts as `mallard scan --json` prints them.

use crate::convert::to_py;
use mallard_io::{Caps, WalkOptions};
use mallard_scan::setup::{prepare, Plan};
use mallard_scan::{expand_paths, scan_batch, BatchOptions, ScanOptions, ScanResult};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Results of `mallard scan --json PATHS` with its defaults (built-in models and rules),
/// in input order: what could not be walked or used first, as the command prints them.
fn scan_paths(
    paths: &[PathBuf],
    threads: usize,
    top: usize,
    threshold: Option<f32>,
) -> Result<Vec<ScanResult>, String> {
    let caps = Caps::default();
    let walk = WalkOptions {
        follow_symlinks: false,
        max_depth: caps.max_walk_depth,
    };
    let expanded = expand_paths(paths, &walk);
    let plan = Plan {
        builtin_rules: true,
        walk,
        ..Plan::default()
    };
    let opts = ScanOptions {
        top,
        threshold,
        max_pe_bytes: caps.max_pe_bytes,
        max_report_bytes: caps.max_report_bytes,
        report: mallard_apiseq::ReportOptions::from_caps(&caps),
        rule_timeout: Duration::from_secs(10),
        ..ScanOptions::default()
    };
    let (scanner, rule_errors) =
        prepare(&plan, &expanded.files, opts, &caps).map_err(|e| e.to_string())?;
    // Only user rule files can fail to compile; the built-in set always does.
    if let Some(e) = rule_errors.first() {
        return Err(e.to_string());
    }
    let mut results: Vec<ScanResult> = expanded.errors;
    results.extend(scanner.report_problems().iter().cloned());
    let mut scanned: Vec<Option<ScanResult>> = vec![None; expanded.files.len()];
    let never = AtomicBool::new(false);
    let per_file = Duration::from_secs(caps.per_file_seconds);
    scan_batch(
        Arc::new(scanner),
        expanded.files,
        BatchOptions { threads, per_file },
        &never,
        &mut |i, r| {
            if let Some(slot) = scanned.get_mut(i) {
                *slot = Some(r);
            }
        },
    );
    results.extend(scanned.into_iter().flatten());
    Ok(results)
}

fn threads_or_cores(threads: Option<usize>) -> PyResult<usize> {
    match threads {
        Some(0) => Err(PyValueError::new_err("threads must be at least 1")),
        Some(t) => Ok(t),
        None => Ok(std::thread::available_parallelism().map_or(1, |c| c.get())),
    }
}

/// The result as `scan --json` prints it, read back: through the text, so that f32 scores
/// come out as the short decimals the command prints (0.0123, not 0.012299999594688416).
fn result_to_py<'py>(py: Python<'py>, r: &ScanResult) -> PyResult<Bound<'py, PyAny>> {
    let v: serde_json::Value = serde_json::from_str(&r.json_line())
        .map_err(|e| PyRuntimeError::new_err(format!("cannot read a result back: {e}")))?;
    to_py(py, &v)
}

/// Scans one file (a PE file or a Cuckoo/CAPE sandbox report) with mallard's built-in
/// models and rules, and returns the same dict as one line of ``mallard scan --json PATH``:
/// ``path``, ``verdict`` (``"malicious"``, ``"benign"`` or ``"error"``), ``score``,
/// ``decided_by``, ``reasons`` (the ``top`` strongest), and ``error``, ``rules``, ...
/// where they apply. A file that cannot be read or scored gives ``verdict == "error"``
/// with the message in ``error``, as the command does; a folder raises ``ValueError``
/// (use ``scan_many``). ``threshold`` overrides the model's decision threshold on
/// P(malicious).
#[pyfunction]
#[pyo3(signature = (path, top = 5, threshold = None))]
pub fn scan<'py>(
    py: Python<'py>,
    path: PathBuf,
    top: usize,
    threshold: Option<f32>,
) -> PyResult<Bound<'py, PyAny>> {
    if path.is_dir() {
        return Err(PyValueError::new_err(format!(
            "{}: is a folder (mallard.scan_many scans folders)",
            path.display()
        )));
    }
    check_threshold(threshold)?;
    let paths = [path];
    let results = py
        .detach(|| scan_paths(&paths, 1, top, threshold))
        .map_err(PyRuntimeError::new_err)?;
    match results.as_slice() {
        [r] => result_to_py(py, r),
        _ => Err(PyRuntimeError::new_err(format!(
            "{}: {} results for one file",
            paths[0].display(),
            results.len()
        ))),
    }
}

/// Scans files and folders (searched recursively) as ``mallard scan --json PATHS --sort``
/// does and returns its dicts in the same order, one per input found. ``threads``:
/// files scanned at once (default: all cores); the GIL is released meanwhile.
#[pyfunction]
#[pyo3(signature = (paths, threads = None, top = 5, threshold = None))]
pub fn scan_many<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    threads: Option<usize>,
    top: usize,
    threshold: Option<f32>,
) -> PyResult<Bound<'py, PyList>> {
    let threads = threads_or_cores(threads)?;
    check_threshold(threshold)?;
    let results = py
        .detach(|| scan_paths(&paths, threads, top, threshold))
        .map_err(PyRuntimeError::new_err)?;
    let items = results
        .iter()
        .map(|r| result_to_py(py, r))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

fn check_threshold(t: Option<f32>) -> PyResult<()> {
    match t {
        Some(t) if !(0.0..=1.0).contains(&t) => Err(PyValueError::new_err(format!(
            "threshold {t}: expected a probability in [0, 1]"
        ))),
        _ => Ok(()),
    }
}
