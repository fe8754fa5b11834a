//! `pe-header`: ClaMP's raw PE-header columns (`ClaMP_Raw-5184.csv`, 55 features, label
//! column `class` left out), in the CSV's order and with its encodings (integers as pefile
//! reports them). `e_res` and `e_res2` are empty in every ClaMP row: emitted as NaN
//! (missing). `CreationYear` is the UTC year of TimeDateStamp. `BaseOfData` does not exist in
//! PE32+ headers: 0 there.

use mallard_pe::Pe;

use crate::FeatureError;

/// The CSV's feature columns, in order.
pub const COLUMNS: [&str; 55] = [
    "e_magic",
    "e_cblp",
    "e_cp",
    "e_crlc",
    "e_cparhdr",
    "e_minalloc",
    "e_maxalloc",
    "e_ss",
    "e_sp",
    "e_csum",
    "e_ip",
    "e_cs",
    "e_lfarlc",
    "e_ovno",
    "e_res",
    "e_oemid",
    "e_oeminfo",
    "e_res2",
    "e_lfanew",
    "Machine",
    "NumberOfSections",
    "CreationYear",
    "PointerToSymbolTable",
    "NumberOfSymbols",
    "SizeOfOptionalHeader",
    "Characteristics",
    "Magic",
    "MajorLinkerVersion",
    "MinorLinkerVersion",
    "SizeOfCode",
    "SizeOfInitializedData",
    "SizeOfUninitializedData",
    "AddressOfEntryPoint",
    "BaseOfCode",
    "BaseOfData",
    "ImageBase",
    "SectionAlignment",
    "FileAlignment",
    "MajorOperatingSystemVersion",
    "MinorOperatingSystemVersion",
    "MajorImageVersion",
    "MinorImageVersion",
    "MajorSubsystemVersion",
    "MinorSubsystemVersion",
    "SizeOfImage",
    "SizeOfHeaders",
    "CheckSum",
    "Subsystem",
    "DllCharacteristics",
    "SizeOfStackReserve",
    "SizeOfStackCommit",
    "SizeOfHeapReserve",
    "SizeOfHeapCommit",
    "LoaderFlags",
    "NumberOfRvaAndSizes",
];

pub const DIM: usize = COLUMNS.len();

pub fn names() -> Vec<String> {
    COLUMNS.iter().map(|s| s.to_string()).collect()
}

/// Year (proleptic Gregorian, UTC) of a Unix timestamp.
pub fn utc_year(ts: u32) -> i64 {
    let days = i64::from(ts) / 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    if m <= 2 {
        y + 1
    } else {
        y
    }
}

/// ClaMP raw vector of `bytes`. Needs a parsable PE header (DOS, COFF, optional header).
pub fn extract(bytes: &[u8]) -> Result<Vec<f32>, FeatureError> {
    let pe = Pe::parse(bytes)?;
    if !pe.optional_complete {
        return Err(mallard_pe::PeError::Truncated("optional header").into());
    }
    let d = &pe.dos;
    let c = &pe.coff;
    let o = &pe.optional;
    let v: [f64; DIM] = [
        d.e_magic.into(),
        d.e_cblp.into(),
        d.e_cp.into(),
        d.e_crlc.into(),
        d.e_cparhdr.into(),
        d.e_minalloc.into(),
        d.e_maxalloc.into(),
        d.e_ss.into(),
        d.e_sp.into(),
        d.e_csum.into(),
        d.e_ip.into(),
        d.e_cs.into(),
        d.e_lfarlc.into(),
        d.e_ovno.into(),
        f64::NAN,
        d.e_oemid.into(),
        d.e_oeminfo.into(),
        f64::NAN,
        d.e_lfanew.into(),
        c.machine.into(),
        c.number_of_sections.into(),
        utc_year(c.time_date_stamp) as f64,
        c.pointer_to_symbol_table.into(),
        c.number_of_symbols.into(),
        c.size_of_optional_header.into(),
        c.characteristics.into(),
        o.magic.into(),
        o.major_linker_version.into(),
        o.minor_linker_version.into(),
        o.size_of_code.into(),
        o.size_of_initialized_data.into(),
        o.size_of_uninitialized_data.into(),
        o.address_of_entry_point.into(),
        o.base_of_code.into(),
        o.base_of_data.into(),
        o.image_base as f64,
        o.section_alignment.into(),
        o.file_alignment.into(),
        o.major_operating_system_version.into(),
        o.minor_operating_system_version.into(),
        o.major_image_version.into(),
        o.minor_image_version.into(),
        o.major_subsystem_version.into(),
        o.minor_subsystem_version.into(),
        o.size_of_image.into(),
        o.size_of_headers.into(),
        o.check_sum.into(),
        o.subsystem.into(),
        o.dll_characteristics.into(),
        o.size_of_stack_reserve as f64,
        o.size_of_stack_commit as f64,
        o.size_of_heap_reserve as f64,
        o.size_of_heap_commit as f64,
        o.loader_flags.into(),
        o.number_of_rva_and_sizes.into(),
    ];
    Ok(v.iter().map(|&x| x as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years() {
        assert_eq!(utc_year(0), 1970);
        assert_eq!(utc_year(1_659_768_066), 2022); // 2022-08-06
        assert_eq!(utc_year(951_782_400), 2000); // 2000-02-29 00:00:00
        assert_eq!(utc_year(946_684_799), 1999); // 1999-12-31 23:59:59
        assert_eq!(utc_year(u32::MAX), 2106);
    }
}
