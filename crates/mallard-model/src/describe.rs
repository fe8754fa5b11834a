//! A model file in words, for `mallard inspect` and other front ends.

use crate::Meta;
use std::fmt::Write;

/// What a model holds, one `  key  value` line each: kind, labels, threshold, features,
/// training summary, calibration, metrics and the `top` feature importances.
pub fn describe(meta: &Meta, config: &serde_json::Value, top: usize) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    macro_rules! line {
        ($($t:tt)*) => {{ let _ = writeln!(out, $($t)*); }};
    }
    line!(
        "  kind         {} (mallard {})",
        meta.kind,
        meta.mallard_version
    );
    line!(
        "  labels       {:?}{}",
        meta.labels,
        meta.positive
            .and_then(|p| meta.labels.get(p))
            .map(|l| format!(", positive {l:?}"))
            .unwrap_or_default()
    );
    line!("  threshold    {}", meta.threshold);
    if let Some(set) = &meta.feature_set {
        line!(
            "  features     {} columns of the {set} set",
            meta.feature_names.len()
        );
    } else if !meta.feature_names.is_empty() {
        line!("  features     {} columns", meta.feature_names.len());
    }
    if let Some(t) = &meta.tokenizer {
        line!("  tokenizer    {} words", t.vocab_size());
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
            line!("  {label:<12} {v}");
        }
    }
    if meta.kind == "svm" {
        for key in ["kernel", "gamma", "c"] {
            if let Some(v) = config.get(key) {
                line!("  {key:<12} {v}");
            }
        }
        if let Some(c) = config.get("calibration") {
            line!("  calibration  {c}");
        }
    }
    if let Some(c) = t.get("calibration") {
        line!("  calibration  {c}");
    }
    if let Some(m) = meta.metrics.as_object().filter(|m| !m.is_empty()) {
        for key in ["accuracy", "roc_auc", "macro_f1"] {
            if let Some(v) = m.get(key) {
                line!("  {key:<12} {v}");
            }
        }
    }
    if let Some(imp) = t.get("feature_importance").and_then(|v| v.as_array()) {
        let total: f64 = imp
            .iter()
            .filter_map(|r| r.get("gain")?.as_f64())
            .sum::<f64>()
            .max(f64::MIN_POSITIVE);
        line!("  feature importance (share of total split gain, splits):");
        for r in imp.iter().take(top) {
            let (Some(f), Some(g), Some(s)) = (
                r.get("feature").and_then(|v| v.as_str()),
                r.get("gain").and_then(|v| v.as_f64()),
                r.get("splits"),
            ) else {
                continue;
            };
            line!("    {:>6.2}%  {s:>5}  {f}", 100.0 * g / total);
        }
    }
    out
}
