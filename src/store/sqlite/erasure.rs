//! Personal data: a person's erasure (`helpdesk customers forget`) and the retention purges.
//!
//! An erasure keeps the rows and blanks what is personal in them: a ticket stays a ticket
//! (its status, tier, category, times, events' kinds), so every figure of the statistics
//! stays what it was, but its customer becomes `erased-N@erased.invalid`, its subject and
//! every message's raw mail, text and attachments are gone, and the person's address and
//! name are replaced wherever else they were written (other tickets' mail that copied
//! them, events, the outbox). Each erasure is recorded in `erasures` (when, by whom, how
//! many rows), never with the address.

use std::collections::BTreeSet;

use sqlx::Row;

use super::{ImmediateTx, SqliteStore};
use crate::store::scrub::{MIN_NAME, replace_ci, replace_text, scrub, scrub_event};
use crate::store::{ErasureReport, Millis, StoreError};

/// What one erasure covers.
enum Scope<'a> {
    /// A person: their tickets, their mail anywhere, and every mention of them.
    Person(&'a str),
    /// Closed tickets past retention: those tickets' rows only (their customers may have
    /// newer tickets, which stay as they are).
    ClosedBefore(Millis),
}

/// A message that names the person: id, raw, to, cc, subject, body, reply, quoted, from name.
type MentionRow = (
    i64,
    Vec<u8>,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

pub(super) async fn forget(
    store: &SqliteStore,
    address: &str,
    by: &str,
    at: Millis,
    dry_run: bool,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.begin_immediate().await?;
    let report = erase(&mut tx, Scope::Person(address), by, at).await?;
    if !dry_run {
        tx.commit().await?;
    }
    // A dry run ends here: dropping the transaction rolls every change back.
    Ok(report)
}

pub(super) async fn purge_closed(
    store: &SqliteStore,
    closed_before: Millis,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.begin_immediate().await?;
    let report = erase(&mut tx, Scope::ClosedBefore(closed_before), "retention", at).await?;
    if report.tickets > 0 {
        tx.commit().await?;
    }
    Ok(report)
}

/// Drops the raw mail (and attachments, which point into it) of messages received before
/// `before`, keeping the parsed text and everything the desk counts. Mail still to be
/// sent keeps its raw.
pub(super) async fn purge_raw_mail(
    store: &SqliteStore,
    before: Millis,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.begin_immediate().await?;
    let attachments = sqlx::query(
        "DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages \
         WHERE received_at < ? AND length(raw) > 0 AND id NOT IN \
         (SELECT message_row FROM outbox WHERE status IN ('pending', 'sending', 'held')))",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let messages = sqlx::query(
        "UPDATE messages SET raw = x'' WHERE received_at < ? AND length(raw) > 0 \
         AND id NOT IN (SELECT message_row FROM outbox WHERE status IN ('pending', 'sending', 'held'))",
    )
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let report = ErasureReport {
        messages,
        attachments,
        ..ErasureReport::default()
    };
    if messages > 0 {
        record(&mut tx, "retention", "retention_raw_mail", at, &report).await?;
        tx.commit().await?;
    }
    Ok(report)
}

async fn record(
    tx: &mut ImmediateTx,
    by: &str,
    reason: &str,
    at: Millis,
    r: &ErasureReport,
) -> Result<i64, StoreError> {
    let id = sqlx::query(
        "INSERT INTO erasures (at, by_actor, reason, tickets, messages, attachments, outbox, \
         events, participants, mentions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(at)
    .bind(by)
    .bind(reason)
    .bind(r.tickets as i64)
    .bind(r.messages as i64)
    .bind(r.attachments as i64)
    .bind(r.outbox as i64)
    .bind(r.events as i64)
    .bind(r.participants as i64)
    .bind(r.mentions as i64)
    .fetch_one(&mut **tx)
    .await?
    .get::<i64, _>(0);
    Ok(id)
}

async fn erase(
    tx: &mut ImmediateTx,
    scope: Scope<'_>,
    by: &str,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let reason = match scope {
        Scope::Person(_) => "request",
        Scope::ClosedBefore(_) => "retention_closed_tickets",
    };
    // The record first: its id names the placeholder address.
    let id = record(tx, by, reason, at, &ErasureReport::default()).await?;
    let placeholder = format!("erased-{id}@erased.invalid");
    sqlx::raw_sql(
        "CREATE TEMP TABLE IF NOT EXISTS erase_tickets (id INTEGER PRIMARY KEY); \
         CREATE TEMP TABLE IF NOT EXISTS erase_messages (id INTEGER PRIMARY KEY); \
         DELETE FROM erase_tickets; DELETE FROM erase_messages;",
    )
    .execute(&mut **tx)
    .await?;
    // The tickets, and the people whose words are in them.
    let mut addresses: BTreeSet<String> = BTreeSet::new();
    match scope {
        Scope::Person(address) => {
            addresses.insert(address.to_lowercase());
            sqlx::query("INSERT INTO erase_tickets SELECT id FROM tickets WHERE customer = ?")
                .bind(address)
                .execute(&mut **tx)
                .await?;
            sqlx::query(
                "INSERT INTO erase_messages SELECT id FROM messages \
                 WHERE ticket_id IN (SELECT id FROM erase_tickets) OR lower(from_addr) = ?",
            )
            .bind(address)
            .execute(&mut **tx)
            .await?;
        }
        Scope::ClosedBefore(before) => {
            sqlx::query(
                "INSERT INTO erase_tickets SELECT id FROM tickets \
                 WHERE status = 'closed' AND status_since < ? AND customer NOT LIKE 'erased-%@erased.invalid'",
            )
            .bind(before)
            .execute(&mut **tx)
            .await?;
            for row in sqlx::query(
                "SELECT DISTINCT address FROM ticket_participants \
                 WHERE ticket_id IN (SELECT id FROM erase_tickets) \
                 UNION SELECT customer FROM tickets WHERE id IN (SELECT id FROM erase_tickets)",
            )
            .fetch_all(&mut **tx)
            .await?
            {
                addresses.insert(row.get::<String, _>(0));
            }
            sqlx::query(
                "INSERT INTO erase_messages SELECT id FROM messages \
                 WHERE ticket_id IN (SELECT id FROM erase_tickets)",
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    // Names as the person's mail and tickets gave them.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for row in sqlx::query(
        "SELECT customer_name FROM tickets WHERE id IN (SELECT id FROM erase_tickets) \
         AND customer_name IS NOT NULL \
         UNION SELECT from_name FROM messages WHERE id IN (SELECT id FROM erase_messages) \
         AND from_name IS NOT NULL AND lower(from_addr) IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&addresses).unwrap_or_default())
    .fetch_all(&mut **tx)
    .await?
    {
        let name: String = row.get(0);
        let name = name.trim().to_string();
        if name.chars().count() >= MIN_NAME {
            names.insert(name);
        }
    }

    let tickets = sqlx::query(
        "UPDATE tickets SET customer = ?, customer_name = NULL, subject = '[erased]', \
         thread_key = 'erased:' || id, satisfaction_comment = NULL \
         WHERE id IN (SELECT id FROM erase_tickets)",
    )
    .bind(&placeholder)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let mut report = ErasureReport {
        tickets,
        ..ErasureReport::default()
    };
    report.attachments =
        sqlx::query("DELETE FROM attachments WHERE message_id IN (SELECT id FROM erase_messages)")
            .execute(&mut **tx)
            .await?
            .rows_affected();
    let addresses_json = serde_json::to_string(&addresses).unwrap_or_default();
    report.messages = sqlx::query(
        "UPDATE messages SET raw = x'', raw_sha256 = 'erased', content_sha256 = NULL, \
         message_id = NULL, from_name = CASE WHEN lower(from_addr) IN (SELECT value FROM json_each(?1)) \
         THEN NULL ELSE from_name END, \
         from_addr = CASE WHEN lower(from_addr) IN (SELECT value FROM json_each(?1)) THEN ?2 \
         ELSE from_addr END, reply_to = NULL, subject = '', body_text = '', reply_text = '', \
         quoted_text = '', signature = '', in_reply_to = '[]', refs = '[]', outcome_detail = NULL \
         WHERE id IN (SELECT id FROM erase_messages)",
    )
    .bind(&addresses_json)
    .bind(&placeholder)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // Their recipients' lists name the people too.
    let lists: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, to_addrs, cc_addrs FROM messages WHERE id IN (SELECT id FROM erase_messages)",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (id, to, cc) in lists {
        let (new_to, new_cc) = (
            scrub(&to, &addresses, &placeholder),
            scrub(&cc, &addresses, &placeholder),
        );
        if new_to != to || new_cc != cc {
            sqlx::query("UPDATE messages SET to_addrs = ?, cc_addrs = ? WHERE id = ?")
                .bind(new_to)
                .bind(new_cc)
                .bind(id)
                .execute(&mut **tx)
                .await?;
        }
    }
    // Participants: the erased tickets keep a placeholder (the counts of who was on a
    // ticket stay right); a person forgotten is taken off every other ticket.
    report.participants = sqlx::query(
        "UPDATE OR IGNORE ticket_participants SET address = ? \
         WHERE ticket_id IN (SELECT id FROM erase_tickets) \
         AND address IN (SELECT value FROM json_each(?))",
    )
    .bind(&placeholder)
    .bind(&addresses_json)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    report.participants += sqlx::query(
        "DELETE FROM ticket_participants WHERE address IN (SELECT value FROM json_each(?)) \
         AND (ticket_id IN (SELECT id FROM erase_tickets) OR ?)",
    )
    .bind(&addresses_json)
    .bind(matches!(scope, Scope::Person(_)))
    .execute(&mut **tx)
    .await?
    .rows_affected();

    // The outbox: what was to go to the person, or about the erased tickets, is not sent
    // any more (its mail is blank now); every row keeps its place in the counts.
    let person = matches!(scope, Scope::Person(_));
    let mut outbox_ids: BTreeSet<i64> = sqlx::query(
        "SELECT id FROM outbox WHERE ticket_id IN (SELECT id FROM erase_tickets) \
         OR message_row IN (SELECT id FROM erase_messages)",
    )
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if person {
        for address in &addresses {
            for row in sqlx::query(
                "SELECT id FROM outbox WHERE instr(lower(rcpt_to), ?) > 0 \
                 OR lower(held_for) = ? OR instr(lower(last_error), ?) > 0",
            )
            .bind(address)
            .bind(address)
            .bind(address)
            .fetch_all(&mut **tx)
            .await?
            {
                outbox_ids.insert(row.get(0));
            }
        }
    }
    for id in &outbox_ids {
        let (rcpt_to, held_for, last_error): (String, Option<String>, Option<String>) =
            sqlx::query_as("SELECT rcpt_to, held_for, last_error FROM outbox WHERE id = ?")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        let scrub = |text: &str| scrub(text, &addresses, &placeholder);
        sqlx::query(
            "UPDATE outbox SET rcpt_to = ?, held_for = ?, last_error = ?, \
             status = CASE WHEN status IN ('pending', 'sending', 'held') THEN 'superseded' \
             ELSE status END, lease_until = NULL, lease_owner = NULL WHERE id = ?",
        )
        .bind(scrub(&rcpt_to))
        .bind(held_for.as_deref().map(scrub))
        .bind(last_error.as_deref().map(scrub))
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    report.outbox = outbox_ids.len() as u64;

    // Events: the erased tickets' own, and (for a person) any other naming them.
    let mut event_ids: BTreeSet<i64> = sqlx::query(
        "SELECT id FROM events WHERE ticket_id IN (SELECT id FROM erase_tickets) \
         OR message_row IN (SELECT id FROM erase_messages)",
    )
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.get(0))
    .collect();
    if person {
        for needle in addresses.iter().chain(names.iter()) {
            for row in sqlx::query(
                "SELECT id FROM events WHERE instr(lower(detail), lower(?1)) > 0 \
                 OR lower(actor) = lower(?1)",
            )
            .bind(needle)
            .fetch_all(&mut **tx)
            .await?
            {
                event_ids.insert(row.get(0));
            }
        }
    }
    for id in &event_ids {
        let (actor, detail): (String, String) =
            sqlx::query_as("SELECT actor, detail FROM events WHERE id = ?")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        let (actor, text) = scrub_event(actor, &detail, &addresses, &names, &placeholder);
        sqlx::query("UPDATE events SET actor = ?, detail = ? WHERE id = ?")
            .bind(&actor)
            .bind(&text)
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    report.events = event_ids.len() as u64;

    // Mentions elsewhere (a person forgotten): other mail that copied or quoted their
    // address or name keeps its place, with those words replaced.
    if person {
        let mut touched: BTreeSet<i64> = BTreeSet::new();
        for needle in addresses.iter().chain(names.iter()) {
            let rows: Vec<MentionRow> =
                sqlx::query_as(
                    "SELECT id, raw, to_addrs, cc_addrs, subject, body_text, reply_text, quoted_text, from_name \
                     FROM messages WHERE id NOT IN (SELECT id FROM erase_messages) AND ( \
                     instr(lower(CAST(raw AS TEXT)), lower(?1)) > 0 OR instr(lower(to_addrs), lower(?1)) > 0 \
                     OR instr(lower(cc_addrs), lower(?1)) > 0 OR instr(lower(body_text), lower(?1)) > 0 \
                     OR instr(lower(subject), lower(?1)) > 0)",
                )
                .bind(needle)
                .fetch_all(&mut **tx)
                .await?;
            let with = if addresses.contains(needle) {
                placeholder.as_str()
            } else {
                "[erased]"
            };
            for (id, raw, to, cc, subject, body, reply, quoted, from_name) in rows {
                let fix = |t: &str| replace_text(t, needle, with);
                let new_raw = replace_ci(&raw, needle.as_bytes(), with.as_bytes());
                let texts = [&to, &cc, &subject, &body, &reply, &quoted];
                let changed = new_raw.is_some()
                    || texts.iter().any(|t| fix(t) != **t)
                    || from_name.as_deref().is_some_and(|n| fix(n) != n);
                if !changed {
                    continue;
                }
                let raw = new_raw.unwrap_or(raw);
                sqlx::query(
                    "UPDATE messages SET raw = ?, to_addrs = ?, cc_addrs = ?, subject = ?, \
                     body_text = ?, reply_text = ?, quoted_text = ?, from_name = ? WHERE id = ?",
                )
                .bind(raw)
                .bind(fix(&to))
                .bind(fix(&cc))
                .bind(fix(&subject))
                .bind(fix(&body))
                .bind(fix(&reply))
                .bind(fix(&quoted))
                .bind(from_name.as_deref().map(fix))
                .bind(id)
                .execute(&mut **tx)
                .await?;
                touched.insert(id);
            }
        }
        report.mentions = touched.len() as u64;
    }

    sqlx::query(
        "UPDATE erasures SET tickets = ?, messages = ?, attachments = ?, outbox = ?, events = ?, \
         participants = ?, mentions = ? WHERE id = ?",
    )
    .bind(report.tickets as i64)
    .bind(report.messages as i64)
    .bind(report.attachments as i64)
    .bind(report.outbox as i64)
    .bind(report.events as i64)
    .bind(report.participants as i64)
    .bind(report.mentions as i64)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    report.names = names.len() as u64;
    report.erasure = Some(id);
    Ok(report)
}
