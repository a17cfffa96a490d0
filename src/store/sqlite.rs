//! The embedded backend: one SQLite file in WAL mode. Writers use `BEGIN IMMEDIATE`, so the
//! pipeline and the outbox worker queue on the write lock (busy timeout) instead of one of
//! them failing half-way through a deferred transaction.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, SqliteConnection, SqlitePool};

use super::script::{Script, Stmt};
use super::*;

pub struct SqliteStore {
    pool: SqlitePool,
    /// The file opened and its identity (device, inode), when it is a file: a desk whose
    /// file is deleted or replaced under a running gateway must stop, not go on filing
    /// into a file nobody will ever read again.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

/// `?, ?, ?` for a list of `n` bound values.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The identity of the file at `path`, if it is there.
fn file_identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url` (`sqlite:path`).
    /// Errors name the file.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = url.trim_start_matches("sqlite:").to_string();
        Self::open_inner(url, &path).await.map_err(|e| e.at(&path))
    }

    /// Opens the database at `url` only if it exists: what commands that only read use, so
    /// a mistyped path or a deleted desk is reported, not replaced by an empty database.
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let path = url.trim_start_matches("sqlite:");
        let file = path.split('?').next().unwrap_or(path);
        if !file.starts_with(':')
            && !url.contains("mode=memory")
            && !std::path::Path::new(file).exists()
        {
            return Err(StoreError::NoDatabase(file.to_string()));
        }
        Self::open(url).await
    }

    /// Whether the database file is still the one opened.
    fn check_file(&self) -> Result<(), StoreError> {
        match &self.file {
            Some((path, identity)) if file_identity(path) != Some(*identity) => {
                Err(StoreError::Gone(path.display().to_string()))
            }
            _ => Ok(()),
        }
    }

    async fn open_inner(url: &str, path: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Unavailable)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        // Several processes opening a fresh desk at once (an MTA delivering in parallel, a
        // `tickets list` beside it) must not all switch it to WAL and create the tables: the
        // switch takes an exclusive lock that does not wait (SQLITE_BUSY at once). One opens
        // and migrates; the others wait for it here.
        let _lock = MigrationLock::acquire(path).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(StoreError::Unavailable)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Unavailable(sqlx::Error::Migrate(Box::new(e))))?;
        let file_path = path.split('?').next().unwrap_or(path);
        let file = if file_path.starts_with(':') || url.contains("mode=memory") {
            None
        } else {
            let file_path = std::path::PathBuf::from(file_path);
            file_identity(&file_path).map(|id| (file_path, id))
        };
        Ok(Self { pool, file })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn begin_immediate(&self) -> Result<ImmediateTx, StoreError> {
        self.check_file()?;
        ImmediateTx::begin(&self.pool).await
    }
}

/// A write transaction; writes whose result nobody reads wait in `waiting` (see `script`).
struct SqliteTx {
    tx: ImmediateTx,
    waiting: Script,
    /// The next ids of `messages` and `outbox`, read once the transaction first needs one.
    next_ids: Option<[i64; 2]>,
    /// The database file and its identity, checked again once committed.
    file: Option<(std::path::PathBuf, (u64, u64))>,
}

/// An exclusive lock on `<database>.migrate.lock`, held while migrations run.
struct MigrationLock(Option<std::fs::File>);

impl MigrationLock {
    async fn acquire(db_path: &str) -> Result<Self, StoreError> {
        if db_path.starts_with(':') || db_path.contains("mode=memory") {
            return Ok(MigrationLock(None));
        }
        let lock_path = format!(
            "{}.migrate.lock",
            db_path.split('?').next().unwrap_or(db_path)
        );
        let file = tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(e))))?
        .map_err(|e| StoreError::Unavailable(sqlx::Error::Io(e)))?;
        Ok(MigrationLock(Some(file)))
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            file.unlock().ok();
        }
    }
}

/// A `BEGIN IMMEDIATE` transaction on a pooled connection that goes back to the pool only
/// after a successful COMMIT. Any other end (an error, a failed COMMIT, a dropped future)
/// closes the connection, which rolls the transaction back.
///
/// Why not sqlx's `Transaction`: when SQLite itself rolls a transaction back on an error
/// (SQLITE_FULL, SQLITE_IOERR…), sqlx's ROLLBACK on drop then fails, its transaction depth
/// stays at 1, and the connection returns to the pool unusable: every later
/// `begin_with` fails with "non-zero transaction depth" until the process restarts.
pub(crate) struct ImmediateTx {
    conn: PoolConnection<Sqlite>,
    committed: bool,
}

impl ImmediateTx {
    async fn begin(pool: &SqlitePool) -> Result<Self, StoreError> {
        let conn = pool.acquire().await?;
        let mut tx = ImmediateTx {
            conn,
            committed: false,
        };
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *tx.conn)
            .await?;
        Ok(tx)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        sqlx::query("COMMIT").execute(&mut *self.conn).await?;
        self.committed = true;
        Ok(())
    }
}

impl std::ops::Deref for ImmediateTx {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for ImmediateTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.conn
    }
}

impl Drop for ImmediateTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

const TICKET_REF_COLUMNS: &str = "t.id, t.code, t.status, t.tier, t.category, t.priority, t.assignee, \
     t.customer, t.customer_name, t.subject, t.language, t.reopen_count, \
     t.created_at, t.status_since, t.first_response_at, t.sla_used_ms, t.sla_since, t.sla_fired, \
     t.wait_ms, t.reminded_at, t.vendor_asked_at, t.vendor, t.vendor_ticket, \
     (SELECT json_group_array(address) FROM (SELECT address FROM ticket_participants p \
        WHERE p.ticket_id = t.id ORDER BY p.added_at, p.address)) AS participants";

/// A stored value that does not parse: the database was edited by hand or by a newer gateway.
fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn parsed<T: FromStr>(row: &SqliteRow, column: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e| corrupt(format!("{column} {text:?}: {e}")))
}

fn address(text: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse(text).map_err(corrupt)
}

fn ticket_ref(row: &SqliteRow) -> Result<TicketRef, StoreError> {
    let customer: String = row.try_get("customer")?;
    let assignee: Option<String> = row.try_get("assignee")?;
    Ok(TicketRef {
        id: row.try_get("id")?,
        code: ReferenceCode::from_stored(row.try_get("code")?),
        status: parsed(row, "status")?,
        tier: parsed(row, "tier")?,
        category: parsed(row, "category")?,
        priority: parsed(row, "priority")?,
        assignee: assignee.as_deref().map(address).transpose()?,
        customer: address(&customer)?,
        customer_name: row.try_get("customer_name")?,
        subject: row.try_get("subject")?,
        language: parsed(row, "language")?,
        reopen_count: row.try_get::<i64, _>("reopen_count")?.max(0) as u32,
        participants: serde_json::from_str::<Vec<String>>(
            &row.try_get::<String, _>("participants")?,
        )
        .map_err(corrupt)?
        .iter()
        .map(|a| address(a))
        .collect::<Result<_, _>>()?,
        clock: TicketClock {
            created_at: row.try_get("created_at")?,
            status_since: row
                .try_get::<Option<i64>, _>("status_since")?
                .unwrap_or(row.try_get("created_at")?),
            first_response_at: row.try_get("first_response_at")?,
            sla_used_ms: row.try_get("sla_used_ms")?,
            sla_since: row.try_get("sla_since")?,
            fired: crate::domain::Fired(row.try_get::<i64, _>("sla_fired")?.clamp(0, 255) as u8),
            wait_ms: row.try_get("wait_ms")?,
            reminded_at: row.try_get("reminded_at")?,
            vendor_asked_at: row.try_get("vendor_asked_at")?,
        },
        vendor: row.try_get("vendor")?,
        vendor_ticket: row.try_get("vendor_ticket")?,
    })
}

/// Open tickets per assignee and when each was last given one.
/// The roster's loads, from `agent_loads` (kept by the writer of plans): one look-up per
/// agent, whatever the number of tickets the desk ever had.
async fn agent_loads(
    conn: &mut SqliteConnection,
    agents: &[EmailAddress],
) -> Result<HashMap<EmailAddress, Load>, StoreError> {
    let mut loads: HashMap<EmailAddress, Load> = HashMap::new();
    if agents.is_empty() {
        return Ok(loads);
    }
    let names: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT assignee, open_tickets, last_assigned_at FROM agent_loads \
         WHERE assignee IN (SELECT value FROM json_each(?))",
    )
    .bind(json_list(&names))
    .fetch_all(&mut *conn)
    .await?;
    for (a, n, last) in rows {
        loads.insert(
            address(&a)?,
            Load {
                open_tickets: n.max(0) as u32,
                last_assigned_at: last,
            },
        );
    }
    Ok(loads)
}

fn earlier((row, ticket, outcome): (i64, Option<i64>, String)) -> Result<EarlierMail, StoreError> {
    Ok(EarlierMail {
        row,
        ticket,
        outcome: StoredOutcome::parse(&outcome)
            .ok_or_else(|| StoreError::Corrupt(format!("message {row}: outcome {outcome:?}")))?,
    })
}

fn earlier_row(row: &SqliteRow) -> Result<EarlierMail, StoreError> {
    earlier((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

impl SqliteTx {
    /// Runs `stmt`, after the writes that wait, and returns its rows.
    async fn rows(&mut self, stmt: Stmt) -> Result<Vec<SqliteRow>, StoreError> {
        self.waiting.fetch_all(&mut self.tx, stmt).await
    }

    async fn row(&mut self, stmt: Stmt) -> Result<Option<SqliteRow>, StoreError> {
        self.waiting.fetch_optional(&mut self.tx, stmt).await
    }

    /// Keeps a write whose result nobody reads for the next statement that must run.
    async fn later(&mut self, stmt: Stmt) -> Result<(), StoreError> {
        self.waiting.defer(&mut self.tx, stmt).await
    }

    /// The id the next row of `messages` or `outbox` gets. The transaction holds SQLite's
    /// write lock (`BEGIN IMMEDIATE`) from its start, so nobody else inserts meanwhile and
    /// the ids it picks are the ones SQLite would have picked.
    async fn next_id(&mut self, table: IdTable) -> Result<i64, StoreError> {
        let ids = match self.next_ids {
            Some(ids) => ids,
            None => {
                let row = self
                    .waiting
                    .fetch_one(
                        &mut self.tx,
                        Stmt::new(
                            "SELECT (SELECT COALESCE(MAX(id), 0) FROM messages), \
                             (SELECT COALESCE(MAX(id), 0) FROM outbox)",
                        ),
                    )
                    .await?;
                [row.try_get::<i64, _>(0)? + 1, row.try_get::<i64, _>(1)? + 1]
            }
        };
        let mut ids = ids;
        let id = ids[table as usize];
        ids[table as usize] += 1;
        self.next_ids = Some(ids);
        Ok(id)
    }
}

#[derive(Clone, Copy)]
enum IdTable {
    Messages = 0,
    Outbox = 1,
}

#[async_trait]
impl StoreTx for SqliteTx {
    async fn source_outcome(
        &mut self,
        source_key: &str,
    ) -> Result<Option<StoredOutcome>, StoreError> {
        let row = self
            .row(Stmt::new("SELECT outcome FROM messages WHERE source_key = ?").bind(source_key))
            .await?;
        Ok(match row {
            Some(row) => StoredOutcome::parse(&row.try_get::<String, _>(0)?),
            None => None,
        })
    }

    async fn message_id_seen(
        &mut self,
        message_id: &str,
        content: &MailContent<'_>,
    ) -> Result<MessageIdSeen, StoreError> {
        let row = self
            .waiting
            .fetch_one(
                &mut self.tx,
                Stmt::new(
                    "WITH same AS (SELECT id, ticket_id, outcome FROM messages \
                       WHERE message_id = ? AND direction = 'inbound' AND outcome <> 'duplicate' \
                       AND (content_sha256 = ? OR (content_sha256 IS NULL AND from_addr IS ? AND subject = ? AND body_text = ?)) \
                       ORDER BY id LIMIT 1) \
                     SELECT same.id, same.ticket_id, same.outcome, \
                       (SELECT id FROM messages WHERE message_id = ? AND outcome <> 'duplicate' ORDER BY id LIMIT 1) \
                     FROM (SELECT 1) LEFT JOIN same ON 1",
                )
                .bind(message_id)
                .bind(content.sha256)
                .bind(content.from)
                .bind(content.subject)
                .bind(content.body_text)
                .bind(message_id),
            )
            .await?;
        let same = match row.try_get::<Option<i64>, _>(0)? {
            Some(_) => Some(earlier_row(&row)?),
            None => None,
        };
        Ok(MessageIdSeen {
            same,
            in_use: row.try_get(3)?,
        })
    }

    async fn message_by_sha(&mut self, sha256: &str) -> Result<Option<EarlierMail>, StoreError> {
        let row = self
            .row(
                Stmt::new(
                    "SELECT id, ticket_id, outcome FROM messages WHERE raw_sha256 = ? AND direction = 'inbound' AND outcome <> 'duplicate' ORDER BY id LIMIT 1",
                )
                .bind(sha256),
            )
            .await?;
        row.as_ref().map(earlier_row).transpose()
    }

    async fn add_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
        role: ParticipantRole,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn is_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
    ) -> Result<bool, StoreError> {
        let row = self
            .row(
                Stmt::new("SELECT 1 FROM ticket_participants WHERE ticket_id = ? AND address = ?")
                    .bind(ticket)
                    .bind(address.as_str()),
            )
            .await?;
        Ok(row.is_some())
    }

    async fn ticket_by_code(
        &mut self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.code = ?");
        let row = self.row(Stmt::new(sql).bind(code.as_str())).await?;
        row.as_ref().map(ticket_ref).transpose()
    }

    async fn ticket_by_id(&mut self, id: TicketId) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.id = ?");
        let row = self.row(Stmt::new(sql).bind(id)).await?;
        row.as_ref().map(ticket_ref).transpose()
    }

    async fn ticket_by_message_ids(
        &mut self,
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
        let row = self.row(stmt).await?;
        row.as_ref().map(ticket_ref).transpose()
    }

    async fn ticket_by_thread_key(
        &mut self,
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
        let row = self.row(stmt).await?;
        row.as_ref().map(ticket_ref).transpose()
    }

    async fn insert_ticket(&mut self, t: NewTicket<'_>) -> Result<TicketId, StoreError> {
        // ON CONFLICT keeps a code collision from aborting the surrounding transaction.
        let row = self
            .row(
                Stmt::new(
                    "INSERT INTO tickets (code, status, tier, category, priority, customer, customer_name, subject, thread_key, language, follows_ticket_id, created_at, updated_at, status_since, sla_since) \
                     VALUES (?, 'new', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING RETURNING id",
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

    async fn set_ticket_status(
        &mut self,
        id: TicketId,
        status: TicketStatus,
        reopened: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn set_tier(&mut self, id: TicketId, tier: Tier, at: Millis) -> Result<(), StoreError> {
        self.later(
            Stmt::new("UPDATE tickets SET tier = ?, updated_at = ? WHERE id = ?")
                .bind(tier.as_str())
                .bind(at)
                .bind(id),
        )
        .await
    }

    async fn set_assignee(
        &mut self,
        id: TicketId,
        assignee: Option<&EmailAddress>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn agent_loads(
        &mut self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        self.waiting.flush(&mut self.tx).await?;
        agent_loads(&mut self.tx, agents).await
    }

    async fn adjust_load(
        &mut self,
        agent: &EmailAddress,
        open_delta: i64,
        assigned_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn set_priority(
        &mut self,
        id: TicketId,
        priority: Priority,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
            Stmt::new("UPDATE tickets SET priority = ?, updated_at = ? WHERE id = ?")
                .bind(priority.as_str())
                .bind(at)
                .bind(id),
        )
        .await
    }

    async fn set_category(
        &mut self,
        id: TicketId,
        category: &Category,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
            Stmt::new("UPDATE tickets SET category = ?, updated_at = ? WHERE id = ?")
                .bind(category.as_str())
                .bind(at)
                .bind(id),
        )
        .await
    }

    async fn automatic_mail_sent(
        &mut self,
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
        let row = self.waiting.fetch_one(&mut self.tx, stmt).await?;
        let (hour, day): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok((hour.max(0) as u32, day.max(0) as u32))
    }

    async fn mail_from_since(
        &mut self,
        sender: &EmailAddress,
        since: Millis,
        cap: u32,
    ) -> Result<u32, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE from_addr = ? AND received_at >= ? \
             AND direction = 'inbound' LIMIT {cap})"
        );
        let row = self
            .waiting
            .fetch_one(
                &mut self.tx,
                Stmt::new(sql).bind(sender.to_string()).bind(since),
            )
            .await?;
        let n: i64 = row.try_get(0)?;
        Ok(n.max(0) as u32)
    }

    async fn held_mail(&mut self, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
        let sql = format!(
            "SELECT o.id, o.ticket_id, t.code, o.kind, o.rcpt_to, o.held_for, o.held_status, \
                    t.status, o.created_at \
             FROM outbox o LEFT JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.status = 'held' ORDER BY o.id LIMIT {limit}"
        );
        let rows = self.waiting.fetch_all(&mut self.tx, Stmt::new(sql)).await?;
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

    async fn release_mail(&mut self, id: OutboxId, at: Millis) -> Result<(), StoreError> {
        self.later(
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

    async fn answered_release(
        &mut self,
        to: &EmailAddress,
        within: Millis,
    ) -> Result<bool, StoreError> {
        let row = self
            .waiting
            .fetch_one(
                &mut self.tx,
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

    async fn supersede_mail(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        self.later(
            Stmt::new(
                "UPDATE outbox SET status = 'superseded' \
                 WHERE status = 'held' AND id IN (SELECT value FROM json_each(?))",
            )
            .bind(ids),
        )
        .await
    }

    async fn set_satisfaction(
        &mut self,
        id: TicketId,
        score: u8,
        comment: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn set_first_response(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        self.later(
            Stmt::new(
                "UPDATE tickets SET first_response_at = COALESCE(first_response_at, ?) WHERE id = ?",
            )
            .bind(at)
            .bind(id),
        )
        .await
    }

    async fn set_timing(&mut self, id: TicketId, timing: &Timing) -> Result<(), StoreError> {
        let c = &timing.clock;
        self.later(
            Stmt::new(
                "UPDATE tickets SET status_since = ?, first_response_at = ?, sla_used_ms = ?, sla_since = ?, \
                 sla_fired = ?, wait_ms = ?, reminded_at = ?, vendor_asked_at = ?, first_response_due = ?, \
                 resolution_due = ?, due_at = ?, timer_owner = NULL, timer_lease_until = NULL WHERE id = ?",
            )
            .bind(c.status_since)
            .bind(c.first_response_at)
            .bind(c.sla_used_ms)
            .bind(c.sla_since)
            .bind(i64::from(c.fired.0))
            .bind(c.wait_ms)
            .bind(c.reminded_at)
            .bind(c.vendor_asked_at)
            .bind(timing.dues.first_response)
            .bind(timing.dues.resolution)
            .bind(timing.due_at)
            .bind(id),
        )
        .await
    }

    async fn set_vendor(
        &mut self,
        id: TicketId,
        vendor: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn set_vendor_ticket(&mut self, id: TicketId, number: &str) -> Result<(), StoreError> {
        self.later(
            Stmt::new("UPDATE tickets SET vendor_ticket = ? WHERE id = ?")
                .bind(number)
                .bind(id),
        )
        .await
    }

    async fn ticket_by_vendor_ticket(
        &mut self,
        vendor: &str,
        number: &str,
    ) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_REF_COLUMNS} FROM tickets t WHERE t.vendor = ? AND t.vendor_ticket = ? \
             ORDER BY t.id DESC LIMIT 1"
        );
        let row = self.row(Stmt::new(sql).bind(vendor).bind(number)).await?;
        row.as_ref().map(ticket_ref).transpose()
    }

    async fn participants(&mut self, id: TicketId) -> Result<Vec<EmailAddress>, StoreError> {
        let rows = self
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

    async fn thread(
        &mut self,
        ticket: TicketId,
        keep: for<'e> fn(&'e ThreadEntry) -> bool,
    ) -> Result<Vec<ThreadEntry>, StoreError> {
        let rows = self
            .rows(
                Stmt::new(
                    "SELECT id, from_addr, from_name, received_at, reply_text, outcome_detail, \
                     direction, outcome, machine_kind IS NOT NULL FROM messages \
                     WHERE ticket_id = ? ORDER BY id",
                )
                .bind(ticket),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get(0)?;
            let mut entry = ThreadEntry {
                from: row.try_get(1)?,
                from_name: row.try_get(2)?,
                detail: row.try_get(5)?,
                direction: if row.try_get::<String, _>(6)? == Direction::Outbound.as_str() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                },
                outcome: StoredOutcome::parse(&row.try_get::<String, _>(7)?)
                    .ok_or_else(|| StoreError::Corrupt("unknown message outcome".into()))?,
                machine: row.try_get(8)?,
                at: row.try_get(3)?,
                text: row.try_get(4)?,
                attachments: Vec::new(),
            };
            if !keep(&entry) {
                continue;
            }
            entry.attachments = sqlx::query_as::<_, (Option<String>, String, i64)>(
                "SELECT filename, content_type, size FROM attachments WHERE message_id = ? ORDER BY id",
            )
            .bind(id)
            .fetch_all(&mut *self.tx)
            .await?
            .into_iter()
            .map(|(filename, content_type, size)| AttachmentView {
                filename,
                content_type,
                size,
            })
            .collect();
            out.push(entry);
        }
        Ok(out)
    }

    async fn thread_message_ids(
        &mut self,
        ticket: TicketId,
        with: &EmailAddress,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .rows(
                Stmt::new(
                    "SELECT message_id FROM messages m WHERE ticket_id = ? AND message_id IS NOT NULL \
                     AND outcome <> 'duplicate' AND ( \
                       (direction = 'inbound' AND from_addr = ?) \
                       OR (direction = 'outbound' AND EXISTS (SELECT 1 FROM json_each(m.to_addrs) WHERE value = ?))) \
                     ORDER BY id DESC LIMIT 10",
                )
                .bind(ticket)
                .bind(with.as_str())
                .bind(with.as_str()),
            )
            .await?;
        let mut ids = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<Vec<_>, _>>()?;
        ids.reverse();
        Ok(ids)
    }

    async fn touch_ticket(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        self.later(
            Stmt::new("UPDATE tickets SET updated_at = ? WHERE id = ?")
                .bind(at)
                .bind(id),
        )
        .await
    }

    async fn insert_message(&mut self, m: NewMessage<'_>) -> Result<MessageRowId, StoreError> {
        let id = self.next_id(IdTable::Messages).await?;
        self.later(
            Stmt::new(
                "INSERT INTO messages (id, ticket_id, direction, outcome, outcome_detail, source_key, message_id, raw_sha256, raw, \
                 from_addr, from_name, reply_to, to_addrs, cc_addrs, subject, in_reply_to, refs, sent_date, body_text, reply_text, \
                 quoted_text, language, machine_kind, received_at, content_sha256, from_non_participant, signature) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(m.ticket)
            .bind(m.direction.as_str())
            .bind(m.outcome.as_str())
            .bind(m.outcome_detail)
            .bind(m.source_key)
            .bind(m.message_id)
            .bind(m.raw_sha256)
            .bind(m.raw)
            .bind(m.from_addr)
            .bind(m.from_name)
            .bind(m.reply_to)
            .bind(json_list(&m.to))
            .bind(json_list(&m.cc))
            .bind(m.subject)
            .bind(json_list(m.in_reply_to))
            .bind(json_list(m.references))
            .bind(m.sent_date)
            .bind(m.body_text)
            .bind(m.reply_text)
            .bind(m.quoted_text)
            .bind(m.language.map(|l| l.as_str()))
            .bind(m.machine_kind)
            .bind(m.at)
            .bind(m.content_sha256)
            .bind(m.from_non_participant)
            .bind(m.signature),
        )
        .await?;
        Ok(id)
    }

    async fn insert_attachment(
        &mut self,
        message: MessageRowId,
        a: NewAttachment<'_>,
    ) -> Result<(), StoreError> {
        self.later(
            Stmt::new(
                "INSERT INTO attachments (message_id, filename, content_type, size, content, \
                 body_start, body_end, body_encoding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(message)
            .bind(a.filename)
            .bind(a.content_type)
            .bind(a.content.len() as i64)
            .bind(a.raw_body.is_none().then_some(a.content))
            .bind(a.raw_body.map(|r| r.start as i64))
            .bind(a.raw_body.map(|r| r.end as i64))
            .bind(a.raw_body.map(|r| r.encoding.as_str())),
        )
        .await
    }

    async fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<(), StoreError> {
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
            self.later(stmt).await?;
        }
        Ok(())
    }

    async fn enqueue(&mut self, o: NewOutgoing<'_>) -> Result<OutboxId, StoreError> {
        let id = self.next_id(IdTable::Outbox).await?;
        self.later(
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
            .bind(if o.hold.is_some() { "held" } else { "pending" })
            .bind(o.at)
            .bind(o.at)
            .bind(
                o.hold
                    .as_ref()
                    .and_then(|h| h.flood_from.as_ref())
                    .map(|a| a.to_string()),
            )
            .bind(
                o.hold
                    .as_ref()
                    .and_then(|h| h.ticket_status)
                    .map(|s| s.as_str()),
            ),
        )
        .await?;
        Ok(id)
    }

    async fn set_checkpoint(
        &mut self,
        mailbox: &str,
        c: Checkpoint,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.later(
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

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.waiting.flush(&mut self.tx).await?;
        self.tx.commit().await?;
        // Committed into a file deleted meanwhile is committed into nothing: the caller
        // must not move the mail out of its source.
        match &self.file {
            Some((path, identity)) if file_identity(path) != Some(*identity) => {
                Err(StoreError::Gone(path.display().to_string()))
            }
            _ => Ok(()),
        }
    }
}

fn summary(row: &SqliteRow) -> Result<TicketSummary, StoreError> {
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
    })
}

const SUMMARY_SELECT: &str = "SELECT t.code, t.status, t.tier, t.customer, t.customer_name, t.subject, t.language, \
     t.category, t.priority, t.assignee, t.reopen_count, t.created_at, t.updated_at, \
     t.satisfaction, t.satisfaction_comment, t.first_response_at, \
     t.first_response_due, t.resolution_due, t.sla_since, t.vendor, t.vendor_ticket, \
     (SELECT f.code FROM tickets f WHERE f.id = t.follows_ticket_id) AS follows, \
     t.sla_fired, \
     (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count, \
     (SELECT json_group_array(address) FROM (SELECT address FROM ticket_participants p \
        WHERE p.ticket_id = t.id ORDER BY p.added_at, p.address)) AS participants \
     FROM tickets t";

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let tx = self.begin_immediate().await?;
        Ok(Box::new(SqliteTx {
            tx,
            waiting: Script::default(),
            next_ids: None,
            file: self.file.clone(),
        }))
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.check_file()
    }

    async fn checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT uid_validity, last_uid FROM mailbox_checkpoints WHERE mailbox = ?",
        )
        .bind(mailbox)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(v, u)| Checkpoint {
            uid_validity: v as u32,
            last_uid: u as u32,
        }))
    }

    async fn source_outcomes(
        &self,
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
            for (key, outcome) in query.fetch_all(&self.pool).await? {
                if let Some(o) = StoredOutcome::parse(&outcome) {
                    out.push((key, o));
                }
            }
        }
        Ok(out)
    }

    async fn imap_copied(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for chunk in keys.chunks(500) {
            let placeholders = vec!["?"; chunk.len()].join(", ");
            let sql =
                format!("SELECT source_key FROM imap_copies WHERE source_key IN ({placeholders})");
            let mut query = sqlx::query_as::<_, (String,)>(AssertSqlSafe(sql));
            for k in chunk {
                query = query.bind(k.as_str());
            }
            out.extend(query.fetch_all(&self.pool).await?.into_iter().map(|(k,)| k));
        }
        Ok(out)
    }

    async fn record_imap_copies(
        &self,
        keys: &[String],
        folder: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
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

    async fn renew_lease(
        &self,
        ids: &[OutboxId],
        owner: &str,
        lease_until: Millis,
    ) -> Result<u64, StoreError> {
        let mut renewed = 0;
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
            renewed += query.execute(&self.pool).await?.rows_affected();
        }
        Ok(renewed)
    }

    async fn claim_outbox(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut tx = self.begin_immediate().await?;
        // The limit is written into the SQL: SQLite compiles a bound LIMIT afresh at every run.
        let sql = format!(
            "UPDATE outbox SET status = 'sending', lease_until = ?, lease_owner = ?, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= ?) \
                          OR (status = 'sending' AND lease_until < ?) ORDER BY next_attempt_at, id LIMIT {limit}) \
             RETURNING id, mail_from, rcpt_to, attempts, message_row"
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
        let raws: HashMap<i64, Vec<u8>> = sqlx::query_as(
            "SELECT id, raw FROM messages WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(wanted)
        .fetch_all(&self.pool)
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

    async fn mark_sent(&self, ids: &[OutboxId], at: Millis) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_immediate().await?;
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET status = 'sent', sent_at = ?, lease_until = NULL, lease_owner = NULL, last_error = NULL WHERE id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
                 SELECT ticket_id, message_row, 'mail_sent', 'gateway', 'gateway', json_object('outbox', id, 'kind', kind), ? \
                 FROM outbox WHERE id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_retry(
        &self,
        id: OutboxId,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_until = NULL, lease_owner = NULL, last_error = ? WHERE id = ?")
            .bind(next_attempt_at)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn mark_failed(&self, id: OutboxId, error: &str, at: Millis) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', lease_until = NULL, lease_owner = NULL, last_error = ? WHERE id = ?",
        )
        .bind(error)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO events (ticket_id, message_row, kind, actor_kind, actor, detail, at) \
             SELECT ticket_id, message_row, 'mail_failed', 'gateway', 'gateway', json_object('outbox', id, 'error', ?), ? FROM outbox WHERE id = ?",
        )
        .bind(error)
        .bind(at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
        let (count, next): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END) \
             FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((count, next))
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
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
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT MIN(due_at) FROM tickets WHERE due_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(at)
    }

    async fn due_tickets(&self, now: Millis, limit: u32) -> Result<Vec<TicketId>, StoreError> {
        let sql =
            format!("SELECT id FROM tickets WHERE due_at <= ? ORDER BY due_at, id LIMIT {limit}");
        let ids: Vec<(i64,)> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    async fn claim_due(
        &self,
        now: Millis,
        lease_now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<TicketId>, StoreError> {
        let mut tx = self.begin_immediate().await?;
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

    async fn agent_loads(
        &self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        agent_loads(&mut conn, agents).await
    }

    async fn ticket_detail(
        &self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketDetail>, StoreError> {
        let sql = format!("{SUMMARY_SELECT} WHERE t.code = ?");
        let Some(row) = sqlx::query(AssertSqlSafe(sql))
            .bind(code.as_str())
            .fetch_optional(&self.pool)
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
        .fetch_all(&self.pool)
        .await?;
        let mut messages = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let attachments = sqlx::query_as::<_, (Option<String>, String, i64)>(
                "SELECT filename, content_type, size FROM attachments WHERE message_id = ? ORDER BY id",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(filename, content_type, size)| AttachmentView { filename, content_type, size })
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
        .fetch_all(&self.pool)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_database_is_a_temporary_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("busy.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        let _held = store.begin_immediate().await.unwrap();
        let impatient = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::from_str(&url)
                    .unwrap()
                    .busy_timeout(Duration::ZERO),
            )
            .await
            .unwrap();
        let err = sqlx::query("BEGIN IMMEDIATE")
            .execute(&impatient)
            .await
            .unwrap_err();
        let err = StoreError::from(err);
        assert!(err.is_temporary(), "{err}");
        assert!(err.at("busy.db").to_string().contains("busy.db"));
    }

    #[tokio::test]
    async fn dropped_transactions_roll_back_and_leave_the_pool_usable() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("t.db").display());
        let store = SqliteStore::open(&url).await.unwrap();
        for _ in 0..8 {
            let mut tx = store.begin().await.unwrap();
            // Work done, then the transaction dropped without a commit (an error path).
            let write = tx.set_checkpoint(
                "m",
                Checkpoint {
                    uid_validity: 1,
                    last_uid: 1,
                },
                0,
            );
            write.await.unwrap();
            drop(tx);
        }
        // Every connection of the pool still begins a fresh transaction.
        for _ in 0..8 {
            let tx = store.begin().await.unwrap();
            tx.commit().await.unwrap();
        }
        assert_eq!(
            store.checkpoint("m").await.unwrap(),
            None,
            "dropped work rolled back"
        );
    }
}
