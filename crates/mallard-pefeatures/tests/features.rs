//! Feature sets on the hand-laid-out PE (`mallard_pe::synth::tiny_pe32`): values computed by
//! hand from its layout; the ClaMP set against pefile (fixture) and the ClaMP CSV header.

use std::path::PathBuf;

use mallard_pe::synth::tiny_pe32;
use mallard_pefeatures::hasher::{bucket, murmur3_32};
use mallard_pefeatures::{ember_raw, ember_vectorize, extract, names, FeatureSet};
use serde_json::json;

fn shared() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

#[test]
fn ember_raw_on_tiny_pe() {
    let b = tiny_pe32();
    let raw = ember_raw(&b).unwrap();
    assert_eq!(
        raw["general"],
        json!({"size": 1536, "vsize": 12288, "has_debug": 0, "exports": 1, "imports": 1,
               "has_relocations": 0, "has_resources": 0, "has_signature": 0, "has_tls": 0, "symbols": 0})
    );
    // CPython set order of {0x2, 0x100, 0x2000}: slots 0 (0x100), 1 (0x2000 after a probe), 2 (0x2).
    assert_eq!(
        raw["header"]["coff"],
        json!({"timestamp": 0x5f00_0000u32, "machine": "I386",
        "characteristics": ["CHARA_32BIT_MACHINE", "DLL", "EXECUTABLE_IMAGE"]})
    );
    let opt = &raw["header"]["optional"];
    assert_eq!(opt["subsystem"], "WINDOWS_CUI");
    assert_eq!(
        opt["dll_characteristics"],
        json!(["DYNAMIC_BASE", "NX_COMPAT", "TERMINAL_SERVER_AWARE"])
    );
    assert_eq!(opt["magic"], "PE32");
    assert_eq!(opt["major_linker_version"], 14);
    assert_eq!(opt["minor_linker_version"], 20);
    assert_eq!(opt["major_image_version"], 1);
    assert_eq!(opt["minor_image_version"], 2);
    assert_eq!(opt["sizeof_headers"], 512);
    assert_eq!(opt["sizeof_heap_commit"], 4096);
    let sec = &raw["section"];
    assert_eq!(sec["entry"], ".text");
    assert_eq!(sec["sections"][0]["name"], ".text");
    assert_eq!(sec["sections"][0]["size"], 512);
    assert_eq!(sec["sections"][0]["vsize"], 16);
    let want = 7.0 / 16.0 * 4.0 + 9.0 / 16.0 * (16.0f64 / 9.0).log2();
    assert!((sec["sections"][0]["entropy"].as_f64().unwrap() - want).abs() < 1e-12);
    assert_eq!(
        sec["sections"][0]["props"],
        json!(["CNT_CODE", "MEM_EXECUTE", "MEM_READ"])
    );
    assert_eq!(
        sec["sections"][1]["props"],
        json!(["CNT_INITIALIZED_DATA", "MEM_READ", "MEM_WRITE"])
    );
    assert_eq!(
        raw["imports"],
        json!({"KERNEL32.dll": ["ExitProcess"], "MYLIB.dll": ["ordinal5"]})
    );
    assert_eq!(raw["exports"], json!(["Start"]));
    assert_eq!(raw["datadirectories"].as_array().unwrap().len(), 16);
    assert_eq!(
        raw["datadirectories"][0],
        json!({"name": "EXPORT_TABLE", "size": 96, "virtual_address": 8448})
    );
    assert_eq!(raw["datadirectories"][15]["name"], "RESERVED");
    // Byte histogram by hand: count zeros directly.
    let zeros = b.iter().filter(|&&x| x == 0).count();
    assert_eq!(raw["histogram"][0], zeros);
    assert_eq!(raw["strings"]["MZ"], 1);
}

#[test]
fn ember_vector_on_tiny_pe() {
    let b = tiny_pe32();
    let v = extract(FeatureSet::EmberV2, &b).unwrap();
    assert_eq!(v.len(), 2381);
    assert_eq!(
        &v[616..626],
        &[1536.0, 12288.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(v[626], 0x5f00_0000u32 as f32);
    // header.machine: FeatureHasher(10) of ["I386"] -> column 5, +1 (checked with sklearn).
    assert_eq!(
        &v[627..637],
        &[0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    );
    // sections: count, zero size, empty name, RX, W.
    assert_eq!(&v[688..693], &[2.0, 0.0, 0.0, 1.0, 1.0]);
    // imports: library "kernel32.dll" and "mylib.dll" each once in 256 columns.
    let (ik, sk) = bucket(b"kernel32.dll", 256);
    let (im, sm) = bucket(b"mylib.dll", 256);
    let mut lib = vec![0f64; 256];
    lib[ik] += sk;
    lib[im] += sm;
    for i in 0..256 {
        assert_eq!(v[943 + i], lib[i] as f32, "library column {i}");
    }
    let (ie, se) = bucket(b"Start", 128);
    assert_eq!(v[2223 + ie], se as f32);
    // data directories: EXPORT (96, 0x2100), IMPORT (60, 0x2000).
    assert_eq!(&v[2351..2355], &[96.0, 8448.0, 60.0, 8192.0]);
    // Byte histogram sums to 1.
    let s: f32 = v[..256].iter().sum();
    assert!((s - 1.0).abs() < 1e-5);
    // Vectorizing the raw object gives the same vector.
    assert_eq!(ember_vectorize(&ember_raw(&b).unwrap()).unwrap(), v);
}

#[test]
fn non_pe_gets_ember_defaults() {
    let raw = ember_raw(b"hello world, not a PE").unwrap();
    assert_eq!(raw["general"]["vsize"], 0);
    assert_eq!(raw["section"], json!({"entry": "", "sections": []}));
    assert_eq!(raw["header"]["coff"]["machine"], "");
    let v = ember_vectorize(&raw).unwrap();
    assert_eq!(v[616], 21.0);
    // Empty input: numpy divides 0 by 0.
    let v = extract(FeatureSet::EmberV2, b"").unwrap();
    assert!(v[0].is_nan() && v[256].is_nan());
    assert!(extract(FeatureSet::PeHeader, b"not a pe").is_err());
}

#[test]
fn clamp_on_tiny_pe() {
    let v = extract(FeatureSet::PeHeader, &tiny_pe32()).unwrap();
    let n = names(FeatureSet::PeHeader);
    assert_eq!(v.len(), 55);
    let get = |c: &str| v[n.iter().position(|x| x == c).unwrap()];
    assert_eq!(get("e_magic"), 23117.0);
    assert_eq!(get("e_lfanew"), 128.0);
    assert!(get("e_res").is_nan() && get("e_res2").is_nan());
    assert_eq!(get("Machine"), 332.0);
    assert_eq!(get("CreationYear"), 2020.0);
    assert_eq!(get("Characteristics"), 8450.0);
    assert_eq!(get("Magic"), 267.0);
    assert_eq!(get("ImageBase"), 4_194_304.0);
    assert_eq!(get("DllCharacteristics"), 33088.0);
    assert_eq!(get("NumberOfRvaAndSizes"), 16.0);
}

#[test]
fn saxe_on_tiny_pe() {
    let b = tiny_pe32();
    let v = extract(FeatureSet::Saxe1024, &b).unwrap();
    assert_eq!(v.len(), 1024);
    assert_eq!(names(FeatureSet::Saxe1024).len(), 1024);
    let s: f32 = v[..256].iter().sum();
    assert!((s - 1.0).abs() < 1e-5, "byte/entropy histogram sums to 1");
    let (i, _) = bucket(b"kernel32.dll:ExitProcess", 256);
    let (j, _) = bucket(b"mylib.dll:ordinal5", 256);
    assert_eq!(v[256 + i], 1.0);
    assert_eq!(v[256 + j], 1.0);
    assert_eq!(
        v[256..512].iter().filter(|&&x| x != 0.0).count(),
        if i == j { 1 } else { 2 }
    );
    let s: f32 = v[512..768].iter().sum();
    assert!((s - 1.0).abs() < 1e-5, "string histogram sums to 1");
    assert!(v[768..].iter().any(|&x| x != 0.0));
}

#[test]
fn set_names_parse() {
    for s in FeatureSet::ALL {
        assert_eq!(s.name().parse::<FeatureSet>().unwrap(), s);
        assert_eq!(names(s).len(), s.dim());
    }
    assert!("nope".parse::<FeatureSet>().is_err());
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn clamp_columns_match_csv_header() {
    let p = shared().join("data/pe-header/clamp/ClaMP_Raw-5184.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let want: Vec<&str> = header.iter().copied().filter(|c| *c != "class").collect();
    assert_eq!(names(FeatureSet::PeHeader), want);
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn clamp_matches_pefile_on_pe_benign() {
    let fixture = include_str!("fixtures/clamp_pefile_pe-benign.csv");
    let mut lines = fixture.lines();
    let cols: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(
        &cols[1..],
        names(FeatureSet::PeHeader)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
    );
    let mut rows = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let bytes = std::fs::read(shared().join("data/pe-benign").join(f[0])).unwrap();
        let v = extract(FeatureSet::PeHeader, &bytes).unwrap();
        for (k, cell) in f[1..].iter().enumerate() {
            if cell.is_empty() {
                assert!(v[k].is_nan(), "{}: {}", f[0], cols[k + 1]);
            } else {
                let want: f64 = cell.parse().unwrap();
                assert_eq!(v[k], want as f32, "{}: {}", f[0], cols[k + 1]);
            }
        }
        rows += 1;
    }
    assert_eq!(rows, 217);
}

#[test]
fn opcodes_on_tiny_pe() {
    // tiny_pe32's entry: push ebp; mov ebp, esp; xor eax, eax; pop ebp; ret (7 bytes of a
    // 0x200-byte .text). Without its exports (one of which points into the nop padding).
    let mut b = tiny_pe32();
    mallard_pe::synth::set_u32(&mut b, mallard_pe::synth::off::DATA_DIRECTORIES, 0);
    let v = extract(FeatureSet::Opcodes, &b).unwrap();
    let n = names(FeatureSet::Opcodes);
    assert_eq!(v.len(), n.len());
    assert_eq!(v.len(), FeatureSet::Opcodes.dim());
    let get = |name: &str| v[n.iter().position(|x| x == name).unwrap()];
    let log2 = |x: f64| x.log2() as f32;
    assert_eq!(get("opcodes_walked"), 1.0);
    assert_eq!(get("opcodes_x64"), 0.0);
    assert_eq!(get("opcodes_log2_instructions"), log2(6.0));
    assert_eq!(get("opcodes_log2_distinct_mnemonics"), log2(6.0));
    assert_eq!(get("opcodes_log2_entry_points"), 1.0);
    assert_eq!(get("opcodes_coverage"), 7.0 / 512.0);
    for m in ["push", "mov", "xor", "pop", "ret"] {
        assert_eq!(get(&format!("opcode_{m}")), 0.2, "{m}");
    }
    assert_eq!(get("opcode_call"), 0.0);
    // Four 2-grams, a quarter each, in the bucket MurmurHash3 gives their text.
    let mut want2 = vec![0f32; 1024];
    for g in ["push mov", "mov xor", "xor pop", "pop ret"] {
        want2[murmur3_32(g.as_bytes(), 0) as u32 as usize % 1024] += 0.25;
    }
    let at = n.iter().position(|x| x == "opcodes_2gram_hash0").unwrap();
    assert_eq!(&v[at..at + 1024], &want2[..]);
    let s3: f32 = v[at + 1024..].iter().sum();
    assert!((s3 - 1.0).abs() < 1e-6);
    // Other machines: zeros, and column 0 says the code was not walked.
    mallard_pe::synth::set_u16(&mut b, mallard_pe::synth::off::COFF, 0xaa64);
    let v = extract(FeatureSet::Opcodes, &b).unwrap();
    assert!(v.iter().all(|&x| x == 0.0));
}

/// The .NET set on a real assembly against dnfile 0.18.0's reading of it (row counts, the
/// assembly references, the P/Invoke imports), and zeros for a native file.
#[test]
#[ignore = "data: reads ../shared/data"]
fn dotnet_set_counts_what_dnfile_reads() {
    let dir = shared().join("data/pe-benign");
    let b = std::fs::read(dir.join("pythonnet__Python.Runtime.dll")).unwrap();
    let v = extract(FeatureSet::Dotnet, &b).unwrap();
    let n = names(FeatureSet::Dotnet);
    assert_eq!(v.len(), FeatureSet::Dotnet.dim());
    let get = |name: &str| v[n.iter().position(|x| x == name).unwrap()];
    let log2p = |x: f64| (x + 1.0).log2() as f32;
    assert_eq!(get("dotnet_clr_header"), 1.0);
    assert_eq!(get("dotnet_metadata_read"), 1.0);
    assert_eq!(get("dotnet_tables_read"), 1.0);
    assert_eq!(get("dotnet_metadata_version"), 4.0);
    // dnfile: TypeRef 280, TypeDef 320, MethodDef 3920, MemberRef 1297, ImplMap 16,
    // AssemblyRef 4 rows.
    for (t, rows) in [
        ("TypeRef", 280.0),
        ("TypeDef", 320.0),
        ("MethodDef", 3920.0),
        ("MemberRef", 1297.0),
        ("ImplMap", 16.0),
        ("AssemblyRef", 4.0),
    ] {
        assert_eq!(get(&format!("dotnet_log2_rows_{t}")), log2p(rows), "{t}");
    }
    // The assembly references dnfile names, hashed as EMBER hashes imports.
    let mut want = [0f32; 64];
    for a in [
        "netstandard",
        "System.Reflection.Emit",
        "System.Reflection.Emit.ILGeneration",
        "Microsoft.CSharp",
    ] {
        let (i, sign) = bucket(a.as_bytes(), 64);
        want[i] += sign as f32;
    }
    let at = n
        .iter()
        .position(|x| x == "dotnet_assemblyref_hash0")
        .unwrap();
    assert_eq!(&v[at..at + 64], &want[..]);
    // 16 P/Invoke imports: each adds ±1 to one bucket.
    let at = n.iter().position(|x| x == "dotnet_pinvoke_hash0").unwrap();
    let total: f32 = v[at..at + 256].iter().map(|x| x.abs()).sum();
    assert!(total <= 16.0 && total % 2.0 == 0.0, "{total}");
    let (i, _) = bucket(b"psapi:EnumProcessModules", 256);
    assert_ne!(v[at + i], 0.0);
    // A native file: zeros.
    let b = std::fs::read(dir.join("distlib__t32.exe")).unwrap();
    assert!(extract(FeatureSet::Dotnet, &b)
        .unwrap()
        .iter()
        .all(|&x| x == 0.0));
}

/// The hardened view by hand on the tiny PE with 100 bytes appended, a timestamp, a DOS
/// stub byte and a slack byte: the overlay is cut, those bytes are zero, the code and
/// import bytes are untouched; normalizing twice changes nothing; truncated and corrupted
/// copies never panic.
#[test]
fn hardened_view_cuts_the_overlay_and_zeroes_free_bytes() {
    use mallard_pe::synth::{off, set_u32};
    use mallard_pefeatures::hardened::{mask_raw, normalize};
    let mut b = tiny_pe32();
    set_u32(&mut b, off::COFF + 4, 0x5eed_1234); // TimeDateStamp
    b[0x50] = 0x77; // DOS stub
    b[0x300] = 0xcc; // .text slack (VirtualSize 0x10 at 0x200)
    b.extend_from_slice(&[0xab; 100]);
    let n = normalize(&b);
    assert_eq!(n.len(), off::FILE_SIZE, "cut where .idata's raw data ends");
    assert_eq!(&n[..2], b"MZ");
    assert_eq!(n[0x3c..0x40], b[0x3c..0x40], "e_lfanew kept");
    assert!(n[2..0x3c].iter().all(|&x| x == 0) && n[0x40..0x80].iter().all(|&x| x == 0));
    assert_eq!(n[off::COFF + 4..off::COFF + 8], [0, 0, 0, 0]);
    assert_eq!(n[0x300], 0);
    assert_eq!(n[0x200..0x210], b[0x200..0x210], "code kept");
    assert_eq!(
        n[off::IDATA..],
        b[off::IDATA..off::FILE_SIZE],
        "imports kept"
    );
    for i in 0..2 {
        let name = off::SECTION_TABLE + 40 * i;
        assert!(
            n[name..name + 8].iter().all(|&x| x == 0),
            "section {i} name"
        );
        assert_eq!(n[name + 8..name + 40], b[name + 8..name + 40]);
    }
    assert_eq!(normalize(&n), n);
    // The raw object says what the bytes say, and masking twice is masking once.
    let mut raw = ember_raw(&n).unwrap();
    mask_raw(&mut raw);
    assert_eq!(raw["header"]["coff"]["timestamp"], 0);
    assert_eq!(raw["general"]["size"], off::FILE_SIZE);
    assert!(raw["section"]["sections"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["name"] == ""));
    let again = {
        let mut r = raw.clone();
        mask_raw(&mut r);
        r
    };
    assert_eq!(again, raw);
    let v = extract(FeatureSet::EmberV2Hardened, &b).unwrap();
    assert_eq!(v, ember_vectorize(&raw).unwrap());
    for cut in 0..b.len() {
        let _ = extract(FeatureSet::EmberV2Hardened, &b[..cut]);
    }
    for i in 0..off::FILE_SIZE {
        let mut c = b.clone();
        c[i] ^= 0xff;
        let _ = extract(FeatureSet::EmberV2Hardened, &c);
    }
}

/// Each set's column names, pinned by the SHA-256 of their `\n`-joined list: models name
/// their columns with them, so a changed name would silently unmap a trained model's column.
/// (EMBER's names are built by hand, not with `format!`, for start-up time.)
#[test]
fn every_set_keeps_its_column_names() {
    use sha2::{Digest, Sha256};
    let pinned = [
        (
            FeatureSet::EmberV2,
            2381,
            "6a1a2b4ee6239a839303aa784af41dfdc7895cd7ea73fff2fe8ef47b1e812189",
        ),
        (
            FeatureSet::EmberV2Hardened,
            2381,
            "6a1a2b4ee6239a839303aa784af41dfdc7895cd7ea73fff2fe8ef47b1e812189",
        ),
        (
            FeatureSet::EmberV3,
            2568,
            "49decf9d0dec491a2233117a15e6bcc789db37e218b8219c62cc6efe6fc0a02b",
        ),
        (
            FeatureSet::PeHeader,
            55,
            "0eae177b93b7942c7ea9941adeba3e2234926eec145ee73b924b6885c4a8529e",
        ),
        (
            FeatureSet::Saxe1024,
            1024,
            "9d131eb70cef62a930470b59e9d05a8f80c8090c9e28a39222599f73dd1a19b9",
        ),
        (
            FeatureSet::Opcodes,
            3952,
            "5dc2a48457a49cbe9cc77d60365b2d8ae41d3622ec11b26e2d2827e5378145bb",
        ),
        (
            FeatureSet::Image,
            340,
            "2e32441b0e5aba86ddaabd7cd3daeb6d2776992fabb5cbc6f9fd1a01c02ae5e6",
        ),
        (
            FeatureSet::Dotnet,
            2443,
            "ff73076b6fcd7c64090ebae234b3ceaa13e52a5b18de1e1cb2a3c8ad8f510889",
        ),
    ];
    assert_eq!(pinned.len(), FeatureSet::ALL.len());
    for (set, len, sha) in pinned {
        let n = names(set);
        let got: String = Sha256::digest(n.join("\n").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!((n.len(), got.as_str()), (len, sha), "{set:?}");
    }
    // Spot checks by hand, numbers of one, two and four digits among them.
    let ember = names(FeatureSet::EmberV2);
    assert_eq!(ember[0], "histogram_0");
    assert_eq!(ember[256 + 16 * 3 + 11], "byteentropy_h3_n11");
    assert!(ember.contains(&"imports_function_hash1023".to_string()));
    assert!(ember.contains(&"datadirectories_EXPORT_TABLE_size".to_string()));
}

/// Every set names each column once: the scanner maps a model's columns to a set's by a
/// walk along both that relies on it (`mallard_scan`'s `column_map`).
#[test]
fn every_set_names_its_columns_once() {
    for set in FeatureSet::ALL {
        let names = mallard_pefeatures::names(set);
        let distinct: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{set:?}");
        assert!(!names.is_empty(), "{set:?}");
    }
}
