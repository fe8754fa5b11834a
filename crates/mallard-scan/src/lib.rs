//! Verdicts for inputs, each with the reasons behind it.
//!
//! The engine reads an input (a sandbox report, or a PE file: recognised by its `MZ`
//! magic), asks the matching model for class probabilities and explanations, and never
//! fails as a whole: an input that cannot be read or scored becomes a result with verdict
//! [`Verdict::Error`] and a one-line message naming the problem.

use mallard_apiseq::{read_report, ReportOptions};
use mallard_model::{Input, InputKind, Model, Reason};
use mallard_pefeatures::FeatureSet;
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

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
    /// PE files larger than this are refused.
    pub max_pe_bytes: usize,
    /// sha256 values (lower-case hex) whose files or report targets are benign by decree.
    pub allow: HashSet<String>,
    /// sha256 values that are malicious by decree; the deny list wins over the allow list.
    pub deny: HashSet<String>,
    /// Sandbox reports to pair with PE files of the same sha256 (`target.file.sha256`).
    pub reports: Vec<PathBuf>,
    /// YARA-X rules run on every PE file.
    pub rules: Option<std::sync::Arc<mallard_rules::RuleSet>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            top: 5,
            threshold: None,
            report: ReportOptions::default(),
            max_pe_bytes: 256 << 20,
            allow: HashSet::new(),
            deny: HashSet::new(),
            reports: Vec::new(),
            rules: None,
        }
    }
}

/// A feature model and how to build its input from an extractor's vector.
struct StaticModel {
    model: Box<dyn Model>,
    set: FeatureSet,
    /// For each model column, its index in the extractor's vector (None: absent, NaN).
    columns: Vec<Option<usize>>,
}

pub struct Scanner {
    model: Option<Box<dyn Model>>,
    pe: Option<StaticModel>,
    opts: ScanOptions,
    /// `opts.reports` by target sha256.
    reports_by_sha: std::collections::HashMap<String, PathBuf>,
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
    pub fn new(
        model: Option<Box<dyn Model>>,
        pe_model: Option<Box<dyn Model>>,
        opts: ScanOptions,
    ) -> Result<Self, ScanSetupError> {
        if let Some(m) = &model {
            if m.meta().input != InputKind::ApiSequence {
                return Err(ScanSetupError(format!(
                    "the report model ({}) does not read API-call sequences",
                    m.meta().kind
                )));
            }
        }
        let pe = match pe_model {
            None => None,
            Some(m) => {
                let name = m.meta().feature_set.clone().ok_or_else(|| {
                    ScanSetupError(format!(
                        "the {} model was trained on a table whose columns are no known feature set, so it cannot score files",
                        m.meta().kind
                    ))
                })?;
                let set: FeatureSet = name.parse().map_err(|e| ScanSetupError(format!("{e}")))?;
                let names = mallard_pefeatures::names(set);
                let columns = m
                    .meta()
                    .feature_names
                    .iter()
                    .map(|c| names.iter().position(|n| n == c))
                    .collect();
                Some(StaticModel {
                    model: m,
                    set,
                    columns,
                })
            }
        };
        let mut reports_by_sha = std::collections::HashMap::new();
        for p in &opts.reports {
            let r = read_report(p, &opts.report).map_err(|e| ScanSetupError(e.to_string()))?;
            let sha = r.sha256.ok_or_else(|| {
                ScanSetupError(format!(
                    "{}: the report names no target sha256",
                    p.display()
                ))
            })?;
            reports_by_sha.insert(sha.to_ascii_lowercase(), p.clone());
        }
        Ok(Scanner {
            model,
            pe,
            opts,
            reports_by_sha,
        })
    }

    /// Scans a PE file or a sandbox report, whichever `path` is.
    pub fn scan_path(&self, path: &Path) -> ScanResult {
        if is_pe(path) {
            return self.scan_pe(path);
        }
        let r = self.scan_report(path);
        if r.verdict != Verdict::Error {
            return r;
        }
        // Neither a PE file nor a readable report: only a decisive rule can say more.
        match (
            &self.opts.rules,
            mallard_pefeatures::read_capped(path, self.opts.max_pe_bytes),
        ) {
            (Some(rs), Ok(bytes)) => match rs.scan(&bytes, std::time::Duration::from_secs(10)) {
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

    /// Scans a PE file with the static model.
    pub fn scan_pe(&self, path: &Path) -> ScanResult {
        let Some(sm) = &self.pe else {
            return ScanResult::error(
                path,
                format!(
                    "{}: a PE file, but no model for PE files was given",
                    path.display()
                ),
            );
        };
        let bytes = match mallard_pefeatures::read_capped(path, self.opts.max_pe_bytes) {
            Ok(b) => b,
            Err(e) => return ScanResult::error(path, e.to_string()),
        };
        let sha: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(r) = self.listed(path, &sha) {
            return r;
        }
        let mut rule_warnings = Vec::new();
        // Rules and the model run side by side: on a one-file scan yara-x's first scan
        // (instantiating its WASM) costs about as much as features, model and TreeSHAP
        // together. With a decisive rule match the model's result is simply dropped.
        let (rule_scan, modelled) = rayon::join(
            || {
                self.opts
                    .rules
                    .as_ref()
                    .map(|rs| rs.scan(&bytes, std::time::Duration::from_secs(10)))
            },
            || {
                let err = |e: mallard_pefeatures::FeatureError| format!("{}: {e}", path.display());
                if sm.set == FeatureSet::EmberV2 {
                    mallard_pefeatures::check_pe(&bytes).map_err(err)?;
                }
                // EMBER reasons are put in words from the raw object the vector came from.
                let (raw, v) = if sm.set == FeatureSet::EmberV2 && self.opts.top > 0 {
                    let (raw, v) = mallard_pefeatures::ember_raw_and_vector(&bytes).map_err(err)?;
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
                let mut r = self.decide(path, sm.model.as_ref(), Input::Features(&row), Vec::new());
                if let Some(raw) = &raw {
                    describe_ember(&mut r.reasons, raw, &sm.model.meta().feature_names, &row);
                }
                Ok::<_, String>(r)
            },
        );
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
        match (self.model.is_some(), self.report_for(path, &sha)) {
            (true, Some(rp)) if r.verdict != Verdict::Error => {
                let d = self.scan_report(&rp);
                if d.verdict == Verdict::Error {
                    r.warnings
                        .push(format!("report not used: {}", d.error.unwrap_or_default()));
                    r
                } else {
                    let ts = self.opts.threshold.unwrap_or(sm.model.meta().threshold);
                    let td = self
                        .opts
                        .threshold
                        .unwrap_or(self.model.as_ref().map_or(0.5, |m| m.meta().threshold));
                    ensemble(r, ts, d, td)
                }
            }
            _ => r,
        }
    }

    /// The report paired with a PE file: given with its sha256, or lying beside the file
    /// as `FILE.json`, `FILE.json.gz`, `FILE.report.json` or `SHA256.json`.
    fn report_for(&self, path: &Path, sha: &str) -> Option<PathBuf> {
        if let Some(p) = self.reports_by_sha.get(sha) {
            return Some(p.clone());
        }
        let name = path.file_name()?.to_string_lossy().into_owned();
        let dir = path.parent().unwrap_or(Path::new("."));
        [
            format!("{name}.json"),
            format!("{name}.json.gz"),
            format!("{name}.report.json"),
            format!("{sha}.json"),
        ]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
    }

    /// Scans one sandbox report (Cuckoo or CAPE, plain or gzip).
    pub fn scan_report(&self, path: &Path) -> ScanResult {
        let report = match read_report(path, &self.opts.report) {
            Ok(r) => r,
            Err(e) => return ScanResult::error(path, e.to_string()),
        };
        if let Some(r) = report.sha256.as_deref().and_then(|h| self.listed(path, h)) {
            return r;
        }
        let apis = report.sequence();
        let mut r = self.scan_sequence(path, &apis);
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
        let mut warnings = Vec::new();
        match model.known_apis(apis) {
            Some((0, total)) => {
                return ScanResult::error(
                    path,
                    format!(
                        "{}: none of its {total} distinct API names is known to the model (another sandbox's naming, or not Windows?)",
                        path.display()
                    ),
                )
            }
            Some((known, total)) if known < total => {
                warnings.push(format!("{} of {total} distinct API names were never seen in training", total - known))
            }
            _ => {}
        }
        let mut r = self.decide(path, model.as_ref(), Input::Apis(apis), warnings);
        r.calls = Some(apis.len());
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
            rules: Vec::new(),
            components: Vec::new(),
        })
    }

    /// Scores one input with `model` and explains the verdict.
    fn decide(
        &self,
        path: &Path,
        model: &dyn Model,
        input: Input<'_>,
        mut warnings: Vec<String>,
    ) -> ScanResult {
        let meta = model.meta();
        let probs = match model.predict_proba(&[input]) {
            Ok(p) => p,
            Err(e) => return ScanResult::error(path, format!("{}: {e}", path.display())),
        };
        let (verdict, score, family) = match meta.positive {
            Some(pos) => {
                let s = probs.get(pos).copied().unwrap_or(f32::NAN);
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
            match model.explain(&input, self.opts.top.saturating_mul(4)) {
                Ok(mut r) => {
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
            rules: Vec::new(),
            components: Vec::new(),
        }
    }

    /// Scans many inputs in parallel; results come back in input order.
    pub fn scan_paths(
        &self,
        paths: &[PathBuf],
        on_done: &(dyn Fn(&ScanResult) + Sync),
    ) -> Vec<ScanResult> {
        paths
            .par_iter()
            .map(|p| {
                let r = self.scan_path(p);
                on_done(&r);
                r
            })
            .collect()
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
        rules: s.rules,
        components,
    }
}

/// Whether a file starts with the `MZ` magic of a PE file.
pub fn is_pe(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == b"MZ"
}

/// Expands folders (recursively, sorted) into the files below them that can be scanned:
/// reports (`*.json`, `*.json.gz`) and PE files (`MZ`); files are kept as given.
/// Unreadable folders become errors.
pub fn expand_paths(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<ScanResult>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for p in inputs {
        if p.is_dir() {
            walk(p, &mut files, &mut errors);
        } else {
            files.push(p.clone());
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<ScanResult>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ScanResult::error(dir, format!("{}: {e}", dir.display())));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk(&p, files, errors);
        } else {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            if name.ends_with(".json") || name.ends_with(".json.gz") || is_pe(&p) {
                files.push(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mallard_model::tables::{ColumnSpec, Table, TableSchema};
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
        let table = Table {
            schema: TableSchema {
                columns: columns
                    .iter()
                    .map(|n| ColumnSpec {
                        name: n.clone(),
                        categories: None,
                    })
                    .collect(),
            },
            columns,
            values,
            labels: files.iter().map(|(_, l)| l.to_string()).collect(),
            ids: None,
            groups: None,
        };
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
