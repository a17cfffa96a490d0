//! The desk's time in `helpdesk.toml`: `[calendar]` (business hours and holidays),
//! `[sla.<priority>]` and `[[sla.overrides]]` (service levels), `[waiting]`, `[closing]`
//! and `[[vendors]]`. Checked once here, so a bad time zone or an unreadable holidays file
//! stops the gateway at start with the key to fix.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::Duration;
use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::calendar::Calendar;
use crate::domain::{Category, EmailAddress, Priority, Tier};
use crate::timing::{NoAnswer, Override, Targets, TimeSettings, Vendor, priority_index};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCalendar {
    time_zone: Option<String>,
    working_days: Option<Vec<String>>,
    working_hours: Option<Vec<String>>,
    #[serde(default)]
    holidays: Vec<String>,
    holidays_file: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTargets {
    first_response: Option<String>,
    resolution: Option<String>,
    warn_at: Option<f64>,
    escalate_to: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverride {
    tier: Option<String>,
    category: Option<String>,
    priority: Option<String>,
    #[serde(flatten)]
    targets: RawTargets,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSla {
    low: Option<RawTargets>,
    normal: Option<RawTargets>,
    high: Option<RawTargets>,
    urgent: Option<RawTargets>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWaiting {
    remind_after: Option<String>,
    no_answer: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClosing {
    after_resolved: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVendor {
    name: String,
    address: String,
    ticket_pattern: Option<String>,
    answer_within: Option<String>,
}

pub(super) struct RawTime {
    pub calendar: RawCalendar,
    pub sla: RawSla,
    pub waiting: RawWaiting,
    pub closing: RawClosing,
    pub vendors: Vec<RawVendor>,
}

/// A duration in business time: "90m", "8h", "1h 30m"; "2d" (or "2 days", "2j") is two
/// *working days* of the calendar (two 8-hour days for 08:30-12:30 + 13:30-17:30).
pub(super) fn business(
    key: &str,
    text: &str,
    calendar: &Calendar,
) -> Result<Duration, ConfigError> {
    let t = text.trim();
    let days = t
        .strip_suffix("days")
        .or_else(|| t.strip_suffix("day"))
        .or_else(|| t.strip_suffix("jours"))
        .or_else(|| t.strip_suffix("jour"))
        .or_else(|| t.strip_suffix('d'))
        .or_else(|| t.strip_suffix('j'))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n >= 0.0);
    let d = match days {
        Some(n) => Duration::milliseconds(
            (calendar.working_day().num_milliseconds() as f64 * n).round() as i64,
        ),
        None => humantime::parse_duration(t)
            .ok()
            .and_then(|d| Duration::from_std(d).ok())
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("{text:?} is not a duration"),
                    "write e.g. \"1h\", \"90m\", \"2d\" (working days)",
                )
            })?,
    };
    if d <= Duration::zero() {
        return Err(invalid(
            key,
            "must be longer than zero",
            "write e.g. \"8h\"",
        ));
    }
    at_most_a_year(key, text, d)
}

fn at_most_a_year(key: &str, text: &str, d: Duration) -> Result<Duration, ConfigError> {
    if d.to_std().is_ok_and(|d| d <= crate::timing::LONGEST) {
        Ok(d)
    } else {
        Err(invalid(
            key,
            format!("{text:?} is longer than a year"),
            "write a duration of at most a year, e.g. \"3d\"",
        ))
    }
}

/// A duration in calendar time ("3d" is 72 hours).
fn elapsed(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text.trim())
        .ok()
        .and_then(|d| Duration::from_std(d).ok())
        .filter(|d| *d > Duration::zero())
        .ok_or_else(|| {
            invalid(
                key,
                format!("{text:?} is not a duration"),
                "write e.g. \"3d\", \"36h\"",
            )
        })
        .and_then(|d| at_most_a_year(key, text, d))
}

fn tier(key: &str, value: &str) -> Result<Tier, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a tier"),
            "use L1, L2, L3 or L4",
        )
    })
}

fn priority(key: &str, value: &str) -> Result<Priority, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            key,
            format!("{value:?} is not a priority"),
            "use low, normal, high or urgent",
        )
    })
}

fn targets(
    key: &str,
    raw: &RawTargets,
    base: Targets,
    calendar: &Calendar,
) -> Result<Targets, ConfigError> {
    let mut t = base;
    if let Some(d) = &raw.first_response {
        t.first_response = business(&format!("{key}.first_response"), d, calendar)?;
    }
    if let Some(d) = &raw.resolution {
        t.resolution = business(&format!("{key}.resolution"), d, calendar)?;
    }
    if let Some(w) = raw.warn_at {
        if !(w > 0.0 && w <= 1.0) {
            return Err(invalid(
                &format!("{key}.warn_at"),
                format!("{w} is not a share of the target"),
                "write a share between 0 and 1, e.g. 0.8 (warn at 80%); 1.0 never warns",
            ));
        }
        t.warn_at = w;
    }
    if let Some(e) = &raw.escalate_to {
        let to = tier(&format!("{key}.escalate_to"), e)?;
        if to <= Tier::L1FrontLine {
            return Err(invalid(
                &format!("{key}.escalate_to"),
                format!("{e:?} is not above the front line"),
                "a missed target escalates: use L2, L3 or L4",
            ));
        }
        t.escalate_to = Some(to);
    }
    Ok(t)
}

pub(super) fn build(raw: RawTime, base_dir: &Path) -> Result<TimeSettings, ConfigError> {
    let calendar = calendar(raw.calendar, base_dir)?;
    let (by_priority, overrides) = service_levels(&raw.sla, &calendar)?;
    let defaults = TimeSettings::default();
    let wait = match &raw.waiting.remind_after {
        Some(t) => elapsed("waiting.remind_after", t)?,
        None => defaults.wait,
    };
    let no_answer = match raw.waiting.no_answer.as_deref() {
        None | Some("resolve") => NoAnswer::Resolve,
        Some("keep") => NoAnswer::Keep,
        Some(other) => {
            return Err(invalid(
                "waiting.no_answer",
                format!("{other:?} is not a choice"),
                "use \"resolve\" (resolved as no answer after the reminder) or \"keep\"",
            ));
        }
    };
    let close_after = match raw.closing.after_resolved.as_deref().map(str::trim) {
        None => defaults.close_after,
        Some("never") => None,
        Some(t) => Some(elapsed("closing.after_resolved", t)?),
    };

    let vendors = vendors(&raw.vendors, &calendar)?;
    Ok(TimeSettings {
        calendar,
        by_priority,
        overrides,
        wait,
        no_answer,
        close_after,
        vendors,
    })
}

/// `[calendar]`: the time zone, working days and hours, and the holidays (listed or read
/// from a file).
fn calendar(c: RawCalendar, base_dir: &Path) -> Result<Calendar, ConfigError> {
    let mut holidays = c.holidays.clone();
    if let Some(file) = &c.holidays_file {
        let path = base_dir.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            invalid(
                "calendar.holidays_file",
                format!("cannot read {}: {e}", path.display()),
                "give a TOML file of \"YYYY-MM-DD\" = \"name\" lines, relative to helpdesk.toml",
            )
        })?;
        let dates: BTreeMap<String, String> = toml::from_str(&text).map_err(|e| {
            invalid(
                "calendar.holidays_file",
                format!("{}: {e}", path.display()),
                "write one \"2026-12-25\" = \"Noël\" line per holiday",
            )
        })?;
        holidays.extend(dates.into_keys());
    }
    let calendar = match (&c.time_zone, &c.working_days, &c.working_hours) {
        (None, None, None) if holidays.is_empty() => Calendar::always(),
        _ => {
            let days: Vec<String> = c.working_days.clone().unwrap_or_else(|| {
                ["mon", "tue", "wed", "thu", "fri"]
                    .map(String::from)
                    .to_vec()
            });
            let hours: Vec<String> = c
                .working_hours
                .clone()
                .unwrap_or_else(|| vec!["00:00-24:00".into()]);
            fn refs(v: &[String]) -> Vec<&str> {
                v.iter().map(String::as_str).collect()
            }
            Calendar::new(
                c.time_zone.as_deref().unwrap_or("UTC"),
                &refs(&days),
                &refs(&hours),
                &refs(&holidays),
            )
            .map_err(|e| {
                use crate::calendar::CalendarError as E;
                let key = match e {
                    E::TimeZone(_) => "calendar.time_zone",
                    E::Day(_) => "calendar.working_days",
                    E::Hours(_) | E::Overlap(..) => "calendar.working_hours",
                    E::Date(_) => "calendar.holidays",
                    E::NeverWorks => "calendar.working_days",
                };
                invalid(key, e.to_string(), "see [calendar] in the README")
            })?
        }
    };

    Ok(calendar)
}

/// `[sla]`: the targets per priority (in working time), then the overrides by tier,
/// category and priority.
fn service_levels(
    sla: &RawSla,
    calendar: &Calendar,
) -> Result<([Targets; 4], Vec<Override>), ConfigError> {
    let raw_sla = sla;
    let day = calendar.working_day();
    let mut by_priority = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ]
    .map(|p| Targets::default_for(p, day));
    for (name, raw_targets) in [
        ("low", &raw_sla.low),
        ("normal", &raw_sla.normal),
        ("high", &raw_sla.high),
        ("urgent", &raw_sla.urgent),
    ] {
        if let Some(r) = raw_targets {
            let p = priority("sla", name)?;
            let i = priority_index(p);
            by_priority[i] = targets(&format!("sla.{name}"), r, by_priority[i], calendar)?;
        }
    }
    let mut overrides = Vec::new();
    for (i, o) in raw_sla.overrides.iter().enumerate() {
        let key = format!("sla.overrides[{i}]");
        let tier = o
            .tier
            .as_deref()
            .map(|t| tier(&format!("{key}.tier"), t))
            .transpose()?;
        let category = o
            .category
            .as_deref()
            .map(|c| {
                c.parse::<Category>().map_err(|_| {
                    invalid(
                        &format!("{key}.category"),
                        format!("{c:?} is not a category id"),
                        "use lower-case letters, digits, - or _ (e.g. \"security\")",
                    )
                })
            })
            .transpose()?;
        let prio = o
            .priority
            .as_deref()
            .map(|p| priority(&format!("{key}.priority"), p))
            .transpose()?;
        if tier.is_none() && category.is_none() && prio.is_none() {
            return Err(invalid(
                &key,
                "matches every ticket",
                "give tier, category and/or priority (or set [sla.<priority>] instead)",
            ));
        }
        let base = by_priority[priority_index(prio.unwrap_or(Priority::Normal))];
        overrides.push(Override {
            tier,
            category,
            priority: prio,
            targets: targets(&key, &o.targets, base, calendar)?,
        });
    }

    Ok((by_priority, overrides))
}

/// `[[vendors]]`: each external vendor's name (unique), address, ticket pattern and time
/// to answer.
fn vendors(raw: &[RawVendor], calendar: &Calendar) -> Result<Vec<Vendor>, ConfigError> {
    let day = calendar.working_day();
    let mut vendors: Vec<Vendor> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let key = format!("vendors[{i}]");
        let name = v.name.trim().to_string();
        if name.is_empty() || vendors.iter().any(|o| o.name.eq_ignore_ascii_case(&name)) {
            return Err(invalid(
                &format!("{key}.name"),
                format!("{:?} is empty or listed twice", v.name),
                "give each vendor its own name, e.g. \"Ricoh France\"",
            ));
        }
        let address = EmailAddress::parse(&v.address).map_err(|_| {
            invalid(
                &format!("{key}.address"),
                format!("{:?} is not an e-mail address", v.address),
                "write their support address, e.g. \"support@ricoh.example\"",
            )
        })?;
        let ticket_pattern = v
            .ticket_pattern
            .as_deref()
            .map(|p| {
                regex::Regex::new(p).map_err(|e| {
                    invalid(
                        &format!("{key}.ticket_pattern"),
                        e.to_string(),
                        "write a regular expression such as \"RIC-\\\\d{6}\"",
                    )
                })
            })
            .transpose()?;
        let answer_within = match &v.answer_within {
            Some(t) => business(&format!("{key}.answer_within"), t, calendar)?,
            None => day * 2,
        };
        vendors.push(Vendor {
            name,
            address,
            ticket_pattern,
            answer_within,
        });
    }

    Ok(vendors)
}
