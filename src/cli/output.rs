//! Human output for the client commands: tables, signal bars, relative times, one-line
//! event descriptions, and the `--since` parser. Pure functions of their inputs (the
//! current time is passed in), so every format is tested below.

use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// The four cells of a signal bar, lowest first; an unlit cell is `_`.
const BAR_CELLS: [char; 4] = ['▂', '▄', '▆', '█'];

/// A four-cell signal bar (`▂▄▆_`) for the 0–5 bar scale of
/// [`crate::event::Signal::bars`].
///
/// Five levels do not fit four cells evenly; rounding up keeps "some signal" (bars 1)
/// visible and gives the usual picture for a usable 3G signal (CSQ 18, −77 dBm, bars 3
/// → `▂▄▆_`). Bars 4 and 5 both fill the bar.
pub fn signal_bar(bars: u8) -> String {
    let lit = (usize::from(bars.min(5)) * 4).div_ceil(5);
    BAR_CELLS
        .iter()
        .enumerate()
        .map(|(i, c)| if i < lit { *c } else { '_' })
        .collect()
}

/// `-77 dBm ▂▄▆_` from a signal object (`{"csq":18,"dbm":-77,"bars":3}`), or
/// `unknown (CSQ 99)` when the modem does not know. Bars are recomputed from `csq` when
/// the object lacks them.
pub fn signal_text(signal: &Value) -> String {
    let csq = signal.get("csq").and_then(Value::as_u64);
    match signal.get("dbm").and_then(Value::as_i64) {
        Some(dbm) => {
            let bars = signal
                .get("bars")
                .and_then(Value::as_u64)
                .map(|b| b.min(5) as u8)
                .or_else(|| csq.map(|c| crate::event::Signal::from_csq(c.min(99) as u8).bars))
                .unwrap_or(0);
            format!("{dbm} dBm {}", signal_bar(bars))
        }
        None => match csq {
            Some(c) => format!("unknown (CSQ {c})"),
            None => "unknown".to_owned(),
        },
    }
}

/// `3 min ago`, `in 5 h`, `just now`; older than a week: the local date.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let amount = match n {
        0..=9 => return "just now".to_owned(),
        10..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        86_400..=604_799 => format!("{} d", n / 86_400),
        _ => return t.with_timezone(&Local).format("%Y-%m-%d").to_string(),
    };
    if future {
        format!("in {amount}")
    } else {
        format!("{amount} ago")
    }
}

/// [`relative`] for an RFC 3339 string; other text is shown as it is, `-` for none.
pub fn relative_str(t: Option<&str>, now: DateTime<Utc>) -> String {
    match t {
        None => "-".to_owned(),
        Some(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => relative(t.with_timezone(&Utc), now),
            Err(_) => s.to_owned(),
        },
    }
}

/// A local wall-clock rendering of an RFC 3339 time (`2026-11-25 08:00`).
pub fn local_time(s: &str) -> String {
    match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => s.to_owned(),
    }
}

/// Fold a text onto one line: line breaks become `⏎`, tabs and other control
/// characters become spaces, so one message is one table row.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('⏎');
            }
            '\n' => out.push('⏎'),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, the last being `…` when something was cut; cuts at a
/// word boundary (a space or a folded line break) when one is near (within the last
/// third), so words are not torn.
pub fn truncate(s: &str, max: usize) -> String {
    let count = s.chars().count();
    if count <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let is_break = |c: char| c.is_whitespace() || c == '⏎';
    let keep: String = s.chars().take(max - 1).collect();
    // The next character is a break: the last word kept is whole.
    let whole = s.chars().nth(max - 1).is_some_and(is_break);
    let cut = match keep.rfind(is_break) {
        _ if whole => keep.as_str(),
        Some(i) if keep[..i].chars().count() >= (max - 1) * 2 / 3 => &keep[..i],
        _ => keep.as_str(),
    };
    format!("{}…", cut.trim_end_matches(is_break))
}

/// The terminal width from `$COLUMNS`, else 100 (a pipe or a shell that does not
/// export it; wide enough for the tables, narrow enough for a mail).
pub fn width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|w| *w >= 40)
        .unwrap_or(100)
}

/// A plain text table: a header row, columns separated by two spaces, left-aligned,
/// the last column not padded.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Add a row (missing cells are empty, extra ones dropped).
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The width of every column but the last (for fitting the last one to the
    /// terminal): the widest cell plus the two-space gap.
    pub fn fixed_width(&self) -> usize {
        self.widths().iter().rev().skip(1).map(|w| w + 2).sum()
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        w
    }

    /// [`Table::render`] with the last column cut (by [`truncate`]) so that a row
    /// fits `width` columns; the last column keeps at least 20 characters, so a narrow
    /// terminal still shows something useful. `None`: nothing is cut.
    pub fn render_fit(&self, width: Option<usize>) -> String {
        let Some(width) = width else {
            return self.render();
        };
        let room = width.saturating_sub(self.fixed_width()).max(20);
        let mut cut = self.clone();
        for r in &mut cut.rows {
            if let Some(last) = r.last_mut() {
                *last = truncate(last, room);
            }
        }
        cut.render()
    }

    /// The rendered table, one line per row, each ending with `\n`.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        for r in std::iter::once(&self.headers).chain(&self.rows) {
            let last = r.len().saturating_sub(1);
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i < last {
                    let pad = widths[i] - c.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Parse `--since`: RFC 3339 (`2026-11-24T08:00:00+01:00`), a local date
/// (`2026-11-24`, midnight), or a duration back from `now` (`2h`, `1d`, `30min`,
/// `1h 30m`, optionally followed by `ago`).
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(t) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        return Local
            .from_local_datetime(&midnight)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| format!("{t}: no such local time"));
    }
    let span = t.strip_suffix("ago").unwrap_or(t).trim();
    match humantime::parse_duration(span) {
        Ok(d) => chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| now.checked_sub_signed(d))
            .ok_or_else(|| format!("{t}: too far back")),
        Err(_) => Err(format!(
            "{t:?} is neither a time (2026-11-24T08:00:00Z, 2026-11-24) nor a duration back from now (2h, 1d, 30min)"
        )),
    }
}

/// One readable line for an event as the daemon sends it
/// (`{"kind":"sms","modem":"main","from":…}`), without the time stamp.
pub fn describe_event(e: &Value) -> String {
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
    let opt = |k: &str| e.get(k).and_then(Value::as_str);
    let n = |k: &str| e.get(k).and_then(Value::as_i64);
    let kind = s("kind");
    let what = match kind {
        "sms" => {
            let mut t = format!("from {}: {}", s("from"), quoted(s("text"), 200));
            if e.get("incomplete").and_then(Value::as_bool) == Some(true) {
                t.push_str(" (incomplete: parts missing)");
            }
            t
        }
        "sms_sent" => match opt("error") {
            Some(err) => format!("to {} failed: {err}", s("to")),
            None => format!(
                "to {} {} (message {}, {} part{})",
                s("to"),
                s("state"),
                n("id").unwrap_or(0),
                n("parts").unwrap_or(1),
                if n("parts").unwrap_or(1) == 1 {
                    ""
                } else {
                    "s"
                }
            ),
        },
        "sms_status" => format!(
            "to {}: {} (reference {}{})",
            s("to"),
            s("status"),
            n("reference").unwrap_or(0),
            n("message_id").map_or(String::new(), |id| format!(", message {id}"))
        ),
        "sms_undecodable" => format!("undecodable PDU {}: {}", s("pdu"), s("error")),
        "ussd" => {
            let origin = if e.get("network_initiated").and_then(Value::as_bool) == Some(true) {
                "network-initiated "
            } else {
                ""
            };
            format!(
                "{origin}{} [{}]",
                quoted(s("text"), 200),
                ussd_status(n("status").unwrap_or(0) as u8)
            )
        }
        "link" => {
            let mut t = format!("{} {}", s("via"), s("state"));
            if let Some(d) = opt("device") {
                t.push_str(&format!(" ({d})"));
            }
            if let Some(r) = opt("reason") {
                t.push_str(&format!(": {r}"));
            }
            if let Some(ms) = n("downtime_ms") {
                t.push_str(&format!(
                    " after {} down",
                    humantime::format_duration(std::time::Duration::from_secs(
                        (ms.max(0) as u64) / 1000
                    ))
                ));
            }
            t
        }
        "network" => {
            let mut t = s("state").to_owned();
            let extra: Vec<&str> = [opt("operator"), opt("tech")]
                .into_iter()
                .flatten()
                .collect();
            if !extra.is_empty() {
                t.push_str(&format!(" ({})", extra.join(", ")));
            }
            t
        }
        "signal" => signal_text(e),
        "storage" => format!(
            "{} {} {}/{}",
            s("memory"),
            s("state"),
            n("used").unwrap_or(0),
            n("total").unwrap_or(0)
        ),
        "call" => match (opt("from"), opt("call_type")) {
            (Some(f), Some(t)) => format!("incoming {t} call from {f}"),
            (Some(f), None) => format!("incoming call from {f}"),
            (None, Some(t)) => format!("incoming {t} call"),
            (None, None) => "incoming call".to_owned(),
        },
        "recovery" => format!(
            "step {} (attempt {}): {}",
            s("step"),
            n("attempt").unwrap_or(0),
            s("result")
        ),
        "send_limit" => format!("SMS to {} refused by the {} limit", s("to"), s("limit")),
        "startup" => "started".to_owned(),
        "schedule" => format!("job {} due", s("job")),
        _ => {
            // An event kind newer than this client: show its fields as they are.
            let mut o = e.clone();
            if let Some(m) = o.as_object_mut() {
                m.remove("kind");
                m.remove("modem");
            }
            o.to_string()
        }
    };
    match opt("modem") {
        Some(m) => format!("{m} {kind} {what}"),
        None => format!("{kind} {what}"),
    }
}

/// The words for a USSD session state (27.007 `+CUSD` `<m>`).
pub fn ussd_status(status: u8) -> &'static str {
    match status {
        0 => "done",
        1 => "more input wanted",
        2 => "ended by the network",
        3 => "answered by another client",
        4 => "not supported by the network",
        5 => "network timeout",
        _ => "unknown state",
    }
}

fn quoted(s: &str, max: usize) -> String {
    format!("\"{}\"", truncate(&one_line(s), max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn signal_bars_cover_the_scale() {
        let shown: Vec<String> = (0..=5).map(signal_bar).collect();
        assert_eq!(shown, ["____", "▂___", "▂▄__", "▂▄▆_", "▂▄▆█", "▂▄▆█"]);
        assert_eq!(signal_bar(200), "▂▄▆█");
    }

    #[test]
    fn signal_text_shows_dbm_and_bar() {
        assert_eq!(
            signal_text(&json!({"csq":18,"dbm":-77,"bars":3})),
            "-77 dBm ▂▄▆_"
        );
        // No bars in the object: derived from csq (Signal::from_csq).
        assert_eq!(signal_text(&json!({"csq":31,"dbm":-51})), "-51 dBm ▂▄▆█");
        assert_eq!(
            signal_text(&json!({"csq":99,"dbm":null,"bars":0})),
            "unknown (CSQ 99)"
        );
        assert_eq!(signal_text(&json!(null)), "unknown");
    }

    #[test]
    fn relative_times() {
        let now = at("2026-11-24T12:00:00Z");
        assert_eq!(relative(at("2026-11-24T11:59:55Z"), now), "just now");
        assert_eq!(relative(at("2026-11-24T11:59:30Z"), now), "30 s ago");
        assert_eq!(relative(at("2026-11-24T11:57:00Z"), now), "3 min ago");
        assert_eq!(relative(at("2026-11-24T09:10:00Z"), now), "2 h ago");
        assert_eq!(relative(at("2026-11-22T12:00:00Z"), now), "2 d ago");
        assert_eq!(relative(at("2026-11-24T17:00:00Z"), now), "in 5 h");
        assert_eq!(relative(at("2026-11-24T12:05:00Z"), now), "in 5 min");
        // Older than a week: a date, not "23 d ago".
        let old = relative(at("2026-11-01T12:00:00Z"), now);
        assert_eq!(old, "2026-11-01");
        assert_eq!(relative_str(None, now), "-");
        assert_eq!(relative_str(Some("soon"), now), "soon");
        assert_eq!(relative_str(Some("2026-11-24T11:00:00Z"), now), "1 h ago");
    }

    #[test]
    fn one_line_folds_breaks_and_controls() {
        assert_eq!(one_line("a\r\nb\nc\rd\te"), "a⏎b⏎c⏎d e");
        assert_eq!(one_line("Привет 😀"), "Привет 😀");
    }

    #[test]
    fn truncate_counts_characters_and_prefers_word_boundaries() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("exactly10!", 10), "exactly10!");
        assert_eq!(
            truncate("Your balance is 10.00 EUR", 20),
            "Your balance is…"
        );
        // No space near the end: cut mid-word rather than lose most of the text.
        assert_eq!(truncate("abcdefghijklmnopqrstuvwxyz", 10), "abcdefghi…");
        // Multi-byte characters are counted as characters, never split.
        assert_eq!(truncate("ПриветПриветПривет", 7), "Привет…");
        assert_eq!(truncate("x", 0), "");
    }

    #[test]
    fn table_aligns_columns_and_does_not_pad_the_last() {
        let mut t = Table::new(&["ID", "FROM", "TEXT"]);
        t.row(vec!["7".into(), "+4917612345678".into(), "hi".into()]);
        t.row(vec!["12".into(), "O2".into()]);
        assert_eq!(
            t.render(),
            "ID  FROM            TEXT\n7   +4917612345678  hi\n12  O2\n"
        );
        assert_eq!(t.fixed_width(), 4 + 16);
        // 20 fixed columns + at least 20 for the text, whatever the width says.
        let mut long = Table::new(&["ID", "TEXT"]);
        long.row(vec![
            "1".into(),
            "a b c d e f g h i j k l m n o p q r s t u v w".into(),
        ]);
        assert_eq!(
            long.render_fit(Some(30)),
            "ID  TEXT\n1   a b c d e f g h i j k l m…\n"
        );
        assert_eq!(
            long.render_fit(Some(10)),
            "ID  TEXT\n1   a b c d e f g h i j…\n"
        );
        assert_eq!(long.render_fit(None), long.render());
        assert!(!t.is_empty());
        assert!(Table::new(&["A"]).is_empty());
    }

    #[test]
    fn since_accepts_times_dates_and_durations() {
        let now = at("2026-11-24T12:00:00Z");
        assert_eq!(parse_since("2h", now).unwrap(), at("2026-11-24T10:00:00Z"));
        assert_eq!(parse_since("1d", now).unwrap(), at("2026-11-23T12:00:00Z"));
        assert_eq!(
            parse_since("1h 30m ago", now).unwrap(),
            at("2026-11-24T10:30:00Z")
        );
        assert_eq!(
            parse_since("2026-11-24T08:00:00+01:00", now).unwrap(),
            at("2026-11-24T07:00:00Z")
        );
        let midnight = parse_since("2026-11-20", now).unwrap();
        assert_eq!(
            midnight
                .with_timezone(&Local)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            "2026-11-20 00:00"
        );
        let e = parse_since("yesterday-ish", now).unwrap_err();
        assert!(e.contains("neither a time"), "{e}");
    }

    #[test]
    fn events_read_as_one_line() {
        let sms = json!({"kind":"sms","modem":"main","id":3,"from":"+4917612345678",
            "text":"ping\nplease","timestamp":null,"smsc":null,"encoding":"gsm7",
            "class":null,"parts":1,"incomplete":false});
        assert_eq!(
            describe_event(&sms),
            "main sms from +4917612345678: \"ping⏎please\""
        );
        let link = json!({"kind":"link","modem":"main","state":"down","via":"serial",
            "device":"/dev/ttyUSB1","reason":"EOF","downtime_ms":null});
        assert_eq!(
            describe_event(&link),
            "main link serial down (/dev/ttyUSB1): EOF"
        );
        let up = json!({"kind":"link","modem":"main","state":"up","via":"serial",
            "device":null,"reason":null,"downtime_ms":65000});
        assert_eq!(describe_event(&up), "main link serial up after 1m 5s down");
        let sig = json!({"kind":"signal","modem":"main","csq":18,"dbm":-77,"bars":3});
        assert_eq!(describe_event(&sig), "main signal -77 dBm ▂▄▆_");
        let net = json!({"kind":"network","modem":"main","state":"registered",
            "operator":"o2 - de","tech":"UMTS","lac":null,"ci":null});
        assert_eq!(
            describe_event(&net),
            "main network registered (o2 - de, UMTS)"
        );
        let ussd = json!({"kind":"ussd","modem":"main","text":"Balance: 10 EUR","status":0,
            "dcs":15,"network_initiated":true});
        assert_eq!(
            describe_event(&ussd),
            "main ussd network-initiated \"Balance: 10 EUR\" [done]"
        );
        let tick = json!({"kind":"schedule","job":"balance"});
        assert_eq!(describe_event(&tick), "schedule job balance due");
        let sent = json!({"kind":"sms_sent","modem":"main","id":7,"to":"+49","parts":2,
            "state":"sent","references":[1,2],"error":null});
        assert_eq!(
            describe_event(&sent),
            "main sms_sent to +49 sent (message 7, 2 parts)"
        );
        let future = json!({"kind":"teleport","modem":"main","to":"mars"});
        assert_eq!(describe_event(&future), "main teleport {\"to\":\"mars\"}");
    }
}
