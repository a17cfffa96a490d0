//! Everything the gateway keeps: tickets, every mail in and out with its raw bytes, the
//! outbox, mailbox checkpoints and the event log.
//!
//! [`Store`] and [`StoreTx`] are the only way in, one method per query, so a second
//! backend (PostgreSQL, for several gateways sharing the work) is one more impl and no
//! change to the pipeline. Rows become domain types here and nowhere else.

pub mod copy;
mod filter;
pub mod postgres;
mod rows;
mod script;
mod scrub;
pub mod sqlite;

use async_trait::async_trait;
use serde::Serialize;

use std::collections::HashMap;

use crate::domain::{
    Actor, Category, Dues, EmailAddress, EventKind, Language, Load, Priority, ReferenceCode,
    TicketClock, TicketStatus, Tier,
};

pub type TicketId = i64;
pub type MessageRowId = i64;
pub type OutboxId = i64;

/// Any backend's error, kept as the cause without naming its driver.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached, opened or written just now (busy, locked,
    /// read-only, disk full, I/O error, connection lost): worth retrying later (EX_TEMPFAIL).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Another gateway changed the same rows at the same moment (a deadlock, a
    /// serialization failure, two writers racing for one unique row): the whole work,
    /// decided again, sees their change and goes through.
    #[error("a concurrent change got there first: {0}")]
    Conflict(#[source] BoxError),
    /// Anything that went wrong with the database at `path`, so the operator knows which file.
    #[error("database {path}: {source}")]
    At {
        path: String,
        #[source]
        source: Box<StoreError>,
    },
    #[error("reference code {0} is already taken")]
    CodeTaken(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// The database's files can no longer be opened for writing.
    #[error("the database cannot be written: {0}")]
    NotWritable(String),
    /// The statement or the schema is wrong: retrying the same work fails the same way.
    #[error("database error: {0}")]
    Database(#[source] BoxError),
    /// The statistics' bulk read (its own read-only connection) failed.
    #[error("reading the database for statistics: {0}")]
    Read(#[source] BoxError),
    /// A command that only reads found no database: it never creates one.
    #[error(
        "no database at {0}: `helpdesk run` or `helpdesk ingest` creates it; check [database] url"
    )]
    NoDatabase(String),
    /// The database file was deleted or replaced while the gateway had it open: nothing more
    /// is written to it (mail filed there would be lost with it).
    #[error(
        "the database file {0} was deleted or replaced while the gateway had it open; stopping so that no mail is filed into it"
    )]
    Gone(String),
    /// The writer was handed a plan it cannot write (a bug in `decide`): never temporary.
    #[error("a plan the writer cannot apply: {0}")]
    BadPlan(&'static str),
    /// What this backend does not do, and what to use instead.
    #[error("{0}")]
    Unsupported(String),
}

/// What a caller may do about a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The same work may succeed later, untouched.
    Temporary,
    /// The same work, decided again on what is stored now, goes through.
    Conflict,
    /// Retrying changes nothing.
    Permanent,
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) => ErrorKind::Temporary,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::At { source, .. } => source.kind(),
            _ => ErrorKind::Permanent,
        }
    }

    /// Whether the same work may succeed later: what an MTA pipe defers (exit 75) instead
    /// of bouncing the customer's mail. A conflict is: done again, the work is decided on
    /// the other gateway's change.
    pub fn is_temporary(&self) -> bool {
        self.kind() != ErrorKind::Permanent
    }

    pub fn unavailable(e: impl Into<BoxError>) -> StoreError {
        StoreError::Unavailable(e.into())
    }

    pub fn at(self, path: &str) -> StoreError {
        match self {
            at @ StoreError::At { .. } => at,
            other => StoreError::At {
                path: path.to_string(),
                source: Box::new(other),
            },
        }
    }
}

/// SQLite result codes (the primary code, the low byte of an extended one) that describe
/// the database's state rather than the statement: busy or locked after the busy timeout,
/// read-only, I/O error, disk full, cannot open, lock protocol error.
const SQLITE_TEMPORARY_CODES: &[i64] = &[5, 6, 8, 10, 13, 14, 15];

/// PostgreSQL's SQLSTATE classes and codes that say the database cannot serve just now:
/// connection exceptions, insufficient resources, operator intervention (a shutdown or a
/// restart), system errors.
const PG_TEMPORARY_CLASSES: &[&str] = &["08", "53", "57", "58"];
/// Two transactions that cannot both go through as they are: a serialization failure, a
/// deadlock, a lock not granted in time, two writers inserting the same unique row.
const PG_CONFLICT_CODES: &[&str] = &["40001", "40P01", "55P03", "23505"];

fn classify(e: sqlx::Error) -> StoreError {
    let kind = match &e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => ErrorKind::Temporary,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default().to_string();
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                if PG_CONFLICT_CODES.contains(&code.as_str()) {
                    ErrorKind::Conflict
                } else if PG_TEMPORARY_CLASSES.iter().any(|c| code.starts_with(c)) {
                    ErrorKind::Temporary
                } else {
                    ErrorKind::Permanent
                }
            } else if code
                .parse::<i64>()
                .is_ok_and(|code| SQLITE_TEMPORARY_CODES.contains(&(code & 0xff)))
            {
                ErrorKind::Temporary
            } else {
                ErrorKind::Permanent
            }
        }
        _ => ErrorKind::Permanent,
    };
    match kind {
        ErrorKind::Temporary => StoreError::Unavailable(Box::new(e)),
        ErrorKind::Conflict => StoreError::Conflict(Box::new(e)),
        ErrorKind::Permanent => StoreError::Database(Box::new(e)),
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        classify(e)
    }
}

/// Opens (creating and migrating if needed) the store `url` names: `sqlite:PATH` or
/// `postgres://…` (with `password`). Errors name the database.
pub async fn open(
    url: &str,
    password: Option<&secrecy::SecretString>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if is_postgres(url) {
        Ok(std::sync::Arc::new(
            postgres::PgStore::open(url, password)
                .await
                .map_err(|e| e.at(url))?,
        ))
    } else {
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(url).await?))
    }
}

/// The same for a command that only reads: the desk must exist (never created empty).
pub async fn open_existing(
    url: &str,
    password: Option<&secrecy::SecretString>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    if is_postgres(url) {
        Ok(std::sync::Arc::new(
            postgres::PgStore::open_existing(url, password)
                .await
                .map_err(|e| e.at(url))?,
        ))
    } else {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open_existing(url).await?,
        ))
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Milliseconds since the Unix epoch.
pub use crate::clock::{Millis, format_millis};

/// What an erasure or a retention purge changed (rows blanked or removed).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErasureReport {
    /// The `erasures` row that records it (none for a dry run's rolled-back one).
    pub erasure: Option<i64>,
    pub tickets: u64,
    pub messages: u64,
    pub attachments: u64,
    pub outbox: u64,
    pub events: u64,
    pub participants: u64,
    /// Other mail that named the person, with the address or name replaced.
    pub mentions: u64,
    /// Names of the person found and replaced.
    pub names: u64,
}

/// Where a mail came from, so a re-read of the same mail is recognised.
/// What an outbox worker's renewal found. A row it settled in the meantime (marked sent,
/// put back for a retry) is neither renewed nor taken over: only a row another worker now
/// holds means this one stalled past its lease.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Renewal {
    pub renewed: u64,
    pub taken_over: u64,
}

#[derive(Clone, Debug)]
pub struct SourceRef {
    /// Unique per source mail: `imap:<mailbox>:<uidvalidity>:<uid>`, `maildir:<name>`.
    pub key: Option<String>,
    /// Advanced in the same transaction as the mail's outcome.
    pub checkpoint: Option<(String, Checkpoint)>,
}

impl SourceRef {
    pub fn none() -> Self {
        Self {
            key: None,
            checkpoint: None,
        }
    }
}

/// The part of a ticket that decisions are made on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketRef {
    pub id: TicketId,
    pub code: ReferenceCode,
    pub status: TicketStatus,
    pub tier: Tier,
    pub category: Category,
    pub priority: Priority,
    pub assignee: Option<EmailAddress>,
    pub customer: EmailAddress,
    pub customer_name: Option<String>,
    pub subject: String,
    pub language: Language,
    pub reopen_count: u32,
    /// The customer, their Reply-To, the first mail's Cc and those added since.
    pub participants: Vec<EmailAddress>,
    pub clock: TicketClock,
    /// The external vendor (L4) the ticket went to, by name, and their ticket number.
    pub vendor: Option<String>,
    pub vendor_ticket: Option<String>,
    /// The knowledge-base articles the acknowledgement carried, by id.
    pub suggested_articles: Vec<String>,
}

pub struct NewTicket<'a> {
    pub code: &'a ReferenceCode,
    pub tier: Tier,
    pub category: &'a Category,
    pub priority: Priority,
    pub customer: &'a EmailAddress,
    pub customer_name: Option<&'a str>,
    pub subject: &'a str,
    pub thread_key: &'a str,
    pub language: Language,
    /// The closed ticket this one follows (its customer answered it).
    pub follows: Option<TicketId>,
    /// The knowledge-base articles its acknowledgement carries, by id.
    pub suggested_articles: &'a [String],
    pub at: Millis,
}

/// A ticket's time as a plan leaves it: its clock, its targets' due times, and when the
/// scheduler must next look at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timing {
    pub clock: TicketClock,
    pub dues: Dues,
    pub due_at: Option<Millis>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// What a stored mail became, as kept in `messages.outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredOutcome {
    NewTicket,
    Appended,
    Duplicate,
    Ignored,
    Quarantined,
    Outgoing,
}

impl StoredOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            StoredOutcome::NewTicket => "new_ticket",
            StoredOutcome::Appended => "appended",
            StoredOutcome::Duplicate => "duplicate",
            StoredOutcome::Ignored => "ignored",
            StoredOutcome::Quarantined => "quarantined",
            StoredOutcome::Outgoing => "outgoing",
        }
    }

    /// Whether an inbound mail filed so belongs to its ticket's messages (a duplicate,
    /// ignored or quarantined mail is kept apart).
    pub fn joins_ticket(self) -> bool {
        matches!(self, StoredOutcome::NewTicket | StoredOutcome::Appended)
    }

    pub const ALL: [StoredOutcome; 6] = [
        Self::NewTicket,
        Self::Appended,
        Self::Duplicate,
        Self::Ignored,
        Self::Quarantined,
        Self::Outgoing,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// One mail to store. `raw` is always kept, whatever the outcome.
pub struct NewMessage<'a> {
    pub ticket: Option<TicketId>,
    pub direction: Direction,
    pub outcome: StoredOutcome,
    pub outcome_detail: Option<&'a str>,
    pub source_key: Option<&'a str>,
    pub message_id: Option<&'a str>,
    /// What makes two mails with one Message-ID the same mail: sender, subject, body text.
    pub content_sha256: Option<&'a str>,
    pub raw: &'a [u8],
    pub raw_sha256: &'a str,
    pub from_addr: Option<&'a str>,
    pub from_name: Option<&'a str>,
    pub reply_to: Option<&'a str>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: &'a str,
    pub in_reply_to: &'a [String],
    pub references: &'a [String],
    pub sent_date: Option<Millis>,
    pub body_text: &'a str,
    pub reply_text: &'a str,
    pub quoted_text: &'a str,
    pub signature: &'a str,
    pub language: Option<Language>,
    pub machine_kind: Option<&'a str>,
    /// Threaded onto a ticket whose participants do not include the sender.
    pub from_non_participant: bool,
    pub at: Millis,
}

/// A stored inbound mail that a new one may repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlierMail {
    pub row: MessageRowId,
    pub ticket: Option<TicketId>,
    pub outcome: StoredOutcome,
}

/// How someone takes part in a ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParticipantRole {
    Customer,
    Cc,
}

impl ParticipantRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantRole::Customer => "customer",
            ParticipantRole::Cc => "cc",
        }
    }
}

pub struct NewAttachment<'a> {
    pub filename: Option<&'a str>,
    pub content_type: &'a str,
    pub content: &'a [u8],
    /// Where the raw mail holds it: then `content` is not stored a second time.
    pub raw_body: Option<crate::inbound::RawBody>,
}

pub struct NewEvent<'a> {
    pub ticket: Option<TicketId>,
    pub message: Option<MessageRowId>,
    pub kind: EventKind,
    pub actor: &'a Actor,
    pub detail: serde_json::Value,
    pub at: Millis,
}

pub struct NewOutgoing<'a> {
    pub ticket: Option<TicketId>,
    pub message: MessageRowId,
    pub kind: &'a str,
    pub mail_from: &'a str,
    pub rcpt_to: &'a [String],
    pub at: Millis,
    /// Kept back instead of sent (see [`Hold`]).
    pub hold: Option<Hold>,
}

/// The outbox columns a new row's hold fills in, the same on every backend.
impl NewOutgoing<'_> {
    pub(crate) fn status(&self) -> &'static str {
        if self.hold.is_some() {
            "held"
        } else {
            "pending"
        }
    }

    pub(crate) fn held_for(&self) -> Option<String> {
        self.hold
            .as_ref()
            .and_then(|h| h.flood_from.as_ref())
            .map(|a| a.to_string())
    }

    pub(crate) fn held_status(&self) -> Option<&'static str> {
        self.hold
            .as_ref()
            .and_then(|h| h.ticket_status)
            .map(|s| s.as_str())
    }
}

/// Why an outgoing mail is kept back, and what decides its fate later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    /// For mail to the desk's people while this outside sender floods the desk: replaced
    /// by one digest. `None`: the recipient's budget was spent; sent once it allows.
    pub flood_from: Option<EmailAddress>,
    /// The ticket's status when the mail was held: if it changes first, the mail is
    /// superseded.
    pub ticket_status: Option<TicketStatus>,
}

/// A held mail, with what is needed to decide whether it goes now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldMail {
    pub id: OutboxId,
    pub ticket: Option<TicketId>,
    pub code: Option<String>,
    pub kind: String,
    pub rcpt_to: String,
    pub flood_from: Option<String>,
    /// The ticket's status when the mail was held, and now.
    pub held_status: Option<String>,
    pub ticket_status: Option<String>,
    pub created_at: Millis,
}

/// What makes a mail the same mail: compared when a Message-ID comes again.
pub struct MailContent<'a> {
    pub sha256: &'a str,
    pub from: Option<&'a str>,
    pub subject: &'a str,
    pub body_text: &'a str,
}

/// One message of a ticket's conversation as an agent reads it: the new text only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadEntry {
    pub from: Option<String>,
    pub from_name: Option<String>,
    /// Inbound: `agent_mail`, `internal_note`, `vendor`, `None` for the customer's side;
    /// outbound: the template's name (`agent_reply`).
    pub detail: Option<String>,
    #[serde(skip)]
    pub direction: Direction,
    #[serde(skip)]
    pub outcome: StoredOutcome,
    /// A machine's mail (auto-reply, bounce).
    #[serde(skip)]
    pub machine: bool,
    pub at: Millis,
    pub text: String,
    pub attachments: Vec<AttachmentView>,
}

/// Which tickets `list_tickets` returns; every field given must hold.
#[derive(Clone, Debug, Default)]
pub struct TicketFilter {
    pub status: Option<TicketStatus>,
    /// Only tickets still needing work (not resolved or closed).
    pub open_only: bool,
    pub tier: Option<Tier>,
    pub assignee: Option<EmailAddress>,
    pub category: Option<Category>,
    pub priority: Option<Priority>,
    /// Only tickets with a service-level target falling due before this instant.
    pub due_before: Option<Millis>,
    /// Only tickets that missed a service-level target.
    pub breached: bool,
    /// With `due_before`: only targets still ahead after this instant (due soon, not missed).
    pub due_after: Option<Millis>,
    /// Only tickets nobody on the roster has.
    pub unassigned: bool,
    /// Only tickets created in `[since, until)`.
    pub created: Option<(Millis, Millis)>,
    /// Only tickets resolved (or closed unresolved) in `[since, until)`.
    pub resolved: Option<(Millis, Millis)>,
    /// Only tickets their customer rated in `[since, until)`.
    pub rated: Option<(Millis, Millis)>,
    /// Only tickets that came back in `[since, until)`: reopened, or followed by a new ticket
    /// from a customer who answered it once closed.
    pub came_back: Option<(Millis, Millis)>,
    pub sort: TicketSort,
    /// `(limit, offset)`: one page of the list.
    pub page: Option<(u32, u32)>,
}

/// The order of a ticket list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TicketSort {
    /// Oldest created first.
    #[default]
    Created,
    /// Longest in its present status first (what has waited longest).
    Age,
    /// Next target due first; tickets without one last.
    Due,
}

/// What the dashboard's overview counts, read from one snapshot of the tickets.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// Tickets still needing work, per tier and status (only pairs with tickets).
    pub backlog: Vec<(Tier, TicketStatus, i64)>,
    /// Open tickets with a target due in `(now, due_before]`.
    pub due_soon: i64,
    /// Open tickets that missed a target.
    pub breached: i64,
    /// The oldest ticket waiting for the desk (new or open).
    pub oldest_waiting: Option<TicketSummary>,
    /// Tickets still needing work, per assignee (`None`: nobody's).
    pub by_assignee: Vec<(Option<String>, i64)>,
}

/// What `/metrics` reads from the database at each scrape.
#[derive(Clone, Debug, Default)]
pub struct DeskGauges {
    pub open_by_tier: Vec<(Tier, i64)>,
    /// Mails waiting to be sent (pending or being sent; not those held by a budget).
    pub outbox_pending: i64,
    /// When the oldest of them was queued.
    pub outbox_oldest: Option<Millis>,
}

/// A mail the outbox worker has claimed and must now send.
#[derive(Clone, Debug)]
pub struct OutboxItem {
    pub id: OutboxId,
    /// What mail it is (its template's name).
    pub kind: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub raw: Vec<u8>,
    pub attempts: u32,
}

/// An outbox row the outbox is done with, and its event's detail (made by the desk's typed
/// events: the store writes it as given).
#[derive(Clone, Debug)]
pub struct Marked {
    pub id: OutboxId,
    pub detail: serde_json::Value,
}

/// A message of a ticket as threading headers read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchanged {
    pub message_id: String,
    pub direction: Direction,
    pub outcome: StoredOutcome,
    pub from: Option<String>,
    pub to: Vec<String>,
}

/// What another gateway's change means for this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wakeup {
    /// Mail was queued: the outbox has work.
    Outbox,
    /// A ticket's timed work falls due at this moment (ms).
    Timer(Millis),
}

/// Who holds a lease, since when and until when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LeaseView {
    pub name: String,
    pub holder: String,
    /// When this holder took it (not when it last renewed it).
    pub taken_at: Millis,
    pub until: Millis,
}

/// A mailbox's read position: mail with a UID up to `last_uid` is committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub uid_validity: u32,
    pub last_uid: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct TicketSummary {
    pub code: String,
    pub status: TicketStatus,
    pub tier: Tier,
    pub customer: String,
    pub customer_name: Option<String>,
    pub subject: String,
    pub language: Language,
    pub category: Category,
    pub priority: Priority,
    /// The agent's address; `null` while unassigned.
    pub assignee: Option<String>,
    pub participants: Vec<String>,
    pub messages: i64,
    pub reopen_count: i64,
    /// The customer's rating, 1 to 5, once given.
    pub satisfaction: Option<i64>,
    pub satisfaction_comment: Option<String>,
    /// When an agent first answered the customer.
    pub first_response_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sla: SlaView,
    /// The closed ticket this one follows.
    pub follows: Option<String>,
    pub vendor: Option<String>,
    pub vendor_ticket: Option<String>,
    /// The knowledge-base articles the acknowledgement carried, by id.
    pub suggested_articles: Vec<String>,
}

/// Where a ticket stands against its service levels.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SlaView {
    /// `null` once met, and while the clock stands (waiting on the customer, resolved).
    pub first_response_due: Option<String>,
    pub resolution_due: Option<String>,
    pub first_response_at: Option<String>,
    /// The targets missed: `first_response`, `resolution`.
    pub breached: Vec<String>,
    /// The clock stands (the ticket waits on the customer, or is resolved).
    pub paused: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct MessageView {
    pub direction: String,
    /// For outbound mail: `acknowledgement`, `agent_notification`, `agent_follow_up`,
    /// `agent_reassigned`, `status_update`; `null` for inbound mail.
    pub kind: Option<String>,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub subject: String,
    pub message_id: Option<String>,
    pub body_text: String,
    pub reply_text: String,
    /// The signature cut from `reply_text`.
    pub signature: String,
    pub outcome: String,
    pub detail: Option<String>,
    /// The sender is not one of the ticket's participants (customer, first mail's Cc).
    pub from_non_participant: bool,
    pub delivery: Option<String>,
    pub attachments: Vec<AttachmentView>,
    pub received_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttachmentView {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
}

/// A ticket with its messages. Serialises as the summary object whose `messages` is the
/// list instead of the count.
#[derive(Clone, Debug)]
pub struct TicketDetail {
    pub summary: TicketSummary,
    pub messages: Vec<MessageView>,
    /// Who did what and when, oldest first.
    pub events: Vec<EventView>,
}

/// One event as the statistics read it: the detail still as stored (the store does not
/// know the desk's event types; the statistics parse it into them).
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    pub kind: EventKind,
    /// One of [`Actor::KINDS`].
    pub actor_kind: &'static str,
    /// Who acted; the statistics' read fills it for agents' replies only.
    pub actor: String,
    /// Where the detail (JSON) is in its ticket's [`TicketHistory::details`].
    pub detail: std::ops::Range<usize>,
    pub at: Millis,
}

impl TicketHistory {
    /// An event's detail, as stored.
    pub fn detail(&self, e: &LoggedEvent) -> &str {
        self.details.get(e.detail.clone()).unwrap_or("")
    }
}

/// A ticket's log, for the statistics: the events of the kinds asked, in order.
#[derive(Clone, Debug)]
pub struct TicketHistory {
    pub id: TicketId,
    pub code: String,
    /// The events' details one after the other: one allocation a ticket, not one an event
    /// (with two threads sharing the one malloc arena the gateway keeps, allocations were
    /// a quarter of the statistics' time).
    pub details: String,
    pub created_at: Millis,
    /// The closed ticket this one follows.
    pub follows: Option<TicketId>,
    pub events: Vec<LoggedEvent>,
}

/// What the statistics of a period read: first the follow-ups, then the tickets in
/// batches as they are read (the statistics replay one batch while the next is read).
pub struct StatsInput {
    /// Tickets created since the period began that follow another: `(followed, created_at)`.
    pub follow_ups: Vec<(TicketId, Millis)>,
    /// Every ticket with an event of a `counted` kind in the period, whose status changed
    /// since it began, or open now (and created before its end), each with its events of
    /// the `replayed` kinds (all of them, before and after the period: the state at each
    /// moment, and reopenings after it), in order.
    pub tickets: tokio::sync::mpsc::Receiver<Result<Vec<TicketHistory>, StoreError>>,
}

/// One event of a ticket's log, as `tickets show` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct EventView {
    /// RFC 3339, UTC, milliseconds.
    pub at: String,
    #[serde(skip)]
    pub at_ms: Millis,
    pub kind: String,
    /// customer, participant, stranger, agent, machine, gateway, cli, vendor or timer.
    pub actor_kind: String,
    /// The address, vendor or name of who acted.
    pub actor: String,
    pub detail: serde_json::Value,
}

impl TicketDetail {
    /// Whether the ticket's last resolution was the customer's own, after the
    /// acknowledgement's articles and before any person answered.
    pub fn self_service(&self) -> bool {
        self.events
            .iter()
            .rev()
            .find(|e| {
                matches!(e.kind.as_str(), "status_changed" | "reopened")
                    && e.detail.get("to").and_then(|t| t.as_str()) == Some("resolved")
            })
            .and_then(|e| e.detail.get("self_service"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(&self.summary).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "messages".into(),
                serde_json::to_value(&self.messages).unwrap_or_default(),
            );
            obj.insert(
                "events".into(),
                serde_json::to_value(&self.events).unwrap_or_default(),
            );
            obj.insert("self_service".into(), self.self_service().into());
        }
        value
    }
}

/// See [`StoreTx::message_id_seen`].
#[derive(Debug, Default)]
pub struct MessageIdSeen {
    /// The same mail, filed before.
    pub same: Option<EarlierMail>,
    /// A message that already uses the Message-ID (the same mail or another one).
    pub in_use: Option<MessageRowId>,
}

/// Work done inside one transaction: all of it lands, or none of it.
#[async_trait]
pub trait StoreTx: Send {
    /// The outcome recorded for a source mail already processed, if any.
    async fn source_outcome(
        &mut self,
        source_key: &str,
    ) -> Result<Option<StoredOutcome>, StoreError>;
    /// What the store knows of a Message-ID, in one look-up: the first inbound mail with
    /// this Message-ID and this content (the same mail delivered again), and the first
    /// non-duplicate message using it whatever its content. `content` is the fingerprint;
    /// rows stored before fingerprints existed are compared on `from`, `subject` and
    /// `body_text`.
    async fn message_id_seen(
        &mut self,
        message_id: &str,
        content: &MailContent<'_>,
    ) -> Result<MessageIdSeen, StoreError>;
    /// An inbound mail with these exact raw bytes (for mail without a Message-ID).
    async fn message_by_sha(&mut self, sha256: &str) -> Result<Option<EarlierMail>, StoreError>;
    async fn add_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
        role: ParticipantRole,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn is_participant(
        &mut self,
        ticket: TicketId,
        address: &EmailAddress,
    ) -> Result<bool, StoreError>;
    async fn ticket_by_code(
        &mut self,
        code: &ReferenceCode,
    ) -> Result<Option<TicketRef>, StoreError>;
    async fn ticket_by_id(&mut self, id: TicketId) -> Result<Option<TicketRef>, StoreError>;
    /// The ticket of the most recent message whose Message-ID is one of `ids`.
    async fn ticket_by_message_ids(
        &mut self,
        ids: &[String],
    ) -> Result<Option<TicketRef>, StoreError>;
    /// The customer's most recent ticket with this thread key, updated since `since`.
    async fn ticket_by_thread_key(
        &mut self,
        customer: &EmailAddress,
        key: &str,
        since: Millis,
    ) -> Result<Option<TicketRef>, StoreError>;
    async fn insert_ticket(&mut self, ticket: NewTicket<'_>) -> Result<TicketId, StoreError>;
    async fn set_tier(&mut self, id: TicketId, tier: Tier, at: Millis) -> Result<(), StoreError>;
    /// `None` leaves the ticket unassigned.
    async fn set_assignee(
        &mut self,
        id: TicketId,
        assignee: Option<&EmailAddress>,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn set_priority(
        &mut self,
        id: TicketId,
        priority: Priority,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn set_category(
        &mut self,
        id: TicketId,
        category: &Category,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn set_satisfaction(
        &mut self,
        id: TicketId,
        score: u8,
        comment: Option<&str>,
        at: Millis,
    ) -> Result<(), StoreError>;
    /// Records the first agent reply's time; later calls keep the first.
    async fn set_first_response(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError>;
    /// Writes a ticket's clock and next due time, and lets go of the scheduler's lease.
    async fn set_timing(&mut self, id: TicketId, timing: &Timing) -> Result<(), StoreError>;
    async fn set_vendor(
        &mut self,
        id: TicketId,
        vendor: &str,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn set_vendor_ticket(&mut self, id: TicketId, number: &str) -> Result<(), StoreError>;
    async fn ticket_by_vendor_ticket(
        &mut self,
        vendor: &str,
        number: &str,
    ) -> Result<Option<TicketRef>, StoreError>;
    /// The ticket's participants (customer, their Reply-To, Cc of the first mail, added).
    async fn participants(&mut self, id: TicketId) -> Result<Vec<EmailAddress>, StoreError>;
    /// Automatic mail queued to `to` since `hour_ago` and since `day_ago` (agents' replies,
    /// which are people's words, are not counted), each counted up to `cap` (the budget:
    /// past it the exact number does not matter, and counting stays bounded for an address
    /// that receives thousands).
    ///
    /// Only mail that went or goes out counts (not held or superseded mail), and only mail
    /// queued up to `now`: a row dated later (queued by `tick --at` on a copy of a desk)
    /// never spends today's budget.
    /// Only rows of the `kinds` given count (which mail spends the budget is the desk's
    /// rule: `Template::counts_against_budget`).
    async fn automatic_mail_sent(
        &mut self,
        to: &EmailAddress,
        kinds: &[&str],
        (hour_ago, day_ago, now): (Millis, Millis, Millis),
        cap: (u32, u32),
    ) -> Result<(u32, u32), StoreError>;
    /// How many mails `sender` sent the desk since `since`, counted up to `cap`.
    async fn mail_from_since(
        &mut self,
        sender: &EmailAddress,
        since: Millis,
        cap: u32,
    ) -> Result<u32, StoreError>;
    /// Held mail, oldest first (at most `limit`), with its ticket as it is now.
    async fn held_mail(&mut self, limit: u32) -> Result<Vec<HeldMail>, StoreError>;
    /// A held mail goes out now: it is queued as of `at`, and counts against the budget.
    async fn release_mail(&mut self, id: OutboxId, at: Millis) -> Result<(), StoreError>;
    /// Whether `to` wrote to the desk within `within` of the last held mail released to
    /// them: what a machine that answers everything does.
    async fn answered_release(
        &mut self,
        to: &EmailAddress,
        within: Millis,
    ) -> Result<bool, StoreError>;
    /// Held mail that will never be sent (its ticket moved on, or a digest replaced it).
    async fn supersede_mail(&mut self, ids: &[OutboxId]) -> Result<(), StoreError>;
    /// Records that the report of `kind` for `period` is queued; `false` when it already
    /// was (by this gateway before a restart, or by another).
    async fn claim_report(
        &mut self,
        kind: &str,
        period: &str,
        at: Millis,
    ) -> Result<bool, StoreError>;
    /// A change to an agent's load: `open_delta` open tickets more (or fewer), and their
    /// last assignment when they were just given a ticket. Written by `apply` alone, from
    /// the ticket's assignee and status before and after each plan.
    async fn adjust_load(
        &mut self,
        agent: &EmailAddress,
        open_delta: i64,
        assigned_at: Option<Millis>,
    ) -> Result<(), StoreError>;
    /// These agents' open tickets and last assignment, for the roster to choose (agents
    /// with neither are left out).
    async fn agent_loads(
        &mut self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError>;
    /// The conversation so far, oldest first: people's inbound mail and agents' replies.
    /// The ticket's messages in order, those `keep` takes (the thread rule is the desk's),
    /// with their attachments.
    async fn thread(
        &mut self,
        ticket: TicketId,
        keep: for<'e> fn(&'e ThreadEntry) -> bool,
    ) -> Result<Vec<ThreadEntry>, StoreError>;
    /// The ticket's messages that have a Message-ID, oldest first, with who sent and
    /// received them: which of them a new mail names in `References` is the desk's rule.
    async fn exchanged(&mut self, ticket: TicketId) -> Result<Vec<Exchanged>, StoreError>;
    async fn set_ticket_status(
        &mut self,
        id: TicketId,
        status: TicketStatus,
        reopened: bool,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn touch_ticket(&mut self, id: TicketId, at: Millis) -> Result<(), StoreError>;
    async fn insert_message(&mut self, message: NewMessage<'_>)
    -> Result<MessageRowId, StoreError>;
    async fn insert_attachment(
        &mut self,
        message: MessageRowId,
        attachment: NewAttachment<'_>,
    ) -> Result<(), StoreError>;
    /// Appends events to the log, in order.
    async fn insert_events(&mut self, events: &[NewEvent<'_>]) -> Result<(), StoreError>;
    async fn enqueue(&mut self, outgoing: NewOutgoing<'_>) -> Result<OutboxId, StoreError>;
    async fn set_checkpoint(
        &mut self,
        mailbox: &str,
        checkpoint: Checkpoint,
        at: Millis,
    ) -> Result<(), StoreError>;
    async fn commit(self: Box<Self>) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Store: Send + Sync {
    /// Starts a write transaction (SQLite: `BEGIN IMMEDIATE`, so two writers queue instead of failing).
    async fn begin(&self) -> Result<Box<dyn StoreTx>, StoreError>;
    /// A read-only view of the store as committed now, taking no write lock: what the
    /// gateway decides and renders from before it takes the lock (the change set is then
    /// checked in the write transaction). Writing through it fails; `commit` ends it.
    async fn snapshot(&self) -> Result<Box<dyn StoreTx>, StoreError>;
    /// News from the other gateways sharing the store, when the backend carries it
    /// (PostgreSQL's LISTEN/NOTIFY): mail was queued, timed work falls due soon. `None`:
    /// each gateway finds out by itself, at its next look.
    async fn wakeups(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Wakeup>>, StoreError> {
        Ok(None)
    }
    /// Whether the store is still the one opened (its file not deleted or replaced).
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn checkpoint(&self, mailbox: &str) -> Result<Option<Checkpoint>, StoreError>;
    /// For source keys already processed: key and outcome.
    async fn source_outcomes(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, StoredOutcome)>, StoreError>;

    /// Takes the lease `name` for `holder` for `ttl_ms`, or renews it: when nobody holds
    /// it, its holder's time ran out, or `holder` has it already. Returns whether `holder`
    /// holds it now. `now` is this machine's time; PostgreSQL reads the database server's
    /// clock instead, so gateways whose clocks differ still agree on when a lease ran out.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: i64,
        now: Millis,
    ) -> Result<bool, StoreError>;
    /// Gives the lease up (a clean stop): another gateway takes it at once.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// Every lease: name, holder, and when it was taken over last (ms).
    async fn leases(&self) -> Result<Vec<LeaseView>, StoreError>;

    /// Source mails (by key) already copied to a folder by a server without MOVE.
    async fn imap_copied(&self, keys: &[String]) -> Result<Vec<String>, StoreError>;
    async fn record_imap_copies(
        &self,
        keys: &[String],
        folder: &str,
        at: Millis,
    ) -> Result<(), StoreError>;

    /// Claims up to `limit` due outbox rows (pending, or `sending` whose lease ran out after
    /// a crash) for `owner` until `lease_until`.
    async fn claim_outbox(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// Extends the lease on the rows of `ids` that `owner` still holds.
    async fn renew_lease(
        &self,
        ids: &[OutboxId],
        owner: &str,
        lease_until: Millis,
    ) -> Result<Renewal, StoreError>;
    /// Marks rows sent, in one transaction, each with its `mail_sent` event.
    async fn mark_sent(&self, rows: &[Marked], at: Millis) -> Result<(), StoreError>;
    async fn mark_retry(
        &self,
        id: OutboxId,
        next_attempt_at: Millis,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Marks a row failed for good, with its `mail_failed` event.
    async fn mark_failed(&self, row: &Marked, error: &str, at: Millis) -> Result<(), StoreError>;
    /// Rows still to send (pending or sending), and the earliest time one is due.
    async fn outbox_backlog(&self) -> Result<(i64, Option<Millis>), StoreError>;

    async fn list_tickets(&self, filter: &TicketFilter) -> Result<Vec<TicketSummary>, StoreError>;
    /// How many tickets `filter` holds, whatever its page.
    async fn count_tickets(&self, filter: &TicketFilter) -> Result<i64, StoreError>;
    /// The dashboard's overview at `now`; `due_before`: the end of "due soon".
    async fn overview(&self, now: Millis, due_before: Millis) -> Result<Overview, StoreError>;
    async fn desk_gauges(&self) -> Result<DeskGauges, StoreError>;
    /// Whether the database still takes a write: its files can be opened for writing (as
    /// a restarted gateway would need) and a row is written (disk full, locked too long).
    async fn probe_write(&self, instance: &str, at: Millis) -> Result<(), StoreError>;
    /// Erases a person's data (GDPR article 17): their tickets' personal content, their
    /// mail anywhere, and every mention of their address and name; the rows stay, blanked,
    /// so the statistics do not change. `dry_run` counts and changes nothing.
    async fn forget_person(
        &self,
        address: &EmailAddress,
        by: &str,
        at: Millis,
        dry_run: bool,
    ) -> Result<ErasureReport, StoreError>;
    /// `[retention] closed_tickets`: the same erasure for tickets closed before `before`.
    async fn purge_closed_tickets(
        &self,
        before: Millis,
        at: Millis,
    ) -> Result<ErasureReport, StoreError>;
    /// `[retention] raw_mail`: drops the raw mail (and attachments) received before
    /// `before`, keeping the parsed text and everything counted.
    async fn purge_raw_mail(&self, before: Millis, at: Millis)
    -> Result<ErasureReport, StoreError>;
    /// Writes a consistent copy of the whole desk, as of one moment, to a new file, while
    /// the gateway goes on; returns what the copy holds.
    async fn backup_into(&self, dest: &std::path::Path)
    -> Result<sqlite::BackupCounts, StoreError>;
    /// When the earliest timed work falls due.
    async fn next_due(&self) -> Result<Option<Millis>, StoreError>;
    /// Leases tickets whose timed work fell due by `now` (and whose lease, if any, ran out
    /// by `lease_now`, the machine's time) to `owner` until `lease_until`.
    /// Tickets whose timed work is due at `now`, soonest first, without claiming them (for
    /// a dry run).
    async fn due_tickets(&self, now: Millis, limit: u32) -> Result<Vec<TicketId>, StoreError>;
    async fn claim_due(
        &self,
        now: Millis,
        lease_now: Millis,
        lease_until: Millis,
        limit: u32,
        owner: &str,
    ) -> Result<Vec<TicketId>, StoreError>;
    async fn agent_loads(
        &self,
        agents: &[EmailAddress],
    ) -> Result<HashMap<EmailAddress, Load>, StoreError>;
    async fn ticket_detail(&self, code: &ReferenceCode)
    -> Result<Option<TicketDetail>, StoreError>;

    /// What the statistics of `[since, until)` read (see [`StatsInput`]).
    async fn stats_input(
        &self,
        since: Millis,
        until: Millis,
        counted: &[EventKind],
        replayed: &[EventKind],
    ) -> Result<StatsInput, StoreError>;
}
