//! The event journal: every event the engine emitted, as JSON with its kind, modem
//! and time, so `atmate` and `sqlite3` can answer "what happened last night".

use chrono::{DateTime, Utc};
use rusqlite::params;
use serde_json::Value;

use super::error::Fail;
use super::{col_utc, fmt_utc, Store, StoreError};
use crate::event::Event;

/// One journal row.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    /// Row id (increases with time).
    pub id: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The event kind (`sms`, `link`, …).
    pub kind: String,
    /// The modem, when the event came from one.
    pub modem: Option<String>,
    /// The event as JSON (with its `kind`).
    pub data: Value,
}

impl Store {
    /// Appends `event`, stamped now. Returns the row id.
    pub fn journal_append(&self, event: &Event) -> Result<i64, StoreError> {
        self.journal_append_at(event, Utc::now())
    }

    /// Appends `event` with the time `at` (for replays and tests).
    pub fn journal_append_at(&self, event: &Event, at: DateTime<Utc>) -> Result<i64, StoreError> {
        self.write("journal_append", |tx| {
            let data = serde_json::to_string(event)
                .map_err(|e| Fail::Invalid(format!("event not serialisable: {e}")))?;
            tx.prepare_cached(
                "INSERT INTO journal (at, kind, modem, data) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![fmt_utc(at), event.kind(), event.modem(), data])?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The newest `limit` entries (0 = all), newest first, optionally of one kind.
    pub fn journal_recent(
        &self,
        limit: usize,
        kind: Option<&str>,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        self.read("journal_recent", |c| {
            let limit = if limit == 0 {
                -1
            } else {
                i64::try_from(limit).unwrap_or(i64::MAX)
            };
            let mut st = c.prepare_cached(
                "SELECT id, at, kind, modem, data FROM journal
                  WHERE (?1 IS NULL OR kind = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![kind, limit], |r| {
                Ok((
                    r.get::<_, i64>("id")?,
                    col_utc(r, "at")?,
                    r.get::<_, String>("kind")?,
                    r.get::<_, Option<String>>("modem")?,
                    r.get::<_, String>("data")?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, at, kind, modem, data) = row?;
                let data = serde_json::from_str(&data)
                    .map_err(|e| Fail::Corrupt(format!("journal entry {id} is not JSON: {e}")))?;
                out.push(JournalEntry {
                    id,
                    at,
                    kind,
                    modem,
                    data,
                });
            }
            Ok(out)
        })
    }

    /// Deletes entries recorded before `older_than`, then all but the newest
    /// `max_rows`. Returns how many were deleted.
    pub fn journal_prune(
        &self,
        older_than: Option<DateTime<Utc>>,
        max_rows: Option<usize>,
    ) -> Result<usize, StoreError> {
        self.write("journal_prune", |tx| {
            let mut deleted = 0;
            if let Some(t) = older_than {
                deleted += tx
                    .prepare_cached("DELETE FROM journal WHERE at < ?1")?
                    .execute([fmt_utc(t)])?;
            }
            if let Some(max) = max_rows {
                let keep = i64::try_from(max).unwrap_or(i64::MAX);
                deleted += tx
                    .prepare_cached(
                        "DELETE FROM journal WHERE id NOT IN
                           (SELECT id FROM journal ORDER BY id DESC LIMIT ?1)",
                    )?
                    .execute([keep])?;
            }
            Ok(deleted)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{LinkEvent, LinkKind, LinkState, ScheduleEvent, SignalEvent};

    fn link(state: LinkState) -> Event {
        Event::Link(LinkEvent {
            modem: "main".into(),
            state,
            via: LinkKind::Serial,
            device: Some("/dev/ttyUSB2".into()),
            reason: None,
            downtime_ms: None,
        })
    }

    fn signal(csq: u8) -> Event {
        Event::Signal(SignalEvent {
            modem: "main".into(),
            csq,
            dbm: Some(-113 + 2 * i32::from(csq)),
            bars: 3,
        })
    }

    #[test]
    fn append_and_query_newest_first_by_kind() {
        let s = Store::open_in_memory().unwrap();
        let t0: DateTime<Utc> = "2024-03-15T08:00:00Z".parse().unwrap();
        s.journal_append_at(&link(LinkState::Down), t0).unwrap();
        s.journal_append_at(&signal(18), t0 + chrono::Duration::seconds(1))
            .unwrap();
        s.journal_append_at(&link(LinkState::Up), t0 + chrono::Duration::seconds(2))
            .unwrap();
        let sched = Event::Schedule(ScheduleEvent {
            job: "balance-every-morning".into(),
        });
        let id = s.journal_append(&sched).unwrap();

        let all = s.journal_recent(0, None).unwrap();
        assert_eq!(all.len(), 4);
        assert_eq!(all[0].id, id);
        assert_eq!(all[0].kind, "schedule");
        assert_eq!(all[0].modem, None);
        assert_eq!(all[0].data["job"], "balance-every-morning");

        let links = s.journal_recent(10, Some("link")).unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[0].data["state"], "up");
        assert_eq!(links[1].data["state"], "down");
        assert_eq!(links[1].at, t0);
        assert_eq!(links[1].modem.as_deref(), Some("main"));
        // The JSON is the event itself: it deserialises back. (Not tried with a
        // link event: its own `kind` field collides with the enum tag in event.rs.)
        let sig = s.journal_recent(1, Some("signal")).unwrap();
        assert_eq!(sig[0].data["kind"], "signal");
        let back: Event = serde_json::from_value(sig[0].data.clone()).unwrap();
        assert_eq!(back, signal(18));

        assert_eq!(s.journal_recent(1, None).unwrap().len(), 1);
        assert!(s.journal_recent(5, Some("ussd")).unwrap().is_empty());
    }

    #[test]
    fn prune_by_age_then_by_count() {
        let s = Store::open_in_memory().unwrap();
        let t0: DateTime<Utc> = "2024-03-01T00:00:00Z".parse().unwrap();
        for day in 0..10 {
            s.journal_append_at(&signal(day), t0 + chrono::Duration::days(day.into()))
                .unwrap();
        }
        // Keep the last 7 days of the 10.
        let deleted = s
            .journal_prune(Some(t0 + chrono::Duration::days(3)), None)
            .unwrap();
        assert_eq!(deleted, 3);
        assert_eq!(s.stats().unwrap().journal, 7);
        let deleted = s.journal_prune(None, Some(4)).unwrap();
        assert_eq!(deleted, 3);
        let left: Vec<_> = s
            .journal_recent(0, None)
            .unwrap()
            .into_iter()
            .map(|e| e.data["csq"].as_u64().unwrap())
            .collect();
        assert_eq!(left, [9, 8, 7, 6]);
        // Nothing more to do.
        assert_eq!(s.journal_prune(Some(t0), Some(4)).unwrap(), 0);
        assert_eq!(s.journal_prune(None, Some(0)).unwrap(), 4);
        assert!(s.journal_recent(0, None).unwrap().is_empty());
    }
}
