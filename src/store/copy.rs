//! `helpdesk store copy`: a desk moved from SQLite to PostgreSQL with all its history:
//! tickets, messages with their raw mail, attachments, events, the outbox, checkpoints.
//! Read in one SQLite read transaction (a consistent copy, even of a desk in use) and
//! written in one PostgreSQL transaction (all of it or nothing), into an empty database
//! only. Each table's rows keep their ids; the counts are checked on both sides at the end.

use sqlx::{AssertSqlSafe, Row};

use super::StoreError;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;

/// How a column is carried over.
#[derive(Clone, Copy)]
enum Kind {
    /// An integer (or an id), as it is.
    Int,
    Text,
    Bytes,
    /// Milliseconds on SQLite, `timestamptz` on PostgreSQL.
    Moment,
    /// JSON text on SQLite, `jsonb` on PostgreSQL.
    Json,
    /// 0/1 on SQLite, a boolean on PostgreSQL.
    Flag,
}

use Kind::*;

/// Every table of the desk, parents before children, with its columns. Health probes and
/// leases are not copied: they describe the gateways running now, not the desk.
const TABLES: &[(&str, &[(&str, Kind)])] = &[
    (
        "tickets",
        &[
            ("id", Int),
            ("code", Text),
            ("status", Text),
            ("tier", Text),
            ("customer", Text),
            ("customer_name", Text),
            ("subject", Text),
            ("thread_key", Text),
            ("language", Text),
            ("reopen_count", Int),
            ("created_at", Moment),
            ("updated_at", Moment),
            ("resolved_at", Moment),
            ("category", Text),
            ("priority", Text),
            ("assignee", Text),
            ("assigned_at", Moment),
            ("first_response_at", Moment),
            ("satisfaction", Int),
            ("satisfaction_comment", Text),
            ("sla_used_ms", Int),
            ("sla_since", Moment),
            ("sla_fired", Int),
            ("first_response_due", Moment),
            ("resolution_due", Moment),
            ("status_since", Moment),
            ("wait_ms", Int),
            ("reminded_at", Moment),
            ("due_at", Moment),
            ("timer_owner", Text),
            ("timer_lease_until", Moment),
            ("follows_ticket_id", Int),
            ("vendor", Text),
            ("vendor_ticket", Text),
            ("vendor_asked_at", Moment),
            ("suggested_articles", Json),
            ("hold_until", Moment),
            ("hold_tier", Text),
        ],
    ),
    (
        "messages",
        &[
            ("id", Int),
            ("ticket_id", Int),
            ("direction", Text),
            ("outcome", Text),
            ("outcome_detail", Text),
            ("source_key", Text),
            ("message_id", Text),
            ("raw_sha256", Text),
            ("raw", Bytes),
            ("from_addr", Text),
            ("from_name", Text),
            ("reply_to", Text),
            ("to_addrs", Json),
            ("cc_addrs", Json),
            ("subject", Text),
            ("in_reply_to", Json),
            ("refs", Json),
            ("sent_date", Moment),
            ("body_text", Text),
            ("reply_text", Text),
            ("quoted_text", Text),
            ("language", Text),
            ("machine_kind", Text),
            ("received_at", Moment),
            ("content_sha256", Text),
            ("from_non_participant", Flag),
            ("signature", Text),
        ],
    ),
    (
        "attachments",
        &[
            ("id", Int),
            ("message_id", Int),
            ("filename", Text),
            ("content_type", Text),
            ("size", Int),
            ("content", Bytes),
            ("body_start", Int),
            ("body_end", Int),
            ("body_encoding", Text),
        ],
    ),
    (
        "outbox",
        &[
            ("id", Int),
            ("ticket_id", Int),
            ("message_row", Int),
            ("kind", Text),
            ("mail_from", Text),
            ("rcpt_to", Json),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Moment),
            ("lease_until", Moment),
            ("last_error", Text),
            ("created_at", Moment),
            ("sent_at", Moment),
            ("lease_owner", Text),
            ("held_for", Text),
            ("held_status", Text),
            ("released_at", Moment),
        ],
    ),
    (
        "events",
        &[
            ("id", Int),
            ("ticket_id", Int),
            ("message_row", Int),
            ("kind", Text),
            ("actor_kind", Text),
            ("actor", Text),
            ("detail", Json),
            ("at", Moment),
        ],
    ),
    (
        "ticket_participants",
        &[
            ("ticket_id", Int),
            ("address", Text),
            ("role", Text),
            ("added_at", Moment),
        ],
    ),
    (
        "mailbox_checkpoints",
        &[
            ("mailbox", Text),
            ("uid_validity", Int),
            ("last_uid", Int),
            ("updated_at", Moment),
        ],
    ),
    (
        "imap_copies",
        &[
            ("source_key", Text),
            ("folder", Text),
            ("copied_at", Moment),
        ],
    ),
    (
        "agent_loads",
        &[
            ("assignee", Text),
            ("open_tickets", Int),
            ("last_assigned_at", Moment),
        ],
    ),
    (
        "reports",
        &[("kind", Text), ("period", Text), ("queued_at", Moment)],
    ),
    (
        "erasures",
        &[
            ("id", Int),
            ("at", Moment),
            ("by_actor", Text),
            ("reason", Text),
            ("tickets", Int),
            ("messages", Int),
            ("attachments", Int),
            ("outbox", Int),
            ("events", Int),
            ("participants", Int),
            ("mentions", Int),
        ],
    ),
];

/// Rows read from SQLite at a time.
const PAGE: i64 = 500;

/// Copies the desk of `from` into the empty database of `to`; returns each table's rows.
/// `progress` is told each table's count as it is done.
pub async fn sqlite_to_postgres(
    from: &SqliteStore,
    to: &PgStore,
    progress: impl Fn(&str, u64),
) -> Result<Vec<(&'static str, u64)>, StoreError> {
    let mut target = to.pool().begin().await?;
    for (table, _) in TABLES {
        let (n,): (i64,) = sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&mut *target)
            .await?;
        if n > 0 {
            return Err(StoreError::Unsupported(format!(
                "the target database is not empty ({n} rows in {table}): copy only into an \
                 empty database (a new one, `createdb`)"
            )));
        }
    }
    let mut source = from.pool().acquire().await?;
    // Whatever happens, this connection does not go back to the pool mid-transaction.
    source.close_on_drop();
    sqlx::raw_sql("BEGIN").execute(&mut *source).await?;
    let mut counts = Vec::with_capacity(TABLES.len());
    for (table, columns) in TABLES {
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let select = format!(
            "SELECT rowid AS copy_rowid, {} FROM {table} WHERE rowid > ? ORDER BY rowid LIMIT {PAGE}",
            names.join(", ")
        );
        let values: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                let p = format!("${}", i + 1);
                match kind {
                    Moment => format!("hd_ts({p})"),
                    Json => format!("{p}::jsonb"),
                    Flag => format!("({p} <> 0)"),
                    _ => p,
                }
            })
            .collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({})",
            names.join(", "),
            values.join(", ")
        );
        let mut after = 0i64;
        let mut copied = 0u64;
        loop {
            let rows = sqlx::query(AssertSqlSafe(select.clone()))
                .bind(after)
                .fetch_all(&mut *source)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("copy_rowid")?;
            for row in &rows {
                let mut query = sqlx::query(AssertSqlSafe(insert.clone()));
                for (column, kind) in columns.iter() {
                    query = match kind {
                        Int | Moment | Flag => query.bind(row.try_get::<Option<i64>, _>(*column)?),
                        Text => query.bind(
                            row.try_get::<Option<String>, _>(*column)?
                                .map(|t| t.replace('\0', "\u{FFFD}")),
                        ),
                        Json => query.bind(
                            row.try_get::<Option<String>, _>(*column)?
                                .map(|t| t.replace("\\u0000", "\\ufffd")),
                        ),
                        Bytes => query.bind(row.try_get::<Option<Vec<u8>>, _>(*column)?),
                    };
                }
                query.execute(&mut *target).await?;
            }
            copied += rows.len() as u64;
        }
        // Ids given from now on follow the copied ones.
        if names.contains(&"id") {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            )))
            .execute(&mut *target)
            .await?;
        }
        let (written,): (i64,) =
            sqlx::query_as(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&mut *target)
                .await?;
        if written as u64 != copied {
            return Err(StoreError::Corrupt(format!(
                "{table}: {copied} rows read, {written} written"
            )));
        }
        progress(table, copied);
        counts.push((*table, copied));
    }
    sqlx::raw_sql("COMMIT").execute(&mut *source).await?;
    target.commit().await?;
    Ok(counts)
}
