//! Every mail in and out, as stored: the source and content checks that recognise a mail read again, the messages, their attachments, and a ticket's thread.

use super::*;

pub(super) async fn source_outcome(
    tx: &mut SqliteTx,
    source_key: &str,
) -> Result<Option<StoredOutcome>, StoreError> {
    let row = tx
        .row(Stmt::new("SELECT outcome FROM messages WHERE source_key = ?").bind(source_key))
        .await?;
    Ok(match row {
        Some(row) => StoredOutcome::parse(&row.try_get::<String, _>(0)?),
        None => None,
    })
}

pub(super) async fn message_id_seen(
    tx: &mut SqliteTx,
    message_id: &str,
    content: &MailContent<'_>,
) -> Result<MessageIdSeen, StoreError> {
    let row = tx
            .waiting
            .fetch_one(
                &mut tx.tx,
                Stmt::new(
                    "WITH same AS (SELECT id, ticket_id, outcome FROM messages \
                       WHERE message_id = ? AND direction = 'inbound' AND outcome <> 'duplicate' \
                       AND (content_sha256 = ? OR (content_sha256 IS NULL AND from_addr IS ? AND subject = ? AND body_text = ?)) \
                       ORDER BY id LIMIT 1) \
                     SELECT same.id, same.ticket_id, same.outcome, \
                       (SELECT id FROM messages WHERE message_id = ? AND outcome <> 'duplicate' ORDER BY id LIMIT 1) \
                     FROM (SELECT 1) LEFT JOIN same ON 1",
                )
                .bind(message_id)
                .bind(content.sha256)
                .bind(content.from)
                .bind(content.subject)
                .bind(content.body_text)
                .bind(message_id),
            )
            .await?;
    let same = match row.try_get::<Option<i64>, _>(0)? {
        Some(_) => Some(earlier_row(&row)?),
        None => None,
    };
    Ok(MessageIdSeen {
        same,
        in_use: row.try_get(3)?,
    })
}

pub(super) async fn message_by_sha(
    tx: &mut SqliteTx,
    sha256: &str,
) -> Result<Option<EarlierMail>, StoreError> {
    let row = tx
            .row(
                Stmt::new(
                    "SELECT id, ticket_id, outcome FROM messages WHERE raw_sha256 = ? AND direction = 'inbound' AND outcome <> 'duplicate' ORDER BY id LIMIT 1",
                )
                .bind(sha256),
            )
            .await?;
    row.as_ref().map(earlier_row).transpose()
}

pub(super) async fn thread(
    tx: &mut SqliteTx,
    ticket: TicketId,
    keep: for<'e> fn(&'e ThreadEntry) -> bool,
) -> Result<Vec<ThreadEntry>, StoreError> {
    let rows = tx
        .rows(
            Stmt::new(
                "SELECT id, from_addr, from_name, received_at, reply_text, outcome_detail, \
                     direction, outcome, machine_kind IS NOT NULL FROM messages \
                     WHERE ticket_id = ? ORDER BY id",
            )
            .bind(ticket),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get(0)?;
        let mut entry = ThreadEntry {
            from: row.try_get(1)?,
            from_name: row.try_get(2)?,
            detail: row.try_get(5)?,
            direction: direction(&row, 6)?,
            outcome: outcome(&row, 7)?,
            machine: row.try_get(8)?,
            at: row.try_get(3)?,
            text: row.try_get(4)?,
            attachments: Vec::new(),
        };
        if !keep(&entry) {
            continue;
        }
        entry.attachments = sqlx::query_as::<_, (Option<String>, String, i64)>(
            "SELECT filename, content_type, size FROM attachments WHERE message_id = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&mut *tx.tx)
        .await?
        .into_iter()
        .map(|(filename, content_type, size)| AttachmentView {
            filename,
            content_type,
            size,
        })
        .collect();
        out.push(entry);
    }
    Ok(out)
}

fn direction(row: &SqliteRow, column: usize) -> Result<Direction, StoreError> {
    Ok(crate::store::rows::direction(
        &row.try_get::<String, _>(column)?,
    ))
}

fn outcome(row: &SqliteRow, column: usize) -> Result<StoredOutcome, StoreError> {
    crate::store::rows::outcome(&row.try_get::<String, _>(column)?)
}

pub(super) async fn exchanged(
    tx: &mut SqliteTx,
    ticket: TicketId,
) -> Result<Vec<Exchanged>, StoreError> {
    let rows = tx
        .rows(
            Stmt::new(
                "SELECT message_id, direction, outcome, from_addr, to_addrs FROM messages \
                 WHERE ticket_id = ? AND message_id IS NOT NULL ORDER BY id",
            )
            .bind(ticket),
        )
        .await?;
    rows.iter()
        .map(|r| {
            let to: String = r.try_get(4)?;
            Ok(Exchanged {
                message_id: r.try_get(0)?,
                direction: direction(r, 1)?,
                outcome: outcome(r, 2)?,
                from: r.try_get(3)?,
                to: serde_json::from_str(&to)
                    .map_err(|e| StoreError::Corrupt(format!("messages to_addrs: {e}")))?,
            })
        })
        .collect()
}

pub(super) async fn insert_message(
    tx: &mut SqliteTx,
    m: NewMessage<'_>,
) -> Result<MessageRowId, StoreError> {
    let id = tx.next_id(IdTable::Messages).await?;
    tx.later(
            Stmt::new(
                "INSERT INTO messages (id, ticket_id, direction, outcome, outcome_detail, source_key, message_id, raw_sha256, raw, \
                 from_addr, from_name, reply_to, to_addrs, cc_addrs, subject, in_reply_to, refs, sent_date, body_text, reply_text, \
                 quoted_text, language, machine_kind, received_at, content_sha256, from_non_participant, signature) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(m.ticket)
            .bind(m.direction.as_str())
            .bind(m.outcome.as_str())
            .bind(m.outcome_detail)
            .bind(m.source_key)
            .bind(m.message_id)
            .bind(m.raw_sha256)
            .bind(m.raw)
            .bind(m.from_addr)
            .bind(m.from_name)
            .bind(m.reply_to)
            .bind(json_list(&m.to))
            .bind(json_list(&m.cc))
            .bind(m.subject)
            .bind(json_list(m.in_reply_to))
            .bind(json_list(m.references))
            .bind(m.sent_date)
            .bind(m.body_text)
            .bind(m.reply_text)
            .bind(m.quoted_text)
            .bind(m.language.map(|l| l.as_str()))
            .bind(m.machine_kind)
            .bind(m.at)
            .bind(m.content_sha256)
            .bind(m.from_non_participant)
            .bind(m.signature),
        )
        .await?;
    Ok(id)
}

pub(super) async fn insert_attachment(
    tx: &mut SqliteTx,
    message: MessageRowId,
    a: NewAttachment<'_>,
) -> Result<(), StoreError> {
    tx.later(
        Stmt::new(
            "INSERT INTO attachments (message_id, filename, content_type, size, content, \
                 body_start, body_end, body_encoding) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(message)
        .bind(a.filename)
        .bind(a.content_type)
        .bind(a.content.len() as i64)
        .bind(a.raw_body.is_none().then_some(a.content))
        .bind(a.raw_body.map(|r| r.start as i64))
        .bind(a.raw_body.map(|r| r.end as i64))
        .bind(a.raw_body.map(|r| r.encoding.as_str())),
    )
    .await
}
