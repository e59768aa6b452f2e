//! Sending one mail over SMTP: the message built from an [`OutgoingMail`], the envelope, the
//! transport, and the transient/permanent classification of failures.
//!
//! [`build`] is pure (no network, no clock besides the `Date` header lettre adds) so the exact
//! bytes can be unit-tested. [`Mailer`] is the only place that talks SMTP; it never retries —
//! the caller (the outbox) asks [`SendError::is_transient`] and schedules the retry.
//!
//! What this module guarantees about every message it builds:
//! - one header set: values that came from outside (subject, display name, message ids) cannot
//!   add a header line — control characters become spaces, ids with spaces or brackets are
//!   refused (our own id) or dropped (ids of the sender's mail);
//! - automatic mail carries `Auto-Submitted` (RFC 3834) and `X-Auto-Response-Suppress: All`
//!   (Exchange/Outlook), so out-of-office robots do not answer our answers;
//! - `Bcc` recipients exist only in the envelope, never in the headers.

use std::fmt;
use std::time::Duration;

use lettre::address::Envelope;

use crate::mail::trust::Trust;
use crate::store::outbox::OutgoingMail;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, Message};
use serde::Deserialize;

/// Longest subject we send, in characters (the reply templates cut to the same length).
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest message id we accept, without the angle brackets.
const MAX_ID_CHARS: usize = 250;
/// Only the newest ids of a long `References` chain are kept (RFC 5322 §3.6.4 allows trimming).
const MAX_REFERENCES: usize = 20;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, which is required (usually port 587).
    Starttls,
    /// No encryption: only for a relay on loopback.
    None,
}

#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Our address, `help@sevmiac.ru`: the `From` header, and `MAIL FROM` unless null.
    pub from: String,
    /// The display name of `From`, e.g. `СТП ГБУЗС «МИАЦ»`.
    pub from_name: Option<String>,
    /// Limit for connecting and for each SMTP command; a whole send gets four times this.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpSettings {
    // By hand so that the password never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("from", &self.from)
            .field("from_name", &self.from_name)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Why a mail was not sent. Transient: try again later. Permanent: this mail will never go.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("temporary: {0}")]
    Transient(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, SendError::Transient(_))
    }
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Permanent(_))
    }

    /// Sorts a lettre error.
    ///
    /// 4xx, network, connection, TLS and timeout errors are transient. 5xx replies are
    /// permanent, except the authentication ones (530, 534, 535, 538): those are our
    /// configuration, not this mail, and retrying after the admin fixes the password must
    /// send it. Client-side refusals are transient (a server capability such as STARTTLS or
    /// an AUTH mechanism is missing) unless they are about non-ASCII addresses in this mail.
    fn from_smtp(e: lettre::transport::smtp::Error) -> SendError {
        let text = error_chain(&e);
        if let Some(code) = e.status() {
            let code = u16::from(code);
            if e.is_permanent() && !matches!(code, 530 | 534 | 535 | 538) {
                return SendError::Permanent(text);
            }
            return SendError::Transient(text);
        }
        if e.is_client() && text.contains("non-ascii") {
            return SendError::Permanent(text);
        }
        SendError::Transient(text)
    }
}

/// `e` and its sources, joined; lettre's Display already names the first source.
fn error_chain(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e).and_then(|s| s.source());
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One line of header text: control characters (CR, LF, TAB, …) become spaces, runs of spaces
/// collapse, and the result is cut to `max_chars` characters (an ellipsis marks the cut).
pub fn header_text(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 4));
    let mut space = false;
    for c in s.chars() {
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    truncate_chars(&out, max_chars)
}

/// `s` cut to at most `max_chars` characters, with `…` as the last one when cut.
pub(crate) fn truncate_chars(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_string();
    }
    if max_chars == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max_chars - 1).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// A message id as it may stand between `<` and `>`: printable ASCII, no spaces or brackets.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'))
}

/// Accepts `a@b`, ` a@b `, or `<a@b>`; nothing else.
fn parse_address(what: &str, s: &str) -> Result<Address, SendError> {
    let t = s.trim();
    let t = t
        .strip_prefix('<')
        .and_then(|x| x.strip_suffix('>'))
        .unwrap_or(t);
    t.parse::<Address>()
        .map_err(|e| SendError::Permanent(format!("{what} address {s:?} is invalid: {e}")))
}

fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
}

/// Builds the message and its envelope. Pure apart from the `Date` header.
///
/// Permanent errors: an invalid `to` or `from` address, or an invalid own `message_id`.
/// Invalid ids of the answered thread and invalid `bcc` addresses are left out (they come
/// from the sender's mail or from a copy setting and must not stop the answer).
pub fn build(mail: &OutgoingMail, s: &SmtpSettings) -> Result<Message, SendError> {
    let from = parse_address("sender", &s.from)?;
    let to = parse_address("recipient", &mail.to)?;
    if !valid_id(&mail.message_id) || !mail.message_id.contains('@') {
        return Err(SendError::Permanent(format!(
            "own Message-ID {:?} is not of the form left@right in printable ASCII",
            mail.message_id
        )));
    }

    let from_name = s
        .from_name
        .as_deref()
        .map(|n| header_text(n, 100))
        .filter(|n| !n.is_empty());
    let mut builder = Message::builder()
        .from(Mailbox::new(from_name, from.clone()))
        .to(Mailbox::new(None, to.clone()))
        .subject(header_text(&mail.subject, MAX_SUBJECT_CHARS))
        .message_id(Some(format!("<{}>", mail.message_id)));

    let in_reply_to = mail
        .in_reply_to
        .as_deref()
        .map(str::trim)
        .filter(|id| valid_id(id));
    if let Some(id) = in_reply_to {
        builder = builder.in_reply_to(format!("<{id}>"));
    }
    let mut refs: Vec<&str> = Vec::new();
    for id in mail.references.iter().map(|r| r.trim()).chain(in_reply_to) {
        if valid_id(id) && !refs.contains(&id) {
            refs.push(id);
        }
    }
    if !refs.is_empty() {
        let keep = &refs[refs.len().saturating_sub(MAX_REFERENCES)..];
        let joined: Vec<String> = keep.iter().map(|id| format!("<{id}>")).collect();
        builder = builder.references(joined.join(" "));
    }

    if let Some(v) = mail.auto_submitted.header_value() {
        builder = builder
            .raw_header(raw_header("Auto-Submitted", v))
            .raw_header(raw_header("X-Auto-Response-Suppress", "All"));
    }
    builder = builder.raw_header(raw_header("X-Mailer", "mailintake"));

    let mut rcpt = vec![to];
    for b in &mail.bcc {
        match parse_address("copy", b) {
            Ok(a) if !rcpt.contains(&a) => rcpt.push(a),
            Ok(_) => {}
            Err(e) => tracing::warn!(message_id = %mail.message_id, "copy left out: {e}"),
        }
    }
    let reverse_path = if mail.null_sender { None } else { Some(from) };
    let envelope = Envelope::new(reverse_path, rcpt)
        .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
    builder = builder.envelope(envelope);

    let built = match &mail.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
        None => builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone()),
    };
    built.map_err(|e| SendError::Permanent(format!("message: {e}")))
}

/// Sends mail over one SMTP server. Cheap to share behind an `Arc`.
///
/// The connection is ours, not lettre's: lettre writes the message and its closing
/// `\r\n.\r\n` in two writes on a socket without `TCP_NODELAY`, so Nagle holds the dot until
/// the server's delayed ACK (~40 ms) — 45 ms a reply. We open the TCP stream ourselves with
/// `TCP_NODELAY` and hand it to lettre's [`AsyncSmtpConnection`].
///
/// One connection serves a [`SmtpSession`] (the outbox sender opens one per round of due
/// mail) and is closed with it: a connection kept open between rounds would go on with the
/// configuration its server had when it opened (Postfix's smtpd keeps its settings for the
/// session), and the desk's rounds are minutes apart outside a backlog.
pub struct Mailer {
    settings: SmtpSettings,
    /// The roots the server's certificate is checked against (system + `smtp.ca_file`).
    trust: Trust,
    tls: Option<TlsParameters>,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("settings", &self.settings)
            .finish()
    }
}

/// Mails sent over one connection before it is replaced by a fresh one.
const MAILS_PER_CONNECTION: usize = 100;

impl Mailer {
    /// Checks the settings; connects only on the first [`send`](Mailer::send).
    pub fn new(s: &SmtpSettings) -> Result<Mailer, SendError> {
        Mailer::with_trust(s, Trust::system())
    }

    /// [`Mailer::new`] trusting these roots (the system's plus `smtp.ca_file`).
    pub fn with_trust(s: &SmtpSettings, trust: Trust) -> Result<Mailer, SendError> {
        let tls = check_settings(s, &trust)?;
        parse_address("sender", &s.from)?;
        Ok(Mailer {
            settings: s.clone(),
            trust,
            tls,
        })
    }

    /// A TLS failure as an administrator can act on it: which server, the reason, and where the
    /// CA goes when the certificate's issuer is unknown.
    fn tls_error(&self, reason: &str) -> SendError {
        // lettre repeats its layers ("Connection error: Connection error: …"): each distinct
        // part once.
        let mut parts: Vec<&str> = Vec::new();
        for p in reason.split(": ") {
            if !parts.contains(&p) {
                parts.push(p);
            }
        }
        SendError::Transient(format!(
            "TLS with {}:{}: {}; {}",
            self.settings.host,
            self.settings.port,
            parts.join(": "),
            self.trust.hint("smtp")
        ))
    }

    /// Sends one mail over a connection of its own. Never retries; see [`SendError`] for what
    /// to do on failure.
    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let mut session = self.session();
        let result = session.send(mail).await;
        session.close().await;
        result
    }

    /// A session: its mails share one connection (opened on the first send, reopened after an
    /// error). Close it when the round is over.
    pub fn session(&self) -> SmtpSession<'_> {
        SmtpSession {
            mailer: self,
            conn: None,
            sent_on_conn: 0,
        }
    }

    /// A new, greeted (and, as configured, encrypted and authenticated) connection.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let s = &self.settings;
        let transient = |what: &str, e: &dyn fmt::Display| {
            SendError::Transient(format!("{what} {}:{}: {e}", s.host, s.port))
        };
        let host = s.host.trim().trim_start_matches('[').trim_end_matches(']');
        let tcp = tokio::time::timeout(s.timeout, tokio::net::TcpStream::connect((host, s.port)))
            .await
            .map_err(|_| transient("connecting to", &"timed out"))?
            .map_err(|e| transient("connecting to", &e))?;
        // The reason this connection is ours: see the type's documentation.
        tcp.set_nodelay(true)
            .map_err(|e| transient("TCP_NODELAY on", &e))?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match s.security {
            SmtpSecurity::Tls => {
                let config = self
                    .trust
                    .rustls_config()
                    .map_err(|e| SendError::Permanent(format!("SMTP settings: {e}")))?;
                let name = rustls::pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| SendError::Permanent(format!("SMTP settings: {host}: {e}")))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| {
                        let reason = e.to_string();
                        if reason.contains("certificate") {
                            self.tls_error(&reason)
                        } else {
                            transient("TLS with", &reason)
                        }
                    })?;
                Box::new(TlsWire(Box::new(tls)))
            }
            SmtpSecurity::Starttls | SmtpSecurity::None => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello)
            .await
            .map_err(SendError::from_smtp)?;
        if s.security == SmtpSecurity::Starttls {
            let params = self.tls.clone().ok_or_else(|| {
                SendError::Permanent("SMTP settings: no TLS parameters for STARTTLS".into())
            })?;
            conn.starttls(params, &hello).await.map_err(|e| {
                if e.is_tls() || error_chain(&e).contains("certificate") {
                    self.tls_error(&error_chain(&e))
                } else {
                    SendError::from_smtp(e)
                }
            })?;
        }
        if let Some(user) = &s.username {
            let credentials =
                Credentials::new(user.clone(), s.password.clone().unwrap_or_default());
            conn.auth(DEFAULT_MECHANISMS, &credentials)
                .await
                .map_err(SendError::from_smtp)?;
        }
        Ok(conn)
    }
}

/// Mails sent over one SMTP connection; see [`Mailer::session`].
pub struct SmtpSession<'a> {
    mailer: &'a Mailer,
    conn: Option<AsyncSmtpConnection>,
    sent_on_conn: usize,
}

impl SmtpSession<'_> {
    /// Sends one mail. Never retries; see [`SendError`] for what to do on failure. After an
    /// error the connection is dropped and the next mail opens a new one.
    pub async fn send(&mut self, mail: &OutgoingMail) -> Result<(), SendError> {
        let message = build(mail, &self.mailer.settings)?;
        let limit = self.mailer.settings.timeout.saturating_mul(4);
        let result = match tokio::time::timeout(limit, self.send_message(&message)).await {
            Ok(r) => r,
            Err(_) => Err(SendError::Transient(format!(
                "sending took longer than {} s",
                limit.as_secs()
            ))),
        };
        match &result {
            Ok(code) => {
                tracing::debug!(
                    message_id = %mail.message_id,
                    code = %code,
                    "mail accepted by the SMTP server"
                );
                self.sent_on_conn += 1;
            }
            Err(_) => {
                // lettre has already aborted a connection that saw an error reply; a timeout
                // leaves it in an unknown state. Either way, the next mail starts afresh.
                if let Some(mut conn) = self.conn.take() {
                    conn.abort().await;
                }
            }
        }
        result.map(|_| ())
    }

    async fn send_message(&mut self, message: &Message) -> Result<String, SendError> {
        let stale = self
            .conn
            .as_ref()
            .is_some_and(|c| c.has_broken() || self.sent_on_conn >= MAILS_PER_CONNECTION);
        if stale {
            self.close_conn().await;
        }
        if self.conn.is_none() {
            self.conn = Some(self.mailer.connect().await?);
            self.sent_on_conn = 0;
        }
        let conn = self.conn.as_mut().expect("connected just above");
        let response = conn
            .send(message.envelope(), &message.formatted())
            .await
            .map_err(SendError::from_smtp)?;
        Ok(response.code().to_string())
    }

    async fn close_conn(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            if !conn.has_broken() {
                let _ = conn.quit().await;
            }
        }
    }

    /// QUIT, and the connection is closed.
    pub async fn close(mut self) {
        let limit = self.mailer.settings.timeout;
        let _ = tokio::time::timeout(limit, self.close_conn()).await;
    }
}

/// Implicit TLS (SMTPS) over our own TCP stream, in the shape lettre takes an existing stream.
#[derive(Debug)]
struct TlsWire(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>);

impl AsyncTokioStream for TlsWire {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsWire {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.0.as_mut()).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsWire {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(self.0.as_mut()).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.0.as_mut()).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(self.0.as_mut()).poll_shutdown(cx)
    }
}

/// Checks the settings; returns the TLS parameters STARTTLS will need.
fn check_settings(s: &SmtpSettings, trust: &Trust) -> Result<Option<TlsParameters>, SendError> {
    let config = |m: String| SendError::Permanent(format!("SMTP settings: {m}"));
    if s.host.trim().is_empty() {
        return Err(config("host is empty".into()));
    }
    let tls = |host: &str| {
        trust
            .lettre_parameters(host)
            .map_err(|e| config(format!("TLS for {host}: {e}")))
    };
    match s.security {
        SmtpSecurity::Tls => {
            let host = s.host.trim().trim_start_matches('[').trim_end_matches(']');
            rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| config(format!("TLS for {host}: {e}")))?;
            Ok(None)
        }
        SmtpSecurity::Starttls => Ok(Some(tls(&s.host)?)),
        SmtpSecurity::None => {
            if s.username.is_some() && !is_loopback(&s.host) {
                return Err(config(format!(
                    "security \"none\" would send the password in clear text to {}; use tls or starttls",
                    s.host
                )));
            }
            Ok(None)
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim().trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::AutoSubmitted;
    use mail_parser::MessageParser;

    fn settings() -> SmtpSettings {
        SmtpSettings {
            host: "127.0.0.1".into(),
            port: 25,
            security: SmtpSecurity::None,
            username: None,
            password: None,
            from: "help@sevmiac.ru".into(),
            from_name: Some("СТП ГБУЗС «МИАЦ»".into()),
            timeout: Duration::from_secs(5),
        }
    }

    fn reply() -> OutgoingMail {
        OutgoingMail {
            message_id: "mailintake.123.r1.ab12cd@sevmiac.ru".into(),
            to: "t.ivanova@sev.gov.ru".into(),
            subject: "[Заявка #123] Не открывается расписание".into(),
            text: "Здравствуйте!\n\nВаша заявка № 123 зарегистрирована.\n".into(),
            html: None,
            in_reply_to: Some("CAF1234@mail.sev.gov.ru".into()),
            references: vec!["older@mail.sev.gov.ru".into()],
            auto_submitted: AutoSubmitted::AutoReplied,
            null_sender: true,
            bcc: vec!["help@sevmiac.ru".into()],
        }
    }

    fn header_block(bytes: &[u8]) -> String {
        let s = String::from_utf8(bytes.to_vec()).expect("the built message is ASCII");
        let end = s.find("\r\n\r\n").expect("headers end with an empty line");
        s[..end + 2].to_string()
    }

    /// Names of the header fields, one per field (continuation lines skipped).
    fn header_names(bytes: &[u8]) -> Vec<String> {
        header_block(bytes)
            .split("\r\n")
            .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
            .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn build_writes_the_reply_headers() {
        let msg = build(&reply(), &settings()).unwrap();
        let bytes = msg.formatted();
        assert!(bytes.is_ascii(), "headers and body are encoded to ASCII");
        let head = header_block(&bytes);
        assert!(
            head.contains("Message-ID: <mailintake.123.r1.ab12cd@sevmiac.ru>\r\n"),
            "{head}"
        );
        assert!(
            head.contains("In-Reply-To: <CAF1234@mail.sev.gov.ru>\r\n"),
            "{head}"
        );
        assert!(
            head.contains("References: <older@mail.sev.gov.ru> <CAF1234@mail.sev.gov.ru>\r\n"),
            "{head}"
        );
        assert!(head.contains("Auto-Submitted: auto-replied\r\n"), "{head}");
        assert!(head.contains("X-Auto-Response-Suppress: All\r\n"), "{head}");
        assert!(head.contains("X-Mailer: mailintake\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{head}"
        );
        assert!(head.contains("Date: "), "{head}");
        assert!(
            head.contains("Subject: =?utf-8?"),
            "Cyrillic subject is RFC 2047-encoded: {head}"
        );
        let names = header_names(&bytes);
        assert!(!names.contains(&"bcc".to_string()), "{names:?}");

        let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("[Заявка #123] Не открывается расписание")
        );
        let from = parsed.from().unwrap().first().unwrap();
        assert_eq!(from.name(), Some("СТП ГБУЗС «МИАЦ»"));
        assert_eq!(from.address(), Some("help@sevmiac.ru"));
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address(),
            Some("t.ivanova@sev.gov.ru")
        );
        assert_eq!(
            parsed.message_id(),
            Some("mailintake.123.r1.ab12cd@sevmiac.ru")
        );
        assert_eq!(
            parsed.in_reply_to().as_text(),
            Some("CAF1234@mail.sev.gov.ru")
        );
        assert_eq!(
            parsed.body_text(0).unwrap().replace("\r\n", "\n"),
            "Здравствуйте!\n\nВаша заявка № 123 зарегистрирована.\n"
        );
        assert!(parsed.bcc().is_none());
    }

    #[test]
    fn null_sender_empties_the_envelope_sender_and_bcc_is_only_in_the_envelope() {
        let msg = build(&reply(), &settings()).unwrap();
        assert!(msg.envelope().from().is_none());
        let to: Vec<String> = msg.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(to, ["t.ivanova@sev.gov.ru", "help@sevmiac.ru"]);

        let mut m = reply();
        m.null_sender = false;
        m.bcc.clear();
        let msg = build(&m, &settings()).unwrap();
        assert_eq!(
            msg.envelope().from().unwrap().to_string(),
            "help@sevmiac.ru"
        );
        assert_eq!(msg.envelope().to().len(), 1);
    }

    #[test]
    fn a_subject_with_crlf_cannot_add_a_header() {
        let mut m = reply();
        m.subject = "Ошибка\r\nBcc: evil@example.com\r\nX-Injected: 1".into();
        let mut s = settings();
        s.from_name = Some("СТП\r\nBcc: evil2@example.com".into());
        let msg = build(&m, &s).unwrap();
        let bytes = msg.formatted();
        let names = header_names(&bytes);
        for n in ["bcc", "x-injected"] {
            assert!(!names.contains(&n.to_string()), "{n} in {names:?}");
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "every header once: {names:?}");
        assert_eq!(msg.envelope().to().len(), 2, "no extra envelope recipient");
        let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
        assert_eq!(
            parsed.subject(),
            Some("Ошибка Bcc: evil@example.com X-Injected: 1")
        );
        assert!(parsed.bcc().is_none());
    }

    #[test]
    fn bad_addresses_and_ids() {
        let mut m = reply();
        m.to = "t.ivanova@sev.gov.ru\r\nBcc: evil@example.com".into();
        assert!(build(&m, &settings()).unwrap_err().is_permanent());

        let mut m = reply();
        m.message_id = "has space@sevmiac.ru".into();
        assert!(build(&m, &settings()).unwrap_err().is_permanent());

        // The sender's ids are data from outside: a bad one is dropped, the answer still goes.
        let mut m = reply();
        m.in_reply_to = Some("bad id>\r\nX-Evil: 1".into());
        m.references = vec!["ok@x".into(), "also bad".into()];
        m.bcc = vec!["not an address".into()];
        let msg = build(&m, &settings()).unwrap();
        let head = header_block(&msg.formatted());
        assert!(!head.contains("In-Reply-To"), "{head}");
        assert!(head.contains("References: <ok@x>\r\n"), "{head}");
        assert!(!head.contains("X-Evil"), "{head}");
        assert_eq!(msg.envelope().to().len(), 1);
    }

    #[test]
    fn person_mail_has_no_auto_headers_and_notifications_are_auto_generated() {
        let mut m = reply();
        m.auto_submitted = AutoSubmitted::No;
        let head = header_block(&build(&m, &settings()).unwrap().formatted());
        assert!(!head.contains("Auto-Submitted"), "{head}");
        assert!(!head.contains("X-Auto-Response-Suppress"), "{head}");

        m.auto_submitted = AutoSubmitted::AutoGenerated;
        let head = header_block(&build(&m, &settings()).unwrap().formatted());
        assert!(
            head.contains("Auto-Submitted: auto-generated\r\n"),
            "{head}"
        );
    }

    #[test]
    fn html_makes_multipart_alternative() {
        let mut m = reply();
        m.html = Some("<p>Сводка за день</p>".into());
        let bytes = build(&m, &settings()).unwrap().formatted();
        let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
        assert!(header_block(&bytes).contains("multipart/alternative"));
        assert!(parsed.body_html(0).unwrap().contains("Сводка за день"));
        assert!(parsed.body_text(0).unwrap().contains("зарегистрирована"));
    }

    #[test]
    fn long_subject_is_cut_and_stays_one_line() {
        let mut m = reply();
        m.subject = "Очень длинная тема ".repeat(40);
        let bytes = build(&m, &settings()).unwrap().formatted();
        let parsed = MessageParser::default().parse(&bytes[..]).unwrap();
        let subject = parsed.subject().unwrap();
        assert_eq!(subject.chars().count(), MAX_SUBJECT_CHARS);
        assert!(subject.ends_with('…'));
    }

    #[test]
    fn outgoing_mail_round_trips_through_json() {
        let m = reply();
        let json = serde_json::to_string(&m).unwrap();
        assert!(
            json.contains("\"auto_submitted\":\"auto-replied\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<OutgoingMail>(&json).unwrap(), m);
    }

    #[test]
    fn settings_debug_hides_the_password() {
        let mut s = settings();
        s.password = Some("s3cret".into());
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn clear_text_password_to_a_remote_host_is_refused() {
        let mut s = settings();
        s.host = "smtp.sevmiac.ru".into();
        s.username = Some("help".into());
        assert!(Mailer::new(&s).unwrap_err().is_permanent());
        s.security = SmtpSecurity::Starttls;
        assert!(Mailer::new(&s).is_ok());
    }

    #[test]
    fn a_used_mailer_can_be_dropped_after_its_runtime() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = settings();
        s.port = port;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let mailer = runtime.block_on(async {
            let mailer = Mailer::new(&s).unwrap();
            let _ = mailer.send(&reply()).await; // builds the transport and its pool
            mailer
        });
        drop(runtime);
        drop(mailer); // lettre's pool spawns a task on drop; without a runtime that panics
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        // Bind and drop: the port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = settings();
        s.port = port;
        let err = Mailer::new(&s).unwrap().send(&reply()).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_as_transient() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(sock);
        });
        let mut s = settings();
        s.port = port;
        s.timeout = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = Mailer::new(&s).unwrap().send(&reply()).await.unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3));
        hold.abort();
    }
}
