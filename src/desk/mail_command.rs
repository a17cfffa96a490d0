//! Commands an agent writes at the top of a mail: `#resolve`, `#escalate L3 needs a DBA`,
//! `#priorité haute`… Pure parsing; what a command does is `decide_command`'s business.
//!
//! Only the lines at the very top count: blank lines, then lines starting with `#`; the
//! first other line starts the reply. A line that looks like a command but is not one is
//! an error to report in the receipt, never silently ignored and never sent on to the
//! customer.

use std::time::Duration;

use crate::domain::{Category, EmailAddress, Priority, Tier};

/// One command from a mail, before it meets a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MailCommand {
    Resolve,
    Close,
    Reopen,
    Escalate {
        to: Option<Tier>,
        reason: Option<String>,
    },
    Assign(EmailAddress),
    /// Assign the ticket to the agent who wrote.
    Take,
    Priority(Priority),
    Category(Category),
    /// The ticket waits on the customer for this long.
    Wait(Duration),
    /// Add a participant.
    Cc(EmailAddress),
    /// The whole mail is an internal note.
    Note,
    /// Put a knowledge-base article into the reply (`#article vpn-erreurs`).
    Article(String),
}

/// Why a command line was not understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandLineError {
    #[error("unknown command #{0}; the commands are {COMMAND_LIST}")]
    Unknown(String),
    #[error("#{command} needs {what}")]
    Missing {
        command: &'static str,
        what: Expected,
    },
    #[error("#{command}: {value:?} is not {what}")]
    BadValue {
        command: &'static str,
        value: String,
        what: Expected,
    },
}

/// What a command's argument must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    Tier,
    AgentAddress,
    Address,
    Priority,
    Category,
    Duration,
    ArticleId,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::Tier => "a tier (L2, L3 or L4)",
            Expected::AgentAddress => "an agent's address",
            Expected::Address => "an e-mail address",
            Expected::Priority => "low, normal, high or urgent",
            Expected::Category => "a category id such as printer",
            Expected::Duration => "a duration of at most a year, such as 3d or 12h",
            Expected::ArticleId => "an article id such as vpn-errors",
        })
    }
}

pub const COMMAND_LIST: &str = "#resolve, #close, #reopen, #escalate [L2|L3|L4] [reason], \
     #assign ADDRESS, #take, #priority low|normal|high|urgent, #category NAME, \
     #wait DURATION (e.g. 3d), #cc ADDRESS, #article ID, #note";

/// The commands, for a French reader.
pub const COMMAND_LIST_FR: &str = "#resoudre, #fermer, #rouvrir, #escalader [L2|L3|L4] [motif], \
     #assigner ADRESSE, #prendre, #priorite basse|normale|haute|urgente, #categorie NOM, \
     #attente DURÉE (par exemple 3j), #cc ADRESSE, #article ID, #note";

/// The commands at the top of a mail and the text after them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commands {
    /// Each command line as written, with what it means or why not.
    pub lines: Vec<(String, Result<MailCommand, CommandLineError>)>,
    /// The text after the commands: the reply, if any.
    pub rest: String,
}

impl Commands {
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn has_note(&self) -> bool {
        self.lines
            .iter()
            .any(|(_, c)| matches!(c, Ok(MailCommand::Note)))
    }
}

/// Splits the command lines off the top of `text`.
pub fn parse(text: &str) -> Commands {
    let mut lines = Vec::new();
    let mut rest_start = text.len();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim().trim_start_matches('\u{feff}');
        if trimmed.is_empty() {
            offset += line.len();
            continue;
        }
        match trimmed.strip_prefix('#') {
            Some(body) if body.starts_with(|c: char| c.is_alphabetic()) => {
                lines.push((trimmed.to_string(), command(body)));
                offset += line.len();
            }
            // `# close`: a command with a space after the #, not text for the customer. (A
            // "# " line that names no command is the reply's text, as a Markdown title.)
            Some(body)
                if body.starts_with([' ', '\t'])
                    && !matches!(
                        command(body.trim_start()),
                        Err(CommandLineError::Unknown(_))
                    ) =>
            {
                lines.push((trimmed.to_string(), command(body.trim_start())));
                offset += line.len();
            }
            _ => {
                rest_start = offset;
                break;
            }
        }
    }
    Commands {
        lines,
        rest: text[rest_start.min(text.len())..].trim_end().to_string(),
    }
}

/// Lower case without accents, for command names and French values.
fn folded(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `3 jours`, `2j`, `1 sem` as humantime reads them (`3d`, `2d`, `1w`).
fn french_units(d: &str) -> String {
    let d = folded(&d.replace(' ', ""));
    let mut out = String::new();
    let mut unit = String::new();
    for c in d.chars().chain(std::iter::once('0')) {
        if c.is_ascii_digit() {
            if !unit.is_empty() {
                out.push_str(match unit.as_str() {
                    "j" | "jour" | "jours" => "d",
                    "sem" | "semaine" | "semaines" => "w",
                    "mn" => "min",
                    other => other,
                });
                unit.clear();
            }
            out.push(c);
        } else {
            unit.push(c);
        }
    }
    out.pop();
    out
}

fn command(body: &str) -> Result<MailCommand, CommandLineError> {
    let (name, args) = match body.split_once(char::is_whitespace) {
        Some((n, a)) => (n, a.trim()),
        None => (body, ""),
    };
    let arg = (!args.is_empty()).then_some(args);
    match folded(name).trim_end_matches(':') {
        "resolve" | "resoudre" | "resolu" | "solved" => Ok(MailCommand::Resolve),
        "close" | "fermer" => Ok(MailCommand::Close),
        "reopen" | "rouvrir" => Ok(MailCommand::Reopen),
        "take" | "prendre" => Ok(MailCommand::Take),
        "note" => Ok(MailCommand::Note),
        "escalate" | "escalader" => escalate(arg),
        "assign" | "assigner" => match arg {
            None => Err(CommandLineError::Missing {
                command: "assign",
                what: Expected::AgentAddress,
            }),
            Some(a) => EmailAddress::parse(a.trim_matches(['<', '>']))
                .map(MailCommand::Assign)
                .map_err(|_| CommandLineError::BadValue {
                    command: "assign",
                    value: a.into(),
                    what: Expected::Address,
                }),
        },
        "cc" => match arg {
            None => Err(CommandLineError::Missing {
                command: "cc",
                what: Expected::Address,
            }),
            Some(a) => EmailAddress::parse(a.trim_matches(['<', '>']))
                .map(MailCommand::Cc)
                .map_err(|_| CommandLineError::BadValue {
                    command: "cc",
                    value: a.into(),
                    what: Expected::Address,
                }),
        },
        "priority" | "priorite" => priority(arg),
        "article" => match arg {
            None => Err(CommandLineError::Missing {
                command: "article",
                what: Expected::ArticleId,
            }),
            Some(id) => crate::kb::ArticleId::parse(&id.to_lowercase())
                .map(|id| MailCommand::Article(id.to_string()))
                .ok_or_else(|| CommandLineError::BadValue {
                    command: "article",
                    value: id.into(),
                    what: Expected::ArticleId,
                }),
        },
        "category" | "categorie" => match arg {
            None => Err(CommandLineError::Missing {
                command: "category",
                what: Expected::Category,
            }),
            Some(c) => c
                .to_lowercase()
                .parse::<Category>()
                .map(MailCommand::Category)
                .map_err(|_| CommandLineError::BadValue {
                    command: "category",
                    value: c.into(),
                    what: Expected::Category,
                }),
        },
        "wait" | "attente" | "attendre" => match arg {
            None => Err(CommandLineError::Missing {
                command: "wait",
                what: Expected::Duration,
            }),
            Some(d) => humantime::parse_duration(&french_units(d))
                .ok()
                .filter(|d| !d.is_zero() && *d <= crate::timing::LONGEST)
                .map(MailCommand::Wait)
                .ok_or_else(|| CommandLineError::BadValue {
                    command: "wait",
                    value: d.into(),
                    what: Expected::Duration,
                }),
        },
        _ => Err(CommandLineError::Unknown(name.to_string())),
    }
}

/// `#escalate [L2|L3|L4] [reason]`: a word shaped like a tier must be one.
fn escalate(arg: Option<&str>) -> Result<MailCommand, CommandLineError> {
    let Some(args) = arg else {
        return Ok(MailCommand::Escalate {
            to: None,
            reason: None,
        });
    };
    let (first, more) = match args.split_once(char::is_whitespace) {
        Some((f, m)) => (f, Some(m.trim())),
        None => (args, None),
    };
    let looks_like_tier = first.len() >= 2
        && first.starts_with(['L', 'l'])
        && first[1..].bytes().all(|b| b.is_ascii_digit());
    match first.parse::<Tier>() {
        Ok(tier) => Ok(MailCommand::Escalate {
            to: Some(tier),
            reason: more.filter(|m| !m.is_empty()).map(str::to_string),
        }),
        Err(_) if looks_like_tier => Err(CommandLineError::BadValue {
            command: "escalate",
            value: first.into(),
            what: Expected::Tier,
        }),
        Err(_) => Ok(MailCommand::Escalate {
            to: None,
            reason: Some(args.to_string()),
        }),
    }
}

/// `#priority high` (or `haute`, …).
fn priority(arg: Option<&str>) -> Result<MailCommand, CommandLineError> {
    let Some(value) = arg else {
        return Err(CommandLineError::Missing {
            command: "priority",
            what: Expected::Priority,
        });
    };
    let p = match folded(value).as_str() {
        "low" | "basse" | "faible" => Some(Priority::Low),
        "normal" | "normale" => Some(Priority::Normal),
        "high" | "haute" | "elevee" => Some(Priority::High),
        "urgent" | "urgente" => Some(Priority::Urgent),
        _ => None,
    };
    p.map(MailCommand::Priority)
        .ok_or_else(|| CommandLineError::BadValue {
            command: "priority",
            value: value.into(),
            what: Expected::Priority,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn only(text: &str) -> Result<MailCommand, CommandLineError> {
        let c = parse(text);
        assert_eq!(c.lines.len(), 1, "{c:?}");
        c.lines[0].1.clone()
    }

    #[test]
    fn commands_at_the_top_are_split_from_the_reply() {
        let c = parse("\n#priority high\n#take\n\nBonjour Marie,\nJe regarde.\n#not a command\n");
        assert_eq!(
            c.lines
                .iter()
                .map(|(_, r)| r.clone().unwrap())
                .collect::<Vec<_>>(),
            vec![MailCommand::Priority(Priority::High), MailCommand::Take]
        );
        assert_eq!(c.rest, "Bonjour Marie,\nJe regarde.\n#not a command");
    }

    #[test]
    fn a_mail_of_commands_only_has_no_reply() {
        let c = parse("#resolve\n#note\n");
        assert_eq!(c.lines.len(), 2);
        assert!(c.rest.is_empty());
        assert!(c.has_note());
        let plain = parse("Bonjour,\n#resolve\n");
        assert!(plain.is_empty(), "a # line after text is text");
    }

    #[test]
    fn french_aliases_and_accents() {
        assert_eq!(only("#résoudre"), Ok(MailCommand::Resolve));
        assert_eq!(only("#RESOUDRE"), Ok(MailCommand::Resolve));
        assert_eq!(only("#fermer"), Ok(MailCommand::Close));
        assert_eq!(only("#rouvrir"), Ok(MailCommand::Reopen));
        assert_eq!(only("#prendre"), Ok(MailCommand::Take));
        assert_eq!(
            only("#priorité haute"),
            Ok(MailCommand::Priority(Priority::High))
        );
        assert_eq!(
            only("#priorite urgente"),
            Ok(MailCommand::Priority(Priority::Urgent))
        );
        assert_eq!(
            only("#assigner alice@example.com"),
            Ok(MailCommand::Assign(addr("alice@example.com")))
        );
        assert_eq!(
            only("#attente 3d"),
            Ok(MailCommand::Wait(Duration::from_secs(3 * 86_400)))
        );
        assert_eq!(
            only("#escalader L3 base corrompue"),
            Ok(MailCommand::Escalate {
                to: Some(Tier::L3Expert),
                reason: Some("base corrompue".into())
            })
        );
    }

    #[test]
    fn escalate_takes_an_optional_tier_and_reason() {
        assert_eq!(
            only("#escalate"),
            Ok(MailCommand::Escalate {
                to: None,
                reason: None
            })
        );
        assert_eq!(
            only("#escalate needs a DBA"),
            Ok(MailCommand::Escalate {
                to: None,
                reason: Some("needs a DBA".into())
            })
        );
        assert_eq!(
            only("#escalate l2"),
            Ok(MailCommand::Escalate {
                to: Some(Tier::L2Advanced),
                reason: None
            })
        );
    }

    #[test]
    fn bad_values_and_unknown_commands_say_what_is_wrong() {
        assert!(matches!(
            only("#priority asap"),
            Err(CommandLineError::BadValue { .. })
        ));
        assert!(matches!(
            only("#assign"),
            Err(CommandLineError::Missing { .. })
        ));
        assert!(matches!(
            only("#assign bob"),
            Err(CommandLineError::BadValue { .. })
        ));
        assert!(matches!(
            only("#wait forever"),
            Err(CommandLineError::BadValue { .. })
        ));
        let unknown = only("#solve").unwrap_err();
        assert!(unknown.to_string().contains("#resolve"), "{unknown}");
        assert_eq!(
            only("#cc <paul@example.com>"),
            Ok(MailCommand::Cc(addr("paul@example.com")))
        );
        assert_eq!(
            only("#category imprimante"),
            Ok(MailCommand::Category("imprimante".parse().unwrap()))
        );
    }

    #[test]
    fn hashtags_and_numbers_at_the_top_are_not_commands() {
        let c = parse("#1 priority for us: the printer\n");
        assert!(c.is_empty());
        assert_eq!(c.rest, "#1 priority for us: the printer");
    }

    #[test]
    fn a_command_with_a_space_after_the_hash_is_a_command() {
        let c = parse("# close\n#  priority high\n\nMerci.");
        assert_eq!(
            c.lines
                .iter()
                .map(|(_, r)| r.clone().unwrap())
                .collect::<Vec<_>>(),
            [MailCommand::Close, MailCommand::Priority(Priority::High)]
        );
        assert_eq!(c.rest, "Merci.");
        // A title that names no command stays text.
        let t = parse("# Résumé\nLe serveur est reparti.");
        assert!(t.lines.is_empty());
    }
}
