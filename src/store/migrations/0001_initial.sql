-- atmate store, schema version 1.
--
-- Conventions, so the file reads well in the sqlite3 shell:
--   * *_at columns are UTC, RFC 3339 with milliseconds ('2024-03-15T12:30:05.000Z'):
--     fixed width, so comparing the text compares the time.
--   * scts / discharge are service-centre time stamps as the network gave them,
--     RFC 3339 with the sender's offset ('2024-03-15T14:30:05+02:00').
--   * pdu columns hold the hex PDU exactly as the modem printed it (SMSC prefix included).
--   * number is the phone number as the PDU carried it ('+4917…', '0176…', or an
--     alphanumeric sender such as 'Vodafone').

-- Received messages: one row per whole message (single SMS, assembled multipart,
-- multipart delivered incomplete after the timeout, or an undecodable PDU).
CREATE TABLE inbox (
    id            INTEGER PRIMARY KEY,
    modem         TEXT    NOT NULL,
    number        TEXT,                        -- sender; NULL only for undecodable PDUs
    text          TEXT,                        -- whole text; NULL only for undecodable PDUs
    encoding      TEXT CHECK (encoding IN ('gsm7', 'ucs2', '8bit')),
    class         INTEGER,                     -- message class; 0 = flash
    smsc          TEXT,
    scts          TEXT,                        -- of the first part present
    received_at   TEXT    NOT NULL,            -- when the (last) part was read from the modem
    parts         INTEGER NOT NULL DEFAULT 1,  -- parts the message has (or should have)
    reference     INTEGER,                     -- concatenation reference; NULL for a single SMS
    incomplete    INTEGER NOT NULL DEFAULT 0,  -- 1: delivered after the timeout, parts missing
    missing       TEXT,                        -- the missing part numbers, e.g. '2,3'
    error         TEXT,                        -- the decoder's message, for undecodable PDUs
    dispatched_at TEXT                         -- when rules and scripts were given it
);
CREATE INDEX inbox_received_at ON inbox (received_at);
CREATE INDEX inbox_sender_scts ON inbox (modem, number, scts);
CREATE INDEX inbox_reference ON inbox (modem, number, reference) WHERE reference IS NOT NULL;
CREATE INDEX inbox_undispatched ON inbox (modem) WHERE dispatched_at IS NULL;
CREATE INDEX inbox_undecodable ON inbox (modem) WHERE error IS NOT NULL;

-- The raw PDUs of every inbox row, one per part present (seq 1 for a single SMS).
-- They are also the memory that recognises a part read a second time.
CREATE TABLE inbox_pdus (
    message_id INTEGER NOT NULL REFERENCES inbox (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    scts       TEXT,
    pdu        TEXT    NOT NULL,
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;

-- Multipart messages still waiting for parts. A set is deleted in the same
-- transaction that writes its whole message to inbox.
CREATE TABLE fragment_sets (
    id        INTEGER PRIMARY KEY,
    modem     TEXT    NOT NULL,
    number    TEXT    NOT NULL,
    reference INTEGER NOT NULL,
    total     INTEGER NOT NULL,
    scts      TEXT,                            -- of the part that opened the set
    opened_at TEXT    NOT NULL                 -- when its first part arrived; the timeout counts from here
);
CREATE INDEX fragment_sets_key ON fragment_sets (modem, number, reference, total);
CREATE INDEX fragment_sets_opened_at ON fragment_sets (opened_at);

CREATE TABLE fragments (
    set_id      INTEGER NOT NULL REFERENCES fragment_sets (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    text        TEXT    NOT NULL,
    encoding    TEXT    NOT NULL CHECK (encoding IN ('gsm7', 'ucs2', '8bit')),
    class       INTEGER,
    smsc        TEXT,
    scts        TEXT,
    received_at TEXT    NOT NULL,
    pdu         TEXT    NOT NULL,
    PRIMARY KEY (set_id, seq)
) WITHOUT ROWID;

-- Messages we send. A row is written before the modem is touched.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    modem           TEXT    NOT NULL,
    number          TEXT    NOT NULL,          -- recipient, as given
    text            TEXT    NOT NULL,
    parts           INTEGER NOT NULL,
    reference       INTEGER,                   -- concatenation reference of a multipart message
    report          INTEGER NOT NULL DEFAULT 0, -- 1: status reports requested
    state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    delivery        TEXT CHECK (delivery IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    next_attempt_at TEXT,                      -- NULL: as soon as possible
    created_at      TEXT    NOT NULL,
    sent_at         TEXT,                      -- when the last part was accepted by the SMSC
    delivered_at    TEXT,                      -- discharge time of the last delivery report
    error           TEXT
);
CREATE INDEX outbox_modem_state ON outbox (modem, state);
CREATE INDEX outbox_created_at ON outbox (created_at);

CREATE TABLE outbox_parts (
    message_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    pdu        TEXT,                           -- the planned SMS-SUBMIT PDU, when known
    state      TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent')),
    mr         INTEGER,                        -- TP-MR from +CMGS: <mr>
    sent_at    TEXT,
    delivery   TEXT CHECK (delivery IN ('pending', 'delivered', 'failed')),
    st         INTEGER,                        -- TP-ST of the latest status report
    discharge  TEXT,                           -- discharge time of the latest status report
    PRIMARY KEY (message_id, seq)
) WITHOUT ROWID;
CREATE INDEX outbox_parts_mr ON outbox_parts (mr) WHERE mr IS NOT NULL;

-- Every status report received, matched or not.
CREATE TABLE status_reports (
    id          INTEGER PRIMARY KEY,
    modem       TEXT    NOT NULL,
    mr          INTEGER NOT NULL,
    number      TEXT    NOT NULL,              -- recipient, as the report gives it
    scts        TEXT,
    discharge   TEXT,
    st          INTEGER NOT NULL,              -- TP-ST
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    pdu         TEXT,
    received_at TEXT    NOT NULL,
    message_id  INTEGER REFERENCES outbox (id) ON DELETE SET NULL,
    part        INTEGER
);
CREATE INDEX status_reports_mr ON status_reports (modem, mr);

-- Persistent values for scripts (store_get / store_set); value is JSON text.
CREATE TABLE kv (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;

-- Every event the engine emitted; data is the event as JSON (with its kind).
CREATE TABLE journal (
    id    INTEGER PRIMARY KEY,
    at    TEXT NOT NULL,
    kind  TEXT NOT NULL,
    modem TEXT,
    data  TEXT NOT NULL
);
CREATE INDEX journal_at ON journal (at);
CREATE INDEX journal_kind ON journal (kind, id);

-- Both directions in one list, for people at the sqlite3 prompt.
CREATE VIEW messages AS
    SELECT 'in' AS direction, id, modem, number, text, received_at AS at,
           CASE WHEN error IS NOT NULL THEN 'undecodable'
                WHEN incomplete THEN 'incomplete'
                ELSE 'received' END AS state
      FROM inbox
    UNION ALL
    SELECT 'out', id, modem, number, text, created_at,
           CASE WHEN state = 'sent' AND delivery IS NOT NULL THEN delivery ELSE state END
      FROM outbox;
