//! Personal data on PostgreSQL: the same erasure and retention purges as on SQLite (see
//! `store::sqlite::erasure` for what is blanked and why), with the rows to erase held as
//! arrays of ids, and the words replaced by the shared rule of `store::scrub`.

use std::collections::BTreeSet;

use super::*;
use crate::store::scrub::{MIN_NAME, replace_ci, replace_text, scrub, scrub_event};

type Tx = sqlx::Transaction<'static, Postgres>;

enum Scope<'a> {
    Person(&'a str),
    ClosedBefore(Millis),
}

pub(super) async fn forget(
    store: &PgStore,
    address: &str,
    by: &str,
    at: Millis,
    dry_run: bool,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.pool.begin().await?;
    let report = erase(&mut tx, Scope::Person(address), by, at).await?;
    if !dry_run {
        tx.commit().await?;
    }
    Ok(report)
}

pub(super) async fn purge_closed(
    store: &PgStore,
    closed_before: Millis,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.pool.begin().await?;
    let report = erase(&mut tx, Scope::ClosedBefore(closed_before), "retention", at).await?;
    if report.tickets > 0 {
        tx.commit().await?;
    }
    Ok(report)
}

const STILL_TO_SEND: &str =
    "SELECT message_row FROM outbox WHERE status IN ('pending', 'sending', 'held')";

pub(super) async fn purge_raw_mail(
    store: &PgStore,
    before: Millis,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let mut tx = store.pool.begin().await?;
    let attachments = sqlx::query(AssertSqlSafe(format!(
        "DELETE FROM attachments WHERE message_id IN (SELECT id FROM messages \
         WHERE received_at < hd_ts($1) AND length(raw) > 0 AND id NOT IN ({STILL_TO_SEND}))"
    )))
    .bind(before)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let messages = sqlx::query(AssertSqlSafe(format!(
        "UPDATE messages SET raw = '\\x'::bytea WHERE received_at < hd_ts($1) AND length(raw) > 0 \
         AND id NOT IN ({STILL_TO_SEND})"
    )))
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
    tx: &mut Tx,
    by: &str,
    reason: &str,
    at: Millis,
    r: &ErasureReport,
) -> Result<i64, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO erasures (at, by_actor, reason, tickets, messages, attachments, outbox, \
         events, participants, mentions) VALUES (hd_ts($1), $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING id",
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
    .await?;
    Ok(id)
}

async fn ids(tx: &mut Tx, sql: &'static str, bind: &[Vec<i64>]) -> Result<Vec<i64>, StoreError> {
    let mut query = sqlx::query_as::<_, (i64,)>(sql);
    for b in bind {
        query = query.bind(b.clone());
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect())
}

async fn erase(
    tx: &mut Tx,
    scope: Scope<'_>,
    by: &str,
    at: Millis,
) -> Result<ErasureReport, StoreError> {
    let reason = match scope {
        Scope::Person(_) => "request",
        Scope::ClosedBefore(_) => "retention_closed_tickets",
    };
    let id = record(tx, by, reason, at, &ErasureReport::default()).await?;
    let placeholder = format!("erased-{id}@erased.invalid");
    let mut addresses: BTreeSet<String> = BTreeSet::new();
    let (tickets, messages): (Vec<i64>, Vec<i64>) = match scope {
        Scope::Person(address) => {
            addresses.insert(address.to_lowercase());
            let tickets: Vec<i64> =
                sqlx::query_as::<_, (i64,)>("SELECT id FROM tickets WHERE customer = $1")
                    .bind(address)
                    .fetch_all(&mut **tx)
                    .await?
                    .into_iter()
                    .map(|(id,)| id)
                    .collect();
            let messages: Vec<i64> = sqlx::query_as::<_, (i64,)>(
                "SELECT id FROM messages WHERE ticket_id = ANY($1) OR lower(from_addr) = $2",
            )
            .bind(&tickets)
            .bind(address.to_lowercase())
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
            (tickets, messages)
        }
        Scope::ClosedBefore(before) => {
            let tickets: Vec<i64> = sqlx::query_as::<_, (i64,)>(
                "SELECT id FROM tickets WHERE status = 'closed' AND status_since < hd_ts($1) \
                 AND customer NOT LIKE 'erased-%@erased.invalid'",
            )
            .bind(before)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect();
            let people: Vec<(String,)> = sqlx::query_as(
                "SELECT address FROM ticket_participants WHERE ticket_id = ANY($1) \
                 UNION SELECT customer FROM tickets WHERE id = ANY($1)",
            )
            .bind(&tickets)
            .fetch_all(&mut **tx)
            .await?;
            addresses.extend(people.into_iter().map(|(a,)| a));
            let messages = ids(
                tx,
                "SELECT id FROM messages WHERE ticket_id = ANY($1)",
                std::slice::from_ref(&tickets),
            )
            .await?;
            (tickets, messages)
        }
    };
    let address_list: Vec<String> = addresses.iter().cloned().collect();
    // Names as the person's mail and tickets gave them.
    let found: Vec<(String,)> = sqlx::query_as(
        "SELECT customer_name FROM tickets WHERE id = ANY($1) AND customer_name IS NOT NULL \
         UNION SELECT from_name FROM messages WHERE id = ANY($2) AND from_name IS NOT NULL \
         AND lower(from_addr) = ANY($3)",
    )
    .bind(&tickets)
    .bind(&messages)
    .bind(&address_list)
    .fetch_all(&mut **tx)
    .await?;
    let names: BTreeSet<String> = found
        .into_iter()
        .map(|(n,)| n.trim().to_string())
        .filter(|n| n.chars().count() >= MIN_NAME)
        .collect();

    let mut report = ErasureReport {
        tickets: sqlx::query(
            "UPDATE tickets SET customer = $1, customer_name = NULL, subject = '[erased]', \
             thread_key = 'erased:' || id, satisfaction_comment = NULL WHERE id = ANY($2)",
        )
        .bind(&placeholder)
        .bind(&tickets)
        .execute(&mut **tx)
        .await?
        .rows_affected(),
        ..ErasureReport::default()
    };
    report.attachments = sqlx::query("DELETE FROM attachments WHERE message_id = ANY($1)")
        .bind(&messages)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    report.messages = sqlx::query(
        "UPDATE messages SET raw = '\\x'::bytea, raw_sha256 = 'erased', content_sha256 = NULL, \
         message_id = NULL, \
         from_name = CASE WHEN lower(from_addr) = ANY($1) THEN NULL ELSE from_name END, \
         from_addr = CASE WHEN lower(from_addr) = ANY($1) THEN $2 ELSE from_addr END, \
         reply_to = NULL, subject = '', body_text = '', reply_text = '', quoted_text = '', \
         signature = '', in_reply_to = '[]', refs = '[]', outcome_detail = NULL \
         WHERE id = ANY($3)",
    )
    .bind(&address_list)
    .bind(&placeholder)
    .bind(&messages)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    // Their recipients' lists name the people too.
    let lists: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT id, to_addrs::text, cc_addrs::text FROM messages WHERE id = ANY($1)",
    )
    .bind(&messages)
    .fetch_all(&mut **tx)
    .await?;
    for (id, to, cc) in lists {
        let (new_to, new_cc) = (
            scrub(&to, &addresses, &placeholder),
            scrub(&cc, &addresses, &placeholder),
        );
        if new_to != to || new_cc != cc {
            sqlx::query(
                "UPDATE messages SET to_addrs = $1::jsonb, cc_addrs = $2::jsonb WHERE id = $3",
            )
            .bind(new_to)
            .bind(new_cc)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        }
    }
    // Participants: the erased tickets keep a placeholder; a person forgotten is taken off
    // every other ticket. (Where the placeholder is there already, the row goes.)
    let person = matches!(scope, Scope::Person(_));
    report.participants = sqlx::query(
        "UPDATE ticket_participants p SET address = $1 WHERE ticket_id = ANY($2) \
         AND address = ANY($3) AND NOT EXISTS (SELECT 1 FROM ticket_participants q \
         WHERE q.ticket_id = p.ticket_id AND q.address = $1)",
    )
    .bind(&placeholder)
    .bind(&tickets)
    .bind(&address_list)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    report.participants += sqlx::query(
        "DELETE FROM ticket_participants WHERE address = ANY($1) AND (ticket_id = ANY($2) OR $3)",
    )
    .bind(&address_list)
    .bind(&tickets)
    .bind(person)
    .execute(&mut **tx)
    .await?
    .rows_affected();

    // The outbox: what was to go to the person, or about the erased tickets, is not sent.
    let mut outbox_ids: BTreeSet<i64> = ids(
        tx,
        "SELECT id FROM outbox WHERE ticket_id = ANY($1) OR message_row = ANY($2)",
        &[tickets.clone(), messages.clone()],
    )
    .await?
    .into_iter()
    .collect();
    if person {
        for address in &addresses {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT id FROM outbox WHERE strpos(lower(rcpt_to::text), $1) > 0 \
                 OR lower(held_for) = $1 OR strpos(lower(last_error), $1) > 0",
            )
            .bind(address)
            .fetch_all(&mut **tx)
            .await?;
            outbox_ids.extend(rows.into_iter().map(|(id,)| id));
        }
    }
    for id in &outbox_ids {
        let (rcpt_to, held_for, last_error): (String, Option<String>, Option<String>) =
            sqlx::query_as("SELECT rcpt_to::text, held_for, last_error FROM outbox WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        let scrub = |text: &str| scrub(text, &addresses, &placeholder);
        sqlx::query(
            "UPDATE outbox SET rcpt_to = $1::jsonb, held_for = $2, last_error = $3, \
             status = CASE WHEN status IN ('pending', 'sending', 'held') THEN 'superseded' \
             ELSE status END, lease_until = NULL, lease_owner = NULL WHERE id = $4",
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
    let mut event_ids: BTreeSet<i64> = ids(
        tx,
        "SELECT id FROM events WHERE ticket_id = ANY($1) OR message_row = ANY($2)",
        &[tickets.clone(), messages.clone()],
    )
    .await?
    .into_iter()
    .collect();
    if person {
        for needle in addresses.iter().chain(names.iter()) {
            let rows: Vec<(i64,)> = sqlx::query_as(
                "SELECT id FROM events WHERE strpos(lower(detail::text), lower($1)) > 0 \
                 OR lower(actor) = lower($1)",
            )
            .bind(needle)
            .fetch_all(&mut **tx)
            .await?;
            event_ids.extend(rows.into_iter().map(|(id,)| id));
        }
    }
    for id in &event_ids {
        let (actor, detail): (String, String) =
            sqlx::query_as("SELECT actor, detail::text FROM events WHERE id = $1")
                .bind(id)
                .fetch_one(&mut **tx)
                .await?;
        let (actor, detail) = scrub_event(actor, &detail, &addresses, &names, &placeholder);
        sqlx::query("UPDATE events SET actor = $1, detail = $2::jsonb WHERE id = $3")
            .bind(&actor)
            .bind(&detail)
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
            let rows = sqlx::query(
                "SELECT id, raw, to_addrs::text AS to_addrs, cc_addrs::text AS cc_addrs, subject, \
                 body_text, reply_text, quoted_text, from_name FROM messages \
                 WHERE NOT (id = ANY($2)) AND ( \
                 strpos(lower(encode(raw, 'escape')), lower($1)) > 0 \
                 OR strpos(lower(to_addrs::text), lower($1)) > 0 \
                 OR strpos(lower(cc_addrs::text), lower($1)) > 0 \
                 OR strpos(lower(body_text), lower($1)) > 0 \
                 OR strpos(lower(subject), lower($1)) > 0)",
            )
            .bind(needle)
            .bind(&messages)
            .fetch_all(&mut **tx)
            .await?;
            let with = if addresses.contains(needle) {
                placeholder.as_str()
            } else {
                "[erased]"
            };
            for row in rows {
                let fix = |t: &str| replace_text(t, needle, with);
                let raw: Vec<u8> = get(&row, "raw")?;
                let texts: Vec<String> = [
                    "to_addrs",
                    "cc_addrs",
                    "subject",
                    "body_text",
                    "reply_text",
                    "quoted_text",
                ]
                .into_iter()
                .map(|c| get::<String>(&row, c))
                .collect::<Result<_, _>>()?;
                let from_name: Option<String> = get(&row, "from_name")?;
                let new_raw = replace_ci(&raw, needle.as_bytes(), with.as_bytes());
                let fixed: Vec<String> = texts.iter().map(|t| fix(t)).collect();
                let changed = new_raw.is_some()
                    || fixed != texts
                    || from_name.as_deref().is_some_and(|n| fix(n) != n);
                if !changed {
                    continue;
                }
                let id: i64 = get(&row, "id")?;
                sqlx::query(
                    "UPDATE messages SET raw = $1, to_addrs = $2::jsonb, cc_addrs = $3::jsonb, \
                     subject = $4, body_text = $5, reply_text = $6, quoted_text = $7, \
                     from_name = $8 WHERE id = $9",
                )
                .bind(new_raw.unwrap_or(raw))
                .bind(&fixed[0])
                .bind(&fixed[1])
                .bind(&fixed[2])
                .bind(&fixed[3])
                .bind(&fixed[4])
                .bind(&fixed[5])
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
        "UPDATE erasures SET tickets = $1, messages = $2, attachments = $3, outbox = $4, \
         events = $5, participants = $6, mentions = $7 WHERE id = $8",
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
