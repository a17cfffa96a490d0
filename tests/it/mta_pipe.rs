//! Postfix delivering into `helpdesk ingest` through `pipe(8)`, as the README documents:
//! mail filed within moments of delivery, and deferred (exit 75), not bounced, while the
//! database cannot be written, then filed once it can.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::customer_mail;
use crate::support::stack::MailStack;

/// Runs the gateway's CLI as the pipe's user, so every file it creates stays theirs.
fn as_mail(args: &[&str]) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "mail", "--"])
        .arg(env!("CARGO_BIN_EXE_helpdesk"))
        .args(args)
        .env("HELPDESK_LOG", "warn")
        .output()
        .expect("runuser")
}

fn tickets(config: &str) -> usize {
    let out = as_mail(&["--config", config, "tickets", "list", "--json"]);
    // Before the first mail is piped in there is no database (and listing makes none).
    if out.status.code() == Some(66) {
        return 0;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len()
}

async fn wait_for_tickets(config: &str, n: usize, timeout: Duration) -> Duration {
    let started = Instant::now();
    while tickets(config) < n {
        assert!(
            started.elapsed() < timeout,
            "{n} tickets not filed within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn chown_mail(path: &Path) {
    let ok = Command::new("chown")
        .args(["-R", "mail:mail"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_pipes_mail_into_ingest_and_defers_it_while_the_database_cannot_be_written() {
    let stack = MailStack::start();
    let desk = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        desk.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    chown_mail(desk.path());
    let init = as_mail(&["init", desk.path().to_str().unwrap()]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let config = desk.path().join("helpdesk.toml").display().to_string();
    stack.pipe_to(
        "support@example.test",
        "mail",
        &format!(
            "{} --config {config} ingest",
            env!("CARGO_BIN_EXE_helpdesk")
        ),
    );

    stack
        .deliver(
            "customer@example.test",
            "support@example.test",
            &customer_mail(
                "customer@example.test",
                "Piped",
                "pipe1@customer.test",
                "Hello, the printer is down.",
            ),
        )
        .await;
    let took = wait_for_tickets(&config, 1, Duration::from_secs(20)).await;
    eprintln!("SMTP accept -> ticket filed through pipe(8): {took:?}");
    // The ticket is visible once committed; `ingest` then sends the acknowledgement
    // before it exits, a moment later.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let outgoing = loop {
        let n = std::fs::read_dir(desk.path().join("outgoing"))
            .unwrap()
            .count();
        if n >= 1 || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        outgoing, 1,
        "ingest sent the acknowledgement before exiting"
    );

    // The database turns read-only: ingest exits 75, Postfix keeps the mail queued.
    let db = desk.path().join("helpdesk.db");
    let chmod = |mode: &str| {
        assert!(
            Command::new("chmod")
                .arg(mode)
                .arg(&db)
                .status()
                .unwrap()
                .success()
        );
    };
    chmod("a-w");
    stack
        .deliver(
            "customer@example.test",
            "support@example.test",
            &customer_mail(
                "customer@example.test",
                "Deferred",
                "pipe2@customer.test",
                "Hello, the screen is black.",
            ),
        )
        .await;
    let log = stack.dir().join("log/postfix.log");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("relay=helpdesk") && text.contains("status=deferred") {
            break;
        }
        assert!(
            !text.contains("status=bounced"),
            "the mail was bounced:\n{text}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no deferral logged:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(tickets(&config), 1);
    assert!(
        stack
            .postfix(&["queue", "-p"])
            .contains("support@example.test"),
        "still queued"
    );

    // Writable again: the queued mail is delivered on the next try, and only then. SQLite
    // gives the side files it creates (-shm, -wal) the database file's mode, so a -shm made
    // while the file was read-only is read-only too: an operator restores all of them.
    for entry in std::fs::read_dir(desk.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains("helpdesk.db") {
            assert!(
                Command::new("chmod")
                    .arg("u+w")
                    .arg(&path)
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    assert_eq!(
        tickets(&config),
        1,
        "nothing was filed while the database was read-only"
    );
    stack.postfix(&["queue", "-f"]);
    let started = Instant::now();
    while tickets(&config) < 2 {
        if started.elapsed() > Duration::from_secs(30) {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let ls = Command::new("ls")
                .arg("-la")
                .arg(desk.path())
                .output()
                .unwrap();
            panic!(
                "the deferred mail was not filed after a flush:\n{}\n{text}",
                String::from_utf8_lossy(&ls.stdout)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
