//! The knowledge base (L0): the labelled requests against the starter articles, the `kb`
//! commands, and a ticket's life with articles (acknowledgement, self-service resolution,
//! the hold at L0 and its end, `#article`).

use helpdesk::domain::Language;
use helpdesk::pipeline::Processed;
use serde_json::Value;

use crate::attacks::roster_config;
use crate::support::{Desk, customer_mail, embedded_config, helpdesk, stdout};

struct Row {
    language: Language,
    expected: Option<String>,
    subject: String,
    body: String,
}

fn rows() -> Vec<Row> {
    let text = include_str!("../kb/requests.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 4, "{l}");
            Row {
                language: f[0].parse().unwrap(),
                expected: (f[1] != "-").then(|| f[1].to_string()),
                subject: f[2].into(),
                body: f[3].replace("\\n", "\n"),
            }
        })
        .collect()
}

/// Each row filed through the gateway's own reading (language detection, routing, the
/// search) and decision (threshold, service requests, tiers), as a mail would be.
#[test]
fn the_labelled_requests_get_the_right_article_or_none() {
    let path = std::path::Path::new("/nonexistent/helpdesk.toml");
    let mut config = helpdesk::config::Config::from_toml(
        &embedded_config(),
        path,
        std::path::Path::new("/nonexistent"),
        &helpdesk::config::ProcessEnv,
    )
    .unwrap();
    config.desk.knowledge.kb = std::sync::Arc::new(helpdesk::kb::starter::knowledge_base());
    let rows = rows();
    assert!(rows.len() >= 60, "{}", rows.len());
    let (mut answerable, mut found, mut person, mut silent) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    let mut lowest_found = f32::MAX;
    let mut highest_silenced = 0f32;
    for (i, row) in rows.iter().enumerate() {
        let raw = customer_mail(
            "Camille <camille@example.fr>",
            &row.subject,
            &format!("kb{i}@example.fr"),
            &row.body.replace('\n', "\r\n"),
        );
        let mail = helpdesk::inbound::parse(&raw).unwrap();
        let reading = helpdesk::desk::decide::read_mail(&mail, &config.gateway, &config.desk);
        let chosen = helpdesk::desk::decide::suggestions(&reading, &config.desk);
        for hit in chosen.customer.iter().chain(&chosen.agent) {
            assert_eq!(
                hit.article.language, row.language,
                "row {i} ({}): an article in the other language",
                row.subject
            );
        }
        let ids: Vec<&str> = chosen
            .customer
            .iter()
            .map(|h| h.article.id.as_str())
            .collect();
        match &row.expected {
            Some(expected) => {
                answerable += 1;
                if ids.contains(&expected.as_str()) {
                    found += 1;
                    lowest_found = lowest_found.min(chosen.customer[0].score);
                } else {
                    misses.push(format!("{}: wanted {expected}, got {ids:?}", row.subject));
                }
            }
            None => {
                person += 1;
                if ids.is_empty() {
                    silent += 1;
                    if reading.found.request.is_none() {
                        let best = reading.found.hits.first().map_or(0.0, |h| h.score);
                        highest_silenced = highest_silenced.max(best);
                    }
                } else {
                    misses.push(format!("{}: wanted none, got {ids:?}", row.subject));
                }
            }
        }
    }
    eprintln!(
        "labelled set: {found}/{answerable} right article in the top 3, {silent}/{person} silent; \
         lowest score sent {lowest_found:.1}, highest best score kept silent by the threshold \
         {highest_silenced:.1} (min_score {})\n{}",
        config.desk.knowledge.suggest.min_score,
        misses.join("\n")
    );
    assert!(person >= 15, "{person} rows need a person");
    assert!(
        found * 10 >= answerable * 9,
        "{found}/{answerable}: {misses:#?}"
    );
    assert!(silent * 10 >= person * 9, "{silent}/{person}: {misses:#?}");
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout(out)).unwrap()
}

#[test]
fn kb_commands_search_suggest_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = helpdesk(&["init", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let config = dir.path().join("helpdesk.toml");
    let config = config.to_str().unwrap();
    let kb = |args: &[&str]| {
        let mut all = vec!["--config", config, "kb"];
        all.extend_from_slice(args);
        helpdesk(&all)
    };
    let out = kb(&["check"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("30 articles ok"), "{}", stdout(&out));

    let hits = json(&kb(&[
        "search",
        "--json",
        "--lang",
        "fr",
        "mon mdp a expiré",
    ]));
    let first = &hits[0];
    assert_eq!(first["id"], "mot-de-passe-oublie");
    for key in ["title", "language", "category", "score"] {
        assert!(!first[key].is_null(), "{key}");
    }
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .all(|h| h["language"] == "fr")
    );

    let mail = dir.path().join("vpn.eml");
    std::fs::write(
        &mail,
        customer_mail(
            "a@example.fr",
            "VPN",
            "v@example.fr",
            "Le VPN ne se connecte pas, erreur 809.",
        ),
    )
    .unwrap();
    let sent = json(&kb(&["suggest", "--json", mail.to_str().unwrap()]));
    assert_eq!(sent[0]["id"], "vpn-erreurs", "{sent}");
    std::fs::write(
        &mail,
        customer_mail(
            "a@example.fr",
            "Portable",
            "o@example.fr",
            "Pouvez-vous commander un ordinateur portable pour Paul ?",
        ),
    )
    .unwrap();
    assert_eq!(
        json(&kb(&["suggest", "--json", mail.to_str().unwrap()])),
        serde_json::json!([])
    );

    // A broken article: named by file and key, exit 78, by `kb check` and `check-config`.
    std::fs::write(
        dir.path().join("kb/imprimante-couleur.md"),
        "---\ntitle: Couleur\nlanguage: fr\ncategorie: printer\n---\nTexte.\n",
    )
    .unwrap();
    for args in [
        vec!["--config", config, "kb", "check"],
        vec!["--config", config, "check-config"],
    ] {
        let out = helpdesk(&args);
        assert_eq!(out.status.code(), Some(78), "{args:?}");
        let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
        assert!(
            said.contains("imprimante-couleur.md") && said.contains("categorie"),
            "{said}"
        );
    }
    // ... and left out by everything else, which goes on working.
    let hits = json(&kb(&["search", "--json", "imprimante"]));
    assert!(!hits.to_string().contains("imprimante-couleur"));
}

pub(crate) fn show(desk: &Desk, code: &str) -> Value {
    json(&helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "show",
        code,
        "--json",
    ]))
}

fn mails<'a>(t: &'a Value, kind: &str) -> Vec<&'a Value> {
    t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == kind)
        .collect()
}

async fn open(desk: &Desk, subject: &str, body: &str) -> String {
    let raw = customer_mail(
        "Marie Dupont <marie@example.fr>",
        subject,
        "k1@example.fr",
        body,
    );
    match desk.file(&raw).await {
        Processed::Filed { code, .. } => code.to_string(),
        other => panic!("{other:?}"),
    }
}

async fn reply(desk: &Desk, from: &str, code: &str, id: &str, body: &str) {
    let raw = customer_mail(from, &format!("Re: [{code}] VPN"), id, body);
    assert!(matches!(desk.file(&raw).await, Processed::Appended { .. }));
}

const VPN: &str = "Bonjour, en télétravail le VPN ne se connecte pas, j'ai l'erreur 809.";

/// No hold (the default): the acknowledgement carries the article, the agent is assigned
/// at once and shown it; RÉSOLU before any agent answered is a self-service resolution.
#[tokio::test]
async fn the_acknowledgement_carries_the_article_and_solved_counts_as_self_service() {
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(&desk, "VPN", VPN).await;
    let t = show(&desk, &code);
    assert_eq!(t["suggested_articles"], serde_json::json!(["vpn-erreurs"]));
    assert_eq!(t["tier"], "L1");
    assert!(!t["assignee"].is_null());
    let ack = mails(&t, "acknowledgement")[0]["body_text"]
        .as_str()
        .unwrap();
    assert!(
        ack.contains("Le VPN ne se connecte pas (erreurs 809"),
        "{ack}"
    );
    assert!(
        ack.contains("1. Vérifiez que vous avez Internet sans le VPN"),
        "{ack}"
    );
    assert!(ack.contains("répondez simplement RÉSOLU"), "{ack}");
    assert!(!ack.contains("SOLVED"), "one language per mail: {ack}");
    let note = mails(&t, "agent_notification")[0]["body_text"]
        .as_str()
        .unwrap();
    assert!(
        note.contains("vpn-erreurs") && note.contains("déjà envoyé au client"),
        "{note}"
    );
    let events = t["events"].as_array().unwrap();
    let suggested = events
        .iter()
        .find(|e| e["kind"] == "articles_suggested")
        .unwrap();
    assert_eq!(suggested["detail"]["language"], "fr");
    assert_eq!(suggested["detail"]["articles"][0]["id"], "vpn-erreurs");
    assert!(
        suggested["detail"]["articles"][0]["score"]
            .as_f64()
            .unwrap()
            > 24.0
    );
    assert_eq!(t["self_service"], false);

    reply(
        &desk,
        "marie@example.fr",
        &code,
        "k2@example.fr",
        "RÉSOLU, merci !",
    )
    .await;
    let t = show(&desk, &code);
    assert_eq!(t["status"], "resolved");
    assert_eq!(t["self_service"], true);
}

/// With a hold: the ticket waits at L0 with nobody; RÉSOLU resolves it with no agent mail.
#[tokio::test]
async fn held_at_l0_solved_resolves_with_no_agent_involved() {
    let config = roster_config().replace("# hold = \"2h\"", "hold = \"2h\"");
    let desk = Desk::with_config(&config).await;
    let code = open(&desk, "VPN", VPN).await;
    let t = show(&desk, &code);
    assert_eq!(t["tier"], "L0");
    assert!(t["assignee"].is_null());
    assert!(mails(&t, "agent_notification").is_empty());
    reply(&desk, "marie@example.fr", &code, "k2@example.fr", "Résolu").await;
    let t = show(&desk, &code);
    assert_eq!(t["status"], "resolved");
    assert_eq!(t["self_service"], true);
    assert!(t["assignee"].is_null());
    let to_agents = t["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"].as_str().is_some_and(|k| k.starts_with("agent_")))
        .count();
    assert_eq!(to_agents, 0, "no agent mail: {t:#}");
}

/// With a hold, any other reply brings a person: L1, assigned, told what was sent.
#[tokio::test]
async fn held_at_l0_another_reply_moves_it_to_l1_and_the_agent_knows_the_articles() {
    let config = roster_config().replace("# hold = \"2h\"", "hold = \"2h\"");
    let desk = Desk::with_config(&config).await;
    let code = open(&desk, "VPN", VPN).await;
    reply(
        &desk,
        "marie@example.fr",
        &code,
        "k2@example.fr",
        "J'ai essayé le partage de connexion, toujours l'erreur 809.",
    )
    .await;
    let t = show(&desk, &code);
    assert_eq!(t["tier"], "L1");
    assert_eq!(t["status"], "new", "nobody has answered yet");
    assert!(!t["assignee"].is_null());
    let note = mails(&t, "agent_notification");
    assert_eq!(note.len(), 1);
    let text = note[0]["body_text"].as_str().unwrap();
    assert!(
        text.contains("vpn-erreurs") && text.contains("déjà envoyé au client"),
        "{text}"
    );
    assert!(
        text.contains("toujours l'erreur 809"),
        "the thread, this reply included: {text}"
    );
    assert!(
        text.contains("a répondu sans indiquer que c'était réglé"),
        "{text}"
    );
    let ended = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "self_service_ended")
        .unwrap();
    assert_eq!(ended["detail"]["reason"], "replied");
}

/// With a hold and no word from the customer: at its end the ticket goes to L1.
#[tokio::test]
async fn held_at_l0_the_end_of_the_hold_moves_it_to_l1() {
    let config = roster_config().replace("# hold = \"2h\"", "hold = \"2h\"");
    let desk = Desk::with_config(&config).await;
    let code = open(&desk, "VPN", VPN).await;
    let path = desk.config_path.to_str().unwrap();
    let soon = (chrono::Utc::now() + chrono::Duration::minutes(90)).to_rfc3339();
    let out = helpdesk(&[
        "--config",
        path,
        "tick",
        "--at",
        &soon,
        "--apply",
        "--no-send",
    ]);
    assert!(out.status.success());
    assert_eq!(show(&desk, &code)["tier"], "L0", "not before the hold ends");
    let later = (chrono::Utc::now() + chrono::Duration::hours(3)).to_rfc3339();
    let out = helpdesk(&[
        "--config",
        path,
        "tick",
        "--at",
        &later,
        "--apply",
        "--no-send",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = show(&desk, &code);
    assert_eq!(t["tier"], "L1");
    assert!(!t["assignee"].is_null());
    let text = mails(&t, "agent_notification")[0]["body_text"]
        .as_str()
        .unwrap();
    assert!(text.contains("dans le délai de libre-service"), "{text}");
}

/// `#article ID` puts the article into the reply; an unknown id holds the reply back and
/// the receipt names the closest ids.
#[tokio::test]
async fn an_agent_sends_an_article_with_a_command() {
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(
        &desk,
        "Écran",
        "Mon deuxième écran reste noir, pas de signal.",
    )
    .await;
    let agent = show(&desk, &code)["assignee"].as_str().unwrap().to_string();
    reply(
        &desk,
        &agent,
        &code,
        "a1@example.test",
        "#article vpn-eror\nVoici la procédure.",
    )
    .await;
    let t = show(&desk, &code);
    assert!(
        mails(&t, "agent_reply").is_empty(),
        "an unknown article holds the reply back"
    );
    let receipt = mails(&t, "agent_receipt")[0]["body_text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        receipt.contains("vpn-eror") && receipt.contains("vpn-erreurs"),
        "{receipt}"
    );

    reply(
        &desk,
        &agent,
        &code,
        "a2@example.test",
        "#article second-ecran\nVoici la procédure.",
    )
    .await;
    let t = show(&desk, &code);
    let sent = mails(&t, "agent_reply");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], serde_json::json!(["marie@example.fr"]));
    let text = sent[0]["body_text"].as_str().unwrap();
    assert!(text.contains("Voici la procédure."), "{text}");
    assert!(
        text.contains("Le deuxième écran ne s'affiche pas"),
        "{text}"
    );
    assert!(text.contains("Windows + P"), "the whole article: {text}");
    assert!(!text.contains("#article"), "{text}");
    let receipts = mails(&t, "agent_receipt");
    let receipt = receipts.last().unwrap()["body_text"].as_str().unwrap();
    assert!(receipt.contains("second-ecran"), "{receipt}");
}

/// A running gateway notices an article added, changed or broken within seconds, without
/// a restart; a broken one is left out and the others stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_gateway_notices_changed_articles() {
    let desk = Desk::new().await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (app, token) = (desk.app.clone(), shutdown.clone());
    let task = tokio::spawn(async move { app.run(token).await });
    let kb_dir = desk.dir.path().join("kb");
    let has = |id: &str| desk.app.pipeline.desk().knowledge.kb.get(id).is_some();
    assert!(has("vpn-erreurs") && !has("badge-acces"));
    std::fs::write(
        kb_dir.join("badge-acces.md"),
        "---\ntitle: Mon badge n'ouvre plus les portes\nlanguage: fr\ncategory: access\nkeywords: [badge]\n---\n\n1. Passez à l'accueil.\n",
    )
    .unwrap();
    std::fs::write(
        kb_dir.join("casse.md"),
        "---\ntitle: x\nlanguage: fr\n---\nx\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    while !has("badge-acces") {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "not reloaded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let kb = desk.app.pipeline.desk().knowledge.kb.clone();
    assert!(kb.get("vpn-erreurs").is_some(), "the others stay");
    assert_eq!(kb.problems.len(), 1, "{:?}", kb.problems);
    assert_eq!(kb.problems[0].key, "category");
    eprintln!("reloaded after {:?}", started.elapsed());
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// A ransomware report is routed to L2 as urgent: a person, not an article, for the
/// customer; its agent still sees the best articles.
#[tokio::test]
async fn an_urgent_l2_report_gets_a_person_not_an_article() {
    let desk = Desk::with_config(&roster_config()).await;
    let code = open(
        &desk,
        "Rançongiciel",
        "URGENT tous les fichiers du serveur ont l'extension .locked et un message demande une rançon",
    )
    .await;
    let t = show(&desk, &code);
    assert_eq!(t["tier"], "L2");
    assert_eq!(t["priority"], "urgent");
    assert_eq!(t["suggested_articles"], serde_json::json!([]));
    let ack = mails(&t, "acknowledgement")[0]["body_text"]
        .as_str()
        .unwrap();
    assert!(
        !ack.contains("RÉSOLU") && !ack.contains("base de connaissances"),
        "{ack}"
    );
}
