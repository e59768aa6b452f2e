//! From raw mail bytes to the facts the engine judges: sender, subject, the headers that matter
//! for RFC 3834, the new body text, and every attachment (inline parts included).
//!
//! MIME parsing and charset decoding are mail-parser's; HTML is turned into text by html2text.
//! This module only walks the parsed tree, with limits on depth and part count, and decides which
//! parts are body and which are files. It never panics and never touches I/O.

use std::borrow::Cow;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};

/// Structural limits: a mail deeper or wider than this is judged on what was read.
#[derive(Debug, Clone, Copy)]
pub struct MimeLimits {
    pub max_depth: usize,
    pub max_parts: usize,
    /// Body text beyond this many bytes is not read for the form.
    pub max_body_text: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        MimeLimits {
            max_depth: 32,
            max_parts: 500,
            max_body_text: 256 * 1024,
        }
    }
}

/// One file in the mail.
#[derive(Debug, Clone)]
pub struct Part<'a> {
    /// Decoded name; a generated one for a nameless part.
    pub name: String,
    /// Whether the mail named it (a nameless inline image has a generated name).
    pub named: bool,
    pub content_type: String,
    pub data: Cow<'a, [u8]>,
    pub inline: bool,
}

/// What the engine needs to know about one mail.
#[derive(Debug, Clone, Default)]
pub struct MailFacts<'a> {
    /// The From address (lower-cased), or `None` when there is none or it cannot be read.
    pub from: Option<String>,
    pub subject: String,
    pub message_id: Option<String>,
    /// In-Reply-To and References ids, without angle brackets.
    pub thread_ids: Vec<String>,
    /// Top-level headers, names lower-cased, values raw (unfolded, trimmed).
    pub headers: Vec<(String, String)>,
    /// `multipart/report` report-type, lower-cased, when the mail is a report.
    pub report_type: Option<String>,
    /// The body text (plain preferred, HTML converted), before quote stripping.
    pub body: String,
    pub parts: Vec<Part<'a>>,
    /// A structural limit (depth, part count) cut the walk short.
    pub truncated: bool,
}

impl MailFacts<'_> {
    /// The first value of a top-level header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parse `raw` into a mail-parser `Message`; `None` when there are no headers at all.
pub fn parse(raw: &[u8]) -> Option<Message<'_>> {
    MessageParser::default().parse(raw)
}

/// Extract the facts from a parsed message.
pub fn facts<'a>(msg: &'a Message<'a>, limits: &MimeLimits) -> MailFacts<'a> {
    let mut f = MailFacts {
        from: from_address(msg),
        subject: msg
            .subject()
            .map(|s| collapse_ws(s).trim().to_string())
            .unwrap_or_default(),
        message_id: msg.message_id().map(|s| s.trim().to_string()),
        ..Default::default()
    };
    for v in [msg.in_reply_to(), msg.references()] {
        if let Some(list) = v.as_text_list() {
            f.thread_ids.extend(list.iter().map(|s| s.to_string()));
        } else if let Some(t) = v.as_text() {
            f.thread_ids.push(t.to_string());
        }
    }
    for (name, value) in msg.headers_raw() {
        f.headers.push((
            name.to_ascii_lowercase(),
            collapse_ws(value).trim().to_string(),
        ));
    }
    if let Some(ct) = msg.root_part().content_type() {
        if ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        {
            f.report_type = Some(
                ct.attribute("report-type")
                    .unwrap_or("")
                    .to_ascii_lowercase(),
            );
        }
    }
    let mut walker = Walker {
        msg,
        limits,
        seen_parts: 0,
        body: String::new(),
        parts: Vec::new(),
        truncated: false,
        nameless: 0,
    };
    walker.walk(0, 0, true);
    f.body = walker.body;
    f.parts = walker.parts;
    f.truncated = walker.truncated;
    f
}

pub(crate) fn from_address(msg: &Message<'_>) -> Option<String> {
    let addr = msg.from()?.first()?.address.as_deref()?.trim();
    // A trailing dot (`sev.gov.ru.`) is the root of DNS, the same domain; replies must go to
    // the address without it (SMTP servers refuse it).
    let addr = addr
        .trim_matches(|c| c == '<' || c == '>')
        .trim_end_matches('.')
        .to_lowercase();
    let (local, domain) = addr.rsplit_once('@')?;
    let valid = !local.is_empty()
        && !domain.is_empty()
        && !addr.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains('@');
    valid.then_some(addr)
}

struct Walker<'a, 'l> {
    msg: &'a Message<'a>,
    limits: &'l MimeLimits,
    seen_parts: usize,
    body: String,
    parts: Vec<Part<'a>>,
    truncated: bool,
    nameless: usize,
}

impl<'a> Walker<'a, '_> {
    /// Walk part `id`; `want_body` says whether text found here is the mail's body (false inside
    /// the alternatives that were not chosen, where files still count but text does not).
    fn walk(&mut self, id: u32, depth: usize, want_body: bool) {
        if depth > self.limits.max_depth || self.seen_parts >= self.limits.max_parts {
            self.truncated = true;
            return;
        }
        self.seen_parts += 1;
        let Some(part) = self.msg.parts.get(id as usize) else {
            return;
        };
        match &part.body {
            PartType::Multipart(children) => {
                let is_alt = part
                    .content_type()
                    .and_then(|c| c.subtype())
                    .is_some_and(|s| s.eq_ignore_ascii_case("alternative"));
                let chosen = if is_alt {
                    self.choose_alternative(children)
                } else {
                    None
                };
                for &child in children.iter() {
                    let body_here = want_body && chosen.is_none_or(|c| c == child);
                    self.walk(child, depth + 1, body_here);
                }
            }
            PartType::Text(text) if is_body_text(part) => {
                if want_body {
                    let text = self.undeclared_charset(part, text);
                    match flowed(part) {
                        Some(delsp) => self.push_body(&unflow(&text, delsp)),
                        None => self.push_body(&text),
                    }
                }
            }
            PartType::Html(html) if is_body_text(part) => {
                if want_body {
                    let text = html_to_text(html, self.limits.max_body_text);
                    self.push_body(&text);
                }
            }
            PartType::Text(text) | PartType::Html(text) => {
                // A text file's bytes are judged as sent, not after charset conversion (which
                // would hide, say, executable bytes behind replacement characters).
                let data = self
                    .transfer_decoded(part)
                    .map(Cow::Owned)
                    .unwrap_or(Cow::Borrowed(text.as_bytes()));
                self.push_file(part, data);
            }
            PartType::Binary(data) | PartType::InlineBinary(data) => {
                self.push_file(part, Cow::Borrowed(data.as_ref()));
            }
            PartType::Message(nested) => {
                // An attached mail is one file (.eml) to the regulation; its own parts are not
                // opened, so they are neither counted nor judged.
                self.push_file(part, Cow::Borrowed(nested.raw_message.as_ref()));
            }
        }
    }

    /// The part's body with only its transfer encoding undone (base64 or quoted-printable, as the
    /// header says — also when the parser gave up on the encoding, as with a mail cut short in the
    /// middle of a base64 block, where what could be decoded is kept).
    fn transfer_decoded(&self, part: &MessagePart<'_>) -> Option<Vec<u8>> {
        let raw = self.msg.raw_message.as_ref();
        let (start, end) = (part.offset_body as usize, part.offset_end as usize);
        let body = raw.get(start..end.min(raw.len()))?;
        let cte = part
            .headers
            .iter()
            .find(|h| {
                h.name
                    .as_str()
                    .eq_ignore_ascii_case("content-transfer-encoding")
            })
            .and_then(|h| h.value.as_text())
            .map(|s| s.trim().to_ascii_lowercase());
        match cte.as_deref() {
            Some("base64") => {
                use mail_parser::decoders::base64::base64_decode;
                let clean: Vec<u8> = body
                    .iter()
                    .copied()
                    .filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                    .collect();
                base64_decode(&clean).or_else(|| {
                    // Cut short: decode the whole groups that arrived.
                    let data: Vec<u8> = clean.into_iter().filter(|&b| b != b'=').collect();
                    base64_decode(&data[..data.len() / 4 * 4])
                })
            }
            Some("quoted-printable") => {
                mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
            }
            _ => Some(body.to_vec()),
        }
    }

    /// Text sent without a declared charset that is not UTF-8 is, in Sevastopol, windows-1251
    /// (The Bat! and old Outlook do this); decode it as such instead of losing the letters.
    fn undeclared_charset<'t>(&self, part: &MessagePart<'_>, text: &'t str) -> Cow<'t, str> {
        let declared = part
            .content_type()
            .is_some_and(|c| c.attribute("charset").is_some());
        if declared || !text.contains('\u{FFFD}') {
            return Cow::Borrowed(text);
        }
        match self.transfer_decoded(part) {
            Some(bytes) if std::str::from_utf8(&bytes).is_err() => {
                let (decoded, _, _) = encoding_rs::WINDOWS_1251.decode(&bytes);
                Cow::Owned(decoded.into_owned())
            }
            _ => Cow::Borrowed(text),
        }
    }

    /// In a multipart/alternative, the first child whose subtree has a text/plain body, else the
    /// first with HTML.
    fn choose_alternative(&self, children: &[u32]) -> Option<u32> {
        let find = |want_html: bool| {
            children.iter().copied().find(|&c| {
                self.subtree_has(c, 0, &|p: &MessagePart<'_>| match &p.body {
                    PartType::Text(_) => !want_html && is_body_text(p),
                    PartType::Html(_) => want_html && is_body_text(p),
                    _ => false,
                })
            })
        };
        find(false).or_else(|| find(true))
    }

    fn subtree_has(&self, id: u32, depth: usize, pred: &dyn Fn(&MessagePart<'_>) -> bool) -> bool {
        if depth > self.limits.max_depth {
            return false;
        }
        let Some(part) = self.msg.parts.get(id as usize) else {
            return false;
        };
        match &part.body {
            PartType::Multipart(children) => children
                .iter()
                .take(self.limits.max_parts)
                .any(|&c| self.subtree_has(c, depth + 1, pred)),
            _ => pred(part),
        }
    }

    fn push_body(&mut self, text: &str) {
        let room = self.limits.max_body_text.saturating_sub(self.body.len());
        if room == 0 {
            return;
        }
        if !self.body.is_empty() {
            self.body.push('\n');
        }
        self.body.push_str(truncate_at_char(text, room));
    }

    fn push_file(&mut self, part: &'a MessagePart<'a>, data: Cow<'a, [u8]>) {
        let content_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(s) => format!("{}/{}", c.ctype(), s),
                None => c.ctype().to_string(),
            })
            .unwrap_or_else(|| "application/octet-stream".into())
            .to_ascii_lowercase();
        let disposition_inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let inline = disposition_inline || part.content_id().is_some();
        let given = part
            .attachment_name()
            .map(sanitize_name)
            .filter(|n| !n.is_empty());
        let named = given.is_some();
        let name = given.unwrap_or_else(|| {
            self.nameless += 1;
            let ext = match content_type.as_str() {
                "image/png" => "png",
                "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
                "image/gif" => "gif",
                "message/rfc822" => "eml",
                "text/plain" => "txt",
                "text/html" => "html",
                _ => "bin",
            };
            format!("part{:03}.{ext}", self.nameless)
        });
        self.parts.push(Part {
            name,
            named,
            content_type,
            data,
            inline,
        });
    }
}

/// `Some(delsp)` when the part is `format=flowed` (RFC 3676).
fn flowed(part: &MessagePart<'_>) -> Option<bool> {
    let ct = part.content_type()?;
    ct.attribute("format")
        .filter(|f| f.eq_ignore_ascii_case("flowed"))?;
    Some(
        ct.attribute("delsp")
            .is_some_and(|d| d.eq_ignore_ascii_case("yes")),
    )
}

/// Undo RFC 3676 soft line breaks (a line ending in a space continues on the next line), so that a
/// value Thunderbird wrapped at 72 columns is one line again. mail-parser 0.11 leaves flowed text
/// as sent, so this small step is ours; quoted (`>`) and signature (`-- `) lines are left alone.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending = false; // the previous line was soft-broken
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let is_sig = line == "-- ";
        let quoted = line.starts_with('>');
        // Space-stuffing: one leading space was added by the sender.
        let line = line.strip_prefix(' ').unwrap_or(line);
        if !pending && !out.is_empty() {
            out.push('\n');
        }
        if !is_sig && !quoted && line.ends_with(' ') {
            let keep = if delsp { &line[..line.len() - 1] } else { line };
            out.push_str(keep);
            pending = true;
        } else {
            out.push_str(line);
            pending = false;
        }
    }
    out
}

/// A text part is body text unless it is explicitly an attachment or carries a file name.
/// A Content-ID alone does not make it a file: some clients put one on every part.
fn is_body_text(part: &MessagePart<'_>) -> bool {
    let attachment = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    !attachment && part.attachment_name().is_none()
}

/// File names come from senders: drop path components and control characters.
fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim();
    // Keep names short enough for a reply line; cut on a char boundary.
    truncate_at_char(trimmed, 255).to_string()
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() || c == '\u{a0}' {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.push(c);
        }
    }
    out
}

/// HTML → text with html2text, in raw mode so that each table cell ends up on its own line
/// (a two-column Word table becomes "label" line, "value" line, which the form parser reads).
/// html2text walks the DOM recursively, so input nested deeper than a sane document is reduced
/// to its text by dropping the tags instead (this fallback is the only hand-written HTML handling
/// here, and exists to keep a hostile mail from exhausting the stack).
pub fn html_to_text(html: &str, max_len: usize) -> String {
    let html = truncate_at_char(html, max_len.saturating_mul(4));
    if nesting_depth(html) > 200 {
        return strip_tags(html);
    }
    let cfg = html2text::config::plain_no_decorate()
        .raw_mode(true)
        .no_link_wrapping();
    match cfg.string_from_read(html.as_bytes(), 4000) {
        Ok(text) => text,
        Err(_) => strip_tags(html),
    }
}

/// A cheap upper bound on tag nesting: opening tags minus closing tags, at its maximum.
fn nesting_depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut max) = (0i64, 0i64);
    for i in 0..bytes.len() {
        if bytes[i] == b'<' {
            match bytes.get(i + 1) {
                Some(b'/') => depth -= 1,
                Some(c) if c.is_ascii_alphabetic() => depth += 1,
                _ => {}
            }
            max = max.max(depth);
        }
    }
    max.max(0) as usize
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push('\n');
            }
            '>' => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&laquo;", "«")
        .replace("&raquo;", "»")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts_of(raw: &str) -> (Option<String>, String, Vec<(String, bool)>) {
        let msg = parse(raw.as_bytes()).unwrap();
        let f = facts(&msg, &MimeLimits::default());
        (
            f.from,
            f.body,
            f.parts.iter().map(|p| (p.name.clone(), p.inline)).collect(),
        )
    }

    #[test]
    fn display_name_never_counts_as_address() {
        let (from, _, _) =
            facts_of("From: \"help@sev.gov.ru\" <x@Evil.com>\r\nSubject: a\r\n\r\nbody\r\n");
        assert_eq!(from.as_deref(), Some("x@evil.com"));
    }

    #[test]
    fn text_part_with_content_id_is_body() {
        let raw = "From: a@sev.gov.ru\r\nContent-Type: multipart/related; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\nContent-ID: <t1>\r\n\r\nТекст\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <i1>\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let (_, body, parts) = facts_of(raw);
        assert!(body.contains("Текст"));
        assert_eq!(parts, vec![("part001.png".to_string(), true)]);
    }

    #[test]
    fn html_table_cells_become_lines() {
        let t = html_to_text(
            "<table><tr><td>Данные о заявителе</td><td>Иванова &laquo;МО&raquo;</td></tr></table>",
            10_000,
        );
        assert!(t.contains("Данные о заявителе\n"), "{t}");
        assert!(t.contains("Иванова «МО»"), "{t}");
    }

    #[test]
    fn flowed_lines_are_joined() {
        assert_eq!(
            unflow(
                "Шаги: Карта \r\nбеременной\r\nОшибка: x\r\n-- \r\nподпись",
                false
            ),
            "Шаги: Карта беременной\nОшибка: x\n-- \nподпись"
        );
    }

    #[test]
    fn deep_html_does_not_recurse() {
        let html = "<div>".repeat(100_000) + "x";
        assert!(html_to_text(&html, 1 << 20).contains('x'));
    }
}
