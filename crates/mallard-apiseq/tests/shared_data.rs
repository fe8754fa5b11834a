//! Data-backed checks against the figures stated in ../shared/data/*/README.md.
//! Run with `cargo test --release -p mallard-apiseq -- --ignored`.

use mallard_apiseq::{
    read_dataset, read_malbehavd, read_report, DatasetOptions, Flavor, Format, MalApiReader,
    ReadError, ReportOptions, Sample,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn reports_dir() -> PathBuf {
    shared().join("data/sandbox-reports")
}

enum Want {
    /// processes, calls, target name, sha256 prefix (16 hex), family
    Ok(
        usize,
        usize,
        &'static str,
        &'static str,
        Option<&'static str>,
    ),
    NoBehavior,
    NoCalls,
}

/// The README's per-file table.
fn table() -> Vec<(&'static str, Want)> {
    use Want::*;
    vec![
        (
            "cape/capa-testfiles_v2.2_0000a65749f5902c.json.gz",
            Ok(
                17,
                26219,
                "0000A65749F5902C4D82.exe",
                "0000a65749f5902c",
                Some("QakBot"),
            ),
        ),
        (
            "cape/capa-testfiles_v2.2_55dcd38773f4104b.json.gz",
            Ok(1, 116, "fsutil.exe", "1b9b7b9f76fa21b5", None),
        ),
        ("cape/capa-testfiles_v2.2_77c961050aa252d6.json.gz", NoCalls),
        (
            "cape/capa-testfiles_v2.2_d46900384c788634.json.gz",
            Ok(1, 105, "Hello_Amber.exe", "72e718ba706e3cb8", None),
        ),
        (
            "cape/capa-testfiles_v2.4_36d218f384010cce.json.gz",
            Ok(
                15,
                15638,
                "BTDCYCW162NF76XXUBIBYES7",
                "2abe084892da9793",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_41ce492f04accef7.json.gz",
            Ok(
                10,
                2602,
                "GTF1FDUYEHAJ9UG1XX9BNZ6D",
                "3cecc56af0cfbe8b",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_515a6269965ccdf1.json.gz",
            Ok(
                12,
                2933,
                "UCKQFJ38U1H16294536FLX30",
                "0a0098a9224e698e",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_5d61700feabba201.json.gz",
            Ok(
                10,
                37510,
                "GRVLBZ3ETHXEE9PIHM5OC6HZ",
                "d55e397b4fbcaee4",
                Some("CobaltStrikeStager"),
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_5effaf6795932d8b.json.gz",
            Ok(
                10,
                31295,
                "OJU6JIX7G2A1G8J5J0FDOZAS",
                "d55e397b4fbcaee4",
                Some("CobaltStrikeStager"),
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_873275144af88e9b.json.gz",
            Ok(
                17,
                15606,
                "13JC5XTM1Y2PKUFNPC1Q5BQN",
                "5a7885c3750e2ab1",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_8b9aaf4fad227cde.json.gz",
            Ok(
                9,
                4445,
                "6WR9SC4N1Z4FGQG6DGERMI04",
                "12cf7f901e1c593a",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_b1c4aa078880c579.json.gz",
            Ok(
                6,
                2757,
                "1I1OEZEQ6U7SWFEAS960J54E",
                "4c598d1a7829a9ff",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_capesandboxcom_0a0882b8da225406.json.gz",
            Ok(
                13,
                17909,
                "0a0882b8da225406cc8.exe_",
                "aa2316ff30647295",
                Some("SunCrypt"),
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_capesandboxcom_2ebadd04f0ada89c.json.gz",
            NoCalls,
        ),
        (
            "cape/capa-testfiles_v2.4_capesandboxcom_f5c93ac768c8206e.json.gz",
            Ok(
                11,
                67253,
                "f5c93ac768c8206e875.dll_",
                "915a6f525afe5589",
                None,
            ),
        ),
        (
            "cape/capa-testfiles_v2.4_fb7ade52dc5a1d61.json.gz",
            Ok(
                17,
                15225,
                "X96XSUOJQJ5BRK8R3X1M6OT1",
                "b117a5f952a49cde",
                None,
            ),
        ),
        (
            "cuckoo/TFE-Cuckoo_analysis1_pafish_v2.0.7.json",
            Ok(2, 696, "pafish.exe", "2180f4a13add5e34", None),
        ),
        (
            "cuckoo/TFE-Cuckoo_analysis2_pafish_nobehavior_v2.0.7.json",
            NoBehavior,
        ),
        ("cuckoo/cuckoodroid-2.0_analysis13_android.json", NoBehavior),
        ("cuckoo/cuckoodroid-2.0_analysis3_android.json", NoBehavior),
        ("cuckoo/cuckoodroid-2.0_analysis5_android.json", NoBehavior),
        ("cuckoo/cuckoodroid-2.0_analysis6_android.json", NoBehavior),
        (
            "cuckoo/drewboardman-cuckoo_analysis1_v1.2.json",
            Ok(3, 1522, "dboardman3_malware1.exe", "995e37a1fa0d846d", None),
        ),
        (
            "cuckoo/drewboardman-cuckoo_analysis2_v1.2.json",
            Ok(2, 2457, "dboardman3_malware2.vbs", "f74f124fd033ffc9", None),
        ),
    ]
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn sandbox_reports_match_readme_table() {
    let table = table();
    // The table covers every file in the folder.
    let mut on_disk = Vec::new();
    for sub in ["cape", "cuckoo"] {
        for e in std::fs::read_dir(reports_dir().join(sub)).unwrap() {
            on_disk.push(format!(
                "{sub}/{}",
                e.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    on_disk.sort();
    let mut listed: Vec<String> = table.iter().map(|(f, _)| f.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed);

    for (file, want) in table {
        let path = reports_dir().join(file);
        let got = read_report(&path, &ReportOptions::default());
        match want {
            Want::Ok(procs, calls, name, sha16, family) => {
                let r = got.unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(r.processes.len(), procs, "{file}");
                assert_eq!(r.call_count(), calls, "{file}");
                assert_eq!(r.target_name.as_deref(), Some(name), "{file}");
                assert_eq!(r.sha256.as_deref().map(|s| &s[..16]), Some(sha16), "{file}");
                assert_eq!(r.family_hint.as_deref(), family, "{file}");
                let flavor = if file.starts_with("cape/") {
                    Flavor::Cape
                } else if file.contains("v1.2") {
                    Flavor::Cuckoo1
                } else {
                    Flavor::Cuckoo
                };
                assert_eq!(r.flavor, flavor, "{file}");
                assert!(r.warnings.is_empty(), "{file}: {:?}", r.warnings);
                // The merged sequence is a reordering of the per-process calls.
                let seq = r.sequence();
                assert_eq!(seq.len(), calls, "{file}");
                let mut a: HashMap<&str, usize> = HashMap::new();
                for s in &seq {
                    *a.entry(s).or_default() += 1;
                }
                let mut b: HashMap<&str, usize> = HashMap::new();
                for i in 0..r.processes.len() {
                    for s in r.process_apis(i) {
                        *b.entry(s).or_default() += 1;
                    }
                }
                assert_eq!(a, b, "{file}");
            }
            Want::NoBehavior => {
                let e = got.unwrap_err();
                assert!(matches!(e, ReadError::NoBehavior { .. }), "{file}: {e}");
                assert!(e.to_string().contains(
                    "report has no behavior section (static-only or non-Windows analysis?)"
                ));
            }
            Want::NoCalls => {
                let e = got.unwrap_err();
                assert!(matches!(e, ReadError::NoCalls { .. }), "{file}: {e}");
                assert!(e.to_string().ends_with("no API calls recorded"));
            }
        }
    }
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn pafish_apistats_agree_with_calls() {
    // README: TFE-Cuckoo analysis 1 has both calls and apistats; process 1332 made all 696 calls.
    let r = read_report(
        &reports_dir().join("cuckoo/TFE-Cuckoo_analysis1_pafish_v2.0.7.json"),
        &ReportOptions::default(),
    )
    .unwrap();
    let p = r.processes.iter().find(|p| p.pid == 1332).unwrap();
    assert_eq!(p.name.as_deref(), Some("pafish.exe"));
    assert_eq!(p.calls.len(), 696);
    assert_eq!(r.version.as_deref(), Some("2.0.7"));
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn sandbox_reports_as_dataset() {
    let ds = read_dataset(Format::Cape, &reports_dir(), &DatasetOptions::default()).unwrap();
    // 24 files: 17 with calls, 2 with empty processes, 5 without behavior.
    assert_eq!(ds.samples.len(), 17);
    assert_eq!(ds.errors.len(), 7);
    let labels: BTreeMap<String, usize> = ds.samples.iter().fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.label.clone().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(
        labels,
        BTreeMap::from([("cape".to_string(), 14), ("cuckoo".to_string(), 3)])
    );
    let total: usize = ds.samples.iter().map(|s| s.apis.len()).sum();
    assert_eq!(
        total,
        26219
            + 116
            + 105
            + 15638
            + 2602
            + 2933
            + 37510
            + 31295
            + 15606
            + 4445
            + 2757
            + 17909
            + 67253
            + 15225
            + 696
            + 1522
            + 2457
    );
}

fn length_stats(mut lens: Vec<usize>) -> (usize, usize, usize, usize) {
    lens.sort_unstable();
    let n = lens.len();
    let p95 = lens[(0.95 * n as f64).ceil() as usize - 1]; // nearest rank
    (lens[0], lens[(n - 1) / 2], p95, lens[n - 1])
}

/// Mal-API README conventions (not stated there; these reproduce its table): median is the
/// mean of the two middle values, p95 is `sorted[floor(0.95 n) - 1]`.
fn malapi_stats(mut lens: Vec<usize>) -> (usize, f64, usize, usize) {
    lens.sort_unstable();
    let n = lens.len();
    let median = if n.is_multiple_of(2) {
        (lens[n / 2 - 1] + lens[n / 2]) as f64 / 2.0
    } else {
        lens[n / 2] as f64
    };
    let p95 = lens[(0.95 * n as f64).floor() as usize - 1];
    (lens[0], median, p95, lens[n - 1])
}

fn by_label<'a>(s: &'a [Sample], label: &str) -> Vec<&'a Sample> {
    s.iter()
        .filter(|x| x.label.as_deref() == Some(label))
        .collect()
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn malbehavd_counts_match_readme() {
    let dir = shared().join("data/api-sequences/malbehavd-v1");
    let all = read_malbehavd(&dir.join("MalBehavD-V1-dataset.csv")).unwrap();
    assert_eq!(all.len(), 2570);
    assert_eq!(by_label(&all, "benign").len(), 1285);
    assert_eq!(by_label(&all, "malicious").len(), 1285);
    let vocab: HashSet<&str> = all
        .iter()
        .flat_map(|s| s.apis.iter().map(String::as_str))
        .collect();
    assert_eq!(vocab.len(), 291);
    let distinct: HashSet<&Vec<String>> = all.iter().map(|s| &s.apis).collect();
    assert_eq!(distinct.len(), 1601);
    let lens = |v: Vec<&Sample>| v.iter().map(|s| s.apis.len()).collect::<Vec<_>>();
    // min / median / p95 / max
    assert_eq!(
        length_stats(all.iter().map(|s| s.apis.len()).collect()),
        (2, 37, 101, 175)
    );
    assert_eq!(
        length_stats(lens(by_label(&all, "benign"))),
        (4, 39, 110, 153)
    );
    assert_eq!(
        length_stats(lens(by_label(&all, "malicious"))),
        (2, 32, 96, 175)
    );
    let total: usize = all.iter().map(|s| s.apis.len()).sum();
    assert_eq!((total as f64 / 2570.0 * 10.0).round() / 10.0, 43.2);
    assert_eq!(
        all.iter()
            .flat_map(|s| &s.apis)
            .filter(|a| *a == "__exception__")
            .count(),
        440
    );
    // Each API at most once per row.
    assert!(all
        .iter()
        .all(|s| s.apis.iter().collect::<HashSet<_>>().len() == s.apis.len()));

    let train = read_malbehavd(&dir.join("train.csv")).unwrap();
    assert_eq!(
        (
            train.len(),
            by_label(&train, "benign").len(),
            by_label(&train, "malicious").len()
        ),
        (2046, 1024, 1022)
    );
    assert_eq!(
        train.iter().map(|s| &s.apis).collect::<HashSet<_>>().len(),
        1240
    );
    let test = read_malbehavd(&dir.join("test.csv")).unwrap();
    assert_eq!(
        (
            test.len(),
            by_label(&test, "benign").len(),
            by_label(&test, "malicious").len()
        ),
        (512, 256, 256)
    );
    assert_eq!(
        test.iter().map(|s| &s.apis).collect::<HashSet<_>>().len(),
        360
    );
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn malapi_counts_match_readme() {
    let dir = shared().join("data/api-sequences/mal-api-2019");
    let reader = MalApiReader::open(
        &dir.join("100_calls.txt.gz"),
        &dir.join("ApiIndex.txt"),
        &dir.join("100_types.txt"),
        None,
    )
    .unwrap();
    // Stream: keep only lengths and distinct names, not 15 M strings.
    let mut lens: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut all = Vec::new();
    let mut seqs = HashSet::new();
    for s in reader {
        let s = s.unwrap();
        for a in &s.apis {
            if !names.contains(a) {
                names.insert(a.clone());
            }
        }
        all.push(s.apis.len());
        seqs.insert(hash_seq(&s.apis));
        lens.entry(s.label.unwrap()).or_default().push(s.apis.len());
    }
    assert_eq!(all.len(), 808);
    assert_eq!(lens.len(), 8);
    assert!(lens.values().all(|v| v.len() == 101));
    assert_eq!(names.len(), 245);
    assert_eq!(seqs.len(), 786);
    assert_eq!(malapi_stats(all.clone()), (12, 629.0, 57_248, 1_485_396));
    let mean = all.iter().sum::<usize>() as f64 / 808.0;
    assert_eq!(mean.round(), 19_265.0);
    let want = [
        ("Adware", (19, 1068.0, 7_129, 1_450_685)),
        ("Backdoor", (12, 714.0, 11_167, 1_087_633)),
        ("Downloader", (14, 610.0, 2_154, 53_982)),
        ("Dropper", (17, 374.0, 14_967, 194_107)),
        ("Spyware", (22, 545.0, 337_248, 1_485_396)),
        ("Trojan", (12, 701.0, 13_425, 172_138)),
        ("Virus", (13, 523.0, 103_869, 521_401)),
        ("Worms", (32, 590.0, 98_451, 626_085)),
    ];
    for (family, stats) in want {
        assert_eq!(malapi_stats(lens[family].clone()), stats, "{family}");
    }

    // The dataset entry point with a per-sample cap.
    let opts = DatasetOptions {
        max_calls: Some(200),
        ..DatasetOptions::default()
    };
    let ds = read_dataset(Format::MalApi, &dir, &opts).unwrap();
    assert_eq!(ds.samples.len(), 808);
    assert_eq!(ds.samples.iter().map(|s| s.apis.len()).max(), Some(200));
    assert_eq!(
        ds.samples.iter().filter(|s| s.apis.len() < 200).count(),
        all.iter().filter(|&&n| n < 200).count()
    );
}

fn hash_seq(apis: &[String]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    apis.hash(&mut h);
    h.finish()
}
