//! Faults (issue 5): the daemon killed with SIGKILL/abort at random moments over a batch of
//! mixed mails, and deterministically right after SMTP accepted a reply that had waited (restart
//! at once, and restart later than `smtp.confirm_seconds`); the IMAP server crashing mid-fetch
//! and mid-IDLE; the SMTP server down or answering 4xx/5xx; a UIDVALIDITY change; two daemons on
//! one store. One server pair (`scripts/mailservers.sh`) for the whole binary; each scenario has
//! its own store, starts with empty mailboxes and both servers up, and runs even when an earlier
//! one failed (the failures are listed at the end).
//!
//! Mail is made unique per scenario: fixtures (`fixtures/{accept,incomplete,reject,filter,ignore}`
//! and a few of `archives/`, all under 200 KB) get an `X-Test-Seq: N` header and a fresh
//! Message-ID `<faults.TAG.N@test.sev.gov.ru>`, so every mail has its own SHA-256 and every
//! reply names its mail in `In-Reply-To`. The expected decision of each mail comes from
//! `mailintake check` on the exact bytes. The seed of the kill schedule is printed;
//! `FAULTS_SEED=N` replays it, `FAULTS_MAILS=N` changes the batch size (default 200),
//! `FAULTS_ONLY=word` runs only the scenarios whose name contains it, `FAULTS_KEEP=1` keeps
//! each scenario's folder (store, config, daemon logs) and prints where it is.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::{Deref, DerefMut};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

// ------------------------------------------------------------------------- helpers

/// xorshift64*: enough randomness for a kill schedule, and replayable from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in lo..=hi.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// One fixture that may go into a batch, with what `check` decides on it.
#[derive(Clone)]
struct Fixture {
    path: PathBuf,
    raw: Vec<u8>,
    archive: bool,
}

/// One mail of a batch.
#[derive(Clone)]
struct TestMail {
    seq: u32,
    fixture: String,
    raw: Vec<u8>,
    decision: String,
    sender: String,
}

impl TestMail {
    fn ticket_worthy(&self) -> bool {
        matches!(self.decision.as_str(), "accept" | "incomplete")
    }
    fn reply_worthy(&self) -> bool {
        matches!(self.decision.as_str(), "accept" | "incomplete" | "reject")
    }
    fn folder(&self) -> &'static str {
        match self.decision.as_str() {
            "accept" | "incomplete" | "followup" => "Processed",
            "reject" => "Rejected",
            "filter" => "Filtered",
            _ => "Ignored",
        }
    }
}

/// Everything shared by the scenarios: the servers, the fixture pool, the users added.
struct World {
    s: Servers,
    pool: Vec<Fixture>,
    users: HashSet<String>,
}

const GROUPS: [&str; 5] = ["accept", "incomplete", "reject", "filter", "ignore"];

fn fixture_pool() -> Vec<Fixture> {
    let mut out = Vec::new();
    for group in GROUPS.iter().chain(["archives"].iter()) {
        let dir = root().join("fixtures").join(group);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        paths.sort();
        for path in paths {
            let raw = std::fs::read(&path).unwrap();
            // Small mails only; and not the one whose sender has a trailing dot (no mailbox
            // can be made for `x@sev.gov.ru.` here, so its reply could not be counted).
            if raw.len() >= 200_000 || path.to_string_lossy().contains("trailing_dot") {
                continue;
            }
            out.push(Fixture {
                path,
                raw,
                archive: *group == "archives",
            });
        }
    }
    out
}

/// The fixture with its Message-ID replaced by `<faults.TAG.SEQ@test.sev.gov.ru>` and an
/// `X-Test-Seq: SEQ` header in front.
fn uniquify(raw: &[u8], tag: &str, seq: u32) -> Vec<u8> {
    let crlf = raw.windows(2).any(|w| w == b"\r\n");
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let sep: &[u8] = if crlf { b"\r\n\r\n" } else { b"\n\n" };
    let split = raw
        .windows(sep.len())
        .position(|w| w == sep)
        .map_or(raw.len(), |p| p + eol.len());
    let (head, body) = raw.split_at(split);
    let mut out = Vec::with_capacity(raw.len() + 100);
    out.extend_from_slice(format!("X-Test-Seq: {seq}").as_bytes());
    out.extend_from_slice(eol);
    out.extend_from_slice(format!("Message-ID: <faults.{tag}.{seq}@test.sev.gov.ru>").as_bytes());
    out.extend_from_slice(eol);
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
        if !continuation {
            skipping = line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"message-id:");
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// The `X-Test-Seq` of a raw mail and the scenario tag of its Message-ID, if it is one of ours.
fn seq_of(raw: &[u8]) -> Option<u32> {
    let needle = b"X-Test-Seq: ";
    let p = raw.windows(needle.len()).position(|w| w == needle)?;
    let rest = &raw[p + needle.len()..];
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The seq a reply answers, from its In-Reply-To `<faults.TAG.SEQ@...>`.
fn answered_seq(reply: &[u8], tag: &str) -> Option<u32> {
    let irt = header(reply, "In-Reply-To")?;
    let prefix = format!("<faults.{tag}.");
    let rest = irt.trim().strip_prefix(&prefix)?;
    rest.split('@').next()?.parse().ok()
}

impl World {
    fn start() -> World {
        let s = Servers::start();
        World {
            s,
            pool: fixture_pool(),
            users: HashSet::new(),
        }
    }

    /// `n` mails (seq `first..first+n`) from the pool, about 5 % from `archives/`, every group
    /// represented; each judged by `mailintake check` on its exact bytes. Senders of
    /// reply-worthy mails get a mailbox so that replies can be counted where they land.
    fn batch(&mut self, tag: &str, first: u32, n: u32, rng: &mut Rng) -> Vec<TestMail> {
        let plain: Vec<&Fixture> = self.pool.iter().filter(|f| !f.archive).collect();
        let archives: Vec<&Fixture> = self.pool.iter().filter(|f| f.archive).collect();
        let mut order: Vec<usize> = (0..plain.len()).collect();
        rng.shuffle(&mut order);
        let dir = tempfile::tempdir().unwrap();
        let mut mails = Vec::new();
        for i in 0..n {
            let seq = first + i;
            let f = if rng.range(0, 99) < 5 {
                archives[rng.range(0, archives.len() as u64 - 1) as usize]
            } else {
                plain[order[i as usize % order.len()]]
            };
            let raw = uniquify(&f.raw, tag, seq);
            std::fs::write(dir.path().join(format!("{seq:06}.eml")), &raw).unwrap();
            let name = f.path.strip_prefix(root().join("fixtures")).unwrap();
            mails.push(TestMail {
                seq,
                fixture: name.display().to_string(),
                raw,
                decision: String::new(),
                sender: String::new(),
            });
        }
        let out = bin()
            .args(["check"])
            .arg(dir.path())
            .output()
            .expect("mailintake check");
        assert!(
            out.status.success(),
            "check: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut by_seq: HashMap<u32, (String, String)> = HashMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let file = v["file"].as_str().unwrap();
            let seq: u32 = Path::new(file)
                .file_stem()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            by_seq.insert(
                seq,
                (
                    v["decision"].as_str().unwrap().to_string(),
                    v["sender"].as_str().unwrap_or("").to_string(),
                ),
            );
        }
        for m in &mut mails {
            let (d, s) = by_seq.remove(&m.seq).expect("a verdict for every mail");
            m.decision = d;
            m.sender = s.to_lowercase();
        }
        for m in &mails {
            if m.reply_worthy() && self.users.insert(m.sender.clone()) {
                let out = std::process::Command::new("bash")
                    .arg(root().join("scripts/mailservers.sh"))
                    .args(["adduser"])
                    .arg(self.s.dir.path())
                    .arg(&m.sender)
                    .output()
                    .unwrap();
                // The default users already exist; anything else must be added.
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(err.contains("exists"), "adduser {}: {err}", m.sender);
                }
            }
        }
        mails
    }

    /// Both servers up and no SMTP fault, whatever a failed scenario left behind.
    fn heal(&self) {
        let status = |w: &World| {
            let out = std::process::Command::new("bash")
                .arg(root().join("scripts/mailservers.sh"))
                .arg("status")
                .arg(w.s.dir.path())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        let st = status(self);
        if st.contains("dovecot: stopped") {
            self.s.script(&["start-imap"]);
        }
        if st.contains("postfix: stopped") {
            self.s.script(&["start-smtp"]);
        }
        if !st.contains("smtp-fault: off") {
            self.s.script(&["smtp-fault", "off"]);
        }
        if st != status(self) {
            // Mail queued meanwhile is delivered now; let it land before the reset.
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every mail file of every user removed (new/ and cur/ of every folder), after making
    /// sure both servers run normally.
    fn reset_mailboxes(&self) {
        self.heal();
        for path in walk(&self.s.dir.path().join("mail")) {
            if path
                .parent()
                .is_some_and(|p| p.ends_with("new") || p.ends_with("cur"))
            {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    fn imap_settings(&self) -> mailintake::mail::imap::ImapSettings {
        mailintake::mail::imap::ImapSettings {
            host: "127.0.0.1".into(),
            port: self.s.get("IMAP_PORT").parse().unwrap(),
            security: mailintake::mail::imap::Security::None,
            username: "help@sevmiac.ru".into(),
            password: self.s.get("MS_PASSWORD").into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// APPEND raw mails to `folder` of help@sevmiac.ru over one IMAP connection.
    fn append(&self, folder: &str, raws: &[&[u8]]) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut conn = mailintake::mail::imap::ImapConn::connect(&self.imap_settings())
                .await
                .expect("IMAP connect for APPEND");
            for raw in raws {
                conn.append(folder, raw).await.expect("APPEND");
            }
            conn.logout().await;
        });
    }

    /// Deliver a batch: all but `via_smtp` appended to the INBOX, `via_smtp` accept mails sent
    /// with swaks through Postfix (as a real client would).
    fn deliver(&self, mails: &[TestMail], via_smtp: usize) {
        let mut smtp: Vec<&TestMail> = mails
            .iter()
            .filter(|m| m.decision == "accept")
            .take(via_smtp)
            .collect();
        let smtp_seqs: HashSet<u32> = smtp.iter().map(|m| m.seq).collect();
        let appended: Vec<&[u8]> = mails
            .iter()
            .filter(|m| !smtp_seqs.contains(&m.seq))
            .map(|m| m.raw.as_slice())
            .collect();
        self.append("INBOX", &appended);
        for m in smtp.drain(..) {
            self.s.send(&m.sender, "help@sevmiac.ru", &m.raw);
        }
        // Arrived: in the INBOX, or already set aside by a running daemon.
        let want: HashSet<u32> = mails.iter().map(|m| m.seq).collect();
        let help = self.s.dir.path().join("mail/sevmiac.ru/help/Maildir");
        wait_for(30, || {
            let have: HashSet<u32> = walk(&help)
                .iter()
                .filter(|p| {
                    p.parent()
                        .is_some_and(|d| d.ends_with("new") || d.ends_with("cur"))
                })
                .filter_map(|p| std::fs::read(p).ok())
                .filter_map(|m| seq_of(&m))
                .collect();
            want.is_subset(&have).then_some(())
        })
        .expect("every mail of the batch arrived in help@sevmiac.ru");
    }

    fn folder(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        maildir(&self.s, user, folder)
    }

    /// Mails of ours (with an X-Test-Seq) still in help@'s INBOX.
    fn inbox_left(&self) -> usize {
        self.folder("help@sevmiac.ru", "INBOX")
            .iter()
            .filter(|m| seq_of(m).is_some())
            .count()
    }

    /// Every reply in the senders' mailboxes that answers a mail of scenario `tag`, by seq.
    fn replies(&self, tag: &str) -> BTreeMap<u32, usize> {
        let mut out = BTreeMap::new();
        for user in &self.users {
            for r in self.folder(user, "INBOX") {
                if let Some(seq) = answered_seq(&r, tag) {
                    *out.entry(seq).or_insert(0) += 1;
                }
            }
        }
        out
    }

    fn config(&self, dir: &Path, mailbox: &str, extra: &str) -> PathBuf {
        let cfg = self.s.config(dir, extra);
        let text = std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("mailbox = \"INBOX\"", &format!("mailbox = \"{mailbox}\""))
            .replace("poll_seconds = 2", "poll_seconds = 1")
            .replace(
                "confirm_seconds = 5",
                "confirm_seconds = 3\nretry_base_seconds = 1",
            );
        std::fs::write(&cfg, text).unwrap();
        cfg
    }

    /// The daemon (`run`), with optional crash-point environment; stderr to `log`.
    fn spawn(&self, cfg: &Path, log: &Path, crash: Option<(&str, u64)>) -> Proc {
        let mut cmd = bin();
        cmd.env("MAILINTAKE_IMAP_PASSWORD", self.s.get("MS_PASSWORD"))
            .env_remove("MAILINTAKE_CRASH_AT")
            .env_remove("MAILINTAKE_CRASH_AFTER")
            .args(["run", "--config"])
            .arg(cfg)
            .current_dir(cfg.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap());
        if let Some((at, after)) = crash {
            cmd.env("MAILINTAKE_CRASH_AT", at)
                .env("MAILINTAKE_CRASH_AFTER", after.to_string());
        }
        // An abort() must not leave core files behind.
        unsafe {
            cmd.pre_exec(|| {
                let zero = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::setrlimit(libc::RLIMIT_CORE, &zero);
                Ok(())
            });
        }
        Proc(cmd.spawn().unwrap())
    }

    fn run_once(&self, cfg: &Path) -> std::process::Output {
        mailintake(
            &self.s,
            &["run", "--once", "--config", cfg.to_str().unwrap()],
        )
    }
}

/// A scenario's folder (store, config, logs); kept, and named, when `FAULTS_KEEP` is set.
fn workdir(name: &str) -> tempfile::TempDir {
    let keep = std::env::var_os("FAULTS_KEEP").is_some();
    let dir = tempfile::Builder::new()
        .prefix(&format!("faults-{name}-"))
        .disable_cleanup(keep)
        .tempdir()
        .unwrap();
    if keep {
        eprintln!("{name}: work folder {} (kept)", dir.path().display());
    }
    dir
}

/// A daemon process, killed if a failing scenario leaves it running.
struct Proc(Child);

impl Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
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

fn db(work: &Path) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(work.join("mailintake.db")).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

fn count(db: &rusqlite::Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

/// The store is there and has its schema (the daemon creates it at start).
fn store_ready(work: &Path) -> bool {
    work.join("mailintake.db").exists()
        && db(work)
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .is_ok()
}

/// SIGTERM, then wait (SIGKILL after 10 s).
fn stop(child: &mut Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    if wait_for(10, || child.try_wait().ok().flatten()).is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Ledger rows per seq: (non-duplicate rows, duplicate rows, decisions of non-duplicates,
/// rows not marked set aside).
#[derive(Default, Debug)]
struct Ledger {
    /// seq → (mail id, outcome, decision) of every non-duplicate row.
    outcomes: BTreeMap<u32, Vec<(i64, String, String)>>,
    duplicates: BTreeMap<u32, usize>,
    own_replies: usize,
    not_marked_aside: usize,
}

fn ledger(work: &Path) -> Ledger {
    let c = db(work);
    let mut st = c
        .prepare(
            "SELECT m.id, m.outcome, m.decision, r.raw, m.set_aside_at IS NULL
             FROM mails m JOIN mail_raw r ON r.mail_id = m.id ORDER BY m.id",
        )
        .unwrap();
    let mut l = Ledger::default();
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, outcome, decision, raw, unmarked) = row.unwrap();
        match (outcome.as_str(), seq_of(&raw)) {
            ("own_reply", _) => l.own_replies += 1,
            ("duplicate", Some(seq)) => *l.duplicates.entry(seq).or_insert(0) += 1,
            (_, Some(seq)) => {
                l.outcomes
                    .entry(seq)
                    .or_default()
                    .push((id, outcome, decision));
                if unmarked {
                    l.not_marked_aside += 1;
                }
            }
            (o, None) => panic!("a ledger row ({o}) that is none of ours"),
        }
    }
    l
}

/// Everything is done: every mail recorded, the INBOX holds none of ours, no reply waits or is
/// being sent, and the copy of every sent reply has been recorded.
fn settled(w: &World, work: &Path, n: usize) -> bool {
    if !store_ready(work) || w.inbox_left() > 0 {
        return false;
    }
    let c = db(work);
    count(
        &c,
        "SELECT COUNT(*) FROM mails WHERE outcome NOT IN ('duplicate','own_reply')",
    ) as usize
        >= n
        && count(
            &c,
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending','sending')",
        ) == 0
        && count(
            &c,
            "SELECT COUNT(*) FROM outbox o WHERE o.state = 'sent' AND NOT EXISTS
               (SELECT 1 FROM mails m WHERE m.message_id = o.message_id)",
        ) == 0
}

/// For an intake mailbox other than the INBOX (the copies of replies land in the INBOX, which
/// the daemon does not read then): every mail recorded, none of ours left in `mailbox`, no
/// reply waiting or being sent.
fn settled_in(w: &World, work: &Path, mailbox: &str, n: usize) -> bool {
    if !store_ready(work)
        || w.folder("help@sevmiac.ru", mailbox)
            .iter()
            .any(|m| seq_of(m).is_some())
    {
        return false;
    }
    let c = db(work);
    count(
        &c,
        "SELECT COUNT(*) FROM mails WHERE outcome NOT IN ('duplicate','own_reply')",
    ) as usize
        >= n
        && count(
            &c,
            "SELECT COUNT(*) FROM outbox WHERE state IN ('pending','sending')",
        ) == 0
}

/// The promises, checked on the store and the maildirs; returns a printable summary.
fn verify(w: &World, work: &Path, tag: &str, mails: &[TestMail]) -> String {
    let l = ledger(work);
    let c = db(work);
    let mut problems = Vec::new();

    // Every mail has exactly one outcome, with the decision `check` gives.
    for m in mails {
        match l.outcomes.get(&m.seq).map(Vec::as_slice) {
            Some([(_, _, decision)]) if *decision == m.decision => {}
            Some([(_, o, d)]) => problems.push(format!(
                "seq {} ({}): ledger decision {d} ({o}), check said {}",
                m.seq, m.fixture, m.decision
            )),
            other => problems.push(format!(
                "seq {} ({}): {} outcomes {:?}",
                m.seq,
                m.fixture,
                other.map_or(0, |o| o.len()),
                other
            )),
        }
    }
    // Exactly one ticket per ticket-worthy mail.
    let ticket_worthy = mails.iter().filter(|m| m.ticket_worthy()).count();
    let tickets = count(&c, "SELECT COUNT(*) FROM tickets") as usize;
    let first_mails = count(&c, "SELECT COUNT(DISTINCT first_mail_id) FROM tickets") as usize;
    if tickets != ticket_worthy || first_mails != tickets {
        problems.push(format!(
            "{tickets} tickets ({first_mails} distinct first mails), {ticket_worthy} ticket-worthy mails"
        ));
    }
    // Every due reply delivered (state `sent`), at most one per mail.
    let reply_worthy = mails.iter().filter(|m| m.reply_worthy()).count();
    let mut states: BTreeMap<String, i64> = BTreeMap::new();
    {
        let mut st = c
            .prepare("SELECT state, COUNT(*) FROM outbox GROUP BY state")
            .unwrap();
        for r in st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap()
        {
            let (s, n) = r.unwrap();
            states.insert(s, n);
        }
    }
    let sent = states.get("sent").copied().unwrap_or(0) as usize;
    if sent != reply_worthy || states.len() > 1 {
        problems.push(format!(
            "outbox {states:?}, {reply_worthy} reply-worthy mails"
        ));
    }
    let outbox_per_mail = count(
        &c,
        "SELECT COUNT(*) FROM (SELECT mail_id FROM outbox GROUP BY mail_id HAVING COUNT(*) > 1)",
    );
    if outbox_per_mail > 0 {
        problems.push(format!(
            "{outbox_per_mail} mails with more than one outbox row"
        ));
    }
    // In the senders' mailboxes: exactly one reply per reply-worthy mail, none for the others.
    let expected_replies: HashSet<u32> = mails
        .iter()
        .filter(|m| m.reply_worthy())
        .map(|m| m.seq)
        .collect();
    let got = wait_for(20, || {
        let r = w.replies(tag);
        (r.len() >= expected_replies.len()).then_some(r)
    })
    .unwrap_or_else(|| w.replies(tag));
    // Late duplicates would come within a second or two.
    std::thread::sleep(Duration::from_millis(1500));
    let got = {
        let again = w.replies(tag);
        if again.values().sum::<usize>() > got.values().sum::<usize>() {
            again
        } else {
            got
        }
    };
    let delivered = got.len();
    let twice: Vec<(u32, usize)> = got
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&s, &n)| (s, n))
        .collect();
    let unexpected: Vec<u32> = got
        .keys()
        .filter(|s| !expected_replies.contains(s))
        .copied()
        .collect();
    let missing: Vec<u32> = expected_replies
        .iter()
        .filter(|s| !got.contains_key(s))
        .copied()
        .collect();
    if !twice.is_empty() {
        let detail: Vec<String> = twice
            .iter()
            .map(|(s, n)| {
                let f = mails.iter().find(|m| m.seq == *s).map(|m| m.fixture.as_str());
                // The outbox row of that mail: how often it was tried, and when.
                let row = l
                    .outcomes
                    .get(s)
                    .and_then(|o| o.first())
                    .and_then(|(id, _, _)| {
                        c.query_row(
                            "SELECT id, attempts, created_at, next_attempt_at, sent_at, last_error FROM outbox WHERE mail_id = ?1",
                            [id],
                            |r| {
                                Ok(format!(
                                    "outbox {} attempts {} created {} next {} sent {} error {:?}",
                                    r.get::<_, i64>(0)?,
                                    r.get::<_, i64>(1)?,
                                    r.get::<_, String>(2)?,
                                    r.get::<_, String>(3)?,
                                    r.get::<_, Option<String>>(4)?.unwrap_or_default(),
                                    r.get::<_, Option<String>>(5)?,
                                ))
                            },
                        )
                        .ok()
                    });
                format!(
                    "seq {s} ({}) ×{n} [{}]",
                    f.unwrap_or("?"),
                    row.unwrap_or_default()
                )
            })
            .collect();
        problems.push(format!("replied more than once: {}", detail.join(", ")));
    }
    if !unexpected.is_empty() {
        problems.push(format!("replies to mails that want none: {unexpected:?}"));
    }
    if !missing.is_empty() {
        problems.push(format!("no reply reached the sender for seqs {missing:?}"));
    }
    // Nothing left behind: the INBOX is empty of our mail, each mail in its folder once.
    let left = w.inbox_left();
    if left > 0 {
        problems.push(format!("{left} mails left in the INBOX"));
    }
    let mut placed: HashMap<u32, Vec<&str>> = HashMap::new();
    for folder in ["Processed", "Rejected", "Filtered", "Ignored", "Replies"] {
        for m in w.folder("help@sevmiac.ru", folder) {
            if let Some(seq) = seq_of(&m) {
                placed.entry(seq).or_default().push(folder);
            }
        }
    }
    for m in mails {
        match placed.get(&m.seq).map(Vec::as_slice) {
            Some([f]) if *f == m.folder() => {}
            other => problems.push(format!(
                "seq {} ({}, {}): in folders {other:?}, want {}",
                m.seq,
                m.fixture,
                m.decision,
                m.folder()
            )),
        }
    }
    let copies = w.folder("help@sevmiac.ru", "Replies").len();
    let by_decision = {
        let mut d: BTreeMap<&str, usize> = BTreeMap::new();
        for m in mails {
            *d.entry(m.decision.as_str()).or_insert(0) += 1;
        }
        d
    };
    let summary = format!(
        "{} mails {by_decision:?}: outcomes {} (duplicate sightings {}), tickets {tickets}/{ticket_worthy}, \
         outbox {states:?} for {reply_worthy} reply-worthy, replies delivered {delivered} (more than one: {}), \
         copies in Replies {copies} (own_reply rows {}), INBOX left {left}, rows moved but not marked set aside {}",
        mails.len(),
        l.outcomes.values().filter(|v| v.len() == 1).count(),
        l.duplicates.values().sum::<usize>(),
        twice.len(),
        l.own_replies,
        l.not_marked_aside,
    );
    assert!(
        problems.is_empty(),
        "{summary}\n{} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
    summary
}

// ------------------------------------------------------------------------- the test

type Scenario = fn(&mut World);

#[test]
fn faults_against_real_servers() {
    let mut w = World::start();
    let t0 = Instant::now();
    // Every scenario runs even when one fails; the failures are listed at the end.
    let scenarios: [(&str, Scenario); 8] = [
        ("kill harness", kill_harness),
        (
            "crash after smtp, delayed reply",
            crash_after_smtp_delayed_reply,
        ),
        (
            "crash after smtp, late restart",
            crash_after_smtp_late_restart,
        ),
        ("imap crash mid-fetch", imap_crash_mid_fetch),
        ("imap crash mid-idle", imap_crash_mid_idle),
        ("smtp down/4xx/5xx", smtp_down_4xx_5xx),
        ("uidvalidity change", uidvalidity_change),
        ("second daemon", second_daemon_refused),
    ];
    let mut failed = Vec::new();
    let only = std::env::var("FAULTS_ONLY").unwrap_or_default();
    for (name, scenario) in scenarios {
        if !name.contains(only.as_str()) {
            continue;
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&mut w)));
        let verdict = if r.is_ok() { "ok" } else { "FAILED" };
        eprintln!("== {name}: {verdict} at {:?}", t0.elapsed());
        if r.is_err() {
            failed.push(name);
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?} (messages above)");
}

const POINTS: [&str; 7] = [
    "after_fetch",
    "before_commit",
    "after_commit",
    "before_move",
    "after_move",
    "before_smtp",
    "after_smtp",
];

enum Kill {
    /// Abort at the `after`-th time this crash point (or any, for "any") is reached.
    At(&'static str, u64),
    /// SIGKILL from outside after this many milliseconds.
    External(u64),
}

fn kill_harness(w: &mut World) {
    w.reset_mailboxes();
    let seed = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| (unique() as u64) | 1);
    let n: u32 = std::env::var("FAULTS_MAILS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    eprintln!("kill harness: seed {seed} (FAULTS_SEED={seed} replays the schedule), {n} mails");
    let mut rng = Rng(seed);
    let tag = format!("k{seed}");
    let work = workdir("kill");
    let cfg = w.config(
        work.path(),
        "INBOX",
        "\n[limits]\nreplies_per_address_per_day = 100000\n",
    );
    let mut mails = w.batch(&tag, 1, n, &mut rng);
    w.deliver(&mails, 5);

    // The schedule: every named point twice, `any` three times, nine SIGKILLs from outside.
    let mut plan: Vec<Kill> = Vec::new();
    // The intake fetches and moves in batches, so a point is reached a few times per run at
    // most: crash at its 1st–3rd hit.
    for p in POINTS {
        for _ in 0..2 {
            plan.push(Kill::At(p, rng.range(1, 3)));
        }
    }
    for _ in 0..3 {
        plan.push(Kill::At("any", rng.range(1, 6)));
    }
    for _ in 0..9 {
        plan.push(Kill::External(rng.range(150, 1500)));
    }
    rng.shuffle(&mut plan);

    let mut fired: BTreeMap<&str, usize> = POINTS.iter().map(|p| (*p, 0)).collect();
    let (mut kills, mut aborts, mut sigkills, mut runs) = (0, 0, 0, 0);
    let mut next_seq = n + 1;
    let mut extra = 0;
    let mut plan = plan.into_iter().collect::<std::collections::VecDeque<_>>();
    while let Some(kill) = plan.pop_front() {
        // Keep work for the crash points: every run finds new mail to fetch, record, move and
        // answer (the first run alone would otherwise empty the mailbox).
        if w.inbox_left() < 8 && extra < 25 {
            let more = w.batch(&tag, next_seq, 8, &mut rng);
            next_seq += 8;
            extra += 1;
            w.deliver(&more, 0);
            mails.extend(more);
        }
        runs += 1;
        let log = work.path().join(format!("run{runs:02}.log"));
        let mut child = match kill {
            Kill::At(p, after) => w.spawn(&cfg, &log, Some((p, after))),
            Kill::External(_) => w.spawn(&cfg, &log, None),
        };
        let limit = match kill {
            Kill::At(..) => 5000,
            Kill::External(ms) => ms,
        };
        let exited = wait_exit(&mut child, limit);
        let crashed_at = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("mailintake: crash point ")
                    .and_then(|r| r.split_whitespace().next())
                    .map(str::to_string)
            });
        match (exited, crashed_at) {
            (Some(status), Some(point)) => {
                use std::os::unix::process::ExitStatusExt;
                assert_eq!(
                    status.signal(),
                    Some(libc::SIGABRT),
                    "run {runs}: {status:?}"
                );
                if let Some(f) = fired.iter_mut().find(|(k, _)| **k == point) {
                    *f.1 += 1;
                }
                aborts += 1;
                kills += 1;
            }
            (Some(status), None) => panic!(
                "run {runs}: the daemon exited by itself ({status:?}):\n{}",
                tail(&log, 30)
            ),
            (None, _) => {
                unsafe {
                    libc::kill(child.id() as i32, libc::SIGKILL);
                }
                let _ = child.wait();
                sigkills += 1;
                kills += 1;
            }
        }
        if plan.is_empty() {
            // Points not reached twice (nothing to do at that moment) get another turn.
            for (p, k) in &fired {
                if *k < 2 && runs < 60 {
                    plan.push_back(Kill::At(p, 1));
                }
            }
            if kills < 20 {
                plan.push_back(Kill::External(rng.range(150, 1500)));
            }
        }
    }
    eprintln!(
        "kill harness: {runs} runs, {kills} kills ({aborts} at crash points {fired:?}, {sigkills} SIGKILL), \
         {} mails delivered; final clean run",
        mails.len()
    );
    assert!(kills >= 20, "only {kills} kills");
    for (p, k) in &fired {
        assert!(*k >= 2, "crash point {p} reached only {k} times: {fired:?}");
    }

    // A clean run until everything is settled.
    let log = work.path().join("final.log");
    let mut child = w.spawn(&cfg, &log, None);
    let ok = wait_for(120, || settled(w, work.path(), mails.len()).then_some(()));
    stop(&mut child);
    assert!(
        ok.is_some(),
        "not settled after the final run; log:\n{}",
        tail(&log, 40)
    );
    // What the daemon said about replies interrupted by a crash.
    let (mut resent, mut confirmed) = (0, 0);
    for path in walk(work.path()) {
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            resent += text.matches("sending again").count();
            confirmed += text.matches("found delivered after a restart").count();
        }
    }
    eprintln!(
        "kill harness: replies left `sending` by a crash: {confirmed} confirmed by their copy, {resent} sent again"
    );
    let summary = verify(w, work.path(), &tag, &mails);
    eprintln!("kill harness: {summary}");
}

/// The kill harness's `after_smtp` case made deterministic: a reply that waited in the outbox
/// longer than `smtp.confirm_seconds` (3 s here; Postfix was down) is accepted by SMTP and the
/// daemon dies before recording it; restarted at once, the sender still gets exactly one reply.
fn crash_after_smtp_delayed_reply(w: &mut World) {
    crash_after_smtp(w, "delayed", Duration::ZERO);
}

/// The same, but the daemon stays down longer than `smtp.confirm_seconds` before it restarts
/// (a reboot, a crash loop): the copy is already in the INBOX, not yet recorded.
fn crash_after_smtp_late_restart(w: &mut World) {
    crash_after_smtp(w, "late", Duration::from_secs(5));
}

fn crash_after_smtp(w: &mut World, name: &str, down_for: Duration) {
    w.reset_mailboxes();
    let mut rng = Rng(unique() as u64 | 1);
    let tag = format!("{}{}", &name[..1], rng.range(1, 1 << 40));
    let work = workdir(name);
    let cfg = w.config(work.path(), "INBOX", "");
    let mail: Vec<TestMail> = w
        .batch(&tag, 1, 30, &mut rng)
        .into_iter()
        .filter(|m| m.decision == "accept")
        .take(1)
        .collect();
    assert_eq!(mail.len(), 1);
    w.s.script(&["stop-smtp"]);
    w.deliver(&mail, 0);
    let out = w.run_once(&cfg);
    w.s.script(&["start-smtp"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        count(
            &db(work.path()),
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"
        ),
        1,
        "the reply waits"
    );
    // Older than confirm_seconds by the time it is sent.
    std::thread::sleep(Duration::from_secs(4));
    let log = work.path().join("crash.log");
    let mut child = w.spawn(&cfg, &log, Some(("after_smtp", 1)));
    let status = wait_exit(&mut child, 20_000);
    assert!(
        status.is_some()
            && std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("crash point after_smtp"),
        "the daemon did not crash after SMTP:\n{}",
        tail(&log, 20)
    );
    std::thread::sleep(down_for);
    let log = work.path().join("restart.log");
    let mut child = w.spawn(&cfg, &log, None);
    let ok = wait_for(30, || settled(w, work.path(), 1).then_some(()));
    stop(&mut child);
    assert!(ok.is_some(), "not settled:\n{}", tail(&log, 20));
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let resent = said.contains("sending again");
    let summary = verify(w, work.path(), &tag, &mail);
    eprintln!(
        "crash after smtp, restart after {down_for:?}: {summary}; the restarted daemon {}",
        if resent {
            "sent it again"
        } else {
            "found the copy"
        }
    );
}

/// Wait up to `ms` for the child to exit.
fn wait_exit(child: &mut Child, ms: u64) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Dovecot crashes (SIGKILL, no BYE) while a `--once` run works through a backlog; after it
/// is back, a second run finishes and every mail was processed exactly once.
fn imap_crash_mid_fetch(w: &mut World) {
    w.reset_mailboxes();
    let mut rng = Rng(unique() as u64 | 1);
    let tag = format!("f{}", rng.range(1, 1 << 40));
    let work = workdir("fetch");
    let cfg = w.config(
        work.path(),
        "INBOX",
        "\n[limits]\nreplies_per_address_per_day = 100000\n",
    );
    // Large enough that the kill lands mid-run: the intake records up to 200 mails per commit.
    let mails = w.batch(&tag, 1, 1600, &mut rng);
    w.deliver(&mails, 0);
    let log = work.path().join("once.log");
    let mut child = Proc(
        bin()
            .env("MAILINTAKE_IMAP_PASSWORD", w.s.get("MS_PASSWORD"))
            .args(["run", "--once", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let recorded = || {
        if store_ready(work.path()) {
            count(&db(work.path()), "SELECT COUNT(*) FROM mails")
        } else {
            0
        }
    };
    wait_for(30, || (recorded() >= 1).then_some(())).expect("the run started recording");
    w.s.script(&["kill-imap"]);
    let at_kill = recorded();
    let status = wait_for(40, || child.try_wait().unwrap()).expect("the --once run ends");
    w.s.script(&["start-imap"]);
    eprintln!(
        "imap crash mid-fetch: killed after {at_kill} of {} mails recorded; the run ended {status:?}",
        mails.len()
    );
    assert!(
        at_kill < mails.len() as i64,
        "the run had finished before the crash"
    );
    let out = w.run_once(&cfg);
    assert!(
        out.status.success(),
        "second --once: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Copies of the replies sent at the end of the run are recorded by a following run.
    wait_for(60, || {
        if settled(w, work.path(), mails.len()) {
            return Some(());
        }
        let _ = w.run_once(&cfg);
        None
    })
    .expect("settled after the IMAP crash");
    let summary = verify(w, work.path(), &tag, &mails);
    eprintln!("imap crash mid-fetch: {summary}");
}

/// Dovecot crashes while the daemon IDLEs; mail sent before and after is processed once.
fn imap_crash_mid_idle(w: &mut World) {
    w.reset_mailboxes();
    let mut rng = Rng(unique() as u64 | 1);
    let tag = format!("i{}", rng.range(1, 1 << 40));
    let work = workdir("idle");
    let cfg = w.config(work.path(), "INBOX", "");
    let mails = w.batch(&tag, 1, 12, &mut rng);
    let log = work.path().join("daemon.log");
    let mut child = w.spawn(&cfg, &log, None);
    let (before, after) = mails.split_at(6);
    w.deliver(before, 2);
    wait_for(30, || settled(w, work.path(), before.len()).then_some(()))
        .unwrap_or_else(|| panic!("first half not processed:\n{}", tail(&log, 30)));
    // Let the daemon settle into IDLE, then crash Dovecot under it.
    std::thread::sleep(Duration::from_millis(500));
    w.s.script(&["kill-imap"]);
    std::thread::sleep(Duration::from_millis(1500));
    w.s.script(&["start-imap"]);
    w.deliver(after, 2);
    let ok = wait_for(60, || settled(w, work.path(), mails.len()).then_some(()));
    stop(&mut child);
    assert!(
        ok.is_some(),
        "mail after the IMAP crash was not processed:\n{}",
        tail(&log, 40)
    );
    let summary = verify(w, work.path(), &tag, &mails);
    eprintln!("imap crash mid-idle: {summary}");
}

/// Postfix down while mail arrives: tickets are created and replies wait in the outbox; they go
/// out when it is back. Then 4xx (retried, sent after) and 5xx (recorded undeliverable).
fn smtp_down_4xx_5xx(w: &mut World) {
    w.reset_mailboxes();
    let mut rng = Rng(unique() as u64 | 1);
    let tag = format!("s{}", rng.range(1, 1 << 40));
    let work = workdir("smtp");
    let cfg = w.config(work.path(), "INBOX", "");
    let log = work.path().join("daemon.log");
    // Only mails that want a reply, so that every one has something in the outbox.
    let mut mails: Vec<TestMail> = w
        .batch(&tag, 1, 40, &mut rng)
        .into_iter()
        .filter(|m| m.ticket_worthy())
        .take(8)
        .collect();
    assert!(mails.len() == 8, "eight ticket-worthy mails");
    let down = mails[..5].to_vec();
    let fault4 = mails[5..7].to_vec();
    let fault5 = mails[7..8].to_vec();

    let mut child = w.spawn(&cfg, &log, None);
    w.s.script(&["stop-smtp"]);
    w.deliver(&down, 0);
    let waiting = wait_for(30, || {
        let c = db(work.path());
        (count(&c, "SELECT COUNT(*) FROM tickets") == 5
            && count(
                &c,
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND attempts >= 1 AND last_error IS NOT NULL",
            ) == 5)
            .then_some(())
    });
    assert!(
        waiting.is_some(),
        "tickets made, replies waiting while SMTP is down:\n{}",
        tail(&log, 30)
    );
    assert!(w.replies(&tag).is_empty());
    std::thread::sleep(Duration::from_secs(2));
    w.s.script(&["start-smtp"]);
    let sent = wait_for(60, || {
        (count(
            &db(work.path()),
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
        ) == 5)
            .then_some(())
    });
    assert!(
        sent.is_some(),
        "replies sent once SMTP is back:\n{}",
        tail(&log, 30)
    );

    // 4xx: retried, sent once the fault is gone.
    w.s.script(&["smtp-fault", "4xx"]);
    w.deliver(&fault4, 0);
    let deferred = wait_for(30, || {
        (count(
            &db(work.path()),
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND last_error LIKE '%451%'",
        ) == 2)
            .then_some(())
    });
    assert!(deferred.is_some(), "4xx defers:\n{}", tail(&log, 30));
    w.s.script(&["smtp-fault", "off"]);
    let sent = wait_for(60, || {
        (count(
            &db(work.path()),
            "SELECT COUNT(*) FROM outbox WHERE state = 'sent'",
        ) == 7)
            .then_some(())
    });
    assert!(sent.is_some(), "sent after the 4xx:\n{}", tail(&log, 30));

    // 5xx: recorded as undeliverable, never retried.
    w.s.script(&["smtp-fault", "5xx"]);
    w.deliver(&fault5, 0);
    let failed = wait_for(30, || {
        (count(
            &db(work.path()),
            "SELECT COUNT(*) FROM outbox WHERE state = 'failed' AND last_error LIKE '%550%'",
        ) == 1)
            .then_some(())
    });
    w.s.script(&["smtp-fault", "off"]);
    assert!(failed.is_some(), "5xx recorded:\n{}", tail(&log, 30));
    let undeliverable = count(
        &db(work.path()),
        "SELECT COUNT(*) FROM events WHERE kind = 'reply_undeliverable'",
    );
    assert_eq!(undeliverable, 1);
    std::thread::sleep(Duration::from_secs(3));
    stop(&mut child);

    // The 5xx mail's reply never went out; everything else exactly once.
    let replies = w.replies(&tag);
    let failed_seq = fault5[0].seq;
    assert!(
        !replies.contains_key(&failed_seq),
        "a 5xx reply was retried"
    );
    mails.retain(|m| m.seq != failed_seq);
    for m in &mails {
        assert_eq!(replies.get(&m.seq), Some(&1), "seq {} replies", m.seq);
    }
    let c = db(work.path());
    assert_eq!(count(&c, "SELECT COUNT(*) FROM tickets"), 8);
    assert_eq!(w.inbox_left(), 0);
    eprintln!(
        "smtp: 5 replies waited while Postfix was down and went out after, 2 sent after a 4xx, \
         1 recorded undeliverable after a 5xx; replies {:?}",
        replies.values().sum::<usize>()
    );
}

/// Send IMAP commands as help@ with a plain synchronous client; returns everything read.
fn imap_raw(w: &World, cmds: &[&str]) -> String {
    use std::io::{BufRead, BufReader, Write};
    let stream =
        std::net::TcpStream::connect(("127.0.0.1", w.s.get("IMAP_PORT").parse().unwrap())).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut out = String::new();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let login = format!("LOGIN help@sevmiac.ru {}", w.s.get("MS_PASSWORD"));
    for (i, cmd) in std::iter::once(login.as_str())
        .chain(cmds.iter().copied())
        .enumerate()
    {
        let tag = format!("t{i}");
        write!(writer, "{tag} {cmd}\r\n").unwrap();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                return out;
            }
            out.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "IMAP {cmd}: {line}");
                break;
            }
        }
    }
    out
}

fn uidvalidity_of(w: &World, mailbox: &str) -> u32 {
    let out = imap_raw(w, &[&format!("STATUS {mailbox} (UIDVALIDITY)")]);
    let p = out.find("UIDVALIDITY ").expect("STATUS answer");
    out[p + 12..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .unwrap()
}

/// The intake mailbox is deleted and recreated (new UIDVALIDITY) with mail already processed
/// in it plus one new mail: only the new one makes a ticket and a reply.
fn uidvalidity_change(w: &mut World) {
    w.reset_mailboxes();
    let mut rng = Rng(unique() as u64 | 1);
    let tag = format!("u{}", rng.range(1, 1 << 40));
    let work = workdir("uidvalidity");
    let cfg = w.config(work.path(), "Intake", "");
    let all = w.batch(&tag, 1, 30, &mut rng);
    // Ten mails of every kind, then one new accept mail.
    let first: Vec<TestMail> = all.iter().take(10).cloned().collect();
    let new_one = all
        .iter()
        .skip(10)
        .find(|m| m.decision == "accept")
        .expect("an accept mail")
        .clone();
    let _ = imap_raw(w, &["CREATE Intake"]);
    let raws: Vec<&[u8]> = first.iter().map(|m| m.raw.as_slice()).collect();
    w.append("Intake", &raws);
    let v1 = uidvalidity_of(w, "Intake");
    let out = w.run_once(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(60, || {
        if settled_in(w, work.path(), "Intake", first.len()) {
            return Some(());
        }
        let _ = w.run_once(&cfg);
        None
    })
    .expect("first batch settled");
    let c = db(work.path());
    let tickets_before = count(&c, "SELECT COUNT(*) FROM tickets");
    let outbox_before = count(&c, "SELECT COUNT(*) FROM outbox");
    let replies_before: usize = w.replies(&tag).values().sum();

    // Recreate the mailbox with the same bytes the daemon fetched (from the ledger) + one new.
    let old_raws: Vec<Vec<u8>> = {
        let mut st = c
            .prepare(
                "SELECT r.raw FROM mails m JOIN mail_raw r ON r.mail_id = m.id
                 WHERE m.outcome NOT IN ('duplicate','own_reply') ORDER BY m.id",
            )
            .unwrap();
        let rows = st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    };
    assert_eq!(old_raws.len(), first.len());
    imap_raw(w, &["DELETE Intake", "CREATE Intake"]);
    let v2 = uidvalidity_of(w, "Intake");
    assert_ne!(v1, v2, "the recreated mailbox has a new UIDVALIDITY");
    let mut raws: Vec<&[u8]> = old_raws.iter().map(Vec::as_slice).collect();
    raws.push(&new_one.raw);
    w.append("Intake", &raws);
    let out = w.run_once(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for(60, || {
        if settled_in(w, work.path(), "Intake", first.len() + 1) {
            return Some(());
        }
        let _ = w.run_once(&cfg);
        None
    })
    .expect("second batch settled");
    let c = db(work.path());
    let tickets_after = count(&c, "SELECT COUNT(*) FROM tickets");
    let outbox_after = count(&c, "SELECT COUNT(*) FROM outbox");
    let duplicates = count(
        &c,
        &format!("SELECT COUNT(*) FROM mails WHERE outcome = 'duplicate' AND uidvalidity = {v2}"),
    );
    assert_eq!(tickets_after, tickets_before + 1, "exactly one new ticket");
    assert_eq!(outbox_after, outbox_before + 1, "exactly one new reply");
    assert_eq!(
        duplicates,
        first.len() as i64,
        "old mails recorded as duplicates"
    );
    let replies = wait_for(20, || {
        let r = w.replies(&tag);
        r.contains_key(&new_one.seq).then_some(r)
    })
    .expect("the new mail is answered");
    std::thread::sleep(Duration::from_secs(1));
    let replies = {
        let again = w.replies(&tag);
        if again.values().sum::<usize>() > replies.values().sum::<usize>() {
            again
        } else {
            replies
        }
    };
    assert_eq!(
        replies.values().sum::<usize>(),
        replies_before + 1,
        "no new replies for the old mails: {replies:?}"
    );
    eprintln!(
        "uidvalidity {v1} → {v2}: {} old mails recorded as duplicates, tickets {tickets_before} → {tickets_after}, \
         replies {replies_before} → {}",
        duplicates,
        replies.values().sum::<usize>()
    );
}

/// A second daemon on the same store refuses to start, saying why.
fn second_daemon_refused(w: &mut World) {
    w.reset_mailboxes();
    let work = workdir("second");
    let cfg = w.config(work.path(), "INBOX", "");
    let log = work.path().join("daemon.log");
    let mut child = w.spawn(&cfg, &log, None);
    wait_for(20, || store_ready(work.path()).then_some(())).expect("first daemon up");
    std::thread::sleep(Duration::from_millis(300));
    let out = w.run_once(&cfg);
    stop(&mut child);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("already running"), "{msg}");
    eprintln!("second daemon: {}", msg.trim());
}
