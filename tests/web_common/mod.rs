//! Shared by the web console's tests: a store filled through the real engine and store (no mail
//! servers needed), `mailintake web` run as the real binary on a free loopback port, and a small
//! HTTP/1.1 client over a plain TCP socket with a cookie jar (so the tests see exactly the bytes
//! and headers a browser would get).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};
use mailintake::store::{Incoming, Outcome, ReplyRequest, Store};
use mailintake::verdict::rules::RuleSet;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config for a console alone (no mail servers: its IMAP and SMTP ports lead nowhere).
pub fn config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("mailintake.toml");
    std::fs::write(
        &path,
        format!(
            r#"[imap]
host = "127.0.0.1"
port = 9
security = "none"
username = "help@sevmiac.ru"
password_env = "MAILINTAKE_IMAP_PASSWORD"

[smtp]
host = "127.0.0.1"
port = 9
security = "none"
from = "help@sevmiac.ru"

[store]
path = "{store}"

[rules]
dir = "{rules}"
{extra}
"#,
            store = dir.join("mailintake.db").display(),
            rules = root().join("rules").display(),
        ),
    )
    .unwrap();
    path
}

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mailintake"))
}

/// `mailintake user add NAME --role ROLE` with the password on stdin.
pub fn add_user(config: &Path, name: &str, role: &str, password: &str) {
    let mut child = bin()
        .args(["user", "add", name, "--role", role, "--config"])
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Judges `raw` with the project's rules and records it as intake would (arrival `arrived_at`,
/// deadline `accept_due`).
pub fn record(store: &mut Store, raw: &[u8], arrived_at: Timestamp, accept_due: &str) -> Outcome {
    thread_local! {
        static RULES: RuleSet = RuleSet::load(&root().join("rules")).unwrap();
        static UID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }
    let uid = UID.with(|u| {
        u.set(u.get() + 1);
        u.get()
    });
    let verdict = RULES.with(|r| mailintake::verdict::engine::evaluate(raw, r));
    let mail = Incoming {
        mailbox: "INBOX",
        uidvalidity: 1,
        uid,
        arrived_at,
        raw,
        headers_only: false,
        size: raw.len() as u64,
        sha256: format!("sha-{uid}-{}", raw.len()),
        accept_due: Some(accept_due.to_string()),
    };
    let mut render = |req: &ReplyRequest<'_>| OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@sevmiac.ru",
            req.ticket.unwrap_or(0),
            req.kind.as_str(),
            req.nonce
        ),
        to: req.verdict.sender.clone(),
        subject: "reply".into(),
        text: "auto".into(),
        html: None,
        in_reply_to: req.verdict.message_id.clone(),
        references: vec![],
        auto_submitted: AutoSubmitted::AutoReplied,
        null_sender: true,
        bcc: vec![],
    };
    store
        .record_mail(
            &mail,
            &verdict,
            false,
            1000,
            arrived_at,
            &mut render,
            &|_| true,
        )
        .unwrap()
        .1
}

pub fn ticket_of(o: &Outcome) -> i64 {
    match o {
        Outcome::NewTicket { ticket, .. } => *ticket,
        o => panic!("expected a new ticket, got {o:?}"),
    }
}

pub const FULL_FORM: &str = "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1», +7 (8692) 55-12-34\r\nФИО пользователя, логин: Петров Пётр Петрович, ppetrov\r\nДанные пациента: Сидоров С.С., № карты 123456\r\nПоследовательность выполняемых действий: Регистратура → Расписание → Запись\r\nОписание ошибки: Шаблон посещения не существует\r\n";

/// A plain mail with the full form, from an МО employee.
pub fn mail(from: &str, subject: &str, body: &str) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "From: {from}\r\nTo: help@sevmiac.ru\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0300\r\nMessage-ID: <web{n}.{}@test.sev.gov.ru>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
        std::process::id()
    )
    .into_bytes()
}

/// `mailintake web` on a free loopback port; killed on drop.
pub struct WebServer {
    pub child: Child,
    pub addr: String,
}

impl WebServer {
    pub fn start(config: &Path, log: &Path) -> WebServer {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = bin()
            .env("MAILINTAKE_LOG", "info")
            .args(["web", "--listen", &addr, "--config"])
            .arg(config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let server = WebServer { child, addr };
        let end = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&server.addr).is_err()
            || Client::new(&server.addr).get("/healthz").status != 200
        {
            assert!(Instant::now() < end, "the web console did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    pub fn client(&self) -> Client {
        Client::new(&self.addr)
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// HTTP/1.1 over a fresh connection per request, keeping cookies like a browser.
pub struct Client {
    pub addr: String,
    pub cookies: HashMap<String, String>,
    /// `Connection: close` timing of the last request.
    pub last_took: Duration,
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

impl Client {
    pub fn new(addr: &str) -> Client {
        Client {
            addr: addr.to_string(),
            cookies: HashMap::new(),
            last_took: Duration::ZERO,
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    pub fn post(&mut self, path: &str, body: &str) -> Response {
        self.request("POST", path, Some(body))
    }

    pub fn request(&mut self, method: &str, path: &str, body: Option<&str>) -> Response {
        let started = Instant::now();
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        if !self.cookies.is_empty() {
            let c: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.push_str(&format!("Cookie: {}\r\n", c.join("; ")));
        }
        if let Some(b) = body {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        req.push_str("\r\n");
        if let Some(b) = body {
            req.push_str(b);
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        self.last_took = started.elapsed();
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("an HTTP answer");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        for (k, v) in &headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                let pair = v.split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    if value.is_empty() || v.contains("Max-Age=0") {
                        self.cookies.remove(name);
                    } else {
                        self.cookies.insert(name.to_string(), value.to_string());
                    }
                }
            }
        }
        Response {
            status,
            headers,
            body,
        }
    }

    /// The hidden `csrf` value of the first form on the page at `path`.
    pub fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).text();
        hidden(&page, "csrf").unwrap_or_else(|| panic!("no csrf field on {path}"))
    }

    /// Logs in through the form; the answer to the POST.
    pub fn login(&mut self, user: &str, password: &str) -> Response {
        let token = self.csrf("/login");
        self.post(
            "/login",
            &form(&[("username", user), ("password", password), ("csrf", &token)]),
        )
    }
}

pub fn hidden(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = page.find(&marker)? + marker.len();
    Some(page[at..].split('"').next()?.to_string())
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + size]);
        b = &b[nl + 2 + size + 2..];
    }
    out
}
