//! Features datasets as Parquet: what `mallard features --out FILE.parquet` writes, and its
//! reader.
//!
//! One row per file: `path` (text), `sha256` (hex text, null on error), `features` (a
//! fixed-size list of `dim` float32 values, null on error) and `error` (the one-line error
//! naming the file, null on success). The schema's metadata holds the feature set's name
//! (`mallard.feature_set`) and its column names (`mallard.feature_names`, a JSON array), so
//! pyarrow, Polars, pandas or DuckDB read it with no knowledge of mallard.
//!
//! A Parquet file is only readable once its footer is written, so a run writes its rows in
//! parts of [`PART_ROWS`] files to `FILE.parquet.parts/` (each part renamed into place when
//! complete) and merges them into `FILE.parquet` at the end. A run that is killed leaves its
//! finished parts; the next run on the same output skips the files they hold, retries their
//! errors, and merges. Rows are in input order, earlier runs' rows first.

use arrow_array::{
    Array, ArrayRef, BooleanArray, FixedSizeListArray, Float32Array, RecordBatch, StringArray,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use mallard_datasets::features_out::{sibling, vector_record, OutLock};
use mallard_pefeatures::FeatureSet;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Schema metadata key: the feature set's name (`ember-v2`, ...).
pub const SET_KEY: &str = "mallard.feature_set";
/// Schema metadata key: the feature set's column names, a JSON array in vector order.
pub const NAMES_KEY: &str = "mallard.feature_names";
/// Files per part (and per row group): ember-v2's 2,381 floats make a part ~10 MB before
/// compression, and a killed run loses at most this many files' work.
pub const PART_ROWS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ParquetError {
    #[error(transparent)]
    Io(#[from] mallard_io::IoError),
    #[error(transparent)]
    Dataset(#[from] mallard_datasets::DatasetError),
    /// A Parquet file that cannot be read or written, with the reason.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = ParquetError> = std::result::Result<T, E>;

fn file_err(path: &Path, e: impl std::fmt::Display) -> ParquetError {
    ParquetError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn io(path: &Path, e: std::io::Error) -> ParquetError {
    ParquetError::Io(mallard_io::IoError::io(path, e))
}

/// Runs `f` on a file we did not necessarily write: a panic in the Parquet decoder becomes an
/// error naming the file instead of ending the run.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(file_err(path, "the Parquet reader failed on this file")))
}

/// One row: a file's features, or the error that kept it from having them.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: String,
    pub sha256: Option<String>,
    pub features: Option<Vec<f32>>,
    pub error: Option<String>,
}

/// The Arrow schema of a features file of `set`.
pub fn schema(set: FeatureSet) -> SchemaRef {
    let names = mallard_pefeatures::names(set);
    let meta = HashMap::from([
        (SET_KEY.to_string(), set.name().to_string()),
        (
            NAMES_KEY.to_string(),
            serde_json::Value::from(names).to_string(),
        ),
    ]);
    Arc::new(Schema::new_with_metadata(fields(set.dim()), meta))
}

fn item() -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Float32, false))
}

fn fields(dim: usize) -> Vec<Field> {
    vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("sha256", DataType::Utf8, true),
        Field::new(
            "features",
            DataType::FixedSizeList(item(), dim as i32),
            true,
        ),
        Field::new("error", DataType::Utf8, true),
    ]
}

/// Rows as one record batch of `set`'s schema.
pub fn batch(set: FeatureSet, rows: &[Row]) -> Result<RecordBatch> {
    batch_of(&schema(set), set, rows)
}

/// [`batch`] with the schema already built (it holds the set's 2,381+ column names).
fn batch_of(schema: &SchemaRef, set: FeatureSet, rows: &[Row]) -> Result<RecordBatch> {
    let dim = set.dim();
    let mut values = Vec::with_capacity(rows.len() * dim);
    for r in rows {
        match &r.features {
            Some(v) if v.len() == dim => values.extend_from_slice(v),
            Some(v) => {
                return Err(ParquetError::Invalid(format!(
                    "{}: {} values, expected {dim} for {set}",
                    r.path,
                    v.len()
                )))
            }
            // A null list still owns its slots in the child array.
            None => values.resize(values.len() + dim, 0.0),
        }
    }
    let valid = NullBuffer::from(
        rows.iter()
            .map(|r| r.features.is_some())
            .collect::<Vec<_>>(),
    );
    let list = FixedSizeListArray::try_new(
        item(),
        dim as i32,
        Arc::new(Float32Array::from(values)),
        Some(valid),
    )
    .map_err(|e| ParquetError::Invalid(e.to_string()))?;
    let text = |f: &dyn Fn(&Row) -> Option<&str>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<StringArray>())
    };
    let columns = vec![
        text(&|r| Some(r.path.as_str())),
        text(&|r| r.sha256.as_deref()),
        Arc::new(list) as ArrayRef,
        text(&|r| r.error.as_deref()),
    ];
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| ParquetError::Invalid(e.to_string()))
}

/// The feature set of a features file, checked against our schema (column names and types).
fn check_schema(path: &Path, s: &Schema, want: Option<FeatureSet>) -> Result<FeatureSet> {
    let not_ours = |why: String| file_err(path, format!("not a mallard features file ({why})"));
    let name = s
        .metadata()
        .get(SET_KEY)
        .ok_or_else(|| not_ours(format!("no {SET_KEY} in its schema metadata")))?;
    let set: FeatureSet = name
        .parse()
        .map_err(|_| not_ours(format!("unknown feature set {name:?}")))?;
    let got: Vec<(&str, &DataType)> = s
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    let expect = fields(set.dim());
    let expect: Vec<(&str, &DataType)> = expect
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    if got != expect {
        return Err(not_ours(format!(
            "columns {:?}, expected path, sha256, features ({} float32), error",
            got.iter().map(|c| c.0).collect::<Vec<_>>(),
            set.dim()
        )));
    }
    if let Some(w) = want.filter(|w| *w != set) {
        return Err(file_err(path, format!("features of {set}, not {w}")));
    }
    Ok(set)
}

fn open_builder(
    path: &Path,
    want: Option<FeatureSet>,
) -> Result<(FeatureSet, ParquetRecordBatchReaderBuilder<File>)> {
    let (f, _) = mallard_io::open_regular(path)?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| file_err(path, e))?;
    let set = check_schema(path, b.schema(), want)?;
    Ok((set, b))
}

/// Calls `f` with each record batch of a features file (every column), in file order.
pub fn for_each_batch(
    path: &Path,
    want: Option<FeatureSet>,
    f: &mut dyn FnMut(RecordBatch) -> Result<()>,
) -> Result<FeatureSet> {
    guarded(path, || {
        let (set, b) = open_builder(path, want)?;
        for batch in b
            .with_batch_size(PART_ROWS)
            .build()
            .map_err(|e| file_err(path, e))?
        {
            f(batch.map_err(|e| file_err(path, e))?)?;
        }
        Ok(set)
    })
}

/// Every row of a features file, with its feature set.
pub fn read_rows(path: &Path) -> Result<(FeatureSet, Vec<Row>)> {
    let mut rows = Vec::new();
    let set = for_each_batch(path, None, &mut |b| {
        rows.extend(rows_of(path, &b)?);
        Ok(())
    })?;
    Ok((set, rows))
}

fn text_column<'a>(path: &Path, b: &'a RecordBatch, i: usize) -> Result<&'a StringArray> {
    b.column(i)
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| file_err(path, format!("column {i} is not text")))
}

fn rows_of(path: &Path, b: &RecordBatch) -> Result<Vec<Row>> {
    let (p, sha, err) = (
        text_column(path, b, 0)?,
        text_column(path, b, 1)?,
        text_column(path, b, 3)?,
    );
    let list = b
        .column(2)
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(|| file_err(path, "column features is not a fixed-size list"))?;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| file_err(path, "features are not float32"))?;
    let dim = list.value_length() as usize;
    let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    Ok((0..b.num_rows())
        .map(|i| {
            let at = (list.offset() + i) * dim;
            Row {
                path: p.value(i).to_string(),
                sha256: opt(sha, i),
                features: list
                    .is_valid(i)
                    .then(|| values.values()[at..at + dim].to_vec()),
                error: opt(err, i),
            }
        })
        .collect())
}

/// Paths of the rows without an error (read from the path and error columns only).
fn done_paths(path: &Path, set: FeatureSet, done: &mut HashSet<String>) -> Result<usize> {
    guarded(path, || {
        let (_, b) = open_builder(path, Some(set))?;
        let mask = ProjectionMask::roots(b.parquet_schema(), [0, 3]);
        let mut rows = 0;
        let reader = b
            .with_projection(mask)
            .with_batch_size(PART_ROWS)
            .build()
            .map_err(|e| file_err(path, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| file_err(path, e))?;
            let (p, err) = (text_column(path, &batch, 0)?, text_column(path, &batch, 1)?);
            for i in 0..batch.num_rows() {
                if err.is_null(i) {
                    done.insert(p.value(i).to_string());
                }
            }
            rows += batch.num_rows();
        }
        Ok(rows)
    })
}

fn writer(path: &Path, schema: &SchemaRef) -> Result<ArrowWriter<File>> {
    let f = File::create(path).map_err(|e| io(path, e))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(PART_ROWS))
        .build();
    ArrowWriter::try_new(f, schema.clone(), Some(props)).map_err(|e| file_err(path, e))
}

/// A resumable Parquet output, locked against a second run (see the module's docs).
pub struct ParquetSink {
    out: PathBuf,
    parts: PathBuf,
    set: FeatureSet,
    schema: SchemaRef,
    /// Paths the output (or an interrupted run's parts) already holds features for.
    pub done: HashSet<String>,
    /// The earlier output and earlier runs' parts: their error rows are dropped (retried).
    earlier: Vec<PathBuf>,
    /// This run's parts, in order.
    mine: Vec<PathBuf>,
    pending: Vec<Row>,
    part_rows: usize,
    run: u128,
    _lock: OutLock,
}

fn is_part(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("part-") && (n.ends_with(".parquet") || n.ends_with(".tmp")))
}

impl ParquetSink {
    /// Opens `out` for `set`: locked, resumed from an earlier output and an interrupted run's
    /// parts unless `force` starts afresh. An existing file that is not a features file of
    /// `set` is refused. `notes` says what was resumed or dropped.
    pub fn open(out: &Path, set: FeatureSet, force: bool, notes: &mut Vec<String>) -> Result<Self> {
        let lock = OutLock::acquire(out)?;
        let parts = sibling(out, ".parts");
        let mut sink = ParquetSink {
            out: out.to_path_buf(),
            parts: parts.clone(),
            set,
            schema: schema(set),
            done: HashSet::new(),
            earlier: Vec::new(),
            mine: Vec::new(),
            pending: Vec::new(),
            part_rows: PART_ROWS,
            run: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis()),
            _lock: lock,
        };
        let exists = |p: &Path| std::fs::symlink_metadata(p).is_ok();
        if force {
            if exists(out) {
                std::fs::remove_file(out).map_err(|e| io(out, e))?;
            }
            sink.clear_parts()?;
        }
        if exists(out) {
            done_paths(out, set, &mut sink.done).map_err(|e| {
                ParquetError::Invalid(format!(
                    "{e}; refusing to write over it: give another --out, or --force to start it afresh"
                ))
            })?;
            sink.earlier.push(out.to_path_buf());
        }
        if exists(&parts) {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&parts)
                .map_err(|e| io(&parts, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_part(p))
                .collect();
            found.sort();
            let mut kept = 0;
            for p in found {
                let complete = p.extension().is_some_and(|x| x == "parquet");
                match complete.then(|| done_paths(&p, set, &mut sink.done)) {
                    Some(Ok(_)) => {
                        sink.earlier.push(p);
                        kept += 1;
                    }
                    // A part cut by a crash (never renamed into place) or unreadable: its
                    // files are done again.
                    why => {
                        if let Some(Err(e)) = why {
                            notes.push(format!("dropped a part that cannot be read: {e}"));
                        }
                        std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
                    }
                }
            }
            if kept > 0 {
                notes.push(format!(
                    "{}: resuming {kept} parts of an interrupted run",
                    parts.display()
                ));
            }
        } else {
            std::fs::create_dir(&parts).map_err(|e| io(&parts, e))?;
        }
        Ok(sink)
    }

    /// Files per part instead of [`PART_ROWS`] (at least 1).
    pub fn with_part_rows(mut self, n: usize) -> Self {
        self.part_rows = n.max(1);
        self
    }

    /// Removes our part files and the parts folder (nothing else in it is touched).
    fn clear_parts(&self) -> Result<()> {
        if let Ok(rd) = std::fs::read_dir(&self.parts) {
            for p in rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_part(p))
            {
                std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
            }
            // Left in place if someone put other files there.
            let _ = std::fs::remove_dir(&self.parts);
        }
        Ok(())
    }

    /// An error row for an input that could not be walked or read.
    pub fn error(&mut self, path: &Path, error: &str) -> Result<()> {
        self.push(Row {
            path: path.display().to_string(),
            sha256: None,
            features: None,
            error: Some(error.to_string()),
        })
    }

    fn push(&mut self, row: Row) -> Result<()> {
        self.pending.push(row);
        if self.pending.len() >= self.part_rows {
            self.flush_part()?;
        }
        Ok(())
    }

    fn flush_part(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let name = format!("part-{}-{:06}", self.run, self.mine.len());
        let tmp = self.parts.join(format!("{name}.tmp"));
        let done = self.parts.join(format!("{name}.parquet"));
        let mut w = writer(&tmp, &self.schema)?;
        w.write(&batch_of(&self.schema, self.set, &self.pending)?)
            .map_err(|e| file_err(&tmp, e))?;
        w.close().map_err(|e| file_err(&tmp, e))?;
        std::fs::rename(&tmp, &done).map_err(|e| io(&done, e))?;
        self.mine.push(done);
        self.pending.clear();
        Ok(())
    }

    /// Extracts features of every file on all rayon threads, in input order; `on_chunk(files)`
    /// after each chunk. Returns (error rows, bytes read).
    pub fn write_all(
        &mut self,
        files: &[&PathBuf],
        max_bytes: usize,
        on_chunk: &mut dyn FnMut(usize),
    ) -> Result<(usize, u64)> {
        use rayon::prelude::*;
        let (mut errors, mut bytes) = (0usize, 0u64);
        for chunk in files.chunks(256) {
            let recs: Vec<_> = chunk
                .par_iter()
                .map(|p| vector_record(p, self.set, max_bytes))
                .collect();
            for r in recs {
                bytes += r.bytes;
                let row = match r.result {
                    Ok((sha, v)) => Row {
                        path: r.path,
                        sha256: Some(sha),
                        features: Some(v),
                        error: None,
                    },
                    Err(e) => {
                        errors += 1;
                        Row {
                            path: r.path,
                            sha256: None,
                            features: None,
                            error: Some(e),
                        }
                    }
                };
                self.push(row)?;
            }
            on_chunk(chunk.len());
        }
        Ok((errors, bytes))
    }

    /// Writes the output: the earlier rows without errors, then this run's rows; removes the
    /// parts. Returns the number of rows written.
    pub fn finish(mut self) -> Result<usize> {
        self.flush_part()?;
        let tmp = sibling(&self.out, ".partial");
        let mut w = writer(&tmp, &self.schema)?;
        let mut rows = 0;
        let sources = self.earlier.iter().map(|p| (p, true));
        for (src, drop_errors) in sources.chain(self.mine.iter().map(|p| (p, false))) {
            for_each_batch(src, Some(self.set), &mut |b| {
                let b = if drop_errors {
                    let err = b.column(3);
                    let keep: BooleanArray =
                        (0..b.num_rows()).map(|i| Some(err.is_null(i))).collect();
                    arrow_select::filter::filter_record_batch(&b, &keep)
                        .map_err(|e| file_err(src, e))?
                } else {
                    b
                };
                rows += b.num_rows();
                // Our schema, metadata included, whatever the source's reader attached.
                let b = RecordBatch::try_new(self.schema.clone(), b.columns().to_vec())
                    .map_err(|e| file_err(src, e))?;
                w.write(&b).map_err(|e| file_err(&tmp, e))
            })?;
        }
        w.close().map_err(|e| file_err(&tmp, e))?;
        std::fs::rename(&tmp, &self.out).map_err(|e| io(&self.out, e))?;
        self.clear_parts()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests;
