//! Time on a ticket: its service-level clock (business time, standing while the ticket
//! waits on the customer), the targets it is held to, and the timed work it has pending
//! (warnings, breaches, reminders, closing, a vendor's silence). Pure: a ticket's state in,
//! instants out; the scheduler and `decide` do the rest.

/// The longest wait, reminder or target anyone may set: a year. Past it, a typo
/// (`#wait 999999999d`) would wrap the clock and close the ticket at once.
pub const LONGEST: std::time::Duration = std::time::Duration::from_secs(366 * 86_400);

use chrono::{DateTime, Duration, Utc};

use crate::calendar::Calendar;
use crate::clock::Millis;
use crate::domain::{Category, EmailAddress, Priority, TicketStatus, Tier};

/// A service level: how long the first response and the resolution may take, in business
/// time, and at which share of it the assignee is warned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Targets {
    pub first_response: Duration,
    pub resolution: Duration,
    /// 0.8: warn at 80% of a target; 1.0 or more: never warn.
    pub warn_at: f64,
    /// Where a breach sends the ticket; `None`: one tier up.
    pub escalate_to: Option<Tier>,
}

impl Targets {
    fn new(first_response: Duration, resolution: Duration) -> Targets {
        Targets {
            first_response,
            resolution,
            warn_at: 0.8,
            escalate_to: None,
        }
    }

    /// The defaults: urgent 1 h / 8 h, high 4 h / 2 days, normal 8 h / 5 days, low 2 days /
    /// 10 days, a day being the calendar's working day (8 hours for 08:30-12:30 and
    /// 13:30-17:30; 24 hours round the clock).
    pub fn default_for(priority: Priority, day: Duration) -> Targets {
        let h = Duration::hours;
        match priority {
            Priority::Urgent => Targets::new(h(1), h(8)),
            Priority::High => Targets::new(h(4), day * 2),
            Priority::Normal => Targets::new(h(8), day * 5),
            Priority::Low => Targets::new(day * 2, day * 10),
        }
    }
}

/// Targets for tickets of a tier, a category and/or a priority, ahead of the priority's.
#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub tier: Option<Tier>,
    pub category: Option<Category>,
    pub priority: Option<Priority>,
    pub targets: Targets,
}

/// What a ticket with no answer from its customer becomes when the reminder went unheard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoAnswer {
    Resolve,
    /// It keeps waiting (the agent decides).
    Keep,
}

/// An external vendor (L4).
#[derive(Clone, Debug)]
pub struct Vendor {
    pub name: String,
    pub address: EmailAddress,
    /// Their own ticket number, as it appears in their subjects.
    pub ticket_pattern: Option<regex::Regex>,
    /// Business time they have to answer before the assignee is warned.
    pub answer_within: Duration,
}

impl PartialEq for Vendor {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.address == other.address
            && self.ticket_pattern.as_ref().map(regex::Regex::as_str)
                == other.ticket_pattern.as_ref().map(regex::Regex::as_str)
            && self.answer_within == other.answer_within
    }
}

/// Everything the desk says about time.
#[derive(Clone, Debug)]
pub struct TimeSettings {
    pub calendar: Calendar,
    pub by_priority: [Targets; 4],
    /// First match wins.
    pub overrides: Vec<Override>,
    /// `#wait` without a duration.
    pub wait: Duration,
    pub no_answer: NoAnswer,
    /// A resolved ticket closes after this long without news; `None`: never.
    pub close_after: Option<Duration>,
    pub vendors: Vec<Vendor>,
}

impl Default for TimeSettings {
    fn default() -> Self {
        TimeSettings {
            calendar: Calendar::always(),
            by_priority: [
                Priority::Low,
                Priority::Normal,
                Priority::High,
                Priority::Urgent,
            ]
            .map(|p| Targets::default_for(p, Duration::hours(24))),
            overrides: Vec::new(),
            wait: Duration::days(3),
            no_answer: NoAnswer::Resolve,
            close_after: Some(Duration::days(7)),
            vendors: Vec::new(),
        }
    }
}

pub fn priority_index(p: Priority) -> usize {
    match p {
        Priority::Low => 0,
        Priority::Normal => 1,
        Priority::High => 2,
        Priority::Urgent => 3,
    }
}

impl TimeSettings {
    pub fn targets(&self, tier: Tier, category: &Category, priority: Priority) -> Targets {
        self.overrides
            .iter()
            .find(|o| {
                o.tier.is_none_or(|t| t == tier)
                    && o.category.as_ref().is_none_or(|c| c == category)
                    && o.priority.is_none_or(|p| p == priority)
            })
            .map(|o| o.targets)
            .unwrap_or(self.by_priority[priority_index(priority)])
    }

    pub fn vendor(&self, name: &str) -> Option<&Vendor> {
        let wanted = name.trim().to_lowercase();
        self.vendors
            .iter()
            .find(|v| v.name.to_lowercase() == wanted)
    }

    /// The vendors' names, for a refusal that lists them.
    /// The vendors' names, as a refusal lists them.
    pub fn vendor_names(&self) -> Vec<String> {
        self.vendors.iter().map(|v| v.name.clone()).collect()
    }

    pub fn vendor_by_address(&self, address: &EmailAddress) -> Option<&Vendor> {
        self.vendors.iter().find(|v| v.address == *address)
    }

    /// `at` as the desk reads it: "2026-11-24 10:30 Europe/Paris".
    pub fn local(&self, at: Millis) -> String {
        let tz = self.calendar.time_zone;
        instant(at)
            .with_timezone(&tz)
            .format(&format!("%Y-%m-%d %H:%M {tz}"))
            .to_string()
    }

    /// The first working moment at or after `at` (a reminder falls due at 3 a.m. on a
    /// Sunday: it goes on Monday morning).
    pub fn next_working(&self, at: Millis) -> Millis {
        self.calendar
            .add(instant(at), Duration::zero())
            .map(millis)
            .unwrap_or(at)
    }

    pub fn add_business(&self, from: Millis, business: Duration) -> Millis {
        self.calendar
            .add(instant(from), business.max(Duration::zero()))
            .map(millis)
            // A calendar that never works again within ten years: never due.
            .unwrap_or(Millis::MAX)
    }
}

pub use crate::clock::instant;
pub use crate::domain::service_level::{Dues, Fired, TicketClock};

fn millis(at: DateTime<Utc>) -> Millis {
    at.timestamp_millis()
}

/// Whether the service-level clock runs in a status: it stands while the ticket waits on
/// the customer, and stops once it is resolved.
pub fn clock_runs(status: TicketStatus) -> bool {
    matches!(status, TicketStatus::New | TicketStatus::Open)
}

/// Timed work a ticket can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    FirstResponseWarning,
    FirstResponseBreach,
    ResolutionWarning,
    ResolutionBreach,
    /// The customer has not answered in the waiting time: remind them.
    WaitReminder,
    /// Nor after the reminder: the ticket is resolved as "no answer".
    NoAnswer,
    /// A resolved ticket's quiet time is over: it closes.
    AutoClose,
    VendorSilence,
    /// A ticket held at L0 for self-service goes to its tier.
    SelfServiceOver,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::FirstResponseWarning => "first_response_warning",
            TimerKind::FirstResponseBreach => "first_response_breach",
            TimerKind::ResolutionWarning => "resolution_warning",
            TimerKind::ResolutionBreach => "resolution_breach",
            TimerKind::WaitReminder => "wait_reminder",
            TimerKind::NoAnswer => "no_answer",
            TimerKind::AutoClose => "auto_close",
            TimerKind::VendorSilence => "vendor_silence",
            TimerKind::SelfServiceOver => "self_service_over",
        }
    }
}

/// What the schedule looks at.
#[derive(Clone, Copy, Debug)]
pub struct TimedTicket<'a> {
    pub status: TicketStatus,
    pub tier: Tier,
    pub category: &'a Category,
    pub priority: Priority,
    pub clock: &'a TicketClock,
    /// The vendor the ticket went to, by name.
    pub vendor: Option<&'a str>,
}

pub fn dues(t: &TimedTicket<'_>, settings: &TimeSettings) -> Dues {
    let Some(since) = t.clock.sla_since.filter(|_| clock_runs(t.status)) else {
        return Dues::default();
    };
    let targets = settings.targets(t.tier, t.category, t.priority);
    let at = |target: Duration| {
        settings.add_business(since, target - Duration::milliseconds(t.clock.sla_used_ms))
    };
    Dues {
        first_response: t
            .clock
            .first_response_at
            .is_none()
            .then(|| at(targets.first_response)),
        resolution: Some(at(targets.resolution)),
    }
}

/// Every piece of timed work the ticket has pending, with when it falls due.
pub fn pending(t: &TimedTicket<'_>, settings: &TimeSettings) -> Vec<(TimerKind, Millis)> {
    let c = t.clock;
    let mut out = Vec::new();
    if let Some(since) = c.sla_since.filter(|_| clock_runs(t.status)) {
        let targets = settings.targets(t.tier, t.category, t.priority);
        let used = Duration::milliseconds(c.sla_used_ms);
        let warn = |target: Duration| -> Duration {
            Duration::milliseconds((target.num_milliseconds() as f64 * targets.warn_at) as i64)
        };
        let mut sla = |target: Duration, warn_bit: u8, breach_bit: u8, kinds: [TimerKind; 2]| {
            if c.fired.has(breach_bit) {
                return;
            }
            if targets.warn_at < 1.0 && !c.fired.has(warn_bit) {
                out.push((kinds[0], settings.add_business(since, warn(target) - used)));
            }
            out.push((kinds[1], settings.add_business(since, target - used)));
        };
        if c.first_response_at.is_none() {
            sla(
                targets.first_response,
                Fired::FIRST_RESPONSE_WARNING,
                Fired::FIRST_RESPONSE_BREACH,
                [
                    TimerKind::FirstResponseWarning,
                    TimerKind::FirstResponseBreach,
                ],
            );
        }
        sla(
            targets.resolution,
            Fired::RESOLUTION_WARNING,
            Fired::RESOLUTION_BREACH,
            [TimerKind::ResolutionWarning, TimerKind::ResolutionBreach],
        );
    }
    match t.status {
        TicketStatus::WaitingOnCustomer => {
            let wait = c
                .wait_ms
                .map(Duration::milliseconds)
                .unwrap_or(settings.wait)
                .num_milliseconds();
            match c.reminded_at {
                None => out.push((
                    TimerKind::WaitReminder,
                    settings.next_working(c.status_since.saturating_add(wait)),
                )),
                Some(reminded) if settings.no_answer == NoAnswer::Resolve => out.push((
                    TimerKind::NoAnswer,
                    settings.next_working(reminded.saturating_add(wait)),
                )),
                Some(_) => {}
            }
        }
        TicketStatus::Resolved => {
            if let Some(after) = settings.close_after {
                out.push((
                    TimerKind::AutoClose,
                    settings.next_working(c.status_since.saturating_add(after.num_milliseconds())),
                ));
            }
        }
        _ => {}
    }
    if let Some(hold) = c.self_service
        && t.status.is_open()
    {
        out.push((TimerKind::SelfServiceOver, hold.until));
    }
    if let Some(asked) = c.vendor_asked_at
        && t.status.is_open()
        && !c.fired.has(Fired::VENDOR_SILENCE)
        && let Some(vendor) = t.vendor.and_then(|v| settings.vendor(v))
    {
        out.push((
            TimerKind::VendorSilence,
            settings.add_business(asked, vendor.answer_within),
        ));
    }
    out
}

/// The next moment the scheduler must look at the ticket.
pub fn next_due(t: &TimedTicket<'_>, settings: &TimeSettings) -> Option<Millis> {
    pending(t, settings)
        .into_iter()
        .map(|(_, at)| at)
        .filter(|at| *at != Millis::MAX)
        .min()
}

/// The clock after a status change at `now`: it stops (banking the business time used)
/// when the ticket leaves a running status, and starts again when it comes back to one.
pub fn on_status(
    clock: &mut TicketClock,
    from: TicketStatus,
    to: TicketStatus,
    now: Millis,
    calendar: &Calendar,
) {
    if from == to {
        return;
    }
    clock.status_since = now;
    if from == TicketStatus::WaitingOnCustomer {
        clock.reminded_at = None;
        clock.wait_ms = None;
    }
    match (clock_runs(from), clock_runs(to), clock.sla_since) {
        (true, false, Some(since)) => {
            clock.sla_used_ms += calendar
                .between(instant(since), instant(now))
                .num_milliseconds();
            clock.sla_since = None;
        }
        (false, true, None) => clock.sla_since = Some(now),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Millis {
        DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis()
    }

    fn paris() -> TimeSettings {
        TimeSettings {
            calendar: Calendar::new(
                "Europe/Paris",
                &["mon", "tue", "wed", "thu", "fri"],
                &["08:30-12:30", "13:30-17:30"],
                &["2026-12-25"],
            )
            .unwrap(),
            ..TimeSettings::default()
        }
    }

    fn general() -> Category {
        "general".parse().unwrap()
    }

    #[test]
    fn the_targets_fall_due_in_business_time() {
        let s = paris();
        // Thursday 24 Dec 2026, 16:00 Paris (15:00 UTC): urgent, 1 h first response.
        let clock = TicketClock::started(utc("2026-12-24T15:00:00Z"));
        let cat = general();
        let t = TimedTicket {
            status: TicketStatus::New,
            tier: Tier::L1FrontLine,
            category: &cat,
            priority: Priority::Urgent,
            clock: &clock,
            vendor: None,
        };
        let d = dues(&t, &s);
        // 16:00 → 17:00 the same day; 48 min (80%) warning at 16:48.
        assert_eq!(d.first_response, Some(utc("2026-12-24T16:00:00Z")));
        let p = pending(&t, &s);
        assert!(p.contains(&(TimerKind::FirstResponseWarning, utc("2026-12-24T15:48:00Z"))));
        // 8 h resolution: 1.5 h on Thursday, Christmas Friday and the weekend skipped, the
        // remaining 6.5 h on Monday 28th: 08:30-12:30 (4 h) then 13:30 + 2.5 h = 16:00.
        assert_eq!(d.resolution, Some(utc("2026-12-28T15:00:00Z")));
        assert_eq!(next_due(&t, &s), Some(utc("2026-12-24T15:48:00Z")));
    }

    #[test]
    fn the_clock_stands_while_the_ticket_waits_on_the_customer() {
        let s = paris();
        let cat = general();
        // Monday 9:00 Paris, urgent; waits from 9:30 to Tuesday 9:00; resumes.
        let mut clock = TicketClock::started(utc("2026-11-30T08:00:00Z"));
        on_status(
            &mut clock,
            TicketStatus::New,
            TicketStatus::WaitingOnCustomer,
            utc("2026-11-30T08:30:00Z"),
            &s.calendar,
        );
        assert_eq!(clock.sla_used_ms, 30 * 60 * 1000);
        assert_eq!(clock.sla_since, None);
        let waiting = TimedTicket {
            status: TicketStatus::WaitingOnCustomer,
            tier: Tier::L1FrontLine,
            category: &cat,
            priority: Priority::Urgent,
            clock: &clock,
            vendor: None,
        };
        assert_eq!(dues(&waiting, &s), Dues::default());
        // Reminder after the default 3 days: Thursday 9:30 Paris, a working moment.
        assert_eq!(
            pending(&waiting, &s),
            vec![(TimerKind::WaitReminder, utc("2026-12-03T08:30:00Z"))]
        );
        on_status(
            &mut clock,
            TicketStatus::WaitingOnCustomer,
            TicketStatus::Open,
            utc("2026-12-01T08:00:00Z"),
            &s.calendar,
        );
        let open = TimedTicket {
            status: TicketStatus::Open,
            tier: Tier::L1FrontLine,
            category: &cat,
            priority: Priority::Urgent,
            clock: &clock,
            vendor: None,
        };
        // 30 minutes were left: Tuesday 9:30 Paris.
        assert_eq!(
            dues(&open, &s).first_response,
            Some(utc("2026-12-01T08:30:00Z"))
        );
    }

    #[test]
    fn fired_work_is_not_scheduled_again_and_a_reminder_waits_for_working_hours() {
        let s = paris();
        let cat = general();
        let mut clock = TicketClock::started(utc("2026-11-30T08:00:00Z"));
        clock.fired = Fired(Fired::FIRST_RESPONSE_WARNING | Fired::FIRST_RESPONSE_BREACH);
        let t = TimedTicket {
            status: TicketStatus::Open,
            tier: Tier::L1FrontLine,
            category: &cat,
            priority: Priority::Urgent,
            clock: &clock,
            vendor: None,
        };
        let kinds: Vec<_> = pending(&t, &s).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            kinds,
            vec![TimerKind::ResolutionWarning, TimerKind::ResolutionBreach]
        );
        // Waiting since Thursday 23:00 Paris for 2 days: Saturday 23:00 → Monday 8:30.
        let mut clock = TicketClock::started(utc("2026-11-26T22:00:00Z"));
        on_status(
            &mut clock,
            TicketStatus::New,
            TicketStatus::WaitingOnCustomer,
            utc("2026-11-26T22:00:00Z"),
            &s.calendar,
        );
        clock.wait_ms = Some(2 * 24 * 3_600_000);
        let t = TimedTicket {
            status: TicketStatus::WaitingOnCustomer,
            tier: Tier::L1FrontLine,
            category: &cat,
            priority: Priority::Urgent,
            clock: &clock,
            vendor: None,
        };
        assert_eq!(
            pending(&t, &s),
            vec![(TimerKind::WaitReminder, utc("2026-11-30T07:30:00Z"))]
        );
    }

    #[test]
    fn overrides_come_before_the_priority_targets() {
        let mut s = paris();
        s.overrides.push(Override {
            tier: Some(Tier::L3Expert),
            category: None,
            priority: None,
            targets: Targets::new(Duration::hours(16), Duration::hours(80)),
        });
        assert_eq!(
            s.targets(Tier::L3Expert, &general(), Priority::Urgent)
                .first_response,
            Duration::hours(16)
        );
        assert_eq!(
            s.targets(Tier::L1FrontLine, &general(), Priority::Urgent)
                .first_response,
            Duration::hours(1)
        );
    }
}
