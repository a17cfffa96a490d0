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
/// Each line stands for every phrase its groups make: `(a|b)` is either word, an empty
/// alternative makes the group optional; a phrase ending in `*` may end inside a word
/// ("demenag*": déménager, déménagement). Matched on whole words of the mail, lowercased
/// and without accents.
const SERVICE_REQUESTS: &[&str] = &[
    // Orders and purchases.
    "commander",
    "commande (d|de|du|des|pour)",
    "acheter",
    "devis",
    "(order|purchase|buy) (a|an|new|some|two|three|more)",
    "place an order",
    "quote for",
    // Licences and subscriptions.
    "(licence|licences|license|licenses)",
    "abonnement",
    "subscription",
    // Access to something named, given by someone.
    "(donner|ouvrir|accorder|attribuer) (|moi |nous |lui )(|l'|les )(acces|droits)",
    "acces (au|aux|a la) (dossier|repertoire|partage|lecteur|boite partagee)",
    "(give|grant|need|request) (|me |us |him |her |them )(access|permission|rights)",
    "access to (the|our) (shared|team|finance|hr)",
    // People arriving and leaving.
    "(nouvel arrivant|nouveau collaborateur|nouvelle collaboratrice|nouvelle recrue)",
    "(creer|creation de|creation du) (son|un|le|leur|sa) (compte|acces|messagerie)",
    "(new hire|new starter|new employee|new joiner|leaver)",
    "(create|set up) (an|a|his|her|their) (account|mailbox)",
    // Money, moves, leave, rooms.
    "facture",
    "invoice",
    "demenag*",
    "(poser|prendre|demande de|jours de|solde de) (|mes |des |ses )conges",
    "annual leave",
    "(double book*|double-book*)",
    "(reserve|reservee) en double",
];

/// Every phrase a line of [`SERVICE_REQUESTS`] stands for.
fn phrases(line: &str) -> Vec<String> {
    let Some(open) = line.find('(') else {
        return vec![line.to_string()];
    };
    let close = open + line[open..].find(')').unwrap_or(line.len() - open - 1);
    let (head, group, tail) = (&line[..open], &line[open + 1..close], &line[close + 1..]);
    group
        .split('|')
        .flat_map(|alt| phrases(&format!("{head}{alt}{tail}")))
        .collect()
}

/// The first service-request phrase in `text`, if any (lowercased, without accents). One
/// Aho-Corasick automaton of plain phrases: the case-insensitive Unicode regular
/// expressions it replaces cost a one-shot process (an MTA's `ingest`, once per mail) 4 to
/// 6 ms to compile.
pub fn service_request(text: &str) -> Option<String> {
    struct Matcher {
        automaton: aho_corasick::AhoCorasick,
        /// Per phrase: whether it may end inside a word.
        open_ended: Vec<bool>,
    }
    static MATCHER: std::sync::LazyLock<Option<Matcher>> = std::sync::LazyLock::new(|| {
        let all: Vec<String> = SERVICE_REQUESTS.iter().flat_map(|l| phrases(l)).collect();
        let open_ended = all.iter().map(|p| p.ends_with('*')).collect();
        let patterns = all.iter().map(|p| p.trim_end_matches('*'));
        aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(patterns)
            .ok()
            .map(|automaton| Matcher {
                automaton,
                open_ended,
            })
    });
    let text: String = {
        use unicode_normalization::UnicodeNormalization;
        text.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .map(|c| if c == '’' { '\'' } else { c })
            .collect()
    };
    let matcher = MATCHER.as_ref()?;
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    matcher
        .automaton
        .find_iter(&text)
        .find(|m| {
            let before = text[..m.start()].chars().next_back();
            let after = text[m.end()..].chars().next();
            !word(before) && (matcher.open_ended[m.pattern().as_usize()] || !word(after))
        })
        .map(|m| text[m.start()..m.end()].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_requests_are_told_from_problems() {
        for (text, words) in [
            ("Pouvez-vous commander un portable ?", "commander"),
            (
                "merci de me donner l’accès au dossier Compta",
                "donner l'acces",
            ),
            (
                "Please give me access to the shared folder",
                "give me access",
            ),
            ("Nous déménageons vendredi", "demenag"),
            ("comment poser mes congés ?", "poser mes conges"),
            ("Room Everest is double booked", "double book"),
            ("Nouvelle Recrue lundi", "nouvelle recrue"),
        ] {
            assert_eq!(service_request(text).as_deref(), Some(words), "{text}");
        }
        for text in [
            "depuis mes congés impossible de me connecter",
            "accès refusé au VPN",
            "I cannot access the shared drive",
            "the printer is out of order",
            "ma commande Outlook ne marche pas",
        ] {
            assert_eq!(service_request(text), None, "{text}");
        }
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
