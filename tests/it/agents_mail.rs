//! Agents and customers over a real Dovecot + Postfix: the customer's mail is acknowledged,
//! the assigned agent's mailbox receives the whole thread, a follow-up reaches the agent,
//! and an escalation from the command line reaches the new agent, the previous one and the
//! customer, each in their mailbox.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::support::stack::MailStack;
use crate::support::{Desk, customer_mail, helpdesk};

fn header(raw: &str, name: &str) -> Option<String> {
    raw.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The gateway running over the stack with Alice (L1, English) and Eve (`eve_tiers`,
/// `eve_languages`) on the roster.
struct Running {
    desk: Desk,
    shutdown: CancellationToken,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<anyhow::Result<()>>>>,
}

impl Running {
    async fn start(stack: &MailStack, eve_tiers: &str, eve_languages: &str) -> Running {
        Running::start_with(stack, eve_tiers, eve_languages, "").await
    }

    async fn start_with(
        stack: &MailStack,
        eve_tiers: &str,
        eve_languages: &str,
        extra: &str,
    ) -> Running {
        let config = format!(
            r#"{}
[[agents]]
name = "Alice Agent"
address = "agent@example.test"
tiers = ["L1"]
languages = ["en"]

[[agents]]
name = "Eve Expert"
address = "expert@example.test"
tiers = {eve_tiers}
languages = {eve_languages}
{extra}
"#,
            stack.gateway_config("implicit", "")
        );
        let desk = Desk::with_config(&config).await;
        let shutdown = CancellationToken::new();
        let app = desk.app.clone();
        let token = shutdown.clone();
        let task = tokio::spawn(async move { app.run(token).await });
        Running {
            desk,
            shutdown,
            task: std::sync::Mutex::new(Some(task)),
        }
    }

    /// Stops the gateway; it must have run without an error.
    async fn stop(&self) {
        self.shutdown.cancel();
        let task = self.task.lock().unwrap().take().expect("running");
        task.await.unwrap().unwrap();
    }
}

/// `from` answers ticket `code` over SMTP, keeping the code in the subject.
async fn reply(stack: &MailStack, from: &str, code: &str, id: &str, body: &str) {
    let raw = customer_mail(from, &format!("Re: [{code}] Screen flickers"), id, body);
    stack.deliver(from, "support@example.test", &raw).await;
}

/// The text part of a rendered mail, quoted-printable decoded.
fn text(raw: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a mail");
    parsed.body_text(0).expect("a text part").into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_receive_the_thread_follow_ups_and_escalations_in_their_mailboxes() {
    let stack = MailStack::start();
    let gateway = Running::start(&stack, r#"["L2"]"#, r#"["fr", "en"]"#).await;
    let desk = &gateway.desk;

    let first = customer_mail(
        "Marie Dupont <customer@example.test>",
        "Printer jammed",
        "agents-1@customer.test",
        "Hello, the printer on the second floor shows a paper jam and prints nothing.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &first)
        .await;

    // The customer is acknowledged; the agent gets the whole thread, in English.
    let customer = stack
        .wait_for("customer", "INBOX", 1, Duration::from_secs(20))
        .await;
    let ack = String::from_utf8_lossy(&customer[0]).to_string();
    let subject = header(&ack, "Subject").unwrap();
    let code = subject[1..subject.find(']').unwrap()].to_string();
    let agent = stack
        .wait_for("agent", "INBOX", 1, Duration::from_secs(20))
        .await;
    let note = String::from_utf8_lossy(&agent[0]).to_string();
    assert_eq!(
        header(&note, "Subject").unwrap(),
        format!("[{code}] Printer jammed")
    );
    assert_eq!(
        header(&note, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let body = text(&agent[0]);
    assert!(body.contains("paper jam and prints nothing"), "{body}");
    assert!(
        body.contains("Marie Dupont <customer@example.test>"),
        "{body}"
    );
    assert!(body.contains("Category:  printer"), "{body}");
    let note_id = header(&note, "Message-ID").unwrap();

    // The customer writes again: the agent is told, in the same thread in their client.
    let again = customer_mail(
        "customer@example.test",
        &format!("Re: [{code}] Printer jammed"),
        "agents-2@customer.test",
        "I removed the paper but it still says jam.\r\n\r\nOn Mon, 2 Mar 2026, Support wrote:\r\n> We have received your request",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &again)
        .await;
    let agent = stack
        .wait_for("agent", "INBOX", 2, Duration::from_secs(20))
        .await;
    let follow = String::from_utf8_lossy(&agent[1]).to_string();
    assert_eq!(header(&follow, "In-Reply-To"), Some(note_id.clone()));
    let body = text(&agent[1]);
    assert!(
        body.contains("I removed the paper but it still says jam."),
        "{body}"
    );
    assert!(!body.contains("We have received your request"), "{body}");

    // Escalation from the command line, beside the running gateway.
    let out = helpdesk(&[
        "--config",
        desk.config_path.to_str().unwrap(),
        "tickets",
        "escalate",
        &code,
        "--reason",
        "hardware fault",
        "--as",
        "agent@example.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The expert gets the whole thread in French, both customer messages oldest first.
    let expert = stack
        .wait_for("expert", "INBOX", 1, Duration::from_secs(20))
        .await;
    let body = text(&expert[0]);
    let first_at = body.find("paper jam and prints nothing").expect(&body);
    let second_at = body.find("I removed the paper").expect(&body);
    assert!(first_at < second_at, "oldest first: {body}");
    assert!(body.contains("vous est attribué"), "{body}");
    assert!(body.contains("hardware fault"), "{body}");
    // Alice is told in one line; the customer is told who follows the request now.
    let agent = stack
        .wait_for("agent", "INBOX", 3, Duration::from_secs(20))
        .await;
    assert!(
        text(&agent[2]).contains("is no longer yours"),
        "{}",
        text(&agent[2])
    );
    let customer = stack
        .wait_for("customer", "INBOX", 2, Duration::from_secs(20))
        .await;
    let status = text(&customer[1]);
    assert!(status.contains("Level 2 – advanced support"), "{status}");
    let raw_status = String::from_utf8_lossy(&customer[1]).to_string();
    assert!(
        header(&raw_status, "Subject")
            .unwrap()
            .starts_with(&format!("[{code}]"))
    );
    assert_eq!(
        header(&raw_status, "In-Reply-To").as_deref(),
        Some("<agents-2@customer.test>"),
        "continues the customer's thread"
    );

    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_answers_and_commands_from_their_mailbox() {
    let stack = MailStack::start();
    let gateway = Running::start(&stack, r#"["L2"]"#, r#"["en"]"#).await;
    let desk = &gateway.desk;

    let first = customer_mail(
        "Marie Dupont <customer@example.test>",
        "VPN drops",
        "reply-1@customer.test",
        "Hello, the VPN drops every five minutes since Monday.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &first)
        .await;
    stack
        .wait_for("customer", "INBOX", 1, Duration::from_secs(20))
        .await;
    let agent = stack
        .wait_for("agent", "INBOX", 1, Duration::from_secs(20))
        .await;
    let note = String::from_utf8_lossy(&agent[0]).to_string();
    let subject = header(&note, "Subject").unwrap();
    let code = subject[1..subject.find(']').unwrap()].to_string();
    let note_id = header(&note, "Message-ID").unwrap();

    // Alice answers from her mail client: a command, her text, and the quoted notification.
    let answer = format!(
        "From: Alice Agent <agent@example.test>\r\nTo: support@example.test\r\nSubject: Re: {subject}\r\n\
         Message-ID: <alice-1@example.test>\r\nIn-Reply-To: {note_id}\r\nReferences: {note_id}\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         #priority high\r\n\r\nHello Marie,\r\nplease update the VPN client to 5.2 and tell me if it still drops.\r\n\r\n\
         On Mon, 23 Nov 2026, Support wrote:\r\n> Ticket {code} is now assigned to you.\r\n> The conversation so far, oldest first:\r\n"
    );
    stack
        .deliver(
            "agent@example.test",
            "support@example.test",
            answer.as_bytes(),
        )
        .await;

    // The customer receives Alice's words only, from the support address, in their thread.
    let customer = stack
        .wait_for("customer", "INBOX", 2, Duration::from_secs(20))
        .await;
    let reply_raw = String::from_utf8_lossy(&customer[1]).to_string();
    let reply = text(&customer[1]);
    assert!(
        reply.contains("please update the VPN client to 5.2"),
        "{reply}"
    );
    for leaked in ["#priority", "conversation so far", "assigned to you"] {
        assert!(
            !reply.contains(leaked),
            "{leaked:?} reached the customer: {reply}"
        );
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(&customer[1][..])
        .unwrap();
    let from = parsed.from().and_then(|f| f.first()).unwrap();
    assert_eq!(from.name(), Some("Alice Agent (Support Test)"));
    assert_eq!(from.address(), Some("support@example.test"));
    // It continues the customer's thread (their mail and our acknowledgement).
    let references = header(&reply_raw, "References").unwrap();
    assert!(
        references.contains("<reply-1@customer.test>"),
        "{references}"
    );
    let ack_id = header(&String::from_utf8_lossy(&customer[0]), "Message-ID").unwrap();
    assert_eq!(header(&reply_raw, "In-Reply-To"), Some(ack_id));
    assert!(
        header(&reply_raw, "Auto-Submitted").is_none(),
        "a person's reply"
    );
    // Alice gets a receipt for her command.
    let agent = stack
        .wait_for("agent", "INBOX", 2, Duration::from_secs(20))
        .await;
    let receipt = text(&agent[1]);
    assert!(receipt.contains("done     #priority high"), "{receipt}");

    // Eve leaves a note: Alice (the assignee) gets it, the customer never does.
    let note_mail = format!(
        "From: expert@example.test\r\nTo: support@example.test\r\nSubject: Re: [{code}] VPN drops\r\n\
         Message-ID: <eve-1@example.test>\r\n\r\n#note\r\nThis customer's laptop has the old VPN profile.\r\n"
    );
    stack
        .deliver(
            "expert@example.test",
            "support@example.test",
            note_mail.as_bytes(),
        )
        .await;
    let agent = stack
        .wait_for("agent", "INBOX", 3, Duration::from_secs(20))
        .await;
    assert!(
        text(&agent[2]).contains("old VPN profile"),
        "{}",
        text(&agent[2])
    );
    let expert = stack
        .wait_for("expert", "INBOX", 1, Duration::from_secs(20))
        .await;
    assert!(
        text(&expert[0]).contains("#note"),
        "Eve's receipt: {}",
        text(&expert[0])
    );

    gateway.stop().await;
    assert_eq!(
        stack.messages("customer", "INBOX").await.len(),
        2,
        "the note reached no customer"
    );
    let t = desk
        .app
        .pipeline
        .store()
        .list_tickets(&Default::default())
        .await
        .unwrap();
    assert_eq!(t[0].priority, helpdesk::domain::Priority::High);
    assert_eq!(
        t[0].status,
        helpdesk::domain::TicketStatus::WaitingOnCustomer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignment_closing_rating_strangers_and_refused_commands_by_mail() {
    let stack = MailStack::start();
    let gateway = Running::start(&stack, r#"["L1", "L2"]"#, r#"["en"]"#).await;
    let desk = &gateway.desk;
    let first = customer_mail(
        "Marie Dupont <customer@example.test>",
        "Screen flickers",
        "flow-1@customer.test",
        "Hello, my screen flickers since the update.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &first)
        .await;
    let customer = stack
        .wait_for("customer", "INBOX", 1, Duration::from_secs(20))
        .await;
    let subject = header(&String::from_utf8_lossy(&customer[0]), "Subject").unwrap();
    let code = subject[1..subject.find(']').unwrap()].to_string();
    // Alice got it (first on the roster); she gives it to Eve by mail.
    stack
        .wait_for("agent", "INBOX", 1, Duration::from_secs(20))
        .await;
    reply(
        &stack,
        "agent@example.test",
        &code,
        "flow-a1@example.test",
        "#assign expert@example.test\r\n",
    )
    .await;
    let expert = stack
        .wait_for("expert", "INBOX", 1, Duration::from_secs(20))
        .await;
    assert!(text(&expert[0]).contains("screen flickers since the update"));
    let agent = stack
        .wait_for("agent", "INBOX", 3, Duration::from_secs(20))
        .await;
    let alice_got: Vec<String> = agent[1..].iter().map(|m| text(m)).collect();
    assert!(
        alice_got.iter().any(|t| t.contains("is no longer yours")),
        "{alice_got:?}"
    );
    assert!(
        alice_got.iter().any(|t| t.contains("done     #assign")),
        "{alice_got:?}"
    );

    // The customer tries a command: not applied, Eve is told.
    reply(
        &stack,
        "customer@example.test",
        &code,
        "flow-c2@customer.test",
        "#priority urgent\r\nIt is getting worse.\r\n",
    )
    .await;
    let expert = stack
        .wait_for("expert", "INBOX", 2, Duration::from_secs(20))
        .await;
    assert!(
        text(&expert[1]).contains("not on the roster"),
        "{}",
        text(&expert[1])
    );

    // A stranger quotes the code: a ticket of their own, nothing of Marie's.
    reply(
        &stack,
        "stranger@example.test",
        &code,
        "flow-s1@elsewhere.test",
        "Mine too!\r\n",
    )
    .await;
    let stranger = stack
        .wait_for("stranger", "INBOX", 1, Duration::from_secs(20))
        .await;
    let theirs = String::from_utf8_lossy(&stranger[0]).to_string();
    assert!(
        !header(&theirs, "Subject").unwrap().contains(&code),
        "their own code"
    );
    assert!(!text(&stranger[0]).contains("flickers since the update"));

    // Marie closes by reply, is asked for a rating, and rates.
    reply(
        &stack,
        "customer@example.test",
        &code,
        "flow-c3@customer.test",
        "RESOLVED\r\nNew cable fixed it.\r\n",
    )
    .await;
    let customer = stack
        .wait_for("customer", "INBOX", 2, Duration::from_secs(20))
        .await;
    assert!(
        text(&customer[1]).contains("score from 1"),
        "{}",
        text(&customer[1])
    );
    reply(
        &stack,
        "customer@example.test",
        &code,
        "flow-c4@customer.test",
        "4 - quick, thanks\r\n",
    )
    .await;
    stack
        .wait_for("customer", "INBOX", 3, Duration::from_secs(20))
        .await;
    gateway.stop().await;
    let t = desk
        .app
        .pipeline
        .store()
        .ticket_detail(&helpdesk::domain::ReferenceCode::from_stored(code.clone()))
        .await
        .unwrap()
        .unwrap();
    let s = &t.summary;
    assert_eq!(s.assignee.as_deref(), Some("expert@example.test"));
    assert_eq!(s.status, helpdesk::domain::TicketStatus::Resolved);
    assert_eq!(
        s.priority,
        helpdesk::domain::Priority::Normal,
        "the customer's #priority was refused"
    );
    assert_eq!(s.satisfaction, Some(4));
    assert_eq!(s.satisfaction_comment.as_deref(), Some("quick, thanks"));
    assert!(!s.participants.iter().any(|p| p.contains("stranger")));
}

/// L4 round trip through real mailboxes: the agent sends the ticket to a vendor by mail;
/// the vendor's helpdesk acknowledges with its own number (learned, never answered); the
/// vendor's answer carries only that number, reaches the agent and not the customer; the
/// agent relays it with a reply that reaches the customer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_round_trip_stays_internal_until_the_agent_relays_it() {
    let stack = MailStack::start();
    let gateway = Running::start_with(
        &stack,
        r#"["L2"]"#,
        r#"["en"]"#,
        r#"
[[vendors]]
name = "Ricoh France"
address = "vendor@example.test"
ticket_pattern = "RIC-\\d{6}"
"#,
    )
    .await;
    let wait = Duration::from_secs(20);
    let first = customer_mail(
        "Marie Dupont <customer@example.test>",
        "Copier error SC542",
        "vendor-1@customer.test",
        "Hello, the copier shows SC542. Call me on 06 12 34 56 78.",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &first)
        .await;
    let ack = stack.wait_for("customer", "INBOX", 1, wait).await;
    let subject = header(&String::from_utf8_lossy(&ack[0]), "Subject").unwrap();
    let code = subject[1..subject.find(']').unwrap()].to_string();
    stack.wait_for("agent", "INBOX", 1, wait).await;

    // The agent sends it to the vendor by mail.
    let escalate = customer_mail(
        "Alice Agent <agent@example.test>",
        &format!("Re: [{code}] Copier error SC542"),
        "vendor-2@example.test",
        "#escalate L4 Ricoh France fuser unit, contract 4411",
    );
    stack
        .deliver("agent@example.test", "support@example.test", &escalate)
        .await;
    let forwarded = stack.wait_for("vendor", "INBOX", 1, wait).await;
    let forward = String::from_utf8_lossy(&forwarded[0]).to_string();
    assert!(
        header(&forward, "Subject")
            .unwrap()
            .contains(&format!("[{code}]")),
        "{forward}"
    );
    assert_eq!(
        header(&forward, "Auto-Submitted"),
        None,
        "a person's request"
    );
    let body = text(&forwarded[0]);
    assert!(
        body.contains("SC542") && body.contains("contract 4411"),
        "{body}"
    );
    for private in ["customer@example.test", "Marie", "06 12 34 56 78"] {
        assert!(
            !body.contains(private),
            "{private} sent to the vendor: {body}"
        );
    }
    // The customer hears the request went further; the agent gets a receipt.
    stack.wait_for("customer", "INBOX", 2, wait).await;
    stack.wait_for("agent", "INBOX", 2, wait).await;

    // The vendor's helpdesk acknowledges with its number: learned, not answered.
    let vendor_ack = format!(
        "From: Ricoh Support <vendor@example.test>\r\nTo: support@example.test\r\n\
         Subject: [RIC-204518] Accuse de reception : [{code}] Copier error SC542\r\n\
         Message-ID: <ack-204518@vendor.test>\r\nAuto-Submitted: auto-replied\r\n\r\n\
         Your request RIC-204518 is registered.\r\n"
    );
    stack
        .deliver(
            "vendor@example.test",
            "support@example.test",
            vendor_ack.as_bytes(),
        )
        .await;
    // Their answer names only their number.
    let answer = "From: Ricoh Support <vendor@example.test>\r\nTo: support@example.test\r\n\
         Subject: RE: RIC-204518 intervention\r\nMessage-ID: <answer-204518@vendor.test>\r\n\r\n\
         A technician will replace the fuser unit tomorrow morning.\r\n";
    stack
        .deliver(
            "vendor@example.test",
            "support@example.test",
            answer.as_bytes(),
        )
        .await;
    let agent = stack.wait_for("agent", "INBOX", 3, wait).await;
    let relayed = text(&agent[2]);
    assert!(relayed.contains("replace the fuser unit"), "{relayed}");
    assert!(relayed.contains("NOT seen"), "{relayed}");
    let ticket: serde_json::Value = serde_json::from_str(&crate::support::stdout(&helpdesk(&[
        "--config",
        gateway.desk.config_path.to_str().unwrap(),
        "tickets",
        "show",
        &code,
        "--json",
    ])))
    .unwrap();
    assert_eq!(ticket["vendor_ticket"], "RIC-204518");
    assert_eq!(
        stack.messages("vendor", "INBOX").await.len(),
        1,
        "the vendor's machine was not answered"
    );
    assert_eq!(
        stack.messages("customer", "INBOX").await.len(),
        2,
        "the customer has not seen the vendor's answer"
    );

    // The agent relays it: the customer gets the agent's words.
    let relay = customer_mail(
        "Alice Agent <agent@example.test>",
        &format!("Re: [{code}] Copier error SC542"),
        "vendor-3@example.test",
        "A Ricoh technician comes tomorrow morning.\r\n\r\nOn Mon, Ricoh wrote:\r\n> A technician will replace the fuser unit",
    );
    stack
        .deliver("agent@example.test", "support@example.test", &relay)
        .await;
    let customer = stack.wait_for("customer", "INBOX", 3, wait).await;
    let words = text(&customer[2]);
    assert!(
        words.contains("A Ricoh technician comes tomorrow"),
        "{words}"
    );
    assert!(!words.contains("replace the fuser unit"), "{words}");
    gateway.stop().await;
}
