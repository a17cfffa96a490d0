//! Wires the parts together: store, renderer, pipeline, the configured source and the
//! outbox worker, and stops them together on SIGINT/SIGTERM after the mail in hand.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, SourceSettings};
use crate::ingest::imap::ImapSource;
use crate::ingest::maildir::MaildirSource;
use crate::outbox::{OutboxWorker, Transport};
use crate::pipeline::Pipeline;
use crate::render::Renderer;
use crate::store::sqlite::SqliteStore;
use crate::store::{Store, StoreError};

pub struct App {
    pub config: Config,
    pub pipeline: Arc<Pipeline>,
    pub outbox: Arc<OutboxWorker>,
}

/// Opens the configured store. Kept apart so the CLI can tell "database unreachable"
/// (exit 75, the MTA retries) from every other failure.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open(&config.database_url).await?))
}

impl App {
    pub async fn build(config: Config, store: Arc<dyn Store>) -> Result<App> {
        let renderer = Arc::new(
            Renderer::new(config.gateway.templates_dir.as_deref())
                .context("cannot load templates")?,
        );
        let wakeup = Arc::new(Notify::new());
        let pipeline = Arc::new(Pipeline::new(
            store.clone(),
            renderer,
            config.gateway.clone(),
            wakeup.clone(),
        ));
        let transport = Transport::from_settings(&config.outbox.transport)?;
        let outbox = Arc::new(OutboxWorker::new(
            store,
            transport,
            config.outbox.clone(),
            wakeup,
        ));
        Ok(App {
            config,
            pipeline,
            outbox,
        })
    }

    /// Runs the source and the outbox until `shutdown` is cancelled, then waits for both
    /// to finish what they hold.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let tracker = TaskTracker::new();
        let outbox = self.outbox.clone();
        let token = shutdown.clone();
        tracker.spawn(async move { outbox.run(token).await });
        match &self.config.source {
            SourceSettings::Maildir(m) => {
                let source =
                    MaildirSource::new(m.path.clone(), m.poll_interval, self.pipeline.clone());
                let token = shutdown.clone();
                tracker.spawn(async move { source.run(token).await });
            }
            SourceSettings::Imap(settings) => {
                let source = ImapSource::new(settings.clone(), self.pipeline.clone());
                let token = shutdown.clone();
                tracker.spawn(async move { source.run(token).await });
            }
        }
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// Resolves when the process receives SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    ctrl_c.await.ok();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.ok();
}
