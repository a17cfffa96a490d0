//! What the desk says about its own work, in the reader's language: why a ticket moved,
//! what a command did or why it was refused, when a target falls due. `decide` builds a
//! typed [`Notice`]; the words are chosen when the mail is rendered, for its recipient, so
//! a French mail never carries an English sentence made deep in the decision code.
//!
//! The English words (`Display`) are also what the event log records.

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;

use crate::clock::Millis;
use crate::desk::mail_command::{CommandLineError, Expected};
use crate::domain::{
    Category, EmailAddress, Language, Priority, ReferenceCode, Refusal, TicketStatus, Tier,
};
use crate::roster::Roster;

/// One of the desk's service targets, as people name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    FirstResponse,
    Resolution,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::FirstResponse => "first_response",
            Target::Resolution => "resolution",
        }
    }

    fn words(self, language: Language) -> &'static str {
        match (self, language) {
            (Target::FirstResponse, Language::Fr) => "première réponse",
            (Target::Resolution, Language::Fr) => "résolution",
            (Target::FirstResponse, Language::En) => "first response",
            (Target::Resolution, Language::En) => "resolution",
        }
    }
}

/// A sentence a person reads about the desk's work.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// A person's own words (an escalation reason an agent typed): shown as written.
    Written(String),
    /// Several notices, read one after the other.
    All(Vec<Notice>),
    // What a command did (an agent's receipt).
    StatusMoved {
        from: TicketStatus,
        to: TicketStatus,
    },
    TierMoved {
        from: Tier,
        to: Tier,
        assignee: Option<String>,
    },
    AssignedTo(String),
    AssignedToYou,
    PriorityMoved {
        from: Priority,
        to: Priority,
    },
    CategoryMoved {
        from: Category,
        to: Category,
    },
    WillReceiveReplies(EmailAddress),
    InternalNote,
    /// A command the ticket's state refused.
    Refused(Refusal),
    /// A command line that could not be read.
    NotUnderstood(CommandLineError),
    /// A roster address whose mail was not authenticated: handled as a stranger's.
    NotTakenAsYours,
    // Why a ticket moved or why an agent is told (reasons).
    /// The mail asks for answers at another domain's address, which was not used.
    ReplyToOutside(EmailAddress),
    /// More addresses in Cc than the desk takes from one mail.
    CcLeftOut {
        count: usize,
        max: usize,
        shown: Vec<EmailAddress>,
    },
    /// Someone not on the ticket quoted its code.
    Stranger {
        from: EmailAddress,
        code: ReferenceCode,
        /// Their mail became a new ticket (else it is held in quarantine).
        filed_as_new: bool,
        /// They wrote from a vendor's address without authentication.
        vendor: Option<String>,
    },
    /// Command lines from a sender not on the roster.
    CommandsFromOutsider,
    CustomerSolved,
    /// A self-service hold ended: the ticket comes to a person.
    SelfServiceEnded(crate::desk::events::HoldEnd),
    /// `#article ID`: the article went into the reply.
    ArticleAdded(String),
    /// `#article ID` with an id the knowledge base does not have; the closest ones.
    UnknownArticle {
        id: String,
        closest: Vec<String>,
    },
    FollowsClosed(ReferenceCode),
    ReopenedTimes(u32),
    TargetsMissed(Vec<(Target, Option<Millis>)>),
    TargetsNear(Vec<(Target, Option<Millis>)>),
    VendorSilent {
        vendor: String,
        since: Option<Millis>,
    },
    /// A moment, for the reminder ("we will consider it resolved on …").
    On(Millis),
    SentToVendor,
}

/// What a notice needs to be put in words: the desk's labels and its time zone.
#[derive(Clone, Copy)]
pub struct Wording<'a> {
    pub roster: &'a Roster,
    pub time_zone: Tz,
}

impl Notice {
    /// The notice in `language`, with the desk's labels and time zone.
    pub fn words(&self, language: Language, w: &Wording<'_>) -> String {
        let fr = language == Language::Fr;
        let status = |s: TicketStatus| crate::render::status_label(s, language);
        let priority = |p: Priority| crate::render::priority_label(p, language);
        let tier = |t: Tier| w.roster.tier_label(t, language);
        let category = |c: &Category| w.roster.category_label(c, language);
        let when = |at: Option<Millis>| match at {
            Some(at) => moment(
                crate::timing::instant(at).with_timezone(&w.time_zone),
                language,
            ),
            None => String::new(),
        };
        match self {
            Notice::Written(text) => text.clone(),
            Notice::All(all) => all
                .iter()
                .map(|n| n.words(language, w))
                .collect::<Vec<_>>()
                .join(if fr { " ; " } else { "; " }),
            Notice::StatusMoved { from, to } => format!("{} → {}", status(*from), status(*to)),
            Notice::TierMoved { from, to, assignee } => {
                let who = match (assignee, fr) {
                    (Some(a), true) => format!("attribué à {a}"),
                    (Some(a), false) => format!("assigned to {a}"),
                    (None, true) => "sans attribution".into(),
                    (None, false) => "unassigned".into(),
                };
                format!("{} → {}, {who}", tier(*from), tier(*to))
            }
            Notice::AssignedTo(a) if fr => format!("attribué à {a}"),
            Notice::AssignedTo(a) => format!("assigned to {a}"),
            Notice::AssignedToYou if fr => "il vous est attribué".into(),
            Notice::AssignedToYou => "assigned to you".into(),
            Notice::PriorityMoved { from, to } if fr => {
                format!("priorité {} → {}", priority(*from), priority(*to))
            }
            Notice::PriorityMoved { from, to } => {
                format!("priority {} → {}", priority(*from), priority(*to))
            }
            Notice::CategoryMoved { from, to } if fr => {
                format!("catégorie {} → {}", category(from), category(to))
            }
            Notice::CategoryMoved { from, to } => {
                format!("category {} → {}", category(from), category(to))
            }
            Notice::WillReceiveReplies(a) if fr => format!("{a} recevra les réponses"),
            Notice::WillReceiveReplies(a) => format!("{a} will receive the replies"),
            Notice::InternalNote if fr => "ce message est une note interne".into(),
            Notice::InternalNote => "this mail is an internal note".into(),
            Notice::Refused(r) => refusal(r, language, w),
            Notice::NotUnderstood(e) => not_understood(e, language),
            Notice::NotTakenAsYours if fr => "votre message n'a pas pu être authentifié comme venant de vous (ni par le serveur de confiance, ni par une signature DKIM) : il a été traité comme celui d'un inconnu et ses commandes ont été ignorées".into(),
            Notice::NotTakenAsYours => "your mail could not be authenticated as yours (neither by the trusted server nor by a DKIM signature): it was handled as a stranger's mail and its commands were ignored".into(),
            Notice::ReplyToOutside(a) if fr => format!(
                "le message demande que les réponses aillent à {a}, hors du domaine de l'expéditeur : adresse non retenue (écrivez #cc {a} pour l'ajouter)"
            ),
            Notice::ReplyToOutside(a) => format!(
                "the mail asks for answers to go to {a}, outside the sender's domain: not used (write #cc {a} to add them)"
            ),
            Notice::CcLeftOut { count, max, shown } => cc_left_out(*count, *max, shown, fr),
            Notice::Stranger {
                from,
                code,
                filed_as_new,
                vendor,
            } => stranger(from, code, *filed_as_new, vendor.as_deref(), fr),
            Notice::CommandsFromOutsider if fr => "les lignes commençant par # n'ont pas été appliquées : l'expéditeur ne fait pas partie de l'équipe".into(),
            Notice::CommandsFromOutsider => "lines starting with # were not applied: the sender is not on the roster".into(),
            Notice::CustomerSolved if fr => "le client indique que sa demande est réglée : le ticket est résolu".into(),
            Notice::CustomerSolved => "the customer marked the request solved; the ticket is resolved".into(),
            Notice::SelfServiceEnded(end) => self_service_ended(*end, fr).into(),
            Notice::ArticleAdded(id) if fr => format!("l'article {id} a été ajouté à votre réponse au client"),
            Notice::ArticleAdded(id) => format!("article {id} was added to your reply to the customer"),
            Notice::UnknownArticle { id, closest } => unknown_article(id, closest, fr),
            Notice::FollowsClosed(code) if fr => format!(
                "le client a écrit de nouveau sur le ticket clôturé {code} : ce ticket en est la suite"
            ),
            Notice::FollowsClosed(code) => format!(
                "the customer wrote again on closed ticket {code}: this ticket follows it"
            ),
            Notice::ReopenedTimes(n) if fr => format!("rouvert {n} fois"),
            Notice::ReopenedTimes(n) => format!("reopened {n} times"),
            Notice::TargetsMissed(targets) => targets_words(targets, true, language, &when),
            Notice::TargetsNear(targets) => targets_words(targets, false, language, &when),
            Notice::VendorSilent { vendor, since } if fr => {
                format!("{vendor} n'a pas répondu depuis {}", when(*since))
            }
            Notice::VendorSilent { vendor, since } => {
                format!("{vendor} has not answered since {}", when(*since))
            }
            Notice::On(at) => when(Some(*at)),
            Notice::SentToVendor if fr => "transmis à un fournisseur".into(),
            Notice::SentToVendor => "sent to a vendor".into(),
        }
    }
}

/// Addresses in Cc left out of the ticket (over the desk's limit).
fn cc_left_out(count: usize, max: usize, shown: &[EmailAddress], fr: bool) -> String {
    let mut list = shown
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if count > shown.len() {
        list.push_str(", …");
    }
    if fr {
        format!(
            "{count} adresse(s) en copie n'ont pas été ajoutées au ticket (au plus {max} par message) : {list} (écrivez #cc ADRESSE pour en ajouter une)"
        )
    } else {
        format!(
            "{count} address(es) in Cc were not made participants (at most {max} per mail): {list} (write #cc ADDRESS to add one)"
        )
    }
}

/// Why a stranger's mail quoting a ticket did not join it.
fn stranger(
    from: &EmailAddress,
    code: &ReferenceCode,
    filed_as_new: bool,
    vendor: Option<&str>,
    fr: bool,
) -> String {
    let who = match (vendor, fr) {
        (Some(v), true) => format!(
            "{from} écrit au nom du fournisseur {v}, mais le message n'a pas été authentifié : il est traité comme un inconnu, ne vous fiez pas à son contenu"
        ),
        (Some(v), false) => format!(
            "{from} writes as vendor {v} but the mail was not authenticated; they are treated as a stranger: do not trust its content"
        ),
        (None, true) => format!("{from} ne fait pas partie du ticket {code}"),
        (None, false) => format!("{from} is not on ticket {code}"),
    };
    let what = match (filed_as_new, fr) {
        (true, true) => "il a été enregistré comme ce nouveau ticket".to_string(),
        (true, false) => "it was filed as this new ticket".to_string(),
        (false, true) => format!("il est retenu en quarantaine pour examen (ticket {code})"),
        (false, false) => format!("it is held in quarantine for review (ticket {code})"),
    };
    if fr {
        format!(
            "{who}, et son message cite le code du ticket {code} : {what}, et rien du ticket {code} ne lui a été envoyé"
        )
    } else {
        format!(
            "{who}, and their mail quotes the code of ticket {code}: {what}, and they were sent nothing of ticket {code}"
        )
    }
}

/// Targets missed (`missed`) or near, each with its due moment.
fn targets_words(
    targets: &[(Target, Option<Millis>)],
    missed: bool,
    language: Language,
    when: &dyn Fn(Option<Millis>) -> String,
) -> String {
    let fr = language == Language::Fr;
    targets
        .iter()
        .map(|(t, at)| match (missed, fr) {
            (true, true) => format!(
                "délai de {} dépassé (échéance {})",
                t.words(language),
                when(*at)
            ),
            (true, false) => format!("{} target missed (due {})", t.words(language), when(*at)),
            (false, true) => format!("{} attendue au plus tard {}", t.words(language), when(*at)),
            (false, false) => format!("{} due {}", t.words(language), when(*at)),
        })
        .collect::<Vec<_>>()
        .join(if fr { " ; " } else { "; " })
}

fn self_service_ended(end: crate::desk::events::HoldEnd, fr: bool) -> &'static str {
    use crate::desk::events::HoldEnd;
    match (end, fr) {
        (HoldEnd::Replied, true) => {
            "le client a reçu des articles de la base de connaissances et a répondu sans indiquer que c'était réglé"
        }
        (HoldEnd::Replied, false) => {
            "the customer was sent knowledge-base articles and wrote back without saying it was solved"
        }
        (HoldEnd::TimeUp, true) => {
            "le client a reçu des articles de la base de connaissances et n'a pas indiqué que c'était réglé dans le délai de libre-service"
        }
        (HoldEnd::TimeUp, false) => {
            "the customer was sent knowledge-base articles and did not say it was solved within the self-service time"
        }
    }
}

fn unknown_article(id: &str, closest: &[String], fr: bool) -> String {
    let list = closest.join(", ");
    match (closest.is_empty(), fr) {
        (true, true) => format!(
            "la base de connaissances n'a pas d'article « {id} » (elle est vide) : rien n'a été envoyé"
        ),
        (true, false) => {
            format!("the knowledge base has no article \"{id}\" (it is empty): nothing was sent")
        }
        (false, true) => format!(
            "la base de connaissances n'a pas d'article « {id} » : rien n'a été envoyé ; les plus proches : {list}"
        ),
        (false, false) => format!(
            "the knowledge base has no article \"{id}\": nothing was sent; the closest: {list}"
        ),
    }
}

impl std::fmt::Display for Notice {
    /// The English words with the built-in labels, in UTC: what the event log keeps.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let roster = Roster::default();
        let w = Wording {
            roster: &roster,
            time_zone: Tz::UTC,
        };
        f.write_str(&self.words(Language::En, &w))
    }
}

/// "mardi 1er décembre à 10 h 30", "Tuesday 1 December at 10:30".
pub fn moment(at: DateTime<Tz>, language: Language) -> String {
    const JOURS: [&str; 7] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ];
    const MOIS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let weekday = at.weekday().num_days_from_monday() as usize;
    let month = at.month0() as usize;
    let (day, hour, minute) = (at.day(), at.hour(), at.minute());
    match language {
        Language::Fr => {
            let day = if day == 1 {
                "1er".to_string()
            } else {
                day.to_string()
            };
            let time = if minute == 0 {
                format!("{hour} h")
            } else {
                format!("{hour} h {minute:02}")
            };
            format!("{} {day} {} à {time}", JOURS[weekday], MOIS[month])
        }
        Language::En => format!(
            "{} {day} {} at {hour}:{minute:02}",
            DAYS[weekday], MONTHS[month]
        ),
    }
}

fn refusal(r: &Refusal, language: Language, w: &Wording<'_>) -> String {
    if language == Language::En {
        return r.to_string();
    }
    let status = |s: TicketStatus| crate::render::status_label(s, language);
    let tier = |t: Tier| w.roster.tier_label(t, language);
    match r {
        Refusal::AlreadyThere(s) => format!("le ticket est déjà {}", status(*s)),
        Refusal::Status { from, to } => format!(
            "un ticket {} ne peut pas passer à « {} »",
            status(*from),
            status(*to)
        ),
        Refusal::NotUp { from, to } => format!(
            "un ticket au {} ne peut pas aller au {} : l'escalade ne fait que monter",
            tier(*from),
            tier(*to)
        ),
        Refusal::TopTier(t) => format!("le ticket est déjà au {}, le plus haut niveau", tier(*t)),
        Refusal::Closed => "le ticket est clôturé : rouvrez-le d'abord (#rouvrir)".into(),
        Refusal::NotOnRoster(a) => format!(
            "{a} ne fait pas partie de l'équipe (ajoutez une entrée [[agents]] dans helpdesk.toml)"
        ),
        Refusal::AlreadyAssigned(a) => format!("le ticket est déjà attribué à {a}"),
        Refusal::NoSuchVendor { name, known } if known.is_empty() => format!(
            "aucun fournisseur ne s'appelle « {name} » : ajoutez une entrée [[vendors]] dans helpdesk.toml"
        ),
        Refusal::NoSuchVendor { name, known } => format!(
            "aucun fournisseur ne s'appelle « {name} » (fournisseurs connus : {})",
            known.join(", ")
        ),
        Refusal::AlreadyWithVendor(v) => {
            format!("le ticket est déjà chez {v}, dont on attend la réponse")
        }
        Refusal::VendorNeeded { known } if known.is_empty() => "le niveau 4 est celui des fournisseurs externes, et aucun n'est configuré ([[vendors]] dans helpdesk.toml)".into(),
        Refusal::VendorNeeded { known } => format!(
            "le niveau 4 passe par un fournisseur : nommez-le au début du motif (#escalader L4 {} …) ; fournisseurs : {}",
            known[0],
            known.join(", ")
        ),
        Refusal::WaitOutOfRange(d) => format!(
            "une attente de {} n'est pas comprise entre une minute et un an",
            humantime::format_duration(*d)
        ),
        Refusal::SamePriority(p) => format!(
            "la priorité est déjà {}",
            crate::render::priority_label(*p, language)
        ),
        Refusal::SameCategory(c) => {
            format!("la catégorie est déjà {}", w.roster.category_label(c, language))
        }
        Refusal::NoSuchCategory { name, known } => format!(
            "aucune catégorie ne s'appelle « {} » (catégories connues : {} ; d'autres viennent des [[routing.rules]] de helpdesk.toml)",
            name.as_str(),
            known.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ")
        ),
        Refusal::SupportAddress => "c'est l'adresse du support".into(),
        Refusal::NotReopenable(s) => {
            format!("le ticket est {}, ni résolu ni clôturé", status(*s))
        }
    }
}

/// Shown beside the command line as written, so the command's name is not repeated.
fn not_understood(e: &CommandLineError, language: Language) -> String {
    if language == Language::En {
        return match e {
            CommandLineError::Unknown(_) => e.to_string(),
            CommandLineError::Missing { what, .. } => format!("needs {what}"),
            CommandLineError::BadValue { value, what, .. } => format!("{value:?} is not {what}"),
        };
    }
    match e {
        CommandLineError::Unknown(name) => format!(
            "commande #{name} inconnue ; les commandes sont {}",
            crate::desk::mail_command::COMMAND_LIST_FR
        ),
        CommandLineError::Missing { what, .. } => {
            format!("il manque {}", expected_fr(*what))
        }
        CommandLineError::BadValue { value, what, .. } => {
            format!("« {value} » n'est pas {}", expected_fr(*what))
        }
    }
}

fn expected_fr(what: Expected) -> &'static str {
    match what {
        Expected::Tier => "un niveau (L2, L3 ou L4)",
        Expected::AgentAddress => "l'adresse d'un membre de l'équipe",
        Expected::Address => "une adresse e-mail",
        Expected::Priority => "une priorité : basse, normale, haute ou urgente",
        Expected::Category => "une catégorie, par exemple imprimante (printer)",
        Expected::Duration => "une durée d'au plus un an, par exemple 3j ou 12h",
        Expected::ArticleId => "l'identifiant d'un article, par exemple vpn-erreurs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_moment_reads_as_people_write_it() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let at = paris.with_ymd_and_hms(2026, 12, 1, 10, 30, 0).unwrap();
        assert_eq!(moment(at, Language::Fr), "mardi 1er décembre à 10 h 30");
        assert_eq!(moment(at, Language::En), "Tuesday 1 December at 10:30");
        let at = paris.with_ymd_and_hms(2026, 12, 4, 9, 0, 0).unwrap();
        assert_eq!(moment(at, Language::Fr), "vendredi 4 décembre à 9 h");
    }
}
