-- The gateway's store. Times are milliseconds since the Unix epoch (UTC), so that
-- statistics subtract integers on every backend. Enums are TEXT with a CHECK.

CREATE TABLE tickets (
    id              INTEGER PRIMARY KEY,
    code            TEXT    NOT NULL UNIQUE,
    status          TEXT    NOT NULL CHECK (status IN ('new', 'open', 'waiting_on_customer', 'resolved', 'closed')),
    tier            TEXT    NOT NULL CHECK (tier IN ('L0', 'L1', 'L2', 'L3', 'L4')),
    customer        TEXT    NOT NULL,
    customer_name   TEXT,
    subject         TEXT    NOT NULL,
    -- subject without prefixes and tags, lower-cased: the fallback threading key
    thread_key      TEXT    NOT NULL,
    language        TEXT    NOT NULL CHECK (language IN ('en', 'fr')),
    reopen_count    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    resolved_at     INTEGER
);
CREATE INDEX tickets_status ON tickets (status, created_at);
CREATE INDEX tickets_customer_thread ON tickets (customer, thread_key);

-- Every mail in or out, with its raw bytes and what became of it.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    direction       TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    outcome         TEXT    NOT NULL CHECK (outcome IN ('new_ticket', 'appended', 'duplicate', 'ignored', 'quarantined', 'outgoing')),
    -- why it was ignored or quarantined, or which message it duplicates
    outcome_detail  TEXT,
    -- where it came from, unique per source mail: 'imap:<mailbox>:<uidvalidity>:<uid>', 'maildir:<name>'
    source_key      TEXT    UNIQUE,
    message_id      TEXT,
    raw_sha256      TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    from_addr       TEXT,
    from_name       TEXT,
    reply_to        TEXT,
    to_addrs        TEXT    NOT NULL DEFAULT '[]',
    cc_addrs        TEXT    NOT NULL DEFAULT '[]',
    subject         TEXT    NOT NULL DEFAULT '',
    in_reply_to     TEXT    NOT NULL DEFAULT '[]',
    refs            TEXT    NOT NULL DEFAULT '[]',
    sent_date       INTEGER,
    body_text       TEXT    NOT NULL DEFAULT '',
    reply_text      TEXT    NOT NULL DEFAULT '',
    quoted_text     TEXT    NOT NULL DEFAULT '',
    language        TEXT,
    machine_kind    TEXT,
    received_at     INTEGER NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id, id);
CREATE INDEX messages_sha ON messages (raw_sha256);
-- A Message-ID is filed once; later copies are stored as 'duplicate' rows.
CREATE UNIQUE INDEX messages_message_id_once ON messages (message_id)
    WHERE message_id IS NOT NULL AND outcome <> 'duplicate';
CREATE INDEX messages_message_id ON messages (message_id);

CREATE TABLE attachments (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    filename        TEXT,
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    content         BLOB    NOT NULL
);
CREATE INDEX attachments_message ON attachments (message_id);

-- Mail waiting to leave. A row is 'sent' only once the server accepted it.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER NOT NULL REFERENCES messages (id),
    kind            TEXT    NOT NULL,
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

-- Where each IMAP mailbox was read up to.
CREATE TABLE mailbox_checkpoints (
    mailbox         TEXT    PRIMARY KEY,
    uid_validity    INTEGER NOT NULL,
    last_uid        INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- What happened to tickets, by whom, when: statistics are computed from here.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER REFERENCES messages (id),
    kind            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, at);
CREATE INDEX events_kind ON events (kind, at);
