#![no_main]
//! Every reader entry point on arbitrary bytes: must not panic, must stay bounded.
use libfuzzer_sys::fuzz_target;
use mallard_pe::{entropy, Pe};

fuzz_target!(|data: &[u8]| {
    let Ok(pe) = Pe::parse(data) else { return };
    for s in &pe.sections {
        let r = s.lief_content_range(data.len());
        let _ = data.get(r).map(entropy);
        let _ = s.name();
    }
    let _ = pe.lief_imports();
    let _ = pe.lief_delay_imports();
    let _ = pe.lief_exports();
    let _ = pe.lief_symbol_count();
    let _ = (pe.lief_has_tls(), pe.lief_has_resources(), pe.lief_has_relocations(), pe.lief_has_debug());
    let _ = (pe.has_signature(), pe.has_resource_type(16), pe.is_dotnet());
    let _ = (pe.overlay_offset(), pe.lief_entry_section(), pe.lief_virtual_size());
    for rva in [0u32, 0x1000, pe.optional.address_of_entry_point, u32::MAX] {
        let _ = pe.rva_to_offset(rva);
        let _ = pe.lief_rva_to_offset(u64::from(rva));
    }
});
