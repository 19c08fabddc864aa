//! `atmate inbox`: received messages, newest first, from the daemon or — when none
//! runs — straight from the SQLite store (WAL lets us read while nobody writes, and
//! while the daemon writes too).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{block_on, print_json, Context, Failure, Reached, Target, QUICK_TIMEOUT};
use super::output::{one_line, parse_since, relative_str, width, Table};
use crate::control::Request;
use crate::store::{InboxQuery, Store};

/// Arguments of `atmate inbox`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate inbox
  atmate inbox --from +4917612345678 --since 2h
  atmate inbox --since 2026-11-24 --limit 100 --full
  atmate inbox --json | jq -r '.[].text'

Output:
  ID  TIME       FROM            TEXT
  12  3 min ago  +4917612345678  ping
  11  2 d ago    O2              Your balance is 10.00 EUR. Top up now at…
Exit codes: 0 listed; 1 the daemon refused; 2 could not run (no config, unreadable store).")]
pub struct InboxArgs {
    /// Only from this sender (`+49…`, `0049…` and `0…` forms all match).
    #[arg(long)]
    pub from: Option<String>,
    /// Only received since then: RFC 3339 (`2026-11-24T08:00:00Z`), a date
    /// (`2026-11-24`), or a span back from now (`2h`, `1d`, `30min`).
    #[arg(long, value_parser = since_now)]
    pub since: Option<DateTime<Utc>>,
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

fn since_now(s: &str) -> Result<DateTime<Utc>, String> {
    parse_since(s, Utc::now())
}

/// Open the store named by the config, without creating it: when the file does not
/// exist nothing was ever received (or sent), and a client must not leave an empty
/// database behind in a place the daemon may not even use.
pub fn open_store(ctx: &mut Context) -> Result<Option<Store>, Failure> {
    let path = ctx.config()?.store.clone();
    if !path.exists() {
        return Ok(None);
    }
    Store::open(&path).map(Some).map_err(|e| {
        Failure::CouldNotRun(format!(
            "no daemon running, and the store cannot be read: {e}"
        ))
    })
}

/// Run `atmate inbox`.
pub fn run(args: InboxArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let mut ctx = Context::new(&args.target)?;
        let messages = match ctx.daemon().await? {
            Reached::Daemon(mut c) => {
                let req = Request::Inbox {
                    from: args.from.clone(),
                    since: args.since.map(|t| t.to_rfc3339()),
                    limit: Some(args.limit),
                };
                c.call(&req, QUICK_TIMEOUT).await?
            }
            Reached::Nobody(_) => {
                let mut q = InboxQuery::newest(args.limit);
                q.from = args.from.clone();
                q.since = args.since;
                match open_store(&mut ctx)? {
                    Some(store) => {
                        let msgs = tokio::task::spawn_blocking(move || store.inbox(&q))
                            .await
                            .map_err(|e| Failure::CouldNotRun(e.to_string()))?
                            .map_err(|e| Failure::CouldNotRun(e.to_string()))?;
                        serde_json::to_value(msgs)
                            .map_err(|e| Failure::CouldNotRun(e.to_string()))?
                    }
                    None => Value::Array(Vec::new()),
                }
            }
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

/// The inbox table; texts are cut to fit `width` columns (when given).
pub fn render(messages: &Value, now: DateTime<Utc>, width: Option<usize>) -> String {
    let empty = Vec::new();
    let list = messages.as_array().unwrap_or(&empty);
    if list.is_empty() {
        return "no messages\n".into();
    }
    let mut t = Table::new(&["ID", "TIME", "FROM", "TEXT"]);
    for m in list {
        let s = |k: &str| m.get(k).and_then(Value::as_str);
        let mut text = match (s("text"), s("error")) {
            (_, Some(err)) => format!("[undecodable: {err}]"),
            (Some(t), None) => one_line(t),
            (None, None) => String::new(),
        };
        if m.get("incomplete").and_then(Value::as_bool) == Some(true) {
            text = format!("[incomplete] {text}");
        }
        t.row(vec![
            m.get("id").map(Value::to_string).unwrap_or_default(),
            relative_str(s("received_at"), now),
            s("number").unwrap_or("?").to_owned(),
            text,
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

    fn sample() -> Value {
        json!([
            {"id": 12, "modem": "main", "number": "+4917612345678", "text": "ping",
             "received_at": "2026-11-24T11:57:00Z", "incomplete": false, "error": null},
            {"id": 11, "modem": "main", "number": "O2",
             "text": "Your balance is 10.00 EUR.\nTop up now at o2.de and get 5 GB extra for a month",
             "received_at": "2026-11-22T12:00:00Z", "incomplete": false, "error": null},
            {"id": 10, "modem": "main", "number": "+4917612345678", "text": "part one [… part 2 missing …]",
             "received_at": "2026-11-24T09:00:00Z", "incomplete": true, "error": null},
            {"id": 9, "modem": "main", "number": null, "text": null,
             "received_at": "2026-11-24T08:00:00Z", "incomplete": false, "error": "truncated UDH"}
        ])
    }

    #[test]
    fn table_with_relative_times_and_cut_texts() {
        let out = render(&sample(), now(), Some(60));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ID  TIME       FROM            TEXT");
        assert_eq!(lines[1], "12  3 min ago  +4917612345678  ping");
        // 60 columns minus 31 for the fixed ones: 29 characters of text, cut at the
        // folded line break rather than inside "Top".
        assert_eq!(
            lines[2],
            "11  2 d ago    O2              Your balance is 10.00 EUR.…"
        );
        assert!(lines[2].chars().count() <= 60, "{}", lines[2]);
        assert!(
            lines[3].starts_with("10  3 h ago    +4917612345678  [incomplete] part one"),
            "{out}"
        );
        assert_eq!(
            lines[4],
            "9   4 h ago    ?               [undecodable: truncated UDH]"
        );
    }

    #[test]
    fn full_texts_are_not_cut() {
        let out = render(&sample(), now(), None);
        assert!(
            out.contains("Top up now at o2.de and get 5 GB extra for a month\n"),
            "{out}"
        );
    }

    #[test]
    fn empty_inbox() {
        assert_eq!(render(&json!([]), now(), Some(80)), "no messages\n");
    }
}
