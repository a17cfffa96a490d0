//! Statistics on a scripted month (November 2026, Paris hours, the 11th a public holiday),
//! filed through the real pipeline with a moved clock: every figure of the total checked
//! against times worked out by hand, and the rules of attribution per agent and per tier.

use mail_parser::MimeHeaders;
use serde_json::{Value, json};

use crate::support::{customer_mail, helpdesk, stdout};
use crate::time::{Timed, agent};
use helpdesk::desk::Command;
use helpdesk::pipeline::Processed;

fn config() -> String {
    format!(
        "{}\n[closing]\nafter_resolved = \"never\"\n\n[agent_mail]\nrequire_authentication = false\n\n\
         [reports]\nweekly_to = [\"manager@example.test\"]\n",
        crate::time::config()
    )
}

/// The month, as the desk lived it. Returns the codes in order of creation.
async fn november(t: &Timed) -> Vec<String> {
    let mut codes = Vec::new();
    // T1, a night: filed Monday 18:00, answered (and resolved) Tuesday 09:00, rated 4.
    let t1 = file_new(
        t,
        "2026-11-02T18:00:00+01:00",
        "jean@example.fr",
        "Imprimante du 2e étage",
        "L'imprimante n'imprime plus rien.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-03T09:00:00+01:00",
        "alice",
        &t1,
        "#resolve\nBonjour, la file d'impression était bloquée, je l'ai vidée.",
    )
    .await;
    customer_writes(
        t,
        "2026-11-03T12:00:00+01:00",
        "jean@example.fr",
        &t1,
        "4\nMerci.",
    )
    .await;
    codes.push(t1);

    // T2, a weekend: Friday 17:00, answered Monday 08:45, resolved 10:00; it comes back
    // three days later and is resolved again.
    let t2 = file_new(
        t,
        "2026-11-06T17:00:00+01:00",
        "paul@example.fr",
        "Accès au partage compta",
        "Je n'ai plus accès au dossier partagé de la compta.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-09T08:45:00+01:00",
        "alice",
        &t2,
        "Bonjour, je regarde vos droits ce matin.",
    )
    .await;
    t.set("2026-11-09T10:00:00+01:00");
    t.execute(&t2, Command::Resolve, agent("alice@example.test"))
        .await;
    customer_writes(
        t,
        "2026-11-12T10:00:00+01:00",
        "paul@example.fr",
        &t2,
        "Le dossier a de nouveau disparu ce matin.",
    )
    .await;
    t.set("2026-11-12T11:00:00+01:00");
    t.execute(&t2, Command::Resolve, agent("alice@example.test"))
        .await;
    codes.push(t2);

    // T3, a public holiday: Tuesday 10 at 17:00, answered Thursday 12 at 09:00 (the 11th
    // is Armistice day); it comes back ten days later, on a Sunday, and is resolved again
    // on Monday 09:00.
    let t3 = file_new(
        t,
        "2026-11-10T17:00:00+01:00",
        "lea@example.fr",
        "Imprimante qui bourre",
        "Le bac 2 bourre à chaque impression.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-12T09:00:00+01:00",
        "alice",
        &t3,
        "#resolve\nBonjour, le rouleau du bac 2 a été changé.",
    )
    .await;
    customer_writes(
        t,
        "2026-11-22T10:00:00+01:00",
        "lea@example.fr",
        &t3,
        "Le bac 2 bourre de nouveau.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-23T09:00:00+01:00",
        "alice",
        &t3,
        "#resolve\nLe technicien a remplacé le bac entier.",
    )
    .await;
    codes.push(t3);

    // T5 (filed before T4): urgent, 1 h target missed at L1 (Alice), escalated to L2
    // (Eve), who answers and resolves; rated 2 with a comment.
    let t5 = file_new(
        t,
        "2026-11-16T09:00:00+01:00",
        "marc@example.fr",
        "Serveur en panne",
        "Le serveur en panne bloque toute l'agence.",
    )
    .await;
    assert_eq!(t.tick("2026-11-16T10:00:00+01:00").await, 1);
    agent_writes(
        t,
        "2026-11-16T10:30:00+01:00",
        "eve",
        &t5,
        "#resolve\nBonjour, le serveur a redémarré, la cause est un disque plein.",
    )
    .await;
    customer_writes(
        t,
        "2026-11-16T14:00:00+01:00",
        "marc@example.fr",
        &t5,
        "2 - trop long, toute l'agence a attendu une heure et demie.",
    )
    .await;
    codes.push(t5);

    // T4, two agents: Alice has it, Eve answers first, Alice answers too and resolves;
    // rated 5.
    let t4 = file_new(
        t,
        "2026-11-17T10:00:00+01:00",
        "sophie@example.fr",
        "Accès VPN",
        "Je n'arrive pas à me connecter au VPN depuis chez moi.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-17T10:20:00+01:00",
        "eve",
        &t4,
        "Bonjour, quel message d'erreur voyez-vous ?",
    )
    .await;
    agent_writes(
        t,
        "2026-11-17T10:40:00+01:00",
        "alice",
        &t4,
        "Bonjour, votre compte VPN est réactivé.",
    )
    .await;
    t.set("2026-11-17T11:00:00+01:00");
    t.execute(&t4, Command::Resolve, agent("alice@example.test"))
        .await;
    customer_writes(
        t,
        "2026-11-17T11:30:00+01:00",
        "sophie@example.fr",
        &t4,
        "5",
    )
    .await;
    codes.push(t4);

    // T6 resolved and closed; its customer writes again two days later: a new ticket (T7)
    // that follows it, still open at the end of the month.
    let t6 = file_new(
        t,
        "2026-11-18T09:00:00+01:00",
        "hugo@example.fr",
        "Écran noir",
        "Mon deuxième écran reste noir.",
    )
    .await;
    agent_writes(
        t,
        "2026-11-18T09:30:00+01:00",
        "alice",
        &t6,
        "#resolve\nBonjour, le câble était débranché côté station d'accueil.",
    )
    .await;
    t.set("2026-11-18T10:00:00+01:00");
    t.execute(&t6, Command::Close, agent("alice@example.test"))
        .await;
    customer_writes(
        t,
        "2026-11-20T10:00:00+01:00",
        "hugo@example.fr",
        &t6,
        "L'écran est de nouveau noir depuis ce matin.",
    )
    .await;
    codes.push(t6);

    // T9: solved by the customer with the acknowledgement's article.
    let t9 = file_new(
        t,
        "2026-11-26T10:00:00+01:00",
        "nina@example.fr",
        "Mot de passe oublié",
        "J'ai oublié mon mot de passe Windows, comment le réinitialiser ?",
    )
    .await;
    customer_writes(
        t,
        "2026-11-26T10:30:00+01:00",
        "nina@example.fr",
        &t9,
        "Résolu, merci !",
    )
    .await;
    codes.push(t9);

    // T8: filed the last day, escalated by Alice; then the last pass of the scheduler finds
    // T7's targets missed (escalated to L2).
    let t8 = file_new(
        t,
        "2026-11-30T16:00:00+01:00",
        "zoe@example.fr",
        "Licence logiciel de CAO",
        "Il me faut une licence pour le logiciel de CAO.",
    )
    .await;
    t.set("2026-11-30T16:30:00+01:00");
    t.execute(
        &t8,
        Command::Escalate {
            to: None,
            reason: Some("licences: L2".into()),
            vendor: None,
        },
        agent("alice@example.test"),
    )
    .await;
    assert_eq!(t.tick("2026-11-30T17:00:00+01:00").await, 1);
    codes.push(t8);
    codes
}

async fn file_new(t: &Timed, at: &str, from: &str, subject: &str, body: &str) -> String {
    t.set(at);
    let raw = customer_mail(
        from,
        subject,
        &format!("{}@example.fr", crate::time::at(at)),
        body,
    );
    match t.desk.file(&raw).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    }
}

async fn customer_writes(t: &Timed, at: &str, from: &str, code: &str, body: &str) {
    t.set(at);
    let raw = customer_mail(
        from,
        &format!("Re: [{code}] suite"),
        &format!("{}.{from}", crate::time::at(at)),
        body,
    );
    t.desk.file(&raw).await;
}

async fn agent_writes(t: &Timed, at: &str, who: &str, code: &str, body: &str) {
    t.set(at);
    let raw = customer_mail(
        &format!("{who}@example.test"),
        &format!("Re: [{code}] réponse"),
        &format!("{}.{who}@example.test", crate::time::at(at)),
        body,
    );
    t.desk.file(&raw).await;
}

fn stats(t: &Timed, args: &[&str]) -> String {
    let mut all = vec![
        "--config",
        t.desk.config_path.to_str().unwrap(),
        "stats",
        "--since",
        "2026-11-01",
        "--until",
        "2026-11-30",
    ];
    all.extend_from_slice(args);
    let out = helpdesk(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(&out)
}

fn json_stats(t: &Timed, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&stats(t, &all)).unwrap()
}

fn group(report: &Value, key: Value) -> &Value {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["key"] == key)
        .unwrap_or_else(|| panic!("no group {key}: {report:#}"))
}

#[tokio::test]
async fn a_scripted_month_gives_every_figure_worked_out_by_hand() {
    let t = Timed::start_with(&config(), "2026-11-02T18:00:00+01:00").await;
    november(&t).await;
    let report = json_stats(&t, &[]);
    assert_eq!(
        report["period"],
        json!({"since": "2026-11-01", "until": "2026-11-30", "time_zone": "Europe/Paris"})
    );
    assert_eq!(report["by"], Value::Null);
    assert_eq!(report["groups"], json!([]));
    let h = 3600;
    assert_eq!(
        report["total"],
        json!({
            // T1-T9.
            "created": 9,
            // T1, T2 twice, T3 twice, T4, T5, T6, T9.
            "resolved": 9,
            "closed": 1,
            // T7 (10 days 14 h old at midnight) and T8 (8 h).
            "backlog": 2,
            "backlog_age_p50_s": 8 * h,
            // Business: T4 20 min, T1 30 min (08:30-09:00), T6 30 min, T2 45 min (Friday
            // 17:00-17:30, Monday 08:30-08:45), T3 1 h (Tuesday 17:00-17:30, Thursday
            // 08:30-09:00), T5 1 h 30. Plain: 20 min, 30 min, 1 h 30, 15 h, 40 h, 63 h 45.
            "first_response": {
                "count": 6,
                "median_business_s": 1800,
                "p90_business_s": 5400,
                "median_wall_s": 5400,
                "p90_wall_s": 229_500
            },
            // An agent's reply makes a ticket wait on the customer, and the clock stands
            // while it waits and once it is resolved. Business: T4 20 min (Eve's reply);
            // T1, T6, T9 30 min; T2 45 min (to Alice's reply), again 1 h 45 (the hour from
            // its reopening); T3 1 h, again 1 h 30 (Monday 08:30-09:00); T5 1 h 30. Plain:
            // 20 min, 30 min twice, 1 h 30, 15 h, 40 h, 63 h (40 h + 23 h), 63 h 45, 64 h 45.
            "resolution": {
                "count": 9,
                "median_business_s": 2700,
                "p90_business_s": 6300,
                "median_wall_s": 15 * h,
                "p90_wall_s": 233_100
            },
            // T2 came back after 3 days, T6 (through T7) after 2; T3 after 10.
            "reopened": 2,
            "reopen_rate": 0.2222,
            "reopened_30d": 3,
            "sla": {
                "first_response_met": 5,
                "first_response_breached": 2,
                "resolution_met": 9,
                "resolution_breached": 1
            },
            "escalations": {"by_agent": 1, "by_sla": 2, "by_reopen": 0},
            "self_service": 1,
            "csat": {"responses": 3, "average": 3.6667, "positive_share": 0.6667},
            // Alice on T1, T2, T3 twice, T4, T6; Eve on T5 and T4.
            "agent_replies": 8
        })
    );

    // Per agent: a first response goes to whoever answered, the rest to who had the
    // ticket at that moment (the breaches to Alice, who had T5 and T7 when missed).
    let by_agent = json_stats(&t, &["--by", "agent"]);
    let keys: Vec<&Value> = by_agent["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["key"])
        .collect();
    assert_eq!(
        keys,
        [&json!("alice@example.test"), &json!("eve@example.test")]
    );
    assert_eq!(by_agent["total"], report["total"]);
    let alice = group(&by_agent, json!("alice@example.test"));
    let eve = group(&by_agent, json!("eve@example.test"));
    assert_eq!(alice["created"], 9);
    assert_eq!(alice["first_response"]["count"], 4);
    assert_eq!(eve["first_response"]["count"], 2);
    assert_eq!(eve["first_response"]["median_business_s"], 1200);
    assert_eq!(eve["first_response"]["p90_business_s"], 5400);
    assert_eq!(alice["resolved"], 8);
    assert_eq!(eve["resolved"], 1);
    assert_eq!(alice["sla"]["first_response_breached"], 2);
    assert_eq!(alice["sla"]["resolution_breached"], 1);
    assert_eq!(eve["sla"]["first_response_breached"], 0);
    assert_eq!(
        alice["escalations"],
        json!({"by_agent": 1, "by_sla": 2, "by_reopen": 0})
    );
    assert_eq!(
        alice["csat"],
        json!({"responses": 2, "average": 4.5, "positive_share": 1.0})
    );
    assert_eq!(
        eve["csat"],
        json!({"responses": 1, "average": 2.0, "positive_share": 0.0})
    );
    assert_eq!(alice["agent_replies"], 6);
    assert_eq!(eve["agent_replies"], 2);
    assert_eq!(eve["backlog"], 2);
    assert_eq!(alice["backlog"], 0);
    assert_eq!(alice["reopened"], 2);

    // Per tier: T5's breach counts at L1, its resolution at L2.
    let by_tier = json_stats(&t, &["--by", "tier"]);
    let l1 = group(&by_tier, json!("L1"));
    let l2 = group(&by_tier, json!("L2"));
    assert_eq!(l1["created"], 9);
    assert_eq!(l1["sla"]["first_response_breached"], 2);
    assert_eq!(l2["sla"]["first_response_breached"], 0);
    assert_eq!(l1["resolved"], 8);
    assert_eq!(l2["resolved"], 1);
    assert_eq!(l2["resolution"]["median_business_s"], 5400);
    assert_eq!(l1["first_response"]["count"], 5);
    assert_eq!(l2["first_response"]["count"], 1);
    assert_eq!(
        l1["escalations"],
        json!({"by_agent": 1, "by_sla": 2, "by_reopen": 0})
    );
    assert_eq!(l2["backlog"], 2);

    // Per week: every ISO week the month touches, the backlog at each week's end.
    let by_week = json_stats(&t, &["--by", "week"]);
    let weeks: Vec<&str> = by_week["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        weeks,
        [
            "2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48", "2026-W49"
        ]
    );
    let created: Vec<u64> = by_week["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["created"].as_u64().unwrap())
        .collect();
    assert_eq!(created, [0, 2, 1, 4, 1, 1]);
    // At the end of week 46 (Sunday 15): T3 reopened the 22nd, so nothing open; at the
    // end of week 47 (Sunday 22) T3 (reopened that day) and T7.
    assert_eq!(group(&by_week, json!("2026-W46"))["backlog"], 0);
    assert_eq!(group(&by_week, json!("2026-W47"))["backlog"], 2);

    // CSV: a header, a row per group, the total; the same figures.
    let csv = stats(&t, &["--by", "tier", "--csv"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with(
            "row,key,created,resolved,closed,backlog,backlog_age_p50_s,first_response_count,"
        ),
        "{csv}"
    );
    assert_eq!(lines[0].split(',').count(), 32, "{csv}");
    assert!(lines[1].starts_with("group,L1,9,8,1,0,,5,"), "{csv}");
    assert!(lines[2].starts_with("group,L2,0,1,0,2,"), "{csv}");
    assert!(
        lines[3].starts_with(
            "total,,9,9,1,2,28800,6,1800,5400,5400,229500,9,2700,6300,54000,233100,2,0.2222,3,"
        ),
        "{csv}"
    );
    assert_eq!(lines.len(), 4);

    // The table: one line a group, then the total, times as people read them.
    let table = stats(&t, &["--by", "agent"]);
    if let Ok(keep) = std::env::var("HELPDESK_KEEP_CHARTS") {
        std::fs::write(format!("{keep}/stats-by-agent.txt"), &table).unwrap();
    }
    let total = table
        .lines()
        .find(|l| l.starts_with("total"))
        .expect(&table);
    assert!(
        total.contains(" 30m / 1h30 ") && total.contains(" 1h30 / 2d15h "),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("eve@example.test")),
        "{table}"
    );

    // Charts: SVG with its title in the desk's language, and the same drawing as a PNG.
    let dir = t.desk.dir.path();
    for chart in ["weekly-volume", "first-response", "backlog-age"] {
        let svg = dir.join(format!("{chart}.svg"));
        let png = dir.join(format!("{chart}.png"));
        stats(&t, &["--chart", chart, "--svg", svg.to_str().unwrap()]);
        stats(&t, &["--chart", chart, "--png", png.to_str().unwrap()]);
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg"), "{text}");
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        if let Ok(keep) = std::env::var("HELPDESK_KEEP_CHARTS") {
            std::fs::copy(&svg, format!("{keep}/{chart}.svg")).unwrap();
            std::fs::copy(&png, format!("{keep}/{chart}.png")).unwrap();
        }
    }
    let weekly = std::fs::read_to_string(dir.join("weekly-volume.svg")).unwrap();
    assert!(
        weekly.contains("Tickets créés et résolus par semaine"),
        "{weekly}"
    );
    assert!(weekly.contains("\nS47\n"), "{weekly}");
}

/// The .eml files the desk's outbox wrote whose subject starts with `subject`.
fn sent_with_subject(t: &Timed, subject: &str) -> Vec<Vec<u8>> {
    let dir = t.desk.dir.path().join("outgoing");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        if parsed.subject().is_some_and(|s| s.starts_with(subject)) {
            out.push(raw);
        }
    }
    out
}

#[tokio::test]
async fn the_weekly_report_goes_once_on_the_first_working_hour_with_its_chart_inline() {
    let t = Timed::start_with(&config(), "2026-11-02T18:00:00+01:00").await;
    november(&t).await;
    let pipeline = &t.desk.app.pipeline;
    // Monday 30 November, before the desk opens at 08:30: nothing yet.
    t.set("2026-11-30T08:00:00+01:00");
    assert_eq!(pipeline.run_reports().await.unwrap(), 0);
    t.set("2026-11-30T08:30:00+01:00");
    assert_eq!(pipeline.run_reports().await.unwrap(), 1);
    t.set("2026-11-30T09:30:00+01:00");
    assert_eq!(pipeline.run_reports().await.unwrap(), 0);
    // Another process (a restart, cron's tick) at that hour: it went already.
    let out = helpdesk(&[
        "--config",
        t.desk.config_path.to_str().unwrap(),
        "tick",
        "--at",
        "2026-11-30T10:00:00+01:00",
        "--apply",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("weekly report: 0 mail queued"),
        "{}",
        stdout(&out)
    );
    // The tick sent what was queued: one report, of week 48.
    let reports = sent_with_subject(&t, "Rapport hebdomadaire du support");
    assert_eq!(reports.len(), 1);
    let parsed = mail_parser::MessageParser::default()
        .parse(&reports[0])
        .unwrap();
    assert_eq!(
        parsed.subject(),
        Some("Rapport hebdomadaire du support : semaine 48, du 23/11/2026 au 29/11/2026")
    );
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains("Tickets créés : 1 (semaine 47 : 4) ▼"),
        "{text}"
    );
    assert!(
        text.contains("Résolus en libre-service : 1 (semaine 47 : 0) ▲"),
        "{text}"
    );

    // A week sent on demand, to someone else: week 47, with what came back, the missed
    // target and the comment.
    let out = helpdesk(&[
        "--config",
        t.desk.config_path.to_str().unwrap(),
        "report",
        "weekly",
        "--at",
        "2026-11-23",
        "--to",
        "director@example.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let week47 = sent_with_subject(&t, "Rapport hebdomadaire du support : semaine 47");
    assert_eq!(week47.len(), 1);
    let raw = String::from_utf8_lossy(&week47[0]).into_owned();
    assert!(raw.contains("To: director@example.test"), "{raw}");
    let parsed = mail_parser::MessageParser::default()
        .parse(&week47[0])
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    for line in [
        "Tickets créés : 4 (semaine 46 : 1) ▲",
        "1re réponse (médiane) : 30 min (semaine 46 : 45 min) ▼",
        "Revenus sous 7 jours : 1 (33 %) (semaine 46 : 1 (33 %)) =",
        "Délais dépassés : 1 (semaine 46 : 0) ▲",
        "L1 : créés 4, résolus 2, ouverts 2 ; 1re réponse 20 min",
        "L2 : créés 0, résolus 1, ouverts 0 ; 1re réponse 1 h 30",
        "alice@example.test : créés 4, résolus 2, ouverts 2 ; 1re réponse 30 min",
        "revenu 2 j 0 h après sa résolution (L1)",
        "revenu 10 j 1 h après sa résolution (L1)",
        "1re réponse, L1, alice@example.test",
        "(2/5) : trop long, toute l'agence a attendu une heure et demie.",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
    // The HTML shows the chart from an inline PNG part with the Content-ID it names.
    let html = parsed.body_html(0).unwrap();
    let cid = html
        .split("src=\"cid:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an inline image")
        .to_string();
    let image = parsed
        .parts
        .iter()
        .find(|p| p.content_id() == Some(cid.as_str()))
        .expect("the image part");
    assert_eq!(image.content_type().map(|c| c.subtype()), Some(Some("png")));
    assert_eq!(&image.contents()[..4], b"\x89PNG");
    assert!(raw.contains("multipart/related"), "{raw}");
    if let Ok(keep) = std::env::var("HELPDESK_KEEP_CHARTS") {
        std::fs::write(format!("{keep}/weekly-report.eml"), &week47[0]).unwrap();
    }
}

#[tokio::test]
async fn a_wrong_period_or_grouping_names_the_flag_and_the_fix() {
    let t = Timed::start_with(&config(), "2026-11-02T18:00:00+01:00").await;
    file_new(
        &t,
        "2026-11-02T18:00:00+01:00",
        "jean@example.fr",
        "Imprimante",
        "Elle n'imprime plus.",
    )
    .await;
    let config = t.desk.config_path.to_str().unwrap();
    for (args, says) in [
        (
            vec!["stats", "--since", "2026-11-31"],
            "--since \"2026-11-31\"",
        ),
        (
            vec!["stats", "--since", "2026-11-10", "--until", "2026-11-01"],
            "give the earlier day first",
        ),
        (
            vec!["stats", "--by", "team"],
            "group by agent, tier, category, priority or week",
        ),
        (
            vec!["stats", "--chart", "pie", "--svg", "x.svg"],
            "draw weekly-volume, first-response or backlog-age",
        ),
        (
            vec!["report", "weekly", "--to", "not an address"],
            "--to \"not an address\"",
        ),
    ] {
        let mut all = vec!["--config", config];
        all.extend(args.iter());
        let out = helpdesk(&all);
        assert_eq!(out.status.code(), Some(65), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
