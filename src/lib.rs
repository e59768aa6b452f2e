//! mailintake — e-mail to support tickets for СТП ГБУЗС «МИАЦ» (приказ № 852).
//!
//! # Layout
//! The folders are layers; each depends only on the ones listed before it.
//!
//! - [`verdict`] — the pure core: raw mail bytes + rules → `Verdict`. No I/O, no clock.
//!   - `verdict` itself: the contract — decisions, reason codes, the parsed form.
//!   - [`verdict::message`]: MIME walk (mail-parser) into the facts the engine judges; HTML → text.
//!   - [`verdict::form`]: the form of Приложение 1, parsed from body text; quoted history stripped.
//!   - [`verdict::attach`]: one attachment classified by name and content; archives checked.
//!   - [`verdict::rules`]: rule files read, validated and compiled into a `RuleSet`.
//!   - [`verdict::auth`]: sender authenticity as a fact: the DKIM/SPF/DMARC result, trusted
//!     `Authentication-Results`, the policy → `sender_unauthenticated`.
//!   - [`verdict::engine`]: the engine itself.
//! - [`store`] — SQLite: the ledger of every mail, tickets, correspondence, events, the outbox
//!   ([`store::outbox`]) and the state changes both the intake and the desk write
//!   ([`store::acceptance`]), online backup and restore of the file ([`store::backup`]).
//!   Depends on `verdict` only.
//! - [`mail`] — the edges to mail servers: [`mail::imap`] (async-imap, IDLE, MOVE),
//!   [`mail::smtp`] (lettre; 4xx/5xx told apart), [`mail::replies`] (reply texts and templates),
//!   [`mail::auth`] (DKIM/SPF/DMARC verified by mail-auth with DNS, or DNS answers from a file).
//! - [`desk`] — the support desk over the store: [`desk::workflow`] (assign, status, priority,
//!   notifications), [`desk::tickets`] (views), [`desk::calendar`] (working hours, the 8-hour
//!   deadline), [`desk::digest`], [`desk::quarantine`], [`desk::replay`], [`desk::stats`],
//!   [`desk::console`] (the web console's queries: queue, ticket page, counters),
//!   [`desk::users`] (console accounts, argon2).
//! - The programs on top: [`config`] (the daemon's TOML), [`daemon`] (intake passes, the outbox
//!   sender, reconnects, shutdown), [`intake`] (a fetched batch judged on every core and
//!   recorded in one transaction), [`check`] (the `check` command), [`maintenance`] (backup,
//!   restore, retention of raw mail), [`logging`] (text, JSON lines or journald), [`web`] (the
//!   operators' web console: axum + askama over the desk functions); `main.rs` is the CLI.

pub mod check;
pub mod config;
pub mod daemon;
pub mod desk;
pub mod intake;
pub mod logging;
pub mod mail;
pub mod maintenance;
pub mod store;
pub mod verdict;
pub mod web;
