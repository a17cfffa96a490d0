//! What the dashboard and `/metrics` read: the backlog's counts, and the health check's
//! write.

use super::*;

/// `'new', 'open', 'waiting_on_customer'`: closed-set names, safe to write into the SQL.
fn open_list() -> String {
    TicketStatus::open()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn overview(
    store: &SqliteStore,
    now: Millis,
    due_before: Millis,
) -> Result<Overview, StoreError> {
    let open = open_list();
    // One read transaction: the counts agree with each other.
    let mut conn = store.pool.acquire().await?;
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let result = async {
        let backlog: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT tier, status, COUNT(*) FROM tickets WHERE status IN ({open}) \
             GROUP BY tier, status ORDER BY tier, status"
        )))
        .fetch_all(&mut *conn)
        .await?;
        let backlog = backlog
            .into_iter()
            .map(backlog_line)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let (due_soon, breached): (i64, i64) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT \
               COALESCE(SUM((first_response_due > ?1 AND first_response_due <= ?2) \
                         OR (resolution_due > ?1 AND resolution_due <= ?2)), 0), \
               COALESCE(SUM((sla_fired & ?3) != 0), 0) \
             FROM tickets WHERE status IN ({open})"
        )))
        .bind(now)
        .bind(due_before)
        .bind(BREACHED)
        .fetch_one(&mut *conn)
        .await?;
        let oldest = sqlx::query(AssertSqlSafe(format!(
            "{} WHERE t.status IN ('new', 'open') ORDER BY t.created_at, t.id LIMIT 1",
            views::SUMMARY_SELECT
        )))
        .fetch_optional(&mut *conn)
        .await?;
        let oldest_waiting = oldest.as_ref().map(views::summary).transpose()?;
        let by_assignee: Vec<(Option<String>, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT assignee, COUNT(*) FROM tickets WHERE status IN ({open}) \
             GROUP BY assignee ORDER BY assignee"
        )))
        .fetch_all(&mut *conn)
        .await?;
        Ok::<_, StoreError>(Overview {
            backlog,
            due_soon,
            breached,
            oldest_waiting,
            by_assignee,
        })
    }
    .await;
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    result
}

pub(super) async fn desk_gauges(store: &SqliteStore) -> Result<DeskGauges, StoreError> {
    let open = open_list();
    let by_tier: Vec<(String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT tier, COUNT(*) FROM tickets WHERE status IN ({open}) GROUP BY tier"
    )))
    .fetch_all(&store.pool)
    .await?;
    let open_by_tier = by_tier
        .into_iter()
        .map(|(tier, n)| {
            Ok((
                Tier::from_str(&tier).map_err(|_| corrupt(format!("tier {tier:?}")))?,
                n,
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let (outbox_pending, outbox_oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM outbox WHERE status IN ('pending', 'sending')",
    )
    .fetch_one(&store.pool)
    .await?;
    Ok(DeskGauges {
        open_by_tier,
        outbox_pending,
        outbox_oldest,
    })
}

pub(super) async fn probe_write(
    store: &SqliteStore,
    instance: &str,
    at: Millis,
) -> Result<(), StoreError> {
    // The files first: connections already open keep writing to a file made read-only
    // (permissions, a read-only remount, `chattr +i`), and SQLite even lends a new one of
    // this process their descriptors; the kernel, asked to open the files for writing,
    // tells the truth a restarted gateway would meet.
    if let Some((path, _)) = &store.file {
        let mut files = vec![path.clone()];
        let wal = path.with_extension(
            path.extension()
                .map(|e| format!("{}-wal", e.to_string_lossy()))
                .unwrap_or_else(|| "wal".into()),
        );
        if wal.exists() {
            files.push(wal);
        }
        tokio::task::spawn_blocking(move || {
            for file in files {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&file)
                    .map_err(|e| StoreError::NotWritable(format!("{}: {e}", file.display())))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|e| StoreError::NotWritable(format!("the check stopped: {e}")))??;
    }
    sqlx::query(
        "INSERT INTO health_probes (instance, at) VALUES (?1, ?2) \
         ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
    )
    .bind(instance)
    .bind(at)
    .execute(&store.pool)
    .await?;
    Ok(())
}
