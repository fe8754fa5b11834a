use mallard_tables::*;
use std::path::{Path, PathBuf};

fn tmp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mallard-tables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn shared() -> PathBuf {
    std::env::var_os("MALLARD_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn opts() -> CsvOptions {
    CsvOptions {
        label_column: Some("y".into()),
        drop_empty_columns: true,
        ..Default::default()
    }
}

#[test]
fn fits_encodings_and_reapplies_them() {
    let train = tmp(
        "train.csv",
        "a,empty,kind,y\n1.5,,upx,1\n,,NoPacker,0\n3,,aspack,1\n4,,upx,0\n",
    );
    let t = read_csv(&train, &opts()).unwrap();
    assert_eq!(t.columns, vec!["a", "kind"]);
    assert_eq!(t.n_rows(), 4);
    // sorted byte-wise: "NoPacker" < "aspack" < "upx"
    assert_eq!(
        t.schema.columns[1].categories.as_deref(),
        Some(&["NoPacker".to_string(), "aspack".into(), "upx".into()][..])
    );
    assert_eq!(t.row(0), &[1.5, 2.0]);
    assert!(t.row(1)[0].is_nan());
    assert_eq!(t.row(1)[1], 0.0);
    assert_eq!(t.row(2), &[3.0, 1.0]);
    assert_eq!(t.labels.to_vec(), ["1", "0", "1", "0"]);

    // schema survives JSON and is applied by name; unseen category -> -1, extra column ignored
    let json = serde_json::to_string(&t.schema).unwrap();
    let schema: TableSchema = serde_json::from_str(&json).unwrap();
    assert_eq!(schema, t.schema);
    let test = tmp(
        "test.csv",
        "y,kind,extra,a,empty\n0,petite,zz,7,\n1,upx,zz,,\n",
    );
    let u = read_csv_with_schema(&test, &opts(), &schema).unwrap();
    assert_eq!(u.columns, vec!["a", "kind"]);
    assert_eq!(u.row(0), &[7.0, -1.0]);
    assert!(u.row(1)[0].is_nan());
    assert_eq!(u.row(1)[1], 2.0);
}

#[test]
fn malformed_cells_name_file_line_and_column() {
    let train = tmp("t2.csv", "a,b,y\n1,2,0\n3,4,1\n");
    let t = read_csv(&train, &opts()).unwrap();
    let bad = tmp("bad.csv", "a,b,y\n1,2,0\n\n3,4x,1\n");
    let e = read_csv_with_schema(&bad, &opts(), &t.schema)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.csv:4") && e.contains("\"b\"") && e.contains("4x"),
        "{e}"
    );

    let short = tmp("short.csv", "a,b,y\n1,2,0\n3,1\n");
    let e = read_csv(&short, &opts()).unwrap_err().to_string();
    assert!(e.contains("short.csv:3"), "{e}");

    let missing = tmp("missing.csv", "a,y\n1,0\n");
    let e = read_csv_with_schema(&missing, &opts(), &t.schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"b\""), "{e}");

    let nolabel = tmp("nolabel.csv", "a,y\n1,\n");
    let e = read_csv(&nolabel, &opts()).unwrap_err().to_string();
    assert!(
        e.contains("nolabel.csv:2") && e.contains("empty label"),
        "{e}"
    );
}

#[test]
fn joins_a_labels_file_on_the_id() {
    let x = tmp("x.csv", "Id,f1,f2\nb,1,2\na,3,4\nc,5,6\n");
    let y = tmp("y.csv", "Id,Class\na,9\nb,10\nc,2\n");
    let o = CsvOptions {
        label_column: Some("Class".into()),
        id_column: Some("Id".into()),
        labels_file: Some(y.clone()),
        ..Default::default()
    };
    let t = read_csv(&x, &o).unwrap();
    assert_eq!(t.columns, vec!["f1", "f2"]);
    assert_eq!(t.labels.to_vec(), ["10", "9", "2"]);
    assert_eq!(t.ids.as_deref().unwrap(), &["b", "a", "c"]);
    // numeric labels sort as numbers
    assert_eq!(t.classes(), vec!["2", "9", "10"]);
    assert_eq!(t.label_indices(&t.classes()).unwrap(), vec![2, 1, 0]);
    let sub = t.select_rows(&[2, 0]);
    assert_eq!(sub.values, vec![5.0, 6.0, 1.0, 2.0]);
    assert_eq!(sub.labels.to_vec(), ["2", "10"]);

    let x2 = tmp("x2.csv", "Id,f1\nb,1\nzz,3\n");
    let e = read_csv(&x2, &o).unwrap_err().to_string();
    assert!(e.contains("x2.csv:3") && e.contains("zz"), "{e}");
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn clamp_and_big2015_shapes() {
    let d = shared().join("data/pe-header/clamp");
    let raw = clamp(&d.join("raw-train.csv")).unwrap();
    assert_eq!((raw.n_rows(), raw.n_cols()), (3648, 53));
    assert!(!raw.columns.iter().any(|c| c == "e_res" || c == "e_res2"));
    assert_eq!(raw.labels.iter().filter(|l| *l == "1").count(), 1658);
    assert_eq!(raw.classes(), vec!["0", "1"]);
    let raw_test = clamp_with_schema(&d.join("raw-test.csv"), &raw.schema).unwrap();
    assert_eq!((raw_test.n_rows(), raw_test.n_cols()), (912, 53));

    let int = clamp(&d.join("integrated-train.csv")).unwrap();
    assert_eq!((int.n_rows(), int.n_cols()), (4165, 69));
    let pt = int.columns.iter().position(|c| c == "packer_type").unwrap();
    let cats = int.schema.columns[pt].categories.as_ref().unwrap();
    assert!(cats.windows(2).all(|w| w[0] < w[1]));
    assert!(cats.iter().any(|c| c == "NoPacker"));
    let int_test = clamp_with_schema(&d.join("integrated-test.csv"), &int.schema).unwrap();
    assert_eq!(int_test.n_rows(), 1042);

    let big = big2015(&shared().join("data/big2015")).unwrap();
    assert_eq!((big.n_rows(), big.n_cols()), (10868, 34));
    assert_eq!(
        big.classes(),
        (1..=9).map(|c| c.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(big.labels.iter().filter(|l| *l == "5").count(), 42);
    assert!(big.values.iter().all(|v| v.is_finite()));
}

#[test]
fn a_cell_over_the_cap_names_file_line_and_column_even_a_label() {
    let big = "7".repeat(100);
    let p = tmp("bigcell.csv", &format!("a,b,y\n1,2,0\n3,{big},1\n"));
    let mut o = opts();
    o.max_cell_bytes = 64;
    let e = read_csv(&p, &o).unwrap_err().to_string();
    assert!(e.contains("bigcell.csv:3") && e.contains("\"b\""), "{e}");
    assert!(e.contains("longer than 64 bytes"), "{e}");
    let p = tmp("biglabel.csv", &format!("a,b,y\n1,2,{big}\n"));
    let e = read_csv(&p, &o).unwrap_err().to_string();
    assert!(e.contains("biglabel.csv:2") && e.contains("\"y\""), "{e}");
    // At the cap is fine.
    o.max_cell_bytes = 100;
    assert_eq!(read_csv(&p, &o).unwrap().labels.to_vec(), vec![big]);
}

#[test]
fn a_table_over_the_size_cap_is_refused_with_its_real_size() {
    let p = tmp("sized.csv", "a,y\n1,0\n2,1\n");
    let n = std::fs::metadata(&p).unwrap().len();
    let mut o = opts();
    o.max_table_bytes = n - 1;
    let e = read_csv(&p, &o).unwrap_err().to_string();
    assert!(
        e.contains(&format!("{n} bytes")) && e.contains("sized.csv"),
        "{e}"
    );
    o.max_table_bytes = n;
    assert_eq!(read_csv(&p, &o).unwrap().n_rows(), 2);
}

#[cfg(target_os = "linux")]
#[test]
fn a_fifo_is_refused_without_hanging() {
    let d = std::env::temp_dir().join(format!("tables-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let f = d.join("t.csv");
    let ok = std::process::Command::new("mkfifo").arg(&f).status();
    assert!(
        ok.map(|s| s.success()).unwrap_or(false),
        "mkfifo unavailable"
    );
    let e = read_csv(&f, &opts()).unwrap_err().to_string();
    assert!(e.contains("FIFO") && e.contains("t.csv"), "{e}");
}

#[test]
fn streamed_reading_matches_a_direct_encoding_of_many_rows() {
    // Rows long enough to straddle the reader's buffer many times, a text column whose
    // categories appear late, and CRLF line ends; the truth is computed here directly.
    let mut text = String::from("id,x,kind,y\r\n");
    let kinds = ["zeta", "alpha", "mid"];
    for i in 0..20_000 {
        let kind = if i < 15_000 { "alpha" } else { kinds[i % 3] };
        text.push_str(&format!("r{i},{}.5,{kind},{}\r\n", i % 97, i % 2));
    }
    let p = tmp("many.csv", &text);
    let mut o = opts();
    o.id_column = Some("id".into());
    let t = read_csv(&p, &o).unwrap();
    assert_eq!(t.n_rows(), 20_000);
    assert_eq!(t.columns, vec!["x", "kind"]);
    let cats = vec!["alpha".to_string(), "mid".into(), "zeta".into()];
    assert_eq!(t.schema.columns[1].categories.as_ref(), Some(&cats));
    for i in [0usize, 14_999, 15_000, 15_001, 19_999] {
        let kind = if i < 15_000 { "alpha" } else { kinds[i % 3] };
        let code = cats.iter().position(|c| c == kind).unwrap() as f32;
        assert_eq!(t.row(i), &[(i % 97) as f32 + 0.5, code], "row {i}");
        assert_eq!(t.labels[i], (i % 2).to_string());
        assert_eq!(t.ids.as_ref().unwrap()[i], format!("r{i}"));
    }
}
