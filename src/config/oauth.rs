//! `[oauth2]` (shared by the source and the outbox) or `[source.imap.oauth2]` /
//! `[outbox.smtp.oauth2]` (one per side): who issues the mailbox's tokens, and how the
//! gateway gets them.

use std::sync::Arc;

use crate::oauth::{Grant, OAuth2, OAuth2Settings, Provider};

use super::*;

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    provider: String,
    /// Microsoft: the directory (tenant) ID or domain.
    tenant: Option<String>,
    client_id: String,
    client_secret_file: Option<PathBuf>,
    token_url: Option<String>,
    auth_url: Option<String>,
    device_url: Option<String>,
    scopes: Option<Vec<String>>,
    /// Delegated access; without it, the client credentials flow (app-only).
    refresh_token_file: Option<PathBuf>,
}

/// How a mailbox login proves itself.
#[derive(Clone, Debug)]
pub enum Login {
    Password(SecretString),
    OAuth2(Arc<OAuth2>),
}

/// The `auth` key of a side: "password" (the default) or "oauth2".
pub(super) fn wants_oauth2(key: &str, auth: Option<&str>) -> Result<bool, ConfigError> {
    match auth.unwrap_or("password") {
        "password" => Ok(false),
        "oauth2" => Ok(true),
        other => Err(invalid(
            key,
            format!("{other:?} is not a login method"),
            "use \"password\" or \"oauth2\"",
        )),
    }
}

/// The checked settings of one `[oauth2]` section, with the token cache around them.
pub(super) fn oauth2(
    key: &str,
    raw: RawOAuth2,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
) -> Result<Arc<OAuth2>, ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    let provider = Provider::parse(&raw.provider).ok_or_else(|| {
        invalid(
            &k("provider"),
            format!("{:?} is not a provider", raw.provider),
            "use \"microsoft\", \"google\" or \"custom\"",
        )
    })?;
    if raw.client_id.trim().is_empty() {
        return Err(invalid(
            &k("client_id"),
            "empty",
            "give the application (client) ID of the app registration",
        ));
    }
    let client_secret = secret(
        &k("client_secret"),
        None,
        raw.client_secret_file.map(resolve),
        env.var("HELPDESK_OAUTH2_CLIENT_SECRET"),
        "HELPDESK_OAUTH2_CLIENT_SECRET",
    )?;
    let grant = match raw.refresh_token_file {
        Some(path) => Grant::RefreshToken(resolve(path)),
        None if client_secret.is_some() => Grant::ClientCredentials,
        None => {
            return Err(invalid(
                &k("refresh_token_file"),
                "neither a refresh token file (delegated access) nor a client secret \
                 (client credentials, app-only access) is given",
                "set refresh_token_file and run `helpdesk oauth login`, or set \
                 client_secret_file for the client credentials flow",
            ));
        }
    };
    let delegated = matches!(grant, Grant::RefreshToken(_));
    let (token_url, auth_url, device_url, scopes) = match provider {
        Provider::Microsoft => {
            let tenant = raw.tenant.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
                invalid(
                    &k("tenant"),
                    "missing",
                    "give the directory (tenant) ID from the app registration's overview \
                     (or your domain, e.g. \"example.com\")",
                )
            })?;
            let base = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0");
            let scopes = if delegated {
                vec![
                    "https://outlook.office.com/IMAP.AccessAsUser.All".to_string(),
                    "https://outlook.office.com/SMTP.Send".to_string(),
                    "offline_access".to_string(),
                ]
            } else {
                vec!["https://outlook.office365.com/.default".to_string()]
            };
            (
                format!("{base}/token"),
                Some(format!("{base}/authorize")),
                Some(format!("{base}/devicecode")),
                scopes,
            )
        }
        Provider::Google => (
            "https://oauth2.googleapis.com/token".to_string(),
            Some("https://accounts.google.com/o/oauth2/v2/auth".to_string()),
            None,
            vec!["https://mail.google.com/".to_string()],
        ),
        Provider::Custom => (
            raw.token_url.clone().ok_or_else(|| {
                invalid(
                    &k("token_url"),
                    "missing",
                    "a custom provider needs its token endpoint, token_url = \"https://…\"",
                )
            })?,
            None,
            None,
            Vec::new(),
        ),
    };
    let token_url = raw.token_url.unwrap_or(token_url);
    let auth_url = raw.auth_url.or(auth_url);
    let device_url = raw.device_url.or(device_url);
    for (name, url) in [
        ("token_url", Some(&token_url)),
        ("auth_url", auth_url.as_ref()),
        ("device_url", device_url.as_ref()),
    ] {
        if let Some(url) = url {
            check_url(&k(name), url)?;
        }
    }
    if provider == Provider::Google && !delegated {
        return Err(invalid(
            &k("refresh_token_file"),
            "Gmail has no client credentials flow",
            "set refresh_token_file and sign in with `helpdesk oauth login` as the mailbox's user",
        ));
    }
    let settings = OAuth2Settings {
        key: key.to_string(),
        provider,
        client_id: raw.client_id,
        client_secret,
        token_url,
        auth_url,
        device_url,
        scopes: raw.scopes.unwrap_or(scopes),
        grant,
    };
    Ok(Arc::new(OAuth2::new(settings)))
}

/// Tokens and secrets go only over TLS, except to a server on this machine.
fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let hint = "give an https:// URL (http:// only for a server on this machine)";
    if url.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err(invalid(key, format!("{url:?} is not an http(s) URL"), hint));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    if is_loopback(host.trim_start_matches('[').trim_end_matches(']')) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{url:?} would send secrets in clear to {host}"),
            hint,
        ))
    }
}

/// The section a side uses: its own, else the shared `[oauth2]`.
pub(super) fn side_oauth2(
    side: &str,
    own: Option<RawOAuth2>,
    shared: Option<&Arc<OAuth2>>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
) -> Result<Arc<OAuth2>, ConfigError> {
    match (own, shared) {
        (Some(raw), _) => oauth2(&format!("{side}.oauth2"), raw, resolve, env),
        (None, Some(shared)) => Ok(shared.clone()),
        (None, None) => Err(invalid(
            &format!("{side}.auth"),
            "\"oauth2\" needs an [oauth2] section",
            format!("add [oauth2] (provider, client_id, …), or [{side}.oauth2] for this side only"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_go_over_tls_or_stay_on_this_machine() {
        assert!(check_url("k", "https://login.microsoftonline.com/x/token").is_ok());
        assert!(check_url("k", "http://127.0.0.1:8080/token").is_ok());
        assert!(check_url("k", "http://localhost/token").is_ok());
        assert!(check_url("k", "http://[::1]:9/token").is_ok());
        let e = check_url("oauth2.token_url", "http://tokens.example.com/token").unwrap_err();
        assert!(e.to_string().starts_with("oauth2.token_url: "), "{e}");
        assert!(check_url("k", "http://127.0.0.1.evil.example/token").is_err());
        assert!(check_url("k", "ftp://127.0.0.1/").is_err());
    }
}
