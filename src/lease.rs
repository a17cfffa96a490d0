//! Leases: work that one gateway at a time must do (reading a mailbox), shared by several
//! gateways on one store. The holder renews its lease every [`RENEW`]; a gateway standing
//! by tries to take it as often. A holder that dies stops renewing, and [`TTL`] later the
//! next try of another gateway succeeds: a mailbox is read again at most `TTL + RENEW`
//! (20 s) after its reader died. A clean stop gives the lease up at once.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::store::Store;

/// How long a lease lasts without being renewed.
pub const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews it, and a gateway standing by tries to take it.
pub const RENEW: Duration = Duration::from_secs(5);

/// This process among the gateways: host, process id and a random part (a process id is
/// used again after a restart).
pub fn holder() -> &'static str {
    static HOLDER: OnceLock<String> = OnceLock::new();
    HOLDER.get_or_init(|| {
        let mut name = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates
        // what fits.
        let host = if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0 {
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            String::from_utf8_lossy(&name[..end]).into_owned()
        } else {
            "localhost".into()
        };
        format!(
            "{host}/{}/{:08x}",
            std::process::id(),
            rand::random::<u32>()
        )
    })
}

pub struct Lease {
    store: Arc<dyn Store>,
    name: String,
    holder: String,
}

impl Lease {
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>) -> Self {
        Lease {
            store,
            name: name.into(),
            holder: holder().to_string(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    async fn take(&self) -> Result<bool, crate::store::StoreError> {
        self.store
            .take_lease(
                &self.name,
                &self.holder,
                TTL.as_millis() as i64,
                SystemClock.now(),
            )
            .await
    }

    /// Waits until this gateway holds the lease; `false` when `stop` came first.
    pub async fn acquire(&self, stop: &CancellationToken) -> bool {
        let mut standing_by = false;
        loop {
            match self.take().await {
                Ok(true) => {
                    if standing_by {
                        tracing::info!(lease = %self.name, "took the work over");
                    }
                    return true;
                }
                Ok(false) if !standing_by => {
                    tracing::info!(lease = %self.name, "another gateway holds it; standing by");
                    standing_by = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(lease = %self.name, error = %e, "cannot take the lease"),
            }
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep(RENEW) => {}
            }
        }
    }

    /// Renews the lease until `held` is cancelled, and cancels `held` when the lease is
    /// lost: another gateway has it (this one was stalled longer than [`TTL`]), or it could
    /// not be renewed before running out (the store unreachable): the work stops before
    /// another gateway may start it.
    pub async fn keep(&self, held: CancellationToken) {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = held.cancelled() => return,
                _ = tokio::time::sleep(RENEW) => {}
            }
            match self.take().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %self.name, "another gateway took the work over");
                    held.cancel();
                    return;
                }
                Err(e) if renewed.elapsed() + RENEW >= TTL => {
                    tracing::warn!(lease = %self.name, error = %e, "cannot renew the lease before it runs out: stopping this work");
                    held.cancel();
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = %self.name, error = %e, "cannot renew the lease; trying again")
                }
            }
        }
    }

    /// Gives the lease up, so another gateway takes the work at once.
    pub async fn release(&self) {
        if let Err(e) = self.store.release_lease(&self.name, &self.holder).await {
            tracing::warn!(lease = %self.name, error = %e, "cannot give the lease up; it runs out by itself");
        }
    }
}
