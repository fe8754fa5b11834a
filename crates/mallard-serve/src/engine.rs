//! The scanner the daemon shares (models, rules and lists loaded once, swapped whole on
//! `RELOAD`), the worker pool that runs scans, and how a result reads in clamd's words.

use crate::{Config, ScanHook, ServeError};
use mallard_scan::setup::{load_hashed, models_hashed, read_hash_list};
use mallard_scan::{ScanOptions, ScanResult, Scanner, Verdict};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Builds a scanner from the configuration: both models (the named ones, else the built-in
/// ones), the rules and the lists, with `Reasons` reasons per verdict. Any failure is an
/// error, so that a reload that fails keeps the set in use; rule files that do not compile
/// count as a failure too.
pub fn load_scanner(c: &Config) -> Result<Scanner, ServeError> {
    let (opts, caps) = load_options(c)?;
    let (scanner, _) = scanner_with(
        c,
        &caps,
        ScanOptions {
            top: c.reasons,
            ..opts
        },
    )?;
    Ok(scanner)
}

/// What `VERSION` names as the database, as clamd names its signatures' version and date:
/// a digest of the models, rules and lists in use, and when they were loaded.
#[derive(Debug, Clone)]
pub struct Database {
    /// SHA-256 over the models' file bytes, the rules' texts and the lists' entries.
    pub digest: [u8; 32],
    pub loaded: SystemTime,
}

impl Database {
    /// `mallard VERSION/DIGEST/DATE`, clamd's `ClamAV VERSION/DB/DATE` shape: the digest's
    /// first 12 hex digits, the load time as C's `ctime` writes it, in UTC.
    pub fn version_line(&self) -> String {
        let hex: String = self.digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!(
            "mallard {}/{hex}/{}",
            env!("CARGO_PKG_VERSION"),
            ctime_utc(self.loaded)
        )
    }
}

/// The two scanners a daemon keeps, sharing rules and lists: one without reasons for
/// clamd's one-line replies (reasons were six sevenths of a PE file's scan time) and one
/// with them for JSON replies; and what they were loaded from.
pub fn load_scanners(c: &Config) -> Result<(Scanner, Scanner, Database), ServeError> {
    let (opts, caps) = load_options(c)?;
    let mut h = Sha256::new();
    if let Some(r) = &opts.rules {
        h.update(b"rules");
        h.update(r.digest());
    }
    for (tag, list) in [(&b"allow"[..], &opts.allow), (&b"deny"[..], &opts.deny)] {
        h.update(tag);
        h.update(list_digest(list));
    }
    let (plain, models) = scanner_with(
        c,
        &caps,
        ScanOptions {
            top: 0,
            ..opts.clone()
        },
    )?;
    h.update(b"models");
    for m in &models {
        h.update(m);
    }
    let (json, _) = scanner_with(
        c,
        &caps,
        ScanOptions {
            top: c.reasons,
            ..opts
        },
    )?;
    let db = Database {
        digest: h.finalize().into(),
        loaded: SystemTime::now(),
    };
    Ok((plain, json, db))
}

/// A hash list's entries, sorted, so comments and order do not change the digest.
fn list_digest(list: &HashSet<String>) -> [u8; 32] {
    let mut v: Vec<&String> = list.iter().collect();
    v.sort();
    let mut h = Sha256::new();
    for e in v {
        h.update(e.as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}

/// `Fri Dec  4 20:50:12 2026` (C's `ctime` without its newline), in UTC.
pub fn ctime_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = mallard_io::civil_date(i64::try_from(secs).unwrap_or(0));
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {day:2} {:02}:{:02}:{:02} {year}",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rest / 3_600,
        rest / 60 % 60,
        rest % 60
    )
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

/// A scanner and the SHA-256 of each model file it loaded.
fn scanner_with(
    c: &Config,
    caps: &mallard_io::Caps,
    opts: ScanOptions,
) -> Result<(Scanner, Vec<[u8; 32]>), ServeError> {
    let (report_model, pe_model, mut digests) =
        models_hashed(&c.models, &[], &[], caps).map_err(setup_err)?;
    let mut or_builtin = |m: Option<Box<dyn mallard_model::Model>>, name: &str| match m {
        Some(m) => Ok(m),
        None => {
            let (m, d) = load_hashed(Path::new(name), caps).map_err(setup_err)?;
            digests.push(d);
            Ok::<_, ServeError>(m)
        }
    };
    let report_model = or_builtin(report_model, "builtin:api")?;
    let pe_model = or_builtin(pe_model, "builtin:pe")?;
    let s = Scanner::new(Some(report_model), Some(pe_model), opts).map_err(setup_err)?;
    if s.has_dotnet_specialist() {
        // The specialist decides .NET files too: the database digest names it.
        let mut h = Sha256::new();
        h.update(mallard_scan::builtin::DOTNET);
        h.update(mallard_scan::builtin::DOTNET_STACKING.as_bytes());
        digests.push(h.finalize().into());
    }
    Ok((s, digests))
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

/// Where a queued file stands, between its waiter and the thread that scans it.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
/// Still running after its waiter gave up: its thread counts as stuck.
const LATE: u8 = 2;
const DONE: u8 = 3;
/// Given up before a thread took it: not scanned at all.
const ABANDONED: u8 = 4;

struct Job {
    scanner: Arc<Scanner>,
    path: PathBuf,
    /// A PE stream held in memory (`path` only names it), with its share of the budget.
    data: Option<(Vec<u8>, Held)>,
    reply: mpsc::Sender<ScanResult>,
    state: Arc<AtomicU8>,
}

/// Bytes of streams held in memory by all connections together (`StreamMemory`): a stream
/// that would take the total past the limit goes to a file instead.
#[derive(Debug)]
pub struct MemoryBudget {
    used: AtomicU64,
    limit: u64,
}

impl MemoryBudget {
    pub fn new(limit: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// An empty share, or none when streams never stay in memory (a limit of 0).
    pub fn share(self: &Arc<Self>) -> Option<Held> {
        (self.limit > 0).then(|| Held {
            budget: Arc::clone(self),
            n: 0,
        })
    }

    /// Bytes held now.
    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }
}

/// A share of the [`MemoryBudget`], given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: Arc<MemoryBudget>,
    n: u64,
}

impl Held {
    /// Takes `more` bytes if the budget has them.
    pub fn grow(&mut self, more: u64) -> bool {
        let b = &self.budget;
        let took = b
            .used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                u.checked_add(more).filter(|&t| t <= b.limit)
            });
        if took.is_ok() {
            self.n += more;
        }
        took.is_ok()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.n, Ordering::SeqCst);
    }
}

/// A file in the queue or on a thread, as its waiter holds it.
pub struct Pending {
    rx: Receiver<ScanResult>,
    state: Arc<AtomicU8>,
}

/// Thread counts, shared with the threads themselves.
#[derive(Default)]
struct Counts {
    /// Threads alive.
    live: AtomicUsize,
    /// Threads on a file past its time.
    late: AtomicUsize,
}

/// Threads that scan, fed through a bounded queue. A scan past its time gets an error
/// reply at once and, while fewer than `size` threads are free of late scans, a stand-in
/// thread is started (Rust cannot stop a thread: the stuck one finishes in its own time),
/// up to four times the pool's size; a thread leaves after a scan when more than `size`
/// are free of late scans.
pub struct Pool {
    tx: Mutex<Option<SyncSender<Job>>>,
    rx: Arc<Mutex<Receiver<Job>>>,
    size: usize,
    counts: Arc<Counts>,
    timeout: Duration,
    hook: Option<ScanHook>,
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

/// Counts a thread alive until it leaves, however it leaves (unless it took itself off).
struct Alive {
    counts: Arc<Counts>,
    counted: bool,
}

impl Drop for Alive {
    fn drop(&mut self) {
        if self.counted {
            self.counts.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Pool {
    pub fn new(size: usize, queue: usize, timeout: Duration, hook: Option<ScanHook>) -> Pool {
        let (tx, rx) = mpsc::sync_channel(queue.max(1));
        let pool = Pool {
            tx: Mutex::new(Some(tx)),
            rx: Arc::new(Mutex::new(rx)),
            size: size.max(1),
            counts: Arc::new(Counts::default()),
            timeout,
            hook,
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
        let counts = Arc::clone(&self.counts);
        let hook = self.hook.clone();
        let size = self.size;
        counts.live.fetch_add(1, Ordering::SeqCst);
        let alive = Alive {
            counts: Arc::clone(&counts),
            counted: true,
        };
        std::thread::Builder::new()
            .name(format!("{}serve", mallard_scan::WORKER_THREAD_PREFIX))
            .spawn(move || {
                let mut alive = alive;
                loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let taken = job.state.compare_exchange(
                        QUEUED,
                        RUNNING,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                    if taken.is_err() {
                        continue;
                    }
                    if let Some(h) = &hook {
                        (h.0)(&job.path);
                    }
                    let r = match job.data {
                        // Only streams with the `MZ` magic stay in memory: no settling.
                        Some((bytes, held)) => {
                            let r = mallard_scan::scan_pe_bytes_isolated(
                                &job.scanner,
                                &job.path,
                                bytes,
                            );
                            drop(held);
                            r
                        }
                        None => settle(
                            mallard_scan::scan_isolated(&job.scanner, &job.path),
                            &job.path,
                        ),
                    };
                    let _ = job.reply.send(r);
                    if job.state.swap(DONE, Ordering::SeqCst) == LATE {
                        counts.late.fetch_sub(1, Ordering::SeqCst);
                    }
                    // More threads free of late scans than the pool's size: a stand-in
                    // whose stuck thread is back, or that thread itself; one leaves.
                    let leave = counts
                        .live
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| {
                            (l.saturating_sub(counts.late.load(Ordering::SeqCst)) > size)
                                .then(|| l - 1)
                        });
                    if leave.is_ok() {
                        alive.counted = false;
                        return;
                    }
                }
            })
            .is_ok()
    }

    /// Queues a file; its result comes through [`Pool::wait`].
    pub fn submit(&self, scanner: Arc<Scanner>, path: PathBuf) -> Result<Pending, PoolError> {
        self.submit_job(scanner, path, None)
    }

    fn submit_job(
        &self,
        scanner: Arc<Scanner>,
        path: PathBuf,
        data: Option<(Vec<u8>, Held)>,
    ) -> Result<Pending, PoolError> {
        let (reply, rx) = mpsc::channel();
        let tx = match self.tx.lock() {
            Ok(g) => g.clone().ok_or(PoolError::Closed)?,
            Err(_) => return Err(PoolError::Closed),
        };
        let state = Arc::new(AtomicU8::new(QUEUED));
        match tx.try_send(Job {
            scanner,
            path,
            data,
            reply,
            state: Arc::clone(&state),
        }) {
            Ok(()) => Ok(Pending { rx, state }),
            Err(TrySendError::Full(_)) => Err(PoolError::QueueFull),
            Err(TrySendError::Disconnected(_)) => Err(PoolError::Closed),
        }
    }

    /// Waits for a queued file's result, at most the scan timeout.
    pub fn wait(&self, p: &Pending) -> Result<ScanResult, PoolError> {
        match p.rx.recv_timeout(self.timeout) {
            Ok(r) => Ok(r),
            Err(RecvTimeoutError::Timeout) => {
                if let Ok(r) = p.rx.try_recv() {
                    return Ok(r);
                }
                let given_up =
                    p.state
                        .compare_exchange(QUEUED, ABANDONED, Ordering::SeqCst, Ordering::SeqCst);
                match given_up {
                    // Still queued: no thread is stuck on it.
                    Ok(_) => {}
                    Err(RUNNING) => {
                        if p.state
                            .compare_exchange(RUNNING, LATE, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                        {
                            self.counts.late.fetch_add(1, Ordering::SeqCst);
                            self.stand_in();
                        }
                    }
                    // Done just now.
                    Err(_) => {
                        if let Ok(r) = p.rx.try_recv() {
                            return Ok(r);
                        }
                    }
                }
                Err(PoolError::TimedOut)
            }
            Err(RecvTimeoutError::Disconnected) => Err(PoolError::Closed),
        }
    }

    /// Starts a thread for one that is stuck, while fewer than `size` are free and the
    /// pool is under four times its size.
    fn stand_in(&self) {
        let c = &self.counts;
        let free = c
            .live
            .load(Ordering::SeqCst)
            .saturating_sub(c.late.load(Ordering::SeqCst));
        if free < self.size && c.live.load(Ordering::SeqCst) < self.size * 4 {
            self.spawn_worker();
        }
    }

    /// Scans one file through the queue.
    pub fn scan(&self, scanner: Arc<Scanner>, path: PathBuf) -> Result<ScanResult, PoolError> {
        let p = self.submit(scanner, path)?;
        self.wait(&p)
    }

    /// Scans a PE file held in memory through the queue; `path` names it in the result.
    pub fn scan_pe_bytes(
        &self,
        scanner: Arc<Scanner>,
        path: PathBuf,
        bytes: Vec<u8>,
        held: Held,
    ) -> Result<ScanResult, PoolError> {
        let p = self.submit_job(scanner, path, Some((bytes, held)))?;
        self.wait(&p)
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
    fn ctime_utc_writes_dates_as_c_does() {
        // Expected values from Python's time.asctime(time.gmtime(t)) (the C library's).
        for (t, want) in [
            (0, "Thu Jan  1 00:00:00 1970"),
            (951_782_400, "Tue Feb 29 00:00:00 2000"),
            (1_733_304_761, "Wed Dec  4 09:32:41 2024"),
            (1_764_896_461, "Fri Dec  5 01:01:01 2025"),
            (4_102_444_799, "Thu Dec 31 23:59:59 2099"),
        ] {
            let at = UNIX_EPOCH + Duration::from_secs(t);
            assert_eq!(ctime_utc(at), want, "{t}");
        }
    }

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

    #[test]
    fn the_stream_memory_budget_is_never_overdrawn_and_comes_back() {
        let b = MemoryBudget::new(100);
        let mut x = b.share().unwrap();
        let mut y = b.share().unwrap();
        assert!(x.grow(60));
        assert!(!y.grow(41), "60 + 41 is past 100");
        assert!(y.grow(40));
        assert_eq!(b.used(), 100);
        assert!(!x.grow(1));
        drop(x);
        assert_eq!(b.used(), 40);
        assert!(y.grow(60));
        drop(y);
        assert_eq!(b.used(), 0);
        assert!(
            MemoryBudget::new(0).share().is_none(),
            "0: streams never stay in memory"
        );
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
