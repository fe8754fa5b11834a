//! `mallard.Model`: model files (and the built-in models) loaded and used from Python.

use crate::convert::{feature_err, to_py, type_name};
use mallard_model::{Input, InputKind, Model};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

fn model_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A trained mallard model: a `.mallard` file (``mallard train --out``) or a built-in one.
///
/// What it reads (``input``) decides what ``predict_proba`` takes: a 2-D float array with
/// one column per ``feature_names`` entry (``"features"``), a list of API-call lists
/// (``"api_sequence"``), or a list of ``bytes`` (``"bytes"``: MalConv). Model files are
/// checked as the command checks them (sizes, shapes, tree links): a damaged or hostile
/// file raises ``ValueError``.
#[pyclass(frozen, module = "mallard", name = "Model")]
pub struct PyModel {
    inner: Box<dyn Model>,
    source: String,
}

/// One batch of inputs, owned, so the GIL can be released while the model runs.
enum Batch {
    Features { rows: Vec<f32>, width: usize },
    Apis(Vec<Vec<String>>),
    Bytes(Vec<Vec<u8>>),
}

impl Batch {
    fn len(&self) -> usize {
        match self {
            Batch::Features { rows, width } => rows.len() / (*width).max(1),
            Batch::Apis(a) => a.len(),
            Batch::Bytes(b) => b.len(),
        }
    }

    fn inputs(&self) -> Vec<Input<'_>> {
        match self {
            Batch::Features { rows, width } => {
                rows.chunks((*width).max(1)).map(Input::Features).collect()
            }
            Batch::Apis(a) => a.iter().map(|x| Input::Apis(x)).collect(),
            Batch::Bytes(b) => b.iter().map(|x| Input::Bytes(x)).collect(),
        }
    }
}

impl PyModel {
    fn batch(&self, py: Python<'_>, inputs: &Bound<'_, PyAny>) -> PyResult<Batch> {
        let meta = self.inner.meta();
        match meta.input {
            InputKind::Features => {
                let np = py.import("numpy")?;
                let arr = np.call_method1("ascontiguousarray", (inputs, np.getattr("float32")?))?;
                let arr: PyReadonlyArray2<f32> = arr.extract().map_err(|_| {
                    PyValueError::new_err("features must be a 2-D array (one row per input)")
                })?;
                let (n, width) = (arr.shape()[0], arr.shape()[1]);
                let want = meta.feature_names.len();
                if want > 0 && width != want {
                    return Err(PyValueError::new_err(format!(
                        "{n} rows of {width} columns; this model reads {want} (its feature_names, in order)"
                    )));
                }
                let rows = arr.as_slice().map_err(model_err)?.to_vec();
                Ok(Batch::Features { rows, width })
            }
            InputKind::ApiSequence => {
                if inputs.is_instance_of::<PyString>() {
                    return Err(PyTypeError::new_err(
                        "expected a list of API-call lists, not a string",
                    ));
                }
                let mut all = Vec::new();
                for (i, seq) in inputs.try_iter()?.enumerate() {
                    let seq = seq?;
                    let calls: Vec<String> = seq.extract().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "input {i}: expected a list of API names (str), got {}",
                            type_name(&seq)
                        ))
                    })?;
                    all.push(calls);
                }
                Ok(Batch::Apis(all))
            }
            InputKind::Bytes => {
                let mut all = Vec::new();
                for (i, b) in inputs.try_iter()?.enumerate() {
                    let b = b?;
                    let bytes = b.cast::<PyBytes>().map_err(|_| {
                        PyTypeError::new_err(format!(
                            "input {i}: expected bytes, got {}",
                            type_name(&b)
                        ))
                    })?;
                    all.push(bytes.as_bytes().to_vec());
                }
                Ok(Batch::Bytes(all))
            }
        }
    }

    fn proba(&self, py: Python<'_>, inputs: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, usize)> {
        let batch = self.batch(py, inputs)?;
        let k = self.inner.meta().labels.len();
        let model = self.inner.as_ref();
        let probs = py
            .detach(|| model.predict_proba(&batch.inputs()))
            .map_err(model_err)?;
        if probs.len() != batch.len() * k {
            return Err(PyRuntimeError::new_err(format!(
                "the model gave {} probabilities for {} inputs of {k} classes",
                probs.len(),
                batch.len()
            )));
        }
        Ok((probs, batch.len()))
    }

    fn positive(&self) -> PyResult<usize> {
        self.inner.meta().positive.ok_or_else(|| {
            PyValueError::new_err("this model classifies families: use predict_proba or predict")
        })
    }
}

#[pymethods]
impl PyModel {
    /// Loads a model file (``mallard train --out MODEL``).
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| mallard_model::load(&path))
            .map_err(|e| PyValueError::new_err(format!("{}: {e}", path.display())))?;
        Ok(PyModel {
            inner,
            source: path.display().to_string(),
        })
    }

    /// A built-in model by name: ``"pe"`` (boosted trees on hardened EMBER v2 features, what
    /// ``mallard scan`` uses for PE files), ``"api"`` (kernel SVM over a report's API names),
    /// ``"clamp"`` (the earlier model on ClaMP's header columns).
    #[staticmethod]
    fn builtin(py: Python<'_>, name: &str) -> PyResult<Self> {
        let inner = py
            .detach(|| mallard_scan::builtin::load(name))
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "no built-in model {name:?} (there are: {})",
                    mallard_scan::builtin::NAMES.join(", ")
                ))
            })?
            .map_err(model_err)?;
        Ok(PyModel {
            inner,
            source: format!("builtin:{name}"),
        })
    }

    /// The model's kind (``gbdt``, ``svm``, ``lstm``, ``ngram``, ``malconv``, ...).
    #[getter]
    fn kind(&self) -> String {
        self.inner.meta().kind.clone()
    }

    /// What it reads: ``"features"``, ``"api_sequence"`` or ``"bytes"``.
    #[getter]
    fn input(&self) -> &'static str {
        match self.inner.meta().input {
            InputKind::Features => "features",
            InputKind::ApiSequence => "api_sequence",
            InputKind::Bytes => "bytes",
        }
    }

    /// Class names, in the order of ``predict_proba``'s columns.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.meta().labels.clone()
    }

    /// The decision threshold on P(malicious) of a two-class model.
    #[getter]
    fn threshold(&self) -> f32 {
        self.inner.meta().threshold
    }

    /// The feature set whose columns the model reads (``ember-v2-hardened``, ...), if any.
    #[getter]
    fn feature_set(&self) -> Option<String> {
        self.inner.meta().feature_set.clone()
    }

    /// Feature models: the column names, in input order.
    #[getter]
    fn feature_names(&self) -> Vec<String> {
        self.inner.meta().feature_names.clone()
    }

    /// Everything the file says about the model (the metadata ``mallard inspect`` shows).
    fn meta<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = serde_json::to_value(self.inner.meta()).map_err(model_err)?;
        to_py(py, &v)
    }

    /// Class probabilities, shape ``(len(inputs), len(labels))``, float32.
    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (probs, n) = self.proba(py, inputs)?;
        let k = self.inner.meta().labels.len();
        let arr = Array2::from_shape_vec((n, k), probs).map_err(model_err)?;
        Ok(arr.into_pyarray(py))
    }

    /// P(malicious) of each input (two-class models), float32.
    fn score<'py>(
        &self,
        py: Python<'py>,
        inputs: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let pos = self.positive()?;
        let (probs, _) = self.proba(py, inputs)?;
        let k = self.inner.meta().labels.len();
        let s: Vec<f32> = probs.chunks(k.max(1)).map(|r| r[pos]).collect();
        Ok(s.into_pyarray(py))
    }

    /// The label of each input: the malicious class where P(malicious) reaches the model's
    /// threshold (two-class models), else the most probable class.
    fn predict(&self, py: Python<'_>, inputs: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
        let meta = self.inner.meta();
        let (probs, _) = self.proba(py, inputs)?;
        let k = meta.labels.len().max(1);
        Ok(probs
            .chunks(k)
            .map(|r| {
                let best = match meta.positive {
                    Some(p) if k == 2 => {
                        if r[p] >= meta.threshold {
                            p
                        } else {
                            1 - p
                        }
                    }
                    _ => (0..r.len()).fold(0, |b, j| if r[j] > r[b] { j } else { b }),
                };
                meta.labels.get(best).cloned().unwrap_or_default()
            })
            .collect())
    }

    /// P(malicious) of PE files, their features extracted as the model's ``feature_set``
    /// and matched to its columns by name (a column the extractor lacks is NaN), as
    /// ``mallard scan`` does. Files that cannot be read or parsed raise, naming the file.
    #[pyo3(signature = (paths, threads = None))]
    fn score_files<'py>(
        &self,
        py: Python<'py>,
        paths: Vec<PathBuf>,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let meta = self.inner.meta();
        let pos = self.positive()?;
        if meta.input != InputKind::Features {
            return Err(PyValueError::new_err(
                "score_files is for feature models; give this model its inputs with score()",
            ));
        }
        let set: mallard_pefeatures::FeatureSet = meta
            .feature_set
            .as_deref()
            .ok_or_else(|| PyValueError::new_err("the model names no feature set it reads"))?
            .parse()
            .map_err(|e| feature_err(&e))?;
        let names = mallard_pefeatures::names(set);
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.as_str()).or_insert(i);
        }
        let columns: Vec<Option<usize>> = meta
            .feature_names
            .iter()
            .map(|c| index.get(c.as_str()).copied())
            .collect();
        let workers = threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |c| c.get()))
            .max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start {workers} threads: {e}")))?;
        let max = mallard_io::Caps::DEFAULT_MAX_PE_BYTES as usize;
        let model = self.inner.as_ref();
        let k = meta.labels.len();
        let scores: Result<Vec<f32>, String> = py.detach(|| {
            pool.install(|| {
                paths
                    .par_iter()
                    .map(|p| {
                        let name = p.display();
                        let bytes = mallard_pefeatures::read_capped(p, max)
                            .map_err(|e| format!("{name}: {e}"))?;
                        let v = mallard_pefeatures::extract(set, &bytes)
                            .map_err(|e| format!("{name}: {e}"))?;
                        let row: Vec<f32> = columns
                            .iter()
                            .map(|c| c.and_then(|i| v.get(i).copied()).unwrap_or(f32::NAN))
                            .collect();
                        let pr = model
                            .predict_proba(&[Input::Features(&row)])
                            .map_err(|e| format!("{name}: {e}"))?;
                        pr.get(pos)
                            .copied()
                            .filter(|_| pr.len() == k)
                            .ok_or_else(|| format!("{name}: no probability"))
                    })
                    .collect()
            })
        });
        Ok(scores.map_err(PyValueError::new_err)?.into_pyarray(py))
    }

    /// The parts of one input that moved its score most, strongest first: dicts with
    /// ``kind``, ``name``, ``weight`` (positive pushes toward malicious) and, for EMBER
    /// columns, ``feature``.
    #[pyo3(signature = (input, top = 5))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
        top: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let one = PyList::new(py, [input])?;
        let batch = self.batch(py, one.as_any())?;
        let model = self.inner.as_ref();
        let reasons = py
            .detach(|| {
                let inputs = batch.inputs();
                inputs
                    .first()
                    .map(|i| model.explain(i, top))
                    .unwrap_or_else(|| Ok(Vec::new()))
            })
            .map_err(model_err)?;
        let out = PyList::empty(py);
        for r in reasons {
            let v = serde_json::to_value(&r).map_err(model_err)?;
            out.append(to_py(py, &v)?)?;
        }
        Ok(out)
    }

    fn __repr__(&self) -> String {
        let m = self.inner.meta();
        format!(
            "mallard.Model({:?}: {} on {}, labels {:?})",
            self.source,
            m.kind,
            m.feature_set.as_deref().unwrap_or(self.input()),
            m.labels
        )
    }
}
