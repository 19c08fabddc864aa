//! `Persist`: how the modem engine asks for durability without knowing the store.
//!
//! The receive pipeline deletes a message from the SIM only after a `Persist` call
//! returned `Ok` — that is the whole "never lose an SMS" promise. The runtime
//! implements this trait on top of `store`; tests use [`MemoryPersist`].

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset, Utc};

use crate::event::{SmsReceived, TextEncoding};

/// One received PDU, decoded, as the pipeline hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedPart {
    /// Modem name.
    pub modem: String,
    /// The hex PDU as the modem printed it (SMSC prefix included).
    pub pdu: String,
    /// Sender.
    pub from: String,
    /// Text of this part.
    pub text: String,
    /// SCTS.
    pub timestamp: Option<DateTime<FixedOffset>>,
    /// SMSC.
    pub smsc: Option<String>,
    /// Encoding.
    pub encoding: TextEncoding,
    /// Message class.
    pub class: Option<u8>,
    /// Concatenation info, for a part of a multipart message.
    pub concat: Option<ConcatInfo>,
}

/// Which part of which multipart message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConcatInfo {
    /// Reference (8- or 16-bit).
    pub reference: u16,
    /// Number of parts.
    pub total: u8,
    /// This part's number, from 1.
    pub seq: u8,
}

/// What the store did with a received part.
#[derive(Debug, Clone, PartialEq)]
pub enum SaveOutcome {
    /// A whole message is now archived (single part, or the last missing part):
    /// emit it.
    Complete(SmsReceived),
    /// A part was stored; the message is not complete yet.
    Partial {
        /// Parts stored so far.
        have: u8,
        /// Parts expected.
        total: u8,
    },
    /// Already archived earlier (re-read after a crash, or sent twice by the network).
    Duplicate,
}

/// A status report, as the pipeline hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusReportRecord {
    /// Modem name.
    pub modem: String,
    /// TP-MR.
    pub reference: u8,
    /// Recipient.
    pub recipient: String,
    /// TP-ST.
    pub status: u8,
    /// SCTS of the original message.
    pub scts: Option<DateTime<FixedOffset>>,
    /// Discharge time.
    pub discharge: Option<DateTime<FixedOffset>>,
    /// Raw PDU hex.
    pub pdu: String,
}

/// An outgoing message that still has parts to send (after a crash).
#[derive(Debug, Clone, PartialEq)]
pub struct PendingOutgoing {
    /// Outbox id.
    pub id: i64,
    /// Recipient.
    pub to: String,
    /// Whole text.
    pub text: String,
    /// Parts already sent (sequence numbers from 1) with their TP-MR.
    pub sent_parts: Vec<(u8, u8)>,
    /// Concatenation reference used for this message, when it was fixed.
    pub reference: Option<u16>,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A durability failure. Nothing is deleted from the SIM after one of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PersistError(pub String);

/// Durable storage as the modem engine needs it.
#[async_trait]
pub trait Persist: Send + Sync {
    /// Archive one received part (single message, or a fragment of a multipart one).
    /// Must be durable when it returns `Ok`.
    async fn save_received(&self, part: ReceivedPart) -> Result<SaveOutcome, PersistError>;
    /// Archive a PDU the decoder rejected. Returns the row id, or `None` for a duplicate.
    async fn save_undecodable(
        &self,
        modem: &str,
        pdu: &str,
        error: &str,
    ) -> Result<Option<i64>, PersistError>;
    /// Record a status report; returns the outbox id it matched.
    async fn save_status_report(
        &self,
        report: StatusReportRecord,
    ) -> Result<Option<i64>, PersistError>;
    /// Deliver multipart messages whose first part arrived before `cutoff`, marked incomplete.
    async fn expire_fragments(
        &self,
        modem: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<SmsReceived>, PersistError>;
    /// Write an outgoing message to the outbox before anything is sent.
    async fn outbox_enqueue(
        &self,
        modem: &str,
        to: &str,
        text: &str,
        parts: u16,
        reference: Option<u16>,
    ) -> Result<i64, PersistError>;
    /// One part went out with TP-MR `mr`.
    async fn outbox_part_sent(&self, id: i64, seq: u8, mr: u8) -> Result<(), PersistError>;
    /// All parts went out.
    async fn outbox_sent(&self, id: i64) -> Result<(), PersistError>;
    /// Sending failed; `permanent` = do not retry.
    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        permanent: bool,
    ) -> Result<(), PersistError>;
    /// Messages to resume after a restart.
    async fn outbox_pending(&self, modem: &str) -> Result<Vec<PendingOutgoing>, PersistError>;
    /// Part `seq` of message `id` is about to be handed to the modem (`AT+CMGS`). If the
    /// daemon dies before [`Persist::outbox_part_sent`], the part is in doubt.
    /// The default does not track it.
    async fn outbox_part_sending(&self, _id: i64, _seq: u8) -> Result<(), PersistError> {
        Ok(())
    }
    /// Parts of message `id` that were handed to the modem with no answer recorded
    /// (the daemon died during `AT+CMGS`). The default knows of none.
    async fn outbox_in_doubt(&self, _id: i64) -> Result<Vec<u8>, PersistError> {
        Ok(Vec::new())
    }
    /// Count one more round of sending message `id`, durably, before the modem is
    /// touched (so a message that kills the daemon every time is not retried for
    /// ever); returns the rounds so far, or `None` when the store does not count them.
    async fn outbox_begin_attempt(&self, _id: i64) -> Result<Option<u32>, PersistError> {
        Ok(None)
    }
}

/// One outbox entry of [`MemoryPersist::outbox`]: (id, recipient, state, sent parts
/// as (seq, TP-MR)).
pub type OutboxRow = (i64, String, String, Vec<(u8, u8)>);

/// An in-memory `Persist` for tests and for running without a store.
/// Deduplicates like the real store: (sender, SCTS, PDU) for singles,
/// (sender, reference, total, seq) for parts.
#[derive(Default)]
pub struct MemoryPersist {
    inner: std::sync::Mutex<MemoryInner>,
}

#[derive(Default)]
struct MemoryInner {
    next_id: i64,
    messages: Vec<SmsReceived>,
    seen_pdus: std::collections::HashSet<(String, String)>,
    fragments: std::collections::BTreeMap<(String, u16, u8), FragmentSet>,
    undecodable: Vec<(String, String)>,
    reports: Vec<StatusReportRecord>,
    outbox: Vec<MemOutgoing>,
}

struct FragmentSet {
    first_seen: DateTime<Utc>,
    parts: std::collections::BTreeMap<u8, ReceivedPart>,
}

#[derive(Debug, Clone)]
struct MemOutgoing {
    id: i64,
    modem: String,
    to: String,
    text: String,
    reference: Option<u16>,
    sent_parts: Vec<(u8, u8)>,
    /// Parts marked sending with no answer yet.
    sending: Vec<u8>,
    state: String,
    attempts: u32,
}

impl MemoryPersist {
    /// An empty store.
    pub fn new() -> MemoryPersist {
        MemoryPersist::default()
    }

    /// Every archived message, in order.
    pub fn messages(&self) -> Vec<SmsReceived> {
        self.lock().messages.clone()
    }

    /// Undecodable PDUs archived, as (pdu, error).
    pub fn undecodable(&self) -> Vec<(String, String)> {
        self.lock().undecodable.clone()
    }

    /// Status reports recorded.
    pub fn reports(&self) -> Vec<StatusReportRecord> {
        self.lock().reports.clone()
    }

    /// Outbox states, as (id, to, state, sent parts).
    pub fn outbox(&self) -> Vec<OutboxRow> {
        self.lock()
            .outbox
            .iter()
            .map(|o| (o.id, o.to.clone(), o.state.clone(), o.sent_parts.clone()))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryInner> {
        // A poisoned lock means a test already panicked; keep going with the data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn assemble(modem: &str, id: i64, parts: &[&ReceivedPart], total: u8) -> SmsReceived {
    let first = parts[0];
    SmsReceived {
        modem: modem.to_owned(),
        id,
        from: first.from.clone(),
        text: parts.iter().map(|p| p.text.as_str()).collect(),
        timestamp: first.timestamp,
        smsc: first.smsc.clone(),
        encoding: first.encoding,
        class: first.class,
        parts: u16::from(total),
        incomplete: parts.len() < usize::from(total),
    }
}

#[async_trait]
impl Persist for MemoryPersist {
    async fn save_received(&self, part: ReceivedPart) -> Result<SaveOutcome, PersistError> {
        let mut g = self.lock();
        let key = (part.from.clone(), part.pdu.clone());
        if !g.seen_pdus.insert(key) {
            return Ok(SaveOutcome::Duplicate);
        }
        match part.concat {
            None => {
                g.next_id += 1;
                let id = g.next_id;
                let msg = assemble(&part.modem, id, &[&part], 1);
                g.messages.push(msg.clone());
                Ok(SaveOutcome::Complete(msg))
            }
            Some(c) => {
                let key = (part.from.clone(), c.reference, c.total);
                let set = g
                    .fragments
                    .entry(key.clone())
                    .or_insert_with(|| FragmentSet {
                        first_seen: Utc::now(),
                        parts: Default::default(),
                    });
                if set.parts.contains_key(&c.seq) {
                    return Ok(SaveOutcome::Duplicate);
                }
                set.parts.insert(c.seq, part.clone());
                let have = set.parts.len() as u8;
                if have < c.total {
                    return Ok(SaveOutcome::Partial {
                        have,
                        total: c.total,
                    });
                }
                let set = g.fragments.remove(&key).expect("present");
                g.next_id += 1;
                let id = g.next_id;
                let parts: Vec<&ReceivedPart> = set.parts.values().collect();
                let msg = assemble(&part.modem, id, &parts, c.total);
                g.messages.push(msg.clone());
                Ok(SaveOutcome::Complete(msg))
            }
        }
    }

    async fn save_undecodable(
        &self,
        _modem: &str,
        pdu: &str,
        error: &str,
    ) -> Result<Option<i64>, PersistError> {
        let mut g = self.lock();
        if g.undecodable.iter().any(|(p, _)| p == pdu) {
            return Ok(None);
        }
        g.undecodable.push((pdu.to_owned(), error.to_owned()));
        g.next_id += 1;
        Ok(Some(g.next_id))
    }

    async fn save_status_report(
        &self,
        report: StatusReportRecord,
    ) -> Result<Option<i64>, PersistError> {
        let mut g = self.lock();
        let matched = g
            .outbox
            .iter()
            .rev()
            .find(|o| o.sent_parts.iter().any(|(_, mr)| *mr == report.reference))
            .map(|o| o.id);
        g.reports.push(report);
        Ok(matched)
    }

    async fn expire_fragments(
        &self,
        modem: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<SmsReceived>, PersistError> {
        let mut g = self.lock();
        let expired: Vec<_> = g
            .fragments
            .iter()
            .filter(|(_, s)| s.first_seen < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for key in expired {
            let set = g.fragments.remove(&key).expect("present");
            g.next_id += 1;
            let id = g.next_id;
            let parts: Vec<&ReceivedPart> = set.parts.values().collect();
            let msg = assemble(modem, id, &parts, key.2);
            g.messages.push(msg.clone());
            out.push(msg);
        }
        Ok(out)
    }

    async fn outbox_enqueue(
        &self,
        modem: &str,
        to: &str,
        text: &str,
        _parts: u16,
        reference: Option<u16>,
    ) -> Result<i64, PersistError> {
        let mut g = self.lock();
        g.next_id += 1;
        let id = g.next_id;
        g.outbox.push(MemOutgoing {
            id,
            modem: modem.into(),
            to: to.into(),
            text: text.into(),
            reference,
            sent_parts: Vec::new(),
            sending: Vec::new(),
            state: "pending".into(),
            attempts: 1,
        });
        Ok(id)
    }

    async fn outbox_part_sent(&self, id: i64, seq: u8, mr: u8) -> Result<(), PersistError> {
        let mut g = self.lock();
        if let Some(o) = g.outbox.iter_mut().find(|o| o.id == id) {
            o.sending.retain(|s| *s != seq);
            o.sent_parts.retain(|(s, _)| *s != seq);
            o.sent_parts.push((seq, mr));
        }
        Ok(())
    }

    async fn outbox_sent(&self, id: i64) -> Result<(), PersistError> {
        let mut g = self.lock();
        if let Some(o) = g.outbox.iter_mut().find(|o| o.id == id) {
            o.state = "sent".into();
        }
        Ok(())
    }

    async fn outbox_failed(
        &self,
        id: i64,
        _error: &str,
        permanent: bool,
    ) -> Result<(), PersistError> {
        let mut g = self.lock();
        if let Some(o) = g.outbox.iter_mut().find(|o| o.id == id) {
            // The caller saw the failure: those parts were not accepted.
            o.sending.clear();
            o.state = if permanent { "failed" } else { "pending" }.into();
        }
        Ok(())
    }

    async fn outbox_pending(&self, modem: &str) -> Result<Vec<PendingOutgoing>, PersistError> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .filter(|o| o.modem == modem && o.state == "pending")
            .map(|o| PendingOutgoing {
                id: o.id,
                to: o.to.clone(),
                text: o.text.clone(),
                sent_parts: o.sent_parts.clone(),
                reference: o.reference,
                attempts: o.attempts,
            })
            .collect())
    }

    async fn outbox_part_sending(&self, id: i64, seq: u8) -> Result<(), PersistError> {
        let mut g = self.lock();
        if let Some(o) = g.outbox.iter_mut().find(|o| o.id == id) {
            if !o.sent_parts.iter().any(|(s, _)| *s == seq) && !o.sending.contains(&seq) {
                o.sending.push(seq);
            }
        }
        Ok(())
    }

    async fn outbox_in_doubt(&self, id: i64) -> Result<Vec<u8>, PersistError> {
        Ok(self
            .lock()
            .outbox
            .iter()
            .find(|o| o.id == id)
            .map(|o| o.sending.clone())
            .unwrap_or_default())
    }

    async fn outbox_begin_attempt(&self, id: i64) -> Result<Option<u32>, PersistError> {
        let mut g = self.lock();
        Ok(g.outbox.iter_mut().find(|o| o.id == id).map(|o| {
            o.attempts += 1;
            o.attempts
        }))
    }
}
