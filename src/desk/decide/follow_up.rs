//! A mail on an existing ticket from its customer, a participant, a machine or someone
//! the desk does not take as an agent: filed, the ticket moved, the agents told.

use std::collections::HashMap;

use super::*;

/// Why a mail from a roster (or vendor) address is not taken as theirs: the desk requires
/// authentication, the trusted server did not vouch for the sender and no DKIM signature of
/// theirs verified.
pub(super) fn agent_refusal(s: &MailSituation<'_>) -> Option<String> {
    if !s.desk.require_agent_auth {
        return None;
    }
    let from = &s.mail.from.as_ref()?.address;
    let results = match s.desk.agent_authserv_id.as_deref() {
        Some(id) => crate::inbound::authentication::vouched_for(&s.mail.headers, from, id),
        None => Err("no trusted authserv-id configured".into()),
    };
    let Err(results) = results else {
        return None;
    };
    match &s.agent_dkim {
        Some(Ok(())) => None,
        Some(Err(dkim)) => Some(format!("{dkim}; {results}")),
        None => Some(format!("DKIM not checked; {results}")),
    }
}

/// Who is writing on a ticket.
pub(super) fn sender_actor(s: &MailSituation<'_>, ticket: &TicketRef) -> Actor {
    let from = s.mail.from.as_ref().map(|f| f.address.clone());
    if let Some(v) = from
        .as_ref()
        .and_then(|a| s.desk.time.vendor_by_address(a))
        .filter(|v| ticket.vendor.as_deref() == Some(v.name.as_str()))
        && agent_refusal(s).is_none()
    {
        return Actor::Vendor(v.name.clone());
    }
    match (s.machine, from) {
        (Some(_), from) => Actor::Machine(from),
        (None, None) => Actor::Machine(None),
        (None, Some(a)) if s.desk.roster.agent(&a).is_some() && agent_refusal(s).is_none() => {
            Actor::Agent(a)
        }
        (None, Some(a)) if a == ticket.customer => Actor::Customer(a),
        (None, Some(a)) if s.sender_is_participant => Actor::Participant(a),
        (None, Some(a)) => Actor::Stranger(a),
    }
}

pub(super) fn follow_up(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    how: ThreadedBy,
    language: Language,
) -> Plan {
    let actor = sender_actor(s, ticket);
    let stranger = matches!(actor, Actor::Stranger(_));
    let mut effects = vec![Effect::FileMail(Filing {
        outcome: StoredOutcome::Appended,
        detail: s.machine.map(FilingDetail::Machine),
        machine: s.machine,
        language: Some(language),
        from_non_participant: stranger,
    })];
    effects.push(record(
        &actor,
        Event::MessageReceived(ev::MessageReceived {
            threaded_by: how,
            machine: s.machine,
            from_non_participant: stranger,
        }),
    ));
    let mut reopened = false;
    if let Actor::Vendor(name) = &actor {
        if let Some(Effect::FileMail(f)) = effects.first_mut() {
            f.detail = Some(FilingDetail::Writer(Writer::Vendor));
        }
        effects.extend(vendor_mail(s, ticket, name));
        return Plan {
            ticket: PlanTicket::Existing(ticket.clone()),
            effects,
            outcome: PlannedOutcome::Appended { reopened: false },
        };
    }
    if let Actor::Agent(agent) = &actor {
        // Kept whole for the record; the thread shows its public part as the reply sent
        // (or, for a note, this mail itself).
        let note = mail_command::parse(&s.mail.reply_text).has_note();
        if let Some(Effect::FileMail(f)) = effects.first_mut() {
            let written = if note {
                Writer::InternalNote
            } else {
                Writer::AgentMail
            };
            f.detail = Some(FilingDetail::Writer(written));
        }
        effects.extend(agent_on_ticket(s, ticket, agent));
        return Plan {
            ticket: PlanTicket::Existing(ticket.clone()),
            effects,
            outcome: PlannedOutcome::Appended { reopened: false },
        };
    }
    // Commands from anyone not on the roster are never applied; the assignee hears of it
    // in the follow-up notification below.
    let refused_commands = !mail_command::parse(&s.mail.reply_text).is_empty();
    if refused_commands {
        effects.push(record(
            &actor,
            Event::CommandsRefused(ev::CommandsRefused {
                reason: "the sender is not on the roster".into(),
            }),
        ));
    }
    // The customer closes or rates by reply.
    if matches!(actor, Actor::Customer(_) | Actor::Participant(_))
        && let Some(plan) = customer_closes(s, ticket, &actor, language, &mut effects)
    {
        return plan;
    }
    // Only the customer's side moves the ticket: an out-of-office must not reopen it, and
    // a stranger's mail waits for an agent.
    if matches!(actor, Actor::Customer(_) | Actor::Participant(_)) {
        reopened = customer_moves(s, ticket, &actor, refused_commands, &mut effects);
    }
    Plan {
        ticket: PlanTicket::Existing(ticket.clone()),
        effects,
        outcome: PlannedOutcome::Appended { reopened },
    }
}

/// The customer's side rates a resolved ticket, closes an open one by saying it is solved,
/// or writes on a closed one (news opens a ticket that follows it; thanks are filed).
/// `None`: none of these, the mail moves the ticket as usual.
fn customer_closes(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    actor: &Actor,
    language: Language,
    effects: &mut Vec<Effect>,
) -> Option<Plan> {
    if matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed)
        && let Some((score, comment)) = rating(&s.mail.reply_text)
    {
        effects.push(Effect::Rate {
            score,
            comment: comment.clone(),
        });
        effects.push(record(actor, Event::Rated(ev::Rated { score, comment })));
        effects.extend(customer_status(s.desk, ticket, Change::Rated, None));
        return Some(Plan {
            ticket: PlanTicket::Existing(ticket.clone()),
            effects: std::mem::take(effects),
            outcome: PlannedOutcome::Appended { reopened: false },
        });
    }
    // A closed ticket stays closed: the customer's news opens a ticket that follows it.
    // ("Résolu, merci" in answer to the closing mail is filed on the old one.)
    if ticket.status == TicketStatus::Closed
        && !says_solved(&s.mail.reply_text)
        && !says_thanks(&s.mail.reply_text)
        && let Some(from) = s.mail.from.as_ref().map(|f| &f.address)
        && s.deliverable.is_ok()
    {
        return Some(follows_closed(s, ticket, from, language));
    }
    if ticket.status == TicketStatus::Closed {
        // A closing word in answer to the closing mail: filed on it, nothing moves.
        effects.push(Effect::Touch);
        return Some(Plan {
            ticket: PlanTicket::Existing(ticket.clone()),
            effects: std::mem::take(effects),
            outcome: PlannedOutcome::Appended { reopened: false },
        });
    }
    if ticket.status.is_open() && says_solved(&s.mail.reply_text) {
        let mut resolved = status_change(
            s.desk,
            ticket,
            TicketStatus::Resolved,
            actor,
            Some(Change::Resolved),
        )
        .unwrap_or_default();
        if let Some(moved) = status_event(&mut resolved) {
            moved.by_customer = true;
            moved.self_service = solved_by_self_service(ticket);
        }
        effects.extend(resolved);
        // Held at L0, nobody has the ticket: solved by self-service, no agent to tell.
        if ticket.clock.self_service.is_none()
            && let Some(to) = ticket_watcher(s.desk, ticket)
        {
            effects.push(Effect::Queue(agent_mail(
                s.desk,
                s.gateway,
                Template::AgentFollowUp,
                &to,
                Some(Notice::CustomerSolved),
                false,
                Some(NewText {
                    from: actor.name(),
                    text: s.mail.reply_text.clone(),
                    attachments: Vec::new(),
                    reopened: false,
                }),
            )));
        }
        return Some(Plan {
            ticket: PlanTicket::Existing(ticket.clone()),
            effects: std::mem::take(effects),
            outcome: PlannedOutcome::Appended { reopened: false },
        });
    }
    None
}

/// The customer's side wrote on an open ticket (or reopened a resolved one): it moves to
/// open, its watcher hears the news. Whether it was a reopening.
fn customer_moves(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    actor: &Actor,
    refused_commands: bool,
    effects: &mut Vec<Effect>,
) -> bool {
    let next = ticket.status.on_customer_reply();
    let reopened = ticket.status.reopens_on_reply();
    if let Ok(to) = ticket.status.transition(next) {
        effects.push(Effect::SetStatus { to, reopened });
        effects.push(record(actor, {
            let moved = ev::StatusChanged::new(ticket.status, next);
            if reopened {
                Event::Reopened(moved)
            } else {
                Event::StatusChanged(moved)
            }
        }));
    } else {
        effects.push(Effect::Touch);
    }
    let new_text = NewText {
        from: match s.mail.from.as_ref() {
            Some(f) => match &f.name {
                Some(n) => format!("{n} <{}>", f.address),
                None => f.address.to_string(),
            },
            // A customer's side is known by its sender; should it ever lack one, say who.
            None => actor.name(),
        },
        text: s.mail.reply_text.clone(),
        attachments: s
            .mail
            .attachments
            .iter()
            .map(|a| AttachmentLine::new(a.filename.as_deref(), a.content.len() as u64))
            .collect(),
        reopened,
    };
    // Held at L0: the customer still needs a person. The ticket goes to its tier, and its
    // new agent's notification carries the whole thread, this mail included.
    let held = ticket.clock.self_service.is_some();
    if held {
        effects.extend(end_hold(
            s.desk,
            s.gateway,
            ticket,
            s.loads,
            actor,
            ev::HoldEnd::Replied,
        ));
    }
    if !held && let Some(to) = ticket_watcher(s.desk, ticket) {
        effects.push(Effect::Queue(agent_mail(
            s.desk,
            s.gateway,
            Template::AgentFollowUp,
            &to,
            refused_commands.then_some(Notice::CommandsFromOutsider),
            false,
            Some(new_text),
        )));
    }
    if reopened {
        effects.extend(after_reopening(s.desk, s.gateway, ticket, s.loads));
    }
    reopened
}

/// The subject without a ticket's tag.
pub(super) fn without_tag(subject: &str, code: &ReferenceCode) -> String {
    let without: String = subject
        .replace(&code.tag(), " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if without.is_empty() {
        "(no subject)".into()
    } else {
        without
    }
}

/// The customer wrote on a closed ticket: a new ticket, linked to the old one, whose
/// agent is told what it follows.
pub(super) fn follows_closed(
    s: &MailSituation<'_>,
    closed: &TicketRef,
    from: &EmailAddress,
    language: Language,
) -> Plan {
    let mut plan = new_ticket(s, from, language);
    if let PlanTicket::New(new) = &mut plan.ticket {
        new.subject = without_tag(&new.subject, &closed.code);
        new.follows = Some(closed.clone());
    }
    plan.effects.push(record(
        &Actor::Customer(from.clone()),
        Event::Follows(ev::Follows {
            follows: closed.code.as_str().into(),
        }),
    ));
    for e in &mut plan.effects {
        if let Effect::Queue(m) = e
            && m.template == Template::AgentNotification
        {
            m.reason = Some(Notice::FollowsClosed(closed.code.clone()));
        }
    }
    plan
}

/// What a reopening brings: the customer told the ticket is open again, or, at the
/// desk's reopen threshold, an escalation one tier up (whose own status mail says more).
pub(super) fn after_reopening(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    ticket: &TicketRef,
    loads: &HashMap<EmailAddress, Load>,
) -> Vec<Effect> {
    let reopenings = ticket.reopen_count + 1;
    let threshold = desk.reopen_threshold;
    match ticket.tier.escalate(None) {
        Ok(tier) if threshold > 0 && reopenings >= threshold => escalation(
            desk,
            gateway,
            ticket,
            Escalation {
                to: tier,
                cause: ev::EscalationCause::Reopens,
                reason: Some(Notice::ReopenedTimes(reopenings)),
            },
            loads,
            &Actor::Gateway,
        ),
        _ => customer_status(desk, ticket, Change::Reopened, None),
    }
}
