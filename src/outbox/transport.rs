//! The two ways mail leaves: SMTP (lettre) or a folder of `.eml` files.

use std::path::PathBuf;
use std::sync::Arc;

use lettre::address::Envelope;

use super::smtp::SmtpSender;
use crate::config::TransportSettings;

/// Whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary: {0}")]
    Temporary(String),
    #[error("permanent: {0}")]
    Permanent(String),
    /// The server refused the login (internal to the SMTP client: it becomes
    /// `Temporary`, or is retried with a new token).
    #[error("login refused: {0}")]
    Refused(String),
    /// No login is possible until a person acts (a revoked refresh token): no mail is
    /// failed for it, and the outbox stops.
    #[error("{0}")]
    Login(String),
}

#[derive(Clone)]
pub enum Transport {
    Smtp(Arc<SmtpSender>),
    File(PathBuf),
}

impl Transport {
    /// `connections`: how many SMTP connections to keep open between mails (the outbox's
    /// concurrency).
    pub fn from_settings(settings: &TransportSettings, connections: usize) -> anyhow::Result<Self> {
        match settings {
            TransportSettings::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("cannot create outgoing folder {}: {e}", dir.display())
                })?;
                Ok(Transport::File(dir.clone()))
            }
            TransportSettings::Smtp(s) => {
                Ok(Transport::Smtp(Arc::new(SmtpSender::new(s, connections)?)))
            }
        }
    }

    /// Builds what `from_settings` would (the SMTP client with its TLS roots), without
    /// creating anything on disk: for `check-config`.
    pub fn check(settings: &TransportSettings) -> anyhow::Result<()> {
        match settings {
            TransportSettings::File { .. } => Ok(()),
            TransportSettings::Smtp(s) => SmtpSender::new(s, 0).map(|_| ()),
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
                smtp.send(&envelope, raw).await
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
