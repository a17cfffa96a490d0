//! Leases: work that one gateway at a time must do (reading a mailbox), shared by several
//! gateways on one store. The holder renews its lease every [`RENEW`]; a gateway standing
//! by tries to take it as often. A holder that dies stops renewing, and [`TTL`] later the
//! next try of another gateway succeeds: a mailbox is read again at most `TTL + RENEW`
//! (20 s) after its reader died. A clean stop gives the lease up at once.
//!
//! Each running gateway also holds a presence lease (`gateway:<holder>`), so the others
//! know how many share the work: a gateway that already reads its share of the mailboxes
//! leaves a free one to the others for a while ([`TTL`]) before it takes it too.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::store::Store;

/// How long a lease lasts without being renewed.
pub const TTL: Duration = Duration::from_secs(15);
/// How often the holder renews it, and a gateway standing by tries to take it.
pub const RENEW: Duration = Duration::from_secs(5);

/// A gateway among the others: host, process id and a random part (a process id is used
/// again after a restart, and one process may run several gateways, as tests do).
pub fn new_holder() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    let host = HOST.get_or_init(|| {
        let mut name = [0u8; 256];
        // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates
        // what fits.
        if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0 {
            let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
            String::from_utf8_lossy(&name[..end]).into_owned()
        } else {
            "localhost".into()
        }
    });
    format!(
        "{host}/{}/{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

pub struct Lease {
    store: Arc<dyn Store>,
    name: String,
    holder: String,
    /// How many leases of this kind the gateways share (the configured mailboxes), for
    /// each gateway to take its share first.
    shared: usize,
}

/// The presence lease's name prefix, and a source lease's.
const GATEWAY: &str = "gateway:";
const SOURCE: &str = "source:";

/// A source lease's name.
pub fn source(key: &str) -> String {
    format!("{SOURCE}{key}")
}

impl Lease {
    pub fn new(store: Arc<dyn Store>, name: impl Into<String>, holder: &str) -> Self {
        Lease {
            store,
            name: name.into(),
            holder: holder.to_string(),
            shared: 1,
        }
    }

    /// One of `shared` leases of the same kind (the mailboxes of one configuration).
    pub fn shared_by(mut self, shared: usize) -> Self {
        self.shared = shared.max(1);
        self
    }

    /// This gateway's presence, held while it runs.
    pub fn presence(store: Arc<dyn Store>, holder: &str) -> Self {
        Lease::new(store, format!("{GATEWAY}{holder}"), holder)
    }

    /// This gateway's share of the leases like this one (the shared leases divided among
    /// the gateways present, rounded up), and the names of those it holds.
    async fn share(&self) -> Option<(usize, Vec<String>)> {
        let leases = self.store.leases().await.ok()?;
        let now = SystemClock.now();
        let present = leases
            .iter()
            .filter(|l| l.name.starts_with(GATEWAY) && l.until > now - TTL.as_millis() as i64)
            .count()
            .max(1);
        let mine = leases
            .into_iter()
            .filter(|l| l.name.starts_with(SOURCE) && l.holder == self.holder)
            .map(|l| l.name)
            .collect();
        Some((self.shared.div_ceil(present), mine))
    }

    /// Whether this gateway already holds its share, without this lease.
    async fn has_its_share(&self) -> bool {
        self.share()
            .await
            .is_some_and(|(share, mine)| mine.iter().filter(|n| **n != self.name).count() >= share)
    }

    /// Whether this gateway holds more than its share (another gateway came), and this
    /// lease is the one it gives up (the last by name: one at a time).
    async fn over_its_share(&self) -> bool {
        self.share().await.is_some_and(|(share, mine)| {
            mine.len() > share && mine.iter().max() == Some(&self.name)
        })
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
        // Since when this gateway leaves the lease to others, having its share already.
        let mut leaving: Option<Instant> = None;
        loop {
            let leave = self.shared > 1
                && leaving.is_none_or(|since| since.elapsed() < TTL)
                && self.has_its_share().await;
            if leave {
                leaving.get_or_insert_with(Instant::now);
            } else {
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
                    Err(e) => {
                        tracing::warn!(lease = %self.name, error = %e, "cannot take the lease")
                    }
                }
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
                Ok(true) if self.shared > 1 && self.over_its_share().await => {
                    tracing::info!(lease = %self.name, "another gateway came: leaving this work to it");
                    held.cancel();
                    self.release().await;
                    return;
                }
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
