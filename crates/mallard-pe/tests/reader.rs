//! Reader tests against the hand-laid-out PE in `mallard_pe::synth` (truth = its layout), and
//! malformed variants of it: no panic, bounded time, sensible degradation.

use std::time::{Duration, Instant};

use mallard_pe::synth::{off, set_u16, set_u32, tiny_pe32};
use mallard_pe::{entropy, Pe, PeError, PeKind};

#[test]
fn tiny_headers() {
    let b = tiny_pe32();
    let pe = Pe::parse(&b).expect("tiny PE parses");
    assert_eq!(pe.kind, PeKind::Pe32);
    assert_eq!(pe.dos.e_lfanew, 0x80);
    assert_eq!(pe.dos.e_cblp, 0x90);
    assert_eq!(pe.coff.machine, 0x14c);
    assert_eq!(pe.coff.number_of_sections, 2);
    assert_eq!(pe.coff.time_date_stamp, 0x5f00_0000);
    assert_eq!(pe.coff.characteristics, 0x2102);
    assert_eq!(pe.optional.magic, 0x10b);
    assert_eq!(pe.optional.address_of_entry_point, 0x1000);
    assert_eq!(pe.optional.base_of_data, 0x2000);
    assert_eq!(pe.optional.image_base, 0x40_0000);
    assert_eq!(pe.optional.size_of_stack_reserve, 0x10_0000);
    assert_eq!(pe.optional.number_of_rva_and_sizes, 16);
    assert_eq!(pe.data_directories.len(), 16);
    assert_eq!(pe.data_directories[1].virtual_address, 0x2000);
    assert_eq!(pe.sections.len(), 2);
    assert_eq!(pe.sections[0].name(), ".text");
    assert_eq!(pe.sections[1].name(), ".idata");
    assert_eq!(pe.lief_entry_section(), Some(0));
    // max(0x80 + 24 + 96, 0x1000 + 0x10, 0x2000 + 0x200) rounded up to 0x1000.
    assert_eq!(pe.lief_virtual_size(), 0x3000);
    assert_eq!(pe.rva_to_offset(0x2010), Some(0x410));
    assert_eq!(pe.lief_rva_to_offset(0x2010), 0x410);
    // Outside every section LIEF maps an RVA to itself; the loader view says "nowhere".
    assert_eq!(pe.lief_rva_to_offset(0x9000), 0x9000);
    assert_eq!(pe.rva_to_offset(0x9000), None);
    assert_eq!(pe.overlay_offset(), None);
    assert!(!pe.is_dotnet());
    assert_eq!(pe.lief_symbol_count(), 0);
    assert!(!pe.lief_has_tls() && !pe.lief_has_debug() && !pe.lief_has_relocations());
}

#[test]
fn tiny_imports_exports() {
    let b = tiny_pe32();
    let pe = Pe::parse(&b).unwrap();
    let imps = pe.lief_imports();
    assert!(!imps.truncated);
    assert_eq!(imps.imports.len(), 2);
    assert_eq!(imps.imports[0].name, "KERNEL32.dll");
    assert_eq!(imps.imports[0].entries.len(), 1);
    assert_eq!(imps.imports[0].entries[0].name, "ExitProcess");
    assert_eq!(imps.imports[0].entries[0].ordinal, None);
    assert_eq!(imps.imports[1].name, "MYLIB.dll");
    assert_eq!(imps.imports[1].entries[0].ordinal, Some(5));
    let ex = pe.lief_exports().expect("exports");
    assert_eq!(ex.name.as_deref(), Some("tiny.dll"));
    assert_eq!(ex.entries.len(), 2);
    assert_eq!(ex.entries[0].name, b"Start");
    assert_eq!(ex.entries[0].ordinal, 1);
    assert_eq!(ex.entries[0].address, 0x1000);
    assert!(ex.entries[1].name.is_empty());
    assert_eq!(ex.entries[1].ordinal, 2);
    assert!(pe.lief_delay_imports().imports.is_empty());
}

#[test]
fn section_entropy_by_hand() {
    let b = tiny_pe32();
    let pe = Pe::parse(&b).unwrap();
    // .text content for LIEF = min(VirtualSize 16, SizeOfRawData 512) bytes:
    // 7 distinct bytes once and 0x90 nine times.
    let r = pe.sections[0].lief_content_range(b.len());
    assert_eq!(r, 0x200..0x210);
    let want = 7.0 / 16.0 * 4.0 + 9.0 / 16.0 * (16.0f64 / 9.0).log2();
    assert!((entropy(&b[r]) - want).abs() < 1e-12);
    assert_eq!(entropy(&[]), 0.0);
    assert!((entropy(&(0..=255u8).collect::<Vec<_>>()) - 8.0).abs() < 1e-12);
}

#[test]
fn rejects_non_pe() {
    assert!(matches!(Pe::parse(b""), Err(PeError::NotPe(_))));
    assert!(matches!(Pe::parse(&[0u8; 200]), Err(PeError::NotPe(_))));
    let mut b = tiny_pe32();
    set_u32(&mut b, off::E_LFANEW, 0x7fff_ffff);
    assert!(matches!(Pe::parse(&b), Err(PeError::NotPe(_))));
    let mut b = tiny_pe32();
    b[0x80] = b'X';
    assert!(matches!(Pe::parse(&b), Err(PeError::NotPe(_))));
    let lim = mallard_pe::Limits {
        max_file_size: 100,
        ..Default::default()
    };
    assert!(matches!(
        Pe::parse_with(&tiny_pe32(), lim),
        Err(PeError::TooLarge { .. })
    ));
}

/// Exercise every accessor; returns a small digest so the work is not optimised away.
fn exercise(b: &[u8]) -> usize {
    let Ok(pe) = Pe::parse(b) else { return 0 };
    let mut n = pe.sections.len();
    for s in &pe.sections {
        let r = s.lief_content_range(b.len());
        n += b.get(r).map(|x| entropy(x) as usize).unwrap_or(0);
    }
    n += pe
        .lief_imports()
        .imports
        .iter()
        .map(|i| i.entries.len())
        .sum::<usize>();
    n += pe.lief_delay_imports().imports.len();
    n += pe.lief_exports().map(|e| e.entries.len()).unwrap_or(0);
    n += pe.lief_symbol_count() as usize;
    n += usize::from(pe.lief_has_tls())
        + usize::from(pe.lief_has_resources())
        + usize::from(pe.has_signature());
    n += usize::from(pe.lief_has_relocations()) + usize::from(pe.has_resource_type(16));
    n += pe.overlay_offset().unwrap_or(0) + pe.lief_entry_section().unwrap_or(0);
    n += pe.lief_virtual_size() as usize % 7;
    for rva in [0u32, 0x1000, 0x2000, 0xffff_ffff] {
        n += pe.rva_to_offset(rva).unwrap_or(0) % 3;
        n += (pe.lief_rva_to_offset(u64::from(rva)) % 3) as usize;
    }
    n
}

fn timed(b: &[u8]) -> Duration {
    let t = Instant::now();
    std::hint::black_box(exercise(b));
    t.elapsed()
}

#[test]
fn truncations_and_bit_flips() {
    let b = tiny_pe32();
    let mut worst = Duration::ZERO;
    for n in 0..=b.len() {
        worst = worst.max(timed(&b[..n]));
    }
    for i in 0..b.len() {
        for bit in 0..8 {
            let mut m = b.clone();
            m[i] ^= 1 << bit;
            worst = worst.max(timed(&m));
        }
    }
    assert!(
        worst < Duration::from_millis(200),
        "slowest variant took {worst:?}"
    );
}

#[test]
fn field_corruptions() {
    let base = tiny_pe32();
    let mut variants: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut v = |name: &'static str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = base.clone();
        f(&mut b);
        variants.push((name, b));
    };
    v("e_lfanew past EOF", &|b| {
        set_u32(b, off::E_LFANEW, 0x10_0000)
    });
    v("e_lfanew at the last bytes", &|b| {
        set_u32(b, off::E_LFANEW, (off::FILE_SIZE - 4) as u32)
    });
    v("NumberOfSections 0xFFFF", &|b| {
        set_u16(b, off::NUMBER_OF_SECTIONS, 0xffff)
    });
    v("NumberOfSections 0", &|b| {
        set_u16(b, off::NUMBER_OF_SECTIONS, 0)
    });
    v("SizeOfOptionalHeader 0", &|b| {
        set_u16(b, off::SIZE_OF_OPTIONAL_HEADER, 0)
    });
    v("SizeOfOptionalHeader 0xFFFF", &|b| {
        set_u16(b, off::SIZE_OF_OPTIONAL_HEADER, 0xffff)
    });
    v("section sizes 4 GB", &|b| {
        for s in 0..2 {
            let o = off::SECTION_TABLE + 40 * s;
            set_u32(b, o + 8, 0xffff_ffff);
            set_u32(b, o + 16, 0xffff_ffff);
        }
    });
    v("section raw pointer past EOF", &|b| {
        set_u32(b, off::SECTION_TABLE + 20, 0xffff_f000)
    });
    v("section VA at 4 GB", &|b| {
        set_u32(b, off::SECTION_TABLE + 40 + 12, 0xffff_f000)
    });
    v("import descriptors that loop", &|b| {
        // Import directory says 4 GB; descriptors' ILT points back at the descriptor table.
        set_u32(b, off::DATA_DIRECTORIES + 12, 0xffff_ffff);
        set_u32(b, off::IMPORT_DESCRIPTORS, 0x2000);
        set_u32(b, off::IMPORT_DESCRIPTORS + 16, 0x2000);
    });
    v("import thunks without terminator", &|b| {
        for k in 0..64 {
            set_u32(b, off::ILT_KERNEL32 + 4 * k, 0x20e0);
        }
    });
    v("RVAs outside sections", &|b| {
        set_u32(b, off::DATA_DIRECTORIES, 0x7fff_0000);
        set_u32(b, off::DATA_DIRECTORIES + 8, 0x7fff_0000);
        set_u32(b, off::ADDRESS_OF_ENTRY_POINT, 0xdead_beef);
    });
    v("export counts 0xFFFFFFFF", &|b| {
        set_u32(b, off::EXPORT_DIRECTORY + 20, 0xffff_ffff);
        set_u32(b, off::EXPORT_DIRECTORY + 24, 0xffff_ffff);
    });
    v("export counts 0x1000000", &|b| {
        set_u32(b, off::EXPORT_DIRECTORY + 20, 0x0100_0000);
        set_u32(b, off::EXPORT_DIRECTORY + 24, 0x0100_0000);
    });
    v("symbol table everywhere", &|b| {
        set_u32(b, off::COFF + 8, 0);
        set_u32(b, off::COFF + 12, 0xffff_ffff);
    });
    v("all data directories huge", &|b| {
        for k in 0..32 {
            set_u32(b, off::DATA_DIRECTORIES + 4 * k, 0xffff_fff0);
        }
    });
    v("alignments zero", &|b| {
        set_u32(b, off::OPTIONAL + 32, 0);
        set_u32(b, off::OPTIONAL + 36, 0);
    });
    v("PE32+ magic on a PE32 layout", &|b| {
        set_u16(b, off::OPTIONAL, 0x20b)
    });
    v("unknown magic", &|b| set_u16(b, off::OPTIONAL, 0x1234));
    v("unknown magic and SizeOfOptionalHeader", &|b| {
        set_u16(b, off::OPTIONAL, 0x1234);
        set_u16(b, off::SIZE_OF_OPTIONAL_HEADER, 0x70);
    });
    for (name, b) in &variants {
        let d = timed(b);
        assert!(d < Duration::from_millis(500), "{name}: {d:?}");
    }
    // Specific expectations.
    let find = |n: &str| &variants.iter().find(|(m, _)| *m == n).unwrap().1;
    assert!(Pe::parse(find("e_lfanew past EOF")).is_err());
    let pe = Pe::parse(find("NumberOfSections 0xFFFF")).unwrap();
    assert!(pe.sections.len() <= 1000);
    let pe = Pe::parse(find("import descriptors that loop")).unwrap();
    let t = pe.lief_imports();
    assert!(t.imports.iter().map(|i| i.entries.len()).sum::<usize>() <= (1 << 20));
    let pe = Pe::parse(find("export counts 0xFFFFFFFF")).unwrap();
    assert!(
        pe.lief_exports().is_none(),
        "LIEF refuses more than 0x1000000 entries"
    );
    let pe = Pe::parse(find("export counts 0x1000000")).unwrap();
    assert!(pe
        .lief_exports()
        .is_some_and(|e| e.entries.len() <= (1 << 20)));
    // LIEF falls back on SizeOfOptionalHeader (0xE0 = PE32) when the magic is unknown.
    assert_eq!(Pe::parse(find("unknown magic")).unwrap().kind, PeKind::Pe32);
    assert!(matches!(
        Pe::parse(find("unknown magic and SizeOfOptionalHeader")),
        Err(PeError::UnknownKind {
            magic: 0x1234,
            size: 0x70
        })
    ));
    // SizeOfOptionalHeader 0: the section table is read right after the COFF header.
    let pe = Pe::parse(find("SizeOfOptionalHeader 0")).unwrap();
    assert_eq!(pe.sections.len(), 2);
    assert_ne!(pe.sections[0].name(), ".text");
}

#[test]
fn name_budget_caps_import_memory() {
    // Many thunks sharing one name: entries stop once the name-byte budget is spent.
    let mut b = tiny_pe32();
    for k in 0..8 {
        set_u32(&mut b, off::ILT_KERNEL32 + 4 * k, 0x20e0);
    }
    let lim = mallard_pe::Limits {
        max_name_bytes: 30,
        ..Default::default()
    };
    let pe = Pe::parse_with(&b, lim).unwrap();
    let t = pe.lief_imports();
    assert!(t.truncated);
    let bytes: usize = t
        .imports
        .iter()
        .flat_map(|i| &i.entries)
        .map(|e| e.name.len())
        .sum();
    assert!((22..=30).contains(&bytes), "{bytes}");
    // Without the budget all 8 ILT entries plus the IAT-continued ones are read.
    let pe = Pe::parse(&b).unwrap();
    let t = pe.lief_imports();
    assert!(!t.truncated);
    assert!(t.imports[0].entries.len() >= 8);
}

#[test]
fn rva_to_offset_skips_sections_above() {
    // Header RVAs map to themselves; RVAs in the second section do not stop at the first.
    let b = tiny_pe32();
    let pe = Pe::parse(&b).unwrap();
    assert_eq!(pe.rva_to_offset(0x10), Some(0x10));
    assert_eq!(pe.rva_to_offset(0x1004), Some(0x204));
    assert_eq!(pe.rva_to_offset(0x2150), Some(0x550));
    assert_eq!(pe.rva_to_offset(0x1300), None, "past .text raw data");
}
