//! The DCE side of ITU V.250 §5.2: one received command line → a list of commands.
//!
//! Accepted shapes (case-insensitive outside quotes, spaces outside quotes ignored):
//! - a prefix `AT` (anything before it is line noise and is ignored, as a modem hunting
//!   for "AT" does); a line without `AT` is no command at all;
//! - basic commands `E0`, `V1`, `Z`, `I`, `Q0`, `X4`, `&F`, `&C1`, `&D2`, `&V`, `S0=0`,
//!   `S3?`, `H`, `A`, `O`, and `D<dial string>` (which takes the rest of the line);
//! - extended commands `+NAME`, `+NAME?`, `+NAME=?`, `+NAME=<args>` (also `^`/`$`/`%`
//!   prefixes), each ended by `;` or the end of the line; basic commands may follow one
//!   another and precede an extended one without a separator (`ATE0+CPMS?`,
//!   `ATE0V1+CMEE=1;+CMGF=0`), as V.250 allows;
//! - arguments are separated by `,`; quoted strings keep their case and may contain `,`
//!   and `;`; an empty argument (`1,,3`) is [`Arg::Empty`].

/// One argument of an extended command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Nothing between the commas.
    Empty,
    /// A quoted string, without the quotes, case kept.
    Str(String),
    /// An unquoted token, upper-cased.
    Raw(String),
}

impl Arg {
    /// The value as text: the string of a quoted argument, the token of a raw one.
    pub fn text(&self) -> Option<&str> {
        match self {
            Arg::Empty => None,
            Arg::Str(s) | Arg::Raw(s) => Some(s),
        }
    }

    /// The value as an unsigned number (raw tokens only; `"3"` quoted is also accepted,
    /// as real firmware does).
    pub fn num(&self) -> Option<u32> {
        self.text().and_then(|s| s.trim().parse().ok())
    }
}

/// How an extended command was invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `+NAME`
    Exec,
    /// `+NAME?`
    Query,
    /// `+NAME=?`
    Test,
    /// `+NAME=<args>`
    Set(Vec<Arg>),
}

/// One command of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// A basic command: `name` is `E`, `&F`, `S3`, …; `arg` is what followed it (`0`, `=13`,
    /// `?`, or the dial string for `D`).
    Basic {
        /// Upper-cased name, with `&` when present; `S<n>` for S-registers.
        name: String,
        /// The rest (digits, `=<n>`, `?`, or the dial string).
        arg: String,
    },
    /// An extended command.
    Extended {
        /// Upper-cased name with its prefix character (`+CPMS`).
        name: String,
        /// How it was invoked.
        kind: Kind,
    },
}

/// Why a command line could not be parsed (the modem answers `ERROR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

/// Find the `AT` prefix and return what follows it, or `None` if the line holds no
/// command. V.250 §5.2.1: the DCE ignores characters until it sees "AT" or "at" (we also
/// accept "At"/"aT", as Qualcomm firmware does).
pub fn strip_prefix(line: &[u8]) -> Option<&[u8]> {
    line.windows(2)
        .position(|w| w[0].eq_ignore_ascii_case(&b'A') && w[1].eq_ignore_ascii_case(&b'T'))
        .map(|i| &line[i + 2..])
}

fn is_ext_prefix(c: u8) -> bool {
    matches!(c, b'+' | b'^' | b'$' | b'%')
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'!' | b'-' | b'.' | b'/' | b':' | b'_')
}

/// Parse the body of a command line (after `AT`).
pub fn parse(body: &[u8]) -> Result<Vec<Cmd>, ParseError> {
    let mut cmds = Vec::new();
    let mut i = 0;
    let n = body.len();
    while i < n {
        let c = body[i];
        if c == b' ' || c == b';' {
            i += 1;
            continue;
        }
        if is_ext_prefix(c) {
            let start = i;
            i += 1;
            while i < n && is_name_char(body[i]) {
                i += 1;
            }
            if i == start + 1 {
                return Err(ParseError(format!(
                    "empty extended command name at byte {start}"
                )));
            }
            let name = String::from_utf8_lossy(&body[start..i]).to_ascii_uppercase();
            while i < n && body[i] == b' ' {
                i += 1;
            }
            let kind = if i < n && body[i] == b'?' {
                i += 1;
                Kind::Query
            } else if i < n && body[i] == b'=' {
                i += 1;
                while i < n && body[i] == b' ' {
                    i += 1;
                }
                if i < n && body[i] == b'?' {
                    i += 1;
                    Kind::Test
                } else {
                    let (args, next) = parse_args(body, i)?;
                    i = next;
                    Kind::Set(args)
                }
            } else {
                Kind::Exec
            };
            // An extended command ends at `;` or the end of the line.
            while i < n && body[i] == b' ' {
                i += 1;
            }
            if i < n && body[i] != b';' {
                return Err(ParseError(format!(
                    "unexpected {:?} after {name}",
                    char::from(body[i])
                )));
            }
            cmds.push(Cmd::Extended { name, kind });
            continue;
        }
        let up = c.to_ascii_uppercase();
        if up == b'D' {
            // The dial string is the rest of the line (V.250 §6.3.1).
            let arg = String::from_utf8_lossy(&body[i + 1..]).trim().to_string();
            cmds.push(Cmd::Basic {
                name: "D".into(),
                arg,
            });
            break;
        }
        if up == b'S' {
            let start = i + 1;
            i = start;
            while i < n && body[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(ParseError("S without a register number".into()));
            }
            let name = format!("S{}", String::from_utf8_lossy(&body[start..i]));
            let arg_start = i;
            if i < n && body[i] == b'?' {
                i += 1;
            } else if i < n && body[i] == b'=' {
                i += 1;
                while i < n && body[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let arg = String::from_utf8_lossy(&body[arg_start..i]).to_string();
            cmds.push(Cmd::Basic { name, arg });
            continue;
        }
        let (name, start) = if up == b'&' {
            let Some(&l) = body.get(i + 1) else {
                return Err(ParseError("& at the end of the line".into()));
            };
            if !l.is_ascii_alphabetic() {
                return Err(ParseError(format!("bad command &{}", char::from(l))));
            }
            (format!("&{}", char::from(l.to_ascii_uppercase())), i + 2)
        } else if up.is_ascii_alphabetic() {
            (char::from(up).to_string(), i + 1)
        } else {
            return Err(ParseError(format!("unexpected {:?}", char::from(c))));
        };
        i = start;
        while i < n && body[i].is_ascii_digit() {
            i += 1;
        }
        let arg = String::from_utf8_lossy(&body[start..i]).to_string();
        cmds.push(Cmd::Basic { name, arg });
    }
    Ok(cmds)
}

/// Arguments from `i` to the `;` or the end; returns them and the index of the `;`/end.
fn parse_args(body: &[u8], mut i: usize) -> Result<(Vec<Arg>, usize), ParseError> {
    let n = body.len();
    let mut args = Vec::new();
    loop {
        while i < n && body[i] == b' ' {
            i += 1;
        }
        if i < n && body[i] == b'"' {
            let mut s = Vec::new();
            i += 1;
            loop {
                if i >= n {
                    return Err(ParseError("unterminated string".into()));
                }
                match body[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    // V.250 §5.4.2.2: `\HH` is a character by its hex code (`\22` = `"`).
                    b'\\'
                        if i + 2 < n
                            && body[i + 1].is_ascii_hexdigit()
                            && body[i + 2].is_ascii_hexdigit() =>
                    {
                        let hex = [body[i + 1], body[i + 2]];
                        let v = std::str::from_utf8(&hex)
                            .ok()
                            .and_then(|h| u8::from_str_radix(h, 16).ok())
                            .unwrap_or(b'?');
                        s.push(v);
                        i += 3;
                    }
                    b => {
                        s.push(b);
                        i += 1;
                    }
                }
            }
            args.push(Arg::Str(String::from_utf8_lossy(&s).into_owned()));
            while i < n && body[i] == b' ' {
                i += 1;
            }
        } else {
            let start = i;
            while i < n && body[i] != b',' && body[i] != b';' {
                if body[i] == b'"' {
                    return Err(ParseError("quote inside an unquoted argument".into()));
                }
                i += 1;
            }
            let tok: String = String::from_utf8_lossy(&body[start..i])
                .chars()
                .filter(|c| *c != ' ')
                .collect::<String>()
                .to_ascii_uppercase();
            args.push(if tok.is_empty() {
                Arg::Empty
            } else {
                Arg::Raw(tok)
            });
        }
        if i < n && body[i] == b',' {
            i += 1;
            continue;
        }
        if i < n && body[i] != b';' {
            return Err(ParseError(format!(
                "unexpected {:?} after an argument",
                char::from(body[i])
            )));
        }
        break;
    }
    // `AT+X=` with nothing at all is one empty argument list, not `[Empty]`.
    if args == [Arg::Empty] {
        args.clear();
    }
    Ok((args, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, kind: Kind) -> Cmd {
        Cmd::Extended {
            name: name.into(),
            kind,
        }
    }

    fn basic(name: &str, arg: &str) -> Cmd {
        Cmd::Basic {
            name: name.into(),
            arg: arg.into(),
        }
    }

    fn p(line: &str) -> Vec<Cmd> {
        let body = strip_prefix(line.as_bytes()).expect("has AT");
        parse(body).expect("parses")
    }

    #[test]
    fn prefix_is_found_after_line_noise_and_in_any_case() {
        assert_eq!(strip_prefix(b"AT+CSQ"), Some(&b"+CSQ"[..]));
        assert_eq!(strip_prefix(b"at+csq"), Some(&b"+csq"[..]));
        assert_eq!(strip_prefix(b"\x1bxxAT"), Some(&b""[..]));
        assert_eq!(strip_prefix(b"\x1b"), None);
        assert_eq!(strip_prefix(b""), None);
    }

    #[test]
    fn bare_at_is_no_command() {
        assert_eq!(p("AT"), vec![]);
    }

    #[test]
    fn basic_commands_chain_without_separators() {
        assert_eq!(
            p("ATE0V1Q0&FZ"),
            vec![
                basic("E", "0"),
                basic("V", "1"),
                basic("Q", "0"),
                basic("&F", ""),
                basic("Z", "")
            ]
        );
        assert_eq!(p("ATS0=0S3?"), vec![basic("S0", "=0"), basic("S3", "?")]);
        assert_eq!(p("at&c1&d2"), vec![basic("&C", "1"), basic("&D", "2")]);
    }

    #[test]
    fn basic_then_extended_as_modem_manager_probes() {
        // MF667.md §3: MM probes with `ATE0+CPMS?`.
        assert_eq!(
            p("ATE0+CPMS?"),
            vec![basic("E", "0"), ext("+CPMS", Kind::Query)]
        );
    }

    #[test]
    fn extended_commands_concatenate_with_semicolons() {
        assert_eq!(
            p("AT+CMGF=1;+CNMI=3,1,2,2,0;+CSQ"),
            vec![
                ext("+CMGF", Kind::Set(vec![Arg::Raw("1".into())])),
                ext(
                    "+CNMI",
                    Kind::Set(
                        ["3", "1", "2", "2", "0"]
                            .map(|s| Arg::Raw(s.into()))
                            .to_vec()
                    )
                ),
                ext("+CSQ", Kind::Exec),
            ]
        );
        // `;` followed by a basic command is fine too.
        assert_eq!(
            p("AT+CMEE=1;E0"),
            vec![
                ext("+CMEE", Kind::Set(vec![Arg::Raw("1".into())])),
                basic("E", "0")
            ]
        );
    }

    #[test]
    fn test_query_and_exec_forms() {
        assert_eq!(p("AT+CPMS=?"), vec![ext("+CPMS", Kind::Test)]);
        assert_eq!(p("AT+CPMS?"), vec![ext("+CPMS", Kind::Query)]);
        assert_eq!(p("AT+cgmi"), vec![ext("+CGMI", Kind::Exec)]);
        assert_eq!(p("AT^ZTE"), vec![ext("^ZTE", Kind::Exec)]);
    }

    #[test]
    fn quoted_strings_keep_case_commas_and_semicolons() {
        assert_eq!(
            p(r#"AT+CUSD=1,"*100#",15"#),
            vec![ext(
                "+CUSD",
                Kind::Set(vec![
                    Arg::Raw("1".into()),
                    Arg::Str("*100#".into()),
                    Arg::Raw("15".into())
                ])
            )]
        );
        assert_eq!(
            p(r#"AT+CSCA="a,b;c""#),
            vec![ext("+CSCA", Kind::Set(vec![Arg::Str("a,b;c".into())]))]
        );
        assert_eq!(
            p(r#"AT+CPMS="SM","SM","SM""#),
            vec![ext(
                "+CPMS",
                Kind::Set(vec![
                    Arg::Str("SM".into()),
                    Arg::Str("SM".into()),
                    Arg::Str("SM".into())
                ])
            )]
        );
    }

    #[test]
    fn hex_escapes_in_strings() {
        assert_eq!(
            p(r#"AT+X="a\22b""#),
            vec![ext("+X", Kind::Set(vec![Arg::Str("a\"b".into())]))]
        );
    }

    #[test]
    fn empty_arguments_and_spaces() {
        assert_eq!(
            p("AT+CNMI = 2 , , 0"),
            vec![ext(
                "+CNMI",
                Kind::Set(vec![Arg::Raw("2".into()), Arg::Empty, Arg::Raw("0".into())])
            )]
        );
        assert_eq!(p("AT+CUSD="), vec![ext("+CUSD", Kind::Set(vec![]))]);
    }

    #[test]
    fn dial_takes_the_rest_of_the_line() {
        assert_eq!(p("ATD*99#;"), vec![basic("D", "*99#;")]);
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            "AT+CUSD=1,\"*100#",
            "AT+",
            "AT+CSQ+",
            "AT&",
            "AT#",
            "ATS=1",
            "AT+X=a\"b\"",
            "AT+CMGF=1 2\"",
        ] {
            let body = strip_prefix(bad.as_bytes()).expect("prefix");
            assert!(parse(body).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn arg_accessors() {
        assert_eq!(Arg::Raw("15".into()).num(), Some(15));
        assert_eq!(Arg::Str("3".into()).num(), Some(3));
        assert_eq!(Arg::Empty.num(), None);
        assert_eq!(Arg::Str("SM".into()).text(), Some("SM"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            if let Some(body) = strip_prefix(&bytes) {
                let _ = parse(body);
            }
        }
    }
}
