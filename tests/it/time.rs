//! Time with a moved clock: service levels in business hours across a night, a weekend
//! and a holiday, the clock standing while the ticket waits on the customer, a restart
//! after a long stop, reminders, no-answer resolution, automatic closing, a reply after
//! closing, and vendors (L4) on the pipeline. The same decide/apply path as mail; the
//! scheduler is run as `helpdesk run` runs it (`Pipeline::run_timers`).

use std::sync::Arc;

use serde_json::Value;

use crate::support::{Desk, customer_mail, embedded_config, helpdesk, stdout};
use helpdesk::clock::FixedClock;
use helpdesk::desk::Command;
use helpdesk::domain::{Actor, EmailAddress, ReferenceCode};
use helpdesk::pipeline::Processed;

/// Paris business hours with the French holidays file, Alice (L1), Eve (L2), a vendor.
pub(crate) fn config() -> String {
    format!(
        r#"{}
[calendar]
time_zone = "Europe/Paris"
working_days = ["mon", "tue", "wed", "thu", "fri"]
working_hours = ["08:30-12:30", "13:30-17:30"]
holidays_file = "{}/templates/holidays-fr.toml"

[[routing.rules]]
name = "outage"
keywords = ["serveur en panne"]
category = "network"
priority = "urgent"

[[agents]]
name = "Alice Martin"
address = "alice@example.test"
tiers = ["L1"]
languages = ["fr", "en"]

[[agents]]
name = "Eve Expert"
address = "eve@example.test"
tiers = ["L2"]
languages = ["fr", "en"]

[[vendors]]
name = "Ricoh France"
address = "support@ricoh.example"
ticket_pattern = "RIC-\\d{{6}}"
answer_within = "1d"
"#,
        embedded_config(),
        env!("CARGO_MANIFEST_DIR")
    )
}

pub(crate) fn at(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

pub(crate) struct Timed {
    pub(crate) desk: Desk,
    clock: Arc<FixedClock>,
}

impl Timed {
    async fn start(now: &str) -> Timed {
        Timed::start_with(&config(), now).await
    }

    /// A desk with `toml` whose time is `now` until moved.
    pub(crate) async fn start_with(toml: &str, now: &str) -> Timed {
        let clock = Arc::new(FixedClock::at(at(now)));
        let desk = Desk::with_clock(toml, clock.clone()).await;
        Timed { desk, clock }
    }

    pub(crate) fn set(&self, now: &str) {
        self.clock.set(at(now));
    }

    /// One scheduler pass at `now`: how many tickets had work due.
    pub(crate) async fn tick(&self, now: &str) -> usize {
        self.set(now);
        self.desk
            .app
            .pipeline
            .run_timers("test")
            .await
            .expect("timers run")
            .tickets
    }

    pub(crate) async fn open(&self, subject: &str, id: &str, body: &str) -> String {
        let raw = customer_mail("Marie Dupont <marie@example.fr>", subject, id, body);
        match self.desk.file(&raw).await {
            Processed::Filed { code, .. } => code.to_string(),
            other => panic!("{other:?}"),
        }
    }

    pub(crate) fn show(&self, code: &str) -> Value {
        let out = helpdesk(&[
            "--config",
            self.desk.config_path.to_str().unwrap(),
            "tickets",
            "show",
            code,
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// Outgoing mail of a ticket as (kind, recipient, text), oldest first.
    pub(crate) fn sent(&self, code: &str) -> Vec<(String, String, String)> {
        self.show(code)["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "outbound")
            .map(|m| {
                (
                    m["kind"].as_str().unwrap().to_string(),
                    m["to"][0].as_str().unwrap().to_string(),
                    m["body_text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub(crate) async fn events(&self, code: &str) -> Vec<(String, String, String)> {
        sqlx::query_as(
            "SELECT e.kind, e.actor_kind, e.detail FROM events e JOIN tickets t ON t.id = e.ticket_id \
             WHERE t.code = ? ORDER BY e.id",
        )
        .bind(code)
        .fetch_all(&self.desk.db().await)
        .await
        .unwrap()
    }

    pub(crate) async fn count_events(&self, code: &str, kind: &str) -> usize {
        self.events(code)
            .await
            .iter()
            .filter(|(k, _, _)| k == kind)
            .count()
    }

    pub(crate) async fn execute(&self, code: &str, command: Command, actor: Actor) {
        self.desk
            .app
            .pipeline
            .execute(&ReferenceCode::from_stored(code.into()), &command, actor)
            .await
            .expect("command applies");
    }
}

pub(crate) fn agent(a: &str) -> Actor {
    Actor::Agent(EmailAddress::parse(a).unwrap())
}

#[tokio::test]
async fn a_request_filed_on_christmas_eve_is_warned_and_breached_after_the_holiday_and_the_weekend()
{
    // Thursday 24 December 2026, 16:00 in Paris; normal priority: first response in 8
    // business hours. 1.5 h that evening; Christmas (in the holidays file) and the weekend
    // do not count; 6.5 h on Monday 28th: due 16:00 Paris, warned at 80% (6.4 h) at 14:24.
    let t = Timed::start("2026-12-24T16:00:00+01:00").await;
    let code = t
        .open(
            "Imprimante",
            "xmas@example.fr",
            "L'imprimante du 2e étage ne répond plus.",
        )
        .await;
    let ticket = t.show(&code);
    assert_eq!(ticket["assignee"], "alice@example.test");
    assert_eq!(
        ticket["sla"]["first_response_due"],
        "2026-12-28T15:00:00.000Z"
    );
    assert_eq!(ticket["sla"]["paused"], false);

    for quiet in [
        "2026-12-24T23:00:00+01:00",
        "2026-12-25T10:00:00+01:00",
        "2026-12-27T12:00:00+01:00",
        "2026-12-28T14:23:00+01:00",
    ] {
        assert_eq!(t.tick(quiet).await, 0, "nothing due at {quiet}");
    }
    assert_eq!(t.tick("2026-12-28T14:24:00+01:00").await, 1);
    let sent = t.sent(&code);
    let (kind, to, text) = sent.last().unwrap();
    assert_eq!(
        (kind.as_str(), to.as_str()),
        ("sla_warning", "alice@example.test")
    );
    assert!(
        text.contains("première réponse attendue au plus tard lundi 28 décembre à 16 h"),
        "{text}"
    );
    assert!(
        text.contains("L'imprimante du 2e étage ne répond plus."),
        "the customer's last message: {text}"
    );
    // The same moment again: nothing twice.
    assert_eq!(t.tick("2026-12-28T14:30:00+01:00").await, 0);

    // The breach: escalated to L2, Eve given the ticket, Alice told; the customer is not.
    assert_eq!(t.tick("2026-12-28T16:00:00+01:00").await, 1);
    let ticket = t.show(&code);
    assert_eq!(ticket["tier"], "L2");
    assert_eq!(ticket["assignee"], "eve@example.test");
    assert_eq!(
        ticket["sla"]["breached"],
        serde_json::json!(["first_response"])
    );
    let sent = t.sent(&code);
    let after: Vec<(&str, &str)> = sent[sent.len() - 2..]
        .iter()
        .map(|(k, to, _)| (k.as_str(), to.as_str()))
        .collect();
    assert_eq!(
        after,
        [
            ("agent_notification", "eve@example.test"),
            ("agent_reassigned", "alice@example.test")
        ]
    );
    assert!(
        sent[sent.len() - 2]
            .2
            .contains("délai de première réponse dépassé"),
        "{}",
        sent[sent.len() - 2].2
    );
    assert!(
        !sent.iter().any(|(k, _, _)| k == "status_update"),
        "the customer hears nothing of a missed target"
    );
    let breaches: Vec<_> = t
        .events(&code)
        .await
        .into_iter()
        .filter(|(k, _, _)| k == "sla_breached")
        .collect();
    assert_eq!(breaches.len(), 1);
    assert_eq!(breaches[0].1, "timer");

    // The command line lists it among the breached.
    let out = helpdesk(&[
        "--config",
        t.desk.config_path.to_str().unwrap(),
        "tickets",
        "list",
        "--breached",
    ]);
    assert!(stdout(&out).contains(&code), "{}", stdout(&out));
}

#[tokio::test]
async fn the_clock_stands_while_the_ticket_waits_on_the_customer() {
    // Monday 30 November, 9:00 Paris; Alice answers at 10:00 (first response met, the
    // ticket waits on the customer), the customer answers on Wednesday at 10:00.
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let code = t
        .open(
            "Accès VPN",
            "vpn@example.fr",
            "Le VPN refuse mon mot de passe.",
        )
        .await;
    t.set("2026-11-30T10:00:00+01:00");
    let reply = customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Accès VPN"),
        "alice-1@example.test",
        "Bonjour, pouvez-vous essayer après avoir redémarré le poste ?",
    );
    assert!(matches!(
        t.desk.file(&reply).await,
        Processed::Appended { .. }
    ));
    let ticket = t.show(&code);
    assert_eq!(ticket["status"], "waiting_on_customer");
    assert_eq!(
        ticket["sla"]["first_response_at"],
        "2026-11-30T09:00:00.000Z"
    );
    assert_eq!(ticket["sla"]["paused"], true);
    assert_eq!(ticket["sla"]["resolution_due"], Value::Null);

    // Tuesday: no resolution warning while the clock stands.
    assert_eq!(t.tick("2026-12-01T17:00:00+01:00").await, 0);

    t.set("2026-12-02T10:00:00+01:00");
    let back = customer_mail(
        "Marie Dupont <marie@example.fr>",
        &format!("Re: [{code}] Accès VPN"),
        "vpn-2@example.fr",
        "Toujours pareil après redémarrage.",
    );
    assert!(matches!(
        t.desk.file(&back).await,
        Processed::Appended { .. }
    ));
    // 1 h used of 5 working days (40 h): 39 h from Wednesday 10:00 → Wednesday 9 December
    // 9:00 Paris (Wed 6.5 h, Thu, Fri, Mon, Tue 8 h each, then 0.5 h).
    let ticket = t.show(&code);
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["sla"]["paused"], false);
    assert_eq!(ticket["sla"]["resolution_due"], "2026-12-09T08:00:00.000Z");
    assert_eq!(ticket["sla"]["first_response_due"], Value::Null);
}

#[tokio::test]
async fn a_restart_after_a_long_stop_acts_once_per_ticket_not_in_a_burst() {
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let mut codes = Vec::new();
    for i in 0..3 {
        codes.push(
            t.open(
                &format!("Logiciel {i}"),
                &format!("stop-{i}@example.fr"),
                "Le logiciel de paie plante au démarrage.",
            )
            .await,
        );
    }
    // Three weeks later: every warning and breach of every target fell due long ago.
    assert_eq!(t.tick("2026-12-21T09:00:00+01:00").await, 3);
    for code in &codes {
        assert_eq!(t.count_events(code, "sla_warned").await, 0, "{code}");
        assert_eq!(t.count_events(code, "sla_breached").await, 2, "{code}");
        assert_eq!(t.count_events(code, "escalated").await, 1, "{code}");
        let kinds: Vec<String> = t.sent(code).into_iter().map(|(k, _, _)| k).collect();
        assert_eq!(
            kinds,
            [
                "acknowledgement",
                "agent_notification",
                "agent_notification",
                "agent_reassigned"
            ],
            "{code}: one escalation, nothing else"
        );
    }
    assert_eq!(t.tick("2026-12-21T10:00:00+01:00").await, 0);
}

#[tokio::test]
async fn a_silent_customer_is_reminded_then_resolved_then_closed_and_a_late_reply_opens_a_new_ticket()
 {
    let t = Timed::start("2026-11-30T10:00:00+01:00").await;
    let code = t
        .open("Écran", "screen@example.fr", "Mon écran clignote.")
        .await;
    t.execute(
        &code,
        Command::Wait(Some(std::time::Duration::from_secs(2 * 86_400))),
        agent("alice@example.test"),
    )
    .await;
    assert_eq!(t.tick("2026-12-02T09:59:00+01:00").await, 0);
    // Wednesday 10:00: reminded.
    assert_eq!(t.tick("2026-12-02T10:00:00+01:00").await, 1);
    let (kind, to, text) = t.sent(&code).pop().unwrap();
    assert_eq!(
        (kind.as_str(), to.as_str()),
        ("reminder", "marie@example.fr")
    );
    assert!(
        text.contains("résolue le vendredi 4 décembre à 10 h"),
        "{text}"
    );
    assert_eq!(t.show(&code)["status"], "waiting_on_customer");

    // Friday 10:00: no answer, resolved, told how to reopen.
    assert_eq!(t.tick("2026-12-04T10:00:00+01:00").await, 1);
    assert_eq!(t.show(&code)["status"], "resolved");
    let (kind, _, text) = t.sent(&code).pop().unwrap();
    assert_eq!(kind, "status_update");
    assert!(text.contains("Sans nouvelles de votre part"), "{text}");

    // Seven days later, a Friday 10:00 again: closed, with a final mail.
    assert_eq!(t.tick("2026-12-11T09:59:00+01:00").await, 0);
    assert_eq!(t.tick("2026-12-11T10:00:00+01:00").await, 1);
    assert_eq!(t.show(&code)["status"], "closed");
    let (kind, _, text) = t.sent(&code).pop().unwrap();
    assert_eq!(kind, "status_update");
    assert!(text.contains("clôturée"), "{text}");
    assert_eq!(t.tick("2026-12-31T10:00:00+01:00").await, 0, "nothing left");

    // The customer writes on the closed ticket: a new ticket that follows it.
    t.set("2026-12-14T09:00:00+01:00");
    let late = customer_mail(
        "Marie Dupont <marie@example.fr>",
        &format!("Re: [{code}] Écran"),
        "screen-late@example.fr",
        "Il clignote de nouveau.",
    );
    let new_code = match t.desk.file(&late).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    };
    assert_ne!(new_code, code);
    assert_eq!(t.show(&code)["status"], "closed");
    let new = t.show(&new_code);
    assert_eq!(new["follows"], code);
    assert_eq!(new["subject"], "Écran");
    let (_, to, text) = t
        .sent(&new_code)
        .into_iter()
        .find(|(k, _, _)| k == "agent_notification")
        .unwrap();
    assert_eq!(to, "alice@example.test");
    assert!(
        text.contains(&code),
        "the agent is told what it follows: {text}"
    );
}

#[tokio::test]
async fn a_vendor_gets_the_request_without_the_customers_details_and_its_answers_stay_internal() {
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let code = t
        .open(
            "Imprimante HS",
            "ricoh-1@example.fr",
            "Le copieur affiche SC542. Rappelez-moi au 06 12 34 56 78.",
        )
        .await;
    // Unknown vendors are refused with the list.
    let refused = t
        .desk
        .app
        .pipeline
        .execute(
            &ReferenceCode::from_stored(code.clone()),
            &Command::Escalate {
                to: None,
                reason: None,
                vendor: Some("Canon".into()),
            },
            agent("alice@example.test"),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("Ricoh France"), "{refused}");

    // By mail: `#escalate L4 Ricoh France …`.
    let escalate = customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Imprimante HS"),
        "alice-ricoh@example.test",
        "#escalate L4 Ricoh France fuser error, under contract 4411\r\n#note\r\nSent to Ricoh.",
    );
    assert!(matches!(
        t.desk.file(&escalate).await,
        Processed::Appended { .. }
    ));
    let ticket = t.show(&code);
    assert_eq!(ticket["tier"], "L4");
    assert_eq!(ticket["vendor"], "Ricoh France");
    assert_eq!(ticket["assignee"], "alice@example.test");
    let (_, _, forward) = t
        .sent(&code)
        .into_iter()
        .find(|(k, to, _)| k == "vendor_forward" && to == "support@ricoh.example")
        .expect("forwarded to the vendor");
    assert!(forward.contains("SC542"), "{forward}");
    assert!(
        forward.contains("fuser error, under contract 4411"),
        "{forward}"
    );
    for private in [
        "marie@example.fr",
        "Marie",
        "06 12 34 56 78",
        "Sent to Ricoh",
    ] {
        assert!(!forward.contains(private), "{private} leaked: {forward}");
    }

    // Their helpdesk acknowledges with its own number: learned, never answered.
    let ack = format!(
        "From: Ricoh Support <support@ricoh.example>\r\nTo: support@example.test\r\n\
         Subject: [RIC-204518] Accusé de réception : [{code}] Imprimante HS\r\n\
         Message-ID: <ack-204518@ricoh.example>\r\nAuto-Submitted: auto-replied\r\n\r\n\
         Votre demande RIC-204518 est enregistrée.\r\n"
    );
    let before = t.sent(&code).len();
    assert!(matches!(
        t.desk.file(ack.as_bytes()).await,
        Processed::Appended { .. }
    ));
    assert_eq!(t.show(&code)["vendor_ticket"], "RIC-204518");
    assert_eq!(
        t.sent(&code).len(),
        before,
        "a machine's mail is never answered"
    );

    // Their answer quotes only their number: threaded by it, sent to Alice only.
    t.set("2026-11-30T15:00:00+01:00");
    let answer = "From: Ricoh Support <support@ricoh.example>\r\nTo: support@example.test\r\n\
         Subject: RE: RIC-204518 intervention\r\nMessage-ID: <answer-204518@ricoh.example>\r\n\r\n\
         Un technicien passera demain matin remplacer l'unité de fusion.\r\n";
    assert!(matches!(
        t.desk.file(answer.as_bytes()).await,
        Processed::Appended { .. }
    ));
    let sent = t.sent(&code);
    let (kind, to, text) = sent.last().unwrap();
    assert_eq!(
        (kind.as_str(), to.as_str()),
        ("vendor_reply", "alice@example.test")
    );
    assert!(text.contains("unité de fusion"), "{text}");
    assert!(
        !sent
            .iter()
            .any(|(_, to, text)| to == "marie@example.fr" && text.contains("unité de fusion")),
        "the customer does not see the vendor's words"
    );
    let received = t
        .events(&code)
        .await
        .into_iter()
        .rfind(|(k, _, _)| k == "message_received")
        .unwrap();
    assert!(received.2.contains("vendor_ticket"), "{}", received.2);

    // Alice relays it with a reply: the customer gets her words.
    let relay = customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Imprimante HS"),
        "alice-relay@example.test",
        "Un technicien Ricoh passe demain matin.",
    );
    assert!(matches!(
        t.desk.file(&relay).await,
        Processed::Appended { .. }
    ));
    let (kind, to, text) = t.sent(&code).pop().unwrap();
    assert_eq!(
        (kind.as_str(), to.as_str()),
        ("agent_reply", "marie@example.fr")
    );
    assert!(text.contains("technicien Ricoh"), "{text}");
}

#[tokio::test]
async fn a_silent_vendor_warns_the_assignee_once() {
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let code = t
        .open("Copieur", "ricoh-2@example.fr", "Le copieur est bloqué.")
        .await;
    t.execute(
        &code,
        Command::Escalate {
            to: None,
            reason: None,
            vendor: Some("ricoh france".into()),
        },
        agent("alice@example.test"),
    )
    .await;
    // One working day (8 h) to answer: Tuesday 9:00 Paris.
    assert_eq!(t.count_events(&code, "vendor_silent").await, 0);
    t.tick("2026-12-01T08:59:00+01:00").await;
    assert_eq!(t.count_events(&code, "vendor_silent").await, 0);
    t.tick("2026-12-01T09:00:00+01:00").await;
    assert_eq!(t.count_events(&code, "vendor_silent").await, 1);
    let warning = t
        .sent(&code)
        .into_iter()
        .rfind(|(k, _, _)| k == "sla_warning")
        .unwrap();
    assert_eq!(warning.1, "alice@example.test");
    assert!(warning.2.contains("Ricoh France"), "{}", warning.2);
    t.tick("2026-12-02T09:00:00+01:00").await;
    assert_eq!(t.count_events(&code, "vendor_silent").await, 1);
}

#[test]
fn tick_at_a_given_moment_runs_what_fell_due_then() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("helpdesk.toml");
    std::fs::write(&config, config_text()).unwrap();
    let cfg = config.to_str().unwrap();
    let raw = customer_mail(
        "Marie Dupont <marie@example.fr>",
        "Serveur",
        "tick-1@example.fr",
        "Le serveur en panne depuis ce matin.",
    );
    let mail = dir.path().join("m.eml");
    std::fs::write(&mail, raw).unwrap();
    let out = helpdesk(&[
        "--config",
        cfg,
        "ingest",
        "--no-send",
        mail.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An urgent ticket filed now is due within the hour; a year on, everything is due.
    let out = helpdesk(&["--config", cfg, "tickets", "list", "--due-within", "2h"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    // Found by the attack run: `tick --at` changed the real desk and left its mail waiting
    // for the simulated date (a year on), counted against today's budget. Now it is a dry
    // run, ticket by ticket...
    let db = dir.path().join("helpdesk.db");
    let count = |sql: &str| -> i64 {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"])
            .arg(&db)
            .arg(sql)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let events_before = count("SELECT COUNT(*) FROM events");
    let out = helpdesk(&["--config", cfg, "tick", "--at", "2027-11-23T10:00:00+01:00"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let preview = stdout(&out);
    assert!(
        preview.starts_with("dry run at 2027-11-23T09:00"),
        "{preview}"
    );
    assert!(
        preview.contains("sla_breached") && preview.contains("1 ticket(s) with work due"),
        "{preview}"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM events"),
        events_before,
        "nothing changed"
    );
    // ...and `--apply` acts as if it were then, says so, and queues its mail to go now.
    let out = helpdesk(&[
        "--config",
        cfg,
        "tick",
        "--at",
        "2027-11-23T10:00:00+01:00",
        "--apply",
        "--no-send",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).starts_with("1 ticket(s)"), "{}", stdout(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("as if it were 2027-11-23"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = helpdesk::clock::Clock::now(&helpdesk::clock::SystemClock);
    assert_eq!(
        count(&format!(
            "SELECT COUNT(*) FROM outbox WHERE next_attempt_at > {}",
            now + 60_000
        )),
        0,
        "no mail waits for the simulated date"
    );
    let out = helpdesk(&["--config", cfg, "tickets", "list", "--breached"]);
    assert_eq!(stdout(&out).lines().count(), 1, "{}", stdout(&out));
    let line = stdout(&out);
    let cols: Vec<&str> = line.trim().split('\t').collect();
    assert!(cols[6].ends_with("(missed)"), "the due column: {line}");
    let out = helpdesk(&["--config", cfg, "tick", "--at", "yesterday"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--at"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Round the clock (no [calendar]), so "due within 2h" holds whatever the hour the test runs.
fn config_text() -> String {
    format!(
        "{}\n[[routing.rules]]\nname = \"outage\"\nkeywords = [\"serveur en panne\"]\ncategory = \"network\"\npriority = \"urgent\"\n",
        embedded_config()
    )
}

#[test]
fn a_wrong_time_setting_names_its_key() {
    for (toml, key) in [
        (
            "[calendar]\ntime_zone = \"Europe/Pariss\"\n",
            "calendar.time_zone",
        ),
        (
            "[calendar]\nworking_hours = [\"18:00-08:00\"]\n",
            "calendar.working_hours",
        ),
        (
            "[calendar]\nholidays_file = \"nowhere.toml\"\n",
            "calendar.holidays_file",
        ),
        (
            "[sla.urgent]\nfirst_response = \"soon\"\n",
            "sla.urgent.first_response",
        ),
        ("[sla.high]\nwarn_at = -1.0\n", "sla.high.warn_at"),
        (
            "[[sla.overrides]]\nfirst_response = \"1h\"\n",
            "sla.overrides[0]",
        ),
        ("[waiting]\nno_answer = \"forget\"\n", "waiting.no_answer"),
        (
            "[[vendors]]\nname = \"X\"\naddress = \"x@example.com\"\nticket_pattern = \"(\"\n",
            "vendors[0].ticket_pattern",
        ),
    ] {
        let text = format!("{}\n{toml}", embedded_config());
        let err = helpdesk::config::Config::from_toml(
            &text,
            std::path::Path::new("helpdesk.toml"),
            std::path::Path::new("/nonexistent"),
            &helpdesk::config::ProcessEnv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
}

/// A day in the life of one ticket, event by event with its time in Paris: the story the
/// README and the closing note tell, asserted here.
#[tokio::test]
async fn a_day_in_the_life_of_a_ticket() {
    let t = Timed::start("2026-12-07T08:10:00+01:00").await;
    // Filed before opening hours; the clock starts at 8:30.
    let code = t
        .open(
            "Outlook",
            "life-1@example.fr",
            "Outlook ne s'ouvre plus depuis la mise à jour.",
        )
        .await;
    // 80% of 8 business hours = 6.4 h from 8:30: 15:54 (lunch excluded). Alice is warned.
    assert_eq!(t.tick("2026-12-07T15:54:00+01:00").await, 1);
    // She answers at 16:10: first response met, the ticket waits on Marie.
    t.set("2026-12-07T16:10:00+01:00");
    let answer = customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Outlook"),
        "life-2@example.test",
        "Bonjour, pouvez-vous lancer Outlook en mode sans échec (outlook.exe /safe) ?",
    );
    t.desk.file(&answer).await;
    // Marie answers the next morning; the clock runs again.
    t.set("2026-12-08T09:05:00+01:00");
    let back = customer_mail(
        "Marie Dupont <marie@example.fr>",
        &format!("Re: [{code}] Outlook"),
        "life-3@example.fr",
        "En mode sans échec il s'ouvre.",
    );
    t.desk.file(&back).await;
    // Alice asks her to disable an add-in and waits two days.
    t.set("2026-12-08T09:30:00+01:00");
    let wait = customer_mail(
        "Alice Martin <alice@example.test>",
        &format!("Re: [{code}] Outlook"),
        "life-4@example.test",
        "#wait 2d\r\nDésactivez le complément « Zoom » puis relancez Outlook normalement.",
    );
    t.desk.file(&wait).await;
    // Thursday 9:30: no news, Marie is reminded.
    assert_eq!(t.tick("2026-12-10T09:30:00+01:00").await, 1);
    t.set("2026-12-10T11:00:00+01:00");
    let solved = customer_mail(
        "Marie Dupont <marie@example.fr>",
        &format!("Re: [{code}] Outlook"),
        "life-5@example.fr",
        "Résolu\r\nC'était bien le complément, merci !",
    );
    t.desk.file(&solved).await;
    // A week later, closed by itself.
    assert_eq!(t.tick("2026-12-17T11:00:00+01:00").await, 1);

    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT e.kind, e.actor_kind, e.detail, e.at FROM events e JOIN tickets t ON t.id = e.ticket_id \
         WHERE t.code = ? AND e.kind NOT IN ('mail_queued', 'mail_sent') ORDER BY e.id",
    )
    .bind(&code)
    .fetch_all(&t.desk.db().await)
    .await
    .unwrap();
    let mut story = Vec::new();
    for (kind, actor, detail, at) in &rows {
        let when = chrono::DateTime::from_timestamp_millis(*at)
            .unwrap()
            .with_timezone(&paris)
            .format("%a %d %H:%M");
        println!("{when}  {kind:<16} {actor:<8} {detail}");
        story.push(kind.as_str());
    }
    assert_eq!(
        story,
        [
            "created",
            "routed",
            "assigned",
            "sla_warned",
            "message_received",
            "agent_replied",
            "status_changed",
            "message_received",
            "status_changed",
            "message_received",
            "status_changed",
            "agent_replied",
            "reminded",
            "message_received",
            "status_changed",
            "status_changed",
        ]
    );
    let ticket = t.show(&code);
    assert_eq!(ticket["status"], "closed");
    assert_eq!(ticket["sla"]["breached"], serde_json::json!([]));
    assert_eq!(
        ticket["sla"]["first_response_at"],
        "2026-12-07T15:10:00.000Z"
    );
}

/// `helpdesk run`'s scheduler, not only its pass: started with the clock past a ticket's
/// targets, it acts within a second and keeps running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_gateway_runs_the_timers_by_itself() {
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let code = t
        .open("Souris", "run-1@example.fr", "Ma souris ne répond plus.")
        .await;
    t.set("2026-12-30T09:00:00+01:00");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let app = t.desk.app.clone();
    let token = shutdown.clone();
    let running = tokio::spawn(async move { app.run(token).await });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while t.count_events(&code, "sla_breached").await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduler did not act"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(t.show(&code)["tier"], "L2");
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// Two gateways on one database: a ticket whose work fell due is leased to one of them;
/// the other gets it only once that lease has run out (a gateway that died holding it).
#[tokio::test]
async fn due_work_is_leased_to_one_scheduler_at_a_time() {
    let t = Timed::start("2026-11-30T09:00:00+01:00").await;
    let code = t
        .open(
            "Clavier",
            "lease-1@example.fr",
            "Mon clavier ne répond plus.",
        )
        .await;
    let store = t.desk.app.pipeline.store().clone();
    let later = at("2026-12-30T09:00:00+01:00");
    let machine_now = helpdesk::clock::Clock::now(&helpdesk::clock::SystemClock);
    let first = store
        .claim_due(later, machine_now, machine_now + 60_000, 10, "gateway-a")
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let second = store
        .claim_due(
            later,
            machine_now + 1_000,
            machine_now + 61_000,
            10,
            "gateway-b",
        )
        .await
        .unwrap();
    assert!(second.is_empty(), "leased to gateway-a");
    let after_expiry = store
        .claim_due(
            later,
            machine_now + 61_000,
            machine_now + 121_000,
            10,
            "gateway-b",
        )
        .await
        .unwrap();
    assert_eq!(after_expiry, first, "gateway-a's lease ran out");
    // Acting on it writes the new timing and lets go of the lease: nothing left due then.
    t.set("2026-12-30T09:00:00+01:00");
    let pass = t.desk.app.pipeline.run_timers("gateway-b").await.unwrap();
    assert_eq!(
        pass.tickets, 0,
        "still leased to gateway-b by the claim above"
    );
    assert_eq!(t.count_events(&code, "sla_breached").await, 0);
}
