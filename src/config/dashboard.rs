//! `[dashboard]`: where the read-only web dashboard, `/metrics` and `/healthz` listen, and
//! the token that guards them off loopback.

use std::net::SocketAddr;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{ConfigError, Env, invalid};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDashboard {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
}

/// The dashboard's address and its token. No `[dashboard]`: nothing listens.
#[derive(Clone, Debug)]
pub struct DashboardSettings {
    pub listen: SocketAddr,
    /// Required off loopback; on loopback, optional (then every local user can read).
    pub token: Option<SecretString>,
}

/// The shortest token accepted: 128 bits' worth of hex, so nobody guesses it by trying.
const SHORTEST_TOKEN: usize = 32;

pub(super) fn build(
    raw: Option<RawDashboard>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
) -> Result<Option<DashboardSettings>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let Some(listen) = raw.listen else {
        return Err(invalid(
            "dashboard.listen",
            "missing",
            "give an address and port, e.g. listen = \"127.0.0.1:8025\", or remove [dashboard]",
        ));
    };
    let listen: SocketAddr = listen.parse().map_err(|_| {
        invalid(
            "dashboard.listen",
            format!("{listen:?} is not an IP address and port"),
            "e.g. \"127.0.0.1:8025\" (this machine only) or \"0.0.0.0:8025\" with a token",
        )
    })?;
    if raw.token.is_some() && raw.token_file.is_some() {
        return Err(invalid(
            "dashboard.token",
            "both token and token_file are set",
            "keep one of them",
        ));
    }
    let token = super::secret(
        "dashboard.token",
        raw.token,
        raw.token_file.map(resolve),
        env.var("HELPDESK_DASHBOARD_TOKEN"),
        "HELPDESK_DASHBOARD_TOKEN",
    )?;
    if let Some(t) = &token
        && t.expose_secret().chars().count() < SHORTEST_TOKEN
    {
        return Err(invalid(
            "dashboard.token",
            format!("shorter than {SHORTEST_TOKEN} characters"),
            "use a long random one, e.g. the output of `openssl rand -hex 32`",
        ));
    }
    let settings = DashboardSettings { listen, token };
    settings.check()?;
    Ok(Some(settings))
}

impl DashboardSettings {
    /// Off loopback, a token: a stranger on the network must not read the desk.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.token.is_none() && !self.listen.ip().is_loopback() {
            return Err(invalid(
                "dashboard.token",
                format!(
                    "the dashboard listens on {}, beyond this machine, without a token",
                    self.listen
                ),
                "set token_file (or token, or HELPDESK_DASHBOARD_TOKEN) to a long random secret, \
                 or listen on 127.0.0.1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::NoEnv;
    use super::*;

    fn raw(listen: &str, token: Option<&str>) -> Option<RawDashboard> {
        Some(RawDashboard {
            listen: Some(listen.into()),
            token: token.map(Into::into),
            token_file: None,
        })
    }

    fn build_err(r: Option<RawDashboard>) -> String {
        build(r, &|p| p, &NoEnv).unwrap_err().to_string()
    }

    #[test]
    fn off_loopback_a_long_token_is_required() {
        assert!(build(None, &|p| p, &NoEnv).unwrap().is_none());
        let local = build(raw("127.0.0.1:8025", None), &|p| p, &NoEnv)
            .unwrap()
            .unwrap();
        assert!(local.token.is_none());
        let err = build_err(raw("0.0.0.0:8025", None));
        assert!(
            err.contains("dashboard.token") && err.contains("token_file"),
            "{err}"
        );
        let err = build_err(raw("0.0.0.0:8025", Some("short")));
        assert!(
            err.contains("dashboard.token") && err.contains("32"),
            "{err}"
        );
        let ok = build(raw("[::]:8025", Some(&"x".repeat(40))), &|p| p, &NoEnv)
            .unwrap()
            .unwrap();
        assert!(ok.token.is_some());
        let err = build_err(raw("localhost:8025", None));
        assert!(
            err.contains("dashboard.listen") && err.contains("127.0.0.1"),
            "{err}"
        );
    }
}
