//! The pages as askama templates (`src/web/templates/`, HTML-escaped by default) and the view
//! models they show: every value is prepared here as text, so templates hold no logic beyond
//! loops and conditions.

use askama::Template;
use jiff::Timestamp;

use crate::desk::console::{QueuePage, QueueRow, TicketView};
use crate::desk::users::Role;
use crate::store::{local_time, Status};
use crate::verdict::{Impact, Priority};
use crate::web::auth::{Authed, Flash};

/// What every page's frame shows: who is logged in, the logout form's token, a message.
pub struct Layout {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub is_admin: bool,
    pub flash: Option<Flash>,
    /// `queue`, `quarantine`, `stats`: the highlighted menu item.
    pub section: &'static str,
}

impl Layout {
    pub fn new(a: &Authed, flash: Option<Flash>, section: &'static str) -> Layout {
        Layout {
            user: a.user.clone(),
            role: a.role.russian().to_string(),
            csrf: a.csrf.clone(),
            is_admin: a.role == Role::Admin,
            flash,
            section,
        }
    }
}

/// One `<option>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

impl Choice {
    pub fn new(value: &str, label: &str, current: &str) -> Choice {
        Choice {
            value: value.into(),
            label: label.into(),
            selected: value == current,
        }
    }
}

pub fn priority_ru(p: &str) -> String {
    Priority::parse(p)
        .map(|p| p.russian().to_string())
        .unwrap_or_else(|| p.to_string())
}

/// How pressing a ticket's reg. 4.6 deadline is: `overdue`, `soon` (within the hour) or none.
pub fn due_class(accept_due: Option<&str>, awaiting: bool, now: Timestamp) -> &'static str {
    let Some(due) = accept_due
        .filter(|_| awaiting)
        .and_then(|d| d.parse::<Timestamp>().ok())
    else {
        return "";
    };
    if due <= now {
        "overdue"
    } else if due.duration_since(now) <= jiff::SignedDuration::from_hours(1) {
        "soon"
    } else {
        ""
    }
}

pub fn due_note(class: &str) -> &'static str {
    match class {
        "overdue" => "просрочена",
        "soon" => "меньше часа",
        _ => "",
    }
}

pub fn size_label(bytes: i64) -> String {
    let b = bytes.max(0) as f64;
    if b < 1024.0 {
        format!("{bytes} Б")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.0} КБ", b / 1024.0)
    } else {
        format!("{:.1} МБ", b / 1024.0 / 1024.0)
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub csrf: String,
    pub next: String,
    pub username: String,
    pub error: Option<String>,
}

pub struct QueueLine {
    pub id: i64,
    pub arrived: String,
    pub status: String,
    pub status_code: String,
    pub priority: String,
    pub priority_code: String,
    pub sender: String,
    pub organization: String,
    pub subject: String,
    pub assignee: String,
    pub card: String,
    pub due: String,
    pub due_class: &'static str,
    pub due_note: &'static str,
}

/// "26.11 12:37": the queue's dates without the year, to keep rows on one line.
fn short_time(stored: &str) -> String {
    let full = local_time(stored);
    match (full.get(..5), full.get(10..)) {
        (Some(day), Some(time)) if full.len() == 16 => format!("{day}{time}"),
        _ => full,
    }
}

impl QueueLine {
    pub fn new(r: &QueueRow, now: Timestamp) -> QueueLine {
        let class = due_class(r.accept_due.as_deref(), r.awaiting, now);
        QueueLine {
            id: r.id,
            arrived: short_time(&r.arrived_at),
            status: r.status.russian().into(),
            status_code: r.status.as_str().into(),
            priority: priority_ru(&r.priority),
            priority_code: r.priority.clone(),
            sender: r.sender.clone(),
            organization: r.organization.clone().unwrap_or_default(),
            subject: r.subject.clone(),
            assignee: r.assignee.clone().unwrap_or_default(),
            card: r.card.clone().unwrap_or_default(),
            due: r
                .accept_due
                .as_deref()
                .filter(|_| r.awaiting)
                .map(short_time)
                .unwrap_or_default(),
            due_class: class,
            due_note: due_note(class),
        }
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
pub struct QueuePageView {
    pub layout: Layout,
    pub lines: Vec<QueueLine>,
    pub total: u64,
    pub awaiting: u64,
    pub overdue_here: usize,
    pub page: u32,
    pub pages: u32,
    pub search: String,
    pub statuses: Vec<Choice>,
    pub priorities: Vec<Choice>,
    pub assignees: Vec<Choice>,
    pub prev_link: Option<String>,
    pub next_link: Option<String>,
}

impl QueuePageView {
    pub fn lines(page: &QueuePage, now: Timestamp) -> Vec<QueueLine> {
        page.rows.iter().map(|r| QueueLine::new(r, now)).collect()
    }
}

pub struct FieldLine {
    pub label: &'static str,
    pub value: String,
    /// `required`, `recommended` (missing) or empty.
    pub missing: &'static str,
}

pub struct LetterLine {
    pub at: String,
    pub incoming: bool,
    pub summary: String,
    pub state: String,
    pub state_class: &'static str,
    pub error: String,
    pub text: String,
}

pub struct EntryLine {
    pub name: String,
    pub size: String,
    pub kind: String,
}

pub struct FileLine {
    pub index: usize,
    pub name: String,
    pub kind: String,
    pub size: String,
    pub content_type: String,
    pub image: bool,
    pub entries: Vec<EntryLine>,
}

pub struct EventLine {
    pub at: String,
    pub actor: String,
    pub kind: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "ticket.html")]
pub struct TicketPageView {
    pub layout: Layout,
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub status_code: String,
    pub priority: String,
    pub impact: String,
    pub sender: String,
    pub arrived: String,
    pub due: String,
    pub due_class: &'static str,
    pub due_note: &'static str,
    pub accepted: String,
    pub assignee: String,
    pub fields: Vec<FieldLine>,
    pub missing_count: usize,
    pub letters: Vec<LetterLine>,
    pub files: Vec<FileLine>,
    pub images: Vec<FileLine>,
    pub events: Vec<EventLine>,
    pub closed: bool,
    pub targets: Vec<Choice>,
    pub priorities: Vec<Choice>,
    pub impacts: Vec<Choice>,
    pub people: Vec<String>,
}

const FIELD_LABELS: [(&str, &str); 10] = [
    ("applicant.full_name", "ФИО заявителя"),
    ("applicant.position", "Должность"),
    ("applicant.organization", "Медицинская организация"),
    ("applicant.phone", "Телефон"),
    ("user.full_name", "ФИО пользователя"),
    ("user.login", "Логин пользователя"),
    ("patient.name", "Пациент"),
    ("patient.card", "№ медицинской карты"),
    ("steps", "Последовательность действий"),
    ("error_text", "Описание ошибки"),
];

fn reply_state(state: Option<&str>) -> (&'static str, &'static str) {
    match state {
        Some("sent") => ("отправлено", "sent"),
        Some("pending") | Some("sending") => ("в очереди на отправку", "pending"),
        Some("failed") => ("не доставлено", "failed"),
        Some("suppressed") => ("не отправлено: дневной лимит", "failed"),
        _ => ("", ""),
    }
}

impl TicketPageView {
    pub fn new(
        layout: Layout,
        v: &TicketView,
        now: Timestamp,
        people: Vec<String>,
    ) -> TicketPageView {
        let t = &v.ticket;
        let awaiting =
            matches!(t.status, Status::New | Status::Feedback) && t.accepted_at.is_none();
        let class = due_class(t.accept_due.as_deref(), awaiting, now);
        let fields: Vec<FieldLine> = FIELD_LABELS
            .iter()
            .map(|(name, label)| FieldLine {
                label,
                value: t.fields.get(name).unwrap_or("").to_string(),
                missing: if v.missing_required.iter().any(|m| m == name) {
                    "required"
                } else if v.missing_recommended.iter().any(|m| m == name) {
                    "recommended"
                } else {
                    ""
                },
            })
            .collect();
        let files: Vec<FileLine> = v
            .files
            .iter()
            .map(|f| FileLine {
                index: f.index,
                name: f.row.name.clone(),
                kind: f.row.kind.clone(),
                size: size_label(f.row.bytes),
                content_type: f.row.content_type.clone(),
                image: f.row.kind == "image",
                entries: f
                    .entries
                    .iter()
                    .map(|e| EntryLine {
                        name: e.name.clone(),
                        size: size_label(e.bytes as i64),
                        kind: serde_json::to_value(e.kind)
                            .ok()
                            .and_then(|k| k.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        let images = files
            .iter()
            .filter(|f| f.image)
            .map(|f| FileLine {
                index: f.index,
                name: f.name.clone(),
                kind: f.kind.clone(),
                size: f.size.clone(),
                content_type: f.content_type.clone(),
                image: true,
                entries: Vec::new(),
            })
            .collect();
        let targets = crate::desk::workflow::allowed_targets(t.status)
            .iter()
            .map(|s| Choice::new(s.as_str(), s.russian(), ""))
            .collect();
        let priorities = Priority::ALL
            .iter()
            .map(|p| Choice::new(p.as_str(), p.russian(), &t.priority))
            .collect();
        let current_impact = t.impact.clone().unwrap_or_default();
        let mut impacts = vec![Choice::new("", "не менять", "")];
        impacts.extend(
            Impact::ALL
                .iter()
                .map(|i| Choice::new(i.as_str(), i.russian(), "")),
        );
        TicketPageView {
            layout,
            id: t.id,
            subject: t.subject.clone(),
            status: t.status.russian().into(),
            status_code: t.status.as_str().into(),
            priority: priority_ru(&t.priority),
            impact: Impact::parse(&current_impact)
                .map(|i| i.russian().to_string())
                .unwrap_or_default(),
            sender: t.sender.clone(),
            arrived: local_time(&t.arrived_at),
            due: t.accept_due.as_deref().map(local_time).unwrap_or_default(),
            due_class: class,
            due_note: due_note(class),
            accepted: t.accepted_at.as_deref().map(local_time).unwrap_or_default(),
            assignee: t.assignee.clone().unwrap_or_default(),
            missing_count: v.missing_required.len(),
            fields,
            letters: v
                .letters
                .iter()
                .map(|l| {
                    let (state, state_class) = reply_state(l.reply_state.as_deref());
                    LetterLine {
                        at: local_time(&l.at),
                        incoming: l.direction == "in",
                        summary: l.summary.clone(),
                        state: state.into(),
                        state_class,
                        error: l.reply_error.clone().unwrap_or_default(),
                        text: l.text.clone(),
                    }
                })
                .collect(),
            files,
            images,
            events: v
                .events
                .iter()
                .map(|e| EventLine {
                    at: local_time(&e.at),
                    actor: e.actor.clone(),
                    kind: e.kind.clone(),
                    detail: e.detail.clone(),
                })
                .collect(),
            closed: t.status == Status::Closed,
            targets,
            priorities,
            impacts,
            people,
        }
    }
}

pub struct QuarantineLine {
    pub id: i64,
    pub arrived: String,
    pub decision: String,
    pub outcome: String,
    pub reasons: String,
    pub sender: String,
    pub subject: String,
    pub size: String,
}

#[derive(Template)]
#[template(path = "quarantine.html")]
pub struct QuarantinePageView {
    pub layout: Layout,
    pub lines: Vec<QuarantineLine>,
    pub reasons: Vec<Choice>,
    pub shown: usize,
    pub total: usize,
}

pub struct ReasonLine {
    pub code: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "quarantine_mail.html")]
pub struct QuarantineMailView {
    pub layout: Layout,
    pub id: i64,
    pub in_quarantine: bool,
    pub outcome: String,
    pub decision: String,
    pub reasons: Vec<ReasonLine>,
    pub sender: String,
    pub subject: String,
    pub message_id: String,
    pub arrived: String,
    pub processed: String,
    pub size: String,
    pub headers_only: bool,
    pub ticket_id: Option<i64>,
    pub headers: Vec<(String, String)>,
    pub verdict: String,
}

pub struct Bar {
    pub label: String,
    pub value: u64,
    pub y: u32,
    pub width: u32,
    pub class: String,
}

#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPageView {
    pub layout: Layout,
    pub periods: Vec<Choice>,
    pub mails_total: u64,
    pub tickets_total: u64,
    pub decisions: Vec<Bar>,
    pub statuses: Vec<Bar>,
    pub reasons: Vec<(String, u64)>,
    pub met: u64,
    pub missed: u64,
    pub pending_overdue: u64,
    pub accepted: u64,
    pub median_working: String,
    pub median_wall: String,
    pub chart_height: u32,
    pub status_chart_height: u32,
}

/// Horizontal bars, 22 px apart, scaled to 300 px for the largest value.
pub fn bars(items: &[(String, u64, String)]) -> Vec<Bar> {
    let max = items.iter().map(|(_, v, _)| *v).max().unwrap_or(0).max(1);
    items
        .iter()
        .enumerate()
        .map(|(i, (label, value, class))| Bar {
            label: label.clone(),
            value: *value,
            y: i as u32 * 22,
            width: ((*value as f64 / max as f64) * 300.0).round() as u32,
            class: class.clone(),
        })
        .collect()
}

pub fn minutes_label(m: Option<f64>) -> String {
    match m {
        None => "—".into(),
        Some(m) if m < 60.0 => format!("{m:.0} мин"),
        Some(m) => format!("{} ч {:02.0} мин", (m / 60.0).floor(), m % 60.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_stand_out_only_while_awaiting() {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        assert_eq!(
            due_class(Some("2026-11-26T09:59:00Z"), true, now),
            "overdue"
        );
        assert_eq!(due_class(Some("2026-11-26T10:59:00Z"), true, now), "soon");
        assert_eq!(due_class(Some("2026-11-26T11:01:00Z"), true, now), "");
        assert_eq!(due_class(Some("2026-11-26T09:59:00Z"), false, now), "");
        assert_eq!(due_class(None, true, now), "");
        assert_eq!(due_class(Some("garbage"), true, now), "");
    }

    #[test]
    fn bars_scale_to_the_largest_value() {
        let b = bars(&[("a".into(), 10, "x".into()), ("b".into(), 5, "y".into())]);
        assert_eq!((b[0].width, b[1].width, b[1].y), (300, 150, 22));
        assert_eq!(bars(&[("z".into(), 0, String::new())])[0].width, 0);
    }
}
