//! The client commands through the real binary: `send`, `ussd`, `at`, `status`,
//! `inbox`, `outbox`, `reload`, `logs`, `console` against a fake daemon (a tokio
//! `UnixListener` answering the JSON-lines protocol with canned answers and recording
//! what it was asked); `inbox` straight from the store; `modeswitch` against a
//! loopback HTTP server; `completions`; every `--help` has examples.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};

use assert_cmd::Command;
use serde_json::{json, Value};

fn atmate() -> Command {
    let mut c = Command::cargo_bin("atmate").expect("the atmate binary is built");
    // Nothing from the developer's shell may point the commands elsewhere.
    c.env_remove("ATMATE_CONFIG")
        .env_remove("ATMATE_SOCKET")
        .env_remove("RUST_LOG")
        .env("COLUMNS", "200");
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A config file in `dir` whose control socket is `dir/d.sock`.
fn write_config(dir: &Path) -> PathBuf {
    let config = dir.join("atmate.yaml");
    std::fs::write(
        &config,
        format!(
            "modems:\n  - name: main\n    device: sim\nstore: {}\ncontrol_socket: {}\n",
            dir.join("atmate.db").display(),
            dir.join("d.sock").display()
        ),
    )
    .expect("config written");
    config
}

/// What the fake daemon answers to one `cmd`: the answers in turn (the last one
/// repeats), and for `subscribe` the events to stream afterwards.
#[derive(Default, Clone)]
struct Script {
    answers: HashMap<String, Vec<Value>>,
    events: Vec<Value>,
    /// Close a subscribed connection after the events (else keep it open).
    close_after_events: bool,
}

impl Script {
    fn ok(mut self, cmd: &str, result: Value) -> Self {
        self.answers
            .entry(cmd.to_owned())
            .or_default()
            .push(json!({"ok": true, "result": result}));
        self
    }
    fn err(mut self, cmd: &str, error: &str) -> Self {
        self.answers
            .entry(cmd.to_owned())
            .or_default()
            .push(json!({"ok": false, "error": error}));
        self
    }
    fn events(mut self, events: Vec<Value>, close: bool) -> Self {
        self.events = events;
        self.close_after_events = close;
        self
    }
}

/// A fake daemon on `dir/d.sock`, serving `Script` on its own thread and runtime.
struct FakeDaemon {
    _dir: tempfile::TempDir,
    config: PathBuf,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl FakeDaemon {
    fn start(script: Script) -> FakeDaemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = write_config(dir.path());
        // Bound before the binary runs, so it never races the listener.
        let std_listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("d.sock")).expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(std_listener, script, recorded));
        });
        FakeDaemon {
            _dir: dir,
            config,
            requests,
        }
    }

    /// Run `atmate <args> -c <config>` with `stdin`.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        atmate()
            .args(args)
            .arg("-c")
            .arg(&self.config)
            .write_stdin(stdin.to_owned())
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .expect("runs")
    }

    /// Every request received, in order, `subscribe` included.
    fn requests(&self) -> Vec<Value> {
        self.requests.lock().expect("lock").clone()
    }
}

async fn serve(
    listener: std::os::unix::net::UnixListener,
    script: Script,
    recorded: Arc<Mutex<Vec<Value>>>,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::UnixListener::from_std(listener).expect("tokio listener");
    let turns: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let (script, recorded, turns) = (script.clone(), recorded.clone(), turns.clone());
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let req: Value = serde_json::from_str(&line).expect("the CLI sends JSON");
                recorded.lock().expect("lock").push(req.clone());
                let cmd = req["cmd"].as_str().unwrap_or("").to_owned();
                let answer = if cmd == "subscribe" {
                    json!({"ok": true, "result": "subscribed"})
                } else {
                    let mut t = turns.lock().expect("lock");
                    let n = t.entry(cmd.clone()).or_insert(0);
                    let answers = script.answers.get(&cmd);
                    let a = answers
                        .and_then(|a| a.get(*n).or(a.last()).cloned())
                        .unwrap_or_else(
                            || json!({"ok": false, "error": format!("fake: no answer for {cmd}")}),
                        );
                    *n += 1;
                    a
                };
                let mut out = answer.to_string();
                out.push('\n');
                if w.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
                if cmd == "subscribe" {
                    for e in &script.events {
                        let mut s = e.to_string();
                        s.push('\n');
                        let _ = w.write_all(s.as_bytes()).await;
                    }
                    if script.close_after_events {
                        return;
                    }
                    // Keep the connection open like a live daemon.
                    std::future::pending::<()>().await;
                }
            }
        });
    }
}

fn sms_event() -> Value {
    json!({"kind": "sms", "modem": "main", "id": 3, "from": "+4917612345678", "text": "ping",
           "timestamp": null, "smsc": null, "encoding": "gsm7", "class": null, "parts": 1,
           "incomplete": false})
}

// ---------------------------------------------------------------- send

#[test]
fn send_renders_the_answer_and_sends_the_right_request() {
    let d = FakeDaemon::start(Script::default().ok("send", json!({"id": 7})));
    let o = d.run(&["send", "+49 176 1234-5678", "hello world"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "sent to +4917612345678 (message 7)\n");
    assert_eq!(
        d.requests(),
        [json!({"cmd": "send", "to": "+4917612345678", "text": "hello world"})]
    );
}

#[test]
fn send_reads_the_text_from_stdin_and_prints_json() {
    let answer = json!({"id": 8, "parts": 2, "references": [12, 13]});
    let d = FakeDaemon::start(Script::default().ok("send", answer.clone()));
    let o = d.run(
        &["send", "--modem", "backup", "--json", "+4917612345678", "-"],
        "line one\nline two\n",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(printed, answer);
    assert_eq!(
        d.requests(),
        [
            json!({"cmd": "send", "to": "+4917612345678", "text": "line one\nline two", "modem": "backup"})
        ]
    );
}

#[test]
fn a_daemon_error_exits_1_with_its_message() {
    let d =
        FakeDaemon::start(Script::default().err("send", "send budget: 30 SMS per hour reached"));
    let o = d.run(&["send", "+4917612345678", "hi"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "atmate: send budget: 30 SMS per hour reached\n");
    assert_eq!(stdout(&o), "");
}

#[test]
fn bad_arguments_exit_2_before_anything_is_sent() {
    let d = FakeDaemon::start(Script::default());
    let o = d.run(&["send", "Vodafone", "hi"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot receive SMS"), "{}", stderr(&o));
    let o = d.run(&["send", "+4917612345678", "-"], "\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("the text is empty"), "{}", stderr(&o));
    let o = d.run(&["at", "+CSQ"], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("did you mean `AT+CSQ`"),
        "{}",
        stderr(&o)
    );
    assert!(d.requests().is_empty(), "{:?}", d.requests());
}

// ---------------------------------------------------------------- ussd

#[test]
fn ussd_prints_the_reply() {
    let d = FakeDaemon::start(Script::default().ok(
        "ussd",
        json!({"text": "Balance: 10.00 EUR", "status": 0, "dcs": 15}),
    ));
    let o = d.run(&["ussd", "*100#"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "Balance: 10.00 EUR\n");
    assert_eq!(d.requests(), [json!({"cmd": "ussd", "code": "*100#"})]);
}

#[test]
fn ussd_interactive_answers_menus_until_done() {
    let d = FakeDaemon::start(
        Script::default()
            .ok(
                "ussd",
                json!({"text": "1 Balance\n2 Bundles", "status": 1, "dcs": 15}),
            )
            .ok(
                "ussd_reply",
                json!({"text": "Bundles:\n1 1 GB", "status": 1, "dcs": 15}),
            )
            .ok(
                "ussd_reply",
                json!({"text": "1 GB booked", "status": 0, "dcs": 15}),
            ),
    );
    let o = d.run(&["ussd", "-i", "*101#"], "2\n1\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "1 Balance\n2 Bundles\n[more input wanted]\nBundles:\n1 1 GB\n[more input wanted]\n1 GB booked\n"
    );
    assert_eq!(
        d.requests(),
        [
            json!({"cmd": "ussd", "code": "*101#"}),
            json!({"cmd": "ussd_reply", "text": "2"}),
            json!({"cmd": "ussd_reply", "text": "1"}),
        ]
    );
}

#[test]
fn ussd_interactive_cancels_on_empty_input_and_on_end_of_input() {
    for input in ["\n", ""] {
        let d = FakeDaemon::start(
            Script::default()
                .ok("ussd", json!({"text": "1 Balance", "status": 1, "dcs": 15}))
                .ok("ussd_cancel", Value::Null),
        );
        let o = d.run(&["ussd", "--interactive", "*101#"], input);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("USSD session cancelled"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            d.requests(),
            [
                json!({"cmd": "ussd", "code": "*101#"}),
                json!({"cmd": "ussd_cancel"})
            ]
        );
    }
}

#[test]
fn ussd_left_open_says_how_to_answer_and_not_supported_is_exit_1() {
    let d = FakeDaemon::start(
        Script::default().ok("ussd", json!({"text": "1 Balance", "status": 1, "dcs": 15})),
    );
    let o = d.run(&["ussd", "*101#"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("atmate ussd --reply TEXT"),
        "{}",
        stderr(&o)
    );
    let d = FakeDaemon::start(
        Script::default().ok("ussd", json!({"text": "", "status": 4, "dcs": 15})),
    );
    let o = d.run(&["ussd", "*999#"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("USSD: not supported by the network"),
        "{}",
        stderr(&o)
    );
    let d = FakeDaemon::start(Script::default().ok(
        "ussd_reply",
        json!({"text": "Done", "status": 0, "dcs": 15}),
    ));
    let o = d.run(&["ussd", "--reply", "3", "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(printed["text"], "Done");
    assert_eq!(d.requests(), [json!({"cmd": "ussd_reply", "text": "3"})]);
}

// ---------------------------------------------------------------- at

#[test]
fn at_prints_lines_then_the_result() {
    let d = FakeDaemon::start(
        Script::default().ok("at", json!({"lines": ["+CSQ: 18,99"], "result": "OK"})),
    );
    let o = d.run(&["at", "AT+CSQ"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "+CSQ: 18,99\nOK\n");
    assert_eq!(d.requests(), [json!({"cmd": "at", "command": "AT+CSQ"})]);
}

#[test]
fn at_error_exits_1() {
    let d = FakeDaemon::start(
        Script::default().err("at", "AT+CPIN? failed: +CME ERROR: 10 (SIM not inserted)"),
    );
    let o = d.run(&["at", "AT+CPIN?", "--modem", "main"], "");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "atmate: AT+CPIN? failed: +CME ERROR: 10 (SIM not inserted)\n"
    );
    assert_eq!(
        d.requests(),
        [json!({"cmd": "at", "command": "AT+CPIN?", "modem": "main"})]
    );
}

// ---------------------------------------------------------------- status

fn status_answer() -> Value {
    let now = chrono::Utc::now();
    json!({
        "started": (now - chrono::Duration::hours(3)).to_rfc3339(),
        "config": "/etc/atmate/atmate.yaml",
        "modems": [{
            "name": "main", "link": "up", "connector": "auto (19d2, if01)",
            "device": "/dev/ttyUSB1", "link_error": null,
            "since": (now - chrono::Duration::minutes(5)).to_rfc3339(), "sim": "ready",
            "network": "registered", "operator": "o2 - de", "tech": "UMTS",
            "signal": {"csq": 18, "dbm": -77, "bars": 3},
            "storage": [3, 30], "queue": 1, "ussd_session": false, "recovery_enabled": true,
            "info": {"manufacturer": "ZTE CORPORATION", "model": "MF667", "revision": null,
                     "imei": "351234567890123"},
            "received": 12, "sent": 4
        }],
        "rules": [{"name": "ping", "place": "rules.yaml:1", "trigger": "sms", "mode": "single",
                   "runs": 2, "skipped": 0, "running": 0, "queued": 0,
                   "last_started": (now - chrono::Duration::minutes(3)).to_rfc3339(),
                   "last_finished": null, "last_outcome": {"result": "ok"}}],
        "schedules": [{"job": "balance", "next": (now + chrono::Duration::hours(5) + chrono::Duration::seconds(30)).to_rfc3339()}]
    })
}

#[test]
fn status_human_shows_modem_signal_rules_and_schedules() {
    let d = FakeDaemon::start(Script::default().ok("status", status_answer()));
    let o = d.run(&["status"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "daemon     up 3 h (since ",
        " · config /etc/atmate/atmate.yaml\n",
        "modem main up · /dev/ttyUSB1 · since 5 min ago\n",
        "  network  registered · o2 - de · UMTS\n",
        "  signal   -77 dBm ▂▄▆_\n",
        "  storage  3/30 used\n",
        "  queue    1 waiting\n",
        "  device   ZTE CORPORATION MF667 IMEI 351234567890123\n",
        "  ping  sms      single  2     0        3 min ago, ok\n",
        "  balance  in 5 h (",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert_eq!(d.requests(), [json!({"cmd": "status"})]);
}

#[test]
fn status_json_is_the_daemon_object() {
    let answer = status_answer();
    let d = FakeDaemon::start(Script::default().ok("status", answer.clone()));
    let o = d.run(&["status", "--json"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    let printed: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(printed, answer);
    let o = d.run(&["status", "--modem", "backup"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no modem called \"backup\" (the daemon has: main)"),
        "{}",
        stderr(&o)
    );
}

// ---------------------------------------------------------------- inbox, outbox

#[test]
fn inbox_renders_a_table_and_passes_the_filters() {
    let now = chrono::Utc::now();
    let d = FakeDaemon::start(Script::default().ok(
        "inbox",
        json!([
            {"id": 12, "modem": "main", "number": "+4917612345678", "text": "ping",
             "received_at": (now - chrono::Duration::minutes(3)).to_rfc3339(),
             "incomplete": false, "error": null},
            {"id": 11, "modem": "main", "number": "O2", "text": "Your balance\nis 10 EUR",
             "received_at": (now - chrono::Duration::days(2)).to_rfc3339(),
             "incomplete": false, "error": null}
        ]),
    ));
    let o = d.run(
        &[
            "inbox",
            "--from",
            "+4917612345678",
            "--since",
            "2h",
            "-n",
            "5",
        ],
        "",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ID  TIME       FROM            TEXT\n\
         12  3 min ago  +4917612345678  ping\n\
         11  2 d ago    O2              Your balance⏎is 10 EUR\n"
    );
    let reqs = d.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0]["cmd"], "inbox");
    assert_eq!(reqs[0]["from"], "+4917612345678");
    assert_eq!(reqs[0]["limit"], 5);
    let since = chrono::DateTime::parse_from_rfc3339(reqs[0]["since"].as_str().expect("since"))
        .expect("RFC 3339");
    let back = now - since.with_timezone(&chrono::Utc);
    assert!(
        (back.num_seconds() - 7200).abs() < 60,
        "since should be 2 h back: {back:?}"
    );
}

#[test]
fn inbox_without_a_daemon_reads_the_store() {
    use atmate::store::{NewSms, Store};
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    // Nothing received yet: no store file, and the client does not create one.
    let o = atmate()
        .args(["inbox", "-c"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no messages\n");
    assert!(!dir.path().join("atmate.db").exists());

    let store = Store::open(dir.path().join("atmate.db")).expect("store");
    store
        .archive_single(&NewSms {
            modem: "main".into(),
            number: "+4917612345678".into(),
            text: "stored while the daemon was down".into(),
            encoding: atmate::event::TextEncoding::Gsm7,
            class: None,
            smsc: None,
            scts: None,
            received_at: chrono::Utc::now() - chrono::Duration::hours(1),
            pdu: "0011000C919471163254870000AA0AE8329BFD4697D9EC37".into(),
        })
        .expect("archived");
    drop(store);
    let o = atmate()
        .args(["inbox", "--json", "-c"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let list: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(list[0]["number"], "+4917612345678");
    assert_eq!(list[0]["text"], "stored while the daemon was down");
    let o = atmate()
        .args(["inbox", "-c"])
        .arg(&config)
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 h ago  +4917612345678  stored while the daemon was down\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn outbox_renders_states() {
    let now = chrono::Utc::now();
    let d = FakeDaemon::start(Script::default().ok(
        "outbox",
        json!([{"id": 7, "modem": "main", "to": "+4917612345678", "text": "pong",
                "state": "sent", "delivery": "delivered", "attempts": 1,
                "created_at": (now - chrono::Duration::minutes(4)).to_rfc3339(),
                "sent_at": (now - chrono::Duration::minutes(3)).to_rfc3339()}]),
    ));
    let o = d.run(&["outbox", "--limit", "3"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ID  TIME       TO              STATE            TEXT\n\
         7   3 min ago  +4917612345678  sent, delivered  pong\n"
    );
    assert_eq!(d.requests(), [json!({"cmd": "outbox", "limit": 3})]);
}

// ---------------------------------------------------------------- reload, logs, console

#[test]
fn reload_prints_the_summary_or_fails_with_1() {
    let d = FakeDaemon::start(Script::default().ok("reload", json!("rules reloaded (4 rules)")));
    let o = d.run(&["reload"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "rules reloaded (4 rules)\n");
    let d = FakeDaemon::start(Script::default().err(
        "reload",
        "rules.yaml:3:9: unknown action `smss`; keeping the previous rules",
    ));
    let o = d.run(&["reload"], "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("rules.yaml:3:9"), "{}", stderr(&o));
}

#[test]
fn commands_that_need_the_daemon_exit_2_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    for args in [
        &["reload"][..],
        &["logs", "-f"][..],
        &["ussd", "--cancel"][..],
    ] {
        let o = atmate()
            .args(args)
            .arg("-c")
            .arg(&config)
            .output()
            .expect("runs");
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.contains("no daemon running at"), "{args:?}: {err}");
        assert!(err.contains("d.sock"), "{args:?}: {err}");
        assert!(err.contains("atmate run"), "{args:?}: {err}");
    }
}

#[test]
fn logs_follow_prints_one_line_per_event() {
    let d = FakeDaemon::start(Script::default().events(
        vec![
            sms_event(),
            json!({"kind": "signal", "modem": "main", "csq": 18, "dbm": -77, "bars": 3}),
            json!({"kind": "link", "modem": "main", "state": "down", "via": "serial",
                   "device": "/dev/ttyUSB1", "reason": "EOF", "downtime_ms": null}),
        ],
        true,
    ));
    let o = d.run(&["logs", "--follow"], "");
    // The fake closes the stream: the daemon went away, exit 2.
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("the daemon closed the connection"),
        "{}",
        stderr(&o)
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    // `YYYY-MM-DD HH:MM:SS  ` then the event.
    assert!(
        lines[0].ends_with("  main sms from +4917612345678: \"ping\""),
        "{out}"
    );
    for l in &lines {
        let stamp = l.get(..19).unwrap_or_default();
        assert!(
            chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S").is_ok(),
            "{l}"
        );
        assert_eq!(l.get(19..21), Some("  "), "{l}");
    }
    assert!(lines[1].ends_with("  main signal -77 dBm ▂▄▆_"), "{out}");
    assert!(
        lines[2].ends_with("  main link serial down (/dev/ttyUSB1): EOF"),
        "{out}"
    );
    assert_eq!(d.requests(), [json!({"cmd": "subscribe"})]);

    // JSON lines, filtered by kind; without --follow it says it follows anyway.
    let o = d.run(&["logs", "--json", "--kind", "signal,link"], "");
    assert!(
        stderr(&o).contains("following new events"),
        "{}",
        stderr(&o)
    );
    let kinds: Vec<String> = stdout(&o)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("JSON line")["kind"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["signal", "link"]);
}

#[test]
fn console_sends_lines_repeats_with_bang_bang_and_shows_events() {
    let d = FakeDaemon::start(
        Script::default()
            .ok("at", json!({"lines": ["+CSQ: 18,99"], "result": "OK"}))
            .ok("at", json!({"lines": ["+CSQ: 19,99"], "result": "OK"}))
            .err("at", "AT+BOGUS failed: ERROR")
            .events(vec![sms_event()], false),
    );
    let o = d.run(&["console"], "AT+CSQ\n!!\nnot-at\nAT+BOGUS\nhistory\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "+CSQ: 18,99\nOK\n",
        "AT+CSQ\n+CSQ: 19,99\nOK\n",
        "`not-at` does not start with AT",
        "AT+BOGUS failed: ERROR\n",
        "  1  AT+CSQ\n  2  AT+CSQ\n  3  AT+BOGUS\n",
        "] main sms from +4917612345678: \"ping\"\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    let ats: Vec<Value> = d
        .requests()
        .into_iter()
        .filter(|r| r["cmd"] == "at")
        .collect();
    assert_eq!(
        ats,
        [
            json!({"cmd": "at", "command": "AT+CSQ"}),
            json!({"cmd": "at", "command": "AT+CSQ"}),
            json!({"cmd": "at", "command": "AT+BOGUS"}),
        ]
    );
    assert!(d.requests().contains(&json!({"cmd": "subscribe"})));
}

// ---------------------------------------------------------------- no daemon: the modem directly

#[test]
fn without_a_daemon_send_ussd_at_status_open_the_modem_directly() {
    // `device: sim`: the direct path opens the in-process simulator.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path());
    let run = |args: &[&str]| {
        atmate()
            .args(args)
            .arg("-c")
            .arg(&config)
            .timeout(std::time::Duration::from_secs(60))
            .output()
            .expect("runs")
    };
    let o = run(&["at", "AT+CGMI"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ZTE CORPORATION\nOK\n");
    let err = stderr(&o);
    assert!(err.contains("atmate: no daemon running ("), "{err}");
    assert!(err.contains("d.sock"), "{err}");
    assert!(err.contains("); opening the modem directly\n"), "{err}");

    let o = run(&["send", "+4917612345678", "sent without a daemon"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("sent to +4917612345678 (message "),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains(", 1 part, TP-MR "), "{}", stdout(&o));

    let o = run(&["ussd", "*100#"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Balance"), "{}", stdout(&o));

    let o = run(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("daemon     not running (the modem was opened directly)"),
        "{out}"
    );
    assert!(out.contains("modem main up"), "{out}");
    assert!(out.contains("  signal   -77 dBm ▂▄▆_\n"), "{out}");

    // Reading what was sent needs no modem: the store answers.
    let o = run(&["outbox"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("sent without a daemon"),
        "{}",
        stdout(&o)
    );
}

// ---------------------------------------------------------------- modeswitch

/// A one-shot HTTP server on 127.0.0.1: records the request head, answers `status`
/// with `body`. Returns the address and the recorded head.
fn http_once(status: &str, body: &str) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(s.try_clone().expect("clone"));
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let _ = s.write_all(response.as_bytes());
        let _ = tx.send(head);
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    });
    (addr, rx)
}

#[test]
fn modeswitch_requests_the_exact_goform_url() {
    let (addr, head) = http_once("200 OK", r#"{"result":"success"}"#);
    let o = atmate()
        .args(["modeswitch", "--addr", &addr])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let head = head
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a request arrived");
    let request_line = head.lines().next().unwrap_or_default();
    assert_eq!(
        request_line,
        "GET /goform/goform_process?goformId=MODE_SWITCH&switchCmd=FACTORY HTTP/1.1"
    );
    assert!(
        head.to_ascii_lowercase().contains(&format!("host: {addr}")),
        "{head}"
    );
    let out = stdout(&o);
    assert!(
        out.contains("the stick will re-enumerate as a modem (ttyUSB0..2); use if01"),
        "{out}"
    );
}

#[test]
fn modeswitch_http_error_shows_the_status_and_exits_1() {
    let (addr, _head) = http_once("404 Not Found", "");
    let o = atmate()
        .args(["modeswitch", "--addr", &addr])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("HTTP 404 Not Found"), "{}", stderr(&o));
}

#[test]
fn modeswitch_unreachable_exits_2_with_the_hint() {
    // Port 1 on loopback: closed, so the connection is refused at once.
    let o = atmate()
        .args(["modeswitch", "--addr", "127.0.0.1:1"])
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("is the stick in web/CD-ROM mode? usb_modeswitch may be needed"),
        "{err}"
    );
}

#[test]
fn modeswitch_revert_prints_and_sends_zcdrun() {
    let o = atmate()
        .args(["modeswitch", "--revert"])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("AT+ZCDRUN=8"), "{out}");
    assert!(out.contains("AT+ZCDRUN=9"), "{out}");
    assert!(
        out.contains("Close autorun state result(0:FAIL 1:SUCCESS):1"),
        "{out}"
    );

    let d = FakeDaemon::start(Script::default().ok(
        "at",
        json!({"lines": ["Close autorun state result(0:FAIL 1:SUCCESS):1"], "result": "OK"}),
    ));
    let o = d.run(&["modeswitch", "--revert", "--send"], "");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("autorun is off"), "{}", stdout(&o));
    assert_eq!(
        d.requests(),
        [json!({"cmd": "at", "command": "AT+ZCDRUN=8"})]
    );
}

// ---------------------------------------------------------------- completions, help

#[test]
fn completions_for_bash_mention_atmate() {
    let o = atmate()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", stderr(&o));
    let script = stdout(&o);
    assert!(script.contains("atmate"), "{script}");
    assert!(script.contains("complete"), "{script}");
    assert!(script.contains("modeswitch"), "{script}");
}

#[test]
fn every_client_subcommand_help_has_examples() {
    for sub in [
        "send",
        "ussd",
        "at",
        "status",
        "inbox",
        "outbox",
        "reload",
        "logs",
        "console",
        "modeswitch",
        "completions",
    ] {
        let o = atmate().args([sub, "--help"]).output().expect("runs");
        assert!(o.status.success(), "{sub}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("Examples:"),
            "{sub} --help:\n{}",
            stdout(&o)
        );
    }
}
