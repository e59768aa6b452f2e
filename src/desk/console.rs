//! The queries behind the operators' web console (`crate::web`): the queue with its filters,
//! search and paging; one ticket with everything a page shows; an attachment by its place; the
//! counters for `/healthz` and `/metrics`. Read-only: the console's changes go through
//! [`crate::desk::workflow`] and [`crate::desk::quarantine`], like the CLI's.
//!
//! The queue is sorted "due first": tickets still awaiting acceptance (reg. 4.6: `new` or
//! `feedback`, never accepted) by their `accept_due`, then every other ticket, newest first. It is
//! read as two walks (the partial index `tickets_awaiting` by deadline, then the rowid backwards)
//! and counted from indexes, so the first pages cost the same over 100 tickets or 100,000; a deep
//! page of all statuses skips its offset row by row.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension};

use crate::desk::digest::mask_card;
use crate::store::{AttachmentRow, EventRow, Status, Store, TicketRow};
use crate::verdict::form::FormRules;
use crate::verdict::{ArchiveEntry, Priority, Verdict};

/// The `meta` key under which the daemon records the end of its last successful IMAP pass.
pub const IMAP_LAST_PASS: &str = "imap_last_pass";

/// The longest search text taken.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Body text of one mail shown on a ticket page, at most (the rest is cut with a note).
pub const MAX_BODY_CHARS: usize = 20_000;

fn sql_err(e: impl std::fmt::Display) -> String {
    format!("database: {e}")
}

/// Which statuses the queue shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusFilter {
    /// Not resolved and not closed: what the desk still has to do.
    #[default]
    Open,
    All,
    Only(Status),
}

impl StatusFilter {
    pub fn parse(s: &str) -> Option<StatusFilter> {
        match s.trim() {
            "" | "open" => Some(StatusFilter::Open),
            "all" => Some(StatusFilter::All),
            other => Status::parse(other).map(StatusFilter::Only),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Open => "open",
            StatusFilter::All => "all",
            StatusFilter::Only(s) => s.as_str(),
        }
    }
}

/// Whose tickets the queue shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Nobody,
    Named(String),
}

#[derive(Debug, Clone, Default)]
pub struct QueueQuery {
    pub status: StatusFilter,
    pub priority: Option<Priority>,
    pub assignee: AssigneeFilter,
    /// `#123`: that ticket only; otherwise the ticket number (`123`) or part of the sender, the
    /// subject or any field of the form (organisation, patient card, names, error text).
    pub search: Option<String>,
    /// From 0.
    pub page: u32,
    pub per_page: u32,
}

/// One line of the queue.
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: i64,
    pub arrived_at: String,
    pub status: Status,
    pub priority: String,
    pub sender: String,
    pub organization: Option<String>,
    pub subject: String,
    pub assignee: Option<String>,
    pub accept_due: Option<String>,
    /// Still to be accepted in work (reg. 4.6): the deadline counts.
    pub awaiting: bool,
    /// The patient card, masked as in digests when `mask_patient`.
    pub card: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct QueuePage {
    pub rows: Vec<QueueRow>,
    /// Tickets matching the filters, on every page.
    pub total: u64,
    /// Of those, awaiting acceptance.
    pub awaiting: u64,
}

const AWAITING: &str = "accepted_at IS NULL AND status IN ('new', 'feedback')";

const QUEUE_COLUMNS: &str = "id, arrived_at, status, priority, sender, \
     json_extract(fields, '$.applicant.organization'), subject, assignee, accept_due, \
     (accepted_at IS NULL AND status IN ('new', 'feedback')), json_extract(fields, '$.patient.card')";

/// `LIKE` text for "contains `s`", with `\` as the escape character.
fn contains_pattern(s: &str) -> String {
    let mut p = String::from("%");
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The WHERE terms and their parameters for the filters (everything but the awaiting split).
fn filter_terms(q: &QueueQuery) -> (Vec<String>, Vec<Value>) {
    let mut terms = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    match q.status {
        StatusFilter::Open => {
            terms.push("status IN ('new', 'assigned', 'in_progress', 'feedback')".to_string())
        }
        StatusFilter::All => {}
        StatusFilter::Only(s) => {
            terms.push("status = ?".into());
            args.push(Value::Text(s.as_str().into()));
        }
    }
    if let Some(p) = q.priority {
        terms.push("priority = ?".into());
        args.push(Value::Text(p.as_str().into()));
    }
    match &q.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Nobody => terms.push("assignee IS NULL".into()),
        AssigneeFilter::Named(n) => {
            terms.push("assignee = ?".into());
            args.push(Value::Text(n.clone()));
        }
    }
    let search: Option<String> = q
        .search
        .as_deref()
        .map(|s| s.trim().chars().take(MAX_SEARCH_CHARS).collect())
        .filter(|s: &String| !s.is_empty());
    if let Some(n) = search
        .as_deref()
        .and_then(|s| s.strip_prefix('#'))
        .and_then(|n| n.trim().parse::<i64>().ok())
    {
        // `#123` is the ticket number and nothing else: one rowid lookup.
        terms.push("id = ?".into());
        args.push(Value::Integer(n));
    } else if let Some(s) = search {
        let number = s.as_str();
        let like = contains_pattern(&s);
        // The form is matched as its stored JSON text (organisation, card, names, error text …):
        // one substring scan, about 2.5× cheaper than extracting two fields from every row.
        let mut any = vec![
            "sender LIKE ? ESCAPE '\\'",
            "subject LIKE ? ESCAPE '\\'",
            "fields LIKE ? ESCAPE '\\'",
        ];
        for _ in 0..any.len() {
            args.push(Value::Text(like.clone()));
        }
        if let Ok(n) = number.parse::<i64>() {
            any.push("id = ?");
            args.push(Value::Integer(n));
        }
        terms.push(format!("({})", any.join(" OR ")));
    }
    (terms, args)
}

fn queue_row(r: &rusqlite::Row<'_>, mask: bool) -> rusqlite::Result<QueueRow> {
    let status: String = r.get(2)?;
    let card: Option<String> = r.get(10)?;
    Ok(QueueRow {
        id: r.get(0)?,
        arrived_at: r.get(1)?,
        status: Status::parse(&status).unwrap_or(Status::New),
        priority: r.get(3)?,
        sender: r.get(4)?,
        organization: r.get(5)?,
        subject: r.get(6)?,
        assignee: r.get(7)?,
        accept_due: r.get(8)?,
        awaiting: r.get(9)?,
        card: card.map(|c| if mask { mask_card(&c) } else { c }),
    })
}

/// One page of the queue; `mask_patient` masks the patient card as digests do.
pub fn queue(store: &Store, q: &QueueQuery, mask_patient: bool) -> Result<QueuePage, String> {
    let (terms, args) = filter_terms(q);
    let filters: String = terms.iter().map(|t| format!(" AND {t}")).collect();
    let conn = store.conn();
    let count = |split: &str| -> Result<u64, String> {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM tickets WHERE {split}{filters}"),
            params_from_iter(args.iter()),
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n.max(0) as u64)
        .map_err(sql_err)
    };
    // Both counts come from indexes: the partial `tickets_awaiting`, and (without a split term)
    // `tickets_status` or any other.
    let awaiting = count(AWAITING)?;
    let total = count("1")?.max(awaiting);
    let per_page = u64::from(q.per_page.clamp(1, 500));
    let offset = u64::from(q.page) * per_page;
    let mut rows = Vec::new();
    let fetch = |rows: &mut Vec<QueueRow>,
                 split: &str,
                 order: &str,
                 limit: u64,
                 offset: u64|
     -> Result<(), String> {
        let mut st = conn
            .prepare_cached(&format!(
                "SELECT {QUEUE_COLUMNS} FROM tickets WHERE {split}{filters} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            ))
            .map_err(sql_err)?;
        let found = st
            .query_map(params_from_iter(args.iter()), |r| {
                queue_row(r, mask_patient)
            })
            .map_err(sql_err)?;
        for row in found {
            rows.push(row.map_err(sql_err)?);
        }
        Ok(())
    };
    if offset < awaiting {
        fetch(&mut rows, AWAITING, "accept_due, id", per_page, offset)?;
    }
    let left = per_page - rows.len() as u64;
    if left > 0 {
        fetch(
            &mut rows,
            &format!("NOT ({AWAITING})"),
            "id DESC",
            left,
            offset.saturating_sub(awaiting),
        )?;
    }
    Ok(QueuePage {
        rows,
        total,
        awaiting,
    })
}

/// One mail or reply of a ticket's correspondence, with its text.
#[derive(Debug, Clone)]
pub struct Letter {
    pub at: String,
    /// `in` (from the applicant) or `out` (ours).
    pub direction: String,
    pub summary: String,
    pub mail_id: Option<i64>,
    /// For ours: `pending`, `sending`, `sent`, `failed`, `suppressed`.
    pub reply_state: Option<String>,
    pub reply_error: Option<String>,
    /// The body text (plain preferred, HTML converted), cut at [`MAX_BODY_CHARS`].
    pub text: String,
}

/// One attachment of a ticket, with its place in the list (the console's handle for it).
#[derive(Debug, Clone)]
pub struct TicketFile {
    pub index: usize,
    pub row: AttachmentRow,
    /// The archive's listing, from the stored verdict; empty for anything else.
    pub entries: Vec<ArchiveEntry>,
}

/// Everything the ticket page shows.
#[derive(Debug, Clone)]
pub struct TicketView {
    pub ticket: TicketRow,
    pub letters: Vec<Letter>,
    pub files: Vec<TicketFile>,
    pub events: Vec<EventRow>,
    /// Dotted names of the required and recommended fields of Приложение 1 still missing.
    pub missing_required: Vec<String>,
    pub missing_recommended: Vec<String>,
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((i, _)) => format!("{}\n[…текст обрезан]", &text[..i]),
    }
}

fn mail_text(store: &Store, mail_id: i64) -> Result<String, String> {
    let Some(raw) = store.raw_mail(mail_id).map_err(sql_err)? else {
        return Ok(String::new());
    };
    let Some(msg) = crate::verdict::message::parse(&raw) else {
        return Ok(String::new());
    };
    let limits = crate::verdict::message::MimeLimits {
        max_body_text: MAX_BODY_CHARS * 4,
        ..Default::default()
    };
    Ok(cut(
        &crate::verdict::message::facts(&msg, &limits).body,
        MAX_BODY_CHARS,
    ))
}

fn stored_verdict(store: &Store, mail_id: i64) -> Result<Option<Verdict>, String> {
    let text: Option<String> = store
        .conn()
        .query_row(
            "SELECT verdict FROM mails WHERE id = ?1",
            params![mail_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
}

/// The ticket page's content; `None` when there is no such ticket.
pub fn ticket_view(store: &Store, id: i64, form: &FormRules) -> Result<Option<TicketView>, String> {
    let Some(ticket) = store.ticket(id).map_err(sql_err)? else {
        return Ok(None);
    };
    let conn = store.conn();
    let mut st = conn
        .prepare_cached(
            "SELECT c.at, c.direction, c.summary, c.mail_id, o.state, o.last_error, o.payload
             FROM correspondence c LEFT JOIN outbox o ON o.id = c.outbox_id
             WHERE c.ticket_id = ?1 ORDER BY c.at, c.id",
        )
        .map_err(sql_err)?;
    let raw_letters = st
        .query_map(params![id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    let mut letters = Vec::new();
    for (at, direction, summary, mail_id, reply_state, reply_error, payload) in raw_letters {
        let text = match (mail_id, payload) {
            (_, Some(p)) => serde_json::from_str::<crate::store::outbox::OutgoingMail>(&p)
                .map(|m| cut(&m.text, MAX_BODY_CHARS))
                .unwrap_or_default(),
            (Some(m), None) => mail_text(store, m)?,
            (None, None) => String::new(),
        };
        letters.push(Letter {
            at,
            direction,
            summary,
            mail_id,
            reply_state,
            reply_error,
            text,
        });
    }
    let mut verdicts: std::collections::HashMap<i64, Option<Verdict>> = Default::default();
    let mut files = Vec::new();
    for (index, row) in store
        .attachments(id)
        .map_err(sql_err)?
        .into_iter()
        .enumerate()
    {
        let mut entries = Vec::new();
        if row.kind == "archive" {
            let verdict = match verdicts.entry(row.mail_id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(stored_verdict(store, row.mail_id)?)
                }
            };
            if let Some(v) = verdict {
                if let Some(a) = v
                    .attachments
                    .get(row.position as usize)
                    .filter(|a| a.name == row.name)
                {
                    entries = a.entries.clone();
                }
            }
        }
        files.push(TicketFile {
            index,
            row,
            entries,
        });
    }
    let events = store.events(id).map_err(sql_err)?;
    let missing_required = crate::verdict::form::missing_required(&ticket.fields, form);
    let missing_recommended = crate::verdict::form::missing_recommended(&ticket.fields, form);
    Ok(Some(TicketView {
        ticket,
        letters,
        files,
        events,
        missing_required,
        missing_recommended,
    }))
}

/// The attachment at `index` in the ticket's list, with its bytes decoded from the stored mail;
/// `None` when the ticket or the attachment does not exist.
pub fn attachment_at(
    store: &Store,
    id: i64,
    index: usize,
) -> Result<Option<(AttachmentRow, Vec<u8>)>, String> {
    let Some(row) = store
        .attachments(id)
        .map_err(sql_err)?
        .into_iter()
        .nth(index)
    else {
        return Ok(None);
    };
    let Some(raw) = store.raw_mail(row.mail_id).map_err(sql_err)? else {
        return Ok(None);
    };
    let Some(msg) = crate::verdict::message::parse(&raw) else {
        return Ok(None);
    };
    // The same walk as at intake, so positions match what was recorded.
    let facts =
        crate::verdict::message::facts(&msg, &crate::verdict::message::MimeLimits::default());
    let data = facts
        .parts
        .get(row.position as usize)
        .filter(|p| p.name == row.name)
        .or_else(|| facts.parts.iter().find(|p| p.name == row.name))
        .map(|p| p.data.to_vec());
    Ok(data.map(|d| (row, d)))
}

/// What `/healthz` and `/metrics` report.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub mails_by_decision: Vec<(String, u64)>,
    /// Every status, zeros included.
    pub tickets_by_status: Vec<(Status, u64)>,
    pub outbox_pending: u64,
    /// Replies that could not be delivered (given up).
    pub outbox_failed: u64,
    /// RFC 3339 end of the daemon's last successful IMAP pass.
    pub imap_last_pass: Option<String>,
}

pub fn counters(store: &Store) -> Result<Counters, String> {
    let conn = store.conn();
    let pairs = |sql: &str| -> Result<Vec<(String, u64)>, String> {
        let mut st = conn.prepare_cached(sql).map_err(sql_err)?;
        let rows = st
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
            })
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    };
    let mails_by_decision =
        pairs("SELECT decision, COUNT(*) FROM mails GROUP BY decision ORDER BY decision")?;
    let by_status = pairs("SELECT status, COUNT(*) FROM tickets GROUP BY status")?;
    let tickets_by_status = Status::ALL
        .into_iter()
        .map(|s| {
            let n = by_status
                .iter()
                .find(|(k, _)| k == s.as_str())
                .map(|(_, n)| *n)
                .unwrap_or(0);
            (s, n)
        })
        .collect();
    let outbox = |state: &str| store.count_outbox(state).map(|n| n.max(0) as u64);
    Ok(Counters {
        mails_by_decision,
        tickets_by_status,
        outbox_pending: outbox("pending").map_err(sql_err)? + outbox("sending").map_err(sql_err)?,
        outbox_failed: outbox("failed").map_err(sql_err)?,
        imap_last_pass: store.meta(IMAP_LAST_PASS).map_err(sql_err)?,
    })
}

/// Whether the store answers a query (for `/healthz`).
pub fn store_reachable(store: &Store) -> bool {
    store.schema_version().is_ok()
}
