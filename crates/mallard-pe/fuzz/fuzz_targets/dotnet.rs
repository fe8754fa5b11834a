#![no_main]
//! The dotnet feature set (CLR metadata) on arbitrary bytes: no panic; a vector has the documented length.
use libfuzzer_sys::fuzz_target;
use mallard_pefeatures::{extract, FeatureSet};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = extract(FeatureSet::Dotnet, data) {
        assert_eq!(v.len(), FeatureSet::Dotnet.dim());
    }
});
