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
            Effect::SetStatus { to, reopened } => {
                let f = facts
                    .as_mut()
                    .ok_or(StoreError::BadPlan("a status without a ticket"))?;
                tx.set_ticket_status(f.id, to.to(), *reopened, now).await?;
            }
            Effect::ChangeTier(tier) => {
                let f = facts
                    .as_mut()
                    .ok_or(StoreError::BadPlan("a tier without a ticket"))?;
                tx.set_tier(f.id, tier.to(), now).await?;
            }
            Effect::Assign(agent) => {
                let f = facts
                    .as_mut()
                    .ok_or(StoreError::BadPlan("an assignment without a ticket"))?;
                tx.set_assignee(f.id, agent.as_ref(), now).await?;
                assigned_to.extend(agent.clone());
            }
            Effect::SetPriority(p) => {
                let f = facts
                    .as_mut()
                    .ok_or(StoreError::BadPlan("a priority without a ticket"))?;
                tx.set_priority(f.id, *p, now).await?;
            }
            Effect::SetCategory(c) => {
                let f = facts
                    .as_mut()
                    .ok_or(StoreError::BadPlan("a category without a ticket"))?;
                tx.set_category(f.id, c, now).await?;
            }
            Effect::Rate { score, comment } => {
                if let Some(id) = ticket_id {
                    tx.set_satisfaction(id, *score, comment.as_deref(), now)
                        .await?;
                }
            }
            Effect::FirstResponse => {
                if let Some(id) = ticket_id {
                    tx.set_first_response(id, now).await?;
                }
            }
            Effect::Touch => {
                if let Some(id) = ticket_id {
                    tx.touch_ticket(id, now).await?;
                }
            }
            Effect::Record(r) => {
                events.push(ticket_id, filed_row, &r.actor, r.event.clone());
            }
            // Folded by `decide` into the `Timing` that closes the plan.
            Effect::Clock(_) => {}
            Effect::Timing(timing) => {
                if let Some(id) = ticket_id {
                    tx.set_timing(id, timing).await?;
                }
            }
            Effect::SetVendor(name) => {
                if let Some(id) = ticket_id {
                    tx.set_vendor(id, name, now).await?;
                }
            }
            Effect::VendorTicket(number) => {
                if let Some(id) = ticket_id {
                    tx.set_vendor_ticket(id, number).await?;
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
    Ok(Applied {
        ticket: facts.map(|f| (f.id, f.code)),
        queued,
    })
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

/// When a message of the thread was written, as the reader says it, in the desk's zone.
fn thread_date(at: Millis, tz: chrono_tz::Tz, language: Language) -> String {
    crate::desk::wording::moment(crate::timing::instant(at).with_timezone(&tz), language)
}

fn author(from: Option<&str>, name: Option<&str>) -> String {
    match (name, from) {
        (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
        (_, Some(a)) => a.to_string(),
        _ => "?".into(),
    }
}

/// The sender of the mail being filed, when they are an outside sender who wrote more than
/// the desk's flood limit in the last hour: what their mail would tell the desk's people is
/// then held for one digest.
async fn flooding(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    inbound: Option<&InboundMail>,
) -> Result<Option<EmailAddress>, StoreError> {
    let Some(from) = inbound.and_then(|m| m.from.as_ref()).map(|f| &f.address) else {
        return Ok(None);
    };
    if ctx.roster.is_desk_address(from) {
        return Ok(None);
    }
    let cap = ctx.budget.flood_per_hour;
    let sent = tx.mail_from_since(from, ctx.now - HOUR_MS, cap + 1).await?;
    Ok((sent > cap).then(|| from.clone()))
}

/// Renders and queues one mail; false when it was held (budget, flood) or could not be
/// rendered (both recorded). Held mail is rendered and stored all the same: it is deferred,
/// not dropped.
async fn queue(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
    flood_from: Option<EmailAddress>,
    events: &mut Events,
) -> Result<bool, StoreError> {
    let now = ctx.now;
    let mut hold = None;
    if let Some(sender) = flood_from {
        tracing::warn!(
            code = %f.code,
            to = %out.to,
            kind = out.template.name(),
            flood_from = %sender,
            "mail to the desk held for a digest: its sender floods the desk"
        );
        events.push(
            Some(f.id),
            None,
            &Actor::Gateway,
            Event::MailHeld(ev::MailHeld {
                kind: out.template,
                to: out.to.clone(),
                flood_from: Some(sender.clone()),
                last_hour: None,
                last_day: None,
            }),
        );
        hold = Some(Hold {
            flood_from: Some(sender),
            ticket_status: Some(f.state.status),
        });
    } else if out.auto_submitted.is_some() && !ctx.roster.is_desk_address(&out.to) {
        let (hour, day) = tx
            .automatic_mail_sent(
                &out.to,
                Template::budgeted(),
                (now - HOUR_MS, now - 24 * HOUR_MS, now),
                (ctx.budget.per_hour, ctx.budget.per_day),
            )
            .await?;
        if hour >= ctx.budget.per_hour || day >= ctx.budget.per_day {
            tracing::warn!(
                code = %f.code,
                to = %out.to,
                kind = out.template.name(),
                last_hour = hour,
                last_day = day,
                "automatic mail held until the recipient's budget allows it"
            );
            events.push(
                Some(f.id),
                None,
                &Actor::Gateway,
                Event::MailHeld(ev::MailHeld {
                    kind: out.template,
                    to: out.to.clone(),
                    flood_from: None,
                    last_hour: Some(hour),
                    last_day: Some(day),
                }),
            );
            hold = Some(Hold {
                flood_from: None,
                ticket_status: Some(f.state.status),
            });
        }
    }
    let assignee_name = f
        .state
        .assignee
        .as_ref()
        .map(|a| {
            ctx.roster
                .agent(a)
                .map(|agent| agent.name.clone())
                .unwrap_or_else(|| a.to_string())
        })
        .unwrap_or_default();
    let entries = if out.include_thread {
        tx.thread(f.id, super::thread::in_thread).await?
    } else {
        Vec::new()
    };
    let (last_message, last_message_date) = entries
        .iter()
        .rev()
        .find(|e| e.from.as_deref() == Some(f.customer.as_str()))
        .map(|e| {
            (
                capped_text(&e.text, out.language),
                thread_date(e.at, ctx.calendar.time_zone, out.language),
            )
        })
        .unwrap_or_default();
    // A vendor is sent what was said, not who said it or how to reach them.
    let private = out.template == Template::VendorForward;
    let thread = if out.include_thread {
        entries
            .into_iter()
            .filter(|e| !(private && Writer::of(e) == Some(Writer::InternalNote)))
            .map(|e| ThreadItem {
                author: if private {
                    match (e.detail.as_deref(), Writer::of(&e)) {
                        (Some(super::thread::AGENT_REPLY), _) => ctx.gateway.support_name.clone(),
                        (_, Some(Writer::Vendor)) => out.to_name.clone().unwrap_or_default(),
                        _ => "user".into(),
                    }
                } else {
                    author(e.from.as_deref(), e.from_name.as_deref())
                },
                date: thread_date(e.at, ctx.calendar.time_zone, out.language),
                text: {
                    let text = capped_text(&e.text, out.language);
                    if private {
                        crate::render::without_contact_details(&text)
                    } else {
                        text
                    }
                },
                attachments: e
                    .attachments
                    .iter()
                    .map(|a| AttachmentLine::new(a.filename.as_deref(), a.size.max(0) as u64))
                    .collect(),
            })
            .collect()
    } else {
        Vec::new()
    };
    let wording = crate::desk::wording::Wording {
        roster: ctx.roster,
        time_zone: ctx.calendar.time_zone,
    };
    let context = MailContext {
        code: f.code.to_string(),
        tag: f.code.tag(),
        subject: crate::render::echoed_subject(&f.subject),
        customer_name: f.customer_name.clone().unwrap_or_default(),
        customer_address: f.customer.to_string(),
        support_name: ctx.gateway.support_name.clone(),
        support_address: ctx.gateway.support_address.to_string(),
        recipient_name: out.to_name.clone().unwrap_or_default(),
        tier: f.state.tier.to_string(),
        tier_label: ctx.roster.tier_label(f.state.tier, out.language),
        category: f.state.category.to_string(),
        category_label: ctx.roster.category_label(&f.state.category, out.language),
        urgent: f.state.priority == Priority::Urgent,
        answer_by: f
            .first_response_due
            .map(|at| {
                crate::desk::wording::moment(
                    crate::timing::instant(at).with_timezone(&ctx.calendar.time_zone),
                    out.language,
                )
            })
            .unwrap_or_default(),
        round_the_clock: *ctx.calendar == crate::calendar::Calendar::always(),
        time_zone: zone_city(ctx.calendar.time_zone),
        organisation: ctx.gateway.organisation.clone(),
        priority: f.state.priority.to_string(),
        priority_label: crate::render::priority_label(f.state.priority, out.language).into(),
        status: f.state.status.to_string(),
        status_label: crate::render::status_label(f.state.status, out.language).into(),
        assignee_name,
        change: out.change,
        reason: out
            .reason
            .as_ref()
            .map(|r| r.words(out.language, &wording))
            .unwrap_or_default(),
        new_text: out
            .new_text
            .as_ref()
            .map(|n| capped_text(&n.text, out.language))
            .unwrap_or_default(),
        new_text_from: out
            .new_text
            .as_ref()
            .map(|n| n.from.clone())
            .unwrap_or_default(),
        reopened: out.new_text.as_ref().is_some_and(|n| n.reopened),
        attachments: out
            .new_text
            .as_ref()
            .map(|n| n.attachments.clone())
            .unwrap_or_default(),
        thread,
        receipt: out
            .receipt
            .iter()
            .map(|r| crate::render::ReceiptLine {
                command: r.command.clone(),
                applied: r.applied,
                result: r.result.words(out.language, &wording),
            })
            .collect(),
        last_message,
        last_message_date,
        ..MailContext::default()
    };
    let (in_reply_to, references) = match inbound.filter(|_| out.answers_mail) {
        Some(m) => (m.message_id.clone(), m.references.clone()),
        None => {
            let ids = tx.thread_message_ids(f.id, &out.to).await?;
            (ids.last().cloned(), ids)
        }
    };
    let attachments: Vec<OutgoingAttachment> = match inbound.filter(|_| out.forward_attachments) {
        Some(m) => m
            .attachments
            .iter()
            .map(|a| OutgoingAttachment {
                filename: a.filename.clone().unwrap_or_else(|| "attachment".into()),
                content_type: a.content_type.clone(),
                content: a.content.clone(),
            })
            .collect(),
        None => Vec::new(),
    };
    let from_name = out
        .from_name
        .clone()
        .unwrap_or_else(|| ctx.gateway.support_name.clone());
    let env = Envelope {
        from: &ctx.gateway.support_address,
        from_name: &from_name,
        to: &out.to,
        to_name: out.to_name.as_deref(),
        in_reply_to: in_reply_to.as_deref(),
        references: &references,
        language: out.language,
        auto_submitted: out.auto_submitted,
        attachments: &attachments,
    };
    let kind = out.template.name();
    // A panic while rendering (a template helper, the mail builder) costs this one mail,
    // like a template that fails to render: the customer's mail is filed all the same.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (ctx.hook)(crate::stage::Stage::Render, &f.subject);
        ctx.renderer.render(out.template, &context, &env)
    }))
    .unwrap_or_else(|panic| {
        Err(crate::render::RenderError::Panicked(
            crate::stage::panic_message(panic.as_ref()),
        ))
    });
    let rendered = match rendered {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(code = %f.code, kind, to = %out.to, error = %e, "mail not rendered");
            events.push(
                Some(f.id),
                None,
                &Actor::Gateway,
                Event::MailNotRendered(ev::MailNotRendered {
                    kind: out.template,
                    to: out.to.clone(),
                    error: e.to_string(),
                }),
            );
            return Ok(false);
        }
    };
    let held = hold.is_some();
    let row = store_outgoing(
        tx,
        ctx,
        Outgoing {
            ticket: Some(f.id),
            kind,
            rendered: &rendered,
            from_name: &from_name,
            to: &out.to,
            in_reply_to: in_reply_to.as_deref(),
            references: &references,
            language: out.language,
            hold,
        },
    )
    .await?;
    if held {
        return Ok(false);
    }
    events.push(
        Some(f.id),
        Some(row),
        &Actor::Gateway,
        Event::MailQueued(ev::MailQueued {
            kind: out.template,
            to: out.to.clone(),
            change: out.change,
        }),
    );
    tracing::debug!(code = %f.code, kind, to = %out.to, "mail queued");
    Ok(true)
}

/// A rendered mail, to be stored and queued (or held).
struct Outgoing<'a> {
    ticket: Option<TicketId>,
    kind: &'static str,
    rendered: &'a crate::render::Rendered,
    from_name: &'a str,
    to: &'a EmailAddress,
    in_reply_to: Option<&'a str>,
    references: &'a [String],
    language: Language,
    hold: Option<Hold>,
}

/// Stores a rendered mail with the ticket's messages and puts it in the outbox (held or
/// pending); returns its message row.
async fn store_outgoing(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    o: Outgoing<'_>,
) -> Result<i64, StoreError> {
    let support = ctx.gateway.support_address.to_string();
    let rcpt = [o.to.to_string()];
    let row = tx
        .insert_message(NewMessage {
            ticket: o.ticket,
            direction: Direction::Outbound,
            outcome: StoredOutcome::Outgoing,
            outcome_detail: Some(o.kind),
            source_key: None,
            message_id: Some(&o.rendered.message_id),
            content_sha256: None,
            raw: &o.rendered.raw,
            raw_sha256: &hex::encode(Sha256::digest(&o.rendered.raw)),
            from_addr: Some(&support),
            from_name: Some(o.from_name),
            reply_to: None,
            to: rcpt.to_vec(),
            cc: Vec::new(),
            subject: &o.rendered.subject,
            in_reply_to: &o
                .in_reply_to
                .map(str::to_string)
                .into_iter()
                .collect::<Vec<_>>(),
            references: o.references,
            sent_date: Some(ctx.now),
            body_text: &o.rendered.text,
            reply_text: &o.rendered.text,
            quoted_text: "",
            signature: "",
            language: Some(o.language),
            machine_kind: None,
            from_non_participant: false,
            at: ctx.now,
        })
        .await?;
    tx.enqueue(NewOutgoing {
        ticket: o.ticket,
        message: row,
        kind: o.kind,
        mail_from: &support,
        rcpt_to: &rcpt,
        at: ctx.send_at,
        hold: o.hold,
    })
    .await?;
    Ok(row)
}

/// How many ticket codes a flood digest lists before "and N more".
const DIGEST_CODES: usize = 50;

/// One outside sender's flood, as held for one of the desk's people.
pub struct Flood<'a> {
    pub to: &'a EmailAddress,
    pub from: &'a str,
    /// The held mails this digest replaces.
    pub held: Vec<crate::store::OutboxId>,
    /// Their tickets, oldest first, each once.
    pub codes: Vec<String>,
    /// How many mails the sender wrote in the hour the flood began.
    pub sent: u64,
}

/// Queues the digest that replaces a flood's held mail, and supersedes that mail. Not
/// budgeted: it goes to the desk's own people, once per flood.
pub async fn queue_digest(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    flood: Flood<'_>,
) -> Result<bool, StoreError> {
    let now = ctx.now;
    let language = ctx
        .roster
        .agent(flood.to)
        .map(|a| a.language(ctx.gateway.default_language))
        .unwrap_or(ctx.gateway.default_language);
    let count = flood.held.len() as u64;
    let context = MailContext {
        support_name: ctx.gateway.support_name.clone(),
        support_address: ctx.gateway.support_address.to_string(),
        recipient_name: ctx
            .roster
            .agent(flood.to)
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        flood_from: flood.from.to_string(),
        flood_count: flood.sent.max(count),
        flood_held: count,
        flood_codes: flood.codes.iter().take(DIGEST_CODES).cloned().collect(),
        flood_more: flood.codes.len().saturating_sub(DIGEST_CODES) as u64,
        ..MailContext::default()
    };
    let env = Envelope {
        from: &ctx.gateway.support_address,
        from_name: &ctx.gateway.support_name,
        to: flood.to,
        to_name: ctx.roster.agent(flood.to).map(|a| a.name.as_str()),
        in_reply_to: None,
        references: &[],
        language,
        auto_submitted: Some(crate::render::AutoSubmitted::Generated),
        attachments: &[],
    };
    let mut events = Events::new(now);
    let detail = ev::MailDigested {
        to: flood.to.clone(),
        flood_from: flood.from.to_string(),
        held: count,
    };
    let rendered = match ctx.renderer.render(Template::FloodDigest, &context, &env) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(to = %flood.to, error = %e, "flood digest not rendered");
            events.push(
                None,
                None,
                &Actor::Gateway,
                Event::MailNotRendered(ev::MailNotRendered {
                    kind: Template::FloodDigest,
                    to: flood.to.clone(),
                    error: e.to_string(),
                }),
            );
            events.write(tx).await?;
            return Ok(false);
        }
    };
    let row = store_outgoing(
        tx,
        ctx,
        Outgoing {
            ticket: None,
            kind: Template::FloodDigest.name(),
            rendered: &rendered,
            from_name: &ctx.gateway.support_name,
            to: flood.to,
            in_reply_to: None,
            references: &[],
            language,
            hold: None,
        },
    )
    .await?;
    tx.supersede_mail(&flood.held).await?;
    events.push(
        None,
        Some(row),
        &Actor::Gateway,
        Event::MailDigested(detail),
    );
    events.write(tx).await?;
    tracing::warn!(to = %flood.to, flood_from = flood.from, held = count, "flood digest queued");
    Ok(true)
}

/// "Paris" for Europe/Paris, "New York" for America/New_York: how people name a zone's
/// time ("heure de Paris", "Paris time").
fn zone_city(tz: chrono_tz::Tz) -> String {
    let name = tz.name();
    name.rsplit('/').next().unwrap_or(name).replace('_', " ")
}
