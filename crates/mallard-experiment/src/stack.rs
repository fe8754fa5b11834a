//! Building a stack of PE models from trained members and their out-of-fold predictions
//! (`mallard cv --predictions`): the stacker is fitted on predictions no member made on its
//! own training rows, and its own figure is cross-fitted over folds of whole groups.

use crate::{during, Error, Observer};
use mallard_model::stack::{fit_specialists, fit_stack, member_name, specialists_help, StackModel};
use mallard_model::{Caps, Model, ModelFile};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to stack.
pub struct StackRequest<'a> {
    /// Each member's model file and its out-of-fold predictions file.
    pub members: &'a [(PathBuf, PathBuf)],
    /// `NAME<TAB>GROUP` (file name, name up to the first dot, or sha256), as for `--groups`.
    pub groups_file: Option<&'a Path>,
    pub folds: usize,
    /// Cross-fit over these folds (the members' fold file, by sha256) instead of making
    /// `folds` folds of whole groups.
    pub fold_plan: Option<&'a mallard_eval::FoldPlan>,
    pub seed: u64,
    /// Threshold where the cross-fitted false-positive rate is at most this (else 0.5).
    pub calibrate_fpr: Option<f64>,
    /// Keep the logistic weighting even where one member alone beats it out of fold.
    pub keep_weighting: bool,
}

/// The stack and its figures.
pub struct StackOutcome {
    pub file: ModelFile,
    /// Rows every member has a prediction for.
    pub rows: usize,
    /// (name, ROC AUC, TPR at 1% FPR, TPR at 0.1% FPR): each member, the logistic
    /// weighting, then the stack as written (the weighting, or the member it fell back to).
    pub figures: Vec<(String, f64, f64, f64)>,
}

struct Row {
    label: String,
    p: f32,
    /// False where the member's predictions say the file is outside its domain.
    inside: bool,
    names: Vec<String>,
}

/// A prediction's id as a join key: the sha256 of the file it names when that file
/// exists, else the id's file name up to the first dot when that is a sha256, else the id.
fn keys_of(id: &str) -> (String, Vec<String>) {
    let path = Path::new(id);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.to_string());
    let stem = name.split('.').next().unwrap_or("").to_ascii_lowercase();
    let is_sha = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    // Capped as every PE file is: an id may name any file.
    let key = if path.is_file() {
        mallard_io::read_capped(path, Caps::default().max_pe_bytes)
            .map(|b| format!("{:x}", Sha256::digest(&b)))
            .unwrap_or_else(|_| id.to_string())
    } else if is_sha(&stem) {
        stem.clone()
    } else {
        id.to_string()
    };
    let mut names = vec![name, stem, key.clone()];
    names.dedup();
    (key, names)
}

fn read_predictions(path: &Path, positive: usize) -> Result<HashMap<String, Row>, Error> {
    let bytes = mallard_io::read_capped(path, Caps::default().max_table_bytes)
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Invalid(format!("{}: not UTF-8 text", path.display())))?;
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| Error::Invalid(format!("{}:{}: {what}", path.display(), n + 1));
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(&format!("not JSON ({e})")))?;
        let id = v["id"].as_str().ok_or_else(|| bad("no id"))?;
        let label = v["label"].as_str().ok_or_else(|| bad("no label"))?;
        let p = v["probs"]
            .get(positive)
            .and_then(|p| p.as_f64())
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| bad("no probability for the malicious class"))?;
        let inside = match v.get("domain") {
            None => true,
            Some(d) => d
                .as_bool()
                .ok_or_else(|| bad("domain is not true or false"))?,
        };
        let (key, names) = keys_of(id);
        out.insert(
            key,
            Row {
                label: label.to_string(),
                p: p as f32,
                inside,
                names,
            },
        );
    }
    Ok(out)
}

fn figures(name: String, y: &[usize], p: &[f32]) -> Result<(String, f64, f64, f64), Error> {
    let pos: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    let curve = mallard_eval::roc_curve(&pos, p)?;
    Ok((
        name,
        mallard_eval::roc_auc(&pos, p)?,
        mallard_eval::tpr_at_fpr(&curve, 0.01),
        mallard_eval::tpr_at_fpr(&curve, 0.001),
    ))
}

/// Loads the members, joins their out-of-fold predictions and fits the stack.
pub fn build_stack(req: &StackRequest<'_>, obs: &mut dyn Observer) -> Result<StackOutcome, Error> {
    if req.members.len() < 2 {
        return Err(Error::Invalid("a stack needs at least two members".into()));
    }
    let mut models: Vec<Box<dyn Model>> = Vec::new();
    let mut preds = Vec::new();
    for (model, oof) in req.members {
        let m = during("loading a member", mallard_model::load(model))?;
        let pos = m
            .meta()
            .positive
            .ok_or_else(|| Error::Invalid(format!("{}: not a two-class model", model.display())))?;
        let rows = read_predictions(oof, pos)?;
        obs.info(&format!(
            "{}: {} out of fold, {} predictions",
            model.display(),
            member_name(m.as_ref()),
            rows.len()
        ));
        preds.push(rows);
        models.push(m);
    }
    let mut keys: Vec<&String> = preds[0]
        .keys()
        .filter(|k| preds[1..].iter().all(|p| p.contains_key(*k)))
        .collect();
    keys.sort();
    if keys.is_empty() {
        return Err(Error::Invalid(
            "no sample is in every predictions file (ids are joined by the sha256 of the file they name, or a sha256 id)".into(),
        ));
    }
    let labels = mallard_model::train::label_set(keys.iter().map(|k| preds[0][*k].label.as_str()));
    let positive = mallard_model::positive_index(&labels)
        .filter(|_| labels.len() == 2)
        .ok_or_else(|| Error::Invalid(format!("a stack is for two classes; labels {labels:?}")))?;
    let mut y = Vec::with_capacity(keys.len());
    for k in &keys {
        let l = &preds[0][*k].label;
        if preds.iter().any(|p| &p[*k].label != l) {
            return Err(Error::Invalid(format!(
                "{k}: the predictions files disagree on its label"
            )));
        }
        y.push(usize::from(labels[positive] == *l));
    }
    let caps = Caps::default();
    let named = match req.groups_file {
        Some(g) => mallard_datasets::read_groups_file(g, caps.max_table_bytes)?,
        None => HashMap::new(),
    };
    let group_keys: Vec<String> = keys
        .iter()
        .map(|k| {
            preds
                .iter()
                .flat_map(|p| p[*k].names.iter())
                .find_map(|n| named.get(n).cloned())
                .unwrap_or_else(|| (*k).clone())
        })
        .collect();
    let groups = mallard_eval::group_ids(&group_keys);
    let folds = match req.fold_plan {
        Some(plan) => {
            let folds = plan.folds(&keys)?;
            mallard_model::fit::warn_straddling(&groups, &folds, obs);
            folds
        }
        None => mallard_eval::stratified_group_kfold(&groups, &y, req.folds, req.seed)?,
    };
    let p: Vec<Vec<f32>> = keys
        .iter()
        .map(|k| preds.iter().map(|m| m[*k].p).collect())
        .collect();
    let inside: Vec<Vec<bool>> = keys
        .iter()
        .map(|k| preds.iter().map(|m| m[*k].inside).collect())
        .collect();
    // A member whose predictions mark files outside its domain is a specialist; the others
    // read every file and make the stack's logit.
    let special: Vec<usize> = (0..models.len())
        .filter(|&j| inside.iter().any(|r| !r[j]))
        .collect();
    let general: Vec<usize> = (0..models.len()).filter(|j| !special.contains(j)).collect();
    if general.is_empty() {
        return Err(Error::Invalid(
            "every member speaks for part of the files only: a stack needs one that reads every file".into(),
        ));
    }
    let pg: Vec<Vec<f32>> = p
        .iter()
        .map(|r| general.iter().map(|&j| r[j]).collect())
        .collect();
    let fit = during(
        "fitting the stack",
        fit_stack(&pg, &y, &folds, req.keep_weighting),
    )?;
    let mut weights = vec![0.0; models.len() + 1];
    weights[0] = fit.weights[0];
    for (k, &j) in general.iter().enumerate() {
        weights[j + 1] = fit.weights[k + 1];
    }
    let mut figs = Vec::new();
    for (j, m) in models.iter().enumerate() {
        let col: Vec<f32> = p.iter().map(|r| r[j]).collect();
        let mut name = member_name(m.as_ref());
        if special.contains(&j) {
            name.push_str(" (specialist)");
        }
        figs.push(figures(name, &y, &col)?);
    }
    if general.len() > 1 {
        figs.push(figures(
            "logistic weighting (cross-fitted)".into(),
            &y,
            &fit.weighted_cross_fitted,
        )?);
    }
    let mut written = fit.cross_fitted.clone();
    let mut specialists = Vec::new();
    let mut specialist_folds = Vec::new();
    if !special.is_empty() {
        let sf = during(
            "fitting the specialists",
            fit_specialists(&fit.cross_fitted, &p, &inside, &special, &y, &folds),
        )?;
        figs.push(figures(
            "with specialists (cross-fitted)".into(),
            &y,
            &sf.cross_fitted,
        )?);
        if specialists_help(&y, &fit.cross_fitted, &sf.cross_fitted)? {
            written = sf.cross_fitted;
            specialists = sf.specialists;
            specialist_folds = sf.fold_weights;
        } else {
            obs.info("the specialists did not beat the stack without them out of fold (TPR at 1% and at 0.1% FPR): left out");
        }
    }
    figs.push(figures("stack as written".into(), &y, &written)?);
    let n_groups = groups.iter().collect::<HashSet<_>>().len();
    let fallback = fit.fallback.map(|k| general[k]);
    let mut stack = during(
        "building the stack",
        StackModel::new(models, weights).and_then(|s| s.with_specialists(specialists)),
    )?;
    let meta = stack.meta_mut();
    if let Some(fpr) = req.calibrate_fpr {
        let neg: Vec<f32> = (0..y.len())
            .filter(|&i| y[i] == 0)
            .map(|i| written[i])
            .collect();
        let pos: Vec<f32> = (0..y.len())
            .filter(|&i| y[i] == 1)
            .map(|i| written[i])
            .collect();
        meta.threshold = mallard_eval::threshold_at_fpr(&neg, &pos, fpr).0;
    }
    let fig_json: Vec<serde_json::Value> = figs
        .iter()
        .map(|(n, auc, t1, t01)| serde_json::json!({"model": n, "roc_auc": auc, "tpr_at_1pct_fpr": t1, "tpr_at_0.1pct_fpr": t01}))
        .collect();
    meta.metrics = serde_json::json!({
        "cross_fitted": fig_json,
        "rows": y.len(),
        "groups": n_groups,
        "folds": folds.len(),
    });
    if let (Some(j), true) = (fallback, general.len() > 1) {
        obs.info(&format!(
            "no weighting beat {} alone out of fold (TPR at 1% FPR, then ROC AUC): the stack's logit is that member's",
            figs[j].0
        ));
    }
    meta.training = serde_json::json!({
        "fallback_member": fallback,
        "specialist_fold_weights": specialist_folds,
        "members": req.members.iter().map(|(m, o)| serde_json::json!({"model": m.display().to_string(), "out_of_fold": o.display().to_string()})).collect::<Vec<_>>(),
        "fold_weights": fit.fold_weights,
        "seed": req.seed,
    });
    let file = during("writing the stack", stack.to_file())?;
    Ok(StackOutcome {
        file,
        rows: y.len(),
        figures: figs,
    })
}
