//! `mallard stack`: trained PE models and their out-of-fold predictions in, one stacked
//! model out (`mallard_experiment::stack`).

use crate::ui::Progress;
use crate::Global;
use anyhow::{bail, Context, Result};
use mallard_experiment::read_fold_plan;
use mallard_experiment::settings::check;
use mallard_experiment::stack::{build_stack, StackRequest};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct StackArgs {
    /// A member: its model file and the out-of-fold predictions of the same model kind and
    /// settings on the same data (`mallard cv --predictions`). Give two or more. A member
    /// whose predictions mark files outside its domain (a model on `dotnet` features: files
    /// that are not .NET) is a specialist: it adds to the others' score on its domain only.
    #[arg(long = "member", value_name = "MODEL=OOF.jsonl", required = true)]
    pub members: Vec<String>,
    /// NAME<TAB>GROUP of the files (file name, name up to the first dot, or sha256): the
    /// stacker's own cross-fitting never splits a group.
    #[arg(long = "groups", value_name = "FILE.tsv")]
    pub groups: Option<PathBuf>,
    /// Set the decision threshold where the cross-fitted false-positive rate is at most
    /// this (default threshold 0.5).
    #[arg(long, value_name = "FPR", value_parser = check::open_fraction)]
    pub calibrate_fpr: Option<f64>,
    /// Write the logistic weighting even where one member alone beats it out of fold (by
    /// default the stack is then that member): an ensemble kept for what it resists, such as
    /// edits that reach one member's features but not another's.
    #[arg(long)]
    pub keep_weighting: bool,
    /// Folds of the stacker's cross-fitting (not with --fold-file).
    #[arg(long, default_value_t = 5, value_parser = check::at_least_two, conflicts_with = "fold_file")]
    pub folds: usize,
    /// Cross-fit over the folds of this file (`mallard cv --write-folds`), the ones the
    /// members' out-of-fold predictions came from, instead of making --folds folds
    #[arg(long, value_name = "FILE.tsv")]
    pub fold_file: Option<PathBuf>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the stacked model.
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
}

pub fn run(a: StackArgs, g: &Global) -> Result<()> {
    let mut members = Vec::new();
    for m in &a.members {
        let Some((model, oof)) = m.split_once('=') else {
            bail!("--member {m:?}: expected MODEL=OOF.jsonl");
        };
        members.push((PathBuf::from(model), PathBuf::from(oof)));
    }
    let plan = a.fold_file.as_deref().map(read_fold_plan).transpose()?;
    let req = StackRequest {
        members: &members,
        groups_file: a.groups.as_deref(),
        folds: a.folds,
        fold_plan: plan.as_ref(),
        seed: a.seed,
        calibrate_fpr: a.calibrate_fpr,
        keep_weighting: a.keep_weighting,
    };
    let mut progress = Progress::new(g.quiet);
    let out = build_stack(&req, &mut progress)?;
    drop(progress);
    println!("{} files with a prediction from every member", out.rows);
    println!("{:<36} {:>8} {:>10} {:>11}", "out of fold", "ROC AUC", "TPR@1%FPR", "TPR@0.1%FPR");
    for (name, auc, t1, t01) in &out.figures {
        println!("{name:<36} {auc:>8.4} {t1:>10.3} {t01:>11.3}");
    }
    let weights = out.file.meta.config["weights"].clone();
    println!("weights (intercept, then each member's logit): {weights}");
    if let Some(sp) = out.file.meta.config.get("specialists") {
        println!("specialists (inside their domain: intercept + weight x logit): {sp}");
    }
    out.file.write(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    if !g.quiet {
        eprintln!("wrote {}", a.out.display());
    }
    Ok(())
}
