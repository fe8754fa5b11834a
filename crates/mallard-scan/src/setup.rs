//! Getting a scan ready: which models a batch needs (built-in ones load only when some input
//! needs them: start-up time is scan latency), model names like `builtin:pe`, and the
//! allow/deny hash lists.

use crate::{builtin, is_pe, ScanSetupError};
use mallard_io::Caps;
use mallard_model::{InputKind, Model};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

fn setup(msg: String) -> ScanSetupError {
    ScanSetupError(msg)
}

/// A model to score with, by file path, or `builtin:NAME` for a built-in one; files are
/// read and checked under `caps`. Loaded for scoring (`mallard_model::load_for_scoring`):
/// without the training history, which a scan never reads.
pub fn load_model(spec: &Path, caps: &Caps) -> Result<Box<dyn Model>, ScanSetupError> {
    match spec.to_str().and_then(|s| s.strip_prefix("builtin:")) {
        Some(name) => load_builtin(name),
        None => mallard_model::load_for_scoring(spec, caps)
            .map_err(|e| setup(format!("{}: {e}", spec.display()))),
    }
}

/// A model file or `builtin:NAME`, loaded whole (training summary and table settings
/// included), for evaluating or inspecting rather than scanning.
pub fn load_full_model(spec: &Path, caps: &Caps) -> Result<Box<dyn Model>, ScanSetupError> {
    match spec.to_str().and_then(|s| s.strip_prefix("builtin:")) {
        Some(name) => builtin::load(name)
            .ok_or_else(|| {
                setup(format!(
                    "no built-in model {name:?} ({})",
                    builtin::NAMES.join(", ")
                ))
            })?
            .map_err(|e| setup(format!("built-in model {name}: {e}"))),
        None => mallard_model::load_with(spec, caps)
            .map_err(|e| setup(format!("{}: {e}", spec.display()))),
    }
}

/// A built-in model by name (`api`, `pe`, `clamp`), loaded for scoring as in [`load_model`]
/// (`builtin::load` gives the whole model).
pub fn load_builtin(name: &str) -> Result<Box<dyn Model>, ScanSetupError> {
    let known = builtin::NAMES.iter().find(|n| **n == name);
    match known.zip(builtin::bytes(name)) {
        Some((n, b)) => mallard_model::load_builtin_for_scoring(n, b, &Caps::default())
            .map_err(|e| setup(format!("built-in model {name}: {e}"))),
        None => Err(setup(format!(
            "no built-in model {name:?} ({})",
            builtin::NAMES.join(", ")
        ))),
    }
}

/// The report model and the PE model for a batch: those named in `specs` (one per kind of
/// input), else a built-in one for each kind some input needs: reports (given, found among
/// `inputs`, or beside a PE file) and PE files.
#[allow(clippy::type_complexity)]
pub fn models_for(
    specs: &[PathBuf],
    inputs: &[PathBuf],
    reports: &[PathBuf],
    caps: &Caps,
) -> Result<(Option<Box<dyn Model>>, Option<Box<dyn Model>>), ScanSetupError> {
    // No hashing here: a one-file scan would pay a SHA-256 of the built-in model.
    let (report, pe, _) = models_loaded(specs, inputs, reports, caps, false, &mut Listings::new())?;
    Ok((report, pe))
}

/// The report model, the PE model, and the SHA-256 of each loaded model file.
pub type HashedModels = (
    Option<Box<dyn Model>>,
    Option<Box<dyn Model>>,
    Vec<[u8; 32]>,
);

/// [`models_for`], plus the SHA-256 of each loaded model file's bytes (the `specs` in order,
/// then any built-in one added), taken from the very bytes that were loaded: a daemon can
/// name the models it serves with.
pub fn models_hashed(
    specs: &[PathBuf],
    inputs: &[PathBuf],
    reports: &[PathBuf],
    caps: &Caps,
) -> Result<HashedModels, ScanSetupError> {
    models_loaded(specs, inputs, reports, caps, true, &mut Listings::new())
}

/// Per folder of a PE input, the names in it that could be reports, as listed to decide
/// whether the report model is needed; the scanner keeps them rather than list again.
type Listings = std::collections::HashMap<PathBuf, std::sync::Arc<HashSet<std::ffi::OsString>>>;

/// [`models_for`], with each model's SHA-256 when `hash` (else the list stays empty), and
/// the folders listed for reports into `listings`.
fn models_loaded(
    specs: &[PathBuf],
    inputs: &[PathBuf],
    reports: &[PathBuf],
    caps: &Caps,
    hash: bool,
    listings: &mut Listings,
) -> Result<HashedModels, ScanSetupError> {
    let (mut report_model, mut pe_model) = (None, None);
    let mut digests = Vec::new();
    for p in specs {
        let (m, digest) = load_maybe_hashed(p, caps, hash)?;
        digests.extend(digest);
        // Opcode-sequence and byte models read PE files, as feature models do.
        let reads_pe = matches!(m.meta().input, InputKind::Features | InputKind::Bytes)
            || m.meta().feature_set.as_deref() == Some("opcodes");
        let slot = if reads_pe {
            &mut pe_model
        } else {
            &mut report_model
        };
        if slot.is_some() {
            return Err(setup(format!(
                "{}: two models for the same kind of input",
                p.display()
            )));
        }
        *slot = Some(m);
    }
    let pe_files: Vec<&PathBuf> = inputs.iter().filter(|p| is_pe(p)).collect();
    let reports_needed = pe_files.len() < inputs.len()
        || !reports.is_empty()
        || any_report_beside(&pe_files, listings);
    if report_model.is_none() && reports_needed {
        let (m, digest) = load_maybe_hashed(Path::new("builtin:api"), caps, hash)?;
        report_model = Some(m);
        digests.extend(digest);
    }
    if pe_model.is_none() && !pe_files.is_empty() {
        let (m, digest) = load_maybe_hashed(Path::new("builtin:pe"), caps, hash)?;
        pe_model = Some(m);
        digests.extend(digest);
    }
    Ok((report_model, pe_model, digests))
}

/// [`load_model`] and the SHA-256 of the bytes loaded (one read).
pub fn load_hashed(spec: &Path, caps: &Caps) -> Result<(Box<dyn Model>, [u8; 32]), ScanSetupError> {
    let (m, digest) = load_maybe_hashed(spec, caps, true)?;
    Ok((m, digest.unwrap_or_default()))
}

/// [`load_model`], and with `hash` the SHA-256 of the bytes it loaded.
#[allow(clippy::type_complexity)]
fn load_maybe_hashed(
    spec: &Path,
    caps: &Caps,
    hash: bool,
) -> Result<(Box<dyn Model>, Option<[u8; 32]>), ScanSetupError> {
    if !hash {
        return Ok((load_model(spec, caps)?, None));
    }
    match spec.to_str().and_then(|s| s.strip_prefix("builtin:")) {
        Some(name) => {
            let m = load_builtin(name)?;
            let bytes = builtin::bytes(name).unwrap_or_default();
            Ok((m, Some(Sha256::digest(bytes).into())))
        }
        None => {
            // The read error names the file already.
            let bytes = mallard_io::read_capped(spec, caps.max_model_bytes)
                .map_err(|e| setup(e.to_string()))?;
            let m = mallard_model::load_bytes_for_scoring(&bytes, caps)
                .map_err(|e| setup(format!("{}: {e}", spec.display())))?;
            Ok((m, Some(Sha256::digest(&bytes).into())))
        }
    }
}

/// Whether any PE file's folder holds a report that could pair with it; each folder is
/// read once, however many files it holds.
fn any_report_beside(pe_files: &[&PathBuf], listings: &mut Listings) -> bool {
    for p in pe_files {
        let dir = crate::folder_of(p);
        if !listings.contains_key(dir) {
            listings.insert(dir.to_path_buf(), crate::report_names(dir).into());
        }
    }
    listings.values().any(|names| !names.is_empty())
}

/// Reads a sha256 list: one 64-hex value per line, blank lines and `#` comments skipped.
pub fn read_hash_list(path: &Path) -> Result<HashSet<String>, ScanSetupError> {
    // Via read_capped: a FIFO given as a list cannot hang the scan, a huge file is refused
    // by its size. Lists count as tables for the caps.
    let bytes = mallard_io::read_capped(path, Caps::default().max_table_bytes)
        .map_err(|e| setup(e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| setup(format!("{}: not UTF-8 text", path.display())))?;
    let mut set = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        if l.len() != 64 || !l.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(setup(format!(
                "{}:{}: not a sha256 (64 hex digits): {l:?}",
                path.display(),
                i + 1
            )));
        }
        set.insert(l.to_ascii_lowercase());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lists_skip_comments_and_name_bad_lines() {
        let d = std::env::temp_dir().join(format!("mallard-setup-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("allow.txt");
        let h = "AB".repeat(32);
        std::fs::write(&f, format!("# allowed\n\n{h}  # tool\n")).unwrap();
        assert_eq!(
            read_hash_list(&f).unwrap(),
            HashSet::from([h.to_lowercase()])
        );
        std::fs::write(&f, format!("{h}\nabc\n")).unwrap();
        let e = read_hash_list(&f).unwrap_err().to_string();
        assert!(
            e.ends_with(":2: not a sha256 (64 hex digits): \"abc\""),
            "{e}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn built_in_models_load_only_for_inputs_that_need_them() {
        let d = std::env::temp_dir().join(format!("mallard-setup-m-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let pe = d.join("a.exe");
        std::fs::write(&pe, b"MZ\x90\x00").unwrap();
        let (r, p) = models_for(&[], std::slice::from_ref(&pe), &[], &Caps::default()).unwrap();
        assert!(r.is_none() && p.is_some());
        std::fs::write(d.join("a.exe.json"), b"{}").unwrap();
        let (r, _) = models_for(&[], std::slice::from_ref(&pe), &[], &Caps::default()).unwrap();
        assert!(
            r.is_some(),
            "a report beside the PE file needs the report model"
        );
        let two = [PathBuf::from("builtin:pe"), PathBuf::from("builtin:clamp")];
        let e = models_for(&two, &[], &[], &Caps::default()).err().unwrap();
        assert!(e.to_string().contains("two models"), "{e}");
        let e = load_model(Path::new("builtin:nope"), &Caps::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("api, pe, clamp"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

/// What a scanner is built from, as a front end gathers it (flags, a config file).
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Model files or `builtin:NAME`, at most one per kind of input.
    pub models: Vec<PathBuf>,
    /// Extra YARA rule files or folders.
    pub rules: Vec<PathBuf>,
    /// Run mallard's built-in rules on PE files.
    pub builtin_rules: bool,
    pub allow: Option<PathBuf>,
    pub deny: Option<PathBuf>,
    pub walk: mallard_io::WalkOptions,
}

/// A scanner for `inputs` (already expanded): the models they need and the rules, loaded
/// side by side (on a one-file scan yara-x's start-up hides behind the model's), with the
/// caps of `caps`. Rule files that fail to compile come back beside the scanner: the scan
/// goes on without them.
pub fn prepare(
    plan: &Plan,
    inputs: &[PathBuf],
    mut opts: crate::ScanOptions,
    caps: &Caps,
) -> Result<(crate::Scanner, Vec<mallard_rules::RulesError>), ScanSetupError> {
    let any_pe = inputs.iter().any(|p| is_pe(p));
    // The built-in rules alone cost nothing until a file might match them (they load
    // then), so they are always there: an EICAR test file that is not a PE is caught too.
    let want_rules = !plan.rules.is_empty() || plan.builtin_rules;
    // One PE file: the rules thread also reads it and checks it (yara-x runs, ~2 ms, only if
    // it might match) while this thread loads the model.
    let one_pe = match inputs {
        [p] if any_pe => Some(p.as_path()),
        _ => None,
    };
    let (max_bytes, timeout) = (opts.max_pe_bytes, opts.rule_timeout);
    // Owned, so that the rules can run on a thread nobody waits to start (below).
    let (rule_files, builtin, walk) = (plan.rules.clone(), plan.builtin_rules, plan.walk);
    let beside = !plan.rules.is_empty() || one_pe.is_some();
    let one_pe = one_pe.map(Path::to_path_buf);
    let load_rules = move || {
        let (set, errors) = mallard_rules::RuleSet::load_with(&rule_files, builtin, &walk);
        let pre = match (&set, &one_pe) {
            (Some(rs), Some(path)) => prescan(rs, path, max_bytes, timeout),
            _ => None,
        };
        (set, errors, pre)
    };
    // Their own thread only when there is work for it (user rules to compile, or a file to
    // read and check); the built-in rules alone are ready at once. Whichever thread comes
    // to the job first does it: on a busy machine the new thread may start only after the
    // models are loaded, and then this one does the rules rather than wait for it. The
    // thread is not joined (a join waits for its exit and thread-local clean-up): it sends
    // its result.
    fn take<F>(job: &std::sync::Mutex<Option<F>>) -> Option<F> {
        job.lock().ok().and_then(|mut j| j.take())
    }
    fn run<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
    }
    let job = std::sync::Arc::new(std::sync::Mutex::new(Some(load_rules)));
    let (tx, rx) = std::sync::mpsc::channel();
    if want_rules && beside {
        let (job, tx) = (job.clone(), tx.clone());
        let _ = std::thread::Builder::new().spawn(move || {
            if let Some(f) = take(&job) {
                let _ = tx.send(run(f));
            }
        });
    }
    drop(tx);
    let mut listings = Listings::new();
    let models = models_loaded(
        &plan.models,
        inputs,
        &opts.reports,
        caps,
        false,
        &mut listings,
    );
    let rules = match take(&job) {
        Some(f) if want_rules => Some(run(f)),
        Some(_) => None,
        // The thread has the job: its result, or (it cannot fail to send, the job's panic
        // is caught) the same error as a panic, never a scan without its rules.
        None => Some(rx.recv().unwrap_or_else(|_| Err(Box::new("no result")))),
    };
    let (report_model, pe_model, _) = models?;
    let mut rule_errors = Vec::new();
    let mut prescanned = None;
    if let Some(joined) = rules {
        let (set, errors, pre) =
            joined.map_err(|_| setup("loading the YARA rules failed unexpectedly".into()))?;
        rule_errors = errors;
        opts.rules = set.map(std::sync::Arc::new);
        prescanned = pre;
    }
    if let Some(p) = &plan.allow {
        opts.allow = read_hash_list(p)?;
    }
    if let Some(p) = &plan.deny {
        opts.deny = read_hash_list(p)?;
    }
    let scanner = crate::Scanner::new(report_model, pe_model, opts)?;
    if let Ok(mut slot) = scanner.prescan.lock() {
        *slot = prescanned;
    }
    if let Ok(mut names) = scanner.report_names.lock() {
        names.extend(listings);
    }
    Ok((scanner, rule_errors))
}

/// Reads `path` and runs `rules` on it for [`prepare`]. None when it cannot be read (the
/// scan reads it again and reports why) or the rules panic (the scan runs them again, where
/// a panic is that file's error result).
fn prescan(
    rules: &mallard_rules::RuleSet,
    path: &Path,
    max_bytes: u64,
    timeout: std::time::Duration,
) -> Option<crate::Prescan> {
    let bytes = mallard_io::read_capped(path, max_bytes).ok()?;
    let scanned =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rules.scan(&bytes, timeout)));
    Some(crate::Prescan {
        path: path.to_path_buf(),
        rules: scanned.ok()?,
        bytes,
    })
}
