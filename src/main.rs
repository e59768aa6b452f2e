//! The `mailintake` command line: thin glue over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use jiff::Timestamp;
use mailintake::check;
use mailintake::config::Config;
use mailintake::daemon::Daemon;
use mailintake::desk::calendar::Calendar;
use mailintake::desk::digest;
use mailintake::desk::quarantine::{self, ReleaseOutcome};
use mailintake::desk::replay;
use mailintake::desk::stats;
use mailintake::desk::tickets;
use mailintake::desk::workflow;
use mailintake::store::{Status, Store};
use mailintake::verdict::rules::RuleSet;

#[derive(Parser)]
#[command(
    name = "mailintake",
    version,
    about = "E-mail → support tickets for СТП ГБУЗС «МИАЦ» (приказ № 852)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Judge mail files against the rules: one JSON verdict per line.
    Check {
        /// Rule folder.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// A human view instead of JSON Lines.
        #[arg(long)]
        pretty: bool,
        /// Print throughput and latency figures instead of verdicts (judging every file N times).
        #[arg(long, value_name = "ROUNDS")]
        bench: Option<usize>,
        /// Sender authenticity from our MTA's Authentication-Results (needs --authserv-id).
        #[arg(long, conflicts_with = "dns_file")]
        trust_header: bool,
        /// Verify DKIM, SPF and DMARC offline, with the DNS answers of FILE (needs --authserv-id).
        #[arg(long, value_name = "FILE")]
        dns_file: Option<PathBuf>,
        /// Our MTA's authserv-id and the `by` host of its Received line.
        #[arg(long, value_name = "HOST")]
        authserv_id: Option<String>,
        /// What counts as authenticated: dmarc or dkim-or-spf.
        #[arg(long, default_value = "dmarc")]
        require: String,
        /// What an unauthenticated sender gets: filter, quarantine or incomplete.
        #[arg(long, default_value = "filter")]
        on_fail: String,
        /// Authenticate as the daemon would, with the [auth] section of its config (mode
        /// `verify` asks the configured resolver).
        #[arg(long, value_name = "FILE", conflicts_with_all = ["trust_header", "dns_file", "authserv_id"])]
        auth_config: Option<PathBuf>,
        /// .eml files or folders of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate rule files.
    Rules {
        #[command(subcommand)]
        action: RulesAction,
    },
    /// The daemon: watch the mailbox, create tickets, send replies.
    Run {
        #[arg(long)]
        config: PathBuf,
        /// Process what is in the mailbox, send what is due, and exit.
        #[arg(long)]
        once: bool,
    },
    /// List tickets, one per line.
    Tickets {
        #[arg(long)]
        config: PathBuf,
        /// Only tickets in this status (new, assigned, in_progress, feedback, resolved, closed).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One ticket: show it, get an attachment, or work it (assign, status, priority).
    Ticket {
        #[command(subcommand)]
        action: TicketAction,
    },
    /// The operators' digest: print it, or queue it for `digest.recipients` now.
    Digest {
        #[arg(long)]
        config: PathBuf,
        /// Show the digest without sending or recording it.
        #[arg(long, conflicts_with = "send", required_unless_present = "send")]
        print: bool,
        /// Queue it for the recipients now (the next digest starts here).
        #[arg(long)]
        send: bool,
        /// With --print: the HTML part instead of the text.
        #[arg(long, requires = "print")]
        html: bool,
    },
    /// Refused mail (rejected, filtered, ignored): list it, show one, release one.
    Quarantine {
        #[command(subcommand)]
        action: QuarantineAction,
    },
    /// Judge the stored mail with other rules and print what would change. Changes nothing.
    Replay {
        /// The rule folder to try.
        #[arg(long)]
        rules: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Only mail that arrived from then on: YYYY-MM-DD (midnight, the desk's time zone) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
    },
    /// The operators' web console (the queue, tickets, quarantine, statistics) on `[web] listen`.
    Web {
        #[arg(long)]
        config: PathBuf,
        /// Address to serve on, instead of `[web] listen` (e.g. 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Web console accounts: add one (or change its role and password), list, remove.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Mail by decision and reason, tickets by status, deadlines met or missed, time to accept.
    Stats {
        #[arg(long)]
        config: PathBuf,
        /// YYYY-MM-DD (midnight, the desk's time zone) or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Copy the store while the daemon runs (SQLite online backup) and write DEST.sha256 beside it.
    Backup {
        #[arg(long)]
        config: PathBuf,
        /// A file, or a folder that gets mailintake-YYYYMMDD-HHMMSS.db (UTC).
        dest: PathBuf,
        /// With a folder as DEST: keep only the newest N backups there.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// Cut raw mail past [store] keep_raw_days to its headers (rows and fields stay); VACUUM
    /// when a quarter of the file is free. Safe while the daemon runs; meant for a nightly timer.
    Prune {
        #[arg(long)]
        config: PathBuf,
        /// VACUUM even when little is free.
        #[arg(long)]
        vacuum: bool,
    },
    /// Put a backup in place of the store (stop the daemon first); the replaced store is kept.
    Restore {
        #[arg(long)]
        config: PathBuf,
        /// The backup file (its .sha256 beside it is checked when present).
        from: PathBuf,
        /// The IMAP password for checking the mailbox for replies sent after the backup, when
        /// the configured one is a credential only the service sees (/etc/mailintake/imap.pass).
        #[arg(long, value_name = "FILE")]
        imap_password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum UserAction {
    /// Create the account or change its role and password. The password is read from stdin
    /// (asked twice, not echoed, on a terminal).
    Add {
        name: String,
        /// operator (1 ЛТП), specialist (2 ЛТП) or admin.
        #[arg(long, default_value = "operator")]
        role: String,
        #[arg(long)]
        config: PathBuf,
    },
    /// One line per account: name and role.
    List {
        #[arg(long)]
        config: PathBuf,
    },
    Remove {
        name: String,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum QuarantineAction {
    /// One line per refused mail.
    List {
        #[arg(long)]
        config: PathBuf,
        /// Only mail with this reason code (sender_domain, automatic, too_large, …).
        #[arg(long, value_name = "CODE")]
        reason: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The mail's headers, reasons and stored verdict.
    Show {
        id: i64,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Judge the mail again with the current rules and, if it passes, make its ticket and reply.
    Release {
        id: i64,
        #[arg(long)]
        config: PathBuf,
        /// Accept it even though the rules refuse it (recorded as the operator's decision).
        #[arg(long)]
        force_accept: bool,
        /// Who releases it (default: $SUDO_USER, else $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand)]
enum TicketAction {
    /// The ticket with its fields, correspondence, attachments and history.
    Show {
        id: i64,
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Write an attachment's bytes to stdout.
    Attachment {
        id: i64,
        name: String,
        #[arg(long)]
        config: PathBuf,
    },
    /// Assign the ticket to a specialist (new/feedback → assigned).
    Assign {
        id: i64,
        #[arg(long)]
        to: String,
        /// Who does it (default: $SUDO_USER or $USER).
        #[arg(long = "as")]
        actor: Option<String>,
        #[arg(long)]
        config: PathBuf,
    },
    /// Move the ticket to another status (reg. 4.8); feedback and resolved need --comment.
    Status {
        id: i64,
        /// new, assigned, in_progress, feedback, resolved, closed (or the Russian name).
        status: String,
        #[arg(long)]
        comment: Option<String>,
        #[arg(long = "as")]
        actor: Option<String>,
        #[arg(long)]
        config: PathBuf,
    },
    /// Write to the applicant without changing the status (a letter, threaded in the ticket).
    Reply {
        id: i64,
        /// The text of the letter (it goes to the applicant as written).
        #[arg(long)]
        text: String,
        #[arg(long = "as")]
        actor: Option<String>,
        #[arg(long)]
        config: PathBuf,
    },
    /// Lower the priority (and impact) — reg. 4.5, 4.9.
    Priority {
        id: i64,
        /// urgent, high, normal, low (or the Russian name, or 1–4).
        priority: String,
        #[arg(long)]
        impact: Option<String>,
        #[arg(long = "as")]
        actor: Option<String>,
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum RulesAction {
    /// Check every rule file; each error names file, line and key.
    Check {
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Also validate the daemon's config file (its [auth] section included).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("mailintake: {msg}");
    ExitCode::from(2)
}

/// The authenticator of `check --trust-header` / `--dns-file`, as the `[auth]` section would
/// make it (same validation, same messages).
fn check_auth(
    trust_header: bool,
    dns_file: Option<PathBuf>,
    authserv_id: Option<String>,
    require: &str,
    on_fail: &str,
) -> Result<
    Option<(
        mailintake::mail::auth::Authenticator,
        mailintake::verdict::auth::AuthPolicy,
    )>,
    String,
> {
    use mailintake::verdict::auth::AuthMode;
    let mode = if trust_header {
        AuthMode::TrustHeader
    } else if dns_file.is_some() {
        AuthMode::Verify
    } else {
        return Ok(None);
    };
    let value = |s: &str| serde_json::Value::String(s.to_string());
    let auth = mailintake::config::AuthConfig {
        mode,
        authserv_id,
        dns_file,
        require: serde_json::from_value(value(require))
            .map_err(|_| format!("--require: `{require}`: expected dmarc or dkim-or-spf"))?,
        on_fail: serde_json::from_value(value(on_fail)).map_err(|_| {
            format!("--on-fail: `{on_fail}`: expected filter, quarantine or incomplete")
        })?,
        ..Default::default()
    };
    let settings = auth
        .settings()
        .map_err(|(k, e)| format!("{}: {e}", k.replace("auth.", "--").replace('_', "-")))?;
    let a = mailintake::mail::auth::Authenticator::new(settings)?;
    Ok(Some((a, auth.policy())))
}

fn load_config(path: &std::path::Path) -> Result<Config, String> {
    Config::load(path)
}

fn open_store(path: &std::path::Path) -> Result<Store, String> {
    let cfg = load_config(path)?;
    Store::open(&cfg.store.path).map_err(|e| format!("{}: {e}", cfg.store.path.display()))
}

/// Text without colour codes unless stderr is a terminal, JSON lines, or journald's fields
/// (see `mailintake::logging`).
fn init_logs(cfg: &Config) -> Result<(), String> {
    mailintake::logging::init(&cfg.log).map(|_| ())
}

/// The daemon over the config's store and rules, and the runtime `run` and `web` drive it on.
fn daemon_and_runtime(
    cfg: Config,
) -> Result<(std::sync::Arc<Daemon>, tokio::runtime::Runtime), String> {
    let daemon = std::sync::Arc::new(Daemon::new(cfg)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok((daemon, rt))
}

fn run_daemon(config: PathBuf, once: bool) -> ExitCode {
    let cfg = match load_config(&config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = init_logs(&cfg) {
        return fail(e);
    }
    let (daemon, rt) = match daemon_and_runtime(cfg) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        if once {
            return match daemon.run_once().await {
                Ok(stats) => {
                    eprintln!(
                        "mailintake: {} mails recorded, {} set aside, {} errors",
                        stats.recorded, stats.set_aside, stats.errors
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            };
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let signals = {
            let daemon = daemon.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::hangup()),
                ) else {
                    tracing::error!("cannot install signal handlers");
                    return;
                };
                loop {
                    tokio::select! {
                        _ = term.recv() => break,
                        _ = int.recv() => break,
                        _ = hup.recv() => match daemon.reload() {
                            Ok(()) => tracing::info!("rules reloaded"),
                            Err(e) => tracing::error!(error = %e, "new rules refused; the old ones stay in force"),
                        },
                    }
                }
                tracing::info!("shutting down");
                let _ = tx.send(true);
            })
        };
        // The web console in the same process when `[web] listen` is set: it shares the rules
        // (reloaded on SIGHUP) and wakes the outbox sender after an operator's change.
        let web = daemon.cfg.web.listen.clone().map(|listen| {
            let (daemon, rx) = (daemon.clone(), rx.clone());
            tokio::spawn(async move {
                if let Err(e) = mailintake::web::serve(daemon, &listen, rx).await {
                    tracing::error!(error = %e, "web console stopped");
                }
            })
        });
        let result = daemon.run(rx).await;
        if let Some(web) = web {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(3), web).await;
        }
        signals.abort();
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// The operator commands: load config, rules and store, run one workflow step, print the result.
fn workflow_command(
    config: &std::path::Path,
    step: impl FnOnce(
        &mut Store,
        &mailintake::daemon::Loaded,
        &Config,
        &str,
    ) -> Result<String, workflow::WorkflowError>,
    actor: Option<String>,
) -> ExitCode {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let loaded = match mailintake::daemon::Loaded::load(&cfg.rules.dir) {
        Ok(l) => l,
        Err(e) => return fail(e),
    };
    let mut store = match Store::open(&cfg.store.path) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", cfg.store.path.display())),
    };
    let actor = actor.unwrap_or_else(|| workflow::Actor::from_env().0);
    match step(&mut store, &loaded, &cfg, &actor) {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e @ workflow::WorkflowError::Store(_)) => fail(e),
        Err(e) => {
            eprintln!("mailintake: {e}");
            ExitCode::from(1)
        }
    }
}

fn digest_command(config: PathBuf, send: bool, html: bool) -> ExitCode {
    let cfg = match load_config(&config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let cal = match Calendar::load(&cfg.rules.dir.join("calendar.toml")) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut store = match Store::open(&cfg.store.path) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", cfg.store.path.display())),
    };
    let d = match digest::build(&store, &cal, Timestamp::now(), cfg.digest.mask_patient) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    if !send {
        print!("{}", if html { &d.html } else { &d.text });
        return ExitCode::SUCCESS;
    }
    if cfg.digest.recipients.is_empty() {
        return fail("digest.recipients is empty in the config: nobody to send the digest to");
    }
    let mail = digest::outgoing(&d, &cfg.smtp.from);
    let id = match digest::record_sent(&mut store, &d, &cfg.digest.recipients, &mail) {
        Ok(id) => id,
        Err(e) => return fail(e),
    };
    // A running daemon sends it within seconds; without one, send the outbox now.
    let Ok(_lock) = mailintake::daemon::lock_store(&cfg.store.path) else {
        eprintln!(
            "mailintake: digest #{id} queued for {}; the running daemon sends it",
            cfg.digest.recipients.join(", ")
        );
        return ExitCode::SUCCESS;
    };
    let daemon = match Daemon::new(cfg) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let mailer = match daemon.cfg.mailer() {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    let sent = rt.block_on(daemon.send_due(&mut store, &mailer));
    let left = store.count_outbox("pending").unwrap_or(0);
    eprintln!("mailintake: digest #{id}: {sent} mail(s) sent, {left} still pending");
    ExitCode::SUCCESS
}

fn print_or_fail(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

/// The desk's calendar (for `--since` dates and working time), from the configured rules.
fn load_calendar(cfg: &Config) -> Result<Calendar, String> {
    Calendar::load(&cfg.rules.dir.join("calendar.toml")).map_err(|e| e.to_string())
}

fn parse_since(since: Option<&str>, cal: &Calendar) -> Result<Option<Timestamp>, String> {
    since
        .map(|s| stats::parse_since(s, cal.time_zone()))
        .transpose()
}

/// `quarantine release`: the configured rules, templates and calendar, so the ticket, its
/// deadline and the reply are the ones intake would have made. Exit 1 when the rules still
/// refuse the mail.
fn quarantine_release(config: PathBuf, id: i64, force: bool, actor: Option<String>) -> ExitCode {
    let cfg = match load_config(&config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let actor = actor.unwrap_or_else(|| workflow::Actor::from_env().0);
    let mut store = match Store::open(&cfg.store.path) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", cfg.store.path.display())),
    };
    let daemon = match Daemon::new(cfg) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    match daemon.release(&mut store, id, force, &actor, Timestamp::now()) {
        Ok(outcome) => {
            print!("{}", quarantine::render_release(id, &outcome));
            if matches!(outcome, ReleaseOutcome::StillRefused { .. }) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => fail(e),
    }
}

/// `--version` also names the newest store schema this binary reads, so an administrator can
/// tell before an upgrade or a downgrade whether the store will be migrated or refused.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let version: &'static str = Box::leak(
        format!(
            "{} (store schema {})",
            env!("CARGO_PKG_VERSION"),
            mailintake::store::SCHEMA_VERSION
        )
        .into_boxed_str(),
    );
    let matches = Cli::command().version(version).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `mailintake web`: the console alone (the daemon may run as another process on the same store).
fn run_web(config: PathBuf, listen: Option<String>) -> ExitCode {
    let cfg = match load_config(&config) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if let Err(e) = init_logs(&cfg) {
        return fail(e);
    }
    let Some(listen) = listen.or_else(|| cfg.web.listen.clone()) else {
        return fail("no address to serve on: set [web] listen in the config or pass --listen");
    };
    let (daemon, rt) = match daemon_and_runtime(cfg) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            let _ = tx.send(true);
        });
        match mailintake::web::serve(daemon, &listen, rx).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

/// Reads a password: from a terminal, asked twice without echo; otherwise the first line of stdin.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let read_line = || -> Result<String, String> {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    };
    if !stdin.is_terminal() {
        return read_line();
    }
    // SAFETY: termios calls on the process's own stdin; the saved mode is restored below.
    let fd = libc::STDIN_FILENO;
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    let echo_off = unsafe { libc::tcgetattr(fd, &mut saved) } == 0 && {
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) == 0 }
    };
    let ask = |prompt: &str| -> Result<String, String> {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let p = read_line();
        eprintln!();
        p
    };
    let first = ask("Пароль: ");
    let second = first.as_ref().ok().map(|_| ask("Ещё раз: "));
    if echo_off {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    }
    let first = first?;
    match second {
        Some(Ok(s)) if s == first => Ok(first),
        Some(Err(e)) => Err(e),
        _ => Err("пароли не совпадают".into()),
    }
}

fn user_command(action: UserAction) -> ExitCode {
    use mailintake::desk::users::{self, Role};
    match action {
        UserAction::Add { name, role, config } => {
            let Some(role) = Role::parse(&role) else {
                return fail(format!(
                    "unknown role `{role}` (operator, specialist, admin)"
                ));
            };
            let store = match open_store(&config) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let password = match read_password() {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            match users::add(&store, &name, role, &password, Timestamp::now()) {
                Ok(created) => {
                    println!(
                        "{} {}: {}",
                        if created {
                            "добавлен"
                        } else {
                            "изменён"
                        },
                        name.trim(),
                        role.russian()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        UserAction::List { config } => print_or_fail(open_store(&config).and_then(|st| {
            Ok(users::list(&st)?
                .iter()
                .map(|u| format!("{:<24} {}\n", u.name, u.role.as_str()))
                .collect())
        })),
        UserAction::Remove { name, config } => {
            match open_store(&config).and_then(|st| users::remove(&st, &name)) {
                Ok(true) => {
                    println!("удалён {}", name.trim());
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("нет пользователя «{}»", name.trim())),
                Err(e) => fail(e),
            }
        }
    }
}

fn main() -> ExitCode {
    // One rustls crypto provider for the process: test builds also link aws-lc-rs (through the
    // browser tests' WebDriver client), and with two providers and no default a TLS config panics.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = parse_cli();
    match cli.command {
        Command::Backup { config, dest, keep } => print_or_fail(
            load_config(&config).and_then(|cfg| mailintake::maintenance::backup(&cfg, &dest, keep)),
        ),
        Command::Prune { config, vacuum } => print_or_fail(
            load_config(&config).and_then(|cfg| mailintake::maintenance::prune(&cfg, vacuum)),
        ),
        Command::Restore {
            config,
            from,
            imap_password_file,
        } => print_or_fail(load_config(&config).and_then(|mut cfg| {
            if let Some(f) = imap_password_file {
                cfg.imap.password_env = None;
                cfg.imap.password_file = Some(f);
            }
            mailintake::maintenance::restore(&cfg, &from)
        })),
        Command::Run { config, once } => run_daemon(config, once),
        Command::Web { config, listen } => run_web(config, listen),
        Command::User { action } => user_command(action),
        Command::Tickets {
            config,
            status,
            json,
        } => {
            let status = match status.as_deref().map(|s| (s, Status::parse(s))) {
                None => None,
                Some((_, Some(st))) => Some(st),
                Some((s, None)) => {
                    return fail(format!(
                    "unknown status `{s}` (new, assigned, in_progress, feedback, resolved, closed)"
                ))
                }
            };
            match open_store(&config).and_then(|st| tickets::list(&st, status, json)) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Digest {
            config, send, html, ..
        } => digest_command(config, send, html),
        Command::Quarantine { action } => match action {
            QuarantineAction::List {
                config,
                reason,
                json,
            } => print_or_fail(
                open_store(&config).and_then(|st| quarantine::list(&st, reason.as_deref(), json)),
            ),
            QuarantineAction::Show { id, config, json } => {
                print_or_fail(open_store(&config).and_then(|st| quarantine::show(&st, id, json)))
            }
            QuarantineAction::Release {
                id,
                config,
                force_accept,
                actor,
            } => quarantine_release(config, id, force_accept, actor),
        },
        Command::Replay {
            rules,
            config,
            since,
        } => {
            let rules = match RuleSet::load(&rules) {
                Ok(r) => r,
                Err(e) => return fail(format!("invalid rules: {e}")),
            };
            print_or_fail(load_config(&config).and_then(|cfg| {
                let since = parse_since(since.as_deref(), &load_calendar(&cfg)?)?;
                let store = Store::open(&cfg.store.path)
                    .map_err(|e| format!("{}: {e}", cfg.store.path.display()))?;
                replay::replay(&store, &rules, since, true).map(|r| replay::render(&r))
            }))
        }
        Command::Stats {
            config,
            since,
            json,
        } => print_or_fail(load_config(&config).and_then(|cfg| {
            let cal = load_calendar(&cfg)?;
            let since = parse_since(since.as_deref(), &cal)?;
            let store = Store::open(&cfg.store.path)
                .map_err(|e| format!("{}: {e}", cfg.store.path.display()))?;
            let s = stats::stats(&store, &cal, since, Timestamp::now())?;
            let (size_line, size_json) =
                mailintake::maintenance::size_line(&store, &cfg.store.path)?;
            Ok(if json {
                let mut v = serde_json::to_value(&s).map_err(|e| e.to_string())?;
                v["store"] = size_json;
                format!("{v}\n")
            } else {
                stats::render(&s) + &size_line
            })
        })),
        Command::Ticket { action } => match action {
            TicketAction::Assign {
                id,
                to,
                actor,
                config,
            } => workflow_command(
                &config,
                |store, _, _, actor| workflow::assign(store, id, &to, actor, Timestamp::now()),
                actor,
            ),
            TicketAction::Status {
                id,
                status,
                comment,
                actor,
                config,
            } => workflow_command(
                &config,
                |store, loaded, cfg, actor| {
                    let to = workflow::parse_status(&status)
                        .map_err(workflow::WorkflowError::Refused)?;
                    let mut notify =
                        |r: workflow::NotifyRequest<'_>| loaded.render_notification(cfg, &r);
                    workflow::set_status(
                        store,
                        id,
                        to,
                        comment.as_deref(),
                        actor,
                        Timestamp::now(),
                        &mut notify,
                    )
                },
                actor,
            ),
            TicketAction::Reply {
                id,
                text,
                actor,
                config,
            } => workflow_command(
                &config,
                |store, loaded, cfg, actor| {
                    let mut notify =
                        |r: workflow::NotifyRequest<'_>| loaded.render_notification(cfg, &r);
                    workflow::reply(store, id, &text, actor, Timestamp::now(), &mut notify)
                },
                actor,
            ),
            TicketAction::Priority {
                id,
                priority,
                impact,
                actor,
                config,
            } => workflow_command(
                &config,
                |store, loaded, _, actor| {
                    let pr = &loaded.rules.priority;
                    let p = workflow::parse_priority(pr, &priority)
                        .map_err(workflow::WorkflowError::Refused)?;
                    let i = impact
                        .as_deref()
                        .map(|s| workflow::parse_impact(pr, s))
                        .transpose()
                        .map_err(workflow::WorkflowError::Refused)?;
                    workflow::set_priority(
                        store,
                        id,
                        p,
                        i,
                        &loaded.rules.priority,
                        actor,
                        Timestamp::now(),
                    )
                },
                actor,
            ),
            TicketAction::Show { id, config, json } => {
                match open_store(&config).and_then(|st| tickets::show(&st, id, json)) {
                    Ok(out) => {
                        print!("{out}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            TicketAction::Attachment { id, name, config } => {
                match open_store(&config).and_then(|st| tickets::attachment(&st, id, &name)) {
                    Ok(bytes) => {
                        use std::io::Write;
                        let mut out = std::io::stdout().lock();
                        if out.write_all(&bytes).and_then(|_| out.flush()).is_err() {
                            return fail("cannot write to stdout");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
        },
        Command::Check {
            rules,
            pretty,
            bench,
            trust_header,
            dns_file,
            authserv_id,
            require,
            on_fail,
            auth_config,
            paths,
        } => {
            let auth = match auth_config {
                Some(path) => load_config(&path).and_then(|cfg| {
                    let settings = cfg.auth.settings().map_err(|(k, e)| format!("{k}: {e}"))?;
                    let a = mailintake::mail::auth::Authenticator::new(settings)?;
                    Ok(Some((a, cfg.auth.policy())))
                }),
                None => check_auth(trust_header, dns_file, authserv_id, &require, &on_fail),
            };
            let auth = match auth {
                Ok(a) => a,
                Err(e) => return fail(e),
            };
            let rules = match RuleSet::load(&rules) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("mailintake: invalid rules: {e}");
                    return ExitCode::from(2);
                }
            };
            let files = match check::expand(&paths) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("mailintake: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Some(rounds) = bench {
                return match check::bench(&files, &rules, rounds.max(1)) {
                    Ok(s) => {
                        println!("{s}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("mailintake: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            let shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            let auth = auth.as_ref().map(|(a, p)| (a, *p));
            if check::run_with_auth(&files, &shown, &rules, pretty, auth) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Command::Rules {
            action: RulesAction::Check { rules, config },
        } => match mailintake::daemon::check_rules_dir(&rules).and_then(|l| {
            match config.as_deref().map(Config::load) {
                Some(Err(e)) => Err(vec![e]),
                _ => Ok(l),
            }
        }) {
            Ok(_) => {
                println!("rules in {} are valid", rules.display());
                if let Some(c) = &config {
                    println!("config {} is valid", c.display());
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{} problem(s); the rules were not accepted", errors.len());
                ExitCode::from(1)
            }
        },
    }
}
