//! The outbox: rows queued in the ticket's transaction, then claimed under a renewed lease, marked sent, retried or failed by the worker.

use super::*;

pub(super) async fn renew_lease(
    store: &SqliteStore,
    ids: &[OutboxId],
    owner: &str,
    lease_until: Millis,
) -> Result<Renewal, StoreError> {
    let mut renewal = Renewal::default();
    for chunk in ids.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "UPDATE outbox SET lease_until = ? WHERE status = 'sending' AND lease_owner = ? AND id IN ({placeholders})"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(lease_until)
            .bind(owner);
        for id in chunk {
            query = query.bind(id);
        }
        renewal.renewed += query.execute(&store.pool).await?.rows_affected();
        let sql = format!(
            "SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND lease_owner IS NOT ? AND id IN ({placeholders})"
        );
        let mut query = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(owner);
        for id in chunk {
            query = query.bind(id);
        }
        renewal.taken_over += query.fetch_one(&store.pool).await?.max(0) as u64;
    }
    Ok(renewal)
}

pub(super) async fn claim_outbox(
    store: &SqliteStore,
    now: Millis,
    lease_until: Millis,
    limit: u32,
    owner: &str,
) -> Result<Vec<OutboxItem>, StoreError> {
    let mut tx = store.begin_immediate().await?;
    // The limit is written into the SQL: SQLite compiles a bound LIMIT afresh at every run.
    let sql = format!(
        "UPDATE outbox SET status = 'sending', lease_until = ?, lease_owner = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= ?) \
                          OR (status = 'sending' AND lease_until < ?) ORDER BY next_attempt_at, id LIMIT {limit}) \
             RETURNING id, kind, mail_from, rcpt_to, attempts, message_row"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(lease_until)
        .bind(owner)
        .bind(now)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    // The mails themselves never change: read after the commit, in one statement, without
    // holding the write lock.
    let wanted: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("message_row"))
        .collect::<Result<_, _>>()?;
    let wanted = serde_json::to_string(&wanted).unwrap_or_else(|_| "[]".into());
    let raws: HashMap<i64, Vec<u8>> =
        sqlx::query_as("SELECT id, raw FROM messages WHERE id IN (SELECT value FROM json_each(?))")
            .bind(wanted)
            .fetch_all(&store.pool)
            .await?
            .into_iter()
            .collect();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let message_row: i64 = row.try_get("message_row")?;
        let raw = raws.get(&message_row).cloned().ok_or_else(|| {
            StoreError::Corrupt(format!("outbox row: message {message_row} is missing"))
        })?;
        let rcpt: String = row.try_get("rcpt_to")?;
        items.push(OutboxItem {
            id: row.try_get("id")?,
            kind: row.try_get("kind")?,
            mail_from: row.try_get("mail_from")?,
            rcpt_to: serde_json::from_str(&rcpt)
                .map_err(|e| StoreError::Corrupt(format!("outbox rcpt_to: {e}")))?,
            raw,
            attempts: row.try_get::<i64, _>("attempts")? as u32,
        });
    }
    items.sort_by_key(|i| i.id);
    Ok(items)
}

pub(super) async fn mark_sent(
    store: &SqliteStore,
    rows: &[Marked],
    at: Millis,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_immediate().await?;
    for Marked { id, detail } in rows {
        sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = ?, lease_until = NULL, lease_owner = NULL, last_error = NULL WHERE id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
                 SELECT ticket_id, message_row, 'mail_sent', 'gateway', 'gateway', ?, ? \
                 FROM outbox WHERE id = ?",
        )
        .bind(detail.to_string())
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn mark_retry(
    store: &SqliteStore,
    id: OutboxId,
    next_attempt_at: Millis,
    error: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_until = NULL, lease_owner = NULL, last_error = ? WHERE id = ?")
            .bind(next_attempt_at)
            .bind(error)
            .bind(id)
            .execute(&store.pool)
            .await?;
    Ok(())
}

pub(super) async fn mark_failed(
    store: &SqliteStore,
    row: &Marked,
    error: &str,
    at: Millis,
) -> Result<(), StoreError> {
    let id = row.id;
    let mut tx = store.begin_immediate().await?;
    sqlx::query(
            "UPDATE outbox SET status = 'failed', lease_until = NULL, lease_owner = NULL, last_error = ? WHERE id = ?",
        )
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
            "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
             SELECT ticket_id, message_row, 'mail_failed', 'gateway', 'gateway', ?, ? FROM outbox WHERE id = ?",
        )
        .bind(row.detail.to_string())
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn outbox_backlog(
    store: &SqliteStore,
) -> Result<(i64, Option<Millis>), StoreError> {
    let (count, next): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) \
             FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&store.pool)
        .await?;
    Ok((count, next))
}

pub(super) async fn enqueue(tx: &mut SqliteTx, o: NewOutgoing<'_>) -> Result<OutboxId, StoreError> {
    let id = tx.next_id(IdTable::Outbox).await?;
    tx.later(
        Stmt::new(
            "INSERT INTO outbox (id, ticket_id, message_row, kind, mail_from, rcpt_to, status, \
                 next_attempt_at, created_at, held_for, held_status) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(o.ticket)
        .bind(o.message)
        .bind(o.kind)
        .bind(o.mail_from)
        .bind(json_list(o.rcpt_to))
        .bind(o.status())
        .bind(o.at)
        .bind(o.at)
        .bind(o.held_for())
        .bind(o.held_status()),
    )
    .await?;
    Ok(id)
}
