//! The embedded default source: a Maildir folder. Mail dropped into `new/` is filed and
//! then moved to `cur/` (quarantined mail to the `.Quarantine` sub-folder), only after its
//! outcome is committed. A crash between the two leaves the file in `new/`; its source
//! key (the Maildir file name) is recognised on the next pass and the file is just moved.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::pipeline::{Pipeline, Processed, SourceRef};

pub struct MaildirSource {
    root: PathBuf,
    poll_interval: Duration,
    pipeline: Arc<Pipeline>,
}

impl MaildirSource {
    pub fn new(root: PathBuf, poll_interval: Duration, pipeline: Arc<Pipeline>) -> Self {
        Self {
            root,
            poll_interval,
            pipeline,
        }
    }

    /// Creates `new/ cur/ tmp/` and the quarantine sub-folder, as Maildir++ lays them out.
    pub fn ensure_layout(root: &Path) -> Result<()> {
        for sub in [
            "new",
            "cur",
            "tmp",
            ".Quarantine/new",
            ".Quarantine/cur",
            ".Quarantine/tmp",
        ] {
            let dir = root.join(sub);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        Ok(())
    }

    /// Files every mail now in `new/`, oldest name first. Stops after the mail in hand on shutdown.
    pub async fn pass(&self, shutdown: &CancellationToken) -> Result<Vec<Processed>> {
        let new_dir = self.root.join("new");
        let mut names: Vec<String> = Vec::new();
        let mut entries = tokio::fs::read_dir(&new_dir)
            .await
            .with_context(|| format!("cannot read {}", new_dir.display()))?;
        while let Some(entry) = entries.next_entry().await? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.')
                && entry
                    .file_type()
                    .await
                    .map(|t| t.is_file())
                    .unwrap_or(false)
            {
                names.push(name);
            }
        }
        names.sort();
        let mut outcomes = Vec::with_capacity(names.len());
        for name in names {
            if shutdown.is_cancelled() {
                break;
            }
            let path = new_dir.join(&name);
            let raw = match tokio::fs::read(&path).await {
                Ok(raw) => raw,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let unique = name.split(':').next().unwrap_or(&name);
            let source = SourceRef {
                key: Some(format!("maildir:{unique}")),
                checkpoint: None,
            };
            let outcome = self
                .pipeline
                .process(&source, &raw)
                .await
                .with_context(|| format!("filing {}", path.display()))?;
            tracing::info!(file = %name, outcome = outcome.label(), code = outcome.code().map(|c| c.as_str()), "mail filed");
            let target = if outcome.is_quarantined() {
                self.root.join(".Quarantine/cur")
            } else {
                self.root.join("cur")
            };
            let target_name = if name.contains(":2,") {
                name.clone()
            } else {
                format!("{unique}:2,")
            };
            tokio::fs::rename(&path, target.join(&target_name))
                .await
                .with_context(|| {
                    format!("cannot move {} to {}", path.display(), target.display())
                })?;
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    pub async fn run(&self, shutdown: CancellationToken) {
        if let Err(e) = Self::ensure_layout(&self.root) {
            tracing::error!(error = format!("{e:#}"), "maildir source cannot start");
            return;
        }
        tracing::info!(path = %self.root.display(), "maildir source watching new/");
        let mut backoff = self.poll_interval;
        while !shutdown.is_cancelled() {
            let wait = match self.pass(&shutdown).await {
                Ok(_) => {
                    backoff = self.poll_interval;
                    self.poll_interval
                }
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "maildir pass failed; will retry");
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    backoff
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
