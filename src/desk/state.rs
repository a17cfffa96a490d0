//! The one fold of a plan over a ticket. `decide` reads it between the commands of one
//! mail (`#take` then `#resolve`), `timed` reads it to close a plan with the ticket's
//! timing, and `apply` reads it to render each mail with the ticket as it is at that point
//! of the plan: three readers, one [`TicketState::step`], so they cannot drift apart.

use super::*;
use crate::calendar::Calendar;
use crate::clock::Millis;
use crate::timing::{self, Fired, TicketClock};

/// What a plan can change on a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketState {
    pub status: TicketStatus,
    pub tier: Tier,
    pub category: Category,
    pub priority: Priority,
    pub assignee: Option<EmailAddress>,
    pub reopen_count: u32,
    pub participants: Vec<EmailAddress>,
    pub clock: TicketClock,
    pub vendor: Option<String>,
    pub vendor_ticket: Option<String>,
}

impl TicketState {
    /// A stored ticket as a plan finds it.
    pub fn of(t: &TicketRef) -> TicketState {
        TicketState {
            status: t.status,
            tier: t.tier,
            category: t.category.clone(),
            priority: t.priority,
            assignee: t.assignee.clone(),
            reopen_count: t.reopen_count,
            participants: t.participants.clone(),
            clock: t.clock.clone(),
            vendor: t.vendor.clone(),
            vendor_ticket: t.vendor_ticket.clone(),
        }
    }

    /// A ticket the plan opens at `now`: new, routed, its clock running, nobody's yet.
    pub fn opened(new: &NewTicketPlan, now: Millis) -> TicketState {
        TicketState {
            status: TicketStatus::New,
            tier: new.routing.tier,
            category: new.routing.category.clone(),
            priority: new.routing.priority,
            assignee: None,
            reopen_count: 0,
            participants: Vec::new(),
            clock: TicketClock::started(now),
            vendor: None,
            vendor_ticket: None,
        }
    }

    /// The plan's ticket before its first effect (`None` for a plan without a ticket).
    pub fn before(plan: &Plan, now: Millis) -> Option<TicketState> {
        match &plan.ticket {
            PlanTicket::None => None,
            PlanTicket::Existing(t) => Some(TicketState::of(t)),
            PlanTicket::New(n) => Some(TicketState::opened(n, now)),
        }
    }

    /// One effect, at `now`. The status moves the service-level clock with it (it stands
    /// while the ticket waits on the customer), in the desk's business time.
    pub fn step(&mut self, effect: &Effect, now: Millis, calendar: &Calendar) {
        match effect {
            Effect::SetStatus { to, reopened } => {
                timing::on_status(&mut self.clock, self.status, to.to(), now, calendar);
                self.status = to.to();
                if *reopened {
                    self.reopen_count += 1;
                }
            }
            Effect::ChangeTier(tier) => self.tier = tier.to(),
            Effect::Assign(a) => self.assignee = a.clone(),
            Effect::SetPriority(p) => self.priority = *p,
            Effect::SetCategory(c) => self.category = c.clone(),
            Effect::SetVendor(v) => self.vendor = Some(v.clone()),
            Effect::VendorTicket(n) => self.vendor_ticket = Some(n.clone()),
            Effect::AddParticipant(a, _) => {
                if !self.participants.contains(a) {
                    self.participants.push(a.clone());
                }
            }
            Effect::FirstResponse => {
                self.clock.first_response_at.get_or_insert(now);
            }
            Effect::Clock(change) => match change {
                ClockChange::WaitFor(ms) => self.clock.wait_ms = *ms,
                ClockChange::Reminded => self.clock.reminded_at = Some(now),
                ClockChange::Fired(bits) => self.clock.fired.0 |= bits,
                ClockChange::VendorAsked => {
                    self.clock.vendor_asked_at = Some(now);
                    self.clock.fired.0 &= !Fired::VENDOR_SILENCE;
                }
                ClockChange::VendorAnswered => self.clock.vendor_asked_at = None,
                ClockChange::SelfService(hold) => self.clock.self_service = *hold,
            },
            Effect::FileMail(_)
            | Effect::Rate { .. }
            | Effect::Touch
            | Effect::Record(_)
            | Effect::Timing(_)
            | Effect::Queue(_) => {}
        }
    }

    /// `effects`, one after the other.
    pub fn fold(mut self, effects: &[Effect], now: Millis, calendar: &Calendar) -> TicketState {
        for e in effects {
            self.step(e, now, calendar);
        }
        self
    }

    /// `ticket` with this state: what the next command of the same mail decides on.
    pub fn on(self, ticket: &TicketRef) -> TicketRef {
        TicketRef {
            status: self.status,
            tier: self.tier,
            category: self.category,
            priority: self.priority,
            assignee: self.assignee,
            reopen_count: self.reopen_count,
            participants: self.participants,
            clock: self.clock,
            vendor: self.vendor,
            vendor_ticket: self.vendor_ticket,
            ..ticket.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ParticipantRole;

    fn open_ticket() -> TicketRef {
        TicketRef {
            id: 7,
            code: ReferenceCode::from_stored("HD-7K3M9QXA".into()),
            status: TicketStatus::Open,
            tier: Tier::L1FrontLine,
            category: "printer".parse().unwrap(),
            priority: Priority::Normal,
            assignee: None,
            customer: "marie@example.fr".parse().unwrap(),
            customer_name: None,
            subject: "Imprimante".into(),
            language: Language::Fr,
            reopen_count: 0,
            participants: vec!["marie@example.fr".parse().unwrap()],
            clock: TicketClock::started(0),
            vendor: None,
            vendor_ticket: None,
            suggested_articles: Vec::new(),
        }
    }

    /// Every field a plan can move is moved by the one fold, the vendor and the
    /// participants included (the old fold of `decide` left them behind).
    #[test]
    fn the_fold_moves_everything_a_plan_changes() {
        let t = open_ticket();
        let paul: EmailAddress = "paul@example.fr".parse().unwrap();
        let resolve = t.status.transition(TicketStatus::Resolved).unwrap();
        let escalate = t.tier.escalate(None).unwrap();
        let effects = [
            Effect::ChangeTier(escalate),
            Effect::Assign(Some("bob@example.com".parse().unwrap())),
            Effect::SetPriority(Priority::High),
            Effect::SetCategory("network".parse().unwrap()),
            Effect::SetVendor("Ricoh".into()),
            Effect::VendorTicket("RC-1".into()),
            Effect::AddParticipant(paul.clone(), ParticipantRole::Cc),
            Effect::AddParticipant(paul.clone(), ParticipantRole::Cc),
            Effect::FirstResponse,
            Effect::Clock(ClockChange::VendorAsked),
            Effect::SetStatus {
                to: resolve,
                reopened: false,
            },
        ];
        let after = TicketState::of(&t)
            .fold(&effects, 60_000, &Calendar::always())
            .on(&t);
        assert_eq!(after.tier, Tier::L2Advanced);
        assert_eq!(
            after.assignee.as_ref().map(|a| a.as_str()),
            Some("bob@example.com")
        );
        assert_eq!(after.priority, Priority::High);
        assert_eq!(after.category.as_str(), "network");
        assert_eq!(after.vendor.as_deref(), Some("Ricoh"));
        assert_eq!(after.vendor_ticket.as_deref(), Some("RC-1"));
        assert_eq!(after.participants.len(), 2, "{:?}", after.participants);
        assert_eq!(after.status, TicketStatus::Resolved);
        assert_eq!(after.clock.first_response_at, Some(60_000));
        assert_eq!(after.clock.vendor_asked_at, Some(60_000));
        assert_eq!(after.clock.status_since, 60_000);
        assert_eq!(after.clock.sla_since, None, "the clock stops once resolved");
        assert_eq!(after.clock.sla_used_ms, 60_000);
        assert_eq!((after.id, after.subject.as_str()), (7, "Imprimante"));
    }
}
