//! The intake of one fetched batch: judged on every core, recorded in one transaction.
//!
//! [`judge`] is the single place where a mail meets the engine (a check that must run before
//! judging goes there). [`judge_batch`] runs it over a batch on a pool of scoped threads sized
//! to the machine, while the daemon fetches the next batch; the store has one writer, the
//! daemon's task, which records the judged batch with [`Daemon::record_batch`] in ONE
//! transaction (one fsync per batch) and only then lets the batch be moved.
//!
//! Nothing here does I/O but the store writes in `record_batch`; nothing logs body text.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::daemon::{crash_point, Daemon, Loaded, PassStats, PendingMoves};
use crate::mail::auth::{AuthStep, IntakeAuth};
use crate::store::{Aside, Incoming, Outcome, ReplyRequest, Store};
use crate::verdict::auth::SenderAuth;
use crate::verdict::engine;
use crate::verdict::rules::RuleSet;
use crate::verdict::{Decision, FormFields, Verdict};

/// Time an intake pass waited on each step (the judging pool's own time is hidden behind the
/// fetch; `judge_wait` is what was left to wait for).
#[derive(Debug, Default, Clone)]
pub struct PassTimings {
    pub list: Duration,
    pub fetch: Duration,
    pub judge_wait: Duration,
    /// Writing the rows of the batches (reply rendering included), before their commits.
    pub record: Duration,
    /// The commits: one fsync of the WAL per batch.
    pub commit: Duration,
    /// `UID MOVE` (or COPY + STORE + EXPUNGE) and marking the mails set aside.
    pub moves: Duration,
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

impl Daemon {
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
