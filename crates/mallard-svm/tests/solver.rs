//! The solver against independent truth: closed forms, the KKT conditions, scikit-learn.

use mallard_svm::tanimoto::{intersection, similarity, ExpTanimoto, SetKernel};
use mallard_svm::{platt, train, FnKernel, Kernel, Precomputed, Subset, SvcParams, SvmError};
use serde_json::Value;

fn tight() -> SvcParams {
    SvcParams {
        eps: 1e-9,
        ..SvcParams::default()
    }
}

/// Two 1-D points, +1 at x = 1 and -1 at x = -2, linear kernel. The maximal-margin line is
/// f(x) = (2x + 1) / 3 (boundary at -1/2, f = +-1 on the points), so w = 2/3 = 3a gives
/// a = 2/9 for both points and bias 1/3.
#[test]
fn two_points_hard_margin_closed_form() {
    let x = [1.0f64, -2.0];
    let k = FnKernel::new(2, |i, j| x[i] * x[j]);
    let m = train(&k, &[true, false], &[1000.0, 1000.0], &tight()).unwrap();
    assert!(m.converged);
    assert!((m.alpha[0] - 2.0 / 9.0).abs() < 1e-9, "{:?}", m.alpha);
    assert!((m.alpha[1] - 2.0 / 9.0).abs() < 1e-9, "{:?}", m.alpha);
    assert!((m.bias - 1.0 / 3.0).abs() < 1e-9, "{}", m.bias);
    assert_eq!(m.coef.len(), 2);
    assert!((m.coef[1] + 2.0 / 9.0).abs() < 1e-9);
    // Dual objective of the hard-margin problem = -||w||^2 / 2 = -2/9.
    assert!((m.objective + 2.0 / 9.0).abs() < 1e-9, "{}", m.objective);
    for (i, want) in [(0, 1.0), (1, -1.0)] {
        let row: Vec<f64> = (0..2).map(|j| k.eval(i, j)).collect();
        assert!((m.decision(&row) - want).abs() < 1e-9);
    }
}

/// With C below 2/9 both multipliers sit at C; any bias in [-0.4, 0.7] is optimal and the
/// solver takes the middle, 0.15 (the same rule as libsvm).
#[test]
fn two_points_soft_margin_sits_at_c() {
    let x = [1.0f64, -2.0];
    let k = FnKernel::new(2, |i, j| x[i] * x[j]);
    let m = train(&k, &[true, false], &[0.1, 0.1], &tight()).unwrap();
    assert_eq!(m.alpha, vec![0.1, 0.1]);
    assert!((m.bias - 0.15).abs() < 1e-12, "{}", m.bias);
}

/// A noisy random problem: at the returned solution every sample meets its KKT condition
/// to the stopping tolerance, and y'a = 0.
#[test]
fn kkt_conditions_hold_at_the_solution() {
    // Deterministic pseudo-random points in 3-D with an RBF kernel and overlapping classes.
    let mut s = 12345u64;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let n = 120;
    let pts: Vec<[f64; 3]> = (0..n).map(|_| [next(), next(), next()]).collect();
    let pos: Vec<bool> = pts
        .iter()
        .map(|p| p[0] + 0.5 * p[1] + 0.3 * (next() - 0.5) > 0.75)
        .collect();
    let c: Vec<f64> = (0..n).map(|i| if pos[i] { 2.0 } else { 0.7 }).collect();
    let rbf = |i: usize, j: usize| {
        let d: f64 = (0..3).map(|d| (pts[i][d] - pts[j][d]).powi(2)).sum();
        (-4.0 * d).exp()
    };
    let k = FnKernel::new(n, rbf);
    let eps = 1e-6;
    // A small cache (8 rows) exercises eviction.
    let params = SvcParams {
        eps,
        max_iter: None,
        cache_bytes: 8 * n * 8,
    };
    let m = train(&k, &pos, &c, &params).unwrap();
    assert!(m.converged);
    let y: Vec<f64> = pos.iter().map(|&p| if p { 1.0 } else { -1.0 }).collect();
    let balance: f64 = m.alpha.iter().zip(&y).map(|(a, y)| a * y).sum();
    assert!(balance.abs() < 1e-9, "y'a = {balance}");
    let mut free = 0;
    for i in 0..n {
        let row: Vec<f64> = (0..n).map(|j| k.eval(i, j)).collect();
        let margin = y[i] * m.decision(&row);
        let a = m.alpha[i];
        assert!((0.0..=c[i]).contains(&a));
        if a == 0.0 {
            assert!(margin >= 1.0 - eps, "sample {i}: a = 0, y f = {margin}");
        } else if a == c[i] {
            assert!(margin <= 1.0 + eps, "sample {i}: a = C, y f = {margin}");
        } else {
            free += 1;
            assert!(
                (margin - 1.0).abs() <= eps,
                "sample {i}: free, y f = {margin}"
            );
        }
    }
    assert!(free > 0 && m.support().len() < n);
    // Same answer with the whole matrix precomputed and an unlimited cache.
    let full = Precomputed::new(n, (0..n * n).map(|k| rbf(k / n, k % n)).collect()).unwrap();
    let m2 = train(
        &full,
        &pos,
        &c,
        &SvcParams {
            eps,
            ..SvcParams::default()
        },
    )
    .unwrap();
    assert_eq!(m.alpha, m2.alpha);
    assert_eq!(m.bias, m2.bias);
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn sets(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

/// Kernel matrix, dual coefficients, bias and decision values match scikit-learn 1.9.1's
/// SVC(kernel="precomputed") (tests/golden/gen_golden.py), sample weights included.
#[test]
fn agrees_with_scikit_learn() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sklearn.json");
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    for (ci, case) in golden["cases"].as_array().unwrap().iter().enumerate() {
        let gamma = case["gamma"].as_f64().unwrap();
        let c = case["c"].as_f64().unwrap();
        let train_sets = sets(&case["train_sets"]);
        let test_sets = sets(&case["test_sets"]);
        let n = train_sets.len();
        let kern = ExpTanimoto::new(gamma).unwrap();
        // Our kernel equals numpy's.
        let want_k: Vec<f64> = case["kernel"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(floats)
            .collect();
        let sk = SetKernel {
            kernel: kern,
            sets: &train_sets,
        };
        for i in 0..n {
            for j in 0..n {
                assert!((sk.eval(i, j) - want_k[i * n + j]).abs() < 1e-12);
            }
        }
        let pos: Vec<bool> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64() == Some(1))
            .collect();
        let cw: Vec<f64> = floats(&case["weights"]).iter().map(|w| c * w).collect();
        let m = train(&sk, &pos, &cw, &tight()).unwrap();
        assert!(m.converged);
        let tol = 1e-6;
        for (i, (a, b)) in m.coef.iter().zip(floats(&case["coef"])).enumerate() {
            assert!((a - b).abs() < tol, "case {ci}: coef {i}: {a} vs {b}");
        }
        let icpt = case["intercept"].as_f64().unwrap();
        assert!(
            (m.bias - icpt).abs() < tol,
            "case {ci}: {} vs {icpt}",
            m.bias
        );
        for (which, xs, want) in [
            ("train", &train_sets, floats(&case["decision_train"])),
            ("test", &test_sets, floats(&case["decision_test"])),
        ] {
            for (r, (x, w)) in xs.iter().zip(want).enumerate() {
                let row: Vec<f64> = train_sets.iter().map(|t| kern.eval(x, t)).collect();
                let d = m.decision(&row);
                assert!((d - w).abs() < tol, "case {ci} {which} {r}: {d} vs {w}");
            }
        }
        // The f32 precomputed matrix and a subset view give (nearly) the same model.
        let full = kern.matrix(&train_sets, 3).unwrap();
        let idx: Vec<usize> = (0..n).collect();
        let sub = Subset::new(&full, &idx).unwrap();
        let m32 = train(&sub, &pos, &cw, &tight()).unwrap();
        assert!((m32.bias - m.bias).abs() < 1e-4);
    }
}

#[test]
fn set_similarity_by_hand() {
    assert_eq!(intersection(&[1, 3, 5, 9], &[2, 3, 9, 10]), 2);
    assert_eq!(intersection(&[], &[1]), 0);
    assert_eq!(similarity(2, 4, 4), 2.0 / 6.0);
    assert_eq!(similarity(0, 0, 0), 1.0);
    let k = ExpTanimoto::new(3.0).unwrap();
    assert_eq!(k.eval(&[1, 2], &[1, 2]), 1.0);
    assert!((k.eval(&[1, 2], &[3]) - (-3.0f64).exp()).abs() < 1e-15);
    assert!(ExpTanimoto::new(0.0).is_err());
    assert!(ExpTanimoto::new(f64::NAN).is_err());
    // Matrices are the same whatever the thread count.
    let s: Vec<Vec<u32>> = (0..17u32)
        .map(|i| (0..i % 5 + 1).map(|j| j * i).collect())
        .collect();
    let s: Vec<Vec<u32>> = s
        .into_iter()
        .map(|mut v| {
            v.sort_unstable();
            v.dedup();
            v
        })
        .collect();
    let a = k.matrix(&s, 1).unwrap();
    let b = k.matrix(&s, 4).unwrap();
    for i in 0..s.len() {
        assert_eq!(a.row_slice(i), b.row_slice(i));
    }
}

#[test]
fn bad_inputs_are_errors() {
    let k = FnKernel::new(2, |i, j| if i == j { 1.0 } else { 0.0 });
    let p = SvcParams::default();
    assert_eq!(
        train(&FnKernel::new(0, |_, _| 0.0), &[], &[], &p),
        Err(SvmError::Empty)
    );
    assert!(matches!(
        train(&k, &[true], &[1.0, 1.0], &p),
        Err(SvmError::Length { .. })
    ));
    assert_eq!(
        train(&k, &[true, true], &[1.0, 1.0], &p),
        Err(SvmError::OneClass(2))
    );
    assert!(matches!(
        train(&k, &[true, false], &[1.0, -1.0], &p),
        Err(SvmError::BadC { index: 1, .. })
    ));
    let nan = FnKernel::new(2, |i, j| if i == j { 1.0 } else { f64::NAN });
    assert!(matches!(
        train(&nan, &[true, false], &[1.0, 1.0], &p),
        Err(SvmError::NonFinite { .. })
    ));
    assert!(Precomputed::new(2, vec![1.0f64; 3]).is_err());
    assert!(Precomputed::new(1, vec![f64::INFINITY]).is_err());
    assert!(Subset::new(&k, &[0, 2]).is_err());
}

/// Platt's sigmoid: increasing in f on separable-ish data, recovers a known sigmoid from
/// matching soft targets, and refuses bad input.
#[test]
fn platt_sigmoid() {
    let f: Vec<f64> = (-20..=20).map(|i| i as f64 / 5.0).collect();
    let pos: Vec<bool> = f.iter().map(|&v| v > 0.3).collect();
    let w = vec![1.0; f.len()];
    let s = platt::fit(&f, &pos, &w).unwrap();
    assert!(s.a < 0.0, "{s:?}");
    assert!(s.prob(-4.0) < 0.05 && s.prob(4.0) > 0.95);
    for pair in f.windows(2) {
        assert!(s.prob(pair[1]) > s.prob(pair[0]));
    }
    // Truth A = -2, B = 0.5: with weights equal to the true probabilities on duplicated
    // points, the weighted fit recovers it (up to Platt's target smoothing).
    let (mut ff, mut pp, mut ww) = (Vec::new(), Vec::new(), Vec::new());
    let truth = platt::Sigmoid { a: -2.0, b: 0.5 };
    for i in -30..=30 {
        let v = i as f64 / 10.0;
        let p = truth.prob(v);
        ff.extend([v, v]);
        pp.extend([true, false]);
        ww.extend([1000.0 * p, 1000.0 * (1.0 - p)]);
    }
    let s = platt::fit(&ff, &pp, &ww).unwrap();
    assert!(
        (s.a + 2.0).abs() < 0.02 && (s.b - 0.5).abs() < 0.02,
        "{s:?}"
    );
    assert!(platt::fit(&[], &[], &[]).is_err());
    assert!(platt::fit(&[f64::NAN], &[true], &[1.0]).is_err());
    assert!(platt::fit(&[1.0], &[true], &[-1.0]).is_err());
    // No overflow at extreme values.
    assert_eq!(truth.prob(1e6), 1.0);
    assert_eq!(truth.prob(-1e6), 0.0);
}
