//! The operators' workflow over a real store in a temporary folder: transitions (reg. 4.8),
//! the deadline mark (4.6), notifications queued in the outbox, priority and impact (4.9–4.10),
//! and the history of events.

use std::path::PathBuf;

use jiff::Timestamp;
use mailintake::desk::workflow::{
    self, allowed_targets, assign, render_notification, set_priority, set_status, NotifyRequest,
    WorkflowError,
};
use mailintake::mail::replies::{ReplyKind, Templates};
use mailintake::store::acceptance;
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};
use mailintake::store::{Incoming, Outcome, ReplyRequest, Status, Store};
use mailintake::verdict::rules::{PriorityRules, RuleSet};
use mailintake::verdict::{Decision, FormFields, Impact, Priority, Verdict};

const SENDER: &str = "o.petrenko@sev.gov.ru";
const OP: &str = "Петров П.П.";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// 26.11.2026 10:00 Moscow time, plus `min` minutes.
fn t(min: i64) -> Timestamp {
    at("2026-11-26T07:00:00Z")
        .checked_add(jiff::SignedDuration::from_mins(min))
        .unwrap()
}

struct Desk {
    _dir: tempfile::TempDir,
    store: Store,
    uid: u32,
}

impl Desk {
    fn new() -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        Desk {
            _dir: dir,
            store,
            uid: 0,
        }
    }

    fn verdict(&self, decision: Decision, followup_of: Option<u64>) -> Verdict {
        Verdict {
            decision,
            reasons: vec![],
            warnings: vec![],
            missing: vec![],
            followup_of,
            sender: SENDER.into(),
            subject: "Не формируется счет-реестр".into(),
            message_id: Some(format!("msg{}@mail.sev.gov.ru", self.uid)),
            priority: Priority::Normal,
            impact: None,
            fields: FormFields::default(),
            attachments: vec![],
            auth: None,
        }
    }

    fn record(&mut self, v: &Verdict, limit: u32, complete: bool) -> Outcome {
        let raw = format!("mail {}", self.uid).into_bytes();
        let mail = Incoming {
            mailbox: "INBOX",
            uidvalidity: 1,
            uid: self.uid,
            arrived_at: t(0),
            raw: &raw,
            headers_only: false,
            size: raw.len() as u64,
            sha256: format!("sha{}", self.uid),
            // 8 working hours after 10:00 on Thursday 26.11.2026: Friday 10:00.
            accept_due: Some("2026-11-27T10:00:00+03:00".into()),
        };
        let mut render = |req: &ReplyRequest<'_>| OutgoingMail {
            message_id: format!(
                "mailintake.{}.{}.{}@sevmiac.ru",
                req.ticket.unwrap_or(0),
                req.kind.as_str(),
                req.nonce
            ),
            to: req.verdict.sender.clone(),
            subject: "s".into(),
            text: "auto".into(),
            html: None,
            in_reply_to: req.verdict.message_id.clone(),
            references: vec![],
            auto_submitted: AutoSubmitted::AutoReplied,
            null_sender: true,
            bcc: vec![],
        };
        self.store
            .record_mail(&mail, v, false, limit, t(0), &mut render, &|_| complete)
            .unwrap()
            .1
    }

    /// A new ticket («Новая», or «Обратная связь» from an incomplete form).
    fn ticket(&mut self, decision: Decision) -> i64 {
        self.uid += 1;
        let v = self.verdict(decision, None);
        match self.record(&v, 40, true) {
            Outcome::NewTicket { ticket, .. } => ticket,
            o => panic!("{o:?}"),
        }
    }

    /// The applicant's answer to ticket `id`.
    fn followup(&mut self, id: i64) {
        self.uid += 1;
        let v = self.verdict(Decision::Followup, Some(id as u64));
        match self.record(&v, 40, false) {
            Outcome::Followup { ticket, .. } => assert_eq!(ticket, id),
            o => panic!("{o:?}"),
        }
    }

    fn status(
        &mut self,
        id: i64,
        to: Status,
        comment: Option<&str>,
        now: Timestamp,
    ) -> Result<String, WorkflowError> {
        set_status(
            &mut self.store,
            id,
            to,
            comment,
            OP,
            now,
            &mut simple_notify,
        )
    }

    fn row(&self, id: i64) -> mailintake::store::TicketRow {
        self.store.ticket(id).unwrap().unwrap()
    }

    fn outbox(&self, id: i64) -> Vec<(String, String, String, String, Option<i64>)> {
        let mut st = self
            .store
            .conn()
            .prepare(
                "SELECT kind, state, payload, next_attempt_at, mail_id FROM outbox WHERE ticket_id = ?1 ORDER BY id",
            )
            .unwrap();
        st.query_map([id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    fn notifications(&self, id: i64) -> Vec<(String, OutgoingMail)> {
        self.outbox(id)
            .into_iter()
            .filter(|o| o.0.starts_with("notify_"))
            .map(|o| (o.0, serde_json::from_str(&o.2).unwrap()))
            .collect()
    }

    /// (actor, kind, detail) of every event of the ticket, in order.
    fn events(&self, id: i64) -> Vec<(String, String, String)> {
        self.store
            .events(id)
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.kind, e.detail))
            .collect()
    }
}

/// A notification mail without templates: the comment goes into the text as is.
fn simple_notify(req: NotifyRequest<'_>) -> OutgoingMail {
    OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@sevmiac.ru",
            req.ticket.id,
            workflow::outbox_kind(req.kind),
            req.nonce
        ),
        to: req.ticket.sender.clone(),
        subject: format!("[Заявка #{}] {}", req.ticket.id, req.ticket.subject),
        text: format!(
            "{:?} {} {}: {}",
            req.kind,
            req.ticket.status.russian(),
            req.operator,
            req.comment.unwrap_or("")
        ),
        html: None,
        in_reply_to: req.in_reply_to.clone(),
        references: req.references.clone(),
        auto_submitted: req.kind.auto_submitted(),
        null_sender: true,
        bcc: vec![],
    }
}

fn comment_for(to: Status) -> Option<&'static str> {
    match to {
        Status::Feedback => Some("Уточните логин пользователя."),
        Status::Resolved => Some("Исправлены настройки счета."),
        Status::Closed => Some("Дубликат заявки."),
        _ => None,
    }
}

/// A ticket brought to `status` through allowed transitions.
fn ticket_in(d: &mut Desk, status: Status) -> i64 {
    let id = d.ticket(Decision::Accept);
    let path: &[Status] = match status {
        Status::New => &[],
        Status::Assigned => &[Status::Assigned],
        Status::InProgress => &[Status::InProgress],
        Status::Feedback => &[Status::Feedback],
        Status::Resolved => &[Status::Resolved],
        Status::Closed => &[Status::Resolved, Status::Closed],
    };
    for (i, s) in path.iter().enumerate() {
        d.status(id, *s, comment_for(*s), t(i as i64 + 1)).unwrap();
    }
    assert_eq!(d.row(id).status, status);
    id
}

fn refusal(r: Result<String, WorkflowError>) -> String {
    match r {
        Err(WorkflowError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn priority_rules() -> PriorityRules {
    RuleSet::load(&root().join("rules")).unwrap().priority
}

fn templates() -> Templates {
    Templates::load(&root().join("rules/replies")).unwrap()
}

// ---- transitions -------------------------------------------------------------------------

#[test]
fn every_allowed_transition_is_made_and_every_other_refused() {
    let mut d = Desk::new();
    for from in Status::ALL {
        for to in Status::ALL {
            let id = ticket_in(&mut d, from);
            let before = d.row(id);
            let events = d.events(id).len();
            let r = d.status(id, to, comment_for(to), t(100));
            if allowed_targets(from).contains(&to) {
                let said = r.unwrap_or_else(|e| panic!("{from:?} → {to:?}: {e}"));
                assert!(
                    said.contains(&format!("«{}» → «{}»", from.russian(), to.russian())),
                    "{said}"
                );
                let after = d.row(id);
                assert_eq!(after.status, to);
                assert_eq!(after.updated_at, "2026-11-26T08:40:00.000Z");
                let last = d.events(id);
                assert!(last.iter().skip(events).any(|(a, k, det)| a == OP
                    && k == "status"
                    && det.starts_with(&format!(
                        "статус: «{}» → «{}»",
                        from.russian(),
                        to.russian()
                    ))));
            } else {
                let why = refusal(r);
                assert!(!why.is_empty());
                let after = d.row(id);
                assert_eq!(
                    after.status, before.status,
                    "{from:?} → {to:?} changed nothing"
                );
                assert_eq!(after.updated_at, before.updated_at);
                assert_eq!(d.events(id).len(), events, "no event for a refusal");
            }
        }
    }
}

#[test]
fn the_table_is_the_documented_one() {
    use Status::*;
    let table: Vec<(Status, Vec<Status>)> = Status::ALL
        .into_iter()
        .map(|s| (s, allowed_targets(s).to_vec()))
        .collect();
    assert_eq!(
        table,
        vec![
            (New, vec![Assigned, InProgress, Feedback, Resolved, Closed]),
            (Assigned, vec![New, InProgress, Feedback, Resolved]),
            (InProgress, vec![Feedback, Resolved]),
            (Feedback, vec![Assigned, InProgress, Resolved, Closed]),
            (Resolved, vec![InProgress, Closed]),
            (Closed, vec![]),
        ]
    );
}

#[test]
fn refusals_say_why() {
    let mut d = Desk::new();
    let id = ticket_in(&mut d, Status::InProgress);
    assert_eq!(
        refusal(d.status(id, Status::InProgress, None, t(9))),
        format!("Заявка #{id} уже в статусе «Рассматривается».")
    );
    let why = refusal(d.status(id, Status::Closed, Some("всё"), t(9)));
    assert!(
        why.contains("Переход «Рассматривается» → «Закрыта» не допускается (п. 4.8 Регламента)"),
        "{why}"
    );
    assert!(why.contains("сначала переведите её в «Решена»"), "{why}");
    assert!(
        why.contains("можно перевести в: «Обратная связь», «Решена»"),
        "{why}"
    );
    let why = refusal(d.status(id, Status::Assigned, None, t(9)));
    assert!(why.contains("ticket assign"), "{why}");

    let closed = ticket_in(&mut d, Status::Closed);
    for to in Status::ALL {
        let why = refusal(d.status(closed, to, Some("x"), t(9)));
        assert!(why.contains("Закрытая заявка не меняется"), "{why}");
        assert!(why.contains("создайте новую"), "{why}");
    }

    let resolved = ticket_in(&mut d, Status::Resolved);
    let why = refusal(d.status(resolved, Status::Assigned, None, t(9)));
    assert!(why.contains("«Решена» → «Назначена»"), "{why}");
    assert!(why.contains("«Рассматривается», «Закрыта»"), "{why}");

    match d.status(999, Status::Assigned, None, t(9)) {
        Err(e @ WorkflowError::NotFound(999)) => {
            assert_eq!(e.to_string(), "заявка #999 не найдена")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn feedback_and_resolved_need_a_comment_and_so_does_closing_an_unsolved_ticket() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    for (to, needle) in [
        (
            Status::Feedback,
            "Для статуса «Обратная связь» нужен --comment",
        ),
        (Status::Resolved, "Для статуса «Решена» нужен --comment"),
        (
            Status::Closed,
            "чтобы закрыть её без решения, нужен --comment",
        ),
    ] {
        for comment in [None, Some("  \r\n  ")] {
            let why = refusal(d.status(id, to, comment, t(5)));
            assert!(why.contains(needle), "{why}");
        }
    }
    assert_eq!(d.row(id).status, Status::New);
    assert!(d.notifications(id).is_empty());
    assert_eq!(d.events(id).len(), 1, "only «created»");

    // A resolved ticket is closed without a comment.
    let id = ticket_in(&mut d, Status::Resolved);
    d.status(id, Status::Closed, None, t(10)).unwrap();
    assert_eq!(d.row(id).status, Status::Closed);
    // An in-work one changes without.
    let id = ticket_in(&mut d, Status::Assigned);
    d.status(id, Status::InProgress, None, t(10)).unwrap();
}

#[test]
fn taking_in_work_assigns_the_operator_and_back_to_new_unassigns() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let said = d.status(id, Status::Assigned, None, t(1)).unwrap();
    assert!(said.contains("назначена на Петров П.П."), "{said}");
    assert_eq!(d.row(id).assignee.as_deref(), Some(OP));
    let said = d.status(id, Status::New, None, t(2)).unwrap();
    assert!(
        said.contains("назначение снято (была на Петров П.П.)"),
        "{said}"
    );
    let row = d.row(id);
    assert_eq!((row.status, row.assignee), (Status::New, None));

    // An assignee set by `assign` stays when the ticket is taken in work.
    assign(&mut d.store, id, "Сидорова А.А.", OP, t(3)).unwrap();
    d.status(id, Status::InProgress, None, t(4)).unwrap();
    assert_eq!(d.row(id).assignee.as_deref(), Some("Сидорова А.А."));
}

#[test]
fn feedback_by_is_the_operator_while_waiting_for_the_applicant() {
    let mut d = Desk::new();
    let auto = d.ticket(Decision::Incomplete);
    assert_eq!(d.row(auto).feedback_by.as_deref(), Some("mailintake"));
    d.status(auto, Status::InProgress, None, t(1)).unwrap();
    assert_eq!(d.row(auto).feedback_by, None);
    d.status(auto, Status::Feedback, Some("Какой логин?"), t(2))
        .unwrap();
    assert_eq!(d.row(auto).feedback_by.as_deref(), Some(OP));
    d.status(auto, Status::Resolved, Some("Готово."), t(3))
        .unwrap();
    assert_eq!(d.row(auto).feedback_by, None);
}

// ---- reg. 4.6 ----------------------------------------------------------------------------

#[test]
fn accepted_at_is_set_the_first_time_the_ticket_is_taken_and_never_again() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    // Asking a question is not taking the ticket in work.
    d.status(id, Status::Feedback, Some("Логин?"), t(10))
        .unwrap();
    assert_eq!(d.row(id).accepted_at, None);
    d.status(id, Status::InProgress, None, t(20)).unwrap();
    let first = d.row(id).accepted_at.unwrap();
    assert_eq!(first, mailintake::store::ts(t(20)));
    d.status(id, Status::Feedback, Some("Ещё вопрос."), t(30))
        .unwrap();
    d.status(id, Status::Assigned, None, t(40)).unwrap();
    d.status(id, Status::InProgress, None, t(50)).unwrap();
    d.status(id, Status::Resolved, Some("Готово."), t(60))
        .unwrap();
    d.status(id, Status::InProgress, None, t(70)).unwrap();
    assert_eq!(d.row(id).accepted_at.unwrap(), first);
    let accepted: Vec<_> = d
        .events(id)
        .into_iter()
        .filter(|e| e.1 == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].0, OP);
    assert_eq!(
        accepted[0].2,
        "принята в работу (п. 4.6) в срок, до 27.11.2026 10:00"
    );

    // Through `assign`, from a ticket in «Обратная связь» made from an incomplete form; late.
    let late = at("2026-11-27T08:00:00Z"); // 11:00 Moscow, an hour after the due time
    let id = d.ticket(Decision::Incomplete);
    let said = assign(&mut d.store, id, "Сидорова А.А.", OP, late).unwrap();
    assert!(said.contains("с нарушением срока"), "{said}");
    let row = d.row(id);
    assert_eq!(row.status, Status::Assigned);
    assert_eq!(row.accepted_at.unwrap(), mailintake::store::ts(late));

    // Resolved at once: taken in work too. Closed as a duplicate: not.
    let id = d.ticket(Decision::Accept);
    d.status(id, Status::Resolved, Some("Решено по телефону."), t(5))
        .unwrap();
    assert_eq!(d.row(id).accepted_at.unwrap(), mailintake::store::ts(t(5)));
    let id = d.ticket(Decision::Accept);
    d.status(id, Status::Closed, Some("Дубликат заявки #1."), t(5))
        .unwrap();
    assert_eq!(d.row(id).accepted_at, None);
}

// ---- notifications -----------------------------------------------------------------------

#[test]
fn each_notifying_change_queues_exactly_one_mail_with_the_comment() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let auto_replies = d.outbox(id).len();
    assert_eq!(auto_replies, 1, "the «accepted» auto-reply");

    d.status(id, Status::Assigned, None, t(1)).unwrap();
    d.status(id, Status::InProgress, None, t(2)).unwrap();
    assert!(
        d.notifications(id).is_empty(),
        "no mail for assigned / in progress"
    );

    let said = d
        .status(
            id,
            Status::Feedback,
            Some("Уточните, пожалуйста, логин.\r\nИ время ошибки."),
            t(3),
        )
        .unwrap();
    assert!(said.contains("поставлено в очередь уведомление"), "{said}");
    let n = d.notifications(id);
    assert_eq!(n.len(), 1);
    let (kind, mail) = &n[0];
    assert_eq!(kind, "notify_feedback");
    assert_eq!(mail.to, SENDER);
    assert!(
        mail.text
            .contains("Уточните, пожалуйста, логин.\nИ время ошибки."),
        "{}",
        mail.text
    );
    assert!(
        mail.text.contains("Обратная связь"),
        "the ticket as it is after the change"
    );
    assert!(mail.text.contains(OP));
    // It answers the applicant's mail that made the ticket.
    assert_eq!(mail.in_reply_to.as_deref(), Some("msg1@mail.sev.gov.ru"));
    assert_eq!(
        mail.references.last().map(String::as_str),
        Some("msg1@mail.sev.gov.ru")
    );
    assert!(
        mail.references
            .iter()
            .any(|r| r.starts_with("mailintake.1.accept.")),
        "{:?}",
        mail.references
    );

    // The applicant answers; the solution answers that answer.
    d.followup(id);
    // The answer to an operator's question brings the ticket back to work (the store's follow-up
    // path); where it does not yet, the operator does it.
    if d.row(id).status == Status::Feedback {
        d.status(id, Status::InProgress, None, t(4)).unwrap();
    }
    d.status(id, Status::Resolved, Some("Логин разблокирован."), t(5))
        .unwrap();
    d.status(id, Status::Closed, None, t(6)).unwrap();
    let n = d.notifications(id);
    let kinds: Vec<&str> = n.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["notify_feedback", "notify_resolved", "notify_closed"]
    );
    let resolved = &n[1].1;
    assert!(
        resolved.text.contains("Логин разблокирован."),
        "{}",
        resolved.text
    );
    assert_eq!(
        resolved.in_reply_to.as_deref(),
        Some("msg2@mail.sev.gov.ru")
    );
    assert_eq!(
        resolved.references.first().map(String::as_str),
        Some("msg1@mail.sev.gov.ru"),
        "the thread starts with the first mail"
    );
    assert_eq!(
        resolved.references.last().map(String::as_str),
        Some("msg2@mail.sev.gov.ru")
    );
    assert!(
        resolved.references.contains(&n[0].1.message_id),
        "our question is in the thread"
    );
    let ids: std::collections::HashSet<_> = n.iter().map(|(_, m)| &m.message_id).collect();
    assert_eq!(ids.len(), 3, "unique Message-IDs");

    // Outbox rows: pending, due now, linked to the mail answered; each with a correspondence row.
    let rows: Vec<_> = d
        .outbox(id)
        .into_iter()
        .filter(|o| o.0.starts_with("notify_"))
        .collect();
    assert_eq!(rows[0].1, "pending");
    assert_eq!(rows[0].3, mailintake::store::ts(t(3)));
    assert!(rows[0].4.is_some());
    let corr = d.store.correspondence(id).unwrap();
    let out: Vec<_> = corr
        .iter()
        .filter(|c| c.direction == "out" && c.summary.starts_with("уведомление"))
        .collect();
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].reply_state.as_deref(), Some("pending"));
    assert_eq!(
        out[0].reply_message_id.as_deref(),
        Some(n[0].1.message_id.as_str())
    );
    assert!(
        out[1].summary.contains("notify_resolved") && out[1].summary.contains("«Решена»"),
        "{}",
        out[1].summary
    );
}

#[test]
fn notifications_are_not_auto_replies_and_ignore_the_daily_limit() {
    let mut d = Desk::new();
    // The applicant has used up today's auto-replies.
    d.uid += 1;
    let v = d.verdict(Decision::Accept, None);
    let id = match d.record(&v, 0, true) {
        Outcome::NewTicket { ticket, .. } => ticket,
        o => panic!("{o:?}"),
    };
    assert_eq!(d.outbox(id)[0].1, "suppressed");
    let counts_before: i64 = d
        .store
        .conn()
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM reply_counts",
            [],
            |r| r.get(0),
        )
        .unwrap();
    d.status(id, Status::Feedback, Some("Логин?"), t(1))
        .unwrap();
    let n = d.outbox(id);
    assert_eq!(n.len(), 2);
    assert_eq!(
        (n[1].0.as_str(), n[1].1.as_str()),
        ("notify_feedback", "pending")
    );
    let counts_after: i64 = d
        .store
        .conn()
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM reply_counts",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(counts_before, counts_after);
    // The suppressed auto-reply never went out: it is not in the thread.
    let mail: OutgoingMail = serde_json::from_str(&n[1].2).unwrap();
    assert_eq!(mail.references, vec!["msg1@mail.sev.gov.ru".to_string()]);
    assert_eq!(mail.auto_submitted, AutoSubmitted::AutoGenerated);
}

#[test]
fn a_failed_queueing_leaves_the_ticket_unchanged() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let mut same_id = |req: NotifyRequest<'_>| {
        let mut m = simple_notify(req);
        m.message_id = "always-the-same@sevmiac.ru".into();
        m
    };
    set_status(
        &mut d.store,
        id,
        Status::Feedback,
        Some("Логин?"),
        OP,
        t(1),
        &mut same_id,
    )
    .unwrap();
    d.status(id, Status::InProgress, None, t(2)).unwrap();
    let events = d.events(id).len();
    let r = set_status(
        &mut d.store,
        id,
        Status::Resolved,
        Some("Готово."),
        OP,
        t(3),
        &mut same_id,
    );
    assert!(matches!(r, Err(WorkflowError::Store(_))), "{r:?}");
    let row = d.row(id);
    assert_eq!(
        row.status,
        Status::InProgress,
        "rolled back with the outbox insert"
    );
    assert_eq!(d.events(id).len(), events);
    assert_eq!(d.notifications(id).len(), 1);
}

#[test]
fn real_templates_render_the_notifications() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let tpl = templates();
    let mut notify = |req: NotifyRequest<'_>| {
        render_notification(
            &tpl,
            "help@sevmiac.ru",
            vec!["help@sevmiac.ru".into()],
            &req,
        )
    };
    set_status(
        &mut d.store,
        id,
        Status::Feedback,
        Some("Уточните, пожалуйста, логин пользователя."),
        OP,
        t(1),
        &mut notify,
    )
    .unwrap();
    d.status(id, Status::InProgress, None, t(2)).unwrap();
    set_status(
        &mut d.store,
        id,
        Status::Resolved,
        Some("Настроен шаблон счета."),
        OP,
        t(3),
        &mut notify,
    )
    .unwrap();
    set_status(
        &mut d.store,
        id,
        Status::Closed,
        None,
        OP,
        t(4),
        &mut notify,
    )
    .unwrap();
    let n = d.notifications(id);
    assert_eq!(n.len(), 3);

    let fb = &n[0].1;
    for needle in [
        "По заявке № 1 «Не формируется счет-реестр» специалисту службы технической поддержки нужны уточнения",
        "Статус заявки: «Обратная связь»",
        "Вопрос специалиста:\nУточните, пожалуйста, логин пользователя.",
        "Специалист: Петров П.П.",
        "«[Заявка #1]»",
    ] {
        assert!(fb.text.contains(needle), "missing {needle:?} in:\n{}", fb.text);
    }
    assert_eq!(fb.subject, "[Заявка #1] Не формируется счет-реестр");
    assert_eq!(fb.to, SENDER);
    assert_eq!(fb.auto_submitted, AutoSubmitted::AutoGenerated);
    assert_eq!(fb.bcc, vec!["help@sevmiac.ru".to_string()]);
    assert_eq!(fb.in_reply_to.as_deref(), Some("msg1@mail.sev.gov.ru"));
    assert!(
        fb.message_id.starts_with("mailintake.1.notify_feedback.e"),
        "{}",
        fb.message_id
    );
    assert!(fb.message_id.ends_with("@sevmiac.ru"));
    // Its copy in our mailbox is recognised as our own, and an answer to it finds the ticket.
    let rules = RuleSet::load(&root().join("rules")).unwrap();
    assert_eq!(rules.followup.ticket_in_message_id(&fb.message_id), Some(1));

    let res = &n[1].1;
    assert!(
        res.text.contains("решена. Статус заявки: «Решена»"),
        "{}",
        res.text
    );
    assert!(
        res.text
            .contains("Комментарий специалиста:\nНастроен шаблон счета."),
        "{}",
        res.text
    );
    let closed = &n[2].1;
    assert!(
        closed.text.contains("закрыта. Статус заявки: «Закрыта»"),
        "{}",
        closed.text
    );
    assert!(
        !closed.text.contains("Комментарий специалиста"),
        "no comment, no paragraph:\n{}",
        closed.text
    );

    // The template itself, directly.
    let row = d.row(id);
    let mail = render_notification(
        &tpl,
        "help@sevmiac.ru",
        vec![],
        &NotifyRequest {
            kind: ReplyKind::NotifyFeedback,
            ticket: &row,
            comment: Some("Пришлите скриншот."),
            operator: OP,
            in_reply_to: None,
            references: vec![],
            nonce: "x1".into(),
        },
    );
    assert!(mail.text.contains("Пришлите скриншот."), "{}", mail.text);
    assert_eq!(
        mail.message_id,
        format!("mailintake.{id}.notify_feedback.x1@sevmiac.ru")
    );
}

// ---- assign ------------------------------------------------------------------------------

#[test]
fn assign_takes_new_tickets_and_hands_over_tickets_in_work() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let said = assign(&mut d.store, id, "  Сидорова  А.А. ", OP, t(1)).unwrap();
    assert!(said.contains("статус: «Новая» → «Назначена»"), "{said}");
    assert!(said.contains("назначена на Сидорова А.А."), "{said}");
    let row = d.row(id);
    assert_eq!(
        (row.status, row.assignee.as_deref()),
        (Status::Assigned, Some("Сидорова А.А."))
    );
    assert_eq!(row.accepted_at.unwrap(), mailintake::store::ts(t(1)));

    assert_eq!(
        refusal(assign(&mut d.store, id, "Сидорова А.А.", OP, t(2))),
        format!("Заявка #{id} уже назначена на Сидорова А.А.")
    );

    d.status(id, Status::InProgress, None, t(3)).unwrap();
    let said = assign(&mut d.store, id, "Кузнецов К.К.", OP, t(4)).unwrap();
    assert_eq!(
        said,
        format!("Заявка #{id}: назначена на Кузнецов К.К. (была на Сидорова А.А.).")
    );
    let row = d.row(id);
    assert_eq!(
        row.status,
        Status::InProgress,
        "handing over keeps the status"
    );
    assert_eq!(row.accepted_at.unwrap(), mailintake::store::ts(t(1)));

    d.status(id, Status::Resolved, Some("Готово."), t(5))
        .unwrap();
    let why = refusal(assign(&mut d.store, id, "Иванов И.И.", OP, t(6)));
    assert!(why.contains("решена"), "{why}");
    d.status(id, Status::Closed, None, t(7)).unwrap();
    let why = refusal(assign(&mut d.store, id, "Иванов И.И.", OP, t(8)));
    assert!(
        why.contains("закрыта") && why.contains("создайте новую"),
        "{why}"
    );

    assert!(matches!(
        assign(&mut d.store, 77, "Иванов И.И.", OP, t(8)),
        Err(WorkflowError::NotFound(77))
    ));
    let other = d.ticket(Decision::Accept);
    assert!(refusal(assign(&mut d.store, other, " ", OP, t(8))).contains("не указано"));
    assert!(
        refusal(assign(&mut d.store, other, "Иванов", "mailintake", t(8)))
            .contains("зарезервировано")
    );
    assert_eq!(d.row(other).status, Status::New);
}

// ---- priority ----------------------------------------------------------------------------

#[test]
fn priority_may_be_lowered_but_not_raised_above_the_impact() {
    let rules = priority_rules();
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    d.store
        .conn()
        .execute(
            "UPDATE tickets SET priority = 'high', impact = 'minor' WHERE id = ?1",
            [id],
        )
        .unwrap();

    let why = refusal(set_priority(
        &mut d.store,
        id,
        Priority::Urgent,
        None,
        &rules,
        OP,
        t(1),
    ));
    assert_eq!(
        why,
        "Приоритет «Неотложный» не допускается при влиянии «Малое» (допустимо: Высокий, Обычный), п. 4.10."
    );
    // Lowering is always allowed, even below what the impact lists.
    let said = set_priority(&mut d.store, id, Priority::Low, None, &rules, OP, t(2)).unwrap();
    assert_eq!(
        said,
        format!("Заявка #{id}: приоритет: «Высокий» → «Низкий».")
    );
    // Back up within what the impact allows.
    set_priority(&mut d.store, id, Priority::High, None, &rules, OP, t(3)).unwrap();
    assert_eq!(d.row(id).priority, "high");

    // The impact may only go down.
    let why = refusal(set_priority(
        &mut d.store,
        id,
        Priority::Urgent,
        Some(Impact::Critical),
        &rules,
        OP,
        t(4),
    ));
    assert!(
        why.contains("Влияние «Критический» выше текущего «Малое»"),
        "{why}"
    );
    assert!(
        why.contains("может только понизить влияние (п. 4.9)"),
        "{why}"
    );
    // Lowered, it also bounds the priority: «Настройка» allows at most «Обычный».
    let why = refusal(set_priority(
        &mut d.store,
        id,
        Priority::High,
        Some(Impact::Setting),
        &rules,
        OP,
        t(5),
    ));
    assert_eq!(
        why,
        "Приоритет «Высокий» не допускается при влиянии «Настройка» (допустимо: Обычный, Низкий), п. 4.10."
    );
    let said = set_priority(
        &mut d.store,
        id,
        Priority::Normal,
        Some(Impact::Setting),
        &rules,
        OP,
        t(6),
    )
    .unwrap();
    assert_eq!(
        said,
        format!("Заявка #{id}: приоритет: «Высокий» → «Обычный»; влияние: «Малое» → «Настройка».")
    );
    let row = d.row(id);
    assert_eq!(
        (row.priority.as_str(), row.impact.as_deref()),
        ("normal", Some("setting"))
    );

    // Nothing to change.
    let why = refusal(set_priority(
        &mut d.store,
        id,
        Priority::Normal,
        None,
        &rules,
        OP,
        t(7),
    ));
    assert_eq!(
        why,
        format!("У заявки #{id} уже приоритет «Обычный», влияние «Настройка».")
    );

    let events: Vec<_> = d
        .events(id)
        .into_iter()
        .filter(|e| e.1 == "priority")
        .collect();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.0 == OP));
    assert_eq!(
        events[2].2,
        "приоритет: «Высокий» → «Обычный»; влияние: «Малое» → «Настройка»"
    );
}

#[test]
fn without_an_impact_any_priority_is_allowed_and_an_impact_may_be_set() {
    let rules = priority_rules();
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    set_priority(&mut d.store, id, Priority::Urgent, None, &rules, OP, t(1)).unwrap();
    assert_eq!(d.row(id).priority, "urgent");
    let why = refusal(set_priority(
        &mut d.store,
        id,
        Priority::Urgent,
        Some(Impact::Major),
        &rules,
        OP,
        t(2),
    ));
    assert!(
        why.contains("не допускается при влиянии «Большое» (допустимо: Высокий)"),
        "{why}"
    );
    let said = set_priority(
        &mut d.store,
        id,
        Priority::High,
        Some(Impact::Major),
        &rules,
        OP,
        t(3),
    )
    .unwrap();
    assert!(said.contains("влияние: не указано → «Большое»"), "{said}");
    // Same priority, lower impact: only the impact changes.
    let said = set_priority(
        &mut d.store,
        id,
        Priority::High,
        Some(Impact::Minor),
        &rules,
        OP,
        t(4),
    )
    .unwrap();
    assert_eq!(said, format!("Заявка #{id}: влияние: «Большое» → «Малое»."));

    let closed = ticket_in(&mut d, Status::Closed);
    let why = refusal(set_priority(
        &mut d.store,
        closed,
        Priority::Low,
        None,
        &rules,
        OP,
        t(5),
    ));
    assert!(why.contains("Закрытая заявка не меняется"), "{why}");
}

#[test]
fn priorities_and_statuses_are_parsed_as_operators_type_them() {
    let rules = priority_rules();
    assert_eq!(workflow::parse_priority(&rules, "high"), Ok(Priority::High));
    assert_eq!(
        workflow::parse_priority(&rules, "Неотложный"),
        Ok(Priority::Urgent)
    );
    assert_eq!(workflow::parse_priority(&rules, "4"), Ok(Priority::Low));
    assert!(workflow::parse_priority(&rules, "мгновенный")
        .unwrap_err()
        .contains("Низкий"));
    assert_eq!(workflow::parse_impact(&rules, "Малое"), Ok(Impact::Minor));
    assert_eq!(
        workflow::parse_impact(&rules, "blocker"),
        Ok(Impact::Blocker)
    );
    assert!(workflow::parse_impact(&rules, "огромное").is_err());
    assert_eq!(workflow::parse_status("Решена"), Ok(Status::Resolved));
    assert_eq!(workflow::parse_status("closed"), Ok(Status::Closed));
}

// ---- history -----------------------------------------------------------------------------

#[test]
fn every_change_is_in_the_history_with_who_and_what() {
    let rules = priority_rules();
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    assign(&mut d.store, id, "Сидорова А.А.", "Иванов И.И.", t(1)).unwrap();
    set_status(
        &mut d.store,
        id,
        Status::InProgress,
        None,
        "Сидорова А.А.",
        t(2),
        &mut simple_notify,
    )
    .unwrap();
    set_priority(
        &mut d.store,
        id,
        Priority::Low,
        None,
        &rules,
        "Сидорова А.А.",
        t(3),
    )
    .unwrap();
    set_status(
        &mut d.store,
        id,
        Status::Feedback,
        Some("Логин?"),
        "Сидорова А.А.",
        t(4),
        &mut simple_notify,
    )
    .unwrap();
    set_status(
        &mut d.store,
        id,
        Status::Resolved,
        Some("Готово."),
        "Сидорова А.А.",
        t(5),
        &mut simple_notify,
    )
    .unwrap();

    let ev: Vec<(String, String, String)> = d
        .events(id)
        .into_iter()
        .filter(|e| e.0 != "mailintake")
        .collect();
    let s = |a: &str, k: &str, det: &str| (a.to_string(), k.to_string(), det.to_string());
    assert_eq!(
        ev,
        vec![
            s("Иванов И.И.", "status", "статус: «Новая» → «Назначена»"),
            s("Иванов И.И.", "assigned", "назначена на Сидорова А.А."),
            s(
                "Иванов И.И.",
                "accepted",
                "принята в работу (п. 4.6) в срок, до 27.11.2026 10:00"
            ),
            s(
                "Сидорова А.А.",
                "status",
                "статус: «Назначена» → «Рассматривается»"
            ),
            s(
                "Сидорова А.А.",
                "priority",
                "приоритет: «Обычный» → «Низкий»"
            ),
            s(
                "Сидорова А.А.",
                "status",
                "статус: «Рассматривается» → «Обратная связь»; вопрос заявителю: Логин?"
            ),
            s(
                "Сидорова А.А.",
                "status",
                "статус: «Обратная связь» → «Решена»; решение: Готово."
            ),
        ]
    );
    let times: Vec<String> = d
        .store
        .events(id)
        .unwrap()
        .into_iter()
        .map(|e| e.at)
        .collect();
    assert!(times.contains(&mailintake::store::ts(t(4))), "{times:?}");
}

// ---- the applicant's answer (store follow-up path) ---------------------------------------

#[test]
fn an_answer_to_an_operators_question_brings_the_ticket_back_to_work() {
    let mut d = Desk::new();
    // Asked before it was taken in work: the answer takes it (reg. 4.6: feedback → in_progress).
    let id = d.ticket(Decision::Accept);
    d.status(id, Status::Feedback, Some("Логин?"), t(1))
        .unwrap();
    assert!(acceptance::feedback_answered(d.store.conn(), id, 1, t(2)).unwrap());
    let row = d.row(id);
    assert_eq!(row.status, Status::InProgress);
    assert_eq!(row.feedback_by, None);
    assert_eq!(row.accepted_at.unwrap(), mailintake::store::ts(t(2)));
    assert_eq!(row.updated_at, mailintake::store::ts(t(2)));
    let ev = d.events(id);
    let n = ev.len();
    assert_eq!(
        ev[n - 2],
        (
            "mailintake".to_string(),
            "status".to_string(),
            "статус: «Обратная связь» → «Рассматривается»: получен ответ заявителя (письмо #1) на вопрос специалиста Петров П.П.".to_string()
        )
    );
    assert_eq!(ev[n - 1].1, "accepted");
    // Only once.
    assert!(!acceptance::feedback_answered(d.store.conn(), id, 1, t(3)).unwrap());

    // Accepted before: accepted_at stays.
    d.status(id, Status::Feedback, Some("Ещё вопрос."), t(4))
        .unwrap();
    assert!(acceptance::feedback_answered(d.store.conn(), id, 1, t(5)).unwrap());
    assert_eq!(d.row(id).accepted_at.unwrap(), mailintake::store::ts(t(2)));

    // An incomplete form («Обратная связь» by mailintake) is left to the completion rule.
    let auto = d.ticket(Decision::Incomplete);
    assert!(!acceptance::feedback_answered(d.store.conn(), auto, 2, t(6)).unwrap());
    assert_eq!(d.row(auto).status, Status::Feedback);
    // Other statuses are not touched.
    let new = d.ticket(Decision::Accept);
    assert!(!acceptance::feedback_answered(d.store.conn(), new, 3, t(6)).unwrap());
    assert!(!acceptance::feedback_answered(d.store.conn(), 999, 3, t(6)).unwrap());
}

/// The whole path through `Store::record_mail`: enabled once `store::add_followup` calls
/// `acceptance::feedback_answered` (see the workflow report).
#[test]
fn a_followup_mail_answers_the_operators_question() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    d.status(id, Status::InProgress, None, t(1)).unwrap();
    d.status(id, Status::Feedback, Some("Логин?"), t(2))
        .unwrap();
    d.followup(id);
    let row = d.row(id);
    assert_eq!(
        row.status,
        Status::InProgress,
        "not «Новая»: the form was complete"
    );
    assert_eq!(row.feedback_by, None);
    // An incomplete-form ticket still completes to «Новая».
    let auto = d.ticket(Decision::Incomplete);
    d.uid += 1;
    let v = d.verdict(Decision::Followup, Some(auto as u64));
    assert_eq!(
        d.record(&v, 40, true),
        Outcome::Followup {
            ticket: auto,
            completed: true
        }
    );
    assert_eq!(d.row(auto).status, Status::New);
}

// ---- reply to the applicant --------------------------------------------------------------

/// Outbox rows of kind `reply` of the ticket, as mails.
fn replies(d: &Desk, id: i64) -> Vec<OutgoingMail> {
    d.outbox(id)
        .into_iter()
        .filter(|o| o.0 == "reply")
        .map(|o| serde_json::from_str(&o.2).unwrap())
        .collect()
}

#[test]
fn a_reply_goes_to_the_applicant_in_the_thread_and_keeps_the_status() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    d.status(id, Status::Assigned, None, t(1)).unwrap();
    let before = d.row(id);
    let tpl = templates();
    let mut notify = |req: NotifyRequest<'_>| {
        render_notification(
            &tpl,
            "help@sevmiac.ru",
            vec!["help@sevmiac.ru".into()],
            &req,
        )
    };
    let said = workflow::reply(
        &mut d.store,
        id,
        "\r\nДобрый день! Ошибка воспроизведена,\r\nисправление будет завтра.  \n\n",
        "  Иванов\tИ.И. ",
        t(2),
        &mut notify,
    )
    .unwrap();
    assert!(
        said.contains("ответ заявителю o.petrenko@sev.gov.ru поставлен в очередь"),
        "{said}"
    );

    let r = replies(&d, id);
    assert_eq!(r.len(), 1);
    let m = &r[0];
    assert_eq!(m.to, SENDER);
    assert_eq!(m.subject, "[Заявка #1] Не формируется счет-реестр");
    for needle in [
        "по заявке № 1 «Не формируется счет-реестр».\n\nСтатус заявки: «Назначена».",
        "\n\nДобрый день! Ошибка воспроизведена,\nисправление будет завтра.\n\n",
        "Специалист: Иванов И.И.",
        "«[Заявка #1]»",
        "8 (8692) 41-72-22",
    ] {
        assert!(
            m.text.contains(needle),
            "missing {needle:?} in:\n{}",
            m.text
        );
    }
    // A person's letter: no Auto-Submitted, a real envelope sender (a bounce comes back).
    assert_eq!(m.auto_submitted, AutoSubmitted::No);
    assert!(!m.null_sender);
    assert_eq!(m.bcc, vec!["help@sevmiac.ru".to_string()]);
    // Threaded like the notifications: answers the applicant's mail, our confirmation in References.
    assert_eq!(m.in_reply_to.as_deref(), Some("msg1@mail.sev.gov.ru"));
    assert_eq!(
        m.references.last().map(String::as_str),
        Some("msg1@mail.sev.gov.ru")
    );
    assert!(
        m.references
            .iter()
            .any(|r| r.starts_with("mailintake.1.accept.")),
        "{:?}",
        m.references
    );
    assert!(
        m.message_id.starts_with("mailintake.1.reply.e"),
        "{}",
        m.message_id
    );
    // An answer to it finds the ticket.
    let rules = RuleSet::load(&root().join("rules")).unwrap();
    assert_eq!(rules.followup.ticket_in_message_id(&m.message_id), Some(1));

    // Pending, due now, linked to the applicant's mail; a correspondence row.
    let row = d.outbox(id).into_iter().find(|o| o.0 == "reply").unwrap();
    assert_eq!(row.1, "pending");
    assert_eq!(row.3, mailintake::store::ts(t(2)));
    assert!(row.4.is_some());
    let corr = d.store.correspondence(id).unwrap();
    let out = corr
        .iter()
        .find(|c| c.reply_message_id.as_deref() == Some(m.message_id.as_str()))
        .expect("a correspondence row");
    assert_eq!(out.direction, "out");
    assert!(
        out.summary
            .starts_with("ответ заявителю (специалист Иванов И.И.)"),
        "{}",
        out.summary
    );

    // The event by the actor; the ticket itself is unchanged.
    let last = d.events(id).pop().unwrap();
    assert_eq!(
        last,
        (
            "Иванов И.И.".to_string(),
            "reply".to_string(),
            "ответ заявителю: Добрый день! Ошибка воспроизведена,\nисправление будет завтра."
                .to_string()
        )
    );
    let after = d.row(id);
    assert_eq!(
        (
            after.status,
            after.assignee,
            after.accepted_at,
            after.priority
        ),
        (
            before.status,
            before.assignee,
            before.accepted_at,
            before.priority
        )
    );
}

#[test]
fn a_reply_ignores_the_daily_limit_of_auto_replies() {
    let mut d = Desk::new();
    d.uid += 1;
    let v = d.verdict(Decision::Accept, None);
    let id = match d.record(&v, 0, true) {
        Outcome::NewTicket { ticket, .. } => ticket,
        o => panic!("{o:?}"),
    };
    assert_eq!(d.outbox(id)[0].1, "suppressed", "the limit is used up");
    workflow::reply(&mut d.store, id, "Ответ.", OP, t(1), &mut simple_notify).unwrap();
    let rows = d.outbox(id);
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("reply", "pending")
    );
}

#[test]
fn a_reply_is_refused_for_a_closed_ticket_an_empty_or_long_text_and_no_address() {
    let mut d = Desk::new();
    let closed = ticket_in(&mut d, Status::Closed);
    let open = ticket_in(&mut d, Status::InProgress);
    let count = |d: &Desk| -> (usize, usize) {
        let o: usize = [closed, open].iter().map(|i| d.outbox(*i).len()).sum();
        let e: usize = [closed, open].iter().map(|i| d.events(*i).len()).sum();
        (o, e)
    };
    let before = count(&d);
    let r = |d: &mut Desk, id: i64, text: &str| {
        refusal(workflow::reply(
            &mut d.store,
            id,
            text,
            OP,
            t(10),
            &mut simple_notify,
        ))
    };
    let why = r(&mut d, closed, "Ответ.");
    assert!(why.contains(&format!("Заявка #{closed} закрыта")), "{why}");
    let why = r(&mut d, open, " \r\n\t ");
    assert!(why.contains("Текст ответа заявителю пуст"), "{why}");
    let long = "я".repeat(workflow::MAX_COMMENT_CHARS + 1);
    let why = r(&mut d, open, &long);
    assert!(
        why.contains("слишком длинный") && why.contains("10000"),
        "{why}"
    );
    let why = refusal(workflow::reply(
        &mut d.store,
        open,
        "Ответ.",
        " ",
        t(10),
        &mut simple_notify,
    ));
    assert!(why.contains("не указано"), "{why}");
    assert!(matches!(
        workflow::reply(&mut d.store, 999, "Ответ.", OP, t(10), &mut simple_notify),
        Err(WorkflowError::NotFound(999))
    ));
    // The applicant's address is unknown (a ticket from a mail without a readable sender).
    d.store
        .conn()
        .execute("UPDATE tickets SET sender = '' WHERE id = ?1", [open])
        .unwrap();
    let why = r(&mut d, open, "Ответ.");
    assert!(why.contains("неизвестен адрес заявителя"), "{why}");
    assert_eq!(count(&d), before, "a refusal writes nothing");
}

/// `mailintake ticket reply ID --text TEXT --as NAME --config FILE`: the same desk function.
#[test]
fn the_cli_replies_and_says_why_it_refuses() {
    let mut d = Desk::new();
    let id = d.ticket(Decision::Accept);
    let closed = ticket_in(&mut d, Status::Closed);
    let dir = d._dir.path();
    let config = dir.join("mailintake.toml");
    std::fs::write(
        &config,
        format!(
            "[imap]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nusername = \"help@sevmiac.ru\"\npassword_env = \"MAILINTAKE_IMAP_PASSWORD\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nfrom = \"help@sevmiac.ru\"\n\n\
             [store]\npath = \"{}\"\n\n[rules]\ndir = \"{}\"\n",
            dir.join("s.db").display(),
            root().join("rules").display()
        ),
    )
    .unwrap();
    let run = |id: i64, text: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mailintake"))
            .args([
                "ticket",
                "reply",
                &id.to_string(),
                "--text",
                text,
                "--as",
                "ivanov",
                "--config",
            ])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = run(id, "Исправление будет завтра.");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "Заявка #{id}: ответ заявителю {SENDER} поставлен в очередь"
        )),
        "{said}"
    );
    let r = replies(&d, id);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].to, SENDER);
    assert!(
        r[0].text.contains("Исправление будет завтра."),
        "{}",
        r[0].text
    );
    assert!(r[0].text.contains("Специалист: ivanov"), "{}", r[0].text);
    assert_eq!(d.events(id).pop().unwrap().0, "ivanov");

    let out = run(closed, "Ещё ответ.");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("Заявка #{closed} закрыта")), "{err}");
    assert!(replies(&d, closed).is_empty());
}
