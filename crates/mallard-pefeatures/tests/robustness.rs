//! Malformed inputs for every feature set: truncations, bit flips and field corruptions of the
//! hand-built PE (normal suite) and of real pe-benign files (ignored: needs ../shared/data).
//! No panic (a panic fails the test) and bounded time per file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mallard_pe::synth::{off, set_u16, set_u32, tiny_pe32};
use mallard_pefeatures::{ember_raw, extract, FeatureSet};

fn run_all(b: &[u8]) -> Duration {
    let t = Instant::now();
    for s in FeatureSet::ALL {
        let r = extract(s, b);
        if let Ok(v) = &r {
            assert_eq!(v.len(), s.dim());
        }
        std::hint::black_box(r.is_ok());
    }
    std::hint::black_box(ember_raw(b).is_ok());
    t.elapsed()
}

/// `shared/data/pe-benign` (`MALLARD_SHARED` names the shared folder elsewhere).
fn pe_benign() -> PathBuf {
    match std::env::var_os("MALLARD_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
    .join("data/pe-benign")
}

/// Deterministic xorshift for reproducible corruption.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Field offsets (relative to e_lfanew-based headers of a real file) worth corrupting.
fn corruptions(b: &[u8]) -> Vec<Vec<u8>> {
    let lfanew = u32::from_le_bytes([b[0x3c], b[0x3d], b[0x3e], b[0x3f]]) as usize;
    let coff = lfanew + 4;
    let opt = coff + 20;
    let size_opt = u16::from_le_bytes([b[coff + 16], b[coff + 17]]) as usize;
    let sect = opt + size_opt;
    let is64 = b.get(opt..opt + 2) == Some(&[0x0b, 0x02]);
    let dd = opt + if is64 { 112 } else { 96 };
    let mut out = Vec::new();
    let mut v = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = b.to_vec();
        f(&mut m);
        out.push(m);
    };
    v(&|m| set_u32(m, 0x3c, 0xffff_fff0));
    v(&|m| set_u16(m, coff + 2, 0xffff));
    v(&|m| set_u16(m, coff + 16, 0));
    v(&|m| set_u16(m, coff + 16, 0xffff));
    v(&|m| set_u32(m, coff + 12, 0xffff_ffff));
    v(&|m| {
        for s in 0..8 {
            set_u32(m, sect + 40 * s + 8, 0xffff_ffff);
            set_u32(m, sect + 40 * s + 16, 0xffff_ffff);
        }
    });
    v(&|m| {
        for s in 0..8 {
            set_u32(m, sect + 40 * s + 20, 0xffff_fe00);
        }
    });
    v(&|m| {
        for k in 0..32 {
            set_u32(m, dd + 4 * k, 0xffff_ff00);
        }
    });
    v(&|m| {
        // Import directory huge and every descriptor field pointing at the directory itself.
        let rva = u32::from_le_bytes([m[dd + 8], m[dd + 9], m[dd + 10], m[dd + 11]]);
        set_u32(m, dd + 12, 0xffff_ffff);
        if let Some(off) = mallard_pe::Pe::parse(b)
            .ok()
            .and_then(|p| p.rva_to_offset(rva))
        {
            for k in 0..64 {
                set_u32(m, off + 20 * k, rva);
                set_u32(m, off + 20 * k + 16, rva);
            }
        }
    });
    v(&|m| set_u32(m, opt + 16, 0xffff_fff0));
    v(&|m| {
        set_u32(m, opt + 32, 0);
        set_u32(m, opt + 36, 0);
    });
    out
}

fn hammer(base: &[u8], truncations: usize, flips: usize, seed: u64) -> Duration {
    let mut worst = Duration::ZERO;
    let mut rng = Rng(seed);
    let step = (base.len() / truncations.max(1)).max(1);
    let mut n = 0;
    while n <= base.len() {
        worst = worst.max(run_all(&base[..n]));
        n += step;
    }
    // Every header byte is likely to matter: flip bits there densely, elsewhere sparsely.
    for k in 0..flips {
        let mut m = base.to_vec();
        let pos = if k % 2 == 0 {
            (rng.next() % 1024) as usize
        } else {
            (rng.next() as usize) % m.len()
        };
        if let Some(x) = m.get_mut(pos) {
            *x ^= 1 << (rng.next() % 8);
        }
        worst = worst.max(run_all(&m));
    }
    for m in corruptions(base) {
        worst = worst.max(run_all(&m));
    }
    worst
}

#[test]
fn malformed_tiny_pe() {
    let b = tiny_pe32();
    let mut worst = hammer(&b, b.len(), 4000, 0x9e37_79b9_7f4a_7c15);
    // Targeted: the import table looping onto itself with a 4 GB directory size.
    let mut m = b.clone();
    set_u32(&mut m, off::DATA_DIRECTORIES + 12, 0xffff_ffff);
    for k in 0..3 {
        set_u32(&mut m, off::IMPORT_DESCRIPTORS + 20 * k, 0x2000);
        set_u32(&mut m, off::IMPORT_DESCRIPTORS + 20 * k + 16, 0x2000);
    }
    worst = worst.max(run_all(&m));
    assert!(
        worst < Duration::from_millis(250),
        "slowest malformed variant: {worst:?}"
    );
}

#[test]
#[ignore = "data: reads ../shared/data"]
fn malformed_pe_benign_files() {
    let dir = pe_benign();
    let mut worst = Duration::ZERO;
    for (i, name) in [
        "distlib__t64.exe",
        "libwine__kernel32.dll",
        "pythonnet__Python.Runtime.dll",
    ]
    .iter()
    .enumerate()
    {
        let b = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        worst = worst.max(hammer(&b, 150, 300, 0x1234_5678 + i as u64));
    }
    // 2 MB file, all sets: well under a second each on this machine.
    assert!(
        worst < Duration::from_secs(2),
        "slowest malformed variant: {worst:?}"
    );
}

/// The .NET set where a .NET reader is fragile: a real assembly's CLR header, metadata root,
/// stream headers and `#~` header, flipped bit by bit and overwritten with extreme values
/// (row counts of 2^32 - 1, heap offsets past the end, stream sizes of 4 GB).
#[test]
#[ignore = "data: reads ../shared/data"]
fn malformed_dotnet_metadata() {
    let dir = pe_benign();
    let b = std::fs::read(dir.join("pythonnet__Python.Runtime.dll")).unwrap();
    let pe = mallard_pe::Pe::parse(&b).unwrap();
    let md = pe.clr_metadata().unwrap();
    let clr = pe
        .rva_to_offset(pe.data_directory(14).unwrap().virtual_address)
        .unwrap();
    let meta = pe.rva_to_offset(md.cor20.metadata.virtual_address).unwrap();
    let tables = meta + md.streams.iter().find(|s| s.name == "#~").unwrap().offset as usize;
    let dotnet = |m: &[u8]| {
        let t = Instant::now();
        if let Ok(v) = extract(FeatureSet::Dotnet, m) {
            assert_eq!(v.len(), FeatureSet::Dotnet.dim());
        }
        t.elapsed()
    };
    let mut worst = Duration::ZERO;
    let mut rng = Rng(0x51ed_2701);
    // Bit flips in the CLR header, the root and stream headers, and the #~ header with its
    // row counts.
    for k in 0..3000 {
        let mut m = b.clone();
        let pos = match k % 3 {
            0 => clr + (rng.next() % 72) as usize,
            1 => meta + (rng.next() % 128) as usize,
            _ => tables + (rng.next() % 256) as usize,
        };
        m[pos] ^= 1 << (rng.next() % 8);
        worst = worst.max(dotnet(&m));
    }
    // Extreme values over the same fields, four bytes at a time.
    for base in [clr, meta, tables] {
        for at in (base..base + 256).step_by(2) {
            for val in [0xffff_ffff, 0x8000_0000, 0x0001_0000, 0] {
                let mut m = b.clone();
                set_u32(&mut m, at, val);
                worst = worst.max(dotnet(&m));
            }
        }
    }
    assert!(
        worst < Duration::from_millis(250),
        "slowest malformed variant: {worst:?}"
    );
}
