//! A small RFC 4180 reader: enough for feature tables, and it knows the line of every record
//! so that errors can point at the offending cell.

use crate::TableError;

/// One CSV record and the (1-based) line it starts on.
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// Splits `text` into records. Quoted fields may hold commas, doubled quotes and newlines.
/// Blank lines are skipped (the published ClaMP integrated file ends with two).
pub(crate) fn parse(text: &str, path: &str) -> Result<Vec<Record>, TableError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut was_quoted = false;
    let mut line = 1usize;
    let mut record_line = 1usize;
    let mut chars = text.chars().peekable();
    let mut record_started = false;
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !was_quoted => {
                in_quotes = true;
                was_quoted = true;
                record_started = true;
            }
            '"' => {
                return Err(TableError::Syntax {
                    path: path.to_string(),
                    line,
                    msg: "stray quote inside an unquoted field".into(),
                })
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                was_quoted = false;
                record_started = true;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => {
                if record_started || !field.is_empty() {
                    fields.push(std::mem::take(&mut field));
                    out.push(Record {
                        line: record_line,
                        fields: std::mem::take(&mut fields),
                    });
                }
                was_quoted = false;
                record_started = false;
                line += 1;
                record_line = line;
            }
            _ => {
                if !was_quoted {
                    field.push(c);
                    record_started = true;
                } else if !c.is_whitespace() {
                    return Err(TableError::Syntax {
                        path: path.to_string(),
                        line,
                        msg: "text after a closing quote".into(),
                    });
                }
            }
        }
    }
    if in_quotes {
        return Err(TableError::Syntax {
            path: path.to_string(),
            line: record_line,
            msg: "unterminated quoted field".into(),
        });
    }
    if record_started || !field.is_empty() {
        fields.push(field);
        out.push(Record {
            line: record_line,
            fields,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &str) -> Vec<(usize, Vec<String>)> {
        parse(t, "t.csv")
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.fields))
            .collect()
    }

    #[test]
    fn quotes_newlines_and_blank_lines() {
        let r = rows("a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\n\n\"multi\nline\",\n3,4");
        assert_eq!(r.len(), 4);
        assert_eq!(r[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(r[1].1, vec!["x,1", "say \"hi\""]);
        assert_eq!(r[2], (4, vec!["multi\nline".to_string(), String::new()]));
        assert_eq!(r[3], (6, vec!["3".to_string(), "4".to_string()]));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a,b\n1,2\n3,\"x", "f.csv").err().unwrap().to_string();
        assert!(e.contains("f.csv:3"), "{e}");
        let e = parse("a,b\n1,x\"y\n", "f.csv").err().unwrap().to_string();
        assert!(e.contains("f.csv:2"), "{e}");
    }
}
