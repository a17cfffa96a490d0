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

/// The TLS client the source would use (CA roots, `ca_file`), built without connecting:
/// `check-config` calls it so a bad `ca_file` is reported before the gateway starts.
pub fn tls_connector(settings: &ImapSettings) -> Result<TlsConnector> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &settings.ca_file {
        let pem = std::fs::read(ca)
            .with_context(|| format!("source.imap.ca_file: cannot read {}", ca.display()))?;
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(
                cert.with_context(|| format!("source.imap.ca_file: {} is not PEM", ca.display()))?,
            )?;
            found += 1;
        }
        if found == 0 {
            anyhow::bail!(
                "source.imap.ca_file: {} holds no PEM certificate",
                ca.display()
            );
        }
    }
    crate::tls::install_provider();
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
            pipeline,
            stats,
            folders: std::sync::Mutex::new(None),
        }
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

    /// Fetches and files `uids` (ascending) in batches, moving each batch out once it is
    /// committed. Stops at the first mail it cannot file, so the checkpoint never passes
    /// a mail that has no record.
    ///
    /// A backlog is a pipeline: while one batch is being filed (its next group of mails
    /// parsed on another thread while the current one is written), the server is already
    /// sending the next batch; the filed batch is moved out once its groups are committed.
    async fn file_uids(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        shutdown: &CancellationToken,
        report: &mut PassReport,
    ) -> Result<()> {
        let chunks: Vec<&[u32]> = uids.chunks(self.settings.batch_size as usize).collect();
        let Some(first) = chunks.first() else {
            return Ok(());
        };
        let key = self.mailbox_key();
        let mut fetched = Some(self.fetch_bodies(session, first).await?);
        for (i, chunk) in chunks.iter().enumerate() {
            let Some(mut bodies) = fetched.take() else {
                break;
            };
            // Only the UIDs asked for, in order, up to the first one that came back without
            // a body (an unsolicited FETCH, a server hiccup): that one and those after it are
            // fetched again on the next pass, never filed as empty mail.
            let mut items: Vec<(u32, SourceRef, Vec<u8>)> = Vec::with_capacity(chunk.len());
            let mut missing = None;
            for &uid in chunk.iter() {
                let Some(body) = bodies.remove(&uid) else {
                    missing = Some(uid);
                    break;
                };
                let source = SourceRef {
                    key: Some(self.source_key(uid_validity, uid)),
                    checkpoint: Some((
                        key.clone(),
                        Checkpoint {
                            uid_validity,
                            last_uid: uid,
                        },
                    )),
                };
                items.push((uid, source, body));
            }
            drop(bodies);
            let filing = tokio::spawn(file_batch(self.pipeline.clone(), items, shutdown.clone()));
            // The next batch travels while this one is filed; not after a missing body (it
            // would be fetched again anyway) nor after a shutdown.
            let next = match chunks.get(i + 1) {
                Some(next) if missing.is_none() && !shutdown.is_cancelled() => {
                    Some(self.fetch_bodies(session, next).await)
                }
                _ => None,
            };
            let filed = filing
                .await
                .unwrap_or_else(|e| BatchFiled::failed(anyhow!("filing task failed: {e}")));
            report.processed += filed.processed;
            report.interrupted |= filed.interrupted;
            let folders = self.folders();
            report.moved += self
                .move_or_leave(session, uid_validity, &filed.done, &folders.processed)
                .await;
            report.moved += self
                .move_or_leave(
                    session,
                    uid_validity,
                    &filed.quarantined,
                    &folders.quarantine,
                )
                .await;
            if let Some(e) = filed.failure {
                // Committed mail is moved; the rest is read again on the next pass.
                return Err(e);
            }
            if let Some(uid) = missing {
                return Err(anyhow!(
                    "the server sent no body for UID {uid}; it will be fetched again"
                ));
            }
            if report.interrupted {
                break;
            }
            fetched = next.transpose()?;
        }
        Ok(())
    }

    /// `UID FETCH` of `uids`, keeping only answers for those UIDs that carry a body. Servers
    /// may slip other clients' flag changes into the reply (`* 2 FETCH (FLAGS (\Flagged)
    /// UID 17)`, RFC 3501 §7): those are not mail. A UID that came back without a body is
    /// asked for once more.
    async fn fetch_bodies(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
    ) -> Result<HashMap<u32, Vec<u8>>> {
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        let mut bodies: HashMap<u32, Vec<u8>> = HashMap::with_capacity(uids.len());
        for attempt in 0..2 {
            let ask: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|u| !bodies.contains_key(u))
                .collect();
            if ask.is_empty() {
                break;
            }
            if attempt > 0 {
                tracing::warn!(uids = %uid_set(&ask), "fetched again: the first answer had no body");
            }
            let started = std::time::Instant::now();
            let fetched: Vec<_> = session
                .uid_fetch(uid_set(&ask), "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await?;
            tracing::debug!(mails = fetched.len(), took = ?started.elapsed(), "fetched");
            for f in &fetched {
                match (f.uid, f.body()) {
                    (Some(uid), Some(body)) if wanted.contains(&uid) => {
                        bodies.entry(uid).or_insert_with(|| body.to_vec());
                    }
                    _ => {
                        self.stats
                            .unsolicited_fetches
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(bodies)
    }

    /// Moves what is recorded, and returns the UIDs below the checkpoint that have no
    /// record at all (a batch that failed half-way on an older version): those are filed.
    async fn move_committed(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &BTreeSet<u32>,
        report: &mut PassReport,
    ) -> Result<Vec<u32>> {
        let keys: Vec<String> = uids
            .iter()
            .map(|u| self.source_key(uid_validity, *u))
            .collect();
        let outcomes: HashMap<String, StoredOutcome> = self
            .pipeline
            .store()
            .source_outcomes(&keys)
            .await?
            .into_iter()
            .collect();
        let mut processed = Vec::new();
        let mut quarantined = Vec::new();
        let mut unfiled = Vec::new();
        for (uid, key) in uids.iter().zip(&keys) {
            match outcomes.get(key) {
                Some(StoredOutcome::Quarantined) => quarantined.push(*uid),
                Some(_) => processed.push(*uid),
                None => unfiled.push(*uid),
            }
        }
        let folders = self.folders();
        report.moved += self
            .move_or_leave(session, uid_validity, &processed, &folders.processed)
            .await;
        report.moved += self
            .move_or_leave(session, uid_validity, &quarantined, &folders.quarantine)
            .await;
        Ok(unfiled)
    }

    /// Moves filed mail to `folder`. A failure is logged and the mail stays in the inbox,
    /// which is harmless (its source key is known, the next pass moves it): filing new
    /// mail must never wait on a folder.
    async fn move_or_leave(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        folder: &str,
    ) -> usize {
        match self.move_to(session, uid_validity, uids, folder).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(folder, uids = %uid_set(uids), error = format!("{e:#}"), "filed mail left in the inbox; moving it is retried on the next pass");
                0
            }
        }
    }

    async fn move_to(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        folder: &str,
    ) -> Result<usize> {
        if uids.is_empty() {
            return Ok(0);
        }
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        let caps = session.capabilities().await?;
        if caps.has_str("MOVE") {
            session
                .uid_mv(uid_set(&sorted), folder)
                .await
                .with_context(|| format!("cannot move mail to {folder}"))?;
            return Ok(uids.len());
        }
        // COPY, then \Deleted and EXPUNGE. Another client may wipe our \Deleted between
        // the two (a STORE FLAGS of its own), leaving a copied mail in the inbox: copies
        // are recorded, so such a mail is flagged and expunged again, never copied twice.
        let store = self.pipeline.store();
        let keys: Vec<String> = sorted
            .iter()
            .map(|u| self.source_key(uid_validity, *u))
            .collect();
        let copied: BTreeSet<String> = store.imap_copied(&keys).await?.into_iter().collect();
        let to_copy: Vec<u32> = sorted
            .iter()
            .zip(&keys)
            .filter(|(_, k)| !copied.contains(*k))
            .map(|(u, _)| *u)
            .collect();
        self.stats
            .copies_not_repeated
            .fetch_add((sorted.len() - to_copy.len()) as u64, Ordering::Relaxed);
        if !to_copy.is_empty() {
            session
                .uid_copy(uid_set(&to_copy), folder)
                .await
                .with_context(|| format!("cannot copy mail to {folder}"))?;
            let copied_keys: Vec<String> = to_copy
                .iter()
                .map(|u| self.source_key(uid_validity, *u))
                .collect();
            store
                .record_imap_copies(&copied_keys, folder, self.pipeline.now())
                .await?;
        }
        let set = uid_set(&sorted);
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

/// True if the server told us, between commands, that mail arrived: IDLE would not
/// report it a second time.
/// What filing one fetched batch did: which UIDs are committed (to move out) and how
/// it ended.
#[derive(Default)]
struct BatchFiled {
    done: Vec<u32>,
    quarantined: Vec<u32>,
    processed: usize,
    interrupted: bool,
    failure: Option<anyhow::Error>,
}

impl BatchFiled {
    fn failed(e: anyhow::Error) -> Self {
        BatchFiled {
            failure: Some(e),
            ..Default::default()
        }
    }
}

/// Files a fetched batch in groups of `COMMIT_GROUP` (small transactions, so a shutdown
/// waits for at most one of them), reading each next group while the current one is
/// written. Stops at the first mail that cannot be filed.
async fn file_batch(
    pipeline: Arc<Pipeline>,
    items: Vec<(u32, SourceRef, Vec<u8>)>,
    shutdown: CancellationToken,
) -> BatchFiled {
    let mut filed = BatchFiled::default();
    let mut groups = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        groups.push(items.by_ref().take(COMMIT_GROUP).collect::<Vec<_>>());
    }
    let mut groups = groups.into_iter();
    let mut ahead = groups.next().map(|g| pipeline.read_ahead(g));
    while let Some(reading) = ahead.take() {
        let read = match reading.await {
            Ok(read) => read,
            Err(e) => {
                filed.failure = Some(anyhow!("reading mail failed: {e}"));
                break;
            }
        };
        if !shutdown.is_cancelled() {
            ahead = groups.next().map(|g| pipeline.read_ahead(g));
        }
        let started = std::time::Instant::now();
        let (uids, outcomes) = pipeline.file_read_ahead(read).await;
        tracing::debug!(mails = uids.len(), took = ?started.elapsed(), "group committed");
        for (uid, outcome) in uids.into_iter().zip(outcomes) {
            match outcome {
                Ok(outcome) => {
                    tracing::debug!(
                        uid,
                        outcome = outcome.label(),
                        code = outcome.code().map(|c| c.as_str()),
                        "mail filed"
                    );
                    filed.processed += 1;
                    if outcome.is_quarantined() {
                        filed.quarantined.push(uid);
                    } else {
                        filed.done.push(uid);
                    }
                }
                Err(e) => {
                    filed.failure =
                        Some(anyhow::Error::new(e).context(format!("filing UID {uid}")));
                    return filed;
                }
            }
        }
        if shutdown.is_cancelled() {
            filed.interrupted = true;
            break;
        }
    }
    filed
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

/// The personal namespace's prefix and hierarchy delimiter, from `NAMESPACE`.
///
/// async-imap's parser does not know the NAMESPACE response, and an unknown response
/// breaks its stream, so this one command is written and read on the raw connection,
/// between two commands, when nothing else is in flight.
async fn personal_namespace(session: &mut ImapSession) -> Result<Option<(String, String)>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = session.get_mut();
    stream.write_all(b"hdns NAMESPACE\r\n").await?;
    stream.flush().await?;
    let mut personal = None;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        loop {
            let byte = stream
                .read_u8()
                .await
                .context("reading the NAMESPACE answer")?;
            line.push(byte);
            if line.ends_with(b"\r\n") || line.len() > 64 * 1024 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(rest) = text.strip_prefix("* NAMESPACE ") {
            personal = parse_personal_namespace(rest);
        } else if let Some(status) = text.strip_prefix("hdns ") {
            if status.starts_with("OK") {
                return Ok(personal);
            }
            // A server that refuses NAMESPACE has the folders where it lists them.
            tracing::debug!(answer = %status.trim(), "NAMESPACE refused");
            return Ok(None);
        }
    }
}

/// `(("INBOX." ".")) NIL NIL` → `("INBOX.", ".")`; `NIL …` → none.
fn parse_personal_namespace(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("((")?;
    let mut parts = rest.splitn(3, '"');
    parts.next()?;
    let prefix = parts.next()?.to_string();
    let after = parts.next()?.trim_start();
    let delimiter = if let Some(d) = after.strip_prefix('"') {
        d.split('"').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    Some((prefix, delimiter))
}

/// Where a configured folder lives on this server. A name that is already full (it starts
/// with the personal prefix or INBOX, or names a level with the delimiter) is kept as
/// written; a bare name goes under the personal prefix (`Processed` → `INBOX.Processed`
/// on Cyrus and Courier, `Processed` on Dovecot).
fn folder_name(configured: &str, personal: Option<&(String, String)>) -> String {
    let Some((prefix, delimiter)) = personal else {
        return configured.to_string();
    };
    let upper = configured.to_ascii_uppercase();
    let full = prefix.is_empty()
        || configured.starts_with(prefix.as_str())
        || upper == "INBOX"
        || (!delimiter.is_empty()
            && (upper.starts_with(&format!("INBOX{delimiter}"))
                || configured.contains(delimiter.as_str())));
    if full {
        configured.to_string()
    } else {
        format!("{prefix}{configured}")
    }
}

/// Makes sure `folder` exists, creating it if needed.
async fn ensure_folder(session: &mut ImapSession, key: &str, folder: &str) -> Result<()> {
    if folder_exists(session, folder).await? {
        return Ok(());
    }
    let created = session.create(folder).await;
    if folder_exists(session, folder).await? {
        return Ok(());
    }
    let words = match created {
        Err(e) => e.to_string(),
        Ok(()) => "CREATE said OK but the folder is not listed".to_string(),
    };
    Err(anyhow!(
        "IMAP folder {folder:?} does not exist and cannot be created: the server said {words:?}; \
         create it with a mail client, or set {key} to an existing folder (its full name, e.g. \"INBOX.{folder}\")"
    ))
}

async fn folder_exists(session: &mut ImapSession, folder: &str) -> Result<bool> {
    let quoted = format!("\"{}\"", folder.replace('\\', "\\\\").replace('"', "\\\""));
    let names: Vec<_> = session
        .list(Some(""), Some(&quoted))
        .await?
        .try_collect()
        .await?;
    Ok(names.iter().any(|n| n.name() == folder))
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
