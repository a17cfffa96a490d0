//! A ticket list's filters as they travel in a link (`/tickets?tier=L1&status=new`): read
//! into a [`TicketFilter`], and written back for the links of the same list (its pages,
//! its CSV, its sort orders).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::{Category, EmailAddress, Priority, TicketStatus, Tier};
use crate::stats::Period;
use crate::store::{TicketFilter, TicketSort};

/// Rows on one page of a list.
pub const PAGE: u32 = 100;

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ListQuery {
    /// A status, or `backlog`: new, open and waiting on the customer.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub tier: Option<String>,
    /// An agent's address, or `none`.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub agent: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub priority: Option<String>,
    /// `1`: only tickets that missed a target.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub breached: Option<String>,
    /// `soon`: a target due within two business hours.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub due: Option<String>,
    /// An ISO week (`2026-W48`).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub resolved: Option<String>,
    /// `30d`: the last 30 days.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub rated: Option<String>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub came_back: Option<String>,
    /// created (default), age or due.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
}

fn is_empty(v: &Option<String>) -> bool {
    v.as_deref().is_none_or(str::is_empty)
}

/// What a list's relative filters are read against.
pub struct Now {
    pub now: Millis,
    /// The end of "due soon": two business hours from now.
    pub due_before: Millis,
    /// The last 30 days, as the statistics count them.
    pub thirty_days: Period,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn bad(key: &str, value: &str, hint: &str) -> String {
    format!("{key}={value:?}: {hint}")
}

fn week(key: &str, value: &str, period: &Period) -> Result<(Millis, Millis), String> {
    let parsed = value
        .split_once("-W")
        .and_then(|(y, w)| Some((y.parse::<i32>().ok()?, w.parse::<u32>().ok()?)))
        .and_then(|(y, w)| NaiveDate::from_isoywd_opt(y, w, chrono::Weekday::Mon));
    let Some(monday) = parsed else {
        return Err(bad(key, value, "give an ISO week, e.g. 2026-W48"));
    };
    Ok((
        period.start_of(monday),
        period.start_of(monday + chrono::Duration::days(7)),
    ))
}

fn last_30_days(key: &str, value: &str, now: &Now) -> Result<(Millis, Millis), String> {
    if value != "30d" {
        return Err(bad(key, value, "only 30d (the last 30 days) is known"));
    }
    Ok(now.thirty_days.range())
}

impl ListQuery {
    pub fn filter(&self, now: &Now) -> Result<TicketFilter, String> {
        let mut f = TicketFilter::default();
        if let Some(s) = given(&self.status) {
            if s == "backlog" {
                f.open_only = true;
            } else {
                f.status = Some(s.parse::<TicketStatus>().map_err(|_| {
                    bad(
                        "status",
                        s,
                        "use backlog, new, open, waiting_on_customer, resolved or closed",
                    )
                })?);
            }
        }
        if let Some(t) = given(&self.tier) {
            f.tier = Some(
                t.parse::<Tier>()
                    .map_err(|_| bad("tier", t, "use L0, L1, L2, L3 or L4"))?,
            );
        }
        if let Some(a) = given(&self.agent) {
            if a == "none" {
                f.unassigned = true;
            } else {
                f.assignee = Some(
                    EmailAddress::parse(a)
                        .map_err(|_| bad("agent", a, "give an agent's address, or none"))?,
                );
            }
        }
        if let Some(c) = given(&self.category) {
            f.category = Some(
                c.parse::<Category>()
                    .map_err(|_| bad("category", c, "give a category, e.g. printer"))?,
            );
        }
        if let Some(p) = given(&self.priority) {
            f.priority = Some(
                p.parse::<Priority>()
                    .map_err(|_| bad("priority", p, "use low, normal, high or urgent"))?,
            );
        }
        if let Some(b) = given(&self.breached) {
            f.breached = match b {
                "1" => true,
                "0" => false,
                _ => return Err(bad("breached", b, "use 1")),
            };
        }
        if let Some(d) = given(&self.due) {
            if d != "soon" {
                return Err(bad("due", d, "use soon (within two business hours)"));
            }
            f.open_only = true;
            f.due_after = Some(now.now);
            f.due_before = Some(now.due_before);
        }
        if let Some(w) = given(&self.created) {
            f.created = Some(week("created", w, &now.thirty_days)?);
        }
        if let Some(w) = given(&self.resolved) {
            f.resolved = Some(week("resolved", w, &now.thirty_days)?);
        }
        if let Some(r) = given(&self.rated) {
            f.rated = Some(last_30_days("rated", r, now)?);
        }
        if let Some(r) = given(&self.came_back) {
            f.came_back = Some(last_30_days("came_back", r, now)?);
        }
        f.sort = match given(&self.sort) {
            None | Some("created") => TicketSort::Created,
            Some("age") => TicketSort::Age,
            Some("due") => TicketSort::Due,
            Some(s) => return Err(bad("sort", s, "use created, age or due")),
        };
        Ok(f)
    }

    /// This list's link with `page` (none: the first) and `sort` changed.
    pub fn link(&self, path: &str, page: Option<u32>, sort: Option<&str>) -> String {
        let mut q = self.clone();
        q.page = page.filter(|p| *p > 1);
        if let Some(s) = sort {
            q.sort = Some(s.to_string()).filter(|s| s != "created");
        }
        let encoded = serde_urlencoded::to_string(&q).unwrap_or_default();
        if encoded.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{encoded}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Now {
        Now {
            now: 1_000,
            due_before: 2_000,
            thirty_days: Period::last_30_days(
                NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
                chrono_tz::Europe::Paris,
            ),
        }
    }

    #[test]
    fn a_list_reads_its_filters_and_writes_them_back() {
        let q: ListQuery =
            serde_urlencoded::from_str("tier=L1&status=backlog&agent=none&sort=due&category=")
                .unwrap();
        let f = q.filter(&now()).unwrap();
        assert_eq!(f.tier, Some(Tier::L1FrontLine));
        assert!(f.open_only && f.unassigned);
        assert_eq!(f.sort, TicketSort::Due);
        assert_eq!(f.category, None);
        assert_eq!(
            q.link("/tickets", Some(2), None),
            "/tickets?status=backlog&tier=L1&agent=none&sort=due&page=2"
        );
        assert_eq!(
            q.link("/tickets", None, Some("created")),
            "/tickets?status=backlog&tier=L1&agent=none"
        );
        let w: ListQuery = serde_urlencoded::from_str("created=2026-W48").unwrap();
        let (since, until) = w.filter(&now()).unwrap().created.unwrap();
        assert_eq!(until - since, 7 * 24 * 3600 * 1000);
        for wrong in ["tier=L9", "created=48", "rated=7d", "sort=name", "agent=x"] {
            let q: ListQuery = serde_urlencoded::from_str(wrong).unwrap();
            let err = q.filter(&now()).unwrap_err();
            let key = wrong.split('=').next().unwrap();
            assert!(err.starts_with(key), "{wrong}: {err}");
        }
    }
}
