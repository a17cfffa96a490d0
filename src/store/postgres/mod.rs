//! The shared backend: PostgreSQL, for several gateways working one desk.
//!
//! Every write transaction locks the rows of the tickets it reads (`SELECT … FOR UPDATE`),
//! so two gateways acting on one ticket at once take turns: the second reads the ticket as
//! the first left it, and decides on that. Work handed out to one gateway at a time (mail to
//! send, timers due) is claimed with `FOR UPDATE SKIP LOCKED` and a lease, so gateways
//! never wait for each other there, and a gateway that dies leaves its work to the others
//! once its lease runs out. Moments are `timestamptz`; the SQL converts at the edge with
//! `hd_ts` (milliseconds to a moment) and `hd_ms` (back).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row};

use super::rows::{address, json_list, ticket_ref};
use super::*;

mod erasure;
mod messages;
mod outbox;
mod reads;
mod stats;
mod tickets;

/// Where a gateway says it queued mail (every gateway's outbox wakes up).
const OUTBOX_CHANNEL: &str = "helpdesk_outbox";
/// Where a gateway says when a ticket's timed work falls due (payload: ms).
const TIMERS_CHANNEL: &str = "helpdesk_timers";

/// The columns of a [`TicketRef`], from `tickets t`.
const TICKET_REF_COLUMNS: &str = "t.id, t.code, t.status, t.tier, t.category, t.priority, t.assignee, \
     t.customer, t.customer_name, t.subject, t.language, t.reopen_count::bigint AS reopen_count, \
     hd_ms(t.created_at) AS created_at, hd_ms(t.status_since) AS status_since, \
     hd_ms(t.first_response_at) AS first_response_at, t.sla_used_ms, hd_ms(t.sla_since) AS sla_since, \
     t.sla_fired::bigint AS sla_fired, t.wait_ms, hd_ms(t.reminded_at) AS reminded_at, \
     hd_ms(t.vendor_asked_at) AS vendor_asked_at, t.vendor, t.vendor_ticket, \
     t.suggested_articles::text AS suggested_articles, hd_ms(t.hold_until) AS hold_until, t.hold_tier, \
     (SELECT COALESCE(json_agg(p.address ORDER BY p.added_at, p.address), '[]')::text \
        FROM ticket_participants p WHERE p.ticket_id = t.id) AS participants";

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` and brings its schema up to date. Migrations run
    /// under a PostgreSQL advisory lock (sqlx's migrator takes one), so gateways starting
    /// together apply each migration once.
    pub async fn open(url: &str, password: Option<&SecretString>) -> Result<Self, StoreError> {
        let store = Self::connect(url, password).await?;
        sqlx::migrate!("./migrations/postgres")
            .run(&store.pool)
            .await
            .map_err(|e| match e {
                sqlx::migrate::MigrateError::Execute(e) => StoreError::from(e),
                other => StoreError::unavailable(other),
            })?;
        Ok(store)
    }

    /// Connects only to a desk that exists (its schema is there): what commands that only
    /// read use, so a mistyped database name is reported rather than filled with tables.
    pub async fn open_existing(
        url: &str,
        password: Option<&SecretString>,
    ) -> Result<Self, StoreError> {
        let store = Self::connect(url, password).await?;
        let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass('tickets') IS NOT NULL")
            .fetch_one(&store.pool)
            .await?;
        if !exists {
            return Err(StoreError::NoDatabase(url.to_string()));
        }
        Self::open(url, password).await
    }

    async fn connect(url: &str, password: Option<&SecretString>) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(StoreError::unavailable)?
            .application_name("helpdesk");
        if let Some(password) = password {
            options = options.password(password.expose_secret());
        }
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(PgStore { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> Result<PgTx, StoreError> {
        Ok(PgTx {
            tx: self.pool.begin().await?,
            write: true,
        })
    }
}

/// A transaction. A write transaction locks each ticket it reads until it ends; a
/// snapshot (repeatable read, read only) locks nothing.
struct PgTx {
    tx: sqlx::Transaction<'static, Postgres>,
    write: bool,
}

impl PgTx {
    /// `FOR UPDATE OF t` in a write transaction: the ticket read is the ticket written.
    fn lock(&self) -> &'static str {
        if self.write { " FOR UPDATE OF t" } else { "" }
    }

    async fn ticket_where(
        &mut self,
        from_where: &str,
        bind: impl FnOnce(
            sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
        ) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<Option<TicketRef>, StoreError> {
        let sql = format!("SELECT {TICKET_REF_COLUMNS} {from_where}{}", self.lock());
        let row = bind(sqlx::query(AssertSqlSafe(sql)))
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(ticket_ref).transpose()
    }
}

#[async_trait]
impl StoreTx for PgTx {
    async fn source_outcome(
        &mut self,
        source_key: &str,
    ) -> Result<Option<StoredOutcome>, StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT outcome FROM messages WHERE source_key = $1")
                .bind(source_key)
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.and_then(|(o,)| StoredOutcome::parse(&o)))
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
        sqlx::query(
            "INSERT INTO ticket_participants (ticket_id, address, role, added_at) \
             VALUES ($1, $2, $3, hd_ts($4)) ON CONFLICT (ticket_id, address) DO NOTHING",
        )
        .bind(ticket)
        .bind(address.as_str())
        .bind(role.as_str())
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn is_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
    ) -> Result<bool, StoreError> {
        let row =
            sqlx::query("SELECT 1 FROM ticket_participants WHERE ticket_id = $1 AND address = $2")
                .bind(ticket)
                .bind(address.as_str())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(row.is_some())
    }

    async fn ticket_by_code(
        &mut self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketRef>, StoreError> {
        let code = code.as_str().to_string();
        self.ticket_where("FROM tickets t WHERE t.code = $1", |q| q.bind(code))
            .await
    }

    async fn ticket_by_id(&mut self, id: TicketId) -> Result<Option<TicketRef>, StoreError> {
        self.ticket_where("FROM tickets t WHERE t.id = $1", |q| q.bind(id))
            .await
    }

    async fn ticket_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Option<TicketRef>, StoreError> {
        if ids.is_empty() {
            return Ok(None);
        }
        let ids: Vec<String> = ids.iter().map(|i| i.replace('\0', "\u{FFFD}")).collect();
        self.ticket_where(
            "FROM tickets t WHERE t.id = (SELECT m.ticket_id FROM messages m \
             WHERE m.message_id = ANY($1) AND m.ticket_id IS NOT NULL ORDER BY m.id DESC LIMIT 1)",
            |q| q.bind(ids),
        )
        .await
    }

    async fn ticket_by_thread_key(
        &mut self,
        customer: &EmailAddress,
        key: &str,
        since: Millis,
    ) -> Result<Option<TicketRef>, StoreError> {
        let joinable: Vec<String> = TicketStatus::ALL
            .into_iter()
            .filter(|s| s.joins_by_subject())
            .map(|s| s.as_str().to_string())
            .collect();
        let (customer, key) = (customer.to_string(), key.replace('\0', "\u{FFFD}"));
        self.ticket_where(
            "FROM tickets t WHERE t.id = (SELECT id FROM tickets WHERE customer = $1 \
             AND thread_key = $2 AND updated_at >= hd_ts($3) AND status = ANY($4) \
             ORDER BY updated_at DESC LIMIT 1)",
            |q| q.bind(customer).bind(key).bind(since).bind(joinable),
        )
        .await
    }

    async fn insert_ticket(&mut self, t: NewTicket<'_>) -> Result<TicketId, StoreError> {
        tickets::insert_ticket(self, t).await
    }

    async fn set_tier(&mut self, id: TicketId, tier: Tier, at: Millis) -> Result<(), StoreError> {
        tickets::set_text(self, id, "tier", tier.as_str(), Some(at)).await
    }

    async fn set_assignee(
        &mut self,
        id: TicketId,
        assignee: Option<&EmailAddress>,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET assignee = $1, \
             assigned_at = CASE WHEN $1::text IS NULL THEN assigned_at ELSE hd_ts($2) END, \
             updated_at = hd_ts($2) WHERE id = $3",
        )
        .bind(assignee.map(|a| a.as_str()))
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_priority(
        &mut self,
        id: TicketId,
        priority: Priority,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_text(self, id, "priority", priority.as_str(), Some(at)).await
    }

    async fn set_category(
        &mut self,
        id: TicketId,
        category: &Category,
        at: Millis,
    ) -> Result<(), StoreError> {
        tickets::set_text(self, id, "category", category.as_str(), Some(at)).await
    }

    async fn set_satisfaction(
        &mut self,
        id: TicketId,
        score: u8,
        comment: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET satisfaction = $1, satisfaction_comment = $2, \
             updated_at = hd_ts($3) WHERE id = $4",
        )
        .bind(i16::from(score))
        .bind(comment)
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_first_response(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET first_response_at = COALESCE(first_response_at, hd_ts($1)) \
             WHERE id = $2",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
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
        sqlx::query(
            "UPDATE tickets SET vendor_ticket = CASE WHEN vendor IS NOT DISTINCT FROM $1 \
             THEN vendor_ticket END, vendor = $1, updated_at = hd_ts($2) WHERE id = $3",
        )
        .bind(vendor)
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_vendor_ticket(&mut self, id: TicketId, number: &str) -> Result<(), StoreError> {
        tickets::set_text(self, id, "vendor_ticket", number, None).await
    }

    async fn ticket_by_vendor_ticket(
        &mut self,
        vendor: &str,
        number: &str,
    ) -> Result<Option<TicketRef>, StoreError> {
        let (vendor, number) = (vendor.to_string(), number.to_string());
        self.ticket_where(
            "FROM tickets t WHERE t.id = (SELECT id FROM tickets WHERE vendor = $1 \
             AND vendor_ticket = $2 ORDER BY id DESC LIMIT 1)",
            |q| q.bind(vendor).bind(number),
        )
        .await
    }

    async fn participants(&mut self, id: TicketId) -> Result<Vec<EmailAddress>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT address FROM ticket_participants WHERE ticket_id = $1 ORDER BY added_at, address",
        )
        .bind(id)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|(a,)| address(a)).collect()
    }

    async fn automatic_mail_sent(
        &mut self,
        to: &EmailAddress,
        kinds: &[&str],
        window: (Millis, Millis, Millis),
        cap: (u32, u32),
    ) -> Result<(u32, u32), StoreError> {
        outbox::automatic_mail_sent(self, to, kinds, window, cap).await
    }

    async fn mail_from_since(
        &mut self,
        sender: &EmailAddress,
        since: Millis,
        cap: u32,
    ) -> Result<u32, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE from_addr = $1 \
             AND received_at >= hd_ts($2) AND direction = 'inbound' LIMIT $3) s",
        )
        .bind(sender.as_str())
        .bind(since)
        .bind(i64::from(cap))
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(n.max(0) as u32)
    }

    async fn held_mail(&mut self, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
        outbox::held_mail(self, limit).await
    }

    async fn release_mail(&mut self, id: OutboxId, at: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'pending', created_at = hd_ts($1), \
             next_attempt_at = hd_ts($1), released_at = hd_ts($1) WHERE id = $2 AND status = 'held'",
        )
        .bind(at)
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn answered_release(
        &mut self,
        to: &EmailAddress,
        within: Millis,
    ) -> Result<bool, StoreError> {
        let (answered,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM messages m, \
               (SELECT MAX(released_at) AS at FROM outbox WHERE rcpt_to = $1::jsonb \
                AND released_at IS NOT NULL) r \
             WHERE r.at IS NOT NULL AND m.from_addr = $2 AND m.direction = 'inbound' \
               AND m.received_at > r.at AND m.received_at <= r.at + $3 * interval '1 millisecond')",
        )
        .bind(json_list(&[to.to_string()]))
        .bind(to.as_str())
        .bind(within as f64)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(answered)
    }

    async fn supersede_mail(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE outbox SET status = 'superseded' WHERE status = 'held' AND id = ANY($1)",
        )
        .bind(ids.to_vec())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn claim_report(
        &mut self,
        kind: &str,
        period: &str,
        at: Millis,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "INSERT INTO reports (kind, period, queued_at) VALUES ($1, $2, hd_ts($3)) \
             ON CONFLICT (kind, period) DO NOTHING RETURNING queued_at",
        )
        .bind(kind)
        .bind(period)
        .bind(at)
        .fetch_optional(&mut *self.tx)
        .await?;
        Ok(row.is_some())
    }

    async fn adjust_load(
        &mut self,
        agent: &EmailAddress,
        open_delta: i64,
        assigned_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_loads (assignee, open_tickets, last_assigned_at) \
             VALUES ($1, GREATEST($2, 0), hd_ts($3)) ON CONFLICT (assignee) DO UPDATE \
             SET open_tickets = GREATEST(agent_loads.open_tickets + $2, 0), \
             last_assigned_at = COALESCE(excluded.last_assigned_at, agent_loads.last_assigned_at)",
        )
        .bind(agent.as_str())
        .bind(open_delta)
        .bind(assigned_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn agent_loads(
        &mut self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        agent_loads(&mut self.tx, agents).await
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

    async fn set_ticket_status(
        &mut self,
        id: TicketId,
        status: TicketStatus,
        reopened: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET status = $1, updated_at = hd_ts($2), \
             reopen_count = reopen_count + $3, resolved_at = hd_ts($4) WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(i32::from(reopened))
        .bind(status.resolved_at(at))
        .bind(id)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn touch_ticket(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET updated_at = hd_ts($1) WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
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
        sqlx::query(
            "INSERT INTO mailbox_checkpoints (mailbox, uid_validity, last_uid, updated_at) \
             VALUES ($1, $2, $3, hd_ts($4)) ON CONFLICT (mailbox) DO UPDATE SET \
             uid_validity = excluded.uid_validity, \
             last_uid = CASE WHEN mailbox_checkpoints.uid_validity = excluded.uid_validity \
                 THEN GREATEST(mailbox_checkpoints.last_uid, excluded.last_uid) \
                 ELSE excluded.last_uid END, \
             updated_at = excluded.updated_at",
        )
        .bind(mailbox)
        .bind(i64::from(c.uid_validity))
        .bind(i64::from(c.last_uid))
        .bind(at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// The roster's loads, kept by the writer of plans in `agent_loads`.
async fn agent_loads(
    conn: &mut sqlx::PgConnection,
    agents: &[EmailAddress],
) -> Result<HashMap<EmailAddress, Load>, StoreError> {
    let mut loads = HashMap::new();
    if agents.is_empty() {
        return Ok(loads);
    }
    let names: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT assignee, open_tickets::bigint, hd_ms(last_assigned_at) FROM agent_loads \
         WHERE assignee = ANY($1)",
    )
    .bind(names)
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

#[async_trait]
impl Store for PgStore {
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(self.begin_write().await?))
    }

    async fn snapshot(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(PgTx {
            tx: self
                .pool
                .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?,
            write: false,
        }))
    }

    async fn wakeups(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Wakeup>>, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener
            .listen_all([OUTBOX_CHANNEL, TIMERS_CHANNEL])
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let wakeup = match listener.recv().await {
                    Ok(n) if n.channel() == OUTBOX_CHANNEL => Wakeup::Outbox,
                    Ok(n) => match n.payload().parse() {
                        Ok(at) => Wakeup::Timer(at),
                        Err(_) => continue,
                    },
                    Err(e) => {
                        // The listener connects again at the next `recv`; what was notified
                        // meanwhile is found by the next regular look.
                        tracing::warn!(error = %e, "lost the other gateways' notifications for a moment");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                // A full queue already holds a wake-up: nothing is lost by dropping this one.
                if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) = tx.try_send(wakeup)
                {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }

    async fn checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT uid_validity, last_uid FROM mailbox_checkpoints WHERE mailbox = $1",
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
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT source_key, outcome FROM messages WHERE source_key = ANY($1)")
                .bind(keys.to_vec())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(k, o)| StoredOutcome::parse(&o).map(|o| (k, o)))
            .collect())
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        _now: Millis,
    ) -> Result<bool, StoreError> {
        // The database's clock: every gateway reads the same one.
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, until, taken_at) \
             VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond', clock_timestamp()) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until, \
             taken_at = CASE WHEN leases.holder = excluded.holder THEN leases.taken_at \
                             ELSE excluded.taken_at END \
             WHERE leases.holder = excluded.holder OR leases.until < clock_timestamp() \
             RETURNING holder",
        )
        .bind(name)
        .bind(holder)
        .bind(ttl_ms as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn leases(&self) -> Result<Vec<LeaseView>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, holder, hd_ms(taken_at), hd_ms(until) FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
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

    async fn imap_copied(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT source_key FROM imap_copies WHERE source_key = ANY($1)")
                .bind(keys.to_vec())
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(k,)| k).collect())
    }

    async fn record_imap_copies(
        &self,
        keys: &[String],
        folder: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO imap_copies (source_key, folder, copied_at) \
             SELECT k, $2, hd_ts($3) FROM unnest($1::text[]) AS k ON CONFLICT (source_key) DO NOTHING",
        )
        .bind(keys.to_vec())
        .bind(folder)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    async fn renew_lease(
        &self,
        ids: &[OutboxId],
        owner: &str,
        lease_until: Millis,
    ) -> Result<Renewal, StoreError> {
        // The count reads the rows as they were before the update, which touches only rows
        // of `owner`'s: those of another worker are the same either way.
        let (renewed, taken_over): (i64, i64) = sqlx::query_as(
            "WITH renewed AS (UPDATE outbox SET lease_until = hd_ts($1) WHERE status = 'sending' \
                AND lease_owner = $2 AND id = ANY($3) RETURNING 1) \
             SELECT (SELECT COUNT(*) FROM renewed), (SELECT COUNT(*) FROM outbox \
                WHERE id = ANY($3) AND status = 'sending' AND lease_owner IS DISTINCT FROM $2)",
        )
        .bind(lease_until)
        .bind(owner)
        .bind(ids.to_vec())
        .fetch_one(&self.pool)
        .await?;
        Ok(Renewal {
            renewed: renewed.max(0) as u64,
            taken_over: taken_over.max(0) as u64,
        })
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
        sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = hd_ts($1), lease_until = NULL, \
             lease_owner = NULL, last_error = $2 WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_failed(&self, row: &Marked, error: &str, at: Millis) -> Result<(), StoreError> {
        outbox::mark_failed(self, row, error, at).await
    }

    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), hd_ms(MIN(CASE WHEN status = 'pending' THEN next_attempt_at \
             ELSE lease_until END)) FROM outbox WHERE status IN ('pending', 'sending')",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        reads::list_tickets(self, filter).await
    }

    async fn count_tickets(&self, filter: &TicketFilter) -> Result<i64, StoreError> {
        reads::count_tickets(self, filter).await
    }

    async fn overview(&self, now: Millis, due_before: Millis) -> Result<Overview, StoreError> {
        reads::overview(self, now, due_before).await
    }

    async fn desk_gauges(&self) -> Result<DeskGauges, StoreError> {
        reads::desk_gauges(self).await
    }

    async fn probe_write(&self, instance: &str, at: Millis) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO health_probes (instance, at) VALUES ($1, hd_ts($2)) \
             ON CONFLICT (instance) DO UPDATE SET at = excluded.at",
        )
        .bind(instance)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
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

    async fn backup_into(
        &self,
        _dest: &std::path::Path,
    ) -> Result<sqlite::BackupCounts, StoreError> {
        Err(StoreError::Unsupported(
            "a desk on PostgreSQL is backed up with PostgreSQL's own tools: \
             pg_dump --format=custom (see the README, \"Backups\")"
                .into(),
        ))
    }

    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        let (at,): (Option<i64>,) =
            sqlx::query_as("SELECT hd_ms(MIN(due_at)) FROM tickets WHERE due_at IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(at)
    }

    async fn due_tickets(&self, now: Millis, limit: u32) -> Result<Vec<TicketId>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM tickets WHERE due_at <= hd_ts($1) ORDER BY due_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
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
        // Tickets a gateway is changing right now are locked: skipped, claimed next time.
        let ids: Vec<(i64,)> = sqlx::query_as(
            "UPDATE tickets SET timer_owner = $1, timer_lease_until = hd_ts($2) WHERE id IN \
             (SELECT id FROM tickets WHERE due_at <= hd_ts($3) \
              AND (timer_lease_until IS NULL OR timer_lease_until < hd_ts($4)) \
              ORDER BY due_at LIMIT $5 FOR UPDATE SKIP LOCKED) RETURNING id",
        )
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(lease_now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
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
        reads::ticket_detail(self, code).await
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

/// JSON text as jsonb takes it: jsonb holds no NUL character (`\u0000`), which a hostile
/// mail's header can carry; it is kept as U+FFFD.
fn jsonb_text(json: String) -> String {
    if json.contains("\\u0000") {
        json.replace("\\u0000", "\\ufffd")
    } else {
        json
    }
}

/// A list as jsonb text.
fn jsonb_list(items: &[String]) -> String {
    jsonb_text(json_list(items))
}

/// PostgreSQL's text holds no NUL character (SQLite's does): a mail's text with one keeps
/// it as U+FFFD; the raw mail keeps the byte.
fn no_nul(text: Option<&str>) -> Option<std::borrow::Cow<'_, str>> {
    text.map(|t| {
        if t.contains('\0') {
            std::borrow::Cow::Owned(t.replace('\0', "\u{FFFD}"))
        } else {
            std::borrow::Cow::Borrowed(t)
        }
    })
}

/// Reads a row's column as the given type.
fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    Ok(row.try_get(column)?)
}
