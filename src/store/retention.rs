//! Retention of raw mail (`[store] keep_raw_days`).
//!
//! The ledger keeps every mail's raw bytes so that attachments can be read, refused mail
//! released and rules replayed. Past the retention period those bytes are only a copy of patient
//! data and disk space: the raw mail of closed tickets (closed longer ago than the period) and of
//! refused mail, duplicate sightings and copies of our replies with no ticket (recorded longer
//! ago) is cut down to its header block. Rows, ticket fields, verdicts, events and correspondence
//! stay; `raw_pruned_at` records when, and `headers_only` is set, so every reader treats the mail
//! as one kept without its body. Freed pages go back to the file system with `VACUUM` when enough
//! of the file is free.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use super::{ts, Result, Store};

/// What one retention run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Mails of closed tickets whose raw bytes were cut to the header block.
    pub ticket_mails: u64,
    /// Refused mail, duplicate sightings and reply copies (no ticket) cut the same way.
    pub other_mails: u64,
    /// Raw bytes removed.
    pub bytes: u64,
}

/// Sizes of the store file, from SQLite's page counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StoreSize {
    /// The whole file.
    pub bytes: u64,
    /// Free pages inside it (reused by new data; returned to the disk by VACUUM).
    pub free_bytes: u64,
    /// Raw mail still held in full.
    pub raw_bytes: u64,
    /// Mails whose raw bytes were pruned.
    pub pruned_mails: u64,
    pub last_vacuum_at: Option<String>,
}

/// Where the mail's header block ends (after the blank line), or the whole mail if it has none.
fn header_block(raw: &[u8]) -> &[u8] {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    };
    &raw[..end]
}

/// Mails past retention, still held in full: (id, kind) with kind true for a ticket's mail.
const CANDIDATES: &str = "
    SELECT m.id, m.ticket_id IS NOT NULL FROM mails m
    WHERE m.raw_pruned_at IS NULL AND (
        (m.ticket_id IN (SELECT id FROM tickets WHERE status = 'closed' AND updated_at < ?1))
        OR (m.ticket_id IS NULL
            AND m.outcome IN ('rejected', 'filtered', 'ignored', 'duplicate', 'own_reply')
            AND m.processed_at < ?1)
    )
    ORDER BY m.id";

/// Cut the raw mail recorded before `cutoff` (see the module docs). Works in batches of short
/// transactions, so a running daemon waits at most for one batch.
pub fn prune_raw(store: &mut Store, cutoff: Timestamp, now: Timestamp) -> Result<Pruned> {
    let ids: Vec<(i64, bool)> = {
        let mut st = store.conn().prepare(CANDIDATES)?;
        let rows = st.query_map(params![ts(cutoff)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<std::result::Result<_, _>>()?
    };
    let mut out = Pruned::default();
    for batch in ids.chunks(50) {
        let tx = store
            .conn_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for (id, of_ticket) in batch {
            let raw: Option<Vec<u8>> = tx
                .query_row(
                    "SELECT r.raw FROM mails m JOIN mail_raw r ON r.mail_id = m.id
                     WHERE m.id = ?1 AND m.raw_pruned_at IS NULL",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(raw) = raw else { continue };
            let head = header_block(&raw);
            tx.execute(
                "UPDATE mail_raw SET raw = ?2 WHERE mail_id = ?1",
                params![id, head],
            )?;
            tx.execute(
                "UPDATE mails SET headers_only = 1, raw_pruned_at = ?2 WHERE id = ?1",
                params![id, ts(now)],
            )?;
            out.bytes += (raw.len() - head.len()) as u64;
            if *of_ticket {
                out.ticket_mails += 1;
            } else {
                out.other_mails += 1;
            }
        }
        tx.commit()?;
    }
    Ok(out)
}

/// When the raw mail was pruned, if it was.
pub fn raw_pruned_at(store: &Store, mail_id: i64) -> Result<Option<String>> {
    Ok(store
        .conn()
        .query_row(
            "SELECT raw_pruned_at FROM mails WHERE id = ?1",
            params![mail_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

pub fn size(store: &Store) -> Result<StoreSize> {
    let c = store.conn();
    let page: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let pages: i64 = c.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    let free: i64 = c.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let (raw, pruned): (i64, i64) = c.query_row(
        "SELECT COALESCE(SUM(CASE WHEN m.raw_pruned_at IS NULL THEN length(r.raw) END), 0),
                COUNT(m.raw_pruned_at) FROM mails m LEFT JOIN mail_raw r ON r.mail_id = m.id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let last_vacuum_at = c
        .query_row(
            "SELECT value FROM meta WHERE key = 'last_vacuum_at'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(StoreSize {
        bytes: (page * pages) as u64,
        free_bytes: (page * free) as u64,
        raw_bytes: raw as u64,
        pruned_mails: pruned as u64,
        last_vacuum_at,
    })
}

/// Whether enough of the file is free for a VACUUM to be worth its exclusive lock: a quarter of
/// it, and at least 1 MiB.
pub fn vacuum_worthwhile(s: &StoreSize) -> bool {
    s.free_bytes >= 1 << 20 && s.free_bytes * 4 >= s.bytes
}

/// Rewrite the file without its free pages. Writers (the daemon) wait meanwhile; run it when the
/// desk is quiet (the retention timer runs at night).
pub fn vacuum(store: &mut Store, now: Timestamp) -> Result<()> {
    let c = store.conn();
    c.execute_batch("VACUUM")?;
    c.execute(
        "INSERT INTO meta (key, value) VALUES ('last_vacuum_at', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![ts(now)],
    )?;
    // The WAL now holds the whole rewritten file: fold it back so the disk space is freed.
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_block_ends_at_the_first_blank_line() {
        assert_eq!(
            header_block(b"A: 1\r\nB: 2\r\n\r\nbody\r\n\r\n"),
            b"A: 1\r\nB: 2\r\n\r\n"
        );
        assert_eq!(header_block(b"A: 1\n\nbody"), b"A: 1\n\n");
        assert_eq!(header_block(b"A: 1"), b"A: 1");
    }
}
