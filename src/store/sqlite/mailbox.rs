//! Where each source stands: IMAP checkpoints (UIDVALIDITY and last UID), the outcome of each source mail, and the copies made before a move.

use super::*;

pub(super) async fn checkpoint(
    store: &SqliteStore,
    mailbox: &str,
) -> Result<Option<Checkpoint>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT uid_validity, last_uid FROM mailbox_checkpoints WHERE mailbox = ?")
            .bind(mailbox)
            .fetch_optional(&store.pool)
            .await?;
    Ok(row.map(|(v, u)| Checkpoint {
        uid_validity: v as u32,
        last_uid: u as u32,
    }))
}

pub(super) async fn source_outcomes(
    store: &SqliteStore,
    keys: &[String],
) -> Result<Vec<(String, StoredOutcome)>, StoreError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql = format!(
            "SELECT source_key, outcome FROM messages WHERE source_key IN ({placeholders})"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql));
        for k in chunk {
            query = query.bind(k.as_str());
        }
        for (key, outcome) in query.fetch_all(&store.pool).await? {
            if let Some(o) = StoredOutcome::parse(&outcome) {
                out.push((key, o));
            }
        }
    }
    Ok(out)
}

pub(super) async fn imap_copied(
    store: &SqliteStore,
    keys: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for chunk in keys.chunks(500) {
        let placeholders = vec!["?"; chunk.len()].join(", ");
        let sql =
            format!("SELECT source_key FROM imap_copies WHERE source_key IN ({placeholders})");
        let mut query = sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql));
        for k in chunk {
            query = query.bind(k.as_str());
        }
        out.extend(
            query
                .fetch_all(&store.pool)
                .await?
                .into_iter()
                .map(|(k,)| k),
        );
    }
    Ok(out)
}

pub(super) async fn record_imap_copies(
    store: &SqliteStore,
    keys: &[String],
    folder: &str,
    at: Millis,
) -> Result<(), StoreError> {
    let mut tx = store.begin_immediate().await?;
    for key in keys {
        sqlx::query(
            "INSERT INTO imap_copies (source_key, folder, copied_at) VALUES (?, ?, ?) \
                 ON CONFLICT (source_key) DO NOTHING",
        )
        .bind(key)
        .bind(folder)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn set_checkpoint(
    tx: &mut SqliteTx,
    mailbox: &str,
    c: Checkpoint,
    at: Millis,
) -> Result<(), StoreError> {
    tx.later(
            Stmt::new(
                "INSERT INTO mailbox_checkpoints (mailbox, uid_validity, last_uid, updated_at) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (mailbox) DO UPDATE SET uid_validity = excluded.uid_validity, \
                 last_uid = CASE WHEN mailbox_checkpoints.uid_validity = excluded.uid_validity \
                                 THEN MAX(mailbox_checkpoints.last_uid, excluded.last_uid) ELSE excluded.last_uid END, \
                 updated_at = excluded.updated_at",
            )
            .bind(mailbox)
            .bind(i64::from(c.uid_validity))
            .bind(i64::from(c.last_uid))
            .bind(at),
        )
        .await
}

pub(super) async fn take_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
    ttl_ms: i64,
    now: Millis,
) -> Result<bool, StoreError> {
    let mut tx = store.begin_immediate().await?;
    let row = sqlx::query(
        "INSERT INTO leases (name, holder, until, taken_at) VALUES (?1, ?2, ?3 + ?4, ?3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until, \
         taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at \
                         ELSE excluded.taken_at END \
         WHERE leases.holder = excluded.holder OR leases.until < ?3 RETURNING holder",
    )
    .bind(name)
    .bind(holder)
    .bind(now)
    .bind(ttl_ms)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row.is_some())
}

pub(super) async fn release_lease(
    store: &SqliteStore,
    name: &str,
    holder: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM leases WHERE name = ? AND holder = ?")
        .bind(name)
        .bind(holder)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(super) async fn leases(store: &SqliteStore) -> Result<Vec<LeaseView>, StoreError> {
    let rows: Vec<(String, String, i64, i64)> =
        sqlx::query_as("SELECT name, holder, taken_at, until FROM leases ORDER BY name")
            .fetch_all(&store.pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(name, holder, taken_at, until)| LeaseView {
            name,
            holder,
            taken_at,
            until,
        })
        .collect())
}
