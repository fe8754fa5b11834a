//! The model file: a plain safetensors file whose header metadata marks it as mallard's and
//! whose `mallard.meta` tensor (version 2 on; the header metadata in version 1) carries
//! mallard's JSON, with the training summary in `mallard.training` (version 3 on).
//!
//! Any safetensors reader can open it; mallard recognises its own files by the metadata keys
//! `format = "mallard-model"` and `format_version`, and refuses newer versions instead of
//! misreading them.

use crate::{Meta, ModelError};
use mallard_io::Caps;
use safetensors::tensor::{Dtype, SafeTensors};
use std::path::Path;

/// Identifies a mallard model inside the safetensors metadata.
pub const FORMAT: &str = "mallard-model";
/// Bumped on any change old readers would misread. Version 2 moved the `Meta` JSON from
/// the header metadata (an escaped string that every load unescaped and copied) into a
/// `U8` tensor, [`META_TENSOR`]. Version 3 moved `Meta::training` into a tensor of its own,
/// [`TRAINING_TENSOR`], which a model loaded to score with never reads, and lets table
/// models keep their column means as a tensor and an all-numeric schema as one word.
/// Versions 1 and 2 stay readable.
pub const FORMAT_VERSION: u32 = 3;

/// The `U8` tensor holding the `Meta` JSON (UTF-8) in files of version 2 and later. No
/// other tensor or blob may take the name.
pub const META_TENSOR: &str = "mallard.meta";

/// The `U8` tensor holding `Meta::training` as JSON in files of version 3 and later (absent
/// when there is none); `training` in the [`META_TENSOR`] is then `null`. Reserved too.
pub const TRAINING_TENSOR: &str = "mallard.training";

/// A named f32 tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> Self {
        Tensor {
            name: name.into(),
            shape,
            data,
        }
    }
}

/// One tensor of a [`Header`]: checked, its data still in the file's bytes.
pub(crate) struct RawTensor<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    /// `false`: a `U8` blob.
    pub f32: bool,
    pub data: &'a [u8],
}

/// A model file's header, checked, with its tensors left in the file's bytes: scoring
/// decodes the large ones straight into the model instead of through [`Tensor`]s.
pub(crate) struct Header<'a> {
    /// The `Meta`, JSON text: borrowed from the file (version 2), or unescaped from the
    /// header metadata (version 1).
    pub meta_json: std::borrow::Cow<'a, str>,
    /// `Meta::training` as JSON text, when kept apart (version 3).
    pub training_json: Option<&'a str>,
    /// In name order.
    pub tensors: Vec<RawTensor<'a>>,
}

impl<'a> Header<'a> {
    /// Checks the format, version and every tensor's place, type and shape; refuses more
    /// than `caps.max_model_count` tensors or dimensions that overflow.
    pub fn read(bytes: &'a [u8], caps: &Caps) -> Result<Self, ModelError> {
        if bytes.len() as u64 > caps.max_model_bytes {
            return Err(ModelError::Corrupt(format!(
                "{} bytes, over the cap of {} (max_model_bytes)",
                bytes.len(),
                caps.max_model_bytes
            )));
        }
        let (header_len, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelError::Foreign(format!("not a safetensors file ({e})")))?;
        let info = header.metadata().as_ref().ok_or_else(|| {
            ModelError::Foreign("safetensors file without mallard metadata".into())
        })?;
        match info.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(ModelError::Foreign(format!(
                    "safetensors file of format {other:?}"
                )))
            }
            None => {
                return Err(ModelError::Foreign(
                    "safetensors file without mallard metadata".into(),
                ))
            }
        }
        let version: u32 = info
            .get("format_version")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| ModelError::Corrupt("format_version missing or not a number".into()))?;
        if version > FORMAT_VERSION {
            return Err(ModelError::Newer {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        // read_metadata has validated the offsets against the buffer; take the data from it
        // directly instead of parsing the header a second time.
        let body = bytes
            .get(8 + header_len..)
            .ok_or_else(|| ModelError::Corrupt("truncated".into()))?;
        let infos = header.tensors();
        if infos.len() > caps.max_model_count {
            return Err(ModelError::Corrupt(format!(
                "{} tensors, over the cap of {} (max_model_count)",
                infos.len(),
                caps.max_model_count
            )));
        }
        let mut tensors = Vec::with_capacity(infos.len());
        let mut meta_json = None;
        let mut training_json = None;
        for (name, info) in infos {
            // The data size was checked against the offsets; the shape must describe it.
            let elems = info
                .shape
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| {
                    ModelError::Corrupt(format!(
                        "tensor {name:?}: shape {:?} overflows",
                        info.shape
                    ))
                })?;
            let (a, b) = info.data_offsets;
            let data = body.get(a..b).ok_or_else(|| {
                ModelError::Corrupt(format!("tensor {name:?} lies outside the file"))
            })?;
            let f32 = match info.dtype {
                Dtype::F32 => {
                    if elems.checked_mul(4) != Some(data.len()) {
                        return Err(ModelError::Corrupt(format!(
                            "tensor {name:?}: shape {:?} does not match its {} bytes",
                            info.shape,
                            data.len()
                        )));
                    }
                    true
                }
                Dtype::U8 => false,
                other => {
                    return Err(ModelError::Corrupt(format!(
                        "tensor {name:?} is {other:?}, expected F32 or U8"
                    )))
                }
            };
            let reserved =
                (version >= 2 && name == META_TENSOR) || (version >= 3 && name == TRAINING_TENSOR);
            if reserved {
                if f32 {
                    return Err(ModelError::Corrupt(format!("{name} is not U8")));
                }
                let text = std::str::from_utf8(data)
                    .map_err(|_| ModelError::Corrupt(format!("{name} is not UTF-8")))?;
                if name == META_TENSOR {
                    meta_json = Some(std::borrow::Cow::Borrowed(text));
                } else {
                    training_json = Some(text);
                }
                continue;
            }
            tensors.push(RawTensor {
                name,
                shape: info.shape.clone(),
                f32,
                data,
            });
        }
        let meta_json = match meta_json {
            Some(m) => m,
            None if version >= 2 => {
                return Err(ModelError::Corrupt(format!("no {META_TENSOR} tensor")))
            }
            None => std::borrow::Cow::Owned(
                info.get("mallard")
                    .ok_or_else(|| ModelError::Corrupt("no \"mallard\" metadata".into()))?
                    .clone(),
            ),
        };
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Header {
            meta_json,
            training_json,
            tensors,
        })
    }

    /// Every tensor decoded, beside `meta`.
    pub fn to_file(&self, meta: Meta) -> Result<ModelFile, ModelError> {
        let mut tensors = Vec::new();
        let mut blobs = Vec::new();
        for t in &self.tensors {
            if t.f32 {
                tensors.push(Tensor {
                    data: f32s(t.data),
                    name: t.name.clone(),
                    shape: t.shape.clone(),
                });
            } else {
                blobs.push((t.name.clone(), t.data.to_vec()));
            }
        }
        Ok(ModelFile {
            meta,
            tensors,
            blobs,
        })
    }
}

/// Little-endian f32 values (the length was checked to be a multiple of 4).
pub(crate) fn f32s(raw: &[u8]) -> Vec<f32> {
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Metadata plus tensors, as stored on disk.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub meta: Meta,
    pub tensors: Vec<Tensor>,
    /// Named byte strings (stored as `U8` tensors): large string tables such as an n-gram
    /// vocabulary, which would be slow to parse as escaped JSON inside the header.
    pub blobs: Vec<(String, Vec<u8>)>,
}

impl ModelFile {
    /// A container model's file before its members are added.
    pub(crate) fn container(meta: Meta) -> ModelFile {
        ModelFile {
            meta,
            tensors: Vec::new(),
            blobs: Vec::new(),
        }
    }

    /// Member `i` of a container model (ensemble, stack): its tensors and blobs, stored
    /// under `m{i}/`, with `meta`.
    pub(crate) fn member(&self, i: usize, meta: Meta) -> ModelFile {
        let prefix = format!("m{i}/");
        let tensors = self
            .tensors
            .iter()
            .filter_map(|t| {
                t.name
                    .strip_prefix(&prefix)
                    .map(|n| Tensor::new(n, t.shape.clone(), t.data.clone()))
            })
            .collect();
        let blobs = self
            .blobs
            .iter()
            .filter_map(|(n, b)| n.strip_prefix(&prefix).map(|n| (n.to_string(), b.clone())))
            .collect();
        ModelFile {
            meta,
            tensors,
            blobs,
        }
    }

    /// Stores `f`'s tensors and blobs as member `i`; returns its metadata.
    pub(crate) fn add_member(&mut self, i: usize, f: ModelFile) -> Meta {
        self.tensors.extend(
            f.tensors
                .into_iter()
                .map(|t| Tensor::new(format!("m{i}/{}", t.name), t.shape, t.data)),
        );
        self.blobs
            .extend(f.blobs.into_iter().map(|(n, b)| (format!("m{i}/{n}"), b)));
        f.meta
    }
}

/// Packs strings as (u32 little-endian length, UTF-8 bytes) records.
pub fn pack_strings(items: &[String]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|s| s.len() + 4).sum());
    for s in items {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out
}

/// Inverse of [`pack_strings`]; any inconsistency is an error, never a panic.
pub fn unpack_strings(bytes: &[u8]) -> Result<Vec<String>, ModelError> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_at_checked(4)
            .ok_or_else(|| ModelError::Corrupt("string table: truncated length".into()))?;
        let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (s, tail) = tail
            .split_at_checked(n)
            .ok_or_else(|| ModelError::Corrupt("string table: truncated string".into()))?;
        out.push(
            String::from_utf8(s.to_vec())
                .map_err(|_| ModelError::Corrupt("string table: not UTF-8".into()))?,
        );
        rest = tail;
    }
    Ok(out)
}

impl ModelFile {
    pub fn tensor(&self, name: &str) -> Result<&Tensor, ModelError> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| ModelError::Invalid(format!("missing tensor {name:?}")))
    }

    pub fn blob(&self, name: &str) -> Result<&[u8], ModelError> {
        self.blobs
            .iter()
            .find(|b| b.0 == name)
            .map(|b| b.1.as_slice())
            .ok_or_else(|| ModelError::Invalid(format!("missing table {name:?}")))
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        for t in &self.tensors {
            if t.shape.iter().product::<usize>() != t.data.len() {
                return Err(ModelError::Invalid(format!(
                    "tensor {:?}: shape {:?} does not hold {} values",
                    t.name,
                    t.shape,
                    t.data.len()
                )));
            }
        }
        let invalid = |e: serde_json::Error| ModelError::Invalid(format!("metadata: {e}"));
        // The training summary in a tensor of its own, which scoring never reads.
        let mut head_meta = self.meta.clone();
        let training = match std::mem::take(&mut head_meta.training) {
            serde_json::Value::Null => None,
            t => Some(serde_json::to_vec(&t).map_err(invalid)?),
        };
        let meta = serde_json::to_vec(&head_meta).map_err(invalid)?;
        // Written by hand rather than with safetensors::serialize so that the header's keys
        // come out sorted: the same model always gives the same bytes.
        let mut header = serde_json::Map::new();
        let mut info = serde_json::Map::new();
        info.insert("format".into(), FORMAT.into());
        info.insert("format_version".into(), FORMAT_VERSION.to_string().into());
        header.insert("__metadata__".into(), info.into());
        // Tensors and blobs in name order, each with its little-endian bytes.
        let mut parts: Vec<(&str, &str, Vec<usize>, Vec<u8>)> = Vec::new();
        for t in &self.tensors {
            parts.push((
                &t.name,
                "F32",
                t.shape.clone(),
                t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
        }
        for (name, b) in &self.blobs {
            parts.push((name, "U8", vec![b.len()], b.clone()));
        }
        if let Some(p) = parts
            .iter()
            .find(|p| [META_TENSOR, TRAINING_TENSOR].contains(&p.0))
        {
            return Err(ModelError::Invalid(format!(
                "tensor {:?}: the name is reserved",
                p.0
            )));
        }
        parts.push((META_TENSOR, "U8", vec![meta.len()], meta));
        if let Some(t) = training {
            parts.push((TRAINING_TENSOR, "U8", vec![t.len()], t));
        }
        parts.sort_by(|a, b| a.0.cmp(b.0));
        let mut offset = 0usize;
        for (name, dtype, shape, data) in &parts {
            if header.contains_key(*name) {
                return Err(ModelError::Invalid(format!("tensor {name:?} given twice")));
            }
            let end = offset + data.len();
            header.insert(
                name.to_string(),
                serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [offset, end] }),
            );
            offset = end;
        }
        let mut head = serde_json::to_vec(&serde_json::Value::Object(header))
            .map_err(|e| ModelError::Invalid(format!("header: {e}")))?;
        // Pad the header with spaces so the data starts 8-byte aligned, as the format recommends.
        while (8 + head.len()) % 8 != 0 {
            head.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + head.len() + offset);
        out.extend_from_slice(&(head.len() as u64).to_le_bytes());
        out.extend_from_slice(&head);
        for (_, _, _, data) in parts {
            out.extend_from_slice(&data);
        }
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        Self::from_bytes_with(bytes, &Caps::default())
    }

    /// Parses a model file held in memory; refuses more than `caps.max_model_count`
    /// tensors or tensor dimensions that overflow.
    pub fn from_bytes_with(bytes: &[u8], caps: &Caps) -> Result<Self, ModelError> {
        let header = Header::read(bytes, caps)?;
        let mut meta: Meta = serde_json::from_str(&header.meta_json)
            .map_err(|e| ModelError::Corrupt(format!("metadata: {e}")))?;
        if let Some(t) = header.training_json {
            if !meta.training.is_null() {
                return Err(ModelError::Corrupt(format!(
                    "training given both in {META_TENSOR} and in {TRAINING_TENSOR}"
                )));
            }
            meta.training = serde_json::from_str(t)
                .map_err(|e| ModelError::Corrupt(format!("{TRAINING_TENSOR}: {e}")))?;
        }
        header.to_file(meta)
    }
    /// Reads a model file with the default [`Caps`].
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        Self::read_with(path, &Caps::default())
    }

    /// Reads a regular file of at most `caps.max_model_bytes` (never a FIFO or device:
    /// `--model /dev/zero` is refused before reading).
    pub fn read_with(path: &Path, caps: &Caps) -> Result<Self, ModelError> {
        let bytes = mallard_io::read_capped(path, caps.max_model_bytes)?;
        Self::from_bytes_with(&bytes, caps)
    }

    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|e| ModelError::Io(path.display().to_string(), e))
    }
}
