//! `mallard mutate`: random functionality-preserving mutants of PE files, for training a
//! model on them (augmentation against the edits `mallard attack` makes).

use anyhow::{Context, Result};
use mallard_experiment::attack::{mutate_files, parse_actions, MutateOptions};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MutateArgs {
    /// PE files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Folder the mutants go to, as NAME.m0, NAME.m1, ... (a mutant of malware is malware:
    /// keep it out of shared folders and never run it).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Mutants per file.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub per_file: usize,
    /// Random actions per mutant (each checked: entry point, code bytes, imports kept).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub steps: usize,
    /// Comma-separated actions to draw from, or `all`: overlay-random, overlay-zeros,
    /// overlay-benign, section-rename, slack-fill, dos-header, dos-stub, timestamp, checksum,
    /// debug-directory, rich-header, remove-certificate, add-section, add-imports.
    #[arg(long, default_value = "all")]
    pub actions: String,
    /// A benign file whose bytes fill overlays, new sections, slack and DOS stubs (default:
    /// random bytes).
    #[arg(long, value_name = "FILE")]
    pub benign: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(a: MutateArgs, g: &crate::Global) -> Result<()> {
    let caps = mallard_io::Caps::default();
    let actions = parse_actions(&a.actions)?;
    let benign = mallard_experiment::attack::read_benign(a.benign.as_deref(), &caps)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let files = crate::attack_cmd::pe_files(&a.paths, &caps);
    let opts = MutateOptions {
        per_file: a.per_file,
        steps: a.steps,
        actions,
        seed: a.seed,
        benign: &benign,
        max_bytes: caps.max_pe_bytes,
        out_dir: &a.out,
    };
    let bar = crate::ui::bar(g.quiet, files.len(), "mutating {wide_bar} {pos}/{len} files");
    let mut errors = 0;
    let written = mutate_files(&files, &opts, &mut |_, r| {
        if let Err(e) = r {
            errors += 1;
            crate::ui::line(bar.as_ref(), &format!("error: {e}"));
        }
        bar.iter().for_each(|b| b.inc(1));
    });
    bar.iter().for_each(|b| b.finish_and_clear());
    println!(
        "wrote {written} mutants of {} files to {} ({errors} errors)",
        files.len(),
        a.out.display()
    );
    Ok(())
}
