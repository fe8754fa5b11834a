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
fn version_two_keeps_the_meta_in_a_tensor_and_version_one_still_reads() {
    let f = sample();
    let bytes = f.to_bytes().unwrap();
    // Version 2: the header metadata names the format only; the meta is a U8 tensor.
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let info = header.metadata().as_ref().unwrap();
    assert_eq!(info.get("format_version").map(String::as_str), Some("2"));
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
    // Writing the version-1 model again gives version 2, byte for byte as written first.
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
