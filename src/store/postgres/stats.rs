//! What the statistics read: the tickets a period touches, each with its log, read in one
//! snapshot and handed over in batches while the next is read.

use super::*;
use crate::store::rows::{actor_kind, event_kind, quoted_list};

/// Tickets handed over at a time, and read per query.
const BATCH: usize = 512;

type FollowUps = tokio::sync::oneshot::Sender<Result<Vec<(TicketId, Millis)>, StoreError>>;
type Tickets = tokio::sync::mpsc::Sender<Result<Vec<TicketHistory>, StoreError>>;

pub(super) async fn stats_input(
    store: &PgStore,
    since: Millis,
    until: Millis,
    counted: &[EventKind],
    replayed: &[EventKind],
) -> Result<StatsInput, StoreError> {
    let counted = quoted_list(counted.iter().map(|k| k.as_str()));
    let replayed = replayed.to_vec();
    let (follow_ups_tx, follow_ups) = tokio::sync::oneshot::channel();
    let (tickets_tx, tickets) = tokio::sync::mpsc::channel(4);
    let pool = store.pool.clone();
    tokio::spawn(async move {
        let read = read(
            &pool,
            since,
            until,
            &counted,
            &replayed,
            follow_ups_tx,
            &tickets_tx,
        );
        if let Err(e) = read.await {
            // The reader went: nobody to tell.
            let _ = tickets_tx.send(Err(e)).await;
        }
    });
    let follow_ups = follow_ups
        .await
        .map_err(|_| StoreError::Corrupt("the statistics' read stopped".into()))??;
    Ok(StatsInput {
        follow_ups,
        tickets,
    })
}

async fn read(
    pool: &PgPool,
    since: Millis,
    until: Millis,
    counted: &str,
    replayed: &[EventKind],
    follow_ups: FollowUps,
    tickets: &Tickets,
) -> Result<(), StoreError> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let found: Result<Vec<(TicketId, Millis)>, StoreError> = sqlx::query_as(
        "SELECT follows_ticket_id, hd_ms(created_at) FROM tickets \
         WHERE follows_ticket_id IS NOT NULL AND created_at >= hd_ts($1)",
    )
    .bind(since)
    .fetch_all(&mut *tx)
    .await
    .map_err(StoreError::from);
    let failed = found.is_err();
    let _ = follow_ups.send(found);
    if failed {
        return Ok(());
    }
    // The same tickets as on SQLite (see its reader for why these three).
    let heads: Vec<(i64, i64, Option<i64>, String)> = sqlx::query_as(AssertSqlSafe(format!(
        "WITH ids(id) AS ( \
           SELECT ticket_id FROM events WHERE kind IN ({counted}) AND at >= hd_ts($1) \
             AND at < hd_ts($2) AND ticket_id IS NOT NULL \
           UNION SELECT id FROM tickets WHERE status IN ('new', 'open', 'waiting_on_customer') \
             AND created_at < hd_ts($2) \
           UNION SELECT id FROM tickets WHERE status_since >= hd_ts($1) AND created_at < hd_ts($2)) \
         SELECT t.id, hd_ms(t.created_at), t.follows_ticket_id, t.code FROM ids \
         JOIN tickets t ON t.id = ids.id ORDER BY t.id"
    )))
    .bind(since)
    .bind(until)
    .fetch_all(&mut *tx)
    .await?;
    let kinds: Vec<String> = replayed.iter().map(|k| k.as_str().to_string()).collect();
    for chunk in heads.chunks(BATCH) {
        let ids: Vec<i64> = chunk.iter().map(|h| h.0).collect();
        let mut batch: Vec<TicketHistory> = chunk
            .iter()
            .map(|(id, created_at, follows, code)| TicketHistory {
                id: *id,
                code: code.clone(),
                details: String::new(),
                created_at: *created_at,
                follows: *follows,
                events: Vec::new(),
            })
            .collect();
        let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let rows: Vec<(i64, String, String, String, String, i64)> = sqlx::query_as(
            "SELECT ticket_id, kind, actor_kind, actor, detail::text, hd_ms(at) FROM events \
             WHERE ticket_id = ANY($1) AND kind = ANY($2) ORDER BY ticket_id, at, id",
        )
        .bind(&ids)
        .bind(&kinds)
        .fetch_all(&mut *tx)
        .await?;
        for (ticket, kind, actor_kind_text, actor, detail, at) in rows {
            let Some(ticket) = index.get(&ticket).and_then(|i| batch.get_mut(*i)) else {
                continue;
            };
            let kind = event_kind(&kind)?;
            let start = ticket.details.len();
            ticket.details.push_str(&detail);
            ticket.events.push(LoggedEvent {
                kind,
                actor_kind: actor_kind(&actor_kind_text)?,
                // Only a reply's author is read (the agent a first response counts for).
                actor: if kind == EventKind::AgentReplied {
                    actor
                } else {
                    String::new()
                },
                detail: start..ticket.details.len(),
                at,
            });
        }
        if tickets.send(Ok(batch)).await.is_err() {
            return Ok(());
        }
    }
    tx.commit().await?;
    Ok(())
}
