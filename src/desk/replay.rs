//! `mailintake replay`: what a new set of rules would decide about the mail already in the ledger.
//!
//! Every stored mail (the raw bytes are kept, refused mail included) is judged again by the
//! engine with the new rules and compared with what was recorded: the decision AND the set of
//! reason codes — a mail still rejected, but for another reason, is a change too. Copies of our
//! own replies and duplicates are skipped: they were never judged as requests.
//!
//! Read-only by construction: it takes `&Store` and runs SELECTs only — no ticket, outbox row or
//! ledger row is written, nothing is sent. Rows are streamed one at a time (each raw mail is read
//! straight from its row and dropped before the next), so a replay of a year of mail does not
//! hold the mailbox in memory.

use std::collections::{BTreeMap, BTreeSet};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::Timestamp;
use rusqlite::{params, Connection};
use serde::Serialize;

use crate::store::Store;
use crate::verdict::auth::{AuthResult, SenderAuth};
use crate::verdict::engine;
use crate::verdict::rules::RuleSet;
use crate::verdict::{Decision, Verdict};

/// A progress bar is drawn only for replays longer than this.
const PROGRESS_ABOVE: u64 = 50;

/// One mail whose decision or reason codes would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayChange {
    pub mail_id: i64,
    /// When the mail arrived, RFC 3339 as stored.
    pub at: String,
    pub sender: String,
    pub subject: String,
    /// The recorded decision.
    pub old: String,
    /// What the new rules decide.
    pub new: String,
    /// Recorded reason codes, comma-separated (as in `mails.reasons`).
    pub old_reasons: String,
    /// Reason codes under the new rules, comma-separated.
    pub new_reasons: String,
}

/// The result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Mails judged again (own replies and duplicates are not counted).
    pub total: usize,
    /// The mails that would change, in ledger order.
    pub changed: Vec<ReplayChange>,
    /// Changes counted by (old decision, new decision); a change of reasons only is counted
    /// under (d, d).
    pub counts: BTreeMap<(String, String), usize>,
}

impl ReplayReport {
    pub fn unchanged(&self) -> usize {
        self.total - self.changed.len()
    }
}

/// Judge a stored mail again, as the daemon judges a new one: a mail kept as headers only (too
/// large to download) by its headers and size; a follow-up tag naming no ticket of ours is
/// ignored, so the mail is judged as a new request.
///
/// `as_of_mail`: when set, only tickets that existed when that mail was recorded count as ours
/// (a ticket created later from another mail could not have been followed up then) — for a
/// faithful replay. `None`: tickets existing now (for a release).
pub fn rejudge(
    conn: &Connection,
    raw: &[u8],
    headers_only: bool,
    size: u64,
    rules: &RuleSet,
    as_of_mail: Option<i64>,
) -> Verdict {
    rejudge_authenticated(conn, raw, headers_only, size, rules, as_of_mail, None)
}

/// [`rejudge`] with the sender authentication the mail was first judged with (the stored
/// verdict's `auth`, see `SenderAuth::from_stored`): a forged sender stays unauthenticated.
pub fn rejudge_authenticated(
    conn: &Connection,
    raw: &[u8],
    headers_only: bool,
    size: u64,
    rules: &RuleSet,
    as_of_mail: Option<i64>,
    auth: Option<&SenderAuth>,
) -> Verdict {
    if headers_only {
        return engine::evaluate_oversized_authenticated(raw, size, rules, auth);
    }
    let mut verdict = engine::evaluate_authenticated(raw, rules, true, auth);
    if let Some(n) = verdict.followup_of {
        if !ticket_known(conn, n as i64, as_of_mail) {
            if verdict.decision == Decision::Followup {
                verdict = engine::evaluate_authenticated(raw, rules, false, auth);
            } else {
                verdict.followup_of = None;
            }
        }
    }
    verdict
}

/// The authentication input of a stored verdict, from its `auth` JSON (`None`: judged with
/// `auth.mode = "off"`, or stored before issue 9).
pub fn stored_auth(auth_json: Option<&str>) -> Option<SenderAuth> {
    let stored: AuthResult = serde_json::from_str(auth_json?).ok()?;
    Some(SenderAuth::from_stored(&stored))
}

fn ticket_known(conn: &Connection, ticket: i64, as_of_mail: Option<i64>) -> bool {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM tickets WHERE id = ?1 AND (?2 IS NULL OR first_mail_id < ?2))",
        params![ticket, as_of_mail],
        |r| r.get(0),
    )
    .unwrap_or(false)
}

/// The SQL parameter for a `since` filter on a stored RFC 3339 column. Stored instants carry
/// milliseconds only when they have some, so they are compared as instants (`julianday`), not
/// as text.
pub(crate) fn since_param(since: Option<Timestamp>) -> Option<String> {
    since.map(|t| t.to_string())
}

/// Mails a replay judges: everything but copies of our replies and duplicates.
// Mail whose raw bytes were pruned (`store.keep_raw_days`) has no body left to judge.
const REPLAYED: &str = "outcome NOT IN ('own_reply', 'duplicate') AND raw_pruned_at IS NULL
     AND (?1 IS NULL OR julianday(arrived_at) >= julianday(?1))";

/// Judge every stored mail (arrived at or after `since`) with `rules` and report what would
/// change. Reads only. With `progress`, a bar is drawn on stderr when there are more than 50.
pub fn replay(
    store: &Store,
    rules: &RuleSet,
    since: Option<Timestamp>,
    progress: bool,
) -> Result<ReplayReport, String> {
    let conn = store.conn();
    let since = since_param(since);
    let sql_err = |e: rusqlite::Error| format!("database: {e}");
    let total: u64 = conn
        .query_row(
            &format!("SELECT COUNT(*) FROM mails WHERE {REPLAYED}"),
            params![since],
            |r| r.get::<_, i64>(0),
        )
        .map_err(sql_err)?
        .max(0) as u64;
    let bar = if progress && total > PROGRESS_ABOVE {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} писем, осталось {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let mut report = ReplayReport::default();
    let mut st = conn
        .prepare(&format!(
            "SELECT id, arrived_at, sender, subject, decision, reasons,
                    (SELECT raw FROM mail_raw WHERE mail_id = mails.id), headers_only, size,
                    json_extract(verdict, '$.auth')
             FROM mails WHERE {REPLAYED} ORDER BY id"
        ))
        .map_err(sql_err)?;
    let mut rows = st.query(params![since]).map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let mail_id: i64 = r.get(0).map_err(sql_err)?;
        let old: String = r.get(4).map_err(sql_err)?;
        let old_reasons: String = r.get(5).map_err(sql_err)?;
        // Borrowed from the row: the raw mail is not copied, and is gone at the next row.
        let raw = r.get_ref(6).map_err(sql_err)?.as_blob().unwrap_or_default();
        let headers_only: bool = r.get(7).map_err(sql_err)?;
        let size: i64 = r.get(8).map_err(sql_err)?;
        let auth = stored_auth(r.get::<_, Option<String>>(9).map_err(sql_err)?.as_deref());
        let verdict = rejudge_authenticated(
            conn,
            raw,
            headers_only,
            size.max(0) as u64,
            rules,
            Some(mail_id),
            auth.as_ref(),
        );
        report.total += 1;
        bar.inc(1);
        let new = verdict.decision.as_str();
        let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
        if old == new && code_set(&old_reasons) == codes.iter().copied().collect::<BTreeSet<_>>() {
            continue;
        }
        *report
            .counts
            .entry((old.clone(), new.to_string()))
            .or_insert(0) += 1;
        report.changed.push(ReplayChange {
            mail_id,
            at: r.get(1).map_err(sql_err)?,
            sender: r.get(2).map_err(sql_err)?,
            subject: r.get(3).map_err(sql_err)?,
            old,
            new: new.to_string(),
            old_reasons,
            new_reasons: codes.join(","),
        });
    }
    bar.finish_and_clear();
    Ok(report)
}

fn code_set(joined: &str) -> BTreeSet<&str> {
    joined.split(',').filter(|c| !c.is_empty()).collect()
}

/// One line per changed mail, then the counts:
///
/// ```text
/// #12 26.11.2026 10:15 filter [sender_domain] → accept  t.ivanova@mail.sev.gov.ru  Не работает запись к врачу
///
/// filter → accept: 1
/// unchanged: 120
/// total: 121
/// ```
pub fn render(report: &ReplayReport) -> String {
    let with_codes = |decision: &str, codes: &str| {
        if codes.is_empty() {
            decision.to_string()
        } else {
            format!("{decision} [{codes}]")
        }
    };
    let mut out = String::new();
    for c in &report.changed {
        out.push_str(&format!(
            "#{} {} {} → {}  {}  {}\n",
            c.mail_id,
            crate::store::local_time(&c.at),
            with_codes(&c.old, &c.old_reasons),
            with_codes(&c.new, &c.new_reasons),
            if c.sender.is_empty() {
                "—"
            } else {
                &c.sender
            },
            one_line(&c.subject)
        ));
    }
    if !report.changed.is_empty() {
        out.push('\n');
    }
    for ((old, new), n) in &report.counts {
        if old == new {
            out.push_str(&format!("{old} → {new} (reasons): {n}\n"));
        } else {
            out.push_str(&format!("{old} → {new}: {n}\n"));
        }
    }
    out.push_str(&format!("unchanged: {}\n", report.unchanged()));
    out.push_str(&format!("total: {}\n", report.total));
    out
}

/// A header value on one line of a listing: control characters (a folded or hostile subject)
/// become spaces.
pub(crate) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
