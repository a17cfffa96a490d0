//! Mail held back by the automatic-mail budget or a flood: released when the budget
//! allows, superseded when its ticket moved on, or summed up in one digest per person.

use super::*;

/// How long a flood must have been quiet before its digest goes.
const FLOOD_QUIET_MS: Millis = 5 * 60 * 1000;

/// What one pass over held mail did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldPass {
    pub released: usize,
    pub superseded: usize,
    pub digests: usize,
}

impl Pipeline {
    /// Held mail's second chance, run by the scheduler. Mail to an outside address held by
    /// its budget goes out, oldest first, as far as the budget now allows, unless its
    /// ticket's status changed meanwhile (then it is superseded: it would say something no
    /// longer true) or its recipient wrote back within the hour of the last mail released
    /// to them (a machine answering everything: their held mail is superseded, and the loop
    /// ends there). Mail to the desk's people held while one sender flooded the desk is
    /// replaced by one digest per person and sender, once the flood has been quiet for
    /// five minutes or began an hour ago.
    pub async fn release_held(&self) -> Result<HeldPass, StoreError> {
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let held = tx.held_mail(HELD_BATCH).await?;
        let mut pass = HeldPass::default();
        if held.is_empty() {
            // Committed, not dropped: a dropped transaction closes its connection.
            tx.commit().await?;
            return Ok(pass);
        }
        let events = self.within_budget(&mut *tx, &held, now, &mut pass).await?;
        self.digest_floods(&mut *tx, &held, now, &mut pass).await?;
        let rows: Vec<crate::store::NewEvent<'_>> = events
            .into_iter()
            .map(|(ticket, event)| crate::store::NewEvent {
                ticket,
                message: None,
                kind: event.kind(),
                actor: &Actor::Gateway,
                detail: event.detail(),
                at: now,
            })
            .collect();
        tx.insert_events(&rows).await?;
        tx.commit().await?;
        if pass.released > 0 || pass.digests > 0 {
            tracing::info!(
                released = pass.released,
                superseded = pass.superseded,
                digests = pass.digests,
                "held mail"
            );
            self.outbox_wakeup.notify_one();
        }
        Ok(pass)
    }

    /// Mail held by its recipient's budget: released as far as the budget allows,
    /// superseded when its ticket moved on or its recipient answers everything.
    async fn within_budget(
        &self,
        tx: &mut dyn StoreTx,
        held: &[crate::store::HeldMail],
        now: Millis,
        pass: &mut HeldPass,
    ) -> Result<Vec<(Option<TicketId>, Event)>, StoreError> {
        let budget = self.desk().budget;
        let mut events: Vec<(Option<TicketId>, Event)> = Vec::new();
        let mut superseded = Vec::new();
        let mut allowance: HashMap<&str, u32> = HashMap::new();
        let mut looping: Vec<&str> = Vec::new();
        for m in held.iter().filter(|m| m.flood_from.is_none()) {
            let detail = ev::HeldMail {
                kind: m.kind.clone(),
                to: m.rcpt_to.clone(),
                looping: false,
            };
            if m.held_status.is_some() && m.held_status != m.ticket_status {
                superseded.push(m.id);
                events.push((m.ticket, Event::MailSuperseded(detail)));
                continue;
            }
            let left = match allowance.get(m.rcpt_to.as_str()) {
                Some(n) => *n,
                None => match crate::domain::EmailAddress::parse(&m.rcpt_to) {
                    // A recipient who answered the mail released to them at once is a
                    // machine answering everything: releasing more would restart the loop.
                    Ok(to) if tx.answered_release(&to, HOUR_MS).await? => {
                        looping.push(m.rcpt_to.as_str());
                        0
                    }
                    Ok(to) => {
                        let (hour, day) = tx
                            .automatic_mail_sent(
                                &to,
                                crate::render::Template::budgeted(),
                                (now - HOUR_MS, now - 24 * HOUR_MS, now),
                                (budget.per_hour, budget.per_day),
                            )
                            .await?;
                        budget
                            .per_hour
                            .saturating_sub(hour)
                            .min(budget.per_day.saturating_sub(day))
                    }
                    Err(_) => 0,
                },
            };
            if left == 0 {
                allowance.insert(&m.rcpt_to, 0);
                if looping.contains(&m.rcpt_to.as_str()) {
                    superseded.push(m.id);
                    events.push((
                        m.ticket,
                        Event::MailSuperseded(ev::HeldMail {
                            looping: true,
                            ..detail
                        }),
                    ));
                }
                continue;
            }
            tx.release_mail(m.id, now).await?;
            events.push((m.ticket, Event::MailReleased(detail)));
            allowance.insert(&m.rcpt_to, left - 1);
            pass.released += 1;
        }
        tx.supersede_mail(&superseded).await?;
        pass.superseded += superseded.len();
        Ok(events)
    }

    /// Mail to the desk's people held during a flood: one digest per person and sender,
    /// once the flood has been quiet for a while or began an hour ago.
    async fn digest_floods(
        &self,
        tx: &mut dyn StoreTx,
        held: &[crate::store::HeldMail],
        now: Millis,
        pass: &mut HeldPass,
    ) -> Result<(), StoreError> {
        use crate::desk::apply::{Flood, queue_digest};
        let mut floods: std::collections::BTreeMap<(&str, &str), Vec<&crate::store::HeldMail>> =
            std::collections::BTreeMap::new();
        for m in held {
            if let Some(from) = &m.flood_from {
                floods.entry((&m.rcpt_to, from)).or_default().push(m);
            }
        }
        let (desk, renderer) = (self.desk(), self.renderer());
        let ctx = self.apply_context(&desk, &renderer, now);
        for ((to, from), mails) in floods {
            let first = mails.iter().map(|m| m.created_at).min().unwrap_or(now);
            let last = mails.iter().map(|m| m.created_at).max().unwrap_or(now);
            if last > now - FLOOD_QUIET_MS && first > now - HOUR_MS {
                continue;
            }
            let Ok(to) = crate::domain::EmailAddress::parse(to) else {
                continue;
            };
            let mut codes: Vec<String> = Vec::new();
            for code in mails.iter().filter_map(|m| m.code.clone()) {
                if !codes.contains(&code) {
                    codes.push(code);
                }
            }
            let sent = match crate::domain::EmailAddress::parse(from) {
                Ok(sender) => {
                    tx.mail_from_since(&sender, first - HOUR_MS, u32::MAX - 1)
                        .await?
                }
                Err(_) => 0,
            };
            let flood = Flood {
                to: &to,
                from,
                held: mails.iter().map(|m| m.id).collect(),
                codes,
                sent: u64::from(sent),
            };
            if queue_digest(tx, &ctx, flood).await? {
                pass.digests += 1;
            }
        }
        Ok(())
    }
}
