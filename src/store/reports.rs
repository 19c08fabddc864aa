//! Status reports (SMS-STATUS-REPORT), kept in `status_reports` and matched to the
//! part we sent.
//!
//! A report names our message only by TP-MR (8 bits, wraps every 256 parts) and
//! the recipient, written however the SMSC likes (`+44…`, `0044…`, `0…`). So a
//! report matches the **most recently sent** part of this modem with that MR whose
//! recipient is the same number ([`numbers_match`](super::numbers_match)). The
//! part's and the message's delivery state are updated in the same transaction;
//! a temporary report never downgrades a final one (reports can be read out of
//! order from the SR store).

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::{params, OptionalExtension};

use super::error::Fail;
use super::outbox::{refresh_delivery, DeliveryState};
use super::{fmt_scts, fmt_utc, number, Store, StoreError};
use crate::event::SmsStatus;

/// A decoded status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStatusReport {
    /// Modem name.
    pub modem: String,
    /// TP-MR of the part it is about.
    pub mr: u8,
    /// Recipient address in the report.
    pub recipient: String,
    /// SCTS of the original message (when the SMSC received it).
    pub scts: Option<DateTime<FixedOffset>>,
    /// Discharge time (when the SMSC delivered it or gave up).
    pub discharge: Option<DateTime<FixedOffset>>,
    /// TP-ST.
    pub st: u8,
    /// The raw PDU, when there is one.
    pub pdu: Option<String>,
    /// When the modem handed it to us.
    pub received_at: DateTime<Utc>,
}

/// The outgoing part a report was matched to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusMatch {
    /// Outbox id.
    pub outgoing_id: i64,
    /// Part number.
    pub seq: u8,
    /// The whole message's delivery state after this report.
    pub delivery: DeliveryState,
}

/// What [`Store::record_status_report`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRecorded {
    /// The `status_reports` row.
    pub id: i64,
    /// The same report was already recorded (read again after a crash).
    pub duplicate: bool,
    /// What this report says.
    pub status: DeliveryState,
    /// The part it is about, if found.
    pub matched: Option<StatusMatch>,
}

impl StatusRecorded {
    /// The `sms_status` event payload for `report`.
    pub fn to_event(&self, report: &NewStatusReport) -> SmsStatus {
        SmsStatus {
            modem: report.modem.clone(),
            reference: report.mr,
            to: report.recipient.clone(),
            status: self.status.as_str().to_owned(),
            st: report.st,
            message_id: self.matched.map(|m| m.outgoing_id),
            discharge: report.discharge,
        }
    }
}

/// What a TP-ST value means for delivery (3GPP TS 23.040 §9.2.3.15):
/// `0x00–0x1F` the transaction completed (delivered, forwarded, replaced);
/// `0x20–0x3F` temporary error, the SMSC is still trying; `0x40–0x5F` permanent
/// error; `0x60–0x7F` temporary error but the SMSC stopped trying, which is just as
/// final. Values with bit 7 set are reserved; we treat them as failures rather
/// than wait for ever.
pub fn delivery_state(st: u8) -> DeliveryState {
    match st {
        0x00..=0x1F => DeliveryState::Delivered,
        0x20..=0x3F => DeliveryState::Pending,
        _ => DeliveryState::Failed,
    }
}

impl Store {
    /// Records a status report and applies it to the part it is about (see the
    /// module docs). The same report recorded twice is recognised (`duplicate`)
    /// and changes nothing.
    pub fn record_status_report(&self, r: &NewStatusReport) -> Result<StatusRecorded, StoreError> {
        self.write("record_status_report", |tx| {
            let status = delivery_state(r.st);
            let scts = fmt_scts(r.scts);
            let discharge = fmt_scts(r.discharge);
            let existing: Option<(i64, Option<i64>, Option<u8>)> = tx
                .prepare_cached(
                    "SELECT id, message_id, part FROM status_reports
                      WHERE modem = ?1 AND mr = ?2 AND number = ?3 AND scts IS ?4
                        AND discharge IS ?5 AND st = ?6
                      LIMIT 1",
                )?
                .query_row(
                    params![r.modem, r.mr, r.recipient, scts, discharge, r.st],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            if let Some((id, message_id, part)) = existing {
                let matched = match (message_id, part) {
                    (Some(mid), Some(seq)) => Some(StatusMatch {
                        outgoing_id: mid,
                        seq,
                        delivery: message_delivery(tx, mid)?,
                    }),
                    _ => None,
                };
                return Ok(StatusRecorded {
                    id,
                    duplicate: true,
                    status,
                    matched,
                });
            }

            // The most recent sent part with this MR to this recipient.
            let target: Option<(i64, u8)> = {
                let mut st = tx.prepare_cached(
                    "SELECT p.message_id, p.seq, o.number FROM outbox_parts p
                       JOIN outbox o ON o.id = p.message_id
                      WHERE o.modem = ?1 AND p.mr = ?2 AND p.state = 'sent'
                      ORDER BY p.sent_at DESC, p.message_id DESC, p.seq DESC",
                )?;
                let mut rows = st.query(params![r.modem, r.mr])?;
                let mut found = None;
                while let Some(row) = rows.next()? {
                    let to: String = row.get(2)?;
                    if number::numbers_match(&to, &r.recipient) {
                        found = Some((row.get(0)?, row.get(1)?));
                        break;
                    }
                }
                found
            };

            tx.prepare_cached(
                "INSERT INTO status_reports (modem, mr, number, scts, discharge, st, status,
                                             pdu, received_at, message_id, part)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                r.modem,
                r.mr,
                r.recipient,
                scts,
                discharge,
                r.st,
                status.as_str(),
                r.pdu.as_deref().map(str::trim),
                fmt_utc(r.received_at),
                target.map(|t| t.0),
                target.map(|t| t.1),
            ])?;
            let id = tx.last_insert_rowid();

            let matched = match target {
                None => None,
                Some((mid, seq)) => {
                    // A pending report does not overwrite a final one.
                    tx.prepare_cached(
                        "UPDATE outbox_parts SET delivery = ?3, st = ?4, discharge = ?5
                          WHERE message_id = ?1 AND seq = ?2
                            AND NOT (?3 = 'pending' AND delivery IN ('delivered', 'failed'))",
                    )?
                    .execute(params![
                        mid,
                        seq,
                        status.as_str(),
                        r.st,
                        discharge
                    ])?;
                    refresh_delivery(tx, mid)?;
                    Some(StatusMatch {
                        outgoing_id: mid,
                        seq,
                        delivery: message_delivery(tx, mid)?,
                    })
                }
            };
            Ok(StatusRecorded {
                id,
                duplicate: false,
                status,
                matched,
            })
        })
    }
}

fn message_delivery(tx: &rusqlite::Transaction<'_>, id: i64) -> Result<DeliveryState, Fail> {
    let d: Option<String> = tx
        .prepare_cached("SELECT delivery FROM outbox WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(match d.as_deref() {
        Some("delivered") => DeliveryState::Delivered,
        Some("failed") => DeliveryState::Failed,
        _ => DeliveryState::Pending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::tests::new;

    fn report(mr: u8, recipient: &str, st: u8) -> NewStatusReport {
        // Shaped after MF667.md E6: SCTS 2011-07-31 09:58:22 +01:00, DT 09:58:26.
        NewStatusReport {
            modem: "main".into(),
            mr,
            recipient: recipient.into(),
            scts: Some(DateTime::parse_from_rfc3339("2011-07-31T09:58:22+01:00").unwrap()),
            discharge: Some(DateTime::parse_from_rfc3339("2011-07-31T09:58:26+01:00").unwrap()),
            st,
            pdu: Some("079144775810065006FD0C91449771624701117013908522401170139085624000".into()),
            received_at: "2011-07-31T08:58:30Z".parse().unwrap(),
        }
    }

    fn sent(s: &Store, to: &str, mrs: &[u8]) -> i64 {
        let id = s.enqueue_outgoing(&new(to, mrs.len() as u16)).unwrap();
        for (i, mr) in mrs.iter().enumerate() {
            s.mark_part_sent(id, i as u8 + 1, *mr).unwrap();
        }
        s.mark_sent(id).unwrap();
        id
    }

    #[test]
    fn tp_st_ranges() {
        assert_eq!(delivery_state(0x00), DeliveryState::Delivered);
        assert_eq!(delivery_state(0x02), DeliveryState::Delivered);
        assert_eq!(delivery_state(0x20), DeliveryState::Pending);
        assert_eq!(delivery_state(0x30), DeliveryState::Pending);
        assert_eq!(delivery_state(0x41), DeliveryState::Failed);
        assert_eq!(delivery_state(0x62), DeliveryState::Failed);
        assert_eq!(delivery_state(0x80), DeliveryState::Failed);
    }

    #[test]
    fn e6_report_matches_the_part_in_another_number_format() {
        let s = Store::open_in_memory().unwrap();
        let id = sent(&s, "07917267410", &[253]);
        let r = report(253, "+447917267410", 0x00);
        let rec = s.record_status_report(&r).unwrap();
        assert!(!rec.duplicate);
        assert_eq!(rec.status, DeliveryState::Delivered);
        assert_eq!(
            rec.matched,
            Some(StatusMatch {
                outgoing_id: id,
                seq: 1,
                delivery: DeliveryState::Delivered
            })
        );
        let o = s.outgoing(id).unwrap().unwrap();
        assert_eq!(o.delivery, Some(DeliveryState::Delivered));
        assert_eq!(o.parts[0].st, Some(0));
        assert_eq!(o.parts[0].discharge, r.discharge);
        assert_eq!(
            o.delivered_at,
            Some("2011-07-31T08:58:26Z".parse().unwrap())
        );
        let ev = rec.to_event(&r);
        assert_eq!(ev.message_id, Some(id));
        assert_eq!(ev.status, "delivered");
        assert_eq!(ev.reference, 253);
        // Read again from the SR store: recognised, same match.
        let again = s.record_status_report(&r).unwrap();
        assert!(again.duplicate);
        assert_eq!(again.id, rec.id);
        assert_eq!(again.matched, rec.matched);
    }

    #[test]
    fn the_most_recent_part_with_that_mr_and_recipient_wins() {
        let s = Store::open_in_memory().unwrap();
        let old = sent(&s, "+4917612345678", &[5]);
        let other_recipient = sent(&s, "+4915111111111", &[5]);
        let newest = sent(&s, "+4917612345678", &[5]);
        let rec = s
            .record_status_report(&report(5, "004917612345678", 0))
            .unwrap();
        assert_eq!(rec.matched.unwrap().outgoing_id, newest);
        assert_eq!(s.outgoing(old).unwrap().unwrap().parts[0].delivery, None);
        assert_eq!(
            s.outgoing(other_recipient).unwrap().unwrap().parts[0].delivery,
            None
        );
        // No part with MR 6, and MR 5 from another modem: unmatched but recorded.
        assert_eq!(
            s.record_status_report(&report(6, "+4917612345678", 0))
                .unwrap()
                .matched,
            None
        );
        let elsewhere = NewStatusReport {
            modem: "backup".into(),
            ..report(5, "+4917612345678", 0x40)
        };
        let rec = s.record_status_report(&elsewhere).unwrap();
        assert_eq!(rec.matched, None);
        assert_eq!(rec.to_event(&elsewhere).message_id, None);
    }

    #[test]
    fn a_multipart_message_is_delivered_when_every_part_is() {
        let s = Store::open_in_memory().unwrap();
        let id = sent(&s, "+4917612345678", &[10, 11, 12]);
        let d = |mr, st| {
            s.record_status_report(&NewStatusReport {
                // Distinct discharge times keep the reports distinct.
                discharge: Some(
                    DateTime::parse_from_rfc3339("2024-03-15T10:00:00+01:00").unwrap()
                        + chrono::Duration::seconds(i64::from(mr) * 100 + i64::from(st)),
                ),
                ..report(mr, "+4917612345678", st)
            })
            .unwrap()
            .matched
            .unwrap()
            .delivery
        };
        assert_eq!(d(10, 0x00), DeliveryState::Pending);
        // SMSC still trying part 2.
        assert_eq!(d(11, 0x21), DeliveryState::Pending);
        assert_eq!(d(12, 0x00), DeliveryState::Pending);
        assert_eq!(d(11, 0x00), DeliveryState::Delivered);
        // A late temporary report does not undo the delivery.
        assert_eq!(d(11, 0x30), DeliveryState::Delivered);
        let o = s.outgoing(id).unwrap().unwrap();
        assert_eq!(o.parts[1].delivery, Some(DeliveryState::Delivered));
        assert_eq!(o.parts[1].st, Some(0));
    }

    #[test]
    fn one_permanently_failed_part_fails_the_message() {
        let s = Store::open_in_memory().unwrap();
        let id = sent(&s, "+4917612345678", &[30, 31]);
        s.record_status_report(&report(30, "+4917612345678", 0x00))
            .unwrap();
        let rec = s
            .record_status_report(&report(31, "+4917612345678", 0x41))
            .unwrap();
        assert_eq!(rec.status, DeliveryState::Failed);
        assert_eq!(rec.matched.unwrap().delivery, DeliveryState::Failed);
        let o = s.outgoing(id).unwrap().unwrap();
        assert_eq!(o.delivery, Some(DeliveryState::Failed));
        assert_eq!(o.delivered_at, None);
    }
}
