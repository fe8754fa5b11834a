//! Checks against scikit-learn 1.9.1 outputs stored in `tests/golden/sklearn.json`
//! (written by `tests/golden/gen_golden.py`).

use mallard_ngram::{
    ClassWeight, LogRegConfig, LogisticRegression, NgramConfig, NgramModel, NgramVectorizer, Norm,
    TfMode, VectorizerConfig,
};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sklearn.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn docs(v: &Value) -> Vec<Vec<String>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d.as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<f64>) {
        match v {
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            x => out.push(x.as_f64().unwrap()),
        }
    }
    walk(v, &mut out);
    out
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0.0, |m, (x, y)| m.max((x - y).abs()))
}

/// Translates the sklearn keyword arguments used by the generator.
fn vec_config(p: &Value) -> VectorizerConfig {
    let mut c = VectorizerConfig::default();
    if let Some(r) = p.get("ngram_range") {
        c.ngram_min = r[0].as_u64().unwrap() as usize;
        c.ngram_max = r[1].as_u64().unwrap() as usize;
    }
    if let Some(m) = p.get("min_df") {
        c.min_df = m.as_u64().unwrap() as usize;
    }
    if p.get("sublinear_tf") == Some(&Value::Bool(true)) {
        c.tf = TfMode::Sublinear;
    }
    if p.get("binary") == Some(&Value::Bool(true)) {
        c.tf = TfMode::Binary;
    }
    if p.get("use_idf") == Some(&Value::Bool(false)) {
        c.use_idf = false;
    }
    if p.get("smooth_idf") == Some(&Value::Bool(false)) {
        c.smooth_idf = false;
    }
    match p.get("norm") {
        Some(Value::Null) => c.norm = Norm::None,
        Some(Value::String(s)) if s == "l1" => c.norm = Norm::L1,
        _ => {}
    }
    c
}

#[test]
fn vectorizer_matches_sklearn() {
    let g = golden();
    let train = docs(&g["vectorizer_docs"]);
    let queries = docs(&g["vectorizer_queries"]);
    let cases = g["vectorizer"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cfg = vec_config(&case["params"]);
        let (v, x) = NgramVectorizer::fit_transform(&train, &cfg).unwrap();
        let vocab: Vec<&str> = case["vocab"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert_eq!(v.vocab(), vocab.as_slice(), "{name}: vocabulary");
        match &case["idf"] {
            Value::Null => assert!(v.idf().is_none(), "{name}"),
            idf => {
                let d = max_diff(v.idf().unwrap(), &floats(idf));
                assert!(d < 1e-12, "{name}: idf differs by {d}");
            }
        }
        let d = max_diff(&x.to_dense(), &floats(&case["train"]));
        assert!(d < 1e-12, "{name}: train matrix differs by {d}");
        let d = max_diff(&v.transform(&queries).to_dense(), &floats(&case["queries"]));
        assert!(d < 1e-12, "{name}: query matrix differs by {d}");
    }
}

#[test]
fn logistic_regression_matches_sklearn() {
    let g = golden();
    for case in g["logreg"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let k = case["n_classes"].as_u64().unwrap() as usize;
        let train = docs(&case["docs"]);
        let tests = docs(&case["tests"]);
        let labels: Vec<usize> = case["labels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap() as usize)
            .collect();
        let cfg = NgramConfig {
            vectorizer: VectorizerConfig::default(),
            logreg: LogRegConfig {
                c: case["C"].as_f64().unwrap(),
                tol: 1e-10,
                max_iter: 5000,
                class_weight: if case["class_weight"].is_null() {
                    ClassWeight::None
                } else {
                    ClassWeight::Balanced
                },
                ..Default::default()
            },
        };
        let m = NgramModel::fit(&train, &labels, k, &cfg).unwrap();
        assert_eq!(
            m.vocab().len(),
            case["n_features"].as_u64().unwrap() as usize,
            "{name}"
        );
        let clf = m.classifier();
        assert!(clf.converged(), "{name}");
        let dc = max_diff(clf.coef(), &floats(&case["coef"]));
        let di = max_diff(clf.intercept(), &floats(&case["intercept"]));
        let x = m.vectorizer().transform(&train);
        let dp = max_diff(&clf.predict_proba(&x), &floats(&case["proba_train"]));
        let xt = m.vectorizer().transform(&tests);
        let dq = max_diff(&clf.predict_proba(&xt), &floats(&case["proba_test"]));
        eprintln!(
            "{name}: iters {} |coef| {dc:.2e} |intercept| {di:.2e} |proba| {dp:.2e} {dq:.2e}",
            clf.n_iter()
        );
        assert!(dc < 1e-6 && di < 1e-6, "{name}: coef {dc}, intercept {di}");
        assert!(dp < 1e-5 && dq < 1e-5, "{name}: proba {dp} {dq}");
        // The f32 public path agrees too.
        let p32 = m.predict_proba(&tests);
        let d32 = max_diff(
            &p32.iter().map(|&p| p as f64).collect::<Vec<_>>(),
            &floats(&case["proba_test"]),
        );
        assert!(d32 < 1e-5, "{name}: f32 proba {d32}");
    }
}

/// Balanced class weights equal explicit per-sample weights n / (k * count).
#[test]
fn class_weight_equals_sample_weight() {
    let g = golden();
    let case = &g["logreg"][1];
    let train = docs(&case["docs"]);
    let labels: Vec<usize> = case["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_u64().unwrap() as usize)
        .collect();
    let (_, x) = NgramVectorizer::fit_transform(&train, &VectorizerConfig::default()).unwrap();
    let n = labels.len() as f64;
    let n1 = labels.iter().filter(|&&l| l == 1).count() as f64;
    let sw: Vec<f64> = labels
        .iter()
        .map(|&l| {
            if l == 1 {
                n / (2.0 * n1)
            } else {
                n / (2.0 * (n - n1))
            }
        })
        .collect();
    let base = LogRegConfig {
        c: 10.0,
        tol: 1e-10,
        ..Default::default()
    };
    let a = LogisticRegression::fit(&x, &labels, 2, Some(&sw), &base).unwrap();
    let b = LogisticRegression::fit(
        &x,
        &labels,
        2,
        None,
        &LogRegConfig {
            class_weight: ClassWeight::Balanced,
            ..base
        },
    )
    .unwrap();
    assert!(max_diff(a.coef(), b.coef()) < 1e-8);
    assert!(max_diff(a.coef(), &floats(&case["coef"])) < 1e-5);
}
