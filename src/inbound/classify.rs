//! Is this mail from a person, or from a machine that must never get an automatic answer?
//!
//! Answering machine mail is how helpdesks loop (our acknowledgement to an out-of-office,
//! its reply to our acknowledgement, …) and how they spam mailing lists. Machine mail is
//! still recorded and threaded; it just never triggers an acknowledgement. When in doubt
//! the signals err towards "machine": a missed acknowledgement costs less than a loop.

use super::parse::InboundMail;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
const NO_REPLY_SENDERS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
    "nepasrepondre",
    "ne-pas-repondre",
    "bounce",
    "bounces",
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
    if s.x_auto_response_suppress.as_deref().is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("all") || v.contains("oof") || v.contains("autoreply")
    }) && AUTO_REPLY_SUBJECTS.iter().any(|a| subject.contains(a))
    {
        return Some(MachineKind::AutoReply);
    }
    if AUTO_REPLY_SUBJECTS.iter().any(|a| subject.contains(a))
        && (s.empty_return_path || subject_starts_auto(&subject))
    {
        return Some(MachineKind::AutoReply);
    }
    if BOUNCE_SUBJECTS.iter().any(|b| subject.contains(b))
        && (s.empty_return_path || mail.from.is_none())
    {
        return Some(MachineKind::Bounce);
    }
    if looks_like_ndr_subject(&subject) {
        return Some(MachineKind::Bounce);
    }
    if NO_REPLY_SENDERS.iter().any(|n| {
        local == *n
            || local.starts_with(&format!("{n}-"))
            || local.starts_with(&format!("{n}+"))
            || local.starts_with(&format!("{n}."))
    }) {
        return Some(MachineKind::NoReplySender);
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
    None
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
    fn another_helpdesks_autoreply_without_headers_is_an_auto_reply() {
        assert_eq!(
            kind("From: rt@example.de\nSubject: [example.de #33575] AutoReply: FYI\n\n"),
            Some(MachineKind::AutoReply)
        );
    }
}
