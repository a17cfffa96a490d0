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

use super::rows::{BREACHED, address, backlog_line, corrupt, earlier, json_list, ticket_ref};
use super::script::{Script, Stmt};
use super::*;

mod backup;
mod budget;
mod dashboard;
mod erasure;
mod mailbox;
mod messages;
mod outbox;
mod schedule;
mod stats;
mod tickets;
mod views;

pub use backup::{BackupCounts, restore};

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
            .map_err(StoreError::unavailable)?
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
            .map_err(StoreError::unavailable)?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .map_err(StoreError::unavailable)?;
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
        ImmediateTx::begin(&self.pool, Lock::Write).await
    }

    fn tx(&self, tx: ImmediateTx) -> Box<dyn StoreTx> {
        Box::new(SqliteTx {
            tx,
            waiting: Script::default(),
            next_ids: None,
            file: self.file.clone(),
        })
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
        .map_err(StoreError::unavailable)?
        .map_err(StoreError::unavailable)?;
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
    lock: Lock,
    committed: bool,
}

/// What a transaction may do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// `BEGIN IMMEDIATE`: the database's one write lock, from the start.
    Write,
    /// A deferred read under `query_only`: a snapshot of what is committed, no lock held
    /// against writers (WAL), any write refused by SQLite itself.
    Read,
}

impl ImmediateTx {
    async fn begin(pool: &SqlitePool, lock: Lock) -> Result<Self, StoreError> {
        let conn = pool.acquire().await?;
        let mut tx = ImmediateTx {
            conn,
            lock,
            committed: false,
        };
        let begin = match lock {
            Lock::Write => "BEGIN IMMEDIATE",
            Lock::Read => "PRAGMA query_only = ON; BEGIN DEFERRED",
        };
        sqlx::raw_sql(begin).execute(&mut *tx.conn).await?;
        Ok(tx)
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        let end = match self.lock {
            Lock::Write => "COMMIT",
            // The connection goes back to the pool able to write again.
            Lock::Read => "COMMIT; PRAGMA query_only = OFF",
        };
        sqlx::raw_sql(end).execute(&mut *self.conn).await?;
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
     t.suggested_articles, t.hold_until, t.hold_tier, \
     (SELECT json_group_array(address) FROM (SELECT address FROM ticket_participants p \
        WHERE p.ticket_id = t.id ORDER BY p.added_at, p.address)) AS participants";

/// The statistics' and backups' own rusqlite connection failed.
fn read_error(e: rusqlite::Error) -> StoreError {
    StoreError::Read(Box::new(e))
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

fn earlier_row(row: &SqliteRow) -> Result<EarlierMail, StoreError> {
    earlier((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
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
        messages::source_outcome(self, source_key).await
    }

    async fn message_id_seen(
        &mut self,
        message_id: &str,
        content: &MailContent<'_>,
    ) -> Result<MessageIdSeen, StoreError> {
        messages::message_id_seen(self, message_id, content).await
    }

    async fn message_by_sha(&mut self, sha256: &str) -> Result<Option<EarlierMail>, StoreError> {
        messages::message_by_sha(self, sha256).await
    }

    async fn add_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
        role: ParticipantRole,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::add_participant(self, ticket, address, role, at).await
    }

    async fn is_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
    ) -> Result<bool, StoreError> {
        tickets::is_participant(self, ticket, address).await
    }

    async fn ticket_by_code(
        &mut self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketRef>, StoreError> {
        tickets::ticket_by_code(self, code).await
    }

    async fn ticket_by_id(&mut self, id: TicketId) -> Result<Option<TicketRef>, StoreError> {
        tickets::ticket_by_id(self, id).await
    }

    async fn ticket_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Option<TicketRef>, StoreError> {
        tickets::ticket_by_message_ids(self, ids).await
    }

    async fn ticket_by_thread_key(
        &mut self,
        customer: &EmailAddress,
        key: &str,
        since: Millis,
    ) -> Result<Option<TicketRef>, StoreError> {
        tickets::ticket_by_thread_key(self, customer, key, since).await
    }

    async fn insert_ticket(&mut self, t: NewTicket<'_>) -> Result<TicketId, StoreError> {
        tickets::insert_ticket(self, t).await
    }

    async fn set_ticket_status(
        &mut self,
        id: TicketId,
        status: TicketStatus,
        reopened: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_ticket_status(self, id, status, reopened, at).await
    }

    async fn set_tier(&mut self, id: TicketId, tier: Tier, at: Millis) -> Result<(), StoreError> {
        tickets::set_tier(self, id, tier, at).await
    }

    async fn set_assignee(
        &mut self,
        id: TicketId,
        assignee: Option<&EmailAddress>,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_assignee(self, id, assignee, at).await
    }

    async fn agent_loads(
        &mut self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        tickets::agent_loads(self, agents).await
    }

    async fn adjust_load(
        &mut self,
        agent: &EmailAddress,
        open_delta: i64,
        assigned_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        tickets::adjust_load(self, agent, open_delta, assigned_at).await
    }

    async fn set_priority(
        &mut self,
        id: TicketId,
        priority: Priority,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_priority(self, id, priority, at).await
    }

    async fn set_category(
        &mut self,
        id: TicketId,
        category: &Category,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_category(self, id, category, at).await
    }

    async fn automatic_mail_sent(
        &mut self,
        to: &EmailAddress,
        kinds: &[&str],
        (hour_ago, day_ago, now): (Millis, Millis, Millis),
        (hour_cap, day_cap): (u32, u32),
    ) -> Result<(u32, u32), StoreError> {
        budget::automatic_mail_sent(
            self,
            to,
            kinds,
            (hour_ago, day_ago, now),
            (hour_cap, day_cap),
        )
        .await
    }

    async fn mail_from_since(
        &mut self,
        sender: &EmailAddress,
        since: Millis,
        cap: u32,
    ) -> Result<u32, StoreError> {
        budget::mail_from_since(self, sender, since, cap).await
    }

    async fn held_mail(&mut self, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
        budget::held_mail(self, limit).await
    }

    async fn release_mail(&mut self, id: OutboxId, at: Millis) -> Result<(), StoreError> {
        budget::release_mail(self, id, at).await
    }

    async fn answered_release(
        &mut self,
        to: &EmailAddress,
        within: Millis,
    ) -> Result<bool, StoreError> {
        budget::answered_release(self, to, within).await
    }

    async fn supersede_mail(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        budget::supersede_mail(self, ids).await
    }

    async fn claim_report(
        &mut self,
        kind: &str,
        period: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let row = self
            .row(
                Stmt::new(
                    "INSERT INTO reports (kind, period, queued_at) VALUES (?, ?, ?) \
                     ON CONFLICT (kind, period) DO NOTHING RETURNING queued_at",
                )
                .bind(kind.to_string())
                .bind(period.to_string())
                .bind(at),
            )
            .await?;
        Ok(row.is_some())
    }

    async fn set_satisfaction(
        &mut self,
        id: TicketId,
        score: u8,
        comment: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_satisfaction(self, id, score, comment, at).await
    }

    async fn set_first_response(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        tickets::set_first_response(self, id, at).await
    }

    async fn set_timing(&mut self, id: TicketId, timing: &Timing) -> Result<(), StoreError> {
        tickets::set_timing(self, id, timing).await
    }

    async fn set_vendor(
        &mut self,
        id: TicketId,
        vendor: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_vendor(self, id, vendor, at).await
    }

    async fn set_vendor_ticket(&mut self, id: TicketId, number: &str) -> Result<(), StoreError> {
        tickets::set_vendor_ticket(self, id, number).await
    }

    async fn ticket_by_vendor_ticket(
        &mut self,
        vendor: &str,
        number: &str,
    ) -> Result<Option<TicketRef>, StoreError> {
        tickets::ticket_by_vendor_ticket(self, vendor, number).await
    }

    async fn participants(&mut self, id: TicketId) -> Result<Vec<EmailAddress>, StoreError> {
        tickets::participants(self, id).await
    }

    async fn thread(
        &mut self,
        ticket: TicketId,
        keep: for<'e> fn(&'e ThreadEntry) -> bool,
    ) -> Result<Vec<ThreadEntry>, StoreError> {
        messages::thread(self, ticket, keep).await
    }

    async fn exchanged(&mut self, ticket: TicketId) -> Result<Vec<Exchanged>, StoreError> {
        messages::exchanged(self, ticket).await
    }

    async fn touch_ticket(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        tickets::touch_ticket(self, id, at).await
    }

    async fn insert_message(&mut self, m: NewMessage<'_>) -> Result<MessageRowId, StoreError> {
        messages::insert_message(self, m).await
    }

    async fn insert_attachment(
        &mut self,
        message: MessageRowId,
        a: NewAttachment<'_>,
    ) -> Result<(), StoreError> {
        messages::insert_attachment(self, message, a).await
    }

    async fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<(), StoreError> {
        tickets::insert_events(self, events).await
    }

    async fn enqueue(&mut self, o: NewOutgoing<'_>) -> Result<OutboxId, StoreError> {
        outbox::enqueue(self, o).await
    }

    async fn set_checkpoint(
        &mut self,
        mailbox: &str,
        c: Checkpoint,
        at: Millis,
    ) -> Result<(), StoreError> {
        mailbox::set_checkpoint(self, mailbox, c, at).await
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

#[async_trait]
impl Store for SqliteStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(self.tx(self.begin_immediate().await?))
    }

    async fn snapshot(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        self.check_file()?;
        Ok(self.tx(ImmediateTx::begin(&self.pool, Lock::Read).await?))
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.check_file()
    }

    async fn checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>, StoreError> {
        mailbox::checkpoint(self, mailbox).await
    }

    async fn source_outcomes(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, StoredOutcome)>, StoreError> {
        mailbox::source_outcomes(self, keys).await
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        mailbox::take_lease(self, name, holder, ttl_ms, now).await
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        mailbox::release_lease(self, name, holder).await
    }

    async fn leases(&self) -> Result<Vec<LeaseView>, StoreError> {
        mailbox::leases(self).await
    }

    async fn imap_copied(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        mailbox::imap_copied(self, keys).await
    }

    async fn record_imap_copies(
        &self,
        keys: &[String],
        folder: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        mailbox::record_imap_copies(self, keys, folder, at).await
    }

    async fn renew_lease(
        &self,
        ids: &[OutboxId],
        owner: &str,
        lease_until: Millis,
    ) -> Result<Renewal, StoreError> {
        outbox::renew_lease(self, ids, owner, lease_until).await
    }

    async fn claim_outbox(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        outbox::claim_outbox(self, now, lease_until, limit, owner).await
    }

    async fn mark_sent(&self, rows: &[Marked], at: Millis) -> Result<(), StoreError> {
        outbox::mark_sent(self, rows, at).await
    }

    async fn mark_retry(
        &self,
        id: OutboxId,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError> {
        outbox::mark_retry(self, id, next_attempt_at, error).await
    }

    async fn mark_failed(&self, row: &Marked, error: &str, at: Millis) -> Result<(), StoreError> {
        outbox::mark_failed(self, row, error, at).await
    }

    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
        outbox::outbox_backlog(self).await
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        views::list_tickets(self, filter).await
    }

    async fn count_tickets(&self, filter: &TicketFilter) -> Result<i64, StoreError> {
        views::count_tickets(self, filter).await
    }

    async fn overview(&self, now: Millis, due_before: Millis) -> Result<Overview, StoreError> {
        dashboard::overview(self, now, due_before).await
    }

    async fn desk_gauges(&self) -> Result<DeskGauges, StoreError> {
        dashboard::desk_gauges(self).await
    }

    async fn probe_write(&self, instance: &str, at: Millis) -> Result<(), StoreError> {
        dashboard::probe_write(self, instance, at).await
    }

    async fn forget_person(
        &self,
        address: &EmailAddress,
        by: &str,
        at: Millis,
        dry_run: bool,
    ) -> Result<ErasureReport, StoreError> {
        erasure::forget(self, address.as_str(), by, at, dry_run).await
    }

    async fn purge_closed_tickets(
        &self,
        before: Millis,
        at: Millis,
    ) -> Result<ErasureReport, StoreError> {
        erasure::purge_closed(self, before, at).await
    }

    async fn purge_raw_mail(
        &self,
        before: Millis,
        at: Millis,
    ) -> Result<ErasureReport, StoreError> {
        erasure::purge_raw_mail(self, before, at).await
    }

    async fn backup_into(&self, dest: &std::path::Path) -> Result<BackupCounts, StoreError> {
        backup::backup(self, dest).await
    }

    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        schedule::next_due(self).await
    }

    async fn due_tickets(&self, now: Millis, limit: u32) -> Result<Vec<TicketId>, StoreError> {
        schedule::due_tickets(self, now, limit).await
    }

    async fn claim_due(
        &self,
        now: Millis,
        lease_now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<TicketId>, StoreError> {
        schedule::claim_due(self, now, lease_now, lease_until, limit, owner).await
    }

    async fn agent_loads(
        &self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        tickets::agent_loads_now(self, agents).await
    }

    async fn ticket_detail(
        &self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketDetail>, StoreError> {
        views::ticket_detail(self, code).await
    }

    async fn stats_input(
        &self,
        since: Millis,
        until: Millis,
        counted: &[EventKind],
        replayed: &[EventKind],
    ) -> Result<StatsInput, StoreError> {
        stats::stats_input(self, since, until, counted, replayed).await
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
