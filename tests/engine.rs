//! The modem engine against the in-process simulator: lossless receive, multipart,
//! USSD in every encoding, sending, and a hostile wire.

use std::sync::Arc;
use std::time::Duration;

use atmate::event::Event;
use atmate::modem::persist::MemoryPersist;
use atmate::modem::{FnConnector, ModemConfig, ModemHandle, Opened};
use atmate::sim::{InjectSms, SimConfig, SimHandle, UssdDcs, UssdReplySpec};
use tokio::sync::broadcast;

use crate::common::{to_stick, wait_for};

/// A modem engine wired to an in-process simulator.
struct Rig {
    sim: SimHandle,
    modem: ModemHandle,
    persist: Arc<MemoryPersist>,
    events: broadcast::Receiver<Event>,
}

fn connector(sim: &SimHandle) -> Arc<FnConnector> {
    let sim = sim.clone();
    Arc::new(FnConnector::new("sim:if01", move || {
        let sim = sim.clone();
        async move {
            let port = sim
                .open_port(1)
                .map_err(|e| atmate::modem::ModemError::Open {
                    device: "sim:if01".into(),
                    reason: e.to_string(),
                })?;
            Ok(Opened {
                port: Box::new(port),
                device: "sim:if01".into(),
            })
        }
    }))
}

async fn rig_with(sim_cfg: SimConfig, cfg: ModemConfig) -> Rig {
    rig_with_persist(sim_cfg, cfg, Arc::new(MemoryPersist::new())).await
}

async fn rig_with_persist(
    sim_cfg: SimConfig,
    cfg: ModemConfig,
    persist: Arc<MemoryPersist>,
) -> Rig {
    let sim = SimHandle::spawn(sim_cfg);
    rig_on(sim, cfg, persist).await
}

async fn rig_on(sim: SimHandle, cfg: ModemConfig, persist: Arc<MemoryPersist>) -> Rig {
    let modem = ModemHandle::spawn(cfg, connector(&sim), persist.clone());
    let mut events = modem.events();
    wait_for(
        &mut events,
        |e| matches!(e, Event::Link(l) if l.state == atmate::event::LinkState::Up),
    )
    .await;
    Rig {
        sim,
        modem,
        persist,
        events,
    }
}

async fn rig() -> Rig {
    rig_with(SimConfig::default(), ModemConfig::new("main")).await
}

async fn sms_events(
    rx: &mut broadcast::Receiver<Event>,
    n: usize,
) -> Vec<atmate::event::SmsReceived> {
    let mut out = Vec::new();
    while out.len() < n {
        if let Event::Sms(s) = wait_for(rx, |e| matches!(e, Event::Sms(_))).await {
            out.push(s);
        }
    }
    out
}

fn sms(from: &str, text: &str) -> InjectSms {
    InjectSms::new(from, text)
}

/// The DELIVER PDUs (hex, SMSC included) the network would send for a long text.
fn deliver_parts(from: &str, text: &str) -> Vec<String> {
    let ts = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+01:00").unwrap();
    let opts = atmate::sms::DeliverOptions {
        reference: 77,
        ..Default::default()
    };
    atmate::sms::deliver_parts(from, text, ts, &opts)
        .unwrap()
        .into_iter()
        .map(|d| atmate::sms::Pdu::Deliver(d).encode().unwrap().hex)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn it_receives_an_sms_archives_then_deletes() {
    let mut r = rig().await;
    r.sim
        .inject_sms(sms("+4917612345678", "ping"))
        .await
        .unwrap();
    let got = sms_events(&mut r.events, 1).await;
    assert_eq!(got[0].from, "+4917612345678");
    assert_eq!(got[0].text, "ping");
    assert_eq!(r.persist.messages().len(), 1);
    let status = r.sim.status().await;
    let used: u64 = status["stores"]["SM"]["used"].as_u64().unwrap_or(0);
    assert_eq!(used, 0, "message must be deleted from the SIM: {status}");
}

#[tokio::test(start_paused = true)]
async fn it_drains_200_sms_through_20_slots_exactly_once() {
    let mut r = rig().await;
    let sim = r.sim.clone();
    let injector = tokio::spawn(async move {
        for i in 0..200 {
            sim.inject_sms(sms("+4917600000001", &format!("msg {i}")))
                .await
                .unwrap();
        }
    });
    let got = sms_events(&mut r.events, 200).await;
    injector.await.unwrap();
    let mut texts: Vec<String> = got.iter().map(|s| s.text.clone()).collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), 200, "every message exactly once");
    assert_eq!(r.persist.messages().len(), 200);
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(r.persist.messages().len(), 200);
    let status = r.sim.status().await;
    assert_eq!(
        status["stores"]["SM"]["used"].as_u64().unwrap_or(0),
        0,
        "{status}"
    );
}

#[tokio::test(start_paused = true)]
async fn it_reassembles_multipart_out_of_order_with_a_duplicate_and_a_restart() {
    let persist = Arc::new(MemoryPersist::new());
    let sim = SimHandle::spawn(SimConfig::default());
    let text: String = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(6);
    // Parts 3 and 1 first (out of order, part 1 twice), then the daemon "restarts".
    let parts = deliver_parts("+4917612345678", &text);
    assert!(parts.len() >= 3);
    {
        let r = rig_on(sim.clone(), ModemConfig::new("main"), persist.clone()).await;
        r.sim.inject_pdu(&parts[2]).await.unwrap();
        r.sim.inject_pdu(&parts[0]).await.unwrap();
        r.sim.inject_pdu(&parts[0]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(r.persist.messages().is_empty(), "not complete yet");
        drop(r);
    }
    // Part 2 arrives while no engine runs; the next start sweeps it up.
    sim.inject_pdu(&parts[1]).await.unwrap();
    for p in &parts[3..] {
        sim.inject_pdu(p).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    // The start-up sweep finds part 2 before `link: up` is announced.
    let _r = rig_on(sim, ModemConfig::new("main"), persist.clone()).await;
    let got = persist.messages();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text, text);
    assert_eq!(got[0].parts, 3);
    assert!(!got[0].incomplete);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(persist.messages().len(), 1, "exactly one message");
}

#[tokio::test(start_paused = true)]
async fn it_decodes_every_ussd_encoding_the_same() {
    let r = rig().await;
    for dcs in [
        UssdDcs::Plain,
        UssdDcs::Ucs2,
        UssdDcs::EightBit,
        UssdDcs::Packed,
    ] {
        r.sim
            .set_ussd(
                "*100#",
                UssdReplySpec::text("Balance: 10.00 EUR").with_dcs(dcs),
            )
            .await;
        let reply = r.modem.ussd("*100#").await.unwrap();
        assert_eq!(reply.text, "Balance: 10.00 EUR", "encoding {dcs:?}");
        assert_eq!(reply.status, 0);
    }
}

#[tokio::test(start_paused = true)]
async fn it_walks_a_two_step_ussd_menu() {
    let r = rig().await;
    let first = r.modem.ussd("*101#").await.unwrap();
    assert_eq!(first.status, 1, "menu asks for input: {first:?}");
    let second = r.modem.ussd_reply("1").await.unwrap();
    assert_eq!(second.status, 0, "{second:?}");
    assert!(!second.text.is_empty());
}

#[tokio::test(start_paused = true)]
async fn it_times_out_a_silent_ussd_and_cancels_it() {
    let mut cfg = ModemConfig::new("main");
    cfg.ussd_timeout = Duration::from_secs(30);
    let r = rig_with(SimConfig::default(), cfg).await;
    r.sim.set_ussd("*999#", UssdReplySpec::never()).await;
    let err = r.modem.ussd("*999#").await.unwrap_err();
    assert!(err.to_string().contains("no answer"), "{err}");
    let log = to_stick(&r.sim).await;
    assert!(log.contains("AT+CUSD=2"), "cancel must be on the wire");
    // The engine is still usable.
    assert_eq!(r.modem.ussd("*100#").await.unwrap().status, 0);
}

#[tokio::test(start_paused = true)]
async fn it_sends_long_and_emoji_messages_as_the_right_parts() {
    let r = rig().await;
    let euro: String = "Preis 5€ [ok] ".repeat(29)[..400].to_owned();
    let res = r.modem.send_sms("+4917612345678", &euro).await.unwrap();
    // 400 characters with a € each 14: more than 153·2 septets → 3 parts.
    assert_eq!(res.parts, 3);
    let emoji = "Hallo 👋 wie geht's? 🎉".repeat(5);
    let res2 = r.modem.send_sms("+4917612345678", &emoji).await.unwrap();
    assert_eq!(res2.parts, 2);
    let sent = r.sim.sent_messages().await;
    let texts: Vec<&str> = sent.iter().map(|s| s.text.as_str()).collect();
    assert!(texts.contains(&euro.as_str()), "{texts:?}");
    assert!(texts.contains(&emoji.as_str()), "{texts:?}");
}

#[tokio::test(start_paused = true)]
async fn it_survives_garbage_half_lines_and_awkward_urcs() {
    let mut r = rig().await;
    r.sim
        .inject_garbage(b"\xff\x00garbage\r\n+CMTI: \"SM\"")
        .await;
    r.sim.inject_garbage(b"half a li").await;
    for i in 0..10 {
        let moment = [
            atmate::sim::UrcMoment::AfterEcho,
            atmate::sim::UrcMoment::BeforePrompt,
            atmate::sim::UrcMoment::BeforeFinal,
        ][i % 3];
        r.sim.urc_at(moment, "+ZUSIMR:2", None).await;
        r.sim
            .urc_at(atmate::sim::UrcMoment::BeforeFinal, "+CREG: 1", None)
            .await;
        r.sim
            .inject_sms(sms("+4917600000002", &format!("n{i}")))
            .await
            .unwrap();
        let s = r.modem.signal().await.unwrap();
        assert!(s.dbm.is_some());
    }
    let got = sms_events(&mut r.events, 10).await;
    assert_eq!(got.len(), 10);
    // The queue is not stuck.
    let at = r.modem.at("AT+CGMM").await.unwrap();
    assert_eq!(at.lines, vec!["MF667".to_owned()]);
}

// Real time: the store stamps fragments with the wall clock, which paused tokio time
// does not move.
#[tokio::test]
async fn it_delivers_a_multipart_with_a_missing_part_after_the_timeout_marked_incomplete() {
    let mut cfg = ModemConfig::new("main");
    cfg.multipart_timeout = Duration::from_secs(1);
    let mut r = rig_with(SimConfig::default(), cfg).await;
    let text = "Part of this long message never arrives. ".repeat(8);
    let parts = deliver_parts("+4917612345678", &text);
    assert!(parts.len() >= 3);
    r.sim.inject_pdu(&parts[0]).await.unwrap();
    r.sim.inject_pdu(&parts[2]).await.unwrap();
    let got = sms_events(&mut r.events, 1).await;
    assert!(got[0].incomplete, "{got:?}");
    assert_eq!(got[0].parts as usize, parts.len());
    assert!(got[0].text.starts_with("Part of this long message"));
    // Delivered once, not again on the next expiry checks.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(r.persist.messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_sms_reaches_the_rules_even_when_its_delete_times_out() {
    let mut r = rig().await;
    // The delete answers after the 10 s command timeout.
    r.sim
        .slow_answers(Some("AT+CMGD"), Duration::from_secs(11), Some(1))
        .await;
    r.sim
        .inject_sms(sms("+4917612345678", "slow delete"))
        .await
        .unwrap();
    let got = sms_events(&mut r.events, 1).await;
    assert_eq!(got[0].text, "slow delete");
    assert_eq!(r.persist.messages().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_late_answer_after_a_timeout_does_not_answer_the_next_command() {
    let r = rig().await;
    r.sim
        .slow_answers(Some("AT+CGMM"), Duration::from_secs(15), Some(1))
        .await;
    let e = r.modem.at("AT+CGMM").await.unwrap_err();
    assert!(e.to_string().contains("no answer"), "{e}");
    let cgmi = r.modem.at("AT+CGMI").await.unwrap();
    assert_eq!(cgmi.lines, vec!["ZTE CORPORATION".to_owned()]);
    let cgsn = r.modem.at("AT+CGSN").await.unwrap();
    assert_eq!(cgsn.lines.len(), 1, "{cgsn:?}");
}

/// `tcp://host:port` (ser2net and the like): the simulator's port behind a loopback
/// TCP socket.
#[tokio::test]
async fn it_talks_to_a_modem_over_tcp() {
    let sim = SimHandle::spawn(SimConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bridge_sim = sim.clone();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut port = bridge_sim.open_port(1).unwrap();
        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut port).await;
    });
    let modem = ModemHandle::spawn(
        ModemConfig::new("tcp"),
        Arc::new(atmate::modem::TcpConnector {
            addr: addr.to_string(),
        }),
        Arc::new(MemoryPersist::new()),
    );
    let mut events = modem.events();
    wait_for(
        &mut events,
        |e| matches!(e, Event::Link(l) if l.state == atmate::event::LinkState::Up),
    )
    .await;
    assert_eq!(
        modem.status().device.as_deref(),
        Some(format!("tcp://{addr}").as_str())
    );
    assert_eq!(
        modem.at("AT+CGMM").await.unwrap().lines,
        vec!["MF667".to_owned()]
    );
    sim.inject_sms(sms("+4917612345678", "over tcp"))
        .await
        .unwrap();
    let got = sms_events(&mut events, 1).await;
    assert_eq!(got[0].text, "over tcp");
}
