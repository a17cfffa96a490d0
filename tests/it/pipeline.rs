//! A ticket's life through the pipeline on the embedded store, without servers.

use helpdesk::domain::{ReferenceCode, TicketStatus};
use helpdesk::pipeline::Processed;
use helpdesk::store::StoredOutcome;

fn now_millis() -> i64 {
    helpdesk::clock::Clock::now(&helpdesk::clock::SystemClock)
}

use crate::support::{Desk, customer_mail};

/// Sets a ticket's status through the store, as an agent's command will.
async fn set_status(desk: &Desk, code: &str, status: TicketStatus) {
    let code = ReferenceCode::parse(&Default::default(), code).unwrap();
    let store = desk.app.pipeline.store();
    let mut tx = store.begin().await.unwrap();
    let ticket = tx.ticket_by_code(&code).await.unwrap().expect("ticket");
    tx.set_ticket_status(ticket.id, status, false, now_millis())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn detail(desk: &Desk, code: &str) -> helpdesk::store::TicketDetail {
    let code = ReferenceCode::parse(&Default::default(), code).unwrap();
    desk.app
        .pipeline
        .store()
        .ticket_detail(&code)
        .await
        .unwrap()
        .expect("ticket")
}

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
    set_status(&desk, &code, TicketStatus::Resolved).await;
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
        desk.count("SELECT COUNT(*) FROM outbox WHERE kind = 'status_update'")
            .await,
        1,
        "the customer is told the ticket is open again"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'")
            .await,
        1,
        "no second acknowledgement"
    );
}

#[tokio::test]
async fn an_out_of_office_reply_threads_but_neither_reopens_nor_gets_an_answer() {
    let desk = Desk::new().await;
    let code = file_new(&desk, "marie@example.fr", "VPN en panne", "o1@example.fr").await;
    set_status(&desk, &code, TicketStatus::Resolved).await;
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

#[tokio::test]
async fn a_different_mail_reusing_a_message_id_is_filed_on_its_own_and_the_collision_logged() {
    let desk = Desk::new().await;
    let first = file_new(
        &desk,
        "marie@example.fr",
        "VPN en panne",
        "same@erp.example",
    )
    .await;
    let other = customer_mail(
        "paul@example.com",
        "Printer jammed",
        "same@erp.example",
        "Hello, the printer on floor 3 is jammed.",
    );
    let outcome = desk.file(&other).await;
    let Processed::Filed { code, .. } = outcome else {
        panic!("a different mail with a reused Message-ID must get its own ticket: {outcome:?}")
    };
    assert_ne!(code.to_string(), first);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox").await,
        2,
        "paul is answered"
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'message_id_collision'")
            .await,
        1
    );
    assert_eq!(
        detail(&desk, &first).await.messages.len(),
        2,
        "marie's ticket is untouched"
    );
}

#[tokio::test]
async fn the_same_mail_arriving_by_a_second_route_is_a_duplicate() {
    let desk = Desk::new().await;
    file_new(
        &desk,
        "marie@example.fr",
        "VPN en panne",
        "route@example.fr",
    )
    .await;
    let mut again =
        b"Received: from relay2.example.net by mx.example.test; Mon, 2 Mar 2026 10:00:05 +0100\r\n"
            .to_vec();
    again.extend(customer_mail(
        "marie@example.fr",
        "VPN en panne",
        "route@example.fr",
        "Bonjour, le VPN ne marche plus depuis ce matin.",
    ));
    assert_eq!(
        desk.file(&again).await,
        Processed::Duplicate(StoredOutcome::NewTicket)
    );
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(desk.count("SELECT COUNT(*) FROM outbox").await, 1);
}

#[tokio::test]
async fn a_copy_of_a_quarantined_mail_goes_to_quarantine_too() {
    let desk = Desk::new().await;
    let broken = b"no header here, only words\r\n".to_vec();
    assert!(desk.file(&broken).await.is_quarantined());
    let again = desk.file(&broken).await;
    assert_eq!(again, Processed::Duplicate(StoredOutcome::Quarantined));
    assert!(
        again.is_quarantined(),
        "the source moves it to Quarantine, not Processed"
    );
}

#[tokio::test]
async fn a_stranger_quoting_a_valid_code_gets_a_ticket_of_their_own_and_the_cc_of_the_first_mail_does_not()
 {
    let desk = Desk::new().await;
    let first = b"From: Marie <marie@example.fr>\r\nTo: support@example.test\r\nCc: Chef <chef@example.fr>, support@example.test\r\nSubject: VPN en panne\r\nMessage-ID: <p1@example.fr>\r\n\r\nBonjour, le VPN ne marche plus.\r\n";
    let Processed::Filed { code, .. } = desk.file(first).await else {
        panic!("new ticket expected")
    };
    let code = code.to_string();
    let mut outcomes = Vec::new();
    for (from, id) in [
        ("chef@example.fr", "p2@example.fr"),
        ("stranger@elsewhere.example", "p3@elsewhere.example"),
        ("marie@example.fr", "p4@example.fr"),
    ] {
        let reply = customer_mail(
            from,
            &format!("Re: [{code}] VPN en panne"),
            id,
            "Une remarque.",
        );
        outcomes.push(desk.file(&reply).await);
    }
    assert!(matches!(outcomes[0], Processed::Appended { .. }));
    let Processed::Filed { code: own, .. } = &outcomes[1] else {
        panic!("the stranger's own ticket: {:?}", outcomes[1])
    };
    assert_ne!(own.as_str(), code);
    assert!(matches!(outcomes[2], Processed::Appended { .. }));
    // The stranger gets the acknowledgement of their own ticket, and nothing of Marie's.
    let (to_stranger,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE o.rcpt_to LIKE '%stranger@%' AND t.code = ?",
    )
    .bind(&code)
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(
        to_stranger, 0,
        "nothing of Marie's ticket reaches the stranger"
    );
    let json = detail(&desk, &code).await.to_json();
    let inbound: Vec<String> = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "inbound")
        .map(|m| m["from"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        inbound,
        ["marie@example.fr", "chef@example.fr", "marie@example.fr"]
    );
    assert_eq!(
        json["participants"],
        serde_json::json!(["chef@example.fr", "marie@example.fr"])
    );
}

#[tokio::test]
async fn with_strangers_on_hold_their_mail_waits_in_quarantine() {
    let toml = crate::support::embedded_config().replace(
        "default_language = \"fr\"",
        "default_language = \"fr\"\nstrangers = \"hold\"",
    );
    let desk = Desk::with_config(&toml).await;
    let first = customer_mail(
        "marie@example.fr",
        "VPN en panne",
        "h1@example.fr",
        "Le VPN coupe.",
    );
    let Processed::Filed { code, .. } = desk.file(&first).await else {
        panic!()
    };
    let stranger = customer_mail(
        "eve@elsewhere.example",
        &format!("Re: [{code}] VPN en panne"),
        "h2@elsewhere.example",
        "Moi aussi.",
    );
    let outcome = desk.file(&stranger).await;
    assert!(outcome.is_quarantined(), "{outcome:?}");
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined' AND outcome_detail LIKE 'held for review%'").await,
        1
    );
}

#[tokio::test]
async fn a_mail_saved_with_leading_blank_lines_or_an_mbox_line_is_filed_not_quarantined() {
    let desk = Desk::new().await;
    for (i, preamble) in [
        "\r\n\r\n",
        "  \n",
        "From marie@example.fr Mon Mar  2 10:00:00 2026\n",
        ">From marie@example.fr Mon Mar  2 10:00:00 2026\n",
    ]
    .iter()
    .enumerate()
    {
        let mut raw = preamble.as_bytes().to_vec();
        raw.extend(customer_mail(
            "marie@example.fr",
            &format!("Imprimante {i}"),
            &format!("blank{i}@example.fr"),
            "Bonjour, l'imprimante est bloquée.",
        ));
        let outcome = desk.file(&raw).await;
        assert!(
            matches!(outcome, Processed::Filed { .. }),
            "{preamble:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn nul_bytes_do_not_cut_the_stored_text() {
    let desk = Desk::new().await;
    let raw = customer_mail(
        "marie@example.fr",
        "Nul",
        "nul@example.fr",
        "avant\0après le NUL\r\nfin du message",
    );
    let Processed::Filed { code, .. } = desk.file(&raw).await else {
        panic!("ticket")
    };
    let d = detail(&desk, &code.to_string()).await;
    let text = &d.messages[0].body_text;
    assert!(
        text.contains("avantaprès le NUL\nfin du message"),
        "{text:?}"
    );
    let stored: (Vec<u8>,) =
        sqlx::query_as("SELECT raw FROM messages WHERE message_id = 'nul@example.fr'")
            .fetch_one(&desk.db().await)
            .await
            .unwrap();
    assert_eq!(
        stored.0, raw,
        "the raw bytes are kept as they came, NUL included"
    );
}

#[tokio::test]
async fn a_100_kb_subject_and_a_10_kb_message_id_are_not_echoed_back() {
    let desk = Desk::new().await;
    let subject = "Panne ".repeat(17_000);
    let id = format!("{}@example.fr", "x".repeat(10_000));
    let raw = customer_mail(
        "marie@example.fr",
        &subject,
        &id,
        "Bonjour, tout est en panne.",
    );
    assert!(matches!(desk.file(&raw).await, Processed::Filed { .. }));
    let (ack,): (Vec<u8>,) =
        sqlx::query_as("SELECT raw FROM messages WHERE direction = 'outbound'")
            .fetch_one(&desk.db().await)
            .await
            .unwrap();
    let ack = String::from_utf8(ack).unwrap();
    let longest = ack.split("\r\n").map(str::len).max().unwrap();
    assert!(longest <= 998, "a header line of {longest} characters");
    assert!(
        ack.len() < 8_000,
        "the acknowledgement is {} bytes",
        ack.len()
    );
    assert!(
        !ack.contains("xxxxxxxxxxxxxxxx"),
        "the absurd Message-ID was echoed"
    );
    assert!(!ack.contains("In-Reply-To"), "{ack}");
}

#[tokio::test]
async fn a_mail_that_crashes_the_parser_is_quarantined_and_the_next_one_is_filed() {
    use helpdesk::inbound::ParseFailure;
    use helpdesk::pipeline::{Pipeline, QuarantineReason, SourceRef};
    let desk = Desk::new().await;
    let app = &desk.app;
    let crashing = Pipeline::new(
        app.pipeline.store().clone(),
        std::sync::Arc::new(helpdesk::render::Renderer::new(None).unwrap()),
        app.config.gateway.clone(),
        std::sync::Arc::new(app.config.desk.clone()),
        std::sync::Arc::new(tokio::sync::Notify::new()),
    )
    .with_parser(|_| panic!("a dependency's bug"));
    let raw = customer_mail("marie@example.fr", "Boom", "boom@example.fr", "Bonjour.");
    let outcome = crashing.process(&SourceRef::none(), &raw).await.unwrap();
    assert_eq!(
        outcome,
        Processed::Quarantined(QuarantineReason::Unparseable(ParseFailure::ParserPanicked))
    );
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined' AND length(raw) > 0"
        )
        .await,
        1,
        "the raw bytes are kept"
    );
    let next = customer_mail(
        "paul@example.fr",
        "Imprimante",
        "next@example.fr",
        "Bonjour, l'imprimante est bloquée.",
    );
    assert!(matches!(desk.file(&next).await, Processed::Filed { .. }));
}

/// An attachment is stored once: the raw mail holds it, its row says where and how it is
/// encoded, and decoding that range of the stored raw mail gives the file back.
#[tokio::test]
async fn an_attachment_is_stored_once_as_a_range_of_the_raw_mail() {
    use base64::Engine;
    let desk = Desk::new().await;
    let file: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&file);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let raw = format!(
        "From: Marie <marie@example.fr>\r\nTo: support@example.test\r\nSubject: Journal\r\n\
         Message-ID: <attach-once@example.fr>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nLe journal en pièce jointe.\r\n--b\r\n\
         Content-Type: application/octet-stream; name=\"log.bin\"\r\n\
         Content-Disposition: attachment; filename=\"log.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--b--\r\n",
        lines.join("\r\n")
    );
    assert!(matches!(
        desk.file(raw.as_bytes()).await,
        Processed::Filed { .. }
    ));
    let (content, start, end, encoding, size, stored_raw): (
        Option<Vec<u8>>,
        i64,
        i64,
        String,
        i64,
        Vec<u8>,
    ) = sqlx::query_as(
        "SELECT a.content, a.body_start, a.body_end, a.body_encoding, a.size, m.raw \
         FROM attachments a JOIN messages m ON m.id = a.message_id",
    )
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(content, None, "no second copy");
    assert_eq!(size, 6000);
    let body = helpdesk::inbound::RawBody {
        start: start as usize,
        end: end as usize,
        encoding: helpdesk::inbound::BodyEncoding::parse(&encoding).unwrap(),
    };
    assert_eq!(body.decode(&stored_raw), Some(file));
}

/// Subjects the renderer was asked for, as the stage hook saw them (tests run side by side:
/// each counts its own subject).
static RENDERED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn note_render(stage: helpdesk::stage::Stage, subject: &str) {
    if stage == helpdesk::stage::Stage::Render {
        RENDERED.lock().unwrap().push(subject.to_string());
    }
}

fn renders_of(subject: &str) -> usize {
    RENDERED
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.as_str() == subject)
        .count()
}

/// A mail or a command is decided and rendered on a snapshot, before the write lock. The
/// transaction writes that work when nothing it read has moved (each mail rendered once),
/// and prepares again under the lock when another writer changed the ticket meanwhile: the
/// mail then continues the thread from the other writer's message.
#[tokio::test]
async fn work_prepared_before_the_lock_is_written_only_while_what_it_read_holds() {
    use crate::support::flaky::{FlakyStore, Interlude};
    use helpdesk::desk::Command;
    use helpdesk::domain::Actor;
    use helpdesk::pipeline::Pipeline;
    use helpdesk::store::{SourceRef, Store};
    use std::sync::Arc;

    let interlude = Interlude::default();
    let wrap = {
        let interlude = interlude.clone();
        move |s| Arc::new(FlakyStore::interloped(s, interlude)) as Arc<dyn Store>
    };
    let desk = Desk::with_store(&crate::support::embedded_config(), wrap).await;
    let app = &desk.app;
    let pipeline = Pipeline::new(
        app.pipeline.store().clone(),
        Arc::new(helpdesk::render::Renderer::new(None).unwrap()),
        app.config.gateway.clone(),
        Arc::new(app.config.desk.clone()),
        Arc::new(tokio::sync::Notify::new()),
    )
    .with_stage_hook(note_render);
    let subject = "Snapshot : imprimante muette";
    let mail = customer_mail(
        "Marie Curie <marie@example.fr>",
        subject,
        "<snap-1@example.fr>",
        "L'imprimante du 2e ne répond plus.",
    );
    let Processed::Filed { code, .. } = pipeline.process(&SourceRef::none(), &mail).await.unwrap()
    else {
        panic!("not filed")
    };
    let queued = desk.count("SELECT COUNT(*) FROM outbox").await as usize;
    assert!(queued >= 1);
    assert_eq!(renders_of(subject), queued, "each mail rendered once");

    // Another writer files a message from the customer on the ticket between the snapshot
    // and the lock.
    *interlude.lock().unwrap() = Some((
        desk.dir.path().join("helpdesk.db"),
        format!(
            "INSERT INTO messages (ticket_id, direction, outcome, message_id, raw_sha256, raw, \
             from_addr, received_at) SELECT id, 'inbound', 'appended', '<interloper@example.fr>', \
             'x', x'00', 'marie@example.fr', {} FROM tickets WHERE code = '{code}'",
            now_millis()
        ),
    ));
    let before = renders_of(subject);
    let applied = pipeline
        .execute(&code, &Command::Resolve, Actor::Cli("test".into()))
        .await
        .unwrap();
    assert_eq!(applied.queued, 1, "the customer is told");
    let (refs,): (String,) = sqlx::query_as(
        "SELECT refs FROM messages WHERE direction = 'outbound' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert!(refs.contains("<interloper@example.fr>"), "{refs}");
    assert_eq!(
        renders_of(subject) - before,
        2,
        "rendered on the snapshot, then again under the lock"
    );
}

/// A group of mails is decided and rendered on one snapshot, each as if alone; a reply to
/// a mail of the same group threads onto the ticket that mail opened all the same (the
/// write transaction decides again and prepares it under the lock), and only the new
/// tickets are acknowledged.
#[tokio::test]
async fn a_group_prepared_ahead_still_threads_replies_to_mails_of_the_same_group() {
    use helpdesk::store::SourceRef;
    let desk = Desk::new().await;
    let pipeline = desk.app.pipeline.clone();
    let mut group = Vec::new();
    for i in 0..20 {
        let who = format!("client{}@example.fr", i / 2);
        let (subject, in_reply_to) = if i % 2 == 1 {
            (
                format!("Re: VPN {}", i - 1),
                format!("In-Reply-To: <grp-{}@example.fr>\r\n", i - 1),
            )
        } else {
            (format!("VPN {i}"), String::new())
        };
        let raw = format!(
            "From: {who}\r\nTo: support@example.test\r\nSubject: {subject}\r\n\
             Message-ID: <grp-{i}@example.fr>\r\n{in_reply_to}\r\nLe VPN refuse la connexion.\r\n"
        );
        group.push((i, SourceRef::none(), raw.into_bytes()));
    }
    let read = pipeline.read_ahead(group).await.unwrap();
    let (_, outcomes) = pipeline.file_read_ahead(read).await;
    let outcomes: Vec<Processed> = outcomes.into_iter().map(Result::unwrap).collect();
    for (i, o) in outcomes.iter().enumerate() {
        match (i % 2, o) {
            (0, Processed::Filed { .. }) | (1, Processed::Appended { .. }) => {}
            _ => panic!("mail {i}: {o:?}"),
        }
    }
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 10);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement'")
            .await,
        10
    );
}
