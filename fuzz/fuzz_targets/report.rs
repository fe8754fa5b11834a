//! Any bytes, plain and gzip-compressed, through the sandbox report reader: no panic, no
//! hang, bounded memory, and the plain and gzip readings agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mallard_apiseq::{read_report_from, ReportOptions};
use std::io::Write;
use std::path::Path;

fn opts() -> ReportOptions {
    ReportOptions {
        // Small caps so that the fuzzer reaches them.
        max_calls: 10_000,
        max_bytes: 16 << 20,
        max_string_bytes: 64,
        ..ReportOptions::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let opts = opts();
    let plain = read_report_from(std::io::Cursor::new(data.to_vec()), Path::new("f.json"), &opts);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    let gz = e.finish().unwrap();
    let zipped = read_report_from(std::io::Cursor::new(gz), Path::new("f.json.gz"), &opts);
    if let Ok(r) = &plain {
        let seq = r.sequence();
        assert_eq!(seq.len(), r.call_count());
        assert!(seq.len() <= opts.max_calls);
        assert!(r.distinct_apis().len() <= r.api_names().len());
        assert!(r.api_names().iter().all(|n| n.len() <= opts.max_string_bytes));
    }
    // Input that is itself gzip is read differently in the two paths.
    if !data.starts_with(&[0x1f, 0x8b]) {
        match (&plain, &zipped) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.sequence(), b.sequence());
                assert_eq!(a.warnings, b.warnings);
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("plain {:?} but gzip {:?}", a.as_ref().err(), b.as_ref().err()),
        }
    }
});
