//! Writes example ROC and confusion-matrix SVGs (synthetic scores) for a visual check:
//! `cargo run --release -p mallard-eval --example pictures -- OUT_DIR`

use mallard_eval::{confusion_svg, evaluate, render_table, roc_svg, RocSeries, SplitMix64};

/// Roughly normal noise from the sum of uniforms, enough for a picture.
fn noise(r: &mut SplitMix64) -> f64 {
    (0..6)
        .map(|_| r.next_u64() as f64 / u64::MAX as f64)
        .sum::<f64>()
        - 3.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let mut r = SplitMix64::new(1);
    let labels = vec!["benign".to_string(), "malicious".to_string()];
    let y: Vec<usize> = (0..768).map(|i| usize::from(i % 3 == 0)).collect();
    let model = |r: &mut SplitMix64, sep: f64| -> Vec<f32> {
        y.iter()
            .map(|&c| (1.0 / (1.0 + (-(sep * (c as f64 - 0.5) + noise(r))).exp())) as f32)
            .collect()
    };
    let (pa, pb) = (model(&mut r, 2.2), model(&mut r, 1.4));
    let ea = evaluate(&labels, &y, &pa, None, None)?;
    let eb = evaluate(&labels, &y, &pb, None, None)?;
    print!("{}", render_table(&ea));
    let series: Vec<RocSeries> = [("TF-IDF + LogReg", &ea), ("LSTM, 5 epochs", &eb)]
        .into_iter()
        .filter_map(|(n, e)| RocSeries::from_eval(n, e))
        .collect();
    std::fs::write(
        format!("{out}/roc.svg"),
        roc_svg(&series, "MalBehavD-V1 test (synthetic)", false),
    )?;
    std::fs::write(
        format!("{out}/roc_log.svg"),
        roc_svg(&series, "MalBehavD-V1 test (synthetic)", true),
    )?;
    std::fs::write(
        format!("{out}/confusion.svg"),
        confusion_svg(
            &ea.labels,
            &ea.confusion_matrix,
            "Confusion matrix, threshold 0.5",
        ),
    )?;

    let fam: Vec<String> = [
        "benign",
        "trojan",
        "worm",
        "ransomware-locker",
        "backdoor",
        "downloader-dropper-very-long-name",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let k = fam.len();
    let yk: Vec<usize> = (0..600).map(|i| (i * 7) % k).collect();
    let mut probs = Vec::new();
    for &c in &yk {
        let logits: Vec<f64> = (0..k)
            .map(|j| if j == c { 2.0 } else { 0.0 } + noise(&mut r))
            .collect();
        let z: f64 = logits.iter().map(|v| v.exp()).sum();
        probs.extend(logits.iter().map(|v| (v.exp() / z) as f32));
    }
    let em = evaluate(&fam, &yk, &probs, None, None)?;
    print!("\n{}", render_table(&em));
    std::fs::write(
        format!("{out}/confusion_multi.svg"),
        confusion_svg(&em.labels, &em.confusion_matrix, "Families"),
    )?;
    Ok(())
}
