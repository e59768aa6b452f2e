//! The operators' ticket workflow (reg. 4.5–4.10): assign a ticket, change its status, change its
//! priority and impact. Pure functions over the [`Store`]: the clock (`now`) and the operator
//! (`actor`) are passed in, and every change — the ticket row, its events, and the notification
//! to the applicant with its correspondence row — is written in ONE immediate transaction, so a
//! crash or a concurrent daemon never sees half of it.
//!
//! # Statuses and transitions (reg. 4.8)
//!
//! | from \ to                | allowed targets                                                     |
//! |--------------------------|---------------------------------------------------------------------|
//! | Новая (`new`)            | Назначена, Рассматривается, Обратная связь, Решена, Закрыта*        |
//! | Назначена (`assigned`)   | Новая (снять назначение), Рассматривается, Обратная связь, Решена   |
//! | Рассматривается          | Обратная связь, Решена                                              |
//! | Обратная связь           | Назначена, Рассматривается, Решена, Закрыта*                        |
//! | Решена (`resolved`)      | Рассматривается (вернуть в работу), Закрыта                         |
//! | Закрыта (`closed`)       | — (закрытая заявка не меняется; создайте новую)                     |
//!
//! - The same status again is refused («уже в статусе …»).
//! - `feedback` needs a comment (the question to the applicant) and `resolved` needs one (what was
//!   done); both go to the applicant by mail. `closed`* from `new` or `feedback` — closing a ticket
//!   nobody solved (a duplicate, no answer) — needs a comment too: the reason, sent to the
//!   applicant. A ticket in work (`assigned`, `in_progress`) is not closed: it is resolved first.
//! - Handing a ticket in work to another specialist is [`assign`]; the status stays.
//! - `→ assigned` and `→ in_progress` make the operator the assignee when there is none.
//!   `assigned → new` clears the assignee.
//! - `→ feedback` records `feedback_by = actor` (an operator's question: the applicant's answer
//!   moves the ticket back to `in_progress` through [`crate::store::acceptance::feedback_answered`], called by the store's
//!   follow-up path); leaving `feedback` clears it.
//!
//! # Deadline (reg. 4.6)
//! `accepted_at` is set the first time a ticket leaves `new`/`feedback` for `assigned`,
//! `in_progress` or `resolved` (a ticket solved at once was certainly taken in work) and is never
//! changed afterwards; an `accepted` event says whether `accept_due` was met.
//!
//! # Notifications
//! Moving to `feedback`, `resolved` or `closed` queues one outbox item (`notify_feedback`,
//! `notify_resolved`, `notify_closed`), state `pending`, due now, in the same transaction, plus a
//! correspondence `out` row. They are started by an operator, so they are not counted against the
//! per-address daily limit of auto-replies. The mail is built by the caller's `notify` closure
//! (normally [`render_notification`]); it answers the applicant's last mail on the ticket
//! (`In-Reply-To`) and lists the thread in `References`.
//!
//! # Priority and impact (reg. 4.5, 4.9, 4.10)
//! 1 ЛТП may lower the impact (never raise it; an impact may be set when the ticket has none) and
//! change the priority, but never above the most urgent priority the (new or current) impact
//! allows in `rules/priority.toml`. Without an impact any priority is allowed.
//!
//! # Reply to the applicant
//! [`reply`] writes to the applicant without changing the ticket: one `reply` outbox item
//! (a person's letter, not an auto-reply: no `Auto-Submitted`, no daily limit), threaded like
//! the notifications, a correspondence row and a `reply` event with the text. Refused for a
//! closed ticket, an empty or too long text, and a ticket without the applicant's address.
//!
//! Every change is an event: `status`, `assigned`, `accepted`, `priority`, `reply`, with the
//! actor and a Russian detail.

use std::fmt;

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::mail::replies::{ReplyContext, ReplyKind, Templates};
use crate::store::acceptance::{mark_accepted, status_change};
use crate::store::outbox::{AutoSubmitted, OutgoingMail};
use crate::store::{add_event, ts, Status, Store, StoreError, TicketRow, SYSTEM_ACTOR};
use crate::verdict::rules::PriorityRules;
use crate::verdict::{Impact, Priority};

/// The longest operator or assignee name accepted.
pub const MAX_NAME_CHARS: usize = 100;

/// The longest comment accepted (it goes into a mail).
pub const MAX_COMMENT_CHARS: usize = 10_000;

/// How many Message-IDs `References` keeps: the first of the thread and the latest ones.
const MAX_REFERENCES: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkflowError {
    /// No ticket with this number.
    NotFound(i64),
    /// The change is not allowed; a Russian sentence saying why.
    Refused(String),
    /// The store failed.
    Store(String),
}

impl fmt::Display for WorkflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkflowError::NotFound(id) => write!(f, "заявка #{id} не найдена"),
            WorkflowError::Refused(why) => f.write_str(why),
            WorkflowError::Store(e) => write!(f, "ошибка хранилища: {e}"),
        }
    }
}

impl std::error::Error for WorkflowError {}

impl From<rusqlite::Error> for WorkflowError {
    fn from(e: rusqlite::Error) -> Self {
        WorkflowError::Store(e.to_string())
    }
}

impl From<StoreError> for WorkflowError {
    fn from(e: StoreError) -> Self {
        WorkflowError::Store(e.to_string())
    }
}

type Result<T> = std::result::Result<T, WorkflowError>;

fn refused<T>(why: impl Into<String>) -> Result<T> {
    Err(WorkflowError::Refused(why.into()))
}

/// The operator who makes a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    /// `$SUDO_USER` (the person behind `sudo`), else `$USER`, else «оператор».
    pub fn from_env() -> Actor {
        Actor::from_vars(std::env::var("SUDO_USER").ok(), std::env::var("USER").ok())
    }

    /// [`Actor::from_env`] with the variables given (for tests). `root` behind no `sudo` is kept:
    /// it is who ran the command.
    pub fn from_vars(sudo_user: Option<String>, user: Option<String>) -> Actor {
        let pick = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        Actor(
            pick(sudo_user)
                .filter(|s| s != "root")
                .or_else(|| pick(user))
                .unwrap_or_else(|| "оператор".to_string()),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Everything the renderer needs for one notification to the applicant.
#[derive(Debug, Clone)]
pub struct NotifyRequest<'a> {
    pub kind: ReplyKind,
    /// The ticket as it is after the change (new status, assignee).
    pub ticket: &'a TicketRow,
    /// The operator's question (`feedback`), solution (`resolved`) or reason (`closed`).
    pub comment: Option<&'a str>,
    pub operator: &'a str,
    /// Message-ID (without `<>`) of the applicant's last incoming mail on this ticket.
    pub in_reply_to: Option<String>,
    /// The thread's Message-IDs, oldest first, `in_reply_to` last.
    pub references: Vec<String>,
    /// Unique per notification (`e<event id>`), for the Message-ID.
    pub nonce: String,
}

/// The outbox `kind` (and Message-ID part) of a notification.
pub fn outbox_kind(kind: ReplyKind) -> &'static str {
    match kind {
        ReplyKind::NotifyFeedback => "notify_feedback",
        ReplyKind::NotifyResolved => "notify_resolved",
        ReplyKind::NotifyClosed => "notify_closed",
        ReplyKind::Accept => "accept",
        ReplyKind::Incomplete => "incomplete",
        ReplyKind::Reject => "reject",
        ReplyKind::Completed => "completed",
        ReplyKind::Followup => "followup",
        ReplyKind::Reply => "reply",
    }
}

/// Builds the notification mail from the templates, with the same subject rule, threading and
/// Message-ID scheme as the auto-replies (`mailintake.<ticket>.<kind>.<nonce>@<domain of from>`),
/// `Auto-Submitted: auto-generated` and a null envelope sender — except for an operator's
/// [`ReplyKind::Reply`], a person's letter: no `Auto-Submitted`, and our address as the envelope
/// sender so a bounce comes back to the desk — and `bcc` (normally
/// `[cfg.copy_to()]`, so the copy lands in our mailbox and is recognised as our own).
pub fn render_notification(
    templates: &Templates,
    from: &str,
    bcc: Vec<String>,
    req: &NotifyRequest<'_>,
) -> OutgoingMail {
    let t = req.ticket;
    let ticket = u64::try_from(t.id).ok();
    let ctx = ReplyContext {
        ticket,
        subject: t.subject.clone(),
        problems: vec![],
        missing: vec![],
        status: Some(t.status.russian().to_string()),
        comment: req.comment.map(str::to_string),
        operator: Some(req.operator.to_string()),
    };
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "localhost".into());
    OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@{}",
            t.id,
            outbox_kind(req.kind),
            req.nonce,
            domain
        ),
        to: t.sender.clone(),
        subject: templates.subject(ticket, &t.subject),
        text: templates.render(req.kind, &ctx),
        html: None,
        in_reply_to: req.in_reply_to.clone(),
        references: req.references.clone(),
        auto_submitted: req.kind.auto_submitted(),
        null_sender: req.kind.auto_submitted() != AutoSubmitted::No,
        bcc,
    }
}

// ---- the transition table ---------------------------------------------------------------

/// Targets allowed from each status (see the module documentation).
pub fn allowed_targets(from: Status) -> &'static [Status] {
    use Status::*;
    match from {
        New => &[Assigned, InProgress, Feedback, Resolved, Closed],
        Assigned => &[New, InProgress, Feedback, Resolved],
        InProgress => &[Feedback, Resolved],
        Feedback => &[Assigned, InProgress, Resolved, Closed],
        Resolved => &[InProgress, Closed],
        Closed => &[],
    }
}

fn quoted_list(statuses: &[Status]) -> String {
    statuses
        .iter()
        .map(|s| format!("«{}»", s.russian()))
        .collect::<Vec<_>>()
        .join(", ")
}

const CLOSED_IS_FINAL: &str =
    "Закрытая заявка не меняется; если проблема осталась, создайте новую заявку.";

/// Whether `from → to` is allowed; the Russian reason when not. The comment rules are checked
/// by [`set_status`].
pub fn check_transition(id: i64, from: Status, to: Status) -> std::result::Result<(), String> {
    if from == Status::Closed {
        return Err(format!("Заявка #{id} закрыта. {CLOSED_IS_FINAL}"));
    }
    if from == to {
        return Err(format!("Заявка #{id} уже в статусе «{}».", from.russian()));
    }
    if allowed_targets(from).contains(&to) {
        return Ok(());
    }
    let why = match (from, to) {
        (Status::Assigned | Status::InProgress, Status::Closed) => {
            " Заявка в работе: сначала переведите её в «Решена» с комментарием о решении."
        }
        (Status::InProgress, Status::Assigned) => {
            " Чтобы передать заявку другому специалисту, используйте «ticket assign»: статус останется «Рассматривается»."
        }
        (_, Status::New) => " Вернуть в «Новая» можно только назначенную заявку, ещё не взятую в работу.",
        (Status::Resolved, _) => " Решённую заявку можно закрыть или вернуть в работу («Рассматривается»).",
        _ => "",
    };
    Err(format!(
        "Переход «{}» → «{}» не допускается (п. 4.8 Регламента).{why} Из статуса «{}» можно перевести в: {}.",
        from.russian(),
        to.russian(),
        from.russian(),
        quoted_list(allowed_targets(from))
    ))
}

// ---- argument parsing for the CLI -------------------------------------------------------

/// A status as an operator types it: the code (`in_progress`) or the Russian name
/// («Рассматривается»), any case.
pub fn parse_status(s: &str) -> std::result::Result<Status, String> {
    let k = crate::verdict::rules::name_key(s).replace('-', "_");
    Status::ALL
        .into_iter()
        .find(|st| st.as_str() == k || crate::verdict::rules::name_key(st.russian()) == k)
        .ok_or_else(|| {
            format!(
                "«{}» — не статус. Статусы (п. 4.8): {}.",
                s.trim(),
                Status::ALL
                    .iter()
                    .map(|st| format!("{} ({})", st.as_str(), st.russian()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// A priority: the code (`high`), the Russian name, or its number 1–4 (reg. 4.10).
pub fn parse_priority(rules: &PriorityRules, s: &str) -> std::result::Result<Priority, String> {
    Priority::parse(&crate::verdict::rules::name_key(s))
        .or_else(|| rules.priority_by_name(s))
        .ok_or_else(|| {
            format!(
                "«{}» — не приоритет. Приоритеты (п. 4.10): {}.",
                s.trim(),
                Priority::ALL
                    .iter()
                    .map(|p| format!("{} ({}, {})", p.as_str(), p.russian(), p.rank()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

/// An impact: the code (`minor`) or the Russian name (reg. 4.9).
pub fn parse_impact(rules: &PriorityRules, s: &str) -> std::result::Result<Impact, String> {
    Impact::parse(&crate::verdict::rules::name_key(s))
        .or_else(|| rules.impact_by_name(s))
        .ok_or_else(|| {
            format!(
                "«{}» — не влияние. Влияние (п. 4.9): {}.",
                s.trim(),
                Impact::ALL
                    .iter()
                    .map(|i| format!("{} ({})", i.as_str(), i.russian()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

// ---- the operations ---------------------------------------------------------------------

/// `ticket assign ID --to NAME`: `new`/`feedback` → `assigned` with the assignee (the ticket is
/// accepted in work the first time, reg. 4.6); `assigned`/`in_progress` keep their status and
/// change hands; `resolved`/`closed` are refused.
pub fn assign(store: &mut Store, id: i64, to: &str, actor: &str, now: Timestamp) -> Result<String> {
    let actor = clean_name(actor, "Имя специалиста, который вносит изменение,")?;
    let to = clean_name(to, "Имя ответственного специалиста")?;
    with_tx(store, |tx| {
        let t = load_ticket(tx, id)?;
        match t.status {
            Status::Closed => return refused(format!("Заявка #{id} закрыта. {CLOSED_IS_FINAL}")),
            Status::Resolved => {
                return refused(format!(
                    "Заявка #{id} решена; назначить её можно, только вернув в работу: «ticket status {id} in_progress»."
                ))
            }
            _ => {}
        }
        if t.assignee.as_deref() == Some(to.as_str()) {
            return refused(sentence(format!("Заявка #{id} уже назначена на {to}")));
        }
        let mut said = Vec::new();
        if matches!(t.status, Status::New | Status::Feedback) {
            tx.execute(
                "UPDATE tickets SET status = 'assigned', assignee = ?2, feedback_by = NULL, updated_at = ?3 WHERE id = ?1",
                params![id, to, ts(now)],
            )?;
            let change = status_change(t.status, Status::Assigned);
            add_event(tx, id, now, &actor, "status", &change)?;
            said.push(change);
        } else {
            tx.execute(
                "UPDATE tickets SET assignee = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, to, ts(now)],
            )?;
        }
        let detail = match &t.assignee {
            Some(before) => format!("назначена на {to} (была на {before})"),
            None => format!("назначена на {to}"),
        };
        add_event(tx, id, now, &actor, "assigned", &detail)?;
        said.push(detail);
        if let Some(s) = accept_if_first(tx, &t, Status::Assigned, &actor, now)? {
            said.push(s);
        }
        Ok(sentence(format!("Заявка #{id}: {}", said.join("; "))))
    })
}

/// `ticket status ID STATUS [--comment TEXT]`: see the transition table in the module
/// documentation. On `feedback`, `resolved` and `closed` the applicant is notified: `notify`
/// builds the mail (called inside the transaction, once), which is queued in the outbox.
#[allow(clippy::too_many_arguments)]
pub fn set_status(
    store: &mut Store,
    id: i64,
    to: Status,
    comment: Option<&str>,
    actor: &str,
    now: Timestamp,
    notify: &mut dyn FnMut(NotifyRequest<'_>) -> OutgoingMail,
) -> Result<String> {
    let actor = clean_name(actor, "Имя специалиста, который вносит изменение,")?;
    let comment = clean_comment(comment)?;
    with_tx(store, |tx| {
        let t = load_ticket(tx, id)?;
        let from = t.status;
        check_transition(id, from, to).map_err(WorkflowError::Refused)?;
        match to {
            Status::Feedback if comment.is_none() => {
                return refused(
                    "Для статуса «Обратная связь» нужен --comment: вопрос заявителю (он уйдёт ему письмом).",
                )
            }
            Status::Resolved if comment.is_none() => {
                return refused(
                    "Для статуса «Решена» нужен --comment: что сделано (он уйдёт заявителю письмом).",
                )
            }
            Status::Closed if comment.is_none() && from != Status::Resolved => {
                return refused(format!(
                    "Заявка #{id} не решена; чтобы закрыть её без решения, нужен --comment: причина закрытия (она уйдёт заявителю письмом)."
                ))
            }
            _ => {}
        }

        // The new assignee and feedback_by.
        let mut assignee = t.assignee.clone();
        let mut assignee_change = None;
        match to {
            Status::Assigned | Status::InProgress if assignee.is_none() => {
                assignee = Some(actor.clone());
                assignee_change = Some(format!("назначена на {actor}"));
            }
            Status::New => {
                if let Some(before) = assignee.take() {
                    assignee_change = Some(format!("назначение снято (была на {before})"));
                }
            }
            _ => {}
        }
        let feedback_by = match to {
            Status::Feedback => Some(actor.as_str()),
            _ => None,
        };
        tx.execute(
            "UPDATE tickets SET status = ?2, assignee = ?3, feedback_by = ?4, updated_at = ?5 WHERE id = ?1",
            params![id, to.as_str(), assignee, feedback_by, ts(now)],
        )?;

        let change = status_change(from, to);
        let mut detail = change.clone();
        if let Some(c) = &comment {
            let label = match to {
                Status::Feedback => "вопрос заявителю",
                Status::Resolved => "решение",
                Status::Closed => "причина закрытия",
                _ => "комментарий",
            };
            detail.push_str(&format!("; {label}: {c}"));
        }
        let event_id = add_event(tx, id, now, &actor, "status", &detail)?;
        let mut said = vec![change];
        if let Some(a) = assignee_change {
            add_event(tx, id, now, &actor, "assigned", &a)?;
            said.push(a);
        }
        if let Some(s) = accept_if_first(tx, &t, to, &actor, now)? {
            said.push(s);
        }

        let kind = match to {
            Status::Feedback => Some(ReplyKind::NotifyFeedback),
            Status::Resolved => Some(ReplyKind::NotifyResolved),
            Status::Closed => Some(ReplyKind::NotifyClosed),
            _ => None,
        };
        if let Some(kind) = kind {
            let after = load_ticket(tx, id)?;
            said.push(queue_notification(
                tx,
                &after,
                kind,
                comment.as_deref(),
                &actor,
                event_id,
                now,
                notify,
            )?);
        }
        Ok(sentence(format!("Заявка #{id}: {}", said.join("; "))))
    })
}

/// `ticket priority ID PRIORITY [--impact IMPACT]` (reg. 4.5, 4.9, 4.10): the impact may only be
/// lowered (or set when there is none); the priority may not be above the most urgent one the
/// (new or current) impact allows.
#[allow(clippy::too_many_arguments)]
pub fn set_priority(
    store: &mut Store,
    id: i64,
    priority: Priority,
    impact: Option<Impact>,
    rules: &PriorityRules,
    actor: &str,
    now: Timestamp,
) -> Result<String> {
    let actor = clean_name(actor, "Имя специалиста, который вносит изменение,")?;
    with_tx(store, |tx| {
        let t = load_ticket(tx, id)?;
        if t.status == Status::Closed {
            return refused(format!("Заявка #{id} закрыта. {CLOSED_IS_FINAL}"));
        }
        let old_priority = Priority::parse(&t.priority);
        let old_impact = t.impact.as_deref().and_then(Impact::parse);
        if let (Some(new), Some(old)) = (impact, old_impact) {
            if severity(new) > severity(old) {
                return refused(format!(
                    "Влияние «{}» выше текущего «{}»: специалист 1 ЛТП может только понизить влияние (п. 4.9).",
                    new.russian(),
                    old.russian()
                ));
            }
        }
        let effective = impact.or(old_impact);
        if let Some(imp) = effective {
            let allowed = rules.allowed(imp);
            if let Some(top) = allowed.iter().min_by_key(|p| p.rank()) {
                if priority.rank() < top.rank() {
                    return refused(format!(
                        "Приоритет «{}» не допускается при влиянии «{}» (допустимо: {}), п. 4.10.",
                        priority.russian(),
                        imp.russian(),
                        allowed
                            .iter()
                            .map(|p| p.russian())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        let priority_changed = old_priority != Some(priority);
        let impact_changed = impact.is_some() && impact != old_impact;
        if !priority_changed && !impact_changed {
            let imp = effective
                .map(|i| format!(", влияние «{}»", i.russian()))
                .unwrap_or_default();
            return refused(format!(
                "У заявки #{id} уже приоритет «{}»{imp}.",
                priority.russian()
            ));
        }
        tx.execute(
            "UPDATE tickets SET priority = ?2, impact = ?3, updated_at = ?4 WHERE id = ?1",
            params![
                id,
                priority.as_str(),
                effective.map(Impact::as_str),
                ts(now)
            ],
        )?;
        let name = |p: Option<Priority>, raw: &str| {
            p.map(|p| p.russian().to_string())
                .unwrap_or_else(|| raw.to_string())
        };
        let mut parts = Vec::new();
        if priority_changed {
            parts.push(format!(
                "приоритет: «{}» → «{}»",
                name(old_priority, &t.priority),
                priority.russian()
            ));
        }
        if impact_changed {
            let new = effective.map(Impact::russian).unwrap_or("—");
            parts.push(match old_impact {
                Some(old) => format!("влияние: «{}» → «{new}»", old.russian()),
                None => format!("влияние: не указано → «{new}»"),
            });
        }
        let detail = parts.join("; ");
        add_event(tx, id, now, &actor, "priority", &detail)?;
        Ok(sentence(format!("Заявка #{id}: {detail}")))
    })
}

/// `ticket reply ID --text TEXT`: the operator's letter to the applicant; the status, the
/// assignee and the deadline stay as they are. `notify` builds the mail (normally
/// [`render_notification`] with [`ReplyKind::Reply`]).
pub fn reply(
    store: &mut Store,
    id: i64,
    text: &str,
    actor: &str,
    now: Timestamp,
    notify: &mut dyn FnMut(NotifyRequest<'_>) -> OutgoingMail,
) -> Result<String> {
    let actor = clean_name(actor, "Имя специалиста, который вносит изменение,")?;
    let text = match clean_comment(Some(text)) {
        Ok(Some(t)) => t,
        Ok(None) => return refused("Текст ответа заявителю пуст: напишите, что ему сообщить."),
        Err(WorkflowError::Refused(_)) => {
            return refused(format!(
                "Ответ заявителю слишком длинный: {} знаков, допустимо {MAX_COMMENT_CHARS}.",
                text.chars().count()
            ))
        }
        Err(e) => return Err(e),
    };
    with_tx(store, |tx| {
        let t = load_ticket(tx, id)?;
        if t.status == Status::Closed {
            return refused(format!(
                "Заявка #{id} закрыта: ответ по ней не отправляется. {CLOSED_IS_FINAL}"
            ));
        }
        if t.sender.trim().is_empty() {
            return refused(format!(
                "У заявки #{id} неизвестен адрес заявителя: ответить письмом нельзя."
            ));
        }
        let event_id = add_event(
            tx,
            id,
            now,
            &actor,
            "reply",
            &format!("ответ заявителю: {text}"),
        )?;
        let queued = queue_notification(
            tx,
            &t,
            ReplyKind::Reply,
            Some(&text),
            &actor,
            event_id,
            now,
            notify,
        )?;
        // `queue_notification` only skips a mail without a recipient, refused above; should the
        // renderer still give none, nothing is recorded as sent.
        if !queued.starts_with("ответ заявителю") {
            return refused(format!(
                "У заявки #{id} неизвестен адрес заявителя: ответить письмом нельзя."
            ));
        }
        Ok(sentence(format!("Заявка #{id}: {queued}")))
    })
}

// ---- helpers ----------------------------------------------------------------------------

/// Severity of an impact: the order of [`Impact::ALL`] (Нововведение … Блокирующий).
fn severity(i: Impact) -> usize {
    Impact::ALL.iter().position(|x| *x == i).unwrap_or(0)
}

/// Ends a sentence with one full stop (a name such as «Петров П.П.» already has it).
fn sentence(mut s: String) -> String {
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

fn with_tx<T>(store: &mut Store, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
    // IMMEDIATE: the ticket is read and written under one write lock, so a concurrent daemon
    // (a follow-up on the same ticket) cannot change it in between.
    let tx = store
        .conn_mut()
        .transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?; // an error drops `tx`: rolled back
    tx.commit()?;
    Ok(out)
}

/// A person's name: one line, trimmed, spaces collapsed, not empty, not our own name.
fn clean_name(s: &str, what: &str) -> Result<String> {
    let name = s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        return refused(format!("{what} не указано."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return refused(format!("{what} длиннее {MAX_NAME_CHARS} знаков."));
    }
    if name.eq_ignore_ascii_case(SYSTEM_ACTOR) {
        return refused(format!(
            "Имя «{SYSTEM_ACTOR}» зарезервировано за программой; укажите имя специалиста."
        ));
    }
    Ok(name)
}

/// A comment: `\n` line ends, blank lines at the ends dropped; `None` when empty.
fn clean_comment(c: Option<&str>) -> Result<Option<String>> {
    let Some(c) = c else { return Ok(None) };
    let c = c.replace("\r\n", "\n").replace('\r', "\n");
    let c = c
        .split('\n')
        .map(|l| {
            l.chars()
                .filter(|ch| !ch.is_control() || *ch == '\t')
                .collect::<String>()
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let c = c.trim_matches(|ch: char| ch == '\n' || ch.is_whitespace());
    if c.is_empty() {
        return Ok(None);
    }
    let n = c.chars().count();
    if n > MAX_COMMENT_CHARS {
        return refused(format!(
            "Комментарий слишком длинный: {n} знаков, допустимо {MAX_COMMENT_CHARS}."
        ));
    }
    Ok(Some(c.to_string()))
}

fn load_ticket(tx: &Connection, id: i64) -> Result<TicketRow> {
    tx.query_row(
        &format!(
            "SELECT {} FROM tickets WHERE id = ?1",
            crate::store::TICKET_COLUMNS
        ),
        params![id],
        crate::store::ticket_row,
    )
    .optional()?
    .ok_or(WorkflowError::NotFound(id))
}

/// Reg. 4.6: the first time the ticket leaves `new`/`feedback` for work, `accepted_at` is set
/// and an `accepted` event says whether the deadline was met.
fn accept_if_first(
    tx: &Connection,
    before: &TicketRow,
    to: Status,
    actor: &str,
    now: Timestamp,
) -> Result<Option<String>> {
    let leaves_queue = matches!(before.status, Status::New | Status::Feedback)
        && matches!(to, Status::Assigned | Status::InProgress | Status::Resolved);
    if !leaves_queue || before.accepted_at.is_some() {
        return Ok(None);
    }
    Ok(mark_accepted(tx, before.id, actor, now)?)
}

/// The applicant's last incoming Message-ID on the ticket, and the thread's ids for
/// `References`: oldest first, at most [`MAX_REFERENCES`] (the first kept), `in_reply_to` last.
fn thread_ids(tx: &Connection, ticket: i64) -> Result<(Option<String>, Option<i64>, Vec<String>)> {
    let mut st = tx.prepare(
        "SELECT c.direction, m.id, m.message_id, o.message_id, o.state
         FROM correspondence c
         LEFT JOIN mails m ON m.id = c.mail_id
         LEFT JOIN outbox o ON o.id = c.outbox_id
         WHERE c.ticket_id = ?1 ORDER BY c.id",
    )?;
    let rows = st.query_map(params![ticket], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut ids: Vec<String> = Vec::new();
    let mut last_in: Option<(String, i64)> = None;
    for row in rows {
        let (direction, mail_id, in_id, out_id, out_state) = row?;
        let id = if direction == "in" {
            let id = in_id
                .map(|s| {
                    s.trim()
                        .trim_start_matches('<')
                        .trim_end_matches('>')
                        .to_string()
                })
                .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace));
            if let (Some(id), Some(m)) = (&id, mail_id) {
                last_in = Some((id.clone(), m));
            }
            id
        } else {
            // Only what was or will be sent: a suppressed or failed reply never reached anyone.
            out_id.filter(|_| !matches!(out_state.as_deref(), Some("suppressed") | Some("failed")))
        };
        if let Some(id) = id {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    let (in_reply_to, mail_id) = match last_in {
        Some((id, m)) => (Some(id), Some(m)),
        None => (None, None),
    };
    if let Some(parent) = &in_reply_to {
        ids.retain(|x| x != parent);
        ids.push(parent.clone());
    }
    if ids.len() > MAX_REFERENCES {
        let tail = ids.split_off(ids.len() - (MAX_REFERENCES - 1));
        ids.truncate(1);
        ids.extend(tail);
    }
    Ok((in_reply_to, mail_id, ids))
}

#[allow(clippy::too_many_arguments)]
fn queue_notification(
    tx: &Transaction<'_>,
    ticket: &TicketRow,
    kind: ReplyKind,
    comment: Option<&str>,
    operator: &str,
    event_id: i64,
    now: Timestamp,
    notify: &mut dyn FnMut(NotifyRequest<'_>) -> OutgoingMail,
) -> Result<String> {
    let (in_reply_to, mail_id, references) = thread_ids(tx, ticket.id)?;
    let out = notify(NotifyRequest {
        kind,
        ticket,
        comment,
        operator,
        in_reply_to,
        references,
        nonce: format!("e{event_id}"),
    });
    let kind_str = outbox_kind(kind);
    if out.to.trim().is_empty() {
        // Cannot happen for tickets made from mail (their sender passed the domain filter).
        add_event(
            tx,
            ticket.id,
            now,
            SYSTEM_ACTOR,
            "notify_skipped",
            "уведомление заявителю не отправлено: адрес заявителя неизвестен",
        )?;
        return Ok("уведомление не отправлено: адрес заявителя неизвестен".into());
    }
    let payload = serde_json::to_string(&out).map_err(|e| WorkflowError::Store(e.to_string()))?;
    // Operator notifications are not auto-replies: no daily limit, never suppressed.
    tx.execute(
        "INSERT INTO outbox (ticket_id, mail_id, kind, recipient, message_id, payload, state, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7)",
        params![
            ticket.id,
            mail_id,
            kind_str,
            out.to,
            out.message_id,
            payload,
            ts(now)
        ],
    )?;
    let outbox_id = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO correspondence (ticket_id, direction, outbox_id, at, summary) VALUES (?1, 'out', ?2, ?3, ?4)",
        params![
            ticket.id,
            outbox_id,
            ts(now),
            if kind == ReplyKind::Reply {
                format!("ответ заявителю (специалист {operator}): {}", out.subject)
            } else {
                format!(
                    "уведомление ({kind_str}, статус «{}», специалист {operator}): {}",
                    ticket.status.russian(),
                    out.subject
                )
            }
        ],
    )?;
    Ok(if kind == ReplyKind::Reply {
        format!(
            "ответ заявителю {} поставлен в очередь (письмо #{outbox_id})",
            out.to
        )
    } else {
        format!(
            "заявителю {} поставлено в очередь уведомление #{outbox_id}",
            out.to
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_never_allows_the_same_status_or_leaving_closed() {
        for from in Status::ALL {
            assert!(!allowed_targets(from).contains(&from), "{from:?}");
            assert!(check_transition(1, from, from).is_err());
        }
        for to in Status::ALL {
            let e = check_transition(3, Status::Closed, to).unwrap_err();
            assert!(e.contains("создайте новую"), "{e}");
        }
    }

    #[test]
    fn refusals_say_why_and_what_is_possible() {
        let e = check_transition(5, Status::InProgress, Status::Closed).unwrap_err();
        assert!(e.contains("«Рассматривается» → «Закрыта»"), "{e}");
        assert!(e.contains("сначала переведите её в «Решена»"), "{e}");
        assert!(e.contains("«Обратная связь», «Решена»"), "{e}");
        let e = check_transition(5, Status::New, Status::New).unwrap_err();
        assert_eq!(e, "Заявка #5 уже в статусе «Новая».");
    }

    #[test]
    fn names_and_comments_are_cleaned() {
        assert_eq!(clean_name("  Петров\tП.П. ", "x").unwrap(), "Петров П.П.");
        assert!(clean_name(" \n", "x").is_err());
        assert!(clean_name("MailIntake", "x").is_err());
        assert_eq!(
            clean_comment(Some("\r\n  Уточните логин.\r\nИ время.  \n\n"))
                .unwrap()
                .as_deref(),
            Some("Уточните логин.\nИ время.")
        );
        assert_eq!(clean_comment(Some(" \n ")).unwrap(), None);
        assert!(clean_comment(Some(&"я".repeat(MAX_COMMENT_CHARS + 1))).is_err());
    }

    #[test]
    fn actor_from_environment() {
        let a = |s: Option<&str>, u: Option<&str>| {
            Actor::from_vars(s.map(String::from), u.map(String::from)).0
        };
        assert_eq!(a(Some("petrov"), Some("root")), "petrov");
        assert_eq!(a(None, Some("ivanova")), "ivanova");
        assert_eq!(a(Some("root"), Some("root")), "root");
        assert_eq!(a(Some(" "), None), "оператор");
    }

    #[test]
    fn statuses_are_parsed_by_code_or_russian_name() {
        assert_eq!(parse_status("in-progress"), Ok(Status::InProgress));
        assert_eq!(parse_status("Рассматривается"), Ok(Status::InProgress));
        assert_eq!(parse_status("обратная связь"), Ok(Status::Feedback));
        let e = parse_status("done").unwrap_err();
        assert!(e.contains("resolved (Решена)"), "{e}");
    }
}
