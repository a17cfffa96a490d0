//! Several gateways, one desk: two instances (two `App`s, each with its own connections)
//! on one database, acting on the same ticket at the same instant. Each write transaction
//! locks the ticket it reads, so the second decides on what the first wrote: no change is
//! lost. Run on PostgreSQL (the store several gateways share) and on SQLite (one file,
//! several processes).

use std::sync::Arc;

use helpdesk::domain::ReferenceCode;
use helpdesk::pipeline::Processed;

use crate::attacks::roster_config;
use crate::support::{Desk, customer_mail, postgres};

async fn two_instances_on_postgres() -> (Desk, Desk) {
    let db = Arc::new(postgres::database());
    let a = Desk::sharing(&roster_config(), db.clone()).await;
    let b = Desk::sharing(&roster_config(), db).await;
    (a, b)
}

async fn two_instances_on_sqlite() -> (Desk, Desk) {
    let a = Desk::with_config(&roster_config()).await;
    // The second instance opens the first one's file.
    let toml = roster_config().replace(
        "url = \"sqlite:helpdesk.db\"",
        &format!(
            "url = \"sqlite:{}\"",
            a.dir.path().join("helpdesk.db").display()
        ),
    );
    let b = Desk::with_config(&toml).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_ticket_are_all_kept_on_postgres() {
    let (a, b) = two_instances_on_postgres().await;
    concurrent_commands_on_one_ticket_are_all_kept(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_on_one_ticket_are_all_kept_on_sqlite() {
    let (a, b) = two_instances_on_sqlite().await;
    concurrent_commands_on_one_ticket_are_all_kept(a, b).await;
}

/// 100 rounds: through instance A, Alice sets the priority; through instance B at the
/// same instant, Bob gives the ticket to one of them. Both changes hold after each round,
/// and so does what follows from the priority: the first-response target, which every
/// change writes with the ticket's clock (a change decided on a stale ticket would write
/// back the old priority's target).
async fn concurrent_commands_on_one_ticket_are_all_kept(a: Desk, b: Desk) {
    let raw = customer_mail(
        "marie@example.fr",
        "Imprimante bloquée",
        "m.0",
        "Bourrage papier.",
    );
    let code = match a.file(&raw).await {
        Processed::Filed { code, .. } => code,
        other => panic!("{other:?}"),
    };
    let priorities = ["low", "high", "normal", "urgent"];
    let agents = ["alice@example.test", "bob@example.test"];
    // Each priority's target, set one at a time first.
    let mut due = std::collections::HashMap::new();
    for (n, priority) in priorities.iter().enumerate() {
        let set = customer_mail(
            "alice@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("warm.{n}"),
            &format!("#priority {priority}\n"),
        );
        a.file(&set).await;
        let t = ticket(&a, &code).await;
        assert_eq!(t.priority.as_str(), *priority);
        due.insert(*priority, t.sla.first_response_due.expect("a target"));
    }
    assert_eq!(
        due.values().collect::<std::collections::HashSet<_>>().len(),
        4,
        "each priority has its own target: {due:?}"
    );
    for round in 0..100 {
        let priority = priorities[round % priorities.len()];
        let agent = agents[(round / 4) % agents.len()];
        let set_priority = customer_mail(
            "alice@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("p.{round}"),
            &format!("#priority {priority}\n"),
        );
        let assign = customer_mail(
            "bob@example.test",
            &format!("Re: [{code}] Imprimante bloquée"),
            &format!("a.{round}"),
            &format!("#assign {agent}\n"),
        );
        let (one, two) = tokio::join!(a.file(&set_priority), b.file(&assign));
        assert!(matches!(one, Processed::Appended { .. }), "{one:?}");
        assert!(matches!(two, Processed::Appended { .. }), "{two:?}");
        let ticket = ticket(&a, &code).await;
        assert_eq!(
            (ticket.priority.as_str(), ticket.assignee.as_deref()),
            (priority, Some(agent)),
            "round {round}: both changes kept"
        );
        assert_eq!(
            ticket.sla.first_response_due.as_ref(),
            Some(&due[priority]),
            "round {round}: the target of the priority set"
        );
    }
    let detail = b
        .app
        .pipeline
        .store()
        .ticket_detail(&code)
        .await
        .unwrap()
        .expect("the ticket");
    let inbound = detail
        .messages
        .iter()
        .filter(|m| m.direction == "inbound")
        .count();
    assert_eq!(inbound, 205, "every mail is on the ticket, once");
    let changes = |kind: &str| detail.events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(changes("priority_changed"), 104, "one change a round");
}

async fn ticket(desk: &Desk, code: &ReferenceCode) -> helpdesk::store::TicketSummary {
    desk.app
        .pipeline
        .store()
        .ticket_detail(code)
        .await
        .unwrap()
        .expect("the ticket")
        .summary
}
