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

pub mod figures;
pub mod history;

pub use figures::{Figures, Rating, Tally};
use history::{Counted, Fact, Replayed, Snapshot};

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
    fn weeks(&self) -> Vec<(String, Millis)> {
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

/// Everything a period's figures are made of: the report and the weekly mail read it.
pub struct Computed {
    pub period: Period,
    pub by: Option<GroupBy>,
    pub total: Tally,
    pub groups: BTreeMap<Option<String>, Tally>,
}

impl Computed {
    pub fn report(&self) -> Report {
        let mut groups: Vec<Group> = self
            .groups
            .iter()
            .map(|(key, tally)| Group {
                key: key.clone(),
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
            by: self.by,
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

/// Reads and replays the tickets of `period` and adds up their figures.
pub async fn compute(
    store: &dyn Store,
    calendar: &Calendar,
    period: Period,
    by: Option<GroupBy>,
) -> Result<Computed, StatsError> {
    let (start, end) = period.range();
    let input = store
        .stats_input(start, end, &history::COUNTED, &history::REPLAYED)
        .await?;
    let mut follow_ups: HashMap<i64, Vec<Millis>> = HashMap::new();
    for (followed, at) in &input.follow_ups {
        follow_ups.entry(*followed).or_default().push(*at);
    }
    let mut computed = Computed {
        period,
        by,
        total: Tally::default(),
        groups: BTreeMap::new(),
    };
    let weeks = if by == Some(GroupBy::Week) {
        period.weeks()
    } else {
        Vec::new()
    };
    for (key, _) in &weeks {
        computed.groups.entry(Some(key.clone())).or_default();
    }
    for ticket in &input.tickets {
        let follows = follow_ups.get(&ticket.id).map(Vec::as_slice).unwrap_or(&[]);
        let replayed = history::replay(ticket, follows, calendar)?;
        computed.add(&replayed, start, end, &weeks);
    }
    Ok(computed)
}

impl Computed {
    fn add(&mut self, t: &Replayed, start: Millis, end: Millis, weeks: &[(String, Millis)]) {
        for counted in t.facts.iter().filter(|c| c.at >= start && c.at < end) {
            self.total.count(counted);
            if let Some(by) = self.by {
                let key = key_of(by, &self.period, counted);
                self.groups.entry(key).or_default().count(counted);
            }
        }
        // The backlog: open at the period's end (each week's end, by week). A ticket counts
        // from the moment it was created; `end` is exclusive, so the state is read just
        // before it.
        let at = end - 1;
        if t.created_at <= at
            && let Some(state) = t.open_at(at)
        {
            self.total.backlog(end - t.created_at);
            if let Some(by) = self.by.filter(|b| *b != GroupBy::Week) {
                let key = key_of_state(by, state);
                self.groups
                    .entry(key)
                    .or_default()
                    .backlog(end - t.created_at);
            }
        }
        for (week, week_end) in weeks {
            let at = week_end - 1;
            if t.created_at <= at && t.open_at(at).is_some() {
                self.groups
                    .entry(Some(week.clone()))
                    .or_default()
                    .backlog(week_end - t.created_at);
            }
        }
    }
}
