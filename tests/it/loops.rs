//! Automatic mail cannot loop for ever: against an autoresponder that answers everything
//! (without any of the headers that mark it as a machine) and between two gateways, the
//! exchange dies out by itself once a recipient's budget of automatic mail is spent.

use crate::support::{Desk, embedded_config};
use helpdesk::pipeline::Processed;

/// Outgoing mail queued after outbox row `after`: (id, recipient, raw).
async fn queued_after(desk: &Desk, after: i64) -> Vec<(i64, String, Vec<u8>)> {
    sqlx::query_as(
        "SELECT o.id, json_extract(o.rcpt_to, '$[0]'), m.raw FROM outbox o \
         JOIN messages m ON m.id = o.message_row WHERE o.id > ? AND o.status NOT IN ('held', 'superseded') ORDER BY o.id",
    )
    .bind(after)
    .fetch_all(&desk.db().await)
    .await
    .unwrap()
}

/// What a badly behaved responder sends back: a fresh subject without our code, and none
/// of Auto-Submitted, Precedence or our loop header.
fn naive_answer(from: &str, to: &str, n: usize) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: We have received your message\r\n\
         Message-ID: <naive-{n}@{}>\r\n\r\nThank you for your message, we will answer shortly.\r\n",
        from.split('@').nth(1).unwrap()
    )
    .into_bytes()
}

/// Runs the exchange with the robot until nothing more goes to it; returns the rounds.
async fn exchange(desk: &Desk, robot: &str, last: &mut i64, first: Vec<Vec<u8>>) -> usize {
    let mut rounds = 0;
    let mut pending = first;
    while let Some(mail) = pending.pop() {
        rounds += 1;
        assert!(rounds < 100, "the loop did not die out");
        assert!(matches!(desk.file(&mail).await, Processed::Filed { .. }));
        for (id, to, _) in queued_after(desk, *last).await {
            *last = id;
            if to == robot {
                pending.push(naive_answer(
                    robot,
                    "support@example.test",
                    1000 + *last as usize,
                ));
            }
        }
    }
    rounds
}

#[tokio::test]
async fn a_loop_with_an_autoresponder_dies_out_when_its_budget_is_spent() {
    use helpdesk::clock::FixedClock;
    let clock = std::sync::Arc::new(FixedClock::at(helpdesk::clock::Clock::now(
        &helpdesk::clock::SystemClock,
    )));
    let desk = Desk::with_clock(&embedded_config(), clock.clone()).await;
    let robot = "robot@example.org";
    let mut last = 0;
    let first = vec![naive_answer(robot, "support@example.test", 0)];
    let rounds = exchange(&desk, robot, &mut last, first).await;
    let budget = helpdesk::config::MailBudget::default();
    let sent = "SELECT COUNT(*) FROM outbox WHERE rcpt_to = '[\"robot@example.org\"]' AND status <> 'held' AND status <> 'superseded'";
    assert_eq!(
        desk.count(sent).await,
        i64::from(budget.per_hour),
        "one hour's budget, then silence"
    );
    assert_eq!(rounds, budget.per_hour as usize + 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'mail_held'")
            .await,
        1
    );
    // Held mail is deferred: an hour later it goes, the robot answers at once, and the
    // exchange runs again, within the budget, until a mail is held again.
    clock.advance(3_600_000);
    let pass = desk.app.pipeline.release_held().await.unwrap();
    assert_eq!(pass.released, 1);
    clock.advance(60_000);
    let mut again = Vec::new();
    for (id, to, _) in queued_after(&desk, last).await {
        last = id;
        assert_eq!(to, robot);
        again.push(naive_answer(robot, "support@example.test", 500));
    }
    exchange(&desk, robot, &mut last, again).await;
    // The robot answered the released mail at once: its held mail is superseded, not
    // released, and the loop is over.
    clock.advance(3_600_000);
    let pass = desk.app.pipeline.release_held().await.unwrap();
    assert_eq!((pass.released, pass.superseded), (0, 1), "{pass:?}");
    assert!(queued_after(&desk, last).await.is_empty());
    assert_eq!(
        desk.count(sent).await,
        2 * i64::from(budget.per_hour),
        "two hours' budget in all"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'mail_superseded' AND json_extract(detail, '$.loop')")
            .await,
        1
    );
}

#[tokio::test]
async fn two_gateways_never_start_a_loop_and_naive_relays_die_out() {
    let a = Desk::new().await;
    let b_config = embedded_config().replace("support@example.test", "support@b.example");
    let b = Desk::with_config(&b_config).await;
    // A customer of A is, by mistake, B's support address.
    let first = naive_answer("support@b.example", "support@example.test", 0);
    assert!(matches!(a.file(&first).await, Processed::Filed { .. }));
    let acks = queued_after(&a, 0).await;
    assert_eq!(acks.len(), 1);
    // B receives A's acknowledgement as it was sent: automatic mail, never answered.
    let outcome = b.file(&acks[0].2).await;
    assert!(matches!(outcome, Processed::Ignored(_)), "{outcome:?}");
    assert_eq!(b.count("SELECT COUNT(*) FROM outbox").await, 0);

    // Relayed by something that strips every marker (a forwarder rewriting mail), each
    // gateway sees a person writing; the budgets still end it.
    let strip = |raw: &[u8], from: &str, to: &str, n: usize| -> Vec<u8> {
        let text = String::from_utf8_lossy(raw);
        let body = text
            .split("\r\n\r\n")
            .skip(1)
            .collect::<Vec<_>>()
            .join("\r\n\r\n");
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: Automatic answer {n}\r\nMessage-ID: <relay-{n}@{}>\r\n\r\n{body}",
            from.split('@').nth(1).unwrap()
        )
        .into_bytes()
    };
    let (mut last_a, mut last_b) = (acks[0].0, 0);
    let mut to_b = vec![strip(
        &acks[0].2,
        "support@example.test",
        "support@b.example",
        0,
    )];
    let mut exchanged = 0;
    while !to_b.is_empty() {
        let mut to_a = Vec::new();
        for mail in to_b.drain(..) {
            exchanged += 1;
            assert!(exchanged < 200, "the loop did not die out");
            b.file(&mail).await;
            for (id, _, raw) in queued_after(&b, last_b).await {
                last_b = id;
                to_a.push(strip(
                    &raw,
                    "support@b.example",
                    "support@example.test",
                    exchanged,
                ));
            }
        }
        for mail in to_a {
            exchanged += 1;
            a.file(&mail).await;
            for (id, _, raw) in queued_after(&a, last_a).await {
                last_a = id;
                to_b.push(strip(
                    &raw,
                    "support@example.test",
                    "support@b.example",
                    exchanged,
                ));
            }
        }
    }
    let per_hour = i64::from(helpdesk::config::MailBudget::default().per_hour);
    let sent = "SELECT COUNT(*) FROM outbox WHERE status <> 'held'";
    assert_eq!(a.count(sent).await, per_hour);
    assert_eq!(b.count(sent).await, per_hour);
    assert!(
        exchanged <= 2 * per_hour as usize + 1,
        "{exchanged} mails exchanged"
    );
}

/// A `multipart/report` is a machine's, whatever its report type and wherever it sits in
/// the mail: a challenge-response system ("confirm you are human") sent as a delivery
/// report, bare or wrapped in a `multipart/mixed`, got an acknowledgement.
#[tokio::test]
async fn no_report_is_ever_answered_bare_or_wrapped() {
    let desk = Desk::with_config(&embedded_config()).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/machines");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "eml") {
            continue;
        }
        let outcome = desk.file(&std::fs::read(&path).unwrap()).await;
        assert!(
            matches!(outcome, Processed::Ignored(_)),
            "{}: {outcome:?}",
            path.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 2);
    // And every report in the shared corpus, with a new subject so none threads.
    let corpus = crate::support::corpus_dir();
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        if path.extension().is_some_and(|e| e == "eml")
            && text.contains("multipart/report")
            && text.contains("report-type")
        {
            let outcome = desk.file(&raw).await;
            assert!(
                !matches!(
                    outcome,
                    Processed::Filed { .. } | Processed::Appended { .. }
                ),
                "{}: {outcome:?}",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "{seen}");
    assert_eq!(desk.count("SELECT COUNT(*) FROM outbox").await, 0);
}

/// Two automatic mails to the customer in one plan (an agent's `#assign` then `#resolve`:
/// "Bob has your request", then "resolved") share the customer's budget: with two automatic
/// mails an hour, one already spent on the acknowledgement, the second of the plan is held.
/// The counts are read once before the plan is written; the mail it queues spends them as
/// it goes.
#[tokio::test]
async fn the_mails_of_one_plan_share_their_recipients_budget() {
    let config = format!(
        "{}\n[limits]\nautomatic_mail_per_hour = 2\nautomatic_mail_per_day = 10\n\n\
         [notifications]\ncustomer_on_assignment = true\n",
        crate::attacks::roster_config()
    );
    let desk = Desk::with_config(&config).await;
    let code = crate::attacks::open(&desk, "marie@example.fr", "<budget-1@example.fr>").await;
    let agent = crate::support::customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Imprimante bloquée"),
        "<budget-2@example.test>",
        "#assign bob@example.test\n#resolve",
    );
    assert!(matches!(
        desk.file(&agent).await,
        Processed::Appended { .. }
    ));
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, status FROM outbox WHERE rcpt_to LIKE '%marie@example.fr%' ORDER BY id",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    let kinds: Vec<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["acknowledgement", "status_update", "status_update"],
        "{rows:?}"
    );
    assert_ne!(rows[1].1, "held", "{rows:?}");
    assert_eq!(
        rows[2].1, "held",
        "the third automatic mail of the hour waits: {rows:?}"
    );
    // Each of the plan's mails continues the customer's thread from the one before it,
    // though none of them was written when the next was rendered.
    let ids: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT message_id, in_reply_to, refs FROM messages WHERE direction = 'outbound' \
         AND to_addrs LIKE '%marie@example.fr%' ORDER BY id",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(ids.len(), 3, "{ids:?}");
    for pair in ids.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert!(after.1.contains(&before.0), "In-Reply-To: {ids:?}");
        assert!(after.2.contains(&before.0), "References: {ids:?}");
    }
}
