//! The two ways mail leaves: SMTP (lettre) or a folder of `.eml` files.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{SmtpSettings, TlsMode, TransportSettings};

/// Whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub enum Transport {
    Smtp(Arc<AsyncSmtpTransport<Tokio1Executor>>),
    File(PathBuf),
}

impl Transport {
    pub fn from_settings(settings: &TransportSettings) -> anyhow::Result<Self> {
        match settings {
            TransportSettings::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create outgoing folder {}: {e}", dir.display())
                })?;
                Ok(Transport::File(dir.clone()))
            }
            TransportSettings::Smtp(s) => Ok(Transport::Smtp(Arc::new(smtp(s)?))),
        }
    }

    /// Builds what `from_settings` would (the SMTP client with its TLS roots), without
    /// creating anything on disk: for `check-config`.
    pub fn check(settings: &TransportSettings) -> anyhow::Result<()> {
        match settings {
            TransportSettings::File { .. } => Ok(()),
            TransportSettings::Smtp(s) => smtp(s).map(|_| ()),
        }
    }

    /// Sends one mail. `id` names the file for the file transport, so sending the same
    /// outbox row twice (after a crash) rewrites one file instead of adding a second.
    pub async fn send(
        &self,
        id: i64,
        from: &str,
        to: &[String],
        raw: &[u8],
    ) -> Result<(), SendError> {
        match self {
            Transport::Smtp(smtp) => {
                let from = from
                    .parse()
                    .map_err(|e| SendError::Permanent(format!("sender {from}: {e}")))?;
                let to = to
                    .iter()
                    .map(|t| {
                        t.parse()
                            .map_err(|e| SendError::Permanent(format!("recipient {t}: {e}")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let envelope = Envelope::new(Some(from), to)
                    .map_err(|e| SendError::Permanent(e.to_string()))?;
                match smtp.send_raw(&envelope, raw).await {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Err(e) => Err(SendError::Temporary(e.to_string())),
                }
            }
            Transport::File(dir) => {
                let name = format!("{id:08}.eml");
                let tmp = dir.join(format!(".{name}.tmp"));
                let result = async {
                    tokio::fs::write(&tmp, raw).await?;
                    // Atomic: whoever watches the folder never reads half a mail.
                    tokio::fs::rename(&tmp, dir.join(&name)).await
                }
                .await;
                result.map_err(|e| {
                    SendError::Temporary(format!("writing {}: {e}", dir.join(name).display()))
                })
            }
        }
    }
}

fn smtp(s: &SmtpSettings) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let tls_params = || -> anyhow::Result<TlsParameters> {
        let mut builder = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca).map_err(|e| {
                anyhow::anyhow!("outbox.smtp.ca_file: cannot read {}: {e}", ca.display())
            })?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("outbox.smtp.ca_file: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(builder.build_rustls()?)
    };
    let tls = match s.tls {
        TlsMode::Implicit => Tls::Wrapper(tls_params()?),
        TlsMode::StartTls => Tls::Required(tls_params()?),
        TlsMode::Plain => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout))
        .hello_name(ClientId::Domain(s.helo_name.clone()))
        .pool_config(PoolConfig::new().max_size(16));
    if let Some((user, password)) = &s.credentials {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose_secret().to_string(),
        ));
    }
    Ok(builder.build())
}
