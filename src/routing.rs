//! Routing: which category, priority and starting tier a new mail gets, and why.
//!
//! The operator's rules from `helpdesk.toml` come first, in order, and the first that
//! matches wins: they say exactly what the desk wants. When none does, the built-in IT
//! support categories (French and English) weigh the evidence: every category is scored,
//! a word in the subject counts twice, a specific word ("VPN", "imprimante",
//! "hameçonnage") three times a generic one ("connecter", "mot de passe", "accès"), and a
//! sign of an attack outweighs anything else. A single common word no longer decides.
//!
//! Keywords match whole words of the subject and the new text, ignoring case and accents,
//! through a light stemmer so that "imprimantes" finds "imprimante" and "printers" finds
//! "printer". Pure: no store, no clock; `helpdesk route` and the pipeline call the same
//! [`Rules::route`].

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use wildmatch::WildMatch;

use crate::domain::{Category, EmailAddress, Priority, Tier};

/// What routing needs to know about a mail.
pub struct RouteInput<'a> {
    pub subject: &'a str,
    /// The sender's new text (quoted history removed).
    pub text: &'a str,
    pub from: Option<&'a EmailAddress>,
    /// Every address the mail was sent to: To, Cc, Delivered-To, X-Original-To.
    pub recipients: &'a [EmailAddress],
    pub has_attachment: bool,
    pub headers: &'a [(String, String)],
}

/// What routing decided, with the rule and the words that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Routing {
    pub category: Category,
    pub priority: Priority,
    pub tier: Tier,
    /// The name of the rule that matched; `None` when none did (the `general` default).
    pub rule: Option<String>,
    /// The keywords, senders, addresses or headers that matched, as written in the rule.
    pub matched: Vec<String>,
    /// Each built-in category's score and the words behind it, best first (empty when an
    /// operator's rule decided).
    pub scores: Vec<CategoryScore>,
}

/// How strongly a mail points at one built-in category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CategoryScore {
    pub category: Category,
    pub score: u32,
    pub words: Vec<String>,
}

/// A generic word's weight; a specific word weighs [`SPECIFIC`], a sign of an attack
/// [`ALARM`]. A word in the subject counts twice.
const GENERIC: u32 = 1;
const SPECIFIC: u32 = 3;
const ALARM: u32 = 10;

/// One routing rule. Every condition given must hold; `keywords`, `senders` and `to` each
/// hold when any of their entries matches.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    keywords: Vec<Keyword>,
    senders: Vec<Pattern>,
    to: Vec<Pattern>,
    has_attachment: Option<bool>,
    headers: Vec<(String, WildMatch, String)>,
    pub category: Category,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
}

/// A rule's conditions as written in the configuration.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    pub name: String,
    pub keywords: Vec<String>,
    pub senders: Vec<String>,
    pub to: Vec<String>,
    pub has_attachment: Option<bool>,
    pub headers: BTreeMap<String, String>,
    pub category: Category,
    pub priority: Option<Priority>,
    pub tier: Option<Tier>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("keyword {0:?} has no letters or digits")]
    EmptyKeyword(String),
    #[error("the rule has no condition (keywords, senders, to, has_attachment or headers)")]
    NoCondition,
}

impl Rule {
    pub fn new(spec: RuleSpec) -> Result<Rule, RuleError> {
        let keywords = spec
            .keywords
            .iter()
            .map(|k| Keyword::new(k).ok_or_else(|| RuleError::EmptyKeyword(k.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let rule = Rule {
            name: spec.name,
            keywords,
            senders: spec.senders.iter().map(|s| Pattern::new(s)).collect(),
            to: spec.to.iter().map(|s| Pattern::new(s)).collect(),
            has_attachment: spec.has_attachment,
            headers: spec
                .headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_ascii_lowercase(),
                        WildMatch::new_case_insensitive(value),
                        format!("{name}: {value}"),
                    )
                })
                .collect(),
            category: spec.category,
            priority: spec.priority,
            tier: spec.tier,
        };
        if rule.keywords.is_empty()
            && rule.senders.is_empty()
            && rule.to.is_empty()
            && rule.has_attachment.is_none()
            && rule.headers.is_empty()
        {
            return Err(RuleError::NoCondition);
        }
        Ok(rule)
    }

    /// What matched, when every condition holds.
    fn matches(&self, input: &RouteInput<'_>, words: &Words) -> Option<Vec<String>> {
        let mut matched = Vec::new();
        if !self.keywords.is_empty() {
            let hits: Vec<String> = self
                .keywords
                .iter()
                .filter(|k| words.contains(&k.stems))
                .map(|k| k.written.clone())
                .collect();
            if hits.is_empty() {
                return None;
            }
            matched.extend(hits);
        }
        if !self.senders.is_empty() {
            let from = input.from?;
            let p = self.senders.iter().find(|p| p.matches(from))?;
            matched.push(format!("sender {}", p.written));
        }
        if !self.to.is_empty() {
            let p = self
                .to
                .iter()
                .find(|p| input.recipients.iter().any(|r| p.matches(r)))?;
            matched.push(format!("to {}", p.written));
        }
        if let Some(want) = self.has_attachment {
            if input.has_attachment != want {
                return None;
            }
            matched.push(format!("has_attachment = {want}"));
        }
        for (name, value, written) in &self.headers {
            let found = input
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && value.matches(v.trim()));
            if !found {
                return None;
            }
            matched.push(format!("header {written}"));
        }
        Some(matched)
    }
}

/// An address pattern: `alice@example.com`, `*@rh.example.com`, or a bare domain
/// (`example.com`, which also covers its subdomains).
#[derive(Clone, Debug)]
struct Pattern {
    written: String,
    kind: PatternKind,
}

#[derive(Clone, Debug)]
enum PatternKind {
    Address(WildMatch),
    Domain(String),
}

impl Pattern {
    fn new(written: &str) -> Pattern {
        let lower = written.trim().to_lowercase();
        let kind = if lower.contains('@') {
            PatternKind::Address(WildMatch::new(&lower))
        } else {
            PatternKind::Domain(lower.trim_start_matches("*.").to_string())
        };
        Pattern {
            written: written.to_string(),
            kind,
        }
    }

    fn matches(&self, address: &EmailAddress) -> bool {
        match &self.kind {
            PatternKind::Address(w) => w.matches(address.as_str()),
            PatternKind::Domain(d) => {
                let domain = address.domain();
                domain == d || domain.ends_with(&format!(".{d}"))
            }
        }
    }
}

/// A keyword or phrase, reduced to the stems of its words.
#[derive(Clone, Debug)]
struct Keyword {
    written: String,
    stems: Vec<String>,
    weight: u32,
}

impl Keyword {
    fn new(written: &str) -> Option<Keyword> {
        let stems = stems(written);
        (!stems.is_empty()).then(|| Keyword {
            written: written.to_string(),
            stems,
            weight: SPECIFIC,
        })
    }
}

/// How many other words may stand between two words of a keyword phrase.
const PHRASE_GAP: usize = 2;

/// The stems of a text's words, in order, indexed by stem so that each keyword costs one
/// look-up however long the mail is.
struct Words {
    stems: Vec<String>,
    at: HashMap<String, Vec<usize>>,
}

/// How much of a mail's text routing reads: a request says what it is about near the top,
/// and a 10 MB body must not hold the write lock while it is scanned.
const ROUTED_CHARS: usize = 20_000;

impl Words {
    fn of(text: &str) -> Words {
        let cut = text
            .char_indices()
            .nth(ROUTED_CHARS)
            .map_or(text.len(), |(i, _)| i);
        let stems = stems(&text[..cut]);
        let mut at: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in stems.iter().enumerate() {
            at.entry(s.clone()).or_default().push(i);
        }
        Words { stems, at }
    }

    /// The same words without any occurrence of the (exactly consecutive) phrases.
    fn without(&self, phrases: &std::sync::LazyLock<Vec<Vec<String>>>) -> Words {
        let mut kept = Vec::with_capacity(self.stems.len());
        let mut i = 0;
        'outer: while i < self.stems.len() {
            for p in phrases.iter() {
                if self.stems[i..].starts_with(p) {
                    i += p.len();
                    continue 'outer;
                }
            }
            kept.push(self.stems[i].clone());
            i += 1;
        }
        let mut at: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in kept.iter().enumerate() {
            at.entry(s.clone()).or_default().push(i);
        }
        Words { stems: kept, at }
    }

    /// Whether `phrase`'s words occur in order, each at most [`PHRASE_GAP`] words after
    /// the one before: "compte bloqué" is found in "mon compte a été bloqué".
    fn contains(&self, phrase: &[String]) -> bool {
        let Some((first, rest)) = phrase.split_first() else {
            return false;
        };
        let Some(starts) = self.at.get(first) else {
            return false;
        };
        starts.iter().any(|&start| {
            let mut at = start;
            rest.iter().all(|next| {
                let window = &self.stems[at + 1..(at + 2 + PHRASE_GAP).min(self.stems.len())];
                match window.iter().position(|w| w == next) {
                    Some(i) => {
                        at += 1 + i;
                        true
                    }
                    None => false,
                }
            })
        })
    }
}

/// Lower-cased, accent-free words, each cut to a light stem. "Imprimantes bloquées" gives
/// `["imprimant", "bloqu"]`, as does "imprimante bloquee".
pub fn stems(text: &str) -> Vec<String> {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            // Most of a mail: no decomposition to do.
            folded.push(if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                ' '
            });
            continue;
        }
        for d in std::iter::once(c)
            .nfd()
            .filter(|d| !is_combining_mark(*d))
            .flat_map(char::to_lowercase)
        {
            folded.push(match d {
                'œ' => 'o',
                'æ' => 'a',
                'ß' => 's',
                d if d.is_alphanumeric() => d,
                _ => ' ',
            });
        }
    }
    folded.split_whitespace().map(stem).collect()
}

/// Plural, `-ing`, `-ed`, French `-er` and final `e`s off; enough for the two languages'
/// common forms of the same word to meet, not a linguistic stemmer.
fn stem(word: &str) -> String {
    let mut w = word;
    let chars = |w: &str| w.chars().count();
    if chars(w) > 3 && (w.ends_with('s') || w.ends_with('x')) {
        w = &w[..w.len() - 1];
    }
    if chars(w) > 5 && w.ends_with("ing") {
        w = &w[..w.len() - 3];
    } else if (chars(w) > 4 && w.ends_with("ed")) || (chars(w) > 5 && w.ends_with("er")) {
        w = &w[..w.len() - 2];
    }
    while chars(w) > 4 && w.ends_with('e') {
        w = &w[..w.len() - 1];
    }
    w.to_string()
}

/// The operator's rules, tried in order, then the built-in categories, scored.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    custom: Vec<Rule>,
    builtin: Vec<Rule>,
}

impl Rules {
    /// Every category a ticket can be put in: the rules' own (custom, then built-in) and
    /// `general`, where a mail no rule matches goes. What `#category` accepts.
    pub fn categories(&self) -> Vec<Category> {
        let mut all: Vec<Category> = Vec::new();
        for rule in self.custom.iter().chain(&self.builtin) {
            if !all.contains(&rule.category) {
                all.push(rule.category.clone());
            }
        }
        if !all.contains(&Category::general()) {
            all.push(Category::general());
        }
        all
    }

    /// `custom` first, then the built-in IT support set when `builtin` is true.
    pub fn new(custom: Vec<Rule>, builtin: bool) -> Rules {
        Rules {
            custom,
            builtin: if builtin { builtin_rules() } else { Vec::new() },
        }
    }

    pub fn len(&self) -> usize {
        self.custom.len() + self.builtin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first matching operator's rule, else the best-scored built-in category; a field
    /// the rule leaves out takes its category's default (so a user rule saying only
    /// `category = "security"` still sends the ticket to L2 as urgent). Nothing: `general`,
    /// normal, L1.
    pub fn route(&self, input: &RouteInput<'_>) -> Routing {
        let cut = input
            .text
            .char_indices()
            .nth(ROUTED_CHARS)
            .map_or(input.text.len(), |(i, _)| i);
        let words = Words::of(&format!("{}\n{}", input.subject, &input.text[..cut]));
        let decided = |rule: &Rule, matched: Vec<String>, scores: Vec<CategoryScore>| {
            let (tier, priority) = category_defaults(&rule.category);
            Routing {
                category: rule.category.clone(),
                priority: rule.priority.unwrap_or(priority),
                tier: rule.tier.unwrap_or(tier),
                rule: Some(rule.name.clone()),
                matched,
                scores,
            }
        };
        for rule in &self.custom {
            if let Some(matched) = rule.matches(input, &words) {
                return decided(rule, matched, Vec::new());
            }
        }
        // "Copie d'écran" is a screenshot, not a screen: such phrases say nothing of the
        // request's category and are taken out before scoring.
        let words = words.without(&NEUTRAL_PHRASES);
        let subject = Words::of(input.subject).without(&NEUTRAL_PHRASES);
        let mut scored: Vec<(u32, usize, Vec<String>)> = Vec::new();
        for (i, rule) in self.builtin.iter().enumerate() {
            let mut score = 0;
            let mut hits = Vec::new();
            for k in rule.keywords.iter().filter(|k| words.contains(&k.stems)) {
                let twice = if subject.contains(&k.stems) { 2 } else { 1 };
                score += k.weight * twice;
                hits.push(k.written.clone());
            }
            if score > 0 {
                scored.push((score, i, hits));
            }
        }
        // Best first; a tie goes to the category listed first (security before the rest).
        scored.sort_by_key(|(score, i, _)| (std::cmp::Reverse(*score), *i));
        let scores: Vec<CategoryScore> = scored
            .iter()
            .map(|(score, i, words)| CategoryScore {
                category: self.builtin[*i].category.clone(),
                score: *score,
                words: words.clone(),
            })
            .collect();
        match scored.first() {
            Some((_, i, hits)) => decided(&self.builtin[*i], hits.clone(), scores),
            None => Routing {
                category: Category::general(),
                priority: Priority::Normal,
                tier: Tier::L1FrontLine,
                rule: None,
                matched: Vec::new(),
                scores,
            },
        }
    }
}

/// The starting tier and priority of a category when a rule does not say.
pub fn category_defaults(category: &Category) -> (Tier, Priority) {
    match category.as_str() {
        "security" => (Tier::L2Advanced, Priority::Urgent),
        _ => (Tier::L1FrontLine, Priority::Normal),
    }
}

/// The built-in categories, in the order they are tried: security first, because a
/// phishing mail that mentions Outlook is a security matter before it is a mail problem;
/// software before hardware, because "Teams crashes when I share my screen" is software.
pub const BUILTIN_CATEGORIES: &[(&str, &[&str])] = &[
    (
        "security",
        &[
            "virus",
            "antivirus",
            "malware",
            "ransomware",
            "rançongiciel",
            "rancongiciel",
            "hameçonnage",
            "hameconnage",
            "phishing",
            "piratage",
            "piraté",
            "pirate",
            "hacked",
            "hacker",
            "compromised",
            "compromis",
            "spyware",
            "trojan",
            "cheval de troie",
            "fuite de données",
            "data breach",
            "mail frauduleux",
            "suspicious email",
            "suspicious link",
            "lien suspect",
            "mail suspect",
            "courriel suspect",
            "arnaque",
            "scam",
            "chiffré mes fichiers",
            "encrypted my files",
        ],
    ),
    (
        "account",
        &[
            "mot de passe",
            "mdp",
            "password",
            "passwd",
            "compte bloqué",
            "compte verrouillé",
            "compte désactivé",
            "locked out",
            "account locked",
            "account disabled",
            "mfa",
            "2fa",
            "double authentification",
            "authentification",
            "authenticator",
            "two factor",
            "two-factor",
            "identifiant",
            "identifiants",
            "login",
            "log in",
            "connexion impossible",
            "can't log",
            "cannot log",
            "unable to log",
            "sign in",
            "se connecter",
            "reset my password",
            "réinitialiser",
            "username",
            "nom d'utilisateur",
            "session",
            "otp",
        ],
    ),
    (
        "printer",
        &[
            "imprimante",
            "imprimer",
            "impression",
            "bourrage",
            "toner",
            "cartouche",
            "printer",
            "print",
            "printing",
            "paper jam",
            "scanner",
            "photocopieur",
            "photocopieuse",
            "copieur",
            "multifonction",
            "copy machine",
            "bac papier",
            "paper tray",
            "spooler",
        ],
    ),
    (
        "network",
        &[
            "vpn",
            "wifi",
            "wi-fi",
            "réseau",
            "network",
            "internet",
            "pas d'internet",
            "no connection",
            "no internet",
            "pas de connexion",
            "connexion internet",
            "ethernet",
            "câble réseau",
            "network cable",
            "dns",
            "proxy",
            "firewall",
            "pare-feu",
            "borne",
            "access point",
            "ping",
            "latence",
            "latency",
            "débit",
            "bandwidth",
            "slow connection",
            "connexion lente",
        ],
    ),
    (
        "email",
        &[
            "messagerie",
            "outlook",
            "boîte mail",
            "boite mail",
            "boîte pleine",
            "boîte aux lettres",
            "mailbox",
            "mailbox full",
            "can't send mail",
            "cannot send mail",
            "can't send email",
            "cannot send email",
            "can't receive email",
            "recevoir de mails",
            "recevoir mes mails",
            "envoyer de mails",
            "envoyer des mails",
            "mes mails",
            "my emails",
            "webmail",
            "thunderbird",
            "exchange",
            "calendrier partagé",
            "shared calendar",
            "signature mail",
            "email signature",
        ],
    ),
    (
        "software",
        &[
            "logiciel",
            "application",
            "appli",
            "installer",
            "installation",
            "licence",
            "license",
            "plantage",
            "plante",
            "crash",
            "crashes",
            "freeze",
            "figé",
            "bug",
            "mise à jour",
            "mise a jour",
            "update",
            "upgrade",
            "install",
            "software",
            "excel",
            "microsoft word",
            "powerpoint",
            "teams",
            "office",
            "navigateur",
            "browser",
            "chrome",
            "firefox",
            "erreur",
            "error",
            "message d'erreur",
        ],
    ),
    (
        "hardware",
        &[
            "écran",
            "ecran",
            "clavier",
            "souris",
            "pc portable",
            "ordinateur portable",
            "ordinateur",
            "laptop",
            "desktop",
            "screen",
            "monitor",
            "keyboard",
            "mouse",
            "disque",
            "disque dur",
            "hard drive",
            "ssd",
            "batterie",
            "battery",
            "chargeur",
            "charger",
            "dock",
            "station d'accueil",
            "docking station",
            "casque",
            "headset",
            "webcam",
            "ne démarre plus",
            "won't turn on",
            "won't boot",
            "pc",
            "computer",
            "téléphone",
            "phone",
            "tablette",
            "tablet",
            "usb",
        ],
    ),
    (
        "access",
        &[
            "droits",
            "droit d'accès",
            "accès au dossier",
            "accès",
            "acces",
            "partage",
            "dossier partagé",
            "permission",
            "permissions",
            "access request",
            "access to",
            "shared drive",
            "shared folder",
            "lecteur réseau",
            "network drive",
            "habilitation",
            "autorisation",
            "authorization",
            "sharepoint",
            "onedrive",
        ],
    ),
];

/// Phrases whose words would otherwise count for a category they are not about.
static NEUTRAL_PHRASES: std::sync::LazyLock<Vec<Vec<String>>> = std::sync::LazyLock::new(|| {
    [
        "copie d'écran",
        "capture d'écran",
        "impression d'écran",
        "screenshot",
        "print screen",
        "en copie",
        "in copy",
        "mis en copie",
    ]
    .iter()
    .map(|p| stems(p))
    .collect()
});

/// Built-in words that say little on their own: they count, but a specific word of
/// another category outweighs three of them.
const GENERIC_WORDS: &[&str] = &[
    "mot de passe",
    "mdp",
    "password",
    "passwd",
    "authentification",
    "identifiant",
    "identifiants",
    "login",
    "log in",
    "sign in",
    "se connecter",
    "connexion impossible",
    "session",
    "username",
    "nom d'utilisateur",
    "réinitialiser",
    "print",
    "impression",
    "internet",
    "pas de connexion",
    "no connection",
    "accès",
    "acces",
    "access to",
    "droits",
    "partage",
    "autorisation",
    "authorization",
    "permission",
    "permissions",
    "application",
    "appli",
    "installer",
    "installation",
    "install",
    "update",
    "upgrade",
    "mise à jour",
    "mise a jour",
    "erreur",
    "error",
    "message d'erreur",
    "bug",
    "plante",
    "office",
    "pc",
    "computer",
    "ordinateur",
    "phone",
    "téléphone",
    "usb",
    "exchange",
    "mes mails",
    "my emails",
    "disque",
    "compromis",
    "pirate",
];

fn builtin_rules() -> Vec<Rule> {
    BUILTIN_CATEGORIES
        .iter()
        .map(|(category, keywords)| {
            let mut rule = Rule::new(RuleSpec {
                name: format!("built-in: {category}"),
                keywords: keywords.iter().map(|k| k.to_string()).collect(),
                category: category.parse().expect("built-in category ids are valid"),
                ..RuleSpec::default()
            })
            .expect("built-in rules have keywords");
            // "hameçonnage" and "hameconnage" are one word to the stemmer: listed once.
            let mut seen = std::collections::HashSet::new();
            rule.keywords.retain(|k| seen.insert(k.stems.clone()));
            for k in &mut rule.keywords {
                k.weight = if GENERIC_WORDS.contains(&k.written.as_str()) {
                    GENERIC
                } else if *category == "security" {
                    ALARM
                } else {
                    SPECIFIC
                };
            }
            rule
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(subject: &'a str, text: &'a str) -> RouteInput<'a> {
        RouteInput {
            subject,
            text,
            from: None,
            recipients: &[],
            has_attachment: false,
            headers: &[],
        }
    }

    /// Every category is scored; the specific word outweighs the generic ones, a word of
    /// the subject counts twice, and each word is listed once however it is spelt.
    #[test]
    fn the_evidence_decides_not_the_first_common_word() {
        let rules = Rules::new(Vec::new(), true);
        let r = rules.route(&input(
            "VPN",
            "le VPN refuse de se connecter, il redemande le mot de passe",
        ));
        assert_eq!(r.category.as_str(), "network");
        let score = |cat: &str| {
            r.scores
                .iter()
                .find(|s| s.category.as_str() == cat)
                .map(|s| (s.score, s.words.clone()))
        };
        assert_eq!(
            score("network"),
            Some((2 * SPECIFIC, vec!["vpn".to_string()]))
        );
        assert_eq!(
            score("account"),
            Some((
                2 * GENERIC,
                vec!["mot de passe".to_string(), "se connecter".to_string()]
            ))
        );
        assert_eq!(r.scores[0].category.as_str(), "network");
        let r = rules.route(&input("Hameçonnage", "hameconnage, hameçonnage !"));
        assert_eq!(r.scores[0].words, vec!["hameçonnage".to_string()]);
        // "en copie" is not a copier.
        let r = rules.route(&input("Accès", "Mon responsable est en copie."));
        assert_eq!(r.category.as_str(), "access");
        assert!(r.scores.iter().all(|s| s.category.as_str() != "printer"));
    }

    #[test]
    fn plurals_accents_and_case_meet_the_same_stem() {
        assert_eq!(stems("Imprimantes"), stems("imprimante"));
        assert_eq!(stems("PRINTERS"), stems("printer"));
        assert_eq!(stems("bloquée"), stems("bloque"));
        assert_eq!(stems("réseau"), stems("reseau"));
        assert_eq!(stems("crashed"), stems("crash"));
        assert_eq!(stems("pas d'internet"), vec!["pas", "d", "internet"]);
    }

    #[test]
    fn keywords_match_whole_words_only() {
        let rules = Rules::new(Vec::new(), true);
        // "vpn" inside another word and "pc" inside "spécial" are not keywords.
        let r = rules.route(&input("Demande spéciale", "Merci de m'envoyer le devis"));
        assert_eq!(r.category.as_str(), "general");
        assert_eq!(r.rule, None);
    }

    #[test]
    fn the_first_matching_rule_wins_and_says_what_matched() {
        let rules = Rules::new(Vec::new(), true);
        let r = rules.route(&input("Mail de phishing dans Outlook", ""));
        assert_eq!(r.category.as_str(), "security");
        assert_eq!((r.tier, r.priority), (Tier::L2Advanced, Priority::Urgent));
        assert_eq!(r.matched, vec!["phishing"]);
        assert_eq!(r.rule.as_deref(), Some("built-in: security"));
    }

    #[test]
    fn user_rules_come_first_and_every_condition_must_hold() {
        let from = EmailAddress::parse("paul@rh.example.com").unwrap();
        let other = EmailAddress::parse("paul@example.com").unwrap();
        let rule = Rule::new(RuleSpec {
            name: "payroll".into(),
            keywords: vec!["paie".into(), "payroll".into()],
            senders: vec!["*@rh.example.com".into()],
            has_attachment: Some(true),
            category: "software".parse().unwrap(),
            priority: Some(Priority::High),
            tier: Some(Tier::L2Advanced),
            ..RuleSpec::default()
        })
        .unwrap();
        let rules = Rules::new(vec![rule], true);
        let mut mail = input("Logiciel de paie en erreur", "");
        mail.from = Some(&from);
        mail.has_attachment = true;
        let r = rules.route(&mail);
        assert_eq!(r.rule.as_deref(), Some("payroll"));
        assert_eq!((r.tier, r.priority), (Tier::L2Advanced, Priority::High));
        assert_eq!(
            r.matched,
            vec!["paie", "sender *@rh.example.com", "has_attachment = true"]
        );
        mail.from = Some(&other);
        assert_eq!(
            rules.route(&mail).rule.as_deref(),
            Some("built-in: software")
        );
        mail.from = Some(&from);
        mail.has_attachment = false;
        assert_eq!(
            rules.route(&mail).rule.as_deref(),
            Some("built-in: software")
        );
    }

    #[test]
    fn the_support_address_written_to_and_headers_route() {
        let securite = EmailAddress::parse("securite@example.com").unwrap();
        let recipients = [securite];
        let headers = [("X-Priority".to_string(), "1 (Highest)".to_string())];
        let by_address = Rule::new(RuleSpec {
            name: "security desk".into(),
            to: vec!["securite@example.com".into()],
            category: "security".parse().unwrap(),
            ..RuleSpec::default()
        })
        .unwrap();
        let by_header = Rule::new(RuleSpec {
            name: "flagged".into(),
            headers: [("x-priority".to_string(), "1*".to_string())].into(),
            category: "general".parse().unwrap(),
            priority: Some(Priority::High),
            ..RuleSpec::default()
        })
        .unwrap();
        let rules = Rules::new(vec![by_address, by_header], false);
        let mut mail = input("Question", "");
        mail.recipients = &recipients;
        let r = rules.route(&mail);
        // Category defaults fill in what the rule left out.
        assert_eq!(
            (r.category.as_str(), r.tier, r.priority),
            ("security", Tier::L2Advanced, Priority::Urgent)
        );
        let mut mail = input("Question", "");
        mail.headers = &headers;
        let r = rules.route(&mail);
        assert_eq!(
            (r.rule.as_deref(), r.priority),
            (Some("flagged"), Priority::High)
        );
        assert_eq!(rules.route(&input("Question", "")).rule, None);
    }

    #[test]
    fn a_rule_without_conditions_or_with_an_empty_keyword_is_refused() {
        let spec = RuleSpec {
            name: "x".into(),
            ..RuleSpec::default()
        };
        assert_eq!(Rule::new(spec.clone()).unwrap_err(), RuleError::NoCondition);
        let spec = RuleSpec {
            keywords: vec!["  !! ".into()],
            ..spec
        };
        assert!(matches!(Rule::new(spec), Err(RuleError::EmptyKeyword(_))));
    }

    #[test]
    fn a_huge_mail_is_routed_from_its_first_pages_only() {
        let rules = Rules::new(Vec::new(), true);
        let filler = "bla ".repeat(250_000);
        let late = format!("{filler} printer");
        assert_eq!(
            rules.route(&input("Hello", &late)).category.as_str(),
            "general"
        );
        let early = format!("printer {filler}");
        assert_eq!(
            rules.route(&input("Hello", &early)).category.as_str(),
            "printer"
        );
    }

    #[test]
    fn a_bare_domain_covers_its_subdomains() {
        let p = Pattern::new("example.com");
        assert!(p.matches(&EmailAddress::parse("a@example.com").unwrap()));
        assert!(p.matches(&EmailAddress::parse("a@rh.example.com").unwrap()));
        assert!(!p.matches(&EmailAddress::parse("a@badexample.com").unwrap()));
    }
}
