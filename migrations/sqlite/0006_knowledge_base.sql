-- The knowledge base (L0). A new ticket records the articles its acknowledgement carried
-- (ids, as a JSON array: `tickets show --json` and the statistics read them), and a ticket
-- held at L0 for self-service keeps when the hold ends and the tier it then goes to.
ALTER TABLE tickets ADD COLUMN suggested_articles TEXT NOT NULL DEFAULT '[]';
ALTER TABLE tickets ADD COLUMN hold_until INTEGER;
ALTER TABLE tickets ADD COLUMN hold_tier TEXT CHECK (hold_tier IN ('L1', 'L2', 'L3', 'L4'));

-- New event kinds: articles suggested to the customer, and the end of a self-service hold.
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
                        OR kind = 'mail_digested' OR kind = 'articles_suggested'
                        OR kind = 'self_service_ended'),
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
