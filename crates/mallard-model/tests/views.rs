//! Input views recorded in the model are applied when scoring.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::{collapse_runs, distinct_in_order, Input, ModelFile};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn views_by_hand() {
    let a = s(&["A", "A", "B", "A", "B", "B", "C"]);
    assert_eq!(collapse_runs(&a), s(&["A", "B", "A", "B", "C"]));
    assert_eq!(distinct_in_order(&a), s(&["A", "B", "C"]));
    assert!(collapse_runs(&[]).is_empty());
}

#[test]
fn distinct_training_data_makes_scoring_see_distinct_calls() {
    // Malicious rows contain X; every row lists each call once, like MalBehavD.
    let mut seqs = Vec::new();
    let mut labels = Vec::new();
    for i in 0..40 {
        let mal = i % 2 == 0;
        let mut r = s(&["A", "B"]);
        if mal {
            r.push("X".into());
        } else {
            r.push("Y".into());
        }
        if i % 3 == 0 {
            r.push("C".into());
        }
        seqs.push(r);
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    let m = train(
        &seqs,
        &labels,
        &TrainOptions::new(ModelKind::Ngram, Preset::Default),
        &mut Quiet,
    )
    .unwrap();
    assert!(m.meta().distinct_calls);
    // A raw trace with repeats scores exactly like its distinct form.
    let raw = s(&["A", "A", "B", "X", "B", "X", "X"]);
    let distinct = s(&["A", "B", "X"]);
    let p1 = m.predict_proba(&[Input::Apis(&raw)]).unwrap();
    let p2 = m.predict_proba(&[Input::Apis(&distinct)]).unwrap();
    assert_eq!(p1, p2);
    assert!(p1[1] > 0.5);
    // ...and the flag survives the file.
    let back = mallard_model::from_file(
        ModelFile::from_bytes(&m.to_file().unwrap().to_bytes().unwrap()).unwrap(),
    )
    .unwrap();
    // Weights are stored as f32, so allow rounding.
    let p3 = back.predict_proba(&[Input::Apis(&raw)]).unwrap();
    assert!((p3[1] - p1[1]).abs() < 1e-6, "{p3:?} vs {p1:?}");
}

#[test]
fn collapse_repeats_is_remembered_by_ensemble_members() {
    let mut seqs = Vec::new();
    let mut labels = Vec::new();
    for i in 0..40 {
        let mal = i % 2 == 0;
        let r = if mal {
            s(&["A", "A", "X", "X", "B"])
        } else {
            s(&["A", "Y", "Y", "B", "B"])
        };
        seqs.push(r);
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    let mut o = TrainOptions::new(ModelKind::Ensemble, Preset::Default);
    o.collapse_runs = true;
    o.epochs = Some(2);
    o.threads = 1;
    let m = train(&seqs, &labels, &o, &mut Quiet).unwrap();
    assert!(m.meta().collapse_runs);
    let a = s(&["A", "A", "A", "X", "B"]);
    let b = s(&["A", "X", "B"]);
    assert_eq!(
        m.predict_proba(&[Input::Apis(&a)]).unwrap(),
        m.predict_proba(&[Input::Apis(&b)]).unwrap()
    );
}
