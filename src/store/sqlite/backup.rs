//! Backups of a running desk and their restoration.
//!
//! A backup is SQLite's `VACUUM INTO`: one read transaction, so the copy is the database
//! as of one moment, whatever the gateway writes meanwhile (WAL mode lets both go on), and
//! it is compact and self-contained (no `-wal` file to forget). The copy is checked
//! (`integrity_check`) before it takes its final name, so a file called a backup is one.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, read_error};
use crate::store::StoreError;

/// What a backup holds, read back from the copy itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupCounts {
    pub tickets: i64,
    pub messages: i64,
    pub events: i64,
    pub outbox: i64,
}

fn refused(message: String) -> StoreError {
    StoreError::Corrupt(message)
}

/// Checks a copy and counts what it holds: `integrity_check`, and the desk's tables.
fn inspect(path: &Path) -> Result<BackupCounts, StoreError> {
    let db =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(read_error)?;
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(read_error)?;
    if check != "ok" {
        return Err(refused(format!(
            "{} fails SQLite's integrity check: {check}",
            path.display()
        )));
    }
    let count = |table: &str| -> Result<i64, StoreError> {
        db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| {
                refused(format!(
                    "{} is not a helpdesk database (no {table} table: {e})",
                    path.display()
                ))
            })
    };
    Ok(BackupCounts {
        tickets: count("tickets")?,
        messages: count("messages")?,
        events: count("events")?,
        outbox: count("outbox")?,
    })
}

fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

fn sync_and_rename(from: &Path, to: &Path) -> Result<(), StoreError> {
    let io = |e: std::io::Error| StoreError::NotWritable(format!("{}: {e}", to.display()));
    std::fs::File::open(from)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(from, to).map_err(io)?;
    let dir = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

/// Writes a consistent copy of the open desk to `dest`, which must not exist.
pub(super) async fn backup(store: &SqliteStore, dest: &Path) -> Result<BackupCounts, StoreError> {
    if dest.exists() {
        return Err(StoreError::NotWritable(format!(
            "{} exists: give a new file name (a backup never overwrites)",
            dest.display()
        )));
    }
    let partial = temporary(dest);
    let _ = std::fs::remove_file(&partial);
    sqlx::query("VACUUM INTO ?")
        .bind(partial.to_string_lossy().into_owned())
        .execute(&store.pool)
        .await
        .map_err(StoreError::from)?;
    let dest = dest.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let counts = inspect(&partial).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })?;
        sync_and_rename(&partial, &dest)?;
        Ok(counts)
    })
    .await
    .map_err(|e| StoreError::NotWritable(format!("the backup stopped: {e}")))?
}

/// Puts the backup `from` in place as the desk's database `to`. An existing database (a
/// live desk, or one with mail filed since the backup) is replaced only when `replace`
/// says so; its `-wal` and `-shm` files go with it, or SQLite would replay the old desk's
/// last writes onto the restored one.
pub fn restore(from: &Path, to: &Path, replace: bool) -> Result<BackupCounts, StoreError> {
    let counts = inspect(from)?;
    let sidecars = ["-wal", "-shm"].map(|s| {
        let mut name = to.as_os_str().to_owned();
        name.push(s);
        PathBuf::from(name)
    });
    if to.exists() && !replace {
        return Err(StoreError::NotWritable(format!(
            "{} exists: a desk is there; stop its gateway and restore with --replace to \
             put the backup in its place (what was filed since the backup is lost)",
            to.display()
        )));
    }
    let partial = temporary(to);
    std::fs::copy(from, &partial)
        .map_err(|e| StoreError::NotWritable(format!("{}: {e}", partial.display())))?;
    for sidecar in &sidecars {
        match std::fs::remove_file(sidecar) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(StoreError::NotWritable(format!(
                    "{}: {e}",
                    sidecar.display()
                )));
            }
        }
    }
    sync_and_rename(&partial, to)?;
    Ok(counts)
}
