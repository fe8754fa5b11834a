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
