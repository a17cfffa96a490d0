//! An OAuth2 authorization server on loopback for the OAuth2 tests: the token endpoint
//! (refresh_token, client_credentials and device_code grants, RFC 6749 and 8628) and the
//! introspection endpoint Dovecot's oauth2 passdb asks (RFC 7662). Refresh tokens rotate
//! at each use, as Microsoft's and many others' do; the test can expire every access
//! token or revoke every refresh token at any moment.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

pub const CLIENT_ID: &str = "helpdesk-test-client";
pub const CLIENT_SECRET: &str = "s3cret-client-Value-0xC0FFEE";

#[derive(Default)]
pub struct Tokens {
    /// Access token → (user, valid until).
    access: HashMap<String, (String, Instant)>,
    refresh: HashMap<String, String>,
    device: HashMap<String, u32>,
    serial: u32,
    /// Grants served, by type.
    pub grants: HashMap<String, u32>,
    /// Every secret this server handed out, for the tests' "never in the log" checks.
    pub issued: HashSet<String>,
    pub lifetime: Duration,
    pub introspections: u32,
}

#[derive(Clone)]
pub struct TokenServer {
    pub port: u16,
    pub state: Arc<Mutex<Tokens>>,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TokenServer {
    /// Serves on a free loopback port from the test's runtime.
    pub async fn start(user: &str) -> TokenServer {
        let state = Arc::new(Mutex::new(Tokens {
            lifetime: Duration::from_secs(3600),
            ..Tokens::default()
        }));
        let app = axum::Router::new()
            .route("/token", post(token))
            .route("/introspect", post(introspect))
            .route("/device", post(device))
            .with_state((state.clone(), user.to_string()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TokenServer {
            port,
            state,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// A refresh token as a past sign-in would have left it.
    pub fn new_refresh_token(&self, user: &str) -> String {
        let mut s = self.state.lock().unwrap();
        let token = next(&mut s, "rt");
        s.refresh.insert(token.clone(), user.to_string());
        token
    }

    /// Every access token handed out stops working now (the gateway still thinks them
    /// valid).
    pub fn expire_access_tokens(&self) {
        let mut s = self.state.lock().unwrap();
        let past = Instant::now() - Duration::from_secs(1);
        for (_, until) in s.access.values_mut() {
            *until = past;
        }
    }

    /// Every refresh token is revoked (an admin revoked the sessions, a password changed).
    pub fn revoke_refresh_tokens(&self) {
        self.state.lock().unwrap().refresh.clear();
    }

    pub fn grants(&self, kind: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .grants
            .get(kind)
            .copied()
            .unwrap_or(0)
    }

    pub fn issued(&self) -> Vec<String> {
        self.state.lock().unwrap().issued.iter().cloned().collect()
    }

    pub fn current_refresh_tokens(&self) -> Vec<String> {
        self.state.lock().unwrap().refresh.keys().cloned().collect()
    }
}

fn next(s: &mut Tokens, prefix: &str) -> String {
    s.serial += 1;
    let token = format!("{prefix}-{:04}-{:016x}", s.serial, rand::random::<u64>());
    s.issued.insert(token.clone());
    token
}

type Shared = (Arc<Mutex<Tokens>>, String);

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn error(code: &str, description: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        serde_json::json!({"error": code, "error_description": description}),
    )
}

/// The client authenticates with HTTP Basic or in the body (RFC 6749 §2.3.1).
fn client_ok(headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    use base64::Engine;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    let (id, secret) = match basic {
        Some(pair) => match pair.split_once(':') {
            Some((i, s)) => (i.to_string(), Some(s.to_string())),
            None => return false,
        },
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned(),
        ),
    };
    id == CLIENT_ID && secret.as_deref().is_none_or(|s| s == CLIENT_SECRET)
}

fn issue(s: &mut Tokens, user: &str, with_refresh: bool) -> Response {
    let access = next(s, "at");
    let until = Instant::now() + s.lifetime;
    s.access.insert(access.clone(), (user.to_string(), until));
    let mut body = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": s.lifetime.as_secs(),
        "scope": "imap smtp",
    });
    if with_refresh {
        let refresh = next(s, "rt");
        s.refresh.insert(refresh.clone(), user.to_string());
        body["refresh_token"] = refresh.into();
    }
    json(StatusCode::OK, body)
}

async fn token(
    State((state, _)): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !client_ok(&headers, &form) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "invalid_client"}),
        );
    }
    let mut s = state.lock().unwrap();
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    *s.grants.entry(grant.clone()).or_default() += 1;
    match grant.as_str() {
        "refresh_token" => {
            let given = form.get("refresh_token").cloned().unwrap_or_default();
            // Rotation: the token used is spent.
            match s.refresh.remove(&given) {
                Some(user) => issue(&mut s, &user, true),
                None => error(
                    "invalid_grant",
                    "AADSTS70008: The provided authorization code or refresh token has expired or was revoked.\r\nTrace ID: 0000",
                ),
            }
        }
        "client_credentials" => {
            if !form.contains_key("client_secret") && headers.get(header::AUTHORIZATION).is_none() {
                return error("invalid_client", "client credentials need the secret");
            }
            issue(&mut s, "support@example.test", false)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            let Some(polls) = s.device.get_mut(&code) else {
                return error("invalid_grant", "unknown device code");
            };
            *polls += 1;
            // The person consents between the first and the second poll.
            if *polls < 2 {
                return error("authorization_pending", "waiting for the user");
            }
            s.device.remove(&code);
            issue(&mut s, "support@example.test", true)
        }
        _ => error("unsupported_grant_type", "no such grant"),
    }
}

async fn device(
    State((state, _)): State<Shared>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !client_ok(&headers, &form) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "invalid_client"}),
        );
    }
    let mut s = state.lock().unwrap();
    let code = next(&mut s, "dc");
    s.device.insert(code.clone(), 0);
    json(
        StatusCode::OK,
        serde_json::json!({
            "device_code": code,
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://login.example.test/device",
            "expires_in": 900,
            "interval": 1,
        }),
    )
}

async fn introspect(
    State((state, _)): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().unwrap();
    s.introspections += 1;
    let token = form.get("token").cloned().unwrap_or_default();
    match s.access.get(&token) {
        Some((user, until)) if *until > Instant::now() => json(
            StatusCode::OK,
            serde_json::json!({"active": true, "username": user}),
        ),
        _ => json(StatusCode::OK, serde_json::json!({"active": false})),
    }
}
