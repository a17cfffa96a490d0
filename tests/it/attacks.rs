//! What a hostile or careless mail does to a desk: each test reproduces one way an attack
//! run hurt the gateway (forged agents, floods, crashes, stalls) and checks it no longer
//! does.

use helpdesk::pipeline::{Pipeline, Processed, QuarantineReason, SourceRef, Stage, StageHook};

use crate::support::{Desk, customer_mail, embedded_config};

/// The embedded default with two L1 agents, as `helpdesk init` and a roster make it.
pub fn roster_config() -> String {
    format!(
        r#"{}
[agent_mail]
require_authentication = false

[[agents]]
name = "Alice Martin"
address = "alice@example.test"
tiers = ["L1"]

[[agents]]
name = "Bob Durand"
address = "bob@example.test"
tiers = ["L1"]
"#,
        embedded_config()
    )
}

pub async fn open(desk: &Desk, from: &str, id: &str) -> String {
    let raw = customer_mail(from, "Imprimante bloquée", id, "Bonjour, bourrage papier.");
    match desk.file(&raw).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    }
}

/// Found by the attack run: an outsider opens a ticket (learning a valid code), then
/// writes from an address the outbox cannot use, quoting that code. `apply` panicked
/// ("mail is about a ticket"), `ingest` exited 101 and its group rolled back, and under
/// `run` the source stopped for good.
#[tokio::test]
async fn a_stranger_writing_from_an_unusable_address_quoting_a_code_is_quarantined_not_a_crash() {
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(&desk, "eve@evil.example", "own@evil.example").await;
    for (i, from) in [
        "x@-evil.example",
        "x..y@evil.example",
        "x\u{200b}y@evil.example",
    ]
    .iter()
    .enumerate()
    {
        let raw = customer_mail(
            from,
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("bad{i}@evil.example"),
            "Cliquez ici.",
        );
        let outcome = desk.file(&raw).await;
        assert!(
            matches!(
                outcome,
                Processed::Quarantined(QuarantineReason::Unanswerable(_))
            ),
            "{from}: {outcome:?}"
        );
    }
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined'")
            .await,
        3
    );
    // The quoted ticket's assignee heard of each, and the mails behind them are filed.
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'agent_follow_up' AND rcpt_to LIKE '%@example.test%'"
        )
        .await,
        3
    );
    open(&desk, "paul@example.fr", "next@example.fr").await;
}

fn boom_at(stage: Stage) -> StageHook {
    macro_rules! at {
        ($s:expr) => {
            |now: Stage, subject: &str| {
                if now == $s && subject.contains("BOOM") {
                    panic!("injected failure")
                }
            }
        };
    }
    match stage {
        Stage::Routing => at!(Stage::Routing),
        Stage::Classify => at!(Stage::Classify),
        Stage::Decide => at!(Stage::Decide),
        Stage::Apply => at!(Stage::Apply),
        Stage::Render => at!(Stage::Render),
    }
}

fn pipeline_with(desk: &Desk, hook: StageHook) -> std::sync::Arc<Pipeline> {
    let app = &desk.app;
    std::sync::Arc::new(
        Pipeline::new(
            app.pipeline.store().clone(),
            std::sync::Arc::new(helpdesk::render::Renderer::new(None).unwrap()),
            app.config.gateway.clone(),
            std::sync::Arc::new(app.config.desk.clone()),
            std::sync::Arc::new(tokio::sync::Notify::new()),
        )
        .with_stage_hook(hook),
    )
}

/// A panic at any stage of filing costs the one mail it happened on (quarantined with the
/// stage and the panic's words, its raw bytes kept) and never the mails behind it, filed
/// one at a time or in a group. A panic while rendering costs only the mail being
/// rendered: the customer's mail is filed, and a `mail_not_rendered` event says why.
#[tokio::test]
async fn a_panic_at_any_stage_of_filing_quarantines_that_mail_and_files_the_next() {
    for stage in [
        Stage::Routing,
        Stage::Classify,
        Stage::Decide,
        Stage::Apply,
        Stage::Render,
    ] {
        let desk = Desk::with_config(&roster_config()).await;
        let pipeline = pipeline_with(&desk, boom_at(stage));
        let boom = customer_mail("marie@example.fr", "BOOM", "boom@example.fr", "Bonjour.");
        let outcome = pipeline.process(&SourceRef::none(), &boom).await.unwrap();
        let expect_filed = stage == Stage::Render;
        if expect_filed {
            assert!(matches!(outcome, Processed::Filed { .. }), "{outcome:?}");
            assert_eq!(
                desk.count(
                    "SELECT COUNT(*) FROM events WHERE kind = 'mail_not_rendered' AND detail LIKE '%injected failure%'"
                )
                .await,
                2,
                "the acknowledgement and the agent's notification"
            );
        } else {
            assert_eq!(
                outcome,
                Processed::Quarantined(QuarantineReason::Failed {
                    stage,
                    error: "injected failure".into()
                }),
                "{stage:?}"
            );
            assert_eq!(
                desk.count(
                    "SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined' \
                     AND outcome_detail LIKE 'the gateway failed while %: injected failure' \
                     AND length(raw) > 0"
                )
                .await,
                1,
                "{stage:?}"
            );
            assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 0);
        }
        // In a group: the mails before and after are filed, the failing one costs itself.
        let group: Vec<(usize, SourceRef, Vec<u8>)> = (0..3)
            .map(|i| {
                let subject = if i == 1 { "BOOM encore" } else { "Imprimante" };
                (
                    i,
                    SourceRef::none(),
                    customer_mail(
                        "paul@example.fr",
                        subject,
                        &format!("g{i}@example.fr"),
                        "Bonjour, bourrage.",
                    ),
                )
            })
            .collect();
        let read = pipeline.read_ahead(group).await.unwrap();
        let (_, outcomes) = pipeline.file_read_ahead(read).await;
        let labels: Vec<&str> = outcomes
            .iter()
            .map(|o| o.as_ref().unwrap().label())
            .collect();
        let middle = if expect_filed {
            "new_ticket"
        } else {
            "quarantined"
        };
        assert_eq!(labels, ["new_ticket", middle, "new_ticket"], "{stage:?}");
    }
}

/// Found by the attack run: with a roster and no word about authentication, anyone could
/// write as an agent. The commands that file mail now refuse to start until the operator
/// chooses, and the error names the key and the choices.
#[tokio::test]
async fn with_a_roster_the_gateway_refuses_to_start_until_agent_authentication_is_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("helpdesk.toml");
    let unchosen = roster_config().replace("[agent_mail]\nrequire_authentication = false\n", "");
    std::fs::write(&path, &unchosen).unwrap();
    let config = path.to_str().unwrap();
    for args in [
        vec!["--config", config, "check-config"],
        vec!["--config", config, "run"],
        vec!["--config", config, "ingest", "/dev/null"],
    ] {
        let out = crate::support::helpdesk(&args);
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("agent_mail.require_authentication") && err.contains("authserv_id"),
            "{args:?}: {err}"
        );
    }
    // Without a roster nobody can act as an agent: nothing to choose. (The articles
    // folder the configuration names is there, as `helpdesk init` leaves it.)
    helpdesk::kb::starter::write(&dir.path().join("kb")).unwrap();
    std::fs::write(&path, embedded_config()).unwrap();
    let out = crate::support::helpdesk(&["--config", config, "check-config"]);
    assert!(out.status.success());
    // Chosen either way: it starts.
    std::fs::write(&path, roster_config()).unwrap();
    let out = crate::support::helpdesk(&["--config", config, "check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The desk with authentication on, trusting `mx.corp.example`'s results, and a vendor.
fn authenticated_config() -> String {
    roster_config()
        .replace(
            "[agent_mail]\nrequire_authentication = false\n",
            "[agent_mail]\nrequire_authentication = true\nauthserv_id = \"mx.corp.example\"\n\
         dns_server = \"127.0.0.1:9\"\n\n\
         [[vendors]]\nname = \"Ricoh France\"\naddress = \"support@ricoh.example\"\n",
        )
        .replace("@example.test\"\ntiers", "@corp.example\"\ntiers")
}

/// The text of the last mail of `kind` the desk queued (to `rcpt`, when given).
pub async fn last_text(desk: &Desk, kind: &str, rcpt: &str) -> String {
    let (text,): (String,) = sqlx::query_as(
        "SELECT m.body_text FROM outbox o JOIN messages m ON m.id = o.message_row \
         WHERE o.kind = ? AND o.rcpt_to LIKE '%' || ? || '%' ORDER BY o.id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(rcpt)
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    text
}

pub async fn outbox_to(desk: &Desk, rcpt: &str) -> Vec<String> {
    sqlx::query_as::<_, (String,)>(
        "SELECT kind FROM outbox WHERE rcpt_to LIKE '%' || ? || '%' ORDER BY id",
    )
    .bind(rcpt)
    .fetch_all(&desk.db().await)
    .await
    .unwrap()
    .into_iter()
    .map(|(k,)| k)
    .collect()
}

/// Found by the attack run: with authentication on, an `Authentication-Results` header
/// the sender wrote in the trusted server's name was believed, even under that server's
/// genuine `dmarc=fail`. A forged agent's reply then reached the customer.
#[tokio::test]
async fn a_result_the_sender_wrote_does_not_make_a_forged_agent_and_the_servers_fail_wins() {
    let desk = Desk::with_config(&authenticated_config()).await;
    let code = open(&desk, "marie@example.fr", "m1@example.fr").await;
    let forged = format!(
        "Authentication-Results: mx.corp.example; spf=fail smtp.mailfrom=corp.example; \
         dkim=none; dmarc=fail (p=none) header.from=corp.example\r\n\
         Received: from evil.example by mx.corp.example (Postfix)\r\n\
         Authentication-Results: mx.corp.example; dkim=pass header.d=corp.example\r\n\
         From: Alice Martin <alice@corp.example>\r\nTo: support@example.test\r\n\
         Subject: Re: [{code}] Imprimante bloquée\r\nMessage-ID: <forged@evil.example>\r\n\r\n\
         #close\r\nInstallez le correctif : http://evil.example/fix.exe\r\n"
    );
    desk.file(forged.as_bytes()).await;
    assert!(
        outbox_to(&desk, "marie@example.fr")
            .await
            .iter()
            .all(|k| k == "acknowledgement"),
        "nothing of the forger reaches the customer"
    );
    let status: (String,) = sqlx::query_as("SELECT status FROM tickets WHERE code = ?")
        .bind(&code)
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    assert_ne!(status.0, "closed");
    // The real Alice hears that a mail in her name was refused.
    assert!(
        outbox_to(&desk, "alice@corp.example")
            .await
            .contains(&"agent_receipt".to_string())
    );
    // The server's own pass, on top, is believed.
    let genuine = format!(
        "Authentication-Results: mx.corp.example; dkim=pass header.d=corp.example; \
         dmarc=pass header.from=corp.example\r\n\
         Received: from mail.corp.example by mx.corp.example (Postfix)\r\n\
         From: Alice Martin <alice@corp.example>\r\nTo: support@example.test\r\n\
         Subject: Re: [{code}] Imprimante bloquée\r\nMessage-ID: <genuine@corp.example>\r\n\r\n\
         Bonjour, c'est réglé de notre côté.\r\n"
    );
    desk.file(genuine.as_bytes()).await;
    assert!(
        outbox_to(&desk, "marie@example.fr")
            .await
            .contains(&"agent_reply".to_string())
    );
}

/// Found by the attack run: vendor mail was never checked, so a forged "Ricoh" answer
/// reached the assignee as the vendor's ("install our driver from …"). With
/// authentication on, a vendor's mail is checked like an agent's; one that fails is a
/// stranger's, and the assignee is warned not to trust it.
#[tokio::test]
async fn a_forged_vendor_answer_is_a_strangers_and_the_assignee_is_warned() {
    use helpdesk::desk::Command;
    use helpdesk::domain::{Actor, EmailAddress, ReferenceCode};
    let desk = Desk::with_config(&authenticated_config()).await;
    let code = open(&desk, "marie@example.fr", "v1@example.fr").await;
    let assignee: (String,) = sqlx::query_as("SELECT assignee FROM tickets WHERE code = ?")
        .bind(&code)
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    desk.app
        .pipeline
        .execute(
            &ReferenceCode::from_stored(code.clone()),
            &Command::Escalate {
                to: None,
                reason: Some("pilote".into()),
                vendor: Some("Ricoh France".into()),
            },
            Actor::Agent(EmailAddress::parse(&assignee.0).unwrap()),
        )
        .await
        .unwrap();
    let forged = format!(
        "Authentication-Results: mx.corp.example; dkim=none; dmarc=fail header.from=ricoh.example\r\n\
         From: Ricoh Support <support@ricoh.example>\r\nTo: support@example.test\r\n\
         Subject: Re: [{code}] Imprimante bloquée\r\nMessage-ID: <forged-ricoh@evil.example>\r\n\r\n\
         Please install our driver from http://evil.example/driver.exe\r\n"
    );
    desk.file(forged.as_bytes()).await;
    let kinds = outbox_to(&desk, &assignee.0).await;
    assert!(!kinds.contains(&"vendor_reply".to_string()), "{kinds:?}");
    let warning = last_text(&desk, "agent_follow_up", &assignee.0).await;
    assert!(
        warning.contains("n'a pas été authentifié"),
        "the assignee is warned: {warning}"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'vendor_replied'")
            .await,
        0
    );
}

async fn outbox_status(desk: &Desk, kind: &str, rcpt: &str) -> Vec<(String, i64)> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT status, COUNT(*) FROM outbox WHERE kind = ? AND rcpt_to LIKE '%' || ? || '%' \
         GROUP BY status ORDER BY status",
    )
    .bind(kind)
    .bind(rcpt)
    .fetch_all(&desk.db().await)
    .await
    .unwrap()
}

/// Found by the attack run: 2,000 mails from one sender spent the budget of the agents'
/// addresses too: 1,980 notifications were held, the next real customer's notification
/// was held, and held mail was never sent. Now the agents are never budgeted: while one
/// sender floods the desk, what the agents would hear of it is held and replaced by one
/// digest each; the flooder's acknowledgements are deferred, sent as the budget allows,
/// and superseded when their ticket moves on.
#[tokio::test]
async fn a_flood_from_one_sender_never_silences_the_agents_and_held_mail_is_deferred_not_dropped() {
    use helpdesk::clock::FixedClock;
    const MIN: i64 = 60_000;
    let clock = std::sync::Arc::new(FixedClock::at(helpdesk::clock::Clock::now(
        &helpdesk::clock::SystemClock,
    )));
    let desk = Desk::with_clock(&roster_config(), clock.clone()).await;
    let mut codes = Vec::new();
    for i in 0..60 {
        let raw = customer_mail(
            "bot@flood.example",
            &format!("Alerte {i}"),
            &format!("flood{i}@flood.example"),
            "Disque plein.",
        );
        match desk.file(&raw).await {
            Processed::Filed { code, .. } => codes.push(code.to_string()),
            other => panic!("{other:?}"),
        }
        clock.advance(1_000);
    }
    // The flooder: 10 acknowledgements an hour, the other 50 deferred.
    assert_eq!(
        outbox_status(&desk, "acknowledgement", "bot@flood.example").await,
        [("held".to_string(), 50), ("pending".to_string(), 10)]
    );
    // The agents: the first 20 notifications as usual, the rest held for a digest.
    let notifications = outbox_status(&desk, "agent_notification", "@example.test").await;
    assert_eq!(
        notifications,
        [("held".to_string(), 40), ("pending".to_string(), 20)]
    );
    // A real customer in the middle of the flood: her agent hears of her at once.
    let marie = open(&desk, "marie@example.fr", "marie-flood@example.fr").await;
    let (kind, status): (String, String) = sqlx::query_as(
        "SELECT o.kind, o.status FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE t.code = ? AND o.rcpt_to LIKE '%@example.test%'",
    )
    .bind(&marie)
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), status.as_str()),
        ("agent_notification", "pending")
    );

    // While the flood goes on, no digest; five quiet minutes later, one per agent.
    let pass = desk.app.pipeline.release_held().await.unwrap();
    assert_eq!(pass.digests, 0);
    clock.advance(6 * MIN);
    let pass = desk.app.pipeline.release_held().await.unwrap();
    assert_eq!(pass.digests, 2, "{pass:?}");
    assert_eq!(
        outbox_status(&desk, "agent_notification", "@example.test").await,
        [("pending".to_string(), 21), ("superseded".to_string(), 40)]
    );
    let digests: Vec<(String, String)> = sqlx::query_as(
        "SELECT o.rcpt_to, m.body_text FROM outbox o JOIN messages m ON m.id = o.message_row \
         WHERE o.kind = 'flood_digest' ORDER BY o.id",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(digests.len(), 2);
    let total: usize = digests
        .iter()
        .map(|(_, text)| {
            codes[20..]
                .iter()
                .filter(|c| text.contains(c.as_str()))
                .count()
        })
        .sum();
    assert_eq!(total, 40, "each held ticket is named in one digest");
    assert!(
        digests[0].1.contains("bot@flood.example a écrit 60 fois")
            && digests[0].1.contains("les 20 notifications"),
        "{}",
        digests[0].1
    );
    assert_eq!(desk.app.pipeline.release_held().await.unwrap().digests, 0);

    // One of the flood's tickets is closed meanwhile: its acknowledgement would say
    // something no longer true.
    desk.app
        .pipeline
        .execute(
            &helpdesk::domain::ReferenceCode::from_stored(codes[59].clone()),
            &helpdesk::desk::Command::Close,
            helpdesk::domain::Actor::Cli("test".into()),
        )
        .await
        .unwrap();
    // An hour on, the budget allows ten more, oldest first.
    clock.advance(60 * MIN);
    let pass = desk.app.pipeline.release_held().await.unwrap();
    assert_eq!((pass.released, pass.superseded), (10, 1), "{pass:?}");
    assert_eq!(
        outbox_status(&desk, "acknowledgement", "bot@flood.example").await,
        [
            ("held".to_string(), 39),
            ("pending".to_string(), 20),
            ("superseded".to_string(), 1)
        ]
    );
    let released: Vec<(String,)> = sqlx::query_as(
        "SELECT t.code FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE o.kind = 'acknowledgement' AND o.status = 'pending' \
         AND o.rcpt_to LIKE '%bot@flood.example%' ORDER BY o.id",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    let released: Vec<&str> = released.iter().map(|(c,)| c.as_str()).collect();
    assert_eq!(
        released[10..],
        codes[10..20].iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
}

/// Found by the attack run: mail queued by `tick --at` a year ahead counted against
/// today's budget. Only mail dated up to now counts.
#[tokio::test]
async fn mail_dated_in_the_future_does_not_spend_todays_budget() {
    use helpdesk::clock::FixedClock;
    let now = helpdesk::clock::Clock::now(&helpdesk::clock::SystemClock);
    let clock = std::sync::Arc::new(FixedClock::at(now + 365 * 24 * 3_600_000));
    let desk = Desk::with_clock(&embedded_config(), clock.clone()).await;
    for i in 0..12 {
        let raw = customer_mail(
            "marie@example.fr",
            &format!("Demande {i}"),
            &format!("future{i}@example.fr"),
            "Bonjour.",
        );
        desk.file(&raw).await;
    }
    clock.set(now);
    let raw = customer_mail(
        "marie@example.fr",
        "Aujourd'hui",
        "today@example.fr",
        "Bonjour.",
    );
    desk.file(&raw).await;
    let (status,): (String,) = sqlx::query_as(
        "SELECT status FROM outbox WHERE kind = 'acknowledgement' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(status, "pending");
}

/// Found by the attack run: `tickets list` on a desk whose database was deleted (or a
/// mistyped path) silently created a new, empty one. Commands that only read never create
/// a database; they say where they looked.
#[test]
fn commands_that_only_read_never_create_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("helpdesk.toml");
    std::fs::write(&path, embedded_config()).unwrap();
    let config = path.to_str().unwrap();
    for args in [
        vec!["--config", config, "tickets", "list"],
        vec!["--config", config, "tickets", "show", "HD-7K3M9QXA"],
        vec![
            "--config",
            config,
            "tick",
            "--at",
            "2027-01-04T09:00:00+01:00",
        ],
    ] {
        let out = crate::support::helpdesk(&args);
        assert_eq!(out.status.code(), Some(66), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(
            !dir.path().join("helpdesk.db").exists(),
            "{args:?} created it"
        );
    }
    // Listing the agents before the first mail is fine: nobody has a ticket yet.
    let out = crate::support::helpdesk(&["--config", config, "agents", "list"]);
    assert!(out.status.success());
    assert!(!dir.path().join("helpdesk.db").exists());
}

/// Found by the attack run: deleting the database while `run` ran went unnoticed: mail
/// was acknowledged and moved to cur/, then lost with the deleted file. Now the gateway
/// stops with an error naming the file, and the mail stays where it was.
#[tokio::test]
async fn deleting_the_database_under_a_running_gateway_stops_it_and_loses_no_mail() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("helpdesk.toml");
    std::fs::write(&config, embedded_config()).unwrap();
    let new = dir.path().join("Maildir/new");
    std::fs::create_dir_all(&new).unwrap();
    std::fs::create_dir_all(dir.path().join("Maildir/cur")).unwrap();
    std::fs::write(
        new.join("1.eml"),
        customer_mail(
            "marie@example.fr",
            "Imprimante",
            "d1@example.fr",
            "Bourrage.",
        ),
    )
    .unwrap();
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("HELPDESK_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(dir.path().join("Maildir/cur"))
        .unwrap()
        .count()
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first mail was not filed"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for f in ["helpdesk.db", "helpdesk.db-wal", "helpdesk.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(
        new.join("2.eml"),
        customer_mail("paul@example.fr", "VPN", "d2@example.fr", "Le VPN coupe."),
    )
    .unwrap();
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = run.kill();
            panic!("the gateway went on with its database deleted");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(run.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("was deleted or replaced"), "{err}");
    assert!(
        new.join("2.eml").exists(),
        "the mail that came after stays in new/ for the next start"
    );
}

/// Found by the attack run: a 30 MB plain-text mail took 521 s and 516 MB to file, nearly
/// all of it in the mail library adding CRs one by one to the agent's notification, which
/// carried the whole text. The text a mail carries is now capped, with a note saying how
/// much more the ticket holds.
#[tokio::test]
async fn a_huge_mail_is_filed_whole_and_the_agent_is_sent_its_beginning() {
    let desk = Desk::with_config(&roster_config()).await;
    let line = "Le journal du serveur répète la même erreur 0x80070005.\n";
    let body = line.repeat(4 * 1024 * 1024 / line.len());
    let raw = customer_mail(
        "marie@example.fr",
        "Journal complet",
        "huge@example.fr",
        &body,
    );
    let Processed::Filed { code, .. } = desk.file(&raw).await else {
        panic!("not filed")
    };
    let (raw_len, text_len, text_end): (i64, i64, String) = sqlx::query_as(
        "SELECT length(raw), length(CAST(body_text AS BLOB)), substr(body_text, -40) \
         FROM messages WHERE direction = 'inbound'",
    )
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(
        raw_len as usize,
        raw.len(),
        "the ticket keeps the mail whole"
    );
    // Its text columns keep the first megabyte, and say where the rest is.
    assert!(text_len < 1_100_000, "{text_len}");
    assert!(text_end.ends_with("KB more in the raw mail]"), "{text_end}");
    let (size, text): (i64, String) = sqlx::query_as(
        "SELECT length(m.raw), m.body_text FROM outbox o JOIN messages m ON m.id = o.message_row \
         WHERE o.kind = 'agent_notification'",
    )
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert!(size < 200_000, "the notification is {size} bytes");
    assert!(
        text.contains("Ko de plus dans le ticket)"),
        "{}",
        &text[..200]
    );
    assert!(text.contains(&code.to_string()));
}

/// Found by the attack run: with two agents, every assignment counted each agent's open
/// tickets over the whole desk (1,000 new mails took 1.24 s on a fresh desk and 34.6 s on
/// one of 20,000 tickets). The loads are now kept by the writer of plans as tickets are
/// assigned, escalated, resolved, reopened and closed; they must always equal a count
/// over the tickets.
#[tokio::test]
async fn the_agents_loads_kept_by_the_writer_match_a_count_over_the_tickets() {
    use helpdesk::desk::Command;
    use helpdesk::domain::{Actor, ReferenceCode};
    let toml = roster_config().replace(
        "[[agents]]\nname = \"Alice Martin\"",
        "[[agents]]\nname = \"Eve Expert\"\naddress = \"eve@example.test\"\ntiers = [\"L2\"]\n\n[[agents]]\nname = \"Alice Martin\"",
    );
    let desk = Desk::with_config(&toml).await;
    let mut codes = Vec::new();
    for i in 0..8 {
        codes.push(
            open(
                &desk,
                &format!("c{i}@example.fr"),
                &format!("l{i}@example.fr"),
            )
            .await,
        );
    }
    let run = |code: &str, command: Command| {
        let pipeline = desk.app.pipeline.clone();
        let code = ReferenceCode::from_stored(code.to_string());
        async move {
            pipeline
                .execute(&code, &command, Actor::Cli("test".into()))
                .await
                .map(|_| ())
        }
    };
    run(&codes[0], Command::Resolve).await.unwrap();
    run(&codes[0], Command::Reopen).await.unwrap();
    run(&codes[1], Command::Close).await.unwrap();
    run(
        &codes[2],
        Command::Escalate {
            to: None,
            reason: None,
            vendor: None,
        },
    )
    .await
    .unwrap();
    // Taken from whoever has it by the other L1 agent.
    let (had,): (String,) = sqlx::query_as("SELECT assignee FROM tickets WHERE code = ?")
        .bind(&codes[3])
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    let other = if had == "bob@example.test" {
        "alice@example.test"
    } else {
        "bob@example.test"
    };
    run(
        &codes[3],
        Command::Assign(helpdesk::domain::EmailAddress::parse(other).unwrap()),
    )
    .await
    .unwrap();
    run(&codes[4], Command::Resolve).await.unwrap();
    run(&codes[4], Command::Close).await.unwrap();
    // A customer's answer reopens a resolved ticket.
    run(&codes[5], Command::Resolve).await.unwrap();
    let reply = customer_mail(
        "c5@example.fr",
        &format!("Re: [{}] Imprimante bloquée", codes[5]),
        "l5-again@example.fr",
        "Toujours bloquée.",
    );
    desk.file(&reply).await;
    let kept: Vec<(String, i64)> = sqlx::query_as(
        "SELECT assignee, open_tickets FROM agent_loads WHERE open_tickets > 0 ORDER BY assignee",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    let counted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT assignee, COUNT(*) FROM tickets WHERE assignee IS NOT NULL \
         AND status NOT IN ('resolved', 'closed') GROUP BY assignee ORDER BY assignee",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(kept, counted);
    assert!(
        counted.iter().any(|(a, _)| a == "eve@example.test"),
        "{counted:?}"
    );
    let last: Vec<(String, i64)> = sqlx::query_as(
        "SELECT l.assignee, l.last_assigned_at - (SELECT MAX(assigned_at) FROM tickets t WHERE t.assignee = l.assignee) \
         FROM agent_loads l",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    assert!(last.iter().all(|(_, d)| *d == 0), "{last:?}");
}

/// Found by the attack run: the config accepted a busy loop, a retry with no pause, a
/// warning at 700% of a target, an escalation to L0, and a database in a folder that does
/// not exist. Each is refused, naming its key.
#[test]
fn careless_limits_in_the_config_are_refused_naming_their_key() {
    for (from, to, key) in [
        (
            "poll_interval = \"1s\"",
            "poll_interval = \"0s\"",
            "source.maildir.poll_interval",
        ),
        (
            "retry_base = \"30s\"",
            "retry_base = \"0s\"",
            "outbox.retry_base",
        ),
        (
            "retry_max = \"1h\"",
            "retry_max = \"1s\"",
            "outbox.retry_max",
        ),
    ] {
        let text = embedded_config().replace(from, to);
        assert_ne!(text, embedded_config(), "{from} is in the default config");
        let err = helpdesk::config::Config::from_toml(
            &text,
            std::path::Path::new("helpdesk.toml"),
            std::path::Path::new("/desk"),
            &helpdesk::config::ProcessEnv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{to}: {err}");
    }
    for (extra, key) in [
        ("[sla.normal]\nwarn_at = 7\n", "sla.normal.warn_at"),
        ("[sla.high]\nescalate_to = \"L0\"\n", "sla.high.escalate_to"),
        (
            "[waiting]\nremind_after = \"999999999d\"\n",
            "waiting.remind_after",
        ),
        ("[gateway]\n", "gateway"),
    ] {
        let text = if extra == "[gateway]\n" {
            embedded_config().replace("[gateway]", "[gateway]\nmax_participants = 0")
        } else {
            format!("{}\n{extra}", embedded_config())
        };
        let key = if extra == "[gateway]\n" {
            "gateway.max_participants"
        } else {
            key
        };
        let err = helpdesk::config::Config::from_toml(
            &text,
            std::path::Path::new("helpdesk.toml"),
            std::path::Path::new("/desk"),
            &helpdesk::config::ProcessEnv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{extra}: {err}");
    }
    // A database in a folder that does not exist: found when the file is loaded.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("helpdesk.toml");
    std::fs::write(
        &path,
        embedded_config().replace("sqlite:helpdesk.db", "sqlite:nowhere/helpdesk.db"),
    )
    .unwrap();
    let out = crate::support::helpdesk(&["--config", path.to_str().unwrap(), "check-config"]);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
}

/// Found by the attack run: `#wait 999999999d` told the customer the request would be
/// resolved "on 1970-01-01", and the next tick resolved it; `#escalate L4` with no vendor
/// (or a misspelt one) sent the ticket to L4 with nobody told. Both are refused, by mail
/// and on the command line, and the refusal lists the vendors.
#[tokio::test]
async fn an_absurd_wait_and_an_escalation_to_no_vendor_are_refused() {
    let toml = format!(
        "{}\n[[vendors]]\nname = \"Ricoh France\"\naddress = \"support@ricoh.example\"\n",
        roster_config()
    );
    let desk = Desk::with_config(&toml).await;
    let code = open(&desk, "marie@example.fr", "w1@example.fr").await;
    let (assignee,): (String,) = sqlx::query_as("SELECT assignee FROM tickets WHERE code = ?")
        .bind(&code)
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    let agent_mail = |id: &str, body: &str| {
        customer_mail(
            &assignee,
            &format!("Re: [{code}] Imprimante bloquée"),
            id,
            body,
        )
    };
    desk.file(&agent_mail(
        "w2@example.test",
        "#wait 999999999d\n#escalate L4 Rico pilote\n",
    ))
    .await;
    let (status, tier): (String, String) =
        sqlx::query_as("SELECT status, tier FROM tickets WHERE code = ?")
            .bind(&code)
            .fetch_one(&desk.db().await)
            .await
            .unwrap();
    assert_eq!((status.as_str(), tier.as_str()), ("new", "L1"));
    let receipt = last_text(&desk, "agent_receipt", "").await;
    assert!(receipt.contains("d'au plus un an"), "{receipt}");
    assert!(
        receipt.contains("Ricoh France"),
        "the vendors are listed: {receipt}"
    );
    // The command line says the same.
    let out = crate::support::helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "wait",
        &code,
        "999999999d",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than a year"));
    let out = crate::support::helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "escalate",
        &code,
        "--to",
        "L4",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Ricoh France"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Found by the attack run: a customer mail with `Reply-To: attacker@evil.example` sent the
/// acknowledgement to the attacker, who became a participant and got the agents' replies,
/// while the agent saw only the customer's name; a mail with 500 addresses in Cc made 501
/// participants. A Reply-To outside the sender's domain is shown to the agent and not
/// used; at most `max_participants` people come from one mail, and the agent is told who
/// was left out. A contact form listed in `contact_forms` is filed as the person's.
#[tokio::test]
async fn reply_to_elsewhere_and_huge_cc_lists_do_not_choose_who_hears_from_the_desk() {
    let toml = roster_config().replace(
        "[gateway]",
        "[gateway]\ncontact_forms = [\"webform@example.test\"]",
    );
    let desk = Desk::with_config(&toml).await;
    let ccs: Vec<String> = (0..500).map(|i| format!("cc{i}@big.example")).collect();
    let raw = format!(
        "From: Marie <marie@example.fr>\r\nReply-To: attacker@evil.example\r\nTo: support@example.test\r\n\
         Cc: {}\r\nSubject: Imprimante\r\nMessage-ID: <rt1@example.fr>\r\n\r\nBonjour, bourrage.\r\n",
        ccs.join(", ")
    );
    let Processed::Filed { code, .. } = desk.file(raw.as_bytes()).await else {
        panic!()
    };
    let json = crate::support::helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "show",
        code.as_str(),
        "--json",
    ]);
    let detail: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let participants = detail["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 10, "{participants:?}");
    assert!(!participants.iter().any(|p| p == "attacker@evil.example"));
    assert_eq!(outbox_to(&desk, "attacker@evil.example").await.len(), 0);
    assert_eq!(
        outbox_to(&desk, "marie@example.fr").await,
        ["acknowledgement"]
    );
    let notice = last_text(&desk, "agent_notification", "").await;
    assert!(notice.contains("attacker@evil.example"), "{notice}");
    assert!(notice.contains("491 adresse(s) en copie"), "{notice}");
    // A Reply-To in the sender's own domain is theirs.
    let own = customer_mail("paul@example.fr", "VPN", "rt2@example.fr", "Le VPN coupe.");
    let own = String::from_utf8(own).unwrap().replacen(
        "To:",
        "Reply-To: paul.secretariat@example.fr\r\nTo:",
        1,
    );
    desk.file(own.as_bytes()).await;
    assert_eq!(
        outbox_to(&desk, "paul.secretariat@example.fr").await,
        ["acknowledgement"]
    );
    // A web form's mail is the person's.
    let form = "From: Formulaire <webform@example.test>\r\nReply-To: Jeanne <jeanne@gmail.example>\r\n\
                To: support@example.test\r\nSubject: Demande depuis le site\r\n\
                Message-ID: <form1@example.test>\r\n\r\nMon compte est bloqué.\r\n";
    let Processed::Filed { code, .. } = desk.file(form.as_bytes()).await else {
        panic!()
    };
    let (customer,): (String,) = sqlx::query_as("SELECT customer FROM tickets WHERE code = ?")
        .bind(code.as_str())
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    assert_eq!(customer, "jeanne@gmail.example");
    assert_eq!(
        outbox_to(&desk, "jeanne@gmail.example").await,
        ["acknowledgement"]
    );
}

/// Found by the attack run: an agent's HTML-only reply written in `<div>`s (as Outlook and
/// Gmail write) became `#priority urgent#wait 2dHello customer`: one refused command, and
/// the answer lost. Each block is a line again.
#[tokio::test]
async fn an_html_only_agent_reply_keeps_its_commands_apart_from_its_answer() {
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(&desk, "marie@example.fr", "h1@example.fr").await;
    let (assignee,): (String,) = sqlx::query_as("SELECT assignee FROM tickets WHERE code = ?")
        .bind(&code)
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    let reply = format!(
        "From: {assignee}\r\nTo: support@example.test\r\nSubject: Re: [{code}] Imprimante bloquée\r\n\
         Message-ID: <h2@example.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
         <html><body><div>#priority urgent</div><div>#wait 2d</div><div>Hello customer,</div>\
         <div>please restart the printer.</div></body></html>\r\n"
    );
    desk.file(reply.as_bytes()).await;
    let (priority, status): (String, String) =
        sqlx::query_as("SELECT priority, status FROM tickets WHERE code = ?")
            .bind(&code)
            .fetch_one(&desk.db().await)
            .await
            .unwrap();
    assert_eq!(
        (priority.as_str(), status.as_str()),
        ("urgent", "waiting_on_customer")
    );
    let answer = last_text(&desk, "agent_reply", "").await;
    assert!(
        answer.contains("Hello customer,\nplease restart the printer."),
        "{answer}"
    );
    assert!(!answer.contains('#'), "{answer}");
}
