//! The SQLite store: a ledger of every mail seen (raw bytes kept), tickets with their
//! correspondence, attachments and events, and the outbox of replies.
//!
//! Crash safety rests on one rule: everything one mail causes — its ledger row, its ticket or
//! follow-up, and the reply to send — is written in ONE transaction. The IMAP move happens after
//! the commit and is redone when the ledger says it is missing; the outbox is delivered by a
//! separate sender that marks an item `sending` before SMTP and `sent` after, and resolves a
//! `sending` item left by a crash by looking for the reply's copy in the mailbox.
//!
//! Patient data lives only in the `fields` JSON and the raw mail; nothing here logs it.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

pub mod acceptance;
pub mod backup;
pub mod batch;
pub mod outbox;
pub mod retention;

use crate::verdict::{Decision, FormFields, Verdict};
use outbox::OutgoingMail;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Ticket statuses of reg. 4.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Assigned,
    InProgress,
    Feedback,
    Resolved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::Assigned,
        Status::InProgress,
        Status::Feedback,
        Status::Resolved,
        Status::Closed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::Feedback => "feedback",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
    /// The Russian name of reg. 4.8, for every text a person reads.
    pub fn russian(self) -> &'static str {
        match self {
            Status::New => "Новая",
            Status::Assigned => "Назначена",
            Status::InProgress => "Рассматривается",
            Status::Feedback => "Обратная связь",
            Status::Resolved => "Решена",
            Status::Closed => "Закрыта",
        }
    }
}

/// Which IMAP folder a mail goes to once its outcome is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aside {
    Processed,
    Rejected,
    Filtered,
    Ignored,
    Replies,
}

impl Aside {
    pub fn as_str(self) -> &'static str {
        match self {
            Aside::Processed => "processed",
            Aside::Rejected => "rejected",
            Aside::Filtered => "filtered",
            Aside::Ignored => "ignored",
            Aside::Replies => "replies",
        }
    }
    pub fn parse(s: &str) -> Option<Aside> {
        Some(match s {
            "processed" => Aside::Processed,
            "rejected" => Aside::Rejected,
            "filtered" => Aside::Filtered,
            "ignored" => Aside::Ignored,
            "replies" => Aside::Replies,
            _ => return None,
        })
    }
    pub fn for_decision(d: Decision) -> Aside {
        match d {
            Decision::Accept | Decision::Incomplete | Decision::Followup => Aside::Processed,
            Decision::Reject => Aside::Rejected,
            Decision::Filter => Aside::Filtered,
            Decision::Ignore => Aside::Ignored,
        }
    }
}

/// A mail as it came off the server.
pub struct Incoming<'a> {
    pub mailbox: &'a str,
    pub uidvalidity: u32,
    pub uid: u32,
    /// IMAP INTERNALDATE: when the server received it.
    pub arrived_at: Timestamp,
    /// The raw mail, or only its header block when it was too large to download.
    pub raw: &'a [u8],
    pub headers_only: bool,
    pub size: u64,
    pub sha256: String,
    /// When 1 ЛТП must have accepted a ticket made from this mail (reg. 4.6), RFC 3339.
    pub accept_due: Option<String>,
}

/// What the ledger knows about a (mailbox, UIDVALIDITY, UID).
#[derive(Debug, Clone)]
pub struct LedgerState {
    pub mail_id: i64,
    pub aside: Aside,
    pub set_aside: bool,
}

/// What recording a mail did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NewTicket {
        ticket: i64,
        status: Status,
    },
    Followup {
        ticket: i64,
        completed: bool,
    },
    Rejected,
    Filtered,
    Ignored,
    /// The same bytes were recorded before (a UIDVALIDITY change, a redelivery).
    Duplicate {
        of_mail: i64,
    },
    /// A copy of one of our own replies (see `smtp.copy_to`).
    OwnReply,
}

/// A reply the caller wants queued, rendered inside the transaction once the ticket is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyWanted {
    Accept,
    Incomplete,
    Reject,
    Completed,
}

impl ReplyWanted {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyWanted::Accept => "accept",
            ReplyWanted::Incomplete => "incomplete",
            ReplyWanted::Reject => "reject",
            ReplyWanted::Completed => "completed",
        }
    }
}

/// Where a mail released from quarantine goes (`quarantine release`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseInto {
    /// A new ticket in this status (`New` or `Feedback`) with its reg. 4.6 deadline.
    NewTicket {
        status: Status,
        accept_due: Option<String>,
    },
    /// Added to this existing ticket as a follow-up.
    Followup { ticket: i64 },
}

/// The operator's event recorded on the ticket by a release.
pub struct ReleaseNote<'a> {
    pub actor: &'a str,
    pub kind: &'a str,
    pub detail: &'a str,
}

/// Everything the renderer needs to build one reply.
pub struct ReplyRequest<'a> {
    pub kind: ReplyWanted,
    pub ticket: Option<i64>,
    pub verdict: &'a Verdict,
    /// For `Completed`: the merged fields.
    pub fields: &'a FormFields,
    /// A unique id for the reply's Message-ID.
    pub nonce: String,
}

/// One outbox item.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub mail: OutgoingMail,
    pub state: String,
    pub attempts: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct TicketRow {
    pub id: i64,
    pub status: Status,
    pub priority: String,
    pub impact: Option<String>,
    pub subject: String,
    pub sender: String,
    pub created_at: String,
    pub updated_at: String,
    pub arrived_at: String,
    pub assignee: Option<String>,
    pub fields: FormFields,
    pub accept_due: Option<String>,
    pub accepted_at: Option<String>,
    pub feedback_by: Option<String>,
}

pub struct Store {
    conn: Connection,
}

/// The newest schema this binary knows (`mailintake --version` prints it).
pub const SCHEMA_VERSION: i64 = 6;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE mails (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id TEXT,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        arrived_at TEXT NOT NULL,
        processed_at TEXT NOT NULL,
        decision TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reasons TEXT NOT NULL,
        verdict TEXT NOT NULL,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        ticket_id INTEGER,
        raw BLOB NOT NULL,
        headers_only INTEGER NOT NULL DEFAULT 0,
        aside TEXT NOT NULL,
        set_aside_at TEXT,
        UNIQUE (mailbox, uidvalidity, uid)
    );
    CREATE INDEX mails_sha256 ON mails (sha256);
    CREATE INDEX mails_ticket ON mails (ticket_id);
    CREATE TABLE tickets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        status TEXT NOT NULL,
        priority TEXT NOT NULL,
        impact TEXT,
        subject TEXT NOT NULL,
        sender TEXT NOT NULL,
        fields TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        arrived_at TEXT NOT NULL,
        assignee TEXT,
        first_mail_id INTEGER NOT NULL REFERENCES mails (id)
    );
    CREATE TABLE correspondence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        direction TEXT NOT NULL,
        mail_id INTEGER REFERENCES mails (id),
        outbox_id INTEGER REFERENCES outbox (id),
        at TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX correspondence_ticket ON correspondence (ticket_id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        mail_id INTEGER NOT NULL REFERENCES mails (id),
        position INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        content_type TEXT NOT NULL
    );
    CREATE INDEX attachments_ticket ON attachments (ticket_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id INTEGER NOT NULL REFERENCES tickets (id),
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_ticket ON events (ticket_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ticket_id INTEGER REFERENCES tickets (id),
        mail_id INTEGER REFERENCES mails (id),
        kind TEXT NOT NULL,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL UNIQUE,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        sent_at TEXT
    );
    CREATE INDEX outbox_state ON outbox (state, next_attempt_at);
    CREATE TABLE reply_counts (
        address TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (address, day)
    );
    "#,
    // 2: deadlines (reg. 4.6), who asked for feedback, digests.
    r#"
    ALTER TABLE tickets ADD COLUMN accept_due TEXT;
    ALTER TABLE tickets ADD COLUMN accepted_at TEXT;
    ALTER TABLE tickets ADD COLUMN feedback_by TEXT;
    UPDATE tickets SET feedback_by = 'mailintake' WHERE status = 'feedback';
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        recipients TEXT NOT NULL,
        outbox_id INTEGER REFERENCES outbox (id)
    );
    "#,
    // 3: retention of raw mail (`store.keep_raw_days`): when a mail's raw bytes were cut to its
    // header block.
    r#"
    ALTER TABLE mails ADD COLUMN raw_pruned_at TEXT;
    "#,
    // 4: the web console — its accounts, and indexes for the queue (tickets awaiting acceptance
    // by deadline; counts by status) so a page stays fast over 100,000 tickets.
    r#"
    CREATE TABLE users (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX tickets_status ON tickets (status);
    CREATE INDEX tickets_awaiting ON tickets (accept_due, id)
        WHERE accepted_at IS NULL AND status IN ('new', 'feedback');
    CREATE INDEX mails_decision ON mails (decision);
    "#,
    // 5: indexes for the queries every intake pass and outbox round make, which scanned the
    // whole ledger (raw mails included) and grew with it: replies found by their copy
    // (message_id), and recorded mails not yet set aside.
    r#"
    CREATE INDEX mails_message_id ON mails (message_id);
    CREATE INDEX mails_not_set_aside ON mails (mailbox, uidvalidity) WHERE set_aside_at IS NULL;
    "#,
    // 6: the raw mail in a table of its own. SQLite rewrites a whole row, overflow pages
    // included, on every UPDATE: marking a mail set aside or linking its ticket copied its raw
    // bytes again (perf: the largest single cost of recording a backlog).
    r#"
    CREATE TABLE mail_raw (
        mail_id INTEGER PRIMARY KEY REFERENCES mails(id),
        raw BLOB NOT NULL
    );
    INSERT INTO mail_raw (mail_id, raw) SELECT id, raw FROM mails;
    ALTER TABLE mails DROP COLUMN raw;
    "#,
];

/// Stored instants are compared as text in SQL (`next_attempt_at <= ?`), so they have one fixed
/// width: UTC, milliseconds always written (`2026-11-26T09:13:42.420Z`).
pub fn ts(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A stored RFC 3339 instant as people in Sevastopol read it: "26.11.2026 12:10".
pub fn local_time(stored: &str) -> String {
    let Ok(t) = stored.parse::<jiff::Timestamp>() else {
        return stored.to_string();
    };
    let tz = jiff::tz::TimeZone::get("Europe/Simferopol").unwrap_or(jiff::tz::TimeZone::UTC);
    t.to_zoned(tz).strftime("%d.%m.%Y %H:%M").to_string()
}

/// The name events carry for what mailintake did by itself (not an operator).
pub const SYSTEM_ACTOR: &str = "mailintake";

fn parse_ts(s: &str) -> Timestamp {
    s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

impl Store {
    /// Open (creating if needed) and bring the schema up to date.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Other(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let conn = Connection::open(path)?;
        // Every write transaction is IMMEDIATE (it takes the write lock up front), so a writer
        // waits here for another one instead of failing with "database is locked" when a read
        // would have to be upgraded.
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Recording a mail runs a dozen statements; they are prepared once per connection.
        conn.set_prepared_statement_cache_capacity(64);
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Recording a mail runs under a SAVEPOINT (see `batch`), and SQLite copies every page
        // the savepoint changes into a statement journal, a temporary FILE once it passes
        // 64 KiB: tens of KiB a mail, written through the kernel for nothing (perf: a third of
        // the writer's time in a backlog). In memory it costs a memcpy; it never outlives the
        // transaction, so durability is unchanged.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        // IMMEDIATE: the version is read and the migrations applied under one write lock, so two
        // processes opening a new store at once (the daemon and a `tickets` command) cannot both
        // try to create the schema.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Other(backup::newer_schema_sentence(version)));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Let commits on this connection leave checkpointing to someone else (`false`: SQLite's
    /// default, a checkpoint by the commit that grows the WAL past 1000 pages).
    pub fn leave_checkpoints(&self, leave: bool) -> Result<()> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", if leave { 0 } else { 1000 })?;
        Ok(())
    }

    /// Copy what is committed in the WAL into the database file without waiting for anyone
    /// (`PRAGMA wal_checkpoint(PASSIVE)`): writers go on meanwhile.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// For feature modules (workflow, digests, quarantine) that run their own transactions.
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    // ---- ledger ------------------------------------------------------------------------

    pub fn ledger_state(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<Option<LedgerState>> {
        ledger_state_in(&self.conn, mailbox, uidvalidity, uid)
    }

    /// Mark several mails set aside, in one transaction.
    pub fn mark_set_aside_many(&mut self, mail_ids: &[i64], now: Timestamp) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            let mut st = tx.prepare("UPDATE mails SET set_aside_at = ?2 WHERE id = ?1")?;
            for id in mail_ids {
                st.execute(params![id, ts(now)])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Recorded mails of this mailbox and UIDVALIDITY that are no longer in it were set aside
    /// just before a crash that kept them from being marked: mark them now.
    pub fn mark_gone_set_aside(
        &mut self,
        mailbox: &str,
        uidvalidity: u32,
        present: &std::collections::HashSet<u32>,
        now: Timestamp,
    ) -> Result<usize> {
        let pending: Vec<(i64, u32)> = {
            let mut st = self.conn.prepare(
                "SELECT id, uid FROM mails WHERE mailbox = ?1 AND uidvalidity = ?2 AND set_aside_at IS NULL",
            )?;
            let rows = st.query_map(params![mailbox, uidvalidity], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            rows.collect::<std::result::Result<_, _>>()?
        };
        let gone: Vec<i64> = pending
            .into_iter()
            .filter(|(_, uid)| !present.contains(uid))
            .map(|(id, _)| id)
            .collect();
        if !gone.is_empty() {
            self.mark_set_aside_many(&gone, now)?;
        }
        Ok(gone.len())
    }

    pub fn mark_set_aside(&self, mail_id: i64, now: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE mails SET set_aside_at = ?2 WHERE id = ?1",
            params![mail_id, ts(now)],
        )?;
        Ok(())
    }

    /// Record one mail and everything it causes, in one transaction.
    ///
    /// `render` builds a reply (it is called inside the transaction, once the ticket number is
    /// known); `own_reply` says the mail is a copy of one of our replies; `limit` is the
    /// per-address daily reply limit.
    #[allow(clippy::too_many_arguments)]
    pub fn record_mail(
        &mut self,
        mail: &Incoming<'_>,
        verdict: &Verdict,
        own_reply: bool,
        limit: u32,
        now: Timestamp,
        render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
        form_complete: &dyn Fn(&FormFields) -> bool,
    ) -> Result<(i64, Outcome)> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let result = Store::record_in(
            &tx,
            mail,
            verdict,
            own_reply,
            limit,
            now,
            render,
            form_complete,
        )?;
        tx.commit()?;
        Ok(result)
    }

    /// What [`Store::record_mail`] writes, inside the caller's transaction: one mail's, or a
    /// batch's ([`batch`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_in(
        tx: &Transaction<'_>,
        mail: &Incoming<'_>,
        verdict: &Verdict,
        own_reply: bool,
        limit: u32,
        now: Timestamp,
        render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
        form_complete: &dyn Fn(&FormFields) -> bool,
    ) -> Result<(i64, Outcome)> {
        // A redelivery of bytes already recorded (e.g. after a UIDVALIDITY change): record the
        // sighting, do nothing else.
        let dup: Option<(i64, String)> = tx
            .prepare_cached("SELECT id, aside FROM mails WHERE sha256 = ?1 ORDER BY id LIMIT 1")?
            .query_row(params![mail.sha256], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let verdict_json =
            serde_json::to_string(verdict).map_err(|e| StoreError::Other(e.to_string()))?;
        let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
        let reasons = reasons.join(",");
        let insert_mail = |tx: &Transaction<'_>,
                           outcome: &str,
                           aside: Aside,
                           ticket: Option<i64>|
         -> Result<i64> {
            tx.prepare_cached("INSERT INTO mails (mailbox, uidvalidity, uid, message_id, sha256, size, arrived_at, processed_at,
                                    decision, outcome, reasons, verdict, sender, subject, ticket_id, headers_only, aside)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)")?.execute(params![
                    mail.mailbox,
                    mail.uidvalidity,
                    mail.uid,
                    verdict.message_id,
                    mail.sha256,
                    mail.size as i64,
                    ts(mail.arrived_at),
                    ts(now),
                    verdict.decision.as_str(),
                    outcome,
                    reasons,
                    verdict_json,
                    verdict.sender,
                    verdict.subject,
                    ticket,
                    mail.headers_only,
                    aside.as_str(),
                ])?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached("INSERT INTO mail_raw (mail_id, raw) VALUES (?1, ?2)")?
                .execute(params![id, mail.raw])?;
            Ok(id)
        };
        if let Some((of_mail, aside)) = dup {
            let aside = Aside::parse(&aside).unwrap_or(Aside::Processed);
            let id = insert_mail(tx, "duplicate", aside, None)?;
            return Ok((id, Outcome::Duplicate { of_mail }));
        }
        if own_reply {
            let id = insert_mail(tx, "own_reply", Aside::Replies, None)?;
            return Ok((id, Outcome::OwnReply));
        }

        let aside = Aside::for_decision(verdict.decision);
        let result = match verdict.decision {
            Decision::Filter => (insert_mail(tx, "filtered", aside, None)?, Outcome::Filtered),
            Decision::Ignore => (insert_mail(tx, "ignored", aside, None)?, Outcome::Ignored),
            Decision::Reject => {
                let ticket = verdict
                    .followup_of
                    .and_then(|n| ticket_exists(tx, n as i64).ok().flatten());
                let id = insert_mail(tx, "rejected", aside, ticket)?;
                if let Some(t) = ticket {
                    add_event(
                        tx,
                        t,
                        now,
                        "mailintake",
                        "followup_rejected",
                        &format!("письмо #{id} отклонено: {reasons}"),
                    )?;
                }
                queue_reply(
                    tx,
                    ReplyWanted::Reject,
                    ticket,
                    Some(id),
                    verdict,
                    &verdict.fields,
                    limit,
                    now,
                    render,
                )?;
                (id, Outcome::Rejected)
            }
            Decision::Followup => {
                let existing = verdict
                    .followup_of
                    .and_then(|n| ticket_exists(tx, n as i64).ok().flatten());
                match existing {
                    Some(t) => {
                        let id = insert_mail(tx, "followup", aside, Some(t))?;
                        let completed =
                            add_followup(tx, t, id, verdict, now, limit, render, form_complete)?;
                        (
                            id,
                            Outcome::Followup {
                                ticket: t,
                                completed,
                            },
                        )
                    }
                    None => {
                        // A tag naming no ticket of ours: the mail is treated as new. The caller
                        // passes a verdict computed without the follow-up rule in that case; here
                        // we only get a follow-up verdict when the caller could not, so create a
                        // ticket from what the verdict says.
                        return Err(StoreError::Other(format!(
                            "follow-up of unknown ticket {:?}: re-judge as new",
                            verdict.followup_of
                        )));
                    }
                }
            }
            Decision::Accept | Decision::Incomplete => {
                let status = if verdict.decision == Decision::Accept {
                    Status::New
                } else {
                    Status::Feedback
                };
                let id = insert_mail(tx, "ticket", aside, None)?;
                let t = create_ticket(
                    tx,
                    id,
                    mail.arrived_at,
                    mail.accept_due.as_deref(),
                    verdict,
                    status,
                    now,
                )?;
                tx.prepare_cached("UPDATE mails SET ticket_id = ?2 WHERE id = ?1")?
                    .execute(params![id, t])?;
                let kind = if status == Status::New {
                    ReplyWanted::Accept
                } else {
                    ReplyWanted::Incomplete
                };
                queue_reply(
                    tx,
                    kind,
                    Some(t),
                    Some(id),
                    verdict,
                    &verdict.fields,
                    limit,
                    now,
                    render,
                )?;
                (id, Outcome::NewTicket { ticket: t, status })
            }
        };
        Ok(result)
    }

    /// Whether ticket `n` exists (for deciding whether a follow-up tag is ours).
    pub fn ticket_exists(&self, n: i64) -> Result<bool> {
        Ok(ticket_exists(&self.conn, n)?.is_some())
    }

    /// Release a mail from quarantine (`quarantine release`): what `record_mail` would have done
    /// for `verdict` — the ticket (or the follow-up) with its attachments and the normal reply —
    /// plus the operator's event, and the ledger row marked `released` with its ticket, in ONE
    /// transaction. The raw mail and its first verdict stay. Refused when the row is not (or no
    /// longer) rejected, filtered or ignored, so a mail is released at most once.
    #[allow(clippy::too_many_arguments)]
    pub fn record_release(
        &mut self,
        mail_id: i64,
        verdict: &Verdict,
        into: ReleaseInto,
        note: &ReleaseNote<'_>,
        limit: u32,
        now: Timestamp,
        render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
        form_complete: &dyn Fn(&FormFields) -> bool,
    ) -> Result<Outcome> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let arrived_at: Option<String> = tx
            .query_row(
                "SELECT arrived_at FROM mails WHERE id = ?1 AND outcome IN ('rejected', 'filtered', 'ignored')",
                params![mail_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(arrived_at) = arrived_at else {
            return Err(StoreError::Other(format!(
                "письмо #{mail_id} не в карантине (уже выпущено?)"
            )));
        };
        let (ticket, outcome) = match into {
            ReleaseInto::NewTicket { status, accept_due } => {
                let t = create_ticket(
                    &tx,
                    mail_id,
                    parse_ts(&arrived_at),
                    accept_due.as_deref(),
                    verdict,
                    status,
                    now,
                )?;
                let kind = if status == Status::New {
                    ReplyWanted::Accept
                } else {
                    ReplyWanted::Incomplete
                };
                queue_reply(
                    &tx,
                    kind,
                    Some(t),
                    Some(mail_id),
                    verdict,
                    &verdict.fields,
                    limit,
                    now,
                    render,
                )?;
                (t, Outcome::NewTicket { ticket: t, status })
            }
            ReleaseInto::Followup { ticket } => {
                if ticket_exists(&tx, ticket)?.is_none() {
                    return Err(StoreError::Other(format!("заявка #{ticket} не найдена")));
                }
                let completed = add_followup(
                    &tx,
                    ticket,
                    mail_id,
                    verdict,
                    now,
                    limit,
                    render,
                    form_complete,
                )?;
                (ticket, Outcome::Followup { ticket, completed })
            }
        };
        tx.execute(
            "UPDATE mails SET outcome = 'released', ticket_id = ?2 WHERE id = ?1",
            params![mail_id, ticket],
        )?;
        add_event(&tx, ticket, now, note.actor, note.kind, note.detail)?;
        tx.commit()?;
        Ok(outcome)
    }

    // ---- outbox ------------------------------------------------------------------------

    /// Items due for sending at `now` (pending, next attempt reached), oldest first.
    pub fn due_outbox(&self, now: Timestamp, limit: usize) -> Result<Vec<OutboxItem>> {
        let mut st = self.conn.prepare(
            "SELECT id, ticket_id, payload, state, attempts, created_at FROM outbox
             WHERE state = 'pending' AND next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = st.query_map(params![ts(now), limit as i64], outbox_row)?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Items left in `sending` by a crash.
    pub fn sending_outbox(&self) -> Result<Vec<OutboxItem>> {
        let mut st = self.conn.prepare(
            "SELECT id, ticket_id, payload, state, attempts, created_at FROM outbox WHERE state = 'sending' ORDER BY id",
        )?;
        let rows = st.query_map([], outbox_row)?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn count_outbox(&self, state: &str) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = ?1",
            params![state],
            |r| r.get(0),
        )?)
    }

    /// Before handing a reply to SMTP. `next_attempt_at` becomes the attempt time, from which a
    /// restart after a crash waits `smtp.confirm_seconds` for the reply's copy before resending.
    pub fn mark_sending(&self, id: i64, now: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, next_attempt_at = ?2 WHERE id = ?1",
            params![id, ts(now)],
        )?;
        Ok(())
    }

    pub fn mark_sent(&mut self, id: i64, now: Timestamp) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?2, last_error = NULL WHERE id = ?1",
            params![id, ts(now)],
        )?;
        let ticket: Option<i64> = tx.query_row(
            "SELECT ticket_id FROM outbox WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        if let Some(t) = ticket {
            add_event(
                &tx,
                t,
                now,
                "mailintake",
                "reply_sent",
                &format!("ответ #{id} отправлен"),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A 4xx or connection error: try again at `next`.
    pub fn mark_retry(&self, id: i64, error: &str, next: Timestamp) -> Result<()> {
        self.conn.execute(
            "UPDATE outbox SET state = 'pending', last_error = ?2, next_attempt_at = ?3 WHERE id = ?1",
            params![id, error, ts(next)],
        )?;
        Ok(())
    }

    /// A 5xx (or retries exhausted): recorded on the ticket as undeliverable.
    pub fn mark_failed(&mut self, id: i64, error: &str, now: Timestamp) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        let ticket: Option<i64> = tx.query_row(
            "SELECT ticket_id FROM outbox WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        if let Some(t) = ticket {
            add_event(
                &tx,
                t,
                now,
                "mailintake",
                "reply_undeliverable",
                &format!("ответ #{id} не доставлен: {error}"),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    // ---- reading ----------------------------------------------------------------------

    pub fn tickets(&self, status: Option<Status>) -> Result<Vec<TicketRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {TICKET_COLUMNS} FROM tickets WHERE (?1 IS NULL OR status = ?1) ORDER BY id"
        ))?;
        let rows = st.query_map(params![status.map(|s| s.as_str())], ticket_row)?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn ticket(&self, id: i64) -> Result<Option<TicketRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = ?1"),
                params![id],
                ticket_row,
            )
            .optional()?)
    }

    /// The ticket's correspondence: (at, direction, summary, mail_id, outbox state).
    pub fn correspondence(&self, ticket: i64) -> Result<Vec<Correspondence>> {
        let mut st = self.conn.prepare(
            "SELECT c.at, c.direction, c.summary, c.mail_id, o.state, o.message_id, o.last_error
             FROM correspondence c LEFT JOIN outbox o ON o.id = c.outbox_id
             WHERE c.ticket_id = ?1 ORDER BY c.id",
        )?;
        let rows = st.query_map(params![ticket], |r| {
            Ok(Correspondence {
                at: r.get(0)?,
                direction: r.get(1)?,
                summary: r.get(2)?,
                mail_id: r.get(3)?,
                reply_state: r.get(4)?,
                reply_message_id: r.get(5)?,
                reply_error: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn attachments(&self, ticket: i64) -> Result<Vec<AttachmentRow>> {
        let mut st = self.conn.prepare(
            "SELECT mail_id, position, name, kind, bytes, content_type FROM attachments WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![ticket], |r| {
            Ok(AttachmentRow {
                mail_id: r.get(0)?,
                position: r.get(1)?,
                name: r.get(2)?,
                kind: r.get(3)?,
                bytes: r.get(4)?,
                content_type: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn events(&self, ticket: i64) -> Result<Vec<EventRow>> {
        let mut st = self.conn.prepare(
            "SELECT at, actor, kind, detail FROM events WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![ticket], |r| {
            Ok(EventRow {
                at: r.get(0)?,
                actor: r.get(1)?,
                kind: r.get(2)?,
                detail: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    pub fn raw_mail(&self, mail_id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT raw FROM mail_raw WHERE mail_id = ?1",
                params![mail_id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A value of the `meta` table (facts the daemon leaves for other processes).
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Counts of mails by outcome (for summaries and tests).
    pub fn mail_counts(&self) -> Result<Vec<(String, i64)>> {
        let mut st = self
            .conn
            .prepare("SELECT outcome, COUNT(*) FROM mails GROUP BY outcome ORDER BY outcome")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Correspondence {
    pub at: String,
    pub direction: String,
    pub summary: String,
    pub mail_id: Option<i64>,
    pub reply_state: Option<String>,
    pub reply_message_id: Option<String>,
    pub reply_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentRow {
    pub mail_id: i64,
    pub position: i64,
    pub name: String,
    pub kind: String,
    pub bytes: i64,
    pub content_type: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxItem> {
    let payload: String = r.get(2)?;
    let mail: OutgoingMail = serde_json::from_str(&payload).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(OutboxItem {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        mail,
        state: r.get(3)?,
        attempts: r.get(4)?,
        created_at: parse_ts(&r.get::<_, String>(5)?),
    })
}

/// The columns [`ticket_row`] reads, in its order.
pub(crate) const TICKET_COLUMNS: &str =
    "id, status, priority, impact, subject, sender, created_at, updated_at, \
     arrived_at, assignee, fields, accept_due, accepted_at, feedback_by";

pub(crate) fn ticket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TicketRow> {
    let status: String = r.get(1)?;
    let fields: String = r.get(10)?;
    Ok(TicketRow {
        id: r.get(0)?,
        status: Status::parse(&status).unwrap_or(Status::New),
        priority: r.get(2)?,
        impact: r.get(3)?,
        subject: r.get(4)?,
        sender: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
        arrived_at: r.get(8)?,
        assignee: r.get(9)?,
        fields: serde_json::from_str(&fields).unwrap_or_default(),
        accept_due: r.get(11)?,
        accepted_at: r.get(12)?,
        feedback_by: r.get(13)?,
    })
}

fn ledger_state_in(
    conn: &Connection,
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
) -> Result<Option<LedgerState>> {
    Ok(conn
        .query_row(
            "SELECT id, aside, set_aside_at IS NOT NULL FROM mails WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
            params![mailbox, uidvalidity, uid],
            |r| {
                Ok(LedgerState {
                    mail_id: r.get(0)?,
                    aside: Aside::parse(&r.get::<_, String>(1)?).unwrap_or(Aside::Processed),
                    set_aside: r.get(2)?,
                })
            },
        )
        .optional()?)
}

fn ticket_exists(conn: &Connection, n: i64) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM tickets WHERE id = ?1")?
        .query_row(params![n], |r| r.get(0))
        .optional()
}

/// One line of a ticket's history; the id of the event row.
pub fn add_event(
    tx: &Connection,
    ticket: i64,
    now: Timestamp,
    actor: &str,
    kind: &str,
    detail: &str,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO events (ticket_id, at, actor, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ticket, ts(now), actor, kind, detail])?;
    Ok(tx.last_insert_rowid())
}

fn add_attachments(tx: &Connection, ticket: i64, mail_id: i64, verdict: &Verdict) -> Result<()> {
    for (i, a) in verdict.attachments.iter().enumerate() {
        let kind = serde_json::to_value(a.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        tx.prepare_cached("INSERT INTO attachments (ticket_id, mail_id, position, name, kind, bytes, content_type)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(params![ticket, mail_id, i as i64, a.name, kind, a.bytes as i64, a.content_type])?;
    }
    Ok(())
}

fn create_ticket(
    tx: &Transaction<'_>,
    mail_id: i64,
    arrived_at: Timestamp,
    accept_due: Option<&str>,
    verdict: &Verdict,
    status: Status,
    now: Timestamp,
) -> Result<i64> {
    let fields =
        serde_json::to_string(&verdict.fields).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.prepare_cached("INSERT INTO tickets (status, priority, impact, subject, sender, fields, created_at, updated_at, arrived_at, first_mail_id,
                              accept_due, feedback_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10, ?11)")?.execute(params![
            status.as_str(),
            verdict.priority.as_str(),
            verdict.impact.map(|i| i.as_str()),
            verdict.subject,
            verdict.sender,
            fields,
            ts(now),
            ts(arrived_at),
            mail_id,
            accept_due,
            (status == Status::Feedback).then_some("mailintake"),
        ])?;
    let t = tx.last_insert_rowid();
    tx.prepare_cached("INSERT INTO correspondence (ticket_id, direction, mail_id, at, summary) VALUES (?1, 'in', ?2, ?3, ?4)")?.execute(params![t, mail_id, ts(arrived_at), format!("письмо от {}: {}", verdict.sender, verdict.subject)])?;
    add_attachments(tx, t, mail_id, verdict)?;
    let mut detail = format!("заявка создана в статусе «{}»", status.russian());
    if !verdict.reasons.is_empty() {
        let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
        detail.push_str(&format!("; замечания: {}", codes.join(", ")));
    }
    add_event(tx, t, now, "mailintake", "created", &detail)?;
    Ok(t)
}

#[allow(clippy::too_many_arguments)]
fn add_followup(
    tx: &Transaction<'_>,
    t: i64,
    mail_id: i64,
    verdict: &Verdict,
    now: Timestamp,
    limit: u32,
    render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
    form_complete: &dyn Fn(&FormFields) -> bool,
) -> Result<bool> {
    tx.prepare_cached("INSERT INTO correspondence (ticket_id, direction, mail_id, at, summary) VALUES (?1, 'in', ?2, ?3, ?4)")?.execute(params![t, mail_id, ts(now), format!("дополнение от {}: {}", verdict.sender, verdict.subject)])?;
    add_attachments(tx, t, mail_id, verdict)?;
    add_event(
        tx,
        t,
        now,
        "mailintake",
        "followup",
        &format!("получено дополнение (письмо #{mail_id})"),
    )?;
    let (status, fields): (String, String) = tx
        .prepare_cached("SELECT status, fields FROM tickets WHERE id = ?1")?
        .query_row(params![t], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let status = Status::parse(&status).unwrap_or(Status::New);
    let mut merged: FormFields = serde_json::from_str(&fields).unwrap_or_default();
    merged.merge_from(&verdict.fields);
    let merged_json =
        serde_json::to_string(&merged).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.prepare_cached("UPDATE tickets SET fields = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![t, merged_json, ts(now)])?;
    // An operator's question answered (reg. 4.8): back to «Рассматривается». Before the
    // completion rule, which is for tickets mailintake put in «Обратная связь».
    if acceptance::feedback_answered(tx, t, mail_id, now)? {
        return Ok(false);
    }
    if status == Status::Feedback && form_complete(&merged) {
        tx.prepare_cached("UPDATE tickets SET status = 'new', updated_at = ?2 WHERE id = ?1")?
            .execute(params![t, ts(now)])?;
        add_event(
            tx,
            t,
            now,
            "mailintake",
            "status",
            "«Обратная связь» → «Новая»: форма заявки дополнена",
        )?;
        queue_reply(
            tx,
            ReplyWanted::Completed,
            Some(t),
            Some(mail_id),
            verdict,
            &merged,
            limit,
            now,
            render,
        )?;
        return Ok(true);
    }
    if status == Status::Feedback {
        // Still incomplete after the addition: tell the sender what is still missing, so that
        // the next mail can finish it (the reply's `{missing}` is computed from the merged form).
        add_event(
            tx,
            t,
            now,
            "mailintake",
            "still_incomplete",
            "дополнение получено, форма всё ещё неполна",
        )?;
        queue_reply(
            tx,
            ReplyWanted::Incomplete,
            Some(t),
            Some(mail_id),
            verdict,
            &merged,
            limit,
            now,
            render,
        )?;
    }
    Ok(false)
}

#[allow(clippy::too_many_arguments)]
fn queue_reply(
    tx: &Transaction<'_>,
    kind: ReplyWanted,
    ticket: Option<i64>,
    mail_id: Option<i64>,
    verdict: &Verdict,
    fields: &FormFields,
    limit: u32,
    now: Timestamp,
    render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
) -> Result<()> {
    let nonce = format!("m{}", mail_id.unwrap_or(0));
    let out = render(&ReplyRequest {
        kind,
        ticket,
        verdict,
        fields,
        nonce,
    });
    let day = now.strftime("%Y-%m-%d").to_string();
    let count: i64 = tx
        .prepare_cached("SELECT count FROM reply_counts WHERE address = ?1 AND day = ?2")?
        .query_row(params![out.to, day], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let state = if count >= limit as i64 {
        "suppressed"
    } else {
        "pending"
    };
    if state == "pending" {
        tx.prepare_cached(
            "INSERT INTO reply_counts (address, day, count) VALUES (?1, ?2, 1)
             ON CONFLICT (address, day) DO UPDATE SET count = count + 1",
        )?
        .execute(params![out.to, day])?;
    }
    let payload = serde_json::to_string(&out).map_err(|e| StoreError::Other(e.to_string()))?;
    tx.prepare_cached("INSERT INTO outbox (ticket_id, mail_id, kind, recipient, message_id, payload, state, next_attempt_at, created_at, last_error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)")?.execute(params![
            ticket,
            mail_id,
            kind.as_str(),
            out.to,
            out.message_id,
            payload,
            state,
            ts(now),
            (state == "suppressed").then(|| format!("лимит {limit} ответов в день на адрес"))
        ])?;
    let outbox_id = tx.last_insert_rowid();
    if let Some(t) = ticket {
        tx.prepare_cached("INSERT INTO correspondence (ticket_id, direction, outbox_id, at, summary) VALUES (?1, 'out', ?2, ?3, ?4)")?.execute(params![t, outbox_id, ts(now), format!("ответ ({}): {}", kind.as_str(), out.subject)])?;
        if state == "suppressed" {
            add_event(
                tx,
                t,
                now,
                "mailintake",
                "reply_suppressed",
                &format!("ответ не отправлен: превышен лимит {limit} ответов в день на адрес"),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::AutoSubmitted;
    use crate::verdict::{Decision, Priority};

    /// A verdict with only a decision and a sender; shared with the batch tests.
    pub(in crate::store) fn verdict(decision: Decision, sender: &str) -> Verdict {
        Verdict {
            decision,
            reasons: vec![],
            warnings: vec![],
            missing: vec![],
            followup_of: None,
            sender: sender.into(),
            subject: "Тема".into(),
            message_id: Some("x@y".into()),
            priority: Priority::Normal,
            impact: None,
            fields: FormFields::default(),
            attachments: vec![],
            auth: None,
        }
    }

    fn incoming<'a>(uid: u32, raw: &'a [u8]) -> Incoming<'a> {
        Incoming {
            mailbox: "INBOX",
            uidvalidity: 7,
            uid,
            arrived_at: Timestamp::UNIX_EPOCH,
            raw,
            headers_only: false,
            size: raw.len() as u64,
            sha256: format!("{:x}", raw.len() * 1000 + uid as usize),
            accept_due: None,
        }
    }

    fn render(req: &ReplyRequest<'_>) -> OutgoingMail {
        OutgoingMail {
            message_id: format!(
                "mailintake.{}.{}.{}@t",
                req.ticket.unwrap_or(0),
                req.kind.as_str(),
                req.nonce
            ),
            to: req.verdict.sender.clone(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            in_reply_to: None,
            references: vec![],
            auto_submitted: AutoSubmitted::AutoReplied,
            null_sender: true,
            bcc: vec![],
        }
    }

    fn record(store: &mut Store, uid: u32, v: &Verdict, limit: u32) -> (i64, Outcome) {
        let raw = format!("mail {uid}").into_bytes();
        store
            .record_mail(
                &incoming(uid, &raw),
                v,
                false,
                limit,
                Timestamp::UNIX_EPOCH,
                &mut render,
                &|_| true,
            )
            .unwrap()
    }

    #[test]
    fn ticket_and_reply_are_recorded_together_and_ids_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let (_, o) = record(
            &mut store,
            1,
            &verdict(Decision::Accept, "a@sev.gov.ru"),
            40,
        );
        assert_eq!(
            o,
            Outcome::NewTicket {
                ticket: 1,
                status: Status::New
            }
        );
        assert_eq!(store.count_outbox("pending").unwrap(), 1);
        // A ticket deleted by hand does not free its number (AUTOINCREMENT).
        store.conn().execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM events; DELETE FROM correspondence; DELETE FROM tickets;").unwrap();
        let (_, o) = record(
            &mut store,
            2,
            &verdict(Decision::Incomplete, "a@sev.gov.ru"),
            40,
        );
        assert_eq!(
            o,
            Outcome::NewTicket {
                ticket: 2,
                status: Status::Feedback
            }
        );
    }

    #[test]
    fn same_bytes_again_are_a_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let raw = b"same".to_vec();
        let v = verdict(Decision::Accept, "a@sev.gov.ru");
        let mut m = incoming(1, &raw);
        m.sha256 = "abc".into();
        store
            .record_mail(
                &m,
                &v,
                false,
                40,
                Timestamp::UNIX_EPOCH,
                &mut render,
                &|_| true,
            )
            .unwrap();
        let mut m2 = incoming(1, &raw);
        m2.uidvalidity = 8; // the mailbox was recreated
        m2.sha256 = "abc".into();
        let (_, o) = store
            .record_mail(
                &m2,
                &v,
                false,
                40,
                Timestamp::UNIX_EPOCH,
                &mut render,
                &|_| true,
            )
            .unwrap();
        assert!(matches!(o, Outcome::Duplicate { .. }));
        assert_eq!(store.tickets(None).unwrap().len(), 1);
        assert_eq!(store.count_outbox("pending").unwrap(), 1);
    }

    #[test]
    fn a_followup_that_leaves_the_form_incomplete_gets_a_reply_and_one_that_completes_it_moves_to_new(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let (_, o) = record(
            &mut store,
            1,
            &verdict(Decision::Incomplete, "a@sev.gov.ru"),
            40,
        );
        let Outcome::NewTicket { ticket, .. } = o else {
            panic!("{o:?}")
        };
        let mut f = verdict(Decision::Followup, "a@sev.gov.ru");
        f.followup_of = Some(ticket as u64);
        let complete = |x: &FormFields| x.applicant.phone.is_some();
        let raw = b"f1".to_vec();
        let (_, o) = store
            .record_mail(
                &incoming(2, &raw),
                &f,
                false,
                40,
                Timestamp::UNIX_EPOCH,
                &mut render,
                &complete,
            )
            .unwrap();
        assert_eq!(
            o,
            Outcome::Followup {
                ticket,
                completed: false
            }
        );
        assert_eq!(
            store.ticket(ticket).unwrap().unwrap().status,
            Status::Feedback
        );
        assert_eq!(
            store.count_outbox("pending").unwrap(),
            2,
            "a second 'still missing' reply"
        );
        f.fields.applicant.phone = Some("+78692551234".into());
        let raw = b"f2".to_vec();
        let (_, o) = store
            .record_mail(
                &incoming(3, &raw),
                &f,
                false,
                40,
                Timestamp::UNIX_EPOCH,
                &mut render,
                &complete,
            )
            .unwrap();
        assert_eq!(
            o,
            Outcome::Followup {
                ticket,
                completed: true
            }
        );
        assert_eq!(store.ticket(ticket).unwrap().unwrap().status, Status::New);
        assert_eq!(store.count_outbox("pending").unwrap(), 3);
    }

    #[test]
    fn replies_per_address_are_limited_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        for uid in 1..=3 {
            record(
                &mut store,
                uid,
                &verdict(Decision::Reject, "robot@sev.gov.ru"),
                2,
            );
        }
        assert_eq!(store.count_outbox("pending").unwrap(), 2);
        assert_eq!(store.count_outbox("suppressed").unwrap(), 1);
    }

    #[test]
    fn an_older_store_is_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A version-1 file with one ticket, as the first release wrote it.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute_batch(
                "INSERT INTO mails (mailbox, uidvalidity, uid, sha256, size, arrived_at, processed_at, decision, outcome,
                                    reasons, verdict, sender, subject, raw, aside)
                 VALUES ('INBOX', 1, 1, 'h', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'incomplete', 'ticket',
                         '', '{}', 'a@sev.gov.ru', 's', x'00', 'processed');
                 INSERT INTO tickets (status, priority, subject, sender, fields, created_at, updated_at, arrived_at, first_mail_id)
                 VALUES ('feedback', 'normal', 's', 'a@sev.gov.ru', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
                         '2026-01-01T00:00:00Z', 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let t = store.ticket(1).unwrap().unwrap();
        assert_eq!(t.status, Status::Feedback);
        assert_eq!(t.feedback_by.as_deref(), Some("mailintake"));
    }

    #[test]
    fn a_newer_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
