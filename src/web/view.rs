//! The pages' templates (`templates/web/`, built into the binary) and their words in French
//! and English (`templates/web/strings.toml`): one template per page, the words passed in
//! as `t`, so both languages always show the same page.

use std::collections::HashMap;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use handlebars::Handlebars;
use serde_json::{Value, json};

use crate::config::Config;
use crate::domain::Language;

const TEMPLATES: [(&str, &str); 7] = [
    ("head", include_str!("../../templates/web/head.html.hbs")),
    ("foot", include_str!("../../templates/web/foot.html.hbs")),
    (
        "overview",
        include_str!("../../templates/web/overview.html.hbs"),
    ),
    (
        "tickets",
        include_str!("../../templates/web/tickets.html.hbs"),
    ),
    (
        "ticket",
        include_str!("../../templates/web/ticket.html.hbs"),
    ),
    (
        "message",
        include_str!("../../templates/web/message.html.hbs"),
    ),
    ("login", include_str!("../../templates/web/login.html.hbs")),
];

const STRINGS: &str = include_str!("../../templates/web/strings.toml");

pub struct Pages {
    hb: Handlebars<'static>,
    strings: HashMap<Language, Value>,
}

/// A rendered page.
pub struct Page(pub String);

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::VARY, "Accept-Language"),
            ],
            self.0,
        )
            .into_response()
    }
}

impl Pages {
    pub fn new() -> Result<Pages, String> {
        let mut hb = Handlebars::new();
        // A page naming a value nobody passes fails in the tests, not in a browser. HTML
        // escaping is handlebars' default, kept: everything a customer wrote is escaped.
        hb.set_strict_mode(true);
        for (name, text) in TEMPLATES {
            if name == "head" || name == "foot" || name == "message" {
                hb.register_partial(name, text)
                    .map_err(|e| format!("{name}: {e}"))?;
            } else {
                hb.register_template_string(name, text)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
        }
        let all: toml::Table = toml::from_str(STRINGS).map_err(|e| format!("strings.toml: {e}"))?;
        let mut strings = HashMap::new();
        for language in Language::ALL {
            let table = all
                .get(language.as_str())
                .ok_or_else(|| format!("strings.toml: no [{}]", language.as_str()))?;
            let value = serde_json::to_value(table).map_err(|e| e.to_string())?;
            strings.insert(language, value);
        }
        Ok(Pages { hb, strings })
    }

    /// The words of a language (also for what the handlers write themselves).
    pub fn word(&self, language: Language, key: &str) -> String {
        self.strings
            .get(&language)
            .and_then(|t| t.get(key))
            .and_then(Value::as_str)
            .unwrap_or(key)
            .to_string()
    }

    /// Renders `template` with `data`, the page's words as `t`, and the desk's name.
    pub fn render(
        &self,
        template: &str,
        language: Language,
        config: &Config,
        mut data: Value,
    ) -> Result<String, String> {
        if let Value::Object(map) = &mut data {
            map.insert(
                "t".into(),
                self.strings.get(&language).cloned().unwrap_or(Value::Null),
            );
            map.insert("lang".into(), language.as_str().into());
            map.insert("desk".into(), config.gateway.organisation.clone().into());
            map.entry("refresh").or_insert(Value::Bool(true));
            map.entry("signed_in").or_insert(Value::Bool(false));
        }
        self.hb
            .render(template, &data)
            .map_err(|e| format!("page {template}: {e}"))
    }

    pub fn login(
        &self,
        language: Language,
        config: &Config,
        next: Option<&str>,
        failed: bool,
    ) -> Page {
        let data = json!({
            "title": self.word(language, "sign_in"),
            "nav": "",
            "refresh": false,
            "next": next.unwrap_or("/"),
            "failed": failed,
            "updated": "",
        });
        match self.render("login", language, config, data) {
            Ok(html) => Page(html),
            Err(e) => {
                tracing::error!(error = %e, "cannot render the sign-in page");
                Page(
                    "<!doctype html><title>helpdesk</title><p>Sign-in page unavailable.</p>".into(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_every_word() {
        let pages = Pages::new().unwrap();
        let keys = |l: Language| -> Vec<String> {
            let mut k: Vec<String> = pages.strings[&l]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            k.sort();
            k
        };
        assert_eq!(keys(Language::En), keys(Language::Fr));
        assert!(keys(Language::En).len() > 40);
    }
}
