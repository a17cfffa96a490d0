//! One mail in, one recorded outcome out: the life of a ticket starts here.
//!
//! parse → classify the sender → thread → decide → apply. `process` parses outside the
//! write transaction, then inside it gathers what the decision needs (a second delivery?
//! which ticket? is the sender on it? how busy are the agents?), asks the pure
//! [`decide_mail`] for a plan and has [`apply`] write it: the raw bytes with whatever the
//! mail became, the ticket's changes, the mail it queued, and the source's checkpoint.
//! Either everything about a mail is committed or nothing is, so a crash at any point
//! means the mail is read again and filed exactly once. `execute` runs a command on a
//! ticket through the same decide/apply path.

use std::collections::HashMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock};
use crate::config::{DeskSettings, GatewaySettings};
use crate::desk::apply::{ChangeSet, prepare, write};
use crate::desk::decide::{
    self, Command, CommandSituation, MailReading, MailSituation, ThreadedBy, read_mail,
};
use crate::desk::events::{self as ev, Event};
use crate::desk::{
    Applied, ApplyContext, CommandError, MailInput, Plan, PlannedOutcome, TimerSituation, apply,
    decide_command, decide_mail, decide_timers,
};
use crate::domain::{Actor, ReferenceCode};
use crate::inbound::{self, InboundMail, MachineKind, ParseFailure, subject};
use crate::render::Renderer;
use crate::store::{
    MailContent, Millis, Store, StoreError, StoreTx, StoredOutcome, TicketId, TicketRef,
};

pub use crate::store::SourceRef;

mod commands;
mod early;
mod held;
mod reports;
mod situate;
mod timers;

use early::*;
use situate::Decided;

pub use held::HeldPass;
pub use timers::TimerPass;

/// What became of a mail. Expected outcomes are values, not errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    Filed {
        ticket: TicketId,
        code: ReferenceCode,
    },
    Appended {
        ticket: TicketId,
        code: ReferenceCode,
        reopened: bool,
    },
    /// The same mail delivered again; carries what the first copy became, so a copy of a
    /// quarantined mail goes to quarantine too.
    Duplicate(StoredOutcome),
    Ignored(MachineKind),
    Quarantined(QuarantineReason),
    /// The source handed us a mail we had already committed (crash between commit and move).
    AlreadyProcessed(StoredOutcome),
}

impl Processed {
    pub fn label(&self) -> &'static str {
        match self {
            Processed::Filed { .. } => "new_ticket",
            Processed::Appended { .. } => "appended",
            Processed::Duplicate(_) => "duplicate",
            Processed::Ignored(_) => "ignored",
            Processed::Quarantined(_) => "quarantined",
            Processed::AlreadyProcessed(_) => "already_processed",
        }
    }

    pub fn is_quarantined(&self) -> bool {
        matches!(
            self,
            Processed::Quarantined(_)
                | Processed::AlreadyProcessed(StoredOutcome::Quarantined)
                | Processed::Duplicate(StoredOutcome::Quarantined)
        )
    }

    pub fn code(&self) -> Option<&ReferenceCode> {
        match self {
            Processed::Filed { code, .. } | Processed::Appended { code, .. } => Some(code),
            _ => None,
        }
    }
}

pub use crate::desk::QuarantineReason;

use crate::stage::no_hook;
pub use crate::stage::{Stage, StageHook};

/// Why a mail could not be read into something `decide` takes.
enum Unread {
    Parse(ParseFailure),
    /// Routing (or language detection) panicked.
    Failed(Stage, String),
}

/// A mail as read before any database work: parsed, fingerprinted, its language detected
/// and its routing decided.
struct Read {
    parsed: Result<(InboundMail, MailReading), Unread>,
    sha: String,
    /// For a roster or vendor address's mail when the desk requires authentication: DKIM's
    /// verdict.
    dkim: Option<Result<(), String>>,
}

/// Mails read ahead of their transaction (see [`Pipeline::read_ahead`]).
pub struct ReadAhead<T> {
    mails: Vec<(T, SourceRef, Vec<u8>)>,
    reads: Vec<Read>,
}

/// How long a "Re: same subject" from the same customer may thread without a code or
/// threading headers.
const SUBJECT_THREADING_WINDOW_MS: Millis = 30 * 24 * 3600 * 1000;

/// Raw bytes to a mail: `inbound::parse`, or a stand-in in tests.
pub type Parser = fn(&[u8]) -> Result<InboundMail, ParseFailure>;

pub struct Pipeline {
    store: Arc<dyn Store>,
    /// The templates and the desk's organisation (roster, rules, time), replaced whole by
    /// [`Pipeline::reload`] on SIGHUP. Each step reads the version in place when it starts;
    /// a reload lands between two steps, never inside one.
    renderer: std::sync::RwLock<Arc<Renderer>>,
    settings: GatewaySettings,
    desk: std::sync::RwLock<Arc<DeskSettings>>,
    outbox_wakeup: Arc<Notify>,
    parser: Parser,
    clock: Arc<dyn Clock>,
    dkim: Option<Arc<crate::dkim::DkimVerifier>>,
    hook: StageHook,
    /// Queued mail goes by the machine's clock, whatever `clock` says (`tick --at --apply`).
    send_now: bool,
    /// The last week whose report this process saw queued (by it or before): the scheduler
    /// does not build it again every minute.
    reported: std::sync::Mutex<Option<String>>,
}

/// How filing one mail inside a transaction ended, when it did not end with an outcome.
enum Trouble {
    /// The database failed: the mail stays in its source and is read again later.
    Store(StoreError),
    /// The gateway failed on this mail (a panic, or a plan the writer refused): filing it
    /// again would fail again, so it is quarantined.
    Failed(Stage, String),
}

impl From<StoreError> for Trouble {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::BadPlan(why) => Trouble::Failed(Stage::Apply, why.to_string()),
            e => Trouble::Store(e),
        }
    }
}

/// The stage a filing has reached, shared with the code that catches its panic.
#[derive(Default)]
struct StageMark(std::sync::atomic::AtomicU8);

impl StageMark {
    fn set(&self, stage: Stage) {
        self.0
            .store(stage as u8, std::sync::atomic::Ordering::Relaxed);
    }
    fn get(&self) -> Stage {
        Stage::from_u8(self.0.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// Runs `work`, turning a panic inside it into `Trouble::Failed` at the stage it had reached.
async fn guarded<T>(
    mark: &StageMark,
    work: impl std::future::Future<Output = Result<T, Trouble>>,
) -> Result<T, Trouble> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = crate::stage::panic_message(panic.as_ref());
            Err(Trouble::Failed(mark.get(), what))
        }
    }
}

/// How many times one mail is decided and written when other gateways keep changing the
/// same rows at the same moment; past that, the mail is left in its source for later.
pub const CONFLICT_ATTEMPTS: u32 = 4;

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        renderer: Arc<Renderer>,
        settings: GatewaySettings,
        desk: Arc<DeskSettings>,
        outbox_wakeup: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            renderer: std::sync::RwLock::new(renderer),
            settings,
            desk: std::sync::RwLock::new(desk),
            outbox_wakeup,
            parser: inbound::parse,
            clock: Arc::new(SystemClock),
            dkim: None,
            hook: no_hook,
            send_now: false,
            reported: std::sync::Mutex::new(None),
        }
    }

    /// The same pipeline queueing its mail to go by the machine's clock even when its own
    /// clock is moved (`tick --at … --apply`: a trial on a copy of a desk must not leave
    /// mail waiting for a simulated date).
    pub fn sending_now(mut self) -> Self {
        self.send_now = true;
        self
    }

    /// The same pipeline calling `hook` as each stage of filing starts (tests make a stage
    /// panic, to check that it costs one quarantined mail and nothing else).
    pub fn with_stage_hook(mut self, hook: StageHook) -> Self {
        self.hook = hook;
        self
    }

    /// The same pipeline checking agents' DKIM signatures with `verifier`.
    pub fn with_dkim(mut self, verifier: Arc<crate::dkim::DkimVerifier>) -> Self {
        self.dkim = Some(verifier);
        self
    }

    /// DNS work done before the write transaction: an agent's signature, when required.
    async fn authenticate(&self, read: &mut Read, raw: &[u8]) {
        let (Some(verifier), Ok((mail, _))) = (&self.dkim, &read.parsed) else {
            return;
        };
        // Agents' and vendors' mail is believed only when authenticated: both reach people
        // (the customer, the assignee) with the desk's authority.
        if let Some(from) = &mail.from
            && (self.desk().roster.agent(&from.address).is_some()
                || self.desk().time.vendor_by_address(&from.address).is_some())
        {
            read.dkim = Some(verifier.verify(raw, &from.address).await);
        }
    }

    /// The same pipeline reading the time from `clock` (tests set it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn renderer(&self) -> Arc<Renderer> {
        self.renderer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn desk(&self) -> Arc<DeskSettings> {
        self.desk.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new knowledge base in place (its folder changed); the rest of the desk stays.
    pub fn set_knowledge(&self, kb: Arc<crate::kb::KnowledgeBase>) {
        let mut desk = (*self.desk()).clone();
        desk.knowledge.kb = kb;
        *self.desk.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(desk);
    }

    /// Puts new templates and a new desk organisation (roster, routing rules, escalation,
    /// time) in place; the mail being filed finishes with the old ones.
    pub fn reload(&self, renderer: Arc<Renderer>, desk: Arc<DeskSettings>) {
        *self.renderer.write().unwrap_or_else(|e| e.into_inner()) = renderer;
        *self.desk.write().unwrap_or_else(|e| e.into_inner()) = desk;
    }

    /// The same pipeline reading mail with `parser` (tests give one that panics, to check
    /// that a parser crash costs one quarantined mail and nothing else).
    pub fn with_parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    /// The clock the pipeline reads (the system's unless told otherwise).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Files one mail. Errors are only store errors (the database is unreachable or
    /// broken); the mail then stays in its source and is read again later.
    ///
    /// The mail is decided and its answers rendered first on a snapshot, without the write
    /// lock, so that other writers (another `ingest`, the outbox, a command) are not kept
    /// waiting meanwhile; the write transaction then decides again (no rendering) and
    /// writes what was prepared if the plan and everything it read are the same, or
    /// prepares again under the lock if not.
    ///
    /// A conflict with another gateway (two writers racing for the same new row, a
    /// deadlock) is decided and written again at once, on what the other wrote: up to
    /// [`CONFLICT_ATTEMPTS`] times.
    pub async fn process(&self, source: &SourceRef, raw: &[u8]) -> Result<Processed, StoreError> {
        let started = std::time::Instant::now();
        let mut attempt = 1;
        let result = loop {
            match self.process_unmeasured(source, raw).await {
                Err(e)
                    if e.kind() == crate::store::ErrorKind::Conflict
                        && attempt < CONFLICT_ATTEMPTS =>
                {
                    tracing::debug!(error = %e, attempt, "another gateway changed the same rows: deciding again");
                    attempt += 1;
                    // Apart, so two gateways that met once do not meet again.
                    let pause = rand::random::<u64>() % 20 + 5;
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                other => break other,
            }
        };
        if let Ok(outcome) = &result {
            count_filed(outcome, started.elapsed());
        }
        result
    }

    async fn process_unmeasured(
        &self,
        source: &SourceRef,
        raw: &[u8],
    ) -> Result<Processed, StoreError> {
        let mut read = self.read(raw);
        self.authenticate(&mut read, raw).await;
        let now = self.clock.now();
        let early = self.prepare_early(source, raw, &read, now).await;
        let mut tx = self.store.begin().await?;
        let mark = StageMark::default();
        let filing = Filing {
            now,
            write_checkpoint: true,
            early,
        };
        let outcome = match guarded(
            &mark,
            self.process_in(&mut *tx, source, raw, &read, filing, &mark),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(Trouble::Store(e)) => return Err(e),
            Err(Trouble::Failed(stage, error)) => {
                // Nothing of the failed attempt is kept: the transaction is rolled back.
                drop(tx);
                return self
                    .quarantine_failed(source, raw, &read.sha, stage, error)
                    .await;
            }
        };
        tx.commit().await?;
        if matches!(
            outcome,
            Processed::Filed { .. } | Processed::Appended { .. }
        ) {
            self.outbox_wakeup.notify_one();
        }
        Ok(outcome)
    }

    /// Starts reading `mails` (parsing, fingerprints, language) on a blocking thread, so
    /// that the group after the one being written is ready when the write lock is free:
    /// reading needs no database, and runs on the other core meanwhile. `file_read_ahead` files
    /// what it returns; `T` is whatever the caller tells its mails apart by (an IMAP UID).
    pub fn read_ahead<T: Send + 'static>(
        self: &Arc<Self>,
        mails: Vec<(T, SourceRef, Vec<u8>)>,
    ) -> tokio::task::JoinHandle<ReadAhead<T>> {
        let pipeline = self.clone();
        tokio::task::spawn_blocking(move || {
            let reads = mails.iter().map(|(_, _, raw)| pipeline.read(raw)).collect();
            ReadAhead { mails, reads }
        })
    }

    /// Files mails read by `read_ahead` in one transaction: the same outcomes as one
    /// `process` each, with one commit instead of many (what makes a backlog of thousands
    /// quick). If the transaction fails, its mails are filed again one by one, in order, up
    /// to the first that still fails: the result ends with that error and has no entry for
    /// the mails after it, whose checkpoint must not be passed (they are read again on the
    /// next pass). Returns the callers' tags, in order, beside the outcomes.
    pub async fn file_read_ahead<T>(
        &self,
        read: ReadAhead<T>,
    ) -> (Vec<T>, Vec<Result<Processed, StoreError>>) {
        let ReadAhead { mails, reads } = read;
        let refs: Vec<(&SourceRef, &[u8])> = mails
            .iter()
            .map(|(_, source, raw)| (source, raw.as_slice()))
            .collect();
        let outcomes = self.file_reads(&refs, reads).await;
        drop(refs);
        (mails.into_iter().map(|(tag, _, _)| tag).collect(), outcomes)
    }

    async fn file_reads(
        &self,
        mails: &[(&SourceRef, &[u8])],
        mut reads: Vec<Read>,
    ) -> Vec<Result<Processed, StoreError>> {
        for (read, (_, raw)) in reads.iter_mut().zip(mails) {
            self.authenticate(read, raw).await;
        }
        let mark = StageMark::default();
        let started = std::time::Instant::now();
        let batch = async {
            let mut tx = self.store.begin().await?;
            let mut outcomes = Vec::with_capacity(mails.len());
            for ((source, raw), read) in mails.iter().zip(&reads) {
                let filing = Filing {
                    now: self.clock.now(),
                    write_checkpoint: false,
                    early: None,
                };
                outcomes.push(
                    self.process_in(&mut *tx, source, raw, read, filing, &mark)
                        .await?,
                );
            }
            // One checkpoint write for the group; the store keeps the highest UID.
            if let Some((mailbox, checkpoint)) =
                mails.iter().rev().find_map(|(s, _)| s.checkpoint.as_ref())
            {
                tx.set_checkpoint(mailbox, *checkpoint, self.clock.now())
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, Trouble>(outcomes)
        };
        match guarded(&mark, batch).await {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, Processed::Filed { .. } | Processed::Appended { .. }))
                {
                    self.outbox_wakeup.notify_one();
                }
                let took = started.elapsed();
                for outcome in &outcomes {
                    count_filed(outcome, took);
                }
                outcomes.into_iter().map(Ok).collect()
            }
            Err(Trouble::Store(e)) if mails.len() == 1 => vec![Err(e)],
            Err(trouble) => {
                match &trouble {
                    Trouble::Store(e) => {
                        tracing::warn!(error = %e, "batch failed; filing its mails one by one")
                    }
                    Trouble::Failed(stage, error) => tracing::error!(
                        stage = stage.doing(),
                        error,
                        "the gateway failed inside a batch; filing its mails one by one"
                    ),
                }
                let mut out = Vec::with_capacity(mails.len());
                for (source, raw) in mails {
                    let result = self.process(source, raw).await;
                    let failed = result.is_err();
                    out.push(result);
                    if failed {
                        break;
                    }
                }
                out
            }
        }
    }

    /// Files a mail the gateway failed on as quarantined, with why, in a transaction of its
    /// own: the failed attempt was rolled back, so this is all that is written of it.
    async fn quarantine_failed(
        &self,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        stage: Stage,
        error: String,
    ) -> Result<Processed, StoreError> {
        tracing::error!(
            source = source.key.as_deref().unwrap_or("-"),
            stage = stage.doing(),
            error,
            "the gateway failed on a mail; quarantining it"
        );
        let now = self.clock.now();
        let plan = decide::quarantine(
            crate::desk::QuarantineReason::Failed { stage, error },
            Actor::Gateway,
        );
        let input = MailInput {
            source,
            raw,
            sha,
            parsed: None,
        };
        let mut tx = self.store.begin().await?;
        let applied = apply(
            &mut *tx,
            &self.apply_context(&self.desk(), &self.renderer(), now),
            &plan,
            Some(&input),
        )
        .await?;
        if let Some((mailbox, checkpoint)) = &source.checkpoint {
            tx.set_checkpoint(mailbox, *checkpoint, now).await?;
        }
        tx.commit().await?;
        Ok(processed(&plan, applied))
    }

    /// Parses and fingerprints a mail: pure work, done before the write transaction so
    /// SQLite's only write lock is not held while it runs. A parser bug on one hostile
    /// mail costs that mail (quarantined, raw kept), never the task that reads the mailbox.
    fn read(&self, raw: &[u8]) -> Read {
        let parser = self.parser;
        let parsed = std::panic::catch_unwind(|| parser(raw)).unwrap_or_else(|panic| {
            let what = crate::stage::panic_message(panic.as_ref());
            tracing::error!(panic = %what, "the parser panicked on a mail; quarantining it");
            Err(ParseFailure::ParserPanicked)
        });
        let hook = self.hook;
        let parsed = match parsed {
            Err(failure) => Err(Unread::Parse(failure)),
            Ok(mut mail) => {
                // A web contact form's mail is the person's, who is in its Reply-To.
                if mail
                    .from
                    .as_ref()
                    .is_some_and(|f| self.settings.contact_forms.contains(&f.address))
                    && let Some(person) = mail.reply_to.take()
                {
                    mail.from = Some(person);
                }
                let reading = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    hook(Stage::Routing, &mail.subject);
                    read_mail(&mail, &self.settings, &self.desk())
                }));
                match reading {
                    Ok(reading) => Ok((mail, reading)),
                    Err(panic) => Err(Unread::Failed(
                        Stage::Routing,
                        crate::stage::panic_message(panic.as_ref()),
                    )),
                }
            }
        };
        Read {
            parsed,
            sha: hex::encode(Sha256::digest(raw)),
            dkim: None,
        }
    }

    async fn process_in(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        read: &Read,
        filing: Filing,
        mark: &StageMark,
    ) -> Result<Processed, Trouble> {
        let now = filing.now;
        let plan = match self.decide_in(tx, source, read, now, mark).await? {
            Decided::AlreadyProcessed(outcome) => return Ok(Processed::AlreadyProcessed(outcome)),
            Decided::Plan(plan) => *plan,
        };
        mark.set(Stage::Apply);
        (self.hook)(
            Stage::Apply,
            read.parsed.as_ref().map_or("", |(m, _)| &m.subject),
        );
        let input = mail_input(source, raw, read);
        let (desk, renderer) = (self.desk(), self.renderer());
        let ctx = self.apply_context(&desk, &renderer, now);
        let applied = apply_prepared(tx, &ctx, &plan, filing.early, Some(&input)).await?;
        if let (crate::desk::PlanTicket::New(new), Some((_, code))) =
            (&plan.ticket, &applied.ticket)
        {
            tracing::info!(
                code = %code,
                category = %new.routing.category,
                tier = %new.routing.tier,
                priority = %new.routing.priority,
                queued = applied.queued,
                "ticket opened"
            );
        }
        if filing.write_checkpoint
            && let Some((mailbox, checkpoint)) = &source.checkpoint
        {
            tx.set_checkpoint(mailbox, *checkpoint, now).await?;
        }
        Ok(processed(&plan, applied))
    }

    fn apply_context<'a>(
        &'a self,
        desk: &'a DeskSettings,
        renderer: &'a Renderer,
        now: Millis,
    ) -> ApplyContext<'a> {
        ApplyContext {
            renderer,
            gateway: &self.settings,
            roster: &desk.roster,
            calendar: &desk.time.calendar,
            budget: desk.budget,
            now,
            send_at: if self.send_now {
                SystemClock.now()
            } else {
                now
            },
            hook: self.hook,
        }
    }

    pub fn now(&self) -> Millis {
        self.clock.now()
    }
}

/// How one mail is filed in its transaction.
struct Filing {
    now: Millis,
    /// Whether its source's checkpoint is written with it (a batch writes one for all).
    write_checkpoint: bool,
    early: Option<Early>,
}

fn mail_input<'a>(source: &'a SourceRef, raw: &'a [u8], read: &'a Read) -> MailInput<'a> {
    MailInput {
        source,
        raw,
        sha: &read.sha,
        parsed: read.parsed.as_ref().ok().map(|(mail, _)| mail),
    }
}

/// Held mail looked at in one pass (the oldest first).
const HELD_BATCH: u32 = 5000;
const HOUR_MS: Millis = 3_600_000;

/// What the caller is told about a filed mail.
fn processed(plan: &Plan, applied: Applied) -> Processed {
    match (&plan.outcome, applied.ticket) {
        (PlannedOutcome::NewTicket, Some((ticket, code))) => Processed::Filed { ticket, code },
        (PlannedOutcome::Appended { reopened }, Some((ticket, code))) => Processed::Appended {
            ticket,
            code,
            reopened: *reopened,
        },
        (PlannedOutcome::Duplicate(o), _) => Processed::Duplicate(*o),
        (PlannedOutcome::Ignored(k), _) => Processed::Ignored(*k),
        (PlannedOutcome::Quarantined(r), _) => Processed::Quarantined(r.clone()),
        (outcome, ticket) => unreachable!("plan outcome {outcome:?} applied as {ticket:?}"),
    }
}

/// Counts a filed mail for `/metrics`: its outcome, and how long filing it took (a batch's
/// mails each count the batch's time: the wait each of them saw).
fn count_filed(outcome: &Processed, took: std::time::Duration) {
    let m = crate::metrics::metrics();
    m.mails_received
        .get_or_create(&crate::metrics::OutcomeLabel {
            outcome: outcome.label(),
        })
        .inc();
    m.filing_duration.observe(took.as_secs_f64());
}
