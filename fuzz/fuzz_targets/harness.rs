//! What the three targets share: how panics are told apart.
//!
//! The library catches panics on purpose in one place — the third-party archive readers run under
//! `catch_unwind`, and a panic there means "archive_unreadable" (src/verdict/attach.rs) — so libFuzzer's
//! own hook, which aborts on every panic, would report working code as a crash. Instead:
//!
//! - every panic is remembered (message, location, backtrace), and the first one at each
//!   location is logged as `mailintake-fuzz: panic (maybe caught) at FILE:LINE:COL: MESSAGE`,
//!   so caught panics show up in the fuzz log for review without stopping the run;
//! - a panic that gets out of the library is a crash: its full report is printed as
//!   `mailintake-fuzz: UNCAUGHT panic at …` with the backtrace, and the process aborts, which
//!   libFuzzer records as a crash artifact.
//!
//! With `FUZZ_STRICT_PANICS=1` every panic, caught or not, aborts at once (libFuzzer's default).

use std::backtrace::Backtrace;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Mutex;

thread_local! {
    static LAST: RefCell<Option<String>> = const { RefCell::new(None) };
}

static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn message(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Replace libFuzzer's abort-on-every-panic hook. Call once, from the target's `init`.
pub fn install_panic_hook() {
    let strict = std::env::var("FUZZ_STRICT_PANICS").is_ok_and(|v| !v.is_empty() && v != "0");
    drop(panic::take_hook());
    panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "(unknown location)".to_string());
        let message = message(info);
        let report = format!(
            "panic at {location}: {message}\n{}",
            Backtrace::force_capture()
        );
        if strict {
            eprintln!("mailintake-fuzz: STRICT {report}");
            std::process::abort();
        }
        let first = SEEN
            .lock()
            .map(|mut seen| seen.insert(location.clone()))
            .unwrap_or(false);
        if first {
            eprintln!("mailintake-fuzz: panic (maybe caught) at {location}: {message}");
        }
        LAST.with(|last| *last.borrow_mut() = Some(report));
    }));
}

/// Run one input; a panic that escapes `f` aborts the process (a crash for libFuzzer).
pub fn run<R>(f: impl FnOnce() -> R) {
    LAST.with(|last| last.borrow_mut().take());
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => drop(std::hint::black_box(r)),
        Err(_) => {
            let report = LAST
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| "panic (no report)".to_string());
            eprintln!("mailintake-fuzz: UNCAUGHT {report}");
            std::process::abort();
        }
    }
}
