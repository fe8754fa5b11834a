//! EMBER's `PEFeatureExtractor` and batch feature matrices.

use crate::convert::{bytes_of, feature_err, from_py, to_py, type_name, Failure};
use mallard_pefeatures::FeatureSet;
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};
use rayon::prelude::*;
use std::borrow::Cow;
use std::path::PathBuf;

/// Files above this are refused before reading, as `mallard features` does by default.
const MAX_FILE_BYTES: u64 = mallard_io::Caps::DEFAULT_MAX_PE_BYTES;

fn parse_set(name: &str) -> PyResult<FeatureSet> {
    name.parse().map_err(|e| feature_err(&e))
}

/// A drop-in for EMBER's ``ember.PEFeatureExtractor`` (``feature_version=2``, 2381 float32
/// values) and EMBER2024's ``thrember.PEFeatureExtractor`` (``feature_version=3``, 2568
/// values), computed by mallard's Rust extractors and equal to theirs bit for bit on the
/// project's test corpus.
///
/// Bytes that are not a PE file are scored as EMBER scores them: from their byte
/// histograms and strings, with the PE groups at their defaults. Input EMBER itself
/// cannot take (an empty file for version 3, a file over 256 MiB) raises ``ValueError``
/// with a one-line message.
///
/// ``print_feature_warning`` is accepted for compatibility and ignored (there is no LIEF
/// version to warn about); ``features_file`` (a subset of feature groups) is not supported.
#[pyclass(frozen, module = "mallard", name = "PEFeatureExtractor")]
pub struct PeFeatureExtractor {
    set: FeatureSet,
    version: u32,
}

#[pymethods]
impl PeFeatureExtractor {
    #[new]
    #[pyo3(signature = (feature_version = 2, print_feature_warning = true, features_file = ""))]
    fn new(
        feature_version: u32,
        print_feature_warning: bool,
        features_file: &str,
    ) -> PyResult<Self> {
        let _ = print_feature_warning;
        if !features_file.is_empty() {
            return Err(PyValueError::new_err(
                "features_file (a subset of EMBER's feature groups) is not supported: all groups are extracted",
            ));
        }
        let set = match feature_version {
            2 => FeatureSet::EmberV2,
            3 => FeatureSet::EmberV3,
            v => {
                return Err(PyValueError::new_err(format!(
                    "feature_version {v} is not supported (2: EMBER 2018, 3: EMBER2024)"
                )))
            }
        };
        Ok(PeFeatureExtractor {
            set,
            version: feature_version,
        })
    }

    /// Length of the feature vector: 2381 (version 2) or 2568 (version 3).
    #[getter]
    fn dim(&self) -> usize {
        self.set.dim()
    }

    /// 2 (EMBER 2018) or 3 (EMBER2024).
    #[getter]
    fn feature_version(&self) -> u32 {
        self.version
    }

    /// The feature set's name as ``mallard.features`` takes it (``ember-v2``, ``ember-v3``).
    #[getter]
    fn feature_set(&self) -> &'static str {
        self.set.name()
    }

    /// EMBER's raw feature object of ``bytez`` (``bytes`` or ``bytearray``): the same dict
    /// as EMBER's ``raw_features`` (keys ``sha256``, ``histogram``, ``byteentropy``, ...).
    fn raw_features<'py>(
        &self,
        py: Python<'py>,
        bytez: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = bytes_of(bytez)?;
        let set = self.set;
        let raw = py
            .detach(|| mallard_pefeatures::ember_raw_of(set, &bytes))
            .map_err(|e| feature_err(&e))?;
        to_py(py, &raw)
    }

    /// The float32 vector of a raw feature object: one returned by ``raw_features``, or a
    /// line of EMBER's or EMBER2024's own raw JSON-lines files (extra keys such as ``path``
    /// are ignored; NumPy values inside are accepted). A missing or malformed group raises
    /// ``ValueError``.
    fn process_raw_features<'py>(
        &self,
        py: Python<'py>,
        raw_obj: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let raw = from_py(raw_obj)?;
        let set = self.set;
        let v = py
            .detach(|| mallard_pefeatures::ember_vectorize_as(set, &raw))
            .map_err(|e| feature_err(&e))?;
        Ok(v.into_pyarray(py))
    }

    /// The float32 feature vector of ``bytez``: ``process_raw_features(raw_features(bytez))``,
    /// computed without building the dict.
    fn feature_vector<'py>(
        &self,
        py: Python<'py>,
        bytez: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let bytes = bytes_of(bytez)?;
        let set = self.set;
        let v = py
            .detach(|| mallard_pefeatures::extract(set, &bytes))
            .map_err(|e| feature_err(&e))?;
        Ok(v.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "mallard.PEFeatureExtractor(feature_version={})",
            self.version
        )
    }
}

/// One input of a batch: a file to read, or bytes held by the caller.
enum Source<'a> {
    Path(PathBuf),
    Bytes(Cow<'a, [u8]>),
}

impl Source<'_> {
    fn features(&self, set: FeatureSet, index: usize, row: &mut [f32]) -> Result<(), Failure> {
        let (bytes, name) = match self {
            Source::Path(p) => {
                let name = p.display().to_string();
                let b = mallard_pefeatures::read_capped(p, MAX_FILE_BYTES as usize)
                    .map_err(|e| Failure::of(&e))?;
                (Cow::Owned(b), name)
            }
            Source::Bytes(b) => (Cow::Borrowed(b.as_ref()), format!("item {index}")),
        };
        let v =
            mallard_pefeatures::extract(set, &bytes).map_err(|e| Failure::of(&e).named(&name))?;
        if v.len() != row.len() {
            return Err(Failure {
                kind: crate::convert::Kind::Value,
                message: format!("{name}: {} values, expected {}", v.len(), row.len()),
            });
        }
        row.copy_from_slice(&v);
        Ok(())
    }
}

/// Feature matrix of many files or byte strings, one row per item, in input order.
///
/// ``items``: paths (``str`` or ``os.PathLike``) and/or ``bytes``/``bytearray`` objects.
/// ``feature_set``: ``ember-v2`` (2381 columns), ``ember-v3`` (2568), ``ember-v2-hardened``,
/// ``pe-header``, ``saxe-1024``, ``opcodes`` or ``image``, as ``mallard features --set``.
/// ``threads``: worker threads (default: all cores); the GIL is released while they work.
/// ``errors``: ``"raise"`` (the default) raises for the first failing item in input order,
/// after all items were tried: ``ValueError`` for input the extractor refuses, ``OSError``
/// (``FileNotFoundError``, ...) for a path that cannot be read; the message names the path
/// or ``item N``. ``"nan"`` gives that item a row of NaN instead and raises nothing.
///
/// Returns a C-contiguous ``numpy.ndarray`` of ``float32`` with shape ``(len(items), dim)``;
/// each row equals ``PEFeatureExtractor(...).feature_vector`` of that item.
#[pyfunction]
#[pyo3(signature = (items, feature_set = "ember-v2", threads = None, errors = "raise"))]
pub fn features<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
    feature_set: &str,
    threads: Option<usize>,
    errors: &str,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let set = parse_set(feature_set)?;
    let nan_rows = match errors {
        "raise" => false,
        "nan" => true,
        e => {
            return Err(PyValueError::new_err(format!(
                "errors={e:?}: expected \"raise\" or \"nan\""
            )))
        }
    };
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    if items.is_instance_of::<PyBytes>() || items.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "items must be a list of paths or bytes, not a single one",
        ));
    }
    // Hold the objects so that borrowed bytes stay valid while the GIL is released.
    let objs: Vec<Bound<'py, PyAny>> = items.try_iter()?.collect::<PyResult<_>>()?;
    let mut sources = Vec::with_capacity(objs.len());
    for (i, o) in objs.iter().enumerate() {
        sources.push(if let Ok(b) = o.cast::<PyBytes>() {
            Source::Bytes(Cow::Borrowed(b.as_bytes()))
        } else if let Ok(b) = o.cast::<PyByteArray>() {
            Source::Bytes(Cow::Owned(b.to_vec()))
        } else if let Ok(p) = o.extract::<PathBuf>() {
            Source::Path(p)
        } else {
            return Err(PyTypeError::new_err(format!(
                "item {i}: expected a path (str or os.PathLike) or bytes, got {}",
                type_name(o)
            )));
        });
    }
    let (n, dim) = (sources.len(), set.dim());
    let workers = threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
        .clamp(1, n.max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start {workers} threads: {e}")))?;
    let mut out = vec![0f32; n * dim];
    let failures: Vec<(usize, Failure)> = py.detach(|| {
        pool.install(|| {
            out.par_chunks_mut(dim.max(1))
                .zip(sources.par_iter())
                .enumerate()
                .with_max_len(1)
                .filter_map(|(i, (row, src))| match src.features(set, i, row) {
                    Ok(()) => None,
                    Err(f) => {
                        row.fill(f32::NAN);
                        Some((i, f))
                    }
                })
                .collect()
        })
    });
    if let Some((_, f)) = failures
        .into_iter()
        .min_by_key(|(i, _)| *i)
        .filter(|_| !nan_rows)
    {
        return Err(f.into_err());
    }
    let arr = Array2::from_shape_vec((n, dim), out)
        .map_err(|e| PyRuntimeError::new_err(format!("feature matrix of {n} x {dim}: {e}")))?;
    Ok(arr.into_pyarray(py))
}

/// Column names of a feature set, in vector order (``mallard features --names``).
#[pyfunction]
#[pyo3(signature = (feature_set = "ember-v2"))]
pub fn names(feature_set: &str) -> PyResult<Vec<String>> {
    Ok(mallard_pefeatures::names(parse_set(feature_set)?))
}

/// PE files under `paths`, as `mallard features` finds them: files given are kept, folders
/// are searched recursively (links not followed, nesting capped at `max_depth`) for files
/// starting with "MZ". Returns (files, [(path, error)] for what could not be walked or read).
#[pyfunction]
#[pyo3(signature = (paths, max_depth = None))]
pub fn pe_files(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    max_depth: Option<usize>,
) -> (Vec<String>, Vec<(String, String)>) {
    let depth = max_depth.unwrap_or(mallard_io::Caps::default().max_walk_depth);
    let found = py.detach(|| mallard_io::walk::pe_files(&paths, depth));
    let show = |p: &std::path::Path| p.display().to_string();
    (
        found.files.iter().map(|p| show(p)).collect(),
        found
            .errors
            .iter()
            .map(|(p, e)| (show(p), e.clone()))
            .collect(),
    )
}
