//! `--preset published`: the MalBehavD paper's recipe for two labels, the Mal-API-2019
//! paper's for families.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};

fn data(k: usize) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..24 {
        let c = i % k;
        seqs.push(vec!["NtOpenFile".to_string(), format!("Api{c}")]);
        labels.push(if k == 2 {
            ["benign", "malicious"][c].to_string()
        } else {
            format!("family{c}")
        });
    }
    (seqs, labels)
}

fn training(k: usize) -> serde_json::Value {
    let (seqs, labels) = data(k);
    let mut o = TrainOptions::new(ModelKind::Lstm, Preset::Published);
    o.epochs = Some(1);
    o.hidden = Some(4);
    let m = train(&seqs, &labels, &o, &mut Quiet).unwrap();
    let f = m.to_file().unwrap();
    let mut t = f.meta.training.clone();
    t["embed"] = f.tensor("embedding/embeddings").unwrap().shape[1].into();
    t
}

#[test]
fn published_preset_follows_the_paper_of_the_task() {
    let two = training(2);
    assert_eq!(two["batch_size"], 64);
    assert_eq!(two["embed"], 32);
    assert!(two["loss"].as_str().unwrap().contains("Mse"), "{two}");
    assert!(
        two["optimizer"].as_str().unwrap().contains("RmsProp"),
        "{two}"
    );

    let fam = training(4);
    assert_eq!(fam["batch_size"], 50);
    assert_eq!(fam["embed"], 16);
    assert!(
        fam["loss"].as_str().unwrap().contains("CrossEntropy"),
        "{fam}"
    );
    assert!(fam["optimizer"].as_str().unwrap().contains("Adam"), "{fam}");
}
