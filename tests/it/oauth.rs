//! OAuth2 sign-in for real: Dovecot's oauth2 passdb checks the gateway's tokens at the
//! test's token server (tests/it/support/token_server.rs), for IMAP and, through Dovecot
//! SASL, for Postfix's submission port. The gateway runs as `helpdesk run`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::customer_mail;
use crate::support::stack::MailStack;
use crate::support::token_server::{CLIENT_ID, CLIENT_SECRET, TokenServer};

const SUPPORT: &str = "support@example.test";

/// A `helpdesk run` child, stopped (SIGKILL) on drop whatever the test did.
struct Gateway {
    child: Child,
    log: PathBuf,
}

impl Gateway {
    fn start(config: &Path) -> Gateway {
        let log = config.with_file_name("gateway.log");
        let child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
            .args(["--config", config.to_str().unwrap(), "run"])
            .env("HELPDESK_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Gateway { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the process to end by itself.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway still runs after {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client secret and a refresh token in files, as an operator would keep them.
fn secrets(dir: &Path, tokens: &TokenServer) -> PathBuf {
    std::fs::write(dir.join("client-secret"), format!("{CLIENT_SECRET}\n")).unwrap();
    let refresh = dir.join("refresh-token");
    std::fs::write(&refresh, tokens.new_refresh_token(SUPPORT)).unwrap();
    refresh
}

fn oauth2_section(tokens: &TokenServer, grant: &str) -> String {
    format!(
        r#"
[oauth2]
provider = "custom"
client_id = "{CLIENT_ID}"
client_secret_file = "client-secret"
token_url = "{token}"
device_url = "{device}"
scopes = ["imap", "smtp"]
{grant}
"#,
        token = tokens.url("/token"),
        device = tokens.url("/device"),
    )
}

/// The mail stack's gateway configuration, both sides logging in with OAuth2.
fn imap_and_smtp_config(stack: &MailStack, tokens: &TokenServer) -> String {
    let config = stack
        .gateway_config("starttls", "")
        .replace("password = \"support-pw\"", "auth = \"oauth2\"");
    assert_eq!(config.matches("auth = \"oauth2\"").count(), 2);
    config + &oauth2_section(tokens, "refresh_token_file = \"refresh-token\"")
}

/// The customer's inbox once it holds `n` mails; the gateway's log if it never does.
async fn wait_inbox(stack: &MailStack, n: usize, gateway: &Gateway) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mails = stack.messages("customer", "INBOX").await;
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} mails in customer's inbox; the gateway's log:\n{}\nDovecot:\n{}\nPostfix:\n{}",
            mails.len(),
            gateway.log(),
            std::fs::read_to_string(stack.dir().join("log/dovecot.log")).unwrap_or_default(),
            std::fs::read_to_string(stack.dir().join("log/postfix.log")).unwrap_or_default(),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn assert_no_secret(log: &str, tokens: &TokenServer) {
    for secret in tokens
        .issued()
        .iter()
        .map(String::as_str)
        .chain([CLIENT_SECRET])
    {
        assert!(
            !log.contains(secret),
            "a secret is in the log: {secret}\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_logs_in_with_tokens_refreshes_them_and_stops_on_a_revoked_grant() {
    let tokens = TokenServer::start(SUPPORT).await;
    let introspect = tokens.url("/introspect");
    let stack = MailStack::start_with_oauth2(&introspect);
    let dir = tempfile::tempdir().unwrap();
    let refresh = secrets(dir.path(), &tokens);
    let first_refresh = std::fs::read_to_string(&refresh).unwrap();
    let config = dir.path().join("helpdesk.toml");
    std::fs::write(&config, imap_and_smtp_config(&stack, &tokens)).unwrap();
    let mut gateway = Gateway::start(&config);

    // 1. Both sides log in with tokens: a mail is filed and acknowledged.
    stack
        .deliver(
            "customer@example.test",
            SUPPORT,
            &customer_mail(
                "customer@example.test",
                "VPN down",
                "oauth-1@example.test",
                "The VPN refuses me.",
            ),
        )
        .await;
    let inbox = wait_inbox(&stack, 1, &gateway).await;
    assert!(
        String::from_utf8_lossy(&inbox[0]).contains("[HD-"),
        "an acknowledgement"
    );
    let dovecot = std::fs::read_to_string(stack.dir().join("log/dovecot.log")).unwrap();
    assert!(
        dovecot.contains("method=OAUTHBEARER"),
        "the source logs in with OAUTHBEARER, which Dovecot offers:\n{dovecot}"
    );
    let postfix = std::fs::read_to_string(stack.dir().join("log/postfix.log")).unwrap();
    assert!(
        postfix.contains("sasl_method=XOAUTH2"),
        "the outbox logs in to Postfix with XOAUTH2:\n{postfix}"
    );
    // One grant for the start, shared by both sides; the rotated token was saved, privately.
    assert_eq!(tokens.grants("refresh_token"), 1, "{}", gateway.log());
    let saved = std::fs::read_to_string(&refresh).unwrap();
    assert_ne!(saved, first_refresh, "the rotated refresh token is saved");
    assert_eq!(
        tokens.current_refresh_tokens(),
        vec![saved.trim().to_string()]
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&refresh).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // 2. The server drops every access token; the connections drop too. The gateway's
    // token is refused at its next login, and it gets a new one and carries on.
    tokens.expire_access_tokens();
    stack.kick(SUPPORT);
    stack.restart(&[("OAUTH2_INTROSPECTION_URL", &introspect)]);
    stack
        .deliver(
            "customer@example.test",
            SUPPORT,
            &customer_mail(
                "customer@example.test",
                "Printer jam",
                "oauth-2@example.test",
                "Paper stuck.",
            ),
        )
        .await;
    wait_inbox(&stack, 2, &gateway).await;
    let log = gateway.log();
    assert!(
        log.contains("the IMAP server refused the access token: asking for a new one"),
        "{log}"
    );
    assert!(tokens.grants("refresh_token") >= 2, "{log}");
    assert!(log.contains("got a new OAuth2 access token"), "{log}");
    assert!(log.contains("saved the rotated refresh token"), "{log}");

    // 3. The grant is revoked: the source stops the gateway with the key to fix.
    tokens.revoke_refresh_tokens();
    tokens.expire_access_tokens();
    stack.kick(SUPPORT);
    let status = gateway.wait_exit(Duration::from_secs(90));
    assert!(!status.success());
    let log = gateway.log();
    assert!(log.contains("oauth2.refresh_token_file"), "{log}");
    assert!(log.contains("helpdesk oauth login"), "{log}");
    assert!(log.contains("invalid_grant"), "{log}");
    assert_no_secret(&log, &tokens);
    println!("{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_outbox_stops_on_a_revoked_grant_and_keeps_the_mail() {
    let tokens = TokenServer::start(SUPPORT).await;
    let introspect = tokens.url("/introspect");
    let stack = MailStack::start_with_oauth2(&introspect);
    let dir = tempfile::tempdir().unwrap();
    secrets(dir.path(), &tokens);
    // Mail comes from a Maildir; only the outbox logs in.
    let maildir = dir.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    let smtp = imap_and_smtp_config(&stack, &tokens);
    let outbox = &smtp[smtp.find("[outbox]").unwrap()..];
    let config = format!(
        "[gateway]\nsupport_address = \"{SUPPORT}\"\ndefault_language = \"en\"\n\n\
         [database]\nurl = \"sqlite:helpdesk.db\"\n\n[source]\nkind = \"maildir\"\n\n\
         [source.maildir]\npath = \"Maildir\"\npoll_interval = \"200ms\"\n\n{outbox}"
    );
    let config_path = dir.path().join("helpdesk.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut gateway = Gateway::start(&config_path);
    // Logged in at start (the first token), then everything is revoked.
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokens.grants("refresh_token") == 0 {
        assert!(Instant::now() < deadline, "{}", gateway.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokens.revoke_refresh_tokens();
    tokens.expire_access_tokens();
    std::fs::write(
        maildir.join("new/1.eml"),
        customer_mail(
            "customer@example.test",
            "Wifi",
            "oauth-3@example.test",
            "No wifi.",
        ),
    )
    .unwrap();
    let status = gateway.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    let log = gateway.log();
    assert!(log.contains("the outbox cannot log in"), "{log}");
    assert!(log.contains("oauth2.refresh_token_file"), "{log}");
    assert_no_secret(&log, &tokens);
    // The acknowledgement waits, not failed, for the sign-in to be fixed.
    let out = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args([
            "--config",
            config_path.to_str().unwrap(),
            "tickets",
            "list",
            "--json",
        ])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let code = list[0]["code"].as_str().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args([
            "--config",
            config_path.to_str().unwrap(),
            "tickets",
            "show",
            &code,
            "--json",
        ])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("mail_failed"), "{shown}");
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite:{}",
        dir.path().join("helpdesk.db").display()
    ))
    .await
    .unwrap();
    let (pending,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(pending, 1, "the acknowledgement is still queued");
}

#[tokio::test(flavor = "multi_thread")]
async fn check_config_refreshes_a_token_and_oauth_login_writes_one() {
    let tokens = TokenServer::start(SUPPORT).await;
    let stack = MailStack::start_with_oauth2(&tokens.url("/introspect"));
    let dir = tempfile::tempdir().unwrap();
    secrets(dir.path(), &tokens);
    let config = dir.path().join("helpdesk.toml");
    let path = config.to_str().unwrap();
    std::fs::write(&config, imap_and_smtp_config(&stack, &tokens)).unwrap();

    let out = crate::support::helpdesk(&["--config", path, "check-config"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("oauth2: token refresh ok"), "{stdout}");
    assert_eq!(tokens.grants("refresh_token"), 1);

    // Revoked: check-config says which key, exit 78.
    tokens.revoke_refresh_tokens();
    let out = crate::support::helpdesk(&["--config", path, "check-config"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("oauth2.refresh_token_file"), "{stderr}");
    assert!(stderr.contains("helpdesk oauth login"), "{stderr}");
    // `run` refuses to start the same way, before touching any mail.
    let out = crate::support::helpdesk(&["--config", path, "run"]);
    assert_eq!(out.status.code(), Some(78));

    // The device flow: the URL and code are shown, and the refresh token is written.
    let out = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .args(["--config", path, "oauth", "login", "--provider", "custom"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Open https://login.example.test/device and enter the code WDJB-MJHT"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(dir.path().join("refresh-token")).unwrap();
    assert_eq!(
        tokens.current_refresh_tokens(),
        vec![written.trim().to_string()]
    );
    assert_eq!(
        tokens.grants("urn:ietf:params:oauth:grant-type:device_code"),
        2
    );
    let out = crate::support::helpdesk(&["--config", path, "check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_secret(&stdout, &tokens);

    // Client credentials (app-only): no refresh token file, the client's secret.
    let app_only = std::fs::read_to_string(&config)
        .unwrap()
        .replace("refresh_token_file = \"refresh-token\"", "");
    std::fs::write(&config, app_only).unwrap();
    let out = crate::support::helpdesk(&["--config", path, "check-config"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(tokens.grants("client_credentials"), 1);
    // A wrong provider for the section is refused by name.
    let out =
        crate::support::helpdesk(&["--config", path, "oauth", "login", "--provider", "google"]);
    assert_eq!(out.status.code(), Some(65));
}
