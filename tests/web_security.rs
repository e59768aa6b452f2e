//! The web console's security over real HTTP: the real `mailintake web` binary on loopback, a
//! store filled through the real engine, requests written byte for byte. No page or download
//! without a session; forms without the CSRF token refused; markup from mail shown as text;
//! attachments always downloaded, never rendered; wrong passwords slowed down, then locked.

#[path = "web_common/mod.rs"]
mod web_common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use mailintake::store::Store;
use web_common::*;

const ADMIN: (&str, &str) = ("admin", "пароль-админа-1");
const OPERATOR: (&str, &str) = ("ivanova", "пароль-оператора-1");

struct Desk {
    dir: tempfile::TempDir,
    config: PathBuf,
    web: WebServer,
    /// The ticket made from the mail with markup everywhere.
    xss: i64,
    /// A quarantined mail (a foreign sender domain).
    refused_mail: i64,
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A mail whose subject, body and attachment name carry markup, with an .html attachment.
fn hostile_mail() -> Vec<u8> {
    let subject = b64("<script>alert('subj')</script> Не открывается расписание".as_bytes());
    let body = FULL_FORM.replace(
        "Шаблон посещения не существует",
        "<script>alert('body')</script> Шаблон посещения не существует",
    );
    format!(
        "From: o.petrenko@sev.gov.ru\r\nTo: help@sevmiac.ru\r\nSubject: =?utf-8?b?{subject}?=\r\n\
         Date: Thu, 26 Nov 2026 10:00:00 +0300\r\nMessage-ID: <xss@sev.gov.ru>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--B\r\nContent-Type: text/html; name=\"page.html\"\r\n\
         Content-Disposition: attachment; filename=\"<img src=x onerror=alert(1)>.html\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--B--\r\n",
        b64(body.as_bytes()),
        b64(b"<html><body><script>alert('file')</script></body></html>")
    )
    .into_bytes()
}

fn desk() -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "");
    add_user(&config, ADMIN.0, "admin", ADMIN.1);
    add_user(&config, OPERATOR.0, "operator", OPERATOR.1);
    let mut store = Store::open(&dir.path().join("mailintake.db")).unwrap();
    let now = Timestamp::now();
    let xss = ticket_of(&record(
        &mut store,
        &hostile_mail(),
        now,
        "2099-01-01T10:00:00+03:00",
    ));
    record(
        &mut store,
        &mail("spam@example.com", "Реклама", "Купите"),
        now,
        "2099-01-01T10:00:00+03:00",
    );
    let refused_mail = mailintake::desk::quarantine::entries(&store, None).unwrap()[0].id;
    drop(store);
    let web = WebServer::start(&config, &dir.path().join("web.log"));
    Desk {
        dir,
        config,
        web,
        xss,
        refused_mail,
    }
}

fn logged_in(d: &Desk, who: (&str, &str)) -> Client {
    let mut c = d.web.client();
    let r = c.login(who.0, who.1);
    assert_eq!(r.status, 303, "{}", r.text());
    c
}

fn ticket_json(d: &Desk, id: i64) -> serde_json::Value {
    let out = bin()
        .args(["ticket", "show", &id.to_string(), "--json", "--config"])
        .arg(&d.config)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn no_page_or_download_without_a_session() {
    let d = desk();
    let id = d.xss;
    let m = d.refused_mail;
    let mut anon = d.web.client();
    for path in [
        "/".to_string(),
        "/queue".into(),
        "/queue?q=petrenko".into(),
        format!("/tickets/{id}"),
        format!("/tickets/{id}/files/0"),
        format!("/tickets/{id}/files/0/image"),
        "/quarantine".into(),
        format!("/quarantine/{m}"),
        "/stats".into(),
    ] {
        let r = anon.get(&path);
        assert_eq!(r.status, 303, "{path}");
        assert!(
            r.header("location").unwrap().starts_with("/login"),
            "{path}"
        );
        assert!(!r.text().contains("petrenko"), "{path}");
    }
    // A made-up session cookie is no session.
    anon.cookies
        .insert("mailintake_session".into(), "0".repeat(64));
    assert_eq!(anon.get(&format!("/tickets/{id}/files/0")).status, 303);
    // Actions without a session change nothing.
    let r = anon.post(
        &format!("/tickets/{id}/assign"),
        &form(&[("to", "Злоумышленник"), ("csrf", "x")]),
    );
    assert_eq!(r.status, 303);
    assert!(ticket_json(&d, id)["assignee"].is_null());
    let r = anon.post(
        &format!("/quarantine/{m}/release"),
        &form(&[("force", "1")]),
    );
    assert_eq!(r.status, 303);
    // Monitoring needs no session and shows counts only.
    assert_eq!(anon.get("/healthz").status, 200);
    let metrics = anon.get("/metrics").text();
    assert!(
        metrics.contains("mailintake_tickets{status=\"feedback\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("petrenko"));
    // After logging out the old cookie opens nothing.
    let mut c = logged_in(&d, OPERATOR);
    let token = c.csrf("/queue");
    let old = c.cookies.clone();
    assert_eq!(c.post("/logout", &form(&[("csrf", &token)])).status, 303);
    c.cookies = old;
    assert_eq!(c.get("/queue").status, 303);
}

#[test]
fn a_forged_form_without_the_csrf_token_is_refused() {
    let d = desk();
    let id = d.xss;
    let mut c = logged_in(&d, ADMIN);
    let path = format!("/tickets/{id}/assign");
    for body in [
        form(&[("to", "Злоумышленник")]),
        form(&[("to", "Злоумышленник"), ("csrf", "")]),
        form(&[("to", "Злоумышленник"), ("csrf", &"a".repeat(64))]),
    ] {
        let r = c.post(&path, &body);
        assert_eq!(r.status, 403, "{body}");
        assert!(r.text().contains("CSRF"));
    }
    assert!(ticket_json(&d, id)["assignee"].is_null());
    let r = c.post(
        &format!("/quarantine/{}/release", d.refused_mail),
        &form(&[("force", "1")]),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        mailintake::desk::quarantine::entries(
            &Store::open(&d.dir.path().join("mailintake.db")).unwrap(),
            None
        )
        .unwrap()
        .len(),
        1
    );
    // The same form with the page's token goes through, and the history names who did it.
    let token = c.csrf(&format!("/tickets/{id}"));
    let r = c.post(&path, &form(&[("to", "Петров П.П."), ("csrf", &token)]));
    assert_eq!(r.status, 303);
    let t = ticket_json(&d, id);
    assert_eq!(t["assignee"], "Петров П.П.");
    let events = t["events"].as_array().unwrap();
    assert!(events
        .iter()
        .any(|e| e["kind"] == "assigned" && e["actor"] == ADMIN.0));
    // A login form posted from elsewhere (no login cookie) is refused too.
    let mut other = d.web.client();
    let r = other.post(
        "/login",
        &form(&[("username", ADMIN.0), ("password", ADMIN.1), ("csrf", "x")]),
    );
    assert_eq!(r.status, 403);
    assert!(!other.cookies.contains_key("mailintake_session"));
}

/// The text a browser shows for escaped markup (the entities askama writes).
fn unescape(html: &str) -> String {
    html.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#39;", "'")
        .replace("&#34;", "\"")
        .replace("&#38;", "&")
}

#[test]
fn markup_in_subject_body_and_file_name_is_shown_as_text() {
    let d = desk();
    let id = d.xss;
    let mut c = logged_in(&d, OPERATOR);
    for path in [
        format!("/tickets/{id}"),
        "/queue".to_string(),
        "/queue?q=%3Cscript%3E".to_string(),
    ] {
        let page = c.get(&path);
        assert_eq!(page.status, 200, "{path}");
        let html = page.text();
        assert!(!html.contains("<script"), "{path}: raw markup in\n{html}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(
            unescape(&html).contains("<script>alert('subj')</script> Не открывается"),
            "{path}: {html}"
        );
        // No script may run even if something slipped through.
        let csp = page.header("content-security-policy").unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
    }
    let page = c.get(&format!("/tickets/{id}")).text();
    assert!(unescape(&page).contains("<img src=x onerror=alert(1)>.html"));
    assert!(unescape(&page).contains("<script>alert('body')</script> Шаблон"));
    // The search box echoes the query escaped.
    let page = c.get("/queue?q=%22%3E%3Cb%3Ex").text();
    assert!(!page.contains("\"><b>x"), "{page}");
    assert!(page.contains("value=\"&#34;&#62;&#60;b&#62;x\""), "{page}");
}

#[test]
fn an_html_attachment_is_downloaded_never_rendered() {
    let d = desk();
    let id = d.xss;
    let mut c = logged_in(&d, OPERATOR);
    let r = c.get(&format!("/tickets/{id}/files/0"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let cd = r.header("content-disposition").unwrap();
    assert!(cd.starts_with("attachment;"), "{cd}");
    assert!(!cd.contains('<'), "{cd}");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .contains("sandbox"));
    assert_eq!(
        r.text(),
        "<html><body><script>alert('file')</script></body></html>"
    );
    // Not an image, so never shown inline either.
    let r = c.get(&format!("/tickets/{id}/files/0/image"));
    assert_eq!(r.status, 415);
    assert_ne!(r.header("content-type"), Some("text/html"));
    assert!(!r.text().contains("<script>alert('file')"));
    assert_eq!(c.get(&format!("/tickets/{id}/files/7")).status, 404);
}

#[test]
fn wrong_passwords_are_slowed_down_and_then_locked() {
    let d = desk();
    let mut c = d.web.client();
    let r = c.login(OPERATOR.0, "не тот пароль");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Неверное имя пользователя или пароль"));
    assert!(
        c.last_took >= Duration::from_millis(450),
        "a wrong password answered in {:?}",
        c.last_took
    );
    let unknown_took = {
        c.login("nobody", "не тот пароль");
        c.last_took
    };
    assert!(unknown_took >= Duration::from_millis(450));
    // Five wrong passwords in a row (from parallel clients): the name is locked, even for the
    // right password, and the others are not.
    let addr = d.web.addr.clone();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || Client::new(&addr).login(OPERATOR.0, "опять не тот").status)
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 401);
    }
    let r = c.login(OPERATOR.0, OPERATOR.1);
    assert_eq!(r.status, 429);
    assert!(r.text().contains("Слишком много неудачных попыток"));
    assert!(!c.cookies.contains_key("mailintake_session"));
    assert_eq!(c.login(ADMIN.0, ADMIN.1).status, 303);
}

#[test]
fn a_refused_action_shows_the_workflows_reason_and_only_admins_release() {
    let d = desk();
    let id = d.xss;
    let mut c = logged_in(&d, OPERATOR);
    let token = c.csrf(&format!("/tickets/{id}"));
    // «Обратная связь» → «Новая» is not a transition of reg. 4.8.
    let r = c.post(
        &format!("/tickets/{id}/status"),
        &form(&[("status", "new"), ("csrf", &token)]),
    );
    assert_eq!(r.status, 303);
    let page = c.get(&format!("/tickets/{id}")).text();
    assert!(
        page.contains("не допускается (п. 4.8 Регламента)"),
        "{page}"
    );
    // Only an admin releases quarantined mail.
    let m = d.refused_mail;
    let token = c.csrf(&format!("/quarantine/{m}"));
    let r = c.post(
        &format!("/quarantine/{m}/release"),
        &form(&[("force", "1"), ("csrf", &token)]),
    );
    assert_eq!(r.status, 403);
    let mut admin = logged_in(&d, ADMIN);
    let token = admin.csrf(&format!("/quarantine/{m}"));
    let r = admin.post(
        &format!("/quarantine/{m}/release"),
        &form(&[("force", "1"), ("csrf", &token)]),
    );
    assert_eq!(r.status, 303);
    let page = admin.get(&format!("/quarantine/{m}")).text();
    assert!(page.contains("/tickets/"), "{page}");
}
