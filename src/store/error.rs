//! `StoreError`: what went wrong, in which store operation, on which file.

use std::path::PathBuf;

/// A store failure. Every variant names the operation (`archive_single`,
/// `save_fragment`, …) and, where the database was involved, the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or configured (permissions, not a
    /// database, disk full, …).
    #[error("cannot open store {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What SQLite (or the file system) said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer atmate: its schema is newer than this build knows.
    #[error(
        "store {} has schema version {found}, but this atmate knows versions up to {supported}; \
         upgrade atmate or point it at another file",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest schema version this build can use.
        supported: i64,
    },
    /// A schema migration failed; the file is left at its previous version.
    #[error("migrating store {} to schema version {version}: {source}", path.display())]
    Migrate {
        /// The database file.
        path: PathBuf,
        /// The version being applied.
        version: i64,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// An SQLite error during an operation.
    #[error("store {}: {op}: {source}", path.display())]
    Sqlite {
        /// The store operation (`archive_single`, `kv_set`, …).
        op: &'static str,
        /// The database file (`:memory:` for an in-memory store).
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The operation names a row that does not exist.
    #[error("store: {op}: no {what} with id {id}")]
    NotFound {
        /// The store operation.
        op: &'static str,
        /// What was looked for (`outgoing message`, `part`, …).
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// The arguments make no sense (a part number beyond the total, a JSON value
    /// that cannot be stored, marking a message sent with parts unsent, …).
    #[error("store: {op}: {message}")]
    Invalid {
        /// The store operation.
        op: &'static str,
        /// A plain sentence.
        message: String,
    },
    /// A value in the file could not be read back (edited by hand, or corrupt).
    #[error("store {}: {op}: unreadable stored value: {message}", path.display())]
    Corrupt {
        /// The store operation.
        op: &'static str,
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        message: String,
    },
}

/// The error inside an operation, before the operation name and path are attached
/// (see `Store::run`). Lets the operations use `?` on rusqlite calls.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(rusqlite::Error),
    NotFound { what: &'static str, id: i64 },
    Invalid(String),
    Corrupt(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        // Values we could not parse back while mapping a row come out of rusqlite as a
        // conversion failure; report them as corrupt data, not as an SQL error.
        match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, inner) => {
                Fail::Corrupt(inner.to_string())
            }
            other => Fail::Sql(other),
        }
    }
}

impl Fail {
    pub(crate) fn into_store_error(self, op: &'static str, path: PathBuf) -> StoreError {
        match self {
            Fail::Sql(source) => StoreError::Sqlite { op, path, source },
            Fail::NotFound { what, id } => StoreError::NotFound { op, what, id },
            Fail::Invalid(message) => StoreError::Invalid { op, message },
            Fail::Corrupt(message) => StoreError::Corrupt { op, path, message },
        }
    }
}
