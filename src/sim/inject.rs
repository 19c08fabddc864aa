//! [`SimHandle`]: the control side of a simulated stick — open its ports, inject SMS and
//! faults, read what it sent and everything on the wire.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde_json::{json, Value};
use tokio::io::DuplexStream;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use crate::sms;

use super::config::{SimConfig, UssdReplySpec};
use super::device::{now_scts, Device, Mem, Msg, SimState, Timer, UsbState, IFACES};
use super::faults::{ArmedUrc, SlowAnswer, UrcMoment};
use super::session;
use super::wire::{WireEntry, WireLog};
use super::SimError;

/// Shared by the handle, the sessions and the timers.
#[derive(Debug)]
pub(crate) struct Inner {
    dev: Mutex<Device>,
    pub(crate) wire: WireLog,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Device> {
        // A panic while holding the lock would be a simulator bug; keep serving anyway.
        self.dev.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the device, then start the timers it queued.
    pub(crate) fn with<R>(self: &Arc<Self>, f: impl FnOnce(&mut Device) -> R) -> R {
        let (r, timers) = {
            let mut d = self.lock();
            let r = f(&mut d);
            (r, d.take_timers())
        };
        run_timers(self, timers);
        r
    }
}

/// Start queued timers as tokio tasks (sleep, then [`Device::on_timer`]). Without a
/// runtime they cannot run; that only happens if the device is driven outside tokio.
pub(crate) fn run_timers(inner: &Arc<Inner>, timers: Vec<(Duration, Timer)>) {
    if timers.is_empty() {
        return;
    }
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        tracing::warn!(
            count = timers.len(),
            "simulator timers dropped: no tokio runtime"
        );
        return;
    };
    for (after, t) in timers {
        let inner = Arc::clone(inner);
        rt.spawn(async move {
            tokio::time::sleep(after).await;
            inner.with(|d| d.on_timer(t));
        });
    }
}

/// An SMS the network delivers to the stick.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InjectSms {
    /// Sender: `+49…`, national digits, or an alphanumeric name (≤ 11 GSM-7 characters).
    pub from: String,
    /// The text; a long one arrives as concatenated parts.
    pub text: String,
    /// Use UCS-2 even if the text fits GSM-7.
    pub ucs2: bool,
    /// Flash SMS (message class 0).
    pub class0: bool,
    /// The order the parts arrive in.
    pub order: PartOrder,
    /// Leave out part `k` (1-based): the message never completes.
    pub drop_part: Option<u8>,
    /// SCTS; `None` = now in the configured time zone.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// Concatenation reference; `None` = the next one of the device's counter.
    pub reference: Option<u16>,
    /// Use the 16-bit reference IE.
    pub sixteen_bit_ref: bool,
}

impl InjectSms {
    /// A plain message from `from`.
    pub fn new(from: impl Into<String>, text: impl Into<String>) -> InjectSms {
        InjectSms {
            from: from.into(),
            text: text.into(),
            ..InjectSms::default()
        }
    }
}

/// How parts of a concatenated message are ordered on arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartOrder {
    /// 1, 2, 3, …
    #[default]
    InOrder,
    /// Last part first.
    Reversed,
    /// A permutation from the seed, never the identity when there are 2+ parts.
    Shuffled(u64),
}

/// What happened to one delivered part.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "delivery", rename_all = "snake_case")]
pub enum Delivery {
    /// Stored; a `+CMTI: "<mem>",<index>` went to the ports that asked for it.
    Stored {
        /// `SM`, `ME` (the receive store).
        mem: String,
        /// Index in that store (0-based, as ZTE counts).
        index: u16,
    },
    /// Routed directly as `+CMT` (`+CNMI` mt=2, or mt=3 and class 3); not stored.
    Direct,
    /// The network holds it (store full, no registration, unplugged); it comes later.
    Held,
    /// Left out on purpose ([`InjectSms::drop_part`]).
    Dropped,
}

/// One part of a concatenated message the stick sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SentPart {
    /// Concatenation reference.
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number (1-based).
    pub seq: u8,
}

/// One SMS-SUBMIT the stick handed to the network, decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentSms {
    /// Destination (`+49…` or digits).
    pub to: String,
    /// The text of this PDU (one part of a long message).
    pub text: String,
    /// The TP-MR the stick answered with (`+CMGS: <mr>`).
    pub mr: u8,
    /// `gsm7`, `ucs2` or `8bit`.
    pub encoding: String,
    /// Concatenation info for a part of a long message.
    pub part: Option<SentPart>,
    /// TP-SRR was set.
    pub status_report: bool,
    /// Message class, if the DCS had one.
    pub class: Option<u8>,
    /// The PDU as received (hex, SMSC prefix included).
    pub pdu: String,
    /// The port it came through.
    pub iface: u8,
    /// `cmgs` or `cmss`.
    pub via: String,
}

/// A whole message the stick sent: parts joined by reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SentMessage {
    /// Destination.
    pub to: String,
    /// The whole text (parts in sequence order; missing parts left out).
    pub text: String,
    /// Parts the message announced (1 for a single SMS).
    pub parts: u8,
    /// Parts actually sent.
    pub parts_sent: u8,
    /// TP-MRs of the parts, in sending order.
    pub mrs: Vec<u8>,
}

/// Destination, reference and part count: what makes parts one message.
type ConcatKey = (String, u16, u8);

/// A message being joined: its key, the message, and (seq, text) of its parts.
type Joining = (Option<ConcatKey>, SentMessage, Vec<(u8, String)>);

/// Join sent PDUs into messages (by destination and concatenation reference).
pub fn join_sent(sent: &[SentSms]) -> Vec<SentMessage> {
    let mut out: Vec<Joining> = Vec::new();
    for s in sent {
        let key = s.part.map(|p| (s.to.clone(), p.reference, p.total));
        let slot = key
            .as_ref()
            .and_then(|k| out.iter().position(|(k2, ..)| k2.as_ref() == Some(k)));
        match slot {
            Some(i) => {
                let (_, m, texts) = &mut out[i];
                m.parts_sent += 1;
                m.mrs.push(s.mr);
                texts.push((s.part.map_or(1, |p| p.seq), s.text.clone()));
            }
            None => out.push((
                key,
                SentMessage {
                    to: s.to.clone(),
                    text: String::new(),
                    parts: s.part.map_or(1, |p| p.total),
                    parts_sent: 1,
                    mrs: vec![s.mr],
                },
                vec![(s.part.map_or(1, |p| p.seq), s.text.clone())],
            )),
        }
    }
    out.into_iter()
        .map(|(_, mut m, mut texts)| {
            texts.sort_by_key(|(seq, _)| *seq);
            m.text = texts.into_iter().map(|(_, t)| t).collect();
            m
        })
        .collect()
}

/// A permutation of `0..n` from `seed` (xorshift), never the identity for n ≥ 2.
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    let mut x = seed | 1;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).unwrap_or(0);
        v.swap(i, j);
    }
    if n >= 2 && v.iter().enumerate().all(|(i, &p)| i == p) {
        v.rotate_left(1);
    }
    v
}

/// The control side of one simulated stick. Cheap to clone; every clone drives the same
/// device.
#[derive(Debug, Clone)]
pub struct SimHandle {
    inner: Arc<Inner>,
}

impl SimHandle {
    /// Start a simulated stick. Opening ports and anything time-based needs a tokio runtime.
    pub fn spawn(cfg: SimConfig) -> SimHandle {
        let (usb_tx, _) = watch::channel(UsbState {
            plugged: true,
            generation: 0,
        });
        let start = Instant::now();
        let dev = Device::new(cfg, usb_tx);
        let inner = Arc::new(Inner {
            dev: Mutex::new(dev),
            wire: WireLog::new(start),
        });
        let timers = inner.lock().take_timers();
        run_timers(&inner, timers);
        SimHandle { inner }
    }

    /// Like [`SimHandle::spawn`], but reject a config no real stick could have.
    pub fn try_spawn(cfg: SimConfig) -> Result<SimHandle, SimError> {
        cfg.validate().map_err(SimError::Invalid)?;
        Ok(SimHandle::spawn(cfg))
    }

    fn with<R>(&self, f: impl FnOnce(&mut Device) -> R) -> R {
        self.inner.with(f)
    }

    /// Connect to interface `iface` (0 = DIAG, answers nothing; 1 and 2 = AT). Like an
    /// exclusive tty, a port that is already open gives [`SimError::Busy`]; while the stick
    /// is unplugged, [`SimError::Unplugged`]. Dropping the stream closes the port.
    pub fn open_port(&self, iface: u8) -> Result<DuplexStream, SimError> {
        self.open_port_for(iface, Arc::new(AtomicBool::new(true)))
    }

    /// [`SimHandle::open_port`] for a bridge that knows whether a client is really there
    /// (the PTY face: the port stays open while nobody has the tty open).
    pub(crate) fn open_port_for(
        &self,
        iface: u8,
        present: Arc<AtomicBool>,
    ) -> Result<DuplexStream, SimError> {
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|e| SimError::NoRuntime(e.to_string()))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let conn = self.with(|d| d.attach(iface, tx, present))?;
        let (client, device) = tokio::io::duplex(64 * 1024);
        rt.spawn(session::run(
            Arc::clone(&self.inner),
            iface,
            conn,
            device,
            rx,
        ));
        Ok(client)
    }

    /// Deliver an SMS; a long text arrives as concatenated parts (in [`InjectSms::order`],
    /// minus [`InjectSms::drop_part`]). Returns one entry per delivered part: the store
    /// index, or 0 for a part routed directly as `+CMT`. Parts the network holds (store
    /// full, no service) and dropped parts are not in the list; see
    /// [`SimHandle::inject_sms_detailed`] for the full picture.
    pub async fn inject_sms(&self, sms: InjectSms) -> Result<Vec<u16>, SimError> {
        Ok(self
            .inject_sms_detailed(sms)
            .await?
            .into_iter()
            .filter_map(|d| match d {
                Delivery::Stored { index, .. } => Some(index),
                Delivery::Direct => Some(0),
                Delivery::Held | Delivery::Dropped => None,
            })
            .collect())
    }

    /// Like [`SimHandle::inject_sms`], with what happened to each part, in arrival order.
    pub async fn inject_sms_detailed(&self, sms: InjectSms) -> Result<Vec<Delivery>, SimError> {
        let (tz, smsc, reference) = self.with(|d| {
            let r = d.next_concat_ref();
            (d.cfg.tz_quarters, d.cfg.smsc.clone(), r)
        });
        let opts = sms::DeliverOptions {
            force_ucs2: sms.ucs2,
            class: sms.class0.then_some(0),
            reference: sms.reference.unwrap_or(reference),
            sixteen_bit_ref: sms.sixteen_bit_ref,
            smsc: Some(smsc),
            status_report_indication: false,
        };
        let ts = sms.timestamp.unwrap_or_else(|| now_scts(tz));
        let parts = sms::build_deliver(&sms.from, &sms.text, ts, &opts)
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        let mut pdus = Vec::with_capacity(parts.len());
        for p in &parts {
            pdus.push(sms::pdu::from_hex(&p.hex).map_err(|e| SimError::InvalidPdu(e.to_string()))?);
        }
        let n = pdus.len();
        if let Some(k) = sms.drop_part {
            if k == 0 || usize::from(k) > n {
                return Err(SimError::Invalid(format!(
                    "cannot drop part {k}: the message has {n} part(s)"
                )));
            }
        }
        let order: Vec<usize> = match sms.order {
            PartOrder::InOrder => (0..n).collect(),
            PartOrder::Reversed => (0..n).rev().collect(),
            PartOrder::Shuffled(seed) => permutation(n, seed),
        };
        Ok(self.with(|d| {
            super::device::bump(&mut d.counters, "sms_injected");
            order
                .into_iter()
                .map(|i| {
                    if sms.drop_part.is_some_and(|k| usize::from(k) == i + 1) {
                        Delivery::Dropped
                    } else {
                        d.deliver(pdus[i].clone())
                    }
                })
                .collect()
        }))
    }

    /// Deliver a raw SMS-DELIVER PDU (hex with SMSC prefix, as `+CMGR` prints it). It is
    /// not required to decode (the engine's "undecodable" path can be tested), but it must
    /// be hex with a consistent SMSC length octet.
    pub async fn inject_pdu(&self, hex: &str) -> Result<(), SimError> {
        self.inject_pdu_detailed(hex).await.map(|_| ())
    }

    /// Like [`SimHandle::inject_pdu`], saying what happened to the message.
    pub async fn inject_pdu_detailed(&self, hex: &str) -> Result<Delivery, SimError> {
        let bytes = sms::pdu::from_hex(hex).map_err(|e| SimError::InvalidPdu(e.to_string()))?;
        let prefix = sms::pdu::smsc_prefix_len(&bytes).unwrap_or(usize::MAX);
        if prefix >= bytes.len() {
            return Err(SimError::InvalidPdu(format!(
                "the SMSC length octet says {} octets, leaving no TPDU",
                bytes[0]
            )));
        }
        Ok(self.with(|d| d.deliver(bytes)))
    }

    /// Set (or replace) the network's answer to a USSD code.
    pub async fn set_ussd(&self, code: &str, reply: UssdReplySpec) {
        self.with(|d| {
            d.ussd_table.retain(|(c, _)| c != code);
            d.ussd_table.push((code.to_string(), reply));
        });
    }

    /// Forget a USSD code (the network then answers `+CUSD: 4`).
    pub async fn remove_ussd(&self, code: &str) {
        self.with(|d| d.ussd_table.retain(|(c, _)| c != code));
    }

    /// Pull the stick: every port closes (readers see EOF). `Some(t)`: it comes back after
    /// `t` as a new enumeration; `None`: it stays away until [`SimHandle::replug`].
    pub async fn unplug(&self, for_: Option<Duration>) {
        self.with(|d| d.unplug(for_));
    }

    /// Plug the stick back in (fresh settings, PIN again if it has one).
    pub async fn replug(&self) {
        self.with(|d| d.replug());
    }

    /// The network goes away: `+CREG: 2`, `+ZPASR: "No Service"`, `+CSQ: 99,99`.
    pub async fn network_lost(&self) {
        self.with(|d| d.network_lost());
    }

    /// The network comes back: `+CREG: 1`, held messages are delivered.
    pub async fn network_back(&self) {
        self.with(|d| d.network_back());
    }

    /// Signal quality when registered (`+CSQ` rssi 0–31, or 99). No URC: ZTE has none.
    pub async fn set_signal(&self, csq: u8) {
        let csq = if csq == 99 { 99 } else { csq.min(31) };
        self.with(|d| d.net.csq = csq);
    }

    /// Fill the receive store with old, read messages: the next SMS is held by the network
    /// (no `+CMTI`), writes fail with `+CMS ERROR: 322`.
    pub async fn fill_storage(&self) {
        let (mem, free, tz, smsc) = self.with(|d| {
            let m = d.stores.mem3;
            (
                m,
                d.stores.total(m) - d.stores.used(m),
                d.cfg.tz_quarters,
                d.cfg.smsc.clone(),
            )
        });
        let ts = now_scts(tz);
        let opts = sms::DeliverOptions {
            smsc: Some(smsc),
            ..sms::DeliverOptions::default()
        };
        let mut pdus = Vec::new();
        for n in 0..free {
            let text = format!("Old message {}", n + 1);
            if let Ok(p) = sms::build_deliver("+491709999999", &text, ts, &opts) {
                if let Some(bytes) = p.first().and_then(|p| sms::pdu::from_hex(&p.hex).ok()) {
                    pdus.push(bytes);
                }
            }
        }
        self.with(|d| {
            for pdu in pdus {
                d.stores.insert(mem, Msg { stat: 1, pdu });
            }
        });
    }

    /// Empty every store (SM, ME, SR); the network then delivers what it held.
    pub async fn clear_storage(&self) {
        self.with(|d| {
            for mem in [Mem::Sm, Mem::Me, Mem::Sr] {
                for i in d.stores.indices(mem) {
                    d.stores.delete(mem, i);
                }
            }
            d.slot_freed();
        });
    }

    /// Write raw bytes (line noise, a half line) to every open AT port, now.
    pub async fn inject_garbage(&self, bytes: &[u8]) {
        self.with(|d| {
            for iface in 1..IFACES as u8 {
                d.send_raw(iface, bytes.to_vec());
            }
        });
    }

    /// Write raw bytes to one port.
    pub async fn inject_raw(&self, iface: u8, bytes: &[u8]) {
        self.with(|d| d.send_raw(iface, bytes.to_vec()));
    }

    /// Send a URC line now (framed `\r\n…\r\n`) to `iface`, or to both AT ports.
    pub async fn inject_urc(&self, iface: Option<u8>, line: &str) {
        self.with(|d| match iface {
            Some(i) => d.urc(i, &[line.as_bytes().to_vec()], false),
            None => d.urc_all(&[line.as_bytes().to_vec()]),
        });
    }

    /// Arm a URC for an awkward moment of the next command on `iface` (or any AT port):
    /// after its echo, before its `> ` prompt, or right before its final result code.
    pub async fn urc_at(&self, moment: UrcMoment, line: &str, iface: Option<u8>) {
        self.with(|d| {
            d.faults.urcs.push(ArmedUrc {
                moment,
                line: line.to_string(),
                iface,
            })
        });
    }

    /// Delay the final result code of commands starting with `prefix` (`AT+CMGS`; `None` =
    /// every command) by `delay`, for the next `count` of them (`None` = until cleared).
    pub async fn slow_answers(&self, prefix: Option<&str>, delay: Duration, count: Option<u32>) {
        self.with(|d| {
            d.faults.slow.push(SlowAnswer {
                prefix: prefix.map(str::to_ascii_uppercase),
                delay,
                remaining: count,
            })
        });
    }

    /// Answer at full speed again.
    pub async fn clear_slow_answers(&self) {
        self.with(|d| d.faults.slow.clear());
    }

    /// `count` × `+ZUSIMR:2` on both AT ports, one every `every` (MF667.md §3: such floods
    /// fill the stick's buffers).
    pub async fn zusimr_flood(&self, count: u32, every: Duration) {
        if count == 0 {
            return;
        }
        self.with(|d| d.schedule(Duration::ZERO, Timer::Zusimr { left: count, every }));
    }

    /// Take the SIM out: `+CME ERROR: 10`, `+CMS ERROR: 310`, deregistered.
    pub async fn remove_sim(&self) {
        self.with(|d| {
            d.sim_present = false;
            d.sim.state = SimState::Removed;
            d.update_registration(false);
        });
    }

    /// Put a SIM back in (PIN-locked if the config has a PIN) and register.
    pub async fn insert_sim(&self) {
        self.with(|d| d.insert_sim());
    }

    /// Lock the SIM with `pin` as after a power cycle: `+CPIN: SIM PIN` until entered.
    pub async fn require_pin(&self, pin: &str) {
        self.with(|d| {
            d.cfg.pin = Some(pin.to_string());
            d.sim.pin = Some(pin.to_string());
            if d.sim.state != SimState::Removed {
                d.sim.state = SimState::Pin;
            }
            d.update_registration(false);
        });
    }

    /// The USB state now, and a watch that follows unplugs and replugs.
    pub fn usb(&self) -> watch::Receiver<UsbState> {
        self.with(|d| d.usb_watch())
    }

    /// Messages the stick sent (one entry per PDU, decoded).
    pub async fn sent(&self) -> Vec<SentSms> {
        self.with(|d| d.sent.clone())
    }

    /// Messages the stick sent, parts joined.
    pub async fn sent_messages(&self) -> Vec<SentMessage> {
        self.with(|d| join_sent(&d.sent))
    }

    /// Everything on the wire so far (capped at the newest 50 000 chunks).
    pub async fn wire_log(&self) -> Vec<WireEntry> {
        self.inner.wire.snapshot()
    }

    /// Follow the wire live.
    pub fn wire_subscribe(&self) -> broadcast::Receiver<WireEntry> {
        self.inner.wire.subscribe()
    }

    /// Stop: close every port and never come back.
    pub async fn shutdown(&self) {
        self.with(|d| {
            d.unplug(None);
            d.stopped = true;
        });
    }

    /// Stop at once, without an await (used by `Drop` of the pty face).
    pub(crate) fn stop_now(&self) {
        self.with(|d| {
            d.unplug(None);
            d.stopped = true;
        });
    }

    /// Settings, stores with their messages, what was sent, counters — as JSON.
    pub async fn status(&self) -> Value {
        self.with(status_json)
    }
}

fn stat_name(stat: u8) -> &'static str {
    ["REC UNREAD", "REC READ", "STO UNSENT", "STO SENT"][usize::from(stat.min(3))]
}

fn message_json(index: usize, m: &Msg) -> Value {
    let mut v = json!({
        "index": index,
        "stat": stat_name(m.stat),
        "pdu": sms::pdu::to_hex(&m.pdu),
    });
    match sms::decode_bytes(&m.pdu) {
        Ok(sms::Pdu::Deliver(d)) => {
            v["kind"] = json!("deliver");
            v["from"] = json!(d.originator.number);
            v["text"] = json!(d.user_data.text);
            v["timestamp"] = json!(d.timestamp.to_rfc3339());
            if let Some(c) = d.user_data.concat {
                v["part"] = json!({"reference": c.reference, "total": c.total, "seq": c.seq});
            }
        }
        Ok(sms::Pdu::Submit(s)) => {
            v["kind"] = json!("submit");
            v["to"] = json!(s.destination.number);
            v["text"] = json!(s.user_data.text);
        }
        Ok(sms::Pdu::StatusReport(r)) => {
            v["kind"] = json!("status_report");
            v["to"] = json!(r.recipient.number);
            v["mr"] = json!(r.message_reference);
            v["st"] = json!(r.status);
        }
        Err(e) => {
            v["kind"] = json!("undecodable");
            v["error"] = json!(e.to_string());
        }
    }
    v
}

fn status_json(d: &mut Device) -> Value {
    let stores: serde_json::Map<String, Value> = [Mem::Sm, Mem::Me, Mem::Sr]
        .into_iter()
        .map(|m| {
            let msgs: Vec<Value> = d
                .stores
                .indices(m)
                .into_iter()
                .filter_map(|i| d.stores.get(m, i).map(|msg| message_json(i, msg)))
                .collect();
            (
                m.name().to_string(),
                json!({"used": d.stores.used(m), "total": d.stores.total(m), "messages": msgs}),
            )
        })
        .collect();
    let ports: Vec<Value> = (0..IFACES)
        .map(|i| {
            let p = &d.ports[i];
            let s = &p.settings;
            let c = s.cnmi;
            json!({
                "iface": i,
                "open": d.is_open(u8::try_from(i).unwrap_or(0)),
                "client": d.is_attended(u8::try_from(i).unwrap_or(0)),
                "at": i != 0,
                "echo": s.echo,
                "verbose": s.verbose,
                "cmee": s.cmee,
                "cmgf": u8::from(s.text_mode),
                "cscs": s.cscs.name(),
                "cnmi": format!("{},{},{},{},{}", c.mode, c.mt, c.bm, c.ds, c.bfr),
                "creg": s.creg,
                "cpms": [s.mem1.name(), s.mem2.name(), d.stores.mem3.name()],
            })
        })
        .collect();
    let sim = match d.sim.state {
        SimState::Ready if d.sim.check(d.now()).is_err() => "busy",
        SimState::Ready => "ready",
        SimState::Pin => "pin",
        SimState::Puk => "puk",
        SimState::Blocked => "blocked",
        SimState::Removed => "removed",
    };
    let id = &d.cfg.identity;
    json!({
        "usb": d.usb,
        "identity": {
            "manufacturer": id.manufacturer, "model": id.model, "revision": id.revision,
            "imei": id.imei, "imsi": id.imsi,
            "usb_id": format!("{:04x}:{:04x}", id.usb_vendor, id.usb_product),
            "serial": id.usb_serial,
        },
        "sim": {"state": sim, "pin_left": d.sim.pin_left, "puk_left": d.sim.puk_left},
        "network": {
            "stat": d.net.stat,
            "registered": d.registered(),
            "coverage": d.net.coverage,
            "csq": d.csq(),
            "oprt": d.net.oprt,
            "cfun": d.net.cfun,
            "operator": d.cfg.network.operator_long,
        },
        "ports": ports,
        "stores": stores,
        "receive_store": d.stores.mem3.name(),
        "held_by_network": d.held.len(),
        "sent": d.sent,
        "sent_messages": join_sent(&d.sent),
        "ussd": {
            "pending": d.ussd.pending.is_some(),
            "menu_open": d.ussd.menu.is_some(),
            "codes": d.ussd_table.iter().map(|(c, _)| c.clone()).collect::<Vec<_>>(),
        },
        "counters": d.counters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_never_the_identity() {
        for seed in 0..200 {
            for n in 2..6 {
                let p = permutation(n, seed);
                let mut sorted = p.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>());
                assert_ne!(p, (0..n).collect::<Vec<_>>(), "seed {seed} n {n}");
            }
        }
        assert_eq!(permutation(1, 7), vec![0]);
    }

    fn sent(to: &str, text: &str, mr: u8, part: Option<(u16, u8, u8)>) -> SentSms {
        SentSms {
            to: to.into(),
            text: text.into(),
            mr,
            encoding: "gsm7".into(),
            part: part.map(|(reference, total, seq)| SentPart {
                reference,
                total,
                seq,
            }),
            status_report: false,
            class: None,
            pdu: String::new(),
            iface: 1,
            via: "cmgs".into(),
        }
    }

    #[test]
    fn sent_parts_join_by_reference_in_sequence_order() {
        let s = vec![
            sent("+1", "single", 1, None),
            sent("+2", "world", 2, Some((7, 2, 2))),
            sent("+2", "hello ", 3, Some((7, 2, 1))),
            sent("+3", "x", 4, Some((7, 2, 1))),
        ];
        let j = join_sent(&s);
        assert_eq!(j.len(), 3);
        assert_eq!(j[0].text, "single");
        assert_eq!(j[1].text, "hello world");
        assert_eq!((j[1].parts, j[1].parts_sent), (2, 2));
        assert_eq!(j[1].mrs, vec![2, 3]);
        assert_eq!((j[2].parts, j[2].parts_sent), (2, 1));
    }
}
