//! Read-side commands over the store: `tickets`, `ticket show`, `ticket attachment`.
//! Texts for people use the Russian status names of reg. 4.8; JSON uses the codes.

use serde_json::json;

use crate::store::{local_time, Status, Store, TicketRow};
use crate::verdict::Priority;

fn priority_ru(p: &str) -> &str {
    Priority::parse(p).map(Priority::russian).unwrap_or(p)
}

fn ticket_json(t: &TicketRow) -> serde_json::Value {
    json!({
        "id": t.id,
        "status": t.status.as_str(),
        "status_name": t.status.russian(),
        "priority": t.priority,
        "impact": t.impact,
        "subject": t.subject,
        "sender": t.sender,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "arrived_at": t.arrived_at,
        "assignee": t.assignee,
        "accept_due": t.accept_due,
        "accepted_at": t.accepted_at,
        "fields": t.fields,
    })
}

/// `mailintake tickets`: one line per ticket.
pub fn list(store: &Store, status: Option<Status>, as_json: bool) -> Result<String, String> {
    let rows = store.tickets(status).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for t in &rows {
        if as_json {
            out.push_str(&ticket_json(t).to_string());
        } else {
            let due = t
                .accept_due
                .as_deref()
                .filter(|_| {
                    matches!(t.status, Status::New | Status::Feedback) && t.accepted_at.is_none()
                })
                .map(|d| format!("срок {}", local_time(d)))
                .unwrap_or_default();
            out.push_str(&format!(
                "#{:<5} {} {:<16} {:<10} {:<22} {:<24} {}",
                t.id,
                local_time(&t.arrived_at),
                t.status.russian(),
                priority_ru(&t.priority),
                due,
                t.sender,
                t.subject
            ));
        }
        out.push('\n');
    }
    Ok(out)
}

/// `mailintake ticket show ID`.
pub fn show(store: &Store, id: i64, as_json: bool) -> Result<String, String> {
    let t = store
        .ticket(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("заявка #{id} не найдена"))?;
    let corr = store.correspondence(id).map_err(|e| e.to_string())?;
    let atts = store.attachments(id).map_err(|e| e.to_string())?;
    let events = store.events(id).map_err(|e| e.to_string())?;
    let auth = sender_auth(store, id);
    if as_json {
        let mut v = ticket_json(&t);
        v["auth"] = json!(auth);
        v["correspondence"] = json!(corr);
        v["attachments"] = json!(atts);
        v["events"] = json!(events);
        return Ok(format!("{v}\n"));
    }
    let f = &t.fields;
    let val = |o: &Option<String>| o.clone().unwrap_or_else(|| "—".into());
    let mut s = format!(
        "Заявка #{}  [{}]  приоритет: {}{}\nТема: {}\nОт: {}\nПоступила: {}\n",
        t.id,
        t.status.russian(),
        priority_ru(&t.priority),
        t.impact
            .as_deref()
            .and_then(crate::verdict::Impact::parse)
            .map(|i| format!(", влияние: {}", i.russian()))
            .unwrap_or_default(),
        t.subject,
        t.sender,
        local_time(&t.arrived_at)
    );
    if let Some(a) = &auth {
        s.push_str(&format!("Подлинность отправителя: {}\n", a.summary()));
    }
    if let Some(d) = &t.accept_due {
        s.push_str(&format!(
            "Принять в работу до: {} (8 рабочих часов, п. 4.6)\n",
            local_time(d)
        ));
    }
    if let Some(a) = &t.assignee {
        s.push_str(&format!("Ответственный: {a}\n"));
    }
    s.push_str(&format!(
        "\nЗаявитель: {}; {}; {}; {}\nПользователь: {}; логин {}\nПациент: {}; № карты {}\n",
        val(&f.applicant.full_name),
        val(&f.applicant.position),
        val(&f.applicant.organization),
        val(&f.applicant.phone),
        val(&f.user.full_name),
        val(&f.user.login),
        val(&f.patient.name),
        val(&f.patient.card),
    ));
    s.push_str(&format!(
        "Последовательность действий:\n  {}\nОписание ошибки:\n  {}\n",
        val(&f.steps).replace('\n', "\n  "),
        val(&f.error_text).replace('\n', "\n  ")
    ));
    s.push_str("\nПереписка:\n");
    for c in &corr {
        let arrow = if c.direction == "in" { "←" } else { "→" };
        let state = match c.reply_state.as_deref() {
            Some("sent") => " (отправлено)",
            Some("pending") | Some("sending") => " (в очереди)",
            Some("failed") => " (не доставлено)",
            Some("suppressed") => " (не отправлено: лимит)",
            _ => "",
        };
        s.push_str(&format!(
            "  {} {} {}{}\n",
            local_time(&c.at),
            arrow,
            c.summary,
            state
        ));
    }
    s.push_str("\nВложения:\n");
    if atts.is_empty() {
        s.push_str("  нет\n");
    }
    for a in &atts {
        s.push_str(&format!(
            "  {} ({}, {} байт, {})\n",
            a.name, a.kind, a.bytes, a.content_type
        ));
    }
    s.push_str("\nИстория:\n");
    for e in &events {
        s.push_str(&format!(
            "  {} {} {}: {}\n",
            local_time(&e.at),
            e.actor,
            e.kind,
            e.detail
        ));
    }
    Ok(s)
}

/// The sender authentication of the mail that opened the ticket (issue 9); `None` when it
/// was not checked (`auth.mode = "off"`).
pub fn sender_auth(store: &Store, id: i64) -> Option<crate::verdict::auth::AuthResult> {
    let json: Option<String> = store
        .conn()
        .query_row(
            "SELECT json_extract(m.verdict, '$.auth') FROM tickets t JOIN mails m ON m.id = t.first_mail_id
             WHERE t.id = ?1",
            [id],
            |r| r.get(0),
        )
        .ok()
        .flatten();
    serde_json::from_str(json.as_deref()?).ok()
}

/// `mailintake ticket attachment ID NAME`: the bytes, decoded from the stored raw mail.
pub fn attachment(store: &Store, id: i64, name: &str) -> Result<Vec<u8>, String> {
    store
        .ticket(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("заявка #{id} не найдена"))?;
    let atts = store.attachments(id).map_err(|e| e.to_string())?;
    let found = atts
        .iter()
        .find(|a| a.name == name)
        .or_else(|| atts.iter().find(|a| a.name.eq_ignore_ascii_case(name)))
        .ok_or_else(|| {
            let names: Vec<&str> = atts.iter().map(|a| a.name.as_str()).collect();
            format!(
                "у заявки #{id} нет вложения «{name}»; есть: {}",
                if names.is_empty() {
                    "—".to_string()
                } else {
                    names.join(", ")
                }
            )
        })?;
    if let Some(at) =
        crate::store::retention::raw_pruned_at(store, found.mail_id).map_err(|e| e.to_string())?
    {
        return Err(format!(
            "вложение «{}» удалено вместе с исходным письмом по сроку хранения (store.keep_raw_days) {}",
            found.name,
            crate::store::local_time(&at)
        ));
    }
    let raw = store
        .raw_mail(found.mail_id)
        .map_err(|e| e.to_string())?
        .ok_or("исходное письмо не найдено")?;
    let msg = crate::verdict::message::parse(&raw).ok_or("исходное письмо не читается")?;
    // The same walk as at intake, so positions match what was recorded.
    let facts =
        crate::verdict::message::facts(&msg, &crate::verdict::message::MimeLimits::default());
    let part = facts
        .parts
        .get(found.position as usize)
        .filter(|p| p.name == found.name)
        .or_else(|| facts.parts.iter().find(|p| p.name == found.name))
        .ok_or("вложение не найдено в исходном письме")?;
    Ok(part.data.to_vec())
}
