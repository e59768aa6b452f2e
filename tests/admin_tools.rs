//! The admin and operator tools over the ledger — `quarantine list|show|release`, `replay` and
//! `stats` — on a store in a temporary folder, filled the way the daemon fills it: real fixture
//! mails judged by the real rules and recorded with `Store::record_mail`. No servers.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use mailintake::desk::calendar::Calendar;
use mailintake::desk::quarantine::{self, ReleaseOutcome};
use mailintake::desk::replay;
use mailintake::desk::stats;
use mailintake::store::outbox::{AutoSubmitted, OutgoingMail};
use mailintake::store::{Incoming, Outcome, ReplyRequest, Status, Store};
use mailintake::verdict::rules::RuleSet;
use mailintake::verdict::Decision;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn real_rules() -> RuleSet {
    RuleSet::load(&root().join("rules")).unwrap()
}

fn calendar() -> Calendar {
    Calendar::load(&root().join("rules/calendar.toml")).unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures").join(format!("{name}.eml"))).unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of `rules/` with `edit(file name, text) -> text` applied to each file.
fn edited_rules(dir: &Path, edit: impl Fn(&str, String) -> String) -> RuleSet {
    copy_dir(&root().join("rules"), dir);
    for name in ["intake.toml", "attachments.toml"] {
        let p = dir.join(name);
        let text = std::fs::read_to_string(&p).unwrap();
        let new = edit(name, text.clone());
        std::fs::write(&p, new).unwrap();
    }
    RuleSet::load(dir).unwrap()
}

/// The admin's fixes: subdomains allowed (`*.sev.gov.ru`) and up to 10 images.
fn fixed_rules(dir: &Path) -> RuleSet {
    edited_rules(dir, |name, text| match name {
        "intake.toml" => {
            let new = text.replace(
                "allowed_domains = [\"sev.gov.ru\"]",
                "allowed_domains = [\"sev.gov.ru\", \"*.sev.gov.ru\"]",
            );
            assert_ne!(new, text, "allowed_domains not found in intake.toml");
            new
        }
        "attachments.toml" => {
            let new = text.replace("max_images = 5", "max_images = 10");
            assert_ne!(new, text, "max_images not found in attachments.toml");
            new
        }
        _ => text,
    })
}

fn render(req: &ReplyRequest<'_>) -> OutgoingMail {
    OutgoingMail {
        message_id: format!(
            "mailintake.{}.{}.{}@sevmiac.ru",
            req.ticket.unwrap_or(0),
            req.kind.as_str(),
            req.nonce
        ),
        to: req.verdict.sender.clone(),
        subject: format!("reply {}", req.kind.as_str()),
        text: "t".into(),
        html: None,
        in_reply_to: req.verdict.message_id.clone(),
        references: vec![],
        auto_submitted: AutoSubmitted::AutoReplied,
        null_sender: true,
        bcc: vec![],
    }
}

fn form_complete(_: &mailintake::verdict::FormFields) -> bool {
    true
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

struct Desk {
    _dir: tempfile::TempDir,
    store: Store,
    rules: RuleSet,
    next_uid: u32,
}

impl Desk {
    fn new() -> Desk {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("mailintake.db")).unwrap();
        Desk {
            _dir: dir,
            store,
            rules: real_rules(),
            next_uid: 1,
        }
    }

    /// Judge and record a mail as the daemon does; returns (mail id, outcome).
    fn intake(&mut self, raw: &[u8], arrived: Timestamp) -> (i64, Outcome) {
        self.intake_as(raw, arrived, false, raw.len() as u64)
    }

    fn intake_as(
        &mut self,
        raw: &[u8],
        arrived: Timestamp,
        headers_only: bool,
        size: u64,
    ) -> (i64, Outcome) {
        let verdict = replay::rejudge(
            self.store.conn(),
            raw,
            headers_only,
            size,
            &self.rules,
            None,
        );
        let uid = self.next_uid;
        self.next_uid += 1;
        let incoming = Incoming {
            mailbox: "INBOX",
            uidvalidity: 1,
            uid,
            arrived_at: arrived,
            raw,
            headers_only,
            size,
            sha256: hex::encode(Sha256::digest(raw)),
            accept_due: Some(mailintake::daemon::rfc3339(&calendar().accept_due(arrived))),
        };
        self.store
            .record_mail(
                &incoming,
                &verdict,
                false,
                40,
                arrived,
                &mut render,
                &form_complete,
            )
            .unwrap()
    }

    fn fixture(&mut self, name: &str, arrived: &str) -> (i64, Outcome) {
        self.intake(&fixture(name), at(arrived))
    }

    fn release(&mut self, id: i64, rules: &RuleSet, force: bool) -> Result<ReleaseOutcome, String> {
        quarantine::release(
            &mut self.store,
            id,
            rules,
            force,
            "petrov",
            at("2026-11-26T09:00:00Z"),
            Some("2026-11-26T17:00:00+03:00".into()),
            &mut render,
            &form_complete,
        )
    }

    fn one<T: rusqlite::types::FromSql>(&self, sql: &str) -> T {
        self.store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// A digest of every row of every table: what "touches nothing" is checked against.
    fn checksum(&self) -> String {
        use rusqlite::types::ValueRef;
        let conn = self.store.conn();
        let mut tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.sort();
        let mut h = Sha256::new();
        for t in tables {
            h.update(t.as_bytes());
            let mut st = conn
                .prepare(&format!("SELECT * FROM \"{t}\" ORDER BY rowid"))
                .unwrap();
            let n = st.column_count();
            let mut rows = st.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                for i in 0..n {
                    match r.get_ref(i).unwrap() {
                        ValueRef::Null => h.update(b"N"),
                        ValueRef::Integer(v) => h.update(format!("I{v}")),
                        ValueRef::Real(v) => h.update(format!("R{v}")),
                        ValueRef::Text(v) => {
                            h.update(b"T");
                            h.update(v)
                        }
                        ValueRef::Blob(v) => {
                            h.update(b"B");
                            h.update(v)
                        }
                    }
                    h.update(b"|");
                }
            }
        }
        hex::encode(h.finalize())
    }

    fn outcome_of(&self, id: i64) -> String {
        self.one(&format!("SELECT outcome FROM mails WHERE id = {id}"))
    }

    fn events(&self, ticket: i64) -> Vec<(String, String, String)> {
        self.store
            .events(ticket)
            .unwrap()
            .into_iter()
            .map(|e| (e.actor, e.kind, e.detail))
            .collect()
    }
}

#[test]
fn quarantine_lists_refused_mail_and_filters_by_reason() {
    let mut desk = Desk::new();
    let (filtered, o) = desk.fixture("filter/subdomain", "2026-11-23T07:15:00Z");
    assert_eq!(o, Outcome::Filtered);
    let (rejected, o) = desk.fixture("reject/bat_script", "2026-11-23T07:16:00Z");
    assert_eq!(o, Outcome::Rejected);
    let (ignored, o) = desk.fixture("ignore/x_loop", "2026-11-23T07:17:00Z");
    assert_eq!(o, Outcome::Ignored);
    let (_, o) = desk.fixture("accept/thebat_cp1251_8bit", "2026-11-23T07:18:00Z");
    assert!(matches!(o, Outcome::NewTicket { .. }));

    let all = quarantine::entries(&desk.store, None).unwrap();
    let ids: Vec<i64> = all.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![filtered, rejected, ignored]);

    let text = quarantine::list(&desk.store, None, false).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    let first = text.lines().next().unwrap();
    for want in [
        &format!("#{filtered}"),
        "23.11.2026 10:15",
        "filter",
        "sender_domain",
        "t.ivanova@mail.sev.gov.ru",
        "Не работает запись к врачу",
    ] {
        assert!(first.contains(want), "{want:?} missing in {first:?}");
    }

    let only = quarantine::list(&desk.store, Some("attachment_dangerous"), false).unwrap();
    assert_eq!(only.lines().count(), 1, "{only}");
    assert!(only.starts_with(&format!("#{rejected} ")), "{only}");
    assert!(only.contains("d.bondarenko@sev.gov.ru"), "{only}");

    let json = quarantine::list(&desk.store, Some("automatic"), true).unwrap();
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["id"], ignored);
    assert_eq!(objects[0]["decision"], "ignore");
    assert_eq!(objects[0]["reasons"], serde_json::json!(["automatic"]));
    assert_eq!(objects[0]["sender"], "it.gb5@sev.gov.ru");

    // A code that carries nothing in quarantine is simply empty; an unknown one is an error.
    assert_eq!(
        quarantine::list(&desk.store, Some("too_large"), false).unwrap(),
        ""
    );
    let err = quarantine::list(&desk.store, Some("spam"), false).unwrap_err();
    assert!(
        err.contains("spam") && err.contains("sender_domain"),
        "{err}"
    );
}

#[test]
fn quarantine_show_prints_headers_reasons_and_verdict() {
    let mut desk = Desk::new();
    let (id, _) = desk.fixture("filter/subdomain", "2026-11-23T07:15:00Z");
    let text = quarantine::show(&desk.store, id, false).unwrap();
    for want in [
        "в карантине: filter",
        "Received: from mail.sev.gov.ru (mail.sev.gov.ru [10.10.1.25])\n  \tby mx.sevmiac.ru",
        "Message-ID: <e0f1c823-54aa-f33b-4654-ec20cd7f5c86@sev.gov.ru>",
        "From: =?UTF-8?B?",
        "User-Agent: Mozilla Thunderbird",
        "• sender_domain: Адрес отправителя t.ivanova@mail.sev.gov.ru не принадлежит",
        "Вердикт:\n{\n  \"decision\": \"filter\",",
        "t.ivanova@mail.sev.gov.ru",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&quarantine::show(&desk.store, id, true).unwrap()).unwrap();
    assert_eq!(v["in_quarantine"], true);
    assert_eq!(v["reasons"][0]["code"], "sender_domain");
    assert_eq!(v["verdict"]["sender"], "t.ivanova@mail.sev.gov.ru");
    let headers = v["headers"].as_array().unwrap();
    assert!(headers
        .iter()
        .any(|h| h["name"] == "Content-Type"
            && h["value"] == "text/plain; charset=UTF-8; format=flowed"));
    assert!(quarantine::show(&desk.store, 999, false)
        .unwrap_err()
        .contains("#999"));
}

#[test]
fn release_after_a_rule_fix_creates_the_ticket_once() {
    let mut desk = Desk::new();
    let (id, o) = desk.fixture("filter/subdomain", "2026-11-23T07:15:00Z");
    assert_eq!(o, Outcome::Filtered);
    assert_eq!(desk.one::<i64>("SELECT COUNT(*) FROM outbox"), 0);

    // The rules still refuse it: nothing changes, and the answer says why.
    let before = desk.checksum();
    let rules = real_rules();
    match desk.release(id, &rules, false).unwrap() {
        ReleaseOutcome::StillRefused { decision, reasons } => {
            assert_eq!(decision, Decision::Filter);
            assert_eq!(reasons.len(), 1);
            assert!(reasons[0].starts_with("sender_domain: "), "{reasons:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(desk.checksum(), before);

    // The admin allows *.sev.gov.ru; the mail is released.
    let fixed_dir = tempfile::tempdir().unwrap();
    let fixed = fixed_rules(fixed_dir.path());
    let ticket = match desk.release(id, &fixed, false).unwrap() {
        ReleaseOutcome::Ticket { ticket, status } => {
            assert_eq!(status, Status::New);
            ticket
        }
        other => panic!("{other:?}"),
    };
    let t = desk.store.ticket(ticket).unwrap().unwrap();
    assert_eq!(t.sender, "t.ivanova@mail.sev.gov.ru");
    assert_eq!(t.subject, "Не работает запись к врачу");
    assert_eq!(
        t.fields.applicant.full_name.as_deref(),
        Some("Иванова Татьяна Александровна")
    );
    assert_eq!(t.arrived_at, "2026-11-23T07:15:00.000Z");
    assert_eq!(t.accept_due.as_deref(), Some("2026-11-26T17:00:00+03:00"));

    // The normal reply is queued, to the sender, in the same transaction.
    let pending = desk
        .store
        .due_outbox(at("2026-11-26T10:00:00Z"), 10)
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].ticket_id, Some(ticket));
    assert_eq!(pending[0].mail.to, "t.ivanova@mail.sev.gov.ru");
    assert_eq!(
        desk.one::<String>("SELECT kind FROM outbox"),
        "accept".to_string()
    );

    // The ledger row: released, linked to the ticket, raw mail and first verdict kept.
    assert_eq!(desk.outcome_of(id), "released");
    assert_eq!(
        desk.one::<i64>(&format!("SELECT ticket_id FROM mails WHERE id = {id}")),
        ticket
    );
    assert_eq!(
        desk.one::<String>(&format!("SELECT decision FROM mails WHERE id = {id}")),
        "filter"
    );
    assert_eq!(
        desk.store.raw_mail(id).unwrap().unwrap(),
        fixture("filter/subdomain")
    );
    let events = desk.events(ticket);
    assert_eq!(events[0].1, "created");
    let (actor, kind, detail) = events.last().unwrap();
    assert_eq!((actor.as_str(), kind.as_str()), ("petrov", "released"));
    assert!(
        detail.contains("выпущено из карантина оператором petrov"),
        "{detail}"
    );
    let corr = desk.store.correspondence(ticket).unwrap();
    assert_eq!(corr.len(), 2, "{corr:?}");
    assert_eq!(corr[0].mail_id, Some(id));

    // No longer in quarantine; a second release is refused and changes nothing.
    assert!(quarantine::entries(&desk.store, None).unwrap().is_empty());
    let after = desk.checksum();
    let err = desk.release(id, &fixed, false).unwrap_err();
    assert!(err.contains("уже выпущено"), "{err}");
    assert!(err.contains(&format!("#{ticket}")), "{err}");
    let err = desk.release(id, &fixed, true).unwrap_err();
    assert!(err.contains("уже выпущено"), "{err}");
    assert_eq!(desk.checksum(), after);
    assert!(quarantine::show(&desk.store, id, false)
        .unwrap()
        .contains("уже выпущено"));
}

#[test]
fn force_accept_of_a_rejected_mail_records_the_override() {
    let mut desk = Desk::new();
    let (id, o) = desk.fixture("reject/bat_script", "2026-11-23T07:15:00Z");
    assert_eq!(o, Outcome::Rejected);
    let rules = real_rules();
    // An override without a name is refused: the event must say who decided.
    let before = desk.checksum();
    let err = quarantine::release(
        &mut desk.store,
        id,
        &rules,
        true,
        "  ",
        at("2026-11-26T09:00:00Z"),
        None,
        &mut render,
        &form_complete,
    )
    .unwrap_err();
    assert!(err.contains("--actor"), "{err}");
    assert_eq!(desk.checksum(), before);
    assert!(matches!(
        desk.release(id, &rules, false).unwrap(),
        ReleaseOutcome::StillRefused {
            decision: Decision::Reject,
            ..
        }
    ));
    let ticket = match desk.release(id, &rules, true).unwrap() {
        ReleaseOutcome::Ticket { ticket, status } => {
            assert_eq!(status, Status::New);
            ticket
        }
        other => panic!("{other:?}"),
    };
    let events = desk.events(ticket);
    let (actor, kind, detail) = events.last().unwrap();
    assert_eq!((actor.as_str(), kind.as_str()), ("petrov", "forced_accept"));
    assert!(
        detail.contains("принято оператором petrov вопреки правилам: attachment_dangerous"),
        "{detail}"
    );
    assert_eq!(desk.outcome_of(id), "released");
    // The reject reply of intake and the accept reply of the release.
    let kinds: Vec<String> = desk
        .store
        .conn()
        .prepare("SELECT kind FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kinds, vec!["reject", "accept"]);
    // The attachment is listed on the ticket (the operator decided to take it).
    let atts = desk.store.attachments(ticket).unwrap();
    assert_eq!(atts.len(), 1, "{atts:?}");
    assert_eq!(
        desk.store.raw_mail(id).unwrap().unwrap(),
        fixture("reject/bat_script")
    );
}

#[test]
fn force_accept_of_a_rejected_followup_adds_it_to_its_ticket() {
    let mut desk = Desk::new();
    let (first, _) = desk.fixture("accept/thebat_cp1251_8bit", "2026-11-23T07:00:00Z");
    // Ticket 204, as an older ticket of the desk would be.
    desk.store
        .conn()
        .execute(
            "INSERT INTO tickets (id, status, priority, subject, sender, fields, created_at, updated_at, arrived_at, first_mail_id,
                                  feedback_by)
             VALUES (204, 'feedback', 'normal', 'Утилита', 'd.bondarenko@sev.gov.ru', '{}',
                     '2026-11-20T07:00:00Z', '2026-11-20T07:00:00Z', '2026-11-20T07:00:00Z', ?1, 'ivanov')",
            [first],
        )
        .unwrap();
    let (id, o) = desk.fixture("followup/exe_reject_204", "2026-11-23T07:15:00Z");
    assert_eq!(o, Outcome::Rejected);
    let rules = real_rules();
    assert_eq!(
        desk.release(id, &rules, true).unwrap(),
        ReleaseOutcome::Followup { ticket: 204 }
    );
    assert_eq!(desk.outcome_of(id), "released");
    // The applicant answered the specialist's question (reg. 4.8): the follow-up path of the
    // store moves the ticket back to work, exactly as at intake.
    assert_eq!(
        desk.store.ticket(204).unwrap().unwrap().status,
        Status::InProgress
    );
    let kinds: Vec<String> = desk
        .events(204)
        .into_iter()
        .map(|(_, kind, _)| kind)
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("followup_rejected"));
    assert!(kinds.contains(&"followup".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"status".to_string()), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("forced_accept"));
    assert_eq!(desk.one::<i64>("SELECT COUNT(*) FROM tickets"), 2);
}

#[test]
fn a_mail_kept_as_headers_only_is_released_only_by_force() {
    let mut desk = Desk::new();
    let raw = fixture("accept/thebat_cp1251_8bit");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let headers = raw[..end].to_vec();
    let (id, o) = desk.intake_as(&headers, at("2026-11-23T07:15:00Z"), true, 30 << 20);
    assert_eq!(o, Outcome::Rejected);
    let rules = real_rules();
    let before = desk.checksum();
    let err = desk.release(id, &rules, false).unwrap_err();
    assert!(
        err.contains("без тела") && err.contains("--force-accept"),
        "{err}"
    );
    assert_eq!(desk.checksum(), before);
    let ReleaseOutcome::Ticket { ticket, .. } = desk.release(id, &rules, true).unwrap() else {
        panic!("not a ticket");
    };
    let (_, kind, detail) = desk.events(ticket).pop().unwrap();
    assert_eq!(kind, "forced_accept");
    assert!(
        detail.contains("too_large") && detail.contains("тело письма не сохранено"),
        "{detail}"
    );
}

#[test]
fn force_accept_needs_a_readable_sender() {
    let mut desk = Desk::new();
    let (id, o) = desk.fixture("filter/missing_from", "2026-11-23T07:15:00Z");
    assert_eq!(o, Outcome::Filtered);
    let before = desk.checksum();
    let err = desk.release(id, &real_rules(), true).unwrap_err();
    assert!(err.contains("не читается"), "{err}");
    assert_eq!(desk.checksum(), before);
    assert_eq!(desk.outcome_of(id), "filtered");
}

#[test]
fn release_of_a_mail_outside_quarantine_is_refused() {
    let mut desk = Desk::new();
    let (id, o) = desk.fixture("accept/thebat_cp1251_8bit", "2026-11-23T07:15:00Z");
    let Outcome::NewTicket { ticket, .. } = o else {
        panic!("{o:?}")
    };
    let err = desk.release(id, &real_rules(), true).unwrap_err();
    assert!(
        err.contains("не в карантине") && err.contains(&format!("#{ticket}")),
        "{err}"
    );
    assert!(desk
        .release(12345, &real_rules(), false)
        .unwrap_err()
        .contains("не найдено"));
}

#[test]
fn replay_reports_exactly_what_changes_and_touches_nothing() {
    let mut desk = Desk::new();
    let mut ids = std::collections::BTreeMap::new();
    for (i, name) in [
        "filter/subdomain",
        "filter/subdomain_mixed_case",
        "filter/gmail",
        "incomplete/six_images",
        "incomplete/combo_all_four",
        "reject/bat_script",
        "ignore/x_loop",
        "accept/thebat_cp1251_8bit",
        "accept/iphone_qp",
    ]
    .into_iter()
    .enumerate()
    {
        let (id, _) = desk.fixture(name, &format!("2026-11-{:02}T07:15:00Z", 16 + i));
        ids.insert(name, id);
    }
    // A redelivered copy is a duplicate: not judged again.
    let (_, o) = desk.intake(&fixture("filter/gmail"), at("2026-11-25T08:00:00Z"));
    assert!(matches!(o, Outcome::Duplicate { .. }));
    let before = desk.checksum();

    // The same rules: nothing changes.
    let same = replay::replay(&desk.store, &real_rules(), None, false).unwrap();
    assert_eq!(same.total, 9);
    assert!(same.changed.is_empty(), "{:?}", same.changed);
    assert!(replay::render(&same).contains("unchanged: 9"));

    let dir = tempfile::tempdir().unwrap();
    let fixed = fixed_rules(dir.path());
    let report = replay::replay(&desk.store, &fixed, None, true).unwrap();
    assert_eq!(report.total, 9);
    let changed: Vec<(i64, &str, &str, &str, &str)> = report
        .changed
        .iter()
        .map(|c| {
            (
                c.mail_id,
                c.old.as_str(),
                c.new.as_str(),
                c.old_reasons.as_str(),
                c.new_reasons.as_str(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                ids["filter/subdomain"],
                "filter",
                "accept",
                "sender_domain",
                ""
            ),
            (
                ids["filter/subdomain_mixed_case"],
                "filter",
                "accept",
                "sender_domain",
                ""
            ),
            (
                ids["incomplete/six_images"],
                "incomplete",
                "accept",
                "too_many_images",
                ""
            ),
            // Still incomplete, for fewer reasons: a change too.
            (
                ids["incomplete/combo_all_four"],
                "incomplete",
                "incomplete",
                "subject_missing,fields_missing,too_many_images,attachment_type",
                "subject_missing,fields_missing,attachment_type"
            ),
        ]
    );
    let counts: Vec<((&str, &str), usize)> = report
        .counts
        .iter()
        .map(|((a, b), n)| ((a.as_str(), b.as_str()), *n))
        .collect();
    assert_eq!(
        counts,
        vec![
            (("filter", "accept"), 2),
            (("incomplete", "accept"), 1),
            (("incomplete", "incomplete"), 1)
        ]
    );
    let text = replay::render(&report);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "#{} 16.11.2026 10:15 filter [sender_domain] → accept  t.ivanova@mail.sev.gov.ru  Не работает запись к врачу",
            ids["filter/subdomain"]
        )
    );
    for want in [
        "filter → accept: 2",
        "incomplete → accept: 1",
        "incomplete → incomplete (reasons): 1",
        "unchanged: 5",
        "total: 9",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }

    // --since: only mail that arrived from then on.
    let since = stats::parse_since("2026-11-18", calendar().time_zone()).unwrap();
    let later = replay::replay(&desk.store, &fixed, Some(since), false).unwrap();
    assert_eq!(later.total, 7);
    let later_ids: Vec<i64> = later.changed.iter().map(|c| c.mail_id).collect();
    assert_eq!(
        later_ids,
        vec![
            ids["incomplete/six_images"],
            ids["incomplete/combo_all_four"]
        ]
    );

    // Read-only: every table as it was.
    assert_eq!(desk.checksum(), before);
}

#[test]
fn replay_streams_a_long_ledger_with_a_progress_bar() {
    let mut desk = Desk::new();
    let raw = fixture("filter/subdomain");
    for i in 0..60u32 {
        // Different bytes each time (not duplicates): a header line varies.
        let mut mail = format!("X-Seq: {i}\r\n").into_bytes();
        mail.extend_from_slice(&raw);
        desk.intake(&mail, at("2026-11-23T07:15:00Z"));
    }
    let dir = tempfile::tempdir().unwrap();
    let report = replay::replay(&desk.store, &fixed_rules(dir.path()), None, true).unwrap();
    assert_eq!(report.total, 60);
    assert_eq!(report.changed.len(), 60);
    assert_eq!(
        report
            .counts
            .get(&("filter".to_string(), "accept".to_string())),
        Some(&60)
    );
}

#[test]
fn since_accepts_a_local_date_or_an_instant_and_refuses_the_rest() {
    let cal = calendar();
    let tz = cal.time_zone();
    assert_eq!(
        stats::parse_since("2026-11-01", tz).unwrap(),
        at("2026-10-31T21:00:00Z")
    );
    assert_eq!(
        stats::parse_since("2026-11-01T08:00:00+03:00", tz).unwrap(),
        at("2026-11-01T05:00:00Z")
    );
    assert_eq!(
        stats::parse_since("2026-11-01T05:00:00Z", tz).unwrap(),
        at("2026-11-01T05:00:00Z")
    );
    for bad in [
        "2026-13-01",
        "yesterday",
        "01.11.2026",
        "2026-11-01 08:00",
        "",
    ] {
        let err = stats::parse_since(bad, tz).unwrap_err();
        assert!(
            err.contains("YYYY-MM-DD") && err.contains("Europe/Simferopol"),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn stats_count_decisions_reasons_statuses_deadlines_and_medians() {
    let mut desk = Desk::new();
    // Six tickets (arrivals and acceptances are set below), three refused mails, one duplicate,
    // and one ticket from October, before the period.
    let accepted_fixtures = [
        "accept/thebat_cp1251_8bit",
        "accept/iphone_qp",
        "accept/mailru_mobile",
        "accept/only_steps",
        "accept/only_error_text",
        "accept/uppercase_sender",
    ];
    let mut tickets = Vec::new();
    for name in accepted_fixtures {
        let (_, o) = desk.fixture(name, "2026-11-23T05:00:00Z");
        let Outcome::NewTicket { ticket, .. } = o else {
            panic!("{name}: {o:?}")
        };
        tickets.push(ticket);
    }
    desk.fixture("filter/subdomain", "2026-11-23T05:00:00Z");
    desk.fixture("reject/bat_script", "2026-11-23T05:00:00Z");
    desk.fixture("ignore/x_loop", "2026-11-23T05:00:00Z");
    let (_, o) = desk.intake(&fixture("ignore/x_loop"), at("2026-11-23T06:00:00Z"));
    assert!(matches!(o, Outcome::Duplicate { .. }));
    let (_, o) = desk.fixture("incomplete/six_images", "2026-10-01T05:00:00Z");
    assert!(matches!(o, Outcome::NewTicket { .. }));

    // (status, arrived, accept_due, accepted_at) — Monday 23.11.2026, Europe/Simferopol (+03).
    let plan: [(&str, &str, &str, Option<&str>); 6] = [
        // 09:00 → 10:00 Mon: 60 working minutes, 60 on the clock; met.
        (
            "in_progress",
            "2026-11-23T09:00:00+03:00",
            "2026-11-23T17:00:00+03:00",
            Some("2026-11-23T10:00:00+03:00"),
        ),
        // 16:00 Mon → 09:00 Tue: 1 h + 1 h working, 17 h on the clock; met.
        (
            "assigned",
            "2026-11-23T16:00:00+03:00",
            "2026-11-24T15:00:00+03:00",
            Some("2026-11-24T09:00:00+03:00"),
        ),
        // 08:00 Tue → 08:30 Wed: 9 h 30 min working, 24 h 30 min on the clock; missed.
        (
            "resolved",
            "2026-11-24T08:00:00+03:00",
            "2026-11-24T16:00:00+03:00",
            Some("2026-11-25T08:30:00+03:00"),
        ),
        // Waiting for the applicant, due Wednesday: overdue on Friday.
        (
            "feedback",
            "2026-11-24T10:00:00+03:00",
            "2026-11-25T10:00:00+03:00",
            None,
        ),
        // New, not yet due.
        (
            "new",
            "2026-11-27T10:00:00+03:00",
            "2026-11-27T18:00:00+03:00",
            None,
        ),
        // Closed without being taken in work: not pending.
        (
            "closed",
            "2026-11-23T11:00:00+03:00",
            "2026-11-24T10:00:00+03:00",
            None,
        ),
    ];
    for (t, (status, arrived, due, accepted)) in tickets.iter().zip(plan) {
        let utc = |s: &str| at(s).to_string();
        desk.store
            .conn()
            .execute(
                "UPDATE tickets SET status = ?2, arrived_at = ?3, accept_due = ?4, accepted_at = ?5 WHERE id = ?1",
                rusqlite::params![t, status, utc(arrived), due, accepted.map(utc)],
            )
            .unwrap();
    }

    let cal = calendar();
    let now = at("2026-11-27T09:00:00Z"); // Friday 12:00
    let since = stats::parse_since("2026-11-01", cal.time_zone()).unwrap();
    let before = desk.checksum();
    let s = stats::stats(&desk.store, &cal, Some(since), now).unwrap();
    assert_eq!(desk.checksum(), before);

    assert_eq!(s.mails_total, 9);
    let n = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    assert_eq!(n(&s.mails_by_decision, "accept"), 6);
    assert_eq!(n(&s.mails_by_decision, "filter"), 1);
    assert_eq!(n(&s.mails_by_decision, "reject"), 1);
    assert_eq!(n(&s.mails_by_decision, "ignore"), 1);
    assert_eq!(n(&s.mails_by_decision, "incomplete"), 0);
    assert_eq!(s.mails_by_decision.len(), 6, "every decision is listed");
    assert_eq!(
        s.mails_by_reason,
        [
            ("attachment_dangerous".to_string(), 1),
            ("automatic".to_string(), 1),
            ("sender_domain".to_string(), 1)
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(n(&s.mails_by_outcome, "ticket"), 6);
    assert_eq!(s.tickets_total, 6);
    for status in [
        "new",
        "assigned",
        "in_progress",
        "feedback",
        "resolved",
        "closed",
    ] {
        assert_eq!(n(&s.tickets_by_status, status), 1, "{status}");
    }
    assert_eq!(s.deadlines_met, 2);
    assert_eq!(s.deadlines_missed, 1);
    assert_eq!(s.deadlines_pending_overdue, 1);
    assert_eq!(s.accepted, 3);
    assert_eq!(s.median_accept_working_minutes, Some(120.0));
    assert_eq!(s.median_accept_minutes, Some(1020.0));

    let text = stats::render(&s);
    for want in [
        "Статистика с 01.11.2026 00:00",
        "Письма: 9",
        "принято (accept)",
        "sender_domain",
        "Заявки: 6",
        "Рассматривается",
        "Обратная связь",
        "срок соблюдён: 2",
        "срок нарушен: 1",
        "не приняты, срок истёк: 1",
        "2 ч 00 мин рабочего времени, 17 ч 00 мин по часам (принято заявок: 3)",
    ] {
        assert!(text.contains(want), "{want:?} missing in:\n{text}");
    }
    let created = text.find("заявка создана").unwrap();
    let refused = text.find("отклонено (в карантине)").unwrap();
    assert!(created < refused, "outcomes in report order:\n{text}");
    let json: serde_json::Value = serde_json::to_value(&s).unwrap();
    assert_eq!(json["tickets_by_status"]["feedback"], 1);
    assert_eq!(json["median_accept_working_minutes"], 120.0);

    // Everything: the October ticket and its mail too.
    let all = stats::stats(&desk.store, &cal, None, now).unwrap();
    assert_eq!(all.mails_total, 10);
    assert_eq!(all.tickets_total, 7);
    assert_eq!(n(&all.mails_by_reason, "too_many_images"), 1);
    assert!(stats::render(&all).starts_with("Статистика за всё время"));

    // An empty store: no medians, said in words.
    let empty = Desk::new();
    let e = stats::stats(&empty.store, &cal, None, now).unwrap();
    assert_eq!(e.median_accept_minutes, None);
    assert!(stats::render(&e).contains("нет принятых заявок"));
}
