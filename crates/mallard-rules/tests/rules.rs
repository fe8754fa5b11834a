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
    let (set, errors) = RuleSet::load(std::slice::from_ref(&d), false);
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

#[cfg(unix)]
#[test]
fn self_links_in_a_rules_folder_compile_each_file_once() {
    use std::os::unix::fs::symlink;
    let d = tmp("loops");
    std::fs::create_dir(d.join("sub")).unwrap();
    std::fs::write(
        d.join("sub/one.yar"),
        "rule one : suspicious { strings: $a = \"needle\" condition: $a }",
    )
    .unwrap();
    symlink(".", d.join("sub/self1")).unwrap();
    symlink(".", d.join("sub/self2")).unwrap();
    symlink("..", d.join("sub/up")).unwrap();
    for follow in [false, true] {
        let opts = mallard_io::WalkOptions {
            follow_symlinks: follow,
            ..Default::default()
        };
        let t = std::time::Instant::now();
        let (set, errors) = RuleSet::load_with(std::slice::from_ref(&d), false, &opts);
        assert!(errors.is_empty(), "{errors:?}");
        let set = set.unwrap();
        assert_eq!(set.sources.len(), 1, "follow={follow}: {:?}", set.sources);
        let m = set.scan(b"a needle", Duration::from_secs(5)).unwrap();
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(t.elapsed() < Duration::from_secs(20));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_fifo_rules_file_is_an_error_and_does_not_hang() {
    let d = tmp("fifo");
    std::fs::write(
        d.join("good.yar"),
        "rule good { strings: $a = \"abc\" condition: $a }",
    )
    .unwrap();
    let fifo = d.join("pipe.yar");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo unavailable");
    // Given inside a folder and given by name: both refused, the good file still used.
    for roots in [vec![d.clone()], vec![fifo.clone(), d.join("good.yar")]] {
        let (set, errors) = RuleSet::load(&roots, false);
        assert_eq!(errors.len(), 1, "{errors:?}");
        let msg = errors[0].to_string();
        assert!(msg.contains("pipe.yar") && msg.contains("FIFO"), "{msg}");
        assert_eq!(set.unwrap().sources.len(), 1);
    }
}

#[test]
fn an_oversized_rules_file_is_refused_by_its_size() {
    let d = tmp("big");
    let f = d.join("huge.yar");
    let file = std::fs::File::create(&f).unwrap();
    file.set_len(mallard_rules::MAX_RULES_FILE_BYTES + 1)
        .unwrap();
    let (set, errors) = RuleSet::load(&[f], false);
    assert!(set.is_none());
    assert_eq!(errors.len(), 1);
    let msg = errors[0].to_string();
    assert!(
        msg.contains(&format!(
            "{} bytes",
            mallard_rules::MAX_RULES_FILE_BYTES + 1
        )),
        "{msg}"
    );
}

#[test]
fn the_digest_names_the_rules_texts_cached_or_compiled() {
    use sha2::{Digest, Sha256};
    let of = |parts: &[&[u8]]| -> [u8; 32] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(Sha256::digest(p));
        }
        h.finalize().into()
    };
    let builtin = mallard_rules::BUILTIN.as_bytes();
    // The first load may compile (and cache), the second reads the cache: same digest.
    let first = RuleSet::load(&[], true).0.unwrap().digest();
    let second = RuleSet::load(&[], true).0.unwrap().digest();
    assert_eq!(first, of(&[builtin]));
    assert_eq!(second, first);

    let d = tmp("digest");
    let text = "rule hello { strings: $a = \"hello\" condition: $a }";
    std::fs::write(d.join("a.yar"), text).unwrap();
    let with_file = RuleSet::load(std::slice::from_ref(&d), true).0.unwrap();
    assert_eq!(with_file.digest(), of(&[builtin, text.as_bytes()]));
    let alone = RuleSet::load(std::slice::from_ref(&d), false).0.unwrap();
    assert_eq!(alone.digest(), of(&[text.as_bytes()]));
    // One character edited: another digest.
    std::fs::write(d.join("a.yar"), text.replace("hello\"", "hellO\"")).unwrap();
    let edited = RuleSet::load(std::slice::from_ref(&d), true).0.unwrap();
    assert_ne!(edited.digest(), with_file.digest());
}

#[test]
fn the_eicar_rule_is_exactly_the_string_at_offset_zero() {
    let set = RuleSet::load(&[], true).0.unwrap();
    let hits = |data: &[u8]| {
        set.scan(data, Duration::from_secs(5))
            .unwrap()
            .iter()
            .filter(|m| m.name == "eicar_test_file")
            .count()
    };
    let mut longer = EICAR.to_vec();
    longer.extend_from_slice(b"\r\n");
    longer.extend(std::iter::repeat_n(b'A', 1000));
    for ok in [EICAR, &longer[..]] {
        assert_eq!(hits(ok), 1);
    }
    assert_eq!(hits(&EICAR[..67]), 0, "one byte short");
    // Any one byte changed, anywhere in the 68, and it is not EICAR's file.
    for i in 0..EICAR.len() {
        let mut e = EICAR.to_vec();
        e[i] ^= 0x20;
        assert_eq!(hits(&e), 0, "byte {i} changed");
    }
}
