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
    (
        "email_addr",
        r"\b(?:[0-9A-Fa-f]{2}[:-]){5}(?:[0-9A-Fa-f]{2})\b",
    ),
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
    (
        "mac_addr",
        r"\b(?:[0-9A-Fa-f]{2}[:-]){5}(?:[0-9A-Fa-f]{2})\b",
    ),
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

/// How each pattern is searched: most are literals (one Aho-Corasick pass per run finds them
/// all, case-folded or not); the rest go to one regex set. Same answers as the regexes, much
/// less work per run (measured in docs/decisions.md).
enum How {
    /// Case-insensitive literal; `true` when a character must precede it (`.click`).
    Folded(&'static str, bool),
    Exact(&'static str),
    Regex,
}

fn how(key: &str, pat: &'static str) -> How {
    match key {
        ".click(" => How::Folded("click", true),
        "base64string" | "btc_wallet" | "email_addr" | "mac_addr" | "file_path" | "ipv4_addr"
        | "ipv6_addr" | "registry_key" | "url" => How::Regex,
        _ => match pat.strip_prefix("(?i)") {
            Some(lit) => How::Folded(lit, false),
            None => How::Exact(pat),
        },
    }
}

struct Matchers {
    /// Every literal, case-folded, leftmost-first: finds whether a run holds any literal
    /// at all (with a SIMD prefilter where the overlapping automata have none). Only runs
    /// it finds go to the overlapping searches.
    any: aho_corasick::AhoCorasick,
    folded: aho_corasick::AhoCorasick,
    /// Pattern id of `folded` -> (key index, needs a preceding character).
    folded_keys: Vec<(usize, bool)>,
    exact: aho_corasick::AhoCorasick,
    exact_keys: Vec<usize>,
    regex: RegexSet,
    regex_keys: Vec<usize>,
}

fn matchers() -> Option<&'static Matchers> {
    static M: OnceLock<Option<Matchers>> = OnceLock::new();
    M.get_or_init(|| {
        let (mut f, mut fk, mut e, mut ek, mut r, mut rk) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (i, &(key, pat)) in PATTERNS.iter().enumerate() {
            match how(key, pat) {
                How::Folded(lit, pre) => {
                    f.push(lit);
                    fk.push((i, pre));
                }
                How::Exact(lit) => {
                    e.push(lit);
                    ek.push(i);
                }
                How::Regex => {
                    // ASCII semantics: runs hold only 0x20..=0x7f, where Python's Unicode
                    // classes and ASCII ones agree.
                    r.push(format!("(?-u:{pat})"));
                    rk.push(i);
                }
            }
        }
        let dfa = Some(aho_corasick::AhoCorasickKind::DFA);
        let all: Vec<&str> = f.iter().chain(e.iter()).copied().collect();
        Some(Matchers {
            any: aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(aho_corasick::MatchKind::LeftmostFirst)
                .build(&all)
                .ok()?,
            folded: aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .kind(dfa)
                .build(&f)
                .ok()?,
            folded_keys: fk,
            exact: aho_corasick::AhoCorasick::builder()
                .kind(dfa)
                .build(&e)
                .ok()?,
            exact_keys: ek,
            regex: RegexSet::new(r).ok()?,
            regex_keys: rk,
        })
    })
    .as_ref()
}

/// Which of the 77 patterns `run` contains (Python's `re.search` on the decoded string).
pub fn run_matches(run: &[u8], hit: &mut [bool; 77]) {
    *hit = [false; 77];
    let Some(m) = matchers() else { return };
    for x in m.folded.find_overlapping_iter(run) {
        let (k, pre) = m.folded_keys[x.pattern().as_usize()];
        if !pre || x.start() > 0 {
            hit[k] = true;
        }
    }
    for x in m.exact.find_overlapping_iter(run) {
        hit[m.exact_keys[x.pattern().as_usize()]] = true;
    }
    for i in m.regex.matches(run).iter() {
        hit[m.regex_keys[i]] = true;
    }
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

/// What a run must contain for any of the regex patterns to match (each needs `:`, `.` or
/// `-`, `KH`/`HK`, base64string's alphabet, or btc_wallet's 26 characters led by 1 or 3):
/// most runs skip the regex set.
/// Byte classes for [`regex_may_match`]: bit 1 `:` `.` `-`, bit 2 `K` `H`, bit 4 `1` `3`,
/// bit 8 `A`.
const CLASS: [u8; 128] = {
    let mut t = [0u8; 128];
    t[b':' as usize] = 1;
    t[b'.' as usize] = 1;
    t[b'-' as usize] = 1;
    t[b'K' as usize] = 2;
    t[b'H' as usize] = 2;
    t[b'1' as usize] = 4;
    t[b'3' as usize] = 4;
    t[b'A' as usize] = 8;
    t
};

fn regex_may_match(run: &[u8], f: u8) -> bool {
    f & 1 != 0
        || (f & 4 != 0 && run.len() >= 26)
        || (f & 2 != 0
            && (memchr::memmem::find(run, b"KH").is_some()
                || memchr::memmem::find(run, b"HK").is_some()))
        || (f & 8 != 0 && memchr::memmem::find(run, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ").is_some())
}

pub fn strings(data: &[u8]) -> Strings {
    let mut st = Strings {
        numstrings: 0,
        total_len: 0,
        printabledist: [0; 96],
        counts: [0; 77],
    };
    let m = matchers();
    // Four interleaved tables: runs of one character do not serialise on one counter.
    let mut dist4 = [[0u64; 128]; 4];
    // The runs joined by NUL (no literal holds one), searched by one automaton pass each
    // instead of one call per run; `ends[i]` is where run i ends in `joined`.
    // At most every byte in a run plus a separator per run of 5+: one allocation, and only
    // the pages written are ever touched.
    let mut joined: Vec<u8> = Vec::with_capacity(data.len() + data.len() / 5 + 1);
    let mut ends: Vec<usize> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    crate::bytes::for_each_printable_run(data, |start, end| {
        if end - start < 5 {
            return;
        }
        let run = &data[start..end];
        st.numstrings += 1;
        st.total_len += run.len() as u64;
        let mut f = 0u8;
        let mut q = run.chunks_exact(4);
        for c in &mut q {
            let (a, b, x, y) = (
                usize::from(c[0] & 0x7f),
                usize::from(c[1] & 0x7f),
                usize::from(c[2] & 0x7f),
                usize::from(c[3] & 0x7f),
            );
            dist4[0][a] += 1;
            dist4[1][b] += 1;
            dist4[2][x] += 1;
            dist4[3][y] += 1;
            f |= CLASS[a] | CLASS[b] | CLASS[x] | CLASS[y];
        }
        for &b in q.remainder() {
            dist4[0][usize::from(b & 0x7f)] += 1;
            f |= CLASS[usize::from(b & 0x7f)];
        }
        if let Some(m) = m {
            if regex_may_match(run, f) {
                for i in m.regex.matches(run).iter() {
                    st.counts[m.regex_keys[i]] += 1;
                }
            }
        }
        starts.push(joined.len());
        joined.extend_from_slice(run);
        ends.push(joined.len());
        joined.push(0);
    });
    for (k, d) in st.printabledist.iter_mut().enumerate() {
        *d = dist4.iter().map(|t| t[k + 0x20]).sum();
    }
    let Some(m) = m else { return st };
    // A key counts a run once. Runs holding no literal at all (most of them) are passed
    // over by one leftmost search; the runs it stops in are searched for every match.
    let mut seen = [usize::MAX; 77];
    let (mut pos, mut r) = (0usize, 0usize);
    while pos < joined.len() {
        let input = aho_corasick::Input::new(&joined).span(pos..joined.len());
        let Some(x) = m.any.find(input) else { break };
        while ends[r] < x.end() {
            r += 1;
        }
        let run = &joined[starts[r]..ends[r]];
        for y in m.folded.find_overlapping_iter(run) {
            let (k, pre) = m.folded_keys[y.pattern().as_usize()];
            if (!pre || y.start() > 0) && seen[k] != r {
                seen[k] = r;
                st.counts[k] += 1;
            }
        }
        for y in m.exact.find_overlapping_iter(run) {
            let k = m.exact_keys[y.pattern().as_usize()];
            if seen[k] != r {
                seen[k] = r;
                st.counts[k] += 1;
            }
        }
        pos = ends[r] + 1;
        r += 1;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal/regex split gives what the 77 regexes give, on strings made to hit
    /// every pattern, their case variants and near misses.
    #[test]
    fn split_matchers_agree_with_the_plain_regexes() {
        let all: Vec<regex::bytes::Regex> = PATTERNS
            .iter()
            .map(|(_, p)| regex::bytes::Regex::new(&format!("(?-u:{p})")).unwrap())
            .collect();
        let mut samples: Vec<String> = Vec::new();
        for (k, p) in PATTERNS.iter() {
            let lit = p.trim_start_matches("(?i)");
            samples.push(format!("xx{k}yy"));
            samples.push(lit.to_uppercase());
            samples.push(lit.to_string());
            samples.push(format!("z{}", lit.to_lowercase()));
        }
        samples.extend(
            [
                "click here",
                "Xclick",
                "see http://a.b/c?d=1",
                "10.0.0.255",
                "1.2.3.999",
                "fe80::1:2",
                "aa:bb:cc:dd:ee:ff",
                "aa-bb-cc-dd-ee-fg",
                "C:/Windows",
                "xC:/a",
                "HKCU\\Software",
                "HKEY_LOCAL",
                "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz012345678/",
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789999/",
                "GET /index",
                "get /x",
                "onClick=",
                "!This program cannot",
                "\x7fpowershell",
            ]
            .map(String::from),
        );
        let mut hit = [false; 77];
        for s in &samples {
            run_matches(s.as_bytes(), &mut hit);
            for (i, re) in all.iter().enumerate() {
                assert_eq!(hit[i], re.is_match(s.as_bytes()), "{s:?} {}", PATTERNS[i].0);
            }
        }
    }
}
