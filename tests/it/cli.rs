//! The `helpdesk` binary as scripts and MTAs use it: init, ingest, tickets, check-config, run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{corpus_dir, customer_mail, helpdesk, stdout};

pub(crate) fn init_desk() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = helpdesk(&["init", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("helpdesk.toml").display().to_string();
    (dir, config)
}

#[test]
fn init_writes_a_config_whose_paths_stay_inside_the_folder() {
    let (dir, config) = init_desk();
    for sub in ["Maildir/new", "Maildir/cur", "Maildir/tmp", "outgoing"] {
        assert!(dir.path().join(sub).is_dir(), "{sub} missing");
    }
    let out = helpdesk(&["--config", &config, "check-config"]);
    assert!(out.status.success());
    // Running init again keeps the existing file.
    std::fs::write(
        dir.path().join("helpdesk.toml"),
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("Support\"", "Desk\""),
    )
    .unwrap();
    assert!(
        helpdesk(&["init", dir.path().to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        std::fs::read_to_string(&config)
            .unwrap()
            .contains("support_name = \"Desk\"")
    );
}

#[test]
fn ingest_files_a_ticket_writes_the_acknowledgement_and_lists_it_as_json() {
    let (dir, config) = init_desk();
    let mail = dir.path().join("mail.eml");
    std::fs::write(
        &mail,
        customer_mail(
            "Jean Martin <jean@example.fr>",
            "Mot de passe expiré",
            "cli-1@example.fr",
            "Bonjour, mon mot de passe a expiré et je ne peux plus me connecter.",
        ),
    )
    .unwrap();
    let out = helpdesk(&["--config", &config, "ingest", mail.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout(&out);
    let cols: Vec<&str> = line.trim().split('\t').collect();
    assert_eq!(cols[1], "new_ticket", "{line}");
    let code = cols[2].to_string();

    let files: Vec<_> = std::fs::read_dir(dir.path().join("outgoing"))
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "one .eml written by the file transport");
    let eml = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(eml.contains(&format!("[{code}]")));
    assert!(
        eml.contains("To: Jean Martin <jean@example.fr>")
            || eml.contains("To: \"Jean Martin\" <jean@example.fr>"),
        "{eml}"
    );

    let list = helpdesk(&["--config", &config, "tickets", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let t = &json.as_array().unwrap()[0];
    assert_eq!(t["code"], code.as_str());
    assert_eq!(t["status"], "new");
    assert_eq!(t["tier"], "L1");
    assert_eq!(t["customer"], "jean@example.fr");
    assert_eq!(t["subject"], "Mot de passe expiré");
    assert_eq!(t["messages"], 2);
    assert!(t["created_at"].as_str().unwrap().ends_with('Z'));

    let show = helpdesk(&["--config", &config, "tickets", "show", &code, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    let msgs = json["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["direction"], "inbound");
    assert_eq!(msgs[0]["message_id"], "cli-1@example.fr");
    assert_eq!(msgs[0]["outcome"], "new_ticket");
    assert!(
        msgs[0]["body_text"]
            .as_str()
            .unwrap()
            .contains("mot de passe a expiré")
    );
    assert_eq!(msgs[1]["direction"], "outbound");
    assert_eq!(msgs[1]["to"][0], "jean@example.fr");
    assert!(
        msgs[1]["subject"]
            .as_str()
            .unwrap()
            .starts_with(&format!("[{code}]"))
    );

    // The same mail again is a duplicate and changes nothing.
    let again = helpdesk(&["--config", &config, "ingest", mail.to_str().unwrap()]);
    assert!(stdout(&again).contains("\tduplicate\t"));
    let list = helpdesk(&[
        "--config", &config, "tickets", "list", "--status", "new", "--json",
    ]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&list))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn ingest_reads_standard_input_and_holds_mail_back_with_no_send() {
    for args in [&["--no-send"][..], &["--no-send", "-"]] {
        ingest_from_stdin(args);
    }
}

/// `ingest` with no file, or `-` as Unix tools read standard input.
fn ingest_from_stdin(args: &[&str]) {
    let (dir, config) = init_desk();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "ingest"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&customer_mail(
            "a@example.com",
            "Printer",
            "stdin@example.com",
            "The printer is jammed again.",
        ))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(stdout(&out).starts_with("-\tnew_ticket\tHD-"));
    assert_eq!(
        std::fs::read_dir(dir.path().join("outgoing"))
            .unwrap()
            .count(),
        0,
        "--no-send leaves the outbox queued"
    );
}

#[test]
fn ingest_exits_75_when_the_database_cannot_be_reached() {
    let (dir, config) = init_desk();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("sqlite:helpdesk.db", "sqlite:/nonexistent-dir/helpdesk.db");
    std::fs::write(&config, text).unwrap();
    let mail = dir.path().join("m.eml");
    std::fs::write(
        &mail,
        customer_mail("a@example.com", "x", "x@example.com", "x"),
    )
    .unwrap();
    let out = helpdesk(&["--config", &config, "ingest", mail.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_wrong_config_value_is_reported_with_its_key_and_fix() {
    let (_dir, config) = init_desk();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("transport = \"file\"", "transport = \"pigeon\"");
    std::fs::write(&config, text).unwrap();
    let out = helpdesk(&["--config", &config, "check-config"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outbox.transport") && err.contains("\"smtp\" or \"file\""),
        "{err}"
    );
}

#[test]
fn ingesting_the_whole_corpus_in_one_call_never_fails() {
    let (_dir, config) = init_desk();
    let files: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["--config", config.as_str(), "ingest", "--no-send"];
    args.extend(files.iter().map(String::as_str));
    let out = helpdesk(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout(&out).lines().count(),
        files.len(),
        "one outcome line per mail"
    );
}

/// `tickets list | head -1`: the listing ends like any Unix tool when its reader goes
/// (killed by SIGPIPE, nothing on stderr), not with a panic and exit 101.
#[test]
fn a_listing_whose_reader_goes_away_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (_dir, config) = init_desk();
    let out = helpdesk(&[
        "--config",
        &config,
        "ingest",
        "--no-send",
        &corpus_dir()
            .join("001-rt-8859-15-message-series-msg1.eml")
            .display()
            .to_string(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let filed = stdout(&out);
    let code = filed.trim().rsplit('\t').next().unwrap().to_string();
    for args in [vec!["tickets", "list"], vec!["tickets", "show", &code]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
            .args(["--config", &config])
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the command writes its first line.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            out.status
        );
    }
}

/// Many files are filed in groups of 50, one transaction each, with the next group read
/// while one is written: a mail must still see what an earlier mail of its own group wrote
/// (a second delivery is a duplicate, a reply threads on the ticket opened just before), an
/// unreadable file costs only itself, and every mail gets its line, in order.
#[test]
fn ingest_of_many_files_sees_earlier_mail_of_the_same_transaction() {
    let (dir, config) = init_desk();
    let mails = dir.path().join("spool");
    std::fs::create_dir(&mails).unwrap();
    let mut files = Vec::new();
    for i in 0..120 {
        let path = mails.join(format!("{i:03}.eml"));
        let mail = match i {
            // The same mail as #10, delivered twice inside one group and once in another.
            11 | 75 => customer_mail("c10@example.com", "Printer 10", "m10@example.com", "Printer 10 is jammed."),
            // A reply to #20 (same group), by its References only.
            21 =>                 "From: c20@example.com\r\nTo: support@example.test\r\nSubject: more details\r\n\
                 Message-ID: <r20@example.com>\r\nReferences: <m20@example.com>\r\n\
                 Date: Mon, 2 Mar 2026 10:05:00 +0100\r\nContent-Type: text/plain\r\n\r\nIt is on the 2nd floor.\r\n"
                .as_bytes()
                .to_vec(),
            _ => customer_mail(
                &format!("c{i}@example.com"),
                &format!("Printer {i}"),
                &format!("m{i}@example.com"),
                &format!("Printer {i} is jammed."),
            ),
        };
        std::fs::write(&path, mail).unwrap();
        files.push(path.display().to_string());
        if i == 60 {
            files.push(mails.join("missing.eml").display().to_string());
        }
    }
    let mut args = vec!["--config", config.as_str(), "ingest", "--no-send"];
    args.extend(files.iter().map(String::as_str));
    let out = helpdesk(&args);
    assert_eq!(out.status.code(), Some(66), "an unreadable file exits 66");
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.eml"));
    let lines: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split('\t').map(String::from).collect())
        .collect();
    assert_eq!(lines.len(), 120, "one line per readable file");
    for (i, line) in lines.iter().enumerate() {
        assert!(
            line[0].ends_with(&format!("{i:03}.eml")),
            "in order: {line:?}"
        );
    }
    let outcome = |i: usize| lines[i][1].as_str();
    let code = |i: usize| lines[i][2].as_str();
    assert_eq!(outcome(10), "new_ticket");
    assert_eq!(
        outcome(11),
        "duplicate",
        "a second delivery in the same transaction"
    );
    assert_eq!(outcome(75), "duplicate", "a third in a later one");
    assert_eq!((outcome(21), code(21)), ("appended", code(20)));
    let opened = lines.iter().filter(|l| l[1] == "new_ticket").count();
    assert_eq!(opened, 117);
    let listed = helpdesk(&["--config", &config, "tickets", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(tickets.as_array().unwrap().len(), 117);
}

#[test]
fn run_on_the_embedded_default_answers_mail_dropped_into_the_maildir() {
    let (dir, config) = init_desk();
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let maildir = dir.path().join("Maildir");
    std::fs::write(
        maildir.join("tmp/1.test"),
        customer_mail(
            "a@example.com",
            "Access to the share",
            "run@example.com",
            "I cannot open the team share.",
        ),
    )
    .unwrap();
    std::fs::rename(maildir.join("tmp/1.test"), maildir.join("new/1.test")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(dir.path().join("outgoing"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count()
        == 0
    {
        assert!(Instant::now() < deadline, "no acknowledgement written");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        Path::new(&maildir.join("cur/1.test:2,")).exists(),
        "filed mail moved to cur/"
    );
    Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()
        .unwrap();
    let status = gateway.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A Maildir backlog is filed in groups (one transaction each): every file moves to
/// `cur/` once filed, a second delivery in the same group is a duplicate, and each new
/// ticket gets its acknowledgement.
#[test]
fn a_maildir_backlog_is_filed_in_groups_and_moved_out() {
    let (dir, config) = init_desk();
    let maildir = dir.path().join("Maildir");
    for i in 0..120 {
        let mail = if i == 7 {
            customer_mail(
                "b6@example.com",
                "Screen 6",
                "s6@example.com",
                "Screen 6 flickers.",
            )
        } else {
            customer_mail(
                &format!("b{i}@example.com"),
                &format!("Screen {i}"),
                &format!("s{i}@example.com"),
                &format!("Screen {i} flickers."),
            )
        };
        std::fs::write(maildir.join(format!("tmp/{i:03}.test")), mail).unwrap();
        std::fs::rename(
            maildir.join(format!("tmp/{i:03}.test")),
            maildir.join(format!("new/{i:03}.test")),
        )
        .unwrap();
    }
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let count = |path: &Path| {
        std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok()).count())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&maildir.join("cur")) < 120 || count(&dir.path().join("outgoing")) < 119 {
        assert!(
            Instant::now() < deadline,
            "{} filed, {} answered",
            count(&maildir.join("cur")),
            count(&dir.path().join("outgoing"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()
        .unwrap();
    assert!(gateway.wait().unwrap().success());
    assert_eq!(count(&maildir.join("new")), 0);
    assert!(maildir.join("cur/007.test:2,").exists());
    let listed = helpdesk(&["--config", &config, "tickets", "list", "--json"]);
    let tickets: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(
        tickets.as_array().unwrap().len(),
        119,
        "the second delivery opened nothing"
    );
    assert_eq!(
        count(&dir.path().join("outgoing")),
        119,
        "one acknowledgement per ticket, none for the duplicate"
    );
}

/// The embedded default with `[source]` swapped for an IMAP source and extra outbox lines.
fn with_imap_source(config: &str, imap: &str) -> String {
    let text = std::fs::read_to_string(config).unwrap();
    text.replace(
        "kind = \"maildir\"",
        &format!("kind = \"imap\"\n\n[source.imap]\n{imap}\n"),
    )
}

#[test]
fn check_config_builds_the_tls_clients_so_a_bad_ca_file_exits_78() {
    let (dir, config) = init_desk();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "this is not a certificate").unwrap();
    let imap = format!(
        "host = \"imap.example.com\"\nusername = \"support\"\npassword = \"x\"\nca_file = \"{}\"",
        not_pem.display()
    );
    std::fs::write(&config, with_imap_source(&config, &imap)).unwrap();
    let out = helpdesk(&["--config", &config, "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("source.imap.ca_file"), "{err}");

    // The same for the SMTP client's ca_file.
    let (dir, config) = init_desk();
    let missing = dir.path().join("missing.pem");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("transport = \"file\"", "transport = \"smtp\"")
        + &format!(
            "\n[outbox.smtp]\nhost = \"smtp.example.com\"\nca_file = \"{}\"\n",
            missing.display()
        );
    std::fs::write(&config, text).unwrap();
    let out = helpdesk(&["--config", &config, "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("outbox.smtp.ca_file"), "{err}");
}

#[test]
fn plain_imap_to_a_remote_server_is_refused_with_78() {
    let (_dir, config) = init_desk();
    let imap =
        "host = \"imap.example.com\"\ntls = \"plain\"\nusername = \"support\"\npassword = \"x\"";
    std::fs::write(&config, with_imap_source(&config, imap)).unwrap();
    let out = helpdesk(&["--config", &config, "check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("source.imap.tls"), "{err}");
}

#[test]
fn run_exits_non_zero_when_its_mail_source_dies() {
    let (dir, config) = init_desk();
    // A Maildir path under a regular file can never be created: the source gives up.
    std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("path = \"Maildir\"", "path = \"blocker/Maildir\"");
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .env("HELPDESK_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("run kept living without a mail source");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    assert!(err.contains("mail source stopped"), "{err}");
}

#[test]
fn logs_written_to_a_file_or_pipe_carry_no_colour_codes() {
    let (_dir, config) = init_desk();
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "ingest", "--no-send"])
        .env("HELPDESK_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // An unreadable mail: quarantined, which the gateway logs as a warning.
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"no header at all\r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("mail quarantined"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in a piped log: {log:?}"
    );
}

#[test]
fn an_error_says_each_cause_once_and_a_missing_config_says_how_to_point_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["tickets", "list"])
        .current_dir(dir.path())
        .env_remove("HELPDESK_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("--config") && err.contains("HELPDESK_CONFIG"),
        "{err}"
    );
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");

    // A database that cannot be opened: one line, the file named once per level, the
    // SQLite message once.
    let (dir, config) = init_desk();
    let db = dir.path().join("helpdesk.db");
    let _ = std::fs::remove_file(&db);
    std::fs::create_dir(&db).unwrap();
    let out = helpdesk(&["--config", &config, "tickets", "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(err.contains(&db.display().to_string()), "{err}");
    assert_eq!(
        err.matches("unable to open database file").count(),
        1,
        "{err}"
    );
}

/// One exit code per kind of failure, as the README's table says: a script can tell a
/// usage error, a mistyped code, a ticket that does not exist and a refusal apart.
#[test]
fn each_kind_of_failure_has_its_own_exit_code() {
    let (dir, config) = init_desk();
    let mail = dir.path().join("m.eml");
    std::fs::write(
        &mail,
        customer_mail("a@example.com", "Printer", "exit@example.com", "Jammed."),
    )
    .unwrap();
    let out = helpdesk(&[
        "--config",
        &config,
        "ingest",
        "--no-send",
        mail.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let code = stdout(&out).split('\t').nth(2).unwrap().trim().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["--config", config.as_str()];
        all.extend_from_slice(args);
        helpdesk(&all).status.code()
    };
    assert_eq!(run(&["tickets", "frobnicate"]), Some(2), "usage");
    assert_eq!(
        run(&["tickets", "show", "HD-1234"]),
        Some(65),
        "mistyped code"
    );
    let unknown = helpdesk::domain::ReferenceCode::generate(
        &helpdesk::domain::CodePrefix::new("HD").unwrap(),
    );
    assert_ne!(unknown.as_str(), code);
    assert_eq!(
        run(&["tickets", "resolve", unknown.as_str()]),
        Some(4),
        "no such ticket"
    );
    assert_eq!(
        run(&["tickets", "show", unknown.as_str()]),
        Some(4),
        "no such ticket"
    );
    assert_eq!(
        run(&["tickets", "wait", &code, "soon"]),
        Some(65),
        "bad duration"
    );
    assert_eq!(
        run(&["tickets", "list", "--status", "sleeping"]),
        Some(65),
        "bad status"
    );
    assert_eq!(run(&["tickets", "close", &code, "--no-send"]), Some(0));
    assert_eq!(
        run(&["tickets", "resolve", &code, "--no-send"]),
        Some(3),
        "refused"
    );
}

/// Every argument and flag of every subcommand says what it is for; `init` writes a
/// configuration and does not offer `--config`.
#[test]
fn every_argument_has_a_help_line() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if id != "help" && id != "version" && !arg.is_hide_set() && arg.get_help().is_none() {
                missing.push(format!("{path} {id}"));
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut cmd = helpdesk::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "helpdesk", &mut missing);
    assert!(missing.is_empty(), "{missing:?}");
    let help = stdout(&helpdesk(&["init", "--help"]));
    assert!(!help.contains("--config"), "{help}");
}

/// SIGHUP reloads the roster, the routing rules and the templates without a restart; a
/// broken change is refused with its error and the running configuration kept.
#[test]
fn sighup_reloads_the_roster_and_refuses_a_broken_change() {
    let (dir, config) = init_desk();
    let log = dir.path().join("gateway.log");
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let maildir = dir.path().join("Maildir");
    let deliver = |n: u32| {
        let name = format!("{n}.test");
        std::fs::write(
            maildir.join("tmp").join(&name),
            customer_mail(
                &format!("c{n}@example.com"),
                "Printer jammed",
                &format!("hup{n}@example.com"),
                "The printer on floor 2 is jammed.",
            ),
        )
        .unwrap();
        std::fs::rename(
            maildir.join("tmp").join(&name),
            maildir.join("new").join(&name),
        )
        .unwrap();
    };
    // The tests read the desk through a copy of the configuration: the gateway's own is
    // broken on purpose below.
    let reader = dir.path().join("reader.toml").display().to_string();
    std::fs::copy(&config, &reader).unwrap();
    let assignee_of = |n: u32| -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = helpdesk(&["--config", &reader, "tickets", "list", "--json"]);
            let list: serde_json::Value =
                serde_json::from_str(&stdout(&out)).unwrap_or(serde_json::json!([]));
            let customer = format!("c{n}@example.com");
            if let Some(t) = list
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["customer"] == customer.as_str())
            {
                return t["assignee"].clone();
            }
            assert!(Instant::now() < deadline, "mail {n} not filed");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let wait_for_log = |words: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&log).unwrap().contains(words) {
            assert!(Instant::now() < deadline, "no {words:?} in the log");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let hangup = || {
        Command::new("kill")
            .args(["-HUP", &gateway.id().to_string()])
            .status()
            .unwrap();
    };
    wait_for_log("maildir source watching");
    deliver(1);
    assert_eq!(
        assignee_of(1),
        serde_json::Value::Null,
        "nobody on the roster yet"
    );

    let original = std::fs::read_to_string(&config).unwrap();
    let with_alice = format!(
        "{original}\n[agent_mail]\nrequire_authentication = false\n\n[[agents]]\nname = \"Alice\"\naddress = \"alice@example.test\"\ntiers = [\"L1\"]\n"
    );
    std::fs::write(&config, &with_alice).unwrap();
    hangup();
    wait_for_log("reloaded the roster");
    deliver(2);
    assert_eq!(assignee_of(2), "alice@example.test");

    // A typo: refused, Alice still on the roster.
    std::fs::write(
        &config,
        with_alice.replace("tiers = [\"L1\"]", "tiers = [\"L9\"]"),
    )
    .unwrap();
    hangup();
    wait_for_log("reload refused");
    assert!(std::fs::read_to_string(&log).unwrap().contains("L9"));
    deliver(3);
    assert_eq!(assignee_of(3), "alice@example.test");

    Command::new("kill")
        .args(["-TERM", &gateway.id().to_string()])
        .status()
        .unwrap();
    assert!(gateway.wait().unwrap().success());
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = helpdesk(&["--version"]);
    assert!(out.status.success());
    let version = stdout(&out);
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git (the tests run in a checkout)");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    assert_eq!(head.len(), 12, "git rev-parse gave {head:?}");
    assert!(
        version.starts_with(&format!(
            "helpdesk {} (commit {head}",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );
}

#[test]
fn completions_are_scripts_each_shell_reads() {
    let out = helpdesk(&["completions", "bash"]);
    assert!(out.status.success());
    let script = stdout(&out);
    for word in ["tickets", "escalate", "oauth", "check-config", "--no-send"] {
        assert!(script.contains(word), "bash completion lacks {word}");
    }
    // bash parses it and defines the completion.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.bash"), &script).unwrap();
    let check = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p helpdesk",
            dir.path().join("c.bash").display()
        ))
        .output()
        .unwrap();
    assert!(
        check.status.success() && stdout(&check).contains("_helpdesk"),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for shell in ["zsh", "fish"] {
        let out = helpdesk(&["completions", shell]);
        assert!(
            out.status.success() && stdout(&out).contains("oauth"),
            "{shell}"
        );
    }
    assert_eq!(helpdesk(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn ingest_shows_progress_at_a_terminal_and_nothing_in_a_log() {
    let (dir, config) = init_desk();
    let files: Vec<String> = (0..120)
        .map(|i| {
            let path = dir.path().join(format!("m{i}.eml"));
            std::fs::write(
                &path,
                customer_mail(
                    &format!("c{i}@example.test"),
                    &format!("Question {i}"),
                    &format!("progress-{i}@example.test"),
                    "Hello",
                ),
            )
            .unwrap();
            path.display().to_string()
        })
        .collect();
    // Not a terminal: standard error stays empty.
    let mut args = vec!["--config", config.as_str(), "ingest", "--no-send"];
    args.extend(files[..60].iter().map(String::as_str));
    let out = helpdesk(&args);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 60);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A terminal (script(1) gives the command one): the progress line is drawn on it,
    // while the results still go to standard output.
    let listing = dir.path().join("out.txt");
    let command = format!(
        "{} --config {config} ingest --no-send {} > {}",
        env!("CARGO_BIN_EXE_helpdesk"),
        files[60..].join(" "),
        listing.display()
    );
    let tty = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("HELPDESK_LOG", "warn")
        .output()
        .expect("script(1), from util-linux");
    assert!(tty.status.success());
    let drawn = String::from_utf8_lossy(&tty.stdout);
    assert!(drawn.contains("/60 mails filed"), "{drawn}");
    let listed = std::fs::read_to_string(&listing).unwrap();
    assert_eq!(listed.lines().count(), 60, "{listed}");
    assert!(!listed.contains("mails filed"));
}

/// `backup` while the gateway files a backlog: every copy is whole (integrity checked, each
/// ticket with its messages), later copies hold more; the last, restored into a new desk,
/// has every ticket and message. `restore` refuses to replace a desk unless told.
#[test]
fn a_backup_taken_during_a_backlog_restores_every_ticket_and_message() {
    const MAILS: usize = 400;
    let (dir, config) = init_desk();
    let maildir = dir.path().join("Maildir");
    // The database exists before the backlog arrives (a desk already running).
    let mut gateway = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", &config, "run"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("helpdesk.db").exists() {
        assert!(Instant::now() < deadline, "no database");
        std::thread::sleep(Duration::from_millis(20));
    }
    for i in 0..MAILS {
        let tmp = maildir.join(format!("tmp/{i}.m"));
        std::fs::write(
            &tmp,
            customer_mail(
                &format!("c{i}@example.com"),
                &format!("Backlog {i}"),
                &format!("backup-{i}@example.com"),
                "Please help.",
            ),
        )
        .unwrap();
        std::fs::rename(&tmp, maildir.join(format!("new/{i}.m"))).unwrap();
    }
    let tickets_of = |line: &str| -> i64 {
        line.split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut taken = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let file = dir.path().join(format!("backup-{}.db", taken.len()));
        let out = helpdesk(&["--config", &config, "backup", file.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tickets = tickets_of(&stdout(&out));
        // Whole: every ticket in the copy has its customer's message.
        let db = rusqlite::Connection::open(&file).unwrap();
        let orphans: i64 = db
            .query_row(
                "SELECT COUNT(*) FROM tickets t WHERE NOT EXISTS \
                 (SELECT 1 FROM messages m WHERE m.ticket_id = t.id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            orphans,
            0,
            "a ticket without its message in {}",
            file.display()
        );
        taken.push((file, tickets));
        if tickets as usize == MAILS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the backlog was not filed: {taken:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(taken.windows(2).all(|w| w[0].1 <= w[1].1), "{taken:?}");
    assert!(
        taken.iter().any(|(_, n)| *n > 0 && (*n as usize) < MAILS),
        "no copy was taken while the backlog was being filed: {taken:?}"
    );
    // A backup never overwrites.
    let last = taken.last().unwrap().0.clone();
    let again = helpdesk(&["--config", &config, "backup", last.to_str().unwrap()]);
    assert!(!again.status.success());
    Command::new("kill")
        .arg("-TERM")
        .arg(gateway.id().to_string())
        .status()
        .unwrap();
    assert!(gateway.wait().unwrap().success());

    // Restored into a new desk: every ticket, each with its message.
    let (fresh, fresh_config) = init_desk();
    let out = helpdesk(&["--config", &fresh_config, "restore", last.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains(&format!("{MAILS} tickets")),
        "{}",
        stdout(&out)
    );
    let list = helpdesk(&["--config", &fresh_config, "tickets", "list", "--json"]);
    let restored: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let original = helpdesk(&["--config", &config, "tickets", "list", "--json"]);
    let original: serde_json::Value = serde_json::from_slice(&original.stdout).unwrap();
    let codes = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["code"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(codes(&restored).len(), MAILS);
    assert_eq!(codes(&restored), codes(&original));
    let db = rusqlite::Connection::open(fresh.path().join("helpdesk.db")).unwrap();
    let messages: i64 = db
        .query_row("SELECT COUNT(DISTINCT ticket_id) FROM messages", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(messages as usize, MAILS);
    // The desk is there now: a second restore needs --replace.
    let out = helpdesk(&[
        "--config",
        &fresh_config,
        "restore",
        taken[0].0.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--replace"));
    let out = helpdesk(&[
        "--config",
        &fresh_config,
        "restore",
        "--replace",
        taken[0].0.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Something that is not a backup is refused before anything is replaced.
    let junk = fresh.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    let out = helpdesk(&[
        "--config",
        &fresh_config,
        "restore",
        "--replace",
        junk.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(fresh.path().join("helpdesk.db").exists());
}
