//! A real mail system on loopback for one test: Dovecot (IMAP, IMAPS, LMTP) and Postfix
//! (SMTP "MX" port and an authenticated submission port), started by
//! `scripts/mail-stack.sh` in a private folder on free ports, stopped on drop.
//! A missing package or a failed start panics: these tests never skip.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use helpdesk::config::{ImapSettings, TlsMode};
use helpdesk::ingest::imap::{ImapSession, connect};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tempfile::TempDir;

pub struct MailStack {
    dir: TempDir,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub smtp_port: u16,
    pub submission_port: u16,
    /// Submission with TLS from the first byte (SMTPS), AUTH required.
    pub smtps_port: u16,
}

/// `N` loopback ports for servers a test starts. All are held open while they are chosen
/// (so they differ from each other), and none is ever handed out twice in this process
/// (tests run in parallel: a port released by one stack's check and taken by another's
/// server made a test talk to the wrong Postfix).
pub fn free_ports<const N: usize>() -> [u16; N] {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut held = Vec::new();
    let mut ports = Vec::with_capacity(N);
    while ports.len() < N {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if handed_out.insert(port) {
            ports.push(port);
        }
        held.push(listener);
    }
    ports.try_into().expect("N ports")
}

/// PATH with the sbin folders, where Debian puts postfix and dovecot.
fn sbin_path() -> String {
    format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    )
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mail-stack.sh")
}

impl MailStack {
    pub fn start() -> MailStack {
        Self::start_with(&[])
    }

    /// With Dovecot's oauth2 passdb checking tokens at `introspection_url` (IMAP and,
    /// through Dovecot SASL, Postfix's submission).
    pub fn start_with_oauth2(introspection_url: &str) -> MailStack {
        Self::start_with(&[("OAUTH2_INTROSPECTION_URL", introspection_url)])
    }

    /// Ends every IMAP session of `user` (`doveadm kick`): a stopped Dovecot leaves its
    /// running imap processes alone.
    pub fn kick(&self, user: &str) {
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot/dovecot.conf"))
            .args(["kick", user])
            .env("PATH", sbin_path())
            .output()
            .expect("doveadm");
        assert!(
            out.status.success(),
            "doveadm kick {user}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops and starts both servers again (mail kept): every client connection drops.
    pub fn restart(&self, env: &[(&str, &str)]) {
        self.run_script(env);
    }

    fn start_with(env: &[(&str, &str)]) -> MailStack {
        for tool in ["dovecot", "postfix", "openssl"] {
            let found = Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool} || test -x /usr/sbin/{tool}"))
                .output()
                .unwrap();
            assert!(
                found.status.success(),
                "{tool} is not installed: run scripts/test (it installs dovecot-imapd dovecot-lmtpd postfix openssl)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("helpdesk-mailstack-")
            .tempdir()
            .unwrap();
        let [
            imap_port,
            imaps_port,
            smtp_port,
            submission_port,
            smtps_port,
        ] = free_ports();
        let stack = MailStack {
            dir,
            imap_port,
            imaps_port,
            smtp_port,
            submission_port,
            smtps_port,
        };
        stack.run_script(env);
        stack
    }

    fn run_script(&self, env: &[(&str, &str)]) {
        let stack = self;
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(stack.dir.path())
            .env("IMAP_PORT", stack.imap_port.to_string())
            .env("IMAPS_PORT", stack.imaps_port.to_string())
            .env("SMTP_PORT", stack.smtp_port.to_string())
            .env("SUBMISSION_PORT", stack.submission_port.to_string())
            .env("SMTPS_PORT", stack.smtps_port.to_string())
            .env("PATH", sbin_path())
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/mail-stack.sh");
        assert!(
            out.status.success(),
            "mail stack failed to start:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The stack's private folder (configs under `postfix/etc`, logs under `log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Routes mail for `address` to a Postfix `pipe(8)` transport running `argv` as `user`,
    /// as a site delivering into `helpdesk ingest` would configure it.
    pub fn pipe_to(&self, address: &str, user: &str, argv: &str) {
        let etc = self.dir.path().join("postfix/etc");
        std::fs::write(etc.join("transport"), format!("{address} helpdesk:\n")).unwrap();
        let maps = format!(
            "transport_maps = texthash:{}",
            etc.join("transport").display()
        );
        self.postfix(&["conf", "-e", &maps]);
        let service =
            format!("helpdesk/unix=helpdesk unix - n n - - pipe flags=R user={user} argv={argv}");
        self.postfix(&["conf", "-M", &service]);
        self.postfix(&["reload"]);
    }

    /// Runs `postfix -c <etc> ARGS`, or `postqueue`/`postconf` when the first argument is
    /// "queue"/"conf"; returns its output, panics with its words if it fails.
    pub fn postfix(&self, args: &[&str]) -> String {
        let etc = self.dir.path().join("postfix/etc");
        let (tool, rest) = match args.split_first() {
            Some((&"queue", rest)) => ("postqueue", rest),
            Some((&"conf", rest)) => ("postconf", rest),
            _ => ("postfix", args),
        };
        let out = Command::new(tool)
            .arg("-c")
            .arg(&etc)
            .args(rest)
            .env("PATH", sbin_path())
            .output()
            .expect("postfix");
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("tls/ca.pem")
    }

    pub fn imap_settings(&self, user: &str, tls: TlsMode) -> ImapSettings {
        ImapSettings {
            host: "localhost".into(),
            port: if tls == TlsMode::Implicit {
                self.imaps_port
            } else {
                self.imap_port
            },
            tls,
            username: format!("{user}@example.test"),
            login: helpdesk::config::Login::Password(format!("{user}-pw").into()),
            ca_file: Some(self.ca()),
            mailbox: "INBOX".into(),
            processed_folder: "Processed".into(),
            quarantine_folder: "Quarantine".into(),
            poll_interval: Duration::from_secs(600),
            idle: true,
            idle_timeout: Duration::from_secs(25 * 60),
            batch_size: 200,
        }
    }

    pub async fn imap(&self, user: &str) -> ImapSession {
        connect(&self.imap_settings(user, TlsMode::StartTls))
            .await
            .expect("IMAP login")
    }

    /// A gateway config reading support@'s INBOX and sending through submission.
    pub fn gateway_config(&self, imap_tls: &str, extra_imap: &str) -> String {
        let port = if imap_tls == "implicit" {
            self.imaps_port
        } else {
            self.imap_port
        };
        format!(
            r#"[gateway]
support_address = "support@example.test"
support_name = "Support Test"
default_language = "en"

[database]
url = "sqlite:helpdesk.db"

[source]
kind = "imap"

[source.imap]
host = "localhost"
port = {port}
tls = "{imap_tls}"
username = "support@example.test"
password = "support-pw"
ca_file = "{ca}"
poll_interval = "10m"
{extra_imap}

[outbox]
transport = "smtp"
retry_base = "1s"
retry_max = "5s"
max_attempts = 3

[outbox.smtp]
host = "localhost"
port = {submission}
tls = "starttls"
username = "support@example.test"
password = "support-pw"
ca_file = "{ca}"
timeout = "5s"
"#,
            ca = self.ca().display(),
            submission = self.submission_port,
        )
    }

    /// Sends over the MX port, as a customer's provider would deliver it.
    pub async fn deliver(&self, from: &str, to: &str, raw: &[u8]) {
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(self.smtp_port)
            .build();
        let envelope =
            lettre::address::Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()])
                .unwrap();
        smtp.send_raw(&envelope, raw)
            .await
            .expect("MX accepts the mail");
    }

    /// Appends straight into a mailbox, as a bulk import or another client would.
    pub async fn append(&self, user: &str, mailbox: &str, raws: &[Vec<u8>]) {
        let mut s = self.imap(user).await;
        for raw in raws {
            s.append(mailbox, None, None, raw).await.expect("APPEND");
        }
        s.logout().await.ok();
    }

    /// Full messages in a user's mailbox (BODY.PEEK, nothing is marked read).
    pub async fn messages(&self, user: &str, mailbox: &str) -> Vec<Vec<u8>> {
        folder_messages(self.imap(user).await, mailbox).await
    }

    /// Polls until `user`'s mailbox holds at least `n` messages, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        user: &str,
        mailbox: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let msgs = self.messages(user, mailbox).await;
            if msgs.len() >= n {
                return msgs;
            }
            assert!(
                Instant::now() < deadline,
                "{user}/{mailbox}: {} of {n} messages after {timeout:?}",
                msgs.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Every message of `folder` (BODY.PEEK, nothing is marked read), then logs out. A folder
/// that does not exist holds nothing.
pub async fn folder_messages(mut s: ImapSession, folder: &str) -> Vec<Vec<u8>> {
    let Ok(mb) = s.select(folder).await else {
        return Vec::new();
    };
    if mb.exists == 0 {
        s.logout().await.ok();
        return Vec::new();
    }
    let fetched: Vec<_> = s
        .fetch("1:*", "BODY.PEEK[]")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let out = fetched
        .iter()
        .filter_map(|f| f.body().map(<[u8]>::to_vec))
        .collect();
    s.logout().await.ok();
    out
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .env("PATH", sbin_path())
            .output();
    }
}
