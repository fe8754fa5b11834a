//! Golden test against Python LightGBM 4.7 (defaults) on a synthetic table rebuilt here with
//! the generator of `bench/make_golden.py`, which wrote the expected raw scores.

use mallard_gbdt::{Dataset, Explain, Gbdt, GbdtParams};

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn table() -> (Vec<f32>, Vec<usize>, Vec<usize>) {
    let n = 3000;
    let mut r = Lcg(2015);
    let (mut x, mut y2, mut y3) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let a = r.below(4000) as f64;
        let b = r.below(256) as f64 / 64.0;
        let b_nan = r.below(10) == 0;
        let c = if r.below(3) != 0 {
            r.below(7) as f64
        } else {
            0.0
        };
        let d = r.below(101) as f64 - 50.0;
        let e = if r.below(300) == 0 { 1.0 } else { 0.0 };
        let f = r.below(1000) as f64 / 8.0;
        let noise = r.below(1000) as f64 / 1000.0;
        let s = (a / 4000.0) * 2.0
            + if b_nan {
                0.0
            } else {
                (b - 2.0) * (b - 2.0) * 0.4
            }
            + if b_nan { 0.6 } else { 0.0 }
            + 0.15 * c
            - 0.01 * d
            + 1.5 * noise;
        y2.push((s > 2.4) as usize);
        y3.push(if s < 2.0 {
            0
        } else if s < 2.8 {
            1
        } else {
            2
        });
        x.extend([a, if b_nan { f64::NAN } else { b }, c, d, e, f].map(|v| v as f32));
    }
    (x, y2, y3)
}

fn expected(key: &str) -> Vec<f64> {
    let text = include_str!("fixtures/lightgbm_golden.json");
    let v: serde_json::Value = serde_json::from_str(text).unwrap();
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn compare(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len());
    let worst = got
        .iter()
        .zip(want)
        .map(|(g, w)| (g - w).abs())
        .fold(0.0, f64::max);
    eprintln!("{what}: largest raw-score difference from LightGBM {worst:e}");
    assert!(
        worst < 1e-6,
        "{what}: largest raw-score difference from LightGBM {worst}"
    );
}

#[test]
fn binary_matches_lightgbm() {
    let (x, y, _) = table();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 6,
            y: &y,
        },
        2,
        &GbdtParams::default(),
        None,
    )
    .unwrap();
    let got = m.predict_raw(&x[..300 * 6]).unwrap();
    compare(&got, &expected("binary_raw"), "binary");
    // TreeSHAP against LightGBM's pred_contrib (same trees, same counts as cover)
    let want = expected("binary_contrib");
    let mut got = Vec::new();
    for r in 0..20 {
        got.extend(
            m.contributions(&x[r * 6..(r + 1) * 6], Explain::TreeShap)
                .unwrap(),
        );
    }
    compare(&got, &want, "binary TreeSHAP");
}

#[test]
fn multiclass_matches_lightgbm() {
    let (x, _, y) = table();
    let m = Gbdt::fit(
        Dataset {
            x: &x,
            n_features: 6,
            y: &y,
        },
        3,
        &GbdtParams::default(),
        None,
    )
    .unwrap();
    let got = m.predict_raw(&x[..300 * 6]).unwrap();
    compare(&got, &expected("multiclass_raw"), "multiclass");
}
