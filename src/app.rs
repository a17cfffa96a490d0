//! Wires the parts together: store, renderer, pipeline, the configured source and the
//! outbox worker, and stops them together on SIGINT/SIGTERM after the mail in hand.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, SourceSettings};
use crate::ingest::imap::{ImapSource, ImapStats};
use crate::ingest::maildir::MaildirSource;
use crate::outbox::{OutboxWorker, Transport};
use crate::pipeline::Pipeline;
use crate::render::Renderer;
use crate::store::{Store, StoreError};
use crate::web::{Dashboard, Task, Tasks};

pub struct App {
    pub config: Config,
    pub pipeline: Arc<Pipeline>,
    pub outbox: Arc<OutboxWorker>,
    /// The IMAP source's counters (zero for other sources).
    pub imap_stats: Arc<ImapStats>,
    /// Wakes the outbox worker (mail queued here or, through the store, by another gateway).
    outbox_wakeup: Arc<Notify>,
    /// This gateway among those sharing the store, as its leases name it.
    holder: String,
}

/// Opens the configured store. Kept apart so the CLI can tell "database unreachable"
/// (exit 75, the MTA retries) from every other failure.
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    crate::store::open(&config.database_url, config.database_password.as_ref()).await
}

/// The store of a command that only reads: it must exist already.
pub async fn open_existing_store(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    crate::store::open_existing(&config.database_url, config.database_password.as_ref()).await
}

impl App {
    pub async fn build(config: Config, store: Arc<dyn Store>) -> Result<App> {
        Self::build_with_clock(config, store, Arc::new(crate::clock::SystemClock)).await
    }

    /// The same, reading the time from `clock` (`helpdesk tick --at`, tests).
    pub async fn build_with_clock(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<App> {
        crate::tls::install_provider();
        let renderer = Arc::new(
            Renderer::new(config.gateway.templates_dir.as_deref())
                .context("cannot load templates")?,
        );
        let wakeup = Arc::new(Notify::new());
        let mut pipeline = Pipeline::new(
            store.clone(),
            renderer,
            config.gateway.clone(),
            Arc::new(config.desk.clone()),
            wakeup.clone(),
        )
        .with_clock(clock);
        if config.desk.require_agent_auth {
            let verifier = crate::dkim::DkimVerifier::new(config.desk.dkim_dns)
                .map_err(|e| anyhow::anyhow!("agent_mail: {e}"))?;
            pipeline = pipeline.with_dkim(Arc::new(verifier));
        }
        let pipeline = Arc::new(pipeline);
        let transport =
            Transport::from_settings(&config.outbox.transport, config.outbox.concurrency)?;
        let outbox = Arc::new(OutboxWorker::new(
            store,
            transport,
            config.outbox.clone(),
            wakeup.clone(),
        ));
        Ok(App {
            config,
            pipeline,
            outbox,
            imap_stats: Arc::default(),
            outbox_wakeup: wakeup,
            holder: crate::lease::new_holder(),
        })
    }

    /// Runs the source and the outbox until `shutdown` is cancelled, then waits for both
    /// to finish what they hold.
    ///
    /// Both loops retry their own errors forever; if one of them still ends before
    /// shutdown (a panic in a dependency, a bug), the other is stopped and this returns an
    /// error, so the process exits non-zero and its supervisor restarts it, rather than
    /// living on with no ingestion.
    pub async fn run(&self, shutdown: CancellationToken) -> Result<()> {
        let tasks = Tasks::default();
        // The dashboard's port is taken first: one in use stops the gateway with a clear
        // error before it touches any mail.
        let dashboard = match &self.config.dashboard {
            Some(settings) => {
                let dashboard = Dashboard::new(
                    Arc::new(self.config.clone()),
                    settings.clone(),
                    self.pipeline.store().clone(),
                    Some(tasks.clone()),
                )?;
                let listener = dashboard.bind().await?;
                Some((dashboard, listener))
            }
            None => None,
        };
        let tracker = TaskTracker::new();
        let stop = shutdown.child_token();
        let outbox = self.outbox.clone();
        let token = stop.clone();
        let running = tasks.running(Task::Outbox);
        let outbox_task = tracker.spawn(async move {
            let _running = running;
            outbox.run(token).await
        });
        let running = tasks.running(Task::Source);
        let source_task = match &self.config.source {
            SourceSettings::Maildir(m) => {
                let source =
                    MaildirSource::new(m.path.clone(), m.poll_interval, self.pipeline.clone());
                let token = stop.clone();
                tracker.spawn(async move {
                    let _running = running;
                    source.run(token).await;
                    Ok(())
                })
            }
            SourceSettings::Imap(mailboxes) => {
                // Every mailbox read side by side; one that stops for good stops the gateway.
                let sources: Vec<ImapSource> = mailboxes
                    .iter()
                    .map(|settings| {
                        ImapSource::with_stats(
                            settings.clone(),
                            self.pipeline.clone(),
                            self.imap_stats.clone(),
                        )
                        .one_of(mailboxes.len(), &self.holder)
                    })
                    .collect();
                let token = stop.clone();
                tracker.spawn(async move {
                    let _running = running;
                    futures::future::try_join_all(sources.iter().map(|s| s.run(token.clone())))
                        .await
                        .map(|_| ())
                })
            }
        };
        // This gateway's presence, for the others to share the mailboxes with it.
        let presence = crate::lease::Lease::presence(self.pipeline.store().clone(), &self.holder);
        let token = stop.clone();
        tracker.spawn(async move {
            while presence.acquire(&token).await {
                // Ends at shutdown, or when the store could not be reached long enough for
                // the presence to run out (then it is taken again).
                presence.keep(token.child_token()).await;
                if token.is_cancelled() {
                    presence.release().await;
                    break;
                }
            }
        });
        // Other gateways on the same store wake this one's outbox and scheduler.
        let timers_wakeup = Arc::new(Notify::new());
        match self.pipeline.store().wakeups().await {
            Ok(Some(wakeups)) => {
                let (outbox, timers) = (self.outbox_wakeup.clone(), timers_wakeup.clone());
                let clock = self.pipeline.clock();
                let token = stop.clone();
                tracker.spawn(relay_wakeups(wakeups, outbox, timers, clock, token));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot hear the other gateways; each finds work at its next look")
            }
        }
        let pipeline = self.pipeline.clone();
        let token = stop.clone();
        let running = tasks.running(Task::Scheduler);
        let timer_task = tracker.spawn(async move {
            let _running = running;
            run_timers(pipeline, timers_wakeup, token).await;
            Ok(())
        });
        if let Some((dashboard, listener)) = dashboard {
            // Not one of the workers the gateway stops for: mail goes on without the pages
            // (and `/healthz` no longer answering tells the supervisor).
            let token = stop.clone();
            tracker.spawn(async move {
                if let Err(e) = dashboard.serve(listener, token).await {
                    tracing::error!(error = %e, "the dashboard stopped; mail goes on");
                }
            });
        }
        let pipeline = self.pipeline.clone();
        let token = stop.clone();
        tracker.spawn(async move { watch_knowledge(pipeline, token).await });
        if self.config.retention.is_set() {
            let retention = self.config.retention.clone();
            let store = self.pipeline.store().clone();
            let clock = self.pipeline.clock();
            let token = stop.clone();
            tracker.spawn(async move { run_retention(retention, store, clock, token).await });
        }
        // The database file deleted or replaced under the gateway: every transaction refuses
        // from then on, and this stops the gateway within a second.
        let store = self.pipeline.store().clone();
        let token = stop.clone();
        let watch_task = tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = token.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
                if let Err(e) = store.check().await {
                    tracing::error!(error = %e, "the database is gone");
                    panic!("{e}");
                }
            }
        });
        tracker.close();
        let (which, ended) = tokio::select! {
            r = source_task => ("mail source", r),
            r = outbox_task => ("outbox", r),
            r = timer_task => ("scheduler", r),
            r = watch_task => ("database watch", r),
        };
        let died = !shutdown.is_cancelled();
        stop.cancel();
        tracker.wait().await;
        if died {
            let why = match ended {
                Err(e) if e.is_panic() => crate::stage::panic_message(e.into_panic().as_ref()),
                Err(e) => e.to_string(),
                Ok(Err(e)) => format!("{e:#}"),
                Ok(Ok(())) => "it returned".into(),
            };
            tracing::error!(task = which, why = %why, "a worker stopped on its own; exiting so the supervisor restarts the gateway");
            anyhow::bail!("the {which} stopped unexpectedly ({why})");
        }
        Ok(())
    }
}

/// `[retention]`: at start, then every hour, drops raw mail and erases closed tickets
/// past their time. Errors are logged and tried again the next hour; the purge is
/// idempotent (what is purged stays purged, and is not counted again).
async fn run_retention(
    settings: crate::config::RetentionSettings,
    store: Arc<dyn Store>,
    clock: Arc<dyn crate::clock::Clock>,
    stop: CancellationToken,
) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    loop {
        let now = clock.now();
        let ago = |d: std::time::Duration| now - d.as_millis() as crate::clock::Millis;
        if let Some(keep) = settings.raw_mail {
            match store.purge_raw_mail(ago(keep), now).await {
                Ok(r) if r.messages > 0 => tracing::info!(
                    messages = r.messages,
                    attachments = r.attachments,
                    kept = %humantime::format_duration(keep),
                    "retention: dropped old raw mail"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention: cannot purge raw mail"),
            }
        }
        if let Some(keep) = settings.closed_tickets {
            match store.purge_closed_tickets(ago(keep), now).await {
                Ok(r) if r.tickets > 0 => tracing::info!(
                    tickets = r.tickets,
                    messages = r.messages,
                    events = r.events,
                    kept = %humantime::format_duration(keep),
                    "retention: erased the personal data of old closed tickets"
                ),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "retention: cannot purge closed tickets"),
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// The scheduler: runs the timed work that fell due (service levels, reminders, closing,
/// vendors' silence), then sleeps until the next is due, at most a minute (a new ticket's
/// first warning is never less than minutes away). Errors are logged and retried; the
/// due times live in the database, so a restart catches up once.
async fn run_timers(pipeline: Arc<Pipeline>, wakeup: Arc<Notify>, stop: CancellationToken) {
    let owner = format!("{}-{}", std::process::id(), rand::random::<u32>());
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        match pipeline.run_reports().await {
            Ok(0) => {}
            Ok(queued) => tracing::info!(queued, "weekly report queued"),
            Err(e) => tracing::warn!(error = %e, "weekly report not queued; retrying"),
        }
        let sleep_ms = match pipeline.run_timers(&owner).await {
            Ok(pass) => {
                failures = 0;
                if pass.tickets > 0 {
                    tracing::info!(tickets = pass.tickets, queued = pass.queued, "timers run");
                }
                match pipeline.next_timer().await {
                    Ok(Some(at)) => (at - pipeline.now()).clamp(1_000, MAX_SLEEP_MS),
                    Ok(None) => MAX_SLEEP_MS,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the next due time");
                        MAX_SLEEP_MS
                    }
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, failures, "timers failed; retrying");
                (1_000i64 << failures.min(6)).min(MAX_SLEEP_MS)
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(sleep_ms as u64)) => {}
        }
    }
}

/// The longest the scheduler sleeps: a due time set later than this from now is found at
/// its next look anyway.
const MAX_SLEEP_MS: i64 = 60_000;

/// Passes the other gateways' news on: mail queued wakes the outbox, a due time sooner
/// than the scheduler's next look wakes the scheduler.
async fn relay_wakeups(
    mut wakeups: tokio::sync::mpsc::Receiver<crate::store::Wakeup>,
    outbox: Arc<Notify>,
    timers: Arc<Notify>,
    clock: Arc<dyn crate::clock::Clock>,
    stop: CancellationToken,
) -> Result<()> {
    loop {
        let wakeup = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            w = wakeups.recv() => w,
        };
        match wakeup {
            Some(crate::store::Wakeup::Outbox) => outbox.notify_one(),
            Some(crate::store::Wakeup::Timer(at)) if at < clock.now() + MAX_SLEEP_MS => {
                timers.notify_one()
            }
            Some(crate::store::Wakeup::Timer(_)) => {}
            None => return Ok(()),
        }
    }
}

/// How often the articles' folder is looked at for changes.
const KNOWLEDGE_WATCH: std::time::Duration = std::time::Duration::from_secs(2);

/// The articles' folder is looked at every two seconds; when a file was added, changed or
/// removed, the base is read again and put in place (the mail being filed finishes with
/// the old one). Polling, not inotify: it works the same on NFS, bind mounts and every
/// platform, and a thousand `stat`s every two seconds cost nothing.
async fn watch_knowledge(pipeline: Arc<Pipeline>, stop: CancellationToken) {
    let dir = pipeline.desk().knowledge.dir.clone();
    let mut seen = pipeline.desk().knowledge.kb.read_as.clone();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(KNOWLEDGE_WATCH) => {}
        }
        let now = crate::kb::fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let settings = pipeline.desk().knowledge.clone();
        match tokio::task::spawn_blocking(move || settings.load()).await {
            Ok(Ok(kb)) => {
                tracing::info!("the knowledge base changed; reloading");
                crate::kb::log_problems(&kb);
                pipeline.set_knowledge(Arc::new(kb));
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot reload the knowledge base; keeping the one in use")
            }
            Err(e) => {
                tracing::error!(error = %e, "the knowledge base reload failed; keeping the one in use")
            }
        }
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
