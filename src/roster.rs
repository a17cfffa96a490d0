//! The people who work tickets, the tiers they sit in, and who gets a ticket.
//!
//! Pure: the store supplies each agent's current load, the roster picks. A ticket entering
//! a tier goes to the agent of that tier who handles its category and speaks the
//! customer's language and has the fewest open tickets (ties: whoever was assigned least
//! recently, then roster order); when nobody fits, to the tier's shared address, unassigned.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::clock::Millis;
use crate::domain::{Category, EmailAddress, Language, Tier};

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub name: String,
    pub address: EmailAddress,
    pub tiers: Vec<Tier>,
    /// Empty: every category.
    pub categories: Vec<Category>,
    /// In order of preference; the first is the language of the mail the agent receives.
    /// Empty: any customer, mail in the desk's default language.
    pub languages: Vec<Language>,
}

impl Agent {
    fn fits(&self, tier: Tier, category: &Category, language: Language) -> bool {
        self.tiers.contains(&tier)
            && (self.categories.is_empty() || self.categories.contains(category))
            && (self.languages.is_empty() || self.languages.contains(&language))
    }

    pub fn language(&self, default: Language) -> Language {
        self.languages.first().copied().unwrap_or(default)
    }
}

/// A tier's display names and shared address.
#[derive(Clone, Debug, Default)]
pub struct TierSettings {
    pub labels: BTreeMap<Language, String>,
    /// Where a ticket's mail goes when nobody on the roster fits (e.g. `n2@example.com`).
    pub address: Option<EmailAddress>,
}

pub use crate::domain::load::Load;

/// Who a ticket goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignee {
    Agent(EmailAddress),
    /// Nobody on the roster fits: the ticket stays unassigned and the tier's shared address
    /// (if it has one) is told.
    Unassigned {
        tier_address: Option<EmailAddress>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Roster {
    agents: Vec<Agent>,
    tiers: BTreeMap<Tier, TierSettings>,
    /// `[categories.printer] labels = { fr = "Imprimante" }`: overrides of the built-in
    /// names, and names for the desk's own categories.
    category_labels: BTreeMap<Category, BTreeMap<Language, String>>,
}

impl Roster {
    pub fn new(agents: Vec<Agent>, tiers: BTreeMap<Tier, TierSettings>) -> Roster {
        Roster {
            agents,
            tiers,
            category_labels: BTreeMap::new(),
        }
    }

    pub fn with_category_labels(
        mut self,
        labels: BTreeMap<Category, BTreeMap<Language, String>>,
    ) -> Roster {
        self.category_labels = labels;
        self
    }

    /// "imprimante", "printer": the configured label, else the built-in one, else the id
    /// (a category of the desk's own rules that nobody named).
    /// The categories the configuration gave labels to (`[categories.ID]`).
    pub fn labelled_categories(&self) -> impl Iterator<Item = &Category> {
        self.category_labels.keys()
    }

    pub fn category_label(&self, category: &Category, language: Language) -> String {
        self.category_labels
            .get(category)
            .and_then(|l| l.get(&language))
            .cloned()
            .or_else(|| default_category_label(category, language).map(str::to_string))
            .unwrap_or_else(|| category.as_str().to_string())
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The roster's addresses, for reading their loads.
    pub fn addresses(&self) -> Vec<EmailAddress> {
        self.agents.iter().map(|a| a.address.clone()).collect()
    }

    pub fn agent(&self, address: &EmailAddress) -> Option<&Agent> {
        self.agents.iter().find(|a| a.address == *address)
    }

    /// An agent's or a tier's address: the desk's own people, never budgeted.
    pub fn is_desk_address(&self, address: &EmailAddress) -> bool {
        self.agent(address).is_some()
            || self
                .tiers
                .values()
                .any(|t| t.address.as_ref() == Some(address))
    }

    pub fn tier_address(&self, tier: Tier) -> Option<&EmailAddress> {
        self.tiers.get(&tier).and_then(|t| t.address.as_ref())
    }

    /// "Niveau 2 – support avancé": the configured label, else the built-in one.
    pub fn tier_label(&self, tier: Tier, language: Language) -> String {
        self.tiers
            .get(&tier)
            .and_then(|t| t.labels.get(&language))
            .cloned()
            .unwrap_or_else(|| default_tier_label(tier, language).to_string())
    }

    /// The agent for a ticket entering `tier`. `loads` holds each agent's open tickets and
    /// last assignment; `excluding` is the agent the ticket is leaving, who is not picked
    /// again while someone else fits.
    pub fn choose(
        &self,
        tier: Tier,
        category: &Category,
        language: Language,
        loads: &HashMap<EmailAddress, Load>,
        excluding: Option<&EmailAddress>,
    ) -> Assignee {
        let fits: Vec<&Agent> = self
            .agents
            .iter()
            .filter(|a| a.fits(tier, category, language))
            .collect();
        let others: Vec<&Agent> = fits
            .iter()
            .copied()
            .filter(|a| Some(&a.address) != excluding)
            .collect();
        let pool = if others.is_empty() { fits } else { others };
        let best = pool.into_iter().enumerate().min_by_key(|(position, a)| {
            let load = loads.get(&a.address).copied().unwrap_or_default();
            // Never assigned sorts before any time.
            (
                load.open_tickets,
                load.last_assigned_at.unwrap_or(Millis::MIN),
                *position,
            )
        });
        match best {
            Some((_, agent)) => Assignee::Agent(agent.address.clone()),
            None => Assignee::Unassigned {
                tier_address: self.tier_address(tier).cloned(),
            },
        }
    }
}

/// The built-in categories' names.
pub fn default_category_label(category: &Category, language: Language) -> Option<&'static str> {
    let fr = language == Language::Fr;
    Some(match category.as_str() {
        "account" if fr => "compte et mot de passe",
        "account" => "account and password",
        "printer" if fr => "imprimante",
        "printer" => "printer",
        "network" if fr => "réseau et VPN",
        "network" => "network and VPN",
        "email" if fr => "messagerie",
        "email" => "e-mail",
        "hardware" if fr => "matériel",
        "hardware" => "hardware",
        "software" if fr => "logiciel",
        "software" => "software",
        "access" if fr => "droits d'accès",
        "access" => "access rights",
        "security" if fr => "sécurité",
        "security" => "security",
        "general" if fr => "demande générale",
        "general" => "general request",
        _ => return None,
    })
}

pub fn default_tier_label(tier: Tier, language: Language) -> &'static str {
    match (tier, language) {
        (Tier::L0SelfService, Language::Fr) => "Niveau 0 – libre-service",
        (Tier::L1FrontLine, Language::Fr) => "Niveau 1 – support de proximité",
        (Tier::L2Advanced, Language::Fr) => "Niveau 2 – support avancé",
        (Tier::L3Expert, Language::Fr) => "Niveau 3 – experts",
        (Tier::L4Vendor, Language::Fr) => "Niveau 4 – fournisseurs",
        (Tier::L0SelfService, Language::En) => "Level 0 – self-service",
        (Tier::L1FrontLine, Language::En) => "Level 1 – front line",
        (Tier::L2Advanced, Language::En) => "Level 2 – advanced support",
        (Tier::L3Expert, Language::En) => "Level 3 – experts",
        (Tier::L4Vendor, Language::En) => "Level 4 – vendors",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> EmailAddress {
        EmailAddress::parse(s).unwrap()
    }

    fn agent(name: &str, tiers: &[Tier], categories: &[&str], languages: &[Language]) -> Agent {
        Agent {
            name: name.into(),
            address: addr(&format!("{}@example.com", name.to_lowercase())),
            tiers: tiers.to_vec(),
            categories: categories.iter().map(|c| c.parse().unwrap()).collect(),
            languages: languages.to_vec(),
        }
    }

    fn roster() -> Roster {
        let mut tiers = BTreeMap::new();
        tiers.insert(
            Tier::L3Expert,
            TierSettings {
                labels: BTreeMap::new(),
                address: Some(addr("n3@example.com")),
            },
        );
        Roster::new(
            vec![
                agent(
                    "Alice",
                    &[Tier::L1FrontLine, Tier::L2Advanced],
                    &[],
                    &[Language::Fr, Language::En],
                ),
                agent(
                    "Bob",
                    &[Tier::L1FrontLine],
                    &["printer", "hardware"],
                    &[Language::Fr],
                ),
                agent("Carol", &[Tier::L1FrontLine], &[], &[Language::En]),
                agent("Dan", &[Tier::L2Advanced], &["security"], &[]),
            ],
            tiers,
        )
    }

    fn load(open: u32, last: Option<Millis>) -> Load {
        Load {
            open_tickets: open,
            last_assigned_at: last,
        }
    }

    fn chosen(
        r: &Roster,
        tier: Tier,
        cat: &str,
        lang: Language,
        loads: &HashMap<EmailAddress, Load>,
    ) -> String {
        match r.choose(tier, &cat.parse().unwrap(), lang, loads, None) {
            Assignee::Agent(a) => a.to_string(),
            Assignee::Unassigned { tier_address } => format!("unassigned {tier_address:?}"),
        }
    }

    #[test]
    fn the_least_loaded_agent_who_fits_gets_the_ticket() {
        let r = roster();
        let mut loads = HashMap::new();
        loads.insert(addr("alice@example.com"), load(3, Some(10)));
        loads.insert(addr("bob@example.com"), load(1, Some(20)));
        assert_eq!(
            chosen(&r, Tier::L1FrontLine, "printer", Language::Fr, &loads),
            "bob@example.com"
        );
        loads.insert(addr("bob@example.com"), load(5, Some(20)));
        assert_eq!(
            chosen(&r, Tier::L1FrontLine, "printer", Language::Fr, &loads),
            "alice@example.com"
        );
    }

    #[test]
    fn category_and_language_must_fit() {
        let r = roster();
        let loads = HashMap::new();
        // Bob does printers but not accounts; Carol speaks no French.
        assert_eq!(
            chosen(&r, Tier::L1FrontLine, "account", Language::Fr, &loads),
            "alice@example.com"
        );
        let mut loads = HashMap::new();
        loads.insert(addr("alice@example.com"), load(9, None));
        assert_eq!(
            chosen(&r, Tier::L1FrontLine, "account", Language::En, &loads),
            "carol@example.com"
        );
        // Dan lists no language: he takes anyone's security ticket.
        loads.insert(addr("alice@example.com"), load(0, None));
        loads.insert(addr("dan@example.com"), load(0, Some(5)));
        assert_eq!(
            chosen(&r, Tier::L2Advanced, "security", Language::En, &loads),
            "alice@example.com"
        );
        loads.insert(addr("alice@example.com"), load(1, None));
        assert_eq!(
            chosen(&r, Tier::L2Advanced, "security", Language::En, &loads),
            "dan@example.com"
        );
    }

    #[test]
    fn nobody_fitting_falls_back_to_the_tier_address_unassigned() {
        let r = roster();
        let loads = HashMap::new();
        assert_eq!(
            chosen(&r, Tier::L3Expert, "general", Language::Fr, &loads),
            "unassigned Some(EmailAddress(\"n3@example.com\"))"
        );
        assert_eq!(
            chosen(&r, Tier::L4Vendor, "general", Language::Fr, &loads),
            "unassigned None"
        );
    }

    #[test]
    fn equals_take_turns_least_recently_assigned_first() {
        let r = Roster::new(
            vec![
                agent("Alice", &[Tier::L1FrontLine], &[], &[]),
                agent("Bob", &[Tier::L1FrontLine], &[], &[]),
                agent("Carol", &[Tier::L1FrontLine], &[], &[]),
            ],
            BTreeMap::new(),
        );
        // Simulate a day of tickets that are all resolved at once: loads stay equal, so the
        // turn goes round.
        let mut loads: HashMap<EmailAddress, Load> = HashMap::new();
        let mut picks = Vec::new();
        for t in 0..6 {
            let pick = chosen(&r, Tier::L1FrontLine, "general", Language::Fr, &loads);
            loads.insert(addr(&pick), load(0, Some(t)));
            picks.push(pick.split('@').next().unwrap().to_string());
        }
        assert_eq!(picks, ["alice", "bob", "carol", "alice", "bob", "carol"]);
    }

    #[test]
    fn the_agent_a_ticket_leaves_is_picked_only_when_alone() {
        let r = roster();
        let loads = HashMap::new();
        let alice = addr("alice@example.com");
        let got = r.choose(
            Tier::L2Advanced,
            &"security".parse().unwrap(),
            Language::Fr,
            &loads,
            Some(&alice),
        );
        assert_eq!(got, Assignee::Agent(addr("dan@example.com")));
        let got = r.choose(
            Tier::L2Advanced,
            &"network".parse().unwrap(),
            Language::Fr,
            &loads,
            Some(&alice),
        );
        assert_eq!(got, Assignee::Agent(alice));
    }

    #[test]
    fn tier_labels_default_per_language() {
        let r = roster();
        assert_eq!(
            r.tier_label(Tier::L2Advanced, Language::Fr),
            "Niveau 2 – support avancé"
        );
        assert_eq!(
            r.tier_label(Tier::L2Advanced, Language::En),
            "Level 2 – advanced support"
        );
    }
}
