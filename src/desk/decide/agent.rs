//! An agent's mail on a ticket: its commands applied one after the other, then the
//! answer relayed to the customer or kept as an internal note, and the receipt.

use super::*;

/// What one command line did, for the receipt.
pub(super) fn describe(command: &MailCommand, before: &TicketRef, after: &TicketRef) -> Notice {
    match command {
        MailCommand::Resolve | MailCommand::Close | MailCommand::Reopen | MailCommand::Wait(_) => {
            Notice::StatusMoved {
                from: before.status,
                to: after.status,
            }
        }
        MailCommand::Escalate { .. } => Notice::TierMoved {
            from: before.tier,
            to: after.tier,
            assignee: after.assignee.as_ref().map(|a| a.to_string()),
        },
        MailCommand::Assign(a) => Notice::AssignedTo(a.to_string()),
        MailCommand::Take => Notice::AssignedToYou,
        MailCommand::Priority(p) => Notice::PriorityMoved {
            from: before.priority,
            to: *p,
        },
        MailCommand::Category(c) => Notice::CategoryMoved {
            from: before.category.clone(),
            to: c.clone(),
        },
        MailCommand::Cc(a) => Notice::WillReceiveReplies(a.clone()),
        MailCommand::Note => Notice::InternalNote,
        MailCommand::Article(id) => Notice::ArticleAdded(id.clone()),
    }
}

/// An agent's mail on a ticket: commands at the top (each applied through
/// `decide_command`, or refused), then either an internal note or a public reply relayed
/// to the customer and the participants; a receipt when there were commands.
pub(super) fn agent_on_ticket(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    agent: &EmailAddress,
) -> Vec<Effect> {
    let actor = Actor::Agent(agent.clone());
    let commands = mail_command::parse(&s.mail.reply_text);
    let (mut effects, state, receipt) = run_commands(s, ticket, agent, &commands);
    let text = if commands.is_empty() {
        s.mail.reply_text.trim().to_string()
    } else {
        commands.rest.trim().to_string()
    };
    let words = Words {
        agent_name: s
            .desk
            .roster
            .agent(agent)
            .map(|a| a.name.clone())
            .unwrap_or_else(|| agent.to_string()),
        attachments: s
            .mail
            .attachments
            .iter()
            .map(|a| AttachmentLine::new(a.filename.as_deref(), a.content.len() as u64))
            .collect(),
        text,
    };
    // `#article ID`: the articles go into the reply; one the base does not have holds the
    // whole reply back (its words likely point at it), and the receipt says so.
    let wanted: Vec<&String> = commands
        .lines
        .iter()
        .filter_map(|(_, c)| match c {
            Ok(MailCommand::Article(id)) => Some(id),
            _ => None,
        })
        .collect();
    let articles: Vec<MailArticle> = wanted
        .iter()
        .filter_map(|id| s.desk.knowledge.kb.get(id))
        .map(|article| MailArticle {
            article: article.clone(),
            score: None,
            sent: false,
        })
        .collect();
    if commands.has_note() {
        effects.extend(note(s, &state, agent, &words));
    } else if articles.len() < wanted.len() {
        // Refused in the receipt; nothing reaches the customer.
    } else if !words.text.is_empty() || !articles.is_empty() {
        reply(s, &state, &actor, &words, articles, &mut effects);
    }
    if !commands.is_empty() {
        let mut mail = agent_mail(
            s.desk,
            s.gateway,
            Template::AgentReceipt,
            agent,
            None,
            false,
            None,
        );
        mail.receipt = receipt;
        effects.push(Effect::Queue(mail));
    }
    effects
}

/// What an agent wrote besides the commands.
struct Words {
    agent_name: String,
    attachments: Vec<AttachmentLine>,
    text: String,
}

/// The command lines, one after the other, each deciding on the ticket as the previous
/// ones left it; what each did goes to the receipt.
fn run_commands(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    agent: &EmailAddress,
    commands: &mail_command::Commands,
) -> (Vec<Effect>, TicketRef, Vec<Receipt>) {
    let actor = Actor::Agent(agent.clone());
    let mut effects = Vec::new();
    let mut state = ticket.clone();
    let mut receipt = Vec::new();
    for (line, parsed) in &commands.lines {
        let (applied, result) = match parsed {
            Err(e) => (false, Notice::NotUnderstood(e.clone())),
            Ok(MailCommand::Note) => (true, describe(&MailCommand::Note, &state, &state)),
            Ok(MailCommand::Article(id)) => {
                let kb = &s.desk.knowledge.kb;
                match kb.get(id) {
                    Some(_) => (true, Notice::ArticleAdded(id.clone())),
                    None => (
                        false,
                        Notice::UnknownArticle {
                            id: id.clone(),
                            closest: kb.closest(id, 3).iter().map(|i| i.to_string()).collect(),
                        },
                    ),
                }
            }
            Ok(command) => {
                let desk_command = desk_command(s, agent, command);
                match command_plan(&CommandSituation {
                    ticket: &state,
                    command: &desk_command,
                    actor: actor.clone(),
                    gateway: s.gateway,
                    desk: s.desk,
                    loads: s.loads,
                    now: s.now,
                }) {
                    Ok(plan) => {
                        let next = TicketState::of(&state)
                            .fold(&plan.effects, s.now, &s.desk.time.calendar)
                            .on(&state);
                        let text = describe(command, &state, &next);
                        effects.extend(plan.effects);
                        state = next;
                        (true, text)
                    }
                    Err(refusal) => (false, Notice::Refused(refusal)),
                }
            }
        };
        receipt.push(Receipt {
            command: line.clone(),
            applied,
            result,
        });
    }
    (effects, state, receipt)
}

/// A `#command` line as the desk's command it asks for.
fn desk_command(s: &MailSituation<'_>, agent: &EmailAddress, command: &MailCommand) -> Command {
    match command {
        MailCommand::Resolve => Command::Resolve,
        MailCommand::Close => Command::Close,
        MailCommand::Reopen => Command::Reopen,
        MailCommand::Escalate { to, reason } => {
            let (vendor, reason) = vendor_named(&s.desk.time.vendors, *to, reason.as_deref());
            Command::Escalate {
                to: *to,
                reason,
                vendor,
            }
        }
        MailCommand::Assign(a) => Command::Assign(a.clone()),
        MailCommand::Take => Command::Assign(agent.clone()),
        MailCommand::Priority(p) => Command::SetPriority(*p),
        MailCommand::Category(c) => Command::SetCategory(c.clone()),
        MailCommand::Wait(d) => Command::Wait(Some(*d)),
        MailCommand::Cc(a) => Command::AddParticipant(a.clone()),
        MailCommand::Note | MailCommand::Article(_) => unreachable!("handled above"),
    }
}

/// An internal note: logged, and passed to the assignee (or the tier's address) unless
/// the note is their own.
fn note(
    s: &MailSituation<'_>,
    state: &TicketRef,
    agent: &EmailAddress,
    words: &Words,
) -> Vec<Effect> {
    let (text, agent_name, attachments) = (&words.text, &words.agent_name, &words.attachments);
    let actor = Actor::Agent(agent.clone());
    let mut effects = Vec::new();
    effects.push(record(
        &actor,
        Event::NoteAdded(ev::NoteAdded {
            chars: text.chars().count(),
        }),
    ));
    // The assignee, or the tier's address, unless the note is their own.
    let to = state
        .assignee
        .clone()
        .or_else(|| s.desk.roster.tier_address(state.tier).cloned())
        .filter(|a| a != agent);
    if let Some(to) = to
        && !text.is_empty()
    {
        effects.push(Effect::Queue(agent_mail(
            s.desk,
            s.gateway,
            Template::AgentNote,
            &to,
            None,
            false,
            Some(NewText {
                from: agent_name.clone(),
                text: text.clone(),
                attachments: attachments.clone(),
                reopened: false,
            }),
        )));
    }
    effects
}

/// A public answer: to the customer and the participants, before any status mail the same
/// mail's commands queued; the first response; and the ticket waits on the customer.
fn reply(
    s: &MailSituation<'_>,
    state: &TicketRef,
    actor: &Actor,
    words: &Words,
    articles: Vec<MailArticle>,
    effects: &mut Vec<Effect>,
) {
    let (text, agent_name, attachments) = (&words.text, &words.agent_name, &words.attachments);
    // The customer receives the agent's signature with the words, never the quoted history.
    let signed = if s.mail.signature.is_empty() {
        text.clone()
    } else {
        format!("{text}\n\n-- \n{}", s.mail.signature)
    };
    let mut recipients = vec![state.customer.clone()];
    for p in s.participants.iter().filter(|_| s.desk.notify_participants) {
        if !recipients.contains(p) && s.desk.roster.agent(p).is_none() {
            recipients.push(p.clone());
        }
    }
    // The answer goes out before the status mail a command of the same mail queued
    // (`#resolve` and an answer): the customer reads the answer, then "resolved",
    // threaded under it.
    let at = effects
        .iter()
        .position(|e| matches!(e, Effect::Queue(m) if recipients.contains(&m.to)))
        .unwrap_or(effects.len());
    let mut replies: Vec<Effect> = Vec::new();
    for to in recipients {
        let name = (to == state.customer)
            .then(|| state.customer_name.clone())
            .flatten();
        replies.push(Effect::Queue(OutgoingMail {
            template: Template::AgentReply,
            to,
            to_name: name,
            language: state.language,
            auto_submitted: None,
            from_name: Some(
                s.desk
                    .reply_from
                    .replace("{agent}", agent_name)
                    .replace("{support}", &s.gateway.support_name),
            ),
            forward_attachments: true,
            receipt: Vec::new(),
            change: None,
            reason: None,
            include_thread: false,
            answers_mail: false,
            new_text: Some(NewText {
                from: agent_name.clone(),
                text: signed.clone(),
                attachments: attachments.clone(),
                reopened: false,
            }),
            articles: articles.clone(),
        }));
    }
    effects.splice(at..at, replies);
    effects.push(record(
        actor,
        Event::AgentReplied(ev::AgentReplied {
            chars: text.chars().count(),
            attachments: attachments.len(),
        }),
    ));
    effects.push(Effect::FirstResponse);
    // An answer puts the ball in the customer's court, unless a command of the same
    // mail already decided the status (`#resolve` with a closing word).
    let status_commanded = effects
        .iter()
        .any(|e| matches!(e, Effect::SetStatus { .. }));
    let waiting = matches!(state.status, TicketStatus::New | TicketStatus::Open)
        .then(|| {
            state
                .status
                .transition(TicketStatus::WaitingOnCustomer)
                .ok()
        })
        .flatten();
    if let Some(to) = waiting.filter(|_| !status_commanded) {
        effects.push(Effect::SetStatus {
            to,
            reopened: false,
        });
        effects.push(record(
            actor,
            Event::StatusChanged(ev::StatusChanged::new(state.status, to.to())),
        ));
    }
}
