//! A tiny hand-laid-out PE32 file for tests, fuzz seeds and examples, with the offsets of
//! its fields so tests can corrupt them.
//!
//! Layout (file offset : content):
//! * 0x000 DOS header, e_lfanew = 0x80
//! * 0x080 `PE\0\0`, COFF header (i386, 2 sections, SizeOfOptionalHeader 0xE0, chars 0x0102)
//! * 0x098 PE32 optional header (AddressOfEntryPoint 0x1000, ImageBase 0x400000,
//!   SectionAlignment 0x1000, FileAlignment 0x200, SizeOfImage 0x3000, subsystem 3,
//!   DllCharacteristics 0x8140), 16 data directories: EXPORT (0x2100, 0x60),
//!   IMPORT (0x2000, 0x3c)
//! * 0x178 section headers: `.text` (VA 0x1000, VS 0x10, raw 0x200 @ 0x200, 0x60000020),
//!   `.idata` (VA 0x2000, VS 0x200, raw 0x200 @ 0x400, 0xC0000040)
//! * 0x200 `.text`: 16 bytes of code
//! * 0x400 `.idata` (RVA 0x2000): import descriptors KERNEL32.dll (ILT 0x2080: hint/name
//!   "ExitProcess") and MYLIB.dll (ILT 0x2090: ordinal 5), export directory at RVA 0x2100
//!   (DLL "tiny.dll", base 1, two functions at 0x1000 and 0x1008, one name "Start" -> ordinal
//!   index 0).

/// Offsets of fields in [`tiny_pe32`]'s output.
pub mod off {
    pub const E_LFANEW: usize = 0x3c;
    pub const COFF: usize = 0x84;
    pub const NUMBER_OF_SECTIONS: usize = 0x86;
    pub const SIZE_OF_OPTIONAL_HEADER: usize = 0x94;
    pub const OPTIONAL: usize = 0x98;
    pub const ADDRESS_OF_ENTRY_POINT: usize = 0x98 + 16;
    pub const DATA_DIRECTORIES: usize = 0x98 + 96;
    pub const SECTION_TABLE: usize = 0x178;
    pub const IDATA: usize = 0x400;
    /// First import descriptor (RVA 0x2000).
    pub const IMPORT_DESCRIPTORS: usize = 0x400;
    /// KERNEL32's import lookup table (RVA 0x2080).
    pub const ILT_KERNEL32: usize = 0x480;
    /// Export directory (RVA 0x2100).
    pub const EXPORT_DIRECTORY: usize = 0x500;
    pub const FILE_SIZE: usize = 0x600;
}

fn put16(b: &mut [u8], o: usize, v: u16) {
    if let Some(s) = b.get_mut(o..o + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put32(b: &mut [u8], o: usize, v: u32) {
    if let Some(s) = b.get_mut(o..o + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

fn put(b: &mut [u8], o: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(o..o + v.len()) {
        s.copy_from_slice(v);
    }
}

/// Write a little-endian u32 at `o` (no-op when out of range); for corrupting test files.
pub fn set_u32(b: &mut [u8], o: usize, v: u32) {
    put32(b, o, v)
}

/// Write a little-endian u16 at `o` (no-op when out of range).
pub fn set_u16(b: &mut [u8], o: usize, v: u16) {
    put16(b, o, v)
}

/// The tiny PE32 DLL described in the module docs (0x600 bytes).
pub fn tiny_pe32() -> Vec<u8> {
    let mut b = vec![0u8; off::FILE_SIZE];
    // DOS header
    put(&mut b, 0, b"MZ");
    put16(&mut b, 2, 0x90); // e_cblp
    put16(&mut b, 4, 3); // e_cp
    put16(&mut b, 8, 4); // e_cparhdr
    put16(&mut b, 12, 0xffff); // e_maxalloc
    put16(&mut b, 16, 0xb8); // e_sp
    put16(&mut b, 24, 0x40); // e_lfarlc
    put32(&mut b, off::E_LFANEW, 0x80);
    put(
        &mut b,
        0x40,
        b"This program cannot be run in DOS mode.\r\r\n$",
    );
    // PE signature + COFF
    put(&mut b, 0x80, b"PE\0\0");
    put16(&mut b, 0x84, 0x14c); // machine i386
    put16(&mut b, 0x86, 2); // sections
    put32(&mut b, 0x88, 0x5f00_0000); // timestamp (2020-07-04)
    put16(&mut b, 0x94, 0xe0); // SizeOfOptionalHeader
    put16(&mut b, 0x96, 0x2102); // EXECUTABLE_IMAGE | 32BIT_MACHINE | DLL
                                 // Optional header PE32
    let o = off::OPTIONAL;
    put16(&mut b, o, 0x10b);
    b[o + 2] = 14;
    b[o + 3] = 20;
    put32(&mut b, o + 4, 0x200); // SizeOfCode
    put32(&mut b, o + 8, 0x200); // SizeOfInitializedData
    put32(&mut b, o + 16, 0x1000); // AddressOfEntryPoint
    put32(&mut b, o + 20, 0x1000); // BaseOfCode
    put32(&mut b, o + 24, 0x2000); // BaseOfData
    put32(&mut b, o + 28, 0x40_0000); // ImageBase
    put32(&mut b, o + 32, 0x1000); // SectionAlignment
    put32(&mut b, o + 36, 0x200); // FileAlignment
    put16(&mut b, o + 40, 6); // MajorOperatingSystemVersion
    put16(&mut b, o + 44, 1); // MajorImageVersion
    put16(&mut b, o + 46, 2); // MinorImageVersion
    put16(&mut b, o + 48, 6); // MajorSubsystemVersion
    put32(&mut b, o + 56, 0x3000); // SizeOfImage
    put32(&mut b, o + 60, 0x200); // SizeOfHeaders
    put16(&mut b, o + 68, 3); // Subsystem WINDOWS_CUI
    put16(&mut b, o + 70, 0x8140); // TERMINAL_SERVER_AWARE | NX_COMPAT | DYNAMIC_BASE
    put32(&mut b, o + 72, 0x10_0000);
    put32(&mut b, o + 76, 0x1000);
    put32(&mut b, o + 80, 0x10_0000);
    put32(&mut b, o + 84, 0x1000);
    put32(&mut b, o + 92, 16); // NumberOfRvaAndSizes
    let dd = off::DATA_DIRECTORIES;
    put32(&mut b, dd, 0x2100); // EXPORT
    put32(&mut b, dd + 4, 0x60);
    put32(&mut b, dd + 8, 0x2000); // IMPORT
    put32(&mut b, dd + 12, 0x3c);
    // Section headers
    let s = off::SECTION_TABLE;
    put(&mut b, s, b".text");
    put32(&mut b, s + 8, 0x10);
    put32(&mut b, s + 12, 0x1000);
    put32(&mut b, s + 16, 0x200);
    put32(&mut b, s + 20, 0x200);
    put32(&mut b, s + 36, 0x6000_0020);
    let s = s + 40;
    put(&mut b, s, b".idata");
    put32(&mut b, s + 8, 0x200);
    put32(&mut b, s + 12, 0x2000);
    put32(&mut b, s + 16, 0x200);
    put32(&mut b, s + 20, 0x400);
    put32(&mut b, s + 36, 0xc000_0040);
    // .text: push ebp; mov ebp, esp; xor eax, eax; pop ebp; ret; then nops
    put(
        &mut b,
        0x200,
        &[
            0x55, 0x89, 0xe5, 0x31, 0xc0, 0x5d, 0xc3, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
            0x90, 0x90,
        ],
    );
    // .idata at file 0x400 = RVA 0x2000. file = rva - 0x2000 + 0x400.
    let f = |rva: usize| rva - 0x2000 + 0x400;
    // descriptor 0: KERNEL32.dll
    put32(&mut b, f(0x2000), 0x2080); // ILT
    put32(&mut b, f(0x2000) + 12, 0x20c0); // Name
    put32(&mut b, f(0x2000) + 16, 0x20a0); // IAT
                                           // descriptor 1: MYLIB.dll
    put32(&mut b, f(0x2014), 0x2090);
    put32(&mut b, f(0x2014) + 12, 0x20d0);
    put32(&mut b, f(0x2014) + 16, 0x20b0);
    // descriptor 2: zeros (terminator) at 0x2028..0x203c
    put32(&mut b, f(0x2080), 0x20e0); // ILT KERNEL32 -> hint/name
    put32(&mut b, f(0x2090), 0x8000_0005); // ILT MYLIB -> ordinal 5
    put32(&mut b, f(0x20a0), 0x20e0); // IAT copies
    put32(&mut b, f(0x20b0), 0x8000_0005);
    put(&mut b, f(0x20c0), b"KERNEL32.dll\0");
    put(&mut b, f(0x20d0), b"MYLIB.dll\0");
    put16(&mut b, f(0x20e0), 0x0123);
    put(&mut b, f(0x20e2), b"ExitProcess\0");
    // export directory at RVA 0x2100
    let e = f(0x2100);
    put32(&mut b, e + 12, 0x2140); // Name
    put32(&mut b, e + 16, 1); // OrdinalBase
    put32(&mut b, e + 20, 2); // AddressTableEntries
    put32(&mut b, e + 24, 1); // NumberOfNamePointers
    put32(&mut b, e + 28, 0x2128); // EAT
    put32(&mut b, e + 32, 0x2130); // NPT
    put32(&mut b, e + 36, 0x2134); // OT
    put32(&mut b, f(0x2128), 0x1000);
    put32(&mut b, f(0x212c), 0x1008);
    put32(&mut b, f(0x2130), 0x2150);
    put16(&mut b, f(0x2134), 0);
    put(&mut b, f(0x2140), b"tiny.dll\0");
    put(&mut b, f(0x2150), b"Start\0");
    b
}
