//! Hostile input: truncated and mutated reports must give errors or reports, never panics.

use mallard_apiseq::{read_report_from, ReadError, ReportOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(bytes: Vec<u8>) -> Result<mallard_apiseq::Report, ReadError> {
    read_report_from(
        std::io::Cursor::new(bytes),
        Path::new("fuzz.json"),
        &ReportOptions::default(),
    )
}

fn plain_reports() -> Vec<Vec<u8>> {
    let mut cape = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(data("cape_small.json.gz")).unwrap())
        .read_to_end(&mut cape)
        .unwrap();
    vec![
        std::fs::read(data("cuckoo2_small.json")).unwrap(),
        std::fs::read(data("cuckoo1_small.json")).unwrap(),
        std::fs::read(data("apistats_only.json")).unwrap(),
        std::fs::read(data("odd_types.json")).unwrap(),
        cape,
    ]
}

#[test]
fn every_truncation_is_an_error_or_a_report() {
    for full in plain_reports() {
        let n = full.len();
        for cut in 0..n {
            let r = read(full[..cut].to_vec());
            // The only complete JSON prefixes end after the closing brace (plus whitespace).
            let rest_is_space = full[cut..].iter().all(u8::is_ascii_whitespace);
            if !rest_is_space {
                assert!(r.is_err(), "prefix of {cut} bytes was accepted");
            }
        }
        assert!(read(full).is_ok());
    }
}

#[test]
fn byte_mutations_never_panic() {
    const SUBST: &[u8] = b"\"{}[],:0-9ex\\ \n\xff\x00";
    let mut ok = 0;
    let mut err = 0;
    for full in plain_reports() {
        for pos in 0..full.len() {
            for &b in SUBST {
                if full[pos] == b {
                    continue;
                }
                let mut m = full.clone();
                m[pos] = b;
                match read(m) {
                    Ok(r) => {
                        let _ = r.sequence();
                        ok += 1;
                    }
                    Err(e) => {
                        assert!(!e.to_string().contains('\n'), "multi-line message: {e}");
                        err += 1;
                    }
                }
            }
        }
    }
    // Both outcomes occur: mutations inside strings are harmless, structural ones are not.
    assert!(ok > 1000 && err > 1000, "ok {ok} err {err}");
}

#[test]
fn truncated_and_corrupt_gzip_are_errors() {
    let gz = std::fs::read(data("cape_small.json.gz")).unwrap();
    for cut in 2..gz.len() - 8 {
        assert!(
            read(gz[..cut].to_vec()).is_err(),
            "gzip cut at {cut} accepted"
        );
    }
    let mut bad = gz.clone();
    for b in bad.iter_mut().skip(20).take(40) {
        *b ^= 0x5a;
    }
    assert!(read(bad).is_err());
    // Just the magic bytes.
    assert!(read(vec![0x1f, 0x8b]).is_err());
}

#[test]
fn deep_nesting_and_odd_top_levels() {
    let depth = 100_000;
    let nest = |open: u8, close: u8| -> Vec<u8> {
        let mut v: Vec<u8> = std::iter::repeat_n(open, depth).collect();
        v.extend(std::iter::repeat_n(close, depth));
        v
    };
    // Skipped values are skipped without recursion: deep but well-formed is fine.
    let mut deep = b"{\"behavior\": {\"processes\": [{\"pid\": 1, \"calls\": [{\"api\": \"A\", \"arguments\": ".to_vec();
    deep.extend(nest(b'[', b']'));
    deep.extend(b"}]}]}}");
    assert_eq!(
        read(deep.clone()).unwrap().sequence(),
        vec!["A".to_string()]
    );
    // ... and unbalanced is an error.
    let mut unbalanced = deep.clone();
    let mid = unbalanced.len() - 7 - depth / 2;
    unbalanced[mid] = b'}';
    assert!(matches!(
        read(unbalanced).unwrap_err(),
        ReadError::Json { .. }
    ));
    // Values we descend into stop at serde_json's recursion limit instead of the stack's.
    let mut deep = b"{\"detections\": ".to_vec();
    deep.extend(nest(b'[', b']'));
    deep.extend(b", \"behavior\": {}}");
    let e = read(deep).unwrap_err();
    assert!(matches!(e, ReadError::Json { .. }), "{e}");
    assert!(e.to_string().contains("recursion limit"), "{e}");

    for top in ["[]", "5", "\"x\"", "null", ""] {
        assert!(read(top.as_bytes().to_vec()).is_err(), "{top:?} accepted");
    }
    // Trailing garbage after the report.
    let mut two = std::fs::read(data("cuckoo2_small.json")).unwrap();
    two.extend(b" {}");
    assert!(matches!(read(two).unwrap_err(), ReadError::Json { .. }));
}

#[test]
fn huge_repeated_count_is_capped() {
    let json = br#"{"behavior": {"processes": [{"process_id": 1, "calls": [
        {"api": "A", "timestamp": "2020-01-01 00:00:00,000", "repeated": 18446744073709551615}]}]}}"#;
    let opts = ReportOptions {
        expand_repeated: true,
        max_calls: 1000,
        ..ReportOptions::default()
    };
    let r = read_report_from(
        std::io::Cursor::new(json.to_vec()),
        Path::new("big.json"),
        &opts,
    )
    .unwrap();
    assert_eq!(r.call_count(), 1000);
    assert!(r.warnings.iter().any(|w| w.contains("kept the first 1000")));

    let stats =
        br#"{"behavior": {"processes": [], "apistats": {"1": {"A": 99999999999999, "B": 1}}}}"#;
    let r = read_report_from(
        std::io::Cursor::new(stats.to_vec()),
        Path::new("s.json"),
        &opts,
    )
    .unwrap();
    assert_eq!(r.call_count(), 1000);
    let mut buf = Vec::new();
    write!(
        buf,
        "{}",
        r.process_apis(0).iter().filter(|a| **a == "B").count()
    )
    .unwrap();
    assert_eq!(buf, b"0");
}
