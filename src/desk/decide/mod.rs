//! The decisions: pure functions from a situation to a plan. No store, no clock, no I/O;
//! tested as tables of situations.

use std::collections::HashMap;

use super::mail_command::{self, MailCommand};
use super::*;
use crate::clock::Millis;
use crate::config::{DeskSettings, GatewaySettings};
use crate::desk::wording::Notice;
use crate::domain::{Category, Priority, Refusal};
use crate::inbound::{InboundMail, subject};
use crate::roster::{Assignee, Load};
use crate::routing::RouteInput;

mod agent;
mod commands;
mod follow_up;
mod new_ticket;
mod self_service;
mod vendor;

use super::effects::*;
use super::events::{self as ev, Event};
use super::heuristics::*;
use super::thread::Writer;
use agent::*;
pub use commands::decide_command;
use commands::*;
use follow_up::*;
use new_ticket::*;
pub(crate) use self_service::end_hold;
pub use self_service::suggestions;
use self_service::*;
pub use vendor::vendor_ticket_number;
use vendor::*;

/// How a follow-up found its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadedBy {
    ReferenceCode,
    References,
    Subject,
    /// A vendor's own ticket number, learned from their earlier mail.
    VendorTicket,
}

impl ThreadedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadedBy::ReferenceCode => "reference_code",
            ThreadedBy::References => "references",
            ThreadedBy::Subject => "subject",
            ThreadedBy::VendorTicket => "vendor_ticket",
        }
    }
}

/// What a mail says about itself before any database work: its language and its routing.
/// Pure but the costliest part of a decision (language detection, keyword matching), so
/// the pipeline computes it before it takes SQLite's only write lock.
#[derive(Clone, Debug, PartialEq)]
pub struct MailReading {
    pub language: Language,
    pub routing: Routing,
    /// What the knowledge base has for it (a new ticket's acknowledgement may carry some).
    pub found: crate::kb::suggest::Found,
}

pub fn read_mail(
    mail: &InboundMail,
    gateway: &GatewaySettings,
    desk: &DeskSettings,
) -> MailReading {
    MailReading {
        language: Language::choose(
            mail.content_language.as_deref(),
            // The beginning says which language it is; detection costs by the byte.
            &format!(
                "{}\n{}",
                mail.subject,
                head(&mail.reply_text, LANGUAGE_SAMPLE_BYTES)
            ),
            gateway.default_language,
        ),
        routing: route_mail(mail, desk),
        found: crate::kb::suggest::Found::default(),
    }
    .with_articles(mail, desk)
}

impl MailReading {
    /// The knowledge base searched with the mail's subject and new text, in its language.
    fn with_articles(mut self, mail: &InboundMail, desk: &DeskSettings) -> MailReading {
        self.found = crate::kb::suggest::find(
            &desk.knowledge.kb,
            &mail.subject,
            &mail.reply_text,
            self.language,
        );
        self
    }
}

/// Where answers to a mail go: its Reply-To when that is in the sender's own domain (or a
/// subdomain of it, either way), else the sender. A Reply-To elsewhere is how a forged or
/// careless mail steers the desk's answers to a third party: it is shown to the agent,
/// who can add it with `#cc`. (A web contact form's Reply-To, the person who wrote, is
/// trusted through `gateway.contact_forms`.)
pub fn answer_address(mail: &InboundMail) -> Option<&crate::inbound::Mailbox> {
    let from = mail.from.as_ref()?;
    let same_domain = |a: &str, b: &str| {
        let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
    };
    match &mail.reply_to {
        Some(r) if same_domain(r.address.domain(), from.address.domain()) => Some(r),
        _ => Some(from),
    }
}

/// How much of a mail's new text language detection reads.
const LANGUAGE_SAMPLE_BYTES: usize = 16 * 1024;

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Everything [`decide_mail`] may look at.
pub struct MailSituation<'a> {
    pub mail: &'a InboundMail,
    /// [`read_mail`]'s answer for this mail.
    pub reading: MailReading,
    /// What kind of machine sent it, if a machine did.
    pub machine: Option<MachineKind>,
    /// The same mail, filed before (a second delivery).
    pub earlier: Option<EarlierMail>,
    /// The ticket it threads onto.
    pub thread: Option<(&'a TicketRef, ThreadedBy)>,
    /// The sender is one of that ticket's participants.
    pub sender_is_participant: bool,
    /// That ticket's participants, when an agent writes on it (whom a public reply goes to).
    pub participants: Vec<EmailAddress>,
    /// Another, different mail already uses this Message-ID.
    pub collision: Option<i64>,
    pub gateway: &'a GatewaySettings,
    pub desk: &'a DeskSettings,
    pub loads: &'a HashMap<EmailAddress, Load>,
    /// For a mail from a roster address, when the desk requires authentication: whether a
    /// DKIM signature aligned with its From domain verified (checked before, with DNS).
    pub agent_dkim: Option<Result<(), String>>,
    /// Whether the customer's address can be written to (see `render::deliverable`).
    pub deliverable: Result<(), String>,
    pub now: Millis,
}

/// What an agent or the command line asks of a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Assign(EmailAddress),
    Escalate {
        to: Option<Tier>,
        reason: Option<String>,
        /// For L4: the vendor (by its configured name) the ticket goes to.
        vendor: Option<String>,
    },
    Resolve,
    Close,
    Reopen,
    /// The ticket waits for the customer's answer, for this long (the desk's default when
    /// not given); then the customer is reminded, and later the ticket resolved.
    Wait(Option<std::time::Duration>),
    SetPriority(Priority),
    SetCategory(Category),
    /// Someone else to keep informed (an agent's `#cc`).
    AddParticipant(EmailAddress),
}

pub struct CommandSituation<'a> {
    pub ticket: &'a TicketRef,
    pub command: &'a Command,
    pub actor: Actor,
    pub gateway: &'a GatewaySettings,
    pub desk: &'a DeskSettings,
    pub loads: &'a HashMap<EmailAddress, Load>,
    pub now: Millis,
}

fn filing(
    outcome: StoredOutcome,
    detail: Option<FilingDetail>,
    machine: Option<MachineKind>,
    language: Option<Language>,
) -> Effect {
    Effect::FileMail(Filing {
        outcome,
        detail,
        machine,
        language,
        from_non_participant: false,
    })
}

pub(crate) fn quarantine(reason: QuarantineReason, actor: Actor) -> Plan {
    let detail = reason.describe();
    Plan {
        ticket: PlanTicket::None,
        effects: vec![
            filing(
                StoredOutcome::Quarantined,
                Some(FilingDetail::Quarantined(detail.clone())),
                None,
                None,
            ),
            record(
                &actor,
                Event::Quarantined(ev::Quarantined { reason: detail }),
            ),
        ],
        outcome: PlannedOutcome::Quarantined(reason),
    }
}

/// A mail we could not read at all.
pub fn decide_unreadable(
    failure: &crate::inbound::ParseFailure,
    earlier: Option<EarlierMail>,
) -> Plan {
    match earlier {
        Some(first) => Plan {
            ticket: PlanTicket::None,
            effects: vec![filing(
                StoredOutcome::Duplicate,
                Some(FilingDetail::SameBytes),
                None,
                None,
            )],
            outcome: PlannedOutcome::Duplicate(first.outcome),
        },
        None => quarantine(
            QuarantineReason::Unparseable(failure.clone()),
            Actor::Gateway,
        ),
    }
}

/// What a mail becomes: a duplicate, a follow-up, ignored machine mail, quarantine, or a
/// new ticket routed, assigned and acknowledged.
pub fn decide_mail(s: &MailSituation<'_>) -> Plan {
    with_timing(mail_plan(s), s.desk, s.now)
}

fn mail_plan(s: &MailSituation<'_>) -> Plan {
    let mail = s.mail;
    let language = s.reading.language;
    let sender = mail.from.as_ref().map(|f| f.address.clone());

    if let Some(first) = s.earlier {
        return Plan {
            ticket: PlanTicket::None,
            effects: vec![Effect::FileMail(Filing {
                outcome: StoredOutcome::Duplicate,
                detail: Some(FilingDetail::DuplicateOf(first.row)),
                machine: s.machine,
                language: None,
                from_non_participant: false,
            })],
            outcome: PlannedOutcome::Duplicate(first.outcome),
        };
    }

    let mut plan = match s.thread {
        Some((ticket, _)) if is_stranger(s, ticket) => stranger(s, ticket, language),
        Some((ticket, how)) => follow_up(s, ticket, how, language),
        None => match (s.machine, &sender) {
            (Some(kind), _) => Plan {
                ticket: PlanTicket::None,
                effects: vec![filing(
                    StoredOutcome::Ignored,
                    Some(FilingDetail::Machine(kind)),
                    Some(kind),
                    Some(language),
                )],
                outcome: PlannedOutcome::Ignored(kind),
            },
            (None, None) => quarantine(QuarantineReason::NoSender, Actor::Machine(None)),
            (None, Some(from)) => match &s.deliverable {
                Err(e) => quarantine(
                    QuarantineReason::Unanswerable(e.clone()),
                    Actor::Customer(from.clone()),
                ),
                Ok(()) => new_ticket(s, from, language),
            },
        },
    };
    if let (Some(earlier), Some(id)) = (s.collision, &mail.message_id) {
        let outcome = match plan.outcome {
            PlannedOutcome::NewTicket => ev::CollisionOutcome::NewTicket,
            PlannedOutcome::Appended { .. } => ev::CollisionOutcome::Appended,
            PlannedOutcome::Ignored(_) => ev::CollisionOutcome::Ignored,
            PlannedOutcome::Quarantined(_) => ev::CollisionOutcome::Quarantined,
            _ => ev::CollisionOutcome::Other,
        };
        plan.effects.push(record(
            &Actor::Gateway,
            Event::MessageIdCollision(ev::MessageIdCollision {
                message_id: id.clone(),
                earlier_message: earlier,
                outcome,
            }),
        ));
    }
    plan
}

/// What routing makes of a mail: the rules applied to its subject, new text, sender,
/// recipients, attachments and headers.
pub fn route_mail(mail: &InboundMail, desk: &DeskSettings) -> Routing {
    let recipients: Vec<EmailAddress> = mail
        .to
        .iter()
        .chain(&mail.cc)
        .cloned()
        .chain(mail.delivered_to.iter().cloned())
        .collect();
    desk.rules.route(&RouteInput {
        subject: &mail.subject,
        text: &mail.reply_text,
        from: mail.from.as_ref().map(|f| &f.address),
        recipients: &recipients,
        has_attachment: !mail.attachments.is_empty(),
        headers: &mail.headers,
    })
}

/// What `helpdesk route` prints: the routing and who would get the ticket now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoutePreview {
    pub category: Category,
    pub priority: Priority,
    pub tier: Tier,
    pub rule: Option<String>,
    pub matched: Vec<String>,
    /// Each built-in category's score and its words, best first.
    pub scores: Vec<crate::routing::CategoryScore>,
    pub assignee: Option<String>,
    pub language: Language,
}

pub fn preview_route(
    mail: &InboundMail,
    gateway: &GatewaySettings,
    desk: &DeskSettings,
    loads: &HashMap<EmailAddress, Load>,
) -> RoutePreview {
    let MailReading {
        language, routing, ..
    } = read_mail(mail, gateway, desk);
    let assignee = match desk
        .roster
        .choose(routing.tier, &routing.category, language, loads, None)
    {
        Assignee::Agent(a) => Some(a.to_string()),
        Assignee::Unassigned { .. } => None,
    };
    RoutePreview {
        category: routing.category,
        priority: routing.priority,
        tier: routing.tier,
        rule: routing.rule,
        matched: routing.matched,
        scores: routing.scores,
        assignee,
        language,
    }
}

#[cfg(test)]
mod tests;
