//! Timed work through the same decide/apply path as mail: what fell due on each ticket
//! (leased to one gateway at a time), and a preview of it for `tick`.

use super::*;
use crate::desk::{Effect, EventRecord};

/// How long a gateway holds the tickets whose timers it claimed.
const TIMER_LEASE_MS: Millis = 5 * 60 * 1000;

const TIMER_BATCH: u32 = 100;

/// Tickets whose timed work shares one transaction.
const TIMER_GROUP: usize = 25;

/// What one pass of the timers did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerPass {
    /// Tickets whose due work was run.
    pub tickets: usize,
    /// Mail queued by it.
    pub queued: usize,
    /// Held mail released, superseded or summed up.
    pub held: HeldPass,
}

impl Pipeline {
    /// What fell due on `ticket` at `now`, as one plan.
    fn timer_plan(
        &self,
        ticket: &TicketRef,
        loads: &HashMap<crate::domain::EmailAddress, crate::roster::Load>,
        now: Millis,
    ) -> Plan {
        decide_timers(&TimerSituation {
            ticket,
            gateway: &self.settings,
            desk: &self.desk(),
            loads,
            now,
        })
    }

    /// Runs the timed work that fell due (by this pipeline's clock) on every ticket, one
    /// transaction per ticket, through the same decide/apply path as mail. Tickets are
    /// leased to `owner` first (by the machine's clock, like the outbox), so two gateways
    /// on one database never act on the same ticket at once.
    pub async fn run_timers(&self, owner: &str) -> Result<TimerPass, StoreError> {
        let mut pass = TimerPass {
            held: self.release_held().await?,
            ..TimerPass::default()
        };
        // A ticket is acted on once per pass, even if its next work were due at once again.
        let mut seen = std::collections::HashSet::new();
        loop {
            let now = self.clock.now();
            let lease_now = SystemClock.now();
            let ids = self
                .store
                .claim_due(
                    now,
                    lease_now,
                    lease_now + TIMER_LEASE_MS,
                    TIMER_BATCH,
                    owner,
                )
                .await?;
            let fresh: Vec<TicketId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
            // Many tickets per transaction (a restart after a long stop, a desk of thousands
            // due at once): one commit instead of one per ticket. If the group fails, its
            // tickets are run one by one, and one the gateway fails on is skipped, logged,
            // and tried again once its lease runs out: it never stops the scheduler.
            for group in fresh.chunks(TIMER_GROUP) {
                let mark = StageMark::default();
                match guarded(&mark, self.timers_in_one_tx(group, now, &mark)).await {
                    Ok((tickets, queued)) => {
                        pass.tickets += tickets;
                        pass.queued += queued;
                    }
                    Err(trouble) => {
                        if let Trouble::Store(e) = &trouble {
                            tracing::warn!(error = %e, "timer group failed; running its tickets one by one");
                        }
                        for id in group {
                            let mark = StageMark::default();
                            match guarded(&mark, self.timers_in_one_tx(&[*id], now, &mark)).await {
                                Ok((tickets, queued)) => {
                                    pass.tickets += tickets;
                                    pass.queued += queued;
                                }
                                Err(Trouble::Store(e)) => return Err(e),
                                Err(Trouble::Failed(stage, error)) => tracing::error!(
                                    ticket = id,
                                    stage = stage.doing(),
                                    error,
                                    "the gateway failed on a ticket's timed work; skipped until its lease runs out"
                                ),
                            }
                        }
                    }
                }
            }
            if ids.len() < TIMER_BATCH as usize || fresh.is_empty() {
                break;
            }
        }
        if pass.queued > 0 {
            self.outbox_wakeup.notify_one();
        }
        Ok(pass)
    }

    /// The timed work of `ids`, in one transaction: (tickets acted on, mail queued).
    async fn timers_in_one_tx(
        &self,
        ids: &[TicketId],
        now: Millis,
        mark: &StageMark,
    ) -> Result<(usize, usize), Trouble> {
        let mut tx = self.store.begin().await?;
        let mut done = Vec::with_capacity(ids.len());
        let mut breaches = Vec::new();
        let mut queued = 0;
        for id in ids {
            let Some(ticket) = tx.ticket_by_id(*id).await? else {
                continue;
            };
            let loads = self.loads(&mut *tx).await?;
            mark.set(Stage::Decide);
            let plan = self.timer_plan(&ticket, &loads, now);
            mark.set(Stage::Apply);
            queued += apply(
                &mut *tx,
                &self.apply_context(&self.desk(), &self.renderer(), now),
                &plan,
                None,
            )
            .await?
            .queued;
            done.push((ticket.code, plan.events()));
            breaches.extend(plan.effects.iter().filter_map(|e| match e {
                Effect::Record(EventRecord {
                    event: Event::SlaBreached(b),
                    ..
                }) => Some(crate::metrics::BreachLabels {
                    tier: b.tier.as_str(),
                    target: b.target.as_str(),
                }),
                _ => None,
            }));
        }
        tx.commit().await?;
        for labels in &breaches {
            crate::metrics::metrics()
                .sla_breaches
                .get_or_create(labels)
                .inc();
        }
        for (code, events) in &done {
            for kind in events {
                tracing::info!(code = %code, event = %kind, "timer");
            }
        }
        Ok((done.len(), queued))
    }

    /// What the timers would do now (by this pipeline's clock), ticket by ticket, without
    /// changing anything: `tick --at` without `--apply`.
    pub async fn preview_timers(
        &self,
        limit: u32,
    ) -> Result<Vec<(ReferenceCode, Plan)>, StoreError> {
        let now = self.clock.now();
        let mut out = Vec::new();
        for id in self.store.due_tickets(now, limit).await? {
            // A transaction only for its consistent reads: it writes nothing, and ends with a
            // commit (a dropped one closes its connection).
            let mut tx = self.store.begin().await?;
            let ticket = tx.ticket_by_id(id).await?;
            let loads = self.loads(&mut *tx).await?;
            tx.commit().await?;
            let Some(ticket) = ticket else {
                continue;
            };
            let plan = self.timer_plan(&ticket, &loads, now);
            out.push((ticket.code.clone(), plan));
        }
        Ok(out)
    }

    /// When the next timed work falls due, by this pipeline's clock.
    pub async fn next_timer(&self) -> Result<Option<Millis>, StoreError> {
        self.store.next_due().await
    }
}
