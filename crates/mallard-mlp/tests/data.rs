//! The network on ClaMP's integrated features against the scikit-learn baseline.

use mallard_mlp::{Dataset, Mlp, MlpParams};
use std::path::PathBuf;

fn shared() -> PathBuf {
    std::env::var_os("MALLARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn dnn_on_clamp_integrated() {
    let dir = shared().join("data/pe-header/clamp");
    let tr = mallard_tables::clamp(&dir.join("integrated-train.csv")).unwrap();
    let te =
        mallard_tables::clamp_with_schema(&dir.join("integrated-test.csv"), &tr.schema).unwrap();
    let classes = tr.classes();
    let ytr = tr.label_indices(&classes).unwrap();
    let yte = te.label_indices(&classes).unwrap();
    let net = Mlp::fit(
        Dataset {
            x: &tr.values,
            n_features: tr.n_cols(),
            y: &ytr,
        },
        2,
        &MlpParams::default(),
        None,
    )
    .unwrap();
    let p = net.predict_proba(&te.values).unwrap();
    let pos: Vec<f32> = p.chunks(2).map(|r| r[1]).collect();
    let truth: Vec<bool> = yte.iter().map(|&c| c == 1).collect();
    let auc = mallard_eval::roc_auc(&truth, &pos).unwrap();
    let acc = pos
        .iter()
        .zip(&yte)
        .filter(|(s, &y)| (**s >= 0.5) == (y == 1))
        .count() as f64
        / yte.len() as f64;
    // scikit-learn MLP (128, 64) baseline: AUC 0.9975, accuracy 0.9818
    assert!(auc >= 0.997, "AUC {auc}");
    assert!(acc >= 0.98, "accuracy {acc}");
}
