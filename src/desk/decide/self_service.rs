//! L0, self-service: the articles a new ticket's acknowledgement carries, the hold that
//! keeps such a ticket at L0 with no agent for a while, and its end (the customer wrote
//! again, or the time ran out), when the ticket goes to its tier like any other.

use std::collections::HashMap;

use super::*;
use crate::domain::SelfServiceHold;
use crate::kb::suggest::{self, Suggestions};

/// What the knowledge base does for a new ticket routed to `tier`.
pub(super) struct Offer {
    pub suggestions: Suggestions,
    /// The ticket waits at L0 until then.
    pub hold: Option<SelfServiceHold>,
}

/// What a new ticket's acknowledgement carries and its agent is shown: the one decision,
/// shared by the pipeline and `helpdesk kb suggest`.
pub fn suggestions(reading: &MailReading, desk: &DeskSettings) -> Suggestions {
    suggest::choose(
        &reading.found,
        reading.routing.tier,
        &desk.knowledge.suggest,
    )
}

pub(super) fn offer(s: &MailSituation<'_>, tier: Tier) -> Offer {
    let knowledge = &s.desk.knowledge;
    let suggestions = suggestions(&s.reading, s.desk);
    let hold = (!suggestions.customer.is_empty() && knowledge.hold > chrono::Duration::zero())
        .then(|| SelfServiceHold {
            until: s.desk.time.add_business(s.now, knowledge.hold),
            then: tier.max(Tier::L1FrontLine),
        });
    Offer { suggestions, hold }
}

/// The articles as a mail names them.
pub(super) fn mail_articles(hits: &[crate::kb::Hit], sent: &[crate::kb::Hit]) -> Vec<MailArticle> {
    hits.iter()
        .map(|h| MailArticle {
            article: h.article.clone(),
            score: Some(h.score),
            sent: sent.iter().any(|c| c.article.id == h.article.id),
        })
        .collect()
}

/// The effects of a new ticket's offer: the event, and the clock's hold.
pub(super) fn offer_effects(offer: &Offer, customer: &Actor) -> Vec<Effect> {
    let customer_hits = &offer.suggestions.customer;
    let Some(first) = customer_hits.first() else {
        return Vec::new();
    };
    let mut effects = vec![record(
        customer,
        Event::ArticlesSuggested(ev::ArticlesSuggested {
            language: first.article.language,
            articles: customer_hits
                .iter()
                .map(|h| ev::ArticleScore {
                    id: h.article.id.to_string(),
                    score: (h.score * 10.0).round() / 10.0,
                })
                .collect(),
            held_until: offer.hold.map(|h| crate::clock::format_millis(h.until)),
        }),
    )];
    if let Some(hold) = offer.hold {
        effects.push(Effect::Clock(ClockChange::SelfService(Some(hold))));
    }
    effects
}

/// A held ticket goes to its tier: routed and assigned as a new ticket would have been,
/// its agent told which articles the customer already had. Nothing for a ticket not held.
pub(crate) fn end_hold(
    desk: &DeskSettings,
    gateway: &GatewaySettings,
    ticket: &TicketRef,
    loads: &HashMap<EmailAddress, Load>,
    actor: &Actor,
    reason: ev::HoldEnd,
) -> Vec<Effect> {
    let Some(hold) = ticket.clock.self_service else {
        return Vec::new();
    };
    let mut effects = Vec::new();
    if let Ok(to) = ticket.tier.escalate(Some(hold.then)) {
        effects.push(Effect::ChangeTier(to));
    }
    let tier = ticket.tier.max(hold.then);
    effects.push(Effect::Clock(ClockChange::SelfService(None)));
    effects.push(record(
        actor,
        Event::SelfServiceEnded(ev::SelfServiceEnded { reason, tier }),
    ));
    let chosen = desk
        .roster
        .choose(tier, &ticket.category, ticket.language, loads, None);
    let sent: Vec<MailArticle> = suggest::lookup(&desk.knowledge.kb, &ticket.suggested_articles)
        .into_iter()
        .map(|article| MailArticle {
            article,
            score: None,
            sent: true,
        })
        .collect();
    let mut assigned = assignment(
        desk,
        gateway,
        &chosen,
        ticket.assignee.as_ref(),
        tier,
        Some(Notice::SelfServiceEnded(reason)),
        actor,
    );
    show_articles(&mut assigned, sent);
    effects.extend(assigned);
    effects
}

/// The new agent's notification among `effects` lists `articles`.
pub(super) fn show_articles(effects: &mut [Effect], articles: Vec<MailArticle>) {
    for e in effects {
        if let Effect::Queue(m) = e
            && m.template == Template::AgentNotification
        {
            m.articles = articles.clone();
        }
    }
}

/// Whether a ticket's resolution by its customer counts as self-service: articles went
/// to them and no person had answered yet.
pub(super) fn solved_by_self_service(ticket: &TicketRef) -> bool {
    !ticket.suggested_articles.is_empty() && ticket.clock.first_response_at.is_none()
}
