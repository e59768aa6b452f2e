//! `mailintake quarantine`: the refused mail an admin or operator may look at again.
//!
//! Quarantine is not a place: it is the ledger rows whose outcome is `rejected`, `filtered` or
//! `ignored` — the ledger keeps every mail's raw bytes and verdict. `list` and `show` read them;
//! `release` judges a mail again with the current rules (after an admin fixed a rule) and, when
//! it now passes — or an operator overrides the refusal with `force_accept` — does what intake
//! would have done: the ticket (or the follow-up), its attachments, the normal reply, an event
//! naming the operator, and the ledger row marked `released`, all in ONE transaction. A mail is
//! released at most once. Nothing here deletes anything: the raw mail and its first verdict stay.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use crate::desk::replay::{one_line, rejudge_authenticated};
use crate::store::local_time;
use crate::store::outbox::OutgoingMail;
use crate::store::{Outcome, ReleaseInto, ReleaseNote, ReplyRequest, Status, Store};
use crate::verdict::rules::RuleSet;
use crate::verdict::{Code, Decision, FormFields, Reason, Verdict};

/// Ledger outcomes that are "in quarantine".
pub const OUTCOMES: [&str; 3] = ["rejected", "filtered", "ignored"];

/// Reason codes a quarantined mail can carry (the filter, ignore and reject groups).
pub const REFUSAL_CODES: [Code; 6] = [
    Code::SenderDomain,
    Code::SenderUnauthenticated,
    Code::Automatic,
    Code::TooLarge,
    Code::AttachmentDangerous,
    Code::SupplementOnly,
];

/// One quarantined mail, as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedMail {
    pub id: i64,
    /// RFC 3339, as stored.
    pub arrived_at: String,
    pub decision: String,
    pub outcome: String,
    pub reasons: Vec<String>,
    pub sender: String,
    pub subject: String,
    /// Only the header block was kept (the mail was over `imap.max_mail_bytes`).
    pub headers_only: bool,
    pub size: i64,
}

/// What releasing a mail did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// A new ticket.
    Ticket { ticket: i64, status: Status },
    /// Added to an existing ticket.
    Followup { ticket: i64 },
    /// The current rules still refuse it (and no override was asked): nothing was changed.
    /// `reasons` are `code: detail` lines.
    StillRefused {
        decision: Decision,
        reasons: Vec<String>,
    },
}

fn sql_err(e: rusqlite::Error) -> String {
    format!("database: {e}")
}

fn parse_code(s: &str) -> Option<Code> {
    serde_json::from_value(serde_json::Value::String(s.trim().to_string())).ok()
}

fn codes_of(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The quarantined mails, oldest first; with `reason`, only those carrying that reason code.
pub fn entries(store: &Store, reason: Option<&str>) -> Result<Vec<QuarantinedMail>, String> {
    if let Some(r) = reason {
        if parse_code(r).is_none() {
            let known: Vec<&str> = REFUSAL_CODES.iter().map(|c| c.as_str()).collect();
            return Err(format!(
                "unknown reason code `{r}`; quarantined mail carries {}",
                known.join(", ")
            ));
        }
    }
    let mut st = store
        .conn()
        .prepare(
            "SELECT id, arrived_at, decision, outcome, reasons, sender, subject, headers_only, size
             FROM mails
             WHERE outcome IN ('rejected', 'filtered', 'ignored')
               AND (?1 IS NULL OR instr(',' || reasons || ',', ',' || ?1 || ',') > 0)
             ORDER BY id",
        )
        .map_err(sql_err)?;
    let rows = st
        .query_map(params![reason.map(str::trim)], |r| {
            Ok(QuarantinedMail {
                id: r.get(0)?,
                arrived_at: r.get(1)?,
                decision: r.get(2)?,
                outcome: r.get(3)?,
                reasons: codes_of(&r.get::<_, String>(4)?),
                sender: r.get(5)?,
                subject: r.get(6)?,
                headers_only: r.get(7)?,
                size: r.get(8)?,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// `quarantine list`: one line per mail (id, local time, decision, reasons, sender, subject), or
/// one JSON object per line.
pub fn list(store: &Store, reason: Option<&str>, as_json: bool) -> Result<String, String> {
    let mut out = String::new();
    for m in entries(store, reason)? {
        if as_json {
            out.push_str(&serde_json::to_string(&m).map_err(|e| e.to_string())?);
        } else {
            out.push_str(&format!(
                "#{:<5} {} {:<7} {:<22} {:<28} {}",
                m.id,
                local_time(&m.arrived_at),
                m.decision,
                m.reasons.join(","),
                if m.sender.is_empty() {
                    "—"
                } else {
                    &m.sender
                },
                one_line(&m.subject)
            ));
        }
        out.push('\n');
    }
    Ok(out)
}

/// One ledger row with everything `show` and `release` need.
struct MailRow {
    id: i64,
    mailbox: String,
    uidvalidity: i64,
    uid: i64,
    message_id: Option<String>,
    sha256: String,
    size: i64,
    arrived_at: String,
    processed_at: String,
    decision: String,
    outcome: String,
    reasons: String,
    verdict: String,
    sender: String,
    subject: String,
    ticket_id: Option<i64>,
    raw: Vec<u8>,
    headers_only: bool,
}

fn mail_row(store: &Store, id: i64) -> Result<MailRow, String> {
    store
        .conn()
        .query_row(
            "SELECT id, mailbox, uidvalidity, uid, message_id, sha256, size, arrived_at, processed_at,
                    decision, outcome, reasons, verdict, sender, subject, ticket_id,
                    (SELECT raw FROM mail_raw WHERE mail_id = mails.id), headers_only
             FROM mails WHERE id = ?1",
            params![id],
            |r| {
                Ok(MailRow {
                    id: r.get(0)?,
                    mailbox: r.get(1)?,
                    uidvalidity: r.get(2)?,
                    uid: r.get(3)?,
                    message_id: r.get(4)?,
                    sha256: r.get(5)?,
                    size: r.get(6)?,
                    arrived_at: r.get(7)?,
                    processed_at: r.get(8)?,
                    decision: r.get(9)?,
                    outcome: r.get(10)?,
                    reasons: r.get(11)?,
                    verdict: r.get(12)?,
                    sender: r.get(13)?,
                    subject: r.get(14)?,
                    ticket_id: r.get(15)?,
                    raw: r.get(16)?,
                    headers_only: r.get(17)?,
                })
            },
        )
        .optional()
        .map_err(sql_err)?
        .ok_or_else(|| format!("письмо #{id} не найдено"))
}

/// Why a mail is not (or no longer) in quarantine, for a refusal.
fn not_quarantined(m: &MailRow) -> String {
    match (m.outcome.as_str(), m.ticket_id) {
        ("released", Some(t)) => format!(
            "письмо #{} уже выпущено из карантина (заявка #{t}); второй раз его не выпустить",
            m.id
        ),
        ("released", None) => format!("письмо #{} уже выпущено из карантина", m.id),
        (_, Some(t)) => format!(
            "письмо #{} не в карантине: оно уже в заявке #{t} (итог «{}»)",
            m.id, m.outcome
        ),
        _ => format!("письмо #{} не в карантине (итог «{}»)", m.id, m.outcome),
    }
}

/// The top-level header fields of a raw mail as written: name, and the value with its folding
/// (line breaks as `\n`). 8-bit bytes that are not UTF-8 are shown as U+FFFD.
pub fn raw_headers(raw: &[u8]) -> Vec<(String, String)> {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let text = |from: u32, to: u32| {
        raw.get(from as usize..to as usize)
            .map(String::from_utf8_lossy)
            .unwrap_or_default()
            .into_owned()
    };
    msg.headers()
        .iter()
        .map(|h| {
            let name = text(h.offset_field, h.offset_start);
            let name = name.trim().trim_end_matches(':').trim_end().to_string();
            let value = text(h.offset_start, h.offset_end).replace("\r\n", "\n");
            (name, value.trim().to_string())
        })
        .collect()
}

/// The reasons of the stored verdict (with their sentences); the codes of the row when the
/// verdict cannot be read.
fn stored_reasons(m: &MailRow) -> Vec<Reason> {
    match serde_json::from_str::<Verdict>(&m.verdict) {
        Ok(v) => v.reasons,
        Err(_) => codes_of(&m.reasons)
            .into_iter()
            .filter_map(|c| parse_code(&c).map(|code| Reason::new(code, "")))
            .collect(),
    }
}

/// `quarantine show ID`: the ledger facts, every top-level header as written, the reasons with
/// their sentences, and the stored verdict (pretty JSON). Any mail of the ledger can be shown;
/// the first line says whether it is in quarantine.
pub fn show(store: &Store, id: i64, as_json: bool) -> Result<String, String> {
    let m = mail_row(store, id)?;
    let headers = raw_headers(&m.raw);
    let reasons = stored_reasons(&m);
    let verdict: serde_json::Value =
        serde_json::from_str(&m.verdict).unwrap_or(serde_json::Value::Null);
    if as_json {
        let v = json!({
            "id": m.id,
            "in_quarantine": OUTCOMES.contains(&m.outcome.as_str()),
            "outcome": m.outcome,
            "decision": m.decision,
            "reasons": reasons,
            "sender": m.sender,
            "subject": m.subject,
            "message_id": m.message_id,
            "arrived_at": m.arrived_at,
            "processed_at": m.processed_at,
            "mailbox": m.mailbox,
            "uidvalidity": m.uidvalidity,
            "uid": m.uid,
            "size": m.size,
            "sha256": m.sha256,
            "headers_only": m.headers_only,
            "ticket_id": m.ticket_id,
            "headers": headers
                .iter()
                .map(|(n, v)| json!({"name": n, "value": v}))
                .collect::<Vec<_>>(),
            "verdict": verdict,
        });
        return Ok(format!("{v}\n"));
    }
    let state = if OUTCOMES.contains(&m.outcome.as_str()) {
        format!("в карантине: {}", m.decision)
    } else {
        not_quarantined(&m)
    };
    let mut s = format!("Письмо #{}  [{}]\n", m.id, state);
    s.push_str(&format!(
        "От: {}\nТема: {}\nПоступило: {}   обработано: {}\n",
        if m.sender.is_empty() {
            "— (адрес не читается)"
        } else {
            &m.sender
        },
        one_line(&m.subject),
        local_time(&m.arrived_at),
        local_time(&m.processed_at)
    ));
    s.push_str(&format!(
        "Ящик: {}, UIDVALIDITY {}, UID {}; {} байт; SHA-256 {}\n",
        m.mailbox, m.uidvalidity, m.uid, m.size, m.sha256
    ));
    if let Some(t) = m.ticket_id {
        s.push_str(&format!("Заявка: #{t}\n"));
    }
    if m.headers_only {
        s.push_str(
            "Сохранены только заголовки: письмо было больше imap.max_mail_bytes и не загружалось.\n",
        );
    }
    if let Ok(a) =
        serde_json::from_value::<crate::verdict::auth::AuthResult>(verdict["auth"].clone())
    {
        s.push_str(&format!("Подлинность отправителя: {}\n", a.summary()));
    }
    s.push_str(&format!("\nРешение: {}\nПричины:\n", m.decision));
    if reasons.is_empty() {
        s.push_str("  —\n");
    }
    for r in &reasons {
        if r.detail.is_empty() {
            s.push_str(&format!("  • {}\n", r.code.as_str()));
        } else {
            s.push_str(&format!("  • {}: {}\n", r.code.as_str(), r.detail));
        }
    }
    s.push_str("\nЗаголовки:\n");
    if headers.is_empty() {
        s.push_str("  (заголовки не читаются)\n");
    }
    for (name, value) in &headers {
        s.push_str(&format!("  {name}: {}\n", value.replace('\n', "\n  ")));
    }
    s.push_str("\nВердикт:\n");
    // In the verdict's own field order (decision first) when it reads as one.
    let pretty = match serde_json::from_str::<Verdict>(&m.verdict) {
        Ok(v) => serde_json::to_string_pretty(&v),
        Err(_) => serde_json::to_string_pretty(&verdict),
    }
    .unwrap_or_else(|_| m.verdict.clone());
    s.push_str(&pretty);
    s.push('\n');
    Ok(s)
}

/// `quarantine release ID [--force-accept]`.
///
/// The stored raw mail is judged with `rules` (the current ones). Accept, incomplete or a
/// follow-up of one of our tickets: the ticket is created (status «Новая» / «Обратная связь»)
/// or the follow-up added, with the reply intake would have queued, and the event «выпущено из
/// карантина оператором X». Still refused and no override: [`ReleaseOutcome::StillRefused`],
/// nothing changes. Refused but `force_accept`: the operator's override — accepted with the
/// verdict's parsed fields, decision accept, reasons cleared (a follow-up of one of our tickets
/// is added to it), event «принято оператором X вопреки правилам: …». An override is recorded
/// only when the rules refuse: a mail they now pass is released normally.
///
/// A mail kept as headers only (too large to download) cannot be judged again: it has no body;
/// only `force_accept` releases it. A released mail cannot be released again. `accept_due` is
/// the reg. 4.6 deadline of a new ticket (the caller's calendar). An operator's release is not
/// held back by the per-address daily limit of auto-replies.
#[allow(clippy::too_many_arguments)]
pub fn release(
    store: &mut Store,
    mail_id: i64,
    rules: &RuleSet,
    force_accept: bool,
    actor: &str,
    now: jiff::Timestamp,
    accept_due: Option<String>,
    render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
    form_complete: &dyn Fn(&FormFields) -> bool,
) -> Result<ReleaseOutcome, String> {
    let actor = actor.trim();
    if actor.is_empty() {
        return Err("укажите, кто выпускает письмо (оператор): --actor ИМЯ".into());
    }
    let m = mail_row(store, mail_id)?;
    if !OUTCOMES.contains(&m.outcome.as_str()) {
        return Err(not_quarantined(&m));
    }
    let pruned =
        crate::store::retention::raw_pruned_at(store, mail_id).map_err(|e| e.to_string())?;
    if let (Some(at), false) = (pruned, force_accept) {
        return Err(format!(
            "тело письма #{mail_id} удалено по сроку хранения (store.keep_raw_days) {}: правила не могут \
             оценить его заново; выпустить его можно только решением оператора (--force-accept)",
            crate::store::local_time(&at)
        ));
    }
    let current = if m.headers_only {
        if !force_accept {
            return Err(format!(
                "письмо #{mail_id} сохранено без тела (оно было больше imap.max_mail_bytes): правила не могут \
                 оценить его заново; выпустить его можно только решением оператора (--force-accept)"
            ));
        }
        serde_json::from_str::<Verdict>(&m.verdict)
            .map_err(|e| format!("письмо #{mail_id}: сохранённый вердикт не читается: {e}"))?
    } else {
        // Authenticity is a fact of the delivery: the stored result is judged again, not
        // looked up again (a forged sender is released only by --force-accept).
        let stored = serde_json::from_str::<Verdict>(&m.verdict)
            .ok()
            .and_then(|v| v.auth)
            .map(|a| crate::verdict::auth::SenderAuth::from_stored(&a));
        rejudge_authenticated(
            store.conn(),
            &m.raw,
            false,
            m.size.max(0) as u64,
            rules,
            None,
            stored.as_ref(),
        )
    };
    let refused = matches!(
        current.decision,
        Decision::Filter | Decision::Ignore | Decision::Reject
    );
    let codes = |v: &Verdict| -> String {
        let c: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
        if c.is_empty() {
            "—".into()
        } else {
            c.join(", ")
        }
    };
    let old = if m.reasons.is_empty() {
        m.decision.clone()
    } else {
        format!("{}: {}", m.decision, m.reasons.replace(',', ", "))
    };

    let (verdict, into, kind, detail) = if refused {
        if !force_accept {
            return Ok(ReleaseOutcome::StillRefused {
                decision: current.decision,
                reasons: current
                    .reasons
                    .iter()
                    .map(|r| format!("{}: {}", r.code.as_str(), r.detail))
                    .collect(),
            });
        }
        if current.sender.is_empty() {
            return Err(format!(
                "письмо #{mail_id}: адрес отправителя не читается — заявку не создать, ответить некому"
            ));
        }
        let mut v = current.clone();
        v.decision = Decision::Accept;
        v.reasons.clear();
        v.missing.clear();
        let into = match v.followup_of {
            // Rejected as a follow-up of one of our tickets: accepted, it belongs to that ticket.
            Some(t) if store.ticket_exists(t as i64).unwrap_or(false) => {
                v.decision = Decision::Followup;
                ReleaseInto::Followup { ticket: t as i64 }
            }
            _ => {
                v.followup_of = None;
                ReleaseInto::NewTicket {
                    status: Status::New,
                    accept_due,
                }
            }
        };
        let mut detail = format!(
            "письмо #{mail_id} принято оператором {actor} вопреки правилам: {}",
            m.reasons.replace(',', ", ")
        );
        if m.reasons.is_empty() {
            detail.push_str(&m.decision);
        }
        let now_codes = codes(&current);
        if now_codes != m.reasons.replace(',', ", ") {
            detail.push_str(&format!(
                "; по текущим правилам: {} ({now_codes})",
                current.decision.as_str()
            ));
        }
        if m.headers_only {
            detail.push_str("; тело письма не сохранено (слишком большое)");
        }
        (v, into, "forced_accept", detail)
    } else {
        let into = match current.decision {
            Decision::Followup => match current.followup_of {
                Some(t) => ReleaseInto::Followup { ticket: t as i64 },
                None => return Err(format!("письмо #{mail_id}: дополнение без номера заявки")),
            },
            Decision::Incomplete => ReleaseInto::NewTicket {
                status: Status::Feedback,
                accept_due,
            },
            _ => ReleaseInto::NewTicket {
                status: Status::New,
                accept_due,
            },
        };
        let detail = format!(
            "письмо #{mail_id} выпущено из карантина оператором {actor} (было: {old}; по текущим правилам: {})",
            current.decision.as_str()
        );
        (current, into, "released", detail)
    };
    let note = ReleaseNote {
        actor,
        kind,
        detail: &detail,
    };
    let outcome = store
        .record_release(
            mail_id,
            &verdict,
            into,
            &note,
            u32::MAX,
            now,
            render,
            form_complete,
        )
        .map_err(|e| e.to_string())?;
    Ok(match outcome {
        Outcome::NewTicket { ticket, status } => ReleaseOutcome::Ticket { ticket, status },
        Outcome::Followup { ticket, .. } => ReleaseOutcome::Followup { ticket },
        other => return Err(format!("письмо #{mail_id}: unexpected outcome {other:?}")),
    })
}

/// What `quarantine release` prints.
pub fn render_release(mail_id: i64, outcome: &ReleaseOutcome) -> String {
    match outcome {
        ReleaseOutcome::Ticket { ticket, status } => format!(
            "письмо #{mail_id} выпущено: заявка #{ticket} в статусе «{}», ответ заявителю поставлен в очередь\n",
            status.russian()
        ),
        ReleaseOutcome::Followup { ticket } => {
            format!("письмо #{mail_id} выпущено: добавлено к заявке #{ticket}\n")
        }
        ReleaseOutcome::StillRefused { decision, reasons } => {
            let mut s = format!(
                "письмо #{mail_id} не выпущено: текущие правила по-прежнему решают «{}»\n",
                decision.as_str()
            );
            for r in reasons {
                s.push_str(&format!("  • {r}\n"));
            }
            s.push_str(
                "Исправьте правило (mailintake rules check) или примите письмо решением оператора: --force-accept\n",
            );
            s
        }
    }
}
