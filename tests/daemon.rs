//! The daemon end to end against real Dovecot + Postfix on loopback (started once for this test
//! binary by `scripts/mailservers.sh`), with mail sent by swaks and the daemon run as the real
//! binary. Scenarios run in sequence on one server pair, each on its own store.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

fn run_once(s: &Servers, cfg: &Path) {
    let out = mailintake(s, &["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "run --once failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Wait until Postfix has delivered `n` mails from senders (not copies of our own replies)
/// into help@'s INBOX.
fn wait_inbox(s: &Servers, n: usize) {
    wait_for(20, || {
        let from_senders = maildir(s, "help@sevmiac.ru", "INBOX")
            .iter()
            .filter(|m| !header(m, "Message-ID").is_some_and(|id| id.contains("mailintake.")))
            .count();
        (from_senders >= n).then_some(())
    })
    .unwrap_or_else(|| panic!("{n} mails did not arrive in help@sevmiac.ru"));
}

/// Mails in help@'s INBOX that came from senders (copies of our replies excluded).
fn inbox_from_senders(s: &Servers) -> usize {
    maildir(s, "help@sevmiac.ru", "INBOX")
        .iter()
        .filter(|m| !header(m, "Message-ID").is_some_and(|id| id.contains("mailintake.")))
        .count()
}

fn replies_to(s: &Servers, addr: &str) -> Vec<Vec<u8>> {
    maildir(s, addr, "INBOX")
}

#[test]
fn daemon_against_real_servers() {
    let s = Servers::start();
    let t0 = Instant::now();
    full_path_every_folder_no_duplicates(&s);
    eprintln!("full path: {:?}", t0.elapsed());
    followup_completes_feedback_ticket(&s);
    eprintln!("follow-up: {:?}", t0.elapsed());
    no_reply_to_automatic_mail(&s);
    eprintln!("rfc 3834: {:?}", t0.elapsed());
    survives_imap_restart_and_stops_on_sigterm(&s);
    eprintln!("imap restart: {:?}", t0.elapsed());
    oversized_mail_is_not_downloaded(&s);
    eprintln!("oversized: {:?}", t0.elapsed());
    smtp_4xx_is_retried_and_5xx_recorded(&s);
    eprintln!("smtp faults: {:?}", t0.elapsed());
    sighup_reloads_rules_and_refuses_invalid_ones(&s);
    eprintln!("sighup: {:?}", t0.elapsed());
    operator_workflow_and_digest(&s);
    eprintln!("workflow and digest: {:?}", t0.elapsed());
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Read a mailbox over IMAP with the project's own client (as an operator's mail program would).
fn imap_fetch_all(s: &Servers, user: &str) -> Vec<Vec<u8>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = mailintake::mail::imap::ImapSettings {
            host: "127.0.0.1".into(),
            port: s.get("IMAP_PORT").parse().unwrap(),
            security: mailintake::mail::imap::Security::None,
            username: user.into(),
            password: s.get("MS_PASSWORD").into(),
            timeout: Duration::from_secs(10),
        };
        let mut conn = mailintake::mail::imap::ImapConn::connect(&settings)
            .await
            .unwrap();
        conn.select("INBOX").await.unwrap();
        let mut out = Vec::new();
        for info in conn.list().await.unwrap() {
            if let Some(raw) = conn.fetch_raw(info.uid).await.unwrap() {
                out.push(raw);
            }
        }
        conn.logout().await;
        out
    })
}

fn operator_workflow_and_digest(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "[digest]\nrecipients = [\"ops@sevmiac.ru\"]\n");
    let c = cfg.to_str().unwrap();
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "t.ivanova@sev.gov.ru",
            "Не печатается направление",
            FULL_FORM,
            "",
        ),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    let id = tickets_json(s, &cfg)[0]["id"].as_i64().unwrap().to_string();
    wait_for(20, || {
        replies_to(s, "t.ivanova@sev.gov.ru").into_iter().next()
    })
    .expect("confirmation");

    // The operator takes it and asks a question; the applicant is notified.
    ok(mailintake(
        s,
        &[
            "ticket",
            "assign",
            &id,
            "--to",
            "Петров П.П.",
            "--as",
            "ivanov",
            "--config",
            c,
        ],
    ));
    let refused = mailintake(
        s,
        &[
            "ticket", "status", &id, "feedback", "--as", "ivanov", "--config", c,
        ],
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "feedback without a question is refused"
    );
    ok(mailintake(
        s,
        &[
            "ticket",
            "status",
            &id,
            "feedback",
            "--comment",
            "Уточните, пожалуйста, логин пользователя",
            "--as",
            "ivanov",
            "--config",
            c,
        ],
    ));
    run_once(s, &cfg);
    let notes = wait_for(20, || {
        let r = replies_to(s, "t.ivanova@sev.gov.ru");
        (r.len() >= 2).then_some(r)
    })
    .expect("feedback notification delivered");
    let note = notes
        .iter()
        .find(|m| body_text(m).contains("Уточните, пожалуйста, логин"))
        .expect("the question is in the notification");
    assert!(subject(note).starts_with(&format!("[Заявка #{id}]")));
    assert!(header(note, "In-Reply-To").is_some());
    // The applicant answers: back to «Рассматривается».
    let note_id = header(note, "Message-ID").unwrap();
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "t.ivanova@sev.gov.ru",
            &format!("Re: [Заявка #{id}] Не печатается направление"),
            "Логин: ivanova_ta\r\n",
            &format!("In-Reply-To: {note_id}\r\n"),
        ),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    let t = &tickets_json(s, &cfg)[0];
    assert_eq!(t["status"], "in_progress", "{t}");
    assert!(t["accept_due"].as_str().unwrap().ends_with("+03:00"), "{t}");
    let actors = column(
        &ticket_show_json(s, &cfg, id.parse().unwrap()),
        "events",
        "actor",
    );
    assert!(actors.iter().any(|a| a == "ivanov"), "{actors:?}");

    // The digest goes through the real Postfix; the operators read it over IMAP.
    let printed = ok(mailintake(s, &["digest", "--print", "--config", c]));
    assert!(printed.contains("Новые заявки"), "{printed}");
    assert!(!printed.contains("123456"), "the card number is masked");
    ok(mailintake(s, &["digest", "--send", "--config", c]));
    let digests = wait_for(20, || {
        let m = imap_fetch_all(s, "ops@sevmiac.ru");
        (!m.is_empty()).then_some(m)
    })
    .expect("digest delivered to ops@");
    let d = &digests[0];
    assert!(subject(d).starts_with("Сводка СТП"), "{}", subject(d));
    assert_eq!(
        header(d, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    let parsed = mail_parser::MessageParser::default().parse(d).unwrap();
    let html = parsed.body_html(0).unwrap().to_string();
    assert!(html.contains("<table"), "an HTML part with tables");
    assert!(parsed.body_text(0).unwrap().contains("Новые заявки"));
    assert!(!String::from_utf8_lossy(d).contains("123456"));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

fn sighup_reloads_rules_and_refuses_invalid_ones(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let rules = work.path().join("rules");
    copy_dir(&root().join("rules"), &rules);
    let cfg = s.config(work.path(), "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        &format!("dir = \"{}\"", root().join("rules").display()),
        &format!("dir = \"{}\"", rules.display()),
    );
    std::fs::write(&cfg, text).unwrap();
    let log = work.path().join("daemon.log");
    let mut child = spawn_daemon(s, &cfg, &log);
    let hup = |child: &std::process::Child| unsafe {
        libc::kill(child.id() as i32, libc::SIGHUP);
    };
    let log_has = |needle: &str| {
        wait_for(15, || {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|t| t.contains(needle))
                .map(|_| ())
        })
        .is_some()
    };
    // A subdomain is filtered under the shipped rules.
    s.send(
        "a@mail.sev.gov.ru",
        "help@sevmiac.ru",
        &mail("a@mail.sev.gov.ru", "С поддомена 1", FULL_FORM, ""),
    );
    wait_for(30, || {
        (maildir(s, "help@sevmiac.ru", "Filtered").len() == 1).then_some(())
    })
    .expect("filtered under the old rules");
    // An invalid set is refused; the old one stays in force.
    let intake = rules.join("intake.toml");
    let good = std::fs::read_to_string(&intake).unwrap();
    std::fs::write(
        &intake,
        good.replace("[senders]", "[senders]\nbogus_key = 1"),
    )
    .unwrap();
    hup(&child);
    assert!(
        log_has("new rules refused"),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
    assert!(std::fs::read_to_string(&log).unwrap().contains("bogus_key"));
    // A valid change takes effect without a restart.
    std::fs::write(
        &intake,
        good.replace(
            r#"allowed_domains = ["sev.gov.ru"]"#,
            r#"allowed_domains = ["sev.gov.ru", "*.sev.gov.ru"]"#,
        ),
    )
    .unwrap();
    hup(&child);
    assert!(log_has("rules reloaded"));
    s.send(
        "a@mail.sev.gov.ru",
        "help@sevmiac.ru",
        &mail("a@mail.sev.gov.ru", "С поддомена 2", FULL_FORM, ""),
    );
    wait_for(30, || (tickets_json(s, &cfg).len() == 1).then_some(()))
        .expect("the subdomain is accepted after the reload");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    wait_for(10, || child.try_wait().ok().flatten()).expect("daemon exits");
}

fn oversized_mail_is_not_downloaded(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    // A limit of 64 KiB for this test; the mail carries 100 KB.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "reconnect_max_seconds = 2",
        "reconnect_max_seconds = 2\nmax_mail_bytes = 65536",
    );
    std::fs::write(&cfg, text).unwrap();
    let big = "Данные о заявителе: Иванова Т.А.\r\n".to_string() + &"x".repeat(100_000);
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail("t.ivanova@sev.gov.ru", "Большое письмо", &big, ""),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    let rejected = maildir(s, "help@sevmiac.ru", "Rejected");
    assert_eq!(rejected.len(), 1, "oversized mail set aside in Rejected");
    assert!(rejected[0].len() > 100_000, "set aside untouched");
    assert!(tickets_json(s, &cfg).is_empty());
    let reply = wait_for(20, || {
        replies_to(s, "t.ivanova@sev.gov.ru").into_iter().next()
    })
    .expect("too_large reply");
    assert!(body_text(&reply).contains("МБ"), "{}", body_text(&reply));
    // The ledger kept the headers only.
    let db = rusqlite::Connection::open(work.path().join("mailintake.db")).unwrap();
    let (headers_only, len): (bool, i64) = db
        .query_row(
            "SELECT m.headers_only, length(r.raw) FROM mails m JOIN mail_raw r ON r.mail_id = m.id WHERE m.outcome = 'rejected'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        headers_only && len < 4096,
        "headers_only={headers_only} len={len}"
    );
}

fn smtp_4xx_is_retried_and_5xx_recorded(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "confirm_seconds = 5",
        "confirm_seconds = 5\nretry_base_seconds = 1",
    );
    std::fs::write(&cfg, text).unwrap();
    let db_path = work.path().join("mailintake.db");
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "t.ivanova@sev.gov.ru",
            "Временная ошибка SMTP",
            FULL_FORM,
            "",
        ),
    );
    wait_inbox(s, 1);
    s.script(&["smtp-fault", "4xx"]);
    run_once(s, &cfg);
    let state = |db: &std::path::Path| -> (String, i64, Option<String>) {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT state, attempts, last_error FROM outbox ORDER BY id LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap()
    };
    let (st, attempts, err) = state(&db_path);
    assert_eq!(st, "pending", "a 4xx leaves the reply waiting: {err:?}");
    assert_eq!(attempts, 1);
    assert!(
        tickets_json(s, &cfg).len() == 1,
        "the ticket exists although the reply is waiting"
    );
    s.script(&["smtp-fault", "off"]);
    std::thread::sleep(Duration::from_millis(1200));
    run_once(s, &cfg);
    assert_eq!(state(&db_path).0, "sent");
    wait_for(20, || {
        replies_to(s, "t.ivanova@sev.gov.ru").into_iter().next()
    })
    .expect("reply after the 4xx");

    // 5xx: recorded on the ticket as undeliverable, not retried.
    s.send(
        "p.petrov@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "p.petrov@sev.gov.ru",
            "Постоянная ошибка SMTP",
            FULL_FORM,
            "",
        ),
    );
    wait_inbox(s, 1);
    s.script(&["smtp-fault", "5xx"]);
    run_once(s, &cfg);
    s.script(&["smtp-fault", "off"]);
    let t = tickets_json(s, &cfg);
    let id = t
        .iter()
        .find(|t| t["sender"] == "p.petrov@sev.gov.ru")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let kinds = column(&ticket_show_json(s, &cfg, id), "events", "kind");
    assert!(
        kinds.iter().any(|k| k == "reply_undeliverable"),
        "{kinds:?}"
    );
    run_once(s, &cfg);
    assert!(
        replies_to(s, "p.petrov@sev.gov.ru").is_empty(),
        "a 5xx reply is not retried"
    );
}

fn reset_mailboxes(s: &Servers) {
    // Each scenario starts with empty mailboxes: remove the maildirs' messages.
    for user in [
        "help@sevmiac.ru",
        "t.ivanova@sev.gov.ru",
        "p.petrov@sev.gov.ru",
        "robot@sev.gov.ru",
    ] {
        let (local, domain) = user.split_once('@').unwrap();
        let base = s
            .dir
            .path()
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir");
        for entry in walk(&base) {
            if entry
                .parent()
                .is_some_and(|p| p.ends_with("new") || p.ends_with("cur"))
            {
                let _ = std::fs::remove_file(entry);
            }
        }
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn full_path_every_folder_no_duplicates(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    let from = "Иванова Т.А. <t.ivanova@sev.gov.ru>";
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(from, "Не открывается расписание", FULL_FORM, ""),
    );
    s.send(
        "p.petrov@sev.gov.ru",
        "help@sevmiac.ru",
        &mail("p.petrov@sev.gov.ru", "Ошибка в отчёте", PARTIAL_FORM, ""),
    );
    // reject: a lone .docx with "см. вложение"
    let docx = format!(
        "From: p.petrov@sev.gov.ru\r\nTo: help@sevmiac.ru\r\nSubject: Заявка\r\nMessage-ID: <{}@x>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nсм. вложение\r\n--b\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml.document; name=z.docx\r\nContent-Disposition: attachment; filename=z.docx\r\nContent-Transfer-Encoding: base64\r\n\r\nUEsDBBQAAAAIAAAAIQAAAAAAAAAAAAAAAAAAAAAA\r\n--b--\r\n",
        unique()
    );
    s.send("p.petrov@sev.gov.ru", "help@sevmiac.ru", docx.as_bytes());
    s.send(
        "user@example.com",
        "help@sevmiac.ru",
        &mail("user@example.com", "Помогите", FULL_FORM, ""),
    );
    s.send(
        "robot@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "robot@sev.gov.ru",
            "Out of office",
            "Я в отпуске",
            "Auto-Submitted: auto-replied\r\n",
        ),
    );
    wait_inbox(s, 5);
    run_once(s, &cfg);

    let tickets = tickets_json(s, &cfg);
    assert_eq!(tickets.len(), 2, "{tickets:?}");
    let accepted = tickets
        .iter()
        .find(|t| t["sender"] == "t.ivanova@sev.gov.ru")
        .unwrap();
    assert_eq!(accepted["status"], "new");
    assert_eq!(accepted["fields"]["applicant"]["phone"], "+78692551234");
    let incomplete = tickets
        .iter()
        .find(|t| t["sender"] == "p.petrov@sev.gov.ru")
        .unwrap();
    assert_eq!(incomplete["status"], "feedback");

    // Every decision's folder; the inbox is empty.
    assert_eq!(inbox_from_senders(s), 0, "inbox not emptied");
    assert_eq!(maildir(s, "help@sevmiac.ru", "Processed").len(), 2);
    assert_eq!(maildir(s, "help@sevmiac.ru", "Rejected").len(), 1);
    assert_eq!(maildir(s, "help@sevmiac.ru", "Filtered").len(), 1);
    assert_eq!(maildir(s, "help@sevmiac.ru", "Ignored").len(), 1);

    // The reply with the TicketID reached the sender, with RFC 3834 headers and threading.
    let id = accepted["id"].as_i64().unwrap();
    let replies = wait_for(20, || {
        let r = replies_to(s, "t.ivanova@sev.gov.ru");
        (!r.is_empty()).then_some(r)
    })
    .expect("reply delivered");
    assert_eq!(replies.len(), 1);
    let r = &replies[0];
    assert!(
        subject(r).starts_with(&format!("[Заявка #{id}]")),
        "{}",
        subject(r)
    );
    assert_eq!(header(r, "Auto-Submitted").as_deref(), Some("auto-replied"));
    assert_eq!(header(r, "Return-Path").as_deref(), Some("<>"));
    assert!(header(r, "In-Reply-To")
        .unwrap()
        .contains("@test.sev.gov.ru"));
    assert!(body_text(r).contains(&format!("{id}")));

    // incomplete → reply listing what is missing; reject → reply, no ticket.
    let petrov = wait_for(20, || {
        let r = replies_to(s, "p.petrov@sev.gov.ru");
        (r.len() >= 2).then_some(r)
    })
    .expect("two replies to p.petrov");
    assert_eq!(petrov.len(), 2);
    let inc_id = incomplete["id"].as_i64().unwrap();
    let inc = petrov
        .iter()
        .find(|r| subject(r).contains(&format!("[Заявка #{inc_id}]")))
        .expect("incomplete reply");
    assert!(
        body_text(inc).to_lowercase().contains("телефон"),
        "{}",
        body_text(inc)
    );
    // filter and ignore: no reply ever.
    assert!(replies_to(s, "user@example.com").is_empty());
    assert!(replies_to(s, "robot@sev.gov.ru").is_empty());

    // No duplicates on a second run.
    run_once(s, &cfg);
    assert_eq!(tickets_json(s, &cfg).len(), 2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(replies_to(s, "t.ivanova@sev.gov.ru").len(), 1);
    assert_eq!(replies_to(s, "p.petrov@sev.gov.ru").len(), 2);

    // Refused mail waits in quarantine; stats and replay read the same store.
    let c = cfg.to_str().unwrap();
    let q = ok(mailintake(
        s,
        &["quarantine", "list", "--json", "--config", c],
    ));
    let q: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(q.len(), 3, "rejected + filtered + ignored: {q:?}");
    let filtered = q.iter().find(|m| m["decision"] == "filter").unwrap();
    let shown = ok(mailintake(
        s,
        &[
            "quarantine",
            "show",
            &filtered["id"].to_string(),
            "--config",
            c,
        ],
    ));
    assert!(
        shown.contains("sender_domain") && shown.contains("From:"),
        "{shown}"
    );
    let only = ok(mailintake(
        s,
        &[
            "quarantine",
            "list",
            "--reason",
            "supplement_only",
            "--config",
            c,
        ],
    ));
    assert_eq!(only.lines().count(), 1, "{only}");
    let st: serde_json::Value =
        serde_json::from_str(&ok(mailintake(s, &["stats", "--json", "--config", c]))).unwrap();
    assert_eq!(st["tickets_total"], 2, "{st}");
    assert_eq!(st["mails_by_decision"]["filter"], 1, "{st}");
    let replay = ok(mailintake(
        s,
        &[
            "replay",
            "--rules",
            root().join("rules").to_str().unwrap(),
            "--config",
            c,
        ],
    ));
    assert!(replay.contains("unchanged: 5"), "{replay}");

    // ticket show and attachment work on the stored data.
    let out = mailintake(
        s,
        &[
            "ticket",
            "show",
            &id.to_string(),
            "--config",
            cfg.to_str().unwrap(),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Новая") && text.contains("Переписка"),
        "{text}"
    );
}

fn followup_completes_feedback_ticket(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    s.send(
        "p.petrov@sev.gov.ru",
        "help@sevmiac.ru",
        &mail("p.petrov@sev.gov.ru", "Ошибка в отчёте", PARTIAL_FORM, ""),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    let t = tickets_json(s, &cfg);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["status"], "feedback");
    let id = t[0]["id"].as_i64().unwrap();
    let Some(first) = wait_for(20, || {
        replies_to(s, "p.petrov@sev.gov.ru").into_iter().next()
    }) else {
        let db = rusqlite::Connection::open(work.path().join("mailintake.db")).unwrap();
        let rows: Vec<String> = db
            .prepare("SELECT id, state, recipient, message_id, IFNULL(last_error,'') FROM outbox")
            .unwrap()
            .query_map([], |r| {
                Ok(format!(
                    "{} {} {} {} {}",
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?
                ))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        let log = std::fs::read_to_string(s.dir.path().join("postfix.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        panic!(
            "no reply to p.petrov; outbox: {rows:#?}\npostfix log tail:\n{}",
            tail.join("\n")
        );
    };
    let reply_id = header(&first, "Message-ID").unwrap();

    // The sender answers keeping the tag and adds the phone.
    let body = "Контактный телефон: 8 (8692) 55-12-34\r\n\r\n> старое письмо\r\n";
    let extra = format!("In-Reply-To: {reply_id}\r\nReferences: {reply_id}\r\n");
    s.send(
        "p.petrov@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "p.petrov@sev.gov.ru",
            &format!("Re: [Заявка #{id}] Ошибка в отчёте"),
            body,
            &extra,
        ),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    let t = tickets_json(s, &cfg);
    assert_eq!(t.len(), 1, "a follow-up must not create a ticket");
    assert_eq!(t[0]["status"], "new", "completed form moves feedback → new");
    assert_eq!(t[0]["fields"]["applicant"]["phone"], "+78692551234");
    let replies = wait_for(20, || {
        let r = replies_to(s, "p.petrov@sev.gov.ru");
        (r.len() >= 2).then_some(r)
    })
    .expect("confirmation after completion");
    assert!(replies
        .iter()
        .all(|r| subject(r).contains(&format!("[Заявка #{id}]"))));

    // A tag naming no ticket of ours is a new mail.
    s.send(
        "p.petrov@sev.gov.ru",
        "help@sevmiac.ru",
        &mail(
            "p.petrov@sev.gov.ru",
            "Re: [Заявка #9999] Другая проблема",
            FULL_FORM,
            "",
        ),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    assert_eq!(tickets_json(s, &cfg).len(), 2);
    let dirs = column(
        &ticket_show_json(s, &cfg, id),
        "correspondence",
        "direction",
    );
    assert_eq!(dirs, ["in", "out", "in", "out"], "{dirs:?}");
}

fn no_reply_to_automatic_mail(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    let triggers = [
        "Auto-Submitted: auto-generated\r\n",
        "Precedence: bulk\r\n",
        "Precedence: list\r\n",
        "List-Id: <news.sev.gov.ru>\r\n",
        "X-Loop: help@sevmiac.ru\r\n",
        "X-Autoreply: yes\r\n",
        "X-Auto-Response-Suppress: OOF\r\n",
    ];
    // A null envelope sender: delivery writes `Return-Path: <>` (a header in the mail itself
    // would be replaced by the delivering server).
    s.send(
        "",
        "help@sevmiac.ru",
        &mail("t.ivanova@sev.gov.ru", "Уведомление", FULL_FORM, ""),
    );
    for h in triggers {
        s.send(
            "t.ivanova@sev.gov.ru",
            "help@sevmiac.ru",
            &mail("t.ivanova@sev.gov.ru", "Автоответ", FULL_FORM, h),
        );
    }
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail("MAILER-DAEMON@sev.gov.ru", "Undelivered", "bounce", ""),
    );
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        &mail("noreply@sev.gov.ru", "Рассылка", "news", ""),
    );
    wait_inbox(s, 10);
    run_once(s, &cfg);
    let ignored = maildir(s, "help@sevmiac.ru", "Ignored").len();
    if ignored != 10 {
        for f in ["INBOX", "Processed", "Rejected", "Filtered", "Ignored"] {
            for m in maildir(s, "help@sevmiac.ru", f) {
                eprintln!("{f}: {}", String::from_utf8_lossy(&m[..m.len().min(1000)]));
            }
        }
    }
    assert_eq!(ignored, 10);
    assert!(tickets_json(s, &cfg).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        replies_to(s, "t.ivanova@sev.gov.ru").is_empty(),
        "an automatic mail was answered"
    );
}

fn survives_imap_restart_and_stops_on_sigterm(s: &Servers) {
    reset_mailboxes(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    let log = work.path().join("daemon.log");
    let mut child = spawn_daemon(s, &cfg, &log);
    for i in 0..3 {
        s.send(
            "t.ivanova@sev.gov.ru",
            "help@sevmiac.ru",
            &mail(
                "t.ivanova@sev.gov.ru",
                &format!("До перезапуска {i}"),
                FULL_FORM,
                "",
            ),
        );
    }
    if wait_for(30, || (tickets_json(s, &cfg).len() == 3).then_some(())).is_none() {
        panic!(
            "3 tickets before restart; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    // A second daemon on the same store refuses to start.
    let second = mailintake(s, &["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(!second.status.success());
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(msg.contains("already running"), "{msg}");
    s.script(&["restart-imap"]);
    for i in 0..3 {
        s.send(
            "t.ivanova@sev.gov.ru",
            "help@sevmiac.ru",
            &mail(
                "t.ivanova@sev.gov.ru",
                &format!("После перезапуска {i}"),
                FULL_FORM,
                "",
            ),
        );
    }
    let ok = wait_for(60, || (tickets_json(s, &cfg).len() == 6).then_some(()));
    let logtext = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ok.is_some(),
        "mail after the IMAP restart was not processed; log:\n{logtext}"
    );
    wait_for(30, || {
        (replies_to(s, "t.ivanova@sev.gov.ru").len() == 6).then_some(())
    })
    .expect("six replies");
    // SIGTERM: stops within 5 s.
    let t = Instant::now();
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_for(10, || child.try_wait().ok().flatten()).expect("daemon exits on SIGTERM");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(status.success(), "exit status {status:?}");
    // Logs at every level carry ids, never patient data, body text or the password.
    let logtext = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(logtext.contains("ticket created"), "the log is empty?");
    for secret in [
        "Сидоров",
        "123456",
        "Шаблон посещения",
        s.get("MS_PASSWORD"),
    ] {
        assert!(!logtext.contains(secret), "the log contains {secret:?}");
    }
    assert_eq!(inbox_from_senders(s), 0);
}
