#![no_main]
//! EMBER raw JSON objects from untrusted jsonl: vectorize must not panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(x) = mallard_pefeatures::ember_vectorize(&v) {
            assert_eq!(x.len(), 2381);
        }
    }
    // Raw objects we produce must always vectorize.
    if let Ok(raw) = mallard_pefeatures::ember_raw(data) {
        assert!(mallard_pefeatures::ember_vectorize(&raw).is_ok());
    }
});
