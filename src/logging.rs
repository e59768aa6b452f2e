//! Where and how the daemon logs: plain text (colours only on a terminal), one JSON object a
//! line, or journald's native fields.
//!
//! The format comes from `MAILINTAKE_LOG_FORMAT`, else `[log] format`; `auto` (the default) picks
//! journald when stderr is connected to the journal (systemd's `JOURNAL_STREAM` names stderr's
//! device and inode) and plain text otherwise. The protocol crates never log below `warn`: at
//! trace level they print whole commands, LOGIN with its password and bodies with patient data.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogConfig;

/// One of `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
    Journald,
}

/// The values `[log] format` and `MAILINTAKE_LOG_FORMAT` accept.
pub const FORMATS: &[&str] = &["auto", "text", "json", "journald"];

/// The format to use. `journal_stream` is `$JOURNAL_STREAM` ("DEVICE:INODE"), `stderr` the device
/// and inode of this process's stderr.
pub fn choose(
    env: Option<&str>,
    configured: &str,
    journal_stream: Option<&str>,
    stderr: Option<(u64, u64)>,
) -> Result<LogFormat, String> {
    let wanted = match env.map(str::trim).filter(|s| !s.is_empty()) {
        Some(v) => v,
        None => configured,
    };
    Ok(match wanted {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        "journald" => LogFormat::Journald,
        "auto" => {
            // systemd sets JOURNAL_STREAM for the service; a child whose stderr was redirected
            // inherits the variable, so it counts only when it names our stderr.
            let on_journal = journal_stream
                .and_then(|s| s.split_once(':'))
                .and_then(|(d, i)| Some((d.parse().ok()?, i.parse().ok()?)))
                .is_some_and(|ds| Some(ds) == stderr);
            if on_journal {
                LogFormat::Journald
            } else {
                LogFormat::Text
            }
        }
        other => {
            return Err(format!(
                "log format `{other}` is unknown (MAILINTAKE_LOG_FORMAT or [log] format: {})",
                FORMATS.join(", ")
            ))
        }
    })
}

fn stderr_dev_ino() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata("/proc/self/fd/2").ok()?;
    Some((m.dev(), m.ino()))
}

/// The filter: `MAILINTAKE_LOG`, else `[log] level`; the protocol crates held at `warn`.
fn filter(cfg: &LogConfig) -> EnvFilter {
    let mut filter =
        EnvFilter::try_from_env("MAILINTAKE_LOG").unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    for quiet in [
        "async_imap=warn",
        "imap_proto=warn",
        "lettre=warn",
        "rustls=warn",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Install the global subscriber. Returns the format in use.
pub fn init(cfg: &LogConfig) -> Result<LogFormat, String> {
    let env = std::env::var("MAILINTAKE_LOG_FORMAT").ok();
    let journal = std::env::var("JOURNAL_STREAM").ok();
    let format = choose(
        env.as_deref(),
        &cfg.format,
        journal.as_deref(),
        stderr_dev_ino(),
    )?;
    let ansi = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let layer = match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(j) => j.with_syslog_identifier("mailintake".into()).boxed(),
            // No journal socket after all: plain text, which journald still captures.
            Err(_) => fmt.without_time().boxed(),
        },
    };
    tracing_subscriber::registry()
        .with(layer.with_filter(filter(cfg)))
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))?;
    Ok(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_over_the_config() {
        assert_eq!(
            choose(Some("json"), "text", None, None),
            Ok(LogFormat::Json)
        );
        assert_eq!(choose(Some(""), "json", None, None), Ok(LogFormat::Json));
        assert_eq!(choose(None, "text", None, None), Ok(LogFormat::Text));
        assert!(choose(Some("xml"), "text", None, None)
            .unwrap_err()
            .contains("xml"));
    }

    #[test]
    fn auto_is_journald_only_when_journal_stream_names_our_stderr() {
        assert_eq!(
            choose(None, "auto", Some("8:1234"), Some((8, 1234))),
            Ok(LogFormat::Journald)
        );
        // Inherited by a process whose stderr goes elsewhere (a file, a pipe).
        assert_eq!(
            choose(None, "auto", Some("8:1234"), Some((8, 99))),
            Ok(LogFormat::Text)
        );
        assert_eq!(
            choose(None, "auto", None, Some((8, 1234))),
            Ok(LogFormat::Text)
        );
        assert_eq!(
            choose(None, "auto", Some("garbage"), Some((8, 1234))),
            Ok(LogFormat::Text)
        );
    }
}
