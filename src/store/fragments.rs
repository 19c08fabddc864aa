//! Parts of multipart messages: stored as they come (in any order, across
//! restarts), assembled into one `inbox` row in the same transaction that stores the
//! last part, or delivered incomplete after a timeout.
//!
//! # Which parts belong together
//! A part is keyed by (modem, sender, reference, total) plus its number `seq`. The
//! reference is often 8 bits, so a sender that sends many long messages reuses it;
//! keying by the reference alone would let an old message swallow a new one. What
//! tells two uses of a reference apart is the SCTS: the service centre stamps each
//! part when it receives it from the sender's phone, and a phone submits the parts
//! of one message back to back, so siblings carry SCTS seconds apart while a reused
//! reference needs the sender to go through 255 other long messages first. So:
//!
//! * **Identity of a part** = key + seq + its SCTS (or, when there is no SCTS, its
//!   PDU). The same part read again — the SIM slot re-read after a crash before
//!   `AT+CMGD`, or the network delivering it twice — is recognised as a duplicate,
//!   whether its set is still open or was assembled long ago (the assembled
//!   message keeps its parts in `inbox_pdus`, for good, so no time window is
//!   needed). A new message reusing the reference has other SCTS and is not
//!   swallowed.
//! * **Joining an open set**: a new part joins an open set with the same key that
//!   does not have its `seq` yet and holds a part whose SCTS is within
//!   [`SAME_MESSAGE_WINDOW`] of it (the closest such set). Otherwise it opens a new
//!   set; two sets with the same key can be open at once and each completes or
//!   expires on its own.
//!
//! # Incomplete messages
//! [`Store::expire_fragments`] writes sets whose first part arrived before a cutoff
//! as messages with `incomplete = 1`, the missing part numbers in `missing`, and
//! [`GAP_MARKER`] in the text where parts are missing (one marker per run of
//! missing parts). A part that turns up after its set expired opens a new set, so
//! it too is delivered (as another incomplete message) rather than lost.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use rusqlite::{params, OptionalExtension, Transaction};

use super::archive::{insert_message, normalize_pdu, MessageRow, PduRow};
use super::error::Fail;
use super::{col_utc, enc_str, fmt_scts, fmt_utc, Store, StoreError};
use crate::event::TextEncoding;

/// Stands in for missing parts in the text of an incomplete message.
pub const GAP_MARKER: &str = "[…]";

/// Parts whose SCTS are at most this far apart may belong to the same message.
/// Siblings are seconds apart; an hour leaves room for a phone retrying a part on a
/// bad network, while a sender reusing an 8-bit reference within the hour would
/// have to send us 255 other long messages in between.
pub const SAME_MESSAGE_WINDOW: Duration = Duration::hours(1);

/// One part of a multipart message, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFragment {
    /// Modem name.
    pub modem: String,
    /// Sender.
    pub number: String,
    /// Concatenation reference (8- or 16-bit).
    pub reference: u16,
    /// Number of parts in the message (1–255).
    pub total: u8,
    /// This part's number (1..=total).
    pub seq: u8,
    /// Decoded text of this part.
    pub text: String,
    /// Encoding of this part.
    pub encoding: TextEncoding,
    /// Message class.
    pub class: Option<u8>,
    /// SMSC address.
    pub smsc: Option<String>,
    /// This part's service-centre time stamp.
    pub scts: Option<DateTime<FixedOffset>>,
    /// When the modem handed it to us.
    pub received_at: DateTime<Utc>,
    /// The hex PDU as the modem printed it.
    pub pdu: String,
}

/// What [`Store::save_fragment`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentOutcome {
    /// This part is already stored, or was already assembled into a message:
    /// delete it from the SIM, deliver nothing.
    Duplicate,
    /// Stored; the message is not complete yet.
    Stored {
        /// Parts of this message stored so far.
        have: u8,
        /// Parts expected.
        total: u8,
    },
    /// This was the last missing part: the whole message is archived as `id` (in
    /// the same transaction) and its parts are gone from the fragment tables.
    Complete {
        /// The new inbox row.
        id: i64,
    },
}

/// A multipart message still waiting for parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFragmentSet {
    /// Set id.
    pub id: i64,
    /// Modem name.
    pub modem: String,
    /// Sender.
    pub number: String,
    /// Concatenation reference.
    pub reference: u16,
    /// Parts expected.
    pub total: u8,
    /// Part numbers stored.
    pub have: Vec<u8>,
    /// When its first part arrived (the timeout counts from here).
    pub opened_at: DateTime<Utc>,
}

struct StoredPart {
    seq: u8,
    scts: Option<String>,
    pdu: String,
}

/// Two parts are the same part (read twice) when their SCTS are equal, or, without
/// SCTS, their PDUs are.
fn same_part(a_scts: Option<&str>, a_pdu: &str, b_scts: Option<&str>, b_pdu: &str) -> bool {
    match (a_scts, b_scts) {
        (Some(a), Some(b)) => a == b,
        (None, None) => a_pdu == b_pdu,
        _ => false,
    }
}

fn parse_scts(s: &str) -> Result<DateTime<FixedOffset>, Fail> {
    DateTime::parse_from_rfc3339(s)
        .map_err(|e| Fail::Corrupt(format!("fragments.scts: bad time {s:?}: {e}")))
}

/// How far (in seconds) a part with `scts` is from the closest part of a set;
/// `Some(0)` when either side has no SCTS (nothing says they are apart).
fn distance(scts: Option<DateTime<FixedOffset>>, parts: &[StoredPart]) -> Result<i64, Fail> {
    let Some(t) = scts else { return Ok(0) };
    let mut best: Option<i64> = None;
    for p in parts {
        let Some(s) = &p.scts else { return Ok(0) };
        let d = (parse_scts(s)? - t).num_seconds().abs();
        best = Some(best.map_or(d, |b| b.min(d)));
    }
    Ok(best.unwrap_or(0))
}

/// Writes set `set_id` as an inbox row (complete or not) and removes the set.
fn assemble(tx: &Transaction<'_>, set_id: i64) -> Result<i64, Fail> {
    let (modem, number, reference, total): (String, String, u16, u8) = tx
        .prepare_cached("SELECT modem, number, reference, total FROM fragment_sets WHERE id = ?1")?
        .query_row([set_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?
        .ok_or(Fail::NotFound {
            what: "fragment set",
            id: set_id,
        })?;
    struct Part {
        seq: u8,
        text: String,
        encoding: String,
        class: Option<u8>,
        smsc: Option<String>,
        scts: Option<String>,
        received_at: String,
        pdu: String,
    }
    let parts: Vec<Part> = tx
        .prepare_cached(
            "SELECT seq, text, encoding, class, smsc, scts, received_at, pdu
               FROM fragments WHERE set_id = ?1 ORDER BY seq",
        )?
        .query_map([set_id], |r| {
            Ok(Part {
                seq: r.get(0)?,
                text: r.get(1)?,
                encoding: r.get(2)?,
                class: r.get(3)?,
                smsc: r.get(4)?,
                scts: r.get(5)?,
                received_at: r.get(6)?,
                pdu: r.get(7)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let Some(first) = parts.first() else {
        return Err(Fail::Corrupt(format!("fragment set {set_id} has no parts")));
    };

    let mut text = String::new();
    let mut missing = Vec::new();
    let mut next = parts.iter().peekable();
    for seq in 1..=total {
        match next.peek() {
            Some(p) if p.seq == seq => {
                text.push_str(&p.text);
                next.next();
            }
            _ => {
                if missing.last() != Some(&(seq - 1)) {
                    text.push_str(GAP_MARKER);
                }
                missing.push(seq);
            }
        }
    }
    let encoding = match first.encoding.as_str() {
        "gsm7" => TextEncoding::Gsm7,
        "ucs2" => TextEncoding::Ucs2,
        "8bit" => TextEncoding::EightBit,
        other => {
            return Err(Fail::Corrupt(format!(
                "fragments.encoding: unknown encoding {other:?}"
            )))
        }
    };
    // The message arrived when its last part did.
    let received_at = parts
        .iter()
        .map(|p| p.received_at.as_str())
        .max()
        .unwrap_or(first.received_at.as_str());
    let pdus: Vec<PduRow<'_>> = parts
        .iter()
        .map(|p| PduRow {
            seq: p.seq,
            scts: p.scts.as_deref(),
            pdu: &p.pdu,
        })
        .collect();
    let id = insert_message(
        tx,
        &MessageRow {
            modem: &modem,
            number: Some(&number),
            text: Some(&text),
            encoding: Some(encoding),
            class: first.class,
            smsc: first.smsc.as_deref(),
            scts: first.scts.as_deref(),
            received_at,
            parts: u16::from(total),
            reference: Some(reference),
            missing: &missing,
            error: None,
        },
        &pdus,
    )?;
    tx.prepare_cached("DELETE FROM fragments WHERE set_id = ?1")?
        .execute([set_id])?;
    tx.prepare_cached("DELETE FROM fragment_sets WHERE id = ?1")?
        .execute([set_id])?;
    Ok(id)
}

impl Store {
    /// Stores one part of a multipart message (see the module docs for how parts
    /// are matched and duplicates recognised). Durable when it returns `Ok`.
    ///
    /// A concatenation header with `seq` 0 or beyond `total` is refused with
    /// [`StoreError::Invalid`]: 3GPP TS 23.040 §9.2.3.24.1 says to ignore such a
    /// header, so the caller should archive the PDU as a single message instead.
    pub fn save_fragment(&self, f: &NewFragment) -> Result<FragmentOutcome, StoreError> {
        self.write("save_fragment", |tx| {
            if f.total == 0 || f.seq == 0 || f.seq > f.total {
                return Err(Fail::Invalid(format!(
                    "part {} of {} does not exist (archive it as a single message)",
                    f.seq, f.total
                )));
            }
            let pdu = normalize_pdu(&f.pdu);
            if pdu.is_empty() {
                return Err(Fail::Invalid("empty PDU".into()));
            }
            let scts = fmt_scts(f.scts);

            // Already assembled into a message (complete or incomplete)?
            let assembled: bool = tx
                .prepare_cached(
                    "SELECT 1 FROM inbox m JOIN inbox_pdus p ON p.message_id = m.id
                      WHERE m.modem = ?1 AND m.number = ?2 AND m.reference = ?3
                        AND m.parts = ?4 AND p.seq = ?5
                        AND p.scts IS ?6 AND (?6 IS NOT NULL OR p.pdu = ?7)",
                )?
                .exists(params![f.modem, f.number, f.reference, f.total, f.seq, scts, pdu])?;
            if assembled {
                return Ok(FragmentOutcome::Duplicate);
            }

            // The open sets with this key, with their parts.
            let set_ids: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM fragment_sets
                      WHERE modem = ?1 AND number = ?2 AND reference = ?3 AND total = ?4
                      ORDER BY id",
                )?
                .query_map(params![f.modem, f.number, f.reference, f.total], |r| {
                    r.get(0)
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut best: Option<(i64, i64)> = None; // (distance, set id)
            for set_id in set_ids {
                let parts: Vec<StoredPart> = tx
                    .prepare_cached("SELECT seq, scts, pdu FROM fragments WHERE set_id = ?1")?
                    .query_map([set_id], |r| {
                        Ok(StoredPart {
                            seq: r.get(0)?,
                            scts: r.get(1)?,
                            pdu: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                if let Some(same_seq) = parts.iter().find(|p| p.seq == f.seq) {
                    if same_part(same_seq.scts.as_deref(), &same_seq.pdu, scts.as_deref(), &pdu)
                    {
                        return Ok(FragmentOutcome::Duplicate);
                    }
                    // Same number, different part: another message reusing the
                    // reference; it cannot join this set.
                    continue;
                }
                let d = distance(f.scts, &parts)?;
                if d <= SAME_MESSAGE_WINDOW.num_seconds() && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, set_id));
                }
            }

            let received_at = fmt_utc(f.received_at);
            let set_id = match best {
                Some((_, id)) => {
                    // Parts read in another order than they arrived (e.g. the startup
                    // sweep): the set is as old as its oldest part.
                    tx.prepare_cached(
                        "UPDATE fragment_sets SET opened_at = min(opened_at, ?2) WHERE id = ?1",
                    )?
                    .execute(params![id, received_at])?;
                    id
                }
                None => {
                    tx.prepare_cached(
                        "INSERT INTO fragment_sets (modem, number, reference, total, scts, opened_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![f.modem, f.number, f.reference, f.total, scts, received_at])?;
                    tx.last_insert_rowid()
                }
            };
            tx.prepare_cached(
                "INSERT INTO fragments (set_id, seq, text, encoding, class, smsc, scts,
                                        received_at, pdu)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                set_id,
                f.seq,
                f.text,
                enc_str(f.encoding),
                f.class,
                f.smsc,
                scts,
                received_at,
                pdu
            ])?;
            let have: u8 = tx
                .prepare_cached("SELECT count(*) FROM fragments WHERE set_id = ?1")?
                .query_row([set_id], |r| r.get(0))?;
            if have < f.total {
                return Ok(FragmentOutcome::Stored {
                    have,
                    total: f.total,
                });
            }
            Ok(FragmentOutcome::Complete {
                id: assemble(tx, set_id)?,
            })
        })
    }

    /// Delivers multipart messages that waited too long: every open set (of `modem`,
    /// or of all modems) whose first part arrived before `older_than` is written as
    /// an incomplete message (see the module docs) and removed, all in one
    /// transaction. Returns the new message ids, oldest set first; a second call
    /// finds nothing more to do.
    pub fn expire_fragments(
        &self,
        modem: Option<&str>,
        older_than: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        self.write("expire_fragments", |tx| {
            let sets: Vec<i64> = tx
                .prepare_cached(
                    "SELECT id FROM fragment_sets
                      WHERE opened_at < ?1 AND (?2 IS NULL OR modem = ?2)
                      ORDER BY opened_at, id",
                )?
                .query_map(params![fmt_utc(older_than), modem], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            sets.into_iter().map(|id| assemble(tx, id)).collect()
        })
    }

    /// Multipart messages still waiting for parts, oldest first.
    pub fn open_fragments(&self) -> Result<Vec<OpenFragmentSet>, StoreError> {
        self.read("open_fragments", |c| {
            let mut st = c.prepare_cached(
                "SELECT s.id, s.modem, s.number, s.reference, s.total, s.opened_at,
                        (SELECT group_concat(f.seq, ',' ORDER BY f.seq)
                           FROM fragments f WHERE f.set_id = s.id) AS have
                   FROM fragment_sets s ORDER BY s.opened_at, s.id",
            )?;
            let rows = st.query_map([], |r| {
                let have: Option<String> = r.get("have")?;
                Ok((
                    OpenFragmentSet {
                        id: r.get("id")?,
                        modem: r.get("modem")?,
                        number: r.get("number")?,
                        reference: r.get("reference")?,
                        total: r.get("total")?,
                        have: Vec::new(),
                        opened_at: col_utc(r, "opened_at")?,
                    },
                    have.unwrap_or_default(),
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (mut set, have) = row?;
                set.have = have
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .map_err(|e| Fail::Corrupt(format!("fragments.seq: {e}")))?;
                out.push(set);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::archive::tests::{at, scts};
    use crate::store::{InboxQuery, SCHEMA_VERSION};

    /// Part `seq` of a `total`-part message with reference `reference`, its SCTS
    /// `base_scts` + seq seconds, read at `read_at` + seq seconds.
    fn part(reference: u16, total: u8, seq: u8, base_scts: &str) -> NewFragment {
        let t = scts(base_scts) + Duration::seconds(seq.into());
        NewFragment {
            modem: "main".into(),
            number: "01701234567".into(),
            reference,
            total,
            seq,
            text: format!("<{reference}:{seq}/{total}>"),
            encoding: TextEncoding::Gsm7,
            class: None,
            smsc: Some("+491710760000".into()),
            scts: Some(t),
            received_at: at("2024-03-15T12:30:00Z") + Duration::seconds(seq.into()),
            // Unique per (reference, seq, scts), like a real PDU.
            pdu: format!(
                "0791947101670000440B811007214365F70000{:04X}{seq:02X}{total:02X}{}",
                reference,
                t.timestamp()
            ),
        }
    }

    const T0: &str = "2024-03-15T14:30:00+02:00";

    #[test]
    fn e3_first_part_is_stored_then_completed() {
        // MF667.md E3: part 1/2, reference 42, national sender, "Part one".
        let s = Store::open_in_memory().unwrap();
        let p1 = NewFragment {
            text: "Part one".into(),
            pdu:
                "0791947101670000440B811007214365F70000423051410350400F0500032A0201A061391DF4769701"
                    .into(),
            ..part(42, 2, 1, T0)
        };
        assert_eq!(
            s.save_fragment(&p1).unwrap(),
            FragmentOutcome::Stored { have: 1, total: 2 }
        );
        let open = s.open_fragments().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].have, [1]);
        assert_eq!(open[0].reference, 42);
        let p2 = NewFragment {
            text: ", part two".into(),
            ..part(42, 2, 2, T0)
        };
        let FragmentOutcome::Complete { id } = s.save_fragment(&p2).unwrap() else {
            panic!("not complete")
        };
        let m = s.message(id).unwrap().unwrap();
        assert_eq!(m.text.as_deref(), Some("Part one, part two"));
        assert_eq!(m.parts, 2);
        assert_eq!(m.reference, Some(42));
        assert!(!m.incomplete);
        assert_eq!(m.scts, p1.scts);
        assert_eq!(m.received_at, p2.received_at);
        assert_eq!(m.pdus.len(), 2);
        assert!(m.pdus[0].ends_with("A061391DF4769701"));
        // Nothing is left in the fragment tables.
        assert!(s.open_fragments().unwrap().is_empty());
        assert_eq!(s.stats().unwrap().inbox, 1);
    }

    #[test]
    fn out_of_order_parts_complete_exactly_once() {
        let s = Store::open_in_memory().unwrap();
        let order = [3u8, 1, 4, 2];
        let mut outcomes = Vec::new();
        for seq in order {
            outcomes.push(s.save_fragment(&part(7, 4, seq, T0)).unwrap());
        }
        assert_eq!(
            outcomes[..3],
            [
                FragmentOutcome::Stored { have: 1, total: 4 },
                FragmentOutcome::Stored { have: 2, total: 4 },
                FragmentOutcome::Stored { have: 3, total: 4 },
            ]
        );
        let FragmentOutcome::Complete { id } = outcomes[3] else {
            panic!("{outcomes:?}")
        };
        assert_eq!(
            s.message(id).unwrap().unwrap().text.as_deref(),
            Some("<7:1/4><7:2/4><7:3/4><7:4/4>")
        );
        // Every part read again (crash before CMGD of each): all duplicates.
        for seq in order {
            assert_eq!(
                s.save_fragment(&part(7, 4, seq, T0)).unwrap(),
                FragmentOutcome::Duplicate
            );
        }
        assert_eq!(s.stats().unwrap().inbox, 1);
        assert!(s.open_fragments().unwrap().is_empty());
    }

    #[test]
    fn a_part_read_twice_while_open_is_a_duplicate() {
        let s = Store::open_in_memory().unwrap();
        s.save_fragment(&part(9, 3, 2, T0)).unwrap();
        let again = NewFragment {
            received_at: at("2024-03-15T13:00:00Z"),
            ..part(9, 3, 2, T0)
        };
        assert_eq!(s.save_fragment(&again).unwrap(), FragmentOutcome::Duplicate);
        assert_eq!(s.open_fragments().unwrap()[0].have, [2]);
    }

    #[test]
    fn a_multipart_message_spanning_a_restart_completes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        {
            let s = Store::open(&path).unwrap();
            s.save_fragment(&part(200, 3, 1, T0)).unwrap();
            s.save_fragment(&part(200, 3, 3, T0)).unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.open_fragments().unwrap()[0].have, [1, 3]);
        let FragmentOutcome::Complete { id } = s.save_fragment(&part(200, 3, 2, T0)).unwrap()
        else {
            panic!("not complete")
        };
        assert_eq!(
            s.message(id).unwrap().unwrap().text.as_deref(),
            Some("<200:1/3><200:2/3><200:3/3>")
        );
    }

    #[test]
    fn a_reused_reference_after_completion_starts_a_new_message() {
        let s = Store::open_in_memory().unwrap();
        s.save_fragment(&part(42, 2, 1, T0)).unwrap();
        let FragmentOutcome::Complete { id: first } = s.save_fragment(&part(42, 2, 2, T0)).unwrap()
        else {
            panic!()
        };
        // A day later the sender's 8-bit counter wrapped round to 42 again.
        let later = "2024-03-16T09:00:00+02:00";
        let p1 = NewFragment {
            text: "new one ".into(),
            ..part(42, 2, 1, later)
        };
        assert_eq!(
            s.save_fragment(&p1).unwrap(),
            FragmentOutcome::Stored { have: 1, total: 2 }
        );
        let FragmentOutcome::Complete { id: second } =
            s.save_fragment(&part(42, 2, 2, later)).unwrap()
        else {
            panic!()
        };
        assert_ne!(first, second);
        assert_eq!(
            s.message(second).unwrap().unwrap().text.as_deref(),
            Some("new one <42:2/2>")
        );
        // And the first message's parts are still recognised.
        assert_eq!(
            s.save_fragment(&part(42, 2, 1, T0)).unwrap(),
            FragmentOutcome::Duplicate
        );
        assert_eq!(s.stats().unwrap().inbox, 2);
    }

    #[test]
    fn a_reused_reference_while_the_old_set_is_open_does_not_mix_messages() {
        let s = Store::open_in_memory().unwrap();
        // Old message: part 1 arrived, part 2 never will.
        s.save_fragment(&part(42, 2, 1, T0)).unwrap();
        // Hours later the reference is reused: part 2 first, then part 1.
        let later = "2024-03-15T20:00:00+02:00";
        assert_eq!(
            s.save_fragment(&part(42, 2, 2, later)).unwrap(),
            FragmentOutcome::Stored { have: 1, total: 2 }
        );
        assert_eq!(s.open_fragments().unwrap().len(), 2);
        let FragmentOutcome::Complete { id } = s.save_fragment(&part(42, 2, 1, later)).unwrap()
        else {
            panic!()
        };
        let m = s.message(id).unwrap().unwrap();
        assert_eq!(m.scts, part(42, 2, 1, later).scts);
        // The old part 1 is still waiting on its own.
        let open = s.open_fragments().unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].have, [1]);
    }

    #[test]
    fn different_senders_references_and_totals_are_different_messages() {
        let s = Store::open_in_memory().unwrap();
        s.save_fragment(&part(1, 2, 1, T0)).unwrap();
        s.save_fragment(&NewFragment {
            number: "+4915100000000".into(),
            ..part(1, 2, 2, T0)
        })
        .unwrap();
        s.save_fragment(&part(2, 2, 2, T0)).unwrap();
        s.save_fragment(&part(1, 3, 2, T0)).unwrap();
        s.save_fragment(&NewFragment {
            modem: "backup".into(),
            ..part(1, 2, 2, T0)
        })
        .unwrap();
        assert_eq!(s.open_fragments().unwrap().len(), 5);
        assert_eq!(s.stats().unwrap().inbox, 0);
    }

    #[test]
    fn parts_without_scts_are_told_apart_by_pdu() {
        let s = Store::open_in_memory().unwrap();
        let p = NewFragment {
            scts: None,
            ..part(5, 2, 1, T0)
        };
        s.save_fragment(&p).unwrap();
        assert_eq!(s.save_fragment(&p).unwrap(), FragmentOutcome::Duplicate);
        let other = NewFragment {
            pdu: format!("{}00", p.pdu),
            ..p.clone()
        };
        // Same seq, other content: not a duplicate, a second message.
        assert_eq!(
            s.save_fragment(&other).unwrap(),
            FragmentOutcome::Stored { have: 1, total: 2 }
        );
        assert_eq!(s.open_fragments().unwrap().len(), 2);
    }

    #[test]
    fn a_one_part_concatenated_message_completes_at_once() {
        let s = Store::open_in_memory().unwrap();
        let FragmentOutcome::Complete { id } = s.save_fragment(&part(3, 1, 1, T0)).unwrap() else {
            panic!()
        };
        let m = s.message(id).unwrap().unwrap();
        assert_eq!(m.parts, 1);
        assert_eq!(m.reference, Some(3));
    }

    #[test]
    fn impossible_part_numbers_are_refused() {
        let s = Store::open_in_memory().unwrap();
        for (seq, total) in [(0u8, 2u8), (3, 2), (1, 0)] {
            let err = s
                .save_fragment(&NewFragment {
                    seq,
                    total,
                    ..part(1, 2, 1, T0)
                })
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    StoreError::Invalid {
                        op: "save_fragment",
                        ..
                    }
                ),
                "{seq}/{total}: {err:?}"
            );
        }
        assert!(s.open_fragments().unwrap().is_empty());
    }

    #[test]
    fn expiry_delivers_an_incomplete_message_once() {
        let s = Store::open_in_memory().unwrap();
        // Parts 1, 2 and 5 of 5 arrive; 3 and 4 never do.
        for seq in [5u8, 1, 2] {
            s.save_fragment(&part(77, 5, seq, T0)).unwrap();
        }
        // A younger set that must not expire yet.
        let young = NewFragment {
            received_at: at("2024-03-15T14:00:00Z"),
            ..part(78, 2, 1, T0)
        };
        s.save_fragment(&young).unwrap();

        // The cutoff is before the first part arrived: nothing to do.
        assert!(s
            .expire_fragments(None, at("2024-03-15T12:30:00Z"))
            .unwrap()
            .is_empty());
        let cutoff = at("2024-03-15T13:30:00Z");
        let ids = s.expire_fragments(None, cutoff).unwrap();
        assert_eq!(ids.len(), 1);
        let m = s.message(ids[0]).unwrap().unwrap();
        assert!(m.incomplete);
        assert_eq!(m.missing, [3, 4]);
        assert_eq!(m.parts, 5);
        assert_eq!(m.text.as_deref(), Some("<77:1/5><77:2/5>[…]<77:5/5>"));
        assert!(m.to_sms_received().unwrap().incomplete);
        assert_eq!(m.pdus.len(), 3);
        // Not again.
        assert!(s.expire_fragments(None, cutoff).unwrap().is_empty());
        assert_eq!(s.open_fragments().unwrap().len(), 1);
        // A part of the expired message read again is a duplicate…
        assert_eq!(
            s.save_fragment(&part(77, 5, 2, T0)).unwrap(),
            FragmentOutcome::Duplicate
        );
        // …but a missing part that turns up late is kept, not lost.
        assert_eq!(
            s.save_fragment(&part(77, 5, 3, T0)).unwrap(),
            FragmentOutcome::Stored { have: 1, total: 5 }
        );
    }

    #[test]
    fn expiry_marks_leading_and_trailing_gaps_and_filters_by_modem() {
        let s = Store::open_in_memory().unwrap();
        s.save_fragment(&part(10, 4, 2, T0)).unwrap();
        s.save_fragment(&NewFragment {
            modem: "backup".into(),
            ..part(11, 2, 1, T0)
        })
        .unwrap();
        let cutoff = at("2024-03-16T00:00:00Z");
        let ids = s.expire_fragments(Some("main"), cutoff).unwrap();
        assert_eq!(ids.len(), 1);
        let m = s.message(ids[0]).unwrap().unwrap();
        assert_eq!(m.text.as_deref(), Some("[…]<10:2/4>[…]"));
        assert_eq!(m.missing, [1, 3, 4]);
        // The backup modem's set is untouched until asked for.
        assert_eq!(s.open_fragments().unwrap()[0].modem, "backup");
        assert_eq!(s.expire_fragments(None, cutoff).unwrap().len(), 1);
        let listed = s.inbox(&InboxQuery::default()).unwrap();
        assert_eq!(listed.len(), 2);
    }
}
