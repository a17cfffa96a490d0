//! Business time: when the support desk works (time zone, working days, working hours in
//! one or more ranges, holidays), and time counted only while it does. Service levels,
//! reminders and automatic closing are measured in it, so an urgent ticket filed on Friday
//! evening is not "late" on Saturday morning. Pure: instants in, instants out.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A range of working time within a day, `start < end`; `end` may be 24:00.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkingHours {
    /// Minutes since midnight.
    pub start: u32,
    pub end: u32,
}

impl std::fmt::Display for WorkingHours {
    /// `08:30-12:30`, as the configuration writes it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl WorkingHours {
    /// Parses `"08:30-12:30"` (`"00:00-24:00"` for the whole day).
    pub fn parse(text: &str) -> Option<WorkingHours> {
        let (a, b) = text.trim().split_once('-')?;
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (start, end) = (minutes(a)?, minutes(b)?);
        (start < end).then_some(WorkingHours { start, end })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    pub time_zone: Tz,
    pub working_days: HashSet<Weekday>,
    /// Sorted, not overlapping.
    pub working_hours: Vec<WorkingHours>,
    pub holidays: BTreeSet<NaiveDate>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CalendarError {
    #[error("{0:?} is not a time zone (use a name such as \"Europe/Paris\")")]
    TimeZone(String),
    #[error("{0:?} is not a day (use mon, tue, wed, thu, fri, sat or sun)")]
    Day(String),
    #[error(
        "{0:?} is not a range of hours (use \"08:30-12:30\"; \"00:00-24:00\" for the whole day)"
    )]
    Hours(String),
    #[error("working hour ranges {0} and {1} overlap")]
    Overlap(String, String),
    #[error("{0:?} is not a date (use 2026-12-25)")]
    Date(String),
    #[error("the calendar has no working time at all")]
    NeverWorks,
}

impl Calendar {
    /// Round the clock, every day, in UTC.
    pub fn always() -> Calendar {
        Calendar {
            time_zone: Tz::UTC,
            working_days: [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Sat,
                Weekday::Sun,
            ]
            .into(),
            working_hours: vec![WorkingHours {
                start: 0,
                end: 24 * 60,
            }],
            holidays: BTreeSet::new(),
        }
    }

    pub fn new(
        time_zone: &str,
        working_days: &[&str],
        working_hours: &[&str],
        holidays: &[&str],
    ) -> Result<Calendar, CalendarError> {
        let time_zone: Tz = time_zone
            .parse()
            .map_err(|_| CalendarError::TimeZone(time_zone.into()))?;
        let working_days = working_days
            .iter()
            .map(|d| day(d).ok_or_else(|| CalendarError::Day(d.to_string())))
            .collect::<Result<HashSet<_>, _>>()?;
        let mut hours = working_hours
            .iter()
            .map(|h| WorkingHours::parse(h).ok_or_else(|| CalendarError::Hours(h.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        hours.sort_by_key(|h| h.start);
        for pair in hours.windows(2) {
            if pair[1].start < pair[0].end {
                return Err(CalendarError::Overlap(
                    format!("{:?}", pair[0]),
                    format!("{:?}", pair[1]),
                ));
            }
        }
        let holidays = holidays
            .iter()
            .map(|d| {
                NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                    .map_err(|_| CalendarError::Date(d.to_string()))
            })
            .collect::<Result<BTreeSet<_>, _>>()?;
        if working_days.is_empty() || hours.is_empty() {
            return Err(CalendarError::NeverWorks);
        }
        Ok(Calendar {
            time_zone,
            working_days,
            working_hours: hours,
            holidays,
        })
    }

    /// The working time of one working day (8 hours for 08:30-12:30 and 13:30-17:30): what
    /// "2 days" of a service level means.
    pub fn working_day(&self) -> Duration {
        Duration::minutes(
            self.working_hours
                .iter()
                .map(|h| i64::from(h.end - h.start))
                .sum(),
        )
    }

    fn works_on(&self, date: NaiveDate) -> bool {
        self.working_days.contains(&date.weekday()) && !self.holidays.contains(&date)
    }

    /// The working periods of a local date, as UTC instants (a range that falls in a
    /// daylight-saving gap starts at the first valid instant after it).
    fn periods(&self, date: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.works_on(date) {
            return Vec::new();
        }
        let at = |minutes: u32| -> DateTime<Utc> {
            let (d, m) = if minutes >= 24 * 60 {
                (date.succ_opt().unwrap_or(date), minutes - 24 * 60)
            } else {
                (date, minutes)
            };
            let naive =
                d.and_time(NaiveTime::from_hms_opt(m / 60, m % 60, 0).unwrap_or(NaiveTime::MIN));
            // Ambiguous (clocks going back): the earlier; in a gap (clocks going forward):
            // an hour later, when the wall clock exists again.
            match self.time_zone.from_local_datetime(&naive) {
                chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
                    t.with_timezone(&Utc)
                }
                chrono::LocalResult::None => self
                    .time_zone
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
                    .map(|t| t.with_timezone(&Utc))
                    .unwrap_or_else(|| Utc.from_utc_datetime(&naive)),
            }
        };
        self.working_hours
            .iter()
            .map(|h| (at(h.start), at(h.end)))
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// The instant `business` of working time after `from`. Searches up to ten years ahead.
    pub fn add(&self, from: DateTime<Utc>, business: Duration) -> Option<DateTime<Utc>> {
        let mut left = business;
        let mut date = from.with_timezone(&self.time_zone).date_naive();
        for _ in 0..3660 {
            for (start, end) in self.periods(date) {
                if end <= from {
                    continue;
                }
                let start = start.max(from);
                let here = end - start;
                if left <= here {
                    return Some(start + left);
                }
                left -= here;
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// Working time between `from` and `to` (zero when `to` is not after `from`).
    pub fn between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
        let mut total = Duration::zero();
        if to <= from {
            return total;
        }
        let mut date = from.with_timezone(&self.time_zone).date_naive();
        let last = to.with_timezone(&self.time_zone).date_naive();
        while date <= last {
            for (start, end) in self.periods(date) {
                let (a, b) = (start.max(from), end.min(to));
                if a < b {
                    total += b - a;
                }
            }
            match date.succ_opt() {
                Some(d) => date = d,
                None => break,
            }
        }
        total
    }

    /// Whether `at` falls in working time (no reminders at 3 a.m. on a Sunday).
    pub fn is_working(&self, at: DateTime<Utc>) -> bool {
        let date = at.with_timezone(&self.time_zone).date_naive();
        [date.pred_opt(), Some(date)]
            .into_iter()
            .flatten()
            .flat_map(|d| self.periods(d))
            .any(|(a, b)| a <= at && at < b)
    }
}

fn day(text: &str) -> Option<Weekday> {
    Some(match text.trim().to_ascii_lowercase().as_str() {
        "mon" | "monday" | "lun" => Weekday::Mon,
        "tue" | "tuesday" | "mar" => Weekday::Tue,
        "wed" | "wednesday" | "mer" => Weekday::Wed,
        "thu" | "thursday" | "jeu" => Weekday::Thu,
        "fri" | "friday" | "ven" => Weekday::Fri,
        "sat" | "saturday" | "sam" => Weekday::Sat,
        "sun" | "sunday" | "dim" => Weekday::Sun,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Calendar {
        Calendar::new(
            "Europe/Paris",
            &["mon", "tue", "wed", "thu", "fri"],
            &["08:30-12:30", "13:30-17:30"],
            &["2026-12-25", "2027-01-01"],
        )
        .unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn an_hour_filed_on_friday_evening_falls_due_on_monday_morning() {
        // Friday 2026-11-27 18:00 Paris (17:00 UTC) + 1 business hour = Monday 09:30 Paris.
        let due = paris().add(utc("2026-11-27T17:00:00Z"), Duration::hours(1));
        assert_eq!(due, Some(utc("2026-11-30T08:30:00Z")));
    }

    #[test]
    fn the_lunch_break_and_holidays_do_not_count() {
        let c = paris();
        // Thursday 2026-12-24 12:00 Paris + 2 h: 30 min before lunch, 1 h 30 after it.
        assert_eq!(
            c.add(utc("2026-12-24T11:00:00Z"), Duration::hours(2)),
            Some(utc("2026-12-24T14:00:00Z"))
        );
        // From Thursday 17:00 + 1 h: Christmas (Friday) is a holiday, then the weekend.
        assert_eq!(
            c.add(utc("2026-12-24T16:00:00Z"), Duration::hours(1)),
            Some(utc("2026-12-28T08:00:00Z"))
        );
        assert_eq!(
            c.between(utc("2026-12-24T16:00:00Z"), utc("2026-12-28T08:00:00Z")),
            Duration::hours(1)
        );
    }

    #[test]
    fn a_working_day_is_eight_hours_whatever_the_season() {
        let c = paris();
        // Winter (UTC+1) and summer (UTC+2) Mondays.
        for day in ["2026-11-30", "2026-06-01"] {
            let from = utc(&format!("{day}T00:00:00Z"));
            let to = utc(&format!("{day}T23:00:00Z"));
            assert_eq!(c.between(from, to), Duration::hours(8), "{day}");
        }
        // Across the change to summer time (Sunday 2026-03-29): Monday still has 8 hours.
        assert_eq!(
            c.between(utc("2026-03-28T00:00:00Z"), utc("2026-03-31T00:00:00Z")),
            Duration::hours(8)
        );
    }

    #[test]
    fn round_the_clock_counts_everything_and_working_time_is_known() {
        let c = Calendar::always();
        let t = utc("2026-11-28T03:00:00Z");
        assert_eq!(c.add(t, Duration::hours(5)), Some(t + Duration::hours(5)));
        assert!(c.is_working(t));
        assert!(
            !paris().is_working(utc("2026-11-29T02:00:00Z")),
            "3 a.m. on a Sunday"
        );
        assert!(
            paris().is_working(utc("2026-11-30T08:00:00Z")),
            "Monday 9:00 Paris"
        );
        assert!(
            !paris().is_working(utc("2026-11-30T11:45:00Z")),
            "Monday 12:45, lunch"
        );
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        assert!(matches!(
            Calendar::new("Mars/Olympus", &["mon"], &["09:00-17:00"], &[]),
            Err(CalendarError::TimeZone(_))
        ));
        assert!(matches!(
            Calendar::new("UTC", &["funday"], &["09:00-17:00"], &[]),
            Err(CalendarError::Day(_))
        ));
        assert!(matches!(
            Calendar::new("UTC", &["mon"], &["17:00-09:00"], &[]),
            Err(CalendarError::Hours(_))
        ));
        assert!(matches!(
            Calendar::new("UTC", &["mon"], &["09:00-13:00", "12:00-17:00"], &[]),
            Err(CalendarError::Overlap(..))
        ));
        assert!(matches!(
            Calendar::new("UTC", &["mon"], &["09:00-17:00"], &["25/12/2026"]),
            Err(CalendarError::Date(_))
        ));
        assert_eq!(
            Calendar::new("UTC", &[], &["09:00-17:00"], &[]),
            Err(CalendarError::NeverWorks)
        );
        assert_eq!(WorkingHours::parse("00:00-24:00").unwrap().end, 1440);
    }
}
