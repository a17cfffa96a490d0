//! What people read: the order mails arrive in, one language per mail, the promise the
//! acknowledgement makes. Each test reads the mail as queued for its recipient.

use helpdesk::pipeline::Processed;

use crate::attacks::{open, outbox_to, roster_config};
use crate::support::{Desk, customer_mail};

/// The assignee of ticket `code`.
async fn assignee(desk: &Desk, code: &str) -> String {
    let (a,): (String,) = sqlx::query_as("SELECT assignee FROM tickets WHERE code = ?")
        .bind(code)
        .fetch_one(&desk.db().await)
        .await
        .unwrap();
    a
}

/// Found by a newcomer's run: `#resolve` with an answer sent the customer "resolved, rate
/// us" first and the answer second, threaded under the status mail.
#[tokio::test]
async fn an_answer_with_resolve_reaches_the_customer_before_the_status_mail_which_threads_under_it()
{
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(&desk, "marie@example.fr", "order-1@example.fr").await;
    let agent = assignee(&desk, &code).await;
    let reply = customer_mail(
        &agent,
        &format!("Re: [{code}] Imprimante bloquée"),
        "order-2@example.test",
        "#résoudre\n\nBonjour Marie, j'ai retiré la feuille coincée : l'imprimante fonctionne.",
    );
    assert!(matches!(
        desk.file(&reply).await,
        Processed::Appended { .. }
    ));
    assert_eq!(
        outbox_to(&desk, "marie@example.fr").await,
        ["acknowledgement", "agent_reply", "status_update"]
    );
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT o.kind, m.message_id, m.in_reply_to FROM outbox o JOIN messages m ON m.id = o.message_row \
         WHERE o.rcpt_to LIKE '%marie@example.fr%' ORDER BY o.id",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap();
    let (_, answer_id, _) = &rows[1];
    let (_, _, status_parent) = &rows[2];
    // `in_reply_to` is kept as a JSON list of ids.
    let parents: Vec<String> = serde_json::from_str(status_parent.as_deref().unwrap()).unwrap();
    assert_eq!(parents, std::slice::from_ref(answer_id));
}
