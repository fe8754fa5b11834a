//! `mallard features`: static PE features as JSON lines (`mallard_datasets::features_out`) or
//! Parquet (`mallard_parquet`).

use crate::Global;
use anyhow::{bail, Result};
use clap::Args;
use mallard_datasets::features_out::{expand, Expect, Sink};
use mallard_parquet::ParquetSink;
use mallard_pefeatures::FeatureSet;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct FeaturesArgs {
    /// PE files, or folders searched recursively (there, files not starting with "MZ" are skipped).
    #[arg(required_unless_present = "names", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Feature set: ember-v2 (2,381 floats), ember-v2-hardened (the same columns of the file
    /// without overlay, DOS stub, slack and free header fields: what the built-in PE model
    /// reads), ember-v3 (EMBER2024's 2,568 floats), pe-header (ClaMP's columns), saxe-1024, opcodes (mnemonic n-grams of the x86/x64
    /// code reached from the entry points), image (byte-plot texture) or dotnet (a .NET
    /// assembly's metadata: table sizes, hashed type and member references, P/Invoke imports
    /// and user strings; zeros for other files).
    #[arg(long, value_name = "NAME")]
    pub set: String,
    /// With ember-v2, ember-v2-hardened or ember-v3: EMBER's raw feature objects (its JSON
    /// schema; EMBER2024's for ember-v3) instead of vectors.
    #[arg(long)]
    pub raw: bool,
    /// Output file (default: JSON lines on stdout). A name ending in `.parquet` writes Parquet:
    /// columns path, sha256, features (fixed-size list of float32) and error, the set's name
    /// and column names in the schema metadata; rows go to `OUT.parts/` in parts of 1,024
    /// files and are merged at the end. An existing features output of the same set (and an
    /// interrupted run's parts) is resumed: files it already holds features for are skipped,
    /// its error records are retried. Any other existing file is refused (see --force).
    /// `OUT.lock` keeps a second run off the same file.
    #[arg(long, value_name = "FILE.jsonl|FILE.parquet")]
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

/// Where records go: JSON lines (a file or stdout) or a Parquet file.
enum Out {
    Lines(Sink),
    Parquet(ParquetSink),
}

pub fn run(a: FeaturesArgs, g: &Global) -> Result<ExitCode> {
    let set: FeatureSet = a.set.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.names {
        mallard_pefeatures::names(set).iter().for_each(|n| println!("{n}"));
        return Ok(ExitCode::SUCCESS);
    }
    if a.raw && !set.has_raw() {
        bail!("--raw is only defined for ember-v2, ember-v2-hardened and ember-v3 (EMBER's raw objects)");
    }
    let inputs = expand(&a.paths, a.max_depth);
    if !g.quiet {
        inputs.errors.iter().for_each(|(_, e)| eprintln!("error: {e}"));
        if inputs.skipped_links > 0 {
            let n = inputs.skipped_links;
            eprintln!("note: {n} symbolic links inside folders were not followed");
        }
    }
    let parquet = a
        .out
        .as_ref()
        .and_then(|p| p.extension())
        .is_some_and(|x| x.eq_ignore_ascii_case("parquet"));
    if parquet && a.raw {
        bail!("--raw writes EMBER's JSON objects, as JSON lines: give --out FILE.jsonl");
    }
    let want = Expect { set, raw: a.raw };
    let mut notes = Vec::new();
    let mut sink = match (&a.out, parquet) {
        (Some(p), true) => Out::Parquet(ParquetSink::open(p, set, a.force, &mut notes)?),
        (Some(p), false) => Out::Lines(Sink::file(p, &want, a.force, &mut notes)?),
        (None, _) => Out::Lines(Sink::stdout()),
    };
    if !g.quiet {
        notes.iter().for_each(|n| eprintln!("note: {n}"));
    }
    let done = match &sink {
        Out::Lines(s) => &s.done,
        Out::Parquet(s) => &s.done,
    };
    let todo: Vec<&PathBuf> =
        inputs.files.iter().filter(|p| !done.contains(&p.display().to_string())).collect();
    if !g.quiet && !done.is_empty() {
        let (done, left) = (inputs.files.len() - todo.len(), todo.len());
        eprintln!("resuming: {done} files already done, {left} to go");
    }
    for (p, e) in &inputs.errors {
        match &mut sink {
            Out::Lines(s) => s.error(p, e)?,
            Out::Parquet(s) => s.error(p, e)?,
        }
    }
    let bar = crate::ui::bar(
        g.quiet,
        todo.len(),
        "features {bar:30} {pos}/{len} {per_sec} [{elapsed}<{eta}]",
    );
    let t = std::time::Instant::now();
    let max = a.max_size.saturating_mul(1 << 20);
    let mut tick = |n: usize| bar.iter().for_each(|b| b.inc(n as u64));
    let (failed, bytes) = match sink {
        Out::Lines(mut s) => s.write_all(&todo, &want, max, &mut tick)?,
        Out::Parquet(mut s) => {
            let r = s.write_all(&todo, max, &mut tick)?;
            s.finish()?;
            r
        }
    };
    bar.iter().for_each(|b| b.finish_and_clear());
    let errors = failed + inputs.errors.len();
    if !g.quiet {
        let (s, mb) = (t.elapsed().as_secs_f64(), bytes as f64 / 1e6);
        let rate = mb / s.max(1e-9);
        eprintln!("{} files ({mb:.1} MB) in {s:.2} s: {errors} errors; {rate:.0} MB/s", todo.len());
    }
    Ok(ExitCode::from(if errors > 0 { 2 } else { 0 }))
}
