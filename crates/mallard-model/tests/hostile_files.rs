//! Edited model files: every size, count and depth read from a file is checked before it
//! is used, so corrupt values give errors, never panics, aborts or hangs.

use mallard_model::train::{train, ModelKind, Preset, Quiet, TrainOptions};
use mallard_model::{
    load_bytes, load_bytes_with, load_with, Caps, GbdtParams, Input, Model, ModelFile,
    TableLearner, TableModel,
};
use std::path::PathBuf;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mallard-model-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// A real, tiny LSTM trained here, as file bytes.
fn lstm_bytes() -> Vec<u8> {
    let (mut seqs, mut labels) = (Vec::new(), Vec::new());
    for i in 0..16 {
        let mal = i % 2 == 0;
        seqs.push(if mal {
            s(&["NtOpenFile", "CryptEncrypt", "DeleteFileW"])
        } else {
            s(&["NtOpenFile", "NtReadFile", "NtClose"])
        });
        labels.push(if mal { "malicious" } else { "benign" }.to_string());
    }
    let mut o = TrainOptions::new(ModelKind::Lstm, Preset::Default);
    o.epochs = Some(1);
    o.embed = Some(4);
    o.hidden = Some(3);
    o.maxlen = Some(8);
    o.threads = 1;
    let m = train(&seqs, &labels, &o, &mut Quiet).unwrap();
    m.to_file().unwrap().to_bytes().unwrap()
}

/// Rewrites one field of the model's metadata and returns the new file bytes.
fn edit_meta(bytes: &[u8], f: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut file = ModelFile::from_bytes(bytes).unwrap();
    f(&mut file.meta.config);
    file.to_bytes().unwrap()
}

fn load_err(bytes: &[u8]) -> String {
    match load_bytes(bytes) {
        Ok(_) => panic!("an edited model was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn edited_rnn_sizes_are_errors() {
    let good = lstm_bytes();
    let m = load_bytes(&good).unwrap();
    let apis = s(&["NtOpenFile", "CryptEncrypt"]);
    assert_eq!(m.predict_proba(&[Input::Apis(&apis)]).unwrap().len(), 2);

    let caps = Caps::default();
    for maxlen in [0u64, caps.max_seq_len as u64 + 1, 1 << 62, u64::MAX] {
        let bad = edit_meta(&good, |c| c["input"]["maxlen"] = maxlen.into());
        let e = load_err(&bad);
        assert!(e.contains("max_seq_len"), "maxlen {maxlen}: {e}");
    }
    // At the cap it loads: the check is a cap, not a refusal of edits.
    let at_cap = edit_meta(&good, |c| c["input"]["maxlen"] = caps.max_seq_len.into());
    assert!(load_bytes(&at_cap).is_ok());

    // Layer sizes that would allocate far beyond the file, or overflow when multiplied.
    for (field, v) in [
        ("embed", 1u64 << 40),
        ("hidden", 1 << 40),
        ("hidden", u64::MAX / 3),
        ("embed", u64::MAX),
        ("hidden", 0),
    ] {
        let bad = edit_meta(&good, |c| c[field] = v.into());
        let e = load_err(&bad);
        assert!(
            e.contains("overflows") || e.contains("expected") || e.contains("positive"),
            "{field} = {v}: {e}"
        );
    }
}

#[test]
fn edited_tokenizer_vocabulary_is_an_error() {
    let good = lstm_bytes();
    let mut file = ModelFile::from_bytes(&good).unwrap();
    let mut tok = serde_json::to_value(file.meta.tokenizer.take().unwrap()).unwrap();
    tok["words"].as_array_mut().unwrap().push("Extra".into());
    if let Some(c) = tok["counts"].as_array_mut().filter(|c| !c.is_empty()) {
        c.push(1.into());
    }
    file.meta.tokenizer = Some(serde_json::from_value(tok).unwrap());
    let e = load_err(&file.to_bytes().unwrap());
    assert!(e.contains("embedding"), "{e}");
}

/// A small real gbdt model trained here: two features, label = x0 > 0.5.
fn gbdt_file() -> ModelFile {
    let csv = scratch("t.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..40 {
        let a = (i % 10) as f32 / 10.0;
        let b = (i % 7) as f32;
        let l = if a > 0.45 { "malicious" } else { "benign" };
        text.push_str(&format!("{a},{b},{l}\n"));
    }
    std::fs::write(&csv, text).unwrap();
    let opts = mallard_model::tables::CsvOptions {
        label_column: Some("label".into()),
        ..Default::default()
    };
    let table = mallard_model::tables::read_csv(&csv, &opts).unwrap();
    let params = GbdtParams {
        n_estimators: 3,
        ..Default::default()
    };
    let m = TableModel::train(&table, &TableLearner::Gbdt(params), None).unwrap();
    m.to_file().unwrap()
}

/// One tree: a chain of `depth` splits on feature 0 (left goes deeper, right is a leaf).
fn chain(file: &mut ModelFile, depth: usize) {
    let mut rows: Vec<f32> = Vec::new();
    for k in 0..depth {
        let i = 2 * k;
        let t = 1.0 - k as f32 / depth as f32;
        rows.extend([0.0, t, 1.0, (i + 2) as f32, (i + 1) as f32, 0.1, 10.0, 1.0]);
        rows.extend([-1.0, 0.0, 0.0, 0.0, 0.0, 0.2, 5.0, 0.0]);
    }
    rows.extend([-1.0, 0.0, 0.0, 0.0, 0.0, -0.3, 5.0, 0.0]);
    let n = 2 * depth + 1;
    for t in &mut file.tensors {
        match t.name.as_str() {
            "gbdt.nodes" => {
                t.shape = vec![n, 8];
                t.data = rows.clone();
            }
            "gbdt.tree_sizes" => {
                t.shape = vec![1];
                t.data = vec![n as f32];
            }
            _ => {}
        }
    }
    file.meta.config["gbdt"]["n_trees"] = 1.into();
}

#[test]
fn deep_tree_chain_is_refused_at_load_and_the_cap_holds_exactly() {
    let base = gbdt_file();
    let bytes = base.to_bytes().unwrap();
    let m = load_bytes(&bytes).unwrap();
    let x = [0.7f32, 1.0];
    assert!(m.explain(&Input::Features(&x), 2).is_ok());

    let mut deep = base.clone();
    chain(&mut deep, 20_000);
    let e = load_err(&deep.to_bytes().unwrap());
    assert!(e.contains("max_tree_depth"), "{e}");

    let caps = Caps::default();
    let mut at_cap = base.clone();
    chain(&mut at_cap, caps.max_tree_depth);
    let m = load_bytes(&at_cap.to_bytes().unwrap()).unwrap();
    // The chain is real: TreeSHAP walks all of it and the contributions still work.
    let reasons = m.explain(&Input::Features(&[0.0, 1.0]), 2).unwrap();
    assert!(!reasons.is_empty());

    let mut over = base.clone();
    chain(&mut over, caps.max_tree_depth + 1);
    let e = load_err(&over.to_bytes().unwrap());
    assert!(e.contains("max_tree_depth"), "{e}");
    // A smaller cap refuses what the default accepts.
    let small = Caps {
        max_tree_depth: 10,
        ..Caps::default()
    };
    assert!(load_bytes_with(&at_cap.to_bytes().unwrap(), &small).is_err());
}

#[test]
fn shared_children_and_mismatched_sizes_are_refused() {
    let base = gbdt_file();
    // Node 3 is the child of both 1 and 2: a graph whose paths multiply, not a tree.
    let mut dag = base.clone();
    let leaf = |v: f32| [-1.0, 0.0, 0.0, 0.0, 0.0, v, 5.0, 0.0];
    let split = |l: usize, r: usize| [0.0, 0.5, 1.0, l as f32, r as f32, 0.0, 10.0, 1.0];
    let mut rows = Vec::new();
    rows.extend(split(1, 2));
    rows.extend(split(3, 4));
    rows.extend(split(3, 4));
    rows.extend(leaf(0.1));
    rows.extend(leaf(0.2));
    for t in &mut dag.tensors {
        match t.name.as_str() {
            "gbdt.nodes" => {
                t.shape = vec![5, 8];
                t.data = rows.clone();
            }
            "gbdt.tree_sizes" => {
                t.shape = vec![1];
                t.data = vec![5.0];
            }
            _ => {}
        }
    }
    dag.meta.config["gbdt"]["n_trees"] = 1.into();
    let e = load_err(&dag.to_bytes().unwrap());
    assert!(e.contains("two parents"), "{e}");

    // n_features is what explanations allocate by: it must match the columns.
    let mut wide = base.clone();
    wide.meta.config["gbdt"]["n_features"] = (1u64 << 50).into();
    let e = load_err(&wide.to_bytes().unwrap());
    assert!(e.contains("features"), "{e}");
}

#[test]
fn model_files_are_read_capped_and_regular_only() {
    let bytes = lstm_bytes();
    let path = scratch("m.mallard");
    std::fs::write(&path, &bytes).unwrap();
    assert!(load_with(&path, &Caps::default()).is_ok());
    let tiny = Caps {
        max_model_bytes: 100,
        ..Caps::default()
    };
    let e = load_with(&path, &tiny).err().unwrap().to_string();
    assert!(e.contains(&format!("{} bytes", bytes.len())), "{e}");
    assert!(load_bytes_with(&bytes, &tiny).is_err());

    #[cfg(unix)]
    {
        let t = std::time::Instant::now();
        let e = mallard_model::load(std::path::Path::new("/dev/zero"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("character device"), "{e}");
        assert!(t.elapsed().as_secs() < 5);
    }
}

/// Found by the model_file fuzz target: a positive class index past the labels panicked
/// when explaining (sequence and table models alike).
#[test]
fn positive_class_past_the_labels_is_refused() {
    let rnn = ModelFile::from_bytes(&lstm_bytes()).unwrap();
    for mut f in [rnn, gbdt_file()] {
        let n = f.meta.labels.len();
        f.meta.positive = Some(n);
        let e = load_err(&f.to_bytes().unwrap());
        assert!(e.contains("positive class"), "{e}");
        f.meta.positive = Some(n - 1);
        assert!(load_bytes(&f.to_bytes().unwrap()).is_ok());
        f.meta.threshold = f32::NAN;
        assert!(load_bytes(&f.to_bytes().unwrap()).is_err());
    }
}

/// The fuzz target's crash inputs (positive = 2 of 2 labels in a gbdt and an lstm file).
#[test]
fn fuzz_crash_inputs_are_errors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(e.unwrap().path()).unwrap();
        let e = load_err(&bytes);
        assert!(e.contains("positive class"), "{e}");
        n += 1;
    }
    assert!(n >= 2);
}

/// MLP occlusion runs in batches of rows; with more columns than one batch the reasons
/// must still be exactly "score minus score with that column set to its training mean".
#[test]
fn mlp_occlusion_in_batches_matches_one_by_one() {
    let cols = 300;
    let csv = scratch("wide.csv");
    let mut text: Vec<String> = (0..cols).map(|j| format!("c{j}")).collect();
    text.push("label".into());
    let mut out = text.join(",") + "\n";
    let mut x = 7u64;
    for i in 0..40 {
        let mut row = Vec::new();
        for _ in 0..cols {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            row.push(format!("{:.3}", (x >> 40) as f32 / (1u64 << 24) as f32));
        }
        row.push(if i % 2 == 0 { "malicious" } else { "benign" }.into());
        out += &(row.join(",") + "\n");
    }
    std::fs::write(&csv, out).unwrap();
    let opts = mallard_model::tables::CsvOptions {
        label_column: Some("label".into()),
        ..Default::default()
    };
    let table = mallard_model::tables::read_csv(&csv, &opts).unwrap();
    let params = mallard_model::MlpParams {
        max_epochs: 2,
        ..Default::default()
    };
    let m = TableModel::train(&table, &TableLearner::Dnn(params), None).unwrap();
    let file = m.to_file().unwrap();
    let means = file.tensor("table.means").unwrap().data.clone();
    assert_eq!(means.len(), cols);
    let row = table.row(0).to_vec();
    let pos = m.meta().positive.unwrap();
    let p = m.predict_proba(&[Input::Features(&row)]).unwrap()[pos];
    let reasons = m.explain(&Input::Features(&row), cols).unwrap();
    assert!(!reasons.is_empty());
    for r in &reasons {
        let j: usize = r.name.trim_start_matches('c').parse().unwrap();
        let mut occluded = row.clone();
        occluded[j] = means[j];
        let q = m.predict_proba(&[Input::Features(&occluded)]).unwrap()[pos];
        assert!(
            (r.weight - (p - q)).abs() < 1e-6,
            "{}: {} vs {}",
            r.name,
            r.weight,
            p - q
        );
    }
}
