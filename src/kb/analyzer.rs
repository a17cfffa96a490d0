//! How words are compared, one analyzer per language: "l'imprimante", "imprimantes" and
//! "Imprimante" are one word in French, "bloquee" finds "bloquée", "mdp" finds "mot de
//! passe". The same analysis runs on articles and on mail, so they meet in the middle.

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language as Stemming, LowerCaser, RemoveLongFilter, SimpleTokenizer,
    Stemmer, StopWordFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
};

use crate::domain::Language;

/// The tokenizer's name in the index, per language.
pub fn name(language: Language) -> &'static str {
    match language {
        Language::Fr => "kb_fr",
        Language::En => "kb_en",
    }
}

/// French elided articles and pronouns ("l'", "d'", "qu'", "jusqu'"): the tokenizer
/// splits at the apostrophe (straight or curly), and these are what is left in front.
const FRENCH_ELISIONS: &[&str] = &[
    "l", "d", "j", "qu", "n", "s", "c", "m", "t", "jusqu", "lorsqu", "puisqu", "quoiqu",
];

/// Mail words that carry no subject in IT requests, beyond the usual stop words:
/// greetings and politeness, which every mail has and no article is about.
const FRENCH_CHATTER: &[&str] = &[
    "bonjour",
    "merci",
    "cordialement",
    "svp",
    "stp",
    "plait",
    "bonne",
    "journee",
    "journée",
    "salut",
    "madame",
    "monsieur",
    "besoin",
    "aide",
    "aider",
    "pouvez",
    "pourriez",
    "depuis",
    "ce",
    "matin",
    "hier",
    "soir",
    "aujourd",
    "hui",
    "problème",
    "probleme",
    "souci",
];
const ENGLISH_CHATTER: &[&str] = &[
    "hi",
    "hello",
    "dear",
    "thanks",
    "thank",
    "regards",
    "best",
    "please",
    "help",
    "need",
    "could",
    "would",
    "since",
    "today",
    "yesterday",
    "morning",
    "issue",
    "problem",
    "hey",
];

/// tantivy's stop words for `language` (it ships both of ours; none rather than a panic
/// should a build ever lack them).
fn stop_words(language: Stemming) -> StopWordFilter {
    StopWordFilter::new(language).unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new()))
}

/// The analyzer for `language`.
pub fn analyzer(language: Language) -> TextAnalyzer {
    let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
    match language {
        Language::Fr => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(stop_words(Stemming::French))
            .filter(StopWordFilter::remove(
                [words(FRENCH_ELISIONS), words(FRENCH_CHATTER)].concat(),
            ))
            .filter(AsciiFoldingFilter)
            .filter(Stemmer::new(Stemming::French))
            .filter(TrailingE)
            .build(),
        Language::En => TextAnalyzer::builder(SimpleTokenizer::default())
            .filter(RemoveLongFilter::limit(40))
            .filter(LowerCaser)
            .filter(stop_words(Stemming::English))
            .filter(StopWordFilter::remove(words(ENGLISH_CHATTER)))
            .filter(AsciiFoldingFilter)
            .filter(Stemmer::new(Stemming::English))
            .build(),
    }
}

/// Accents are folded before stemming, so "bloquée" and "bloquee" reach the stemmer as
/// one word; but Snowball French then stems the unaccented feminine and masculine apart
/// ("verrouillee" → "verrouille", "verrouille" → "verrouill"). Dropping the stem's
/// trailing `e`s joins them again.
#[derive(Clone)]
struct TrailingE;

impl TokenFilter for TrailingE {
    type Tokenizer<T: Tokenizer> = TrailingEFilter<T>;
    fn transform<T: Tokenizer>(self, tokenizer: T) -> Self::Tokenizer<T> {
        TrailingEFilter(tokenizer)
    }
}

#[derive(Clone)]
struct TrailingEFilter<T>(T);

impl<T: Tokenizer> Tokenizer for TrailingEFilter<T> {
    type TokenStream<'a> = TrailingEStream<T::TokenStream<'a>>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        TrailingEStream(self.0.token_stream(text))
    }
}

struct TrailingEStream<S>(S);

impl<S: TokenStream> TokenStream for TrailingEStream<S> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        let text = &mut self.0.token_mut().text;
        while text.len() > 3 && text.ends_with('e') {
            text.pop();
        }
        true
    }
    fn token(&self) -> &Token {
        self.0.token()
    }
    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

/// What people really type, and what the articles say instead. Matched on whole words,
/// lowercased, accents kept (the analyzer folds them afterwards).
fn synonyms(language: Language) -> &'static [(&'static str, &'static str)] {
    match language {
        Language::Fr => &[
            ("mdp", "mot de passe"),
            ("pwd", "mot de passe"),
            ("password", "mot de passe"),
            ("pc", "ordinateur"),
            ("ordi", "ordinateur"),
            ("portable", "ordinateur"),
            ("laptop", "ordinateur"),
            ("wifi", "wi-fi sans fil"),
            ("appli", "application"),
            ("app", "application"),
            ("bal", "boîte aux lettres"),
            ("mail", "messagerie courriel"),
            ("mails", "messagerie courriel"),
            ("email", "messagerie courriel"),
            ("e-mail", "messagerie courriel"),
            ("mfa", "authentification multifacteur"),
            ("2fa", "authentification multifacteur"),
            ("a2f", "authentification multifacteur"),
            ("rame", "lent lenteur"),
            ("moniteur", "écran"),
            ("scanner", "numériser"),
            ("scan", "numériser"),
            ("phishing", "hameçonnage"),
            ("imprimente", "imprimante"),
            ("bloqué", "verrouillé"),
            ("bloque", "verrouillé"),
        ],
        Language::En => &[
            ("pwd", "password"),
            ("pw", "password"),
            ("passwd", "password"),
            ("pc", "computer"),
            ("laptop", "computer"),
            ("wifi", "wi-fi wireless"),
            ("app", "application"),
            ("mfa", "multi-factor authenticator"),
            ("2fa", "multi-factor authenticator"),
            ("monitor", "screen display"),
            ("scanner", "scan"),
            ("locked", "lockout"),
            ("e-mail", "email"),
        ],
    }
}

/// `text` with the synonyms of the words it has appended, so both spellings count.
pub fn expand(text: &str, language: Language) -> String {
    let list = synonyms(language);
    let mut extra = String::new();
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let word = word.trim_matches('-').to_lowercase();
        for (from, to) in list {
            if word == *from {
                extra.push(' ');
                extra.push_str(to);
            }
        }
    }
    if extra.is_empty() {
        text.to_string()
    } else {
        format!("{text}\n{extra}")
    }
}

/// The terms `text` comes to, in order, repeats kept (synonyms expanded).
pub fn terms(text: &str, language: Language) -> Vec<String> {
    terms_with(&mut analyzer(language), text, language)
}

/// The same with an analyzer already built (the knowledge base keeps one per language).
pub fn terms_with(analyzer: &mut TextAnalyzer, text: &str, language: Language) -> Vec<String> {
    let expanded = expand(text, language);
    let mut stream = analyzer.token_stream(&expanded);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fr(text: &str) -> Vec<String> {
        terms(text, Language::Fr)
    }

    #[test]
    fn french_elisions_go_and_both_apostrophes_count() {
        assert_eq!(fr("l'imprimante"), fr("imprimante"));
        assert_eq!(fr("l’imprimante"), fr("imprimante"));
        assert_eq!(fr("d'accès"), fr("accès"));
        assert_eq!(fr("jusqu'ici qu'il"), fr("ici il"));
    }

    #[test]
    fn french_accents_fold_and_words_stem() {
        assert_eq!(fr("bloquée"), fr("bloquee"));
        assert_eq!(fr("Écran"), fr("ecran"));
        assert_eq!(fr("imprimantes"), fr("imprimante"));
        assert_eq!(fr("verrouillé"), fr("verrouillée"));
        assert_eq!(fr("écrans"), fr("ecran"));
        assert_eq!(fr("accès"), fr("acces"));
        assert_eq!(fr("imprimée"), fr("imprimee"));
        assert_eq!(fr("désactivé"), fr("desactive"));
    }

    #[test]
    fn english_words_stem() {
        let en = |t: &str| terms(t, Language::En);
        assert_eq!(en("printers"), en("printer"));
        assert_eq!(en("printing"), en("print"));
        assert_eq!(en("Locked"), en("locked"));
        assert!(en("the and of").is_empty());
    }

    #[test]
    fn abbreviations_reach_the_words_articles_use() {
        assert!(fr("mon mdp").contains(&fr("passe")[0]));
        assert!(fr("le pc").contains(&fr("ordinateur")[0]));
        assert!(fr("le wifi").contains(&fr("sans fil")[0]));
        assert!(fr("l'appli").contains(&fr("application")[0]));
        let en = |t: &str| terms(t, Language::En);
        assert!(en("my pwd").contains(&en("password")[0]));
    }

    #[test]
    fn greetings_carry_no_weight() {
        assert!(
            fr("Bonjour, merci d'avance. Cordialement")
                .iter()
                .all(|t| t == "avanc")
        );
        assert!(terms("Hi, thanks. Best regards", Language::En).is_empty());
    }
}
