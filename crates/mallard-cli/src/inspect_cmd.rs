//! `mallard inspect`: what a model file holds, without scoring anything.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// Model file; without it, the built-in model named by --builtin.
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Built-in model to show when no file is given: api (reports), pe (PE files), dotnet
    /// (pe's specialist for .NET files) or clamp (the earlier PE model on ClaMP's header
    /// columns).
    #[arg(long, default_value = "api", value_parser = mallard_scan::builtin::NAMES)]
    pub builtin: String,
    /// Print the metadata as one JSON object (everything but the kind-specific config).
    #[arg(long)]
    pub json: bool,
    /// Feature importances to list (boosted trees).
    #[arg(long, default_value_t = 20)]
    pub top: usize,
}

pub fn run(a: InspectArgs) -> Result<()> {
    let (file, name) = match &a.model {
        Some(p) => (
            mallard_model::ModelFile::read(p).with_context(|| format!("{}", p.display()))?,
            p.display().to_string(),
        ),
        None => {
            let bytes =
                mallard_scan::builtin::bytes(&a.builtin).context("no such built-in model")?;
            let f = mallard_model::ModelFile::from_bytes(bytes).context("built-in model")?;
            (f, format!("built-in {} model", a.builtin))
        }
    };
    let mut meta = file.meta;
    let config = std::mem::take(&mut meta.config);
    if a.json {
        println!("{}", serde_json::to_string(&meta)?);
    } else {
        print!("{name}\n{}", mallard_model::describe::describe(&meta, &config, a.top));
    }
    Ok(())
}
