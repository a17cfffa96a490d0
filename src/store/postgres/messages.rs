//! Every mail in and out: the checks that recognise a mail read again, the messages, their
//! attachments, and a ticket's thread.

use super::*;
use crate::store::rows::{direction, earlier, outcome};

/// The earliest and latest moments `timestamptz` is given here; a mail's own `Date:` out
/// of that range (a hostile or broken header) is kept as unknown.
const SENT_DATE_RANGE: std::ops::RangeInclusive<Millis> = -62_135_596_800_000..=253_402_300_799_999;

/// One statement for both questions. The rows carrying the Message-ID are gathered first
/// (`MATERIALIZED`), so PostgreSQL reads them through `messages_message_id` whatever plan it
/// caches: asked as two statements each with `ORDER BY id LIMIT 1`, the cached generic plan
/// walked a whole index instead, a cost that grew with the desk (1.1 ms a mail at 2,000
/// messages). At most two rows come back, the first user and the first same mail, so a
/// flood reusing one Message-ID does not send the whole set back for every mail.
pub(super) async fn message_id_seen(
    tx: &mut PgTx,
    message_id: &str,
    content: &MailContent<'_>,
) -> Result<MessageIdSeen, StoreError> {
    let rows: Vec<(i64, Option<i64>, String, bool)> = sqlx::query_as(
        "WITH m AS MATERIALIZED (SELECT id, ticket_id, outcome, direction = 'inbound' \
           AND (content_sha256 = $2 OR (content_sha256 IS NULL AND from_addr IS NOT DISTINCT FROM $3 \
                AND subject = $4 AND body_text = $5)) IS TRUE AS same \
           FROM messages WHERE message_id = $1 AND outcome <> 'duplicate') \
         (SELECT * FROM m ORDER BY id LIMIT 1) \
         UNION ALL (SELECT * FROM m WHERE same ORDER BY id LIMIT 1)",
    )
    .bind(no_nul(Some(message_id)))
    .bind(content.sha256)
    .bind(no_nul(content.from))
    .bind(no_nul(Some(content.subject)))
    .bind(no_nul(Some(content.body_text)))
    .fetch_all(&mut *tx.tx)
    .await?;
    let in_use = rows.iter().map(|row| row.0).min();
    let same = rows
        .into_iter()
        .filter(|row| row.3)
        .min_by_key(|row| row.0)
        .map(|(id, ticket, outcome, _)| earlier((id, ticket, outcome)))
        .transpose()?;
    Ok(MessageIdSeen { same, in_use })
}

/// The rows of one digest gathered first, for the reason given at [`message_id_seen`]: the
/// only index that finds them is `messages_sha`.
pub(super) async fn message_by_sha(
    tx: &mut PgTx,
    sha256: &str,
) -> Result<Option<EarlierMail>, StoreError> {
    let rows: Vec<(i64, Option<i64>, String)> = sqlx::query_as(
        "WITH m AS MATERIALIZED (SELECT id, ticket_id, outcome FROM messages WHERE raw_sha256 = $1 \
         AND direction = 'inbound' AND outcome <> 'duplicate') SELECT * FROM m ORDER BY id LIMIT 1",
    )
    .bind(sha256)
    .fetch_all(&mut *tx.tx)
    .await?;
    rows.into_iter().next().map(earlier).transpose()
}

pub(super) async fn attachments(
    conn: &mut sqlx::PgConnection,
    message: MessageRowId,
) -> Result<Vec<AttachmentView>, StoreError> {
    let rows: Vec<(Option<String>, String, i64)> = sqlx::query_as(
        "SELECT filename, content_type, size FROM attachments WHERE message_id = $1 ORDER BY id",
    )
    .bind(message)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(filename, content_type, size)| AttachmentView {
            filename,
            content_type,
            size,
        })
        .collect())
}

pub(super) async fn thread(
    tx: &mut PgTx,
    ticket: TicketId,
    keep: for<'e> fn(&'e ThreadEntry) -> bool,
) -> Result<Vec<ThreadEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, from_addr, from_name, hd_ms(received_at) AS at, reply_text, outcome_detail, \
         direction, outcome, machine_kind IS NOT NULL AS machine FROM messages \
         WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(&mut *tx.tx)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut entry = ThreadEntry {
            from: get(&row, "from_addr")?,
            from_name: get(&row, "from_name")?,
            detail: get(&row, "outcome_detail")?,
            direction: direction(get(&row, "direction")?),
            outcome: outcome(get(&row, "outcome")?)?,
            machine: get(&row, "machine")?,
            at: get(&row, "at")?,
            text: get(&row, "reply_text")?,
            attachments: Vec::new(),
        };
        if !keep(&entry) {
            continue;
        }
        entry.attachments = attachments(&mut tx.tx, get(&row, "id")?).await?;
        out.push(entry);
    }
    Ok(out)
}

pub(super) async fn exchanged(
    tx: &mut PgTx,
    ticket: TicketId,
) -> Result<Vec<Exchanged>, StoreError> {
    let rows: Vec<(String, String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT message_id, direction, outcome, from_addr, to_addrs::text FROM messages \
         WHERE ticket_id = $1 AND message_id IS NOT NULL ORDER BY id",
    )
    .bind(ticket)
    .fetch_all(&mut *tx.tx)
    .await?;
    rows.into_iter()
        .map(|(message_id, dir, out, from, to)| {
            Ok(Exchanged {
                message_id,
                direction: direction(&dir),
                outcome: outcome(&out)?,
                from,
                to: serde_json::from_str(&to)
                    .map_err(|e| StoreError::Corrupt(format!("messages to_addrs: {e}")))?,
            })
        })
        .collect()
}

pub(super) async fn insert_message(
    tx: &mut PgTx,
    m: NewMessage<'_>,
) -> Result<MessageRowId, StoreError> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO messages (ticket_id, direction, outcome, outcome_detail, source_key, \
         message_id, raw_sha256, raw, from_addr, from_name, reply_to, to_addrs, cc_addrs, subject, \
         in_reply_to, refs, sent_date, body_text, reply_text, quoted_text, language, machine_kind, \
         received_at, content_sha256, from_non_participant, signature) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13::jsonb, $14, \
         $15::jsonb, $16::jsonb, hd_ts($17), $18, $19, $20, $21, $22, hd_ts($23), $24, $25, $26) \
         RETURNING id",
    )
    .bind(m.ticket)
    .bind(m.direction.as_str())
    .bind(m.outcome.as_str())
    .bind(no_nul(m.outcome_detail))
    .bind(m.source_key)
    .bind(no_nul(m.message_id))
    .bind(m.raw_sha256)
    .bind(m.raw)
    .bind(no_nul(m.from_addr))
    .bind(no_nul(m.from_name))
    .bind(no_nul(m.reply_to))
    .bind(jsonb_list(&m.to))
    .bind(jsonb_list(&m.cc))
    .bind(no_nul(Some(m.subject)))
    .bind(jsonb_list(m.in_reply_to))
    .bind(jsonb_list(m.references))
    .bind(m.sent_date.filter(|d| SENT_DATE_RANGE.contains(d)))
    .bind(no_nul(Some(m.body_text)))
    .bind(no_nul(Some(m.reply_text)))
    .bind(no_nul(Some(m.quoted_text)))
    .bind(m.language.map(|l| l.as_str()))
    .bind(m.machine_kind)
    .bind(m.at)
    .bind(m.content_sha256)
    .bind(m.from_non_participant)
    .bind(no_nul(Some(m.signature)))
    .fetch_one(&mut *tx.tx)
    .await?;
    Ok(id)
}

pub(super) async fn insert_attachment(
    tx: &mut PgTx,
    message: MessageRowId,
    a: NewAttachment<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO attachments (message_id, filename, content_type, size, content, \
         body_start, body_end, body_encoding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(message)
    .bind(no_nul(a.filename))
    .bind(no_nul(Some(a.content_type)))
    .bind(a.content.len() as i64)
    .bind(a.raw_body.is_none().then_some(a.content))
    .bind(a.raw_body.map(|r| r.start as i64))
    .bind(a.raw_body.map(|r| r.end as i64))
    .bind(a.raw_body.map(|r| r.encoding.as_str()))
    .execute(&mut *tx.tx)
    .await?;
    Ok(())
}
