//! Filing a backlog: UIDs fetched with `BODY.PEEK[]` in groups, the next group fetched
//! while one is filed, each group committed together.

use super::*;

/// True if the server told us, between commands, that mail arrived: IDLE would not
/// report it a second time.
/// What filing one fetched batch did: which UIDs are committed (to move out) and how
/// it ended.
#[derive(Default)]
pub(super) struct BatchFiled {
    done: Vec<u32>,
    quarantined: Vec<u32>,
    processed: usize,
    interrupted: bool,
    failure: Option<anyhow::Error>,
}

/// Files a fetched batch in groups of `COMMIT_GROUP` (small transactions, so a shutdown
/// waits for at most one of them), reading each next group while the current one is
/// written. Stops at the first mail that cannot be filed.
pub(super) async fn file_batch(
    pipeline: Arc<Pipeline>,
    items: Vec<(u32, SourceRef, Vec<u8>)>,
    shutdown: CancellationToken,
) -> BatchFiled {
    let mut filed = BatchFiled::default();
    let mut groups = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        groups.push(items.by_ref().take(COMMIT_GROUP).collect::<Vec<_>>());
    }
    let mut groups = groups.into_iter();
    let mut ahead = groups.next().map(|g| pipeline.read_ahead(g));
    while let Some(reading) = ahead.take() {
        let read = match reading.await {
            Ok(read) => read,
            Err(e) => {
                filed.failure = Some(anyhow!("reading mail failed: {e}"));
                break;
            }
        };
        if !shutdown.is_cancelled() {
            ahead = groups.next().map(|g| pipeline.read_ahead(g));
        }
        let started = std::time::Instant::now();
        let (uids, outcomes) = pipeline.file_read_ahead(read).await;
        tracing::debug!(mails = uids.len(), took = ?started.elapsed(), "group committed");
        for (uid, outcome) in uids.into_iter().zip(outcomes) {
            match outcome {
                Ok(outcome) => {
                    tracing::debug!(
                        uid,
                        outcome = outcome.label(),
                        code = outcome.code().map(|c| c.as_str()),
                        "mail filed"
                    );
                    filed.processed += 1;
                    if outcome.is_quarantined() {
                        filed.quarantined.push(uid);
                    } else {
                        filed.done.push(uid);
                    }
                }
                Err(e) => {
                    filed.failure =
                        Some(anyhow::Error::new(e).context(format!("filing UID {uid}")));
                    return filed;
                }
            }
        }
        if shutdown.is_cancelled() {
            filed.interrupted = true;
            break;
        }
    }
    filed
}

/// `1,3:5,9` from sorted UIDs.
pub(super) fn uid_set(sorted: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

impl BatchFiled {
    pub(super) fn failed(e: anyhow::Error) -> Self {
        BatchFiled {
            failure: Some(e),
            ..Default::default()
        }
    }
}

impl ImapSource {
    /// Fetches and files `uids` (ascending) in batches, moving each batch out once it is
    /// committed. Stops at the first mail it cannot file, so the checkpoint never passes
    /// a mail that has no record.
    ///
    /// A backlog is a pipeline: while one batch is being filed (its next group of mails
    /// parsed on another thread while the current one is written), the server is already
    /// sending the next batch; the filed batch is moved out once its groups are committed.
    pub(super) async fn file_uids(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        shutdown: &CancellationToken,
        report: &mut PassReport,
    ) -> Result<()> {
        let chunks: Vec<&[u32]> = uids.chunks(self.settings.batch_size as usize).collect();
        let Some(first) = chunks.first() else {
            return Ok(());
        };
        let key = self.mailbox_key();
        let mut fetched = Some(self.fetch_bodies(session, first).await?);
        for (i, chunk) in chunks.iter().enumerate() {
            let Some(mut bodies) = fetched.take() else {
                break;
            };
            // Only the UIDs asked for, in order, up to the first one that came back without
            // a body (an unsolicited FETCH, a server hiccup): that one and those after it are
            // fetched again on the next pass, never filed as empty mail.
            let mut items: Vec<(u32, SourceRef, Vec<u8>)> = Vec::with_capacity(chunk.len());
            let mut missing = None;
            for &uid in chunk.iter() {
                let Some(body) = bodies.remove(&uid) else {
                    missing = Some(uid);
                    break;
                };
                let source = SourceRef {
                    key: Some(self.source_key(uid_validity, uid)),
                    checkpoint: Some((
                        key.clone(),
                        Checkpoint {
                            uid_validity,
                            last_uid: uid,
                        },
                    )),
                };
                items.push((uid, source, body));
            }
            drop(bodies);
            let filing = tokio::spawn(file_batch(self.pipeline.clone(), items, shutdown.clone()));
            // The next batch travels while this one is filed; not after a missing body (it
            // would be fetched again anyway) nor after a shutdown.
            let next = match chunks.get(i + 1) {
                Some(next) if missing.is_none() && !shutdown.is_cancelled() => {
                    Some(self.fetch_bodies(session, next).await)
                }
                _ => None,
            };
            let filed = filing
                .await
                .unwrap_or_else(|e| BatchFiled::failed(anyhow!("filing task failed: {e}")));
            report.processed += filed.processed;
            report.interrupted |= filed.interrupted;
            let folders = self.folders();
            report.moved += self
                .move_or_leave(session, uid_validity, &filed.done, &folders.processed)
                .await;
            report.moved += self
                .move_or_leave(
                    session,
                    uid_validity,
                    &filed.quarantined,
                    &folders.quarantine,
                )
                .await;
            if let Some(e) = filed.failure {
                // Committed mail is moved; the rest is read again on the next pass.
                return Err(e);
            }
            if let Some(uid) = missing {
                return Err(anyhow!(
                    "the server sent no body for UID {uid}; it will be fetched again"
                ));
            }
            if report.interrupted {
                break;
            }
            fetched = next.transpose()?;
        }
        Ok(())
    }

    /// `UID FETCH` of `uids`, keeping only answers for those UIDs that carry a body. Servers
    /// may slip other clients' flag changes into the reply (`* 2 FETCH (FLAGS (\Flagged)
    /// UID 17)`, RFC 3501 §7): those are not mail. A UID that came back without a body is
    /// asked for once more.
    pub(super) async fn fetch_bodies(
        &self,
        session: &mut ImapSession,
        uids: &[u32],
    ) -> Result<HashMap<u32, Vec<u8>>> {
        let wanted: BTreeSet<u32> = uids.iter().copied().collect();
        let mut bodies: HashMap<u32, Vec<u8>> = HashMap::with_capacity(uids.len());
        for attempt in 0..2 {
            let ask: Vec<u32> = wanted
                .iter()
                .copied()
                .filter(|u| !bodies.contains_key(u))
                .collect();
            if ask.is_empty() {
                break;
            }
            if attempt > 0 {
                tracing::warn!(uids = %uid_set(&ask), "fetched again: the first answer had no body");
            }
            let started = std::time::Instant::now();
            let fetched: Vec<_> = session
                .uid_fetch(uid_set(&ask), "(UID BODY.PEEK[])")
                .await?
                .try_collect()
                .await?;
            tracing::debug!(mails = fetched.len(), took = ?started.elapsed(), "fetched");
            for f in &fetched {
                match (f.uid, f.body()) {
                    (Some(uid), Some(body)) if wanted.contains(&uid) => {
                        bodies.entry(uid).or_insert_with(|| body.to_vec());
                    }
                    _ => {
                        self.stats
                            .unsolicited_fetches
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(bodies)
    }
}
