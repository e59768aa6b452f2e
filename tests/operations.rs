//! Operations against the real servers: an online backup while the daemon works through a
//! backlog, a restore of it with no duplicate ticket and no second reply, and schema upgrades
//! and refusals through the real binary.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use mailintake::store::SCHEMA_VERSION;
use rusqlite::{Connection, OpenFlags};

const SENDER: &str = "t.ivanova@sev.gov.ru";

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A read-only look at a store file, as an outside program (no lock, no migration).
fn peek(path: &Path) -> Connection {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn ticket_ids(path: &Path) -> HashSet<i64> {
    let c = peek(path);
    let mut st = c.prepare("SELECT id FROM tickets").unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn scalar(path: &Path, sql: &str) -> i64 {
    peek(path).query_row(sql, [], |r| r.get(0)).unwrap()
}

/// [`scalar`] on a store that may not exist yet or still be getting its schema.
fn try_scalar(path: &Path, sql: &str) -> Option<i64> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    c.busy_timeout(Duration::from_secs(10)).ok()?;
    c.query_row(sql, [], |r| r.get(0)).ok()
}

/// APPEND raw mails to help@'s INBOX over one IMAP connection (a backlog in a second).
fn append_inbox(s: &Servers, raws: &[Vec<u8>]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let settings = mailintake::mail::imap::ImapSettings {
            host: "127.0.0.1".into(),
            port: s.get("IMAP_PORT").parse().unwrap(),
            security: mailintake::mail::imap::Security::None,
            username: "help@sevmiac.ru".into(),
            password: s.get("MS_PASSWORD").into(),
            timeout: Duration::from_secs(10),
        };
        let mut conn = mailintake::mail::imap::ImapConn::connect(&settings)
            .await
            .unwrap();
        for raw in raws {
            conn.append("INBOX", raw).await.unwrap();
        }
        conn.logout().await;
    });
}

/// Replies in the sender's mailbox, counted per mail they answer (In-Reply-To).
fn replies_per_mail(s: &Servers) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for raw in maildir(s, SENDER, "INBOX") {
        if let Some(id) = header(&raw, "In-Reply-To") {
            *m.entry(id).or_insert(0) += 1;
        }
    }
    m
}

fn sigterm(child: &mut std::process::Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_for(15, || child.try_wait().ok().flatten()).expect("daemon exits");
    assert!(status.success(), "{status:?}");
}

#[test]
fn backup_during_a_500_mail_backlog_then_restore_without_duplicates() {
    const N: usize = 500;
    let s = Servers::start();
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(
        work.path(),
        "[limits]\nreplies_per_address_per_day = 10000\n",
    );
    let db = work.path().join("mailintake.db");
    let cfg_s = cfg.to_str().unwrap();

    // The backlog: most appended at once, a few through Postfix as a real client sends them.
    let mails: Vec<Vec<u8>> = (0..N)
        .map(|i| mail(SENDER, &format!("Заявка {i}"), FULL_FORM, ""))
        .collect();
    append_inbox(&s, &mails[..N - 5]);
    for m in &mails[N - 5..] {
        s.send(SENDER, "help@sevmiac.ru", m);
    }
    wait_for(30, || {
        (maildir(&s, "help@sevmiac.ru", "INBOX").len() >= N).then_some(())
    })
    .expect("the backlog arrived");

    let log = work.path().join("daemon.log");
    let mut daemon = spawn_daemon(&s, &cfg, &log);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(60, || {
        (try_scalar(&db, "SELECT count(*) FROM tickets")? >= 20).then_some(())
    })
    .unwrap_or_else(|| panic!("the daemon made no tickets; log:\n{}", log_text()));

    // Everything committed before the backup begins must be in the copy.
    let before = ticket_ids(&db);
    let unsent_before = scalar(
        &db,
        "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')",
    );
    let dest = work.path().join("nightly.db");
    let t = Instant::now();
    let out = ok(mailintake(
        &s,
        &["backup", "--config", cfg_s, dest.to_str().unwrap()],
    ));
    let took = t.elapsed();
    let after_backup = scalar(&db, "SELECT count(*) FROM tickets");
    let unsent_after = scalar(
        &db,
        "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')",
    );
    eprintln!(
        "backup in {took:?}: tickets {} before, {after_backup} after; replies unsent {unsent_before} before, {unsent_after} after\n{out}",
        before.len()
    );
    // It ran while the daemon still had work: mail to record or replies to send.
    assert!(
        before.len() < N || unsent_before > 0,
        "the daemon had finished before the backup; the test proves nothing"
    );
    assert!(out.contains("backup written"), "{out}");

    // The copy: opens, passes integrity_check, holds every ticket committed before it began,
    // and matches its checksum file.
    let copy = peek(&dest);
    let integrity: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(copy);
    let in_copy = ticket_ids(&dest);
    let missing: Vec<_> = before.difference(&in_copy).collect();
    assert!(
        missing.is_empty(),
        "tickets committed before the backup are missing from it: {missing:?}"
    );
    let sum = std::fs::read_to_string(work.path().join("nightly.db.sha256")).unwrap();
    let hash = out
        .split("sha256 ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    assert_eq!(sum, format!("{hash}  nightly.db\n"));

    // The daemon lost nothing: every mail became a ticket, every reply went out once.
    let done = wait_for(180, || {
        let tickets = scalar(&db, "SELECT count(*) FROM tickets");
        let unsent = scalar(
            &db,
            "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')",
        );
        let replies = replies_per_mail(&s).len();
        (tickets == N as i64 && unsent == 0 && replies == N).then_some(())
    });
    assert!(
        done.is_some(),
        "the daemon did not finish the backlog: {} tickets, {} replies; log tail:\n{}",
        scalar(&db, "SELECT count(*) FROM tickets"),
        replies_per_mail(&s).len(),
        log_text()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    // The copies of the replies are set aside too before the daemon stops.
    wait_for(60, || {
        (scalar(
            &db,
            "SELECT count(*) FROM mails WHERE outcome = 'own_reply'",
        ) >= N as i64)
            .then_some(())
    })
    .expect("every reply's copy recorded");
    sigterm(&mut daemon);
    assert_eq!(
        scalar(
            &db,
            "SELECT count(DISTINCT ticket_id) FROM mails WHERE outcome = 'ticket'"
        ),
        N as i64
    );
    assert!(replies_per_mail(&s).values().all(|n| *n == 1));

    // Restore refuses while a daemon runs.
    let mut again = spawn_daemon(&s, &cfg, &work.path().join("daemon2.log"));
    wait_for(10, || {
        std::fs::read_to_string(work.path().join("mailintake.lock"))
            .ok()
            .filter(|pid| pid.trim() == again.id().to_string())
    })
    .expect("second daemon holds the lock");
    let refused = mailintake(&s, &["restore", "--config", cfg_s, dest.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(msg.contains("daemon stopped"), "{msg}");
    sigterm(&mut again);

    // Restore, then one pass: the ledger came back with the copy, so no mail makes a second
    // ticket and no reply goes out twice.
    let out = ok(mailintake(
        &s,
        &["restore", "--config", cfg_s, dest.to_str().unwrap()],
    ));
    eprintln!("{out}");
    assert!(out.contains("kept as"), "{out}");
    assert!(work.path().join("mailintake.db.before-restore").exists());
    assert_eq!(ticket_ids(&db), in_copy);
    let once = mailintake(&s, &["run", "--once", "--config", cfg_s]);
    assert!(
        once.status.success(),
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    assert_eq!(
        ticket_ids(&db),
        in_copy,
        "run --once after the restore made tickets"
    );
    let per_mail = replies_per_mail(&s);
    assert_eq!(per_mail.len(), N);
    let twice: Vec<_> = per_mail.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "second replies after the restore: {twice:?}"
    );
    let first_mails = scalar(&db, "SELECT count(DISTINCT first_mail_id) FROM tickets");
    assert_eq!(first_mails, in_copy.len() as i64, "a mail made two tickets");
}

/// A store written by the first release (schema 1), kept as SQL in fixtures/store/: the current
/// binary migrates it in place and every ticket reads as before.
#[test]
fn a_schema_1_store_from_the_fixture_is_upgraded() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("mailintake.db");
    let sql = std::fs::read_to_string(root().join("fixtures/store/v1.sql")).unwrap();
    Connection::open(&db).unwrap().execute_batch(&sql).unwrap();
    assert_eq!(scalar(&db, "PRAGMA user_version"), 1);
    let cfg = work.path().join("mailintake.toml");
    write_offline_config(&cfg, &db);
    let out = ok(bin()
        .args(["tickets", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap());
    let tickets: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(tickets.len(), 2, "{out}");
    assert_eq!(scalar(&db, "PRAGMA user_version"), SCHEMA_VERSION);
    // The v2 migration's own data step ran: a feedback ticket records who asked.
    let feedback_by: String = peek(&db)
        .query_row(
            "SELECT feedback_by FROM tickets WHERE status = 'feedback'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(feedback_by, "mailintake");
    // A backup of a schema-1 store restores; the restore upgrades it.
    let work2 = tempfile::tempdir().unwrap();
    let old = work2.path().join("old.db");
    Connection::open(&old).unwrap().execute_batch(&sql).unwrap();
    let out = ok(bin()
        .args(["restore", "--config"])
        .arg(&cfg)
        .arg(&old)
        .output()
        .unwrap());
    assert!(
        out.contains(&format!("upgraded to {SCHEMA_VERSION}")),
        "{out}"
    );
}

/// A store from a newer release is refused by every command with exit 2 and one sentence, and
/// left untouched.
#[test]
fn a_newer_schema_store_is_refused_with_exit_2() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("mailintake.db");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
            .unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
    }
    let cfg = work.path().join("mailintake.toml");
    write_offline_config(&cfg, &db);
    for args in [
        vec!["tickets"],
        vec!["stats"],
        vec!["run", "--once"],
        vec!["backup", "/dev/null/x"],
    ] {
        let out = bin()
            .env("MAILINTAKE_IMAP_PASSWORD", "x")
            .args(&args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("schema version 99, written by a newer mailintake")
                && err.contains(&format!("knows versions up to {SCHEMA_VERSION}")),
            "{args:?}: {err}"
        );
    }
    assert_eq!(scalar(&db, "PRAGMA user_version"), 99);
    let version = ok(bin().arg("--version").output().unwrap());
    assert_eq!(
        version.trim(),
        format!(
            "mailintake {} (store schema {SCHEMA_VERSION})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// A config whose servers are never contacted (commands that only read the store).
fn write_offline_config(path: &Path, db: &Path) {
    std::fs::write(
        path,
        format!(
            "[imap]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nusername = \"help@sevmiac.ru\"\npassword_env = \"MAILINTAKE_IMAP_PASSWORD\"\ntimeout_seconds = 1\n\n[smtp]\nhost = \"127.0.0.1\"\nport = 9\nsecurity = \"none\"\nfrom = \"help@sevmiac.ru\"\n\n[store]\npath = \"{}\"\n\n[rules]\ndir = \"{}\"\n",
            db.display(),
            root().join("rules").display()
        ),
    )
    .unwrap();
}

/// Captured logs (stderr a file, as under a supervisor that is not journald) carry no ANSI
/// colour codes; `MAILINTAKE_LOG_FORMAT=json` makes every line one JSON object.
#[test]
fn captured_logs_are_plain_text_or_json_lines() {
    let s = Servers::start();
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(work.path(), "");
    for (n, format) in [(1, None), (2, Some("json"))] {
        let log = work.path().join(format!("daemon-{n}.log"));
        let mut cmd = bin();
        cmd.env("MAILINTAKE_IMAP_PASSWORD", s.get("MS_PASSWORD"))
            .env("MAILINTAKE_LOG", "debug")
            // Inherited from a systemd session it must not switch a redirected stderr to journald.
            .env("JOURNAL_STREAM", "1:1")
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        match format {
            Some(f) => cmd.env("MAILINTAKE_LOG_FORMAT", f),
            None => cmd.env_remove("MAILINTAKE_LOG_FORMAT"),
        };
        let mut daemon = cmd.spawn().unwrap();
        s.send(
            SENDER,
            "help@sevmiac.ru",
            &mail(SENDER, &format!("Журнал {n}"), FULL_FORM, ""),
        );
        wait_for(30, || (tickets_json(&s, &cfg).len() == n).then_some(()))
            .expect("the mail became a ticket");
        sigterm(&mut daemon);
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("ticket created"), "{text}");
        assert!(!text.contains('\u{1b}'), "ANSI escape codes in {text}");
        if format == Some("json") {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
            }
        }
    }
}

/// `[store] keep_raw_days`: the raw mail of a ticket closed long ago and of mail refused long ago
/// is cut to its header block, rows and fields stay, an open ticket keeps its mail, and the freed
/// space goes back to the disk with VACUUM; `stats` shows the store's size.
#[test]
fn prune_cuts_old_raw_mail_to_headers_and_vacuums() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("mailintake.db");
    let sql = std::fs::read_to_string(root().join("fixtures/store/v1.sql")).unwrap();
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(&sql).unwrap();
        // (A version-1 store: the raw mail is still a column of `mails`; opening it moves it.)
        // Ticket 1 closed in January; ticket 2 still waits for feedback. Both mails get a body
        // of 4 MiB, and a refused mail from January one of 2 MiB.
        c.execute(
            "UPDATE tickets SET status = 'closed', updated_at = '2026-01-20T10:00:00.000Z' WHERE id = 1",
            [],
        )
        .unwrap();
        let body = |head: &str, n: usize| {
            let mut v = head.as_bytes().to_vec();
            v.extend((0..n).map(|i| (i * 7919 % 251) as u8));
            v
        };
        c.execute(
            "UPDATE mails SET raw = ?1",
            [body("Subject: test\r\n\r\n", 4 << 20)],
        )
        .unwrap();
        c.execute(
            "INSERT INTO mails (mailbox, uidvalidity, uid, sha256, size, arrived_at, processed_at, decision, outcome,
                                reasons, verdict, sender, subject, raw, aside)
             VALUES ('INBOX', 1700000000, 3, 'aa03', 2097152, '2026-01-13T07:00:00.000Z', '2026-01-13T07:00:01.000Z',
                     'reject', 'rejected', 'sender_domain', '{}', 'x@example.com', 'spam', ?1, 'rejected')",
            [body("From: x@example.com\n\n", 2 << 20)],
        )
        .unwrap();
    }
    let cfg = work.path().join("mailintake.toml");
    write_offline_config(&cfg, &db);
    let cfg_s = cfg.to_str().unwrap();
    let run = |args: &[&str]| bin().args(args).arg("--config").arg(&cfg).output().unwrap();

    // Without keep_raw_days nothing is pruned.
    let out = ok(run(&["prune"]));
    assert!(out.contains("kept forever"), "{out}");
    let size_before = std::fs::metadata(&db).unwrap().len();

    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[store]\n", "[store]\nkeep_raw_days = 30\n"),
    )
    .unwrap();
    let out = ok(run(&["prune"]));
    eprintln!("{out}");
    assert!(
        out.contains("1 mails of closed tickets, 1 refused/duplicate/reply copies"),
        "{out}"
    );
    assert!(out.contains("VACUUM: "), "{out}");
    let c = peek(&db);
    let raw_len = |id: i64| -> i64 {
        c.query_row(
            "SELECT length(raw) FROM mail_raw WHERE mail_id = ?1",
            [id],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(raw_len(1), "Subject: test\r\n\r\n".len() as i64);
    assert_eq!(raw_len(3), "From: x@example.com\n\n".len() as i64);
    assert!(raw_len(2) > 4_000_000, "the open ticket's mail was pruned");
    let (count, subject): (i64, String) = c
        .query_row(
            "SELECT (SELECT count(*) FROM mails), subject FROM tickets WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((count, subject.as_str()), (3, "Не открывается расписание"));
    drop(c);
    let size_after = std::fs::metadata(&db).unwrap().len();
    assert!(
        size_after < size_before - 5_000_000,
        "{size_before} → {size_after}"
    );

    // Twice is a no-op; a pruned refused mail is released only by an operator's decision.
    let out = ok(run(&["prune"]));
    assert!(
        out.contains(": 0 mails of closed tickets, 0 refused"),
        "{out}"
    );
    let rel = bin()
        .args([
            "quarantine",
            "release",
            "3",
            "--actor",
            "ops",
            "--config",
            cfg_s,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&rel.stderr);
    assert!(
        !rel.status.success() && err.contains("сроку хранения"),
        "{err}"
    );

    let stats = ok(run(&["stats"]));
    eprintln!("{}", stats.lines().last().unwrap_or_default());
    assert!(
        stats.contains("Хранилище: ") && stats.contains("сокращено по сроку хранения: 2"),
        "{stats}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(run(&["stats", "--json"]))).unwrap();
    assert_eq!(json["store"]["pruned_mails"], 2);
    assert!(json["store"]["on_disk_bytes"].as_u64().unwrap() > 0);
}
