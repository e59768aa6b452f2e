//! Builds a store for the web console benchmark (`scripts/bench_web.sh`): N tickets recorded
//! through the real engine and store (varied senders, organisations, subjects, patient cards),
//! spread over statuses as on a desk that has worked for years (most closed, a few hundred open,
//! some overdue), plus one ticket with 10 screenshots. Prints the id of that ticket.
//!
//!     cargo run --release --example web_bench_store -- STORE.db 100000
//!
//! The statuses are set with one SQL update per group rather than through the workflow: the
//! benchmark measures reading pages, not 100,000 operator clicks.

use jiff::{SignedDuration, Timestamp};
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};
use mailintake::store::{ts, Incoming, Outcome, ReplyRequest, Store};
use mailintake::verdict::rules::RuleSet;

const ORGS: [&str; 6] = [
    "ГБУЗС «Городская больница №1 им. Н.И. Пирогова»",
    "ГБУЗС «Городская больница №5 — Центр охраны здоровья матери и ребёнка»",
    "ГБУЗС «Севастопольская городская больница №9»",
    "ГБУЗС «Центр экстренной медицинской помощи и медицины катастроф»",
    "ГБУЗС «Городская больница №4»",
    "ГБУЗС «Медицинский информационно-аналитический центр»",
];
const SUBJECTS: [&str; 6] = [
    "Не формируется счёт-реестр за ноябрь",
    "Не открывается расписание врача",
    "Ошибка при записи пациента на приём",
    "Не печатается направление на госпитализацию",
    "Шаблон посещения не существует",
    "Не проходит подпись ЭЦП в ЕГИСЗ",
];
const NAMES: [&str; 5] = ["ivanova", "petrov", "sidorenko", "kovalchuk", "o.petrenko"];

fn body(i: usize) -> String {
    format!(
        "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, {}, +7 (8692) 55-12-{:02}\r\n\
         ФИО пользователя, логин: Петров Пётр Петрович, ppetrov{i}\r\n\
         Данные пациента: Сидоров С.С., № карты {:06}\r\n\
         Последовательность выполняемых действий: Регистратура → Расписание → Запись\r\n\
         Описание ошибки: {} (обращение {i})\r\n",
        ORGS[i % ORGS.len()],
        i % 100,
        100_000 + i,
        SUBJECTS[i % SUBJECTS.len()],
    )
}

fn mail(i: usize, attachments: &[(String, Vec<u8>)]) -> Vec<u8> {
    use std::fmt::Write;
    let b64 = |b: &[u8]| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let mut m = format!(
        "From: {name}{i}@sev.gov.ru\r\nTo: help@sevmiac.ru\r\nSubject: =?utf-8?b?{}?=\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0300\r\nMessage-ID: <bench{i}@sev.gov.ru>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        b64(SUBJECTS[i % SUBJECTS.len()].as_bytes()),
        b64(body(i).as_bytes()),
        name = NAMES[i % NAMES.len()],
    );
    for (name, data) in attachments {
        let _ = write!(
            m,
            "--B\r\nContent-Type: image/png; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(data)
        );
    }
    m.push_str("--B--\r\n");
    m.into_bytes()
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|s| s.parse::<usize>().ok()),
    ) else {
        return Err("usage: web_bench_store STORE.db N".into());
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = RuleSet::load(&root.join("rules")).map_err(|e| e.to_string())?;
    let mut store = Store::open(std::path::Path::new(path)).map_err(|e| e.to_string())?;
    // Building the fixture only: no fsync per mail.
    store
        .conn()
        .pragma_update(None, "synchronous", "OFF")
        .map_err(|e| e.to_string())?;
    let now = Timestamp::now();
    let mut render = |req: &ReplyRequest<'_>| OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@sevmiac.ru",
            req.ticket.unwrap_or(0),
            req.kind.as_str(),
            req.nonce
        ),
        to: req.verdict.sender.clone(),
        subject: "reply".into(),
        text: "Ваша заявка зарегистрирована.".into(),
        html: None,
        in_reply_to: req.verdict.message_id.clone(),
        references: vec![],
        auto_submitted: AutoSubmitted::AutoReplied,
        null_sender: true,
        bcc: vec![],
    };
    let screenshot =
        std::fs::read(root.join("docs/sample_screenshot.png")).map_err(|e| e.to_string())?;
    let mut record = |store: &mut Store, i: usize, raw: &[u8]| -> Result<Option<i64>, String> {
        // Oldest first, 5 minutes apart, so the newest is now.
        let arrived = now - SignedDuration::from_mins(5 * (n - i) as i64);
        let verdict = mailintake::verdict::engine::evaluate(raw, &rules);
        let incoming = Incoming {
            mailbox: "INBOX",
            uidvalidity: 1,
            uid: i as u32 + 1,
            arrived_at: arrived,
            raw,
            headers_only: false,
            size: raw.len() as u64,
            sha256: format!("bench-{i}"),
            accept_due: Some(ts(arrived + SignedDuration::from_hours(8))),
        };
        let (_, outcome) = store
            .record_mail(
                &incoming,
                &verdict,
                false,
                1_000_000,
                arrived,
                &mut render,
                &|_| true,
            )
            .map_err(|e| e.to_string())?;
        Ok(match outcome {
            Outcome::NewTicket { ticket, .. } => Some(ticket),
            _ => None,
        })
    };
    for i in 0..n {
        record(&mut store, i, &mail(i, &[]))?;
        if i % 10_000 == 9_999 {
            eprintln!("{} mails", i + 1);
        }
    }
    let shots: Vec<(String, Vec<u8>)> = (1..=10)
        .map(|k| (format!("screen{k:02}.png"), screenshot.clone()))
        .collect();
    let with_shots =
        record(&mut store, n, &mail(n, &shots))?.ok_or("no ticket for the screenshots mail")?;
    // Years of work: all but the last ~600 closed, some resolved, the rest open in every status.
    let conn = store.conn();
    let exec = |sql: &str| conn.execute(sql, []).map_err(|e| e.to_string());
    let last = n as i64;
    exec(&format!(
        "UPDATE tickets SET status = 'closed', accepted_at = arrived_at WHERE id <= {}",
        last - 600
    ))?;
    exec(&format!("UPDATE tickets SET status = 'resolved', accepted_at = arrived_at WHERE id > {} AND id <= {} AND id % 3 = 0", last - 600, last - 300))?;
    exec(&format!("UPDATE tickets SET status = 'in_progress', assignee = 'petrov', accepted_at = arrived_at WHERE id > {} AND id <= {} AND id % 3 = 1", last - 600, last - 200))?;
    exec(&format!("UPDATE tickets SET status = 'assigned', assignee = 'sidorenko', accepted_at = arrived_at WHERE id > {} AND id <= {} AND id % 3 = 2", last - 600, last - 200))?;
    exec("ANALYZE")?;
    println!("{with_shots}");
    Ok(())
}
