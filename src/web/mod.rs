//! The operators' web console: the queue, a ticket, its actions, the quarantine and statistics
//! in a browser, over the same store and the same desk functions as the CLI (no SQL here).
//!
//! - [`auth`]: sessions, CSRF tokens, the login limiter.
//! - [`pages`]: the pages and actions (axum handlers).
//! - [`views`]: the askama templates (`src/web/templates/`) and what they show.
//! - [`metrics`]: `/healthz` and `/metrics`.
//!
//! Served by `mailintake web`, or by `mailintake run` when `[web] listen` is set. The store is one
//! SQLite connection behind a mutex, used from blocking tasks: the console's queries are short
//! (indexed pages), and the daemon writes through its own connections.

pub mod auth;
pub mod metrics;
pub mod pages;
pub mod views;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::watch;

use crate::daemon::Daemon;
use crate::store::Store;

/// The console's shared state.
pub struct Console {
    pub daemon: Arc<Daemon>,
    store: Arc<Mutex<Store>>,
    pub sessions: auth::Sessions,
    pub limiter: auth::LoginLimiter,
    pub secure_cookies: bool,
    pub session_ttl: Duration,
}

impl Console {
    pub fn new(daemon: Arc<Daemon>) -> Result<Console, String> {
        let store = daemon.open_store()?;
        let web = &daemon.cfg.web;
        Ok(Console {
            secure_cookies: web.secure_cookies,
            session_ttl: Duration::from_secs(web.session_hours.unwrap_or(10).max(1) * 3600),
            daemon,
            store: Arc::new(Mutex::new(store)),
            sessions: Default::default(),
            limiter: Default::default(),
        })
    }
}

/// Runs `f` on the store in a blocking task (SQLite and argon2 would stall the async workers).
pub async fn blocking<T: Send + 'static>(
    c: &Console,
    f: impl FnOnce(&mut Store, &Daemon) -> T + Send + 'static,
) -> Result<T, String> {
    let store = c.store.clone();
    let daemon = c.daemon.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut store, &daemon)
    })
    .await
    .map_err(|e| format!("console task failed: {e}"))
}

/// Headers on every answer: no framing, no sniffing, no scripts at all, no caching of pages with
/// patient data. A handler's own CSP (attachments) or cache policy is kept.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    let defaults = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in defaults {
        if !h.contains_key(&name) {
            h.insert(name, HeaderValue::from_static(value));
        }
    }
    r
}

pub fn router(state: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::root))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/queue", get(pages::queue))
        .route("/tickets/{id}", get(pages::ticket))
        .route("/tickets/{id}/files/{n}", get(pages::download))
        .route("/tickets/{id}/files/{n}/image", get(pages::image))
        .route("/tickets/{id}/assign", post(pages::assign))
        .route("/tickets/{id}/status", post(pages::set_status))
        .route("/tickets/{id}/priority", post(pages::set_priority))
        .route("/tickets/{id}/reply", post(pages::reply))
        .route("/quarantine", get(pages::quarantine_list))
        .route("/quarantine/{id}", get(pages::quarantine_mail))
        .route("/quarantine/{id}/release", post(pages::quarantine_release))
        .route("/stats", get(pages::stats_page))
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/static/console.css", get(pages::stylesheet))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serves the console on `listen` until `shutdown` turns true.
pub async fn serve(
    daemon: Arc<Daemon>,
    listen: &str,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    let console = Arc::new(Console::new(daemon)?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("web console: cannot listen on {listen}: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("web console: {e}"))?;
    tracing::info!(url = %format!("http://{addr}/"), "web console");
    axum::serve(
        listener,
        router(console).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        while !*shutdown.borrow() {
            if shutdown.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .map_err(|e| format!("web console: {e}"))
}
