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

/// Mails filed per transaction.
const GROUP: usize = 50;

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

    /// Files every mail now in `new/`, oldest name first, in groups of `GROUP` (one
    /// transaction each; the next group read and parsed while one is written). Each file
    /// moves out once its group is committed. On shutdown, stops after the group in hand.
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
        let mut groups = names.chunks(GROUP);
        let mut ahead = match groups.next() {
            Some(group) => Some(self.pipeline.read_ahead(self.read_files(group).await?)),
            None => None,
        };
        while let Some(reading) = ahead.take() {
            let read = reading.await.context("reading mail")?;
            // A file of the next group that cannot be read stops the pass, but only after
            // the group in hand is filed.
            let mut unreadable = None;
            if !shutdown.is_cancelled()
                && let Some(group) = groups.next()
            {
                match self.read_files(group).await {
                    Ok(mails) => ahead = Some(self.pipeline.read_ahead(mails)),
                    Err(e) => unreadable = Some(e),
                }
            }
            let (names, results) = self.pipeline.file_read_ahead(read).await;
            for (name, result) in names.into_iter().zip(results) {
                let path = new_dir.join(&name);
                let outcome = result.with_context(|| format!("filing {}", path.display()))?;
                tracing::info!(file = %name, outcome = outcome.label(), code = outcome.code().map(|c| c.as_str()), "mail filed");
                self.move_out(&name, &outcome).await?;
                outcomes.push(outcome);
            }
            if let Some(e) = unreadable {
                return Err(e);
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
        Ok(outcomes)
    }

    /// The files of `names` that are still there (another process may have taken one).
    async fn read_files(&self, names: &[String]) -> Result<Vec<(String, SourceRef, Vec<u8>)>> {
        let mut mails = Vec::with_capacity(names.len());
        for name in names {
            let path = self.root.join("new").join(name);
            let raw = match tokio::fs::read(&path).await {
                Ok(raw) => raw,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let unique = name.split(':').next().unwrap_or(name);
            let source = SourceRef {
                key: Some(format!("maildir:{unique}")),
                checkpoint: None,
            };
            mails.push((name.clone(), source, raw));
        }
        Ok(mails)
    }

    /// Moves a filed mail from `new/` to `cur/` (quarantined mail to `.Quarantine/cur/`).
    async fn move_out(&self, name: &str, outcome: &Processed) -> Result<()> {
        let path = self.root.join("new").join(name);
        let target = if outcome.is_quarantined() {
            self.root.join(".Quarantine/cur")
        } else {
            self.root.join("cur")
        };
        let unique = name.split(':').next().unwrap_or(name);
        let target_name = if name.contains(":2,") {
            name.to_string()
        } else {
            format!("{unique}:2,")
        };
        tokio::fs::rename(&path, target.join(&target_name))
            .await
            .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
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
