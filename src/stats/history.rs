//! One ticket's log replayed: the state it was in at each moment, and the facts the
//! statistics count, each with the state it is attributed to.
//!
//! The rules (the README's "Statistics" section says them for users):
//! - a fact counts in the state the ticket had **once the moment it happened was over**
//!   (every event written at that instant applied: a new ticket's routing and first
//!   assignment, a resolution with the `#assign` beside it);
//! - except an escalation, which counts in the state it left (the tier it came from, the
//!   agent who had the ticket), and a missed target, which counts in the state its event
//!   recorded when it was missed;
//! - a first response and an agent's reply count for the agent who wrote it.

use crate::calendar::Calendar;
use crate::clock::{Millis, instant};
use crate::desk::events::{EscalationCause, Event};
use crate::desk::wording::Target;
use crate::domain::{Category, EmailAddress, EventKind, Priority, TicketStatus, Tier};
use crate::store::{LoggedEvent, TicketHistory};
use crate::timing::clock_runs;

/// Seven and thirty days: how soon a problem must come back to count as not solved.
pub const CAME_BACK_SOON: Millis = 7 * 24 * 3_600_000;
pub const CAME_BACK_LATER: Millis = 30 * 24 * 3_600_000;

/// The kinds whose events make a figure without changing a ticket's status (a ticket with
/// one in the period is read; one whose status changed in it, created included, is read
/// anyway).
pub const COUNTED: [EventKind; 4] = [
    EventKind::AgentReplied,
    EventKind::SlaBreached,
    EventKind::Escalated,
    EventKind::Rated,
];

/// The kinds replayed: the counted ones and those that move the state facts are counted in.
pub const REPLAYED: [EventKind; 13] = [
    EventKind::Created,
    EventKind::Routed,
    EventKind::StatusChanged,
    EventKind::Reopened,
    EventKind::Assigned,
    EventKind::Unassigned,
    EventKind::Escalated,
    EventKind::PriorityChanged,
    EventKind::CategoryChanged,
    EventKind::AgentReplied,
    EventKind::SlaBreached,
    EventKind::Rated,
    EventKind::SelfServiceEnded,
];

/// What a ticket was at a moment: the keys a figure is grouped by.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub status: TicketStatus,
    pub tier: Tier,
    pub category: Category,
    pub priority: Priority,
    pub assignee: Option<EmailAddress>,
}

/// Time the service-level clock ran: working time in the desk's calendar, and plain time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Elapsed {
    pub business_ms: i64,
    pub wall_ms: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fact {
    Created,
    /// The first public agent reply, `by` whom (an address, or the command line's name).
    FirstResponse {
        by: String,
        elapsed: Elapsed,
        /// No first-response target was missed before it.
        met: bool,
    },
    AgentReply {
        by: String,
    },
    Resolved {
        elapsed: Elapsed,
        met: bool,
        self_service: bool,
        /// Reopened, or followed by a linked new ticket, within 7 and within 30 days.
        back_within_7d: bool,
        back_within_30d: bool,
    },
    Closed,
    Breached(Target),
    Escalated(EscalationCause),
    Rated {
        score: u8,
        comment: Option<String>,
    },
    /// A resolved ticket came back (reopened, or followed by a new ticket) this long after
    /// its resolution: not a figure of its own (the resolution's `back_within_*` are), a
    /// line of the weekly report.
    CameBack {
        after_ms: i64,
    },
}

/// A fact, when it happened and the state it counts in.
#[derive(Clone, Debug, PartialEq)]
pub struct Counted {
    pub at: Millis,
    pub state: Snapshot,
    pub fact: Fact,
}

/// A ticket replayed.
#[derive(Clone, Debug, Default)]
pub struct Replayed {
    pub code: String,
    pub created_at: Millis,
    /// The state after each moment, in order.
    pub steps: Vec<(Millis, Snapshot)>,
    pub facts: Vec<Counted>,
}

impl Replayed {
    /// The state at `at` (after everything up to and including that instant).
    pub fn state_at(&self, at: Millis) -> Option<&Snapshot> {
        let n = self.steps.partition_point(|(t, _)| *t <= at);
        n.checked_sub(1).map(|i| &self.steps[i].1)
    }

    /// The state at `at` if the ticket was waiting for work then (new, open, or waiting on
    /// the customer): part of the backlog.
    pub fn open_at(&self, at: Millis) -> Option<&Snapshot> {
        self.state_at(at).filter(|s| is_open(s.status))
    }
}

pub fn is_open(status: TicketStatus) -> bool {
    !matches!(status, TicketStatus::Resolved | TicketStatus::Closed)
}

/// An event that cannot be read: a log written by a newer gateway, or damaged by hand.
#[derive(Debug, thiserror::Error)]
#[error("ticket {ticket}: a {kind} event's detail cannot be read ({error}): {detail}")]
pub struct Unreadable {
    pub ticket: i64,
    pub kind: EventKind,
    pub error: serde_json::Error,
    pub detail: String,
}

/// The service-level clock as the replay runs it: running in new and open, standing while
/// the ticket waits on the customer or is resolved (`timing::clock_runs`).
struct Clock<'c> {
    calendar: &'c Calendar,
    used: Elapsed,
    since: Option<Millis>,
}

impl Clock<'_> {
    fn at(&self, now: Millis) -> Elapsed {
        match self.since {
            Some(since) if now > since => Elapsed {
                business_ms: self.used.business_ms
                    + self
                        .calendar
                        .between(instant(since), instant(now))
                        .num_milliseconds(),
                wall_ms: self.used.wall_ms + (now - since),
            },
            _ => self.used,
        }
    }

    fn status(&mut self, from: TicketStatus, to: TicketStatus, now: Millis) {
        match (clock_runs(from), clock_runs(to)) {
            (true, false) => {
                self.used = self.at(now);
                self.since = None;
            }
            (false, true) => self.since = Some(now),
            _ => {}
        }
    }
}

/// A fact found while replaying, before its state is known (it is the moment's end state,
/// except where `state` is given).
struct Pending {
    state: Option<Snapshot>,
    fact: Fact,
}

/// Replays `ticket`'s log; `follow_ups` are the creation times of tickets that follow it.
pub fn replay(
    ticket: &TicketHistory,
    follow_ups: &[Millis],
    calendar: &Calendar,
) -> Result<Replayed, Unreadable> {
    let mut out = Replayed {
        code: ticket.code.clone(),
        created_at: ticket.created_at,
        ..Replayed::default()
    };
    let mut state = Snapshot {
        status: TicketStatus::New,
        tier: Tier::L1FrontLine,
        category: Category::general(),
        priority: Priority::Normal,
        assignee: None,
    };
    let mut clock = Clock {
        calendar,
        used: Elapsed::default(),
        since: Some(ticket.created_at),
    };
    let mut breached = (false, false);
    let mut answered = false;
    // Resolutions so far: (index into out.facts, at); reopenings say which came back.
    let mut resolutions: Vec<(usize, Millis)> = Vec::new();
    let events = &ticket.events;
    let mut i = 0;
    while i < events.len() {
        let at = events[i].at;
        // The state before the moment, for an escalation's facts (cloned only then).
        let moment = events[i..].iter().take_while(|e| e.at == at);
        let before = moment
            .clone()
            .any(|e| e.kind == EventKind::Escalated)
            .then(|| state.clone());
        let mut pending = Vec::new();
        while i < events.len() && events[i].at == at {
            let event = read(ticket, &events[i])?;
            step(&mut state, &mut clock, &event, at);
            facts_of(
                &events[i],
                &event,
                (before.as_ref().unwrap_or(&state), &state),
                &mut breached,
                &mut pending,
            );
            if let Event::Reopened(_) = event {
                came_back(&mut out, &resolutions, at);
            }
            i += 1;
        }
        for Pending { state: s, fact } in pending {
            let fact = match fact {
                Fact::AgentReply { by } if !answered => {
                    answered = true;
                    out.facts.push(Counted {
                        at,
                        state: state.clone(),
                        fact: Fact::AgentReply { by: by.clone() },
                    });
                    Fact::FirstResponse {
                        by,
                        elapsed: clock.at(at),
                        met: !breached.0,
                    }
                }
                Fact::Resolved { self_service, .. } => {
                    resolutions.push((out.facts.len(), at));
                    Fact::Resolved {
                        elapsed: clock.at(at),
                        met: !breached.1,
                        self_service,
                        back_within_7d: false,
                        back_within_30d: false,
                    }
                }
                other => other,
            };
            out.facts.push(Counted {
                at,
                state: s.unwrap_or_else(|| state.clone()),
                fact,
            });
        }
        // A step only when the state moved: most moments (a reply, a rating) do not.
        if out.steps.last().is_none_or(|(_, last)| *last != state) {
            out.steps.push((at, state.clone()));
        }
    }
    for created in follow_ups {
        came_back(&mut out, &resolutions, *created);
    }
    Ok(out)
}

fn read(ticket: &TicketHistory, e: &LoggedEvent) -> Result<Event, Unreadable> {
    let detail = ticket.detail(e);
    Event::parse(e.kind, detail).map_err(|error| Unreadable {
        ticket: ticket.id,
        kind: e.kind,
        error,
        detail: detail.to_string(),
    })
}

/// The state after one event.
fn step(state: &mut Snapshot, clock: &mut Clock<'_>, event: &Event, at: Millis) {
    match event {
        Event::Created(c) => {
            state.tier = c.tier;
            state.status = c.status;
        }
        Event::Routed(r) => {
            // A ticket held at L0 for self-service opened there; its routed tier comes
            // when the hold ends.
            if state.tier != Tier::L0SelfService {
                state.tier = r.tier;
            }
            state.category = r.category.clone();
            state.priority = r.priority;
        }
        Event::StatusChanged(c) | Event::Reopened(c) => {
            clock.status(state.status, c.to, at);
            state.status = c.to;
        }
        Event::Assigned(a) | Event::Unassigned(a) => state.assignee = a.to.clone(),
        Event::Escalated(e) => state.tier = e.to,
        Event::SelfServiceEnded(e) => state.tier = e.tier,
        Event::PriorityChanged(p) => state.priority = p.to,
        Event::CategoryChanged(c) => state.category = c.to.clone(),
        _ => {}
    }
}

/// The facts an event makes, added to `pending`.
fn facts_of(
    logged: &LoggedEvent,
    event: &Event,
    (before, after): (&Snapshot, &Snapshot),
    breached: &mut (bool, bool),
    pending: &mut Vec<Pending>,
) {
    let resolved = |self_service| Fact::Resolved {
        elapsed: Elapsed::default(),
        met: false,
        self_service,
        back_within_7d: false,
        back_within_30d: false,
    };
    let mut state = None;
    let fact = match event {
        Event::Created(_) => Fact::Created,
        Event::StatusChanged(c) if c.to == TicketStatus::Resolved => resolved(c.self_service),
        Event::StatusChanged(c) if c.to == TicketStatus::Closed => {
            // Closed without being resolved first: the work ended here too.
            if c.from != TicketStatus::Resolved {
                pending.push(Pending {
                    state: None,
                    fact: resolved(false),
                });
            }
            Fact::Closed
        }
        Event::AgentReplied(_) => Fact::AgentReply {
            by: logged.actor.clone(),
        },
        Event::SlaBreached(b) => {
            match b.target {
                Target::FirstResponse => breached.0 = true,
                Target::Resolution => breached.1 = true,
            }
            state = Some(Snapshot {
                tier: b.tier,
                priority: b.priority,
                assignee: b.assignee.clone(),
                ..after.clone()
            });
            Fact::Breached(b.target)
        }
        Event::Escalated(e) => {
            state = Some(Snapshot {
                tier: e.from,
                ..before.clone()
            });
            Fact::Escalated(e.cause.unwrap_or(match logged.actor_kind {
                "timer" => EscalationCause::Sla,
                "gateway" => EscalationCause::Reopens,
                _ => EscalationCause::Agent,
            }))
        }
        Event::Rated(r) => Fact::Rated {
            score: r.score,
            comment: r.comment.clone(),
        },
        _ => return,
    };
    pending.push(Pending { state, fact });
}

/// A reopening or a follow-up at `at`: the last resolution before it came back.
fn came_back(out: &mut Replayed, resolutions: &[(usize, Millis)], at: Millis) {
    let Some(&(index, resolved_at)) = resolutions.iter().rev().find(|(_, r)| *r <= at) else {
        return;
    };
    if let Some(state) = out.state_at(at).cloned() {
        out.facts.push(Counted {
            at,
            state,
            fact: Fact::CameBack {
                after_ms: at - resolved_at,
            },
        });
    }
    if let Some(Counted {
        fact:
            Fact::Resolved {
                back_within_7d,
                back_within_30d,
                ..
            },
        ..
    }) = out.facts.get_mut(index)
    {
        let after = at - resolved_at;
        *back_within_7d |= after <= CAME_BACK_SOON;
        *back_within_30d |= after <= CAME_BACK_LATER;
    }
}
