//! `saxe-1024`: four 256-column groups in the spirit of Saxe & Berlin (2015), "Deep neural
//! network based malware detection using two dimensional binary program features". The paper
//! gives the design, not code; the exact choices made here are listed in README.md.
//!
//! | columns | group |
//! |---|---|
//! | 0..256 | byte/entropy 2-D histogram: windows of 1024 bytes, step 256; row = entropy bin `min(floor(2*H), 15)` (H in bits, 0..8), column = byte >> 4; each window adds its 1024 bytes; normalised to sum 1 |
//! | 256..512 | imports: `lower(dll):function` (or `lower(dll):ordinalN`) hashed (MurmurHash3 x86_32 seed 0, `abs(h) % 256`), 1.0 where any import lands |
//! | 512..768 | strings: runs of >= 5 bytes in 0x20..=0x7f (as EMBER); row = `murmur3(string) mod 16` (unsigned), column = `min(floor(log_1.25(len / 5)), 15)`; normalised to sum 1 |
//! | 768..1024 | PE metadata: FeatureHasher(256) over `field=value` strings (machine, subsystem, flags, section names, entry section) and (field, log2(1 + value)) pairs for numeric header fields and per-section sizes/entropy |
//!
//! Files that are not PE get zeros in the import and metadata groups.

use mallard_pe::Pe;

use crate::hasher::{bucket, hash_pairs, hash_strings, murmur3_32};
use crate::FeatureError;

pub const DIM: usize = 1024;

pub fn names() -> Vec<String> {
    let mut n = Vec::with_capacity(DIM);
    for e in 0..16 {
        for b in 0..16 {
            n.push(format!("saxe_byteentropy_h{e}_n{b}"));
        }
    }
    for i in 0..256 {
        n.push(format!("saxe_import_hash{i}"));
    }
    for h in 0..16 {
        for l in 0..16 {
            n.push(format!("saxe_strings_hash{h}_len{l}"));
        }
    }
    for i in 0..256 {
        n.push(format!("saxe_meta_hash{i}"));
    }
    n
}

fn xlog2x_table() -> Vec<f64> {
    (0..=1024u32)
        .map(|c| {
            if c == 0 {
                0.0
            } else {
                f64::from(c) * f64::from(c).log2()
            }
        })
        .collect()
}

fn byte_entropy(data: &[u8], out: &mut [f32]) {
    const W: usize = 1024;
    const STEP: usize = 256;
    let tab = xlog2x_table();
    let mut hist = [0f64; 256];
    // Row of a window from its byte histogram; then every byte of the window counts once.
    let add = |h: &[u32; 256], n: usize, hist: &mut [f64; 256]| {
        if n == 0 {
            return;
        }
        let nf = n as f64;
        let s: f64 = h
            .iter()
            .map(|&c| tab.get(c as usize).copied().unwrap_or(0.0))
            .sum();
        let ent = (nf.log2() - s / nf).max(0.0);
        let row = ((ent * 2.0) as usize).min(15);
        for (k, c) in h.chunks_exact(16).enumerate() {
            hist[row * 16 + k] += f64::from(c.iter().sum::<u32>());
        }
    };
    if data.len() <= W {
        let mut h = [0u32; 256];
        for &b in data {
            h[usize::from(b)] += 1;
        }
        add(&h, data.len(), &mut hist);
    } else {
        // Slide by 256 bytes: add the incoming quarter, drop the outgoing one.
        let mut h = [0u32; 256];
        for &b in &data[..W] {
            h[usize::from(b)] += 1;
        }
        add(&h, W, &mut hist);
        let mut start = STEP;
        while start + W <= data.len() {
            for &b in &data[start - STEP..start] {
                h[usize::from(b)] = h[usize::from(b)].saturating_sub(1);
            }
            for &b in &data[start + W - STEP..start + W] {
                h[usize::from(b)] += 1;
            }
            add(&h, W, &mut hist);
            start += STEP;
        }
    }
    let total: f64 = hist.iter().sum();
    if total > 0.0 {
        for (o, &h) in out.iter_mut().zip(hist.iter()) {
            *o = (h / total) as f32;
        }
    }
}

fn strings_hist(data: &[u8], out: &mut [f32]) {
    let mut hist = [0f64; 256];
    crate::bytes::for_each_printable_run(data, |s, e| {
        if e - s >= 5 {
            let run = data.get(s..e).unwrap_or(&[]);
            let h = murmur3_32(run, 0) as u32;
            let row = (h % 16) as usize;
            let col = ((run.len() as f64 / 5.0).ln() / 1.25f64.ln())
                .floor()
                .clamp(0.0, 15.0) as usize;
            hist[row * 16 + col] += 1.0;
        }
    });
    let total: f64 = hist.iter().sum();
    if total > 0.0 {
        for (o, &h) in out.iter_mut().zip(hist.iter()) {
            *o = (h / total) as f32;
        }
    }
}

fn imports(pe: &Pe<'_>, out: &mut [f32]) {
    for table in [pe.lief_imports(), pe.lief_delay_imports()] {
        for imp in &table.imports {
            let dll = imp.name.to_ascii_lowercase();
            for e in &imp.entries {
                let key = match e.ordinal {
                    Some(o) => format!("{dll}:ordinal{o}"),
                    None => format!("{dll}:{}", e.name),
                };
                let (i, _) = bucket(key.as_bytes(), 256);
                if let Some(o) = out.get_mut(i) {
                    *o = 1.0;
                }
            }
        }
    }
}

fn metadata(pe: &Pe<'_>, bytes: &[u8], out: &mut [f32]) {
    let c = &pe.coff;
    let o = &pe.optional;
    let mut strs: Vec<String> = vec![
        format!("machine={:#x}", c.machine),
        format!("subsystem={}", o.subsystem),
        format!("magic={:#x}", o.magic),
    ];
    for bit in 0..16 {
        if c.characteristics & (1 << bit) != 0 {
            strs.push(format!("characteristics_bit={bit}"));
        }
        if o.dll_characteristics & (1 << bit) != 0 {
            strs.push(format!("dll_characteristics_bit={bit}"));
        }
    }
    for s in &pe.sections {
        strs.push(format!(
            "section_name={}",
            crate::ember::lief_str(s.name_bytes())
        ));
    }
    if let Some(s) = pe.lief_entry_section().and_then(|i| pe.sections.get(i)) {
        strs.push(format!(
            "entry_section={}",
            crate::ember::lief_str(s.name_bytes())
        ));
    }
    let l = |x: f64| (1.0 + x).log2();
    let mut pairs: Vec<(String, f64)> = vec![
        ("timestamp".into(), l(c.time_date_stamp.into())),
        ("number_of_sections".into(), l(c.number_of_sections.into())),
        ("number_of_symbols".into(), l(c.number_of_symbols.into())),
        ("size_of_code".into(), l(o.size_of_code.into())),
        (
            "size_of_initialized_data".into(),
            l(o.size_of_initialized_data.into()),
        ),
        (
            "size_of_uninitialized_data".into(),
            l(o.size_of_uninitialized_data.into()),
        ),
        (
            "address_of_entry_point".into(),
            l(o.address_of_entry_point.into()),
        ),
        ("size_of_image".into(), l(o.size_of_image.into())),
        ("size_of_headers".into(), l(o.size_of_headers.into())),
        ("checksum".into(), l(o.check_sum.into())),
        (
            "linker_version".into(),
            l(f64::from(o.major_linker_version) * 100.0 + f64::from(o.minor_linker_version)),
        ),
        (
            "os_version".into(),
            l(f64::from(o.major_operating_system_version)),
        ),
        (
            "subsystem_version".into(),
            l(f64::from(o.major_subsystem_version)),
        ),
        ("stack_reserve".into(), l(o.size_of_stack_reserve as f64)),
        ("heap_reserve".into(), l(o.size_of_heap_reserve as f64)),
        ("file_size".into(), l(bytes.len() as f64)),
    ];
    for s in &pe.sections {
        let n = crate::ember::lief_str(s.name_bytes());
        let r = s.lief_content_range(bytes.len());
        let ent = bytes.get(r).map(mallard_pe::entropy).unwrap_or(0.0);
        pairs.push((format!("section_rawsize:{n}"), l(s.size_of_raw_data.into())));
        pairs.push((format!("section_vsize:{n}"), l(s.virtual_size.into())));
        pairs.push((format!("section_entropy:{n}"), ent));
    }
    let a = hash_strings(strs.iter().map(|s| s.as_str()), 256);
    let b = hash_pairs(pairs.iter().map(|(s, v)| (s.as_str(), *v)), 256);
    for ((o, x), y) in out.iter_mut().zip(a.iter()).zip(b.iter()) {
        *o = (x + y) as f32;
    }
}

pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    let mut v = vec![0f32; DIM];
    let (g1, rest) = v.split_at_mut(256);
    let (g2, rest) = rest.split_at_mut(256);
    let (g3, g4) = rest.split_at_mut(256);
    byte_entropy(bytes, g1);
    strings_hist(bytes, g3);
    match Pe::parse(bytes) {
        Ok(pe) => {
            imports(&pe, g2);
            metadata(&pe, bytes, g4);
        }
        Err(e @ mallard_pe::PeError::TooLarge { .. }) => return Err(e.into()),
        Err(_) => {}
    }
    Ok(v)
}
