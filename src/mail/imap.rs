//! The IMAP edge: one authenticated connection to the support mailbox.
//!
//! Owns connecting (implicit TLS, STARTTLS, or plaintext for loopback tests), login, listing
//! the selected mailbox by UID, fetching raw mail without setting `\Seen`, setting a handled
//! mail aside into a folder, looking a Message-ID up in a folder, and waiting for new mail
//! (IDLE, or polling where the server has no IDLE) while watching the shutdown signal.
//!
//! Must never:
//! - delete mail. The only expunge it sends is `UID EXPUNGE <uid>` for a mail it has just
//!   copied elsewhere; never a plain `EXPUNGE`, which would also remove what other clients
//!   flagged `\Deleted`;
//! - log a password or any mail content (protocol steps go to `tracing` at debug level with
//!   UIDs, sizes and folder names only);
//! - wait on the network without a bound: every exchange is limited by
//!   [`ImapSettings::timeout`].
//!
//! Commands are sent and their answers read here rather than through async-imap's command
//! helpers, because those helpers end a response stream quietly at end-of-file and ignore a
//! tagged `NO`/`BAD` (a `UID FETCH` on a dropped connection returns an empty list, `NOOP`
//! returns `Ok`). async-imap still provides the framing, the response parser, `LOGIN` and the
//! IDLE handle.
//!
//! After a transport failure (I/O error, timeout, unparsable response, IDLE cut off) the
//! connection is marked broken: every later call fails at once with a transient error, and
//! the caller reconnects.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::error::Error as LibError;
use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{
    AttributeValue, Capability, MailboxDatum, MessageSection, RequestId, Response, ResponseCode,
    SectionPath, Status,
};
use async_imap::types::UnsolicitedResponse;
use async_imap::{Client, Session};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, Instant};
use tracing::debug;

use crate::mail::trust::Trust;

/// RFC 2177 lets a server drop an IDLE client after 30 minutes; re-issue well before that.
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);

/// How long `DONE` and `LOGOUT` may take when the caller is shutting down anyway.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Server texts quoted in errors are cut to this many characters.
const MAX_SERVER_TEXT: usize = 200;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// TLS from the first byte (port 993).
    Tls,
    /// Plaintext greeting, then `STARTTLS` before anything else (port 143).
    Starttls,
    /// No encryption. Only for loopback test servers; the daemon refuses it elsewhere.
    None,
}

/// Where and how to log in.
#[derive(Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
    /// Bound for connecting, for the TLS handshake and for each command's whole answer.
    pub timeout: Duration,
}

// By hand, so that a settings value in a log line never shows the password.
impl fmt::Debug for ImapSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What went wrong talking to the IMAP server.
///
/// Texts name the step, a folder or a UID, and quote at most a short server reply; never a
/// password and never mail content.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// TCP connect failed, the server refused the session, or it cannot authenticate right now.
    #[error("IMAP connect: {0}")]
    Connect(String),
    /// TLS could not be set up: certificate, handshake, or STARTTLS refused.
    #[error("IMAP TLS: {0}")]
    Tls(String),
    /// The server rejected the user name or password.
    #[error("IMAP login rejected: {0}")]
    Auth(String),
    /// The server refused a command or answered something unexpected; also bad arguments.
    #[error("IMAP protocol: {0}")]
    Protocol(String),
    /// No answer within the configured timeout.
    #[error("IMAP timeout: {0}")]
    Timeout(String),
    /// A mailbox or folder does not exist or cannot be created.
    #[error("IMAP mailbox: {0}")]
    NoMailbox(String),
    /// The connection failed or was closed.
    #[error("IMAP I/O: {0}")]
    Io(String),
}

impl ImapError {
    /// Worth reconnecting and retrying after a backoff: network trouble, timeouts, and
    /// commands the server refused or garbled (often load or a restart). Not worth it: a
    /// rejected login, a TLS failure, a missing mailbox; these need an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect(_)
            | ImapError::Io(_)
            | ImapError::Timeout(_)
            | ImapError::Protocol(_) => true,
            ImapError::Auth(_) | ImapError::Tls(_) | ImapError::NoMailbox(_) => false,
        }
    }

    /// The opposite of [`ImapError::is_transient`].
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
}

/// The server extensions this client uses, read after login.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    /// RFC 2177: push notification of new mail.
    pub idle: bool,
    /// RFC 6851: atomic `UID MOVE`.
    pub move_: bool,
    /// RFC 4315: `UID EXPUNGE` of single UIDs.
    pub uidplus: bool,
}

/// One mail in the selected mailbox, as listed (metadata only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailInfo {
    pub uid: u32,
    /// RFC822.SIZE in bytes.
    pub size: u64,
    /// INTERNALDATE (arrival in the mailbox) as Unix seconds; `None` if the server's text
    /// could not be read.
    pub internal_date: Option<i64>,
    /// Flags and keywords as the server spells them, e.g. `\Seen`, `$Forwarded`.
    pub flags: Vec<String>,
}

/// How a mail was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// `UID MOVE` to the folder.
    Moved,
    /// `UID COPY` to the folder, then `\Deleted` and `UID EXPUNGE` of that one UID.
    CopiedAndExpunged,
    /// The server can do neither: the mail stays in the mailbox with the keyword set.
    Flagged,
}

/// Why [`ImapConn::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server announced new mail (or it was announced earlier and not yet reported).
    NewMail,
    /// `idle_for` passed without news; the caller lists anyway and waits again.
    Timeout,
    /// The shutdown signal was raised (or its sender dropped).
    Shutdown,
}

/// Builds the TLS client configuration: ring as the crypto provider, named explicitly, and
/// the system's trust store (see [`crate::mail::trust`]).
///
/// Naming the provider matters: `ClientConfig::builder()` picks a process-wide default and
/// panics when two providers (ring and aws-lc-rs) are compiled into one binary.
pub fn tls_client_config() -> Result<Arc<rustls::ClientConfig>, ImapError> {
    Trust::system().rustls_config().map_err(ImapError::Tls)
}

/// True if `keyword` can be stored as an IMAP keyword (an atom, RFC 3501 `flag-keyword`).
/// Lets the configuration check the keyword at load time.
pub fn is_valid_keyword(keyword: &str) -> bool {
    !keyword.is_empty()
        && keyword
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"(){%*\"\\]".contains(&b))
}

/// The byte stream under the IMAP session: plain TCP or TLS over TCP.
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type ImapSession = Session<Transport>;

/// Empties async-imap's bounded channel of unsolicited responses (it drops new ones when
/// full). A closure, because the channel's receiver type cannot be named from outside.
type Drain = Box<dyn FnMut() -> Vec<Untagged> + Send>;

/// An authenticated IMAP connection. Not shared: one task owns it.
pub struct ImapConn {
    /// What the server supports, read after login. Public so that tests (and a cautious
    /// operator) can switch an extension off.
    pub caps: Caps,
    /// `None` once broken or handed to the IDLE handle.
    session: Option<ImapSession>,
    drain: Drain,
    timeout: Duration,
    /// The mailbox opened with SELECT (read-write), as the caller named it.
    selected: Option<String>,
    /// The server's message count of the selected mailbox, as last told.
    exists: u32,
    /// The server's \Recent count of the selected mailbox, as last told.
    recent: u32,
    /// The server has told of mail that no `list` has returned yet.
    new_mail: bool,
}

impl fmt::Debug for ImapConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapConn")
            .field("caps", &self.caps)
            .field("connected", &self.session.is_some())
            .field("selected", &self.selected)
            .field("exists", &self.exists)
            .field("new_mail", &self.new_mail)
            .finish()
    }
}

impl ImapConn {
    /// Connects, protects the stream as `s.security` says, reads the greeting, logs in and
    /// reads the capabilities. Each step is bounded by `s.timeout`.
    pub async fn connect(s: &ImapSettings) -> Result<ImapConn, ImapError> {
        ImapConn::connect_trusting(s, &Trust::system()).await
    }

    /// [`ImapConn::connect`] trusting these roots (the system's plus `imap.ca_file`). A
    /// certificate that none of them issued is a [`ImapError::Tls`] naming the host, the reason
    /// and where the administrator adds the CA.
    pub async fn connect_trusting(s: &ImapSettings, trust: &Trust) -> Result<ImapConn, ImapError> {
        let config = trust.rustls_config().map_err(ImapError::Tls)?;
        match ImapConn::connect_with(s, config).await {
            Err(ImapError::Tls(m)) if m.contains("certificate") => Err(ImapError::Tls(format!(
                "{m} ({}:{}); {}",
                s.host,
                s.port,
                trust.hint("imap")
            ))),
            other => other,
        }
    }

    /// [`ImapConn::connect`] with a given TLS configuration (tests bring their own root).
    async fn connect_with(
        s: &ImapSettings,
        tls_config: Arc<rustls::ClientConfig>,
    ) -> Result<ImapConn, ImapError> {
        let t = s.timeout;
        let tcp = match timeout(t, TcpStream::connect((s.host.as_str(), s.port))).await {
            Err(_) => {
                return Err(ImapError::Timeout(format!(
                    "connecting to {}:{} took longer than {t:?}",
                    s.host, s.port
                )))
            }
            Ok(Err(e)) => {
                return Err(ImapError::Connect(format!("{}:{}: {e}", s.host, s.port)));
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        debug!(host = %s.host, port = s.port, security = ?s.security, "IMAP: TCP connected");

        let client = match s.security {
            Security::None => {
                let mut client = Client::new(Transport::Plain(tcp));
                read_greeting(&mut client, t).await?;
                client
            }
            Security::Tls => {
                let tls = tls_handshake(tcp, &s.host, t, tls_config.clone()).await?;
                let mut client = Client::new(Transport::Tls(Box::new(tls)));
                read_greeting(&mut client, t).await?;
                client
            }
            Security::Starttls => {
                let mut client = Client::new(Transport::Plain(tcp));
                read_greeting(&mut client, t).await?;
                match timeout(t, client.run_command_and_check_ok("STARTTLS", None)).await {
                    Err(_) => return Err(ImapError::Timeout("no answer to STARTTLS".into())),
                    Ok(Err(LibError::No(m) | LibError::Bad(m))) => {
                        return Err(ImapError::Tls(format!(
                            "the server refused STARTTLS: {}",
                            lib_text(&m)
                        )))
                    }
                    Ok(Err(e)) => return Err(lib_error(e)),
                    Ok(Ok(())) => {}
                }
                // Whatever the server sent after its OK is dropped with the old client: bytes
                // that arrive before the handshake must not be trusted (CVE-2011-0411 style).
                let Transport::Plain(tcp) = client.into_inner() else {
                    unreachable!("STARTTLS starts from a plain stream")
                };
                let tls = tls_handshake(tcp, &s.host, t, tls_config.clone()).await?;
                // No second greeting after STARTTLS (RFC 3501 6.2.1).
                Client::new(Transport::Tls(Box::new(tls)))
            }
        };

        let session = match timeout(t, client.login(&s.username, &s.password)).await {
            Err(_) => {
                return Err(ImapError::Timeout(format!(
                    "no answer to LOGIN within {t:?}"
                )))
            }
            Ok(Err((e, _client))) => return Err(login_error(e)),
            Ok(Ok(session)) => session,
        };
        debug!(user = %s.username, "IMAP: logged in");

        let receiver = session.unsolicited_responses.clone();
        let drain: Drain = Box::new(move || {
            let mut out = Vec::new();
            while let Ok(u) = receiver.try_recv() {
                out.push(digest_unsolicited(u));
            }
            out
        });
        let mut conn = ImapConn {
            caps: Caps::default(),
            session: Some(session),
            drain,
            timeout: t,
            selected: None,
            exists: 0,
            recent: 0,
            new_mail: false,
        };
        conn.caps = conn.read_caps().await?;
        debug!(caps = ?conn.caps, "IMAP: capabilities");
        Ok(conn)
    }

    /// Opens `mailbox` read-write and returns its UIDVALIDITY.
    pub async fn select(&mut self, mailbox: &str) -> Result<u32, ImapError> {
        let uidvalidity = self.open(mailbox).await?;
        // A fresh baseline: whatever is there now, the caller lists next.
        self.new_mail = false;
        Ok(uidvalidity)
    }

    /// Lists every mail of the selected mailbox with one `UID FETCH 1:*`, in UID order.
    /// An empty mailbox gives an empty list.
    pub async fn list(&mut self) -> Result<Vec<MailInfo>, ImapError> {
        self.require_selected("list")?;
        let reply = self
            .run("UID FETCH 1:* (UID RFC822.SIZE INTERNALDATE FLAGS)")
            .await?;
        reply.check("UID FETCH")?;
        // Our FETCH answers carry the size; unsolicited ones (another client changed flags)
        // do not.
        let ours = |u: &Untagged| {
            matches!(
                u,
                Untagged::Fetch(FetchData {
                    uid: Some(_),
                    size: Some(_),
                    ..
                })
            )
        };
        let covered = reply.data.iter().rposition(ours).map_or(0, |i| i + 1);
        let mut data = reply.data;
        let late = data.split_off(covered);
        let mut by_uid = BTreeMap::new();
        for u in data {
            match u {
                Untagged::Fetch(FetchData {
                    uid: Some(uid),
                    size: Some(size),
                    internal_date,
                    flags,
                    ..
                }) => {
                    let info = MailInfo {
                        uid,
                        size: u64::from(size),
                        internal_date: internal_date.as_deref().and_then(parse_internal_date),
                        flags: flags.unwrap_or_default(),
                    };
                    by_uid.insert(uid, info);
                }
                Untagged::Recent(n) => self.recent = n,
                _ => {}
            }
        }
        // The listing is the new baseline; only counts announced after the last listed mail
        // can tell of mail it does not include. Resetting here also keeps a count that went
        // wrong (a notice lost in a full channel) from waking the caller forever.
        self.exists = u32::try_from(by_uid.len()).unwrap_or(u32::MAX);
        self.new_mail = false;
        self.observe(&late);
        debug!(mailbox = ?self.selected, count = by_uid.len(), "IMAP: listed");
        Ok(by_uid.into_values().collect())
    }

    /// The whole mail as stored (`UID FETCH uid BODY.PEEK[]`: `\Seen` is not set).
    /// `None` if no mail has that UID any more.
    pub async fn fetch_raw(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let found = self.fetch_section(uid, "BODY.PEEK[]", |f| f.body).await?;
        debug!(
            uid,
            bytes = found.as_ref().map(Vec::len),
            "IMAP: fetched mail"
        );
        Ok(found)
    }

    /// Several mails in one `UID FETCH set BODY.PEEK[]` (a backlog costs one round trip per
    /// batch, not per mail). Mails that vanished meanwhile are simply absent from the result.
    pub async fn fetch_raw_many(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        self.require_selected("fetch")?;
        let set = uid_set(uids);
        let reply = self.run(&format!("UID FETCH {set} BODY.PEEK[]")).await?;
        self.observe(&reply.data);
        reply.check("UID FETCH")?;
        let mut out: Vec<(u32, Vec<u8>)> = reply
            .data
            .into_iter()
            .filter_map(|u| match u {
                Untagged::Fetch(f) => {
                    let uid = f.uid?;
                    f.body.map(|b| (uid, b))
                }
                _ => None,
            })
            .filter(|(uid, _)| uids.contains(uid))
            .collect();
        out.sort_by_key(|(uid, _)| *uid);
        out.dedup_by_key(|(uid, _)| *uid);
        debug!(asked = uids.len(), got = out.len(), "IMAP: fetched mails");
        Ok(out)
    }

    /// The header of the mail (`BODY.PEEK[HEADER]`, with the blank line that ends it).
    /// `None` if no mail has that UID any more.
    pub async fn fetch_header(&mut self, uid: u32) -> Result<Option<Vec<u8>>, ImapError> {
        let found = self
            .fetch_section(uid, "BODY.PEEK[HEADER]", |f| f.header)
            .await?;
        debug!(
            uid,
            bytes = found.as_ref().map(Vec::len),
            "IMAP: fetched header"
        );
        Ok(found)
    }

    /// Creates the folder unless `LIST` shows it; a concurrent creation is fine. A new folder
    /// is also subscribed, so that people see it in their mail programs.
    pub async fn ensure_folder(&mut self, name: &str) -> Result<(), ImapError> {
        if self.folder_exists(name).await? {
            return Ok(());
        }
        let wire = mailbox_name(name)?;
        let reply = self.run(&format!("CREATE {}", quote(&wire))).await?;
        self.observe(&reply.data);
        match reply.status {
            ReplyStatus::Ok => {}
            ReplyStatus::No if reply.text.contains("[ALREADYEXISTS]") => return Ok(()),
            ReplyStatus::No => {
                return Err(ImapError::NoMailbox(format!(
                    "cannot create folder {name:?}: {}",
                    reply.text
                )))
            }
            ReplyStatus::Bad => return Err(reply.refused("CREATE")),
        }
        debug!(folder = name, "IMAP: folder created");
        let reply = self.run(&format!("SUBSCRIBE {}", quote(&wire))).await?;
        self.observe(&reply.data);
        if reply.status != ReplyStatus::Ok {
            debug!(
                folder = name,
                "IMAP: SUBSCRIBE refused; the folder exists all the same"
            );
        }
        Ok(())
    }

    /// Takes a handled mail out of the selected mailbox into `folder`: `UID MOVE` where the
    /// server has MOVE; else `UID COPY`, `\Deleted` and `UID EXPUNGE` of that one UID where it
    /// has UIDPLUS; else only sets `keyword` on it (and the caller skips mails carrying it).
    /// A UID that is already gone is not an error.
    pub async fn set_aside(
        &mut self,
        uid: u32,
        folder: &str,
        keyword: &str,
    ) -> Result<Moved, ImapError> {
        self.set_aside_many(&[uid], folder, keyword).await
    }

    /// [`ImapConn::set_aside`] for several mails at once: one `UID MOVE set folder` (or its
    /// fallbacks) — moving a backlog one UID at a time costs the server O(n²).
    pub async fn set_aside_many(
        &mut self,
        uids: &[u32],
        folder: &str,
        keyword: &str,
    ) -> Result<Moved, ImapError> {
        if uids.is_empty() {
            return Ok(Moved::Moved);
        }
        let uid = uid_set(uids);
        self.require_selected("set_aside")?;
        if !is_valid_keyword(keyword) {
            return Err(ImapError::Protocol(format!(
                "{keyword:?} cannot be an IMAP keyword"
            )));
        }
        let wire = quote(&mailbox_name(folder)?);
        let how = if self.caps.move_ {
            self.command_into(folder, &format!("UID MOVE {uid} {wire}"), "UID MOVE")
                .await?;
            Moved::Moved
        } else if self.caps.uidplus {
            self.command_into(folder, &format!("UID COPY {uid} {wire}"), "UID COPY")
                .await?;
            self.command(
                &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
                "UID STORE",
            )
            .await?;
            // Only this UID: a plain EXPUNGE would also remove what others marked \Deleted.
            self.command(&format!("UID EXPUNGE {uid}"), "UID EXPUNGE")
                .await?;
            Moved::CopiedAndExpunged
        } else {
            self.command(
                &format!("UID STORE {uid} +FLAGS.SILENT ({keyword})"),
                "UID STORE",
            )
            .await?;
            Moved::Flagged
        };
        debug!(uids = uids.len(), folder, how = ?how, "IMAP: set aside");
        Ok(how)
    }

    /// Whether a mail with this Message-ID (with or without angle brackets) is in `folder`.
    /// A folder that does not exist holds nothing: `false`.
    ///
    /// IMAP searches only the selected mailbox, so this `EXAMINE`s the folder (read-only: no
    /// flag changes there), runs `UID SEARCH HEADER Message-ID "<id>"`, and `SELECT`s the
    /// previously selected mailbox again. New-mail notices for that mailbox are not lost: a
    /// message count that grew meanwhile makes the next [`ImapConn::wait`] return `NewMail`.
    /// If the re-SELECT fails, the connection is marked broken (nothing would be selected).
    pub async fn find_message_id(
        &mut self,
        folder: &str,
        message_id: &str,
    ) -> Result<bool, ImapError> {
        let query = format!(
            "UID SEARCH HEADER Message-ID {}",
            quote(&message_id_for_search(message_id)?)
        );
        if self.selected.as_deref() == Some(folder) {
            let reply = self.run(&query).await?;
            self.observe(&reply.data);
            reply.check("UID SEARCH")?;
            return Ok(search_hit(&reply.data));
        }
        if !self.folder_exists(folder).await? {
            return Ok(false);
        }
        let previous = self.selected.take();
        let (exists_before, recent_before) = (self.exists, self.recent);
        let found = self.search_elsewhere(folder, &query).await;
        if self.session.is_none() {
            // A transport failure: nothing to restore, the caller reconnects.
            return found;
        }
        if let Some(mailbox) = previous {
            if let Err(e) = self.open(&mailbox).await {
                self.session = None;
                return Err(e);
            }
            if self.exists > exists_before || self.recent > recent_before {
                self.new_mail = true;
            }
        }
        let found = found?;
        debug!(folder, found, "IMAP: Message-ID looked up");
        Ok(found)
    }

    /// Stores `raw` as a new mail in `folder` (for tests and tools).
    pub async fn append(&mut self, folder: &str, raw: &[u8]) -> Result<(), ImapError> {
        let wire = mailbox_name(folder)?;
        self.drain_unsolicited();
        let t = self.timeout;
        let session = self.session.as_mut().ok_or_else(broken)?;
        let reply = match timeout(t, append_exchange(session, &wire, raw)).await {
            Err(_) => Err(ImapError::Timeout(format!(
                "no answer to APPEND within {t:?}"
            ))),
            Ok(r) => r,
        };
        let reply = self.settle(reply)?;
        self.observe(&reply.data);
        if reply.status == ReplyStatus::No && reply.text.contains("[TRYCREATE]") {
            return Err(ImapError::NoMailbox(format!(
                "folder {folder:?} does not exist"
            )));
        }
        reply.check("APPEND")?;
        debug!(folder, bytes = raw.len(), "IMAP: appended");
        Ok(())
    }

    /// Waits until new mail is announced, `idle_for` passes (capped at 25 minutes), or the
    /// shutdown signal is raised.
    ///
    /// With IDLE: sends `IDLE` and watches the server, the clock and `shutdown` together;
    /// after the wait it sends `DONE` and reads the tagged answer within the command
    /// timeout. So a server that went silent (a dead peer sends no FIN) makes this return an
    /// error no later than `idle_for + timeout`, and a closed connection ends it at once.
    /// Without IDLE: sleeps `idle_for` watching `shutdown`, then sends `NOOP` (the same
    /// liveness check) and reports what it announced.
    ///
    /// Mail announced earlier during other commands, and not yet listed, gives `NewMail` at
    /// once. A dropped shutdown sender counts as shutdown.
    pub async fn wait(
        &mut self,
        idle_for: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Wake, ImapError> {
        if *shutdown.borrow_and_update() {
            return Ok(Wake::Shutdown);
        }
        if self.session.is_none() {
            return Err(broken());
        }
        self.drain_unsolicited();
        if self.new_mail {
            self.new_mail = false;
            return Ok(Wake::NewMail);
        }
        let idle_for = idle_for.min(MAX_IDLE);
        if self.caps.idle && self.selected.is_some() {
            self.idle(idle_for, shutdown).await
        } else {
            self.poll(idle_for, shutdown).await
        }
    }

    /// `NOOP`: proves the connection alive and collects news about the selected mailbox.
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let reply = self.run("NOOP").await?;
        self.observe(&reply.data);
        reply.check("NOOP")
    }

    /// Says goodbye politely if the connection still works; errors do not matter here.
    pub async fn logout(mut self) {
        if self.session.is_some() {
            self.timeout = self.timeout.min(GOODBYE_TIMEOUT);
            let _ = self.run("LOGOUT").await;
        }
        debug!("IMAP: logged out");
    }

    // ---------------------------------------------------------------- internals

    async fn read_caps(&mut self) -> Result<Caps, ImapError> {
        let reply = self.run("CAPABILITY").await?;
        reply.check("CAPABILITY")?;
        let mut caps = Caps::default();
        for u in &reply.data {
            if let Untagged::Capabilities(list) = u {
                for c in list {
                    caps.idle |= c.eq_ignore_ascii_case("IDLE");
                    caps.move_ |= c.eq_ignore_ascii_case("MOVE");
                    caps.uidplus |= c.eq_ignore_ascii_case("UIDPLUS");
                }
            }
        }
        Ok(caps)
    }

    /// SELECT, taking the mailbox's counts as the new baseline.
    async fn open(&mut self, mailbox: &str) -> Result<u32, ImapError> {
        let wire = mailbox_name(mailbox)?;
        // A SELECT, even a failed one, closes the mailbox selected before (RFC 3501 6.3.1).
        self.selected = None;
        let reply = self.run(&format!("SELECT {}", quote(&wire))).await?;
        if reply.status != ReplyStatus::Ok {
            return Err(reply.no_mailbox(mailbox, "SELECT"));
        }
        let mut uidvalidity = None;
        let (mut exists, mut recent) = (0, 0);
        for u in &reply.data {
            match u {
                Untagged::UidValidity(v) => uidvalidity = Some(*v),
                Untagged::Exists(n) => exists = *n,
                Untagged::Recent(n) => recent = *n,
                Untagged::Expunge(_) => exists = exists.saturating_sub(1),
                _ => {}
            }
        }
        let uidvalidity = uidvalidity.ok_or_else(|| {
            ImapError::Protocol(format!(
                "SELECT {mailbox:?}: the server sent no UIDVALIDITY"
            ))
        })?;
        self.selected = Some(mailbox.to_string());
        self.exists = exists;
        self.recent = recent;
        debug!(mailbox, uidvalidity, exists, "IMAP: selected");
        Ok(uidvalidity)
    }

    /// EXAMINE `folder` and run the search there. Counts in these answers belong to
    /// `folder`, not to the selected mailbox, so they are not observed.
    async fn search_elsewhere(&mut self, folder: &str, query: &str) -> Result<bool, ImapError> {
        let wire = mailbox_name(folder)?;
        let reply = self.run(&format!("EXAMINE {}", quote(&wire))).await?;
        if reply.status != ReplyStatus::Ok {
            return Err(reply.no_mailbox(folder, "EXAMINE"));
        }
        let reply = self.run(query).await?;
        reply.check("UID SEARCH")?;
        Ok(search_hit(&reply.data))
    }

    async fn folder_exists(&mut self, name: &str) -> Result<bool, ImapError> {
        let wire = mailbox_name(name)?;
        let reply = self.run(&format!("LIST \"\" {}", quote(&wire))).await?;
        self.observe(&reply.data);
        reply.check("LIST")?;
        Ok(reply.data.iter().any(|u| match u {
            Untagged::List(listed) => {
                listed == &wire
                    || (wire.eq_ignore_ascii_case("INBOX") && listed.eq_ignore_ascii_case("INBOX"))
            }
            _ => false,
        }))
    }

    async fn fetch_section(
        &mut self,
        uid: u32,
        item: &str,
        pick: impl Fn(FetchData) -> Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        self.require_selected("fetch")?;
        let reply = self.run(&format!("UID FETCH {uid} {item}")).await?;
        self.observe(&reply.data);
        reply.check("UID FETCH")?;
        Ok(reply.data.into_iter().find_map(|u| match u {
            Untagged::Fetch(f) if f.uid == Some(uid) => pick(f),
            _ => None,
        }))
    }

    /// A command that must succeed; a missing target folder is [`ImapError::NoMailbox`].
    async fn command_into(&mut self, folder: &str, cmd: &str, verb: &str) -> Result<(), ImapError> {
        let reply = self.run(cmd).await?;
        self.observe(&reply.data);
        if reply.status == ReplyStatus::No && reply.text.contains("[TRYCREATE]") {
            return Err(ImapError::NoMailbox(format!(
                "folder {folder:?} does not exist"
            )));
        }
        reply.check(verb)
    }

    /// A command that must succeed.
    async fn command(&mut self, cmd: &str, verb: &str) -> Result<(), ImapError> {
        let reply = self.run(cmd).await?;
        self.observe(&reply.data);
        reply.check(verb)
    }

    fn require_selected(&self, what: &str) -> Result<(), ImapError> {
        if self.session.is_none() {
            return Err(broken());
        }
        if self.selected.is_none() {
            return Err(ImapError::Protocol(format!(
                "{what}: no mailbox is selected"
            )));
        }
        Ok(())
    }

    /// Sends one command and reads its whole answer within the timeout. A transport failure
    /// marks the connection broken; `NO` and `BAD` come back in the reply.
    async fn run(&mut self, command: &str) -> Result<Reply, ImapError> {
        self.drain_unsolicited();
        let t = self.timeout;
        let session = self.session.as_mut().ok_or_else(broken)?;
        let reply = match timeout(t, exchange(session, command)).await {
            Err(_) => Err(ImapError::Timeout(format!(
                "no answer to {} within {t:?}",
                verb(command)
            ))),
            Ok(r) => r,
        };
        self.settle(reply)
    }

    fn settle(&mut self, reply: Result<Reply, ImapError>) -> Result<Reply, ImapError> {
        if reply.is_err() {
            self.session = None;
            self.selected = None;
        }
        reply
    }

    fn drain_unsolicited(&mut self) {
        let news = (self.drain)();
        if !news.is_empty() {
            self.observe(&news);
        }
    }

    /// Keeps the selected mailbox's counts up to date from what the server told.
    fn observe(&mut self, data: &[Untagged]) {
        for u in data {
            match *u {
                Untagged::Exists(n) => {
                    if n > self.exists {
                        self.new_mail = true;
                    }
                    self.exists = n;
                }
                Untagged::Recent(n) => {
                    if n > self.recent {
                        self.new_mail = true;
                    }
                    self.recent = n;
                }
                Untagged::Expunge(_) => self.exists = self.exists.saturating_sub(1),
                _ => {}
            }
        }
    }

    async fn idle(
        &mut self,
        idle_for: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Wake, ImapError> {
        let t = self.timeout;
        // async-imap's IDLE handle takes the session by value and gives it back on DONE; if
        // anything fails in between, the session is gone and the connection is broken.
        let session = self.session.take().ok_or_else(broken)?;
        let selected = self.selected.take();
        let mut handle = session.idle();
        match timeout(t, handle.init()).await {
            Err(_) => {
                return Err(ImapError::Timeout(format!(
                    "no answer to IDLE within {t:?}"
                )))
            }
            Ok(Err(e)) => return Err(lib_error(e)),
            Ok(Ok(())) => {}
        }
        debug!(?idle_for, "IMAP: idling");
        let deadline = Instant::now() + idle_for;
        let outcome = loop {
            // Answers read while starting IDLE (and untagged completions) went to the channel.
            self.drain_unsolicited();
            if self.new_mail {
                break Ok(Wake::NewMail);
            }
            // The library's own silence timeout resets on every keep-alive ("* OK Still here"),
            // so the deadline is kept here; its timeout is only a backstop.
            let (response, _stop) = handle.wait_with_timeout(idle_for + t);
            // Dropping `response` early is safe: partial input stays in the stream's buffer.
            let step = tokio::select! {
                r = response => IdleStep::Server(r),
                _ = tokio::time::sleep_until(deadline) => IdleStep::Deadline,
                c = shutdown.changed() => {
                    if c.is_err() || *shutdown.borrow_and_update() {
                        IdleStep::Shutdown
                    } else {
                        IdleStep::Again
                    }
                }
            };
            match step {
                IdleStep::Server(Ok(IdleResponse::NewData(resp))) => match digest(resp.parsed()) {
                    Untagged::Bye(text) => {
                        break Err(ImapError::Io(format!(
                            "the server ended the session during IDLE: {text}"
                        )))
                    }
                    u => self.observe(std::slice::from_ref(&u)),
                },
                // `_stop` is still alive, so an interrupt can only mean end-of-file.
                IdleStep::Server(Ok(IdleResponse::ManualInterrupt)) => {
                    break Err(ImapError::Io(
                        "the server closed the connection during IDLE".into(),
                    ))
                }
                IdleStep::Server(Ok(IdleResponse::Timeout)) => {
                    break Err(ImapError::Timeout(
                        "the server went silent during IDLE".into(),
                    ))
                }
                IdleStep::Server(Err(e)) => break Err(lib_error(e)),
                IdleStep::Deadline => break Ok(Wake::Timeout),
                IdleStep::Shutdown => break Ok(Wake::Shutdown),
                IdleStep::Again => {}
            }
        };
        let wake = match outcome {
            Err(e) => return Err(e),
            Ok(wake) => wake,
        };
        let done_within = if wake == Wake::Shutdown {
            t.min(GOODBYE_TIMEOUT)
        } else {
            t
        };
        match timeout(done_within, handle.done()).await {
            Ok(Ok(session)) => {
                self.session = Some(session);
                self.selected = selected;
            }
            // Leaving anyway: a broken connection is the caller's to drop.
            _ if wake == Wake::Shutdown => return Ok(Wake::Shutdown),
            Err(_) => {
                return Err(ImapError::Timeout(format!(
                    "no answer to DONE within {done_within:?}: the server went silent"
                )))
            }
            Ok(Err(e)) => return Err(lib_error(e)),
        }
        self.drain_unsolicited();
        Ok(self.report(wake))
    }

    async fn poll(
        &mut self,
        idle_for: Duration,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Wake, ImapError> {
        let deadline = Instant::now() + idle_for;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                c = shutdown.changed() => {
                    if c.is_err() || *shutdown.borrow_and_update() {
                        return Ok(Wake::Shutdown);
                    }
                }
            }
        }
        self.noop().await?;
        Ok(self.report(Wake::Timeout))
    }

    /// Turns a wait's end into what the caller hears; a pending new-mail notice wins over a
    /// timeout and is reported once.
    fn report(&mut self, wake: Wake) -> Wake {
        match wake {
            Wake::Shutdown => Wake::Shutdown,
            Wake::NewMail | Wake::Timeout if self.new_mail => {
                self.new_mail = false;
                Wake::NewMail
            }
            other => other,
        }
    }
}

enum IdleStep {
    Server(async_imap::error::Result<IdleResponse>),
    Deadline,
    Shutdown,
    Again,
}

/// An IMAP UID set, runs compressed: `[1,2,3,7,9,10]` → `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v: Vec<u32> = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

fn broken() -> ImapError {
    ImapError::Io("the connection is broken after an earlier error; reconnect".into())
}

// ---------------------------------------------------------------- connecting

async fn tls_handshake(
    tcp: TcpStream,
    host: &str,
    t: Duration,
    config: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ImapError> {
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| ImapError::Tls(format!("{host:?} cannot be checked against a certificate")))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match timeout(t, connector.connect(name, tcp)).await {
        Err(_) => Err(ImapError::Timeout(format!(
            "TLS handshake with {host} took longer than {t:?}"
        ))),
        // tokio-rustls reports TLS failures (certificate, protocol) as InvalidData.
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            Err(ImapError::Tls(format!("handshake with {host}: {e}")))
        }
        Ok(Err(e)) => Err(ImapError::Io(format!("TLS handshake with {host}: {e}"))),
        Ok(Ok(tls)) => {
            debug!(host, "IMAP: TLS established");
            Ok(tls)
        }
    }
}

async fn read_greeting(client: &mut Client<Transport>, t: Duration) -> Result<(), ImapError> {
    let greeting = match timeout(t, client.read_response()).await {
        Err(_) => return Err(ImapError::Timeout(format!("no greeting within {t:?}"))),
        Ok(Err(e)) => return Err(io_error(e)),
        Ok(Ok(None)) => {
            return Err(ImapError::Connect(
                "the server closed the connection before its greeting".into(),
            ))
        }
        Ok(Ok(Some(g))) => g,
    };
    match greeting.parsed() {
        Response::Data {
            status: Status::Ok, ..
        } => Ok(()),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(ImapError::Connect(format!(
            "the server refused the session: {}",
            server_text(outcome.information.as_deref().unwrap_or(""))
        ))),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(ImapError::Protocol(
            "PREAUTH greeting: pre-authenticated sessions are not supported".into(),
        )),
        _ => Err(ImapError::Protocol(
            "the server's greeting is not an IMAP greeting".into(),
        )),
    }
}

fn login_error(e: LibError) -> ImapError {
    match e {
        LibError::No(m) | LibError::Bad(m) => {
            // RFC 5530: UNAVAILABLE means the authentication back-end is down, not that the
            // credentials are wrong.
            if m.contains("UNAVAILABLE") {
                ImapError::Connect(format!(
                    "the server cannot authenticate right now: {}",
                    lib_text(&m)
                ))
            } else {
                ImapError::Auth(lib_text(&m))
            }
        }
        LibError::Validate(_) => {
            ImapError::Auth("the user name or password contains a line break".into())
        }
        other => lib_error(other),
    }
}

// ---------------------------------------------------------------- one exchange

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReplyStatus {
    Ok,
    No,
    Bad,
}

/// A command's tagged completion and the untagged responses that came before it.
#[derive(Debug)]
struct Reply {
    status: ReplyStatus,
    /// The completion's text, with a known response code put back in front: "[TRYCREATE] ...".
    text: String,
    data: Vec<Untagged>,
}

impl Reply {
    fn check(&self, verb: &str) -> Result<(), ImapError> {
        match self.status {
            ReplyStatus::Ok => Ok(()),
            _ => Err(self.refused(verb)),
        }
    }

    fn refused(&self, verb: &str) -> ImapError {
        let word = if self.status == ReplyStatus::Bad {
            "BAD"
        } else {
            "NO"
        };
        ImapError::Protocol(format!("{verb}: the server said {word}: {}", self.text))
    }

    /// A failed SELECT or EXAMINE: the mailbox is missing unless the server says it is busy.
    fn no_mailbox(&self, mailbox: &str, verb: &str) -> ImapError {
        let temporary = ["[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]", "[LIMIT]"];
        if self.status == ReplyStatus::Bad || temporary.iter().any(|c| self.text.contains(c)) {
            self.refused(verb)
        } else {
            ImapError::NoMailbox(format!("{verb} {mailbox:?}: {}", self.text))
        }
    }
}

async fn exchange(session: &mut ImapSession, command: &str) -> Result<Reply, ImapError> {
    let tag = session.run_command(command).await.map_err(lib_error)?;
    match read_reply(session, &tag, false).await? {
        Some(reply) => Ok(reply),
        None => Err(ImapError::Protocol(format!(
            "{}: unexpected continuation request",
            verb(command)
        ))),
    }
}

/// Reads until the completion tagged `tag`. With `stop_at_continue`, returns `None` at a
/// continuation request ("+ ...") instead.
async fn read_reply(
    session: &mut ImapSession,
    tag: &RequestId,
    stop_at_continue: bool,
) -> Result<Option<Reply>, ImapError> {
    let mut data = Vec::new();
    let mut bye = None;
    loop {
        let Some(resp) = session.read_response().await.map_err(io_error)? else {
            return Err(ImapError::Io(match bye {
                Some(text) => format!("the server closed the connection: {text}"),
                None => "the server closed the connection".into(),
            }));
        };
        match resp.parsed() {
            Response::Done {
                tag: done,
                status,
                outcome,
            } if done == tag => {
                let status = match status {
                    Status::Ok => ReplyStatus::Ok,
                    Status::No => ReplyStatus::No,
                    _ => ReplyStatus::Bad,
                };
                let mut text = String::new();
                if let Some(code) = outcome.code.as_ref().and_then(code_name) {
                    text.push_str(code);
                    text.push(' ');
                }
                text.push_str(&server_text(outcome.information.as_deref().unwrap_or("")));
                return Ok(Some(Reply { status, text, data }));
            }
            // A completion for some other tag: nothing of ours is pipelined, ignore it.
            Response::Done { .. } => {}
            Response::Continue(_) if stop_at_continue => return Ok(None),
            other => {
                let u = digest(other);
                if let Untagged::Bye(text) = &u {
                    bye = Some(text.clone());
                }
                data.push(u);
            }
        }
    }
}

/// APPEND with a synchronizing literal, written straight to the transport between the
/// continuation request and the completion.
async fn append_exchange(
    session: &mut ImapSession,
    wire_folder: &str,
    raw: &[u8],
) -> Result<Reply, ImapError> {
    let tag = session
        .run_command(format!("APPEND {} {{{}}}", quote(wire_folder), raw.len()))
        .await
        .map_err(lib_error)?;
    if let Some(refused) = read_reply(session, &tag, true).await? {
        return Ok(refused);
    }
    let stream = session.get_mut();
    stream.write_all(raw).await.map_err(io_error)?;
    stream.write_all(b"\r\n").await.map_err(io_error)?;
    stream.flush().await.map_err(io_error)?;
    match read_reply(session, &tag, false).await? {
        Some(reply) => Ok(reply),
        None => Err(ImapError::Protocol(
            "APPEND: a second continuation request".into(),
        )),
    }
}

// ---------------------------------------------------------------- responses

/// What this module needs from one untagged response, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Untagged {
    Fetch(FetchData),
    Exists(u32),
    Recent(u32),
    Expunge(u32),
    Search(Vec<u32>),
    /// A LIST answer: the mailbox name as the server spelled it (modified UTF-7).
    List(String),
    Capabilities(Vec<String>),
    UidValidity(u32),
    Bye(String),
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FetchData {
    uid: Option<u32>,
    size: Option<u32>,
    internal_date: Option<String>,
    flags: Option<Vec<String>>,
    body: Option<Vec<u8>>,
    header: Option<Vec<u8>>,
}

fn digest(resp: &Response<'_>) -> Untagged {
    match resp {
        Response::Fetch(_, attrs) => {
            let mut f = FetchData::default();
            for a in attrs {
                match a {
                    AttributeValue::Uid(u) => f.uid = Some(*u),
                    AttributeValue::Rfc822Size(s) => f.size = Some(*s),
                    AttributeValue::InternalDate(d) => f.internal_date = Some(d.to_string()),
                    AttributeValue::Flags(fl) => {
                        f.flags = Some(fl.iter().map(|s| s.to_string()).collect());
                    }
                    AttributeValue::BodySection {
                        section: None,
                        data: Some(d),
                        ..
                    }
                    | AttributeValue::Rfc822(Some(d)) => f.body = Some(d.to_vec()),
                    AttributeValue::BodySection {
                        section: Some(SectionPath::Full(MessageSection::Header)),
                        data: Some(d),
                        ..
                    }
                    | AttributeValue::Rfc822Header(Some(d)) => f.header = Some(d.to_vec()),
                    _ => {}
                }
            }
            Untagged::Fetch(f)
        }
        Response::MailboxData(MailboxDatum::Exists(n)) => Untagged::Exists(*n),
        Response::MailboxData(MailboxDatum::Recent(n)) => Untagged::Recent(*n),
        Response::MailboxData(MailboxDatum::Search(ids)) => Untagged::Search(ids.clone()),
        Response::MailboxData(MailboxDatum::List(l)) => Untagged::List(l.name.to_string()),
        Response::Expunge(n) => Untagged::Expunge(*n),
        Response::Capabilities(list) => Untagged::Capabilities(list.iter().map(cap_name).collect()),
        Response::Data {
            status: Status::Ok,
            outcome,
        } => match outcome.code {
            Some(ResponseCode::UidValidity(v)) => Untagged::UidValidity(v),
            _ => Untagged::Other,
        },
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Untagged::Bye(server_text(outcome.information.as_deref().unwrap_or(""))),
        _ => Untagged::Other,
    }
}

fn digest_unsolicited(u: UnsolicitedResponse) -> Untagged {
    match u {
        UnsolicitedResponse::Exists(n) => Untagged::Exists(n),
        UnsolicitedResponse::Recent(n) => Untagged::Recent(n),
        UnsolicitedResponse::Expunge(n) => Untagged::Expunge(n),
        UnsolicitedResponse::Other(resp) => digest(resp.parsed()),
        _ => Untagged::Other,
    }
}

fn cap_name(c: &Capability<'_>) -> String {
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".to_string(),
        Capability::Auth(a) => format!("AUTH={a}"),
        Capability::Atom(a) => a.to_string(),
    }
}

/// Response codes this module acts on and imap-proto parses (unknown codes such as
/// `[ALREADYEXISTS]` stay in the text anyway).
fn code_name(code: &ResponseCode<'_>) -> Option<&'static str> {
    match code {
        ResponseCode::TryCreate => Some("[TRYCREATE]"),
        ResponseCode::ReadOnly => Some("[READ-ONLY]"),
        ResponseCode::ReadWrite => Some("[READ-WRITE]"),
        ResponseCode::Alert => Some("[ALERT]"),
        ResponseCode::Parse => Some("[PARSE]"),
        _ => None,
    }
}

fn search_hit(data: &[Untagged]) -> bool {
    data.iter()
        .any(|u| matches!(u, Untagged::Search(ids) if !ids.is_empty()))
}

// ---------------------------------------------------------------- errors

fn lib_error(e: LibError) -> ImapError {
    match e {
        LibError::Io(e) => io_error(e),
        LibError::ConnectionLost => ImapError::Io("the server closed the connection".into()),
        LibError::No(m) => ImapError::Protocol(format!("the server said NO: {}", lib_text(&m))),
        LibError::Bad(m) => ImapError::Protocol(format!("the server said BAD: {}", lib_text(&m))),
        // Their texts may quote the raw response, which may be mail content.
        LibError::Parse(_) => ImapError::Protocol("could not parse a server response".into()),
        LibError::Validate(_) => {
            ImapError::Protocol("a command argument contains a line break".into())
        }
        _ => ImapError::Protocol("async-imap reported an unexpected error".into()),
    }
}

fn io_error(e: io::Error) -> ImapError {
    let text = e.to_string();
    // async-imap's parse errors are io::Errors quoting the unparsed input, which may be mail.
    if text.contains("during parsing of") {
        ImapError::Protocol("could not parse a server response".into())
    } else {
        ImapError::Io(server_text(&text))
    }
}

/// The server's words out of async-imap's `code: .., info: Some("..")` error text.
fn lib_text(m: &str) -> String {
    let words = m
        .find("info: Some(\"")
        .and_then(|start| {
            let rest = &m[start + "info: Some(\"".len()..];
            rest.rfind("\")")
                .map(|end| rest[..end].replace("\\\"", "\""))
        })
        .unwrap_or_else(|| m.to_string());
    server_text(&words)
}

/// A server's (or the OS's) text, safe and short enough to put into an error.
fn server_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_SERVER_TEXT)
        .collect();
    if s.chars().count() > MAX_SERVER_TEXT {
        out.push('…');
    }
    out.trim().to_string()
}

/// The command's name for messages: "UID FETCH", "SELECT" — never its arguments.
fn verb(command: &str) -> String {
    let mut words = command.split(' ');
    match words.next() {
        Some("UID") => format!("UID {}", words.next().unwrap_or("")),
        Some(w) => w.to_string(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------- encoding

/// An IMAP quoted string. Callers pass 7-bit text without CR, LF or NUL.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A folder name as IMAP wants it on the wire: modified UTF-7 (RFC 3501 5.1.3), so that
/// folder names in Cyrillic work.
fn mailbox_name(name: &str) -> Result<String, ImapError> {
    if name.is_empty() {
        return Err(ImapError::NoMailbox("an empty folder name".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(ImapError::NoMailbox(format!(
            "folder name {name:?} contains a control character"
        )));
    }
    let mut out = String::with_capacity(name.len());
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush_utf7(&mut out, &mut pending);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush_utf7(&mut out, &mut pending);
    Ok(out)
}

fn flush_utf7(out: &mut String, pending: &mut Vec<u16>) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";
    if pending.is_empty() {
        return;
    }
    let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
    out.push('&');
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        // n bytes give n + 1 characters; no padding in modified UTF-7.
        for i in 0..=n {
            out.push(char::from(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out.push('-');
    pending.clear();
}

/// `<id>` for a header search: brackets added if missing, 7-bit printable only.
fn message_id_for_search(message_id: &str) -> Result<String, ImapError> {
    let core = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    if core.is_empty() || !core.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ImapError::Protocol(format!(
            "{message_id:?} is not a Message-ID that can be searched for"
        )));
    }
    Ok(format!("<{core}>"))
}

/// INTERNALDATE ("26-Nov-2025 08:48:00 +0300", the day may be space-padded) to Unix seconds.
fn parse_internal_date(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace();
    let (date, time, zone) = (parts.next()?, parts.next()?, parts.next()?);
    let mut d = date.split('-');
    let day: i64 = d.next()?.parse().ok()?;
    let month_name = d.next()?;
    let year: i64 = d.next()?.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let month = MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(month_name))? as i64
        + 1;
    let mut t = time.split(':');
    let (h, m, sec): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    if zone.len() != 5 || !zone.is_ascii() {
        return None;
    }
    let sign = match zone.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh: i64 = zone[1..3].parse().ok()?;
    let zm: i64 = zone[3..5].parse().ok()?;
    let offset = sign * (zh * 3600 + zm * 60);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};
    use tokio::net::TcpListener;

    #[test]
    fn tls_config_builds_without_a_process_level_provider() {
        // Guards the rustls pitfall: ClientConfig::builder() panics when no (or two) crypto
        // providers are installed process-wide; naming ring explicitly never does.
        let config = tls_client_config().expect("TLS config");
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn settings_debug_hides_the_password() {
        let s = ImapSettings {
            host: "imap.example.org".into(),
            port: 993,
            security: Security::Tls,
            username: "help@sevmiac.ru".into(),
            password: "hunter2-secret".into(),
            timeout: Duration::from_secs(30),
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("help@sevmiac.ru"));
    }

    #[test]
    fn security_reads_lowercase_names() {
        #[derive(serde::Deserialize)]
        struct Wrap {
            s: Security,
        }
        let w: Wrap = toml::from_str("s = \"starttls\"").unwrap();
        assert_eq!(w.s, Security::Starttls);
        let w: Wrap = toml::from_str("s = \"none\"").unwrap();
        assert_eq!(w.s, Security::None);
        assert!(toml::from_str::<Wrap>("s = \"TLS\"").is_err());
    }

    #[test]
    fn transient_and_permanent_errors() {
        assert!(ImapError::Io("x".into()).is_transient());
        assert!(ImapError::Timeout("x".into()).is_transient());
        assert!(ImapError::Connect("x".into()).is_transient());
        assert!(ImapError::Auth("x".into()).is_permanent());
        assert!(ImapError::Tls("x".into()).is_permanent());
        assert!(ImapError::NoMailbox("x".into()).is_permanent());
    }

    #[test]
    fn internal_dates() {
        assert_eq!(parse_internal_date("01-Jan-1970 00:00:00 +0000"), Some(0));
        // date -d '2025-11-26 08:48:00 +0300' +%s
        assert_eq!(
            parse_internal_date("26-Nov-2025 08:48:00 +0300"),
            Some(1_764_136_080)
        );
        assert_eq!(
            parse_internal_date(" 6-Mar-2024 23:59:59 -0130"),
            Some(1_709_774_999)
        );
        assert_eq!(
            parse_internal_date("29-Feb-2024 12:00:00 +0000"),
            Some(1_709_208_000)
        );
        assert_eq!(parse_internal_date("31-Foo-2024 12:00:00 +0000"), None);
        assert_eq!(parse_internal_date("garbage"), None);
    }

    #[test]
    fn folder_names_in_modified_utf7() {
        assert_eq!(mailbox_name("Processed").unwrap(), "Processed");
        assert_eq!(mailbox_name("A&B").unwrap(), "A&-B");
        // RFC 3501 5.1.3 example.
        assert_eq!(
            mailbox_name("~peter/mail/台北/日本語").unwrap(),
            "~peter/mail/&U,BTFw-/&ZeVnLIqe-"
        );
        assert_eq!(
            mailbox_name("Обработано").unwrap(),
            "&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-"
        );
        assert!(mailbox_name("a\r\nb").is_err());
        assert!(mailbox_name("").is_err());
    }

    #[test]
    fn quoting_and_keywords() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(is_valid_keyword("$MailintakeDone"));
        assert!(is_valid_keyword("mailintake-done"));
        assert!(!is_valid_keyword("two words"));
        assert!(!is_valid_keyword("\\Deleted"));
        assert!(!is_valid_keyword("(x)"));
        assert!(!is_valid_keyword(""));
        assert!(!is_valid_keyword("обработано"));
    }

    #[test]
    fn message_ids_for_search() {
        assert_eq!(message_id_for_search("abc@x").unwrap(), "<abc@x>");
        assert_eq!(message_id_for_search(" <abc@x> ").unwrap(), "<abc@x>");
        assert!(message_id_for_search("<>").is_err());
        assert!(message_id_for_search("a b@x").is_err());
        assert!(message_id_for_search("a\r\nb@x").is_err());
    }

    #[test]
    fn library_error_texts_are_reduced_to_the_server_words() {
        assert_eq!(
            lib_text(r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication failed.")"#),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        assert_eq!(
            lib_text(r#"code: None, info: Some("say \"hi\"")"#),
            r#"say "hi""#
        );
        assert_eq!(lib_text("plain"), "plain");
    }

    #[test]
    fn verbs_never_carry_arguments() {
        assert_eq!(verb("UID FETCH 1:* (UID)"), "UID FETCH");
        assert_eq!(verb("SELECT \"INBOX\""), "SELECT");
    }

    #[test]
    fn digest_reads_fetch_and_counts() {
        let parse = |s: &'static str| Response::parse(s.as_bytes()).unwrap().1;
        let r = parse(
            "* 2 FETCH (UID 7 RFC822.SIZE 616 FLAGS (\\Seen $Done) INTERNALDATE \"26-Nov-2025 08:48:00 +0300\")\r\n",
        );
        let Untagged::Fetch(f) = digest(&r) else {
            panic!()
        };
        assert_eq!(f.uid, Some(7));
        assert_eq!(f.size, Some(616));
        assert_eq!(f.flags.unwrap(), vec!["\\Seen", "$Done"]);
        assert_eq!(
            parse_internal_date(f.internal_date.as_deref().unwrap()),
            Some(1_764_136_080)
        );
        let r = parse("* 1 FETCH (UID 7 BODY[] {5}\r\nhello)\r\n");
        let Untagged::Fetch(f) = digest(&r) else {
            panic!()
        };
        assert_eq!(f.body.as_deref(), Some(&b"hello"[..]));
        let r = parse("* 1 FETCH (UID 7 BODY[HEADER] {4}\r\nA:b\n)\r\n");
        let Untagged::Fetch(f) = digest(&r) else {
            panic!()
        };
        assert_eq!(f.header.as_deref(), Some(&b"A:b\n"[..]));
        assert_eq!(digest(&parse("* 4 EXISTS\r\n")), Untagged::Exists(4));
        assert_eq!(digest(&parse("* 3 EXPUNGE\r\n")), Untagged::Expunge(3));
        assert_eq!(
            digest(&parse("* OK [UIDVALIDITY 1795683794] UIDs valid\r\n")),
            Untagged::UidValidity(1_795_683_794)
        );
        assert_eq!(
            digest(&parse("* BYE Server shutting down.\r\n")),
            Untagged::Bye("Server shutting down.".into())
        );
    }

    type Rules = Vec<(&'static str, &'static str)>;

    /// Plays a scripted IMAP server on one stream: for each line it reads, it answers with
    /// the reply of the first rule whose pattern the line contains ("{tag}" is replaced,
    /// "{close}" hangs up); silent when nothing matches.
    async fn play<S: AsyncRead + AsyncWrite + Unpin>(stream: S, greeting: &str, rules: &Rules) {
        let (r, mut w) = tokio::io::split(stream);
        if w.write_all(greeting.as_bytes()).await.is_err() || w.flush().await.is_err() {
            return;
        }
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let tag = line.split(' ').next().unwrap_or("").to_string();
            if let Some((_, reply)) = rules.iter().find(|(p, _)| line.contains(p)) {
                if *reply == "{close}" {
                    return;
                }
                let reply = reply.replace("{tag}", &tag);
                if w.write_all(reply.as_bytes()).await.is_err() || w.flush().await.is_err() {
                    return;
                }
            }
        }
        // Keep the socket open (silent) until the client gives up.
        tokio::time::sleep(Duration::from_secs(30)).await;
    }

    /// A loopback peer playing `rules` in plaintext; returns its port.
    async fn scripted_server(greeting: &'static str, rules: Rules) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            play(sock, greeting, &rules).await;
        });
        port
    }

    /// A CA and a server certificate for 127.0.0.1, made once with the openssl tool.
    struct TestPki {
        ca: Vec<u8>,
        leaf: Vec<u8>,
        key: Vec<u8>,
    }

    fn test_pki() -> &'static TestPki {
        static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
        PKI.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
            let openssl = |args: &[&str]| {
                let out = std::process::Command::new("openssl")
                    .args(args)
                    .output()
                    .expect("the openssl tool (Debian package openssl)");
                assert!(
                    out.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
            let (ca_key, ca, leaf_key, csr, leaf, ext) = (
                p("ca.key"),
                p("ca.pem"),
                p("leaf.key"),
                p("leaf.csr"),
                p("leaf.pem"),
                p("ext.cnf"),
            );
            let subject = ["-days", "2", "-subj", "/CN=mailintake test CA"];
            openssl(&[&["req", "-x509"][..], &ec, &["-keyout", &ca_key, "-out", &ca], &subject].concat());
            openssl(
                &[
                    &["req"][..],
                    &ec,
                    &["-keyout", &leaf_key, "-out", &csr, "-subj", "/CN=127.0.0.1"],
                ]
                .concat(),
            );
            std::fs::write(
                &ext,
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )
            .unwrap();
            openssl(&[
                "x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial",
                "-out", &leaf, "-days", "2", "-extfile", &ext,
            ]);
            TestPki {
                ca: std::fs::read(&ca).unwrap(),
                leaf: std::fs::read(&leaf).unwrap(),
                key: std::fs::read(&leaf_key).unwrap(),
            }
        })
    }

    fn trusting_test_ca() -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&test_pki().ca).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }

    /// A loopback peer speaking TLS from the first byte, or after STARTTLS; returns its port.
    async fn tls_scripted_server(starttls: bool, rules: Rules) -> u16 {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let pki = test_pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(&pki.leaf).unwrap()],
                PrivateKeyDer::from_pem_slice(&pki.key).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            if starttls {
                sock.write_all(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n")
                    .await
                    .unwrap();
                // Byte by byte: nothing may be read past the command into a buffer.
                let mut line = Vec::new();
                while !line.ends_with(b"\n") {
                    let mut b = [0u8; 1];
                    if tokio::io::AsyncReadExt::read(&mut sock, &mut b)
                        .await
                        .unwrap_or(0)
                        == 0
                    {
                        return;
                    }
                    line.push(b[0]);
                }
                let line = String::from_utf8_lossy(&line).to_string();
                assert!(line.contains("STARTTLS"), "{line}");
                let tag = line.split(' ').next().unwrap().to_string();
                sock.write_all(format!("{tag} OK Begin TLS negotiation now\r\n").as_bytes())
                    .await
                    .unwrap();
            }
            let Ok(tls) = acceptor.accept(sock).await else {
                return;
            };
            let greeting = if starttls { "" } else { "* OK ready\r\n" };
            play(tls, greeting, &rules).await;
        });
        port
    }

    fn mailbox_rules() -> Rules {
        vec![
            ("LOGIN", "{tag} OK logged in\r\n"),
            (
                "CAPABILITY",
                "* CAPABILITY IMAP4rev1 IDLE MOVE UIDPLUS\r\n{tag} OK done\r\n",
            ),
            (
                "SELECT",
                "* 1 EXISTS\r\n* OK [UIDVALIDITY 9] x\r\n{tag} OK [READ-WRITE] done\r\n",
            ),
            (
                "UID FETCH",
                "* 1 FETCH (UID 3 RFC822.SIZE 42 FLAGS (\\Seen) \
                 INTERNALDATE \"01-Jan-2025 00:00:00 +0000\")\r\n{tag} OK done\r\n",
            ),
            ("LOGOUT", "* BYE bye\r\n{tag} OK done\r\n"),
        ]
    }

    fn settings(port: u16, t: Duration) -> ImapSettings {
        ImapSettings {
            host: "127.0.0.1".into(),
            port,
            security: Security::None,
            username: "u@x".into(),
            password: "p".into(),
            timeout: t,
        }
    }

    fn tls_settings(port: u16, security: Security) -> ImapSettings {
        ImapSettings {
            security,
            ..settings(port, Duration::from_secs(5))
        }
    }

    #[tokio::test]
    async fn implicit_tls_with_a_trusted_certificate_works() {
        let port = tls_scripted_server(false, mailbox_rules()).await;
        let s = tls_settings(port, Security::Tls);
        let mut conn = ImapConn::connect_with(&s, trusting_test_ca())
            .await
            .unwrap();
        assert!(conn.caps.idle && conn.caps.move_ && conn.caps.uidplus);
        assert_eq!(conn.select("INBOX").await.unwrap(), 9);
        let listed = conn.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uid, 3);
        assert_eq!(listed[0].flags, vec!["\\Seen"]);
        conn.logout().await;
    }

    #[tokio::test]
    async fn starttls_upgrades_before_login() {
        // The scripted server answers LOGIN only inside TLS: a login in the clear would hang.
        let port = tls_scripted_server(true, mailbox_rules()).await;
        let s = tls_settings(port, Security::Starttls);
        let mut conn = ImapConn::connect_with(&s, trusting_test_ca())
            .await
            .unwrap();
        assert_eq!(conn.select("INBOX").await.unwrap(), 9);
        assert_eq!(conn.list().await.unwrap().len(), 1);
        conn.logout().await;
    }

    #[tokio::test]
    async fn an_unknown_certificate_authority_is_a_permanent_tls_error() {
        let port = tls_scripted_server(false, mailbox_rules()).await;
        let err = ImapConn::connect(&tls_settings(port, Security::Tls))
            .await
            .unwrap_err();
        assert!(matches!(err, ImapError::Tls(_)), "{err}");
        assert!(err.is_permanent());
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    }

    #[tokio::test]
    async fn a_server_that_never_greets_times_out() {
        let port = scripted_server("", vec![]).await;
        let started = std::time::Instant::now();
        let err = ImapConn::connect(&settings(port, Duration::from_millis(300)))
            .await
            .unwrap_err();
        assert!(matches!(err, ImapError::Timeout(_)), "{err}");
        assert!(err.is_transient());
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_server_silent_during_idle_is_an_error_within_idle_for_plus_timeout() {
        // Dead peer without FIN: IDLE is accepted, then nothing, not even an answer to DONE.
        let port = scripted_server(
            "* OK ready\r\n",
            vec![
                ("LOGIN", "{tag} OK logged in\r\n"),
                (
                    "CAPABILITY",
                    "* CAPABILITY IMAP4rev1 IDLE\r\n{tag} OK done\r\n",
                ),
                (
                    "SELECT",
                    "* 0 EXISTS\r\n* OK [UIDVALIDITY 42] x\r\n{tag} OK [READ-WRITE] done\r\n",
                ),
                ("IDLE", "+ idling\r\n"),
            ],
        )
        .await;
        let t = Duration::from_millis(300);
        let mut conn = ImapConn::connect(&settings(port, t)).await.unwrap();
        assert!(conn.caps.idle && !conn.caps.move_);
        assert_eq!(conn.select("INBOX").await.unwrap(), 42);
        let (_tx, mut rx) = watch::channel(false);
        let started = std::time::Instant::now();
        let err = conn
            .wait(Duration::from_millis(300), &mut rx)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(err.is_transient(), "{err}");
        assert!(took >= Duration::from_millis(550), "{took:?}");
        assert!(took < Duration::from_millis(1500), "{took:?}");
        // Broken from now on: fails fast, transient.
        let err = conn.noop().await.unwrap_err();
        assert!(err.is_transient(), "{err}");
    }

    fn list_server_rules(on_fetch: &'static str) -> Vec<(&'static str, &'static str)> {
        vec![
            ("LOGIN", "{tag} OK logged in\r\n"),
            ("CAPABILITY", "* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n"),
            (
                "SELECT",
                "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] x\r\n{tag} OK done\r\n",
            ),
            ("UID FETCH", on_fetch),
        ]
    }

    #[tokio::test]
    async fn a_fetch_the_server_never_answers_is_a_timeout_not_an_empty_list() {
        let port = scripted_server("* OK ready\r\n", list_server_rules("")).await;
        let mut conn = ImapConn::connect(&settings(port, Duration::from_millis(300)))
            .await
            .unwrap();
        conn.select("INBOX").await.unwrap();
        let err = conn.list().await.unwrap_err();
        assert!(matches!(err, ImapError::Timeout(_)), "{err}");
    }

    #[tokio::test]
    async fn a_fetch_cut_off_by_the_server_is_an_error_not_an_empty_list() {
        // async-imap's own fetch stream ends quietly at end-of-file: Ok(empty).
        let port = scripted_server("* OK ready\r\n", list_server_rules("{close}")).await;
        let mut conn = ImapConn::connect(&settings(port, Duration::from_secs(2)))
            .await
            .unwrap();
        conn.select("INBOX").await.unwrap();
        let err = conn.list().await.unwrap_err();
        assert!(matches!(err, ImapError::Io(_)), "{err}");
        assert!(err.is_transient());
    }

    #[tokio::test]
    async fn mail_announced_after_the_listing_wakes_the_next_wait() {
        let port = scripted_server(
            "* OK ready\r\n",
            list_server_rules(
                "* 1 FETCH (UID 5 RFC822.SIZE 10 FLAGS () INTERNALDATE \"01-Jan-2025 00:00:00 +0000\")\r\n\
                 * 2 EXISTS\r\n{tag} OK done\r\n",
            ),
        )
        .await;
        let mut conn = ImapConn::connect(&settings(port, Duration::from_secs(2)))
            .await
            .unwrap();
        conn.select("INBOX").await.unwrap();
        let listed = conn.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].internal_date, Some(1_735_689_600));
        let (_tx, mut rx) = watch::channel(false);
        let wake = conn.wait(Duration::from_secs(5), &mut rx).await.unwrap();
        assert_eq!(wake, Wake::NewMail);
    }

    #[allow(dead_code)]
    fn futures_are_send(conn: &mut ImapConn, rx: &mut watch::Receiver<bool>) {
        fn is_send<T: Send>(_: &T) {}
        is_send(&conn.wait(Duration::from_secs(1), rx));
        is_send(&conn.list());
        is_send(&ImapConn::connect(&settings(1, Duration::from_secs(1))));
    }
}
