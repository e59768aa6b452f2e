//! `smtp::Mailer` against a real Postfix + Dovecot on loopback (`scripts/mailservers.sh`):
//! what arrives in the recipient's maildir, and how injected 4xx/5xx answers are classified.
//!
//! One server set-up for the whole binary, so everything that needs it lives in one test;
//! the guard stops the servers even when an assertion fails. Needs root and the Debian packages
//! that `scripts/test.sh` installs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use mailintake::mail::smtp::{Mailer, SmtpSecurity, SmtpSettings};
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/mailservers.sh");

/// Running servers under a temporary folder; stopped on drop.
struct Servers {
    dir: tempfile::TempDir,
    log: tempfile::NamedTempFile,
    env: HashMap<String, String>,
}

impl Servers {
    fn start() -> Servers {
        let dir = tempfile::Builder::new()
            .prefix("mailintake-smtp-")
            .tempdir_in("/tmp")
            .unwrap();
        // The guard exists before the start, so a half-started set-up is stopped too.
        let mut servers = Servers {
            dir,
            log: tempfile::NamedTempFile::new().unwrap(),
            env: HashMap::new(),
        };
        servers.run(&["start"]);
        let text = std::fs::read_to_string(servers.dir.path().join("env")).unwrap();
        servers.env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        servers
    }

    /// Runs the script on our folder. Its output goes to a file, not a pipe: a daemon that
    /// kept an inherited pipe open would make waiting for EOF hang forever.
    fn run(&self, args: &[&str]) {
        let (cmd, rest) = args.split_first().unwrap();
        let log_path = self.log.path();
        let log = std::fs::File::create(log_path).unwrap();
        let status = Command::new(SCRIPT)
            .arg(cmd)
            .arg(self.dir.path())
            .args(rest)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
        assert!(
            status.success(),
            "mailservers.sh {args:?} failed:\n{}",
            std::fs::read_to_string(log_path).unwrap_or_default()
        );
    }

    fn smtp_fault(&self, mode: &str) {
        self.run(&["smtp-fault", mode]);
    }

    fn settings(&self) -> SmtpSettings {
        SmtpSettings {
            host: self.env["SMTP_HOST"].clone(),
            port: self.env["SMTP_PORT"].parse().unwrap(),
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "help@sevmiac.ru".into(),
            from_name: Some("СТП ГБУЗС «МИАЦ»".into()),
            timeout: Duration::from_secs(10),
        }
    }

    /// INBOX of `address` (the script's layout: mail/DOMAIN/LOCAL/Maildir).
    fn maildir(&self, address: &str) -> PathBuf {
        let (local, domain) = address.split_once('@').unwrap();
        self.dir
            .path()
            .join("mail")
            .join(domain)
            .join(local)
            .join("Maildir")
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Waits for the delivered mail whose Message-ID is `id` and returns its bytes.
fn wait_for_delivery(maildir: &Path, id: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        for sub in ["new", "cur"] {
            let Ok(entries) = std::fs::read_dir(maildir.join(sub)) else {
                continue;
            };
            for entry in entries.flatten() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                let parsed = MessageParser::default().parse(&bytes[..]);
                if parsed
                    .and_then(|m| m.message_id().map(str::to_string))
                    .as_deref()
                    == Some(id)
                {
                    return bytes;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "{id} did not arrive in {}",
            maildir.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn auto_reply(n: u32) -> OutgoingMail {
    OutgoingMail {
        message_id: format!("mailintake.1042.r{n}.test@sevmiac.ru"),
        to: "t.ivanova@sev.gov.ru".into(),
        subject: "[Заявка #1042] Не открывается расписание".into(),
        text: "Здравствуйте!\n\nВаше обращение зарегистрировано.\nНомер заявки: 1042\n".into(),
        html: None,
        in_reply_to: Some("CAF-original-1@mail.sev.gov.ru".into()),
        references: vec![],
        auto_submitted: AutoSubmitted::AutoReplied,
        null_sender: true,
        bcc: vec!["help@sevmiac.ru".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_through_postfix_and_classifies_faults() {
    let started = Instant::now();
    let servers = Servers::start();
    let mailer = Mailer::new(&servers.settings()).unwrap();

    // An auto-reply with a null envelope sender reaches the sender, and the copy our mailbox.
    let mail = auto_reply(1);
    mailer.send(&mail).await.unwrap();
    let bytes = wait_for_delivery(&servers.maildir("t.ivanova@sev.gov.ru"), &mail.message_id);
    let got = MessageParser::default().parse(&bytes[..]).unwrap();
    assert_eq!(
        got.subject(),
        Some("[Заявка #1042] Не открывается расписание")
    );
    assert_eq!(
        got.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(
        got.header_raw("X-Auto-Response-Suppress").map(str::trim),
        Some("All")
    );
    assert_eq!(
        got.in_reply_to().as_text(),
        Some("CAF-original-1@mail.sev.gov.ru")
    );
    assert_eq!(got.message_id(), Some(mail.message_id.as_str()));
    assert_eq!(
        got.header_raw("Return-Path").map(str::trim),
        Some("<>"),
        "the envelope sender is null (RFC 3834 §3.3)"
    );
    assert_eq!(
        got.from().unwrap().first().unwrap().name(),
        Some("СТП ГБУЗС «МИАЦ»")
    );
    assert!(got.header_raw("Bcc").is_none());
    assert_eq!(got.body_text(0).unwrap().replace("\r\n", "\n"), mail.text);
    wait_for_delivery(&servers.maildir("help@sevmiac.ru"), &mail.message_id);

    // An unknown mailbox is refused at RCPT with 550: permanent.
    let mut nobody = auto_reply(2);
    nobody.to = "nobody@sev.gov.ru".into();
    nobody.bcc.clear();
    let err = mailer.send(&nobody).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");

    servers.smtp_fault("4xx");
    let err = mailer.send(&auto_reply(3)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("451"), "{err}");

    servers.smtp_fault("5xx");
    let err = mailer.send(&auto_reply(4)).await.unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("550"), "{err}");

    servers.smtp_fault("off");
    let mail = auto_reply(5);
    mailer.send(&mail).await.unwrap();
    wait_for_delivery(&servers.maildir("t.ivanova@sev.gov.ru"), &mail.message_id);

    // The stopped server: the connection is refused, which is transient.
    servers.run(&["stop-smtp"]);
    let err = mailer.send(&auto_reply(6)).await.unwrap_err();
    assert!(err.is_transient(), "{err}");

    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}
