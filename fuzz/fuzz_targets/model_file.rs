//! Any bytes as a model file: an error or a model, never a panic, hang or huge
//! allocation; a model that loads must also score a small input without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mallard_model::{load_bytes, Input, InputKind};

fuzz_target!(|data: &[u8]| {
    let Ok(model) = load_bytes(data) else { return };
    let meta = model.meta();
    let apis: Vec<String> = ["NtClose", "LdrLoadDll", "NtClose", "RegOpenKeyExW"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let features = vec![0.5f32; meta.feature_names.len()];
    let input = match meta.input {
        InputKind::ApiSequence => Input::Apis(&apis),
        InputKind::Features => Input::Features(&features),
    };
    if let Ok(p) = model.predict_proba(&[input]) {
        assert_eq!(p.len(), meta.labels.len());
    }
    let _ = model.explain(&input, 3);
    let _ = model.known_apis(&apis);
});
