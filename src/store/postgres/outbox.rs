//! The outbox: rows queued in the ticket's transaction, claimed by one gateway at a time
//! (`FOR UPDATE SKIP LOCKED`, under a lease it renews), then marked sent, retried or
//! failed; and the automatic mail budget that reads it.

use super::*;

const OUT: &str = "status IN ('pending', 'sending', 'sent', 'failed')";

pub(super) async fn automatic_mail_sent(
    tx: &mut PgTx,
    to: &EmailAddress,
    kinds: &[&str],
    (hour_ago, day_ago, now): (Millis, Millis, Millis),
    (hour_cap, day_cap): (u32, u32),
) -> Result<(u32, u32), StoreError> {
    let count = |since: u8, cap: u8| {
        format!(
            "(SELECT COUNT(*) FROM (SELECT 1 FROM outbox WHERE rcpt_to = $1::jsonb \
             AND created_at > hd_ts(${since}) AND created_at <= hd_ts($3) AND kind = ANY($4) \
             AND {OUT} LIMIT ${cap}) s)"
        )
    };
    let sql = format!("SELECT {}, {}", count(2, 5), count(6, 7));
    let kinds: Vec<String> = kinds.iter().map(|k| k.to_string()).collect();
    let (hour, day): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(json_list(&[to.to_string()]))
        .bind(hour_ago)
        .bind(now)
        .bind(kinds)
        .bind(i64::from(hour_cap))
        .bind(day_ago)
        .bind(i64::from(day_cap))
        .fetch_one(&mut *tx.tx)
        .await?;
    Ok((hour.max(0) as u32, day.max(0) as u32))
}

pub(super) async fn held_mail(tx: &mut PgTx, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.ticket_id, t.code, o.kind, o.rcpt_to::text AS rcpt_to, o.held_for, \
         o.held_status, t.status, hd_ms(o.created_at) AS created_at \
         FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
         WHERE o.status = 'held' ORDER BY o.id LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(&mut *tx.tx)
    .await?;
    rows.iter()
        .map(|r| {
            let rcpt: Vec<String> = serde_json::from_str(&get::<String>(r, "rcpt_to")?)
                .map_err(|e| StoreError::Corrupt(format!("outbox rcpt_to: {e}")))?;
            Ok(HeldMail {
                id: get(r, "id")?,
                ticket: get(r, "ticket_id")?,
                code: get(r, "code")?,
                kind: get(r, "kind")?,
                rcpt_to: rcpt.into_iter().next().unwrap_or_default(),
                flood_from: get(r, "held_for")?,
                held_status: get(r, "held_status")?,
                ticket_status: get(r, "status")?,
                created_at: get(r, "created_at")?,
            })
        })
        .collect()
}

pub(super) async fn enqueue(tx: &mut PgTx, o: NewOutgoing<'_>) -> Result<OutboxId, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO outbox (ticket_id, message_row, kind, mail_from, rcpt_to, status, \
         next_attempt_at, created_at, held_for, held_status) \
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, hd_ts($7), hd_ts($7), $8, $9) RETURNING id",
    )
    .bind(o.ticket)
    .bind(o.message)
    .bind(o.kind)
    .bind(o.mail_from)
    .bind(jsonb_list(o.rcpt_to))
    .bind(o.status())
    .bind(o.at)
    .bind(o.held_for())
    .bind(o.held_status())
    .fetch_one(&mut *tx.tx)
    .await?;
    // Wakes every gateway's outbox at commit (a notification is sent only if the
    // transaction commits).
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(OUTBOX_CHANNEL)
        .execute(&mut *tx.tx)
        .await?;
    Ok(id)
}

pub(super) async fn claim_outbox(
    store: &PgStore,
    now: Millis,
    lease_until: Millis,
    limit: u32,
    owner: &str,
) -> Result<Vec<OutboxItem>, StoreError> {
    // Rows another gateway is claiming at this instant are skipped, not waited for.
    let rows = sqlx::query(
        "UPDATE outbox SET status = 'sending', lease_until = hd_ts($1), lease_owner = $2, \
         attempts = attempts + 1 WHERE id IN (SELECT id FROM outbox \
           WHERE (status = 'pending' AND next_attempt_at <= hd_ts($3)) \
              OR (status = 'sending' AND lease_until < hd_ts($3)) \
           ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING id, kind, mail_from, rcpt_to::text AS rcpt_to, attempts::bigint AS attempts, message_row",
    )
    .bind(lease_until)
    .bind(owner)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let wanted: Vec<i64> = rows
        .iter()
        .map(|r| get(r, "message_row"))
        .collect::<Result<_, _>>()?;
    let raws: HashMap<i64, Vec<u8>> =
        sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT id, raw FROM messages WHERE id = ANY($1)")
            .bind(wanted)
            .fetch_all(&store.pool)
            .await?
            .into_iter()
            .collect();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let message_row: i64 = get(&row, "message_row")?;
        let raw = raws.get(&message_row).cloned().ok_or_else(|| {
            StoreError::Corrupt(format!("outbox row: message {message_row} is missing"))
        })?;
        items.push(OutboxItem {
            id: get(&row, "id")?,
            kind: get(&row, "kind")?,
            mail_from: get(&row, "mail_from")?,
            rcpt_to: serde_json::from_str(&get::<String>(&row, "rcpt_to")?)
                .map_err(|e| StoreError::Corrupt(format!("outbox rcpt_to: {e}")))?,
            raw,
            attempts: get::<i64>(&row, "attempts")?.max(0) as u32,
        });
    }
    items.sort_by_key(|i| i.id);
    Ok(items)
}

/// Marks rows done (`sent`, `failed`), each with its event, in one transaction.
async fn mark_done(
    store: &PgStore,
    rows: &[(&Marked, Option<&str>)],
    status: &'static str,
    at: Millis,
) -> Result<(), StoreError> {
    let kind = if status == "sent" {
        "mail_sent"
    } else {
        "mail_failed"
    };
    let mut tx = store.pool.begin().await?;
    for (Marked { id, detail }, error) in rows {
        sqlx::query(
            "WITH done AS (UPDATE outbox SET status = $1, \
               sent_at = CASE WHEN $1 = 'sent' THEN hd_ts($2) ELSE sent_at END, \
               lease_until = NULL, lease_owner = NULL, last_error = $3 WHERE id = $4 \
               RETURNING ticket_id, message_row) \
             INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
             SELECT ticket_id, message_row, $5, 'gateway', 'gateway', $6::jsonb, hd_ts($2) FROM done",
        )
        .bind(status)
        .bind(at)
        .bind(*error)
        .bind(id)
        .bind(kind)
        .bind(jsonb_text(detail.to_string()))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn mark_sent(
    store: &PgStore,
    rows: &[Marked],
    at: Millis,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let rows: Vec<(&Marked, Option<&str>)> = rows.iter().map(|r| (r, None)).collect();
    mark_done(store, &rows, "sent", at).await
}

pub(super) async fn mark_failed(
    store: &PgStore,
    row: &Marked,
    error: &str,
    at: Millis,
) -> Result<(), StoreError> {
    mark_done(store, &[(row, Some(error))], "failed", at).await
}
