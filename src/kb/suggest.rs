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
pub const DEFAULT_MIN_SCORE: f32 = 24.0;
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
    /// The words that make the mail a service request (see [`service_request`]).
    pub request: Option<String>,
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
        request: service_request(&format!("{subject}\n{text}")),
    }
}

/// Phrases of someone asking for something rather than reporting something broken: an
/// order, a licence, access to a named folder, an account for a newcomer, an invoice, a
/// move, leave. IT calls these service requests; no article fulfils one, and an article
/// that shares their words ("laptop", "access") is the wrong answer. French and English
/// both, whatever the mail's language: people mix them.
const SERVICE_REQUESTS: &[&str] = &[
    // Orders and purchases.
    r"\bcommander\b",
    r"\bcommande (d|de|du|des|pour)\b",
    r"\bacheter\b",
    r"\bdevis\b",
    r"\b(order|purchase|buy) (a|an|new|some|two|three|\d+)\b",
    r"\bplace an order\b",
    r"\bquote for\b",
    // Licences and subscriptions.
    r"\blicen[cs]es?\b",
    r"\babonnement\b",
    r"\bsubscription\b",
    // Access to something named, given by someone.
    r"\b(donner|ouvrir|accorder|attribuer)( moi| nous| lui)? (l'|les )?(acc[eè]s|droits)\b",
    r"\bacc[eè]s (au|aux|à la|a la) (dossier|r[ée]pertoire|partage|lecteur|bo[iî]te partag[ée]e)\b",
    r"\b(give|grant|need|request)( me| us| him| her| them)? (access|permission|rights)\b",
    r"\baccess to (the|our) (shared|team|finance|hr)\b",
    // People arriving and leaving.
    r"\b(nouvel arrivant|nouveau collaborateur|nouvelle collaboratrice|nouvelle recrue)\b",
    r"\b(cr[ée]er|cr[ée]ation d[eu]) (son|un|le|leur|sa) (compte|acc[eè]s|messagerie)\b",
    r"\b(new hire|new starter|new employee|new joiner|leaver)\b",
    r"\b(create|set up) (an|a|his|her|their) (account|mailbox)\b",
    // Money, moves, leave, rooms.
    r"\bfacture\b",
    r"\binvoice\b",
    r"\bd[ée]m[ée]nag",
    r"\b(poser|prendre|demande de|jours de|solde de) (mes |des |ses |[0-9]+ jours de )?cong[ée]s\b",
    r"\bannual leave\b",
    r"\bdouble[- ]book",
    r"\br[ée]serv[ée]e? en double\b",
];

/// The first service-request phrase in `text`, if any.
pub fn service_request(text: &str) -> Option<String> {
    // Fixed patterns, tested: they compile (`None` would only make every mail a candidate).
    static PATTERNS: std::sync::LazyLock<Option<regex::RegexSet>> =
        std::sync::LazyLock::new(|| {
            regex::RegexSet::new(SERVICE_REQUESTS.iter().map(|p| format!("(?i){p}"))).ok()
        });
    let text = text.replace('’', "'");
    let first = PATTERNS.as_ref()?.matches(&text).into_iter().next()?;
    let found = regex::Regex::new(&format!("(?i){}", SERVICE_REQUESTS[first]))
        .ok()?
        .find(&text)?
        .as_str()
        .to_string();
    Some(found)
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
    let customer = if settings.tiers.contains(&tier) && found.request.is_none() {
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
