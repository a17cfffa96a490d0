//! The database on a real filesystem that fills up, turns read-only, and is shared by
//! processes started together: the gateway defers (exit 75), names the file, and resumes
//! by itself once the disk has room again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use helpdesk::pipeline::{Processed, SourceRef};

use crate::support::{Desk, customer_mail, embedded_config};

/// A tmpfs of `size` mounted on a fresh folder, unmounted on drop. Needs root, as the
/// test script runs; a failed mount fails the test (it never skips).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs (the tests run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Fills what room is left with a file.
    fn fill(&self) -> PathBuf {
        let filler = self.dir.path().join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=4096"])
            .arg(format!("of={}", filler.display()))
            .output();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // A test's store may still hold a file open on it when the disk is dropped first
        // ("target is busy"): then it is detached at once and freed by the kernel when the
        // last file closes, so no test leaves a mount behind.
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        if !unmounted {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .output();
        }
    }
}

fn config_with_database(db: &Path) -> String {
    embedded_config().replace(
        "url = \"sqlite:helpdesk.db\"",
        &format!("url = \"sqlite:{}\"", db.display()),
    )
}

#[tokio::test]
async fn filing_resumes_by_itself_once_a_full_disk_has_room_again() {
    let disk = SmallDisk::mount("1m");
    let desk = Desk::with_config(&config_with_database(&disk.path().join("helpdesk.db"))).await;
    assert!(matches!(
        desk.file(&customer_mail(
            "a@example.com",
            "Before",
            "before@example.com",
            "Hello, printer down."
        ))
        .await,
        Processed::Filed { .. }
    ));
    let filler = disk.fill();

    let body = "The screen flickers. ".repeat(2_000);
    let mut errors = Vec::new();
    for i in 0..5 {
        let mail = customer_mail(
            "a@example.com",
            &format!("Full {i}"),
            &format!("full{i}@example.com"),
            &body,
        );
        match desk.app.pipeline.process(&SourceRef::none(), &mail).await {
            Ok(_) => {}
            Err(e) => errors.push(e),
        }
    }
    assert!(!errors.is_empty(), "the disk never filled");
    for e in &errors {
        assert!(e.is_temporary(), "a full disk is temporary: {e}");
        assert!(!e.to_string().contains("transaction depth"), "{e}");
    }

    // Room again: the same process, the same pool, files again without a restart.
    std::fs::remove_file(filler).unwrap();
    disk.remount("size=16m");
    let after = customer_mail(
        "a@example.com",
        "After",
        "after@example.com",
        "Hello again, still down.",
    );
    let outcome = desk
        .app
        .pipeline
        .process(&SourceRef::none(), &after)
        .await
        .expect("filing resumes once there is room");
    assert!(matches!(outcome, Processed::Filed { .. }), "{outcome:?}");
    let report = desk
        .app
        .outbox
        .step()
        .await
        .expect("the outbox resumes too");
    assert!(report.sent >= 2, "{report:?}");
}

fn helpdesk(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(args)
        .env("HELPDESK_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A process that gave up before reading its input closes the pipe: not our failure.
    let _ = input.write_all(stdin.unwrap_or_default());
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn ingest_defers_with_75_on_a_full_disk_and_a_read_only_database_and_names_the_file() {
    let disk = SmallDisk::mount("2m");
    let out = helpdesk(&["init", disk.path().to_str().unwrap()], None);
    assert!(out.status.success());
    let config = disk.path().join("helpdesk.toml");
    let config = config.to_str().unwrap();
    let db = disk.path().join("helpdesk.db");
    let mail = customer_mail(
        "a@example.com",
        "Printer",
        "p1@example.com",
        "Hello, the printer is down.",
    );
    let out = helpdesk(&["--config", config, "ingest", "--no-send"], Some(&mail));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let filler = disk.fill();
    let big = customer_mail(
        "a@example.com",
        "Big",
        "p2@example.com",
        &"x ".repeat(100_000),
    );
    let out = helpdesk(&["--config", config, "ingest", "--no-send"], Some(&big));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "full disk: {stderr}");
    assert!(
        stderr.contains(&db.display().to_string()),
        "the error names the database: {stderr}"
    );

    std::fs::remove_file(filler).unwrap();
    disk.remount("ro");
    let out = helpdesk(&["--config", config, "ingest", "--no-send"], Some(&big));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "read-only: {stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");

    disk.remount("rw");
    let out = helpdesk(&["--config", config, "ingest", "--no-send"], Some(&big));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ingest_processes_started_together_on_a_fresh_desk_all_file_their_mail() {
    const N: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    let out = helpdesk(&["init", dir.path().to_str().unwrap()], None);
    assert!(out.status.success());
    // Remove the database init may have made: the processes below race to create it.
    for f in ["helpdesk.db", "helpdesk.db-wal", "helpdesk.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let config = dir.path().join("helpdesk.toml");
    let children: Vec<_> = (0..N)
        .map(|i| {
            let mail = dir.path().join(format!("mail{i}.eml"));
            std::fs::write(
                &mail,
                customer_mail(
                    "a@example.com",
                    &format!("Request {i}"),
                    &format!("race{i}@example.com"),
                    "Hello, it is broken.",
                ),
            )
            .unwrap();
            Command::new(env!("CARGO_BIN_EXE_helpdesk"))
                .arg("--config")
                .arg(&config)
                .args(["ingest", "--no-send"])
                .arg(&mail)
                .env("HELPDESK_LOG", "warn")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = helpdesk(
        &[
            "--config",
            config.to_str().unwrap(),
            "tickets",
            "list",
            "--json",
        ],
        None,
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), N);
}

/// The values a column's CHECK allows in the migrated schema (`col = 'x' OR …` or
/// `col IN ('x', …)`).
fn allowed(schema: &str, column: &str) -> std::collections::BTreeSet<String> {
    let start = schema
        .find(&format!("{column} "))
        .and_then(|at| schema[at..].find("CHECK").map(|c| at + c))
        .unwrap_or_else(|| panic!("no CHECK on {column}:\n{schema}"));
    let mut depth = 0;
    let mut end = start;
    for (i, ch) in schema[start..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    end = start + i;
                    break;
                }
            }
            _ => {}
        }
    }
    schema[start..end]
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every CHECK of the schema lists exactly what the Rust enums can write: a kind added on
/// one side and not the other fails here, not on a customer's mail.
#[tokio::test]
async fn the_schema_checks_allow_exactly_the_enums_values() {
    use helpdesk::domain::{Actor, EventKind, Language, Priority, TicketStatus, Tier};
    use helpdesk::store::{Direction, ParticipantRole, StoredOutcome};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("desk.db");
    let store = helpdesk::store::sqlite::SqliteStore::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let table = |name: &'static str| {
        let pool = store.pool().clone();
        async move {
            let (sql,): (String,) =
                sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?")
                    .bind(name)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            sql
        }
    };
    let set = |values: Vec<&str>| -> std::collections::BTreeSet<String> {
        values.into_iter().map(str::to_string).collect()
    };
    let events = table("events").await;
    assert_eq!(
        allowed(&events, "kind"),
        set(EventKind::ALL.iter().map(|k| k.as_str()).collect())
    );
    assert_eq!(allowed(&events, "actor_kind"), set(Actor::KINDS.to_vec()));
    let tickets = table("tickets").await;
    assert_eq!(
        allowed(&tickets, "status"),
        set(TicketStatus::ALL.iter().map(|s| s.as_str()).collect())
    );
    assert_eq!(
        allowed(&tickets, "tier"),
        set(Tier::ALL.iter().map(|t| t.as_str()).collect())
    );
    assert_eq!(
        allowed(&tickets, "priority"),
        set(Priority::ALL.iter().map(|p| p.as_str()).collect())
    );
    assert_eq!(
        allowed(&tickets, "language"),
        set(Language::ALL.iter().map(|l| l.as_str()).collect())
    );
    let messages = table("messages").await;
    assert_eq!(
        allowed(&messages, "outcome"),
        set(StoredOutcome::ALL.iter().map(|o| o.as_str()).collect())
    );
    assert_eq!(
        allowed(&messages, "direction"),
        set(vec![
            Direction::Inbound.as_str(),
            Direction::Outbound.as_str()
        ])
    );
    assert_eq!(
        allowed(&table("ticket_participants").await, "role"),
        set(vec![
            ParticipantRole::Customer.as_str(),
            ParticipantRole::Cc.as_str()
        ])
    );
    // Each actor variant's kind is one of the listed kinds.
    let someone: helpdesk::domain::EmailAddress = "a@example.com".parse().unwrap();
    for actor in [
        Actor::Customer(someone.clone()),
        Actor::Participant(someone.clone()),
        Actor::Stranger(someone.clone()),
        Actor::Agent(someone),
        Actor::Machine(None),
        Actor::Gateway,
        Actor::Cli("cli".into()),
        Actor::Vendor("Ricoh".into()),
        Actor::Timer,
    ] {
        assert!(Actor::KINDS.contains(&actor.kind()), "{actor:?}");
    }
}
