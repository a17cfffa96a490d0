//! What the knowledge base costs: `scripts/bench-kb` runs this in release.
//!
//! 1. Writes N articles (default 1,000) into a temporary folder: the 30 starter articles
//!    and variants of them (another site, model or team in the title and keywords, and a
//!    paragraph of the starter articles' own words), about 2 KB each, half French.
//! 2. Loads and indexes them as the gateway does at start: seconds, and the memory the
//!    process holds after (resident set) and at its peak, against before.
//! 3. Reads M mails (default 5,000: the labelled requests, cycled) as the pipeline does
//!    before taking the database lock, with this base and with an empty one: the added
//!    time per mail (p50, p99, max) is the difference of the two readings' percentiles.
//!
//! Prints one line per figure, then one JSON object.

use std::time::Instant;

use helpdesk::config::{Config, ProcessEnv};
use helpdesk::kb::{KnowledgeBase, starter};

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

const SITES: &[&str] = &[
    "Lyon",
    "Nantes",
    "Lille",
    "Bordeaux",
    "Toulouse",
    "Paris La Défense",
    "Grenoble",
    "Rennes",
    "Marseille",
    "Strasbourg",
    "HP LaserJet",
    "Ricoh IM C3000",
    "Canon iR",
    "Dell Latitude",
    "Lenovo ThinkPad",
    "FortiClient",
    "GlobalProtect",
    "Cisco AnyConnect",
    "Teams Rooms",
    "SharePoint RH",
    "comptabilité",
    "accueil",
    "atelier",
    "entrepôt",
    "direction",
];

fn articles(n: usize) -> Vec<(String, String)> {
    let words: Vec<String> = starter::ARTICLES
        .iter()
        .flat_map(|(_, t)| t.split_whitespace())
        .filter(|w| w.chars().all(char::is_alphabetic) && w.len() > 3)
        .map(str::to_lowercase)
        .collect();
    let mut out: Vec<(String, String)> = starter::ARTICLES
        .iter()
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut i = 0;
    while out.len() < n {
        let (name, text) = &starter::ARTICLES[i % starter::ARTICLES.len()];
        let site = SITES[(i / starter::ARTICLES.len()) % SITES.len()];
        let id = format!("{}-{i}", name.trim_end_matches(".md"));
        let extra: Vec<&str> = (0..120)
            .map(|_| words[(next() as usize) % words.len()].as_str())
            .collect();
        let text = text
            .replacen("\ntitle: ", &format!("\ntitle: {site} — "), 1)
            .replacen("\nkeywords: [", &format!("\nkeywords: [{site}, "), 1);
        out.push((format!("{id}.md"), format!("{text}\n{}\n", extra.join(" "))));
        i += 1;
    }
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let m: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let dir = std::env::temp_dir().join(format!("kb-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in articles(n) {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let rss_before = rss_kib("VmRSS:");
    let started = Instant::now();
    let kb = KnowledgeBase::load(&dir).expect("loads");
    let build_s = started.elapsed().as_secs_f64();
    let rss_after = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    assert!(kb.problems.is_empty(), "{:?}", kb.problems);
    std::fs::remove_dir_all(&dir).unwrap();

    let toml = helpdesk::config::embedded_default_toml();
    let path = std::path::Path::new("/nonexistent/helpdesk.toml");
    let mut with = Config::from_toml(
        toml,
        path,
        std::path::Path::new("/nonexistent"),
        &ProcessEnv,
    )
    .unwrap();
    let without = with.clone();
    with.desk.knowledge.kb = std::sync::Arc::new(kb);
    let rows: Vec<Vec<u8>> = include_str!("../tests/kb/requests.tsv")
        .lines()
        .skip(1)
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split('\t').collect();
            format!(
                "From: a@example.fr\r\nTo: support@example.test\r\nSubject: {}\r\nMessage-ID: <b{i}@x>\r\n\
                 Content-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
                f[2],
                f[3].replace("\\n", "\r\n")
            )
            .into_bytes()
        })
        .collect();
    let mails: Vec<_> = rows
        .iter()
        .map(|r| helpdesk::inbound::parse(r).unwrap())
        .collect();
    let time = |config: &Config| -> Vec<f64> {
        let mut out: Vec<f64> = (0..m)
            .map(|i| {
                let mail = &mails[i % mails.len()];
                let t = Instant::now();
                let reading =
                    helpdesk::desk::decide::read_mail(mail, &config.gateway, &config.desk);
                let chosen = helpdesk::desk::decide::suggestions(&reading, &config.desk);
                std::hint::black_box(chosen);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        out.sort_by(f64::total_cmp);
        out
    };
    let base = time(&without);
    let kb_times = time(&with);
    let added = |p: f64| percentile(&kb_times, p) - percentile(&base, p);
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("articles: {n}");
    println!("index built in {:.3} s", build_s);
    println!(
        "memory: resident {:.1} MiB before, {:.1} MiB after (+{:.1} MiB), peak {:.1} MiB",
        mib(rss_before),
        mib(rss_after),
        mib(rss_after.saturating_sub(rss_before)),
        mib(peak)
    );
    println!(
        "reading a mail: {:.3} ms p50 / {:.3} ms p99 without articles, {:.3} / {:.3} ms with",
        percentile(&base, 0.5),
        percentile(&base, 0.99),
        percentile(&kb_times, 0.5),
        percentile(&kb_times, 0.99)
    );
    println!(
        "added per mail: {:.3} ms p50, {:.3} ms p99, {:.3} ms max",
        added(0.5),
        added(0.99),
        kb_times.last().unwrap() - base.last().unwrap()
    );
    println!(
        "{}",
        serde_json::json!({
            "articles": n,
            "index_build_s": build_s,
            "rss_added_mib": mib(rss_after.saturating_sub(rss_before)),
            "peak_mib": mib(peak),
            "added_p50_ms": added(0.5),
            "added_p99_ms": added(0.99),
        })
    );
}
