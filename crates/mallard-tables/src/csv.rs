//! A small streaming RFC 4180 reader: enough for feature tables. It reads one record at a
//! time into reused buffers (a table is never held as text or as one `String` per cell),
//! refuses cells over a byte cap and records wider than a column cap, and knows the line of
//! every record so that errors can point at the offending cell.

use crate::TableError;
use std::io::BufRead;

/// Most fields in one record (the header included): a line of commas must not become
/// millions of empty strings.
pub const MAX_COLUMNS: usize = 1_000_000;

/// Parser state carried between buffer refills.
#[derive(Default)]
struct State {
    in_quotes: bool,
    /// A quote seen inside a quoted field: the next byte says whether it was doubled.
    quote_pending: bool,
    was_quoted: bool,
    record_started: bool,
    /// A `\r` ended the last line; a `\n` right after it belongs to the same line end.
    skip_lf: bool,
    line: usize,
    record_line: usize,
    cell: Vec<u8>,
    n_fields: usize,
}

/// Reads records from `R` one at a time.
pub(crate) struct Reader<R> {
    r: R,
    p: Parser,
    started: bool,
}

/// Everything but the byte source, so the reader's buffer can be scanned in place.
struct Parser {
    path: String,
    max_cell: usize,
    /// Column names for errors, once the header is read.
    pub names: Vec<String>,
    /// Most fields a record may have (the header's width, once known).
    pub max_fields: usize,
    st: State,
}

enum Step {
    /// The buffer ran out mid-record.
    More,
    /// A record ended after this many bytes of the buffer.
    Record(usize),
}

impl<R: BufRead> Reader<R> {
    pub fn new(r: R, path: &str, max_cell: usize) -> Self {
        Reader {
            r,
            p: Parser {
                path: path.to_string(),
                max_cell,
                names: Vec::new(),
                max_fields: MAX_COLUMNS,
                st: State {
                    line: 1,
                    record_line: 1,
                    ..State::default()
                },
            },
            started: false,
        }
    }

    /// Names columns in later errors and caps later records at the header's width.
    pub fn set_header(&mut self, names: &[String]) {
        self.p.names = names.to_vec();
        self.p.max_fields = names.len().max(1);
    }

    /// Reads the next record into `fields` (its strings are reused; it is truncated to the
    /// record's width) and returns the 1-based line the record starts on; `None` at the end.
    /// Blank lines are skipped (the published ClaMP integrated file ends with two).
    pub fn next_record(&mut self, fields: &mut Vec<String>) -> Result<Option<usize>, TableError> {
        let io = |p: &Parser, source| TableError::Io {
            path: p.path.clone(),
            source,
        };
        if !self.started {
            self.started = true;
            let buf = self.r.fill_buf().map_err(|e| io(&self.p, e))?;
            if buf.starts_with(b"\xef\xbb\xbf") {
                self.r.consume(3);
            }
        }
        self.p.st.n_fields = 0;
        loop {
            let buf = match self.r.fill_buf() {
                Ok(b) => b,
                Err(e) => return Err(io(&self.p, e)),
            };
            if buf.is_empty() {
                return self.p.at_end(fields);
            }
            let len = buf.len();
            match self.p.scan(buf, fields)? {
                Step::More => self.r.consume(len),
                Step::Record(n) => {
                    self.r.consume(n);
                    let line = self.p.st.record_line;
                    self.p.st.record_line = self.p.st.line;
                    fields.truncate(self.p.st.n_fields);
                    return Ok(Some(line));
                }
            }
        }
    }
}

impl Parser {
    fn column(&self, k: usize) -> String {
        self.names
            .get(k)
            .cloned()
            .unwrap_or_else(|| format!("#{}", k + 1))
    }

    fn syntax(&self, line: usize, msg: &str) -> TableError {
        TableError::Syntax {
            path: self.path.clone(),
            line,
            msg: msg.to_string(),
        }
    }

    /// Ends the current field: checks its UTF-8 and stores it in `fields[n_fields]`.
    fn end_field(&mut self, fields: &mut Vec<String>) -> Result<(), TableError> {
        let k = self.st.n_fields;
        if k >= self.max_fields {
            return Err(self.syntax(
                self.st.record_line,
                &format!("more than {} fields", self.max_fields),
            ));
        }
        let text = std::str::from_utf8(&self.st.cell).map_err(|_| TableError::Cell {
            path: self.path.clone(),
            line: self.st.line,
            column: self.column(k),
            msg: "not UTF-8 text".into(),
        })?;
        match fields.get_mut(k) {
            Some(f) => {
                f.clear();
                f.push_str(text);
            }
            None => fields.push(text.to_string()),
        }
        self.st.cell.clear();
        self.st.n_fields += 1;
        self.st.was_quoted = false;
        Ok(())
    }

    fn push(&mut self, b: u8) -> Result<(), TableError> {
        if self.st.cell.len() >= self.max_cell {
            return Err(TableError::Cell {
                path: self.path.clone(),
                line: self.st.record_line,
                column: self.column(self.st.n_fields),
                msg: format!("a cell longer than {} bytes", self.max_cell),
            });
        }
        self.st.cell.push(b);
        Ok(())
    }

    /// Runs the state machine over `buf` until a record ends or the buffer does.
    fn scan(&mut self, buf: &[u8], fields: &mut Vec<String>) -> Result<Step, TableError> {
        for (i, &b) in buf.iter().enumerate() {
            if self.st.skip_lf {
                self.st.skip_lf = false;
                if b == b'\n' {
                    continue;
                }
            }
            if self.st.in_quotes {
                if self.st.quote_pending {
                    self.st.quote_pending = false;
                    if b == b'"' {
                        self.push(b'"')?;
                        continue;
                    }
                    self.st.in_quotes = false;
                    // Fall through: `b` is the first byte after the closing quote.
                } else {
                    match b {
                        b'"' => self.st.quote_pending = true,
                        b'\n' => {
                            self.st.line += 1;
                            self.push(b)?;
                        }
                        _ => self.push(b)?,
                    }
                    continue;
                }
            }
            match b {
                b'"' if self.st.cell.is_empty() && !self.st.was_quoted => {
                    self.st.in_quotes = true;
                    self.st.was_quoted = true;
                    self.st.record_started = true;
                }
                b'"' => {
                    return Err(self.syntax(self.st.line, "stray quote inside an unquoted field"))
                }
                b',' => {
                    self.end_field(fields)?;
                    self.st.record_started = true;
                }
                b'\n' | b'\r' => {
                    self.st.skip_lf = b == b'\r';
                    let record = self.st.record_started || !self.st.cell.is_empty();
                    if record {
                        self.end_field(fields)?;
                    }
                    self.st.was_quoted = false;
                    self.st.record_started = false;
                    self.st.line += 1;
                    if record {
                        return Ok(Step::Record(i + 1));
                    }
                    self.st.record_line = self.st.line;
                }
                _ => {
                    if !self.st.was_quoted {
                        self.push(b)?;
                        self.st.record_started = true;
                    } else if !b.is_ascii_whitespace() {
                        return Err(self.syntax(self.st.line, "text after a closing quote"));
                    }
                }
            }
        }
        Ok(Step::More)
    }

    fn at_end(&mut self, fields: &mut Vec<String>) -> Result<Option<usize>, TableError> {
        if self.st.in_quotes && !self.st.quote_pending {
            return Err(self.syntax(self.st.record_line, "unterminated quoted field"));
        }
        self.st.in_quotes = false;
        self.st.quote_pending = false;
        if self.st.record_started || !self.st.cell.is_empty() {
            self.end_field(fields)?;
            self.st.record_started = false;
            fields.truncate(self.st.n_fields);
            let line = self.st.record_line;
            return Ok(Some(line));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        t: &str,
        path: &str,
        max_cell: usize,
    ) -> Result<Vec<(usize, Vec<String>)>, TableError> {
        // A 3-byte buffer makes records, quotes and CRLFs straddle refills.
        let r = std::io::BufReader::with_capacity(3, t.as_bytes());
        let mut rd = Reader::new(r, path, max_cell);
        let mut out = Vec::new();
        let mut f = Vec::new();
        while let Some(line) = rd.next_record(&mut f)? {
            out.push((line, f.clone()));
        }
        Ok(out)
    }

    fn rows(t: &str) -> Vec<(usize, Vec<String>)> {
        parse(t, "t.csv", 1 << 20).unwrap()
    }

    #[test]
    fn quotes_newlines_and_blank_lines() {
        let r = rows("\u{feff}a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\n\"multi\nline\",\n3,4");
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(r[1].1, vec!["x,1", "say \"hi\""]);
        assert_eq!(r[2], (4, vec!["multi\nline".to_string(), String::new()]));
        assert_eq!(r[3], (6, vec!["3".to_string(), "4".to_string()]));
    }

    #[test]
    fn lone_cr_ends_lines_and_a_quoted_last_field_ends_the_file() {
        let r = rows("a,b\r1,\"2\"");
        assert_eq!(
            r,
            vec![
                (1, vec!["a".into(), "b".into()]),
                (2, vec!["1".into(), "2".into()])
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a,b\n1,2\n3,\"x", "f.csv", 99)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("f.csv:3"), "{e}");
        let e = parse("a,b\n1,x\"y\n", "f.csv", 99)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("f.csv:2"), "{e}");
    }

    #[test]
    fn long_cells_wide_records_and_bad_utf8_are_refused() {
        let e = parse("a,b\n1,12345\n", "f.csv", 4)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("f.csv:2") && e.contains("longer than 4 bytes"),
            "{e}"
        );
        assert!(e.contains("#2"), "{e}");
        let e = parse("a,b\n1,\"ab\ncd\"\n", "f.csv", 4)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("longer than 4 bytes"), "{e}");
        let mut rd = Reader::new("a,b\n1,2,3\n".as_bytes(), "w.csv", 9);
        let mut f = Vec::new();
        rd.next_record(&mut f).unwrap();
        rd.set_header(&f.clone());
        let e = rd.next_record(&mut f).err().unwrap().to_string();
        assert!(
            e.contains("w.csv:2") && e.contains("more than 2 fields"),
            "{e}"
        );
        let mut rd = Reader::new(&b"a,b\n1,\xff\n"[..], "u.csv", 9);
        rd.set_header(&["a".into(), "b".into()]);
        rd.next_record(&mut f).unwrap();
        let e = rd.next_record(&mut f).err().unwrap().to_string();
        assert!(
            e.contains("u.csv:2") && e.contains("\"b\"") && e.contains("UTF-8"),
            "{e}"
        );
    }
}
