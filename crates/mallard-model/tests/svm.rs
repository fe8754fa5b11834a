//! The set-kernel SVM through the public API: training, file round trip, errors.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::{Input, ModelError, ModelFile};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Separable: malicious rows call CryptEncrypt and DeleteFileW, benign ones NtClose.
fn toy(n: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let extra = [
        "RegOpenKeyExW",
        "GetSystemTime",
        "LoadLibraryA",
        "Sleep",
        "NtOpenKey",
    ];
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let mal = i % 2 == 0;
        let mut r = s(&["NtOpenFile", "NtReadFile"]);
        r.push(extra[i % 5].into());
        r.push(extra[(i / 5) % 5].into());
        if mal {
            r.extend(s(&["CryptEncrypt", "DeleteFileW"]));
        } else {
            r.push("NtClose".into());
        }
        seqs.push(mallard_model::distinct_in_order(&r));
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    (seqs, labels)
}

#[test]
fn trains_round_trips_byte_for_byte_and_predicts() {
    let (seqs, labels) = toy(60);
    let opts = TrainOptions::new(ModelKind::Svm, Preset::Default);
    let m = train(&seqs, &labels, &opts, &mut Quiet).unwrap();
    assert_eq!(m.meta().kind, "svm");
    assert!(m.meta().distinct_calls);
    assert_eq!(m.meta().threshold, 0.5);
    let bytes = m.to_file().unwrap().to_bytes().unwrap();
    // Same data, same bytes; and a loaded model writes the same bytes again.
    let again = train(&seqs, &labels, &opts, &mut Quiet).unwrap();
    assert_eq!(again.to_file().unwrap().to_bytes().unwrap(), bytes);
    let back = mallard_model::load_bytes(&bytes).unwrap();
    assert_eq!(back.to_file().unwrap().to_bytes().unwrap(), bytes);

    let evil = s(&[
        "NtOpenFile",
        "CryptEncrypt",
        "CryptEncrypt",
        "DeleteFileW",
        "Sleep",
    ]);
    let calm = s(&["NtOpenFile", "NtReadFile", "NtClose", "NtClose", "Sleep"]);
    let inputs = [Input::Apis(&evil), Input::Apis(&calm)];
    let p = m.predict_proba(&inputs).unwrap();
    assert_eq!(back.predict_proba(&inputs).unwrap(), p);
    assert!(p[1] > 0.9 && p[3] < 0.1, "{p:?}");
    let all: Vec<Input> = seqs.iter().map(|s| Input::Apis(s)).collect();
    let pa = back.predict_proba(&all).unwrap();
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(pa[2 * i + 1] > 0.5, l == "malicious", "row {i}");
    }
    let reasons = back.explain(&Input::Apis(&evil), 2).unwrap();
    assert!(reasons.iter().all(|r| r.kind == "api" && r.weight > 0.0));
    assert!(reasons
        .iter()
        .any(|r| r.name == "CryptEncrypt" || r.name == "DeleteFileW"));
    assert_eq!(
        back.known_apis(&s(&["NtClose", "Nope", "Nope"])),
        Some((1, 2))
    );
}

#[test]
fn options_and_errors() {
    let (seqs, labels) = toy(30);
    let mut o = TrainOptions::new(ModelKind::Svm, Preset::Default);
    o.svm_gamma = Some(0.0);
    assert!(matches!(
        train(&seqs, &labels, &o, &mut Quiet),
        Err(ModelError::Invalid(_))
    ));
    o.svm_gamma = Some(2.0);
    o.svm_c = Some(-1.0);
    assert!(matches!(
        train(&seqs, &labels, &o, &mut Quiet),
        Err(ModelError::Invalid(_))
    ));
    // Three classes: one machine per family, three probabilities per row.
    let three: Vec<String> = (0..30).map(|i| format!("family{}", i % 3)).collect();
    let fam = train(
        &seqs,
        &three,
        &TrainOptions::new(ModelKind::Svm, Preset::Default),
        &mut Quiet,
    )
    .unwrap();
    assert_eq!(fam.meta().labels.len(), 3);
    let p = fam.predict_proba(&[Input::Apis(&seqs[0])]).unwrap();
    assert_eq!(p.len(), 3);
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    // Feature vectors are refused.
    let m = train(
        &seqs,
        &labels,
        &TrainOptions::new(ModelKind::Svm, Preset::Default),
        &mut Quiet,
    )
    .unwrap();
    assert!(matches!(
        m.predict_proba(&[Input::Features(&[1.0])]),
        Err(ModelError::WrongInput { .. })
    ));
    // A damaged support-vector table is an error, not a panic.
    let mut f = m.to_file().unwrap();
    for (name, blob) in &mut f.blobs {
        if name == "sv_lens" {
            blob[0] = blob[0].wrapping_add(50);
        }
    }
    assert!(matches!(
        mallard_model::from_file(ModelFile::from_bytes(&f.to_bytes().unwrap()).unwrap()),
        Err(ModelError::Corrupt(_))
    ));
}
