//! EMBER2024's StringExtractor: runs of `[\x20-\x7f]{5,}` and, per run, which of 77 patterns
//! it contains (a count is the number of runs with at least one match, README S4).

use regex::bytes::RegexSet;
use std::sync::OnceLock;

/// (key, pattern) in EMBER2024's sorted key order: the vector index is the position.
/// Patterns are Python `re` ones rewritten for Rust's `regex` with the same meaning on ASCII
/// (README S1-S8): the url class's bare `[` escaped, `(?i)` for IGNORECASE, ASCII `\b`.
pub const PATTERNS: [(&str, &str); 77] = [
    (".click(", r"(?i).click"),
    ("/EmbeddedFile", r"/EmbeddedFile"),
    ("/FlateDecode", r"/FlateDecode"),
    ("/URI", r"/URI"),
    ("/bin/", r"/bin/"),
    ("/dev/", r"/dev/"),
    ("/proc/", r"/proc/"),
    ("/tmp/", r"/tmp/"),
    ("/usr/", r"/usr/"),
    ("<script", r"(?i)<script"),
    ("Invoke-Command", r"Invoke-Command"),
    ("Invoke-Expression", r"Invoke-Expression"),
    ("Start-process", r"Start-process"),
    ("base64", r"(?i)base64"),
    (
        "base64string",
        // The `+` is a quantifier in EMBER2024's pattern too: "...89+/".
        r"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    ),
    ("btc_wallet", r"[13][a-km-zA-HJ-NP-Z1-9]{25,34}"),
    ("cache", r"(?i)cache"),
    ("certificate", r"(?i)certificate"),
    ("clipboard", r"(?i)clipboard"),
    ("command", r"(?i)command"),
    ("connect", r"(?i)connect"),
    ("cookie", r"(?i)cookie"),
    ("create", r"(?i)create"),
    ("crypt", r"crypt"),
    ("debug", r"(?i)debug"),
    ("decode", r"(?i)decode"),
    ("delete", r"(?i)delete"),
    ("desktop", r"(?i)desktop"),
    ("directory", r"(?i)directory"),
    ("disk", r"(?i)disk"),
    ("dos_msg", r"!This program "),
    ("download", r"(?i)download"),
    // S1: a copy of mac_addr in EMBER2024.
    ("email_addr", r"\b(?:[0-9A-Fa-f]{2}[:-]){5}(?:[0-9A-Fa-f]{2})\b"),
    ("encode", r"(?i)encode"),
    ("enum", r"(?i)enum"),
    ("environment", r"(?i)environment"),
    ("exit", r"(?i)exit"),
    ("file", r"(?i)file"),
    ("file_path", r"\bC:/"),
    ("ftp", r"(?i)ftp:"),
    ("get", r"(?i)GET /"),
    ("hidden", r"(?i)hidden"),
    ("hostname", r"(?i)hostname"),
    ("html", r"(?i)html"),
    ("http", r"(?i)HTTP/"),
    ("http://", r"(?i)http://"),
    ("https://", r"(?i)https://"),
    ("install", r"(?i)install"),
    ("internet", r"(?i)internet"),
    (
        "ipv4_addr",
        r"\b(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\b",
    ),
    (
        "ipv6_addr",
        r"\b(?:[A-Fa-f0-9]{1,4}:){7}[A-Fa-f0-9]{1,4}\b|\b(?:[A-Fa-f0-9]{1,4}:){1,7}:\b|\b:[A-Fa-f0-9]{1,4}(?::[A-Fa-f0-9]{1,4}){1,6}\b",
    ),
    ("javascript", r"(?i)javascript"),
    ("keyboard", r"(?i)keyboard"),
    ("mac_addr", r"\b(?:[0-9A-Fa-f]{2}[:-]){5}(?:[0-9A-Fa-f]{2})\b"),
    ("memory", r"(?i)memory"),
    ("module", r"(?i)module"),
    ("mutex", r"(?i)mutex"),
    // S3: key "onlick", pattern "onclick".
    ("onlick", r"(?i)onclick"),
    ("password", r"(?i)password"),
    ("post", r"(?i)POST /"),
    ("powershell", r"(?i)powershell"),
    ("privilege", r"(?i)privilege"),
    ("process", r"(?i)process"),
    // S2: HKEY_ and HKLM never match.
    ("registry_key", r"\b(?:KHEY_|KHLM|HKCU)"),
    ("remote", r"(?i)remote"),
    ("resource", r"(?i)resource"),
    ("security", r"(?i)security"),
    ("service", r"(?i)service"),
    ("shell", r"(?i)shell"),
    ("snapshot", r"(?i)snapshot"),
    ("system", r"(?i)system"),
    ("thread", r"(?i)thread"),
    ("token", r"(?i)token"),
    (
        "url",
        r"\b(?:http|https|ftp)://[a-zA-Z0-9\-._~:?#\[\]@!$&'()*+,;=]+",
    ),
    ("useragent", r"(?i)User-Agent"),
    ("wallet", r"(?i)wallet"),
    ("window", r"(?i)window"),
];

fn set() -> Option<&'static RegexSet> {
    static SET: OnceLock<Option<RegexSet>> = OnceLock::new();
    SET.get_or_init(|| {
        // ASCII semantics: strings hold only 0x20..=0x7f, where Python's Unicode classes
        // and ASCII ones agree; (?-u) keeps `.` and `\b` byte-wise.
        let pats: Vec<String> = PATTERNS
            .iter()
            .map(|(_, p)| format!("(?-u:{p})"))
            .collect();
        RegexSet::new(pats).ok()
    })
    .as_ref()
}

/// Everything EMBER2024's StringExtractor keeps of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Strings {
    pub numstrings: u64,
    pub total_len: u64,
    pub printabledist: [u64; 96],
    /// Per key of [`PATTERNS`], the runs with at least one match.
    pub counts: [u64; 77],
}

pub fn strings(data: &[u8]) -> Strings {
    let mut st = Strings {
        numstrings: 0,
        total_len: 0,
        printabledist: [0; 96],
        counts: [0; 77],
    };
    let set = set();
    crate::bytes::for_each_printable_run(data, |start, end| {
        if end - start < 5 {
            return;
        }
        let run = &data[start..end];
        st.numstrings += 1;
        st.total_len += run.len() as u64;
        for &b in run {
            st.printabledist[usize::from(b - 0x20)] += 1;
        }
        if let Some(set) = set {
            for i in set.matches(run).iter() {
                st.counts[i] += 1;
            }
        }
    });
    st
}

/// StringExtractor's `entropy` (S7: float64 under numpy 2's promotion rules).
pub fn entropy(dist: &[u64; 96]) -> f64 {
    let csum: u64 = dist.iter().sum();
    if csum == 0 {
        return 0.0;
    }
    let cs = csum as f64;
    let terms: Vec<f64> = dist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c as f32) / cs;
            -p * p.log2()
        })
        .collect();
    super::np_pairwise_sum_f64(&terms)
}
