//! Received messages: the `inbox` table (one row per whole message) and
//! `inbox_pdus` (the raw PDUs, one per part present).
//!
//! # Duplicates
//! A single SMS is a duplicate of an archived one when modem, sender, SCTS and the
//! PDU text (trimmed, upper-cased hex) are all equal: that is exactly what reading
//! the same SIM slot again after a crash between our commit and `AT+CMGD` gives.
//! The SCTS has one-second resolution and is set by the service centre when it
//! received the message, so two different messages from the same sender with the
//! same SCTS *and* byte-identical PDUs cannot be told apart by anyone; we keep one.
//! Archived PDUs are kept with their message for good, so a SIM that comes back
//! weeks later (stick unplugged, daemon down) still cannot double a message.

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::error::Fail;
use super::{
    col_enc_opt, col_scts, col_utc, col_utc_opt, enc_str, fmt_scts, fmt_utc, number, Store,
    StoreError,
};
use crate::event::{Event, SmsReceived, SmsUndecodable, TextEncoding};

/// A decoded single-part SMS, as the receive pipeline hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSms {
    /// Modem name.
    pub modem: String,
    /// Sender (`+49…`, national digits, or alphanumeric).
    pub number: String,
    /// Decoded text.
    pub text: String,
    /// Encoding of the text.
    pub encoding: TextEncoding,
    /// Message class, if any (0 = flash).
    pub class: Option<u8>,
    /// SMSC address, when the PDU carried one.
    pub smsc: Option<String>,
    /// Service-centre time stamp.
    pub scts: Option<DateTime<FixedOffset>>,
    /// When the modem handed it to us.
    pub received_at: DateTime<Utc>,
    /// The hex PDU as the modem printed it.
    pub pdu: String,
}

/// What an archive call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Archived {
    /// Written as a new message with this id: hand it to rules and scripts.
    New(i64),
    /// Already archived as this id (read again after a crash, or re-sent by the
    /// network): delete it from the SIM, deliver nothing.
    Duplicate(i64),
}

impl Archived {
    /// The message id, new or existing.
    pub fn id(self) -> i64 {
        match self {
            Archived::New(id) | Archived::Duplicate(id) => id,
        }
    }

    /// True for a new message.
    pub fn is_new(self) -> bool {
        matches!(self, Archived::New(_))
    }
}

/// A received message as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct InboxMessage {
    /// Row id.
    pub id: i64,
    /// Modem name.
    pub modem: String,
    /// Sender; `None` only for an undecodable PDU.
    pub number: Option<String>,
    /// Whole text (missing parts shown as [`GAP_MARKER`](super::GAP_MARKER));
    /// `None` only for an undecodable PDU.
    pub text: Option<String>,
    /// Encoding of the text.
    pub encoding: Option<TextEncoding>,
    /// Message class.
    pub class: Option<u8>,
    /// SMSC address.
    pub smsc: Option<String>,
    /// SCTS of the first part present.
    pub scts: Option<DateTime<FixedOffset>>,
    /// When the (last) part was read from the modem.
    pub received_at: DateTime<Utc>,
    /// Number of parts the message has (or should have had).
    pub parts: u16,
    /// Concatenation reference; `None` for a single SMS.
    pub reference: Option<u16>,
    /// True when delivered after the multipart timeout with parts missing.
    pub incomplete: bool,
    /// The missing part numbers, when incomplete.
    pub missing: Vec<u8>,
    /// The decoder's message, for an undecodable PDU.
    pub error: Option<String>,
    /// When rules and scripts were given it (see [`Store::mark_dispatched`]).
    pub dispatched_at: Option<DateTime<Utc>>,
    /// The raw PDUs of the parts present, in part order.
    pub pdus: Vec<String>,
}

impl InboxMessage {
    /// True for a PDU the decoder rejected.
    pub fn is_undecodable(&self) -> bool {
        self.error.is_some()
    }

    /// The `sms` event payload; `None` for an undecodable PDU.
    pub fn to_sms_received(&self) -> Option<SmsReceived> {
        if self.is_undecodable() {
            return None;
        }
        Some(SmsReceived {
            modem: self.modem.clone(),
            id: self.id,
            from: self.number.clone().unwrap_or_default(),
            text: self.text.clone().unwrap_or_default(),
            timestamp: self.scts,
            smsc: self.smsc.clone(),
            encoding: self.encoding.unwrap_or(TextEncoding::Gsm7),
            class: self.class,
            parts: self.parts,
            incomplete: self.incomplete,
        })
    }

    /// The event to emit for this message: `sms`, or `sms_undecodable`.
    pub fn to_event(&self) -> Event {
        match self.to_sms_received() {
            Some(sms) => Event::Sms(sms),
            None => Event::SmsUndecodable(SmsUndecodable {
                modem: self.modem.clone(),
                id: self.id,
                pdu: self.pdus.join("\n"),
                error: self.error.clone().unwrap_or_default(),
            }),
        }
    }
}

/// Which received messages to list, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InboxQuery {
    /// Only this modem.
    pub modem: Option<String>,
    /// Only from this sender (`+49…`, `0049…` and `0…` forms all match).
    pub from: Option<String>,
    /// Only received at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// At most this many; 0 = no limit.
    pub limit: usize,
    /// Also list undecodable PDUs (off by default; `from` never matches them).
    pub include_undecodable: bool,
}

impl InboxQuery {
    /// The newest `n` messages from any sender.
    pub fn newest(n: usize) -> InboxQuery {
        InboxQuery {
            limit: n,
            ..InboxQuery::default()
        }
    }
}

/// PDUs are compared as trimmed upper-case text: the same SIM slot read twice gives
/// the same bytes, but tools differ in the case of hex digits.
pub(crate) fn normalize_pdu(pdu: &str) -> String {
    pdu.trim().to_ascii_uppercase()
}

/// An inbox row to write (shared with fragment assembly).
pub(crate) struct MessageRow<'a> {
    pub modem: &'a str,
    pub number: Option<&'a str>,
    pub text: Option<&'a str>,
    pub encoding: Option<TextEncoding>,
    pub class: Option<u8>,
    pub smsc: Option<&'a str>,
    pub scts: Option<&'a str>,
    pub received_at: &'a str,
    pub parts: u16,
    pub reference: Option<u16>,
    pub missing: &'a [u8],
    pub error: Option<&'a str>,
}

/// One raw PDU of an inbox row.
pub(crate) struct PduRow<'a> {
    pub seq: u8,
    pub scts: Option<&'a str>,
    pub pdu: &'a str,
}

pub(crate) fn insert_message(
    tx: &Transaction<'_>,
    m: &MessageRow<'_>,
    pdus: &[PduRow<'_>],
) -> rusqlite::Result<i64> {
    let missing = (!m.missing.is_empty()).then(|| {
        m.missing
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    tx.prepare_cached(
        "INSERT INTO inbox (modem, number, text, encoding, class, smsc, scts, received_at,
                            parts, reference, incomplete, missing, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        m.modem,
        m.number,
        m.text,
        m.encoding.map(enc_str),
        m.class,
        m.smsc,
        m.scts,
        m.received_at,
        m.parts,
        m.reference,
        !m.missing.is_empty(),
        missing,
        m.error,
    ])?;
    let id = tx.last_insert_rowid();
    let mut st = tx.prepare_cached(
        "INSERT INTO inbox_pdus (message_id, seq, scts, pdu) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for p in pdus {
        st.execute(params![id, p.seq, p.scts, p.pdu])?;
    }
    Ok(id)
}

const SELECT_MESSAGE: &str = "SELECT m.id, m.modem, m.number, m.text, m.encoding, m.class, m.smsc,
        m.scts, m.received_at, m.parts, m.reference, m.incomplete, m.missing, m.error,
        m.dispatched_at,
        (SELECT group_concat(p.pdu, char(10) ORDER BY p.seq)
           FROM inbox_pdus p WHERE p.message_id = m.id) AS pdus
   FROM inbox m";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<InboxMessage> {
    let missing: Option<String> = row.get("missing")?;
    let missing = match missing {
        None => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|n| n.trim().parse::<u8>())
            .collect::<Result<_, _>>()
            .map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    format!("column missing: bad part list {s:?}: {e}").into(),
                )
            })?,
    };
    let pdus: Option<String> = row.get("pdus")?;
    Ok(InboxMessage {
        id: row.get("id")?,
        modem: row.get("modem")?,
        number: row.get("number")?,
        text: row.get("text")?,
        encoding: col_enc_opt(row, "encoding")?,
        class: row.get("class")?,
        smsc: row.get("smsc")?,
        scts: col_scts(row, "scts")?,
        received_at: col_utc(row, "received_at")?,
        parts: row.get("parts")?,
        reference: row.get("reference")?,
        incomplete: row.get("incomplete")?,
        missing,
        error: row.get("error")?,
        dispatched_at: col_utc_opt(row, "dispatched_at")?,
        pdus: pdus
            .map(|s| s.split('\n').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

pub(crate) fn load_message(
    conn: &rusqlite::Connection,
    id: i64,
) -> rusqlite::Result<Option<InboxMessage>> {
    conn.prepare_cached(&format!("{SELECT_MESSAGE} WHERE m.id = ?1"))?
        .query_row([id], message_from_row)
        .optional()
}

fn check_pdu(pdu: &str) -> Result<String, Fail> {
    let pdu = normalize_pdu(pdu);
    if pdu.is_empty() {
        return Err(Fail::Invalid("empty PDU".into()));
    }
    Ok(pdu)
}

impl Store {
    /// Archives a single-part SMS, or recognises it as already archived (see the
    /// module docs). Durable when it returns `Ok`: only then may the message be
    /// deleted from the SIM.
    pub fn archive_single(&self, sms: &NewSms) -> Result<Archived, StoreError> {
        self.write("archive_single", |tx| {
            let pdu = check_pdu(&sms.pdu)?;
            let scts = fmt_scts(sms.scts);
            let existing: Option<i64> = tx
                .prepare_cached(
                    "SELECT m.id FROM inbox m JOIN inbox_pdus p ON p.message_id = m.id
                      WHERE m.modem = ?1 AND m.number = ?2 AND m.scts IS ?3
                        AND m.reference IS NULL AND m.error IS NULL AND p.pdu = ?4
                      LIMIT 1",
                )?
                .query_row(params![sms.modem, sms.number, scts, pdu], |r| r.get(0))
                .optional()?;
            if let Some(id) = existing {
                return Ok(Archived::Duplicate(id));
            }
            let id = insert_message(
                tx,
                &MessageRow {
                    modem: &sms.modem,
                    number: Some(&sms.number),
                    text: Some(&sms.text),
                    encoding: Some(sms.encoding),
                    class: sms.class,
                    smsc: sms.smsc.as_deref(),
                    scts: scts.as_deref(),
                    received_at: &fmt_utc(sms.received_at),
                    parts: 1,
                    reference: None,
                    missing: &[],
                    error: None,
                },
                &[PduRow {
                    seq: 1,
                    scts: scts.as_deref(),
                    pdu: &pdu,
                }],
            )?;
            Ok(Archived::New(id))
        })
    }

    /// Archives a PDU the decoder rejected, raw, with the decoder's message, so it
    /// can be deleted from the SIM without being lost. The same PDU from the same
    /// modem is recognised as a duplicate.
    pub fn archive_undecodable(
        &self,
        modem: &str,
        pdu: &str,
        error: &str,
        received_at: DateTime<Utc>,
    ) -> Result<Archived, StoreError> {
        self.write("archive_undecodable", |tx| {
            let pdu = check_pdu(pdu)?;
            let existing: Option<i64> = tx
                .prepare_cached(
                    "SELECT m.id FROM inbox m JOIN inbox_pdus p ON p.message_id = m.id
                      WHERE m.modem = ?1 AND m.error IS NOT NULL AND p.pdu = ?2
                      LIMIT 1",
                )?
                .query_row(params![modem, pdu], |r| r.get(0))
                .optional()?;
            if let Some(id) = existing {
                return Ok(Archived::Duplicate(id));
            }
            let id = insert_message(
                tx,
                &MessageRow {
                    modem,
                    number: None,
                    text: None,
                    encoding: None,
                    class: None,
                    smsc: None,
                    scts: None,
                    received_at: &fmt_utc(received_at),
                    parts: 1,
                    reference: None,
                    missing: &[],
                    error: Some(error),
                },
                &[PduRow {
                    seq: 1,
                    scts: None,
                    pdu: &pdu,
                }],
            )?;
            Ok(Archived::New(id))
        })
    }

    /// One received message by id.
    pub fn message(&self, id: i64) -> Result<Option<InboxMessage>, StoreError> {
        self.read("message", |c| Ok(load_message(c, id)?))
    }

    /// Received messages, newest first (by the time they were read from the modem).
    pub fn inbox(&self, q: &InboxQuery) -> Result<Vec<InboxMessage>, StoreError> {
        self.read("inbox", |c| {
            let since = q.since.map(fmt_utc);
            let mut st = c.prepare_cached(&format!(
                "{SELECT_MESSAGE}
                  WHERE (?1 IS NULL OR m.modem = ?1)
                    AND (?2 IS NULL OR m.received_at >= ?2)
                    AND (?3 OR m.error IS NULL)
                  ORDER BY m.received_at DESC, m.id DESC"
            ))?;
            let rows = st.query_map(
                params![q.modem, since, q.include_undecodable],
                message_from_row,
            )?;
            let mut out = Vec::new();
            // The sender filter is not SQL: +49…, 0049… and 0… must all match.
            for row in rows {
                let m = row?;
                if let Some(from) = &q.from {
                    match &m.number {
                        Some(n) if number::numbers_match(n, from) => {}
                        _ => continue,
                    }
                }
                out.push(m);
                if q.limit != 0 && out.len() >= q.limit {
                    break;
                }
            }
            Ok(out)
        })
    }

    /// Records that rules and scripts were given message `id`. Messages archived
    /// but never dispatched (the daemon died in between) are listed by
    /// [`Store::undispatched`], so the runtime can hand them over after a restart.
    pub fn mark_dispatched(&self, id: i64) -> Result<(), StoreError> {
        self.write("mark_dispatched", |tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE inbox SET dispatched_at = coalesce(dispatched_at, ?2) WHERE id = ?1",
                )?
                .execute(params![id, fmt_utc(Utc::now())])?;
            if n == 0 {
                return Err(Fail::NotFound {
                    what: "received message",
                    id,
                });
            }
            Ok(())
        })
    }

    /// Archived messages not yet dispatched, oldest first.
    pub fn undispatched(&self, modem: Option<&str>) -> Result<Vec<InboxMessage>, StoreError> {
        self.read("undispatched", |c| {
            let mut st = c.prepare_cached(&format!(
                "{SELECT_MESSAGE} WHERE m.dispatched_at IS NULL AND (?1 IS NULL OR m.modem = ?1)
                  ORDER BY m.id"
            ))?;
            let rows = st.query_map([modem], message_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// MF667.md E1: GSM-7 with escapes, international sender, SCTS +02:00.
    pub(crate) const E1: &str =
        "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    pub(crate) fn scts(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).unwrap()
    }

    pub(crate) fn e1() -> NewSms {
        NewSms {
            modem: "main".into(),
            number: "+491701234567".into(),
            text: "Hallo! 5€ [ok]".into(),
            encoding: TextEncoding::Gsm7,
            class: None,
            smsc: Some("+491710760000".into()),
            scts: Some(scts("2024-03-15T14:30:05+02:00")),
            received_at: at("2024-03-15T12:30:07Z"),
            pdu: E1.into(),
        }
    }

    /// A distinct, plausible message number `i` from `from`.
    pub(crate) fn nth(from: &str, i: u32) -> NewSms {
        NewSms {
            number: from.into(),
            text: format!("message {i}"),
            scts: Some(scts("2024-03-15T14:30:05+02:00") + chrono::Duration::seconds(i.into())),
            received_at: at("2024-03-15T12:30:07Z") + chrono::Duration::seconds(i.into()),
            pdu: format!("{E1}{i:04X}"),
            ..e1()
        }
    }

    #[test]
    fn a_single_sms_is_archived_and_read_back() {
        let s = Store::open_in_memory().unwrap();
        let a = s.archive_single(&e1()).unwrap();
        let Archived::New(id) = a else {
            panic!("{a:?}")
        };
        let m = s.message(id).unwrap().unwrap();
        assert_eq!(m.number.as_deref(), Some("+491701234567"));
        assert_eq!(m.text.as_deref(), Some("Hallo! 5€ [ok]"));
        assert_eq!(m.encoding, Some(TextEncoding::Gsm7));
        assert_eq!(m.scts, Some(scts("2024-03-15T14:30:05+02:00")));
        assert_eq!(m.scts.unwrap().offset().local_minus_utc(), 7200);
        assert_eq!(m.received_at, at("2024-03-15T12:30:07Z"));
        assert_eq!(m.parts, 1);
        assert_eq!(m.reference, None);
        assert!(!m.incomplete);
        assert_eq!(m.pdus, vec![E1.to_string()]);
        let ev = m.to_sms_received().unwrap();
        assert_eq!(ev.id, id);
        assert_eq!(ev.from, "+491701234567");
        assert_eq!(m.to_event().kind(), "sms");
        assert_eq!(s.message(id + 100).unwrap(), None);
    }

    #[test]
    fn the_same_sms_read_twice_is_a_duplicate() {
        let s = Store::open_in_memory().unwrap();
        let first = s.archive_single(&e1()).unwrap();
        // Re-read after a crash before CMGD: same PDU, later read time, lower-case hex.
        let again = NewSms {
            received_at: at("2024-03-15T13:00:00Z"),
            pdu: format!("  {}\r\n", E1.to_ascii_lowercase()),
            ..e1()
        };
        assert_eq!(
            s.archive_single(&again).unwrap(),
            Archived::Duplicate(first.id())
        );
        assert_eq!(s.stats().unwrap().inbox, 1);
    }

    #[test]
    fn same_text_but_different_scts_or_sender_is_a_new_message() {
        let s = Store::open_in_memory().unwrap();
        assert!(s.archive_single(&e1()).unwrap().is_new());
        let later = NewSms {
            scts: Some(scts("2024-03-15T14:31:05+02:00")),
            pdu: E1.replace("42305141035080", "42305141135080"),
            ..e1()
        };
        assert!(s.archive_single(&later).unwrap().is_new());
        let other_modem = NewSms {
            modem: "backup".into(),
            ..e1()
        };
        assert!(s.archive_single(&other_modem).unwrap().is_new());
        assert_eq!(s.stats().unwrap().inbox, 3);
    }

    #[test]
    fn an_empty_pdu_is_refused() {
        let s = Store::open_in_memory().unwrap();
        let err = s
            .archive_single(&NewSms {
                pdu: "  ".into(),
                ..e1()
            })
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Invalid {
                    op: "archive_single",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(s.stats().unwrap().inbox, 0);
    }

    #[test]
    fn undecodable_pdus_are_archived_once() {
        let s = Store::open_in_memory().unwrap();
        let t = at("2024-03-15T12:00:00Z");
        let a = s
            .archive_undecodable("main", "07914477FF", "PDU too short", t)
            .unwrap();
        assert!(a.is_new());
        let b = s
            .archive_undecodable("main", "07914477ff", "PDU too short", t)
            .unwrap();
        assert_eq!(b, Archived::Duplicate(a.id()));
        let m = s.message(a.id()).unwrap().unwrap();
        assert!(m.is_undecodable());
        assert_eq!(m.number, None);
        assert_eq!(m.text, None);
        assert_eq!(m.error.as_deref(), Some("PDU too short"));
        match m.to_event() {
            Event::SmsUndecodable(u) => {
                assert_eq!(u.pdu, "07914477FF");
                assert_eq!(u.error, "PDU too short");
            }
            other => panic!("{other:?}"),
        }
        // Not listed by default.
        assert!(s.inbox(&InboxQuery::newest(10)).unwrap().is_empty());
        let all = s
            .inbox(&InboxQuery {
                include_undecodable: true,
                ..InboxQuery::newest(10)
            })
            .unwrap();
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn inbox_lists_newest_first_with_filters() {
        let s = Store::open_in_memory().unwrap();
        for i in 0..5 {
            s.archive_single(&nth("+4917612345678", i)).unwrap();
        }
        for i in 5..8 {
            s.archive_single(&nth("+4915111111111", i)).unwrap();
        }
        s.archive_single(&NewSms {
            modem: "backup".into(),
            ..nth("+4917612345678", 8)
        })
        .unwrap();

        let all = s.inbox(&InboxQuery::default()).unwrap();
        assert_eq!(all.len(), 9);
        let texts: Vec<_> = s
            .inbox(&InboxQuery::newest(3))
            .unwrap()
            .into_iter()
            .map(|m| m.text.unwrap())
            .collect();
        assert_eq!(texts, ["message 8", "message 7", "message 6"]);

        // The national form of the number finds the +49 messages, on one modem.
        let mine = s
            .inbox(&InboxQuery {
                modem: Some("main".into()),
                from: Some("017612345678".into()),
                ..InboxQuery::default()
            })
            .unwrap();
        let texts: Vec<_> = mine.iter().map(|m| m.text.clone().unwrap()).collect();
        assert_eq!(
            texts,
            [
                "message 4",
                "message 3",
                "message 2",
                "message 1",
                "message 0"
            ]
        );

        let since = s
            .inbox(&InboxQuery {
                since: Some(at("2024-03-15T12:30:07Z") + chrono::Duration::seconds(6)),
                ..InboxQuery::default()
            })
            .unwrap();
        assert_eq!(since.len(), 3);
        let limited = s
            .inbox(&InboxQuery {
                from: Some("+4917612345678".into()),
                limit: 2,
                ..InboxQuery::default()
            })
            .unwrap();
        assert_eq!(limited.len(), 2);
        assert_eq!(limited[0].text.as_deref(), Some("message 8"));
    }

    #[test]
    fn undispatched_messages_are_listed_until_marked() {
        let s = Store::open_in_memory().unwrap();
        let a = s.archive_single(&nth("+4917612345678", 1)).unwrap().id();
        let b = s.archive_single(&nth("+4917612345678", 2)).unwrap().id();
        let ids = |v: Vec<InboxMessage>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();
        assert_eq!(ids(s.undispatched(None).unwrap()), [a, b]);
        s.mark_dispatched(a).unwrap();
        // Idempotent, keeps the first time.
        let first = s.message(a).unwrap().unwrap().dispatched_at.unwrap();
        s.mark_dispatched(a).unwrap();
        assert_eq!(s.message(a).unwrap().unwrap().dispatched_at, Some(first));
        assert_eq!(ids(s.undispatched(Some("main")).unwrap()), [b]);
        assert!(s.undispatched(Some("other")).unwrap().is_empty());
        assert_eq!(s.stats().unwrap().undispatched, 1);
        let err = s.mark_dispatched(9999).unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { id: 9999, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_hand_edited_bad_time_is_reported_as_corrupt() {
        let s = Store::open_in_memory().unwrap();
        let id = s.archive_single(&e1()).unwrap().id();
        s.write("test", |tx| {
            tx.execute(
                "UPDATE inbox SET received_at = 'yesterday' WHERE id = ?1",
                [id],
            )?;
            Ok(())
        })
        .unwrap();
        let err = s.message(id).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { op: "message", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("received_at"), "{err}");
    }
}
