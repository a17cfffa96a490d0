//! A real Cyrus IMAP 3.6 server on loopback (`scripts/cyrus-stack.sh`), the second IMAP
//! server the source is tested against: personal folders under `INBOX.`, unsolicited
//! FETCH responses for other clients' flag changes. Stopped on drop; a missing install
//! fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use helpdesk::config::{ImapSettings, TlsMode};
use helpdesk::ingest::imap::{ImapSession, connect};
use tempfile::TempDir;

pub struct Cyrus {
    dir: TempDir,
    pub port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cyrus-stack.sh")
}

impl Cyrus {
    /// Starts Cyrus; `extra_conf` lines are added to its imapd.conf (e.g. to hide MOVE).
    pub fn start(extra_conf: &str) -> Cyrus {
        let dir = tempfile::Builder::new()
            .prefix("helpdesk-cyrus-")
            .tempdir()
            .unwrap();
        let [port] = super::stack::free_ports();
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(dir.path())
            .env("CYRUS_IMAP_PORT", port.to_string())
            .env("CYRUS_EXTRA_CONF", extra_conf)
            .output()
            .expect("run scripts/cyrus-stack.sh");
        assert!(
            out.status.success(),
            "Cyrus failed to start (scripts/test installs it):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cyrus { dir, port }
    }

    pub fn settings(&self, user: &str) -> ImapSettings {
        ImapSettings {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: TlsMode::Plain,
            username: user.into(),
            login: helpdesk::config::Login::Password(format!("{user}-pw").into()),
            ca_file: None,
            mailbox: "INBOX".into(),
            processed_folder: "Processed".into(),
            quarantine_folder: "Quarantine".into(),
            poll_interval: Duration::from_secs(600),
            idle: true,
            idle_timeout: Duration::from_secs(25 * 60),
            batch_size: 200,
        }
    }

    pub async fn session(&self, user: &str) -> ImapSession {
        connect(&self.settings(user)).await.expect("Cyrus login")
    }

    pub async fn append(&self, user: &str, raws: &[Vec<u8>]) {
        let mut s = self.session(user).await;
        for raw in raws {
            s.append("INBOX", None, None, raw).await.expect("APPEND");
        }
        s.logout().await.ok();
    }

    /// Full messages in a folder, by its full name.
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        super::stack::folder_messages(self.session(user).await, folder).await
    }
}

impl Drop for Cyrus {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}
