//! A byte filter between the decompressor and the JSON parser that bounds what any one
//! JSON token can cost.
//!
//! serde_json collects every string it hands to a visitor (keys included) in a buffer of
//! any length, and skips unwanted values one byte at a time. So a report holding a 1 GB
//! string costs gigabytes of memory, or many seconds to skip. This filter tracks just
//! enough JSON syntax to know where strings are, and:
//! - replaces every string longer than `max_string` bytes (as written, escapes included)
//!   by [`OVERLONG`], without buffering more than `max_string` bytes of it; the scan for
//!   the closing quote runs over whole buffers (memchr), so a 1 GB string takes well under
//!   a second;
//! - keeps at most [`MAX_RUN`] bytes of a run of whitespace or number characters outside
//!   strings, so those cannot be used to stall the parser either.
//!
//! Invalid JSON stays invalid or becomes other JSON; either way the cost stays bounded.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::rc::Rc;

/// What an over-long string is replaced by: U+FFFF, a Unicode noncharacter that no
/// sandbox writes in names or hashes.
pub(crate) const OVERLONG: &str = "\u{FFFF}";

/// Whitespace or number characters kept in one run outside strings.
const MAX_RUN: usize = 256;

/// True when `s` came from an over-long string in the input.
pub(crate) fn is_overlong(s: &str) -> bool {
    s.contains(OVERLONG)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    /// Inside a string; `escape` when the previous byte was an unescaped backslash.
    InString {
        escape: bool,
    },
}

pub(crate) struct Guard<R> {
    inner: R,
    max_string: usize,
    state: State,
    /// Content of the current string while it is at most `max_string` bytes.
    held: Vec<u8>,
    /// The current string went over `max_string`: its content is being dropped.
    dropping: bool,
    ws_run: usize,
    num_run: usize,
    /// The last string was over-long; the next non-space byte says if it was a key.
    long_pending: bool,
    out: Vec<u8>,
    out_pos: usize,
    /// The input chunk being filtered (reused).
    scratch: Vec<u8>,
    done: bool,
    /// Over-long strings seen so far.
    pub overlong: Rc<Cell<u64>>,
    /// Of those, the ones that were object keys.
    pub long_keys: Rc<Cell<u64>>,
}

impl<R: BufRead> Guard<R> {
    pub(crate) fn new(inner: R, max_string: usize) -> Self {
        Guard {
            inner,
            max_string,
            state: State::Outside,
            held: Vec::new(),
            dropping: false,
            ws_run: 0,
            num_run: 0,
            long_pending: false,
            out: Vec::new(),
            out_pos: 0,
            scratch: Vec::new(),
            done: false,
            overlong: Rc::new(Cell::new(0)),
            long_keys: Rc::new(Cell::new(0)),
        }
    }

    /// Filters one chunk into `self.out`.
    fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            match self.state {
                State::Outside => {
                    let mut i = 0;
                    while i < chunk.len() {
                        let b = chunk[i];
                        i += 1;
                        if self.long_pending && !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                            self.long_pending = false;
                            if b == b':' {
                                self.long_keys.set(self.long_keys.get().saturating_add(1));
                            }
                        }
                        if b == b'"' {
                            self.state = State::InString { escape: false };
                            self.held.clear();
                            self.dropping = false;
                            self.ws_run = 0;
                            self.num_run = 0;
                            break;
                        }
                        if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                            self.num_run = 0;
                            self.ws_run += 1;
                            if self.ws_run > MAX_RUN {
                                continue;
                            }
                        } else if matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                            self.ws_run = 0;
                            self.num_run += 1;
                            if self.num_run > MAX_RUN {
                                continue;
                            }
                        } else {
                            self.ws_run = 0;
                            self.num_run = 0;
                        }
                        self.out.push(b);
                    }
                    chunk = &chunk[i..];
                }
                State::InString { escape: true } => {
                    // The escaped byte itself: never a string end.
                    self.keep(&chunk[..1]);
                    chunk = &chunk[1..];
                    self.state = State::InString { escape: false };
                }
                State::InString { escape: false } => match memchr::memchr2(b'"', b'\\', chunk) {
                    None => {
                        self.keep(chunk);
                        chunk = &[];
                    }
                    Some(i) => {
                        self.keep(&chunk[..i]);
                        if chunk[i] == b'\\' {
                            self.keep(&chunk[i..i + 1]);
                            self.state = State::InString { escape: true };
                        } else {
                            self.close_string();
                            self.state = State::Outside;
                        }
                        chunk = &chunk[i + 1..];
                    }
                },
            }
        }
    }

    /// Adds string content, switching to dropping once the string is over the cap.
    fn keep(&mut self, bytes: &[u8]) {
        if self.dropping {
            return;
        }
        if self.held.len() + bytes.len() > self.max_string {
            self.dropping = true;
            self.held = Vec::new();
        } else {
            self.held.extend_from_slice(bytes);
        }
    }

    fn close_string(&mut self) {
        self.out.push(b'"');
        if self.dropping {
            self.out.extend_from_slice(OVERLONG.as_bytes());
            self.overlong.set(self.overlong.get().saturating_add(1));
            self.dropping = false;
            self.long_pending = true;
        } else {
            self.out.extend_from_slice(&self.held);
            self.held.clear();
        }
        self.out.push(b'"');
    }
}

impl<R: BufRead> Read for Guard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() && !self.done {
            self.out.clear();
            self.out_pos = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                // An unterminated string: pass on what was kept so the parser reports
                // the truncation itself.
                if let State::InString { .. } = self.state {
                    self.out.push(b'"');
                    if !self.dropping {
                        let held = std::mem::take(&mut self.held);
                        self.out.extend_from_slice(&held);
                    }
                }
                self.done = true;
                break;
            }
            let n = chunk.len();
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            scratch.extend_from_slice(chunk);
            self.inner.consume(n);
            self.feed(&scratch);
            self.scratch = scratch;
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], cap: usize, chunk: usize) -> (Vec<u8>, u64) {
        // A reader that hands out `chunk` bytes at a time, to cross every boundary.
        let r = io::BufReader::with_capacity(chunk, input);
        let mut g = Guard::new(r, cap);
        let mut out = Vec::new();
        g.read_to_end(&mut out).unwrap();
        (out, g.overlong.get())
    }

    #[test]
    fn short_strings_and_escapes_pass_unchanged_at_any_chunking() {
        let json = br#"{"a\"b": "x\\", "c": ["\u0041\"", 1.5e3, true], "d": "abcd"}"#;
        for chunk in 1..json.len() + 1 {
            // The longest string, `\u0041\"`, is 8 bytes as written.
            let (out, n) = run(json, 8, chunk);
            assert_eq!(out, json.to_vec(), "chunk {chunk}");
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn long_strings_are_replaced_and_counted() {
        let json = br#"{"k": "abcdefghi", "abcdefghij" : "x\"yz\\", "l": "ab\"c"}"#;
        let want = "{\"k\": \"\u{FFFF}\", \"\u{FFFF}\" : \"x\\\"yz\\\\\", \"l\": \"ab\\\"c\"}";
        for chunk in 1..json.len() + 1 {
            let (out, n) = run(json, 8, chunk);
            assert_eq!(String::from_utf8(out).unwrap(), want, "chunk {chunk}");
            assert_eq!(n, 2);
        }
        // One of the two was a key (the space before its colon included).
        let mut g = Guard::new(io::BufReader::with_capacity(3, &json[..]), 8);
        io::copy(&mut g, &mut io::sink()).unwrap();
        assert_eq!((g.overlong.get(), g.long_keys.get()), (2, 1));
        // The filtered text is still the JSON serde_json expects.
        let (out, _) = run(json, 8, 7);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["l"], "ab\"c");
        assert_eq!(v["k"], OVERLONG);
    }

    #[test]
    fn runs_of_space_and_digits_are_capped() {
        let mut json = b"[".to_vec();
        json.extend(std::iter::repeat_n(b' ', 10_000));
        json.extend(std::iter::repeat_n(b'7', 10_000));
        json.extend(b", 1]");
        let (out, _) = run(&json, 16, 4096);
        assert_eq!(out.len(), 1 + MAX_RUN + MAX_RUN + 4);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[1], 1);
    }

    #[test]
    fn unterminated_string_stays_unterminated() {
        let (out, _) = run(br#"{"a": "abc"#, 100, 3);
        assert_eq!(out, br#"{"a": "abc"#.to_vec());
        assert!(serde_json::from_slice::<serde_json::Value>(&out).is_err());
    }
}
