-- Time: service levels counted in business hours, reminders, automatic closing, vendors.
--
-- A ticket carries its own clock (business time used so far, and since when it runs) and
-- the moment its next timed work falls due (`due_at`, NULL when nothing is pending). The
-- scheduler claims due tickets with a lease, like the outbox, so a restart or a second
-- gateway never runs the same work twice.

-- Business milliseconds the service-level clock ran before `sla_since`.
ALTER TABLE tickets ADD COLUMN sla_used_ms INTEGER NOT NULL DEFAULT 0;
-- When the clock last started; NULL while it stands (waiting on the customer, resolved).
ALTER TABLE tickets ADD COLUMN sla_since INTEGER;
-- Which warnings and breaches were already acted on (bits: 1 first-response warning,
-- 2 first-response breach, 4 resolution warning, 8 resolution breach, 16 vendor silence).
ALTER TABLE tickets ADD COLUMN sla_fired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tickets ADD COLUMN first_response_due INTEGER;
ALTER TABLE tickets ADD COLUMN resolution_due INTEGER;
-- When the status last changed (waiting and resolved periods count from it).
ALTER TABLE tickets ADD COLUMN status_since INTEGER;
-- How long the ticket waits on the customer (`#wait 3d`); NULL: the desk's default.
ALTER TABLE tickets ADD COLUMN wait_ms INTEGER;
-- When the customer was reminded during this wait.
ALTER TABLE tickets ADD COLUMN reminded_at INTEGER;
-- The next timed work, and who holds it.
ALTER TABLE tickets ADD COLUMN due_at INTEGER;
ALTER TABLE tickets ADD COLUMN timer_owner TEXT;
ALTER TABLE tickets ADD COLUMN timer_lease_until INTEGER;
-- A customer's reply to a closed ticket opens a new one that follows it.
ALTER TABLE tickets ADD COLUMN follows_ticket_id INTEGER REFERENCES tickets (id);
-- L4: the vendor a ticket was sent to, their own ticket number, and when we last asked.
ALTER TABLE tickets ADD COLUMN vendor TEXT;
ALTER TABLE tickets ADD COLUMN vendor_ticket TEXT;
ALTER TABLE tickets ADD COLUMN vendor_asked_at INTEGER;

-- Tickets filed before had no targets: their clocks, waits and quiet times start now, and
-- the scheduler's first pass computes their timers (due now), so an upgrade never escalates
-- or reminds a backlog of old tickets all at once.
UPDATE tickets SET status_since = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
UPDATE tickets SET sla_since = status_since WHERE status = 'new' OR status = 'open';
UPDATE tickets SET due_at = status_since
    WHERE status = 'new' OR status = 'open' OR status = 'waiting_on_customer'
       OR status = 'resolved';

CREATE INDEX tickets_due ON tickets (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX tickets_vendor_ticket ON tickets (vendor, vendor_ticket)
    WHERE vendor_ticket IS NOT NULL;

-- The automatic mail budget counts an address's recent mail from the index alone.
DROP INDEX outbox_recipient;
CREATE INDEX outbox_recipient ON outbox (rcpt_to, created_at, kind);

-- Attachments are kept as a range of the raw mail (and its transfer encoding) whenever that
-- range decodes to exactly the attachment: the raw mail already holds those bytes. The
-- decoded copy stays for the others (text the parser converted, damaged bodies) and for
-- attachments filed before.
CREATE TABLE attachments_new (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages (id),
    filename        TEXT,
    content_type    TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    content         BLOB,
    body_start      INTEGER,
    body_end        INTEGER,
    body_encoding   TEXT CHECK (body_encoding IS NULL OR body_encoding = 'identity'
                                OR body_encoding = 'base64' OR body_encoding = 'quoted-printable'),
    CHECK (content IS NOT NULL
           OR (body_start IS NOT NULL AND body_end IS NOT NULL AND body_encoding IS NOT NULL))
);
INSERT INTO attachments_new (id, message_id, filename, content_type, size, content)
    SELECT id, message_id, filename, content_type, size, content FROM attachments;
DROP TABLE attachments;
ALTER TABLE attachments_new RENAME TO attachments;
CREATE INDEX attachments_message ON attachments (message_id);

-- New event kinds: the timers' and the vendors'.
CREATE TABLE events_new (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER REFERENCES messages (id),
    kind            TEXT    NOT NULL CHECK (
                        kind = 'created' OR kind = 'routed' OR kind = 'message_received'
                        OR kind = 'status_changed' OR kind = 'reopened' OR kind = 'assigned'
                        OR kind = 'unassigned' OR kind = 'escalated' OR kind = 'mail_queued'
                        OR kind = 'mail_not_rendered' OR kind = 'mail_sent' OR kind = 'mail_failed'
                        OR kind = 'quarantined' OR kind = 'message_id_collision'
                        OR kind = 'priority_changed' OR kind = 'category_changed'
                        OR kind = 'participant_added' OR kind = 'agent_replied'
                        OR kind = 'note_added' OR kind = 'commands_refused'
                        OR kind = 'rated' OR kind = 'mail_held'
                        OR kind = 'sla_warned' OR kind = 'sla_breached' OR kind = 'reminded'
                        OR kind = 'follows' OR kind = 'vendor_forwarded'
                        OR kind = 'vendor_replied' OR kind = 'vendor_silent'),
    actor_kind      TEXT    NOT NULL CHECK (
                        actor_kind = 'customer' OR actor_kind = 'participant'
                        OR actor_kind = 'stranger' OR actor_kind = 'agent' OR actor_kind = 'machine'
                        OR actor_kind = 'gateway' OR actor_kind = 'cli' OR actor_kind = 'vendor'
                        OR actor_kind = 'timer'),
    actor           TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL
);
INSERT INTO events_new (id, ticket_id, message_row, kind, actor_kind, actor, detail, at)
    SELECT id, ticket_id, message_row, kind, actor_kind, actor, detail, at FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_ticket ON events (ticket_id, at);
CREATE INDEX events_kind ON events (kind, at);
