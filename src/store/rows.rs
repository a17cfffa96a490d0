//! Rows become domain types here, the same way for every backend: each backend's SQL names
//! its columns as below (times as milliseconds since the epoch, lists as JSON text), and
//! [`Cols`] reads them from its own row type.

use std::str::FromStr;

use sqlx::Row;

use super::*;
use crate::domain::{Fired, SelfServiceHold};

/// The few column reads the decoders need, over any backend's row.
pub(crate) trait Cols {
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError>;
}

macro_rules! cols_for {
    ($row:ty) => {
        impl Cols for $row {
            fn int(&self, column: &str) -> Result<i64, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn text(&self, column: &str) -> Result<String, StoreError> {
                Ok(self.try_get(column)?)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, StoreError> {
                Ok(self.try_get(column)?)
            }
        }
    };
}

cols_for!(sqlx::sqlite::SqliteRow);
cols_for!(sqlx::postgres::PgRow);

/// A stored value that does not parse: the database was edited by hand or by a newer gateway.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

pub(crate) fn parsed<T: FromStr>(row: &impl Cols, column: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    let text = row.text(column)?;
    text.parse()
        .map_err(|e| corrupt(format!("{column} {text:?}: {e}")))
}

pub(crate) fn address(text: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse(text).map_err(corrupt)
}

fn json<T: serde::de::DeserializeOwned>(row: &impl Cols, column: &str) -> Result<T, StoreError> {
    serde_json::from_str(&row.text(column)?).map_err(|e| corrupt(format!("{column}: {e}")))
}

pub(crate) fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// The columns [`ticket_ref`] reads: id, code, status, tier, category, priority,
/// assignee, customer, customer_name, subject, language, reopen_count, created_at,
/// status_since, first_response_at, sla_used_ms, sla_since, sla_fired, wait_ms,
/// reminded_at, vendor_asked_at, vendor, vendor_ticket, suggested_articles (JSON),
/// hold_until, hold_tier, participants (JSON).
pub(crate) fn ticket_ref(row: &impl Cols) -> Result<TicketRef, StoreError> {
    let created_at = row.int("created_at")?;
    Ok(TicketRef {
        id: row.int("id")?,
        code: ReferenceCode::from_stored(row.text("code")?),
        status: parsed(row, "status")?,
        tier: parsed(row, "tier")?,
        category: parsed(row, "category")?,
        priority: parsed(row, "priority")?,
        assignee: row
            .opt_text("assignee")?
            .as_deref()
            .map(address)
            .transpose()?,
        customer: address(&row.text("customer")?)?,
        customer_name: row.opt_text("customer_name")?,
        subject: row.text("subject")?,
        language: parsed(row, "language")?,
        reopen_count: row.int("reopen_count")?.max(0) as u32,
        participants: json::<Vec<String>>(row, "participants")?
            .iter()
            .map(|a| address(a))
            .collect::<Result<_, _>>()?,
        clock: TicketClock {
            created_at,
            status_since: row.opt_int("status_since")?.unwrap_or(created_at),
            first_response_at: row.opt_int("first_response_at")?,
            sla_used_ms: row.int("sla_used_ms")?,
            sla_since: row.opt_int("sla_since")?,
            fired: Fired(row.int("sla_fired")?.clamp(0, 255) as u8),
            wait_ms: row.opt_int("wait_ms")?,
            reminded_at: row.opt_int("reminded_at")?,
            vendor_asked_at: row.opt_int("vendor_asked_at")?,
            self_service: match (row.opt_int("hold_until")?, row.opt_text("hold_tier")?) {
                (Some(until), Some(then)) => Some(SelfServiceHold {
                    until,
                    then: then
                        .parse()
                        .map_err(|e| corrupt(format!("hold_tier {then:?}: {e}")))?,
                }),
                _ => None,
            },
        },
        suggested_articles: json(row, "suggested_articles")?,
        vendor: row.opt_text("vendor")?,
        vendor_ticket: row.opt_text("vendor_ticket")?,
    })
}

/// The columns [`summary`] reads: code, status, tier, customer, customer_name, subject,
/// language, category, priority, assignee, reopen_count, created_at, updated_at,
/// satisfaction, satisfaction_comment, first_response_at, first_response_due,
/// resolution_due, sla_since, vendor, vendor_ticket, suggested_articles (JSON), follows,
/// sla_fired, message_count, participants (JSON).
pub(crate) fn summary(row: &impl Cols) -> Result<TicketSummary, StoreError> {
    let first_response_at = row.opt_int("first_response_at")?.map(format_millis);
    // The breach bits are set with the `sla_breached` event, and never cleared.
    let fired = Fired(row.int("sla_fired")?.clamp(0, 255) as u8);
    Ok(TicketSummary {
        code: row.text("code")?,
        status: parsed(row, "status")?,
        tier: parsed(row, "tier")?,
        customer: row.text("customer")?,
        customer_name: row.opt_text("customer_name")?,
        subject: row.text("subject")?,
        language: parsed(row, "language")?,
        category: parsed(row, "category")?,
        priority: parsed(row, "priority")?,
        assignee: row.opt_text("assignee")?,
        participants: json(row, "participants")?,
        messages: row.int("message_count")?,
        reopen_count: row.int("reopen_count")?,
        satisfaction: row.opt_int("satisfaction")?,
        satisfaction_comment: row.opt_text("satisfaction_comment")?,
        first_response_at: first_response_at.clone(),
        created_at: format_millis(row.int("created_at")?),
        updated_at: format_millis(row.int("updated_at")?),
        sla: SlaView {
            first_response_due: row.opt_int("first_response_due")?.map(format_millis),
            resolution_due: row.opt_int("resolution_due")?.map(format_millis),
            first_response_at,
            breached: [
                (Fired::FIRST_RESPONSE_BREACH, "first_response"),
                (Fired::RESOLUTION_BREACH, "resolution"),
            ]
            .into_iter()
            .filter(|(bit, _)| fired.has(*bit))
            .map(|(_, target)| target.to_string())
            .collect(),
            paused: row.opt_int("sla_since")?.is_none(),
        },
        follows: row.opt_text("follows")?,
        vendor: row.opt_text("vendor")?,
        vendor_ticket: row.opt_text("vendor_ticket")?,
        suggested_articles: json(row, "suggested_articles")?,
    })
}

/// A stored inbound mail a new one may repeat, from its id, ticket and outcome.
/// One line of the overview's backlog: a tier, a status and its number of tickets.
pub(crate) fn backlog_line(
    (tier, status, n): (String, String, i64),
) -> Result<(Tier, TicketStatus, i64), StoreError> {
    Ok((
        Tier::from_str(&tier).map_err(|_| corrupt(format!("tier {tier:?}")))?,
        TicketStatus::from_str(&status).map_err(|_| corrupt(format!("status {status:?}")))?,
        n,
    ))
}

/// The `sla_fired` bits that say a target was missed.
pub(crate) const BREACHED: i32 = (Fired::FIRST_RESPONSE_BREACH | Fired::RESOLUTION_BREACH) as i32;

pub(crate) fn earlier(
    (row, ticket, outcome): (i64, Option<i64>, String),
) -> Result<EarlierMail, StoreError> {
    Ok(EarlierMail {
        row,
        ticket,
        outcome: StoredOutcome::parse(&outcome)
            .ok_or_else(|| corrupt(format!("message {row}: outcome {outcome:?}")))?,
    })
}

pub(crate) fn direction(text: &str) -> Direction {
    if text == Direction::Outbound.as_str() {
        Direction::Outbound
    } else {
        Direction::Inbound
    }
}

pub(crate) fn outcome(text: &str) -> Result<StoredOutcome, StoreError> {
    StoredOutcome::parse(text).ok_or_else(|| corrupt(format!("unknown message outcome {text:?}")))
}

pub(crate) fn event_kind(text: &str) -> Result<EventKind, StoreError> {
    EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| corrupt(format!("event kind {text:?}")))
}

pub(crate) fn actor_kind(text: &str) -> Result<&'static str, StoreError> {
    Actor::KINDS
        .into_iter()
        .find(|k| *k == text)
        .ok_or_else(|| corrupt(format!("actor kind {text:?}")))
}

/// `'a', 'b'` for closed-set names (never user text: safe to write into the SQL).
pub(crate) fn quoted_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}
