//! Which articles a new ticket's acknowledgement carries, and which its agent is shown.
//! A wrong article is worse than none: below the threshold the customer gets nothing, and
//! an article far behind the best one is left out even above it.

use std::sync::Arc;

use crate::domain::{Language, Tier};

use super::{Hit, KnowledgeBase};

/// `[knowledge_base]`'s settings that the decision reads.
#[derive(Clone, Debug, PartialEq)]
pub struct SuggestSettings {
    /// The least score an article needs to go to a customer.
    pub min_score: f32,
    /// An article also needs this share of the best article's score.
    pub relative: f32,
    /// The tiers whose new tickets get suggestions (routing's tier).
    pub tiers: Vec<Tier>,
}

/// Tuned on `tests/kb/requests.tsv` against the starter articles (see the README).
pub const DEFAULT_MIN_SCORE: f32 = 12.0;
pub const DEFAULT_RELATIVE: f32 = 0.6;
/// At most this many articles in an acknowledgement, and in an agent's notification.
pub const MAX_SUGGESTIONS: usize = 3;

impl Default for SuggestSettings {
    fn default() -> Self {
        SuggestSettings {
            min_score: DEFAULT_MIN_SCORE,
            relative: DEFAULT_RELATIVE,
            tiers: vec![Tier::L0SelfService, Tier::L1FrontLine],
        }
    }
}

/// What the knowledge base found for one mail: computed before the database is touched,
/// like routing, and decided on by [`choose`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    /// The language searched in (the mail's, unless the base has no article in it).
    pub language: Option<Language>,
    /// The best hits, best first, unfiltered.
    pub hits: Vec<Hit>,
}

/// Searches `kb` with a mail's subject and new text.
pub fn find(kb: &KnowledgeBase, subject: &str, text: &str, language: Language) -> Found {
    if kb.articles().is_empty() {
        return Found::default();
    }
    let language = kb.language_for(language);
    // The subject says what the mail is about; it counts twice.
    let query = format!("{subject}\n{subject}\n{text}");
    Found {
        language: Some(language),
        hits: kb.search(&query, language, 10),
    }
}

/// The decision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Suggestions {
    /// What the customer is sent: 0 to 3 articles.
    pub customer: Vec<Hit>,
    /// What the agent is shown: the best few above half the threshold, even when the
    /// customer got none (a ticket routed to L2, a weak match).
    pub agent: Vec<Hit>,
}

impl Suggestions {
    pub fn ids(hits: &[Hit]) -> Vec<String> {
        hits.iter().map(|h| h.article.id.to_string()).collect()
    }
}

/// Which of `found` go to the customer of a new ticket routed to `tier`, and which to its
/// agent.
pub fn choose(found: &Found, tier: Tier, settings: &SuggestSettings) -> Suggestions {
    let best = found.hits.first().map_or(0.0, |h| h.score);
    let agent: Vec<Hit> = found
        .hits
        .iter()
        .filter(|h| h.score >= settings.min_score / 2.0)
        .take(MAX_SUGGESTIONS)
        .cloned()
        .collect();
    let customer = if settings.tiers.contains(&tier) {
        found
            .hits
            .iter()
            .filter(|h| h.score >= settings.min_score && h.score >= best * settings.relative)
            .take(MAX_SUGGESTIONS)
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    Suggestions { customer, agent }
}

/// The articles of `ids` that the base still has (an article removed since is skipped).
pub fn lookup(kb: &KnowledgeBase, ids: &[String]) -> Vec<Arc<super::Article>> {
    ids.iter().filter_map(|id| kb.get(id).cloned()).collect()
}
