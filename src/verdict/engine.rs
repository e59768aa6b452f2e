//! The verdict engine: one mail's bytes plus the rules in, the regulation's decision out.
//!
//! A pure function: no IMAP, SQL, SMTP, clock, file system or network in here, and no panics on
//! any input. The groups are checked in the order of the contract (filter, ignore, reject,
//! follow-up, incomplete, accept); the first group that applies decides, and every reason found in
//! that group is listed.

use crate::verdict::attach::{self, Inspection};
use crate::verdict::auth::{self as sender_auth, AuthResult, OnFail, SenderAuth};
use crate::verdict::form::{self, ParsedForm};
use crate::verdict::message::{self, MailFacts};
use crate::verdict::rules::{AutomaticRules, RuleSet};
use crate::verdict::{
    AttachmentInfo, AttachmentKind, Code, Decision, FormFields, Impact, Priority, Reason, Verdict,
};

/// Judge one mail.
pub fn evaluate(raw: &[u8], rules: &RuleSet) -> Verdict {
    evaluate_with(raw, rules, true)
}

/// Judge one mail; with `followups` false a ticket tag is not looked at (the daemon uses this
/// when the tag names no ticket of ours, so the mail is judged as a new request).
pub fn evaluate_with(raw: &[u8], rules: &RuleSet, followups: bool) -> Verdict {
    evaluate_authenticated(raw, rules, followups, None)
}

/// Judge one mail together with its sender authentication (issue 9): `auth` is the result the
/// caller obtained (from our MTA's header or by verifying) and the desk's policy; `None` when
/// `auth.mode` is off. A sender that is not authenticated is `sender_unauthenticated`, checked
/// right after the domain rule (reg. 3.3), before anything else could cause a reply.
pub fn evaluate_authenticated(
    raw: &[u8],
    rules: &RuleSet,
    followups: bool,
    auth: Option<&SenderAuth>,
) -> Verdict {
    if raw.len() as u64 > rules.max_mail_bytes {
        return evaluate_oversized_authenticated(raw, raw.len() as u64, rules, auth);
    }
    let Some(msg) = message::parse(raw) else {
        let mut v = unreadable();
        v.auth = auth.map(|a| a.result.clone());
        return v;
    };
    let facts = message::facts(&msg, &rules.mime);
    judge(&facts, rules, followups, auth)
}

/// Whether the domain rule (reg. 3.3) lets this mail's From address through — the only case in
/// which its authentication matters, so the intake need not look anything up (or wait for DNS)
/// for the others. Reads the header block only.
pub fn sender_domain_allowed(raw: &[u8], rules: &RuleSet) -> bool {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|msg| message::from_address(&msg))
        .is_some_and(|from| rules.senders.allows(&from))
}

/// Judge a mail too large to download, from its header block and its size alone: it is refused
/// as `too_large` unless the sender or automatic-mail rules decide first.
pub fn evaluate_oversized(headers: &[u8], size: u64, rules: &RuleSet) -> Verdict {
    evaluate_oversized_authenticated(headers, size, rules, None)
}

/// [`evaluate_oversized`] with the sender authentication, as [`evaluate_authenticated`].
pub fn evaluate_oversized_authenticated(
    headers: &[u8],
    size: u64,
    rules: &RuleSet,
    auth: Option<&SenderAuth>,
) -> Verdict {
    let Some(msg) = mail_parser::MessageParser::default().parse_headers(headers) else {
        let mut v = unreadable();
        v.auth = auth.map(|a| a.result.clone());
        return v;
    };
    let mut facts = message::facts(&msg, &rules.mime);
    facts.body.clear();
    facts.parts.clear();
    let mut v = base_verdict(&facts, rules);
    // With on_fail = incomplete an unauthenticated oversized mail is still refused as too large.
    let mut unauthenticated = None;
    if let Some(v) = filter_or_ignore(&facts, rules, auth, &mut v, &mut unauthenticated) {
        return v;
    }
    v.decision = Decision::Reject;
    v.reasons.push(Reason::new(
        Code::TooLarge,
        format!(
            "Письмо занимает {}, а вложения одного обращения не должны превышать {} (п. 3.5 Регламента). \
             Сожмите скриншоты, упакуйте их в архив или разделите вложения.",
            human_size(size),
            human_size(rules.attachments.max_total_bytes)
        ),
    ));
    v
}

fn unreadable() -> Verdict {
    Verdict {
        decision: Decision::Filter,
        reasons: vec![Reason::new(
            Code::SenderDomain,
            "Не удалось прочитать заголовки письма и адрес отправителя.",
        )],
        warnings: Vec::new(),
        missing: Vec::new(),
        followup_of: None,
        sender: String::new(),
        subject: String::new(),
        message_id: None,
        priority: Priority::Normal,
        impact: None,
        fields: FormFields::default(),
        attachments: Vec::new(),
        auth: None,
    }
}

fn base_verdict(facts: &MailFacts<'_>, rules: &RuleSet) -> Verdict {
    Verdict {
        decision: Decision::Accept,
        reasons: Vec::new(),
        warnings: Vec::new(),
        missing: Vec::new(),
        followup_of: None,
        sender: facts.from.clone().unwrap_or_default(),
        subject: facts.subject.clone(),
        message_id: facts.message_id.clone(),
        priority: rules.priority.default,
        impact: None,
        fields: FormFields::default(),
        attachments: Vec::new(),
        auth: None,
    }
}

/// The first two groups: sender domain and sender authenticity (filter), then automatic mail
/// (ignore). With `auth.on_fail = "incomplete"` an unauthenticated sender is not filtered: its
/// reason is left in `unauthenticated` for the incomplete group.
fn filter_or_ignore(
    facts: &MailFacts<'_>,
    rules: &RuleSet,
    auth: Option<&SenderAuth>,
    v: &mut Verdict,
    unauthenticated: &mut Option<crate::verdict::Reason>,
) -> Option<Verdict> {
    v.auth = auth.map(|a| AuthResult {
        require: Some(a.policy.require),
        ..a.result.clone()
    });
    match &facts.from {
        None => {
            v.decision = Decision::Filter;
            v.reasons.push(Reason::new(
                Code::SenderDomain,
                "Не удалось прочитать адрес отправителя (поле From).",
            ));
            return Some(v.clone());
        }
        Some(addr) if !rules.senders.allows(addr) => {
            v.decision = Decision::Filter;
            v.reasons.push(Reason::new(
                Code::SenderDomain,
                format!(
                    "Адрес отправителя {addr} не принадлежит почтовому домену @sev.gov.ru (п. 3.3 Регламента)."
                ),
            ));
            return Some(v.clone());
        }
        Some(addr) => {
            if let Some(a) = auth {
                if let Some(reason) = sender_auth::judge(addr, &a.result, &a.policy) {
                    if let Some(r) = v.auth.as_mut() {
                        r.on_fail = Some(a.policy.on_fail);
                    }
                    if a.policy.on_fail == OnFail::Incomplete {
                        *unauthenticated = Some(reason);
                    } else {
                        v.decision = Decision::Filter;
                        v.reasons.push(reason);
                        return Some(v.clone());
                    }
                }
            }
        }
    }
    let automatic = automatic_reasons(facts, &rules.automatic);
    if !automatic.is_empty() {
        v.decision = Decision::Ignore;
        v.reasons = merge_by_code(automatic);
        return Some(v.clone());
    }
    None
}

fn judge(
    facts: &MailFacts<'_>,
    rules: &RuleSet,
    followups: bool,
    auth: Option<&SenderAuth>,
) -> Verdict {
    let mut v = base_verdict(facts, rules);
    let mut unauthenticated = None;
    if let Some(v) = filter_or_ignore(facts, rules, auth, &mut v, &mut unauthenticated) {
        return v;
    }

    // Attachments: classify each file once.
    let a_rules = &rules.attachments;
    let mut inspections: Vec<Inspection> = Vec::with_capacity(facts.parts.len());
    let mut total: u64 = 0;
    for p in &facts.parts {
        let mut insp = attach::inspect(&p.name, &p.content_type, &p.data, a_rules);
        // What a corrupt archive seems to list is noise: only "unreadable" is said about it.
        if insp
            .findings
            .iter()
            .any(|f| f.code == Code::ArchiveUnreadable)
        {
            insp.findings.retain(|f| f.code != Code::AttachmentType);
        }
        total = total.saturating_add(p.data.len() as u64);
        v.attachments.push(AttachmentInfo {
            name: p.name.clone(),
            kind: insp.kind,
            bytes: p.data.len() as u64,
            content_type: p.content_type.clone(),
            inline: p.inline,
            entries: insp.entries.clone(),
        });
        inspections.push(insp);
    }

    let parsed: ParsedForm = form::parse_form(&facts.body, &rules.form);
    v.fields = parsed.fields.clone();
    apply_priority(&parsed, rules, &mut v);

    let followup_of = rules
        .followup
        .ticket_in_subject(&facts.subject)
        .or_else(|| {
            facts
                .thread_ids
                .iter()
                .find_map(|id| rules.followup.ticket_in_message_id(id))
        })
        // An unauthenticated mail never joins a ticket: it could complete someone else's request.
        .filter(|&n| followups && n > 0 && unauthenticated.is_none());
    v.followup_of = followup_of;

    let mut findings: Vec<Reason> = inspections
        .iter()
        .flat_map(|i| i.findings.iter().cloned())
        .collect();
    if facts.truncated {
        v.warnings.push(Reason::new(
            Code::MimeLimit,
            format!(
                "Письмо содержит слишком много частей или вложенность глубже {} уровней; прочитана только часть.",
                rules.mime.max_depth
            ),
        ));
    }

    // Group 3: reject.
    let mut reject = Vec::new();
    if total > a_rules.max_total_bytes {
        reject.push(Reason::new(
            Code::TooLarge,
            format!(
                "Вложения занимают {}, а допускается не более {} в одном обращении (п. 3.5 Регламента). \
                 Сожмите скриншоты, упакуйте их в архив или разделите вложения.",
                human_size(total),
                human_size(a_rules.max_total_bytes)
            ),
        ));
    }
    take_code(&mut findings, Code::AttachmentDangerous, &mut reject);
    let has_required_field = rules
        .form
        .required()
        .iter()
        .chain(rules.form.required_one_of().iter().flatten())
        .any(|name| parsed.fields.get(name).is_some());
    if followup_of.is_none()
        && !inspections.is_empty()
        && inspections
            .iter()
            .all(|i| i.kind == AttachmentKind::Supplement)
        && !has_required_field
    {
        let names: Vec<String> = v
            .attachments
            .iter()
            .map(|a| format!("«{}»", a.name))
            .collect();
        reject.push(Reason::new(
            Code::SupplementOnly,
            format!(
                "Письмо содержит только {} без заполненной формы заявки. Документы Word и видео — лишь \
                 дополнение к заявке (п. 3.1 Регламента): опишите проблему в тексте письма по форме Приложения 1.",
                names.join(", ")
            ),
        ));
    }
    if !reject.is_empty() {
        v.decision = Decision::Reject;
        v.reasons = merge_by_code(reject);
        return v;
    }

    // Attachment problems of the incomplete group (also warnings on a follow-up).
    let mut attachment_problems = Vec::new();
    let images = inspections
        .iter()
        .filter(|i| i.kind == AttachmentKind::Image)
        .count();
    if images > a_rules.max_images {
        attachment_problems.push(Reason::new(
            Code::TooManyImages,
            format!(
                "К письму приложено {images} изображений, а без архива допускается не более {} \
                 (п. 3.5 Регламента). Упакуйте скриншоты в архив ZIP, 7Z или RAR и пришлите его.",
                a_rules.max_images
            ),
        ));
    }
    take_code(
        &mut findings,
        Code::AttachmentType,
        &mut attachment_problems,
    );
    take_code(
        &mut findings,
        Code::ArchiveUnreadable,
        &mut attachment_problems,
    );
    // What remains are warnings (extension_mismatch and any other notes).
    v.warnings.extend(findings);

    // Group 4: follow-up.
    if followup_of.is_some() {
        v.decision = Decision::Followup;
        v.warnings.extend(merge_by_code(attachment_problems));
        return v;
    }

    // Group 5: incomplete.
    let mut incomplete = Vec::new();
    incomplete.extend(unauthenticated);
    if facts.subject.trim().is_empty() {
        incomplete.push(Reason::new(
            Code::SubjectMissing,
            "Не указана тема письма. Заголовок заявки обязателен и должен кратко отражать суть проблемы (п. 3.4 Регламента).",
        ));
    }
    v.missing = form::missing_required(&parsed.fields, &rules.form);
    if !v.missing.is_empty() {
        let what: Vec<&str> = v.missing.iter().map(|m| rules.form.describe(m)).collect();
        incomplete.push(Reason::new(
            Code::FieldsMissing,
            format!(
                "В заявке не заполнено: {} (п. 3.4 и Приложение 1 Регламента).",
                what.join("; ")
            ),
        ));
    }
    incomplete.extend(attachment_problems);
    for name in form::missing_recommended(&parsed.fields, &rules.form) {
        v.warnings.push(Reason::new(
            Code::FieldRecommended,
            format!(
                "Рекомендуется указать: {} ({name}).",
                rules.form.describe(&name)
            ),
        ));
    }
    if incomplete.is_empty() {
        v.decision = Decision::Accept;
    } else {
        v.decision = Decision::Incomplete;
        v.reasons = merge_by_code(incomplete);
    }
    v
}

/// One reason per code: details of the same code are joined, so operators count each problem
/// once and the sender still reads every file or trigger it is about.
fn merge_by_code(reasons: Vec<Reason>) -> Vec<Reason> {
    let mut out: Vec<Reason> = Vec::with_capacity(reasons.len());
    for r in reasons {
        match out.iter_mut().find(|o| o.code == r.code) {
            Some(o) => {
                o.detail.push(' ');
                o.detail.push_str(&r.detail);
            }
            None => out.push(r),
        }
    }
    out
}

/// Move every finding with `code` from `from` into `to`.
fn take_code(from: &mut Vec<Reason>, code: Code, to: &mut Vec<Reason>) {
    let mut i = 0;
    while i < from.len() {
        if from[i].code == code {
            to.push(from.remove(i));
        } else {
            i += 1;
        }
    }
}

/// RFC 3834 and the usual robot markers. Each trigger found is one reason.
fn automatic_reasons(facts: &MailFacts<'_>, rules: &AutomaticRules) -> Vec<Reason> {
    let mut out = Vec::new();
    let mut add = |detail: String| out.push(Reason::new(Code::Automatic, detail));
    let first_token = |v: &str| {
        v.split([';', '(', ' '])
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    for (name, value) in &facts.headers {
        match name.as_str() {
            "auto-submitted" => {
                let t = first_token(value);
                if !rules.auto_submitted_allowed.contains(&t) {
                    add(format!("Автоматическое письмо (Auto-Submitted: {value})."));
                }
            }
            "precedence" if rules.precedence.contains(&first_token(value)) => {
                add(format!(
                    "Рассылка или массовое письмо (Precedence: {value})."
                ));
            }
            "x-auto-response-suppress" => {
                let hit = value
                    .split([',', ' '])
                    .map(|t| t.trim().to_ascii_lowercase())
                    .any(|t| rules.x_auto_response_suppress.contains(&t));
                if hit {
                    add(format!("Автоответ (X-Auto-Response-Suppress: {value})."));
                }
            }
            "return-path" if rules.null_return_path => {
                let v: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                if v == "<>" {
                    add("Пустой обратный адрес (Return-Path: <>): уведомление о доставке или автоответ.".into());
                }
            }
            n if rules.headers_present.iter().any(|h| h == n) => {
                add(format!("Автоматическое письмо (заголовок {name})."));
            }
            n if rules
                .header_prefixes
                .iter()
                .any(|p| n.starts_with(p.as_str())) =>
            {
                add(format!("Письмо из списка рассылки (заголовок {name})."));
            }
            _ => {}
        }
    }
    if let Some(addr) = &facts.from {
        let local = addr.rsplit_once('@').map(|(l, _)| l).unwrap_or(addr);
        let robot = rules.sender_locals.iter().any(|l| l == local)
            || rules
                .sender_local_prefixes
                .iter()
                .any(|p| local.starts_with(p.as_str()))
            || rules
                .sender_local_suffixes
                .iter()
                .any(|s| local.ends_with(s.as_str()));
        if robot {
            add(format!("Письмо от служебного адреса {addr}."));
        }
    }
    if let Some(rt) = &facts.report_type {
        if rules.report_types.contains(rt) {
            add(format!(
                "Уведомление о доставке или прочтении (multipart/report; report-type={rt})."
            ));
        }
    }
    // One reason per trigger, but the same trigger twice (two List-* headers) once.
    out.dedup_by(|a, b| a.detail == b.detail);
    out
}

/// Reg. 4.9–4.10: map the stated impact and priority, and lower a priority the impact forbids.
fn apply_priority(parsed: &ParsedForm, rules: &RuleSet, v: &mut Verdict) {
    let pr = &rules.priority;
    let impact: Option<Impact> = parsed
        .impact_raw
        .as_deref()
        .and_then(|s| pr.impact_by_name(s));
    let stated: Option<Priority> = parsed
        .priority_raw
        .as_deref()
        .and_then(|s| pr.priority_by_name(s));
    v.impact = impact;
    v.priority = match (impact, stated) {
        (None, None) => pr.default,
        (None, Some(p)) => p,
        (Some(i), None) => pr.allowed(i).first().copied().unwrap_or(pr.default),
        (Some(i), Some(p)) => {
            let allowed = pr.allowed(i);
            match allowed.first() {
                Some(&highest) if p.rank() < highest.rank() => {
                    v.warnings.push(Reason::new(
                        Code::PriorityLowered,
                        format!(
                            "Приоритет «{}» не соответствует влиянию «{}» и понижен до «{}» (п. 4.10 Регламента).",
                            p.russian(),
                            i.russian(),
                            highest.russian()
                        ),
                    ));
                    highest
                }
                // A stated priority lower than the impact allows is the sender's choice: kept.
                _ => p,
            }
        }
    };
}

/// "12,3 МБ" — sizes as a person reads them.
pub fn human_size(bytes: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if bytes >= 1024 * 1024 {
        let v = bytes as f64 / MIB;
        let s = if (v - v.round()).abs() < 0.05 {
            format!("{:.0}", v)
        } else {
            format!("{:.1}", v)
        };
        format!("{} МБ", s.replace('.', ","))
    } else if bytes >= 1024 {
        format!("{} КБ", bytes / 1024)
    } else {
        format!("{bytes} байт")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(10 * 1024 * 1024), "10 МБ");
        assert_eq!(human_size(12_900_000), "12,3 МБ");
        assert_eq!(human_size(2048), "2 КБ");
    }
}
