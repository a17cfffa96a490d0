//! Tickets as plans write them, and the event log.

use super::*;

pub(super) async fn insert_ticket(tx: &mut PgTx, t: NewTicket<'_>) -> Result<TicketId, StoreError> {
    // ON CONFLICT keeps a code collision from aborting the surrounding transaction.
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO tickets (code, status, tier, category, priority, customer, customer_name, \
         subject, thread_key, language, follows_ticket_id, suggested_articles, created_at, \
         updated_at, status_since, sla_since) \
         VALUES ($1, 'new', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, hd_ts($12), \
         hd_ts($12), hd_ts($12), hd_ts($12)) ON CONFLICT (code) DO NOTHING RETURNING id",
    )
    .bind(t.code.as_str())
    .bind(t.tier.as_str())
    .bind(t.category.as_str())
    .bind(t.priority.as_str())
    .bind(t.customer.as_str())
    .bind(no_nul(t.customer_name))
    .bind(no_nul(Some(t.subject)))
    .bind(no_nul(Some(t.thread_key)))
    .bind(t.language.as_str())
    .bind(t.follows)
    .bind(jsonb_list(t.suggested_articles))
    .bind(t.at)
    .fetch_optional(&mut *tx.tx)
    .await?;
    match row {
        Some((id,)) => Ok(id),
        None => Err(StoreError::CodeTaken(t.code.to_string())),
    }
}

/// Sets one text column of a ticket (a closed set of names, never user text), and its
/// `updated_at` when `at` is given.
pub(super) async fn set_text(
    tx: &mut PgTx,
    id: TicketId,
    column: &'static str,
    value: &str,
    at: Option<Millis>,
) -> Result<(), StoreError> {
    let sql = match at {
        Some(_) => {
            format!("UPDATE tickets SET {column} = $1, updated_at = hd_ts($3) WHERE id = $2")
        }
        None => format!("UPDATE tickets SET {column} = $1 WHERE id = $2"),
    };
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(value).bind(id);
    if let Some(at) = at {
        query = query.bind(at);
    }
    query.execute(&mut *tx.tx).await?;
    Ok(())
}

pub(super) async fn set_timing(
    tx: &mut PgTx,
    id: TicketId,
    timing: &Timing,
) -> Result<(), StoreError> {
    let c = &timing.clock;
    sqlx::query(
        "UPDATE tickets SET status_since = hd_ts($1), first_response_at = hd_ts($2), \
         sla_used_ms = $3, sla_since = hd_ts($4), sla_fired = $5, wait_ms = $6, \
         reminded_at = hd_ts($7), vendor_asked_at = hd_ts($8), hold_until = hd_ts($9), \
         hold_tier = $10, first_response_due = hd_ts($11), resolution_due = hd_ts($12), \
         due_at = hd_ts($13), timer_owner = NULL, timer_lease_until = NULL WHERE id = $14",
    )
    .bind(c.status_since)
    .bind(c.first_response_at)
    .bind(c.sla_used_ms)
    .bind(c.sla_since)
    .bind(i32::from(c.fired.0))
    .bind(c.wait_ms)
    .bind(c.reminded_at)
    .bind(c.vendor_asked_at)
    .bind(c.self_service.map(|h| h.until))
    .bind(c.self_service.map(|h| h.then.as_str()))
    .bind(timing.dues.first_response)
    .bind(timing.dues.resolution)
    .bind(timing.due_at)
    .bind(id)
    .execute(&mut *tx.tx)
    .await?;
    // The schedulers of the other gateways sleep until the earliest due time they read:
    // they are told of this one (sent at commit; the same due time once per transaction).
    if let Some(due) = timing.due_at {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(TIMERS_CHANNEL)
            .bind(due.to_string())
            .execute(&mut *tx.tx)
            .await?;
    }
    Ok(())
}

/// Appends events in order, in one statement (arrays unnested in order).
pub(super) async fn insert_events(
    tx: &mut PgTx,
    events: &[NewEvent<'_>],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tickets = Vec::with_capacity(events.len());
    let mut messages = Vec::with_capacity(events.len());
    let mut kinds = Vec::with_capacity(events.len());
    let mut actor_kinds = Vec::with_capacity(events.len());
    let mut actors = Vec::with_capacity(events.len());
    let mut details = Vec::with_capacity(events.len());
    let mut ats = Vec::with_capacity(events.len());
    for e in events {
        tickets.push(e.ticket);
        messages.push(e.message);
        kinds.push(e.kind.as_str());
        actor_kinds.push(e.actor.kind());
        actors.push(e.actor.name().to_string());
        details.push(jsonb_text(e.detail.to_string()));
        ats.push(e.at);
    }
    sqlx::query(
        "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
         SELECT t, m, k, ak, a, d::jsonb, hd_ts(at) FROM unnest($1::bigint[], $2::bigint[], \
         $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[]) \
         WITH ORDINALITY AS e(t, m, k, ak, a, d, at, n) ORDER BY n",
    )
    .bind(tickets)
    .bind(messages)
    .bind(kinds)
    .bind(actor_kinds)
    .bind(actors)
    .bind(details)
    .bind(ats)
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}
