//! L0 over a real Dovecot + Postfix: the acknowledgement in the customer's mailbox carries
//! the article; RÉSOLU resolves the ticket as self-service with nothing in the agent's
//! mailbox; with a hold, another reply brings the ticket to L1 and the agent's
//! notification names the articles already sent; `#article` reaches the customer.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::kb::show;
use crate::support::stack::MailStack;
use crate::support::{Desk, customer_mail};

fn header(raw: &[u8], name: &str) -> String {
    let raw = String::from_utf8_lossy(raw);
    raw.lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

fn text(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a mail");
    parsed.body_text(0).expect("a text part").into_owned()
}

fn html(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a mail");
    parsed.body_html(0).expect("an HTML part").into_owned()
}

fn code_of(raw: &[u8]) -> String {
    let subject = header(raw, "Subject");
    subject[1..subject.find(']').unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn articles_go_out_by_mail_and_the_customer_solves_or_reaches_a_person() {
    let stack = MailStack::start();
    let config = format!(
        r#"{}
[knowledge_base]
hold = "2h"

[[agents]]
name = "Alice Agent"
address = "agent@example.test"
tiers = ["L1"]
languages = ["en", "fr"]
"#,
        stack.gateway_config("implicit", "")
    );
    let desk = Desk::with_config(&config).await;
    let shutdown = CancellationToken::new();
    let (app, token) = (desk.app.clone(), shutdown.clone());
    let task = tokio::spawn(async move { app.run(token).await });
    let wait = Duration::from_secs(20);

    // A French request: the acknowledgement carries the VPN article, text and HTML.
    let vpn = customer_mail(
        "Marie Dupont <customer@example.test>",
        "VPN impossible en télétravail",
        "kb-1@customer.test",
        "Bonjour, depuis chez moi le VPN ne se connecte pas, erreur 809 après un long moment.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &vpn)
        .await;
    let inbox = stack.wait_for("customer", "INBOX", 1, wait).await;
    let ack = text(&inbox[0]);
    assert!(
        ack.contains("Le VPN ne se connecte pas (erreurs 809"),
        "{ack}"
    );
    assert!(ack.contains("essayez le partage de connexion"), "{ack}");
    assert!(ack.contains("répondez simplement RÉSOLU"), "{ack}");
    let page = html(&inbox[0]);
    assert!(
        page.contains("<ol>") && page.contains("<strong>RÉSOLU</strong>"),
        "{page}"
    );
    let vpn_code = code_of(&inbox[0]);
    assert_eq!(show(&desk, &vpn_code)["tier"], "L0");

    // "Résolu, merci !": resolved by self-service; the agent's mailbox stays empty.
    let solved = customer_mail(
        "customer@example.test",
        &format!("Re: [{vpn_code}] VPN impossible en télétravail"),
        "kb-2@customer.test",
        "Résolu, merci !\r\n\r\nLe 2 déc. 2026, Support a écrit :\r\n> Votre demande est bien arrivée",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &solved)
        .await;
    let inbox = stack.wait_for("customer", "INBOX", 2, wait).await;
    assert!(text(&inbox[1]).contains("résolu"), "{}", text(&inbox[1]));
    let t = show(&desk, &vpn_code);
    assert_eq!(t["status"], "resolved");
    assert_eq!(t["self_service"], true);
    assert_eq!(t["suggested_articles"], serde_json::json!(["vpn-erreurs"]));

    // An English request the article does not settle: the reply brings Alice, who is told
    // what the customer already had.
    let screen = customer_mail(
        "Sam Lee <customer@example.test>",
        "Second monitor",
        "kb-3@customer.test",
        "Hello, my second monitor shows no signal when I plug my laptop into the docking station.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &screen)
        .await;
    let inbox = stack.wait_for("customer", "INBOX", 3, wait).await;
    let ack = text(&inbox[2]);
    assert!(ack.contains("The second screen shows nothing"), "{ack}");
    assert!(ack.contains("reply SOLVED"), "{ack}");
    let screen_code = code_of(&inbox[2]);
    let still = customer_mail(
        "customer@example.test",
        &format!("Re: [{screen_code}] Second monitor"),
        "kb-4@customer.test",
        "I tried Windows + P and another cable, still no signal.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &still)
        .await;
    let agent = stack.wait_for("agent", "INBOX", 1, wait).await;
    let note = text(&agent[0]);
    assert!(
        note.contains("second-screen") && note.contains("(already sent to the customer)"),
        "{note}"
    );
    assert!(note.contains("still no signal"), "{note}");
    assert_eq!(show(&desk, &screen_code)["tier"], "L1");
    // The first ticket never reached her: one mail in her box, about the second.
    assert_eq!(code_of(&agent[0]), screen_code);

    // Alice sends another article with a command.
    let note_id = header(&agent[0], "Message-ID");
    let answer = format!(
        "From: Alice Agent <agent@example.test>\r\nTo: support@example.test\r\n\
         Subject: Re: [{screen_code}] Second monitor\r\nMessage-ID: <alice-kb@example.test>\r\n\
         In-Reply-To: {note_id}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         #article slow-computer\r\nHello Sam, the dock needs a firmware update, I am on it. Meanwhile, this \
         helps with the slowness you mentioned on the phone.\r\n"
    );
    stack
        .deliver(
            "agent@example.test",
            "support@example.test",
            answer.as_bytes(),
        )
        .await;
    let inbox = stack.wait_for("customer", "INBOX", 4, wait).await;
    let reply = text(&inbox[3]);
    assert!(
        reply.contains("the dock needs a firmware update"),
        "{reply}"
    );
    assert!(reply.contains("The computer is slow"), "{reply}");
    assert!(reply.contains("Ctrl + Shift + Esc"), "{reply}");
    assert!(!reply.contains("#article"), "{reply}");
    let parsed = mail_parser::MessageParser::default()
        .parse(&inbox[3])
        .unwrap();
    let from = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.name(), Some("Alice Agent (Support Test)"));
    assert_eq!(from.address(), Some("support@example.test"));

    shutdown.cancel();
    task.await.unwrap().unwrap();
}
