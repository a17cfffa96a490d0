//! What a ticket list selects, as SQL, once for every backend: which statuses are open,
//! what counts as resolved in a period, what came back. A [`Dialect`] says how the backend
//! writes a parameter, a moment, a field of an event's JSON and the earlier of two moments.

use super::{TicketFilter, TicketSort, TicketStatus};

/// A value bound to a list's query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// Binds a list's values to its query, in order, whichever the backend.
pub(crate) fn bind_all<'q, DB: sqlx::Database>(
    mut query: sqlx::query::Query<'q, DB, DB::Arguments>,
    values: Vec<Bind>,
) -> sqlx::query::Query<'q, DB, DB::Arguments>
where
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for v in values {
        query = match v {
            Bind::Text(t) => query.bind(t),
            Bind::Int(i) => query.bind(i),
        };
    }
    query
}

/// How one backend writes the pieces of a filter.
pub(crate) struct Dialect {
    /// The `n`th parameter (from 1).
    pub param: fn(usize) -> String,
    /// The `n`th parameter as a moment, from milliseconds.
    pub moment: fn(usize) -> String,
    /// A text field of a JSON column.
    pub json_text: fn(&str, &str) -> String,
    /// The earlier of two moments: the one set if the other is NULL, NULL if neither is.
    pub earlier_of: fn(&str, &str) -> String,
}

pub(crate) const SQLITE: Dialect = Dialect {
    param: |_| "?".to_string(),
    moment: |_| "?".to_string(),
    json_text: |column, field| format!("json_extract({column}, '$.{field}')"),
    // SQLite's two-argument MIN is NULL when either is.
    earlier_of: |a, b| format!("COALESCE(MIN({a}, {b}), {a}, {b})"),
};

pub(crate) const POSTGRES: Dialect = Dialect {
    param: |n| format!("${n}"),
    moment: |n| format!("hd_ts(${n})"),
    json_text: |column, field| format!("({column} ->> '{field}')"),
    // LEAST skips NULLs.
    earlier_of: |a, b| format!("LEAST({a}, {b})"),
};

/// The `ORDER BY` of a ticket list, and its page (starting with a space).
pub(crate) fn order_and_page(filter: &TicketFilter, d: &Dialect) -> String {
    let order = match filter.sort {
        TicketSort::Created => "t.created_at, t.id".to_string(),
        TicketSort::Age => "t.status_since, t.id".to_string(),
        // The earlier of the two targets; a ticket with neither comes last.
        TicketSort::Due => {
            let due = (d.earlier_of)("t.first_response_due", "t.resolution_due");
            format!("{due} IS NULL, {due}, t.id")
        }
    };
    let page = match filter.page {
        Some((limit, offset)) => format!(" LIMIT {limit} OFFSET {offset}"),
        None => String::new(),
    };
    format!(" ORDER BY {order}{page}")
}

/// The `WHERE` of a ticket list (empty, or starting with a space) and its values.
pub(crate) fn filter_sql(filter: &TicketFilter, d: &Dialect) -> (String, Vec<Bind>) {
    let mut conditions: Vec<String> = Vec::new();
    let mut values: Vec<Bind> = Vec::new();
    // Binds a text value and returns its parameter.
    let text = |values: &mut Vec<Bind>, v: String| {
        values.push(Bind::Text(v));
        (d.param)(values.len())
    };
    if let Some(st) = filter.status {
        let p = text(&mut values, st.as_str().into());
        conditions.push(format!("t.status = {p}"));
    }
    if filter.open_only {
        let ps: Vec<String> = TicketStatus::open()
            .map(|s| text(&mut values, s.as_str().to_string()))
            .collect();
        conditions.push(format!("t.status IN ({})", ps.join(", ")));
    }
    if let Some(tier) = filter.tier {
        let p = text(&mut values, tier.as_str().into());
        conditions.push(format!("t.tier = {p}"));
    }
    if let Some(a) = &filter.assignee {
        let p = text(&mut values, a.to_string());
        conditions.push(format!("t.assignee = {p}"));
    }
    if filter.unassigned {
        conditions.push("t.assignee IS NULL".into());
    }
    if let Some(c) = &filter.category {
        let p = text(&mut values, c.to_string());
        conditions.push(format!("t.category = {p}"));
    }
    if let Some(p) = filter.priority {
        let p = text(&mut values, p.as_str().into());
        conditions.push(format!("t.priority = {p}"));
    }
    let moment = |values: &mut Vec<Bind>, v: i64| {
        values.push(Bind::Int(v));
        (d.moment)(values.len())
    };
    match (filter.due_after, filter.due_before) {
        (Some(after), Some(before)) => {
            let [a1, b1, a2, b2] = [after, before, after, before].map(|v| moment(&mut values, v));
            conditions.push(format!(
                "((t.first_response_due > {a1} AND t.first_response_due <= {b1}) \
                 OR (t.resolution_due > {a2} AND t.resolution_due <= {b2}))"
            ));
        }
        (None, Some(at)) => {
            let [a1, a2] = [at, at].map(|v| moment(&mut values, v));
            conditions.push(format!(
                "(t.first_response_due <= {a1} OR t.resolution_due <= {a2})"
            ));
        }
        _ => {}
    }
    if filter.breached {
        // The breach bits are set with the `sla_breached` event, and never cleared.
        values.push(Bind::Int(i64::from(
            crate::domain::Fired::FIRST_RESPONSE_BREACH | crate::domain::Fired::RESOLUTION_BREACH,
        )));
        conditions.push(format!("(t.sla_fired & {}) != 0", (d.param)(values.len())));
    }
    if let Some((since, until)) = filter.created {
        let [s, u] = [since, until].map(|v| moment(&mut values, v));
        conditions.push(format!("t.created_at >= {s} AND t.created_at < {u}"));
    }
    if let Some((since, until)) = filter.resolved {
        // As the statistics count a resolution: to resolved, or closed without being resolved.
        let [s, u] = [since, until].map(|v| moment(&mut values, v));
        let (to, from) = (
            (d.json_text)("e.detail", "to"),
            (d.json_text)("e.detail", "from"),
        );
        conditions.push(format!(
            "t.id IN (SELECT e.ticket_id FROM events e WHERE e.kind = 'status_changed' \
             AND e.at >= {s} AND e.at < {u} AND ({to} = 'resolved' \
             OR ({to} = 'closed' AND {from} <> 'resolved')))"
        ));
    }
    if let Some((since, until)) = filter.rated {
        let [s, u] = [since, until].map(|v| moment(&mut values, v));
        conditions.push(format!(
            "t.id IN (SELECT e.ticket_id FROM events e WHERE e.kind = 'rated' \
             AND e.at >= {s} AND e.at < {u})"
        ));
    }
    if let Some((since, until)) = filter.came_back {
        let [s1, u1, s2, u2] = [since, until, since, until].map(|v| moment(&mut values, v));
        conditions.push(format!(
            "(t.id IN (SELECT e.ticket_id FROM events e WHERE e.kind = 'reopened' \
             AND e.at >= {s1} AND e.at < {u1}) \
             OR t.id IN (SELECT f.follows_ticket_id FROM tickets f WHERE f.follows_ticket_id IS NOT NULL \
             AND f.created_at >= {s2} AND f.created_at < {u2}))"
        ));
    }
    let sql = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (sql, values)
}
