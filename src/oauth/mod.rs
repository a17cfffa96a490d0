//! OAuth2 sign-in for the mailboxes (SASL XOAUTH2 and OAUTHBEARER): Microsoft 365 and
//! Google Workspace no longer let a program in with a password, so the IMAP source and the
//! outbox log in with an access token, which this module gets from the provider's token
//! endpoint and keeps fresh.
//!
//! One [`OAuth2`] per configured `[oauth2]` section, shared by every connection that uses
//! it (the source and the outbox share the top-level one): a provider that rotates refresh
//! tokens invalidates the old one at each refresh, so two holders refreshing on their own
//! would lock each other out.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oauth2::basic::{BasicClient, BasicErrorResponse};
use oauth2::{
    AuthType, ClientId, ClientSecret, ErrorResponseType, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

mod login;
mod sasl;

pub use login::{LoginOutcome, LoginPrompt, device_login, loopback_login};
pub use sasl::{oauthbearer, xoauth2};

/// A token this close to its expiry is refreshed before use rather than sent: a login
/// that starts with a valid token must not end with an expired one.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// What a token response without `expires_in` is taken to last (RFC 6749 makes it
/// optional; a failed login refreshes it anyway).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// A token server that does not answer within this is treated as unreachable.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Who issues the tokens: the known providers fill in their endpoints and scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Microsoft,
    Google,
    Custom,
}

impl Provider {
    pub fn parse(value: &str) -> Option<Provider> {
        match value {
            "microsoft" => Some(Provider::Microsoft),
            "google" => Some(Provider::Google),
            "custom" => Some(Provider::Custom),
            _ => None,
        }
    }
}

/// How the gateway proves it may use the mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Delegated access: a person signed in once (`helpdesk oauth login`); the refresh
    /// token they obtained lives in this file, rewritten when the provider rotates it.
    RefreshToken(PathBuf),
    /// App-only access (Microsoft's client credentials flow for a shared mailbox): the
    /// application's own secret, no person involved.
    ClientCredentials,
}

/// One `[oauth2]` section, checked.
#[derive(Clone)]
pub struct OAuth2Settings {
    /// The section's key (`oauth2`, `source.imap.oauth2`…), for error messages.
    pub key: String,
    pub provider: Provider,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub token_url: String,
    /// Microsoft's and Google's authorization endpoints, for `oauth login`.
    pub auth_url: Option<String>,
    /// The device authorization endpoint (RFC 8628), for `oauth login`.
    pub device_url: Option<String>,
    pub scopes: Vec<String>,
    pub grant: Grant,
}

impl std::fmt::Debug for OAuth2Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Settings")
            .field("key", &self.key)
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url)
            .field("scopes", &self.scopes)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// Why no token could be had. Never carries a secret: token servers' replies are reduced
/// to their `error` code and description.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// The token server said no (revoked or expired grant, wrong client or secret):
    /// trying again will not help; a person must act.
    #[error("{key}: the token server refused ({reason}); {hint}")]
    Refused {
        key: String,
        reason: String,
        hint: String,
    },
    /// Network, timeout, a server error: try again later.
    #[error("token server {url}: {message}")]
    Unreachable { url: String, message: String },
    /// The refresh token's file cannot be read or written.
    #[error("{key}: {message}")]
    File { key: String, message: String },
}

impl OAuthError {
    /// True when waiting and trying again cannot help.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, OAuthError::Unreachable { .. })
    }
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub struct AccessToken {
    pub secret: SecretString,
    pub expires: Instant,
}

impl AccessToken {
    fn fresh(&self, now: Instant) -> bool {
        self.expires > now + EXPIRY_MARGIN
    }
}

struct State {
    access: Option<AccessToken>,
    refresh: Option<SecretString>,
}

/// The tokens of one `[oauth2]` section, refreshed on demand, one refresh at a time.
pub struct OAuth2 {
    pub settings: OAuth2Settings,
    state: tokio::sync::Mutex<State>,
    http: OnceLock<reqwest::Client>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OAuth2 {
    /// The refresh token's file is read at the first refresh, not here: `oauth login`
    /// loads the same configuration to write it. (`check-config` and `run` refresh at
    /// once, so a missing file is still reported at start.)
    pub fn new(settings: OAuth2Settings) -> OAuth2 {
        OAuth2 {
            settings,
            state: tokio::sync::Mutex::new(State {
                access: None,
                refresh: None,
            }),
            http: OnceLock::new(),
        }
    }

    /// A token valid for at least another minute: the one in hand, or a new one.
    pub async fn access_token(&self) -> Result<AccessToken, OAuthError> {
        let mut state = self.state.lock().await;
        if let Some(token) = &state.access
            && token.fresh(Instant::now())
        {
            return Ok(token.clone());
        }
        let token = self.request(&mut state).await?;
        state.access = Some(token.clone());
        Ok(token)
    }

    /// The server refused `token` at login: forget it (unless another connection already
    /// replaced it), so the next [`access_token`](Self::access_token) asks for a new one.
    pub async fn invalidate(&self, token: &AccessToken) {
        let mut state = self.state.lock().await;
        if state
            .access
            .as_ref()
            .is_some_and(|t| t.secret.expose_secret() == token.secret.expose_secret())
        {
            state.access = None;
        }
    }

    /// The HTTP client: rustls (ring) with the webpki roots, no redirects (a token
    /// endpoint that redirects is not followed with the client's secret, RFC 6749 §10).
    fn http(&self) -> Result<&reqwest::Client, OAuthError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        crate::tls::install_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| OAuthError::Unreachable {
                url: self.settings.token_url.clone(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(self.http.get_or_init(|| client))
    }

    async fn request(&self, state: &mut State) -> Result<AccessToken, OAuthError> {
        let s = &self.settings;
        let client = client(s)?;
        let http = self.http()?;
        let scopes = s.scopes.iter().map(|x| Scope::new(x.clone()));
        let started = Instant::now();
        let response = match &s.grant {
            Grant::RefreshToken(path) => {
                if state.refresh.is_none() {
                    state.refresh = Some(read_refresh_token(&s.key, path)?);
                }
                let refresh = state.refresh.as_ref().ok_or_else(|| OAuthError::File {
                    key: format!("{}.refresh_token_file", s.key),
                    message: "no refresh token".into(),
                })?;
                client
                    .exchange_refresh_token(&RefreshToken::new(refresh.expose_secret().to_string()))
                    .add_scopes(scopes)
                    .request_async(http)
                    .await
            }
            Grant::ClientCredentials => {
                client
                    .exchange_client_credentials()
                    .add_scopes(scopes)
                    .request_async(http)
                    .await
            }
        }
        .map_err(|e| self.token_error(e))?;
        let lifetime = response.expires_in().unwrap_or(DEFAULT_LIFETIME);
        if let (Grant::RefreshToken(path), Some(new)) = (&s.grant, response.refresh_token())
            && state
                .refresh
                .as_ref()
                .is_none_or(|old| old.expose_secret() != new.secret())
        {
            write_secret_file(path, new.secret()).map_err(|e| OAuthError::File {
                key: format!("{}.refresh_token_file", s.key),
                message: format!(
                    "the provider rotated the refresh token and it cannot be saved to {}: {e}",
                    path.display()
                ),
            })?;
            state.refresh = Some(SecretString::from(new.secret().clone()));
            tracing::info!(file = %path.display(), "saved the rotated refresh token");
        }
        tracing::info!(
            section = %s.key,
            expires_in = %humantime::format_duration(Duration::from_secs(lifetime.as_secs())),
            took_ms = started.elapsed().as_millis() as u64,
            "got a new OAuth2 access token"
        );
        Ok(AccessToken {
            secret: SecretString::from(response.access_token().secret().clone()),
            expires: started + lifetime,
        })
    }

    fn token_error<RE: std::error::Error + 'static>(
        &self,
        e: RequestTokenError<RE, BasicErrorResponse>,
    ) -> OAuthError {
        token_error(&self.settings, e)
    }
}

/// The oauth2 crate's client for these settings.
type Client = oauth2::basic::BasicClient<
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(s: &OAuth2Settings) -> Result<Client, OAuthError> {
    let token_url = TokenUrl::new(s.token_url.clone()).map_err(|e| OAuthError::Refused {
        key: format!("{}.token_url", s.key),
        reason: e.to_string(),
        hint: "give the provider's token endpoint, https://…".into(),
    })?;
    let mut client = BasicClient::new(ClientId::new(s.client_id.clone()))
        .set_token_uri(token_url)
        // Both providers take the secret in the body; RFC 6749 servers take either.
        .set_auth_type(match s.provider {
            Provider::Custom => AuthType::BasicAuth,
            _ => AuthType::RequestBody,
        });
    if let Some(secret) = &s.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    Ok(client)
}

fn token_error<RE, T>(
    s: &OAuth2Settings,
    e: RequestTokenError<RE, StandardErrorResponse<T>>,
) -> OAuthError
where
    RE: std::error::Error + 'static,
    T: ErrorResponseType + std::fmt::Display,
{
    match e {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().to_string();
            let reason = match response.error_description() {
                // Microsoft's descriptions carry a trace id and timestamp after the first
                // line; the first line is what a person needs.
                Some(d) => format!("{code}: {}", d.lines().next().unwrap_or("")),
                None => code.to_string(),
            };
            let (key, hint) = match (code.as_str(), &s.grant) {
                ("invalid_grant", Grant::RefreshToken(_)) => (
                    format!("{}.refresh_token_file", s.key),
                    "the refresh token was revoked or expired: sign in again with \
                     `helpdesk oauth login`"
                        .to_string(),
                ),
                ("invalid_client" | "unauthorized_client", _) => (
                    format!("{}.client_secret_file", s.key),
                    "check client_id and the client secret (an expired secret must be \
                     renewed in the app registration)"
                        .to_string(),
                ),
                ("invalid_scope", _) => (
                    format!("{}.scopes", s.key),
                    "ask only for scopes the app registration was granted".to_string(),
                ),
                ("access_denied" | "expired_token", _) => (
                    s.key.clone(),
                    "the sign-in was declined or not finished in time: run `helpdesk oauth \
                     login` again"
                        .to_string(),
                ),
                _ => (
                    s.key.clone(),
                    "check the [oauth2] settings against the app registration".to_string(),
                ),
            };
            OAuthError::Refused { key, reason, hint }
        }
        RequestTokenError::Request(e) => OAuthError::Unreachable {
            url: s.token_url.clone(),
            message: error_chain(&e),
        },
        RequestTokenError::Parse(e, _body) => OAuthError::Unreachable {
            url: s.token_url.clone(),
            message: format!("an answer that is not a token response ({e})"),
        },
        RequestTokenError::Other(message) => OAuthError::Unreachable {
            url: s.token_url.clone(),
            message,
        },
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

fn read_refresh_token(key: &str, path: &Path) -> Result<SecretString, OAuthError> {
    let key = format!("{key}.refresh_token_file");
    let text = std::fs::read_to_string(path).map_err(|e| OAuthError::File {
        key: key.clone(),
        message: format!(
            "cannot read {}: {e}; sign in with `helpdesk oauth login` to write it",
            path.display()
        ),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(OAuthError::File {
            key,
            message: format!(
                "{} is empty; sign in with `helpdesk oauth login` to write it",
                path.display()
            ),
        });
    }
    Ok(SecretString::from(token.to_string()))
}

/// Writes a secret so that a reader sees the old file or the new one, never half of
/// either, and nobody but the owner can read it (mode 600 from its creation, not chmod'ed
/// after).
pub fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_file_is_private_and_replaced_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh");
        std::fs::write(&path, "old\n").unwrap();
        write_secret_file(&path, "new-token").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new-token\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn an_empty_refresh_token_file_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("refresh");
        std::fs::write(&path, "\n").unwrap();
        let e = read_refresh_token("oauth2", &path).err().unwrap();
        assert!(
            e.to_string().starts_with("oauth2.refresh_token_file: "),
            "{e}"
        );
        assert!(e.to_string().contains("helpdesk oauth login"), "{e}");
    }

    #[test]
    fn a_token_near_its_expiry_is_not_fresh() {
        let now = Instant::now();
        let token = |secs| AccessToken {
            secret: SecretString::from("t".to_string()),
            expires: now + Duration::from_secs(secs),
        };
        assert!(token(3600).fresh(now));
        assert!(!token(30).fresh(now));
    }
}
