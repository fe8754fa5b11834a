//! `mallard scan`: paths in, one line per input out (`mallard_scan`).

use crate::Global;
use anyhow::Result;
use clap::Args;
use mallard_experiment::settings::check;
use mallard_io::{Caps, WalkOptions};
use mallard_scan::setup::{prepare, Plan};
use mallard_scan::{escape_controls, expand_paths, is_pe, scan_batch, BatchOptions, InOrder};
use mallard_scan::{ScanOptions, ScanResult, Tally};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct ScanArgs {
    /// Sandbox reports (Cuckoo or CAPE report.json, plain or .gz), PE files, or folders of them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// One JSON object per input line: path, verdict, score, reasons (and error).
    #[arg(long)]
    pub json: bool,
    /// Model file, or a built-in model by name (`builtin:api`, `builtin:pe`, `builtin:clamp`
    /// for the earlier PE model on ClaMP header columns, `builtin:dotnet` for the .NET
    /// metadata trees alone); give it twice for a report model and a PE model. Each input kind
    /// without one uses the built-in default (an SVM over API sets for reports, boosted trees
    /// on EMBER v2 features for PE files, with .NET metadata trees added on .NET files).
    #[arg(long, value_name = "MODEL")]
    pub model: Vec<PathBuf>,
    /// Decision threshold on P(malicious), in [0, 1] (default: the model's).
    #[arg(long, value_parser = check::probability)]
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
    /// Follow symbolic links inside folders (each folder is still walked once: link loops
    /// cannot repeat or hang the walk). Links given as paths are always followed.
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Seconds one input may take; one that runs longer gets an error result and the batch
    /// goes on (default: 60).
    #[arg(long, value_name = "SECONDS", value_parser = check::seconds)]
    pub file_timeout: Option<f64>,
    /// Print results in input order (each as soon as all before it are done) instead of
    /// in the order they finish.
    #[arg(long)]
    pub sort: bool,
    /// Seconds the YARA rules may take on one file (default: 10); past it the file's rule
    /// part is an error and the model verdict stands.
    #[arg(long, value_name = "SECONDS", value_parser = check::seconds)]
    pub rule_timeout: Option<f64>,
    #[command(flatten)]
    pub caps: ScanCaps,
}

/// The caps of `docs/limits.md` that a scan applies, as flags.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Caps (docs/limits.md)")]
pub struct ScanCaps {
    /// PE files larger than this are refused before reading.
    #[arg(long, value_name = "MIB", default_value_t = Caps::default().max_pe_bytes >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_file_mib: u64,
    /// Report files larger than this on disk (compressed size for .gz) are refused.
    #[arg(long, value_name = "MIB", default_value_t = Caps::default().max_report_bytes >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_report_mib: u64,
    /// Reading a report stops, with an error, once its decompressed JSON passes this.
    #[arg(long, value_name = "MIB", default_value_t = Caps::default().max_report_decompressed >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 22))]
    pub max_report_decompressed_mib: u64,
    /// JSON strings in a report longer than this are skipped, never buffered.
    #[arg(long, value_name = "BYTES", default_value_t = Caps::default().max_string_bytes as u64, value_parser = clap::value_parser!(u64).range(16..=1 << 30))]
    pub max_string_bytes: u64,
    /// API calls kept per report; the rest are counted, not stored.
    #[arg(long, value_name = "N", default_value_t = Caps::default().max_calls as u64, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub max_calls: u64,
    /// Model files (--model) larger than this are refused before reading.
    #[arg(long, value_name = "MIB", default_value_t = Caps::default().max_model_bytes >> 20, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_model_mib: u64,
    /// Deepest folder nesting walked below a path.
    #[arg(long, value_name = "N", default_value_t = Caps::default().max_walk_depth as u64, value_parser = clap::value_parser!(u64).range(0..=4096))]
    pub max_depth: u64,
}

impl ScanCaps {
    pub fn caps(&self) -> Caps {
        Caps {
            max_pe_bytes: self.max_file_mib << 20,
            max_report_bytes: self.max_report_mib << 20,
            max_report_decompressed: self.max_report_decompressed_mib << 20,
            max_string_bytes: self.max_string_bytes as usize,
            max_calls: self.max_calls as usize,
            max_model_bytes: self.max_model_mib << 20,
            max_walk_depth: self.max_depth as usize,
            ..Caps::default()
        }
    }
}

/// Writes one result: a JSON object or a line in words; in JSON mode errors go to stderr too.
fn emit(r: &ScanResult, json: bool, bar: Option<&indicatif::ProgressBar>) {
    let line = if json { r.json_line() } else { r.line() };
    let write = || {
        let mut out = std::io::stdout().lock();
        // A closed stdout (`| head`) must not panic; the summary still says what happened.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        if let Some(e) = r.error.as_ref().filter(|_| json) {
            eprintln!("error: {}", escape_controls(e));
        }
    };
    match bar {
        Some(b) => {
            b.suspend(write);
            b.inc(1);
        }
        None => write(),
    }
}

/// Exit codes follow clamscan: 0 nothing found, 1 something malicious, 2 any error result;
/// 130 when interrupted (Ctrl-C), after the summary of what was done.
pub fn run(a: ScanArgs, g: &Global) -> Result<ExitCode> {
    let started = Instant::now();
    let caps = a.caps.caps();
    let walk = WalkOptions { follow_symlinks: a.follow_symlinks, max_depth: caps.max_walk_depth };
    let expanded = expand_paths(&a.paths, &walk);
    let files = expanded.files;
    if a.report.is_empty() && files.iter().all(|p| is_pe(p)) {
        crate::no_huge_pages();
    }
    let plan = Plan {
        models: a.model.clone(),
        rules: a.rules.clone(),
        builtin_rules: !a.no_builtin_rules,
        allow: a.allow.clone(),
        deny: a.deny.clone(),
        walk,
    };
    let opts = ScanOptions {
        top: a.top,
        threshold: a.threshold,
        reports: a.report.clone(),
        max_pe_bytes: caps.max_pe_bytes,
        max_report_bytes: caps.max_report_bytes,
        report: mallard_apiseq::ReportOptions::from_caps(&caps),
        rule_timeout: Duration::from_secs_f64(a.rule_timeout.unwrap_or(10.0)),
        ..ScanOptions::default()
    };
    let (scanner, rule_errors) = prepare(&plan, &files, opts, &caps)?;
    for e in &rule_errors {
        eprintln!("error: {}", escape_controls(&e.to_string()));
    }
    let bar =
        crate::ui::bar(g.quiet, files.len(), "scanning {bar:30} {pos}/{len} [{elapsed}<{eta}]");
    let mut tally = Tally::default();
    // Paths that could not be walked and unusable --report files come first.
    for r in expanded.errors.iter().chain(scanner.report_problems()) {
        tally.add(r);
        emit(r, a.json, bar.as_ref());
    }
    // Ctrl-C: the scan stops, prints what it has, and exits 130.
    let interrupted = Arc::new(AtomicBool::new(false));
    #[cfg(unix)]
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupted));
    mallard_scan::quiet_worker_panics();
    let per_file = Duration::from_secs_f64(a.file_timeout.unwrap_or(caps.per_file_seconds as f64));
    let mut order = InOrder::default();
    let end = scan_batch(
        Arc::new(scanner),
        files,
        BatchOptions { threads: g.threads, per_file },
        &interrupted,
        &mut |i, r| {
            let ready = if a.sort { order.push(i, r) } else { vec![r] };
            for r in &ready {
                tally.add(r);
                emit(r, a.json, bar.as_ref());
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if !g.quiet || end.interrupted {
        let (n, m, b, e) = (tally.total(), tally.malicious, tally.benign, tally.errors);
        let secs = started.elapsed().as_secs_f64();
        let stop = if end.interrupted { " (interrupted)" } else { "" };
        eprintln!("scanned {n}: {m} malicious, {b} benign, {e} errors in {secs:.2} s{stop}");
    }
    if expanded.skipped_links > 0 && !g.quiet {
        let n = expanded.skipped_links;
        eprintln!("note: {n} symbolic links inside folders not followed (--follow-symlinks)");
    }
    Ok(ExitCode::from(tally.exit_code(end.interrupted, !rule_errors.is_empty())))
}
