//! MalBehavD, Mal-API, JSONL and read_dataset on small hand-written files.

use mallard_apiseq::{
    read_dataset, read_jsonl, read_malapi, read_malapi_dir, read_malbehavd, write_jsonl,
    DatasetOptions, Format, MalApiReader, ReadError, Sample,
};
use std::io::Write;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn v(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

/// A fresh scratch folder per test, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(tag: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("mallard-apiseq-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn gzip_to(src: &Path, dst: &Path) {
    let bytes = std::fs::read(src).unwrap();
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(dst).unwrap(),
        flate2::Compression::fast(),
    );
    enc.write_all(&bytes).unwrap();
    enc.finish().unwrap();
}

#[test]
fn malbehavd_rows_labels_and_trailing_cells() {
    let s = read_malbehavd(&data("malbehavd_small.csv")).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].id, "a".repeat(64));
    assert_eq!(s[0].sha256.as_deref(), Some(&"a".repeat(64)[..]));
    assert_eq!(s[0].label.as_deref(), Some("malicious"));
    assert_eq!(s[0].apis, v(&["LdrLoadDll", "NtClose", "__exception__"]));
    // Wider than the header, label 0, upper-case hash normalised in sha256 but not in id.
    assert_eq!(s[1].label.as_deref(), Some("benign"));
    assert_eq!(
        s[1].apis,
        v(&[
            "NtOpenFile",
            "DnsQuery_A",
            "IWbemServices_ExecQuery",
            "RegCloseKey",
            "NtClose"
        ])
    );
    assert_eq!(s[1].id, "B".repeat(64));
    assert_eq!(s[1].sha256.as_deref(), Some(&"b".repeat(64)[..]));
    assert_eq!(
        (s[2].label.as_deref(), s[2].apis.clone()),
        (Some("malicious"), v(&["NtClose"]))
    );
}

#[test]
fn malbehavd_bad_rows_name_the_line() {
    let dir = scratch("mbd");
    let p = dir.join("bad.csv");
    std::fs::write(&p, "sha256,labels,0\r\nabc,1,A\r\nabd,2,B\r\n").unwrap();
    let e = read_malbehavd(&p).unwrap_err();
    assert!(matches!(e, ReadError::Line { line: 3, .. }), "{e}");
    assert!(
        e.to_string().contains("label \"2\" is neither 0 nor 1"),
        "{e}"
    );
    std::fs::write(&p, "sha256,labels,0\r\nabc,1,A,,B\r\n").unwrap();
    let e = read_malbehavd(&p).unwrap_err();
    assert!(
        e.to_string().contains("line 2: empty cell in column 4"),
        "{e}"
    );
    std::fs::write(&p, "hash,label\nabc,1,A\n").unwrap();
    assert!(matches!(
        read_malbehavd(&p).unwrap_err(),
        ReadError::Line { line: 1, .. }
    ));
    // gzip works too, found by magic bytes.
    let gz = dir.join("small.csv");
    gzip_to(&data("malbehavd_small.csv"), &gz);
    assert_eq!(
        read_malbehavd(&gz).unwrap(),
        read_malbehavd(&data("malbehavd_small.csv")).unwrap()
    );
}

#[test]
fn malapi_ids_labels_and_truncation() {
    let d = data("malapi");
    let s = read_malapi(
        &d.join("tiny_calls.txt"),
        &d.join("ApiIndex.txt"),
        &d.join("tiny_types.txt"),
        None,
    )
    .unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].id, "tiny_calls.txt:1");
    assert_eq!(s[0].label.as_deref(), Some("Trojan"));
    assert_eq!(
        s[0].apis,
        v(&["ldrloaddll", "ntclose", "ntclose", "ntopenfile"])
    );
    assert_eq!(
        (s[1].label.as_deref(), s[1].apis.clone()),
        (Some("Worms"), v(&["ntopenfile"]))
    );
    assert_eq!(
        s[2].apis,
        v(&[
            "ntclose",
            "ldrloaddll",
            "ntopenfile",
            "ntopenfile",
            "ntopenfile",
            "ntclose"
        ])
    );

    let t = read_malapi_dir(&d, Some(2)).unwrap();
    assert_eq!(
        t.iter().map(|s| s.apis.len()).collect::<Vec<_>>(),
        vec![2, 1, 2]
    );
    assert_eq!(t[2].apis, v(&["ntclose", "ldrloaddll"]));

    // gzip calls file in a folder.
    let dir = scratch("malapi-gz");
    gzip_to(&d.join("tiny_calls.txt"), &dir.join("x_calls.txt.gz"));
    std::fs::copy(d.join("tiny_types.txt"), dir.join("x_types.txt")).unwrap();
    std::fs::copy(d.join("ApiIndex.txt"), dir.join("ApiIndex.txt")).unwrap();
    let g = read_malapi_dir(&dir, None).unwrap();
    assert_eq!(
        g.iter().map(|s| &s.apis).collect::<Vec<_>>(),
        s.iter().map(|s| &s.apis).collect::<Vec<_>>()
    );
    assert_eq!(g[0].id, "x_calls.txt.gz:1");
    // read_dataset accepts the folder or the calls file.
    let ds = read_dataset(
        Format::MalApi,
        &dir.join("x_calls.txt.gz"),
        &DatasetOptions::default(),
    )
    .unwrap();
    assert_eq!(ds.samples.len(), 3);
}

#[test]
fn malapi_errors_name_the_line() {
    let d = data("malapi");
    let dir = scratch("malapi-bad");
    let calls = dir.join("b_calls.txt");
    let types = d.join("tiny_types.txt");
    let index = d.join("ApiIndex.txt");
    std::fs::write(&calls, "2,3\n2,5,3\n4\n").unwrap(); // id 5 is not in the index
    let e = read_malapi(&calls, &index, &types, None).unwrap_err();
    assert!(matches!(e, ReadError::Line { line: 2, .. }), "{e}");
    assert!(
        e.to_string().contains("API id 5 is not in the index"),
        "{e}"
    );
    std::fs::write(&calls, "2,3\n2,x\n4\n").unwrap();
    assert!(read_malapi(&calls, &index, &types, None)
        .unwrap_err()
        .to_string()
        .contains("line 2: field 2: \"x\""));
    std::fs::write(&calls, "2,3\n4\n").unwrap(); // fewer samples than labels
    let e = read_malapi(&calls, &index, &types, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("2 samples but the types file has 3 labels"),
        "{e}"
    );
    std::fs::write(&calls, "2\n3\n4\n2\n").unwrap(); // more samples than labels
    assert!(matches!(
        read_malapi(&calls, &index, &types, None).unwrap_err(),
        ReadError::Line { line: 4, .. }
    ));
    std::fs::write(&calls, "2\n\n4\n2\n").unwrap(); // blank line inside
    assert!(matches!(
        read_malapi(&calls, &index, &types, None).unwrap_err(),
        ReadError::Line { line: 2, .. }
    ));
    std::fs::write(&calls, "2\n3\n4\n\n\n").unwrap(); // trailing blank lines are fine
    assert_eq!(read_malapi(&calls, &index, &types, None).unwrap().len(), 3);
    // Streaming reader stops after the first error.
    std::fs::write(&calls, "2\n9\n4\n").unwrap();
    let items: Vec<_> = MalApiReader::open(&calls, &index, &types, None)
        .unwrap()
        .collect();
    assert_eq!(items.len(), 2);
    assert!(items[0].is_ok() && items[1].is_err());
    // Index problems.
    let bad_index = dir.join("ApiIndex.txt");
    std::fs::write(&bad_index, "a=1\nb=1\n").unwrap();
    assert!(read_malapi(&calls, &bad_index, &types, None)
        .unwrap_err()
        .to_string()
        .contains("line 2: id 1 is given twice"));
    std::fs::write(&bad_index, "a=99999999999\n").unwrap();
    assert!(matches!(
        read_malapi(&calls, &bad_index, &types, None).unwrap_err(),
        ReadError::Line { line: 1, .. }
    ));
}

#[test]
fn jsonl_read_labels_and_roundtrip() {
    let s = read_jsonl(&data("samples.jsonl")).unwrap();
    assert_eq!(s.len(), 4);
    assert_eq!(
        s[0],
        Sample {
            id: "s1".into(),
            label: Some("malicious".into()),
            apis: v(&["NtCreateFile", "NtClose"]),
            sha256: None
        }
    );
    assert_eq!(
        (
            s[1].label.as_deref(),
            s[1].sha256.as_deref(),
            s[1].apis.len()
        ),
        (Some("benign"), Some("ab"), 0)
    );
    assert_eq!(s[2].label, None);
    assert_eq!(s[3].label.as_deref(), Some("7"));

    let dir = scratch("jsonl");
    let p = dir.join("out.jsonl");
    write_jsonl(std::fs::File::create(&p).unwrap(), &s).unwrap();
    assert_eq!(read_jsonl(&p).unwrap(), s);
    let text = std::fs::read_to_string(&p).unwrap();
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.starts_with(
            "{\"id\":\"s1\",\"label\":\"malicious\",\"apis\":[\"NtCreateFile\",\"NtClose\"]}\n"
        ),
        "{text}"
    );

    std::fs::write(
        &p,
        "{\"id\":\"a\",\"apis\":[]}\n\n{\"id\":\"b\",\"apis\":\"x\"}\n",
    )
    .unwrap();
    let e = read_jsonl(&p).unwrap_err();
    assert!(matches!(e, ReadError::Line { line: 3, .. }), "{e}");
    std::fs::write(&p, "{\"apis\":[]}\n").unwrap();
    assert!(read_jsonl(&p)
        .unwrap_err()
        .to_string()
        .contains("missing field `id`"));
}

#[test]
fn format_names() {
    for f in Format::ALL {
        assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
    }
    assert_eq!("MalBehavD".parse::<Format>().unwrap(), Format::MalBehavD);
    assert_eq!(" cape ".parse::<Format>().unwrap(), Format::Cape);
    let e = "csv".parse::<Format>().unwrap_err();
    assert!(e.to_string().contains("unknown dataset format 'csv'"));
}

#[test]
fn report_folder_labels_ids_and_per_file_errors() {
    let root = scratch("reports");
    std::fs::create_dir_all(root.join("malware/deep")).unwrap();
    std::fs::create_dir_all(root.join("benign")).unwrap();
    std::fs::copy(data("cuckoo2_small.json"), root.join("malware/r1.json")).unwrap();
    std::fs::copy(
        data("cape_small.json.gz"),
        root.join("malware/deep/r2.JSON.gz"),
    )
    .unwrap();
    std::fs::copy(data("cuckoo1_small.json"), root.join("benign/r3.json")).unwrap();
    std::fs::copy(data("apistats_only.json"), root.join("top.json")).unwrap();
    std::fs::copy(data("truncated.json"), root.join("benign/broken.json")).unwrap();
    std::fs::copy(data("no_behavior.json"), root.join("malware/static.json")).unwrap();
    std::fs::write(root.join("benign/notes.txt"), "not a report").unwrap();

    let ds = read_dataset(Format::Cuckoo, &root, &DatasetOptions::default()).unwrap();
    let got: Vec<(&str, Option<&str>, usize)> = ds
        .samples
        .iter()
        .map(|s| (s.id.as_str(), s.label.as_deref(), s.apis.len()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("benign/r3.json", Some("benign"), 6),
            ("malware/deep/r2.JSON.gz", Some("malware"), 6),
            ("malware/r1.json", Some("malware"), 8),
            ("top.json", None, 8),
        ]
    );
    assert_eq!(ds.samples[2].sha256.as_deref(), Some(&"a".repeat(64)[..]));
    let mut errs: Vec<String> = ds
        .errors
        .iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    errs.sort();
    assert_eq!(errs, vec!["broken.json", "static.json"]);
    assert!(ds
        .errors
        .iter()
        .any(|(_, e)| matches!(e, ReadError::NoBehavior { .. })));
    // The CAPE report read as "cuckoo" warns; the apistats one warns; both are prefixed by path.
    assert!(
        ds.warnings
            .iter()
            .any(|w| w.contains("r2.JSON.gz: expected a Cuckoo 2.x report")),
        "{:?}",
        ds.warnings
    );
    assert!(ds
        .warnings
        .iter()
        .any(|w| w.contains("top.json: calls not logged")));

    let opts = DatasetOptions {
        labels_from_dirs: false,
        max_calls: Some(3),
        ..DatasetOptions::default()
    };
    let ds = read_dataset(Format::Cape, &root, &opts).unwrap();
    assert!(ds
        .samples
        .iter()
        .all(|s| s.label.is_none() && s.apis.len() <= 3));
    // A single report path fails as a whole.
    assert!(read_dataset(Format::Cape, &root.join("benign/broken.json"), &opts).is_err());
    let one = read_dataset(Format::Cape, &root.join("malware/r1.json"), &opts).unwrap();
    assert_eq!(
        (one.samples[0].id.as_str(), one.samples[0].apis.len()),
        ("r1.json", 3)
    );
}

#[test]
fn dataset_max_calls_applies_to_csv_and_jsonl() {
    let opts = DatasetOptions {
        max_calls: Some(1),
        ..DatasetOptions::default()
    };
    let ds = read_dataset(Format::MalBehavD, &data("malbehavd_small.csv"), &opts).unwrap();
    assert_eq!(
        ds.samples.iter().map(|s| s.apis.len()).collect::<Vec<_>>(),
        vec![1, 1, 1]
    );
    let ds = read_dataset(Format::Jsonl, &data("samples.jsonl"), &opts).unwrap();
    assert_eq!(
        ds.samples.iter().map(|s| s.apis.len()).collect::<Vec<_>>(),
        vec![1, 0, 1, 1]
    );
}

#[test]
fn per_process_gives_one_sample_per_process_with_calls() {
    let opts = DatasetOptions {
        per_process: true,
        ..DatasetOptions::default()
    };
    let ds = read_dataset(Format::Cuckoo, &data("cuckoo2_small.json"), &opts).unwrap();
    // Processes 100 and 200 have calls; 300 has none and gives no sample.
    let ids: Vec<&str> = ds.samples.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["cuckoo2_small.json#100", "cuckoo2_small.json#200"]);
    assert_eq!(
        ds.samples[0].apis,
        ["NtCreateFile", "NtWriteFile", "NtClose", "LdrLoadDll"]
    );
    assert_eq!(ds.samples[1].apis.len(), 4);
}
