//! `atmate logs --follow`: the daemon's events as they happen, one readable line each
//! (or JSON lines).
//!
//! The control protocol has no journal query yet, so there is no history to print:
//! `logs` always follows, and says so when `--follow` was not given.

use chrono::Local;
use serde_json::Value;

use super::client::{block_on, Events, Failure, Target};
use super::output::describe_event;

/// Arguments of `atmate logs`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate logs -f
  atmate logs -f --kind sms --kind ussd
  atmate logs -f --json | jq -c 'select(.kind == \"signal\")'

Output, one line per event:
  2026-11-24 12:03:04  main sms from +4917612345678: \"ping\"
  2026-11-24 12:03:09  main link serial down (/dev/ttyUSB1): EOF
Runs until Ctrl-C. Exit codes: 2 when there is no daemon or it stops.")]
pub struct LogsArgs {
    /// Follow new events (the default and, for now, the only mode: the daemon keeps
    /// no queryable history yet).
    #[arg(long, short)]
    pub follow: bool,
    /// Only events of this kind (`sms`, `ussd`, `link`, `network`, `signal`,
    /// `storage`, `call`, `recovery`, `schedule`, …); repeat or separate with commas.
    #[arg(long, value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Only events of this modem.
    #[arg(long)]
    pub modem: Option<String>,
    /// Print each event as one JSON object per line.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// True when `event` passes the `--kind` and `--modem` filters.
fn wanted(event: &Value, kinds: &[String], modem: Option<&str>) -> bool {
    let kind = event.get("kind").and_then(Value::as_str).unwrap_or("");
    let from = event.get("modem").and_then(Value::as_str);
    (kinds.is_empty() || kinds.iter().any(|k| k == kind))
        && (modem.is_none() || from.is_none() || from == modem)
}

/// Run `atmate logs`.
pub fn run(args: LogsArgs) -> anyhow::Result<i32> {
    block_on(async move {
        if !args.follow {
            eprintln!("atmate: the daemon keeps no queryable history yet; following new events (Ctrl-C to stop)");
        }
        let ctx = super::client::Context::new(&args.target)?;
        let mut events = Events::subscribe(&ctx).await?;
        while let Some(e) = events.next().await? {
            if !wanted(&e, &args.kind, args.modem.as_deref()) {
                continue;
            }
            if args.json {
                println!("{e}");
            } else {
                println!(
                    "{}  {}",
                    Local::now().format("%Y-%m-%d %H:%M:%S"),
                    describe_event(&e)
                );
            }
        }
        Err(Failure::CouldNotRun(
            "the daemon closed the connection (it stopped or restarted)".into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_by_kind_and_modem() {
        let sms = json!({"kind": "sms", "modem": "main"});
        let tick = json!({"kind": "schedule", "job": "x"});
        let kinds = vec!["sms".to_owned(), "schedule".to_owned()];
        assert!(wanted(&sms, &[], None));
        assert!(wanted(&sms, &kinds, Some("main")));
        assert!(!wanted(&sms, &kinds, Some("backup")));
        assert!(!wanted(&sms, &["link".to_owned()], None));
        // Events of no modem (schedules) pass a modem filter.
        assert!(wanted(&tick, &kinds, Some("backup")));
    }
}
