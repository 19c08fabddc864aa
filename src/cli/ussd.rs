//! `atmate ussd CODE`: a USSD request (`*100#`), and menus: `--interactive` prompts
//! for answers while the network wants more input (status 1); `--reply`/`--cancel`
//! answer or close a menu left open by an earlier call (through the daemon, which
//! keeps the session).

use serde_json::Value;

use super::client::{block_on, stdin_lines, Context, Failure, Link, Target, MODEM_TIMEOUT};
use super::output::ussd_status;
use crate::control::Request;

/// The longest USSD string a handset may send: 182 GSM-7 characters (3GPP TS 23.038
/// §6.1.2.3.1: 160 octets of packed septets).
const MAX_USSD: usize = 182;

/// Arguments of `atmate ussd`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate ussd '*100#'                     # balance
  atmate ussd -i '*101#'                  # a menu: answer each prompt, empty line cancels
  atmate ussd '*101#' && atmate ussd --reply 2   # answer a menu step by step
  atmate ussd --cancel
  atmate ussd '*100#' --json

Output: the network's text; `[more input wanted]` follows when it waits for an answer.
Exit codes: 0 answered; 1 the modem or network refused (ERROR, status 4 \"not
supported\", 5 \"network timeout\"); 2 could not run.")]
pub struct UssdArgs {
    /// The USSD code (`*100#`); not with --reply or --cancel.
    #[arg(required_unless_present_any = ["reply", "cancel"], value_parser = parse_code)]
    pub code: Option<String>,
    /// Menu mode: while the network asks for more input, prompt for the answer and
    /// send it; an empty line or Ctrl-D cancels the session.
    #[arg(long, short)]
    pub interactive: bool,
    /// Answer the open menu with this text.
    #[arg(long, conflicts_with_all = ["code", "cancel", "interactive"], value_parser = parse_code)]
    pub reply: Option<String>,
    /// Close the open menu (`AT+CUSD=2`).
    #[arg(long, conflicts_with_all = ["code", "interactive"])]
    pub cancel: bool,
    /// The modem to use (default: the config's default modem).
    #[arg(long)]
    pub modem: Option<String>,
    /// Print each reply as JSON (`{"text":…,"status":0,"dcs":15}`).
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

fn parse_code(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the USSD string is empty".into());
    }
    if t.chars().count() > MAX_USSD {
        return Err(format!(
            "a USSD string holds at most {MAX_USSD} characters, this one has {}",
            t.chars().count()
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("a USSD string cannot hold control characters".into());
    }
    Ok(t.to_owned())
}

/// The session state of a reply (`status`, 27.007 `+CUSD` `<m>`).
fn status_of(reply: &Value) -> u8 {
    reply
        .get("status")
        .and_then(Value::as_u64)
        .map_or(0, |s| s.min(255) as u8)
}

/// The reply text for a person; the state is added when it is not plain "done".
pub fn render(reply: &Value) -> String {
    let text = reply
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match status_of(reply) {
        0 => text.to_owned(),
        s if text.is_empty() => format!("[{}]", ussd_status(s)),
        s => format!("{text}\n[{}]", ussd_status(s)),
    }
}

/// Statuses that mean the request failed: the network does not support the code (4)
/// or gave up waiting (5); 3 means another client on the modem answered it.
fn refusal(reply: &Value) -> Option<Failure> {
    match status_of(reply) {
        s @ (3..=5) => Some(Failure::Refused(format!("USSD: {}", ussd_status(s)))),
        _ => None,
    }
}

fn show(reply: &Value, json: bool) {
    if json {
        println!("{reply}");
    } else {
        println!("{}", render(reply));
    }
}

/// Run `atmate ussd`.
pub fn run(args: UssdArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let ctx = Context::new(&args.target)?;
        let modem = args.modem.clone();
        if args.cancel || args.reply.is_some() {
            // A menu left open lives in the daemon; a modem opened by this process
            // would have no session to answer.
            let mut link = Link::open(&ctx, modem.as_deref(), false).await?;
            if args.cancel {
                link.call(Request::UssdCancel { modem }, MODEM_TIMEOUT)
                    .await?;
                if !args.json {
                    println!("USSD session cancelled");
                } else {
                    println!("null");
                }
                return Ok(());
            }
            let text = args.reply.clone().unwrap_or_default();
            let reply = link
                .call(Request::UssdReply { text, modem }, MODEM_TIMEOUT)
                .await?;
            return finish(&mut link, reply, &args).await;
        }
        let code = args.code.clone().unwrap_or_default();
        let mut link = Link::open(&ctx, modem.as_deref(), true).await?;
        let mut reply = link
            .call(
                Request::Ussd {
                    code,
                    modem: modem.clone(),
                },
                MODEM_TIMEOUT,
            )
            .await?;
        if args.interactive {
            let mut input = stdin_lines();
            let tty = std::io::IsTerminal::is_terminal(&std::io::stdin());
            while status_of(&reply) == 1 {
                show(&reply, args.json);
                if tty {
                    eprint!("reply (empty line cancels)> ");
                }
                match input.recv().await.map(|l| l.trim().to_owned()) {
                    Some(answer) if !answer.is_empty() => {
                        let answer = parse_code(&answer).map_err(Failure::CouldNotRun)?;
                        reply = link
                            .call(
                                Request::UssdReply {
                                    text: answer,
                                    modem: modem.clone(),
                                },
                                MODEM_TIMEOUT,
                            )
                            .await?;
                    }
                    _ => {
                        link.call(
                            Request::UssdCancel {
                                modem: modem.clone(),
                            },
                            MODEM_TIMEOUT,
                        )
                        .await?;
                        eprintln!("atmate: USSD session cancelled");
                        return Ok(());
                    }
                }
            }
        }
        finish(&mut link, reply, &args).await
    })
}

/// Show the last reply and decide the outcome. A menu still open at the end is left
/// to the daemon (answer it with `--reply`), but cancelled when this process holds
/// the modem itself, because nobody could answer it after we exit.
async fn finish(link: &mut Link, reply: Value, args: &UssdArgs) -> Result<(), Failure> {
    show(&reply, args.json);
    if let Some(f) = refusal(&reply) {
        return Err(f);
    }
    if status_of(&reply) == 1 {
        if link.is_direct() {
            link.call(
                Request::UssdCancel {
                    modem: args.modem.clone(),
                },
                MODEM_TIMEOUT,
            )
            .await?;
            eprintln!("atmate: the menu was cancelled (no daemon keeps it open); use --interactive to answer it");
        } else {
            eprintln!(
                "atmate: the network waits for an answer: `atmate ussd --reply TEXT`, or `atmate ussd --cancel`"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn codes_are_checked() {
        assert_eq!(parse_code(" *100# ").unwrap(), "*100#");
        assert_eq!(parse_code("1").unwrap(), "1");
        assert!(parse_code("").is_err());
        assert!(parse_code("*100#\n").is_ok(), "trailing newline is trimmed");
        assert!(parse_code("*1\n00#").unwrap_err().contains("control"));
        let long = "1".repeat(MAX_USSD + 1);
        assert!(parse_code(&long).unwrap_err().contains("at most 182"));
        assert!(parse_code(&"1".repeat(MAX_USSD)).is_ok());
    }

    #[test]
    fn replies_render_with_their_state() {
        assert_eq!(
            render(&json!({"text": "Balance: 10.00 EUR", "status": 0, "dcs": 15})),
            "Balance: 10.00 EUR"
        );
        assert_eq!(
            render(&json!({"text": "1 Balance\n2 Bundles", "status": 1, "dcs": 15})),
            "1 Balance\n2 Bundles\n[more input wanted]"
        );
        assert_eq!(
            render(&json!({"text": "", "status": 2, "dcs": 15})),
            "[ended by the network]"
        );
    }

    #[test]
    fn unsupported_and_timeouts_are_refusals() {
        assert_eq!(refusal(&json!({"text": "", "status": 0})), None);
        assert_eq!(refusal(&json!({"text": "", "status": 1})), None);
        assert_eq!(refusal(&json!({"text": "Bye", "status": 2})), None);
        assert_eq!(
            refusal(&json!({"text": "", "status": 4})),
            Some(Failure::Refused(
                "USSD: not supported by the network".into()
            ))
        );
        assert_eq!(refusal(&json!({"status": 5})).map(|f| f.code()), Some(1));
    }
}
