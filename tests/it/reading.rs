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

/// A desk in Paris business hours, with an organisation's name, Alice answering in French
/// and Bob in English.
fn paris_desk() -> String {
    format!(
        r#"{}
[agent_mail]
require_authentication = false

[calendar]
time_zone = "Europe/Paris"
working_days = ["mon", "tue", "wed", "thu", "fri"]
working_hours = ["08:30-12:30", "13:30-17:30"]

[[agents]]
name = "Alice Martin"
address = "alice@example.test"
tiers = ["L1", "L2"]
languages = ["fr"]

[[agents]]
name = "Bob Smith"
address = "bob@example.test"
tiers = ["L1", "L2"]
languages = ["en"]
"#,
        crate::support::embedded_config().replacen(
            "[gateway]",
            "[gateway]\norganisation = \"Service informatique de la mairie\"",
            1
        )
    )
}

/// Monday 30 November 2026, 10:00 in Paris.
fn monday_ten() -> std::sync::Arc<helpdesk::clock::FixedClock> {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:00:00+01:00")
        .unwrap()
        .timestamp_millis();
    std::sync::Arc::new(helpdesk::clock::FixedClock::at(at))
}

async fn filed(desk: &Desk, raw: &[u8]) -> String {
    match desk.file(raw).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    }
}

/// Found by a newcomer's run: the acknowledgement promised nothing concrete. It says when a
/// person answers (the first-response target in the desk's calendar), what the request was
/// understood as, that an urgent one is urgent, and who the desk is.
#[tokio::test]
async fn the_acknowledgement_promises_a_time_names_the_category_and_says_urgent() {
    let desk = Desk::with_clock(&paris_desk(), monday_ten()).await;
    // Normal priority: 8 business hours from Monday 10:00 is Tuesday 10:00.
    filed(
        &desk,
        &customer_mail(
            "Marie Dupont <marie@example.fr>",
            "Imprimante bloquée",
            "ack-1@example.fr",
            "Bonjour, l'imprimante du deuxième étage affiche un bourrage papier et n'imprime plus rien.",
        ),
    )
    .await;
    let ack = crate::attacks::last_text(&desk, "acknowledgement", "marie@example.fr").await;
    for words in [
        "est bien arrivée chez Service informatique de la mairie",
        "« imprimante »",
        "au plus tard mardi 1er décembre à 10 h (heure de Paris)",
        "Cordialement,\nService informatique de la mairie",
    ] {
        assert!(ack.contains(words), "{words:?} in:\n{ack}");
    }
    assert!(!ack.contains("urgente"), "{ack}");
    // Urgent (a phishing report): one business hour.
    filed(
        &desk,
        &customer_mail(
            "Kim Lee <kim@example.org>",
            "Phishing email asking for my password",
            "ack-2@example.org",
            "Hello, I received a phishing email that asks me to confirm my password on a strange website.",
        ),
    )
    .await;
    let ack = crate::attacks::last_text(&desk, "acknowledgement", "kim@example.org").await;
    for words in [
        "has reached Service informatique de la mairie",
        "\"security\"",
        "treating it as urgent",
        "by Monday 30 November at 11:00 at the latest (Paris time)",
    ] {
        assert!(ack.contains(words), "{words:?} in:\n{ack}");
    }
}

/// Without a calendar the desk counts round the clock in UTC, and says so.
#[tokio::test]
async fn without_a_calendar_the_acknowledgement_says_round_the_clock_utc() {
    let desk = Desk::with_clock(&roster_config(), monday_ten()).await;
    open(&desk, "marie@example.fr", "utc-1@example.fr").await;
    let ack = crate::attacks::last_text(&desk, "acknowledgement", "marie@example.fr").await;
    // Normal: 8 hours from 09:00 UTC.
    assert!(
        ack.contains("au plus tard lundi 30 novembre à 17 h (heure UTC ; nos délais courent 24 h sur 24, 7 jours sur 7)"),
        "{ack}"
    );
}

/// The four mails a ticket's people read most, in French and in English, as they
/// receive them (`cargo test the_mails_people_read -- --nocapture` prints them).
#[tokio::test]
async fn the_mails_people_read_in_french_and_in_english() {
    let desk = Desk::with_clock(&paris_desk(), monday_ten()).await;
    for (customer, subject, text, agent, commands) in [
        (
            "Marie Dupont <marie@example.fr>",
            "Imprimante bloquée",
            "Bonjour, l'imprimante du deuxième étage affiche un bourrage papier et n'imprime plus rien.",
            "alice@example.test",
            "#priorité haute\n#escalader L9\n#résoudre\n\nBonjour Marie, j'ai retiré la feuille coincée dans le bac 2 : l'imprimante fonctionne de nouveau.",
        ),
        (
            "Kim Lee <kim@example.org>",
            "Printer jammed",
            "Hello, the printer on the second floor shows a paper jam and prints nothing at all.",
            "bob@example.test",
            "#priority high\n#escalate L9\n#resolve\n\nHello Kim, I removed the sheet stuck in tray 2: the printer works again.",
        ),
    ] {
        let address = customer.split('<').nth(1).unwrap().trim_end_matches('>');
        let code = filed(
            &desk,
            &customer_mail(customer, subject, &format!("{address}.1"), text),
        )
        .await;
        assert_eq!(assignee(&desk, &code).await, agent);
        let reply = customer_mail(
            agent,
            &format!("Re: [{code}] {subject}"),
            &format!("{address}.2"),
            commands,
        );
        desk.file(&reply).await;
        let mut shown = String::new();
        for (kind, to) in [
            ("acknowledgement", address),
            ("agent_notification", agent),
            ("agent_receipt", agent),
            ("status_update", address),
        ] {
            let text = crate::attacks::last_text(&desk, kind, to).await;
            shown.push_str(&format!("==== {kind} to {to}\n{text}\n"));
        }
        println!("{shown}");
        let french = address.ends_with(".fr");
        let (refused, resolved) = if french {
            (
                "REFUSÉ   #escalader L9 : « L9 » n'est pas un niveau (L2, L3 ou L4)",
                "résolue",
            )
        } else {
            (
                "REFUSED  #escalate L9: \"L9\" is not a tier (L2, L3 or L4)",
                "resolved",
            )
        };
        assert!(shown.contains(refused), "{shown}");
        assert!(shown.contains(resolved), "{shown}");
    }
}
