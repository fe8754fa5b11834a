//! Hand-assembled code (encodings from the Intel SDM, checked by hand) in the tiny PE of
//! `mallard_pe::synth`: `.text` is RVA 0x1000 at file offset 0x200, 0x200 bytes; exports at
//! 0x1000 and 0x1008.

use super::*;
use mallard_pe::synth::{off, set_u16, set_u32, tiny_pe32};

const TEXT: usize = 0x200;

/// The tiny PE with `code` at its entry point, 0xcc (int3) after it, and no exports.
fn with_code(code: &[u8]) -> Vec<u8> {
    let mut b = tiny_pe32();
    b[TEXT..TEXT + 0x200].fill(0xcc);
    b[TEXT..TEXT + code.len()].copy_from_slice(code);
    set_u32(&mut b, off::DATA_DIRECTORIES, 0);
    set_u32(&mut b, off::DATA_DIRECTORIES + 4, 0);
    b
}

fn run(bytes: &[u8], caps: &Caps) -> Code {
    let pe = Pe::parse(bytes).unwrap();
    walk(&pe, caps).unwrap()
}

#[rustfmt::skip]
const PROGRAM: &[u8] = &[
    0x55,                         // 1000 push ebp
    0x8b, 0xec,                   // 1001 mov ebp, esp
    0xe8, 0x08, 0x00, 0x00, 0x00, // 1003 call 1010
    0x85, 0xc0,                   // 1008 test eax, eax
    0x74, 0x02,                   // 100a je 100e
    0x5d,                         // 100c pop ebp
    0xc3,                         // 100d ret
    0xeb, 0xfc,                   // 100e jmp 100c
    0x33, 0xc0,                   // 1010 xor eax, eax
    0xc3,                         // 1012 ret
    0xb8, 0x01, 0x00, 0x00, 0x00, // 1013 mov eax, 1 (never reached)
];

#[test]
fn walks_calls_and_both_sides_of_branches_in_address_order() {
    let mut b = with_code(PROGRAM);
    set_u32(&mut b, off::DATA_DIRECTORIES, 0x2100); // the exports back: 0x1000 and 0x1008
    set_u32(&mut b, off::DATA_DIRECTORIES + 4, 0x60);
    let code = run(&b, &Caps::default());
    let names: Vec<&str> = code.mnemonics().collect();
    assert_eq!(
        names,
        ["push", "mov", "call", "test", "je", "pop", "ret", "jmp", "xor", "ret"]
    );
    let rvas: Vec<u32> = code.instructions.iter().map(|i| i.rva).collect();
    assert_eq!(
        rvas,
        [0x1000, 0x1001, 0x1003, 0x1008, 0x100a, 0x100c, 0x100d, 0x100e, 0x1010, 0x1012]
    );
    assert_eq!(code.bitness, 32);
    assert_eq!(code.starts, 2); // entry 0x1000 (also export 0), export 0x1008
    assert_eq!(code.reached_bytes(), 0x13);
    assert_eq!(code.executable_bytes, 0x200);
    assert!(code.instructions.iter().all(|i| i.in_executable));
    assert!(!code.truncated);
    assert_eq!((code.invalid, code.unmapped_targets), (0, 0));
}

#[test]
fn x64_machine_decodes_rex_prefixes() {
    // 48 89 e5: mov rbp, rsp in 64-bit mode; in 32-bit mode 48 is `dec eax`.
    let mut b = with_code(&[0x48, 0x89, 0xe5, 0xc3]);
    let c32 = run(&b, &Caps::default());
    assert_eq!(c32.mnemonics().collect::<Vec<_>>(), ["dec", "mov", "ret"]);
    set_u16(&mut b, off::COFF, 0x8664);
    let c64 = run(&b, &Caps::default());
    assert_eq!(c64.bitness, 64);
    assert_eq!(c64.mnemonics().collect::<Vec<_>>(), ["mov", "ret"]);
}

#[test]
fn other_machines_are_refused() {
    let mut b = with_code(PROGRAM);
    set_u16(&mut b, off::COFF, 0xaa64);
    let pe = Pe::parse(&b).unwrap();
    assert_eq!(
        walk(&pe, &Caps::default()),
        Err(DisasmError::Machine(0xaa64))
    );
}

#[test]
fn instruction_cap_truncates() {
    let b = with_code(&[0x90; 0x100]);
    let caps = Caps {
        max_instructions: 10,
        ..Caps::default()
    };
    let code = run(&b, &caps);
    assert_eq!(code.instructions.len(), 10);
    assert!(code.truncated);
}

#[test]
fn targets_outside_the_file_are_counted_not_followed() {
    // call 0x7fff1008 (no section there); jmp to itself (a loop ends the run); the 0xcc fill
    // after it is never reached.
    let code = run(
        &with_code(&[0xe8, 0x00, 0x00, 0xff, 0x7f, 0xeb, 0xfe]),
        &Caps::default(),
    );
    assert_eq!(code.mnemonics().collect::<Vec<_>>(), ["call", "jmp"]);
    assert_eq!(code.unmapped_targets, 1);
}

#[test]
fn bytes_that_do_not_decode_end_a_run() {
    // 0xd6 (salc) does not exist in 64-bit mode.
    let mut b = with_code(&[0x90, 0xd6, 0x90]);
    set_u16(&mut b, off::COFF, 0x8664);
    let code = run(&b, &Caps::default());
    assert_eq!(code.mnemonics().collect::<Vec<_>>(), ["nop"]);
    assert_eq!(code.invalid, 1);
}

#[test]
fn tls_callbacks_are_entry_points() {
    let mut b = with_code(PROGRAM);
    // TLS directory in .idata at RVA 0x2180 (file 0x580); AddressOfCallBacks (offset 12) =
    // VA 0x4021a0 -> array at RVA 0x21a0: [0x401013, 0].
    set_u32(&mut b, off::DATA_DIRECTORIES + 9 * 8, 0x2180);
    set_u32(&mut b, off::DATA_DIRECTORIES + 9 * 8 + 4, 0x18);
    set_u32(&mut b, 0x580 + 12, 0x40_21a0);
    set_u32(&mut b, 0x5a0, 0x40_1013);
    set_u32(&mut b, 0x5a4, 0);
    let code = run(&b, &Caps::default());
    assert_eq!(code.starts, 2);
    assert_eq!(code.mnemonics().last(), Some("int3"));
    assert!(code.instructions.iter().any(|i| i.rva == 0x1013));
}

#[test]
fn random_code_never_panics_and_stays_within_caps() {
    let mut rng = mallard_rand::SplitMix64::new(13);
    for round in 0..300 {
        let mut b = tiny_pe32();
        for x in &mut b[TEXT..TEXT + 0x200] {
            *x = rng.next_u64() as u8;
        }
        if round % 2 == 1 {
            set_u16(&mut b, off::COFF, 0x8664);
        }
        let caps = Caps {
            max_instructions: 300,
            ..Caps::default()
        };
        let code = run(&b, &caps);
        assert!(code.instructions.len() <= 300);
        let mut rvas: Vec<u32> = code.instructions.iter().map(|i| i.rva).collect();
        rvas.dedup();
        assert_eq!(rvas.len(), code.instructions.len(), "each instruction once");
    }
}
