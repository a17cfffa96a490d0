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

async fn open(desk: &Desk, from: &str, id: &str) -> String {
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
    // Without a roster nobody can act as an agent: nothing to choose.
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

async fn outbox_to(desk: &Desk, rcpt: &str) -> Vec<String> {
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
    let (warning,): (String,) = sqlx::query_as(
        "SELECT m.body_text FROM outbox o JOIN messages m ON m.id = o.message_row \
         WHERE o.kind = 'agent_follow_up' AND o.rcpt_to LIKE '%' || ? || '%' ORDER BY o.id DESC LIMIT 1",
    )
    .bind(&assignee.0)
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert!(
        warning.contains("not authenticated"),
        "the assignee is warned: {warning}"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'vendor_replied'")
            .await,
        0
    );
}
