//! The daemon's configuration file (TOML). Unknown keys are an error naming the key; every
//! setting beyond the contract has a default documented in the README.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::mail::imap::{ImapSettings, Security};
use crate::mail::smtp::{Mailer, SmtpSecurity, SmtpSettings};
use crate::mail::trust::Trust;
use crate::verdict::rules::RuleFile;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub imap: ImapConfig,
    pub smtp: SmtpConfig,
    pub store: StoreConfig,
    pub rules: RulesConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub digest: DigestConfig,
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub web: WebConfig,
}

/// `[auth]`: sender authenticity (issue 9). Off by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub mode: crate::verdict::auth::AuthMode,
    /// The authserv-id our MTA writes in `Authentication-Results` (usually its host name).
    #[serde(default)]
    pub authserv_id: Option<String>,
    /// The `by` host of our MTA's `Received` line; default: `authserv_id`.
    #[serde(default)]
    pub mta_hostname: Option<String>,
    /// "system" (resolv.conf), an IP address, or IP:PORT.
    #[serde(default = "d_resolver")]
    pub resolver: String,
    /// One DNS query.
    #[serde(default = "d_auth_timeout")]
    pub timeout_seconds: u64,
    /// A mail whose check hit a DNS failure stays in the inbox and is judged again on the next
    /// passes; after this long (from its arrival) it is judged with `temperror` and `on_fail`.
    #[serde(default = "d_max_wait")]
    pub max_wait_minutes: u64,
    #[serde(default)]
    pub on_fail: crate::verdict::auth::OnFail,
    #[serde(default)]
    pub require: crate::verdict::auth::Require,
    /// DNS answers from a file instead of a resolver (a closed network; tests).
    #[serde(default)]
    pub dns_file: Option<PathBuf>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: Default::default(),
            authserv_id: None,
            mta_hostname: None,
            resolver: d_resolver(),
            timeout_seconds: d_auth_timeout(),
            max_wait_minutes: d_max_wait(),
            on_fail: Default::default(),
            require: Default::default(),
            dns_file: None,
        }
    }
}

impl AuthConfig {
    /// The policy the engine judges by.
    pub fn policy(&self) -> crate::verdict::auth::AuthPolicy {
        crate::verdict::auth::AuthPolicy {
            require: self.require,
            on_fail: self.on_fail,
        }
    }

    /// The settings of the authenticator; reads `dns_file`. Problems are `(key, message)`.
    pub fn settings(&self) -> Result<crate::mail::auth::AuthSettings, (&'static str, String)> {
        use crate::mail::auth::{AuthSettings, ResolverAddr, Zone};
        use crate::verdict::auth::AuthMode;
        let id = self
            .authserv_id
            .as_deref()
            .map(str::trim)
            .unwrap_or("")
            .to_ascii_lowercase();
        if self.mode != AuthMode::Off {
            if id.is_empty() {
                return Err((
                    "auth.authserv_id",
                    "is required with mode \"trust-header\" or \"verify\": the host name our MTA writes in Authentication-Results and Received (e.g. \"mx.sevmiac.ru\")".into(),
                ));
            }
            if id.contains(|c: char| c.is_whitespace() || c == ';' || c == '@') {
                return Err(("auth.authserv_id", format!("`{id}` is not a host name")));
            }
        }
        let resolver = ResolverAddr::parse(&self.resolver).map_err(|e| ("auth.resolver", e))?;
        if self.timeout_seconds == 0 || self.timeout_seconds > 60 {
            return Err(("auth.timeout_seconds", "must be between 1 and 60".into()));
        }
        let zone = match &self.dns_file {
            Some(p) => Some(Zone::load(p).map_err(|e| ("auth.dns_file", e))?),
            None => None,
        };
        Ok(AuthSettings {
            mode: self.mode,
            mta_host: self
                .mta_hostname
                .as_deref()
                .map(|h| h.trim().to_ascii_lowercase())
                .unwrap_or_else(|| id.clone()),
            authserv_id: id,
            resolver,
            timeout: Duration::from_secs(self.timeout_seconds),
            zone,
        })
    }
}

fn d_resolver() -> String {
    "system".into()
}
fn d_auth_timeout() -> u64 {
    5
}
fn d_max_wait() -> u64 {
    60
}

/// The operators' web console (`mailintake web`, and `run` when `listen` is set).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Address to serve on, e.g. "127.0.0.1:8080"; none = `run` serves no web console.
    pub listen: Option<String>,
    /// Mark the session cookie `Secure` (the console is behind an HTTPS proxy).
    #[serde(default)]
    pub secure_cookies: bool,
    /// Hours a session lasts without activity; default 10 (a working day).
    pub session_hours: Option<u64>,
}

/// Digests for 1st-line operators.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestConfig {
    /// Who gets the digest; empty = no scheduled digests.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Local times (calendar zone) on working days.
    #[serde(default = "d_digest_times")]
    pub times: Vec<String>,
    /// Mask patient data (surname → first letter, card → `****23`) in digests.
    #[serde(default = "d_true")]
    pub mask_patient: bool,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig {
            recipients: Vec::new(),
            times: d_digest_times(),
            mask_patient: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapConfig {
    pub host: String,
    #[serde(default = "d_imap_port")]
    pub port: u16,
    #[serde(default = "d_tls")]
    pub security: Security,
    pub username: String,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted besides the system's (an internal or national CA).
    pub ca_file: Option<PathBuf>,
    #[serde(default = "d_inbox")]
    pub mailbox: String,
    #[serde(default)]
    pub folders: Folders,
    /// Use IMAP IDLE when offered.
    #[serde(default = "d_true")]
    pub idle: bool,
    /// IDLE is re-issued after this many minutes (RFC 2177 asks for less than 29).
    #[serde(default = "d_idle_minutes")]
    pub idle_minutes: u64,
    /// Poll interval when IDLE is off or not offered.
    #[serde(default = "d_poll")]
    pub poll_seconds: u64,
    /// Timeout of one IMAP command.
    #[serde(default = "d_timeout")]
    pub timeout_seconds: u64,
    /// Larger mail is not downloaded: its headers decide (`too_large`).
    #[serde(default = "d_max_mail")]
    pub max_mail_bytes: u64,
    /// Reconnect backoff cap.
    #[serde(default = "d_backoff_cap")]
    pub reconnect_max_seconds: u64,
}

/// Where processed mail is set aside, per outcome.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folders {
    #[serde(default = "d_processed")]
    pub processed: String,
    #[serde(default = "d_rejected")]
    pub rejected: String,
    #[serde(default = "d_filtered")]
    pub filtered: String,
    #[serde(default = "d_ignored")]
    pub ignored: String,
    /// Copies of our own replies (see `smtp.copy_to`).
    #[serde(default = "d_replies")]
    pub replies: String,
    /// The keyword flag used when the server can neither MOVE nor UIDPLUS.
    #[serde(default = "d_keyword")]
    pub keyword: String,
}

impl Default for Folders {
    fn default() -> Self {
        Folders {
            processed: d_processed(),
            rejected: d_rejected(),
            filtered: d_filtered(),
            ignored: d_ignored(),
            replies: d_replies(),
            keyword: d_keyword(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "d_smtp_port")]
    pub port: u16,
    #[serde(default = "d_starttls")]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password_env: Option<String>,
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted besides the system's (an internal or national CA).
    pub ca_file: Option<PathBuf>,
    pub from: String,
    #[serde(default = "d_from_name")]
    pub from_name: String,
    /// Every reply is also sent to this address (default: the IMAP user), so that after a crash
    /// between the SMTP acceptance and its record the daemon can see the reply went out.
    pub copy_to: Option<String>,
    #[serde(default = "d_timeout")]
    pub timeout_seconds: u64,
    /// Retry a reply refused with a 4xx for this long before recording it undeliverable.
    #[serde(default = "d_retry_hours")]
    pub retry_hours: u64,
    /// First retry delay after a 4xx; doubled each attempt, capped at 30 minutes.
    #[serde(default = "d_retry_base")]
    pub retry_base_seconds: u64,
    /// After a crash during sending, wait this long for the reply's copy before sending again.
    #[serde(default = "d_confirm")]
    pub confirm_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Raw mail of tickets closed, and of refused mail recorded, more than this many days ago is
    /// cut to its header block by `mailintake prune` (rows and fields stay). Unset: kept forever.
    pub keep_raw_days: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Auto-replies to one address in one day (UTC); more are recorded, not sent.
    #[serde(default = "d_replies_per_day")]
    pub replies_per_address_per_day: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            replies_per_address_per_day: d_replies_per_day(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// "auto" (journald under systemd, else text), "text", "json" or "journald";
    /// `MAILINTAKE_LOG_FORMAT` overrides it (see [`crate::logging`]).
    #[serde(default = "d_log_format")]
    pub format: String,
    /// A tracing filter, e.g. "info" or "mailintake=debug".
    #[serde(default = "d_log_level")]
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: d_log_format(),
            level: d_log_level(),
        }
    }
}

fn d_digest_times() -> Vec<String> {
    vec!["08:30".into(), "13:30".into()]
}
fn d_imap_port() -> u16 {
    993
}
fn d_smtp_port() -> u16 {
    587
}
fn d_tls() -> Security {
    Security::Tls
}
fn d_starttls() -> SmtpSecurity {
    SmtpSecurity::Starttls
}
fn d_inbox() -> String {
    "INBOX".into()
}
fn d_true() -> bool {
    true
}
fn d_idle_minutes() -> u64 {
    25
}
fn d_poll() -> u64 {
    60
}
fn d_timeout() -> u64 {
    30
}
fn d_max_mail() -> u64 {
    25 * 1024 * 1024
}
fn d_backoff_cap() -> u64 {
    300
}
fn d_processed() -> String {
    "Processed".into()
}
fn d_rejected() -> String {
    "Rejected".into()
}
fn d_filtered() -> String {
    "Filtered".into()
}
fn d_ignored() -> String {
    "Ignored".into()
}
fn d_replies() -> String {
    "Replies".into()
}
fn d_keyword() -> String {
    "mailintake_done".into()
}
fn d_from_name() -> String {
    "СТП ГБУЗС «МИАЦ»".into()
}
fn d_retry_hours() -> u64 {
    48
}
fn d_retry_base() -> u64 {
    30
}
fn d_confirm() -> u64 {
    60
}
fn d_replies_per_day() -> u32 {
    40
}
fn d_log_format() -> String {
    "auto".into()
}
fn d_log_level() -> String {
    "info".into()
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn read_secret(
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<Option<String>, String> {
    match (env, file) {
        (Some(_), Some(_)) => Err(format!(
            "{what}: set password_env or password_file, not both"
        )),
        (Some(var), None) => std::env::var(var)
            .map(Some)
            .map_err(|_| format!("{what}.password_env: the variable {var} is not set")),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_string()))
            .map_err(|e| format!("{what}.password_file: {}: {e}", path.display())),
        (None, None) => Ok(None),
    }
}

impl Config {
    /// Read and validate; relative paths are resolved against the config file's folder.
    pub fn load(path: &Path) -> Result<Config, String> {
        let file = RuleFile::read(path).map_err(|e| e.to_string())?;
        let mut cfg: Config = file.parse().map_err(|e| e.to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut cfg.store.path, &mut cfg.rules.dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = cfg.auth.dns_file.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Err((key, msg)) = cfg.auth.settings() {
            return Err(file.error(key, msg).to_string());
        }
        for (key, ca) in [
            ("imap.ca_file", &mut cfg.imap.ca_file),
            ("smtp.ca_file", &mut cfg.smtp.ca_file),
        ] {
            if let Some(p) = ca {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
                // A wrong CA file is found at start, not at the first connection.
                crate::mail::trust::read_ca_file(p).map_err(|e| file.error(key, e).to_string())?;
            }
        }
        for (sec, host) in [
            (
                "imap",
                (&cfg.imap.host, cfg.imap.security == Security::None),
            ),
            (
                "smtp",
                (&cfg.smtp.host, cfg.smtp.security == SmtpSecurity::None),
            ),
        ] {
            if host.1 && !is_loopback(host.0) {
                return Err(file
                    .error(
                        &format!("{sec}.security"),
                        format!(
                            "\"none\" sends the password in clear text; it is allowed only for a loopback host, not {}",
                            host.0
                        ),
                    )
                    .to_string());
            }
        }
        if cfg.store.keep_raw_days == Some(0) {
            return Err(file
                .error(
                    "store.keep_raw_days",
                    "must be at least 1 (leave it out to keep raw mail forever)",
                )
                .to_string());
        }
        if cfg.imap.idle_minutes == 0 || cfg.imap.idle_minutes > 29 {
            return Err(file
                .error("imap.idle_minutes", "must be between 1 and 29 (RFC 2177)")
                .to_string());
        }
        for t in &cfg.digest.times {
            if t.parse::<jiff::civil::Time>().is_err() {
                return Err(file
                    .error(
                        "digest.times",
                        format!("`{t}` is not a time like \"08:30\""),
                    )
                    .to_string());
            }
        }
        if !crate::logging::FORMATS.contains(&cfg.log.format.as_str()) {
            return Err(file
                .error(
                    "log.format",
                    format!("must be one of {}", crate::logging::FORMATS.join(", ")),
                )
                .to_string());
        }
        Ok(cfg)
    }

    pub fn imap_settings(&self) -> Result<ImapSettings, String> {
        let password = read_secret(&self.imap.password_env, &self.imap.password_file, "imap")?
            .ok_or("imap: password_env or password_file is required")?;
        Ok(ImapSettings {
            host: self.imap.host.clone(),
            port: self.imap.port,
            security: self.imap.security,
            username: self.imap.username.clone(),
            password,
            timeout: Duration::from_secs(self.imap.timeout_seconds.max(1)),
        })
    }

    pub fn smtp_settings(&self) -> Result<SmtpSettings, String> {
        let password = read_secret(&self.smtp.password_env, &self.smtp.password_file, "smtp")?;
        if self.smtp.username.is_some() && password.is_none() {
            return Err("smtp: username is set but neither password_env nor password_file".into());
        }
        Ok(SmtpSettings {
            host: self.smtp.host.clone(),
            port: self.smtp.port,
            security: self.smtp.security,
            username: self.smtp.username.clone(),
            password,
            from: self.smtp.from.clone(),
            from_name: Some(self.smtp.from_name.clone()),
            timeout: Duration::from_secs(self.smtp.timeout_seconds.max(1)),
        })
    }

    /// The roots the IMAP connection trusts: the system's and `imap.ca_file`.
    pub fn imap_trust(&self) -> Result<Trust, String> {
        Trust::with_ca_file(self.imap.ca_file.as_deref()).map_err(|e| format!("imap.ca_file: {e}"))
    }

    /// The roots the SMTP connection trusts: the system's and `smtp.ca_file`.
    pub fn smtp_trust(&self) -> Result<Trust, String> {
        Trust::with_ca_file(self.smtp.ca_file.as_deref()).map_err(|e| format!("smtp.ca_file: {e}"))
    }

    /// The SMTP client for these settings and roots.
    pub fn mailer(&self) -> Result<Mailer, String> {
        Mailer::with_trust(&self.smtp_settings()?, self.smtp_trust()?).map_err(|e| e.to_string())
    }

    /// The address that receives a copy of every reply.
    pub fn copy_to(&self) -> String {
        self.smtp
            .copy_to
            .clone()
            .unwrap_or_else(|| self.imap.username.clone())
    }
}
