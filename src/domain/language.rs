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
        detect(text).unwrap_or(default)
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
