//! Sending over SMTP with lettre's protocol code on sockets we open ourselves.
//!
//! Why not `AsyncSmtpTransport`: lettre 0.11 opens its sockets without `TCP_NODELAY` and
//! writes a message's body and its final `\r\n.\r\n` as two writes, so Nagle's algorithm
//! holds the terminator back until the server's delayed ACK: about 40 ms per mail whatever
//! the server's speed (measured in issue 6: 167 mails/s over 8 connections against the
//! local Postfix, 819–845/s with `TCP_NODELAY`). Here the `TcpStream` is connected with
//! `TCP_NODELAY` and handed to `AsyncSmtpConnection::connect_with_transport`; EHLO,
//! STARTTLS, AUTH and the mail exchange stay lettre's. A few connections are kept open
//! between mails.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters,
};
use lettre::transport::smtp::extension::ClientId;
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use super::transport::SendError;
use crate::config::{Login, SmtpSettings, TlsMode};
use crate::oauth::{AccessToken, OAuthError};

/// A pooled connection idle longer than this is checked with NOOP before use: servers
/// close idle sessions (Postfix after 300 s), and a dead one must not cost a mail a retry.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);

pub struct SmtpSender {
    host: String,
    port: u16,
    mode: TlsMode,
    /// STARTTLS parameters (lettre's rustls setup, with `ca_file`).
    starttls: Option<TlsParameters>,
    /// Implicit TLS (SMTPS): the handshake is ours, before lettre reads the greeting.
    implicit: Option<(TlsConnector, ServerName<'static>)>,
    login: Option<(String, Login)>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    max_idle: usize,
}

impl SmtpSender {
    pub fn new(s: &SmtpSettings, max_idle: usize) -> anyhow::Result<Self> {
        let ca_pem = match &s.ca_file {
            Some(ca) => Some(std::fs::read(ca).map_err(|e| {
                anyhow::anyhow!("outbox.smtp.ca_file: cannot read {}: {e}", ca.display())
            })?),
            None => None,
        };
        let (starttls, implicit) = match s.tls {
            TlsMode::Plain => (None, None),
            TlsMode::StartTls => {
                crate::tls::install_provider();
                let mut builder = TlsParameters::builder(s.host.clone());
                if let Some(pem) = &ca_pem {
                    let cert = Certificate::from_pem(pem)
                        .map_err(|e| anyhow::anyhow!("outbox.smtp.ca_file: {e}"))?;
                    builder = builder.add_root_certificate(cert);
                }
                (Some(builder.build_rustls()?), None)
            }
            TlsMode::Implicit => {
                let mut roots = RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                if let Some(pem) = &ca_pem {
                    let mut found = 0;
                    for cert in CertificateDer::pem_slice_iter(pem) {
                        let cert = cert.map_err(|e| anyhow::anyhow!("outbox.smtp.ca_file: {e}"))?;
                        roots.add(cert)?;
                        found += 1;
                    }
                    if found == 0 {
                        anyhow::bail!("outbox.smtp.ca_file holds no PEM certificate");
                    }
                }
                crate::tls::install_provider();
                let config = ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let name = ServerName::try_from(s.host.clone()).map_err(|e| {
                    anyhow::anyhow!(
                        "outbox.smtp.host {:?} is not a TLS server name: {e}",
                        s.host
                    )
                })?;
                (None, Some((TlsConnector::from(Arc::new(config)), name)))
            }
        };
        Ok(SmtpSender {
            host: s.host.clone(),
            port: s.port,
            mode: s.tls,
            starttls,
            implicit,
            login: s.credentials.clone(),
            timeout: s.timeout,
            hello: ClientId::Domain(s.helo_name.clone()),
            idle: Mutex::new(Vec::new()),
            max_idle,
        })
    }

    /// A new logged-in connection. With OAuth2, a token the server refuses is dropped and
    /// a new one asked for, once: the provider may have revoked it before its expiry.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let target = format!("{}:{}", self.host, self.port);
        match &self.login {
            None => self.connect_as(None).await,
            Some((user, Login::Password(password))) => {
                let credentials =
                    Credentials::new(user.clone(), password.expose_secret().to_string());
                // The mail is not at fault: retried, and the log says why.
                self.connect_as(Some((&credentials, DEFAULT_MECHANISMS)))
                    .await
                    .map_err(|e| match e {
                        SendError::Refused(e) => SendError::Temporary(e),
                        e => e,
                    })
            }
            Some((user, Login::OAuth2(oauth))) => {
                let token = oauth.access_token().await.map_err(login_error)?;
                let xoauth2 = |token: &AccessToken| {
                    Credentials::new(user.clone(), token.secret.expose_secret().to_string())
                };
                match self
                    .connect_as(Some((&xoauth2(&token), &[Mechanism::Xoauth2])))
                    .await
                {
                    Err(SendError::Refused(e)) => {
                        tracing::warn!(server = %target, error = %e, "the SMTP server refused the access token: asking for a new one");
                        oauth.invalidate(&token).await;
                        let token = oauth.access_token().await.map_err(login_error)?;
                        self.connect_as(Some((&xoauth2(&token), &[Mechanism::Xoauth2])))
                            .await
                            .map_err(|e| match e {
                                SendError::Refused(e) => SendError::Temporary(format!(
                                    "{e} (with a new token too: check the mailbox's \
                                     permission to send)"
                                )),
                                e => e,
                            })
                    }
                    other => other,
                }
            }
        }
    }

    /// Connects and logs in with these credentials; a refused login is
    /// `SendError::Refused`.
    async fn connect_as(
        &self,
        credentials: Option<(&Credentials, &[Mechanism])>,
    ) -> Result<AsyncSmtpConnection, SendError> {
        let target = format!("{}:{}", self.host, self.port);
        let tcp = tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        .map_err(|_| SendError::Temporary(format!("connecting to {target}: timed out")))?
        .map_err(|e| SendError::Temporary(format!("connecting to {target}: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| SendError::Temporary(format!("TCP_NODELAY on {target}: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.implicit {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| SendError::Temporary(format!("TLS with {target}: {e}")))?;
                Box::new(ImplicitTls(tls))
            }
            None => Box::new(tcp),
        };
        let setup = async {
            let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello).await?;
            if self.mode == TlsMode::StartTls
                && let Some(params) = &self.starttls
            {
                conn.starttls(params.clone(), &self.hello).await?;
            }
            if let Some((credentials, mechanisms)) = credentials
                && let Err(e) = conn.auth(mechanisms, credentials).await
            {
                return Ok(Err(e));
            }
            Ok::<_, lettre::transport::smtp::Error>(Ok(conn))
        };
        match tokio::time::timeout(self.timeout, setup).await {
            Ok(Ok(Ok(conn))) => Ok(conn),
            Ok(Ok(Err(e))) => Err(SendError::Refused(format!("{target}: login refused: {e}"))),
            Ok(Err(e)) => Err(classify(&target, e)),
            Err(_) => Err(SendError::Temporary(format!(
                "{target}: no greeting, STARTTLS or AUTH within {:?}",
                self.timeout
            ))),
        }
    }

    /// A live connection: an idle one from the pool (checked if it idled a while), or a
    /// new one.
    async fn checkout(&self) -> Result<AsyncSmtpConnection, SendError> {
        loop {
            let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            match pooled {
                Some((mut conn, since)) => {
                    if since.elapsed() < CHECK_AFTER_IDLE || conn.test_connected().await {
                        return Ok(conn);
                    }
                }
                None => return self.connect().await,
            }
        }
    }

    fn checkin(&self, conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.max_idle
        {
            idle.push((conn, Instant::now()));
        }
    }

    /// Sends one mail; the whole exchange (MAIL, RCPT, DATA, the server's answer) within
    /// the configured timeout.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), SendError> {
        let mut conn = self.checkout().await?;
        let target = format!("{}:{}", self.host, self.port);
        match tokio::time::timeout(self.timeout, conn.send(envelope, raw)).await {
            Ok(Ok(_)) => {
                self.checkin(conn);
                Ok(())
            }
            // lettre has already aborted the session on an error; the connection is dropped.
            Ok(Err(e)) => Err(classify(&target, e)),
            Err(_) => Err(SendError::Temporary(format!(
                "{target}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}

/// No token: a refused grant stops the outbox (a person must sign in again); a token
/// server out of reach is retried like a mail server out of reach.
fn login_error(e: OAuthError) -> SendError {
    if e.is_permanent() {
        SendError::Login(e.to_string())
    } else {
        SendError::Temporary(e.to_string())
    }
}

fn classify(target: &str, e: lettre::transport::smtp::Error) -> SendError {
    if e.is_permanent() {
        SendError::Permanent(format!("{target}: {e}"))
    } else {
        SendError::Temporary(format!("{target}: {e}"))
    }
}

/// A TLS stream lettre can drive as if it were a plain socket (SMTPS: TLS from the first
/// byte, done before lettre reads the greeting).
struct ImplicitTls(TlsStream<TcpStream>);

impl std::fmt::Debug for ImplicitTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ImplicitTls")
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
