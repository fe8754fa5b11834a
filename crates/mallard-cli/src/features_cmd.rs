//! `mallard features`: static PE features as JSON lines.

use crate::Global;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_pefeatures::{ember_raw, extract, read_capped, FeatureSet};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal, Write};
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
    /// JSON-lines output (default: stdout). An existing file is resumed: files it already
    /// holds features for are skipped, its error records are retried.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,
    /// Start the output file afresh instead of resuming it.
    #[arg(long)]
    pub force: bool,
    /// Refuse files larger than this many MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB")]
    pub max_size: usize,
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
    let files = expand(&a.paths)?;

    // Resume: keep the records that succeeded, retry the errors.
    let mut done: HashSet<String> = HashSet::new();
    let mut kept: Vec<String> = Vec::new();
    if let Some(out) = &a.out {
        if out.exists() && !a.force {
            let f =
                std::fs::File::open(out).with_context(|| format!("reading {}", out.display()))?;
            for line in std::io::BufReader::new(f).lines() {
                let line = line.with_context(|| format!("reading {}", out.display()))?;
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                if v.get("error").is_none() {
                    if let Some(p) = v.get("path").and_then(|p| p.as_str()) {
                        done.insert(p.to_string());
                        kept.push(line);
                    }
                }
            }
        }
    }
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

    let mut sink: Box<dyn Write> = match &a.out {
        Some(p) => {
            // Rewrite the kept records, then append: a crash mid-run still leaves valid lines.
            let tmp = p.with_extension("jsonl.partial");
            let mut f = std::io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("writing {}", tmp.display()))?,
            );
            for l in &kept {
                writeln!(f, "{l}")?;
            }
            f.flush()?;
            drop(f);
            std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
            Box::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(p)
                    .with_context(|| format!("writing {}", p.display()))?,
            ))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };

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
    let mut errors = 0usize;
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
                serde_json::json!({ "path": p, "sha256": sha, "vector": vector }).to_string(),
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

/// Files as given; folders recursively, keeping files that start with "MZ".
fn expand(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, out)?;
        } else if meta.is_file() && starts_with_mz(&p) {
            out.push(p);
        }
    }
    Ok(())
}

fn starts_with_mz(p: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"MZ"
}
