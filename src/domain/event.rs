//! What the event log records and who did it: closed sets, stored as TEXT with a CHECK,
//! so statistics never meet a kind nobody knows how to count.

use std::fmt;

use crate::domain::EmailAddress;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    Created,
    Routed,
    MessageReceived,
    StatusChanged,
    Reopened,
    Assigned,
    Unassigned,
    Escalated,
    MailQueued,
    /// An outgoing mail could not be rendered (a broken custom template): the ticket moved
    /// on, and this says who was not told.
    MailNotRendered,
    /// The outbox handed a mail to the server (written by the outbox, not by plans).
    MailSent,
    /// The outbox gave up on a mail.
    MailFailed,
    Quarantined,
    MessageIdCollision,
    PriorityChanged,
    CategoryChanged,
    ParticipantAdded,
    /// An agent's public reply went to the customer.
    AgentReplied,
    /// An internal note, never sent to the customer.
    NoteAdded,
    /// Someone not on the roster wrote commands; none was applied.
    CommandsRefused,
    /// The customer rated the resolution.
    Rated,
    /// An automatic mail was not sent: its recipient's budget was spent (a loop dying out).
    MailHeld,
    /// A service-level target is near (the assignee or the tier was warned).
    SlaWarned,
    /// A service-level target passed: counted for statistics, the ticket escalated.
    SlaBreached,
    /// The customer was reminded that the ticket waits on them.
    Reminded,
    /// This ticket follows a closed one its customer answered.
    Follows,
    /// The ticket went to an external vendor (L4).
    VendorForwarded,
    /// The vendor answered (kept from the customer until an agent relays it).
    VendorReplied,
    /// The vendor has not answered in the time the desk gives them.
    VendorSilent,
    /// A held mail went out once its recipient's budget allowed it.
    MailReleased,
    /// A held mail was not sent: its ticket moved on (or a digest replaced it).
    MailSuperseded,
    /// Mail held while one sender flooded the desk, summed up in one digest to an agent.
    MailDigested,
    /// A new ticket's acknowledgement carried knowledge-base articles.
    ArticlesSuggested,
    /// A ticket held at L0 for self-service went to its tier.
    SelfServiceEnded,
}

impl EventKind {
    pub const ALL: [EventKind; 34] = [
        Self::Created,
        Self::Routed,
        Self::MessageReceived,
        Self::StatusChanged,
        Self::Reopened,
        Self::Assigned,
        Self::Unassigned,
        Self::Escalated,
        Self::MailQueued,
        Self::MailNotRendered,
        Self::MailSent,
        Self::MailFailed,
        Self::Quarantined,
        Self::MessageIdCollision,
        Self::PriorityChanged,
        Self::CategoryChanged,
        Self::ParticipantAdded,
        Self::AgentReplied,
        Self::NoteAdded,
        Self::CommandsRefused,
        Self::Rated,
        Self::MailHeld,
        Self::SlaWarned,
        Self::SlaBreached,
        Self::Reminded,
        Self::Follows,
        Self::VendorForwarded,
        Self::VendorReplied,
        Self::VendorSilent,
        Self::MailReleased,
        Self::MailSuperseded,
        Self::MailDigested,
        Self::ArticlesSuggested,
        Self::SelfServiceEnded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Routed => "routed",
            Self::MessageReceived => "message_received",
            Self::StatusChanged => "status_changed",
            Self::Reopened => "reopened",
            Self::Assigned => "assigned",
            Self::Unassigned => "unassigned",
            Self::Escalated => "escalated",
            Self::MailQueued => "mail_queued",
            Self::MailNotRendered => "mail_not_rendered",
            Self::MailSent => "mail_sent",
            Self::MailFailed => "mail_failed",
            Self::Quarantined => "quarantined",
            Self::MessageIdCollision => "message_id_collision",
            Self::PriorityChanged => "priority_changed",
            Self::CategoryChanged => "category_changed",
            Self::ParticipantAdded => "participant_added",
            Self::AgentReplied => "agent_replied",
            Self::NoteAdded => "note_added",
            Self::CommandsRefused => "commands_refused",
            Self::Rated => "rated",
            Self::MailHeld => "mail_held",
            Self::SlaWarned => "sla_warned",
            Self::SlaBreached => "sla_breached",
            Self::Reminded => "reminded",
            Self::Follows => "follows",
            Self::VendorForwarded => "vendor_forwarded",
            Self::VendorReplied => "vendor_replied",
            Self::VendorSilent => "vendor_silent",
            Self::MailReleased => "mail_released",
            Self::MailSuperseded => "mail_superseded",
            Self::MailDigested => "mail_digested",
            Self::ArticlesSuggested => "articles_suggested",
            Self::SelfServiceEnded => "self_service_ended",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made something happen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    Customer(EmailAddress),
    /// Someone the customer had in Cc.
    Participant(EmailAddress),
    /// Someone quoting a ticket's code who takes no part in it.
    Stranger(EmailAddress),
    Agent(EmailAddress),
    /// Mail from a machine (auto-reply, bounce, list), or with no readable sender.
    Machine(Option<EmailAddress>),
    /// The gateway on its own account (routing, acknowledgements, automatic escalation).
    Gateway,
    /// The command line, with the name given by `--as` (default `cli`).
    Cli(String),
    /// An external vendor (L4), by the name the desk gives it.
    Vendor(String),
    /// The scheduler: a service level, a reminder or a closing that fell due.
    Timer,
}

impl Actor {
    /// Every actor kind, as the event log stores it.
    pub const KINDS: [&'static str; 9] = [
        "customer",
        "participant",
        "stranger",
        "agent",
        "machine",
        "gateway",
        "cli",
        "vendor",
        "timer",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Customer(_) => "customer",
            Actor::Participant(_) => "participant",
            Actor::Stranger(_) => "stranger",
            Actor::Agent(_) => "agent",
            Actor::Machine(_) => "machine",
            Actor::Gateway => "gateway",
            Actor::Cli(_) => "cli",
            Actor::Vendor(_) => "vendor",
            Actor::Timer => "timer",
        }
    }

    /// The address or name recorded beside the kind.
    pub fn name(&self) -> String {
        match self {
            Actor::Customer(a) | Actor::Participant(a) | Actor::Stranger(a) | Actor::Agent(a) => {
                a.to_string()
            }
            Actor::Machine(a) => a
                .as_ref()
                .map(|a| a.to_string())
                .unwrap_or_else(|| "unknown".into()),
            Actor::Gateway => "gateway".into(),
            Actor::Cli(name) | Actor::Vendor(name) => name.clone(),
            Actor::Timer => "timer".into(),
        }
    }
}
