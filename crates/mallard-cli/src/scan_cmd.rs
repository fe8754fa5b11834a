//! `mallard scan`.

use crate::{load_model, Global};
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_scan::{expand_paths, ScanOptions, ScanResult, Scanner, Verdict};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ScanArgs {
    /// Sandbox reports (Cuckoo or CAPE report.json, plain or .gz) or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// One JSON object per input line: path, verdict, score, reasons (and error).
    #[arg(long)]
    pub json: bool,
    /// Model file (default: the built-in MalBehavD model).
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Decision threshold on P(malicious) (default: the model's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Reasons to give per verdict.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

/// Exit codes follow clamscan: 0 nothing found, 1 something malicious, 2 errors.
pub fn run(a: ScanArgs, g: &Global) -> Result<ExitCode> {
    let model = load_model(a.model.as_deref())?;
    let scanner = Scanner::new(model, ScanOptions { top: a.top, threshold: a.threshold, ..ScanOptions::default() });
    let (files, mut results) = expand_paths(&a.paths);
    let bar = if !g.quiet && files.len() > 1 && std::io::stderr().is_terminal() {
        let b = ProgressBar::new(files.len() as u64);
        b.set_style(
            ProgressStyle::with_template("scanning {bar:30} {pos}/{len} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(b)
    } else {
        None
    };
    let tick = |_: &ScanResult| {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    results.extend(scanner.scan_reports(&files, &tick));
    if let Some(b) = &bar {
        b.finish_and_clear();
    }

    let mut out = std::io::stdout().lock();
    for r in &results {
        if a.json {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        } else {
            writeln!(out, "{}", human(r))?;
        }
        if !a.json {
            continue;
        }
        if let Some(e) = &r.error {
            eprintln!("error: {e}");
        }
    }
    out.flush()?;
    let count = |v: Verdict| results.iter().filter(|r| r.verdict == v).count();
    let (mal, ben, err) = (count(Verdict::Malicious), count(Verdict::Benign), count(Verdict::Error));
    if !g.quiet {
        eprintln!("scanned {}: {mal} malicious, {ben} benign, {err} errors", results.len());
    }
    Ok(ExitCode::from(if err > 0 { 2 } else if mal > 0 { 1 } else { 0 }))
}

fn human(r: &ScanResult) -> String {
    match r.verdict {
        Verdict::Error => {
            let msg = r.error.as_deref().unwrap_or("");
            // Library errors already start with the path.
            let msg = msg.strip_prefix(&format!("{}: ", r.path)).unwrap_or(msg);
            format!("{}: ERROR {msg}", r.path)
        }
        v => {
            let mut s = format!(
                "{}: {} (score {:.3}{})",
                r.path,
                if v == Verdict::Malicious { "MALICIOUS" } else { "benign" },
                r.score.unwrap_or(f32::NAN),
                r.family.as_ref().map(|f| format!(", family {f}")).unwrap_or_default()
            );
            if !r.reasons.is_empty() {
                let names: Vec<String> = r.reasons.iter().map(|x| format!("{} {:+.3}", x.name, x.weight)).collect();
                s.push_str(&format!(" reasons: {}", names.join(", ")));
            }
            s
        }
    }
}
