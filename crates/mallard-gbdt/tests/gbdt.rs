//! Behaviour against hand-computed splits, leaf values and predictions, plus a naive exact
//! greedy reference learner written independently of the histogram code.

use mallard_gbdt::{Dataset, Explain, Gbdt, GbdtError, GbdtMeta, GbdtParams, Importance};

fn sigmoid(s: f64) -> f64 {
    1.0 / (1.0 + (-s).exp())
}

fn tiny() -> GbdtParams {
    GbdtParams {
        n_estimators: 1,
        num_leaves: 2,
        min_data_in_leaf: 1,
        min_sum_hessian_in_leaf: 0.0,
        ..Default::default()
    }
}

/// Feature 0 is noise, feature 1 separates the classes between 3 and 4.
fn stump_data() -> (Vec<f32>, Vec<usize>) {
    let f1 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let f0 = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0];
    let x = (0..6).flat_map(|i| [f0[i], f1[i]]).collect();
    (x, vec![0, 0, 0, 1, 1, 1])
}

#[test]
fn stump_split_leaf_values_and_gain_by_hand() {
    let (x, y) = stump_data();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &y,
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    // init = log(3/3) = 0, p = 0.5, g = ±0.5, h = 0.25 per row.
    // split feature 1 at 3.5: left G = 1.5, H = 0.75 -> -1.5/0.75 * 0.1 = -0.2; right +0.2
    // gain = 1.5²/0.75 + 1.5²/0.75 - 0 = 6 (the noise feature's best is 2 * 0.5²/0.75 = 0.67)
    let raw = m
        .predict_raw(&[9.0, 2.0, 9.0, 3.5, 9.0, 3.6, 0.0, 100.0])
        .unwrap();
    let want = [-0.2, -0.2, 0.2, 0.2];
    for (r, w) in raw.iter().zip(want) {
        assert!((r - w).abs() < 1e-7, "{raw:?}");
    }
    assert_eq!(m.feature_importance(Importance::Split), vec![0.0, 1.0]);
    let g = m.feature_importance(Importance::Gain);
    assert!(g[0] == 0.0 && (g[1] - 6.0).abs() < 1e-5, "{g:?}");
    let p = m.predict_proba(&[0.0, 1.0]).unwrap();
    assert!((p[1] as f64 - sigmoid(-0.2)).abs() < 1e-7 && (p[0] + p[1] - 1.0).abs() < 1e-6);

    // L2: leaf = -G/(H + λ) * lr = -1.5/1.75 * 0.1
    let params = GbdtParams {
        lambda_l2: 1.0,
        ..tiny()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &y,
        },
        2,
        &params,
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&[0.0, 1.0]).unwrap();
    assert!((raw[0] + 1.5 / 1.75 * 0.1).abs() < 1e-7, "{raw:?}");
}

#[test]
fn second_round_uses_updated_gradients() {
    let (x, y) = stump_data();
    let params = GbdtParams {
        n_estimators: 2,
        ..tiny()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &y,
        },
        2,
        &params,
        None,
    )
    .unwrap();
    // after round 1 the left rows (y = 0) score -0.2: g = σ(-0.2), h = σ(-0.2)(1 - σ(-0.2))
    let p = sigmoid(-0.2);
    let second = -(3.0 * p) / (3.0 * p * (1.0 - p)) * 0.1;
    let raw = m.predict_raw(&[0.0, 1.0]).unwrap();
    assert!(
        (raw[0] - (-0.2 + second)).abs() < 1e-6,
        "{} vs {}",
        raw[0],
        -0.2 + second
    );
    // symmetric on the right
    let raw = m.predict_raw(&[0.0, 6.0]).unwrap();
    assert!((raw[0] - (0.2 - second)).abs() < 1e-6);
}

#[test]
fn init_score_is_the_log_odds_and_min_data_blocks_splits() {
    let x: Vec<f32> = (0..6).map(|i| i as f32).collect();
    let y = vec![0, 0, 0, 0, 1, 1];
    let params = GbdtParams {
        min_data_in_leaf: 4,
        ..tiny()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &y,
        },
        2,
        &params,
        None,
    )
    .unwrap();
    // 6 rows cannot make two leaves of 4: a single leaf; p = 1/3 so G = 0 and the leaf is 0
    let raw = m.predict_raw(&x).unwrap();
    for r in raw {
        assert!((r - (0.5f64).ln()).abs() < 1e-7, "{r}");
    }
    assert_eq!(m.feature_importance(Importance::Split), vec![0.0]);
}

#[test]
fn nan_goes_where_it_lowers_the_loss() {
    // NaN rows are positive like the high values: the split sends NaN right, with them
    let xs = [f32::NAN, f32::NAN, f32::NAN, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = vec![1, 1, 1, 0, 0, 0, 1, 1, 1];
    let m = Gbdt::fit(
        Dataset {
            x: &xs,
            n_features: 1,
            y: &y,
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&[f32::NAN, 2.0, 5.0]).unwrap();
    // init log(6/3); left {1,2,3}: 3 rows y=0 at p=2/3 -> G = 2, H = 3·2/9 -> -0.3
    // right 6 rows y=1: G = 6(2/3 - 1) = -2, H = 6·2/9 -> +0.15
    let init = 2f64.ln();
    assert!((raw[0] - (init + 0.15)).abs() < 1e-6, "{raw:?}");
    assert!((raw[1] - (init - 0.3)).abs() < 1e-6, "{raw:?}");
    assert!((raw[2] - (init + 0.15)).abs() < 1e-6, "{raw:?}");

    // a feature that is constant except for NaN: the only split is NaN against the rest
    let xs = [f32::NAN, f32::NAN, f32::NAN, 5.0, 5.0, 5.0];
    let y = vec![1, 1, 1, 0, 0, 0];
    let m = Gbdt::fit(
        Dataset {
            x: &xs,
            n_features: 1,
            y: &y,
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&[f32::NAN, 5.0, 1e30]).unwrap();
    assert!(
        (raw[0] - 0.2).abs() < 1e-6 && (raw[1] + 0.2).abs() < 1e-6 && (raw[2] + 0.2).abs() < 1e-6,
        "{raw:?}"
    );

    // no NaN in training: NaN at prediction is treated as 0 (LightGBM's missing type None)
    let (x, y) = stump_data();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &y,
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&[0.0, f32::NAN, 0.0, 0.0]).unwrap();
    assert_eq!(raw[0], raw[1]);
}

#[test]
fn multiclass_first_round_by_hand_and_separable_toy() {
    // three clusters along x: class c in [10c + 1, 10c + 5), 30, 30 and 40 rows (no gain ties)
    let mut x = Vec::new();
    let mut y = Vec::new();
    for (c, n) in [(0usize, 30), (1, 30), (2, 40)] {
        for i in 0..n {
            x.push(10.0 * c as f32 + 1.0 + i as f32 * 0.1);
            y.push(c);
        }
    }
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &y,
        },
        3,
        &tiny(),
        None,
    )
    .unwrap();
    // init = log priors (0.3, 0.3, 0.4), so p = priors; g = p - 1[y = c], h = K/(K-1) p(1-p).
    // class 0 (h 0.315): {0}|{1,2} gain 441/9.45 + 441/22.05 = 66.7 beats {0,1}|{2} 19.05;
    //   leaves +21/9.45, -21/22.05 (x 0.1)
    // class 1 (h 0.315): {0}|{1,2} 81/9.45 + 81/22.05 = 12.2 loses to {0,1}|{2}
    //   144/18.9 + 144/12.6 = 19.05; leaves +12/18.9, -12/12.6
    // class 2 (h 0.36): {0,1}|{2} 576/21.6 + 576/14.4 = 66.7 wins; leaves -24/21.6, +24/14.4
    let raw = m.predict_raw(&[2.0, 12.0, 22.0]).unwrap();
    let (l3, l4) = (0.3f64.ln(), 0.4f64.ln());
    let want = [
        [l3 + 2.1 / 9.45, l3 + 1.2 / 18.9, l4 - 2.4 / 21.6],
        [l3 - 2.1 / 22.05, l3 + 1.2 / 18.9, l4 - 2.4 / 21.6],
        [l3 - 2.1 / 22.05, l3 - 1.2 / 12.6, l4 + 2.4 / 14.4],
    ];
    for r in 0..3 {
        for c in 0..3 {
            assert!(
                (raw[r * 3 + c] - want[r][c]).abs() < 1e-6,
                "row {r}: {:?}",
                &raw[r * 3..r * 3 + 3]
            );
        }
    }

    let params = GbdtParams {
        n_estimators: 50,
        min_data_in_leaf: 5,
        ..Default::default()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &y,
        },
        3,
        &params,
        None,
    )
    .unwrap();
    assert_eq!(m.meta().n_trees, 150);
    let p = m.predict_proba(&x).unwrap();
    for (i, &c) in y.iter().enumerate() {
        assert!(p[i * 3 + c] > 0.95, "row {i}: {:?}", &p[i * 3..i * 3 + 3]);
        assert!((p[i * 3..i * 3 + 3].iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

/// Deterministic pseudo-random numbers for test data.
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn synthetic(n: usize, nf: usize, seed: u64, nan_rate: f64) -> (Vec<f32>, Vec<usize>) {
    let mut r = Lcg(seed);
    let mut x = Vec::with_capacity(n * nf);
    let mut y = Vec::with_capacity(n);
    for _ in 0..n {
        let row: Vec<f64> = (0..nf).map(|_| r.unit()).collect();
        let s = 3.0 * row[0] - 2.0 * row[1 % nf] * row[2 % nf] + 0.5 * r.unit();
        y.push((s > 0.8) as usize);
        for v in row {
            x.push(if r.unit() < nan_rate {
                f32::NAN
            } else {
                v as f32
            });
        }
    }
    (x, y)
}

/// Naive exact-greedy leaf-wise learner: sorts each feature's distinct values and tries every
/// cut between neighbours (no histograms, no NaN), same gain, same tie rules.
fn reference_binary(x: &[f32], nf: usize, y: &[usize], p: &GbdtParams) -> Vec<f64> {
    let n = y.len();
    let pos = y.iter().filter(|&&c| c == 1).count() as f64 / n as f64;
    let init = (pos / (1.0 - pos)).ln() as f32 as f64;
    let mut score = vec![init; n];
    let val = |g: f64, h: f64| (-g / (h + p.lambda_l2) * p.learning_rate) as f32 as f64;
    for _ in 0..p.n_estimators {
        let g: Vec<f64> = (0..n).map(|i| sigmoid(score[i]) - y[i] as f64).collect();
        let h: Vec<f64> = (0..n)
            .map(|i| sigmoid(score[i]) * (1.0 - sigmoid(score[i])))
            .collect();
        // leaves as row lists; best split per leaf: (gain, feature, cut, left rows, right rows)
        type Best = Option<(f64, Vec<usize>, Vec<usize>)>;
        let best_of = |rows: &[usize]| -> Best {
            if rows.len() < 2 * p.min_data_in_leaf {
                return None;
            }
            let (gs, hs): (f64, f64) = rows
                .iter()
                .fold((0.0, 0.0), |a, &i| (a.0 + g[i], a.1 + h[i]));
            let parent = gs * gs / (hs + p.lambda_l2);
            let mut best: Best = None;
            for f in 0..nf {
                let mut vals: Vec<f32> = rows.iter().map(|&i| x[i * nf + f]).collect();
                vals.sort_by(|a, b| a.total_cmp(b));
                vals.dedup();
                for w in vals.windows(2) {
                    let (l, r): (Vec<usize>, Vec<usize>) =
                        rows.iter().partition(|&&i| x[i * nf + f] <= w[0]);
                    let (gl, hl) = l.iter().fold((0.0, 0.0), |a, &i| (a.0 + g[i], a.1 + h[i]));
                    let (gr, hr) = (gs - gl, hs - hl);
                    if l.len() < p.min_data_in_leaf || r.len() < p.min_data_in_leaf {
                        continue;
                    }
                    let gain = gl * gl / (hl + p.lambda_l2) + gr * gr / (hr + p.lambda_l2) - parent;
                    if gain > 0.0 && best.as_ref().is_none_or(|b| gain > b.0) {
                        best = Some((gain, l, r));
                    }
                }
            }
            best
        };
        let all: Vec<usize> = (0..n).collect();
        let mut leaves: Vec<(Vec<usize>, Best)> = vec![(all.clone(), best_of(&all))];
        while leaves.len() < p.num_leaves {
            let Some(i) = (0..leaves.len()).filter(|&i| leaves[i].1.is_some()).fold(
                None,
                |acc: Option<usize>, i| match acc {
                    Some(a)
                        if leaves[a].1.as_ref().unwrap().0 >= leaves[i].1.as_ref().unwrap().0 =>
                    {
                        Some(a)
                    }
                    _ => Some(i),
                },
            ) else {
                break;
            };
            let (_, l, r) = leaves[i].1.take().unwrap();
            let bl = best_of(&l);
            let br = best_of(&r);
            leaves[i] = (l, bl);
            leaves.push((r, br));
        }
        for (rows, _) in &leaves {
            let (gs, hs) = rows
                .iter()
                .fold((0.0, 0.0), |a, &i| (a.0 + g[i], a.1 + h[i]));
            let v = val(gs, hs);
            for &i in rows {
                score[i] += v;
            }
        }
    }
    score
}

#[test]
fn matches_a_naive_exact_greedy_reference() {
    // fewer than 255 distinct values per feature, so bins are exact
    let (x, y) = synthetic(200, 3, 11, 0.0);
    let params = GbdtParams {
        n_estimators: 5,
        num_leaves: 6,
        min_data_in_leaf: 7,
        min_data_in_bin: 1,
        min_data_by_hessian: false,
        lambda_l2: 0.5,
        learning_rate: 0.3,
        ..Default::default()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 3,
            y: &y,
        },
        2,
        &params,
        None,
    )
    .unwrap();
    let raw = m.predict_raw(&x).unwrap();
    let want = reference_binary(&x, 3, &y, &params);
    for i in 0..y.len() {
        assert!(
            (raw[i] - want[i]).abs() < 1e-5,
            "row {i}: {} vs {}",
            raw[i],
            want[i]
        );
    }
    // leaf-wise with at most num_leaves leaves: nodes = 2 * leaves - 1 per tree
    let t = m.to_tensors();
    let sizes = &t.iter().find(|t| t.0 == "gbdt.tree_sizes").unwrap().2;
    assert!(
        sizes.iter().all(|&s| s <= 11.0) && sizes.contains(&11.0),
        "{sizes:?}"
    );
}

#[test]
fn deterministic_whatever_the_thread_count() {
    let (x, y) = synthetic(6000, 12, 3, 0.05);
    let data = Dataset {
        x: &x,
        n_features: 12,
        y: &y,
    };
    let p1 = GbdtParams {
        n_estimators: 20,
        n_threads: Some(1),
        ..Default::default()
    };
    let p2 = GbdtParams {
        n_threads: Some(2),
        ..p1.clone()
    };
    let a = Gbdt::fit(data, 2, &p1, None).unwrap();
    let b = Gbdt::fit(data, 2, &p2, None).unwrap();
    let c = Gbdt::fit(data, 2, &p2, None).unwrap();
    assert_eq!(a.to_tensors(), b.to_tensors());
    assert_eq!(b.to_tensors(), c.to_tensors());
}

fn roundtrip(m: &Gbdt) -> Gbdt {
    let meta: GbdtMeta = serde_json::from_str(&serde_json::to_string(m.meta()).unwrap()).unwrap();
    Gbdt::from_parts(meta, &m.to_tensors()).unwrap()
}

#[test]
fn serialization_round_trip_and_contributions() {
    for classes in [2usize, 3] {
        let (x, y0) = synthetic(800, 5, 5, 0.1);
        let y: Vec<usize> = if classes == 2 {
            y0
        } else {
            (0..800)
                .map(|i| (y0[i] + (x[i * 5 + 3] > 0.5) as usize) % 3)
                .collect()
        };
        let params = GbdtParams {
            n_estimators: 15,
            ..Default::default()
        };
        let m = Gbdt::fit(
            Dataset {
                x: &x,
                n_features: 5,
                y: &y,
            },
            classes,
            &params,
            None,
        )
        .unwrap();
        let back = roundtrip(&m);
        assert_eq!(back, m);
        let (pa, pb) = (m.predict_raw(&x).unwrap(), back.predict_raw(&x).unwrap());
        assert_eq!(pa, pb, "bit-identical predictions after the round trip");
        // contributions: one row per output, summing to the raw score
        let k = m.meta().n_outputs();
        for r in 0..20 {
            let row = &x[r * 5..(r + 1) * 5];
            for how in [Explain::Saabas, Explain::TreeShap] {
                let c = m.contributions(row, how).unwrap();
                assert_eq!(c, back.contributions(row, how).unwrap());
                assert_eq!(c.len(), k * 6);
                for o in 0..k {
                    let s: f64 = c[o * 6..(o + 1) * 6].iter().sum();
                    assert!(
                        (s - pa[r * k + o]).abs() < 1e-9,
                        "{how:?}: {s} vs {}",
                        pa[r * k + o]
                    );
                }
            }
        }
    }
    // hand check on the stump: x1 = 2 -> feature 1 contributes -0.2, bias 0 (init 0, root 0)
    let (x, y) = stump_data();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &y,
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    let c = m.contributions(&[7.0, 2.0], Explain::Saabas).unwrap();
    assert!(
        c[0] == 0.0 && (c[1] + 0.2).abs() < 1e-7 && c[2].abs() < 1e-12,
        "{c:?}"
    );
    // one split: SHAP of feature 1 = f(x) - E f = -0.2 - (3/6 * -0.2 + 3/6 * 0.2)
    let c = m.contributions(&[7.0, 2.0], Explain::TreeShap).unwrap();
    assert!(
        c[0] == 0.0 && (c[1] + 0.2).abs() < 1e-7 && c[2].abs() < 1e-7,
        "{c:?}"
    );
}

#[test]
fn from_parts_rejects_corrupt_models() {
    let (x, y) = synthetic(300, 4, 9, 0.0);
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 4,
            y: &y,
        },
        2,
        &GbdtParams {
            n_estimators: 3,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let t = m.to_tensors();
    let node_i = t.iter().position(|t| t.0 == "gbdt.nodes").unwrap();
    // child pointing back at the root: a cycle
    let mut bad = t.clone();
    bad[node_i].2[3] = 0.0;
    assert!(matches!(
        Gbdt::from_parts(m.meta().clone(), &bad),
        Err(GbdtError::Model(_))
    ));
    // feature out of range
    let mut bad = t.clone();
    bad[node_i].2[0] = 99.0;
    assert!(Gbdt::from_parts(m.meta().clone(), &bad).is_err());
    // wrong shape / missing tensor / wrong tree count
    let mut bad = t.clone();
    bad[node_i].2.pop();
    assert!(Gbdt::from_parts(m.meta().clone(), &bad).is_err());
    assert!(Gbdt::from_parts(m.meta().clone(), &t[..2]).is_err());
    let mut meta = m.meta().clone();
    meta.n_trees += 1;
    assert!(Gbdt::from_parts(meta, &t).is_err());
    // a good model predicts; wrong row width is an error, not a panic
    assert!(m.predict_raw(&[1.0, 2.0, 3.0]).is_err());
    assert!(m.contributions(&[1.0], Explain::TreeShap).is_err());
}

#[test]
fn early_stopping_keeps_the_best_round() {
    // noisy labels: the validation loss turns up after a while
    let (x, y) = synthetic(1200, 4, 21, 0.0);
    let mut r = Lcg(99);
    let y: Vec<usize> = y
        .iter()
        .map(|&c| if r.unit() < 0.3 { 1 - c } else { c })
        .collect();
    let (tx, vx) = x.split_at(800 * 4);
    let (ty, vy) = y.split_at(800);
    let train = Dataset {
        x: tx,
        n_features: 4,
        y: ty,
    };
    let valid = Dataset {
        x: vx,
        n_features: 4,
        y: vy,
    };
    let params = GbdtParams {
        n_estimators: 300,
        early_stopping_rounds: Some(10),
        ..Default::default()
    };
    let m = Gbdt::fit(train, 2, &params, Some(valid)).unwrap();
    let rounds = m.meta().n_rounds;
    assert!(rounds < 300 && m.meta().n_trees == rounds, "{rounds}");
    let loss = |m: &Gbdt| {
        let p = m.predict_proba(vx).unwrap();
        vy.iter()
            .enumerate()
            .map(|(i, &c)| -(p[i * 2 + c] as f64).ln())
            .sum::<f64>()
            / vy.len() as f64
    };
    for other in [rounds.saturating_sub(5).max(1), rounds + 5] {
        let p = GbdtParams {
            n_estimators: other,
            early_stopping_rounds: None,
            ..params.clone()
        };
        let o = Gbdt::fit(train, 2, &p, None).unwrap();
        assert!(
            loss(&m) <= loss(&o) + 1e-6,
            "best {rounds}: {} vs {other}: {}",
            loss(&m),
            loss(&o)
        );
    }
    // early stopping without a validation set is a parameter error
    assert!(matches!(
        Gbdt::fit(train, 2, &params, None),
        Err(GbdtError::Param(_))
    ));
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let x = vec![1.0, 2.0, 3.0];
    let p = GbdtParams::default();
    assert!(Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 2,
            y: &[0]
        },
        2,
        &p,
        None
    )
    .is_err());
    assert!(Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[0, 1]
        },
        2,
        &p,
        None
    )
    .is_err());
    assert!(Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[0, 1, 2]
        },
        2,
        &p,
        None
    )
    .is_err());
    assert!(Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[0, 1, 1]
        },
        1,
        &p,
        None
    )
    .is_err());
    assert!(Gbdt::fit(
        Dataset {
            x: &[],
            n_features: 1,
            y: &[]
        },
        2,
        &p,
        None
    )
    .is_err());
    let bad = GbdtParams {
        learning_rate: f64::NAN,
        ..Default::default()
    };
    assert!(matches!(
        Gbdt::fit(
            Dataset {
                x: &x,
                n_features: 1,
                y: &[0, 1, 1]
            },
            2,
            &bad,
            None
        ),
        Err(GbdtError::Param(_))
    ));
    let bad = GbdtParams {
        max_bin: 256,
        ..Default::default()
    };
    assert!(Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[0, 1, 1]
        },
        2,
        &bad,
        None
    )
    .is_err());
    // degenerate labels train without panicking: one class only, a class never seen
    let x: Vec<f32> = (0..50).map(|i| i as f32).collect();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[0; 50],
        },
        2,
        &p,
        None,
    )
    .unwrap();
    assert!(m.predict_proba(&x).unwrap().chunks(2).all(|r| r[1] < 1e-6));
    let y: Vec<usize> = (0..50).map(|i| (i >= 25) as usize * 2).collect();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &y,
        },
        3,
        &p,
        None,
    )
    .unwrap();
    let pr = m.predict_proba(&x).unwrap();
    assert!(pr.iter().all(|v| v.is_finite()) && pr.chunks(3).all(|r| r[1] < 1e-6));
    // infinities are values like any other
    let x = vec![f32::INFINITY, f32::NEG_INFINITY, 0.0, 1.0];
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &[1, 0, 0, 1],
        },
        2,
        &tiny(),
        None,
    )
    .unwrap();
    assert!(m.predict_raw(&x).unwrap().iter().all(|v| v.is_finite()));
}

/// Shapley values by brute force over all feature subsets, with the cover-weighted
/// conditional expectation TreeSHAP defines, from the serialized trees.
#[test]
#[allow(clippy::needless_range_loop)]
fn tree_shap_equals_brute_force_shapley() {
    // 15 leaves over 3 features: every deep path splits on a feature twice, which is
    // where TreeSHAP's unwinding can go wrong.
    for (nf, leaves) in [(4usize, 7usize), (3, 15)] {
        shap_case(nf, leaves);
    }
}

/// Linear TreeSHAP integrates each leaf's polynomial with a quadrature rule sized by the
/// tree's depth: deeper and wider trees (several points, many repeated features) must
/// still give the brute-force values.
#[test]
fn tree_shap_on_deep_trees_equals_brute_force_shapley() {
    for (nf, leaves) in [(8usize, 40usize), (5, 48), (2, 30)] {
        shap_case(nf, leaves);
    }
}

#[allow(clippy::needless_range_loop)]
fn shap_case(nf: usize, num_leaves: usize) {
    let (x, y) = synthetic(500, nf, 17, 0.1);
    let params = GbdtParams {
        n_estimators: 4,
        num_leaves,
        min_data_in_leaf: 10,
        ..Default::default()
    };
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: nf,
            y: &y,
        },
        2,
        &params,
        None,
    )
    .unwrap();
    let t = m.to_tensors();
    let get = |n: &str| t.iter().find(|e| e.0 == n).unwrap().2.clone();
    let (init, sizes, nodes) = (get("gbdt.init"), get("gbdt.tree_sizes"), get("gbdt.nodes"));
    let mut trees: Vec<&[f32]> = Vec::new();
    let mut off = 0;
    for &s in &sizes {
        trees.push(&nodes[off * 8..(off + s as usize) * 8]);
        off += s as usize;
    }
    // v(S): follow the row on features in S, average children by training count otherwise
    fn value(tree: &[f32], j: usize, row: &[f32], known: u32) -> f64 {
        let n = &tree[j * 8..j * 8 + 8];
        if n[0] < 0.0 {
            return n[5] as f64;
        }
        let f = n[0] as usize;
        let (l, r) = (n[3] as usize, n[4] as usize);
        if known & (1 << f) != 0 {
            let v = row[f];
            let left = if v.is_nan() { n[2] != 0.0 } else { v <= n[1] };
            value(tree, if left { l } else { r }, row, known)
        } else {
            let (cl, cr) = (tree[l * 8 + 6] as f64, tree[r * 8 + 6] as f64);
            (cl * value(tree, l, row, known) + cr * value(tree, r, row, known)) / (cl + cr)
        }
    }
    let fact = |k: usize| (1..=k).product::<usize>() as f64;
    for r in 0..25 {
        let row = &x[r * nf..(r + 1) * nf];
        let v = |s: u32| trees.iter().map(|t| value(t, 0, row, s)).sum::<f64>();
        let got = m.contributions(row, Explain::TreeShap).unwrap();
        for i in 0..nf {
            let mut phi = 0.0;
            for s in 0u32..(1 << nf) {
                if s & (1 << i) != 0 {
                    continue;
                }
                let k = s.count_ones() as usize;
                phi += fact(k) * fact(nf - k - 1) / fact(nf) * (v(s | 1 << i) - v(s));
            }
            assert!(
                (got[i] - phi).abs() < 1e-9,
                "row {r} feature {i}: {} vs {phi}",
                got[i]
            );
        }
        assert!((got[nf] - (init[0] as f64 + v(0))).abs() < 1e-9);
    }
}

/// A row of weight 2 is the same to the learner as two copies of the row: gradients,
/// hessians and the starting score add up alike. Values sit on a coarse grid so both
/// tables get the same bins.
#[test]
fn integer_weights_equal_duplicated_rows() {
    let (x, y) = synthetic(400, 3, 29, 0.05);
    let x: Vec<f32> = x.iter().map(|v| (v * 8.0).floor() / 8.0).collect();
    let w: Vec<f32> = (0..400)
        .map(|i| if i % 3 == 0 { 2.0 } else { 1.0 })
        .collect();
    let (mut xd, mut yd) = (Vec::new(), Vec::new());
    for i in 0..400 {
        for _ in 0..w[i] as usize {
            xd.extend_from_slice(&x[i * 3..(i + 1) * 3]);
            yd.push(y[i]);
        }
    }
    let params = GbdtParams {
        n_estimators: 8,
        num_leaves: 6,
        min_data_in_leaf: 1,
        min_data_in_bin: 1,
        // counts estimated from hessian shares are row counts, not weights
        min_data_by_hessian: false,
        ..tiny()
    };
    for classes in [2usize, 3] {
        let yc: Vec<usize> = y
            .iter()
            .enumerate()
            .map(|(i, &c)| if classes == 3 && i % 5 == 0 { 2 } else { c })
            .collect();
        let ydc: Vec<usize> = {
            let mut v = Vec::new();
            for i in 0..400 {
                for _ in 0..w[i] as usize {
                    v.push(yc[i]);
                }
            }
            v
        };
        let _ = &yd;
        let weighted = Gbdt::fit_weighted(
            Dataset {
                x: &x,
                n_features: 3,
                y: &yc,
            },
            Some(&w),
            classes,
            &params,
            None,
        )
        .unwrap();
        let copied = Gbdt::fit(
            Dataset {
                x: &xd,
                n_features: 3,
                y: &ydc,
            },
            classes,
            &params,
            None,
        )
        .unwrap();
        let (a, b) = (
            weighted.predict_raw(&x).unwrap(),
            copied.predict_raw(&x).unwrap(),
        );
        let unweighted = Gbdt::fit(
            Dataset {
                x: &x,
                n_features: 3,
                y: &yc,
            },
            classes,
            &params,
            None,
        )
        .unwrap()
        .predict_raw(&x)
        .unwrap();
        let max = |p: &[f64], q: &[f64]| {
            p.iter()
                .zip(q)
                .map(|(u, v)| (u - v).abs())
                .fold(0f64, f64::max)
        };
        assert!(
            max(&a, &b) < 1e-4,
            "{classes} classes: weighted vs copied differ by {}",
            max(&a, &b)
        );
        // and the weights did something
        assert!(max(&a, &unweighted) > 1e-3);
    }
    // bad weights are refused
    let d = Dataset {
        x: &x,
        n_features: 3,
        y: &y,
    };
    for bad in [
        vec![1.0f32; 399],
        {
            let mut v = vec![1.0f32; 400];
            v[7] = 0.0;
            v
        },
        {
            let mut v = vec![1.0f32; 400];
            v[7] = f32::NAN;
            v
        },
    ] {
        assert!(matches!(
            Gbdt::fit_weighted(d, Some(&bad), 2, &params, None),
            Err(GbdtError::Data(_))
        ));
    }
}

fn fit2(x: &[f32], nf: usize, y: &[usize], params: &GbdtParams) -> Gbdt {
    Gbdt::fit(
        Dataset {
            x,
            n_features: nf,
            y,
        },
        2,
        params,
        None,
    )
    .unwrap()
}

#[test]
fn max_delta_step_caps_leaf_outputs_and_gains_by_hand() {
    let (x, y) = stump_data();
    // Unbounded the leaves would be -G/H = ∓1.5/0.75 = ∓2; capped at 1 they are ∓1 (x lr).
    // Gain with output o: -(2 G o + H o²) per side = -(2 * 1.5 * -1 + 0.75) = 2.25, twice.
    let m = fit2(
        &x,
        2,
        &y,
        &GbdtParams {
            max_delta_step: 1.0,
            ..tiny()
        },
    );
    let raw = m.predict_raw(&[0.0, 1.0, 0.0, 6.0]).unwrap();
    assert!(
        (raw[0] + 0.1).abs() < 1e-7 && (raw[1] - 0.1).abs() < 1e-7,
        "{raw:?}"
    );
    let g = m.feature_importance(Importance::Gain);
    assert!((g[1] - 4.5).abs() < 1e-5, "{g:?}");
}

#[test]
fn monotone_constraint_refuses_a_split_that_orders_the_wrong_way() {
    // One feature, labels falling with it: a rising constraint leaves no split at all
    // (the model stays at the prior, 0), a falling one allows the usual ±0.2 stump.
    let x: Vec<f32> = (1..=6).map(|v| v as f32).collect();
    let y = vec![1, 1, 1, 0, 0, 0];
    let up = fit2(
        &x,
        1,
        &y,
        &GbdtParams {
            monotone: vec![1],
            ..tiny()
        },
    );
    assert_eq!(up.predict_raw(&[1.0, 6.0]).unwrap(), vec![0.0, 0.0]);
    let down = fit2(
        &x,
        1,
        &y,
        &GbdtParams {
            monotone: vec![-1],
            ..tiny()
        },
    );
    let raw = down.predict_raw(&[1.0, 6.0]).unwrap();
    assert!(
        (raw[0] - 0.2).abs() < 1e-7 && (raw[1] + 0.2).abs() < 1e-7,
        "{raw:?}"
    );
    let bad = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 1,
            y: &y,
        },
        2,
        &GbdtParams {
            monotone: vec![1, 0],
            ..tiny()
        },
        None,
    );
    assert!(matches!(bad, Err(GbdtError::Param(_))));
}

/// Rows whose label rises and falls with features 0 and 1 (a bump), so that free trees
/// are not monotone in either.
fn bumpy(n: usize, seed: u64) -> (Vec<f32>, Vec<usize>) {
    let mut r = mallard_rand::SplitMix64::new(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let a = r.range(0.0, 1.0);
        let b = r.range(0.0, 1.0);
        let c = r.range(0.0, 1.0);
        let z = 3.0 * a - 4.0 * (a - 0.7).powi(2) * 6.0 - 2.0 * b + 1.5 * (b - 0.3).abs() * 4.0 + c
            - 0.5;
        x.extend([a as f32, b as f32, c as f32]);
        y.push(usize::from(r.next_f64() < sigmoid(2.0 * z)));
    }
    (x, y)
}

/// Largest drop of the score along a sweep of feature `f` (or rise, for `dir` -1), over
/// grid rows built from `base`.
fn worst_violation(m: &Gbdt, base: &[f32], f: usize, dir: f64) -> f64 {
    let mut worst = 0.0f64;
    for row in base.chunks(3) {
        let mut prev: Option<f64> = None;
        for k in 0..=100 {
            let mut r = row.to_vec();
            r[f] = k as f32 / 100.0;
            let s = m.predict_raw(&r).unwrap()[0];
            if let Some(p) = prev {
                worst = worst.max(dir * (p - s));
            }
            prev = Some(s);
        }
    }
    worst
}

#[test]
fn monotone_constraints_make_the_score_monotone_where_free_trees_are_not() {
    let (x, y) = bumpy(3000, 7);
    let (base, _) = bumpy(60, 8);
    let free = GbdtParams {
        n_estimators: 60,
        num_leaves: 15,
        min_data_in_leaf: 10,
        ..Default::default()
    };
    let m = fit2(&x, 3, &y, &free);
    // the test can fail: unconstrained trees follow the bump
    assert!(worst_violation(&m, &base, 0, 1.0) > 0.05);
    assert!(worst_violation(&m, &base, 1, -1.0) > 0.05);
    let mono = GbdtParams {
        monotone: vec![1, -1, 0],
        ..free.clone()
    };
    let m = fit2(&x, 3, &y, &mono);
    assert_eq!(worst_violation(&m, &base, 0, 1.0), 0.0);
    assert_eq!(worst_violation(&m, &base, 1, -1.0), 0.0);
    // and it still learns: the free feature 2 is used, the training loss falls
    assert!(m.feature_importance(Importance::Split)[2] > 0.0);
    let p = m.predict_proba(&x).unwrap();
    let ll: f64 = y
        .iter()
        .enumerate()
        .map(|(i, &t)| -(p[2 * i + t] as f64).max(1e-12).ln())
        .sum::<f64>()
        / y.len() as f64;
    assert!(ll < 0.6, "log loss {ll}");
}

#[test]
fn bounds_that_never_bind_grow_the_same_trees() {
    // A huge cap takes the bounded code path (gains from outputs) without changing any
    // output: the trees must be those of the unbounded formulas.
    let (x, y) = bumpy(2000, 9);
    let free = GbdtParams {
        n_estimators: 30,
        num_leaves: 15,
        min_data_in_leaf: 10,
        ..Default::default()
    };
    let a = fit2(&x, 3, &y, &free);
    let b = fit2(
        &x,
        3,
        &y,
        &GbdtParams {
            max_delta_step: 1e12,
            monotone: vec![0, 0, 0],
            ..free
        },
    );
    let (pa, pb) = (a.predict_raw(&x).unwrap(), b.predict_raw(&x).unwrap());
    let d = pa
        .iter()
        .zip(&pb)
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max);
    assert!(d < 1e-9, "largest difference {d}");
    assert_eq!(
        a.feature_importance(Importance::Split),
        b.feature_importance(Importance::Split)
    );
}
