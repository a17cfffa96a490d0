//! What one command does to a ticket, or why it may not: the same decision for a
//! `#command` line in an agent's mail and for `helpdesk tickets …` on the command line.

use super::*;

/// What a command does to a ticket, or why it may not.
pub fn decide_command(s: &CommandSituation<'_>) -> Result<Plan, Refusal> {
    Ok(with_timing(command_plan(s)?, s.desk, s.now))
}

/// A command's plan without the closing timing (an agent's mail applies several, then
/// times the ticket once).
pub(super) fn command_plan(s: &CommandSituation<'_>) -> Result<Plan, Refusal> {
    let t = s.ticket;
    let effects = match s.command {
        Command::Assign(to) => assign(s, to)?,
        Command::Escalate { to, reason, vendor } => {
            if t.status == TicketStatus::Closed {
                return Err(Refusal::Closed);
            }
            if let Some(name) = vendor {
                return Ok(Plan {
                    ticket: PlanTicket::Existing(t.clone()),
                    effects: to_vendor(s, name, reason.clone())?,
                    outcome: PlannedOutcome::Changed,
                });
            }
            escalate(s, *to, reason)?
        }
        Command::Resolve => status_change(
            s.desk,
            t,
            TicketStatus::Resolved,
            &s.actor,
            Some(Change::Resolved),
        )?,
        Command::Close => status_change(
            s.desk,
            t,
            TicketStatus::Closed,
            &s.actor,
            Some(Change::Closed),
        )?,
        Command::Wait(duration) => wait(s, *duration)?,
        Command::SetPriority(p) => {
            if *p == t.priority {
                return Err(Refusal::SamePriority(*p));
            }
            vec![
                Effect::SetPriority(*p),
                record(
                    &s.actor,
                    Event::PriorityChanged(ev::PriorityChanged {
                        from: t.priority,
                        to: *p,
                    }),
                ),
            ]
        }
        Command::SetCategory(c) => set_category(s, c)?,
        Command::AddParticipant(a) => {
            if *a == s.gateway.support_address {
                return Err(Refusal::SupportAddress);
            }
            vec![
                Effect::AddParticipant(a.clone(), ParticipantRole::Cc),
                record(
                    &s.actor,
                    Event::ParticipantAdded(ev::ParticipantAdded { address: a.clone() }),
                ),
            ]
        }
        Command::Reopen => {
            if !t.status.reopens_on_reply() {
                return Err(Refusal::NotReopenable(t.status));
            }
            let mut effects = status_change(s.desk, t, TicketStatus::Open, &s.actor, None)?;
            effects.extend(after_reopening(s.desk, s.gateway, t, s.loads));
            effects
        }
    };
    Ok(Plan {
        ticket: PlanTicket::Existing(t.clone()),
        effects,
        outcome: PlannedOutcome::Changed,
    })
}

/// `#assign`, `#take`: to an agent on the roster, not the one who has it.
fn assign(s: &CommandSituation<'_>, to: &EmailAddress) -> Result<Vec<Effect>, Refusal> {
    let t = s.ticket;
    if s.desk.roster.agent(to).is_none() {
        return Err(Refusal::NotOnRoster(to.clone()));
    }
    if t.assignee.as_ref() == Some(to) {
        return Err(Refusal::AlreadyAssigned(to.clone()));
    }
    if t.status == TicketStatus::Closed {
        return Err(Refusal::Closed);
    }
    let mut effects = assignment(
        s.desk,
        s.gateway,
        &Assignee::Agent(to.clone()),
        t.assignee.as_ref(),
        t.tier,
        None,
        &s.actor,
    );
    if s.desk.notify_customer_on_assignment {
        effects.extend(customer_status(s.desk, t, Change::Assigned, None));
    }
    Ok(effects)
}

/// `#escalate [L2|L3]`: up one tier or to the one named; L4 needs a vendor.
fn escalate(
    s: &CommandSituation<'_>,
    to: Option<Tier>,
    reason: &Option<String>,
) -> Result<Vec<Effect>, Refusal> {
    let t = s.ticket;
    let tier = t.tier.escalate(to)?;
    // L4 is an external vendor's: a ticket sent there with nobody to send it to
    // would sit unassigned while the customer is told a vendor has it.
    if tier.to() == Tier::L4Vendor {
        return Err(Refusal::VendorNeeded {
            known: s.desk.time.vendor_names(),
        });
    }
    Ok(escalation(
        s.desk,
        s.gateway,
        t,
        Escalation {
            to: tier,
            cause: ev::EscalationCause::Agent,
            reason: reason.clone().map(Notice::Written),
        },
        s.loads,
        &s.actor,
    ))
}

/// `#wait [3d]`: the ticket waits on the customer, for the desk's time or the one given.
fn wait(
    s: &CommandSituation<'_>,
    duration: Option<std::time::Duration>,
) -> Result<Vec<Effect>, Refusal> {
    let t = s.ticket;
    if let Some(d) = duration
        && (d.is_zero() || d > crate::timing::LONGEST)
    {
        return Err(Refusal::WaitOutOfRange(d));
    }
    let mut effects = status_change(
        s.desk,
        t,
        TicketStatus::WaitingOnCustomer,
        &s.actor,
        Some(Change::Waiting),
    )?;
    if let (Some(d), Some(moved)) = (duration, status_event(&mut effects)) {
        moved.wait_seconds = Some(d.as_secs());
    }
    effects.push(Effect::Clock(ClockChange::WaitFor(
        duration.map(|d| d.as_millis().min(i64::MAX as u128) as i64),
    )));
    Ok(effects)
}

/// `#category NAME`: one the desk knows, not the one it has.
fn set_category(s: &CommandSituation<'_>, c: &Category) -> Result<Vec<Effect>, Refusal> {
    let t = s.ticket;
    if *c == t.category {
        return Err(Refusal::SameCategory(c.clone()));
    }
    let known = s.desk.known_categories();
    if !known.contains(c) {
        return Err(Refusal::NoSuchCategory {
            name: c.clone(),
            known,
        });
    }
    Ok(vec![
        Effect::SetCategory(c.clone()),
        record(
            &s.actor,
            Event::CategoryChanged(ev::CategoryChanged {
                from: t.category.clone(),
                to: c.clone(),
            }),
        ),
    ])
}
