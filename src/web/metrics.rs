//! `/healthz` (is the store reachable, when did the daemon last read the mailbox) and `/metrics`
//! in the Prometheus text format. Both give counts and times only — no names, addresses or
//! subjects — so they answer without a session, for monitoring.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::desk::console::{self, Counters};
use crate::web::{blocking, Console};

/// Seconds since the Unix epoch of an RFC 3339 instant.
fn epoch_seconds(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// Prometheus label values: `\`, `"` and newlines escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn exposition(c: &Counters) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP mailintake_mails_total Mails recorded, by the engine's decision."
    );
    let _ = writeln!(out, "# TYPE mailintake_mails_total counter");
    for (d, n) in &c.mails_by_decision {
        let _ = writeln!(
            out,
            "mailintake_mails_total{{decision=\"{}\"}} {n}",
            label(d)
        );
    }
    let _ = writeln!(out, "# HELP mailintake_tickets Tickets by status.");
    let _ = writeln!(out, "# TYPE mailintake_tickets gauge");
    for (s, n) in &c.tickets_by_status {
        let _ = writeln!(out, "mailintake_tickets{{status=\"{}\"}} {n}", s.as_str());
    }
    let _ = writeln!(
        out,
        "# HELP mailintake_outbox_pending Replies waiting to be sent."
    );
    let _ = writeln!(out, "# TYPE mailintake_outbox_pending gauge");
    let _ = writeln!(out, "mailintake_outbox_pending {}", c.outbox_pending);
    let _ = writeln!(
        out,
        "# HELP mailintake_reply_failures Replies given up on (not delivered)."
    );
    let _ = writeln!(out, "# TYPE mailintake_reply_failures gauge");
    let _ = writeln!(out, "mailintake_reply_failures {}", c.outbox_failed);
    let _ = writeln!(out, "# HELP mailintake_imap_last_pass_seconds End of the last successful IMAP pass, Unix time (0: none yet).");
    let _ = writeln!(out, "# TYPE mailintake_imap_last_pass_seconds gauge");
    let _ = writeln!(
        out,
        "mailintake_imap_last_pass_seconds {}",
        c.imap_last_pass
            .as_deref()
            .and_then(epoch_seconds)
            .unwrap_or(0)
    );
    out
}

pub async fn metrics(State(c): State<Arc<Console>>) -> Response {
    match blocking(&c, |store, _| console::counters(store)).await {
        Ok(Ok(counters)) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            exposition(&counters),
        )
            .into_response(),
        Ok(Err(e)) | Err(e) => {
            tracing::error!(error = %e, "metrics failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

pub async fn healthz(State(c): State<Arc<Console>>) -> Response {
    let found = blocking(&c, |store, _| {
        (
            console::store_reachable(store),
            store.meta(console::IMAP_LAST_PASS).ok().flatten(),
        )
    })
    .await;
    let (ok, last) = found.unwrap_or((false, None));
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "error" },
        "store": ok,
        "imap_last_pass": last,
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}
