//! `mallard attack`: functionality-preserving edits of PE files against a PE model.

use anyhow::{Context, Result};
use mallard_experiment::attack::{attack_files, read_benign, strategy, AttackOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct AttackArgs {
    /// PE files, or folders of them (walked as `scan` walks them).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The PE model to attack (trees on a feature set, opcodes, MalConv, stack), or
    /// `builtin:pe`.
    #[arg(long, value_name = "FILE", default_value = "builtin:pe")]
    pub model: PathBuf,
    /// Model queries per file on its mutants.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub budget: usize,
    /// `greedy` keeps, each round, the action that lowered the score most; `random` applies
    /// random actions one after another.
    #[arg(long, default_value = "greedy")]
    pub strategy: String,
    /// A benign file whose bytes fill overlays, new sections, slack and DOS stubs (default:
    /// random bytes).
    #[arg(long, value_name = "FILE")]
    pub benign: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write each attacked file's final mutant here as NAME.mutant (never executed).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the JSON report (evasion rate, queries, actions, every file) here.
    #[arg(long, value_name = "OUT.json")]
    pub report: Option<PathBuf>,
    /// Draw the detected files' scores before and after the attack (SVG) here.
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
}

pub fn run(a: AttackArgs, g: &crate::Global) -> Result<()> {
    let caps = mallard_io::Caps::default();
    let model = mallard_scan::setup::load_full_model(&a.model, &caps)?;
    let benign = read_benign(a.benign.as_deref(), &caps)?;
    if let Some(d) = &a.out {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let files = pe_files(&a.paths, &caps);
    let opts = AttackOptions {
        budget: a.budget,
        strategy: strategy(&a.strategy)?,
        seed: a.seed,
        benign: &benign,
        max_bytes: caps.max_pe_bytes,
        out_dir: a.out.as_deref(),
    };
    let bar = crate::ui::bar(g.quiet, files.len(), "attacking {wide_bar} {pos}/{len} files");
    let report = attack_files(model.as_ref(), &files, &opts, &mut |f| {
        crate::ui::line(bar.as_ref(), &f.line());
        bar.iter().for_each(|b| b.inc(1));
    })?;
    bar.iter().for_each(|b| b.finish_and_clear());
    let errors = files.len() - report.counts().0;
    println!("{}: {}, {errors} errors", report.model, report.summary());
    if let Some(p) = &a.report {
        let json = serde_json::to_string_pretty(&report.to_json(&opts))?;
        std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.plot {
        std::fs::write(p, report.svg()).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The PE files of `paths` (folders walked by `mallard_io::walk::pe_files`); unreadable
/// paths are reported on stderr and left out.
pub fn pe_files(paths: &[PathBuf], caps: &mallard_io::Caps) -> Vec<PathBuf> {
    let found = mallard_io::walk::pe_files(paths, caps.max_walk_depth);
    found.errors.iter().for_each(|(_, e)| eprintln!("error: {e}"));
    found.files
}
