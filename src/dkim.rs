//! DKIM signatures checked by the gateway itself (RFC 6376), for agents' mail when the
//! desk requires authentication and the receiving server writes no `Authentication-Results`
//! we trust. The only module that asks DNS anything: the signer's public key. Uses the
//! `mail-auth` crate.

use std::net::SocketAddr;

use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};

use crate::domain::EmailAddress;

pub struct DkimVerifier {
    authenticator: MessageAuthenticator,
}

impl DkimVerifier {
    /// Keys looked up through the system's resolver (`/etc/resolv.conf`), or through the
    /// name server at `server` (a local resolver, or a test's).
    pub fn new(server: Option<SocketAddr>) -> Result<DkimVerifier, String> {
        let authenticator = match server {
            None => MessageAuthenticator::new_system_conf(),
            Some(addr) => {
                let mut ns = NameServerConfig::udp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                MessageAuthenticator::new(
                    ResolverConfig::from_name_servers(vec![ns]),
                    ResolverOpts::default(),
                )
            }
        }
        .map_err(|e| format!("cannot set up DNS for DKIM: {e}"))?;
        Ok(DkimVerifier { authenticator })
    }

    /// `Ok` when a DKIM signature over `raw` passes and its domain (`d=`) is `from`'s or a
    /// parent of it; otherwise what was found.
    pub async fn verify(&self, raw: &[u8], from: &EmailAddress) -> Result<(), String> {
        let message = AuthenticatedMessage::parse(raw)
            .ok_or_else(|| "the mail cannot be read".to_string())?;
        let outputs = self.authenticator.verify_dkim(&message).await;
        let domain = from.domain().to_ascii_lowercase();
        let aligned = |d: &str| {
            let d = d.to_ascii_lowercase();
            domain == d || domain.ends_with(&format!(".{d}"))
        };
        if outputs.iter().any(|o| {
            o.result() == &DkimResult::Pass && o.signature().is_some_and(|s| aligned(&s.d))
        }) {
            return Ok(());
        }
        Err(match outputs.first() {
            None => "no DKIM signature".to_string(),
            Some(o) => format!(
                "DKIM {} for {}",
                match o.result() {
                    DkimResult::Pass => "passed, but not",
                    DkimResult::Neutral(_) => "neutral",
                    DkimResult::Fail(_) => "failed",
                    DkimResult::PermError(_) => "unusable",
                    DkimResult::TempError(_) => "could not be checked",
                    DkimResult::None => "absent",
                },
                o.signature().map(|s| s.d.as_str()).unwrap_or("?")
            ),
        })
    }
}
