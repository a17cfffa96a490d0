//! The token that guards the dashboard off loopback: as `Authorization: Bearer` (scrapers,
//! scripts) or through the login form, which sets an HttpOnly, SameSite=Strict cookie.
//! The cookie holds a digest of the token, not the token. A refused request is logged with
//! where it came from, never with what it carried.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Form;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use super::Dashboard;

const COOKIE: &str = "helpdesk_session";
/// A browser stays signed in for 30 days.
const COOKIE_AGE_S: u64 = 30 * 24 * 3600;

fn digest(purpose: &str, value: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(value.as_bytes());
    h.finalize().into()
}

/// Compares two secrets in a time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Dashboard {
    fn token_digest(&self) -> Option<[u8; 32]> {
        self.settings
            .token
            .as_ref()
            .map(|t| digest("token", t.expose_secret()))
    }

    fn session_value(&self) -> Option<String> {
        self.settings
            .token
            .as_ref()
            .map(|t| hex::encode(digest("helpdesk dashboard session", t.expose_secret())))
    }

    /// Whether the request carries the token (or no token is set).
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = self.token_digest() else {
            return true;
        };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.strip_prefix("Bearer ").map(str::trim))
            .any(|t| same(&digest("token", t), &expected));
        if bearer {
            return true;
        }
        let Some(session) = self.session_value() else {
            return false;
        };
        let session = digest("session", &session);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .any(|v| same(&digest("session", v), &session))
    }
}

pub(super) async fn require_token(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if d.admits(request.headers()) {
        return next.run(request).await;
    }
    let carried = request.headers().contains_key(header::AUTHORIZATION)
        || request.headers().contains_key(header::COOKIE);
    tracing::warn!(
        peer = %peer,
        path = %request.uri().path(),
        carried_credentials = carried,
        "dashboard request refused: wrong or missing token"
    );
    let wants_html = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if wants_html {
        let language = super::pages::language_of(&d, request.headers());
        let next = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string());
        d.pages
            .login(language, &d.config, next.as_deref(), carried)
            .into_response()
    } else {
        "401 Unauthorized: give the dashboard's token as `Authorization: Bearer TOKEN`\n"
            .into_response()
    };
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"helpdesk\""),
    );
    response
}

#[derive(serde::Deserialize)]
pub(super) struct Login {
    token: String,
    #[serde(default)]
    next: Option<String>,
}

#[derive(serde::Deserialize)]
pub(super) struct LoginQuery {
    #[serde(default)]
    next: Option<String>,
}

/// Only a path of this site: never `//elsewhere` or `https://…` (an open redirect).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/",
    }
}

pub(super) async fn login_form(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Response {
    if d.settings.token.is_none() {
        return Redirect::to("/").into_response();
    }
    let language = super::pages::language_of(&d, &headers);
    d.pages
        .login(
            language,
            &d.config,
            Some(safe_next(q.next.as_deref())),
            false,
        )
        .into_response()
}

pub(super) async fn login(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let (Some(expected), Some(session)) = (d.token_digest(), d.session_value()) else {
        return Redirect::to("/").into_response();
    };
    let next = safe_next(form.next.as_deref()).to_string();
    if !same(&digest("token", form.token.trim()), &expected) {
        tracing::warn!(peer = %peer, "dashboard sign-in refused: wrong token");
        let language = super::pages::language_of(&d, &headers);
        let mut response = d
            .pages
            .login(language, &d.config, Some(&next), true)
            .into_response();
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        return response;
    }
    let cookie =
        format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_AGE_S}");
    (
        StatusCode::SEE_OTHER,
        [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(safe_next(Some("/tickets?tier=L1")), "/tickets?tier=L1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn secrets_compare_whole() {
        let a = digest("token", "abc");
        assert!(same(&a, &digest("token", "abc")));
        assert!(!same(&a, &digest("token", "abd")));
        assert!(!same(&a, &digest("session", "abc")));
    }
}
