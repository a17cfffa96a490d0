//! L4: a ticket forwarded to an external vendor, and the vendor's mail coming back.

use super::*;

/// A vendor's mail on a ticket sent to them: recorded, their ticket number learned, and
/// (unless a machine of theirs wrote it) passed to the assignee; never to the customer.
pub(super) fn vendor_mail(s: &MailSituation<'_>, ticket: &TicketRef, name: &str) -> Vec<Effect> {
    let actor = Actor::Vendor(name.to_string());
    let mut effects = Vec::new();
    let learned = s
        .desk
        .time
        .vendor(name)
        .and_then(|v| vendor_ticket_number(v, s.mail))
        .filter(|n| ticket.vendor_ticket.as_deref() != Some(n.as_str()));
    if let Some(n) = &learned {
        effects.push(Effect::VendorTicket(n.clone()));
    }
    effects.push(record(
        &actor,
        Event::VendorReplied(ev::VendorReplied {
            vendor: name.to_string(),
            machine: s.machine,
            vendor_ticket: learned.clone().or_else(|| ticket.vendor_ticket.clone()),
        }),
    ));
    effects.push(Effect::Touch);
    if s.machine.is_some() {
        // Their helpdesk's acknowledgement: the number is what we wanted of it.
        return effects;
    }
    effects.push(Effect::Clock(ClockChange::VendorAnswered));
    if let Some(to) = ticket_watcher(s.desk, ticket) {
        effects.push(Effect::Queue(agent_mail(
            s.desk,
            s.gateway,
            Template::VendorReply,
            &to,
            None,
            false,
            Some(NewText {
                from: name.to_string(),
                text: s.mail.reply_text.clone(),
                attachments: s
                    .mail
                    .attachments
                    .iter()
                    .map(|a| AttachmentLine::new(a.filename.as_deref(), a.content.len() as u64))
                    .collect(),
                reopened: false,
            }),
        )));
    }
    effects
}

/// The vendor's own ticket number in their mail's subject (else its first lines).
pub fn vendor_ticket_number(vendor: &crate::timing::Vendor, mail: &InboundMail) -> Option<String> {
    let pattern = vendor.ticket_pattern.as_ref()?;
    let head: String = mail.reply_text.chars().take(2000).collect();
    pattern
        .find(&mail.subject)
        .or_else(|| pattern.find(&head))
        .map(|m| m.as_str().to_string())
}

/// The ticket goes to an external vendor (L4): forwarded to them with the customer's
/// words (without the customer's details); it stays with its assignee, who receives the
/// vendor's answers and relays what the customer should know.
pub(super) fn to_vendor(
    s: &CommandSituation<'_>,
    name: &str,
    reason: Option<String>,
) -> Result<Vec<Effect>, Refusal> {
    let t = s.ticket;
    let vendor = s
        .desk
        .time
        .vendor(name)
        .ok_or_else(|| Refusal::NoSuchVendor {
            name: name.to_string(),
            known: s.desk.time.vendor_names(),
        })?;
    if t.vendor.as_deref() == Some(vendor.name.as_str()) && t.clock.vendor_asked_at.is_some() {
        return Err(Refusal::AlreadyWithVendor(vendor.name.clone()));
    }
    let mut effects = Vec::new();
    if t.tier != Tier::L4Vendor {
        effects.push(Effect::ChangeTier(t.tier.escalate(Some(Tier::L4Vendor))?));
        effects.push(record(
            &s.actor,
            Event::Escalated(ev::Escalated {
                from: t.tier,
                to: Tier::L4Vendor,
                reason: reason.clone(),
                vendor: Some(vendor.name.clone()),
                cause: Some(ev::EscalationCause::Agent),
            }),
        ));
    }
    if t.assignee.is_none()
        && let Actor::Agent(agent) = &s.actor
    {
        effects.push(Effect::Assign(Some(agent.clone())));
        effects.push(record(
            &s.actor,
            Event::Assigned(ev::Assignment {
                to: Some(agent.clone()),
                from: None,
                tier: Tier::L4Vendor,
                notified: None,
                reason: Some("sent to a vendor".into()),
            }),
        ));
    }
    effects.push(Effect::SetVendor(vendor.name.clone()));
    effects.push(Effect::Clock(ClockChange::VendorAsked));
    effects.push(record(
        &s.actor,
        Event::VendorForwarded(ev::VendorForwarded {
            vendor: vendor.name.clone(),
            address: vendor.address.clone(),
            reason: reason.clone(),
        }),
    ));
    effects.push(Effect::Queue(OutgoingMail {
        template: Template::VendorForward,
        to: vendor.address.clone(),
        to_name: Some(vendor.name.clone()),
        language: s.gateway.default_language,
        // A person's request to another desk: their acknowledgement must be able to answer.
        auto_submitted: None,
        from_name: None,
        forward_attachments: false,
        receipt: Vec::new(),
        change: None,
        reason: reason.map(Notice::Written),
        include_thread: true,
        answers_mail: false,
        new_text: None,
        articles: Vec::new(),
    }));
    effects.extend(customer_status(s.desk, t, Change::Escalated, None));
    Ok(effects)
}
