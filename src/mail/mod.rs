//! The mail edges: the mailbox read over IMAP, mail sent over SMTP, the certificate authorities
//! both trust ([`trust`]), and the texts of our replies.
//! Nothing here decides about a mail or writes the store.

pub mod auth;
pub mod imap;
pub mod replies;
pub mod smtp;
pub mod trust;
