//! Outgoing mail from handlebars templates: one template per message, language and part
//! (`templates/{en,fr}/NAME.{subject,txt,html}.hbs`), built into the binary and
//! overridable file by file from `gateway.templates_dir`.
//!
//! Strict mode everywhere, so a template naming a variable we do not pass fails in the test
//! that renders every template, not in a customer's inbox. Text parts are not HTML-escaped
//! (a subject `"printer" & co` stays as written); HTML parts are.

use std::path::Path;

use handlebars::Handlebars;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox as LettreMailbox, MultiPart, SinglePart};
use rand::Rng;
use serde::Serialize;

use crate::domain::{EmailAddress, Language};
use crate::inbound::parse::LOOP_HEADER;

mod context;
mod text;

pub use context::*;
pub use text::*;

/// The messages the gateway knows how to write. The name is also the `kind` of the
/// outgoing mail in the outbox and in `tickets show --json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Template {
    /// To the customer, for a new ticket.
    Acknowledgement,
    /// To the agent given a ticket (or the tier's shared address): the whole thread.
    AgentNotification,
    /// To the assignee when the customer writes again: the new text.
    AgentFollowUp,
    /// To the agent a ticket was taken from: one line.
    AgentReassigned,
    /// To the customer when the ticket changes in a way that matters to them.
    StatusUpdate,
    /// An agent's public reply, relayed to the customer and the participants.
    AgentReply,
    /// To an agent who wrote commands: what each did.
    AgentReceipt,
    /// An internal note, to the agents on the ticket.
    AgentNote,
    /// To the assignee (or tier): a service level is near, missed, or a vendor is silent.
    SlaWarning,
    /// To the customer: the ticket still waits on their answer.
    Reminder,
    /// To an external vendor (L4): the request, without the customer's details.
    VendorForward,
    /// To the assignee: the vendor's answer, which the customer has not seen.
    VendorReply,
    /// To an agent: one outside sender flooded the desk; the notifications about their
    /// mail were held and are summed up here.
    FloodDigest,
    /// To the desk's managers: last week's figures against the week before, with a chart.
    WeeklyReport,
}

impl Template {
    pub const ALL: [Template; 14] = [
        Template::Acknowledgement,
        Template::AgentNotification,
        Template::AgentFollowUp,
        Template::AgentReassigned,
        Template::StatusUpdate,
        Template::AgentReply,
        Template::AgentReceipt,
        Template::AgentNote,
        Template::SlaWarning,
        Template::Reminder,
        Template::VendorForward,
        Template::VendorReply,
        Template::FloodDigest,
        Template::WeeklyReport,
    ];

    /// Whether a mail of this kind spends its recipient's automatic-mail budget: every
    /// kind but an agent's own reply, which a person wrote.
    pub fn counts_against_budget(self) -> bool {
        self != Template::AgentReply
    }

    /// The names of the kinds that spend the budget, as the outbox stores them.
    pub fn budgeted() -> &'static [&'static str] {
        static NAMES: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
            Template::ALL
                .into_iter()
                .filter(|t| t.counts_against_budget())
                .map(Template::name)
                .collect()
        });
        &NAMES
    }

    pub fn name(self) -> &'static str {
        match self {
            Template::Acknowledgement => "acknowledgement",
            Template::AgentNotification => "agent_notification",
            Template::AgentFollowUp => "agent_follow_up",
            Template::AgentReassigned => "agent_reassigned",
            Template::StatusUpdate => "status_update",
            Template::AgentReply => "agent_reply",
            Template::AgentReceipt => "agent_receipt",
            Template::AgentNote => "agent_note",
            Template::SlaWarning => "sla_warning",
            Template::Reminder => "reminder",
            Template::VendorForward => "vendor_forward",
            Template::VendorReply => "vendor_reply",
            Template::FloodDigest => "flood_digest",
            Template::WeeklyReport => "weekly_report",
        }
    }
}

#[derive(Clone, Copy)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    #[cfg(test)]
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];
    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Text => "txt",
            Part::Html => "html",
        }
    }
}

macro_rules! builtin {
    ($lang:literal, $name:literal) => {
        [
            concat!($lang, "/", $name, ".subject.hbs"),
            include_str!(concat!(
                "../../templates/",
                $lang,
                "/",
                $name,
                ".subject.hbs"
            )),
            concat!($lang, "/", $name, ".txt.hbs"),
            include_str!(concat!("../../templates/", $lang, "/", $name, ".txt.hbs")),
            concat!($lang, "/", $name, ".html.hbs"),
            include_str!(concat!("../../templates/", $lang, "/", $name, ".html.hbs")),
        ]
    };
}

/// Built-in templates as (file name, text) pairs, file names relative to `templates/`.
fn builtin_templates() -> Vec<(&'static str, &'static str)> {
    let sets = [
        builtin!("en", "acknowledgement"),
        builtin!("fr", "acknowledgement"),
        builtin!("en", "agent_notification"),
        builtin!("fr", "agent_notification"),
        builtin!("en", "agent_follow_up"),
        builtin!("fr", "agent_follow_up"),
        builtin!("en", "agent_reassigned"),
        builtin!("fr", "agent_reassigned"),
        builtin!("en", "status_update"),
        builtin!("fr", "status_update"),
        builtin!("en", "agent_reply"),
        builtin!("fr", "agent_reply"),
        builtin!("en", "agent_receipt"),
        builtin!("fr", "agent_receipt"),
        builtin!("en", "agent_note"),
        builtin!("fr", "agent_note"),
        builtin!("en", "sla_warning"),
        builtin!("fr", "sla_warning"),
        builtin!("en", "reminder"),
        builtin!("fr", "reminder"),
        builtin!("en", "vendor_forward"),
        builtin!("fr", "vendor_forward"),
        builtin!("en", "vendor_reply"),
        builtin!("fr", "vendor_reply"),
        builtin!("en", "flood_digest"),
        builtin!("fr", "flood_digest"),
        builtin!("en", "weekly_report"),
        builtin!("fr", "weekly_report"),
        [
            "en/footer.txt.hbs",
            include_str!("../../templates/en/footer.txt.hbs"),
            "fr/footer.txt.hbs",
            include_str!("../../templates/fr/footer.txt.hbs"),
            "partials/style.html.hbs",
            include_str!("../../templates/partials/style.html.hbs"),
        ],
    ];
    sets.iter()
        .flat_map(|s| s.chunks(2).map(|c| (c[0], c[1])))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("template {name}: {source}")]
    Template {
        name: String,
        source: Box<handlebars::TemplateError>,
    },
    #[error("rendering {name}: {source}")]
    Render {
        name: String,
        source: Box<handlebars::RenderError>,
    },
    #[error(
        "template {name} compares `change` with \"{change}\", which no mail carries (known: {known})"
    )]
    UnknownChange {
        name: String,
        change: String,
        known: String,
    },
    #[error("building the mail: {0}")]
    Build(String),
    #[error("the renderer panicked: {0}")]
    Panicked(String),
}

/// Templates are read (and overrides loaded) at start, but each is compiled the first time
/// it is used: compiling all 72 costs about 58 million instructions (89% of a one-mail
/// `ingest`, measured with callgrind), and a process filing one mail uses a handful.
/// [`Renderer::check`] compiles them all, for `run` and `check-config`.
pub struct Renderer {
    text: std::sync::RwLock<Handlebars<'static>>,
    html: std::sync::RwLock<Handlebars<'static>>,
    /// Registered name → (file name, source), not compiled yet.
    sources: std::collections::HashMap<String, (&'static str, String)>,
}

/// The changes a template's source compares `change` with that do not exist.
fn unknown_changes(source: &str) -> Vec<String> {
    static NAMED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"\bchange\s+(?:"([^"]*)"|'([^']*)')"#).expect("a valid pattern")
    });
    NAMED
        .captures_iter(source)
        .filter_map(|c| c.get(1).or(c.get(2)).map(|m| m.as_str().to_string()))
        .filter(|name| !Change::ALL.iter().any(|c| c.as_str() == name))
        .collect()
}

/// `In-Reply-To` (the parent, when usable) and `References` (the last ten usable ids, then
/// the parent): what threads the mail under the one it answers in every client.
fn threaded(
    mut builder: lettre::message::MessageBuilder,
    env: &Envelope<'_>,
) -> lettre::message::MessageBuilder {
    let parent = env.in_reply_to.filter(|id| usable_message_id(id));
    if let Some(parent) = parent {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    let usable: Vec<&String> = env
        .references
        .iter()
        .filter(|r| usable_message_id(r))
        .collect();
    let mut refs: Vec<String> = usable[usable.len().saturating_sub(10)..]
        .iter()
        .map(|r| format!("<{r}>"))
        .collect();
    if let Some(parent) = parent {
        let p = format!("<{parent}>");
        if !refs.contains(&p) {
            refs.push(p);
        }
    }
    if !refs.is_empty() {
        builder = builder.references(refs.join(" "));
    }
    builder
}

/// How a mail marks itself as automatic (RFC 3834), so well-behaved responders stay quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoSubmitted {
    /// An answer to someone's mail (the acknowledgement).
    Replied,
    /// Sent on the gateway's own initiative (notifications, status mail).
    Generated,
}

/// A rendered mail ready for the outbox.
pub struct Rendered {
    pub message_id: String,
    pub subject: String,
    pub text: String,
    pub raw: Vec<u8>,
}

/// Where a rendered mail goes and what it answers.
pub struct Envelope<'a> {
    pub from: &'a EmailAddress,
    pub from_name: &'a str,
    pub to: &'a EmailAddress,
    pub to_name: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    pub language: Language,
    /// `None`: written by a person (an agent's reply relayed), no `Auto-Submitted`.
    pub auto_submitted: Option<AutoSubmitted>,
    /// Files sent along (an agent's attachments, relayed to the customer).
    pub attachments: &'a [OutgoingAttachment],
    /// Images the HTML part shows (`<img src="cid:…">`), sent inline beside it.
    pub inline: &'a [InlineImage],
}

/// An image shown inside the HTML part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InlineImage {
    /// The `Content-ID` the HTML names as `cid:…` (without angle brackets).
    pub content_id: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A file attached to an outgoing mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

impl Renderer {
    /// Built-in templates, with any file of the same name in `override_dir` taking precedence.
    pub fn new(override_dir: Option<&Path>) -> Result<Self, RenderError> {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut sources = std::collections::HashMap::new();
        for (file, builtin) in builtin_templates() {
            let source = match override_dir.map(|d| d.join(file)).filter(|p| p.is_file()) {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                        path: path.display().to_string(),
                        source,
                    })?
                }
                None => builtin.to_string(),
            };
            if let Some(unknown) = unknown_changes(&source).first() {
                let known: Vec<&str> = Change::ALL.iter().map(|c| c.as_str()).collect();
                return Err(RenderError::UnknownChange {
                    name: file.into(),
                    change: unknown.clone(),
                    known: known.join(", "),
                });
            }
            let name = file.trim_end_matches(".hbs");
            let register_name = name.strip_prefix("partials/").unwrap_or(name);
            // Partials are looked up by the templates that include them: compiled now.
            if file.starts_with("partials/") || file.contains("/footer.") {
                let registry = if file.ends_with(".html.hbs") {
                    &mut html
                } else {
                    &mut text
                };
                registry
                    .register_template_string(register_name, source)
                    .map_err(|source| RenderError::Template {
                        name: file.into(),
                        source: Box::new(source),
                    })?;
            } else {
                sources.insert(register_name.to_string(), (file, source));
            }
        }
        Ok(Self {
            text: std::sync::RwLock::new(text),
            html: std::sync::RwLock::new(html),
            sources,
        })
    }

    /// Compiles every template now, so a broken override is reported at start rather than
    /// as a `mail_not_rendered` event later.
    pub fn check(&self) -> Result<(), RenderError> {
        for template in Template::ALL {
            for language in Language::ALL {
                for part in [Part::Subject, Part::Text, Part::Html] {
                    self.compiled(&Self::name(template, language, part), part)?;
                }
            }
        }
        Ok(())
    }

    fn name(template: Template, language: Language, part: Part) -> String {
        format!(
            "{}/{}.{}",
            language.as_str(),
            template.name(),
            part.suffix()
        )
    }

    fn registry(&self, part: Part) -> &std::sync::RwLock<Handlebars<'static>> {
        match part {
            Part::Html => &self.html,
            _ => &self.text,
        }
    }

    /// Compiles `name` unless it already is.
    fn compiled(&self, name: &str, part: Part) -> Result<(), RenderError> {
        let registry = self.registry(part);
        if registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .has_template(name)
        {
            return Ok(());
        }
        let Some((file, source)) = self.sources.get(name) else {
            // Not a template of ours: rendering says so.
            return Ok(());
        };
        let mut registry = registry.write().unwrap_or_else(|e| e.into_inner());
        if !registry.has_template(name) {
            registry
                .register_template_string(name, source)
                .map_err(|source| RenderError::Template {
                    name: (*file).into(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    fn part(
        &self,
        template: Template,
        language: Language,
        part: Part,
        ctx: &impl Serialize,
    ) -> Result<String, RenderError> {
        let name = Self::name(template, language, part);
        self.compiled(&name, part)?;
        self.registry(part)
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .render(&name, ctx)
            .map_err(|source| RenderError::Render {
                name,
                source: Box::new(source),
            })
    }

    /// Renders `template` and builds the whole RFC 5322 mail, headers included.
    pub fn render(
        &self,
        template: Template,
        ctx: &impl Serialize,
        env: &Envelope<'_>,
    ) -> Result<Rendered, RenderError> {
        let subject = self.part(template, env.language, Part::Subject, ctx)?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = self.part(template, env.language, Part::Text, ctx)?;
        let html = self.part(template, env.language, Part::Html, ctx)?;
        let message_id = new_message_id(env.from);

        let mailbox =
            |name: Option<&str>, addr: &EmailAddress| -> Result<LettreMailbox, RenderError> {
                let address = addr
                    .as_str()
                    .parse()
                    .map_err(|e| RenderError::Build(format!("address {addr}: {e}")))?;
                Ok(LettreMailbox::new(
                    name.map(str::to_string).filter(|n| !n.is_empty()),
                    address,
                ))
            };
        let mut builder = lettre::Message::builder()
            .from(mailbox(Some(env.from_name), env.from)?)
            .to(mailbox(env.to_name, env.to)?)
            .subject(subject.clone())
            .message_id(Some(format!("<{message_id}>")))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str(LOOP_HEADER),
                env.from.to_string(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Content-Language"),
                env.language.as_str().into(),
            ));
        if let Some(auto) = env.auto_submitted {
            let value = match auto {
                AutoSubmitted::Replied => "auto-replied",
                AutoSubmitted::Generated => "auto-generated",
            };
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("Auto-Submitted"),
                    value.into(),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("X-Auto-Response-Suppress"),
                    "All".into(),
                ));
        }
        builder = threaded(builder, env);
        // Line endings are made CRLF here, in one pass: lettre inserts each missing CR
        // one by one (`String::insert`), quadratic in the text's length (88% of the time
        // of filing a 30 MB mail went to that memmove).
        let html_part = SinglePart::builder()
            .header(ContentType::TEXT_HTML)
            .body(crlf(&html));
        let text_part = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(crlf(&text));
        let alternative = if env.inline.is_empty() {
            MultiPart::alternative()
                .singlepart(text_part)
                .singlepart(html_part)
        } else {
            // multipart/related keeps the images with the HTML that shows them (RFC 2387).
            let mut related = MultiPart::related().singlepart(html_part);
            for image in env.inline {
                let content_type = ContentType::parse(&image.content_type)
                    .map_err(|e| RenderError::Build(format!("{}: {e}", image.content_type)))?;
                related = related.singlepart(
                    lettre::message::Attachment::new_inline(image.content_id.clone())
                        .body(image.content.clone(), content_type),
                );
            }
            MultiPart::alternative()
                .singlepart(text_part)
                .multipart(related)
        };
        let body = if env.attachments.is_empty() {
            alternative
        } else {
            let mut mixed = MultiPart::mixed().multipart(alternative);
            for a in env.attachments {
                let content_type = ContentType::parse(&a.content_type)
                    .unwrap_or_else(|_| ContentType::parse("application/octet-stream").unwrap());
                mixed = mixed.singlepart(
                    lettre::message::Attachment::new(a.filename.clone())
                        .body(a.content.clone(), content_type),
                );
            }
            mixed
        };
        let message = builder
            .multipart(body)
            .map_err(|e| RenderError::Build(e.to_string()))?;
        Ok(Rendered {
            message_id,
            subject,
            text,
            raw: message.formatted(),
        })
    }
}

/// `<random.timestamp@support-domain>`: ours, unique, and recognisable in References.
fn new_message_id(from: &EmailAddress) -> String {
    let mut rng = rand::rng();
    let random: String = (0..16)
        .map(|_| char::from(b"0123456789abcdefghijklmnopqrstuv"[rng.random_range(0..32)]))
        .collect();
    format!(
        "{}.{}@{}",
        random,
        chrono::Utc::now().timestamp_millis(),
        from.domain()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MailContext {
        MailContext {
            code: "HD-7K3M9QXA".into(),
            tag: "[HD-7K3M9QXA]".into(),
            subject: "\"printer\" & co <urgent>".into(),
            customer_name: "Marie".into(),
            customer_address: "marie@example.fr".into(),
            support_name: "Support".into(),
            support_address: "support@example.test".into(),
            recipient_name: "Alice Martin".into(),
            tier: "L2".into(),
            tier_label: "Niveau 2 – support avancé".into(),
            category: "printer".into(),
            category_label: "imprimante".into(),
            urgent: true,
            answer_by: "mardi 1er décembre à 10 h 30".into(),
            round_the_clock: false,
            time_zone: "Europe/Paris".into(),
            organisation: "Service informatique".into(),
            priority: "high".into(),
            priority_label: "haute".into(),
            status: "open".into(),
            status_label: "ouvert".into(),
            assignee_name: "Alice Martin".into(),
            change: Some(Change::Escalated),
            reason: "reopened twice".into(),
            new_text: "Toujours en panne.".into(),
            new_text_from: "Marie <marie@example.fr>".into(),
            reopened: true,
            attachments: vec![AttachmentLine::new(Some("photo.jpg"), 12_800)],
            last_message: "L'imprimante fait toujours un bourrage.".into(),
            last_message_date: "2026-11-23 09:12 UTC".into(),
            flood_from: "bot@flood.example".into(),
            flood_count: 2000,
            flood_held: 1980,
            flood_codes: vec!["HD-7K3M9QXA".into(), "HD-2M4K7P9R".into()],
            flood_more: 1948,
            articles: Vec::new(),
            several_articles: false,
            report: Some(sample_report(Language::Fr)),
            thread: vec![ThreadItem {
                author: "Marie <marie@example.fr>".into(),
                date: "2026-11-23 09:14 UTC".into(),
                text: "L'imprimante fait un bourrage.".into(),
                attachments: vec![AttachmentLine::new(Some("photo.jpg"), 12_800)],
            }],
            receipt: vec![
                ReceiptLine {
                    command: "#priority high".into(),
                    applied: true,
                    result: "priority high".into(),
                },
                ReceiptLine {
                    command: "#escalate L9".into(),
                    applied: false,
                    result: "a ticket at L4 cannot move".into(),
                },
            ],
        }
    }

    /// Every notice the desk can put in a mail, one of each.
    fn every_notice() -> Vec<crate::desk::wording::Notice> {
        use crate::desk::mail_command::{CommandLineError, Expected};
        use crate::desk::wording::{Notice, Target};
        use crate::domain::{Priority, ReferenceCode, Refusal, TicketStatus, Tier};
        let a = EmailAddress::parse("paul@example.org").unwrap();
        let code = ReferenceCode::from_stored("HD-7K3M9QXA".into());
        let printer: crate::domain::Category = "printer".parse().unwrap();
        let at = 1_795_000_000_000;
        let mut all = vec![
            Notice::StatusMoved {
                from: TicketStatus::Open,
                to: TicketStatus::Resolved,
            },
            Notice::TierMoved {
                from: Tier::L1FrontLine,
                to: Tier::L2Advanced,
                assignee: Some(a.to_string()),
            },
            Notice::TierMoved {
                from: Tier::L2Advanced,
                to: Tier::L3Expert,
                assignee: None,
            },
            Notice::AssignedTo(a.to_string()),
            Notice::AssignedToYou,
            Notice::PriorityMoved {
                from: Priority::Urgent,
                to: Priority::High,
            },
            Notice::CategoryMoved {
                from: printer.clone(),
                to: "security".parse().unwrap(),
            },
            Notice::WillReceiveReplies(a.clone()),
            Notice::InternalNote,
            Notice::NotTakenAsYours,
            Notice::ReplyToOutside(a.clone()),
            Notice::CcLeftOut {
                count: 7,
                max: 10,
                shown: vec![a.clone()],
            },
            Notice::Stranger {
                from: a.clone(),
                code: code.clone(),
                filed_as_new: true,
                vendor: None,
            },
            Notice::Stranger {
                from: a.clone(),
                code: code.clone(),
                filed_as_new: false,
                vendor: Some("Ricoh".into()),
            },
            Notice::CommandsFromOutsider,
            Notice::CustomerSolved,
            Notice::SelfServiceEnded(crate::desk::events::HoldEnd::Replied),
            Notice::SelfServiceEnded(crate::desk::events::HoldEnd::TimeUp),
            Notice::ArticleAdded("vpn-errors".into()),
            Notice::UnknownArticle {
                id: "vpn-eror".into(),
                closest: vec!["vpn-errors".into(), "vpn-erreurs".into()],
            },
            Notice::FollowsClosed(code.clone()),
            Notice::ReopenedTimes(2),
            Notice::TargetsMissed(vec![
                (Target::FirstResponse, Some(at)),
                (Target::Resolution, Some(at)),
            ]),
            Notice::TargetsNear(vec![(Target::FirstResponse, Some(at))]),
            Notice::VendorSilent {
                vendor: "Ricoh".into(),
                since: Some(at),
            },
            Notice::On(at),
            Notice::SentToVendor,
        ];
        let refusals = [
            Refusal::AlreadyThere(TicketStatus::Resolved),
            Refusal::Status {
                from: TicketStatus::Closed,
                to: TicketStatus::Resolved,
            },
            Refusal::NotUp {
                from: Tier::L3Expert,
                to: Tier::L2Advanced,
            },
            Refusal::TopTier(Tier::L4Vendor),
            Refusal::Closed,
            Refusal::NotOnRoster(a.clone()),
            Refusal::AlreadyAssigned(a.clone()),
            Refusal::NoSuchVendor {
                name: "Acme".into(),
                known: vec![],
            },
            Refusal::NoSuchVendor {
                name: "Acme".into(),
                known: vec!["Ricoh".into()],
            },
            Refusal::AlreadyWithVendor("Ricoh".into()),
            Refusal::VendorNeeded { known: vec![] },
            Refusal::VendorNeeded {
                known: vec!["Ricoh".into()],
            },
            Refusal::WaitOutOfRange(std::time::Duration::from_secs(400 * 86_400)),
            Refusal::SamePriority(Priority::High),
            Refusal::SameCategory(printer.clone()),
            Refusal::NoSuchCategory {
                name: "imprimnate".parse().unwrap(),
                known: vec![printer, crate::domain::Category::general()],
            },
            Refusal::SupportAddress,
            Refusal::NotReopenable(TicketStatus::Open),
        ];
        all.extend(refusals.into_iter().map(Notice::Refused));
        let lines = [
            CommandLineError::Unknown("frobnicate".into()),
            CommandLineError::Missing {
                command: "assign",
                what: Expected::AgentAddress,
            },
            CommandLineError::BadValue {
                command: "escalate",
                value: "L9".into(),
                what: Expected::Tier,
            },
            CommandLineError::BadValue {
                command: "wait",
                value: "9999d".into(),
                what: Expected::Duration,
            },
            CommandLineError::BadValue {
                command: "priority",
                value: "maybe".into(),
                what: Expected::Priority,
            },
            CommandLineError::BadValue {
                command: "category",
                value: "X!".into(),
                what: Expected::Category,
            },
            CommandLineError::BadValue {
                command: "cc",
                value: "x@".into(),
                what: Expected::Address,
            },
        ];
        all.extend(lines.into_iter().map(Notice::NotUnderstood));
        all
    }

    /// A mail's context as the gateway fills it for a reader of `language`: labels and
    /// notices in that language, and a ticket whose own words belong to no language.
    /// A week's report as `stats::report` words it, in `language`.
    fn sample_report(language: Language) -> ReportView {
        let fr = language == Language::Fr;
        let pick = |f: &str, e: &str| if fr { f.to_string() } else { e.to_string() };
        ReportView {
            period: pick(
                "semaine 48, du 23/11/2026 au 29/11/2026",
                "week 48, 2026-11-23 to 2026-11-29",
            ),
            previous: pick("semaine 47", "week 47"),
            figures: vec![ReportFigure {
                label: pick("Tickets créés", "Tickets created"),
                this_week: "12".into(),
                previous_week: "9".into(),
                trend: "▲".into(),
            }],
            tiers: vec![ReportGroup {
                name: "L1".into(),
                created: 12,
                resolved: 10,
                backlog: 3,
                first_response: "30 min".into(),
                resolution: "2 h 00".into(),
                breaches: 1,
                csat: pick("4,5 (2)", "4.5 (2)"),
            }],
            agents: Vec::new(),
            came_back: vec![ReportTicket {
                code: "HD-7K3M9QXA".into(),
                what: pick(
                    "revenu 3 j 0 h après sa résolution (L1)",
                    "came back 3 d 0 h after its resolution (L1)",
                ),
            }],
            breaches: Vec::new(),
            comments: vec![ReportComment {
                code: "HD-7K3M9QXA".into(),
                score: 2,
                comment: pick("trop long <vraiment>", "too slow <really>"),
            }],
            chart_cid: "weekly-volume@example.test".into(),
            time_zone: "Europe/Paris".into(),
        }
    }

    fn ctx_in(language: Language) -> MailContext {
        use crate::domain::{Priority, TicketStatus, Tier};
        let roster = crate::roster::Roster::default();
        let w = crate::desk::wording::Wording {
            roster: &roster,
            time_zone: "Europe/Paris".parse().unwrap(),
        };
        let printer: crate::domain::Category = "printer".parse().unwrap();
        let notices = every_notice();
        MailContext {
            code: "HD-7K3M9QXA".into(),
            tag: "[HD-7K3M9QXA]".into(),
            subject: "HP M404 E-13".into(),
            customer_name: "Kim Lee".into(),
            customer_address: "kim@example.org".into(),
            support_name: "Helpdesk".into(),
            support_address: "support@example.test".into(),
            recipient_name: "Sam Ito".into(),
            tier: "L2".into(),
            tier_label: roster.tier_label(Tier::L2Advanced, language),
            category: "printer".into(),
            category_label: roster.category_label(&printer, language),
            urgent: true,
            answer_by: crate::desk::wording::moment(
                crate::timing::instant(1_795_000_000_000).with_timezone(&w.time_zone),
                language,
            ),
            round_the_clock: false,
            time_zone: "Paris".into(),
            organisation: "ACME IT".into(),
            priority: "urgent".into(),
            priority_label: priority_label(Priority::Urgent, language).into(),
            status: "open".into(),
            status_label: status_label(TicketStatus::WaitingOnCustomer, language).into(),
            assignee_name: "Sam Ito".into(),
            change: None,
            reason: crate::desk::wording::Notice::All(notices.clone()).words(language, &w),
            new_text: "M404 E-13 (42)".into(),
            new_text_from: "Kim Lee <kim@example.org>".into(),
            reopened: true,
            attachments: vec![AttachmentLine::new(Some("IMG_0042.jpg"), 12_800)],
            last_message: "M404 E-13".into(),
            last_message_date: "2026-11-23 09:12".into(),
            flood_from: "bot@example.org".into(),
            flood_count: 2000,
            flood_held: 1980,
            flood_codes: vec!["HD-7K3M9QXA".into()],
            flood_more: 1948,
            articles: crate::kb::starter::knowledge_base()
                .articles()
                .iter()
                .filter(|a| a.language == language)
                .take(2)
                .map(|a| ArticleView::of(a, true, Some(41.5)))
                .collect(),
            several_articles: true,
            report: Some(sample_report(language)),
            thread: vec![ThreadItem {
                author: "Kim Lee <kim@example.org>".into(),
                date: "2026-11-23 09:14".into(),
                text: "M404 E-13".into(),
                attachments: vec![AttachmentLine::new(Some("IMG_0042.jpg"), 12_800)],
            }],
            receipt: notices
                .iter()
                .enumerate()
                .map(|(i, n)| ReceiptLine {
                    command: format!("#x{i}"),
                    applied: i % 2 == 0,
                    result: n.words(language, &w),
                })
                .collect(),
        }
    }

    /// Words that give an English sentence away in French text, and a French one in
    /// English text (whole words, lower case).
    const ENGLISH: &[&str] = &[
        "the",
        "and",
        "is",
        "are",
        "your",
        "you",
        "please",
        "assigned",
        "due",
        "missed",
        "refused",
        "done",
        "waiting",
        "reply",
        "answer",
        "category",
        "priority",
        "vendor",
        "level",
        "customer",
        "not",
        "with",
        "first",
        "response",
        "resolved",
        "closed",
        "open",
        "ticket is",
        "target",
        "will",
        "was",
        "has",
        "been",
        "to",
        "of",
        "for",
        "by",
    ];
    const FRENCH: &[&str] = &[
        "le",
        "la",
        "les",
        "des",
        "est",
        "votre",
        "vous",
        "nous",
        "une",
        "pour",
        "avec",
        "pas",
        "dans",
        "à",
        "été",
        "priorité",
        "résolu",
        "clôturé",
        "attente",
        "niveau",
        "catégorie",
        "réponse",
        "client",
        "fournisseur",
        "attribué",
        "demande",
        "merci",
        "bonjour",
        "au",
        "du",
    ];

    fn tell_tales(text: &str, words: &[&str]) -> Vec<String> {
        let lower = text.to_lowercase();
        // The command line's own verbs are English in both languages.
        let lower = lower.replace("helpdesk tickets resolve|escalate|assign|close", "");
        let tokens: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '-'))
            .flat_map(|t| t.split('\''))
            .filter(|t| !t.is_empty())
            .collect();
        let mut found = Vec::new();
        for w in words {
            let hit = if w.contains(' ') {
                tokens.join(" ").contains(w)
            } else {
                tokens.contains(w)
            };
            if hit {
                found.push(w.to_string());
            }
        }
        found
    }

    /// Every mail kind, in each language, for every change it words: no sentence of the
    /// other language inside (refusals, reasons, labels, targets, dates included).
    #[test]
    fn every_mail_speaks_one_language() {
        let r = Renderer::new(None).unwrap();
        let changes = std::iter::once(None).chain(Change::ALL.map(Some));
        let mut wrong = Vec::new();
        for template in Template::ALL {
            for language in Language::ALL {
                for change in changes.clone() {
                    let mut ctx = ctx_in(language);
                    ctx.change = change;
                    for part in Part::ALL {
                        let out = r.part(template, language, part, &ctx).unwrap();
                        let text = if matches!(part, Part::Html) {
                            html_text(&out)
                        } else {
                            out
                        };
                        let other = match language {
                            Language::Fr => ENGLISH,
                            Language::En => FRENCH,
                        };
                        for word in tell_tales(&text, other) {
                            let line =
                                format!("{template:?} {language} {}: {word:?}", part.suffix());
                            if !wrong.contains(&line) {
                                wrong.push(line);
                            }
                        }
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} words of the other language:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    /// The visible text of an HTML part: tags and entities out.
    fn html_text(html: &str) -> String {
        let body = html.split("<body>").nth(1).unwrap_or(html);
        let no_tags = regex::Regex::new("<[^>]*>").unwrap().replace_all(body, " ");
        no_tags
            .replace("&nbsp;", " ")
            .replace("&laquo;", "«")
            .replace("&raquo;", "»")
            .replace("&ldquo;", "\"")
            .replace("&rdquo;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
    }

    #[test]
    fn every_template_renders_in_every_language_in_strict_mode() {
        let r = Renderer::new(None).unwrap();
        let support = EmailAddress::parse("support@example.test").unwrap();
        let customer = EmailAddress::parse("marie@example.fr").unwrap();
        for template in Template::ALL {
            for language in Language::ALL {
                for part in Part::ALL {
                    let out = r.part(template, language, part, &ctx()).unwrap();
                    assert!(!out.trim().is_empty(), "{template:?} {language} empty");
                }
                let env = Envelope {
                    from: &support,
                    from_name: "Support",
                    to: &customer,
                    to_name: Some("Marie"),
                    in_reply_to: Some("abc@example.fr"),
                    references: &[],
                    language,
                    auto_submitted: Some(AutoSubmitted::Replied),
                    attachments: &[],
                    inline: &[],
                };
                let mail = r.render(template, &ctx(), &env).unwrap();
                // The digest is about many tickets, and names them in its text.
                assert!(
                    matches!(template, Template::FloodDigest | Template::WeeklyReport)
                        || mail.subject.starts_with("[HD-7K3M9QXA]"),
                    "{}",
                    mail.subject
                );
                let raw = String::from_utf8_lossy(&mail.raw);
                assert!(raw.contains("Auto-Submitted: auto-replied"));
                assert!(raw.contains("In-Reply-To: <abc@example.fr>"));
                assert!(raw.contains("X-Helpdesk-Loop: support@example.test"));
            }
        }
    }

    #[test]
    fn a_vendor_is_not_sent_the_customers_address_or_phone() {
        let text = "Call me on 06 12 34 56 78 or +33 (0)1.23.45.67.89, mail jane.doe+it@corp.example.fr.\nPrinter model 4521, error 0x1234 since 2026-11-20.";
        let masked = without_contact_details(text);
        assert_eq!(
            masked,
            "Call me on [phone removed] or [phone removed], mail [address removed].\nPrinter model 4521, error 0x1234 since 2026-11-20."
        );
    }

    #[test]
    fn a_template_naming_a_change_that_does_not_exist_is_refused_at_start() {
        assert_eq!(
            unknown_changes(r#"{{#if (eq change "resolvd")}}x{{/if}}{{#if (eq change 'closed')}}"#),
            ["resolvd"]
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fr")).unwrap();
        std::fs::write(
            dir.path().join("fr/status_update.txt.hbs"),
            "{{#if (eq change \"résolu\")}}Résolu.{{/if}}",
        )
        .unwrap();
        let error = Renderer::new(Some(dir.path())).err().expect("refused");
        let said = error.to_string();
        assert!(said.contains("fr/status_update.txt.hbs"), "{said}");
        assert!(
            said.contains("\"résolu\"") && said.contains("no_answer"),
            "{said}"
        );
    }

    /// The other way round: every change a mail can carry has words in some template of
    /// each language, so none goes out as an empty sentence. A reminder is worded by a
    /// template of its own.
    #[test]
    fn every_change_is_worded_in_both_languages() {
        for language in Language::ALL {
            let sources: String = builtin_templates()
                .into_iter()
                .filter(|(file, _)| file.starts_with(&format!("{language}/")))
                .map(|(_, source)| source)
                .collect();
            for change in Change::ALL.into_iter().filter(|c| *c != Change::Reminder) {
                assert!(
                    sources.contains(&format!("change \"{change}\"")),
                    "{language}: no template words {change}"
                );
            }
        }
    }

    #[test]
    fn every_status_change_has_its_own_sentence_in_both_languages() {
        let r = Renderer::new(None).unwrap();
        for language in Language::ALL {
            let mut seen = std::collections::HashSet::new();
            for change in [
                Change::Assigned,
                Change::Escalated,
                Change::Waiting,
                Change::Resolved,
                Change::Closed,
                Change::Reopened,
                Change::NoAnswer,
            ] {
                let mut c = ctx();
                c.change = Some(change);
                let text = r
                    .part(Template::StatusUpdate, language, Part::Text, &c)
                    .unwrap();
                assert!(
                    seen.insert(text.clone()),
                    "{language} {change}: same text as another change"
                );
                let html = r
                    .part(Template::StatusUpdate, language, Part::Html, &c)
                    .unwrap();
                assert!(html.contains("HD-7K3M9QXA"), "{html}");
            }
            let escalated = {
                let mut c = ctx();
                c.change = Some(Change::Escalated);
                r.part(Template::StatusUpdate, language, Part::Text, &c)
                    .unwrap()
            };
            assert!(
                escalated.contains("Niveau 2 – support avancé"),
                "{escalated}"
            );
        }
    }

    #[test]
    fn templates_render_with_an_unassigned_ticket_and_an_empty_thread() {
        let r = Renderer::new(None).unwrap();
        let bare = MailContext {
            code: "HD-7K3M9QXA".into(),
            tag: "[HD-7K3M9QXA]".into(),
            // A week without activity: empty lists, no figures.
            report: Some(ReportView::default()),
            ..MailContext::default()
        };
        for template in Template::ALL {
            for language in Language::ALL {
                for part in Part::ALL {
                    r.part(template, language, part, &bare)
                        .unwrap_or_else(|e| panic!("{template:?} {language}: {e}"));
                }
            }
        }
        let text = r
            .part(
                Template::AgentNotification,
                Language::En,
                Part::Text,
                &ctx(),
            )
            .unwrap();
        for needle in [
            "L'imprimante fait un bourrage.",
            "photo.jpg, 12.5 KB",
            "Marie <marie@example.fr>, 2026-11-23 09:14 UTC",
            "printer",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
    }

    #[test]
    fn a_huge_subject_and_absurd_message_ids_never_make_an_overlong_header_line() {
        let r = Renderer::new(None).unwrap();
        let support = EmailAddress::parse("support@example.test").unwrap();
        let customer = EmailAddress::parse("marie@example.fr").unwrap();
        let mut context = ctx();
        context.subject = echoed_subject(&"Ä".repeat(50_000));
        assert_eq!(
            context.subject.chars().count(),
            ECHOED_SUBJECT_MAX_CHARS + 1
        );
        let mut spaced = ctx();
        spaced.subject = echoed_subject(&"word ".repeat(20_000));
        let huge_id = format!("{}@example.fr", "x".repeat(10_000));
        let refs = vec![huge_id.clone(), "ok@example.fr".to_string()];
        for context in [context, spaced] {
            let env = Envelope {
                from: &support,
                from_name: "Support",
                to: &customer,
                to_name: Some("Marie"),
                in_reply_to: Some(&huge_id),
                references: &refs,
                language: Language::En,
                auto_submitted: Some(AutoSubmitted::Replied),
                attachments: &[],
                inline: &[],
            };
            let mail = r.render(Template::Acknowledgement, &context, &env).unwrap();
            let raw = String::from_utf8(mail.raw).unwrap();
            let longest = raw.split("\r\n").map(str::len).max().unwrap();
            assert!(longest <= 998, "a line of {longest} characters");
            assert!(raw.len() < 10_000, "{} bytes sent", raw.len());
            assert!(!raw.contains("xxxxxxxxxx"), "the absurd id was echoed");
            assert!(raw.contains("References: <ok@example.fr>"), "{raw}");
        }
    }

    #[test]
    fn short_subjects_are_echoed_whole() {
        assert_eq!(echoed_subject("Imprimante"), "Imprimante");
        let exactly = "a".repeat(ECHOED_SUBJECT_MAX_CHARS);
        assert_eq!(echoed_subject(&exactly), exactly);
    }

    #[test]
    fn text_is_not_escaped_and_html_is() {
        let r = Renderer::new(None).unwrap();
        let text = r
            .part(Template::Acknowledgement, Language::En, Part::Text, &ctx())
            .unwrap();
        assert!(text.contains("\"printer\" & co <urgent>"), "{text}");
        let html = r
            .part(Template::Acknowledgement, Language::En, Part::Html, &ctx())
            .unwrap();
        assert!(
            html.contains("&quot;printer&quot; &amp; co &lt;urgent&gt;"),
            "{html}"
        );
    }

    #[test]
    fn french_and_english_acknowledgements_differ() {
        let r = Renderer::new(None).unwrap();
        let fr = r
            .part(Template::Acknowledgement, Language::Fr, Part::Text, &ctx())
            .unwrap();
        let en = r
            .part(Template::Acknowledgement, Language::En, Part::Text, &ctx())
            .unwrap();
        assert_ne!(fr, en);
        assert!(fr.contains("Bonjour"));
    }

    #[test]
    fn a_template_directory_overrides_one_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/acknowledgement.txt.hbs"),
            "Custom {{code}}",
        )
        .unwrap();
        let r = Renderer::new(Some(dir.path())).unwrap();
        assert_eq!(
            r.part(Template::Acknowledgement, Language::En, Part::Text, &ctx())
                .unwrap(),
            "Custom HD-7K3M9QXA"
        );
        assert!(
            r.part(Template::Acknowledgement, Language::Fr, Part::Text, &ctx())
                .unwrap()
                .contains("Bonjour")
        );
    }

    #[test]
    fn a_template_that_does_not_compile_is_reported_by_check() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("fr")).unwrap();
        std::fs::write(
            dir.path().join("fr/reminder.html.hbs"),
            "{{#if code}}never closed",
        )
        .unwrap();
        let r = Renderer::new(Some(dir.path())).unwrap();
        let err = r.check().unwrap_err().to_string();
        assert!(err.contains("fr/reminder.html.hbs"), "{err}");
        assert!(Renderer::new(None).unwrap().check().is_ok());
    }

    #[test]
    fn a_template_with_an_unknown_variable_fails() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("en")).unwrap();
        std::fs::write(
            dir.path().join("en/acknowledgement.txt.hbs"),
            "{{no_such_thing}}",
        )
        .unwrap();
        let r = Renderer::new(Some(dir.path())).unwrap();
        assert!(
            r.part(Template::Acknowledgement, Language::En, Part::Text, &ctx())
                .is_err()
        );
    }

    #[test]
    fn crlf_makes_every_line_ending_crlf_once() {
        assert_eq!(crlf("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf("\n\n"), "\r\n\r\n");
        assert_eq!(crlf("no end"), "no end");
        assert_eq!(crlf("é\r\n"), "é\r\n");
    }

    #[test]
    fn a_long_text_is_cut_in_the_recipients_language_and_says_how_much_is_left() {
        let short = "Bonjour.\n";
        assert_eq!(capped_text(short, Language::Fr), short);
        let line = "Le journal du serveur répète la même erreur.\n";
        let long = line.repeat(30_000);
        let fr = capped_text(&long, Language::Fr);
        assert!(fr.len() < TEXT_IN_MAIL_MAX_BYTES + 100, "{}", fr.len());
        assert!(fr.starts_with(line));
        let kept = fr.rfind('\n').unwrap();
        let more_kb = (long.len() - kept).div_ceil(1024);
        assert!(
            fr.ends_with(&format!(
                "… (tronqué : {more_kb} Ko de plus dans le ticket)"
            )),
            "{}",
            &fr[fr.len() - 80..]
        );
        // Cut at a line end, and never inside a character.
        assert!(fr[..fr.rfind('\n').unwrap()].ends_with("erreur."));
        let en = capped_text(&"é".repeat(40_000), Language::En);
        assert!(
            en.ends_with("KB more in the ticket)"),
            "{}",
            &en[en.len() - 60..]
        );
    }

    #[test]
    fn the_flood_digest_says_one_notification_in_the_singular() {
        let r = Renderer::new(None).unwrap();
        let mut c = ctx();
        c.flood_held = 1;
        let en = r
            .part(Template::FloodDigest, Language::En, Part::Text, &c)
            .unwrap();
        assert!(
            en.contains("the notification you would have received about them was held"),
            "{en}"
        );
        let fr = r
            .part(Template::FloodDigest, Language::Fr, Part::Text, &c)
            .unwrap();
        assert!(
            fr.contains("la notification qui vous en aurait averti a été retenue"),
            "{fr}"
        );
        c.flood_held = 3;
        let en = r
            .part(Template::FloodDigest, Language::En, Part::Text, &c)
            .unwrap();
        assert!(en.contains("the 3 notifications"), "{en}");
    }
}
