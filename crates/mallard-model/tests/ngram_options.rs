//! `ngram_max` and `ngram_c` reach the n-gram model, and bad values are refused.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::{Input, ModelError};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn data() -> (Vec<Vec<String>>, Vec<String>) {
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let mal = i % 2 == 0;
        let mut r = s(&["A", "B", "C"]);
        r.push(if mal { "X" } else { "Y" }.into());
        r.push(["D", "E", "F"][i % 3].into());
        seqs.push(r);
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    (seqs, labels)
}

#[test]
fn ngram_max_bounds_the_features_and_c_the_fit() {
    let (seqs, labels) = data();
    let x = s(&["A", "B", "C", "X", "E"]);
    let reasons = |max: usize, c: f64| {
        let mut o = TrainOptions::new(ModelKind::Ngram, Preset::Default);
        o.ngram_max = Some(max);
        o.ngram_c = Some(c);
        let m = train(&seqs, &labels, &o, &mut Quiet).unwrap();
        let p = m.predict_proba(&[Input::Apis(&x)]).unwrap()[1];
        (m.explain(&Input::Apis(&x), 50).unwrap(), p)
    };
    // Unigrams only: every reason is one API name.
    let (uni, p_uni) = reasons(1, 30.0);
    assert!(!uni.is_empty());
    assert!(uni.iter().all(|r| !r.name.contains(' ')), "{uni:?}");
    // Up to trigrams: "B C X" is a feature of the input.
    let (tri, _) = reasons(3, 30.0);
    assert!(tri.iter().any(|r| r.name == "B C X"), "{tri:?}");
    // Stronger regularisation pulls the score toward 0.5.
    let (_, p_weak) = reasons(1, 0.01);
    assert!(p_uni > p_weak && p_weak > 0.5, "{p_uni} {p_weak}");

    for (max, c) in [(0, 30.0), (9, 30.0), (2, 0.0), (2, f64::NAN)] {
        let mut o = TrainOptions::new(ModelKind::Ngram, Preset::Default);
        o.ngram_max = Some(max);
        o.ngram_c = Some(c);
        assert!(matches!(
            train(&seqs, &labels, &o, &mut Quiet),
            Err(ModelError::Invalid(_))
        ));
    }
}
