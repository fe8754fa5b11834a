//! Verdicts for inputs, each with the reasons behind it.
//!
//! The engine reads an input (a sandbox report, or a PE file: recognised by its `MZ`
//! magic), asks the matching model for class probabilities and explanations, and never
//! fails as a whole: an input that cannot be read or scored becomes a result with verdict
//! [`Verdict::Error`] and a one-line message naming the problem. [`scan_batch`] runs many
//! inputs so that a panic or a stuck input costs only its own result.
//!
//! Inputs are only opened as regular files (never a FIFO or device, see `mallard_io`) and
//! their size is checked against the caps before anything is read.

mod batch;
pub mod builtin;
mod dotnet;
pub mod setup;
pub use batch::{
    scan_batch, scan_isolated, scan_pe_bytes_isolated, BatchEnd, BatchOptions, WORKER_THREAD_PREFIX,
};
mod output;
pub use output::{escape_controls, quiet_worker_panics, InOrder, Tally};

use mallard_apiseq::canon::NameCounts;
use mallard_apiseq::{read_report, Report, ReportOptions};
use mallard_model::{Input, InputKind, Model, Reason};
use mallard_pefeatures::FeatureSet;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Malicious,
    Benign,
    Error,
}

/// One scanned input.
#[derive(Debug, Clone, Serialize)]
pub struct ScanResult {
    pub path: String,
    pub verdict: Verdict,
    /// P(malicious) for binary models, the top family's probability for family models.
    pub score: Option<f32>,
    /// Predicted family, for models trained on families.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// What decided: `dynamic model` (reports), `static model` (PE files), `allow list`,
    /// `deny list` or `error`.
    pub decided_by: &'static str,
    pub reasons: Vec<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Number of API calls the model saw.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<usize>,
    /// How the distinct API names met the report model's vocabulary: `known` as they are,
    /// `mapped` to another name of the same call that the model knows (`NtWriteVirtualMemory`
    /// read as `WriteProcessMemory`), `unseen` (ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_names: Option<NameCounts>,
    /// YARA rules that matched (namespace:name).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// For an ensemble verdict: each component's own result.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// One model's part in an ensemble verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub decided_by: &'static str,
    pub path: String,
    pub verdict: Verdict,
    pub score: Option<f32>,
    pub threshold: f32,
}

impl ScanResult {
    pub fn error(path: &Path, message: String) -> Self {
        ScanResult {
            path: path.display().to_string(),
            verdict: Verdict::Error,
            score: None,
            family: None,
            decided_by: "error",
            reasons: Vec::new(),
            error: Some(message),
            warnings: Vec::new(),
            calls: None,
            api_names: None,
            rules: Vec::new(),
            components: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// How many reasons to give per verdict (0: none, and no time spent on them).
    pub top: usize,
    /// Overrides the model's decision threshold.
    pub threshold: Option<f32>,
    pub report: ReportOptions,
    /// PE files larger than this (on disk) are refused before reading.
    pub max_pe_bytes: u64,
    /// Reports larger than this (on disk) are refused before reading.
    pub max_report_bytes: u64,
    /// sha256 values (lower-case hex) whose files or report targets are benign by decree.
    pub allow: HashSet<String>,
    /// sha256 values that are malicious by decree; the deny list wins over the allow list.
    pub deny: HashSet<String>,
    /// Sandbox reports to pair with PE files of the same sha256 (`target.file.sha256`).
    pub reports: Vec<PathBuf>,
    /// YARA-X rules run on every PE file.
    pub rules: Option<std::sync::Arc<mallard_rules::RuleSet>>,
    /// How long the rules may take on one file; a file that takes longer gets an error
    /// naming the timeout for its rule part (the model verdict still stands).
    pub rule_timeout: std::time::Duration,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            top: 5,
            threshold: None,
            report: ReportOptions::default(),
            max_pe_bytes: mallard_io::Caps::default().max_pe_bytes,
            max_report_bytes: mallard_io::Caps::default().max_report_bytes,
            allow: HashSet::new(),
            deny: HashSet::new(),
            reports: Vec::new(),
            rules: None,
            rule_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// From this size on a PE file's rule scan (with the built-in rules' prefilter) goes to a
/// thread beside the model whenever a core may be free, whether or not the rules could match.
const LARGE_FILE: usize = 1 << 20;

/// A model for PE files and how to build its input from a file.
struct StaticModel {
    model: Box<dyn Model>,
    /// The extractor of a feature model (unused by the other two readers).
    set: FeatureSet,
    reads: PeInput,
    /// For each model column, its index in the extractor's vector (None: absent, NaN).
    columns: Vec<Option<usize>>,
}

/// What a PE model reads of a file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PeInput {
    /// A feature vector (`StaticModel::set`'s).
    Features,
    /// The mnemonics of the reachable code, as a sequence.
    Opcodes,
    /// The raw bytes (MalConv).
    Bytes,
}

/// For each of a model's columns, its place among an extractor's `names` (`None`: not
/// there). Models list the extractor's columns in its order, some left out, so a walk
/// along both finds each with a comparison or a few; from the first column not found
/// ahead, a map by name (the first of equal names wins) finds the rest. The walk gives the
/// map's answer because a set's names are distinct (tested in `mallard-pefeatures`).
/// Hashing every name cost a one-file scan ~0.1 ms; a search per column, 2381 squared
/// comparisons, was a tenth of it.
fn column_map(columns: &[String], names: &[String]) -> Vec<Option<usize>> {
    let mut out = Vec::with_capacity(columns.len());
    let mut next = 0;
    for c in columns {
        match names[next..].iter().position(|n| n == c) {
            Some(p) => {
                out.push(Some(next + p));
                next += p + 1;
            }
            None => break,
        }
    }
    if out.len() < columns.len() {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(names.len());
        for (i, n) in names.iter().enumerate() {
            index.entry(n.as_str()).or_insert(i);
        }
        let rest = &columns[out.len()..];
        out.extend(rest.iter().map(|c| index.get(c.as_str()).copied()));
    }
    out
}

pub struct Scanner {
    model: Option<Box<dyn Model>>,
    pe: Option<StaticModel>,
    /// With the built-in PE model: its .NET specialist, added on .NET files.
    dotnet: Option<dotnet::Specialist>,
    opts: ScanOptions,
    /// `opts.reports` by target sha256.
    reports_by_sha: HashMap<String, PathBuf>,
    /// `--report` files that could not be used, as error results.
    report_problems: Vec<ScanResult>,
    /// Per folder, the names in it that could be reports (`*.json`, `*.json.gz`): read once
    /// per folder, not once per file (a folder of 20,000 files was read 20,000 times).
    report_names: Mutex<HashMap<PathBuf, Arc<HashSet<OsString>>>>,
    /// A one-file scan's file, read and run through the rules by [`setup::prepare`]'s rules
    /// thread while the main thread loaded the models; taken by the scan of that path.
    prescan: Mutex<Option<Prescan>>,
}

/// A PE file read, and its rules run, before the scan (see `Scanner::prescan`). The scan
/// uses these bytes for the model too, so rules and model see the same file.
pub(crate) struct Prescan {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub rules: Result<Vec<mallard_rules::RuleMatch>, mallard_rules::RulesError>,
}

#[derive(Debug)]
pub struct ScanSetupError(pub String);

impl std::fmt::Display for ScanSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanSetupError {}

impl Scanner {
    /// `model` scores sandbox reports; `pe_model`, a feature model that names its feature
    /// set, scores PE files.
    /// A scanner with the built-in models for reports and PE files (what `mallard scan`
    /// uses when no `--model` is given).
    pub fn builtin(opts: ScanOptions) -> Result<Self, ScanSetupError> {
        let load = setup::load_builtin;
        Self::new(Some(load("api")?), Some(load("pe")?), opts)
    }

    /// Whether PE files get the built-in .NET specialist beside the PE model (they do with
    /// the built-in PE model; `builtin::DOTNET` and `builtin::DOTNET_STACKING` then take part
    /// in .NET files' verdicts).
    pub fn has_dotnet_specialist(&self) -> bool {
        self.dotnet.is_some()
    }

    pub fn new(
        model: Option<Box<dyn Model>>,
        pe_model: Option<Box<dyn Model>>,
        opts: ScanOptions,
    ) -> Result<Self, ScanSetupError> {
        if let Some(m) = &model {
            if m.meta().input != InputKind::ApiSequence || m.meta().feature_set.is_some() {
                return Err(ScanSetupError(format!(
                    "the report model ({}) does not read API-call sequences",
                    m.meta().kind
                )));
            }
        }
        let pe = match pe_model {
            None => None,
            Some(m) if m.meta().input == InputKind::Bytes => Some(StaticModel {
                model: m,
                set: FeatureSet::EmberV2,
                reads: PeInput::Bytes,
                columns: Vec::new(),
            }),
            Some(m) => {
                let name = m.meta().feature_set.clone().ok_or_else(|| {
                    ScanSetupError(format!(
                        "the {} model was trained on a table whose columns are no known feature set, so it cannot score files",
                        m.meta().kind
                    ))
                })?;
                let set: FeatureSet = name.parse().map_err(|e| ScanSetupError(format!("{e}")))?;
                let reads = if m.meta().input == InputKind::ApiSequence {
                    PeInput::Opcodes
                } else {
                    PeInput::Features
                };
                if reads == PeInput::Opcodes && set != FeatureSet::Opcodes {
                    return Err(ScanSetupError(format!(
                        "the {} model reads sequences of {name}, which are not PE features",
                        m.meta().kind
                    )));
                }
                let names = if reads == PeInput::Features {
                    mallard_pefeatures::names(set)
                } else {
                    Vec::new()
                };
                let columns = column_map(&m.meta().feature_names, &names);
                Some(StaticModel {
                    model: m,
                    set,
                    reads,
                    columns,
                })
            }
        };
        let mut reports_by_sha = HashMap::new();
        let mut report_problems = Vec::new();
        for p in &opts.reports {
            // One unusable report is an error result for it; the scan goes on.
            let read =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| checked_report(p, &opts)))
                    .unwrap_or_else(|_| Err(format!("{}: internal error reading it", p.display())));
            match read {
                Ok(r) => match r.sha256.filter(|h| is_sha256(h)) {
                    Some(sha) => {
                        reports_by_sha.insert(sha.to_ascii_lowercase(), p.clone());
                    }
                    None => report_problems.push(ScanResult::error(
                        p,
                        format!(
                            "{}: the report names no valid target sha256, so it cannot be paired with a file",
                            p.display()
                        ),
                    )),
                },
                Err(e) => report_problems.push(ScanResult::error(p, e)),
            }
        }
        // The built-in PE model comes with its .NET specialist (a user's model does not).
        let dotnet = pe
            .as_ref()
            .filter(|p| p.model.meta().builtin == Some("pe"))
            .and_then(|_| dotnet::Specialist::builtin());
        Ok(Scanner {
            dotnet,
            model,
            pe,
            opts,
            reports_by_sha,
            report_problems,
            report_names: Mutex::new(HashMap::new()),
            prescan: Mutex::new(None),
        })
    }

    /// The `--report` files that could not be used (unreadable, no target sha256), each as
    /// an error result.
    pub fn report_problems(&self) -> &[ScanResult] {
        &self.report_problems
    }

    /// Scans a PE file or a sandbox report, whichever `path` is.
    pub fn scan_path(&self, path: &Path) -> ScanResult {
        self.scan_path_with(path, true)
    }

    /// [`Scanner::scan_path`]; `beside`: whether a PE file's rules may run on a thread of
    /// their own while the model runs here (worth it only when a core would be idle).
    pub(crate) fn scan_path_with(&self, path: &Path, beside: bool) -> ScanResult {
        // The magic is read through `mallard_io`: a FIFO, device or unreadable file is an
        // error result here, never a hang or a silent skip.
        match mallard_io::starts_like_pe(path) {
            Err(e) => return ScanResult::error(path, e.to_string()),
            Ok(true) => return self.scan_pe_with(path, beside, None),
            Ok(false) => {}
        }
        let r = self.scan_report(path);
        if r.verdict != Verdict::Error {
            return r;
        }
        // Neither a PE file nor a readable report: only a decisive rule can say more.
        match (
            &self.opts.rules,
            mallard_io::read_capped(path, self.opts.max_pe_bytes),
        ) {
            (Some(rs), Ok(bytes)) => match rs.scan(&bytes, self.opts.rule_timeout) {
                Ok(m) if m.iter().any(|m| m.decisive) => ScanResult {
                    path: path.display().to_string(),
                    verdict: Verdict::Malicious,
                    score: Some(1.0),
                    family: None,
                    decided_by: "rules",
                    reasons: m
                        .iter()
                        .filter(|m| m.decisive)
                        .map(|m| Reason {
                            kind: "rule".into(),
                            name: m.name.clone(),
                            weight: 1.0,
                            feature: None,
                        })
                        .collect(),
                    error: None,
                    warnings: Vec::new(),
                    calls: None,
                    api_names: None,
                    rules: m
                        .iter()
                        .map(|m| format!("{}:{}", m.namespace, m.name))
                        .collect(),
                    components: Vec::new(),
                },
                _ => r,
            },
            _ => r,
        }
    }

    /// Scans a PE file with the static model (and the rules, on a thread of their own).
    pub fn scan_pe(&self, path: &Path) -> ScanResult {
        self.scan_pe_with(path, true, None)
    }

    /// Scans a PE file already in memory (a daemon's stream) as [`Scanner::scan_pe`] scans
    /// one on disk. `path` only names it in the result: nothing is read from or beside it,
    /// so a sandbox report pairs with it through [`ScanOptions::reports`] only.
    pub fn scan_pe_bytes(&self, path: &Path, bytes: Vec<u8>) -> ScanResult {
        self.scan_pe_with(path, true, Some(bytes))
    }

    /// `given`: the file's bytes, already in memory.
    pub(crate) fn scan_pe_with(
        &self,
        path: &Path,
        beside: bool,
        given: Option<Vec<u8>>,
    ) -> ScanResult {
        let Some(sm) = &self.pe else {
            return ScanResult::error(
                path,
                format!(
                    "{}: a PE file, but no model for PE files was given",
                    path.display()
                ),
            );
        };
        let in_memory = given.is_some();
        let (bytes, prescanned) = match given {
            Some(b) if b.len() as u64 > self.opts.max_pe_bytes => {
                let e = mallard_io::IoError::TooLarge {
                    path: path.to_path_buf(),
                    size: b.len() as u64,
                    cap: self.opts.max_pe_bytes,
                };
                return ScanResult::error(path, e.to_string());
            }
            Some(b) => (b, None),
            None => {
                let prescan = self
                    .prescan
                    .lock()
                    .ok()
                    .and_then(|mut p| p.take_if(|p| p.path == path));
                match prescan {
                    Some(p) => (p.bytes, Some(p.rules)),
                    None => match mallard_io::read_capped(path, self.opts.max_pe_bytes) {
                        Ok(b) => (b, None),
                        Err(e) => return ScanResult::error(path, e.to_string()),
                    },
                }
            }
        };
        // The file's sha256 only when something reads it (a list, a report to pair): on a
        // large file it cost a fifth of the scan.
        let sha_cell = std::cell::OnceCell::new();
        let sha = || -> &str {
            sha_cell.get_or_init(|| {
                Sha256::digest(&bytes)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            })
        };
        if !(self.opts.allow.is_empty() && self.opts.deny.is_empty()) {
            if let Some(r) = self.listed(path, sha()) {
                return r;
            }
        }
        let mut rule_warnings = Vec::new();
        // Most files cannot match the built-in rules (their prefilter says so at memory
        // speed): no rule scan, and no thread started for one. On a large file the
        // prefilter's own passes are worth the thread: it runs there, beside the model.
        let large = bytes.len() >= LARGE_FILE;
        let rules = match &prescanned {
            Some(_) => None,
            None => self
                .opts
                .rules
                .as_ref()
                .filter(|rs| (beside && large) || rs.might_match(&bytes)),
        };
        let run_rules = || rules.map(|rs| rs.scan(&bytes, self.opts.rule_timeout));
        let run_model = || {
            let err = |e: mallard_pefeatures::FeatureError| format!("{}: {e}", path.display());
            if sm.reads == PeInput::Bytes {
                let input = Input::Bytes(&bytes);
                return Ok(self.decide(path, sm.model.as_ref(), input, Vec::new(), 1, None));
            }
            if sm.set.is_ember() {
                mallard_pefeatures::check_pe(&bytes).map_err(err)?;
            }
            if sm.reads == PeInput::Opcodes {
                let caps = mallard_pefeatures::opcodes::Caps::default();
                let seq: Vec<String> = mallard_pefeatures::opcodes::sequence(&bytes, &caps)
                    .map_err(err)?
                    .into_iter()
                    .map(String::from)
                    .collect();
                let input = Input::Apis(&seq);
                return Ok(self.decide(path, sm.model.as_ref(), input, Vec::new(), 1, None));
            }
            // EMBER reasons are put in words from the raw object the vector came from.
            let (raw, v) = if sm.set.is_ember() && self.opts.top > 0 {
                let (raw, v) =
                    mallard_pefeatures::ember_raw_and_vector_of(sm.set, &bytes).map_err(err)?;
                (Some(raw), v)
            } else {
                (
                    None,
                    mallard_pefeatures::extract(sm.set, &bytes).map_err(err)?,
                )
            };
            let row: Vec<f32> = sm
                .columns
                .iter()
                .map(|c| c.and_then(|i| v.get(i).copied()).unwrap_or(f32::NAN))
                .collect();
            // A core would idle beside this file: TreeSHAP's trees go to two threads.
            let threads = if beside { 2 } else { 1 };
            let input = Input::Features(&row);
            let added = (self.dotnet.as_ref()).and_then(|d| d.added(&bytes, self.opts.top));
            let mut r = self.decide(path, sm.model.as_ref(), input, Vec::new(), threads, added);
            if let Some(raw) = &raw {
                describe_ember(&mut r.reasons, raw, &sm.model.meta().feature_names, &row);
            }
            mallard_model::stack::describe_reasons(&mut r.reasons, sm.set, &bytes);
            Ok::<_, String>(r)
        };
        // Rules and the model run side by side when a core is free: on a one-file scan
        // yara-x's first scan (instantiating its WASM) costs about as much as features,
        // model and TreeSHAP together. A plain thread, not rayon: starting rayon's pool
        // cost a one-file scan more than it saved. With a decisive rule match the model's
        // result is simply dropped.
        let (rule_scan, modelled) = if let Some(r) = prescanned {
            (Some(r), run_model())
        } else if beside && rules.is_some() {
            std::thread::scope(|s| {
                let rules = std::thread::Builder::new()
                    .name(format!("{}rules", batch::WORKER_THREAD_PREFIX))
                    .spawn_scoped(s, run_rules);
                match rules {
                    Ok(h) => {
                        let modelled = run_model();
                        // A panic in the rules is this file's, as it would be inline.
                        let rule_scan = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                        (rule_scan, modelled)
                    }
                    Err(_) => (run_rules(), run_model()),
                }
            })
        } else {
            (run_rules(), run_model())
        };
        let matches = match rule_scan {
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                rule_warnings.push(e.to_string());
                Vec::new()
            }
            None => Vec::new(),
        };
        let matched: Vec<String> = matches
            .iter()
            .map(|m| format!("{}:{}", m.namespace, m.name))
            .collect();
        let rule_reason = |m: &mallard_rules::RuleMatch, weight: f32| Reason {
            kind: "rule".into(),
            name: match &m.description {
                Some(d) => format!("{}: {d}", m.name),
                None => m.name.clone(),
            },
            weight,
            feature: None,
        };
        if matches.iter().any(|m| m.decisive) {
            return ScanResult {
                path: path.display().to_string(),
                verdict: Verdict::Malicious,
                score: Some(1.0),
                family: None,
                decided_by: "rules",
                reasons: matches
                    .iter()
                    .filter(|m| m.decisive)
                    .map(|m| rule_reason(m, 1.0))
                    .collect(),
                error: None,
                warnings: rule_warnings,
                calls: None,
                api_names: None,
                rules: matched,
                components: Vec::new(),
            };
        }
        let mut r = match modelled {
            Ok(r) => r,
            Err(e) => return ScanResult::error(path, e),
        };
        r.warnings.splice(0..0, rule_warnings);
        r.decided_by = "static model";
        if r.verdict == Verdict::Malicious {
            // Suspicious rule matches back a malicious verdict as reasons.
            r.reasons
                .extend(matches.iter().map(|m| rule_reason(m, 0.5)));
        }
        r.rules = matched;
        if self.model.is_none() || r.verdict == Verdict::Error {
            return r;
        }
        match self.paired_report(path, &sha, !in_memory, &mut r.warnings) {
            Some(d) => {
                let ts = self.opts.threshold.unwrap_or(sm.model.meta().threshold);
                let td = self
                    .opts
                    .threshold
                    .unwrap_or(self.model.as_ref().map_or(0.5, |m| m.meta().threshold));
                ensemble(r, ts, d, td)
            }
            None => r,
        }
    }

    /// The scored report paired with a PE file: a `--report` of the file's sha256, or one
    /// lying beside the file as `FILE.json`, `FILE.json.gz`, `FILE.report.json` or
    /// `SHA256.json`. A report is only the file's when its target sha256 is the file's
    /// (else a benign report dropped beside a malicious file would clear it); any other
    /// candidate is ignored with a warning on the file's result.
    fn paired_report<'s>(
        &self,
        path: &Path,
        sha: &dyn Fn() -> &'s str,
        on_disk: bool,
        warnings: &mut Vec<String>,
    ) -> Option<ScanResult> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let dir = folder_of(path);
        let present = if on_disk {
            self.report_names_in(dir)
        } else {
            Arc::new(HashSet::new())
        };
        if self.reports_by_sha.is_empty() && present.is_empty() {
            return None;
        }
        let sha = sha();
        let mut candidates = Vec::new();
        if let Some(p) = self.reports_by_sha.get(sha) {
            candidates.push(p.clone());
        }
        for n in [
            format!("{name}.json"),
            format!("{name}.json.gz"),
            format!("{name}.report.json"),
            format!("{sha}.json"),
        ] {
            if present.contains(std::ffi::OsStr::new(&n)) {
                candidates.push(dir.join(n));
            }
        }
        for rp in candidates {
            let report = match checked_report(&rp, &self.opts) {
                Ok(r) => r,
                Err(e) => {
                    warnings.push(format!("report not used: {e}"));
                    continue;
                }
            };
            match report.sha256.as_deref() {
                Some(h) if h.eq_ignore_ascii_case(sha) => {}
                Some(h) => {
                    warnings.push(format!(
                        "report not used: {}: its target sha256 {h} is not this file's ({sha})",
                        rp.display()
                    ));
                    continue;
                }
                None => {
                    warnings.push(format!(
                        "report not used: {}: it names no target sha256, so it cannot be shown to be this file's",
                        rp.display()
                    ));
                    continue;
                }
            }
            let d = self.scan_parsed_report(&rp, report);
            if d.verdict == Verdict::Error {
                warnings.push(format!("report not used: {}", d.error.unwrap_or_default()));
                continue;
            }
            return Some(d);
        }
        None
    }

    /// The names in `dir` that could be reports, read once per folder.
    fn report_names_in(&self, dir: &Path) -> Arc<HashSet<OsString>> {
        let Ok(mut cache) = self.report_names.lock() else {
            return Arc::new(report_names(dir));
        };
        cache
            .entry(dir.to_path_buf())
            .or_insert_with(|| Arc::new(report_names(dir)))
            .clone()
    }

    /// Scans one sandbox report (Cuckoo or CAPE, plain or gzip).
    pub fn scan_report(&self, path: &Path) -> ScanResult {
        match checked_report(path, &self.opts) {
            Ok(report) => self.scan_parsed_report(path, report),
            Err(e) => ScanResult::error(path, e),
        }
    }

    fn scan_parsed_report(&self, path: &Path, report: Report) -> ScanResult {
        if let Some(r) = report.sha256.as_deref().and_then(|h| self.listed(path, h)) {
            return r;
        }
        // Build only the view the model looks at: a set model needs each distinct name once,
        // so a trace of millions of calls costs kilobytes, not one String per call.
        let meta = self.model.as_ref().map(|m| m.meta());
        let calls = report.sequence_ids().len();
        let apis: Vec<String> = match meta {
            Some(m) if m.distinct_calls => report
                .distinct_apis()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            Some(m) if m.collapse_runs => report.collapsed_sequence(),
            _ => report.sequence(),
        };
        let mut r = self.scan_sequence(path, &apis);
        if r.calls.is_some() {
            r.calls = Some(calls);
        }
        r.warnings.extend(report.warnings);
        r
    }

    /// Scans an API-call sequence already in memory.
    pub fn scan_sequence(&self, path: &Path, apis: &[String]) -> ScanResult {
        if apis.is_empty() {
            return ScanResult::error(path, format!("{}: no API calls to score", path.display()));
        }
        let Some(model) = &self.model else {
            return ScanResult::error(
                path,
                format!(
                    "{}: a sandbox report, but no model for reports was given",
                    path.display()
                ),
            );
        };
        let names = model.api_names(apis);
        let mut warnings = Vec::new();
        if let Some(c) = names {
            if c.known + c.mapped == 0 {
                return ScanResult::error(
                    path,
                    format!(
                        "{}: none of its {} distinct API names is known to the model, under any name of the same call (another sandbox's naming, or not Windows?)",
                        path.display(),
                        c.distinct
                    ),
                );
            }
            if let Some(w) = names_warning(&c) {
                warnings.push(w);
            }
        }
        let mut r = self.decide(path, model.as_ref(), Input::Apis(apis), warnings, 1, None);
        r.calls = Some(apis.len());
        r.api_names = names;
        r
    }

    /// The verdict of the allow/deny lists for a sha256, if it is on one.
    fn listed(&self, path: &Path, sha256: &str) -> Option<ScanResult> {
        let h = sha256.to_ascii_lowercase();
        let (verdict, score, list) = if self.opts.deny.contains(&h) {
            (Verdict::Malicious, 1.0, "deny list")
        } else if self.opts.allow.contains(&h) {
            (Verdict::Benign, 0.0, "allow list")
        } else {
            return None;
        };
        Some(ScanResult {
            path: path.display().to_string(),
            verdict,
            score: Some(score),
            family: None,
            decided_by: list,
            reasons: vec![Reason {
                kind: "sha256".into(),
                name: format!("{h} is on the {list}"),
                weight: score * 2.0 - 1.0,
                feature: None,
            }],
            error: None,
            warnings: Vec::new(),
            calls: None,
            api_names: None,
            rules: Vec::new(),
            components: Vec::new(),
        })
    }

    /// Scores one input with `model` and explains the verdict (on up to `threads` threads).
    fn decide(
        &self,
        path: &Path,
        model: &dyn Model,
        input: Input<'_>,
        mut warnings: Vec<String>,
        threads: usize,
        added: Option<dotnet::Added>,
    ) -> ScanResult {
        let meta = model.meta();
        let probs = match model.predict_proba(&[input]) {
            Ok(p) => p,
            Err(e) => return ScanResult::error(path, format!("{}: {e}", path.display())),
        };
        let (verdict, score, family) = match meta.positive {
            Some(pos) => {
                let mut s = probs.get(pos).copied().unwrap_or(f32::NAN);
                if let Some(a) = &added {
                    let z = mallard_model::stack::logit(s) as f64 + a.shift;
                    s = (1.0 / (1.0 + (-z).exp())) as f32;
                }
                let t = self.opts.threshold.unwrap_or(meta.threshold);
                (
                    if s >= t {
                        Verdict::Malicious
                    } else {
                        Verdict::Benign
                    },
                    s,
                    None,
                )
            }
            None => {
                // A family model knows only malware: the verdict is its best family.
                let best = (0..probs.len()).fold(0, |b, j| if probs[j] > probs[b] { j } else { b });
                (
                    Verdict::Malicious,
                    probs.get(best).copied().unwrap_or(f32::NAN),
                    meta.labels.get(best).cloned(),
                )
            }
        };
        let reasons = if self.opts.top == 0 {
            Vec::new()
        } else {
            // Reasons in the verdict's direction: what pushed toward malicious for a
            // malicious verdict, toward benign for a benign one.
            match model.explain_with(&input, self.opts.top.saturating_mul(4), threads) {
                Ok(mut r) => {
                    if let Some(a) = added {
                        r.extend(a.reasons);
                        r.sort_by(|x, y| y.weight.abs().total_cmp(&x.weight.abs()));
                    }
                    r.retain(|x| {
                        if verdict == Verdict::Benign {
                            x.weight < 0.0
                        } else {
                            x.weight > 0.0
                        }
                    });
                    r.truncate(self.opts.top);
                    r
                }
                Err(e) => {
                    warnings.push(format!("no explanation: {e}"));
                    Vec::new()
                }
            }
        };
        ScanResult {
            path: path.display().to_string(),
            verdict,
            score: Some(score),
            family,
            decided_by: "dynamic model",
            reasons,
            error: None,
            warnings,
            calls: None,
            api_names: None,
            rules: Vec::new(),
            components: Vec::new(),
        }
    }
}

/// What a user should know about the names the model read: how many it ignored, and how
/// many it read under its own name for the same call.
fn names_warning(c: &NameCounts) -> Option<String> {
    let (n, unseen, mapped) = (c.distinct, c.unseen, c.mapped);
    match (unseen, mapped) {
        (0, 0) => None,
        (0, _) => Some(format!(
            "{mapped} of {n} distinct API names were read as the model's name for the same call"
        )),
        (_, 0) => Some(format!(
            "{unseen} of {n} distinct API names were never seen in training"
        )),
        _ => Some(format!(
            "{unseen} of {n} distinct API names were never seen in training; {mapped} more were read as the model's name for the same call"
        )),
    }
}

/// EMBER reasons in words (`imports kernel32.dll:VirtualAllocEx`); the column name moves to
/// `feature`.
fn describe_ember(reasons: &mut [Reason], raw: &serde_json::Value, names: &[String], row: &[f32]) {
    for r in reasons.iter_mut().filter(|r| r.kind == "feature") {
        let Some(j) = names.iter().position(|n| *n == r.name) else {
            continue;
        };
        let value = row.get(j).copied().unwrap_or(f32::NAN);
        let column = std::mem::take(&mut r.name);
        r.name = mallard_pefeatures::ember_describe(raw, &column, value);
        r.feature = Some(column);
    }
}

/// Maps a score to [0, 1] so that the model's own threshold lands on 0.5 (piecewise linear):
/// each model keeps its calibrated operating point inside the ensemble.
fn centred(score: f32, threshold: f32) -> f32 {
    let t = threshold.clamp(1e-6, 1.0 - 1e-6);
    if score < t {
        0.5 * score / t
    } else {
        0.5 + 0.5 * (score - t) / (1.0 - t)
    }
}

/// Static + dynamic verdict: the mean of the two centred scores, malicious at >= 0.5. When
/// the models agree the ensemble agrees; when they disagree, the more confident one wins.
fn ensemble(s: ScanResult, ts: f32, d: ScanResult, td: f32) -> ScanResult {
    let (ss, ds) = (s.score.unwrap_or(0.0), d.score.unwrap_or(0.0));
    let score = 0.5 * (centred(ss, ts) + centred(ds, td));
    let verdict = if score >= 0.5 {
        Verdict::Malicious
    } else {
        Verdict::Benign
    };
    let mut reasons: Vec<Reason> = s.reasons.into_iter().chain(d.reasons).collect();
    reasons.retain(|r| {
        if verdict == Verdict::Benign {
            r.weight < 0.0
        } else {
            r.weight > 0.0
        }
    });
    let components = vec![
        Component {
            decided_by: "static model",
            path: s.path.clone(),
            verdict: s.verdict,
            score: s.score,
            threshold: ts,
        },
        Component {
            decided_by: "dynamic model",
            path: d.path.clone(),
            verdict: d.verdict,
            score: d.score,
            threshold: td,
        },
    ];
    ScanResult {
        path: s.path,
        verdict,
        score: Some(score),
        family: d.family,
        decided_by: "static+dynamic ensemble",
        reasons,
        error: None,
        warnings: s.warnings.into_iter().chain(d.warnings).collect(),
        calls: d.calls,
        api_names: d.api_names,
        rules: s.rules,
        components,
    }
}

/// Reads a report after checking it is a regular file within the size cap (the real size
/// is named when it is not), so a huge or endless input is refused before parsing.
fn checked_report(path: &Path, opts: &ScanOptions) -> Result<Report, String> {
    let (_, _) = mallard_io::open_capped(path, opts.max_report_bytes).map_err(|e| e.to_string())?;
    read_report(path, &opts.report).map_err(|e| e.to_string())
}

/// Whether `h` is a sha256 in hex.
fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether a file name could be a report's (`.json`, `.json.gz`, any case), without a
/// copy of the name: a folder of thousands of files is listed for a one-file scan.
fn report_like(name: &std::ffi::OsStr) -> bool {
    let n = name.as_encoded_bytes();
    let ends = |suffix: &[u8]| {
        n.len() >= suffix.len() && n[n.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    };
    ends(b".json") || ends(b".json.gz")
}

/// The names in `dir` that could be reports (empty when it cannot be read).
pub(crate) fn report_names(dir: &Path) -> HashSet<OsString> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return HashSet::new();
    };
    rd.flatten()
        .map(|e| e.file_name())
        .filter(|n| report_like(n))
        .collect()
}

/// The folder a file is in, `.` for a bare name: where reports beside it are looked for.
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Whether a file starts with the `MZ` magic of a PE file. Only regular files are opened
/// (never a FIFO, which would hang); anything unreadable is not a PE file.
pub fn is_pe(path: &Path) -> bool {
    mallard_io::starts_like_pe(path).unwrap_or(false)
}

/// What a folder walk found for `scan`: the inputs, and one error result per path that
/// could not be walked or is not a regular file (FIFOs, sockets, devices, broken links).
pub struct Expanded {
    pub files: Vec<PathBuf>,
    pub errors: Vec<ScanResult>,
    /// Links inside folders that were not followed.
    pub skipped_links: usize,
}

/// Expands folders (recursively, sorted, through `mallard_io::walk`) into the files below
/// them that can be scanned: reports (`*.json`, `*.json.gz`), PE files (`MZ`), and files
/// that cannot be read (so that they become error results, not silent skips). Paths given
/// as files are kept as given.
pub fn expand_paths(inputs: &[PathBuf], walk: &mallard_io::WalkOptions) -> Expanded {
    expand_paths_at_most(inputs, walk, usize::MAX).unwrap_or_else(|| Expanded {
        files: Vec::new(),
        errors: Vec::new(),
        skipped_links: 0,
    })
}

/// [`expand_paths`], giving up (`None`) past `max_entries` folder entries
/// (`mallard_io::walk_at_most`).
pub fn expand_paths_at_most(
    inputs: &[PathBuf],
    walk: &mallard_io::WalkOptions,
    max_entries: usize,
) -> Option<Expanded> {
    let keep = |p: &Path| {
        let named = p.file_name().is_some_and(report_like);
        named
            // unreadable files are kept, to get their error result
            || mallard_io::starts_like_pe(p).unwrap_or(true)
    };
    let w = mallard_io::walk_at_most(inputs, walk, &keep, max_entries)?;
    Some(Expanded {
        files: w.files,
        errors: w
            .errors
            .into_iter()
            .map(|(p, msg)| ScanResult::error(&p, msg))
            .collect(),
        skipped_links: w.skipped_links,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk gives what a map by name gives (the first of equal names) on EMBER's names:
    /// in order with columns left out, shuffled, repeated, unknown, and none.
    #[test]
    fn columns_map_as_a_lookup_by_name_would() {
        let names = mallard_pefeatures::names(FeatureSet::EmberV2);
        let by_map = |cols: &[String]| -> Vec<Option<usize>> {
            cols.iter()
                .map(|c| names.iter().position(|n| n == c))
                .collect()
        };
        let kept: Vec<String> = names.iter().step_by(3).cloned().collect();
        let mut shuffled = kept.clone();
        shuffled.swap(5, 200);
        shuffled.reverse();
        let mut repeated = kept.clone();
        repeated.insert(100, kept[40].clone());
        let mut unknown = kept.clone();
        unknown.insert(7, "no such column".to_string());
        for cols in [names.clone(), kept, shuffled, repeated, unknown, Vec::new()] {
            let got = column_map(&cols, &names);
            assert_eq!(got, by_map(&cols));
            assert_eq!(got.len(), cols.len());
        }
        assert_eq!(column_map(&["a".to_string()], &[]), vec![None]);
    }
    use mallard_model::tables::Table;
    use mallard_model::{GbdtParams, TableLearner, TableModel};
    use mallard_pe::synth::{off, set_u32, tiny_pe32};

    /// Tiny PE files, half with their import renamed (ExitProcess -> OpenProcess) and
    /// labelled malicious, each with its own timestamp.
    fn files(dir: &Path) -> Vec<(PathBuf, &'static str)> {
        std::fs::create_dir_all(dir).unwrap();
        (0..40u32)
            .map(|i| {
                let mut b = tiny_pe32();
                set_u32(&mut b, off::COFF + 4, 0x5000_0000 + i * 86_400 * 40);
                let label = if i % 2 == 0 {
                    let at = b.windows(11).position(|w| w == b"ExitProcess").unwrap();
                    b[at..at + 11].copy_from_slice(b"OpenProcess");
                    "malicious"
                } else {
                    "benign"
                };
                let p = dir.join(format!("f{i}.exe"));
                std::fs::write(&p, b).unwrap();
                (p, label)
            })
            .collect()
    }

    fn model(set: FeatureSet, files: &[(PathBuf, &str)]) -> TableModel {
        let columns = mallard_pefeatures::names(set);
        let mut values = Vec::new();
        for (p, _) in files {
            values.extend(mallard_pefeatures::extract(set, &std::fs::read(p).unwrap()).unwrap());
        }
        let labels = files.iter().map(|(_, l)| l.to_string()).collect();
        let table = Table::numeric(columns, values, labels);
        let params = GbdtParams {
            n_estimators: 5,
            min_data_in_leaf: 2,
            ..GbdtParams::default()
        };
        TableModel::train(&table, &TableLearner::Gbdt(params), Some(set.name())).unwrap()
    }

    #[test]
    fn ember_reasons_are_in_words_with_their_column() {
        let dir = std::env::temp_dir().join(format!("mallard-scan-ember-{}", std::process::id()));
        let fs = files(&dir);
        let m = model(FeatureSet::EmberV2, &fs);
        let names = m.meta().feature_names.clone();
        let scanner = Scanner::new(None, Some(Box::new(m)), ScanOptions::default()).unwrap();
        for (p, label) in &fs[..2] {
            let r = scanner.scan_pe(p);
            assert_eq!(
                r.verdict,
                if *label == "benign" {
                    Verdict::Benign
                } else {
                    Verdict::Malicious
                }
            );
            assert!(!r.reasons.is_empty(), "{r:?}");
            let (raw, v) =
                mallard_pefeatures::ember_raw_and_vector(&std::fs::read(p).unwrap()).unwrap();
            for reason in &r.reasons {
                let col = reason
                    .feature
                    .as_deref()
                    .expect("EMBER reasons keep their column");
                let j = names.iter().position(|n| n == col).unwrap();
                assert_eq!(
                    reason.name,
                    mallard_pefeatures::ember_describe(&raw, col, v[j])
                );
                assert_ne!(reason.name, col);
            }
            // JSON: `name` in words, `feature` the column, `kind` as before.
            let j = serde_json::to_value(&r).unwrap();
            assert_eq!(j["reasons"][0]["kind"], "feature");
            assert!(j["reasons"][0]["feature"].is_string());
        }
        // No reasons asked: none computed.
        let opts = ScanOptions {
            top: 0,
            ..ScanOptions::default()
        };
        let m = model(FeatureSet::EmberV2, &fs);
        let r = Scanner::new(None, Some(Box::new(m)), opts)
            .unwrap()
            .scan_pe(&fs[0].0);
        assert!(r.reasons.is_empty() && r.verdict == Verdict::Malicious);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn other_feature_sets_keep_column_names() {
        let dir = std::env::temp_dir().join(format!("mallard-scan-saxe-{}", std::process::id()));
        let fs = files(&dir);
        let m = model(FeatureSet::Saxe1024, &fs);
        let names = m.meta().feature_names.clone();
        let scanner = Scanner::new(None, Some(Box::new(m)), ScanOptions::default()).unwrap();
        let r = scanner.scan_pe(&fs[0].0);
        assert!(!r.reasons.is_empty(), "{r:?}");
        for reason in &r.reasons {
            assert!(reason.feature.is_none());
            assert!(names.contains(&reason.name));
        }
        let j = serde_json::to_value(&r).unwrap();
        assert!(j["reasons"][0].get("feature").is_none());
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[cfg(all(test, unix))]
mod input_tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mallard-scan-in-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn expansion_keeps_candidates_and_reports_fifos_and_loops_once() {
        use std::os::unix::fs::symlink;
        let d = scratch("expand");
        std::fs::write(d.join("a.exe"), b"MZ rest").unwrap();
        std::fs::write(d.join("r.JSON"), b"{}").unwrap();
        std::fs::write(d.join("notes.txt"), b"hello").unwrap();
        // Loops below the scanned folder: `up` leads back to it, not out of it.
        std::fs::create_dir(d.join("sub")).unwrap();
        symlink(".", d.join("sub/self1")).unwrap();
        symlink(".", d.join("sub/self2")).unwrap();
        symlink("..", d.join("sub/up")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(d.join("pipe.exe"))
            .status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo unavailable");
        for follow in [false, true] {
            let w = mallard_io::WalkOptions {
                follow_symlinks: follow,
                ..Default::default()
            };
            let e = expand_paths(std::slice::from_ref(&d), &w);
            let names: Vec<_> = e
                .files
                .iter()
                .filter(|p| p.starts_with(&d))
                .map(|p| p.strip_prefix(&d).unwrap().display().to_string())
                .collect();
            assert_eq!(names, ["a.exe", "r.JSON"], "follow={follow}");
            let fifo: Vec<_> = e
                .errors
                .iter()
                .filter(|r| r.path.ends_with("pipe.exe"))
                .collect();
            assert_eq!(fifo.len(), 1);
            assert!(fifo[0].error.as_deref().unwrap().contains("FIFO"));
        }
        assert!(is_pe(&d.join("a.exe")));
        assert!(!is_pe(&d.join("pipe.exe")));
        assert!(!is_pe(&d.join("notes.txt")));
    }

    #[test]
    fn report_names_are_told_by_their_ending_in_any_case() {
        use std::ffi::OsStr;
        for (name, want) in [
            ("a.json", true),
            ("A.JSON", true),
            ("r.Json.Gz", true),
            (".json", true),
            ("json", false),
            ("a.jsonx", false),
            ("a.gz", false),
            ("a.json.gz.txt", false),
        ] {
            assert_eq!(report_like(OsStr::new(name)), want, "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert!(report_like(OsStr::from_bytes(b"\xff\xfe.json")));
            assert!(!report_like(OsStr::from_bytes(b"\xff.jso\xff")));
        }
    }

    #[test]
    fn report_names_are_indexed_once_per_folder() {
        let d = scratch("index");
        std::fs::write(d.join("x.exe.json"), b"{}").unwrap();
        std::fs::write(d.join("y.json.gz"), b"").unwrap();
        std::fs::write(d.join("z.exe"), b"MZ").unwrap();
        let s = Scanner::new(None, None, ScanOptions::default()).unwrap();
        let first = s.report_names_in(&d);
        let want: HashSet<OsString> = ["x.exe.json", "y.json.gz"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(*first, want);
        // A file added later is not seen: the folder was read once and kept.
        std::fs::write(d.join("late.json"), b"{}").unwrap();
        let again = s.report_names_in(&d);
        assert!(Arc::ptr_eq(&first, &again));
        assert!(!again.contains(&OsString::from("late.json")));
    }
}
