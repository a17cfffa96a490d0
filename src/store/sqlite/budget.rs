//! Automatic mail per recipient: what was sent in a window, a sender's flood, and the mail held back until the budget allows it.

use super::*;

pub(super) async fn automatic_mail_sent(
    tx: &mut SqliteTx,
    to: &EmailAddress,
    kinds: &[&str],
    (hour_ago, day_ago, now): (Millis, Millis, Millis),
    (hour_cap, day_cap): (u32, u32),
) -> Result<(u32, u32), StoreError> {
    // Index-only range counts (the partial index outbox_recipient covers rcpt_to,
    // created_at and kind of the mail that went or goes out), each stopped at its cap.
    // The caps are written into the SQL: SQLite compiles a bound LIMIT afresh at every run.
    const OUT: &str =
        "(status = 'pending' OR status = 'sending' OR status = 'sent' OR status = 'failed')";
    let counted = placeholders(kinds.len());
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = ? AND created_at > ? \
                       AND created_at <= ? AND kind IN ({counted}) AND {OUT} LIMIT {hour_cap})), \
                    (SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = ? AND created_at > ? \
                       AND created_at <= ? AND kind IN ({counted}) AND {OUT} LIMIT {day_cap}))"
    );
    let mut stmt = Stmt::new(sql);
    for since in [hour_ago, day_ago] {
        stmt = stmt
            .bind(json_list(&[to.to_string()]))
            .bind(since)
            .bind(now);
        for kind in kinds {
            stmt = stmt.bind(*kind);
        }
    }
    let row = tx.waiting.fetch_one(&mut tx.tx, stmt).await?;
    let (hour, day): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    Ok((hour.max(0) as u32, day.max(0) as u32))
}

pub(super) async fn mail_from_since(
    tx: &mut SqliteTx,
    sender: &EmailAddress,
    since: Millis,
    cap: u32,
) -> Result<u32, StoreError> {
    let sql = format!(
        "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE from_addr = ? AND received_at >= ? \
             AND direction = 'inbound' LIMIT {cap})"
    );
    let row = tx
        .waiting
        .fetch_one(
            &mut tx.tx,
            Stmt::new(sql).bind(sender.to_string()).bind(since),
        )
        .await?;
    let n: i64 = row.try_get(0)?;
    Ok(n.max(0) as u32)
}

pub(super) async fn held_mail(tx: &mut SqliteTx, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
    let sql = format!(
        "SELECT o.id, o.ticket_id, t.code, o.kind, o.rcpt_to, o.held_for, o.held_status, \
                    t.status, o.created_at \
             FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.status = 'held' ORDER BY o.id LIMIT {limit}"
    );
    let rows = tx.waiting.fetch_all(&mut tx.tx, Stmt::new(sql)).await?;
    rows.iter()
        .map(|r| {
            let rcpt: String = r.try_get(4)?;
            let rcpt: Vec<String> = serde_json::from_str(&rcpt)
                .map_err(|e| StoreError::Corrupt(format!("outbox rcpt_to: {e}")))?;
            Ok(HeldMail {
                id: r.try_get(0)?,
                ticket: r.try_get(1)?,
                code: r.try_get(2)?,
                kind: r.try_get(3)?,
                rcpt_to: rcpt.into_iter().next().unwrap_or_default(),
                flood_from: r.try_get(5)?,
                held_status: r.try_get(6)?,
                ticket_status: r.try_get(7)?,
                created_at: r.try_get(8)?,
            })
        })
        .collect()
}

pub(super) async fn release_mail(
    tx: &mut SqliteTx,
    id: OutboxId,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new(
            "UPDATE outbox SET status = 'pending', created_at = ?, next_attempt_at = ?, \
                 released_at = ? WHERE id = ? AND status = 'held'",
        )
        .bind(at)
        .bind(at)
        .bind(at)
        .bind(id),
    )
    .await
}

pub(super) async fn answered_release(
    tx: &mut SqliteTx,
    to: &EmailAddress,
    within: Millis,
) -> Result<bool, StoreError> {
    let row = tx
            .waiting
            .fetch_one(
                &mut tx.tx,
                Stmt::new(
                    "SELECT EXISTS (SELECT 1 FROM messages m, \
                       (SELECT MAX(released_at) AS at FROM outbox WHERE rcpt_to = ? AND released_at IS NOT NULL) r \
                     WHERE r.at IS NOT NULL AND m.from_addr = ? AND m.direction = 'inbound' \
                       AND m.received_at > r.at AND m.received_at <= r.at + ?)",
                )
                .bind(json_list(&[to.to_string()]))
                .bind(to.to_string())
                .bind(within),
            )
            .await?;
    let answered: i64 = row.try_get(0)?;
    Ok(answered != 0)
}

pub(super) async fn supersede_mail(tx: &mut SqliteTx, ids: &[OutboxId]) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
    tx.later(
        Stmt::new(
            "UPDATE outbox SET status = 'superseded' \
                 WHERE status = 'held' AND id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids),
    )
    .await
}
