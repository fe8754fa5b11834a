//! Names a model never saw are read as another name of the same call that it knows
//! (`mallard_apiseq::canon`), in every kind of sequence model; names it knows are untouched.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::{Input, Model, NameCounts};

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Cuckoo-style rows: malicious ones inject (WriteProcessMemory, CreateProcessInternalW),
/// benign ones read files; both load DLLs and query time.
fn data() -> (Vec<Vec<String>>, Vec<String>) {
    let noise = [
        "NtClose",
        "RegOpenKeyExW",
        "NtReadFile",
        "GetSystemTimeAsFileTime",
    ];
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..40 {
        let mal = i % 2 == 0;
        let mut r = s(&["LdrLoadDll"]);
        r.push(noise[i % 4].into());
        if mal {
            r.extend(s(&["CreateProcessInternalW", "WriteProcessMemory"]));
        } else {
            r.extend(s(&["NtCreateFile", "NtReadFile"]));
        }
        r.push(noise[(i / 4) % 4].into());
        seqs.push(mallard_model::distinct_in_order(&r));
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    (seqs, labels)
}

fn models() -> Vec<Box<dyn Model>> {
    let (seqs, labels) = data();
    [ModelKind::Ngram, ModelKind::Svm, ModelKind::Lstm]
        .into_iter()
        .map(|k| {
            let mut o = TrainOptions::new(k, Preset::Default);
            o.epochs = Some(2);
            o.threads = 1;
            train(&seqs, &labels, &o, &mut Quiet).unwrap()
        })
        .collect()
}

#[test]
fn cape_names_score_as_the_cuckoo_names_of_the_same_calls() {
    let cuckoo = s(&[
        "LdrLoadDll",
        "CreateProcessInternalW",
        "WriteProcessMemory",
        "GetSystemTimeAsFileTime",
    ]);
    let cape = s(&[
        "LoadLibraryExW",
        "CreateProcessA",
        "NtWriteVirtualMemory",
        "NtQuerySystemTime",
    ]);
    for m in models() {
        let kind = m.meta().kind.clone();
        let p = m.predict_proba(&[Input::Apis(&cuckoo)]).unwrap();
        let q = m.predict_proba(&[Input::Apis(&cape)]).unwrap();
        assert_eq!(p, q, "{kind}");
        assert_eq!(
            m.explain(&Input::Apis(&cuckoo), 4).unwrap(),
            m.explain(&Input::Apis(&cape), 4).unwrap(),
            "{kind}"
        );
        assert_eq!(
            m.api_names(&cape),
            Some(NameCounts {
                distinct: 4,
                known: 0,
                mapped: 4,
                unseen: 0
            }),
            "{kind}"
        );
        // known_apis still counts names as they are written.
        assert_eq!(m.known_apis(&cape), Some((0, 4)), "{kind}");
    }
}

#[test]
fn names_without_a_known_equivalent_change_nothing() {
    let base = s(&["LdrLoadDll", "NtCreateFile", "NtReadFile"]);
    let mut noisy = base.clone();
    noisy.splice(1..1, s(&["memcpy", "ZzNope", "NtWaitForSingleObject"]));
    for m in models() {
        let kind = m.meta().kind.clone();
        // The LSTM reads sequences: unknown names are dropped before it, as before.
        assert_eq!(
            m.predict_proba(&[Input::Apis(&base)]).unwrap(),
            m.predict_proba(&[Input::Apis(&noisy)]).unwrap(),
            "{kind}"
        );
        let c = m.api_names(&noisy).unwrap();
        assert_eq!((c.known, c.mapped, c.unseen), (3, 0, 3), "{kind}");
    }
}
