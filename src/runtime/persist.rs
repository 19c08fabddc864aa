//! `modem::Persist` on top of the SQLite store: how the receive pipeline's "durable
//! before delete" promise reaches the disk. Every call runs on the blocking pool.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::event::SmsReceived;
use crate::modem::persist::{
    PendingOutgoing, PersistError, ReceivedPart, SaveOutcome, StatusReportRecord,
};
use crate::modem::Persist;
use crate::store::{self, Store};

/// The store, as the modem engine sees it.
#[derive(Clone)]
pub struct StorePersist {
    store: Store,
}

impl StorePersist {
    /// Wrap an open store.
    pub fn new(store: Store) -> StorePersist {
        StorePersist { store }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, store::StoreError> + Send + 'static,
) -> Result<T, PersistError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| PersistError(format!("store task failed: {e}")))?
        .map_err(|e| PersistError(e.to_string()))
}

fn message_event(store: &Store, id: i64) -> Result<Option<SmsReceived>, store::StoreError> {
    Ok(store.message(id)?.and_then(|m| m.to_sms_received()))
}

/// A message that is now whole in the archive, as the event to emit.
fn completed(store: &Store, id: i64) -> Result<SaveOutcome, store::StoreError> {
    Ok(message_event(store, id)?
        .map(SaveOutcome::Complete)
        .unwrap_or(SaveOutcome::Duplicate))
}

#[async_trait]
impl Persist for StorePersist {
    async fn save_received(&self, part: ReceivedPart) -> Result<SaveOutcome, PersistError> {
        let store = self.store.clone();
        blocking(move || {
            let now = Utc::now();
            match part.concat {
                None => {
                    let r = store.archive_single(&store::NewSms {
                        modem: part.modem,
                        number: part.from,
                        text: part.text,
                        encoding: part.encoding,
                        class: part.class,
                        smsc: part.smsc,
                        scts: part.timestamp,
                        received_at: now,
                        pdu: part.pdu,
                    })?;
                    match r {
                        store::Archived::New(id) => completed(&store, id),
                        store::Archived::Duplicate(_) => Ok(SaveOutcome::Duplicate),
                    }
                }
                Some(c) => {
                    let r = store.save_fragment(&store::NewFragment {
                        modem: part.modem,
                        number: part.from,
                        reference: c.reference,
                        total: c.total,
                        seq: c.seq,
                        text: part.text,
                        encoding: part.encoding,
                        class: part.class,
                        smsc: part.smsc,
                        scts: part.timestamp,
                        received_at: now,
                        pdu: part.pdu,
                    })?;
                    match r {
                        store::FragmentOutcome::Complete { id } => completed(&store, id),
                        store::FragmentOutcome::Stored { have, total } => {
                            Ok(SaveOutcome::Partial { have, total })
                        }
                        store::FragmentOutcome::Duplicate => Ok(SaveOutcome::Duplicate),
                    }
                }
            }
        })
        .await
    }

    async fn save_undecodable(
        &self,
        modem: &str,
        pdu: &str,
        error: &str,
    ) -> Result<Option<i64>, PersistError> {
        let store = self.store.clone();
        let (modem, pdu, error) = (modem.to_owned(), pdu.to_owned(), error.to_owned());
        blocking(move || {
            let r = store.archive_undecodable(&modem, &pdu, &error, Utc::now())?;
            Ok(r.is_new().then(|| r.id()))
        })
        .await
    }

    async fn save_status_report(&self, r: StatusReportRecord) -> Result<Option<i64>, PersistError> {
        let store = self.store.clone();
        blocking(move || {
            store
                .record_status_report(&store::NewStatusReport {
                    modem: r.modem,
                    mr: r.reference,
                    recipient: r.recipient,
                    scts: r.scts,
                    discharge: r.discharge,
                    st: r.status,
                    pdu: Some(r.pdu),
                    received_at: Utc::now(),
                })
                .map(|rec| rec.matched.map(|m| m.outgoing_id))
        })
        .await
    }

    async fn expire_fragments(
        &self,
        modem: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<SmsReceived>, PersistError> {
        let store = self.store.clone();
        let modem = modem.to_owned();
        blocking(move || {
            let ids = store.expire_fragments(Some(&modem), cutoff)?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(m) = message_event(&store, id)? {
                    out.push(m);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn outbox_enqueue(
        &self,
        modem: &str,
        to: &str,
        text: &str,
        parts: u16,
        reference: Option<u16>,
    ) -> Result<i64, PersistError> {
        let store = self.store.clone();
        let m = store::NewOutgoing {
            modem: modem.to_owned(),
            to: to.to_owned(),
            text: text.to_owned(),
            parts,
            reference,
            pdus: Vec::new(),
            status_report: false,
        };
        blocking(move || {
            let id = store.enqueue_outgoing(&m)?;
            store.begin_attempt(id)?;
            Ok(id)
        })
        .await
    }

    async fn outbox_part_sending(&self, id: i64, seq: u8) -> Result<(), PersistError> {
        let store = self.store.clone();
        blocking(move || store.mark_part_sending(id, seq)).await
    }

    async fn outbox_in_doubt(&self, id: i64) -> Result<Vec<u8>, PersistError> {
        let store = self.store.clone();
        blocking(move || {
            Ok(store
                .outgoing(id)?
                .map(|o| o.in_doubt())
                .unwrap_or_default())
        })
        .await
    }

    async fn outbox_begin_attempt(&self, id: i64) -> Result<Option<u32>, PersistError> {
        let store = self.store.clone();
        blocking(move || store.begin_attempt(id).map(Some)).await
    }

    async fn outbox_part_sent(&self, id: i64, seq: u8, mr: u8) -> Result<(), PersistError> {
        let store = self.store.clone();
        blocking(move || store.mark_part_sent(id, seq, mr)).await
    }

    async fn outbox_sent(&self, id: i64) -> Result<(), PersistError> {
        let store = self.store.clone();
        blocking(move || store.mark_sent(id)).await
    }

    async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        permanent: bool,
    ) -> Result<(), PersistError> {
        let store = self.store.clone();
        let error = error.to_owned();
        blocking(move || {
            let retry = if permanent {
                store::Retry::Never
            } else {
                store::Retry::At(Utc::now() + chrono::Duration::seconds(30))
            };
            store.mark_failed(id, &error, retry)
        })
        .await
    }

    async fn outbox_pending(&self, modem: &str) -> Result<Vec<PendingOutgoing>, PersistError> {
        let store = self.store.clone();
        let modem = modem.to_owned();
        blocking(move || {
            Ok(store
                .pending_outgoing(&modem)?
                .into_iter()
                .map(|o| PendingOutgoing {
                    id: o.id,
                    to: o.to.clone(),
                    text: o.text.clone(),
                    sent_parts: o.sent_parts(),
                    reference: o.reference,
                    attempts: o.attempts,
                })
                .collect())
        })
        .await
    }
}
