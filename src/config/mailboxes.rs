//! Where mail comes from and goes: `[source]` (a Maildir or an IMAP mailbox) and
//! `[outbox]` (SMTP or files), each value checked with an error that names its key.

use std::sync::Arc;

use super::oauth::{side_oauth2, wants_oauth2};
use super::*;
use crate::oauth::OAuth2;

/// `[source]`: a Maildir or an IMAP mailbox.
pub(super) fn source(
    raw: RawSource,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
    shared_oauth2: Option<&Arc<OAuth2>>,
) -> Result<SourceSettings, ConfigError> {
    Ok(match raw.kind.as_str() {
        "maildir" => {
            let m = raw.maildir.ok_or_else(|| {
                invalid(
                    "source.maildir",
                    "missing",
                    "add a [source.maildir] table with path = \"…\"",
                )
            })?;
            at_least_100ms("source.maildir.poll_interval", m.poll_interval)?;
            SourceSettings::Maildir(MaildirSettings {
                path: resolve(m.path),
                poll_interval: m.poll_interval,
            })
        }
        "imap" => SourceSettings::Imap(imaps(raw.imap, &resolve, env, shared_oauth2)?),
        other => {
            return Err(invalid(
                "source.kind",
                format!("{other:?} is not a mail source"),
                "use \"maildir\" or \"imap\"",
            ));
        }
    })
}

/// `[source.imap]`, or several `[[source.imap]]`: errors about the second and later name
/// them `source.imap[1]`…, and two entries for the same mailbox are refused (both would
/// be read under one lease and one checkpoint).
fn imaps(
    raw: Option<super::OneOrMany<RawImap>>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
    shared_oauth2: Option<&Arc<OAuth2>>,
) -> Result<Vec<ImapSettings>, ConfigError> {
    let raws = match raw {
        None => vec![None],
        Some(super::OneOrMany::One(one)) => vec![Some(one)],
        Some(super::OneOrMany::Many(many)) if many.is_empty() => vec![None],
        Some(super::OneOrMany::Many(many)) => many.into_iter().map(Some).collect(),
    };
    let several = raws.len() > 1;
    let mut out: Vec<ImapSettings> = Vec::with_capacity(raws.len());
    for (n, raw) in raws.into_iter().enumerate() {
        let settings = imap(raw, resolve, env, shared_oauth2).map_err(|e| match e {
            ConfigError::Invalid { key, message, hint } if several => ConfigError::Invalid {
                key: key.replacen("source.imap", &format!("source.imap[{n}]"), 1),
                message,
                hint,
            },
            other => other,
        })?;
        if let Some(first) = out.iter().position(|o| {
            (o.host.as_str(), o.username.as_str(), o.mailbox.as_str())
                == (&settings.host, &settings.username, &settings.mailbox)
        }) {
            return Err(invalid(
                &format!("source.imap[{n}]"),
                format!(
                    "the same mailbox as source.imap[{first}] ({}@{}/{})",
                    settings.username, settings.host, settings.mailbox
                ),
                "remove one of them",
            ));
        }
        out.push(settings);
    }
    Ok(out)
}

/// `[source.imap]`: the server, its TLS, the login and how the mailbox is read.
pub(super) fn imap(
    raw: Option<RawImap>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
    shared_oauth2: Option<&Arc<OAuth2>>,
) -> Result<ImapSettings, ConfigError> {
    let i = raw.ok_or_else(|| {
        invalid(
            "source.imap",
            "missing",
            "add a [source.imap] table with host, username and tls",
        )
    })?;
    let tls = TlsMode::parse("source.imap.tls", &i.tls)?;
    if tls == TlsMode::Plain && !is_loopback(&i.host) {
        return Err(invalid(
            "source.imap.tls",
            format!("\"plain\" would send the password in clear to {}", i.host),
            "use \"implicit\" or \"starttls\" (\"plain\" is for a server on this machine only)",
        ));
    }
    let port = i.port.unwrap_or(match tls {
        TlsMode::Implicit => 993,
        _ => 143,
    });
    if port == 0 {
        return Err(invalid(
            "source.imap.port",
            "0 is not a port",
            "use 1-65535, e.g. 993",
        ));
    }
    if i.host.trim().is_empty() {
        return Err(invalid(
            "source.imap.host",
            "empty",
            "set the IMAP server's host name",
        ));
    }
    if i.batch_size == 0 || i.batch_size > 5000 {
        return Err(invalid(
            "source.imap.batch_size",
            format!("{} is out of range", i.batch_size),
            "use 1-5000 (default 200)",
        ));
    }
    if i.idle_timeout > Duration::from_secs(29 * 60) || i.idle_timeout < Duration::from_secs(1) {
        return Err(invalid(
            "source.imap.idle_timeout",
            format!("{:?} is out of range", i.idle_timeout),
            "use between 1s and 29m (servers drop IDLE after 30 minutes)",
        ));
    }
    let login = if wants_oauth2("source.imap.auth", i.auth.as_deref())? {
        if i.password.is_some() || i.password_file.is_some() {
            return Err(invalid(
                "source.imap.password",
                "set, but auth = \"oauth2\" logs in with a token",
                "remove password / password_file, or use auth = \"password\"",
            ));
        }
        Login::OAuth2(side_oauth2(
            "source.imap",
            i.oauth2,
            shared_oauth2,
            resolve,
            env,
        )?)
    } else {
        if i.oauth2.is_some() {
            return Err(invalid(
                "source.imap.oauth2",
                "set, but auth is \"password\"",
                "add auth = \"oauth2\" to [source.imap]",
            ));
        }
        Login::Password(
            secret(
                "source.imap.password",
                i.password,
                i.password_file.map(resolve),
                env.var("HELPDESK_IMAP_PASSWORD"),
                "HELPDESK_IMAP_PASSWORD",
            )?
            .ok_or_else(|| {
                invalid(
                    "source.imap.password",
                    "no password given",
                    "set HELPDESK_IMAP_PASSWORD, or source.imap.password_file \
                     (or auth = \"oauth2\" for Microsoft 365 and Gmail)",
                )
            })?,
        )
    };
    at_least_100ms("source.imap.poll_interval", i.poll_interval)?;
    Ok(ImapSettings {
        host: i.host,
        port,
        tls,
        username: i.username,
        login,
        ca_file: i.ca_file.map(resolve),
        mailbox: i.mailbox,
        processed_folder: i.processed_folder,
        quarantine_folder: i.quarantine_folder,
        poll_interval: i.poll_interval,
        idle: i.idle,
        idle_timeout: i.idle_timeout,
        batch_size: i.batch_size,
    })
}

/// `[outbox.smtp]`: the server, its TLS, and the login (both parts or neither).
pub(super) fn smtp(
    raw: Option<RawSmtp>,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
    support_address: &EmailAddress,
    shared_oauth2: Option<&Arc<OAuth2>>,
) -> Result<SmtpSettings, ConfigError> {
    let s = raw.ok_or_else(|| {
        invalid(
            "outbox.smtp",
            "missing",
            "add an [outbox.smtp] table with host and tls",
        )
    })?;
    let tls = TlsMode::parse("outbox.smtp.tls", &s.tls)?;
    let port = s.port.unwrap_or(match tls {
        TlsMode::Implicit => 465,
        TlsMode::StartTls => 587,
        TlsMode::Plain => 25,
    });
    let credentials = if wants_oauth2("outbox.smtp.auth", s.auth.as_deref())? {
        let username = s.username.ok_or_else(|| {
            invalid(
                "outbox.smtp.username",
                "auth = \"oauth2\" needs the mailbox's address",
                "set outbox.smtp.username (e.g. the support address)",
            )
        })?;
        if s.password.is_some() || s.password_file.is_some() {
            return Err(invalid(
                "outbox.smtp.password",
                "set, but auth = \"oauth2\" logs in with a token",
                "remove password / password_file, or use auth = \"password\"",
            ));
        }
        let oauth2 = side_oauth2("outbox.smtp", s.oauth2, shared_oauth2, resolve, env)?;
        Some((username, Login::OAuth2(oauth2)))
    } else {
        if s.oauth2.is_some() {
            return Err(invalid(
                "outbox.smtp.oauth2",
                "set, but auth is \"password\"",
                "add auth = \"oauth2\" to [outbox.smtp]",
            ));
        }
        let password = secret(
            "outbox.smtp.password",
            s.password,
            s.password_file.map(resolve),
            env.var("HELPDESK_SMTP_PASSWORD"),
            "HELPDESK_SMTP_PASSWORD",
        )?;
        match (s.username, password) {
            (Some(u), Some(p)) => Some((u, Login::Password(p))),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    "outbox.smtp.password",
                    "a username is set but no password",
                    "set HELPDESK_SMTP_PASSWORD or outbox.smtp.password_file",
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "outbox.smtp.username",
                    "a password is set but no username",
                    "set outbox.smtp.username",
                ));
            }
        }
    };
    if credentials.is_some() && tls == TlsMode::Plain && !is_loopback(&s.host) {
        return Err(invalid(
            "outbox.smtp.tls",
            "\"plain\" would send the password or token in clear to a remote server",
            "use \"starttls\" or \"implicit\"",
        ));
    }
    Ok(SmtpSettings {
        helo_name: s
            .helo_name
            .unwrap_or_else(|| support_address.domain().to_string()),
        host: s.host,
        port,
        tls,
        credentials,
        ca_file: s.ca_file.map(resolve),
        timeout: s.timeout,
    })
}

/// `[outbox]`: the transport (SMTP or files) and the retries.
pub(super) fn outbox(
    o: RawOutbox,
    resolve: &dyn Fn(PathBuf) -> PathBuf,
    env: &dyn Env,
    support_address: &EmailAddress,
    shared_oauth2: Option<&Arc<OAuth2>>,
) -> Result<OutboxSettings, ConfigError> {
    let transport = match o.transport.as_str() {
        "file" => {
            let f = o.file.ok_or_else(|| {
                invalid(
                    "outbox.file",
                    "missing",
                    "add an [outbox.file] table with dir = \"…\"",
                )
            })?;
            TransportSettings::File {
                dir: resolve(f.dir),
            }
        }
        "smtp" => {
            TransportSettings::Smtp(smtp(o.smtp, resolve, env, support_address, shared_oauth2)?)
        }
        other => {
            return Err(invalid(
                "outbox.transport",
                format!("{other:?} is not a transport"),
                "use \"smtp\" or \"file\"",
            ));
        }
    };
    if o.concurrency == 0 || o.concurrency > 64 {
        return Err(invalid(
            "outbox.concurrency",
            format!("{} is out of range", o.concurrency),
            "use 1-64 (default 4)",
        ));
    }
    at_least_100ms("outbox.retry_base", o.retry_base)?;
    if o.retry_max < o.retry_base {
        return Err(invalid(
            "outbox.retry_max",
            format!(
                "{} is shorter than retry_base ({})",
                humantime::format_duration(o.retry_max),
                humantime::format_duration(o.retry_base)
            ),
            "give a longest wait between attempts at least as long as the first (defaults 30s and 1h)",
        ));
    }
    if o.max_attempts == 0 {
        return Err(invalid(
            "outbox.max_attempts",
            "0 would never send",
            "use at least 1 (default 10)",
        ));
    }

    Ok(OutboxSettings {
        transport,
        retry_base: o.retry_base,
        retry_max: o.retry_max,
        max_attempts: o.max_attempts,
        concurrency: o.concurrency,
    })
}
