use super::*;
use mallard_pe::synth::{off, set_u32, tiny_pe32};
use mallard_pefeatures::{extract, FeatureSet};

/// The tiny test PE with a Rich header in its stub and a certificate ending the file, so
/// every action has something to edit.
fn rich_signed_pe() -> Vec<u8> {
    let mut b = tiny_pe32();
    let key = 0x1234_5678u32;
    set_u32(&mut b, 0x40, u32::from_le_bytes(*b"DanS") ^ key);
    set_u32(&mut b, 0x50, 0x0001_0203 ^ key);
    b[0x70..0x74].copy_from_slice(b"Rich");
    set_u32(&mut b, 0x74, key);
    // Debug directory entry (RVA inside .idata, unused there) and a 16-byte certificate.
    set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::DEBUG, 0x2180);
    set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::DEBUG + 4, 0x1c);
    let cert = b.len() as u32;
    b.extend_from_slice(&[16, 0, 0, 0, 0, 2, 2, 0, 0x30, 0x82, 0, 0, 0, 0, 0, 0]);
    set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::CERTIFICATE, cert);
    set_u32(&mut b, off::DATA_DIRECTORIES + 8 * dir::CERTIFICATE + 4, 16);
    b
}

#[test]
fn every_action_applies_and_keeps_what_it_must() {
    let original = rich_signed_pe();
    check_preserved(&original, &original).unwrap();
    let benign = b"This program cannot be run in DOS mode. ordinary benign text".repeat(20);
    let params = Params {
        benign: &benign,
        max_append: 4096,
        ..Params::default()
    };
    for action in ACTIONS {
        for seed in 0..20 {
            let mut rng = SplitMix64::new(seed);
            let m = apply(&original, action, &mut rng, &params)
                .unwrap_or_else(|e| panic!("{}: {e}", action.name()));
            assert!(
                m != original,
                "{} seed {seed} changed nothing",
                action.name()
            );
            check_preserved(&original, &m)
                .unwrap_or_else(|e| panic!("{} seed {seed}: {e}", action.name()));
        }
    }
}

#[test]
fn each_action_edits_what_it_names() {
    let original = rich_signed_pe();
    let p = Params::default();
    let mut rng = SplitMix64::new(1);
    let run = |a: Action, rng: &mut SplitMix64| apply(&original, a, rng, &p).unwrap();

    let m = run(Action::OverlayZeros, &mut rng);
    assert!(m.len() > original.len() && m[original.len()..].iter().all(|&b| b == 0));
    assert_eq!(m[..original.len()], original[..]);

    let m = run(Action::RemoveCertificate, &mut rng);
    assert_eq!(
        m.len(),
        off::FILE_SIZE,
        "the certificate's bytes ended the file"
    );
    let pe = Pe::parse(&m).unwrap();
    assert_eq!(
        pe.data_directory(dir::CERTIFICATE).unwrap().virtual_address,
        0
    );

    let m = run(Action::RichHeader, &mut rng);
    assert!(!m.windows(4).any(|w| w == b"Rich"));
    assert!(m[0x40..0x78].iter().all(|&b| b == 0));
    assert_eq!(m[0x78..], original[0x78..]);

    // .text: VirtualSize 0x10, raw 0x200 at 0x200: only 0x210..0x400 may change.
    let m = run(Action::SlackFill, &mut rng);
    assert_eq!(m[..0x210], original[..0x210]);
    assert_ne!(m[0x210..0x400], original[0x210..0x400]);
    assert_eq!(m[0x400..], original[0x400..]);

    let m = run(Action::DosHeader, &mut rng);
    assert_eq!(m[..2], *b"MZ");
    assert_eq!(m[0x3c..], original[0x3c..]);

    let m = run(Action::Timestamp, &mut rng);
    let diff: Vec<usize> = (0..m.len()).filter(|&i| m[i] != original[i]).collect();
    assert!(diff
        .iter()
        .all(|&i| (off::COFF + 4..off::COFF + 8).contains(&i)));

    let m = run(Action::AddSection, &mut rng);
    let pe = Pe::parse(&m).unwrap();
    assert_eq!(pe.sections.len(), 3);
    let new = &pe.sections[2];
    assert_eq!(
        new.virtual_address, 0x3000,
        "after .idata (0x2000 + 0x200, aligned)"
    );
    assert_eq!(
        new.pointer_to_raw_data, 0x600,
        "where the sections' raw data ended"
    );
    assert!(pe.optional.size_of_image >= 0x3000 + new.virtual_size);
    // The certificate moved back with the overlay, its bytes intact.
    let cert = pe.data_directory(dir::CERTIFICATE).unwrap();
    assert_eq!(cert.virtual_address, 0x600 + new.size_of_raw_data);
    assert_eq!(m[cert.virtual_address as usize..], original[0x600..]);
    // Before the new header, only NumberOfSections, SizeOfImage and the certificate's
    // offset change.
    let cert_at = off::DATA_DIRECTORIES + 8 * dir::CERTIFICATE;
    for i in (0..0x1c8).filter(|&i| m[i] != original[i]) {
        assert!(
            i == off::NUMBER_OF_SECTIONS
                || (off::OPTIONAL + 56..off::OPTIONAL + 60).contains(&i)
                || (cert_at..cert_at + 4).contains(&i),
            "byte 0x{i:x} changed"
        );
    }

    // Imports: the old descriptors (copied, same tables) then one for a system DLL whose
    // names resolve through the new section's own lookup and address tables.
    for seed in 0..10 {
        let m = apply(
            &original,
            Action::AddImports,
            &mut SplitMix64::new(seed),
            &p,
        )
        .unwrap();
        let pe = Pe::parse(&m).unwrap();
        let new = &pe.sections[2];
        let imports = pe.lief_imports().imports;
        let old = Pe::parse(&original).unwrap().lief_imports().imports;
        assert_eq!(imports.len(), old.len() + 1);
        assert_eq!(imports[..old.len()], old[..]);
        let added = &imports[old.len()];
        let (_, names) = BENIGN_IMPORTS
            .iter()
            .find(|(d, _)| *d == added.name)
            .unwrap_or_else(|| panic!("{} is not a system DLL of the list", added.name));
        assert!(!added.entries.is_empty());
        for e in &added.entries {
            assert!(names.contains(&e.name.as_str()), "{}", e.name);
        }
        let d = pe.data_directory(dir::IMPORT).unwrap();
        assert_eq!(d.virtual_address, new.virtual_address);
        assert_eq!(d.size as usize, 20 * (old.len() + 2));
        assert_ne!(
            new.characteristics & scn::MEM_WRITE,
            0,
            "the loader writes the IAT"
        );
        // The new descriptor's IAT lies in the new section; the old ones' did not move.
        let descs = raw_descriptors(&pe).unwrap();
        let iat = get_u32(descs[old.len()], 16).unwrap();
        assert!(iat >= new.virtual_address && iat < new.virtual_address + new.virtual_size);
        let before = raw_descriptors(&Pe::parse(&original).unwrap()).unwrap();
        assert_eq!(descs[..old.len()], before[..]);
    }

    let m = run(Action::DebugDirectory, &mut rng);
    assert_eq!(
        Pe::parse(&m)
            .unwrap()
            .data_directory(dir::DEBUG)
            .unwrap()
            .size,
        0
    );

    // Nothing to edit: a NotApplicable, not a silent copy.
    let plain = tiny_pe32();
    for a in [
        Action::RichHeader,
        Action::RemoveCertificate,
        Action::DebugDirectory,
    ] {
        assert!(matches!(
            apply(&plain, a, &mut rng, &p),
            Err(AttackError::NotApplicable { .. })
        ));
    }
    assert!(matches!(
        apply(b"MZ not a PE", Action::Timestamp, &mut rng, &p),
        Err(AttackError::Parse(_))
    ));
    let tight = Params {
        max_size: original.len() + 1,
        max_append: 100,
        ..Params::default()
    };
    let mut big = None;
    for seed in 0..10 {
        if let Err(e) = apply(
            &original,
            Action::OverlayRandom,
            &mut SplitMix64::new(seed),
            &tight,
        ) {
            big = Some(e);
        }
    }
    assert!(matches!(big, Some(AttackError::TooLarge(_))));
}

/// The check is not a formality: edits of what must stay are caught.
#[test]
fn the_check_catches_broken_mutants() {
    let original = tiny_pe32();
    let mut m = original.clone();
    set_u32(&mut m, off::ADDRESS_OF_ENTRY_POINT, 0x1004);
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    let mut m = original.clone();
    m[0x205] ^= 0xff; // a code byte
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    let mut m = original.clone();
    let at = m.windows(11).position(|w| w == b"ExitProcess").unwrap();
    m[at + 10] = b'X';
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    let mut m = original.clone();
    m[off::E_LFANEW] = 0x90; // the PE header is lost
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    // An import lost, or an old descriptor's IAT moved (the code reads its addresses there).
    let mut m = original.clone();
    m[off::IMPORT_DESCRIPTORS + 20..off::IMPORT_DESCRIPTORS + 40].fill(0);
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    let mut m = apply(
        &original,
        Action::AddImports,
        &mut SplitMix64::new(3),
        &Params::default(),
    )
    .unwrap();
    check_preserved(&original, &m).unwrap();
    let table = Pe::parse(&m)
        .unwrap()
        .data_directory(dir::IMPORT)
        .unwrap()
        .virtual_address;
    let at = Pe::parse(&m).unwrap().rva_to_offset(table).unwrap();
    let iat = get_u32(&m, at + 16).unwrap();
    set_u32(&mut m, at + 16, iat + 4);
    assert!(matches!(
        check_preserved(&original, &m),
        Err(AttackError::Broken(_))
    ));
    // Bytes past .text's virtual size are slack: not a change of the mapped code.
    let mut m = original.clone();
    m[0x300] = 0xcc;
    check_preserved(&original, &m).unwrap();
}

fn shared() -> std::path::PathBuf {
    std::env::var_os("MALLARD_SHARED")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
        })
}

/// Vectors equal, NaN included.
fn same(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The hardened EMBER features ignore every region an action but `add-section` writes to:
/// the mutants' vectors equal the original's, while plain EMBER v2 sees each edit.
#[test]
fn hardened_features_do_not_move_under_the_edits_they_ignore() {
    let original = rich_signed_pe();
    let benign = b"This program cannot be run in DOS mode. ordinary benign text".repeat(20);
    let params = Params {
        benign: &benign,
        max_append: 4096,
        ..Params::default()
    };
    let hardened = extract(FeatureSet::EmberV2Hardened, &original).unwrap();
    let plain = extract(FeatureSet::EmberV2, &original).unwrap();
    assert!(
        !same(&hardened, &plain),
        "the hardened view changes the file"
    );
    for action in ACTIONS {
        for seed in 0..10 {
            let m = apply(&original, action, &mut SplitMix64::new(seed), &params).unwrap();
            let h = extract(FeatureSet::EmberV2Hardened, &m).unwrap();
            let p = extract(FeatureSet::EmberV2, &m).unwrap();
            assert!(
                !same(&p, &plain),
                "{} seed {seed}: EMBER v2 missed it",
                action.name()
            );
            if action == Action::AddImports {
                assert!(!same(&h, &hardened), "new imports are seen");
            } else {
                assert!(
                    same(&h, &hardened),
                    "{} seed {seed} moved it",
                    action.name()
                );
            }
        }
    }
}

/// Every action on every real benign PE file of the shared corpus (x86, x64, ARM64, .NET,
/// EFI), three seeds each: every mutant passes the structural checks, and the hardened
/// features see none of the edits but a new section.
#[test]
#[ignore = "reads ../shared/data/pe-benign"]
fn every_mutant_of_the_shared_benign_files_passes_the_checks() {
    let dir = shared().join("data/pe-benign");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x != "md" && x != "tsv"))
        .collect();
    files.sort();
    let donor = std::fs::read(&files[0]).unwrap();
    let params = Params {
        benign: &donor,
        ..Params::default()
    };
    let (mut made, mut parsed) = (std::collections::BTreeMap::new(), 0);
    for f in &files {
        let b = std::fs::read(f).unwrap();
        if Pe::parse(&b).is_err() {
            continue;
        }
        parsed += 1;
        let hardened = extract(FeatureSet::EmberV2Hardened, &b).unwrap();
        for action in ACTIONS {
            for seed in 0..3 {
                match apply(&b, action, &mut SplitMix64::new(seed), &params) {
                    Ok(m) => {
                        check_preserved(&b, &m).unwrap_or_else(|e| {
                            panic!("{} {} seed {seed}: {e}", f.display(), action.name())
                        });
                        if action != Action::AddImports {
                            let h = extract(FeatureSet::EmberV2Hardened, &m).unwrap();
                            assert!(
                                same(&h, &hardened),
                                "{} {} seed {seed}: the hardened features moved",
                                f.display(),
                                action.name()
                            );
                        }
                        *made.entry(action.name()).or_insert(0) += 1;
                    }
                    Err(AttackError::NotApplicable { .. }) => {}
                    Err(e) => panic!("{} {}: {e}", f.display(), action.name()),
                }
            }
        }
    }
    println!("{parsed} files; mutants per action: {made:?}");
    assert!(parsed >= 200, "{parsed} files parsed");
    for a in [
        Action::OverlayRandom,
        Action::SectionRename,
        Action::Timestamp,
        Action::DosStub,
    ] {
        assert_eq!(
            made[a.name()],
            3 * parsed,
            "{} applies to every file",
            a.name()
        );
    }
}

/// A scorer that falls as the file grows past its original size and as the timestamp
/// field's top byte rises: overlays and sections help, the timestamp helps a little.
fn toy_score(b: &[u8]) -> Result<f32, String> {
    let pe = Pe::parse(b).map_err(|e| e.to_string())?;
    let grown = b.len().saturating_sub(0x610) as f32 / 20_000.0;
    let ts = (pe.coff.time_date_stamp >> 24) as f32 / 2550.0;
    Ok((0.95 - grown - ts).max(0.0))
}

#[test]
fn searches_evade_a_scorer_within_the_budget_and_keep_every_mutant_valid() {
    let original = rich_signed_pe();
    let p = Params {
        max_append: 4096,
        ..Params::default()
    };
    for strategy in [Strategy::Random, Strategy::Greedy] {
        let mut calls = 0usize;
        let mut score = |b: &[u8]| {
            calls += 1;
            check_preserved(&original, b).map_err(|e| e.to_string())?;
            toy_score(b)
        };
        let o = attack(
            &original,
            &mut score,
            0.5,
            200,
            strategy,
            &p,
            &mut SplitMix64::new(4),
        )
        .unwrap();
        assert!(o.detected && o.evaded, "{strategy:?}: {o:?}");
        assert!(o.after < 0.5 && o.before >= 0.5);
        assert_eq!(
            calls,
            o.queries + 1,
            "one call on the original, the rest on mutants"
        );
        assert!(o.queries <= 200 && !o.actions.is_empty());
        check_preserved(&original, &o.mutant).unwrap();
        assert_eq!(toy_score(&o.mutant).unwrap(), o.after);
    }
    // Greedy keeps only improvements: its mutant's score never rose along the way, and it
    // needs fewer queries here than a random walk.
    let mut s1 = |b: &[u8]| toy_score(b);
    let g = attack(
        &original,
        &mut s1,
        0.5,
        200,
        Strategy::Greedy,
        &p,
        &mut SplitMix64::new(4),
    )
    .unwrap();
    let mut s2 = |b: &[u8]| toy_score(b);
    let r = attack(
        &original,
        &mut s2,
        0.5,
        200,
        Strategy::Random,
        &p,
        &mut SplitMix64::new(4),
    )
    .unwrap();
    assert!(
        g.actions.len() <= r.actions.len(),
        "greedy {g:?} random {r:?}"
    );
}

#[test]
fn a_scorer_that_cannot_be_moved_spends_the_budget_and_an_undetected_file_none() {
    let original = rich_signed_pe();
    let p = Params::default();
    let mut fixed = |_: &[u8]| Ok(0.9f32);
    for strategy in [Strategy::Random, Strategy::Greedy] {
        let o = attack(
            &original,
            &mut fixed,
            0.5,
            30,
            strategy,
            &p,
            &mut SplitMix64::new(1),
        )
        .unwrap();
        assert!(o.detected && !o.evaded);
        assert_eq!(o.queries, 30, "{strategy:?}");
    }
    let mut low = |_: &[u8]| Ok(0.1f32);
    let o = attack(
        &original,
        &mut low,
        0.5,
        30,
        Strategy::Greedy,
        &p,
        &mut SplitMix64::new(1),
    )
    .unwrap();
    assert!(!o.detected && !o.evaded && o.queries == 0 && o.mutant == original);
}

/// A file cut inside its last section's raw data: an appended overlay would become part of
/// that section, so overlays do not apply (found on a real sample).
#[test]
fn overlays_do_not_apply_when_sections_run_past_the_end() {
    let mut cut = tiny_pe32();
    cut.truncate(0x500);
    let p = Params::default();
    for a in [
        Action::OverlayRandom,
        Action::OverlayZeros,
        Action::OverlayBenign,
    ] {
        let r = apply(&cut, a, &mut SplitMix64::new(1), &p);
        assert!(matches!(r, Err(AttackError::NotApplicable { .. })), "{r:?}");
    }
}

#[test]
fn random_mutants_take_the_steps_asked_and_pass_the_checks() {
    let original = rich_signed_pe();
    let p = Params {
        max_append: 2048,
        ..Params::default()
    };
    for seed in 0..20 {
        let mut rng = SplitMix64::new(seed);
        let (m, applied) = random_mutant(&original, &ACTIONS, 5, &p, &mut rng).unwrap();
        assert_eq!(applied.len(), 5);
        assert_ne!(m, original);
        check_preserved(&original, &m).unwrap();
    }
    // Only actions that do not apply: nothing is applied, the original comes back.
    let plain = tiny_pe32();
    let (m, applied) = random_mutant(
        &plain,
        &[Action::RichHeader],
        3,
        &p,
        &mut SplitMix64::new(1),
    )
    .unwrap();
    assert!(applied.is_empty());
    assert_eq!(m, plain);
    assert!(matches!(
        random_mutant(b"MZ", &ACTIONS, 1, &p, &mut SplitMix64::new(1)),
        Err(AttackError::Parse(_))
    ));
}
