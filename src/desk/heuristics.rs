//! What a person's words mean, read the way an agent would: "RÉSOLU" alone on the first
//! line closes a request, "merci, bonne journée" is courtesy, "4 - merci" is a rating, and
//! "#escalate L4 Ricoh printer jams" names a vendor. Pure text, no ticket.

use crate::domain::Tier;
use crate::timing::Vendor;

/// The first line of what someone wrote this time, trimmed.
pub(super) fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// "RÉSOLU", "solved", "Fermer"… alone on the first line: the customer closes the request.
pub fn says_solved(text: &str) -> bool {
    // "Résolu, merci !": the word, then nothing but courtesy.
    let line = first_line(text);
    let (word, rest) = line
        .split_once([',', ';', '!', '.', ':'])
        .unwrap_or((line, ""));
    if !rest.trim().is_empty() && !says_thanks(rest) {
        return false;
    }
    let line = word.trim();
    let folded: String = {
        use unicode_normalization::UnicodeNormalization;
        line.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    matches!(
        folded.as_str(),
        "resolu" | "resolue" | "solved" | "resolved" | "close" | "closed" | "fermer" | "ferme"
    )
}

/// Nothing but courtesy ("Merci beaucoup, bonne journée !", "Thanks, it works now"): on a
/// closed ticket, filed without opening a new one.
pub fn says_thanks(text: &str) -> bool {
    const COURTESY: &[&str] = &[
        "merci",
        "beaucoup",
        "bien",
        "encore",
        "mille",
        "fois",
        "super",
        "parfait",
        "top",
        "ok",
        "d",
        "accord",
        "cordialement",
        "bonne",
        "journee",
        "soiree",
        "bonjour",
        "c",
        "est",
        "tout",
        "bon",
        "ca",
        "marche",
        "resolu",
        "a",
        "vous",
        "pour",
        "votre",
        "aide",
        "thanks",
        "thank",
        "you",
        "very",
        "much",
        "great",
        "perfect",
        "cheers",
        "regards",
        "best",
        "many",
        "lot",
        "hello",
        "hi",
        "it",
        "works",
        "now",
        "solved",
        "for",
        "your",
        "help",
        "all",
        "good",
    ];
    let folded: String = {
        use unicode_normalization::UnicodeNormalization;
        text.nfd()
            .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let words: Vec<&str> = folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    !words.is_empty()
        && words.len() <= 12
        && words
            .iter()
            .any(|w| ["merci", "thanks", "thank"].contains(w))
        && words.iter().all(|w| COURTESY.contains(w))
}

/// A digit from 1 to 5 opening the first line, with whatever follows as the comment
/// ("4", "5 - merci !", "3\nUn peu long."). Anything else is not a rating.
pub fn rating(text: &str) -> Option<(u8, Option<String>)> {
    let line = first_line(text);
    let mut chars = line.chars();
    let digit = chars.next()?.to_digit(10)?;
    if !(1..=5).contains(&digit) {
        return None;
    }
    let after_digit = chars.as_str();
    // "4" or "4/5", "4 - …", "4. …" but not "42" or "4h ago".
    let after = after_digit.strip_prefix("/5").unwrap_or(after_digit);
    if after.starts_with(|c: char| c.is_alphanumeric()) {
        return None;
    }
    let rest_of_line = after
        .trim_start_matches([' ', '-', '.', ':', ')', '–'])
        .trim();
    let later: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    let mut comment = rest_of_line.to_string();
    if !later.is_empty() {
        if !comment.is_empty() {
            comment.push('\n');
        }
        comment.push_str(&later.join("\n"));
    }
    Some((digit as u8, (!comment.is_empty()).then_some(comment)))
}

/// `#escalate L4 Ricoh France printer jams`: the vendor named at the start of the reason,
/// and the rest of it.
pub fn vendor_named(
    vendors: &[Vendor],
    to: Option<Tier>,
    reason: Option<&str>,
) -> (Option<String>, Option<String>) {
    let Some(text) = reason.filter(|_| to == Some(Tier::L4Vendor)) else {
        return (None, reason.map(str::to_string));
    };
    // Compared character by character: lower-casing may change a text's length in bytes.
    let named = |name: &str| -> Option<usize> {
        let end = text
            .char_indices()
            .nth(name.chars().count())
            .map(|(i, _)| i)
            .unwrap_or(text.len());
        (text[..end].to_lowercase() == name.to_lowercase()
            && text[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric()))
        .then_some(end)
    };
    let found = vendors
        .iter()
        .filter_map(|v| named(&v.name).map(|end| (v, end)))
        .max_by_key(|(v, _)| v.name.len());
    match found {
        Some((v, end)) => {
            let rest = text[end..].trim_start_matches([' ', ':', '-', ',']).trim();
            (
                Some(v.name.clone()),
                (!rest.is_empty()).then(|| rest.to_string()),
            )
        }
        None => (None, Some(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_alone_on_the_first_line_closes_and_a_digit_rates() {
        for yes in [
            "RÉSOLU",
            "resolu",
            "Solved!",
            "  RESOLVED\nthanks",
            "Fermer",
            "close",
            "Résolu, merci !",
            "Solved, thanks a lot",
        ] {
            assert!(says_solved(yes), "{yes:?}");
        }
        for no in [
            "Pas résolu",
            "It is not solved",
            "résolu ?",
            "Merci\nRÉSOLU",
            "Résolu, mais l'imprimante refait du bruit",
        ] {
            assert!(!says_solved(no), "{no:?}");
        }
        assert_eq!(rating("5"), Some((5, None)));
        assert_eq!(
            rating("4 - rapide, merci"),
            Some((4, Some("rapide, merci".into())))
        );
        assert_eq!(
            rating("3/5\nUn peu long."),
            Some((3, Some("Un peu long.".into())))
        );
        for no in [
            "0",
            "6",
            "42",
            "4h plus tard ça remarche plus",
            "Toujours en panne",
        ] {
            assert_eq!(rating(no), None, "{no:?}");
        }
    }

    #[test]
    fn courtesy_alone_is_thanks_and_news_is_not() {
        assert!(!says_thanks("Merci, mais l'imprimante bourre encore."));
        assert!(says_thanks("Thanks a lot, it works now!"));
        assert!(!says_thanks("Bonne journée"), "no thanks in it");
    }

    #[test]
    fn a_vendor_is_named_at_the_start_of_an_l4_escalation_reason() {
        let mut d = Vec::new();
        for name in ["Ricoh France", "Ricoh", "Société Générale"] {
            d.push(Vendor {
                name: name.into(),
                address: "v@example.com".parse().unwrap(),
                ticket_pattern: None,
                answer_within: chrono::Duration::hours(16),
            });
        }
        let l4 = Some(Tier::L4Vendor);
        assert_eq!(
            vendor_named(&d, l4, Some("ricoh france: fuser error")),
            (Some("Ricoh France".into()), Some("fuser error".into()))
        );
        assert_eq!(
            vendor_named(&d, l4, Some("Ricoh")),
            (Some("Ricoh".into()), None)
        );
        assert_eq!(
            vendor_named(&d, l4, Some("SOCIÉTÉ GÉNÉRALE carte bloquée")),
            (
                Some("Société Générale".into()),
                Some("carte bloquée".into())
            )
        );
        // Case mappings that change a character's length in bytes do not panic.
        assert_eq!(
            vendor_named(&d, l4, Some("İİİİİİİİİİİİ ẞ")),
            (None, Some("İİİİİİİİİİİİ ẞ".into()))
        );
        assert_eq!(
            vendor_named(&d, l4, Some("Ricohx printer")),
            (None, Some("Ricohx printer".into()))
        );
        assert_eq!(
            vendor_named(&d, Some(Tier::L3Expert), Some("Ricoh France")),
            (None, Some("Ricoh France".into()))
        );
    }
}
