//! The second half of `apply`: writes a prepared [`ChangeSet`], in order, and reads
//! nothing but the ids the store gives the rows it inserts.

use super::*;

/// Writes what `prepare` made of the plan. A new ticket's row comes first, so a code that
/// turns out to be taken (`CodeTaken`) stops it before anything else is written.
pub async fn write(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    cs: ChangeSet,
    mail: Option<&MailInput<'_>>,
) -> Result<Applied, StoreError> {
    let now = ctx.now;
    let ticket = match cs.ticket {
        Target::None => None,
        Target::Existing(id, code) => Some((id, code)),
        Target::New(code, new) => Some((insert_ticket(tx, &code, &new, now).await?, code)),
    };
    let id = ticket.as_ref().map(|(id, _)| *id);
    let mut filed = None;
    let mut mails = Vec::new();
    let mut queued = 0;
    for w in &cs.writes {
        match w {
            Write::FileMail(filing) => {
                let input =
                    mail.ok_or(StoreError::BadPlan("a plan files a mail it was not given"))?;
                filed = Some(file_mail(tx, input, id, filing, now).await?);
            }
            Write::Participant(address, role) => {
                let id = id.ok_or(StoreError::BadPlan("a participant without a ticket"))?;
                tx.add_participant(id, address, *role, now).await?;
            }
            Write::Ticket(effect) => {
                let id = id.ok_or(StoreError::BadPlan("a ticket change without a ticket"))?;
                write_ticket_change(tx, id, effect, now).await?;
            }
            Write::Mail(m) => {
                let row = store_outgoing(
                    tx,
                    ctx,
                    Outgoing {
                        ticket: id,
                        kind: m.kind,
                        rendered: &m.rendered,
                        from_name: &m.from_name,
                        to: &m.to,
                        in_reply_to: m.in_reply_to.as_deref(),
                        references: &m.references,
                        language: m.language,
                        hold: m.hold.clone(),
                    },
                )
                .await?;
                mails.push(row);
                if m.hold.is_none() {
                    queued += 1;
                }
            }
        }
    }
    let mut events = Events::new(now);
    for e in cs.events {
        let message = match e.message {
            MessageRef::None => None,
            MessageRef::Filed => filed,
            MessageRef::Mail(n) => mails.get(n).copied(),
        };
        events.push(id, message, &e.actor, e.event);
    }
    events.write(tx).await?;
    adjust_loads(tx, cs.load_before, cs.load_after, &cs.assigned_to, now).await?;
    Ok(Applied { ticket, queued })
}

async fn insert_ticket(
    tx: &mut dyn StoreTx,
    code: &ReferenceCode,
    new: &NewTicketPlan,
    now: Millis,
) -> Result<TicketId, StoreError> {
    tx.insert_ticket(NewTicket {
        code,
        tier: new.routing.tier,
        category: &new.routing.category,
        priority: new.routing.priority,
        customer: &new.customer,
        customer_name: new.customer_name.as_deref(),
        subject: &new.subject,
        thread_key: &new.thread_key,
        language: new.language,
        follows: new.follows.as_ref().map(|t| t.id),
        suggested_articles: &new.suggested_articles,
        at: now,
    })
    .await
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
pub(super) struct Events {
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
    pub(super) fn new(at: Millis) -> Self {
        Events {
            at,
            rows: Vec::new(),
        }
    }

    pub(super) fn push(
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

    pub(super) async fn write(self, tx: &mut dyn StoreTx) -> Result<(), StoreError> {
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

/// A rendered mail, to be stored and queued (or held).
pub(super) struct Outgoing<'a> {
    pub(super) ticket: Option<TicketId>,
    pub(super) kind: &'static str,
    pub(super) rendered: &'a crate::render::Rendered,
    pub(super) from_name: &'a str,
    pub(super) to: &'a EmailAddress,
    pub(super) in_reply_to: Option<&'a str>,
    pub(super) references: &'a [String],
    pub(super) language: Language,
    pub(super) hold: Option<Hold>,
}

/// Stores a rendered mail with the ticket's messages and puts it in the outbox (held or
/// pending); returns its message row.
pub(super) async fn store_outgoing(
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

async fn file_mail(
    tx: &mut dyn StoreTx,
    input: &MailInput<'_>,
    ticket: Option<TicketId>,
    filing: &Filing,
    now: Millis,
) -> Result<i64, StoreError> {
    let detail = filing.detail.as_ref().map(|d| d.stored());
    let ticket = ticket.filter(|_| filing.outcome.joins_ticket());
    let record = match input.parsed {
        Some(m) => NewMessage {
            ticket,
            direction: Direction::Inbound,
            outcome: filing.outcome,
            outcome_detail: detail.as_deref(),
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
            outcome_detail: detail.as_deref(),
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
    if filing.outcome.joins_ticket()
        && let Some(m) = input.parsed
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
            reason = detail.as_deref().unwrap_or(""),
            "mail quarantined"
        );
    }
    Ok(row)
}
