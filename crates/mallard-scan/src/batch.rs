//! Scanning a batch so that one bad input never costs the others.
//!
//! Each input runs on a worker thread, inside `catch_unwind`: a panic becomes an `error`
//! result for that input. A watchdog (the calling thread) gives every input a time budget
//! counted from when a worker starts it; an input that runs past it gets an `error` result
//! at once and its worker is retired and replaced. Rust cannot stop a thread, so a stuck
//! worker is left detached: it keeps its CPU and memory until it finishes (its late result
//! is dropped) or the process exits. That is the price of never waiting on one input.
//! Allocation failure aborts the process and cannot be caught; the size caps checked before
//! each read are the defence against it.

use crate::{ScanResult, Scanner};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a batch is run.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    /// Worker threads (at least one is used).
    pub threads: usize,
    /// Time one input may take from when a worker starts it.
    pub per_file: Duration,
}

/// How a batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEnd {
    /// Inputs given a result.
    pub done: usize,
    /// Whether `stop` was raised before every input had a result.
    pub interrupted: bool,
}

/// Prefix of worker thread names, so a panic hook can recognise (and quieten) them.
pub const WORKER_THREAD_PREFIX: &str = "mallard-scan-";

struct Shared {
    scanner: Arc<Scanner>,
    paths: Vec<PathBuf>,
    next: AtomicUsize,
    stop: AtomicBool,
    per_file: Duration,
    /// Whether a file's rules may take a thread of their own: only when there are fewer
    /// inputs than threads, so that `--threads` stays the number of busy cores.
    beside: bool,
}

/// What one worker is doing: the input and when it started it.
struct Slot {
    busy: Mutex<Option<(usize, Instant)>>,
    retired: AtomicBool,
}

/// The message of a caught panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

fn over_time(path: &std::path::Path, budget: Duration) -> ScanResult {
    ScanResult::error(
        path,
        format!(
            "{}: took longer than {} s, given up (the rest of the batch goes on)",
            path.display(),
            budget.as_secs_f64()
        ),
    )
}

/// Scans one input in isolation: a panic becomes an error result.
pub fn scan_isolated(scanner: &Scanner, path: &std::path::Path) -> ScanResult {
    isolated(scanner, path, true)
}

/// [`Scanner::scan_pe_bytes`] in isolation: a panic becomes an error result naming `path`.
pub fn scan_pe_bytes_isolated(
    scanner: &Scanner,
    path: &std::path::Path,
    bytes: Vec<u8>,
) -> ScanResult {
    caught(path, || scanner.scan_pe_bytes(path, bytes))
}

/// [`scan_isolated`]; `beside` as in [`Scanner::scan_path_with`].
fn isolated(scanner: &Scanner, path: &std::path::Path, beside: bool) -> ScanResult {
    caught(path, || scanner.scan_path_with(path, beside))
}

fn caught(path: &std::path::Path, scan: impl FnOnce() -> ScanResult) -> ScanResult {
    match catch_unwind(AssertUnwindSafe(scan)) {
        Ok(r) => r,
        Err(p) => ScanResult::error(
            path,
            format!(
                "{}: internal error while scanning (panic: {}); the rest of the batch goes on",
                path.display(),
                panic_message(p.as_ref())
            ),
        ),
    }
}

fn worker(shared: Arc<Shared>, slot: Arc<Slot>, tx: mpsc::Sender<(usize, ScanResult)>) {
    loop {
        if shared.stop.load(Ordering::Relaxed) || slot.retired.load(Ordering::Relaxed) {
            return;
        }
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(path) = shared.paths.get(i) else {
            return;
        };
        let t0 = Instant::now();
        if let Ok(mut b) = slot.busy.lock() {
            *b = Some((i, t0));
        }
        let mut r = isolated(&shared.scanner, path, shared.beside);
        // Judged here too, so an input over budget gets the same result whether or not
        // the watchdog looked in time.
        if t0.elapsed() > shared.per_file {
            r = over_time(path, shared.per_file);
        }
        if let Ok(mut b) = slot.busy.lock() {
            *b = None;
        }
        if tx.send((i, r)).is_err() {
            return;
        }
    }
}

fn spawn_worker(
    n: usize,
    shared: &Arc<Shared>,
    tx: &mpsc::Sender<(usize, ScanResult)>,
) -> Option<Arc<Slot>> {
    let slot = Arc::new(Slot {
        busy: Mutex::new(None),
        retired: AtomicBool::new(false),
    });
    let (s, w, t) = (shared.clone(), slot.clone(), tx.clone());
    std::thread::Builder::new()
        .name(format!("{WORKER_THREAD_PREFIX}{n}"))
        .spawn(move || worker(s, w, t))
        .ok()
        .map(|_| slot)
}

/// Scans `paths` on `opts.threads` workers and calls `on_result(index, result)` for each
/// input as it finishes (completion order; input order with one thread). Returns when
/// every input has a result, or soon after `stop` is raised (Ctrl-C).
pub fn scan_batch(
    scanner: Arc<Scanner>,
    paths: Vec<PathBuf>,
    opts: BatchOptions,
    stop: &AtomicBool,
    on_result: &mut dyn FnMut(usize, ScanResult),
) -> BatchEnd {
    let total = paths.len();
    let shared = Arc::new(Shared {
        scanner,
        paths,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        per_file: opts.per_file,
        beside: opts.threads > total,
    });
    let (tx, rx) = mpsc::channel();
    let mut spawned = 0usize;
    let mut slots: Vec<Arc<Slot>> = Vec::new();
    for _ in 0..opts.threads.clamp(1, total.max(1)) {
        if let Some(s) = spawn_worker(spawned, &shared, &tx) {
            slots.push(s);
        }
        spawned += 1;
    }
    let mut reported = vec![false; total];
    let mut done = 0usize;
    let mut finish = |i: usize, r: ScanResult, reported: &mut Vec<bool>, done: &mut usize| {
        if let Some(seen) = reported.get_mut(i) {
            if !*seen {
                *seen = true;
                *done += 1;
                on_result(i, r);
            }
        }
    };
    // No worker could be started (thread limit): scan here, without the time budget.
    if slots.is_empty() {
        for i in 0..total {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let r = isolated(&shared.scanner, &shared.paths[i], shared.beside);
            finish(i, r, &mut reported, &mut done);
        }
        return BatchEnd {
            done,
            interrupted: done < total,
        };
    }
    let tick = Duration::from_millis(50).min(opts.per_file);
    while done < total {
        if stop.load(Ordering::Relaxed) {
            shared.stop.store(true, Ordering::Relaxed);
            return BatchEnd {
                done,
                interrupted: true,
            };
        }
        match rx.recv_timeout(tick) {
            Ok((i, r)) => finish(i, r, &mut reported, &mut done),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Every worker gone with inputs left: cannot happen while panics are caught,
            // but never wait forever.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let mut replace = 0usize;
        for s in &slots {
            if s.retired.load(Ordering::Relaxed) {
                continue;
            }
            let stuck = match s.busy.lock() {
                Ok(b) => b.filter(|(_, t0)| t0.elapsed() > opts.per_file),
                Err(_) => None,
            };
            if let Some((i, _)) = stuck {
                s.retired.store(true, Ordering::Relaxed);
                replace += 1;
                finish(
                    i,
                    over_time(&shared.paths[i], opts.per_file),
                    &mut reported,
                    &mut done,
                );
            }
        }
        slots.retain(|s| !s.retired.load(Ordering::Relaxed));
        for _ in 0..replace {
            if let Some(s) = spawn_worker(spawned, &shared, &tx) {
                slots.push(s);
            }
            spawned += 1;
        }
        if slots.is_empty() {
            break;
        }
    }
    // Inputs left without a result (all workers lost): each gets an error, never silence.
    for i in 0..total {
        if !reported[i] {
            let r = ScanResult::error(
                &shared.paths[i],
                format!(
                    "{}: not scanned (no worker left)",
                    shared.paths[i].display()
                ),
            );
            finish(i, r, &mut reported, &mut done);
        }
    }
    BatchEnd {
        done,
        interrupted: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ScanOptions, Verdict};
    use mallard_model::{Input, InputKind, Meta, Model, ModelError, Reason};

    /// A report model that panics on `Boom`, sleeps on `Slow` and otherwise scores the
    /// share of calls named `Bad`.
    struct Mock(Meta);

    impl Model for Mock {
        fn meta(&self) -> &Meta {
            &self.0
        }
        fn predict_proba(&self, inputs: &[Input<'_>]) -> Result<Vec<f32>, ModelError> {
            let mut out = Vec::new();
            for i in inputs {
                let Input::Apis(a) = i else { unreachable!() };
                if a.iter().any(|x| x == "Boom") {
                    panic!("mock model exploded");
                }
                if a.iter().any(|x| x == "Slow") {
                    std::thread::sleep(Duration::from_secs(5));
                }
                let p = a.iter().filter(|x| *x == "Bad").count() as f32 / a.len() as f32;
                out.extend([1.0 - p, p]);
            }
            Ok(out)
        }
        fn explain(&self, _: &Input<'_>, _: usize) -> Result<Vec<Reason>, ModelError> {
            Ok(Vec::new())
        }
        fn to_file(&self) -> Result<mallard_model::ModelFile, ModelError> {
            Err(ModelError::Invalid("a test double is never saved".into()))
        }
    }

    fn report(path: &std::path::Path, apis: &[&str]) {
        let calls: Vec<String> = apis
            .iter()
            .map(|a| format!(r#"{{"api": "{a}", "arguments": {{}}}}"#))
            .collect();
        std::fs::write(
            path,
            format!(
                r#"{{"info": {{"version": "2.0.7"}}, "behavior": {{"processes": [{{"pid": 4, "process_name": "x.exe", "calls": [{}]}}]}}}}"#,
                calls.join(",")
            ),
        )
        .unwrap();
    }

    #[test]
    fn a_panic_and_a_stuck_input_cost_only_their_own_results() {
        let d = std::env::temp_dir().join(format!("mallard-scan-batch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        report(&d.join("bad.json"), &["Bad", "Bad", "Ok"]);
        report(&d.join("boom.json"), &["Boom", "Ok"]);
        report(&d.join("slow.json"), &["Slow", "Ok"]);
        report(&d.join("good.json"), &["Ok", "Ok", "Ok"]);
        let meta = Meta::new(
            "mock",
            InputKind::ApiSequence,
            vec!["benign".into(), "malicious".into()],
        );
        let scanner = Arc::new(
            Scanner::new(
                Some(Box::new(Mock(meta))),
                None,
                ScanOptions {
                    top: 0,
                    ..ScanOptions::default()
                },
            )
            .unwrap(),
        );
        let names = ["bad.json", "boom.json", "slow.json", "good.json"];
        let paths: Vec<PathBuf> = names.iter().map(|n| d.join(n)).collect();
        for threads in [1, 3] {
            let t = Instant::now();
            let mut got: Vec<(usize, ScanResult)> = Vec::new();
            let end = scan_batch(
                scanner.clone(),
                paths.clone(),
                BatchOptions {
                    threads,
                    per_file: Duration::from_millis(500),
                },
                &AtomicBool::new(false),
                &mut |i, r| got.push((i, r)),
            );
            // The stuck input (5 s) is given up at its budget (0.5 s), not waited for; the
            // margin is for a loaded 2-core CI machine.
            assert!(
                t.elapsed() < Duration::from_millis(4500),
                "{:?}",
                t.elapsed()
            );
            assert_eq!(
                end,
                BatchEnd {
                    done: 4,
                    interrupted: false
                }
            );
            let mut idx: Vec<usize> = got.iter().map(|(i, _)| *i).collect();
            if threads == 1 {
                // One worker: completion order is input order, except that the stuck input
                // is reported when given up, after the next one may have finished.
                assert_eq!(&idx[..2], &[0, 1]);
            }
            idx.sort();
            assert_eq!(idx, vec![0, 1, 2, 3]);
            let by = |i: usize| &got.iter().find(|(j, _)| *j == i).unwrap().1;
            assert_eq!(by(0).verdict, Verdict::Malicious);
            assert_eq!(by(3).verdict, Verdict::Benign);
            let e1 = by(1).error.clone().unwrap_or_default();
            assert!(
                by(1).verdict == Verdict::Error
                    && e1.contains("boom.json")
                    && e1.contains("mock model exploded"),
                "{e1}"
            );
            let e2 = by(2).error.clone().unwrap_or_default();
            assert!(
                by(2).verdict == Verdict::Error && e2.contains("took longer than 0.5 s"),
                "{e2}"
            );
        }
        // Raised stop: returns at once, interrupted.
        let end = scan_batch(
            scanner,
            paths,
            BatchOptions {
                threads: 1,
                per_file: Duration::from_secs(60),
            },
            &AtomicBool::new(true),
            &mut |_, _| {},
        );
        assert!(end.interrupted && end.done < 4);
        std::fs::remove_dir_all(&d).ok();
    }
}
