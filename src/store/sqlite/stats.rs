//! What the statistics read: the tickets a period touches, each with its log.
//!
//! A 30-day period of a 1,000,000-ticket desk is some 40,000 tickets and 330,000 events.
//! Through sqlx each row costs ~12 µs on top of SQLite's own work (every value copied under
//! SQLite's mutex, then sent across threads one row at a time: measured with `perf`, 5 s of
//! the command's 5.3 s), so this read goes through its own read-only connection with
//! rusqlite, on a blocking thread, where a row costs what SQLite costs; and it hands over
//! each ticket as soon as its log is read, so the statistics replay it on the other core.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::*;

use crate::store::rows::{actor_kind, event_kind};

/// `'a', 'b'` for kinds (closed-set names, never user text: safe to write into the SQL).
fn kind_list(kinds: &[EventKind]) -> String {
    crate::store::rows::quoted_list(kinds.iter().map(|k| k.as_str()))
}

pub(super) async fn stats_input(
    store: &SqliteStore,
    since: Millis,
    until: Millis,
    counted: &[EventKind],
    replayed: &[EventKind],
) -> Result<StatsInput, StoreError> {
    store.check_file()?;
    let Some((path, _)) = store.file.clone() else {
        return Err(StoreError::Corrupt(
            "statistics read the database file; an in-memory database has none".into(),
        ));
    };
    let (counted, replayed) = (kind_list(counted), replayed.to_vec());
    let (follow_ups_tx, follow_ups) = tokio::sync::oneshot::channel();
    let (tickets_tx, tickets) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let sent = Reader {
            since,
            until,
            counted: &counted,
            replayed: &replayed,
        }
        .read(&path, follow_ups_tx, &tickets_tx);
        if let Err(e) = sent {
            // The reader went: nobody to tell.
            let _ = tickets_tx.blocking_send(Err(e));
        }
    });
    let follow_ups = follow_ups
        .await
        .map_err(|_| StoreError::Corrupt("the statistics' read stopped".into()))??;
    Ok(StatsInput {
        follow_ups,
        tickets,
    })
}

type FollowUps = tokio::sync::oneshot::Sender<Result<Vec<(TicketId, Millis)>, StoreError>>;
type Tickets = tokio::sync::mpsc::Sender<Result<Vec<TicketHistory>, StoreError>>;

/// Tickets handed over at a time: one hand-off per ticket cost more than reading it.
const BATCH: usize = 512;

struct Reader<'a> {
    since: Millis,
    until: Millis,
    counted: &'a str,
    replayed: &'a [EventKind],
}

impl Reader<'_> {
    /// Reads in one read transaction, on its own read-only connection: the follow-ups, the
    /// tickets, then each ticket's log, sent as soon as it is read. Stops early when the
    /// receiver goes.
    fn read(self, path: &Path, follow_ups: FollowUps, tickets: &Tickets) -> Result<(), StoreError> {
        let mut db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(read_error)?;
        db.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(read_error)?;
        let tx = db.transaction().map_err(read_error)?;
        let found = tx
            .prepare(
                "SELECT follows_ticket_id, created_at FROM tickets \
                 WHERE follows_ticket_id IS NOT NULL AND created_at >= ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_map([self.since], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<Vec<(TicketId, Millis)>, _>>()
            })
            .map_err(read_error);
        let failed = found.is_err();
        let _ = follow_ups.send(found);
        if failed {
            return Ok(());
        }
        // The tickets. Any status change (a creation, a resolution, a reopening...) in the
        // period leaves `status_since` in it, so the log is searched only for the counted
        // kinds that need not change a status (a reply on a waiting ticket, a rating);
        // reading every status change of the period through `events_kind` cost 0.1 s more
        // for 30 days of a 1,000,000-ticket desk.
        let ids = format!(
            "WITH ids(id) AS ( \
               SELECT ticket_id FROM events WHERE kind IN ({counted}) AND at >= ?1 AND at < ?2 \
                 AND ticket_id IS NOT NULL \
               UNION SELECT id FROM tickets WHERE status IN ('new', 'open', 'waiting_on_customer') \
                 AND created_at < ?2 \
               UNION SELECT id FROM tickets WHERE status_since >= ?1 AND created_at < ?2) \
             SELECT t.id, t.created_at, t.follows_ticket_id, t.code FROM ids JOIN tickets t ON t.id = ids.id",
            counted = self.counted
        );
        let heads: Vec<TicketHistory> = tx
            .prepare(&ids)
            .and_then(|mut stmt| {
                stmt.query_map((self.since, self.until), |row| {
                    Ok(TicketHistory {
                        id: row.get(0)?,
                        created_at: row.get(1)?,
                        follows: row.get(2)?,
                        code: row.get(3)?,
                        details: String::new(),
                        events: Vec::new(),
                    })
                })?
                .collect()
            })
            .map_err(read_error)?;
        // Each one's log through `events_ticket`, in the order it was written (the index
        // is by ticket and time, then row). The kinds are picked here: an `IN` list in the
        // statement is built into a b-tree at every execution (measured: 45 µs a ticket,
        // 1.8 s for 40,000 tickets).
        let mut log = tx
            .prepare(
                "SELECT kind, actor_kind, actor, detail, at FROM events \
                 WHERE ticket_id = ?1 ORDER BY at, id",
            )
            .map_err(read_error)?;
        let mut batch = Vec::with_capacity(BATCH);
        for mut ticket in heads {
            let mut rows = log.query([ticket.id]).map_err(read_error)?;
            while let Some(row) = rows.next().map_err(read_error)? {
                let text = |i: usize| -> Result<&str, StoreError> {
                    row.get_ref(i)
                        .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                        .map_err(read_error)
                };
                let kind = event_kind(text(0)?)?;
                if !self.replayed.contains(&kind) {
                    continue;
                }
                ticket.events.push(LoggedEvent {
                    kind,
                    actor_kind: actor_kind(text(1)?)?,
                    // Only a reply's author is read (the agent a first response counts for).
                    actor: if kind == EventKind::AgentReplied {
                        text(2)?.to_string()
                    } else {
                        String::new()
                    },
                    detail: {
                        let start = ticket.details.len();
                        ticket.details.push_str(text(3)?);
                        start..ticket.details.len()
                    },
                    at: row.get(4).map_err(read_error)?,
                });
            }
            batch.push(ticket);
            if batch.len() == BATCH
                && tickets
                    .blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))
                    .is_err()
            {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = tickets.blocking_send(Ok(batch));
        }
        Ok(())
    }
}
