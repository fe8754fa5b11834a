//! `mallard._native`: the Rust half of the Python package `mallard` (see README.md).
//!
//! A thin front end: EMBER feature extraction from `mallard-pefeatures` and scans from
//! `mallard-scan`. Library errors become Python exceptions (`ValueError`, `OSError`); nothing
//! here unwraps, so no input can panic the interpreter away.

// PyO3 0.30's macros pass under `deny`: their unsafe code is spanned to PyO3, not here. One
// function borrows Arrow buffers in place (`arrow::bytes_in_place`, with its contract).
#![deny(unsafe_code)]

mod arrow;
mod convert;
mod features;
mod model;
mod scan;

use pyo3::prelude::*;

#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<features::PeFeatureExtractor>()?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(features::features, m)?)?;
    m.add_function(wrap_pyfunction!(features::names, m)?)?;
    m.add_function(wrap_pyfunction!(arrow::_features_arrow, m)?)?;
    m.add_function(wrap_pyfunction!(features::pe_files, m)?)?;
    m.add_function(wrap_pyfunction!(scan::scan, m)?)?;
    m.add_function(wrap_pyfunction!(scan::scan_many, m)?)?;
    Ok(())
}
