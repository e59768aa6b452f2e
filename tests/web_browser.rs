//! The web console in a real headless Chromium (driven through chromedriver by fantoccini),
//! against the real daemon serving it (`run` with `[web] listen`), real Dovecot + Postfix on
//! loopback and mail sent by swaks: log in, find the ticket made from the mail, open it, assign
//! it, ask the applicant a question and reply to them (the mails reach the applicant's mailbox), see the overdue
//! marker on an old ticket, release a quarantined mail. One server set and one browser for the
//! whole binary; the steps run in order.

mod common;
#[path = "web_common/mod.rs"]
mod web_common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use base64::Engine as _;
use common::{maildir, spawn_daemon, tickets_json, wait_for, Servers, FULL_FORM};
use fantoccini::{Client, ClientBuilder, Locator};
use jiff::Timestamp;
use mailintake::store::Store;

const APPLICANT: &str = "t.ivanova@sev.gov.ru";
const FOREIGN: &str = "user@example.com";
const ADMIN: (&str, &str) = ("kuznetsova", "пароль-администратора");

/// chromedriver on a free loopback port; killed on drop (it takes its Chromium with it).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start(log: &Path) -> Driver {
        let port = web_common::free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("chromedriver (scripts/test.sh installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        wait_for(20, || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        })
        .expect("chromedriver did not start");
        Driver { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills the Chromium processes running on `profile` (a session a failed step left open would
/// outlive chromedriver): found by their `--user-data-dir`, nothing else.
fn kill_browser(profile: &Path) {
    let marker = format!("--user-data-dir={}", profile.display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        if cmdline
            .split(|b| *b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}

/// Stops the browser on `profile` at the end, even when a step fails.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        kill_browser(&self.0);
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1366,768",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// A screenshot from a fixture (a real Outlook paste).
fn screenshot() -> Vec<u8> {
    let raw = std::fs::read(
        web_common::root().join("fixtures/accept/outlook_utf8_inline_screenshot.eml"),
    )
    .unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let part = msg
        .attachments()
        .find(|p| p.contents().starts_with(b"\x89PNG") || p.contents().starts_with(&[0xFF, 0xD8]))
        .expect("an image in the fixture");
    part.contents().to_vec()
}

fn mail_with_screenshot(subject: &str) -> Vec<u8> {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let png = screenshot();
    let ext = if png.starts_with(b"\x89PNG") {
        "png"
    } else {
        "jpg"
    };
    format!(
        "From: Иванова Т.А. <{APPLICANT}>\r\nTo: help@sevmiac.ru\r\nSubject: =?utf-8?b?{}?=\r\n\
         Date: {}\r\nMessage-ID: <browser-{}@sev.gov.ru>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n--B\r\nContent-Type: image/{ext}; name=\"screen.{ext}\"\r\n\
         Content-Disposition: attachment; filename=\"screen.{ext}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--B--\r\n",
        b64(subject.as_bytes()),
        jiff::Zoned::now().strftime("%a, %d %b %Y %H:%M:%S %z"),
        common::unique(),
        b64(FULL_FORM.as_bytes()),
        b64(&png),
    )
    .into_bytes()
}

/// Clicks the element `css` and waits for the page it leads to to replace this one.
async fn submit(c: &Client, css: &str) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let end = Instant::now() + std::time::Duration::from_secs(15);
    while old.tag_name().await.is_ok() {
        assert!(Instant::now() < end, "{css} did not load a new page");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn flash(c: &Client) -> String {
    text_of(c, ".flash").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_desk_in_chromium() {
    // fantoccini's TLS stack brings another rustls provider: pick one for the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let servers = Servers::start();
    servers.script(&["adduser", APPLICANT]);
    servers.script(&["adduser", FOREIGN]);
    let dir = tempfile::tempdir().unwrap();
    let port = web_common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cfg = servers.config(
        dir.path(),
        &format!("\n[web]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    web_common::add_user(&cfg, ADMIN.0, "admin", ADMIN.1);

    // An old ticket nobody took: its reg. 4.6 deadline passed days ago.
    let old = {
        let mut store = Store::open(&dir.path().join("mailintake.db")).unwrap();
        let arrived = Timestamp::now() - jiff::SignedDuration::from_hours(72);
        web_common::ticket_of(&web_common::record(
            &mut store,
            &web_common::mail(APPLICANT, "Old: не печатается направление", FULL_FORM),
            arrived,
            &mailintake::store::ts(arrived + jiff::SignedDuration::from_hours(24)),
        ))
    };

    let _daemon = KillOnDrop(spawn_daemon(&servers, &cfg, &dir.path().join("daemon.log")));
    servers.send(
        APPLICANT,
        "help@sevmiac.ru",
        &mail_with_screenshot("Не формируется счёт-реестр за ноябрь"),
    );
    servers.send(
        FOREIGN,
        "help@sevmiac.ru",
        &common::mail(FOREIGN, "Нужна помощь с МИС", FULL_FORM, ""),
    );
    let ticket = wait_for(60, || {
        tickets_json(&servers, &cfg)
            .iter()
            .find(|t| t["subject"].as_str() == Some("Не формируется счёт-реестр за ноябрь"))
            .and_then(|t| t["id"].as_i64())
    })
    .expect("the ticket from the mail");
    let quarantined = wait_for(30, || {
        let store = Store::open(&dir.path().join("mailintake.db")).ok()?;
        mailintake::desk::quarantine::entries(&store, None)
            .ok()?
            .into_iter()
            .find(|m| m.sender == FOREIGN)
            .map(|m| m.id)
    })
    .expect("the foreign mail in quarantine");

    let driver = Driver::start(&dir.path().join("chromedriver.log"));
    let profile = Profile(dir.path().join("profile"));
    let c = browser(&driver, &profile.0).await;
    let started = Instant::now();

    // Log in: the queue asks for it first.
    c.goto(&format!("{base}/queue")).await.unwrap();
    assert!(c.current_url().await.unwrap().path().starts_with("/login"));
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(ADMIN.0)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(ADMIN.1)
        .await
        .unwrap();
    submit(&c, "#login").await;
    assert_eq!(c.current_url().await.unwrap().path(), "/queue");

    // The old ticket is marked overdue; the new one is in the queue too.
    let row = c.find(Locator::Id(&format!("t{old}"))).await.unwrap();
    assert_eq!(row.attr("class").await.unwrap().as_deref(), Some("overdue"));
    assert!(row.text().await.unwrap().contains("просрочена"));
    // Due first: the overdue ticket is the first row.
    let first = c.find(Locator::Css("table.queue tbody tr")).await.unwrap();
    assert_eq!(first.attr("id").await.unwrap(), Some(format!("t{old}")));

    // Find the new ticket by searching for its sender, and open it.
    let search = c.find(Locator::Css("input[name=q]")).await.unwrap();
    search.send_keys("t.ivanova").await.unwrap();
    submit(&c, "form.filters button").await;
    submit(&c, &format!("#t{ticket} td.subject a")).await;
    assert_eq!(
        c.current_url().await.unwrap().path(),
        format!("/tickets/{ticket}")
    );
    assert!(text_of(&c, "h1")
        .await
        .contains("Не формируется счёт-реестр за ноябрь"));
    assert!(text_of(&c, "dl.fields")
        .await
        .contains("Иванова Татьяна Александровна"));
    // The screenshot is shown inline: the browser decoded it.
    let width = c
        .execute(
            "return document.querySelector('.thumbs img').naturalWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        width.as_u64().unwrap_or(0) > 0,
        "thumbnail not decoded: {width:?}"
    );

    // Assign it.
    c.find(Locator::Id("assign-to"))
        .await
        .unwrap()
        .send_keys("Петров П.П.")
        .await
        .unwrap();
    submit(&c, "#assign").await;
    assert!(flash(&c).await.contains("назначена на Петров П.П."));
    assert_eq!(text_of(&c, "#assignee").await, "Петров П.П.");
    assert_eq!(text_of(&c, "#status").await, "Назначена");

    // Ask the applicant a question: the ticket waits in «Обратная связь», the mail goes out.
    let question = "Уточните, пожалуйста, номер кабинета и имя компьютера.";
    c.find(Locator::Id("question"))
        .await
        .unwrap()
        .send_keys(question)
        .await
        .unwrap();
    submit(&c, "#ask").await;
    assert_eq!(text_of(&c, "#status").await, "Обратная связь");
    let history = text_of(&c, "table.history").await;
    assert!(
        history.contains(ADMIN.0) && history.contains(question),
        "{history}"
    );
    let asked = wait_for(30, || {
        maildir(&servers, APPLICANT, "INBOX")
            .into_iter()
            .find(|m| common::body_text(m).contains(question))
    })
    .expect("the question in the applicant's mailbox");
    assert!(common::subject(&asked).contains(&ticket.to_string()));

    // Reply to the applicant: the letter arrives in the thread, the status stays.
    let answer = "Спасибо, кабинет нашли; исправление будет сегодня до 15:00.";
    c.find(Locator::Id("reply-text"))
        .await
        .unwrap()
        .send_keys(answer)
        .await
        .unwrap();
    submit(&c, "#reply").await;
    assert!(
        flash(&c).await.contains("поставлен в очередь"),
        "{}",
        flash(&c).await
    );
    assert_eq!(text_of(&c, "#status").await, "Обратная связь");
    let history = text_of(&c, "table.history").await;
    assert!(
        history.contains(ADMIN.0) && history.contains(answer),
        "{history}"
    );
    let replied = wait_for(30, || {
        maildir(&servers, APPLICANT, "INBOX")
            .into_iter()
            .find(|m| common::body_text(m).contains(answer))
    })
    .expect("the reply in the applicant's mailbox");
    assert!(common::subject(&replied).contains(&format!("[Заявка #{ticket}]")));
    assert!(common::header(&replied, "In-Reply-To").is_some());
    assert!(
        common::header(&replied, "Auto-Submitted").is_none(),
        "a person's letter"
    );

    // A refused change shows the workflow's reason in Russian.
    c.find(Locator::Css("#status-form select"))
        .await
        .unwrap()
        .select_by_value("resolved")
        .await
        .unwrap();
    submit(&c, "#status-form button").await;
    assert!(flash(&c).await.contains("нужен комментарий"));

    // Release the quarantined mail: the rules still refuse it, an admin accepts it anyway.
    c.goto(&format!("{base}/quarantine")).await.unwrap();
    submit(&c, &format!("#m{quarantined} a")).await;
    submit(&c, "#release").await;
    assert!(
        flash(&c).await.contains("sender_domain"),
        "{}",
        flash(&c).await
    );
    submit(&c, "#force-accept").await;
    let said = flash(&c).await;
    assert!(said.contains('#'), "{said}");
    let released = wait_for(20, || {
        tickets_json(&servers, &cfg)
            .into_iter()
            .find(|t| t["sender"].as_str() == Some(FOREIGN))
    })
    .expect("a ticket from the released mail");
    let events = common::ticket_show_json(&servers, &cfg, released["id"].as_i64().unwrap());
    assert!(common::column(&events, "events", "actor").contains(&ADMIN.0.to_string()));
    // Its acceptance reply reaches the sender.
    wait_for(30, || {
        maildir(&servers, FOREIGN, "INBOX")
            .iter()
            .any(|m| common::subject(m).contains(&released["id"].as_i64().unwrap().to_string()))
            .then_some(())
    })
    .expect("the reply to the released mail");
    // Monitoring sees the daemon's last IMAP pass and the mail it counted.
    let health = web_common::Client::new(&format!("127.0.0.1:{port}")).get("/healthz");
    assert_eq!(health.status, 200);
    assert!(
        health.text().contains("\"imap_last_pass\":\"20"),
        "{}",
        health.text()
    );
    let metrics = web_common::Client::new(&format!("127.0.0.1:{port}"))
        .get("/metrics")
        .text();
    assert!(
        metrics.contains("mailintake_mails_total{decision=\"accept\"}")
            && metrics.contains("mailintake_tickets{status=\"feedback\"} 1"),
        "{metrics}"
    );
    eprintln!("browser steps: {:?}", started.elapsed());

    c.close().await.unwrap();
}

/// The daemon is stopped even when a step fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
