//! The first half of `apply`: everything a plan needs before a single row is written.
//!
//! It folds the plan's effects over the ticket (the one fold, [`TicketState::step`]),
//! gathers what the hold decisions and the templates read (the thread, the Message-IDs a
//! recipient already has, each outside recipient's automatic-mail counts, whether the
//! sender floods the desk), and renders every mail. What comes out is a [`ChangeSet`]:
//! rows to write and nothing left to decide, so `write` only writes.
//!
//! The plan's own messages (the mail it files, the mail it sends) are not in the store yet
//! while it is prepared; they are kept here, in plan order, and join what was read, as the
//! store would show them once written.

use std::collections::HashMap;

use super::mail::{prepare_mail, thread_entry_of_outgoing};
use super::*;
use crate::store::{Exchanged, ThreadEntry};

/// The ticket the plan works on, as the plan has changed it so far.
pub(super) struct Facts {
    /// `None` for a ticket the plan opens: it has no row before `write`.
    pub(super) id: Option<TicketId>,
    pub(super) code: ReferenceCode,
    pub(super) subject: String,
    pub(super) customer: EmailAddress,
    pub(super) customer_name: Option<String>,
    /// Moved effect by effect with [`TicketState::step`], the fold decide and timed use.
    pub(super) state: TicketState,
    /// When the first answer is due, as the plan leaves the ticket's clock.
    pub(super) first_response_due: Option<Millis>,
}

/// What `prepare` reads, each once per plan, and the plan's own messages so far.
pub(super) struct Reads {
    thread: Option<Vec<ThreadEntry>>,
    exchanged: Option<Vec<Exchanged>>,
    /// Automatic mail to each outside recipient in the last hour and day, up to the caps,
    /// spent locally by the plan's own queued mail.
    pub(super) sent: HashMap<EmailAddress, (u32, u32)>,
    /// Whether the mail being filed comes from an outside sender flooding the desk.
    flood: Option<Option<EmailAddress>>,
    /// What was read, as read (before the plan's own mail spent the counts).
    log: ReadLog,
    /// The plan's messages, in order, as the store will hold them.
    own: Vec<OwnMessage>,
    /// Whether the plan has filed its mail yet (it then counts in the sender's flood).
    pub(super) filed: bool,
}

/// A message the plan writes, with what thread and threading read of it.
pub(super) struct OwnMessage {
    pub(super) entry: ThreadEntry,
    /// `None` without a Message-ID.
    pub(super) exchanged: Option<Exchanged>,
}

impl Reads {
    fn new() -> Self {
        Reads {
            thread: None,
            exchanged: None,
            sent: HashMap::new(),
            flood: None,
            log: ReadLog::default(),
            own: Vec::new(),
            filed: false,
        }
    }

    /// The thread as the store will show it at this point of the plan.
    pub(super) async fn thread(
        &mut self,
        tx: &mut dyn StoreTx,
        f: &Facts,
    ) -> Result<Vec<ThreadEntry>, StoreError> {
        if self.thread.is_none() {
            let stored = match f.id {
                Some(id) => tx.thread(id, thread::in_thread).await?,
                None => Vec::new(),
            };
            self.log.thread = Some(stored.clone());
            self.thread = Some(stored);
        }
        let stored = self.thread.iter().flatten().cloned();
        let own = self
            .own
            .iter()
            .map(|m| m.entry.clone())
            .filter(thread::in_thread);
        Ok(stored.chain(own).collect())
    }

    /// The Message-IDs a new mail to `with` names, the plan's own mail included.
    pub(super) async fn message_ids(
        &mut self,
        tx: &mut dyn StoreTx,
        f: &Facts,
        with: &EmailAddress,
    ) -> Result<Vec<String>, StoreError> {
        if self.exchanged.is_none() {
            let stored = match f.id {
                Some(id) => tx.exchanged(id).await?,
                None => Vec::new(),
            };
            self.log.exchanged = Some(stored.clone());
            self.exchanged = Some(stored);
        }
        let stored = self.exchanged.iter().flatten();
        let own = self.own.iter().filter_map(|m| m.exchanged.as_ref());
        Ok(thread::references_for(stored.chain(own), with))
    }

    /// `to`'s automatic mail in the last hour and day, as the plan has spent it so far.
    pub(super) async fn sent(
        &mut self,
        tx: &mut dyn StoreTx,
        ctx: &ApplyContext<'_>,
        to: &EmailAddress,
    ) -> Result<(u32, u32), StoreError> {
        if let Some(counts) = self.sent.get(to) {
            return Ok(*counts);
        }
        let counts = budget_counts(tx, ctx, to).await?;
        self.sent.insert(to.clone(), counts);
        self.log.sent.push((to.clone(), counts));
        Ok(counts)
    }

    /// The sender of the mail being filed, when they are an outside sender who wrote more
    /// than the desk's flood limit in the last hour (this mail included once filed): what
    /// their mail would tell the desk's people is then held for one digest.
    pub(super) async fn flooding(
        &mut self,
        tx: &mut dyn StoreTx,
        ctx: &ApplyContext<'_>,
        inbound: Option<&InboundMail>,
    ) -> Result<Option<EmailAddress>, StoreError> {
        if let Some(flood) = &self.flood {
            return Ok(flood.clone());
        }
        let from = inbound
            .and_then(|m| m.from.as_ref())
            .map(|f| &f.address)
            .filter(|from| !ctx.roster.is_desk_address(from));
        let flood = match from {
            None => None,
            Some(from) => {
                let cap = ctx.budget.flood_per_hour;
                let sent = flood_count(tx, ctx, from).await?;
                self.log.flood = Some((from.clone(), sent));
                (sent + u32::from(self.filed) > cap).then(|| from.clone())
            }
        };
        self.flood = Some(flood.clone());
        Ok(flood)
    }
}

/// Everything the plan writes, in its order; `write` resolves the rows it refers to.
pub struct ChangeSet {
    /// What `prepare` read to make it: if the store still says the same, it is still right.
    read: ReadLog,
    pub(super) ticket: Target,
    pub(super) writes: Vec<Write>,
    pub(super) events: Vec<PlannedEvent>,
    /// Whose open ticket it was before the plan and after it, and who was given it.
    pub(super) load_before: Option<EmailAddress>,
    pub(super) load_after: Option<EmailAddress>,
    pub(super) assigned_to: Vec<EmailAddress>,
}

/// The ticket row the change set writes to.
pub(super) enum Target {
    None,
    Existing(TicketId, ReferenceCode),
    /// Opened by the plan, under a code chosen while preparing (its mail carries it).
    New(ReferenceCode, Box<NewTicketPlan>),
}

/// One write, in plan order.
pub(super) enum Write {
    FileMail(Filing),
    Participant(EmailAddress, ParticipantRole),
    /// A change of the ticket's own row.
    Ticket(Box<Effect>),
    /// A rendered mail, queued or held.
    Mail(Box<PreparedMail>),
}

/// A rendered mail and where it goes.
pub(super) struct PreparedMail {
    pub(super) kind: &'static str,
    pub(super) rendered: crate::render::Rendered,
    pub(super) from_name: String,
    pub(super) to: EmailAddress,
    pub(super) in_reply_to: Option<String>,
    pub(super) references: Vec<String>,
    pub(super) language: Language,
    pub(super) hold: Option<Hold>,
}

/// An event and the message row it is about, known once written.
pub(super) struct PlannedEvent {
    pub(super) message: MessageRef,
    pub(super) actor: Actor,
    pub(super) event: Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MessageRef {
    None,
    /// The mail the plan files.
    Filed,
    /// The plan's n-th mail written (queued or held).
    Mail(usize),
}

impl ChangeSet {
    /// A change of the ticket (its row, its participants), in plan order. Some only mean
    /// something on a ticket; the others are refused without one.
    fn ticket_write(&mut self, effect: &Effect, has_ticket: bool) -> Result<(), StoreError> {
        let needs_ticket = match effect {
            Effect::AddParticipant(..) => Some("a participant without a ticket"),
            Effect::SetStatus { .. }
            | Effect::ChangeTier(_)
            | Effect::Assign(_)
            | Effect::SetPriority(_)
            | Effect::SetCategory(_) => Some("a ticket change without a ticket"),
            _ => None,
        };
        match (has_ticket, needs_ticket) {
            (true, _) => {}
            (false, Some(why)) => return Err(StoreError::BadPlan(why)),
            (false, None) => return Ok(()),
        }
        self.writes.push(match effect {
            Effect::AddParticipant(address, role) => Write::Participant(address.clone(), *role),
            _ => Write::Ticket(Box::new(effect.clone())),
        });
        if let Effect::Assign(agent) = effect {
            self.assigned_to.extend(agent.clone());
        }
        Ok(())
    }
}

impl ChangeSet {
    /// One mail of the plan, rendered, queued or held; the plan's later mail reads it.
    async fn mail(
        &mut self,
        tx: &mut dyn StoreTx,
        ctx: &ApplyContext<'_>,
        f: &Facts,
        out: &OutgoingMail,
        inbound: Option<&InboundMail>,
        reads: &mut Reads,
    ) -> Result<(), StoreError> {
        let Some(prepared) =
            prepare_mail(tx, ctx, f, out, inbound, reads, &mut self.events).await?
        else {
            return Ok(());
        };
        let index = self
            .writes
            .iter()
            .filter(|w| matches!(w, Write::Mail(_)))
            .count();
        if prepared.hold.is_none() {
            self.events.push(PlannedEvent {
                message: MessageRef::Mail(index),
                actor: Actor::Gateway,
                event: Event::MailQueued(ev::MailQueued {
                    kind: out.template,
                    to: out.to.clone(),
                    change: out.change,
                }),
            });
        }
        reads.own.push(OwnMessage {
            entry: thread_entry_of_outgoing(ctx, &prepared, ctx.now),
            exchanged: Some(Exchanged {
                message_id: prepared.rendered.message_id.clone(),
                direction: Direction::Outbound,
                outcome: StoredOutcome::Outgoing,
                from: Some(ctx.gateway.support_address.to_string()),
                to: vec![prepared.to.to_string()],
            }),
        });
        self.writes.push(Write::Mail(Box::new(prepared)));
        Ok(())
    }
}

/// Folds the plan over its ticket, reads what it needs and renders its mail.
pub async fn prepare(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
    mail: Option<&MailInput<'_>>,
) -> Result<ChangeSet, StoreError> {
    let now = ctx.now;
    let (mut facts, ticket) = facts_of(ctx, plan);
    let load_before = match &plan.ticket {
        PlanTicket::Existing(t) => t.assignee.clone().filter(|_| t.status.is_open()),
        _ => None,
    };
    let inbound = mail.and_then(|m| m.parsed);
    let mut reads = Reads::new();
    let mut cs = ChangeSet {
        read: ReadLog::default(),
        ticket,
        writes: Vec::with_capacity(plan.effects.len()),
        events: Vec::new(),
        load_before,
        load_after: None,
        assigned_to: Vec::new(),
    };
    for effect in &plan.effects {
        if let Some(f) = facts.as_mut() {
            f.state.step(effect, now, ctx.calendar);
        }
        match effect {
            Effect::FileMail(filing) => {
                let input =
                    mail.ok_or(StoreError::BadPlan("a plan files a mail it was not given"))?;
                cs.writes.push(Write::FileMail(filing.clone()));
                reads.filed = true;
                if let Some(own) = filed_entry(input, filing, now) {
                    reads.own.push(own);
                }
            }
            Effect::AddParticipant(..)
            | Effect::SetStatus { .. }
            | Effect::ChangeTier(_)
            | Effect::Assign(_)
            | Effect::SetPriority(_)
            | Effect::SetCategory(_)
            | Effect::Rate { .. }
            | Effect::FirstResponse
            | Effect::Touch
            | Effect::Timing(_)
            | Effect::SetVendor(_)
            | Effect::VendorTicket(_) => cs.ticket_write(effect, facts.is_some())?,
            Effect::Record(r) => cs.events.push(PlannedEvent {
                message: if reads.filed {
                    MessageRef::Filed
                } else {
                    MessageRef::None
                },
                actor: r.actor.clone(),
                event: r.event.clone(),
            }),
            // Folded by `decide` into the `Timing` that closes the plan.
            Effect::Clock(_) => {}
            Effect::Queue(out) => {
                let f = facts
                    .as_ref()
                    .ok_or(StoreError::BadPlan("a mail to send without a ticket"))?;
                cs.mail(tx, ctx, f, out, inbound, &mut reads).await?;
            }
        }
    }
    cs.read = reads.log;
    cs.read.ticket = facts.as_ref().and_then(|f| f.id);
    // The agents' loads, from the ticket as it was and as the plan leaves it.
    cs.load_after = facts.as_ref().and_then(|f| {
        f.state
            .assignee
            .clone()
            .filter(|_| f.state.status.is_open())
    });
    Ok(cs)
}

/// What `prepare` read from the store, each read with what it gave.
#[derive(Debug, Default)]
struct ReadLog {
    ticket: Option<TicketId>,
    thread: Option<Vec<ThreadEntry>>,
    exchanged: Option<Vec<Exchanged>>,
    sent: Vec<(EmailAddress, (u32, u32))>,
    flood: Option<(EmailAddress, u32)>,
}

impl ChangeSet {
    /// Whether the store, as `tx` sees it, still gives what this change set was prepared
    /// from: then writing it is what preparing the same plan again would write. The same
    /// reads again, without rendering; asked of a change set prepared outside the write
    /// transaction, once the transaction holds the lock.
    pub async fn still_holds(
        &self,
        tx: &mut dyn StoreTx,
        ctx: &ApplyContext<'_>,
    ) -> Result<bool, StoreError> {
        let r = &self.read;
        if let (Some(thread), Some(id)) = (&r.thread, r.ticket)
            && tx.thread(id, thread::in_thread).await? != *thread
        {
            return Ok(false);
        }
        if let (Some(exchanged), Some(id)) = (&r.exchanged, r.ticket)
            && tx.exchanged(id).await? != *exchanged
        {
            return Ok(false);
        }
        for (to, counts) in &r.sent {
            if budget_counts(tx, ctx, to).await? != *counts {
                return Ok(false);
            }
        }
        if let Some((from, sent)) = &r.flood
            && flood_count(tx, ctx, from).await? != *sent
        {
            return Ok(false);
        }
        Ok(true)
    }
}

/// `to`'s automatic mail in the last hour and day, each counted up to the budget's cap.
async fn budget_counts(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    to: &EmailAddress,
) -> Result<(u32, u32), StoreError> {
    let now = ctx.now;
    tx.automatic_mail_sent(
        to,
        Template::budgeted(),
        (now - HOUR_MS, now - 24 * HOUR_MS, now),
        (ctx.budget.per_hour, ctx.budget.per_day),
    )
    .await
}

/// The mail `from` sent the desk in the last hour, counted one past the flood limit.
async fn flood_count(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    from: &EmailAddress,
) -> Result<u32, StoreError> {
    tx.mail_from_since(from, ctx.now - HOUR_MS, ctx.budget.flood_per_hour + 1)
        .await
}

/// The ticket the plan works on, as it finds it (a new one gets its code now), with the
/// first answer's due time as the plan leaves it.
fn facts_of(ctx: &ApplyContext<'_>, plan: &Plan) -> (Option<Facts>, Target) {
    let first_response_due = plan.effects.iter().rev().find_map(|e| match e {
        Effect::Timing(t) => t.dues.first_response,
        _ => None,
    });
    match &plan.ticket {
        PlanTicket::None => (None, Target::None),
        PlanTicket::Existing(t) => (
            Some(Facts {
                id: Some(t.id),
                code: t.code.clone(),
                subject: t.subject.clone(),
                customer: t.customer.clone(),
                customer_name: t.customer_name.clone(),
                state: TicketState::of(t),
                first_response_due,
            }),
            Target::Existing(t.id, t.code.clone()),
        ),
        PlanTicket::New(new) => {
            let code = ReferenceCode::generate(&ctx.gateway.reference_prefix);
            (
                Some(Facts {
                    id: None,
                    code: code.clone(),
                    subject: new.subject.clone(),
                    customer: new.customer.clone(),
                    customer_name: new.customer_name.clone(),
                    state: TicketState::opened(new, ctx.now),
                    first_response_due,
                }),
                Target::New(code, Box::new(new.clone())),
            )
        }
    }
}

/// The mail being filed as the ticket's messages will show it, when it joins the ticket.
fn filed_entry(input: &MailInput<'_>, filing: &Filing, now: Millis) -> Option<OwnMessage> {
    let m = input.parsed?;
    if !filing.outcome.joins_ticket() {
        return None;
    }
    Some(OwnMessage {
        entry: ThreadEntry {
            from: m.from.as_ref().map(|f| f.address.to_string()),
            from_name: m.from.as_ref().and_then(|f| f.name.clone()),
            detail: filing.detail.as_ref().map(|d| d.stored().into_owned()),
            direction: Direction::Inbound,
            outcome: filing.outcome,
            machine: filing.machine.is_some(),
            at: now,
            text: m.reply_text.clone(),
            attachments: m
                .attachments
                .iter()
                .map(|a| crate::store::AttachmentView {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.content.len() as i64,
                })
                .collect(),
        },
        exchanged: m.message_id.clone().map(|message_id| Exchanged {
            message_id,
            direction: Direction::Inbound,
            outcome: filing.outcome,
            from: m.from.as_ref().map(|f| f.address.to_string()),
            to: m.to.iter().map(|a| a.to_string()).collect(),
        }),
    })
}
