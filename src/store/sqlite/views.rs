//! What people read: ticket lists with their filters, and one ticket in full (thread, events).

use super::*;

pub(super) use crate::store::rows::summary;

pub(super) const SUMMARY_SELECT: &str = "SELECT t.code, t.status, t.tier, t.customer, t.customer_name, t.subject, t.language, \
     t.category, t.priority, t.assignee, t.reopen_count, t.created_at, t.updated_at, \
     t.satisfaction, t.satisfaction_comment, t.first_response_at, \
     t.first_response_due, t.resolution_due, t.sla_since, t.vendor, t.vendor_ticket, t.suggested_articles, \
     (SELECT f.code FROM tickets f WHERE f.id = t.follows_ticket_id) AS follows, \
     t.sla_fired, \
     (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count, \
     (SELECT json_group_array(address) FROM (SELECT address FROM ticket_participants p \
        WHERE p.ticket_id = t.id ORDER BY p.added_at, p.address)) AS participants \
     FROM tickets t";

use crate::store::filter::{Bind, SQLITE, bind_all, order_and_page};

fn filter_sql(filter: &TicketFilter) -> (String, Vec<Bind>) {
    crate::store::filter::filter_sql(filter, &SQLITE)
}

pub(super) async fn list_tickets(
    store: &SqliteStore,
    filter: &TicketFilter,
) -> Result<Vec<TicketSummary>, StoreError> {
    let (filter_sql, values) = filter_sql(filter);
    let sql = format!(
        "{SUMMARY_SELECT}{filter_sql}{}",
        order_and_page(filter, &SQLITE)
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
        .fetch_all(&store.pool)
        .await?;
    rows.iter().map(summary).collect()
}

pub(super) async fn count_tickets(
    store: &SqliteStore,
    filter: &TicketFilter,
) -> Result<i64, StoreError> {
    let (filter_sql, values) = filter_sql(filter);
    let sql = format!("SELECT COUNT(*) FROM tickets t{filter_sql}");
    let row = bind_all(sqlx::query(AssertSqlSafe(sql)), values)
        .fetch_one(&store.pool)
        .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn ticket_detail(
    store: &SqliteStore,
    code: &ReferenceCode,
) -> Result<Option<TicketDetail>, StoreError> {
    let sql = format!("{SUMMARY_SELECT} WHERE t.code = ?");
    let Some(row) = sqlx::query(AssertSqlSafe(sql))
        .bind(code.as_str())
        .fetch_optional(&store.pool)
        .await?
    else {
        return Ok(None);
    };
    let summary = summary(&row)?;
    let rows = sqlx::query(
            "SELECT m.id, m.direction, m.from_addr, m.to_addrs, m.subject, m.message_id, m.body_text, m.reply_text, m.signature, \
             m.outcome, m.outcome_detail, m.from_non_participant, m.received_at, o.status AS delivery \
             FROM messages m JOIN tickets t ON t.id = m.ticket_id LEFT JOIN outbox o ON o.message_row = m.id \
             WHERE t.code = ? ORDER BY m.id",
        )
        .bind(code.as_str())
        .fetch_all(&store.pool)
        .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.try_get("id")?;
        let attachments = sqlx::query_as::<_, (Option<String>, String, i64)>(
            "SELECT filename, content_type, size FROM attachments WHERE message_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&store.pool)
        .await?
        .into_iter()
        .map(|(filename, content_type, size)| AttachmentView {
            filename,
            content_type,
            size,
        })
        .collect();
        let to: String = r.try_get("to_addrs")?;
        let direction: String = r.try_get("direction")?;
        messages.push(MessageView {
            kind: if direction == "outbound" {
                r.try_get("outcome_detail")?
            } else {
                None
            },
            direction,
            from: r.try_get("from_addr")?,
            to: serde_json::from_str(&to).unwrap_or_default(),
            subject: r.try_get("subject")?,
            message_id: r.try_get("message_id")?,
            body_text: r.try_get("body_text")?,
            reply_text: r.try_get("reply_text")?,
            signature: r.try_get("signature")?,
            outcome: r.try_get("outcome")?,
            detail: r.try_get("outcome_detail")?,
            from_non_participant: r.try_get("from_non_participant")?,
            delivery: r.try_get("delivery")?,
            attachments,
            received_at: format_millis(r.try_get("received_at")?),
        });
    }
    let events = sqlx::query_as::<_, (i64, String, String, String, String)>(
        "SELECT e.at, e.kind, e.actor_kind, e.actor, e.detail FROM events e \
             JOIN tickets t ON t.id = e.ticket_id WHERE t.code = ? ORDER BY e.at, e.id",
    )
    .bind(code.as_str())
    .fetch_all(&store.pool)
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
    Ok(Some(TicketDetail {
        summary,
        messages,
        events,
    }))
}
