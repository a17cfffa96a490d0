//! The outbox against a slow SMTP server with two workers on one database: however long
//! the sends take, each mail is accepted once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use helpdesk::outbox::{OutboxWorker, Transport};
use tokio::sync::Notify;

use crate::support::slow_smtp::SlowSmtp;
use crate::support::{Desk, customer_mail, embedded_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_and_a_slow_server_send_each_mail_once() {
    const N: usize = 64;
    // Each mail takes a second to be accepted: 64 mails, 4 at a time, take 16 s, longer
    // than the 14 s lease (twice the 2 s timeout plus 10 s) the first worker claims them for.
    let smtp = SlowSmtp::start(Duration::from_secs(1)).await;
    let config = embedded_config().replace("transport = \"file\"", "transport = \"smtp\"")
        + &format!(
            "\n[outbox.smtp]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"plain\"\ntimeout = \"2s\"\n",
            smtp.port
        );
    let desk = Desk::with_config(&config).await;
    for i in 0..N {
        desk.file(&customer_mail(
            &format!("customer{i}@example.com"),
            &format!("Request {i}"),
            &format!("lease-{i}@example.com"),
            "Hello, my screen stays black.",
        ))
        .await;
    }
    let second = OutboxWorker::new(
        desk.app.pipeline.store().clone(),
        Transport::from_settings(&desk.app.config.outbox.transport, 4).unwrap(),
        desk.app.config.outbox.clone(),
        Arc::new(Notify::new()),
    );
    let first = desk.app.outbox.clone();
    let started = Instant::now();
    let first_run = tokio::spawn(async move { first.step().await.unwrap() });
    // The second worker keeps looking for due rows, as a second gateway would.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second_sent = 0;
    while !first_run.is_finished() {
        match second.step().await {
            Ok(report) => second_sent += report.sent,
            // A busy database (the full suite loads both cores): a real worker logs it and
            // looks again, as this one does.
            Err(e) if e.is_temporary() => {}
            Err(e) => panic!("the second worker: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first_report = first_run.await.unwrap();
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(14),
        "the sends outlasted the lease ({took:?})"
    );
    let accepted = smtp.accepted();
    let twice = accepted.values().filter(|n| **n > 1).count();
    assert_eq!(
        twice, 0,
        "{twice} of {N} mails were accepted more than once"
    );
    assert_eq!(accepted.len(), N, "every acknowledgement was accepted");
    assert_eq!(first_report.sent + second_sent, N);
    assert_eq!(
        desk.count("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .await,
        N as i64
    );
}
