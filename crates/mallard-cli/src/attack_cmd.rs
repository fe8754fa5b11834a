//! `mallard attack`: functionality-preserving edits of PE files against a PE model.

use anyhow::{Context, Result};
use mallard_experiment::attack::{attack_files, strategy, AttackOptions};
use mallard_scan::{expand_paths, is_pe};
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
        let line = match &f.outcome {
            Ok(o) if !o.detected => format!("{}: not detected ({:.3})", f.path.display(), o.before),
            Ok(o) => format!(
                "{}: {:.3} -> {:.3} {} after {} queries [{}]",
                f.path.display(),
                o.before,
                o.after,
                if o.evaded { "EVADED" } else { "still detected" },
                o.queries,
                o.actions.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            ),
            Err(e) => format!("error: {e}"),
        };
        match &bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
            }
            None => eprintln!("{line}"),
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let (attacked, detected, evaded) = report.counts();
    let rate = if detected > 0 { evaded as f64 / detected as f64 } else { 0.0 };
    println!(
        "{}: {attacked} files attacked, {detected} detected, {evaded} evaded ({:.1}% of detected), {} errors",
        report.model,
        100.0 * rate,
        files.len() - attacked
    );
    if let Some(p) = &a.report {
        let json = serde_json::to_string_pretty(&report.to_json(&opts))?;
        std::fs::write(p, json + "\n").with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(p) = &a.plot {
        std::fs::write(p, report.svg()).with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(())
}

/// The benign donor file's bytes (empty without one: edits use random bytes).
pub fn read_benign(path: Option<&std::path::Path>, caps: &mallard_io::Caps) -> Result<Vec<u8>> {
    match path {
        Some(p) => mallard_io::read_capped(p, caps.max_pe_bytes)
            .with_context(|| format!("reading {}", p.display())),
        None => Ok(Vec::new()),
    }
}

/// The PE files of `paths` (folders walked as `scan` walks them); unreadable paths are
/// reported on stderr and left out.
pub fn pe_files(paths: &[PathBuf], caps: &mallard_io::Caps) -> Vec<PathBuf> {
    let walk = mallard_io::WalkOptions { follow_symlinks: false, max_depth: caps.max_walk_depth };
    let expanded = expand_paths(paths, &walk);
    for e in &expanded.errors {
        eprintln!("{}", e.error.as_deref().unwrap_or("unreadable path"));
    }
    expanded.files.into_iter().filter(|p| is_pe(p)).collect()
}
