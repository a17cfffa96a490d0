//! Ticket status and support tier, and the only ways a status may change.

use std::fmt;
use std::str::FromStr;

/// Where a ticket is in its life. Stored as TEXT with a CHECK constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    New,
    Open,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

/// The support level that owns a ticket. `Ord` is the escalation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
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
    }
}
