//! The IMAP source: reads new mail by UID, files it, then moves it out of the inbox.
//!
//! Progress is the pair (UIDVALIDITY, last committed UID) kept in the database and
//! advanced in the same transaction as each mail's outcome; `\Seen` is never used, so a
//! person reading the mailbox with another client changes nothing. Mail is fetched with
//! `BODY.PEEK[]` and moved (MOVE, or COPY + EXPUNGE) only after its outcome is committed.
//! Mail left in the inbox by a crash between commit and move is recognised by its UID and
//! moved on the next pass, never filed twice.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
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

use crate::config::{ImapSettings, TlsMode};
use crate::pipeline::{Pipeline, SourceRef};
use crate::store::{Checkpoint, StoredOutcome};

/// A connection that is TLS or (on loopback, when configured) plain.
pub enum ImapConn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for ImapConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ImapConn::Plain(_) => "ImapConn::Plain",
            ImapConn::Tls(_) => "ImapConn::Tls",
        })
    }
}

impl AsyncRead for ImapConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapConn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapConn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ImapConn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapConn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapConn::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapConn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ImapConn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapConn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type ImapSession = async_imap::Session<ImapConn>;

/// Mails committed together. Large enough to spare thousands of commits on a backlog,
/// small enough that a shutdown finishes the group in hand within milliseconds.
const COMMIT_GROUP: usize = 50;

/// Opens a logged-in session as the settings say (implicit TLS, STARTTLS or plain).
pub async fn connect(settings: &ImapSettings) -> Result<ImapSession> {
    let target = format!("{}:{}", settings.host, settings.port);
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port))
        .await
        .with_context(|| format!("cannot connect to IMAP server {target}"))?;
    tcp.set_nodelay(true).ok();
    let client = match settings.tls {
        TlsMode::Plain => {
            let mut client = async_imap::Client::new(ImapConn::Plain(tcp));
            client
                .read_response()
                .await?
                .ok_or_else(|| anyhow!("no greeting from IMAP server {target}"))?;
            client
        }
        TlsMode::Implicit => {
            let tls = tls_connector(settings)?
                .connect(server_name(&settings.host)?, tcp)
                .await
                .with_context(|| format!("TLS handshake with IMAP server {target} failed"))?;
            let mut client = async_imap::Client::new(ImapConn::Tls(Box::new(tls)));
            client
                .read_response()
                .await?
                .ok_or_else(|| anyhow!("no greeting from IMAP server {target}"))?;
            client
        }
        TlsMode::StartTls => {
            let mut client = async_imap::Client::new(tcp);
            client
                .read_response()
                .await?
                .ok_or_else(|| anyhow!("no greeting from IMAP server {target}"))?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .with_context(|| format!("IMAP server {target} refused STARTTLS"))?;
            let tls = tls_connector(settings)?
                .connect(server_name(&settings.host)?, client.into_inner())
                .await
                .with_context(|| format!("TLS handshake with IMAP server {target} failed"))?;
            async_imap::Client::new(ImapConn::Tls(Box::new(tls)))
        }
    };
    client
        .login(&settings.username, settings.password.expose_secret())
        .await
        .map_err(|(e, _)| {
            anyhow!(
                "IMAP login as {} on {target} failed: {e}",
                settings.username
            )
        })
}

fn server_name(host: &str) -> Result<ServerName<'static>> {
    ServerName::try_from(host.to_string())
        .map_err(|e| anyhow!("source.imap.host {host:?} is not a valid TLS server name: {e}"))
}

fn tls_connector(settings: &ImapSettings) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca)
            .with_context(|| format!("source.imap.ca_file: cannot read {}", ca.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(
                cert.with_context(|| format!("source.imap.ca_file: {} is not PEM", ca.display()))?,
            )?;
        }
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// What one pass over the mailbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    pub processed: usize,
    pub moved: usize,
    /// The pass stopped early because of shutdown.
    pub interrupted: bool,
}

pub struct ImapSource {
    settings: ImapSettings,
    pipeline: Arc<Pipeline>,
}

impl ImapSource {
    pub fn new(settings: ImapSettings, pipeline: Arc<Pipeline>) -> Self {
        Self { settings, pipeline }
    }

    /// The name under which this mailbox's checkpoint is kept: `imap://user@host/INBOX`.
    fn mailbox_key(&self) -> String {
        format!(
            "imap://{}@{}/{}",
            self.settings.username, self.settings.host, self.settings.mailbox
        )
    }

    /// Creates the target folders if missing (an "already exists" answer is fine).
    pub async fn prepare(&self, session: &mut ImapSession) -> Result<()> {
        for folder in [
            &self.settings.processed_folder,
            &self.settings.quarantine_folder,
        ] {
            if let Err(e) = session.create(folder).await {
                tracing::debug!(folder = %folder, error = %e, "CREATE refused (usually: exists already)");
            }
        }
        Ok(())
    }

    /// Selects the mailbox, moves what earlier passes committed, then files every new mail.
    pub async fn pass(
        &self,
        session: &mut ImapSession,
        shutdown: &CancellationToken,
    ) -> Result<PassReport> {
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
                report.moved += self
                    .move_committed(session, uid_validity, &leftovers)
                    .await?;
            }
        }

        let fresh: BTreeSet<u32> = session
            .uid_search(format!("UID {}:*", last + 1))
            .await?
            .into_iter()
            .filter(|u| *u > last)
            .collect();
        let fresh: Vec<u32> = fresh.into_iter().collect();
        for chunk in fresh.chunks(self.settings.batch_size as usize) {
            let set = uid_set(chunk);
            let fetch_started = std::time::Instant::now();
            let mut fetched: Vec<_> = session
                .uid_fetch(&set, "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await?;
            fetched.sort_by_key(|f| f.uid);
            tracing::debug!(mails = fetched.len(), took = ?fetch_started.elapsed(), "fetched");
            let mut done = Vec::with_capacity(fetched.len());
            let mut quarantined = Vec::new();
            let items: Vec<(u32, SourceRef, &[u8])> = fetched
                .iter()
                .filter_map(|f| {
                    let uid = f.uid.filter(|u| *u > last)?;
                    let source = SourceRef {
                        key: Some(format!("{key};UIDVALIDITY={uid_validity}/;UID={uid}")),
                        checkpoint: Some((
                            key.clone(),
                            Checkpoint {
                                uid_validity,
                                last_uid: uid,
                            },
                        )),
                    };
                    Some((uid, source, f.body().unwrap_or_default()))
                })
                .collect();
            // Small transactions, so a shutdown waits for at most one of them.
            for group in items.chunks(COMMIT_GROUP) {
                let batch: Vec<(SourceRef, &[u8])> =
                    group.iter().map(|(_, s, raw)| (s.clone(), *raw)).collect();
                let started = std::time::Instant::now();
                let outcomes = self.pipeline.process_batch(&batch).await;
                tracing::debug!(mails = batch.len(), took = ?started.elapsed(), "group committed");
                for ((uid, _, _), outcome) in group.iter().zip(outcomes) {
                    let outcome = match outcome {
                        Ok(o) => o,
                        Err(e) => {
                            // Move what is committed, then give up this pass; the rest
                            // is read again on the next one.
                            self.move_to(session, &done, &self.settings.processed_folder)
                                .await?;
                            self.move_to(session, &quarantined, &self.settings.quarantine_folder)
                                .await?;
                            return Err(e).with_context(|| format!("filing UID {uid}"));
                        }
                    };
                    tracing::debug!(
                        uid,
                        outcome = outcome.label(),
                        code = outcome.code().map(|c| c.as_str()),
                        "mail filed"
                    );
                    report.processed += 1;
                    if outcome.is_quarantined() {
                        quarantined.push(*uid);
                    } else {
                        done.push(*uid);
                    }
                }
                if shutdown.is_cancelled() {
                    report.interrupted = true;
                    break;
                }
            }
            report.moved += self
                .move_to(session, &done, &self.settings.processed_folder)
                .await?;
            report.moved += self
                .move_to(session, &quarantined, &self.settings.quarantine_folder)
                .await?;
            if report.interrupted {
                break;
            }
        }
        Ok(report)
    }

    async fn move_committed(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &BTreeSet<u32>,
    ) -> Result<usize> {
        let base = self.mailbox_key();
        let keys: Vec<String> = uids
            .iter()
            .map(|u| format!("{base};UIDVALIDITY={uid_validity}/;UID={u}"))
            .collect();
        let outcomes = self.pipeline.store().source_outcomes(&keys).await?;
        let mut processed = Vec::new();
        let mut quarantined = Vec::new();
        for (k, outcome) in outcomes {
            let Some(uid) = k.rsplit("UID=").next().and_then(|u| u.parse::<u32>().ok()) else {
                continue;
            };
            if outcome == StoredOutcome::Quarantined {
                quarantined.push(uid);
            } else {
                processed.push(uid);
            }
        }
        // Mail below the checkpoint with no record was filed under another UIDVALIDITY
        // or by another gateway; it is committed either way.
        for uid in uids {
            if !processed.contains(uid) && !quarantined.contains(uid) {
                processed.push(*uid);
            }
        }
        Ok(self
            .move_to(session, &processed, &self.settings.processed_folder)
            .await?
            + self
                .move_to(session, &quarantined, &self.settings.quarantine_folder)
                .await?)
    }

    async fn move_to(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
        folder: &str,
    ) -> Result<usize> {
        if uids.is_empty() {
            return Ok(0);
        }
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        let set = uid_set(&sorted);
        let caps = session.capabilities().await?;
        if caps.has_str("MOVE") {
            session
                .uid_mv(&set, folder)
                .await
                .with_context(|| format!("cannot move mail to {folder}"))?;
        } else {
            session
                .uid_copy(&set, folder)
                .await
                .with_context(|| format!("cannot copy mail to {folder}"))?;
            let _: Vec<_> = session
                .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await?
                .try_collect()
                .await?;
            if caps.has_str("UIDPLUS") {
                let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
            } else {
                let _: Vec<_> = session.expunge().await?.try_collect().await?;
            }
        }
        Ok(uids.len())
    }

    /// Connects, files everything, then waits (IDLE or polling) for more, until `shutdown`.
    /// Connection errors are logged and retried with back-off; nothing is lost meanwhile.
    pub async fn run(&self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_secs(1);
        while !shutdown.is_cancelled() {
            match self.session_loop(&shutdown).await {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), retry_in = ?backoff, "IMAP source failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(120));
                }
            }
        }
    }

    async fn session_loop(&self, shutdown: &CancellationToken) -> Result<()> {
        let mut session = connect(&self.settings).await?;
        self.prepare(&mut session).await?;
        let idle = self.settings.idle && session.capabilities().await?.has_str("IDLE");
        tracing::info!(host = %self.settings.host, mailbox = %self.settings.mailbox, idle, "IMAP source connected");
        loop {
            let report = self.pass(&mut session, shutdown).await?;
            if report.processed > 0 || report.moved > 0 {
                tracing::debug!(?report, "IMAP pass");
            }
            if shutdown.is_cancelled() {
                session.logout().await.ok();
                return Ok(());
            }
            if report.processed > 0 || new_mail_announced(&session) {
                continue;
            }
            if idle {
                let mut handle = session.idle();
                handle.init().await.context("IDLE refused")?;
                let (wait, stop) = handle.wait_with_timeout(self.settings.idle_timeout);
                let woke = tokio::select! {
                    r = wait => Some(r),
                    _ = shutdown.cancelled() => None,
                };
                drop(stop);
                session = handle.done().await.context("ending IDLE")?;
                match woke {
                    None => {
                        session.logout().await.ok();
                        return Ok(());
                    }
                    Some(Ok(IdleResponse::NewData(_))) => tracing::debug!("IDLE: mailbox changed"),
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

/// True if the server told us, between commands, that mail arrived: IDLE would not
/// report it a second time.
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

/// `1,3:5,9` from sorted UIDs.
fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }
}
