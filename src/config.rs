//! `helpdesk.toml`: what the gateway reads, checked once at start. Every error names the
//! key and says how to fix it, because the person reading it is setting up a mail server
//! at the time, not reading our source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{CodePrefix, EmailAddress, Language};

mod dashboard;
mod database;
mod desk;
mod knowledge;
mod mailboxes;
mod oauth;
mod reports;
mod retention;
mod time;

pub use dashboard::DashboardSettings;
pub use database::Backend;
pub use desk::{DeskSettings, MailBudget, StrangerPolicy};
pub use knowledge::KnowledgeSettings;
use mailboxes::{outbox, source};
pub use oauth::Login;
pub use reports::ReportSettings;
pub use retention::RetentionSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source}; point at one with --config DIR/helpdesk.toml \
         or HELPDESK_CONFIG, or write one with `helpdesk init DIR`"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {key}: {message}")]
    Syntax {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{key}: {message}; {hint}")]
    Invalid {
        key: String,
        message: String,
        hint: String,
    },
}

fn invalid(key: &str, message: impl Into<String>, hint: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
        hint: hint.into(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    gateway: RawGateway,
    database: database::RawDatabase,
    source: RawSource,
    outbox: RawOutbox,
    #[serde(default)]
    tiers: std::collections::BTreeMap<String, desk::RawTier>,
    #[serde(default)]
    categories: std::collections::BTreeMap<String, desk::RawCategory>,
    #[serde(default)]
    routing: desk::RawRouting,
    #[serde(default)]
    agents: Vec<desk::RawAgent>,
    #[serde(default)]
    escalation: desk::RawEscalation,
    #[serde(default)]
    notifications: desk::RawNotifications,
    #[serde(default)]
    limits: desk::RawLimits,
    #[serde(default)]
    agent_mail: desk::RawAgentMail,
    #[serde(default)]
    calendar: time::RawCalendar,
    #[serde(default)]
    sla: time::RawSla,
    #[serde(default)]
    waiting: time::RawWaiting,
    #[serde(default)]
    closing: time::RawClosing,
    #[serde(default)]
    vendors: Vec<time::RawVendor>,
    #[serde(default)]
    knowledge_base: knowledge::RawKnowledgeBase,
    #[serde(default)]
    reports: reports::RawReports,
    dashboard: Option<dashboard::RawDashboard>,
    oauth2: Option<oauth::RawOAuth2>,
    #[serde(default)]
    retention: retention::RawRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    support_address: String,
    #[serde(default = "default_support_name")]
    support_name: String,
    #[serde(default = "default_prefix")]
    reference_prefix: String,
    #[serde(default = "default_language")]
    default_language: String,
    #[serde(default)]
    templates_dir: Option<PathBuf>,
    /// What becomes of mail quoting a ticket's code from someone not on it.
    #[serde(default)]
    strangers: Option<String>,
    /// The most people one mail makes participants of a new ticket (its sender included).
    #[serde(default = "default_max_participants")]
    max_participants: u32,
    /// Contact forms: senders whose mail is the person's in its Reply-To.
    #[serde(default)]
    contact_forms: Vec<String>,
    /// Who the desk is, in the greeting and the signature ("Service informatique").
    #[serde(default)]
    organisation: Option<String>,
}

fn default_max_participants() -> u32 {
    10
}

fn default_support_name() -> String {
    "Support".into()
}
fn default_prefix() -> String {
    "HD".into()
}
fn default_language() -> String {
    "fr".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    kind: String,
    maildir: Option<RawMaildir>,
    imap: Option<OneOrMany<RawImap>>,
}

/// `[source.imap]` (one mailbox) or `[[source.imap]]` (several). Not `#[serde(untagged)]`:
/// that would answer any mistake inside the table with "data did not match any variant"
/// instead of the key and what is wrong with it.
#[derive(Debug)]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a table, or an array of tables")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(OneOrMany::One)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(OneOrMany::Many)
            }
        }
        deserializer.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaildir {
    path: PathBuf,
    #[serde(default = "default_maildir_poll", with = "humantime_serde")]
    poll_interval: Duration,
}

fn default_maildir_poll() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImap {
    host: String,
    port: Option<u16>,
    #[serde(default = "default_tls")]
    tls: String,
    username: String,
    /// "password" (the default) or "oauth2".
    auth: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    oauth2: Option<oauth::RawOAuth2>,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_mailbox")]
    mailbox: String,
    #[serde(default = "default_processed")]
    processed_folder: String,
    #[serde(default = "default_quarantine")]
    quarantine_folder: String,
    #[serde(default = "default_imap_poll", with = "humantime_serde")]
    poll_interval: Duration,
    #[serde(default = "default_true")]
    idle: bool,
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    idle_timeout: Duration,
    #[serde(default = "default_batch")]
    batch_size: u32,
}

fn default_tls() -> String {
    "implicit".into()
}
fn default_mailbox() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_quarantine() -> String {
    "Quarantine".into()
}
fn default_imap_poll() -> Duration {
    Duration::from_secs(30)
}
fn default_true() -> bool {
    true
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(25 * 60)
}
fn default_batch() -> u32 {
    200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    transport: String,
    file: Option<RawFileTransport>,
    smtp: Option<RawSmtp>,
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    retry_base: Duration,
    #[serde(default = "default_retry_max", with = "humantime_serde")]
    retry_max: Duration,
    #[serde(default = "default_attempts")]
    max_attempts: u32,
    #[serde(default = "default_concurrency")]
    concurrency: usize,
}

fn default_retry_base() -> Duration {
    Duration::from_secs(30)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(3600)
}
fn default_attempts() -> u32 {
    10
}
fn default_concurrency() -> usize {
    4
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileTransport {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    #[serde(default = "default_smtp_tls")]
    tls: String,
    username: Option<String>,
    /// "password" (the default) or "oauth2".
    auth: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    oauth2: Option<oauth::RawOAuth2>,
    ca_file: Option<PathBuf>,
    #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
    timeout: Duration,
    /// Name announced in EHLO; defaults to the support address's domain.
    helo_name: Option<String>,
}

fn default_smtp_tls() -> String {
    "starttls".into()
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(30)
}

/// How a connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
    /// Plain connect, then STARTTLS before anything else (IMAP 143, submission 587).
    StartTls,
    /// No TLS at all: for a server on loopback only.
    Plain,
}

impl TlsMode {
    fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        match value {
            "implicit" => Ok(TlsMode::Implicit),
            "starttls" => Ok(TlsMode::StartTls),
            "plain" => Ok(TlsMode::Plain),
            other => Err(invalid(
                key,
                format!("{other:?} is not a TLS mode"),
                "use \"implicit\", \"starttls\" or \"plain\" (plain only for a server on this machine)",
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub gateway: GatewaySettings,
    /// `sqlite:FILE` or `postgres://…` (never with a password in it: printable).
    pub database_url: String,
    /// PostgreSQL's password, from `[database] password_file` or the environment.
    pub database_password: Option<SecretString>,
    pub source: SourceSettings,
    pub outbox: OutboxSettings,
    pub desk: DeskSettings,
    /// `[dashboard]`: none, nothing listens.
    pub dashboard: Option<DashboardSettings>,
    /// `[retention]`: none set, nothing is purged.
    pub retention: RetentionSettings,
}

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub support_address: EmailAddress,
    pub support_name: String,
    pub reference_prefix: CodePrefix,
    pub default_language: Language,
    pub templates_dir: Option<PathBuf>,
    /// The most people one mail makes participants of a new ticket (its sender included):
    /// a mail with 500 addresses in Cc must not make every reply 500 mails.
    pub max_participants: usize,
    /// Web contact forms (`From: form@…`, `Reply-To: the person`): their mail is filed as
    /// the person's. Anyone else's Reply-To outside their own domain is not trusted.
    pub contact_forms: Vec<EmailAddress>,
    /// Who the desk is, as customers read it in greetings and signatures: `[gateway]
    /// organisation`, else the support name.
    pub organisation: String,
}

#[derive(Debug, Clone)]
pub enum SourceSettings {
    Maildir(MaildirSettings),
    /// One or more mailboxes, read side by side (each by one gateway at a time).
    Imap(Vec<ImapSettings>),
}

#[derive(Debug, Clone)]
pub struct MaildirSettings {
    pub path: PathBuf,
    pub poll_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: String,
    pub login: Login,
    pub ca_file: Option<PathBuf>,
    pub mailbox: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    pub poll_interval: Duration,
    pub idle: bool,
    pub idle_timeout: Duration,
    pub batch_size: u32,
}

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub transport: TransportSettings,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub max_attempts: u32,
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub enum TransportSettings {
    File { dir: PathBuf },
    Smtp(SmtpSettings),
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// The user name and how it logs in.
    pub credentials: Option<(String, Login)>,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    pub helo_name: String,
}

/// Where secrets come from, so tests can inject them without touching the process env.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = Config::from_toml(&text, path, &base, &ProcessEnv)?;
        config.load_knowledge()?;
        Ok(config)
    }

    /// Reads and indexes the knowledge base the configuration points at (done by
    /// [`Config::load`]; a configuration made from text alone has none). Broken articles
    /// are left out and kept in the base's `problems` for the caller to report.
    pub fn load_knowledge(&mut self) -> Result<(), ConfigError> {
        // Kept beside the database, where the gateway (and an MTA's `ingest`) may write.
        if let Some(folder) = self
            .sqlite_file()
            .and_then(|f| f.parent().map(Path::to_path_buf))
            .filter(|f| f.is_dir())
        {
            self.desk.knowledge.cache = Some(folder.join("helpdesk-kb.cache"));
        }
        let kb = self.desk.knowledge.load()?;
        self.desk.knowledge.kb = std::sync::Arc::new(kb);
        Ok(())
    }

    /// A database in a folder that does not exist is a typo or an unmounted disk: SQLite
    /// would only say "unable to open database file" once the gateway starts. Checked by
    /// `run` and `check-config`; `ingest` (an MTA's pipe) exits 75 instead, so the mail is
    /// deferred while a disk is missing, never bounced.
    /// Which store `[database] url` names.
    pub fn backend(&self) -> Backend {
        Backend::of(&self.database_url)
    }

    /// The database's file, when the desk is kept in one (not `:memory:`).
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        let path = self.database_url.strip_prefix("sqlite:")?;
        let file = path.trim_start_matches("//").split('?').next()?;
        (!file.is_empty() && !file.starts_with(':')).then(|| PathBuf::from(file))
    }

    pub fn check_database_folder(&self) -> Result<(), ConfigError> {
        if self.backend() != Backend::Sqlite {
            return Ok(());
        }
        let path = self.database_url.trim_start_matches("sqlite:");
        let file = path.split('?').next().unwrap_or_default();
        if file.starts_with(':') {
            return Ok(());
        }
        match Path::new(file).parent() {
            Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(invalid(
                "database.url",
                format!("the folder {} does not exist", dir.display()),
                "create it, or point database.url at a file in an existing folder",
            )),
            _ => Ok(()),
        }
    }

    /// Parses and validates. Relative paths are taken from `base` (the config file's folder),
    /// so a desk folder can be moved as a whole.
    pub fn from_toml(
        text: &str,
        path: &Path,
        base: &Path,
        env: &dyn Env,
    ) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            path: path.into(),
            key: "(file)".into(),
            message: e.to_string(),
        })?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::Syntax {
                path: path.into(),
                key,
                message: e.into_inner().message().trim().to_string(),
            }
        })?;
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let policy = raw.gateway.strangers.clone();
        let gateway = gateway(raw.gateway, &resolve)?;
        let strangers = strangers(policy.as_deref())?;
        let time = time::build(
            time::RawTime {
                calendar: raw.calendar,
                sla: raw.sla,
                waiting: raw.waiting,
                closing: raw.closing,
                vendors: raw.vendors,
            },
            base,
        )?;
        let mut desk = desk::build(
            desk::RawDesk {
                strangers,
                agent_mail: raw.agent_mail,
                limits: raw.limits,
                tiers: raw.tiers,
                categories: raw.categories,
                routing: raw.routing,
                agents: raw.agents,
                escalation: raw.escalation,
                notifications: raw.notifications,
            },
            &gateway.support_address,
        )?;
        desk.knowledge = knowledge::build(raw.knowledge_base, base, &time.calendar)?;
        desk.reports = reports::build(raw.reports)?;
        desk.time = time;
        let (database_url, database_password) = database::build(raw.database, base, &resolve, env)?;

        let shared_oauth2 = raw
            .oauth2
            .map(|o| oauth::oauth2("oauth2", o, &resolve, env))
            .transpose()?;
        let source = source(raw.source, &resolve, env, shared_oauth2.as_ref())?;
        let outbox = outbox(
            raw.outbox,
            &resolve,
            env,
            &gateway.support_address,
            shared_oauth2.as_ref(),
        )?;
        let dashboard = dashboard::build(raw.dashboard, &resolve, env)?;
        let retention = retention::build(raw.retention)?;
        Ok(Config {
            dashboard,
            retention,
            gateway,
            desk,
            database_url,
            database_password,
            source,
            outbox,
        })
    }
}

/// `[gateway]`: the support address, the codes' prefix, the default language and who the
/// desk is.
fn gateway(
    g: RawGateway,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
) -> Result<GatewaySettings, ConfigError> {
    let support_address = EmailAddress::parse(&g.support_address).map_err(|_| {
        invalid(
            "gateway.support_address",
            format!("{:?} is not an e-mail address", g.support_address),
            "write the support mailbox, e.g. \"support@example.com\"",
        )
    })?;
    let reference_prefix = CodePrefix::new(&g.reference_prefix).map_err(|_| {
        invalid(
            "gateway.reference_prefix",
            format!("{:?} is not a valid prefix", g.reference_prefix),
            "use 1 to 10 letters or digits, e.g. \"HD\"",
        )
    })?;
    let default_language = g.default_language.parse::<Language>().map_err(|_| {
        invalid(
            "gateway.default_language",
            format!(
                "{:?} is not a language the gateway writes",
                g.default_language
            ),
            "use \"fr\" or \"en\"",
        )
    })?;
    if g.max_participants == 0 {
        return Err(invalid(
            "gateway.max_participants",
            "0 would leave out even the customer",
            "give the most people one mail may add to a ticket (default 10)",
        ));
    }
    let contact_forms = g
        .contact_forms
        .iter()
        .enumerate()
        .map(|(i, a)| {
            EmailAddress::parse(a).map_err(|_| {
                invalid(
                    &format!("gateway.contact_forms[{i}]"),
                    format!("{a:?} is not an e-mail address"),
                    "give the address your web form sends from, e.g. \"webform@example.com\"",
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let organisation = g
        .organisation
        .map(|o| o.trim().to_string())
        .filter(|o| !o.is_empty())
        .unwrap_or_else(|| g.support_name.clone());
    Ok(GatewaySettings {
        organisation,
        support_name: g.support_name,
        templates_dir: g.templates_dir.map(resolve),
        support_address,
        reference_prefix,
        default_language,
        max_participants: g.max_participants as usize,
        contact_forms,
    })
}

/// `gateway.strangers`: what a stranger's mail quoting a ticket becomes.
fn strangers(policy: Option<&str>) -> Result<desk::StrangerPolicy, ConfigError> {
    Ok(match policy {
        None | Some("new_ticket") => desk::StrangerPolicy::NewTicket,
        Some("hold") => desk::StrangerPolicy::Hold,
        Some(other) => {
            return Err(invalid(
                "gateway.strangers",
                format!("{other:?} is not a policy"),
                "use \"new_ticket\" (their mail opens a ticket of its own) or \"hold\" (it waits in quarantine for review)",
            ));
        }
    })
}

/// A wait between polls or retries: zero would be a busy loop.
fn at_least_100ms(key: &str, d: Duration) -> Result<(), ConfigError> {
    if d < Duration::from_millis(100) {
        return Err(invalid(
            key,
            format!("{} would poll without pause", humantime::format_duration(d)),
            "give at least 100ms, e.g. \"1s\"",
        ));
    }
    Ok(())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn secret(
    key: &str,
    inline: Option<String>,
    file: Option<PathBuf>,
    env_value: Option<String>,
    env_name: &str,
) -> Result<Option<SecretString>, ConfigError> {
    if let Some(v) = env_value {
        return Ok(Some(SecretString::from(v)));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                &format!("{key}_file"),
                format!("cannot read {}: {e}", path.display()),
                format!("fix the path, or set {env_name}"),
            )
        })?;
        return Ok(Some(SecretString::from(
            text.trim_end_matches(['\n', '\r']).to_string(),
        )));
    }
    Ok(inline.map(SecretString::from))
}

/// The commented config `helpdesk init DIR` writes: the embedded default, all inside DIR.
pub fn embedded_default_toml() -> &'static str {
    include_str!("../templates/helpdesk.example.toml")
}

/// The French public holidays (2026-2028) `helpdesk init` writes beside the config, for
/// `calendar.holidays_file`.
pub fn french_holidays_toml() -> &'static str {
    include_str!("../templates/holidays-fr.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) struct NoEnv;
    impl Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("helpdesk.toml"), Path::new("/desk"), &NoEnv)
    }

    #[test]
    fn the_embedded_default_config_is_valid_and_stays_in_its_folder() {
        let c = load(embedded_default_toml()).unwrap();
        assert_eq!(c.database_url, "sqlite:/desk/helpdesk.db");
        match c.source {
            SourceSettings::Maildir(m) => assert_eq!(m.path, Path::new("/desk/Maildir")),
            other => panic!("{other:?}"),
        }
        match c.outbox.transport {
            TransportSettings::File { dir } => assert_eq!(dir, Path::new("/desk/outgoing")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_key_is_named() {
        let text =
            embedded_default_toml().replace("[gateway]", "[gateway]\nsupport_adress = \"x@y\"");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("support_adress"), "{err}");
    }

    #[test]
    fn a_wrong_value_names_the_key_and_the_fix() {
        let text = embedded_default_toml()
            .replace("default_language = \"fr\"", "default_language = \"de\"");
        let err = load(&text).unwrap_err().to_string();
        assert!(
            err.contains("gateway.default_language") && err.contains("\"fr\" or \"en\""),
            "{err}"
        );
    }

    #[test]
    fn a_port_out_of_range_names_the_key() {
        let text = imap_config("port = 99999\n");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("source.imap.port"), "{err}");
    }

    #[test]
    fn plain_imap_is_refused_off_loopback_and_accepted_on_it() {
        let remote = imap_config("tls = \"plain\"\npassword = \"x\"\n");
        let err = load(&remote).unwrap_err().to_string();
        assert!(
            err.contains("source.imap.tls") && err.contains("mail.example.com"),
            "{err}"
        );
        let local = remote.replace("mail.example.com", "127.0.0.1");
        assert!(load(&local).is_ok());
    }

    #[test]
    fn imap_without_password_says_where_to_put_it() {
        let err = load(&imap_config("")).unwrap_err().to_string();
        assert!(err.contains("HELPDESK_IMAP_PASSWORD"), "{err}");
    }

    #[test]
    fn several_mailboxes_are_read_each_named_in_errors() {
        let two = |second: &str| {
            embedded_default_toml().replace(
                "kind = \"maildir\"",
                &format!(
                    "kind = \"imap\"\n[[source.imap]]\nhost = \"mail.example.com\"\n\
                     username = \"support\"\npassword = \"x\"\n\
                     [[source.imap]]\nhost = \"mail.example.com\"\npassword = \"y\"\n{second}"
                ),
            )
        };
        let c = load(&two("username = \"sales\"\n")).unwrap();
        match &c.source {
            SourceSettings::Imap(m) => {
                assert_eq!(m.len(), 2);
                assert_eq!(m[1].username, "sales");
            }
            other => panic!("{other:?}"),
        }
        let e = load(&two("username = \"sales\"\nport = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("source.imap[1].port: "), "{e}");
        let e = load(&two("username = \"support\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("source.imap[1]") && e.contains("same mailbox"),
            "{e}"
        );
        let e = load(&two("username = \"sales\"\nmailbx = \"INBOX\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mailbx"), "a typo is named: {e}");
    }

    fn imap_config(extra: &str) -> String {
        embedded_default_toml().replace(
            "kind = \"maildir\"",
            &format!("kind = \"imap\"\n[source.imap]\nhost = \"mail.example.com\"\nusername = \"support\"\n{extra}"),
        )
    }
}
