//! Times the dashboard on a desk written by `stats_bench` (default 100,000 tickets): the
//! overview rendered in the process (its parts: the store's counts, the statistics, the
//! template), then the pages over HTTP on loopback as a browser asks for them. Prints
//! percentiles and the peak memory. Run by `scripts/bench-dashboard`.
//!
//! usage: dashboard_bench DIR [REQUESTS]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use helpdesk::config::{Config, DashboardSettings};
use helpdesk::store::sqlite::SqliteStore;
use helpdesk::web::Dashboard;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label}: p50 {}, p95 {}, max {} ({} runs)",
        ms(percentile(&times, 50)),
        ms(percentile(&times, 95)),
        ms(*times.last().unwrap()),
        times.len()
    );
}

/// One GET on a fresh connection; the whole reply read.
fn get(port: u16, path: &str) -> (Duration, usize, u16) {
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Language: fr\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let took = started.elapsed();
    let status = std::str::from_utf8(&reply[9..12]).unwrap().parse().unwrap();
    let body = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| reply.len() - p - 4);
    (took, body, status)
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "dashboard-bench".into()));
    let requests: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let config = Config::load(&dir.join("helpdesk.toml"))?;
    let store = SqliteStore::open(&config.database_url).await?;
    // Targets on the open tickets, so "due soon" and "past a target" have work to do.
    sqlx::query(
        "UPDATE tickets SET resolution_due = created_at + 5 * 86400000, \
         sla_fired = CASE WHEN id % 7 = 0 THEN 8 ELSE 0 END \
         WHERE status IN ('new', 'open') AND resolution_due IS NULL",
    )
    .execute(store.pool())
    .await?;
    // stats_bench's codes carry no check symbol; the ticket page is timed on one that does
    // (the oldest open ticket: its whole log).
    let code = helpdesk::domain::ReferenceCode::generate(&config.gateway.reference_prefix);
    sqlx::query(
        "UPDATE tickets SET code = ? WHERE id = (SELECT id FROM tickets \
         WHERE status IN ('new', 'open') ORDER BY created_at LIMIT 1)",
    )
    .bind(code.as_str())
    .execute(store.pool())
    .await?;
    let (tickets, open): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), SUM(status IN ('new', 'open', 'waiting_on_customer')) FROM tickets",
    )
    .fetch_one(store.pool())
    .await?;
    println!("desk: {tickets} tickets, {open} still open");
    let settings = DashboardSettings {
        listen: "127.0.0.1:0".parse()?,
        token: None,
    };
    let dashboard = Dashboard::new(Arc::new(config), settings, Arc::new(store), None)?;

    let started = Instant::now();
    let (html, first) = dashboard
        .overview_for_bench()
        .await
        .map_err(anyhow::Error::msg)?;
    println!(
        "overview, first (statistics computed): {} (store {}, statistics {}, template {}), {} bytes",
        ms(started.elapsed()),
        ms(first.store),
        ms(first.stats),
        ms(first.render),
        html.len()
    );
    let (mut whole, mut store_t, mut render_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..requests {
        let started = Instant::now();
        let (_, t) = dashboard
            .overview_for_bench()
            .await
            .map_err(anyhow::Error::msg)?;
        whole.push(started.elapsed());
        store_t.push(t.store);
        render_t.push(t.render);
    }
    summary("overview, in the process", whole);
    summary("  of which the store's counts", store_t);
    summary("  of which the template", render_t);

    let listener = dashboard.bind().await?;
    let port = listener.local_addr()?.port();
    let stop = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(dashboard.clone().serve(listener, stop.clone()));
    for (label, path) in [
        ("GET / (overview)", "/".to_string()),
        (
            "GET /tickets?status=backlog&sort=due",
            "/tickets?status=backlog&sort=due".into(),
        ),
        (
            "GET /tickets?status=closed (page 1 of many)",
            "/tickets?status=closed".into(),
        ),
        ("GET /tickets/CODE", format!("/tickets/{code}")),
        ("GET /metrics", "/metrics".into()),
    ] {
        let path2 = path.clone();
        let results = tokio::task::spawn_blocking(move || {
            (0..requests).map(|_| get(port, &path2)).collect::<Vec<_>>()
        })
        .await?;
        let status = results[0].2;
        let size = results.iter().map(|r| r.1).max().unwrap_or(0);
        summary(
            &format!("{label} [{status}, {:.1} KB]", size as f64 / 1024.0),
            results.into_iter().map(|r| r.0).collect(),
        );
    }
    stop.cancel();
    server.await??;
    println!("peak memory: {:.0} MiB", peak_rss_mib());
    Ok(())
}
