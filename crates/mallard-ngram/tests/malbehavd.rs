//! MalBehavD-V1 train -> test against the scikit-learn reference in
//! `shared/baselines/RESULTS-api.md` (23,196 features, ROC AUC 0.9803, accuracy 0.9336).

use std::path::PathBuf;
use std::time::Instant;

use mallard_ngram::{NgramConfig, NgramModel};

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// Reads `sha256,labels,api...` rows: CRLF, header line, variable width, empty trailing cells.
fn load(name: &str) -> (Vec<Vec<String>>, Vec<usize>) {
    let path = shared().join("data/api-sequences/malbehavd-v1").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut cells = line.split(',');
        let _sha = cells.next().unwrap();
        labels.push(cells.next().unwrap().trim().parse().unwrap());
        seqs.push(
            cells
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    (seqs, labels)
}

/// ROC AUC as the Mann-Whitney U statistic, ties counted one half.
fn auc(scores: &[f64], labels: &[usize]) -> f64 {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]] == scores[idx[i]] {
            j += 1;
        }
        let mid_rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            if labels[k] == 1 {
                rank_sum_pos += mid_rank;
            }
        }
        i = j + 1;
    }
    let n_pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    (rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// Best TPR whose FPR is at most `max_fpr`, thresholds at every distinct score.
fn tpr_at_fpr(scores: &[f64], labels: &[usize], max_fpr: f64) -> f64 {
    let n_pos = labels.iter().filter(|&&l| l == 1).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    let mut best: f64 = 0.0;
    for &t in scores {
        let (mut tp, mut fp) = (0.0, 0.0);
        for (s, &l) in scores.iter().zip(labels) {
            if *s >= t {
                if l == 1 {
                    tp += 1.0
                } else {
                    fp += 1.0
                }
            }
        }
        if fp / n_neg <= max_fpr + 1e-12 {
            best = best.max(tp / n_pos);
        }
    }
    best
}

#[test]
fn auc_helper_by_hand() {
    // pairs (pos, neg): (0.9>0.1),(0.9>0.5),(0.5=0.5 -> 1/2),(0.5>0.1) = 3.5/4
    assert_eq!(auc(&[0.9, 0.5, 0.5, 0.1], &[1, 1, 0, 0]), 0.875);
    assert_eq!(tpr_at_fpr(&[0.9, 0.5, 0.5, 0.1], &[1, 1, 0, 0], 0.0), 0.5);
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn malbehavd_matches_sklearn_reference() {
    let (tr, ytr) = load("train.csv");
    let (te, yte) = load("test.csv");
    assert_eq!((tr.len(), te.len()), (2046, 512));
    let t0 = Instant::now();
    let m = NgramModel::fit(&tr, &ytr, 2, &NgramConfig::default()).unwrap();
    let fit_s = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let p = m.predict_proba(&te);
    let pred_s = t1.elapsed().as_secs_f64();
    let s: Vec<f64> = p.chunks(2).map(|r| r[1] as f64).collect();
    let acc = s
        .iter()
        .zip(&yte)
        .filter(|(p, &y)| (**p >= 0.5) == (y == 1))
        .count() as f64
        / s.len() as f64;
    let a = auc(&s, &yte);
    eprintln!(
        "features {} | fit {fit_s:.2} s ({} L-BFGS iters) | predict 512 rows {:.1} ms | AUC {a:.5} | acc {acc:.4} | TPR@1%FPR {:.4} | TPR@0.1%FPR {:.4}",
        m.vocab().len(),
        m.classifier().n_iter(),
        pred_s * 1e3,
        tpr_at_fpr(&s, &yte, 0.01),
        tpr_at_fpr(&s, &yte, 0.001),
    );
    assert_eq!(m.vocab().len(), 23_196);
    assert!(m.classifier().converged());
    assert!((a - 0.9803).abs() < 0.002, "AUC {a}");
    assert!((acc - 0.9336).abs() < 0.006, "accuracy {acc}");
}

/// The CV-selected settings must not do worse than the reference on test.csv.
#[test]
#[ignore = "data: reads ../shared/data"]
fn malbehavd_tuned_config() {
    let (tr, ytr) = load("train.csv");
    let (te, yte) = load("test.csv");
    let t0 = Instant::now();
    let m = NgramModel::fit(&tr, &ytr, 2, &NgramConfig::tuned()).unwrap();
    let fit_s = t0.elapsed().as_secs_f64();
    let s: Vec<f64> = m
        .predict_proba(&te)
        .chunks(2)
        .map(|r| r[1] as f64)
        .collect();
    let a = auc(&s, &yte);
    eprintln!(
        "tuned: features {} | fit {fit_s:.2} s | AUC {a:.5} | TPR@1%FPR {:.4} | TPR@0.1%FPR {:.4}",
        m.vocab().len(),
        tpr_at_fpr(&s, &yte, 0.01),
        tpr_at_fpr(&s, &yte, 0.001)
    );
    assert!(a > 0.9803, "AUC {a}");
}
