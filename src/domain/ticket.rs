//! Ticket status, support tier, priority and category, and the only ways a status or a
//! tier may change: [`TicketStatus::transition`] and [`Tier::escalate`]. Everything that
//! moves a ticket (mail, the command line, agents' commands, timers) goes through them, so
//! a closed ticket cannot be "resolved" again by a script and a ticket never escalates down.

use std::fmt;
use std::str::FromStr;

/// Where a ticket is in its life. Stored as TEXT with a CHECK constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Open,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

/// The support level that owns a ticket. `Ord` is the escalation order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Tier {
    #[serde(rename = "L0")]
    L0SelfService,
    #[serde(rename = "L1")]
    L1FrontLine,
    #[serde(rename = "L2")]
    L2Advanced,
    #[serde(rename = "L3")]
    L3Expert,
    #[serde(rename = "L4")]
    L4Vendor,
}

/// How soon a ticket needs attention. `Ord` is urgency.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Self::Low, Self::Normal, Self::High, Self::Urgent];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }
}

impl FromStr for Priority {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "priority",
                value: s.into(),
            })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a ticket is about (`printer`, `account`…): a short lower-case id, so that rules,
/// agents' skills and statistics all name categories the same way.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct Category(String);

impl From<Category> for String {
    fn from(c: Category) -> String {
        c.0
    }
}

impl TryFrom<String> for Category {
    type Error = UnknownValue;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl Category {
    /// The category of a ticket no rule recognised.
    pub fn general() -> Self {
        Category("general".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Category {
    type Err = UnknownValue;
    /// 1 to 40 of `a-z`, `0-9`, `_`, `-`, starting with a letter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(Category(s.to_string()))
        } else {
            Err(UnknownValue {
                kind: "category",
                value: s.into(),
            })
        }
    }
}

impl Default for Category {
    fn default() -> Self {
        Category::general()
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A change a ticket's state does not allow, said in words an operator understands.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("the ticket is already {0}")]
    AlreadyThere(TicketStatus),
    #[error("a {from} ticket cannot become {to}")]
    Status {
        from: TicketStatus,
        to: TicketStatus,
    },
    #[error("a ticket at {from} cannot move to {to}: escalation only goes up")]
    NotUp { from: Tier, to: Tier },
    #[error("the ticket is at {0}, the highest tier")]
    TopTier(Tier),
    #[error("the ticket is closed; reopen it first")]
    Closed,
    #[error("{0} is not on the roster; add an [[agents]] entry to helpdesk.toml first")]
    NotOnRoster(crate::domain::EmailAddress),
    #[error("the ticket is already assigned to {0}")]
    AlreadyAssigned(crate::domain::EmailAddress),
    #[error("{}", no_such_vendor(name, known))]
    NoSuchVendor { name: String, known: Vec<String> },
    #[error("the ticket is already with {0} and waits for their answer")]
    AlreadyWithVendor(String),
    #[error("{}", vendor_needed(known))]
    VendorNeeded { known: Vec<String> },
    #[error("a wait of {} is not between a minute and a year", humantime::format_duration(*.0))]
    WaitOutOfRange(std::time::Duration),
    #[error("the priority is already {0}")]
    SamePriority(Priority),
    #[error("the category is already {0}")]
    SameCategory(Category),
    #[error("{}", no_such_category(name, known))]
    NoSuchCategory {
        name: Category,
        known: Vec<Category>,
    },
    #[error("that is the support address")]
    SupportAddress,
    #[error("the ticket is {0}, not resolved or closed")]
    NotReopenable(TicketStatus),
}

fn no_such_category(name: &Category, known: &[Category]) -> String {
    let known: Vec<&str> = known.iter().map(|c| c.as_str()).collect();
    format!(
        "no category named {:?} (known: {}; more come from [[routing.rules]] in helpdesk.toml)",
        name.as_str(),
        known.join(", ")
    )
}

fn no_such_vendor(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("no vendor named {name:?}: add a [[vendors]] entry to helpdesk.toml")
    } else {
        format!(
            "no vendor named {name:?} (the desk knows {})",
            known.join(", ")
        )
    }
}

fn vendor_needed(known: &[String]) -> String {
    match known.first() {
        None => "L4 is for external vendors, and none is configured ([[vendors]] in helpdesk.toml)"
            .into(),
        Some(first) => format!(
            "L4 goes to a vendor: name one at the start of the reason (#escalate L4 {first} …); vendors: {}",
            known.join(", ")
        ),
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 5] = [
        Self::New,
        Self::Open,
        Self::WaitingOnCustomer,
        Self::Resolved,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Open => "open",
            Self::WaitingOnCustomer => "waiting_on_customer",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
        }
    }

    /// The status after the customer writes again. A resolved or closed ticket reopens:
    /// a customer answering "it is broken again" must reach a person, not a closed file.
    pub fn on_customer_reply(self) -> TicketStatus {
        match self {
            Self::New => Self::New,
            Self::Open | Self::WaitingOnCustomer | Self::Resolved | Self::Closed => Self::Open,
        }
    }

    /// True when a customer reply in this status counts as a reopening.
    pub fn reopens_on_reply(self) -> bool {
        matches!(self, Self::Resolved | Self::Closed)
    }

    /// Whether the ticket still needs work (counts in an agent's load).
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }

    /// The statuses that still need work: what "open" selects in a query.
    pub fn open() -> impl Iterator<Item = TicketStatus> {
        Self::ALL.into_iter().filter(|s| s.is_open())
    }

    /// When a ticket moved to this status at `at` was resolved: `at` once it no longer
    /// needs work, none while it does.
    pub fn resolved_at(self, at: crate::clock::Millis) -> Option<crate::clock::Millis> {
        (!self.is_open()).then_some(at)
    }

    /// Whether a reply found by its subject alone may still join a ticket in this status.
    /// A closed ticket's news opens a new ticket that follows it.
    pub fn joins_by_subject(self) -> bool {
        self != Self::Closed
    }

    /// The only way a ticket's status changes by someone's decision. `reopen` is how a
    /// resolved or closed ticket comes back; anything else to a status it is already in,
    /// or out of `closed` but by reopening, is refused.
    pub fn transition(self, to: TicketStatus) -> Result<StatusMove, Refusal> {
        self.allows(to).map(|to| StatusMove { from: self, to })
    }

    fn allows(self, to: TicketStatus) -> Result<TicketStatus, Refusal> {
        use TicketStatus::*;
        if self == to {
            return Err(Refusal::AlreadyThere(self));
        }
        match (self, to) {
            (_, New) => Err(Refusal::Status { from: self, to }),
            (Closed, Open) | (Resolved, Open) => Ok(to),
            (Closed, _) => Err(Refusal::Closed),
            (New | Open | WaitingOnCustomer, Open | WaitingOnCustomer | Resolved | Closed) => {
                Ok(to)
            }
            (Resolved, Closed) => Ok(to),
            (Resolved, WaitingOnCustomer) => Err(Refusal::Status { from: self, to }),
            _ => Err(Refusal::Status { from: self, to }),
        }
    }
}

/// A status change the rules allow. Only [`TicketStatus::transition`] makes one, so a plan
/// cannot carry a move the rules forbid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusMove {
    from: TicketStatus,
    to: TicketStatus,
}

impl StatusMove {
    pub fn from(self) -> TicketStatus {
        self.from
    }

    pub fn to(self) -> TicketStatus {
        self.to
    }
}

/// An escalation the rules allow (always upwards). Only [`Tier::escalate`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TierMove {
    from: Tier,
    to: Tier,
}

impl TierMove {
    pub fn from(self) -> Tier {
        self.from
    }

    pub fn to(self) -> Tier {
        self.to
    }
}

impl FromStr for TicketStatus {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownValue {
                kind: "ticket status",
                value: s.into(),
            })
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Self::L0SelfService,
        Self::L1FrontLine,
        Self::L2Advanced,
        Self::L3Expert,
        Self::L4Vendor,
    ];

    /// Where a ticket at `self` goes when escalated: `to`, or the next tier up. Refused
    /// when `to` is not above `self` or there is nothing above.
    pub fn escalate(self, to: Option<Tier>) -> Result<TierMove, Refusal> {
        self.above(to).map(|to| TierMove { from: self, to })
    }

    fn above(self, to: Option<Tier>) -> Result<Tier, Refusal> {
        match to {
            Some(to) if to > self => Ok(to),
            Some(to) => Err(Refusal::NotUp { from: self, to }),
            None => Self::ALL
                .into_iter()
                .find(|t| *t > self)
                .ok_or(Refusal::TopTier(self)),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::L0SelfService => "L0",
            Self::L1FrontLine => "L1",
            Self::L2Advanced => "L2",
            Self::L3Expert => "L3",
            Self::L4Vendor => "L4",
        }
    }
}

impl FromStr for Tier {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownValue {
                kind: "tier",
                value: s.into(),
            })
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_open_means_is_said_once() {
        use TicketStatus::*;
        let open: Vec<TicketStatus> = TicketStatus::open().collect();
        assert_eq!(open, [New, Open, WaitingOnCustomer]);
        assert_eq!(Open.resolved_at(5), None);
        assert_eq!(WaitingOnCustomer.resolved_at(5), None);
        assert_eq!(Resolved.resolved_at(5), Some(5));
        assert_eq!(Closed.resolved_at(5), Some(5));
        assert!(Resolved.joins_by_subject());
        assert!(!Closed.joins_by_subject());
    }

    #[test]
    fn statuses_and_tiers_round_trip_through_text() {
        for st in TicketStatus::ALL {
            assert_eq!(st.as_str().parse::<TicketStatus>().unwrap(), st);
        }
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>().unwrap(), t);
        }
        assert!("pending".parse::<TicketStatus>().is_err());
    }

    #[test]
    fn customer_reply_reopens_a_resolved_ticket() {
        assert_eq!(
            TicketStatus::Resolved.on_customer_reply(),
            TicketStatus::Open
        );
        assert!(TicketStatus::Resolved.reopens_on_reply());
        assert_eq!(TicketStatus::New.on_customer_reply(), TicketStatus::New);
        assert!(!TicketStatus::WaitingOnCustomer.reopens_on_reply());
    }

    #[test]
    fn tiers_escalate_in_order() {
        assert!(Tier::L1FrontLine < Tier::L2Advanced && Tier::L3Expert < Tier::L4Vendor);
        assert_eq!(Tier::L1FrontLine.above(None), Ok(Tier::L2Advanced));
        assert_eq!(
            Tier::L1FrontLine.above(Some(Tier::L3Expert)),
            Ok(Tier::L3Expert)
        );
        assert_eq!(Tier::L3Expert.above(None), Ok(Tier::L4Vendor));
    }

    #[test]
    fn escalation_never_goes_down_or_past_the_top() {
        assert!(matches!(
            Tier::L2Advanced.above(Some(Tier::L1FrontLine)),
            Err(Refusal::NotUp { .. })
        ));
        assert!(Tier::L2Advanced.above(Some(Tier::L2Advanced)).is_err());
        assert_eq!(
            Tier::L4Vendor.above(None),
            Err(Refusal::TopTier(Tier::L4Vendor))
        );
    }

    #[test]
    fn transitions_refuse_what_a_ticket_cannot_do() {
        use TicketStatus::*;
        assert_eq!(Open.allows(Resolved), Ok(Resolved));
        assert_eq!(New.allows(Resolved), Ok(Resolved));
        assert_eq!(Resolved.allows(Closed), Ok(Closed));
        assert_eq!(Resolved.allows(Open), Ok(Open));
        assert_eq!(Closed.allows(Open), Ok(Open));
        assert_eq!(Closed.allows(Resolved), Err(Refusal::Closed));
        assert_eq!(
            Resolved.allows(Resolved),
            Err(Refusal::AlreadyThere(Resolved))
        );
        assert!(Open.allows(New).is_err());
        assert!(Resolved.allows(WaitingOnCustomer).is_err());
    }

    #[test]
    fn priorities_and_categories_parse_and_refuse_nonsense() {
        for p in Priority::ALL {
            assert_eq!(p.as_str().parse::<Priority>().unwrap(), p);
        }
        assert!(Priority::Urgent > Priority::High);
        assert!("asap".parse::<Priority>().is_err());
        assert_eq!("printer".parse::<Category>().unwrap().as_str(), "printer");
        for bad in ["", "Printer", "1abc", "a b", &"x".repeat(41)] {
            assert!(bad.parse::<Category>().is_err(), "{bad:?}");
        }
    }
}
