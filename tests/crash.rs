//! Crashes: the real `atmate run` killed with SIGKILL at random moments while SMS
//! arrive (the simulator on PTYs in this process plays the stick and outlives every
//! daemon), and sends cut off by a write error or a crash are completed afterwards.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use atmate::event::{Event, LinkState};
use atmate::modem::persist::MemoryPersist;
use atmate::modem::{FnConnector, ModemConfig, ModemError, ModemHandle, Opened, Persist};
use atmate::sim::{serve_pty, InjectSms, SimConfig, SimHandle};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::broadcast;

// ----- kill -9 of the real daemon ----------------------------------------------------

/// A child process that is killed (SIGKILL) and reaped when dropped, also when the
/// test panics.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    fn kill_now(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// xorshift64*: reproducible "random" kill points; the seed is printed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn write_config(dir: &Path, device: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(dir.join("rules/rules.yaml"), "[]\n").unwrap();
    let cfg = format!(
        "modems:\n  - name: main\n    device: {}\n    reconnect:\n      min: 50ms\n      max: 500ms\n\
         store: atmate.db\nrules: rules\nscripts: scripts\ntimezone: UTC\n\
         allow_senders: [\"+4917612345678\"]\ncontrol_socket: control.sock\nlog: info\n",
        device.display()
    );
    let path = dir.join("atmate.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn start_daemon(cfg: &Path, log: &Path) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(assert_cmd::cargo::cargo_bin!("atmate"))
        .args(["run", "--config"])
        .arg(cfg)
        .env_remove("ATMATE_CONFIG")
        .env("RUST_LOG", "atmate=info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("atmate run starts");
    ChildGuard(Some(child))
}

/// Texts in the archive with how often each is there (read-only, beside the daemon).
fn archived(db: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if !db.exists() {
        return out;
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return out;
    };
    let _ = conn.busy_timeout(Duration::from_secs(5));
    let Ok(mut st) = conn.prepare("SELECT text FROM inbox WHERE modem = 'main'") else {
        return out;
    };
    let rows = st
        .query_map([], |r| r.get::<_, Option<String>>(0))
        .map(|it| it.flatten().flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    for t in rows {
        *out.entry(t).or_insert(0) += 1;
    }
    out
}

fn text_of(i: usize) -> String {
    if i.is_multiple_of(5) {
        // A long one: arrives as 2 concatenated parts.
        format!(
            "long {i:03} {}",
            "the quick brown fox jumps over the lazy dog ".repeat(5)
        )
    } else {
        format!("sms {i:03}")
    }
}

/// `kill -9` of the real daemon at random moments while 100 SMS (every fifth one in
/// two parts) arrive, three times, then a last run: exactly the 100 messages are in
/// the SQLite archive, none twice, and the SIM is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_while_100_sms_arrive_loses_and_doubles_nothing() {
    let seed = std::env::var("ATMATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("crash test seed: {seed} (ATMATE_CRASH_SEED={seed} repeats it)");
    let mut rng = Rng(seed);

    let dir = tempfile::tempdir().unwrap();
    let pty = serve_pty(&dir.path().join("stick"), SimConfig::default())
        .await
        .unwrap();
    let sim = pty.handle().clone();
    let cfg = write_config(dir.path(), &pty.by_id(1));
    let log = dir.path().join("daemon.log");
    let db = dir.path().join("atmate.db");

    let total = 100;
    let gaps: Vec<u64> = (0..total).map(|_| rng.between(5, 45)).collect();
    let injector = {
        let sim = sim.clone();
        tokio::spawn(async move {
            for (i, gap) in gaps.into_iter().enumerate() {
                sim.inject_sms(InjectSms::new("+4917600000042", text_of(i)))
                    .await
                    .expect("inject");
                tokio::time::sleep(Duration::from_millis(gap)).await;
            }
        })
    };

    let mut kills = Vec::new();
    for _ in 0..3 {
        let mut daemon = start_daemon(&cfg, &log);
        let after = rng.between(150, 1500);
        tokio::time::sleep(Duration::from_millis(after)).await;
        daemon.kill_now();
        kills.push((after, archived(&db).values().sum::<usize>()));
    }
    eprintln!("killed after (ms, messages archived so far): {kills:?}");

    let _daemon = start_daemon(&cfg, &log);
    injector.await.unwrap();
    let expected: Vec<String> = (0..total).map(text_of).collect();
    let done = async {
        loop {
            let got = archived(&db);
            let st = sim.status().await;
            let on_sim = ["SM", "ME"]
                .iter()
                .map(|m| st["stores"][m]["used"].as_u64().unwrap_or(0))
                .sum::<u64>();
            if got.len() == total && on_sim == 0 && st["held_by_network"] == 0 {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let got = match tokio::time::timeout(Duration::from_secs(90), done).await {
        Ok(g) => g,
        Err(_) => panic!(
            "not all messages arrived; archived {:?}\nsim: {}\ndaemon log:\n{}",
            archived(&db),
            sim.status().await,
            std::fs::read_to_string(&log).unwrap_or_default()
        ),
    };
    // Give a late duplicate the chance to show.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_later = archived(&db);
    assert_eq!(got, got_later);
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "archived twice: {twice:?}");
    let mut texts: Vec<String> = got.keys().cloned().collect();
    texts.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(texts, want, "exactly the 100 messages");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(log_text.contains("link up"), "{log_text}");
    if std::env::var("ATMATE_CRASH_LOG").is_ok() {
        eprintln!("{log_text}");
    }
    pty.shutdown().await;
}

// ----- sends cut off -------------------------------------------------------------------

/// A port that fails the `n`-th write carrying `AT+CMGS` with EIO, as writes to an
/// unplugged stick do, and reads EOF from then on.
struct CutAtCmgs {
    inner: DuplexStream,
    cmgs_seen: Arc<AtomicUsize>,
    cut_at: usize,
    dead: bool,
}

impl AsyncRead for CutAtCmgs {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.dead {
            return Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CutAtCmgs {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.dead {
            return Poll::Ready(Err(std::io::Error::from_raw_os_error(5)));
        }
        if buf.windows(7).any(|w| w == b"AT+CMGS")
            && self.cmgs_seen.fetch_add(1, Ordering::SeqCst) + 1 == self.cut_at
        {
            self.dead = true;
            return Poll::Ready(Err(std::io::Error::from_raw_os_error(5)));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

async fn wait_for(rx: &mut broadcast::Receiver<Event>, pred: impl Fn(&Event) -> bool) -> Event {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(6 * 3600), fut)
        .await
        .expect("the expected event did not come")
}

const LONG: &str = "Dies ist eine lange Nachricht, die in drei Teilen verschickt wird, \
    weil sie deutlich mehr als einhundertdreiundfünfzig Zeichen hat. Der zweite Teil \
    geht verloren, wenn der Stick mitten im Senden vom USB fällt, und muss danach mit \
    derselben Referenz nachgeschickt werden, damit das Telefon die Teile zusammensetzt.";

/// The stick drops off (a write fails with EIO) after part 1 of a 3-part message was
/// accepted: the caller hears "disconnected … stays in the outbox", rules see
/// `link: down`, and after the reconnect parts 2 and 3 go out with the same
/// reference, so the recipient's phone joins all three.
#[tokio::test(start_paused = true)]
async fn a_send_cut_by_a_write_error_is_completed_after_the_reconnect() {
    let sim = SimHandle::spawn(SimConfig::default());
    let seen = Arc::new(AtomicUsize::new(0));
    let connects = Arc::new(AtomicUsize::new(0));
    let connector = {
        let (sim, seen, connects) = (sim.clone(), seen.clone(), connects.clone());
        Arc::new(FnConnector::new("sim:if01", move || {
            let first = connects.fetch_add(1, Ordering::SeqCst) == 0;
            let (sim, seen) = (sim.clone(), seen.clone());
            async move {
                let port = sim.open_port(1).map_err(|e| ModemError::Open {
                    device: "sim:if01".into(),
                    reason: e.to_string(),
                })?;
                let port: Box<dyn atmate::modem::transport::Port> = if first {
                    Box::new(CutAtCmgs {
                        inner: port,
                        cmgs_seen: seen,
                        cut_at: 2,
                        dead: false,
                    })
                } else {
                    Box::new(port)
                };
                Ok(Opened {
                    port,
                    device: "sim:if01".into(),
                })
            }
        }))
    };
    let persist = Arc::new(MemoryPersist::new());
    let mut cfg = ModemConfig::new("main");
    cfg.reconnect_min = Duration::from_millis(250);
    let modem = ModemHandle::spawn(cfg, connector, persist.clone());
    let mut events = modem.events();
    wait_for(
        &mut events,
        |e| matches!(e, Event::Link(l) if l.state == LinkState::Up),
    )
    .await;

    let err = modem.send_sms("+4917612345678", LONG).await.unwrap_err();
    assert!(matches!(err, ModemError::Disconnected { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("stays in the outbox") && msg.contains("1 of 3"),
        "{msg}"
    );
    let Event::Link(down) = wait_for(
        &mut events,
        |e| matches!(e, Event::Link(l) if l.state == LinkState::Down),
    )
    .await
    else {
        unreachable!()
    };
    assert!(down.reason.unwrap().contains("write error"));
    let Event::SmsSent(sent) = wait_for(&mut events, |e| matches!(e, Event::SmsSent(_))).await
    else {
        unreachable!()
    };
    assert_eq!(sent.state, "sent", "{sent:?}");
    assert_eq!(sent.references.len(), 3);
    let parts = sim.sent().await;
    assert_eq!(parts.len(), 3, "{parts:?}");
    let refs: Vec<u16> = parts.iter().map(|p| p.part.unwrap().reference).collect();
    assert!(
        refs.iter().all(|r| *r == refs[0]),
        "one reference: {refs:?}"
    );
    let messages = sim.sent_messages().await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].text, LONG);
    assert_eq!(persist.outbox()[0].2, "sent");
}

/// atmate died between `AT+CMGS` for part 2 and its answer (the part is "sending" in
/// the outbox): at the next start part 1 is not sent again, part 2 is (in doubt, it
/// is resent and logged as such), with the message's reference.
#[tokio::test(start_paused = true)]
async fn a_part_in_doubt_after_a_crash_is_sent_again_with_the_same_reference() {
    let persist = Arc::new(MemoryPersist::new());
    let text = "x".repeat(200);
    let id = persist
        .outbox_enqueue("main", "+4917612345678", &text, 2, Some(0x42))
        .await
        .unwrap();
    persist.outbox_part_sending(id, 1).await.unwrap();
    persist.outbox_part_sent(id, 1, 7).await.unwrap();
    persist.outbox_part_sending(id, 2).await.unwrap();
    assert_eq!(persist.outbox_in_doubt(id).await.unwrap(), [2]);

    let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sub = {
        let logs = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("atmate::modem=info"))
            .with_writer(move || LogSink(logs.clone()))
            .with_ansi(false)
            .finish()
    };
    let _guard = tracing::subscriber::set_default(sub);
    // Call sites cached as uninteresting by tests without a subscriber.
    tracing::callsite::rebuild_interest_cache();

    let sim = SimHandle::spawn(SimConfig::default());
    let connector = {
        let sim = sim.clone();
        Arc::new(FnConnector::new("sim:if01", move || {
            let sim = sim.clone();
            async move {
                let port = sim.open_port(1).map_err(|e| ModemError::Open {
                    device: "sim:if01".into(),
                    reason: e.to_string(),
                })?;
                Ok(Opened {
                    port: Box::new(port),
                    device: "sim:if01".into(),
                })
            }
        }))
    };
    let modem = ModemHandle::spawn(ModemConfig::new("main"), connector, persist.clone());
    let mut events = modem.events();
    let Event::SmsSent(sent) = wait_for(&mut events, |e| matches!(e, Event::SmsSent(_))).await
    else {
        unreachable!()
    };
    assert_eq!(sent.state, "sent");
    assert_eq!(sent.id, id);
    let parts = sim.sent().await;
    assert_eq!(parts.len(), 1, "only the part in doubt: {parts:?}");
    let p = parts[0].part.unwrap();
    assert_eq!((p.reference, p.total, p.seq), (0x42, 2, 2));
    let (_, _, state, sent_parts) = persist.outbox()[0].clone();
    assert_eq!(state, "sent");
    assert_eq!(sent_parts.len(), 2);
    assert_eq!(sent_parts[0], (1, 7));
    let log = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(log.contains("sending them again"), "{log}");
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
