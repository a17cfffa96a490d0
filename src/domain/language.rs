//! The languages the gateway writes in, and how it picks one for a customer.

use std::fmt;
use std::str::FromStr;

use whatlang::{Detector, Lang};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    En,
    Fr,
}

impl Language {
    pub const ALL: [Language; 2] = [Language::En, Language::Fr];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Fr => "fr",
        }
    }

    /// Reads a `Content-Language` value such as `fr-CA, en`; the first tag we write in wins.
    pub fn from_content_language(value: &str) -> Option<Language> {
        value.split(',').find_map(|tag| {
            let primary = tag
                .trim()
                .split(['-', '_', ';'])
                .next()?
                .to_ascii_lowercase();
            primary.parse().ok()
        })
    }

    /// Chooses the reply language: the sender's `Content-Language` when it names one we
    /// write in, else what the text itself is written in when that is clear, else `default`.
    pub fn choose(content_language: Option<&str>, text: &str, default: Language) -> Language {
        if let Some(lang) = content_language.and_then(Language::from_content_language) {
            return lang;
        }
        detect(text)
            .or_else(|| function_words(text))
            .unwrap_or(default)
    }
}

/// French or English when the text is plainly one of them; `None` for too little text or
/// another language (a German mail gets the configured default, not a coin toss).
fn detect(text: &str) -> Option<Language> {
    let sample: String = text.chars().take(2000).collect();
    if sample.split_whitespace().count() < 2 {
        return None;
    }
    let any = whatlang::detect(&sample)?;
    let lang = match any.lang() {
        // Unsure between the two on a short mail: the little words decide, if they can.
        Lang::Fra if !any.is_reliable() => function_words(&sample).unwrap_or(Language::Fr),
        Lang::Eng if !any.is_reliable() => function_words(&sample).unwrap_or(Language::En),
        Lang::Fra => Language::Fr,
        Lang::Eng => Language::En,
        _ => {
            // whatlang confuses short French and English with their neighbours; ask it again
            // between our two only, and trust that answer only when it is confident.
            let narrowed = Detector::with_allowlist(vec![Lang::Eng, Lang::Fra]).detect(&sample)?;
            if narrowed.confidence() < 0.5 || any.is_reliable() {
                return None;
            }
            match narrowed.lang() {
                Lang::Fra => Language::Fr,
                _ => Language::En,
            }
        }
    };
    Some(lang)
}

/// When statistics give up on a short mail ("windows says my password expired, how do i
/// change it?? thx"), its little words still tell French from English: at least two of
/// one language's and twice as many as the other's.
fn function_words(text: &str) -> Option<Language> {
    const FR: &[&str] = &[
        "le", "la", "les", "de", "des", "du", "je", "mon", "ma", "mes", "est", "pas", "ne", "et",
        "un", "une", "pour", "sur", "avec", "que", "qui", "il", "elle", "nous", "vous", "depuis",
        "ça", "ca", "au", "aux", "plus", "mais", "ou", "dans", "bonjour", "merci",
    ];
    const EN: &[&str] = &[
        "the", "a", "an", "is", "my", "i", "to", "of", "and", "in", "it", "on", "for", "with",
        "not", "can", "cant", "can't", "how", "do", "does", "since", "this", "that", "you", "me",
        "again", "says", "keep", "hi", "hello", "thanks", "thx", "please",
    ];
    let (mut fr, mut en) = (0usize, 0usize);
    for word in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .take(400)
        .map(str::to_lowercase)
    {
        fr += usize::from(FR.contains(&word.as_str()));
        en += usize::from(EN.contains(&word.as_str()));
    }
    if fr >= 2 && fr >= 2 * en {
        Some(Language::Fr)
    } else if en >= 2 && en >= 2 * fr {
        Some(Language::En)
    } else {
        None
    }
}

impl FromStr for Language {
    type Err = super::ticket::UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "en" => Ok(Language::En),
            "fr" => Ok(Language::Fr),
            _ => Err(super::ticket::UnknownValue {
                kind: "language",
                value: s.into(),
            }),
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_language_header_wins_over_the_text() {
        let text = "Hello, my printer does not print any more since this morning.";
        assert_eq!(
            Language::choose(Some("fr-FR"), text, Language::En),
            Language::Fr
        );
    }

    #[test]
    fn french_text_is_answered_in_french() {
        let text =
            "Bonjour, mon imprimante ne fonctionne plus depuis ce matin. Pouvez-vous m'aider ?";
        assert_eq!(Language::choose(None, text, Language::En), Language::Fr);
    }

    #[test]
    fn english_text_is_answered_in_english() {
        let text = "Hello, I cannot log in to the VPN since yesterday. Could you reset my password please?";
        assert_eq!(Language::choose(None, text, Language::Fr), Language::En);
    }

    #[test]
    fn a_short_mail_is_told_by_its_little_words() {
        let text = "Password expired\nwindows says my password expired, how do i change it?? thx";
        assert_eq!(Language::choose(None, text, Language::Fr), Language::En);
        let text = "No internet\nLaptop says connected to wi-fi but no internet access";
        assert_eq!(Language::choose(None, text, Language::Fr), Language::En);
        let text = "mdp expiré\nbjr, windows me dit que mon mdp a expiré";
        assert_eq!(Language::choose(None, text, Language::En), Language::Fr);
    }

    #[test]
    fn other_languages_and_empty_text_get_the_default() {
        assert_eq!(Language::choose(None, "", Language::Fr), Language::Fr);
        let german = "Guten Tag, mein Drucker funktioniert seit heute morgen nicht mehr. Können Sie mir helfen?";
        assert_eq!(Language::choose(None, german, Language::Fr), Language::Fr);
        assert_eq!(
            Language::choose(Some("de"), german, Language::En),
            Language::En
        );
    }
}
