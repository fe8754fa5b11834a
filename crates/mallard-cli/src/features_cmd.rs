//! `mallard features`: static PE features as JSON lines.

use crate::Global;
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_datasets::features_out::{expand, prepare_out, record, Expect, OutLock};
use mallard_pefeatures::FeatureSet;
use rayon::prelude::*;
use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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
    let inputs = expand(&a.paths, a.max_depth);
    let (files, input_errors, skipped_links) = (inputs.files, inputs.errors, inputs.skipped_links);
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
    let want = Expect { set, raw: a.raw };
    let (mut sink, done): (Box<dyn Write>, HashSet<String>) = match &a.out {
        Some(p) => {
            let mut notes = Vec::new();
            let done = prepare_out(p, &want, a.force, &mut notes)?;
            if !g.quiet {
                notes.iter().for_each(|n| eprintln!("note: {n}"));
            }
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
        let lines: Vec<(String, bool, u64)> = chunk
            .par_iter()
            .map(|p| record(p, set, a.raw, max))
            .collect();
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
