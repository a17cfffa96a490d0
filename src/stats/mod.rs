//! Statistics: what the desk did in a period, per agent, tier, category, priority or week,
//! computed from the event log (`history` replays each ticket, `figures` adds up).
//!
//! Times count as the service-level clock does (working time in the desk's calendar, and
//! plain time), so a figure here and a target in `[sla]` speak of the same hours.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, Duration, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::calendar::Calendar;
use crate::clock::Millis;
use crate::store::{Store, StoreError};

pub mod chart;
pub mod figures;
pub mod history;
pub mod report;

pub use figures::{Figures, Rating, Tally};
pub use history::{Counted, Fact, Replayed, Snapshot};

/// How figures are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Agent,
    Tier,
    Category,
    Priority,
    Week,
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "agent" => GroupBy::Agent,
            "tier" => GroupBy::Tier,
            "category" => GroupBy::Category,
            "priority" => GroupBy::Priority,
            "week" => GroupBy::Week,
            _ => {
                return Err(format!(
                    "{s:?}: group by agent, tier, category, priority or week"
                ));
            }
        })
    }
}

/// The days a report covers, both included, as dates in the desk's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub since: NaiveDate,
    pub until: NaiveDate,
    pub time_zone: Tz,
}

#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Unreadable(#[from] history::Unreadable),
}

impl Period {
    /// The 30 days that end with `today` (included).
    pub fn last_30_days(today: NaiveDate, time_zone: Tz) -> Period {
        Period {
            since: today - Duration::days(29),
            until: today,
            time_zone,
        }
    }

    /// The first instant of a local date.
    pub fn start_of(&self, date: NaiveDate) -> Millis {
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.time_zone
            .from_local_datetime(&midnight)
            .earliest()
            // A zone whose clocks skip midnight: the hour after.
            .or_else(|| {
                self.time_zone
                    .from_local_datetime(&(midnight + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|| midnight.and_utc().timestamp_millis())
    }

    /// `[start, end)` in milliseconds: from `since`'s midnight to the midnight after `until`.
    pub fn range(&self) -> (Millis, Millis) {
        (
            self.start_of(self.since),
            self.start_of(self.until + Duration::days(1)),
        )
    }

    /// The ISO week of an instant, in the desk's time zone (`2026-W48`).
    pub fn week_of(&self, at: Millis) -> String {
        let local = self.time_zone.timestamp_millis_opt(at).earliest();
        let date = local.map(|t| t.date_naive()).unwrap_or(self.since);
        week_name(date)
    }

    /// The weeks the period touches, each with the instant its backlog is read at (the
    /// week's end, or the period's).
    pub fn weeks(&self) -> Vec<(String, Millis)> {
        let (_, end) = self.range();
        let mut out = Vec::new();
        let mut monday =
            self.since - Duration::days(self.since.weekday().num_days_from_monday().into());
        while monday <= self.until {
            let next = monday + Duration::days(7);
            out.push((week_name(monday), self.start_of(next).min(end)));
            monday = next;
        }
        out
    }
}

fn week_name(date: NaiveDate) -> String {
    let w = date.iso_week();
    format!("{:04}-W{:02}", w.year(), w.week())
}

#[derive(Clone, Debug, Serialize)]
pub struct PeriodView {
    pub since: String,
    pub until: String,
    pub time_zone: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Group {
    /// The agent's address, the tier, the category, the priority or the ISO week; `None`
    /// for figures of tickets nobody had.
    pub key: Option<String>,
    #[serde(flatten)]
    pub figures: Figures,
}

/// `helpdesk stats --json`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub period: PeriodView,
    pub by: Option<GroupBy>,
    pub groups: Vec<Group>,
    pub total: Figures,
}

/// Everything a period's figures are made of: the report, the charts and the weekly mail
/// read it. A group's key has one part per grouping asked (the charts ask for two: the
/// week and the tier).
pub struct Computed {
    pub period: Period,
    pub by: Vec<GroupBy>,
    pub total: Tally,
    pub groups: BTreeMap<Vec<Option<String>>, Tally>,
    /// What the weekly report names ticket by ticket: problems that came back, targets
    /// missed, ratings with a comment; in the order they happened.
    pub notable: Vec<Notable>,
}

/// A fact the weekly report lists with its ticket's code.
#[derive(Clone, Debug, PartialEq)]
pub struct Notable {
    pub code: String,
    pub at: Millis,
    pub state: Snapshot,
    pub fact: Fact,
}

impl Computed {
    pub fn report(&self) -> Report {
        let mut groups: Vec<Group> = self
            .groups
            .iter()
            .map(|(key, tally)| Group {
                key: key.first().cloned().flatten(),
                figures: tally.figures(),
            })
            .collect();
        // Nobody's last, after the named groups.
        groups.sort_by_key(|g| g.key.is_none());
        Report {
            period: PeriodView {
                since: self.period.since.to_string(),
                until: self.period.until.to_string(),
                time_zone: self.period.time_zone.name().to_string(),
            },
            by: self.by.first().copied(),
            groups,
            total: self.total.figures(),
        }
    }
}

/// The group a fact counts in.
fn key_of(by: GroupBy, period: &Period, counted: &Counted) -> Option<String> {
    match (&counted.fact, by) {
        (Fact::FirstResponse { by: who, .. } | Fact::AgentReply { by: who }, GroupBy::Agent) => {
            Some(who.clone())
        }
        (_, GroupBy::Week) => Some(period.week_of(counted.at)),
        _ => key_of_state(by, &counted.state),
    }
}

fn key_of_state(by: GroupBy, state: &Snapshot) -> Option<String> {
    match by {
        GroupBy::Agent => state.assignee.as_ref().map(|a| a.to_string()),
        GroupBy::Tier => Some(state.tier.as_str().to_string()),
        GroupBy::Category => Some(state.category.as_str().to_string()),
        GroupBy::Priority => Some(state.priority.as_str().to_string()),
        // Weeks are keyed by time, not by state.
        GroupBy::Week => None,
    }
}

/// Reads and replays the tickets of `period` and adds up their figures, in total and per
/// group of `by` (none, one, or more for a key of several parts).
pub async fn compute(
    store: &dyn Store,
    calendar: &Calendar,
    period: Period,
    by: &[GroupBy],
) -> Result<Computed, StatsError> {
    let (start, end) = period.range();
    let started = std::time::Instant::now();
    let mut input = store
        .stats_input(start, end, &history::COUNTED, &history::REPLAYED)
        .await?;
    let mut follow_ups: HashMap<i64, Vec<Millis>> = HashMap::new();
    for (followed, at) in &input.follow_ups {
        follow_ups.entry(*followed).or_default().push(*at);
    }
    let mut computed = Computed {
        period,
        by: by.to_vec(),
        total: Tally::default(),
        groups: BTreeMap::new(),
        notable: Vec::new(),
    };
    let weeks = if by.contains(&GroupBy::Week) {
        period.weeks()
    } else {
        Vec::new()
    };
    // Every week has its group, quiet ones too (a chart's axis has no holes).
    if by == [GroupBy::Week] {
        for (key, _) in &weeks {
            computed.groups.entry(vec![Some(key.clone())]).or_default();
        }
    }
    let (mut tickets, mut events) = (0usize, 0usize);
    while let Some(batch) = input.tickets.recv().await {
        for ticket in batch? {
            let follows = follow_ups.get(&ticket.id).map(Vec::as_slice).unwrap_or(&[]);
            let replayed = history::replay(&ticket, follows, calendar)?;
            computed.add(&replayed, start, end, &weeks);
            tickets += 1;
            events += ticket.events.len();
        }
    }
    computed
        .notable
        .sort_by(|a, b| (a.at, &a.code).cmp(&(b.at, &b.code)));
    tracing::info!(
        tickets,
        events,
        ms = started.elapsed().as_millis() as u64,
        "statistics computed"
    );
    Ok(computed)
}

impl Computed {
    fn add(&mut self, t: &Replayed, start: Millis, end: Millis, weeks: &[(String, Millis)]) {
        for counted in t.facts.iter().filter(|c| c.at >= start && c.at < end) {
            if matches!(
                counted.fact,
                Fact::CameBack { .. }
                    | Fact::Breached(_)
                    | Fact::Rated {
                        comment: Some(_),
                        ..
                    }
            ) {
                self.notable.push(Notable {
                    code: t.code.clone(),
                    at: counted.at,
                    state: counted.state.clone(),
                    fact: counted.fact.clone(),
                });
            }
            self.total.count(counted);
            if !self.by.is_empty() {
                let key = self
                    .by
                    .iter()
                    .map(|by| key_of(*by, &self.period, counted))
                    .collect();
                self.groups.entry(key).or_default().count(counted);
            }
        }
        // The backlog: open at the period's end, and by week at each week's end. A ticket
        // counts from the moment it was created; `end` is exclusive, so the state is read
        // just before it.
        if let Some(age) = open_for(t, end) {
            self.total.backlog(age);
        }
        if self.by.is_empty() {
            return;
        }
        let ends: Vec<(Option<&str>, Millis)> = if weeks.is_empty() {
            vec![(None, end)]
        } else {
            weeks.iter().map(|(w, e)| (Some(w.as_str()), *e)).collect()
        };
        for (week, at) in ends {
            let (Some(age), Some(state)) = (open_for(t, at), t.state_at(at - 1)) else {
                continue;
            };
            let key = self
                .by
                .iter()
                .map(|by| match by {
                    GroupBy::Week => week.map(str::to_string),
                    other => key_of_state(*other, state),
                })
                .collect();
            self.groups.entry(key).or_default().backlog(age);
        }
    }
}

/// How long the ticket had been waiting at `end` (exclusive), if it was open then.
fn open_for(t: &Replayed, end: Millis) -> Option<i64> {
    (t.created_at < end && t.open_at(end - 1).is_some()).then(|| end - t.created_at)
}
