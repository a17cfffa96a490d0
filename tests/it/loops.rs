//! Automatic mail cannot loop for ever: against an autoresponder that answers everything
//! (without any of the headers that mark it as a machine) and between two gateways, the
//! exchange dies out by itself once a recipient's budget of automatic mail is spent.

use crate::support::{Desk, embedded_config};
use helpdesk::pipeline::Processed;

/// Outgoing mail queued after outbox row `after`: (id, recipient, raw).
async fn queued_after(desk: &Desk, after: i64) -> Vec<(i64, String, Vec<u8>)> {
    sqlx::query_as(
        "SELECT o.id, json_extract(o.rcpt_to, '$[0]'), m.raw FROM outbox o \
         JOIN messages m ON m.id = o.message_row WHERE o.id > ? ORDER BY o.id",
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

#[tokio::test]
async fn a_loop_with_an_autoresponder_dies_out_when_its_budget_is_spent() {
    let desk = Desk::new().await;
    let robot = "robot@example.org";
    let mut last = 0;
    let mut rounds = 0;
    let mut pending = vec![naive_answer(robot, "support@example.test", 0)];
    while let Some(mail) = pending.pop() {
        rounds += 1;
        assert!(rounds < 100, "the loop did not die out");
        assert!(matches!(desk.file(&mail).await, Processed::Filed { .. }));
        for (id, to, _) in queued_after(&desk, last).await {
            last = id;
            if to == robot {
                pending.push(naive_answer(robot, "support@example.test", rounds));
            }
        }
    }
    let budget = helpdesk::config::MailBudget::default();
    let acks = desk
        .count("SELECT COUNT(*) FROM outbox WHERE rcpt_to = '[\"robot@example.org\"]'")
        .await;
    assert_eq!(
        acks,
        i64::from(budget.per_hour),
        "one hour's budget, then silence"
    );
    assert_eq!(rounds, budget.per_hour as usize + 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'mail_held'")
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
    assert_eq!(a.count("SELECT COUNT(*) FROM outbox").await, per_hour);
    assert_eq!(b.count("SELECT COUNT(*) FROM outbox").await, per_hour);
    assert!(
        exchanged <= 2 * per_hour as usize + 1,
        "{exchanged} mails exchanged"
    );
}
