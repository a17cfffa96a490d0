//! Every change to a ticket, in two steps: [`decide`] (pure: handed the ticket, the mail
//! or command, the roster, the rules and `now`; returns a [`Plan`]) and [`apply`] (the only
//! writer: one plan, one transaction). Mail, the command line, agents' mail commands and
//! timers all produce plans, so every change is checked by the same `transition`
//! functions and logged the same way.

pub mod apply;
pub mod decide;
mod effects;
pub mod events;
pub mod heuristics;
pub mod mail_command;
mod state;
pub mod thread;
pub mod timed;
pub mod wording;

use crate::domain::{
    Actor, Category, EmailAddress, EventKind, Language, Priority, ReferenceCode, StatusMove,
    TicketStatus, Tier, TierMove,
};
use crate::inbound::MachineKind;
use crate::render::{AttachmentLine, AutoSubmitted, Change, Template};
use crate::routing::Routing;
use crate::store::{EarlierMail, ParticipantRole, StoredOutcome, TicketId, TicketRef};

pub use apply::{Applied, ApplyContext, MailInput, apply};
pub use decide::{
    Command, CommandSituation, MailSituation, ThreadedBy, decide_command, decide_mail,
};
pub use state::TicketState;
pub use timed::{TimerSituation, decide_timers, with_timing};

/// What a plan does, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub ticket: PlanTicket,
    pub effects: Vec<Effect>,
    pub outcome: PlannedOutcome,
}

/// The ticket a plan works on. One plan lives per mail or command, never in bulk: the
/// size of its largest variant costs nothing worth a box.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum PlanTicket {
    /// The mail is filed without a ticket (ignored, quarantined, a duplicate of such).
    None,
    /// A ticket opened by this plan.
    New(NewTicketPlan),
    Existing(TicketRef),
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewTicketPlan {
    pub customer: EmailAddress,
    pub customer_name: Option<String>,
    pub subject: String,
    pub thread_key: String,
    pub language: Language,
    pub routing: Routing,
    /// The closed ticket its customer answered, which this one follows.
    pub follows: Option<TicketRef>,
    /// The knowledge-base articles its acknowledgement carries, by id.
    pub suggested_articles: Vec<String>,
}

/// What the caller reports once the plan is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedOutcome {
    NewTicket,
    Appended {
        reopened: bool,
    },
    Duplicate(StoredOutcome),
    Ignored(MachineKind),
    Quarantined(QuarantineReason),
    /// A command from the command line or an agent.
    Changed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuarantineReason {
    Unparseable(crate::inbound::ParseFailure),
    NoSender,
    /// No mail can be sent to the sender (an address our mail library refuses).
    Unanswerable(String),
    /// Someone not on a ticket quoted its code, and the desk holds such mail for review.
    HeldStranger {
        quoted: ReferenceCode,
    },
    /// The gateway itself failed on this mail (a panic, or a plan its writer refused): the
    /// mail is kept for a person to look at, and the mails behind it are filed.
    Failed {
        stage: crate::stage::Stage,
        error: String,
    },
}

impl QuarantineReason {
    pub fn describe(&self) -> String {
        match self {
            QuarantineReason::Unparseable(f) => format!("unparseable: {f}"),
            QuarantineReason::NoSender => "no sender address".into(),
            QuarantineReason::Unanswerable(e) => format!("cannot answer: {e}"),
            QuarantineReason::HeldStranger { quoted } => {
                format!("held for review: the sender is not on ticket {quoted}")
            }
            QuarantineReason::Failed { stage, error } => {
                format!("the gateway failed while {}: {error}", stage.doing())
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Store the mail being processed, with what it became.
    FileMail(Filing),
    AddParticipant(EmailAddress, ParticipantRole),
    /// Only [`TicketStatus::transition`] makes a `StatusMove`: no plan bypasses the rules.
    SetStatus {
        to: StatusMove,
        reopened: bool,
    },
    /// Only [`Tier::escalate`] makes a `TierMove`: tiers only go up.
    ChangeTier(TierMove),
    /// `None`: nobody on the roster has the ticket.
    Assign(Option<EmailAddress>),
    SetPriority(Priority),
    SetCategory(Category),
    /// An agent answered the customer: the first time is the first response.
    FirstResponse,
    /// The customer rated the resolution.
    Rate {
        score: u8,
        comment: Option<String>,
    },
    /// The ticket saw activity (a mail that changes nothing else).
    Touch,
    Queue(OutgoingMail),
    Record(EventRecord),
    /// A change to the ticket's clock that the closing [`Effect::Timing`] writes.
    Clock(ClockChange),
    /// The ticket went to this vendor (L4).
    SetVendor(String),
    /// The vendor's own ticket number, learned from their mail.
    VendorTicket(String),
    /// The ticket's clock and next due time as the plan leaves them: every plan on a ticket
    /// ends with one, computed by `decide` from the ticket's state.
    Timing(crate::store::Timing),
}

impl Effect {
    /// For a status change: the status it moves to, and whether that is a reopening.
    pub fn status_to(&self) -> Option<(TicketStatus, bool)> {
        match self {
            Effect::SetStatus { to, reopened } => Some((to.to(), *reopened)),
            _ => None,
        }
    }

    /// For an escalation: the tier it moves to.
    pub fn tier_to(&self) -> Option<Tier> {
        match self {
            Effect::ChangeTier(to) => Some(to.to()),
            _ => None,
        }
    }
}

/// Changes to a ticket's clock other than those its status, priority or first response
/// imply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClockChange {
    /// The ticket waits on the customer this long (`None`: the desk's default).
    WaitFor(Option<i64>),
    /// The customer was reminded.
    Reminded,
    /// Warnings or breaches acted on (`timing::Fired` bits).
    Fired(u8),
    /// The vendor was asked (their silence is timed from now).
    VendorAsked,
    /// The vendor answered.
    VendorAnswered,
    /// The ticket is held at L0 for self-service until then (`None`: no longer).
    SelfService(Option<crate::domain::SelfServiceHold>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Filing {
    pub outcome: StoredOutcome,
    pub detail: Option<FilingDetail>,
    pub machine: Option<MachineKind>,
    pub language: Option<Language>,
    pub from_non_participant: bool,
}

/// A mail to render from a template and queue.
#[derive(Clone, Debug, PartialEq)]
pub struct OutgoingMail {
    pub template: Template,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    pub language: Language,
    /// `None` for a person's words relayed (an agent's reply).
    pub auto_submitted: Option<AutoSubmitted>,
    /// The display name on From (the support address's): "Alice Martin (Support)" for an
    /// agent's reply; `None` for the desk's name.
    pub from_name: Option<String>,
    /// Attach the files of the mail being processed (an agent's reply).
    pub forward_attachments: bool,
    /// For `agent_receipt`.
    pub receipt: Vec<Receipt>,
    /// For `status_update`: assigned, escalated, waiting, resolved, closed, reopened.
    pub change: Option<Change>,
    /// Why: put in words in the recipient's language when the mail is rendered.
    pub reason: Option<crate::desk::wording::Notice>,
    /// Send the whole conversation so far (a new assignee's notification).
    pub include_thread: bool,
    /// Thread onto the mail being processed (`In-Reply-To` it), as an acknowledgement does;
    /// otherwise onto the ticket's earlier mail with this recipient.
    pub answers_mail: bool,
    /// For `agent_follow_up`: what was written this time.
    pub new_text: Option<NewText>,
    /// Knowledge-base articles: suggested (an acknowledgement, an agent's notification),
    /// or put into an agent's reply with `#article`.
    pub articles: Vec<MailArticle>,
}

/// An article a mail names.
#[derive(Clone, Debug, PartialEq)]
pub struct MailArticle {
    pub article: std::sync::Arc<crate::kb::Article>,
    /// The search score, for an agent's list.
    pub score: Option<f32>,
    /// Already sent to the customer (an agent's notification says so).
    pub sent: bool,
}

/// One command line of an agent's mail and what became of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Receipt {
    pub command: String,
    pub applied: bool,
    pub result: crate::desk::wording::Notice,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewText {
    pub from: String,
    pub text: String,
    pub attachments: Vec<AttachmentLine>,
    pub reopened: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventRecord {
    pub actor: Actor,
    pub event: events::Event,
}

impl EventRecord {
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }
}

impl Plan {
    /// The templates queued, in order: what tests and logs look at first.
    pub fn queued(&self) -> Vec<(Template, &EmailAddress)> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Queue(m) => Some((m.template, &m.to)),
                _ => None,
            })
            .collect()
    }

    pub fn events(&self) -> Vec<EventKind> {
        self.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Record(r) => Some(r.kind()),
                _ => None,
            })
            .collect()
    }
}

/// Why a ticket a command names was not found or not changed: for the command line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no ticket {0}")]
    NoTicket(ReferenceCode),
    #[error(transparent)]
    Refused(#[from] crate::domain::Refusal),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A ticket id and code, once a plan is written.
pub type Written = (TicketId, ReferenceCode);

/// How a mail found its ticket, for the event log.
/// Why a filed mail is what it is, beside its outcome. Decisions are made on this type;
/// the store keeps its words (`outcome_detail`), which people read in `tickets show`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilingDetail {
    /// Who wrote it on the ticket, when not the customer's side.
    Writer(thread::Writer),
    /// The machine that sent it (an auto-reply, a bounce…), appended or ignored.
    Machine(MachineKind),
    /// A second delivery of the mail stored as this message row.
    DuplicateOf(crate::store::MessageRowId),
    /// A second delivery, by its bytes, of a mail that could not be read.
    SameBytes,
    /// Why it was quarantined.
    Quarantined(String),
}

impl FilingDetail {
    pub fn stored(&self) -> std::borrow::Cow<'_, str> {
        match self {
            FilingDetail::Writer(w) => w.as_str().into(),
            FilingDetail::Machine(k) => k.as_str().into(),
            FilingDetail::DuplicateOf(row) => format!("duplicate of message {row}").into(),
            FilingDetail::SameBytes => "same bytes as an earlier mail".into(),
            FilingDetail::Quarantined(reason) => reason.as_str().into(),
        }
    }
}
