//! mailintake — e-mail to support tickets for СТП ГБУЗС «МИАЦ» (приказ № 852).
//!
//! # Layout
//! - [`verdict`]: the contract — `Verdict`, decisions, reason codes, the parsed form.
//! - [`engine`]: the pure verdict engine, raw mail bytes + rules → `Verdict`. No I/O, no clock.
//! - [`message`]: MIME walk (mail-parser) into the facts the engine judges; HTML → text.
//! - [`form`]: the form of Приложение 1, parsed from body text; quoted history stripped.
//! - [`attach`]: one attachment classified by name and content; archives listed and checked.
//! - [`rules`]: rule files read, validated and compiled into a `RuleSet`.
//! - [`calendar`]: the working calendar (Europe/Simferopol, holidays) and the 8-working-hour deadline.
//! - [`check`]: the `check` command — paths in, JSON Lines out.
//! - [`config`]: the daemon's TOML configuration, validated.
//! - [`imap`]: the mailbox edge — async-imap over tokio/rustls, IDLE, MOVE and its fallbacks.
//! - [`smtp`]: the sending edge — lettre over tokio/rustls; 4xx/5xx told apart.
//! - [`replies`]: the reply texts (templates in `rules/replies/`).
//! - [`store`]: SQLite — the ledger of every mail, tickets, correspondence, events, the outbox.
//! - [`daemon`]: the glue — intake passes, the outbox sender, reconnects and shutdown.
//! - [`tickets`]: read-side views for `tickets` and `ticket show|attachment`.
//! - [`workflow`]: operators' steps — assign, status (reg. 4.8), priority (reg. 4.9–4.10), notifications.
//! - [`digest`]: the operators' digest (text + HTML), its schedule and patient-data masking.
//! - [`quarantine`]: refused mail — list, show, release with the current rules or an operator's override.
//! - [`replay`]: the stored mail judged with other rules — what would change (read-only).
//! - [`stats`]: mail, tickets, reg. 4.6 deadlines and time to accept.

pub mod attach;
pub mod calendar;
pub mod check;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod engine;
pub mod form;
pub mod imap;
pub mod message;
pub mod quarantine;
pub mod replay;
pub mod replies;
pub mod rules;
pub mod smtp;
pub mod stats;
pub mod store;
pub mod tickets;
pub mod verdict;
pub mod workflow;
