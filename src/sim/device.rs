//! The stick's state: per-port settings, message stores, SIM, network, USSD session, what
//! it sent, and the rules that turn events (an SMS arrives, the network goes) into URCs.
//!
//! One `Device` sits behind a `std::sync::Mutex` shared by the port sessions, the timers and
//! [`crate::sim::SimHandle`]; the lock is never held across an `.await`. Work that must
//! happen later is queued as [`Timer`]s, which the lock holder hands to
//! [`crate::sim::inject::run_timers`] after unlocking (everything time-based goes through
//! `tokio::time`, so paused-time tests drive it).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Offset, Utc};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::sms;
use crate::ussd;

use super::config::{SimConfig, UssdDcs, UssdReplySpec};
use super::faults::Faults;
use super::inject::{Delivery, SentSms};

/// if00 (DIAG), if01, if02.
pub(crate) const IFACES: usize = 3;

/// `+CSCS` character sets the MF667 offers (MF667.md §2: `("IRA","GSM","UCS2")`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    Ira,
    Gsm,
    Ucs2,
}

impl Charset {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Charset::Ira => "IRA",
            Charset::Gsm => "GSM",
            Charset::Ucs2 => "UCS2",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Charset> {
        match s.to_ascii_uppercase().as_str() {
            "IRA" => Some(Charset::Ira),
            "GSM" => Some(Charset::Gsm),
            "UCS2" => Some(Charset::Ucs2),
            _ => None,
        }
    }
}

/// Text → bytes in the TE character set (27.005 Annex A). Characters the set lacks become `?`.
pub(crate) fn to_te(text: &str, cs: Charset) -> Vec<u8> {
    match cs {
        Charset::Ira => text
            .chars()
            .map(|c| if c.is_ascii() { c as u8 } else { b'?' })
            .collect(),
        // Raw GSM 03.38 septet values, one per byte (`@` is 0x00 on the wire).
        Charset::Gsm => text
            .chars()
            .flat_map(|c| sms::gsm7::encode(&c.to_string()).unwrap_or_else(|| vec![b'?']))
            .collect(),
        Charset::Ucs2 => sms::pdu::to_hex(&sms::ucs2::encode(text)).into_bytes(),
    }
}

/// Bytes typed in the TE character set → text; `None` if they are not valid in that set.
pub(crate) fn from_te(bytes: &[u8], cs: Charset) -> Option<String> {
    match cs {
        // IRA is ASCII; Latin-1 bytes are let through as their code points, as most
        // firmware does, so a terminal in Latin-1 still works.
        Charset::Ira => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Charset::Gsm => {
            if bytes.iter().any(|&b| b > 0x7f) {
                None
            } else {
                Some(sms::gsm7::decode(bytes))
            }
        }
        Charset::Ucs2 => {
            let s = std::str::from_utf8(bytes).ok()?;
            let octets = sms::pdu::from_hex(s).ok()?;
            if octets.len() % 2 != 0 {
                return None;
            }
            Some(sms::ucs2::decode(&octets))
        }
    }
}

/// Message stores. `Mt` is the ME+SM view (`+CPMS=?` offers it): ME slots first, then SM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mem {
    Sm,
    Me,
    Sr,
    Mt,
}

impl Mem {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mem::Sm => "SM",
            Mem::Me => "ME",
            Mem::Sr => "SR",
            Mem::Mt => "MT",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Mem> {
        match s.to_ascii_uppercase().as_str() {
            "SM" => Some(Mem::Sm),
            "ME" => Some(Mem::Me),
            "SR" => Some(Mem::Sr),
            "MT" => Some(Mem::Mt),
            _ => None,
        }
    }
}

/// `+CNMI=<mode>,<mt>,<bm>,<ds>,<bfr>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cnmi {
    pub mode: u8,
    pub mt: u8,
    pub bm: u8,
    pub ds: u8,
    pub bfr: u8,
}

/// One port's settings. All of them are volatile: power-on values come back on `ATZ`,
/// `AT&F` and every replug (MF667.md §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    pub echo: bool,
    pub verbose: bool,
    pub quiet: bool,
    pub cmee: u8,
    pub text_mode: bool,
    pub cscs: Charset,
    pub cnmi: Cnmi,
    pub creg: u8,
    pub cgreg: u8,
    pub csdh: bool,
    /// `+CSMP` fo, vp, pid, dcs (27.005 defaults 17,167,0,0).
    pub csmp: [u8; 4],
    pub cusd: u8,
    pub mem1: Mem,
    pub mem2: Mem,
    pub csms: u8,
    pub cops_format: u8,
    pub ctzr: u8,
    pub s0: u8,
}

impl Settings {
    /// MF667.md §5.2: E1, CMGF 0, CPMS "ME", CNMI 3,1,0,2,0, CSCS "IRA"; `+CMEE: 2` as the
    /// MF636 `AT&V` shows; `+CSMS: 0` (the stick acknowledges `+CMT` by itself).
    pub(crate) fn power_on() -> Settings {
        Settings {
            echo: true,
            verbose: true,
            quiet: false,
            cmee: 2,
            text_mode: false,
            cscs: Charset::Ira,
            cnmi: Cnmi {
                mode: 3,
                mt: 1,
                bm: 0,
                ds: 2,
                bfr: 0,
            },
            creg: 0,
            cgreg: 0,
            csdh: false,
            csmp: [17, 167, 0, 0],
            cusd: 0,
            mem1: Mem::Me,
            mem2: Mem::Me,
            csms: 0,
            cops_format: 0,
            ctzr: 0,
            s0: 0,
        }
    }
}

/// What a session receives besides the client's bytes.
#[derive(Debug)]
pub(crate) enum PortMsg {
    /// Bytes to write (URCs, garbage).
    Out(Vec<u8>),
    /// The stick went away: close the port (the client sees EOF).
    Close,
}

/// An open connection to a port.
#[derive(Debug)]
pub(crate) struct Conn {
    pub id: u64,
    pub tx: mpsc::UnboundedSender<PortMsg>,
    /// A client is really there. In-process: always. On a PTY the bridge keeps the port
    /// open and clears this while no process has the slave open.
    pub present: Arc<AtomicBool>,
}

#[derive(Debug)]
pub(crate) struct Port {
    pub settings: Settings,
    pub conn: Option<Conn>,
    /// URCs held while `+CNMI` mode is 0 (27.005: buffered in the TA).
    pub buffered: Vec<u8>,
}

/// One stored message: its `<stat>` (0 REC UNREAD, 1 REC READ, 2 STO UNSENT, 3 STO SENT)
/// and the PDU with its SMSC prefix, as `+CMGR` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Msg {
    pub stat: u8,
    pub pdu: Vec<u8>,
}

impl Msg {
    /// The TPDU length `+CMGR`/`+CMGL` print (octets after the SMSC prefix).
    pub(crate) fn tpdu_len(&self) -> usize {
        let prefix = sms::pdu::smsc_prefix_len(&self.pdu).unwrap_or(0);
        self.pdu.len().saturating_sub(prefix)
    }
}

/// The three physical stores.
#[derive(Debug)]
pub(crate) struct Stores {
    pub sm: Vec<Option<Msg>>,
    pub me: Vec<Option<Msg>>,
    pub sr: Vec<Option<Msg>>,
    /// `+CPMS` mem3, where received messages go. Device-wide: the stick has one receive
    /// store whichever port set it.
    pub mem3: Mem,
}

impl Stores {
    fn new(cfg: &SimConfig) -> Stores {
        Stores {
            sm: vec![None; usize::from(cfg.capacities.sm)],
            me: vec![None; usize::from(cfg.capacities.me)],
            sr: vec![None; usize::from(cfg.capacities.sr)],
            mem3: Mem::Me,
        }
    }

    /// (physical store, slot) for `index` in `mem`'s numbering.
    fn locate(&self, mem: Mem, index: usize) -> Option<(Mem, usize)> {
        match mem {
            Mem::Mt if index < self.me.len() => Some((Mem::Me, index)),
            Mem::Mt if index < self.me.len() + self.sm.len() => {
                Some((Mem::Sm, index - self.me.len()))
            }
            Mem::Mt => None,
            m => (index < self.phys(m).len()).then_some((m, index)),
        }
    }

    fn phys(&self, m: Mem) -> &Vec<Option<Msg>> {
        match m {
            Mem::Sm => &self.sm,
            Mem::Sr => &self.sr,
            Mem::Me | Mem::Mt => &self.me,
        }
    }

    fn phys_mut(&mut self, m: Mem) -> &mut Vec<Option<Msg>> {
        match m {
            Mem::Sm => &mut self.sm,
            Mem::Sr => &mut self.sr,
            Mem::Me | Mem::Mt => &mut self.me,
        }
    }

    pub(crate) fn total(&self, mem: Mem) -> usize {
        match mem {
            Mem::Mt => self.me.len() + self.sm.len(),
            m => self.phys(m).len(),
        }
    }

    pub(crate) fn used(&self, mem: Mem) -> usize {
        match mem {
            Mem::Mt => self.used(Mem::Me) + self.used(Mem::Sm),
            m => self.phys(m).iter().filter(|s| s.is_some()).count(),
        }
    }

    pub(crate) fn is_full(&self, mem: Mem) -> bool {
        self.used(mem) >= self.total(mem)
    }

    /// Whether `index` exists in `mem` (even if empty).
    pub(crate) fn valid_index(&self, mem: Mem, index: usize) -> bool {
        self.locate(mem, index).is_some()
    }

    pub(crate) fn get(&self, mem: Mem, index: usize) -> Option<&Msg> {
        let (m, i) = self.locate(mem, index)?;
        self.phys(m).get(i)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, mem: Mem, index: usize) -> Option<&mut Msg> {
        let (m, i) = self.locate(mem, index)?;
        self.phys_mut(m).get_mut(i)?.as_mut()
    }

    /// Store in the first free slot; the index in `mem`'s numbering.
    pub(crate) fn insert(&mut self, mem: Mem, msg: Msg) -> Option<usize> {
        for idx in 0..self.total(mem) {
            let Some((m, i)) = self.locate(mem, idx) else {
                continue;
            };
            let slot = &mut self.phys_mut(m)[i];
            if slot.is_none() {
                *slot = Some(msg);
                return Some(idx);
            }
        }
        None
    }

    pub(crate) fn delete(&mut self, mem: Mem, index: usize) -> bool {
        match self.locate(mem, index) {
            Some((m, i)) => self.phys_mut(m)[i].take().is_some(),
            None => false,
        }
    }

    /// Used indices of `mem`, ascending.
    pub(crate) fn indices(&self, mem: Mem) -> Vec<usize> {
        (0..self.total(mem))
            .filter(|&i| self.get(mem, i).is_some())
            .collect()
    }
}

/// SIM states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimState {
    Ready,
    Pin,
    Puk,
    /// PUK tries used up: the SIM is dead.
    Blocked,
    Removed,
}

/// Why a SIM-dependent command cannot run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SimBlock {
    NotInserted,
    Pin,
    Puk,
    Busy,
    Failure,
}

impl SimBlock {
    /// The +CME ERROR code (27.007 §9.2).
    pub(crate) fn cme(self) -> u16 {
        match self {
            SimBlock::NotInserted => 10,
            SimBlock::Pin => 11,
            SimBlock::Puk => 12,
            SimBlock::Failure => 13,
            SimBlock::Busy => 14,
        }
    }

    /// The +CMS ERROR code (27.005 §3.2.5).
    pub(crate) fn cms(self) -> u16 {
        match self {
            SimBlock::NotInserted => 310,
            SimBlock::Pin => 311,
            SimBlock::Puk => 316,
            SimBlock::Failure => 313,
            SimBlock::Busy => 314,
        }
    }
}

#[derive(Debug)]
pub(crate) struct SimCard {
    pub state: SimState,
    pub pin: Option<String>,
    pub puk: String,
    pub pin_left: u8,
    pub puk_left: u8,
    pub busy_until: Option<Instant>,
}

impl SimCard {
    fn power_on(cfg: &SimConfig, present: bool) -> SimCard {
        SimCard {
            state: if !present {
                SimState::Removed
            } else if cfg.pin.is_some() {
                SimState::Pin
            } else {
                SimState::Ready
            },
            pin: cfg.pin.clone(),
            puk: cfg.puk.clone(),
            pin_left: 3,
            puk_left: 10,
            busy_until: None,
        }
    }

    /// Whether SIM-dependent commands may run now.
    pub(crate) fn check(&self, now: Instant) -> Result<(), SimBlock> {
        match self.state {
            SimState::Removed => Err(SimBlock::NotInserted),
            SimState::Pin => Err(SimBlock::Pin),
            SimState::Puk => Err(SimBlock::Puk),
            SimState::Blocked => Err(SimBlock::Failure),
            SimState::Ready => match self.busy_until {
                Some(t) if now < t => Err(SimBlock::Busy),
                _ => Ok(()),
            },
        }
    }
}

#[derive(Debug)]
pub(crate) struct Network {
    /// `+ZOPRT` mode: 5 online, 6 offline (low power).
    pub oprt: u8,
    /// `+CFUN`: 1 full, 0 minimum, 4 radio off.
    pub cfun: u8,
    /// The network is there (a `network_lost` fault clears it).
    pub coverage: bool,
    /// `+CREG` stat: 0 not registered, 1 home, 2 searching, 5 roaming.
    pub stat: u8,
    /// Signal when registered.
    pub csq: u8,
    /// Bumped whenever the registration target changes, so stale timers do nothing.
    pub epoch: u64,
    pub zsnt: [u8; 3],
    /// `AT+ZCDRUN` autorun flag (only reported back).
    pub autorun: bool,
}

/// A USSD request waiting for the network's answer.
#[derive(Debug, Clone)]
pub(crate) struct UssdPending {
    pub id: u64,
    pub iface: u8,
    /// `None`: the network does not know the code (`+CUSD: 4`).
    pub reply: Option<UssdReplySpec>,
}

#[derive(Debug, Default)]
pub(crate) struct UssdState {
    pub next_id: u64,
    pub pending: Option<UssdPending>,
    /// A menu waiting for an answer (the last reply had state 1).
    pub menu: Option<Vec<(String, UssdReplySpec)>>,
}

/// Work for later; see [`crate::sim::inject::run_timers`].
#[derive(Debug, Clone)]
pub(crate) enum Timer {
    /// Registration completes (if `epoch` is still current).
    Register { epoch: u64 },
    /// A USSD answer is due.
    UssdReply { id: u64 },
    /// A status report for a SUBMIT with TP-SRR is due.
    StatusReport {
        to: String,
        mr: u8,
        submitted: DateTime<FixedOffset>,
    },
    /// The stick comes back (if `unplug` is still the current unplug).
    Replug { unplug: u64 },
    /// The network retries messages it holds.
    Redeliver,
    /// One more `+ZUSIMR:2` of a flood.
    Zusimr { left: u32, every: Duration },
}

/// The stick is on the bus (`plugged`) as enumeration number `generation` (0 first, 1
/// after the first replug, …: the pty face names ports ttyUSB(3·generation + iface)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct UsbState {
    /// Present on USB.
    pub plugged: bool,
    /// Enumeration count.
    pub generation: u64,
}

/// The whole device.
#[derive(Debug)]
pub(crate) struct Device {
    pub cfg: SimConfig,
    pub ports: [Port; IFACES],
    pub stores: Stores,
    pub sim: SimCard,
    pub sim_present: bool,
    pub net: Network,
    pub ussd: UssdState,
    pub ussd_table: Vec<(String, UssdReplySpec)>,
    /// Messages the network holds (store full, no registration, unplugged): TPDUs with prefix.
    pub held: VecDeque<Vec<u8>>,
    redeliver_scheduled: bool,
    pub sent: Vec<SentSms>,
    pub counters: BTreeMap<&'static str, u64>,
    pub next_mr: u8,
    concat_ref: u16,
    pub usb: UsbState,
    /// Incremented per unplug; a scheduled replug carries the number it belongs to.
    unplugs: u64,
    usb_tx: watch::Sender<UsbState>,
    next_conn: u64,
    pub faults: Faults,
    pub timers: Vec<(Duration, Timer)>,
    /// Set when the simulator is shut down: timers and sessions stop.
    pub stopped: bool,
}

/// Count one more `name`; the counters appear in `SimHandle::status`.
pub(crate) fn bump(counters: &mut BTreeMap<&'static str, u64>, name: &'static str) {
    *counters.entry(name).or_insert(0) += 1;
}

impl Device {
    pub(crate) fn new(cfg: SimConfig, usb_tx: watch::Sender<UsbState>) -> Device {
        let sim_present = cfg.sim_present;
        let mut d = Device {
            ports: std::array::from_fn(|_| Port {
                settings: Settings::power_on(),
                conn: None,
                buffered: Vec::new(),
            }),
            stores: Stores::new(&cfg),
            sim: SimCard::power_on(&cfg, sim_present),
            sim_present,
            net: Network {
                oprt: 5,
                cfun: 1,
                coverage: true,
                stat: 0,
                csq: cfg.csq,
                epoch: 0,
                zsnt: [0, 0, 0],
                autorun: true,
            },
            ussd: UssdState::default(),
            ussd_table: cfg.ussd.clone(),
            held: VecDeque::new(),
            redeliver_scheduled: false,
            sent: Vec::new(),
            counters: BTreeMap::new(),
            next_mr: cfg.first_mr,
            // Arbitrary start; 42 is what MF667.md's E3 example uses.
            concat_ref: 41,
            usb: UsbState {
                plugged: true,
                generation: 0,
            },
            unplugs: 0,
            usb_tx,
            next_conn: 0,
            faults: Faults::default(),
            timers: Vec::new(),
            stopped: false,
            cfg,
        };
        // A stick that is simply "on" at start is already registered (a test wants a
        // ready device); with a PIN it registers once the PIN is in.
        d.update_registration(true);
        d
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }

    pub(crate) fn take_timers(&mut self) -> Vec<(Duration, Timer)> {
        std::mem::take(&mut self.timers)
    }

    pub(crate) fn schedule(&mut self, after: Duration, t: Timer) {
        self.timers.push((after, t));
    }

    /// A timer fired.
    pub(crate) fn on_timer(&mut self, t: Timer) {
        if self.stopped {
            return;
        }
        match t {
            Timer::Register { epoch } => {
                if epoch == self.net.epoch && self.can_register() {
                    let s = self.home_stat();
                    self.set_stat(s);
                }
            }
            Timer::UssdReply { id } => self.ussd_reply(id),
            Timer::StatusReport { to, mr, submitted } => self.status_report(&to, mr, submitted),
            Timer::Replug { unplug } => {
                if unplug == self.unplugs {
                    self.replug();
                }
            }
            Timer::Redeliver => self.redeliver(),
            Timer::Zusimr { left, every } => {
                if self.usb.plugged {
                    // MF667.md §3: no space after the colon.
                    self.urc_all(&[b"+ZUSIMR:2".to_vec()]);
                }
                if left > 1 {
                    self.schedule(
                        every,
                        Timer::Zusimr {
                            left: left - 1,
                            every,
                        },
                    );
                }
            }
        }
    }

    // ----- ports ---------------------------------------------------------------------

    /// Attach a new connection to `iface`; `Err` if unplugged or already open.
    pub(crate) fn attach(
        &mut self,
        iface: u8,
        tx: mpsc::UnboundedSender<PortMsg>,
        present: Arc<AtomicBool>,
    ) -> Result<u64, super::SimError> {
        let i = usize::from(iface);
        if i >= IFACES {
            return Err(super::SimError::NoSuchPort(iface));
        }
        if !self.usb.plugged || self.stopped {
            return Err(super::SimError::Unplugged);
        }
        if let Some(c) = &self.ports[i].conn {
            if !c.tx.is_closed() {
                return Err(super::SimError::Busy(iface));
            }
        }
        self.next_conn += 1;
        let id = self.next_conn;
        self.ports[i].conn = Some(Conn { id, tx, present });
        Ok(id)
    }

    /// The session with `id` on `iface` ended (client EOF or close).
    pub(crate) fn detach(&mut self, iface: u8, id: u64) {
        if let Some(p) = self.ports.get_mut(usize::from(iface)) {
            if p.conn.as_ref().is_some_and(|c| c.id == id) {
                p.conn = None;
            }
        }
    }

    /// Whether connection `id` is still the one attached to `iface` (not closed by an unplug).
    pub(crate) fn is_current(&self, iface: u8, id: u64) -> bool {
        self.ports
            .get(usize::from(iface))
            .and_then(|p| p.conn.as_ref())
            .is_some_and(|c| c.id == id)
    }

    /// Open, and a client is there to read it.
    pub(crate) fn is_attended(&self, iface: u8) -> bool {
        self.ports
            .get(usize::from(iface))
            .and_then(|p| p.conn.as_ref())
            .is_some_and(|c| !c.tx.is_closed() && c.present.load(Ordering::SeqCst))
    }

    pub(crate) fn is_open(&self, iface: u8) -> bool {
        self.ports
            .get(usize::from(iface))
            .and_then(|p| p.conn.as_ref())
            .is_some_and(|c| !c.tx.is_closed())
    }

    /// Write raw bytes to an open port (nothing if closed, as bytes sent to a port nobody
    /// reads are lost on the real stick too).
    pub(crate) fn send_raw(&mut self, iface: u8, bytes: Vec<u8>) {
        if let Some(c) = self
            .ports
            .get(usize::from(iface))
            .and_then(|p| p.conn.as_ref())
        {
            let _ = c.tx.send(PortMsg::Out(bytes));
        }
    }

    /// Frame URC lines for `iface` (V1: `\r\n<l1>\r\n<l2>\r\n`, V0: `<l1>\r\n<l2>\r\n`).
    pub(crate) fn frame_urc(&self, iface: u8, lines: &[Vec<u8>]) -> Vec<u8> {
        let verbose = self.ports[usize::from(iface)].settings.verbose;
        let mut out = Vec::new();
        if verbose {
            out.extend_from_slice(b"\r\n");
        }
        for l in lines {
            out.extend_from_slice(l);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// A URC on an AT port (if01/if02). `sms` marks the +CNMI-controlled ones, which
    /// mode 0 buffers and which trip the if02 quirk.
    pub(crate) fn urc(&mut self, iface: u8, lines: &[Vec<u8>], sms: bool) {
        if iface == 0 {
            return;
        }
        let bytes = self.frame_urc(iface, lines);
        let i = usize::from(iface);
        if sms && self.ports[i].settings.cnmi.mode == 0 {
            self.ports[i].buffered.extend_from_slice(&bytes);
            return;
        }
        let attended = self.is_attended(iface);
        self.send_raw(iface, bytes);
        if sms && attended && iface == 2 && self.cfg.if02_quirk {
            // MF667.md §5.1: SMS traffic through ttyUSB2 knocks the stick off the bus.
            bump(&mut self.counters, "if02_quirk_drops");
            let d = self.cfg.replug_delay;
            self.unplug(Some(d));
        }
    }

    /// The same URC to both AT ports.
    pub(crate) fn urc_all(&mut self, lines: &[Vec<u8>]) {
        for iface in 1..IFACES as u8 {
            self.urc(iface, lines, false);
        }
    }

    // ----- USB -----------------------------------------------------------------------

    pub(crate) fn usb_watch(&self) -> watch::Receiver<UsbState> {
        self.usb_tx.subscribe()
    }

    /// Drop off the bus: every port closes (clients read EOF), settings are lost, the
    /// USSD session dies. Stores survive (SIM and flash). `back_after`: replug later.
    pub(crate) fn unplug(&mut self, back_after: Option<Duration>) {
        if !self.usb.plugged {
            return;
        }
        bump(&mut self.counters, "unplugs");
        self.usb.plugged = false;
        self.unplugs += 1;
        for p in &mut self.ports {
            if let Some(c) = p.conn.take() {
                let _ = c.tx.send(PortMsg::Close);
            }
            p.settings = Settings::power_on();
            p.buffered.clear();
        }
        self.ussd.pending = None;
        self.ussd.menu = None;
        self.net.epoch += 1;
        self.net.stat = 0;
        self.usb_tx.send_replace(self.usb);
        if let Some(d) = back_after {
            let unplug = self.unplugs;
            self.schedule(d, Timer::Replug { unplug });
        }
    }

    /// Come back as a fresh enumeration: power-on settings everywhere, the SIM asks for
    /// its PIN again, the radio is on and registration starts.
    pub(crate) fn replug(&mut self) {
        if self.usb.plugged || self.stopped {
            return;
        }
        self.usb.plugged = true;
        self.usb.generation += 1;
        self.sim = SimCard::power_on(&self.cfg, self.sim_present);
        self.stores.mem3 = Mem::Me;
        self.net.oprt = 5;
        self.net.cfun = 1;
        self.net.stat = 0;
        self.usb_tx.send_replace(self.usb);
        self.update_registration(false);
    }

    // ----- network -------------------------------------------------------------------

    fn radio_on(&self) -> bool {
        self.usb.plugged && self.net.oprt == 5 && self.net.cfun == 1
    }

    fn can_register(&self) -> bool {
        self.radio_on() && self.net.coverage && self.sim.state == SimState::Ready
    }

    pub(crate) fn registered(&self) -> bool {
        matches!(self.net.stat, 1 | 5)
    }

    /// `+CSQ` rssi now (99 when not registered).
    pub(crate) fn csq(&self) -> u8 {
        if self.registered() {
            self.net.csq
        } else {
            99
        }
    }

    /// Move towards the registration state the conditions allow. `immediate`: register at
    /// once instead of searching for `register_delay` first.
    pub(crate) fn update_registration(&mut self, immediate: bool) {
        if self.can_register() {
            if self.registered() {
                return;
            }
            self.net.epoch += 1;
            if immediate {
                self.set_stat(self.home_stat());
            } else {
                self.set_stat(2);
                let epoch = self.net.epoch;
                let d = self.cfg.register_delay;
                self.schedule(d, Timer::Register { epoch });
            }
        } else {
            self.net.epoch += 1;
            // Radio on and a SIM but no network: searching; otherwise not searching.
            let target =
                if self.radio_on() && self.sim.state == SimState::Ready && !self.net.coverage {
                    2
                } else {
                    0
                };
            self.set_stat(target);
        }
    }

    fn home_stat(&self) -> u8 {
        if self.cfg.network.roaming {
            5
        } else {
            1
        }
    }

    /// `+CREG: <stat>[,<lac>,<ci>]` body (no prefix). ZTE prints lac/ci unquoted (MF667.md §2).
    pub(crate) fn reg_fields(&self, n: u8) -> String {
        let stat = self.net.stat;
        if n == 2 && matches!(stat, 1 | 5) {
            format!(
                "{stat},{:04X},{:08X}",
                self.cfg.network.lac, self.cfg.network.ci
            )
        } else {
            stat.to_string()
        }
    }

    fn set_stat(&mut self, stat: u8) {
        if self.net.stat == stat {
            return;
        }
        let was_registered = self.registered();
        self.net.stat = stat;
        for iface in 1..IFACES as u8 {
            let s = self.ports[usize::from(iface)].settings.clone();
            if s.creg > 0 {
                let l = format!("+CREG: {}", self.reg_fields(s.creg));
                self.urc(iface, &[l.into_bytes()], false);
            }
            if s.cgreg > 0 {
                let l = format!("+CGREG: {}", self.reg_fields(s.cgreg));
                self.urc(iface, &[l.into_bytes()], false);
            }
        }
        let now_registered = self.registered();
        if now_registered != was_registered {
            let z = if now_registered {
                format!("+ZPASR: \"{}\"", self.cfg.network.zpas)
            } else {
                "+ZPASR: \"No Service\"".to_string()
            };
            self.urc_all(&[z.into_bytes()]);
        }
        if now_registered && !self.held.is_empty() {
            self.schedule_redelivery();
        }
    }

    /// Fault: the network disappears (stat 2, searching).
    pub(crate) fn network_lost(&mut self) {
        self.net.coverage = false;
        self.update_registration(false);
    }

    /// Fault: the network is back (registers at once).
    pub(crate) fn network_back(&mut self) {
        self.net.coverage = true;
        self.update_registration(true);
    }

    // ----- receiving SMS -------------------------------------------------------------

    fn schedule_redelivery(&mut self) {
        if !self.redeliver_scheduled {
            self.redeliver_scheduled = true;
            let d = self.cfg.redelivery_delay;
            self.schedule(d, Timer::Redeliver);
        }
    }

    /// A slot in a store was freed: the network may deliver what it holds.
    pub(crate) fn slot_freed(&mut self) {
        if !self.held.is_empty() {
            self.schedule_redelivery();
        }
    }

    /// Ports that want this message routed directly (`+CMT`): 27.005 mt=2 (all but class 2)
    /// or mt=3 (class 3 only).
    fn direct_ports(&self, class: Option<u8>) -> Vec<u8> {
        (1..IFACES as u8)
            .filter(|&i| {
                let mt = self.ports[usize::from(i)].settings.cnmi.mt;
                (mt == 2 && class != Some(2)) || (mt == 3 && class == Some(3))
            })
            .collect()
    }

    /// The network delivers one SMS-DELIVER (`pdu` with SMSC prefix).
    pub(crate) fn deliver(&mut self, pdu: Vec<u8>) -> Delivery {
        if !self.usb.plugged || !self.registered() {
            bump(&mut self.counters, "sms_held");
            self.held.push_back(pdu);
            return Delivery::Held;
        }
        let decoded = sms::decode_bytes(&pdu).ok();
        let class = match &decoded {
            Some(sms::Pdu::Deliver(d)) => d.dcs.class,
            _ => None,
        };
        let direct = self.direct_ports(class);
        if !direct.is_empty() {
            bump(&mut self.counters, "sms_direct");
            for iface in direct {
                let lines = self.cmt_lines(iface, &pdu, decoded.as_ref());
                self.urc(iface, &lines, true);
            }
            return Delivery::Direct;
        }
        let mem = self.stores.mem3;
        let Some(index) = self.stores.insert(
            mem,
            Msg {
                stat: 0,
                pdu: pdu.clone(),
            },
        ) else {
            // MF667.md §5.4: no +CMTI, the SMSC keeps the message and retries later.
            bump(&mut self.counters, "sms_held");
            self.held.push_back(pdu);
            return Delivery::Held;
        };
        bump(&mut self.counters, "sms_stored");
        for iface in 1..IFACES as u8 {
            let mt = self.ports[usize::from(iface)].settings.cnmi.mt;
            if mt == 1 || mt == 3 || (mt == 2 && class == Some(2)) {
                let l = format!("+CMTI: \"{}\",{index}", mem.name());
                self.urc(iface, &[l.into_bytes()], true);
            }
        }
        Delivery::Stored {
            mem: mem.name().to_string(),
            index: u16::try_from(index).unwrap_or(u16::MAX),
        }
    }

    /// `+CMT` for `iface`: PDU mode `+CMT: ,<len>` + hex; text mode `+CMT: "<oa>",,"<scts>"`
    /// (+CSDH=1 adds the header fields) + data.
    fn cmt_lines(&self, iface: u8, pdu: &[u8], decoded: Option<&sms::Pdu>) -> Vec<Vec<u8>> {
        let s = &self.ports[usize::from(iface)].settings;
        let msg = Msg {
            stat: 0,
            pdu: pdu.to_vec(),
        };
        match (s.text_mode, decoded) {
            (true, Some(sms::Pdu::Deliver(d))) => {
                let mut head = format!(
                    "+CMT: {},,\"{}\"",
                    quote_te(&d.originator.number, s.cscs),
                    scts_text(&d.timestamp)
                )
                .into_bytes();
                if s.csdh {
                    head.extend_from_slice(
                        format!(
                            ",{},{},{},{},{},{},{}",
                            d.originator.toa,
                            d.first_octet(),
                            d.pid,
                            d.dcs.raw,
                            d.smsc
                                .as_ref()
                                .map(|a| format!("\"{}\"", a.number))
                                .unwrap_or_default(),
                            d.smsc
                                .as_ref()
                                .map(|a| a.toa.to_string())
                                .unwrap_or_default(),
                            text_len(&d.user_data)
                        )
                        .as_bytes(),
                    );
                }
                vec![head, text_data(pdu, &d.user_data, d.first_octet(), s.cscs)]
            }
            _ => vec![
                format!("+CMT: ,{}", msg.tpdu_len()).into_bytes(),
                sms::pdu::to_hex(pdu).into_bytes(),
            ],
        }
    }

    /// The network retries what it holds, in order, while there is room.
    pub(crate) fn redeliver(&mut self) {
        self.redeliver_scheduled = false;
        let mut n = self.held.len();
        while n > 0 {
            n -= 1;
            let Some(pdu) = self.held.pop_front() else {
                break;
            };
            let direct = !self.direct_ports(None).is_empty();
            if self.usb.plugged
                && self.registered()
                && (direct || !self.stores.is_full(self.stores.mem3))
            {
                // `deliver` counts it again as stored/direct.
                self.deliver(pdu);
            } else {
                self.held.push_front(pdu);
                break;
            }
        }
    }

    // ----- status reports ------------------------------------------------------------

    /// The SMSC reports delivery of message `mr` to `to`.
    pub(crate) fn status_report(&mut self, to: &str, mr: u8, submitted: DateTime<FixedOffset>) {
        if !self.usb.plugged {
            return;
        }
        let discharge = now_scts(self.cfg.tz_quarters);
        let Ok(recipient) = sms::Address::parse(to) else {
            return;
        };
        let report = sms::Pdu::StatusReport(sms::StatusReport {
            smsc: sms::Address::parse(&self.cfg.smsc).ok(),
            more_messages: false,
            loop_prevention: false,
            qualifier_command: false,
            message_reference: mr,
            recipient,
            timestamp: submitted,
            discharge,
            status: 0,
            pid: None,
            dcs: None,
            user_data: None,
        });
        let Ok(enc) = report.encode() else {
            return;
        };
        let Ok(pdu) = sms::pdu::from_hex(&enc.hex) else {
            return;
        };
        bump(&mut self.counters, "status_reports");
        let wants_store = (1..IFACES).any(|i| self.ports[i].settings.cnmi.ds == 2);
        let stored = if wants_store {
            // MF667.md §5.4: a full SR store drops reports silently.
            self.stores.insert(
                Mem::Sr,
                Msg {
                    stat: 0,
                    pdu: pdu.clone(),
                },
            )
        } else {
            None
        };
        for iface in 1..IFACES as u8 {
            let s = self.ports[usize::from(iface)].settings.clone();
            match s.cnmi.ds {
                // ZTE puts a comma before the length (oFono's quirk, MF667.md §2.1).
                1 => {
                    let lines = if s.text_mode {
                        vec![format!(
                            "+CDS: {},{mr},\"{to}\",{},\"{}\",\"{}\",0",
                            report.first_octet(),
                            report.address().toa,
                            scts_text(&submitted),
                            scts_text(&discharge)
                        )
                        .into_bytes()]
                    } else {
                        vec![
                            format!("+CDS: ,{}", enc.tpdu_len).into_bytes(),
                            enc.hex.clone().into_bytes(),
                        ]
                    };
                    self.urc(iface, &lines, true);
                }
                2 => {
                    if let Some(i) = stored {
                        let l = format!("+CDSI: \"SR\",{i}");
                        self.urc(iface, &[l.into_bytes()], true);
                    }
                }
                _ => {}
            }
        }
    }

    // ----- USSD ----------------------------------------------------------------------

    /// The network's answer to request `id` arrives.
    pub(crate) fn ussd_reply(&mut self, id: u64) {
        let Some(p) = self.ussd.pending.clone() else {
            return;
        };
        if p.id != id || !self.usb.plugged {
            return;
        }
        self.ussd.pending = None;
        let iface = p.iface;
        let s = self.ports[usize::from(iface)].settings.clone();
        let line = match &p.reply {
            None => {
                self.ussd.menu = None;
                "+CUSD: 4".to_string()
            }
            Some(spec) => {
                self.ussd.menu = (spec.state == 1).then(|| spec.menu.clone());
                if s.cscs == Charset::Ucs2 && self.cfg.ussd_ucs2_quirk {
                    // MF667.md §2.3, gammu #326: under UCS2 the MF667 answers empty.
                    format!("+CUSD: {},\"\",15", spec.state)
                } else {
                    let (text, dcs) = encode_ussd(&spec.text, spec.dcs, s.cscs);
                    format!("+CUSD: {},\"{}\",{}", spec.state, text, dcs)
                }
            }
        };
        bump(&mut self.counters, "ussd_replies");
        // 27.007: the result code is presented when <n> is 1.
        if s.cusd == 1 {
            self.urc(iface, &[line.into_bytes()], false);
        }
    }

    // ----- sending -------------------------------------------------------------------

    /// A fresh concatenation reference for an injected long message.
    pub(crate) fn next_concat_ref(&mut self) -> u16 {
        self.concat_ref = self.concat_ref.wrapping_add(1);
        self.concat_ref
    }

    /// A SIM is inserted again (PIN-locked if the config has a PIN).
    pub(crate) fn insert_sim(&mut self) {
        self.sim_present = true;
        self.sim = SimCard::power_on(&self.cfg, true);
        self.update_registration(false);
    }

    pub(crate) fn take_mr(&mut self) -> u8 {
        let mr = self.next_mr;
        self.next_mr = self.next_mr.wrapping_add(1);
        mr
    }
}

/// A USSD reply string as the stick writes it, with its DCS number. Plain text is
/// converted to the `+CSCS` charset (what ZTE does, MF667.md §2.3); the hex forms come
/// from the `ussd` codec. Text a form cannot carry (not GSM-7 for packed, too long) is
/// sent plain instead, so the reply still arrives.
pub(crate) fn encode_ussd(text: &str, dcs: UssdDcs, cscs: Charset) -> (String, u8) {
    let plain = || (String::from_utf8_lossy(&to_te(text, cscs)).into_owned(), 15);
    let form = match dcs {
        UssdDcs::Plain => return plain(),
        UssdDcs::Ucs2 => ussd::ReplyForm::Ucs2Hex,
        UssdDcs::EightBit => ussd::ReplyForm::EightBitHex,
        UssdDcs::Packed => ussd::ReplyForm::PackedHex,
    };
    match ussd::encode_reply(text, form) {
        Ok(e) => (e.text, e.dcs),
        Err(_) => plain(),
    }
}

/// The time now as an SCTS (seconds precision) at `tz` quarter hours.
pub(crate) fn now_scts(tz_quarters: i8) -> DateTime<FixedOffset> {
    let off = FixedOffset::east_opt(i32::from(tz_quarters) * 15 * 60).unwrap_or(Utc.fix());
    let t = Utc::now().with_timezone(&off);
    chrono::Timelike::with_nanosecond(&t, 0).unwrap_or(t)
}

/// `yy/MM/dd,hh:mm:ss±zz` (zone in quarter hours), the 27.005 text-mode time.
pub(crate) fn scts_text(t: &DateTime<FixedOffset>) -> String {
    let q = t.offset().local_minus_utc() / 900;
    format!("{}{:+03}", t.format("%y/%m/%d,%H:%M:%S"), q)
}

/// An address in quotes, in the TE charset.
pub(crate) fn quote_te(s: &str, cs: Charset) -> String {
    format!("\"{}\"", String::from_utf8_lossy(&to_te(s, cs)))
}

/// Text-mode `<length>`: characters for GSM-7 without a header, octets otherwise.
pub(crate) fn text_len(ud: &sms::UserData) -> usize {
    if ud.encoding == sms::Encoding::Gsm7 && ud.udh.is_none() {
        ud.data.len()
    } else {
        ud.udh.as_ref().map_or(0, Vec::len) + ud.data.len()
    }
}

/// Text-mode `<data>` (27.005 §3.1): GSM-7 without a header → text in the TE charset;
/// UCS-2, 8-bit or a user-data header → hex of the user-data octets.
pub(crate) fn text_data(pdu: &[u8], ud: &sms::UserData, fo: u8, cs: Charset) -> Vec<u8> {
    let udhi = fo & 0x40 != 0;
    if ud.encoding == sms::Encoding::Gsm7 && !udhi {
        return to_te(&ud.text, cs);
    }
    let octets = match ud.encoding {
        sms::Encoding::Gsm7 => ud.udl().saturating_mul(7).div_ceil(8),
        _ => ud.udl(),
    };
    let tail = &pdu[pdu.len().saturating_sub(octets)..];
    sms::pdu::to_hex(tail).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        let (tx, _) = watch::channel(UsbState {
            plugged: true,
            generation: 0,
        });
        Device::new(SimConfig::default(), tx)
    }

    #[test]
    fn power_on_settings_match_mf667_and_v() {
        let s = Settings::power_on();
        assert!(s.echo && s.verbose && !s.text_mode);
        assert_eq!(s.cscs, Charset::Ira);
        assert_eq!((s.mem1, s.mem2), (Mem::Me, Mem::Me));
        assert_eq!(
            s.cnmi,
            Cnmi {
                mode: 3,
                mt: 1,
                bm: 0,
                ds: 2,
                bfr: 0
            }
        );
        assert_eq!(s.cmee, 2);
    }

    #[test]
    fn charsets_round_trip() {
        assert_eq!(to_te("Hi €", Charset::Ira), b"Hi ?");
        assert_eq!(to_te("@£", Charset::Gsm), vec![0x00, 0x01]);
        assert_eq!(to_te("Hi", Charset::Ucs2), b"00480069");
        assert_eq!(from_te(b"00480069", Charset::Ucs2).as_deref(), Some("Hi"));
        assert_eq!(from_te(b"0048006", Charset::Ucs2), None);
        assert_eq!(from_te(&[0x00, 0x01], Charset::Gsm).as_deref(), Some("@£"));
        assert_eq!(from_te(&[0x80], Charset::Gsm), None);
    }

    #[test]
    fn stores_index_from_zero_and_mt_spans_me_then_sm() {
        let mut d = dev();
        let m = |n: u8| Msg {
            stat: 0,
            pdu: vec![0, n],
        };
        assert_eq!(d.stores.insert(Mem::Sm, m(1)), Some(0));
        assert_eq!(d.stores.insert(Mem::Sm, m(2)), Some(1));
        assert_eq!(d.stores.used(Mem::Sm), 2);
        assert_eq!(d.stores.total(Mem::Mt), 120);
        assert_eq!(d.stores.used(Mem::Mt), 2);
        assert_eq!(d.stores.get(Mem::Mt, 100).map(|x| x.pdu[1]), Some(1));
        assert!(d.stores.delete(Mem::Sm, 0));
        assert!(!d.stores.delete(Mem::Sm, 0));
        assert!(!d.stores.valid_index(Mem::Sm, 20));
        assert_eq!(d.stores.indices(Mem::Sm), vec![1]);
    }

    #[test]
    fn default_device_is_registered_with_signal() {
        let d = dev();
        assert_eq!(d.net.stat, 1);
        assert_eq!(d.csq(), 18);
        assert_eq!(d.reg_fields(2), "1,1A2B,00C3F1E2");
        assert_eq!(d.reg_fields(1), "1");
    }

    #[test]
    fn network_loss_searches_and_return_registers() {
        let mut d = dev();
        d.network_lost();
        assert_eq!(d.net.stat, 2);
        assert_eq!(d.csq(), 99);
        d.network_back();
        assert_eq!(d.net.stat, 1);
    }

    #[test]
    fn scts_text_uses_quarter_hours() {
        let t = DateTime::parse_from_rfc3339("2013-01-28T14:51:42+02:00").expect("valid");
        assert_eq!(scts_text(&t), "13/01/28,14:51:42+08");
        let t = DateTime::parse_from_rfc3339("2024-12-01T09:05:00-03:00").expect("valid");
        assert_eq!(scts_text(&t), "24/12/01,09:05:00-12");
    }

    #[test]
    fn ussd_encodings_match_mf667_examples() {
        // MF667.md §2.3.
        assert_eq!(
            encode_ussd("Balance: 10.00 EUR", UssdDcs::Ucs2, Charset::Ira),
            (
                "00420061006C0061006E00630065003A002000310030002E003000300020004500550052".into(),
                72
            )
        );
        assert_eq!(
            encode_ussd("Balance: 10.00 EUR", UssdDcs::EightBit, Charset::Ira),
            ("42616C616E63653A2031302E303020455552".into(), 68)
        );
        assert_eq!(
            encode_ussd("Balance", UssdDcs::Plain, Charset::Gsm),
            ("Balance".into(), 15)
        );
        // `*100#` packed is AA180C3602 (MF667.md §2.3).
        assert_eq!(
            encode_ussd("*100#", UssdDcs::Packed, Charset::Ira),
            ("AA180C3602".into(), 15)
        );
    }

    #[test]
    fn packed_ussd_pads_seven_spare_bits_with_cr() {
        // 7 characters leave 7 spare bits in the 7th octet: they carry CR (23.038).
        let (hex, _) = encode_ussd("1234567", UssdDcs::Packed, Charset::Ira);
        let octets = sms::pdu::from_hex(&hex).expect("hex");
        assert_eq!(octets.len(), 7);
        assert_eq!(octets[6] >> 1, 0x0D);
    }
}
