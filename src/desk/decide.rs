//! The decisions: pure functions from a situation to a plan. No store, no clock, no I/O;
//! tested as tables of situations.

use std::collections::HashMap;

use serde_json::json;

use super::mail_command::{self, MailCommand};
use super::*;
use crate::clock::Millis;
use crate::config::{DeskSettings, GatewaySettings};
use crate::desk::wording::Notice;
use crate::domain::{Category, Priority, Refusal};
use crate::inbound::{InboundMail, subject};
use crate::roster::{Assignee, Load};
use crate::routing::RouteInput;

/// How a follow-up found its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadedBy {
    ReferenceCode,
    References,
    Subject,
    /// A vendor's own ticket number, learned from their earlier mail.
    VendorTicket,
}

impl ThreadedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            ThreadedBy::ReferenceCode => "reference_code",
            ThreadedBy::References => "references",
            ThreadedBy::Subject => "subject",
            ThreadedBy::VendorTicket => "vendor_ticket",
        }
    }
}

/// What a mail says about itself before any database work: its language and its routing.
/// Pure but the costliest part of a decision (language detection, keyword matching), so
/// the pipeline computes it before it takes SQLite's only write lock.
#[derive(Clone, Debug, PartialEq)]
pub struct MailReading {
    pub language: Language,
    pub routing: Routing,
}

pub fn read_mail(
    mail: &InboundMail,
    gateway: &GatewaySettings,
    desk: &DeskSettings,
) -> MailReading {
    MailReading {
        language: Language::choose(
            mail.content_language.as_deref(),
            // The beginning says which language it is; detection costs by the byte.
            &format!(
                "{}\n{}",
                mail.subject,
                head(&mail.reply_text, LANGUAGE_SAMPLE_BYTES)
            ),
            gateway.default_language,
        ),
        routing: route_mail(mail, desk),
    }
}

/// Where answers to a mail go: its Reply-To when that is in the sender's own domain (or a
/// subdomain of it, either way), else the sender. A Reply-To elsewhere is how a forged or
/// careless mail steers the desk's answers to a third party: it is shown to the agent,
/// who can add it with `#cc`. (A web contact form's Reply-To, the person who wrote, is
/// trusted through `gateway.contact_forms`.)
pub fn answer_address(mail: &InboundMail) -> Option<&crate::inbound::Mailbox> {
    let from = mail.from.as_ref()?;
    let same_domain = |a: &str, b: &str| {
        let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
        a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
    };
    match &mail.reply_to {
        Some(r) if same_domain(r.address.domain(), from.address.domain()) => Some(r),
        _ => Some(from),
    }
}

/// How much of a mail's new text language detection reads.
const LANGUAGE_SAMPLE_BYTES: usize = 16 * 1024;

/// The first `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Everything [`decide_mail`] may look at.
pub struct MailSituation<'a> {
    pub mail: &'a InboundMail,
    /// [`read_mail`]'s answer for this mail.
    pub reading: MailReading,
    /// What kind of machine sent it, if a machine did.
    pub machine: Option<MachineKind>,
    /// The same mail, filed before (a second delivery).
    pub earlier: Option<EarlierMail>,
    /// The ticket it threads onto.
    pub thread: Option<(&'a TicketRef, ThreadedBy)>,
    /// The sender is one of that ticket's participants.
    pub sender_is_participant: bool,
    /// That ticket's participants, when an agent writes on it (whom a public reply goes to).
    pub participants: Vec<EmailAddress>,
    /// Another, different mail already uses this Message-ID.
    pub collision: Option<i64>,
    pub gateway: &'a GatewaySettings,
    pub desk: &'a DeskSettings,
    pub loads: &'a HashMap<EmailAddress, Load>,
    /// For a mail from a roster address, when the desk requires authentication: whether a
    /// DKIM signature aligned with its From domain verified (checked before, with DNS).
    pub agent_dkim: Option<Result<(), String>>,
    /// Whether the customer's address can be written to (see `render::deliverable`).
    pub deliverable: Result<(), String>,
    pub now: Millis,
}

/// What an agent or the command line asks of a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Assign(EmailAddress),
    Escalate {
        to: Option<Tier>,
        reason: Option<String>,
        /// For L4: the vendor (by its configured name) the ticket goes to.
        vendor: Option<String>,
    },
    Resolve,
    Close,
    Reopen,
    /// The ticket waits for the customer's answer, for this long (the desk's default when
    /// not given); then the customer is reminded, and later the ticket resolved.
    Wait(Option<std::time::Duration>),
    SetPriority(Priority),
    SetCategory(Category),
    /// Someone else to keep informed (an agent's `#cc`).
    AddParticipant(EmailAddress),
}

pub struct CommandSituation<'a> {
    pub ticket: &'a TicketRef,
    pub command: &'a Command,
    pub actor: Actor,
    pub gateway: &'a GatewaySettings,
    pub desk: &'a DeskSettings,
    pub loads: &'a HashMap<EmailAddress, Load>,
    pub now: Millis,
}

pub(super) fn record(kind: EventKind, actor: &Actor, detail: serde_json::Value) -> Effect {
    Effect::Record(EventRecord {
        kind,
        actor: actor.clone(),
        detail,
    })
}

fn filing(
    outcome: StoredOutcome,
    detail: Option<String>,
    machine: Option<MachineKind>,
    language: Option<Language>,
) -> Effect {
    Effect::FileMail(Filing {
        outcome,
        detail,
        machine,
        language,
        from_non_participant: false,
    })
}

pub(crate) fn quarantine(reason: QuarantineReason, actor: Actor) -> Plan {
    let detail = reason.describe();
    Plan {
        ticket: PlanTicket::None,
        effects: vec![
            filing(StoredOutcome::Quarantined, Some(detail.clone()), None, None),
            record(EventKind::Quarantined, &actor, json!({ "reason": detail })),
        ],
        outcome: PlannedOutcome::Quarantined(reason),
    }
}

/// A mail we could not read at all.
pub fn decide_unreadable(
    failure: &crate::inbound::ParseFailure,
    earlier: Option<EarlierMail>,
) -> Plan {
    match earlier {
        Some(first) => Plan {
            ticket: PlanTicket::None,
            effects: vec![filing(
                StoredOutcome::Duplicate,
                Some("same bytes as an earlier mail".into()),
                None,
                None,
            )],
            outcome: PlannedOutcome::Duplicate(first.outcome),
        },
        None => quarantine(
            QuarantineReason::Unparseable(failure.clone()),
            Actor::Gateway,
        ),
    }
}

/// What a mail becomes: a duplicate, a follow-up, ignored machine mail, quarantine, or a
/// new ticket routed, assigned and acknowledged.
pub fn decide_mail(s: &MailSituation<'_>) -> Plan {
    with_timing(mail_plan(s), s.desk, s.now)
}

fn mail_plan(s: &MailSituation<'_>) -> Plan {
    let mail = s.mail;
    let language = s.reading.language;
    let sender = mail.from.as_ref().map(|f| f.address.clone());

    if let Some(first) = s.earlier {
        return Plan {
            ticket: PlanTicket::None,
            effects: vec![Effect::FileMail(Filing {
                outcome: StoredOutcome::Duplicate,
                detail: Some(earlier_detail(&first)),
                machine: s.machine,
                language: None,
                from_non_participant: false,
            })],
            outcome: PlannedOutcome::Duplicate(first.outcome),
        };
    }

    let mut plan = match s.thread {
        Some((ticket, _)) if is_stranger(s, ticket) => stranger(s, ticket, language),
        Some((ticket, how)) => follow_up(s, ticket, how, language),
        None => match (s.machine, &sender) {
            (Some(kind), _) => Plan {
                ticket: PlanTicket::None,
                effects: vec![filing(
                    StoredOutcome::Ignored,
                    Some(kind.as_str().into()),
                    Some(kind),
                    Some(language),
                )],
                outcome: PlannedOutcome::Ignored(kind),
            },
            (None, None) => quarantine(QuarantineReason::NoSender, Actor::Machine(None)),
            (None, Some(from)) => match &s.deliverable {
                Err(e) => quarantine(
                    QuarantineReason::Unanswerable(e.clone()),
                    Actor::Customer(from.clone()),
                ),
                Ok(()) => new_ticket(s, from, language),
            },
        },
    };
    if let (Some(earlier), Some(id)) = (s.collision, &mail.message_id) {
        let ticket_outcome = match plan.outcome {
            PlannedOutcome::NewTicket => "new_ticket",
            PlannedOutcome::Appended { .. } => "appended",
            PlannedOutcome::Ignored(_) => "ignored",
            PlannedOutcome::Quarantined(_) => "quarantined",
            _ => "other",
        };
        plan.effects.push(record(
            EventKind::MessageIdCollision,
            &Actor::Gateway,
            json!({ "message_id": id, "earlier_message": earlier, "outcome": ticket_outcome }),
        ));
    }
    plan
}

/// What routing makes of a mail: the rules applied to its subject, new text, sender,
/// recipients, attachments and headers.
pub fn route_mail(mail: &InboundMail, desk: &DeskSettings) -> Routing {
    let recipients: Vec<EmailAddress> = mail
        .to
        .iter()
        .chain(&mail.cc)
        .cloned()
        .chain(mail.delivered_to.iter().cloned())
        .collect();
    desk.rules.route(&RouteInput {
        subject: &mail.subject,
        text: &mail.reply_text,
        from: mail.from.as_ref().map(|f| &f.address),
        recipients: &recipients,
        has_attachment: !mail.attachments.is_empty(),
        headers: &mail.headers,
    })
}

/// What `helpdesk route` prints: the routing and who would get the ticket now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoutePreview {
    pub category: Category,
    pub priority: Priority,
    pub tier: Tier,
    pub rule: Option<String>,
    pub matched: Vec<String>,
    /// Each built-in category's score and its words, best first.
    pub scores: Vec<crate::routing::CategoryScore>,
    pub assignee: Option<String>,
    pub language: Language,
}

pub fn preview_route(
    mail: &InboundMail,
    gateway: &GatewaySettings,
    desk: &DeskSettings,
    loads: &HashMap<EmailAddress, Load>,
) -> RoutePreview {
    let MailReading { language, routing } = read_mail(mail, gateway, desk);
    let assignee = match desk
        .roster
        .choose(routing.tier, &routing.category, language, loads, None)
    {
        Assignee::Agent(a) => Some(a.to_string()),
        Assignee::Unassigned { .. } => None,
    };
    RoutePreview {
        category: routing.category,
        priority: routing.priority,
        tier: routing.tier,
        rule: routing.rule,
        matched: routing.matched,
        scores: routing.scores,
        assignee,
        language,
    }
}

pub(super) fn new_ticket(s: &MailSituation<'_>, from: &EmailAddress, language: Language) -> Plan {
    let mail = s.mail;
    let customer = Actor::Customer(from.clone());
    let base = subject::analyse(&mail.subject).base;
    let routing = s.reading.routing.clone();
    let sender = mail.from.as_ref().filter(|f| f.address == *from);
    let reply_to =
        answer_address(mail)
            .or(sender)
            .cloned()
            .unwrap_or_else(|| crate::inbound::Mailbox {
                address: from.clone(),
                name: None,
            });
    // What the agent should know of the people this mail names but the ticket leaves out.
    let mut notes = Vec::new();

    let mut effects = vec![filing(StoredOutcome::NewTicket, None, None, Some(language))];
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
    effects.push(record(
        EventKind::Created,
        &customer,
        json!({ "tier": routing.tier.as_str(), "status": TicketStatus::New.as_str(), "language": language.as_str() }),
    ));
    effects.push(record(
        EventKind::Routed,
        &Actor::Gateway,
        json!({
            "category": routing.category.as_str(),
            "priority": routing.priority.as_str(),
            "tier": routing.tier.as_str(),
            "rule": routing.rule,
            "matched": routing.matched,
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
    }));
    let chosen = s
        .desk
        .roster
        .choose(routing.tier, &routing.category, language, s.loads, None);
    effects.extend(assignment(
        s.desk,
        s.gateway,
        &chosen,
        None,
        routing.tier,
        None,
        &Actor::Gateway,
    ));
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
            routing,
            follows: None,
        }),
        effects,
        outcome: PlannedOutcome::NewTicket,
    }
}

/// The first line of what someone wrote this time, trimmed.
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// "RÉSOLU", "solved", "Fermer"… alone on the first line: the customer closes the request.
pub fn says_solved(text: &str) -> bool {
    let line = first_line(text).trim_end_matches(['.', '!']);
    let folded: String = {
        use unicode_normalization::UnicodeNormalization;
        line.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    matches!(
        folded.as_str(),
        "resolu" | "resolue" | "solved" | "resolved" | "close" | "closed" | "fermer" | "ferme"
    )
}

/// Nothing but courtesy ("Merci beaucoup, bonne journée !", "Thanks, it works now"): on a
/// closed ticket, filed without opening a new one.
pub fn says_thanks(text: &str) -> bool {
    const COURTESY: &[&str] = &[
        "merci",
        "beaucoup",
        "bien",
        "encore",
        "mille",
        "fois",
        "super",
        "parfait",
        "top",
        "ok",
        "d",
        "accord",
        "cordialement",
        "bonne",
        "journee",
        "soiree",
        "bonjour",
        "c",
        "est",
        "tout",
        "bon",
        "ca",
        "marche",
        "resolu",
        "a",
        "vous",
        "pour",
        "votre",
        "aide",
        "thanks",
        "thank",
        "you",
        "very",
        "much",
        "great",
        "perfect",
        "cheers",
        "regards",
        "best",
        "many",
        "lot",
        "hello",
        "hi",
        "it",
        "works",
        "now",
        "solved",
        "for",
        "your",
        "help",
        "all",
        "good",
    ];
    let folded: String = {
        use unicode_normalization::UnicodeNormalization;
        text.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= 12
        && words
            .iter()
            .any(|w| ["merci", "thanks", "thank"].contains(w))
        && words.iter().all(|w| COURTESY.contains(w))
}

/// A digit from 1 to 5 opening the first line, with whatever follows as the comment
/// ("4", "5 - merci !", "3\nUn peu long."). Anything else is not a rating.
pub fn rating(text: &str) -> Option<(u8, Option<String>)> {
    let line = first_line(text);
    let mut chars = line.chars();
    let digit = chars.next()?.to_digit(10)?;
    if !(1..=5).contains(&digit) {
        return None;
    }
    let after_digit = chars.as_str();
    // "4" or "4/5", "4 - …", "4. …" but not "42" or "4h ago".
    let after = after_digit.strip_prefix("/5").unwrap_or(after_digit);
    if after.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    let rest_of_line = after
        .trim_start_matches([' ', '-', '.', ':', ')', '–'])
        .trim();
    let later: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    let mut comment = rest_of_line.to_string();
    if !later.is_empty() {
        if !comment.is_empty() {
            comment.push('\n');
        }
        comment.push_str(&later.join("\n"));
    }
    Some((digit as u8, (!comment.is_empty()).then_some(comment)))
}

/// Why a mail from a roster (or vendor) address is not taken as theirs: the desk requires
/// authentication, the trusted server did not vouch for the sender and no DKIM signature of
/// theirs verified.
fn agent_refusal(s: &MailSituation<'_>) -> Option<String> {
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

/// A person who is not on the ticket their mail threads onto.
fn is_stranger(s: &MailSituation<'_>, ticket: &TicketRef) -> bool {
    matches!(sender_actor(s, ticket), Actor::Stranger(_))
}

/// A stranger's mail never joins the ticket it quotes: it opens its own ticket, or waits
/// in quarantine; the quoted ticket's assignee (or tier address) is told either way.
fn stranger(s: &MailSituation<'_>, quoted: &TicketRef, language: Language) -> Plan {
    let from = &s
        .mail
        .from
        .as_ref()
        .expect("a stranger has an address")
        .address;
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
            EventKind::CommandsRefused,
            &Actor::Stranger(from.clone()),
            json!({ "reason": format!("not authenticated as the agent: {why}") }),
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

/// Who is writing on a ticket.
fn sender_actor(s: &MailSituation<'_>, ticket: &TicketRef) -> Actor {
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

fn follow_up(
    s: &MailSituation<'_>,
    ticket: &TicketRef,
    how: ThreadedBy,
    language: Language,
) -> Plan {
    let actor = sender_actor(s, ticket);
    let stranger = matches!(actor, Actor::Stranger(_));
    let mut effects = vec![Effect::FileMail(Filing {
        outcome: StoredOutcome::Appended,
        detail: s.machine.map(|m| m.as_str().to_string()),
        machine: s.machine,
        language: Some(language),
        from_non_participant: stranger,
    })];
    effects.push(record(
        EventKind::MessageReceived,
        &actor,
        json!({
            "threaded_by": how.as_str(),
            "machine": s.machine.map(|m| m.as_str()),
            "from_non_participant": stranger,
        }),
    ));
    let mut reopened = false;
    if let Actor::Vendor(name) = &actor {
        if let Some(Effect::FileMail(f)) = effects.first_mut() {
            f.detail = Some("vendor".into());
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
            f.detail = Some(if note { "internal_note" } else { "agent_mail" }.into());
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
            EventKind::CommandsRefused,
            &actor,
            json!({ "reason": "the sender is not on the roster" }),
        ));
    }
    // The customer closes or rates by reply.
    if matches!(actor, Actor::Customer(_) | Actor::Participant(_)) {
        if matches!(ticket.status, TicketStatus::Resolved | TicketStatus::Closed)
            && let Some((score, comment)) = rating(&s.mail.reply_text)
        {
            effects.push(Effect::Rate {
                score,
                comment: comment.clone(),
            });
            effects.push(record(
                EventKind::Rated,
                &actor,
                json!({ "score": score, "comment": comment }),
            ));
            effects.extend(customer_status(s.desk, ticket, Change::Rated, None));
            return Plan {
                ticket: PlanTicket::Existing(ticket.clone()),
                effects,
                outcome: PlannedOutcome::Appended { reopened: false },
            };
        }
        // A closed ticket stays closed: the customer's news opens a ticket that follows it.
        // ("Résolu, merci" in answer to the closing mail is filed on the old one.)
        if ticket.status == TicketStatus::Closed
            && !says_solved(&s.mail.reply_text)
            && !says_thanks(&s.mail.reply_text)
            && let Some(from) = s.mail.from.as_ref().map(|f| &f.address)
            && s.deliverable.is_ok()
        {
            return follows_closed(s, ticket, from, language);
        }
        if ticket.status == TicketStatus::Closed {
            // A closing word in answer to the closing mail: filed on it, nothing moves.
            effects.push(Effect::Touch);
            return Plan {
                ticket: PlanTicket::Existing(ticket.clone()),
                effects,
                outcome: PlannedOutcome::Appended { reopened: false },
            };
        }
        if ticket.status.is_open() && says_solved(&s.mail.reply_text) {
            let mut resolved = status_change(
                s.desk,
                ticket,
                TicketStatus::Resolved,
                &actor,
                Some(Change::Resolved),
            )
            .unwrap_or_default();
            for e in &mut resolved {
                if let Effect::Record(r) = e {
                    r.detail["by_customer"] = json!(true);
                }
            }
            effects.extend(resolved);
            if let Some(to) = ticket_watcher(s.desk, ticket) {
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
            return Plan {
                ticket: PlanTicket::Existing(ticket.clone()),
                effects,
                outcome: PlannedOutcome::Appended { reopened: false },
            };
        }
    }
    // Only the customer's side moves the ticket: an out-of-office must not reopen it, and
    // a stranger's mail waits for an agent.
    if matches!(actor, Actor::Customer(_) | Actor::Participant(_)) {
        let next = ticket.status.on_customer_reply();
        reopened = ticket.status.reopens_on_reply();
        if let Ok(to) = ticket.status.transition(next) {
            effects.push(Effect::SetStatus { to, reopened });
            effects.push(record(
                if reopened {
                    EventKind::Reopened
                } else {
                    EventKind::StatusChanged
                },
                &actor,
                json!({ "from": ticket.status.as_str(), "to": next.as_str() }),
            ));
        } else {
            effects.push(Effect::Touch);
        }
        let from = s.mail.from.as_ref().expect("a person's mail has a sender");
        let new_text = NewText {
            from: match &from.name {
                Some(n) => format!("{n} <{}>", from.address),
                None => from.address.to_string(),
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
        if let Some(to) = ticket_watcher(s.desk, ticket) {
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
    }
    Plan {
        ticket: PlanTicket::Existing(ticket.clone()),
        effects,
        outcome: PlannedOutcome::Appended { reopened },
    }
}

/// A vendor's mail on a ticket sent to them: recorded, their ticket number learned, and
/// (unless a machine of theirs wrote it) passed to the assignee; never to the customer.
fn vendor_mail(s: &MailSituation<'_>, ticket: &TicketRef, name: &str) -> Vec<Effect> {
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
        EventKind::VendorReplied,
        &actor,
        json!({
            "vendor": name,
            "machine": s.machine.map(|m| m.as_str()),
            "vendor_ticket": learned.as_ref().or(ticket.vendor_ticket.as_ref()),
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

/// The subject without a ticket's tag.
fn without_tag(subject: &str, code: &ReferenceCode) -> String {
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
fn follows_closed(
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
        EventKind::Follows,
        &Actor::Customer(from.clone()),
        json!({ "follows": closed.code.as_str() }),
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

/// The ticket as `effects` leave it, so the next command of the same mail sees the
/// change the previous one made (`#take` then `#resolve`).
fn after(ticket: &TicketRef, effects: &[Effect]) -> TicketRef {
    let mut t = ticket.clone();
    for e in effects {
        match e {
            Effect::SetStatus { to, reopened } => {
                t.status = to.to();
                if *reopened {
                    t.reopen_count += 1;
                }
            }
            Effect::ChangeTier(tier) => t.tier = tier.to(),
            Effect::Assign(a) => t.assignee = a.clone(),
            Effect::SetPriority(p) => t.priority = *p,
            Effect::SetCategory(c) => t.category = c.clone(),
            _ => {}
        }
    }
    t
}

/// What one command line did, for the receipt.
fn describe(command: &MailCommand, before: &TicketRef, after: &TicketRef) -> Notice {
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
    }
}

/// An agent's mail on a ticket: commands at the top (each applied through
/// `decide_command`, or refused), then either an internal note or a public reply relayed
/// to the customer and the participants; a receipt when there were commands.
fn agent_on_ticket(s: &MailSituation<'_>, ticket: &TicketRef, agent: &EmailAddress) -> Vec<Effect> {
    let actor = Actor::Agent(agent.clone());
    let commands = mail_command::parse(&s.mail.reply_text);
    let mut effects = Vec::new();
    let mut state = ticket.clone();
    let mut receipt = Vec::new();
    for (line, parsed) in &commands.lines {
        let (applied, result) = match parsed {
            Err(e) => (false, Notice::NotUnderstood(e.clone())),
            Ok(MailCommand::Note) => (true, describe(&MailCommand::Note, &state, &state)),
            Ok(command) => {
                let desk_command = match command {
                    MailCommand::Resolve => Command::Resolve,
                    MailCommand::Close => Command::Close,
                    MailCommand::Reopen => Command::Reopen,
                    MailCommand::Escalate { to, reason } => {
                        let (vendor, reason) = vendor_named(s.desk, *to, reason.as_deref());
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
                    MailCommand::Note => unreachable!("handled above"),
                };
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
                        let next = after(&state, &plan.effects);
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
    let text = if commands.is_empty() {
        s.mail.reply_text.trim().to_string()
    } else {
        commands.rest.trim().to_string()
    };
    // The customer receives the agent's signature with the words, never the quoted history.
    let signed = if s.mail.signature.is_empty() || text.is_empty() {
        text.clone()
    } else {
        format!("{text}\n\n-- \n{}", s.mail.signature)
    };
    let agent_name = s
        .desk
        .roster
        .agent(agent)
        .map(|a| a.name.clone())
        .unwrap_or_else(|| agent.to_string());
    let attachments: Vec<AttachmentLine> = s
        .mail
        .attachments
        .iter()
        .map(|a| AttachmentLine::new(a.filename.as_deref(), a.content.len() as u64))
        .collect();
    if commands.has_note() {
        effects.push(record(
            EventKind::NoteAdded,
            &actor,
            json!({ "chars": text.chars().count() }),
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
    } else if !text.is_empty() {
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
                        .replace("{agent}", &agent_name)
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
            }));
        }
        effects.splice(at..at, replies);
        effects.push(record(
            EventKind::AgentReplied,
            &actor,
            json!({ "chars": text.chars().count(), "attachments": attachments.len() }),
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
                EventKind::StatusChanged,
                &actor,
                json!({ "from": state.status.as_str(), "to": "waiting_on_customer" }),
            ));
        }
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

/// What a reopening brings: the customer told the ticket is open again, or, at the
/// desk's reopen threshold, an escalation one tier up (whose own status mail says more).
fn after_reopening(
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
            tier,
            Some(Notice::ReopenedTimes(reopenings)),
            loads,
            &Actor::Gateway,
        ),
        _ => customer_status(desk, ticket, Change::Reopened, None),
    }
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
    let event = |kind| {
        record(
            kind,
            actor,
            json!({
                "to": new.as_ref().map(|a| a.as_str()),
                "from": previous.map(|a| a.as_str()),
                "tier": tier.as_str(),
                "notified": notify.as_ref().map(|a| a.as_str()),
                "reason": reason.as_ref().map(|r| r.to_string()),
            }),
        )
    };
    if new.as_ref() != previous {
        effects.push(Effect::Assign(new.clone()));
        effects.push(event(if new.is_some() {
            EventKind::Assigned
        } else {
            EventKind::Unassigned
        }));
    } else if new.is_none() && (notify.is_some() || !desk.roster.agents().is_empty()) {
        // Still nobody's: no write to the ticket, but the log says nobody fitted (a desk
        // without a roster or tier addresses has nothing to say).
        effects.push(event(EventKind::Unassigned));
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

pub(super) fn escalation(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    ticket: &TicketRef,
    to: TierMove,
    reason: Option<Notice>,
    loads: &HashMap<EmailAddress, Load>,
    actor: &Actor,
) -> Vec<Effect> {
    let mut effects = vec![Effect::ChangeTier(to)];
    let to = to.to();
    effects.extend([
        record(
            EventKind::Escalated,
            actor,
            json!({ "from": ticket.tier.as_str(), "to": to.as_str(), "reason": reason.as_ref().map(|r| r.to_string()) }),
        ),
    ]);
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
        record(
            if reopened {
                EventKind::Reopened
            } else {
                EventKind::StatusChanged
            },
            actor,
            json!({ "from": ticket.status.as_str(), "to": next.to().as_str() }),
        ),
    ];
    if let Some(change) = change {
        effects.extend(customer_status(desk, ticket, change, None));
    }
    Ok(effects)
}

/// `#escalate L4 Ricoh France printer jams`: the vendor named at the start of the reason,
/// and the rest of it.
pub fn vendor_named(
    desk: &DeskSettings,
    to: Option<Tier>,
    reason: Option<&str>,
) -> (Option<String>, Option<String>) {
    let Some(text) = reason.filter(|_| to == Some(Tier::L4Vendor)) else {
        return (None, reason.map(str::to_string));
    };
    // Compared character by character: lower-casing may change a text's length in bytes.
    let named = |name: &str| -> Option<usize> {
        let end = text
            .char_indices()
            .nth(name.chars().count())
            .map(|(i, _)| i)
            .unwrap_or(text.len());
        (text[..end].to_lowercase() == name.to_lowercase()
            && text[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric()))
        .then_some(end)
    };
    let found = desk
        .time
        .vendors
        .iter()
        .filter_map(|v| named(&v.name).map(|end| (v, end)))
        .max_by_key(|(v, _)| v.name.len());
    match found {
        Some((v, end)) => {
            let rest = text[end..].trim_start_matches([' ', ':', '-', ',']).trim();
            (
                Some(v.name.clone()),
                (!rest.is_empty()).then(|| rest.to_string()),
            )
        }
        None => (None, Some(text.to_string())),
    }
}

/// The ticket goes to an external vendor (L4): forwarded to them with the customer's
/// words (without the customer's details); it stays with its assignee, who receives the
/// vendor's answers and relays what the customer should know.
fn to_vendor(
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
            EventKind::Escalated,
            &s.actor,
            json!({ "from": t.tier.as_str(), "to": "L4", "reason": reason, "vendor": vendor.name }),
        ));
    }
    if t.assignee.is_none()
        && let Actor::Agent(agent) = &s.actor
    {
        effects.push(Effect::Assign(Some(agent.clone())));
        effects.push(record(
            EventKind::Assigned,
            &s.actor,
            json!({ "to": agent.as_str(), "from": null, "tier": "L4", "reason": "sent to a vendor" }),
        ));
    }
    effects.push(Effect::SetVendor(vendor.name.clone()));
    effects.push(Effect::Clock(ClockChange::VendorAsked));
    effects.push(record(
        EventKind::VendorForwarded,
        &s.actor,
        json!({ "vendor": vendor.name, "address": vendor.address.as_str(), "reason": reason }),
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
    }));
    effects.extend(customer_status(s.desk, t, Change::Escalated, None));
    Ok(effects)
}

/// What a command does to a ticket, or why it may not.
pub fn decide_command(s: &CommandSituation<'_>) -> Result<Plan, Refusal> {
    Ok(with_timing(command_plan(s)?, s.desk, s.now))
}

/// A command's plan without the closing timing (an agent's mail applies several, then
/// times the ticket once).
fn command_plan(s: &CommandSituation<'_>) -> Result<Plan, Refusal> {
    let t = s.ticket;
    let effects = match s.command {
        Command::Assign(to) => {
            if s.desk.roster.agent(to).is_none() {
                return Err(Refusal::NotOnRoster(to.clone()));
            }
            if t.assignee.as_ref() == Some(to) {
                return Err(Refusal::AlreadyAssigned(to.clone()));
            }
            if t.status == TicketStatus::Closed {
                return Err(Refusal::Closed);
            }
            let mut effects = assignment(
                s.desk,
                s.gateway,
                &Assignee::Agent(to.clone()),
                t.assignee.as_ref(),
                t.tier,
                None,
                &s.actor,
            );
            if s.desk.notify_customer_on_assignment {
                effects.extend(customer_status(s.desk, t, Change::Assigned, None));
            }
            effects
        }
        Command::Escalate { to, reason, vendor } => {
            if t.status == TicketStatus::Closed {
                return Err(Refusal::Closed);
            }
            if let Some(name) = vendor {
                return Ok(Plan {
                    ticket: PlanTicket::Existing(t.clone()),
                    effects: to_vendor(s, name, reason.clone())?,
                    outcome: PlannedOutcome::Changed,
                });
            }
            let tier = t.tier.escalate(*to)?;
            // L4 is an external vendor's: a ticket sent there with nobody to send it to
            // would sit unassigned while the customer is told a vendor has it.
            if tier.to() == Tier::L4Vendor {
                return Err(Refusal::VendorNeeded {
                    known: s.desk.time.vendor_names(),
                });
            }
            escalation(
                s.desk,
                s.gateway,
                t,
                tier,
                reason.clone().map(Notice::Written),
                s.loads,
                &s.actor,
            )
        }
        Command::Resolve => status_change(
            s.desk,
            t,
            TicketStatus::Resolved,
            &s.actor,
            Some(Change::Resolved),
        )?,
        Command::Close => status_change(
            s.desk,
            t,
            TicketStatus::Closed,
            &s.actor,
            Some(Change::Closed),
        )?,
        Command::Wait(duration) => {
            if let Some(d) = duration
                && (d.is_zero() || *d > crate::timing::LONGEST)
            {
                return Err(Refusal::WaitOutOfRange(*d));
            }
            let mut effects = status_change(
                s.desk,
                t,
                TicketStatus::WaitingOnCustomer,
                &s.actor,
                Some(Change::Waiting),
            )?;
            if let (Some(d), Some(Effect::Record(r))) = (duration, effects.get_mut(1)) {
                r.detail["wait_seconds"] = json!(d.as_secs());
            }
            effects.push(Effect::Clock(ClockChange::WaitFor(
                duration.map(|d| d.as_millis().min(i64::MAX as u128) as i64),
            )));
            effects
        }
        Command::SetPriority(p) => {
            if *p == t.priority {
                return Err(Refusal::SamePriority(*p));
            }
            vec![
                Effect::SetPriority(*p),
                record(
                    EventKind::PriorityChanged,
                    &s.actor,
                    json!({ "from": t.priority.as_str(), "to": p.as_str() }),
                ),
            ]
        }
        Command::SetCategory(c) => {
            if *c == t.category {
                return Err(Refusal::SameCategory(c.clone()));
            }
            let known = s.desk.known_categories();
            if !known.contains(c) {
                return Err(Refusal::NoSuchCategory {
                    name: c.clone(),
                    known,
                });
            }
            vec![
                Effect::SetCategory(c.clone()),
                record(
                    EventKind::CategoryChanged,
                    &s.actor,
                    json!({ "from": t.category.as_str(), "to": c.as_str() }),
                ),
            ]
        }
        Command::AddParticipant(a) => {
            if *a == s.gateway.support_address {
                return Err(Refusal::SupportAddress);
            }
            vec![
                Effect::AddParticipant(a.clone(), ParticipantRole::Cc),
                record(
                    EventKind::ParticipantAdded,
                    &s.actor,
                    json!({ "address": a.as_str() }),
                ),
            ]
        }
        Command::Reopen => {
            if !t.status.reopens_on_reply() {
                return Err(Refusal::NotReopenable(t.status));
            }
            let mut effects = status_change(s.desk, t, TicketStatus::Open, &s.actor, None)?;
            effects.extend(after_reopening(s.desk, s.gateway, t, s.loads));
            effects
        }
    };
    Ok(Plan {
        ticket: PlanTicket::Existing(t.clone()),
        effects,
        outcome: PlannedOutcome::Changed,
    })
}

#[cfg(test)]
mod tests {
    //! Decisions as tables of situations: no store, no runtime.

    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{CodePrefix, ReferenceCode};
    use crate::roster::{Agent, Roster, TierSettings};
    use crate::routing::Rules;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn gateway() -> GatewaySettings {
        GatewaySettings {
            support_address: addr("support@example.com"),
            support_name: "Support".into(),
            reference_prefix: CodePrefix::new("HD").unwrap(),
            default_language: Language::Fr,
            templates_dir: None,
            max_participants: 10,
            contact_forms: Vec::new(),
            organisation: "Support".into(),
        }
    }

    fn desk() -> DeskSettings {
        let agent = |name: &str, tiers: &[Tier], languages: &[Language]| Agent {
            name: name.into(),
            address: addr(&format!("{}@example.com", name.to_lowercase())),
            tiers: tiers.to_vec(),
            categories: Vec::new(),
            languages: languages.to_vec(),
        };
        let mut tiers = BTreeMap::new();
        tiers.insert(
            Tier::L3Expert,
            TierSettings {
                labels: BTreeMap::new(),
                address: Some(addr("n3@example.com")),
            },
        );
        DeskSettings {
            strangers: crate::config::StrangerPolicy::NewTicket,
            require_agent_auth: false,
            agent_auth_chosen: true,
            agent_authserv_id: None,
            dkim_dns: None,
            notify_participants: true,
            reply_from: "{agent} ({support})".into(),
            budget: crate::config::MailBudget::default(),
            rules: Rules::new(Vec::new(), true),
            roster: Roster::new(
                vec![
                    agent("Alice", &[Tier::L1FrontLine], &[Language::Fr]),
                    agent("Bob", &[Tier::L2Advanced], &[Language::En, Language::Fr]),
                ],
                tiers,
            ),
            reopen_threshold: 2,
            notify_customer_on_assignment: false,
            time: crate::timing::TimeSettings::default(),
        }
    }

    fn mail(from: &str, subject: &str, body: &str) -> InboundMail {
        let raw = format!(
            "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <m1@example.fr>\r\n\r\n{body}\r\n"
        );
        crate::inbound::parse(raw.as_bytes()).unwrap()
    }

    fn ticket(
        status: TicketStatus,
        tier: Tier,
        assignee: Option<&str>,
        reopen_count: u32,
    ) -> TicketRef {
        TicketRef {
            id: 7,
            code: ReferenceCode::from_stored("HD-7K3M9QXA".into()),
            status,
            tier,
            category: "printer".parse().unwrap(),
            priority: Priority::Normal,
            assignee: assignee.map(addr),
            customer: addr("marie@example.fr"),
            customer_name: Some("Marie".into()),
            subject: "Imprimante".into(),
            language: Language::Fr,
            reopen_count,
            participants: vec![addr("marie@example.fr")],
            clock: crate::timing::TicketClock::started(0),
            vendor: None,
            vendor_ticket: None,
        }
    }

    fn situation<'a>(
        mail: &'a InboundMail,
        thread: Option<(&'a TicketRef, ThreadedBy)>,
        gateway: &'a GatewaySettings,
        desk: &'a DeskSettings,
        loads: &'a HashMap<EmailAddress, Load>,
    ) -> MailSituation<'a> {
        MailSituation {
            mail,
            reading: read_mail(mail, gateway, desk),
            machine: None,
            earlier: None,
            thread,
            sender_is_participant: true,
            participants: Vec::new(),
            agent_dkim: None,
            collision: None,
            gateway,
            desk,
            loads,
            deliverable: Ok(()),
            now: 1_000,
        }
    }

    #[test]
    fn a_new_mail_is_routed_assigned_acknowledged_and_the_agent_gets_the_thread() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail(
            "Marie <marie@example.fr>",
            "Imprimante en panne",
            "Bourrage papier au 2e.",
        );
        let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
        assert_eq!(plan.outcome, PlannedOutcome::NewTicket);
        let PlanTicket::New(new) = &plan.ticket else {
            panic!("{:?}", plan.ticket)
        };
        assert_eq!(new.routing.category.as_str(), "printer");
        assert_eq!(new.routing.tier, Tier::L1FrontLine);
        assert_eq!(
            plan.queued(),
            vec![
                (Template::Acknowledgement, &addr("marie@example.fr")),
                (Template::AgentNotification, &addr("alice@example.com")),
            ]
        );
        assert!(
            plan.effects
                .contains(&Effect::Assign(Some(addr("alice@example.com"))))
        );
        assert_eq!(
            plan.events(),
            vec![EventKind::Created, EventKind::Routed, EventKind::Assigned]
        );
        let notification = plan.effects.iter().find_map(|e| match e {
            Effect::Queue(m) if m.template == Template::AgentNotification => Some(m),
            _ => None,
        });
        assert!(notification.unwrap().include_thread);
    }

    #[test]
    fn a_security_mail_goes_to_l2_as_urgent() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail(
            "marie@example.fr",
            "Phishing",
            "J'ai cliqué sur un lien de hameçonnage",
        );
        let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
        let PlanTicket::New(new) = &plan.ticket else {
            panic!()
        };
        assert_eq!(
            (new.routing.tier, new.routing.priority),
            (Tier::L2Advanced, Priority::Urgent)
        );
        assert!(
            plan.effects
                .contains(&Effect::Assign(Some(addr("bob@example.com"))))
        );
    }

    #[test]
    fn with_nobody_fitting_the_tier_address_is_told_and_the_ticket_stays_unassigned() {
        let (g, loads) = (gateway(), HashMap::new());
        let mut d = desk();
        d.rules = Rules::new(
            vec![
                crate::routing::Rule::new(crate::routing::RuleSpec {
                    name: "experts".into(),
                    keywords: vec!["sap".into()],
                    category: "software".parse().unwrap(),
                    tier: Some(Tier::L3Expert),
                    ..Default::default()
                })
                .unwrap(),
            ],
            true,
        );
        let m = mail("marie@example.fr", "SAP", "Le module SAP refuse ma saisie");
        let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
        assert!(
            !plan.effects.iter().any(|e| matches!(e, Effect::Assign(_))),
            "a new ticket is unassigned already"
        );
        assert!(plan.events().contains(&EventKind::Unassigned));
        assert!(
            plan.queued()
                .contains(&(Template::AgentNotification, &addr("n3@example.com")))
        );
    }

    #[test]
    fn a_desk_without_a_roster_files_and_acknowledges_only() {
        let (g, loads) = (gateway(), HashMap::new());
        let d = DeskSettings {
            rules: Rules::new(Vec::new(), true),
            ..DeskSettings::default()
        };
        let m = mail("marie@example.fr", "VPN", "Le VPN coupe.");
        let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
        assert_eq!(
            plan.queued(),
            vec![(Template::Acknowledgement, &addr("marie@example.fr"))]
        );
        assert_eq!(plan.events(), vec![EventKind::Created, EventKind::Routed]);
    }

    #[test]
    fn a_customer_follow_up_tells_the_assignee_the_new_text_only() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = customer_reply(&t, "Toujours en panne.");
        assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: false });
        assert_eq!(
            plan.queued(),
            vec![(Template::AgentFollowUp, &addr("alice@example.com"))]
        );
        let Some(Effect::Queue(out)) = plan.effects.iter().find(|e| matches!(e, Effect::Queue(_)))
        else {
            panic!()
        };
        assert!(!out.include_thread);
        assert_eq!(
            out.new_text.as_ref().unwrap().text.trim(),
            "Toujours en panne."
        );
    }

    #[test]
    fn machines_and_agents_notes_do_not_move_the_ticket() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let t = ticket(
            TicketStatus::Resolved,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let auto = mail("marie@example.fr", "Re: [HD-7K3M9QXA] Imprimante", "Absent");
        let mut s = situation(&auto, Some((&t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
        s.machine = Some(MachineKind::AutoReply);
        let plan = decide_mail(&s);
        assert!(plan.queued().is_empty());
        assert!(
            !plan
                .effects
                .iter()
                .any(|e| matches!(e, Effect::SetStatus { .. }))
        );

        // An agent's mail is filed as theirs, not as a stranger's.
        let agent = mail(
            "alice@example.com",
            "Re: [HD-7K3M9QXA] Imprimante",
            "#note\nvu",
        );
        let mut s = situation(
            &agent,
            Some((&t, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        );
        s.sender_is_participant = false;
        let plan = decide_mail(&s);
        assert!(matches!(&plan.effects[0], Effect::FileMail(f) if !f.from_non_participant));
        let Effect::Record(r) = &plan.effects[1] else {
            panic!()
        };
        assert_eq!(r.actor, Actor::Agent(addr("alice@example.com")));
    }

    /// Marie's reply on ticket `t`, decided on the default desk.
    fn customer_reply(t: &TicketRef, body: &str) -> Plan {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail("marie@example.fr", "Re: [HD-7K3M9QXA] Imprimante", body);
        decide_mail(&situation(
            &m,
            Some((t, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        ))
    }

    fn agent_plan(t: &TicketRef, body: &str) -> Plan {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail("alice@example.com", "Re: [HD-7K3M9QXA] Imprimante", body);
        let mut s = situation(&m, Some((t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
        s.sender_is_participant = false;
        s.participants = vec![addr("marie@example.fr"), addr("paul@example.fr")];
        decide_mail(&s)
    }

    fn receipt(plan: &Plan) -> Vec<(String, bool)> {
        plan.effects
            .iter()
            .find_map(|e| match e {
                Effect::Queue(m) if m.template == Template::AgentReceipt => Some(
                    m.receipt
                        .iter()
                        .map(|l| (l.command.clone(), l.applied))
                        .collect(),
                ),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// Whatever commands come with an answer, each person receives the answer before any
    /// status mail those commands queue for them.
    #[test]
    fn an_answer_goes_out_before_the_status_mails_its_commands_queue() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        for commands in [
            "#resolve",
            "#close",
            "#wait 2d",
            "#escalate L2 needs a DBA",
            "#take\n#resolve",
            "#priority urgent\n#resolve",
            "#assign bob@example.com",
        ] {
            let plan = agent_plan(&t, &format!("{commands}\n\nVoici la réponse."));
            for to in [addr("marie@example.fr"), addr("paul@example.fr")] {
                let kinds: Vec<Template> = plan
                    .effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Queue(m) if m.to == to => Some(m.template),
                        _ => None,
                    })
                    .collect();
                assert_eq!(
                    kinds.first(),
                    Some(&Template::AgentReply),
                    "{commands}: {kinds:?}"
                );
            }
        }
    }

    #[test]
    fn an_agents_reply_goes_to_the_customer_and_participants_and_waits_for_them() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = agent_plan(&t, "Bonjour Marie,\nRedémarrez l'imprimante.\n-- \nAlice");
        assert_eq!(
            plan.queued(),
            vec![
                (Template::AgentReply, &addr("marie@example.fr")),
                (Template::AgentReply, &addr("paul@example.fr")),
            ]
        );
        let Some(Effect::Queue(reply)) =
            plan.effects.iter().find(|e| matches!(e, Effect::Queue(_)))
        else {
            panic!()
        };
        assert_eq!(
            reply.auto_submitted, None,
            "a person's words, not automatic mail"
        );
        assert_eq!(reply.from_name.as_deref(), Some("Alice (Support)"));
        assert!(reply.forward_attachments);
        assert!(reply.new_text.as_ref().unwrap().text.contains("Redémarrez"));
        assert!(plan.effects.contains(&Effect::FirstResponse));
        assert!(
            plan.effects
                .iter()
                .any(|e| e.status_to() == Some((TicketStatus::WaitingOnCustomer, false)))
        );
        assert!(receipt(&plan).is_empty(), "no commands, no receipt");
    }

    #[test]
    fn commands_apply_in_order_and_the_agent_gets_a_receipt() {
        let t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
        let plan = agent_plan(
            &t,
            "#priorité haute\n#take\n#escalate L9\n#frobnicate\n\nJe m'en occupe.",
        );
        assert!(plan.effects.contains(&Effect::SetPriority(Priority::High)));
        assert!(
            plan.effects
                .contains(&Effect::Assign(Some(addr("alice@example.com"))))
        );
        assert_eq!(
            receipt(&plan),
            vec![
                ("#priorité haute".to_string(), true),
                ("#take".to_string(), true),
                ("#escalate L9".to_string(), false),
                ("#frobnicate".to_string(), false),
            ]
        );
        let reply = plan.effects.iter().find_map(|e| match e {
            Effect::Queue(m) if m.template == Template::AgentReply => m.new_text.clone(),
            _ => None,
        });
        assert_eq!(
            reply.unwrap().text,
            "Je m'en occupe.",
            "the commands are not sent on"
        );
    }

    #[test]
    fn a_mail_of_commands_only_sends_nothing_to_the_customer_but_the_status_mail() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = agent_plan(&t, "#resolve");
        assert!(
            !plan
                .queued()
                .iter()
                .any(|(t, _)| *t == Template::AgentReply)
        );
        assert!(
            plan.queued()
                .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
        );
        assert_eq!(receipt(&plan), vec![("#resolve".to_string(), true)]);
        let top = ticket(
            TicketStatus::Open,
            Tier::L4Vendor,
            Some("alice@example.com"),
            0,
        );
        assert_eq!(
            receipt(&agent_plan(&top, "#escalate")),
            vec![("#escalate".to_string(), false)]
        );
    }

    #[test]
    fn a_note_never_reaches_the_customer() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("bob@example.com"),
            0,
        );
        let plan = agent_plan(&t, "#note\nLe client a déjà eu ce souci en mars.");
        assert!(
            !plan
                .queued()
                .iter()
                .any(|(_, to)| **to == addr("marie@example.fr"))
        );
        assert!(
            plan.queued()
                .contains(&(Template::AgentNote, &addr("bob@example.com")))
        );
        assert!(plan.events().contains(&EventKind::NoteAdded));
        assert!(!plan.effects.contains(&Effect::FirstResponse));
    }

    #[test]
    fn a_stranger_gets_a_ticket_of_their_own_or_waits_and_the_assignee_is_told() {
        let (g, loads) = (gateway(), HashMap::new());
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let m = mail(
            "eve@evil.example",
            "Re: [HD-7K3M9QXA] Imprimante",
            "Moi aussi !",
        );
        // The last: a stranger whose address the outbox cannot use (the attack run's
        // crash: the plan sent mail with no ticket named).
        for (policy, deliverable, outcome_is_new) in [
            (crate::config::StrangerPolicy::NewTicket, true, true),
            (crate::config::StrangerPolicy::Hold, true, false),
            (crate::config::StrangerPolicy::NewTicket, false, false),
        ] {
            let mut d = desk();
            d.strangers = policy;
            let mut s = situation(&m, Some((&t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
            s.sender_is_participant = false;
            if !deliverable {
                s.deliverable = Err("address x@-evil.example: invalid domain".into());
            }
            let plan = decide_mail(&s);
            assert_eq!(
                plan.outcome == PlannedOutcome::NewTicket,
                outcome_is_new,
                "{policy:?}"
            );
            if !outcome_is_new {
                assert_eq!(plan.ticket, PlanTicket::Existing(t.clone()), "{policy:?}");
            }
            assert!(
                !plan
                    .queued()
                    .iter()
                    .any(|(_, to)| **to == addr("marie@example.fr"))
            );
            let told = plan.effects.iter().find_map(|e| match e {
                Effect::Queue(m) if m.to == addr("alice@example.com") => m.reason.clone(),
                _ => None,
            });
            assert!(
                told.unwrap()
                    .to_string()
                    .contains("is not on ticket HD-7K3M9QXA"),
                "{policy:?}"
            );
        }
    }

    #[test]
    fn customers_close_by_a_word_on_the_first_line_and_rate_with_a_digit() {
        for yes in [
            "RÉSOLU",
            "resolu",
            "Solved!",
            "  RESOLVED\nthanks",
            "Fermer",
            "close",
        ] {
            assert!(says_solved(yes), "{yes:?}");
        }
        for no in [
            "Pas résolu",
            "It is not solved",
            "résolu ?",
            "Merci\nRÉSOLU",
        ] {
            assert!(!says_solved(no), "{no:?}");
        }
        assert_eq!(rating("5"), Some((5, None)));
        assert_eq!(
            rating("4 - rapide, merci"),
            Some((4, Some("rapide, merci".into())))
        );
        assert_eq!(
            rating("3/5\nUn peu long."),
            Some((3, Some("Un peu long.".into())))
        );
        for no in [
            "0",
            "6",
            "42",
            "4h plus tard ça remarche plus",
            "Toujours en panne",
        ] {
            assert_eq!(rating(no), None, "{no:?}");
        }
        let open = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = customer_reply(&open, "RÉSOLU\nMerci !");
        assert!(
            plan.effects
                .iter()
                .any(|e| e.status_to() == Some((TicketStatus::Resolved, false)))
        );
        assert!(
            plan.queued()
                .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
        );
        let resolved = ticket(
            TicketStatus::Resolved,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = customer_reply(&resolved, "5 parfait");
        assert!(plan.effects.contains(&Effect::Rate {
            score: 5,
            comment: Some("parfait".into())
        }));
        assert_eq!(
            plan.outcome,
            PlannedOutcome::Appended { reopened: false },
            "a rating does not reopen"
        );
        let plan = customer_reply(&resolved, "Ça ne marche toujours pas");
        assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: true });
    }

    #[test]
    fn with_authentication_required_a_forged_agent_mail_is_a_strangers_and_the_agent_is_told() {
        let (g, loads) = (gateway(), HashMap::new());
        let mut d = desk();
        d.require_agent_auth = true;
        d.agent_authserv_id = Some("mx.example.com".into());
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("bob@example.com"),
            0,
        );
        let forged = mail(
            "alice@example.com",
            "Re: [HD-7K3M9QXA] Imprimante",
            "#close\nFermé.",
        );
        let mut s = situation(
            &forged,
            Some((&t, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        );
        s.sender_is_participant = false;
        let plan = decide_mail(&s);
        assert_eq!(
            plan.outcome,
            PlannedOutcome::NewTicket,
            "handled as a stranger's mail"
        );
        assert!(!plan.effects.iter().any(|e| {
            e.status_to()
                .is_some_and(|(to, _)| to == TicketStatus::Closed)
        }));
        let refusal = plan.effects.iter().find_map(|e| match e {
            Effect::Queue(m)
                if m.template == Template::AgentReceipt && m.to == addr("alice@example.com") =>
            {
                Some(m.receipt[0].result.clone())
            }
            _ => None,
        });
        assert_eq!(refusal, Some(Notice::NotTakenAsYours));
        // Why, for the operator: in the log of the quoted ticket.
        let why = plan.effects.iter().find_map(|e| match e {
            Effect::Record(r) if r.kind == EventKind::CommandsRefused => {
                Some(r.detail["reason"].to_string())
            }
            _ => None,
        });
        assert!(
            why.unwrap()
                .contains("no Authentication-Results from mx.example.com")
        );

        let signed = {
            // The server's result is on top; the same header among the sender's own is not read.
            let raw = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n\
                       From: alice@example.com\r\nTo: support@example.com\r\nSubject: Re: [HD-7K3M9QXA] Imprimante\r\n\
                       Message-ID: <s1@example.com>\r\n\r\n#close\r\n";
            crate::inbound::parse(raw.as_bytes()).unwrap()
        };
        let mut s = situation(
            &signed,
            Some((&t, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        );
        s.sender_is_participant = false;
        let plan = decide_mail(&s);
        assert!(plan.effects.iter().any(|e| {
            e.status_to()
                .is_some_and(|(to, _)| to == TicketStatus::Closed)
        }));
    }

    #[test]
    fn participants_receive_status_mail_unless_the_desk_says_not() {
        let (g, loads) = (gateway(), HashMap::new());
        let mut t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
        t.participants = vec![
            addr("marie@example.fr"),
            addr("paul@example.fr"),
            addr("bob@example.com"),
        ];
        for (notify, expected) in [(true, 2), (false, 1)] {
            let mut d = desk();
            d.notify_participants = notify;
            let plan = decide_command(&CommandSituation {
                ticket: &t,
                command: &Command::Resolve,
                actor: Actor::Cli("cli".into()),
                gateway: &g,
                desk: &d,
                loads: &loads,
                now: 0,
            })
            .unwrap();
            let to: Vec<_> = plan
                .queued()
                .into_iter()
                .map(|(_, to)| to.to_string())
                .collect();
            assert_eq!(
                to.len(),
                expected,
                "{to:?}: the agent in Cc (bob) is never among them"
            );
            assert_eq!(to[0], "marie@example.fr");
        }
    }

    #[test]
    fn a_customers_commands_are_not_applied_and_the_assignee_is_told() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = customer_reply(&t, "#resolve\n#priority urgent\nMerci");
        assert!(plan.events().contains(&EventKind::CommandsRefused));
        assert!(
            !plan
                .effects
                .iter()
                .any(|e| matches!(e, Effect::SetPriority(_) | Effect::SetStatus { .. }))
        );
        let told = plan.effects.iter().find_map(|e| match e {
            Effect::Queue(m) if m.template == Template::AgentFollowUp => m.reason.clone(),
            _ => None,
        });
        assert!(told.unwrap().to_string().contains("not on the roster"));
    }
    #[test]
    fn the_second_reopening_escalates_by_itself() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail(
            "marie@example.fr",
            "Re: [HD-7K3M9QXA] Imprimante",
            "Encore en panne !",
        );
        let once = ticket(
            TicketStatus::Resolved,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = decide_mail(&situation(
            &m,
            Some((&once, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        ));
        assert!(!plan.events().contains(&EventKind::Escalated));
        assert!(
            plan.queued()
                .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
        );

        let twice = ticket(
            TicketStatus::Resolved,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            1,
        );
        let plan = decide_mail(&situation(
            &m,
            Some((&twice, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        ));
        assert!(
            plan.effects
                .iter()
                .any(|e| e.tier_to() == Some(Tier::L2Advanced))
        );
        assert!(
            plan.effects
                .contains(&Effect::Assign(Some(addr("bob@example.com"))))
        );
        let queued = plan.queued();
        assert!(queued.contains(&(Template::AgentNotification, &addr("bob@example.com"))));
        assert!(queued.contains(&(Template::AgentReassigned, &addr("alice@example.com"))));
        let changes: Vec<_> = plan
            .effects
            .iter()
            .filter_map(|e| match e {
                Effect::Queue(m) if m.template == Template::StatusUpdate => m.change,
                _ => None,
            })
            .collect();
        assert_eq!(changes, vec![Change::Escalated], "one status mail, not two");
    }

    #[test]
    fn a_duplicate_or_an_unanswerable_sender_opens_nothing() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let m = mail("marie@example.fr", "Imprimante", "Bourrage");
        let mut s = situation(&m, None, &g, &d, &loads);
        s.earlier = Some(EarlierMail {
            row: 3,
            ticket: Some(1),
            outcome: StoredOutcome::NewTicket,
        });
        let plan = decide_mail(&s);
        assert_eq!(
            plan.outcome,
            PlannedOutcome::Duplicate(StoredOutcome::NewTicket)
        );
        assert_eq!(plan.ticket, PlanTicket::None);
        let mut s = situation(&m, None, &g, &d, &loads);
        s.deliverable = Err("bad".into());
        let plan = decide_mail(&s);
        assert!(matches!(
            plan.outcome,
            PlannedOutcome::Quarantined(QuarantineReason::Unanswerable(_))
        ));
        assert!(plan.queued().is_empty());
    }

    fn command(t: &TicketRef, c: Command) -> Result<Plan, Refusal> {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        decide_command(&CommandSituation {
            ticket: t,
            command: &c,
            actor: Actor::Cli("cli".into()),
            gateway: &g,
            desk: &d,
            loads: &loads,
            now: 1_000,
        })
    }

    #[test]
    fn a_category_the_desk_does_not_know_is_refused_with_the_list() {
        let t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
        let typo: Category = "imprimnate".parse().unwrap();
        let Err(Refusal::NoSuchCategory { name, known }) =
            command(&t, Command::SetCategory(typo.clone()))
        else {
            panic!("a typo must be refused")
        };
        assert_eq!(name, typo);
        let known: Vec<&str> = known.iter().map(|c| c.as_str()).collect();
        for id in ["printer", "account", "security", "general"] {
            assert!(known.contains(&id), "{known:?}");
        }
        let plan = command(&t, Command::SetCategory("network".parse().unwrap())).unwrap();
        assert!(
            plan.effects
                .contains(&Effect::SetCategory("network".parse().unwrap()))
        );

        // A category of the desk's own rules or labels is known too.
        let mut d = desk();
        d.roster = d.roster.with_category_labels(
            [("badges".parse().unwrap(), Default::default())]
                .into_iter()
                .collect(),
        );
        assert!(d.known_categories().contains(&"badges".parse().unwrap()));
    }

    #[test]
    fn escalation_moves_up_reassigns_and_tells_everyone() {
        let t = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = command(
            &t,
            Command::Escalate {
                to: None,
                reason: Some("needs admin rights".into()),
                vendor: None,
            },
        )
        .unwrap();
        assert_eq!(plan.effects[0].tier_to(), Some(Tier::L2Advanced));
        assert_eq!(
            plan.queued(),
            vec![
                (Template::AgentNotification, &addr("bob@example.com")),
                (Template::AgentReassigned, &addr("alice@example.com")),
                (Template::StatusUpdate, &addr("marie@example.fr")),
            ]
        );
        // To L3, where only the shared address is: unassigned, the address is told.
        let plan = command(
            &t,
            Command::Escalate {
                to: Some(Tier::L3Expert),
                reason: None,
                vendor: None,
            },
        )
        .unwrap();
        assert!(plan.effects.contains(&Effect::Assign(None)));
        assert!(
            plan.queued()
                .contains(&(Template::AgentNotification, &addr("n3@example.com")))
        );
    }

    #[test]
    fn commands_the_ticket_does_not_allow_are_refused() {
        let top = ticket(TicketStatus::Open, Tier::L4Vendor, None, 0);
        assert_eq!(
            command(
                &top,
                Command::Escalate {
                    to: None,
                    reason: None,
                    vendor: None,
                }
            )
            .unwrap_err(),
            Refusal::TopTier(Tier::L4Vendor)
        );
        let l2 = ticket(TicketStatus::Open, Tier::L2Advanced, None, 0);
        assert!(
            command(
                &l2,
                Command::Escalate {
                    to: Some(Tier::L1FrontLine),
                    reason: None,
                    vendor: None,
                }
            )
            .is_err()
        );
        let closed = ticket(TicketStatus::Closed, Tier::L1FrontLine, None, 0);
        assert_eq!(
            command(&closed, Command::Resolve).unwrap_err(),
            Refusal::Closed
        );
        let open = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
        assert!(command(&open, Command::Reopen).is_err());
        assert!(command(&open, Command::Assign(addr("nobody@example.com"))).is_err());
    }

    #[test]
    fn resolving_and_reopening_tell_the_customer() {
        let open = ticket(
            TicketStatus::Open,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = command(&open, Command::Resolve).unwrap();
        assert_eq!(
            plan.effects[0].status_to(),
            Some((TicketStatus::Resolved, false))
        );
        assert_eq!(
            plan.queued(),
            vec![(Template::StatusUpdate, &addr("marie@example.fr"))]
        );
        let resolved = ticket(
            TicketStatus::Resolved,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let plan = command(&resolved, Command::Reopen).unwrap();
        assert_eq!(
            plan.effects[0].status_to(),
            Some((TicketStatus::Open, true))
        );
        assert_eq!(plan.events(), vec![EventKind::Reopened]);
        let plan = command(&open, Command::Assign(addr("bob@example.com"))).unwrap();
        assert_eq!(
            plan.queued(),
            vec![
                (Template::AgentNotification, &addr("bob@example.com")),
                (Template::AgentReassigned, &addr("alice@example.com")),
            ]
        );
    }

    #[test]
    fn news_on_a_closed_ticket_opens_one_that_follows_it_but_thanks_do_not() {
        let (g, d, loads) = (gateway(), desk(), HashMap::new());
        let closed = ticket(
            TicketStatus::Closed,
            Tier::L1FrontLine,
            Some("alice@example.com"),
            0,
        );
        let news = mail(
            "Marie <marie@example.fr>",
            "Re: [HD-7K3M9QXA] Imprimante",
            "Elle bourre de nouveau.",
        );
        let plan = decide_mail(&situation(
            &news,
            Some((&closed, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        ));
        assert_eq!(plan.outcome, PlannedOutcome::NewTicket);
        let PlanTicket::New(new) = &plan.ticket else {
            panic!("{:?}", plan.ticket)
        };
        assert_eq!(new.follows.as_ref().map(|t| t.id), Some(closed.id));
        assert_eq!(new.subject, "Imprimante");
        assert!(plan.events().contains(&EventKind::Follows));
        assert!(matches!(plan.effects.last(), Some(Effect::Timing(_))));

        let thanks = mail(
            "Marie <marie@example.fr>",
            "Re: [HD-7K3M9QXA] Imprimante",
            "Merci beaucoup, ça marche ! Bonne journée",
        );
        let plan = decide_mail(&situation(
            &thanks,
            Some((&closed, ThreadedBy::ReferenceCode)),
            &g,
            &d,
            &loads,
        ));
        assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: false });
        assert!(plan.queued().is_empty());
        assert!(
            !plan
                .effects
                .iter()
                .any(|e| matches!(e, Effect::SetStatus { .. }))
        );
        assert!(!says_thanks("Merci, mais l'imprimante bourre encore."));
        assert!(says_thanks("Thanks a lot, it works now!"));
        assert!(!says_thanks("Bonne journée"), "no thanks in it");
    }

    #[test]
    fn a_vendor_is_named_at_the_start_of_an_l4_escalation_reason() {
        let mut d = desk();
        for name in ["Ricoh France", "Ricoh", "Société Générale"] {
            d.time.vendors.push(crate::timing::Vendor {
                name: name.into(),
                address: addr("v@example.com"),
                ticket_pattern: None,
                answer_within: chrono::Duration::hours(16),
            });
        }
        let l4 = Some(Tier::L4Vendor);
        assert_eq!(
            vendor_named(&d, l4, Some("ricoh france: fuser error")),
            (Some("Ricoh France".into()), Some("fuser error".into()))
        );
        assert_eq!(
            vendor_named(&d, l4, Some("Ricoh")),
            (Some("Ricoh".into()), None)
        );
        assert_eq!(
            vendor_named(&d, l4, Some("SOCIÉTÉ GÉNÉRALE carte bloquée")),
            (
                Some("Société Générale".into()),
                Some("carte bloquée".into())
            )
        );
        // Case mappings that change a character's length in bytes do not panic.
        assert_eq!(
            vendor_named(&d, l4, Some("İİİİİİİİİİİİ ẞ")),
            (None, Some("İİİİİİİİİİİİ ẞ".into()))
        );
        assert_eq!(
            vendor_named(&d, l4, Some("Ricohx printer")),
            (None, Some("Ricohx printer".into()))
        );
        assert_eq!(
            vendor_named(&d, Some(Tier::L3Expert), Some("Ricoh France")),
            (None, Some("Ricoh France".into()))
        );
    }
}
