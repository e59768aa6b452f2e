//! The intake of new mail: fetched, judged on every core, recorded in one transaction per
//! batch, set aside — four stages running at once ([`Daemon::intake_new_mail`]).
//!
//! [`judge`] is the single place where a mail meets the engine (a check that must run before
//! judging goes there). [`judge_batch`] runs it over a batch on a pool of scoped threads sized
//! to the machine; the store has one writer, a thread of its own, which records a judged batch
//! with [`Daemon::record_batch`] in ONE transaction (one fsync per batch) and only then hands
//! its mails on to be moved, on a second IMAP connection while the intake one fetches.
//!
//! Nothing here logs body text.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::daemon::{crash_point, folder_for, Daemon, Loaded, PassStats, PendingMoves};
use crate::mail::auth::{AuthStep, IntakeAuth};
use crate::mail::imap::{ImapConn, ImapError, MailInfo};
use crate::store::{Aside, Incoming, Outcome, ReplyRequest, Store};
use crate::verdict::auth::SenderAuth;
use crate::verdict::engine;
use crate::verdict::rules::RuleSet;
use crate::verdict::{Decision, FormFields, Verdict};

/// Time an intake pass spent on each stage. The stages run at the same time (see
/// [`Daemon::intake_new_mail`]), so the times add up to more than the pass took.
#[derive(Debug, Default, Clone)]
pub struct PassTimings {
    pub list: Duration,
    /// `UID FETCH` of the batches.
    pub fetch: Duration,
    /// The judging pool on the batches.
    pub judge: Duration,
    /// Writing the rows of the batches (reply rendering included), before their commits.
    pub record: Duration,
    /// The commits: one fsync of the WAL per batch.
    pub commit: Duration,
    /// `UID MOVE` (or COPY + STORE + EXPUNGE) and marking the mails set aside.
    pub moves: Duration,
    /// From the start of the pipeline to the commit of its last batch: when every ticket of
    /// the pass was in the queue and every reply queued.
    pub recorded_after: Duration,
}

/// What the store writer did in one pass.
#[derive(Debug, Default)]
struct WriterStats {
    recorded: usize,
    errors: usize,
    record: Duration,
    commit: Duration,
    last_commit: Duration,
}

/// A mail as fetched: the whole mail, or only its header block when it is too large.
pub struct Fetched {
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: u64,
    pub arrived_at: Timestamp,
    pub raw: Vec<u8>,
    pub headers_only: bool,
}

/// A fetched mail with what the engine made of it.
pub struct Judged {
    pub mail: Fetched,
    pub sha256: String,
    /// `None`: the engine panicked on this mail (none known; it stays in the inbox), or
    /// `waits_for_dns`.
    pub verdict: Option<Verdict>,
    /// The sender authentication it was judged with (`None`: `[auth]` off, or not looked up).
    pub auth: Option<SenderAuth>,
    /// The sender check hit a DNS failure and `auth.max_wait` has not passed: the mail stays in
    /// the inbox and is judged again on the next pass (a DNS failure never loses mail).
    pub waits_for_dns: bool,
}

/// Judge one mail: the engine's verdict on the raw bytes (or on the header of an oversized
/// mail), with its sender authentication when `[auth]` is on. Pure; never panics on input
/// (fuzzed, see fuzz/).
pub fn judge(
    rules: &RuleSet,
    raw: &[u8],
    size: u64,
    headers_only: bool,
    auth: Option<&SenderAuth>,
) -> Verdict {
    if headers_only {
        engine::evaluate_oversized_authenticated(raw, size, rules, auth)
    } else {
        engine::evaluate_authenticated(raw, rules, true, auth)
    }
}

/// The sender authentication of one mail (issue 9), looked up before it is judged: only for a
/// From address the domain rule lets through. `Later`: a DNS failure, the mail waits.
fn authenticate(
    auth: Option<&IntakeAuth>,
    rules: &RuleSet,
    mail: &Fetched,
    now: Timestamp,
) -> AuthStep {
    let Some(auth) = auth else {
        return AuthStep::Judge(None);
    };
    let allowed = engine::sender_domain_allowed(&mail.raw, rules);
    auth.step(&mail.raw, mail.headers_only, allowed, mail.arrived_at, now)
}

/// The SHA-256 the ledger keeps of a mail. A headers-only record is told apart from the same
/// headers of a smaller mail by its size.
fn sha256_of(mail: &Fetched) -> String {
    let mut hasher = Sha256::new();
    hasher.update(&mail.raw);
    if mail.headers_only {
        hasher.update(format!("\nsize={}", mail.size).as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// A mail's SHA-256, verdict (`None`: the engine panicked, or it waits), authentication, and
/// whether it waits for DNS.
type JudgedOne = (String, Option<Verdict>, Option<SenderAuth>, bool);

/// Threads for judging: the machine's cores.
fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Judge every mail of a batch on a pool of `workers()` threads (each takes the next mail, so
/// one large mail does not hold up the others); the result keeps the batch's order. A panic in
/// the engine costs only its own mail.
pub fn judge_batch(loaded: &Loaded, auth: Option<&IntakeAuth>, batch: Vec<Fetched>) -> Vec<Judged> {
    let rules = &loaded.rules;
    let now = Timestamp::now();
    let one = |mail: &Fetched| -> JudgedOne {
        let judged =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match authenticate(auth, rules, mail, now) {
                    AuthStep::Later => None,
                    AuthStep::Judge(a) => {
                        let v = judge(rules, &mail.raw, mail.size, mail.headers_only, a.as_ref());
                        Some((v, a))
                    }
                }
            }));
        match judged {
            Ok(Some((v, a))) => (sha256_of(mail), Some(v), a, false),
            Ok(None) => (sha256_of(mail), None, None, true),
            Err(_) => (sha256_of(mail), None, None, false),
        }
    };
    let n = workers().min(batch.len());
    let results: Vec<JudgedOne> = if n <= 1 {
        batch.iter().map(one).collect()
    } else {
        let next = AtomicUsize::new(0);
        let mut parts: Vec<Vec<(usize, JudgedOne)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    s.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(mail) = batch.get(i) else { break };
                            done.push((i, one(mail)));
                        }
                        done
                    })
                })
                .collect();
            // A worker cannot panic (the engine's panics are caught above).
            handles.into_iter().filter_map(|h| h.join().ok()).collect()
        });
        let mut slots: Vec<Option<JudgedOne>> = (0..batch.len()).map(|_| None).collect();
        for (i, r) in parts.drain(..).flatten() {
            slots[i] = Some(r);
        }
        slots
            .into_iter()
            .map(|r| r.unwrap_or_else(|| (String::new(), None, None, false)))
            .collect()
    };
    batch
        .into_iter()
        .zip(results)
        .map(|(mail, (sha256, verdict, auth, waits_for_dns))| Judged {
            mail,
            sha256,
            verdict,
            auth,
            waits_for_dns,
        })
        .collect()
}

/// A pass with at least this many new mails sets them aside on a second IMAP connection while
/// the rest is still being fetched; a smaller one (an IDLE wake-up) moves them at the end on the
/// intake connection, without the cost of another login.
const SECOND_CONNECTION_FROM: usize = 32;

/// The second connection moves mails in rounds of at least this many (the rest at the end):
/// each round makes Dovecot rescan the inbox's maildir in both sessions, so a round per batch
/// would cost more than the moves themselves.
const MOVE_AT_LEAST: usize = 2000;

impl Daemon {
    /// The intake of a pass's new mail, as a pipeline of four stages that run at once:
    ///
    /// 1. **fetch** (this task, the intake connection): one `UID FETCH` per batch
    ///    ([`Daemon::fetch_next`]);
    /// 2. **judge**: each batch on the judging pool ([`judge_batch`], every core);
    /// 3. **record**: the one store writer, on its own thread and store connection: a batch in
    ///    ONE transaction ([`Daemon::record_batch`]); only committed mails go on to
    /// 4. **set aside**: `UID MOVE` on a second IMAP connection, taking whatever was committed
    ///    since its last command (for a small pass, or when that connection fails: nothing is
    ///    moved here and the caller moves the returned mails on the intake connection).
    ///
    /// Channels between the stages hold one batch each, so at most about five batches are in
    /// memory. The promise of the store is kept: a mail is moved only after its row is durable;
    /// a crash at any point leaves either unrecorded mails in the inbox (judged again) or
    /// recorded ones (moved by the next pass without being judged again).
    ///
    /// Returns the mails still to be set aside and the fetch's error, if any (the stages after
    /// it finish what they already have first).
    pub(crate) async fn intake_new_mail(
        self: &Arc<Self>,
        conn: &mut ImapConn,
        uidvalidity: u32,
        new_mail: &[MailInfo],
        store: &mut Store,
        stats: &mut PassStats,
    ) -> (PendingMoves, Result<(), ImapError>) {
        let started = Instant::now();
        let mut mover = if new_mail.len() >= SECOND_CONNECTION_FROM {
            self.mover_connection(uidvalidity).await
        } else {
            None
        };
        let (fetched_tx, mut fetched_rx) = mpsc::channel::<Vec<Fetched>>(1);
        let (judged_tx, judged_rx) = mpsc::channel::<Vec<Judged>>(1);
        let (moves_tx, mut moves_rx) = mpsc::unbounded_channel::<PendingMoves>();
        let writer = self.spawn_writer(
            uidvalidity,
            judged_rx,
            moves_tx,
            started,
            new_mail.len() >= SECOND_CONNECTION_FROM,
        );

        let fetching = async {
            let mut waited = Duration::ZERO;
            let mut next = 0;
            while next < new_mail.len() {
                let (fetched, took) = self.fetch_next(conn, new_mail, &mut next).await?;
                waited += took;
                crash_point("after_fetch");
                if !fetched.is_empty() && fetched_tx.send(fetched).await.is_err() {
                    break; // the stages after this one stopped (logged there)
                }
            }
            drop(fetched_tx);
            Ok::<Duration, ImapError>(waited)
        };
        let judging = async {
            let mut busy = Duration::ZERO;
            while let Some(batch) = fetched_rx.recv().await {
                let clock = Instant::now();
                let judged = self.spawn_judging(batch).await;
                busy += clock.elapsed();
                match judged {
                    Ok(judged) => {
                        if judged_tx.send(judged).await.is_err() {
                            break;
                        }
                    }
                    // Not expected (the engine's panics are caught per mail): the batch stays
                    // in the inbox and is judged again on the next pass.
                    Err(e) => {
                        tracing::error!(error = %e, "judging a batch failed; it stays in the mailbox")
                    }
                }
            }
            drop(judged_tx);
            busy
        };
        let moving = async {
            let mut pending = PendingMoves::default();
            let mut moved: Vec<i64> = Vec::new();
            let mut took = Duration::ZERO;
            while let Some(committed) = moves_rx.recv().await {
                pending.extend(committed);
                let Some(c) = mover.as_mut() else { continue };
                // Whatever else was committed meanwhile goes with this round.
                while let Ok(more) = moves_rx.try_recv() {
                    pending.extend(more);
                }
                if pending.len() < MOVE_AT_LEAST && !moves_rx.is_closed() {
                    continue;
                }
                let clock = Instant::now();
                if let Err(e) = self.move_pending(c, &mut pending, &mut moved).await {
                    tracing::warn!(error = %e, "setting mails aside on the second IMAP connection failed; the intake connection does it");
                    mover = None;
                }
                took += clock.elapsed();
            }
            (pending, moved, took)
        };
        let (fetched, judge_busy, (pending, moved, move_took)) =
            tokio::join!(fetching, judging, moving);
        let written = writer.await.unwrap_or_else(|e| {
            tracing::error!(error = %e, "the store writer stopped; unrecorded mails stay in the mailbox");
            WriterStats::default()
        });
        if let Some(c) = mover {
            c.logout().await;
        }
        if !moved.is_empty() {
            if let Err(e) = store.mark_set_aside_many(&moved, Timestamp::now()) {
                // The next pass finds them gone from the inbox and marks them then.
                tracing::error!(error = %e, "cannot mark mails as set aside");
            }
        }
        let t = &mut stats.timings;
        t.judge += judge_busy;
        t.record += written.record;
        t.commit += written.commit;
        t.moves += move_took;
        t.recorded_after = written.last_commit;
        stats.recorded += written.recorded;
        stats.errors += written.errors;
        stats.set_aside += moved.len();
        match fetched {
            Ok(waited) => {
                stats.timings.fetch += waited;
                (pending, Ok(()))
            }
            Err(e) => (pending, Err(e)),
        }
    }

    /// A second connection to the intake mailbox, for setting mails aside while the intake
    /// connection fetches. `None` (logged) when it cannot be had or sees another UIDVALIDITY.
    async fn mover_connection(&self, uidvalidity: u32) -> Option<ImapConn> {
        let settings = self.cfg.imap_settings().ok()?;
        let trust = self.cfg.imap_trust().ok()?;
        let connected = async {
            let mut c = ImapConn::connect_trusting(&settings, &trust).await?;
            let v = c.select(&self.cfg.imap.mailbox).await?;
            Ok::<_, ImapError>((c, v))
        };
        match connected.await {
            Ok((c, v)) if v == uidvalidity => Some(c),
            Ok((c, _)) => {
                tracing::warn!("UIDVALIDITY changed under the intake; mails are set aside on the intake connection");
                c.logout().await;
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "no second IMAP connection; mails are set aside on the intake connection");
                None
            }
        }
    }

    /// Set aside every pending mail on `conn`: one command per folder. The ids of the mails
    /// moved are added to `moved`; on an error, what was not moved stays in `pending`.
    async fn move_pending(
        &self,
        conn: &mut ImapConn,
        pending: &mut PendingMoves,
        moved: &mut Vec<i64>,
    ) -> Result<(), ImapError> {
        while let Some((aside, items)) = pending.take_folder() {
            let folder = folder_for(&self.cfg, aside);
            let uids: Vec<u32> = items.iter().map(|(uid, _)| *uid).collect();
            crash_point("before_move");
            match conn
                .set_aside_many(&uids, folder, &self.cfg.imap.folders.keyword)
                .await
            {
                Ok(how) => {
                    crash_point("after_move");
                    tracing::debug!(count = uids.len(), folder = %folder, how = ?how, "set aside");
                    moved.extend(items.iter().map(|(_, id)| *id));
                }
                Err(e) => {
                    for (uid, id) in items {
                        pending.add(aside, uid, id);
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The store writer: its own thread and store connection (the intake's store is not
    /// written meanwhile), recording the judged batches in one transaction each — or two
    /// together when the writer is behind (one fsync fewer) — and handing what it committed on
    /// to be set aside. For a backlog, a checkpointer thread copies the WAL into the database
    /// meanwhile, so that copy is not made inside the writer's commits.
    fn spawn_writer(
        self: &Arc<Self>,
        uidvalidity: u32,
        mut judged: mpsc::Receiver<Vec<Judged>>,
        committed: mpsc::UnboundedSender<PendingMoves>,
        started: Instant,
        backlog: bool,
    ) -> tokio::task::JoinHandle<WriterStats> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let checkpointer = backlog.then(|| me.spawn_checkpointer()).flatten();
            let mut out = WriterStats::default();
            let mut store = match me.open_store() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the store; the mails stay in the mailbox");
                    while let Some(batch) = judged.blocking_recv() {
                        out.errors += batch.len();
                    }
                    return out;
                }
            };
            if checkpointer.is_some() {
                if let Err(e) = store.leave_checkpoints(true) {
                    tracing::warn!(error = %e, "cannot leave checkpoints to the checkpointer");
                }
            }
            while let Some(mut batch) = judged.blocking_recv() {
                if let Ok(more) = judged.try_recv() {
                    batch.extend(more);
                }
                let mut stats = PassStats::default();
                let mut moves = PendingMoves::default();
                me.record_batch(&mut store, uidvalidity, batch, &mut moves, &mut stats);
                out.recorded += stats.recorded;
                out.errors += stats.errors;
                out.record += stats.timings.record;
                out.commit += stats.timings.commit;
                out.last_commit = started.elapsed();
                if moves.len() > 0 {
                    let _ = committed.send(moves);
                }
                if let Some((wake, _)) = &checkpointer {
                    let _ = wake.send(());
                }
            }
            if let Some((wake, thread)) = checkpointer {
                drop(wake);
                let _ = thread.join();
            }
            out
        })
    }

    /// A thread with its own store connection that checkpoints the WAL (PASSIVE) after the
    /// writer's commits, and once more when the writer is done (its sender dropped).
    fn spawn_checkpointer(
        &self,
    ) -> Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)> {
        let store = match self.open_store() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no checkpointer; the writer checkpoints");
                return None;
            }
        };
        let (wake, woken) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("checkpointer".into())
            .spawn(move || {
                let mut go_on = true;
                while go_on {
                    go_on = woken.recv().is_ok();
                    // Commits made meanwhile are copied by this one checkpoint.
                    while woken.try_recv().is_ok() {}
                    if let Err(e) = store.checkpoint() {
                        tracing::warn!(error = %e, "checkpoint failed; the next one copies more");
                    }
                }
            })
            .ok()?;
        Some((wake, thread))
    }

    /// Record a judged batch in one transaction, then (after the commit) add its mails to the
    /// pending moves. A mail that fails is logged and counted and stays in the inbox; a failed
    /// commit leaves the whole batch there, to be judged again on the next pass.
    pub(crate) fn record_batch(
        &self,
        store: &mut Store,
        uidvalidity: u32,
        judged: Vec<Judged>,
        moves: &mut PendingMoves,
        stats: &mut PassStats,
    ) {
        if judged.is_empty() {
            return;
        }
        let clock = Instant::now();
        let loaded = self.loaded.read().unwrap_or_else(|e| e.into_inner());
        let rules = &loaded.rules;
        let mailbox = self.cfg.imap.mailbox.as_str();
        let mut batch = match store.begin_batch() {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, mails = judged.len(), "cannot record mail; the batch stays in the mailbox and is retried");
                stats.errors += judged.len();
                return;
            }
        };
        let mut recorded: Vec<(u32, i64, Aside, Verdict, Outcome)> = Vec::new();
        for j in judged {
            let uid = j.mail.uid;
            if j.waits_for_dns {
                tracing::info!(
                    uid,
                    "sender check hit a DNS failure; the mail waits for the next pass"
                );
                stats.errors += 1;
                continue;
            }
            let Some(mut verdict) = j.verdict else {
                tracing::error!(
                    uid,
                    "the verdict engine failed on this mail; it stays in the mailbox"
                );
                stats.errors += 1;
                continue;
            };
            // A tag naming no ticket of ours: judge the mail as new (reg. 4.2 applies only to
            // ours). Asked inside the batch, so a ticket made earlier in it counts.
            if let Some(n) = verdict.followup_of {
                if !batch.ticket_exists(n as i64).unwrap_or(false) {
                    if verdict.decision == Decision::Followup {
                        let raw = &j.mail.raw;
                        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            engine::evaluate_authenticated(raw, rules, false, j.auth.as_ref())
                        })) {
                            Ok(v) => verdict = v,
                            Err(_) => {
                                tracing::error!(
                                    uid,
                                    "the verdict engine failed on this mail; it stays in the mailbox"
                                );
                                stats.errors += 1;
                                continue;
                            }
                        }
                    } else {
                        verdict.followup_of = None;
                    }
                }
            }
            let own_reply = verdict
                .message_id
                .as_deref()
                .is_some_and(|id| rules.followup.ticket_in_message_id(id).is_some())
                && verdict.sender.eq_ignore_ascii_case(&self.cfg.smtp.from);
            let incoming = Incoming {
                mailbox,
                uidvalidity,
                uid,
                arrived_at: j.mail.arrived_at,
                raw: &j.mail.raw,
                headers_only: j.mail.headers_only,
                size: j.mail.size,
                sha256: j.sha256,
                accept_due: Some(crate::daemon::rfc3339(
                    &loaded.calendar.accept_due(j.mail.arrived_at),
                )),
            };
            let mut render = |req: &ReplyRequest<'_>| self.render_reply(&loaded, req);
            let form_complete =
                |f: &FormFields| crate::verdict::form::missing_required(f, &rules.form).is_empty();
            match batch.record(
                &incoming,
                &verdict,
                own_reply,
                self.cfg.limits.replies_per_address_per_day,
                Timestamp::now(),
                &mut render,
                &form_complete,
            ) {
                Ok((mail_id, outcome)) => {
                    let aside = match &outcome {
                        Outcome::OwnReply => Aside::Replies,
                        Outcome::Duplicate { .. } => batch
                            .ledger_state(mailbox, uidvalidity, uid)
                            .ok()
                            .flatten()
                            .map(|s| s.aside)
                            .unwrap_or(Aside::Processed),
                        _ => Aside::for_decision(verdict.decision),
                    };
                    recorded.push((uid, mail_id, aside, verdict, outcome));
                }
                Err(e) => {
                    tracing::error!(uid, error = %e, "cannot record mail; it stays in the mailbox and is retried");
                    stats.errors += 1;
                }
            }
        }
        drop(loaded);
        crash_point("before_commit");
        stats.timings.record += clock.elapsed();
        let clock = Instant::now();
        let committed = batch.commit();
        stats.timings.commit += clock.elapsed();
        if let Err(e) = committed {
            tracing::error!(error = %e, mails = recorded.len(), "cannot commit the batch; it stays in the mailbox and is retried");
            stats.errors += recorded.len();
            return;
        }
        crash_point("after_commit");
        for (uid, mail_id, aside, verdict, outcome) in &recorded {
            crate::daemon::log_outcome(*uid, *mail_id, verdict, outcome);
            moves.add(*aside, *uid, *mail_id);
        }
        stats.recorded += recorded.len();
        if !recorded.is_empty() {
            self.outbox_ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_judged_in_order_with_the_verdict_of_each_mail_alone() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let loaded = Loaded::load(&dir).unwrap();
        let mut raws = Vec::new();
        for group in ["accept", "reject", "filter", "ignore", "incomplete"] {
            let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join(group);
            let mut paths: Vec<_> = std::fs::read_dir(d)
                .unwrap()
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect();
            paths.sort();
            raws.extend(paths.iter().take(4).map(|p| std::fs::read(p).unwrap()));
        }
        let batch: Vec<Fetched> = raws
            .iter()
            .enumerate()
            .map(|(i, raw)| Fetched {
                uid: i as u32 + 1,
                size: raw.len() as u64,
                arrived_at: Timestamp::UNIX_EPOCH,
                raw: raw.clone(),
                headers_only: false,
            })
            .collect();
        let judged = judge_batch(&loaded, None, batch);
        assert_eq!(judged.len(), raws.len());
        for (i, j) in judged.iter().enumerate() {
            assert_eq!(j.mail.uid, i as u32 + 1);
            let alone = engine::evaluate(&raws[i], &loaded.rules);
            assert_eq!(j.verdict.as_ref(), Some(&alone), "mail {i}");
            assert_eq!(j.sha256.len(), 64);
        }
    }
}
