//! What the event log says happened: one struct per kind, serialised with serde as the
//! event's `detail`. Plans, the pipeline and the outbox write these and nothing else, so
//! the statistics read back the same shapes they were written in (every event
//! round-trips: see the tests).

use serde::{Deserialize, Serialize};

use crate::domain::{Category, EmailAddress, EventKind, Language, Priority, TicketStatus, Tier};
use crate::inbound::MachineKind;
use crate::render::{Change, Template};
use crate::routing::CategoryScore;

use super::decide::ThreadedBy;
use super::wording::Target;

/// Declares [`Event`], one variant per kind with the struct its detail is, and
/// [`Event::kind`]. A kind that shares its detail's shape with another says so by naming
/// the same struct.
macro_rules! events {
    ($($(#[$doc:meta])* $variant:ident($detail:ty),)*) => {
        /// One entry of a ticket's log (or the desk's, for mail about no ticket).
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
        pub enum Event {
            $($(#[$doc])* $variant($detail),)*
        }

        impl Event {
            pub fn kind(&self) -> EventKind {
                match self {
                    $(Event::$variant(_) => EventKind::$variant,)*
                }
            }

            /// The detail as stored: the variant's struct as a JSON object.
            pub fn detail(&self) -> serde_json::Value {
                let value = match self {
                    $(Event::$variant(d) => serde_json::to_value(d),)*
                };
                // Plain structs of strings, numbers and options: serialising cannot fail.
                value.unwrap_or(serde_json::Value::Null)
            }

            /// An event read back from the log.
            pub fn read(kind: EventKind, detail: serde_json::Value) -> Result<Event, serde_json::Error> {
                serde_json::from_value(serde_json::json!({ "kind": kind.as_str(), "detail": detail }))
            }

            /// An event read back from the log's text, straight into its kind's struct
            /// (the statistics read hundreds of thousands: no JSON tree, no tag to look up).
            pub fn parse(kind: EventKind, detail: &str) -> Result<Event, serde_json::Error> {
                match kind {
                    $(EventKind::$variant => serde_json::from_str(detail).map(Event::$variant),)*
                }
            }
        }
    };
}

events! {
    Created(Created),
    Routed(Routed),
    MessageReceived(MessageReceived),
    StatusChanged(StatusChanged),
    /// A resolved or closed ticket is open again.
    Reopened(StatusChanged),
    Assigned(Assignment),
    Unassigned(Assignment),
    Escalated(Escalated),
    MailQueued(MailQueued),
    MailNotRendered(MailNotRendered),
    MailSent(MailSent),
    MailFailed(MailFailed),
    Quarantined(Quarantined),
    MessageIdCollision(MessageIdCollision),
    PriorityChanged(PriorityChanged),
    CategoryChanged(CategoryChanged),
    ParticipantAdded(ParticipantAdded),
    AgentReplied(AgentReplied),
    NoteAdded(NoteAdded),
    CommandsRefused(CommandsRefused),
    Rated(Rated),
    MailHeld(MailHeld),
    SlaWarned(SlaWarned),
    SlaBreached(SlaBreached),
    Reminded(Reminded),
    Follows(Follows),
    VendorForwarded(VendorForwarded),
    VendorReplied(VendorReplied),
    VendorSilent(VendorSilent),
    MailReleased(HeldMail),
    MailSuperseded(HeldMail),
    MailDigested(MailDigested),
    ArticlesSuggested(ArticlesSuggested),
    SelfServiceEnded(SelfServiceEnded),
}

/// One article and how well it matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleScore {
    pub id: String,
    pub score: f32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticlesSuggested {
    /// The language the articles are in.
    pub language: Language,
    pub articles: Vec<ArticleScore>,
    /// When the ticket waits at L0 for self-service: until when (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<Timestamp>,
}

/// Why a self-service hold ended before a resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldEnd {
    /// The customer wrote again without saying it was solved.
    Replied,
    /// The hold's time ran out.
    TimeUp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfServiceEnded {
    pub reason: HoldEnd,
    /// The tier the ticket went to.
    pub tier: Tier,
}

/// Times in details are RFC 3339 in UTC with milliseconds (`clock::format_millis`).
pub type Timestamp = String;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub tier: Tier,
    pub status: TicketStatus,
    pub language: Language,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Routed {
    pub category: Category,
    pub priority: Priority,
    pub tier: Tier,
    /// The rule that matched; `None` when the built-in scoring (or nothing) decided.
    pub rule: Option<String>,
    pub matched: Vec<String>,
    /// Each built-in category's score and the words behind it, best first.
    #[serde(default)]
    pub scores: Vec<CategoryScore>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageReceived {
    pub threaded_by: ThreadedBy,
    pub machine: Option<MachineKind>,
    pub from_non_participant: bool,
}

/// Why a status changed when the actor alone does not say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// The customer never answered the reminder.
    NoAnswer,
    /// A resolved ticket stayed quiet for the desk's closing time.
    QuietAfterResolution,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusChanged {
    pub from: TicketStatus,
    pub to: TicketStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// `#wait 3d`: how long the ticket waits on the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_seconds: Option<u64>,
    /// The customer closed the request by saying it is solved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub by_customer: bool,
    /// ... before any person answered, after the acknowledgement's articles: solved by
    /// self-service (the deflection the statistics count).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_service: bool,
}

impl StatusChanged {
    pub fn new(from: TicketStatus, to: TicketStatus) -> StatusChanged {
        StatusChanged {
            from,
            to,
            reason: None,
            wait_seconds: None,
            by_customer: false,
            self_service: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The new assignee; `None`: nobody on the roster fits.
    pub to: Option<EmailAddress>,
    pub from: Option<EmailAddress>,
    pub tier: Tier,
    /// Who was told: the assignee, else the tier's shared address.
    #[serde(default)]
    pub notified: Option<EmailAddress>,
    /// Why, in English (the log's language).
    pub reason: Option<String>,
}

/// What moved a ticket up a tier: the statistics count escalations by cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationCause {
    /// An agent's (or the command line's) `#escalate` or `#vendor`.
    Agent,
    /// A missed service-level target.
    Sla,
    /// The desk's reopen threshold.
    Reopens,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Escalated {
    pub from: Tier,
    pub to: Tier,
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// `None` only in events written before the cause was recorded: the statistics then
    /// read it from the actor's kind (the timer: a target; the gateway: reopenings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<EscalationCause>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailQueued {
    pub kind: Template,
    pub to: EmailAddress,
    pub change: Option<Change>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailNotRendered {
    pub kind: Template,
    pub to: EmailAddress,
    pub error: String,
}

/// Written by the store as the outbox marks a row sent; `kind` is the outbox row's (a
/// template's name).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailSent {
    pub outbox: i64,
    pub kind: String,
}

/// Written by the store as the outbox gives up on a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailFailed {
    pub outbox: i64,
    pub error: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quarantined {
    pub reason: String,
}

/// What the mail reusing an earlier Message-ID became.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollisionOutcome {
    NewTicket,
    Appended,
    Ignored,
    Quarantined,
    Other,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MessageIdCollision {
    pub message_id: String,
    pub earlier_message: i64,
    pub outcome: CollisionOutcome,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PriorityChanged {
    pub from: Priority,
    pub to: Priority,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoryChanged {
    pub from: Category,
    pub to: Category,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParticipantAdded {
    pub address: EmailAddress,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentReplied {
    pub chars: usize,
    pub attachments: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoteAdded {
    pub chars: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CommandsRefused {
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rated {
    pub score: u8,
    pub comment: Option<String>,
}

/// An automatic mail kept back: from a flood's sender, or over its recipient's budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailHeld {
    pub kind: Template,
    pub to: EmailAddress,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flood_from: Option<EmailAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hour: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_day: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaWarned {
    pub target: Target,
    pub due: Option<Timestamp>,
}

/// A missed target, with the ticket's state when it was missed (the statistics count
/// breaches per tier, priority and assignee).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaBreached {
    pub target: Target,
    pub due: Option<Timestamp>,
    pub tier: Tier,
    pub priority: Priority,
    pub assignee: Option<EmailAddress>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reminded {
    pub waiting_since: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Follows {
    /// The closed ticket's code.
    pub follows: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorForwarded {
    pub vendor: String,
    pub address: EmailAddress,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorReplied {
    pub vendor: String,
    pub machine: Option<MachineKind>,
    pub vendor_ticket: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorSilent {
    pub vendor: String,
    pub asked_at: Option<Timestamp>,
}

/// A held mail released or superseded: its kind (a template's name) and recipient as the
/// outbox row has them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeldMail {
    pub kind: String,
    pub to: String,
    /// Superseded because its recipient answers everything it receives.
    #[serde(default, rename = "loop", skip_serializing_if = "std::ops::Not::not")]
    pub looping: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MailDigested {
    pub to: EmailAddress,
    pub flood_from: String,
    pub held: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_of_each() -> Vec<Event> {
        let a: EmailAddress = "alice@example.com".parse().unwrap();
        let moved = StatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Resolved,
            reason: Some(StatusReason::NoAnswer),
            wait_seconds: Some(60),
            by_customer: true,
            self_service: true,
        };
        let assignment = Assignment {
            to: Some(a.clone()),
            from: None,
            tier: Tier::L2Advanced,
            notified: Some(a.clone()),
            reason: Some("first response target missed".into()),
        };
        let held = HeldMail {
            kind: "status_update".into(),
            to: "marie@example.fr".into(),
            looping: true,
        };
        vec![
            Event::Created(Created {
                tier: Tier::L1FrontLine,
                status: TicketStatus::New,
                language: Language::Fr,
            }),
            Event::Routed(Routed {
                category: "printer".parse().unwrap(),
                priority: Priority::Normal,
                tier: Tier::L1FrontLine,
                rule: None,
                matched: vec!["imprimante".into()],
                scores: vec![CategoryScore {
                    category: "printer".parse().unwrap(),
                    score: 6,
                    words: vec!["imprimante".into()],
                }],
            }),
            Event::MessageReceived(MessageReceived {
                threaded_by: ThreadedBy::ReferenceCode,
                machine: Some(MachineKind::AutoReply),
                from_non_participant: false,
            }),
            Event::StatusChanged(moved.clone()),
            Event::Reopened(moved),
            Event::Assigned(assignment.clone()),
            Event::Unassigned(assignment),
            Event::Escalated(Escalated {
                from: Tier::L1FrontLine,
                to: Tier::L4Vendor,
                reason: None,
                vendor: Some("Ricoh".into()),
                cause: Some(EscalationCause::Agent),
            }),
            Event::MailQueued(MailQueued {
                kind: Template::StatusUpdate,
                to: a.clone(),
                change: Some(Change::NoAnswer),
            }),
            Event::MailNotRendered(MailNotRendered {
                kind: Template::Acknowledgement,
                to: a.clone(),
                error: "template".into(),
            }),
            Event::MailSent(MailSent {
                outbox: 3,
                kind: "agent_reply".into(),
            }),
            Event::MailFailed(MailFailed {
                outbox: 3,
                error: "550".into(),
            }),
            Event::Quarantined(Quarantined {
                reason: "no sender".into(),
            }),
            Event::MessageIdCollision(MessageIdCollision {
                message_id: "<a@b>".into(),
                earlier_message: 4,
                outcome: CollisionOutcome::NewTicket,
            }),
            Event::PriorityChanged(PriorityChanged {
                from: Priority::Normal,
                to: Priority::Urgent,
            }),
            Event::CategoryChanged(CategoryChanged {
                from: "printer".parse().unwrap(),
                to: "network".parse().unwrap(),
            }),
            Event::ParticipantAdded(ParticipantAdded { address: a.clone() }),
            Event::AgentReplied(AgentReplied {
                chars: 120,
                attachments: 1,
            }),
            Event::NoteAdded(NoteAdded { chars: 12 }),
            Event::CommandsRefused(CommandsRefused {
                reason: "the sender is not on the roster".into(),
            }),
            Event::Rated(Rated {
                score: 4,
                comment: Some("rapide".into()),
            }),
            Event::MailHeld(MailHeld {
                kind: Template::Acknowledgement,
                to: a.clone(),
                flood_from: None,
                last_hour: Some(10),
                last_day: Some(12),
            }),
            Event::SlaWarned(SlaWarned {
                target: Target::FirstResponse,
                due: Some("2026-12-01T09:00:00.000Z".into()),
            }),
            Event::SlaBreached(SlaBreached {
                target: Target::Resolution,
                due: None,
                tier: Tier::L2Advanced,
                priority: Priority::High,
                assignee: Some(a.clone()),
            }),
            Event::Reminded(Reminded {
                waiting_since: "2026-12-01T09:00:00.000Z".into(),
            }),
            Event::Follows(Follows {
                follows: "HD-7K3M9QXA".into(),
            }),
            Event::VendorForwarded(VendorForwarded {
                vendor: "Ricoh".into(),
                address: a.clone(),
                reason: None,
            }),
            Event::VendorReplied(VendorReplied {
                vendor: "Ricoh".into(),
                machine: None,
                vendor_ticket: Some("RC-1".into()),
            }),
            Event::VendorSilent(VendorSilent {
                vendor: "Ricoh".into(),
                asked_at: None,
            }),
            Event::MailReleased(HeldMail {
                looping: false,
                ..held.clone()
            }),
            Event::MailSuperseded(held),
            Event::MailDigested(MailDigested {
                to: a,
                flood_from: "flood@example.net".into(),
                held: 9,
            }),
            Event::ArticlesSuggested(ArticlesSuggested {
                language: Language::Fr,
                articles: vec![ArticleScore {
                    id: "vpn-erreurs".into(),
                    score: 41.5,
                }],
                held_until: Some("2026-12-02T10:00:00.000Z".into()),
            }),
            Event::SelfServiceEnded(SelfServiceEnded {
                reason: HoldEnd::TimeUp,
                tier: Tier::L1FrontLine,
            }),
        ]
    }

    /// Every kind the store accepts has a typed detail, and each detail reads back as the
    /// same event.
    #[test]
    fn every_kind_has_a_detail_that_reads_back() {
        let events = one_of_each();
        let kinds: Vec<EventKind> = events.iter().map(Event::kind).collect();
        for kind in EventKind::ALL {
            assert!(kinds.contains(&kind), "no typed event for {kind}");
        }
        for event in events {
            let detail = event.detail();
            assert!(detail.is_object(), "{detail}");
            assert_eq!(
                Event::parse(event.kind(), &detail.to_string()).unwrap(),
                event
            );
            assert_eq!(Event::read(event.kind(), detail).unwrap(), event);
        }
    }

    /// The shapes are the ones the log has always had: a desk upgraded keeps reading its
    /// old events.
    #[test]
    fn details_keep_the_stored_shapes() {
        let old = [
            (
                EventKind::StatusChanged,
                r#"{"from":"open","to":"waiting_on_customer"}"#,
            ),
            (
                EventKind::Assigned,
                r#"{"to":"a@x.fr","from":null,"tier":"L4","reason":"sent to a vendor"}"#,
            ),
            (
                EventKind::SlaBreached,
                r#"{"target":"first_response","due":null,"tier":"L1","priority":"normal","assignee":null}"#,
            ),
            (
                EventKind::Routed,
                r#"{"category":"general","priority":"normal","tier":"L1","rule":null,"matched":[]}"#,
            ),
            (
                EventKind::MailSuperseded,
                r#"{"kind":"status_update","to":"m@x.fr","loop":true}"#,
            ),
            (
                EventKind::MailSent,
                r#"{"outbox":7,"kind":"acknowledgement"}"#,
            ),
        ];
        for (kind, detail) in old {
            let value: serde_json::Value = serde_json::from_str(detail).unwrap();
            let event = Event::read(kind, value).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(event.kind(), kind);
        }
        let status = Event::StatusChanged(StatusChanged::new(
            TicketStatus::Open,
            TicketStatus::WaitingOnCustomer,
        ));
        assert_eq!(
            status.detail().to_string(),
            r#"{"from":"open","to":"waiting_on_customer"}"#
        );
    }
}
