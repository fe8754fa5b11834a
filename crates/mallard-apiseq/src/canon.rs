//! Other names of the same API call, so that a model trained on one sandbox's vocabulary can
//! read another sandbox's report.
//!
//! Cuckoo's monitor and CAPE's capemon hook different layers and different functions for the
//! same operation: `CreateProcessA` or `CreateProcessInternalW`, `NtWriteVirtualMemory` or
//! `WriteProcessMemory`, `LoadLibraryExW` or `LdrLoadDll`. A model never saw the names of the
//! other sandbox and ignores them, so their evidence is lost.
//!
//! Names are mapped **into a given vocabulary** ([`resolve`], [`map_sequence`]): a name the
//! vocabulary holds stays as it is; any other name is replaced by the first of its
//! [`variants`] that the vocabulary holds, or left alone (and ignored by the model, as
//! before) when it holds none. So a model keeps its exact behaviour on inputs written in its
//! own vocabulary, and no retraining is needed.
//!
//! The variants of a name, nearest first:
//! 1. the general rules ([`rule_variants`]): the other character set (`A` <-> `W`, or none),
//!    with or without `Ex`, then the same with `Nt` <-> `Zw` (the user-mode `Nt` and `Zw` stubs
//!    of a system call are the same code);
//! 2. the other members of each row of [`TABLE`] that holds the name (up to the rules above),
//!    each as written and then with its rule variants.
//!
//! Rows are not merged transitively: `BCryptImportKey` and `BCryptImportKeyPair` both map to
//! `CryptImportKey`, never to each other. Every row says why its calls are one operation; a
//! call that only *resembles* another (`NtWaitForSingleObject` and `NtDelayExecution`,
//! `PostMessageW` and `SendNotifyMessageW`, `LockResource` and `LoadResource`) is not listed.
//! `docs/api-names.md` gives the table with the measured effect on CAPE reports.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// One row of the table: names of one operation, in the order they are tried as targets.
#[derive(Debug, Clone, Copy)]
pub struct Equivalence {
    /// Names as a sandbox logs them; the general rules cover their `A`/`W`, `Ex` and
    /// `Nt`/`Zw` spellings, so `LoadLibrary` stands for `LoadLibraryA` ... `LoadLibraryExW`.
    pub names: &'static [&'static str],
    /// Why these are one operation.
    pub why: &'static str,
}

const fn row(names: &'static [&'static str], why: &'static str) -> Equivalence {
    Equivalence { names, why }
}

/// Calls that are the same operation under different names. Win32 names come first in a row
/// because that is the layer Cuckoo-trained vocabularies mostly hold.
pub const TABLE: &[Equivalence] = &[
    // Loader: kernel32/kernelbase wrappers over ntdll's loader.
    row(&["LoadLibrary", "LdrLoadDll"], "LoadLibrary{A,W,ExA,ExW} load a DLL through ntdll!LdrLoadDll"),
    row(&["GetModuleHandle", "LdrGetDllHandle"], "GetModuleHandle{A,W,ExA,ExW} look a loaded DLL up through LdrGetDllHandle(Ex)"),
    row(&["GetProcAddress", "LdrGetProcedureAddress", "LdrGetProcedureAddressForCaller"], "GetProcAddress resolves an export through LdrGetProcedureAddressForCaller, which LdrGetProcedureAddress(Ex) also wrap"),
    row(&["FreeLibrary", "LdrUnloadDll"], "FreeLibrary unloads a DLL through LdrUnloadDll"),
    // Processes and threads.
    row(&["CreateProcessInternalW", "CreateProcess", "WinExec", "NtCreateUserProcess"], "CreateProcess{A,W} and WinExec run CreateProcessInternal{A,W}, which creates the process with NtCreateUserProcess"),
    row(&["OpenProcess", "NtOpenProcess"], "OpenProcess wraps NtOpenProcess"),
    row(&["OpenThread", "NtOpenThread"], "OpenThread wraps NtOpenThread"),
    row(&["TerminateProcess", "NtTerminateProcess"], "TerminateProcess wraps NtTerminateProcess"),
    row(&["TerminateThread", "NtTerminateThread"], "TerminateThread wraps NtTerminateThread"),
    row(&["SuspendThread", "NtSuspendThread"], "SuspendThread wraps NtSuspendThread"),
    row(&["ResumeThread", "NtResumeThread"], "ResumeThread wraps NtResumeThread"),
    row(&["GetThreadContext", "NtGetContextThread"], "GetThreadContext wraps NtGetContextThread"),
    row(&["SetThreadContext", "NtSetContextThread"], "SetThreadContext wraps NtSetContextThread"),
    row(&["QueueUserAPC", "NtQueueApcThread"], "QueueUserAPC wraps NtQueueApcThread(Ex)"),
    row(&["OpenProcessToken", "NtOpenProcessToken"], "OpenProcessToken wraps NtOpenProcessToken(Ex)"),
    row(&["GetTokenInformation", "NtQueryInformationToken"], "GetTokenInformation wraps NtQueryInformationToken"),
    row(&["AdjustTokenPrivileges", "NtAdjustPrivilegesToken"], "AdjustTokenPrivileges wraps NtAdjustPrivilegesToken"),
    // Memory.
    row(&["WriteProcessMemory", "NtWriteVirtualMemory", "NtWow64WriteVirtualMemory64"], "WriteProcessMemory wraps NtWriteVirtualMemory; the Wow64 form is the same write from a 32-bit process into a 64-bit address space"),
    row(&["ReadProcessMemory", "NtReadVirtualMemory", "NtWow64ReadVirtualMemory64"], "ReadProcessMemory wraps NtReadVirtualMemory; the Wow64 form is the same read from a 32-bit process"),
    row(&["VirtualAlloc", "NtAllocateVirtualMemory"], "VirtualAlloc(Ex) wrap NtAllocateVirtualMemory(Ex)"),
    row(&["VirtualProtect", "NtProtectVirtualMemory"], "VirtualProtect(Ex) wrap NtProtectVirtualMemory"),
    row(&["VirtualFree", "NtFreeVirtualMemory"], "VirtualFree(Ex) wrap NtFreeVirtualMemory"),
    row(&["CreateFileMapping", "NtCreateSection"], "CreateFileMapping{A,W} create a section with NtCreateSection"),
    row(&["OpenFileMapping", "NtOpenSection"], "OpenFileMapping{A,W} wrap NtOpenSection"),
    row(&["MapViewOfFile", "NtMapViewOfSection"], "MapViewOfFile(Ex) wrap NtMapViewOfSection"),
    row(&["UnmapViewOfFile", "NtUnmapViewOfSection"], "UnmapViewOfFile(Ex) wrap NtUnmapViewOfSection(Ex)"),
    row(&["HeapCreate", "RtlCreateHeap"], "HeapCreate wraps RtlCreateHeap"),
    row(&["HeapAlloc", "RtlAllocateHeap"], "kernel32!HeapAlloc is forwarded to ntdll!RtlAllocateHeap"),
    // Files and devices.
    row(&["CreateFile", "NtCreateFile"], "CreateFile{A,W} open or create a file with NtCreateFile"),
    row(&["ReadFile", "NtReadFile"], "ReadFile(Ex) wrap NtReadFile"),
    row(&["WriteFile", "NtWriteFile"], "WriteFile(Ex) wrap NtWriteFile"),
    row(&["DeleteFile", "NtDeleteFile"], "both delete a file by name"),
    row(&["MoveFileWithProgress", "MoveFile", "MoveFileWithProgressTransacted", "MoveFileTransacted"], "MoveFile(Ex) run MoveFileWithProgress; the Transacted forms are the same move inside a KTM transaction"),
    row(&["CopyFile", "CopyFileTransacted", "CopyFile2"], "CopyFile runs CopyFileEx; CopyFileTransacted is the same copy inside a transaction, CopyFile2 its newer interface"),
    row(&["GetFileAttributes", "NtQueryAttributesFile", "NtQueryFullAttributesFile"], "GetFileAttributes{A,W} wrap NtQueryAttributesFile, GetFileAttributesEx{A,W} NtQueryFullAttributesFile: the same query, basic or full"),
    row(&["DeviceIoControl", "NtDeviceIoControlFile"], "DeviceIoControl wraps NtDeviceIoControlFile"),
    row(&["GetVolumeInformation", "GetVolumeInformationByHandle"], "the same volume query, by root path or by an open handle"),
    row(&["FindFirstChangeNotification", "NtNotifyChangeDirectoryFile"], "FindFirstChangeNotification{A,W} watch a folder through NtNotifyChangeDirectoryFile"),
    row(&["CreateNamedPipe", "NtCreateNamedPipeFile"], "CreateNamedPipe{A,W} wrap NtCreateNamedPipeFile"),
    // Registry: advapi32 wrappers over the native key calls.
    row(&["RegOpenKey", "NtOpenKey"], "RegOpenKey(Ex){A,W} open a key with NtOpenKey(Ex)"),
    row(&["RegCreateKey", "NtCreateKey"], "RegCreateKey(Ex){A,W} wrap NtCreateKey"),
    row(&["RegQueryValue", "RegGetValue", "NtQueryValueKey"], "RegQueryValue(Ex) and RegGetValue{A,W} read a value with NtQueryValueKey"),
    row(&["RegSetValue", "RegSetKeyValue", "NtSetValueKey"], "RegSetValue(Ex) and RegSetKeyValue{A,W} write a value with NtSetValueKey"),
    row(&["RegDeleteKey", "NtDeleteKey"], "RegDeleteKey(Ex){A,W} wrap NtDeleteKey"),
    row(&["RegDeleteValue", "NtDeleteValueKey"], "RegDeleteValue{A,W} wrap NtDeleteValueKey"),
    row(&["RegEnumKey", "NtEnumerateKey"], "RegEnumKey(Ex){A,W} wrap NtEnumerateKey"),
    row(&["RegEnumValue", "NtEnumerateValueKey"], "RegEnumValue{A,W} wrap NtEnumerateValueKey"),
    row(&["RegQueryInfoKey", "NtQueryKey"], "RegQueryInfoKey{A,W} wrap NtQueryKey"),
    row(&["RegNotifyChangeKeyValue", "NtNotifyChangeKey"], "RegNotifyChangeKeyValue wraps NtNotifyChangeKey"),
    row(&["RegLoadKey", "NtLoadKey"], "RegLoadKey{A,W} load a hive with NtLoadKey"),
    // Synchronisation.
    row(&["CreateMutex", "NtCreateMutant"], "CreateMutex(Ex){A,W} wrap NtCreateMutant"),
    row(&["OpenMutex", "NtOpenMutant"], "OpenMutex{A,W} wrap NtOpenMutant"),
    row(&["ReleaseMutex", "NtReleaseMutant"], "ReleaseMutex wraps NtReleaseMutant"),
    row(&["CreateEvent", "NtCreateEvent"], "CreateEvent(Ex){A,W} wrap NtCreateEvent"),
    row(&["OpenEvent", "NtOpenEvent"], "OpenEvent{A,W} wrap NtOpenEvent"),
    row(&["WaitForSingleObject", "NtWaitForSingleObject"], "WaitForSingleObject(Ex) wrap NtWaitForSingleObject"),
    row(&["WaitForMultipleObjects", "NtWaitForMultipleObjects"], "WaitForMultipleObjects(Ex) wrap NtWaitForMultipleObjects"),
    row(&["Sleep", "NtDelayExecution"], "Sleep(Ex) wrap NtDelayExecution"),
    row(&["SwitchToThread", "NtYieldExecution"], "SwitchToThread wraps NtYieldExecution"),
    row(&["CreateWaitableTimer", "NtCreateTimer"], "CreateWaitableTimer(Ex){A,W} wrap NtCreateTimer"),
    row(&["SetWaitableTimer", "NtSetTimer"], "SetWaitableTimer(Ex) wrap NtSetTimer(Ex)"),
    row(&["GlobalAddAtom", "NtAddAtom"], "GlobalAddAtom{A,W}(Ex) add to the global atom table with NtAddAtom(Ex)"),
    row(&["GlobalFindAtom", "NtFindAtom"], "GlobalFindAtom{A,W} wrap NtFindAtom"),
    row(&["GlobalDeleteAtom", "NtDeleteAtom"], "GlobalDeleteAtom wraps NtDeleteAtom"),
    row(&["CreateTransaction", "NtCreateTransaction"], "CreateTransaction wraps NtCreateTransaction"),
    row(&["CommitTransaction", "NtCommitTransaction"], "CommitTransaction wraps NtCommitTransaction"),
    // Clocks: the same reading in another format.
    row(&["GetSystemTimeAsFileTime", "NtQuerySystemTime", "GetSystemTime", "GetSystemTimePreciseAsFileTime", "GetLocalTime"], "all read the current wall-clock time from the same system clock: as a FILETIME, as a SYSTEMTIME, or as local time (the same reading shifted by the time-zone offset)"),
    row(&["GetTickCount", "timeGetTime"], "both return the milliseconds since Windows started"),
    // Identity of the machine, shell folders.
    row(&["GetComputerName", "gethostname", "GetHostName"], "GetComputerName(Ex){A,W} read this machine's name; Winsock's gethostname/GetHostNameW read it through GetComputerNameEx"),
    row(&["SHGetFolderPath", "SHGetKnownFolderPath", "SHGetSpecialFolderPath"], "all return the path of a shell folder; SHGetFolderPath and SHGetSpecialFolderPath are implemented over SHGetKnownFolderPath"),
    row(&["SHGetSpecialFolderLocation", "SHGetFolderLocation", "SHGetKnownFolderIDList"], "all return a shell folder as an item-ID list"),
    // Winsock: the WSA and extension forms of the BSD calls.
    row(&["connect", "WSAConnect", "ConnectEx"], "all connect a socket; ConnectEx is the overlapped extension"),
    row(&["accept", "WSAAccept", "AcceptEx"], "all accept a connection on a listening socket"),
    row(&["socket", "WSASocket"], "socket() creates the socket with WSASocket"),
    row(&["send", "WSASend"], "both send on a connected socket"),
    row(&["recv", "WSARecv"], "both receive on a connected socket"),
    row(&["sendto", "WSASendTo"], "both send a datagram"),
    row(&["recvfrom", "WSARecvFrom"], "both receive a datagram"),
    row(&["getaddrinfo", "GetAddrInfo", "gethostbyname"], "all resolve a host name to addresses; GetAddrInfoW/GetAddrInfoExW are the Unicode and extended forms of getaddrinfo"),
    // HTTP: WinHTTP's calls do what WinINet's do, step for step.
    row(&["InternetOpen", "WinHttpOpen"], "open an HTTP client session"),
    row(&["InternetConnect", "WinHttpConnect"], "name the server of an HTTP session"),
    row(&["HttpOpenRequest", "WinHttpOpenRequest"], "create an HTTP request (verb, path, flags)"),
    row(&["HttpSendRequest", "WinHttpSendRequest"], "send an HTTP request"),
    row(&["HttpQueryInfo", "WinHttpQueryHeaders"], "read the response headers"),
    row(&["InternetReadFile", "WinHttpReadData"], "read the response body"),
    row(&["InternetWriteFile", "WinHttpWriteData"], "write the request body"),
    row(&["InternetSetOption", "WinHttpSetOption", "WinHttpSetTimeouts"], "set a session or request option; WinHttpSetTimeouts sets the timeout options"),
    row(&["InternetCloseHandle", "WinHttpCloseHandle"], "close an HTTP handle"),
    row(&["InternetCrackUrl", "WinHttpCrackUrl"], "split a URL into its parts"),
    row(&["InternetCanonicalizeUrl", "UrlCanonicalize"], "canonicalise a URL"),
    // TLS and cryptography: SSPI/CryptoAPI calls and the CNG calls under them.
    row(&["EncryptMessage", "SslEncryptPacket"], "Schannel's EncryptMessage encrypts a TLS record with ncrypt!SslEncryptPacket"),
    row(&["DecryptMessage", "SslDecryptPacket"], "Schannel's DecryptMessage decrypts a TLS record with ncrypt!SslDecryptPacket"),
    row(&["CryptEncrypt", "BCryptEncrypt"], "encrypt with a key (CryptoAPI or CNG)"),
    row(&["CryptDecrypt", "BCryptDecrypt"], "decrypt with a key (CryptoAPI or CNG)"),
    row(&["CryptCreateHash", "BCryptCreateHash"], "create a hash object (CryptoAPI or CNG)"),
    row(&["CryptHashData", "BCryptHashData"], "hash data (CryptoAPI or CNG)"),
    row(&["CryptDestroyHash", "BCryptDestroyHash"], "free a hash object (CryptoAPI or CNG)"),
    row(&["CryptDestroyKey", "BCryptDestroyKey"], "free a key (CryptoAPI or CNG)"),
    row(&["CryptImportKey", "BCryptImportKey"], "import a symmetric key blob (CryptImportKey takes either kind)"),
    row(&["CryptImportKey", "BCryptImportKeyPair"], "import a key-pair blob (CryptImportKey takes either kind)"),
    row(&["CryptExportKey", "BCryptExportKey"], "export a key blob (CryptoAPI or CNG)"),
    row(&["CryptGenRandom", "BCryptGenRandom", "RtlGenRandom", "SystemFunction036"], "fill a buffer with random bytes from the system generator (SystemFunction036 is RtlGenRandom's export name)"),
];

/// How a name meets a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The vocabulary holds the name itself.
    Known,
    /// The vocabulary holds this other name of the same call.
    Mapped(String),
    /// Neither the name nor any of its variants.
    Unknown,
}

/// Counts over the distinct names of a sequence, as [`map_sequence`] found them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NameCounts {
    pub distinct: usize,
    /// In the vocabulary as they are.
    pub known: usize,
    /// Read as another name of the same call that the vocabulary holds.
    pub mapped: usize,
    /// Neither: the model ignores them (or reads them as its out-of-vocabulary token).
    pub unseen: usize,
}

/// A sequence brought into a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedNames<'a> {
    /// The calls, each mapped name replaced; borrowed when nothing was replaced.
    pub apis: Cow<'a, [String]>,
    pub counts: NameCounts,
}

/// `name` against a vocabulary (`knows`): kept, mapped to the first variant the vocabulary
/// holds, or unknown.
pub fn resolve(name: &str, knows: impl Fn(&str) -> bool) -> Resolved {
    if knows(name) {
        return Resolved::Known;
    }
    match variants(name).into_iter().find(|v| knows(v)) {
        Some(v) => Resolved::Mapped(v),
        None => Resolved::Unknown,
    }
}

/// Every call of `apis` the vocabulary does not hold replaced by its [`resolve`]d name
/// (each distinct name is resolved once), with counts over the distinct names.
pub fn map_sequence<'a>(apis: &'a [String], knows: impl Fn(&str) -> bool) -> MappedNames<'a> {
    let mut seen: HashMap<&str, Resolved> = HashMap::new();
    let mut counts = NameCounts::default();
    for a in apis {
        if seen.contains_key(a.as_str()) {
            continue;
        }
        let r = resolve(a, &knows);
        counts.distinct += 1;
        match r {
            Resolved::Known => counts.known += 1,
            Resolved::Mapped(_) => counts.mapped += 1,
            Resolved::Unknown => counts.unseen += 1,
        }
        seen.insert(a.as_str(), r);
    }
    if counts.mapped == 0 {
        return MappedNames {
            apis: Cow::Borrowed(apis),
            counts,
        };
    }
    let out = apis
        .iter()
        .map(|a| match seen.get(a.as_str()) {
            Some(Resolved::Mapped(to)) => to.clone(),
            _ => a.clone(),
        })
        .collect();
    MappedNames {
        apis: Cow::Owned(out),
        counts,
    }
}

/// The names `name` may be read as, nearest first, without `name` itself: its
/// [`rule_variants`], then the other names of its [`TABLE`] rows with their rule variants.
pub fn variants(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let push = |v: String, out: &mut Vec<String>| {
        if v != name && !out.contains(&v) {
            out.push(v);
        }
    };
    for v in rule_variants(name) {
        push(v, &mut out);
    }
    let key = stem_key(name);
    for &r in rows_of(&key) {
        let Some(row) = TABLE.get(r) else { continue };
        for &member in row.names {
            if stem_key(member) == key {
                continue;
            }
            push(member.to_string(), &mut out);
            for v in rule_variants(member) {
                push(v, &mut out);
            }
        }
    }
    out
}

/// The spellings the general rules give for `name`, nearest first, without `name` itself:
/// the other character sets (`W`, `A`, none), then with `Ex` added or removed (same set
/// first), then all of that again with `Nt` <-> `Zw`. Only CamelCase names (an upper-case
/// first letter) have such spellings: `memcpy` or `__exception__` have none.
pub fn rule_variants(name: &str) -> Vec<String> {
    let Some(p) = Parts::of(name) else {
        return Vec::new();
    };
    // Native calls have no character sets; Win32 ones try the other set, then none.
    let sets: &[Option<char>] = match (p.prefix, p.charset) {
        (Some(_), cs) => &[cs][..],
        (None, Some('A')) => &[Some('A'), Some('W'), None],
        (None, Some(_)) => &[Some('W'), Some('A'), None],
        (None, None) => &[None, Some('W'), Some('A')],
    };
    let prefixes: &[&str] = match p.prefix {
        Some("Nt") => &["Nt", "Zw"],
        Some(_) => &["Zw", "Nt"],
        None => &[""],
    };
    let mut out = Vec::new();
    for prefix in prefixes {
        for ex in [p.ex, !p.ex] {
            for cs in sets {
                let mut s = String::with_capacity(name.len() + 2);
                s.push_str(prefix);
                s.push_str(p.body);
                if ex {
                    s.push_str("Ex");
                }
                s.extend(*cs);
                if s != name && !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// A name split as `[Nt|Zw] body [Ex] [A|W]`.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    prefix: Option<&'static str>,
    body: &'a str,
    ex: bool,
    charset: Option<char>,
}

impl<'a> Parts<'a> {
    fn of(name: &'a str) -> Option<Self> {
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return None;
        }
        let mut rest = name;
        // A trailing A or W is a character set only after a lower-case letter, a digit or
        // `_` (`CreateFileW`, `RegOpenKeyExA`, `DnsQuery_W`), not in an acronym (`CreateDCW`
        // is left alone rather than misread).
        let mut charset = None;
        if let [.., before, last @ (b'A' | b'W')] = rest.as_bytes() {
            if before.is_ascii_lowercase() || before.is_ascii_digit() || *before == b'_' {
                charset = Some(char::from(*last));
                rest = &rest[..rest.len() - 1];
            }
        }
        let mut ex = false;
        if let Some(body) = rest.strip_suffix("Ex") {
            if body.ends_with(|c: char| c.is_ascii_alphanumeric()) {
                ex = true;
                rest = body;
            }
        }
        let mut prefix = None;
        for p in ["Nt", "Zw"] {
            if let Some(body) = rest.strip_prefix(p) {
                if body.starts_with(|c: char| c.is_ascii_uppercase()) {
                    prefix = Some(p);
                    rest = body;
                }
            }
        }
        Some(Parts {
            prefix,
            body: rest,
            ex,
            charset,
        })
    }
}

/// What identifies a name up to the general rules: no character set, no `Ex`, `Zw` as `Nt`.
fn stem_key(name: &str) -> String {
    match Parts::of(name) {
        Some(p) => format!("{}{}", if p.prefix.is_some() { "Nt" } else { "" }, p.body),
        None => name.to_string(),
    }
}

/// The rows of [`TABLE`] that hold a name with this stem key.
fn rows_of(key: &str) -> &'static [usize] {
    static INDEX: OnceLock<HashMap<String, Vec<usize>>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut m: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in TABLE.iter().enumerate() {
            for n in r.names {
                let rows = m.entry(stem_key(n)).or_default();
                if !rows.contains(&i) {
                    rows.push(i);
                }
            }
        }
        m
    });
    index.get(key).map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn vocab(names: &[&str]) -> HashSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn into(name: &str, v: &HashSet<String>) -> Resolved {
        resolve(name, |n| v.contains(n))
    }

    fn mapped(to: &str) -> Resolved {
        Resolved::Mapped(to.to_string())
    }

    #[test]
    fn names_split_into_prefix_body_ex_and_charset() {
        let p = |n| Parts::of(n).map(|p| (p.prefix, p.body, p.ex, p.charset));
        assert_eq!(
            p("RegOpenKeyExW"),
            Some((None, "RegOpenKey", true, Some('W')))
        );
        assert_eq!(p("NtOpenKeyEx"), Some((Some("Nt"), "OpenKey", true, None)));
        assert_eq!(
            p("ZwCreateFile"),
            Some((Some("Zw"), "CreateFile", false, None))
        );
        assert_eq!(p("DnsQuery_A"), Some((None, "DnsQuery_", false, Some('A'))));
        assert_eq!(p("CreateDCW"), Some((None, "CreateDCW", false, None)));
        // A body that is only "Nt" or "Ex" is not split away.
        assert_eq!(p("Ntfoo"), Some((None, "Ntfoo", false, None)));
        assert_eq!(p("Ex"), Some((None, "Ex", false, None)));
        assert_eq!(p("memcpy"), None);
        assert_eq!(p("__exception__"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn rule_variants_go_from_near_to_far() {
        assert_eq!(
            rule_variants("RegOpenKeyExW"),
            [
                "RegOpenKeyExA",
                "RegOpenKeyEx",
                "RegOpenKeyW",
                "RegOpenKeyA",
                "RegOpenKey"
            ]
        );
        assert_eq!(
            rule_variants("CopyFile"),
            [
                "CopyFileW",
                "CopyFileA",
                "CopyFileEx",
                "CopyFileExW",
                "CopyFileExA"
            ]
        );
        // Native calls: no character sets; the same prefix first.
        assert_eq!(
            rule_variants("ZwOpenKey"),
            ["ZwOpenKeyEx", "NtOpenKey", "NtOpenKeyEx"]
        );
        assert_eq!(
            rule_variants("NtCreateThreadEx"),
            ["NtCreateThread", "ZwCreateThreadEx", "ZwCreateThread"]
        );
        assert!(rule_variants("memcpy").is_empty());
        assert!(rule_variants("__anomaly__").is_empty());
    }

    #[test]
    fn known_names_stay_as_they_are() {
        // Even when a "nearer" name is in the vocabulary too.
        let v = vocab(&["CreateFileW", "CreateFileA", "NtCreateFile"]);
        for n in ["CreateFileW", "CreateFileA", "NtCreateFile"] {
            assert_eq!(into(n, &v), Resolved::Known, "{n}");
        }
    }

    #[test]
    fn general_rules() {
        let v = vocab(&[
            "RegOpenKeyExA",
            "FindFirstFileExW",
            "CopyFileW",
            "NtUnmapViewOfSection",
            "NtOpenKeyEx",
            "ZwQueryValueKey",
            "DnsQuery_W",
        ]);
        // A <-> W
        assert_eq!(into("RegOpenKeyExW", &v), mapped("RegOpenKeyExA"));
        assert_eq!(into("FindFirstFileExA", &v), mapped("FindFirstFileExW"));
        assert_eq!(into("DnsQuery_A", &v), mapped("DnsQuery_W"));
        // Ex, with and without a character set
        assert_eq!(into("CopyFileExW", &v), mapped("CopyFileW"));
        assert_eq!(into("CopyFileExA", &v), mapped("CopyFileW"));
        assert_eq!(into("RegOpenKeyW", &v), mapped("RegOpenKeyExA"));
        assert_eq!(
            into("NtUnmapViewOfSectionEx", &v),
            mapped("NtUnmapViewOfSection")
        );
        // Nt <-> Zw
        assert_eq!(into("ZwOpenKeyEx", &v), mapped("NtOpenKeyEx"));
        assert_eq!(into("NtQueryValueKey", &v), mapped("ZwQueryValueKey"));
        // Nothing near enough
        assert_eq!(into("NtWaitForSingleObject", &v), Resolved::Unknown);
        assert_eq!(into("memcpy", &v), Resolved::Unknown);
        assert_eq!(into("", &v), Resolved::Unknown);
    }

    #[test]
    fn the_same_layer_wins_over_another_layer() {
        // Both the Win32 name and the native one are known: an unknown Win32 spelling maps
        // to its own family first.
        let v = vocab(&["RegOpenKeyExW", "NtOpenKey"]);
        assert_eq!(into("RegOpenKeyExA", &v), mapped("RegOpenKeyExW"));
        assert_eq!(into("ZwOpenKeyEx", &v), mapped("NtOpenKey"));
        assert_eq!(into("RegOpenKeyA", &v), mapped("RegOpenKeyExW"));
    }

    #[test]
    fn table_rows_cross_layers() {
        let cuckoo = vocab(&[
            "LdrLoadDll",
            "LdrGetProcedureAddress",
            "LdrGetDllHandle",
            "CreateProcessInternalW",
            "WriteProcessMemory",
            "NtProtectVirtualMemory",
            "GetSystemTimeAsFileTime",
            "SHGetFolderPathW",
            "connect",
            "HttpOpenRequestW",
            "HttpQueryInfoA",
            "InternetSetOptionA",
            "EncryptMessage",
            "GetComputerNameW",
            "MoveFileWithProgressW",
            "DeleteFileW",
        ]);
        for (cape, want) in [
            ("LoadLibraryExW", "LdrLoadDll"),
            ("LoadLibraryA", "LdrLoadDll"),
            ("GetModuleHandleExA", "LdrGetDllHandle"),
            ("LdrGetProcedureAddressForCaller", "LdrGetProcedureAddress"),
            ("GetProcAddress", "LdrGetProcedureAddress"),
            ("CreateProcessA", "CreateProcessInternalW"),
            ("CreateProcessInternalA", "CreateProcessInternalW"),
            ("NtCreateUserProcess", "CreateProcessInternalW"),
            ("NtWriteVirtualMemory", "WriteProcessMemory"),
            ("ZwWriteVirtualMemory", "WriteProcessMemory"),
            ("NtWow64WriteVirtualMemory64", "WriteProcessMemory"),
            ("VirtualProtectEx", "NtProtectVirtualMemory"),
            ("NtQuerySystemTime", "GetSystemTimeAsFileTime"),
            ("GetSystemTime", "GetSystemTimeAsFileTime"),
            ("SHGetKnownFolderPath", "SHGetFolderPathW"),
            ("ConnectEx", "connect"),
            ("WinHttpOpenRequest", "HttpOpenRequestW"),
            ("WinHttpQueryHeaders", "HttpQueryInfoA"),
            ("WinHttpSetTimeouts", "InternetSetOptionA"),
            ("SslEncryptPacket", "EncryptMessage"),
            ("GetComputerNameExW", "GetComputerNameW"),
            ("gethostname", "GetComputerNameW"),
            ("MoveFileWithProgressTransactedW", "MoveFileWithProgressW"),
            ("DeleteFileA", "DeleteFileW"),
            ("NtDeleteFile", "DeleteFileW"),
        ] {
            assert_eq!(into(cape, &cuckoo), mapped(want), "{cape}");
        }
        // ...and back: a CAPE-trained vocabulary reads Cuckoo's names.
        let cape = vocab(&[
            "LoadLibraryExW",
            "NtWriteVirtualMemory",
            "NtQuerySystemTime",
        ]);
        assert_eq!(into("LdrLoadDll", &cape), mapped("LoadLibraryExW"));
        assert_eq!(
            into("WriteProcessMemory", &cape),
            mapped("NtWriteVirtualMemory")
        );
        assert_eq!(
            into("GetSystemTimeAsFileTime", &cape),
            mapped("NtQuerySystemTime")
        );
    }

    #[test]
    fn rows_are_not_merged_transitively() {
        let v = vocab(&["BCryptImportKeyPair"]);
        assert_eq!(into("CryptImportKey", &v), mapped("BCryptImportKeyPair"));
        // BCryptImportKey shares a row with CryptImportKey, not with BCryptImportKeyPair.
        assert_eq!(into("BCryptImportKey", &v), Resolved::Unknown);
        // Calls that only resemble a known one are not mapped.
        let v = vocab(&[
            "NtDelayExecution",
            "SendNotifyMessageW",
            "LoadResource",
            "NtCreateMutant",
        ]);
        for n in [
            "NtWaitForSingleObject",
            "PostMessageW",
            "LockResource",
            "NtReleaseMutant",
        ] {
            assert_eq!(into(n, &v), Resolved::Unknown, "{n}");
        }
    }

    #[test]
    fn sequences_map_each_distinct_name_once_and_count_them() {
        let v = vocab(&["LdrLoadDll", "NtClose", "WriteProcessMemory"]);
        let apis: Vec<String> = [
            "LoadLibraryExW",
            "NtClose",
            "memcpy",
            "LoadLibraryExW",
            "NtWriteVirtualMemory",
            "memcpy",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let m = map_sequence(&apis, |n| v.contains(n));
        assert_eq!(
            m.apis.as_ref(),
            [
                "LdrLoadDll",
                "NtClose",
                "memcpy",
                "LdrLoadDll",
                "WriteProcessMemory",
                "memcpy"
            ]
        );
        assert_eq!(
            m.counts,
            NameCounts {
                distinct: 4,
                known: 1,
                mapped: 2,
                unseen: 1
            }
        );
        // Nothing to map: the input itself, borrowed.
        let plain: Vec<String> = vec!["NtClose".into(), "memcpy".into()];
        let m = map_sequence(&plain, |n| v.contains(n));
        assert!(matches!(m.apis, Cow::Borrowed(_)));
        assert_eq!((m.counts.known, m.counts.unseen), (1, 1));
        assert_eq!(
            map_sequence(&[], |n| v.contains(n)).counts,
            NameCounts::default()
        );
    }

    #[test]
    fn docs_list_every_row() {
        let doc = include_str!("../../../docs/api-names.md");
        for r in TABLE {
            let cell = r
                .names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            assert!(
                doc.contains(&format!("| {cell} | {} |", r.why)),
                "docs/api-names.md lacks the row {cell}"
            );
        }
    }

    #[test]
    fn the_table_is_well_formed() {
        for (i, r) in TABLE.iter().enumerate() {
            assert!(r.names.len() >= 2, "row {i} maps nothing");
            assert!(!r.why.is_empty(), "row {i} gives no reason");
            let keys: HashSet<String> = r.names.iter().map(|n| stem_key(n)).collect();
            assert_eq!(
                keys.len(),
                r.names.len(),
                "row {i} repeats a name up to the rules"
            );
            for n in r.names {
                assert!(!n.is_empty() && n.is_ascii(), "row {i}: {n:?}");
            }
        }
        // Two rows with the same names would be one row.
        let mut seen = HashSet::new();
        for r in TABLE {
            let mut k: Vec<String> = r.names.iter().map(|n| stem_key(n)).collect();
            k.sort();
            assert!(seen.insert(k.clone()), "{k:?} listed twice");
        }
    }
}
