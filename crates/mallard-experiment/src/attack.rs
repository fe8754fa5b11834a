//! Attacking a PE model with functionality-preserving edits (`mallard-attack`): every file
//! is attacked on its own, with its own query budget, and the report gives the evasion rate,
//! the queries spent and which actions the evading mutants used.

use crate::Error;
use mallard_attack::{Action, Params, Strategy, ACTIONS};
use mallard_model::stack::PeReader;
use mallard_model::Model;
use mallard_rand::SplitMix64;
use std::path::{Path, PathBuf};

/// How to attack.
pub struct AttackOptions<'a> {
    /// Scorer calls per file on its mutants.
    pub budget: usize,
    pub strategy: Strategy,
    pub seed: u64,
    /// Benign bytes for overlays, sections, slack and stubs (random bytes when empty).
    pub benign: &'a [u8],
    /// Bytes read per file, at most.
    pub max_bytes: u64,
    /// Where to write each file's final mutant (`NAME.mutant`), if anywhere.
    pub out_dir: Option<&'a Path>,
}

/// One file's attack (or why it could not be attacked).
#[derive(Clone, Debug)]
pub struct FileAttack {
    pub path: PathBuf,
    pub outcome: Result<mallard_attack::Outcome, String>,
}

impl FileAttack {
    /// One line in words: the score before and after and the actions kept, or the error.
    pub fn line(&self) -> String {
        let p = self.path.display();
        match &self.outcome {
            Ok(o) if !o.detected => format!("{p}: not detected ({:.3})", o.before),
            Ok(o) => format!(
                "{p}: {:.3} -> {:.3} {} after {} queries [{}]",
                o.before,
                o.after,
                if o.evaded { "EVADED" } else { "still detected" },
                o.queries,
                o.actions
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("error: {e}"),
        }
    }
}

/// The files labelled malicious in `pe:` datasets (labels as
/// [`mallard_datasets::labelled_pe_files`] reads them), for `eval --attack`.
pub fn malicious_pe_files(
    datasets: &[mallard_datasets::DatasetSpec],
    read: &mallard_datasets::ReadOptions,
) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for d in datasets {
        if d.format != mallard_datasets::DataFormat::Pe {
            let p = d.path.display();
            return Err(Error::Invalid(format!(
                "attacks edit PE files: {p} is not a pe: dataset"
            )));
        }
        let l = mallard_datasets::labelled_pe_files(&d.path, read, &mut Vec::new())?;
        let malicious = l
            .paths
            .into_iter()
            .zip(l.labels)
            .filter(|(_, y)| y == "malicious");
        files.extend(malicious.map(|(p, _)| p));
    }
    Ok(files)
}

/// The benign donor file's bytes, read under the PE size cap (empty without one: the
/// edits then use random bytes).
pub fn read_benign(path: Option<&Path>, caps: &mallard_io::Caps) -> Result<Vec<u8>, Error> {
    match path {
        Some(p) => mallard_io::read_capped(p, caps.max_pe_bytes)
            .map_err(|e| Error::Invalid(format!("reading {}: {e}", p.display()))),
        None => Ok(Vec::new()),
    }
}

/// Every file's attack and the totals.
pub struct AttackReport {
    pub model: String,
    pub threshold: f32,
    pub files: Vec<FileAttack>,
}

impl AttackReport {
    /// The totals in words: "N files attacked, D detected, E evaded (R% of detected)".
    pub fn summary(&self) -> String {
        let (attacked, detected, evaded) = self.counts();
        let rate = if detected > 0 {
            100.0 * evaded as f64 / detected as f64
        } else {
            0.0
        };
        format!("{attacked} files attacked, {detected} detected, {evaded} evaded ({rate:.1}% of detected)")
    }

    /// Files attacked, detected before, evaded after.
    pub fn counts(&self) -> (usize, usize, usize) {
        let ok: Vec<_> = self
            .files
            .iter()
            .filter_map(|f| f.outcome.as_ref().ok())
            .collect();
        (
            ok.len(),
            ok.iter().filter(|o| o.detected).count(),
            ok.iter().filter(|o| o.evaded).count(),
        )
    }

    /// The before/after picture ([`mallard_eval::score_shift_svg`]) of the detected files.
    pub fn svg(&self) -> String {
        let (before, after): (Vec<f32>, Vec<f32>) = self
            .files
            .iter()
            .filter_map(|f| f.outcome.as_ref().ok())
            .filter(|o| o.detected)
            .map(|o| (o.before, o.after))
            .unzip();
        let (_, detected, evaded) = self.counts();
        let title = format!(
            "{}: {evaded} of {detected} detected files evaded",
            self.model
        );
        mallard_eval::score_shift_svg(&before, &after, self.threshold, &title)
    }

    /// The report as JSON: totals, per-action use in evading mutants, every file.
    pub fn to_json(&self, opts: &AttackOptions<'_>) -> serde_json::Value {
        let (attacked, detected, evaded) = self.counts();
        let mut queries: Vec<usize> = self
            .files
            .iter()
            .filter_map(|f| f.outcome.as_ref().ok())
            .filter(|o| o.evaded)
            .map(|o| o.queries)
            .collect();
        queries.sort_unstable();
        let median = queries.get(queries.len() / 2).copied();
        let mut per_action = serde_json::Map::new();
        for a in ACTIONS {
            let used = self
                .files
                .iter()
                .filter_map(|f| f.outcome.as_ref().ok())
                .filter(|o| o.evaded && o.actions.contains(&a))
                .count();
            per_action.insert(a.name().into(), used.into());
        }
        let files: Vec<serde_json::Value> = self
            .files
            .iter()
            .map(|f| match &f.outcome {
                Ok(o) => serde_json::json!({
                    "path": f.path.display().to_string(),
                    "before": o.before,
                    "after": o.after,
                    "detected": o.detected,
                    "evaded": o.evaded,
                    "queries": o.queries,
                    "actions": o.actions.iter().map(|a| a.name()).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({"path": f.path.display().to_string(), "error": e}),
            })
            .collect();
        serde_json::json!({
            "model": self.model,
            "threshold": self.threshold,
            "strategy": format!("{:?}", opts.strategy).to_lowercase(),
            "budget": opts.budget,
            "seed": opts.seed,
            "files": attacked,
            "errors": self.files.len() - attacked,
            "detected": detected,
            "evaded": evaded,
            "evasion_rate": if detected > 0 { evaded as f64 / detected as f64 } else { 0.0 },
            "median_queries_to_evade": median,
            "evading_mutants_using_action": per_action,
            "results": files,
        })
    }
}

/// Parses a strategy name (`random`, `greedy`).
pub fn strategy(name: &str) -> Result<Strategy, Error> {
    match name {
        "random" => Ok(Strategy::Random),
        "greedy" => Ok(Strategy::Greedy),
        other => Err(Error::Settings(format!(
            "unknown attack strategy {other:?} (random, greedy)"
        ))),
    }
}

/// Attacks every file against `model` (a PE model: trees on features, opcodes, MalConv,
/// stack) at its own threshold; a file that cannot be read or parsed is an error row and
/// the batch goes on. `on_file` hears about each finished file.
pub fn attack_files(
    model: &dyn Model,
    paths: &[PathBuf],
    opts: &AttackOptions<'_>,
    on_file: &mut dyn FnMut(&FileAttack),
) -> Result<AttackReport, Error> {
    let reader = PeReader::for_model(model)?;
    let threshold = model.meta().threshold;
    let params = Params {
        benign: opts.benign,
        max_size: opts.max_bytes as usize,
        ..Params::default()
    };
    let mut files = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        let outcome = (|| {
            let bytes = mallard_io::read_capped(path, opts.max_bytes).map_err(|e| e.to_string())?;
            let mut score = |b: &[u8]| reader.score(model, b).map_err(|e| e.to_string());
            let mut rng =
                SplitMix64::new(opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let o = mallard_attack::attack(
                &bytes,
                &mut score,
                threshold,
                opts.budget,
                opts.strategy,
                &params,
                &mut rng,
            )
            .map_err(|e| e.to_string())?;
            if let Some(dir) = opts.out_dir {
                if !o.actions.is_empty() {
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    let dest =
                        dir.join(format!("{}.mutant", name.unwrap_or_else(|| "file".into())));
                    std::fs::write(&dest, &o.mutant)
                        .map_err(|e| format!("writing {}: {e}", dest.display()))?;
                }
            }
            Ok(o)
        })()
        .map_err(|e: String| format!("{}: {e}", path.display()));
        let f = FileAttack {
            path: path.clone(),
            outcome,
        };
        on_file(&f);
        files.push(f);
    }
    Ok(AttackReport {
        model: mallard_model::stack::member_name(model),
        threshold,
        files,
    })
}

/// The action names, for help text.
pub fn action_names() -> Vec<&'static str> {
    ACTIONS.iter().map(|a: &Action| a.name()).collect()
}

/// How to make mutants for training on them (`mallard mutate`).
pub struct MutateOptions<'a> {
    /// Mutants per file.
    pub per_file: usize,
    /// Random actions per mutant.
    pub steps: usize,
    /// The actions drawn from.
    pub actions: Vec<Action>,
    pub seed: u64,
    pub benign: &'a [u8],
    pub max_bytes: u64,
    /// Where `NAME.mK` goes.
    pub out_dir: &'a Path,
}

/// The actions named in `list` (comma-separated); all of them for `all` or an empty list.
pub fn parse_actions(list: &str) -> Result<Vec<Action>, Error> {
    if list.trim().is_empty() || list == "all" {
        return Ok(ACTIONS.to_vec());
    }
    list.split(',')
        .map(|n| {
            Action::parse(n.trim()).ok_or_else(|| {
                Error::Settings(format!(
                    "unknown action {n:?} (one of: {})",
                    action_names().join(", ")
                ))
            })
        })
        .collect()
}

/// Writes `per_file` random mutants of every file (each passes the structural checks) as
/// `NAME.m0`, `NAME.m1`, ...; a file that cannot be read or parsed is reported through
/// `on_file` and the batch goes on. Returns how many mutants were written.
pub fn mutate_files(
    paths: &[PathBuf],
    opts: &MutateOptions<'_>,
    on_file: &mut dyn FnMut(&Path, Result<usize, String>),
) -> usize {
    let params = Params {
        benign: opts.benign,
        max_size: opts.max_bytes as usize,
        ..Params::default()
    };
    let mut written = 0;
    for (i, path) in paths.iter().enumerate() {
        let r = (|| {
            let bytes = mallard_io::read_capped(path, opts.max_bytes).map_err(|e| e.to_string())?;
            let name = path
                .file_name()
                .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
            let mut rng =
                SplitMix64::new(opts.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut n = 0;
            for k in 0..opts.per_file {
                let (m, applied) = mallard_attack::random_mutant(
                    &bytes,
                    &opts.actions,
                    opts.steps,
                    &params,
                    &mut rng,
                )
                .map_err(|e| e.to_string())?;
                if applied.is_empty() {
                    continue;
                }
                let dest = opts.out_dir.join(format!("{name}.m{k}"));
                std::fs::write(&dest, &m)
                    .map_err(|e| format!("writing {}: {e}", dest.display()))?;
                n += 1;
            }
            Ok(n)
        })()
        .map_err(|e: String| format!("{}: {e}", path.display()));
        if let Ok(n) = &r {
            written += n;
        }
        on_file(path, r);
    }
    written
}
