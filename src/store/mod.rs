//! SQLite storage (rusqlite, WAL): the SMS archive (received and sent), multipart
//! fragments, the outbox, status reports, a key-value table for scripts and an event
//! journal.
