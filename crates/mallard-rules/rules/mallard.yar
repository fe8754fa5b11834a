// mallard's shipped rules. Tags say what a match means to `mallard scan`:
//   malicious  - the match decides the verdict (malicious);
//   suspicious - the match is reported as a reason, the models decide.
import "pe"

rule eicar_test_file : malicious
{
    meta:
        description = "EICAR anti-virus test file"
    // The 68 bytes of "X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    // at offset 0, as 17 little-endian words: a rule with a string makes yara-x search the
    // whole file for it, a fifth of a large file's scan time, for a string that can only
    // count at offset 0.
    condition:
        filesize >= 68 and
        uint32(0) == 0x214f3558 and
        uint32(4) == 0x41402550 and
        uint32(8) == 0x5c345b50 and
        uint32(12) == 0x35585a50 and
        uint32(16) == 0x5e502834 and
        uint32(20) == 0x43433729 and
        uint32(24) == 0x247d3729 and
        uint32(28) == 0x41434945 and
        uint32(32) == 0x54532d52 and
        uint32(36) == 0x41444e41 and
        uint32(40) == 0x412d4452 and
        uint32(44) == 0x5649544e and
        uint32(48) == 0x53555249 and
        uint32(52) == 0x5345542d and
        uint32(56) == 0x49462d54 and
        uint32(60) == 0x2421454c and
        uint32(64) == 0x2a482b48
}

rule upx_packed : suspicious
{
    meta:
        description = "packed with UPX (section names UPX0/UPX1)"
    condition:
        pe.is_pe and for any s in pe.sections : (s.name == "UPX0" or s.name == "UPX1")
}

rule process_injection_imports : suspicious
{
    meta:
        description = "imports the classic remote-thread injection trio"
    condition:
        pe.is_pe and
        pe.imports("kernel32.dll", "VirtualAllocEx") and
        pe.imports("kernel32.dll", "WriteProcessMemory") and
        pe.imports("kernel32.dll", "CreateRemoteThread")
}

rule keylogger_imports : suspicious
{
    meta:
        description = "installs a keyboard hook and polls key state"
    condition:
        pe.is_pe and
        (pe.imports("user32.dll", "SetWindowsHookExA") or pe.imports("user32.dll", "SetWindowsHookExW")) and
        pe.imports("user32.dll", "GetAsyncKeyState")
}

rule no_sections_entry_outside : suspicious
{
    meta:
        description = "entry point outside every section (a common packer or corruption trick)"
    condition:
        pe.is_pe and pe.number_of_sections > 0 and
        not for any s in pe.sections : (
            pe.entry_point >= s.raw_data_offset and pe.entry_point < s.raw_data_offset + s.raw_data_size
        )
}
