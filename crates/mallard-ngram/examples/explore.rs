//! Hyper-parameter exploration on MalBehavD-V1 with a de-duplicated, grouped
//! k-fold over train.csv only (rows sharing a sequence or a sha256 stay in one
//! fold), then a single test.csv evaluation of chosen settings.
//!
//! cargo run --release -p mallard-ngram --example explore -- cv
//! cargo run --release -p mallard-ngram --example explore -- cv-json '{"vectorizer":{"norm":"none"}}' ...
//! cargo run --release -p mallard-ngram --example explore -- test '{"logreg":{"c":10}}' ...
//!
//! Data: $MALLARD_SHARED or <crate>/../../../shared.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use mallard_ngram::{LogRegConfig, NgramConfig, NgramModel, Norm, VectorizerConfig};

struct Data {
    sha: Vec<String>,
    seqs: Vec<Vec<String>>,
    labels: Vec<usize>,
}

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn load(name: &str) -> Data {
    let path = shared().join("data/api-sequences/malbehavd-v1").join(name);
    let text = std::fs::read_to_string(&path).expect("read csv");
    let mut d = Data {
        sha: vec![],
        seqs: vec![],
        labels: vec![],
    };
    for line in text.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let mut cells = line.split(',');
        d.sha.push(cells.next().unwrap().to_string());
        d.labels.push(cells.next().unwrap().trim().parse().unwrap());
        d.seqs.push(
            cells
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
        );
    }
    d
}

fn auc(s: &[f64], y: &[usize]) -> f64 {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    let (mut rs, mut i) = (0.0, 0);
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && s[idx[j + 1]] == s[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        rs += idx[i..=j].iter().filter(|&&k| y[k] == 1).count() as f64 * r;
        i = j + 1;
    }
    let np = y.iter().filter(|&&l| l == 1).count() as f64;
    let nn = y.len() as f64 - np;
    (rs - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Best TPR with FPR <= max_fpr (threshold at every distinct score).
fn tpr_at(s: &[f64], y: &[usize], max_fpr: f64) -> f64 {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]));
    let np = y.iter().filter(|&&l| l == 1).count() as f64;
    let nn = y.len() as f64 - np;
    let (mut tp, mut fp, mut best) = (0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && s[idx[j]] == s[idx[i]] {
            if y[idx[j]] == 1 {
                tp += 1.0
            } else {
                fp += 1.0
            }
            j += 1;
        }
        if fp / nn <= max_fpr + 1e-12 {
            best = best.max(tp / np);
        }
        i = j;
    }
    best
}

/// Union-find groups over equal sequences and equal sha256.
fn groups(d: &Data) -> Vec<usize> {
    let n = d.seqs.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut first: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        for key in [
            format!("s:{}", d.seqs[i].join(" ")),
            format!("h:{}", d.sha[i]),
        ] {
            if let Some(&j) = first.get(&key) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            } else {
                first.insert(key, i);
            }
        }
    }
    (0..n).map(|i| find(&mut parent, i)).collect()
}

/// Fold per row: groups shuffled with a fixed LCG, then dealt to the smallest fold.
fn folds(d: &Data, k: usize) -> Vec<usize> {
    let g = groups(d);
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, &r) in g.iter().enumerate() {
        members.entry(r).or_default().push(i);
    }
    let mut gs: Vec<Vec<usize>> = members.into_values().collect();
    gs.sort();
    let mut state: u64 = 42;
    for i in (1..gs.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        gs.swap(i, (state >> 33) as usize % (i + 1));
    }
    gs.sort_by_key(|m| std::cmp::Reverse(m.len())); // stable: big groups first
    let mut size = vec![[0usize; 2]; k];
    let mut fold = vec![0; d.seqs.len()];
    for m in gs {
        let lab = d.labels[m[0]];
        let f = (0..k)
            .min_by_key(|&f| (size[f][lab], size[f][0] + size[f][1]))
            .unwrap();
        for &i in &m {
            fold[i] = f;
            size[f][d.labels[i]] += 1;
        }
    }
    fold
}

fn cv(d: &Data, fold: &[usize], k: usize, cfg: &NgramConfig) -> (f64, f64, f64, f64, f64) {
    let mut oof = vec![0.0; d.seqs.len()];
    let mut fold_auc = 0.0;
    let t = Instant::now();
    for f in 0..k {
        let tr: Vec<usize> = (0..fold.len()).filter(|&i| fold[i] != f).collect();
        let va: Vec<usize> = (0..fold.len()).filter(|&i| fold[i] == f).collect();
        let xs: Vec<&Vec<String>> = tr.iter().map(|&i| &d.seqs[i]).collect();
        let ys: Vec<usize> = tr.iter().map(|&i| d.labels[i]).collect();
        let m = NgramModel::fit(&xs, &ys, 2, cfg).unwrap();
        let vs: Vec<&Vec<String>> = va.iter().map(|&i| &d.seqs[i]).collect();
        let p = m.predict_proba(&vs);
        let s: Vec<f64> = p.chunks(2).map(|r| r[1] as f64).collect();
        let yv: Vec<usize> = va.iter().map(|&i| d.labels[i]).collect();
        fold_auc += auc(&s, &yv) / k as f64;
        for (j, &i) in va.iter().enumerate() {
            oof[i] = s[j];
        }
    }
    let secs = t.elapsed().as_secs_f64() / k as f64;
    (
        auc(&oof, &d.labels),
        fold_auc,
        tpr_at(&oof, &d.labels, 0.01),
        tpr_at(&oof, &d.labels, 0.001),
        secs,
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let train = load("train.csv");
    match args.first().map(String::as_str) {
        Some("test") => {
            let test = load("test.csv");
            for json in &args[1..] {
                let cfg: NgramConfig = serde_json::from_str(json).expect("config json");
                let t = Instant::now();
                let m = NgramModel::fit(&train.seqs, &train.labels, 2, &cfg).unwrap();
                let fit_s = t.elapsed().as_secs_f64();
                let p = m.predict_proba(&test.seqs);
                let s: Vec<f64> = p.chunks(2).map(|r| r[1] as f64).collect();
                let acc = s
                    .iter()
                    .zip(&test.labels)
                    .filter(|(p, &y)| (**p >= 0.5) == (y == 1))
                    .count() as f64
                    / s.len() as f64;
                println!(
                    "TEST {json}: features {} fit {fit_s:.2}s iters {} auc {:.4} acc {acc:.4} tpr@1% {:.4} tpr@0.1% {:.4}",
                    m.vocab().len(), m.classifier().n_iter(),
                    auc(&s, &test.labels), tpr_at(&s, &test.labels, 0.01), tpr_at(&s, &test.labels, 0.001)
                );
            }
        }
        Some("cv-json") => {
            let k = 5;
            let fold = folds(&train, k);
            for json in &args[1..] {
                let cfg: NgramConfig = serde_json::from_str(json).expect("config json");
                let (a, fa, t1, t01, secs) = cv(&train, &fold, k, &cfg);
                println!("CV {json}: oof_auc {a:.4} fold_auc {fa:.4} tpr@1% {t1:.4} tpr@0.1% {t01:.4} ({secs:.2}s/fit)");
            }
        }
        _ => {
            let k = 5;
            let fold = folds(&train, k);
            let ng = groups(&train)
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len();
            println!("train rows {}, groups {ng}, {k} folds", train.seqs.len());
            let ranges: &[(usize, usize)] = &[(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 4)];
            let cs = [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 1000.0];
            for &(lo, hi) in ranges {
                for use_idf in [true, false] {
                    for min_df in [1, 2] {
                        for &c in &cs {
                            let cfg = NgramConfig {
                                vectorizer: VectorizerConfig {
                                    ngram_min: lo,
                                    ngram_max: hi,
                                    use_idf,
                                    min_df,
                                    norm: Norm::L2,
                                    ..Default::default()
                                },
                                logreg: LogRegConfig {
                                    c,
                                    ..Default::default()
                                },
                            };
                            let (a, fa, t1, t01, secs) = cv(&train, &fold, k, &cfg);
                            println!(
                                "ngram {lo}-{hi} idf {use_idf:5} min_df {min_df} C {c:>6}: oof_auc {a:.4} fold_auc {fa:.4} tpr@1% {t1:.4} tpr@0.1% {t01:.4} ({secs:.2}s/fit)"
                            );
                        }
                    }
                }
            }
        }
    }
}
