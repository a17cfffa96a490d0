//! Timed work: when the next ticket falls due, and leasing due tickets to one scheduler at a time.

use super::*;

pub(super) async fn next_due(store: &SqliteStore) -> Result<Option<Millis>, StoreError> {
    let (at,): (Option<i64>,) =
        sqlx::query_as("SELECT MIN(due_at) FROM tickets WHERE due_at IS NOT NULL")
            .fetch_one(&store.pool)
            .await?;
    Ok(at)
}

pub(super) async fn due_tickets(
    store: &SqliteStore,
    now: Millis,
    limit: u32,
) -> Result<Vec<TicketId>, StoreError> {
    let sql = format!("SELECT id FROM tickets WHERE due_at <= ? ORDER BY due_at, id LIMIT {limit}");
    let ids: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(now)
        .fetch_all(&store.pool)
        .await?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn claim_due(
    store: &SqliteStore,
    now: Millis,
    lease_now: Millis,
    lease_until: Millis,
    limit: u32,
    owner: &str,
) -> Result<Vec<TicketId>, StoreError> {
    let mut tx = store.begin_immediate().await?;
    let sql = format!(
        "UPDATE tickets SET timer_owner = ?, timer_lease_until = ? WHERE id IN \
             (SELECT id FROM tickets WHERE due_at <= ? \
              AND (timer_lease_until IS NULL OR timer_lease_until < ?) ORDER BY due_at LIMIT {limit}) \
             RETURNING id"
    );
    let ids: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(lease_now)
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    let mut ids: Vec<TicketId> = ids.into_iter().map(|(id,)| id).collect();
    ids.sort_unstable();
    Ok(ids)
}
