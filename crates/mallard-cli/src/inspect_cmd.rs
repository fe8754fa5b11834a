//! `mallard inspect`: what a model file holds, without scoring anything.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct InspectArgs {
    /// Model file; without it, the built-in model named by --builtin.
    #[arg(value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Built-in model to show when no file is given: api (reports), pe (PE files) or clamp
    /// (the earlier PE model on ClaMP's header columns).
    #[arg(long, default_value = "api", value_parser = ["api", "pe", "clamp"])]
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
            let bytes = crate::builtin_model_bytes(&a.builtin)?;
            let f = mallard_model::ModelFile::from_bytes(bytes).context("built-in model")?;
            (f, format!("built-in {} model", a.builtin))
        }
    };
    let mut meta = file.meta;
    let config = std::mem::take(&mut meta.config);
    if a.json {
        println!("{}", serde_json::to_string(&meta)?);
        return Ok(());
    }
    println!("{name}");
    println!(
        "  kind         {} (mallard {})",
        meta.kind, meta.mallard_version
    );
    println!(
        "  labels       {:?}{}",
        meta.labels,
        meta.positive
            .and_then(|p| meta.labels.get(p))
            .map(|l| format!(", positive {l:?}"))
            .unwrap_or_default()
    );
    println!("  threshold    {}", meta.threshold);
    if let Some(set) = &meta.feature_set {
        println!(
            "  features     {} columns of the {set} set",
            meta.feature_names.len()
        );
    } else if !meta.feature_names.is_empty() {
        println!("  features     {} columns", meta.feature_names.len());
    }
    if let Some(t) = &meta.tokenizer {
        println!("  tokenizer    {} words", t.vocab_size());
    }
    let t = &meta.training;
    for (key, label) in [
        ("samples", "samples"),
        ("validation_samples", "held out"),
        ("distinct_rows", "distinct"),
        ("support_vectors", "support vec."),
        ("rounds", "rounds"),
        ("epochs", "epochs"),
        ("seconds", "seconds"),
    ] {
        if let Some(v) = t.get(key).filter(|v| v.as_u64() != Some(0)) {
            println!("  {label:<12} {v}");
        }
    }
    if meta.kind == "svm" {
        for key in ["kernel", "gamma", "c"] {
            if let Some(v) = config.get(key) {
                println!("  {key:<12} {v}");
            }
        }
        if let Some(c) = config.get("calibration") {
            println!("  calibration  {c}");
        }
    }
    if let Some(c) = t.get("calibration") {
        println!("  calibration  {c}");
    }
    if let Some(m) = meta.metrics.as_object().filter(|m| !m.is_empty()) {
        for key in ["accuracy", "roc_auc", "macro_f1"] {
            if let Some(v) = m.get(key) {
                println!("  {key:<12} {v}");
            }
        }
    }
    if let Some(imp) = t.get("feature_importance").and_then(|v| v.as_array()) {
        let total: f64 = imp
            .iter()
            .filter_map(|r| r.get("gain")?.as_f64())
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        println!("  feature importance (share of total split gain, splits):");
        for r in imp.iter().take(a.top) {
            let (Some(f), Some(g), Some(s)) = (
                r.get("feature").and_then(|v| v.as_str()),
                r.get("gain").and_then(|v| v.as_f64()),
                r.get("splits"),
            ) else {
                continue;
            };
            println!("    {:>6.2}%  {s:>5}  {f}", 100.0 * g / total);
        }
    }
    Ok(())
}
