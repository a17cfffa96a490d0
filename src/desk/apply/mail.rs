//! One outgoing mail of a plan: held or not (flood, budget), its context for the
//! templates, its threading headers, rendered (a failure costs that mail only), stored in
//! the outbox.

use super::*;

/// When a message of the thread was written, as the reader says it, in the desk's zone.
pub(super) fn thread_date(at: Millis, tz: chrono_tz::Tz, language: Language) -> String {
    crate::desk::wording::moment(crate::timing::instant(at).with_timezone(&tz), language)
}

pub(super) fn author(from: Option<&str>, name: Option<&str>) -> String {
    match (name, from) {
        (Some(n), Some(a)) if !n.is_empty() => format!("{n} <{a}>"),
        (_, Some(a)) => a.to_string(),
        _ => "?".into(),
    }
}

/// The sender of the mail being filed, when they are an outside sender who wrote more than
/// the desk's flood limit in the last hour: what their mail would tell the desk's people is
/// then held for one digest.
pub(super) async fn flooding(
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
pub(super) async fn queue(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
    flood_from: Option<EmailAddress>,
    events: &mut Events,
) -> Result<bool, StoreError> {
    let hold = hold(tx, ctx, f, out, flood_from, events).await?;
    let context = mail_context(tx, ctx, f, out).await?;
    let (in_reply_to, references) = threading(tx, f, out, inbound).await?;
    let attachments = forwarded(out, inbound);
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
    let Some(rendered) = render_guarded(ctx, f, out, &context, &env, events) else {
        return Ok(false);
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

/// Whether the mail waits: from a sender flooding the desk (for a digest), or over its
/// outside recipient's automatic-mail budget. Recorded as `mail_held`.
pub(super) async fn hold(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    flood_from: Option<EmailAddress>,
    events: &mut Events,
) -> Result<Option<Hold>, StoreError> {
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
    Ok(hold)
}

/// What the templates read: the ticket as the plan has it at this mail, in the recipient's
/// language, with the thread when the mail carries it.
pub(super) async fn mail_context(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
) -> Result<MailContext, StoreError> {
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
    let thread = if out.include_thread {
        thread_items(entries, ctx, out)
    } else {
        Vec::new()
    };
    let wording = crate::desk::wording::Wording {
        roster: ctx.roster,
        time_zone: ctx.calendar.time_zone,
    };
    Ok(MailContext {
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
    })
}

/// The thread as the recipient reads it. A vendor is sent what was said, not who said it
/// or how to reach them, and never an internal note.
fn thread_items(
    entries: Vec<crate::store::ThreadEntry>,
    ctx: &ApplyContext<'_>,
    out: &OutgoingMail,
) -> Vec<ThreadItem> {
    let private = out.template == Template::VendorForward;
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
}

/// `In-Reply-To` and `References`: the mail answered, else the last ones this recipient
/// had on the ticket.
pub(super) async fn threading(
    tx: &mut dyn StoreTx,
    f: &Facts,
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
) -> Result<(Option<String>, Vec<String>), StoreError> {
    Ok(match inbound.filter(|_| out.answers_mail) {
        Some(m) => (m.message_id.clone(), m.references.clone()),
        None => {
            let ids = tx.thread_message_ids(f.id, &out.to).await?;
            (ids.last().cloned(), ids)
        }
    })
}

/// The attachments of the mail being filed, when this mail passes them on.
pub(super) fn forwarded(
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
) -> Vec<OutgoingAttachment> {
    match inbound.filter(|_| out.forward_attachments) {
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
    }
}

/// Renders one mail. A failure or a panic (a template helper, the mail builder) costs this
/// one mail, recorded as `mail_not_rendered`: the customer's mail is filed all the same.
pub(super) fn render_guarded(
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    context: &MailContext,
    env: &Envelope<'_>,
    events: &mut Events,
) -> Option<crate::render::Rendered> {
    let kind = out.template.name();
    // A panic while rendering (a template helper, the mail builder) costs this one mail,
    // like a template that fails to render: the customer's mail is filed all the same.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        (ctx.hook)(crate::stage::Stage::Render, &f.subject);
        ctx.renderer.render(out.template, context, env)
    }))
    .unwrap_or_else(|panic| {
        Err(crate::render::RenderError::Panicked(
            crate::stage::panic_message(panic.as_ref()),
        ))
    });
    match rendered {
        Ok(r) => Some(r),
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
            None
        }
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

/// "Paris" for Europe/Paris, "New York" for America/New_York: how people name a zone's
/// time ("heure de Paris", "Paris time").
pub(super) fn zone_city(tz: chrono_tz::Tz) -> String {
    let name = tz.name();
    name.rsplit('/').next().unwrap_or(name).replace('_', " ")
}
