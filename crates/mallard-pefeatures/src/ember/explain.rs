//! EMBER v2 columns in words, for one file: which of its imports, sections, header flags...
//! a column stands for, read back from the file's raw EMBER object. A hashed column is
//! inverted by re-hashing the file's own strings; a bucket the file leaves empty is named by
//! common names that hash there (the model may have learned from their absence).

use std::sync::OnceLock;

use serde_json::Value;

use super::{
    DATA_DIRECTORY_NAMES, DLL_CHARACTERISTICS, HEADER_CHARACTERISTICS, MACHINES,
    SECTION_CHARACTERISTICS, SUBSYSTEMS,
};
use crate::hasher::bucket;

/// Names shown per phrase; the rest become "and N more".
const SHOWN: usize = 3;

/// Common section names, packers' included, for naming empty section buckets.
const SECTION_NAMES: &str = "\
    .text .data .rdata .rsrc .reloc .idata .edata .pdata .tls .bss .CRT .gfids .00cfg .didat \
    .xdata .sdata .ndata .itext .orpc .textbss .rodata .eh_fram .buildid .stab .stabstr \
    .sxdata .code CODE DATA BSS INIT PAGE UPX0 UPX1 UPX2 .aspack .adata .MPRESS1 .MPRESS2 \
    .petite .nsp0 .nsp1 .themida .vmp0 .vmp1 .enigma1 .enigma2 .packed .RLPack PEC2 .taggant \
    .boot .winlice .y0da .perplex .spack MEW .ccg .neolite .wixburn .imrsiv .cormeta .didata \
    .voltbl .retplne .fptable .mrdata _RDATA .init .fini .ctors .dtors .jcr .symtab .srdata \
    .hdata .wpp_sf PAGELK PAGEKD NONPAGED GFIDS .text1 .text2 .data1 .rdata1 .upx .MaskPE \
    .Upack ByDwing .seau .svkp .yP .WWP32 pec1 .shrink1 .pelock .gentee kkrunchy .sforce3 .nep \
    petite .MPRESS /4 /14 /19 /29 /41 /55";

/// Common export names, for naming empty export buckets.
const EXPORT_NAMES: &str = "\
    DllMain DllEntryPoint DllRegisterServer DllUnregisterServer DllGetClassObject \
    DllCanUnloadNow DllInstall DllGetVersion ServiceMain SvchostPushServiceGlobals CPlApplet \
    DriverEntry Start StartW Run RunDLL Init Initialize Install Uninstall InstallHook \
    RemoveHook KeyboardProc MouseProc CallWndProc GetMsgProc HookProc ReflectiveLoader \
    _ReflectiveLoader@4 Control_RunDLL EntryPoint main WinMain NvOptimusEnablement \
    AmdPowerXpressRequestHighPerformance GetHandleVerifier inflate deflate uncompress \
    sqlite3_open luaL_newstate curl_easy_init PyInit__ctypes JNI_OnLoad mainCRTStartup \
    JNI_OnUnload DllGetActivationFactory DllMainCRTStartup ServiceCtrlHandler WSPStartup \
    NSPStartup InitHelperDll WlxNegotiate WlxInitialize WlxLoggedOnSAS NPLogonNotify NPGetCaps \
    InitializeChangeNotify PasswordChangeNotify PasswordFilter SpLsaModeInitialize \
    SpInitialize NP_Initialize NP_GetEntryPoints NP_Shutdown VSTPluginMain GetPluginInfo \
    CreateInterface GetInterface CreateObject GetObject Register Unregister Setup Config \
    Update Check Process Connect Send Recv Encrypt Decrypt Inject Hook Unhook Attach Detach \
    Execute Launch Load Unload Main Exec Open Close Read Write Create Destroy Shutdown \
    GetVersion Version __CPPdebugHook ___CPPdebugHook TMethodImplementationIntercept \
    dbkFCallWrapperAddr __dbk_fcall_wrapper GetProcAddress LoadLibraryA malloc free _fini \
    _init crc32 adler32 compress inflateInit_ deflateInit_ lua_pcall sqlite3_exec \
    png_create_read_struct jpeg_read_header xmlParseFile OPENSSL_init_ssl SSL_CTX_new \
    EVP_EncryptInit_ex curl_easy_perform av_malloc QueryInterface AddRef Release ExitProcess \
    Callback WndProc DialogProc StartService StopService InstallService UninstallService \
    RunService Payload";

fn words(s: &str) -> Vec<&str> {
    s.split_whitespace().collect()
}

/// Common imports (`lib:func`, lib lower-cased as EMBER hashes it) and libraries with
/// their FeatureHasher columns.
struct Vocab {
    functions: Vec<(usize, String)>,
    libraries: Vec<(usize, String)>,
}

fn vocab() -> &'static Vocab {
    static V: OnceLock<Vocab> = OnceLock::new();
    V.get_or_init(|| {
        let mut functions = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut libraries: Vec<(usize, String)> = Vec::new();
        for line in include_str!("../../data/ember_imports.txt").lines() {
            let line = line.trim();
            let Some((lib, funcs)) = line.split_once(':').filter(|_| !line.starts_with('#')) else {
                continue;
            };
            let lib = lib.trim().to_lowercase();
            if !libraries.iter().any(|(_, l)| *l == lib) {
                libraries.push((bucket(lib.as_bytes(), 256).0, lib.clone()));
            }
            for f in funcs.split_whitespace() {
                let s = format!("{lib}:{f}");
                if seen.insert(s.clone()) {
                    functions.push((bucket(s.as_bytes(), 1024).0, s));
                }
            }
        }
        Vocab {
            functions,
            libraries,
        }
    })
}

/// A readable phrase for EMBER v2 column `column` (a name from `ember::names()`) of the file
/// whose raw object is `raw`, `value` being the column's entry in its vector. Unknown
/// columns come back unchanged.
pub fn describe(raw: &Value, column: &str, value: f32) -> String {
    let v = f64::from(value);
    let Some((group, rest)) = column.split_once('_') else {
        return column.to_string();
    };
    let phrase = match group {
        "histogram" => rest
            .parse::<u8>()
            .ok()
            .map(|b| format!("byte 0x{b:02X} share {}", pct(v))),
        "byteentropy" => byteentropy(raw, rest, v),
        "strings" => strings(rest, v),
        "general" => general(rest, v),
        "header" => header(raw, rest, v),
        "section" => section(raw, rest, v),
        "imports" => imports(raw, rest),
        "exports" => hash_index(rest, "hash").map(|i| {
            let mine = in_bucket(str_items(&raw["exports"]), 128, i);
            present_or_absent(
                &mine,
                128,
                i,
                &words(EXPORT_NAMES),
                "exports ",
                "exports: none such as ",
            )
            .unwrap_or_else(|| format!("exports: hashed bucket {i} (no name known)"))
        }),
        "datadirectories" => datadirectory(raw, rest, v),
        _ => None,
    };
    phrase.unwrap_or_else(|| column.to_string())
}

// ---------------------------------------------------------------------------------------
// Hashed columns

fn hash_index(rest: &str, prefix: &str) -> Option<usize> {
    rest.strip_prefix(prefix)?.parse().ok()
}

/// The distinct `items` FeatureHasher puts in column `i` of `n`, in order.
fn in_bucket<'a>(items: impl IntoIterator<Item = &'a str>, n: usize, i: usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in items {
        if bucket(s.as_bytes(), n).0 == i && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn str_items(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

fn shown(s: &str) -> &str {
    if s.is_empty() {
        "(empty)"
    } else {
        s
    }
}

/// "a, b, c and 2 more".
fn and_list<S: AsRef<str>>(names: &[S]) -> String {
    let head: Vec<&str> = names
        .iter()
        .take(SHOWN)
        .map(|s| shown(s.as_ref()))
        .collect();
    match names.len() {
        n if n > SHOWN => format!("{} and {} more", head.join(", "), n - SHOWN),
        1 => head[0].to_string(),
        _ => {
            let (last, first) = head.split_last().unwrap_or((&"", &[]));
            format!("{} and {last}", first.join(", "))
        }
    }
}

/// "a, b or c" (at most SHOWN names: examples, not a full list).
fn or_list<S: AsRef<str>>(names: &[S]) -> String {
    let head: Vec<&str> = names
        .iter()
        .take(SHOWN)
        .map(|s| shown(s.as_ref()))
        .collect();
    match head.split_last() {
        Some((last, first)) if !first.is_empty() => format!("{} or {last}", first.join(", ")),
        Some((last, _)) => last.to_string(),
        None => String::new(),
    }
}

/// `present` + the file's names in the bucket, else `absent` + vocabulary names hashing
/// there; None when neither has any.
fn present_or_absent(
    mine: &[&str],
    n: usize,
    i: usize,
    vocab: &[&str],
    present: &str,
    absent: &str,
) -> Option<String> {
    if !mine.is_empty() {
        return Some(format!("{present}{}", and_list(mine)));
    }
    let known = in_bucket(vocab.iter().copied(), n, i);
    (!known.is_empty()).then(|| format!("{absent}{}", or_list(&known)))
}

fn imports(raw: &Value, rest: &str) -> Option<String> {
    let imps = raw["imports"].as_object();
    if let Some(i) = hash_index(rest, "library_hash") {
        let libs: Vec<String> = imps
            .into_iter()
            .flatten()
            .map(|(k, _)| k.to_lowercase())
            .collect();
        let mine = in_bucket(libs.iter().map(String::as_str), 256, i);
        let known: Vec<&str> = vocab()
            .libraries
            .iter()
            .filter(|(b, _)| *b == i)
            .map(|(_, s)| s.as_str())
            .collect();
        return Some(match (mine.len(), known.is_empty()) {
            (0, false) => format!("imports: no library such as {}", or_list(&known)),
            (0, true) => format!("imports: library hashed bucket {i} (no name known)"),
            (1, _) => format!("imports library {}", mine[0]),
            _ => format!("imports libraries {}", and_list(&mine)),
        });
    }
    let i = hash_index(rest, "function_hash")?;
    // `lib:func` as EMBER hashes it, built in one buffer: files may import thousands.
    let (mut mine, mut buf): (Vec<String>, String) = (Vec::new(), String::new());
    for (lib, list) in imps.into_iter().flatten() {
        let lower = lib.to_lowercase();
        for f in str_items(list) {
            buf.clear();
            buf.push_str(&lower);
            buf.push(':');
            buf.push_str(f);
            if bucket(buf.as_bytes(), 1024).0 == i && !mine.contains(&buf) {
                mine.push(buf.clone());
            }
        }
    }
    if !mine.is_empty() {
        return Some(format!("imports {}", and_list(&mine)));
    }
    let known: Vec<&str> = vocab()
        .functions
        .iter()
        .filter(|(b, _)| *b == i)
        .map(|(_, s)| s.as_str())
        .collect();
    Some(if known.is_empty() {
        format!("imports: function hashed bucket {i} (no name known)")
    } else {
        format!("imports: no import such as {}", or_list(&known))
    })
}

// ---------------------------------------------------------------------------------------
// Header

fn header(raw: &Value, rest: &str, v: f64) -> Option<String> {
    let coff = &raw["header"]["coff"];
    let opt = &raw["header"]["optional"];
    if rest == "timestamp" {
        let ts = coff["timestamp"].as_f64().unwrap_or(v);
        return Some(if ts <= 0.0 {
            "header: timestamp 0 (not set)".into()
        } else {
            format!("header: timestamp {}", date(ts as i64))
        });
    }
    let names = |t: &[(u64, &'static str)]| t.iter().map(|(_, n)| *n).collect::<Vec<_>>();
    let names16 = |t: &[(u16, &'static str)]| t.iter().map(|(_, n)| *n).collect::<Vec<_>>();
    let (what, val, vocab) = match rest.rsplit_once("_hash") {
        Some(("machine", _)) => ("machine", &coff["machine"], names16(&MACHINES)),
        Some(("characteristics", _)) => (
            "characteristics",
            &coff["characteristics"],
            names(&HEADER_CHARACTERISTICS),
        ),
        Some(("subsystem", _)) => ("subsystem", &opt["subsystem"], names16(&SUBSYSTEMS)),
        Some(("dll_characteristics", _)) => (
            "DLL characteristics",
            &opt["dll_characteristics"],
            names(&DLL_CHARACTERISTICS),
        ),
        Some(("magic", _)) => ("magic", &opt["magic"], vec!["PE32", "PE32_PLUS"]),
        _ => ("", &Value::Null, Vec::new()),
    };
    if let Some(i) = rest.rsplit_once("_hash").and_then(|(_, i)| i.parse().ok()) {
        // Flag lists "include"/"lack" names; a single value is named, then what it is not.
        let (items, present, absent): (Vec<&str>, _, _) = match val {
            Value::String(s) => (
                vec![s.as_str()],
                String::new(),
                format!("{}, not ", shown(s)),
            ),
            v => (str_items(v).collect(), "include ".into(), "lack ".into()),
        };
        let mine = in_bucket(items, 10, i);
        return Some(
            present_or_absent(
                &mine,
                10,
                i,
                &vocab,
                &format!("header: {what} {present}"),
                &format!("header: {what} {absent}"),
            )
            .unwrap_or_else(|| match val {
                Value::String(s) => {
                    format!("header: {what} {} (bucket {i}: no name known)", shown(s))
                }
                _ => format!("header: {what} hashed bucket {i} (no name known)"),
            }),
        );
    }
    let label = match rest {
        "sizeof_code" => return Some(format!("header: size of code {}", size(v))),
        "sizeof_headers" => return Some(format!("header: size of headers {}", size(v))),
        "sizeof_heap_commit" => return Some(format!("header: heap commit {}", size(v))),
        r if r.ends_with("_version") => r.replace('_', " "),
        _ => return None,
    };
    Some(format!("header: {label} {}", num(v)))
}

/// Civil date (UTC) of a Unix time.
fn date(secs: i64) -> String {
    let (y, m, d) = mallard_io::civil_date(secs);
    format!("{y:04}-{m:02}-{d:02}")
}

// ---------------------------------------------------------------------------------------
// Sections

fn section(raw: &Value, rest: &str, v: f64) -> Option<String> {
    let sec = &raw["section"];
    let secs: Vec<&Value> = sec["sections"].as_array().into_iter().flatten().collect();
    let entry = sec["entry"].as_str().unwrap_or("");
    let n = v.round() as i64;
    match rest {
        "count" => return Some(format!("section: {}", count(n, "section"))),
        "zero_size" if n == 0 => return Some("section: all sections have raw data".into()),
        "zero_size" => return Some(format!("section: {} without raw data", count(n, "section"))),
        "empty_name" => return Some(format!("section: {}", count(n, "unnamed section"))),
        "rx" => {
            return Some(format!(
                "section: {}",
                count(n, "readable and executable section")
            ))
        }
        "w" => return Some(format!("section: {}", count(n, "writable section"))),
        _ => {}
    }
    for key in ["size", "entropy", "vsize"] {
        let Some(i) = hash_index(rest, &format!("{key}_hash")) else {
            continue;
        };
        let mine: Vec<String> = secs
            .iter()
            .filter_map(|s| {
                let name = s["name"].as_str()?;
                (bucket(name.as_bytes(), 50).0 == i).then(|| {
                    let x = s[key].as_f64().unwrap_or(0.0);
                    let shown_x = if key == "entropy" {
                        format!("{x:.2}")
                    } else {
                        size(x)
                    };
                    format!("{}: {key} {shown_x}", shown(name))
                })
            })
            .collect();
        return Some(match mine.len() {
            0 => {
                let known = in_bucket(SECTION_NAMES.split_whitespace(), 50, i);
                if known.is_empty() {
                    format!("section {key}: hashed bucket {i} (no name known)")
                } else {
                    format!("section: no {} section ({key})", or_list(&known))
                }
            }
            1 => format!("section {}", mine[0]),
            _ => format!("sections {}", and_list(&mine)),
        });
    }
    let entry_shown = if entry.is_empty() { "(none)" } else { entry };
    if let Some(i) = hash_index(rest, "entry_name_hash") {
        // EMBER hashes the entry name's characters, one feature each.
        let mut buf = [0u8; 4];
        let chars: Vec<String> = entry
            .chars()
            .map(|c| c.encode_utf8(&mut buf).to_string())
            .collect();
        let mine = in_bucket(chars.iter().map(String::as_str), 50, i);
        if !mine.is_empty() {
            let quoted: Vec<String> = mine.iter().map(|c| format!("'{c}'")).collect();
            return Some(format!(
                "entry section {entry_shown} (character {} of its name)",
                and_list(&quoted)
            ));
        }
        let ascii: Vec<String> = (0x21u8..0x7f).map(|c| (c as char).to_string()).collect();
        let known: Vec<String> = in_bucket(ascii.iter().map(String::as_str), 50, i)
            .iter()
            .map(|c| format!("'{c}'"))
            .collect();
        return Some(if known.is_empty() {
            format!("entry section {entry_shown} (name hashed bucket {i}, no name known)")
        } else {
            format!(
                "entry section {entry_shown} (no character {} in its name)",
                or_list(&known)
            )
        });
    }
    let i = hash_index(rest, "entry_props_hash")?;
    let props = secs
        .iter()
        .filter(|s| s["name"].as_str() == Some(entry))
        .flat_map(|s| str_items(&s["props"]));
    let mine = in_bucket(props, 50, i);
    let vocab: Vec<&str> = SECTION_CHARACTERISTICS.iter().map(|(_, n)| *n).collect();
    Some(
        present_or_absent(
            &mine,
            50,
            i,
            &vocab,
            &format!("entry section {entry_shown}: "),
            &format!("entry section {entry_shown}: not "),
        )
        .unwrap_or_else(|| format!("entry section properties: hashed bucket {i} (no name known)")),
    )
}

// ---------------------------------------------------------------------------------------
// Unhashed groups

fn byteentropy(raw: &Value, rest: &str, v: f64) -> Option<String> {
    let (h, n) = rest.strip_prefix('h')?.split_once("_n")?;
    let (h, n): (usize, usize) = (h.parse().ok()?, n.parse().ok()?);
    let (lo, hi) = (h as f64 / 2.0, (h + 1) as f64 / 2.0);
    let cell = format!("bytes 0x{n:X}0-0x{n:X}F there: {} of all", pct(v));
    // The row's share is the share of 2 KB windows in that entropy bin.
    let counts: Vec<f64> = raw["byteentropy"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect();
    let total: f64 = counts.iter().sum();
    let windows = match counts.get(h * 16..h * 16 + 16) {
        Some(row) if counts.len() == 256 && total > 0.0 => {
            format!("{} of 2 KB windows", pct(row.iter().sum::<f64>() / total))
        }
        _ => "2 KB windows".into(),
    };
    Some(format!(
        "byte-entropy: {windows} at entropy {lo:.1}-{hi:.1}; {cell}"
    ))
}

fn strings(rest: &str, v: f64) -> Option<String> {
    let n = v.round() as i64;
    let s = match rest {
        "numstrings" => format!("{} (5+ characters)", count(n, "printable string")),
        "avlength" => format!("average length {v:.1}"),
        "printables" => format!("{} in strings", count(n, "printable character")),
        "entropy" => format!("character entropy {v:.2} bits"),
        "paths" => format!("{} (C:\\)", count(n, "path")),
        "urls" => count(n, "URL"),
        "registry" => format!("{} (HKEY_)", count(n, "registry path")),
        "MZ" => format!("{} ('MZ')", count(n, "MZ marker")),
        r => {
            let c = 0x20 + r.strip_prefix("printabledist_")?.parse::<u8>().ok()?;
            let shown = match c {
                b' ' => "space".to_string(),
                0x7f => "DEL".to_string(),
                c => format!("'{}'", c as char),
            };
            format!("{shown} is {} of string characters", pct(v))
        }
    };
    Some(format!("strings: {s}"))
}

fn general(rest: &str, v: f64) -> Option<String> {
    let yes = v != 0.0;
    let n = v.round() as i64;
    let s = match rest {
        "size" => format!("file size {}", size(v)),
        "vsize" => format!("virtual size {}", size(v)),
        "has_debug" if yes => "has debug info".into(),
        "has_debug" => "no debug info".into(),
        "exports" => count(n, "export"),
        "imports" => count(n, "import"),
        "has_relocations" if yes => "has relocations".into(),
        "has_relocations" => "no relocations".into(),
        "has_resources" if yes => "has resources".into(),
        "has_resources" => "no resources".into(),
        "has_signature" if yes => "signed (certificate present)".into(),
        "has_signature" => "not signed".into(),
        "has_tls" if yes => "has a TLS directory".into(),
        "has_tls" => "no TLS directory".into(),
        "symbols" => count(n, "COFF symbol"),
        _ => return None,
    };
    Some(format!("general: {s}"))
}

fn datadirectory(raw: &Value, rest: &str, v: f64) -> Option<String> {
    let (name, field) = DATA_DIRECTORY_NAMES.iter().find_map(|d| {
        let f = rest.strip_prefix(d)?.strip_prefix('_')?;
        Some((*d, f))
    })?;
    let entry = raw["datadirectories"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"].as_str() == Some(name));
    let x = entry.and_then(|d| d[field].as_f64()).unwrap_or(v).max(0.0);
    let cert = name == "CERTIFICATE_TABLE";
    let s = match field {
        "size" if x == 0.0 && cert => "size 0 (not signed)".into(),
        "size" if x == 0.0 => "size 0 (absent)".into(),
        "size" if cert => format!("size {} (signed)", size(x)),
        "size" => format!("size {}", size(x)),
        "virtual_address" if x == 0.0 => "absent (address 0)".into(),
        // The certificate table's "address" is a file offset.
        "virtual_address" if cert => format!("at file offset 0x{:X}", x as u64),
        "virtual_address" => format!("at RVA 0x{:X}", x as u64),
        _ => return None,
    };
    Some(format!("data directory {name}: {s}"))
}

// ---------------------------------------------------------------------------------------
// Numbers

fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p == 0.0 || p >= 9.95 {
        format!("{p:.0}%")
    } else if p >= 0.995 {
        format!("{p:.1}%")
    } else {
        format!("{p:.2}%")
    }
}

fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}

/// "no sections", "1 section", "3 sections".
fn count(n: i64, what: &str) -> String {
    match n {
        0 => format!("no {what}s"),
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    }
}

fn size(b: f64) -> String {
    const K: f64 = 1024.0;
    if b < K {
        format!("{} bytes", num(b))
    } else if b < 10.0 * K {
        format!("{:.1} KB", b / K)
    } else if b < K * K {
        format!("{:.0} KB", b / K)
    } else {
        format!("{:.1} MB", b / (K * K))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ember::{names, raw_features, vectorize};
    use mallard_pe::synth::tiny_pe32;
    use std::path::PathBuf;

    fn shared() -> PathBuf {
        match std::env::var_os("MALLARD_SHARED") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
        }
    }

    /// Every column of a file, described.
    fn all(raw: &Value) -> Vec<(String, String)> {
        let v = vectorize(raw).unwrap();
        names()
            .into_iter()
            .zip(v)
            .map(|(n, x)| {
                let d = describe(raw, &n, x);
                (n, d)
            })
            .collect()
    }

    #[test]
    fn tiny_pe_columns_in_words() {
        let raw = raw_features(&tiny_pe32()).unwrap();
        let d = |c: &str| {
            let i = names().iter().position(|n| n == c).unwrap();
            describe(&raw, c, vectorize(&raw).unwrap()[i])
        };
        // murmur3("kernel32.dll:ExitProcess") = -999907264 (hand-run reference murmur3
        // in Python): bucket 999907264 % 1024 = 960.
        assert_eq!(
            d("imports_function_hash960"),
            "imports kernel32.dll:ExitProcess"
        );
        // murmur3("kernel32.dll") = 814237301: 814237301 % 256 = 117.
        assert_eq!(d("imports_library_hash117"), "imports library kernel32.dll");
        // murmur3("advapi32.dll:RegSetValueExA") = 2071103572: bucket 84, empty here.
        let absent = d("imports_function_hash84");
        assert!(
            absent.starts_with("imports: no import such as ")
                && absent.contains("advapi32.dll:RegSetValueExA"),
            "{absent}"
        );
        assert_eq!(
            d(&format!(
                "imports_function_hash{}",
                bucket(b"mylib.dll:ordinal5", 1024).0
            )),
            "imports mylib.dll:ordinal5"
        );
        assert_eq!(
            d(&format!("exports_hash{}", bucket(b"Start", 128).0)),
            "exports Start"
        );
        // ".text" = -2097954141: bucket 41 of 50.
        assert_eq!(d("section_size_hash41"), "section .text: size 512 bytes");
        // "DLL" = -387226970: bucket 0 of 10; "I386" = 846433595: bucket 5.
        assert_eq!(
            d("header_characteristics_hash0"),
            "header: characteristics include DLL"
        );
        assert_eq!(d("header_machine_hash5"), "header: machine I386");
        assert_eq!(d("header_timestamp"), "header: timestamp 2020-07-04");
        assert_eq!(d("general_imports"), "general: 1 import");
        assert_eq!(d("general_has_signature"), "general: not signed");
        assert_eq!(d("section_count"), "section: 2 sections");
        assert_eq!(
            d("datadirectories_CERTIFICATE_TABLE_size"),
            "data directory CERTIFICATE_TABLE: size 0 (not signed)"
        );
        assert_eq!(
            d("datadirectories_IMPORT_TABLE_virtual_address"),
            "data directory IMPORT_TABLE: at RVA 0x2000"
        );
        assert_eq!(d("strings_urls"), "strings: no URLs");
        assert!(d("histogram_0").starts_with("byte 0x00 share "));
        assert!(d("section_entry_props_hash0").starts_with("entry section .text"));
        // No column comes back as a bare hashed name.
        for (n, s) in all(&raw) {
            assert!(!s.contains("_hash"), "{n}: {s}");
        }
    }

    #[test]
    fn lists_are_short() {
        assert_eq!(and_list(&["a"]), "a");
        assert_eq!(and_list(&["a", "b"]), "a and b");
        assert_eq!(and_list(&["a", "b", "c", "d", "e"]), "a, b, c and 2 more");
        assert_eq!(or_list(&["a", "b", "c", "d"]), "a, b or c");
        assert_eq!(date(1_247_529_600), "2009-07-14");
        assert_eq!(pct(0.31), "31%");
        assert_eq!(size(55296.0), "54 KB");
    }

    #[test]
    fn vocabulary_covers_most_import_buckets() {
        let v = vocab();
        let mut hit = vec![false; 1024];
        for (b, s) in &v.functions {
            hit[*b] = true;
            assert_eq!(*b, bucket(s.as_bytes(), 1024).0);
        }
        assert!(hit.iter().filter(|h| **h).count() > 800);
        assert!(v.libraries.iter().any(|(_, l)| l == "wininet.dll"));
    }

    /// distlib's t32.exe: imports read independently with a struct-based parser (Python),
    /// buckets from a reference murmur3; sections from the same parser.
    #[test]
    #[ignore = "data: reads ../shared/data"]
    fn distlib_t32_in_words() {
        let p = shared().join("data/pe-benign/distlib__t32.exe");
        let raw = raw_features(&std::fs::read(p).unwrap()).unwrap();
        let cols: std::collections::HashMap<String, String> = all(&raw).into_iter().collect();
        // KERNEL32.dll:ExitProcess -> 960, SHLWAPI.dll:PathCombineW -> 261.
        assert!(cols["imports_function_hash960"].contains("kernel32.dll:ExitProcess"));
        assert!(cols["imports_function_hash261"].contains("shlwapi.dll:PathCombineW"));
        assert!(cols["imports_library_hash68"].contains("shlwapi.dll"));
        // .text: 55,296 raw bytes at 0x400; its entropy as the raw object has it.
        let ent = raw["section"]["sections"][0]["entropy"].as_f64().unwrap();
        assert!(cols["section_entropy_hash41"].contains(&format!(".text: entropy {ent:.2}")));
        assert!(cols["section_size_hash41"].contains(".text: size 54 KB"));
        // Not a DLL: the DLL bucket (0) is empty.
        assert!(
            cols["header_characteristics_hash0"].starts_with("header: characteristics lack DLL"),
            "{}",
            cols["header_characteristics_hash0"]
        );
        // NX_COMPAT (+1) and TERMINAL_SERVER_AWARE (-1) share bucket 3: value 0, both named.
        assert_eq!(
            cols["header_dll_characteristics_hash3"],
            "header: DLL characteristics include NX_COMPAT and TERMINAL_SERVER_AWARE"
        );
        assert_eq!(
            cols["header_subsystem_hash7"],
            "header: subsystem WINDOWS_CUI"
        );
        assert_eq!(cols["general_imports"], "general: 85 imports");
        assert_eq!(
            cols["section_entry_name_hash0"].split(' ').nth(2),
            Some(".text")
        );
    }

    /// On every pe-benign file, a hashed column EMBER itself (reference vectors) set is
    /// described by the file's own names, never by absence or a bare bucket.
    #[test]
    #[ignore = "data: reads ../shared/data"]
    fn ember_reference_buckets_are_named() {
        let dir = shared().join("baselines/ember_reference/pe-benign");
        let text = std::fs::read_to_string(dir.join("pe-benign.vectors.jsonl")).unwrap();
        let names = names();
        let mut checked = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let r: Value = serde_json::from_str(line).unwrap();
            let Some(vec) = r["vector"].as_array() else {
                continue;
            };
            let p = shared()
                .join("data/pe-benign")
                .join(r["path"].as_str().unwrap());
            let raw = raw_features(&std::fs::read(&p).unwrap()).unwrap();
            for (j, n) in names.iter().enumerate() {
                let x = vec[j].as_f64().unwrap_or(0.0);
                if !n.contains("_hash") || x == 0.0 {
                    continue;
                }
                let d = describe(&raw, n, x as f32);
                let absent = [
                    "such as",
                    "section: no ",
                    " not ",
                    " lack ",
                    "(no character",
                    "no name known",
                ];
                assert!(
                    !absent.iter().any(|a| d.contains(a)),
                    "{}: {n} = {x}: {d}",
                    p.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 10_000, "{checked}");
    }
}
