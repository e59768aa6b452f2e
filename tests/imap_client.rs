//! The IMAP edge (`mailintake::mail::imap`) against a real Dovecot, with Postfix delivering the
//! test mail, both on loopback and started by `scripts/mailservers.sh` in a temporary folder.
//!
//! One server set-up serves the whole binary: a single test runs the scenarios in order,
//! each building on the mailbox the previous one left. The servers are stopped by a drop
//! guard, also when an assertion fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mailintake::mail::imap::{ImapConn, ImapError, ImapSettings, MailInfo, Moved, Security, Wake};
use tokio::sync::watch;

const KEYWORD: &str = "$MailintakeDone";
const TIMEOUT: Duration = Duration::from_secs(5);

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mailservers.sh")
}

fn run_script(dir: &Path, command: &str) {
    let out = Command::new("bash")
        .arg(script())
        .arg(command)
        .arg(dir)
        .output()
        .expect("run scripts/mailservers.sh");
    assert!(
        out.status.success(),
        "mailservers.sh {command} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Dovecot and Postfix for this test binary; stopped on drop.
struct Servers {
    dir: tempfile::TempDir,
    imap_port: u16,
    smtp_port: u16,
    password: String,
}

impl Servers {
    fn start() -> Servers {
        let dir = tempfile::tempdir().expect("temp dir");
        // Build the guard before starting, so that a half-started set-up is stopped too.
        let mut servers = Servers {
            dir,
            imap_port: 0,
            smtp_port: 0,
            password: String::new(),
        };
        run_script(servers.dir.path(), "start");
        let text = std::fs::read_to_string(servers.dir.path().join("env")).expect("DIR/env");
        let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        servers.imap_port = env["IMAP_PORT"].parse().expect("IMAP_PORT");
        servers.smtp_port = env["SMTP_PORT"].parse().expect("SMTP_PORT");
        servers.password = env["MS_PASSWORD"].to_string();
        assert_eq!(env["IMAP_HOST"], "127.0.0.1");
        servers
    }

    fn settings(&self) -> ImapSettings {
        ImapSettings {
            host: "127.0.0.1".into(),
            port: self.imap_port,
            security: Security::None,
            username: "help@sevmiac.ru".into(),
            password: self.password.clone(),
            timeout: TIMEOUT,
        }
    }

    /// The files Dovecot stored for help@sevmiac.ru (LF line ends, as delivered).
    fn delivered_files(&self) -> Vec<Vec<u8>> {
        let maildir = self.dir.path().join("mail/sevmiac.ru/help/Maildir");
        let mut out = Vec::new();
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(maildir.join(sub))
                .expect("maildir")
                .flatten()
            {
                out.push(std::fs::read(entry.path()).expect("mail file"));
            }
        }
        out
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in ["dovecot.log", "mailservers.log"] {
                if let Ok(text) = std::fs::read_to_string(self.dir.path().join(log)) {
                    let tail: Vec<&str> = text.lines().rev().take(15).collect();
                    eprintln!("--- tail of {log}:");
                    for line in tail.iter().rev() {
                        eprintln!("{line}");
                    }
                }
            }
        }
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

/// Sends one mail to help@sevmiac.ru through Postfix (delivery to Dovecot is asynchronous).
fn send(smtp_port: u16, subject: &str, message_id: &str, body: &str) {
    let out = Command::new("swaks")
        .args(["-S", "--server", &format!("127.0.0.1:{smtp_port}")])
        .args(["--from", "t.ivanova@sev.gov.ru", "--to", "help@sevmiac.ru"])
        .args(["--header", &format!("Subject: {subject}")])
        .args(["--header", &format!("Message-Id: {message_id}")])
        .args(["--body", body])
        .output()
        .expect("run swaks");
    assert!(
        out.status.success(),
        "swaks failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lists until the mailbox holds `n` mails (delivery is asynchronous).
async fn wait_for_mails(conn: &mut ImapConn, n: usize) -> Vec<MailInfo> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mails = conn.list().await.expect("list");
        if mails.len() == n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} mails, the mailbox has {}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn uids(mails: &[MailInfo]) -> Vec<u32> {
    mails.iter().map(|m| m.uid).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn without_cr(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|&b| b != b'\r').collect()
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_client_against_dovecot() {
    let started = Instant::now();
    let servers = Servers::start();
    let s = servers.settings();
    let smtp = servers.smtp_port;
    eprintln!("servers up after {:?}", started.elapsed());

    // ---- connect, capabilities, login failures
    let mut conn = ImapConn::connect(&s).await.expect("connect");
    assert!(
        conn.caps.idle && conn.caps.move_ && conn.caps.uidplus,
        "Dovecot has IDLE, MOVE and UIDPLUS: {:?}",
        conn.caps
    );

    let mut wrong = s.clone();
    wrong.password = "not-the-password".into();
    let err = ImapConn::connect(&wrong).await.unwrap_err();
    eprintln!("wrong password: {err}");
    assert!(matches!(err, ImapError::Auth(_)), "{err}");
    assert!(
        !err.is_transient(),
        "a rejected login is not retried: {err}"
    );
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    // ---- select, empty list
    let uidvalidity = conn.select("INBOX").await.expect("select INBOX");
    assert!(uidvalidity > 0);
    let err = conn.select("NoSuchMailbox").await.unwrap_err();
    assert!(matches!(err, ImapError::NoMailbox(_)), "{err}");
    assert!(err.is_permanent());
    let err = conn.list().await.unwrap_err();
    assert!(err.to_string().contains("no mailbox is selected"), "{err}");
    assert_eq!(conn.select("INBOX").await.unwrap(), uidvalidity);
    assert_eq!(conn.list().await.expect("list of an empty mailbox"), vec![]);

    // ---- three mails: list, fetch, header
    for i in 1..=3 {
        send(
            smtp,
            &format!("Ticket {i}"),
            &format!("<m{i}@sev.gov.ru>"),
            &format!("body number {i}"),
        );
    }
    let mails = wait_for_mails(&mut conn, 3).await;
    eprintln!("3 mails delivered after {:?}", started.elapsed());
    assert!(mails.windows(2).all(|w| w[0].uid < w[1].uid), "{mails:?}");
    for m in &mails {
        assert!(m.size > 100, "{m:?}");
        let date = m.internal_date.expect("INTERNALDATE");
        assert!((date - now_unix()).abs() < 3600, "{m:?}");
        assert!(!m.flags.iter().any(|f| f == "\\Seen"), "{m:?}");
    }

    let first = mails[0].uid;
    let raw = conn.fetch_raw(first).await.unwrap().expect("mail 1");
    assert!(contains(&raw, "Subject: Ticket 1"));
    assert!(contains(&raw, "body number 1"));
    assert_eq!(
        raw.len() as u64,
        mails[0].size,
        "BODY[] is RFC822.SIZE bytes"
    );
    let delivered = servers.delivered_files();
    assert!(
        delivered.iter().any(|f| *f == without_cr(&raw)),
        "BODY[] equals the delivered file (up to CRLF)"
    );
    let again = conn.list().await.unwrap();
    assert!(
        !again[0].flags.iter().any(|f| f == "\\Seen"),
        "BODY.PEEK must not set \\Seen: {:?}",
        again[0]
    );

    let header = conn.fetch_header(first).await.unwrap().expect("header 1");
    assert!(contains(&header, "Subject: Ticket 1"));
    assert!(contains(&header, "Message-Id: <m1@sev.gov.ru>"));
    assert!(!contains(&header, "body number 1"));
    assert!(raw.starts_with(&header));
    assert!(header.ends_with(b"\r\n\r\n"));

    assert_eq!(conn.fetch_raw(999_999).await.unwrap(), None);
    assert_eq!(conn.fetch_header(999_999).await.unwrap(), None);

    // ---- folders, set aside (MOVE, COPY+UID EXPUNGE, keyword), Message-ID look-up
    conn.ensure_folder("Processed")
        .await
        .expect("create Processed");
    conn.ensure_folder("Processed")
        .await
        .expect("Processed again");

    let err = conn.set_aside(first, "Missing", KEYWORD).await.unwrap_err();
    assert!(matches!(err, ImapError::NoMailbox(_)), "{err}");
    assert_eq!(conn.list().await.unwrap().len(), 3, "nothing moved");

    assert_eq!(
        conn.set_aside(first, "Processed", KEYWORD).await.unwrap(),
        Moved::Moved
    );
    let left = conn.list().await.unwrap();
    assert_eq!(left.len(), 2);
    assert!(left.iter().all(|m| m.uid != first));

    assert_eq!(
        conn.set_aside(first, "Processed", KEYWORD).await.unwrap(),
        Moved::Moved,
        "a UID that is already gone is not an error"
    );
    assert!(conn
        .find_message_id("Processed", "<m1@sev.gov.ru>")
        .await
        .unwrap());
    assert!(conn
        .find_message_id("Processed", "m1@sev.gov.ru")
        .await
        .unwrap());
    assert!(!conn
        .find_message_id("Processed", "<m2@sev.gov.ru>")
        .await
        .unwrap());
    assert!(!conn
        .find_message_id("NoSuchFolder", "<m1@sev.gov.ru>")
        .await
        .unwrap());
    assert!(conn
        .find_message_id("INBOX", "<m2@sev.gov.ru>")
        .await
        .unwrap());
    // INBOX is selected again after looking elsewhere (flags differ: \Recent is per SELECT).
    assert_eq!(uids(&conn.list().await.unwrap()), uids(&left));

    let caps = conn.caps;
    conn.caps.move_ = false;
    assert_eq!(
        conn.set_aside(left[0].uid, "Processed", KEYWORD)
            .await
            .unwrap(),
        Moved::CopiedAndExpunged
    );
    assert_eq!(uids(&conn.list().await.unwrap()), vec![left[1].uid]);
    assert!(conn
        .find_message_id("Processed", "<m2@sev.gov.ru>")
        .await
        .unwrap());

    conn.caps.uidplus = false;
    assert_eq!(
        conn.set_aside(left[1].uid, "Processed", KEYWORD)
            .await
            .unwrap(),
        Moved::Flagged
    );
    let flagged = conn.list().await.unwrap();
    assert_eq!(flagged.len(), 1, "a flagged mail stays");
    assert!(flagged[0].flags.iter().any(|f| f == KEYWORD), "{flagged:?}");
    assert!(!conn
        .find_message_id("Processed", "<m3@sev.gov.ru>")
        .await
        .unwrap());
    conn.caps = caps;
    eprintln!("folders done after {:?}", started.elapsed());

    // ---- IDLE: timeout, new mail, shutdown
    let (stop_tx, mut stop_rx) = watch::channel(false);
    conn.list().await.unwrap();
    let t = Instant::now();
    let wake = conn
        .wait(Duration::from_millis(400), &mut stop_rx)
        .await
        .unwrap();
    assert_eq!(wake, Wake::Timeout);
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || {
            send(smtp, "Ticket 4", "<m4@sev.gov.ru>", "body number 4");
            Instant::now()
        })
        .await
        .unwrap()
    });
    let wake = conn
        .wait(Duration::from_secs(20), &mut stop_rx)
        .await
        .unwrap();
    let woke = Instant::now();
    let sent = sender.await.unwrap();
    assert_eq!(wake, Wake::NewMail);
    eprintln!(
        "IDLE woke {:?} after swaks returned",
        woke.saturating_duration_since(sent)
    );
    assert!(
        woke.saturating_duration_since(sent) < Duration::from_secs(2),
        "IDLE noticed the mail {:?} after swaks returned",
        woke.saturating_duration_since(sent)
    );
    let mails = wait_for_mails(&mut conn, 2).await;
    let fourth = conn.fetch_header(mails[1].uid).await.unwrap().unwrap();
    assert!(contains(&fourth, "Subject: Ticket 4"));

    let flipper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop_tx.send(true).unwrap();
        stop_tx
    });
    let t = Instant::now();
    let wake = conn
        .wait(Duration::from_secs(30), &mut stop_rx)
        .await
        .unwrap();
    assert_eq!(wake, Wake::Shutdown);
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    conn.noop()
        .await
        .expect("DONE was sent: the connection still works");
    let t = Instant::now();
    let wake = conn
        .wait(Duration::from_secs(30), &mut stop_rx)
        .await
        .unwrap();
    assert_eq!(wake, Wake::Shutdown, "a raised signal stays raised");
    assert!(t.elapsed() < Duration::from_millis(100));
    drop(flipper.await.unwrap());
    eprintln!("IDLE done after {:?}", started.elapsed());

    // ---- the server restarts during IDLE: an error, then a fresh connection sees the mail
    let (_stop_tx, mut stop_rx) = watch::channel(false);
    let dir = servers.dir.path().to_path_buf();
    let restarter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || run_script(&dir, "restart-imap"))
            .await
            .unwrap()
    });
    let t = Instant::now();
    let err = conn
        .wait(Duration::from_secs(30), &mut stop_rx)
        .await
        .unwrap_err();
    eprintln!("restart during IDLE after {:?}: {err}", t.elapsed());
    assert!(err.is_transient(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    restarter.await.unwrap();
    let err = conn.noop().await.unwrap_err();
    assert!(
        err.is_transient(),
        "a broken connection stays broken: {err}"
    );
    conn.logout().await;

    // A crash (SIGKILL, no BYE): the socket just closes.
    let mut conn = ImapConn::connect(&s).await.expect("connect after restart");
    conn.select("INBOX").await.unwrap();
    let dir = servers.dir.path().to_path_buf();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tokio::task::spawn_blocking(move || run_script(&dir, "kill-imap"))
            .await
            .unwrap()
    });
    let t = Instant::now();
    let err = conn
        .wait(Duration::from_secs(30), &mut stop_rx)
        .await
        .unwrap_err();
    eprintln!("crash during IDLE after {:?}: {err}", t.elapsed());
    assert!(err.is_transient(), "{err}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    killer.await.unwrap();
    let err = ImapConn::connect(&s).await.unwrap_err();
    assert!(err.is_transient(), "the server is down: {err}");
    run_script(servers.dir.path(), "start-imap");

    send(smtp, "Ticket 5", "<m5@sev.gov.ru>", "body number 5");
    let mut conn = ImapConn::connect(&s).await.expect("reconnect");
    assert_eq!(conn.select("INBOX").await.unwrap(), uidvalidity);
    let mails = wait_for_mails(&mut conn, 3).await;
    let fifth = conn.fetch_raw(mails[2].uid).await.unwrap().unwrap();
    assert!(contains(&fifth, "Subject: Ticket 5"));
    eprintln!("restart done after {:?}", started.elapsed());

    // ---- APPEND, a Cyrillic folder name
    let folder = "Обработано";
    conn.ensure_folder(folder)
        .await
        .expect("create a Cyrillic folder");
    conn.ensure_folder(folder).await.expect("and again");
    let appended = b"From: robot@sev.gov.ru\r\nTo: help@sevmiac.ru\r\n\
Subject: appended\r\nMessage-ID: <appended-1@sev.gov.ru>\r\n\r\nhello\r\n";
    conn.append(folder, appended).await.expect("append");
    assert!(conn
        .find_message_id(folder, "<appended-1@sev.gov.ru>")
        .await
        .unwrap());
    let err = conn.append("Missing", appended).await.unwrap_err();
    assert!(matches!(err, ImapError::NoMailbox(_)), "{err}");
    assert_eq!(conn.list().await.unwrap().len(), 3, "INBOX still selected");
    conn.logout().await;

    // ---- transport failures
    let mut tls = s.clone();
    tls.security = Security::Tls;
    let err = ImapConn::connect(&tls).await.unwrap_err();
    eprintln!("TLS to a plaintext port: {err}");
    assert!(
        matches!(err, ImapError::Tls(_)),
        "TLS to a plaintext port: {err}"
    );
    assert!(err.is_permanent());
    let mut starttls = s.clone();
    starttls.security = Security::Starttls;
    let err = ImapConn::connect(&starttls).await.unwrap_err();
    eprintln!("STARTTLS without server support: {err}");
    assert!(
        matches!(err, ImapError::Tls(_)),
        "no STARTTLS on this server: {err}"
    );

    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut refused = s.clone();
    refused.port = closed_port;
    let err = ImapConn::connect(&refused).await.unwrap_err();
    eprintln!("closed port: {err}");
    assert!(matches!(err, ImapError::Connect(_)), "{err}");
    assert!(err.is_transient());

    eprintln!("all scenarios done after {:?}", started.elapsed());
}
