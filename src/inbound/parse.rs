//! Raw bytes to [`InboundMail`]: everything the pipeline needs, decoded once.
//!
//! Pure: no I/O. mail-parser does the MIME work; this module adds what it leaves to the
//! caller: raw 8-bit header bytes in a legacy charset (decoded here instead of becoming
//! U+FFFD), HTML-only mail turned into text, and the headers the classifier reads.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

use super::quote_strip;
use crate::domain::EmailAddress;

/// A person or program named in an address header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub address: EmailAddress,
    pub name: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Attachment {
    pub filename: Option<String>,
    pub content_type: String,
    pub content: Vec<u8>,
    /// Where its encoded body lies in the mail's raw bytes, when the parser read those very
    /// bytes (not a copy repaired first): what the store keeps instead of a second copy.
    pub raw_body: Option<RawBody>,
}

/// An attachment's body as a range of the raw mail, and how to decode it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawBody {
    pub start: usize,
    pub end: usize,
    pub encoding: BodyEncoding,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyEncoding {
    Identity,
    Base64,
    QuotedPrintable,
}

impl BodyEncoding {
    pub fn as_str(self) -> &'static str {
        match self {
            BodyEncoding::Identity => "identity",
            BodyEncoding::Base64 => "base64",
            BodyEncoding::QuotedPrintable => "quoted-printable",
        }
    }

    pub fn parse(text: &str) -> Option<BodyEncoding> {
        Some(match text {
            "identity" => BodyEncoding::Identity,
            "base64" => BodyEncoding::Base64,
            "quoted-printable" => BodyEncoding::QuotedPrintable,
            _ => return None,
        })
    }
}

impl RawBody {
    /// The attachment's bytes, decoded from the raw mail; `None` if `raw` is not the mail
    /// the range was taken from.
    pub fn decode(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let body = raw.get(self.start..self.end)?;
        Some(match self.encoding {
            BodyEncoding::Identity => body.to_vec(),
            BodyEncoding::Base64 => {
                let clean: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                mail_parser::decoders::base64::base64_decode(&clean)?
            }
            BodyEncoding::QuotedPrintable => {
                mail_parser::decoders::quoted_printable::quoted_printable_decode(body)?
            }
        })
    }
}

/// The header facts machine-mail detection is decided on (see `classify`).
#[derive(Clone, Debug, Default)]
pub struct MachineSignals {
    pub auto_submitted: Option<String>,
    pub precedence: Option<String>,
    pub list_id: bool,
    pub list_unsubscribe: bool,
    pub empty_return_path: bool,
    pub report_type: Option<String>,
    pub x_autoreply: bool,
    pub x_auto_response_suppress: Option<String>,
    pub loop_header: Option<String>,
}

#[derive(Clone, Debug)]
pub struct InboundMail {
    pub subject: String,
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<EmailAddress>,
    pub cc: Vec<EmailAddress>,
    /// Without angle brackets, as stored and compared everywhere.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Seconds since the epoch, from the Date header when it parses.
    pub date: Option<i64>,
    pub content_language: Option<String>,
    /// The whole text of the message.
    pub body_text: String,
    /// What the sender wrote this time, without the quoted history.
    pub reply_text: String,
    /// The quoted history cut from `reply_text` (empty when there was none).
    pub quoted_text: String,
    /// The sender's signature, cut from `reply_text` (empty when none was recognised).
    pub signature: String,
    pub attachments: Vec<Attachment>,
    pub signals: MachineSignals,
    /// Where the mail was delivered (`Delivered-To`, `X-Original-To`): the support address
    /// it was sent to when `To` names only a list or a Bcc hid it.
    pub delivered_to: Vec<EmailAddress>,
    /// The header fields as written (name, unfolded value), for routing rules on headers.
    /// At most [`KEPT_HEADERS`], values cut to 1000 characters.
    pub headers: Vec<(String, String)>,
    /// SHA-256 of sender, subject and body text: what makes two mails with one Message-ID
    /// the same mail (transport headers such as `Received` may differ between copies).
    pub content_sha256: String,
}

/// Why a mail could not be read at all. The raw bytes are kept either way.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseFailure {
    #[error("empty message")]
    Empty,
    #[error("no RFC 5322 header could be read")]
    NoHeader,
    /// The parser (ours or a dependency) panicked on it.
    #[error("the mail parser crashed on this mail")]
    ParserPanicked,
}

/// The name of the header this gateway puts on everything it sends, so that its own mail
/// coming back (a forward rule, a customer who is also the support address) never loops.
pub const LOOP_HEADER: &str = "X-Helpdesk-Loop";

pub fn parse(raw: &[u8]) -> Result<InboundMail, ParseFailure> {
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ParseFailure::Empty);
    }
    let original = raw;
    let after_preamble = skip_preamble(raw);
    let raw = old_mac_line_endings(after_preamble);
    let readable = decode_raw_headers(&raw);
    let msg = MessageParser::default()
        .parse(readable.as_ref())
        .ok_or(ParseFailure::NoHeader)?;
    if msg.headers().is_empty() {
        return Err(ParseFailure::NoHeader);
    }

    let body_text = body_text(&msg);
    let subject = msg.subject().map(clean_header_text).unwrap_or_default();
    let from = msg
        .from()
        .and_then(first_mailbox)
        .or_else(|| loose_sender(&msg));
    // What makes the mail the same mail is its whole text; what is kept of the text (and
    // read for quotes, routing and language) is its beginning: the raw mail keeps it all.
    let content_sha256 = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(from.as_ref().map(|f| f.address.as_str()).unwrap_or(""));
        h.update([0]);
        h.update(&subject);
        h.update([0]);
        h.update(&body_text);
        hex::encode(h.finalize())
    };
    let body_text = kept_text(body_text);
    let split = match html_history_cut(&msg) {
        Some((reply, quoted)) => {
            let mut split = quote_strip::split(&kept_text(reply));
            if !quoted.is_empty() {
                let quoted = kept_text(quoted);
                split.quoted = [split.quoted.as_str(), quoted.as_str()]
                    .iter()
                    .filter(|t| !t.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            split
        }
        None => quote_strip::split(&body_text),
    };
    let signals = machine_signals(&msg);

    Ok(InboundMail {
        subject,
        from,
        reply_to: msg.reply_to().and_then(first_mailbox),
        to: addresses(msg.header_values("To")),
        cc: addresses(msg.header_values("Cc")),
        message_id: msg.message_id().map(clean_id).filter(|id| !id.is_empty()),
        in_reply_to: ids(msg.in_reply_to()),
        references: ids(msg.references()),
        date: msg.date().map(|d| d.to_timestamp()),
        content_language: header_text(&msg, "Content-Language"),
        reply_text: split.reply,
        quoted_text: split.quoted,
        signature: split.signature,
        body_text,
        attachments: attachments(
            &msg,
            original,
            // Offsets are into what the parser read: the raw mail itself, past any preamble,
            // unless its line endings or headers had to be repaired first.
            (readable.as_ref().as_ptr() == after_preamble.as_ptr()
                && readable.len() == after_preamble.len())
            .then_some(original.len() - after_preamble.len()),
        ),
        signals,
        delivered_to: msg
            .headers_raw()
            .filter(|(n, _)| {
                n.eq_ignore_ascii_case("Delivered-To") || n.eq_ignore_ascii_case("X-Original-To")
            })
            .filter_map(|(_, v)| {
                EmailAddress::parse(v.trim().trim_start_matches('<').trim_end_matches('>')).ok()
            })
            .collect(),
        headers: msg
            .headers_raw()
            .take(KEPT_HEADERS)
            .map(|(n, v)| {
                let text = clean_header_text(v);
                let cut = text.char_indices().nth(1000).map_or(text.len(), |(i, _)| i);
                (n.to_string(), text[..cut].to_string())
            })
            .collect(),
        content_sha256,
    })
}

/// The headers that tell a machine's mail (auto-replies, bounces, lists, our own loop).
fn machine_signals(msg: &mail_parser::Message<'_>) -> MachineSignals {
    MachineSignals {
        auto_submitted: header_text(msg, "Auto-Submitted"),
        precedence: header_text(msg, "Precedence"),
        list_id: msg.header("List-Id").is_some(),
        list_unsubscribe: msg.header("List-Unsubscribe").is_some(),
        empty_return_path: return_path_is_empty(msg),
        report_type: report_type(msg),
        x_autoreply: msg.header("X-Autoreply").is_some()
            || msg.header("X-Autorespond").is_some()
            || msg.header("X-Autoresponder").is_some(),
        x_auto_response_suppress: header_text(msg, "X-Auto-Response-Suppress"),
        loop_header: header_text(msg, LOOP_HEADER),
    }
}

/// The most of a mail's text kept in its row (body, new text, quoted history): a 30 MB log
/// pasted into a mail is kept whole in the raw mail, and the columns that show, search and
/// route it keep its first megabyte (each copy of a 30 MB text costs the gateway 30 MB).
pub const KEPT_TEXT_MAX_BYTES: usize = 1024 * 1024;

/// `text` cut to [`KEPT_TEXT_MAX_BYTES`] at a character boundary, saying how much more the
/// raw mail holds.
fn kept_text(text: String) -> String {
    if text.len() <= KEPT_TEXT_MAX_BYTES {
        return text;
    }
    let mut end = KEPT_TEXT_MAX_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let more_kb = (text.len() - end).div_ceil(1024);
    let mut kept = text;
    kept.truncate(end);
    kept.shrink_to_fit();
    kept.push_str(&format!("\n[… {more_kb} KB more in the raw mail]"));
    kept
}

/// How many header fields a mail keeps for routing: real mail has 20 to 60; a hostile one
/// with 100,000 costs no more than this.
pub const KEPT_HEADERS: usize = 200;

/// Headers must be ASCII or UTF-8, yet old clients write raw ISO-8859-x or the body's
/// charset. Lines that are not valid UTF-8 are re-encoded from the message's declared
/// charset (windows-1252 when none is declared, a superset of Latin-1), so the subject
/// reads "Håvard" and not "H\u{FFFD}vard". Bodies are left to mail-parser.
fn decode_raw_headers(raw: &[u8]) -> Cow<'_, [u8]> {
    let header_end = find_header_end(raw);
    let header = &raw[..header_end];
    if std::str::from_utf8(header).is_ok() {
        return Cow::Borrowed(raw);
    }
    let encoding = declared_charset(header)
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .filter(|e| e.is_ascii_compatible() && *e != encoding_rs::UTF_8)
        .unwrap_or(encoding_rs::WINDOWS_1252);
    let mut out = Vec::with_capacity(raw.len() + 64);
    for line in header.split_inclusive(|&b| b == b'\n') {
        if std::str::from_utf8(line).is_ok() {
            out.extend_from_slice(line);
        } else {
            let (text, _, _) = encoding.decode(line);
            out.extend_from_slice(text.as_bytes());
        }
    }
    out.extend_from_slice(&raw[header_end..]);
    Cow::Owned(out)
}

fn find_header_end(raw: &[u8]) -> usize {
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'\n' {
            let rest = &raw[i + 1..];
            if rest.starts_with(b"\n") || rest.starts_with(b"\r\n") {
                return i + 1;
            }
        }
        i += 1;
    }
    raw.len()
}

fn declared_charset(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header).to_ascii_lowercase();
    let start = text.find("charset=")? + "charset=".len();
    let value: String = text[start..]
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'))
        .collect();
    (!value.is_empty()).then_some(value)
}

/// Where the quoted history starts in a mail that has only HTML: the first `<blockquote>`
/// (Thunderbird, Apple Mail), Gmail's `gmail_quote`, Outlook on the web's `divRplyFwdMsg` or
/// `appendonsend`, Thunderbird's `moz-cite-prefix`. Returns the text before it and after
/// it. Such mail loses its `>` marks when turned into text, so the cut is made in the HTML.
fn html_history_cut(msg: &mail_parser::Message<'_>) -> Option<(String, String)> {
    let has_plain = (0..msg.text_body_count()).any(|i| {
        msg.text_part(i as u32).is_some_and(
            |p| matches!(&p.body, mail_parser::PartType::Text(t) if !t.trim().is_empty()),
        )
    });
    if has_plain {
        return None;
    }
    let html = msg.body_html(0)?;
    let lower = html.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "<blockquote",
        "class=\"gmail_quote",
        "id=\"divrplyfwdmsg",
        "id=\"appendonsend",
        "class=\"moz-cite-prefix",
    ];
    let at = MARKERS.iter().filter_map(|m| lower.find(m)).min()?;
    let tag = lower[..=at].rfind('<')?;
    let text = |h: &str| normalise_newlines(html_text(h));
    Some((text(&html[..tag]), text(&html[tag..])))
}

/// HTML as text, with its block structure kept: mail-parser ends a line only at `<br>` and
/// `</p>`, so an HTML-only reply written in `<div>`s (Outlook, Gmail) came out as one line,
/// and `#priority urgent` / `#wait 2d` / the answer were glued into one refused command.
/// Block ends and list items become line ends too.
fn html_text(html: &str) -> String {
    use std::sync::LazyLock;
    static BLOCK: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)</(?:div|li|tr|h[1-6]|blockquote|pre|table|ul|ol|dd|dt|section|article|header|footer)\s*>|<li[\s>]|<hr[\s/>]",
        )
        .expect("a valid pattern")
    });
    static BLANK_LINES: LazyLock<regex::Regex> =
        LazyLock::new(|| regex::Regex::new(r"\n[ \t]*\n(?:[ \t]*\n)+").expect("a valid pattern"));
    let marked = BLOCK.replace_all(html, |c: &regex::Captures<'_>| format!("<br>{}", &c[0]));
    let text = mail_parser::decoders::html::html_to_text(&marked);
    BLANK_LINES.replace_all(&text, "\n\n").into_owned()
}

fn body_text(msg: &mail_parser::Message<'_>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for i in 0..msg.text_body_count() {
        // An HTML part standing for the text (an HTML-only mail) keeps its lines.
        let part = msg.text_part(i as u32);
        let text = match part.map(|p| &p.body) {
            Some(mail_parser::PartType::Html(html)) => Some(html_text(html).into()),
            _ => match part.and_then(flowed) {
                Some(delsp) => msg.body_text(i).map(|t| unflow(&t, delsp).into()),
                None => msg.body_text(i),
            },
        };
        if let Some(text) = text
            && !text.trim().is_empty()
        {
            parts.push(text.into_owned());
        }
    }
    if parts.is_empty() {
        // An empty text/plain beside a real HTML part (Outlook does this): use the HTML.
        for i in 0..msg.html_body_count() {
            if let Some(html) = msg.body_html(i) {
                let text = html_text(&html);
                if !text.trim().is_empty() {
                    parts.push(text);
                }
            }
        }
    }
    // One part (nearly every mail) is taken as it is, not copied into a join.
    let text = if parts.len() == 1 {
        parts.pop().unwrap_or_default()
    } else {
        parts.join("\n\n")
    };
    normalise_newlines(text)
}

/// `Some(delsp)` when the part is `format=flowed` text (RFC 3676).
fn flowed(part: &mail_parser::MessagePart<'_>) -> Option<bool> {
    let ct = part.content_type()?;
    ct.attribute("format")
        .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
        .then(|| {
            ct.attribute("delsp")
                .is_some_and(|d| d.eq_ignore_ascii_case("yes"))
        })
}

/// RFC 3676: a line ending in a space continues on the next one (of the same quote depth),
/// and a line the writer began with a space, `>` or "From " was sent with one more space
/// in front. Decoded before quotes are looked for: a typed "> 25 Mo" arrives as " > 25 Mo"
/// and stays the writer's text, kept with its leading space so that it never reads as a
/// quote; a real quote is `>` at the start of the line.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined: its quote depth and its text so far.
    let mut open: Option<(usize, String)> = None;
    let flush = |out: &mut String, depth: usize, body: &str| {
        if depth > 0 {
            out.push_str(&">".repeat(depth));
            if !body.is_empty() {
                out.push(' ');
            }
        } else if body.starts_with('>') {
            out.push(' ');
        }
        out.push_str(body);
        out.push('\n');
    };
    for raw in text.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let mut body = &line[depth..];
        body = body.strip_prefix(' ').unwrap_or(body);
        let signature = body == "-- ";
        let soft = !signature && body.ends_with(' ');
        let piece = if soft && delsp {
            &body[..body.len() - 1]
        } else {
            body
        };
        let mut paragraph = match open.take() {
            Some((d, acc)) if d == depth => acc,
            Some((d, acc)) => {
                flush(&mut out, d, &acc);
                String::new()
            }
            None => String::new(),
        };
        paragraph.push_str(piece);
        if soft {
            open = Some((depth, paragraph));
        } else {
            flush(&mut out, depth, &paragraph);
        }
    }
    if let Some((d, acc)) = open {
        flush(&mut out, d, &acc);
    }
    out.pop();
    out
}

/// Classic Mac OS ended lines with a bare CR; mail-parser reads such a message as one long
/// header. When bare CRs outnumber LFs, they are line ends: make them LFs.
fn old_mac_line_endings(raw: &[u8]) -> Cow<'_, [u8]> {
    let lf = raw.iter().filter(|&&b| b == b'\n').count();
    let bare_cr = raw
        .windows(2)
        .filter(|w| w[0] == b'\r' && w[1] != b'\n')
        .count()
        + usize::from(raw.last() == Some(&b'\r'));
    if bare_cr <= lf {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\r' && raw.get(i + 1) != Some(&b'\n') {
            out.push(b'\n');
        } else {
            out.push(b);
        }
    }
    Cow::Owned(out)
}

/// What some saved mail carries before its first header, which mail-parser would take for
/// a headerless message: blank or whitespace-only lines, an mbox `From sender date`
/// separator, or that separator escaped as `>From ` by a second mbox round-trip.
fn skip_preamble(mut raw: &[u8]) -> &[u8] {
    loop {
        let end = raw
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(raw.len());
        let line = &raw[..end];
        let blank = line.iter().all(|b| b.is_ascii_whitespace());
        let separator = line.starts_with(b"From ") || line.starts_with(b">From ");
        if end == raw.len() || !(blank || separator) {
            return raw;
        }
        raw = &raw[end..];
    }
}

/// A sender that RFC 5322 parsing missed: `From: Big Bug bb@bug.com` (no angle brackets)
/// still names an address a person can be answered at. Tried in order: From, Sender,
/// Return-Path.
fn loose_sender(msg: &mail_parser::Message<'_>) -> Option<Mailbox> {
    for header in ["From", "Sender", "Return-Path"] {
        let Some(value) = msg.header_raw(header) else {
            continue;
        };
        let found = value
            .split(|c: char| {
                c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')' | ',' | ';')
            })
            .find_map(|token| {
                let token = token.trim_matches(|c: char| c == '.' || c == ':' || c == '\'');
                token
                    .contains('@')
                    .then(|| EmailAddress::parse(token).ok())
                    .flatten()
            });
        if let Some(address) = found {
            let name = value.replace(address.as_str(), "");
            let name = clean_header_text(name.trim_matches(|c: char| {
                c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')')
            }));
            return Some(Mailbox {
                address,
                name: (!name.is_empty()).then_some(name),
            });
        }
    }
    None
}

/// LF line ends, and no NUL: a NUL would cut the text short in C-string consumers
/// (SQLite's text functions, terminals, many mail clients). The raw bytes keep it.
///
/// One pass, and none when there is nothing to change: a 30 MB text is not copied three
/// times over.
fn normalise_newlines(text: String) -> String {
    if !text.bytes().any(|b| b == b'\r' || b == 0) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push('\n');
            }
            '\0' => {}
            c => out.push(c),
        }
    }
    out
}

fn clean_header_text(text: &str) -> String {
    let joined: String = text
        .chars()
        .filter(|c| *c != '\0')
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    joined.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clean_id(id: &str) -> String {
    id.replace('\0', "")
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned()
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    let list: Vec<String> = match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for id in list {
        if !id.is_empty() && !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

fn first_mailbox(address: &Address<'_>) -> Option<Mailbox> {
    match address {
        Address::List(list) => list.iter().find_map(to_mailbox),
        Address::Group(groups) => groups
            .iter()
            .flat_map(|g| g.addresses.iter())
            .find_map(to_mailbox),
    }
}

fn to_mailbox(addr: &mail_parser::Addr<'_>) -> Option<Mailbox> {
    let address = EmailAddress::parse(addr.address()?).ok()?;
    let name = addr.name().map(clean_header_text).filter(|n| !n.is_empty());
    Some(Mailbox { address, name })
}

fn addresses<'a>(values: impl Iterator<Item = &'a HeaderValue<'a>>) -> Vec<EmailAddress> {
    let mut out = Vec::new();
    for value in values {
        if let HeaderValue::Address(address) = value {
            let list: Vec<&mail_parser::Addr<'_>> = match address {
                Address::List(l) => l.iter().collect(),
                Address::Group(g) => g.iter().flat_map(|g| g.addresses.iter()).collect(),
            };
            for addr in list {
                if let Some(a) = addr.address().and_then(|a| EmailAddress::parse(a).ok())
                    && !out.contains(&a)
                {
                    out.push(a);
                }
            }
        }
    }
    out
}

fn header_text(msg: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    let raw = msg.header_raw(name)?;
    let text = clean_header_text(raw);
    Some(text)
}

fn return_path_is_empty(msg: &mail_parser::Message<'_>) -> bool {
    msg.header_raw("Return-Path").is_some_and(|raw| {
        let inner: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        inner.is_empty() || inner == "<>"
    })
}

/// The report type of the mail's `multipart/report`, wherever it sits: a challenge-response
/// system or a relay may wrap the report in a `multipart/mixed`, and a report is a
/// machine's mail whatever the envelope around it. A lone `message/delivery-status` (or
/// disposition-notification, feedback-report) part counts as a report of that type.
fn report_type(msg: &mail_parser::Message<'_>) -> Option<String> {
    let mut lone = None;
    for part in msg.parts.iter().take(64) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let subtype = ct.subtype().unwrap_or("").to_ascii_lowercase();
        match ct.ctype().to_ascii_lowercase().as_str() {
            "multipart" if subtype == "report" => {
                return Some(
                    ct.attribute("report-type")
                        .unwrap_or("unknown")
                        .to_ascii_lowercase(),
                );
            }
            "message"
                if lone.is_none()
                    && matches!(
                        subtype.as_str(),
                        "delivery-status" | "disposition-notification" | "feedback-report"
                    ) =>
            {
                lone = Some(subtype);
            }
            _ => {}
        }
    }
    lone
}

fn attachments(
    msg: &mail_parser::Message<'_>,
    original: &[u8],
    raw_base: Option<usize>,
) -> Vec<Attachment> {
    msg.attachments()
        .map(|part| {
            let raw_body = raw_base
                .filter(|_| !matches!(part.body, mail_parser::PartType::Message(_)))
                .map(|base| RawBody {
                    start: base + part.offset_body as usize,
                    end: base + part.offset_end as usize,
                    encoding: match part.encoding {
                        mail_parser::Encoding::Base64 => BodyEncoding::Base64,
                        mail_parser::Encoding::QuotedPrintable => BodyEncoding::QuotedPrintable,
                        mail_parser::Encoding::None => BodyEncoding::Identity,
                    },
                });
            let content_type = part
                .content_type()
                .map(|ct| match ct.subtype() {
                    Some(sub) => format!("{}/{}", ct.ctype(), sub),
                    None => ct.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase();
            let content = match &part.body {
                mail_parser::PartType::Message(m) => m.raw_message().to_vec(),
                _ => part.contents().to_vec(),
            };
            // Kept as a range only if it gives back exactly these bytes (a text part the
            // parser converted from its charset, or a damaged base64 body it read its own
            // way, keeps its decoded copy).
            let raw_body = raw_body.filter(|r| r.decode(original).as_deref() == Some(&content[..]));
            Attachment {
                filename: part.attachment_name().map(clean_header_text),
                content_type,
                content,
                raw_body,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report is a machine's wherever it sits in the mail, but a person who forwards a
    /// bounce as an attached mail is still a person.
    #[test]
    fn a_report_wrapped_in_mixed_counts_and_one_forwarded_inside_a_mail_does_not() {
        let report = "Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n--r\r\nContent-Type: text/plain\r\n\r\nconfirm you are human\r\n--r\r\nContent-Type: message/delivery-status\r\n\r\nAction: delayed\r\n--r--\r\n";
        let wrapped = format!(
            "From: verify@challenge.example\r\nSubject: confirm\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\n{report}--o--\r\n"
        );
        let mail = parse(wrapped.as_bytes()).unwrap();
        assert_eq!(mail.signals.report_type.as_deref(), Some("delivery-status"));
        let forwarded = format!(
            "From: paul@example.fr\r\nSubject: TR: mail non distribué\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: text/plain\r\n\r\nMon mail revient, pourquoi ?\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nFrom: MAILER-DAEMON@example.fr\r\nSubject: Undelivered\r\n{report}--o--\r\n"
        );
        let mail = parse(forwarded.as_bytes()).unwrap();
        assert_eq!(mail.signals.report_type, None);
    }

    #[test]
    fn raw_latin1_subject_is_decoded_not_garbled() {
        let raw = b"From: H\xe5vard <hw@example.no>\r\nSubject: Probl\xe8me d'acc\xe8s\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nCorps\r\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.subject, "Problème d'accès");
        assert_eq!(mail.from.unwrap().name.as_deref(), Some("Håvard"));
    }

    #[test]
    fn encoded_word_subject_and_threading_headers_are_read() {
        let raw = b"From: a@example.com\nSubject: =?UTF-8?Q?Imprimante_bloqu=C3=A9e?=\nMessage-ID: <abc@x>\nIn-Reply-To: <p1@x>\nReferences: <p0@x> <p1@x>\n\nhi\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.subject, "Imprimante bloquée");
        assert_eq!(mail.message_id.as_deref(), Some("abc@x"));
        assert_eq!(mail.in_reply_to, vec!["p1@x"]);
        assert_eq!(mail.references, vec!["p0@x", "p1@x"]);
    }

    #[test]
    fn html_only_replies_lose_the_history_in_their_blockquote() {
        for (client, html) in [
            (
                "thunderbird",
                "<p>Toujours en panne.</p><div class=\"moz-cite-prefix\">Le 23/11/2026, Support a écrit&nbsp;:</div><blockquote type=\"cite\"><p>Bonjour, avez-vous redémarré ?</p></blockquote>",
            ),
            (
                "no attribution",
                "<div>Toujours en panne.</div><blockquote><div>Bonjour, avez-vous redémarré ?</div></blockquote>",
            ),
            (
                "gmail",
                "<div dir=\"ltr\">Toujours en panne.</div><br><div class=\"gmail_quote\"><div class=\"gmail_attr\">Le lun. 23 nov. 2026, Support a écrit :</div><blockquote class=\"gmail_quote\">Bonjour, avez-vous redémarré ?</blockquote></div>",
            ),
            (
                "outlook web",
                "<div>Toujours en panne.</div><hr><div id=\"divRplyFwdMsg\"><b>De :</b> Support<br><b>Objet :</b> Imprimante</div><div>Bonjour, avez-vous redémarré ?</div>",
            ),
        ] {
            let raw = format!(
                "From: a@example.com\nSubject: Re: x\nContent-Type: text/html; charset=utf-8\n\n{html}\n"
            );
            let mail = parse(raw.as_bytes()).unwrap();
            assert_eq!(mail.reply_text, "Toujours en panne.", "{client}");
            assert!(
                mail.quoted_text.contains("redémarré"),
                "{client}: {:?}",
                mail.quoted_text
            );
            assert!(
                mail.body_text.contains("redémarré"),
                "{client}: the whole text stays whole"
            );
        }
    }

    #[test]
    fn html_only_mail_gets_a_text_body() {
        let raw = b"From: a@example.com\nSubject: x\nContent-Type: text/html\n\n<p>Hello <b>there</b></p>\n";
        let mail = parse(raw).unwrap();
        assert!(
            mail.body_text.contains("Hello there"),
            "{:?}",
            mail.body_text
        );
    }

    #[test]
    fn leading_blank_lines_and_mbox_separators_are_not_taken_for_a_body() {
        let mail = "From: a@example.com\nSubject: Printer\n\nIt jams.\n";
        for preamble in [
            "\n\n",
            " \r\n\t\n",
            "From a@example.com Mon Mar  2 10:00:00 2026\n",
            ">From a@example.com Mon Mar  2 10:00:00 2026\n",
            "\r\nFrom a@example.com Mon Mar  2 10:00:00 2026\r\n\r\n",
        ] {
            let parsed = parse(format!("{preamble}{mail}").as_bytes())
                .unwrap_or_else(|e| panic!("{preamble:?}: {e}"));
            assert_eq!(parsed.subject, "Printer", "{preamble:?}");
            assert_eq!(
                parsed.from.map(|f| f.address.to_string()).as_deref(),
                Some("a@example.com")
            );
        }
    }

    #[test]
    fn a_body_without_any_header_is_still_no_header() {
        assert_eq!(
            parse(b"\n\njust some words\nand more\n").unwrap_err(),
            ParseFailure::NoHeader
        );
    }

    #[test]
    fn nul_bytes_do_not_cut_the_text() {
        let raw =
            b"From: a@example.com\nSubject: Nul\0 here\n\nbefore\0after the nul\nsecond line\n";
        let mail = parse(raw).unwrap();
        assert_eq!(mail.subject, "Nul here");
        assert!(
            mail.body_text.contains("beforeafter the nul\nsecond line"),
            "{:?}",
            mail.body_text
        );
        assert!(!mail.reply_text.contains('\0'));
    }

    #[test]
    fn empty_input_is_a_parse_failure() {
        assert_eq!(parse(b"").unwrap_err(), ParseFailure::Empty);
        assert_eq!(parse(b"\r\n\r\n").unwrap_err(), ParseFailure::Empty);
    }

    #[test]
    fn an_html_only_reply_keeps_its_lines_so_commands_stay_apart() {
        let raw = "From: alice@example.com\r\nTo: support@example.com\r\nSubject: Re: x\r\n\
                   Content-Type: text/html; charset=utf-8\r\n\r\n\
                   <html><body><div>#priority urgent</div><div>#wait 2d</div><div>Hello customer,</div>\
                   <div><br></div><ul><li>first</li><li>second</li></ul><div>Alice</div></body></html>\r\n";
        let mail = parse(raw.as_bytes()).unwrap();
        let lines: Vec<&str> = mail
            .body_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines[..4],
            ["#priority urgent", "#wait 2d", "Hello customer,", "first"],
            "{:?}",
            mail.body_text
        );
        assert!(lines.contains(&"second"));
    }
}
