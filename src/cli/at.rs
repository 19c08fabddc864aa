//! `atmate at COMMAND`: one raw AT command through the shared modem handle, so it
//! never fights the daemon for the port.

use serde_json::Value;

use super::client::{block_on, print_json, Context, Failure, Link, Target, MODEM_TIMEOUT};
use crate::control::Request;

/// Arguments of `atmate at`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate at AT+CSQ
  atmate at 'AT+COPS?'
  atmate at 'AT+CPMS=\"SM\",\"SM\",\"SM\"' --modem backup
  atmate at AT+CGMM --json

Output: the information lines, then the final result code:
  +CSQ: 18,99
  OK
Exit codes: 0 OK; 1 the modem answered ERROR/+CME ERROR/+CMS ERROR (on stderr);
2 could not run.")]
pub struct AtArgs {
    /// The command line, starting with `AT` (quote it for the shell: `'AT+COPS?'`).
    #[arg(value_parser = parse_command)]
    pub command: String,
    /// The modem to ask (default: the config's default modem).
    #[arg(long)]
    pub modem: Option<String>,
    /// Print `{"lines":[…],"result":"OK"}`.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// Accept one AT command line. Line breaks, Ctrl-Z and ESC are refused: the modem
/// would take them as the end of the line or of an SMS body (27.005 §3.5.1), so what
/// ran would not be what was typed.
pub fn parse_command(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the AT command is empty".into());
    }
    if t.chars()
        .any(|c| matches!(c, '\r' | '\n' | '\x1a' | '\x1b'))
    {
        return Err(
            "one command line only: line breaks, Ctrl-Z and ESC would end the line (or an SMS) early"
                .into(),
        );
    }
    if !t.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT")) {
        return Err(format!(
            "`{t}` does not start with AT (did you mean `AT{}`?)",
            if t.starts_with(['+', '^', '&']) {
                t.to_owned()
            } else {
                format!("+{t}")
            }
        ));
    }
    Ok(t.to_owned())
}

/// The answer as the modem printed it: information lines, then the final code.
pub fn render(answer: &Value) -> String {
    let mut out = String::new();
    if let Some(lines) = answer.get("lines").and_then(Value::as_array) {
        for l in lines {
            out.push_str(l.as_str().unwrap_or_default());
            out.push('\n');
        }
    }
    out.push_str(answer.get("result").and_then(Value::as_str).unwrap_or("OK"));
    out.push('\n');
    out
}

/// Run `atmate at`.
pub fn run(args: AtArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let ctx = Context::new(&args.target)?;
        let mut link = Link::open(&ctx, args.modem.as_deref(), true).await?;
        let answer = link
            .call(
                Request::At {
                    command: args.command.clone(),
                    modem: args.modem.clone(),
                },
                MODEM_TIMEOUT,
            )
            .await?;
        if args.json {
            print_json(&answer);
        } else {
            print!("{}", render(&answer));
        }
        Ok::<(), Failure>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_must_be_one_at_line() {
        assert_eq!(parse_command(" AT+CSQ ").unwrap(), "AT+CSQ");
        assert_eq!(parse_command("at+cops?").unwrap(), "at+cops?");
        assert_eq!(parse_command("ATI").unwrap(), "ATI");
        assert!(parse_command("").unwrap_err().contains("empty"));
        assert!(parse_command("AT\r\nAT+CFUN=0")
            .unwrap_err()
            .contains("one command line"));
        assert!(parse_command("AT+CMGS=20\x1a").is_err());
        assert_eq!(
            parse_command("+CSQ").unwrap_err(),
            "`+CSQ` does not start with AT (did you mean `AT+CSQ`?)"
        );
        assert_eq!(
            parse_command("CSQ").unwrap_err(),
            "`CSQ` does not start with AT (did you mean `AT+CSQ`?)"
        );
        // A multi-byte first character must not panic the prefix check.
        assert!(parse_command("ä").is_err());
    }

    #[test]
    fn answers_render_like_a_terminal() {
        assert_eq!(
            render(&json!({"lines": ["+CSQ: 18,99"], "result": "OK"})),
            "+CSQ: 18,99\nOK\n"
        );
        assert_eq!(render(&json!({"lines": [], "result": "OK"})), "OK\n");
        assert_eq!(
            render(&json!({"lines": ["ZTE CORPORATION", "MF667"], "result": "OK"})),
            "ZTE CORPORATION\nMF667\nOK\n"
        );
    }
}
