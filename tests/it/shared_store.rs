//! Several gateways, one desk: two instances (two `App`s, each with its own connections)
//! on one database, acting on the same ticket at the same instant. Each write transaction
//! locks the ticket it reads, so the second decides on what the first wrote: no change is
//! lost. Run on PostgreSQL (the store several gateways share) and on SQLite (one file,
//! several processes).

use std::sync::Arc;

use helpdesk::domain::ReferenceCode;
use helpdesk::pipeline::{Processed, SourceRef};

use crate::attacks::roster_config;
use crate::support::{Desk, customer_mail, postgres};

async fn two_instances_on_postgres() -> (Desk, Desk) {
    let db = Arc::new(postgres::database());
    let a = Desk::sharing(&roster_config(), db.clone()).await;
    let b = Desk::sharing(&roster_config(), db).await;
    (a, b)
}

async fn two_instances_on_sqlite() -> (Desk, Desk) {
    let a = Desk::with_config(&roster_config()).await;
    // The second instance opens the first one's file.
    let toml = roster_config().replace(
        "url = \"sqlite:helpdesk.db\"",
        &format!(
            "url = \"sqlite:{}\"",
            a.dir.path().join("helpdesk.db").display()
        ),
    );
    let b = Desk::with_config(&toml).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_ticket_are_all_kept_on_postgres() {
    let (a, b) = two_instances_on_postgres().await;
    concurrent_commands_on_one_ticket_are_all_kept(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_ticket_are_all_kept_on_sqlite() {
    let (a, b) = two_instances_on_sqlite().await;
    concurrent_commands_on_one_ticket_are_all_kept(a, b).await;
}

/// 100 rounds: through instance A, Alice sets the priority; through instance B at the
/// same instant, Bob gives the ticket to one of them. Both changes hold after each round,
/// and so does what follows from the priority: the first-response target, which every
/// change writes with the ticket's clock (a change decided on a stale ticket would write
/// back the old priority's target).
async fn concurrent_commands_on_one_ticket_are_all_kept(a: Desk, b: Desk) {
    let raw = customer_mail(
        "marie@example.fr",
        "Imprimante bloquée",
        "m.0",
        "Bourrage papier.",
    );
    let code = match a.file(&raw).await {
        Processed::Filed { code, .. } => code,
        other => panic!("{other:?}"),
    };
    let priorities = ["low", "high", "normal", "urgent"];
    let agents = ["alice@example.test", "bob@example.test"];
    // Each priority's target, set one at a time first.
    let mut due = std::collections::HashMap::new();
    for (n, priority) in priorities.iter().enumerate() {
        let set = customer_mail(
            "alice@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("warm.{n}"),
            &format!("#priority {priority}\n"),
        );
        a.file(&set).await;
        let t = ticket(&a, &code).await;
        assert_eq!(t.priority.as_str(), *priority);
        due.insert(*priority, t.sla.first_response_due.expect("a target"));
    }
    assert_eq!(
        due.values().collect::<std::collections::HashSet<_>>().len(),
        4,
        "each priority has its own target: {due:?}"
    );
    for round in 0..100 {
        let priority = priorities[round % priorities.len()];
        let agent = agents[(round / 4) % agents.len()];
        let set_priority = customer_mail(
            "alice@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("p.{round}"),
            &format!("#priority {priority}\n"),
        );
        let assign = customer_mail(
            "bob@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("a.{round}"),
            &format!("#assign {agent}\n"),
        );
        let (one, two) = tokio::join!(a.file(&set_priority), b.file(&assign));
        assert!(matches!(one, Processed::Appended { .. }), "{one:?}");
        assert!(matches!(two, Processed::Appended { .. }), "{two:?}");
        let ticket = ticket(&a, &code).await;
        assert_eq!(
            (ticket.priority.as_str(), ticket.assignee.as_deref()),
            (priority, Some(agent)),
            "round {round}: both changes kept"
        );
        assert_eq!(
            ticket.sla.first_response_due.as_ref(),
            Some(&due[priority]),
            "round {round}: the target of the priority set"
        );
    }
    let detail = b
        .app
        .pipeline
        .store()
        .ticket_detail(&code)
        .await
        .unwrap()
        .expect("the ticket");
    let inbound = detail
        .messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .count();
    assert_eq!(inbound, 205, "every mail is on the ticket, once");
    let changes = |kind: &str| detail.events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(changes("priority_changed"), 104, "one change a round");
}

async fn ticket(desk: &Desk, code: &ReferenceCode) -> helpdesk::store::TicketSummary {
    desk.app
        .pipeline
        .store()
        .ticket_detail(code)
        .await
        .unwrap()
        .expect("the ticket")
        .summary
}

/// Two gateways handed the same mail at the same instant (a mailbox read by both during a
/// takeover, an MTA delivering twice): one files it, the other, conflicting on the same
/// new rows, decides again and finds it filed. One ticket, one acknowledgement, no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_mail_filed_by_two_gateways_at_once_is_one_ticket() {
    let (a, b) = two_instances_on_postgres().await;
    for i in 0..30 {
        let raw = customer_mail(
            &format!("client{i}@example.fr"),
            "Imprimante bloquée",
            &format!("same.{i}"),
            "Bourrage papier.",
        );
        let source = SourceRef {
            key: Some(format!(
                "imap://support@127.0.0.1/INBOX;UIDVALIDITY=1/;UID={i}"
            )),
            checkpoint: None,
        };
        let (one, two) = tokio::join!(
            a.app.pipeline.process(&source, &raw),
            b.app.pipeline.process(&source, &raw)
        );
        let outcomes = [one.expect("no error"), two.expect("no error")];
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, Processed::Filed { .. }))
                .count(),
            1,
            "{outcomes:?}"
        );
    }
    assert_eq!(a.count("SELECT COUNT(*) FROM tickets").await, 30);
    assert_eq!(
        a.count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'")
            .await,
        30
    );
}

/// A gateway sends what another one queued at once: PostgreSQL's NOTIFY wakes its idle
/// outbox, which would otherwise look again only a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mail_queued_by_one_gateway_is_sent_at_once_by_another() {
    let (a, b) = two_instances_on_postgres().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let app = b.app.clone();
    let token = shutdown.clone();
    let running = tokio::spawn(async move { app.run(token).await });
    // B is idle: its outbox found nothing and sleeps.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let started = std::time::Instant::now();
    let raw = customer_mail(
        "marie@example.fr",
        "Imprimante bloquée",
        "n.1",
        "Bourrage papier.",
    );
    assert!(matches!(a.file(&raw).await, Processed::Filed { .. }));
    let outgoing = b.dir.path().join("outgoing");
    while std::fs::read_dir(&outgoing).map_or(0, |d| d.count()) < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "B did not send what A queued"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    println!("sent by the other gateway after {:?}", started.elapsed());
    shutdown.cancel();
    running.await.unwrap().unwrap();
    assert_eq!(
        std::fs::read_dir(a.dir.path().join("outgoing")).map_or(0, |d| d.count()),
        0,
        "A never ran its outbox"
    );
}

/// `helpdesk store copy` moves a SQLite desk into an empty PostgreSQL database: every
/// ticket reads the same through either store (messages, events, service levels), the
/// statistics are the same, a second copy into the now full database is refused, and the
/// copied desk goes on filing (new rows get new ids).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desk_copied_from_sqlite_to_postgres_reads_the_same_and_goes_on() {
    let desk = Desk::with_config(&roster_config()).await;
    let mut codes = Vec::new();
    for i in 0..6 {
        let raw = customer_mail(
            &format!("Client {i} <client{i}@example.fr>"),
            &format!("Imprimante bloquée {i}"),
            &format!("copy.{i}"),
            "Bonjour, bourrage papier au 2e étage. Zoé\0 a essayé.",
        );
        match desk.file(&raw).await {
            Processed::Filed { code, .. } => codes.push(code.to_string()),
            other => panic!("{other:?}"),
        }
    }
    let agent = customer_mail(
        "alice@example.test",
        &format!("Re: [{}] Imprimante bloquée 0", codes[0]),
        "copy.agent",
        "#priority high\n#resolve\n\nBonjour, c'est réparé.",
    );
    assert!(matches!(
        desk.file(&agent).await,
        Processed::Appended { .. }
    ));
    let again = customer_mail(
        "client1@example.fr",
        &format!("Re: [{}] Imprimante bloquée 1", codes[1]),
        "copy.again",
        "Toujours bloquée.",
    );
    assert!(matches!(
        desk.file(&again).await,
        Processed::Appended { .. }
    ));

    let db = postgres::database();
    let from = format!("sqlite:{}", desk.dir.path().join("helpdesk.db").display());
    let copy = |to: &str| {
        crate::support::helpdesk(&[
            "store",
            "copy",
            "--from",
            &from,
            "--to",
            to,
            "--password-file",
            db.password_file.to_str().unwrap(),
        ])
    };
    let out = copy(&db.url);
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = |table: &str| -> u64 {
        printed
            .lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(table)).then(|| words.next()?.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no count for {table}: {printed}"))
    };
    assert_eq!(rows("tickets"), 6, "{printed}");
    assert_eq!(
        rows("messages") as i64,
        desk.count("SELECT COUNT(*) FROM messages").await
    );
    assert_eq!(
        rows("events") as i64,
        desk.count("SELECT COUNT(*) FROM events").await
    );
    assert_eq!(
        rows("outbox") as i64,
        desk.count("SELECT COUNT(*) FROM outbox").await
    );

    // The same desk, read through each store.
    let pg_dir = tempfile::tempdir().unwrap();
    let pg_config = pg_dir.path().join("helpdesk.toml");
    std::fs::write(
        &pg_config,
        crate::support::on_database(&roster_config(), &db),
    )
    .unwrap();
    let read = |config: &std::path::Path, args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--config", config.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = crate::support::helpdesk(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(o) = v.as_object_mut() {
            o.remove("generated_at");
        }
        v
    };
    let sqlite_config = desk.config_path.clone();
    assert_eq!(
        read(&sqlite_config, &["tickets", "list", "--json"]),
        read(&pg_config, &["tickets", "list", "--json"])
    );
    for code in &codes {
        assert_eq!(
            read(&sqlite_config, &["tickets", "show", code, "--json"]),
            read(&pg_config, &["tickets", "show", code, "--json"]),
            "{code}"
        );
    }
    assert_eq!(
        read(&sqlite_config, &["stats", "--json"]),
        read(&pg_config, &["stats", "--json"])
    );

    let out = copy(&db.url);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let pg = Desk::sharing(&roster_config(), Arc::new(db)).await;
    let later = customer_mail(
        "client2@example.fr",
        &format!("Re: [{}] Imprimante bloquée 2", codes[2]),
        "copy.later",
        "Merci de me tenir au courant.",
    );
    assert!(matches!(pg.file(&later).await, Processed::Appended { .. }));
    let fresh = customer_mail(
        "nouveau@example.fr",
        "Écran noir",
        "copy.new",
        "Écran noir.",
    );
    assert!(matches!(pg.file(&fresh).await, Processed::Filed { .. }));
    assert_eq!(pg.count("SELECT COUNT(*) FROM tickets").await, 7);
}
