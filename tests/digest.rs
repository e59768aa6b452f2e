//! The operators' digest: sections and counts, patient masking, "since the last digest",
//! deadline order, HTML that Outlook can show and data cannot break, and the send schedule.
//! No servers: a store in a temp folder, tickets recorded as the daemon records them.

use std::path::Path;

use jiff::civil::{time, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use mailintake::desk::calendar::Calendar;
use mailintake::desk::digest::{self, due_slot, mask_card, mask_name, Digest};
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};
use mailintake::store::{Incoming, Outcome, ReplyRequest, Store};
use mailintake::verdict::{
    Applicant, AttachmentInfo, AttachmentKind, Code, Decision, FormFields, Impact, Patient,
    Priority, Reason, User, Verdict,
};

fn calendar() -> Calendar {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/calendar.toml");
    match Calendar::load(&path) {
        Ok(c) => c,
        Err(e) => panic!("shipped calendar does not load: {e}"),
    }
}

/// A local wall-clock time in Sevastopol as an instant.
fn at(local: &str) -> Timestamp {
    let dt: DateTime = local.parse().unwrap();
    dt.to_zoned(TimeZone::get("Europe/Simferopol").unwrap())
        .unwrap()
        .timestamp()
}

fn form() -> FormFields {
    FormFields {
        applicant: Applicant {
            full_name: Some("Мельник Ирина Петровна".into()),
            position: Some("старшая медицинская сестра".into()),
            organization: Some("ГБУЗС «Городская больница №4»".into()),
            phone: Some("+79787001122".into()),
        },
        user: User {
            full_name: Some("Руденко Анна Викторовна".into()),
            login: Some("rudenko_av".into()),
        },
        patient: Patient {
            name: Some("Сидоров С.С.".into()),
            card: Some("123456".into()),
        },
        steps: Some("Поликлиника -> Талон амбулаторного пациента -> Закрыть случай".into()),
        error_text: Some("Талон не может быть закрыт: не заполнен основной диагноз".into()),
    }
}

fn verdict(decision: Decision, subject: &str) -> Verdict {
    let reasons = match decision {
        Decision::Incomplete => vec![Reason::new(Code::FieldsMissing, "нет телефона")],
        Decision::Reject => vec![Reason::new(Code::TooLarge, "больше 10 МБ")],
        Decision::Filter => vec![Reason::new(Code::SenderDomain, "чужой домен")],
        Decision::Ignore => vec![Reason::new(Code::Automatic, "автоответ")],
        _ => vec![],
    };
    let mut fields = form();
    if decision == Decision::Incomplete {
        fields.applicant.phone = None;
    }
    Verdict {
        decision,
        reasons,
        warnings: vec![],
        missing: vec![],
        followup_of: None,
        sender: "melnik.ip@sev.gov.ru".into(),
        subject: subject.into(),
        message_id: Some(format!("{}@sev.gov.ru", subject.len())),
        priority: Priority::High,
        impact: Some(Impact::Minor),
        fields,
        attachments: vec![AttachmentInfo {
            name: "screen.png".into(),
            kind: AttachmentKind::Image,
            bytes: 12 * 1024,
            content_type: "image/png".into(),
            inline: false,
            entries: vec![],
        }],
        auth: None,
    }
}

fn render(req: &ReplyRequest<'_>) -> OutgoingMail {
    OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@sevmiac.ru",
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

/// A store and the calendar, with mail recorded the way the daemon records it.
struct Desk {
    _dir: tempfile::TempDir,
    store: Store,
    cal: Calendar,
    uid: u32,
}

impl Desk {
    fn new() -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.db")).unwrap();
        Desk {
            _dir: dir,
            store,
            cal: calendar(),
            uid: 0,
        }
    }

    /// Record `v` as arrived (and processed) at local time `arrived`; the ticket number, if any.
    fn mail(&mut self, v: &Verdict, arrived: &str) -> Option<i64> {
        self.uid += 1;
        let arrived = at(arrived);
        let raw = format!("mail {}", self.uid).into_bytes();
        let due = mailintake::daemon::rfc3339(&self.cal.accept_due(arrived));
        let incoming = Incoming {
            mailbox: "INBOX",
            uidvalidity: 1,
            uid: self.uid,
            arrived_at: arrived,
            raw: &raw,
            headers_only: false,
            size: raw.len() as u64,
            sha256: format!("sha-{}", self.uid),
            accept_due: Some(due),
        };
        let (_, outcome) = self
            .store
            .record_mail(&incoming, v, false, 40, arrived, &mut render, &|_| true)
            .unwrap();
        match outcome {
            Outcome::NewTicket { ticket, .. } => Some(ticket),
            _ => None,
        }
    }

    fn build(&self, now: &str, mask: bool) -> Digest {
        digest::build(&self.store, &self.cal, at(now), mask).unwrap()
    }
}

fn digest_mail() -> OutgoingMail {
    OutgoingMail {
        message_id: "mailintake.digest.x@sevmiac.ru".into(),
        to: String::new(),
        subject: "Сводка".into(),
        text: "text".into(),
        html: Some("<p>html</p>".into()),
        in_reply_to: None,
        references: vec![],
        auto_submitted: AutoSubmitted::AutoGenerated,
        null_sender: false,
        bcc: vec![],
    }
}

/// The text between a section title and the next section title (or the end).
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let start = text
        .find(title)
        .unwrap_or_else(|| panic!("no section «{title}» in:\n{text}"));
    let rest = &text[start..];
    let titles = [
        "Новые заявки (",
        "Ожидают ответа заявителя",
        "Сроки принятия в работу",
        "Отклонённые, отфильтрованные",
    ];
    let end = titles
        .iter()
        .filter_map(|t| rest[title.len()..].find(t).map(|i| i + title.len()))
        .min()
        .unwrap_or(rest.len());
    &rest[..end]
}

/// A Thursday morning after two working days of mail.
fn busy_week() -> Desk {
    let mut desk = Desk::new();
    // Tue 10:00 → due Wed 09:00; Wed 09:00 → due Wed 17:00; Wed 14:00 (feedback) → due Thu 13:00;
    // Thu 08:10 → due Thu 16:10.
    assert_eq!(
        desk.mail(
            &verdict(Decision::Accept, "Не формируется счет-реестр"),
            "2026-11-24T10:00"
        ),
        Some(1)
    );
    assert_eq!(
        desk.mail(
            &verdict(Decision::Accept, "Не закрывается талон"),
            "2026-11-25T09:00"
        ),
        Some(2)
    );
    assert_eq!(
        desk.mail(
            &verdict(Decision::Incomplete, "Ошибка подписи"),
            "2026-11-25T14:00"
        ),
        Some(3)
    );
    assert_eq!(
        desk.mail(
            &verdict(Decision::Accept, "Неудобство в расписании"),
            "2026-11-26T08:10"
        ),
        Some(4)
    );
    desk.mail(
        &verdict(Decision::Reject, "Большой архив"),
        "2026-11-25T10:00",
    );
    desk.mail(&verdict(Decision::Filter, "Реклама"), "2026-11-25T11:00");
    desk.mail(
        &verdict(Decision::Filter, "Ещё реклама"),
        "2026-11-25T12:00",
    );
    desk.mail(
        &verdict(Decision::Ignore, "Автоответ: в отпуске"),
        "2026-11-25T12:30",
    );
    desk
}

#[test]
fn sections_are_present_with_the_right_counts() {
    let desk = busy_week();
    let d = desk.build("2026-11-26T08:30", true);
    assert_eq!(d.since, None);
    assert_eq!(
        (d.new_tickets, d.feedback, d.due_today, d.overdue, d.refused),
        (4, 1, 2, 2, 4)
    );
    assert_eq!(
        d.subject,
        "Сводка СТП на 26.11.2026 08:30: новых 4, просрочено 2"
    );

    let t = &d.text;
    let new = section(t, "Новые заявки (4)");
    // The parsed form of each new ticket.
    for want in [
        "#1 Не формируется счет-реестр",
        "Мельник Ирина Петровна, старшая медицинская сестра",
        "МО: ГБУЗС «Городская больница №4»",
        "Телефон: +79787001122",
        "Руденко Анна Викторовна, логин rudenko_av",
        "Поликлиника -> Талон амбулаторного пациента -> Закрыть случай",
        "Талон не может быть закрыт: не заполнен основной диагноз",
        "Приоритет: Высокий, влияние: Малое",
        "Вложения: screen.png (изображение, 12 КБ)",
        "Поступила: 24.11.2026 10:00",
        "Принять в работу до: 25.11.2026 09:00",
    ] {
        assert!(new.contains(want), "«{want}» missing from:\n{new}");
    }

    // Feedback: since Wed 14:00 — 3 working hours that day and 30 minutes this morning.
    let fb = section(t, "Ожидают ответа заявителя — Обратная связь (1)");
    assert!(fb.contains("#3 Ошибка подписи"), "{fb}");
    assert!(fb.contains("с 25.11.2026 14:00, ждёт 3 ч 30 мин"), "{fb}");

    let refused = section(
        t,
        "Отклонённые, отфильтрованные и проигнорированные письма (4)",
    );
    for want in [
        "Отклонены (отправителю ответили, почему): 1",
        "вложения больше 10 МБ (п. 3.5) (too_large): 1",
        "Отфильтрованы (без ответа): 2",
        "(sender_domain): 2",
        "Проигнорированы (автоматические, без ответа): 1",
        "(automatic): 1",
    ] {
        assert!(refused.contains(want), "«{want}» missing from:\n{refused}");
    }

    // The same sections in the HTML part.
    for title in [
        "Новые заявки (4)",
        "Ожидают ответа заявителя — Обратная связь (1)",
        "Сроки принятия в работу: сегодня и просроченные (4)",
        "Отклонённые, отфильтрованные и проигнорированные письма (4)",
    ] {
        assert!(d.html.contains(title), "{title} missing from the HTML");
    }
}

#[test]
fn deadlines_are_sorted_and_overdue_ones_marked() {
    let desk = busy_week();
    let d = desk.build("2026-11-26T08:30", true);
    let deadlines = section(
        &d.text,
        "Сроки принятия в работу: сегодня и просроченные (4)",
    );
    let lines: Vec<&str> = deadlines.lines().filter(|l| l.contains("  #")).collect();
    assert_eq!(lines.len(), 4, "{deadlines}");
    // By deadline: #1 (Wed 09:00), #2 (Wed 17:00), #3 (Thu 13:00), #4 (Thu 16:10).
    let order: Vec<&str> = lines
        .iter()
        .map(|l| l.split("  ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(order, ["#1", "#2", "#3", "#4"], "{deadlines}");
    assert!(lines[0].starts_with("25.11.2026 09:00"), "{}", lines[0]);
    // Overdue in working time: Wed 09:00–17:00 and Thu 08:00–08:30.
    assert!(
        lines[0].contains("просрочено на 8 ч 30 мин"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("просрочено на 30 мин"), "{}", lines[1]);
    assert!(
        lines[2].contains("сегодня, осталось 4 ч 30 мин"),
        "{}",
        lines[2]
    );
    assert!(lines[2].contains("[Обратная связь,"), "{}", lines[2]);
    assert!(
        lines[3].contains("сегодня, осталось 7 ч 40 мин"),
        "{}",
        lines[3]
    );

    // The same order in the HTML table.
    let table = &d.html[d.html.find("Сроки принятия в работу").unwrap()..];
    let pos = |id: &str| {
        table
            .find(&format!(">{id}</td>"))
            .unwrap_or_else(|| panic!("{id} not in the deadline table"))
    };
    assert!(pos("#1") < pos("#2") && pos("#2") < pos("#3") && pos("#3") < pos("#4"));

    // A ticket accepted once and sent back to feedback by an operator met its deadline.
    desk.store
        .conn()
        .execute(
            "UPDATE tickets SET accepted_at = '2026-11-26T05:20:00Z' WHERE id = 3",
            [],
        )
        .unwrap();
    let d = desk.build("2026-11-26T08:30", true);
    assert_eq!((d.feedback, d.due_today, d.overdue), (1, 1, 2));

    // Friday morning, nothing new: everything left is overdue, nothing is due today.
    let d = desk.build("2026-11-27T09:00", true);
    assert_eq!((d.due_today, d.overdue), (0, 3));
}

#[test]
fn patient_data_is_masked_everywhere_when_the_config_says_so() {
    let mut desk = Desk::new();
    let mut v = verdict(
        Decision::Accept,
        "Не открывается карта 123456 пациента Сидорова",
    );
    v.fields.steps = Some("Регистратура -> найти Сидоров С.С. -> открыть карту 123456".into());
    desk.mail(&v, "2026-11-26T08:10");
    let mut fb = verdict(Decision::Incomplete, "Карта 123456: ошибка");
    fb.fields.patient.name = Some("Сидоров Семён Семёнович".into());
    desk.mail(&fb, "2026-11-26T08:15");

    let d = desk.build("2026-11-26T08:30", true);
    for part in [&d.text, &d.html] {
        assert!(part.contains("****56"), "{part}");
        assert!(part.contains("С*** С.С."), "{part}");
        let lower = part.to_lowercase();
        assert!(!lower.contains("сидоров"), "a surname leaked:\n{part}");
        assert!(!part.contains("123456"), "a card number leaked:\n{part}");
        assert!(!part.contains("Семён"), "a first name leaked:\n{part}");
    }
    // Applicant and user data are not patient data and stay readable.
    assert!(d.text.contains("Мельник Ирина Петровна"));
    assert!(d.text.contains("Руденко Анна Викторовна"));

    let d = desk.build("2026-11-26T08:30", false);
    assert!(
        d.text.contains("Пациент: Сидоров С.С., № карты 123456"),
        "{}",
        d.text
    );
    assert!(d
        .text
        .contains("Не открывается карта 123456 пациента Сидорова"));
    assert!(d.html.contains("Сидоров С.С."));
}

#[test]
fn masking_functions() {
    assert_eq!(mask_card("123456"), "****56");
    assert_eq!(mask_card("1234"), "****");
    assert_eq!(mask_card("12-34-56"), "****56");
    assert_eq!(mask_name("Сидоров С.С."), "С*** С.С.");
    assert_eq!(mask_name("Бойко Н.И."), "Б*** Н.И.");
    assert_eq!(mask_name("Сидоров Семён Семёнович"), "С*** С. С.");
}

#[test]
fn a_digest_starts_where_the_last_one_ended() {
    let mut desk = busy_week();
    let first = desk.build("2026-11-26T08:30", true);
    let recipients = vec![
        "oper1@sevmiac.ru".to_string(),
        "oper2@sevmiac.ru".to_string(),
    ];
    let id = digest::record_sent(
        &mut desk.store,
        &first,
        &recipients,
        &digest::outgoing(&first, "help@sevmiac.ru"),
    )
    .unwrap();
    assert_eq!(digest::last_sent(&desk.store).unwrap(), Some(first.until));

    // One outbox row per recipient, each To that recipient, queued now, no ticket.
    let rows: Vec<(Option<i64>, String, String, String, String)> = {
        let conn = desk.store.conn();
        let mut st = conn
            .prepare("SELECT ticket_id, kind, recipient, state, payload FROM outbox WHERE kind = 'digest' ORDER BY id")
            .unwrap();
        st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    assert_eq!(rows.len(), 2);
    let mut ids = Vec::new();
    for ((ticket, kind, rcpt, state, payload), want) in rows.iter().zip(&recipients) {
        assert_eq!(
            (ticket, kind.as_str(), rcpt, state.as_str()),
            (&None, "digest", want, "pending")
        );
        let m: OutgoingMail = serde_json::from_str(payload).unwrap();
        assert_eq!(&m.to, want);
        assert_eq!(m.subject, first.subject);
        assert_eq!(m.text, first.text);
        assert_eq!(m.html.as_deref(), Some(first.html.as_str()));
        assert!(!m.null_sender && m.bcc.is_empty());
        assert_eq!(m.auto_submitted, AutoSubmitted::AutoGenerated);
        assert!(m
            .message_id
            .starts_with(&format!("mailintake.digest.{id}.")));
        assert!(m.message_id.ends_with("@sevmiac.ru"));
        ids.push(m.message_id);
    }
    assert_ne!(ids[0], ids[1]);
    let due = desk.store.due_outbox(Timestamp::now(), 100).unwrap();
    let digests_due = due
        .iter()
        .filter(|i| i.mail.message_id.starts_with("mailintake.digest."));
    assert!(digests_due.clone().all(|i| i.ticket_id.is_none()));
    assert_eq!(digests_due.count(), 2, "the sender picks them up at once");
    let (at, rcpts): (String, String) = desk
        .store
        .conn()
        .query_row(
            "SELECT at, recipients FROM digests WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(at.parse::<Timestamp>().unwrap(), first.until);
    assert_eq!(rcpts, "oper1@sevmiac.ru, oper2@sevmiac.ru");

    // Right after: nothing new, nothing refused; waiting and deadlines are still there.
    let second = desk.build("2026-11-26T08:31", true);
    assert_eq!(second.since, Some(first.until));
    assert_eq!((second.new_tickets, second.refused), (0, 0));
    assert_eq!(
        (second.feedback, second.overdue, second.due_today),
        (1, 2, 2)
    );
    assert!(section(&second.text, "Новые заявки (0)").contains("\nнет\n"));
    assert!(section(
        &second.text,
        "Отклонённые, отфильтрованные и проигнорированные письма (0)"
    )
    .contains("\nнет\n"));
    assert!(second
        .text
        .contains("Период: с 26.11.2026 08:30 по 26.11.2026 08:31"));

    // A ticket and a filtered mail after the first digest are in the next one, alone.
    desk.mail(
        &verdict(Decision::Accept, "Новая проблема"),
        "2026-11-26T10:00",
    );
    desk.mail(&verdict(Decision::Filter, "Спам"), "2026-11-26T10:05");
    let third = desk.build("2026-11-26T13:30", true);
    assert_eq!((third.new_tickets, third.refused), (1, 1));
    assert!(section(&third.text, "Новые заявки (1)").contains("#5 Новая проблема"));

    // No recipients: nothing is recorded.
    assert!(digest::record_sent(&mut desk.store, &third, &[" ".into()], &digest_mail()).is_err());
    assert_eq!(digest::last_sent(&desk.store).unwrap(), Some(first.until));
}

#[test]
fn empty_store_says_none_in_every_section() {
    let desk = Desk::new();
    let d = desk.build("2026-11-26T08:30", true);
    assert_eq!(
        d.subject,
        "Сводка СТП на 26.11.2026 08:30: новых 0, просрочено 0"
    );
    for title in [
        "Новые заявки (0)",
        "Ожидают ответа заявителя — Обратная связь (0)",
        "Сроки принятия в работу: сегодня и просроченные (0)",
        "Отклонённые, отфильтрованные и проигнорированные письма (0)",
    ] {
        assert!(section(&d.text, title).contains("\nнет\n"), "{title}");
    }
    assert_eq!(d.html.matches(">нет</p>").count(), 4);
}

/// Checks what an Outlook-friendly document needs: known tags only, properly nested, no CSS
/// classes, no flex, no `<style>`; a stray `<` from data would show up as an unknown tag.
fn assert_well_formed(html: &str) {
    const VOID: [&str; 2] = ["meta", "br"];
    const KNOWN: [&str; 12] = [
        "html", "head", "title", "body", "table", "tr", "th", "td", "h1", "h2", "p", "meta",
    ];
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    assert!(!html.contains("class="), "CSS classes");
    assert!(!html.contains("flex"), "flex layout");
    assert!(!html.contains("<style"), "a style block");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = &html["<!DOCTYPE html>".len()..];
    while let Some(i) = rest.find('<') {
        rest = &rest[i + 1..];
        let end = rest.find('>').expect("an unclosed tag");
        let tag = &rest[..end];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        rest = &rest[end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        assert!(
            KNOWN.contains(&name.as_str()) || name == "br",
            "unexpected tag <{tag}>"
        );
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if closing {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.as_str()),
                "misnested </{name}>"
            );
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn html_is_a_complete_outlook_friendly_document_and_data_is_escaped() {
    let mut desk = Desk::new();
    let mut v = verdict(
        Decision::Accept,
        "<script>alert('x')</script> & \"кавычки\"",
    );
    v.fields.steps = Some("Шаг 1 <b>жирно</b>\nШаг 2 -> готово".into());
    v.attachments[0].name = "a<img src=x>.png".into();
    desk.mail(&v, "2026-11-26T08:10");
    desk.mail(
        &verdict(Decision::Incomplete, "<i>курсив</i>"),
        "2026-11-26T08:12",
    );
    desk.mail(&verdict(Decision::Reject, "<table>"), "2026-11-26T08:14");
    let d = desk.build("2026-11-26T08:30", true);
    let h = &d.html;
    assert!(h.contains("<table"));
    assert!(h.contains("<th") && h.contains("<td"));
    assert!(h.contains("border-collapse:collapse"));
    assert!(!h.contains("<script"), "unescaped subject");
    assert!(h.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;кавычки&quot;"));
    assert!(
        h.contains("Шаг 1 &lt;b&gt;жирно&lt;/b&gt;<br>"),
        "line breaks kept"
    );
    assert!(h.contains("a&lt;img src=x&gt;.png"));
    assert!(h.contains("&lt;i&gt;курсив&lt;/i&gt;"));
    assert_well_formed(h);
    // The text part is plain: the data as written.
    assert!(d.text.contains("<script>alert('x')</script>"));
}

#[test]
fn due_slot_follows_the_schedule() {
    let cal = calendar();
    let times = [time(8, 30, 0, 0), time(13, 30, 0, 0)];
    let slot = |last: Option<&str>, now: &str| due_slot(&cal, &times, last.map(at), at(now));

    // Thursday 26 November 2026, the previous digest on Wednesday at 13:30.
    let wed = Some("2026-11-25T13:30:01");
    assert_eq!(slot(wed, "2026-11-26T08:29:59"), None);
    assert_eq!(slot(wed, "2026-11-26T08:30"), Some(at("2026-11-26T08:30")));
    assert_eq!(slot(wed, "2026-11-26T08:31"), Some(at("2026-11-26T08:30")));
    // Sent at 08:30: nothing until 13:30.
    let morning = Some("2026-11-26T08:30:00.5");
    assert_eq!(slot(morning, "2026-11-26T08:31"), None);
    assert_eq!(slot(morning, "2026-11-26T13:29"), None);
    assert_eq!(
        slot(morning, "2026-11-26T13:30"),
        Some(at("2026-11-26T13:30"))
    );
    // A daemon started at 15:00 after a night off sends the 13:30 one, once.
    assert_eq!(slot(wed, "2026-11-26T15:00"), Some(at("2026-11-26T13:30")));
    assert_eq!(slot(Some("2026-11-26T15:00"), "2026-11-26T15:01"), None);
    // The weekend: no slots after Friday's last one.
    let fri = Some("2026-11-27T13:30:02");
    assert_eq!(slot(fri, "2026-11-28T08:30"), None);
    assert_eq!(slot(fri, "2026-11-29T13:30"), None);
    assert_eq!(slot(fri, "2026-11-30T08:30"), Some(at("2026-11-30T08:30")));
    // A public holiday (4 November 2026, Wednesday) is no working day.
    let tue = Some("2026-11-03T13:30:01");
    assert_eq!(slot(tue, "2026-11-04T09:00"), None);
    assert_eq!(slot(tue, "2026-11-04T14:00"), None);
    // Never sent before: the latest slot goes out at once.
    assert_eq!(slot(None, "2026-11-26T07:00"), Some(at("2026-11-25T13:30")));
    // No times: no schedule.
    assert_eq!(due_slot(&cal, &[], None, at("2026-11-26T09:00")), None);
    // Times from the config.
    let parsed = digest::parse_times(&["08:30".into(), "13:30".into()]).unwrap();
    assert_eq!(parsed, times);
    assert!(digest::parse_times(&["8.30".into()]).is_err());
}

#[test]
fn the_digest_module_never_logs() {
    // Patient data must never reach a log line: the module has no tracing calls at all.
    let src = include_str!("../src/desk/digest.rs");
    assert!(!src.contains("tracing::"));
    assert!(!src.contains("use tracing"));
}

#[test]
fn a_first_digest_over_a_full_store_shows_the_newest_tickets_and_counts_all() {
    let mut desk = Desk::new();
    for i in 0..203 {
        let minute = i % 60;
        let hour = 9 + i / 60;
        desk.mail(
            &verdict(Decision::Accept, &format!("Заявка {i}")),
            &format!("2026-11-25T{hour:02}:{minute:02}"),
        );
    }
    let d = desk.build("2026-11-26T08:30", true);
    assert_eq!(d.new_tickets, 203);
    let new = section(&d.text, "Новые заявки (203)");
    assert!(
        new.contains("Показаны последние 200; ещё 3 более ранних"),
        "{new}"
    );
    assert!(!new.contains("\n#3 Заявка 2\n") && new.contains("\n#4 Заявка 3\n"));
    assert!(new.contains("\n#203 Заявка 202\n"));
}
