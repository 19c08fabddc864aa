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
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::config::{ModemConfig, Vendor};
use super::error::ModemError;
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

/// ESC: aborts a `> ` prompt (27.005 §3.5.1); gammu sends it blind at init.
const ESC: u8 = 0x1b;
/// Ctrl-Z: ends a PDU / text body.
const CTRL_Z: u8 = 0x1a;

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
    ) -> Actor {
        let now = Instant::now();
        let recovery_enabled = cfg.recovery.enabled;
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
    async fn connect_loop(&mut self, first: bool) -> bool {
        let mut backoff = self.cfg.reconnect_min;
        let mut last_logged: Option<String> = None;
        loop {
            match self.connector.connect().await {
                Ok(opened) => {
                    tracing::info!(modem = %self.cfg.name, device = %opened.device, "port open");
                    self.conn = Some(Conn {
                        port: opened.port,
                        wire: Wire::new(),
                    });
                    match self.initialise().await {
                        Ok(()) => {
                            let downtime = self.down_since.take().map(|t| t.elapsed());
                            self.set_status(|s| {
                                s.link = "up".into();
                                s.device = Some(opened.device.clone());
                                s.link_error = None;
                                s.since = Some(Utc::now().to_rfc3339());
                            });
                            self.emit(Event::Link(LinkEvent {
                                modem: self.cfg.name.clone(),
                                state: LinkState::Up,
                                via: LinkKind::Serial,
                                device: Some(opened.device.clone()),
                                reason: None,
                                downtime_ms: downtime.map(|d| d.as_millis() as u64),
                            }));
                            if first {
                                self.emit(Event::Startup(StartupEvent {
                                    modem: self.cfg.name.clone(),
                                }));
                            }
                            return true;
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            if last_logged.as_deref() != Some(msg.as_str()) {
                                tracing::error!(modem = %self.cfg.name, error = %msg, "init failed");
                                last_logged = Some(msg.clone());
                            }
                            self.set_status(|s| s.link_error = Some(msg));
                            if self.conn.is_some() && !e.is_transient() {
                                // The port answers but init cannot succeed (wrong PIN,
                                // SIM missing): keep the port and retry slowly, never
                                // hammering a PIN.
                                self.conn = None;
                                backoff = self.cfg.reconnect_max;
                            }
                            self.conn = None;
                        }
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    if last_logged.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(modem = %self.cfg.name, error = %msg, "cannot open modem; retrying with backoff");
                        last_logged = Some(msg.clone());
                    } else {
                        tracing::debug!(modem = %self.cfg.name, error = %msg, ?backoff, "still cannot open modem");
                    }
                    self.set_status(|s| {
                        s.link = "down".into();
                        s.link_error = Some(msg);
                    });
                }
            }
            // Wait, answering requests meanwhile.
            let until = Instant::now() + backoff;
            loop {
                tokio::select! {
                    req = self.requests.recv() => match req {
                        None => return false,
                        Some(Request::Reconnect) => break,
                        Some(r) => self.refuse(r, "the port is not open"),
                    },
                    _ = tokio::time::sleep_until(until) => break,
                }
            }
            backoff = (backoff * 2).min(self.cfg.reconnect_max);
        }
    }

    fn disconnected(&self, reason: &str) -> ModemError {
        ModemError::Disconnected {
            modem: self.cfg.name.clone(),
            reason: reason.to_owned(),
        }
    }

    fn refuse(&self, r: Request, reason: &str) {
        let e = self.disconnected(reason);
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
        }
    }

    /// The port is gone: tell everyone, fail what waits on it.
    pub(crate) fn link_down(&mut self, reason: &str) {
        if self.conn.take().is_none() {
            return;
        }
        tracing::warn!(modem = %self.cfg.name, %reason, "link down");
        self.down_since = Some(Instant::now());
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
        self.set_status(|s| {
            s.link = "down".into();
            s.link_error = Some(reason.to_owned());
            s.since = Some(Utc::now().to_rfc3339());
            s.ussd_session = false;
        });
        self.emit(Event::Link(LinkEvent {
            modem: self.cfg.name.clone(),
            state: LinkState::Down,
            via: LinkKind::Serial,
            device: None,
            reason: Some(reason.to_owned()),
            downtime_ms: None,
        }));
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
        self.drain_background().await;
        self.resume_outbox().await;
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
                *slot = r.lines.first().map(|l| wire::strip_prefix_any(l).to_owned());
            }
        }
        self.set_status(|s| s.info = info);
    }

    /// One turn of the main loop. Returns false on shutdown.
    async fn serve_once(&mut self) -> bool {
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
                    tracing::debug!(modem = %self.cfg.name, line = %l, "unsolicited line ignored")
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
        let mut d = self.next_probe.min(self.next_storage_check).min(self.next_expiry);
        if let Some(p) = &self.ussd {
            d = d.min(p.deadline);
        }
        if let Some(r) = self.next_recovery {
            d = d.min(r);
        }
        d
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
    }

    async fn expire_fragments(&mut self) {
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
            Err(e) => tracing::error!(modem = %self.cfg.name, error = %e, "expiring fragments failed"),
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
                self.recovery_enabled = enabled;
                if !enabled {
                    self.next_recovery = None;
                }
                self.set_status(|s| s.recovery_enabled = enabled);
            }
            Request::Reconnect => self.link_down("reconnect requested"),
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
            (up.starts_with("AT+COPS=?") || up.starts_with("AT+COPS=")).then(|| Duration::from_secs(120))
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
        if prompt_open {
            let _ = self.write(&[ESC]).await;
        }
        if let Some(c) = self.conn.as_mut() {
            c.wire.clear_partial();
        }
        let _ = self.write(b"AT\r").await;
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(Some(item)) = self.next_item(deadline).await {
            match item {
                Item::Urc(u) => self.urcs.push_back(u),
                Item::Final(_) => break,
                _ => {}
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
                self.set_status(|s| s.tech = Some(tech.clone()));
            }
            Urc::Ring { call_type } => {
                self.emit(Event::Call(crate::event::CallEvent {
                    modem: self.cfg.name.clone(),
                    from: None,
                    call_type,
                }))
            }
            Urc::Clip { number } => {
                self.emit(Event::Call(crate::event::CallEvent {
                    modem: self.cfg.name.clone(),
                    from: Some(number),
                    call_type: None,
                }))
            }
            Urc::Other(line) => {
                tracing::debug!(modem = %self.cfg.name, %line, "URC ignored");
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

    /// Outbox row first (durable), then `AT+CMGS` part by part; transient errors are
    /// retried with backoff, permanent ones reported.
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
        let (id, mut done): (i64, Vec<(u8, u8)>) = match &resume {
            Some(p) => (p.id, p.sent_parts.clone()),
            None => {
                let id = self
                    .persist
                    .outbox_enqueue(&self.cfg.name, to, text, total, Some(reference))
                    .await
                    .map_err(|e| ModemError::Persist(e.to_string()))?;
                (id, Vec::new())
            }
        };
        let mut attempt = resume.as_ref().map(|p| p.attempts).unwrap_or(0);
        let mut backoff = Duration::from_secs(2);
        for (i, (tpdu_len, hex)) in parts.iter().enumerate() {
            let seq = (i + 1) as u8;
            if done.iter().any(|(s, _)| *s == seq) {
                continue;
            }
            loop {
                attempt += 1;
                let cmd = format!("AT+CMGS={tpdu_len}");
                match self
                    .exec_with_body(&cmd, Some(hex.as_bytes()), Some(self.cfg.send_timeout))
                    .await
                {
                    Ok(r) => {
                        let mr = r
                            .lines
                            .iter()
                            .find_map(|l| wire::parse_cmgs(l))
                            .unwrap_or(0);
                        let _ = self.persist.outbox_part_sent(id, seq, mr).await;
                        done.push((seq, mr));
                        break;
                    }
                    Err(e) => {
                        let permanent = !e.is_transient()
                            || attempt >= self.cfg.send_attempts
                            || self.conn.is_none();
                        let _ = self
                            .persist
                            .outbox_failed(id, &e.to_string(), permanent && self.conn.is_some())
                            .await;
                        if permanent {
                            self.emit(Event::SmsSent(SmsSent {
                                modem: self.cfg.name.clone(),
                                id,
                                to: to.to_owned(),
                                parts: total,
                                state: "failed".into(),
                                references: done.iter().map(|(_, mr)| *mr).collect(),
                                error: Some(e.to_string()),
                            }));
                            return Err(e);
                        }
                        tracing::warn!(modem = %self.cfg.name, error = %e, ?backoff, "send failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        let _ = self.persist.outbox_sent(id).await;
        let references: Vec<u8> = done.iter().map(|(_, mr)| *mr).collect();
        self.set_status(|s| s.sent += 1);
        self.emit(Event::SmsSent(SmsSent {
            modem: self.cfg.name.clone(),
            id,
            to: to.to_owned(),
            parts: total,
            state: "sent".into(),
            references: references.clone(),
            error: None,
        }));
        Ok(SendResult {
            id,
            parts: total,
            references,
        })
    }

    async fn resume_outbox(&mut self) {
        let pending = match self.persist.outbox_pending(&self.cfg.name).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(modem = %self.cfg.name, error = %e, "reading the outbox failed");
                return;
            }
        };
        for p in pending {
            tracing::info!(modem = %self.cfg.name, id = p.id, to = %p.to, sent = p.sent_parts.len(), "resuming an unsent message");
            let (to, text) = (p.to.clone(), p.text.clone());
            if let Err(e) = self
                .send_sms(&to, &text, &SendOptions::default(), Some(p))
                .await
            {
                tracing::warn!(modem = %self.cfg.name, error = %e, "resumed message failed");
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
    /// every fourth time or when asked, because `+CREG` URCs report changes anyway.
    /// This keeps an idle modem under 4 commands a minute.
    async fn probe(&mut self, full: bool) {
        self.probes += 1;
        if let Err(e) = self.read_signal().await {
            tracing::debug!(modem = %self.cfg.name, error = %e, "signal probe failed");
        }
        if full || self.probes % 4 == 0 || self.network != NetworkState::Registered {
            if let Ok(r) = self.exec("AT+CREG?", None).await {
                if let Some((stat, lac, ci)) = r.lines.iter().find_map(|l| wire::parse_creg(l)) {
                    let op = if matches!(wire::stat_to_state(stat), NetworkState::Registered | NetworkState::Roaming) {
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

    async fn recovery_step(&mut self) {
        self.next_recovery = None;
        if !self.recovery_enabled
            || matches!(self.network, NetworkState::Registered | NetworkState::Roaming)
        {
            return;
        }
        let steps = &self.cfg.recovery.steps;
        if steps.is_empty() || self.recovery_attempt >= self.cfg.recovery.max_attempts {
            if self.recovery_attempt == self.cfg.recovery.max_attempts {
                tracing::warn!(modem = %self.cfg.name, "automatic recovery gave up; waiting for the network");
                self.recovery_attempt += 1;
            }
            return;
        }
        let idx = (self.recovery_attempt as usize).min(steps.len() - 1);
        let step = steps[idx].clone();
        self.recovery_attempt += 1;
        tracing::info!(modem = %self.cfg.name, %step, attempt = self.recovery_attempt, "network recovery step");
        let result = match self.exec(&step, Some(Duration::from_secs(30))).await {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.to_string(),
        };
        self.emit(Event::Recovery(RecoveryEvent {
            modem: self.cfg.name.clone(),
            step,
            attempt: self.recovery_attempt,
            result,
        }));
        let factor = 1u32 << self.recovery_attempt.min(3);
        self.next_recovery = Some(Instant::now() + self.cfg.recovery.backoff * factor);
        // Ask soon whether it worked.
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
