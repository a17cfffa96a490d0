//! Mail waiting to leave, and the worker that sends it.
//!
//! The outbox is a table, written in the same transaction as the ticket that caused the
//! mail, so an acknowledgement is never lost to a crash and never sent for a ticket that
//! was rolled back. The worker claims due rows with a lease (renewed while it works),
//! keeps `concurrency` sends in flight, and marks each row `sent` as soon as the server
//! accepted it. Temporary failures come back with exponential back-off; permanent ones
//! (5xx) are marked `failed` and logged.

pub mod smtp;
pub mod transport;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, Millis, SystemClock};
use crate::config::OutboxSettings;
use crate::desk::events::{Event, MailFailed, MailSent};
use crate::store::{Marked, OutboxId, OutboxItem, Store, StoreError};
pub use transport::{SendError, Transport};

/// The most rows a worker holds claimed at once (queued and being sent): enough to keep
/// its connections busy through a backlog, few enough that another worker still gets work.
const CLAIM_BATCH: u32 = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

impl StepReport {
    pub fn handled(&self) -> usize {
        self.sent + self.retried + self.failed
    }
}

pub struct OutboxWorker {
    store: Arc<dyn Store>,
    transport: Transport,
    settings: OutboxSettings,
    wakeup: Arc<Notify>,
    /// Names this worker's leases, so that it renews its own rows and nobody else's.
    owner: String,
    /// Leases, retries and sent times read this clock: the machine's unless told otherwise.
    clock: Arc<dyn Clock>,
    /// Set when no login is possible until a person acts (a revoked OAuth2 grant): `run`
    /// stops and returns it, so the gateway exits with the reason.
    stopped_by: std::sync::Mutex<Option<String>>,
}

impl OutboxWorker {
    pub fn new(
        store: Arc<dyn Store>,
        transport: Transport,
        settings: OutboxSettings,
        wakeup: Arc<Notify>,
    ) -> Self {
        use rand::Rng;
        let owner = format!(
            "{}-{:016x}",
            std::process::id(),
            rand::rng().random::<u64>()
        );
        Self {
            store,
            transport,
            settings,
            wakeup,
            owner,
            clock: Arc::new(SystemClock),
            stopped_by: std::sync::Mutex::new(None),
        }
    }

    /// Reads `clock` instead of the machine's (the gateway passes the one clock it runs on).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Claims what is due and sends it. Returns what happened; tests drive this directly.
    ///
    /// The rows stay leased to this worker until they are settled: the lease is renewed
    /// every third of its length while the sends run, however slow the server is, so a
    /// second worker never takes a row this one is still sending. Only a worker that died
    /// (or stalled past a whole lease) loses its rows to another.
    pub async fn step(&self) -> Result<StepReport, StoreError> {
        let now = self.clock.now();
        let lease = self.lease();
        let items = self
            .store
            .claim_outbox(
                now,
                now + lease.as_millis() as Millis,
                CLAIM_BATCH,
                &self.owner,
            )
            .await?;
        let mut report = StepReport::default();
        if items.is_empty() {
            return Ok(report);
        }
        let ids: Vec<OutboxId> = items.iter().map(|i| i.id).collect();
        let sending = futures::stream::iter(items)
            .map(|item| {
                send_and_mark(
                    self.store.clone(),
                    self.transport.clone(),
                    self.clock.clone(),
                    item,
                )
            })
            .buffer_unordered(self.settings.concurrency)
            .collect::<Vec<_>>();
        tokio::pin!(sending);
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        let results = loop {
            tokio::select! {
                results = &mut sending => break results,
                _ = renew.tick() => self.renew(&ids).await,
            }
        };
        let mut store_error = None;
        for sent in results {
            if let Err(e) = self.settle(sent, &mut report).await {
                store_error.get_or_insert(e);
            }
        }
        match store_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Records what became of a send: counted as sent, or retried / failed.
    async fn settle(&self, sent: Sent, report: &mut StepReport) -> Result<(), StoreError> {
        match (sent.result, sent.marked) {
            (Ok(()), Ok(())) => {
                report.sent += 1;
                Ok(())
            }
            // Sent but not recorded: the row stays leased and is sent again once the lease
            // runs out (delivery is at least once).
            (Ok(()), Err(e)) => {
                tracing::error!(outbox = sent.item.id, error = %e, "sent, but cannot record it");
                Err(e)
            }
            (Err(e), _) => self.settle_failure(&sent.item, e, report).await,
        }
    }

    async fn renew(&self, ids: &[OutboxId]) {
        if ids.is_empty() {
            return;
        }
        let until = self.clock.now() + self.lease().as_millis() as Millis;
        match self.store.renew_lease(ids, &self.owner, until).await {
            Ok(renewal) if renewal.taken_over > 0 => tracing::warn!(
                renewed = renewal.renewed,
                taken_over = renewal.taken_over,
                claimed = ids.len(),
                "some outbox rows were taken over by another worker after this one stalled"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot renew the outbox lease"),
        }
    }

    async fn settle_failure(
        &self,
        item: &OutboxItem,
        error: SendError,
        report: &mut StepReport,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        match error {
            SendError::Login(e) => {
                // Not the mail's fault: it waits, unfailed, for the login to be fixed.
                tracing::error!(outbox = item.id, error = %e, "cannot log in to the SMTP server");
                self.store
                    .mark_retry(
                        item.id,
                        now + self.settings.retry_base.as_millis() as Millis,
                        &e,
                    )
                    .await?;
                report.retried += 1;
                if let Ok(mut stop) = self.stopped_by.lock() {
                    stop.get_or_insert(e);
                }
            }
            SendError::Temporary(e) | SendError::Refused(e)
                if item.attempts < self.settings.max_attempts =>
            {
                let delay = self.backoff(item.attempts);
                tracing::warn!(outbox = item.id, attempt = item.attempts, retry_in = ?delay, error = %e, "sending failed, will retry");
                self.store
                    .mark_retry(item.id, now + delay.as_millis() as Millis, &e)
                    .await?;
                report.retried += 1;
            }
            e => {
                tracing::error!(outbox = item.id, attempts = item.attempts, error = %e, "sending failed for good");
                let error = e.to_string();
                let row = Marked {
                    id: item.id,
                    detail: Event::MailFailed(MailFailed {
                        outbox: item.id,
                        error: error.clone(),
                    })
                    .detail(),
                };
                self.store.mark_failed(&row, &error, now).await?;
                report.failed += 1;
            }
        }
        Ok(())
    }

    /// How long a claimed row stays ours without a renewal. A worker that dies while
    /// sending (crash, SIGKILL) leaves its rows `sending`; once the lease is over they are
    /// sent again. Renewed every third of it while the worker sends.
    fn lease(&self) -> Duration {
        match &self.settings.transport {
            crate::config::TransportSettings::Smtp(s) => s.timeout * 2 + Duration::from_secs(10),
            crate::config::TransportSettings::File { .. } => Duration::from_secs(10),
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        retry_delay(self.settings.retry_base, self.settings.retry_max, attempt)
    }

    /// Sends until nothing is due, e.g. before `helpdesk ingest` exits. Rows waiting for a
    /// later retry are left for `run`.
    pub async fn drain(&self) -> Result<StepReport, StoreError> {
        let mut total = StepReport::default();
        loop {
            let r = self.step().await?;
            total.sent += r.sent;
            total.retried += r.retried;
            total.failed += r.failed;
            if r.handled() == 0 {
                return Ok(total);
            }
        }
    }

    /// Sends until `shutdown`, keeping `concurrency` sends in flight from a small queue of
    /// claimed rows: each time a send ends the next starts at once, and the queue is
    /// refilled as soon as it runs low or the pipeline commits new mail, so a new
    /// acknowledgement never waits for a whole batch to finish. Rows are marked sent by a
    /// marker task as soon as the server accepted them, several per transaction when many
    /// are accepted at once. On shutdown it claims nothing more, hands the queued rows
    /// back, and finishes the sends in hand.
    pub async fn run(&self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Cancelled on shutdown, or by a login that cannot succeed.
        let shutdown = shutdown.child_token();
        let lease = self.lease();
        let concurrency = self.settings.concurrency;
        let (marks, marked) = tokio::sync::mpsc::unbounded_channel();
        let marker = tokio::spawn(mark_sent_as_accepted(
            self.store.clone(),
            self.clock.clone(),
            marked,
        ));
        // Each send is a task of its own, so it keeps running while this loop awaits the
        // store.
        let mut in_flight = tokio::task::JoinSet::new();
        let mut queue: std::collections::VecDeque<OutboxItem> = Default::default();
        let mut leased: Vec<OutboxId> = Vec::new();
        let mut renew = tokio::time::interval(lease / 3);
        renew.tick().await;
        let mut error_backoff = Duration::from_millis(500);
        let mut report = StepReport::default();
        loop {
            if !shutdown.is_cancelled() && queue.len() < concurrency {
                let room = (CLAIM_BATCH as usize).saturating_sub(queue.len() + in_flight.len());
                if room > 0 {
                    let now = self.clock.now();
                    match self
                        .store
                        .claim_outbox(
                            now,
                            now + lease.as_millis() as Millis,
                            room as u32,
                            &self.owner,
                        )
                        .await
                    {
                        Ok(items) => {
                            error_backoff = Duration::from_millis(500);
                            leased.extend(items.iter().map(|i| i.id));
                            queue.extend(items);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot claim outbox rows");
                            if in_flight.is_empty() && queue.is_empty() {
                                tokio::select! {
                                    _ = shutdown.cancelled() => break,
                                    _ = tokio::time::sleep(error_backoff) => {}
                                }
                                error_backoff = (error_backoff * 2).min(Duration::from_secs(30));
                                continue;
                            }
                        }
                    }
                }
            }
            while in_flight.len() < concurrency
                && let Some(item) = queue.pop_front()
            {
                in_flight.spawn(self.send_only(item, marks.clone()));
            }
            if in_flight.is_empty() {
                if shutdown.is_cancelled() {
                    break;
                }
                let wait = match self.store.outbox_backlog().await {
                    Ok((_, Some(next))) => {
                        Duration::from_millis((next - self.clock.now()).clamp(0, 60_000) as u64)
                    }
                    _ => Duration::from_secs(60),
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wakeup.notified() => {}
                    _ = tokio::time::sleep(wait.max(Duration::from_millis(50))) => {}
                }
                continue;
            }
            tokio::select! {
                Some(joined) = in_flight.join_next() => {
                    let Ok(sent) = joined else {
                        tracing::error!("an outbox send task was lost");
                        continue;
                    };
                    leased.retain(|id| *id != sent.item.id);
                    if let Err(e) = self.settle(sent, &mut report).await {
                        tracing::error!(error = %e, "cannot record what became of a mail");
                    }
                    if self.stopped_by.lock().is_ok_and(|s| s.is_some()) {
                        shutdown.cancel();
                    }
                }
                _ = self.wakeup.notified(), if !shutdown.is_cancelled() => {}
                _ = renew.tick() => self.renew(&leased).await,
            }
        }
        self.hand_back(queue).await;
        drop(marks);
        let _ = marker.await;
        tracing::debug!(?report, "outbox worker stopped");
        match self.stopped_by.lock().ok().and_then(|mut s| s.take()) {
            Some(why) => Err(anyhow::anyhow!("the outbox cannot log in: {why}")),
            None => Ok(()),
        }
    }

    /// Claimed but never started: back to pending, for the next start or another worker.
    async fn hand_back(&self, queue: std::collections::VecDeque<OutboxItem>) {
        for item in queue {
            if let Err(e) = self
                .store
                .mark_retry(item.id, self.clock.now(), "handed back at shutdown")
                .await
            {
                tracing::warn!(outbox = item.id, error = %e, "cannot hand a claimed mail back");
            }
        }
    }

    /// Sends one row as a task of its own that never panics (a panic in the transport is a
    /// temporary failure of that row); once accepted, its id goes to the marker.
    fn send_only(
        &self,
        item: OutboxItem,
        marks: tokio::sync::mpsc::UnboundedSender<Marked>,
    ) -> impl Future<Output = Sent> + Send + 'static {
        use futures::FutureExt;
        let transport = self.transport.clone();
        async move {
            let result = std::panic::AssertUnwindSafe(transport.send(
                item.id,
                &item.mail_from,
                &item.rcpt_to,
                &item.raw,
            ))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(SendError::Temporary(format!(
                    "the transport panicked: {}",
                    crate::stage::panic_message(panic.as_ref())
                )))
            });
            count_sent(&item, &result);
            if result.is_ok() {
                tracing::info!(outbox = item.id, to = ?item.rcpt_to, "mail sent");
                let _ = marks.send(sent(&item));
            }
            Sent {
                item,
                result,
                marked: Ok(()),
            }
        }
    }
}

/// How long the marker gathers accepted rows before writing them: short enough that a row
/// is recorded as sent when it was, long enough that a burst costs a write every few
/// milliseconds rather than one per mail (each write takes SQLite's only write lock, which
/// the filing of new mail needs too).
const MARK_GATHER: Duration = Duration::from_millis(5);

/// A row the server accepted, with its `mail_sent` event.
fn sent(item: &OutboxItem) -> Marked {
    Marked {
        id: item.id,
        detail: Event::MailSent(MailSent {
            outbox: item.id,
            kind: item.kind.clone(),
        })
        .detail(),
    }
}

/// Marks rows sent as their ids arrive, a group per transaction. A row whose mark fails
/// stays leased and is sent again once its lease runs out (delivery is at least once).
async fn mark_sent_as_accepted(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    mut ids: tokio::sync::mpsc::UnboundedReceiver<Marked>,
) {
    let mut group = Vec::new();
    while ids.recv_many(&mut group, 256).await > 0 {
        tokio::time::sleep(MARK_GATHER).await;
        while let Ok(id) = ids.try_recv() {
            group.push(id);
        }
        if let Err(e) = store.mark_sent(&group, clock.now()).await {
            tracing::error!(rows = group.len(), error = %e, "sent, but cannot record it");
        }
        group.clear();
    }
}

/// Sends one claimed row and, once the server accepted it, marks it sent at once: a
/// customer's acknowledgement is recorded as sent when it was, not when a batch ends.
async fn send_and_mark(
    store: Arc<dyn Store>,
    transport: Transport,
    clock: Arc<dyn Clock>,
    item: OutboxItem,
) -> Sent {
    let result = transport
        .send(item.id, &item.mail_from, &item.rcpt_to, &item.raw)
        .await;
    count_sent(&item, &result);
    let marked = match &result {
        Ok(()) => {
            tracing::info!(outbox = item.id, to = ?item.rcpt_to, "mail sent");
            store.mark_sent(&[sent(&item)], clock.now()).await
        }
        Err(_) => Ok(()),
    };
    Sent {
        item,
        result,
        marked,
    }
}

/// One send's result, and whether marking it sent was recorded.
struct Sent {
    item: OutboxItem,
    result: Result<(), SendError>,
    marked: Result<(), StoreError>,
}

/// `base * 2^(attempt-1)`, capped at `max`.
pub fn retry_delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(max)
}

/// Counts a send for `/metrics`: accepted, by kind, or failed.
fn count_sent(item: &OutboxItem, result: &Result<(), SendError>) {
    let m = crate::metrics::metrics();
    match result {
        Ok(()) => {
            m.mails_sent
                .get_or_create(&crate::metrics::KindLabel {
                    kind: item.kind.clone(),
                })
                .inc();
        }
        Err(_) => {
            m.mail_send_failures.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_and_is_capped() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(retry_delay(base, max, 1), Duration::from_secs(30));
        assert_eq!(retry_delay(base, max, 2), Duration::from_secs(60));
        assert_eq!(retry_delay(base, max, 3), Duration::from_secs(120));
        assert_eq!(retry_delay(base, max, 30), Duration::from_secs(3600));
    }
}
