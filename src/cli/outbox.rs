//! `atmate outbox`: messages sent and waiting to be sent, newest first, from the
//! daemon or straight from the store when none runs.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{block_on, print_json, Context, Failure, Reached, Target, QUICK_TIMEOUT};
use super::inbox::open_store;
use super::output::{one_line, relative_str, width, Table};
use crate::control::Request;
use crate::store::OutboxQuery;

/// Arguments of `atmate outbox`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate outbox
  atmate outbox --limit 5 --full
  atmate outbox --json | jq '.[] | select(.state == \"failed\")'

Output:
  ID  TIME       TO              STATE                              TEXT
  7   3 min ago  +4917612345678  sent, delivered                    pong, signal -77 dBm
  6   1 h ago    +4917612345678  queued (attempt 2, next in 4 min)  Disk full
Exit codes: 0 listed; 1 the daemon refused; 2 could not run.")]
pub struct OutboxArgs {
    /// At most this many (0 = all).
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// Show whole texts, not cut to the terminal width.
    #[arg(long)]
    pub full: bool,
    /// Print the messages as a JSON array.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// Run `atmate outbox`.
pub fn run(args: OutboxArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let mut ctx = Context::new(&args.target)?;
        let messages = match ctx.daemon().await? {
            Reached::Daemon(mut c) => {
                c.call(
                    &Request::Outbox {
                        limit: Some(args.limit),
                    },
                    QUICK_TIMEOUT,
                )
                .await?
            }
            Reached::Nobody(_) => match open_store(&mut ctx)? {
                Some(store) => {
                    let q = OutboxQuery {
                        limit: args.limit,
                        ..Default::default()
                    };
                    let msgs = tokio::task::spawn_blocking(move || store.outbox(&q))
                        .await
                        .map_err(|e| Failure::CouldNotRun(e.to_string()))?
                        .map_err(|e| Failure::CouldNotRun(e.to_string()))?;
                    serde_json::to_value(msgs).map_err(|e| Failure::CouldNotRun(e.to_string()))?
                }
                None => Value::Array(Vec::new()),
            },
        };
        if args.json {
            print_json(&messages);
        } else {
            print!(
                "{}",
                render(&messages, Utc::now(), (!args.full).then(width))
            );
        }
        Ok(())
    })
}

/// `sent, delivered` / `queued (attempt 2, next in 4 min)` / `failed: +CMS ERROR: 330`.
fn state(m: &Value, now: DateTime<Utc>) -> String {
    let s = |k: &str| m.get(k).and_then(Value::as_str);
    match s("state").unwrap_or("?") {
        "sent" => match s("delivery") {
            Some(d) => format!("sent, {d}"),
            None => "sent".into(),
        },
        "queued" => {
            let attempts = m.get("attempts").and_then(Value::as_u64).unwrap_or(0);
            let mut facts = Vec::new();
            if attempts > 0 {
                facts.push(format!("attempt {attempts}"));
            }
            if let Some(next) = s("next_attempt_at") {
                facts.push(format!("next {}", relative_str(Some(next), now)));
            }
            if facts.is_empty() {
                "queued".into()
            } else {
                format!("queued ({})", facts.join(", "))
            }
        }
        "failed" => match s("error") {
            Some(e) => format!("failed: {e}"),
            None => "failed".into(),
        },
        other => other.to_owned(),
    }
}

/// The outbox table; texts are cut to fit `width` columns (when given).
pub fn render(messages: &Value, now: DateTime<Utc>, width: Option<usize>) -> String {
    let empty = Vec::new();
    let list = messages.as_array().unwrap_or(&empty);
    if list.is_empty() {
        return "no messages\n".into();
    }
    let mut t = Table::new(&["ID", "TIME", "TO", "STATE", "TEXT"]);
    for m in list {
        let s = |k: &str| m.get(k).and_then(Value::as_str);
        t.row(vec![
            m.get("id").map(Value::to_string).unwrap_or_default(),
            relative_str(s("sent_at").or(s("created_at")), now),
            s("to").unwrap_or("?").to_owned(),
            state(m, now),
            one_line(s("text").unwrap_or_default()),
        ]);
    }
    t.render_fit(width)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn states_are_described() {
        let n = now();
        assert_eq!(
            state(&json!({"state": "sent", "delivery": "delivered"}), n),
            "sent, delivered"
        );
        assert_eq!(
            state(&json!({"state": "sent", "delivery": null}), n),
            "sent"
        );
        assert_eq!(
            state(
                &json!({"state": "queued", "attempts": 2, "next_attempt_at": "2026-11-24T12:04:00Z"}),
                n
            ),
            "queued (attempt 2, next in 4 min)"
        );
        assert_eq!(
            state(&json!({"state": "queued", "attempts": 0}), n),
            "queued"
        );
        assert_eq!(
            state(&json!({"state": "failed", "error": "+CMS ERROR: 330"}), n),
            "failed: +CMS ERROR: 330"
        );
    }

    #[test]
    fn table() {
        let msgs = json!([
            {"id": 7, "to": "+4917612345678", "text": "pong", "state": "sent", "delivery": null,
             "attempts": 1, "created_at": "2026-11-24T11:56:00Z", "sent_at": "2026-11-24T11:57:00Z"},
            {"id": 6, "to": "+4917612345678", "text": "Disk full\non host", "state": "failed",
             "error": "+CMS ERROR: 500", "attempts": 3, "created_at": "2026-11-24T11:00:00Z",
             "sent_at": null}
        ]);
        let want = [
            "ID  TIME       TO              STATE                    TEXT",
            "7   3 min ago  +4917612345678  sent                     pong",
            "6   1 h ago    +4917612345678  failed: +CMS ERROR: 500  Disk full⏎on host",
        ];
        assert_eq!(render(&msgs, now(), None), want.join("\n") + "\n");
        assert_eq!(render(&json!([]), now(), None), "no messages\n");
    }
}
