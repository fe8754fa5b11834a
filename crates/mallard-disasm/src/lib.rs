//! mallard-disasm: the x86 and x64 instructions that a PE file's entry points reach.
//!
//! A recursive walk, as disassemblers of malware do it: from the entry point, the exported
//! functions and the TLS callbacks, decode until a return, an unconditional or indirect jump,
//! or bytes that do not decode, and queue the targets of direct calls and branches. Nothing is
//! executed and nothing is guessed (no linear sweep over data, no jump tables). Caps bound the
//! work on hostile files: instructions decoded, and an optional wall-clock deadline; a capped
//! walk says so in [`Code::truncated`].
//!
//! ```no_run
//! let bytes = std::fs::read("some.exe").unwrap();
//! let pe = mallard_pe::Pe::parse(&bytes).unwrap();
//! let code = mallard_disasm::walk(&pe, &mallard_disasm::Caps::default()).unwrap();
//! let first: Vec<&str> = code.mnemonics().take(5).collect();
//! ```

#![forbid(unsafe_code)]

use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction as IcedInstruction, Mnemonic, OpKind,
};
use mallard_pe::{dir, scn, Pe};
use std::collections::{HashSet, VecDeque};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Why a file was not walked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DisasmError {
    /// Not x86 or x64 code (ARM64, ARM, Itanium, ...).
    #[error("machine 0x{0:04x} is not x86 or x64")]
    Machine(u16),
}

/// Limits on one walk.
#[derive(Clone, Debug)]
pub struct Caps {
    /// Instructions decoded, in all (the walk stops there and sets `truncated`).
    pub max_instructions: usize,
    /// TLS callbacks read from the TLS directory.
    pub max_tls_callbacks: usize,
    /// Wall-clock time for one walk; `None`: instructions only (the result is then the same
    /// on every machine).
    pub max_time: Option<Duration>,
}

impl Default for Caps {
    fn default() -> Self {
        // 100,000 instructions take about 10 ms; far more than the code of most entry paths
        // of small programs, and a bound on what one hostile file can cost.
        Caps {
            max_instructions: 100_000,
            max_tls_callbacks: 64,
            max_time: Some(Duration::from_secs(2)),
        }
    }
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub rva: u32,
    pub len: u8,
    /// Index of the mnemonic in [`mnemonic_names`].
    pub mnemonic: u16,
    /// Whether the bytes lie in a section marked executable (code reached in a data section
    /// is what packers and shellcode do).
    pub in_executable: bool,
}

/// The result of a walk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Code {
    /// 32 or 64.
    pub bitness: u32,
    /// Reached instructions in address order.
    pub instructions: Vec<Instruction>,
    /// Entry points the walk started from (entry, exports, TLS callbacks).
    pub starts: usize,
    /// Runs that ended in bytes that do not decode (or that the file cuts short).
    pub invalid: usize,
    /// Branch or call targets with no file bytes behind them (outside the image, in a
    /// zero-filled tail, or above 4 GiB).
    pub unmapped_targets: usize,
    /// Bytes of the sections marked executable that the file holds.
    pub executable_bytes: usize,
    /// A cap stopped the walk.
    pub truncated: bool,
}

impl Code {
    /// The mnemonics of the reached instructions in address order (`mov`, `call`, ...).
    pub fn mnemonics(&self) -> impl Iterator<Item = &'static str> + '_ {
        let names = mnemonic_names();
        self.instructions.iter().map(move |i| {
            names
                .get(usize::from(i.mnemonic))
                .map_or("invalid", String::as_str)
        })
    }

    /// Bytes covered by the reached instructions.
    pub fn reached_bytes(&self) -> usize {
        self.instructions.iter().map(|i| usize::from(i.len)).sum()
    }
}

/// Lower-case mnemonic names, indexed by [`Instruction::mnemonic`] (iced-x86's order; index
/// 0 is `invalid`).
pub fn mnemonic_names() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        Mnemonic::values()
            .map(|m| format!("{m:?}").to_ascii_lowercase())
            .collect()
    })
}

/// Walks the code of `pe` from its entry points.
pub fn walk(pe: &Pe, caps: &Caps) -> Result<Code, DisasmError> {
    let bitness = match pe.coff.machine {
        0x14c => 32,
        0x8664 => 64,
        m => return Err(DisasmError::Machine(m)),
    };
    let starts = entry_points(pe, caps);
    let mut code = Code {
        bitness,
        starts: starts.len(),
        executable_bytes: executable_bytes(pe),
        ..Code::default()
    };
    let deadline = caps.max_time.map(|t| Instant::now() + t);
    let mut seen: HashSet<u32> = HashSet::new();
    let mut queue: VecDeque<u32> = starts.into_iter().collect();
    let mut insn = IcedInstruction::default();
    // Breadth first: when a cap stops the walk, what it kept is the code nearest the entries.
    'walk: while let Some(start) = queue.pop_front() {
        if seen.contains(&start) {
            continue;
        }
        let Some((_, bytes)) = pe.rva_bytes(start) else {
            code.unmapped_targets += 1;
            continue;
        };
        let in_executable = section_executable(pe, start);
        let mut decoder = Decoder::with_ip(bitness, bytes, u64::from(start), DecoderOptions::NONE);
        while decoder.can_decode() {
            let Ok(rva) = u32::try_from(decoder.ip()) else {
                break;
            };
            if seen.contains(&rva) {
                break; // joined code already walked
            }
            if code.instructions.len() >= caps.max_instructions
                || (code.instructions.len() % 1024 == 1023
                    && deadline.is_some_and(|d| Instant::now() > d))
            {
                code.truncated = true;
                break 'walk;
            }
            decoder.decode_out(&mut insn);
            if insn.is_invalid() {
                code.invalid += 1;
                break;
            }
            seen.insert(rva);
            code.instructions.push(Instruction {
                rva,
                len: insn.len() as u8,
                mnemonic: insn.mnemonic() as u16,
                in_executable,
            });
            let mut follow = |target: u64, code: &mut Code| match u32::try_from(target) {
                Ok(t) if pe.rva_bytes(t).is_some() => queue.push_back(t),
                _ => code.unmapped_targets += 1,
            };
            match insn.flow_control() {
                FlowControl::Next | FlowControl::IndirectCall => {}
                FlowControl::Call
                | FlowControl::ConditionalBranch
                | FlowControl::XbeginXabortXend => {
                    if near_branch(&insn) {
                        follow(insn.near_branch_target(), &mut code);
                    }
                }
                FlowControl::UnconditionalBranch => {
                    if near_branch(&insn) {
                        follow(insn.near_branch_target(), &mut code);
                    }
                    break;
                }
                FlowControl::Interrupt => {
                    // int3 is padding or a breakpoint; other interrupts return.
                    if insn.mnemonic() == Mnemonic::Int3 {
                        break;
                    }
                }
                // Return, IndirectBranch, Exception (ud2 and the like), and any kind added later.
                _ => break,
            }
        }
    }
    code.instructions.sort_unstable_by_key(|i| i.rva);
    Ok(code)
}

fn near_branch(insn: &IcedInstruction) -> bool {
    matches!(
        insn.op0_kind(),
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64
    )
}

/// Entry point, exported functions, TLS callbacks: each RVA once, in that order.
fn entry_points(pe: &Pe, caps: &Caps) -> Vec<u32> {
    let mut out = Vec::new();
    let mut add = |rva: u32| {
        if rva != 0 && !out.contains(&rva) && pe.rva_bytes(rva).is_some() {
            out.push(rva);
        }
    };
    add(pe.optional.address_of_entry_point);
    if let Some(exports) = pe.lief_exports() {
        for e in exports.entries.iter().filter(|e| !e.forwarded) {
            add(e.address);
        }
    }
    for rva in tls_callbacks(pe, caps.max_tls_callbacks) {
        add(rva);
    }
    out
}

/// RVAs of the TLS callbacks: the TLS directory's AddressOfCallBacks is a virtual address of
/// a zero-terminated array of virtual addresses.
fn tls_callbacks(pe: &Pe, max: usize) -> Vec<u32> {
    let Some(d) = pe
        .data_directory(dir::TLS)
        .filter(|d| d.virtual_address != 0)
    else {
        return Vec::new();
    };
    let wide = pe.is_pe32_plus();
    let word = if wide { 8 } else { 4 };
    let read = |bytes: &[u8], at: usize| -> Option<u64> {
        let b = bytes.get(at..at + word)?;
        Some(if wide {
            u64::from_le_bytes(b.try_into().ok()?)
        } else {
            u64::from(u32::from_le_bytes(b.try_into().ok()?))
        })
    };
    let base = pe.optional.image_base;
    let to_rva = |va: u64| va.checked_sub(base).and_then(|r| u32::try_from(r).ok());
    let Some((_, tls)) = pe.rva_bytes(d.virtual_address) else {
        return Vec::new();
    };
    let Some(array) = read(tls, 3 * word).and_then(to_rva) else {
        return Vec::new();
    };
    let Some((_, list)) = pe.rva_bytes(array) else {
        return Vec::new();
    };
    (0..max)
        .map_while(|i| read(list, i * word).filter(|&va| va != 0))
        .filter_map(to_rva)
        .collect()
}

/// Whether the section that maps `rva` (the loader's rule, as in `Pe::rva_bytes`) is
/// marked executable; header bytes are not.
fn section_executable(pe: &Pe, rva: u32) -> bool {
    pe.sections
        .iter()
        .find(|s| {
            rva.checked_sub(s.virtual_address)
                .is_some_and(|d| d < s.virtual_size.max(s.size_of_raw_data))
        })
        .is_some_and(|s| s.characteristics & scn::MEM_EXECUTE != 0)
}

fn executable_bytes(pe: &Pe) -> usize {
    let len = pe.data().len();
    pe.sections
        .iter()
        .filter(|s| s.characteristics & scn::MEM_EXECUTE != 0)
        .map(|s| {
            let start = (s.pointer_to_raw_data as usize).min(len);
            let end = start.saturating_add(s.size_of_raw_data as usize).min(len);
            end - start
        })
        .sum()
}

#[cfg(test)]
mod tests;
