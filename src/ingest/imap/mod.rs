//! The IMAP source: reads new mail by UID, files it, then moves it out of the inbox.
//!
//! Progress is the pair (UIDVALIDITY, last committed UID) kept in the database and
//! advanced in the same transaction as each mail's outcome; `\Seen` is never used, so a
//! person reading the mailbox with another client changes nothing. Mail is fetched with
//! `BODY.PEEK[]` and moved (MOVE, or COPY + EXPUNGE) only after its outcome is committed.
//! Mail left in the inbox by a crash between commit and move is recognised by its UID and
//! moved on the next pass, never filed twice.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::sync::CancellationToken;

use crate::config::{ImapSettings, Login, TlsMode};
use crate::pipeline::{Pipeline, SourceRef};
use crate::store::{Checkpoint, StoredOutcome};

mod batch;
mod connection;
mod folders;

use batch::*;
pub use connection::{ImapConn, ImapSession, connect, tls_connector};
use folders::*;

/// Mails committed together. Large enough to spare thousands of commits on a backlog,
/// small enough that a shutdown finishes the group in hand within milliseconds.
const COMMIT_GROUP: usize = 50;

/// What one pass over the mailbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub processed: usize,
    pub moved: usize,
    /// The pass stopped early because of shutdown.
    pub interrupted: bool,
}

/// Counters a test or an operator can read while the source runs.
#[derive(Debug, Default)]
pub struct ImapStats {
    /// Times the source entered IDLE.
    pub idle_entered: AtomicU64,
    /// Times IDLE ended because the server announced a change (not a timeout).
    pub idle_woken: AtomicU64,
    /// NOOPs sent while lingering after mail.
    pub noops: AtomicU64,
    /// Passes over the mailbox.
    pub passes: AtomicU64,
    /// FETCH responses set aside because they were not a body asked for (another client's
    /// flag change reported in the middle of our fetch).
    pub unsolicited_fetches: AtomicU64,
    /// Mails found still in the inbox after their copy (without MOVE, another client
    /// wiped our `\Deleted`): flagged and expunged again instead of copied again.
    pub copies_not_repeated: AtomicU64,
}

/// The folders filed mail goes to, as named on this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Folders {
    pub processed: String,
    pub quarantine: String,
}

pub struct ImapSource {
    settings: ImapSettings,
    /// How many mailboxes the configuration reads (this one among them).
    mailboxes: usize,
    /// The gateway reading it, as its leases name it.
    holder: String,
    pipeline: Arc<Pipeline>,
    stats: Arc<ImapStats>,
    folders: std::sync::Mutex<Option<Folders>>,
}

impl ImapSource {
    pub fn new(settings: ImapSettings, pipeline: Arc<Pipeline>) -> Self {
        Self::with_stats(settings, pipeline, Arc::default())
    }

    pub fn with_stats(
        settings: ImapSettings,
        pipeline: Arc<Pipeline>,
        stats: Arc<ImapStats>,
    ) -> Self {
        Self {
            settings,
            mailboxes: 1,
            holder: crate::lease::new_holder(),
            pipeline,
            stats,
            folders: std::sync::Mutex::new(None),
        }
    }

    /// One of `n` mailboxes read by the gateway `holder` among others sharing the store.
    pub fn one_of(mut self, n: usize, holder: &str) -> Self {
        self.mailboxes = n;
        self.holder = holder.to_string();
        self
    }

    pub fn stats(&self) -> &Arc<ImapStats> {
        &self.stats
    }

    /// The name under which this mailbox's checkpoint is kept: `imap://user@host/INBOX`.
    fn mailbox_key(&self) -> String {
        format!(
            "imap://{}@{}/{}",
            self.settings.username, self.settings.host, self.settings.mailbox
        )
    }

    fn source_key(&self, uid_validity: u32, uid: u32) -> String {
        format!(
            "{};UIDVALIDITY={uid_validity}/;UID={uid}",
            self.mailbox_key()
        )
    }

    /// The folders as prepared, or as configured if `prepare` was not called.
    pub fn folders(&self) -> Folders {
        self.folders
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .unwrap_or_else(|| Folders {
                processed: self.settings.processed_folder.clone(),
                quarantine: self.settings.quarantine_folder.clone(),
            })
    }

    /// Finds where this server keeps personal folders (NAMESPACE, RFC 2342), names the
    /// target folders there, and makes sure both exist. Fails with the server's own words
    /// when a folder can neither be found nor created: a source that cannot move mail
    /// must say so at start, not file silently while mail piles up in the inbox.
    pub async fn prepare(&self, session: &mut ImapSession) -> Result<Folders> {
        let caps = session.capabilities().await?;
        let personal = if caps.has_str("NAMESPACE") {
            personal_namespace(session).await?
        } else {
            None
        };
        let folders = Folders {
            processed: folder_name(&self.settings.processed_folder, personal.as_ref()),
            quarantine: folder_name(&self.settings.quarantine_folder, personal.as_ref()),
        };
        for (key, folder) in [
            ("source.imap.processed_folder", &folders.processed),
            ("source.imap.quarantine_folder", &folders.quarantine),
        ] {
            ensure_folder(session, key, folder).await?;
        }
        tracing::debug!(?personal, ?folders, "IMAP folders ready");
        if let Ok(mut slot) = self.folders.lock() {
            *slot = Some(folders.clone());
        }
        Ok(folders)
    }

    /// Selects the mailbox, finishes what earlier passes left (moves, and mail below the
    /// checkpoint that has no record), then files every new mail.
    pub async fn pass(
        &self,
        session: &mut ImapSession,
        shutdown: &CancellationToken,
    ) -> Result<PassReport> {
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        let mailbox = session
            .select(&self.settings.mailbox)
            .await
            .with_context(|| format!("cannot select {}", self.settings.mailbox))?;
        let uid_validity = mailbox.uid_validity.unwrap_or(0);
        let key = self.mailbox_key();
        let store = self.pipeline.store();
        let last = match store.checkpoint(&key).await? {
            Some(c) if c.uid_validity == uid_validity => c.last_uid,
            Some(c) => {
                tracing::warn!(mailbox = %key, old = c.uid_validity, new = uid_validity, "UIDVALIDITY changed: reading the mailbox again (Message-IDs prevent double filing)");
                0
            }
            None => 0,
        };
        let mut report = PassReport::default();

        if last > 0 {
            let leftovers: BTreeSet<u32> = session
                .uid_search(format!("UID 1:{last}"))
                .await?
                .into_iter()
                .filter(|u| *u <= last)
                .collect();
            if !leftovers.is_empty() {
                let unfiled = self
                    .move_committed(session, uid_validity, &leftovers, &mut report)
                    .await?;
                if !unfiled.is_empty() {
                    tracing::warn!(
                        uids = %uid_set(&unfiled),
                        "mail below the checkpoint has no record: filing it now"
                    );
                    self.file_uids(session, uid_validity, &unfiled, shutdown, &mut report)
                        .await?;
                    if report.interrupted {
                        return Ok(report);
                    }
                }
            }
        }

        let fresh: BTreeSet<u32> = session
            .uid_search(format!("UID {}:*", last + 1))
            .await?
            .into_iter()
            .filter(|u| *u > last)
            .collect();
        let fresh: Vec<u32> = fresh.into_iter().collect();
        self.file_uids(session, uid_validity, &fresh, shutdown, &mut report)
            .await?;
        Ok(report)
    }

    /// Connects, files everything, then waits (IDLE or polling) for more, until `shutdown`.
    /// Connection errors are logged and retried with back-off; nothing is lost meanwhile.
    /// Returns an error only when no login can succeed until a person acts (a revoked
    /// OAuth2 grant): retrying would only fill the log.
    ///
    /// Several gateways on one store read each mailbox one at a time: the source works only
    /// while it holds the mailbox's lease (see [`crate::lease`]), and stands by otherwise.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let lease = crate::lease::Lease::new(
            self.pipeline.store().clone(),
            crate::lease::source(&self.mailbox_key()),
            &self.holder,
        )
        .shared_by(self.mailboxes);
        let mut backoff = Duration::from_secs(1);
        while lease.acquire(&shutdown).await {
            let held = shutdown.child_token();
            let keeper = lease.keep(held.clone());
            let (result, ()) = tokio::join!(
                async {
                    let result = self.session_loop(&held).await;
                    held.cancel();
                    result
                },
                keeper
            );
            if shutdown.is_cancelled() {
                lease.release().await;
                break;
            }
            match result {
                // The lease was lost: stand by again.
                Ok(()) => {}
                Err(e)
                    if e.downcast_ref::<crate::oauth::OAuthError>()
                        .is_some_and(|o| o.is_permanent()) =>
                {
                    tracing::error!(error = %e, "the IMAP source cannot log in: stopping");
                    lease.release().await;
                    return Err(e.context("the IMAP source cannot log in"));
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), retry_in = ?backoff, "IMAP source failed");
                    // Another gateway may reach the server meanwhile.
                    lease.release().await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(120));
                }
            }
        }
        Ok(())
    }

    async fn session_loop(&self, shutdown: &CancellationToken) -> Result<()> {
        let mut session = connect(&self.settings).await?;
        let metrics = crate::metrics::metrics();
        metrics.imap_connected.set(1);
        // Back to 0 however the session ends (logout, error, shutdown).
        let _connected = Lowered(&metrics.imap_connected);
        self.prepare(&mut session).await?;
        let idle = self.settings.idle && session.capabilities().await?.has_str("IDLE");
        tracing::info!(host = %self.settings.host, mailbox = %self.settings.mailbox, idle, "IMAP source connected");
        let mut last_busy: Option<std::time::Instant> = None;
        loop {
            let report = self.pass(&mut session, shutdown).await?;
            if report.processed > 0 || report.moved > 0 {
                tracing::debug!(?report, "IMAP pass");
            }
            if shutdown.is_cancelled() {
                session.logout().await.ok();
                return Ok(());
            }
            if report.processed > 0 {
                last_busy = Some(std::time::Instant::now());
                continue;
            }
            if new_mail_announced(&session) {
                continue;
            }
            // While mail is flowing, ask with NOOP (RFC 3501 §6.1.2: the way to poll for
            // new mail) every few milliseconds for a moment before settling into IDLE:
            // some servers announce new mail to an idling client only after a delay of
            // their own (Dovecot: 0.5 s), which would be every mail's wait under load.
            if let Some(busy) = last_busy
                && busy.elapsed() < LINGER
            {
                if self.linger(&mut session, busy, shutdown).await? {
                    continue;
                }
                last_busy = None;
            }
            if idle {
                let mut handle = session.idle();
                handle.init().await.context("IDLE refused")?;
                self.stats.idle_entered.fetch_add(1, Ordering::Relaxed);
                let (wait, stop) = handle.wait_with_timeout(self.settings.idle_timeout);
                metrics.imap_idle.set(1);
                let idling = Lowered(&metrics.imap_idle);
                let woke = tokio::select! {
                    r = wait => Some(r),
                    _ = shutdown.cancelled() => None,
                };
                drop(idling);
                drop(stop);
                session = handle.done().await.context("ending IDLE")?;
                match woke {
                    None => {
                        session.logout().await.ok();
                        return Ok(());
                    }
                    Some(Ok(IdleResponse::NewData(_))) => {
                        self.stats.idle_woken.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!("IDLE: mailbox changed")
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e).context("IDLE failed"),
                }
            } else {
                tokio::select! {
                    _ = shutdown.cancelled() => {
                        session.logout().await.ok();
                        return Ok(());
                    }
                    _ = tokio::time::sleep(self.settings.poll_interval) => {}
                }
            }
        }
    }
}

/// Sets a 0/1 gauge back to 0 when dropped.
struct Lowered<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for Lowered<'_> {
    fn drop(&mut self) {
        self.0.set(0);
    }
}

/// How long after the last mail the source keeps polling with NOOP before it idles.
const LINGER: Duration = Duration::from_secs(2);
/// The NOOP interval meanwhile.
const LINGER_POLL: Duration = Duration::from_millis(20);

impl ImapSource {
    /// NOOP every [`LINGER_POLL`] until the server announces mail (true) or [`LINGER`] after
    /// `busy` passes without any (false).
    async fn linger(
        &self,
        session: &mut ImapSession,
        busy: std::time::Instant,
        shutdown: &CancellationToken,
    ) -> Result<bool> {
        while busy.elapsed() < LINGER && !shutdown.is_cancelled() {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(false),
                _ = tokio::time::sleep(LINGER_POLL) => {}
            }
            session.noop().await.context("NOOP")?;
            self.stats.noops.fetch_add(1, Ordering::Relaxed);
            if new_mail_announced(session) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn new_mail_announced(session: &ImapSession) -> bool {
    let mut announced = false;
    while let Ok(response) = session.unsolicited_responses.try_recv() {
        if matches!(
            response,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        ) {
            announced = true;
        }
    }
    announced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_namespaces_are_read_from_the_answer() {
        assert_eq!(
            parse_personal_namespace(r#"(("INBOX." ".")) (("user." ".")) (("" "."))"#),
            Some(("INBOX.".into(), ".".into()))
        );
        assert_eq!(
            parse_personal_namespace(r#"(("" "/")) NIL NIL"#),
            Some(("".into(), "/".into()))
        );
        assert_eq!(parse_personal_namespace("NIL NIL NIL"), None);
        assert_eq!(
            parse_personal_namespace(r#"(("" NIL)) NIL NIL"#),
            Some(("".into(), "".into()))
        );
    }

    #[test]
    fn bare_folder_names_go_under_the_personal_prefix_and_full_ones_stay() {
        let cyrus = ("INBOX.".to_string(), ".".to_string());
        let dovecot = (String::new(), ".".to_string());
        assert_eq!(folder_name("Processed", Some(&cyrus)), "INBOX.Processed");
        assert_eq!(
            folder_name("INBOX.Processed", Some(&cyrus)),
            "INBOX.Processed"
        );
        assert_eq!(folder_name("Archive.Filed", Some(&cyrus)), "Archive.Filed");
        assert_eq!(folder_name("Processed", Some(&dovecot)), "Processed");
        assert_eq!(folder_name("Processed", None), "Processed");
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }
}
