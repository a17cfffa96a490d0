//! The gateway against a real Dovecot + Postfix on loopback: mail in over SMTP and IMAP,
//! acknowledgements out through authenticated submission, IDLE, restarts.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use helpdesk::config::TlsMode;
use helpdesk::ingest::imap::{ImapSession, ImapSource, PassReport};
use tokio_util::sync::CancellationToken;

use crate::support::stack::MailStack;
use crate::support::{Desk, customer_mail};

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_mail_becomes_a_ticket_and_replies_thread_onto_it() {
    let stack = MailStack::start();
    let desk = Desk::with_config(&stack.gateway_config("implicit", "")).await;
    let shutdown = CancellationToken::new();
    let app = desk.app.clone();
    let token = shutdown.clone();
    let running = tokio::spawn(async move { app.run(token).await });

    let first = customer_mail(
        "Marie Dupont <customer@example.test>",
        "Imprimante bloquée",
        "first@customer.test",
        "Bonjour, mon imprimante ne fonctionne plus depuis ce matin. Pouvez-vous m'aider ?",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &first)
        .await;

    // The acknowledgement arrives in the customer's mailbox, in French, with the code.
    let inbox = stack
        .wait_for("customer", "INBOX", 1, Duration::from_secs(20))
        .await;
    let ack = String::from_utf8_lossy(&inbox[0]).to_string();
    let subject = header(&ack, "Subject").unwrap().to_string();
    assert!(subject.starts_with("[HD-"), "{subject}");
    let code = subject[1..subject.find(']').unwrap()].to_string();
    assert_eq!(header(&ack, "In-Reply-To"), Some("<first@customer.test>"));
    assert_eq!(header(&ack, "Auto-Submitted"), Some("auto-replied"));
    assert_eq!(header(&ack, "X-Auto-Response-Suppress"), Some("All"));
    assert_eq!(header(&ack, "Content-Language"), Some("fr"));
    let ack_id = header(&ack, "Message-ID")
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    // The filed mail left the inbox for Processed.
    stack
        .wait_for("support", "Processed", 1, Duration::from_secs(10))
        .await;
    assert!(stack.messages("support", "INBOX").await.is_empty());

    // A reply carrying the code threads onto the ticket.
    let reply = customer_mail(
        "customer@example.test",
        &format!("RE : [{code}] Imprimante bloquée"),
        "second@customer.test",
        "Toujours en panne.\r\n\r\nLe lun. 2 mars 2026, Support a écrit :\r\n> Nous avons bien reçu votre demande",
    );
    stack
        .deliver("customer@example.test", "support@example.test", &reply)
        .await;
    // A reply whose client dropped the code threads by In-Reply-To.
    let no_code = format!(
        "From: customer@example.test\r\nTo: support@example.test\r\nSubject: Re: Imprimante\r\nMessage-ID: <third@customer.test>\r\nIn-Reply-To: <{ack_id}>\r\n\r\nEt maintenant le scanner aussi.\r\n"
    );
    stack
        .deliver(
            "customer@example.test",
            "support@example.test",
            no_code.as_bytes(),
        )
        .await;

    let pool = desk.db().await;
    wait_until("both replies filed", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM messages WHERE outcome = 'appended'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            n == 2
        }
    })
    .await;
    shutdown.cancel();
    running.await.unwrap().unwrap();

    let tickets = desk
        .app
        .pipeline
        .store()
        .list_tickets(&Default::default())
        .await
        .unwrap();
    assert_eq!(tickets.len(), 1, "one ticket for the whole conversation");
    assert_eq!(tickets[0].code, code);
    assert_eq!(
        tickets[0].messages, 4,
        "request, acknowledgement, two replies"
    );
    let code = helpdesk::domain::ReferenceCode::parse(&Default::default(), &code).unwrap();
    let detail = desk
        .app
        .pipeline
        .store()
        .ticket_detail(&code)
        .await
        .unwrap()
        .unwrap();
    let reply = detail
        .messages
        .iter()
        .find(|m| m.message_id.as_deref() == Some("second@customer.test"))
        .unwrap();
    assert_eq!(reply.reply_text, "Toujours en panne.");
    assert!(reply.body_text.contains("Nous avons bien reçu"));
    assert_eq!(
        detail
            .messages
            .iter()
            .filter(|m| m.direction == "outbound")
            .count(),
        1,
        "replies get no second acknowledgement"
    );
    assert_eq!(detail.messages[1].delivery.as_deref(), Some("sent"));
    assert_eq!(stack.messages("customer", "INBOX").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_wakes_the_gateway_within_two_seconds_of_a_new_mail() {
    let stack = MailStack::start();
    // Polling every 10 minutes: only IDLE can explain a quick pick-up.
    let desk = Desk::with_config(&stack.gateway_config("starttls", "")).await;
    let shutdown = CancellationToken::new();
    let app = desk.app.clone();
    let token = shutdown.clone();
    let running = tokio::spawn(async move { app.run(token).await });
    let stats = desk.app.imap_stats.clone();
    // Until the source has found the mailbox empty and is waiting in IDLE.
    wait_until("the source to enter IDLE", Duration::from_secs(10), || {
        let stats = stats.clone();
        async move { stats.idle_entered.load(Ordering::Relaxed) >= 1 }
    })
    .await;
    let passes_before = stats.passes.load(Ordering::Relaxed);

    let mail = customer_mail(
        "customer@example.test",
        "VPN down",
        "idle@customer.test",
        "Hello, the VPN is down since this morning.",
    );
    // APPEND returns once Dovecot has stored the mail: the clock starts there.
    stack.append("support", "INBOX", &[mail]).await;
    let accepted = Instant::now();
    let pool = desk.db().await;
    wait_until("the mail to be filed", Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tickets")
                .fetch_one(&pool)
                .await
                .unwrap();
            n == 1
        }
    })
    .await;
    let took = accepted.elapsed();
    eprintln!("Dovecot stored the mail -> ticket filed: {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "filed {took:?} after delivery"
    );
    assert!(
        stats.idle_woken.load(Ordering::Relaxed) >= 1,
        "the server's IDLE announcement woke the source"
    );
    // The pass IDLE started, then a check or two for more (the moves' own EXISTS
    // updates); no timer, and no busy loop.
    let passes = stats.passes.load(Ordering::Relaxed) - passes_before;
    assert!(
        (1..=3).contains(&passes),
        "{passes} passes after the mail came: only IDLE started them (polling is every 10 minutes)"
    );
    shutdown.cancel();
    running.await.unwrap().unwrap();
}

/// A `helpdesk run` process, killed when dropped so a failing test leaves none behind.
struct Gateway(Child);

impl std::ops::Deref for Gateway {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_gateway(desk: &Desk) -> Gateway {
    let child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .arg("--config")
        .arg(&desk.config_path)
        .arg("run")
        .env("HELPDESK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(desk.dir.path().join("gateway.log"))
                .unwrap(),
        )
        .spawn()
        .expect("start helpdesk run");
    Gateway(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_stopped_mid_batch_and_restarted_files_every_mail_exactly_once() {
    const N: usize = 300;
    let stack = MailStack::start();
    let mails: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            customer_mail(
                "customer@example.test",
                &format!("Request {i}"),
                &format!("batch-{i}@customer.test"),
                "Please help with my account.",
            )
        })
        .collect();
    stack.append("support", "INBOX", &mails).await;
    // One customer sends all 300: lift the automatic mail budget meant for loops.
    let desk = Desk::with_config(&format!(
        "{}\n[limits]\nautomatic_mail_per_hour = 1000\nautomatic_mail_per_day = 1000\n",
        stack.gateway_config("starttls", "batch_size = 7")
    ))
    .await;
    let pool = desk.db().await;
    let filed = |pool: sqlx::SqlitePool| async move {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
                .fetch_one(&pool)
                .await
                .unwrap();
        n as usize
    };

    // First run: killed outright (no chance to clean up) part-way through.
    let mut gateway = spawn_gateway(&desk);
    wait_until("a first part of the batch", Duration::from_secs(60), || {
        let p = pool.clone();
        async move { filed(p).await >= 10 }
    })
    .await;
    gateway.kill().unwrap();
    gateway.wait().unwrap();
    let after_kill = filed(pool.clone()).await;

    // Second run: stopped with SIGTERM, which finishes the mail in hand. The test holds
    // the database's write lock so the gateway is held mid-batch when the signal lands,
    // whatever the speed of the machine.
    let mut gateway = spawn_gateway(&desk);
    wait_until("more of the batch", Duration::from_secs(60), || {
        let p = pool.clone();
        async move { filed(p).await >= after_kill + 10 }
    })
    .await;
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let held_at = filed(pool.clone()).await;
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        gateway.try_wait().unwrap().is_none(),
        "the gateway waits for the group in hand"
    );
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    drop(holder);
    let status = gateway.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM ends the gateway cleanly: {status:?}"
    );
    let after_term = filed(pool.clone()).await;
    assert!(
        after_term < N && after_term <= held_at + 50,
        "SIGTERM stopped the gateway after the group in hand ({held_at} -> {after_term} of {N})"
    );

    // Third run: to the end.
    let mut gateway = spawn_gateway(&desk);
    wait_until(
        "every mail filed and acknowledged (a killed sender's lease runs out first)",
        Duration::from_secs(120),
        || {
            let p = pool.clone();
            async move {
                let (sent,): (i64,) =
                    sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
                        .fetch_one(&p)
                        .await
                        .unwrap();
                filed(p).await >= N && sent as usize >= N
            }
        },
    )
    .await;
    gateway.kill().unwrap();
    gateway.wait().unwrap();

    let (tickets,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tickets")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (distinct,): (i64,) = sqlx::query_as(
        "SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'inbound'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let (dups,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM messages WHERE outcome = 'duplicate'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(filed(pool.clone()).await, N, "each mail recorded once");
    assert_eq!(tickets as usize, N, "each mail filed as exactly one ticket");
    assert_eq!(distinct as usize, N);
    assert_eq!(dups, 0, "no mail was read twice");
    let (unsent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status <> 'sent'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unsent, 0);
    stack
        .wait_for("support", "Processed", N, Duration::from_secs(20))
        .await;
    assert!(
        stack.messages("support", "INBOX").await.is_empty(),
        "every filed mail was moved out of the inbox"
    );
    let acks = stack
        .wait_for("customer", "INBOX", N, Duration::from_secs(30))
        .await;
    assert!(acks.len() >= N);
}

/// A desk reading support@'s INBOX, after one pass of its IMAP source.
async fn one_pass(stack: &MailStack) -> (Desk, ImapSource, ImapSession, PassReport) {
    let desk = Desk::with_config(&stack.gateway_config("starttls", "")).await;
    let source = ImapSource::new(
        stack.imap_settings("support", TlsMode::StartTls),
        desk.app.pipeline.clone(),
    );
    let mut session = stack.imap("support").await;
    source.prepare(&mut session).await.unwrap();
    let report = source
        .pass(&mut session, &CancellationToken::new())
        .await
        .unwrap();
    (desk, source, session, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_mail_is_quarantined_and_the_mail_behind_it_is_filed() {
    let stack = MailStack::start();
    stack
        .append(
            "support",
            "INBOX",
            &[
                b"this is not a mail at all, no header\r\n".to_vec(),
                customer_mail(
                    "customer@example.test",
                    "After the broken one",
                    "after@customer.test",
                    "Hello there, my laptop will not boot.",
                ),
            ],
        )
        .await;
    let (desk, source, mut session, report) = one_pass(&stack).await;
    assert_eq!(report.processed, 2);
    assert_eq!(stack.messages("support", "Quarantine").await.len(), 1);
    assert_eq!(stack.messages("support", "Processed").await.len(), 1);
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 1);
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM messages WHERE outcome = 'quarantined' AND length(raw) > 0"
        )
        .await,
        1
    );
    // A second pass finds nothing new and files nothing twice.
    let again = source
        .pass(&mut session, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(again.processed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_already_read_by_another_client_is_still_filed() {
    let stack = MailStack::start();
    stack
        .append(
            "support",
            "INBOX",
            &[customer_mail(
                "customer@example.test",
                "Seen already",
                "seen@customer.test",
                "Someone opened this in Thunderbird first.",
            )],
        )
        .await;
    let mut other = stack.imap("support").await;
    other.select("INBOX").await.unwrap();
    let _: Vec<_> = futures::TryStreamExt::try_collect(
        other.uid_store("1:*", "+FLAGS (\\Seen)").await.unwrap(),
    )
    .await
    .unwrap();
    other.logout().await.ok();

    let (desk, _source, _session, report) = one_pass(&stack).await;
    assert_eq!(report.processed, 1);
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_acknowledgement_is_marked_failed_and_an_unreachable_server_is_retried() {
    let stack = MailStack::start();
    let desk = Desk::with_config(&stack.gateway_config("starttls", "")).await;
    // nobody@example.test does not exist: the server refuses it with a 5xx.
    desk.file(&customer_mail(
        "nobody@example.test",
        "Bounce me",
        "nobody@customer.test",
        "Hello",
    ))
    .await;
    let report = desk.app.outbox.step().await.unwrap();
    assert_eq!((report.sent, report.failed), (0, 1));
    assert_eq!(
        desk.count(
            "SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND last_error IS NOT NULL"
        )
        .await,
        1
    );
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM events WHERE kind = 'mail_failed'")
            .await,
        1
    );

    // Same desk, SMTP pointing at a closed port: a temporary failure, retried later.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = stack.gateway_config("starttls", "").replace(
        &format!(
            "port = {}\ntls = \"starttls\"\nusername",
            stack.submission_port
        ),
        &format!("port = {closed}\ntls = \"starttls\"\nusername"),
    );
    let down = Desk::with_config(&config).await;
    down.file(&customer_mail(
        "customer@example.test",
        "Server down",
        "down@customer.test",
        "Hello",
    ))
    .await;
    let report = down.app.outbox.step().await.unwrap();
    assert_eq!((report.sent, report.retried, report.failed), (0, 1, 0));
    assert_eq!(down.count("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 1 AND next_attempt_at > created_at").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_leave_over_implicit_tls_too() {
    let stack = MailStack::start();
    let config = stack.gateway_config("starttls", "").replace(
        &format!(
            "port = {}\ntls = \"starttls\"\nusername",
            stack.submission_port
        ),
        &format!("port = {}\ntls = \"implicit\"\nusername", stack.smtps_port),
    );
    assert!(config.contains("tls = \"implicit\""), "{config}");
    let desk = Desk::with_config(&config).await;
    desk.file(&customer_mail(
        "customer@example.test",
        "Over SMTPS",
        "smtps@customer.test",
        "Hello, my keyboard is broken.",
    ))
    .await;
    let report = desk.app.outbox.step().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let inbox = stack
        .wait_for("customer", "INBOX", 1, Duration::from_secs(20))
        .await;
    assert!(String::from_utf8_lossy(&inbox[0]).contains("Over SMTPS"));
}
