//! Shared by the integration tests: real Dovecot + Postfix on loopback, started by the project's
//! own `scripts/mailservers.sh`, a config for them, mail sent with swaks, and the daemon run as
//! the real binary.
#![allow(dead_code)]

pub mod dkim;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// A running pair of servers; stopped on drop.
pub struct Servers {
    pub dir: tempfile::TempDir,
    pub env: HashMap<String, String>,
}

impl Servers {
    pub fn start() -> Servers {
        Servers::start_with(|_| {})
    }

    /// [`Servers::start`] after `prepare` has put files into the set-up folder (e.g. `tls/`
    /// with a certificate, which turns TLS on: see scripts/mailservers.sh).
    pub fn start_with(prepare: impl FnOnce(&Path)) -> Servers {
        let dir = tempfile::Builder::new()
            .prefix("mailintake-test-")
            .tempdir()
            .unwrap();
        prepare(dir.path());
        let out = Command::new("bash")
            .arg(root().join("scripts/mailservers.sh"))
            .arg("start")
            .arg(dir.path())
            .output()
            .expect("run scripts/mailservers.sh");
        assert!(
            out.status.success(),
            "mailservers.sh start failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("env")).unwrap();
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
            .collect();
        Servers { dir, env }
    }

    pub fn get(&self, k: &str) -> &str {
        self.env.get(k).map(String::as_str).unwrap_or("")
    }

    pub fn script(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("bash");
        cmd.arg(root().join("scripts/mailservers.sh"));
        let (first, rest) = args.split_first().unwrap();
        cmd.arg(first).arg(self.dir.path()).args(rest);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "mailservers.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Send a raw mail through Postfix with swaks, as a real client would.
    pub fn send(&self, from: &str, to: &str, raw: &[u8]) {
        let file = self.dir.path().join(format!("send-{}.eml", unique()));
        std::fs::write(&file, raw).unwrap();
        let out = Command::new("swaks")
            .args(["-S", "--server"])
            .arg(format!(
                "{}:{}",
                self.get("SMTP_HOST"),
                self.get("SMTP_PORT")
            ))
            // swaks takes "<>" for the null sender (RFC 5321 MAIL FROM:<>).
            .args([
                "--from",
                if from.is_empty() { "<>" } else { from },
                "--to",
                to,
                "--data",
            ])
            .arg(format!("@{}", file.display()))
            .output()
            .expect("swaks");
        assert!(
            out.status.success(),
            "swaks failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A config file for the daemon against these servers, in `dir`.
    pub fn config(&self, dir: &Path, extra: &str) -> PathBuf {
        let path = dir.join("mailintake.toml");
        let text = format!(
            r#"[imap]
host = "127.0.0.1"
port = {imap}
security = "none"
username = "help@sevmiac.ru"
password_env = "MAILINTAKE_IMAP_PASSWORD"
mailbox = "INBOX"
poll_seconds = 2
timeout_seconds = 5
reconnect_max_seconds = 2

[smtp]
host = "127.0.0.1"
port = {smtp}
security = "none"
from = "help@sevmiac.ru"
confirm_seconds = 5
timeout_seconds = 5

[store]
path = "{store}"

[rules]
dir = "{rules}"
{extra}
"#,
            imap = self.get("IMAP_PORT"),
            smtp = self.get("SMTP_PORT"),
            store = dir.join("mailintake.db").display(),
            rules = root().join("rules").display(),
        );
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(root().join("scripts/mailservers.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

pub fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mailintake"));
    c.env("MAILINTAKE_LOG", "info");
    c
}

/// Run a mailintake command with the test password; returns its output.
pub fn mailintake(servers: &Servers, args: &[&str]) -> Output {
    bin()
        .env("MAILINTAKE_IMAP_PASSWORD", servers.get("MS_PASSWORD"))
        .args(args)
        .output()
        .unwrap()
}

pub fn spawn_daemon(servers: &Servers, config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    bin()
        .env("MAILINTAKE_IMAP_PASSWORD", servers.get("MS_PASSWORD"))
        // Everything, so the tests can check that no level carries patient data or passwords.
        .env("MAILINTAKE_LOG", "trace")
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Poll `f` until it returns Some or the time is up.
pub fn wait_for<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The mail files in a user's folder, read straight from the maildir (new/ and cur/).
pub fn maildir(servers: &Servers, address: &str, folder: &str) -> Vec<Vec<u8>> {
    let (local, domain) = address.split_once('@').unwrap();
    let mut base = servers
        .dir
        .path()
        .join("mail")
        .join(domain)
        .join(local)
        .join("Maildir");
    if folder != "INBOX" {
        base = base.join(folder);
    }
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(base.join(sub)) {
            let mut paths: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for p in paths {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
    }
    out
}

pub fn header(raw: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    msg.header_raw(name).map(|s| s.trim().to_string())
}

pub fn subject(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.subject().map(str::to_string))
        .unwrap_or_default()
}

pub fn body_text(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A plain mail from an МО employee.
pub fn mail(from: &str, subject: &str, body: &str, extra_headers: &str) -> Vec<u8> {
    let id = unique();
    format!(
        "From: {from}\r\nTo: help@sevmiac.ru\r\nSubject: {subject}\r\nDate: Thu, 26 Nov 2026 10:00:00 +0300\r\nMessage-ID: <{id}@test.sev.gov.ru>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

pub const FULL_FORM: &str = "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1», +7 (8692) 55-12-34\r\nФИО пользователя, логин: Петров Пётр Петрович, ppetrov\r\nДанные пациента: Сидоров С.С., № карты 123456\r\nПоследовательность выполняемых действий: Регистратура → Расписание → Запись\r\nОписание ошибки: Шаблон посещения не существует\r\n";

pub const PARTIAL_FORM: &str = "Данные о заявителе: Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1»\r\nОписание ошибки: Не открывается расписание\r\n";

pub fn tickets_json(servers: &Servers, config: &Path) -> Vec<serde_json::Value> {
    let out = mailintake(
        servers,
        &["tickets", "--json", "--config", config.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `ticket show ID --json`, parsed.
pub fn ticket_show_json(servers: &Servers, config: &Path, id: i64) -> serde_json::Value {
    let out = mailintake(
        servers,
        &[
            "ticket",
            "show",
            &id.to_string(),
            "--json",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One string field of every element of an array in a JSON value (`events`/`kind`, …).
pub fn column(v: &serde_json::Value, array: &str, key: &str) -> Vec<String> {
    v[array]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
