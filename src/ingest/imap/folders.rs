//! Where filed mail goes: folder names under the personal namespace (RFC 2342), created
//! when missing, and the move (MOVE, or a recorded COPY then EXPUNGE) after commit.

use super::*;

/// The personal namespace's prefix and hierarchy delimiter, from `NAMESPACE`.
///
/// async-imap's parser does not know the NAMESPACE response, and an unknown response
/// breaks its stream, so this one command is written and read on the raw connection,
/// between two commands, when nothing else is in flight.
pub(super) async fn personal_namespace(
    session: &mut ImapSession,
) -> Result<Option<(String, String)>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = session.get_mut();
    stream.write_all(b"hdns NAMESPACE\r\n").await?;
    stream.flush().await?;
    let mut personal = None;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        loop {
            let byte = stream
                .read_u8()
                .await
                .context("reading the NAMESPACE answer")?;
            line.push(byte);
            if line.ends_with(b"\r\n") || line.len() > 64 * 1024 {
                break;
            }
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(rest) = text.strip_prefix("* NAMESPACE ") {
            personal = parse_personal_namespace(rest);
        } else if let Some(status) = text.strip_prefix("hdns ") {
            if status.starts_with("OK") {
                return Ok(personal);
            }
            // A server that refuses NAMESPACE has the folders where it lists them.
            tracing::debug!(answer = %status.trim(), "NAMESPACE refused");
            return Ok(None);
        }
    }
}

/// `(("INBOX." ".")) NIL NIL` → `("INBOX.", ".")`; `NIL …` → none.
pub(super) fn parse_personal_namespace(rest: &str) -> Option<(String, String)> {
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("((")?;
    let mut parts = rest.splitn(3, '"');
    parts.next()?;
    let prefix = parts.next()?.to_string();
    let after = parts.next()?.trim_start();
    let delimiter = if let Some(d) = after.strip_prefix('"') {
        d.split('"').next().unwrap_or("").to_string()
    } else {
        String::new()
    };
    Some((prefix, delimiter))
}

/// Where a configured folder lives on this server. A name that is already full (it starts
/// with the personal prefix or INBOX, or names a level with the delimiter) is kept as
/// written; a bare name goes under the personal prefix (`Processed` → `INBOX.Processed`
/// on Cyrus and Courier, `Processed` on Dovecot).
pub(super) fn folder_name(configured: &str, personal: Option<&(String, String)>) -> String {
    let Some((prefix, delimiter)) = personal else {
        return configured.to_string();
    };
    let upper = configured.to_ascii_uppercase();
    let full = prefix.is_empty()
        || configured.starts_with(prefix.as_str())
        || upper == "INBOX"
        || (!delimiter.is_empty()
            && (upper.starts_with(&format!("INBOX{delimiter}"))
                || configured.contains(delimiter.as_str())));
    if full {
        configured.to_string()
    } else {
        format!("{prefix}{configured}")
    }
}

/// Makes sure `folder` exists, creating it if needed.
pub(super) async fn ensure_folder(
    session: &mut ImapSession,
    key: &str,
    folder: &str,
) -> Result<()> {
    if folder_exists(session, folder).await? {
        return Ok(());
    }
    let created = session.create(folder).await;
    if folder_exists(session, folder).await? {
        return Ok(());
    }
    let words = match created {
        Err(e) => e.to_string(),
        Ok(()) => "CREATE said OK but the folder is not listed".to_string(),
    };
    Err(anyhow!(
        "IMAP folder {folder:?} does not exist and cannot be created: the server said {words:?}; \
         create it with a mail client, or set {key} to an existing folder (its full name, e.g. \"INBOX.{folder}\")"
    ))
}

pub(super) async fn folder_exists(session: &mut ImapSession, folder: &str) -> Result<bool> {
    let quoted = format!("\"{}\"", folder.replace('\\', "\\\\").replace('"', "\\\""));
    let names: Vec<_> = session
        .list(Some(""), Some(&quoted))
        .await?
        .try_collect()
        .await?;
    Ok(names.iter().any(|n| n.name() == folder))
}

impl ImapSource {
    /// Moves what is recorded, and returns the UIDs below the checkpoint that have no
    /// record at all (a batch that failed half-way on an older version): those are filed.
    pub(super) async fn move_committed(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &BTreeSet<u32>,
        report: &mut PassReport,
    ) -> Result<Vec<u32>> {
        let keys: Vec<String> = uids
            .iter()
            .map(|u| self.source_key(uid_validity, *u))
            .collect();
        let outcomes: HashMap<String, StoredOutcome> = self
            .pipeline
            .store()
            .source_outcomes(&keys)
            .await?
            .into_iter()
            .collect();
        let mut processed = Vec::new();
        let mut quarantined = Vec::new();
        let mut unfiled = Vec::new();
        for (uid, key) in uids.iter().zip(&keys) {
            match outcomes.get(key) {
                Some(StoredOutcome::Quarantined) => quarantined.push(*uid),
                Some(_) => processed.push(*uid),
                None => unfiled.push(*uid),
            }
        }
        let folders = self.folders();
        report.moved += self
            .move_or_leave(session, uid_validity, &processed, &folders.processed)
            .await;
        report.moved += self
            .move_or_leave(session, uid_validity, &quarantined, &folders.quarantine)
            .await;
        Ok(unfiled)
    }

    /// Moves filed mail to `folder`. A failure is logged and the mail stays in the inbox,
    /// which is harmless (its source key is known, the next pass moves it): filing new
    /// mail must never wait on a folder.
    pub(super) async fn move_or_leave(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        folder: &str,
    ) -> usize {
        match self.move_to(session, uid_validity, uids, folder).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(folder, uids = %uid_set(uids), error = format!("{e:#}"), "filed mail left in the inbox; moving it is retried on the next pass");
                0
            }
        }
    }

    pub(super) async fn move_to(
        &self,
        session: &mut ImapSession,
        uid_validity: u32,
        uids: &[u32],
        folder: &str,
    ) -> Result<usize> {
        if uids.is_empty() {
            return Ok(0);
        }
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        let caps = session.capabilities().await?;
        if caps.has_str("MOVE") {
            session
                .uid_mv(uid_set(&sorted), folder)
                .await
                .with_context(|| format!("cannot move mail to {folder}"))?;
            return Ok(uids.len());
        }
        // COPY, then \Deleted and EXPUNGE. Another client may wipe our \Deleted between
        // the two (a STORE FLAGS of its own), leaving a copied mail in the inbox: copies
        // are recorded, so such a mail is flagged and expunged again, never copied twice.
        let store = self.pipeline.store();
        let keys: Vec<String> = sorted
            .iter()
            .map(|u| self.source_key(uid_validity, *u))
            .collect();
        let copied: BTreeSet<String> = store.imap_copied(&keys).await?.into_iter().collect();
        let to_copy: Vec<u32> = sorted
            .iter()
            .zip(&keys)
            .filter(|(_, k)| !copied.contains(*k))
            .map(|(u, _)| *u)
            .collect();
        self.stats
            .copies_not_repeated
            .fetch_add((sorted.len() - to_copy.len()) as u64, Ordering::Relaxed);
        if !to_copy.is_empty() {
            session
                .uid_copy(uid_set(&to_copy), folder)
                .await
                .with_context(|| format!("cannot copy mail to {folder}"))?;
            let copied_keys: Vec<String> = to_copy
                .iter()
                .map(|u| self.source_key(uid_validity, *u))
                .collect();
            store
                .record_imap_copies(&copied_keys, folder, self.pipeline.now())
                .await?;
        }
        let set = uid_set(&sorted);
        let _: Vec<_> = session
            .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect()
            .await?;
        if caps.has_str("UIDPLUS") {
            let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
        } else {
            let _: Vec<_> = session.expunge().await?.try_collect().await?;
        }
        Ok(uids.len())
    }
}
