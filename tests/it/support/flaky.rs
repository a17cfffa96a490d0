//! A store that fails on purpose: every call goes to the real SQLite store, except the
//! insert of a chosen mail (by Message-ID), which fails a set number of times.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use std::collections::HashMap;

use helpdesk::domain::{Category, EmailAddress, Priority, ReferenceCode, TicketStatus, Tier};
use helpdesk::roster::Load;
use helpdesk::store::*;

pub struct FlakyStore {
    inner: Arc<dyn Store>,
    /// Message-ID whose insert fails, and how many more times it fails.
    fail: Arc<Mutex<Option<(String, usize)>>>,
    /// Another writer's statement, run against the database file just before the next
    /// write transaction begins (after the gateway read its snapshot).
    interlude: Interlude,
}

/// The database file and the statement another writer runs there, once.
pub type Interlude = Arc<Mutex<Option<(std::path::PathBuf, String)>>>;

impl FlakyStore {
    pub fn new(inner: Arc<dyn Store>, message_id: &str, times: usize) -> Self {
        FlakyStore {
            inner,
            fail: Arc::new(Mutex::new(Some((message_id.to_string(), times)))),
            interlude: Interlude::default(),
        }
    }

    /// A store where another writer slips in `interlude`'s statement when it is armed.
    pub fn interloped(inner: Arc<dyn Store>, interlude: Interlude) -> Self {
        FlakyStore {
            inner,
            fail: Arc::new(Mutex::new(None)),
            interlude,
        }
    }
}

struct FlakyTx {
    inner: Box<dyn StoreTx>,
    fail: Arc<Mutex<Option<(String, usize)>>>,
}

#[async_trait]
impl StoreTx for FlakyTx {
    async fn source_outcome(&mut self, k: &str) -> Result<Option<StoredOutcome>, StoreError> {
        self.inner.source_outcome(k).await
    }
    async fn message_id_seen(
        &mut self,
        id: &str,
        c: &MailContent<'_>,
    ) -> Result<MessageIdSeen, StoreError> {
        self.inner.message_id_seen(id, c).await
    }
    async fn message_by_sha(&mut self, sha: &str) -> Result<Option<EarlierMail>, StoreError> {
        self.inner.message_by_sha(sha).await
    }
    async fn add_participant(
        &mut self,
        t: TicketId,
        a: &EmailAddress,
        r: ParticipantRole,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.add_participant(t, a, r, at).await
    }
    async fn is_participant(&mut self, t: TicketId, a: &EmailAddress) -> Result<bool, StoreError> {
        self.inner.is_participant(t, a).await
    }
    async fn ticket_by_code(&mut self, c: &ReferenceCode) -> Result<Option<TicketRef>, StoreError> {
        self.inner.ticket_by_code(c).await
    }
    async fn ticket_by_id(&mut self, id: TicketId) -> Result<Option<TicketRef>, StoreError> {
        self.inner.ticket_by_id(id).await
    }
    async fn ticket_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Option<TicketRef>, StoreError> {
        self.inner.ticket_by_message_ids(ids).await
    }
    async fn ticket_by_thread_key(
        &mut self,
        c: &EmailAddress,
        k: &str,
        since: Millis,
    ) -> Result<Option<TicketRef>, StoreError> {
        self.inner.ticket_by_thread_key(c, k, since).await
    }
    async fn insert_ticket(&mut self, t: NewTicket<'_>) -> Result<TicketId, StoreError> {
        self.inner.insert_ticket(t).await
    }
    async fn set_ticket_status(
        &mut self,
        id: TicketId,
        s: TicketStatus,
        reopened: bool,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_ticket_status(id, s, reopened, at).await
    }
    async fn touch_ticket(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        self.inner.touch_ticket(id, at).await
    }
    async fn insert_message(&mut self, m: NewMessage<'_>) -> Result<MessageRowId, StoreError> {
        if let Some(id) = m.message_id {
            let mut fail = self.fail.lock().unwrap();
            if let Some((target, left)) = fail.as_mut()
                && target == id
                && *left > 0
            {
                *left -= 1;
                return Err(StoreError::Corrupt(format!("injected failure for {id}")));
            }
        }
        self.inner.insert_message(m).await
    }
    async fn insert_attachment(
        &mut self,
        m: MessageRowId,
        a: NewAttachment<'_>,
    ) -> Result<(), StoreError> {
        self.inner.insert_attachment(m, a).await
    }
    async fn insert_events(&mut self, e: &[NewEvent<'_>]) -> Result<(), StoreError> {
        self.inner.insert_events(e).await
    }
    async fn enqueue(&mut self, o: NewOutgoing<'_>) -> Result<OutboxId, StoreError> {
        self.inner.enqueue(o).await
    }
    async fn set_checkpoint(
        &mut self,
        mb: &str,
        c: Checkpoint,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_checkpoint(mb, c, at).await
    }
    async fn set_tier(&mut self, id: TicketId, t: Tier, at: Millis) -> Result<(), StoreError> {
        self.inner.set_tier(id, t, at).await
    }
    async fn set_assignee(
        &mut self,
        id: TicketId,
        a: Option<&EmailAddress>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_assignee(id, a, at).await
    }
    async fn adjust_load(
        &mut self,
        agent: &EmailAddress,
        open_delta: i64,
        assigned_at: Option<Millis>,
    ) -> Result<(), StoreError> {
        self.inner.adjust_load(agent, open_delta, assigned_at).await
    }
    async fn agent_loads(
        &mut self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        self.inner.agent_loads(agents).await
    }
    async fn set_priority(
        &mut self,
        id: TicketId,
        p: Priority,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_priority(id, p, at).await
    }
    async fn set_category(
        &mut self,
        id: TicketId,
        c: &Category,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_category(id, c, at).await
    }
    async fn set_satisfaction(
        &mut self,
        id: TicketId,
        score: u8,
        comment: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.set_satisfaction(id, score, comment, at).await
    }
    async fn automatic_mail_sent(
        &mut self,
        to: &EmailAddress,
        kinds: &[&str],
        window: (Millis, Millis, Millis),
        cap: (u32, u32),
    ) -> Result<(u32, u32), StoreError> {
        self.inner.automatic_mail_sent(to, kinds, window, cap).await
    }
    async fn mail_from_since(
        &mut self,
        sender: &EmailAddress,
        since: Millis,
        cap: u32,
    ) -> Result<u32, StoreError> {
        self.inner.mail_from_since(sender, since, cap).await
    }
    async fn held_mail(&mut self, limit: u32) -> Result<Vec<HeldMail>, StoreError> {
        self.inner.held_mail(limit).await
    }
    async fn release_mail(&mut self, id: OutboxId, at: Millis) -> Result<(), StoreError> {
        self.inner.release_mail(id, at).await
    }
    async fn answered_release(
        &mut self,
        to: &EmailAddress,
        within: Millis,
    ) -> Result<bool, StoreError> {
        self.inner.answered_release(to, within).await
    }
    async fn supersede_mail(&mut self, ids: &[OutboxId]) -> Result<(), StoreError> {
        self.inner.supersede_mail(ids).await
    }
    async fn claim_report(
        &mut self,
        kind: &str,
        period: &str,
        at: i64,
    ) -> Result<bool, StoreError> {
        self.inner.claim_report(kind, period, at).await
    }
    async fn set_first_response(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError> {
        self.inner.set_first_response(id, at).await
    }
    async fn participants(&mut self, id: TicketId) -> Result<Vec<EmailAddress>, StoreError> {
        self.inner.participants(id).await
    }
    async fn set_timing(
        &mut self,
        id: TicketId,
        t: &helpdesk::store::Timing,
    ) -> Result<(), StoreError> {
        self.inner.set_timing(id, t).await
    }
    async fn set_vendor(&mut self, id: TicketId, v: &str, at: Millis) -> Result<(), StoreError> {
        self.inner.set_vendor(id, v, at).await
    }
    async fn set_vendor_ticket(&mut self, id: TicketId, n: &str) -> Result<(), StoreError> {
        self.inner.set_vendor_ticket(id, n).await
    }
    async fn ticket_by_vendor_ticket(
        &mut self,
        v: &str,
        n: &str,
    ) -> Result<Option<TicketRef>, StoreError> {
        self.inner.ticket_by_vendor_ticket(v, n).await
    }
    async fn thread(
        &mut self,
        t: TicketId,
        keep: for<'e> fn(&'e ThreadEntry) -> bool,
    ) -> Result<Vec<ThreadEntry>, StoreError> {
        self.inner.thread(t, keep).await
    }
    async fn exchanged(&mut self, t: TicketId) -> Result<Vec<Exchanged>, StoreError> {
        self.inner.exchanged(t).await
    }
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.inner.commit().await
    }
}

#[async_trait]
impl Store for FlakyStore {
    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        let interlude = self.interlude.lock().unwrap().take();
        if let Some((db, sql)) = interlude {
            let opts = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(db)
                .busy_timeout(std::time::Duration::from_secs(30));
            let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
        Ok(Box::new(FlakyTx {
            inner: self.inner.begin().await?,
            fail: self.fail.clone(),
        }))
    }
    async fn snapshot(&self) -> Result<Box<dyn StoreTx>, StoreError> {
        Ok(Box::new(FlakyTx {
            inner: self.inner.snapshot().await?,
            fail: self.fail.clone(),
        }))
    }
    async fn checkpoint(&self, mb: &str) -> Result<Option<Checkpoint>, StoreError> {
        self.inner.checkpoint(mb).await
    }
    async fn source_outcomes(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, StoredOutcome)>, StoreError> {
        self.inner.source_outcomes(keys).await
    }
    async fn imap_copied(&self, keys: &[String]) -> Result<Vec<String>, StoreError> {
        self.inner.imap_copied(keys).await
    }
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError> {
        self.inner.take_lease(name, holder, ttl_ms, now).await
    }
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.inner.release_lease(name, holder).await
    }
    async fn leases(&self) -> Result<Vec<LeaseView>, StoreError> {
        self.inner.leases().await
    }
    async fn record_imap_copies(
        &self,
        keys: &[String],
        folder: &str,
        at: Millis,
    ) -> Result<(), StoreError> {
        self.inner.record_imap_copies(keys, folder, at).await
    }
    async fn claim_outbox(
        &self,
        now: Millis,
        until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.inner.claim_outbox(now, until, limit, owner).await
    }
    async fn renew_lease(
        &self,
        ids: &[OutboxId],
        owner: &str,
        until: Millis,
    ) -> Result<helpdesk::store::Renewal, StoreError> {
        self.inner.renew_lease(ids, owner, until).await
    }
    async fn mark_sent(&self, rows: &[Marked], at: Millis) -> Result<(), StoreError> {
        self.inner.mark_sent(rows, at).await
    }
    async fn mark_retry(&self, id: OutboxId, next: Millis, e: &str) -> Result<(), StoreError> {
        self.inner.mark_retry(id, next, e).await
    }
    async fn mark_failed(&self, row: &Marked, e: &str, at: Millis) -> Result<(), StoreError> {
        self.inner.mark_failed(row, e, at).await
    }
    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError> {
        self.inner.outbox_backlog().await
    }
    async fn list_tickets(&self, f: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError> {
        self.inner.list_tickets(f).await
    }
    async fn count_tickets(&self, f: &TicketFilter) -> Result<i64, StoreError> {
        self.inner.count_tickets(f).await
    }
    async fn overview(
        &self,
        now: Millis,
        due_before: Millis,
    ) -> Result<helpdesk::store::Overview, StoreError> {
        self.inner.overview(now, due_before).await
    }
    async fn desk_gauges(&self) -> Result<helpdesk::store::DeskGauges, StoreError> {
        self.inner.desk_gauges().await
    }
    async fn probe_write(&self, instance: &str, at: Millis) -> Result<(), StoreError> {
        self.inner.probe_write(instance, at).await
    }

    async fn forget_person(
        &self,
        address: &helpdesk::domain::EmailAddress,
        by: &str,
        at: Millis,
        dry_run: bool,
    ) -> Result<helpdesk::store::ErasureReport, StoreError> {
        self.inner.forget_person(address, by, at, dry_run).await
    }

    async fn purge_closed_tickets(
        &self,
        before: Millis,
        at: Millis,
    ) -> Result<helpdesk::store::ErasureReport, StoreError> {
        self.inner.purge_closed_tickets(before, at).await
    }

    async fn purge_raw_mail(
        &self,
        before: Millis,
        at: Millis,
    ) -> Result<helpdesk::store::ErasureReport, StoreError> {
        self.inner.purge_raw_mail(before, at).await
    }

    async fn backup_into(
        &self,
        dest: &std::path::Path,
    ) -> Result<helpdesk::store::sqlite::BackupCounts, StoreError> {
        self.inner.backup_into(dest).await
    }
    async fn agent_loads(
        &self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError> {
        self.inner.agent_loads(agents).await
    }
    async fn next_due(&self) -> Result<Option<Millis>, StoreError> {
        self.inner.next_due().await
    }
    async fn due_tickets(&self, now: Millis, limit: u32) -> Result<Vec<TicketId>, StoreError> {
        self.inner.due_tickets(now, limit).await
    }
    async fn claim_due(
        &self,
        now: Millis,
        lease_now: Millis,
        until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<TicketId>, StoreError> {
        self.inner
            .claim_due(now, lease_now, until, limit, owner)
            .await
    }
    async fn ticket_detail(&self, c: &ReferenceCode) -> Result<Option<TicketDetail>, StoreError> {
        self.inner.ticket_detail(c).await
    }
    async fn stats_input(
        &self,
        since: i64,
        until: i64,
        counted: &[helpdesk::domain::EventKind],
        replayed: &[helpdesk::domain::EventKind],
    ) -> Result<StatsInput, StoreError> {
        self.inner
            .stats_input(since, until, counted, replayed)
            .await
    }
}
