//! `atmate modeswitch`: switch a ZTE MF667 from its web/router mode (CDC-ECM,
//! 19d2:1405, web UI on 192.168.0.1) to modem mode (three serial ports, AT on if01),
//! and tell how to undo it.
//!
//! The switch is one HTTP GET on the stick's web UI,
//! `/goform/goform_process?goformId=MODE_SWITCH&switchCmd=FACTORY` (the user's own
//! notes, MF667.md §0). Undoing it, or keeping the stick from coming back as a
//! CD-ROM, is `AT+ZCDRUN` on the AT port (§0), which takes effect after a replug.

use std::time::Duration;

use serde_json::Value;

use super::client::{block_on, Context, Failure, Link, Target, MODEM_TIMEOUT};
use crate::control::Request;

/// The HTTP request may take this long in all (connect, send, answer).
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The path and query the stick's web UI understands.
pub const SWITCH_PATH: &str = "/goform/goform_process?goformId=MODE_SWITCH&switchCmd=FACTORY";

/// Arguments of `atmate modeswitch`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate modeswitch                        # the stick's web UI at 192.168.0.1
  atmate modeswitch --addr 192.168.8.1
  atmate modeswitch --revert               # how to go back (AT+ZCDRUN)
  atmate modeswitch --revert --send        # send AT+ZCDRUN=8 now: stay a modem after replug

Exit codes: 0 switched (or sent); 1 the stick answered with an error (HTTP status,
`result … :0`); 2 could not run (web UI unreachable, no daemon and no modem).")]
pub struct ModeswitchArgs {
    /// The stick's web UI: host or host:port.
    #[arg(long, default_value = "192.168.0.1", value_parser = parse_addr)]
    pub addr: String,
    /// Print the AT+ZCDRUN commands that undo the switch or make it stick, instead of
    /// switching.
    #[arg(long)]
    pub revert: bool,
    /// With --revert: send AT+ZCDRUN=8 (autorun off) through the daemon, or directly.
    #[arg(long, requires = "revert")]
    pub send: bool,
    /// The modem to send to (with --send).
    #[arg(long, requires = "send")]
    pub modem: Option<String>,
    /// Where the daemon is (with --send).
    #[command(flatten)]
    pub target: Target,
}

/// `host` or `host:port`; a pasted `http://host/` is accepted and trimmed.
fn parse_addr(s: &str) -> Result<String, String> {
    let t = s.trim();
    let t = t.strip_prefix("http://").unwrap_or(t).trim_end_matches('/');
    if t.is_empty() || t.contains(['/', '?', '#', ' ', '@']) || t.starts_with("https:") {
        return Err(format!(
            "`{s}` is not a host or host:port (the stick's web UI is plain http, e.g. 192.168.0.1)"
        ));
    }
    Ok(t.to_owned())
}

/// The URL requested for `addr`.
pub fn switch_url(addr: &str) -> String {
    format!("http://{addr}{SWITCH_PATH}")
}

/// The `--revert` text: the AT+ZCDRUN commands and the exact answers the stick gives
/// (MF667.md §0; the same strings public tools match).
pub const REVERT_TEXT: &str = "\
The MF667 keeps its USB personality in flash; AT+ZCDRUN on its AT port (if01, e.g.
/dev/serial/by-id/…-if01-port0) sets what it is after the next replug or reboot:

  AT+ZCDRUN=9   autorun on: back to the default CD-ROM mode (19d2:1225), from which
                the web mode is reached again with usb_modeswitch
                answer: Open autorun state result(0:FAIL 1:SUCCESS):1
  AT+ZCDRUN=8   autorun off: no CD-ROM; stay a modem after replugs
                answer: Close autorun state result(0:FAIL 1:SUCCESS):1
  AT+ZCDRUN=4   ask whether autorun is on
                answer: Inquiry autorun open state result(0:NO 1:YES):1
  AT+ZCDRUN=F   leave download mode
                answer: exit download mode result(0:FAIL 1:SUCCESS):1

Then OK. A result of 0 means the stick refused. Send one with
  atmate at AT+ZCDRUN=9
or send AT+ZCDRUN=8 with
  atmate modeswitch --revert --send
";

/// What came of the GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// HTTP 2xx; the body as sent (trimmed).
    Switched(String),
    /// The web UI answered, but with an error.
    Refused(String),
    /// Nothing answered.
    Unreachable(String),
}

/// GET the switch URL on `addr` (no proxy: the stick is on a local link).
pub fn switch(addr: &str) -> SwitchOutcome {
    let url = switch_url(addr);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .proxy(None)
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    // ZTE web UIs of this family check the Referer on goform calls and answer an
    // empty page without it (seen on MF823/MF831 (unverified for the MF667)); sending
    // it costs nothing.
    let referer = format!("http://{addr}/index.html");
    match agent.get(&url).header("Referer", &referer).call() {
        Ok(mut resp) => {
            let status = resp.status();
            let body = resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            let body = body.trim().to_owned();
            if status.is_success() {
                // goform answers `{"result":"success"}` or `{"result":"failure"}`
                // (the ZTE web API's convention (unverified for MODE_SWITCH)).
                let failed = serde_json::from_str::<Value>(&body)
                    .ok()
                    .and_then(|v| v.get("result").and_then(Value::as_str).map(str::to_owned))
                    .is_some_and(|r| r.eq_ignore_ascii_case("failure"));
                if failed {
                    SwitchOutcome::Refused(format!("the stick refused the switch: {body}"))
                } else {
                    SwitchOutcome::Switched(body)
                }
            } else {
                let reason = status.canonical_reason().unwrap_or("");
                SwitchOutcome::Refused(format!(
                    "the stick's web UI answered HTTP {} {reason} for {url}",
                    status.as_u16()
                ))
            }
        }
        Err(e) => SwitchOutcome::Unreachable(format!(
            "cannot reach the stick's web UI at http://{addr} ({e}): is the stick in web/CD-ROM mode? \
             usb_modeswitch may be needed (a stick that shows up as a CD-ROM, 19d2:1225, must be \
             switched by usb_modeswitch first; one that already has ttyUSB ports is in modem mode)"
        )),
    }
}

/// Run `atmate modeswitch`.
pub fn run(args: ModeswitchArgs) -> anyhow::Result<i32> {
    if args.revert {
        print!("{REVERT_TEXT}");
        if !args.send {
            return Ok(0);
        }
        return block_on(async move {
            let ctx = Context::new(&args.target)?;
            let mut link = Link::open(&ctx, args.modem.as_deref(), true).await?;
            let answer = link
                .call(
                    Request::At {
                        command: "AT+ZCDRUN=8".into(),
                        modem: args.modem.clone(),
                    },
                    MODEM_TIMEOUT,
                )
                .await?;
            println!();
            print!("{}", super::at::render(&answer));
            zcdrun_result(&answer)
        });
    }
    Ok(match switch(&args.addr) {
        SwitchOutcome::Switched(body) => {
            if !body.is_empty() {
                println!(
                    "the stick answered: {}",
                    super::output::truncate(&body, 200)
                );
            }
            println!("the stick will re-enumerate as a modem (ttyUSB0..2); use if01");
            println!(
                "(e.g. /dev/serial/by-id/usb-ZTE_…-if01-port0, or `device: auto` in atmate.yaml)"
            );
            0
        }
        SwitchOutcome::Refused(m) => Failure::Refused(m).report(),
        SwitchOutcome::Unreachable(m) => Failure::CouldNotRun(m).report(),
    })
}

/// Read `Close autorun state result(0:FAIL 1:SUCCESS):1` from the answer.
fn zcdrun_result(answer: &Value) -> Result<(), Failure> {
    let lines: Vec<&str> = answer
        .get("lines")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let verdict = lines
        .iter()
        .find(|l| l.contains("result(0:FAIL 1:SUCCESS):"))
        .and_then(|l| l.trim().chars().last());
    match verdict {
        Some('1') => {
            println!("autorun is off: the stick stays a modem after the next replug");
            Ok(())
        }
        Some(_) => Err(Failure::Refused(
            "the stick answered FAIL to AT+ZCDRUN=8".into(),
        )),
        None => {
            eprintln!("atmate: the stick's answer has no result line; check it above");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("192.168.0.1").unwrap(), "192.168.0.1");
        assert_eq!(parse_addr("http://192.168.0.1/").unwrap(), "192.168.0.1");
        assert_eq!(parse_addr("127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert!(parse_addr("https://192.168.0.1").is_err());
        assert!(parse_addr("192.168.0.1/goform").is_err());
        assert!(parse_addr("").is_err());
        assert_eq!(
            switch_url("192.168.0.1"),
            "http://192.168.0.1/goform/goform_process?goformId=MODE_SWITCH&switchCmd=FACTORY"
        );
    }

    #[test]
    fn revert_text_has_the_commands_and_answers() {
        for s in [
            "AT+ZCDRUN=9",
            "AT+ZCDRUN=8",
            "Open autorun state result(0:FAIL 1:SUCCESS):1",
            "Close autorun state result(0:FAIL 1:SUCCESS):1",
            "Inquiry autorun open state result(0:NO 1:YES):1",
        ] {
            assert!(REVERT_TEXT.contains(s), "{s}");
        }
    }

    #[test]
    fn zcdrun_answers() {
        let ok =
            json!({"lines": ["Close autorun state result(0:FAIL 1:SUCCESS):1"], "result": "OK"});
        assert_eq!(zcdrun_result(&ok), Ok(()));
        let fail =
            json!({"lines": ["Close autorun state result(0:FAIL 1:SUCCESS):0"], "result": "OK"});
        assert_eq!(zcdrun_result(&fail).map_err(|f| f.code()), Err(1));
        assert_eq!(zcdrun_result(&json!({"lines": [], "result": "OK"})), Ok(()));
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        // Port 1 on loopback: nothing listens, the connection is refused at once.
        match switch("127.0.0.1:1") {
            SwitchOutcome::Unreachable(m) => {
                assert!(m.contains("usb_modeswitch may be needed"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }
}
