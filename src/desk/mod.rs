//! The support desk over the store: operators' steps (reg. 4.5–4.10), the ticket views, the working
//! calendar, digests, quarantine, replay and statistics. The CLI and the web console call these;
//! neither writes SQL of its own.

pub mod calendar;
pub mod console;
pub mod digest;
pub mod quarantine;
pub mod replay;
pub mod stats;
pub mod tickets;
pub mod users;
pub mod workflow;
