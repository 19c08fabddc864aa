//! The test harness: a real daemon (`Runtime`) on a temp dir, with the in-process
//! simulator behind `device: sim`. Verbs are domain words: `inject_sms`,
//! `expect_sent_sms`, `write_rules`, `assert_reloaded`, `assert_not_reloaded`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use atmate::event::Event;
use atmate::runtime::Runtime;
use atmate::sim::{InjectSms, SimHandle};
use tokio::sync::broadcast;

/// The allowed sender in every test config.
pub const ALLOWED: &str = "+4917612345678";

/// A running daemon in a temp dir.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub rt: Runtime,
    pub sim: SimHandle,
    pub events: broadcast::Receiver<Event>,
}

/// Builds the temp dir, then starts the daemon.
pub struct Builder {
    rules: String,
    scripts: Vec<(String, String)>,
    extra_modem: String,
    extra_top: String,
    clock_start: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn builder() -> Builder {
    Builder {
        rules: String::from("[]\n"),
        scripts: Vec::new(),
        extra_modem: String::new(),
        extra_top: String::new(),
        clock_start: None,
    }
}

impl Builder {
    pub fn rules(mut self, yaml: &str) -> Self {
        self.rules = yaml.to_owned();
        self
    }
    pub fn script(mut self, name: &str, text: &str) -> Self {
        self.scripts.push((name.to_owned(), text.to_owned()));
        self
    }
    /// Extra keys for the modem section (indented by the caller with 4 spaces).
    pub fn modem_extra(mut self, yaml: &str) -> Self {
        self.extra_modem = yaml.to_owned();
        self
    }
    /// Start the schedules' wall clock at this time (it then runs at real speed).
    pub fn clock_at(mut self, t: chrono::DateTime<chrono::Utc>) -> Self {
        self.clock_start = Some(t);
        self
    }
    /// Extra top-level keys.
    pub fn top_extra(mut self, yaml: &str) -> Self {
        self.extra_top = yaml.to_owned();
        self
    }

    pub async fn start(self) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("rules")).unwrap();
        std::fs::create_dir_all(root.join("scripts")).unwrap();
        std::fs::write(root.join("rules/rules.yaml"), &self.rules).unwrap();
        for (name, text) in &self.scripts {
            std::fs::write(root.join("scripts").join(name), text).unwrap();
        }
        let cfg = format!(
            "modems:\n  - name: main\n    device: sim\n    health:\n      probe_interval: 30s\n      storage_check: 60s\n    sim:\n      demo: false\n{}\nstore: atmate.db\nrules: rules\nscripts: scripts\ntimezone: UTC\nallow_senders: [\"{ALLOWED}\"]\ncontrol_socket: control.sock\n{}",
            self.extra_modem, self.extra_top
        );
        std::fs::write(root.join("atmate.yaml"), cfg).unwrap();
        let loaded = atmate::runtime::load::load_from(&root.join("atmate.yaml"))
            .unwrap_or_else(|d| panic!("test config invalid:\n{}", d.render()));
        let rt = match self.clock_start {
            None => Runtime::start(loaded).await,
            Some(t) => {
                Runtime::start_with_clock(
                    loaded,
                    std::sync::Arc::new(atmate::schedule::TokioClock::new(t)),
                )
                .await
            }
        }
        .expect("daemon starts");
        let mut events = rt.events();
        let sim = rt.sim("main").expect("sim modem");
        wait_for(&mut events, |e| matches!(e, Event::Startup(_))).await;
        Daemon {
            dir,
            rt,
            sim,
            events,
        }
    }
}

pub async fn wait_for(rx: &mut broadcast::Receiver<Event>, pred: impl Fn(&Event) -> bool) -> Event {
    let fut = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event bus closed: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("expected event did not come within 60 s")
}

impl Daemon {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub async fn inject_sms(&self, from: &str, text: &str) {
        self.sim
            .inject_sms(InjectSms::new(from, text))
            .await
            .expect("inject");
    }

    /// Wait until the stick sent an SMS to `to` whose text satisfies `pred`.
    pub async fn expect_sent_sms(&self, to: &str, pred: impl Fn(&str) -> bool) -> String {
        for _ in 0..600 {
            for s in self.sim.sent_messages().await {
                if s.to == to && pred(&s.text) {
                    return s.text;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no SMS to {to} matched; sent: {:?}",
            self.sim.sent_messages().await
        );
    }

    /// Give the daemon time to act, then assert nothing was sent to `to`.
    pub async fn expect_no_sms_to(&self, to: &str, wait: Duration) {
        tokio::time::sleep(wait).await;
        let sent = self.sim.sent_messages().await;
        assert!(
            sent.iter().all(|s| s.to != to),
            "unexpected SMS to {to}: {sent:?}"
        );
    }

    pub fn write_rules(&self, yaml: &str) {
        write_atomically(&self.path("rules/rules.yaml"), yaml);
    }

    pub fn write_script(&self, name: &str, text: &str) {
        write_atomically(&self.path(&format!("scripts/{name}")), text);
    }

    /// Reload now (the watcher would too) and assert it succeeded.
    pub async fn assert_reloaded(&self) -> String {
        self.rt.reload().await.expect("reload should succeed")
    }

    /// Reload now and assert it failed with a diagnostic mentioning `needle`.
    pub async fn assert_not_reloaded(&self, needle: &str) -> String {
        let e = self.rt.reload().await.expect_err("reload should fail");
        assert!(
            e.contains(needle),
            "diagnostic should mention {needle:?}: {e}"
        );
        e
    }
}

/// Editors save by writing a temp file and renaming it over the old one.
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

impl Daemon {
    /// Everything the daemon wrote to the stick, as text.
    pub async fn wire_to_stick(&self) -> String {
        to_stick(&self.sim).await
    }

    /// Messages the stick sent, joined from their parts.
    pub async fn sent(&self) -> Vec<atmate::sim::SentMessage> {
        self.sim.sent_messages().await
    }
}

/// Everything the host wrote to the simulated stick, as text.
pub async fn to_stick(sim: &SimHandle) -> String {
    let bytes: Vec<u8> = sim
        .wire_log()
        .await
        .into_iter()
        .filter(|e| e.dir == atmate::sim::wire::Direction::ToStick)
        .flat_map(|e| e.bytes)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}
