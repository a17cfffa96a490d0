//! One outgoing mail of a plan, prepared: held or not (flood, budget), its context for
//! the templates, its threading headers, rendered (a failure costs that mail only).

use super::*;
use crate::store::ThreadEntry;

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

/// Renders one mail of the plan; `None` when it could not be rendered (recorded). Held
/// mail (flood, budget) is rendered all the same: it is deferred, not dropped.
pub(super) async fn prepare_mail(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
    reads: &mut Reads,
    events: &mut Vec<PlannedEvent>,
) -> Result<Option<PreparedMail>, StoreError> {
    let hold = hold(tx, ctx, f, out, inbound, reads, events).await?;
    let context = mail_context(tx, ctx, f, out, reads).await?;
    let (in_reply_to, references) = match inbound.filter(|_| out.answers_mail) {
        Some(m) => (m.message_id.clone(), m.references.clone()),
        None => {
            let ids = reads.message_ids(tx, f, &out.to).await?;
            (ids.last().cloned(), ids)
        }
    };
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
        inline: &[],
    };
    let kind = out.template.name();
    let Some(rendered) = render_guarded(ctx, f, out, &context, &env, events) else {
        return Ok(None);
    };
    if hold.is_none() {
        spend_budget(ctx, out, reads);
        tracing::debug!(code = %f.code, kind, to = %out.to, "mail queued");
    }
    Ok(Some(PreparedMail {
        kind,
        rendered,
        from_name,
        to: out.to.clone(),
        in_reply_to,
        references,
        language: out.language,
        hold,
    }))
}

/// A mail queued now spends its recipient's budget for the plan's later mail, as the
/// store's count would once it is written: budgeted kinds, queued within the window.
fn spend_budget(ctx: &ApplyContext<'_>, out: &OutgoingMail, reads: &mut Reads) {
    if !out.template.counts_against_budget() || ctx.send_at > ctx.now {
        return;
    }
    if let Some((hour, day)) = reads.sent.get_mut(&out.to) {
        if ctx.send_at > ctx.now - HOUR_MS {
            *hour += 1;
        }
        if ctx.send_at > ctx.now - 24 * HOUR_MS {
            *day += 1;
        }
    }
}

/// The plan's own mail as the thread will show it once written.
pub(super) fn thread_entry_of_outgoing(
    ctx: &ApplyContext<'_>,
    m: &PreparedMail,
    now: Millis,
) -> ThreadEntry {
    ThreadEntry {
        from: Some(ctx.gateway.support_address.to_string()),
        from_name: Some(m.from_name.clone()),
        detail: Some(m.kind.to_string()),
        direction: Direction::Outbound,
        outcome: StoredOutcome::Outgoing,
        machine: false,
        at: now,
        text: m.rendered.text.clone(),
        attachments: Vec::new(),
    }
}

/// Whether the mail waits: from a sender flooding the desk (for a digest), or over its
/// outside recipient's automatic-mail budget. Recorded as `mail_held`.
async fn hold(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    inbound: Option<&InboundMail>,
    reads: &mut Reads,
    events: &mut Vec<PlannedEvent>,
) -> Result<Option<Hold>, StoreError> {
    let mut held = |flood_from: Option<EmailAddress>, last: Option<(u32, u32)>| {
        events.push(PlannedEvent {
            message: MessageRef::None,
            actor: Actor::Gateway,
            event: Event::MailHeld(ev::MailHeld {
                kind: out.template,
                to: out.to.clone(),
                flood_from: flood_from.clone(),
                last_hour: last.map(|l| l.0),
                last_day: last.map(|l| l.1),
            }),
        });
        Some(Hold {
            flood_from,
            ticket_status: Some(f.state.status),
        })
    };
    if ctx.roster.is_desk_address(&out.to) {
        let Some(sender) = reads.flooding(tx, ctx, inbound).await? else {
            return Ok(None);
        };
        tracing::warn!(
            code = %f.code,
            to = %out.to,
            kind = out.template.name(),
            flood_from = %sender,
            "mail to the desk held for a digest: its sender floods the desk"
        );
        return Ok(held(Some(sender), None));
    }
    if out.auto_submitted.is_none() {
        return Ok(None);
    }
    let (hour, day) = reads.sent(tx, ctx, &out.to).await?;
    if hour < ctx.budget.per_hour && day < ctx.budget.per_day {
        return Ok(None);
    }
    tracing::warn!(
        code = %f.code,
        to = %out.to,
        kind = out.template.name(),
        last_hour = hour,
        last_day = day,
        "automatic mail held until the recipient's budget allows it"
    );
    Ok(held(None, Some((hour, day))))
}

/// What the templates read: the ticket as the plan has it at this mail, in the recipient's
/// language, with the thread when the mail carries it.
async fn mail_context(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
    reads: &mut Reads,
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
    let (thread, last_message, last_message_date) = if out.include_thread {
        let entries = reads.thread(tx, f).await?;
        conversation(entries, ctx, f, out)
    } else {
        Default::default()
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
        articles: out
            .articles
            .iter()
            .map(|m| crate::render::ArticleView::of(&m.article, m.sent, m.score))
            .collect(),
        several_articles: out.articles.len() > 1,
        ..MailContext::default()
    })
}

/// The thread as the recipient reads it, and the customer's last words in it with their date.
fn conversation(
    entries: Vec<ThreadEntry>,
    ctx: &ApplyContext<'_>,
    f: &Facts,
    out: &OutgoingMail,
) -> (Vec<ThreadItem>, String, String) {
    let (last, date) = entries
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
    (thread_items(entries, ctx, out), last, date)
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
    events: &mut Vec<PlannedEvent>,
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
            events.push(PlannedEvent {
                message: MessageRef::None,
                actor: Actor::Gateway,
                event: Event::MailNotRendered(ev::MailNotRendered {
                    kind: out.template,
                    to: out.to.clone(),
                    error: e.to_string(),
                }),
            });
            None
        }
    }
}

/// "Paris" for Europe/Paris, "New York" for America/New_York: how people name a zone's
/// time ("heure de Paris", "Paris time").
pub(super) fn zone_city(tz: chrono_tz::Tz) -> String {
    let name = tz.name();
    name.rsplit('/').next().unwrap_or(name).replace('_', " ")
}
