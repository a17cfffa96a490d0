//! `helpdesk stats`: a period's figures as a table, CSV or JSON.

use chrono::NaiveDate;

use super::*;
use crate::stats::chart::{self, Chart};
use crate::stats::{self, Figures, GroupBy, Period};

pub(super) async fn stats(config_path: &Path, args: StatsArgs) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let calendar = &config.desk.time.calendar;
    let period = period(&args, calendar.time_zone)?;
    let by = parse_arg::<GroupBy>("--by", args.by.clone(), "e.g. --by agent")?;
    let store = app::open_existing_store(&config).await?;
    if let Some(chart) =
        parse_arg::<Chart>("--chart", args.chart.clone(), "e.g. --chart weekly-volume")?
    {
        let computed = stats::compute(store.as_ref(), calendar, period, chart.grouping()).await?;
        let svg = chart::svg(chart, &computed, config.gateway.default_language)?;
        match (&args.svg, &args.png) {
            (Some(path), _) => {
                std::fs::write(path, svg).with_context(|| format!("writing {}", path.display()))?
            }
            (None, Some(path)) => std::fs::write(path, chart::png(&svg)?)
                .with_context(|| format!("writing {}", path.display()))?,
            (None, None) => print!("{svg}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let by: Vec<GroupBy> = by.into_iter().collect();
    let computed = stats::compute(store.as_ref(), calendar, period, &by).await?;
    let report = computed.report();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if args.csv {
        print!("{}", csv(&report));
    } else {
        print!("{}", table(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// `helpdesk report weekly`: the week before `at`'s, queued and sent now.
pub(super) async fn report_weekly(
    config_path: &Path,
    at: Option<String>,
    to: Vec<String>,
    no_send: bool,
) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let tz = config.desk.time.calendar.time_zone;
    let day = match at {
        Some(a) => date("--at", &a)?,
        None => chrono::Utc::now().with_timezone(&tz).date_naive(),
    };
    let to: Vec<EmailAddress> = if to.is_empty() {
        config.desk.reports.weekly_to.clone()
    } else {
        to.iter()
            .map(|t| {
                EmailAddress::parse(t).map_err(|e| {
                    anyhow::Error::new(BadValue(format!("--to {t:?}: {e} (give an address)")))
                })
            })
            .collect::<Result<_>>()?
    };
    if to.is_empty() {
        return Err(BadValue(
            "nobody to send the report to: give --to ADDRESS, or set [reports] weekly_to".into(),
        )
        .into());
    }
    let week = stats::report::week_of(
        stats::report::week_of(day, tz).since - chrono::Duration::days(1),
        tz,
    );
    let store = app::open_existing_store(&config).await?;
    let app = App::build(config, store).await?;
    let queued = app.pipeline.queue_weekly_report(week, &to, false).await?;
    println!(
        "weekly report of {} to {}: {queued} mail queued",
        week.since,
        to.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !no_send {
        app.outbox.drain().await?;
    }
    Ok(ExitCode::SUCCESS)
}

fn date(flag: &str, value: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|e| {
        anyhow::Error::new(BadValue(format!(
            "{flag} {value:?}: {e} (give a date as YYYY-MM-DD)"
        )))
    })
}

fn period(args: &StatsArgs, tz: chrono_tz::Tz) -> Result<Period> {
    let today = chrono::Utc::now().with_timezone(&tz).date_naive();
    let until = match &args.until {
        Some(u) => date("--until", u)?,
        None => today,
    };
    let mut period = Period::last_30_days(until, tz);
    if let Some(s) = &args.since {
        period.since = date("--since", s)?;
    }
    if period.since > period.until {
        return Err(BadValue(format!(
            "--since {} is after --until {}: give the earlier day first",
            period.since, period.until
        ))
        .into());
    }
    Ok(period)
}

/// Every figure as a CSV column, in the contract's order (nested ones as `outer_inner`).
pub(crate) fn columns(f: &Figures) -> Vec<(&'static str, String)> {
    let n = |v: u64| v.to_string();
    let o = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let r = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let (fr, res) = (&f.first_response, &f.resolution);
    vec![
        ("created", n(f.created)),
        ("resolved", n(f.resolved)),
        ("closed", n(f.closed)),
        ("backlog", n(f.backlog)),
        ("backlog_age_p50_s", o(f.backlog_age_p50_s)),
        ("first_response_count", n(fr.count)),
        ("first_response_median_business_s", o(fr.median_business_s)),
        ("first_response_p90_business_s", o(fr.p90_business_s)),
        ("first_response_median_wall_s", o(fr.median_wall_s)),
        ("first_response_p90_wall_s", o(fr.p90_wall_s)),
        ("resolution_count", n(res.count)),
        ("resolution_median_business_s", o(res.median_business_s)),
        ("resolution_p90_business_s", o(res.p90_business_s)),
        ("resolution_median_wall_s", o(res.median_wall_s)),
        ("resolution_p90_wall_s", o(res.p90_wall_s)),
        ("reopened", n(f.reopened)),
        ("reopen_rate", r(f.reopen_rate)),
        ("reopened_30d", n(f.reopened_30d)),
        ("sla_first_response_met", n(f.sla.first_response_met)),
        (
            "sla_first_response_breached",
            n(f.sla.first_response_breached),
        ),
        ("sla_resolution_met", n(f.sla.resolution_met)),
        ("sla_resolution_breached", n(f.sla.resolution_breached)),
        ("escalations_by_agent", n(f.escalations.by_agent)),
        ("escalations_by_sla", n(f.escalations.by_sla)),
        ("escalations_by_reopen", n(f.escalations.by_reopen)),
        ("self_service", n(f.self_service)),
        ("csat_responses", n(f.csat.responses)),
        ("csat_average", r(f.csat.average)),
        ("csat_positive_share", r(f.csat.positive_share)),
        ("agent_replies", n(f.agent_replies)),
    ]
}

/// A CSV field, quoted when it must be (RFC 4180).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub(crate) fn csv(report: &stats::Report) -> String {
    let mut out = String::from("row,key");
    for (name, _) in columns(&report.total) {
        out.push(',');
        out.push_str(name);
    }
    out.push('\n');
    let rows = report
        .groups
        .iter()
        .map(|g| ("group", g.key.as_deref().unwrap_or(""), &g.figures))
        .chain([("total", "", &report.total)]);
    for (row, key, figures) in rows {
        out.push_str(row);
        out.push(',');
        out.push_str(&field(key));
        for (_, value) in columns(figures) {
            out.push(',');
            out.push_str(&value);
        }
        out.push('\n');
    }
    out
}

/// Plain time as a person reads it, short: `45s`, `12m`, `3h05`, `2d15h` (days of 24 hours).
pub(crate) fn duration(s: Option<i64>) -> String {
    match s {
        Some(s) if s >= 86_400 => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        other => hours(other),
    }
}

/// Business time, in hours however many (a working day is the calendar's, not 24 hours).
pub(crate) fn hours(s: Option<i64>) -> String {
    let Some(s) = s else {
        return "-".into();
    };
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}", s / 3600, s % 3600 / 60),
    }
}

fn share(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "-".into())
}

pub(crate) fn table(report: &stats::Report) -> String {
    let p = &report.period;
    let mut out = format!(
        "Statistics {} to {} ({}). Times: median / 90th percentile of the service-level clock, \
         in business hours, then in plain hours; backlog: open at the end (median age).\n\n",
        p.since, p.until, p.time_zone
    );
    let header = [
        "",
        "created",
        "resolved",
        "closed",
        "backlog",
        "1st response",
        "(plain)",
        "resolution",
        "(plain)",
        "back 7d",
        "missed",
        "escalated",
        "self-service",
        "CSAT",
        "replies",
    ];
    let by = report.by.map(|b| format!("{b:?}").to_lowercase());
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    if let Some(by) = &by {
        rows[0][0] = by.clone();
    }
    let line = |key: String, f: &Figures| -> Vec<String> {
        let pair = |a: Option<i64>, b: Option<i64>| format!("{} / {}", duration(a), duration(b));
        let business = |a: Option<i64>, b: Option<i64>| format!("{} / {}", hours(a), hours(b));
        let (fr, res) = (&f.first_response, &f.resolution);
        vec![
            key,
            f.created.to_string(),
            f.resolved.to_string(),
            f.closed.to_string(),
            match f.backlog {
                0 => "0".into(),
                n => format!("{n} ({})", duration(f.backlog_age_p50_s)),
            },
            business(fr.median_business_s, fr.p90_business_s),
            pair(fr.median_wall_s, fr.p90_wall_s),
            business(res.median_business_s, res.p90_business_s),
            pair(res.median_wall_s, res.p90_wall_s),
            format!("{} ({})", f.reopened, share(f.reopen_rate)),
            (f.sla.first_response_breached + f.sla.resolution_breached).to_string(),
            (f.escalations.by_agent + f.escalations.by_sla + f.escalations.by_reopen).to_string(),
            f.self_service.to_string(),
            match f.csat.average {
                Some(a) => format!("{a:.1} ({})", f.csat.responses),
                None => "-".into(),
            },
            f.agent_replies.to_string(),
        ]
    };
    for g in &report.groups {
        rows.push(line(
            g.key.clone().unwrap_or_else(|| "(nobody)".into()),
            &g.figures,
        ));
    }
    rows.push(line("total".into(), &report.total));
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
        if i == 0 || (i == rows.len() - 2 && report.by.is_some()) {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}
