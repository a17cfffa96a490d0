-- Spine repairs: what makes a duplicate, who takes part in a ticket, IMAP copies made,
-- and who holds an outbox lease.

-- A duplicate is the same mail delivered again: same Message-ID *and* same content
-- (sender, subject, body text). A different mail reusing a Message-ID is filed on its own.
-- Rows stored before this column existed have NULL and are compared column by column.
ALTER TABLE messages ADD COLUMN content_sha256 TEXT;
DROP INDEX messages_message_id_once;
CREATE UNIQUE INDEX messages_message_id_content_once ON messages (message_id, content_sha256)
    WHERE message_id IS NOT NULL AND content_sha256 IS NOT NULL AND outcome <> 'duplicate';

-- Set when an inbound mail threaded onto a ticket comes from someone who is not one of
-- its participants (a stranger quoting a valid code).
ALTER TABLE messages ADD COLUMN from_non_participant INTEGER NOT NULL DEFAULT 0
    CHECK (from_non_participant IN (0, 1));

-- The customer and the addresses the customer had in Cc on the first mail.
CREATE TABLE ticket_participants (
    ticket_id       INTEGER NOT NULL REFERENCES tickets (id),
    address         TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('customer', 'cc')),
    added_at        INTEGER NOT NULL,
    PRIMARY KEY (ticket_id, address)
);
-- Tickets filed before participants were kept: their customer, the Reply-To and the Cc of
-- the mail that opened them.
INSERT OR IGNORE INTO ticket_participants (ticket_id, address, role, added_at)
    SELECT id, customer, 'customer', created_at FROM tickets;
INSERT OR IGNORE INTO ticket_participants (ticket_id, address, role, added_at)
    SELECT m.ticket_id, lower(m.reply_to), 'customer', m.received_at
    FROM messages m WHERE m.outcome = 'new_ticket' AND m.reply_to IS NOT NULL;
INSERT OR IGNORE INTO ticket_participants (ticket_id, address, role, added_at)
    SELECT m.ticket_id, lower(cc.value), 'cc', m.received_at
    FROM messages m, json_each(m.cc_addrs) cc WHERE m.outcome = 'new_ticket';

-- Source mails already copied to their folder on a server without MOVE, so a mail whose
-- \Deleted flag another client wiped is expunged again rather than copied twice.
CREATE TABLE imap_copies (
    source_key      TEXT    PRIMARY KEY,
    folder          TEXT    NOT NULL,
    copied_at       INTEGER NOT NULL
);

-- Which worker holds a 'sending' row: only the holder renews its lease.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
