//! The weekly report: a week's figures against the week before, per tier and per agent,
//! the tickets that came back, the targets missed, the customers' comments, and the last
//! eight weeks' volume as a chart. Put in words here, in the report's language; the
//! templates only lay it out.

use chrono::{Datelike, Duration, NaiveDate};

use super::chart::{self, Chart, ChartError};
use super::figures::Figures;
use super::{Computed, Fact, GroupBy, Period, StatsError, compute};
use crate::calendar::Calendar;
use crate::desk::wording::Target;
use crate::domain::Language;
use crate::render::{ReportComment, ReportFigure, ReportGroup, ReportTicket, ReportView};
use crate::store::Store;

/// A report ready to queue.
pub struct WeeklyReport {
    /// The ISO week (`2026-W48`): what `reports.period` keeps.
    pub name: String,
    pub view: ReportView,
    pub chart_png: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Chart(#[from] ChartError),
}

/// The ISO week (Monday to Sunday) that holds `date`.
pub fn week_of(date: NaiveDate, time_zone: chrono_tz::Tz) -> Period {
    let monday = date - Duration::days(date.weekday().num_days_from_monday().into());
    Period {
        since: monday,
        until: monday + Duration::days(6),
        time_zone,
    }
}

fn fr(language: Language) -> bool {
    language == Language::Fr
}

/// A business-time median as people read it: "45 min", "3 h 05", "30 h 00": in hours however
/// many (a working day is the calendar's, not 24 hours); "–" when there is none.
fn human(seconds: Option<i64>) -> String {
    let Some(s) = seconds else {
        return "–".into();
    };
    match s {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {:02}", s / 3600, s % 3600 / 60),
    }
}

fn decimal(v: f64, language: Language) -> String {
    let text = format!("{v:.1}");
    if fr(language) {
        text.replace('.', ",")
    } else {
        text
    }
}

fn percent(v: Option<f64>, language: Language) -> String {
    match v {
        Some(v) if fr(language) => format!("{} %", (v * 100.0).round()),
        Some(v) => format!("{}%", (v * 100.0).round()),
        None => "–".into(),
    }
}

fn csat(f: &Figures, language: Language) -> String {
    match f.csat.average {
        Some(a) => format!("{} ({})", decimal(a, language), f.csat.responses),
        None => "–".into(),
    }
}

fn trend(this: f64, previous: f64) -> String {
    if this > previous {
        "▲".into()
    } else if this < previous {
        "▼".into()
    } else {
        "=".into()
    }
}

/// How a headline line reads a week's figures: its text, and a value for the trend.
type Reading<'a> = dyn Fn(&Figures) -> (String, f64) + 'a;

/// The headline lines: (label, this week, previous week, value for the trend).
fn figures(this: &Figures, previous: &Figures, language: Language) -> Vec<ReportFigure> {
    let l = |fr_text: &str, en_text: &str| -> String {
        if fr(language) { fr_text } else { en_text }.to_string()
    };
    let count = |get: fn(&Figures) -> u64| {
        move |f: &Figures| -> (String, f64) { (get(f).to_string(), get(f) as f64) }
    };
    let created = count(|f| f.created);
    let resolved = count(|f| f.resolved);
    let backlog = count(|f| f.backlog);
    let breaches = count(|f| f.sla.first_response_breached + f.sla.resolution_breached);
    let escalations =
        count(|f| f.escalations.by_agent + f.escalations.by_sla + f.escalations.by_reopen);
    let self_service = count(|f| f.self_service);
    let first = |f: &Figures| {
        let v = f.first_response.median_business_s;
        (human(v), v.unwrap_or(0) as f64)
    };
    let resolution = |f: &Figures| {
        let v = f.resolution.median_business_s;
        (human(v), v.unwrap_or(0) as f64)
    };
    let back = |f: &Figures| {
        (
            format!("{} ({})", f.reopened, percent(f.reopen_rate, language)),
            f.reopen_rate.unwrap_or(0.0),
        )
    };
    let satisfaction = |f: &Figures| (csat(f, language), f.csat.average.unwrap_or(0.0));
    let lines: Vec<(String, &Reading<'_>)> = vec![
        (l("Tickets créés", "Tickets created"), &created),
        (l("Tickets résolus", "Tickets resolved"), &resolved),
        (
            l("Ouverts en fin de semaine", "Open at the end of the week"),
            &backlog,
        ),
        (
            l("1re réponse (médiane)", "First response (median)"),
            &first,
        ),
        (
            l("Résolution (médiane)", "Resolution (median)"),
            &resolution,
        ),
        (l("Revenus sous 7 jours", "Came back within 7 days"), &back),
        (l("Délais dépassés", "Targets missed"), &breaches),
        (l("Escalades", "Escalations"), &escalations),
        (
            l("Résolus en libre-service", "Solved by self-service"),
            &self_service,
        ),
        (
            l("Satisfaction (réponses)", "Satisfaction (responses)"),
            &satisfaction,
        ),
    ];
    lines
        .into_iter()
        .map(|(label, get)| {
            let (this_text, this_value) = get(this);
            let (previous_text, previous_value) = get(previous);
            ReportFigure {
                label,
                this_week: this_text,
                previous_week: previous_text,
                trend: trend(this_value, previous_value),
            }
        })
        .collect()
}

fn groups(computed: &Computed, language: Language) -> Vec<ReportGroup> {
    let nobody = if fr(language) {
        "(non attribués)"
    } else {
        "(unassigned)"
    };
    let mut out: Vec<ReportGroup> = computed
        .groups
        .iter()
        .map(|(key, tally)| {
            let f = tally.figures();
            ReportGroup {
                name: key
                    .first()
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| nobody.to_string()),
                created: f.created,
                resolved: f.resolved,
                backlog: f.backlog,
                first_response: human(f.first_response.median_business_s),
                resolution: human(f.resolution.median_business_s),
                breaches: f.sla.first_response_breached + f.sla.resolution_breached,
                csat: csat(&f, language),
            }
        })
        .collect();
    // Nobody's last.
    out.sort_by_key(|g| g.name == nobody);
    out
}

fn days(ms: i64, language: Language) -> String {
    let d = ms / 86_400_000;
    let h = ms % 86_400_000 / 3_600_000;
    match (fr(language), d) {
        (true, 0) => format!("{h} h"),
        (true, _) => format!("{d} j {h} h"),
        (false, 0) => format!("{h} h"),
        (false, _) => format!("{d} d {h} h"),
    }
}

fn lists(
    computed: &Computed,
    language: Language,
) -> (Vec<ReportTicket>, Vec<ReportTicket>, Vec<ReportComment>) {
    let (mut back, mut breaches, mut comments) = (Vec::new(), Vec::new(), Vec::new());
    for n in &computed.notable {
        match &n.fact {
            Fact::CameBack { after_ms } => back.push(ReportTicket {
                code: n.code.clone(),
                what: if fr(language) {
                    format!(
                        "revenu {} après sa résolution ({})",
                        days(*after_ms, language),
                        n.state.tier.as_str()
                    )
                } else {
                    format!(
                        "came back {} after its resolution ({})",
                        days(*after_ms, language),
                        n.state.tier.as_str()
                    )
                },
            }),
            Fact::Breached(target) => {
                let who = n
                    .state
                    .assignee
                    .as_ref()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| {
                        if fr(language) {
                            "personne".into()
                        } else {
                            "nobody".into()
                        }
                    });
                let what = match (target, fr(language)) {
                    (Target::FirstResponse, true) => "1re réponse",
                    (Target::Resolution, true) => "résolution",
                    (Target::FirstResponse, false) => "first response",
                    (Target::Resolution, false) => "resolution",
                };
                breaches.push(ReportTicket {
                    code: n.code.clone(),
                    what: format!("{what}, {}, {who}", n.state.tier.as_str()),
                });
            }
            Fact::Rated {
                score,
                comment: Some(comment),
            } => comments.push(ReportComment {
                code: n.code.clone(),
                score: *score,
                comment: comment.clone(),
            }),
            _ => {}
        }
    }
    (back, breaches, comments)
}

/// The report of `week` (Monday to Sunday), in `language`.
pub async fn weekly(
    store: &dyn Store,
    calendar: &Calendar,
    week: Period,
    language: Language,
    chart_cid: String,
) -> Result<WeeklyReport, ReportError> {
    let previous = Period {
        since: week.since - Duration::days(7),
        until: week.until - Duration::days(7),
        ..week
    };
    let by_tier = compute(store, calendar, week, &[GroupBy::Tier]).await?;
    let by_agent = compute(store, calendar, week, &[GroupBy::Agent]).await?;
    let before = compute(store, calendar, previous, &[]).await?;
    let eight_weeks = Period {
        since: week.since - Duration::days(49),
        ..week
    };
    let volume = compute(store, calendar, eight_weeks, Chart::WeeklyVolume.grouping()).await?;
    let svg = chart::svg(Chart::WeeklyVolume, &volume, language)?;
    let chart_png = chart::png(&svg)?;
    let name = week.week_of(week.start_of(week.since));
    let number = name.rsplit('W').next().unwrap_or(&name).to_string();
    let (period, previous_name) = if fr(language) {
        (
            format!(
                "semaine {number}, du {} au {}",
                week.since.format("%d/%m/%Y"),
                week.until.format("%d/%m/%Y")
            ),
            format!(
                "semaine {}",
                previous
                    .week_of(previous.start_of(previous.since))
                    .rsplit('W')
                    .next()
                    .unwrap_or("")
            ),
        )
    } else {
        (
            format!("week {number}, {} to {}", week.since, week.until),
            format!(
                "week {}",
                previous
                    .week_of(previous.start_of(previous.since))
                    .rsplit('W')
                    .next()
                    .unwrap_or("")
            ),
        )
    };
    let (came_back, breaches, comments) = lists(&by_tier, language);
    let view = ReportView {
        period,
        previous: previous_name,
        figures: figures(&by_tier.total.figures(), &before.total.figures(), language),
        tiers: groups(&by_tier, language),
        agents: groups(&by_agent, language),
        came_back,
        breaches,
        comments,
        chart_cid,
        time_zone: week.time_zone.name().to_string(),
    };
    Ok(WeeklyReport {
        name,
        view,
        chart_png,
    })
}
