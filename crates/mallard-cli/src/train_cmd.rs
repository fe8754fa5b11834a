//! `mallard train`: arguments in, a model file out (`mallard_experiment::train`).

use crate::ui::Progress;
use crate::Global;
use anyhow::{Context, Result};
use clap::Args;
use mallard_datasets::{DatasetSpec, ReadOptions};
use mallard_experiment::settings::ModelSettings;
use mallard_experiment::{train, TrainRequest};
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// Training data as FORMAT:PATH (malbehavd, malapi, cuckoo, cape, jsonl; csv, ember, pe).
    /// Feature tables may be given several times (e.g. malware and benign files): their rows
    /// are joined.
    #[arg(long, value_name = "FORMAT:PATH", required = true)]
    pub dataset: Vec<DatasetSpec>,
    /// Record this file's sha256 in the model file as part of its training provenance (the
    /// corpus manifests); may be repeated.
    #[arg(long, value_name = "FILE")]
    pub manifest: Vec<PathBuf>,
    /// Where to write the model file.
    #[arg(long, value_name = "MODEL")]
    pub out: PathBuf,
    #[command(flatten)]
    pub model: ModelSettings,
    #[command(flatten)]
    pub read: ReadOptions,
}

pub fn run(a: TrainArgs, g: &Global) -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let request = TrainRequest {
        datasets: &a.dataset,
        read: &a.read,
        settings: &ModelSettings { threads: g.threads, ..a.model },
        manifests: &a.manifest,
        command: &format!("mallard {}", argv.join(" ")),
    };
    let mut progress = Progress::new(g.quiet);
    let file = train(&request, &mut progress)?;
    drop(progress);
    file.write(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    if !g.quiet {
        eprintln!("wrote {}", a.out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        train: TrainArgs,
    }

    /// The flags' defaults are the library's: one set of settings, not two kept in step.
    #[test]
    fn flag_defaults_are_the_library_defaults() {
        let w = Wrap::try_parse_from(["t", "--dataset", "csv:x.csv", "--out", "m"]).unwrap();
        let threads = ModelSettings::default().threads;
        let got = format!("{:?}", ModelSettings { threads, ..w.train.model });
        assert_eq!(got, format!("{:?}", ModelSettings::default()));
        assert_eq!(format!("{:?}", w.train.read), format!("{:?}", ReadOptions::default()));
        let w = Wrap::try_parse_from([
            "t",
            "--dataset",
            "csv:x.csv",
            "--out",
            "m",
            "--no-class-weights",
            "--max-table-mib",
            "3",
        ])
        .unwrap();
        assert!(!w.train.model.class_weights);
        assert_eq!(w.train.read.max_table_bytes, 3 << 20);
    }
}
