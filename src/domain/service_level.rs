//! A ticket's service-level state as the store keeps it. The rules that move it live in
//! `timing`; the types live here so the store can hold them without depending on the rules.

use crate::clock::Millis;
use crate::domain::Tier;

/// A ticket that got knowledge-base articles waits at L0, with no agent, until `until`
/// (business time, `[knowledge_base] hold`); then, or at the customer's first reply that
/// does not say it is solved, it goes to `then`, routed and assigned as usual.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SelfServiceHold {
    pub until: Millis,
    pub then: Tier,
}

/// Which warnings and breaches were already acted on, so a recomputed schedule never fires
/// one twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fired(pub u8);

impl Fired {
    pub const FIRST_RESPONSE_WARNING: u8 = 1;
    pub const FIRST_RESPONSE_BREACH: u8 = 2;
    pub const RESOLUTION_WARNING: u8 = 4;
    pub const RESOLUTION_BREACH: u8 = 8;
    pub const VENDOR_SILENCE: u8 = 16;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// A ticket's time, as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketClock {
    pub created_at: Millis,
    /// When the status last changed.
    pub status_since: Millis,
    pub first_response_at: Option<Millis>,
    /// Business time the service-level clock ran before `sla_since`.
    pub sla_used_ms: i64,
    /// When the clock last started; `None` while it stands.
    pub sla_since: Option<Millis>,
    pub fired: Fired,
    /// How long this wait lasts (`#wait 3d`); `None`: the desk's default.
    pub wait_ms: Option<i64>,
    pub reminded_at: Option<Millis>,
    /// When the vendor was last asked and has not answered since.
    pub vendor_asked_at: Option<Millis>,
    /// While the ticket is held at L0 for self-service.
    pub self_service: Option<SelfServiceHold>,
}

impl TicketClock {
    /// A ticket filed at `now`: its clock runs.
    pub fn started(now: Millis) -> TicketClock {
        TicketClock {
            created_at: now,
            status_since: now,
            sla_since: Some(now),
            ..TicketClock::default()
        }
    }
}

/// When the targets fall due while the clock runs (`None` while it stands or once met).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dues {
    pub first_response: Option<Millis>,
    pub resolution: Option<Millis>,
}
