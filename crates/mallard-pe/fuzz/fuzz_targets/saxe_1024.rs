#![no_main]
//! The saxe_1024 feature set on arbitrary bytes: no panic; a vector has the documented length.
use libfuzzer_sys::fuzz_target;
use mallard_pefeatures::{extract, FeatureSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = extract(FeatureSet::Saxe1024, data) {
        assert_eq!(v.len(), FeatureSet::Saxe1024.dim());
    }
});
