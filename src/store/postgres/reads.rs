//! What people read: ticket lists, one ticket in full, the dashboard's counts.

use super::*;
use crate::store::filter::{POSTGRES, bind_all, filter_sql, order_and_page};
use crate::store::rows::{BREACHED, backlog_line, corrupt, quoted_list, summary};

const SUMMARY_SELECT: &str = "SELECT t.code, t.status, t.tier, t.customer, t.customer_name, t.subject, \
     t.language, t.category, t.priority, t.assignee, t.reopen_count::bigint AS reopen_count, \
     hd_ms(t.created_at) AS created_at, hd_ms(t.updated_at) AS updated_at, \
     t.satisfaction::bigint AS satisfaction, t.satisfaction_comment, \
     hd_ms(t.first_response_at) AS first_response_at, \
     hd_ms(t.first_response_due) AS first_response_due, hd_ms(t.resolution_due) AS resolution_due, \
     hd_ms(t.sla_since) AS sla_since, t.vendor, t.vendor_ticket, \
     t.suggested_articles::text AS suggested_articles, \
     (SELECT f.code FROM tickets f WHERE f.id = t.follows_ticket_id) AS follows, \
     t.sla_fired::bigint AS sla_fired, \
     (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count, \
     (SELECT COALESCE(json_agg(p.address ORDER BY p.added_at, p.address), '[]')::text \
        FROM ticket_participants p WHERE p.ticket_id = t.id) AS participants \
     FROM tickets t";

pub(super) async fn list_tickets(
    store: &PgStore,
    filter: &TicketFilter,
) -> Result<Vec<TicketSummary>, StoreError> {
    let (filter_sql, values) = filter_sql(filter, &POSTGRES);
    let sql = format!(
        "{SUMMARY_SELECT}{filter_sql}{}",
        order_and_page(filter, &POSTGRES)
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(summary).collect()
}

pub(super) async fn count_tickets(
    store: &PgStore,
    filter: &TicketFilter,
) -> Result<i64, StoreError> {
    let (filter_sql, values) = filter_sql(filter, &POSTGRES);
    let sql = format!("SELECT COUNT(*) FROM tickets t{filter_sql}");
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
        .fetch_one(&store.pool)
        .await?;
    get(&row, "count")
}

pub(super) async fn ticket_detail(
    store: &PgStore,
    code: &ReferenceCode,
) -> Result<Option<TicketDetail>, StoreError> {
    // One snapshot: the messages and events agree with the summary.
    let mut tx = store
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let sql = format!("{SUMMARY_SELECT} WHERE t.code = $1");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(code.as_str())
        .fetch_optional(&mut *tx)
        .await?
    else {
        return Ok(None);
    };
    let summary = summary(&row)?;
    let rows = sqlx::query(
        "SELECT m.id, m.direction, m.from_addr, m.to_addrs::text AS to_addrs, m.subject, \
         m.message_id, m.body_text, m.reply_text, m.signature, m.outcome, m.outcome_detail, \
         m.from_non_participant, hd_ms(m.received_at) AS received_at, o.status AS delivery \
         FROM messages m JOIN tickets t ON t.id = m.ticket_id \
         LEFT JOIN outbox o ON o.message_row = m.id WHERE t.code = $1 ORDER BY m.id",
    )
    .bind(code.as_str())
    .fetch_all(&mut *tx)
    .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for r in rows {
        let attachments = messages::attachments(&mut tx, get(&r, "id")?).await?;
        let direction: String = get(&r, "direction")?;
        messages.push(MessageView {
            kind: if direction == "outbound" {
                get(&r, "outcome_detail")?
            } else {
                None
            },
            direction,
            from: get(&r, "from_addr")?,
            to: serde_json::from_str(&get::<String>(&r, "to_addrs")?).unwrap_or_default(),
            subject: get(&r, "subject")?,
            message_id: get(&r, "message_id")?,
            body_text: get(&r, "body_text")?,
            reply_text: get(&r, "reply_text")?,
            signature: get(&r, "signature")?,
            outcome: get(&r, "outcome")?,
            detail: get(&r, "outcome_detail")?,
            from_non_participant: get(&r, "from_non_participant")?,
            delivery: get(&r, "delivery")?,
            attachments,
            received_at: format_millis(get(&r, "received_at")?),
        });
    }
    let events = sqlx::query_as::<_, (i64, String, String, String, String)>(
        "SELECT hd_ms(e.at), e.kind, e.actor_kind, e.actor, e.detail::text FROM events e \
         JOIN tickets t ON t.id = e.ticket_id WHERE t.code = $1 ORDER BY e.at, e.id",
    )
    .bind(code.as_str())
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(at, kind, actor_kind, actor, detail)| EventView {
        at: format_millis(at),
        at_ms: at,
        kind,
        actor_kind,
        actor,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::String(detail)),
    })
    .collect();
    tx.commit().await?;
    Ok(Some(TicketDetail {
        summary,
        messages,
        events,
    }))
}

fn open_list() -> String {
    quoted_list(TicketStatus::open().map(TicketStatus::as_str))
}

fn tier(text: &str) -> Result<Tier, StoreError> {
    Tier::from_str(text).map_err(|_| corrupt(format!("tier {text:?}")))
}

pub(super) async fn overview(
    store: &PgStore,
    now: Millis,
    due_before: Millis,
) -> Result<Overview, StoreError> {
    let open = open_list();
    // One snapshot: the counts agree with each other.
    let mut tx = store
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await?;
    let backlog: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT tier, status, COUNT(*) FROM tickets WHERE status IN ({open}) \
         GROUP BY tier, status ORDER BY tier, status"
    )))
    .fetch_all(&mut *tx)
    .await?;
    let backlog = backlog
        .into_iter()
        .map(backlog_line)
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (due_soon, breached): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT \
           COUNT(*) FILTER (WHERE (first_response_due > hd_ts($1) AND first_response_due <= hd_ts($2)) \
                             OR (resolution_due > hd_ts($1) AND resolution_due <= hd_ts($2))), \
           COUNT(*) FILTER (WHERE (sla_fired & $3) != 0) \
         FROM tickets WHERE status IN ({open})"
    )))
    .bind(now)
    .bind(due_before)
    .bind(BREACHED)
    .fetch_one(&mut *tx)
    .await?;
    let oldest = sqlx::query(AssertSqlSafe(format!(
        "{SUMMARY_SELECT} WHERE t.status IN ('new', 'open') ORDER BY t.created_at, t.id LIMIT 1"
    )))
    .fetch_optional(&mut *tx)
    .await?;
    let oldest_waiting = oldest.as_ref().map(summary).transpose()?;
    let by_assignee: Vec<(Option<String>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT assignee, COUNT(*) FROM tickets WHERE status IN ({open}) \
         GROUP BY assignee ORDER BY assignee"
    )))
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Overview {
        backlog,
        due_soon,
        breached,
        oldest_waiting,
        by_assignee,
    })
}

pub(super) async fn desk_gauges(store: &PgStore) -> Result<DeskGauges, StoreError> {
    let open = open_list();
    let by_tier: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT tier, COUNT(*) FROM tickets WHERE status IN ({open}) GROUP BY tier"
    )))
    .fetch_all(&store.pool)
    .await?;
    let open_by_tier = by_tier
        .into_iter()
        .map(|(t, n)| Ok((tier(&t)?, n)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (outbox_pending, outbox_oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), hd_ms(MIN(created_at)) FROM outbox WHERE status IN ('pending', 'sending')",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(DeskGauges {
        open_by_tier,
        outbox_pending,
        outbox_oldest,
    })
}
