//! Events: what the engine tells rules, scripts, the journal and the CLI.
//!
//! A leaf module (value types only, no I/O, no tokio). The variant names are the
//! words users write under a rule's `when:` key (`sms`, `ussd`, `link`, …), so users,
//! logs and code share one vocabulary. Every payload is `Serialize`, which is how
//! rules and scripts see it (a Rhai map) and how the journal stores it (JSON).

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

/// One thing that happened. Serialised with a `kind` tag, e.g.
/// `{"kind":"sms","modem":"main","from":"+4917…",…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A complete (or timed-out, incomplete) SMS was archived.
    Sms(SmsReceived),
    /// A status report for a message we sent.
    SmsStatus(SmsStatus),
    /// The result of sending one of our messages (all parts sent, or failed).
    SmsSent(SmsSent),
    /// A PDU that could not be decoded; archived raw.
    SmsUndecodable(SmsUndecodable),
    /// A USSD reply or a network-initiated USSD.
    Ussd(UssdEvent),
    /// The serial link (or a data interface) went down or came up.
    Link(LinkEvent),
    /// Network registration changed.
    Network(NetworkEvent),
    /// Signal quality changed noticeably.
    Signal(SignalEvent),
    /// Message storage became full (or had room again).
    Storage(StorageEvent),
    /// An incoming call (RING / +CLIP).
    Call(CallEvent),
    /// An automatic recovery step was taken.
    Recovery(RecoveryEvent),
    /// A send budget stopped an outgoing SMS.
    SendLimit(SendLimitEvent),
    /// The daemon (or a modem) started.
    Startup(StartupEvent),
    /// A scheduled job is due.
    Schedule(ScheduleEvent),
}

impl Event {
    /// The `when:` word for this event (`sms`, `link`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Sms(_) => "sms",
            Event::SmsStatus(_) => "sms_status",
            Event::SmsSent(_) => "sms_sent",
            Event::SmsUndecodable(_) => "sms_undecodable",
            Event::Ussd(_) => "ussd",
            Event::Link(_) => "link",
            Event::Network(_) => "network",
            Event::Signal(_) => "signal",
            Event::Storage(_) => "storage",
            Event::Call(_) => "call",
            Event::Recovery(_) => "recovery",
            Event::SendLimit(_) => "send_limit",
            Event::Startup(_) => "startup",
            Event::Schedule(_) => "schedule",
        }
    }

    /// The modem the event came from, when it came from one.
    pub fn modem(&self) -> Option<&str> {
        let m = match self {
            Event::Sms(e) => &e.modem,
            Event::SmsStatus(e) => &e.modem,
            Event::SmsSent(e) => &e.modem,
            Event::SmsUndecodable(e) => &e.modem,
            Event::Ussd(e) => &e.modem,
            Event::Link(e) => &e.modem,
            Event::Network(e) => &e.modem,
            Event::Signal(e) => &e.modem,
            Event::Storage(e) => &e.modem,
            Event::Call(e) => &e.modem,
            Event::Recovery(e) => &e.modem,
            Event::SendLimit(e) => &e.modem,
            Event::Startup(e) => &e.modem,
            Event::Schedule(_) => return None,
        };
        Some(m.as_str())
    }

    /// The payload as a JSON object (with `kind`), for the journal, scripts and templates.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Text encoding of a message, as users see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TextEncoding {
    /// GSM 03.38 default alphabet (7-bit).
    #[serde(rename = "gsm7")]
    Gsm7,
    /// UCS-2 / UTF-16.
    #[serde(rename = "ucs2")]
    Ucs2,
    /// 8-bit data.
    #[serde(rename = "8bit")]
    EightBit,
}

/// A received SMS, after it was durably archived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsReceived {
    /// Modem name.
    pub modem: String,
    /// Archive row id.
    pub id: i64,
    /// Sender: `+49…` for international numbers, digits for national, text for alphanumeric.
    pub from: String,
    /// The whole text (all parts joined).
    pub text: String,
    /// Service-centre time stamp of the (first) part, with the sender's offset.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// SMSC address, when the PDU carried one.
    pub smsc: Option<String>,
    /// Encoding of the text.
    pub encoding: TextEncoding,
    /// Message class (0 = flash), if any.
    pub class: Option<u8>,
    /// Number of parts the message had (1 for a single SMS).
    pub parts: u16,
    /// True when the message was delivered after the multipart timeout with parts missing.
    pub incomplete: bool,
}

/// A status report matched (or not) to a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsStatus {
    /// Modem name.
    pub modem: String,
    /// TP-MR of the part the report is about.
    pub reference: u8,
    /// Recipient address in the report.
    pub to: String,
    /// `delivered`, `pending` or `failed`.
    pub status: String,
    /// The raw TP-ST octet.
    pub st: u8,
    /// The outbox message id the report matched, if any.
    pub message_id: Option<i64>,
    /// Discharge time (when the SMSC delivered or gave up).
    pub discharge: Option<DateTime<FixedOffset>>,
}

/// The outcome of sending one outgoing message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsSent {
    /// Modem name.
    pub modem: String,
    /// Outbox message id.
    pub id: i64,
    /// Recipient.
    pub to: String,
    /// The text.
    pub text: String,
    /// Number of parts.
    pub parts: u16,
    /// `sent` or `failed`.
    pub state: String,
    /// TP-MR of each part that was sent.
    pub references: Vec<u8>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// A PDU the decoder rejected; it is archived raw before it is deleted from the SIM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmsUndecodable {
    /// Modem name.
    pub modem: String,
    /// Archive row id.
    pub id: i64,
    /// The hex PDU as the modem printed it.
    pub pdu: String,
    /// The decoder's message.
    pub error: String,
}

/// A USSD reply as returned to a caller, or a network-initiated USSD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdReply {
    /// Decoded text (may be empty, e.g. `+CUSD: 2`).
    pub text: String,
    /// Session state `m`: 0 done, 1 more input wanted, 2 ended by network,
    /// 3 other client, 4 not supported, 5 network timeout.
    pub status: u8,
    /// The data coding scheme the modem reported.
    pub dcs: u8,
}

/// A USSD event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UssdEvent {
    /// Modem name.
    pub modem: String,
    /// Decoded text.
    pub text: String,
    /// Session state (see [`UssdReply::status`]).
    pub status: u8,
    /// DCS.
    pub dcs: u8,
    /// True when no request of ours was waiting for it.
    pub network_initiated: bool,
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    /// The port is open and initialised (or the interface is up).
    Up,
    /// The port vanished or failed (or the interface is down).
    Down,
}

/// Which link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// The AT port.
    Serial,
    /// A data interface such as `ppp0` or `wwan0`.
    Data,
}

/// A link change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEvent {
    /// Modem name.
    pub modem: String,
    /// New state.
    pub state: LinkState,
    /// Serial port or data interface (named `via`, because `kind` is the event's tag).
    pub via: LinkKind,
    /// Device path or interface name.
    pub device: Option<String>,
    /// Why it went down.
    pub reason: Option<String>,
    /// On `up` after a `down`: how long it was down, in milliseconds.
    pub downtime_ms: Option<u64>,
}

/// Registration state, as rules name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkState {
    /// Registered on the home network.
    Registered,
    /// Registered, roaming.
    Roaming,
    /// Not registered yet, searching (at start-up).
    Searching,
    /// Was registered and is not any more (searching again, or offline).
    Lost,
    /// Registration denied.
    Denied,
    /// Unknown.
    Unknown,
}

/// A registration change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkEvent {
    /// Modem name.
    pub modem: String,
    /// New state.
    pub state: NetworkState,
    /// Operator name, when known.
    pub operator: Option<String>,
    /// Access technology (`UMTS`, `GSM`, `HSDPA`…), when known.
    pub tech: Option<String>,
    /// Location area code (hex), when known.
    pub lac: Option<String>,
    /// Cell id (hex), when known.
    pub ci: Option<String>,
}

/// Signal quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    /// Raw `+CSQ` rssi (0–31, 99 unknown).
    pub csq: u8,
    /// dBm (−113 + 2·csq), `None` when unknown.
    pub dbm: Option<i32>,
    /// 0–5 bars.
    pub bars: u8,
}

impl Signal {
    /// From a `+CSQ` rssi value.
    pub fn from_csq(csq: u8) -> Signal {
        if csq > 31 {
            return Signal {
                csq,
                dbm: None,
                bars: 0,
            };
        }
        let dbm = -113 + 2 * i32::from(csq);
        let bars = match csq {
            0..=1 => 0,
            2..=9 => 1,
            10..=14 => 2,
            15..=19 => 3,
            20..=24 => 4,
            _ => 5,
        };
        Signal {
            csq,
            dbm: Some(dbm),
            bars,
        }
    }
}

/// A signal change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalEvent {
    /// Modem name.
    pub modem: String,
    /// Raw rssi.
    pub csq: u8,
    /// dBm, when known.
    pub dbm: Option<i32>,
    /// 0–5 bars.
    pub bars: u8,
}

/// Storage state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageEvent {
    /// Modem name.
    pub modem: String,
    /// `full` or `ok`.
    pub state: String,
    /// Memory name (`SM`, `ME`, `SR`).
    pub memory: String,
    /// Slots used.
    pub used: u32,
    /// Slots in all.
    pub total: u32,
}

/// An incoming call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Modem name.
    pub modem: String,
    /// Caller number from `+CLIP`, when shown.
    pub from: Option<String>,
    /// Call type from `+CRING` (`VOICE`…), when given.
    pub call_type: Option<String>,
}

/// An automatic recovery step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryEvent {
    /// Modem name.
    pub modem: String,
    /// The command or step taken (`AT+ZOPRT=5`…).
    pub step: String,
    /// 1 for the first try.
    pub attempt: u32,
    /// `ok` or the error text.
    pub result: String,
}

/// A send budget refused an SMS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendLimitEvent {
    /// Modem name.
    pub modem: String,
    /// Recipient of the refused SMS.
    pub to: String,
    /// Which limit (`per_hour`, `per_day`, `per_recipient`).
    pub limit: String,
}

/// Start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartupEvent {
    /// Modem name (the daemon emits one per modem once it is initialised).
    pub modem: String,
}

/// A scheduled job is due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleEvent {
    /// Job name (the rule name, or `script:fn`).
    pub job: String,
}

/// A received SMS from `from` on modem `main`, for unit tests across the crate.
#[cfg(test)]
pub(crate) fn test_sms(from: &str, text: &str) -> Event {
    Event::Sms(SmsReceived {
        modem: "main".into(),
        id: 1,
        from: from.into(),
        text: text.into(),
        timestamp: None,
        smsc: None,
        encoding: TextEncoding::Gsm7,
        class: None,
        parts: 1,
        incomplete: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_from_csq() {
        assert_eq!(Signal::from_csq(18).dbm, Some(-77));
        assert_eq!(Signal::from_csq(18).bars, 3);
        assert_eq!(Signal::from_csq(99).dbm, None);
        assert_eq!(Signal::from_csq(31).bars, 5);
    }

    #[test]
    fn serialises_with_kind_tag() {
        let e = Event::Link(LinkEvent {
            modem: "main".into(),
            state: LinkState::Down,
            via: LinkKind::Serial,
            device: None,
            reason: Some("EOF".into()),
            downtime_ms: None,
        });
        let v = e.to_json();
        assert_eq!(v["kind"], "link");
        assert_eq!(v["state"], "down");
        assert_eq!(v["via"], "serial");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.kind(), "link");
        assert_eq!(e.modem(), Some("main"));
    }
}
