//! Surviving the real stick: USB drops and re-enumeration (on real PTYs, found again by
//! sysfs or a by-id link), the if02 quirk, ports that vanish or read EOF for ever,
//! network loss and automatic recovery, PIN / SIM busy / wrong PIN / no SIM, and a full
//! SIM at start (in-process, paused time).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atmate::event::{Event, LinkKind, LinkState, NetworkState};
use atmate::modem::discover::Discovery;
use atmate::modem::persist::MemoryPersist;
use atmate::modem::{
    FnConnector, ModemConfig, ModemError, ModemHandle, Opened, Secret, SerialConnector, SerialPath,
};
use atmate::sim::wire::Direction;
use atmate::sim::{serve_pty, InjectSms, SimConfig, SimHandle};
use tokio::sync::broadcast;

// ----- helpers ---------------------------------------------------------------------

/// Wait for an event. `limit` only guards against a hang: in paused-time tests it is
/// virtual time, so it must cover the slowest backoff the test goes through.
async fn wait_for(
    rx: &mut broadcast::Receiver<Event>,
    limit: Duration,
    pred: impl Fn(&Event) -> bool,
) -> Event {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    };
    tokio::time::timeout(limit, fut)
        .await
        .expect("the expected event did not come")
}

/// Every event that is already waiting.
fn drain(rx: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut v = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => v.push(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return v,
        }
    }
}

fn is_link(e: &Event, state: LinkState) -> bool {
    matches!(e, Event::Link(l) if l.state == state && l.via == LinkKind::Serial)
}

const HOURS: Duration = Duration::from_secs(6 * 3600);

/// The in-process stick's port `iface` as a connector that counts its attempts.
fn sim_connector(sim: &SimHandle, iface: u8, attempts: Arc<AtomicUsize>) -> Arc<FnConnector> {
    let sim = sim.clone();
    Arc::new(FnConnector::new(format!("sim:if{iface:02}"), move || {
        let sim = sim.clone();
        attempts.fetch_add(1, Ordering::SeqCst);
        async move {
            let port = sim.open_port(iface).map_err(|e| ModemError::Open {
                device: format!("sim:if{iface:02}"),
                reason: e.to_string(),
            })?;
            Ok(Opened {
                port: Box::new(port),
                device: format!("sim:if{iface:02}"),
            })
        }
    }))
}

fn quick(name: &str) -> ModemConfig {
    let mut c = ModemConfig::new(name);
    c.reconnect_min = Duration::from_millis(250);
    c.reconnect_max = Duration::from_secs(4);
    c
}

struct Rig {
    sim: SimHandle,
    modem: ModemHandle,
    persist: Arc<MemoryPersist>,
    events: broadcast::Receiver<Event>,
    attempts: Arc<AtomicUsize>,
}

/// Engine + in-process stick; returns once the engine said `link: up`.
async fn rig(sim: SimHandle, cfg: ModemConfig) -> Rig {
    let rig = rig_no_wait(sim, cfg);
    let mut rig = rig;
    wait_for(&mut rig.events, HOURS, |e| is_link(e, LinkState::Up)).await;
    rig
}

fn rig_no_wait(sim: SimHandle, cfg: ModemConfig) -> Rig {
    let attempts = Arc::new(AtomicUsize::new(0));
    let persist = Arc::new(MemoryPersist::new());
    let modem = ModemHandle::spawn(
        cfg,
        sim_connector(&sim, 1, attempts.clone()),
        persist.clone(),
    );
    let events = modem.events();
    Rig {
        sim,
        modem,
        persist,
        events,
        attempts,
    }
}

/// Text of one direction of the wire.
async fn wire(sim: &SimHandle, dir: Direction) -> String {
    let bytes: Vec<u8> = sim
        .wire_log()
        .await
        .into_iter()
        .filter(|e| e.dir == dir)
        .flat_map(|e| e.bytes)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Log lines of `atmate::modem` at every level, captured for the current thread (the
/// paused-time tests run on one thread, so the actor's logs land here).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let w = logs.clone();
        let sub = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("atmate::modem=trace"))
            .with_writer(move || w.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        let guard = tracing::subscriber::set_default(sub);
        // Call sites cached as uninteresting by tests without a subscriber.
        tracing::callsite::rebuild_interest_cache();
        (logs, guard)
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }
}

// ----- the USB link on real PTYs ---------------------------------------------------

/// The stick drops off USB while SMS keep arriving and comes back as ttyUSB3..5;
/// `auto` finds if01 again in the (simulated) sysfs. `link` events come in order, the
/// downtime is reported, and every SMS is archived exactly once — including those
/// that arrived while it was gone and half a URC line that was cut off by the drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_finds_the_stick_again_under_a_new_name_while_sms_keep_arriving() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir().unwrap();
    let pty = serve_pty(dir.path(), SimConfig::default()).await.unwrap();
    let sim = pty.handle().clone();
    let discovery = Discovery {
        interfaces: vec![1],
        sysfs_root: pty.sysfs(),
        dev_root: pty.dir().to_path_buf(),
        ..Discovery::default()
    };
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(400);
    let persist = Arc::new(MemoryPersist::new());
    let modem = ModemHandle::spawn(
        cfg,
        Arc::new(SerialConnector {
            path: SerialPath::Auto(discovery),
            baud: 115_200,
        }),
        persist.clone(),
    );
    let mut events = modem.events();
    let limit = Duration::from_secs(60);
    let Event::Link(up) = wait_for(&mut events, limit, |e| is_link(e, LinkState::Up)).await else {
        unreachable!()
    };
    let first = pty.tty(1).unwrap();
    assert_eq!(up.device.as_deref(), Some(first.to_str().unwrap()));
    assert!(first.ends_with("ttyUSB1"), "{first:?}");

    let total = 24;
    for i in 0..total {
        if i == 10 {
            // Half a URC on the wire, then the drop: the next connection must not
            // start with it glued to its first answer.
            sim.inject_raw(1, b"\r\n+CMTI: \"SM\",1").await;
            sim.unplug(Some(Duration::from_millis(600))).await;
        }
        sim.inject_sms(InjectSms::new("+4917600000001", format!("msg {i}")))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    // Every message exactly once, and the link events in order.
    let mut seen = std::collections::BTreeSet::new();
    let mut links = Vec::new();
    while seen.len() < total || links.len() < 2 {
        match wait_for(&mut events, limit, |e| {
            matches!(e, Event::Sms(_) | Event::Link(_))
        })
        .await
        {
            Event::Sms(s) => assert!(seen.insert(s.text.clone()), "{} delivered twice", s.text),
            Event::Link(l) => links.push(l),
            _ => unreachable!(),
        }
    }
    let states: Vec<LinkState> = links.iter().map(|l| l.state).collect();
    assert_eq!(states, [LinkState::Down, LinkState::Up], "{links:?}");
    assert!(links[0].reason.is_some());
    let again = pty.tty(1).unwrap();
    assert!(
        again.ends_with("ttyUSB4"),
        "re-enumerated as the next numbers: {again:?}"
    );
    assert_eq!(links[1].device.as_deref(), Some(again.to_str().unwrap()));
    assert!(links[1].downtime_ms.is_some(), "{:?}", links[1]);
    assert_eq!(persist.messages().len(), total);
    assert_eq!(modem.status().link, "up");
    assert!(drain(&mut events)
        .iter()
        .all(|e| !matches!(e, Event::Link(_))));
    pty.shutdown().await;
}

/// MF667.md §5.1 on the data port: configured (by its stable by-id link) on if02, a
/// USSD makes the stick vanish. The caller gets a clear "disconnected" error at once,
/// not a USSD timeout; the by-id link is followed to the new ttyUSB and the engine
/// works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_if02_quirk_drops_the_stick_mid_ussd_and_the_caller_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pty = serve_pty(
        dir.path(),
        SimConfig {
            replug_delay: Duration::from_millis(500),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    let by_id = pty.by_id(2);
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(50);
    cfg.reconnect_max = Duration::from_millis(400);
    // Long enough that a hang would show as a timeout error instead.
    cfg.ussd_timeout = Duration::from_secs(600);
    let modem = ModemHandle::spawn(
        cfg,
        Arc::new(SerialConnector {
            path: SerialPath::Path(by_id.clone()),
            baud: 115_200,
        }),
        Arc::new(MemoryPersist::new()),
    );
    let mut events = modem.events();
    let limit = Duration::from_secs(60);
    wait_for(&mut events, limit, |e| is_link(e, LinkState::Up)).await;
    let before = std::fs::read_link(&by_id).unwrap();

    let err = modem.ussd("*100#").await.unwrap_err();
    assert!(matches!(err, ModemError::Disconnected { .. }), "{err:?}");
    assert!(err.to_string().contains("disconnected"), "{err}");

    wait_for(&mut events, limit, |e| is_link(e, LinkState::Down)).await;
    let Event::Link(up) = wait_for(&mut events, limit, |e| is_link(e, LinkState::Up)).await else {
        unreachable!()
    };
    assert_eq!(up.device.as_deref(), Some(by_id.to_str().unwrap()));
    let after = std::fs::read_link(&by_id).unwrap();
    assert_ne!(before, after, "the by-id link now leads to the new port");
    assert!(pty.tty(2).unwrap().ends_with("ttyUSB5"));
    let r = modem.at("AT+CGMM").await.unwrap();
    assert_eq!(r.lines, ["MF667"]);
    let status = pty.handle().status().await;
    assert_eq!(status["counters"]["if02_quirk_drops"], 1, "{status}");
    pty.shutdown().await;
}

// ----- the USB link in-process (paused time) ---------------------------------------

/// While the device is missing the engine keeps trying with capped exponential
/// backoff — no spin — says why in `status`, refuses requests with that reason, logs
/// the cause once (repeats only at debug, one per attempt) and announces `link: down`
/// once. When the device appears it comes up with the downtime.
#[tokio::test(start_paused = true)]
async fn a_missing_device_costs_one_warning_and_no_spin() {
    let (logs, _guard) = Logs::capture();
    let sim = SimHandle::spawn(SimConfig::default());
    let present = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicUsize::new(0));
    let inner = sim_connector(&sim, 1, Arc::new(AtomicUsize::new(0)));
    let connector = {
        let (present, attempts) = (present.clone(), attempts.clone());
        Arc::new(FnConnector::new("/dev/ttyUSB1", move || {
            attempts.fetch_add(1, Ordering::SeqCst);
            let (present, inner) = (present.load(Ordering::SeqCst), inner.clone());
            async move {
                if !present {
                    return Err(ModemError::Open {
                        device: "/dev/ttyUSB1".into(),
                        reason: "No such file or directory: the device is not there".into(),
                    });
                }
                atmate::modem::Connector::connect(&*inner).await
            }
        }))
    };
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(250);
    cfg.reconnect_max = Duration::from_secs(8);
    let modem = ModemHandle::spawn(cfg, connector, Arc::new(MemoryPersist::new()));
    let mut events = modem.events();
    tokio::time::sleep(Duration::from_secs(120)).await;

    // 0, .25, .75, 1.75, 3.75, 7.75, 15.75, then every 8 s: 20 attempts in 120 s.
    let n = attempts.load(Ordering::SeqCst);
    assert!((15..=22).contains(&n), "attempts in 120 s: {n}");
    let st = modem.status();
    assert_eq!(st.link, "down");
    assert!(
        st.link_error.as_deref().unwrap_or("").contains("not there"),
        "{st:?}"
    );
    let err = modem.at("AT").await.unwrap_err();
    assert!(matches!(err, ModemError::Disconnected { .. }), "{err:?}");
    assert!(
        err.to_string().contains("disconnected") && err.to_string().contains("not there"),
        "{err}"
    );

    assert_eq!(logs.count("modem not available"), 1, "{}", logs.text());
    assert_eq!(
        logs.count("modem still not available"),
        n - 1,
        "{}",
        logs.text()
    );
    // Nothing else is logged per attempt.
    assert!(logs.text().lines().count() <= n + 3, "{}", logs.text());
    let downs: Vec<Event> = drain(&mut events);
    assert_eq!(
        downs.len(),
        1,
        "one link: down for the whole outage: {downs:?}"
    );
    assert!(is_link(&downs[0], LinkState::Down));

    present.store(true, Ordering::SeqCst);
    let Event::Link(up) = wait_for(&mut events, HOURS, |e| is_link(e, LinkState::Up)).await else {
        unreachable!()
    };
    assert!(up.downtime_ms.unwrap() >= 120_000, "{up:?}");
    assert_eq!(modem.status().link, "up");
    assert!(modem.status().link_error.is_none());
}

/// tokio-serial reads `Ok(0)` for ever after an unplug. A port that does that from the
/// start (and fails every write) must not spin: one attempt per backoff step, one
/// `link: down`, never `up`.
#[tokio::test(start_paused = true)]
async fn a_port_that_reads_eof_at_once_does_not_spin() {
    let attempts = Arc::new(AtomicUsize::new(0));
    let connector = {
        let attempts = attempts.clone();
        Arc::new(FnConnector::new("dead", move || {
            attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                let (port, peer) = tokio::io::duplex(64);
                drop(peer);
                Ok(Opened {
                    port: Box::new(port),
                    device: "dead".into(),
                })
            }
        }))
    };
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(250);
    cfg.reconnect_max = Duration::from_secs(8);
    let modem = ModemHandle::spawn(cfg, connector, Arc::new(MemoryPersist::new()));
    let mut events = modem.events();
    tokio::time::sleep(Duration::from_secs(120)).await;
    let n = attempts.load(Ordering::SeqCst);
    assert!((15..=22).contains(&n), "attempts in 120 s: {n}");
    let links: Vec<Event> = drain(&mut events);
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(is_link(&links[0], LinkState::Down));
    assert_eq!(modem.status().link, "down");
}

/// A stick that drops off right after every init (a flaky hub) is not reopened in a
/// tight loop: short-lived connections make the engine wait longer each time, up to
/// `reconnect_max`. Once the stick behaves, the link stays up.
#[tokio::test(start_paused = true)]
async fn a_flapping_stick_is_not_reopened_in_a_tight_loop() {
    let sim = SimHandle::spawn(SimConfig::default());
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(250);
    cfg.reconnect_max = Duration::from_secs(30);
    let mut r = rig(sim, cfg).await;
    let flapper = {
        let (sim, mut rx) = (r.sim.clone(), r.modem.events());
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(Event::Link(l)) if l.state == LinkState::Up => {
                        sim.unplug(Some(Duration::ZERO)).await
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        })
    };
    r.sim.unplug(Some(Duration::ZERO)).await;
    tokio::time::sleep(Duration::from_secs(1800)).await;
    flapper.abort();
    let ups = drain(&mut r.events)
        .iter()
        .filter(|e| is_link(e, LinkState::Up))
        .count();
    // 0.25 + 0.5 + … + 16 s, then one every 30 s (plus init time): about 60 in 30 min.
    assert!(
        (40..=70).contains(&ups),
        "reopened {ups} times in 30 minutes"
    );
    // Let a drop that was already under way settle.
    tokio::time::sleep(Duration::from_secs(120)).await;
    r.modem.wait_until_up(HOURS).await.unwrap();
    drain(&mut r.events);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let after: Vec<Event> = drain(&mut r.events)
        .into_iter()
        .filter(|e| matches!(e, Event::Link(_)))
        .collect();
    assert!(after.is_empty(), "{after:?}");
    assert_eq!(r.modem.status().link, "up");
}

/// An unplug with messages on the SIM and more arriving while the stick is gone:
/// requests meanwhile fail at once with "disconnected" and the reason; after the
/// replug a fresh init runs, every store is swept, rules see `down` then `up` (with
/// the downtime) and every SMS is archived exactly once.
#[tokio::test(start_paused = true)]
async fn an_unplug_loses_no_sms_and_refuses_requests_clearly() {
    let mut r = rig(SimHandle::spawn(SimConfig::default()), quick("main")).await;
    for i in 0..3 {
        r.sim
            .inject_sms(InjectSms::new("+4917600000002", format!("before {i}")))
            .await
            .unwrap();
    }
    r.sim.unplug(None).await;
    let e = r.modem.signal().await.unwrap_err();
    assert!(matches!(e, ModemError::Disconnected { .. }), "{e:?}");
    assert!(e.to_string().contains("disconnected"), "{e}");
    wait_for(&mut r.events, HOURS, |e| is_link(e, LinkState::Down)).await;
    let st = r.modem.status();
    assert_eq!(st.link, "down");
    assert!(st.link_error.is_some());
    assert_eq!(st.network, NetworkState::Unknown);
    for i in 0..3 {
        r.sim
            .inject_sms(InjectSms::new("+4917600000002", format!("during {i}")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!r.modem.is_up());
    let e = r.modem.ussd("*100#").await.unwrap_err();
    assert!(matches!(e, ModemError::Disconnected { .. }), "{e:?}");
    r.sim.replug().await;
    r.modem.wait_until_up(HOURS).await.unwrap();

    let mut texts = std::collections::BTreeSet::new();
    let mut links = Vec::new();
    while texts.len() < 6 || links.is_empty() {
        match wait_for(&mut r.events, HOURS, |e| {
            matches!(e, Event::Sms(_) | Event::Link(_))
        })
        .await
        {
            Event::Sms(s) => assert!(texts.insert(s.text.clone()), "twice: {}", s.text),
            Event::Link(l) => links.push(l),
            _ => unreachable!(),
        }
    }
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0].state, LinkState::Up);
    assert!(links[0].downtime_ms.unwrap() >= 30_000, "{links:?}");
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(r.persist.messages().len(), 6);
    let later = drain(&mut r.events);
    assert!(
        later
            .iter()
            .all(|e| !matches!(e, Event::Link(_) | Event::Sms(_))),
        "{later:?}"
    );
    // A fresh init ran on the new connection (the stick forgot CNMI on re-enumeration).
    let to = wire(&r.sim, Direction::ToStick).await;
    assert_eq!(to.matches("AT+CNMI=3,1,0,2,0").count(), 2, "{to}");
    assert!(r.attempts.load(Ordering::SeqCst) >= 2);
}

/// The if02 quirk in-process, with requests queued behind the USSD: the USSD waiting
/// for its reply, the command in flight when the port closed and the one still queued
/// all fail with "disconnected" (none hangs, none times out); the stick comes back by
/// itself and the engine with it.
#[tokio::test(start_paused = true)]
async fn what_waits_behind_a_ussd_on_if02_fails_clearly() {
    let sim = SimHandle::spawn(SimConfig {
        replug_delay: Duration::from_secs(5),
        ..SimConfig::default()
    });
    let attempts = Arc::new(AtomicUsize::new(0));
    let mut cfg = quick("main");
    cfg.ussd_timeout = Duration::from_secs(3600);
    cfg.command_timeout = Duration::from_secs(3600);
    let modem = ModemHandle::spawn(
        cfg,
        sim_connector(&sim, 2, attempts),
        Arc::new(MemoryPersist::new()),
    );
    let mut events = modem.events();
    wait_for(&mut events, HOURS, |e| is_link(e, LinkState::Up)).await;
    let (m1, m2, m3) = (modem.clone(), modem.clone(), modem.clone());
    let ussd = tokio::spawn(async move { m1.ussd("*100#").await });
    tokio::task::yield_now().await;
    let signal = tokio::spawn(async move { m2.signal().await });
    tokio::task::yield_now().await;
    let at = tokio::spawn(async move { m3.at("AT+CGMM").await });
    for (what, r) in [
        ("ussd", ussd.await.unwrap().map(|_| ())),
        ("signal", signal.await.unwrap().map(|_| ())),
        ("at", at.await.unwrap().map(|_| ())),
    ] {
        let e = r.expect_err(what);
        assert!(
            matches!(e, ModemError::Disconnected { .. }),
            "{what}: {e:?}"
        );
    }
    wait_for(&mut events, HOURS, |e| is_link(e, LinkState::Down)).await;
    wait_for(&mut events, HOURS, |e| is_link(e, LinkState::Up)).await;
    assert_eq!(modem.at("AT+CGMM").await.unwrap().lines, ["MF667"]);
}

// ----- the network -----------------------------------------------------------------

/// The stick falls into low-power mode (the "red light", `+ZOPRT: 6`): `network: lost`,
/// then the automatic `AT+ZOPRT=5` on the wire (a `recovery` event), then the stick
/// registers again: `network: registered`.
#[tokio::test(start_paused = true)]
async fn network_loss_brings_the_automatic_zoprt_and_registration_returns() {
    let mut cfg = quick("main");
    cfg.recovery.backoff = Duration::from_secs(20);
    let mut r = rig(SimHandle::spawn(SimConfig::default()), cfg).await;
    r.modem.at("AT+ZOPRT=6").await.unwrap();
    let Event::Network(lost) =
        wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Network(_))).await
    else {
        unreachable!()
    };
    assert_eq!(lost.state, NetworkState::Lost);
    let Event::Recovery(step) =
        wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Recovery(_))).await
    else {
        unreachable!()
    };
    assert_eq!(
        (step.step.as_str(), step.attempt, step.result.as_str()),
        ("AT+ZOPRT=5", 1, "ok")
    );
    let Event::Network(back) =
        wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Network(_))).await
    else {
        unreachable!()
    };
    assert_eq!(back.state, NetworkState::Registered);
    let to = wire(&r.sim, Direction::ToStick).await;
    let off = to.find("AT+ZOPRT=6").unwrap();
    assert!(
        to[off..].contains("AT+ZOPRT=5"),
        "the recovery step is on the wire"
    );
    assert_eq!(r.modem.status().network, NetworkState::Registered);
}

/// Some firmware sends no `+CREG` URC; `+ZPASR: "No Service"` is then the only hint.
/// The engine asks (`AT+CREG?`) at once instead of waiting for the next probe.
#[tokio::test(start_paused = true)]
async fn a_zpasr_no_service_hint_is_checked_at_once() {
    let mut cfg = quick("main");
    cfg.probe_interval = Duration::from_secs(3600);
    let mut r = rig(SimHandle::spawn(SimConfig::default()), cfg).await;
    r.modem.at("AT+CREG=0").await.unwrap();
    r.sim.network_lost().await;
    // Deterministic in paused time: the next probe is an hour away.
    let lost = tokio::time::timeout(
        Duration::from_secs(60),
        wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Network(_))),
    )
    .await
    .expect("the hint is checked before the hourly probe");
    assert!(matches!(lost, Event::Network(n) if n.state == NetworkState::Lost));
    assert!(wire(&r.sim, Direction::FromStick)
        .await
        .contains("+ZPASR: \"No Service\""));
}

/// Recovery is capped (no storm while the network is simply gone), resumes when
/// switched back on, and `set_recovery(false)` silences it. A rule's own
/// `AT+ZOPRT=5` postpones the automatic one.
#[tokio::test(start_paused = true)]
async fn recovery_is_capped_switchable_and_yields_to_rules() {
    let mut cfg = quick("main");
    cfg.recovery.backoff = Duration::from_secs(20);
    cfg.recovery.max_attempts = 4;
    let mut r = rig(SimHandle::spawn(SimConfig::default()), cfg).await;
    r.modem.set_recovery(false).await;
    r.sim.network_lost().await;
    wait_for(
        &mut r.events,
        HOURS,
        |e| matches!(e, Event::Network(n) if n.state == NetworkState::Lost),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1800)).await;
    let quiet = drain(&mut r.events);
    assert!(
        quiet.iter().all(|e| !matches!(e, Event::Recovery(_))),
        "{quiet:?}"
    );
    assert!(!r.modem.status().recovery_enabled);

    r.modem.set_recovery(true).await;
    let on = tokio::time::Instant::now();
    // A rule does its own thing first: the automatic step waits.
    tokio::time::sleep(Duration::from_secs(10)).await;
    r.modem.at("AT+ZOPRT=5").await.unwrap();
    let mut steps = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(4 * 3600);
    while tokio::time::Instant::now() < until {
        let left = until - tokio::time::Instant::now();
        match tokio::time::timeout(left, r.events.recv()).await {
            Ok(Ok(Event::Recovery(s))) => steps.push((tokio::time::Instant::now(), s)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    // Due 20 s after switching on, postponed by a backoff step by the rule's command.
    assert!(
        steps[0].0 - on >= Duration::from_secs(30),
        "{:?}",
        steps[0].0 - on
    );
    let names: Vec<&str> = steps.iter().map(|(_, s)| s.step.as_str()).collect();
    assert_eq!(
        names,
        ["AT+ZOPRT=5", "AT+CFUN=1", "AT+CFUN=1", "AT+CFUN=1"],
        "capped at 4"
    );
    let attempts: Vec<u32> = steps.iter().map(|(_, s)| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    // Growing pauses between steps (backoff × 2, × 4, × 8).
    let gaps: Vec<Duration> = steps.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");

    r.sim.network_back().await;
    wait_for(
        &mut r.events,
        HOURS,
        |e| matches!(e, Event::Network(n) if n.state == NetworkState::Registered),
    )
    .await;
}

/// Once the AT steps are used up, the configured program is the escalation (a USB
/// power cycle, say): run without a shell, with the modem's name in the environment,
/// one `recovery` event per run with its outcome, capped like the AT steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_program_is_the_last_escalation() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("ran");
    let mut cfg = ModemConfig::new("main");
    cfg.recovery.steps = vec!["AT+ZOPRT=5".into()];
    cfg.recovery.backoff = Duration::from_millis(20);
    cfg.recovery.max_attempts = 3;
    cfg.recovery_command = Some(vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("echo \"$ATMATE_MODEM\" >> '{}'; exit 3", file.display()),
    ]);
    let mut r = rig(SimHandle::spawn(SimConfig::default()), cfg).await;
    r.sim.network_lost().await;
    let mut steps = Vec::new();
    while steps.len() < 3 {
        if let Event::Recovery(s) = wait_for(&mut r.events, Duration::from_secs(60), |e| {
            matches!(e, Event::Recovery(_))
        })
        .await
        {
            steps.push(s);
        }
    }
    assert_eq!(steps[0].step, "AT+ZOPRT=5");
    assert!(
        steps[1].step.starts_with("run: /bin/sh -c"),
        "{:?}",
        steps[1]
    );
    assert_eq!(steps[1].step, steps[2].step);
    assert!(
        steps[1].result.contains("failed") && steps[1].result.contains('3'),
        "{:?}",
        steps[1]
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "main\nmain\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        drain(&mut r.events)
            .iter()
            .all(|e| !matches!(e, Event::Recovery(_))),
        "capped at 3"
    );
}

// ----- the SIM ---------------------------------------------------------------------

/// PIN required at boot → the configured PIN is entered once → the SIM is busy for a
/// while (`+CME ERROR: 14` / `+CMS ERROR: 314`) → init goes on → ready. The PIN
/// appears in no log line of the engine, at any level.
#[tokio::test(start_paused = true)]
async fn pin_then_sim_busy_then_ready_and_the_pin_is_never_logged() {
    let (logs, _guard) = Logs::capture();
    let sim = SimHandle::spawn(SimConfig {
        pin: Some("4711".into()),
        sim_busy: Duration::from_secs(5),
        ..SimConfig::default()
    });
    let mut cfg = quick("main");
    cfg.pin = Some(Secret::new("4711"));
    let r = rig(sim, cfg).await;
    let st = r.modem.status();
    assert_eq!(st.sim.as_deref(), Some("ready"));
    let to = wire(&r.sim, Direction::ToStick).await;
    assert_eq!(to.matches("AT+CPIN=\"4711\"").count(), 1, "entered once");
    let from = wire(&r.sim, Direction::FromStick).await;
    assert!(
        from.contains("+CME ERROR: 14") || from.contains("+CMS ERROR: 314"),
        "the SIM was busy after the PIN: {from}"
    );
    assert!(logs.text().contains("PIN accepted"));
    assert!(logs.text().contains("SIM busy"));
    assert!(!logs.text().contains("4711"), "{}", logs.text());
    // Also not through a user's own command, its error or its debug output.
    let err = r.modem.at("AT+CMEE=1;+CPIN=\"4711\"").await;
    if let Err(e) = err {
        assert!(!e.to_string().contains("4711"), "{e}");
    }
    assert!(!logs.text().contains("4711"), "{}", logs.text());
    assert!(!format!(
        "{:?}",
        ModemConfig {
            pin: Some(Secret::new("4711")),
            ..ModemConfig::new("x")
        }
    )
    .contains("4711"));
}

/// A wrong PIN is sent exactly once: the engine reports the tries left
/// (`AT+ZPINPUK=?`), stays down with a clear reason and keeps polling the SIM state
/// without ever sending the PIN again, so it cannot lock the SIM.
#[tokio::test(start_paused = true)]
async fn a_wrong_pin_is_tried_once_and_never_again() {
    let (logs, _guard) = Logs::capture();
    let sim = SimHandle::spawn(SimConfig {
        pin: Some("4711".into()),
        ..SimConfig::default()
    });
    let mut cfg = quick("main");
    cfg.pin = Some(Secret::new("1234"));
    let mut r = rig_no_wait(sim, cfg);
    let Event::Link(down) = wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Link(_))).await
    else {
        unreachable!()
    };
    assert_eq!(down.state, LinkState::Down);
    let reason = down.reason.unwrap();
    assert!(reason.contains("rejected the configured PIN"), "{reason}");
    assert!(reason.contains("2 PIN tries left"), "{reason}");
    assert!(!reason.contains("1234"), "{reason}");
    tokio::time::sleep(Duration::from_secs(3 * 3600)).await;
    let to = wire(&r.sim, Direction::ToStick).await;
    assert_eq!(
        to.matches("AT+CPIN=\"").count(),
        1,
        "one PIN attempt in 3 hours: {to}"
    );
    assert!(
        to.matches("AT+CPIN?").count() > 3,
        "the SIM state is still polled"
    );
    assert!(r.attempts.load(Ordering::SeqCst) > 3);
    let st = r.modem.status();
    assert_eq!(st.link, "down");
    assert_eq!(st.sim.as_deref(), Some("pin rejected"));
    let err = r.modem.send_sms("+4917612345678", "hi").await.unwrap_err();
    assert!(err.to_string().contains("PIN"), "{err}");
    assert!(drain(&mut r.events)
        .iter()
        .all(|e| !matches!(e, Event::Link(_))));
    assert!(!logs.text().contains("1234"), "{}", logs.text());
    assert_eq!(logs.count("modem not available"), 1, "{}", logs.text());
}

/// With one PIN try left the engine does not use it, even with the right PIN: a
/// person should take the last try, not a daemon.
#[tokio::test(start_paused = true)]
async fn the_last_pin_try_is_left_to_a_person() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = SimHandle::spawn(SimConfig {
        pin: Some("4711".into()),
        ..SimConfig::default()
    });
    // Someone mistyped the PIN twice with another tool.
    {
        let mut port = sim.open_port(1).unwrap();
        let mut buf = vec![0u8; 256];
        for _ in 0..2 {
            port.write_all(b"AT+CPIN=\"0000\"\r").await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = port.read(&mut buf).await.unwrap();
        }
    }
    let mut cfg = quick("main");
    cfg.pin = Some(Secret::new("4711"));
    let mut r = rig_no_wait(sim, cfg);
    let Event::Link(down) = wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Link(_))).await
    else {
        unreachable!()
    };
    let reason = down.reason.unwrap();
    assert!(reason.contains("1 PIN try left"), "{reason}");
    tokio::time::sleep(Duration::from_secs(600)).await;
    let to = wire(&r.sim, Direction::ToStick).await;
    assert!(
        !to.contains("AT+CPIN=\"4711\""),
        "the last try was used: {to}"
    );
    let st = r.sim.status().await;
    assert_ne!(st["sim"]["state"], "puk", "{st}");
}

/// No SIM: a `link: down` naming it and a clear status; the engine polls slowly and
/// comes up by itself when a SIM is inserted. A SIM pulled while running is noticed
/// at the next SIM command.
#[tokio::test(start_paused = true)]
async fn a_missing_sim_is_an_event_and_a_status_until_one_is_inserted() {
    let sim = SimHandle::spawn(SimConfig {
        sim_present: false,
        ..SimConfig::default()
    });
    let mut r = rig_no_wait(sim, quick("main"));
    let Event::Link(down) = wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Link(_))).await
    else {
        unreachable!()
    };
    assert_eq!(down.state, LinkState::Down);
    assert!(
        down.reason.as_deref().unwrap().contains("no SIM card"),
        "{down:?}"
    );
    let st = r.modem.status();
    assert_eq!(st.sim.as_deref(), Some("missing"));
    assert!(st.link_error.unwrap().contains("no SIM card"));
    tokio::time::sleep(Duration::from_secs(60)).await;
    r.sim.insert_sim().await;
    wait_for(&mut r.events, HOURS, |e| is_link(e, LinkState::Up)).await;
    assert_eq!(r.modem.status().sim.as_deref(), Some("ready"));

    // Pulled while running: the next SIM command notices, the engine goes down and
    // waits for a SIM again.
    r.sim.remove_sim().await;
    let _ = r.modem.at("AT+CPMS?").await;
    let Event::Link(gone) = wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Link(_))).await
    else {
        unreachable!()
    };
    assert_eq!(gone.state, LinkState::Down);
    assert!(gone.reason.unwrap().contains("SIM"));
    r.sim.insert_sim().await;
    wait_for(&mut r.events, HOURS, |e| is_link(e, LinkState::Up)).await;
}

// ----- storage ---------------------------------------------------------------------

/// The SIM store is full when atmate starts (20 of 20, so the network holds new
/// messages): the start-up sweep drains it, the network delivers what it held, and
/// every message is archived exactly once.
#[tokio::test(start_paused = true)]
async fn a_full_sim_at_start_is_drained_and_everything_archived() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = SimHandle::spawn(SimConfig::default());
    // Point the receive store at SM (as a previous atmate run left it), then fill it.
    {
        let mut port = sim.open_port(1).unwrap();
        port.write_all(b"AT+CPMS=\"SM\",\"SM\",\"SM\"\r")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut buf = vec![0u8; 256];
        let _ = port.read(&mut buf).await.unwrap();
    }
    sim.fill_storage().await;
    let st = sim.status().await;
    assert_eq!(st["stores"]["SM"]["used"], 20, "{st}");
    let mut held = Vec::new();
    for i in 0..5 {
        held.extend(
            sim.inject_sms_detailed(InjectSms::new("+4917600000003", format!("held {i}")))
                .await
                .unwrap(),
        );
    }
    assert!(
        held.iter()
            .all(|d| matches!(d, atmate::sim::Delivery::Held)),
        "the network holds them while the store is full: {held:?}"
    );

    let mut r = rig(sim, quick("main")).await;
    let mut texts = std::collections::BTreeSet::new();
    // The 20 old ones were archived by the sweep before `link: up`; the held ones follow.
    for m in r.persist.messages() {
        assert!(texts.insert(m.text.clone()));
    }
    while texts.len() < 25 {
        if let Event::Sms(s) = wait_for(&mut r.events, HOURS, |e| matches!(e, Event::Sms(_))).await
        {
            assert!(texts.insert(s.text.clone()), "twice: {}", s.text);
        }
    }
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(r.persist.messages().len(), 25);
    assert!((1..=20).all(|n| texts.contains(&format!("Old message {n}"))));
    let st = r.sim.status().await;
    assert_eq!(st["stores"]["SM"]["used"], 0, "{st}");
}

// ----- the data interface ----------------------------------------------------------

/// `data_interface: ppp0`: the engine watches it beside the AT port; its drops are
/// `link` events with `via: data` and the status shows it.
#[tokio::test(start_paused = true)]
async fn the_data_interface_is_watched_beside_the_port() {
    let net = tempfile::tempdir().unwrap();
    let ppp = net.path().join("ppp0");
    std::fs::create_dir_all(&ppp).unwrap();
    std::fs::write(ppp.join("operstate"), "unknown\n").unwrap();
    std::fs::write(ppp.join("flags"), "0x10d1\n").unwrap();
    let mut cfg = quick("main");
    cfg.data_interface = Some("ppp0".into());
    cfg.net_root = net.path().to_path_buf();
    cfg.data_poll_interval = Duration::from_secs(1);
    let mut r = rig_no_wait(SimHandle::spawn(SimConfig::default()), cfg);
    wait_for(
        &mut r.events,
        HOURS,
        |e| matches!(e, Event::Link(l) if l.via == LinkKind::Data && l.state == LinkState::Up),
    )
    .await;
    std::fs::remove_dir_all(&ppp).unwrap();
    let Event::Link(down) = wait_for(
        &mut r.events,
        HOURS,
        |e| matches!(e, Event::Link(l) if l.via == LinkKind::Data),
    )
    .await
    else {
        unreachable!()
    };
    assert_eq!(down.state, LinkState::Down);
    assert_eq!(down.device.as_deref(), Some("ppp0"));
    assert_eq!(r.modem.status().data_link.as_deref(), Some("down"));
    // The AT port is not affected.
    r.modem.wait_until_up(HOURS).await.unwrap();
    assert_eq!(r.modem.status().link, "up");
}
