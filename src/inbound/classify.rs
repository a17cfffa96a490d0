//! Is this mail from a person, or from a machine that must never get an automatic answer?
//!
//! Answering machine mail is how helpdesks loop (our acknowledgement to an out-of-office,
//! its reply to our acknowledgement, …) and how they spam mailing lists. Machine mail is
//! still recorded and threaded; it just never triggers an acknowledgement. When in doubt
//! the signals err towards "machine": a missed acknowledgement costs less than a loop.

use super::parse::InboundMail;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineKind {
    /// Carries our own loop header: our mail came back.
    OwnLoop,
    /// Delivery status notification, non-delivery report, delay warning, abuse report.
    Bounce,
    /// Out-of-office, vacation or other auto-responder, read receipts.
    AutoReply,
    /// Mailing-list or bulk traffic.
    Bulk,
    /// A sender that by its name does not read answers (no-reply@, notifications@…).
    NoReplySender,
}

impl MachineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MachineKind::OwnLoop => "own_loop",
            MachineKind::Bounce => "bounce",
            MachineKind::AutoReply => "auto_reply",
            MachineKind::Bulk => "bulk",
            MachineKind::NoReplySender => "no_reply_sender",
        }
    }
}

const BOUNCE_SENDERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "maildaemon",
    "mailerdaemon",
];
/// Found anywhere in a local part (`newsalerts-noreply@`, `alerts.donotreply@`): nobody
/// names a person's mailbox like this.
const NO_REPLY_MARKERS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "no.reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "do.not.reply",
    "dontreply",
    "nepasrepondre",
    "ne-pas-repondre",
    "ne_pas_repondre",
    "nepasrepondre",
    "pasderéponse",
];
/// Whole local parts (or their first word: `bounces+x@`, `bounce-123@`).
const NO_REPLY_SENDERS: &[&str] = &["bounce", "bounces"];
/// Newsletter senders, some of which send without any list header.
const BULK_SENDERS: &[&str] = &[
    "newsletter",
    "newsletters",
    "news",
    "enews",
    "e-news",
    "mailing",
    "mailings",
    "mailinglist",
    "infolettre",
    "lettre-info",
    "marketing",
    "promo",
    "promotions",
];
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "undeliverable mail",
    "returned mail",
    "delivery status notification",
    "delivery notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "mail delivery failed",
    "failure notice",
    "mail system error",
    "could not send message",
    "message delayed",
    "delivery status",
    "email delivery error",
    "mail delivery",
    "postmaster notify",
    "non remis",
    "non délivré",
    "échec de la remise",
    "unzustellbar",
    "nicht zustellbar",
    "mail failure",
    "недоставленное",
    "не доставлено",
    "メールエラー",
    "bounce notification",
    "message you sent blocked",
    "are not member",
    "denied:",
    "email feedback report",
];
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "auto reply",
    "auto-reply",
    "autoreply",
    "automatic reply",
    "auto response",
    "autorespons",
    "auto-response",
    "out of office",
    "out of the office",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "automatische antwort",
    "abwesenheitsnotiz",
    "risposta automatica",
    "respuesta automática",
    "disposition notification",
    "read receipt",
    "lu :",
    "lu:",
    "read:",
];

pub fn classify(mail: &InboundMail, own_addresses: &[&str]) -> Option<MachineKind> {
    let s = &mail.signals;
    if s.loop_header.is_some() {
        return Some(MachineKind::OwnLoop);
    }
    if mail.from.as_ref().is_some_and(|f| {
        own_addresses
            .iter()
            .any(|own| f.address.as_str().eq_ignore_ascii_case(own))
    }) {
        return Some(MachineKind::OwnLoop);
    }
    let subject = mail.subject.to_lowercase();
    let local = mail
        .from
        .as_ref()
        .map(|f| f.address.local_part().to_ascii_lowercase())
        .unwrap_or_default();

    match s.report_type.as_deref() {
        Some("disposition-notification") => return Some(MachineKind::AutoReply),
        Some(_) => return Some(MachineKind::Bounce),
        None => {}
    }
    if BOUNCE_SENDERS
        .iter()
        .any(|b| local == *b || local.starts_with(&format!("{b}+")))
    {
        return Some(MachineKind::Bounce);
    }
    let auto_submitted = s
        .auto_submitted
        .as_deref()
        .map(|v| v.trim().to_ascii_lowercase());
    let auto_generated = auto_submitted
        .as_deref()
        .is_some_and(|v| !v.is_empty() && !v.starts_with("no"));
    if (auto_generated || s.empty_return_path)
        && BOUNCE_SUBJECTS.iter().any(|b| subject.contains(b))
    {
        return Some(MachineKind::Bounce);
    }
    if auto_generated || s.x_autoreply {
        return Some(MachineKind::AutoReply);
    }
    let precedence = s
        .precedence
        .as_deref()
        .map(|p| p.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if precedence == "auto_reply" {
        return Some(MachineKind::AutoReply);
    }
    if s.list_id || s.list_unsubscribe || matches!(precedence.as_str(), "bulk" | "junk" | "list") {
        return Some(MachineKind::Bulk);
    }
    by_words(mail, &subject, &local)
}

/// What the subject, the sender's name and the first lines say, when the headers said
/// nothing for sure.
fn by_words(mail: &InboundMail, subject: &str, local: &str) -> Option<MachineKind> {
    let s = &mail.signals;
    if s.x_auto_response_suppress.as_deref().is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("all") || v.contains("oof") || v.contains("autoreply")
    }) && AUTO_REPLY_SUBJECTS.iter().any(|a| subject.contains(a))
    {
        return Some(MachineKind::AutoReply);
    }
    if AUTO_REPLY_SUBJECTS.iter().any(|a| subject.contains(a))
        && (s.empty_return_path || subject_starts_auto(subject))
    {
        return Some(MachineKind::AutoReply);
    }
    if BOUNCE_SUBJECTS.iter().any(|b| subject.contains(b))
        && (s.empty_return_path || mail.from.is_none())
    {
        return Some(MachineKind::Bounce);
    }
    if looks_like_ndr_subject(subject) {
        return Some(MachineKind::Bounce);
    }
    if NO_REPLY_MARKERS.iter().any(|n| local.contains(n))
        || NO_REPLY_SENDERS.iter().any(|n| local_is(local, n))
    {
        return Some(MachineKind::NoReplySender);
    }
    if BULK_SENDERS.iter().any(|n| local_is(local, n)) || local.contains("newsletter") {
        return Some(MachineKind::Bulk);
    }
    if s.empty_return_path {
        // An empty envelope sender is reserved for notifications (RFC 5321 §4.5.5).
        return Some(MachineKind::AutoReply);
    }
    // Another helpdesk's acknowledgement ("[host #123] AutoReply: …") often carries none
    // of the standard headers.
    if subject.contains("autoreply:")
        || subject.contains("auto-reply:")
        || subject.contains("autoreply :")
    {
        return Some(MachineKind::AutoReply);
    }
    // Some out-of-office replies carry no header at all and a subject in any language;
    // only their first lines say what they are.
    if body_opens_like_out_of_office(&mail.body_text) {
        return Some(MachineKind::AutoReply);
    }
    None
}

/// `local` is `name`, or starts with it followed by a separator (`news-fr`, `bounces+x`).
fn local_is(local: &str, name: &str) -> bool {
    local
        .strip_prefix(name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '+', '.', '_']))
}

/// How out-of-office notices open, in the languages our users' correspondents write.
/// Matched at the start of one of the first lines, after accents are kept as written.
const OUT_OF_OFFICE_OPENINGS: &[&str] = &[
    // English
    "i am out of the office",
    "i am out of office",
    "i'm out of the office",
    "i'm out of office",
    "i am currently out of the office",
    "i am currently out of office",
    "i'm currently out of the office",
    "i will be out of the office",
    "i will be out of office",
    "i am away from the office",
    "i am currently away",
    "i'm currently away",
    "i am on vacation",
    "i am on holiday",
    "i am on leave",
    "i am on annual leave",
    "i'm on vacation",
    "i'm on holiday",
    "i'm on leave",
    // French
    "je suis absent",
    "je suis actuellement absent",
    "je serai absent",
    "je suis en congé",
    "je suis actuellement en congé",
    "je suis en vacances",
    "je suis hors du bureau",
    "je suis en dehors du bureau",
    "je suis en déplacement",
    // German
    "ich bin nicht im büro",
    "ich bin derzeit nicht im büro",
    "ich bin zurzeit nicht im büro",
    "ich bin momentan nicht im büro",
    "ich bin abwesend",
    "ich bin derzeit abwesend",
    "ich bin im urlaub",
    "ich bin bis ",
    "vielen dank für ihre nachricht. ich bin",
    // Spanish
    "estoy fuera de la oficina",
    "me encuentro fuera de la oficina",
    "estaré fuera de la oficina",
    "estoy de vacaciones",
    "me encuentro de vacaciones",
    "estoy ausente",
    // Italian
    "sono fuori ufficio",
    "sarò fuori ufficio",
    "sono assente",
    "sarò assente",
    "sono in ferie",
    "attualmente sono fuori ufficio",
    // Dutch
    "ik ben afwezig",
    "ik ben niet op kantoor",
    "ik ben met vakantie",
    "ik ben momenteel afwezig",
    "ik ben momenteel niet aanwezig",
    "ik ben tot en met",
];

/// What an absence notice says next: when the person is back, or whom to write to
/// meanwhile. A customer who happens to write "I am out of office and cannot reach the
/// VPN" rarely adds a return date; an absence notice nearly always does.
const OUT_OF_OFFICE_FOLLOW_UPS: &[&str] = &[
    "until",
    "return",
    "back on",
    "back in",
    "limited access",
    "in my absence",
    "urgent",
    "jusqu'",
    "jusqu’",
    "retour",
    "accès limité",
    "en mon absence",
    "urgence",
    "bis ",
    "zurück",
    "wieder im büro",
    "wieder erreichbar",
    "dringend",
    "vertretung",
    "hasta",
    "regres",
    "urgente",
    "fino al",
    "rientr",
    "urgenz",
    "tot ",
    "terug",
    "dringend",
];

fn body_opens_like_out_of_office(body: &str) -> bool {
    let lines: Vec<String> = body
        .lines()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty())
        .take(4)
        .collect();
    let opens = lines.iter().take(3).any(|line| {
        // "Bonjour, je suis absent…", "Hello, I am out of the office…"
        let after_greeting = line
            .split_once([',', '!'])
            .map(|(_, rest)| rest.trim_start())
            .unwrap_or("");
        OUT_OF_OFFICE_OPENINGS
            .iter()
            .any(|o| line.starts_with(o) || after_greeting.starts_with(o))
    });
    if !opens {
        return false;
    }
    let head = lines.join(" ").replace('’', "'");
    OUT_OF_OFFICE_FOLLOW_UPS.iter().any(|f| head.contains(f))
        || head.chars().any(|c| c.is_ascii_digit())
}

/// Subjects that only a mail system writes, checked without header support.
fn looks_like_ndr_subject(subject: &str) -> bool {
    const STRONG: &[&str] = &[
        "undelivered mail returned to sender",
        "mail delivery failed",
        "delivery status notification (failure)",
        "delivery status notification (delay)",
        "returned mail: ",
        "failure notice",
        "undeliverable:",
        "undeliverable message",
        "undeliverable mail",
        "mail system error - returned mail",
        "delivery failure",
        "delivery notification: delivery has failed",
        "could not send message for past",
        "message delayed",
        "postmaster notify",
        "email delivery error",
        "mail delivery status",
        "[postmaster]",
        "non remis :",
        "unzustellbar:",
        "не доставлено",
        "недоставленное сообщение",
        "メールエラー通知",
        "email bounce notification",
        "message you sent blocked",
        "are not member",
        "email feedback report",
    ];
    STRONG.iter().any(|s| subject.contains(s))
        || (subject.starts_with("post to ") && subject.contains(" denied"))
}

fn subject_starts_auto(subject: &str) -> bool {
    [
        "auto",
        "automatic reply",
        "out of office",
        "réponse automatique",
        "absence",
        "abwesenheit",
        "read:",
        "lu :",
        "lu:",
    ]
    .iter()
    .any(|p| subject.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse::parse;

    fn kind(raw: &str) -> Option<MachineKind> {
        classify(&parse(raw.as_bytes()).unwrap(), &["support@example.test"])
    }

    #[test]
    fn a_person_writing_in_is_not_machine_mail() {
        assert_eq!(
            kind("From: Marie <marie@example.fr>\nSubject: Imprimante en panne\n\nBonjour"),
            None
        );
    }

    #[test]
    fn out_of_office_reply_gets_no_acknowledgement() {
        let raw = "From: bob@example.com\nSubject: Out of Office: your mail\nAuto-Submitted: auto-replied\n\nAway";
        assert_eq!(kind(raw), Some(MachineKind::AutoReply));
    }

    #[test]
    fn auto_submitted_no_is_a_person() {
        assert_eq!(
            kind("From: bob@example.com\nSubject: hi\nAuto-Submitted: no\n\nx"),
            None
        );
    }

    #[test]
    fn mailing_list_traffic_is_bulk() {
        assert_eq!(
            kind("From: a@example.com\nSubject: x\nList-Id: <l.example.com>\n\nx"),
            Some(MachineKind::Bulk)
        );
        assert_eq!(
            kind("From: a@example.com\nSubject: x\nPrecedence: junk\n\nx"),
            Some(MachineKind::Bulk)
        );
    }

    #[test]
    fn mailer_daemon_and_reports_are_bounces() {
        assert_eq!(
            kind("From: MAILER-DAEMON@mx.example.com\nSubject: x\n\nx"),
            Some(MachineKind::Bounce)
        );
        let report = "From: a@example.com\nSubject: x\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n\nx\n--b--\n";
        assert_eq!(kind(report), Some(MachineKind::Bounce));
    }

    #[test]
    fn our_own_loop_header_is_recognised() {
        assert_eq!(
            kind("From: a@example.com\nSubject: x\nX-Helpdesk-Loop: support@example.test\n\nx"),
            Some(MachineKind::OwnLoop)
        );
        assert_eq!(
            kind("From: support@example.test\nSubject: x\n\nx"),
            Some(MachineKind::OwnLoop)
        );
    }

    #[test]
    fn no_reply_senders_and_empty_return_path_are_machines() {
        assert_eq!(
            kind("From: no-reply@shop.example\nSubject: Your order\n\nx"),
            Some(MachineKind::NoReplySender)
        );
        assert_eq!(
            kind("Return-Path: <>\nFrom: x@example.com\nSubject: hello\n\nx"),
            Some(MachineKind::AutoReply)
        );
    }

    #[test]
    fn a_local_part_that_only_contains_the_no_reply_marker_is_a_machine() {
        for from in [
            "newsalerts-noreply@bank.example",
            "alerts.donotreply@bank.example",
            "shop_no_reply@shop.example",
            "ne-pas-repondre@impots.example",
            "bounces+123@lists.example",
        ] {
            assert_eq!(
                kind(&format!("From: {from}\nSubject: Your statement\n\nHello")),
                Some(MachineKind::NoReplySender),
                "{from}"
            );
        }
    }

    #[test]
    fn newsletter_senders_without_list_headers_are_bulk() {
        for from in [
            "newsletter@vendor.example",
            "news@vendor.example",
            "mailing@vendor.example",
            "news-fr@vendor.example",
            "monthly-newsletter@vendor.example",
        ] {
            assert_eq!(
                kind(&format!("From: {from}\nSubject: Our offers\n\nHello")),
                Some(MachineKind::Bulk),
                "{from}"
            );
        }
    }

    #[test]
    fn people_whose_address_resembles_a_machine_word_are_people() {
        for from in [
            "newman@example.com",
            "newsome@example.com",
            "bouncer.paul@example.com",
            "marketa@example.com",
        ] {
            assert_eq!(
                kind(&format!("From: {from}\nSubject: Printer\n\nIt jams.")),
                None,
                "{from}"
            );
        }
    }

    #[test]
    fn out_of_office_bodies_without_headers_are_auto_replies_in_six_languages() {
        for body in [
            "I am out of office until Monday 9 March with limited access to e-mail.",
            "Hello,\n\nI am out of the office and will return on March 9.",
            "Bonjour,\nJe suis absent du bureau jusqu'au 9 mars inclus.",
            "Je suis actuellement en congé, retour le lundi 9 mars.",
            "Ich bin nicht im Büro. Ab dem 9. März bin ich wieder erreichbar.",
            "Vielen Dank für Ihre Nachricht. Ich bin bis 9. März im Urlaub.",
            "Estoy fuera de la oficina hasta el 9 de marzo.",
            "Sono fuori ufficio fino al 9 marzo.",
            "Ik ben afwezig tot en met 9 maart.",
        ] {
            let raw =
                format!("From: colleague@example.com\nSubject: Fuori sede / Poissons\n\n{body}\n");
            assert_eq!(kind(&raw), Some(MachineKind::AutoReply), "{body}");
        }
    }

    #[test]
    fn a_customer_who_mentions_being_away_is_still_a_customer() {
        for body in [
            "Bonjour, je suis absent la semaine prochaine, pouvez-vous réinitialiser mon mot de passe avant ?",
            "Hello, my colleague is out of the office and I need access to her mailbox.",
            "Hi,\nThe printer on floor 2 says I am out of paper.",
        ] {
            let raw = format!("From: marie@example.fr\nSubject: Demande\n\n{body}\n");
            assert_eq!(kind(&raw), None, "{body}");
        }
    }

    #[test]
    fn another_helpdesks_autoreply_without_headers_is_an_auto_reply() {
        assert_eq!(
            kind("From: rt@example.de\nSubject: [example.de #33575] AutoReply: FYI\n\n"),
            Some(MachineKind::AutoReply)
        );
    }
}
