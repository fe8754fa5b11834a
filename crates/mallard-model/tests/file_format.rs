use mallard_model::{InputKind, Meta, ModelError, ModelFile, Tensor};
use std::collections::HashMap;

fn sample() -> ModelFile {
    let mut meta = Meta::new(
        "lstm",
        InputKind::ApiSequence,
        vec!["benign".into(), "malicious".into()],
    );
    meta.threshold = 0.25;
    ModelFile {
        meta,
        tensors: vec![
            Tensor::new("a", vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]),
            Tensor::new("b", vec![1], vec![0.125]),
        ],
        blobs: vec![(
            "names".into(),
            mallard_model::pack_strings(&["NtClose".into(), "".into(), "a b\nc".into()]),
        )],
    }
}

#[test]
fn round_trip_keeps_meta_and_tensors() {
    let f = sample();
    let back = ModelFile::from_bytes(&f.to_bytes().unwrap()).unwrap();
    assert_eq!(back.tensors, f.tensors);
    assert_eq!(
        mallard_model::unpack_strings(back.blob("names").unwrap()).unwrap(),
        ["NtClose", "", "a b\nc"]
    );
    assert!(mallard_model::unpack_strings(&[5, 0, 0, 0, b'a']).is_err());
    assert!(mallard_model::unpack_strings(&[1, 0]).is_err());
    assert_eq!(back.meta.threshold, 0.25);
    assert_eq!(back.meta.positive, Some(1));
    assert_eq!(back.meta.labels, ["benign", "malicious"]);
}

#[test]
fn is_a_plain_safetensors_file() {
    let bytes = sample().to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(st.tensor("b").unwrap().data(), 0.125f32.to_le_bytes());
}

#[test]
fn refuses_foreign_corrupt_and_newer_files() {
    assert!(matches!(
        ModelFile::from_bytes(b"{\"not\": \"a model\"}"),
        Err(ModelError::Foreign(_))
    ));
    assert!(matches!(
        ModelFile::from_bytes(&[]),
        Err(ModelError::Foreign(_))
    ));

    // A safetensors file from elsewhere.
    let data = [0u8; 4];
    let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    let other = safetensors::tensor::serialize([("w", v)], None).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&other),
        Err(ModelError::Foreign(_))
    ));

    // Truncated body.
    let mut bytes = sample().to_bytes().unwrap();
    bytes.truncate(bytes.len() - 3);
    assert!(ModelFile::from_bytes(&bytes).is_err());

    // A newer format version.
    let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    let info = HashMap::from([
        ("format".to_string(), "mallard-model".to_string()),
        ("format_version".to_string(), "99".to_string()),
        ("mallard".to_string(), "{}".to_string()),
    ]);
    let newer = safetensors::tensor::serialize([("w", v)], Some(info)).unwrap();
    let err = ModelFile::from_bytes(&newer).unwrap_err();
    assert!(matches!(err, ModelError::Newer { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("upgrade mallard"));
}

#[test]
fn shape_mismatch_is_an_error_not_a_panic() {
    let mut f = sample();
    f.tensors[0].shape = vec![4, 4];
    assert!(f.to_bytes().is_err());
}

/// A version-1 file, as mallard wrote them before version 2: the `Meta` JSON as the header
/// metadata's `mallard` string.
fn version_one(f: &ModelFile) -> Vec<u8> {
    let views: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = f
        .tensors
        .iter()
        .map(|t| {
            let b = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (t.name.clone(), b, t.shape.clone(), safetensors::Dtype::F32)
        })
        .chain(
            f.blobs
                .iter()
                .map(|(n, b)| (n.clone(), b.clone(), vec![b.len()], safetensors::Dtype::U8)),
        )
        .collect();
    let tensors: Vec<(String, safetensors::tensor::TensorView<'_>)> = views
        .iter()
        .map(|(n, b, s, d)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(*d, s.clone(), b).unwrap(),
            )
        })
        .collect();
    let info = HashMap::from([
        ("format".to_string(), "mallard-model".to_string()),
        ("format_version".to_string(), "1".to_string()),
        (
            "mallard".to_string(),
            serde_json::to_string(&f.meta).unwrap(),
        ),
    ]);
    safetensors::tensor::serialize(tensors, Some(info)).unwrap()
}

#[test]
fn the_meta_lies_in_a_tensor_and_version_one_still_reads() {
    let f = sample();
    let bytes = f.to_bytes().unwrap();
    // Version 2 on: the header metadata names the format only; the meta is a U8 tensor.
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = header.metadata().as_ref().unwrap();
    assert_eq!(info.get("format_version").map(String::as_str), Some("3"));
    assert!(!info.contains_key("mallard"));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(st.tensor(mallard_model::META_TENSOR).unwrap().data()).unwrap();
    assert_eq!(meta["threshold"], 0.25);
    // Not a blob of the model's own.
    let back = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.blobs.len(), 1);
    // Version 1: the same model, read the old way.
    let old = ModelFile::from_bytes(&version_one(&f)).unwrap();
    assert_eq!(old.tensors, f.tensors);
    assert_eq!(old.blobs, f.blobs);
    assert_eq!(
        serde_json::to_string(&old.meta).unwrap(),
        serde_json::to_string(&f.meta).unwrap()
    );
    // Writing the version-1 model again gives version 3, byte for byte as written first.
    assert_eq!(old.to_bytes().unwrap(), bytes);
    // The reserved name is not for a model's own tensors.
    let mut taken = sample();
    taken
        .blobs
        .push((mallard_model::META_TENSOR.into(), vec![1, 2]));
    assert!(taken.to_bytes().is_err());
    // A version-2 file without its meta tensor, or with one that is not text, is corrupt.
    let data = [0u8; 4];
    let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &data).unwrap();
    let info = HashMap::from([
        ("format".to_string(), "mallard-model".to_string()),
        ("format_version".to_string(), "2".to_string()),
    ]);
    let headless = safetensors::tensor::serialize([("w", v)], Some(info.clone())).unwrap();
    assert!(matches!(
        ModelFile::from_bytes(&headless),
        Err(ModelError::Corrupt(_))
    ));
    let bad = [0xffu8, 0xfe];
    let m = safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![2], &bad).unwrap();
    let binary =
        safetensors::tensor::serialize([(mallard_model::META_TENSOR, m)], Some(info)).unwrap();
    let e = ModelFile::from_bytes(&binary).unwrap_err().to_string();
    assert!(e.contains("not UTF-8"), "{e}");
}

/// Version 3 keeps the training summary in a tensor of its own, which a model loaded to
/// score with never reads: the meta tensor says `null`, a full read puts it back, and a
/// file that gives it in both places, or a model that takes the reserved name, is refused.
#[test]
fn the_training_summary_lies_in_a_tensor_of_its_own() {
    let mut f = sample();
    f.meta.training = serde_json::json!({"epochs": [0.5, 0.25], "data": "train.csv"});
    let bytes = f.to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let meta: serde_json::Value =
        serde_json::from_slice(st.tensor(mallard_model::META_TENSOR).unwrap().data()).unwrap();
    assert!(meta["training"].is_null(), "{meta}");
    let training: serde_json::Value =
        serde_json::from_slice(st.tensor(mallard_model::TRAINING_TENSOR).unwrap().data()).unwrap();
    assert_eq!(training, f.meta.training);
    let back = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.meta.training, f.meta.training);
    assert_eq!(back.blobs, f.blobs);
    assert_eq!(back.to_bytes().unwrap(), bytes);
    // No training: no tensor.
    let plain = sample().to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&plain).unwrap();
    assert!(st.tensor(mallard_model::TRAINING_TENSOR).is_err());
    // Given twice: in the meta and in the tensor.
    let mut meta_json = serde_json::to_value(&f.meta).unwrap();
    meta_json["training"] = serde_json::json!({"other": 1});
    let meta_text = serde_json::to_vec(&meta_json).unwrap();
    let training_text = serde_json::to_vec(&f.meta.training).unwrap();
    let info = HashMap::from([
        ("format".to_string(), "mallard-model".to_string()),
        ("format_version".to_string(), "3".to_string()),
    ]);
    let views = [
        (mallard_model::META_TENSOR, &meta_text),
        (mallard_model::TRAINING_TENSOR, &training_text),
    ]
    .map(|(n, d)| {
        (
            n,
            safetensors::tensor::TensorView::new(safetensors::Dtype::U8, vec![d.len()], d).unwrap(),
        )
    });
    let twice = safetensors::tensor::serialize(views, Some(info)).unwrap();
    let e = ModelFile::from_bytes(&twice).unwrap_err().to_string();
    assert!(e.contains("training given both"), "{e}");
    // The name is reserved.
    let mut taken = sample();
    taken
        .blobs
        .push((mallard_model::TRAINING_TENSOR.into(), b"{}".to_vec()));
    assert!(taken.to_bytes().is_err());
}

/// Table models of format version 2 (column means and schema in the JSON) still load, in
/// full and for scoring, and give the same scores and explanations (the net's occlusion
/// reads the means) as the same model written again: version 3 keeps the means as a tensor
/// and an all-numeric schema named as the features as one word, and reads back the schema.
#[test]
fn table_models_keep_their_means_and_schema_across_versions() {
    use mallard_model::{Caps, Input};
    let caps = Caps::default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/model_file");
    for name in ["gbdt-v2", "dnn-v2"] {
        let v2 = std::fs::read(dir.join(format!("{name}.mallard"))).unwrap();
        let old = mallard_model::load_bytes(&v2).unwrap();
        let v3 = old.to_file().unwrap().to_bytes().unwrap();
        let f3 = ModelFile::from_bytes(&v3).unwrap();
        assert_eq!(f3.meta.config["schema"], "numeric", "{name}");
        assert!(f3.meta.config.get("means").is_none(), "{name}");
        let means = f3.tensor("table.means").unwrap();
        let f2 = ModelFile::from_bytes(&v2).unwrap();
        let want: Vec<f32> = serde_json::from_value(f2.meta.config["means"].clone()).unwrap();
        assert_eq!(means.data, want, "{name}");
        assert_eq!(means.shape, [want.len()]);
        // Read back in full, the word is the schema it stands for.
        let full = mallard_model::load_bytes(&v3).unwrap();
        assert_eq!(
            mallard_model::table_schema(full.meta()).unwrap(),
            mallard_model::table_schema(old.meta()).unwrap()
        );
        assert_eq!(full.to_file().unwrap().to_bytes().unwrap(), v3, "{name}");
        let rows = [[0.1f32, 0.9, 3.0], [0.7, 0.2, 1.0], [f32::NAN, 0.5, 2.5]];
        for bytes in [&v2, &v3] {
            let loaded = [
                mallard_model::load_bytes(bytes).unwrap(),
                mallard_model::load_bytes_for_scoring(bytes, &caps).unwrap(),
            ];
            for m in loaded {
                for r in &rows {
                    let x = [Input::Features(r)];
                    assert_eq!(m.predict_proba(&x).unwrap(), old.predict_proba(&x).unwrap());
                    let (a, b) = (m.explain(&x[0], 3).unwrap(), old.explain(&x[0], 3).unwrap());
                    let w = |v: &[mallard_model::Reason]| {
                        v.iter()
                            .map(|r| (r.name.clone(), r.weight))
                            .collect::<Vec<_>>()
                    };
                    assert_eq!(w(&a), w(&b), "{name}");
                }
            }
        }
    }
    // A schema with categories is written whole.
    let mut f = ModelFile::from_bytes(
        &mallard_model::load_bytes(&std::fs::read(dir.join("gbdt-v2.mallard")).unwrap())
            .unwrap()
            .to_file()
            .unwrap()
            .to_bytes()
            .unwrap(),
    )
    .unwrap();
    let mut schema = mallard_model::table_schema(&f.meta).unwrap();
    schema.columns[1].categories = Some(vec!["x".into(), "y".into()]);
    f.meta.config["schema"] = serde_json::to_value(&schema).unwrap();
    let m = mallard_model::load_bytes(&f.to_bytes().unwrap()).unwrap();
    let again = m.to_file().unwrap();
    assert_eq!(mallard_model::table_schema(&again.meta).unwrap(), schema);
    assert!(again.meta.config["schema"].is_object());
}
