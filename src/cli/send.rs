//! `atmate send NUMBER TEXT`: send an SMS through the daemon (its send budgets apply),
//! or through the modem directly when no daemon runs.

use serde_json::Value;

use super::client::{block_on, print_json, Context, Failure, Link, Target, MODEM_TIMEOUT};
use crate::control::Request;

/// Arguments of `atmate send`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate send +4917612345678 \"Back online\"
  echo \"Disk full on $(hostname)\" | atmate send +4917612345678 -
  atmate send --modem backup 0176-1234-5678 \"Test\" --json

Output: `sent to +4917612345678 (message 7, 1 part)`.
Exit codes: 0 sent; 1 the daemon or modem refused (send budget, +CMS ERROR…);
2 could not run (no daemon and no modem, bad arguments).")]
pub struct SendArgs {
    /// The recipient: +4917612345678, 004917612345678 or a national number;
    /// spaces, dashes, dots and parentheses are ignored.
    #[arg(value_parser = parse_recipient)]
    pub number: String,
    /// The text; `-` reads it from standard input (up to end of input, trailing
    /// line breaks dropped). Long texts are sent as several parts.
    pub text: String,
    /// The modem to send with (default: the config's default modem).
    #[arg(long)]
    pub modem: Option<String>,
    /// Print the daemon's answer as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// A number we can send to: normalised like the config's `allow_senders`, and never an
/// alphanumeric id (those can only *send* SMS, nobody can address one).
fn parse_recipient(s: &str) -> Result<String, String> {
    if s.chars().any(char::is_alphabetic) {
        return Err(format!(
            "`{s}` is not a phone number (alphanumeric ids like `Vodafone` cannot receive SMS)"
        ));
    }
    crate::config::normalize_number(s)
}

/// The text from the argument or, for `-`, from standard input.
fn read_text(arg: &str, stdin: &mut dyn std::io::Read) -> Result<String, Failure> {
    let text = if arg == "-" {
        let mut s = String::new();
        stdin
            .read_to_string(&mut s)
            .map_err(|e| Failure::CouldNotRun(format!("cannot read the text from stdin: {e}")))?;
        // `echo` and editors end the text with a line break nobody means to send.
        s.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        arg.to_owned()
    };
    if text.trim().is_empty() {
        return Err(Failure::CouldNotRun(
            "the text is empty; nothing was sent".into(),
        ));
    }
    Ok(text)
}

/// `sent to +49… (message 7, 2 parts, TP-MR 12, 13)` from the daemon's answer
/// (`{"id":7}`) or the modem's (`{"id":7,"parts":2,"references":[12,13]}`).
pub fn describe(to: &str, result: &Value) -> String {
    let mut facts = Vec::new();
    if let Some(id) = result.get("id").and_then(Value::as_i64) {
        facts.push(format!("message {id}"));
    }
    if let Some(p) = result.get("parts").and_then(Value::as_u64) {
        facts.push(format!("{p} part{}", if p == 1 { "" } else { "s" }));
    }
    if let Some(r) = result.get("references").and_then(Value::as_array) {
        let refs: Vec<String> = r.iter().map(Value::to_string).collect();
        if !refs.is_empty() {
            facts.push(format!("TP-MR {}", refs.join(", ")));
        }
    }
    if facts.is_empty() {
        format!("sent to {to}")
    } else {
        format!("sent to {to} ({})", facts.join(", "))
    }
}

/// Run `atmate send`.
pub fn run(args: SendArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let text = read_text(&args.text, &mut std::io::stdin())?;
        let ctx = Context::new(&args.target)?;
        let mut link = Link::open(&ctx, args.modem.as_deref(), true).await?;
        let req = Request::Send {
            to: args.number.clone(),
            text,
            modem: args.modem.clone(),
        };
        let result = link.call(req, MODEM_TIMEOUT).await?;
        if args.json {
            print_json(&result);
        } else {
            println!("{}", describe(&args.number, &result));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recipients_are_normalised_and_checked() {
        assert_eq!(
            parse_recipient("+49 176 1234-5678").unwrap(),
            "+4917612345678"
        );
        assert_eq!(
            parse_recipient("004917612345678").unwrap(),
            "+4917612345678"
        );
        assert_eq!(parse_recipient("(0176) 123.456").unwrap(), "0176123456");
        assert!(parse_recipient("Vodafone")
            .unwrap_err()
            .contains("cannot receive"));
        assert!(parse_recipient("+49 17x")
            .unwrap_err()
            .contains("not a phone number"));
        assert!(parse_recipient("").is_err());
        assert!(parse_recipient("+1234567890123456")
            .unwrap_err()
            .contains("15 digits"));
    }

    #[test]
    fn text_from_stdin_drops_the_final_line_break_only() {
        let mut input = "line one\nline two\n\n".as_bytes();
        assert_eq!(read_text("-", &mut input).unwrap(), "line one\nline two");
        let mut none = "".as_bytes();
        assert_eq!(read_text("hello", &mut none).unwrap(), "hello");
        let mut blank = " \n".as_bytes();
        let e = read_text("-", &mut blank).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.message().contains("empty"));
        assert!(read_text("   ", &mut none).is_err());
    }

    #[test]
    fn answers_are_described() {
        assert_eq!(
            describe("+49", &json!({"id": 7})),
            "sent to +49 (message 7)"
        );
        assert_eq!(
            describe("+49", &json!({"id": 8, "parts": 2, "references": [12, 13]})),
            "sent to +49 (message 8, 2 parts, TP-MR 12, 13)"
        );
        assert_eq!(
            describe("+49", &json!({"id": 9, "parts": 1, "references": [200]})),
            "sent to +49 (message 9, 1 part, TP-MR 200)"
        );
        assert_eq!(describe("+49", &Value::Null), "sent to +49");
    }
}
