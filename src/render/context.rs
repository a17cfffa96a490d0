//! What the templates read: one context for every mail kind, the labels people read, and
//! the changes a status or SLA mail is about.

use serde::Serialize;

use crate::domain::Language;

/// What every template may use; the same fields for all, so a custom template can show
/// anything the gateway knows. Adding a field here is how a template gets a new variable.
#[derive(Serialize, Clone, Debug, Default)]
pub struct MailContext {
    pub code: String,
    /// `[HD-7K3M9QXA]`, as it must stay in the subject of every reply.
    pub tag: String,
    pub subject: String,
    pub customer_name: String,
    pub customer_address: String,
    pub support_name: String,
    pub support_address: String,
    /// Whom this mail is for: the agent's or the customer's name.
    pub recipient_name: String,
    pub tier: String,
    /// "Niveau 2 – support avancé", in the mail's language.
    pub tier_label: String,
    /// The category's id (`printer`) and its name in the mail's language ("imprimante").
    pub category: String,
    pub category_label: String,
    /// For the acknowledgement: the ticket is urgent; when a person will answer at the
    /// latest ("mardi 1er décembre à 10 h 30"), in the desk's time zone (`time_zone`),
    /// and whether the desk counts round the clock (no calendar configured).
    pub urgent: bool,
    pub answer_by: String,
    pub round_the_clock: bool,
    pub time_zone: String,
    /// `[gateway] organisation`: who the desk is ("Service informatique de la mairie").
    pub organisation: String,
    pub priority: String,
    /// "haute", "high": the priority in the mail's language.
    pub priority_label: String,
    pub status: String,
    /// "en attente de votre réponse", "waiting for the customer": the status in words.
    pub status_label: String,
    /// The agent who has the ticket now; empty while unassigned.
    pub assignee_name: String,
    /// For `status_update`, `reminder` and `sla_warning`: which sentence the mail says
    /// (`{{#if (eq change "resolved")}}`); `null` for the other kinds.
    pub change: Option<Change>,
    /// Why the ticket moved (escalation reason, rule), when there is one.
    pub reason: String,
    /// For `agent_follow_up`: what the customer wrote this time, and who.
    pub new_text: String,
    pub new_text_from: String,
    pub reopened: bool,
    pub attachments: Vec<AttachmentLine>,
    /// For `agent_notification`: every message so far, oldest first.
    pub thread: Vec<ThreadItem>,
    /// For `agent_receipt`: each command line and what became of it.
    pub receipt: Vec<ReceiptLine>,
    /// For `sla_warning`: what the customer last wrote, and when.
    pub last_message: String,
    pub last_message_date: String,
    /// For `flood_digest`: who flooded the desk, how many mails they sent in that hour, how
    /// many notifications to this recipient were held, the tickets (the first ones), and how
    /// many more there are.
    pub flood_from: String,
    pub flood_count: u64,
    pub flood_held: u64,
    pub flood_codes: Vec<String>,
    pub flood_more: u64,
    /// Knowledge-base articles: those an acknowledgement suggests, those an agent's
    /// notification lists, those `#article` put into an agent's reply.
    pub articles: Vec<ArticleView>,
    /// More than one article (the sentence before them agrees).
    pub several_articles: bool,
    /// For `weekly_report`: the week's figures; `null` for the other kinds.
    pub report: Option<ReportView>,
}

/// The weekly report as its templates read it: words and numbers already in the mail's
/// language (the statistics fill it; the templates only lay it out).
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportView {
    /// "semaine 48, du 23/11/2026 au 29/11/2026".
    pub period: String,
    /// "semaine 47".
    pub previous: String,
    /// The headline figures, this week against the previous one.
    pub figures: Vec<ReportFigure>,
    pub tiers: Vec<ReportGroup>,
    pub agents: Vec<ReportGroup>,
    /// Tickets resolved that came back (reopened, or followed by a new ticket) this week.
    pub came_back: Vec<ReportTicket>,
    /// Targets missed this week.
    pub breaches: Vec<ReportTicket>,
    /// Ratings this week that came with a comment.
    pub comments: Vec<ReportComment>,
    /// The weekly-volume chart, inline: `cid:` + this.
    pub chart_cid: String,
    /// "Europe/Paris".
    pub time_zone: String,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportFigure {
    pub label: String,
    pub this_week: String,
    pub previous_week: String,
    /// "▲", "▼" or "=".
    pub trend: String,
}

/// One tier's or agent's line.
#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportGroup {
    pub name: String,
    pub created: u64,
    pub resolved: u64,
    pub backlog: u64,
    pub first_response: String,
    pub resolution: String,
    pub breaches: u64,
    pub csat: String,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportTicket {
    pub code: String,
    /// What happened: "rouvert 3 j après sa résolution", "première réponse manquée (L1)".
    pub what: String,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq)]
pub struct ReportComment {
    pub code: String,
    pub score: u8,
    pub comment: String,
}

impl ArticleView {
    /// `article` as a template reads it; `sent` and `score` for an agent's list.
    pub fn of(article: &crate::kb::Article, sent: bool, score: Option<f32>) -> ArticleView {
        ArticleView {
            id: article.id.to_string(),
            title: article.title.clone(),
            url: article.url.clone().unwrap_or_default(),
            excerpt_text: article.excerpt_text.clone(),
            excerpt_html: article.excerpt_html.clone(),
            body_text: article.body_text.clone(),
            body_html: article.body_html.clone(),
            sent,
            score: score.map(|s| format!("{s:.1}")).unwrap_or_default(),
        }
    }
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ArticleView {
    pub id: String,
    pub title: String,
    /// Where the article is published; empty when it is not.
    pub url: String,
    /// The first steps, as text and as HTML (`{{{excerpt_html}}}`: made from Markdown
    /// with any raw HTML escaped).
    pub excerpt_text: String,
    pub excerpt_html: String,
    /// The whole article as text and as HTML (`{{{body_html}}}`).
    pub body_text: String,
    pub body_html: String,
    /// For an agent: the customer was already sent it.
    pub sent: bool,
    /// For an agent: how well it matched ("41.5"); empty when not searched.
    pub score: String,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ReceiptLine {
    pub command: String,
    pub applied: bool,
    /// What was done, or why not.
    pub result: String,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct ThreadItem {
    pub author: String,
    pub date: String,
    pub text: String,
    pub attachments: Vec<AttachmentLine>,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct AttachmentLine {
    pub name: String,
    /// "12.5 KB"
    pub size: String,
}

impl AttachmentLine {
    pub fn new(name: Option<&str>, bytes: u64) -> Self {
        let size = if bytes < 1024 {
            format!("{bytes} B")
        } else if bytes < 1024 * 1024 {
            format!("{:.1} KB", bytes as f64 / 1024.0)
        } else {
            format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
        };
        AttachmentLine {
            name: name.unwrap_or("(no name)").to_string(),
            size,
        }
    }
}

/// A ticket status in words, for people.
pub fn status_label(status: crate::domain::TicketStatus, language: Language) -> &'static str {
    use crate::domain::TicketStatus::*;
    match (status, language) {
        (New, Language::Fr) => "nouveau",
        (Open, Language::Fr) => "ouvert",
        (WaitingOnCustomer, Language::Fr) => "en attente du client",
        (Resolved, Language::Fr) => "résolu",
        (Closed, Language::Fr) => "clôturé",
        (New, Language::En) => "new",
        (Open, Language::En) => "open",
        (WaitingOnCustomer, Language::En) => "waiting for the customer",
        (Resolved, Language::En) => "resolved",
        (Closed, Language::En) => "closed",
    }
}

/// A priority in words, for people.
pub fn priority_label(priority: crate::domain::Priority, language: Language) -> &'static str {
    use crate::domain::Priority::*;
    match (priority, language) {
        (Low, Language::Fr) => "basse",
        (Normal, Language::Fr) => "normale",
        (High, Language::Fr) => "haute",
        (Urgent, Language::Fr) => "urgente",
        (Low, Language::En) => "low",
        (Normal, Language::En) => "normal",
        (High, Language::En) => "high",
        (Urgent, Language::En) => "urgent",
    }
}

/// What a status or service-level mail tells. The templates pick their sentence with
/// `(eq change "…")`; [`Renderer::new`] refuses a template naming a change not listed here,
/// so a typo on either side is an error at start, not a silently empty mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Assigned,
    Escalated,
    Waiting,
    Resolved,
    Rated,
    Closed,
    Reopened,
    /// Resolved because the customer never answered the reminder.
    NoAnswer,
    /// The customer is reminded that the ticket waits on them.
    Reminder,
    /// A service-level target falls due soon.
    Warning,
    /// A service-level target was missed.
    Breach,
    /// The vendor has not answered in its time.
    VendorSilence,
}

impl Change {
    pub const ALL: [Change; 12] = [
        Change::Assigned,
        Change::Escalated,
        Change::Waiting,
        Change::Resolved,
        Change::Rated,
        Change::Closed,
        Change::Reopened,
        Change::NoAnswer,
        Change::Reminder,
        Change::Warning,
        Change::Breach,
        Change::VendorSilence,
    ];

    /// The name templates compare with.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Assigned => "assigned",
            Change::Escalated => "escalated",
            Change::Waiting => "waiting",
            Change::Resolved => "resolved",
            Change::Rated => "rated",
            Change::Closed => "closed",
            Change::Reopened => "reopened",
            Change::NoAnswer => "no_answer",
            Change::Reminder => "reminder",
            Change::Warning => "warning",
            Change::Breach => "breach",
            Change::VendorSilence => "vendor_silence",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
