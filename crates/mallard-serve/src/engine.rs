//! The scanner the daemon shares (models, rules and lists loaded once, swapped whole on
//! `RELOAD`), the worker pool that runs scans, and how a result reads in clamd's words.

use crate::{Config, ServeError};
use mallard_scan::setup::{load_builtin, models_for, read_hash_list};
use mallard_scan::{ScanOptions, ScanResult, Scanner, Verdict};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Builds a scanner from the configuration: both models (the named ones, else the built-in
/// ones), the rules and the lists, with `Reasons` reasons per verdict. Any failure is an
/// error, so that a reload that fails keeps the set in use; rule files that do not compile
/// count as a failure too.
pub fn load_scanner(c: &Config) -> Result<Scanner, ServeError> {
    let (opts, caps) = load_options(c)?;
    scanner_with(
        c,
        &caps,
        ScanOptions {
            top: c.reasons,
            ..opts
        },
    )
}

/// The two scanners a daemon keeps, sharing rules and lists: one without reasons for
/// clamd's one-line replies (reasons were six sevenths of a PE file's scan time) and one
/// with them for JSON replies.
pub fn load_scanners(c: &Config) -> Result<(Scanner, Scanner), ServeError> {
    let (opts, caps) = load_options(c)?;
    let plain = scanner_with(
        c,
        &caps,
        ScanOptions {
            top: 0,
            ..opts.clone()
        },
    )?;
    let json = scanner_with(
        c,
        &caps,
        ScanOptions {
            top: c.reasons,
            ..opts
        },
    )?;
    Ok((plain, json))
}

fn setup_err(e: mallard_scan::ScanSetupError) -> ServeError {
    ServeError::Setup(e.to_string())
}

fn load_options(c: &Config) -> Result<(ScanOptions, mallard_io::Caps), ServeError> {
    let caps = mallard_io::Caps {
        max_pe_bytes: c.max_file_size.max(c.stream_max_length),
        ..mallard_io::Caps::default()
    };
    let mut opts = ScanOptions {
        threshold: c.threshold,
        max_pe_bytes: caps.max_pe_bytes,
        ..ScanOptions::default()
    };
    if !c.rules.is_empty() || c.builtin_rules {
        let walk = mallard_io::WalkOptions::default();
        let (set, errors) = mallard_rules::RuleSet::load_with(&c.rules, c.builtin_rules, &walk);
        if let Some(e) = errors.first() {
            return Err(ServeError::Setup(format!("rules: {e}")));
        }
        opts.rules = set.map(Arc::new);
    }
    if let Some(p) = &c.allow_list {
        opts.allow = read_hash_list(p).map_err(setup_err)?;
    }
    if let Some(p) = &c.deny_list {
        opts.deny = read_hash_list(p).map_err(setup_err)?;
    }
    Ok((opts, caps))
}

fn scanner_with(
    c: &Config,
    caps: &mallard_io::Caps,
    opts: ScanOptions,
) -> Result<Scanner, ServeError> {
    let (report_model, pe_model) = models_for(&c.models, &[], &[], caps).map_err(setup_err)?;
    let report_model = match report_model {
        Some(m) => m,
        None => load_builtin("api").map_err(setup_err)?,
    };
    let pe_model = match pe_model {
        Some(m) => m,
        None => load_builtin("pe").map_err(setup_err)?,
    };
    Scanner::new(Some(report_model), Some(pe_model), opts).map_err(setup_err)
}

/// The name clamd would give a detection: what decided, as `Mallard.<what>`.
///
/// `static model` → `Mallard.PE.Static`; `dynamic model` → `Mallard.Report.Dynamic`;
/// `static+dynamic ensemble` → `Mallard.Ensemble`; a decisive YARA rule →
/// `Mallard.Rule.<rule>`; the deny list → `Mallard.DenyList`.
pub fn detection_name(r: &ScanResult) -> String {
    match r.decided_by {
        "static model" => "Mallard.PE.Static".into(),
        "dynamic model" => "Mallard.Report.Dynamic".into(),
        "static+dynamic ensemble" => "Mallard.Ensemble".into(),
        "deny list" => "Mallard.DenyList".into(),
        "rules" => {
            let rule = r
                .reasons
                .iter()
                .find(|x| x.kind == "rule")
                .map(|x| x.name.split(": ").next().unwrap_or("").to_string())
                .unwrap_or_default();
            format!("Mallard.Rule.{}", clean_name(&rule))
        }
        other => format!("Mallard.{}", clean_name(other)),
    }
}

/// Keeps a name to letters, digits, `_`, `-` and `.` (a reply is one line of plain text).
fn clean_name(s: &str) -> String {
    let t: String = s
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() {
        "Unknown".into()
    } else {
        t
    }
}

/// Text safe on one reply line: no control characters (a NUL would end a `z` reply).
pub fn one_line(s: &str) -> String {
    mallard_scan::escape_controls(s).replace('\0', "\\0")
}

/// What a result says in clamd's words, after `LABEL: `: `OK`, `NAME FOUND` or `why. ERROR`.
/// `real` is the file's path on disk, replaced by `label` in error messages.
pub fn status_text(r: &ScanResult, real: &Path, label: &str) -> String {
    match r.verdict {
        Verdict::Benign => "OK".into(),
        Verdict::Malicious => format!("{} FOUND", detection_name(r)),
        Verdict::Error => {
            let msg = r.error.as_deref().unwrap_or("scan failed");
            let real = real.display().to_string();
            let msg = msg.strip_prefix(&format!("{real}: ")).unwrap_or(msg);
            let msg = one_line(&msg.replace(&real, label));
            let dot = if msg.ends_with('.') { "" } else { "." };
            format!("{msg}{dot} ERROR")
        }
    }
}

/// Every detection name of a result, for `ALLMATCHSCAN`: each decisive rule, else the one name.
pub fn all_names(r: &ScanResult) -> Vec<String> {
    if r.verdict == Verdict::Malicious && r.decided_by == "rules" {
        let names: Vec<String> = r
            .reasons
            .iter()
            .filter(|x| x.kind == "rule")
            .map(|x| {
                let rule = x.name.split(": ").next().unwrap_or("");
                format!("Mallard.Rule.{}", clean_name(rule))
            })
            .collect();
        if !names.is_empty() {
            return names;
        }
    }
    vec![detection_name(r)]
}

/// What a verdict of "cannot be scanned" means to a clamd client: a file that is neither a
/// PE file nor something that could be a sandbox report (JSON or gzip) is outside what
/// mallard judges, and clamd answers `OK` for a file it finds nothing in; so does the daemon,
/// with a warning in the JSON reply. Errors on PE files and reports stay errors.
pub fn settle(r: ScanResult, path: &Path) -> ScanResult {
    if r.verdict != Verdict::Error {
        return r;
    }
    let Ok(head) = mallard_io::read_head(path, 64) else {
        return r;
    };
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
    let first = text.iter().find(|b| !b.is_ascii_whitespace());
    let maybe_ours = head.starts_with(b"MZ")
        || head.starts_with(&[0x1f, 0x8b])
        || matches!(first, Some(b'{' | b'['));
    if maybe_ours {
        return r;
    }
    ScanResult {
        verdict: Verdict::Benign,
        decided_by: "not scanned",
        warnings: vec![
            "neither a PE file nor a sandbox report: nothing for mallard's models to judge".into(),
        ],
        error: None,
        ..r
    }
}

struct Job {
    scanner: Arc<Scanner>,
    path: PathBuf,
    reply: mpsc::Sender<ScanResult>,
}

/// Threads that scan, fed through a bounded queue. A scan past its time gets an error
/// reply at once and its thread is replaced (Rust cannot stop a thread: the stuck one
/// finishes in its own time and then leaves), up to four times the pool's size.
pub struct Pool {
    tx: Mutex<Option<SyncSender<Job>>>,
    rx: Arc<Mutex<Receiver<Job>>>,
    size: usize,
    /// Threads started beyond `size` to stand in for stuck ones, not yet gone.
    extra: Arc<AtomicUsize>,
    timeout: Duration,
}

/// Why a file could not be scanned by the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    QueueFull,
    Closed,
    TimedOut,
}

impl PoolError {
    pub fn message(self, timeout: Duration) -> String {
        match self {
            PoolError::QueueFull => "Server busy: scan queue full".into(),
            PoolError::Closed => "Server shutting down".into(),
            PoolError::TimedOut => {
                format!("Scan timed out after {} s", timeout.as_secs_f64())
            }
        }
    }
}

impl Pool {
    pub fn new(size: usize, queue: usize, timeout: Duration) -> Pool {
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let pool = Pool {
            tx: Mutex::new(Some(tx)),
            rx: Arc::new(Mutex::new(rx)),
            size: size.max(1),
            extra: Arc::new(AtomicUsize::new(0)),
            timeout,
        };
        for _ in 0..pool.size {
            pool.spawn_worker();
        }
        pool
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn spawn_worker(&self) -> bool {
        let rx = Arc::clone(&self.rx);
        let extra = Arc::clone(&self.extra);
        std::thread::Builder::new()
            .name(format!("{}serve", mallard_scan::WORKER_THREAD_PREFIX))
            .spawn(move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                let r = settle(
                    mallard_scan::scan_isolated(&job.scanner, &job.path),
                    &job.path,
                );
                let _ = job.reply.send(r);
                // A stand-in's work is done once a thread it replaced is back.
                if extra
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    return;
                }
            })
            .is_ok()
    }

    /// Queues a file; the result comes on the returned receiver.
    pub fn submit(
        &self,
        scanner: Arc<Scanner>,
        path: PathBuf,
    ) -> Result<Receiver<ScanResult>, PoolError> {
        let (reply, rx) = mpsc::channel();
        let tx = match self.tx.lock() {
            Ok(g) => g.clone().ok_or(PoolError::Closed)?,
            Err(_) => return Err(PoolError::Closed),
        };
        match tx.try_send(Job {
            scanner,
            path,
            reply,
        }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(PoolError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Closed),
        }
    }

    /// Waits for a queued file's result, at most the scan timeout.
    pub fn wait(&self, rx: &Receiver<ScanResult>) -> Result<ScanResult, PoolError> {
        match rx.recv_timeout(self.timeout) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => {
                let limit = self.size * 3;
                let grown = self
                    .extra
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < limit).then_some(n + 1)
                    })
                    .is_ok();
                if grown && !self.spawn_worker() {
                    self.extra.fetch_sub(1, Ordering::SeqCst);
                }
                Err(PoolError::TimedOut)
            }
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Closed),
        }
    }

    /// Scans one file through the queue.
    pub fn scan(&self, scanner: Arc<Scanner>, path: PathBuf) -> Result<ScanResult, PoolError> {
        let rx = self.submit(scanner, path)?;
        self.wait(&rx)
    }

    /// Refuses new work; queued files still run, then the threads leave.
    pub fn close(&self) {
        if let Ok(mut g) = self.tx.lock() {
            *g = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_what_decided() {
        let mut r = ScanResult::error(
            Path::new("/tmp/x/stream-1"),
            "/tmp/x/stream-1: bad\nthing".into(),
        );
        assert_eq!(
            status_text(&r, Path::new("/tmp/x/stream-1"), "stream"),
            "bad\\nthing. ERROR"
        );
        r.verdict = Verdict::Malicious;
        r.decided_by = "static model";
        assert_eq!(detection_name(&r), "Mallard.PE.Static");
        r.decided_by = "dynamic model";
        assert_eq!(detection_name(&r), "Mallard.Report.Dynamic");
        r.decided_by = "rules";
        r.reasons.push(reason("Upx Packed: says hi"));
        assert_eq!(detection_name(&r), "Mallard.Rule.Upx_Packed");
        r.verdict = Verdict::Benign;
        assert_eq!(status_text(&r, Path::new("x"), "x"), "OK");
    }

    fn reason(name: &str) -> mallard_model::Reason {
        mallard_model::Reason {
            kind: "rule".into(),
            name: name.into(),
            weight: 1.0,
            feature: None,
        }
    }
}
