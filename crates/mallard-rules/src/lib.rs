//! YARA-X rules for the scan engine.
//!
//! A rule's tags say what its match means: `malicious` decides the verdict, anything else
//! (e.g. `suspicious`) is reported as a reason while the models decide. mallard ships a small
//! rule set (`rules/mallard.yar`: EICAR, UPX, injection and keylogger imports, entry point
//! outside the sections); users add theirs with `--rules DIR`.

mod prefilter;

pub use prefilter::may_match_builtin;

use mallard_io::WalkOptions;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The rule set compiled into mallard.
pub const BUILTIN: &str = include_str!("../rules/mallard.yar");

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("{path}: {msg}")]
    Compile { path: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("rules: {0}")]
    Scan(String),
    /// A rules file that could not be read (not a regular file, over the size cap) or a
    /// path the folder walk could not enter.
    #[error("{0}")]
    Input(String),
}

/// Largest rules file read (compiling a huge file would stall every scan).
pub const MAX_RULES_FILE_BYTES: u64 = 16 << 20;

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
    engine: Engine,
    /// Where the rules came from, for messages.
    pub sources: Vec<String>,
    digest: [u8; 32],
}

enum Engine {
    Compiled(yara_x::Rules),
    /// The built-in rules alone: loaded (from the cache, or compiled) the first time a file
    /// might match one of them, so a scan of files that cannot never starts yara-x.
    Builtin(std::sync::OnceLock<Result<yara_x::Rules, String>>),
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("sources", &self.sources)
            .finish()
    }
}

impl RuleSet {
    /// The built-in rules, plus every `.yar`/`.yara` file under `paths` (files or folders,
    /// recursively, links not followed). A file that does not compile is left out and
    /// reported; the others are still used.
    pub fn load(paths: &[PathBuf], builtin: bool) -> (Option<RuleSet>, Vec<RulesError>) {
        Self::load_with(paths, builtin, &WalkOptions::default())
    }

    /// [`RuleSet::load`] with the folder walk's options (link following, depth cap). Folders
    /// are expanded by `mallard_io::walk`, so a link loop cannot multiply the rules, and
    /// each file is read only if it is a regular file of at most [`MAX_RULES_FILE_BYTES`].
    pub fn load_with(
        paths: &[PathBuf],
        builtin: bool,
        walk: &WalkOptions,
    ) -> (Option<RuleSet>, Vec<RulesError>) {
        if builtin && paths.is_empty() {
            let set = RuleSet {
                engine: Engine::Builtin(std::sync::OnceLock::new()),
                sources: vec!["built-in".to_string()],
                digest: Sha256::digest(builtin_digest()).into(),
            };
            return (Some(set), Vec::new());
        }
        let walked = mallard_io::walk(paths, walk, &|p: &Path| {
            matches!(p.extension().and_then(|e| e.to_str()), Some("yar" | "yara"))
        });
        let mut errors: Vec<RulesError> = walked
            .errors
            .into_iter()
            .map(|(_, msg)| RulesError::Input(msg))
            .collect();
        let mut files = walked.files;
        files.sort();
        // The same file given twice (or reached twice through followed links) compiles once.
        files.dedup();
        let mut compiler = yara_x::Compiler::new();
        let mut sources = Vec::new();
        let mut digest = Sha256::new();
        if builtin {
            compiler.new_namespace("mallard");
            match compiler.add_source(BUILTIN) {
                Ok(_) => {
                    sources.push("built-in".to_string());
                    digest.update(builtin_digest());
                }
                Err(e) => errors.push(RulesError::Compile {
                    path: "built-in rules".into(),
                    msg: one_line(&e.to_string()),
                }),
            }
        }
        for (i, f) in files.iter().enumerate() {
            let text = match mallard_io::read_capped(f, MAX_RULES_FILE_BYTES) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(t) => t,
                    Err(_) => {
                        errors.push(RulesError::Input(format!(
                            "{}: not UTF-8 text",
                            f.display()
                        )));
                        continue;
                    }
                },
                Err(e) => {
                    errors.push(RulesError::Input(e.to_string()));
                    continue;
                }
            };
            // Each file gets its own namespace, so one file's names cannot clash with another's.
            compiler.new_namespace(&format!("user{i}"));
            let src = yara_x::SourceCode::from(text.as_str()).with_origin(f.display().to_string());
            match compiler.add_source(src) {
                Ok(_) => {
                    sources.push(f.display().to_string());
                    digest.update(Sha256::digest(text.as_bytes()));
                }
                Err(e) => errors.push(RulesError::Compile {
                    path: f.display().to_string(),
                    msg: one_line(&e.to_string()),
                }),
            }
        }
        if sources.is_empty() {
            return (None, errors);
        }
        let rules = compiler.build();
        let digest = digest.finalize().into();
        (
            Some(RuleSet {
                engine: Engine::Compiled(rules),
                sources,
                digest,
            }),
            errors,
        )
    }

    /// SHA-256 over the SHA-256 of each compiled source's text, in load order (the built-in
    /// rules first): the same rules give the same digest however they were loaded
    /// (cached or compiled), any edited rule file another one.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Whether [`RuleSet::scan`] could find anything in `data`: false only when the set is
    /// the built-in rules alone and their prefilter rules the data out, so a caller can skip
    /// the scan (and any thread it would start for one).
    pub fn might_match(&self, data: &[u8]) -> bool {
        match &self.engine {
            Engine::Compiled(_) => true,
            Engine::Builtin(_) => prefilter::may_match_builtin(data),
        }
    }

    /// The rules matching `data`; a scan is cut off after `timeout`.
    pub fn scan(&self, data: &[u8], timeout: Duration) -> Result<Vec<RuleMatch>, RulesError> {
        let rules = match &self.engine {
            Engine::Compiled(rules) => rules,
            Engine::Builtin(_) if !prefilter::may_match_builtin(data) => return Ok(Vec::new()),
            Engine::Builtin(cell) => cell
                .get_or_init(builtin_rules)
                .as_ref()
                .map_err(|e| RulesError::Scan(e.clone()))?,
        };
        let mut scanner = yara_x::Scanner::new(rules);
        scanner.set_timeout(timeout);
        let results = scanner
            .scan(data)
            .map_err(|e| RulesError::Scan(one_line(&e.to_string())))?;
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

/// Where the compiled built-in rules are cached. The cache holds yara-x's compiled machine
/// code, so loading it skips both parsing the rules and compiling their WASM with Cranelift,
/// most of a single-file scan's time. Because that code runs, the cache is only read when the
/// current user owns it and nobody else may write it or its folder (as ssh treats its
/// files); otherwise it is rebuilt in memory. The name carries a hash of the source,
/// mallard's version and the target, so a changed rule set or build never reads a stale
/// cache.
fn cache_path() -> Option<PathBuf> {
    use std::hash::{Hash, Hasher};
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    BUILTIN.hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    (std::env::consts::ARCH, std::env::consts::OS, "native-code").hash(&mut h);
    Some(
        base.join("mallard")
            .join(format!("builtin-rules-{:016x}.yarc", h.finish())),
    )
}

/// Whether a cache file may be trusted: owned by us, writable by nobody else, in a folder
/// nobody else can write to.
#[cfg(unix)]
fn trusted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let ok = |p: &Path| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.uid() == uid && m.mode() & 0o022 == 0)
    };
    ok(path) && path.parent().is_some_and(ok)
}

/// Elsewhere the cache lives in the user's own profile folder.
#[cfg(not(unix))]
fn trusted(_path: &Path) -> bool {
    true
}

fn builtin_digest() -> [u8; 32] {
    Sha256::digest(BUILTIN.as_bytes()).into()
}

fn cached_builtin() -> Option<yara_x::Rules> {
    let path = cache_path()?;
    if !trusted(&path) {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    // A cache that does not load (corrupt, other yara-x) is simply rebuilt.
    yara_x::Rules::deserialize(&bytes).ok()
}

/// The built-in rules from the cache, or compiled (and cached) when there is none.
fn builtin_rules() -> Result<yara_x::Rules, String> {
    if let Some(rules) = cached_builtin() {
        return Ok(rules);
    }
    let mut compiler = yara_x::Compiler::new();
    compiler.new_namespace("mallard");
    compiler
        .add_source(BUILTIN)
        .map_err(|e| format!("built-in rules: {}", one_line(&e.to_string())))?;
    let rules = compiler.build();
    store_builtin(&rules);
    Ok(rules)
}

fn store_builtin(rules: &yara_x::Rules) {
    let (Some(path), Ok(bytes)) = (cache_path(), rules.serialize()) else {
        return;
    };
    if let Some(dir) = path.parent() {
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Our own folder: keep it private so the cache stays trusted.
            if std::fs::symlink_metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o022 != 0) {
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            }
        }
    }
    // Write then rename, so a concurrent reader never sees half a file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if std::fs::write(&tmp, bytes).is_ok() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600));
        }
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

#[cfg(all(test, unix))]
mod tests {
    use super::trusted;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_cache_others_can_write_is_not_trusted() {
        let dir = std::env::temp_dir().join(format!("mallard-rules-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mode = |p: &std::path::Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        mode(&dir, 0o700);
        let f = dir.join("rules.yarc");
        std::fs::write(&f, b"x").unwrap();
        mode(&f, 0o600);
        assert!(trusted(&f));
        mode(&f, 0o666);
        assert!(!trusted(&f), "a world-writable cache file");
        mode(&f, 0o600);
        mode(&dir, 0o777);
        assert!(!trusted(&f), "a cache in a world-writable folder");
        assert!(!trusted(&dir.join("missing.yarc")));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
