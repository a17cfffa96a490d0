//! Which stored messages make up a ticket's thread, the one people read in notifications
//! and forwards: what the customer's side wrote and what the desk answered publicly. The
//! store keeps every message; this rule, not SQL, chooses among them.

use crate::domain::EmailAddress;
use crate::store::{Direction, Exchanged, StoredOutcome, ThreadEntry};

/// What an inbound message's stored detail says of who wrote it on the ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// An agent's mail (its public part is in the thread as the reply that went out).
    AgentMail,
    /// An agent's internal note: kept from customers and vendors.
    InternalNote,
    /// The external vendor's mail.
    Vendor,
}

impl Writer {
    pub fn as_str(self) -> &'static str {
        match self {
            Writer::AgentMail => "agent_mail",
            Writer::InternalNote => "internal_note",
            Writer::Vendor => "vendor",
        }
    }

    pub fn of(entry: &ThreadEntry) -> Option<Writer> {
        let detail = entry.detail.as_deref()?;
        [Writer::AgentMail, Writer::InternalNote, Writer::Vendor]
            .into_iter()
            .find(|w| w.as_str() == detail && entry.direction == Direction::Inbound)
    }
}

/// The outbound detail of an agent's reply as sent to the customer (its template's name).
pub const AGENT_REPLY: &str = "agent_reply";

/// A message belongs to the thread when a person on the customer's side wrote it (filed
/// as a new ticket or appended; a machine's mail never), or when it is an agent's reply
/// as it went out (the agent's own mail, with its commands, stays out).
pub fn in_thread(e: &ThreadEntry) -> bool {
    if e.machine {
        return false;
    }
    match e.direction {
        Direction::Inbound => {
            matches!(
                e.outcome,
                StoredOutcome::NewTicket | StoredOutcome::Appended
            ) && Writer::of(e) != Some(Writer::AgentMail)
        }
        Direction::Outbound => e.detail.as_deref() == Some(AGENT_REPLY),
    }
}

/// How many Message-IDs a new mail's `References` carries: the last ones exchanged with
/// its recipient on the ticket.
pub const THREADING_IDS: usize = 10;

/// Whether a message of the ticket was exchanged with `with` (from them, or sent to them),
/// so that a new mail to them names it in `References`. A second delivery never counts.
pub fn exchanged_with(e: &Exchanged, with: &EmailAddress) -> bool {
    match e.direction {
        Direction::Inbound => {
            e.outcome != StoredOutcome::Duplicate && e.from.as_deref() == Some(with.as_str())
        }
        Direction::Outbound => e.to.iter().any(|to| to == with.as_str()),
    }
}

/// The Message-IDs a new mail to `with` names in `References`: the last ones exchanged with
/// them, oldest first.
pub fn references_for<'a>(
    messages: impl Iterator<Item = &'a Exchanged>,
    with: &EmailAddress,
) -> Vec<String> {
    let mut ids: Vec<String> = messages
        .filter(|e| exchanged_with(e, with))
        .map(|e| e.message_id.clone())
        .collect();
    let skip = ids.len().saturating_sub(THREADING_IDS);
    ids.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(direction: Direction, outcome: StoredOutcome, detail: Option<&str>) -> ThreadEntry {
        ThreadEntry {
            from: None,
            from_name: None,
            detail: detail.map(str::to_string),
            direction,
            outcome,
            machine: false,
            at: 0,
            text: String::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn the_thread_is_what_people_wrote_and_what_the_desk_answered() {
        use Direction::*;
        use StoredOutcome::*;
        let yes = [
            entry(Inbound, NewTicket, None),
            entry(Inbound, Appended, None),
            entry(Inbound, Appended, Some("internal_note")),
            entry(Inbound, Appended, Some("vendor")),
            entry(Outbound, Outgoing, Some("agent_reply")),
        ];
        let no = [
            entry(Inbound, Appended, Some("agent_mail")),
            entry(Inbound, Duplicate, None),
            entry(Inbound, Ignored, None),
            entry(Inbound, Quarantined, None),
            entry(Outbound, Outgoing, Some("acknowledgement")),
            entry(Outbound, Outgoing, Some("status_update")),
            ThreadEntry {
                machine: true,
                ..entry(Inbound, Appended, None)
            },
        ];
        for e in &yes {
            assert!(in_thread(e), "{e:?}");
        }
        for e in &no {
            assert!(!in_thread(e), "{e:?}");
        }
        assert_eq!(Writer::of(&yes[2]), Some(Writer::InternalNote));
        assert_eq!(
            Writer::of(&yes[4]),
            None,
            "outbound details are template names"
        );
    }

    #[test]
    fn references_name_the_last_mails_exchanged_with_the_recipient() {
        use crate::domain::EmailAddress;
        let marie = EmailAddress::parse("marie@example.fr").unwrap();
        let m = |id: usize, direction, outcome, from: &str, to: &str| Exchanged {
            message_id: format!("<{id}@x>"),
            direction,
            outcome,
            from: Some(from.into()),
            to: vec![to.into()],
        };
        use Direction::*;
        use StoredOutcome::*;
        let mut all = vec![
            m(1, Inbound, NewTicket, "marie@example.fr", "support@x"),
            m(2, Inbound, Duplicate, "marie@example.fr", "support@x"),
            m(3, Outbound, Outgoing, "support@x", "marie@example.fr"),
            m(4, Outbound, Outgoing, "support@x", "alice@example.test"),
            m(5, Inbound, Appended, "alice@example.test", "support@x"),
        ];
        assert_eq!(references_for(all.iter(), &marie), ["<1@x>", "<3@x>"]);
        for id in 10..30 {
            all.push(m(id, Inbound, Appended, "marie@example.fr", "support@x"));
        }
        let refs = references_for(all.iter(), &marie);
        assert_eq!(refs.len(), THREADING_IDS);
        assert_eq!(refs.first().map(String::as_str), Some("<20@x>"));
        assert_eq!(refs.last().map(String::as_str), Some("<29@x>"));
    }
}
