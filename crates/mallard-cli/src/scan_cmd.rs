//! `mallard scan`.

use crate::{load_model, Global};
use anyhow::{bail, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_model::InputKind;
use mallard_scan::{expand_paths, is_pe, ScanOptions, ScanResult, Scanner, Verdict};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args)]
pub struct ScanArgs {
    /// Sandbox reports (Cuckoo or CAPE report.json, plain or .gz), PE files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// One JSON object per input line: path, verdict, score, reasons (and error).
    #[arg(long)]
    pub json: bool,
    /// Model file, or a built-in model by name (`builtin:api`, `builtin:pe`, `builtin:clamp`
    /// for the earlier PE model on ClaMP header columns); give it twice for a report model and
    /// a PE model. Each input kind without one uses the built-in default (an SVM over API sets
    /// for reports, boosted trees on EMBER v2 features for PE files).
    #[arg(long, value_name = "MODEL")]
    pub model: Vec<PathBuf>,
    /// Decision threshold on P(malicious) (default: the model's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Reasons to give per verdict.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// A sandbox report to pair with the PE file of the same sha256 (static+dynamic
    /// ensemble); may be repeated. Reports lying beside a PE file as FILE.json,
    /// FILE.json.gz, FILE.report.json or SHA256.json are paired too.
    #[arg(long, value_name = "REPORT")]
    pub report: Vec<PathBuf>,
    /// YARA rules (.yar/.yara files, or folders of them) to run on PE files, besides the
    /// built-in set. A rule tagged `malicious` decides the verdict; other matches are reasons.
    /// A file that does not compile is reported (exit 2) and the scan goes on without it.
    #[arg(long, value_name = "PATH")]
    pub rules: Vec<PathBuf>,
    /// Do not use mallard's built-in rules.
    #[arg(long)]
    pub no_builtin_rules: bool,
    /// File of sha256 values (one per line, `#` comments) that are benign whatever the models say.
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// File of sha256 values that are malicious whatever the models say (wins over --allow).
    #[arg(long, value_name = "FILE")]
    pub deny: Option<PathBuf>,
}

/// Reads a sha256 list: one 64-hex value per line, blank lines and `#` comments skipped.
fn read_hash_list(path: &std::path::Path) -> Result<std::collections::HashSet<String>> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut set = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        if l.len() != 64 || !l.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!(
                "{}:{}: not a sha256 (64 hex digits): {l:?}",
                path.display(),
                i + 1
            );
        }
        set.insert(l.to_ascii_lowercase());
    }
    Ok(set)
}

/// Exit codes follow clamscan: 0 nothing found, 1 something malicious, 2 errors.
pub fn run(a: ScanArgs, g: &Global) -> Result<ExitCode> {
    let (files, mut results) = expand_paths(&a.paths);
    let pe_files: Vec<&PathBuf> = files.iter().filter(|p| is_pe(p)).collect();
    let pe_inputs = pe_files.len();
    if pe_inputs == files.len() && a.report.is_empty() {
        crate::no_huge_pages();
    }
    // Rules load on their own thread while the models load: on a one-file scan that
    // hides most of yara-x's start-up.
    let want_rules = !a.rules.is_empty() || (pe_inputs > 0 && !a.no_builtin_rules);
    let (rules, models) = std::thread::scope(|s| {
        let rules = want_rules
            .then(|| s.spawn(|| mallard_rules::RuleSet::load(&a.rules, !a.no_builtin_rules)));
        let models = load_scan_models(&a, &files, &pe_files);
        (rules.map(|h| h.join()), models)
    });
    let (report_model, pe_model) = models?;
    let mut opts = ScanOptions {
        top: a.top,
        threshold: a.threshold,
        reports: a.report.clone(),
        ..ScanOptions::default()
    };
    if let Some(p) = &a.allow {
        opts.allow = read_hash_list(p)?;
    }
    let mut rule_errors = 0usize;
    if let Some(joined) = rules {
        let (set, errors) =
            joined.map_err(|_| anyhow::anyhow!("loading the YARA rules failed unexpectedly"))?;
        for e in &errors {
            eprintln!("error: {e}");
        }
        rule_errors = errors.len();
        opts.rules = set.map(std::sync::Arc::new);
    }
    if let Some(p) = &a.deny {
        opts.deny = read_hash_list(p)?;
    }
    let scanner = Scanner::new(report_model, pe_model, opts).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    results.extend(scanner.scan_paths(&files, &tick));
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
    let (mal, ben, err) = (
        count(Verdict::Malicious),
        count(Verdict::Benign),
        count(Verdict::Error),
    );
    if !g.quiet {
        eprintln!(
            "scanned {}: {mal} malicious, {ben} benign, {err} errors",
            results.len()
        );
    }
    Ok(ExitCode::from(if err > 0 || rule_errors > 0 {
        2
    } else if mal > 0 {
        1
    } else {
        0
    }))
}

type Loaded = Option<Box<dyn mallard_model::Model>>;

/// The models named by `--model`, plus a built-in one for each kind of input that has none;
/// a built-in model is loaded only when some input needs it (start-up time is scan latency).
fn load_scan_models(
    a: &ScanArgs,
    files: &[PathBuf],
    pe_files: &[&PathBuf],
) -> Result<(Loaded, Loaded)> {
    let mut report_model = None;
    let mut pe_model = None;
    for p in &a.model {
        let m = load_model(Some(p))?;
        let slot = if m.meta().input == InputKind::Features {
            &mut pe_model
        } else {
            &mut report_model
        };
        if slot.is_some() {
            bail!("{}: two models for the same kind of input", p.display());
        }
        *slot = Some(m);
    }
    let reports_needed = pe_files.len() < files.len()
        || !a.report.is_empty()
        || pe_files.iter().any(|p| report_beside(p));
    let report_model = match report_model {
        Some(m) => Some(m),
        None if reports_needed => Some(load_model(None)?),
        None => None,
    };
    let pe_model = match pe_model {
        Some(m) => Some(m),
        None if !pe_files.is_empty() => Some(crate::load_default_pe_model()?),
        None => None,
    };
    Ok((report_model, pe_model))
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
                if v == Verdict::Malicious {
                    "MALICIOUS"
                } else {
                    "benign"
                },
                r.score.unwrap_or(f32::NAN),
                r.family
                    .as_ref()
                    .map(|f| format!(", family {f}"))
                    .unwrap_or_default()
            );
            if !r.reasons.is_empty() {
                let names: Vec<String> = r
                    .reasons
                    .iter()
                    .map(|x| format!("{} {:+.3}", x.name, x.weight))
                    .collect();
                s.push_str(&format!(" reasons: {}", names.join(", ")));
            }
            s
        }
    }
}

/// Whether a PE file's folder holds any report that could pair with it.
fn report_beside(pe: &std::path::Path) -> bool {
    let dir = pe.parent().unwrap_or(std::path::Path::new("."));
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().to_ascii_lowercase();
            n.ends_with(".json") || n.ends_with(".json.gz")
        })
    })
}
