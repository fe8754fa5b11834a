#![no_main]
//! The ember_v3 feature set on arbitrary bytes: no panic; a vector has the documented length,
//! and the raw object it came from vectorizes to the same bits.
use libfuzzer_sys::fuzz_target;
use mallard_pefeatures::ember3::{raw_features, vectorize};
use mallard_pefeatures::{extract, FeatureSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = extract(FeatureSet::EmberV3, data) {
        assert_eq!(v.len(), FeatureSet::EmberV3.dim());
        let raw = raw_features(data).expect("extract succeeded");
        let text = raw.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).expect("own JSON");
        let w = vectorize(&back).expect("own raw object");
        assert!(v.iter().zip(&w).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
