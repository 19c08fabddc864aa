//! `atmate status`: the daemon, each modem (link, network, operator, signal, storage,
//! queue), the rules with their last runs, and the next schedules.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{block_on, print_json, Context, Link, Target, QUICK_TIMEOUT};
use super::output::{local_time, relative, relative_str, signal_text, truncate, Table};
use crate::control::Request;

/// Arguments of `atmate status`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  atmate status
  atmate status --modem main
  atmate status --json | jq '.modems[0].signal.dbm'

Output (human):
  daemon     up 3 h (since 2026-11-24 09:00) · config /etc/atmate/atmate.yaml
  modem main up · /dev/ttyUSB1 · since 3 h ago
    network  registered · o2 - de · UMTS
    signal   -77 dBm ▂▄▆_
    …
Exit codes: 0 shown; 1 the daemon refused; 2 could not run (no daemon and no modem).")]
pub struct StatusArgs {
    /// Only this modem.
    #[arg(long)]
    pub modem: Option<String>,
    /// Print the daemon's status object as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where the daemon is.
    #[command(flatten)]
    pub target: Target,
}

/// Run `atmate status`.
pub fn run(args: StatusArgs) -> anyhow::Result<i32> {
    block_on(async move {
        let ctx = Context::new(&args.target)?;
        let mut link = Link::open(&ctx, args.modem.as_deref(), true).await?;
        let mut status = link.call(Request::Status, QUICK_TIMEOUT).await?;
        if let Some(name) = &args.modem {
            let known = only_modem(&mut status, name);
            if !known {
                return Err(super::client::Failure::Refused(format!(
                    "no modem called {name:?} (the daemon has: {})",
                    modem_names(&status).join(", ")
                )));
            }
        }
        if args.json {
            print_json(&status);
        } else {
            print!("{}", render(&status, Utc::now()));
        }
        Ok(())
    })
}

fn modem_names(status: &Value) -> Vec<String> {
    status
        .get("modems")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Keep only the modem called `name`; false when there is none by that name (the
/// list is left as it was then, for the error message).
fn only_modem(status: &mut Value, name: &str) -> bool {
    let Some(ms) = status.get_mut("modems").and_then(Value::as_array_mut) else {
        return false;
    };
    if !ms
        .iter()
        .any(|m| m.get("name").and_then(Value::as_str) == Some(name))
    {
        return false;
    }
    ms.retain(|m| m.get("name").and_then(Value::as_str) == Some(name));
    true
}

/// The human status page.
pub fn render(status: &Value, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let config = s(status, "config").unwrap_or_else(|| "-".into());
    if status.get("direct").and_then(Value::as_bool) == Some(true) {
        out.push_str(&format!(
            "daemon     not running (the modem was opened directly) · config {config}\n"
        ));
    } else {
        let up = match s(status, "started").and_then(|t| DateTime::parse_from_rfc3339(&t).ok()) {
            Some(t) => {
                let since = relative(t.with_timezone(&Utc), now);
                format!(
                    "up {} (since {})",
                    since.trim_end_matches(" ago"),
                    local_time(&t.to_rfc3339())
                )
            }
            None => "up".into(),
        };
        out.push_str(&format!("daemon     {up} · config {config}\n"));
    }

    let empty = Vec::new();
    let modems = status
        .get("modems")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if modems.is_empty() {
        out.push_str("\nno modems\n");
    }
    for m in modems {
        out.push('\n');
        out.push_str(&modem(m, now));
    }

    let rules = status
        .get("rules")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    out.push_str(&format!("\nrules ({})\n", rules.len()));
    if rules.is_empty() {
        out.push_str("  none loaded\n");
    } else {
        let mut t = Table::new(&["NAME", "TRIGGER", "MODE", "RUNS", "SKIPPED", "LAST RUN"]);
        for r in rules {
            let num = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0).to_string();
            let mut runs = num("runs");
            let running = r.get("running").and_then(Value::as_u64).unwrap_or(0);
            let queued = r.get("queued").and_then(Value::as_u64).unwrap_or(0);
            if running > 0 || queued > 0 {
                runs.push_str(&format!(" ({running} running, {queued} queued)"));
            }
            t.row(vec![
                s(r, "name").unwrap_or_default(),
                s(r, "trigger").unwrap_or_default(),
                s(r, "mode").unwrap_or_default(),
                runs,
                num("skipped"),
                last_run(r, now),
            ]);
        }
        for line in t.render().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }

    let schedules = status
        .get("schedules")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if !schedules.is_empty() {
        out.push_str("\nschedules\n");
        let mut t = Table::new(&["JOB", "NEXT"]);
        for j in schedules {
            let next = s(j, "next");
            let when = match &next {
                Some(n) => format!("{} ({})", relative_str(Some(n), now), local_time(n)),
                None => "-".into(),
            };
            t.row(vec![s(j, "job").unwrap_or_default(), when]);
        }
        for line in t.render().lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// One modem's block.
fn modem(m: &Value, now: DateTime<Utc>) -> String {
    let s = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut out = String::new();
    let name = s("name").unwrap_or_else(|| "?".into());
    let link = s("link").unwrap_or_else(|| "unknown".into());
    let mut head = vec![link.clone()];
    head.push(s("device").unwrap_or_else(|| s("connector").unwrap_or_default()));
    if let Some(since) = s("since") {
        head.push(format!("since {}", relative_str(Some(&since), now)));
    }
    head.retain(|h| !h.is_empty());
    out.push_str(&format!("modem {name} {}\n", head.join(" · ")));
    if let (Some(err), true) = (s("link_error"), link != "up") {
        out.push_str(&format!("  error    {err}\n"));
    }
    let mut net = vec![s("network").unwrap_or_else(|| "unknown".into())];
    net.extend(s("operator"));
    net.extend(s("tech"));
    out.push_str(&format!("  network  {}\n", net.join(" · ")));
    if let Some(data) = s("data_link") {
        out.push_str(&format!("  data     {data}\n"));
    }
    let signal = m.get("signal").cloned().unwrap_or(Value::Null);
    out.push_str(&format!("  signal   {}\n", signal_text(&signal)));
    if let Some(sim) = s("sim") {
        out.push_str(&format!("  SIM      {sim}\n"));
    }
    let storage = match m
        .get("storage")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([used, total]) => {
            let (u, t) = (used.as_u64().unwrap_or(0), total.as_u64().unwrap_or(0));
            let full = if t > 0 && u >= t { " (full)" } else { "" };
            format!("{u}/{t} used{full}")
        }
        _ => "unknown".into(),
    };
    out.push_str(&format!("  storage  {storage}\n"));
    let mut queue = format!(
        "{} waiting",
        m.get("queue").and_then(Value::as_u64).unwrap_or(0)
    );
    if m.get("ussd_session").and_then(Value::as_bool) == Some(true) {
        queue.push_str(" · USSD menu open");
    }
    out.push_str(&format!("  queue    {queue}\n"));
    out.push_str(&format!(
        "  messages {} received · {} sent\n",
        m.get("received").and_then(Value::as_u64).unwrap_or(0),
        m.get("sent").and_then(Value::as_u64).unwrap_or(0)
    ));
    if let Some(info) = m.get("info") {
        let i = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut who: Vec<String> = [i("manufacturer"), i("model")]
            .into_iter()
            .flatten()
            .collect();
        if let Some(rev) = i("revision") {
            who.push(format!("(rev {rev})"));
        }
        if let Some(imei) = i("imei") {
            who.push(format!("IMEI {imei}"));
        }
        if !who.is_empty() {
            out.push_str(&format!("  device   {}\n", who.join(" ")));
        }
    }
    if let Some(r) = m.get("recovery_enabled").and_then(Value::as_bool) {
        out.push_str(&format!("  recovery {}\n", if r { "on" } else { "off" }));
    }
    out
}

/// `3 min ago, ok` / `2 h ago, failed: sms: +CMS ERROR: 330` / `never`.
fn last_run(r: &Value, now: DateTime<Utc>) -> String {
    let Some(started) = r.get("last_started").and_then(Value::as_str) else {
        return "never".into();
    };
    let when = relative_str(Some(started), now);
    let outcome = r.get("last_outcome");
    let result = outcome
        .and_then(|o| o.get("result"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let s = |k: &str| {
        outcome
            .and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let what = match result {
        "" => return when,
        "failed" => {
            let mut w = format!("failed: {}", s("action"));
            if !s("at").is_empty() {
                w.push_str(&format!(" at {}", s("at")));
            }
            w.push_str(&format!(": {}", s("error")));
            truncate(&w, 70)
        }
        "stopped" if !s("reason").is_empty() => format!("stopped: {}", s("reason")),
        other => other.to_owned(),
    };
    format!("{when}, {what}")
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
        json!({
            "started": "2026-11-24T09:00:00Z",
            "config": "/etc/atmate/atmate.yaml",
            "modems": [{
                "name": "main", "link": "up", "connector": "auto (19d2, if01)",
                "device": "/dev/ttyUSB1", "link_error": null,
                "since": "2026-11-24T09:00:05Z", "sim": "ready",
                "network": "registered", "operator": "o2 - de", "tech": "UMTS",
                "signal": {"csq": 18, "dbm": -77, "bars": 3},
                "storage": [3, 30], "queue": 0, "ussd_session": false,
                "recovery_enabled": true,
                "info": {"manufacturer": "ZTE CORPORATION", "model": "MF667",
                         "revision": null, "imei": "351234567890123"},
                "received": 12, "sent": 4
            }],
            "rules": [
                {"name": "ping", "place": "rules.yaml:1", "trigger": "sms", "mode": "single",
                 "runs": 2, "skipped": 1, "running": 0, "queued": 0,
                 "last_started": "2026-11-24T11:57:00Z", "last_finished": "2026-11-24T11:57:01Z",
                 "last_outcome": {"result": "ok"}},
                {"name": "balance", "place": "rules.yaml:9", "trigger": "schedule", "mode": "single",
                 "runs": 1, "skipped": 0, "running": 0, "queued": 0,
                 "last_started": "2026-11-24T10:00:00Z", "last_finished": null,
                 "last_outcome": {"result": "failed", "at": "rules.yaml:12", "action": "ussd",
                                  "error": "no answer within 30s"}},
                {"name": "idle", "place": "rules.yaml:20", "trigger": "network", "mode": "queued",
                 "runs": 0, "skipped": 0, "running": 0, "queued": 0,
                 "last_started": null, "last_finished": null, "last_outcome": null}
            ],
            "schedules": [{"job": "balance", "next": "2026-11-24T17:00:00Z"}]
        })
    }

    #[test]
    fn renders_modems_rules_and_schedules() {
        let page = render(&sample(), now());
        let lines: Vec<&str> = page.lines().collect();
        assert!(lines[0].starts_with("daemon     up 3 h (since "), "{page}");
        assert!(
            lines[0].ends_with(" · config /etc/atmate/atmate.yaml"),
            "{page}"
        );
        assert!(
            page.contains("modem main up · /dev/ttyUSB1 · since 2 h ago\n"),
            "{page}"
        );
        assert!(
            page.contains("  network  registered · o2 - de · UMTS\n"),
            "{page}"
        );
        assert!(page.contains("  signal   -77 dBm ▂▄▆_\n"), "{page}");
        assert!(page.contains("  SIM      ready\n"), "{page}");
        assert!(
            !page.contains("  data "),
            "no data interface configured: {page}"
        );
        assert!(page.contains("  storage  3/30 used\n"), "{page}");
        assert!(page.contains("  queue    0 waiting\n"), "{page}");
        assert!(page.contains("  messages 12 received · 4 sent\n"), "{page}");
        assert!(
            page.contains("  device   ZTE CORPORATION MF667 IMEI 351234567890123\n"),
            "{page}"
        );
        assert!(page.contains("\nrules (3)\n"), "{page}");
        assert!(
            page.contains("  NAME     TRIGGER   MODE    RUNS  SKIPPED  LAST RUN\n"),
            "{page}"
        );
        assert!(
            page.contains("  ping     sms       single  2     1        3 min ago, ok\n"),
            "{page}"
        );
        assert!(
            page.contains("2 h ago, failed: ussd at rules.yaml:12: no answer within 30s"),
            "{page}"
        );
        assert!(
            page.contains("  idle     network   queued  0     0        never\n"),
            "{page}"
        );
        assert!(
            page.contains("\nschedules\n  JOB      NEXT\n  balance  in 5 h ("),
            "{page}"
        );
    }

    #[test]
    fn a_modem_that_is_down_says_why() {
        let mut st = sample();
        st["modems"][0]["link"] = json!("down");
        st["modems"][0]["device"] = Value::Null;
        st["modems"][0]["link_error"] =
            json!("cannot open /dev/ttyUSB1: No such file or directory");
        st["modems"][0]["signal"] = Value::Null;
        st["modems"][0]["storage"] = json!([30, 30]);
        st["modems"][0]["ussd_session"] = json!(true);
        st["modems"][0]["data_link"] = json!("down");
        let page = render(&st, now());
        assert!(
            page.contains("modem main down · auto (19d2, if01) · since 2 h ago\n"),
            "{page}"
        );
        assert!(
            page.contains("  error    cannot open /dev/ttyUSB1: No such file or directory\n"),
            "{page}"
        );
        assert!(page.contains("  data     down\n"), "{page}");
        assert!(page.contains("  signal   unknown\n"), "{page}");
        assert!(page.contains("  storage  30/30 used (full)\n"), "{page}");
        assert!(
            page.contains("  queue    0 waiting · USSD menu open\n"),
            "{page}"
        );
    }

    #[test]
    fn direct_status_says_no_daemon() {
        let mut st = sample();
        st["direct"] = json!(true);
        st["started"] = Value::Null;
        st["rules"] = json!([]);
        st["schedules"] = json!([]);
        let page = render(&st, now());
        assert!(
            page.starts_with("daemon     not running (the modem was opened directly)"),
            "{page}"
        );
        assert!(page.contains("\nrules (0)\n  none loaded\n"), "{page}");
        assert!(!page.contains("schedules"), "{page}");
    }

    #[test]
    fn filtering_by_modem() {
        let mut st = sample();
        assert!(only_modem(&mut st, "main"));
        assert_eq!(st["modems"].as_array().unwrap().len(), 1);
        assert!(!only_modem(&mut st, "backup"));
        assert_eq!(modem_names(&st), ["main"]);
    }
}
