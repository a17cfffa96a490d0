//! The scale-out story, over Dovecot, Postfix and PostgreSQL: three `helpdesk run`
//! processes share one desk and one support mailbox holding a backlog of 3,000 mails,
//! while agents' commands arrive by mail. Midway, the process reading the mailbox (the
//! holder of its lease) is killed with SIGKILL. Another takes the mailbox over; at the end
//! every mail is one ticket, every customer has one acknowledgement (a mail accepted by
//! SMTP but not yet marked when the process died may go twice), and every command holds.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::postgres::{self, Database};
use crate::support::stack::MailStack;
use crate::support::{customer_mail, on_database};

const MAILS: usize = 3000;
const COMMANDS: usize = 20;

/// The gateways, killed if the test ends early.
struct Gateways(Vec<Child>);

impl Drop for Gateways {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start(config: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("HELPDESK_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start helpdesk run")
}

/// A count; -1 until the first gateway has created the tables.
async fn count(pool: &sqlx::PgPool, sql: &'static str) -> i64 {
    sqlx::query_as::<_, (i64,)>(sql)
        .fetch_one(pool)
        .await
        .map_or(-1, |(n,)| n)
}

async fn wait_until(what: &str, timeout: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not after {timeout:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config(stack: &MailStack, db: &Database) -> String {
    on_database(
        &format!(
            "{}\n[agent_mail]\nrequire_authentication = false\n\n[[agents]]\nname = \"Alice Agent\"\n\
             address = \"agent@example.test\"\ntiers = [\"L1\", \"L2\", \"L3\"]\n",
            stack.gateway_config("implicit", "")
        ),
        db,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_share_a_backlog_and_take_over_from_a_killed_one() {
    let stack = MailStack::start();
    let db = Arc::new(postgres::database());
    let pool = db.pool().await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("helpdesk.toml");
    std::fs::write(&config_path, config(&stack, &db)).unwrap();

    let raws: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| {
            customer_mail(
                &format!("Customer {i} <customer+s{i}@example.test>"),
                &format!("Printer {i} jammed"),
                &format!("story.{i}@example.test"),
                "Hello, the printer on the second floor is jammed again.",
            )
        })
        .collect();
    let appended = Instant::now();
    // Four IMAP clients at once.
    futures::future::join_all(
        raws.chunks(MAILS / 4)
            .map(|chunk| stack.append("support", "INBOX", chunk)),
    )
    .await;
    println!("{MAILS} mails appended in {:?}", appended.elapsed());

    let started = Instant::now();
    let mut gateways = Gateways(
        (0..3)
            .map(|n| start(&config_path, &dir.path().join(format!("gateway-{n}.log"))))
            .collect(),
    );
    wait_until(
        "a third of the backlog filed",
        Duration::from_secs(600),
        async || count(&pool, "SELECT COUNT(*) FROM tickets").await >= (MAILS / 3) as i64,
    )
    .await;

    // Agents' commands arrive by mail meanwhile (through Postfix, into the same mailbox).
    let codes: Vec<(String,)> = sqlx::query_as("SELECT code FROM tickets ORDER BY id LIMIT $1")
        .bind(COMMANDS as i64)
        .fetch_all(&pool)
        .await
        .unwrap();
    for (n, (code,)) in codes.iter().enumerate() {
        let reply = customer_mail(
            "agent@example.test",
            &format!("Re: [{code}] Printer jammed"),
            &format!("command.{n}@example.test"),
            "#priority urgent\n",
        );
        stack
            .deliver("agent@example.test", "support@example.test", &reply)
            .await;
    }

    // Kill the process that reads the mailbox, mid-way.
    let (holder,): (String,) =
        sqlx::query_as("SELECT holder FROM leases WHERE name LIKE 'source:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let pid: u32 = holder.split('/').nth(1).unwrap().parse().unwrap();
    let victim = gateways
        .0
        .iter()
        .position(|c| c.id() == pid)
        .expect("the holder is one of the three");
    let filed_at_kill = count(&pool, "SELECT COUNT(*) FROM tickets").await;
    let killed = Instant::now();
    // SAFETY: plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let _ = gateways.0[victim].wait();
    println!(
        "killed the lease holder (pid {pid}) after {:?}, with {filed_at_kill} tickets filed",
        started.elapsed()
    );
    wait_until(
        "the mailbox taken over",
        Duration::from_secs(30),
        async || {
            let holder: Option<(String,)> =
                sqlx::query_as("SELECT holder FROM leases WHERE name LIKE 'source:%'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap();
            holder.is_some_and(|(h,)| !h.contains(&format!("/{pid}/")))
                && count(&pool, "SELECT COUNT(*) FROM tickets").await > filed_at_kill
        },
    )
    .await;
    let takeover = killed.elapsed();
    println!("taken over and filing again {takeover:?} after the kill");
    assert!(takeover < Duration::from_secs(30), "{takeover:?}");

    wait_until(
        "every mail filed and sent",
        Duration::from_secs(900),
        async || {
            count(&pool, "SELECT COUNT(*) FROM tickets").await == MAILS as i64
                && count(
                    &pool,
                    "SELECT COUNT(*) FROM messages WHERE from_addr = 'agent@example.test' \
                 AND direction = 'inbound'",
                )
                .await
                    == COMMANDS as i64
                && count(
                    &pool,
                    "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending', 'held')",
                )
                .await
                    == 0
        },
    )
    .await;
    let took = started.elapsed();

    // 0 lost, 0 duplicate tickets: one ticket per mail, each from its own Message-ID.
    assert_eq!(
        count(&pool, "SELECT COUNT(DISTINCT customer) FROM tickets").await,
        MAILS as i64
    );
    let duplicates = count(
        &pool,
        "SELECT COUNT(*) FROM messages WHERE outcome = 'duplicate'",
    )
    .await;
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM (SELECT ticket_id FROM outbox WHERE kind = 'acknowledgement' \
             GROUP BY ticket_id HAVING COUNT(*) > 1) x"
        )
        .await,
        0,
        "one acknowledgement queued per ticket"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND status = 'sent'"
        )
        .await,
        MAILS as i64
    );
    // Every command applied.
    assert_eq!(
        count(
            &pool,
            "SELECT COUNT(*) FROM tickets WHERE priority = 'urgent'"
        )
        .await,
        COMMANDS as i64
    );
    // What customers received: one acknowledgement each, and at most the mails the killed
    // process had in flight twice (accepted by SMTP, not yet marked sent).
    let mut inbox = stack.imap("customer").await;
    let received = inbox.select("INBOX").await.unwrap().exists as usize;
    inbox.logout().await.ok();
    let twice = received - MAILS;
    // Stop the survivors cleanly.
    for (n, child) in gateways.0.iter_mut().enumerate() {
        if n != victim {
            // SAFETY: plain kill(2) of our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            assert!(
                child.wait().unwrap().success(),
                "gateway {n} stopped cleanly"
            );
        }
    }
    println!(
        "story: {MAILS} mails + {COMMANDS} commands, 3 gateways, 1 killed: {} tickets, \
         {duplicates} duplicate deliveries recognised, {received} acknowledgements received \
         ({twice} twice), takeover {takeover:?}, all done in {took:?}",
        count(&pool, "SELECT COUNT(*) FROM tickets").await
    );
    assert!(
        received >= MAILS && twice <= 4,
        "{received} acknowledgements for {MAILS} customers"
    );
}

/// Two mailboxes, two gateways: each reads one (its share), and when one stops, the other
/// reads both; mail in either mailbox becomes a ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateways_share_the_mailboxes_and_take_all_when_alone() {
    let stack = MailStack::start();
    let db = Arc::new(postgres::database());
    let base = stack.gateway_config("implicit", "idle = true");
    let second = base
        .split_once("[source.imap]")
        .and_then(|(_, rest)| rest.split_once("\n[outbox]"))
        .map(|(imap, _)| {
            imap.replace("support@example.test", "expert@example.test")
                .replace("support-pw", "expert-pw")
        })
        .expect("an imap table");
    let toml = base.replace("[source.imap]", "[[source.imap]]").replace(
        "\n[outbox]",
        &format!("\n[[source.imap]]{second}\n[outbox]"),
    );
    let a = crate::support::Desk::sharing(&toml, db.clone()).await;
    let b = crate::support::Desk::sharing(&toml, db.clone()).await;
    let pool = db.pool().await;
    let run = |desk: &crate::support::Desk| {
        let app = desk.app.clone();
        let token = tokio_util::sync::CancellationToken::new();
        let stop = token.clone();
        (token, tokio::spawn(async move { app.run(stop).await }))
    };
    let (stop_a, running_a) = run(&a);
    let (stop_b, running_b) = run(&b);
    let holders = async || -> Vec<(String, String)> {
        sqlx::query_as("SELECT name, holder FROM leases WHERE name LIKE 'source:%' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap_or_default()
    };
    wait_until(
        "each gateway reads one mailbox",
        Duration::from_secs(40),
        async || {
            let h = holders().await;
            h.len() == 2 && h[0].1 != h[1].1
        },
    )
    .await;
    for (user, n) in [("support", 0), ("expert", 1)] {
        let raw = customer_mail(
            &format!("Customer <customer+share{n}@example.test>"),
            "Printer jammed",
            &format!("share.{n}@example.test"),
            "Jammed.",
        );
        stack.append(user, "INBOX", &[raw]).await;
    }
    wait_until("both mails filed", Duration::from_secs(30), async || {
        count(&pool, "SELECT COUNT(*) FROM tickets").await == 2
    })
    .await;
    stop_a.cancel();
    running_a.await.unwrap().unwrap();
    wait_until(
        "the other gateway reads both",
        Duration::from_secs(30),
        async || {
            let h = holders().await;
            h.len() == 2 && h[0].1 == h[1].1
        },
    )
    .await;
    let raw = customer_mail(
        "Customer <customer+share2@example.test>",
        "Screen black",
        "share.2@example.test",
        "Black.",
    );
    stack.append("expert", "INBOX", &[raw]).await;
    wait_until(
        "the third mail filed",
        Duration::from_secs(30),
        async || count(&pool, "SELECT COUNT(*) FROM tickets").await == 3,
    )
    .await;
    stop_b.cancel();
    running_b.await.unwrap().unwrap();
}
