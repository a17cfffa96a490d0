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
