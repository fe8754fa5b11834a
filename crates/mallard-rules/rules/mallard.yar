// mallard's shipped rules. Tags say what a match means to `mallard scan`:
//   malicious  - the match decides the verdict (malicious);
//   suspicious - the match is reported as a reason, the models decide.
import "pe"

rule eicar_test_file : malicious
{
    meta:
        description = "EICAR anti-virus test file"
    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    condition:
        $eicar at 0
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
