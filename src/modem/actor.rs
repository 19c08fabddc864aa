//! The one task that owns a modem's port.
//!
//! It serves requests from the handles one at a time, recognises URCs anywhere
//! (between a command and its answer, before the `> ` prompt, inside a `+CMGL`
//! listing), runs the receive pipeline, probes health and re-opens the port after a
//! USB drop. Requests and background work alternate, so neither starves the other.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use super::config::{ModemConfig, Vendor};
use super::error::{ErrorCode, ModemError};
use super::handle::{AtResponse, ModemStatus, Request, SendOptions, SendResult};
use super::init;
use super::persist::Persist;
use super::receive::{self, Job};
use super::transport::{Connector, Port};
use super::wire::{self, Item, Urc, Wire};
use crate::event::{
    Event, LinkEvent, LinkKind, LinkState, NetworkEvent, NetworkState, RecoveryEvent, Signal,
    SignalEvent, SmsSent, StartupEvent, UssdEvent, UssdReply,
};

/// A message not out after this many rounds (one per start, reconnect or outbox
/// retry) is given up as failed.
pub(crate) const MAX_SEND_ROUNDS: u32 = 5;

/// A connection that ends sooner than this after `link: up` counts as a flap.
const FLAP_WINDOW: Duration = Duration::from_secs(60);

/// ESC: aborts a `> ` prompt (27.005 §3.5.1); gammu sends it blind at init.
const ESC: u8 = 0x1b;
/// Ctrl-Z: ends a PDU / text body.
const CTRL_Z: u8 = 0x1a;
/// How often an outage checks whether the device node is back (a `stat` or a small
/// sysfs scan), so a replug is picked up within this time, not after a backoff step.
const PRESENCE_CHECK: Duration = Duration::from_millis(200);

pub(crate) struct Conn {
    port: Box<dyn Port>,
    wire: Wire,
}

impl Conn {
    pub(crate) fn port_mut(&mut self) -> &mut Box<dyn Port> {
        &mut self.port
    }
    pub(crate) fn wire_mut(&mut self) -> &mut Wire {
        &mut self.wire
    }
}

struct PendingUssd {
    reply: Option<oneshot::Sender<Result<UssdReply, ModemError>>>,
    deadline: Instant,
}

pub(crate) struct Actor {
    pub(crate) cfg: ModemConfig,
    connector: Arc<dyn Connector>,
    pub(crate) persist: Arc<dyn Persist>,
    requests: mpsc::Receiver<Request>,
    events: broadcast::Sender<Event>,
    status: Arc<Mutex<ModemStatus>>,
    pub(crate) conn: Option<Conn>,
    /// URCs seen while a command ran, handled after it.
    pub(crate) urcs: VecDeque<Urc>,
    /// Background work: reads for +CMTI, sweeps.
    pub(crate) jobs: VecDeque<Job>,
    /// USSD requests waiting for the session to be free.
    ussd_waiting: VecDeque<(String, oneshot::Sender<Result<UssdReply, ModemError>>)>,
    ussd: Option<PendingUssd>,
    /// The last USSD reply asked for more input (status 1).
    ussd_open: bool,
    /// The memory `AT+CPMS` currently points mem1 at.
    pub(crate) mem1: Option<String>,
    /// Slots whose delete failed after the message was archived (skipped by sweeps).
    pub(crate) undeletable: std::collections::HashSet<(String, u32)>,
    next_probe: Instant,
    next_storage_check: Instant,
    next_expiry: Instant,
    probes: u64,
    last_signal_event: Option<Signal>,
    network: NetworkState,
    lost_since: Option<Instant>,
    recovery_attempt: u32,
    next_recovery: Option<Instant>,
    recovery_enabled: bool,
    down_since: Option<Instant>,
    concat_ref: u16,
    /// What rules were last told about the serial link: `down` is announced once per
    /// outage, however many reconnect attempts fail, and `up` once it is back.
    announced: Option<LinkState>,
    /// Why the link is down (requests refused meanwhile say so).
    down_reason: String,
    /// The device opened last (for `link: down` events).
    device: Option<String>,
    /// True while the port is open and initialised (`ModemHandle::wait_until_up`).
    up_tx: watch::Sender<bool>,
    /// Set once the SIM refused the configured PIN (or has one try left): the PIN is
    /// never sent again by this actor, so retries cannot lock the SIM.
    pub(crate) pin_refused: Option<String>,
    /// A command answered "SIM not inserted" (`+CME ERROR: 10`, `+CMS ERROR: 310`).
    sim_gone: bool,
    /// The next probe reads registration too (a `+ZPASR` hinted at a change).
    probe_full_next: bool,
    next_outbox_retry: Instant,
    /// When the link last came up (to spot a link that drops right after every init).
    up_since: Option<Instant>,
    /// The wait before reopening after a short-lived connection (doubles, capped).
    flap_backoff: Duration,
}

/// One step of automatic network recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RecoveryStep {
    /// An AT command (`AT+ZOPRT=5`).
    At(String),
    /// A program, argv (`uhubctl -a cycle -l 1-1`).
    Run(Vec<String>),
}

/// Run a recovery program (never through a shell) with the modem's name and device in
/// `ATMATE_MODEM` / `ATMATE_DEVICE`; `ok`, or what went wrong (exit status and the
/// first line of its stderr). Killed after 2 minutes.
async fn run_program(argv: &[String], modem: &str, device: &str) -> String {
    let Some((prog, args)) = argv.split_first() else {
        return "no program given".into();
    };
    let mut cmd = tokio::process::Command::new(prog);
    // The PIN (and anything named like a credential) stays out of child programs.
    for k in crate::secret::secret_env_names() {
        cmd.env_remove(k);
    }
    let child = cmd
        .args(args)
        .env("ATMATE_MODEM", modem)
        .env("ATMATE_DEVICE", device)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => return format!("cannot start {prog}: {e}"),
    };
    match tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await {
        Err(_) => format!("{prog} did not finish within 2 minutes; killed"),
        Ok(Err(e)) => format!("{prog}: {e}"),
        Ok(Ok(out)) if out.status.success() => "ok".into(),
        Ok(Ok(out)) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("").trim();
            if first.is_empty() {
                format!("{prog} failed ({})", out.status)
            } else {
                format!("{prog} failed ({}): {first}", out.status)
            }
        }
    }
}

/// Aborts a background task when dropped (the data interface watcher ends with the
/// actor, also when the actor's own task is aborted).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Wake {
    Request(Option<Request>),
    Bytes(std::io::Result<usize>),
    Timer,
}

impl Actor {
    pub(crate) fn new(
        cfg: ModemConfig,
        connector: Arc<dyn Connector>,
        persist: Arc<dyn Persist>,
        requests: mpsc::Receiver<Request>,
        events: broadcast::Sender<Event>,
        status: Arc<Mutex<ModemStatus>>,
        up_tx: watch::Sender<bool>,
    ) -> Actor {
        let now = Instant::now();
        let recovery_enabled = cfg.recovery.enabled;
        let cfg_reconnect_min = cfg.reconnect_min;
        // A per-process start value, so references differ across restarts.
        let concat_ref = (std::process::id() as u16).wrapping_mul(31);
        Actor {
            cfg,
            connector,
            persist,
            requests,
            events,
            status,
            conn: None,
            urcs: VecDeque::new(),
            jobs: VecDeque::new(),
            ussd_waiting: VecDeque::new(),
            ussd: None,
            ussd_open: false,
            mem1: None,
            undeletable: Default::default(),
            next_probe: now,
            next_storage_check: now,
            next_expiry: now,
            probes: 0,
            last_signal_event: None,
            network: NetworkState::Unknown,
            lost_since: None,
            recovery_attempt: 0,
            next_recovery: None,
            recovery_enabled,
            down_since: None,
            concat_ref,
            announced: None,
            down_reason: "the port is not open yet".into(),
            device: None,
            up_tx,
            pin_refused: None,
            sim_gone: false,
            probe_full_next: false,
            next_outbox_retry: now,
            up_since: None,
            flap_backoff: cfg_reconnect_min,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.cfg.name
    }

    pub(crate) fn emit(&self, e: Event) {
        tracing::debug!(modem = %self.cfg.name, kind = e.kind(), "event");
        let _ = self.events.send(e);
    }

    pub(crate) fn set_status(&self, f: impl FnOnce(&mut ModemStatus)) {
        let mut s = self.status.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s);
    }

    /// The actor's life: connect, serve, reconnect, until every handle is gone.
    pub(crate) async fn run(mut self) {
        // The data interface watcher lives exactly as long as the actor.
        let _data_watch = self.cfg.data_interface.clone().map(|iface| {
            AbortOnDrop(tokio::spawn(super::datalink::watch(
                super::datalink::DataWatch {
                    modem: self.cfg.name.clone(),
                    interface: iface,
                    net_root: self.cfg.net_root.clone(),
                    every: self.cfg.data_poll_interval,
                },
                self.events.clone(),
                self.status.clone(),
            )))
        });
        let mut first = true;
        loop {
            if self.conn.is_none() {
                if !self.connect_loop(first).await {
                    break;
                }
                first = false;
            }
            if !self.serve_once().await {
                break;
            }
        }
        tracing::info!(modem = %self.cfg.name, "modem actor stopped");
    }

    /// Open the port (with capped exponential backoff), init, sweep. While the port is
    /// missing, requests are answered with a clear error. Returns false on shutdown.
    ///
    /// Every attempt waits at least `reconnect_min`, so a connector that fails at once
    /// or a port that reads EOF at once cannot spin. A failure is logged at `warn` when
    /// it is new and at `debug` when it repeats, so a missing stick costs one log line
    /// per cause, not one per attempt.
    async fn connect_loop(&mut self, first: bool) -> bool {
        let mut backoff = self.cfg.reconnect_min;
        let mut last_logged: Option<String> = None;
        // A stick that drops again right after every init (a flaky hub, a dying
        // stick) would otherwise be reopened at once, every time: after a short-lived
        // connection, wait first, longer each time, until one lasts.
        match self.up_since.take() {
            Some(t) if t.elapsed() < FLAP_WINDOW => {
                let wait = self.flap_backoff;
                self.flap_backoff = (wait * 2).min(self.cfg.reconnect_max);
                tracing::debug!(modem = %self.cfg.name, ?wait, "the link was up only briefly; waiting before reopening");
                if !self.wait_refusing(wait, false).await {
                    return false;
                }
            }
            Some(_) => self.flap_backoff = self.cfg.reconnect_min,
            None => {}
        }
        loop {
            self.sim_gone = false;
            let failure = match self.connector.connect().await {
                Ok(opened) => {
                    if last_logged.is_none() {
                        tracing::info!(modem = %self.cfg.name, device = %opened.device, "port open");
                    } else {
                        tracing::debug!(modem = %self.cfg.name, device = %opened.device, "port open");
                    }
                    self.device = Some(opened.device.clone());
                    self.conn = Some(Conn {
                        // A new framer per connection: half a line from before the drop
                        // must not glue onto the first answer of the new port.
                        port: opened.port,
                        wire: Wire::new(),
                    });
                    match self.initialise().await {
                        Ok(()) => {
                            self.announce_up(&opened.device, first);
                            return true;
                        }
                        Err(e) => {
                            self.conn = None;
                            if !e.is_transient() {
                                // The port answers but init cannot succeed (wrong PIN,
                                // SIM missing, no AT on this port): retry slowly. The
                                // PIN itself is never retried (see `init::sim_ready`).
                                backoff = self.cfg.reconnect_max;
                            }
                            format!("init failed: {e}")
                        }
                    }
                }
                Err(e) => e.to_string(),
            };
            if last_logged.as_deref() != Some(failure.as_str()) {
                tracing::warn!(modem = %self.cfg.name, error = %failure, retry_in = ?backoff, "modem not available; retrying with backoff");
                last_logged = Some(failure.clone());
            } else {
                tracing::debug!(modem = %self.cfg.name, error = %failure, retry_in = ?backoff, "modem still not available");
            }
            self.announce_down(&failure);
            if !self.wait_refusing(backoff, true).await {
                return false;
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    /// Wait `d` while the port is down, answering requests with the reason (a
    /// `reconnect` request ends the wait early, and so does the device reappearing
    /// when `watch_device` is set and the connector can tell). Returns false on
    /// shutdown.
    async fn wait_refusing(&mut self, d: Duration, watch_device: bool) -> bool {
        let until = Instant::now() + d;
        let absent_at_start = watch_device && self.connector.present() == Some(false);
        let mut check = tokio::time::interval(PRESENCE_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = check.tick(), if absent_at_start => {
                    if self.connector.present() == Some(true) {
                        tracing::debug!(modem = %self.cfg.name, "the device is back; reopening now");
                        return true;
                    }
                }
                req = self.requests.recv() => match req {
                    None => return false,
                    Some(Request::Reconnect) => return true,
                    Some(Request::Shutdown { done }) => {
                        self.requests.close();
                        let _ = done.send(());
                        return false;
                    }
                    Some(r @ Request::SetRecovery { .. }) => {
                        self.handle_request(r).await;
                    }
                    Some(r) => self.refuse(r),
                },
                _ = tokio::time::sleep_until(until) => return true,
            }
        }
    }

    /// The port is open and initialised: tell rules (once) with the downtime.
    fn announce_up(&mut self, device: &str, first: bool) {
        let downtime = self.down_since.take().map(|t| t.elapsed());
        self.set_status(|s| {
            s.link = "up".into();
            s.device = Some(device.to_owned());
            s.link_error = None;
            s.since = Some(Utc::now().to_rfc3339());
        });
        self.announced = Some(LinkState::Up);
        self.up_since = Some(Instant::now());
        self.up_tx.send_replace(true);
        match downtime {
            Some(d) => tracing::info!(modem = %self.cfg.name, %device, downtime = ?d, "link up"),
            None => tracing::info!(modem = %self.cfg.name, %device, "link up"),
        }
        self.emit(Event::Link(LinkEvent {
            modem: self.cfg.name.clone(),
            state: LinkState::Up,
            via: LinkKind::Serial,
            device: Some(device.to_owned()),
            reason: None,
            downtime_ms: downtime.map(|d| d.as_millis() as u64),
        }));
        if first {
            self.emit(Event::Startup(StartupEvent {
                modem: self.cfg.name.clone(),
            }));
        }
    }

    /// The modem is not usable (port gone, cannot open, init failed): the status says
    /// why at once; rules hear `link: down` once per outage.
    fn announce_down(&mut self, reason: &str) {
        self.down_reason = reason.to_owned();
        let transition = self.announced != Some(LinkState::Down);
        self.set_status(|s| {
            s.link = "down".into();
            s.link_error = Some(reason.to_owned());
            s.ussd_session = false;
            s.network = NetworkState::Unknown;
            if transition {
                s.since = Some(Utc::now().to_rfc3339());
            }
        });
        if !transition {
            return;
        }
        self.announced = Some(LinkState::Down);
        self.down_since = Some(Instant::now());
        self.undeletable.clear();
        self.up_tx.send_replace(false);
        self.emit(Event::Link(LinkEvent {
            modem: self.cfg.name.clone(),
            state: LinkState::Down,
            via: LinkKind::Serial,
            device: self.device.clone(),
            reason: Some(reason.to_owned()),
            downtime_ms: None,
        }));
    }

    fn disconnected(&self, reason: &str) -> ModemError {
        ModemError::Disconnected {
            modem: self.cfg.name.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Answer a request while the port is down, saying why.
    fn refuse(&self, r: Request) {
        let e = self.disconnected(&self.down_reason);
        match r {
            Request::At { reply, .. } => drop(reply.send(Err(e))),
            Request::SendSms { reply, .. } => drop(reply.send(Err(e))),
            Request::Ussd { reply, .. } | Request::UssdReply { reply, .. } => {
                drop(reply.send(Err(e)))
            }
            Request::UssdCancel { reply } => drop(reply.send(Err(e))),
            Request::Signal { reply } => drop(reply.send(Err(e))),
            Request::Sweep { reply } => drop(reply.send(Err(e))),
            Request::SetRecovery { .. } | Request::Reconnect => {}
            Request::Shutdown { done } => drop(done.send(())),
        }
    }

    /// The port is gone: tell everyone, fail what waits on it.
    pub(crate) fn link_down(&mut self, reason: &str) {
        if self.conn.take().is_none() {
            return;
        }
        if self.announced == Some(LinkState::Up) {
            tracing::warn!(modem = %self.cfg.name, %reason, "link down");
        } else {
            // Lost again while (re)initialising: one line per attempt at most.
            tracing::debug!(modem = %self.cfg.name, %reason, "port lost during init");
        }
        self.mem1 = None;
        self.urcs.clear();
        // Jobs refer to SIM indices; the sweep after reconnect finds the messages again.
        self.jobs.clear();
        let e = self.disconnected(reason);
        if let Some(mut p) = self.ussd.take() {
            if let Some(r) = p.reply.take() {
                let _ = r.send(Err(e.clone()));
            }
        }
        for (_, r) in self.ussd_waiting.drain(..) {
            let _ = r.send(Err(e.clone()));
        }
        self.ussd_open = false;
        // Registration is unknown until the stick is back; a re-enumerated stick
        // searches first, which is a start, not a loss, so recovery starts afresh.
        self.network = NetworkState::Unknown;
        self.lost_since = None;
        self.recovery_attempt = 0;
        self.next_recovery = None;
        self.announce_down(reason);
    }

    /// Init sequence, identity, first readings, sweep, outbox resume.
    async fn initialise(&mut self) -> Result<(), ModemError> {
        init::run(self).await?;
        self.read_identity().await;
        self.probe(true).await;
        let now = Instant::now();
        self.next_probe = now + self.cfg.probe_interval;
        self.next_storage_check = now + self.cfg.storage_check_interval;
        self.jobs.push_back(Job::Sweep);
        // Fills `status.storage` at once (and drains anything the sweep could not).
        self.jobs.push_back(Job::StorageCheck);
        self.drain_background().await;
        self.resume_outbox().await;
        self.next_outbox_retry = Instant::now() + self.cfg.outbox_retry_interval;
        if self.conn.is_none() {
            // Lost again during the sweep: not up after all.
            return Err(self.disconnected(&self.down_reason));
        }
        Ok(())
    }

    async fn read_identity(&mut self) {
        let mut info = super::handle::ModemInfo::default();
        for (cmd, slot) in [
            ("AT+CGMI", &mut info.manufacturer),
            ("AT+CGMM", &mut info.model),
            ("AT+CGMR", &mut info.revision),
            ("AT+CGSN", &mut info.imei),
        ] {
            if let Ok(r) = self.exec(cmd, None).await {
                // Some firmware prefixes the answer (`+CGMI: ZTE`); strip it.
                *slot = r
                    .lines
                    .first()
                    .map(|l| wire::strip_prefix_any(l).to_owned());
            }
        }
        self.set_status(|s| s.info = info);
    }

    /// One turn of the main loop. Returns false on shutdown.
    async fn serve_once(&mut self) -> bool {
        if self.sim_gone && self.conn.is_some() {
            // The stick answers, but the SIM is gone: nothing useful works now. Reopen
            // and re-init, which polls `AT+CPIN?` with backoff until a SIM is back.
            self.sim_gone = false;
            self.set_status(|s| s.sim = Some("missing".into()));
            self.link_down("the SIM card was removed (+CME ERROR: 10 / +CMS ERROR: 310)");
            return true;
        }
        // URCs first: they may add jobs (a +CMTI means a read).
        while let Some(u) = self.urcs.pop_front() {
            self.handle_urc(u).await;
            if self.conn.is_none() {
                return true;
            }
        }
        // Alternate: one waiting request, then one background job.
        match self.requests.try_recv() {
            Ok(r) => {
                if !self.handle_request(r).await {
                    return false;
                }
                if let Some(job) = self.jobs.pop_front() {
                    self.run_job(job).await;
                }
                return true;
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return false,
            Err(mpsc::error::TryRecvError::Empty) => {}
        }
        if let Some(job) = self.jobs.pop_front() {
            self.run_job(job).await;
            return true;
        }
        // Items already framed (e.g. a URC that came in the same read as an `OK`)
        // must not wait for the next byte.
        self.drain_idle_items();
        if !self.urcs.is_empty() {
            return true;
        }
        // Idle: wait for a request, bytes or a timer.
        let deadline = self.next_deadline();
        let wake = {
            let Some(conn) = self.conn.as_mut() else {
                return true;
            };
            let mut buf = [0u8; 1024];
            tokio::select! {
                r = self.requests.recv() => Wake::Request(r),
                n = conn.port.read(&mut buf) => {
                    if let Ok(k) = n {
                        conn.wire.push(&buf[..k]);
                    }
                    Wake::Bytes(n)
                }
                _ = tokio::time::sleep_until(deadline) => Wake::Timer,
            }
        };
        match wake {
            Wake::Request(None) => return false,
            Wake::Request(Some(r)) => return self.handle_request(r).await,
            Wake::Bytes(Ok(0)) => {
                // tokio-serial returns Ok(0) forever after an unplug: that is EOF.
                self.link_down("the port closed (EOF): USB link lost");
            }
            Wake::Bytes(Err(e)) => self.link_down(&format!("read error: {e}")),
            Wake::Bytes(Ok(_)) => self.drain_idle_items(),
            Wake::Timer => self.timers().await,
        }
        true
    }

    /// Items that arrive while no command runs are URCs (or noise).
    fn drain_idle_items(&mut self) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        while let Some(item) = conn.wire.next_item() {
            match item {
                Item::Urc(u) => self.urcs.push_back(u),
                Item::Line(l) => {
                    tracing::debug!(modem = %self.cfg.name, line = %wire::mask_secrets(&l), "unsolicited line ignored")
                }
                Item::Final(f) => {
                    tracing::debug!(modem = %self.cfg.name, result = %f.text, "stray final result ignored")
                }
                Item::Prompt => {
                    tracing::debug!(modem = %self.cfg.name, "stray prompt")
                }
                Item::Echo(_) => {}
                Item::Garbage(n) => {
                    tracing::warn!(modem = %self.cfg.name, bytes = n, "discarded unreadable bytes")
                }
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut d = self
            .next_probe
            .min(self.next_storage_check)
            .min(self.next_expiry);
        if let Some(p) = &self.ussd {
            d = d.min(p.deadline);
        }
        if let Some(r) = self.next_recovery {
            d = d.min(r);
        }
        d.min(self.next_outbox_retry)
    }

    async fn timers(&mut self) {
        let now = Instant::now();
        if let Some(p) = &self.ussd {
            if p.deadline <= now {
                self.ussd_timeout().await;
            }
        }
        if self.next_probe <= now {
            self.next_probe = now + self.cfg.probe_interval;
            self.probe(false).await;
        }
        if self.next_storage_check <= now {
            self.next_storage_check = now + self.cfg.storage_check_interval;
            self.jobs.push_back(Job::StorageCheck);
        }
        if self.next_expiry <= now {
            // Checking once a minute (or at the timeout, if shorter) is plenty.
            self.next_expiry = now + self.cfg.multipart_timeout.min(Duration::from_secs(60));
            self.expire_fragments().await;
        }
        if let Some(r) = self.next_recovery {
            if r <= now {
                self.recovery_step().await;
            }
        }
        if self.next_outbox_retry <= now {
            self.next_outbox_retry = now + self.cfg.outbox_retry_interval;
            self.resume_outbox().await;
        }
    }

    async fn expire_fragments(&mut self) {
        // Wall clock, the same clock the store stamps fragments with.
        let cutoff = Utc::now()
            - chrono::Duration::from_std(self.cfg.multipart_timeout)
                .unwrap_or(chrono::Duration::minutes(10));
        match self.persist.expire_fragments(&self.cfg.name, cutoff).await {
            Ok(msgs) => {
                for m in msgs {
                    tracing::warn!(modem = %self.cfg.name, from = %m.from, parts = m.parts, "multipart message delivered incomplete after timeout");
                    self.emit(Event::Sms(m));
                }
            }
            Err(e) => {
                tracing::error!(modem = %self.cfg.name, error = %e, "expiring fragments failed")
            }
        }
    }

    /// Serve one request. Returns false on shutdown.
    async fn handle_request(&mut self, r: Request) -> bool {
        match r {
            Request::At {
                command,
                timeout,
                reply,
            } => {
                self.note_user_recovery(&command);
                let res = self.exec_user(&command, timeout).await;
                let _ = reply.send(res);
            }
            Request::SendSms {
                to,
                text,
                options,
                reply,
            } => {
                let res = self.send_sms(&to, &text, &options, None).await;
                let _ = reply.send(res);
            }
            Request::Ussd { code, reply } => {
                if self.ussd.is_some() {
                    self.ussd_waiting.push_back((code, reply));
                } else {
                    self.start_ussd(&code, reply, false).await;
                }
            }
            Request::UssdReply { text, reply } => {
                if self.ussd.is_some() {
                    let _ = reply.send(Err(ModemError::Invalid(
                        "a USSD request is still waiting for its reply".into(),
                    )));
                } else if !self.ussd_open {
                    let _ = reply.send(Err(ModemError::Invalid(
                        "no USSD menu is open (the last reply did not ask for input)".into(),
                    )));
                } else {
                    self.start_ussd(&text, reply, true).await;
                }
            }
            Request::UssdCancel { reply } => {
                let res = self.ussd_cancel().await;
                let _ = reply.send(res);
            }
            Request::Signal { reply } => {
                let res = self.read_signal().await;
                let _ = reply.send(res);
            }
            Request::Sweep { reply } => {
                let res = receive::sweep(self).await;
                let _ = reply.send(res);
            }
            Request::SetRecovery { enabled } => {
                if enabled != self.recovery_enabled {
                    tracing::info!(modem = %self.cfg.name, enabled, "automatic network recovery switched");
                }
                self.recovery_enabled = enabled;
                if !enabled {
                    self.next_recovery = None;
                } else if self.lost_since.is_some() && self.next_recovery.is_none() {
                    // Switched back on during a loss: carry on from where it stopped.
                    self.next_recovery = Some(Instant::now() + self.cfg.recovery.backoff);
                }
                self.set_status(|s| s.recovery_enabled = enabled);
            }
            Request::Reconnect => {
                // Asked for, not a flap: reopen at once.
                self.up_since = None;
                self.link_down("reconnect requested");
            }
            Request::Shutdown { done } => {
                tracing::info!(modem = %self.cfg.name, "modem shut down");
                self.conn = None;
                self.requests.close();
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    /// A user's raw command: normalised, executed, errors typed.
    async fn exec_user(
        &mut self,
        command: &str,
        timeout: Option<Duration>,
    ) -> Result<AtResponse, ModemError> {
        let cmd = wire::normalise_command(command)?;
        // Long-running commands get their own generous timeout.
        let timeout = timeout.or_else(|| {
            let up = cmd.to_ascii_uppercase();
            (up.starts_with("AT+COPS=?") || up.starts_with("AT+COPS="))
                .then(|| Duration::from_secs(120))
        });
        self.exec(&cmd, timeout).await
    }

    /// Execute one command line and collect its answer. URCs seen meanwhile are
    /// queued; echo is skipped; a timeout resynchronises the line.
    pub(crate) async fn exec(
        &mut self,
        cmd: &str,
        timeout: Option<Duration>,
    ) -> Result<AtResponse, ModemError> {
        self.exec_with_body(cmd, None, timeout).await
    }

    /// Execute a command that expects a `> ` prompt, then `body` and Ctrl-Z.
    pub(crate) async fn exec_with_body(
        &mut self,
        cmd: &str,
        body: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<AtResponse, ModemError> {
        let timeout = timeout.unwrap_or(self.cfg.command_timeout);
        let shown = wire::mask_secrets(cmd);
        let expect = wire::response_prefix(cmd);
        tracing::trace!(modem = %self.cfg.name, command = %shown, "→");
        let mut line = cmd.as_bytes().to_vec();
        line.push(b'\r');
        self.write(&line).await?;
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        let mut body_sent = false;
        loop {
            let item = match self.next_item(deadline).await {
                Ok(Some(item)) => item,
                Ok(None) => {
                    // Timeout: if a prompt may be open, ESC closes it; then resync.
                    self.resync(body.is_some() && !body_sent).await;
                    return Err(ModemError::Timeout {
                        command: shown,
                        timeout,
                    });
                }
                Err(e) => return Err(e),
            };
            match item {
                Item::Echo(_) => {}
                Item::Prompt => match body {
                    Some(b) if !body_sent => {
                        let mut out = b.to_vec();
                        out.push(CTRL_Z);
                        self.write(&out).await?;
                        body_sent = true;
                    }
                    _ => {
                        // A prompt nobody asked for: close it so the line is usable.
                        self.write(&[ESC]).await?;
                    }
                },
                Item::Urc(u) => {
                    // A line that looks like a URC but is the answer we wait for
                    // (`+CREG: 2,1,…` to `AT+CREG?`) belongs to the response.
                    match wire::urc_as_response(&u, expect.as_deref()) {
                        Some(l) => lines.push(l),
                        None => self.urcs.push_back(u),
                    }
                }
                Item::Line(l) => lines.push(l),
                Item::Garbage(n) => {
                    tracing::warn!(modem = %self.cfg.name, bytes = n, command = %shown, "discarded unreadable bytes");
                }
                Item::Final(f) => {
                    tracing::trace!(modem = %self.cfg.name, result = %f.text, "←");
                    if f.ok {
                        return Ok(AtResponse {
                            lines,
                            result: f.text,
                        });
                    }
                    if matches!(f.code, Some(ErrorCode::Cme(10)) | Some(ErrorCode::Cms(310))) {
                        self.sim_gone = true;
                    }
                    return Err(ModemError::Command {
                        command: shown,
                        result: f.describe(),
                        code: f.code,
                    });
                }
            }
        }
    }

    /// Write bytes without waiting for an answer (init's blind ESC).
    pub(crate) async fn exec_raw_blind(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        self.write(bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ModemError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(self.disconnected("the port is not open"));
        };
        let r = async {
            conn.port.write_all(bytes).await?;
            conn.port.flush().await
        }
        .await;
        if let Err(e) = r {
            // Writes to an unplugged stick fail with EIO; don't match on the kind.
            let reason = format!("write error: {e}");
            self.link_down(&reason);
            return Err(self.disconnected(&reason));
        }
        Ok(())
    }

    /// The next framed item, reading as needed, or `None` at the deadline.
    async fn next_item(&mut self, deadline: Instant) -> Result<Option<Item>, ModemError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Err(self.disconnected("the port is not open"));
            };
            if let Some(item) = conn.wire.next_item() {
                return Ok(Some(item));
            }
            let mut buf = [0u8; 1024];
            let r = tokio::time::timeout_at(deadline, conn.port.read(&mut buf)).await;
            match r {
                Err(_) => return Ok(None),
                Ok(Ok(0)) => {
                    let reason = "the port closed (EOF): USB link lost";
                    self.link_down(reason);
                    return Err(self.disconnected(reason));
                }
                Ok(Ok(n)) => conn.wire.push(&buf[..n]),
                Ok(Err(e)) => {
                    let reason = format!("read error: {e}");
                    self.link_down(&reason);
                    return Err(self.disconnected(&reason));
                }
            }
        }
    }

    /// After a timeout: close a possible prompt, drop half-read input, and check the
    /// modem answers `AT` again, so the next command starts clean.
    async fn resync(&mut self, prompt_open: bool) {
        tracing::warn!(modem = %self.cfg.name, "command timed out; resynchronising the line");
        // Whatever was read from here on is about to be dropped; the store sweep
        // must re-check which memory is selected.
        self.mem1 = None;
        if prompt_open {
            let _ = self.write(&[ESC]).await;
        }
        if let Some(c) = self.conn.as_mut() {
            c.wire.clear_partial();
        }
        // A late answer to the command that timed out may still come. Probe with `AT`
        // until an `OK` is followed by a quiet line, so the next command does not take
        // a stale `OK` for its own answer. URCs met meanwhile are kept.
        for _ in 0..3 {
            if self.write(b"AT\r").await.is_err() {
                return;
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut got_final = false;
            while let Ok(Some(item)) = self.next_item(deadline).await {
                match item {
                    Item::Urc(u) => self.urcs.push_back(u),
                    Item::Final(_) => {
                        got_final = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !got_final {
                continue;
            }
            let quiet = Instant::now() + Duration::from_millis(300);
            let mut stray = false;
            while let Ok(Some(item)) = self.next_item(quiet).await {
                match item {
                    Item::Urc(u) => self.urcs.push_back(u),
                    _ => stray = true,
                }
            }
            if !stray {
                return;
            }
        }
    }

    // ----- URCs -----

    async fn handle_urc(&mut self, u: Urc) {
        match u {
            Urc::NewMessage { mem, index } => self.jobs.push_back(Job::Read { mem, index }),
            Urc::NewReport { mem, index } => self.jobs.push_back(Job::ReadReport { mem, index }),
            Urc::Deliver { pdu } => receive::direct_deliver(self, &pdu).await,
            Urc::Report { pdu } => receive::direct_report(self, &pdu).await,
            Urc::Ussd { status, text, dcs } => self.ussd_arrived(status, text, dcs),
            Urc::Registration { stat, lac, ci, .. } => {
                self.network_changed(wire::stat_to_state(stat), lac, ci, None)
            }
            Urc::Tech(tech) => {
                // `+ZPASR: "No Service"` while registered, or a real technology while
                // not: registration probably changed. Some firmware sends no `+CREG`
                // URC, so ask now instead of trusting the hint.
                let no_service = wire::is_no_service(&tech);
                let registered = matches!(
                    self.network,
                    NetworkState::Registered | NetworkState::Roaming
                );
                if no_service == registered {
                    self.probe_full_next = true;
                    self.next_probe = Instant::now();
                }
                self.set_status(|s| s.tech = (!no_service).then_some(tech));
            }
            Urc::Ring { call_type } => self.emit(Event::Call(crate::event::CallEvent {
                modem: self.cfg.name.clone(),
                from: None,
                call_type,
            })),
            Urc::Clip { number } => self.emit(Event::Call(crate::event::CallEvent {
                modem: self.cfg.name.clone(),
                from: Some(number),
                call_type: None,
            })),
            Urc::Other(line) => {
                tracing::debug!(modem = %self.cfg.name, line = %wire::mask_secrets(&line), "URC ignored");
            }
        }
    }

    // ----- USSD -----

    async fn start_ussd(
        &mut self,
        text: &str,
        reply: oneshot::Sender<Result<UssdReply, ModemError>>,
        continuing: bool,
    ) {
        let cmd = match wire::ussd_command(text, self.cfg.vendor) {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        if !continuing && self.ussd_open {
            // A menu left open blocks new sessions on many networks: close it first.
            let _ = self.exec("AT+CUSD=2", None).await;
            self.ussd_open = false;
        }
        match self.exec(&cmd, None).await {
            Ok(_) => {
                self.ussd = Some(PendingUssd {
                    reply: Some(reply),
                    deadline: Instant::now() + self.cfg.ussd_timeout,
                });
                self.set_status(|s| s.ussd_session = true);
            }
            Err(e) => {
                let _ = reply.send(Err(e));
                self.next_ussd().await;
            }
        }
    }

    fn ussd_arrived(&mut self, status: u8, text: String, dcs: u8) {
        let reply = UssdReply { text, status, dcs };
        let network_initiated = self.ussd.is_none();
        self.ussd_open = status == 1;
        if let Some(mut p) = self.ussd.take() {
            if let Some(r) = p.reply.take() {
                let _ = r.send(Ok(reply.clone()));
            }
        }
        self.set_status(|s| s.ussd_session = status == 1);
        self.emit(Event::Ussd(UssdEvent {
            modem: self.cfg.name.clone(),
            text: reply.text,
            status: reply.status,
            dcs: reply.dcs,
            network_initiated,
        }));
        if !self.ussd_waiting.is_empty() {
            self.jobs.push_back(Job::NextUssd);
        }
    }

    pub(crate) async fn next_ussd(&mut self) {
        if self.ussd.is_some() {
            return;
        }
        if let Some((code, reply)) = self.ussd_waiting.pop_front() {
            Box::pin(self.start_ussd(&code, reply, false)).await;
        }
    }

    async fn ussd_timeout(&mut self) {
        let Some(mut p) = self.ussd.take() else {
            return;
        };
        tracing::warn!(modem = %self.cfg.name, timeout = ?self.cfg.ussd_timeout, "USSD reply did not come; cancelling the session");
        // Some firmware answers ERROR when no session is open; that is fine.
        let _ = self.exec("AT+CUSD=2", None).await;
        self.ussd_open = false;
        self.set_status(|s| s.ussd_session = false);
        if let Some(r) = p.reply.take() {
            let _ = r.send(Err(ModemError::Timeout {
                command: "USSD".into(),
                timeout: self.cfg.ussd_timeout,
            }));
        }
        self.next_ussd().await;
    }

    async fn ussd_cancel(&mut self) -> Result<(), ModemError> {
        let r = self.exec("AT+CUSD=2", None).await;
        self.ussd_open = false;
        if let Some(mut p) = self.ussd.take() {
            if let Some(r) = p.reply.take() {
                let _ = r.send(Err(ModemError::Invalid("USSD session cancelled".into())));
            }
        }
        self.set_status(|s| s.ussd_session = false);
        self.next_ussd().await;
        // oFono treats the cancel result on Qualcomm/ZTE as success either way.
        match r {
            Ok(_) | Err(ModemError::Command { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    // ----- sending -----

    /// Outbox row first (durable), then `AT+CMGS` part by part, each part marked
    /// "sending" before and "sent" after, so a crash in between leaves it in doubt
    /// rather than forgotten. Transient errors are retried with backoff within this
    /// round; a message still not out after the round stays queued and the outbox retry
    /// tries again, for [`MAX_SEND_ROUNDS`] rounds. Permanent errors are reported at once.
    pub(crate) async fn send_sms(
        &mut self,
        to: &str,
        text: &str,
        options: &SendOptions,
        resume: Option<super::persist::PendingOutgoing>,
    ) -> Result<SendResult, ModemError> {
        let reference = match &resume {
            Some(p) => p.reference.unwrap_or(0),
            None => {
                self.concat_ref = self.concat_ref.wrapping_add(1);
                self.concat_ref
            }
        };
        let parts = wire::build_submit(to, text, options, reference)?;
        let total = parts.len() as u16;
        let (id, mut done, round): (i64, Vec<(u8, u8)>, u32) = match &resume {
            Some(p) => {
                let round = match self.persist.outbox_begin_attempt(p.id).await {
                    Ok(Some(n)) => n,
                    _ => p.attempts + 1,
                };
                (p.id, p.sent_parts.clone(), round)
            }
            None => {
                let id = self
                    .persist
                    .outbox_enqueue(&self.cfg.name, to, text, total, Some(reference))
                    .await
                    .map_err(|e| ModemError::Persist(e.to_string()))?;
                (id, Vec::new(), 1)
            }
        };
        let mut tries = 0;
        let mut backoff = Duration::from_secs(2);
        for (i, (tpdu_len, hex)) in parts.iter().enumerate() {
            let seq = (i + 1) as u8;
            if done.iter().any(|(s, _)| *s == seq) {
                continue;
            }
            loop {
                tries += 1;
                if let Err(e) = self.persist.outbox_part_sending(id, seq).await {
                    // Without the mark a crash could not be told apart from "never
                    // sent"; still better to send than to hold the message back.
                    tracing::warn!(modem = %self.cfg.name, id, seq, error = %e, "could not mark the part as sending");
                }
                let cmd = format!("AT+CMGS={tpdu_len}");
                let err = match self
                    .exec_with_body(&cmd, Some(hex.as_bytes()), Some(self.cfg.send_timeout))
                    .await
                {
                    Ok(r) => {
                        let mr = r
                            .lines
                            .iter()
                            .find_map(|l| wire::parse_cmgs(l))
                            .unwrap_or(0);
                        if let Err(e) = self.persist.outbox_part_sent(id, seq, mr).await {
                            tracing::error!(modem = %self.cfg.name, id, seq, error = %e, "could not record a sent part");
                        }
                        done.push((seq, mr));
                        break;
                    }
                    Err(e) => e,
                };
                if self.conn.is_none() {
                    // The stick dropped off mid-message: whether the SMSC got this part
                    // is unknown. The message stays queued and is completed (same
                    // reference, remaining parts) after the reconnect.
                    let _ = self
                        .persist
                        .outbox_failed(id, &err.to_string(), false)
                        .await;
                    return Err(ModemError::Disconnected {
                        modem: self.cfg.name.clone(),
                        reason: format!(
                            "{}; message {id} stays in the outbox ({} of {total} parts sent) and is completed after the reconnect",
                            self.down_reason,
                            done.len()
                        ),
                    });
                }
                if err.is_transient() && tries < self.cfg.send_attempts {
                    tracing::warn!(modem = %self.cfg.name, error = %err, ?backoff, "send failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                let permanent = !err.is_transient() || round >= MAX_SEND_ROUNDS;
                let _ = self
                    .persist
                    .outbox_failed(id, &err.to_string(), permanent)
                    .await;
                if permanent {
                    let refs = done.iter().map(|(_, mr)| *mr).collect();
                    self.emit(self.sent_event(id, to, text, total, refs, Some(err.to_string())));
                    return Err(err);
                }
                tracing::warn!(modem = %self.cfg.name, id, round, error = %err, "send failed; the message stays queued for the outbox retry");
                return Err(ModemError::Command {
                    command: format!("{cmd} (message {id}, round {round} of {MAX_SEND_ROUNDS}; queued for retry)"),
                    result: match &err {
                        ModemError::Command { result, .. } => result.clone(),
                        other => other.to_string(),
                    },
                    code: match &err {
                        ModemError::Command { code, .. } => *code,
                        _ => None,
                    },
                });
            }
        }
        let _ = self.persist.outbox_sent(id).await;
        let references: Vec<u8> = done.iter().map(|(_, mr)| *mr).collect();
        self.set_status(|s| s.sent += 1);
        self.emit(self.sent_event(id, to, text, total, references.clone(), None));
        Ok(SendResult {
            id,
            parts: total,
            references,
        })
    }

    /// Send what the outbox still holds: after a restart (a crash mid-message included),
    /// after a reconnect, and every `outbox_retry_interval`.
    /// The `sms_sent` event: `sent`, or `failed` with the error.
    fn sent_event(
        &self,
        id: i64,
        to: &str,
        text: &str,
        parts: u16,
        references: Vec<u8>,
        error: Option<String>,
    ) -> Event {
        Event::SmsSent(SmsSent {
            modem: self.cfg.name.clone(),
            id,
            to: to.to_owned(),
            text: text.to_owned(),
            parts,
            state: if error.is_some() { "failed" } else { "sent" }.into(),
            references,
            error,
        })
    }

    async fn resume_outbox(&mut self) {
        if self.conn.is_none() {
            return;
        }
        let pending = match self.persist.outbox_pending(&self.cfg.name).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(modem = %self.cfg.name, error = %e, "reading the outbox failed");
                return;
            }
        };
        for p in pending {
            let in_doubt = self.persist.outbox_in_doubt(p.id).await.unwrap_or_default();
            if !in_doubt.is_empty() {
                // atmate stopped between `AT+CMGS` and its answer: the SMSC may or may
                // not have these parts. Sending again risks a doubled part (phones
                // usually drop a repeated segment); skipping risks a hole. Resend.
                tracing::warn!(modem = %self.cfg.name, id = p.id, parts = ?in_doubt, "parts were being sent when atmate stopped; sending them again (the recipient may see them twice)");
            }
            tracing::info!(modem = %self.cfg.name, id = p.id, to = %p.to, sent = p.sent_parts.len(), "resuming an unsent message");
            let (to, text) = (p.to.clone(), p.text.clone());
            if let Err(e) = self
                .send_sms(&to, &text, &SendOptions::default(), Some(p))
                .await
            {
                tracing::warn!(modem = %self.cfg.name, error = %e, "resumed message not sent");
            }
            if self.conn.is_none() {
                return;
            }
        }
    }

    // ----- health -----

    async fn read_signal(&mut self) -> Result<Signal, ModemError> {
        let r = self.exec("AT+CSQ", None).await?;
        let csq = r
            .lines
            .iter()
            .find_map(|l| wire::parse_csq(l))
            .ok_or_else(|| ModemError::Protocol {
                command: "AT+CSQ".into(),
                detail: format!("no +CSQ line in {:?}", r.lines),
            })?;
        let s = Signal::from_csq(csq);
        self.signal_reading(s);
        Ok(s)
    }

    /// Signal events with hysteresis: only when bars change, or dBm moves by 6 or more.
    fn signal_reading(&mut self, s: Signal) {
        self.set_status(|st| st.signal = Some(s));
        let changed = match self.last_signal_event {
            None => true,
            Some(prev) => {
                prev.bars != s.bars
                    || match (prev.dbm, s.dbm) {
                        (Some(a), Some(b)) => (a - b).abs() >= 6,
                        (a, b) => a.is_some() != b.is_some(),
                    }
            }
        };
        if changed {
            self.last_signal_event = Some(s);
            self.emit(Event::Signal(SignalEvent {
                modem: self.cfg.name.clone(),
                csq: s.csq,
                dbm: s.dbm,
                bars: s.bars,
            }));
        }
    }

    /// The periodic probe: `+CSQ` every time; `+CREG?`, `+COPS?` and (ZTE) `+ZPAS?`
    /// every eighth time or when asked, because `+CREG` URCs report changes anyway.
    /// With the `+CPMS?` check every minute that is 3.75 commands a minute when idle.
    async fn probe(&mut self, full: bool) {
        self.probes += 1;
        if let Err(e) = self.read_signal().await {
            tracing::debug!(modem = %self.cfg.name, error = %e, "signal probe failed");
        }
        let full = full || std::mem::take(&mut self.probe_full_next);
        // Every 8th probe (4 min at the default 30 s): with +CSQ every probe and the
        // +CPMS? check every minute that keeps an idle stick under 4 commands a minute.
        if full || self.probes.is_multiple_of(8) || self.network != NetworkState::Registered {
            if let Ok(r) = self.exec("AT+CREG?", None).await {
                if let Some((stat, lac, ci)) = r.lines.iter().find_map(|l| wire::parse_creg(l)) {
                    let op = if matches!(
                        wire::stat_to_state(stat),
                        NetworkState::Registered | NetworkState::Roaming
                    ) {
                        self.exec("AT+COPS?", None)
                            .await
                            .ok()
                            .and_then(|r| r.lines.iter().find_map(|l| wire::parse_cops(l)))
                    } else {
                        None
                    };
                    self.network_changed(wire::stat_to_state(stat), lac, ci, op);
                }
            }
            if self.cfg.vendor == Vendor::Zte {
                if let Ok(r) = self.exec("AT+ZPAS?", None).await {
                    if let Some(t) = r.lines.iter().find_map(|l| wire::parse_zpas(l)) {
                        self.set_status(|s| s.tech = Some(t));
                    }
                }
            }
        }
    }

    fn network_changed(
        &mut self,
        state: NetworkState,
        lac: Option<String>,
        ci: Option<String>,
        operator: Option<String>,
    ) {
        // A stick that drops off the network reports "searching" (stat 2), not
        // "not searching" (0); to rules both mean the network is lost.
        let state = match (self.network, state) {
            (
                NetworkState::Registered | NetworkState::Roaming | NetworkState::Lost,
                NetworkState::Searching,
            ) => NetworkState::Lost,
            (_, s) => s,
        };
        let op = operator.clone();
        self.set_status(|s| {
            s.network = state;
            if op.is_some() {
                s.operator = op;
            }
        });
        if state == self.network {
            return;
        }
        let prev = self.network;
        self.network = state;
        if prev == NetworkState::Unknown
            && matches!(state, NetworkState::Registered | NetworkState::Roaming)
        {
            // The first reading after (re)connecting: nothing changed for the user
            // (`atmate status` shows it); only a change is an event.
            tracing::info!(modem = %self.cfg.name, state = ?state, "network state");
            return;
        }
        let tech = self.status.lock().map(|s| s.tech.clone()).unwrap_or(None);
        tracing::info!(modem = %self.cfg.name, from = ?prev, to = ?state, "network state");
        self.emit(Event::Network(NetworkEvent {
            modem: self.cfg.name.clone(),
            state,
            operator,
            tech,
            lac,
            ci,
        }));
        match state {
            NetworkState::Registered | NetworkState::Roaming => {
                self.lost_since = None;
                self.recovery_attempt = 0;
                self.next_recovery = None;
                // Registration came back: poll sooner, so operator and signal are fresh.
                self.next_probe = self.next_probe.min(Instant::now() + Duration::from_secs(2));
            }
            NetworkState::Lost | NetworkState::Searching | NetworkState::Denied => {
                if self.lost_since.is_none() {
                    self.lost_since = Some(Instant::now());
                }
                if self.recovery_enabled && self.next_recovery.is_none() {
                    self.next_recovery = Some(Instant::now() + self.cfg.recovery.backoff);
                }
            }
            NetworkState::Unknown => {}
        }
    }

    /// A user's or a rule's own recovery command (`at: AT+ZOPRT=5` in a `network: lost`
    /// rule) postpones the automatic one by a backoff step, so the two do not pile up.
    fn note_user_recovery(&mut self, command: &str) {
        let up = command.trim().to_ascii_uppercase();
        let is_recovery = up.starts_with("AT+ZOPRT=")
            || up.starts_with("AT+CFUN=")
            || self
                .cfg
                .recovery
                .steps
                .iter()
                .any(|s| s.trim().eq_ignore_ascii_case(command.trim()));
        if let (true, Some(_)) = (is_recovery, self.next_recovery) {
            tracing::info!(modem = %self.cfg.name, command = %wire::mask_secrets(command), "a recovery command came from outside; automatic recovery waits a step");
            self.next_recovery = Some(Instant::now() + self.cfg.recovery.backoff);
        }
    }

    /// The recovery steps in order: the AT commands, then the configured program.
    fn recovery_plan(&self) -> Vec<RecoveryStep> {
        let mut v: Vec<RecoveryStep> = self
            .cfg
            .recovery
            .steps
            .iter()
            .map(|s| RecoveryStep::At(s.clone()))
            .collect();
        if let Some(argv) = self.cfg.recovery_command.clone().filter(|a| !a.is_empty()) {
            v.push(RecoveryStep::Run(argv));
        }
        v
    }

    /// One automatic recovery step: step `n` of the plan for attempt `n` (the last
    /// one repeats), then a growing pause (backoff × 2, 4, 8, capped at 8×), at most
    /// `max_attempts` steps per loss. Each step is a `recovery` event.
    async fn recovery_step(&mut self) {
        self.next_recovery = None;
        if !self.recovery_enabled
            || matches!(
                self.network,
                NetworkState::Registered | NetworkState::Roaming
            )
        {
            return;
        }
        let plan = self.recovery_plan();
        if plan.is_empty() || self.recovery_attempt >= self.cfg.recovery.max_attempts {
            if self.recovery_attempt == self.cfg.recovery.max_attempts {
                tracing::warn!(modem = %self.cfg.name, attempts = self.recovery_attempt, "automatic recovery gave up; waiting for the network");
                self.recovery_attempt += 1;
            }
            return;
        }
        let idx = (self.recovery_attempt as usize).min(plan.len() - 1);
        self.recovery_attempt += 1;
        let attempt = self.recovery_attempt;
        match plan[idx].clone() {
            RecoveryStep::At(step) => {
                tracing::info!(modem = %self.cfg.name, %step, attempt, "network recovery step");
                let result = match self.exec(&step, Some(Duration::from_secs(30))).await {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                };
                self.emit(Event::Recovery(RecoveryEvent {
                    modem: self.cfg.name.clone(),
                    step: wire::mask_secrets(&step),
                    attempt,
                    result,
                }));
            }
            RecoveryStep::Run(argv) => {
                // A program may take a while (a USB power cycle drops the link anyway):
                // it runs beside the actor, and its event comes when it ends.
                let shown = format!("run: {}", argv.join(" "));
                tracing::info!(modem = %self.cfg.name, step = %shown, attempt, "network recovery step");
                let (events, modem, device) = (
                    self.events.clone(),
                    self.cfg.name.clone(),
                    self.device.clone().unwrap_or_default(),
                );
                tokio::spawn(async move {
                    let result = run_program(&argv, &modem, &device).await;
                    if result != "ok" {
                        tracing::warn!(%modem, step = %shown, %result, "recovery program failed");
                    }
                    let _ = events.send(Event::Recovery(RecoveryEvent {
                        modem,
                        step: shown,
                        attempt,
                        result,
                    }));
                });
            }
        }
        let factor = 1u32 << self.recovery_attempt.min(3);
        self.next_recovery = Some(Instant::now() + self.cfg.recovery.backoff * factor);
        // Ask soon whether it worked.
        self.probe_full_next = true;
        self.next_probe = self.next_probe.min(Instant::now() + Duration::from_secs(5));
    }

    // ----- background jobs -----

    async fn run_job(&mut self, job: Job) {
        match job {
            Job::NextUssd => self.next_ussd().await,
            other => receive::run_job(self, other).await,
        }
    }

    /// Run queued background work to completion (used at init).
    async fn drain_background(&mut self) {
        loop {
            while let Some(u) = self.urcs.pop_front() {
                self.handle_urc(u).await;
            }
            let Some(job) = self.jobs.pop_front() else {
                break;
            };
            self.run_job(job).await;
            if self.conn.is_none() {
                break;
            }
        }
    }
}
