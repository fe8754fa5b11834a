//! Writing a features dataset (`mallard features --out`): one JSON line per PE file, an
//! output that resumes where a run stopped, a lock against two runs on one file, and the
//! expansion of inputs into PE files through the one walker.

use crate::{DatasetError, Result};
use mallard_pefeatures::{ember_raw_of, extract, read_capped, FeatureSet};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

fn fail(msg: impl Into<String>) -> DatasetError {
    DatasetError::Invalid(msg.into())
}

fn io(path: &Path, e: std::io::Error) -> DatasetError {
    DatasetError::Io(mallard_io::IoError::io(path, e))
}

/// What the records of this run look like; an existing --out must hold the same.
pub struct Expect {
    pub set: FeatureSet,
    pub raw: bool,
}

/// Longest line read back from an existing --out (an EMBER raw object is ~100 KB): a
/// longer one means the file is not a features output.
const MAX_LINE: u64 = 64 << 20;

/// What one line of an existing --out holds.
enum Rec {
    Error,
    Done(String),
}

/// Checks one complete line of an existing --out against this run; `Err` says why it is
/// not a record of this run.
fn classify(line: &[u8], want: &Expect) -> Result<Rec, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8 text".to_string())?;
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|_| "not a JSON record".to_string())?;
    let path = v
        .get("path")
        .and_then(|p| p.as_str())
        .ok_or("a record without a \"path\"")?;
    if v.get("error").is_some() {
        return Ok(Rec::Error);
    }
    match (v.get("vector").and_then(|x| x.as_array()), want.raw) {
        (Some(vec), false) => {
            let set = v.get("set").and_then(|s| s.as_str());
            if set.is_some_and(|s| s != want.set.name()) || vec.len() != want.set.dim() {
                return Err(format!(
                    "features of another set ({}, {} values), not {} ({} values)",
                    set.unwrap_or("unnamed"),
                    vec.len(),
                    want.set,
                    want.set.dim()
                ));
            }
        }
        (Some(_), true) => return Err("feature vectors, not EMBER raw objects (--raw)".into()),
        (None, true) if v.get("histogram").is_some() => {}
        (None, false) if v.get("histogram").is_some() => {
            return Err("EMBER raw objects (--raw), not feature vectors".into())
        }
        (None, _) => return Err("a record without features".into()),
    }
    Ok(Rec::Done(path.to_string()))
}

/// Readies --out for appending and returns the paths it already holds features for.
/// An existing file is resumed only if every complete line is a record of this run
/// (same set, same vector length); a cut last line (a crash mid-write) is dropped.
/// Error records are dropped too, so those files are retried. `notes` says what was dropped.
pub fn prepare_out(
    out: &Path,
    want: &Expect,
    force: bool,
    notes: &mut Vec<String>,
) -> Result<HashSet<String>> {
    let mut done = HashSet::new();
    let name = out.display();
    let existing = match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(out, e)),
        Ok(_) if force => None,
        Ok(_) => Some(mallard_io::open_regular(out)?.0),
    };
    let tmp = sibling(out, ".partial");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?);
    if let Some(f) = existing {
        let mut r = std::io::BufReader::new(f);
        let mut buf = Vec::new();
        let refuse = |line: usize, why: &str| {
            let _ = std::fs::remove_file(&tmp);
            fail(format!(
                "{name} exists and is not a features output of this run (line {line}: {why}); \
                 refusing to write over it: give another --out, or --force to start it afresh"
            ))
        };
        for n in 1.. {
            buf.clear();
            let got = (&mut r)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| io(out, e))?;
            if got == 0 {
                break;
            }
            let complete = buf.last() == Some(&b'\n');
            if !complete && (got as u64) > MAX_LINE {
                return Err(refuse(n, "a line longer than 64 MiB"));
            }
            let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match classify(body, want) {
                Ok(Rec::Done(p)) => {
                    w.write_all(body).map_err(|e| io(&tmp, e))?;
                    w.write_all(b"\n").map_err(|e| io(&tmp, e))?;
                    done.insert(p);
                }
                Ok(Rec::Error) => {}
                // A crash mid-write leaves a cut last line: drop it and go on.
                Err(_) if !complete => {
                    notes.push(format!("{name}: dropped a cut last line (line {n})"));
                }
                Err(why) => return Err(refuse(n, &why)),
            }
        }
    }
    w.flush().map_err(|e| io(&tmp, e))?;
    drop(w);
    std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
    Ok(done)
}

/// `dir/NAME` + suffix beside `path`.
pub fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// An exclusive `OUT.lock` beside --out, created with `create_new` and removed on drop, so
/// two runs cannot interleave their records in one file.
pub struct OutLock(PathBuf);

impl OutLock {
    pub fn acquire(out: &Path) -> Result<OutLock> {
        let lock = sibling(out, ".lock");
        for attempt in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                Ok(mut f) => {
                    let _ = writeln!(f, "{}", std::process::id());
                    return Ok(OutLock(lock));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = mallard_io::read_capped(&lock, 64)
                        .ok()
                        .and_then(|b| String::from_utf8(b).ok())
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    // A lock left by a run that was killed: its process is gone.
                    let gone = pid.is_some_and(|p| {
                        Path::new("/proc/self").exists()
                            && !Path::new(&format!("/proc/{p}")).exists()
                    });
                    if gone && attempt == 0 {
                        let _ = std::fs::remove_file(&lock);
                        continue;
                    }
                    return Err(fail(format!(
                        "{}: another `mallard features` run{} is writing it (lock file {}); \
                         wait for it to finish, or delete the lock file if no such run is going",
                        out.display(),
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                        lock.display()
                    )));
                }
                Err(e) => return Err(io(&lock, e)),
            }
        }
        Err(fail(format!("{}: could not take the lock", lock.display())))
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One output line for one file: (json, succeeded, bytes read).
pub fn record(path: &Path, set: FeatureSet, raw: bool, max: usize) -> (String, bool, u64) {
    let p = path.display().to_string();
    let err = |e: String| {
        (
            serde_json::json!({ "path": p, "error": e }).to_string(),
            false,
            0,
        )
    };
    let bytes = match read_capped(path, max) {
        Ok(b) => b,
        Err(e) => return err(e.to_string()),
    };
    let n = bytes.len() as u64;
    if raw {
        return match ember_raw_of(set, &bytes) {
            Ok(mut v) => {
                if let Some(o) = v.as_object_mut() {
                    o.insert("path".into(), p.clone().into());
                }
                (v.to_string(), true, n)
            }
            Err(e) => err(format!("{p}: {e}")),
        };
    }
    match extract(set, &bytes) {
        Ok(vector) => {
            let sha = hex(&Sha256::digest(&bytes));
            (
                serde_json::json!({ "path": p, "set": set.name(), "sha256": sha, "vector": vector }).to_string(),
                true,
                n,
            )
        }
        Err(e) => err(format!("{p}: {e}")),
    }
}

/// A file's feature vector as one record holds it, for writers of other formats (Parquet).
pub struct VectorRecord {
    pub path: String,
    /// `Ok((sha256 hex, vector))`, or the one-line error naming the file.
    pub result: std::result::Result<(String, Vec<f32>), String>,
    /// Bytes read (0 when the file could not be read).
    pub bytes: u64,
}

/// The vector record of one file: what [`record`] writes as JSON, as values.
pub fn vector_record(path: &Path, set: FeatureSet, max: usize) -> VectorRecord {
    let p = path.display().to_string();
    let bytes = match read_capped(path, max) {
        Ok(b) => b,
        Err(e) => {
            return VectorRecord {
                path: p,
                result: Err(e.to_string()),
                bytes: 0,
            }
        }
    };
    let result = extract(set, &bytes)
        .map(|v| (hex(&Sha256::digest(&bytes)), v))
        .map_err(|e| format!("{p}: {e}"));
    VectorRecord {
        path: p,
        result,
        bytes: bytes.len() as u64,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where a run's records go: stdout, or a resumable, locked --out file.
pub struct Sink {
    out: Box<dyn Write>,
    /// Paths the output already holds features for (skipped by this run).
    pub done: HashSet<String>,
    _lock: Option<OutLock>,
}

impl Sink {
    /// Standard output: nothing done yet.
    pub fn stdout() -> Sink {
        Sink {
            out: Box::new(std::io::BufWriter::new(std::io::stdout())),
            done: HashSet::new(),
            _lock: None,
        }
    }

    /// `out`, locked for this run (a second run on it is refused), resumed as
    /// [`prepare_out`] says unless `force` starts it afresh.
    pub fn file(out: &Path, want: &Expect, force: bool, notes: &mut Vec<String>) -> Result<Sink> {
        let lock = OutLock::acquire(out)?;
        let done = prepare_out(out, want, force, notes)?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(out)
            .map_err(|e| io(out, e))?;
        Ok(Sink {
            out: Box::new(std::io::BufWriter::new(f)),
            done,
            _lock: Some(lock),
        })
    }

    /// An error record for an input that could not be walked or read.
    pub fn error(&mut self, path: &Path, error: &str) -> std::io::Result<()> {
        let rec = serde_json::json!({ "path": path.display().to_string(), "error": error });
        writeln!(self.out, "{rec}")
    }

    /// Extracts `want` from every file on all rayon threads, writing records in input
    /// order; `on_chunk(files)` after each chunk. Returns (error records, bytes read).
    pub fn write_all(
        &mut self,
        files: &[&PathBuf],
        want: &Expect,
        max_bytes: usize,
        on_chunk: &mut dyn FnMut(usize),
    ) -> std::io::Result<(usize, u64)> {
        use rayon::prelude::*;
        let (mut errors, mut bytes) = (0usize, 0u64);
        // Chunks keep the output in input order while every core works.
        for chunk in files.chunks(256) {
            let lines: Vec<(String, bool, u64)> = chunk
                .par_iter()
                .map(|p| record(p, want.set, want.raw, max_bytes))
                .collect();
            for (line, ok, n) in lines {
                writeln!(self.out, "{line}")?;
                errors += usize::from(!ok);
                bytes += n;
            }
            on_chunk(chunk.len());
        }
        self.out.flush()?;
        Ok((errors, bytes))
    }
}

// The inputs of `mallard features` and of the Python package's pipelines: one walker.
pub use mallard_io::walk::{pe_files as expand, PeFiles as PeInputs};

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mallard-fo-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn resume_keeps_records_retries_errors_drops_a_cut_line_and_refuses_strangers() {
        let d = tmp("resume");
        let out = d.join("f.jsonl");
        let want = Expect {
            set: FeatureSet::PeHeader,
            raw: false,
        };
        let dim = FeatureSet::PeHeader.dim();
        let vector = vec![0.0; dim];
        let ok = serde_json::json!({ "path": "a.exe", "set": "pe-header", "vector": vector });
        let err = serde_json::json!({ "path": "b.exe", "error": "broken" });
        std::fs::write(&out, format!("{ok}\n{err}\n{{\"path\": \"c.e")).unwrap();
        let mut notes = Vec::new();
        let done = prepare_out(&out, &want, false, &mut notes).unwrap();
        assert_eq!(done, HashSet::from(["a.exe".to_string()]));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{ok}\n"));
        // another set's vectors are refused, and the file is left as it was
        let other = Expect {
            set: FeatureSet::EmberV2,
            raw: false,
        };
        let e = prepare_out(&out, &other, false, &mut notes).unwrap_err();
        assert!(e.to_string().contains("another set"), "{e}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("{ok}\n"));
        // an unrelated file is refused unless forced
        std::fs::write(&out, "hello\n").unwrap();
        assert!(prepare_out(&out, &want, false, &mut notes).is_err());
        assert!(prepare_out(&out, &want, true, &mut notes)
            .unwrap()
            .is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_second_lock_on_one_output_is_refused_until_the_first_is_dropped() {
        let d = tmp("lock");
        let out = d.join("f.jsonl");
        let first = OutLock::acquire(&out).unwrap();
        let e = OutLock::acquire(&out)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("another `mallard features` run"), "{e}");
        drop(first);
        assert!(OutLock::acquire(&out).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
