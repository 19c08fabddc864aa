//! The whole daemon on the in-process simulator: rules, scripts, schedules, reload,
//! safety. Each test reads like the feature it covers.

use std::time::Duration;

use crate::common::{builder, wait_for, ALLOWED};
use atmate::event::Event;

const PING: &str = r#"
- name: ping
  when: { sms: { from: "+4917612345678", text: "(?i)^ping$" } }
  do:
    - sms: { to: "{{ sms.from }}", text: "pong, signal {{ modem.signal.dbm }} dBm" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_answers_ping_from_an_allowed_number_only() {
    let d = builder()
        .rules(&PING.replace(
            "\"+4917612345678\"",
            "[\"+4917612345678\", \"+4915100000000\"]",
        ))
        .start()
        .await;
    d.inject_sms(ALLOWED, "ping").await;
    let text = d.expect_sent_sms(ALLOWED, |t| t.starts_with("pong")).await;
    assert!(text.contains("dBm") && text.contains('-'), "{text}");
    // Listed in the rule but not in the allowlist: the allowlist wins.
    d.inject_sms("+4915100000000", "ping").await;
    d.expect_no_sms_to("+4915100000000", Duration::from_secs(3))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_runs_a_daily_balance_rule_at_eight() {
    // The schedules' clock starts at 07:59:58 UTC (the test config's time zone): the
    // daily 08:00 job must fire about two seconds later, and only once.
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T07:59:58Z")
        .unwrap()
        .to_utc();
    let d = builder()
        .clock_at(start)
        .rules(&format!(
            r#"
- name: balance-every-morning
  when: {{ schedule: "0 8 * * *" }}
  do:
    - ussd: "*100#"
      save_as: balance
    - sms: {{ to: "{ALLOWED}", text: "Balance: {{{{ balance.text }}}}" }}
"#
        ))
        .start()
        .await;
    let text = d
        .expect_sent_sms(ALLOWED, |t| t.starts_with("Balance: "))
        .await;
    assert!(
        text.contains("10.00 EUR"),
        "decoded balance expected: {text}"
    );
    assert!(d.wire_to_stick().await.contains("AT+CUSD=1,\"*100#\",15"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(d.sent().await.len(), 1, "the job fires once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_reconnects_on_network_loss_with_the_rule() {
    let d = builder()
        .modem_extra("    recovery:\n      enabled: false\n")
        .rules(
            r#"
- name: back-online
  when: { network: lost }
  do:
    - wait: 1s
    - at: "AT+ZOPRT=5"
"#,
        )
        .start()
        .await;
    let mut ev = d.rt.events();
    d.sim.network_lost().await;
    wait_for(
        &mut ev,
        |e| matches!(e, Event::Network(n) if n.state == atmate::event::NetworkState::Lost),
    )
    .await;
    for _ in 0..100 {
        if d.wire_to_stick().await.contains("AT+ZOPRT=5") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("AT+ZOPRT=5 never reached the wire");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_calls_a_script_on_sms_hook() {
    let d = builder()
        .script(
            "hello.rhai",
            r#"
fn on_sms(sms) {
    if sms.text == "hello" {
        send_sms(sms.from, "hi from a script");
    }
}
"#,
        )
        .start()
        .await;
    d.inject_sms(ALLOWED, "hello").await;
    d.expect_sent_sms(ALLOWED, |t| t == "hi from a script")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_reloads_rules_good_broken_good() {
    let d = builder().rules(PING).start().await;
    d.write_rules(&PING.replace("pong", "PONG2"));
    let summary = d.assert_reloaded().await;
    assert!(summary.contains("changed ping"), "{summary}");
    d.inject_sms(ALLOWED, "ping").await;
    d.expect_sent_sms(ALLOWED, |t| t.starts_with("PONG2")).await;
    // Broken: reported with its line, the previous version keeps working.
    d.write_rules("- name: ping\n  when: { smss: {} }\n  do: []\n");
    let diag = d.assert_not_reloaded("rules.yaml:2").await;
    assert!(diag.contains("smss"), "{diag}");
    // (Another text: the same text in the same second is a network duplicate.)
    d.inject_sms(ALLOWED, "Ping").await;
    let mut pongs = 0;
    for _ in 0..200 {
        pongs = d
            .sent()
            .await
            .iter()
            .filter(|s| s.text.starts_with("PONG2"))
            .count();
        if pongs == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(pongs, 2, "the previous rules keep running");
    d.write_rules(&PING.replace("pong", "PONG3"));
    d.assert_reloaded().await;
    d.inject_sms(ALLOWED, "PING").await;
    d.expect_sent_sms(ALLOWED, |t| t.starts_with("PONG3")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_reloads_a_script_good_broken_good() {
    let good = |reply: &str| {
        format!(
            "fn on_sms(sms) {{ if sms.text == \"s\" {{ send_sms(sms.from, \"{reply}\"); }} }}\n"
        )
    };
    let d = builder().script("a.rhai", &good("one")).start().await;
    d.inject_sms(ALLOWED, "s").await;
    d.expect_sent_sms(ALLOWED, |t| t == "one").await;
    d.write_script("a.rhai", "fn on_sms(sms) {\n  let x = ;\n}\n");
    d.assert_not_reloaded("a.rhai:2").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.inject_sms(ALLOWED, "s").await;
    let mut ones = 0;
    for _ in 0..200 {
        ones = d.sent().await.iter().filter(|s| s.text == "one").count();
        if ones == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ones, 2, "the previous script keeps running");
    d.write_script("a.rhai", &good("two"));
    d.assert_reloaded().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    d.inject_sms(ALLOWED, "s").await;
    d.expect_sent_sms(ALLOWED, |t| t == "two").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_stops_an_endless_script_and_handles_the_next_sms() {
    let d = builder()
        .top_extra("limits:\n  script_wall_clock: 1s\n")
        .script(
            "loop.rhai",
            r#"
fn on_sms(sms) {
    if sms.text == "loop" { loop { } }
    send_sms(sms.from, "still alive");
}
"#,
        )
        .start()
        .await;
    d.inject_sms(ALLOWED, "loop").await;
    d.inject_sms(ALLOWED, "next").await;
    d.expect_sent_sms(ALLOWED, |t| t == "still alive").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_stops_an_auto_reply_loop_with_the_send_budget() {
    // Every SMS from the allowed number is answered; the "other robot" (the simulator
    // below) answers every SMS it gets. Without budgets this never ends.
    let d = builder()
        .top_extra("limits:\n  sms_per_recipient_per_hour: 5\n")
        .rules(
            r#"
- name: echo
  when: { sms: { from: "+4917612345678" } }
  do:
    - sms: { to: "{{ sms.from }}", text: "re: {{ sms.text }}" }
"#,
        )
        .start()
        .await;
    let mut ev = d.rt.events();
    let sim = d.sim.clone();
    let robot = tokio::spawn(async move {
        let mut seen = 0;
        loop {
            let sent = sim.sent_messages().await;
            for s in &sent[seen..] {
                sim.inject_sms(atmate::sim::InjectSms::new(s.to.clone(), s.text.clone()))
                    .await
                    .ok();
            }
            seen = sent.len();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    d.inject_sms(ALLOWED, "hi").await;
    wait_for(&mut ev, |e| matches!(e, Event::SendLimit(_))).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    robot.abort();
    assert_eq!(d.sent().await.len(), 5, "the budget stops the loop at 5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_passes_the_event_to_a_run_program() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("event.txt");
    let d = builder()
        .rules(&format!(
            r#"
- name: log-to-file
  when: {{ sms: {{ from: "+4917612345678", text: "^run" }} }}
  do:
    - run:
        program: /bin/sh
        args: ["-c", "printf '%s|%s|%s' \"$ATMATE_SMS_FROM\" \"$ATMATE_SMS_TEXT\" \"$ATMATE_RULE\" > '{}'"]
"#,
            file.display()
        ))
        .start()
        .await;
    d.inject_sms(ALLOWED, "run it").await;
    for _ in 0..100 {
        // The shell creates the file before printf fills it: wait for content.
        if let Ok(text) = std::fs::read_to_string(&file) {
            if !text.is_empty() {
                assert_eq!(text, format!("{ALLOWED}|run it|log-to-file"));
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the program never ran");
}

#[test]
fn every_shipped_config_rule_and_script_passes_check() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("config/atmate.yaml");
    assert!(cfg.exists(), "config/atmate.yaml is shipped");
    let scripts: Vec<_> = std::fs::read_dir(root.join("scripts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "rhai"))
        .collect();
    assert!(!scripts.is_empty(), "scripts/ ships at least one script");
    let (code, report) = atmate::runtime::check(Some(&cfg));
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("ok"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_picks_up_a_saved_rule_file_by_itself() {
    // No manual reload: the directory watcher sees the editor's save (temp file +
    // rename) and swaps the rules.
    let d = builder().rules(PING).start().await;
    d.write_rules(&PING.replace("pong", "WATCHED"));
    // (Texts alternate: the same text in the same second is a network duplicate.)
    for text in ["ping", "PING", "Ping", "pInG"].iter().cycle().take(40) {
        d.inject_sms(ALLOWED, text).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if d.sent().await.iter().any(|s| s.text.starts_with("WATCHED")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    panic!("the saved rule never went live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_turns_automatic_recovery_off() {
    let d = builder()
        .rules("- name: manual-recovery\n  when: startup\n  do:\n    - recovery: off\n")
        .start()
        .await;
    let modem = d.rt.modem("main").unwrap();
    for _ in 0..100 {
        if !modem.status().recovery_enabled {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("recovery is still on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_schedules_its_own_job() {
    let start = chrono::DateTime::parse_from_rfc3339("2026-11-24T06:59:58Z")
        .unwrap()
        .to_utc();
    let d = builder()
        .clock_at(start)
        .script(
            "report.rhai",
            r#"
fn report() {
    let r = ussd("*100#");
    send_sms("+4917612345678", `daily: ${r.text}`);
}
schedule("0 7 * * *", "report");
"#,
        )
        .start()
        .await;
    let text = d
        .expect_sent_sms(ALLOWED, |t| t.starts_with("daily: "))
        .await;
    assert!(text.contains("EUR"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_modem_section_reopens_that_modem_only_on_reload() {
    let d = builder().rules(PING).start().await;
    let before = d.rt.modem("main").unwrap();
    // A rules-only change keeps the modem.
    d.write_rules(&PING.replace("pong", "PONG9"));
    let summary = d.assert_reloaded().await;
    assert!(!summary.contains("modem main"), "{summary}");
    assert_eq!(d.rt.modem("main").unwrap().status().link, "up");
    // A change to the modem's own section reopens it.
    let cfg = std::fs::read_to_string(d.path("atmate.yaml")).unwrap();
    crate::common::write_atomically(
        &d.path("atmate.yaml"),
        &cfg.replace("probe_interval: 30s", "probe_interval: 45s"),
    );
    let summary = d.assert_reloaded().await;
    assert!(summary.contains("modem main stopped"), "{summary}");
    assert!(summary.contains("modem main started"), "{summary}");
    // The old handle is shut down; the new one works.
    assert!(before.at("AT").await.is_err());
    let mut ok = false;
    for _ in 0..100 {
        if let Some(m) = d.rt.modem("main") {
            if m.at("AT+CGMM").await.is_ok() {
                ok = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the reopened modem answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_modems_in_one_daemon_each_with_its_own_actor_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("rules")).unwrap();
    std::fs::write(
        root.join("rules/r.yaml"),
        r#"
- name: pong-second
  modem: second
  when: { sms: { from: "+4917612345678", text: "^ping$" } }
  do:
    - sms: { to: "{{ sms.from }}", text: "pong from {{ sms.modem }}" }
"#,
    )
    .unwrap();
    std::fs::write(
        root.join("atmate.yaml"),
        "modems:\n  - name: first\n    default: true\n    device: sim\n    sim: { demo: false }\n  - name: second\n    device: sim\n    sim: { demo: false }\nstore: atmate.db\nrules: rules\ntimezone: UTC\nallow_senders: [\"+4917612345678\"]\ncontrol_socket: control.sock\n",
    )
    .unwrap();
    let loaded = atmate::runtime::load::load_from(&root.join("atmate.yaml"))
        .unwrap_or_else(|d| panic!("{}", d.render()));
    let rt = atmate::runtime::Runtime::start(loaded).await.unwrap();
    let (first, second) = (rt.sim("first").unwrap(), rt.sim("second").unwrap());
    for name in ["first", "second"] {
        let m = rt.modem(name).unwrap();
        for _ in 0..100 {
            if m.status().link == "up" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(m.status().link, "up", "{name}");
    }
    // The rule is for `second`: an SMS on `first` is archived but not answered.
    first
        .inject_sms(atmate::sim::InjectSms::new(ALLOWED, "ping"))
        .await
        .unwrap();
    second
        .inject_sms(atmate::sim::InjectSms::new(ALLOWED, "ping"))
        .await
        .unwrap();
    let mut answered = false;
    for _ in 0..100 {
        if second
            .sent_messages()
            .await
            .iter()
            .any(|s| s.text == "pong from second")
        {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered,
        "the second modem's rule answered on the second modem"
    );
    assert!(
        first.sent_messages().await.is_empty(),
        "nothing was sent on the first"
    );
    let inbox = rt
        .store()
        .inbox(&atmate::store::InboxQuery::newest(10))
        .unwrap();
    let mut modems: Vec<&str> = inbox.iter().map(|m| m.modem.as_str()).collect();
    modems.sort();
    assert_eq!(modems, ["first", "second"]);
}
