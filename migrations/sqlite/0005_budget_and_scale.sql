-- Held mail is deferred, not dropped. An automatic mail to an outside address whose budget is
-- spent is kept as 'held' and sent once the budget allows, unless its ticket moved on or its
-- recipient answered the mail released to them before at once (a loop): 'superseded'. Mail to the desk's own people is never budgeted, but while one outside
-- sender floods the desk, what it would tell them about that sender's mail is held
-- ('held_for' names the sender) and replaced by one digest.
CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER NOT NULL REFERENCES messages (id),
    kind            TEXT    NOT NULL,
    mail_from       TEXT    NOT NULL,
    rcpt_to         TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (
                        status = 'pending' OR status = 'sending' OR status = 'sent'
                        OR status = 'failed' OR status = 'held' OR status = 'superseded'),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    lease_owner     TEXT,
    -- For mail held while its sender floods the desk: that sender.
    held_for        TEXT,
    -- The ticket's status when the mail was held: another one now means it moved on.
    held_status     TEXT,
    -- When a held mail was let go: a recipient who answers it at once is a machine that
    -- answers everything, and the rest of their held mail is superseded (the loop ends).
    released_at     INTEGER
);
INSERT INTO outbox_new (id, ticket_id, message_row, kind, mail_from, rcpt_to, status, attempts,
                        next_attempt_at, lease_until, last_error, created_at, sent_at, lease_owner)
    SELECT id, ticket_id, message_row, kind, mail_from, rcpt_to, status, attempts,
           next_attempt_at, lease_until, last_error, created_at, sent_at, lease_owner FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
-- The budget counts an address's mail that went or goes out, from the index alone.
CREATE INDEX outbox_recipient ON outbox (rcpt_to, created_at, kind)
    WHERE status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'failed';
CREATE INDEX outbox_held ON outbox (rcpt_to, id) WHERE status = 'held';
CREATE INDEX outbox_released ON outbox (rcpt_to, released_at) WHERE released_at IS NOT NULL;

-- How much one sender wrote in the last hour (a flood), from the index alone.
CREATE INDEX messages_sender ON messages (from_addr, received_at) WHERE direction = 'inbound';

-- New event kinds: held mail released, superseded, or summed up in a digest.
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
                        OR kind = 'vendor_replied' OR kind = 'vendor_silent'
                        OR kind = 'mail_released' OR kind = 'mail_superseded'
                        OR kind = 'mail_digested'),
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

-- Each assignee's open tickets and last assignment, kept by the writer of plans as it
-- changes a ticket's assignee or status: choosing whom a ticket goes to reads them for the
-- roster at every assignment, which must not cost a count over every ticket of the desk.
CREATE TABLE agent_loads (
    assignee         TEXT    PRIMARY KEY,
    open_tickets     INTEGER NOT NULL,
    last_assigned_at INTEGER
);
INSERT INTO agent_loads (assignee, open_tickets, last_assigned_at)
    SELECT assignee,
           SUM(CASE WHEN status = 'resolved' OR status = 'closed' THEN 0 ELSE 1 END),
           MAX(assigned_at)
    FROM tickets WHERE assignee IS NOT NULL GROUP BY assignee;
