//! The administrator's commands on the store file: `backup`, `restore`, and the raw-mail
//! retention (`[store] keep_raw_days`). Glue between the config, the store's lock and
//! [`crate::store::backup`] / [`crate::store::retention`]; texts for the terminal.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::mail::imap::ImapConn;
use crate::store::{backup, retention, Store};

/// `mailintake backup`: DEST is a file, or a folder that gets a dated file (and then `keep`
/// says how many dated backups stay there).
pub fn backup(cfg: &Config, dest: &Path, keep: Option<usize>) -> Result<String, String> {
    let (file, folder) = if dest.is_dir() {
        (
            dest.join(backup::dated_name(jiff::Timestamp::now())),
            Some(dest),
        )
    } else {
        if keep.is_some() {
            return Err("--keep needs DEST to be a folder (backups are then named by date)".into());
        }
        (dest.to_path_buf(), None)
    };
    let summary = backup::backup(&cfg.store.path, &file).map_err(|e| e.to_string())?;
    let mut out = format!(
        "backup written: {summary}\nchecksum: {}\n",
        backup::checksum_path(&file).display()
    );
    if let (Some(dir), Some(keep)) = (folder, keep) {
        for p in backup::prune_backups(dir, keep.max(1)) {
            out.push_str(&format!("removed old backup {}\n", p.display()));
        }
    }
    Ok(out)
}

/// `mailintake restore`: only with the daemon stopped (its lock is taken here and held until
/// the copy is in place).
pub fn restore(cfg: &Config, from: &Path) -> Result<String, String> {
    let _lock = crate::daemon::lock_store(&cfg.store.path)
        .map_err(|e| format!("restore needs the daemon stopped: {e}"))?;
    let r = backup::restore(from, &cfg.store.path).map_err(|e| e.to_string())?;
    let mut out = format!("restored {} → {}\n", from.display(), r.copy);
    if let Some(prev) = &r.previous {
        out.push_str(&format!(
            "the replaced store is kept as {}\n",
            prev.display()
        ));
    }
    if r.copy.schema_version < crate::store::SCHEMA_VERSION {
        out.push_str(&format!(
            "the copy had schema {}; it is now upgraded to {}\n",
            r.copy.schema_version,
            crate::store::SCHEMA_VERSION
        ));
    }
    {
        let mut store = Store::open(&cfg.store.path)
            .map_err(|e| format!("{}: {e}", cfg.store.path.display()))?;
        out.push_str(&settle_outbox_after_restore(cfg, &mut store));
    }
    give_to_state_dir_owner(&cfg.store.path, r.previous.as_deref());
    Ok(out)
}

/// An administrator restores as root, but the daemon runs as its own user: the restored file,
/// its WAL, the lock and the kept old store go to the owner of the store's folder.
fn give_to_state_dir_owner(store: &Path, previous: Option<&Path>) {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return;
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return;
    };
    let with = |suffix: &str| {
        let mut s = store.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut paths = vec![
        store.to_path_buf(),
        with("-wal"),
        with("-shm"),
        store.with_extension("lock"),
    ];
    paths.extend(previous.map(Path::to_path_buf));
    for p in paths.iter().filter(|p| p.exists()) {
        let _ = std::os::unix::fs::chown(p, Some(meta.uid()), Some(meta.gid()));
    }
}

/// Replies the copy holds as not yet sent may have gone out after the backup was taken: each one
/// whose copy (`smtp.copy_to`, by Message-ID) is in the Replies folder or the INBOX is marked
/// sent, so the daemon does not send it a second time. The intake's own crash recovery cannot
/// see these copies: they were set aside into Replies by the daemon that ran after the backup.
fn settle_outbox_after_restore(cfg: &Config, store: &mut Store) -> String {
    let far = jiff::Timestamp::MAX;
    let mut items = store.due_outbox(far, usize::MAX >> 1).unwrap_or_default();
    items.extend(store.sending_outbox().unwrap_or_default());
    if items.is_empty() {
        return String::new();
    }
    let folders = [cfg.imap.folders.replies.clone(), cfg.imap.mailbox.clone()];
    let look = || -> Result<Vec<i64>, String> {
        let settings = cfg.imap_settings()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let mut conn = ImapConn::connect_trusting(&settings, &cfg.imap_trust()?)
                .await
                .map_err(|e| e.to_string())?;
            let mut found = Vec::new();
            for item in &items {
                for folder in &folders {
                    if conn
                        .find_message_id(folder, &item.mail.message_id)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        found.push(item.id);
                        break;
                    }
                }
            }
            conn.logout().await;
            Ok(found)
        })
    };
    match look() {
        Ok(found) => {
            let now = jiff::Timestamp::now();
            let marked = found
                .iter()
                .filter(|id| store.mark_sent(**id, now).is_ok())
                .count();
            format!(
                "{} replies were unsent in the copy: {marked} went out after the backup (their copies are in the mailbox) and are marked sent; {} will be sent by the daemon\n",
                items.len(),
                items.len() - marked
            )
        }
        Err(e) => format!(
            "warning: {} replies were unsent in the copy and the mailbox could not be checked for their copies ({e}); the daemon will send them, possibly a second time\n",
            items.len()
        ),
    }
}

/// `mailintake prune`: raw mail past `keep_raw_days` cut to its headers, then VACUUM when a
/// quarter of the file is free (or always with `force_vacuum`).
pub fn prune(cfg: &Config, force_vacuum: bool) -> Result<String, String> {
    let mut store =
        Store::open(&cfg.store.path).map_err(|e| format!("{}: {e}", cfg.store.path.display()))?;
    let now = jiff::Timestamp::now();
    let mut out = String::new();
    match cfg.store.keep_raw_days {
        None => out.push_str("store.keep_raw_days is not set: raw mail is kept forever\n"),
        Some(days) => {
            let cutoff = now
                .checked_sub(jiff::SignedDuration::from_hours(24 * i64::from(days)))
                .map_err(|e| e.to_string())?;
            let p = retention::prune_raw(&mut store, cutoff, now).map_err(|e| e.to_string())?;
            out.push_str(&format!(
                "raw mail older than {days} days cut to its headers: {} mails of closed tickets, {} refused/duplicate/reply copies, {} freed\n",
                p.ticket_mails,
                p.other_mails,
                human_bytes(p.bytes)
            ));
        }
    }
    let before = retention::size(&store).map_err(|e| e.to_string())?;
    if force_vacuum || retention::vacuum_worthwhile(&before) {
        retention::vacuum(&mut store, now).map_err(|e| e.to_string())?;
        let after = retention::size(&store).map_err(|e| e.to_string())?;
        out.push_str(&format!(
            "VACUUM: {} → {}\n",
            human_bytes(before.bytes),
            human_bytes(after.bytes)
        ));
    } else {
        out.push_str(&format!(
            "no VACUUM: {} of {} free (it runs when a quarter is free)\n",
            human_bytes(before.free_bytes),
            human_bytes(before.bytes)
        ));
    }
    Ok(out)
}

/// One line for `stats`: the file, its free space, the raw mail held.
pub fn size_line(store: &Store, path: &Path) -> Result<(String, serde_json::Value), String> {
    let s = retention::size(store).map_err(|e| e.to_string())?;
    let on_disk = store_bytes(path);
    let line = format!(
        "Хранилище: {} на диске ({} свободно внутри), исходные письма {}, сокращено по сроку хранения: {}{}\n",
        human_bytes(on_disk),
        human_bytes(s.free_bytes),
        human_bytes(s.raw_bytes),
        s.pruned_mails,
        s.last_vacuum_at
            .as_deref()
            .map(|t| format!(", VACUUM {}", crate::store::local_time(t)))
            .unwrap_or_default()
    );
    let mut json = serde_json::to_value(&s).map_err(|e| e.to_string())?;
    json["on_disk_bytes"] = on_disk.into();
    Ok((line, json))
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

/// The store file's size on disk, with its WAL.
pub fn store_bytes(path: &Path) -> u64 {
    let wal = {
        let mut s = path.as_os_str().to_owned();
        s.push("-wal");
        PathBuf::from(s)
    };
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
