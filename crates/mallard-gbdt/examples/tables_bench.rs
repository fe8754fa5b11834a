//! Trains mallard-gbdt (and optionally the DNN) on ClaMP raw/integrated and BIG 2015 exactly
//! as `shared/baselines/lightgbm_tables.py` trains LightGBM, and prints one JSON line per
//! result. Used by `bench/compare.py`, which prints the side-by-side table.
//!
//! cargo run --release -p mallard-gbdt --example tables_bench -- [--shared DIR]
//!     [--folds FILE | --write-folds FILE] [--only clamp|big2015] [--dnn] [--threads N]
//!
//! `--folds FILE`: BIG 2015 fold of each row (one integer per line, file order), so that the
//! folds are sklearn's `StratifiedKFold(5, shuffle=True, random_state=42)`; without it,
//! mallard-eval's stratified 5-fold split (seed 42) is used.

use mallard_eval::{evaluate, roc_auc, roc_curve, stratified_group_kfold, tpr_at_fpr};
use mallard_gbdt::{Dataset, Gbdt, GbdtParams};
use mallard_tables::{big2015, clamp, clamp_with_schema, Table};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let shared = arg(&args, "--shared")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("MALLARD_SHARED").map(PathBuf::from))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let only = arg(&args, "--only");
    let with_dnn = args.iter().any(|a| a == "--dnn");
    let params = GbdtParams {
        n_threads: arg(&args, "--threads").map(|t| t.parse()).transpose()?,
        ..Default::default()
    };
    if only.as_deref() != Some("big2015") {
        for name in ["raw", "integrated"] {
            let d = shared.join("data/pe-header/clamp");
            let tr = clamp(&d.join(format!("{name}-train.csv")))?;
            let te = clamp_with_schema(&d.join(format!("{name}-test.csv")), &tr.schema)?;
            let classes = tr.classes();
            let ytr = tr.label_indices(&classes)?;
            let yte = te.label_indices(&classes)?;
            let data = Dataset {
                x: &tr.values,
                n_features: tr.n_cols(),
                y: &ytr,
            };
            let t0 = Instant::now();
            let m = Gbdt::fit(data, 2, &params, None)?;
            let secs = t0.elapsed().as_secs_f64();
            let p = m.predict_proba(&te.values)?;
            report_binary(
                &format!("ClaMP {name}"),
                "mallard-gbdt",
                &te,
                &yte,
                &p,
                secs,
            )?;
            if with_dnn {
                let t0 = Instant::now();
                let d = mallard_mlp::Dataset {
                    x: data.x,
                    n_features: data.n_features,
                    y: data.y,
                };
                let net = mallard_mlp::Mlp::fit(d, 2, &mallard_mlp::MlpParams::default(), None)?;
                let secs = t0.elapsed().as_secs_f64();
                let p = net.predict_proba(&te.values)?;
                report_binary(&format!("ClaMP {name}"), "mallard-dnn", &te, &yte, &p, secs)?;
            }
        }
    }
    if only.as_deref() != Some("clamp") {
        let t = big2015(&shared.join("data/big2015"))?;
        let classes = t.classes();
        let y = t.label_indices(&classes)?;
        let folds: Vec<Vec<usize>> = match arg(&args, "--folds") {
            Some(f) => {
                let text = std::fs::read_to_string(&f)?;
                let assign: Vec<usize> = text
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.trim().parse())
                    .collect::<Result<_, _>>()?;
                if assign.len() != t.n_rows() {
                    return Err(
                        format!("{f}: {} folds for {} rows", assign.len(), t.n_rows()).into(),
                    );
                }
                let k = assign.iter().max().map_or(0, |m| m + 1);
                (0..k)
                    .map(|j| (0..assign.len()).filter(|&i| assign[i] == j).collect())
                    .collect()
            }
            None => {
                let groups: Vec<usize> = (0..t.n_rows()).collect();
                stratified_group_kfold(&groups, &y, 5, 42)?
            }
        };
        if let Some(f) = arg(&args, "--write-folds") {
            let mut assign = vec![0usize; t.n_rows()];
            for (k, fold) in folds.iter().enumerate() {
                for &i in fold {
                    assign[i] = k;
                }
            }
            let text: String = assign.iter().map(|k| format!("{k}\n")).collect();
            std::fs::write(&f, text)?;
        }
        let k = classes.len();
        let mut oof = vec![0f32; t.n_rows() * k];
        let mut total = 0.0;
        for (fi, test) in folds.iter().enumerate() {
            let mut is_test = vec![false; t.n_rows()];
            for &i in test {
                is_test[i] = true;
            }
            let train: Vec<usize> = (0..t.n_rows()).filter(|&i| !is_test[i]).collect();
            let (tr, te) = (t.select_rows(&train), t.select_rows(test));
            let ytr: Vec<usize> = train.iter().map(|&i| y[i]).collect();
            let yte: Vec<usize> = test.iter().map(|&i| y[i]).collect();
            let t0 = Instant::now();
            let m = Gbdt::fit(
                Dataset {
                    x: &tr.values,
                    n_features: tr.n_cols(),
                    y: &ytr,
                },
                k,
                &params,
                None,
            )?;
            let secs = t0.elapsed().as_secs_f64();
            total += secs;
            let p = m.predict_proba(&te.values)?;
            for (j, &i) in test.iter().enumerate() {
                oof[i * k..(i + 1) * k].copy_from_slice(&p[j * k..(j + 1) * k]);
            }
            let e = evaluate(&classes, &yte, &p, None, None)?;
            println!(
                "{{\"dataset\":\"BIG 2015\",\"model\":\"mallard-gbdt\",\"fold\":{fi},\"accuracy\":{},\"macro_f1\":{},\"log_loss\":{},\"train_seconds\":{secs}}}",
                e.accuracy, e.macro_f1, e.log_loss
            );
        }
        let e = evaluate(&classes, &y, &oof, None, None)?;
        println!(
            "{{\"dataset\":\"BIG 2015\",\"model\":\"mallard-gbdt\",\"fold\":\"pooled\",\"accuracy\":{},\"macro_f1\":{},\"log_loss\":{},\"train_seconds\":{total}}}",
            e.accuracy, e.macro_f1, e.log_loss
        );
    }
    Ok(())
}

fn report_binary(
    dataset: &str,
    model: &str,
    te: &Table,
    yte: &[usize],
    p: &[f32],
    secs: f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let pos: Vec<bool> = yte.iter().map(|&c| c == 1).collect();
    let score: Vec<f32> = p.chunks(2).map(|r| r[1]).collect();
    let curve = roc_curve(&pos, &score)?;
    let acc = pos
        .iter()
        .zip(&score)
        .filter(|(&t, &s)| t == (s >= 0.5))
        .count() as f64
        / pos.len() as f64;
    println!(
        "{{\"dataset\":\"{dataset}\",\"model\":\"{model}\",\"n_test\":{},\"roc_auc\":{},\"tpr_at_1pct_fpr\":{},\"tpr_at_0_1pct_fpr\":{},\"accuracy\":{acc},\"train_seconds\":{secs}}}",
        te.n_rows(),
        roc_auc(&pos, &score)?,
        tpr_at_fpr(&curve, 0.01),
        tpr_at_fpr(&curve, 0.001)
    );
    Ok(())
}
