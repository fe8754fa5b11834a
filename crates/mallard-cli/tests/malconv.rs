//! MalConv (`--model malconv` on `pe:` folders): trained, evaluated, cross-validated with
//! named groups and scanned with, end to end, on tiny PE files. The malicious ones carry a
//! 2 KB overlay of 256 noise bytes and one repeated instruction pattern, the benign ones
//! 2 KB of noise, so windows of the pattern lie in the overlay wherever they fall.

mod common;
use common::mallard;

use mallard_pe::synth::tiny_pe32;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn pe_with_overlay(path: &Path, malicious: bool, i: u64) {
    let mut b = tiny_pe32();
    let mut state = i.wrapping_mul(0x9e3779b97f4a7c15) | 1;
    for k in 0..2048 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        b.push(if malicious && k >= 256 {
            [0x80, 0x36, 0x5a, 0x46][k % 4] // xor byte [esi], 0x5a; inc esi
        } else {
            (state >> 32) as u8
        });
    }
    std::fs::write(path, b).unwrap();
}

fn corpus(d: &Path) -> PathBuf {
    let root = d.join("corpus");
    for (label, mal) in [("malicious", true), ("benign", false)] {
        std::fs::create_dir_all(root.join(label)).unwrap();
        for i in 0..12 {
            pe_with_overlay(&root.join(label).join(format!("{label}{i}.exe")), mal, i + 1);
        }
    }
    root
}

fn ok(out: &std::process::Output) {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn malconv_trains_evaluates_cross_validates_and_scans_pe_files() {
    let d = common::tmp_in("mallard-malconv", "e2e");
    let root = corpus(&d);
    let model = d.join("mc.mallard");
    let ds = format!("pe:{}", root.display());
    let fast = ["--epochs", "40", "--lr", "0.01", "--batch-size", "4", "--validation-split", "0"];
    let mut args = vec!["train", "--model", "malconv", "--dataset", &ds, "--out"];
    args.push(model.to_str().unwrap());
    args.extend(fast);
    ok(&mallard(&args));

    let out = mallard(&["inspect", model.to_str().unwrap(), "--json"]);
    ok(&out);
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["kind"], "malconv", "{meta}");
    assert_eq!(meta["input"], "bytes", "{meta}");

    let report = d.join("eval.json");
    ok(&mallard(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &ds,
        "--report",
        report.to_str().unwrap(),
    ]));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["accuracy"].as_f64(), Some(1.0), "{r}");

    // Fresh files: the verdict follows the overlay, and the reason names it.
    let fresh = d.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    pe_with_overlay(&fresh.join("packed.exe"), true, 99);
    pe_with_overlay(&fresh.join("plain.exe"), false, 98);
    let out =
        mallard(&["scan", "--json", "--model", model.to_str().unwrap(), fresh.to_str().unwrap()]);
    // Exit status 1: something malicious was found.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdict = |name: &str| {
        lines
            .iter()
            .find(|v| v["path"].as_str().is_some_and(|p| p.ends_with(name)))
            .unwrap_or_else(|| panic!("{name} not in {lines:?}"))
            .clone()
    };
    let packed = verdict("packed.exe");
    assert_eq!(packed["verdict"], "malicious", "{packed}");
    assert_eq!(verdict("plain.exe")["verdict"], "benign");
    let top = packed["reasons"][0]["name"].as_str().unwrap_or_default().to_string();
    assert!(top.contains("overlay"), "top reason {top:?} in {packed}");

    // Grouped cross-validation: the groups file joins each class into two groups.
    let groups = d.join("groups.tsv");
    let mut tsv = String::from("name\tgroup\n");
    for label in ["malicious", "benign"] {
        for i in 0..12 {
            tsv += &format!("{label}{i}.exe\t{label}-{}\n", i % 2);
        }
    }
    std::fs::write(&groups, tsv).unwrap();
    let cv_report = d.join("cv.json");
    let mut args = vec!["cv", "--model", "malconv", "--dataset", &ds, "--folds", "2", "--report"];
    args.push(cv_report.to_str().unwrap());
    args.extend(["--groups", groups.to_str().unwrap()]);
    args.extend(fast);
    let out = mallard(&args);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("4 groups never straddle"), "{err}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&cv_report).unwrap()).unwrap();
    assert!(r["roc_auc"].as_f64().unwrap() > 0.9, "{r}");

    // Not PE files: refused by name.
    let out = mallard(&[
        "train",
        "--model",
        "malconv",
        "--dataset",
        "malbehavd:x.csv",
        "--out",
        "/dev/null",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pe:DIR"));
}

#[test]
fn stack_joins_members_out_of_fold_and_scans_with_all_of_them() {
    let d = common::tmp_in("mallard-malconv", "stack");
    let root = corpus(&d);
    let ds = format!("pe:{}", root.display());
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (mc, mc_oof) = (d.join("mc.mallard"), d.join("mc-oof.jsonl"));
    let (gb, gb_oof) = (d.join("gb.mallard"), d.join("gb-oof.jsonl"));
    let fast = ["--epochs", "40", "--lr", "0.01", "--batch-size", "4", "--validation-split", "0"];
    let mut a = vec!["cv", "--model", "malconv", "--dataset", &ds, "--folds", "3", "--predictions"];
    let mc_oof_s = s(&mc_oof);
    a.push(&mc_oof_s);
    a.extend(fast);
    ok(&mallard(&a));
    let mc_s = s(&mc);
    let mut a = vec!["train", "--model", "malconv", "--dataset", &ds, "--out", &mc_s];
    a.extend(fast);
    ok(&mallard(&a));
    let header = ["--feature-set", "ember-v2", "--min-data-in-leaf", "2"];
    let gb_oof_s = s(&gb_oof);
    let mut a = vec!["cv", "--dataset", &ds, "--folds", "3", "--predictions", &gb_oof_s];
    a.extend(header);
    ok(&mallard(&a));
    let gb_s = s(&gb);
    let mut a = vec!["train", "--dataset", &ds, "--out", &gb_s];
    a.extend(header);
    ok(&mallard(&a));

    let stack = d.join("stack.mallard");
    let out = mallard(&[
        "stack",
        "--member",
        &format!("{mc_s}={mc_oof_s}"),
        "--member",
        &format!("{gb_s}={gb_oof_s}"),
        "--folds",
        "3",
        "--out",
        &s(&stack),
    ]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("24 files with a prediction from every member"), "{text}");
    assert!(text.contains("logistic weighting (cross-fitted)"), "{text}");
    assert!(text.contains("stack as written"), "{text}");

    let out = mallard(&["inspect", &s(&stack), "--json"]);
    ok(&out);
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["kind"], "stack", "{meta}");
    assert_eq!(meta["metrics"]["rows"], 24, "{meta}");
    let weights = text.lines().find(|l| l.starts_with("weights")).unwrap_or_default();
    let list = weights.split(": ").nth(1).unwrap_or_default();
    assert_eq!(list.matches(',').count(), 2, "intercept and two member weights: {text}");

    // Scanning reads each member's input from the file: MalConv's bytes, the EMBER
    // features of the trees; the reasons start with each member's score.
    let fresh = d.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    pe_with_overlay(&fresh.join("packed.exe"), true, 77);
    let out = mallard(&["scan", "--json", "--model", &s(&stack), &s(&fresh)]);
    assert!(out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["verdict"], "malicious", "{v}");
    let names: Vec<&str> =
        v["reasons"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    // Both members are perfect here, so the stack may fall back to one of them (weight 1,
    // the other 0, whose reasons then weigh nothing).
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("malconv scores") || n.starts_with("gbdt on ember-v2 scores")),
        "{names:?}"
    );

    // One member is not enough; predictions of other data do not join.
    let out =
        mallard(&["stack", "--member", &format!("{mc_s}={mc_oof_s}"), "--out", &s(&d.join("x"))]);
    assert!(!out.status.success());
    let other = d.join("other.jsonl");
    std::fs::write(&other, "{\"id\":\"nothing-here\",\"label\":\"benign\",\"probs\":[0.9,0.1]}\n")
        .unwrap();
    let out = mallard(&[
        "stack",
        "--member",
        &format!("{mc_s}={mc_oof_s}"),
        "--member",
        &format!("{gb_s}={}", s(&other)),
        "--out",
        &s(&d.join("x")),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no sample is in every"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `mallard attack` against a trained model: a budget per file, a JSON report, and every
/// mutant written passes the structural check against its original.
#[test]
fn attack_reports_within_budget_and_writes_only_preserved_mutants() {
    let d = common::tmp_in("mallard-malconv", "attack");
    let root = corpus(&d);
    let model = d.join("mc.mallard");
    let ds = format!("pe:{}", root.display());
    ok(&mallard(&[
        "train",
        "--model",
        "malconv",
        "--dataset",
        &ds,
        "--epochs",
        "40",
        "--lr",
        "0.01",
        "--batch-size",
        "4",
        "--validation-split",
        "0",
        "--out",
        model.to_str().unwrap(),
    ]));
    let targets = d.join("targets");
    std::fs::create_dir_all(&targets).unwrap();
    for i in 0..3 {
        pe_with_overlay(&targets.join(format!("t{i}.exe")), true, 50 + i);
    }
    let (out_dir, report) = (d.join("mutants"), d.join("attack.json"));
    let out = mallard(&[
        "attack",
        targets.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--budget",
        "30",
        "--out",
        out_dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
    ]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("3 files attacked, 3 detected"), "{stdout}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["budget"], 30);
    assert_eq!(r["results"].as_array().map(Vec::len), Some(3), "{r}");
    for f in r["results"].as_array().unwrap() {
        assert!(f["queries"].as_u64().unwrap() <= 30, "{f}");
        assert!(
            f["after"].as_f64().unwrap() <= f["before"].as_f64().unwrap() + 1e-6
                || f["actions"].as_array().unwrap().is_empty(),
            "{f}"
        );
        let path = PathBuf::from(f["path"].as_str().unwrap());
        let mutant =
            out_dir.join(format!("{}.mutant", path.file_name().unwrap().to_string_lossy()));
        if let Ok(m) = std::fs::read(&mutant) {
            mallard_attack::check_preserved(&std::fs::read(&path).unwrap(), &m)
                .unwrap_or_else(|e| panic!("{}: {e}", mutant.display()));
            assert_eq!(f["actions"].as_array().map(|a| a.is_empty()), Some(false));
        }
    }
    // The picture of the same attack: one curve before, one after, the threshold.
    let plot = d.join("attack.svg");
    ok(&mallard(&[
        "attack",
        targets.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--budget",
        "30",
        "--plot",
        plot.to_str().unwrap(),
    ]));
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("before (3 files)"), "{svg}");
    assert_eq!(svg.matches("<path").count(), 2);

    // eval --attack: the metrics, then the 12 malicious files of the dataset attacked; the
    // report and the plots get the attack.
    let (eval_report, plots) = (d.join("eval.json"), d.join("plots"));
    let out = mallard(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        &ds,
        "--attack",
        "--attack-budget",
        "15",
        "--report",
        eval_report.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
    ]);
    ok(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("roc_auc") && stdout.contains("12 files attacked, 12 detected"),
        "{stdout}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&eval_report).unwrap()).unwrap();
    let attack = &r["attack"];
    assert_eq!(attack["budget"], 15, "{r}");
    assert_eq!(attack["results"].as_array().map(Vec::len), Some(12));
    for f in attack["results"].as_array().unwrap() {
        assert!(f["path"].as_str().unwrap().contains("malicious"), "{f}");
        assert!(f["queries"].as_u64().unwrap() <= 15, "{f}");
    }
    assert!(plots.join("attack.svg").is_file() && plots.join("roc.svg").is_file());
    // Not PE files: refused by name.
    let out = mallard(&["eval", "--dataset", "malbehavd:x.csv", "--attack"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("x.csv is not a pe: dataset"));

    // A strategy that does not exist is refused by name.
    let out = mallard(&["attack", targets.to_str().unwrap(), "--strategy", "genetic"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("genetic"));
}

/// `mallard mutate` writes the mutants asked for, each passing the structural check against
/// its original and each made with the actions named; a file that is not PE is an error
/// line and the batch goes on; an unknown action is refused by name.
#[test]
fn mutate_writes_checked_mutants_of_the_actions_named() {
    let d = common::tmp_in("mallard-malconv", "mutate");
    let src = d.join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..3 {
        pe_with_overlay(&src.join(format!("s{i}.exe")), false, 70 + i);
    }
    let out_dir = d.join("mutants");
    let out = mallard(&[
        "mutate",
        src.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--per-file",
        "2",
        "--steps",
        "3",
        "--actions",
        "overlay-zeros,timestamp",
    ]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("wrote 6 mutants of 3 files"));
    for i in 0..3 {
        let original = std::fs::read(src.join(format!("s{i}.exe"))).unwrap();
        for k in 0..2 {
            let m = std::fs::read(out_dir.join(format!("s{i}.exe.m{k}"))).unwrap();
            mallard_attack::check_preserved(&original, &m).unwrap();
            // Only zeros appended and the timestamp changed.
            assert_ne!(m, original);
            assert!(m[original.len()..].iter().all(|&b| b == 0));
            let diff: Vec<usize> = (0..original.len()).filter(|&j| m[j] != original[j]).collect();
            assert!(diff.iter().all(|&j| (0x88..0x8c).contains(&j)), "{diff:?}");
        }
    }
    let out = mallard(&[
        "mutate",
        src.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--actions",
        "paint-it-black",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("paint-it-black"));
}

/// The sha256 of a file, as fold files key it.
fn sha256_of(p: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(std::fs::read(p).unwrap()))
}

#[test]
fn a_fold_file_gives_every_detector_the_same_folds() {
    let d = common::tmp_in("mallard-malconv", "folds");
    let root = corpus(&d);
    let ds = format!("pe:{}", root.display());
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // By hand: files in name order, folds 1, 2, 3, 1, ... within each label.
    let mut plan = String::from("sha256\tfold\n");
    let mut want = std::collections::BTreeMap::new();
    for label in ["benign", "malicious"] {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(root.join(label)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for (i, f) in files.iter().enumerate() {
            let key = sha256_of(f);
            plan.push_str(&format!("{key}\t{}\n", i % 3 + 1));
            want.insert(key, i % 3 + 1);
        }
    }
    let plan_path = d.join("folds.tsv");
    std::fs::write(&plan_path, &plan).unwrap();
    let read = |p: &Path| -> std::collections::BTreeMap<String, usize> {
        let text = std::fs::read_to_string(p).unwrap();
        assert!(text.starts_with("sha256\tfold\n"), "{text}");
        text.lines()
            .skip(1)
            .map(|l| {
                let (k, f) = l.split_once('\t').unwrap();
                (k.to_string(), f.parse().unwrap())
            })
            .collect()
    };
    // Trees on EMBER features of the folder, and MalConv on its bytes, each given the file
    // and asked to write back the folds it used.
    let fast = ["--epochs", "5", "--lr", "0.01", "--batch-size", "4", "--validation-split", "0"];
    let runs: [(&str, Vec<&str>); 2] = [
        ("trees", vec!["--feature-set", "ember-v2", "--min-data-in-leaf", "2"]),
        ("malconv", [&["--model", "malconv"][..], &fast[..]].concat()),
    ];
    let mut members = Vec::new();
    for (name, extra) in runs {
        let used = d.join(format!("used-{name}.tsv"));
        let (oof, model) = (d.join(format!("{name}.jsonl")), d.join(format!("{name}.mallard")));
        let mut a = vec!["cv", "--dataset", &ds, "--write-folds"];
        let (used_s, plan_s, oof_s, model_s) = (s(&used), s(&plan_path), s(&oof), s(&model));
        a.push(&used_s);
        a.extend(["--fold-file", &plan_s, "--predictions", &oof_s]);
        a.extend(extra.iter().copied());
        let out = mallard(&a);
        ok(&out);
        assert!(String::from_utf8_lossy(&out.stderr).contains("folds from"), "{name}");
        assert_eq!(read(&used), want, "{name}");
        let mut a = vec!["train", "--dataset", &ds, "--out", &model_s];
        a.extend(extra.iter().copied());
        ok(&mallard(&a));
        members.push(format!("{model_s}={oof_s}"));
    }
    // The stack cross-fits over the same three folds (not its default five).
    let stack = s(&d.join("stack.mallard"));
    let plan_s = s(&plan_path);
    let a = [
        "stack",
        "--member",
        &members[0],
        "--member",
        &members[1],
        "--fold-file",
        &plan_s,
        "--out",
        &stack,
    ];
    ok(&mallard(&a));
    let out = mallard(&["inspect", &stack, "--json"]);
    ok(&out);
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(meta["metrics"]["folds"], 3, "{meta}");
    // Without a plan, the folds written are the ones made: a second run given them keeps them.
    let made = d.join("made.tsv");
    let tree = ["--feature-set", "ember-v2", "--min-data-in-leaf", "2", "--folds", "4"];
    let mut a = vec!["cv", "--dataset", &ds, "--write-folds"];
    let made_s = s(&made);
    a.push(&made_s);
    a.extend(tree);
    ok(&mallard(&a));
    let first = read(&made);
    assert_eq!(first.len(), 24);
    assert_eq!(first.values().copied().max(), Some(4));
    let again = d.join("again.tsv");
    let again_s = s(&again);
    let a = [
        "cv",
        "--dataset",
        &ds,
        "--feature-set",
        "ember-v2",
        "--min-data-in-leaf",
        "2",
        "--fold-file",
        &made_s,
        "--write-folds",
        &again_s,
    ];
    ok(&mallard(&a));
    assert_eq!(read(&again), first);

    // A file the plan does not list, and --folds beside a plan, are refused.
    let short: String = plan.lines().take(24).map(|l| format!("{l}\n")).collect();
    std::fs::write(&plan_path, short).unwrap();
    let out = mallard(&["cv", "--dataset", &ds, "--fold-file", &s(&plan_path)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("1 of 24 rows are not in the fold file"), "{err}");
    let out = mallard(&["cv", "--dataset", &ds, "--fold-file", &s(&plan_path), "--folds", "3"]);
    assert!(!out.status.success());
    // The stack too: --folds beside a plan was silently ignored there.
    let plan_s = s(&plan_path);
    let out = mallard(&[
        "stack",
        "--member",
        "m.mallard=p.jsonl",
        "--fold-file",
        &plan_s,
        "--folds",
        "3",
        "--out",
        "s.mallard",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    // Sequences have no sha256 to key a fold by.
    let csv = d.join("seq.csv");
    std::fs::write(&csv, "sha256,labels,api\na,0,x\nb,1,y\n").unwrap();
    let out = mallard(&[
        "cv",
        "--dataset",
        &format!("malbehavd:{}", s(&csv)),
        "--write-folds",
        &s(&d.join("x.tsv")),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not sequences"));
}
