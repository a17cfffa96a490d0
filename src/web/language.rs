//! The page's language from `Accept-Language` (RFC 9110 §12.5.4): the first of French
//! and English by weight, else the desk's default.

use crate::domain::Language;

pub fn choose(header: Option<&str>, default: Language) -> Language {
    let Some(header) = header else {
        return default;
    };
    let mut best: Option<(u16, usize, Language)> = None;
    for (i, item) in header.split(',').enumerate() {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let weight = (weight.clamp(0.0, 1.0) * 1000.0) as u16;
        if weight == 0 {
            continue;
        }
        let primary = tag.split('-').next().unwrap_or_default();
        let language = match primary {
            "fr" => Language::Fr,
            "en" => Language::En,
            _ => continue,
        };
        // Higher weight wins; at equal weight, the first listed.
        if best.is_none_or(|(w, at, _)| weight > w || (weight == w && i < at)) {
            best = Some((weight, i, language));
        }
    }
    best.map(|(_, _, l)| l).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_and_order_choose() {
        assert_eq!(choose(None, Language::Fr), Language::Fr);
        assert_eq!(
            choose(Some("fr-FR,fr;q=0.9,en;q=0.8"), Language::En),
            Language::Fr
        );
        assert_eq!(
            choose(Some("de-DE,en-GB;q=0.7,fr;q=0.3"), Language::Fr),
            Language::En
        );
        assert_eq!(
            choose(Some("en;q=0.2, fr;q=0.8"), Language::En),
            Language::Fr
        );
        assert_eq!(choose(Some("de, es"), Language::Fr), Language::Fr);
        assert_eq!(choose(Some("fr;q=0, en"), Language::Fr), Language::En);
        assert_eq!(choose(Some("*"), Language::En), Language::En);
    }
}
