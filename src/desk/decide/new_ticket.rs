//! A mail that opens a ticket: routed, assigned, acknowledged; and a stranger's mail
//! quoting someone else's ticket, which opens its own or waits in quarantine.

use super::*;

pub(in crate::desk) fn new_ticket(
    s: &MailSituation<'_>,
    from: &EmailAddress,
    language: Language,
) -> Plan {
    let mail = s.mail;
    let customer = Actor::Customer(from.clone());
    let base = subject::analyse(&mail.subject).base;
    let mut routing = s.reading.routing.clone();
    let offer = offer(s, routing.tier);
    // Held for self-service: the ticket opens at L0, where nobody is assigned.
    let opens_at = if offer.hold.is_some() {
        Tier::L0SelfService
    } else {
        routing.tier
    };
    let sender = mail.from.as_ref().filter(|f| f.address == *from);
    let reply_to =
        answer_address(mail)
            .or(sender)
            .cloned()
            .unwrap_or_else(|| crate::inbound::Mailbox {
                address: from.clone(),
                name: None,
            });
    let mut effects = vec![filing(StoredOutcome::NewTicket, None, None, Some(language))];
    // What the agent should know of the people this mail names but the ticket leaves out.
    let notes = people(s, from, &reply_to, &mut effects);
    effects.push(record(
        &customer,
        Event::Created(ev::Created {
            tier: opens_at,
            status: TicketStatus::New,
            language,
        }),
    ));
    effects.push(record(
        &Actor::Gateway,
        Event::Routed(ev::Routed {
            category: routing.category.clone(),
            priority: routing.priority,
            tier: routing.tier,
            rule: routing.rule.clone(),
            matched: routing.matched.clone(),
            scores: routing.scores.clone(),
        }),
    ));
    effects.push(Effect::Queue(OutgoingMail {
        template: Template::Acknowledgement,
        to: reply_to.address.clone(),
        to_name: reply_to.name.clone(),
        language,
        auto_submitted: Some(AutoSubmitted::Replied),
        from_name: None,
        forward_attachments: false,
        receipt: Vec::new(),
        change: None,
        reason: None,
        include_thread: false,
        answers_mail: true,
        new_text: None,
        articles: mail_articles(&offer.suggestions.customer, &[]),
    }));
    effects.extend(offer_effects(&offer, &customer));
    if offer.hold.is_none() {
        effects.extend(assign_new(s, &routing, language, &offer));
    }
    if !notes.is_empty() {
        for e in &mut effects {
            if let Effect::Queue(m) = e
                && m.template == Template::AgentNotification
            {
                m.reason = Some(Notice::All(notes.clone()));
            }
        }
    }
    Plan {
        ticket: PlanTicket::New(NewTicketPlan {
            customer: from.clone(),
            customer_name: mail.from.as_ref().and_then(|f| f.name.clone()),
            subject: if base.is_empty() {
                "(no subject)".into()
            } else {
                base
            },
            thread_key: subject::thread_key(&mail.subject),
            language,
            routing: {
                routing.tier = opens_at;
                routing
            },
            follows: None,
            suggested_articles: crate::kb::suggest::Suggestions::ids(&offer.suggestions.customer),
        }),
        effects,
        outcome: PlannedOutcome::NewTicket,
    }
}

/// A new ticket's agent (or tier address), shown the best articles for it.
fn assign_new(
    s: &MailSituation<'_>,
    routing: &Routing,
    language: Language,
    offer: &Offer,
) -> Vec<Effect> {
    let chosen = s
        .desk
        .roster
        .choose(routing.tier, &routing.category, language, s.loads, None);
    let mut effects = assignment(
        s.desk,
        s.gateway,
        &chosen,
        None,
        routing.tier,
        None,
        &Actor::Gateway,
    );
    show_articles(
        &mut effects,
        mail_articles(&offer.suggestions.agent, &offer.suggestions.customer),
    );
    effects
}

/// The ticket's people: the customer, their Reply-To when it is theirs, and those in Cc up
/// to the desk's limit (never the desk's own addresses). What was left out, for the agent.
fn people(
    s: &MailSituation<'_>,
    from: &EmailAddress,
    reply_to: &crate::inbound::Mailbox,
    effects: &mut Vec<Effect>,
) -> Vec<Notice> {
    let mail = s.mail;
    let mut notes = Vec::new();

    effects.push(Effect::AddParticipant(
        from.clone(),
        ParticipantRole::Customer,
    ));
    let mut participants = vec![from.clone()];
    if reply_to.address != *from {
        effects.push(Effect::AddParticipant(
            reply_to.address.clone(),
            ParticipantRole::Customer,
        ));
        participants.push(reply_to.address.clone());
    }
    if let Some(other) = &mail.reply_to
        && other.address != reply_to.address
    {
        notes.push(Notice::ReplyToOutside(other.address.clone()));
    }
    let mut left_out = Vec::new();
    for cc in &mail.cc {
        if *cc == s.gateway.support_address
            || s.desk.roster.agent(cc).is_some()
            || participants.contains(cc)
        {
            continue;
        }
        if participants.len() < s.gateway.max_participants {
            effects.push(Effect::AddParticipant(cc.clone(), ParticipantRole::Cc));
            participants.push(cc.clone());
        } else {
            left_out.push(cc);
        }
    }
    if !left_out.is_empty() {
        notes.push(Notice::CcLeftOut {
            count: left_out.len(),
            max: s.gateway.max_participants,
            shown: left_out.iter().take(5).map(|a| (*a).clone()).collect(),
        });
    }
    notes
}

/// A person who is not on the ticket their mail threads onto.
pub(super) fn is_stranger(s: &MailSituation<'_>, ticket: &TicketRef) -> bool {
    matches!(sender_actor(s, ticket), Actor::Stranger(_))
}

/// A stranger's mail never joins the ticket it quotes: it opens its own ticket, or waits
/// in quarantine; the quoted ticket's assignee (or tier address) is told either way.
pub(super) fn stranger(s: &MailSituation<'_>, quoted: &TicketRef, language: Language) -> Plan {
    // A stranger is known by their address; a mail without one is quarantined, not a panic.
    let Some(from) = s.mail.from.as_ref().map(|f| &f.address) else {
        return quarantine(QuarantineReason::NoSender, Actor::Machine(None));
    };
    let mut plan = match (s.desk.strangers, &s.deliverable) {
        (crate::config::StrangerPolicy::NewTicket, Ok(())) => {
            let mut plan = new_ticket(s, from, language);
            // Their ticket's subject does not repeat the code of the one they quoted.
            if let PlanTicket::New(new) = &mut plan.ticket {
                new.subject = without_tag(&new.subject, &quoted.code);
            }
            plan
        }
        (crate::config::StrangerPolicy::NewTicket, Err(e)) => quarantine(
            QuarantineReason::Unanswerable(e.clone()),
            Actor::Stranger(from.clone()),
        ),
        (crate::config::StrangerPolicy::Hold, _) => quarantine(
            QuarantineReason::HeldStranger {
                quoted: quoted.code.clone(),
            },
            Actor::Stranger(from.clone()),
        ),
    };
    if matches!(plan.outcome, PlannedOutcome::Quarantined(_)) {
        // The quarantined mail belongs to no ticket; the notices below are about the
        // quoted one (and a plan that sends mail must name the ticket it is about).
        plan.ticket = PlanTicket::Existing(quoted.clone());
    }
    let filed_as_new = plan.outcome == PlannedOutcome::NewTicket;
    // A roster address whose mail was not authenticated: the agent hears of the refusal at
    // their real address, with nothing of the ticket.
    if s.desk.roster.agent(from).is_some()
        && let Some(why) = agent_refusal(s)
    {
        let mut notice = agent_mail(
            s.desk,
            s.gateway,
            Template::AgentReceipt,
            from,
            None,
            false,
            None,
        );
        plan.effects.push(record(
            &Actor::Stranger(from.clone()),
            Event::CommandsRefused(ev::CommandsRefused {
                reason: format!("not authenticated as the agent: {why}"),
            }),
        ));
        notice.receipt = vec![Receipt {
            command: s.mail.subject.chars().take(120).collect(),
            applied: false,
            result: Notice::NotTakenAsYours,
        }];
        plan.effects.push(Effect::Queue(notice));
    }
    if let Some(to) = ticket_watcher(s.desk, quoted) {
        let reason = Notice::Stranger {
            from: from.clone(),
            code: quoted.code.clone(),
            filed_as_new,
            vendor: s.desk.time.vendor_by_address(from).map(|v| v.name.clone()),
        };
        plan.effects.push(Effect::Queue(agent_mail(
            s.desk,
            s.gateway,
            Template::AgentFollowUp,
            &to,
            Some(reason),
            false,
            Some(NewText {
                from: from.to_string(),
                text: s.mail.reply_text.clone(),
                attachments: Vec::new(),
                reopened: false,
            }),
        )));
    }
    plan
}
