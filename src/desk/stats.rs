//! `mailintake stats`: counts for the desk's reports — mail by decision and by reason, tickets by
//! status, the reg. 4.6 deadline (accepted within 8 working hours) met or missed, and the median
//! time from arrival to acceptance, in working time and on the wall clock.
//!
//! Read-only (SELECTs on `&Store`). The clock (`now`) and the calendar are passed in.
//!
//! Definitions:
//! - mails: every ledger row except copies of our own replies and duplicates, by `arrived_at`;
//! - tickets: by the arrival of their first mail (`tickets.arrived_at`);
//! - deadline met: `accepted_at <= accept_due`; missed: `accepted_at > accept_due`; pending and
//!   overdue: not accepted, still waiting (status «Новая» or «Обратная связь»), `accept_due < now`.
//!   Tickets without `accept_due` are not counted in any of the three;
//! - time to accept: from `arrived_at` to `accepted_at`, over the accepted tickets.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use rusqlite::params;
use serde::Serialize;

use crate::desk::calendar::Calendar;
use crate::desk::replay::since_param;
use crate::store::{Status, Store};
use crate::verdict::Decision;

const DECISIONS: [Decision; 6] = [
    Decision::Accept,
    Decision::Incomplete,
    Decision::Followup,
    Decision::Reject,
    Decision::Filter,
    Decision::Ignore,
];

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// The start of the period, RFC 3339; `None` for everything in the store.
    pub since: Option<String>,
    pub mails_total: u64,
    /// Every decision, zeros included.
    pub mails_by_decision: BTreeMap<String, u64>,
    /// Reason codes that occurred (a mail with two codes counts under both).
    pub mails_by_reason: BTreeMap<String, u64>,
    /// Ledger outcomes (`ticket`, `followup`, `rejected`, `filtered`, `ignored`, `released`).
    pub mails_by_outcome: BTreeMap<String, u64>,
    pub tickets_total: u64,
    /// Every status, zeros included.
    pub tickets_by_status: BTreeMap<String, u64>,
    pub deadlines_met: u64,
    pub deadlines_missed: u64,
    pub deadlines_pending_overdue: u64,
    /// Tickets accepted in work (the sample of the medians).
    pub accepted: u64,
    pub median_accept_working_minutes: Option<f64>,
    pub median_accept_minutes: Option<f64>,
}

/// `--since DATE`: `YYYY-MM-DD` (midnight in `tz`, the calendar's zone) or an RFC 3339 instant.
pub fn parse_since(s: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let s = s.trim();
    let zone = tz.iana_name().unwrap_or("the calendar's time zone");
    if s.len() == 10 {
        if let Ok(d) = s.parse::<jiff::civil::Date>() {
            return d
                .to_zoned(tz.clone())
                .map(|z| z.timestamp())
                .map_err(|e| format!("--since {s}: {e}"));
        }
    }
    s.parse::<Timestamp>().map_err(|_| {
        format!(
            "--since `{s}` is not a date: write YYYY-MM-DD (midnight in {zone}) or an RFC 3339 instant \
             such as 2026-11-01T08:00:00+03:00"
        )
    })
}

/// Gather the statistics of mail and tickets that arrived at or after `since`.
pub fn stats(
    store: &Store,
    cal: &Calendar,
    since: Option<Timestamp>,
    now: Timestamp,
) -> Result<Stats, String> {
    let conn = store.conn();
    let sql_err = |e: rusqlite::Error| format!("database: {e}");
    let since_s = since_param(since);
    let mut s = Stats {
        since: since_s.clone(),
        mails_by_decision: DECISIONS
            .iter()
            .map(|d| (d.as_str().to_string(), 0))
            .collect(),
        tickets_by_status: Status::ALL
            .iter()
            .map(|st| (st.as_str().to_string(), 0))
            .collect(),
        ..Stats::default()
    };

    let mut st = conn
        .prepare(
            "SELECT decision, reasons, outcome FROM mails
             WHERE outcome NOT IN ('own_reply', 'duplicate')
               AND (?1 IS NULL OR julianday(arrived_at) >= julianday(?1))",
        )
        .map_err(sql_err)?;
    let mut rows = st.query(params![since_s]).map_err(sql_err)?;
    while let Some(r) = rows.next().map_err(sql_err)? {
        let decision: String = r.get(0).map_err(sql_err)?;
        let reasons: String = r.get(1).map_err(sql_err)?;
        let outcome: String = r.get(2).map_err(sql_err)?;
        s.mails_total += 1;
        *s.mails_by_decision.entry(decision).or_insert(0) += 1;
        for code in reasons.split(',').filter(|c| !c.is_empty()) {
            *s.mails_by_reason.entry(code.to_string()).or_insert(0) += 1;
        }
        *s.mails_by_outcome.entry(outcome).or_insert(0) += 1;
    }

    let mut st = conn
        .prepare(
            "SELECT status, arrived_at, accept_due, accepted_at FROM tickets
             WHERE (?1 IS NULL OR julianday(arrived_at) >= julianday(?1))",
        )
        .map_err(sql_err)?;
    let mut rows = st.query(params![since_s]).map_err(sql_err)?;
    let mut working = Vec::new();
    let mut wall = Vec::new();
    let instant = |v: Option<String>| v.and_then(|v| v.parse::<Timestamp>().ok());
    while let Some(r) = rows.next().map_err(sql_err)? {
        let status: String = r.get(0).map_err(sql_err)?;
        let arrived = instant(r.get(1).map_err(sql_err)?);
        let due = instant(r.get(2).map_err(sql_err)?);
        let accepted = instant(r.get(3).map_err(sql_err)?);
        s.tickets_total += 1;
        let waiting = matches!(Status::parse(&status), Some(Status::New | Status::Feedback));
        *s.tickets_by_status.entry(status).or_insert(0) += 1;
        match (accepted, due) {
            (Some(a), Some(d)) if a <= d => s.deadlines_met += 1,
            (Some(_), Some(_)) => s.deadlines_missed += 1,
            (None, Some(d)) if waiting && d < now => s.deadlines_pending_overdue += 1,
            _ => {}
        }
        if let (Some(arrived), Some(accepted)) = (arrived, accepted) {
            s.accepted += 1;
            working.push(cal.working_between(arrived, accepted).as_secs_f64() / 60.0);
            wall.push(arrived.duration_until(accepted).as_secs_f64() / 60.0);
        }
    }
    s.median_accept_working_minutes = median(&mut working);
    s.median_accept_minutes = median(&mut wall);
    Ok(s)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

fn decision_ru(d: &str) -> &str {
    match Decision::parse(d) {
        Some(Decision::Accept) => "принято",
        Some(Decision::Incomplete) => "неполная форма",
        Some(Decision::Followup) => "дополнение к заявке",
        Some(Decision::Reject) => "отклонено",
        Some(Decision::Filter) => "чужой домен",
        Some(Decision::Ignore) => "автоматическое",
        None => d,
    }
}

/// Ledger outcomes in the order a report reads them.
const OUTCOMES: [&str; 6] = [
    "ticket", "followup", "released", "rejected", "filtered", "ignored",
];

fn outcome_ru(o: &str) -> &str {
    match o {
        "ticket" => "заявка создана",
        "followup" => "добавлено к заявке",
        "rejected" => "отклонено (в карантине)",
        "filtered" => "отфильтровано (в карантине)",
        "ignored" => "пропущено (в карантине)",
        "released" => "выпущено из карантина",
        other => other,
    }
}

/// Minutes as people read them: «1 ч 05 мин», «45 мин», «3 д 2 ч 00 мин» (wall clock only).
fn duration_ru(minutes: f64) -> String {
    let total = minutes.round().max(0.0) as u64;
    let (d, h, m) = (total / 1440, total / 60 % 24, total % 60);
    match (d, h) {
        (0, 0) => format!("{m} мин"),
        (0, _) => format!("{h} ч {m:02} мин"),
        _ => format!("{d} д {h} ч {m:02} мин"),
    }
}

/// The statistics for a person, in Russian.
pub fn render(s: &Stats) -> String {
    let mut out = String::new();
    match &s.since {
        Some(t) => out.push_str(&format!("Статистика с {}\n\n", crate::store::local_time(t))),
        None => out.push_str("Статистика за всё время\n\n"),
    }
    out.push_str(&format!("Письма: {}\n  по решению:\n", s.mails_total));
    for d in DECISIONS {
        let n = s.mails_by_decision.get(d.as_str()).copied().unwrap_or(0);
        out.push_str(&format!(
            "    {:<32} {n}\n",
            format!("{} ({})", decision_ru(d.as_str()), d.as_str())
        ));
    }
    if !s.mails_by_reason.is_empty() {
        out.push_str("  по причинам:\n");
        for (code, n) in &s.mails_by_reason {
            out.push_str(&format!("    {code:<32} {n}\n"));
        }
    }
    if !s.mails_by_outcome.is_empty() {
        out.push_str("  по итогу:\n");
        let known = OUTCOMES
            .iter()
            .filter_map(|o| s.mails_by_outcome.get_key_value(*o));
        let other = s
            .mails_by_outcome
            .iter()
            .filter(|(o, _)| !OUTCOMES.contains(&o.as_str()));
        for (o, n) in known.chain(other) {
            out.push_str(&format!("    {:<32} {n}\n", outcome_ru(o)));
        }
    }
    out.push_str(&format!("\nЗаявки: {}\n  по статусу:\n", s.tickets_total));
    for st in Status::ALL {
        let n = s.tickets_by_status.get(st.as_str()).copied().unwrap_or(0);
        out.push_str(&format!("    {:<32} {n}\n", st.russian()));
    }
    out.push_str(&format!(
        "\nПринятие в работу в течение 8 рабочих часов (п. 4.6):\n  \
         срок соблюдён: {}\n  срок нарушен: {}\n  не приняты, срок истёк: {}\n",
        s.deadlines_met, s.deadlines_missed, s.deadlines_pending_overdue
    ));
    match (s.median_accept_working_minutes, s.median_accept_minutes) {
        (Some(w), Some(c)) => out.push_str(&format!(
            "  медиана времени до принятия: {} рабочего времени, {} по часам (принято заявок: {})\n",
            duration_ru(w),
            duration_ru(c),
            s.accepted
        )),
        _ => out.push_str("  медиана времени до принятия: нет принятых заявок\n"),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty_samples() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 10.0]), Some(3.5));
    }

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_ru(45.2), "45 мин");
        assert_eq!(duration_ru(65.0), "1 ч 05 мин");
        assert_eq!(duration_ru(1470.0), "1 д 0 ч 30 мин");
    }
}
