//! JSON values to Python objects and back, and the library's errors as Python exceptions.

use mallard_pefeatures::FeatureError;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIsADirectoryError, PyOSError, PyPermissionError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::io::ErrorKind;

/// EMBER's raw objects are four levels deep; a hostile dict nested deeper than this is refused
/// instead of recursing until the stack runs out.
const MAX_DEPTH: usize = 64;

/// Which Python exception a failure becomes: reading a path fails with an OSError (by its
/// kind, so `FileNotFoundError` for a missing file), everything else with a ValueError.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Value,
    Os(ErrorKind),
}

/// A failure found without the GIL, turned into an exception once it is held again.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
}

impl Failure {
    pub fn of(e: &FeatureError) -> Self {
        Failure {
            kind: kind_of(e),
            message: e.to_string(),
        }
    }

    /// The failure with `prefix: ` before its message (the item it came from).
    pub fn named(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// The name of the exception class `into_err` gives (for Python code that builds it).
    pub fn class(&self) -> &'static str {
        match self.kind {
            Kind::Value => "ValueError",
            Kind::Os(ErrorKind::NotFound) => "FileNotFoundError",
            Kind::Os(ErrorKind::PermissionDenied) => "PermissionError",
            Kind::Os(ErrorKind::IsADirectory) => "IsADirectoryError",
            Kind::Os(_) => "OSError",
        }
    }

    pub fn into_err(self) -> PyErr {
        let m = self.message;
        match self.kind {
            Kind::Value => PyValueError::new_err(m),
            Kind::Os(ErrorKind::NotFound) => PyFileNotFoundError::new_err(m),
            Kind::Os(ErrorKind::PermissionDenied) => PyPermissionError::new_err(m),
            Kind::Os(ErrorKind::IsADirectory) => PyIsADirectoryError::new_err(m),
            Kind::Os(_) => PyOSError::new_err(m),
        }
    }
}

fn kind_of(e: &FeatureError) -> Kind {
    match e {
        FeatureError::Read(mallard_io::IoError::Io { source, .. })
        | FeatureError::Io { source, .. } => Kind::Os(source.kind()),
        FeatureError::File { source, .. } => kind_of(source),
        _ => Kind::Value,
    }
}

pub fn feature_err(e: &FeatureError) -> PyErr {
    Failure::of(e).into_err()
}

/// The bytes of a `bytes` object (borrowed, no copy) or a `bytearray` (copied: it may change
/// while the GIL is released).
pub fn bytes_of<'a>(obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, [u8]>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Cow::Borrowed(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Cow::Owned(b.to_vec()));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "expected bytes or bytearray, got {}",
        type_name(obj)
    )))
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an object".into())
}

/// A JSON value as Python objects, as `json.loads` of its text would give them.
pub fn to_py<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => number_to_py(py, n)?,
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| to_py(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, to_py(py, x)?)?;
            }
            d.into_any()
        }
    })
}

fn number_to_py<'py>(py: Python<'py>, n: &Number) -> PyResult<Bound<'py, PyAny>> {
    if let Some(i) = n.as_i64() {
        return Ok(i.into_pyobject(py)?.into_any());
    }
    if let Some(u) = n.as_u64() {
        return Ok(u.into_pyobject(py)?.into_any());
    }
    Ok(PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any())
}

/// A Python object (an EMBER raw dict: dicts, lists, tuples, str, int, float, bool, None,
/// NumPy scalars and arrays) as a JSON value; anything else is a ValueError naming where.
pub fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    from_py_at(obj, 0, &mut String::from("raw"))
}

fn from_py_at(obj: &Bound<'_, PyAny>, depth: usize, at: &mut String) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "{at}: nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return int_value(obj, at);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float_value(f.value(), at);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = Map::new();
        for (k, v) in d.iter() {
            let key = match k.cast::<PyString>() {
                Ok(s) => s.to_cow()?.into_owned(),
                // json.dumps writes int and float keys as strings too.
                Err(_) => k.str()?.to_cow()?.into_owned(),
            };
            let len = at.len();
            at.push('.');
            at.push_str(&key);
            let value = from_py_at(&v, depth + 1, at)?;
            at.truncate(len);
            m.insert(key, value);
        }
        return Ok(Value::Object(m));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        return seq_value(obj, depth, at);
    }
    // NumPy values in a dict made live by EMBER or thrember (not read back from JSON):
    // `tolist()` gives plain Python numbers and lists.
    if obj.hasattr("dtype")? && obj.hasattr("tolist")? {
        return from_py_at(&obj.call_method0("tolist")?, depth + 1, at);
    }
    Err(PyValueError::new_err(format!(
        "{at}: {} is not a JSON value (expected dict, list, str, int, float, bool or None)",
        type_name(obj)
    )))
}

fn seq_value(obj: &Bound<'_, PyAny>, depth: usize, at: &mut String) -> PyResult<Value> {
    let mut out = Vec::new();
    for (i, x) in obj.try_iter()?.enumerate() {
        let len = at.len();
        at.push_str(&format!("[{i}]"));
        out.push(from_py_at(&x?, depth + 1, at)?);
        at.truncate(len);
    }
    Ok(Value::Array(out))
}

fn int_value(obj: &Bound<'_, PyAny>, at: &str) -> PyResult<Value> {
    if let Ok(i) = obj.extract::<i64>() {
        return Ok(Value::from(i));
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Ok(Value::from(u));
    }
    // Beyond 64 bits: as a float, which is what the vector casts it to anyway.
    let f: f64 = obj.extract()?;
    float_value(f, at)
}

fn float_value(f: f64, at: &str) -> PyResult<Value> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| PyValueError::new_err(format!("{at}: {f} is not a finite number")))
}
