//! The effects many decisions share: an event, a mail to an agent or the customer, an
//! assignment, an escalation, a status change. Pure builders; the rules they follow are
//! the domain's (`TicketStatus::transition`, `Tier::escalate`) and the roster's.

use std::collections::HashMap;

use super::*;
use crate::config::{DeskSettings, GatewaySettings};
use crate::desk::events::{self as ev, Event, StatusChanged};
use crate::desk::wording::Notice;
use crate::domain::Refusal;
use crate::roster::{Assignee, Load};

/// An event for the ticket's log.
pub(super) fn record(actor: &Actor, event: Event) -> Effect {
    Effect::Record(EventRecord {
        actor: actor.clone(),
        event,
    })
}

/// The status change among `effects`, to say more about why it happened.
pub(super) fn status_event(effects: &mut [Effect]) -> Option<&mut StatusChanged> {
    effects.iter_mut().find_map(|e| match e {
        Effect::Record(EventRecord {
            event: Event::StatusChanged(c) | Event::Reopened(c),
            ..
        }) => Some(c),
        _ => None,
    })
}

/// Who hears of a ticket's news: its assignee, else its tier's shared address.
pub(super) fn ticket_watcher(desk: &DeskSettings, ticket: &TicketRef) -> Option<EmailAddress> {
    ticket
        .assignee
        .clone()
        .or_else(|| desk.roster.tier_address(ticket.tier).cloned())
}

pub(super) fn agent_mail(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    template: Template,
    to: &EmailAddress,
    reason: Option<Notice>,
    include_thread: bool,
    new_text: Option<NewText>,
) -> OutgoingMail {
    let agent = desk.roster.agent(to);
    OutgoingMail {
        template,
        to: to.clone(),
        to_name: agent.map(|a| a.name.clone()),
        language: agent
            .map(|a| a.language(gateway.default_language))
            .unwrap_or(gateway.default_language),
        auto_submitted: Some(AutoSubmitted::Generated),
        from_name: None,
        forward_attachments: false,
        receipt: Vec::new(),
        change: None,
        reason,
        include_thread,
        answers_mail: false,
        new_text,
        articles: Vec::new(),
    }
}

/// The status mail to the customer, and to the ticket's other participants unless the
/// desk keeps them to agents' replies (`notifications.participants_status = false`).
pub(super) fn customer_status(
    desk: &DeskSettings,
    ticket: &TicketRef,
    change: Change,
    reason: Option<Notice>,
) -> Vec<Effect> {
    let mut to = vec![(ticket.customer.clone(), ticket.customer_name.clone())];
    if desk.notify_participants {
        for p in &ticket.participants {
            if *p != ticket.customer && desk.roster.agent(p).is_none() {
                to.push((p.clone(), None));
            }
        }
    }
    to.into_iter()
        .map(|(to, to_name)| {
            Effect::Queue(OutgoingMail {
                template: Template::StatusUpdate,
                to,
                to_name,
                language: ticket.language,
                auto_submitted: Some(AutoSubmitted::Generated),
                from_name: None,
                forward_attachments: false,
                receipt: Vec::new(),
                change: Some(change),
                reason: reason.clone(),
                include_thread: false,
                answers_mail: false,
                new_text: None,
                articles: Vec::new(),
            })
        })
        .collect()
}

/// The effects of giving a ticket to `chosen`: the assignment, its event, the whole thread
/// to the new agent (or the tier's shared address), a line to the previous agent, and the
/// customer's mail when the desk tells customers who has their request.
#[allow(clippy::too_many_arguments)]
pub(super) fn assignment(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    chosen: &Assignee,
    previous: Option<&EmailAddress>,
    tier: Tier,
    reason: Option<Notice>,
    actor: &Actor,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    let (new, notify) = match chosen {
        Assignee::Agent(a) => (Some(a.clone()), Some(a.clone())),
        Assignee::Unassigned { tier_address } => (None, tier_address.clone()),
    };
    let detail = ev::Assignment {
        to: new.clone(),
        from: previous.cloned(),
        tier,
        notified: notify.clone(),
        reason: reason.as_ref().map(|r| r.to_string()),
    };
    let event = |kind: fn(ev::Assignment) -> Event| record(actor, kind(detail.clone()));
    if new.as_ref() != previous {
        effects.push(Effect::Assign(new.clone()));
        effects.push(event(if new.is_some() {
            Event::Assigned
        } else {
            Event::Unassigned
        }));
    } else if new.is_none() && (notify.is_some() || !desk.roster.agents().is_empty()) {
        // Still nobody's: no write to the ticket, but the log says nobody fitted (a desk
        // without a roster or tier addresses has nothing to say).
        effects.push(event(Event::Unassigned));
    }
    if let Some(to) = &notify
        && Some(to) != previous
    {
        effects.push(Effect::Queue(agent_mail(
            desk,
            gateway,
            Template::AgentNotification,
            to,
            reason.clone(),
            true,
            None,
        )));
    }
    if let Some(prev) = previous
        && new.as_ref() != Some(prev)
    {
        effects.push(Effect::Queue(agent_mail(
            desk,
            gateway,
            Template::AgentReassigned,
            prev,
            reason,
            false,
            None,
        )));
    }
    effects
}

/// An escalation, `why` it happened, and `reason` in words for the people told.
pub(super) struct Escalation {
    pub to: TierMove,
    pub cause: ev::EscalationCause,
    pub reason: Option<Notice>,
}

pub(super) fn escalation(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    ticket: &TicketRef,
    Escalation { to, cause, reason }: Escalation,
    loads: &HashMap<EmailAddress, Load>,
    actor: &Actor,
) -> Vec<Effect> {
    let mut effects = vec![Effect::ChangeTier(to)];
    let to = to.to();
    effects.extend([record(
        actor,
        Event::Escalated(ev::Escalated {
            from: ticket.tier,
            to,
            reason: reason.as_ref().map(|r| r.to_string()),
            vendor: None,
            cause: Some(cause),
        }),
    )]);
    let chosen = desk.roster.choose(
        to,
        &ticket.category,
        ticket.language,
        loads,
        ticket.assignee.as_ref(),
    );
    effects.extend(assignment(
        desk,
        gateway,
        &chosen,
        ticket.assignee.as_ref(),
        to,
        reason.clone(),
        actor,
    ));
    effects.extend(customer_status(desk, ticket, Change::Escalated, reason));
    effects
}

/// A status change by someone's decision; `change` is what the customer is told (`None`:
/// the caller tells them).
pub(super) fn status_change(
    desk: &DeskSettings,
    ticket: &TicketRef,
    to: TicketStatus,
    actor: &Actor,
    change: Option<Change>,
) -> Result<Vec<Effect>, Refusal> {
    let next = ticket.status.transition(to)?;
    let reopened = ticket.status.reopens_on_reply() && next.to() == TicketStatus::Open;
    let mut effects = vec![
        Effect::SetStatus { to: next, reopened },
        record(actor, {
            let moved = StatusChanged::new(ticket.status, next.to());
            if reopened {
                Event::Reopened(moved)
            } else {
                Event::StatusChanged(moved)
            }
        }),
    ];
    if let Some(change) = change {
        effects.extend(customer_status(desk, ticket, change, None));
    }
    Ok(effects)
}
