//! Schema migrations, tracked with `PRAGMA user_version`.
//!
//! Migration *n* (1-based) is `MIGRATIONS[n - 1]`; a file at version *v* gets every
//! migration after *v*, each in its own `BEGIN IMMEDIATE` transaction that also sets
//! `user_version`, so a crash or a failing statement leaves the file at the last
//! complete version. Never edit a shipped migration: append a new one.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// The SQL of each schema version, in order.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_initial.sql")];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema as a fresh file gets it (all migrations in order), for documentation
/// and `atmate` commands that show it.
pub fn schema_sql() -> String {
    MIGRATIONS.join("\n")
}

/// Brings the file up to [`SCHEMA_VERSION`]. Safe to call on every open: an
/// up-to-date file costs one pragma read. Refuses files newer than this build.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    apply(conn, path, MIGRATIONS)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn apply(conn: &mut Connection, path: &Path, migrations: &[&str]) -> Result<(), StoreError> {
    let supported = migrations.len() as i64;
    let open_err = |e: rusqlite::Error| StoreError::Open {
        path: path.to_path_buf(),
        source: Box::new(e),
    };
    let found = user_version(conn).map_err(open_err)?;
    if found > supported {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    for (i, sql) in migrations.iter().enumerate() {
        let version = i as i64 + 1;
        let migrate_err = |source| StoreError::Migrate {
            path: path.to_path_buf(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(migrate_err)?;
        // Re-read inside the write lock: another process (a second atmate, or the CLI)
        // may have migrated the file while we were waiting for it.
        let current = user_version(&tx).map_err(migrate_err)?;
        if current > supported {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: current,
                supported,
            });
        }
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(migrate_err)?;
        // user_version lives in the file header, which is part of the transaction.
        tx.pragma_update(None, "user_version", version)
            .map_err(migrate_err)?;
        tx.commit().map_err(migrate_err)?;
        tracing::info!(path = %path.display(), version, "store schema migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_names(conn: &Connection) -> Vec<String> {
        let mut st = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn migrations_apply_in_order_and_set_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "ALTER TABLE a ADD COLUMN y TEXT; CREATE TABLE b (z INTEGER);",
        ];
        apply(&mut conn, Path::new(":memory:"), &steps[..1]).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 1);
        assert_eq!(table_names(&conn), ["a"]);
        // Version 2 builds on version 1 (ALTER needs table a).
        apply(&mut conn, Path::new(":memory:"), &steps).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
        assert_eq!(table_names(&conn), ["a", "b"]);
        // Idempotent: nothing is re-run (re-running CREATE TABLE b would fail).
        apply(&mut conn, Path::new(":memory:"), &steps).unwrap();
        assert_eq!(user_version(&conn).unwrap(), 2);
    }

    #[test]
    fn a_failing_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = [
            "CREATE TABLE a (x INTEGER);",
            "CREATE TABLE b (z INTEGER); THIS IS NOT SQL;",
        ];
        let err = apply(&mut conn, Path::new("x.db"), &steps).unwrap_err();
        assert!(
            matches!(err, StoreError::Migrate { version: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("x.db"), "{err}");
        assert_eq!(user_version(&conn).unwrap(), 1);
        // Table b was rolled back with the rest of migration 2.
        assert_eq!(table_names(&conn), ["a"]);
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 3)
            .unwrap();
        let err = migrate(&mut conn, Path::new("/var/lib/atmate/atmate.db")).unwrap_err();
        match &err {
            StoreError::TooNew {
                found, supported, ..
            } => {
                assert_eq!(*found, SCHEMA_VERSION + 3);
                assert_eq!(*supported, SCHEMA_VERSION);
            }
            other => panic!("expected TooNew, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains("/var/lib/atmate/atmate.db"), "{text}");
        assert!(text.contains("upgrade atmate"), "{text}");
    }

    #[test]
    fn shipped_schema_is_valid_sql() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&schema_sql()).unwrap();
        let names = table_names(&conn);
        for t in [
            "inbox",
            "inbox_pdus",
            "fragment_sets",
            "fragments",
            "outbox",
            "outbox_parts",
            "status_reports",
            "kv",
            "journal",
        ] {
            assert!(names.iter().any(|n| n == t), "table {t} missing: {names:?}");
        }
    }
}
