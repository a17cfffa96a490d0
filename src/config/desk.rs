//! The desk's organisation in `helpdesk.toml`: tiers, routing rules, the roster, escalation
//! and who is told what. Checked here once, so an unknown tier or a rule without a
//! condition is an error naming its key, not a ticket routed nowhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::domain::{Category, EmailAddress, Language, Priority, Tier};
use crate::roster::{Agent, Roster, TierSettings};
use crate::routing::{Rule, RuleSpec, Rules};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTier {
    address: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// `[categories.printer] labels = { fr = "imprimante", en = "printer" }`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategory {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRouting {
    #[serde(default = "yes")]
    builtin_rules: bool,
    #[serde(default)]
    rules: Vec<RawRule>,
}

impl Default for RawRouting {
    fn default() -> Self {
        RawRouting {
            builtin_rules: true,
            rules: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

impl Default for RawNotifications {
    fn default() -> Self {
        RawNotifications {
            customer_on_assignment: false,
            participants_status: true,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    name: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    senders: Vec<String>,
    #[serde(default)]
    to: Vec<String>,
    has_attachment: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    category: String,
    priority: Option<String>,
    tier: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgent {
    name: String,
    address: String,
    tiers: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    languages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEscalation {
    #[serde(default = "default_reopen_threshold")]
    reopen_threshold: u32,
}

impl Default for RawEscalation {
    fn default() -> Self {
        RawEscalation {
            reopen_threshold: default_reopen_threshold(),
        }
    }
}

fn default_reopen_threshold() -> u32 {
    2
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default = "default_per_hour")]
    automatic_mail_per_hour: u32,
    #[serde(default = "default_per_day")]
    automatic_mail_per_day: u32,
    #[serde(default = "default_flood")]
    flood_per_hour: u32,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            automatic_mail_per_hour: default_per_hour(),
            automatic_mail_per_day: default_per_day(),
            flood_per_hour: default_flood(),
        }
    }
}

fn default_flood() -> u32 {
    20
}

fn default_per_hour() -> u32 {
    10
}
fn default_per_day() -> u32 {
    40
}

/// How much automatic mail (acknowledgements, status mail, reminders) one outside address
/// may receive: past it, mail to that address is held (deferred, sent when the budget
/// allows), so a loop with an autoresponder or another helpdesk dies out by itself. The
/// desk's own people (agents, tier addresses) have no budget: they are never silenced.
/// Instead, past `flood_per_hour` mails from one outside sender in an hour, what they would
/// be told of that sender's further mail is held and summed up in one digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailBudget {
    pub per_hour: u32,
    pub per_day: u32,
    pub flood_per_hour: u32,
}

impl Default for MailBudget {
    fn default() -> Self {
        MailBudget {
            per_hour: default_per_hour(),
            per_day: default_per_day(),
            flood_per_hour: default_flood(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAgentMail {
    /// Absent is not false: with a roster, the operator must choose (see
    /// `DeskSettings::check_agent_auth_chosen`).
    require_authentication: Option<bool>,
    authserv_id: Option<String>,
    /// Where DKIM keys are looked up; the system's resolver when absent.
    dns_server: Option<String>,
    /// The display name on an agent's relayed reply.
    #[serde(default = "default_reply_from")]
    reply_from: String,
}

fn default_reply_from() -> String {
    "{agent} ({support})".into()
}

impl Default for RawAgentMail {
    fn default() -> Self {
        RawAgentMail {
            require_authentication: None,
            authserv_id: None,
            dns_server: None,
            reply_from: default_reply_from(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    /// Tell the customer the name of the agent who took the ticket.
    #[serde(default)]
    customer_on_assignment: bool,
    /// Send status mail to the ticket's other participants too.
    #[serde(default = "yes")]
    participants_status: bool,
}

/// What becomes of a mail that quotes a ticket's code (or answers its mail) from someone
/// who is neither its customer, a participant nor an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StrangerPolicy {
    /// It opens a ticket of its own; the quoted ticket's assignee is told.
    #[default]
    NewTicket,
    /// It is quarantined for review; the quoted ticket's assignee is told.
    Hold,
}

/// Everything that decides where a ticket goes and who hears of it.
#[derive(Debug, Clone, Default)]
pub struct DeskSettings {
    pub strangers: StrangerPolicy,
    /// An agent's mail counts as theirs only when authenticated: a DKIM signature the
    /// gateway verifies, or `Authentication-Results` from `agent_authserv_id`.
    pub require_agent_auth: bool,
    /// The receiving server whose `Authentication-Results` are trusted.
    pub agent_authserv_id: Option<String>,
    /// Whether `agent_mail.require_authentication` was written (either way).
    pub agent_auth_chosen: bool,
    /// Where DKIM keys are looked up (the system's resolver when `None`).
    pub dkim_dns: Option<std::net::SocketAddr>,
    pub budget: MailBudget,
    pub rules: Rules,
    pub roster: Roster,
    /// Reopenings after which a ticket escalates by itself (0: never).
    pub reopen_threshold: u32,
    pub notify_customer_on_assignment: bool,
    /// Status mail and agents' replies go to the participants as well as the customer.
    pub notify_participants: bool,
    /// The display name of an agent's relayed reply: `{agent}` and `{support}` are replaced.
    pub reply_from: String,
    /// Business hours, service levels, reminders, closing and vendors.
    pub time: crate::timing::TimeSettings,
    /// The knowledge base (L0) and what the desk does with it.
    pub knowledge: super::knowledge::KnowledgeSettings,
    /// Who gets the weekly report.
    pub reports: super::reports::ReportSettings,
}

pub(super) struct RawDesk {
    pub strangers: StrangerPolicy,
    pub agent_mail: RawAgentMail,
    pub limits: RawLimits,
    pub tiers: BTreeMap<String, RawTier>,
    pub categories: BTreeMap<String, RawCategory>,
    pub routing: RawRouting,
    pub agents: Vec<RawAgent>,
    pub escalation: RawEscalation,
    pub notifications: RawNotifications,
}

impl DeskSettings {
    /// The categories a ticket can be put in: the rules' (see [`Rules::categories`]) and
    /// those the configuration labels. Anything else is a typo, refused by `#category`.
    pub fn known_categories(&self) -> Vec<Category> {
        let mut known = self.rules.categories();
        for c in self.roster.labelled_categories() {
            if !known.contains(c) {
                known.push(c.clone());
            }
        }
        known
    }

    /// With agents on the roster, mail from their addresses moves tickets and reaches
    /// customers from the support address: anyone can write such a From. The gateway that
    /// files mail (`run`, `ingest`, `check-config`) refuses to start until the operator
    /// has said how agents are authenticated, or that they are not.
    pub fn check_agent_auth_chosen(&self) -> Result<(), ConfigError> {
        if self.roster.agents().is_empty() || self.agent_auth_chosen {
            return Ok(());
        }
        Err(invalid(
            "agent_mail.require_authentication",
            "is not set, and with agents on the roster anyone could write as one of them \
             (a forged From: reaches the customer from the support address and runs commands)",
            "set it in [agent_mail]: true (agents' mail must carry a DKIM signature of their \
             domain that the gateway verifies, or a pass from authserv_id, the server that \
             receives the support mailbox's mail), or false to accept a From as it is",
        ))
    }
}

fn tier(key: &str, value: &str) -> Result<Tier, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a tier"),
            "use L0, L1, L2, L3 or L4",
        )
    })
}

fn category(key: &str, value: &str) -> Result<Category, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a category id"),
            "use lower-case letters, digits, - or _, starting with a letter (e.g. \"printer\")",
        )
    })
}

fn language(key: &str, value: &str) -> Result<Language, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a language the gateway writes"),
            "use \"fr\" or \"en\"",
        )
    })
}

fn address(key: &str, value: &str) -> Result<EmailAddress, ConfigError> {
    EmailAddress::parse(value).map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not an e-mail address"),
            "write an address such as \"alice@example.com\"",
        )
    })
}

pub(super) fn build(raw: RawDesk, support: &EmailAddress) -> Result<DeskSettings, ConfigError> {
    let mut tiers = BTreeMap::new();
    for (name, t) in raw.tiers {
        let key = format!("tiers.{name}");
        let level = tier(&key, &name)?;
        let mut labels = BTreeMap::new();
        for (lang, label) in t.labels {
            labels.insert(language(&format!("{key}.labels.{lang}"), &lang)?, label);
        }
        let address = match t.address {
            Some(a) => Some(address(&format!("{key}.address"), &a)?),
            None => None,
        };
        tiers.insert(level, TierSettings { labels, address });
    }
    let mut category_labels = BTreeMap::new();
    for (name, c) in raw.categories {
        let key = format!("categories.{name}");
        let id: Category = name.parse().map_err(|_| {
            invalid(
                &key,
                format!("{name:?} is not a category id"),
                "use lower-case letters, digits, - or _, as the routing rules do (e.g. printer)",
            )
        })?;
        let mut labels = BTreeMap::new();
        for (lang, label) in c.labels {
            labels.insert(language(&format!("{key}.labels.{lang}"), &lang)?, label);
        }
        category_labels.insert(id, labels);
    }

    let rules = rules(raw.routing.rules)?;
    let agents = agents(raw.agents, support)?;

    let l = raw.limits;
    if l.automatic_mail_per_hour == 0 || l.automatic_mail_per_day < l.automatic_mail_per_hour {
        return Err(invalid(
            "limits.automatic_mail_per_hour",
            format!(
                "{} an hour and {} a day cannot both hold",
                l.automatic_mail_per_hour, l.automatic_mail_per_day
            ),
            "give at least 1 an hour, and a day limit at least as large (defaults 10 and 40)",
        ));
    }
    if l.flood_per_hour == 0 {
        return Err(invalid(
            "limits.flood_per_hour",
            "0 would hold every notification to the agents",
            "give the number of mails from one sender in an hour past which the agents get a digest instead (default 20)",
        ));
    }
    let agent_authserv_id = raw
        .agent_mail
        .authserv_id
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty());
    let dkim_dns = match raw.agent_mail.dns_server {
        None => None,
        Some(text) => Some(text.parse::<std::net::SocketAddr>().map_err(|_| {
            invalid(
                "agent_mail.dns_server",
                format!("{text:?} is not an address and port"),
                "write e.g. \"127.0.0.1:53\", or leave it out to use the system's resolver",
            )
        })?),
    };
    if !raw.agent_mail.reply_from.contains("{agent}") {
        return Err(invalid(
            "agent_mail.reply_from",
            format!("{:?} does not name the agent", raw.agent_mail.reply_from),
            "include {agent}, e.g. \"{agent} ({support})\"",
        ));
    }
    let reply_from = raw.agent_mail.reply_from.clone();
    Ok(DeskSettings {
        reply_from,
        strangers: raw.strangers,
        require_agent_auth: raw.agent_mail.require_authentication.unwrap_or(false),
        agent_auth_chosen: raw.agent_mail.require_authentication.is_some(),
        agent_authserv_id,
        dkim_dns,
        budget: MailBudget {
            per_hour: l.automatic_mail_per_hour,
            per_day: l.automatic_mail_per_day,
            flood_per_hour: l.flood_per_hour,
        },
        rules: Rules::new(rules, raw.routing.builtin_rules),
        roster: Roster::new(agents, tiers).with_category_labels(category_labels),
        reopen_threshold: raw.escalation.reopen_threshold,
        notify_customer_on_assignment: raw.notifications.customer_on_assignment,
        notify_participants: raw.notifications.participants_status,
        time: crate::timing::TimeSettings::default(),
        knowledge: Default::default(),
        reports: Default::default(),
    })
}

/// `[[routing.rules]]`: each rule's conditions and what it decides.
fn rules(raw: Vec<RawRule>) -> Result<Vec<Rule>, ConfigError> {
    let mut rules = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = format!("routing.rules[{i}]");
        let spec = RuleSpec {
            name: r.name.unwrap_or_else(|| format!("rule {}", i + 1)),
            keywords: r.keywords,
            senders: r.senders,
            to: r.to,
            has_attachment: r.has_attachment,
            headers: r.headers,
            category: category(&format!("{key}.category"), &r.category)?,
            priority: match r.priority {
                Some(p) => Some(p.parse::<Priority>().map_err(|_| {
                    invalid(
                        &format!("{key}.priority"),
                        format!("{p:?} is not a priority"),
                        "use low, normal, high or urgent",
                    )
                })?),
                None => None,
            },
            tier: match r.tier {
                Some(t) => Some(tier(&format!("{key}.tier"), &t)?),
                None => None,
            },
        };
        rules.push(Rule::new(spec).map_err(|e| {
            invalid(
                &key,
                e.to_string(),
                "give keywords, senders, to, has_attachment or headers",
            )
        })?);
    }
    Ok(rules)
}

/// `[[agents]]`: each agent once, never the support address, with their tiers, categories
/// and languages.
fn agents(raw: Vec<RawAgent>, support: &EmailAddress) -> Result<Vec<Agent>, ConfigError> {
    let mut agents = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, a) in raw.into_iter().enumerate() {
        let key = format!("agents[{i}]");
        let addr = address(&format!("{key}.address"), &a.address)?;
        if addr == *support {
            return Err(invalid(
                &format!("{key}.address"),
                "is the support address",
                "give the agent's own mailbox; mail from the support address is the gateway's own",
            ));
        }
        if !seen.insert(addr.clone()) {
            return Err(invalid(
                &format!("{key}.address"),
                format!("{addr} is listed twice"),
                "keep one [[agents]] entry per person",
            ));
        }
        if a.tiers.is_empty() {
            return Err(invalid(
                &format!("{key}.tiers"),
                "empty",
                "list the tiers this agent works in, e.g. [\"L1\"]",
            ));
        }
        agents.push(Agent {
            name: a.name,
            address: addr,
            tiers: a
                .tiers
                .iter()
                .map(|t| tier(&format!("{key}.tiers"), t))
                .collect::<Result<_, _>>()?,
            categories: a
                .categories
                .iter()
                .map(|c| category(&format!("{key}.categories"), c))
                .collect::<Result<_, _>>()?,
            languages: a
                .languages
                .iter()
                .map(|l| language(&format!("{key}.languages"), l))
                .collect::<Result<_, _>>()?,
        });
    }
    Ok(agents)
}
