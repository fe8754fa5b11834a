use mallard_rules::RuleSet;
use std::time::Duration;

const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("mallard-rules-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn builtin_rules_compile_and_know_eicar() {
    let (set, errors) = RuleSet::load(&[], true);
    assert!(errors.is_empty(), "{errors:?}");
    let set = set.unwrap();
    let m = set.scan(EICAR, Duration::from_secs(5)).unwrap();
    assert_eq!(m.len(), 1, "{m:?}");
    assert_eq!(m[0].name, "eicar_test_file");
    assert!(m[0].decisive);
    // Not at offset 0: the EICAR convention is that the file starts with the string.
    let mut shifted = b"junk".to_vec();
    shifted.extend_from_slice(EICAR);
    assert!(set
        .scan(&shifted, Duration::from_secs(5))
        .unwrap()
        .is_empty());
    assert!(set
        .scan(b"MZ nothing here", Duration::from_secs(5))
        .unwrap()
        .is_empty());
}

#[test]
fn a_broken_rules_file_is_reported_and_the_others_still_work() {
    let d = tmp("broken");
    std::fs::write(
        d.join("good.yar"),
        "rule hello : suspicious { strings: $a = \"hello world\" condition: $a }",
    )
    .unwrap();
    std::fs::write(d.join("bad.yar"), "rule oops { condition: $missing }").unwrap();
    std::fs::write(d.join("notes.txt"), "not a rule file").unwrap();
    let (set, errors) = RuleSet::load(&[d.clone()], false);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let msg = errors[0].to_string();
    assert!(msg.contains("bad.yar") && !msg.contains('\n'), "{msg}");
    let m = set
        .unwrap()
        .scan(b"say hello world", Duration::from_secs(5))
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].name.as_str(), m[0].decisive), ("hello", false));
    assert_eq!(m[0].tags, ["suspicious"]);
}

#[test]
fn no_rules_at_all_is_none() {
    let d = tmp("empty");
    let (set, errors) = RuleSet::load(&[d], false);
    assert!(set.is_none() && errors.is_empty());
}
