//! `[retention]`: how long raw mail and closed tickets are kept (GDPR article 5(1)(e),
//! storage limitation). Nothing is purged unless a duration is set.

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    raw_mail: Option<String>,
    closed_tickets: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Raw mail (and attachments) older than this is dropped; the parsed text stays.
    pub raw_mail: Option<Duration>,
    /// Tickets closed longer ago than this have their personal data erased, as
    /// `customers forget` does, their rows kept for the statistics.
    pub closed_tickets: Option<Duration>,
}

impl RetentionSettings {
    pub fn is_set(&self) -> bool {
        self.raw_mail.is_some() || self.closed_tickets.is_some()
    }
}

/// Shorter than this is surely a mistake ("2m" is two minutes, not two months).
const AT_LEAST: Duration = Duration::from_secs(7 * 24 * 3600);

fn duration(key: &str, text: Option<String>) -> Result<Option<Duration>, ConfigError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        invalid(
            key,
            format!("{text:?} is not a duration: {e}"),
            "write e.g. \"2y\", \"18M\" (months) or \"400d\"",
        )
    })?;
    if d < AT_LEAST {
        return Err(invalid(
            key,
            format!(
                "{text:?} is {}: everything older would be purged",
                humantime::format_duration(d)
            ),
            "give at least 7 days (\"2M\" is two months, \"2m\" two minutes)",
        ));
    }
    Ok(Some(d))
}

pub(super) fn build(raw: RawRetention) -> Result<RetentionSettings, ConfigError> {
    Ok(RetentionSettings {
        raw_mail: duration("retention.raw_mail", raw.raw_mail)?,
        closed_tickets: duration("retention.closed_tickets", raw.closed_tickets)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_months_are_read_and_minutes_refused() {
        let r = build(RawRetention {
            raw_mail: Some("2y".into()),
            closed_tickets: Some("18M".into()),
        })
        .unwrap();
        assert!(r.raw_mail.unwrap() > Duration::from_secs(2 * 365 * 24 * 3600));
        assert!(r.closed_tickets.unwrap() > Duration::from_secs(540 * 24 * 3600));
        let e = build(RawRetention {
            raw_mail: Some("2m".into()),
            closed_tickets: None,
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("retention.raw_mail: "), "{e}");
        assert!(build(RawRetention::default()).unwrap() == RetentionSettings::default());
    }
}
