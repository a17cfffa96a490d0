//! Tiers, routing, the roster and the command line over a real store: what is written and
//! queued when mail arrives and when someone acts on a ticket.

use serde_json::Value;

use crate::support::{Desk, StoreKind, customer_mail, embedded_config, helpdesk, stdout};
use helpdesk::pipeline::Processed;

/// The embedded default plus a roster: two L1 agents (one French-only) and an L2 expert.
fn roster_config() -> String {
    format!(
        r#"{}
[tiers.L3]
address = "n3@example.test"
labels = {{ fr = "Niveau 3 – ingénierie", en = "Level 3 – engineering" }}

[[routing.rules]]
name = "payroll to L2"
keywords = ["paie", "payroll"]
category = "software"
priority = "high"
tier = "L2"

[[agents]]
name = "Alice Martin"
address = "alice@example.test"
tiers = ["L1"]
languages = ["fr", "en"]

[[agents]]
name = "Bruno Petit"
address = "bruno@example.test"
tiers = ["L1"]
languages = ["fr"]

[[agents]]
name = "Eve Expert"
address = "eve@example.test"
tiers = ["L2"]
languages = ["en", "fr"]
"#,
        embedded_config()
    )
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout(out)).unwrap()
}

async fn open(desk: &Desk, subject: &str, id: &str, body: &str) -> String {
    let raw = customer_mail("Marie Dupont <marie@example.fr>", subject, id, body);
    match desk.file(&raw).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    }
}

fn show(desk: &Desk, code: &str) -> Value {
    json(&helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "show",
        code,
        "--json",
    ]))
}

/// The events of `kind` in a ticket as `tickets show --json` gives them, oldest first.
fn events<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

fn cli(desk: &Desk, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--config", desk.config_path.to_str().unwrap()];
    all.extend_from_slice(args);
    helpdesk(&all)
}

#[tokio::test]
async fn a_new_ticket_is_routed_assigned_and_its_agent_gets_the_thread() {
    a_new_ticket_is_routed_assigned_and_its_agent_gets_the_thread_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_new_ticket_is_routed_assigned_and_its_agent_gets_the_thread_on_postgres() {
    a_new_ticket_is_routed_assigned_and_its_agent_gets_the_thread_on(StoreKind::Postgres).await;
}

async fn a_new_ticket_is_routed_assigned_and_its_agent_gets_the_thread_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(
        &desk,
        "Imprimante bloquée",
        "d1@example.fr",
        "Bonjour, l'imprimante du 2e étage affiche un bourrage papier.",
    )
    .await;
    let t = show(&desk, &code);
    assert_eq!(t["category"], "printer");
    assert_eq!(t["priority"], "normal");
    assert_eq!(t["tier"], "L1");
    assert_eq!(t["assignee"], "alice@example.test");
    assert_eq!(t["participants"], serde_json::json!(["marie@example.fr"]));
    let kinds: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap_or("inbound"))
        .collect();
    assert_eq!(kinds, ["inbound", "acknowledgement", "agent_notification"]);
    let notification = &t["messages"][2];
    assert_eq!(
        notification["to"],
        serde_json::json!(["alice@example.test"])
    );
    let text = notification["body_text"].as_str().unwrap();
    assert!(text.contains("bourrage papier"), "{text}");
    assert!(text.contains("Marie Dupont <marie@example.fr>"), "{text}");
    assert!(
        text.contains("Niveau 1"),
        "in Alice's first language: {text}"
    );
    assert!(
        notification["subject"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{code}]"))
    );
    // The routing decision is in the event log, with what matched.
    let routed = events(&t, "routed")[0];
    assert_eq!(routed["detail"]["rule"], "built-in: printer");
    let matched = routed["detail"]["matched"].to_string();
    assert!(matched.contains("imprimante"), "{matched}");
}

#[tokio::test]
async fn tickets_go_to_the_least_loaded_agent_in_turn() {
    tickets_go_to_the_least_loaded_agent_in_turn_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn tickets_go_to_the_least_loaded_agent_in_turn_on_postgres() {
    tickets_go_to_the_least_loaded_agent_in_turn_on(StoreKind::Postgres).await;
}

async fn tickets_go_to_the_least_loaded_agent_in_turn_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let mut assignees = Vec::new();
    for i in 0..4 {
        let code = open(
            &desk,
            &format!("Mot de passe {i}"),
            &format!("rr{i}@example.fr"),
            "Bonjour, mon mot de passe a expiré ce matin.",
        )
        .await;
        assignees.push(show(&desk, &code)["assignee"].as_str().unwrap().to_string());
    }
    assert_eq!(
        assignees,
        [
            "alice@example.test",
            "bruno@example.test",
            "alice@example.test",
            "bruno@example.test"
        ]
    );
    // Bruno speaks no English: an English request goes to Alice however loaded she is.
    let raw = customer_mail(
        "John <john@example.com>",
        "Password expired",
        "en1@example.com",
        "Hello, my password expired this morning and I cannot log in to my computer.",
    );
    let Processed::Filed { code, .. } = desk.file(&raw).await else {
        panic!()
    };
    assert_eq!(show(&desk, code.as_str())["assignee"], "alice@example.test");
    let agents = json(&cli(&desk, &["agents", "list", "--json"]));
    let open: Vec<(String, u64)> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["address"].as_str().unwrap().to_string(),
                a["open_tickets"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        open,
        [
            ("alice@example.test".to_string(), 3),
            ("bruno@example.test".to_string(), 2),
            ("eve@example.test".to_string(), 0)
        ]
    );
}

#[tokio::test]
async fn a_follow_up_reaches_the_assignee_with_the_new_text_only() {
    a_follow_up_reaches_the_assignee_with_the_new_text_only_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn a_follow_up_reaches_the_assignee_with_the_new_text_only_on_postgres() {
    a_follow_up_reaches_the_assignee_with_the_new_text_only_on(StoreKind::Postgres).await;
}

async fn a_follow_up_reaches_the_assignee_with_the_new_text_only_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(
        &desk,
        "VPN",
        "f1@example.fr",
        "Le VPN se déconnecte toutes les 5 minutes.",
    )
    .await;
    let reply = customer_mail(
        "marie@example.fr",
        &format!("Re: [{code}] VPN"),
        "f2@example.fr",
        "Cela recommence ce matin.\r\n\r\nLe lun. 2 mars 2026, Support a écrit :\r\n> Nous avons bien reçu votre demande",
    );
    assert!(matches!(
        desk.file(&reply).await,
        Processed::Appended { .. }
    ));
    let t = show(&desk, &code);
    let follow = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "agent_follow_up")
        .expect("a follow-up notification");
    assert_eq!(follow["to"], serde_json::json!(["alice@example.test"]));
    let text = follow["body_text"].as_str().unwrap();
    assert!(text.contains("Cela recommence ce matin."), "{text}");
    assert!(
        !text.contains("Nous avons bien reçu"),
        "quoted history leaked: {text}"
    );
    assert!(
        !text.contains("toutes les 5 minutes"),
        "not the whole thread: {text}"
    );
}

#[tokio::test]
async fn escalation_from_the_command_line_moves_up_and_tells_everyone() {
    escalation_from_the_command_line_moves_up_and_tells_everyone_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn escalation_from_the_command_line_moves_up_and_tells_everyone_on_postgres() {
    escalation_from_the_command_line_moves_up_and_tells_everyone_on(StoreKind::Postgres).await;
}

async fn escalation_from_the_command_line_moves_up_and_tells_everyone_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(
        &desk,
        "Accès au dossier",
        "e1@example.fr",
        "J'ai besoin d'un accès au dossier partagé de la compta.",
    )
    .await;
    let out = cli(
        &desk,
        &[
            "tickets",
            "escalate",
            &code,
            "--reason",
            "droits administrateur",
            "--as",
            "alice@example.test",
            "--no-send",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = show(&desk, &code);
    assert_eq!(t["tier"], "L2");
    assert_eq!(t["assignee"], "eve@example.test");
    let sent: Vec<(String, String)> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_string(),
                m["to"][0].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        sent[2..],
        [
            (
                "agent_notification".to_string(),
                "eve@example.test".to_string()
            ),
            (
                "agent_reassigned".to_string(),
                "alice@example.test".to_string()
            ),
            ("status_update".to_string(), "marie@example.fr".to_string()),
        ]
    );
    let status = t["messages"].as_array().unwrap().last().unwrap()["body_text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(status.contains("Niveau 2 – support avancé"), "{status}");
    let escalated = events(&t, "escalated")[0];
    assert_eq!(
        (&escalated["actor_kind"], &escalated["actor"]),
        (&Value::from("agent"), &Value::from("alice@example.test"))
    );

    // To L3, where nobody is on the roster: unassigned, the tier's address is told.
    let out = cli(&desk, &["tickets", "escalate", &code, "--no-send"]);
    assert!(out.status.success());
    let t = show(&desk, &code);
    assert_eq!(
        (t["tier"].as_str(), t["assignee"].as_str()),
        (Some("L3"), None)
    );
    let last_to_agents: Vec<&str> = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "agent_notification")
        .map(|m| m["to"][0].as_str().unwrap())
        .collect();
    assert_eq!(last_to_agents.last(), Some(&"n3@example.test"));

    let listed = json(&cli(&desk, &["tickets", "list", "--tier", "L3", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let listed = json(&cli(&desk, &["tickets", "list", "--tier", "L1", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn resolve_close_reopen_and_refusals_from_the_command_line() {
    resolve_close_reopen_and_refusals_from_the_command_line_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn resolve_close_reopen_and_refusals_from_the_command_line_on_postgres() {
    resolve_close_reopen_and_refusals_from_the_command_line_on(StoreKind::Postgres).await;
}

async fn resolve_close_reopen_and_refusals_from_the_command_line_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(
        &desk,
        "Écran noir",
        "r1@example.fr",
        "Mon écran reste noir.",
    )
    .await;
    for (cmd, status) in [
        ("resolve", "resolved"),
        ("reopen", "open"),
        ("wait", "waiting_on_customer"),
        ("close", "closed"),
    ] {
        let mut args = vec!["tickets", cmd, code.as_str(), "--no-send"];
        if cmd == "wait" {
            args.push("3d");
        }
        let out = cli(&desk, &args);
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(show(&desk, &code)["status"], status, "after {cmd}");
    }
    let t = show(&desk, &code);
    let waited = events(&t, "status_changed")
        .into_iter()
        .find(|e| e["detail"]["to"] == "waiting_on_customer")
        .expect("the wait")["detail"]["wait_seconds"]
        .as_i64();
    assert_eq!(
        waited.unwrap(),
        3 * 86_400,
        "the waiting time is recorded for the timers"
    );
    // A closed ticket cannot be resolved; an unknown agent cannot be assigned; L3 is the top
    // of a desk without vendors.
    let out = cli(&desk, &["tickets", "resolve", &code]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("closed"));
    let other = open(
        &desk,
        "Clavier",
        "r2@example.fr",
        "Mon clavier ne marche plus.",
    )
    .await;
    let out = cli(&desk, &["tickets", "assign", &other, "nobody@example.test"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not on the roster"));
    // L4 is a vendor's, and this desk has none: refused, saying so.
    let out = cli(
        &desk,
        &["tickets", "escalate", &other, "--to", "L4", "--no-send"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none is configured"));
    let out = cli(
        &desk,
        &["tickets", "escalate", &other, "--to", "L3", "--no-send"],
    );
    assert!(out.status.success());
    let out = cli(&desk, &["tickets", "escalate", &other]);
    assert_eq!(out.status.code(), Some(3));
    // Each change told the customer once, in French.
    let (first, second) = (show(&desk, &code), show(&desk, &other));
    let changes: Vec<&str> = events(&first, "mail_queued")
        .into_iter()
        .chain(events(&second, "mail_queued"))
        .filter(|e| e["detail"]["kind"] == "status_update")
        .map(|e| e["detail"]["change"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["resolved", "reopened", "waiting", "closed", "escalated"]
    );
}

#[tokio::test]
async fn the_second_reopening_by_the_customer_escalates_by_itself() {
    the_second_reopening_by_the_customer_escalates_by_itself_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn the_second_reopening_by_the_customer_escalates_by_itself_on_postgres() {
    the_second_reopening_by_the_customer_escalates_by_itself_on(StoreKind::Postgres).await;
}

async fn the_second_reopening_by_the_customer_escalates_by_itself_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(&desk, "Wi-Fi", "w1@example.fr", "Le wifi coupe sans arrêt.").await;
    for round in 0..2 {
        let out = cli(&desk, &["tickets", "resolve", &code, "--no-send"]);
        assert!(out.status.success());
        let reply = customer_mail(
            "marie@example.fr",
            &format!("Re: [{code}] Wi-Fi"),
            &format!("w-again-{round}@example.fr"),
            "Non, toujours pas.",
        );
        assert!(matches!(
            desk.file(&reply).await,
            Processed::Appended { reopened: true, .. }
        ));
    }
    let t = show(&desk, &code);
    assert_eq!(t["reopen_count"], 2);
    assert_eq!(t["tier"], "L2");
    assert_eq!(t["assignee"], "eve@example.test");
    assert_eq!(
        events(&t, "escalated")[0]["detail"]["reason"],
        "reopened 2 times"
    );
}

#[tokio::test]
async fn route_says_what_a_mail_would_become_without_filing_it() {
    let desk = Desk::with_config(&roster_config()).await;
    let mail = desk.dir.path().join("payroll.eml");
    std::fs::write(
        &mail,
        customer_mail(
            "paul@rh.example.com",
            "Logiciel de paie",
            "p1@example.fr",
            "Le calcul de la paie plante.",
        ),
    )
    .unwrap();
    let v = json(&cli(&desk, &["route", mail.to_str().unwrap(), "--json"]));
    assert_eq!(v["category"], "software");
    assert_eq!(v["priority"], "high");
    assert_eq!(v["tier"], "L2");
    assert_eq!(v["rule"], "payroll to L2");
    assert_eq!(v["matched"], serde_json::json!(["paie"]));
    assert_eq!(v["assignee"], "eve@example.test");
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM tickets").await,
        0,
        "nothing filed"
    );
    std::fs::write(
        &mail,
        customer_mail(
            "x@example.com",
            "Bonjour",
            "p2@example.fr",
            "Une question sur les horaires.",
        ),
    )
    .unwrap();
    let v = json(&cli(&desk, &["route", mail.to_str().unwrap(), "--json"]));
    assert_eq!(
        (v["category"].as_str(), v["rule"].as_str()),
        (Some("general"), None)
    );
}

#[test]
fn a_wrong_roster_or_rule_names_its_key() {
    use helpdesk::config::{Config, ProcessEnv};
    let cases = [
        (
            "[[agents]]\nname = \"A\"\naddress = \"a@example.test\"\ntiers = [\"L9\"]\n",
            "agents[0].tiers",
        ),
        (
            "[[agents]]\nname = \"A\"\naddress = \"support@example.test\"\ntiers = [\"L1\"]\n",
            "agents[0].address",
        ),
        (
            "[[routing.rules]]\ncategory = \"printer\"\n",
            "routing.rules[0]",
        ),
        (
            "[[routing.rules]]\nkeywords = [\"x\"]\ncategory = \"Printer!\"\n",
            "routing.rules[0].category",
        ),
        (
            "[[routing.rules]]\nkeywords = [\"x\"]\ncategory = \"printer\"\npriority = \"asap\"\n",
            "routing.rules[0].priority",
        ),
        ("[tiers.L7]\naddress = \"n7@example.test\"\n", "tiers.L7"),
        (
            "[agent_mail]\nrequire_authentication = true\ndns_server = \"localhost\"\n",
            "agent_mail.dns_server",
        ),
        (
            "[agent_mail]\nreply_from = \"Support\"\n",
            "agent_mail.reply_from",
        ),
        (
            "[limits]\nautomatic_mail_per_hour = 50\nautomatic_mail_per_day = 10\n",
            "limits.automatic_mail_per_hour",
        ),
    ];
    for (extra, key) in cases {
        let toml = format!("{}\n{extra}", embedded_config());
        let e = Config::from_toml(&toml, "t.toml".as_ref(), "/desk".as_ref(), &ProcessEnv)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with(key), "{key}: {e}");
    }
}

#[tokio::test]
async fn the_customer_closes_by_reply_and_rates_the_resolution() {
    the_customer_closes_by_reply_and_rates_the_resolution_on(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn the_customer_closes_by_reply_and_rates_the_resolution_on_postgres() {
    the_customer_closes_by_reply_and_rates_the_resolution_on(StoreKind::Postgres).await;
}

async fn the_customer_closes_by_reply_and_rates_the_resolution_on(store: StoreKind) {
    let desk = Desk::on(store, &roster_config()).await;
    let code = open(
        &desk,
        "Souris",
        "s1@example.fr",
        "Ma souris ne marche plus.",
    )
    .await;
    let solved = customer_mail(
        "marie@example.fr",
        &format!("Re: [{code}] Souris"),
        "s2@example.fr",
        "Résolu\r\nC'était la pile.",
    );
    assert!(matches!(
        desk.file(&solved).await,
        Processed::Appended {
            reopened: false,
            ..
        }
    ));
    let t = show(&desk, &code);
    assert_eq!(t["status"], "resolved");
    let status_mail = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rfind(|m| m["kind"] == "status_update")
        .expect("a status mail to the customer");
    assert_eq!(status_mail["to"], serde_json::json!(["marie@example.fr"]));
    assert!(
        status_mail["body_text"]
            .as_str()
            .unwrap()
            .contains("note de 1"),
        "the resolution asks for a rating"
    );
    let rating = customer_mail(
        "marie@example.fr",
        &format!("Re: [{code}] Souris"),
        "s3@example.fr",
        "5 - très rapide, merci",
    );
    assert!(matches!(
        desk.file(&rating).await,
        Processed::Appended {
            reopened: false,
            ..
        }
    ));
    let t = show(&desk, &code);
    assert_eq!(t["status"], "resolved", "a rating does not reopen");
    assert_eq!(t["satisfaction"], 5);
    assert_eq!(t["satisfaction_comment"], "très rapide, merci");
    let resolved = events(&t, "status_changed")
        .into_iter()
        .find(|e| e["detail"]["to"] == "resolved")
        .expect("the resolution");
    assert_eq!(resolved["detail"]["by_customer"], true);
}
