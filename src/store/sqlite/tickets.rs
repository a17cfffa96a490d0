//! Tickets and what moves them: lookups by code, Message-ID, subject and vendor ticket, the writes a plan makes, the participants, the agents' loads, and the event log.

use super::*;

pub(super) async fn agent_loads_now(
    store: &SqliteStore,
    agents: &[EmailAddress],
) -> Result<HashMap<EmailAddress, Load>, StoreError> {
    let mut conn = store.pool.acquire().await?;
    super::agent_loads(&mut conn, agents).await
}

pub(super) async fn add_participant(
    tx: &mut SqliteTx,
    ticket: TicketId,
    address: &EmailAddress,
    role: ParticipantRole,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "INSERT INTO ticket_participants (ticket_id, address, role, added_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (ticket_id, address) DO NOTHING",
            )
            .bind(ticket)
            .bind(address.as_str())
            .bind(role.as_str())
            .bind(at),
        )
        .await
}

pub(super) async fn is_participant(
    tx: &mut SqliteTx,
    ticket: TicketId,
    address: &EmailAddress,
) -> Result<bool, StoreError> {
    let row = tx
        .row(
            Stmt::new("SELECT 1 FROM ticket_participants WHERE ticket_id = ? AND address = ?")
                .bind(ticket)
                .bind(address.as_str()),
        )
        .await?;
    Ok(row.is_some())
}

pub(super) async fn ticket_by_code(
    tx: &mut SqliteTx,
    code: &ReferenceCode,
) -> Result<Option<TicketRef>, StoreError> {
    let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.code = ?");
    let row = tx.row(Stmt::new(sql).bind(code.as_str())).await?;
    row.as_ref().map(ticket_ref).transpose()
}

pub(super) async fn ticket_by_id(
    tx: &mut SqliteTx,
    id: TicketId,
) -> Result<Option<TicketRef>, StoreError> {
    let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id = ?");
    let row = tx.row(Stmt::new(sql).bind(id)).await?;
    row.as_ref().map(ticket_ref).transpose()
}

pub(super) async fn ticket_by_message_ids(
    tx: &mut SqliteTx,
    ids: &[String],
) -> Result<Option<TicketRef>, StoreError> {
    if ids.is_empty() {
        return Ok(None);
    }
    let placeholders = vec!["?"; ids.len()].join(", ");
    let sql = format!(
        "SELECT {TICKET_REF_COLUMNS} FROM messages m JOIN tickets t ON t.id = m.ticket_id \
             WHERE m.message_id IN ({placeholders}) ORDER BY m.id DESC LIMIT 1"
    );
    let mut stmt = Stmt::new(sql);
    for id in ids {
        stmt = stmt.bind(id.as_str());
    }
    let row = tx.row(stmt).await?;
    row.as_ref().map(ticket_ref).transpose()
}

pub(super) async fn ticket_by_thread_key(
    tx: &mut SqliteTx,
    customer: &EmailAddress,
    key: &str,
    since: Millis,
) -> Result<Option<TicketRef>, StoreError> {
    let joinable: Vec<&str> = TicketStatus::ALL
        .into_iter()
        .filter(|s| s.joins_by_subject())
        .map(TicketStatus::as_str)
        .collect();
    let sql = format!(
        "SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.customer = ? AND t.thread_key = ? \
             AND t.updated_at >= ? AND t.status IN ({}) ORDER BY t.updated_at DESC LIMIT 1",
        placeholders(joinable.len())
    );
    let mut stmt = Stmt::new(sql).bind(customer.as_str()).bind(key).bind(since);
    for status in joinable {
        stmt = stmt.bind(status);
    }
    let row = tx.row(stmt).await?;
    row.as_ref().map(ticket_ref).transpose()
}

pub(super) async fn insert_ticket(
    tx: &mut SqliteTx,
    t: NewTicket<'_>,
) -> Result<TicketId, StoreError> {
    // ON CONFLICT keeps a code collision from aborting the surrounding transaction.
    let row = tx
            .row(
                Stmt::new(
                    "INSERT INTO tickets (code, status, tier, category, priority, customer, customer_name, subject, thread_key, language, follows_ticket_id, suggested_articles, created_at, updated_at, status_since, sla_since) \
                     VALUES (?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING RETURNING id",
                )
                .bind(t.code.as_str())
                .bind(t.tier.as_str())
                .bind(t.category.as_str())
                .bind(t.priority.as_str())
                .bind(t.customer.as_str())
                .bind(t.customer_name)
                .bind(t.subject)
                .bind(t.thread_key)
                .bind(t.language.as_str())
                .bind(t.follows)
                .bind(serde_json::to_string(t.suggested_articles).unwrap_or_else(|_| "[]".into()))
                .bind(t.at)
                .bind(t.at)
                .bind(t.at)
                .bind(t.at),
            )
            .await?;
    match row {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(StoreError::CodeTaken(t.code.to_string())),
    }
}

pub(super) async fn set_ticket_status(
    tx: &mut SqliteTx,
    id: TicketId,
    status: TicketStatus,
    reopened: bool,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new(
            "UPDATE tickets SET status = ?, updated_at = ?, reopen_count = reopen_count + ?, \
                 resolved_at = ? WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(i64::from(reopened))
        .bind(status.resolved_at(at))
        .bind(id),
    )
    .await
}

pub(super) async fn set_tier(
    tx: &mut SqliteTx,
    id: TicketId,
    tier: Tier,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new("UPDATE tickets SET tier = ?, updated_at = ? WHERE id = ?")
            .bind(tier.as_str())
            .bind(at)
            .bind(id),
    )
    .await
}

pub(super) async fn set_assignee(
    tx: &mut SqliteTx,
    id: TicketId,
    assignee: Option<&EmailAddress>,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "UPDATE tickets SET assignee = ?, assigned_at = CASE WHEN ? IS NULL THEN assigned_at ELSE ? END, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(assignee.map(|a| a.as_str()))
            .bind(assignee.map(|a| a.as_str()))
            .bind(at)
            .bind(at)
            .bind(id),
        )
        .await
}

pub(super) async fn agent_loads(
    tx: &mut SqliteTx,
    agents: &[EmailAddress],
) -> Result<HashMap<EmailAddress, Load>, StoreError> {
    tx.waiting.flush(&mut tx.tx).await?;
    super::agent_loads(&mut tx.tx, agents).await
}

pub(super) async fn adjust_load(
    tx: &mut SqliteTx,
    agent: &EmailAddress,
    open_delta: i64,
    assigned_at: Option<Millis>,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "INSERT INTO agent_loads (assignee, open_tickets, last_assigned_at) VALUES (?, MAX(?, 0), ?) \
                 ON CONFLICT (assignee) DO UPDATE SET open_tickets = MAX(open_tickets + ?, 0), \
                 last_assigned_at = COALESCE(excluded.last_assigned_at, last_assigned_at)",
            )
            .bind(agent.as_str())
            .bind(open_delta)
            .bind(assigned_at)
            .bind(open_delta),
        )
        .await
}

pub(super) async fn set_priority(
    tx: &mut SqliteTx,
    id: TicketId,
    priority: Priority,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new("UPDATE tickets SET priority = ?, updated_at = ? WHERE id = ?")
            .bind(priority.as_str())
            .bind(at)
            .bind(id),
    )
    .await
}

pub(super) async fn set_category(
    tx: &mut SqliteTx,
    id: TicketId,
    category: &Category,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new("UPDATE tickets SET category = ?, updated_at = ? WHERE id = ?")
            .bind(category.as_str())
            .bind(at)
            .bind(id),
    )
    .await
}

pub(super) async fn set_satisfaction(
    tx: &mut SqliteTx,
    id: TicketId,
    score: u8,
    comment: Option<&str>,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "UPDATE tickets SET satisfaction = ?, satisfaction_comment = ?, updated_at = ? WHERE id = ?",
            )
            .bind(i64::from(score))
            .bind(comment)
            .bind(at)
            .bind(id),
        )
        .await
}

pub(super) async fn set_first_response(
    tx: &mut SqliteTx,
    id: TicketId,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new(
            "UPDATE tickets SET first_response_at = COALESCE(first_response_at, ?) WHERE id = ?",
        )
        .bind(at)
        .bind(id),
    )
    .await
}

pub(super) async fn set_timing(
    tx: &mut SqliteTx,
    id: TicketId,
    timing: &Timing,
) -> Result<(), StoreError> {
    let c = &timing.clock;
    tx.later(
            Stmt::new(
                "UPDATE tickets SET status_since = ?, first_response_at = ?, sla_used_ms = ?, sla_since = ?, \
                 sla_fired = ?, wait_ms = ?, reminded_at = ?, vendor_asked_at = ?, hold_until = ?, hold_tier = ?, \
                 first_response_due = ?, resolution_due = ?, due_at = ?, timer_owner = NULL, timer_lease_until = NULL WHERE id = ?",
            )
            .bind(c.status_since)
            .bind(c.first_response_at)
            .bind(c.sla_used_ms)
            .bind(c.sla_since)
            .bind(i64::from(c.fired.0))
            .bind(c.wait_ms)
            .bind(c.reminded_at)
            .bind(c.vendor_asked_at)
            .bind(c.self_service.map(|h| h.until))
            .bind(c.self_service.map(|h| h.then.as_str()))
            .bind(timing.dues.first_response)
            .bind(timing.dues.resolution)
            .bind(timing.due_at)
            .bind(id),
        )
        .await
}

pub(super) async fn set_vendor(
    tx: &mut SqliteTx,
    id: TicketId,
    vendor: &str,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "UPDATE tickets SET vendor = ?, vendor_ticket = CASE WHEN vendor IS ? THEN vendor_ticket END, \
                 updated_at = ? WHERE id = ?",
            )
            .bind(vendor)
            .bind(vendor)
            .bind(at)
            .bind(id),
        )
        .await
}

pub(super) async fn set_vendor_ticket(
    tx: &mut SqliteTx,
    id: TicketId,
    number: &str,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new("UPDATE tickets SET vendor_ticket = ? WHERE id = ?")
            .bind(number)
            .bind(id),
    )
    .await
}

pub(super) async fn ticket_by_vendor_ticket(
    tx: &mut SqliteTx,
    vendor: &str,
    number: &str,
) -> Result<Option<TicketRef>, StoreError> {
    let sql = format!(
        "SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.vendor = ? AND t.vendor_ticket = ? \
             ORDER BY t.id DESC LIMIT 1"
    );
    let row = tx.row(Stmt::new(sql).bind(vendor).bind(number)).await?;
    row.as_ref().map(ticket_ref).transpose()
}

pub(super) async fn participants(
    tx: &mut SqliteTx,
    id: TicketId,
) -> Result<Vec<EmailAddress>, StoreError> {
    let rows = tx
            .rows(
                Stmt::new(
                    "SELECT address FROM ticket_participants WHERE ticket_id = ? ORDER BY added_at, address",
                )
                .bind(id),
            )
            .await?;
    rows.iter()
        .map(|r| address(&r.try_get::<String, _>(0)?))
        .collect()
}

pub(super) async fn touch_ticket(
    tx: &mut SqliteTx,
    id: TicketId,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new("UPDATE tickets SET updated_at = ? WHERE id = ?")
            .bind(at)
            .bind(id),
    )
    .await
}

pub(super) async fn insert_events(
    tx: &mut SqliteTx,
    events: &[NewEvent<'_>],
) -> Result<(), StoreError> {
    // One multi-row INSERT per 100 events (7 parameters each, well under SQLite's limit).
    for chunk in events.chunks(100) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut stmt = Stmt::new(format!(
            "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) VALUES {rows}"
        ));
        for e in chunk {
            stmt = stmt
                .bind(e.ticket)
                .bind(e.message)
                .bind(e.kind.as_str())
                .bind(e.actor.kind())
                .bind(e.actor.name())
                .bind(e.detail.to_string())
                .bind(e.at);
        }
        tx.later(stmt).await?;
    }
    Ok(())
}
