//! What people read: ticket lists with their filters, and one ticket in full (thread, events).

use super::*;

pub(super) fn summary(row: &SqliteRow) -> Result<TicketSummary, StoreError> {
    let participants: String = row.try_get("participants")?;
    Ok(TicketSummary {
        code: row.try_get("code")?,
        status: parsed(row, "status")?,
        tier: parsed(row, "tier")?,
        customer: row.try_get("customer")?,
        customer_name: row.try_get("customer_name")?,
        subject: row.try_get("subject")?,
        language: parsed(row, "language")?,
        category: parsed(row, "category")?,
        priority: parsed(row, "priority")?,
        assignee: row.try_get("assignee")?,
        participants: serde_json::from_str(&participants).map_err(corrupt)?,
        messages: row.try_get("message_count")?,
        reopen_count: row.try_get("reopen_count")?,
        satisfaction: row.try_get("satisfaction")?,
        satisfaction_comment: row.try_get("satisfaction_comment")?,
        first_response_at: row
            .try_get::<Option<i64>, _>("first_response_at")?
            .map(format_millis),
        created_at: format_millis(row.try_get("created_at")?),
        updated_at: format_millis(row.try_get("updated_at")?),
        sla: SlaView {
            first_response_due: row
                .try_get::<Option<i64>, _>("first_response_due")?
                .map(format_millis),
            resolution_due: row
                .try_get::<Option<i64>, _>("resolution_due")?
                .map(format_millis),
            first_response_at: row
                .try_get::<Option<i64>, _>("first_response_at")?
                .map(format_millis),
            breached: {
                // The breach bits are set with the `sla_breached` event, and never cleared.
                let fired =
                    crate::domain::Fired(row.try_get::<i64, _>("sla_fired")?.clamp(0, 255) as u8);
                [
                    (
                        crate::domain::Fired::FIRST_RESPONSE_BREACH,
                        "first_response",
                    ),
                    (crate::domain::Fired::RESOLUTION_BREACH, "resolution"),
                ]
                .into_iter()
                .filter(|(bit, _)| fired.has(*bit))
                .map(|(_, target)| target.to_string())
                .collect()
            },
            paused: row.try_get::<Option<i64>, _>("sla_since")?.is_none(),
        },
        follows: row.try_get("follows")?,
        vendor: row.try_get("vendor")?,
        vendor_ticket: row.try_get("vendor_ticket")?,
        suggested_articles: serde_json::from_str(&row.try_get::<String, _>("suggested_articles")?)
            .map_err(corrupt)?,
    })
}

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

pub(super) async fn list_tickets(
    store: &SqliteStore,
    filter: &TicketFilter,
) -> Result<Vec<TicketSummary>, StoreError> {
    let mut conditions = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if let Some(st) = filter.status {
        conditions.push("t.status = ?");
        values.push(st.as_str().into());
    }
    let open_statuses = format!(
        "t.status IN ({})",
        placeholders(TicketStatus::open().count())
    );
    if filter.open_only {
        conditions.push(&open_statuses);
        values.extend(TicketStatus::open().map(|s| s.as_str().to_string()));
    }
    if let Some(tier) = filter.tier {
        conditions.push("t.tier = ?");
        values.push(tier.as_str().into());
    }
    if let Some(a) = &filter.assignee {
        conditions.push("t.assignee = ?");
        values.push(a.to_string());
    }
    if let Some(c) = &filter.category {
        conditions.push("t.category = ?");
        values.push(c.to_string());
    }
    if let Some(p) = filter.priority {
        conditions.push("t.priority = ?");
        values.push(p.as_str().into());
    }
    if let Some(at) = filter.due_before {
        conditions.push(
                "(t.first_response_due <= CAST(? AS INTEGER) OR t.resolution_due <= CAST(? AS INTEGER))",
            );
        values.push(at.to_string());
        values.push(at.to_string());
    }
    if filter.breached {
        conditions.push(
            "EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.id AND e.kind = 'sla_breached')",
        );
    }
    let filter_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let sql = format!("{SUMMARY_SELECT}{filter_sql} ORDER BY t.created_at, t.id");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for v in values {
        query = query.bind(v);
    }
    let rows = query.fetch_all(&store.pool).await?;
    rows.iter().map(summary).collect()
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
