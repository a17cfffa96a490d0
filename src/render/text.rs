//! Text and addresses as they go into a mail: line endings, size caps, subjects echoed back,
//! what a vendor must not see, and which addresses and Message-IDs can be used.

use crate::domain::{EmailAddress, Language};

/// `text` with every line ending CRLF, in one pass.
pub fn crlf(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 40 + 2);
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        let line = &rest[..i];
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push_str("\r\n");
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out
}

/// The most of one message's text that goes into an outgoing mail: a customer's 30 MB
/// log pasted into a mail stays in the ticket, and the agent is sent its beginning.
pub const TEXT_IN_MAIL_MAX_BYTES: usize = 64 * 1024;

/// `text` cut to [`TEXT_IN_MAIL_MAX_BYTES`] (at a line end when there is one in the last
/// quarter, never inside a character), saying in the recipient's language how much more
/// the ticket holds.
pub fn capped_text(text: &str, language: Language) -> String {
    if text.len() <= TEXT_IN_MAIL_MAX_BYTES {
        return text.to_string();
    }
    let mut end = TEXT_IN_MAIL_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(nl) = text[..end].rfind('\n')
        && nl >= TEXT_IN_MAIL_MAX_BYTES * 3 / 4
    {
        end = nl;
    }
    let more_kb = (text.len() - end).div_ceil(1024);
    let note = match language {
        Language::Fr => format!("… (tronqué : {more_kb} Ko de plus dans le ticket)"),
        Language::En => format!("… (truncated: {more_kb} KB more in the ticket)"),
    };
    format!("{}\n{note}", text[..end].trim_end())
}

/// Whether mail can be written to `address`: our mail library refuses some addresses our
/// parser accepts (quoted local parts with odd characters). Checked before a ticket is
/// opened, so such a mail is quarantined whole rather than half-answered.
pub fn deliverable(address: &EmailAddress) -> Result<(), String> {
    address
        .as_str()
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("address {address}: {e}"))
}

/// The longest subject of someone else's that we repeat: a stranger must not be able to
/// make the gateway mail out 100 KB of their text.
pub const ECHOED_SUBJECT_MAX_CHARS: usize = 200;

/// `subject` cut to [`ECHOED_SUBJECT_MAX_CHARS`] characters, with "…" when it was cut.
/// Text with e-mail addresses and telephone numbers masked: what a third party (a vendor)
/// is sent of a customer's words.
pub fn without_contact_details(text: &str) -> String {
    use std::sync::LazyLock;
    static ADDRESS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"[\w.+-]+@[\w-]+(\.[\w-]+)+").expect("a valid pattern")
    });
    // Nine digits or more, with the spaces, dots, dashes and brackets people put between
    // them: "06 12 34 56 78", "+33 (0)1.23.45.67.89".
    static PHONE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\+?\d(?:[\s.\-()]{0,3}\d){8,}").expect("a valid pattern")
    });
    let text = ADDRESS.replace_all(text, "[address removed]");
    PHONE.replace_all(&text, "[phone removed]").into_owned()
}

pub fn echoed_subject(subject: &str) -> String {
    match subject.char_indices().nth(ECHOED_SUBJECT_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", subject[..cut].trim_end()),
        None => subject.to_string(),
    }
}

/// Whether a Message-ID may be repeated in our `In-Reply-To`/`References`. Real ones are
/// well under 250 characters; a longer one, or one with spaces or controls, cannot be
/// folded onto a legal header line (998 characters at most) and threads nothing anyway.
pub fn usable_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 250
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}
