//! What the statistics read: the tickets a period touches, each with its log.
//!
//! A 30-day period of a 1,000,000-ticket desk is some 40,000 tickets and 330,000 events.
//! Through sqlx each row costs ~12 µs on top of SQLite's own work (every value copied under
//! SQLite's mutex, then sent across threads one row at a time: measured with `perf`, 5 s of
//! the command's 5.3 s), so this read goes through its own read-only connection with
//! rusqlite, on a blocking thread, where a row costs what SQLite costs.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::*;

/// `'a', 'b'` for kinds (closed-set names, never user text: safe to write into the SQL).
fn kind_list(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| format!("'{}'", k.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn event_kind(text: &str) -> Result<EventKind, StoreError> {
    EventKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| corrupt(format!("event kind {text:?}")))
}

fn actor_kind(text: &str) -> Result<&'static str, StoreError> {
    Actor::KINDS
        .into_iter()
        .find(|k| *k == text)
        .ok_or_else(|| corrupt(format!("actor kind {text:?}")))
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
    let (counted, replayed) = (kind_list(counted), kind_list(replayed));
    tokio::task::spawn_blocking(move || read(&path, since, until, &counted, &replayed))
        .await
        .map_err(|e| StoreError::Corrupt(format!("the statistics' read stopped: {e}")))?
}

fn read(
    path: &Path,
    since: Millis,
    until: Millis,
    counted: &str,
    replayed: &str,
) -> Result<StatsInput, StoreError> {
    let mut db = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::Read)?;
    db.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(StoreError::Read)?;
    // One read transaction: the tickets and the follow-ups of the same moment.
    let tx = db.transaction().map_err(StoreError::Read)?;
    // The tickets: an event counted in the period; open now and created before its end; or
    // whose status changed since it began (open at some moment of it, or resolved in it).
    // Then each one's log through `events_ticket`: the unary `+` keeps SQLite from reading
    // the log through `events_kind` instead, which, the period's bounds being parameters it
    // cannot weigh, it may otherwise choose (measured: 5 s instead of 0.5 s for 40,000
    // tickets of a 1,000,000-ticket desk). No ORDER BY: sorting 330,000 rows in SQLite
    // cost 0.6 s; each ticket's few events are sorted here.
    let sql = format!(
        "WITH ids(id) AS ( \
           SELECT ticket_id FROM events WHERE kind IN ({counted}) AND at >= ?1 AND at < ?2 \
             AND ticket_id IS NOT NULL \
           UNION SELECT id FROM tickets WHERE status IN ('new', 'open', 'waiting_on_customer') \
             AND created_at < ?2 \
           UNION SELECT id FROM tickets WHERE status_since >= ?1 AND created_at < ?2) \
         SELECT t.id, t.created_at, t.follows_ticket_id, t.code, \
                e.id, e.kind, e.actor_kind, e.actor, e.detail, e.at \
         FROM ids JOIN tickets t ON t.id = ids.id JOIN events e ON e.ticket_id = ids.id \
         WHERE +e.kind IN ({replayed})"
    );
    let mut tickets: Vec<TicketHistory> = Vec::new();
    let mut order: Vec<Vec<i64>> = Vec::new();
    let mut index: HashMap<TicketId, usize> = HashMap::new();
    {
        let mut stmt = tx.prepare(&sql).map_err(StoreError::Read)?;
        let mut rows = stmt.query((since, until)).map_err(StoreError::Read)?;
        while let Some(row) = rows.next().map_err(StoreError::Read)? {
            let id: TicketId = row.get(0).map_err(StoreError::Read)?;
            let at = match index.get(&id) {
                Some(at) => *at,
                None => {
                    tickets.push(TicketHistory {
                        id,
                        created_at: row.get(1).map_err(StoreError::Read)?,
                        follows: row.get(2).map_err(StoreError::Read)?,
                        code: row.get(3).map_err(StoreError::Read)?,
                        events: Vec::new(),
                    });
                    order.push(Vec::new());
                    index.insert(id, tickets.len() - 1);
                    tickets.len() - 1
                }
            };
            let text = |i: usize| -> Result<&str, StoreError> {
                row.get_ref(i)
                    .and_then(|v| v.as_str().map_err(rusqlite::Error::from))
                    .map_err(StoreError::Read)
            };
            let kind = event_kind(text(5)?)?;
            let actor_kind = actor_kind(text(6)?)?;
            tickets[at].events.push(LoggedEvent {
                kind,
                actor_kind,
                actor: row.get(7).map_err(StoreError::Read)?,
                detail: row.get(8).map_err(StoreError::Read)?,
                at: row.get(9).map_err(StoreError::Read)?,
            });
            order[at].push(row.get(4).map_err(StoreError::Read)?);
        }
    }
    // Each log in the order it was written: by time, then by row.
    for (ticket, ids) in tickets.iter_mut().zip(order) {
        let mut keyed: Vec<(i64, i64, LoggedEvent)> = std::mem::take(&mut ticket.events)
            .into_iter()
            .zip(ids)
            .map(|(e, id)| (e.at, id, e))
            .collect();
        keyed.sort_unstable_by_key(|(at, id, _)| (*at, *id));
        ticket.events = keyed.into_iter().map(|(_, _, e)| e).collect();
    }
    tickets.sort_unstable_by_key(|t| t.id);
    let follow_ups = {
        let mut stmt = tx
            .prepare(
                "SELECT follows_ticket_id, created_at FROM tickets \
                 WHERE follows_ticket_id IS NOT NULL AND created_at >= ?1",
            )
            .map_err(StoreError::Read)?;
        stmt.query_map([since], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(StoreError::Read)?
            .collect::<Result<Vec<(TicketId, Millis)>, _>>()
            .map_err(StoreError::Read)?
    };
    Ok(StatsInput {
        tickets,
        follow_ups,
    })
}
