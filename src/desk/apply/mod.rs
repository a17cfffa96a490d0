//! The only writer of plans: one plan, in order, inside the caller's transaction.
//!
//! Mail is rendered here, with the ticket as it is at that point of the plan (after the
//! assignment that precedes a notification), so a template always shows the new state. A
//! template that fails to render (a broken custom file) costs that one mail, recorded as a
//! `mail_not_rendered` event; it never costs the customer's mail or jams the mailbox.

use sha2::{Digest, Sha256};

use super::events::{self as ev, Event};
use super::thread::Writer;
use super::*;

mod digest;
mod mail;

use crate::config::{GatewaySettings, MailBudget};
use crate::domain::Priority;
use crate::inbound::InboundMail;
use crate::render::{Envelope, MailContext, OutgoingAttachment, Renderer, ThreadItem, capped_text};
use crate::roster::Roster;
use crate::store::SourceRef;
use crate::store::{
    Direction, Hold, Millis, NewAttachment, NewEvent, NewMessage, NewOutgoing, NewTicket,
    StoreError, StoreTx,
};
pub use digest::{Flood, queue_digest};
use mail::*;

pub struct ApplyContext<'a> {
    pub renderer: &'a Renderer,
    pub gateway: &'a GatewaySettings,
    pub roster: &'a Roster,
    /// The desk's calendar: its time zone for the times people read, and whether it is
    /// round the clock (the acknowledgement says so).
    pub calendar: &'a crate::calendar::Calendar,
    pub budget: MailBudget,
    pub now: Millis,
    /// When queued mail may go: `now`, but for `tick --at … --apply`, which acts at a
    /// simulated time and still sends what it queued at once, never at that time.
    pub send_at: Millis,
    /// Called before each mail is rendered (see `pipeline::StageHook`).
    pub hook: crate::stage::StageHook,
}

const HOUR_MS: Millis = 3_600_000;

/// The mail a plan files, when it files one.
pub struct MailInput<'a> {
    pub source: &'a SourceRef,
    pub raw: &'a [u8],
    pub sha: &'a str,
    /// `None` for a mail that could not be parsed.
    pub parsed: Option<&'a InboundMail>,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub ticket: Option<Written>,
    /// Outgoing mails queued.
    pub queued: usize,
}

/// The ticket as the plan has changed it so far.
struct Facts {
    id: TicketId,
    code: ReferenceCode,
    subject: String,
    customer: EmailAddress,
    customer_name: Option<String>,
    /// Moved effect by effect with [`TicketState::step`], the fold decide and timed use.
    state: TicketState,
    /// When the first answer is due, as the plan leaves the ticket's clock.
    first_response_due: Option<Millis>,
}

/// How many fresh codes to try when a generated one is taken (35 random bits: a
/// collision is rare; eight in a row means something else is wrong).
const CODE_ATTEMPTS: usize = 8;

pub async fn apply(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
    mail: Option<&MailInput<'_>>,
) -> Result<Applied, StoreError> {
    let now = ctx.now;
    let mut facts = facts_of(tx, ctx, plan).await?;
    let ticket_id = facts.as_ref().map(|f| f.id);
    // Whose open ticket this was before the plan (a new ticket was nobody's).
    let load_before = match &plan.ticket {
        PlanTicket::Existing(t) => t.assignee.clone().filter(|_| t.status.is_open()),
        _ => None,
    };
    let mut assigned_to = Vec::new();
    let mut events = Events::new(now);
    // Whether the mail being filed comes from an outside sender flooding the desk: asked
    // once, when the plan first tells one of the desk's people something.
    let mut flood: Option<Option<EmailAddress>> = None;
    let mut filed_row = None;
    let mut queued = 0;
    for effect in &plan.effects {
        if let Some(f) = facts.as_mut() {
            f.state.step(effect, now, ctx.calendar);
        }
        match effect {
            Effect::FileMail(filing) => {
                let mail =
                    mail.ok_or(StoreError::BadPlan("a plan files a mail it was not given"))?;
                let row = file_mail(tx, mail, ticket_id, filing, now).await?;
                filed_row = Some(row);
            }
            Effect::AddParticipant(address, role) => {
                let id = ticket_id.ok_or(StoreError::BadPlan("a participant without a ticket"))?;
                tx.add_participant(id, address, *role, now).await?;
            }
            Effect::SetStatus { .. }
            | Effect::ChangeTier(_)
            | Effect::Assign(_)
            | Effect::SetPriority(_)
            | Effect::SetCategory(_) => {
                let id =
                    ticket_id.ok_or(StoreError::BadPlan("a ticket change without a ticket"))?;
                write_ticket_change(tx, id, effect, now).await?;
                if let Effect::Assign(agent) = effect {
                    assigned_to.extend(agent.clone());
                }
            }
            Effect::Rate { .. } | Effect::FirstResponse | Effect::Touch => {
                if let Some(id) = ticket_id {
                    write_ticket_change(tx, id, effect, now).await?;
                }
            }
            Effect::Record(r) => {
                events.push(ticket_id, filed_row, &r.actor, r.event.clone());
            }
            // Folded by `decide` into the `Timing` that closes the plan.
            Effect::Clock(_) => {}
            Effect::Timing(_) | Effect::SetVendor(_) | Effect::VendorTicket(_) => {
                if let Some(id) = ticket_id {
                    write_ticket_change(tx, id, effect, now).await?;
                }
            }
            Effect::Queue(out) => {
                let f = facts
                    .as_ref()
                    .ok_or(StoreError::BadPlan("a mail to send without a ticket"))?;
                let inbound = mail.and_then(|m| m.parsed);
                let flood_from = if ctx.roster.is_desk_address(&out.to) {
                    if flood.is_none() {
                        flood = Some(flooding(tx, ctx, inbound).await?);
                    }
                    flood.clone().flatten()
                } else {
                    None
                };
                if queue(tx, ctx, f, out, inbound, flood_from, &mut events).await? {
                    queued += 1;
                }
            }
        }
    }
    events.write(tx).await?;
    // The agents' loads, from the ticket as it was and as the plan leaves it.
    let load_after = facts.as_ref().and_then(|f| {
        f.state
            .assignee
            .clone()
            .filter(|_| f.state.status.is_open())
    });
    adjust_loads(tx, load_before, load_after, &assigned_to, now).await?;
    Ok(Applied {
        ticket: facts.map(|f| (f.id, f.code)),
        queued,
    })
}

/// The ticket the plan works on, as it finds it (a new one is opened now), with the first
/// answer's due time as the plan leaves it.
async fn facts_of(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
) -> Result<Option<Facts>, StoreError> {
    let now = ctx.now;
    let mut facts = match &plan.ticket {
        PlanTicket::None => None,
        PlanTicket::Existing(t) => Some(Facts {
            id: t.id,
            code: t.code.clone(),
            subject: t.subject.clone(),
            customer: t.customer.clone(),
            customer_name: t.customer_name.clone(),
            state: TicketState::of(t),
            first_response_due: None,
        }),
        PlanTicket::New(new) => Some(open_ticket(tx, ctx, new, now).await?),
    };
    if let Some(f) = facts.as_mut() {
        f.first_response_due = plan.effects.iter().rev().find_map(|e| match e {
            Effect::Timing(t) => t.dues.first_response,
            _ => None,
        });
    }
    Ok(facts)
}

/// One change of the ticket's own row.
async fn write_ticket_change(
    tx: &mut dyn StoreTx,
    id: TicketId,
    effect: &Effect,
    now: Millis,
) -> Result<(), StoreError> {
    match effect {
        Effect::SetStatus { to, reopened } => {
            tx.set_ticket_status(id, to.to(), *reopened, now).await
        }
        Effect::ChangeTier(tier) => tx.set_tier(id, tier.to(), now).await,
        Effect::Assign(agent) => tx.set_assignee(id, agent.as_ref(), now).await,
        Effect::SetPriority(p) => tx.set_priority(id, *p, now).await,
        Effect::SetCategory(c) => tx.set_category(id, c, now).await,
        Effect::Rate { score, comment } => {
            tx.set_satisfaction(id, *score, comment.as_deref(), now)
                .await
        }
        Effect::FirstResponse => tx.set_first_response(id, now).await,
        Effect::Touch => tx.touch_ticket(id, now).await,
        Effect::Timing(timing) => tx.set_timing(id, timing).await,
        Effect::SetVendor(name) => tx.set_vendor(id, name, now).await,
        Effect::VendorTicket(number) => tx.set_vendor_ticket(id, number).await,
        _ => Ok(()),
    }
}

/// The agents' loads, from whose open ticket it was before the plan and after it; an agent
/// given the ticket is marked as just assigned (taking turns).
async fn adjust_loads(
    tx: &mut dyn StoreTx,
    load_before: Option<EmailAddress>,
    load_after: Option<EmailAddress>,
    assigned_to: &[EmailAddress],
    now: Millis,
) -> Result<(), StoreError> {
    let moved = load_before != load_after;
    if moved {
        if let Some(a) = &load_before {
            tx.adjust_load(a, -1, None).await?;
        }
        if let Some(a) = &load_after {
            tx.adjust_load(a, 1, assigned_to.contains(a).then_some(now))
                .await?;
        }
    }
    for a in assigned_to
        .iter()
        .filter(|a| !(moved && load_after.as_ref() == Some(*a)))
    {
        tx.adjust_load(a, 0, Some(now)).await?;
    }
    Ok(())
}

/// The plan's events, written together at its end: one statement instead of one per event
/// (every statement is a round trip to SQLite's worker thread, the gateway's largest cost
/// per mail). Nothing in a plan reads the events it writes.
struct Events {
    at: Millis,
    rows: Vec<EventRow>,
}

struct EventRow {
    ticket: Option<TicketId>,
    message: Option<i64>,
    actor: Actor,
    event: Event,
}

impl Events {
    fn new(at: Millis) -> Self {
        Events {
            at,
            rows: Vec::new(),
        }
    }

    fn push(
        &mut self,
        ticket: Option<TicketId>,
        message: Option<i64>,
        actor: &Actor,
        event: Event,
    ) {
        self.rows.push(EventRow {
            ticket,
            message,
            actor: actor.clone(),
            event,
        });
    }

    async fn write(self, tx: &mut dyn StoreTx) -> Result<(), StoreError> {
        let rows: Vec<NewEvent<'_>> = self
            .rows
            .iter()
            .map(|e| NewEvent {
                ticket: e.ticket,
                message: e.message,
                kind: e.event.kind(),
                actor: &e.actor,
                detail: e.event.detail(),
                at: self.at,
            })
            .collect();
        tx.insert_events(&rows).await
    }
}

async fn open_ticket(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    new: &NewTicketPlan,
    now: Millis,
) -> Result<Facts, StoreError> {
    let mut attempt = 0;
    loop {
        let code = ReferenceCode::generate(&ctx.gateway.reference_prefix);
        let row = NewTicket {
            code: &code,
            tier: new.routing.tier,
            category: &new.routing.category,
            priority: new.routing.priority,
            customer: &new.customer,
            customer_name: new.customer_name.as_deref(),
            subject: &new.subject,
            thread_key: &new.thread_key,
            language: new.language,
            follows: new.follows.as_ref().map(|t| t.id),
            at: now,
        };
        match tx.insert_ticket(row).await {
            Ok(id) => {
                return Ok(Facts {
                    id,
                    code,
                    subject: new.subject.clone(),
                    customer: new.customer.clone(),
                    customer_name: new.customer_name.clone(),
                    state: TicketState::opened(new, now),
                    first_response_due: None,
                });
            }
            Err(StoreError::CodeTaken(_)) if attempt + 1 < CODE_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

async fn file_mail(
    tx: &mut dyn StoreTx,
    input: &MailInput<'_>,
    ticket: Option<TicketId>,
    filing: &Filing,
    now: Millis,
) -> Result<i64, StoreError> {
    let ticket = match filing.outcome {
        StoredOutcome::Quarantined | StoredOutcome::Ignored => None,
        StoredOutcome::Duplicate => None,
        _ => ticket,
    };
    let record = match input.parsed {
        Some(m) => NewMessage {
            ticket,
            direction: Direction::Inbound,
            outcome: filing.outcome,
            outcome_detail: filing.detail.as_deref(),
            source_key: input.source.key.as_deref(),
            message_id: m.message_id.as_deref(),
            raw: input.raw,
            raw_sha256: input.sha,
            from_addr: m.from.as_ref().map(|f| f.address.as_str()),
            from_name: m.from.as_ref().and_then(|f| f.name.as_deref()),
            reply_to: m.reply_to.as_ref().map(|f| f.address.as_str()),
            to: m.to.iter().map(|a| a.to_string()).collect(),
            cc: m.cc.iter().map(|a| a.to_string()).collect(),
            subject: &m.subject,
            in_reply_to: &m.in_reply_to,
            references: &m.references,
            sent_date: m.date.map(|d| d * 1000),
            body_text: &m.body_text,
            reply_text: &m.reply_text,
            quoted_text: &m.quoted_text,
            signature: &m.signature,
            language: filing.language,
            machine_kind: filing.machine.map(|k| k.as_str()),
            from_non_participant: filing.from_non_participant,
            content_sha256: Some(&m.content_sha256),
            at: now,
        },
        None => NewMessage {
            ticket: None,
            direction: Direction::Inbound,
            outcome: filing.outcome,
            outcome_detail: filing.detail.as_deref(),
            source_key: input.source.key.as_deref(),
            message_id: None,
            raw: input.raw,
            raw_sha256: input.sha,
            from_addr: None,
            from_name: None,
            reply_to: None,
            to: Vec::new(),
            cc: Vec::new(),
            subject: "",
            in_reply_to: &[],
            references: &[],
            sent_date: None,
            body_text: "",
            reply_text: "",
            quoted_text: "",
            signature: "",
            language: None,
            machine_kind: None,
            from_non_participant: false,
            content_sha256: None,
            at: now,
        },
    };
    let row = tx.insert_message(record).await?;
    if matches!(
        filing.outcome,
        StoredOutcome::NewTicket | StoredOutcome::Appended
    ) && let Some(m) = input.parsed
    {
        for a in &m.attachments {
            tx.insert_attachment(
                row,
                NewAttachment {
                    filename: a.filename.as_deref(),
                    content_type: &a.content_type,
                    content: &a.content,
                    raw_body: a.raw_body,
                },
            )
            .await?;
        }
    }
    if filing.outcome == StoredOutcome::Quarantined {
        tracing::warn!(
            source = input.source.key.as_deref().unwrap_or("-"),
            reason = filing.detail.as_deref().unwrap_or(""),
            "mail quarantined"
        );
    }
    Ok(row)
}
