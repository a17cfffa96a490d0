//! `[database]`: where the desk is kept. `sqlite:FILE` (the embedded default) or
//! `postgres://…`, the store several gateways share.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, Env, invalid, is_loopback, secret};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    url: String,
    /// PostgreSQL: a file holding the password (or `$HELPDESK_DATABASE_PASSWORD`).
    password_file: Option<PathBuf>,
}

/// Which store the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// The URL to open (a SQLite path made absolute; a PostgreSQL URL as given, never with a
/// password in it) and the password, kept apart so the URL can be printed.
pub(super) fn build(
    raw: RawDatabase,
    base: &Path,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
) -> Result<(String, Option<SecretString>), ConfigError> {
    match Backend::of(&raw.url) {
        Backend::Sqlite => {
            if raw.password_file.is_some() {
                return Err(invalid(
                    "database.password_file",
                    "set, but a SQLite database has no password",
                    "remove it, or point database.url at PostgreSQL",
                ));
            }
            Ok((resolve_sqlite_url(&raw.url, base)?, None))
        }
        Backend::Postgres => {
            check_postgres_url(&raw.url)?;
            let password = secret(
                "database.password",
                None,
                raw.password_file.map(resolve),
                env.var("HELPDESK_DATABASE_PASSWORD"),
                "HELPDESK_DATABASE_PASSWORD",
            )?;
            Ok((raw.url, password))
        }
    }
}

/// A PostgreSQL URL: no password in it (it would be printed in logs and errors, and be
/// readable by whoever reads the config), and no password sent in clear off this machine.
fn check_postgres_url(text: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(text).map_err(|e| {
        invalid(
            "database.url",
            format!("not a URL: {e}"),
            "use \"postgres://USER@HOST:5432/DATABASE\"",
        )
    })?;
    if url.password().is_some() {
        return Err(invalid(
            "database.url",
            "it holds a password",
            "remove it from the URL; put it in database.password_file or $HELPDESK_DATABASE_PASSWORD",
        ));
    }
    if url.path().trim_start_matches('/').is_empty() {
        return Err(invalid(
            "database.url",
            "no database name",
            "end the URL with the database, e.g. postgres://helpdesk@db.example:5432/desk",
        ));
    }
    let host = url.host_str().unwrap_or("");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // A host given as a query parameter that starts with '/' is a Unix socket: local.
    let socket = url
        .query_pairs()
        .any(|(k, v)| k == "host" && v.starts_with('/'));
    let secure = url.query_pairs().any(|(k, v)| {
        k == "sslmode" && matches!(v.as_ref(), "require" | "verify-ca" | "verify-full")
    });
    if !host.is_empty() && !is_loopback(host) && !socket && !secure {
        return Err(invalid(
            "database.url",
            format!(
                "the connection to {host} would not be encrypted (the password and every mail would cross the network in clear)"
            ),
            "add ?sslmode=verify-full (or sslmode=require) to the URL",
        ));
    }
    Ok(())
}

/// Makes `sqlite:` URLs with relative paths relative to the config file's folder.
fn resolve_sqlite_url(url: &str, base: &Path) -> Result<String, ConfigError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(invalid(
            "database.url",
            format!("{url:?} is not a supported database URL"),
            "use \"sqlite:helpdesk.db\" (a file path) or \"postgres://USER@HOST/DATABASE\"",
        ));
    };
    let path_part = rest.trim_start_matches("//");
    if path_part.is_empty() {
        return Err(invalid(
            "database.url",
            "no file name",
            "use \"sqlite:helpdesk.db\"",
        ));
    }
    if path_part.starts_with(':') {
        return Ok(format!("sqlite:{path_part}"));
    }
    if Path::new(path_part).is_absolute() {
        return Ok(format!("sqlite:{path_part}"));
    }
    Ok(format!("sqlite:{}", base.join(path_part).display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_keep_their_password_out_and_their_traffic_private() {
        assert!(check_postgres_url("postgres://helpdesk@127.0.0.1:5432/desk").is_ok());
        assert!(check_postgres_url("postgresql://helpdesk@localhost/desk").is_ok());
        assert!(
            check_postgres_url("postgres://helpdesk@db.example/desk?sslmode=verify-full").is_ok()
        );
        let e = check_postgres_url("postgres://helpdesk:pw@127.0.0.1/desk").unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");
        assert!(e.to_string().contains("password_file"), "{e}");
        let e = check_postgres_url("postgres://helpdesk@db.example/desk").unwrap_err();
        assert!(e.to_string().contains("sslmode"), "{e}");
        let e = check_postgres_url("postgres://helpdesk@127.0.0.1:5432/").unwrap_err();
        assert!(e.to_string().contains("database name"), "{e}");
        assert_eq!(Backend::of("postgres://x@y/z"), Backend::Postgres);
        assert_eq!(Backend::of("sqlite:desk.db"), Backend::Sqlite);
    }
}
