//! How results read: one line per result for people, counts for a summary, input order
//! for a batch that finishes out of order.

use crate::{ScanResult, Verdict};
use std::collections::BTreeMap;

/// Escapes control characters (a newline in a file name would forge a result line).
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

impl ScanResult {
    /// The result as one JSON object (`scan --json`); a result that cannot be encoded
    /// becomes an error object saying why.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"path\":null,\"verdict\":\"error\",\"error\":\"cannot encode result: {e}\"}}"
            )
        })
    }

    /// `PATH: MALICIOUS (score 0.981, family x) reasons: a +0.4, ...`, or `PATH: ERROR why`;
    /// control characters escaped.
    pub fn line(&self) -> String {
        let s = match self.verdict {
            Verdict::Error => {
                let msg = self.error.as_deref().unwrap_or("");
                // Library errors already start with the path.
                let msg = msg.strip_prefix(&format!("{}: ", self.path)).unwrap_or(msg);
                format!("{}: ERROR {msg}", self.path)
            }
            v => {
                let word = if v == Verdict::Malicious {
                    "MALICIOUS"
                } else {
                    "benign"
                };
                let family = self.family.as_ref().map(|f| format!(", family {f}"));
                let score = self.score.unwrap_or(f32::NAN);
                let mut s = format!(
                    "{}: {word} (score {score:.3}{})",
                    self.path,
                    family.unwrap_or_default()
                );
                if !self.reasons.is_empty() {
                    let names: Vec<String> = self
                        .reasons
                        .iter()
                        .map(|x| format!("{} {:+.3}", x.name, x.weight))
                        .collect();
                    s.push_str(&format!(" reasons: {}", names.join(", ")));
                }
                s
            }
        };
        escape_controls(&s)
    }
}

/// Verdict counts of a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub malicious: usize,
    pub benign: usize,
    pub errors: usize,
}

impl Tally {
    pub fn add(&mut self, r: &ScanResult) {
        match r.verdict {
            Verdict::Malicious => self.malicious += 1,
            Verdict::Benign => self.benign += 1,
            Verdict::Error => self.errors += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.malicious + self.benign + self.errors
    }

    /// The exit status, as clamscan's: 0 nothing found, 1 something malicious, 2 any error
    /// result (or `setup_errors`, such as rules that did not compile); 130 when
    /// interrupted, as a shell reports Ctrl-C.
    pub fn exit_code(&self, interrupted: bool, setup_errors: bool) -> u8 {
        if interrupted {
            130
        } else if self.errors > 0 || setup_errors {
            2
        } else if self.malicious > 0 {
            1
        } else {
            0
        }
    }
}

/// Holds back results that finish early so that they come out in input order.
#[derive(Debug)]
pub struct InOrder<T> {
    next: usize,
    held: BTreeMap<usize, T>,
}

impl<T> Default for InOrder<T> {
    fn default() -> Self {
        InOrder {
            next: 0,
            held: BTreeMap::new(),
        }
    }
}

impl<T> InOrder<T> {
    /// Result `i` is ready: returns it with every held result it unblocks, in order.
    pub fn push(&mut self, i: usize, r: T) -> Vec<T> {
        self.held.insert(i, r);
        let mut out = Vec::new();
        while let Some(r) = self.held.remove(&self.next) {
            out.push(r);
            self.next += 1;
        }
        out
    }
}

/// Panics on scan workers become error results carrying the message; the default hook's
/// backtrace notice on stderr would only be noise. Other threads keep the default hook.
pub fn quiet_worker_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let worker = std::thread::current()
            .name()
            .is_some_and(|n| n.starts_with(crate::WORKER_THREAD_PREFIX));
        if !worker {
            default(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clamscan's statuses (its man page): errors outrank detections, Ctrl-C outranks both.
    #[test]
    fn exit_codes_follow_clamscan() {
        let t = |malicious, benign, errors| Tally {
            malicious,
            benign,
            errors,
        };
        assert_eq!(t(0, 3, 0).exit_code(false, false), 0);
        assert_eq!(t(1, 3, 0).exit_code(false, false), 1);
        assert_eq!(t(1, 3, 1).exit_code(false, false), 2);
        assert_eq!(t(1, 3, 0).exit_code(false, true), 2);
        assert_eq!(t(0, 0, 0).exit_code(false, true), 2);
        assert_eq!(t(1, 0, 1).exit_code(true, true), 130);
    }

    #[test]
    fn results_come_out_in_input_order() {
        let mut o = InOrder::default();
        assert!(o.push(2, "c").is_empty());
        assert!(o.push(1, "b").is_empty());
        assert_eq!(o.push(0, "a"), ["a", "b", "c"]);
        assert_eq!(o.push(3, "d"), ["d"]);
    }

    #[test]
    fn a_newline_in_a_path_cannot_forge_a_second_line() {
        let r = ScanResult::error(
            std::path::Path::new("a\nb: MALICIOUS"),
            "cannot read".into(),
        );
        let line = r.line();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("a\\nb: MALICIOUS"), "{line}");
        assert!(line.contains(": ERROR "), "{line}");
        assert_eq!(escape_controls("x\u{7}\ty"), "x\\u{7}\\ty");
    }
}
