-- Erasures of a person's data (`helpdesk customers forget`, GDPR article 17) and the
-- retention purges (`[retention]`, article 5(1)(e)): when, by whom, why and how many rows,
-- never whose data.
CREATE TABLE erasures (
    id           INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    by_actor     TEXT    NOT NULL,
    reason       TEXT    NOT NULL CHECK (reason = 'request' OR reason = 'retention_raw_mail'
                                         OR reason = 'retention_closed_tickets'),
    tickets      INTEGER NOT NULL DEFAULT 0,
    messages     INTEGER NOT NULL DEFAULT 0,
    attachments  INTEGER NOT NULL DEFAULT 0,
    outbox       INTEGER NOT NULL DEFAULT 0,
    events       INTEGER NOT NULL DEFAULT 0,
    participants INTEGER NOT NULL DEFAULT 0,
    mentions     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_received_at ON messages (received_at);
