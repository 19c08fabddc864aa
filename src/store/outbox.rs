//! Messages we send: `outbox` (one row per message) and `outbox_parts` (one row per
//! part, with its progress and delivery).
//!
//! # Lifecycle
//! 1. [`Store::enqueue_outgoing`] — written before the modem is touched, so a crash
//!    never forgets a message someone asked us to send. State `queued`.
//! 2. [`Store::begin_attempt`] — counts the attempt (durably, so a message that
//!    crashes the daemon every time is not retried for ever).
//! 3. Per part: [`Store::mark_part_sending`] just before `AT+CMGS`, then
//!    [`Store::mark_part_sent`] with the TP-MR from `+CMGS: <mr>`. After a crash, a
//!    part still `sending` is *in doubt*: the SMSC may or may not have it, and
//!    resending risks a double while skipping risks a loss — the runtime decides
//!    (see [`Outgoing::in_doubt`]).
//! 4. [`Store::mark_sent`] (all parts accepted) or [`Store::mark_failed`] (retry at
//!    a time, or never).
//! 5. Status reports update each part's and the message's `delivery`
//!    (see `reports.rs`).
//!
//! [`Store::pending_outgoing`] lists what to resume after a restart: queued messages
//! with the parts already sent, so a half-sent multipart message can be completed
//! with the remaining parts (same reference) or reported.

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::Fail;
use super::{col_scts, col_utc, col_utc_opt, fmt_utc, number, Store, StoreError};
use crate::event::SmsSent;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutgoing {
    /// Modem name.
    pub modem: String,
    /// Recipient.
    pub to: String,
    /// Whole text.
    pub text: String,
    /// Number of parts planned (1–255).
    pub parts: u16,
    /// Concatenation reference chosen for a multipart message, so a resumed message
    /// uses the same one.
    pub reference: Option<u16>,
    /// The planned SMS-SUBMIT PDUs (hex), one per part, or empty when they are built
    /// at send time.
    pub pdus: Vec<String>,
    /// Whether status reports were requested (TP-SRR).
    pub status_report: bool,
}

/// Where an outgoing message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutgoingState {
    /// Not (fully) sent yet; will be tried at `next_attempt_at`.
    Queued,
    /// Every part was accepted by the SMSC.
    Sent,
    /// Gave up.
    Failed,
}

/// Where one part stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartState {
    /// Not sent.
    Pending,
    /// Handed to the modem, no answer recorded (in doubt after a crash).
    Sending,
    /// Accepted by the SMSC, with a TP-MR.
    Sent,
}

/// What status reports say about a part or a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// No final report yet (or the SMSC is still trying).
    Pending,
    /// Delivered (for a message: every part).
    Delivered,
    /// Failed for good (for a message: any part).
    Failed,
}

macro_rules! text_enum {
    ($t:ty, $what:literal, $($v:ident = $s:literal),+) => {
        impl $t {
            /// The word stored in the database (and shown to users).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }
            fn parse(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(format!("unknown {} {other:?}", $what)),
                }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
text_enum!(
    OutgoingState,
    "state",
    Queued = "queued",
    Sent = "sent",
    Failed = "failed"
);
text_enum!(
    PartState,
    "part state",
    Pending = "pending",
    Sending = "sending",
    Sent = "sent"
);
text_enum!(
    DeliveryState,
    "delivery state",
    Pending = "pending",
    Delivered = "delivered",
    Failed = "failed"
);

fn col_text_enum<T>(
    row: &Row<'_>,
    col: &str,
    parse: fn(&str) -> Result<T, String>,
) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(col)?;
    s.map(|s| {
        parse(&s).map_err(|m| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("column {col}: {m}").into(),
            )
        })
    })
    .transpose()
}

/// One part of an outgoing message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutgoingPart {
    /// Part number, from 1.
    pub seq: u8,
    /// The planned SMS-SUBMIT PDU, when it was stored.
    pub pdu: Option<String>,
    /// Progress.
    pub state: PartState,
    /// TP-MR the modem returned.
    pub mr: Option<u8>,
    /// When the SMSC accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// What the latest status report said.
    pub delivery: Option<DeliveryState>,
    /// TP-ST of the latest status report.
    pub st: Option<u8>,
    /// Discharge time of the latest status report.
    pub discharge: Option<DateTime<FixedOffset>>,
}

/// An outgoing message as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outgoing {
    /// Outbox id.
    pub id: i64,
    /// Modem name.
    pub modem: String,
    /// Recipient.
    pub to: String,
    /// Whole text.
    pub text: String,
    /// Concatenation reference, for a multipart message.
    pub reference: Option<u16>,
    /// Whether status reports were requested.
    pub status_report: bool,
    /// Sending progress.
    pub state: OutgoingState,
    /// Delivery, from status reports (`None` before any).
    pub delivery: Option<DeliveryState>,
    /// Attempts started.
    pub attempts: u32,
    /// When the last attempt started.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When to try again (`None`: as soon as possible).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub created_at: DateTime<Utc>,
    /// When the last part was accepted.
    pub sent_at: Option<DateTime<Utc>>,
    /// When the network delivered the last part.
    pub delivered_at: Option<DateTime<Utc>>,
    /// The latest error.
    pub error: Option<String>,
    /// The parts, in order.
    pub parts: Vec<OutgoingPart>,
}

impl Outgoing {
    /// Parts sent, as (seq, TP-MR).
    pub fn sent_parts(&self) -> Vec<(u8, u8)> {
        self.parts
            .iter()
            .filter(|p| p.state == PartState::Sent)
            .filter_map(|p| p.mr.map(|mr| (p.seq, mr)))
            .collect()
    }

    /// Parts that still have to go out (pending or in doubt).
    pub fn unsent_parts(&self) -> Vec<u8> {
        self.parts
            .iter()
            .filter(|p| p.state != PartState::Sent)
            .map(|p| p.seq)
            .collect()
    }

    /// Parts handed to the modem without a recorded answer: after a crash nobody
    /// knows whether the SMSC has them.
    pub fn in_doubt(&self) -> Vec<u8> {
        self.parts
            .iter()
            .filter(|p| p.state == PartState::Sending)
            .map(|p| p.seq)
            .collect()
    }

    /// The `sms_sent` event payload, once the message is sent or failed.
    pub fn to_sent_event(&self) -> Option<SmsSent> {
        if self.state == OutgoingState::Queued {
            return None;
        }
        Some(SmsSent {
            modem: self.modem.clone(),
            id: self.id,
            to: self.to.clone(),
            text: self.text.clone(),
            parts: self.parts.len() as u16,
            state: self.state.as_str().to_owned(),
            references: self.parts.iter().filter_map(|p| p.mr).collect(),
            error: self.error.clone(),
        })
    }
}

/// When to try a failed message again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Never: the failure is permanent (state `failed`).
    Never,
    /// At this time (state stays `queued`).
    At(DateTime<Utc>),
}

/// Which outgoing messages to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxQuery {
    /// Only this modem.
    pub modem: Option<String>,
    /// Only to this recipient (any number format).
    pub to: Option<String>,
    /// Only in this state.
    pub state: Option<OutgoingState>,
    /// Only enqueued at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many; 0 = no limit.
    pub limit: usize,
}

const SELECT_OUTGOING: &str = "SELECT id, modem, number, text, reference, report, state, delivery,
        attempts, last_attempt_at, next_attempt_at, created_at, sent_at, delivered_at, error
   FROM outbox";

fn outgoing_from_row(row: &Row<'_>) -> rusqlite::Result<Outgoing> {
    Ok(Outgoing {
        id: row.get("id")?,
        modem: row.get("modem")?,
        to: row.get("number")?,
        text: row.get("text")?,
        reference: row.get("reference")?,
        status_report: row.get("report")?,
        state: col_text_enum(row, "state", OutgoingState::parse)?.unwrap_or(OutgoingState::Queued),
        delivery: col_text_enum(row, "delivery", DeliveryState::parse)?,
        attempts: row.get("attempts")?,
        last_attempt_at: col_utc_opt(row, "last_attempt_at")?,
        next_attempt_at: col_utc_opt(row, "next_attempt_at")?,
        created_at: col_utc(row, "created_at")?,
        sent_at: col_utc_opt(row, "sent_at")?,
        delivered_at: col_utc_opt(row, "delivered_at")?,
        error: row.get("error")?,
        parts: Vec::new(),
    })
}

fn load_parts(conn: &rusqlite::Connection, id: i64) -> rusqlite::Result<Vec<OutgoingPart>> {
    conn.prepare_cached(
        "SELECT seq, pdu, state, mr, sent_at, delivery, st, discharge
           FROM outbox_parts WHERE message_id = ?1 ORDER BY seq",
    )?
    .query_map([id], |r| {
        Ok(OutgoingPart {
            seq: r.get("seq")?,
            pdu: r.get("pdu")?,
            state: col_text_enum(r, "state", PartState::parse)?.unwrap_or(PartState::Pending),
            mr: r.get("mr")?,
            sent_at: col_utc_opt(r, "sent_at")?,
            delivery: col_text_enum(r, "delivery", DeliveryState::parse)?,
            st: r.get("st")?,
            discharge: col_scts(r, "discharge")?,
        })
    })?
    .collect()
}

/// Runs a query over `outbox` and loads each message's parts.
fn query_outgoing(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
    keep: impl Fn(&Outgoing) -> bool,
    limit: usize,
) -> rusqlite::Result<Vec<Outgoing>> {
    let mut st = conn.prepare_cached(sql)?;
    let mut out = Vec::new();
    for row in st.query_map(params, outgoing_from_row)? {
        let mut o = row?;
        if !keep(&o) {
            continue;
        }
        o.parts = load_parts(conn, o.id)?;
        out.push(o);
        if limit != 0 && out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn load_outgoing(
    conn: &rusqlite::Connection,
    id: i64,
) -> rusqlite::Result<Option<Outgoing>> {
    let o = conn
        .prepare_cached(&format!("{SELECT_OUTGOING} WHERE id = ?1"))?
        .query_row([id], outgoing_from_row)
        .optional()?;
    o.map(|mut o| {
        o.parts = load_parts(conn, id)?;
        Ok(o)
    })
    .transpose()
}

/// The state of message `id`, or NotFound.
fn state_of(tx: &Transaction<'_>, id: i64) -> Result<OutgoingState, Fail> {
    let s: Option<String> = tx
        .prepare_cached("SELECT state FROM outbox WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let s = s.ok_or(Fail::NotFound {
        what: "outgoing message",
        id,
    })?;
    OutgoingState::parse(&s).map_err(|m| Fail::Corrupt(format!("outbox.state: {m}")))
}

fn part_exists(tx: &Transaction<'_>, id: i64, seq: u8) -> Result<(), Fail> {
    let found = tx
        .prepare_cached("SELECT 1 FROM outbox_parts WHERE message_id = ?1 AND seq = ?2")?
        .exists(params![id, seq])?;
    if !found {
        return Err(Fail::Invalid(format!(
            "outgoing message {id} has no part {seq}"
        )));
    }
    Ok(())
}

/// Recomputes `outbox.delivery` from the parts: failed if any part failed for good,
/// delivered when every part was delivered, pending while reports are expected or
/// some are in; `delivered_at` is the latest part's discharge time.
pub(crate) fn refresh_delivery(tx: &Transaction<'_>, id: i64) -> Result<(), Fail> {
    let parts: Vec<(Option<String>, Option<String>)> = tx
        .prepare_cached("SELECT delivery, discharge FROM outbox_parts WHERE message_id = ?1")?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let (report, state): (bool, String) = tx
        .prepare_cached("SELECT report, state FROM outbox WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let failed = parts.iter().any(|(d, _)| d.as_deref() == Some("failed"));
    let all_delivered =
        !parts.is_empty() && parts.iter().all(|(d, _)| d.as_deref() == Some("delivered"));
    let any_report = parts.iter().any(|(d, _)| d.is_some());
    let delivery = if failed {
        Some(DeliveryState::Failed)
    } else if all_delivered {
        Some(DeliveryState::Delivered)
    } else if any_report || (report && state == "sent") {
        Some(DeliveryState::Pending)
    } else {
        None
    };
    let delivered_at = if delivery == Some(DeliveryState::Delivered) {
        let mut latest: Option<DateTime<Utc>> = None;
        for (_, discharge) in &parts {
            if let Some(s) = discharge {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| Fail::Corrupt(format!("outbox_parts.discharge {s:?}: {e}")))?
                    .with_timezone(&Utc);
                latest = Some(latest.map_or(t, |l| l.max(t)));
            }
        }
        Some(fmt_utc(latest.unwrap_or_else(Utc::now)))
    } else {
        None
    };
    tx.prepare_cached("UPDATE outbox SET delivery = ?2, delivered_at = ?3 WHERE id = ?1")?
        .execute(params![
            id,
            delivery.map(DeliveryState::as_str),
            delivered_at
        ])?;
    Ok(())
}

impl Store {
    /// Writes a message to send, with one row per planned part; durable before the
    /// modem is touched. Returns the outbox id.
    pub fn enqueue_outgoing(&self, m: &NewOutgoing) -> Result<i64, StoreError> {
        self.write("enqueue_outgoing", |tx| {
            if m.parts == 0 || m.parts > 255 {
                return Err(Fail::Invalid(format!(
                    "a message has 1 to 255 parts, not {}",
                    m.parts
                )));
            }
            if !m.pdus.is_empty() && m.pdus.len() != usize::from(m.parts) {
                return Err(Fail::Invalid(format!(
                    "{} planned PDUs for {} parts",
                    m.pdus.len(),
                    m.parts
                )));
            }
            if m.to.trim().is_empty() {
                return Err(Fail::Invalid("no recipient".into()));
            }
            tx.prepare_cached(
                "INSERT INTO outbox (modem, number, text, parts, reference, report, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                m.modem,
                m.to,
                m.text,
                m.parts,
                m.reference,
                m.status_report,
                fmt_utc(Utc::now())
            ])?;
            let id = tx.last_insert_rowid();
            let mut st = tx.prepare_cached(
                "INSERT INTO outbox_parts (message_id, seq, pdu) VALUES (?1, ?2, ?3)",
            )?;
            for seq in 1..=m.parts {
                let pdu = m.pdus.get(usize::from(seq - 1)).map(|p| p.trim());
                st.execute(params![id, seq, pdu])?;
            }
            Ok(id)
        })
    }

    /// Counts a send attempt before the modem is touched; returns the attempts so
    /// far (including this one).
    pub fn begin_attempt(&self, id: i64) -> Result<u32, StoreError> {
        self.write("begin_attempt", |tx| {
            if state_of(tx, id)? != OutgoingState::Queued {
                return Err(Fail::Invalid(format!(
                    "outgoing message {id} is not queued"
                )));
            }
            Ok(tx
                .prepare_cached(
                    "UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?2
                      WHERE id = ?1 RETURNING attempts",
                )?
                .query_row(params![id, fmt_utc(Utc::now())], |r| r.get(0))?)
        })
    }

    /// Part `seq` is being handed to the modem (`AT+CMGS`). If the daemon dies
    /// before [`Store::mark_part_sent`], the part is reported as in doubt. A part
    /// already sent stays sent.
    pub fn mark_part_sending(&self, id: i64, seq: u8) -> Result<(), StoreError> {
        self.write("mark_part_sending", |tx| {
            state_of(tx, id)?;
            part_exists(tx, id, seq)?;
            tx.prepare_cached(
                "UPDATE outbox_parts SET state = 'sending'
                  WHERE message_id = ?1 AND seq = ?2 AND state <> 'sent'",
            )?
            .execute(params![id, seq])?;
            Ok(())
        })
    }

    /// Part `seq` was accepted by the SMSC with TP-MR `mr` (`+CMGS: <mr>`).
    /// Recorded whatever the message's state, since it is what happened.
    pub fn mark_part_sent(&self, id: i64, seq: u8, mr: u8) -> Result<(), StoreError> {
        self.write("mark_part_sent", |tx| {
            state_of(tx, id)?;
            part_exists(tx, id, seq)?;
            tx.prepare_cached(
                "UPDATE outbox_parts SET state = 'sent', mr = ?3, sent_at = ?4
                  WHERE message_id = ?1 AND seq = ?2",
            )?
            .execute(params![id, seq, mr, fmt_utc(Utc::now())])?;
            Ok(())
        })
    }

    /// Every part went out: the message is `sent`. Refused while a part is not
    /// recorded as sent (its TP-MR is needed to match status reports).
    pub fn mark_sent(&self, id: i64) -> Result<(), StoreError> {
        self.write("mark_sent", |tx| {
            state_of(tx, id)?;
            let unsent: Vec<u8> = tx
                .prepare_cached(
                    "SELECT seq FROM outbox_parts WHERE message_id = ?1 AND state <> 'sent'
                      ORDER BY seq",
                )?
                .query_map([id], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            if !unsent.is_empty() {
                return Err(Fail::Invalid(format!(
                    "outgoing message {id} still has unsent parts {unsent:?}"
                )));
            }
            tx.prepare_cached(
                "UPDATE outbox SET state = 'sent', sent_at = ?2, next_attempt_at = NULL,
                        error = NULL
                  WHERE id = ?1",
            )?
            .execute(params![id, fmt_utc(Utc::now())])?;
            refresh_delivery(tx, id)
        })
    }

    /// Sending failed. Parts marked `sending` go back to `pending` (the caller saw
    /// the failure, so they were not accepted). With [`Retry::At`] the message stays
    /// queued until then; with [`Retry::Never`] it is `failed`.
    pub fn mark_failed(&self, id: i64, error: &str, retry: Retry) -> Result<(), StoreError> {
        self.write("mark_failed", |tx| {
            if state_of(tx, id)? == OutgoingState::Sent {
                return Err(Fail::Invalid(format!(
                    "outgoing message {id} was already sent"
                )));
            }
            let (state, next) = match retry {
                Retry::Never => (OutgoingState::Failed, None),
                Retry::At(t) => (OutgoingState::Queued, Some(fmt_utc(t))),
            };
            tx.prepare_cached(
                "UPDATE outbox SET state = ?2, next_attempt_at = ?3, error = ?4 WHERE id = ?1",
            )?
            .execute(params![id, state.as_str(), next, error])?;
            tx.prepare_cached(
                "UPDATE outbox_parts SET state = 'pending'
                  WHERE message_id = ?1 AND state = 'sending'",
            )?
            .execute([id])?;
            Ok(())
        })
    }

    /// One outgoing message by id.
    pub fn outgoing(&self, id: i64) -> Result<Option<Outgoing>, StoreError> {
        self.read("outgoing", |c| Ok(load_outgoing(c, id)?))
    }

    /// Every queued message of `modem` (including those waiting for a retry time),
    /// oldest first: what to resume after a restart.
    pub fn pending_outgoing(&self, modem: &str) -> Result<Vec<Outgoing>, StoreError> {
        self.read("pending_outgoing", |c| {
            Ok(query_outgoing(
                c,
                &format!("{SELECT_OUTGOING} WHERE modem = ?1 AND state = 'queued' ORDER BY id"),
                [modem],
                |_| true,
                0,
            )?)
        })
    }

    /// Queued messages of `modem` whose retry time has come, oldest first.
    pub fn due_outgoing(
        &self,
        modem: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Outgoing>, StoreError> {
        self.read("due_outgoing", |c| {
            Ok(query_outgoing(
                c,
                &format!(
                    "{SELECT_OUTGOING} WHERE modem = ?1 AND state = 'queued'
                       AND (next_attempt_at IS NULL OR next_attempt_at <= ?2) ORDER BY id"
                ),
                params![modem, fmt_utc(now)],
                |_| true,
                0,
            )?)
        })
    }

    /// Outgoing messages, newest first.
    pub fn outbox(&self, q: &OutboxQuery) -> Result<Vec<Outgoing>, StoreError> {
        self.read("outbox", |c| {
            Ok(query_outgoing(
                c,
                &format!(
                    "{SELECT_OUTGOING} WHERE (?1 IS NULL OR modem = ?1) AND (?2 IS NULL OR state = ?2)
                       AND (?3 IS NULL OR created_at >= ?3)
                     ORDER BY created_at DESC, id DESC"
                ),
                params![q.modem, q.state.map(OutgoingState::as_str), q.since.map(fmt_utc)],
                |o| q.to.as_deref().is_none_or(|to| number::numbers_match(&o.to, to)),
                q.limit,
            )?)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn new(to: &str, parts: u16) -> NewOutgoing {
        NewOutgoing {
            modem: "main".into(),
            to: to.into(),
            text: "hello ".repeat(usize::from(parts) * 30),
            parts,
            reference: (parts > 1).then_some(0x1234),
            pdus: Vec::new(),
            status_report: true,
        }
    }

    #[test]
    fn a_message_goes_from_queued_to_sent() {
        let s = Store::open_in_memory().unwrap();
        let id = s
            .enqueue_outgoing(&NewOutgoing {
                pdus: vec!["0011000C9194...".into(), "0051000C9194...".into()],
                ..new("+4917612345678", 2)
            })
            .unwrap();
        let o = s.outgoing(id).unwrap().unwrap();
        assert_eq!(o.state, OutgoingState::Queued);
        assert_eq!(o.parts.len(), 2);
        assert_eq!(o.parts[1].pdu.as_deref(), Some("0051000C9194..."));
        assert_eq!(o.unsent_parts(), [1, 2]);
        assert_eq!(o.to_sent_event(), None);

        assert_eq!(s.begin_attempt(id).unwrap(), 1);
        s.mark_part_sending(id, 1).unwrap();
        s.mark_part_sent(id, 1, 17).unwrap();
        // Sending an already-sent part again is harmless.
        s.mark_part_sending(id, 1).unwrap();
        assert_eq!(
            s.outgoing(id).unwrap().unwrap().parts[0].state,
            PartState::Sent
        );
        // Not all parts out yet.
        let err = s.mark_sent(id).unwrap_err();
        assert!(err.to_string().contains("unsent parts [2]"), "{err}");
        s.mark_part_sending(id, 2).unwrap();
        s.mark_part_sent(id, 2, 18).unwrap();
        s.mark_sent(id).unwrap();

        let o = s.outgoing(id).unwrap().unwrap();
        assert_eq!(o.state, OutgoingState::Sent);
        assert_eq!(o.sent_parts(), [(1, 17), (2, 18)]);
        assert_eq!(o.delivery, Some(DeliveryState::Pending));
        assert!(o.sent_at.is_some());
        let ev = o.to_sent_event().unwrap();
        assert_eq!(ev.state, "sent");
        assert_eq!(ev.references, [17, 18]);
        assert_eq!(ev.parts, 2);
        assert!(s.pending_outgoing("main").unwrap().is_empty());
    }

    #[test]
    fn bad_enqueue_arguments_are_refused() {
        let s = Store::open_in_memory().unwrap();
        for m in [
            new("+49176", 0),
            new("+49176", 256),
            new("  ", 1),
            NewOutgoing {
                pdus: vec!["00".into()],
                ..new("+49176", 2)
            },
        ] {
            let err = s.enqueue_outgoing(&m).unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        op: "enqueue_outgoing",
                        ..
                    }
                ),
                "{err:?}"
            );
        }
        assert!(s.outbox(&OutboxQuery::default()).unwrap().is_empty());
        let err = s.mark_part_sent(42, 1, 1).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { id: 42, .. }),
            "{err:?}"
        );
        let id = s.enqueue_outgoing(&new("+49176", 1)).unwrap();
        let err = s.mark_part_sent(id, 2, 1).unwrap_err();
        assert!(err.to_string().contains("no part 2"), "{err}");
    }

    #[test]
    fn a_half_sent_multipart_message_is_resumed_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        let id;
        {
            let s = Store::open(&path).unwrap();
            id = s.enqueue_outgoing(&new("+4917612345678", 3)).unwrap();
            s.enqueue_outgoing(&NewOutgoing {
                modem: "other".into(),
                ..new("+4917612345678", 1)
            })
            .unwrap();
            s.begin_attempt(id).unwrap();
            s.mark_part_sending(id, 1).unwrap();
            s.mark_part_sent(id, 1, 200).unwrap();
            s.mark_part_sending(id, 2).unwrap();
            // The daemon is killed here, waiting for +CMGS of part 2.
        }
        let s = Store::open(&path).unwrap();
        let pending = s.pending_outgoing("main").unwrap();
        assert_eq!(pending.len(), 1);
        let o = &pending[0];
        assert_eq!(o.id, id);
        assert_eq!(o.reference, Some(0x1234));
        assert_eq!(o.attempts, 1);
        assert_eq!(o.sent_parts(), [(1, 200)]);
        assert_eq!(o.in_doubt(), [2]);
        assert_eq!(o.unsent_parts(), [2, 3]);
        // The runtime resumes: a second attempt sends parts 2 and 3.
        assert_eq!(s.begin_attempt(id).unwrap(), 2);
        s.mark_part_sent(id, 2, 201).unwrap();
        s.mark_part_sent(id, 3, 202).unwrap();
        s.mark_sent(id).unwrap();
        assert!(s.pending_outgoing("main").unwrap().is_empty());
        assert_eq!(s.pending_outgoing("other").unwrap().len(), 1);
    }

    #[test]
    fn failures_are_retried_at_their_time_or_given_up() {
        let s = Store::open_in_memory().unwrap();
        let t0: DateTime<Utc> = "2024-03-15T12:00:00Z".parse().unwrap();
        let a = s.enqueue_outgoing(&new("+4917612345678", 2)).unwrap();
        let b = s.enqueue_outgoing(&new("+4915111111111", 1)).unwrap();
        s.begin_attempt(a).unwrap();
        s.mark_part_sending(a, 1).unwrap();
        s.mark_failed(
            a,
            "+CMS ERROR: 38 (network out of order)",
            Retry::At(t0 + chrono::Duration::minutes(5)),
        )
        .unwrap();
        let o = s.outgoing(a).unwrap().unwrap();
        assert_eq!(o.state, OutgoingState::Queued);
        assert_eq!(o.parts[0].state, PartState::Pending);
        assert_eq!(
            o.error.as_deref(),
            Some("+CMS ERROR: 38 (network out of order)")
        );
        assert_eq!(o.next_attempt_at, Some(t0 + chrono::Duration::minutes(5)));

        let due = |t| -> Vec<i64> {
            s.due_outgoing("main", t)
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect()
        };
        assert_eq!(due(t0), [b]);
        assert_eq!(due(t0 + chrono::Duration::minutes(5)), [a, b]);

        s.begin_attempt(b).unwrap();
        s.mark_failed(
            b,
            "+CMS ERROR: 21 (short message transfer rejected)",
            Retry::Never,
        )
        .unwrap();
        let o = s.outgoing(b).unwrap().unwrap();
        assert_eq!(o.state, OutgoingState::Failed);
        assert_eq!(o.next_attempt_at, None);
        assert_eq!(o.to_sent_event().unwrap().state, "failed");
        assert_eq!(s.pending_outgoing("main").unwrap().len(), 1);
        assert_eq!(s.stats().unwrap().outbox_failed, 1);
        // A failed message takes no more attempts; a sent one cannot fail.
        assert!(s.begin_attempt(b).is_err());
        let c = s.enqueue_outgoing(&new("+4915111111111", 1)).unwrap();
        s.mark_part_sent(c, 1, 3).unwrap();
        s.mark_sent(c).unwrap();
        assert!(s.mark_failed(c, "late", Retry::Never).is_err());
    }

    #[test]
    fn outbox_lists_newest_first_with_filters() {
        let s = Store::open_in_memory().unwrap();
        let a = s.enqueue_outgoing(&new("+4917612345678", 1)).unwrap();
        let b = s.enqueue_outgoing(&new("+4915111111111", 1)).unwrap();
        let c = s.enqueue_outgoing(&new("017612345678", 1)).unwrap();
        s.mark_part_sent(b, 1, 9).unwrap();
        s.mark_sent(b).unwrap();
        let ids = |q: OutboxQuery| -> Vec<i64> {
            s.outbox(&q).unwrap().into_iter().map(|o| o.id).collect()
        };
        assert_eq!(ids(OutboxQuery::default()), [c, b, a]);
        assert_eq!(
            ids(OutboxQuery {
                to: Some("004917612345678".into()),
                ..OutboxQuery::default()
            }),
            [c, a]
        );
        assert_eq!(
            ids(OutboxQuery {
                state: Some(OutgoingState::Sent),
                ..OutboxQuery::default()
            }),
            [b]
        );
        assert_eq!(
            ids(OutboxQuery {
                limit: 1,
                ..OutboxQuery::default()
            }),
            [c]
        );
        assert!(ids(OutboxQuery {
            modem: Some("nope".into()),
            ..OutboxQuery::default()
        })
        .is_empty());
    }
}
