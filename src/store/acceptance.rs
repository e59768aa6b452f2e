//! Ticket state changes that both the intake (a follow-up mail) and the desk (an operator's step)
//! make, so they live below both: the reg. 4.6 acceptance mark and the reg. 4.8 answer to an
//! operator's question. Called inside the caller's transaction; they never open one.

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::{add_event, ts, Status, SYSTEM_ACTOR};

/// "статус: «Новая» → «Назначена»", the detail of a status event.
pub fn status_change(from: Status, to: Status) -> String {
    format!("статус: «{}» → «{}»", from.russian(), to.russian())
}

/// Sets `accepted_at = now` unless it is set already, with an `accepted` event saying whether
/// `accept_due` was met. The detail when it was set now; `None` when it was set before.
pub fn mark_accepted(
    conn: &Connection,
    ticket: i64,
    actor: &str,
    now: Timestamp,
) -> rusqlite::Result<Option<String>> {
    let changed = conn.execute(
        "UPDATE tickets SET accepted_at = ?2 WHERE id = ?1 AND accepted_at IS NULL",
        params![ticket, ts(now)],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    let due: Option<String> = conn.query_row(
        "SELECT accept_due FROM tickets WHERE id = ?1",
        params![ticket],
        |r| r.get(0),
    )?;
    let due = due
        .as_deref()
        .and_then(|d| d.parse::<Timestamp>().ok().map(|t| (d, t)));
    let detail = match due {
        Some((d, due)) if now <= due => format!(
            "принята в работу (п. 4.6) в срок, до {}",
            super::local_time(d)
        ),
        Some((d, _)) => format!(
            "принята в работу (п. 4.6) с нарушением срока: срок был до {}",
            super::local_time(d)
        ),
        None => "принята в работу (п. 4.6)".to_string(),
    };
    add_event(conn, ticket, now, actor, "accepted", &detail)?;
    Ok(Some(detail))
}

/// For the store's follow-up path, inside its transaction, after the follow-up is recorded and
/// BEFORE the form-completion rule: when ticket `ticket` is in «Обратная связь» because an
/// operator asked a question (`feedback_by` is a person, not `mailintake`), the applicant's
/// answer (mail `mail_id`) moves it back to «Рассматривается» (reg. 4.8), clears `feedback_by`,
/// records a `status` event by `mailintake`, and marks the ticket accepted if it was not
/// (reg. 4.6: it left `feedback` for `in_progress`). Returns whether it did.
/// A ticket in «Обратная связь» for an incomplete form (`feedback_by = 'mailintake'`) is left to
/// the completion rule.
pub fn feedback_answered(
    conn: &Connection,
    ticket: i64,
    mail_id: i64,
    now: Timestamp,
) -> rusqlite::Result<bool> {
    let row: Option<(String, Option<String>)> = conn
        .query_row(
            "SELECT status, feedback_by FROM tickets WHERE id = ?1",
            params![ticket],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((status, by)) = row else {
        return Ok(false);
    };
    let Some(by) = by.filter(|b| status == Status::Feedback.as_str() && b != SYSTEM_ACTOR) else {
        return Ok(false);
    };
    conn.execute(
        "UPDATE tickets SET status = 'in_progress', feedback_by = NULL, updated_at = ?2 WHERE id = ?1",
        params![ticket, ts(now)],
    )?;
    add_event(
        conn,
        ticket,
        now,
        SYSTEM_ACTOR,
        "status",
        &format!(
            "{}: получен ответ заявителя (письмо #{mail_id}) на вопрос специалиста {by}",
            status_change(Status::Feedback, Status::InProgress)
        ),
    )?;
    mark_accepted(conn, ticket, SYSTEM_ACTOR, now)?;
    Ok(true)
}
