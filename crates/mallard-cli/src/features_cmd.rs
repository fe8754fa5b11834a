//! `mallard features`: static PE features as JSON lines.

use crate::Global;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_pefeatures::{ember_raw, extract, read_capped, FeatureSet};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args)]
pub struct FeaturesArgs {
    /// PE files, or folders searched recursively (there, files not starting with "MZ" are skipped).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Feature set: ember-v2 (2,381 floats), pe-header (ClaMP's columns) or saxe-1024.
    #[arg(long, value_name = "NAME")]
    pub set: String,
    /// With ember-v2: EMBER's raw feature objects (its JSON schema) instead of vectors.
    #[arg(long)]
    pub raw: bool,
    /// JSON-lines output (default: stdout). An existing features output of the same set is
    /// resumed: files it already holds features for are skipped, its error records are
    /// retried. Any other existing file is refused (see --force). `OUT.lock` keeps a second
    /// run off the same file.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Start the output file afresh (overwriting it) instead of resuming it.
    #[arg(long)]
    pub force: bool,
    /// Refuse files larger than this many MiB (checked before reading).
    #[arg(long, default_value_t = (mallard_io::Caps::DEFAULT_MAX_PE_BYTES >> 20) as usize, value_name = "MIB")]
    pub max_size: usize,
    /// Deepest folder nesting searched below a folder given.
    #[arg(long, value_name = "N", default_value_t = mallard_io::Caps::default().max_walk_depth)]
    pub max_depth: usize,
    /// Print the feature names of the set, one per line, and exit.
    #[arg(long)]
    pub names: bool,
}

pub fn run(a: FeaturesArgs, g: &Global) -> Result<ExitCode> {
    let set: FeatureSet = a.set.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.names {
        for n in mallard_pefeatures::names(set) {
            println!("{n}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.raw && set != FeatureSet::EmberV2 {
        bail!("--raw is only defined for ember-v2 (EMBER's raw objects)");
    }
    let (files, input_errors, skipped_links) = expand(&a.paths, a.max_depth);
    if !g.quiet {
        for (_, e) in &input_errors {
            eprintln!("error: {e}");
        }
        if skipped_links > 0 {
            eprintln!("note: {skipped_links} symbolic links inside folders were not followed");
        }
    }

    // Held until this function returns: a second run on the same --out is refused.
    let _lock = match &a.out {
        Some(p) => Some(OutLock::acquire(p)?),
        None => None,
    };
    let want = Expect {
        set,
        raw: a.raw,
        dim: set.dim(),
    };
    let (mut sink, done): (Box<dyn Write>, HashSet<String>) = match &a.out {
        Some(p) => {
            let done = prepare_out(p, &want, a.force, g.quiet)?;
            let f = std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .with_context(|| format!("writing {}", p.display()))?;
            (Box::new(std::io::BufWriter::new(f)), done)
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            HashSet::new(),
        ),
    };
    let todo: Vec<&PathBuf> = files
        .iter()
        .filter(|p| !done.contains(&p.display().to_string()))
        .collect();
    if !g.quiet && !done.is_empty() {
        eprintln!(
            "resuming: {} files already done, {} to go",
            files.len() - todo.len(),
            todo.len()
        );
    }

    let mut errors = 0usize;
    for (p, e) in &input_errors {
        let rec = serde_json::json!({ "path": p.display().to_string(), "error": e });
        writeln!(sink, "{rec}")?;
        errors += 1;
    }
    let bar = if !g.quiet && todo.len() > 1 && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(todo.len() as u64);
        b.set_style(
            ProgressStyle::with_template(
                "features {bar:30} {pos}/{len} {per_sec} [{elapsed}<{eta}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let max = a.max_size.saturating_mul(1 << 20);
    let mut bytes = 0u64;
    let t = std::time::Instant::now();
    // Chunks keep the output in input order while every core works.
    for chunk in todo.chunks(256) {
        let lines: Vec<(String, bool, u64)> =
            chunk.par_iter().map(|p| one(p, set, a.raw, max)).collect();
        for (line, ok, n) in lines {
            writeln!(sink, "{line}")?;
            errors += usize::from(!ok);
            bytes += n;
        }
        if let Some(b) = &bar {
            b.inc(chunk.len() as u64);
        }
    }
    sink.flush()?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !g.quiet {
        let s = t.elapsed().as_secs_f64();
        eprintln!(
            "{} files ({:.1} MB) in {:.2} s: {} errors; {:.0} MB/s",
            todo.len(),
            bytes as f64 / 1e6,
            s,
            errors,
            bytes as f64 / 1e6 / s.max(1e-9)
        );
    }
    Ok(if errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the records of this run look like; an existing --out must hold the same.
struct Expect {
    set: FeatureSet,
    raw: bool,
    dim: usize,
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
            if set.is_some_and(|s| s != want.set.name()) || vec.len() != want.dim {
                return Err(format!(
                    "features of another set ({}, {} values), not {} ({} values)",
                    set.unwrap_or("unnamed"),
                    vec.len(),
                    want.set,
                    want.dim
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
/// Error records are dropped too, so those files are retried.
fn prepare_out(out: &Path, want: &Expect, force: bool, quiet: bool) -> Result<HashSet<String>> {
    let mut done = HashSet::new();
    let name = out.display();
    let existing = match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => bail!("{name}: {e}"),
        Ok(_) if force => None,
        Ok(_) => Some(mallard_io::open_regular(out)?.0),
    };
    let tmp = sibling(out, ".partial");
    let mut w = std::io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?,
    );
    if let Some(f) = existing {
        let mut r = std::io::BufReader::new(f);
        let mut buf = Vec::new();
        let refuse = |line: usize, why: &str| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!(
                "{name} exists and is not a features output of this run (line {line}: {why}); \
                 refusing to write over it: give another --out, or --force to start it afresh"
            )
        };
        for n in 1.. {
            buf.clear();
            let got = (&mut r)
                .take(MAX_LINE + 1)
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {name}"))?;
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
                    w.write_all(body)?;
                    w.write_all(b"\n")?;
                    done.insert(p);
                }
                Ok(Rec::Error) => {}
                // A crash mid-write leaves a cut last line: drop it and go on.
                Err(_) if !complete => {
                    if !quiet {
                        eprintln!("note: {name}: dropped a cut last line (line {n})");
                    }
                }
                Err(why) => return Err(refuse(n, &why)),
            }
        }
    }
    w.flush()
        .with_context(|| format!("writing {}", tmp.display()))?;
    drop(w);
    std::fs::rename(&tmp, out).with_context(|| format!("writing {name}"))?;
    Ok(done)
}

/// `dir/NAME` + suffix beside `path`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// An exclusive `OUT.lock` beside --out, created with `create_new` and removed on drop, so
/// two runs cannot interleave their records in one file.
struct OutLock(PathBuf);

impl OutLock {
    fn acquire(out: &Path) -> Result<OutLock> {
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
                    bail!(
                        "{}: another `mallard features` run{} is writing it (lock file {}); \
                         wait for it to finish, or delete the lock file if no such run is going",
                        out.display(),
                        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                        lock.display()
                    );
                }
                Err(e) => bail!("{}: {e}", lock.display()),
            }
        }
        bail!("{}: could not take the lock", lock.display())
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One output line for one file: (json, succeeded, bytes read).
fn one(path: &Path, set: FeatureSet, raw: bool, max: usize) -> (String, bool, u64) {
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
        return match ember_raw(&bytes) {
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Files as given; folders recursively through `mallard_io::walk` (links not followed,
/// depth capped), keeping files that start with "MZ". Returns the files, one error per
/// path that could not be walked or read, and the number of links skipped.
#[allow(clippy::type_complexity)]
fn expand(inputs: &[PathBuf], max_depth: usize) -> (Vec<PathBuf>, Vec<(PathBuf, String)>, usize) {
    let head_errors = std::cell::RefCell::new(Vec::new());
    let keep = |p: &Path| match mallard_io::starts_like_pe(p) {
        Ok(pe) => pe,
        Err(e) => {
            head_errors
                .borrow_mut()
                .push((p.to_path_buf(), e.to_string()));
            false
        }
    };
    let opts = mallard_io::WalkOptions {
        follow_symlinks: false,
        max_depth,
    };
    let w = mallard_io::walk(inputs, &opts, &keep);
    let mut errors = w.errors;
    errors.extend(head_errors.into_inner());
    (w.files, errors, w.skipped_links)
}
