//! SQLite storage (rusqlite, WAL): the SMS archive (received and sent), multipart
//! fragments, the outbox, status reports, a key-value table for scripts and an event
//! journal.
//!
//! The store is atmate's durable memory and its promise is: **never lose or double an
//! SMS**. The receive pipeline deletes a message from the SIM only after a store
//! write returned `Ok`, so every write that matters is one transaction that is on
//! disk when the call returns, and every received PDU is recognised when it is read
//! a second time.
//!
//! # Files
//! - `archive.rs`: received messages (`inbox`, `inbox_pdus`), duplicates, queries.
//! - `fragments.rs`: multipart parts waiting for their siblings, assembly, expiry.
//! - `outbox.rs`: messages we send, per-part progress, retries.
//! - `reports.rs`: status reports matched to sent parts.
//! - `kv.rs`, `journal.rs`: script values and the event journal.
//! - `number.rs`: phone-number comparison (`+49…` = `0049…` = `0…`).
//! - `migrations.rs`, `migrations/*.sql`: the schema, versioned by `PRAGMA user_version`.
//!
//! # Durability: WAL + `synchronous = FULL`
//! In WAL mode a commit appends to the `-wal` file. With `synchronous = NORMAL` a
//! commit survives the process being killed (`kill -9`, a panic, the OOM killer),
//! because the bytes are in the OS page cache, but it can be lost if the *machine*
//! stops before the next checkpoint: power cut, kernel panic, an SBC pulled from the
//! wall — the usual life of a router with a USB stick. Since the SIM copy is deleted
//! right after our commit returns, a lost commit is a lost SMS, so the store uses
//! `synchronous = FULL`: the WAL is fsynced on every commit. The price is one fsync
//! per write, a few milliseconds on flash, which is nothing next to the seconds an
//! SMS takes over the air. Reads are not affected, and WAL lets `sqlite3` (or
//! `atmate inbox`) read the file while the daemon writes it.
//!
//! # Threads
//! [`Store`] is a cheap, cloneable handle (`Arc<Mutex<Connection>>`): every call takes
//! the lock, runs its transaction and returns. All calls block (rusqlite is
//! synchronous), so async code calls them from `spawn_blocking` or a dedicated
//! thread. One connection serialises writers; SQLite's own locking (with a busy
//! timeout) covers other processes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, Row, Transaction, TransactionBehavior};

use crate::event::TextEncoding;

mod archive;
mod error;
mod fragments;
mod journal;
mod kv;
mod migrations;
mod number;
mod outbox;
mod reports;

pub use archive::{Archived, InboxMessage, InboxQuery, NewSms};
pub use error::StoreError;
pub use fragments::{
    FragmentOutcome, NewFragment, OpenFragmentSet, GAP_MARKER, SAME_MESSAGE_WINDOW,
};
pub use journal::JournalEntry;
pub use migrations::{schema_sql, SCHEMA_VERSION};
pub use number::numbers_match;
pub use outbox::{
    DeliveryState, NewOutgoing, OutboxQuery, Outgoing, OutgoingPart, OutgoingState, PartState,
    Retry,
};
pub use reports::{delivery_state, NewStatusReport, StatusMatch, StatusRecorded};

use error::Fail;

/// How long a write waits for another process (e.g. someone writing with `sqlite3`)
/// to release the database before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The durable store. Cheap to clone; every clone uses the same connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// Counts for `atmate status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    /// Schema version of the file.
    pub schema_version: i64,
    /// Received messages archived (including undecodable ones).
    pub inbox: i64,
    /// Received messages not yet handed to rules and scripts.
    pub undispatched: i64,
    /// Multipart messages waiting for parts.
    pub open_fragment_sets: i64,
    /// Outgoing messages not yet (fully) sent.
    pub outbox_queued: i64,
    /// Outgoing messages that failed for good.
    pub outbox_failed: i64,
    /// Journal entries.
    pub journal: i64,
}

impl Store {
    /// Opens (or creates) the store at `path`, creating missing parent directories
    /// and applying schema migrations. A new file is created readable by its owner
    /// only (it holds private messages). Fails with [`StoreError::TooNew`] when the
    /// file was written by a newer atmate.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |e: std::io::Error| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        create_private(&path).map_err(io_err)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Store::setup(conn, path)
    }

    /// A store in memory, for tests and for running without a file. Same schema
    /// and behaviour, minus durability.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        })?;
        Store::setup(conn, path)
    }

    fn setup(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path.clone(),
            source: Box::new(e),
        };
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // The first statement that reads the file: a file that is not a database
        // fails here, with the path in the message.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") && path != Path::new(":memory:") {
            // E.g. a file system without shared memory support. Still durable (the
            // rollback journal with synchronous=FULL), but readers block writers.
            tracing::warn!(path = %path.display(), %mode, "store: WAL mode unavailable");
        }
        // See the module docs: a commit must survive a power cut, not just kill -9.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_err)?;
        // Truncate a WAL that grew during a burst back to 16 MiB after checkpoints.
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)
            .map_err(open_err)?;
        migrations::migrate(&mut conn, &path)?;
        Ok(Store {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                path,
            }),
        })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The schema version of the open file (always [`SCHEMA_VERSION`] after `open`).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.read("schema_version", |c| {
            Ok(c.query_row("PRAGMA user_version", [], |r| r.get(0))?)
        })
    }

    /// Copies the WAL into the main file and truncates it; call on clean shutdown
    /// so the file is self-contained (e.g. before copying it elsewhere).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.read("checkpoint", |c| {
            // Returns (busy, log frames, checkpointed frames); busy = 1 only means a
            // reader kept part of the WAL alive, which the next checkpoint handles.
            let _: (i64, i64, i64) = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            Ok(())
        })
    }

    /// Counts of what the store holds.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        self.read("stats", |c| {
            let count = |sql: &str| -> rusqlite::Result<i64> { c.query_row(sql, [], |r| r.get(0)) };
            Ok(StoreStats {
                schema_version: count("PRAGMA user_version")?,
                inbox: count("SELECT count(*) FROM inbox")?,
                undispatched: count("SELECT count(*) FROM inbox WHERE dispatched_at IS NULL")?,
                open_fragment_sets: count("SELECT count(*) FROM fragment_sets")?,
                outbox_queued: count("SELECT count(*) FROM outbox WHERE state = 'queued'")?,
                outbox_failed: count("SELECT count(*) FROM outbox WHERE state = 'failed'")?,
                journal: count("SELECT count(*) FROM journal")?,
            })
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through the open `Transaction`,
        // whose drop rolled it back: the connection is consistent, keep using it.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a read-only operation.
    pub(crate) fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let conn = self.lock();
        f(&conn).map_err(|e| e.into_store_error(op, self.inner.path.clone()))
    }

    /// Runs a write as one `BEGIN IMMEDIATE` transaction: committed (durably) when
    /// `f` returns `Ok`, rolled back otherwise. IMMEDIATE takes the write lock up
    /// front, so a transaction never fails half-way because another process started
    /// writing after our first read.
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Fail>,
    ) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let run = |conn: &mut Connection| -> Result<T, Fail> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut conn).map_err(|e| e.into_store_error(op, self.inner.path.clone()))
    }
}

/// Creates `path` with mode 0600 if it does not exist yet; SQLite gives the `-wal`
/// and `-shm` files the same permissions as the database file.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

// ---- value conversions shared by the submodules ----

/// UTC time as stored: RFC 3339, milliseconds, `Z`. Fixed width, so the text
/// order is the time order and `WHERE received_at >= ?` works on the text.
pub(crate) fn fmt_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A network time stamp as stored: RFC 3339 with the sender's offset.
pub(crate) fn fmt_scts(t: Option<DateTime<FixedOffset>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

pub(crate) fn enc_str(e: TextEncoding) -> &'static str {
    match e {
        TextEncoding::Gsm7 => "gsm7",
        TextEncoding::Ucs2 => "ucs2",
        TextEncoding::EightBit => "8bit",
    }
}

fn conversion_error(col: &str, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        format!("column {col}: {msg}").into(),
    )
}

/// Reads a text column and converts it, reporting a bad value with its column name.
fn col_map<T>(
    row: &Row<'_>,
    col: &str,
    f: impl FnOnce(&str) -> Result<T, String>,
) -> rusqlite::Result<Option<T>> {
    let s: Option<String> = row.get(col)?;
    s.map(|s| f(&s).map_err(|m| conversion_error(col, m)))
        .transpose()
}

pub(crate) fn col_utc_opt(row: &Row<'_>, col: &str) -> rusqlite::Result<Option<DateTime<Utc>>> {
    col_map(row, col, |s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| format!("bad time {s:?}: {e}"))
    })
}

pub(crate) fn col_utc(row: &Row<'_>, col: &str) -> rusqlite::Result<DateTime<Utc>> {
    col_utc_opt(row, col)?.ok_or_else(|| conversion_error(col, "unexpected NULL".into()))
}

pub(crate) fn col_scts(
    row: &Row<'_>,
    col: &str,
) -> rusqlite::Result<Option<DateTime<FixedOffset>>> {
    col_map(row, col, |s| {
        DateTime::parse_from_rfc3339(s).map_err(|e| format!("bad time {s:?}: {e}"))
    })
}

pub(crate) fn col_enc_opt(row: &Row<'_>, col: &str) -> rusqlite::Result<Option<TextEncoding>> {
    col_map(row, col, |s| match s {
        "gsm7" => Ok(TextEncoding::Gsm7),
        "ucs2" => Ok(TextEncoding::Ucs2),
        "8bit" => Ok(TextEncoding::EightBit),
        other => Err(format!("unknown encoding {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_a_private_wal_file_and_reopens_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/atmate.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.path(), path);
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let conn = store.lock();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        // 2 = FULL
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2);
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        drop(conn);
        drop(store);
        // Reopen: migrations are not re-run (they would fail on existing tables).
        let again = Store::open(&path).unwrap();
        assert_eq!(again.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(again.stats().unwrap().inbox, 0);
    }

    #[test]
    fn a_file_from_a_newer_atmate_is_refused_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        drop(Store::open(&path).unwrap());
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found, .. } if found == SCHEMA_VERSION + 1),
            "{err:?}"
        );
        assert!(err.to_string().contains("atmate.db"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(
            &path,
            "this is not sqlite, just some text long enough ".repeat(20),
        )
        .unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("notes.txt"), "{text}");
    }

    #[test]
    fn the_sqlite3_cli_view_of_the_schema_is_readable_while_open() {
        // Another connection (what the sqlite3 shell does) can read while we hold ours.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        let store = Store::open(&path).unwrap();
        store
            .write("test", |tx| {
                tx.execute(
                    "INSERT INTO kv (key, value, updated_at) VALUES ('a', '1', 'now')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let other = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = other
            .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn many_threads_archiving_the_same_and_distinct_messages_store_each_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("atmate.db")).unwrap();
        const THREADS: u32 = 8;
        const SHARED: u32 = 40;
        const OWN: u32 = 10;
        const LONG: u16 = 5; // multipart messages of 3 parts, sent by every thread
        let (new, dup, complete) = (
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
        );
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let store = store.clone();
                let (new, dup, complete) = (&new, &dup, &complete);
                scope.spawn(move || {
                    // Every thread sees the shared messages, each in its own order.
                    for k in 0..SHARED {
                        let i = (k + t * 7) % SHARED;
                        match store
                            .archive_single(&archive::tests::nth("+4917612345678", i))
                            .unwrap()
                        {
                            Archived::New(_) => new.fetch_add(1, Ordering::SeqCst),
                            Archived::Duplicate(_) => dup.fetch_add(1, Ordering::SeqCst),
                        };
                    }
                    for i in 0..OWN {
                        let from = format!("+491510000000{t}");
                        let a = store
                            .archive_single(&archive::tests::nth(&from, i))
                            .unwrap();
                        assert!(a.is_new());
                        new.fetch_add(1, Ordering::SeqCst);
                    }
                    for r in 0..LONG {
                        for k in 0..3u8 {
                            let seq = (k + t as u8) % 3 + 1;
                            let scts = archive::tests::scts("2024-03-15T14:30:00+02:00")
                                + chrono::Duration::seconds(i64::from(seq));
                            let f = NewFragment {
                                modem: "main".into(),
                                number: "+4917612345678".into(),
                                reference: r,
                                total: 3,
                                seq,
                                text: format!("{r}.{seq} "),
                                encoding: TextEncoding::Gsm7,
                                class: None,
                                smsc: None,
                                scts: Some(scts),
                                received_at: Utc::now(),
                                pdu: format!("0791{r:04X}{seq:02X}"),
                            };
                            if let FragmentOutcome::Complete { .. } =
                                store.save_fragment(&f).unwrap()
                            {
                                complete.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                });
            }
        });
        let distinct = (SHARED + THREADS * OWN) as usize;
        assert_eq!(new.load(Ordering::SeqCst), distinct);
        assert_eq!(
            dup.load(Ordering::SeqCst),
            ((THREADS - 1) * SHARED) as usize
        );
        assert_eq!(complete.load(Ordering::SeqCst), usize::from(LONG));
        let stats = store.stats().unwrap();
        assert_eq!(stats.inbox as usize, distinct + usize::from(LONG));
        assert_eq!(stats.open_fragment_sets, 0);
        let long = store
            .inbox(&InboxQuery::default())
            .unwrap()
            .into_iter()
            .filter(|m| m.reference == Some(2))
            .collect::<Vec<_>>();
        assert_eq!(long.len(), 1);
        assert_eq!(long[0].text.as_deref(), Some("2.1 2.2 2.3 "));
    }

    /// Set in the child process of `a_commit_survives_kill_9`.
    const KILL9_ENV: &str = "ATMATE_STORE_KILL9_DB";

    #[test]
    fn a_commit_survives_kill_9() {
        use std::io::BufRead;
        if let Ok(path) = std::env::var(KILL9_ENV) {
            // Child: archive messages as fast as possible and say which ones
            // committed, until the parent kills us (or a safety limit).
            let store = Store::open(&path).unwrap();
            for i in 0..20_000 {
                let id = store
                    .archive_single(&archive::tests::nth("+4917612345678", i))
                    .unwrap()
                    .id();
                println!("committed {i} {id}");
            }
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::tests::a_commit_survives_kill_9",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(KILL9_ENV, &path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        struct Reap(std::process::Child);
        impl Drop for Reap {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let stdout = child.stdout.take().unwrap();
        let mut child = Reap(child);
        let mut committed = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("committed ") {
                let (i, id) = rest.split_once(' ').unwrap();
                committed.push((i.parse::<u32>().unwrap(), id.parse::<i64>().unwrap()));
                if committed.len() == 50 {
                    // SIGKILL: no destructors, no checkpoint, WAL left as is.
                    child.0.kill().unwrap();
                    break;
                }
            }
        }
        child.0.wait().unwrap();
        assert_eq!(committed.len(), 50, "child died early");

        let store = Store::open(&path).unwrap();
        let ok: String = store
            .lock()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        for (i, id) in &committed {
            let m = store
                .message(*id)
                .unwrap()
                .unwrap_or_else(|| panic!("lost {id}"));
            assert_eq!(m.text.unwrap(), format!("message {i}"));
        }
        // Writes after the last report may or may not have committed; none doubled.
        let n = store.stats().unwrap().inbox;
        assert!(n >= 50, "{n}");
        for (i, _) in &committed {
            assert!(!store
                .archive_single(&archive::tests::nth("+4917612345678", *i))
                .unwrap()
                .is_new());
        }
    }

    #[test]
    fn time_text_sorts_like_time() {
        let a = "2024-03-15T09:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let b = a + chrono::Duration::milliseconds(1500);
        let c = a + chrono::Duration::days(400);
        let (sa, sb, sc) = (fmt_utc(a), fmt_utc(b), fmt_utc(c));
        assert_eq!(sa, "2024-03-15T09:00:00.000Z");
        assert!(sa < sb && sb < sc);
        assert_eq!(sa.len(), sc.len());
        let scts = DateTime::parse_from_rfc3339("2024-03-15T14:30:05+02:00").unwrap();
        assert_eq!(
            fmt_scts(Some(scts)).as_deref(),
            Some("2024-03-15T14:30:05+02:00")
        );
    }
}
