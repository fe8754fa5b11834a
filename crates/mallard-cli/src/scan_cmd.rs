//! `mallard scan`.

use crate::Global;
use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use mallard_io::{Caps, WalkOptions};
use mallard_scan::{
    expand_paths, is_pe, scan_batch, BatchOptions, ScanOptions, ScanResult, Scanner, Verdict,
};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// for the earlier PE model on ClaMP header columns); give it twice for a report model and
    /// a PE model. Each input kind without one uses the built-in default (an SVM over API sets
    /// for reports, boosted trees on EMBER v2 features for PE files).
    #[arg(long, value_name = "MODEL")]
    pub model: Vec<PathBuf>,
    /// Decision threshold on P(malicious), in [0, 1] (default: the model's).
    #[arg(long, value_parser = parse_threshold)]
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
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub file_timeout: Option<f64>,
    /// Print results in input order (each as soon as all before it are done) instead of
    /// in the order they finish.
    #[arg(long)]
    pub sort: bool,
    /// Seconds the YARA rules may take on one file (default: 10); past it the file's rule
    /// part is an error and the model verdict stands.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
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

fn parse_threshold(s: &str) -> Result<f32, String> {
    let t: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !t.is_finite() || !(0.0..=1.0).contains(&t) {
        return Err(format!("{s}: a threshold is a probability in [0, 1]"));
    }
    Ok(t)
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let t: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    // Above a year is as good as no limit, and keeps Duration from overflowing.
    if !t.is_finite() || t <= 0.0 || t > 31_536_000.0 {
        return Err(format!(
            "{s}: a time limit is a number of seconds above 0 (at most a year)"
        ));
    }
    Ok(t)
}

/// Set by SIGINT: the scan stops, prints what it has, and exits 130.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

#[cfg(target_os = "linux")]
extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn catch_sigint() {
    #[cfg(target_os = "linux")]
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// Panics on scan workers become error results carrying the message; the default hook's
/// backtrace notice on stderr would only be noise. Other threads keep the default hook.
fn quiet_worker_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(mallard_scan::WORKER_THREAD_PREFIX));
        if !worker {
            default(info);
        }
    }));
}

/// Escapes control characters (a newline in a file name would forge a result line).
fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    malicious: usize,
    benign: usize,
    errors: usize,
}

impl Tally {
    fn add(&mut self, r: &ScanResult) {
        match r.verdict {
            Verdict::Malicious => self.malicious += 1,
            Verdict::Benign => self.benign += 1,
            Verdict::Error => self.errors += 1,
        }
    }
    fn total(&self) -> usize {
        self.malicious + self.benign + self.errors
    }
}

/// Writes results as they come; in `--sort` mode holds back those that finish early.
struct Printer<'a> {
    json: bool,
    sort: bool,
    bar: Option<ProgressBar>,
    next: usize,
    held: BTreeMap<usize, ScanResult>,
    tally: &'a mut Tally,
}

impl Printer<'_> {
    fn emit(&mut self, r: &ScanResult) {
        self.tally.add(r);
        let line = if self.json {
            serde_json::to_string(r).unwrap_or_else(|e| {
                format!("{{\"path\":null,\"verdict\":\"error\",\"error\":\"cannot encode result: {e}\"}}")
            })
        } else {
            escape_controls(&human(r))
        };
        let write = || {
            let mut out = std::io::stdout().lock();
            // A closed stdout (`| head`) must not panic; the summary still says what happened.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            if self.json {
                if let Some(e) = &r.error {
                    eprintln!("error: {}", escape_controls(e));
                }
            }
        };
        match &self.bar {
            Some(b) => {
                b.suspend(write);
                b.inc(1);
            }
            None => write(),
        }
    }

    /// Result `i` (in input order) is ready.
    fn result(&mut self, i: usize, r: ScanResult) {
        if !self.sort {
            return self.emit(&r);
        }
        self.held.insert(i, r);
        while let Some(r) = self.held.remove(&self.next) {
            self.emit(&r);
            self.next += 1;
        }
    }
}

/// Exit codes follow clamscan: 0 nothing found, 1 something malicious, 2 any error result;
/// 130 when interrupted (Ctrl-C), after the summary of what was done.
pub fn run(a: ScanArgs, g: &Global) -> Result<ExitCode> {
    let started = Instant::now();
    let caps = a.caps.caps();
    let walk = WalkOptions {
        follow_symlinks: a.follow_symlinks,
        max_depth: caps.max_walk_depth,
    };
    let expanded = expand_paths(&a.paths, &walk);
    let files = expanded.files;
    let pe_files: Vec<&PathBuf> = files.iter().filter(|p| is_pe(p)).collect();
    let pe_inputs = pe_files.len();
    if pe_inputs == files.len() && a.report.is_empty() {
        crate::no_huge_pages();
    }
    // Rules load on their own thread while the models load: on a one-file scan that
    // hides most of yara-x's start-up.
    let want_rules = !a.rules.is_empty() || (pe_inputs > 0 && !a.no_builtin_rules);
    let (rules, models) = std::thread::scope(|s| {
        let rules = want_rules.then(|| {
            s.spawn(|| mallard_rules::RuleSet::load_with(&a.rules, !a.no_builtin_rules, &walk))
        });
        let models = mallard_scan::setup::models_for(&a.model, &files, &a.report, &caps);
        (rules.map(|h| h.join()), models)
    });
    let (report_model, pe_model) = models?;
    let mut opts = ScanOptions {
        top: a.top,
        threshold: a.threshold,
        reports: a.report.clone(),
        max_pe_bytes: caps.max_pe_bytes,
        max_report_bytes: caps.max_report_bytes,
        report: mallard_apiseq::ReportOptions::from_caps(&caps),
        rule_timeout: Duration::from_secs_f64(a.rule_timeout.unwrap_or(10.0)),
        ..ScanOptions::default()
    };
    if let Some(p) = &a.allow {
        opts.allow = mallard_scan::setup::read_hash_list(p)?;
    }
    let mut rule_errors = 0usize;
    if let Some(joined) = rules {
        let (set, errors) =
            joined.map_err(|_| anyhow::anyhow!("loading the YARA rules failed unexpectedly"))?;
        for e in &errors {
            eprintln!("error: {}", escape_controls(&e.to_string()));
        }
        rule_errors = errors.len();
        opts.rules = set.map(std::sync::Arc::new);
    }
    if let Some(p) = &a.deny {
        opts.deny = mallard_scan::setup::read_hash_list(p)?;
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
    let mut tally = Tally::default();
    let mut printer = Printer {
        json: a.json,
        sort: a.sort,
        bar,
        next: 0,
        held: BTreeMap::new(),
        tally: &mut tally,
    };
    // Paths that could not be walked and unusable --report files come first.
    for r in expanded.errors.iter().chain(scanner.report_problems()) {
        printer.emit(r);
    }
    catch_sigint();
    quiet_worker_panics();
    let per_file = Duration::from_secs_f64(a.file_timeout.unwrap_or(caps.per_file_seconds as f64));
    let end = scan_batch(
        Arc::new(scanner),
        files,
        BatchOptions {
            threads: g.threads,
            per_file,
        },
        &INTERRUPTED,
        &mut |i, r| printer.result(i, r),
    );
    if let Some(b) = &printer.bar {
        b.finish_and_clear();
    }
    drop(printer);
    if !g.quiet || end.interrupted {
        eprintln!(
            "scanned {}: {} malicious, {} benign, {} errors in {:.2} s{}",
            tally.total(),
            tally.malicious,
            tally.benign,
            tally.errors,
            started.elapsed().as_secs_f64(),
            if end.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
    }
    if expanded.skipped_links > 0 && !g.quiet {
        eprintln!(
            "note: {} symbolic links inside folders not followed (--follow-symlinks)",
            expanded.skipped_links
        );
    }
    Ok(ExitCode::from(if end.interrupted {
        130
    } else if tally.errors > 0 || rule_errors > 0 {
        2
    } else if tally.malicious > 0 {
        1
    } else {
        0
    }))
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
