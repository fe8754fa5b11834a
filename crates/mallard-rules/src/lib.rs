//! YARA-X rules for the scan engine.
//!
//! A rule's tags say what its match means: `malicious` decides the verdict, anything else
//! (e.g. `suspicious`) is reported as a reason while the models decide. mallard ships a small
//! rule set (`rules/mallard.yar`: EICAR, UPX, injection and keylogger imports, entry point
//! outside the sections); users add theirs with `--rules DIR`.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The rule set compiled into mallard.
pub const BUILTIN: &str = include_str!("../rules/mallard.yar");

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {msg}")]
    Compile { path: String, msg: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("rules: {0}")]
    Scan(String),
}

/// One matching rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch {
    pub name: String,
    pub namespace: String,
    pub tags: Vec<String>,
    /// Whether the match decides the verdict (tag `malicious`).
    pub decisive: bool,
    pub description: Option<String>,
}

/// Compiled rules.
pub struct RuleSet {
    rules: yara_x::Rules,
    /// Where the rules came from, for messages.
    pub sources: Vec<String>,
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet").field("sources", &self.sources).finish()
    }
}

impl RuleSet {
    /// The built-in rules, plus every `.yar`/`.yara` file under `paths` (files or folders,
    /// recursively). A file that does not compile is left out and reported; the others
    /// are still used.
    pub fn load(paths: &[PathBuf], builtin: bool) -> (Option<RuleSet>, Vec<RulesError>) {
        if builtin && paths.is_empty() {
            if let Some(set) = cached_builtin() {
                return (Some(set), Vec::new());
            }
        }
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for p in paths {
            collect(p, &mut files, &mut errors, 0);
        }
        files.sort();
        let mut compiler = yara_x::Compiler::new();
        let mut sources = Vec::new();
        if builtin {
            compiler.new_namespace("mallard");
            match compiler.add_source(BUILTIN) {
                Ok(_) => sources.push("built-in".to_string()),
                Err(e) => errors.push(RulesError::Compile { path: "built-in rules".into(), msg: one_line(&e.to_string()) }),
            }
        }
        for (i, f) in files.iter().enumerate() {
            let text = match std::fs::read_to_string(f) {
                Ok(t) => t,
                Err(source) => {
                    errors.push(RulesError::Io { path: f.display().to_string(), source });
                    continue;
                }
            };
            // Each file gets its own namespace, so one file's names cannot clash with another's.
            compiler.new_namespace(&format!("user{i}"));
            let src = yara_x::SourceCode::from(text.as_str()).with_origin(f.display().to_string());
            match compiler.add_source(src) {
                Ok(_) => sources.push(f.display().to_string()),
                Err(e) => errors.push(RulesError::Compile { path: f.display().to_string(), msg: one_line(&e.to_string()) }),
            }
        }
        if sources.is_empty() {
            return (None, errors);
        }
        let rules = compiler.build();
        if builtin && paths.is_empty() && errors.is_empty() {
            store_builtin(&rules);
        }
        (Some(RuleSet { rules, sources }), errors)
    }

    /// The rules matching `data`; a scan is cut off after `timeout`.
    pub fn scan(&self, data: &[u8], timeout: Duration) -> Result<Vec<RuleMatch>, RulesError> {
        let mut scanner = yara_x::Scanner::new(&self.rules);
        scanner.set_timeout(timeout);
        let results = scanner.scan(data).map_err(|e| RulesError::Scan(one_line(&e.to_string())))?;
        Ok(results
            .matching_rules()
            .map(|r| {
                let tags: Vec<String> = r.tags().map(|t| t.identifier().to_string()).collect();
                let description = r.metadata().find_map(|(k, v)| match (k, v) {
                    ("description", yara_x::MetaValue::String(s)) => Some(s.to_string()),
                    _ => None,
                });
                RuleMatch {
                    name: r.identifier().to_string(),
                    namespace: r.namespace().to_string(),
                    decisive: tags.iter().any(|t| t == "malicious"),
                    tags,
                    description,
                }
            })
            .collect())
    }
}

/// Where the compiled built-in rules are cached: loading them saves about a quarter of the
/// ~16 ms that compiling costs per process (the rest is yara-x's WASM engine start). Native
/// code is never cached, so a tampered cache cannot run code. The name carries a hash of
/// the source and mallard's version, so a changed rule set never reads a stale cache.
fn cache_path() -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    BUILTIN.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    Some(base.join("mallard").join(format!("builtin-rules-{:016x}.yarc", h.finish())))
}

fn cached_builtin() -> Option<RuleSet> {
    let bytes = std::fs::read(cache_path()?).ok()?;
    // A cache that does not load (corrupt, other yara-x) is simply rebuilt.
    let rules = yara_x::Rules::deserialize(&bytes).ok()?;
    Some(RuleSet { rules, sources: vec!["built-in".to_string()] })
}

fn store_builtin(rules: &yara_x::Rules) {
    let (Some(path), Ok(bytes)) = (cache_path(), rules.serialize()) else { return };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, &path);
    }
}

/// yara-x's messages span several lines with source excerpts; keep the first line plus the
/// location line so the error stays one line.
fn one_line(msg: &str) -> String {
    let mut lines = msg.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("").to_string();
    match lines.find(|l| l.starts_with("-->") || l.starts_with("╭─[") || l.contains(':')) {
        Some(loc) => format!("{first} ({})", loc.trim_start_matches("-->").trim()),
        None => first,
    }
}

fn collect(p: &Path, out: &mut Vec<PathBuf>, errors: &mut Vec<RulesError>, depth: usize) {
    if p.is_dir() {
        if depth > 16 {
            return;
        }
        match std::fs::read_dir(p) {
            Ok(rd) => {
                for e in rd.flatten() {
                    collect(&e.path(), out, errors, depth + 1);
                }
            }
            Err(source) => errors.push(RulesError::Io { path: p.display().to_string(), source }),
        }
    } else if depth == 0 || matches!(p.extension().and_then(|e| e.to_str()), Some("yar" | "yara")) {
        out.push(p.to_path_buf());
    }
}
