//! The pages: the overview, a ticket list (and its CSV), one ticket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::Dashboard;
use super::query::{ListQuery, Now, PAGE};
use super::view::Page;
use crate::clock::Millis;
use crate::domain::{Category, Language, ReferenceCode, TicketStatus, Tier};
use crate::stats::{GroupBy, Period};
use crate::store::{EventView, MessageView, TicketFilter, TicketSummary};

pub(super) fn language_of(d: &Dashboard, headers: &HeaderMap) -> Language {
    super::language::choose(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
        d.config.gateway.default_language,
    )
}

/// How long the overview's parts took.
#[derive(Clone, Copy, Debug, Default)]
pub struct OverviewTimings {
    pub store: Duration,
    pub stats: Duration,
    pub render: Duration,
}

/// What the overview shows from the statistics: computed in the background at most once a
/// minute (the page's own refresh), so a page never waits for a replay of the log but the
/// first.
#[derive(Default)]
pub(super) struct StatsCache {
    slot: std::sync::Mutex<Option<(Instant, Arc<Recent>)>>,
    refreshing: std::sync::atomic::AtomicBool,
}

/// The last eight weeks and the last 30 days, from `stats`.
pub(super) struct Recent {
    /// (ISO week, created, resolved), oldest first.
    weeks: Vec<(String, u64, u64)>,
    csat_average: Option<f64>,
    csat_responses: u64,
    reopen_rate: Option<f64>,
    resolved_30d: u64,
    computed_at: Millis,
}

const STATS_FRESH: Duration = Duration::from_secs(60);

async fn compute_recent(d: &Dashboard) -> Result<Recent, String> {
    let now = d.clock.now();
    let tz = d.config.desk.time.calendar.time_zone;
    let today = crate::timing::instant(now).with_timezone(&tz).date_naive();
    use chrono::Datelike;
    let monday = today - chrono::Duration::days(today.weekday().num_days_from_monday().into());
    let eight_weeks = Period {
        since: monday - chrono::Duration::weeks(7),
        until: today,
        time_zone: tz,
    };
    let calendar = &d.config.desk.time.calendar;
    let weekly = crate::stats::compute(&*d.store, calendar, eight_weeks, &[GroupBy::Week])
        .await
        .map_err(|e| e.to_string())?;
    let weeks = weekly
        .groups
        .iter()
        .map(|(key, tally)| {
            let f = tally.figures();
            (
                key.first().cloned().flatten().unwrap_or_default(),
                f.created,
                f.resolved,
            )
        })
        .collect();
    let month = crate::stats::compute(&*d.store, calendar, Period::last_30_days(today, tz), &[])
        .await
        .map_err(|e| e.to_string())?;
    let f = month.total.figures();
    Ok(Recent {
        weeks,
        csat_average: f.csat.average,
        csat_responses: f.csat.responses,
        reopen_rate: f.reopen_rate,
        resolved_30d: f.resolved,
        computed_at: now,
    })
}

impl StatsCache {
    async fn get(&self, d: &Arc<Dashboard>) -> Result<Arc<Recent>, String> {
        let cached = self.slot.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match cached {
            Some((at, recent)) => {
                use std::sync::atomic::Ordering;
                if at.elapsed() > STATS_FRESH && !self.refreshing.swap(true, Ordering::SeqCst) {
                    let d = d.clone();
                    tokio::spawn(async move {
                        match compute_recent(&d).await {
                            Ok(r) => {
                                d.stats.put(r);
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "dashboard: statistics not refreshed")
                            }
                        }
                        d.stats.refreshing.store(false, Ordering::SeqCst);
                    });
                }
                Ok(recent)
            }
            None => {
                let recent = compute_recent(d).await?;
                Ok(self.put(recent))
            }
        }
    }

    fn put(&self, recent: Recent) -> Arc<Recent> {
        let recent = Arc::new(recent);
        *self.slot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), recent.clone()));
        recent
    }
}

/// A failure the reader sees as a short page (and the operator in the log).
pub(super) struct Failure(StatusCode, String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.0, self.1)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        if self.0.is_server_error() {
            tracing::error!(error = %self.1, "dashboard page failed");
        }
        let body = format!(
            "<!doctype html><meta charset=utf-8><link rel=stylesheet href=/style.css>\
             <title>{}</title><main><h1>{}</h1><p>{}</p><p><a href=\"/\">←</a></p></main>",
            self.0,
            self.0,
            html_escape(&self.1)
        );
        (
            self.0,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

pub(super) fn html_escape(s: &str) -> String {
    handlebars::html_escape(s)
}

pub(super) async fn not_found() -> Failure {
    Failure(StatusCode::NOT_FOUND, "no such page".into())
}

fn now_for_lists(d: &Dashboard) -> Now {
    let now = d.clock.now();
    let tz = d.config.desk.time.calendar.time_zone;
    let today = crate::timing::instant(now).with_timezone(&tz).date_naive();
    Now {
        now,
        due_before: d
            .config
            .desk
            .time
            .add_business(now, chrono::Duration::hours(2)),
        thirty_days: Period::last_30_days(today, tz),
    }
}

/// A moment in the desk's time zone, to the minute.
fn local(d: &Dashboard, at: Millis) -> String {
    crate::timing::instant(at)
        .with_timezone(&d.config.desk.time.calendar.time_zone)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn parse_rfc3339(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `3 d 4 h`, `2 h 05`, `12 min`: how long, to the minute.
fn span(ms: i64, language: Language) -> String {
    let minutes = (ms.max(0) / 60_000) as u64;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    let day = if language == Language::Fr { "j" } else { "d" };
    if d > 0 {
        format!("{d} {day} {h} h")
    } else if h > 0 {
        format!("{h} h {m:02}")
    } else {
        format!("{m} min")
    }
}

fn status_word(d: &Dashboard, language: Language, status: TicketStatus) -> String {
    d.pages
        .word(language, &format!("status_{}", status.as_str()))
}

pub(super) async fn overview(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let language = language_of(&d, &headers);
    match overview_html(&d, language).await {
        Ok((html, _)) => Page(html).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn overview_html(
    d: &Arc<Dashboard>,
    language: Language,
) -> Result<(String, OverviewTimings), Failure> {
    let mut timings = OverviewTimings::default();
    let started = Instant::now();
    let lists = now_for_lists(d);
    let ov = d
        .store
        .overview(lists.now, lists.due_before)
        .await
        .map_err(internal)?;
    let thirty = Some(lists.thirty_days.range());
    let rated = d
        .store
        .count_tickets(&TicketFilter {
            rated: thirty,
            ..TicketFilter::default()
        })
        .await
        .map_err(internal)?;
    let came_back = d
        .store
        .count_tickets(&TicketFilter {
            came_back: thirty,
            ..TicketFilter::default()
        })
        .await
        .map_err(internal)?;
    timings.store = started.elapsed();
    let started = Instant::now();
    let recent = d.stats.get(d).await.map_err(internal)?;
    timings.stats = started.elapsed();
    let started = Instant::now();

    let roster = &d.config.desk.roster;
    let open_statuses: Vec<TicketStatus> = TicketStatus::open().collect();
    let count = |tier: Option<Tier>, status: Option<TicketStatus>| -> i64 {
        ov.backlog
            .iter()
            .filter(|(t, s, _)| tier.is_none_or(|x| x == *t) && status.is_none_or(|x| x == *s))
            .map(|(_, _, n)| n)
            .sum()
    };
    let cell = |n: i64, link: String| json!({ "n": n, "link": link });
    let backlog_rows: Vec<Value> = Tier::ALL
        .iter()
        .map(|tier| {
            let cells: Vec<Value> = open_statuses
                .iter()
                .map(|s| {
                    cell(
                        count(Some(*tier), Some(*s)),
                        format!("/tickets?status={}&tier={}", s.as_str(), tier.as_str()),
                    )
                })
                .collect();
            json!({
                "tier": tier.as_str(),
                "label": roster.tier_label(*tier, language),
                "cells": cells,
                "total": cell(count(Some(*tier), None), format!("/tickets?status=backlog&tier={}", tier.as_str())),
            })
        })
        .collect();
    let backlog_totals: Vec<Value> = open_statuses
        .iter()
        .map(|s| {
            cell(
                count(None, Some(*s)),
                format!("/tickets?status={}", s.as_str()),
            )
        })
        .collect();
    let status_heads: Vec<String> = open_statuses
        .iter()
        .map(|s| status_word(d, language, *s))
        .collect();

    // Every agent on the roster, busy or not, and whoever else holds tickets.
    let held = |who: Option<&str>| -> i64 {
        ov.by_assignee
            .iter()
            .filter(|(a, _)| a.as_deref() == who)
            .map(|(_, n)| *n)
            .sum()
    };
    let mut agents: Vec<Value> = roster
        .agents()
        .iter()
        .map(|a| {
            let address = a.address.to_string();
            json!({
                "name": a.name,
                "address": address,
                "open": cell(held(Some(&address)), format!("/tickets?status=backlog&agent={}", urlencode(&address))),
            })
        })
        .collect();
    for (who, n) in &ov.by_assignee {
        if let Some(who) = who
            && !roster.agents().iter().any(|a| a.address.as_str() == who)
        {
            agents.push(json!({
                "name": "",
                "address": who,
                "open": cell(*n, format!("/tickets?status=backlog&agent={}", urlencode(who))),
            }));
        }
    }
    // The busiest first: who is overloaded is the question.
    agents.sort_by_key(|a| std::cmp::Reverse(a["open"]["n"].as_i64().unwrap_or(0)));
    let nobody = cell(held(None), "/tickets?status=backlog&agent=none".into());

    let oldest = ov.oldest_waiting.as_ref().map(|t| {
        let since = parse_rfc3339(&t.updated_at).unwrap_or(lists.now);
        json!({
            "code": t.code,
            "subject": t.subject,
            "tier": t.tier.as_str(),
            "status": status_word(d, language, t.status),
            "created": local(d, parse_rfc3339(&t.created_at).unwrap_or(since)),
        })
    });
    let oldest_wait = ov.oldest_waiting.as_ref().map(|t| {
        let created = parse_rfc3339(&t.created_at).unwrap_or(lists.now);
        span(lists.now - created, language)
    });

    let chart = super::chart::weekly(&recent.weeks, language, &d.pages);
    let weeks: Vec<Value> = recent
        .weeks
        .iter()
        .map(|(w, c, r)| {
            json!({
                "week": w,
                "created": cell(*c as i64, format!("/tickets?created={w}")),
                "resolved": cell(*r as i64, format!("/tickets?resolved={w}")),
            })
        })
        .collect();
    let decimal = |v: f64, digits: usize| {
        let s = format!("{v:.digits$}");
        if language == Language::Fr {
            s.replace('.', ",")
        } else {
            s
        }
    };
    let data = json!({
        "title": d.pages.word(language, "overview"),
        "nav": "overview",
        "updated": local(d, lists.now),
        "time_zone": d.config.desk.time.calendar.time_zone.name(),
        "due_soon": cell(ov.due_soon, "/tickets?due=soon&sort=due".into()),
        "breached": cell(ov.breached, "/tickets?status=backlog&breached=1&sort=due".into()),
        "unassigned": nobody,
        "oldest": oldest,
        "oldest_wait": oldest_wait,
        "status_heads": status_heads,
        "backlog": backlog_rows,
        "backlog_totals": backlog_totals,
        "backlog_total": cell(count(None, None), "/tickets?status=backlog".into()),
        "agents": agents,
        "chart": chart,
        "weeks": weeks,
        "csat": recent.csat_average.map(|a| decimal(a, 1)),
        "csat_responses": recent.csat_responses,
        "rated": cell(rated, "/tickets?rated=30d".into()),
        "reopen_rate": recent.reopen_rate.map(|r| format!("{} %", decimal(r * 100.0, 1))),
        "resolved_30d": recent.resolved_30d,
        "came_back": cell(came_back, "/tickets?came_back=30d".into()),
        "stats_at": local(d, recent.computed_at),
    });
    let html = d
        .pages
        .render("overview", language, &d.config, data)
        .map_err(internal)?;
    timings.render = started.elapsed();
    Ok((html, timings))
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

/// A ticket as a row of a list.
fn row(d: &Dashboard, language: Language, t: &TicketSummary, now: Millis) -> Value {
    let due = [&t.sla.first_response_due, &t.sla.resolution_due]
        .into_iter()
        .flatten()
        .filter_map(|s| parse_rfc3339(s))
        .min();
    let created = parse_rfc3339(&t.created_at).unwrap_or(now);
    json!({
        "code": t.code,
        "subject": t.subject,
        "customer": t.customer,
        "status": status_word(d, language, t.status),
        "status_id": t.status.as_str(),
        "tier": t.tier.as_str(),
        "priority": d.pages.word(language, &format!("priority_{}", t.priority.as_str())),
        "category": d.config.desk.roster.category_label(&t.category, language),
        "assignee": t.assignee,
        "age": span(now - created, language),
        "due": due.map(|at| local(d, at)),
        "overdue": due.is_some_and(|at| at <= now),
        "breached": !t.sla.breached.is_empty(),
    })
}

fn categories(d: &Dashboard, language: Language, chosen: Option<&str>) -> Vec<Value> {
    let mut ids: Vec<String> = [
        "account", "printer", "network", "email", "hardware", "software", "access", "security",
        "general",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for c in d.config.desk.roster.labelled_categories() {
        if !ids.iter().any(|i| i == c.as_str()) {
            ids.push(c.as_str().to_string());
        }
    }
    if let Some(c) = chosen.filter(|c| !c.is_empty())
        && !ids.iter().any(|i| i == c)
    {
        ids.push(c.to_string());
    }
    ids.into_iter()
        .map(|id| {
            let label = id
                .parse::<Category>()
                .map(|c| d.config.desk.roster.category_label(&c, language))
                .unwrap_or_else(|_| id.clone());
            json!({ "id": id, "label": label, "selected": chosen == Some(id.as_str()) })
        })
        .collect()
}

fn options(chosen: Option<&str>, items: Vec<(String, String)>) -> Vec<Value> {
    items
        .into_iter()
        .map(|(id, label)| json!({ "id": id, "label": label, "selected": chosen == Some(id.as_str()) }))
        .collect()
}

pub(super) async fn tickets(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let language = language_of(&d, &headers);
    match tickets_html(&d, language, q).await {
        Ok(html) => Page(html).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn tickets_html(d: &Dashboard, language: Language, q: ListQuery) -> Result<String, Failure> {
    let lists = now_for_lists(d);
    let mut filter = q
        .filter(&lists)
        .map_err(|e| Failure(StatusCode::BAD_REQUEST, e))?;
    let total = d.store.count_tickets(&filter).await.map_err(internal)?;
    let pages = (total as u32).div_ceil(PAGE).max(1);
    let page = q.page.unwrap_or(1).clamp(1, pages);
    filter.page = Some((PAGE, (page - 1) * PAGE));
    let list = d.store.list_tickets(&filter).await.map_err(internal)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|t| row(d, language, t, lists.now))
        .collect();
    let w = |k: &str| d.pages.word(language, k);
    let chosen = |v: &Option<String>| v.as_deref().map(str::trim).map(str::to_string);
    let status = chosen(&q.status);
    let mut statuses = vec![("backlog".to_string(), w("backlog_statuses"))];
    statuses.extend(
        TicketStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_string(), status_word(d, language, *s))),
    );
    let tiers = Tier::ALL
        .iter()
        .map(|t| {
            (
                t.as_str().to_string(),
                format!(
                    "{} · {}",
                    t.as_str(),
                    d.config.desk.roster.tier_label(*t, language)
                ),
            )
        })
        .collect();
    let mut agents = vec![("none".to_string(), w("nobody"))];
    agents.extend(
        d.config
            .desk
            .roster
            .agents()
            .iter()
            .map(|a| (a.address.to_string(), format!("{} <{}>", a.name, a.address))),
    );
    let sorts = ["created", "age", "due"]
        .iter()
        .map(|s| (s.to_string(), w(&format!("sort_{s}"))))
        .collect();
    let sort = chosen(&q.sort).unwrap_or_else(|| "created".into());
    let described = describe(d, language, &q);
    let data = json!({
        "title": w("tickets"),
        "nav": "tickets",
        "updated": local(d, lists.now),
        "total": total,
        "rows": rows,
        "described": described,
        "statuses": options(status.as_deref(), statuses),
        "tiers": options(chosen(&q.tier).as_deref(), tiers),
        "agents": options(chosen(&q.agent).as_deref(), agents),
        "categories": categories(d, language, chosen(&q.category).as_deref()),
        "sorts": options(Some(&sort), sorts),
        "breached": chosen(&q.breached).as_deref() == Some("1"),
        "hidden": hidden_fields(&q),
        "csv": q.link("/tickets.csv", None, None),
        "page": page,
        "pages": pages,
        "previous": (page > 1).then(|| q.link("/tickets", Some(page - 1), None)),
        "next": (page < pages).then(|| q.link("/tickets", Some(page + 1), None)),
        "by_age": q.link("/tickets", None, Some("age")),
        "by_due": q.link("/tickets", None, Some("due")),
    });
    d.pages
        .render("tickets", language, &d.config, data)
        .map_err(internal)
}

/// The filters the form has no field for (from a link of the overview), kept when the
/// form is sent again.
fn hidden_fields(q: &ListQuery) -> Vec<Value> {
    [
        ("priority", &q.priority),
        ("due", &q.due),
        ("created", &q.created),
        ("resolved", &q.resolved),
        ("rated", &q.rated),
        ("came_back", &q.came_back),
    ]
    .into_iter()
    .filter_map(|(k, v)| {
        v.as_deref()
            .filter(|v| !v.is_empty())
            .map(|v| json!({ "name": k, "value": v }))
    })
    .collect()
}

/// The list's filters in words, above the table ("resolved in week 2026-W47").
fn describe(d: &Dashboard, language: Language, q: &ListQuery) -> Vec<String> {
    let w = |k: &str| d.pages.word(language, k);
    let mut out = Vec::new();
    if q.due.as_deref() == Some("soon") {
        out.push(w("due_soon"));
    }
    if let Some(wk) = q.created.as_deref().filter(|s| !s.is_empty()) {
        out.push(format!("{} {wk}", w("created_in")));
    }
    if let Some(wk) = q.resolved.as_deref().filter(|s| !s.is_empty()) {
        out.push(format!("{} {wk}", w("resolved_in")));
    }
    if q.rated.as_deref().is_some_and(|s| !s.is_empty()) {
        out.push(w("rated_30d"));
    }
    if q.came_back.as_deref().is_some_and(|s| !s.is_empty()) {
        out.push(w("came_back_30d"));
    }
    if let Some(p) = q.priority.as_deref().filter(|s| !s.is_empty()) {
        out.push(format!("{} {}", w("priority"), w(&format!("priority_{p}"))));
    }
    out
}

/// A CSV field: quoted when needed, and never read as a formula by a spreadsheet (a
/// subject starting with `=` is a customer's text, not a calculation).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub(super) async fn tickets_csv(
    State(d): State<Arc<Dashboard>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let lists = now_for_lists(&d);
    let filter = match q.filter(&lists) {
        Ok(f) => f,
        Err(e) => return Failure(StatusCode::BAD_REQUEST, e).into_response(),
    };
    let list = match d.store.list_tickets(&filter).await {
        Ok(l) => l,
        Err(e) => return internal(e).into_response(),
    };
    let mut out = String::from(
        "code,status,tier,priority,category,assignee,customer,subject,created_at,updated_at,\
         first_response_due,resolution_due,breached\r\n",
    );
    for t in &list {
        let fields = [
            t.code.as_str(),
            t.status.as_str(),
            t.tier.as_str(),
            t.priority.as_str(),
            t.category.as_str(),
            t.assignee.as_deref().unwrap_or(""),
            t.customer.as_str(),
            t.subject.as_str(),
            t.created_at.as_str(),
            t.updated_at.as_str(),
            t.sla.first_response_due.as_deref().unwrap_or(""),
            t.sla.resolution_due.as_deref().unwrap_or(""),
            &t.sla.breached.join(" "),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tickets.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        out,
    )
        .into_response()
}

/// The most of one mail's text a ticket page shows (the whole mail is in the database).
const BODY_SHOWN: usize = 8_000;

fn cut(text: &str) -> (String, bool) {
    if text.len() <= BODY_SHOWN {
        return (text.to_string(), false);
    }
    let mut end = BODY_SHOWN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

/// The kinds of outgoing mail the customer (and the participants) read.
const PUBLIC_KINDS: [&str; 4] = [
    "acknowledgement",
    "status_update",
    "agent_reply",
    "reminder",
];

fn message(d: &Dashboard, language: Language, m: &MessageView) -> Value {
    let sender = m
        .from
        .as_deref()
        .and_then(|f| crate::domain::EmailAddress::parse(f).ok());
    let from_agent = sender
        .as_ref()
        .is_some_and(|a| d.config.desk.roster.agent(a).is_some());
    // A vendor's answer is kept from the customer until an agent relays it.
    let from_vendor = sender
        .as_ref()
        .is_some_and(|a| d.config.desk.time.vendors.iter().any(|v| v.address == *a));
    let public = if m.direction == "outbound" {
        m.kind.as_deref().is_some_and(|k| PUBLIC_KINDS.contains(&k))
    } else {
        !from_agent && !from_vendor
    };
    let (text, cut_short) = cut(if m.reply_text.trim().is_empty() {
        &m.body_text
    } else {
        &m.reply_text
    });
    let full = (m.body_text.trim() != m.reply_text.trim() && !m.reply_text.trim().is_empty())
        .then(|| cut(&m.body_text).0);
    let kind = match (&m.direction[..], &m.kind) {
        ("outbound", Some(k)) => d.pages.word(language, &format!("mail_{k}")),
        ("outbound", None) => d.pages.word(language, "mail_outgoing"),
        _ if from_agent => d.pages.word(language, "from_agent"),
        _ if from_vendor => d.pages.word(language, "from_vendor"),
        _ => d.pages.word(language, &format!("outcome_{}", m.outcome)),
    };
    let attachments: Vec<Value> = m
        .attachments
        .iter()
        .map(|a| {
            json!({
                "name": a.filename.clone().unwrap_or_else(|| "—".into()),
                "type": a.content_type,
                "size": format!("{} KB", (a.size.max(0) as u64).div_ceil(1024)),
            })
        })
        .collect();
    json!({
        "public": public,
        "outbound": m.direction == "outbound",
        "kind": kind,
        "from": m.from,
        "to": m.to.join(", "),
        "subject": m.subject,
        "at": parse_rfc3339(&m.received_at).map(|at| local(d, at)).unwrap_or_default(),
        "text": text,
        "cut": cut_short,
        "full": full,
        "delivery": m.delivery.as_deref().map(|s| d.pages.word(language, &format!("delivery_{s}"))),
        "attachments": attachments,
    })
}

/// An event's detail as `key: value` pairs in the page's language, for reading (the JSON
/// is in `tickets show --json`): known keys and statuses translated, the rest as stored.
fn detail_words(d: &Dashboard, language: Language, key: Option<&str>, v: &Value) -> String {
    let word = |k: &str, fallback: &str| {
        let w = d.pages.word(language, k);
        if w == k { fallback.to_string() } else { w }
    };
    match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}: {}",
                    word(&format!("detail_{k}"), k),
                    detail_words(d, language, Some(k), v)
                )
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::Array(a) => a
            .iter()
            .map(|v| detail_words(d, language, key, v))
            .collect::<Vec<_>>()
            .join(", "),
        Value::String(s) => match key {
            Some("from" | "to" | "status" | "change") => word(&format!("status_{s}"), s),
            Some("category") => s
                .parse::<Category>()
                .map(|c| d.config.desk.roster.category_label(&c, language))
                .unwrap_or_else(|_| s.clone()),
            Some("kind") => word(&format!("mail_{s}"), s),
            Some("priority") => word(&format!("priority_{s}"), s),
            Some("target") => word(&format!("target_{s}"), s),
            _ => s.clone(),
        },
        Value::Bool(b) => word(if *b { "yes" } else { "no" }, ""),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn event(d: &Dashboard, language: Language, e: &EventView) -> Value {
    let actor = d.pages.word(language, &format!("actor_{}", e.actor_kind));
    json!({
        "at": local(d, e.at_ms),
        "kind": d.pages.word(language, &format!("event_{}", e.kind)),
        "kind_id": e.kind,
        "actor": if e.actor == e.actor_kind { actor } else { format!("{actor} · {}", e.actor) },
        "detail": detail_words(d, language, None, &e.detail),
    })
}

pub(super) async fn ticket(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    let language = language_of(&d, &headers);
    let parsed = match ReferenceCode::parse(
        &d.config.gateway.reference_prefix,
        code.trim_matches(['[', ']']),
    ) {
        Ok(c) => c,
        Err(e) => return Failure(StatusCode::NOT_FOUND, e.to_string()).into_response(),
    };
    let detail = match d.store.ticket_detail(&parsed).await {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            return Failure(StatusCode::NOT_FOUND, format!("no ticket {parsed}")).into_response();
        }
        Err(e) => return internal(e).into_response(),
    };
    let now = d.clock.now();
    let s = &detail.summary;
    let w = |k: &str| d.pages.word(language, k);
    let data = json!({
        "title": format!("{} · {}", s.code, s.subject),
        "nav": "tickets",
        "updated": local(&d, now),
        "time_zone": d.config.desk.time.calendar.time_zone.name(),
        "ticket": row(&d, language, s, now),
        "customer_name": s.customer_name,
        "participants": s.participants.join(", "),
        "created": parse_rfc3339(&s.created_at).map(|at| local(&d, at)),
        "first_response_due": s.sla.first_response_due.as_deref().and_then(parse_rfc3339).map(|at| local(&d, at)),
        "resolution_due": s.sla.resolution_due.as_deref().and_then(parse_rfc3339).map(|at| local(&d, at)),
        "paused": s.sla.paused,
        "missed": s.sla.breached.iter().map(|t| w(&format!("target_{t}"))).collect::<Vec<_>>().join(", "),
        "vendor": s.vendor,
        "vendor_ticket": s.vendor_ticket,
        "follows": s.follows,
        "satisfaction": s.satisfaction,
        "satisfaction_comment": s.satisfaction_comment,
        "reopen_count": s.reopen_count,
        "messages": detail.messages.iter().map(|m| message(&d, language, m)).collect::<Vec<_>>(),
        "events": detail.events.iter().map(|e| event(&d, language, e)).collect::<Vec<_>>(),
    });
    match d.pages.render("ticket", language, &d.config, data) {
        Ok(html) => Page(html).into_response(),
        Err(e) => internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-1"), "'-1");
    }

    #[tokio::test]
    async fn agents_and_vendors_mail_is_internal_the_customers_public() {
        let toml = format!(
            "{}\n[agent_mail]\nrequire_authentication = false\n\
             [[agents]]\nname = \"Ana\"\naddress = \"ana@desk.test\"\ntiers = [\"L1\"]\n\
             [[vendors]]\nname = \"Acme\"\naddress = \"support@acme.test\"\n",
            crate::config::embedded_default_toml()
        );
        let dir = std::path::Path::new(".");
        let config = crate::config::Config::from_toml(
            &toml,
            &dir.join("helpdesk.toml"),
            dir,
            &crate::config::ProcessEnv,
        )
        .unwrap();
        let store = crate::store::sqlite::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap();
        let settings = crate::config::DashboardSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: None,
        };
        let d = Dashboard::new(Arc::new(config), settings, Arc::new(store), None).unwrap();
        let mail = |direction: &str, from: &str, kind: Option<&str>| MessageView {
            direction: direction.into(),
            kind: kind.map(Into::into),
            from: Some(from.into()),
            to: vec![],
            subject: "s".into(),
            message_id: None,
            body_text: "b".into(),
            reply_text: "b".into(),
            signature: String::new(),
            outcome: "appended".into(),
            detail: None,
            from_non_participant: false,
            delivery: None,
            attachments: vec![],
            received_at: "2026-12-03T10:00:00.000Z".into(),
        };
        let public = |m: MessageView| message(&d, Language::En, &m)["public"].as_bool().unwrap();
        assert!(public(mail("inbound", "customer@example.com", None)));
        assert!(!public(mail("inbound", "ana@desk.test", None)));
        assert!(!public(mail("inbound", "support@acme.test", None)));
        assert!(public(mail(
            "outbound",
            "support@example.test",
            Some("agent_reply")
        )));
        assert!(!public(mail(
            "outbound",
            "support@example.test",
            Some("agent_notification")
        )));
        assert!(!public(mail(
            "outbound",
            "support@example.test",
            Some("vendor_forward")
        )));
    }

    #[test]
    fn spans_read_in_both_languages() {
        assert_eq!(span(0, Language::En), "0 min");
        assert_eq!(span(125 * 60_000, Language::En), "2 h 05");
        assert_eq!(span((3 * 1440 + 4 * 60) * 60_000, Language::Fr), "3 j 4 h");
    }
}
