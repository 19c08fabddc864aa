//! `ModemHandle`: the cheap, cloneable way in. Every method sends one [`Request`] to
//! the actor with a oneshot for the answer (mini-redis `buffered_client.rs`).
//! Dropping the last handle stops the actor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::actor::Actor;
use super::config::ModemConfig;
use super::error::ModemError;
use super::persist::Persist;
use super::transport::Connector;
use crate::event::{Event, NetworkState, Signal, UssdReply};

/// The answer to a raw AT command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AtResponse {
    /// Information lines, in order (URCs that arrived meanwhile are not here).
    pub lines: Vec<String>,
    /// The final result code as sent (`OK`).
    pub result: String,
}

impl AtResponse {
    /// The information lines joined by `\n`.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

/// Options for one outgoing SMS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Ask for a status report (TP-SRR).
    pub status_report: bool,
    /// Force UCS-2 even when GSM-7 would do.
    pub ucs2: bool,
}

/// The outcome of a successful send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendResult {
    /// Outbox id.
    pub id: i64,
    /// Number of parts.
    pub parts: u16,
    /// TP-MR of each part.
    pub references: Vec<u8>,
}

/// Facts about the modem, read at init.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ModemInfo {
    /// `+CGMI`.
    pub manufacturer: Option<String>,
    /// `+CGMM`.
    pub model: Option<String>,
    /// `+CGMR`.
    pub revision: Option<String>,
    /// `+CGSN` (IMEI).
    pub imei: Option<String>,
}

/// Everything `atmate status` shows about one modem; updated by the actor, read
/// without a round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModemStatus {
    /// Modem name.
    pub name: String,
    /// `up`, `down` or `connecting`.
    pub link: String,
    /// What the connector opens (`auto (19d2, if01/if02)`, a path, `sim`).
    pub connector: String,
    /// The device actually open.
    pub device: Option<String>,
    /// Why the link is down, when it is.
    pub link_error: Option<String>,
    /// RFC 3339 time of the last link change.
    pub since: Option<String>,
    /// SIM state (`ready`, `pin required`, `missing`, …).
    pub sim: Option<String>,
    /// Registration.
    pub network: NetworkState,
    /// Operator name.
    pub operator: Option<String>,
    /// Access technology (`UMTS`…).
    pub tech: Option<String>,
    /// Last signal reading.
    pub signal: Option<Signal>,
    /// Receive storage use (used, total).
    pub storage: Option<(u32, u32)>,
    /// Requests waiting for the port.
    pub queue: usize,
    /// A USSD session is open (state 1).
    pub ussd_session: bool,
    /// Automatic network recovery on.
    pub recovery_enabled: bool,
    /// The watched data interface (`up`/`down`), when one is configured.
    pub data_link: Option<String>,
    /// Identity.
    pub info: ModemInfo,
    /// Counters.
    pub received: u64,
    /// Counters.
    pub sent: u64,
}

impl ModemStatus {
    /// The status before the first connection attempt.
    pub(crate) fn new(name: &str, connector: &str) -> ModemStatus {
        ModemStatus {
            name: name.to_owned(),
            link: "connecting".into(),
            connector: connector.to_owned(),
            device: None,
            link_error: None,
            since: None,
            sim: None,
            network: NetworkState::Unknown,
            operator: None,
            tech: None,
            signal: None,
            storage: None,
            queue: 0,
            ussd_session: false,
            recovery_enabled: false,
            data_link: None,
            info: ModemInfo::default(),
            received: 0,
            sent: 0,
        }
    }
}

/// One message to the actor. Each variant names the handle method that sends it.
#[derive(Debug)]
pub(crate) enum Request {
    /// [`ModemHandle::at`]
    At {
        command: String,
        timeout: Option<Duration>,
        reply: oneshot::Sender<Result<AtResponse, ModemError>>,
    },
    /// [`ModemHandle::send_sms_with`]
    SendSms {
        to: String,
        text: String,
        options: SendOptions,
        reply: oneshot::Sender<Result<SendResult, ModemError>>,
    },
    /// [`ModemHandle::ussd`]
    Ussd {
        code: String,
        reply: oneshot::Sender<Result<UssdReply, ModemError>>,
    },
    /// [`ModemHandle::ussd_reply`]
    UssdReply {
        text: String,
        reply: oneshot::Sender<Result<UssdReply, ModemError>>,
    },
    /// [`ModemHandle::ussd_cancel`]
    UssdCancel {
        reply: oneshot::Sender<Result<(), ModemError>>,
    },
    /// [`ModemHandle::signal`]
    Signal {
        reply: oneshot::Sender<Result<Signal, ModemError>>,
    },
    /// [`ModemHandle::sweep`]
    Sweep {
        reply: oneshot::Sender<Result<usize, ModemError>>,
    },
    /// [`ModemHandle::set_recovery`]
    SetRecovery { enabled: bool },
    /// [`ModemHandle::reconnect`]
    Reconnect,
    /// [`ModemHandle::shutdown`]
    Shutdown { done: oneshot::Sender<()> },
}

/// The shared handle to one modem. Clone it freely.
#[derive(Clone)]
pub struct ModemHandle {
    name: Arc<str>,
    tx: mpsc::Sender<Request>,
    events: broadcast::Sender<Event>,
    status: Arc<Mutex<ModemStatus>>,
    up: watch::Receiver<bool>,
}

impl std::fmt::Debug for ModemHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModemHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl ModemHandle {
    /// Start the actor for one modem. It opens the port (retrying with backoff while
    /// the device is missing), runs the init sequence, sweeps the stores and then
    /// serves requests and URCs until the last handle is dropped.
    pub fn spawn(
        cfg: ModemConfig,
        connector: Arc<dyn Connector>,
        persist: Arc<dyn Persist>,
    ) -> ModemHandle {
        let (tx, rx) = mpsc::channel(64);
        let (events, _) = broadcast::channel(1024);
        let (up_tx, up) = watch::channel(false);
        let mut st = ModemStatus::new(&cfg.name, &connector.describe());
        st.recovery_enabled = cfg.recovery.enabled;
        let status = Arc::new(Mutex::new(st));
        let handle = ModemHandle {
            name: cfg.name.clone().into(),
            tx,
            events: events.clone(),
            status: status.clone(),
            up,
        };
        let actor = Actor::new(cfg, connector, persist, rx, events, status, up_tx);
        tokio::spawn(actor.run());
        handle
    }

    /// The modem's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Subscribe to this modem's events.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The current status (no round trip to the port).
    pub fn status(&self) -> ModemStatus {
        let mut s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        s.queue = self.tx.max_capacity() - self.tx.capacity();
        s
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, ModemError>>) -> Request,
    ) -> Result<T, ModemError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| ModemError::Shutdown(self.name.to_string()))?;
        rx.await
            .map_err(|_| ModemError::Shutdown(self.name.to_string()))?
    }

    /// Send a raw AT command (`AT+CSQ`). A final error result is an `Err`.
    pub async fn at(&self, command: &str) -> Result<AtResponse, ModemError> {
        self.call(|reply| Request::At {
            command: command.to_owned(),
            timeout: None,
            reply,
        })
        .await
    }

    /// Like [`ModemHandle::at`] with a specific timeout (e.g. `AT+COPS=?`, 60 s).
    pub async fn at_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<AtResponse, ModemError> {
        self.call(|reply| Request::At {
            command: command.to_owned(),
            timeout: Some(timeout),
            reply,
        })
        .await
    }

    /// Send an SMS (split into parts as needed).
    pub async fn send_sms(&self, to: &str, text: &str) -> Result<SendResult, ModemError> {
        self.send_sms_with(to, text, SendOptions::default()).await
    }

    /// Send an SMS with options.
    pub async fn send_sms_with(
        &self,
        to: &str,
        text: &str,
        options: SendOptions,
    ) -> Result<SendResult, ModemError> {
        self.call(|reply| Request::SendSms {
            to: to.to_owned(),
            text: text.to_owned(),
            options,
            reply,
        })
        .await
    }

    /// Start a USSD session and wait for the reply (one session at a time; a second
    /// caller waits its turn).
    pub async fn ussd(&self, code: &str) -> Result<UssdReply, ModemError> {
        self.call(|reply| Request::Ussd {
            code: code.to_owned(),
            reply,
        })
        .await
    }

    /// Answer a USSD menu (the last reply had status 1).
    pub async fn ussd_reply(&self, text: &str) -> Result<UssdReply, ModemError> {
        self.call(|reply| Request::UssdReply {
            text: text.to_owned(),
            reply,
        })
        .await
    }

    /// Cancel the USSD session (`AT+CUSD=2`).
    pub async fn ussd_cancel(&self) -> Result<(), ModemError> {
        self.call(|reply| Request::UssdCancel { reply }).await
    }

    /// A fresh signal reading (`AT+CSQ`).
    pub async fn signal(&self) -> Result<Signal, ModemError> {
        self.call(|reply| Request::Signal { reply }).await
    }

    /// Identity read at init.
    pub fn info(&self) -> ModemInfo {
        self.status().info
    }

    /// Sweep every store now (`AT+CMGL=4`); returns how many messages were handled.
    pub async fn sweep(&self) -> Result<usize, ModemError> {
        self.call(|reply| Request::Sweep { reply }).await
    }

    /// Turn automatic network recovery on or off for this modem.
    pub async fn set_recovery(&self, enabled: bool) {
        let _ = self.tx.send(Request::SetRecovery { enabled }).await;
    }

    /// True while the port is open and initialised.
    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Wait until the port is open and initialised (at once if it is), for callers
    /// that would rather wait out a USB drop than get a "disconnected" error. Gives up
    /// after `timeout` with that error.
    pub async fn wait_until_up(&self, timeout: Duration) -> Result<(), ModemError> {
        let mut rx = self.up.clone();
        let wait = async {
            loop {
                if *rx.borrow_and_update() {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(ModemError::Shutdown(self.name.to_string()));
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(ModemError::Disconnected {
                modem: self.name.to_string(),
                reason: format!(
                    "still not connected after {timeout:?}: {}",
                    self.status()
                        .link_error
                        .unwrap_or_else(|| "the port is not open".into())
                ),
            }),
        }
    }

    /// Close and reopen the port (re-running init).
    pub async fn reconnect(&self) {
        let _ = self.tx.send(Request::Reconnect).await;
    }

    /// Stop the actor and close the port now, even while other clones of the handle
    /// live on (a reload that reopens this modem must not leave the old actor
    /// receiving SMS nobody forwards). Returns when the port is closed; requests sent
    /// afterwards fail with "shut down".
    pub async fn shutdown(&self) {
        let (done, rx) = oneshot::channel();
        if self.tx.send(Request::Shutdown { done }).await.is_ok() {
            let _ = rx.await;
        }
    }
}
