//! The operators' digest: what the 1st line (1 ЛТП) needs at the start of a shift — new tickets
//! with their parsed form, tickets waiting for the applicant («Обратная связь»), accept deadlines
//! (reg. 4.6) due today or already missed, and the mail that made no ticket, counted by reason.
//!
//! [`build`] reads the store and renders one [`Digest`]: a Russian plain-text part and an
//! Outlook-friendly HTML part (table layout, inline styles, every value escaped). [`record_sent`]
//! queues it in the outbox — one row per recipient — and records the digest in the same
//! transaction, so the next digest starts where this one ended. [`due_slot`] is the pure
//! schedule check the daemon calls every minute.
//!
//! What this module must never do: print patient data (surname, card number) unmasked when
//! masking is on — not in the patient row, and not where an applicant typed it into the subject,
//! the steps or the error text ([`mask_name`], [`mask_card`] and a per-ticket scrub); and log
//! anything at all — it has no `tracing` calls, so no field value can reach a log line.

use std::collections::BTreeMap;

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use rusqlite::{params, OptionalExtension};

use crate::desk::calendar::Calendar;
use crate::store::outbox::{AutoSubmitted, OutgoingMail};
use crate::store::{AttachmentRow, Status, Store, TicketRow};
use crate::verdict::{Impact, Priority};

/// One rendered digest, ready to be sent or printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Where this digest starts: the end of the previous one (`None`: the first digest, which
    /// covers everything in the store).
    pub since: Option<Timestamp>,
    /// Where it ends: the moment it was built (to the millisecond); the next digest starts here.
    pub until: Timestamp,
    pub subject: String,
    /// The plain-text part (Russian).
    pub text: String,
    /// The HTML part: a complete document.
    pub html: String,
    /// Tickets created in `(since, until]`.
    pub new_tickets: usize,
    /// Tickets now in «Обратная связь».
    pub feedback: usize,
    /// New/feedback tickets, never accepted, whose accept deadline falls later today.
    pub due_today: usize,
    /// New/feedback tickets, never accepted, whose accept deadline has passed.
    pub overdue: usize,
    /// Mails rejected, filtered or ignored in `(since, until]`.
    pub refused: usize,
}

/// The end of the last digest recorded, if any.
pub fn last_sent(store: &Store) -> Result<Option<Timestamp>, String> {
    let at: Option<String> = store
        .conn()
        .query_row("SELECT at FROM digests ORDER BY id DESC LIMIT 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| format!("digests: {e}"))?;
    at.map(|s| {
        s.parse::<Timestamp>()
            .map_err(|e| format!("digests: bad time `{s}`: {e}"))
    })
    .transpose()
}

/// The `digest.times` of the config as times of day (the config loader has validated them).
pub fn parse_times(times: &[String]) -> Result<Vec<Time>, String> {
    times
        .iter()
        .map(|t| {
            t.trim()
                .parse::<Time>()
                .map_err(|e| format!("digest.times: `{t}` is not a time like \"08:30\": {e}"))
        })
        .collect()
}

/// Build the digest of everything since the last recorded one, as of `now`.
pub fn build(
    store: &Store,
    cal: &Calendar,
    now: Timestamp,
    mask_patient: bool,
) -> Result<Digest, String> {
    // One read snapshot: a mail recorded meanwhile is in every section or in none. Rolled back
    // (nothing was written) when dropped.
    let snapshot = store
        .conn()
        .unchecked_transaction()
        .map_err(|e| format!("digest: {e}"))?;
    let since = last_sent(store)?;
    // Whole milliseconds, as the store keeps times: the next digest starts exactly here.
    let until = Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now);
    let model = Model::read(store, cal, since, until, mask_patient)?;
    let subject = format!(
        "Сводка СТП на {}: новых {}, просрочено {}",
        local(cal, until),
        model.new_total,
        model.overdue()
    );
    let text = render_text(&model, &subject);
    let html = render_html(&model, &subject);
    drop(snapshot);
    Ok(Digest {
        since,
        until,
        subject,
        text,
        html,
        new_tickets: model.new_total,
        feedback: model.feedback.len(),
        due_today: model.deadlines.len() - model.overdue(),
        overdue: model.overdue(),
        refused: model.refused.iter().map(|g| g.mails).sum(),
    })
}

/// The mail to pass to [`record_sent`]: both parts, sent on our own initiative
/// (`Auto-Submitted: auto-generated`, so robots do not answer it) from the desk's address with a
/// normal return path (an operator's full mailbox should bounce to us, not vanish), and no copy
/// to our mailbox (a copy would come back as an automatic mail). `to` and the Message-ID are
/// set per recipient by [`record_sent`]; `from` is `smtp.from` and gives the id's domain.
pub fn outgoing(d: &Digest, from: &str) -> OutgoingMail {
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost");
    OutgoingMail {
        message_id: format!("mailintake.digest@{domain}"),
        to: String::new(),
        subject: d.subject.clone(),
        text: d.text.clone(),
        html: Some(d.html.clone()),
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted: AutoSubmitted::AutoGenerated,
        null_sender: false,
        bcc: Vec::new(),
    }
}

/// Queue the digest for sending and record it, in one transaction.
///
/// One outbox row per recipient (kind `digest`, no ticket, `pending`, due now): `outbox_mail`
/// with `to` set to that recipient and a unique Message-ID
/// `mailintake.digest.<digest id>.<n>.<until, unix ms>@<domain of outbox_mail.message_id>`.
/// The `digests` row gets `at = d.until`, the recipients joined with ", " and the first outbox
/// row. Returns the digest id. Duplicate and empty recipients are dropped; none left is an error.
pub fn record_sent(
    store: &mut Store,
    d: &Digest,
    recipients: &[String],
    outbox_mail: &OutgoingMail,
) -> Result<i64, String> {
    let mut rcpts: Vec<&str> = Vec::new();
    for r in recipients
        .iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
    {
        if !rcpts.iter().any(|x| x.eq_ignore_ascii_case(r)) {
            rcpts.push(r);
        }
    }
    if rcpts.is_empty() {
        return Err("the digest has no recipients (digest.recipients is empty)".into());
    }
    let domain = outbox_mail
        .message_id
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>'))
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost")
        .to_string();
    let now = ts(Timestamp::now());
    let sql = |e: rusqlite::Error| format!("cannot record the digest: {e}");
    let tx = store
        .conn_mut()
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql)?;
    tx.execute(
        "INSERT INTO digests (at, recipients) VALUES (?1, ?2)",
        params![ts(d.until), rcpts.join(", ")],
    )
    .map_err(sql)?;
    let digest_id = tx.last_insert_rowid();
    let mut first_outbox = None;
    for (i, rcpt) in rcpts.iter().enumerate() {
        let mut mail = outbox_mail.clone();
        mail.to = (*rcpt).to_string();
        mail.message_id = format!(
            "mailintake.digest.{digest_id}.{}.{}@{domain}",
            i + 1,
            d.until.as_millisecond()
        );
        let payload = serde_json::to_string(&mail).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO outbox (ticket_id, mail_id, kind, recipient, message_id, payload, state, next_attempt_at, created_at)
             VALUES (NULL, NULL, 'digest', ?1, ?2, ?3, 'pending', ?4, ?4)",
            params![mail.to, mail.message_id, payload, now],
        )
        .map_err(sql)?;
        first_outbox.get_or_insert(tx.last_insert_rowid());
    }
    tx.execute(
        "UPDATE digests SET outbox_id = ?2 WHERE id = ?1",
        params![digest_id, first_outbox],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)?;
    Ok(digest_id)
}

/// The scheduled slot to send now, if any: the most recent `times` on a working day of `cal`
/// (in its zone) that is at or before `now` and after `last_sent`. A daemon that was down over
/// several slots gets only the latest one; `None` when there is nothing to send.
pub fn due_slot(
    cal: &Calendar,
    times: &[Time],
    last_sent: Option<Timestamp>,
    now: Timestamp,
) -> Option<Timestamp> {
    let mut times = times.to_vec();
    times.sort();
    times.dedup();
    if times.is_empty() {
        return None;
    }
    let tz = cal.time_zone();
    let oldest = last_sent.map(|l| tz.to_datetime(l).date());
    let mut date = tz.to_datetime(now).date();
    // A year back at most: a calendar without a working day in a year sends nothing.
    for _ in 0..370 {
        if oldest.is_some_and(|o| date < o) {
            return None;
        }
        if cal.is_working_day(date) {
            for t in times.iter().rev() {
                let Ok(slot) = tz.to_ambiguous_timestamp(date.to_datetime(*t)).compatible() else {
                    continue;
                };
                if slot <= now {
                    return match last_sent {
                        Some(l) if slot <= l => None,
                        _ => Some(slot),
                    };
                }
            }
        }
        date = date.yesterday().ok()?;
    }
    None
}

/// A card number for a digest: `****` and its last two characters (`"123456"` → `"****56"`);
/// four characters or fewer give just `****`. Spaces and dashes do not count.
pub fn mask_card(card: &str) -> String {
    let chars: Vec<char> = card.chars().filter(|c| c.is_alphanumeric()).collect();
    if chars.len() <= 4 {
        return "****".into();
    }
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("****{tail}")
}

/// A patient's name for a digest: the surname (the first word that is not initials) becomes
/// its first letter and `***`, other full words become an initial, initials stay:
/// `"Сидоров С.С."` → `"С*** С.С."`, `"Сидоров Семён Семёнович"` → `"С*** С. С."`,
/// `"С.С. Сидоров"` → `"С.С. С***"`.
pub fn mask_name(name: &str) -> String {
    let mut surname_done = false;
    let mut out = Vec::new();
    for word in name.split_whitespace() {
        if is_initials(word) {
            out.push(word.to_string());
            continue;
        }
        let Some(first) = word.chars().find(|c| c.is_alphanumeric()) else {
            continue; // punctuation on its own tells nothing
        };
        if surname_done {
            out.push(format!("{first}."));
        } else {
            out.push(format!("{first}***"));
            surname_done = true;
        }
    }
    out.join(" ")
}

/// `С.С.`, `С.`, `Н.И` — single letters separated by dots.
fn is_initials(word: &str) -> bool {
    word.contains('.')
        && word.chars().any(char::is_alphabetic)
        && word
            .split('.')
            .all(|p| p.chars().count() <= 1 && p.chars().all(char::is_alphabetic))
}

/// At most this many new tickets are shown in full; the count is always exact.
const MAX_NEW_SHOWN: usize = 200;

// ---- reading -------------------------------------------------------------------------------

/// What the digest says, read once and rendered twice (text and HTML).
struct Model<'a> {
    cal: &'a Calendar,
    since: Option<Timestamp>,
    until: Timestamp,
    mask: bool,
    /// The newest [`MAX_NEW_SHOWN`] of the `new_total` new tickets.
    new: Vec<NewTicket>,
    new_total: usize,
    feedback: Vec<Waiting>,
    deadlines: Vec<Deadline>,
    refused: Vec<RefusedGroup>,
    /// Mail whose sender was not authenticated (issue 9), oldest first.
    unauthenticated: Vec<Unauthenticated>,
}

/// A mail with `sender_unauthenticated`: who it claims to be from and what the checks said.
struct Unauthenticated {
    mail_id: i64,
    sender: String,
    subject: String,
    checks: String,
    /// `auth.on_fail = "quarantine"`: an operator should look at it.
    held: bool,
    ticket: Option<i64>,
}

/// A new ticket: label/value rows, values already masked and scrubbed.
struct NewTicket {
    id: i64,
    subject: String,
    rows: Vec<(&'static str, String)>,
}

struct Waiting {
    id: i64,
    subject: String,
    sender: String,
    organization: String,
    entered: Option<Timestamp>,
    waited: SignedDuration,
    asked_by: String,
}

struct Deadline {
    id: i64,
    due: Timestamp,
    status: Status,
    priority: String,
    organization: String,
    subject: String,
    /// Working time past the deadline (overdue) or left until it (today).
    delta: SignedDuration,
    overdue: bool,
}

struct RefusedGroup {
    decision: String,
    mails: usize,
    /// (code, mails), most frequent first.
    codes: Vec<(String, usize)>,
}

impl<'a> Model<'a> {
    fn read(
        store: &Store,
        cal: &'a Calendar,
        since: Option<Timestamp>,
        until: Timestamp,
        mask: bool,
    ) -> Result<Model<'a>, String> {
        let db = |e: rusqlite::Error| format!("digest: {e}");
        let conn = store.conn();
        let in_window =
            |stored: &str| parse(stored).is_some_and(|t| since.is_none_or(|s| t > s) && t <= until);
        // The text prefilter compares whole seconds (stored times differ in their fraction
        // digits); the exact window is applied on the parsed times.
        let since_text = since.map(ts);

        let mut new = Vec::new();
        let new_total;
        {
            let mut st = conn
                .prepare(
                    "SELECT id, created_at FROM tickets
                     WHERE ?1 IS NULL OR substr(created_at, 1, 19) >= substr(?1, 1, 19) ORDER BY id",
                )
                .map_err(db)?;
            let ids: Vec<(i64, String)> = st
                .query_map(params![since_text], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(db)?
                .collect::<Result<_, _>>()
                .map_err(db)?;
            let ids: Vec<i64> = ids
                .into_iter()
                .filter(|(_, created)| in_window(created))
                .map(|(id, _)| id)
                .collect();
            new_total = ids.len();
            // The newest ones when there are too many (a first digest over a full store).
            for &id in &ids[ids.len().saturating_sub(MAX_NEW_SHOWN)..] {
                let Some(t) = store.ticket(id).map_err(|e| e.to_string())? else {
                    continue;
                };
                let atts = store.attachments(id).map_err(|e| e.to_string())?;
                let mut shown = new_ticket(cal, &t, &atts, mask);
                if let Some(a) = crate::desk::tickets::sender_auth(store, id) {
                    shown.rows.push(("Подлинность отправителя", a.summary()));
                }
                new.push(shown);
            }
        }

        let mut feedback = Vec::new();
        for t in store
            .tickets(Some(Status::Feedback))
            .map_err(|e| e.to_string())?
        {
            // The latest status change put it in feedback: it is in feedback now.
            let changed: Option<String> = conn
                .query_row(
                    "SELECT at FROM events WHERE ticket_id = ?1 AND kind IN ('status', 'created')
                     ORDER BY id DESC LIMIT 1",
                    params![t.id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(db)?;
            let entered = changed
                .as_deref()
                .and_then(parse)
                .or_else(|| parse(&t.updated_at));
            let scrub = Scrub::new(&t, mask);
            feedback.push(Waiting {
                id: t.id,
                subject: scrub.apply(&t.subject),
                sender: scrub.apply(&t.sender),
                organization: scrub.apply(opt(&t.fields.applicant.organization)),
                entered,
                waited: entered
                    .map(|e| cal.working_between(e, until).max(SignedDuration::ZERO))
                    .unwrap_or(SignedDuration::ZERO),
                asked_by: match t.feedback_by.as_deref() {
                    None | Some("mailintake") => "mailintake (форма неполна)".to_string(),
                    Some(who) => scrub.apply(who),
                },
            });
        }
        feedback.sort_by_key(|w| (w.entered, w.id));

        // Deadlines due before the end of today (local), or already missed. Deadlines lie in
        // working hours, so "before tomorrow" is "before the end of today's working day".
        let tz = cal.time_zone();
        let tomorrow = tz
            .to_datetime(until)
            .date()
            .tomorrow()
            .ok()
            .and_then(|d| {
                tz.to_ambiguous_timestamp(d.to_datetime(Time::midnight()))
                    .compatible()
                    .ok()
            })
            .unwrap_or(until);
        let mut deadlines = Vec::new();
        for status in [Status::New, Status::Feedback] {
            for t in store.tickets(Some(status)).map_err(|e| e.to_string())? {
                // Accepted once (then sent back to feedback by an operator): the deadline was met.
                if t.accepted_at.is_some() {
                    continue;
                }
                let Some(due) = t.accept_due.as_deref().and_then(parse) else {
                    continue;
                };
                if due >= tomorrow {
                    continue;
                }
                let overdue = due < until;
                let scrub = Scrub::new(&t, mask);
                deadlines.push(Deadline {
                    id: t.id,
                    due,
                    status: t.status,
                    priority: priority_ru(&t.priority).to_string(),
                    organization: scrub.apply(opt(&t.fields.applicant.organization)),
                    subject: scrub.apply(&t.subject),
                    delta: if overdue {
                        cal.working_between(due, until)
                    } else {
                        cal.working_between(until, due)
                    },
                    overdue,
                });
            }
        }
        deadlines.sort_by_key(|d| (d.due, d.id));

        let mut groups: BTreeMap<u8, RefusedGroup> = BTreeMap::new();
        let mut codes: BTreeMap<(u8, String), usize> = BTreeMap::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT decision, reasons, processed_at FROM mails
                     WHERE outcome IN ('rejected', 'filtered', 'ignored')
                       AND (?1 IS NULL OR substr(processed_at, 1, 19) >= substr(?1, 1, 19))",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![since_text], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(db)?;
            for row in rows {
                let (decision, reasons, at) = row.map_err(db)?;
                if !in_window(&at) {
                    continue;
                }
                let order = decision_order(&decision);
                let g = groups.entry(order).or_insert_with(|| RefusedGroup {
                    decision: decision.clone(),
                    mails: 0,
                    codes: Vec::new(),
                });
                g.mails += 1;
                let mut seen: Vec<&str> = Vec::new();
                for code in reasons.split(',').map(str::trim) {
                    if !seen.contains(&code) {
                        seen.push(code);
                        *codes.entry((order, code.to_string())).or_default() += 1;
                    }
                }
            }
        }
        for ((order, code), n) in codes {
            if let Some(g) = groups.get_mut(&order) {
                g.codes.push((code, n));
            }
        }
        let refused: Vec<RefusedGroup> = groups
            .into_values()
            .map(|mut g| {
                g.codes
                    .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                g
            })
            .collect();

        let mut unauthenticated = Vec::new();
        {
            let mut st = conn
                .prepare(
                    "SELECT id, sender, subject, processed_at, json_extract(verdict, '$.auth'), ticket_id
                     FROM mails
                     WHERE instr(',' || reasons || ',', ',sender_unauthenticated,') > 0
                       AND (?1 IS NULL OR substr(processed_at, 1, 19) >= substr(?1, 1, 19))
                     ORDER BY id",
                )
                .map_err(db)?;
            let rows = st
                .query_map(params![since_text], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                })
                .map_err(db)?;
            for row in rows {
                let (mail_id, sender, subject, at, auth, ticket) = row.map_err(db)?;
                if !in_window(&at) {
                    continue;
                }
                let auth: Option<crate::verdict::auth::AuthResult> =
                    auth.and_then(|a| serde_json::from_str(&a).ok());
                unauthenticated.push(Unauthenticated {
                    mail_id,
                    sender,
                    subject,
                    checks: auth.as_ref().map(|a| a.summary()).unwrap_or_default(),
                    held: auth.is_some_and(|a| {
                        a.on_fail == Some(crate::verdict::auth::OnFail::Quarantine)
                    }),
                    ticket,
                });
            }
        }

        Ok(Model {
            cal,
            since,
            until,
            mask,
            new,
            new_total,
            feedback,
            deadlines,
            refused,
            unauthenticated,
        })
    }

    fn hidden_note(&self) -> Option<String> {
        let hidden = self.new_total - self.new.len();
        (hidden > 0).then(|| {
            format!(
                "Показаны последние {}; ещё {hidden} более ранних — в `mailintake tickets`.",
                self.new.len()
            )
        })
    }

    fn overdue(&self) -> usize {
        self.deadlines.iter().filter(|d| d.overdue).count()
    }

    fn period(&self) -> String {
        match self.since {
            Some(s) => format!(
                "с {} по {}",
                local(self.cal, s),
                local(self.cal, self.until)
            ),
            None => format!("с начала работы по {}", local(self.cal, self.until)),
        }
    }
}

fn new_ticket(cal: &Calendar, t: &TicketRow, atts: &[AttachmentRow], mask: bool) -> NewTicket {
    let scrub = Scrub::new(t, mask);
    let f = &t.fields;
    let s = |v: &Option<String>| scrub.apply(opt(v));
    let joined = |parts: Vec<String>| {
        let parts: Vec<String> = parts.into_iter().filter(|p| p != DASH).collect();
        if parts.is_empty() {
            DASH.to_string()
        } else {
            parts.join(", ")
        }
    };
    let patient_name = match &f.patient.name {
        Some(n) if mask => mask_name(n),
        other => opt(other).to_string(),
    };
    let patient_card = match &f.patient.card {
        Some(c) if mask => format!("№ карты {}", mask_card(c)),
        Some(c) => format!("№ карты {c}"),
        None => DASH.to_string(),
    };
    let mut priority = priority_ru(&t.priority).to_string();
    if let Some(i) = t.impact.as_deref() {
        priority.push_str(&format!(
            ", влияние: {}",
            Impact::parse(i).map(Impact::russian).unwrap_or(i)
        ));
    }
    let attachments = if atts.is_empty() {
        NONE.to_string()
    } else {
        atts.iter()
            .map(|a| {
                format!(
                    "{} ({}, {})",
                    scrub.apply(&a.name),
                    kind_ru(&a.kind),
                    size_text(a.bytes)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut rows = vec![
        ("Поступила", stored_local(cal, &t.arrived_at)),
        ("Статус", t.status.russian().to_string()),
        ("Приоритет", priority),
        ("От", scrub.apply(&t.sender)),
        (
            "Заявитель",
            joined(vec![s(&f.applicant.full_name), s(&f.applicant.position)]),
        ),
        ("МО", s(&f.applicant.organization)),
        ("Телефон", s(&f.applicant.phone)),
        (
            "Пользователь",
            joined(vec![
                s(&f.user.full_name),
                f.user
                    .login
                    .as_deref()
                    .map(|l| format!("логин {}", scrub.apply(l)))
                    .unwrap_or_else(|| DASH.to_string()),
            ]),
        ),
        ("Пациент", joined(vec![patient_name, patient_card])),
        ("Последовательность действий", s(&f.steps)),
        ("Описание ошибки", s(&f.error_text)),
        ("Вложения", attachments),
    ];
    if let Some(due) = &t.accept_due {
        rows.push(("Принять в работу до", stored_local(cal, due)));
    }
    NewTicket {
        id: t.id,
        subject: scrub.apply(&t.subject),
        rows,
    }
}

/// Patient data of one ticket replaced wherever it appears in the ticket's free text (an
/// applicant may write «карта 123456 пациентки Сидоровой» in the subject). Case-insensitive;
/// a surname also hides its declined forms, which start with it.
struct Scrub {
    /// (needle, lower-cased, as chars; replacement), longest first.
    pairs: Vec<(Vec<char>, String)>,
}

impl Scrub {
    fn new(t: &TicketRow, mask: bool) -> Scrub {
        let mut pairs: Vec<(Vec<char>, String)> = Vec::new();
        if mask {
            let p = &t.fields.patient;
            let mut add = |needle: &str, repl: String| {
                let needle: Vec<char> = needle.trim().chars().map(lower).collect();
                if needle.iter().filter(|c| c.is_alphanumeric()).count() >= 3 {
                    pairs.push((needle, repl));
                }
            };
            if let Some(name) = p.name.as_deref() {
                add(name, mask_name(name));
                // The surname alone too (first names would hide applicants' names as well).
                if let Some(word) = name.split_whitespace().find(|w| !is_initials(w)) {
                    let word = word.trim_matches(|c: char| !c.is_alphanumeric());
                    add(word, mask_name(word));
                }
            }
            if let Some(card) = p.card.as_deref() {
                add(card, mask_card(card));
                let digits: String = card.chars().filter(|c| c.is_alphanumeric()).collect();
                add(&digits, mask_card(card));
            }
            pairs.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
        }
        Scrub { pairs }
    }

    fn apply(&self, text: &str) -> String {
        if self.pairs.is_empty() {
            return text.to_string();
        }
        let chars: Vec<char> = text.chars().collect();
        let low: Vec<char> = chars.iter().copied().map(lower).collect();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'scan: while i < chars.len() {
            for (needle, repl) in &self.pairs {
                if low[i..].starts_with(needle) {
                    out.push_str(repl);
                    i += needle.len();
                    continue 'scan;
                }
            }
            out.push(chars[i]);
            i += 1;
        }
        out
    }
}

fn lower(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

// ---- rendering -----------------------------------------------------------------------------

const DASH: &str = "—";
const NONE: &str = "нет";

const TITLE_NEW: &str = "Новые заявки";
const TITLE_FEEDBACK: &str = "Ожидают ответа заявителя — Обратная связь";
const TITLE_DEADLINES: &str = "Сроки принятия в работу: сегодня и просроченные";
const TITLE_REFUSED: &str = "Отклонённые, отфильтрованные и проигнорированные письма";
const TITLE_UNAUTHENTICATED: &str = "Подлинность отправителя не подтверждена";

impl Unauthenticated {
    /// What an operator does about it.
    fn action(&self) -> String {
        match self.ticket {
            Some(t) => format!("заявка #{t} — подтвердите отправителя до работы по ней"),
            None if self.held => format!(
                "ждёт проверки: mailintake quarantine show {} (если отправитель подлинный — quarantine release {} --force-accept)",
                self.mail_id, self.mail_id
            ),
            None => "отфильтровано".to_string(),
        }
    }
}

fn render_text(m: &Model<'_>, subject: &str) -> String {
    let mut s = String::new();
    s.push_str(subject);
    s.push('\n');
    s.push_str(&format!("Период: {}\n", m.period()));
    if m.mask {
        s.push_str(
            "Данные пациентов скрыты (фамилия — первой буквой, № карты — последними цифрами).\n",
        );
    }

    heading(&mut s, &format!("{TITLE_NEW} ({})", m.new_total));
    if m.new.is_empty() {
        s.push_str(NONE);
        s.push('\n');
    }
    if let Some(note) = m.hidden_note() {
        s.push_str(&note);
        s.push('\n');
    }
    for t in &m.new {
        s.push_str(&format!("\n#{} {}\n", t.id, one_line(&t.subject)));
        for (label, value) in &t.rows {
            if value.contains('\n') {
                s.push_str(&format!("  {label}:\n"));
                for line in value.lines() {
                    s.push_str(&format!("    {line}\n"));
                }
            } else {
                s.push_str(&format!("  {label}: {value}\n"));
            }
        }
    }

    heading(&mut s, &format!("{TITLE_FEEDBACK} ({})", m.feedback.len()));
    if m.feedback.is_empty() {
        s.push_str(NONE);
        s.push('\n');
    } else {
        s.push_str("Время ожидания — рабочее (по календарю СТП).\n");
    }
    for w in &m.feedback {
        s.push_str(&format!(
            "#{} {} — {}, {}\n  в «Обратной связи» с {}, ждёт {}; запросил: {}\n",
            w.id,
            one_line(&w.subject),
            w.sender,
            one_line(&w.organization),
            w.entered
                .map(|e| local(m.cal, e))
                .unwrap_or_else(|| DASH.into()),
            duration_text(w.waited),
            w.asked_by
        ));
    }

    heading(
        &mut s,
        &format!("{TITLE_DEADLINES} ({})", m.deadlines.len()),
    );
    if m.deadlines.is_empty() {
        s.push_str(NONE);
        s.push('\n');
    } else {
        s.push_str(
            "8 рабочих часов с поступления (п. 4.6 Регламента); просрочка — в рабочем времени.\n",
        );
    }
    for d in &m.deadlines {
        s.push_str(&format!(
            "{}  #{} [{}, {}] {} — {}: {}\n",
            local(m.cal, d.due),
            d.id,
            d.status.russian(),
            d.priority,
            deadline_mark(d),
            one_line(&d.organization),
            one_line(&d.subject)
        ));
    }

    let refused: usize = m.refused.iter().map(|g| g.mails).sum();
    heading(&mut s, &format!("{TITLE_REFUSED} ({refused})"));
    if m.refused.is_empty() {
        s.push_str(NONE);
        s.push('\n');
    }
    for g in &m.refused {
        s.push_str(&format!("{}: {}\n", decision_ru(&g.decision), g.mails));
        for (code, n) in &g.codes {
            s.push_str(&format!(
                "  {} ({}): {n}\n",
                code_ru(code),
                code_shown(code)
            ));
        }
    }
    // Only when there is something: a desk with `auth.mode = "off"` sees no new section.
    if !m.unauthenticated.is_empty() {
        heading(
            &mut s,
            &format!("{TITLE_UNAUTHENTICATED} ({})", m.unauthenticated.len()),
        );
        s.push_str(
            "Письма могли быть отправлены от чужого имени; автоответ на них не отправлялся.\n",
        );
        for u in &m.unauthenticated {
            s.push_str(&format!(
                "письмо #{} от {} — {}\n  {}; {}\n",
                u.mail_id,
                u.sender,
                one_line(&u.subject),
                u.checks,
                u.action()
            ));
        }
    }
    s.push_str("\n-- \nmailintake, СТП ГБУЗС «МИАЦ». Сводка составлена автоматически; отвечать на неё не нужно.\n");
    s
}

fn heading(s: &mut String, title: &str) {
    s.push('\n');
    s.push_str(title);
    s.push('\n');
    s.push_str(&"=".repeat(title.chars().count()));
    s.push('\n');
}

fn deadline_mark(d: &Deadline) -> String {
    if d.overdue {
        if d.delta < SignedDuration::from_mins(1) {
            "просрочено".to_string()
        } else {
            format!("просрочено на {}", duration_text(d.delta))
        }
    } else {
        format!("сегодня, осталось {}", duration_text(d.delta))
    }
}

// Inline styles only: Outlook (Word engine) ignores <style> classes in many set-ups and does not
// know flex or grid; tables with border-collapse and explicit cell padding render everywhere.
const FONT: &str = "font-family:Arial,Helvetica,sans-serif;";
const TABLE: &str = "border-collapse:collapse;border:1px solid #9fb1c2;margin:0 0 12px 0;font-family:Arial,Helvetica,sans-serif;font-size:13px;";
const TH: &str = "border:1px solid #9fb1c2;background-color:#e3eaf2;padding:4px 8px;text-align:left;vertical-align:top;font-weight:bold;";
const TH_TICKET: &str = "border:1px solid #9fb1c2;background-color:#c9d7e6;padding:4px 8px;text-align:left;vertical-align:top;font-weight:bold;font-size:14px;";
const TD: &str = "border:1px solid #9fb1c2;padding:4px 8px;text-align:left;vertical-align:top;";
const H2: &str =
    "margin:18px 0 6px 0;font-size:16px;font-family:Arial,Helvetica,sans-serif;color:#1f3b57;";
const NOTE: &str =
    "margin:0 0 8px 0;font-size:12px;color:#555555;font-family:Arial,Helvetica,sans-serif;";
const RED: &str = "color:#b00020;font-weight:bold;";

fn render_html(m: &Model<'_>, subject: &str) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"ru\">\n<head>\n");
    h.push_str("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n");
    h.push_str("<meta charset=\"utf-8\">\n");
    h.push_str(&format!("<title>{}</title>\n</head>\n", esc(subject)));
    h.push_str("<body style=\"margin:0;padding:0;background-color:#ffffff;\">\n");
    h.push_str("<table width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"border-collapse:collapse;\">\n");
    h.push_str(&format!(
        "<tr><td style=\"padding:12px;{FONT}font-size:14px;color:#1a1a1a;\">\n"
    ));
    h.push_str(&format!(
        "<h1 style=\"margin:0 0 4px 0;font-size:18px;{FONT}\">{}</h1>\n",
        esc(subject)
    ));
    h.push_str(&format!(
        "<p style=\"{NOTE}\">Период: {}</p>\n",
        esc(&m.period())
    ));
    if m.mask {
        h.push_str(&format!(
            "<p style=\"{NOTE}\">Данные пациентов скрыты (фамилия — первой буквой, № карты — последними цифрами).</p>\n"
        ));
    }

    // New tickets: one two-column table per ticket.
    h2(&mut h, &format!("{TITLE_NEW} ({})", m.new_total));
    if m.new.is_empty() {
        none(&mut h);
    }
    if let Some(note) = m.hidden_note() {
        h.push_str(&format!("<p style=\"{NOTE}\">{}</p>\n", esc(&note)));
    }
    for t in &m.new {
        h.push_str(&table_open("100%"));
        h.push_str(&format!(
            "<tr><th colspan=\"2\" style=\"{TH_TICKET}\">Заявка #{}: {}</th></tr>\n",
            t.id,
            esc(&t.subject)
        ));
        for (label, value) in &t.rows {
            h.push_str(&format!(
                "<tr><th width=\"200\" style=\"{TH}\">{}</th><td style=\"{TD}\">{}</td></tr>\n",
                esc(label),
                esc_lines(value)
            ));
        }
        h.push_str("</table>\n");
    }

    h2(&mut h, &format!("{TITLE_FEEDBACK} ({})", m.feedback.len()));
    if m.feedback.is_empty() {
        none(&mut h);
    } else {
        h.push_str(&format!(
            "<p style=\"{NOTE}\">Время ожидания — рабочее (по календарю СТП).</p>\n"
        ));
        h.push_str(&table_open("100%"));
        header_row(
            &mut h,
            &[
                "№",
                "Тема",
                "Заявитель",
                "МО",
                "В «Обратной связи» с",
                "Ждёт",
                "Запросил",
            ],
        );
        for w in &m.feedback {
            cells(
                &mut h,
                &[
                    format!("#{}", w.id),
                    w.subject.clone(),
                    w.sender.clone(),
                    w.organization.clone(),
                    w.entered
                        .map(|e| local(m.cal, e))
                        .unwrap_or_else(|| DASH.into()),
                    duration_text(w.waited),
                    w.asked_by.clone(),
                ],
                None,
            );
        }
        h.push_str("</table>\n");
    }

    h2(
        &mut h,
        &format!("{TITLE_DEADLINES} ({})", m.deadlines.len()),
    );
    if m.deadlines.is_empty() {
        none(&mut h);
    } else {
        h.push_str(&format!(
            "<p style=\"{NOTE}\">8 рабочих часов с поступления (п. 4.6 Регламента); просрочка — в рабочем времени.</p>\n"
        ));
        h.push_str(&table_open("100%"));
        header_row(
            &mut h,
            &["Срок", "№", "Статус", "Приоритет", "Отметка", "МО", "Тема"],
        );
        for d in &m.deadlines {
            cells(
                &mut h,
                &[
                    local(m.cal, d.due),
                    format!("#{}", d.id),
                    d.status.russian().to_string(),
                    d.priority.clone(),
                    deadline_mark(d),
                    d.organization.clone(),
                    d.subject.clone(),
                ],
                d.overdue.then_some(4),
            );
        }
        h.push_str("</table>\n");
    }

    let refused: usize = m.refused.iter().map(|g| g.mails).sum();
    h2(&mut h, &format!("{TITLE_REFUSED} ({refused})"));
    if m.refused.is_empty() {
        none(&mut h);
    } else {
        h.push_str(&table_open(""));
        header_row(&mut h, &["Решение / причина", "Код", "Писем"]);
        for g in &m.refused {
            h.push_str(&format!(
                "<tr><th style=\"{TH}\">{}</th><th style=\"{TH}\">{}</th><th style=\"{TH}text-align:right;\">{}</th></tr>\n",
                esc(decision_ru(&g.decision)),
                esc(&g.decision),
                g.mails
            ));
            for (code, n) in &g.codes {
                h.push_str(&format!(
                    "<tr><td style=\"{TD}padding-left:20px;\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}text-align:right;\">{n}</td></tr>\n",
                    esc(code_ru(code)),
                    esc(code_shown(code))
                ));
            }
        }
        h.push_str("</table>\n");
    }
    if !m.unauthenticated.is_empty() {
        h2(
            &mut h,
            &format!("{TITLE_UNAUTHENTICATED} ({})", m.unauthenticated.len()),
        );
        h.push_str(&table_open(""));
        header_row(&mut h, &["Письмо", "От", "Тема", "Проверки", "Что сделать"]);
        for u in &m.unauthenticated {
            h.push_str(&format!(
                "<tr><td style=\"{TD}\">#{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td><td style=\"{TD}\">{}</td></tr>\n",
                u.mail_id,
                esc(&u.sender),
                esc(&one_line(&u.subject)),
                esc(&u.checks),
                esc(&u.action())
            ));
        }
        h.push_str("</table>\n");
    }
    h.push_str(&format!(
        "<p style=\"{NOTE}margin-top:18px;\">mailintake, СТП ГБУЗС «МИАЦ». Сводка составлена автоматически; отвечать на неё не нужно.</p>\n"
    ));
    h.push_str("</td></tr>\n</table>\n</body>\n</html>\n");
    h
}

fn h2(h: &mut String, title: &str) {
    h.push_str(&format!("<h2 style=\"{H2}\">{}</h2>\n", esc(title)));
}

fn none(h: &mut String) {
    h.push_str(&format!(
        "<p style=\"margin:0 0 8px 0;{FONT}\">{NONE}</p>\n"
    ));
}

fn table_open(width: &str) -> String {
    let width = if width.is_empty() {
        String::new()
    } else {
        format!(" width=\"{width}\"")
    };
    format!("<table{width} cellpadding=\"4\" cellspacing=\"0\" border=\"1\" style=\"{TABLE}\">\n")
}

fn header_row(h: &mut String, names: &[&str]) {
    h.push_str("<tr>");
    for n in names {
        // One cell a line: SMTP lines stay short whatever the transfer encoding.
        h.push_str(&format!("\n<th style=\"{TH}\">{}</th>", esc(n)));
    }
    h.push_str("</tr>\n");
}

/// One row of cells; `red` names the cell to mark (an overdue deadline).
fn cells(h: &mut String, values: &[String], red: Option<usize>) {
    h.push_str("<tr>");
    for (i, v) in values.iter().enumerate() {
        let extra = if red == Some(i) { RED } else { "" };
        h.push_str(&format!(
            "\n<td style=\"{TD}{extra}\">{}</td>",
            esc_lines(v)
        ));
    }
    h.push_str("</tr>\n");
}

/// Text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\r' => {}
            c if c.is_control() && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text whose line breaks stay line breaks.
fn esc_lines(s: &str) -> String {
    esc(s).replace('\n', "<br>\n")
}

// ---- words ---------------------------------------------------------------------------------

fn opt(v: &Option<String>) -> &str {
    v.as_deref()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DASH)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn priority_ru(p: &str) -> &str {
    Priority::parse(p).map(Priority::russian).unwrap_or(p)
}

fn kind_ru(kind: &str) -> &str {
    match kind {
        "image" => "изображение",
        "archive" => "архив",
        "supplement" => "дополнение",
        "document" => "документ",
        "other" => "недопустимый формат",
        other => other,
    }
}

fn decision_order(decision: &str) -> u8 {
    match decision {
        "reject" => 0,
        "filter" => 1,
        "ignore" => 2,
        _ => 3,
    }
}

fn decision_ru(decision: &str) -> &str {
    match decision {
        "reject" => "Отклонены (отправителю ответили, почему)",
        "filter" => "Отфильтрованы (без ответа)",
        "ignore" => "Проигнорированы (автоматические, без ответа)",
        other => other,
    }
}

fn code_shown(code: &str) -> &str {
    if code.is_empty() {
        DASH
    } else {
        code
    }
}

/// Russian names of the reason codes (README, «Decisions and reason codes»).
fn code_ru(code: &str) -> &str {
    match code {
        "sender_domain" => "адрес отправителя вне разрешённых доменов (п. 3.3)",
        "sender_unauthenticated" => "подлинность отправителя не подтверждена (DKIM, SPF, DMARC)",
        "automatic" => "автоматическое письмо: автоответ, рассылка, уведомление о доставке",
        "too_large" => "вложения больше 10 МБ (п. 3.5)",
        "attachment_dangerous" => {
            "опасное вложение: исполняемый файл, скрипт, подмена расширения, архивная бомба"
        }
        "supplement_only" => "только doc/docx/видео без формы заявки (п. 3.1)",
        "subject_missing" => "нет темы письма (п. 3.4)",
        "fields_missing" => "не заполнены обязательные поля формы",
        "too_many_images" => "больше 5 изображений без архива (п. 3.5)",
        "attachment_type" => "недопустимый формат вложения (п. 3.5)",
        "archive_unreadable" => "архив зашифрован или повреждён",
        "mime_limit" => "письмо превысило пределы MIME",
        "" => "причина не указана",
        other => other,
    }
}

/// Working time as people say it: "2 ч 15 мин", "40 мин", "3 ч".
fn duration_text(d: SignedDuration) -> String {
    let mins = d.as_secs().max(0) / 60;
    match (mins / 60, mins % 60) {
        (0, m) => format!("{m} мин"),
        (h, 0) => format!("{h} ч"),
        (h, m) => format!("{h} ч {m} мин"),
    }
}

fn size_text(bytes: i64) -> String {
    const KB: i64 = 1024;
    const MB: i64 = 1024 * 1024;
    if bytes < KB {
        format!("{bytes} Б")
    } else if bytes < MB {
        format!("{} КБ", (bytes + KB / 2) / KB)
    } else {
        let tenths = (bytes * 10 + MB / 2) / MB;
        format!("{},{} МБ", tenths / 10, tenths % 10)
    }
}

// ---- time ----------------------------------------------------------------------------------

/// As the store writes times (RFC 3339, UTC, milliseconds).
fn ts(t: Timestamp) -> String {
    crate::store::ts(t)
}

fn parse(stored: &str) -> Option<Timestamp> {
    stored.trim().parse().ok()
}

/// "26.11.2026 12:10" in the calendar's zone.
fn local(cal: &Calendar, t: Timestamp) -> String {
    t.to_zoned(cal.time_zone().clone())
        .strftime("%d.%m.%Y %H:%M")
        .to_string()
}

fn stored_local(cal: &Calendar, stored: &str) -> String {
    parse(stored)
        .map(|t| local(cal, t))
        .unwrap_or_else(|| stored.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_card("123456"), "****56");
        assert_eq!(mask_card(" 55871 "), "****71");
        assert_eq!(mask_card("1234"), "****");
        assert_eq!(mask_card(""), "****");
        assert_eq!(mask_name("Сидоров С.С."), "С*** С.С.");
        assert_eq!(mask_name("Сидоров Семён Семёнович"), "С*** С. С.");
        assert_eq!(mask_name("С.С. Сидоров"), "С.С. С***");
        assert_eq!(mask_name("Бойко Н. И."), "Б*** Н. И.");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn words() {
        assert_eq!(duration_text(SignedDuration::from_mins(135)), "2 ч 15 мин");
        assert_eq!(duration_text(SignedDuration::from_mins(40)), "40 мин");
        assert_eq!(duration_text(SignedDuration::from_hours(3)), "3 ч");
        assert_eq!(size_text(512), "512 Б");
        assert_eq!(size_text(12 * 1024), "12 КБ");
        assert_eq!(size_text(1468006), "1,4 МБ");
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
