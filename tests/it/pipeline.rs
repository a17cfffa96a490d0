//! A ticket's life through the pipeline on the embedded store, without servers.

use helpdesk::pipeline::Processed;

use crate::support::{Desk, customer_mail};

async fn file_new(desk: &Desk, from: &str, subject: &str, id: &str) -> String {
    match desk
        .file(&customer_mail(
            from,
            subject,
            id,
            "Bonjour, le VPN ne marche plus depuis ce matin.",
        ))
        .await
    {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

#[tokio::test]
async fn a_customer_reply_reopens_a_resolved_ticket() {
    let desk = Desk::new().await;
    let code = file_new(&desk, "marie@example.fr", "VPN en panne", "v1@example.fr").await;
    sqlx::query("UPDATE tickets SET status = 'resolved'")
        .execute(&desk.db().await)
        .await
        .unwrap();
    let reply = customer_mail(
        "marie@example.fr",
        &format!("Re: [{code}] VPN en panne"),
        "v2@example.fr",
        "Ça recommence.",
    );
    assert!(matches!(
        desk.file(&reply).await,
        Processed::Appended { reopened: true, .. }
    ));
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM tickets WHERE status = 'open' AND reopen_count = 1")
            .await,
        1
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'reopened'")
            .await,
        1
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox").await,
        1,
        "no second acknowledgement"
    );
}

#[tokio::test]
async fn an_out_of_office_reply_threads_but_neither_reopens_nor_gets_an_answer() {
    let desk = Desk::new().await;
    let code = file_new(&desk, "marie@example.fr", "VPN en panne", "o1@example.fr").await;
    sqlx::query("UPDATE tickets SET status = 'resolved'")
        .execute(&desk.db().await)
        .await
        .unwrap();
    let oof = format!(
        "From: marie@example.fr\r\nSubject: Réponse automatique : [{code}] VPN en panne\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <oof@example.fr>\r\n\r\nJe suis absente.\r\n"
    );
    assert!(matches!(
        desk.file(oof.as_bytes()).await,
        Processed::Appended {
            reopened: false,
            ..
        }
    ));
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM tickets WHERE status = 'resolved'")
            .await,
        1
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM outbox").await, 1);
}

#[tokio::test]
async fn a_mistyped_code_does_not_thread_onto_another_ticket() {
    let desk = Desk::new().await;
    let code = file_new(&desk, "marie@example.fr", "VPN en panne", "t1@example.fr").await;
    // Change one symbol of the code: the check symbol rejects it, so this is a new request.
    let mut typo: Vec<char> = code.chars().collect();
    typo[4] = if typo[4] == 'X' { 'Y' } else { 'X' };
    let typo: String = typo.into_iter().collect();
    let other = customer_mail(
        "paul@example.fr",
        &format!("[{typo}] Imprimante"),
        "t2@example.fr",
        "Hello, the printer is broken.",
    );
    assert!(matches!(desk.file(&other).await, Processed::Filed { .. }));
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 2);
}

#[tokio::test]
async fn a_reply_that_lost_its_code_and_headers_threads_by_subject_for_the_same_customer_only() {
    let desk = Desk::new().await;
    file_new(&desk, "marie@example.fr", "VPN en panne", "s1@example.fr").await;
    let same = customer_mail(
        "marie@example.fr",
        "RE: VPN en panne",
        "s2@example.fr",
        "Toujours rien.",
    );
    assert!(matches!(desk.file(&same).await, Processed::Appended { .. }));
    let stranger = customer_mail(
        "paul@example.fr",
        "Re: VPN en panne",
        "s3@example.fr",
        "Moi aussi.",
    );
    assert!(
        matches!(desk.file(&stranger).await, Processed::Filed { .. }),
        "another customer's Re: is a new ticket"
    );
}

#[tokio::test]
async fn the_acknowledgement_speaks_the_customers_language() {
    let desk = Desk::new().await;
    desk.file(&customer_mail(
        "a@example.com",
        "Printer",
        "l1@example.com",
        "Hello, the printer on the second floor is jammed again. Could you send someone?",
    ))
    .await;
    desk.file(&customer_mail("b@example.fr", "Imprimante", "l2@example.fr", "Bonjour, l'imprimante du deuxième étage est encore bloquée. Pouvez-vous envoyer quelqu'un ?")).await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT t.customer, m.body_text FROM messages m JOIN tickets t ON t.id = m.ticket_id WHERE m.direction = 'outbound' ORDER BY t.id")
        .fetch_all(&desk.db().await)
        .await
        .unwrap();
    assert!(rows[0].1.starts_with("Hello"), "{}", rows[0].1);
    assert!(rows[1].1.starts_with("Bonjour"), "{}", rows[1].1);
}
