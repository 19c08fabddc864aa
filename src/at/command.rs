//! Building AT command lines: quoting, escaping, the trailing `\r`.
//!
//! ```
//! use atmate::at::command::Command;
//!
//! let c = Command::set("+CUSD").int(1).string("*100#").int(15).build();
//! assert_eq!(c.line(), r#"AT+CUSD=1,"*100#",15"#);
//! assert_eq!(c.to_bytes(), b"AT+CUSD=1,\"*100#\",15\r");
//! assert_eq!(c.response_prefix(), Some("+CUSD"));
//!
//! assert_eq!(Command::query("+CPMS").line(), "AT+CPMS?");
//! assert_eq!(Command::test("+COPS").line(), "AT+COPS=?");
//! assert_eq!(Command::exec("+CSQ").line(), "AT+CSQ");
//! assert_eq!(Command::exec("E0").line(), "ATE0");
//!
//! // What a user typed (`atmate at 'AT+CSQ'`), normalised.
//! assert_eq!(Command::raw("at+csq\r\n").unwrap().to_bytes(), b"at+csq\r");
//! ```
//!
//! String arguments are quoted. A `"`, `\` or control character inside one would end or
//! corrupt the command line, so it is written as the 27.007 §4.1 hex escape `\HH` (`"` →
//! `\22`, `\` → `\5C`). Other characters pass through as UTF-8: converting text to the
//! modem's character set (`AT+CSCS`) is the caller's job.

use std::fmt;

/// Ctrl-Z (0x1A): ends an SMS body after the `> ` prompt and sends it.
pub const CTRL_Z: u8 = 0x1A;

/// ESC (0x1B): ends an SMS body after the `> ` prompt without sending it. gammu also sends
/// `ESC \r` blind at start to escape a prompt left over from an earlier session.
pub const ESC: u8 = 0x1B;

/// The longest raw command line accepted (V.250 only promises 40 characters; modems take
/// a few hundred; a `+CMGS` text or USSD request never needs more).
pub const MAX_RAW_LEN: usize = 1024;

/// A command line that cannot be built from what the user typed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Nothing but whitespace.
    #[error("empty command")]
    Empty,
    /// The text does not start with `AT`.
    #[error("{0:?} is not an AT command (it must start with AT)")]
    NotAt(String),
    /// A control character (CR, LF, Ctrl-Z, ESC…) inside the command.
    #[error("control character 0x{byte:02X} at position {position} in the command (one command per line; join several with ';')")]
    ControlChar {
        /// The byte.
        byte: u8,
        /// Its position in the trimmed command.
        position: usize,
    },
    /// Longer than [`MAX_RAW_LEN`].
    #[error("command is {0} bytes long, more than the {MAX_RAW_LEN} allowed")]
    TooLong(usize),
    /// An SMS body contains Ctrl-Z or ESC, which would end it early.
    #[error("the message body contains 0x{0:02X}, which would end it early")]
    BodyControl(u8),
}

/// One argument of an extended command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A number, written in decimal.
    Int(i64),
    /// A string, written quoted and escaped.
    Str(String),
    /// An unquoted token (hex lac, `A7`…). Characters that could break the line make it
    /// quoted instead.
    Bare(String),
    /// An omitted parameter (`AT+CNMI=2,1,,2`).
    Empty,
}

impl Arg {
    fn write(&self, out: &mut String) {
        match self {
            Arg::Int(n) => out.push_str(&n.to_string()),
            Arg::Str(s) => push_quoted(out, s),
            Arg::Bare(s) if is_safe_bare(s) => out.push_str(s),
            Arg::Bare(s) => push_quoted(out, s),
            Arg::Empty => {}
        }
    }
}

fn is_safe_bare(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.' | b'*' | b'#' | b'_')
        })
}

/// Quote `s`, escaping `"`, `\` and control characters as `\HH` (27.007 §4.1).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s);
    out
}

fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' || c.is_ascii_control() {
            out.push_str(&format!("\\{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('"');
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Arg {
            fn from(n: $t) -> Arg {
                Arg::Int(i64::from(n))
            }
        }
    )*};
}
int_from!(u8, u16, u32, i8, i16, i32, i64);

impl From<&str> for Arg {
    fn from(s: &str) -> Arg {
        Arg::Str(s.to_string())
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::Str(s)
    }
}

impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Arg {
        v.map_or(Arg::Empty, Into::into)
    }
}

/// How the command name is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `AT<name>`.
    Exec,
    /// `AT<name>?`.
    Query,
    /// `AT<name>=?`.
    Test,
    /// `AT<name>=<args>`.
    Set,
}

/// An AT command line, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    line: String,
    prefix: Option<String>,
}

/// A `AT<name>=<args>` command under construction; turns into a [`Command`] by
/// [`CommandBuilder::build`] or [`From`], and has the same output methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandBuilder {
    name: String,
    form: Form,
    args: Vec<Arg>,
}

/// Keep a command name to printable ASCII without separators, so a typo cannot smuggle a
/// line end or a second command into the line. Names are code constants in practice.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '"' | ';' | '=' | '?'))
        .collect()
}

/// The information-response prefix of an extended command name (`+CSQ`, `^SYSINFO`).
fn prefix_of(name: &str) -> Option<String> {
    let mut chars = name.char_indices();
    let (_, first) = chars.next()?;
    if !matches!(first, '+' | '^' | '$' | '%' | '*') {
        return None;
    }
    // 27.007 §4.1 / V.250 §5.4.1: the name continues with letters, digits and `! % - . / : _`;
    // `;` would start the next command of a concatenated line.
    let end = chars
        .find(|(_, c)| {
            !(c.is_ascii_alphanumeric() || matches!(c, '!' | '%' | '-' | '.' | '/' | '_'))
        })
        .map_or(name.len(), |(i, _)| i);
    (end > 1).then(|| name[..end].to_ascii_uppercase())
}

impl Command {
    /// `AT<name>`: `exec("+CSQ")` → `AT+CSQ`, `exec("E0")` → `ATE0`, `exec("")` → `AT`.
    pub fn exec(name: &str) -> Command {
        CommandBuilder::new(name, Form::Exec).build()
    }

    /// `AT<name>?`: `query("+CPMS")` → `AT+CPMS?`.
    pub fn query(name: &str) -> Command {
        CommandBuilder::new(name, Form::Query).build()
    }

    /// `AT<name>=?`: `test("+COPS")` → `AT+COPS=?`.
    pub fn test(name: &str) -> Command {
        CommandBuilder::new(name, Form::Test).build()
    }

    /// `AT<name>=…`: add arguments with [`CommandBuilder::int`], [`CommandBuilder::string`]…
    pub fn set(name: &str) -> CommandBuilder {
        CommandBuilder::new(name, Form::Set)
    }

    /// A command line as a user typed it (`atmate at 'AT+CSQ'`, a rule's `at:` action).
    /// Surrounding whitespace and any trailing `\r`/`\n` are removed (the `\r` is added
    /// back by [`Command::to_bytes`]); the rest must start with `AT` and contain no control
    /// characters. Quoting inside is left as typed.
    pub fn raw(text: &str) -> Result<Command, CommandError> {
        let t = text.trim_end_matches(['\r', '\n']).trim();
        if t.is_empty() {
            return Err(CommandError::Empty);
        }
        if t.len() > MAX_RAW_LEN {
            return Err(CommandError::TooLong(t.len()));
        }
        if let Some((position, byte)) = t.bytes().enumerate().find(|(_, b)| b.is_ascii_control()) {
            return Err(CommandError::ControlChar { byte, position });
        }
        if !t.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT")) {
            return Err(CommandError::NotAt(t.to_string()));
        }
        // The answer's prefix is that of the first extended command on the line, also after
        // basic ones (`ATE0+CPMS?` answers `+CPMS: …`). `ATD` takes the rest of the line as
        // the number (`ATD+4917…;`), so a dial has none.
        let rest = &t[2..];
        let prefix = if rest.starts_with(['D', 'd']) {
            None
        } else {
            rest.find(['+', '^', '$', '%']).and_then(|i| {
                let ext = &rest[i..];
                prefix_of(&ext[..ext.find(['=', '?', ';']).unwrap_or(ext.len())])
            })
        };
        Ok(Command {
            line: t.to_string(),
            prefix,
        })
    }

    /// The command line without the trailing `\r`, e.g. for logs.
    pub fn line(&self) -> &str {
        &self.line
    }

    /// The bytes to write: the line and `\r` (S3).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.line.len() + 1);
        v.extend_from_slice(self.line.as_bytes());
        v.push(b'\r');
        v
    }

    /// The prefix of this command's information response (`+CSQ` for `AT+CSQ`), for
    /// [`crate::at::urc::classify`]; `None` for basic commands (`ATE0`, `ATZ`).
    pub fn response_prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line)
    }
}

impl CommandBuilder {
    fn new(name: &str, form: Form) -> CommandBuilder {
        CommandBuilder {
            name: clean_name(name),
            form,
            args: Vec::new(),
        }
    }

    /// Add any argument.
    pub fn arg(mut self, a: impl Into<Arg>) -> CommandBuilder {
        self.args.push(a.into());
        self
    }

    /// Add a number.
    pub fn int(self, n: i64) -> CommandBuilder {
        self.arg(Arg::Int(n))
    }

    /// Add a quoted, escaped string.
    pub fn string(self, s: &str) -> CommandBuilder {
        self.arg(Arg::Str(s.to_string()))
    }

    /// Add an unquoted token (quoted anyway if it holds characters that could break the line).
    pub fn bare(self, s: &str) -> CommandBuilder {
        self.arg(Arg::Bare(s.to_string()))
    }

    /// Add an omitted parameter.
    pub fn empty(self) -> CommandBuilder {
        self.arg(Arg::Empty)
    }

    /// The finished command.
    pub fn build(self) -> Command {
        let mut line = String::from("AT");
        line.push_str(&self.name);
        match self.form {
            Form::Exec => {}
            Form::Query => line.push('?'),
            Form::Test => line.push_str("=?"),
            Form::Set => {
                line.push('=');
                for (i, a) in self.args.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    a.write(&mut line);
                }
            }
        }
        Command {
            prefix: prefix_of(&self.name),
            line,
        }
    }

    /// Same as `build().line()`, owned.
    pub fn line(&self) -> String {
        self.clone().build().line
    }

    /// Same as `build().to_bytes()`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.clone().build().to_bytes()
    }

    /// Same as `build().response_prefix()`, owned.
    pub fn response_prefix(&self) -> Option<String> {
        prefix_of(&self.name)
    }
}

impl From<CommandBuilder> for Command {
    fn from(b: CommandBuilder) -> Command {
        b.build()
    }
}

/// The bytes to send after the `> ` prompt: the body and Ctrl-Z. For PDU mode the body is
/// the hex PDU (SMSC part included); for text mode the text in the `+CSCS` charset. A body
/// containing Ctrl-Z or ESC is refused: it would end the message early.
pub fn sms_body(body: &str) -> Result<Vec<u8>, CommandError> {
    if let Some(b) = body.bytes().find(|&b| b == CTRL_Z || b == ESC) {
        return Err(CommandError::BodyControl(b));
    }
    let mut v = Vec::with_capacity(body.len() + 1);
    v.extend_from_slice(body.as_bytes());
    v.push(CTRL_Z);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_builds_the_commands_the_engine_sends() {
        assert_eq!(
            Command::set("+CUSD").int(1).string("*100#").int(15).line(),
            r#"AT+CUSD=1,"*100#",15"#
        );
        assert_eq!(
            Command::set("+CPMS")
                .string("SM")
                .string("SM")
                .string("SM")
                .line(),
            r#"AT+CPMS="SM","SM","SM""#
        );
        assert_eq!(
            Command::set("+CPIN").string("1234").line(),
            r#"AT+CPIN="1234""#
        );
        assert_eq!(
            Command::set("+CNMI")
                .int(3)
                .int(1)
                .int(2)
                .int(2)
                .int(0)
                .line(),
            "AT+CNMI=3,1,2,2,0"
        );
        assert_eq!(Command::set("+CMGD").int(1).int(4).line(), "AT+CMGD=1,4");
        assert_eq!(Command::set("+CMGS").int(19).to_bytes(), b"AT+CMGS=19\r");
        assert_eq!(
            Command::set("+CNMI").int(2).int(1).empty().int(2).line(),
            "AT+CNMI=2,1,,2"
        );
        assert_eq!(
            Command::set("+CSCA").arg("+491710760000").arg(145u8).line(),
            r#"AT+CSCA="+491710760000",145"#
        );
        assert_eq!(
            Command::set("+CUSD").arg(2u8).arg(None::<&str>).line(),
            "AT+CUSD=2,"
        );
        assert_eq!(Command::set("+ZNCK").bare("1A2B").line(), "AT+ZNCK=1A2B");
        assert_eq!(Command::set("+X").bare("a,b").line(), r#"AT+X="a,b""#);
        assert_eq!(Command::exec("").to_bytes(), b"AT\r");
        assert_eq!(Command::exec("E0").line(), "ATE0");
        assert_eq!(Command::exec("&C0").line(), "AT&C0");
        assert_eq!(Command::query("+ZPAS").line(), "AT+ZPAS?");
        assert_eq!(Command::test("+ZSNT").line(), "AT+ZSNT=?");
    }

    #[test]
    fn quotes_and_controls_are_escaped() {
        assert_eq!(
            Command::set("+CUSD")
                .int(1)
                .string("say \"hi\"")
                .int(15)
                .line(),
            r#"AT+CUSD=1,"say \22hi\22",15"#
        );
        assert_eq!(quote(r"a\b"), r#""a\5Cb""#);
        assert_eq!(quote("a\rb\nc\x1ad\x1b"), r#""a\0Db\0Ac\1Ad\1B""#);
        assert_eq!(quote("\x7f"), r#""\7F""#);
        assert_eq!(quote("Grüße €"), "\"Grüße €\"");
        // Whatever goes in, the line has no CR/LF and exactly one trailing CR.
        let nasty = Command::set("+CUSD")
            .string("\r\n\"\\;AT+CFUN=0\r")
            .to_bytes();
        assert_eq!(nasty.iter().filter(|&&b| b == b'\r').count(), 1);
        assert!(!nasty.contains(&b'\n'));
        assert_eq!(nasty.last(), Some(&b'\r'));
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(Command::exec("+CSQ\r\nATZ").line(), "AT+CSQATZ");
        assert_eq!(Command::query("+CP\"MS").line(), "AT+CPMS?");
    }

    #[test]
    fn response_prefixes() {
        assert_eq!(Command::exec("+CSQ").response_prefix(), Some("+CSQ"));
        assert_eq!(Command::query("+creg").response_prefix(), Some("+CREG"));
        assert_eq!(
            Command::set("+CMGL").int(4).build().response_prefix(),
            Some("+CMGL")
        );
        assert_eq!(Command::exec("E0").response_prefix(), None);
        assert_eq!(
            Command::exec("^SYSINFO").response_prefix(),
            Some("^SYSINFO")
        );
        assert_eq!(
            Command::raw("AT+CMGR=3").expect("raw").response_prefix(),
            Some("+CMGR")
        );
        assert_eq!(
            Command::raw("AT+CREG?").expect("raw").response_prefix(),
            Some("+CREG")
        );
        assert_eq!(
            Command::raw("AT+COPS=?").expect("raw").response_prefix(),
            Some("+COPS")
        );
        assert_eq!(Command::raw("ATI").expect("raw").response_prefix(), None);
        assert_eq!(
            Command::raw("AT+CSQ;+CREG?")
                .expect("raw")
                .response_prefix(),
            Some("+CSQ")
        );
        let p = |s: &str| {
            Command::raw(s)
                .expect("raw")
                .response_prefix()
                .map(str::to_string)
        };
        assert_eq!(p("ATE0+CPMS?").as_deref(), Some("+CPMS"));
        assert_eq!(p("ATD+4917612345678;"), None);
        assert_eq!(p("AT"), None);
    }

    #[test]
    fn raw_commands_are_normalised() {
        assert_eq!(Command::raw("AT+CSQ").expect("raw").to_bytes(), b"AT+CSQ\r");
        assert_eq!(
            Command::raw("  AT+CSQ\r").expect("raw").to_bytes(),
            b"AT+CSQ\r"
        );
        assert_eq!(
            Command::raw("AT+CSQ\r\n\r\n").expect("raw").line(),
            "AT+CSQ"
        );
        assert_eq!(
            Command::raw("at+cusd=1,\"*100#\",15").expect("raw").line(),
            "at+cusd=1,\"*100#\",15"
        );
        assert_eq!(Command::raw(""), Err(CommandError::Empty));
        assert_eq!(Command::raw(" \r\n"), Err(CommandError::Empty));
        assert_eq!(
            Command::raw("+CSQ"),
            Err(CommandError::NotAt("+CSQ".into()))
        );
        assert_eq!(Command::raw("A"), Err(CommandError::NotAt("A".into())));
        assert_eq!(
            Command::raw("AT+CSQ\rAT+CFUN=0"),
            Err(CommandError::ControlChar {
                byte: b'\r',
                position: 6
            })
        );
        assert!(matches!(
            Command::raw("AT\x1a"),
            Err(CommandError::ControlChar { byte: 0x1A, .. })
        ));
        let long = format!("AT{}", "Z".repeat(MAX_RAW_LEN));
        assert_eq!(
            Command::raw(&long),
            Err(CommandError::TooLong(MAX_RAW_LEN + 2))
        );
        assert_eq!(Command::raw("ÄT"), Err(CommandError::NotAt("ÄT".into())));
    }

    #[test]
    fn sms_bodies_end_with_ctrl_z() {
        // E5 (MF667.md §4).
        assert_eq!(
            sms_body("0031000C919471103254760000AA05C8329BFD06").expect("body"),
            b"0031000C919471103254760000AA05C8329BFD06\x1a"
        );
        assert_eq!(sms_body("a\x1ab"), Err(CommandError::BodyControl(0x1A)));
        assert_eq!(sms_body("a\x1bb"), Err(CommandError::BodyControl(0x1B)));
    }

    #[test]
    fn error_messages_read_well() {
        assert_eq!(
            CommandError::NotAt("+CSQ".into()).to_string(),
            "\"+CSQ\" is not an AT command (it must start with AT)"
        );
        assert_eq!(
            CommandError::ControlChar {
                byte: 13,
                position: 6
            }
            .to_string(),
            "control character 0x0D at position 6 in the command (one command per line; join several with ';')"
        );
    }
}
