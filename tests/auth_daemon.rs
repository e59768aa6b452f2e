//! Sender authenticity (issue 9) through real Postfix and Dovecot on loopback: the daemon in
//! `verify` mode with DNS answers from a file; a forged sender leaves no ticket and gets no
//! reply, a signed mail from the real domain becomes a ticket; a DNS failure leaves the mail in
//! the inbox until `auth.max_wait_minutes`. Its own server pair (`scripts/mailservers.sh`).

mod common;

use std::path::Path;

use common::dkim::{sign, zone};
use common::*;

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn run_once(s: &Servers, cfg: &Path) -> String {
    let out = mailintake(s, &["run", "--once", "--config", cfg.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "run --once failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Mails from senders in help@'s INBOX (copies of our replies excluded).
fn inbox(s: &Servers) -> Vec<Vec<u8>> {
    maildir(s, "help@sevmiac.ru", "INBOX")
        .into_iter()
        .filter(|m| !header(m, "Message-ID").is_some_and(|id| id.contains("mailintake.")))
        .collect()
}

fn wait_inbox(s: &Servers, n: usize) {
    wait_for(20, || (inbox(s).len() >= n).then_some(()))
        .unwrap_or_else(|| panic!("{n} mails did not arrive in help@sevmiac.ru"));
}

fn clear_inbox(s: &Servers) {
    for sub in ["new", "cur"] {
        let dir = s.dir.path().join("mail/sevmiac.ru/help/Maildir").join(sub);
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn text(raw: &[u8]) -> String {
    String::from_utf8(raw.to_vec()).unwrap()
}

#[test]
fn forged_sender_gets_no_ticket_and_no_reply() {
    let s = Servers::start();
    let work = tempfile::tempdir().unwrap();
    let dns = work.path().join("dns.txt");
    std::fs::write(&dns, zone()).unwrap();
    // Postfix of scripts/mailservers.sh is `mail.test.local`; it connects from 127.0.0.1, which
    // the test zone lists in sev.gov.ru's SPF.
    let cfg = s.config(
        work.path(),
        &format!(
            "[auth]\nmode = \"verify\"\nauthserv_id = \"mail.test.local\"\ndns_file = \"{}\"\non_fail = \"quarantine\"\n",
            dns.display()
        ),
    );
    let c = cfg.to_str().unwrap();
    ok(mailintake(&s, &["rules", "check", "--config", c]));

    // The forger writes p.petrov's From, from a server of their own (envelope elsewhere).
    s.send(
        "bounce@example.com",
        "help@sevmiac.ru",
        &mail(
            "p.petrov@sev.gov.ru",
            "Срочно смените пароль",
            FULL_FORM,
            "",
        ),
    );
    // The real t.ivanova: her server signs for sev.gov.ru.
    let genuine = text(&mail(
        "t.ivanova@sev.gov.ru",
        "Не печатается направление",
        FULL_FORM,
        "",
    ));
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        sign(&genuine, "sev.gov.ru").as_bytes(),
    );
    wait_inbox(&s, 2);
    run_once(&s, &cfg);

    let tickets = tickets_json(&s, &cfg);
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    assert_eq!(tickets[0]["sender"], "t.ivanova@sev.gov.ru");
    let id = tickets[0]["id"].as_i64().unwrap();
    wait_for(20, || {
        maildir(&s, "t.ivanova@sev.gov.ru", "INBOX")
            .into_iter()
            .next()
    })
    .expect("the genuine sender gets her ticket number");
    // The forged one: filed in Filtered, nothing sent to the person whose address was used.
    wait_for(10, || {
        (maildir(&s, "help@sevmiac.ru", "Filtered").len() == 1).then_some(())
    })
    .expect("the forged mail is set aside in Filtered");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(maildir(&s, "p.petrov@sev.gov.ru", "INBOX").is_empty());

    let shown = ticket_show_json(&s, &cfg, id);
    assert_eq!(shown["auth"]["dkim"], "pass", "{shown}");
    assert_eq!(shown["auth"]["dmarc"], "pass");
    let shown = ok(mailintake(
        &s,
        &["ticket", "show", &id.to_string(), "--config", c],
    ));
    assert!(
        shown.contains("Подлинность отправителя: DKIM pass, SPF pass, DMARC pass"),
        "{shown}"
    );

    let q = ok(mailintake(
        &s,
        &[
            "quarantine",
            "list",
            "--reason",
            "sender_unauthenticated",
            "--json",
            "--config",
            c,
        ],
    ));
    let q: Vec<serde_json::Value> = q
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["sender"], "p.petrov@sev.gov.ru");
    assert_eq!(q[0]["decision"], "filter");
    let mail_id = q[0]["id"].as_i64().unwrap().to_string();
    let show = ok(mailintake(
        &s,
        &["quarantine", "show", &mail_id, "--config", c],
    ));
    assert!(show.contains("sender_unauthenticated: Не подтверждена подлинность отправителя p.petrov@sev.gov.ru: проверка DMARC"), "{show}");
    assert!(show.contains("DMARC fail"), "{show}");

    // Releasing it by the rules alone keeps it refused: the forgery is a fact of the delivery.
    let out = mailintake(
        &s,
        &[
            "quarantine",
            "release",
            &mail_id,
            "--actor",
            "ivanov",
            "--config",
            c,
        ],
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("sender_unauthenticated"), "{said}");
    assert_eq!(tickets_json(&s, &cfg).len(), 1);
    // A replay with the same rules changes nothing: the stored authentication is judged again.
    let rules = root().join("rules");
    let replay = ok(mailintake(
        &s,
        &["replay", "--rules", rules.to_str().unwrap(), "--config", c],
    ));
    assert!(!replay.contains("→ accept"), "{replay}");
    assert!(replay.contains("unchanged: 2"), "{replay}");

    let digest = ok(mailintake(&s, &["digest", "--print", "--config", c]));
    assert!(
        digest.contains("Подлинность отправителя не подтверждена (1)"),
        "{digest}"
    );
    assert!(
        digest.contains(&format!("quarantine release {mail_id} --force-accept")),
        "{digest}"
    );
    assert!(
        digest.contains("Подлинность отправителя: DKIM pass"),
        "{digest}"
    );

    dns_failure_waits_for_the_next_pass(&s);
    forged_authentication_results_are_not_believed(&s);
}

/// `trust-header` through Postfix: the forger writes `Authentication-Results` claiming a DMARC
/// pass — once with another authserv-id, once with ours (it lands below Postfix's `Received`
/// line, where nothing of our MTA's is): neither is believed; no ticket, no reply.
fn forged_authentication_results_are_not_believed(s: &Servers) {
    clear_inbox(s);
    let work = tempfile::tempdir().unwrap();
    let cfg = s.config(
        work.path(),
        "[auth]\nmode = \"trust-header\"\nauthserv_id = \"mail.test.local\"\n",
    );
    for id in ["mx.evil.example", "mail.test.local"] {
        s.send(
            "bounce@example.com",
            "help@sevmiac.ru",
            &mail(
                "p.petrov@sev.gov.ru",
                &format!("Подделка от {id}"),
                FULL_FORM,
                &format!("Authentication-Results: {id}; dkim=pass header.d=sev.gov.ru; spf=pass smtp.mailfrom=p.petrov@sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n"),
            ),
        );
    }
    wait_inbox(s, 2);
    run_once(s, &cfg);
    assert!(tickets_json(s, &cfg).is_empty());
    let c = cfg.to_str().unwrap();
    let q = ok(mailintake(
        s,
        &[
            "quarantine",
            "list",
            "--reason",
            "sender_unauthenticated",
            "--config",
            c,
        ],
    ));
    assert_eq!(q.lines().count(), 2, "{q}");
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(maildir(s, "p.petrov@sev.gov.ru", "INBOX").is_empty());
}

/// A resolver that does not answer: the mail stays in the inbox (no ticket, no record), and
/// once `max_wait_minutes` has passed it is judged `temperror` and filtered.
fn dns_failure_waits_for_the_next_pass(s: &Servers) {
    clear_inbox(s);
    let work = tempfile::tempdir().unwrap();
    // A loopback port where nothing listens: every DNS question fails at once.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = dead.local_addr().unwrap().port();
    drop(dead);
    let auth = |wait: u32| {
        format!(
            "[auth]\nmode = \"verify\"\nauthserv_id = \"mail.test.local\"\nresolver = \"127.0.0.1:{port}\"\ntimeout_seconds = 1\nmax_wait_minutes = {wait}\n"
        )
    };
    let cfg = s.config(work.path(), &auth(60));
    let genuine = text(&mail(
        "t.ivanova@sev.gov.ru",
        "Пока DNS не отвечает",
        FULL_FORM,
        "",
    ));
    s.send(
        "t.ivanova@sev.gov.ru",
        "help@sevmiac.ru",
        sign(&genuine, "sev.gov.ru").as_bytes(),
    );
    wait_inbox(s, 1);
    run_once(s, &cfg);
    assert!(tickets_json(s, &cfg).is_empty());
    assert_eq!(inbox(s).len(), 1, "the mail waits in the inbox");
    let c = cfg.to_str().unwrap();
    let q = ok(mailintake(
        s,
        &["quarantine", "list", "--json", "--config", c],
    ));
    assert!(q.trim().is_empty(), "nothing recorded yet: {q}");

    // After max_wait: judged with temperror and the fallback (filter).
    let cfg = s.config(work.path(), &auth(0));
    run_once(s, &cfg);
    assert!(tickets_json(s, &cfg).is_empty());
    let q = ok(mailintake(
        s,
        &[
            "quarantine",
            "list",
            "--reason",
            "sender_unauthenticated",
            "--json",
            "--config",
            cfg.to_str().unwrap(),
        ],
    ));
    assert_eq!(q.lines().count(), 1, "{q}");
    let id = serde_json::from_str::<serde_json::Value>(q.lines().next().unwrap()).unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let show = ok(mailintake(
        s,
        &["quarantine", "show", &id, "--config", cfg.to_str().unwrap()],
    ));
    assert!(show.contains("temperror"), "{show}");
    wait_for(10, || inbox(s).is_empty().then_some(())).expect("set aside after max_wait");
}
