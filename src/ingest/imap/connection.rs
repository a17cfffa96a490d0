//! The connection: implicit TLS, STARTTLS or (on loopback, when configured) plain, and
//! the login.

use super::*;

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
    match &settings.login {
        Login::Password(password) => client
            .login(&settings.username, password.expose_secret())
            .await
            .map_err(|(e, _)| {
                anyhow!(
                    "IMAP login as {} on {target} failed: {e}",
                    settings.username
                )
            }),
        Login::OAuth2(oauth) => oauth_login(client, settings, oauth, &target).await,
    }
}

/// SASL with a bearer token: OAUTHBEARER (RFC 7628) where the server offers it, else
/// XOAUTH2 (what Exchange Online and Gmail document). A refused token is dropped and a new
/// one tried once on the same connection: the provider may have revoked it early. A
/// refused grant (`OAuthError`, permanent) is returned as is, for the source to stop on.
async fn oauth_login(
    mut client: async_imap::Client<ImapConn>,
    settings: &ImapSettings,
    oauth: &crate::oauth::OAuth2,
    target: &str,
) -> Result<ImapSession> {
    let bearer = offers(&mut client, "AUTH=OAUTHBEARER").await?;
    let mut token = oauth.access_token().await?;
    let mut retried = false;
    loop {
        let secret = token.secret.expose_secret();
        let (mechanism, response, after_error) = if bearer {
            let r = crate::oauth::oauthbearer(
                &settings.username,
                &settings.host,
                settings.port,
                secret,
            );
            ("OAUTHBEARER", r, b"\x01".as_slice())
        } else {
            let r = crate::oauth::xoauth2(&settings.username, secret);
            ("XOAUTH2", r, b"".as_slice())
        };
        let sasl = Sasl {
            first: Some(response.into_bytes()),
            after_error,
        };
        match client.authenticate(mechanism, sasl).await {
            Ok(session) => return Ok(session),
            Err((e, returned)) if !retried => {
                tracing::warn!(server = %target, mechanism, error = %e, "the IMAP server refused the access token: asking for a new one");
                oauth.invalidate(&token).await;
                token = oauth.access_token().await?;
                client = returned;
                retried = true;
            }
            Err((e, _)) => {
                return Err(anyhow!(
                    "IMAP login as {} on {target} with {mechanism} failed, with a new token \
                     too: {e} (check that the app may use this mailbox)",
                    settings.username
                ));
            }
        }
    }
}

/// The SASL exchange of a bearer token: the token first; then, if the server answers with
/// an error challenge instead of a result, the mechanism's empty reply that ends it.
struct Sasl {
    first: Option<Vec<u8>>,
    after_error: &'static [u8],
}

impl async_imap::Authenticator for Sasl {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        self.first
            .take()
            .unwrap_or_else(|| self.after_error.to_vec())
    }
}

/// Whether the server lists `capability` before login (asked with CAPABILITY: the
/// greeting's list is optional, RFC 3501 §7.1, and changes after STARTTLS).
async fn offers(client: &mut async_imap::Client<ImapConn>, capability: &str) -> Result<bool> {
    use async_imap::imap_proto::{Capability, Response};
    use async_imap::types::UnsolicitedResponse;
    let (tx, rx) = async_channel::unbounded();
    client
        .run_command_and_check_ok("CAPABILITY", Some(tx))
        .await
        .context("CAPABILITY before login")?;
    let mut found = false;
    while let Ok(response) = rx.try_recv() {
        if let UnsolicitedResponse::Other(data) = response
            && let Response::Capabilities(caps) = data.parsed()
        {
            found |= caps.iter().any(|c| match c {
                Capability::Auth(m) => capability
                    .strip_prefix("AUTH=")
                    .is_some_and(|want| m.eq_ignore_ascii_case(want)),
                Capability::Atom(a) => a.eq_ignore_ascii_case(capability),
                Capability::Imap4rev1 => capability.eq_ignore_ascii_case("IMAP4rev1"),
            });
        }
    }
    Ok(found)
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
