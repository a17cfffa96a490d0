//! Time in plans: every plan on a ticket closes with the ticket's timing (its service-level
//! clock and the next moment the scheduler must look at it), and [`decide_timers`] turns
//! whatever fell due (warnings, breaches, reminders, closing, a vendor's silence) into a
//! plan like any other. Pure.

use std::collections::{BTreeSet, HashMap};

use super::effects::{
    Escalation, agent_mail, customer_status, escalation, record, status_change, status_event,
    ticket_watcher,
};
use super::events::{self as ev, EscalationCause, Event};
use super::*;
use crate::clock::{Millis, format_millis};
use crate::config::{DeskSettings, GatewaySettings};
use crate::desk::wording::{Notice, Target};
use crate::roster::Load;
use crate::store::Timing;
use crate::timing::{self, Fired, NoAnswer, TimedTicket, TimerKind};

/// Appends the ticket's timing as the plan leaves it (nothing for a plan without a
/// ticket). The clock stops or starts with the status, a first response ends the first
/// target, and the next due time is recomputed from scratch, so it can never drift from
/// the ticket's state.
pub fn with_timing(mut plan: Plan, desk: &DeskSettings, now: Millis) -> Plan {
    let Some(state) = TicketState::before(&plan, now) else {
        return plan;
    };
    let mut state = state.fold(&plan.effects, now, &desk.time.calendar);
    // A held ticket that someone took, moved or closed is no longer waiting at L0.
    if state.clock.self_service.is_some()
        && (state.assignee.is_some()
            || state.tier != Tier::L0SelfService
            || !state.status.is_open())
    {
        state.clock.self_service = None;
    }
    let timed = TimedTicket {
        status: state.status,
        tier: state.tier,
        category: &state.category,
        priority: state.priority,
        clock: &state.clock,
        vendor: state.vendor.as_deref(),
    };
    let dues = timing::dues(&timed, &desk.time);
    let due_at = timing::next_due(&timed, &desk.time);
    plan.effects.push(Effect::Timing(Timing {
        clock: state.clock.clone(),
        dues,
        due_at,
    }));
    plan
}

/// Everything [`decide_timers`] may look at.
pub struct TimerSituation<'a> {
    pub ticket: &'a TicketRef,
    pub gateway: &'a GatewaySettings,
    pub desk: &'a DeskSettings,
    pub loads: &'a HashMap<EmailAddress, Load>,
    pub now: Millis,
}

/// What the work that fell due on one ticket does, all at once: after a long stop a
/// ticket gets one plan (a breach supersedes the warning it was due to follow), not a
/// burst of stale mail.
pub fn decide_timers(s: &TimerSituation<'_>) -> Plan {
    let t = s.ticket;
    let settings = &s.desk.time;
    let timed = TimedTicket {
        status: t.status,
        tier: t.tier,
        category: &t.category,
        priority: t.priority,
        clock: &t.clock,
        vendor: t.vendor.as_deref(),
    };
    let due: BTreeSet<TimerKind> = timing::pending(&timed, settings)
        .into_iter()
        .filter(|(_, at)| *at <= s.now)
        .map(|(k, _)| k)
        .collect();
    let mut effects = service_levels(s, &timed, &due);
    effects.extend(waiting_and_vendor(s, &due));
    if due.contains(&TimerKind::SelfServiceOver) {
        effects.extend(super::decide::end_hold(
            s.desk,
            s.gateway,
            t,
            s.loads,
            &Actor::Timer,
            ev::HoldEnd::TimeUp,
        ));
    }
    with_timing(
        Plan {
            ticket: PlanTicket::Existing(t.clone()),
            effects,
            outcome: PlannedOutcome::Changed,
        },
        s.desk,
        s.now,
    )
}

/// Warnings and breaches of the service-level targets that fell due: one event each, then
/// an escalation (a breach) or a warning mail to the agents; never a word to the customer.
fn service_levels(
    s: &TimerSituation<'_>,
    timed: &TimedTicket<'_>,
    due: &BTreeSet<TimerKind>,
) -> Vec<Effect> {
    let t = s.ticket;
    let settings = &s.desk.time;
    let dues = timing::dues(timed, settings);
    let actor = Actor::Timer;
    let mut effects = Vec::new();
    let mut fired = 0u8;
    let mut breached = Vec::new();
    let mut warned = Vec::new();
    let target_due = |kind: TimerKind| match kind {
        TimerKind::FirstResponseWarning | TimerKind::FirstResponseBreach => dues.first_response,
        _ => dues.resolution,
    };
    for kind in due {
        let (target, warn_bit, breach_bit, breach) = match kind {
            TimerKind::FirstResponseWarning => (
                Target::FirstResponse,
                Fired::FIRST_RESPONSE_WARNING,
                Fired::FIRST_RESPONSE_BREACH,
                TimerKind::FirstResponseBreach,
            ),
            TimerKind::FirstResponseBreach => (
                Target::FirstResponse,
                Fired::FIRST_RESPONSE_WARNING,
                Fired::FIRST_RESPONSE_BREACH,
                *kind,
            ),
            TimerKind::ResolutionWarning => (
                Target::Resolution,
                Fired::RESOLUTION_WARNING,
                Fired::RESOLUTION_BREACH,
                TimerKind::ResolutionBreach,
            ),
            TimerKind::ResolutionBreach => (
                Target::Resolution,
                Fired::RESOLUTION_WARNING,
                Fired::RESOLUTION_BREACH,
                *kind,
            ),
            _ => continue,
        };
        let is_breach = breach == *kind;
        if is_breach {
            fired |= warn_bit | breach_bit;
            breached.push((target, target_due(*kind)));
        } else if !due.contains(&breach) {
            // A warning whose breach is also due was overtaken by it: only the breach speaks.
            fired |= warn_bit;
            warned.push((target, target_due(*kind)));
        }
    }
    if fired != 0 {
        effects.push(Effect::Clock(ClockChange::Fired(fired)));
    }
    for (target, at) in &warned {
        effects.push(record(
            &actor,
            Event::SlaWarned(ev::SlaWarned {
                target: *target,
                due: at.map(format_millis),
            }),
        ));
    }
    for (target, at) in &breached {
        effects.push(record(
            &actor,
            Event::SlaBreached(ev::SlaBreached {
                target: *target,
                due: at.map(format_millis),
                tier: t.tier,
                priority: t.priority,
                assignee: t.assignee.clone(),
            }),
        ));
    }
    if !breached.is_empty() {
        let reason = Notice::TargetsMissed(breached.clone());
        let targets = settings.targets(t.tier, &t.category, t.priority);
        match t.tier.escalate(targets.escalate_to) {
            Ok(to) => {
                // The customer is not told of a missed target; the agents are.
                let escalated = escalation(
                    s.desk,
                    s.gateway,
                    t,
                    Escalation {
                        to,
                        cause: EscalationCause::Sla,
                        reason: Some(reason),
                    },
                    s.loads,
                    &actor,
                );
                effects.extend(escalated.into_iter().filter(
                    |e| !matches!(e, Effect::Queue(m) if m.template == Template::StatusUpdate),
                ));
            }
            Err(_) => effects.extend(warning(s, Change::Breach, reason, true)),
        }
    } else if !warned.is_empty() {
        let reason = Notice::TargetsNear(warned.clone());
        effects.extend(warning(s, Change::Warning, reason, true));
    }

    effects
}

/// The customer's wait (a reminder, then "no answer"), a resolved ticket's quiet time
/// (closing) and a vendor's silence.
fn waiting_and_vendor(s: &TimerSituation<'_>, due: &BTreeSet<TimerKind>) -> Vec<Effect> {
    let t = s.ticket;
    let settings = &s.desk.time;
    let actor = Actor::Timer;
    let mut effects = Vec::new();
    if due.contains(&TimerKind::WaitReminder) {
        let wait = t.clock.wait_ms.unwrap_or(settings.wait.num_milliseconds());
        effects.push(Effect::Clock(ClockChange::Reminded));
        effects.push(record(
            &actor,
            Event::Reminded(ev::Reminded {
                waiting_since: format_millis(t.clock.status_since),
            }),
        ));
        let then = (settings.no_answer == NoAnswer::Resolve)
            .then(|| Notice::On(settings.next_working(s.now.saturating_add(wait))));
        for e in customer_status(s.desk, t, Change::Reminder, then) {
            if let Effect::Queue(mut m) = e {
                m.template = Template::Reminder;
                effects.push(Effect::Queue(m));
            }
        }
    }
    if due.contains(&TimerKind::NoAnswer)
        && let Ok(mut resolved) = status_change(
            s.desk,
            t,
            TicketStatus::Resolved,
            &actor,
            Some(Change::NoAnswer),
        )
    {
        if let Some(moved) = status_event(&mut resolved) {
            moved.reason = Some(ev::StatusReason::NoAnswer);
        }
        effects.extend(resolved);
    }
    if due.contains(&TimerKind::AutoClose)
        && let Ok(mut closed) = status_change(
            s.desk,
            t,
            TicketStatus::Closed,
            &actor,
            Some(Change::Closed),
        )
    {
        if let Some(moved) = status_event(&mut closed) {
            moved.reason = Some(ev::StatusReason::QuietAfterResolution);
        }
        effects.extend(closed);
    }
    if due.contains(&TimerKind::VendorSilence) {
        let vendor = t.vendor.clone().unwrap_or_default();
        let since = t.clock.vendor_asked_at;
        effects.push(Effect::Clock(ClockChange::Fired(Fired::VENDOR_SILENCE)));
        effects.push(record(
            &actor,
            Event::VendorSilent(ev::VendorSilent {
                vendor: vendor.clone(),
                asked_at: t.clock.vendor_asked_at.map(format_millis),
            }),
        ));
        effects.extend(warning(
            s,
            Change::VendorSilence,
            Notice::VendorSilent { vendor, since },
            false,
        ));
    }
    effects
}

/// An `sla_warning` mail (`change`: warning, breach, vendor_silence) to the ticket's
/// assignee, or its tier's address; nothing when there is neither.
fn warning(
    s: &TimerSituation<'_>,
    change: Change,
    reason: Notice,
    include_thread: bool,
) -> Option<Effect> {
    let to = ticket_watcher(s.desk, s.ticket)?;
    let mut mail = agent_mail(
        s.desk,
        s.gateway,
        Template::SlaWarning,
        &to,
        Some(reason),
        include_thread,
        None,
    );
    mail.change = Some(change);
    Some(Effect::Queue(mail))
}
