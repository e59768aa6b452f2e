//! The daemon: glue between the mailbox (IMAP), the engine, the store and the outbox (SMTP).
//!
//! One intake pass: list the mailbox, and for the UIDs not yet set aside — fetch them in batches
//! (only the header of a mail too large), judge a batch on every core, record everything it
//! causes in one transaction ([`crate::intake`]), then set its mails aside into the folders of
//! their outcomes. The outbox sender delivers replies separately.
//! An error on one mail is logged with the mail's UID and never stops the loop; connection errors
//! reconnect with capped exponential backoff. Logs carry ids, never body text or patient data.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{watch, Notify};

use crate::config::Config;
use crate::desk::calendar::Calendar;
use crate::intake::{judge_batch, Fetched, Judged};
use crate::mail::imap::{ImapConn, ImapError, ImapSettings, Wake};
use crate::mail::replies::{ReplyContext, ReplyKind, Templates};
use crate::mail::smtp::{Mailer, SendError};
use crate::store::outbox::{AutoSubmitted, OutgoingMail};
use crate::store::{Aside, Outcome, ReplyRequest, ReplyWanted, Store};
use crate::verdict::rules::RuleSet;
use crate::verdict::{Code, Decision, Verdict};

/// Rules and reply templates, swapped as a whole on reload.
pub struct Loaded {
    pub rules: RuleSet,
    pub templates: Templates,
    pub calendar: Calendar,
}

impl Loaded {
    /// Everything in the rules folder, validated; the first problem is returned.
    pub fn load(dir: &std::path::Path) -> Result<Loaded, String> {
        check_rules_dir(dir).map_err(|errors| errors.join("\n"))
    }

    /// An operator's notification or letter to the applicant as `cfg` says to send it: from our
    /// address, with a copy to our mailbox (so it is recognised as our own). The CLI and the web
    /// console both queue theirs through this.
    pub fn render_notification(
        &self,
        cfg: &Config,
        req: &crate::desk::workflow::NotifyRequest<'_>,
    ) -> OutgoingMail {
        crate::desk::workflow::render_notification(
            &self.templates,
            &cfg.smtp.from,
            vec![cfg.copy_to()],
            req,
        )
    }
}

/// Validate every file of a rules folder (engine rules, calendar, reply templates), collecting
/// every problem — for `rules check` and for reloads.
pub fn check_rules_dir(dir: &std::path::Path) -> Result<Loaded, Vec<String>> {
    let mut errors = Vec::new();
    let rules = RuleSet::check(dir).map_err(|es| errors.extend(es.iter().map(|e| e.to_string())));
    let calendar =
        Calendar::load(&dir.join("calendar.toml")).map_err(|e| errors.push(e.to_string()));
    let templates = Templates::load(&dir.join("replies")).map_err(|e| errors.push(e.to_string()));
    match (rules, calendar, templates) {
        (Ok(rules), Ok(calendar), Ok(templates)) => Ok(Loaded {
            rules,
            templates,
            calendar,
        }),
        _ => Err(errors),
    }
}

pub struct Daemon {
    pub cfg: Config,
    pub loaded: Arc<RwLock<Loaded>>,
    pub outbox_ready: Arc<Notify>,
    /// Sender authenticity (`[auth]`, issue 9).
    auth: Arc<crate::mail::auth::IntakeAuth>,
    /// When the last complete intake pass started: a reply left `sending` by a crash is sent
    /// again only after a whole pass that started `confirm_seconds` after the attempt found no
    /// copy of it.
    last_pass: std::sync::Mutex<Option<Timestamp>>,
}

/// Totals of one intake pass, for logs and `--once` output.
#[derive(Debug, Default, Clone)]
pub struct PassStats {
    pub seen: usize,
    pub recorded: usize,
    pub set_aside: usize,
    pub errors: usize,
    /// Where the pass spent its time (waits on the critical path).
    pub timings: crate::intake::PassTimings,
}

/// Fault injection for the crash harness: with `MAILINTAKE_CRASH_AT` set to a comma list of
/// point names, the process aborts (as a `kill -9` would stop it) at the `MAILINTAKE_CRASH_AFTER`-th
/// time (default 1) one of them is reached. Unset — always in production — it costs one load.
pub fn crash_point(name: &str) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;
    static POINTS: OnceLock<Option<(Vec<String>, usize)>> = OnceLock::new();
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let cfg = POINTS.get_or_init(|| {
        let at = std::env::var("MAILINTAKE_CRASH_AT").ok()?;
        let after = std::env::var("MAILINTAKE_CRASH_AFTER")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        Some((at.split(',').map(|s| s.trim().to_string()).collect(), after))
    });
    if let Some((points, after)) = cfg {
        if points.iter().any(|p| p == name || p == "any")
            && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *after
        {
            eprintln!("mailintake: crash point {name} reached: aborting");
            std::process::abort();
        }
    }
}

/// One daemon per store: an exclusive lock on `<store>.lock`, held while the process lives.
pub fn lock_store(path: &std::path::Path) -> Result<std::fs::File, String> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    let lock_path = path.with_extension("lock");
    if let Some(dir) = lock_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // SAFETY: flock on a file descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let mut pid = String::new();
        let _ = f.read_to_string(&mut pid);
        return Err(format!(
            "another mailintake (pid {}) is already running on the store {}; stop it first",
            pid.trim(),
            path.display()
        ));
    }
    let _ = f.set_len(0);
    let _ = f.rewind();
    let _ = write!(f, "{}", std::process::id());
    Ok(f)
}

/// Recorded mails waiting to be set aside, per folder: (UID, mail id).
#[derive(Default)]
pub(crate) struct PendingMoves {
    by_folder: Vec<(Aside, Vec<(u32, i64)>)>,
}

impl PendingMoves {
    pub(crate) fn add(&mut self, aside: Aside, uid: u32, mail_id: i64) {
        match self.by_folder.iter_mut().find(|(a, _)| *a == aside) {
            Some((_, v)) => v.push((uid, mail_id)),
            None => self.by_folder.push((aside, vec![(uid, mail_id)])),
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.by_folder.iter().map(|(_, v)| v.len()).sum()
    }
    /// Add every mail of `other`.
    pub(crate) fn extend(&mut self, other: PendingMoves) {
        for (aside, items) in other.by_folder {
            for (uid, mail_id) in items {
                self.add(aside, uid, mail_id);
            }
        }
    }
    /// Take the mails of one folder out (`None`: nothing pending).
    pub(crate) fn take_folder(&mut self) -> Option<(Aside, Vec<(u32, i64)>)> {
        while let Some((aside, items)) = self.by_folder.pop() {
            if !items.is_empty() {
                return Some((aside, items));
            }
        }
        None
    }
}

/// Mails fetched (and then judged and recorded) together: one `UID FETCH`, one transaction.
const BATCH_MAILS: usize = 200;
/// ... unless they are larger than this together.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// When the server received the mail (INTERNALDATE), or now when it does not say.
fn arrival(info: &crate::mail::imap::MailInfo) -> Timestamp {
    info.internal_date
        .and_then(|t| Timestamp::from_second(t).ok())
        .unwrap_or_else(Timestamp::now)
}

pub(crate) fn folder_for(cfg: &Config, aside: Aside) -> &str {
    let f = &cfg.imap.folders;
    match aside {
        Aside::Processed => &f.processed,
        Aside::Rejected => &f.rejected,
        Aside::Filtered => &f.filtered,
        Aside::Ignored => &f.ignored,
        Aside::Replies => &f.replies,
    }
}

impl Daemon {
    pub fn new(cfg: Config) -> Result<Daemon, String> {
        let loaded = Loaded::load(&cfg.rules.dir)?;
        let auth = crate::mail::auth::IntakeAuth::new(
            cfg.auth.settings().map_err(|(k, e)| format!("{k}: {e}"))?,
            cfg.auth.policy(),
            Duration::from_secs(cfg.auth.max_wait_minutes.saturating_mul(60)),
        )?;
        Ok(Daemon {
            cfg,
            loaded: Arc::new(RwLock::new(loaded)),
            outbox_ready: Arc::new(Notify::new()),
            auth: Arc::new(auth),
            last_pass: std::sync::Mutex::new(None),
        })
    }

    pub fn open_store(&self) -> Result<Store, String> {
        Store::open(&self.cfg.store.path)
            .map_err(|e| format!("{}: {e}", self.cfg.store.path.display()))
    }

    /// Reload rules and templates; an invalid set is refused and the old one stays in force.
    pub fn reload(&self) -> Result<(), String> {
        let new = Loaded::load(&self.cfg.rules.dir)?;
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(())
    }

    async fn connect(&self, settings: &ImapSettings) -> Result<(ImapConn, u32), ImapError> {
        let trust = self.cfg.imap_trust().map_err(ImapError::Tls)?;
        let mut conn = ImapConn::connect_trusting(settings, &trust).await?;
        let uidvalidity = conn.select(&self.cfg.imap.mailbox).await?;
        let f = &self.cfg.imap.folders;
        for folder in [
            &f.processed,
            &f.rejected,
            &f.filtered,
            &f.ignored,
            &f.replies,
        ] {
            conn.ensure_folder(folder).await?;
        }
        // ensure_folder may have used other commands; keep the intake mailbox selected.
        let uidvalidity2 = conn.select(&self.cfg.imap.mailbox).await?;
        Ok((conn, uidvalidity2.max(uidvalidity)))
    }

    /// One pass over the mailbox. Connection errors are returned (the caller reconnects);
    /// a problem with one mail is logged and counted.
    ///
    /// Mails are fetched in batches (one `UID FETCH` per ≤ 200 mails or 8 MiB); a batch is
    /// judged on every core while the next one is fetched, then recorded in ONE transaction
    /// ([`crate::intake`]); recorded mails are set aside in batches too (one `UID MOVE` per
    /// folder), after their commit. A crash anywhere leaves either unrecorded mails in the inbox
    /// (judged again) or recorded-but-not-moved mails, which the next pass moves without
    /// judging them again.
    pub async fn intake_pass(
        self: &Arc<Self>,
        conn: &mut ImapConn,
        uidvalidity: u32,
        store: &mut Store,
    ) -> Result<PassStats, ImapError> {
        let started = Timestamp::now();
        let pass_clock = std::time::Instant::now();
        let mut stats = PassStats::default();
        let clock = std::time::Instant::now();
        let list = conn.list().await?;
        stats.timings.list += clock.elapsed();
        let mailbox = self.cfg.imap.mailbox.clone();
        let mut moves = PendingMoves::default();
        let mut new_mail: Vec<crate::mail::imap::MailInfo> = Vec::new();
        let present: std::collections::HashSet<u32> = list.iter().map(|i| i.uid).collect();
        for info in list {
            if info
                .flags
                .iter()
                .any(|f| f == &self.cfg.imap.folders.keyword)
            {
                continue; // set aside by keyword on a server without MOVE/UIDPLUS
            }
            stats.seen += 1;
            match store.ledger_state(&mailbox, uidvalidity, info.uid) {
                Ok(Some(s)) if s.set_aside => {}
                Ok(Some(s)) => moves.add(s.aside, info.uid, s.mail_id),
                Ok(None) => new_mail.push(info),
                Err(e) => {
                    tracing::error!(uid = info.uid, error = %e, "ledger lookup failed");
                    stats.errors += 1;
                }
            }
        }
        // Recorded mails that are no longer in the mailbox were moved just before a crash.
        if let Err(e) = store.mark_gone_set_aside(&mailbox, uidvalidity, &present, Timestamp::now())
        {
            tracing::error!(error = %e, "cannot reconcile set-aside mails");
        }
        self.flush_moves(conn, store, &mut moves, &mut stats)
            .await?;

        // The new mail goes through the pipeline of [`crate::intake`]: fetched, judged on every
        // core, recorded in one transaction per batch and set aside, all at once.
        if !new_mail.is_empty() {
            let (pending, failed) = self
                .intake_new_mail(conn, uidvalidity, &new_mail, store, &mut stats)
                .await;
            moves = pending;
            // Mails whose move on the second connection failed, and what the pipeline left:
            // set aside on this connection.
            self.flush_moves(conn, store, &mut moves, &mut stats)
                .await?;
            failed?;
        }
        // Where a backlog's time went (at info only for a backlog: one line per IDLE wake-up
        // would be noise).
        let t = &stats.timings;
        let ms = |d: Duration| d.as_millis() as u64;
        macro_rules! timings {
            ($level:ident) => {
                tracing::$level!(
                    recorded = stats.recorded,
                    list_ms = ms(t.list),
                    fetch_ms = ms(t.fetch),
                    judge_ms = ms(t.judge),
                    record_ms = ms(t.record),
                    commit_ms = ms(t.commit),
                    move_ms = ms(t.moves),
                    recorded_after_ms = ms(t.recorded_after),
                    pass_ms = ms(pass_clock.elapsed()),
                    "intake pass timings"
                )
            };
        }
        if stats.recorded >= BATCH_MAILS {
            timings!(info);
        } else if stats.recorded > 0 {
            timings!(debug);
        }
        *self.last_pass.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
        // For the web console's /healthz and /metrics, which may run in another process.
        if let Err(e) = store.set_meta(
            crate::desk::console::IMAP_LAST_PASS,
            &crate::store::ts(Timestamp::now()),
        ) {
            tracing::warn!(error = %e, "cannot record the time of the IMAP pass");
        }
        Ok(stats)
    }

    /// Set aside every pending mail: one command per folder, then one transaction marking them.
    pub(crate) async fn flush_moves(
        &self,
        conn: &mut ImapConn,
        store: &mut Store,
        moves: &mut PendingMoves,
        stats: &mut PassStats,
    ) -> Result<(), ImapError> {
        for (aside, items) in std::mem::take(&mut moves.by_folder) {
            if items.is_empty() {
                continue;
            }
            let folder = folder_for(&self.cfg, aside).to_string();
            let uids: Vec<u32> = items.iter().map(|(uid, _)| *uid).collect();
            let clock = std::time::Instant::now();
            crash_point("before_move");
            let how = conn
                .set_aside_many(&uids, &folder, &self.cfg.imap.folders.keyword)
                .await?;
            crash_point("after_move");
            tracing::debug!(count = uids.len(), folder = %folder, how = ?how, "set aside");
            let ids: Vec<i64> = items.iter().map(|(_, id)| *id).collect();
            if let Err(e) = store.mark_set_aside_many(&ids, Timestamp::now()) {
                tracing::error!(error = %e, "cannot mark mails as set aside");
            }
            stats.set_aside += ids.len();
            stats.timings.moves += clock.elapsed();
        }
        Ok(())
    }

    /// Fetch the next batch of `new_mail` from `*next` on: one oversized mail (its header
    /// only), or up to `BATCH_MAILS` mails / `BATCH_BYTES` in one `UID FETCH`. Returns the
    /// mails and the time the fetch took.
    pub(crate) async fn fetch_next(
        &self,
        conn: &mut ImapConn,
        new_mail: &[crate::mail::imap::MailInfo],
        next: &mut usize,
    ) -> Result<(Vec<Fetched>, Duration), ImapError> {
        let clock = std::time::Instant::now();
        let max = self.cfg.imap.max_mail_bytes;
        let mut fetched = Vec::new();
        let first = *next;
        if new_mail[first].size > max {
            let info = &new_mail[first];
            *next += 1;
            match conn.fetch_header(info.uid).await? {
                Some(raw) => fetched.push(Fetched {
                    uid: info.uid,
                    size: info.size,
                    arrived_at: arrival(info),
                    raw,
                    headers_only: true,
                }),
                None => tracing::warn!(uid = info.uid, "mail vanished before it could be fetched"),
            }
            return Ok((fetched, clock.elapsed()));
        }
        let mut bytes = 0u64;
        let mut i = first;
        while i < new_mail.len()
            && new_mail[i].size <= max
            && i - first < BATCH_MAILS
            && (i == first || bytes + new_mail[i].size <= BATCH_BYTES)
        {
            bytes += new_mail[i].size;
            i += 1;
        }
        *next = i;
        let batch = &new_mail[first..i];
        let uids: Vec<u32> = batch.iter().map(|m| m.uid).collect();
        for (uid, raw) in conn.fetch_raw_many(&uids).await? {
            let Some(info) = batch.iter().find(|m| m.uid == uid) else {
                continue;
            };
            fetched.push(Fetched {
                uid,
                size: info.size,
                arrived_at: arrival(info),
                raw,
                headers_only: false,
            });
        }
        Ok((fetched, clock.elapsed()))
    }

    /// Judge a fetched batch on the judging pool ([`judge_batch`]), off the async threads.
    pub(crate) fn spawn_judging(
        &self,
        batch: Vec<Fetched>,
    ) -> tokio::task::JoinHandle<Vec<Judged>> {
        let loaded = self.loaded.clone();
        // With `[auth]` off nothing is looked up, so the From header is not even read for it.
        let auth =
            (self.cfg.auth.mode != crate::verdict::auth::AuthMode::Off).then(|| self.auth.clone());
        tokio::task::spawn_blocking(move || {
            let loaded = loaded.read().unwrap_or_else(|e| e.into_inner());
            judge_batch(&loaded, auth.as_deref(), batch)
        })
    }

    /// Release a quarantined mail (`quarantine release`, the console's «Выпустить»): judged again
    /// with the current rules, or accepted by the operator's word (`force`); a ticket made now
    /// is due 8 working hours from now. The CLI and the web console both release through this.
    pub fn release(
        &self,
        store: &mut Store,
        mail_id: i64,
        force: bool,
        actor: &str,
        now: Timestamp,
    ) -> Result<crate::desk::quarantine::ReleaseOutcome, String> {
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let accept_due = Some(rfc3339(&loaded.calendar.accept_due(now)));
        let mut render = |req: &ReplyRequest<'_>| self.render_reply(&loaded, req);
        let form_complete = |f: &crate::verdict::FormFields| {
            crate::verdict::form::missing_required(f, &loaded.rules.form).is_empty()
        };
        crate::desk::quarantine::release(
            store,
            mail_id,
            &loaded.rules,
            force,
            actor,
            now,
            accept_due,
            &mut render,
            &form_complete,
        )
    }

    /// Build one reply from the templates.
    pub fn render_reply(&self, loaded: &Loaded, req: &ReplyRequest<'_>) -> OutgoingMail {
        let v = req.verdict;
        let form = &loaded.rules.form;
        let (kind, problems, missing, status): (ReplyKind, Vec<String>, Vec<String>, Option<&str>) =
            match req.kind {
                ReplyWanted::Accept => (ReplyKind::Accept, vec![], vec![], Some("Новая")),
                ReplyWanted::Completed => (ReplyKind::Completed, vec![], vec![], Some("Новая")),
                ReplyWanted::Incomplete if v.decision == Decision::Followup => (
                    // A follow-up that did not complete the form: what the merged form still lacks,
                    // and the attachment problems the follow-up itself had.
                    ReplyKind::Incomplete,
                    v.warnings
                        .iter()
                        .filter(|w| w.code.group() == Some(Decision::Incomplete))
                        .map(|w| w.detail.clone())
                        .collect(),
                    crate::verdict::form::missing_required(req.fields, form)
                        .iter()
                        .map(|m| form.describe(m).to_string())
                        .collect(),
                    Some("Обратная связь"),
                ),
                ReplyWanted::Incomplete => (
                    ReplyKind::Incomplete,
                    v.reasons
                        .iter()
                        .filter(|r| r.code != Code::FieldsMissing)
                        .map(|r| r.detail.clone())
                        .collect(),
                    v.missing
                        .iter()
                        .map(|m| form.describe(m).to_string())
                        .collect(),
                    Some("Обратная связь"),
                ),
                ReplyWanted::Reject => (
                    ReplyKind::Reject,
                    v.reasons.iter().map(|r| r.detail.clone()).collect(),
                    vec![],
                    None,
                ),
            };
        let ticket = req.ticket.map(|t| t as u64);
        let ctx = ReplyContext {
            ticket,
            subject: v.subject.clone(),
            problems,
            missing,
            status: status.map(str::to_string),
            comment: None,
            operator: None,
        };
        let text = loaded.templates.render(kind, &ctx);
        let domain = self
            .cfg
            .smtp
            .from
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_else(|| "localhost".into());
        let message_id = format!(
            "mailintake.{}.{}.{}@{}",
            req.ticket.unwrap_or(0),
            req.kind.as_str(),
            req.nonce,
            domain
        );
        let mut references = Vec::new();
        if let Some(id) = &v.message_id {
            references.push(id.clone());
        }
        OutgoingMail {
            message_id,
            to: v.sender.clone(),
            subject: loaded.templates.subject(ticket, &v.subject),
            text,
            html: None,
            in_reply_to: v.message_id.clone(),
            references,
            auto_submitted: AutoSubmitted::AutoReplied,
            null_sender: true,
            bcc: vec![self.cfg.copy_to()],
        }
    }

    /// Deliver what is due in the outbox. Returns how many were sent.
    pub async fn send_due(&self, store: &mut Store, mailer: &Mailer) -> usize {
        let now = Timestamp::now();
        self.resolve_sending(store, now);
        let due = match store.due_outbox(now, 100) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return 0;
            }
        };
        let mut sent = 0;
        // One SMTP connection for the round.
        let mut session = mailer.session();
        for item in due {
            if let Err(e) = store.mark_sending(item.id, Timestamp::now()) {
                tracing::error!(outbox = item.id, error = %e, "cannot mark reply as sending");
                continue;
            }
            crash_point("before_smtp");
            match session.send(&item.mail).await {
                Ok(()) => {
                    crash_point("after_smtp");
                    if let Err(e) = store.mark_sent(item.id, Timestamp::now()) {
                        tracing::error!(outbox = item.id, error = %e, "reply sent but not recorded");
                    }
                    tracing::info!(outbox = item.id, ticket = ?item.ticket_id, "reply sent");
                    sent += 1;
                }
                Err(e) => self.record_send_error(store, &item, &e),
            }
        }
        session.close().await;
        sent
    }

    fn record_send_error(&self, store: &mut Store, item: &crate::store::OutboxItem, e: &SendError) {
        let now = Timestamp::now();
        let age = now.duration_since(item.created_at);
        let give_up = age.as_secs() as u64 > self.cfg.smtp.retry_hours * 3600;
        if e.is_transient() && !give_up {
            // retry_base (30 s), doubled each attempt, capped at 30 min.
            let exp = (item.attempts.clamp(1, 7) - 1) as u32;
            let delay = (self.cfg.smtp.retry_base_seconds.max(1) << exp).min(1800);
            let next = now
                .checked_add(jiff::SignedDuration::from_secs(delay as i64))
                .unwrap_or(now);
            tracing::warn!(outbox = item.id, ticket = ?item.ticket_id, error = %e, retry_in_s = delay, "reply deferred");
            if let Err(err) = store.mark_retry(item.id, &e.to_string(), next) {
                tracing::error!(outbox = item.id, error = %err, "cannot record retry");
            }
        } else {
            tracing::error!(outbox = item.id, ticket = ?item.ticket_id, error = %e, "reply undeliverable");
            if let Err(err) = store.mark_failed(item.id, &e.to_string(), now) {
                tracing::error!(outbox = item.id, error = %err, "cannot record failure");
            }
        }
    }

    /// Items left `sending` by a crash: if the copy of the reply reached our mailbox, the SMTP
    /// server accepted it — mark it sent; otherwise, once the copy had time to arrive, send again.
    fn resolve_sending(&self, store: &mut Store, now: Timestamp) {
        let Ok(items) = store.sending_outbox() else {
            return;
        };
        for item in items {
            let copy_seen: bool = store
                .conn()
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM mails WHERE message_id = ?1 AND outcome = 'own_reply')",
                    [&item.mail.message_id],
                    |r| r.get(0),
                )
                .unwrap_or(false);
            if copy_seen {
                let _ = store.mark_sent(item.id, now);
                tracing::info!(outbox = item.id, "reply found delivered after a restart");
            } else {
                let attempted: Option<String> = store
                    .conn()
                    .query_row(
                        "SELECT next_attempt_at FROM outbox WHERE id = ?1",
                        [item.id],
                        |r| r.get(0),
                    )
                    .ok();
                let attempted: Timestamp = attempted
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(Timestamp::UNIX_EPOCH);
                // Resend only when a whole intake pass, started once the copy had
                // `confirm_seconds` to arrive, has not found it: a late restart or a backlog in
                // front of the copy must not cause a second reply.
                let confirm = jiff::SignedDuration::from_secs(self.cfg.smtp.confirm_seconds as i64);
                let waited = now.duration_since(attempted) >= confirm;
                let looked = self
                    .last_pass
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some_and(|started| started.duration_since(attempted) >= confirm);
                if waited && (looked || item.mail.bcc.is_empty()) {
                    let _ = store.mark_retry(
                        item.id,
                        "interrupted while sending; no copy arrived",
                        now,
                    );
                    tracing::warn!(
                        outbox = item.id,
                        "reply interrupted by a restart; sending again"
                    );
                }
            }
        }
    }

    /// `--once`: process what is in the mailbox, send what is due, exit.
    pub async fn run_once(self: &Arc<Self>) -> Result<PassStats, String> {
        let _lock = lock_store(&self.cfg.store.path)?;
        let settings = self.cfg.imap_settings()?;
        let mailer = self.cfg.mailer()?;
        let mut store = self.open_store()?;
        let (mut conn, uidvalidity) = self.connect(&settings).await.map_err(|e| e.to_string())?;
        let mut total = self
            .intake_pass(&mut conn, uidvalidity, &mut store)
            .await
            .map_err(|e| e.to_string())?;
        // Everything due, in rounds of 100, until a round sends nothing more.
        while self.send_due(&mut store, &mailer).await > 0 {}
        // Copies of what was just sent arrive in the mailbox; one more short pass records them
        // so that a following run starts clean.
        let deadline =
            std::time::Instant::now() + Duration::from_secs(self.cfg.smtp.confirm_seconds.min(10));
        while store.count_outbox("sending").unwrap_or(0) > 0 || self.copies_pending(&store) {
            if std::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let s = self
                .intake_pass(&mut conn, uidvalidity, &mut store)
                .await
                .map_err(|e| e.to_string())?;
            // Copies that arrived settle replies a crash left `sending`.
            self.send_due(&mut store, &mailer).await;
            total.seen += s.seen;
            total.recorded += s.recorded;
            total.set_aside += s.set_aside;
            total.errors += s.errors;
        }
        conn.logout().await;
        Ok(total)
    }

    /// Sent replies whose copy has not been seen yet.
    fn copies_pending(&self, store: &Store) -> bool {
        store
            .conn()
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox o WHERE o.state = 'sent' AND NOT EXISTS
                    (SELECT 1 FROM mails m WHERE m.message_id = o.message_id))",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false)
    }

    /// The long-running daemon: intake with IDLE (or polling) and the outbox sender, until
    /// `shutdown` turns true.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) -> Result<(), String> {
        let _lock = lock_store(&self.cfg.store.path)?;
        let settings = self.cfg.imap_settings()?;
        let mailer = self.cfg.mailer()?;
        let sender = {
            let me = self.clone();
            let mut store = me.open_store()?;
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    me.send_due(&mut store, &mailer).await;
                    tokio::select! {
                        _ = me.outbox_ready.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.changed() => {}
                    }
                    if *stop.borrow() {
                        break;
                    }
                }
            })
        };
        let digests = {
            let me = self.clone();
            let times = crate::desk::digest::parse_times(&me.cfg.digest.times)?;
            let mut store = me.open_store()?;
            let mut stop = shutdown.clone();
            tokio::spawn(async move {
                if me.cfg.digest.recipients.is_empty() || times.is_empty() {
                    return; // no scheduled digests
                }
                loop {
                    me.digest_if_due(&mut store, &times);
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                        _ = stop.changed() => {}
                    }
                    if *stop.borrow() {
                        break;
                    }
                }
            })
        };
        let mut store = self.open_store()?;
        let mut stop = shutdown.clone();
        let mut backoff = Duration::from_secs(1);
        let cap = Duration::from_secs(self.cfg.imap.reconnect_max_seconds.max(1));
        'outer: while !*stop.borrow() {
            let (mut conn, uidvalidity) = match self.connect(&settings).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "IMAP connect failed");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => {}
                    }
                    backoff = (backoff * 2).min(cap);
                    continue;
                }
            };
            tracing::info!(mailbox = %self.cfg.imap.mailbox, idle = conn.caps.idle && self.cfg.imap.idle, "connected");
            backoff = Duration::from_secs(1);
            loop {
                match self.intake_pass(&mut conn, uidvalidity, &mut store).await {
                    Ok(s) if s.recorded > 0 || s.errors > 0 => {
                        tracing::info!(
                            recorded = s.recorded,
                            set_aside = s.set_aside,
                            errors = s.errors,
                            "intake pass"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "IMAP error; reconnecting");
                        continue 'outer;
                    }
                }
                let mut wait = if conn.caps.idle && self.cfg.imap.idle {
                    Duration::from_secs(self.cfg.imap.idle_minutes * 60)
                } else {
                    Duration::from_secs(self.cfg.imap.poll_seconds.max(1))
                };
                // A reply left `sending` by a crash is settled only after a pass that started
                // `confirm_seconds` after the attempt: do not wait for new mail to make one.
                if store.count_outbox("sending").unwrap_or(0) > 0 {
                    wait = wait.min(Duration::from_secs(
                        self.cfg.smtp.confirm_seconds.max(1) + 1,
                    ));
                }
                match conn.wait(wait, &mut stop).await {
                    Ok(Wake::Shutdown) => {
                        conn.logout().await;
                        break 'outer;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "IMAP connection lost; reconnecting");
                        continue 'outer;
                    }
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), sender).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), digests).await;
        Ok(())
    }

    /// Queue the scheduled digest when a slot is due (`digest::due_slot`); logs counts only.
    pub fn digest_if_due(&self, store: &mut Store, times: &[jiff::civil::Time]) {
        let now = Timestamp::now();
        let last = match crate::desk::digest::last_sent(store) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the last digest");
                return;
            }
        };
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = crate::desk::digest::due_slot(&loaded.calendar, times, last, now) else {
            return;
        };
        let built =
            crate::desk::digest::build(store, &loaded.calendar, now, self.cfg.digest.mask_patient);
        drop(loaded);
        let d = match built {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the digest");
                return;
            }
        };
        let mail = crate::desk::digest::outgoing(&d, &self.cfg.smtp.from);
        match crate::desk::digest::record_sent(store, &d, &self.cfg.digest.recipients, &mail) {
            Ok(id) => {
                tracing::info!(digest = id, slot = %slot, new = d.new_tickets, feedback = d.feedback,
                    overdue = d.overdue, refused = d.refused, "digest queued");
                self.outbox_ready.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "cannot queue the digest"),
        }
    }
}

/// RFC 3339 with the zone's offset, e.g. `2026-11-30T15:00:00+03:00`.
pub fn rfc3339(z: &jiff::Zoned) -> String {
    z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

pub(crate) fn log_outcome(uid: u32, mail_id: i64, v: &Verdict, outcome: &Outcome) {
    let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
    match outcome {
        Outcome::NewTicket { ticket, status } => {
            tracing::info!(uid, mail_id, ticket, status = status.as_str(), reasons = ?codes, "ticket created")
        }
        Outcome::Followup { ticket, completed } => {
            tracing::info!(uid, mail_id, ticket, completed, "follow-up added")
        }
        other => {
            tracing::info!(uid, mail_id, outcome = ?other, decision = v.decision.as_str(), reasons = ?codes, "mail recorded")
        }
    }
}
