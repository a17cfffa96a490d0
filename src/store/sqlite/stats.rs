//! What the statistics read: the tickets a period touches, each with its log.

use super::*;

/// `'a', 'b'` for kinds (closed-set names, never user text: safe to write into the SQL).
fn kind_list(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_kind(text: &str) -> Result<EventKind, StoreError> {
    EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| corrupt(format!("event kind {text:?}")))
}

pub(super) async fn stats_input(
    store: &SqliteStore,
    since: Millis,
    until: Millis,
    counted: &[EventKind],
    replayed: &[EventKind],
) -> Result<StatsInput, StoreError> {
    // The tickets: an event counted in the period; open now and created before its end; or
    // whose status changed since it began (open at some moment of it, or resolved in it).
    // Then each one's log through `events_ticket`: the unary `+` keeps SQLite from reading
    // the log through `events_kind` instead, which, the period's bounds being parameters it
    // cannot weigh, it may otherwise choose (measured: 5 s instead of 0.5 s for 40,000
    // tickets of a 1,000,000-ticket desk).
    let sql = format!(
        "WITH ids(id) AS ( \
           SELECT ticket_id FROM events WHERE kind IN ({counted}) AND at >= ?1 AND at < ?2 \
             AND ticket_id IS NOT NULL \
           UNION SELECT id FROM tickets WHERE status IN ('new', 'open', 'waiting_on_customer') \
             AND created_at < ?2 \
           UNION SELECT id FROM tickets WHERE status_since >= ?1 AND created_at < ?2) \
         SELECT t.id, t.created_at, t.follows_ticket_id, e.kind, e.actor_kind, e.actor, e.detail, e.at, t.code \
         FROM ids JOIN tickets t ON t.id = ids.id JOIN events e ON e.ticket_id = ids.id \
         WHERE +e.kind IN ({replayed}) \
         ORDER BY t.id, e.at, e.id",
        counted = kind_list(counted),
        replayed = kind_list(replayed),
    );
    let mut rows = sqlx::query(AssertSqlSafe(sql))
        .bind(since)
        .bind(until)
        .fetch(&store.pool);
    let mut tickets: Vec<TicketHistory> = Vec::new();
    use futures::TryStreamExt;
    while let Some(row) = rows.try_next().await? {
        let id: TicketId = row.try_get(0)?;
        if tickets.last().is_none_or(|t| t.id != id) {
            tickets.push(TicketHistory {
                id,
                code: row.try_get(8)?,
                created_at: row.try_get(1)?,
                follows: row.try_get(2)?,
                events: Vec::new(),
            });
        }
        let kind: &str = row.try_get(3)?;
        let event = LoggedEvent {
            kind: event_kind(kind)?,
            actor_kind: row.try_get(4)?,
            actor: row.try_get(5)?,
            detail: row.try_get(6)?,
            at: row.try_get(7)?,
        };
        if let Some(t) = tickets.last_mut() {
            t.events.push(event);
        }
    }
    drop(rows);
    let follow_ups = sqlx::query_as::<_, (TicketId, Millis)>(
        "SELECT follows_ticket_id, created_at FROM tickets \
         WHERE follows_ticket_id IS NOT NULL AND created_at >= ?1",
    )
    .bind(since)
    .fetch_all(&store.pool)
    .await?;
    Ok(StatsInput {
        tickets,
        follow_ups,
    })
}
