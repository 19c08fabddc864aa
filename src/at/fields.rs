//! Splitting the parameter part of an information response or URC into fields.
//!
//! 27.007 §4.1 / V.250 §5.7: parameters are separated by commas, strings are quoted,
//! lists of supported values are parenthesised (`+COPS=?`, `+CPMS=?`). Real modems add
//! spaces after commas (MF710M: `+CPMS: "ME", 0, 50, …`) and leave optional fields empty
//! (`+CMT: ,34`, `+CLIP: "+49…",145,,,,0`), so the splitter is whitespace tolerant and
//! keeps empty fields as [`Field::is_empty`] values.
//!
//! Quoted content is returned as it is on the wire (no `\HH` unescaping): modems print
//! what they stored, and a USSD text with a backslash must reach the decoder unchanged.

/// One comma-separated field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// A `"…"` string; the text between the quotes (may contain `\r\n` for multi-line `+CUSD`).
    Quoted(&'a str),
    /// A bare token with surrounding whitespace trimmed; empty when the field was omitted.
    Bare(&'a str),
    /// A `( … )` group (test-command lists); the text between the outer parentheses.
    Group(&'a str),
}

impl<'a> Field<'a> {
    /// The field's text: the inside of a quoted string or group, or the bare token.
    pub fn text(&self) -> &'a str {
        match *self {
            Field::Quoted(s) | Field::Bare(s) | Field::Group(s) => s,
        }
    }

    /// `true` for an omitted field (`,,`). An empty quoted string `""` is not empty here.
    pub fn is_empty(&self) -> bool {
        matches!(self, Field::Bare(""))
    }

    /// `true` if the field was quoted.
    pub fn is_quoted(&self) -> bool {
        matches!(self, Field::Quoted(_))
    }

    /// The text, or `None` for an omitted field.
    pub fn opt_text(&self) -> Option<&'a str> {
        if self.is_empty() {
            None
        } else {
            Some(self.text())
        }
    }

    /// A decimal number (quoted or bare, surrounding whitespace ignored).
    pub fn int<T: std::str::FromStr>(&self) -> Option<T> {
        let t = self.text().trim();
        if t.is_empty() {
            return None;
        }
        // Some firmware prints `+05`; FromStr for unsigned types rejects a sign, so strip it.
        let t = t.strip_prefix('+').unwrap_or(t);
        t.parse().ok()
    }
}

/// Split `s` (the part after `+XXX: `) into fields. Never fails: an unterminated quote or
/// parenthesis runs to the end of the input.
pub fn split(s: &str) -> Vec<Field<'_>> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    if s.trim().is_empty() {
        return out;
    }
    loop {
        while i < bytes.len() && is_space(bytes[i]) {
            i += 1;
        }
        let field;
        match bytes.get(i) {
            Some(b'"') => {
                let start = i + 1;
                let end = s[start..].find('"').map_or(bytes.len(), |p| start + p);
                field = Field::Quoted(&s[start..end]);
                i = (end + 1).min(bytes.len());
                // Ignore anything between the closing quote and the next comma.
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
            }
            Some(b'(') => {
                let start = i + 1;
                let mut depth = 1usize;
                let mut in_quote = false;
                let mut j = start;
                while j < bytes.len() {
                    match bytes[j] {
                        b'"' => in_quote = !in_quote,
                        b'(' if !in_quote => depth += 1,
                        b')' if !in_quote => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                field = Field::Group(&s[start..j]);
                i = (j + 1).min(bytes.len());
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while i < bytes.len() && bytes[i] != b',' {
                    i += 1;
                }
                field = Field::Bare(s[start..i].trim());
            }
        }
        out.push(field);
        if i >= bytes.len() {
            break;
        }
        // bytes[i] == b','
        i += 1;
    }
    out
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// The parameter text after `prefix:` (e.g. `payload("+CSQ: 18,99", "+CSQ")` is `"18,99"`),
/// or `None` if the line does not start with that prefix. The prefix is matched
/// ASCII-case-insensitively and the colon may be followed by any amount of whitespace,
/// or none (`+ZUSIMR:2`).
pub fn payload<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let rest = line[prefix.len()..].trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix(':')?;
    Some(rest.trim_start_matches([' ', '\t']).trim_end())
}

/// The `+XXX` / `^XXX` name at the start of an information line, without the colon
/// (`"+CSQ"` for `+CSQ: 18,99`), or `None` for bare text.
pub fn name(line: &str) -> Option<&str> {
    let first = *line.as_bytes().first()?;
    if !matches!(first, b'+' | b'^' | b'$' | b'%' | b'*' | b'#') {
        return None;
    }
    let end = line
        .bytes()
        .position(|b| b == b':' || b == b' ')
        .unwrap_or(line.len());
    if end <= 1 {
        return None;
    }
    Some(&line[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_splits_quoted_bare_and_empty_fields() {
        let f = split(r#""+4917612345678",145,,,,0"#);
        assert_eq!(
            f,
            vec![
                Field::Quoted("+4917612345678"),
                Field::Bare("145"),
                Field::Bare(""),
                Field::Bare(""),
                Field::Bare(""),
                Field::Bare("0"),
            ]
        );
        assert!(f[2].is_empty());
        assert_eq!(f[1].int::<u8>(), Some(145));
    }

    #[test]
    fn it_tolerates_spaces_after_commas() {
        let f = split(r#""ME", 0, 50, "ME", 0, 50"#);
        assert_eq!(f.len(), 6);
        assert_eq!(f[3], Field::Quoted("ME"));
        assert_eq!(f[5].int::<u32>(), Some(50));
    }

    #[test]
    fn it_keeps_commas_and_crlf_inside_quotes() {
        let f = split("0,\"line1,\r\nline2\",15");
        assert_eq!(f[1], Field::Quoted("line1,\r\nline2"));
        assert_eq!(f[2].int::<u8>(), Some(15));
    }

    #[test]
    fn it_reads_parenthesised_groups() {
        let f = split(
            r#"(2,"o2 - de","o2 - de","26207",2),(3,"Telekom.de","TDG","26201",0),,(0,1,2,3,4),(0,1,2)"#,
        );
        assert_eq!(f.len(), 5);
        assert_eq!(f[0], Field::Group(r#"2,"o2 - de","o2 - de","26207",2"#));
        assert!(f[2].is_empty());
        assert_eq!(f[4], Field::Group("0,1,2"));
    }

    #[test]
    fn it_survives_unterminated_quotes_and_groups() {
        assert_eq!(split("\"abc"), vec![Field::Quoted("abc")]);
        assert_eq!(split("(1,\"x"), vec![Field::Group("1,\"x")]);
        assert_eq!(split(""), Vec::<Field>::new());
        assert_eq!(split(","), vec![Field::Bare(""), Field::Bare("")]);
    }

    #[test]
    fn payload_matches_prefix_and_colon() {
        assert_eq!(payload("+CSQ: 18,99", "+CSQ"), Some("18,99"));
        assert_eq!(payload("+zusimr:2", "+ZUSIMR"), Some("2"));
        assert_eq!(payload("+CSQX: 1", "+CSQ"), None);
        assert_eq!(payload("+CS", "+CSQ"), None);
        assert_eq!(payload("+ZEND", "+ZEND"), None);
    }

    #[test]
    fn name_of_information_lines() {
        assert_eq!(name("+CSQ: 18,99"), Some("+CSQ"));
        assert_eq!(name("+ZUSIMR:2"), Some("+ZUSIMR"));
        assert_eq!(name("+ZEND"), Some("+ZEND"));
        assert_eq!(name("^BOOT:1,2"), Some("^BOOT"));
        assert_eq!(name("351234567890123"), None);
        assert_eq!(name("+"), None);
    }
}
