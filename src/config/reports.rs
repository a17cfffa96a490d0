//! `[reports]`: who receives the weekly report, and in which language.

use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::domain::{EmailAddress, Language};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReports {
    weekly_to: Option<Vec<String>>,
    language: Option<String>,
}

/// Where the reports go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportSettings {
    /// The weekly report's recipients; none: no report is sent.
    pub weekly_to: Vec<EmailAddress>,
    /// The report's language: `language`, else the gateway's default.
    pub language: Option<Language>,
}

pub(super) fn build(raw: RawReports) -> Result<ReportSettings, ConfigError> {
    let mut weekly_to = Vec::new();
    for (i, text) in raw.weekly_to.unwrap_or_default().iter().enumerate() {
        let address = EmailAddress::parse(text).map_err(|e| {
            invalid(
                &format!("reports.weekly_to[{i}]"),
                format!("{text:?} is not an address: {e}"),
                "give whole addresses, e.g. weekly_to = [\"manager@example.com\"]",
            )
        })?;
        if !weekly_to.contains(&address) {
            weekly_to.push(address);
        }
    }
    let language = raw
        .language
        .map(|l| {
            l.parse::<Language>().map_err(|_| {
                invalid(
                    "reports.language",
                    format!("{l:?} is not a language"),
                    "use fr or en",
                )
            })
        })
        .transpose()?;
    Ok(ReportSettings {
        weekly_to,
        language,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_addresses_and_a_wrong_one_names_its_key() {
        let ok = build(RawReports {
            weekly_to: Some(vec!["boss@example.com".into(), "boss@example.com".into()]),
            language: Some("en".into()),
        })
        .unwrap();
        assert_eq!(ok.weekly_to.len(), 1);
        assert_eq!(ok.language, Some(Language::En));
        let err = build(RawReports {
            weekly_to: Some(vec!["boss@example.com".into(), "the boss".into()]),
            language: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("reports.weekly_to[1]"), "{err}");
        let err = build(RawReports {
            weekly_to: None,
            language: Some("de".into()),
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("reports.language"), "{err}");
    }
}
