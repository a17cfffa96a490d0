//! Subject lines as people's mail clients mangle them: `Re:`, `RE :`, `Fwd:`, `TR:`,
//! `AW:`, `SV:`, `Réf. :`, `Re[2]:`, list tags and our own code tag. Threading and the
//! acknowledgement's subject both work on the subject with all of that taken off.

/// Prefixes that mean "an answer to" in the clients our customers use.
const REPLY_PREFIXES: &[&str] = &[
    "re", "aw", "sv", "vs", "antw", "odp", "ynt", "r", "rif", "réf", "ref", "rép", "rep", "atb",
    "vá", "відп", "отв", "回复", "答复", "回覆",
];
/// Prefixes that mean "passing on".
const FORWARD_PREFIXES: &[&str] = &[
    "fwd", "fw", "tr", "wg", "i", "enc", "rv", "doorst", "vl", "fs", "转发", "轉寄",
];

/// A subject split into what matters for threading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The subject without prefixes, collapsed white space; compare case-insensitively.
    pub base: String,
    /// True when the first prefix says the mail answers an earlier one.
    pub is_reply: bool,
}

pub fn analyse(subject: &str) -> Subject {
    let mut rest = subject.trim();
    let mut is_reply = false;
    let mut first = true;
    while let Some((word, after)) = leading_prefix(rest) {
        let lower = word.to_lowercase();
        let reply = REPLY_PREFIXES.contains(&lower.as_str());
        if !reply && !FORWARD_PREFIXES.contains(&lower.as_str()) {
            break;
        }
        if first {
            is_reply = reply;
            first = false;
        }
        rest = after.trim_start();
    }
    Subject {
        base: rest.split_whitespace().collect::<Vec<_>>().join(" "),
        is_reply,
    }
}

/// The key two subjects are compared by: base subject, lower-cased, bracketed tags removed
/// (a list adding `[rt-users]`, or our own `[HD-…]` being dropped, must not matter).
pub fn thread_key(subject: &str) -> String {
    let base = analyse(subject).base;
    let mut out = String::with_capacity(base.len());
    let mut depth = 0usize;
    for c in base.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let key = analyse(&out).base.to_lowercase();
    if key.is_empty() {
        base.to_lowercase()
    } else {
        key
    }
}

/// Splits `Re[2]: rest` / `RE : rest` / `Réf. : rest` into (`Re`, `rest`).
fn leading_prefix(text: &str) -> Option<(&str, &str)> {
    let word_end = text
        .find(|c: char| !c.is_alphabetic())
        .unwrap_or(text.len());
    if word_end == 0 || word_end > 8 {
        return None;
    }
    let word = &text[..word_end];
    let mut after = &text[word_end..];
    // Counters: Re[2], Re(3), Re^2
    if let Some(inner) = after.strip_prefix('[').or_else(|| after.strip_prefix('(')) {
        let digits = inner
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(inner.len());
        if digits > 0 && matches!(inner[digits..].chars().next(), Some(']' | ')')) {
            after = &inner[digits + 1..];
        }
    } else if let Some(inner) = after.strip_prefix('^') {
        let digits = inner
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(inner.len());
        after = &inner[digits..];
    }
    let after = after.strip_prefix('.').unwrap_or(after);
    let after = after.trim_start_matches([' ', '\u{a0}']);
    let after = after
        .strip_prefix(':')
        .or_else(|| after.strip_prefix('：'))?;
    Some((word, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_and_forward_prefixes_of_many_clients_are_removed() {
        for s in [
            "Re: Printer jammed",
            "RE : Printer jammed",
            "Fwd: Printer jammed",
            "TR: Re: Printer jammed",
            "AW: Printer jammed",
            "SV: Printer jammed",
            "Réf. : Printer jammed",
            "Re[2]: Printer jammed",
            "R: R: I: Printer jammed",
            "re:Printer   jammed",
        ] {
            assert_eq!(analyse(s).base, "Printer jammed", "{s}");
        }
    }

    #[test]
    fn the_first_prefix_decides_whether_it_is_a_reply() {
        assert!(analyse("Re: Fwd: x").is_reply);
        assert!(!analyse("Fwd: Re: x").is_reply);
        assert!(!analyse("Printer jammed").is_reply);
    }

    #[test]
    fn words_that_only_look_like_prefixes_stay() {
        assert_eq!(analyse("Remote access broken").base, "Remote access broken");
        assert_eq!(analyse("Reset: password").base, "Reset: password");
        assert!(!analyse("Reset: password").is_reply);
    }

    #[test]
    fn thread_key_ignores_tags_case_and_prefixes() {
        assert_eq!(
            thread_key("Re: [HD-7K3M9QXA] VPN down"),
            thread_key("vpn  DOWN")
        );
        assert_eq!(thread_key("[rt-users] Re: HTML mails"), "html mails");
        assert_eq!(thread_key("[only a tag]"), "[only a tag]");
    }
}
