//! The store's own tests, written once over the `Store` trait and run against both
//! backends: SQLite (a file in a temporary folder) and PostgreSQL (a fresh database on the
//! test binary's private cluster). What the pipeline relies on must hold on each.

use std::str::FromStr;
use std::sync::Arc;

use helpdesk::domain::{
    Actor, Category, Dues, EmailAddress, EventKind, Fired, Language, Priority, ReferenceCode,
    SelfServiceHold, TicketClock, TicketStatus, Tier,
};
use helpdesk::store::postgres::PgStore;
use helpdesk::store::sqlite::SqliteStore;
use helpdesk::store::*;
use tempfile::TempDir;

use crate::support::postgres;

/// A store and what keeps it alive.
pub struct Backend {
    pub store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

pub async fn sqlite() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("desk.db").display());
    Backend {
        store: Arc::new(SqliteStore::open(&url).await.unwrap()),
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Backend {
    let db = postgres::database();
    Backend {
        store: Arc::new(PgStore::open(&db.url, Some(&db.secret())).await.unwrap()),
        _dir: None,
    }
}

/// Runs the scenario `$name` once on each backend.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::sqlite().await.store).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::postgres().await.store).await
            }
        })*
    };
}

on_both_stores!(
    tickets_read_back_as_written,
    a_taken_code_leaves_the_transaction_usable,
    mail_read_again_is_recognised,
    hostile_text_and_dates_are_stored,
    the_outbox_hands_each_mail_to_one_worker,
    held_mail_waits_for_the_budget,
    checkpoints_only_move_forward,
    timers_are_claimed_once,
    lists_and_details_read_what_was_written,
    statistics_read_each_ticket_with_its_log,
    an_erasure_blanks_the_person_everywhere,
    a_dropped_transaction_writes_nothing,
    a_lease_passes_on_once_its_holder_stops_renewing,
);

const T0: Millis = 1_764_748_800_123;

fn addr(a: &str) -> EmailAddress {
    EmailAddress::parse(a).unwrap()
}

fn code(n: u32) -> ReferenceCode {
    ReferenceCode::from_stored(format!("HD-TEST{n:04}"))
}

async fn new_ticket(store: &dyn Store, n: u32, customer: &str, at: Millis) -> TicketId {
    let mut tx = store.begin().await.unwrap();
    let id = tx
        .insert_ticket(NewTicket {
            code: &code(n),
            tier: Tier::L1FrontLine,
            category: &Category::from_str("printer").unwrap(),
            priority: Priority::Normal,
            customer: &addr(customer),
            customer_name: Some("Zoé Marchetti"),
            subject: "Printer on fire",
            thread_key: "printer on fire",
            language: Language::Fr,
            follows: None,
            suggested_articles: &["kb-printer".to_string()],
            at,
        })
        .await
        .unwrap();
    tx.add_participant(id, &addr(customer), ParticipantRole::Customer, at)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

fn message<'a>(ticket: Option<TicketId>, id: &'a str, raw: &'a [u8], at: Millis) -> NewMessage<'a> {
    NewMessage {
        ticket,
        direction: Direction::Inbound,
        outcome: if ticket.is_some() {
            StoredOutcome::Appended
        } else {
            StoredOutcome::Ignored
        },
        outcome_detail: None,
        source_key: None,
        message_id: Some(id),
        content_sha256: Some("c0ffee"),
        raw,
        raw_sha256: "5ha",
        from_addr: Some("zoe@example.com"),
        from_name: Some("Zoé Marchetti"),
        reply_to: None,
        to: vec!["support@example.test".into()],
        cc: vec!["boss@example.com".into()],
        subject: "Printer on fire",
        in_reply_to: &[],
        references: &[],
        sent_date: Some(at - 5_000),
        body_text: "It burns.",
        reply_text: "It burns.",
        quoted_text: "",
        signature: "",
        language: Some(Language::Fr),
        machine_kind: None,
        from_non_participant: false,
        at,
    }
}

async fn tickets_read_back_as_written(store: Arc<dyn Store>) {
    let id = new_ticket(&*store, 1, "zoe@example.com", T0).await;
    let clock = TicketClock {
        created_at: T0,
        status_since: T0 + 1,
        first_response_at: Some(T0 + 2),
        sla_used_ms: 3_600_007,
        sla_since: Some(T0 + 3),
        fired: Fired(Fired::FIRST_RESPONSE_BREACH),
        wait_ms: Some(i64::MAX),
        reminded_at: Some(T0 + 4),
        vendor_asked_at: Some(T0 + 5),
        self_service: Some(SelfServiceHold {
            until: T0 + 6,
            then: Tier::L2Advanced,
        }),
    };
    let mut tx = store.begin().await.unwrap();
    tx.set_timing(
        id,
        &Timing {
            clock: clock.clone(),
            dues: Dues {
                first_response: Some(T0 + 60_000),
                resolution: Some(T0 + 86_400_000),
            },
            due_at: Some(T0 + 60_000),
        },
    )
    .await
    .unwrap();
    tx.set_ticket_status(id, TicketStatus::Open, true, T0 + 10)
        .await
        .unwrap();
    tx.set_assignee(id, Some(&addr("agent@example.test")), T0 + 11)
        .await
        .unwrap();
    tx.adjust_load(&addr("agent@example.test"), 1, Some(T0 + 11))
        .await
        .unwrap();
    tx.set_priority(id, Priority::Urgent, T0 + 12)
        .await
        .unwrap();
    tx.set_tier(id, Tier::L3Expert, T0 + 12).await.unwrap();
    tx.set_vendor(id, "acme", T0 + 13).await.unwrap();
    tx.set_vendor_ticket(id, "ACME-77").await.unwrap();
    tx.add_participant(id, &addr("boss@example.com"), ParticipantRole::Cc, T0 + 14)
        .await
        .unwrap();
    tx.insert_events(&[
        NewEvent {
            ticket: Some(id),
            message: None,
            kind: EventKind::Assigned,
            actor: &Actor::Gateway,
            detail: serde_json::json!({"to": "agent@example.test"}),
            at: T0 + 11,
        },
        NewEvent {
            ticket: Some(id),
            message: None,
            kind: EventKind::PriorityChanged,
            actor: &Actor::Agent(addr("agent@example.test")),
            detail: serde_json::json!({"to": "urgent"}),
            at: T0 + 12,
        },
    ])
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut snap = store.snapshot().await.unwrap();
    let t = snap.ticket_by_code(&code(1)).await.unwrap().expect("found");
    assert_eq!(t.id, id);
    assert_eq!(t.clock, clock, "every moment to the millisecond");
    assert_eq!(t.status, TicketStatus::Open);
    assert_eq!(t.reopen_count, 1);
    assert_eq!(t.tier, Tier::L3Expert);
    assert_eq!(t.priority, Priority::Urgent);
    assert_eq!(t.assignee, Some(addr("agent@example.test")));
    assert_eq!(t.customer_name.as_deref(), Some("Zoé Marchetti"));
    assert_eq!(t.suggested_articles, vec!["kb-printer".to_string()]);
    assert_eq!(t.vendor.as_deref(), Some("acme"));
    assert_eq!(t.vendor_ticket.as_deref(), Some("ACME-77"));
    assert_eq!(
        t.participants,
        vec![addr("zoe@example.com"), addr("boss@example.com")],
        "in the order they joined"
    );
    assert_eq!(snap.ticket_by_id(id).await.unwrap(), Some(t.clone()));
    assert_eq!(
        snap.ticket_by_vendor_ticket("acme", "ACME-77")
            .await
            .unwrap()
            .map(|t| t.id),
        Some(id)
    );
    assert!(
        snap.is_participant(id, &addr("boss@example.com"))
            .await
            .unwrap()
    );
    assert!(
        !snap
            .is_participant(id, &addr("stranger@example.com"))
            .await
            .unwrap()
    );
    assert_eq!(
        snap.ticket_by_thread_key(&addr("zoe@example.com"), "printer on fire", T0)
            .await
            .unwrap()
            .map(|t| t.id),
        Some(id)
    );
    assert_eq!(
        snap.ticket_by_thread_key(&addr("zoe@example.com"), "printer on fire", T0 + 1_000)
            .await
            .unwrap(),
        None,
        "not updated since"
    );
    snap.commit().await.unwrap();
    let loads = store
        .agent_loads(&[addr("agent@example.test")])
        .await
        .unwrap();
    assert_eq!(loads[&addr("agent@example.test")].open_tickets, 1);
    assert_eq!(
        loads[&addr("agent@example.test")].last_assigned_at,
        Some(T0 + 11)
    );
    let detail = store.ticket_detail(&code(1)).await.unwrap().unwrap();
    let kinds: Vec<&str> = detail.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["assigned", "priority_changed"]);
    assert_eq!(detail.events[1].actor, "agent@example.test");
    assert_eq!(detail.events[1].detail["to"], "urgent");
    assert_eq!(
        detail.summary.sla.breached,
        vec!["first_response".to_string()]
    );
}

async fn a_taken_code_leaves_the_transaction_usable(store: Arc<dyn Store>) {
    new_ticket(&*store, 2, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let again = tx
        .insert_ticket(NewTicket {
            code: &code(2),
            tier: Tier::L1FrontLine,
            category: &Category::from_str("general").unwrap(),
            priority: Priority::Normal,
            customer: &addr("max@example.com"),
            customer_name: None,
            subject: "Other",
            thread_key: "other",
            language: Language::En,
            follows: None,
            suggested_articles: &[],
            at: T0,
        })
        .await;
    assert!(matches!(again, Err(StoreError::CodeTaken(_))), "{again:?}");
    // The same transaction goes on with another code (what `apply` does).
    tx.insert_ticket(NewTicket {
        code: &code(3),
        tier: Tier::L1FrontLine,
        category: &Category::from_str("general").unwrap(),
        priority: Priority::Normal,
        customer: &addr("max@example.com"),
        customer_name: None,
        subject: "Other",
        thread_key: "other",
        language: Language::En,
        follows: None,
        suggested_articles: &[],
        at: T0,
    })
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.count_tickets(&TicketFilter::default()).await.unwrap(),
        2
    );
}

async fn mail_read_again_is_recognised(store: Arc<dyn Store>) {
    let id = new_ticket(&*store, 4, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let mut m = message(Some(id), "m1@example.com", b"raw one", T0);
    m.source_key = Some("imap:INBOX:7:1");
    let row = tx.insert_message(m).await.unwrap();
    tx.insert_attachment(
        row,
        NewAttachment {
            filename: Some("photo.jpg"),
            content_type: "image/jpeg",
            content: b"\xff\xd8\xff",
            raw_body: None,
        },
    )
    .await
    .unwrap();
    let mut reply = message(Some(id), "m2@example.com", b"raw two", T0 + 1);
    reply.direction = Direction::Outbound;
    reply.outcome = StoredOutcome::Outgoing;
    reply.outcome_detail = Some("agent_reply");
    reply.content_sha256 = None;
    reply.to = vec!["zoe@example.com".into()];
    tx.insert_message(reply).await.unwrap();
    tx.commit().await.unwrap();

    let mut snap = store.snapshot().await.unwrap();
    let content = MailContent {
        sha256: "c0ffee",
        from: Some("zoe@example.com"),
        subject: "Printer on fire",
        body_text: "It burns.",
    };
    let seen = snap
        .message_id_seen("m1@example.com", &content)
        .await
        .unwrap();
    assert_eq!(seen.same.map(|s| (s.row, s.ticket)), Some((row, Some(id))));
    assert_eq!(seen.in_use, Some(row));
    let other = MailContent {
        sha256: "different",
        ..content
    };
    let seen = snap
        .message_id_seen("m1@example.com", &other)
        .await
        .unwrap();
    assert!(seen.same.is_none(), "another mail reusing the Message-ID");
    assert_eq!(seen.in_use, Some(row));
    assert_eq!(
        snap.message_by_sha("5ha").await.unwrap().map(|e| e.row),
        Some(row),
        "the first inbound mail with these bytes"
    );
    assert_eq!(
        snap.source_outcome("imap:INBOX:7:1").await.unwrap(),
        Some(StoredOutcome::Appended)
    );
    assert_eq!(
        snap.ticket_by_message_ids(&["nope@x".into(), "m2@example.com".into()])
            .await
            .unwrap()
            .map(|t| t.id),
        Some(id)
    );
    let thread = snap.thread(id, |_| true).await.unwrap();
    assert_eq!(thread.len(), 2);
    assert_eq!(
        thread[0].attachments[0].filename.as_deref(),
        Some("photo.jpg")
    );
    assert_eq!(thread[0].attachments[0].size, 3);
    assert_eq!(thread[0].at, T0);
    assert_eq!(thread[1].direction, Direction::Outbound);
    let inbound_only = snap
        .thread(id, |e| e.direction == Direction::Inbound)
        .await
        .unwrap();
    assert_eq!(inbound_only.len(), 1);
    let exchanged = snap.exchanged(id).await.unwrap();
    assert_eq!(exchanged[1].to, vec!["zoe@example.com".to_string()]);
    snap.commit().await.unwrap();
    assert_eq!(
        store
            .source_outcomes(&["imap:INBOX:7:1".into(), "imap:INBOX:7:2".into()])
            .await
            .unwrap(),
        vec![("imap:INBOX:7:1".to_string(), StoredOutcome::Appended)]
    );
}

async fn hostile_text_and_dates_are_stored(store: Arc<dyn Store>) {
    // A NUL in the text (SQLite keeps it; PostgreSQL's text cannot), a Date: far out of
    // any calendar, and an event detail with a NUL: stored, never an error that would
    // stall the mailbox.
    let id = new_ticket(&*store, 5, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let mut m = message(Some(id), "nul\0@example.com", b"raw\0bytes", T0);
    m.subject = "Sub\0ject";
    m.body_text = "body\0text";
    m.sent_date = Some(i64::MAX / 2);
    m.cc = vec!["a\0b@example.com".into()];
    let row = tx.insert_message(m).await.unwrap();
    tx.insert_events(&[NewEvent {
        ticket: Some(id),
        message: Some(row),
        kind: EventKind::MessageReceived,
        actor: &Actor::Customer(addr("zoe@example.com")),
        detail: serde_json::json!({"subject": "Sub\0ject"}),
        at: T0,
    }])
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let detail = store.ticket_detail(&code(5)).await.unwrap().unwrap();
    assert_eq!(detail.messages.len(), 1);
    assert!(detail.messages[0].body_text.starts_with("body"));
    assert!(detail.messages[0].body_text.ends_with("text"));
    assert_eq!(detail.events.len(), 1);
}

async fn the_outbox_hands_each_mail_to_one_worker(store: Arc<dyn Store>) {
    let id = new_ticket(&*store, 6, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let mut ids = Vec::new();
    for n in 0..3 {
        let raw = format!("mail {n}");
        let mut m = message(Some(id), "x", raw.as_bytes(), T0);
        m.message_id = None;
        m.direction = Direction::Outbound;
        m.outcome = StoredOutcome::Outgoing;
        let row = tx.insert_message(m).await.unwrap();
        ids.push(
            tx.enqueue(NewOutgoing {
                ticket: Some(id),
                message: row,
                kind: "acknowledgement",
                mail_from: "support@example.test",
                rcpt_to: &["zoe@example.com".to_string()],
                at: T0 + n,
                hold: None,
            })
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), (3, Some(T0)));
    let now = T0 + 1_000;
    let a = store.claim_outbox(now, now + 60_000, 2, "a").await.unwrap();
    let b = store.claim_outbox(now, now + 60_000, 2, "b").await.unwrap();
    assert_eq!(a.len(), 2);
    assert_eq!(b.len(), 1, "what a claimed is not b's");
    assert_eq!(a[0].raw, b"mail 0");
    assert_eq!(a[0].rcpt_to, vec!["zoe@example.com".to_string()]);
    assert_eq!(a[0].attempts, 1);
    assert_eq!(
        store
            .renew_lease(&[a[0].id, b[0].id], "a", now + 120_000)
            .await
            .unwrap(),
        Renewal {
            renewed: 1,
            taken_over: 1
        },
        "a renews only its own row"
    );
    assert_eq!(
        store
            .renew_lease(&[b[0].id], "b", now + 120_000)
            .await
            .unwrap()
            .renewed,
        1
    );
    assert!(
        store
            .claim_outbox(now + 61_000, now + 200_000, 10, "c")
            .await
            .unwrap()
            .len()
            == 1,
        "only a's second row ran out of lease"
    );
    store
        .mark_sent(
            &[Marked {
                id: a[0].id,
                detail: serde_json::json!({"kind": "acknowledgement"}),
            }],
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .renew_lease(&[a[0].id, a[1].id], "a", now + 200_000)
            .await
            .unwrap(),
        Renewal {
            renewed: 0,
            taken_over: 1
        },
        "a's sent row is settled, not taken over; its second row is c's now"
    );
    store
        .mark_retry(b[0].id, now + 5_000, "421 try later")
        .await
        .unwrap();
    store
        .mark_failed(
            &Marked {
                id: a[1].id,
                detail: serde_json::json!({"kind": "acknowledgement"}),
            },
            "550 no such user",
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        store.outbox_backlog().await.unwrap(),
        (1, Some(now + 5_000))
    );
    let detail = store.ticket_detail(&code(6)).await.unwrap().unwrap();
    let kinds: Vec<&str> = detail.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["mail_sent", "mail_failed"]);
    let gauges = store.desk_gauges().await.unwrap();
    assert_eq!(gauges.outbox_pending, 1);
    assert_eq!(gauges.outbox_oldest, Some(T0 + 2), "b's row, queued third");
}

async fn held_mail_waits_for_the_budget(store: Arc<dyn Store>) {
    let id = new_ticket(&*store, 7, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let mut queued = Vec::new();
    for (n, hold) in [None, Some(TicketStatus::New), Some(TicketStatus::New)]
        .into_iter()
        .enumerate()
    {
        let mut m = message(Some(id), "x", b"m", T0);
        m.message_id = None;
        m.direction = Direction::Outbound;
        m.outcome = StoredOutcome::Outgoing;
        let row = tx.insert_message(m).await.unwrap();
        queued.push(
            tx.enqueue(NewOutgoing {
                ticket: Some(id),
                message: row,
                kind: "status_update",
                mail_from: "support@example.test",
                rcpt_to: &["zoe@example.com".to_string()],
                at: T0 + n as i64,
                hold: hold.map(|s| Hold {
                    flood_from: None,
                    ticket_status: Some(s),
                }),
            })
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    let to = addr("zoe@example.com");
    assert_eq!(
        tx.automatic_mail_sent(&to, &["status_update"], (T0 - 1, T0 - 1, T0 + 10), (5, 5))
            .await
            .unwrap(),
        (1, 1),
        "held mail does not count"
    );
    assert_eq!(
        tx.automatic_mail_sent(&to, &["acknowledgement"], (T0 - 1, T0 - 1, T0 + 10), (5, 5))
            .await
            .unwrap(),
        (0, 0),
        "only the kinds asked"
    );
    let held = tx.held_mail(10).await.unwrap();
    assert_eq!(held.iter().map(|h| h.id).collect::<Vec<_>>(), queued[1..]);
    assert_eq!(held[0].rcpt_to, "zoe@example.com");
    assert_eq!(held[0].held_status.as_deref(), Some("new"));
    assert_eq!(held[0].code.as_deref(), Some(code(7).as_str()));
    tx.release_mail(queued[1], T0 + 100).await.unwrap();
    tx.supersede_mail(&[queued[2]]).await.unwrap();
    assert!(tx.held_mail(10).await.unwrap().is_empty());
    assert_eq!(
        tx.automatic_mail_sent(&to, &["status_update"], (T0 - 1, T0 - 1, T0 + 100), (1, 5))
            .await
            .unwrap(),
        (1, 2),
        "released mail counts; each count stops at its cap"
    );
    assert!(!tx.answered_release(&to, 60_000).await.unwrap());
    let mut m = message(None, "answer@example.com", b"auto", T0 + 200);
    m.content_sha256 = Some("other");
    tx.insert_message(m).await.unwrap();
    assert!(
        tx.answered_release(&to, 60_000).await.unwrap(),
        "they wrote within a minute of the release"
    );
    assert_eq!(tx.mail_from_since(&to, T0 - 1, 10).await.unwrap(), 1);
    assert!(tx.claim_report("weekly", "2026-W49", T0).await.unwrap());
    assert!(!tx.claim_report("weekly", "2026-W49", T0).await.unwrap());
    tx.commit().await.unwrap();
}

async fn checkpoints_only_move_forward(store: Arc<dyn Store>) {
    let c = |v, u| Checkpoint {
        uid_validity: v,
        last_uid: u,
    };
    for (checkpoint, expected) in [
        (c(7, 10), c(7, 10)),
        (c(7, 4), c(7, 10)),
        (c(7, 12), c(7, 12)),
        (c(8, 2), c(8, 2)),
    ] {
        let mut tx = store.begin().await.unwrap();
        tx.set_checkpoint("INBOX", checkpoint, T0).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.checkpoint("INBOX").await.unwrap(), Some(expected));
    }
    assert_eq!(store.checkpoint("Other").await.unwrap(), None);
    let keys = vec!["imap:INBOX:8:1".to_string(), "imap:INBOX:8:2".to_string()];
    store
        .record_imap_copies(&keys[..1], "Processed", T0)
        .await
        .unwrap();
    store
        .record_imap_copies(&keys[..1], "Processed", T0)
        .await
        .unwrap();
    assert_eq!(store.imap_copied(&keys).await.unwrap(), keys[..1].to_vec());
}

async fn timers_are_claimed_once(store: Arc<dyn Store>) {
    let early = new_ticket(&*store, 8, "zoe@example.com", T0).await;
    let late = new_ticket(&*store, 9, "max@example.com", T0).await;
    for (id, due) in [(early, T0 + 1_000), (late, T0 + 5_000)] {
        let mut tx = store.begin().await.unwrap();
        tx.set_timing(
            id,
            &Timing {
                clock: TicketClock::started(T0),
                dues: Dues::default(),
                due_at: Some(due),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let mut snap = store.snapshot().await.unwrap();
    assert_eq!(
        snap.ticket_by_id(early).await.unwrap().unwrap().clock,
        TicketClock::started(T0),
        "moments never set read back as none"
    );
    snap.commit().await.unwrap();
    assert_eq!(store.next_due().await.unwrap(), Some(T0 + 1_000));
    assert_eq!(
        store.due_tickets(T0 + 2_000, 10).await.unwrap(),
        vec![early]
    );
    assert_eq!(
        store
            .claim_due(T0 + 9_000, T0, T0 + 30_000, 10, "a")
            .await
            .unwrap(),
        vec![early, late]
    );
    assert!(
        store
            .claim_due(T0 + 9_000, T0 + 1, T0 + 30_000, 10, "b")
            .await
            .unwrap()
            .is_empty(),
        "leased to a"
    );
    assert_eq!(
        store
            .claim_due(T0 + 9_000, T0 + 31_000, T0 + 60_000, 10, "b")
            .await
            .unwrap(),
        vec![early, late],
        "a's lease ran out"
    );
}

async fn lists_and_details_read_what_was_written(store: Arc<dyn Store>) {
    let a = new_ticket(&*store, 10, "zoe@example.com", T0).await;
    let b = new_ticket(&*store, 11, "max@example.com", T0 + 1).await;
    let c = new_ticket(&*store, 12, "ann@example.com", T0 + 2).await;
    let mut tx = store.begin().await.unwrap();
    tx.set_ticket_status(b, TicketStatus::Resolved, false, T0 + 50)
        .await
        .unwrap();
    tx.insert_events(&[NewEvent {
        ticket: Some(b),
        message: None,
        kind: EventKind::StatusChanged,
        actor: &Actor::Gateway,
        detail: serde_json::json!({"from": "new", "to": "resolved"}),
        at: T0 + 50,
    }])
    .await
    .unwrap();
    tx.set_timing(
        a,
        &Timing {
            clock: TicketClock::started(T0),
            dues: Dues {
                first_response: Some(T0 + 100),
                resolution: None,
            },
            due_at: Some(T0 + 100),
        },
    )
    .await
    .unwrap();
    // Both targets, the resolution's the earlier: it sorts before a's only one.
    tx.set_timing(
        c,
        &Timing {
            clock: TicketClock::started(T0),
            dues: Dues {
                first_response: Some(T0 + 300),
                resolution: Some(T0 + 40),
            },
            due_at: Some(T0 + 40),
        },
    )
    .await
    .unwrap();
    tx.set_satisfaction(b, 4, Some("quick"), T0 + 60)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let open = TicketFilter {
        open_only: true,
        ..TicketFilter::default()
    };
    let listed: Vec<String> = store
        .list_tickets(&open)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.code)
        .collect();
    assert_eq!(listed, [code(10).as_str(), code(12).as_str()]);
    assert_eq!(store.count_tickets(&open).await.unwrap(), 2);
    let due_first = TicketFilter {
        sort: TicketSort::Due,
        ..TicketFilter::default()
    };
    let listed: Vec<String> = store
        .list_tickets(&due_first)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.code)
        .collect();
    assert_eq!(
        listed,
        [code(12).as_str(), code(10).as_str(), code(11).as_str()],
        "by the earlier of the two targets; the one with none last"
    );
    let resolved = TicketFilter {
        resolved: Some((T0, T0 + 100)),
        ..TicketFilter::default()
    };
    let listed = store.list_tickets(&resolved).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].code, code(11).as_str());
    assert_eq!(listed[0].satisfaction, Some(4));
    let page = TicketFilter {
        page: Some((1, 1)),
        ..TicketFilter::default()
    };
    assert_eq!(
        store.list_tickets(&page).await.unwrap()[0].code,
        code(11).as_str()
    );
    let overview = store.overview(T0 + 50, T0 + 200).await.unwrap();
    assert_eq!(overview.due_soon, 1);
    assert_eq!(
        overview.oldest_waiting.map(|t| t.code),
        Some(code(10).as_str().to_string())
    );
    assert_eq!(
        overview.backlog.iter().map(|(_, _, n)| n).sum::<i64>(),
        2,
        "{:?}",
        overview.backlog
    );
    store.probe_write("test", T0).await.unwrap();
    assert!(store.ticket_detail(&code(99)).await.unwrap().is_none());
}

async fn statistics_read_each_ticket_with_its_log(store: Arc<dyn Store>) {
    let id = new_ticket(&*store, 13, "zoe@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    let events: Vec<NewEvent> = [
        (EventKind::Created, T0),
        (EventKind::AgentReplied, T0 + 10),
        (EventKind::MailSent, T0 + 11),
        (EventKind::StatusChanged, T0 + 20),
    ]
    .into_iter()
    .map(|(kind, at)| NewEvent {
        ticket: Some(id),
        message: None,
        kind,
        actor: &Actor::Gateway,
        detail: serde_json::json!({"at": at}),
        at,
    })
    .collect();
    tx.insert_events(&events).await.unwrap();
    tx.commit().await.unwrap();
    let mut input = store
        .stats_input(
            T0 - 1,
            T0 + 1_000,
            &[EventKind::Created],
            &[
                EventKind::Created,
                EventKind::AgentReplied,
                EventKind::StatusChanged,
            ],
        )
        .await
        .unwrap();
    assert!(input.follow_ups.is_empty());
    let mut tickets = Vec::new();
    while let Some(batch) = input.tickets.recv().await {
        tickets.extend(batch.unwrap());
    }
    assert_eq!(tickets.len(), 1);
    let t = &tickets[0];
    assert_eq!(t.id, id);
    assert_eq!(t.created_at, T0);
    let kinds: Vec<EventKind> = t.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Created,
            EventKind::AgentReplied,
            EventKind::StatusChanged
        ],
        "the kinds replayed, in order"
    );
    let detail: serde_json::Value = serde_json::from_str(t.detail(&t.events[1])).unwrap();
    assert_eq!(detail["at"], T0 + 10);
    assert_eq!(t.events[1].actor, "gateway", "a reply's author is read");
}

async fn an_erasure_blanks_the_person_everywhere(store: Arc<dyn Store>) {
    let hers = new_ticket(&*store, 14, "zoe@example.com", T0).await;
    let other = new_ticket(&*store, 15, "max@example.com", T0).await;
    let mut tx = store.begin().await.unwrap();
    tx.insert_message(message(
        Some(hers),
        "z1@example.com",
        b"From: zoe@example.com\r\n\r\nhi",
        T0,
    ))
    .await
    .unwrap();
    let mut m = message(
        Some(other),
        "m1@example.com",
        b"From: max@example.com\r\nCc: Zoe@Example.com\r\n\r\nZoe\xcc\x81 Marchetti said",
        T0,
    );
    m.from_addr = Some("max@example.com");
    m.from_name = Some("Max");
    m.cc = vec!["zoe@example.com".into()];
    m.content_sha256 = Some("max");
    m.body_text = "As Zoé Marchetti (zoe@example.com) said";
    tx.insert_message(m).await.unwrap();
    tx.commit().await.unwrap();
    let dry = store
        .forget_person(&addr("zoe@example.com"), "dpo", T0 + 1, true)
        .await
        .unwrap();
    assert_eq!(dry.tickets, 1);
    assert_eq!(
        store
            .ticket_detail(&code(14))
            .await
            .unwrap()
            .unwrap()
            .summary
            .customer,
        "zoe@example.com",
        "a dry run changes nothing"
    );
    let report = store
        .forget_person(&addr("zoe@example.com"), "dpo", T0 + 1, false)
        .await
        .unwrap();
    assert_eq!((report.tickets, report.mentions), (1, 1), "{report:?}");
    let t = store.ticket_detail(&code(14)).await.unwrap().unwrap();
    assert!(
        t.summary.customer.ends_with("@erased.invalid"),
        "{}",
        t.summary.customer
    );
    assert_eq!(t.summary.subject, "[erased]");
    assert_eq!(t.messages[0].body_text, "");
    let o = store.ticket_detail(&code(15)).await.unwrap().unwrap();
    let body = &o.messages[0].body_text;
    assert!(
        !body.contains("zoe@example.com") && !body.contains("Zoé"),
        "{body}"
    );
    assert!(
        body.contains("[erased]") && body.contains("@erased.invalid"),
        "{body}"
    );
    assert!(!o.messages[0].to.iter().any(|a| a.contains("zoe")));
}

async fn a_dropped_transaction_writes_nothing(store: Arc<dyn Store>) {
    for _ in 0..12 {
        let mut tx = store.begin().await.unwrap();
        tx.set_checkpoint(
            "m",
            Checkpoint {
                uid_validity: 1,
                last_uid: 1,
            },
            T0,
        )
        .await
        .unwrap();
        drop(tx);
    }
    for _ in 0..12 {
        store.begin().await.unwrap().commit().await.unwrap();
    }
    assert_eq!(store.checkpoint("m").await.unwrap(), None);
}

async fn a_lease_passes_on_once_its_holder_stops_renewing(store: Arc<dyn Store>) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as Millis
    };
    let name = "source:imap://support@127.0.0.1/INBOX";
    // Short leases where one must run out, long ones where one must hold (a loaded machine
    // may take a second between two statements).
    assert!(store.take_lease(name, "a", 5_000, now()).await.unwrap());
    assert!(
        !store.take_lease(name, "b", 5_000, now()).await.unwrap(),
        "a holds it"
    );
    assert!(
        store.take_lease(name, "a", 500, now()).await.unwrap(),
        "a renews, for half a second"
    );
    let taken = store.leases().await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (taken[0].name.as_str(), taken[0].holder.as_str()),
        (name, "a")
    );
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        store.take_lease(name, "b", 60_000, now()).await.unwrap(),
        "a stopped renewing: b takes it over"
    );
    assert!(
        !store.take_lease(name, "a", 60_000, now()).await.unwrap(),
        "a lost it"
    );
    let after = store.leases().await.unwrap();
    assert_eq!(after[0].holder, "b");
    assert!(
        after[0].taken_at > taken[0].taken_at,
        "taken over, not renewed"
    );
    store.release_lease(name, "a").await.unwrap();
    assert!(
        !store.take_lease(name, "a", 60_000, now()).await.unwrap(),
        "only b gives it up"
    );
    store.release_lease(name, "b").await.unwrap();
    assert!(
        store.take_lease(name, "a", 400, now()).await.unwrap(),
        "free at once"
    );
    assert!(
        store
            .take_lease("source:imap://other", "b", 400, now())
            .await
            .unwrap(),
        "each mailbox has its own"
    );
}
