//! Personal data: `helpdesk customers forget` leaves nothing of the person anywhere in the
//! database (every text and blob column of every table searched), touches no other
//! customer's ticket, keeps the statistics; `[retention]` purges old raw mail and closed
//! tickets the same way.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::cli::init_desk;
use crate::support::{customer_mail, helpdesk, stdout};

const ZOE: &str = "zoe.marchetti@example.org";
const ZOE_NAME: &str = "Zoe Marchetti";

fn ingest(config: &str, dir: &std::path::Path, name: &str, raw: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, raw).unwrap();
    let out = helpdesk(&["--config", config, "ingest", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out).trim().split('\t').nth(2).unwrap().to_string()
}

/// Every (table, column, rowid) whose text or blob holds `needle`, case-insensitively.
fn occurrences(db: &rusqlite::Connection, needle: &str) -> Vec<String> {
    let needle = needle.to_lowercase();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = db
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for column in columns {
            let mut query = db
                .prepare(&format!("SELECT rowid, \"{column}\" FROM \"{table}\""))
                .unwrap();
            let mut rows = query.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let bytes: Vec<u8> = match row.get_ref(1).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        t.to_vec()
                    }
                    _ => continue,
                };
                if String::from_utf8_lossy(&bytes)
                    .to_lowercase()
                    .contains(&needle)
                {
                    found.push(format!(
                        "{table}.{column} rowid {}",
                        row.get::<_, i64>(0).unwrap()
                    ));
                }
            }
        }
    }
    found
}

/// Every row that belongs to a ticket, as text: to compare before and after.
fn ticket_rows(db: &rusqlite::Connection, code: &str) -> Vec<String> {
    let id: i64 = db
        .query_row("SELECT id FROM tickets WHERE code = ?", [code], |r| {
            r.get(0)
        })
        .unwrap();
    let mut out = Vec::new();
    for (table, key) in [
        ("tickets", "id"),
        ("messages", "ticket_id"),
        ("events", "ticket_id"),
        ("outbox", "ticket_id"),
        ("ticket_participants", "ticket_id"),
    ] {
        let mut q = db
            .prepare(&format!(
                "SELECT * FROM {table} WHERE {key} = ? ORDER BY rowid"
            ))
            .unwrap();
        let n = q.column_count();
        let mut rows = q.query([id]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n)
                .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{table}: {}", cells.join("|")));
        }
    }
    out
}

fn dump(db: &rusqlite::Connection) -> String {
    let mut all = String::new();
    for table in [
        "tickets",
        "messages",
        "events",
        "outbox",
        "ticket_participants",
        "attachments",
    ] {
        let mut q = db
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let n = q.column_count();
        let mut rows = q.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..n {
                all.push_str(&format!("{:?}|", row.get_ref(i).unwrap()));
            }
            all.push('\n');
        }
    }
    all
}

#[test]
fn forget_leaves_nothing_of_the_person_and_touches_no_one_else() {
    let (dir, config) = init_desk();
    let d = dir.path();
    // Zoe's ticket: her mail with an attachment, her reply, the desk's acknowledgement and
    // status mail, an agent's resolve.
    let with_attachment = format!(
        "From: {ZOE_NAME} <{ZOE}>\r\nTo: support@example.test\r\nSubject: Printer on floor 3 for {ZOE_NAME}\r\n\
         Message-ID: <zoe-1@example.org>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         The printer jams. Call me, {ZOE_NAME}, on 06 12 34 56 78.\r\n--b\r\n\
         Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"zoe-marchetti-scan.pdf\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n--b--\r\n"
    );
    let zoe_code = ingest(&config, d, "zoe1.eml", with_attachment.as_bytes());
    let reply = customer_mail(
        &format!("{ZOE_NAME} <{ZOE}>"),
        &format!("Re: [{zoe_code}] Printer"),
        "zoe-2@example.org",
        &format!("Still jammed. {ZOE_NAME}"),
    );
    assert_eq!(ingest(&config, d, "zoe2.eml", &reply), zoe_code);
    // Paul: another customer, nothing to do with her.
    let paul_code = ingest(
        &config,
        d,
        "paul.eml",
        &customer_mail(
            "Paul Durand <paul@example.net>",
            "VPN",
            "paul-1@example.net",
            "No VPN.",
        ),
    );
    // Ana copies Zoe on her own request.
    let ana = format!(
        "From: Ana Lopes <ana@example.net>\r\nTo: support@example.test\r\nCc: {ZOE_NAME} <{ZOE}>\r\n\
         Subject: Access for the new team\r\nMessage-ID: <ana-1@example.net>\r\n\
         Date: Mon, 2 Mar 2026 11:00:00 +0100\r\nContent-Type: text/plain\r\n\r\nPlease give access.\r\n"
    );
    let ana_code = ingest(&config, d, "ana.eml", ana.as_bytes());
    let out = helpdesk(&["--config", &config, "tickets", "resolve", &zoe_code]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let db_path = d.join("helpdesk.db");
    let db = rusqlite::Connection::open(&db_path).unwrap();
    assert!(
        !occurrences(&db, ZOE).is_empty(),
        "the scan finds her before"
    );
    assert!(!occurrences(&db, ZOE_NAME).is_empty());
    let paul_before = ticket_rows(&db, &paul_code);
    let stats = |config: &str| {
        let out = helpdesk(&["--config", config, "stats", "--json"]);
        assert!(out.status.success());
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // The moment the figures were computed at is not a figure.
        if let Some(o) = v.as_object_mut() {
            o.remove("generated_at");
        }
        v
    };
    let stats_before = stats(&config);
    let before = dump(&db);

    // A dry run changes nothing and says what would go.
    let out = helpdesk(&[
        "--config",
        &config,
        "customers",
        "forget",
        ZOE,
        "--dry-run",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["tickets"], 1);
    assert!(dry["messages"].as_u64().unwrap() >= 4, "{dry}");
    assert_eq!(dry["attachments"], 1);
    assert!(dry["mentions"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(dump(&db), before, "the dry run changed the database");
    let erasures: i64 = db
        .query_row("SELECT COUNT(*) FROM erasures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(erasures, 0);

    // The erasure.
    let out = helpdesk(&[
        "--config",
        &config,
        "customers",
        "forget",
        ZOE,
        "--as",
        "dpo@example.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = stdout(&out);
    println!("{report}");
    assert!(
        report.starts_with("Erasure #1, asked by dpo@example.test:"),
        "{report}"
    );
    assert!(
        report.contains("tickets of theirs were blanked"),
        "{report}"
    );

    assert_eq!(
        occurrences(&db, ZOE),
        Vec::<String>::new(),
        "her address remains"
    );
    assert_eq!(
        occurrences(&db, ZOE_NAME),
        Vec::<String>::new(),
        "her name remains"
    );
    assert_eq!(
        occurrences(&db, "06 12 34 56 78"),
        Vec::<String>::new(),
        "her words remain"
    );
    assert_eq!(occurrences(&db, "zoe-marchetti-scan"), Vec::<String>::new());
    // Paul's ticket is exactly as it was; Ana's is still hers.
    assert_eq!(ticket_rows(&db, &paul_code), paul_before);
    let (customer, subject): (String, String) = db
        .query_row(
            "SELECT customer, subject FROM tickets WHERE code = ?",
            [&ana_code],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (customer.as_str(), subject.as_str()),
        ("ana@example.net", "Access for the new team")
    );
    // The statistics are the same figures.
    assert_eq!(stats(&config), stats_before);
    // The record: when, by whom, how many; its reason; no address.
    let (by, reason, tickets): (String, String, i64) = db
        .query_row("SELECT by_actor, reason, tickets FROM erasures", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!(
        (by.as_str(), reason.as_str(), tickets),
        ("dpo@example.test", "request", 1)
    );
    // Her ticket is listed, blanked, under its code.
    let out = helpdesk(&["--config", &config, "tickets", "show", &zoe_code, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout(&out).to_lowercase().contains("marchetti"));
    // She can write again: a new ticket, as for anyone.
    let again = ingest(
        &config,
        d,
        "zoe3.eml",
        &customer_mail(ZOE, "Hello again", "zoe-3@example.org", "New question."),
    );
    assert_ne!(again, zoe_code);
}

#[test]
fn retention_purges_old_raw_mail_and_erases_old_closed_tickets() {
    let (dir, config) = init_desk();
    let d = dir.path();
    let old = ingest(
        &config,
        d,
        "old.eml",
        &customer_mail(
            "Old Customer <old@example.org>",
            "Old printer",
            "old-1@example.org",
            "Jammed.",
        ),
    );
    let recent = ingest(
        &config,
        d,
        "recent.eml",
        &customer_mail(
            "Ruth Recent <ruth@example.org>",
            "Keyboard",
            "ruth-1@example.org",
            "Broken.",
        ),
    );
    assert!(
        helpdesk(&["--config", &config, "tickets", "close", &old])
            .status
            .success()
    );
    // Age the data: the old ticket closed three years ago, every mail two years old but
    // one (the recent one's, kept).
    let db = rusqlite::Connection::open(d.join("helpdesk.db")).unwrap();
    let three_years = 3 * 365 * 86_400_000_i64;
    db.execute(
        "UPDATE tickets SET status_since = status_since - ?1 WHERE code = ?2",
        rusqlite::params![three_years, old],
    )
    .unwrap();
    db.execute(
        "UPDATE messages SET received_at = received_at - ?1 WHERE ticket_id = \
         (SELECT id FROM tickets WHERE code = ?2)",
        rusqlite::params![three_years, old],
    )
    .unwrap();
    // The recent ticket's own mail is old too; the ticket is open: only its raw goes.
    db.execute(
        "UPDATE messages SET received_at = received_at - ?1 WHERE direction = 'inbound' \
         AND ticket_id = (SELECT id FROM tickets WHERE code = ?2)",
        rusqlite::params![three_years, recent],
    )
    .unwrap();
    let recent_raw: i64 = db
        .query_row("SELECT SUM(length(raw)) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert!(recent_raw > 0);
    let toml = std::fs::read_to_string(&config).unwrap()
        + "\n[retention]\nraw_mail = \"2y\"\nclosed_tickets = \"1y\"\n";
    std::fs::write(&config, toml).unwrap();
    let gateway = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = db
            .query_row("SELECT COUNT(*) FROM erasures", [], |r| r.get(0))
            .unwrap();
        if n >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no retention purge");
        std::thread::sleep(Duration::from_millis(100));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()
        .unwrap();
    let output = gateway.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains("retention: erased the personal data of old closed tickets"),
        "{log}"
    );
    assert_eq!(occurrences(&db, "old@example.org"), Vec::<String>::new());
    assert_eq!(occurrences(&db, "Old Customer"), Vec::<String>::new());
    // The recent ticket keeps its customer and its raw mail.
    let (customer, raw): (String, i64) = db
        .query_row(
            "SELECT t.customer, SUM(length(m.raw)) FROM tickets t JOIN messages m ON m.ticket_id = t.id \
             WHERE t.code = ?",
            [&recent],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(customer, "ruth@example.org");
    assert!(raw > 0, "the acknowledgement's raw is recent");
    let (raw, body): (i64, String) = db
        .query_row(
            "SELECT length(m.raw), m.body_text FROM messages m JOIN tickets t ON m.ticket_id = t.id \
             WHERE t.code = ? AND m.direction = 'inbound'",
            [&recent],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(raw, 0, "two-year-old raw mail is dropped");
    assert!(body.contains("Broken."), "its text stays: {body:?}");
    let reasons: Vec<String> = db
        .prepare("SELECT reason FROM erasures ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(reasons, ["retention_raw_mail", "retention_closed_tickets"]);
    // A purge that finds nothing records nothing: a second start adds no row.
    let before: i64 = db
        .query_row("SELECT COUNT(*) FROM erasures", [], |r| r.get(0))
        .unwrap();
    let mut again = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    Command::new("kill")
        .arg("-TERM")
        .arg(again.id().to_string())
        .status()
        .unwrap();
    again.wait().unwrap();
    let after: i64 = db
        .query_row("SELECT COUNT(*) FROM erasures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(after, before);
}
