use super::*;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mallard-parquet-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Small files that start like PE files (EMBER v2 scores any bytes).
fn inputs(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let p = dir.join(format!("f{i:03}.bin"));
            let mut b = b"MZ".to_vec();
            b.extend((0..500 + 37 * i).map(|k| ((k * 31 + i * 7) % 251) as u8));
            std::fs::write(&p, b).expect("write input");
            p
        })
        .collect()
}

fn expected(p: &Path) -> Vec<f32> {
    let b = std::fs::read(p).expect("read input");
    mallard_pefeatures::extract(FeatureSet::EmberV2, &b).expect("features")
}

#[test]
fn rows_round_trip_through_a_file_with_nulls_and_metadata() {
    let d = tmp("roundtrip");
    let set = FeatureSet::EmberV2;
    let rows = vec![
        Row {
            path: "a.exe".into(),
            sha256: Some("00ff".into()),
            features: Some((0..set.dim()).map(|i| i as f32 * 0.5).collect()),
            error: None,
        },
        Row {
            path: "b.exe".into(),
            sha256: None,
            features: None,
            error: Some("b.exe: not a PE file".into()),
        },
    ];
    let out = d.join("x.parquet");
    let mut w = writer(&out, &schema(set)).expect("writer");
    w.write(&batch(set, &rows).expect("batch")).expect("write");
    w.close().expect("close");
    let (got_set, got) = read_rows(&out).expect("read");
    assert_eq!(got_set, set);
    assert_eq!(got, rows);
    // The column names travel in the schema's metadata.
    let f = File::open(&out).expect("open");
    let b = ParquetRecordBatchReaderBuilder::try_new(f).expect("builder");
    let names: Vec<String> =
        serde_json::from_str(&b.schema().metadata()[NAMES_KEY]).expect("names json");
    assert_eq!(names, mallard_pefeatures::names(set));
    // A vector of the wrong length is refused, not written.
    let bad = Row {
        features: Some(vec![1.0; 3]),
        ..rows[0].clone()
    };
    assert!(batch(set, &[bad]).is_err());
}

#[test]
fn a_killed_run_resumes_from_its_parts_and_errors_are_retried() {
    let d = tmp("resume");
    let files = inputs(&d, 7);
    let missing = d.join("later.bin");
    let out = d.join("out.parquet");
    let max = 1 << 20;

    // First run: four files and one that does not exist yet, then killed (no finish).
    let mut notes = Vec::new();
    let mut s = ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes)
        .expect("open")
        .with_part_rows(2);
    let mut first = files[..4].to_vec();
    first.push(missing.clone());
    let (errors, _) = s
        .write_all(&first.iter().collect::<Vec<_>>(), max, &mut |_| {})
        .expect("write");
    assert_eq!(errors, 1);
    drop(s);
    assert!(!out.exists(), "no output before a run finishes");
    // Two complete parts of two rows; the fifth row was pending when the run died.
    let parts = sibling(&out, ".parts");
    assert_eq!(std::fs::read_dir(&parts).expect("parts").count(), 2);

    // Second run: the missing file now exists; everything is asked for again.
    std::fs::copy(&files[0], &missing).expect("copy");
    let mut notes = Vec::new();
    let mut s = ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes).expect("reopen");
    assert_eq!(s.done.len(), 4);
    assert!(
        notes.iter().any(|n| n.contains("resuming 2 parts")),
        "{notes:?}"
    );
    let mut all = files.clone();
    all.push(missing.clone());
    let todo: Vec<&PathBuf> = all
        .iter()
        .filter(|p| !s.done.contains(&p.display().to_string()))
        .collect();
    assert_eq!(todo.len(), 4);
    s.write_all(&todo, max, &mut |_| {}).expect("write");
    s.error(&d.join("walk-error"), "cannot read folder")
        .expect("error row");
    assert_eq!(s.finish().expect("finish"), 9);
    assert!(!parts.exists(), "parts removed after the merge");

    let (_, rows) = read_rows(&out).expect("read");
    let paths: Vec<&str> = rows.iter().map(|r| r.path.as_str()).collect();
    let mut want: Vec<String> = all.iter().map(|p| p.display().to_string()).collect();
    want.push(d.join("walk-error").display().to_string());
    assert_eq!(paths, want.iter().map(String::as_str).collect::<Vec<_>>());
    for (r, p) in rows.iter().zip(&all) {
        assert_eq!(r.error, None, "{}", r.path);
        assert_eq!(
            r.features.as_deref(),
            Some(expected(p).as_slice()),
            "{}",
            r.path
        );
        assert_eq!(r.sha256.as_ref().map(String::len), Some(64));
    }
    assert_eq!(rows[8].error.as_deref(), Some("cannot read folder"));

    // A finished output resumes too: nothing left to do, errors retried, rows kept.
    let mut notes = Vec::new();
    let s = ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes).expect("reopen");
    assert_eq!(s.done.len(), 8);
    assert_eq!(s.finish().expect("finish"), 8);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn other_files_and_other_sets_are_refused_unless_forced() {
    let d = tmp("refuse");
    let out = d.join("out.parquet");
    std::fs::write(&out, b"PAR1 not really").expect("write");
    let mut notes = Vec::new();
    let e = ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).expect("kept"), b"PAR1 not really");
    // Forced: started afresh.
    let s = ParquetSink::open(&out, FeatureSet::EmberV2, true, &mut notes).expect("forced");
    assert_eq!(s.finish().expect("finish"), 0);
    assert_eq!(read_rows(&out).expect("read").1.len(), 0);
    // Features of another set are not mixed in.
    let e = ParquetSink::open(&out, FeatureSet::EmberV3, false, &mut notes)
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not ember-v3"), "{e}");
    // A second run on the same output is kept off by the lock.
    let _first = ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes).expect("open");
    assert!(ParquetSink::open(&out, FeatureSet::EmberV2, false, &mut notes).is_err());
    let _ = std::fs::remove_dir_all(&d);
}
