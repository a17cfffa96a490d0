//! Writes a desk of N tickets (default 1,000,000) straight into a new database, with the
//! event log the gateway would have written for them, for `scripts/bench-stats` to time
//! `helpdesk stats` on. Tickets arrive evenly over the last 1,000 days; each is routed,
//! assigned, answered, resolved and closed, and some are rated, breach a target and are
//! escalated, come back, or are still open.
//!
//! usage: stats_bench DIR [N]

use std::path::PathBuf;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::{QueryBuilder, Sqlite};

use helpdesk::desk::events::{self as ev, Event};
use helpdesk::desk::wording::Target;
use helpdesk::domain::{Category, EmailAddress, Language, Priority, TicketStatus, Tier};
use helpdesk::store::sqlite::SqliteStore;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

struct Row {
    ticket: i64,
    kind: &'static str,
    actor_kind: &'static str,
    actor: String,
    detail: String,
    at: i64,
}

struct Ticket {
    id: i64,
    status: TicketStatus,
    tier: Tier,
    category: &'static str,
    priority: Priority,
    assignee: String,
    created: i64,
    status_since: i64,
    first_response: Option<i64>,
    satisfaction: Option<u8>,
}

const CATEGORIES: [&str; 6] = [
    "access", "printer", "network", "email", "hardware", "general",
];

fn agent(tier: Tier, n: u32) -> String {
    format!("{}-agent{n}@corp.example", tier.as_str().to_lowercase())
}

fn event(
    rows: &mut Vec<Row>,
    ticket: i64,
    (actor_kind, actor): (&'static str, &str),
    at: i64,
    e: Event,
) {
    rows.push(Row {
        ticket,
        kind: e.kind().as_str(),
        actor_kind,
        actor: actor.to_string(),
        detail: e.detail().to_string(),
        at,
    });
}

fn moved(from: TicketStatus, to: TicketStatus) -> ev::StatusChanged {
    ev::StatusChanged::new(from, to)
}

/// One ticket's life, as events; its final row.
fn life(rng: &mut StdRng, id: i64, created: i64, now: i64, rows: &mut Vec<Row>) -> Ticket {
    use TicketStatus::*;
    let customer = format!("user{}@client.example", rng.random_range(0..50_000));
    let c = ("customer", customer.as_str());
    let gw = ("gateway", "gateway");
    let tier = match rng.random_range(0..100) {
        0..70 => Tier::L1FrontLine,
        70..90 => Tier::L2Advanced,
        _ => Tier::L3Expert,
    };
    let category = CATEGORIES[rng.random_range(0..CATEGORIES.len())];
    let priority = match rng.random_range(0..100) {
        0..10 => Priority::Low,
        10..75 => Priority::Normal,
        75..95 => Priority::High,
        _ => Priority::Urgent,
    };
    let mut assignee = agent(tier, rng.random_range(0..12));
    let mut t = Ticket {
        id,
        status: New,
        tier,
        category,
        priority,
        assignee: assignee.clone(),
        created,
        status_since: created,
        first_response: None,
        satisfaction: None,
    };
    let cat: Category = category.parse().unwrap_or_else(|_| Category::general());
    event(
        rows,
        id,
        c,
        created,
        Event::Created(ev::Created {
            tier,
            status: New,
            language: Language::Fr,
        }),
    );
    event(
        rows,
        id,
        gw,
        created,
        Event::Routed(ev::Routed {
            category: cat,
            priority,
            tier,
            rule: None,
            matched: vec!["imprimante".into(), "bloque".into()],
            scores: Vec::new(),
        }),
    );
    let to: EmailAddress = assignee.parse().expect("address");
    event(
        rows,
        id,
        gw,
        created,
        Event::Assigned(ev::Assignment {
            to: Some(to.clone()),
            from: None,
            tier,
            notified: Some(to),
            reason: None,
        }),
    );
    event(
        rows,
        id,
        gw,
        created,
        Event::MailQueued(ev::MailQueued {
            kind: helpdesk::render::Template::Acknowledgement,
            to: customer.parse().expect("address"),
            change: None,
        }),
    );
    // Minutes to days for an answer; a few breach the first-response target and go up.
    let answer = created + rng.random_range(5 * MINUTE..2 * DAY);
    if rng.random_range(0..100) < 6 && tier != Tier::L3Expert {
        let at = created + (answer - created) / 2;
        if at > now {
            return t;
        }
        event(
            rows,
            id,
            ("timer", "timer"),
            at,
            Event::SlaBreached(ev::SlaBreached {
                target: Target::FirstResponse,
                due: None,
                tier,
                priority,
                assignee: assignee.parse().ok(),
            }),
        );
        let up = if tier == Tier::L1FrontLine {
            Tier::L2Advanced
        } else {
            Tier::L3Expert
        };
        event(
            rows,
            id,
            ("timer", "timer"),
            at,
            Event::Escalated(ev::Escalated {
                from: tier,
                to: up,
                reason: None,
                vendor: None,
                cause: Some(ev::EscalationCause::Sla),
            }),
        );
        let next = agent(up, rng.random_range(0..12));
        event(
            rows,
            id,
            ("timer", "timer"),
            at,
            Event::Assigned(ev::Assignment {
                to: next.parse().ok(),
                from: assignee.parse().ok(),
                tier: up,
                notified: next.parse().ok(),
                reason: None,
            }),
        );
        assignee = next;
        t.tier = up;
        t.assignee = assignee.clone();
    }
    if answer > now {
        return t;
    }
    let a = ("agent", assignee.as_str());
    event(
        rows,
        id,
        a,
        answer,
        Event::AgentReplied(ev::AgentReplied {
            chars: 400,
            attachments: 0,
        }),
    );
    event(
        rows,
        id,
        a,
        answer,
        Event::StatusChanged(moved(New, WaitingOnCustomer)),
    );
    t.first_response = Some(answer);
    t.status = WaitingOnCustomer;
    t.status_since = answer;
    let back = answer + rng.random_range(10 * MINUTE..DAY);
    if back > now {
        return t;
    }
    event(
        rows,
        id,
        c,
        back,
        Event::StatusChanged(moved(WaitingOnCustomer, Open)),
    );
    t.status = Open;
    t.status_since = back;
    let mut resolved = back + rng.random_range(30 * MINUTE..4 * DAY);
    let mut rounds = if rng.random_range(0..100) < 8 { 2 } else { 1 };
    while rounds > 0 {
        if resolved > now {
            return t;
        }
        event(
            rows,
            id,
            ("agent", assignee.as_str()),
            resolved,
            Event::StatusChanged(moved(t.status, Resolved)),
        );
        t.status = Resolved;
        t.status_since = resolved;
        rounds -= 1;
        if rounds > 0 {
            let again = resolved + rng.random_range(HOUR..10 * DAY);
            if again > now {
                return t;
            }
            event(rows, id, c, again, Event::Reopened(moved(Resolved, Open)));
            t.status = Open;
            t.status_since = again;
            resolved = again + rng.random_range(HOUR..2 * DAY);
        }
    }
    if rng.random_range(0..100) < 30 {
        let at = resolved + rng.random_range(MINUTE..DAY);
        if at <= now {
            let score = rng.random_range(1..=5);
            event(
                rows,
                id,
                c,
                at,
                Event::Rated(ev::Rated {
                    score,
                    comment: None,
                }),
            );
            t.satisfaction = Some(score);
        }
    }
    let closed = resolved + 7 * DAY;
    if closed <= now {
        event(
            rows,
            id,
            ("timer", "timer"),
            closed,
            Event::StatusChanged(moved(Resolved, Closed)),
        );
        t.status = Closed;
        t.status_since = closed;
    }
    t
}

async fn flush_events(db: &sqlx::SqlitePool, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    for chunk in rows.chunks(5000) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO events (ticket_id, kind, actor_kind, actor, detail, at) ",
        );
        q.push_values(chunk, |mut b, r| {
            b.push_bind(r.ticket)
                .push_bind(r.kind)
                .push_bind(r.actor_kind)
                .push_bind(r.actor.as_str())
                .push_bind(r.detail.as_str())
                .push_bind(r.at);
        });
        q.build().execute(db).await?;
    }
    rows.clear();
    Ok(())
}

async fn flush_tickets(db: &sqlx::SqlitePool, tickets: &mut Vec<Ticket>) -> anyhow::Result<()> {
    for chunk in tickets.chunks(2000) {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO tickets (id, code, status, tier, customer, subject, thread_key, language, \
             created_at, updated_at, category, priority, assignee, first_response_at, satisfaction, \
             status_since) ",
        );
        q.push_values(chunk, |mut b, t| {
            b.push_bind(t.id)
                .push_bind(format!("HD-B{:07}", t.id))
                .push_bind(t.status.as_str())
                .push_bind(t.tier.as_str())
                .push_bind("user@client.example")
                .push_bind("L'imprimante bloque")
                .push_bind("l'imprimante bloque")
                .push_bind("fr")
                .push_bind(t.created)
                .push_bind(t.status_since)
                .push_bind(t.category)
                .push_bind(t.priority.as_str())
                .push_bind(t.assignee.as_str())
                .push_bind(t.first_response)
                .push_bind(t.satisfaction.map(i64::from))
                .push_bind(t.status_since);
        });
        q.build().execute(db).await?;
    }
    tickets.clear();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "stats-bench".into()));
    let n: i64 = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    std::fs::create_dir_all(&dir)?;
    let db_path = dir.join("helpdesk.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
    }
    std::fs::write(
        dir.join("helpdesk.toml"),
        format!(
            "{}\n[calendar]\ntime_zone = \"Europe/Paris\"\nworking_days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]\n\
             working_hours = [\"08:30-12:30\", \"13:30-17:30\"]\n",
            helpdesk::config::embedded_default_toml()
        ),
    )?;
    let store = SqliteStore::open(&format!("sqlite:{}", db_path.display())).await?;
    let db = store.pool();
    let started = std::time::Instant::now();
    let now = chrono::Utc::now().timestamp_millis();
    let span = 1000 * DAY;
    let mut rng = StdRng::seed_from_u64(18);
    let (mut rows, mut tickets) = (Vec::new(), Vec::new());
    let mut events = 0usize;
    sqlx::query("PRAGMA synchronous = OFF").execute(db).await?;
    for i in 0..n {
        let created = now - span + span * i / n + rng.random_range(0..MINUTE);
        tickets.push(life(&mut rng, i + 1, created, now, &mut rows));
        if tickets.len() >= 20_000 {
            events += rows.len();
            flush_tickets(db, &mut tickets).await?;
            flush_events(db, &mut rows).await?;
        }
    }
    events += rows.len();
    flush_tickets(db, &mut tickets).await?;
    flush_events(db, &mut rows).await?;
    sqlx::query("ANALYZE").execute(db).await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(db)
        .await?;
    eprintln!(
        "wrote {n} tickets and {events} events to {} in {:.0} s",
        db_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
