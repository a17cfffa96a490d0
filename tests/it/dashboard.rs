//! The dashboard over a real `helpdesk run`: counts that lead to exactly their tickets, the
//! token off loopback, customers' markup shown as text, `/metrics` in the OpenMetrics text
//! format, `/healthz` following the database, and the pages in a real browser.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::stack::free_ports;
use crate::support::{customer_mail, helpdesk, stdout};

/// A desk folder with a gateway running on it, stopped (and waited for) when dropped.
struct Running {
    dir: tempfile::TempDir,
    config: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM, as a supervisor would; then make sure.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ROSTER: &str = r#"
[agent_mail]
require_authentication = false

[[agents]]
name = "Alice Martin"
address = "alice@desk.test"
tiers = ["L1"]

[[agents]]
name = "Bruno Petit"
address = "bruno@desk.test"
tiers = ["L2"]
"#;

/// `helpdesk init`, the roster, `[dashboard]` with `dashboard` (its listen line added
/// here), then `helpdesk run`.
fn start(dashboard: &str) -> Running {
    let (dir, config) = crate::cli::init_desk();
    let config = PathBuf::from(config);
    let [port] = free_ports::<1>();
    let listen = if dashboard.contains("0.0.0.0") {
        String::new()
    } else {
        format!("listen = \"127.0.0.1:{port}\"\n")
    };
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(ROSTER);
    text.push_str(&format!(
        "\n[dashboard]\n{listen}{}\n",
        dashboard.replace("PORT", &port.to_string())
    ));
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("gateway.log");
    let child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("HELPDESK_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        config: config.display().to_string(),
        dir,
        port,
        child,
        log,
    };
    // Up once /healthz answers at all (401 counts: the server is up).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = try_get(port, "/healthz", &[]) {
            assert!(
                r.status == 200 || r.status == 401 || r.status == 503,
                "{}",
                r.status
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dashboard never answered; log:\n{}",
            std::fs::read_to_string(&running.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    running
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection (what a scraper does).
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("UTF-8 reply");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

fn try_get(port: u16, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Reply> {
    request(port, "GET", path, headers, "")
}

fn get(port: u16, path: &str) -> Reply {
    try_get(port, path, &[("Accept-Language", "en")]).unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#x3D;", "=")
        .replace("&quot;", "\"")
}

/// Every `<a href="…">N</a>` of a page: a count and where it leads.
fn counted_links(html: &str) -> Vec<(String, i64)> {
    let re = regex::Regex::new(r#"<a href="([^"]+)"[^>]*>(\d+)</a>"#).unwrap();
    // The cards at the top: `<a class="card" href="…"><span class="n">N</span>`.
    let cards =
        regex::Regex::new(r#"<a class="card[^"]*" href="([^"]+)"><span class="n">(\d+)</span>"#)
            .unwrap();
    re.captures_iter(html)
        .chain(cards.captures_iter(html))
        .map(|c| (unescape(&c[1]), c[2].parse().unwrap()))
        .collect()
}

/// The codes a list (and its CSV) holds.
fn listed(port: u16, link: &str) -> (i64, BTreeSet<String>) {
    let page = get(port, link);
    assert_eq!(page.status, 200, "{link}: {}", page.body);
    let count: i64 = regex::Regex::new(r#"<span class="count">(\d+)</span>"#)
        .unwrap()
        .captures(&page.body)
        .unwrap_or_else(|| panic!("{link}: no count"))[1]
        .parse()
        .unwrap();
    let csv_link = link.replacen("/tickets", "/tickets.csv", 1);
    let csv = get(port, &csv_link);
    assert_eq!(csv.status, 200, "{csv_link}");
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let codes: BTreeSet<String> = csv
        .body
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(
        codes.len() as i64,
        count,
        "{link}: the page and its CSV disagree"
    );
    (count, codes)
}

/// The codes `helpdesk tickets list ARGS` prints: the same desk seen by the CLI.
fn cli_codes(config: &str, args: &[&str]) -> BTreeSet<String> {
    let mut all = vec!["--config", config, "tickets", "list"];
    all.extend_from_slice(args);
    let out = helpdesk(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

fn deliver(dir: &Path, n: usize, from: &str, subject: &str, body: &str) {
    let raw = customer_mail(from, subject, &format!("dash{n}@example.com"), body);
    let tmp = dir.join(format!("Maildir/tmp/{n}.eml"));
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, dir.join(format!("Maildir/new/{n}.eml"))).unwrap();
}

fn wait_for_tickets(config: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let codes: Vec<String> = cli_codes(config, &[]).into_iter().collect();
        if codes.len() >= n {
            return codes;
        }
        assert!(
            Instant::now() < deadline,
            "only {} tickets filed",
            codes.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn act(config: &str, args: &[&str]) {
    let mut all = vec!["--config", config, "tickets"];
    all.extend_from_slice(args);
    let out = helpdesk(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_count_of_the_overview_leads_to_exactly_its_tickets() {
    let desk = start("");
    let subjects = [
        "Printer jammed on floor 2",
        "Cannot print to the colour printer",
        "Password expired",
        "VPN drops every hour",
        "New laptop for a starter",
        "Screen flickers",
    ];
    for (i, s) in subjects.iter().enumerate() {
        deliver(
            desk.dir.path(),
            i,
            &format!("customer{i}@example.com"),
            s,
            "Please help.",
        );
    }
    let codes = wait_for_tickets(&desk.config, subjects.len());
    // Two go up to L2 (Bruno's), one is resolved, one waits on its customer.
    act(
        &desk.config,
        &["escalate", &codes[0], "--to", "L2", "--no-send"],
    );
    act(
        &desk.config,
        &["escalate", &codes[1], "--to", "L2", "--no-send"],
    );
    act(&desk.config, &["resolve", &codes[2], "--no-send"]);
    act(&desk.config, &["wait", &codes[3], "--no-send"]);

    let overview = get(desk.port, "/");
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.len() < 100_000,
        "{} bytes",
        overview.body.len()
    );
    assert!(
        overview
            .body
            .contains("<meta http-equiv=\"refresh\" content=\"60\">")
    );
    let links = counted_links(&overview.body);
    assert!(links.len() > 40, "{links:?}");
    assert!(
        links.iter().any(|(l, _)| l == "/tickets?due=soon&sort=due"),
        "{links:?}"
    );
    for (link, n) in &links {
        let (count, listed_codes) = listed(desk.port, link);
        assert_eq!(
            count, *n,
            "{link} shows {n} on the overview but lists {count}"
        );
        // The backlog's cells are the CLI's lists, ticket for ticket.
        let q: Vec<(String, String)> = link
            .split_once('?')
            .map(|(_, q)| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect()
            })
            .unwrap_or_default();
        let keys: BTreeSet<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
        if keys.iter().all(|k| ["status", "tier"].contains(k)) {
            let mut args: Vec<String> = Vec::new();
            for (k, v) in &q {
                if k == "status" && v == "backlog" {
                    continue;
                }
                args.push(format!("--{k}"));
                args.push(v.clone());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut expected = cli_codes(&desk.config, &args);
            if q.iter().any(|(k, v)| k == "status" && v == "backlog") {
                let resolved = cli_codes(&desk.config, &["--status", "resolved"]);
                let closed = cli_codes(&desk.config, &["--status", "closed"]);
                expected.retain(|c| !resolved.contains(c) && !closed.contains(c));
            }
            assert_eq!(listed_codes, expected, "{link}");
        }
    }
    let value = |link: &str| -> i64 {
        links
            .iter()
            .find(|(l, _)| l == link)
            .unwrap_or_else(|| panic!("no count links to {link}"))
            .1
    };
    assert_eq!(value("/tickets?status=backlog"), 5);
    assert_eq!(value("/tickets?status=backlog&tier=L2"), 2);
    assert_eq!(value("/tickets?status=waiting_on_customer"), 1);
    assert_eq!(value("/tickets?status=backlog&agent=bruno%40desk.test"), 2);
    let this_week = {
        let created: Vec<&(String, i64)> = links
            .iter()
            .filter(|(l, _)| l.starts_with("/tickets?created="))
            .collect();
        assert_eq!(
            created.len(),
            8,
            "8 weeks in the chart's table: {created:?}"
        );
        let bars = unescape(&overview.body)
            .matches("<a href=\"/tickets?created=")
            .count();
        assert_eq!(
            bars, 16,
            "8 weeks, each a bar in the chart and a row of its table"
        );
        created.iter().map(|(_, n)| n).max().copied().unwrap()
    };
    assert_eq!(this_week, 6);

    // The ticket page: the thread and the timeline, times in the desk's zone.
    let ticket = get(desk.port, &format!("/tickets/{}", codes[2]));
    assert_eq!(ticket.status, 200);
    assert!(ticket.body.contains(&codes[2]), "{}", ticket.body);
    assert!(ticket.body.contains("Please help."), "the customer's text");
    assert!(ticket.body.contains("status changed"));
    assert!(ticket.body.contains("(UTC)"));
    assert_eq!(get(desk.port, "/tickets/HD-ZZZZZZZZ").status, 404);
    assert_eq!(get(desk.port, "/tickets?tier=L9").status, 400);

    // French when the browser asks for it.
    let fr = try_get(
        desk.port,
        "/",
        &[("Accept-Language", "fr-FR,fr;q=0.9,en;q=0.5")],
    )
    .unwrap();
    assert!(fr.body.contains("<html lang=\"fr\">") && fr.body.contains("Vue d’ensemble"));
    assert!(
        !fr.body.contains("Overview"),
        "English inside the French page"
    );
    assert_eq!(fr.header("vary"), Some("Accept-Language"));
    let fr_ticket = try_get(
        desk.port,
        &format!("/tickets/{}", codes[2]),
        &[("Accept-Language", "fr")],
    )
    .unwrap();
    for french in ["statut modifié", "résolu", "passerelle", "Chronologie"] {
        assert!(
            fr_ticket.body.contains(french),
            "{french} missing from the French ticket page"
        );
    }
    for english in [
        "status changed",
        "gateway",
        "Timeline",
        "First response due",
    ] {
        assert!(
            !fr_ticket.body.contains(english),
            "English {english:?} inside the French ticket page"
        );
    }
}

#[test]
fn a_customers_markup_is_shown_as_text() {
    let desk = start("");
    let raw = "From: Mallory <mallory@example.com>\r\nTo: support@example.test\r\n\
        Subject: <script>alert('subject')</script> printer\r\nMessage-ID: <xss@example.com>\r\n\
        MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
        <html><body><p>Hello <b>bold</b></p><script>alert('body')</script>\
        <img src=x onerror=alert(1)><a href=\"javascript:alert(2)\">link</a></body></html>\r\n";
    let tmp = desk.dir.path().join("Maildir/tmp/x.eml");
    std::fs::write(&tmp, raw).unwrap();
    std::fs::rename(&tmp, desk.dir.path().join("Maildir/new/x.eml")).unwrap();
    let code = wait_for_tickets(&desk.config, 1).remove(0);
    for path in [
        "/".to_string(),
        "/tickets".into(),
        format!("/tickets/{code}"),
    ] {
        let page = get(desk.port, &path);
        assert_eq!(page.status, 200, "{path}");
        let lower = page.body.to_lowercase();
        for markup in ["<script", "<img", "onerror", "javascript:", "<b>bold"] {
            assert!(
                !lower.contains(markup),
                "{path} carries {markup:?}:\n{}",
                page.body
            );
        }
        if path != "/" {
            assert!(
                page.body.contains("&lt;script&gt;alert("),
                "{path}: the subject is not shown as text"
            );
        }
        // Even a mistake could not run: the pages forbid every script.
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    let ticket = get(desk.port, &format!("/tickets/{code}"));
    assert!(
        ticket.body.contains("Hello bold"),
        "the mail's text is shown: {}",
        ticket.body
    );
}

/// Off loopback, every page needs the token: as a bearer, or through the sign-in form's
/// cookie. The token never reaches the log.
#[test]
fn off_loopback_the_token_is_required() {
    let token = "7f1c0c3b9a2e48d5b6e0f4a1c2d3e4f5a6b7c8d9e0f1a2b3";
    // Without a token, off loopback: refused before anything listens.
    let dir = tempfile::tempdir().unwrap();
    assert!(
        helpdesk(&["init", dir.path().to_str().unwrap()])
            .status
            .success()
    );
    let config = dir.path().join("helpdesk.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[dashboard]\nlisten = \"0.0.0.0:8025\"\n");
    std::fs::write(&config, text).unwrap();
    let out = helpdesk(&["--config", config.to_str().unwrap(), "check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dashboard.token") && err.contains("token_file"),
        "{err}"
    );

    let desk = start(&format!("listen = \"0.0.0.0:PORT\"\ntoken = \"{token}\""));
    let port = desk.port;
    for path in ["/", "/tickets", "/tickets.csv", "/metrics", "/healthz"] {
        let r = try_get(port, path, &[]).unwrap();
        assert_eq!(r.status, 401, "{path} without a token");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"helpdesk\"")
        );
        let wrong = try_get(port, path, &[("Authorization", "Bearer not-the-token")]).unwrap();
        assert_eq!(wrong.status, 401, "{path} with a wrong token");
        let bearer = format!("Bearer {token}");
        let right = try_get(port, path, &[("Authorization", &bearer)]).unwrap();
        assert_eq!(right.status, 200, "{path} with the token: {}", right.body);
    }
    // A browser gets the sign-in form with its 401.
    let browser = try_get(port, "/tickets", &[("Accept", "text/html")]).unwrap();
    assert_eq!(browser.status, 401);
    assert!(
        browser
            .body
            .contains("<form method=\"post\" action=\"/login\">")
    );
    let wrong = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "token=guess&next=%2Ftickets",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let signed = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={token}&next=%2F%2Fevil.example%2F"),
    )
    .unwrap();
    assert_eq!(signed.status, 303);
    assert_eq!(
        signed.header("location"),
        Some("/"),
        "never a redirect elsewhere"
    );
    let cookie = signed.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(token),
        "the cookie carries the token itself: {cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    let r = try_get(port, "/tickets", &[("Cookie", session)]).unwrap();
    assert_eq!(r.status, 200);
    let forged = try_get(port, "/tickets", &[("Cookie", "helpdesk_session=00ff")]).unwrap();
    assert_eq!(forged.status, 401);
    let log = std::fs::read_to_string(&desk.log).unwrap();
    assert!(
        log.contains("dashboard request refused"),
        "refusals are logged:\n{log}"
    );
    assert!(
        !log.contains(token) && !log.contains("not-the-token") && !log.contains("guess"),
        "{log}"
    );
}

/// A check of the OpenMetrics text format (the one Prometheus reads with this content
/// type): every sample belongs to a family declared by `# TYPE` before it, names and
/// labels are well formed, counters' samples end in `_total`, histograms' buckets rise to
/// `+Inf` which equals `_count`, and the exposition ends with `# EOF`.
fn check_openmetrics(text: &str) -> std::collections::BTreeMap<String, f64> {
    let name_re = regex::Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
    let label_re =
        regex::Regex::new(r#"^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"$"#).unwrap();
    let mut families: std::collections::BTreeMap<String, String> = Default::default();
    let mut samples = std::collections::BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "no # EOF at the end");
    assert!(text.ends_with("# EOF\n"));
    let mut buckets: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for line in &lines[..lines.len() - 1] {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, value) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap_or(""),
            );
            assert!(name_re.is_match(name), "{line}");
            match kind {
                "TYPE" => {
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "info",
                            "summary",
                            "stateset",
                            "unknown",
                            "gaugehistogram"
                        ]
                        .contains(&value),
                        "{line}"
                    );
                    assert!(
                        families
                            .insert(name.to_string(), value.to_string())
                            .is_none(),
                        "{name} twice"
                    );
                }
                "HELP" => assert!(!value.is_empty(), "{line}"),
                "UNIT" => assert!(
                    name.ends_with(&format!("_{value}")),
                    "{line}: the unit ends the name"
                ),
                _ => panic!("unknown descriptor {line}"),
            }
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "{line:?}");
        let (series, value) = line.rsplit_once(' ').expect("a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("{line}: value")),
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.strip_suffix('}').expect("closing brace")),
            None => (series, ""),
        };
        assert!(name_re.is_match(name), "{line}");
        let mut le = None;
        if !labels.is_empty() {
            for pair in labels.split("\",").map(|p| {
                if p.ends_with('"') {
                    p.to_string()
                } else {
                    format!("{p}\"")
                }
            }) {
                let c = label_re
                    .captures(&pair)
                    .unwrap_or_else(|| panic!("{line}: label {pair}"));
                if &c[1] == "le" {
                    le = Some(if &c[2] == "+Inf" {
                        f64::INFINITY
                    } else {
                        c[2].parse::<f64>().unwrap()
                    });
                }
            }
        }
        let family = families
            .iter()
            .filter(|(f, _)| name.starts_with(f.as_str()))
            .max_by_key(|(f, _)| f.len())
            .unwrap_or_else(|| panic!("{line}: no # TYPE before it"));
        let suffix = &name[family.0.len()..];
        let allowed: &[&str] = match family.1.as_str() {
            "counter" => &["_total", "_created"],
            "gauge" | "unknown" => &[""],
            "info" => &["_info"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            _ => &["", "_sum", "_count", "_bucket"],
        };
        assert!(
            allowed.contains(&suffix),
            "{line}: {suffix:?} on a {}",
            family.1
        );
        if suffix == "_bucket" {
            buckets
                .entry(family.0.clone())
                .or_default()
                .push((le.expect("le"), value));
        }
        samples.insert(series.to_string(), value);
    }
    for (family, b) in &buckets {
        assert!(
            b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{family}: buckets must rise"
        );
        let (le, inf) = *b.last().unwrap();
        assert!(le.is_infinite());
        assert_eq!(
            Some(&inf),
            samples.get(&format!("{family}_count")),
            "{family}: +Inf = _count"
        );
    }
    samples
}

#[test]
fn metrics_read_as_openmetrics_and_count_what_happened() {
    let desk = start("");
    for i in 0..3 {
        deliver(
            desk.dir.path(),
            i,
            &format!("m{i}@example.com"),
            "Printer offline",
            "Help",
        );
    }
    wait_for_tickets(&desk.config, 3);
    // The acknowledgements go out (file transport) shortly after.
    let deadline = Instant::now() + Duration::from_secs(30);
    let samples = loop {
        let r = get(desk.port, "/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        let samples = check_openmetrics(&r.body);
        // The acknowledgements counted and the rest of the outbox (the agents' mail) drained:
        // on a loaded machine the second can come a moment after the first.
        if samples.get("helpdesk_mails_sent_total{kind=\"acknowledgement\"}") == Some(&3.0)
            && samples.get("helpdesk_outbox_pending") == Some(&0.0)
        {
            break samples;
        }
        assert!(Instant::now() < deadline, "{}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        samples.get("helpdesk_mails_received_total{outcome=\"new_ticket\"}"),
        Some(&3.0)
    );
    assert_eq!(
        samples.get("helpdesk_filing_duration_seconds_count"),
        Some(&3.0)
    );
    assert_eq!(
        samples.get("helpdesk_tickets_open{tier=\"L1\"}"),
        Some(&3.0)
    );
    assert_eq!(
        samples.get("helpdesk_tickets_open{tier=\"L4\"}"),
        Some(&0.0)
    );
    assert_eq!(samples.get("helpdesk_outbox_pending"), Some(&0.0));
    assert_eq!(
        samples.get("helpdesk_imap_connected"),
        Some(&0.0),
        "a Maildir desk"
    );
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("helpdesk_build_info{version="))
    );
    assert!(samples.contains_key("helpdesk_mail_send_failures_total"));
    assert!(samples.contains_key("helpdesk_outbox_oldest_pending_seconds"));
    // Never an address or a code in a label.
    for key in samples.keys() {
        assert!(!key.contains('@') && !key.contains("HD-"), "{key}");
    }
}

/// Marks a file immutable for as long as it lives (`chattr +i`): not even root can then
/// open it for writing, which is what a read-only database looks like to a new connection.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Immutable {
        let out = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output()
            .expect("chattr (e2fsprogs) is installed by scripts/test");
        assert!(
            out.status.success(),
            "chattr +i: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn healthz_follows_the_database() {
    let desk = start("");
    let ok = get(desk.port, "/healthz");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let body: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["tasks"]["source"], "running");
    assert_eq!(body["tasks"]["outbox"], "running");
    assert_eq!(body["tasks"]["scheduler"], "running");
    let db = desk.dir.path().join("helpdesk.db");
    {
        let _ro = Immutable::set(&db);
        let down = get(desk.port, "/healthz");
        assert_eq!(down.status, 503, "{}", down.body);
        let body: serde_json::Value = serde_json::from_str(&down.body).unwrap();
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["database"], "not writable");
        assert!(
            body["problems"][0]
                .as_str()
                .unwrap()
                .contains("refuses a write"),
            "{body}"
        );
    }
    let back = get(desk.port, "/healthz");
    assert_eq!(back.status, 200, "{}", back.body);
}

/// Debian's Chromium, headless, as the README's screenshot is made.
fn chromium(url: &str, png: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,900",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .output()
        .expect("chromium is installed by scripts/test");
    assert!(
        png.exists(),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// What the page wrote to its console (Chromium logs every message as `CONSOLE`).
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

/// How many colours a screenshot has: a blank page has one.
fn colours(png: &Path) -> usize {
    let pixmap = resvg::tiny_skia::Pixmap::load_png(png).expect("a PNG");
    let mut seen = std::collections::HashSet::new();
    for p in pixmap.pixels() {
        seen.insert((p.red(), p.green(), p.blue()));
    }
    seen.len()
}

#[test]
fn the_pages_load_in_a_real_browser_without_console_errors() {
    let shots = tempfile::tempdir().unwrap();
    // The console is read: a page that writes an error is caught.
    let control = shots.path().join("control.html");
    std::fs::write(
        &control,
        "<!doctype html><p>x</p><script>console.error('control-error')</script>",
    )
    .unwrap();
    let stderr = chromium(
        &format!("file://{}", control.display()),
        &shots.path().join("control.png"),
    );
    assert!(
        console(&stderr).iter().any(|l| l.contains("control-error")),
        "the console is not read:\n{stderr}"
    );

    let desk = start("");
    deliver(
        desk.dir.path(),
        0,
        "ana@example.com",
        "Printer jammed",
        "The printer on floor 2 is jammed.",
    );
    let code = wait_for_tickets(&desk.config, 1).remove(0);
    for (name, path) in [
        ("overview", "/".to_string()),
        ("tickets", "/tickets?status=backlog".into()),
        ("ticket", format!("/tickets/{code}")),
    ] {
        let png = shots.path().join(format!("{name}.png"));
        let stderr = chromium(&format!("http://127.0.0.1:{}{path}", desk.port), &png);
        let messages = console(&stderr);
        assert!(messages.is_empty(), "{name}: the console says {messages:?}");
        let n = colours(&png);
        assert!(n > 20, "{name}: the screenshot looks blank ({n} colours)");
        if let Ok(keep) = std::env::var("HELPDESK_SCREENSHOTS") {
            std::fs::copy(&png, Path::new(&keep).join(format!("{name}.png"))).unwrap();
        }
    }
}

/// `helpdesk dashboard`: the pages alone beside a desk's database (a second machine).
#[test]
fn the_dashboard_runs_alone_beside_a_desk() {
    let (dir, config) = crate::cli::init_desk();
    let mail = dir.path().join("mail.eml");
    std::fs::write(
        &mail,
        customer_mail(
            "zoe@example.com",
            "Scanner offline",
            "alone@example.com",
            "Help",
        ),
    )
    .unwrap();
    let out = helpdesk(&["--config", &config, "ingest", mail.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No [dashboard] and no --listen: it says what to add.
    let out = helpdesk(&["--config", &config, "dashboard"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[dashboard]") && err.contains("--listen"),
        "{err}"
    );
    // Beyond loopback without a token: refused, naming the key.
    let out = helpdesk(&["--config", &config, "dashboard", "--listen", "0.0.0.0:8025"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dashboard.token"), "{err}");

    let [port] = free_ports::<1>();
    let child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args([
            "--config",
            &config,
            "dashboard",
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("HELPDESK_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running {
        config,
        log: dir.path().join("none.log"),
        dir,
        port,
        child,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(r) = try_get(port, "/healthz", &[]) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "helpdesk dashboard never answered"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(
        health.body.contains("not run by this process"),
        "{}",
        health.body
    );
    let (count, _) = listed(running.port, "/tickets?status=backlog");
    assert_eq!(count, 1);
    let overview = get(running.port, "/");
    assert!(overview.body.contains("Scanner offline"));
}

/// A client that connects and never finishes its request (slowloris) is cut off once the
/// header-read timeout passes, and other requests are served meanwhile.
#[test]
fn a_request_that_never_ends_is_cut_off() {
    let desk = start("");
    let mut slow = TcpStream::connect(("127.0.0.1", desk.port)).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    assert_eq!(get(desk.port, "/healthz").status, 200, "served meanwhile");
    let mut rest = Vec::new();
    // The server closes the connection (perhaps after a 408): read returns, never times out.
    let read = slow.read_to_end(&mut rest);
    let took = started.elapsed();
    assert!(
        read.is_ok() || took < Duration::from_secs(25),
        "the connection was never closed: {read:?}"
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(25),
        "closed after {took:?}, the timeout is {:?}",
        helpdesk::web::HEADER_READ_TIMEOUT
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}
