//! Group commit: the mails of one fetched batch recorded in ONE transaction (one fsync of the
//! WAL for the batch instead of one per mail).
//!
//! The crash promise of the store is unchanged — a mail is moved out of the inbox only after
//! its ledger row is durable — because the caller moves a batch only after [`RecordBatch::commit`]
//! returned. A crash before the commit loses the whole batch's rows, and the next pass judges
//! those mails again from the inbox, where they still are.
//!
//! One mail that cannot be recorded must not cost the others theirs: each mail is written under
//! its own SAVEPOINT, rolled back alone when it fails (it stays in the inbox and is retried).

use jiff::Timestamp;
use rusqlite::Transaction;

use super::outbox::OutgoingMail;
use super::{Incoming, LedgerState, Outcome, ReplyRequest, Result, Store};
use crate::verdict::{FormFields, Verdict};

/// An open batch transaction; nothing is durable before [`commit`](RecordBatch::commit).
pub struct RecordBatch<'a> {
    tx: Transaction<'a>,
}

impl Store {
    /// Begin a batch (an IMMEDIATE transaction: the write lock is taken up front).
    pub fn begin_batch(&mut self) -> Result<RecordBatch<'_>> {
        let tx = self
            .conn_mut()
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        Ok(RecordBatch { tx })
    }
}

impl RecordBatch<'_> {
    /// Record one mail and everything it causes, as [`Store::record_mail`] does, inside the
    /// batch. On an error nothing of this mail stays in the batch.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &mut self,
        mail: &Incoming<'_>,
        verdict: &Verdict,
        own_reply: bool,
        limit: u32,
        now: Timestamp,
        render: &mut dyn FnMut(&ReplyRequest<'_>) -> OutgoingMail,
        form_complete: &dyn Fn(&FormFields) -> bool,
    ) -> Result<(i64, Outcome)> {
        self.tx.prepare_cached("SAVEPOINT one_mail")?.execute([])?;
        let result = Store::record_in(
            &self.tx,
            mail,
            verdict,
            own_reply,
            limit,
            now,
            render,
            form_complete,
        );
        match result {
            Ok(r) => {
                self.tx.prepare_cached("RELEASE one_mail")?.execute([])?;
                Ok(r)
            }
            Err(e) => {
                self.tx
                    .execute_batch("ROLLBACK TO one_mail; RELEASE one_mail")?;
                Err(e)
            }
        }
    }

    /// Whether ticket `n` exists, tickets made earlier in this batch included.
    pub fn ticket_exists(&self, n: i64) -> Result<bool> {
        Ok(super::ticket_exists(&self.tx, n)?.is_some())
    }

    /// The ledger row of a (mailbox, UIDVALIDITY, UID), rows of this batch included.
    pub fn ledger_state(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<Option<LedgerState>> {
        super::ledger_state_in(&self.tx, mailbox, uidvalidity, uid)
    }

    /// Make the whole batch durable (one fsync with `synchronous=FULL`).
    pub fn commit(self) -> Result<()> {
        self.tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::AutoSubmitted;
    use crate::store::tests::verdict;
    use crate::verdict::Decision;

    fn incoming<'a>(uid: u32, raw: &'a [u8]) -> Incoming<'a> {
        Incoming {
            mailbox: "INBOX",
            uidvalidity: 7,
            uid,
            arrived_at: Timestamp::UNIX_EPOCH,
            raw,
            headers_only: false,
            size: raw.len() as u64,
            sha256: format!("sha-{uid}"),
            accept_due: None,
        }
    }

    fn render(req: &ReplyRequest<'_>) -> OutgoingMail {
        OutgoingMail {
            message_id: format!("mailintake.{}.{}@t", req.kind.as_str(), req.nonce),
            to: req.verdict.sender.clone(),
            subject: "s".into(),
            text: "t".into(),
            html: None,
            in_reply_to: None,
            references: vec![],
            auto_submitted: AutoSubmitted::AutoReplied,
            null_sender: true,
            bcc: vec![],
        }
    }

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH
    }

    #[test]
    fn a_batch_is_durable_only_after_its_commit_and_one_failure_spares_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path).unwrap();
        let raw1 = b"Subject: a\r\n\r\none".to_vec();
        let raw2 = b"Subject: b\r\n\r\ntwo".to_vec();
        let ok = verdict(Decision::Accept, "t.ivanova@sev.gov.ru");
        // A follow-up of no ticket: record_in refuses it (the daemon re-judges such mail).
        let mut bad = verdict(Decision::Followup, "t.ivanova@sev.gov.ru");
        bad.followup_of = Some(999);
        {
            let mut b = store.begin_batch().unwrap();
            let r1 = b.record(
                &incoming(1, &raw1),
                &ok,
                false,
                40,
                now(),
                &mut render,
                &|_| true,
            );
            let r2 = b.record(
                &incoming(2, &raw2),
                &bad,
                false,
                40,
                now(),
                &mut render,
                &|_| true,
            );
            assert!(r1.is_ok());
            assert!(r2.is_err());
            assert!(b.ledger_state("INBOX", 7, 1).unwrap().is_some());
            assert!(b.ledger_state("INBOX", 7, 2).unwrap().is_none());
            // Dropped without commit: as a crash before the commit.
        }
        let other = Store::open(&path).unwrap();
        assert!(other.ledger_state("INBOX", 7, 1).unwrap().is_none());
        let mut b = store.begin_batch().unwrap();
        let (_, outcome) = b
            .record(
                &incoming(1, &raw1),
                &ok,
                false,
                40,
                now(),
                &mut render,
                &|_| true,
            )
            .unwrap();
        assert!(matches!(outcome, Outcome::NewTicket { .. }));
        b.commit().unwrap();
        assert!(other.ledger_state("INBOX", 7, 1).unwrap().is_some());
        assert_eq!(other.count_outbox("pending").unwrap(), 1);
    }
}
