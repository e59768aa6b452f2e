//! Online backup and restore of the store file.
//!
//! `backup` copies the store with SQLite's online backup API while the daemon keeps writing:
//! the copy is one consistent snapshot (every transaction committed before the copy started,
//! none half-way), written beside the destination and renamed into place only once it passed
//! `PRAGMA integrity_check`, with a `sha256sum`-style checksum file next to it.
//!
//! `restore` puts such a copy back in place of the store. The daemon must be stopped (the caller
//! holds the store's lock); the copy must match its checksum, pass the integrity check, and have
//! a schema version this binary knows. The store it replaces is kept beside it.
//!
//! Owns only files and SQLite pages: it never reads or logs mail content.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use super::{Result, StoreError, SCHEMA_VERSION};

/// What a backup or a restore found in the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySummary {
    pub path: PathBuf,
    pub schema_version: i64,
    pub tickets: i64,
    pub mails: i64,
    pub bytes: u64,
    pub sha256: String,
}

impl std::fmt::Display for CopySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: schema {}, {} tickets, {} mails, {} bytes, sha256 {}",
            self.path.display(),
            self.schema_version,
            self.tickets,
            self.mails,
            self.bytes,
            self.sha256
        )
    }
}

fn other(msg: impl Into<String>) -> StoreError {
    StoreError::Other(msg.into())
}

/// `FILE.sha256` beside `FILE`.
pub fn checksum_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sha256");
    PathBuf::from(s)
}

/// The sha256 of a file, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| other(format!("{}: {e}", path.display())))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| other(format!("{}: {e}", path.display())))?;
    Ok(hex::encode(h.finalize()))
}

/// Where `backup` writes when DEST is a folder: `mailintake-YYYYMMDD-HHMMSS.db` (UTC), so the
/// names sort by time and `--keep` can drop the oldest.
pub fn dated_name(now: jiff::Timestamp) -> String {
    format!("mailintake-{}.db", now.strftime("%Y%m%d-%H%M%S"))
}

/// Copy the store at `store` to `dest` while other connections may be writing to it.
pub fn backup(store: &Path, dest: &Path) -> Result<CopySummary> {
    if !store.exists() {
        return Err(other(format!("{}: no such store", store.display())));
    }
    // Read-write without creating: opening read-only would fail when the WAL index (-shm) has
    // to be rebuilt; nothing is written through this connection.
    let src = Connection::open_with_flags(
        store,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(std::time::Duration::from_secs(10))?;
    let version: i64 = src.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(other(format!(
            "{}: {}",
            store.display(),
            newer_schema_sentence(version)
        )));
    }
    let partial = {
        let mut s = dest.as_os_str().to_owned();
        s.push(".partial");
        PathBuf::from(s)
    };
    let _ = std::fs::remove_file(&partial);
    {
        let mut dst = Connection::open(&partial)?;
        {
            let b = rusqlite::backup::Backup::new(&src, &mut dst)?;
            // All pages in one step. The store is in WAL mode, so this step's read transaction
            // is a snapshot that does not block the daemon's writers. Copying in small steps
            // instead would restart from the first page every time the daemon commits, which
            // under a steady intake may never finish.
            loop {
                match b.step(-1)? {
                    rusqlite::backup::StepResult::Done => break,
                    // Busy/Locked: another connection holds a lock that WAL readers normally
                    // never wait for (e.g. a checkpoint in progress on a rollback journal).
                    _ => std::thread::sleep(std::time::Duration::from_millis(50)),
                }
            }
        }
        // One self-contained file: no -wal beside the copy.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
    }
    let summary = check_copy(&partial)?;
    // The copy's bytes are on disk before it takes the final name.
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| other(format!("{}: {e}", partial.display())))?;
    std::fs::rename(&partial, dest)
        .map_err(|e| other(format!("{} → {}: {e}", partial.display(), dest.display())))?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sum_path = checksum_path(dest);
    let mut f = std::fs::File::create(&sum_path)
        .map_err(|e| other(format!("{}: {e}", sum_path.display())))?;
    // The format of `sha256sum`, so `sha256sum -c` checks it in the backup folder.
    writeln!(f, "{}  {name}", summary.sha256)
        .and_then(|_| f.sync_all())
        .map_err(|e| other(format!("{}: {e}", sum_path.display())))?;
    sync_dir(dest);
    Ok(CopySummary {
        path: dest.to_path_buf(),
        ..summary
    })
}

fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

/// The sentence both `Store::open` and these commands give for a store from a newer release.
pub fn newer_schema_sentence(version: i64) -> String {
    format!(
        "the store has schema version {version}, written by a newer mailintake; this mailintake {} knows versions up to {SCHEMA_VERSION} and will not read it: install the newer mailintake again (or restore a backup made before the upgrade)",
        env!("CARGO_PKG_VERSION"),
    )
}

/// Open a copy read-only and check it: integrity, a known schema version, the counts.
pub fn check_copy(path: &Path) -> Result<CopySummary> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| other(format!("{}: cannot open: {e}", path.display())))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| other(format!("{}: not a mailintake store: {e}", path.display())))?;
    if integrity != "ok" {
        return Err(other(format!(
            "{}: integrity check failed: {integrity}",
            path.display()
        )));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(other(format!(
            "{}: {}",
            path.display(),
            newer_schema_sentence(version)
        )));
    }
    if version < 1 {
        return Err(other(format!(
            "{}: not a mailintake store (no schema version)",
            path.display()
        )));
    }
    let count = |table: &str| -> Result<i64> {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| other(format!("{}: not a mailintake store: {e}", path.display())))
    };
    let (tickets, mails) = (count("tickets")?, count("mails")?);
    drop(conn);
    let bytes = std::fs::metadata(path)
        .map_err(|e| other(format!("{}: {e}", path.display())))?
        .len();
    Ok(CopySummary {
        path: path.to_path_buf(),
        schema_version: version,
        tickets,
        mails,
        bytes,
        sha256: sha256_file(path)?,
    })
}

/// Backups in `dir` named by [`dated_name`], oldest first.
pub fn dated_backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("mailintake-") && n.ends_with(".db"))
        })
        .collect();
    v.sort();
    v
}

/// Remove all but the newest `keep` dated backups (and their checksums) in `dir`.
pub fn prune_backups(dir: &Path, keep: usize) -> Vec<PathBuf> {
    let all = dated_backups(dir);
    let drop_n = all.len().saturating_sub(keep);
    let mut removed = Vec::new();
    for p in all.into_iter().take(drop_n) {
        if std::fs::remove_file(&p).is_ok() {
            let _ = std::fs::remove_file(checksum_path(&p));
            removed.push(p);
        }
    }
    removed
}

/// What `restore` did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub copy: CopySummary,
    /// The store that was replaced, kept here (None when there was none).
    pub previous: Option<PathBuf>,
}

/// Put the copy at `from` in place of the store at `store`. The caller holds the store's lock
/// (no daemon runs). An older schema is fine: the next open migrates it.
pub fn restore(from: &Path, store: &Path) -> Result<Restored> {
    let sum_path = checksum_path(from);
    if sum_path.exists() {
        let text = std::fs::read_to_string(&sum_path)
            .map_err(|e| other(format!("{}: {e}", sum_path.display())))?;
        let want = text.split_whitespace().next().unwrap_or("").to_lowercase();
        let have = sha256_file(from)?;
        if want != have {
            return Err(other(format!(
                "{}: its sha256 is {have}, but {} says {want}: the copy is damaged or not the one that was made",
                from.display(),
                sum_path.display()
            )));
        }
    }
    let copy = check_copy(from)?;
    let staged = {
        let mut s = store.as_os_str().to_owned();
        s.push(".restoring");
        PathBuf::from(s)
    };
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| other(format!("{}: {e}", dir.display())))?;
    }
    std::fs::copy(from, &staged)
        .and_then(|_| std::fs::File::open(&staged)?.sync_all())
        .map_err(|e| other(format!("{} → {}: {e}", from.display(), staged.display())))?;
    let mut previous = None;
    if store.exists() {
        // Fold the old store's WAL into it, so the kept file is whole on its own and no stale
        // -wal/-shm is left to be applied to the restored file.
        if let Ok(conn) = Connection::open(store) {
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            let _ = conn.pragma_update(None, "journal_mode", "DELETE");
        }
        let kept = {
            let mut s = store.as_os_str().to_owned();
            s.push(".before-restore");
            PathBuf::from(s)
        };
        std::fs::rename(store, &kept)
            .map_err(|e| other(format!("{} → {}: {e}", store.display(), kept.display())))?;
        previous = Some(kept);
    }
    for suffix in ["-wal", "-shm"] {
        let mut s = store.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
    std::fs::rename(&staged, store)
        .map_err(|e| other(format!("{} → {}: {e}", staged.display(), store.display())))?;
    sync_dir(store);
    Ok(Restored {
        copy: CopySummary {
            path: store.to_path_buf(),
            ..copy
        },
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_copy_opens_checks_and_restores_with_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        Store::open(&db).unwrap();
        let dest = dir.path().join("b.db");
        let s = backup(&db, &dest).unwrap();
        assert_eq!(s.schema_version, SCHEMA_VERSION);
        let sum = std::fs::read_to_string(checksum_path(&dest)).unwrap();
        assert_eq!(sum, format!("{}  b.db\n", s.sha256));
        let r = restore(&dest, &db).unwrap();
        assert!(r.previous.unwrap().ends_with("s.db.before-restore"));
        Store::open(&db).unwrap();
    }

    #[test]
    fn a_damaged_copy_is_refused_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        Store::open(&db).unwrap();
        let dest = dir.path().join("b.db");
        backup(&db, &dest).unwrap();
        let mut bytes = std::fs::read(&dest).unwrap();
        let n = bytes.len() - 1;
        bytes[n] ^= 0xff;
        std::fs::write(&dest, bytes).unwrap();
        let err = restore(&dest, &db).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn dated_backups_beyond_keep_are_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "mailintake-20260101-000000.db",
            "mailintake-20260102-000000.db",
        ] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
            std::fs::write(dir.path().join(format!("{n}.sha256")), b"x").unwrap();
        }
        let removed = prune_backups(dir.path(), 1);
        assert_eq!(removed.len(), 1);
        assert!(removed[0].ends_with("mailintake-20260101-000000.db"));
        assert!(!dir
            .path()
            .join("mailintake-20260101-000000.db.sha256")
            .exists());
        assert_eq!(dated_backups(dir.path()).len(), 1);
    }
}
