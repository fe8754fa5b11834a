//! `opcodes`: what the code reached from a PE file's entry points does, as mnemonic n-grams
//! (the features that won Microsoft's BIG 2015 challenge, here from our own walk of the code:
//! `mallard-disasm`).
//!
//! | columns | group |
//! |---|---|
//! | 0..10 | summary: walked (x86/x64), 64-bit, log2(1 + instructions), truncated by a cap, log2(1 + runs ending in bytes that do not decode), log2(1 + targets without file bytes), share of instructions outside executable sections, log2(1 + distinct mnemonics), log2(1 + entry points), reached bytes / executable section bytes (capped at 1) |
//! | 10..10+M | share of each mnemonic among the reached instructions (M: iced-x86's mnemonics) |
//! | then 1024 | 2-grams of mnemonics in address order, hashed: MurmurHash3 x86_32 (seed 0) of `"a b"`, unsigned, mod 1024; shares |
//! | then 1024 | 3-grams `"a b c"`, the same way |
//!
//! Files of other machines (ARM64, ...) and files that do not parse as PE get zeros: column 0
//! says whether the code was walked.

pub use mallard_disasm::Caps;
use mallard_disasm::{mnemonic_names, walk, Code};
use mallard_pe::Pe;

use crate::hasher::murmur3_32;
use crate::FeatureError;

const SUMMARY: usize = 10;
const GRAM_BUCKETS: usize = 1024;

/// Number of columns.
pub fn dim() -> usize {
    SUMMARY + mnemonic_names().len() + 2 * GRAM_BUCKETS
}

pub fn names() -> Vec<String> {
    let mut n: Vec<String> = [
        "opcodes_walked",
        "opcodes_x64",
        "opcodes_log2_instructions",
        "opcodes_truncated",
        "opcodes_log2_invalid_runs",
        "opcodes_log2_unmapped_targets",
        "opcodes_share_outside_executable",
        "opcodes_log2_distinct_mnemonics",
        "opcodes_log2_entry_points",
        "opcodes_coverage",
    ]
    .map(String::from)
    .to_vec();
    n.extend(mnemonic_names().iter().map(|m| format!("opcode_{m}")));
    n.extend((0..GRAM_BUCKETS).map(|i| format!("opcodes_2gram_hash{i}")));
    n.extend((0..GRAM_BUCKETS).map(|i| format!("opcodes_3gram_hash{i}")));
    n
}

pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    let pe = Pe::parse(bytes)?;
    let mut v = vec![0f32; dim()];
    if let Ok(code) = walk(&pe, &Caps::default()) {
        fill(&code, &mut v);
    }
    Ok(v)
}

fn log2p(x: usize) -> f32 {
    (x as f64 + 1.0).log2() as f32
}

/// Fills `v` (zeros, `dim()` long) from a walk.
pub fn fill(code: &Code, v: &mut [f32]) {
    let names = mnemonic_names();
    let n = code.instructions.len();
    let mut counts = vec![0u32; names.len()];
    for i in &code.instructions {
        if let Some(c) = counts.get_mut(usize::from(i.mnemonic)) {
            *c += 1;
        }
    }
    let outside = code
        .instructions
        .iter()
        .filter(|i| !i.in_executable)
        .count();
    let share = |k: usize| if n == 0 { 0.0 } else { k as f32 / n as f32 };
    let summary = [
        1.0,
        if code.bitness == 64 { 1.0 } else { 0.0 },
        log2p(n),
        if code.truncated { 1.0 } else { 0.0 },
        log2p(code.invalid),
        log2p(code.unmapped_targets),
        share(outside),
        log2p(counts.iter().filter(|&&c| c > 0).count()),
        log2p(code.starts),
        if code.executable_bytes == 0 {
            0.0
        } else {
            (code.reached_bytes() as f64 / code.executable_bytes as f64).min(1.0) as f32
        },
    ];
    v[..SUMMARY].copy_from_slice(&summary);
    let m = names.len();
    for (slot, &c) in v[SUMMARY..SUMMARY + m].iter_mut().zip(&counts) {
        *slot = share(c as usize);
    }
    let mnemonics: Vec<&str> = code.mnemonics().collect();
    let base2 = SUMMARY + m;
    for (g, base) in [(2usize, base2), (3, base2 + GRAM_BUCKETS)] {
        let grams = mnemonics.len().saturating_sub(g - 1);
        if grams == 0 {
            continue;
        }
        let weight = 1.0 / grams as f32;
        let mut key = String::new();
        for w in mnemonics.windows(g) {
            key.clear();
            for (k, part) in w.iter().enumerate() {
                if k > 0 {
                    key.push(' ');
                }
                key.push_str(part);
            }
            let h = murmur3_32(key.as_bytes(), 0) as u32 as usize % GRAM_BUCKETS;
            v[base + h] += weight;
        }
    }
}

/// The mnemonic sequence of a file's reached code, in address order (for sequence models).
pub fn sequence(bytes: &[u8], caps: &Caps) -> Result<Vec<&'static str>, FeatureError> {
    let pe = Pe::parse(bytes)?;
    let code = walk(&pe, caps).map_err(|e| FeatureError::Raw(e.to_string()))?;
    Ok(code.mnemonics().collect())
}
