//! Separates what a person wrote this time from the history their client quoted below
//! (or, bottom-posting, above) it. Agents read `reply`; `quoted` is kept for the record.
//!
//! Line-based and language-aware for the clients our users have: `>` quoting, Gmail/Apple
//! "On … wrote:", French "Le … a écrit :", German "Am … schrieb", Outlook's
//! "-----Original Message-----" and its "From:/Sent:" block (also "De :/Envoyé :"),
//! Zimbra's "----- Mail original -----", Lotus Notes' "----- Transféré par … -----", and
//! a "--- Reply above this line ---" marker; then the signature (`-- `, "Envoyé de mon
//! iPhone"…). `tests/quotes/` holds one case per client and language.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// The new text, without quoted history and without the signature.
    pub reply: String,
    pub quoted: String,
    /// The sender's signature: after a `-- ` line, or a mobile client's "Sent from my
    /// iPhone" line and what follows it. Kept apart so a customer's is not read as their
    /// request, and an agent's still reaches the customer.
    pub signature: String,
}

/// Lines a mail client adds under the text, in lower case: the signature starts there.
const MOBILE_SIGNATURES: &[&str] = &[
    "sent from my ",
    "sent from mail for ",
    "sent with ",
    "get outlook for ",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "envoyé à partir de ",
    "obtenir outlook pour ",
    "téléchargez outlook pour ",
    "von meinem ",
    "gesendet von meinem ",
    "gesendet mit ",
    "outlook für ",
];

/// "Sent from Proton Mail Android", "Envoyé depuis Yahoo Mail pour Android": an app's
/// tagline, a short line of names without a sentence's punctuation.
fn app_tagline(lower: &str) -> bool {
    let rest = [
        "sent from ",
        "envoyé depuis ",
        "envoyé de ",
        "gesendet von ",
    ]
    .iter()
    .find_map(|p| lower.strip_prefix(p));
    rest.is_some_and(|rest| {
        let rest = rest.trim_end_matches(['.', '!']);
        rest.split_whitespace().count() <= 6 && !rest.contains([',', '.', ':', ';', '?', '!'])
    })
}

/// Outlook puts a no-break space before the colon of its French header block ("De :");
/// other clients a narrow one. Compared as plain spaces.
fn spaced(line: &str) -> std::borrow::Cow<'_, str> {
    if line.contains(['\u{a0}', '\u{202f}']) {
        line.replace(['\u{a0}', '\u{202f}'], " ").into()
    } else {
        line.into()
    }
}

/// Splits the signature off the end of a reply.
fn split_signature(reply: &str) -> (String, String) {
    let lines: Vec<&str> = reply.lines().collect();
    let dashes = lines
        .iter()
        .position(|l| *l == "-- " || l.trim_end() == "--");
    let mobile = || {
        lines.iter().rposition(|l| {
            let lower = spaced(l).trim().to_lowercase();
            lower.chars().count() < 80
                && (MOBILE_SIGNATURES.iter().any(|m| lower.starts_with(m)) || app_tagline(&lower))
        })
    };
    match dashes
        .map(|i| (i, i + 1))
        .or_else(|| mobile().map(|i| (i, i)))
    {
        Some((body_end, sig_start)) => (
            join(lines[..body_end].iter().copied()),
            join(lines[sig_start..].iter().copied()),
        ),
        None => (reply.to_string(), String::new()),
    }
}

const ATTRIBUTION_ENDINGS: &[&str] = &[
    "wrote:",
    "writes:",
    "a écrit :",
    "a écrit:",
    "a écrit :",
    "schrieb:",
    "escribió:",
    "scrisse:",
    "ha scritto:",
    "написал:",
    "skrev:",
    "kirjoitti:",
    "napisał:",
    "schreef:",
    "escreveu:",
];

const SEPARATORS: &[&str] = &[
    "original message",
    "message d'origine",
    "message d’origine",
    "message original",
    "mail original",
    "forwarded by ",
    "transféré par ",
    "weitergeleitet von ",
    "ursprüngliche nachricht",
    "mensaje original",
    "messaggio originale",
    "forwarded message",
    "message transféré",
    "begin forwarded message",
    "reply above this line",
    "reply above. do not",
    "répondez au-dessus de cette ligne",
];

/// The first line of a client's header block above the quoted mail. GMX and Web.de open
/// theirs with the date (`Gesendet:`).
const OUTLOOK_FROM: &[&str] = &[
    "from:",
    "de :",
    "de:",
    "von:",
    "da:",
    "van:",
    "från:",
    "gesendet:",
];
const OUTLOOK_FOLLOW: &[&str] = &[
    "sent:",
    "date:",
    "envoyé :",
    "envoyé:",
    "gesendet:",
    "subject:",
    "objet :",
    "objet:",
    "to:",
    "à :",
    "inviato:",
    "betreff:",
    "datum:",
    "von:",
    "an:",
    "cc :",
    "cc:",
];

pub fn split(text: &str) -> Split {
    let lines: Vec<&str> = text.lines().collect();
    let header =
        (0..lines.len()).find(|&i| !is_quoted(lines[i]) && header_len(&lines, i).is_some());
    let mut keep = vec![false; lines.len()];

    let end = header.unwrap_or(lines.len());
    for i in 0..end {
        keep[i] = !is_quoted(lines[i]);
    }
    drop_attributions_before_quotes(&lines, &mut keep, end);

    let kept_text = lines
        .iter()
        .zip(&keep)
        .any(|(l, k)| *k && !l.trim().is_empty());
    if let (false, Some(h)) = (kept_text, header) {
        // Bottom-posting: the attribution and the quote come first, the new text after.
        let after = h + header_len(&lines, h).unwrap_or(1);
        let first_text = (after..lines.len()).find(|&i| !lines[i].trim().is_empty());
        if first_text.is_some_and(|i| is_quoted(lines[i])) {
            for i in after..lines.len() {
                keep[i] = !is_quoted(lines[i]) && header_len(&lines, i).is_none();
            }
        }
    }

    let kept = join(
        lines
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(l, _)| *l),
    );
    let quoted = join(
        lines
            .iter()
            .zip(&keep)
            .filter(|(_, k)| !**k)
            .map(|(l, _)| *l),
    );
    let (reply, signature) = split_signature(&kept);
    Split {
        reply,
        quoted,
        signature,
    }
}

fn join<'a>(lines: impl Iterator<Item = &'a str>) -> String {
    lines.collect::<Vec<_>>().join("\n").trim().to_string()
}

/// A quoted line starts with `>`. A line that starts with a space is the writer's: that is
/// how `format=flowed` mail keeps a typed "> 25 Mo" apart from a quote (RFC 3676's space
/// stuffing, which the parser keeps for such lines).
fn is_quoted(line: &str) -> bool {
    line.starts_with('>')
}

/// How many lines the quote header starting at `i` spans, if one starts there.
fn header_len(lines: &[&str], i: usize) -> Option<usize> {
    let spaced = spaced(lines[i]);
    let line = spaced.trim();
    let lower = line.to_lowercase();
    let bare = lower
        .trim_matches(|c: char| c == '-' || c == '_' || c == '=' || c == '*' || c.is_whitespace());
    if bare.is_empty() {
        // A long rule of underscores introduces Outlook's header block.
        if line.len() >= 20
            && line.chars().all(|c| c == '_')
            && i + 1 < lines.len()
            && outlook_block(lines, i + 1)
        {
            return Some(1);
        }
        return None;
    }
    if SEPARATORS.iter().any(|s| bare.starts_with(s)) && line.len() < 90 {
        return Some(1);
    }
    if is_attribution(&lower) {
        return Some(1);
    }
    if let Some(next) = lines.get(i + 1) {
        let starts = ["on ", "le ", "am ", "el ", "il ", "op ", "den "];
        let starts_with_date = bare.chars().take(12).filter(|c| c.is_ascii_digit()).count() >= 4;
        if starts.iter().any(|s| bare.starts_with(s)) || starts_with_date {
            let joined = format!("{} {}", lower, next.trim().to_lowercase());
            if is_attribution(&joined) {
                return Some(2);
            }
        }
    }
    if outlook_block(lines, i) {
        return Some(1);
    }
    None
}

fn is_attribution(lower: &str) -> bool {
    let text = lower.trim().trim_start_matches(['-', ' ']);
    if text.len() > 300 || !ATTRIBUTION_ENDINGS.iter().any(|e| text.ends_with(e)) {
        return false;
    }
    let starts = ["on ", "le ", "am ", "el ", "il ", "op ", "den ", "em "];
    starts.iter().any(|s| text.starts_with(s))
        || text.contains('@')
        || text.chars().any(|c| c.is_ascii_digit())
}

/// `From: …` followed within a few lines by `Sent:`/`Date:`/`Subject:` (Outlook, Exchange).
fn outlook_block(lines: &[&str], i: usize) -> bool {
    let lower = spaced(lines[i]).trim().to_lowercase();
    if !OUTLOOK_FROM.iter().any(|p| lower.starts_with(p)) {
        return false;
    }
    lines[i + 1..].iter().take(4).any(|l| {
        let l = spaced(l).trim().to_lowercase();
        OUTLOOK_FOLLOW.iter().any(|p| l.starts_with(p))
    })
}

/// Non-English attributions we have no word list for ("… пользователь … написал:") still
/// end with a colon right above the quoted block: drop up to three such lines.
fn drop_attributions_before_quotes(lines: &[&str], keep: &mut [bool], end: usize) {
    let mut i = 0;
    while i < end {
        if !is_quoted(lines[i]) {
            i += 1;
            continue;
        }
        // lines[i] starts a quoted block; look above it, skipping blank lines.
        let mut j = i;
        while j > 0 && lines[j - 1].trim().is_empty() {
            j -= 1;
        }
        let block_end = j;
        let mut start = block_end;
        while start > 0
            && block_end - start < 3
            && !lines[start - 1].trim().is_empty()
            && !is_quoted(lines[start - 1])
        {
            start -= 1;
        }
        if start < block_end {
            let joined = lines[start..block_end].join(" ");
            let t = joined.trim();
            let looks_like_attribution = t.ends_with(':')
                && (t.contains('@') || t.chars().filter(|c| c.is_ascii_digit()).count() >= 4);
            if looks_like_attribution {
                for k in keep.iter_mut().take(block_end).skip(start) {
                    *k = false;
                }
            }
        }
        while i < end && is_quoted(lines[i]) {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmail_attribution_and_quote_are_cut() {
        let s = split(
            "Merci, c'est réglé.\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan <x@gmail.com>\nwrote:\n\n> Hi\n",
        );
        assert_eq!(s.reply, "Merci, c'est réglé.");
        assert!(s.quoted.contains("> Hi"));
    }

    #[test]
    fn french_attribution_is_cut() {
        let s = split(
            "Toujours en panne.\n\nLe lun. 3 mars 2025 à 10:02, Support <support@x.fr> a écrit :\n> Bonjour\n",
        );
        assert_eq!(s.reply, "Toujours en panne.");
    }

    #[test]
    fn outlook_french_header_block_is_cut() {
        let s = split(
            "Ça remarche.\n\nDe : Support <support@x.fr>\nEnvoyé : lundi 3 mars 2025 10:02\nÀ : moi\nObjet : [HD-X] Imprimante\n\nBonjour",
        );
        assert_eq!(s.reply, "Ça remarche.");
        assert!(s.quoted.starts_with("De : Support"));
    }

    #[test]
    fn bottom_posted_reply_keeps_the_text_below_the_quote() {
        let s = split("On 04/02/2012 06:26 PM, Megan One wrote:\n> Hi \nHello");
        assert_eq!(s.reply, "Hello");
    }

    #[test]
    fn inline_answers_between_quotes_are_kept() {
        let s = split("> Which printer?\nThe one on floor 2.\n> Since when?\nThis morning.");
        assert_eq!(s.reply, "The one on floor 2.\nThis morning.");
    }

    #[test]
    fn mail_without_history_is_all_reply() {
        let s = split("My VPN is down.\nCan you help?\n");
        assert_eq!(s.reply, "My VPN is down.\nCan you help?");
        assert_eq!(s.quoted, "");
    }
}
