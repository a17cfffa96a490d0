//! The figures of one group, and how facts add up to them. Field names are the contract
//! of `helpdesk stats --json` and `--csv`: scripts rely on them.

use serde::Serialize;

use super::history::{Counted, Fact};
use crate::desk::events::EscalationCause;
use crate::desk::wording::Target;

/// Times, in whole seconds, of the service-level clock (working time and plain time).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Durations {
    pub count: u64,
    pub median_business_s: Option<i64>,
    pub p90_business_s: Option<i64>,
    pub median_wall_s: Option<i64>,
    pub p90_wall_s: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Sla {
    pub first_response_met: u64,
    pub first_response_breached: u64,
    pub resolution_met: u64,
    pub resolution_breached: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Escalations {
    pub by_agent: u64,
    pub by_sla: u64,
    pub by_reopen: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Csat {
    pub responses: u64,
    pub average: Option<f64>,
    pub positive_share: Option<f64>,
}

/// One group's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    pub created: u64,
    pub resolved: u64,
    pub closed: u64,
    pub backlog: u64,
    pub backlog_age_p50_s: Option<i64>,
    pub first_response: Durations,
    pub resolution: Durations,
    pub reopened: u64,
    pub reopen_rate: Option<f64>,
    pub reopened_30d: u64,
    pub sla: Sla,
    pub escalations: Escalations,
    pub self_service: u64,
    pub csat: Csat,
    pub agent_replies: u64,
}

/// A rating, with its comment, as the weekly report lists them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rating {
    pub score: u8,
    pub comment: Option<String>,
}

/// What a group's figures are made of, before the medians.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    figures: Figures,
    backlog_ages_ms: Vec<i64>,
    first_response: Vec<(i64, i64)>,
    resolution: Vec<(i64, i64)>,
    ratings: Vec<Rating>,
}

impl Tally {
    pub fn count(&mut self, counted: &Counted) {
        let f = &mut self.figures;
        match &counted.fact {
            Fact::Created => f.created += 1,
            Fact::FirstResponse { elapsed, met, .. } => {
                self.first_response
                    .push((elapsed.business_ms, elapsed.wall_ms));
                if *met {
                    f.sla.first_response_met += 1;
                }
            }
            Fact::AgentReply { .. } => f.agent_replies += 1,
            Fact::Resolved {
                elapsed,
                met,
                self_service,
                back_within_7d,
                back_within_30d,
            } => {
                f.resolved += 1;
                self.resolution.push((elapsed.business_ms, elapsed.wall_ms));
                f.sla.resolution_met += u64::from(*met);
                f.self_service += u64::from(*self_service);
                f.reopened += u64::from(*back_within_7d);
                f.reopened_30d += u64::from(*back_within_30d);
            }
            Fact::Closed => f.closed += 1,
            Fact::Breached(Target::FirstResponse) => f.sla.first_response_breached += 1,
            Fact::Breached(Target::Resolution) => f.sla.resolution_breached += 1,
            Fact::Escalated(cause) => match cause {
                EscalationCause::Agent => f.escalations.by_agent += 1,
                EscalationCause::Sla => f.escalations.by_sla += 1,
                EscalationCause::Reopens => f.escalations.by_reopen += 1,
            },
            Fact::Rated { score, comment } => self.ratings.push(Rating {
                score: *score,
                comment: comment.clone(),
            }),
            Fact::CameBack { .. } => {}
        }
    }

    /// A ticket in the backlog, `age_ms` old.
    pub fn backlog(&mut self, age_ms: i64) {
        self.figures.backlog += 1;
        self.backlog_ages_ms.push(age_ms);
    }

    /// First responses' business time, in milliseconds (for the chart's bands).
    pub fn first_response_business_ms(&self) -> impl Iterator<Item = i64> + '_ {
        self.first_response.iter().map(|p| p.0)
    }

    /// The backlog's ages, in milliseconds.
    pub fn backlog_ages_ms(&self) -> impl Iterator<Item = i64> + '_ {
        self.backlog_ages_ms.iter().copied()
    }

    pub fn ratings(&self) -> &[Rating] {
        &self.ratings
    }

    pub fn figures(&self) -> Figures {
        let mut f = self.figures.clone();
        f.backlog_age_p50_s = percentile(&mut self.backlog_ages_ms.clone(), 50).map(seconds);
        f.first_response = durations(&self.first_response);
        f.resolution = durations(&self.resolution);
        f.reopen_rate = ratio(f.reopened, f.resolved);
        let responses = self.ratings.len() as u64;
        let sum: u64 = self.ratings.iter().map(|r| u64::from(r.score)).sum();
        let positive = self.ratings.iter().filter(|r| r.score >= 4).count() as u64;
        f.csat = Csat {
            responses,
            average: ratio(sum, responses),
            positive_share: ratio(positive, responses),
        };
        f
    }
}

/// `a / b`, to four decimals; `None` when there is nothing to divide.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| (a as f64 / b as f64 * 10_000.0).round() / 10_000.0)
}

fn seconds(ms: i64) -> i64 {
    ms.div_euclid(1000)
}

fn durations(pairs: &[(i64, i64)]) -> Durations {
    let mut business: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    let mut wall: Vec<i64> = pairs.iter().map(|p| p.1).collect();
    Durations {
        count: pairs.len() as u64,
        median_business_s: percentile(&mut business, 50).map(seconds),
        p90_business_s: percentile(&mut business, 90).map(seconds),
        median_wall_s: percentile(&mut wall, 50).map(seconds),
        p90_wall_s: percentile(&mut wall, 90).map(seconds),
    }
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the values at or
/// below it (the median of 4 values is the 2nd). Always one of the values, never an average
/// of two: "90% answered within" this time is then true of a real ticket.
pub fn percentile(values: &mut [i64], p: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = (values.len() * p as usize).div_ceil(100).max(1);
    let (_, nth, _) = values.select_nth_unstable(rank - 1);
    Some(*nth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [7], 90), Some(7));
        assert_eq!(percentile(&mut [4, 1, 3, 2], 50), Some(2));
        assert_eq!(percentile(&mut [5, 1, 4, 2, 3], 50), Some(3));
        let mut ten: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(percentile(&mut ten, 90), Some(9));
        let mut eleven: Vec<i64> = (1..=11).collect();
        assert_eq!(percentile(&mut eleven, 90), Some(10));
    }

    #[test]
    fn ratios_round_and_refuse_zero() {
        assert_eq!(ratio(1, 3), Some(0.3333));
        assert_eq!(ratio(0, 0), None);
        assert_eq!(ratio(2, 2), Some(1.0));
    }
}
