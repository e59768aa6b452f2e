//! The console's pages and actions. Each handler checks the session (the [`Authed`] extractor),
//! the CSRF token of a form, runs one desk function on the store in a blocking task, and renders
//! a template or redirects with a message. No SQL here.

use std::net::SocketAddr;
use std::sync::Arc;

use askama::Template;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use jiff::Timestamp;
use serde::Deserialize;

use crate::desk::console::{self, AssigneeFilter, QueueQuery, StatusFilter};
use crate::desk::quarantine::{self, ReleaseOutcome};
use crate::desk::{stats, users, workflow};
use crate::store::{local_time, Status};
use crate::verdict::Priority;
use crate::web::auth::{self, Authed, LOGIN_COOKIE, SESSION_COOKIE};
use crate::web::views::*;
use crate::web::{blocking, Console};

type St = State<Arc<Console>>;

/// Tickets on one queue page.
pub const PER_PAGE: u32 = 50;
/// Quarantined mails listed at most (the newest).
const QUARANTINE_SHOWN: usize = 500;

fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "ошибка страницы").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    title: String,
    message: String,
}

fn error_page(a: &Authed, code: StatusCode, title: &str, message: &str) -> Response {
    let page = ErrorPage {
        layout: Layout::new(a, None, ""),
        title: title.into(),
        message: message.into(),
    };
    (code, render(&page)).into_response()
}

fn server_error(a: &Authed, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "console request failed");
    error_page(
        a,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Ошибка",
        "Не удалось прочитать хранилище заявок. Повторите позже; если ошибка повторяется, сообщите администратору.",
    )
}

fn csrf_refused(a: &Authed) -> Response {
    error_page(
        a,
        StatusCode::FORBIDDEN,
        "Действие не выполнено",
        "Форма пришла без действительного токена защиты (CSRF). Обновите страницу и повторите действие.",
    )
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub async fn root(_a: Authed) -> Response {
    see_other("/queue")
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("console.css"),
    )
        .into_response()
}

// ---- login ----------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

fn login_page(
    c: &Console,
    code: StatusCode,
    next: &str,
    username: &str,
    error: Option<String>,
) -> Response {
    let token = auth::random_token();
    let page = LoginPage {
        csrf: token.clone(),
        next: auth::safe_next(next).unwrap_or_default(),
        username: username.into(),
        error,
    };
    let cookie = auth::set_cookie(LOGIN_COOKIE, &token, Some(3600), c.secure_cookies);
    (code, [(header::SET_COOKIE, cookie)], render(&page)).into_response()
}

pub async fn login_form(State(c): St, Query(q): Query<LoginQuery>) -> Response {
    login_page(&c, StatusCode::OK, &q.next, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

pub async fn login(
    State(c): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let expected = auth::cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !auth::same_token(&expected, &f.csrf) {
        return login_page(
            &c,
            StatusCode::FORBIDDEN,
            &f.next,
            &f.username,
            Some("Форма входа устарела. Введите имя и пароль ещё раз.".into()),
        );
    }
    let addr = peer.ip().to_string();
    if let Some(wait) = c.limiter.locked(&f.username, &addr) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        return login_page(
            &c,
            StatusCode::TOO_MANY_REQUESTS,
            &f.next,
            &f.username,
            Some(format!(
                "Слишком много неудачных попыток входа. Повторите через {minutes} мин."
            )),
        );
    }
    let name = f.username.clone();
    let found = match blocking(&c, move |store, _| users::lookup(store, &name)).await {
        // argon2 takes tens of milliseconds: not while holding the store.
        Ok(Ok(login)) => {
            let password = f.password.clone();
            tokio::task::spawn_blocking(move || login.check(&password))
                .await
                .map(Ok)
                .map_err(|e| e.to_string())
        }
        Ok(Err(e)) => Ok(Err(e)),
        Err(e) => Err(e),
    };
    match found {
        Ok(Ok(Some(user))) => {
            c.limiter.succeeded(&f.username);
            tracing::info!(user = %user.name, "console login");
            let token = c.sessions.create(&user.name, user.role);
            let to = auth::safe_next(&f.next).unwrap_or_else(|| "/queue".into());
            let mut r = see_other(&to);
            let h = r.headers_mut();
            for v in [
                auth::set_cookie(SESSION_COOKIE, &token, None, c.secure_cookies),
                auth::set_cookie(LOGIN_COOKIE, "", Some(0), c.secure_cookies),
            ] {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Ok(Ok(None)) => {
            let delay = c.limiter.failed(&f.username, &addr);
            tracing::warn!(peer = %addr, "console login refused: wrong name or password");
            tokio::time::sleep(delay).await;
            login_page(
                &c,
                StatusCode::UNAUTHORIZED,
                &f.next,
                &f.username,
                Some("Неверное имя пользователя или пароль.".into()),
            )
        }
        Ok(Err(e)) | Err(e) => {
            tracing::error!(error = %e, "login check failed");
            login_page(
                &c,
                StatusCode::INTERNAL_SERVER_ERROR,
                &f.next,
                &f.username,
                Some("Не удалось проверить пароль: хранилище недоступно.".into()),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(State(c): St, a: Authed, Form(f): Form<CsrfForm>) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    c.sessions.remove(&a.token);
    let mut r = see_other("/login");
    if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(
        SESSION_COOKIE,
        "",
        Some(0),
        c.secure_cookies,
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---- queue ----------------------------------------------------------------------------------

#[derive(Deserialize, Default, Clone)]
pub struct QueueParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    priority: String,
    /// Empty: anyone; `-`: nobody; else the name.
    #[serde(default)]
    assignee: String,
    /// From 1.
    #[serde(default)]
    page: Option<u32>,
}

fn queue_link(p: &QueueParams, page: u32) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (k, v) in [
        ("q", &p.q),
        ("status", &p.status),
        ("priority", &p.priority),
        ("assignee", &p.assignee),
    ] {
        if !v.is_empty() {
            pairs.push((k, v.clone()));
        }
    }
    pairs.push(("page", page.to_string()));
    format!(
        "/queue?{}",
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    )
}

pub async fn queue(State(c): St, a: Authed, Query(p): Query<QueueParams>) -> Response {
    // A search looks through every status unless one is chosen: a ticket number or a sender is
    // usually asked about after the ticket was closed.
    let status = match (p.status.trim(), p.q.trim()) {
        ("", q) if !q.is_empty() => StatusFilter::All,
        (s, _) => StatusFilter::parse(s).unwrap_or_default(),
    };
    let priority = Priority::parse(p.priority.trim());
    let assignee = match p.assignee.trim() {
        "" => AssigneeFilter::Anyone,
        "-" => AssigneeFilter::Nobody,
        n => AssigneeFilter::Named(n.to_string()),
    };
    let page = p.page.unwrap_or(1).clamp(1, 1_000_000);
    let query = QueueQuery {
        status,
        priority,
        assignee,
        search: Some(p.q.clone()),
        page: page - 1,
        per_page: PER_PAGE,
    };
    let mask = c.daemon.cfg.digest.mask_patient;
    let result = blocking(&c, move |store, _| {
        let people = users::list(store)?;
        console::queue(store, &query, mask).map(|q| (q, people))
    })
    .await;
    let (found, people) = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) | Err(e) => return server_error(&a, e),
    };
    let now = Timestamp::now();
    let pages = (found.total.div_ceil(u64::from(PER_PAGE)).max(1)).min(u64::from(u32::MAX)) as u32;
    let lines = QueuePageView::lines(&found, now);
    let mut statuses = vec![
        Choice::new("open", "Открытые", status.as_str()),
        Choice::new("all", "Все статусы", status.as_str()),
    ];
    statuses.extend(
        Status::ALL
            .iter()
            .map(|s| Choice::new(s.as_str(), s.russian(), status.as_str())),
    );
    let current_priority = priority.map(|p| p.as_str()).unwrap_or("");
    let mut priorities = vec![Choice::new("", "Любой приоритет", current_priority)];
    priorities.extend(
        Priority::ALL
            .iter()
            .map(|x| Choice::new(x.as_str(), x.russian(), current_priority)),
    );
    let current_assignee = p.assignee.trim().to_string();
    let mut assignees = vec![
        Choice::new("", "Любой ответственный", &current_assignee),
        Choice::new("-", "Не назначена", &current_assignee),
    ];
    let mut names: Vec<String> = people.into_iter().map(|u| u.name).collect();
    if !current_assignee.is_empty() && current_assignee != "-" && !names.contains(&current_assignee)
    {
        names.push(current_assignee.clone());
    }
    assignees.extend(names.iter().map(|n| Choice::new(n, n, &current_assignee)));
    let view = QueuePageView {
        layout: Layout::new(&a, c.sessions.take_flash(&a.token), "queue"),
        overdue_here: lines.iter().filter(|l| l.due_class == "overdue").count(),
        lines,
        total: found.total,
        awaiting: found.awaiting,
        page,
        pages,
        search: p.q.clone(),
        statuses,
        priorities,
        assignees,
        prev_link: (page > 1).then(|| queue_link(&p, page - 1)),
        next_link: (page < pages).then(|| queue_link(&p, page + 1)),
    };
    render(&view)
}

// ---- one ticket -----------------------------------------------------------------------------

pub async fn ticket(State(c): St, a: Authed, Path(id): Path<i64>) -> Response {
    let result = blocking(&c, move |store, daemon| {
        let loaded = daemon.loaded.read().unwrap_or_else(|e| e.into_inner());
        let view = console::ticket_view(store, id, &loaded.rules.form)?;
        let people = users::list(store)?;
        Ok::<_, String>((view, people))
    })
    .await;
    match result {
        Ok(Ok((Some(v), people))) => {
            let names = people.into_iter().map(|u| u.name).collect();
            let layout = Layout::new(&a, c.sessions.take_flash(&a.token), "queue");
            render(&TicketPageView::new(layout, &v, Timestamp::now(), names))
        }
        Ok(Ok((None, _))) => error_page(
            &a,
            StatusCode::NOT_FOUND,
            "Нет такой заявки",
            &format!("Заявка #{id} не найдена."),
        ),
        Ok(Err(e)) | Err(e) => server_error(&a, e),
    }
}

/// A name safe inside a quoted `filename=` (the exact name goes in `filename*`).
fn ascii_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.trim_matches(['_', '.']).is_empty() {
        "attachment".into()
    } else {
        s
    }
}

/// RFC 8187 `attr-char` percent-encoding for `filename*=UTF-8''…`.
fn rfc8187(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The image type by the file's first bytes: only raster formats browsers show as images (never
/// SVG, which can carry script), whatever the mail claimed.
pub fn sniff_image(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() > 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else if data.starts_with(b"BM") {
        Some("image/bmp")
    } else {
        None
    }
}

async fn load_file(
    c: &Console,
    a: &Authed,
    id: i64,
    n: usize,
) -> Result<(crate::store::AttachmentRow, Vec<u8>), Response> {
    match blocking(c, move |store, _| console::attachment_at(store, id, n)).await {
        Ok(Ok(Some(v))) => Ok(v),
        Ok(Ok(None)) => Err(error_page(
            a,
            StatusCode::NOT_FOUND,
            "Нет такого вложения",
            &format!("У заявки #{id} нет этого вложения, или исходное письмо не читается."),
        )),
        Ok(Err(e)) | Err(e) => Err(server_error(a, e)),
    }
}

/// Every attachment is a download: `Content-Disposition: attachment`, a type no browser renders
/// (`application/octet-stream`), `nosniff`, and a sandboxing CSP in case something still opens it.
pub async fn download(State(c): St, a: Authed, Path((id, n)): Path<(i64, usize)>) -> Response {
    let (row, data) = match load_file(&c, &a, id, n).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let disposition = format!(
        "attachment; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_name(&row.name),
        rfc8187(&row.name)
    );
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        data,
    )
        .into_response()
}

/// A screenshot shown inline (thumbnails): only when its bytes are a raster image.
pub async fn image(State(c): St, a: Authed, Path((id, n)): Path<(i64, usize)>) -> Response {
    let (row, data) = match load_file(&c, &a, id, n).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some(ct) = sniff_image(&data) else {
        return error_page(
            &a,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Не изображение",
            &format!("«{}» — не изображение; скачайте файл.", row.name),
        );
    };
    (
        [
            (header::CONTENT_TYPE, ct.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{}\"", ascii_name(&row.name)),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; sandbox".to_string(),
            ),
            (header::CACHE_CONTROL, "private, max-age=600".to_string()),
        ],
        data,
    )
        .into_response()
}

// ---- ticket actions -------------------------------------------------------------------------

/// The workflow's refusals were written for the CLI; in the browser the comment is a field.
fn for_browser(msg: &str) -> String {
    msg.replace("нужен --comment", "нужен комментарий")
        .replace("«ticket assign»", "«Назначить»")
}

async fn after_action(
    c: &Console,
    a: &Authed,
    id: i64,
    result: Result<Result<String, workflow::WorkflowError>, String>,
) -> Response {
    match result {
        Ok(Ok(msg)) => {
            c.daemon.outbox_ready.notify_one();
            c.sessions.set_flash(&a.token, true, msg);
        }
        Ok(Err(workflow::WorkflowError::Store(e))) | Err(e) => {
            tracing::error!(error = %e, ticket = id, "console action failed");
            c.sessions.set_flash(
                &a.token,
                false,
                "Изменение не сохранено: ошибка хранилища. Повторите позже.".into(),
            );
        }
        Ok(Err(e)) => c
            .sessions
            .set_flash(&a.token, false, for_browser(&e.to_string())),
    }
    see_other(&format!("/tickets/{id}"))
}

#[derive(Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

pub async fn assign(
    State(c): St,
    a: Authed,
    Path(id): Path<i64>,
    Form(f): Form<AssignForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    let actor = a.user.clone();
    let r = blocking(&c, move |store, _| {
        workflow::assign(store, id, &f.to, &actor, Timestamp::now())
    })
    .await;
    after_action(&c, &a, id, r).await
}

#[derive(Deserialize)]
pub struct StatusForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    comment: String,
}

pub async fn set_status(
    State(c): St,
    a: Authed,
    Path(id): Path<i64>,
    Form(f): Form<StatusForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    let actor = a.user.clone();
    let r = blocking(&c, move |store, daemon| {
        let to = workflow::parse_status(&f.status).map_err(workflow::WorkflowError::Refused)?;
        let loaded = daemon.loaded.read().unwrap_or_else(|e| e.into_inner());
        let mut notify =
            |r: workflow::NotifyRequest<'_>| loaded.render_notification(&daemon.cfg, &r);
        let comment = Some(f.comment.trim()).filter(|s| !s.is_empty());
        workflow::set_status(
            store,
            id,
            to,
            comment,
            &actor,
            Timestamp::now(),
            &mut notify,
        )
    })
    .await;
    after_action(&c, &a, id, r).await
}

#[derive(Deserialize)]
pub struct PriorityForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    impact: String,
}

pub async fn set_priority(
    State(c): St,
    a: Authed,
    Path(id): Path<i64>,
    Form(f): Form<PriorityForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    let actor = a.user.clone();
    let r = blocking(&c, move |store, daemon| {
        let loaded = daemon.loaded.read().unwrap_or_else(|e| e.into_inner());
        let pr = &loaded.rules.priority;
        let p =
            workflow::parse_priority(pr, &f.priority).map_err(workflow::WorkflowError::Refused)?;
        let i = Some(f.impact.trim())
            .filter(|s| !s.is_empty())
            .map(|s| workflow::parse_impact(pr, s))
            .transpose()
            .map_err(workflow::WorkflowError::Refused)?;
        workflow::set_priority(store, id, p, i, pr, &actor, Timestamp::now())
    })
    .await;
    after_action(&c, &a, id, r).await
}

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// «Ответить заявителю»: a letter to the applicant, the status unchanged.
pub async fn reply(
    State(c): St,
    a: Authed,
    Path(id): Path<i64>,
    Form(f): Form<ReplyForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    let actor = a.user.clone();
    let r = blocking(&c, move |store, daemon| {
        let loaded = daemon.loaded.read().unwrap_or_else(|e| e.into_inner());
        let mut notify =
            |r: workflow::NotifyRequest<'_>| loaded.render_notification(&daemon.cfg, &r);
        workflow::reply(store, id, &f.text, &actor, Timestamp::now(), &mut notify)
    })
    .await;
    after_action(&c, &a, id, r).await
}

// ---- quarantine -----------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct QuarantineParams {
    #[serde(default)]
    reason: String,
}

pub async fn quarantine_list(
    State(c): St,
    a: Authed,
    Query(p): Query<QuarantineParams>,
) -> Response {
    let reason = Some(p.reason.trim().to_string()).filter(|s| !s.is_empty());
    let r = reason.clone();
    let found = blocking(&c, move |store, _| quarantine::entries(store, r.as_deref())).await;
    let entries = match found {
        Ok(Ok(e)) => e,
        Ok(Err(e)) if reason.is_some() => {
            return error_page(&a, StatusCode::BAD_REQUEST, "Неизвестная причина", &e)
        }
        Ok(Err(e)) | Err(e) => return server_error(&a, e),
    };
    let total = entries.len();
    let lines: Vec<QuarantineLine> = entries
        .iter()
        .rev()
        .take(QUARANTINE_SHOWN)
        .map(|m| QuarantineLine {
            id: m.id,
            arrived: local_time(&m.arrived_at),
            decision: m.decision.clone(),
            outcome: m.outcome.clone(),
            reasons: m.reasons.join(", "),
            sender: m.sender.clone(),
            subject: m.subject.clone(),
            size: size_label(m.size),
        })
        .collect();
    let current = reason.unwrap_or_default();
    let mut reasons = vec![Choice::new("", "Все причины", &current)];
    reasons.extend(
        quarantine::REFUSAL_CODES
            .iter()
            .map(|c| Choice::new(c.as_str(), c.as_str(), &current)),
    );
    render(&QuarantinePageView {
        layout: Layout::new(&a, c.sessions.take_flash(&a.token), "quarantine"),
        shown: lines.len(),
        lines,
        reasons,
        total,
    })
}

pub async fn quarantine_mail(State(c): St, a: Authed, Path(id): Path<i64>) -> Response {
    let found = blocking(&c, move |store, _| quarantine::show(store, id, true)).await;
    let v: serde_json::Value = match found {
        Ok(Ok(text)) => serde_json::from_str(&text).unwrap_or_default(),
        Ok(Err(e)) => return error_page(&a, StatusCode::NOT_FOUND, "Нет такого письма", &e),
        Err(e) => return server_error(&a, e),
    };
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let view = QuarantineMailView {
        layout: Layout::new(&a, c.sessions.take_flash(&a.token), "quarantine"),
        id,
        in_quarantine: v["in_quarantine"].as_bool().unwrap_or(false),
        outcome: s("outcome"),
        decision: s("decision"),
        reasons: v["reasons"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| ReasonLine {
                        code: r["code"].as_str().unwrap_or("").into(),
                        detail: r["detail"].as_str().unwrap_or("").into(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        sender: s("sender"),
        subject: s("subject"),
        message_id: s("message_id"),
        arrived: local_time(&s("arrived_at")),
        processed: local_time(&s("processed_at")),
        size: size_label(v["size"].as_i64().unwrap_or(0)),
        headers_only: v["headers_only"].as_bool().unwrap_or(false),
        ticket_id: v["ticket_id"].as_i64(),
        headers: v["headers"]
            .as_array()
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h["name"].as_str().unwrap_or("").to_string(),
                            h["value"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        verdict: serde_json::to_string_pretty(&v["verdict"]).unwrap_or_default(),
    };
    render(&view)
}

#[derive(Deserialize)]
pub struct ReleaseForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    force: String,
}

pub async fn quarantine_release(
    State(c): St,
    a: Authed,
    Path(id): Path<i64>,
    Form(f): Form<ReleaseForm>,
) -> Response {
    if !a.csrf_ok(&f.csrf) {
        return csrf_refused(&a);
    }
    if !a.is_admin() {
        return error_page(
            &a,
            StatusCode::FORBIDDEN,
            "Нет прав",
            "Выпускать письма из карантина может только администратор.",
        );
    }
    let force = !f.force.is_empty();
    let actor = a.user.clone();
    let r = blocking(&c, move |store, daemon| {
        daemon.release(store, id, force, &actor, Timestamp::now())
    })
    .await;
    match r {
        Ok(Ok(outcome)) => {
            let ok = !matches!(outcome, ReleaseOutcome::StillRefused { .. });
            if ok {
                c.daemon.outbox_ready.notify_one();
                tracing::info!(mail = id, user = %a.user, force, "released from quarantine");
            }
            let text = quarantine::render_release(id, &outcome);
            c.sessions
                .set_flash(&a.token, ok, text.trim_end().to_string());
        }
        Ok(Err(e)) => c.sessions.set_flash(&a.token, false, e),
        Err(e) => return server_error(&a, e),
    }
    see_other(&format!("/quarantine/{id}"))
}

// ---- statistics -----------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct StatsParams {
    #[serde(default)]
    since: String,
}

pub async fn stats_page(State(c): St, a: Authed, Query(p): Query<StatsParams>) -> Response {
    let period = match p.since.as_str() {
        "1" | "7" | "30" | "365" => p.since.clone(),
        _ => "all".to_string(),
    };
    let days: Option<i64> = period.parse().ok();
    let now = Timestamp::now();
    let since = days.and_then(|d| {
        now.checked_sub(jiff::SignedDuration::from_hours(24 * d))
            .ok()
    });
    let found = blocking(&c, move |store, daemon| {
        let loaded = daemon.loaded.read().unwrap_or_else(|e| e.into_inner());
        stats::stats(store, &loaded.calendar, since, now)
    })
    .await;
    let s = match found {
        Ok(Ok(s)) => s,
        Ok(Err(e)) | Err(e) => return server_error(&a, e),
    };
    let decisions = bars(
        &s.mails_by_decision
            .iter()
            .map(|(k, v)| (k.clone(), *v, k.clone()))
            .collect::<Vec<_>>(),
    );
    let statuses = bars(
        &Status::ALL
            .iter()
            .map(|st| {
                (
                    st.russian().to_string(),
                    s.tickets_by_status.get(st.as_str()).copied().unwrap_or(0),
                    st.as_str().to_string(),
                )
            })
            .collect::<Vec<_>>(),
    );
    let periods = [
        ("1", "За сутки"),
        ("7", "За 7 дней"),
        ("30", "За 30 дней"),
        ("365", "За год"),
        ("all", "За всё время"),
    ]
    .iter()
    .map(|(v, l)| Choice::new(v, l, &period))
    .collect();
    render(&StatsPageView {
        layout: Layout::new(&a, c.sessions.take_flash(&a.token), "stats"),
        periods,
        mails_total: s.mails_total,
        tickets_total: s.tickets_total,
        chart_height: (decisions.len() as u32 * 22).max(22),
        status_chart_height: (statuses.len() as u32 * 22).max(22),
        decisions,
        statuses,
        reasons: s
            .mails_by_reason
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        met: s.deadlines_met,
        missed: s.deadlines_missed,
        pending_overdue: s.deadlines_pending_overdue,
        accepted: s.accepted,
        median_working: minutes_label(s.median_accept_working_minutes),
        median_wall: minutes_label(s.median_accept_minutes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_shown_inline() {
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff_image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(sniff_image(b"GIF89a...."), Some("image/gif"));
        assert_eq!(sniff_image(b"<svg onload=alert(1)>"), None);
        assert_eq!(sniff_image(b"<html><script>"), None);
        assert_eq!(sniff_image(b""), None);
    }

    #[test]
    fn download_names_cannot_break_the_header() {
        assert_eq!(ascii_name("отчёт \"1\";.html"), "_______1__.html");
        assert_eq!(ascii_name("скриншот"), "attachment");
        assert_eq!(rfc8187("a b\"ё"), "a%20b%22%D1%91");
    }

    #[test]
    fn browser_wording_of_cli_refusals() {
        assert_eq!(
            for_browser("Для статуса «Решена» нужен --comment: что сделано"),
            "Для статуса «Решена» нужен комментарий: что сделано"
        );
    }
}
