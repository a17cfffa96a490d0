-- Tiers, routing and agents: what a ticket is about, how urgent it is, who has it, and an
-- event log whose kinds and actors are closed sets.

ALTER TABLE tickets ADD COLUMN category TEXT NOT NULL DEFAULT 'general';
ALTER TABLE tickets ADD COLUMN priority TEXT NOT NULL DEFAULT 'normal'
    CHECK (priority IN ('low', 'normal', 'high', 'urgent'));
-- The agent's address; NULL while nobody on the roster has the ticket.
ALTER TABLE tickets ADD COLUMN assignee TEXT;
ALTER TABLE tickets ADD COLUMN assigned_at INTEGER;
CREATE INDEX tickets_assignee ON tickets (assignee, status);
CREATE INDEX tickets_tier ON tickets (tier, status);

-- Events get CHECKed kinds and an actor kind beside the actor's address or name.
CREATE TABLE events_new (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    message_row     INTEGER REFERENCES messages (id),
    kind            TEXT    NOT NULL CHECK (kind IN (
                        'created', 'routed', 'message_received', 'status_changed', 'reopened',
                        'assigned', 'unassigned', 'escalated', 'mail_queued', 'mail_not_rendered',
                        'mail_sent', 'mail_failed',
                        'quarantined', 'message_id_collision')),
    actor_kind      TEXT    NOT NULL CHECK (actor_kind IN (
                        'customer', 'participant', 'stranger', 'agent', 'machine', 'gateway', 'cli')),
    actor           TEXT    NOT NULL,
    detail          TEXT    NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL
);
INSERT INTO events_new (id, ticket_id, message_row, kind, actor_kind, actor, detail, at)
    SELECT id, ticket_id, message_row,
           CASE kind WHEN 'acknowledgement_queued' THEN 'mail_queued' ELSE kind END,
           CASE WHEN actor = 'gateway' THEN 'gateway'
                WHEN actor = 'unknown' THEN 'machine'
                ELSE 'customer' END,
           actor,
           CASE kind WHEN 'acknowledgement_queued' THEN json_set(detail, '$.kind', 'acknowledgement')
                ELSE detail END,
           at
    FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_ticket ON events (ticket_id, at);
CREATE INDEX events_kind ON events (kind, at);
