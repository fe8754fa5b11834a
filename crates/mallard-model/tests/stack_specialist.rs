//! A stack with a specialist scores a file of the specialist's domain as
//! `sigmoid(logit(general) + intercept + weight x logit(specialist))`, and any other file as
//! the general member alone, the members' scores taken from the members themselves; the
//! specialist survives a trip through the model file. Needs ../shared/data/pe-benign (a .NET
//! assembly and native files).

use mallard_model::fit::{fit_table, TableFit};
use mallard_model::stack::{logit, PeReader, Specialist, StackModel};
use mallard_model::TableLearner;
use mallard_model::{GbdtParams, Model};
use mallard_pefeatures::{extract, names, FeatureSet};
use mallard_tables::Table;
use std::path::PathBuf;

fn benign() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/pe-benign")
}

/// Trees on `set`'s vectors of the pe-benign files, labelled by the parity of their index
/// (arbitrary, so that scores are neither 0 nor 1).
fn member(set: FeatureSet, files: &[Vec<u8>]) -> Box<dyn Model> {
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for (i, b) in files.iter().enumerate() {
        values.extend(extract(set, b).unwrap());
        labels.push(if i % 2 == 0 { "malicious" } else { "benign" });
    }
    let table = Table::numeric(names(set), values, labels.into_iter().collect());
    let fit = TableFit {
        learner: TableLearner::Gbdt(GbdtParams {
            n_estimators: 10,
            min_data_in_leaf: 3,
            n_threads: Some(1),
            ..Default::default()
        }),
        feature_set: Some(set.name().to_string()),
        seed: 1,
        holdout: None,
        balance: None,
    };
    Box::new(fit_table(&table, &fit).unwrap())
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn a_specialist_adds_to_the_stack_on_its_domain_only() {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(benign())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dll" || e == "exe"))
        .collect();
    paths.sort();
    let files: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let general = member(FeatureSet::PeHeader, &files);
    let special = member(FeatureSet::Dotnet, &files);
    let score = |m: &dyn Model, b: &[u8]| PeReader::for_model(m).unwrap().score(m, b).unwrap();
    let sp = Specialist {
        member: 1,
        intercept: 0.5,
        weight: 2.0,
    };
    let stack = StackModel::new(
        vec![
            member(FeatureSet::PeHeader, &files),
            member(FeatureSet::Dotnet, &files),
        ],
        vec![0.0, 1.0, 0.0],
    )
    .unwrap()
    .with_specialists(vec![sp.clone()])
    .unwrap();
    let bytes = stack.to_file().unwrap().to_bytes().unwrap();
    let reread = mallard_model::load_bytes(&bytes).unwrap();
    let sigmoid = |z: f64| (1.0 / (1.0 + (-z).exp())) as f32;
    let (mut inside, mut outside) = (0, 0);
    for (p, b) in paths.iter().zip(&files) {
        let (pg, ps) = (score(general.as_ref(), b), score(special.as_ref(), b));
        let dotnet = extract(FeatureSet::Dotnet, b).unwrap()[1] != 0.0;
        let want = if dotnet {
            inside += 1;
            sigmoid(logit(pg) as f64 + 0.5 + 2.0 * logit(ps) as f64)
        } else {
            outside += 1;
            sigmoid(logit(pg) as f64)
        };
        for m in [&stack as &dyn Model, reread.as_ref()] {
            let got = m.predict_proba(&[mallard_model::Input::Bytes(b)]).unwrap()[1];
            assert!(
                (got - want).abs() < 1e-6,
                "{}: {got} vs {want}",
                p.display()
            );
        }
    }
    assert!(
        inside >= 5 && outside >= 100,
        "{inside} .NET, {outside} native files"
    );
    // A specialist must name a member once, with finite values.
    let two = || {
        vec![
            member(FeatureSet::PeHeader, &files[..20]),
            member(FeatureSet::Dotnet, &files[..20]),
        ]
    };
    let bad = |s: Specialist| {
        StackModel::new(two(), vec![0.0, 1.0, 0.0])
            .unwrap()
            .with_specialists(vec![s])
            .is_err()
    };
    assert!(bad(Specialist {
        member: 2,
        ..sp.clone()
    }));
    assert!(bad(Specialist {
        weight: f64::NAN,
        ..sp.clone()
    }));
}
