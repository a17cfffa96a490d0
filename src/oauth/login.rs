//! `helpdesk oauth login`: a person consents once, and the refresh token the provider
//! returns is written to `refresh_token_file` for the gateway to use from then on.
//!
//! Two flows, because the providers differ: the device flow (RFC 8628: a URL and a short
//! code to type on any device) for Microsoft and custom servers; for Google, whose device
//! flow refuses the Gmail scope, the loopback flow of installed apps (RFC 8252: a browser
//! on this machine, or one reaching it through an SSH tunnel, is sent back to
//! `http://127.0.0.1:PORT/` with a code), with PKCE.

use std::time::Duration;

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, DeviceAuthorizationUrl,
    PkceCodeChallenge, RedirectUrl, Scope, StandardDeviceAuthorizationResponse, TokenResponse,
    TokenUrl,
};
use secrecy::ExposeSecret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{Grant, OAuth2, OAuthError, token_error, write_secret_file};

/// What to show the person signing in.
#[derive(Debug, Clone)]
pub struct LoginPrompt {
    /// The page to open.
    pub url: String,
    /// The code to type there (device flow only).
    pub code: Option<String>,
    /// How long the offer stands.
    pub expires_in: Duration,
}

/// What a completed sign-in gave.
#[derive(Debug)]
pub struct LoginOutcome {
    pub refresh_token_file: std::path::PathBuf,
    pub scopes: Option<Vec<String>>,
}

fn url_error(key: &str, e: impl std::fmt::Display) -> OAuthError {
    OAuthError::Refused {
        key: key.to_string(),
        reason: e.to_string(),
        hint: "give an https:// URL".into(),
    }
}

fn refresh_file(oauth: &OAuth2) -> Result<std::path::PathBuf, OAuthError> {
    match &oauth.settings.grant {
        Grant::RefreshToken(path) => Ok(path.clone()),
        Grant::ClientCredentials => Err(OAuthError::File {
            key: format!("{}.refresh_token_file", oauth.settings.key),
            message: "not set: a sign-in gives a refresh token, which needs a file to go to \
                      (client credentials need no sign-in)"
                .into(),
        }),
    }
}

fn save(
    oauth: &OAuth2,
    path: std::path::PathBuf,
    token: &impl TokenResponse,
) -> Result<LoginOutcome, OAuthError> {
    let s = &oauth.settings;
    let refresh = token.refresh_token().ok_or_else(|| OAuthError::Refused {
        key: format!("{}.scopes", s.key),
        reason: "the provider gave no refresh token".into(),
        hint: "ask for offline access (Microsoft: the offline_access scope)".into(),
    })?;
    write_secret_file(&path, refresh.secret()).map_err(|e| OAuthError::File {
        key: format!("{}.refresh_token_file", s.key),
        message: format!("cannot write {}: {e}", path.display()),
    })?;
    Ok(LoginOutcome {
        refresh_token_file: path,
        scopes: token
            .scopes()
            .map(|s| s.iter().map(|x| x.to_string()).collect()),
    })
}

/// The device flow: asks for a code, shows it, waits for the person's consent.
pub async fn device_login(
    oauth: &OAuth2,
    show: impl FnOnce(&LoginPrompt),
) -> Result<LoginOutcome, OAuthError> {
    let s = &oauth.settings;
    let path = refresh_file(oauth)?;
    let device_url = s.device_url.clone().ok_or_else(|| OAuthError::Refused {
        key: format!("{}.device_url", s.key),
        reason: "no device authorization endpoint".into(),
        hint: "give the server's device_url (RFC 8628)".into(),
    })?;
    let mut client = BasicClient::new(ClientId::new(s.client_id.clone()))
        .set_token_uri(TokenUrl::new(s.token_url.clone()).map_err(|e| url_error(&s.key, e))?)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(device_url).map_err(|e| url_error(&s.key, e))?,
        )
        .set_auth_type(oauth2::AuthType::RequestBody);
    if let Some(secret) = &s.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    let http = oauth.http()?;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(s.scopes.iter().map(|x| Scope::new(x.clone())))
        .request_async(http)
        .await
        .map_err(|e| token_error(s, e))?;
    show(&LoginPrompt {
        url: details.verification_uri().to_string(),
        code: Some(details.user_code().secret().clone()),
        expires_in: details.expires_in(),
    });
    let token = client
        .exchange_device_access_token(&details)
        .request_async(http, tokio::time::sleep, None)
        .await
        .map_err(|e| token_error(s, e))?;
    save(oauth, path, &token)
}

/// The loopback flow with PKCE: listens on 127.0.0.1 (any free port, or `port`), shows
/// the consent URL, and takes the one redirect that carries our state.
pub async fn loopback_login(
    oauth: &OAuth2,
    port: u16,
    show: impl FnOnce(&LoginPrompt),
) -> Result<LoginOutcome, OAuthError> {
    let s = &oauth.settings;
    let path = refresh_file(oauth)?;
    let auth_url = s.auth_url.clone().ok_or_else(|| OAuthError::Refused {
        key: format!("{}.auth_url", s.key),
        reason: "no authorization endpoint".into(),
        hint: "give auth_url".into(),
    })?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| OAuthError::Unreachable {
            url: format!("127.0.0.1:{port}"),
            message: format!("cannot listen for the browser's return: {e}"),
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| OAuthError::Unreachable {
            url: "127.0.0.1".into(),
            message: e.to_string(),
        })?
        .port();
    let redirect = format!("http://127.0.0.1:{port}/");
    let mut client = BasicClient::new(ClientId::new(s.client_id.clone()))
        .set_auth_uri(AuthUrl::new(auth_url).map_err(|e| url_error(&s.key, e))?)
        .set_token_uri(TokenUrl::new(s.token_url.clone()).map_err(|e| url_error(&s.key, e))?)
        .set_redirect_uri(RedirectUrl::new(redirect).map_err(|e| url_error(&s.key, e))?)
        .set_auth_type(oauth2::AuthType::RequestBody);
    if let Some(secret) = &s.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(s.scopes.iter().map(|x| Scope::new(x.clone())))
        // Google returns a refresh token only for offline access, and only at first
        // consent unless asked again.
        .add_extra_param("access_type", "offline")
        .add_extra_param("prompt", "consent")
        .set_pkce_challenge(challenge)
        .url();
    show(&LoginPrompt {
        url: url.to_string(),
        code: None,
        expires_in: Duration::from_secs(600),
    });
    let code = tokio::time::timeout(Duration::from_secs(600), async {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            if let Some(code) = redirect_code(stream, state.secret()).await {
                return code;
            }
        }
    })
    .await
    .map_err(|_| OAuthError::Refused {
        key: s.key.clone(),
        reason: "no consent within 10 minutes".into(),
        hint: "run `helpdesk oauth login` again".into(),
    })??;
    let http = oauth.http()?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(http)
        .await
        .map_err(|e| token_error(s, e))?;
    save(oauth, path, &token)
}

/// Reads one request from the browser. `None` for anything that is not the redirect with
/// our state (a favicon, a stray request): the flow keeps waiting. `Some(Err)` when the
/// provider reports a refusal.
async fn redirect_code(
    stream: tokio::net::TcpStream,
    state: &str,
) -> Option<Result<String, OAuthError>> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(read).take(8192);
    tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line))
        .await
        .ok()?
        .ok()?;
    let target = line.split_whitespace().nth(1)?;
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    if get("state").as_deref() != Some(state) {
        let _ = write
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return None;
    }
    let (body, outcome) = match (get("code"), get("error")) {
        (Some(code), _) => ("Signed in: you can close this page.", Ok(code)),
        (None, error) => (
            "Sign-in refused: see the terminal.",
            Err(OAuthError::Refused {
                key: "oauth2".into(),
                reason: error.unwrap_or_else(|| "no code".into()),
                hint: "consent to the scopes asked for, as the mailbox's user".into(),
            }),
        ),
    };
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = write.write_all(response.as_bytes()).await;
    Some(outcome)
}
