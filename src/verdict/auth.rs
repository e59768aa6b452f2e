//! Sender authenticity (DKIM, SPF, DMARC) as a fact the engine judges.
//!
//! The engine never looks anything up: the daemon or `check` computes an [`AuthResult`] first —
//! by reading the `Authentication-Results` header our own MTA added (`trust-header`, done here,
//! pure) or by verifying the signatures and records itself (`verify`, in `mail::auth`, with DNS) —
//! and hands it in with the mail. This module owns the result types, the reading of trusted
//! `Authentication-Results`, and the policy that turns a result into the `sender_unauthenticated`
//! reason. Never panics, whatever the headers hold: every header is read within fixed limits.

use serde::{Deserialize, Serialize};

use crate::verdict::{Code, Reason};

/// One check's result, with the names of RFC 8601 (`Authentication-Results`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStatus {
    Pass,
    Fail,
    Softfail,
    Neutral,
    None,
    /// A DNS failure (timeout, SERVFAIL): the answer may differ later.
    Temperror,
    /// A broken record or signature: the answer will not change.
    Permerror,
    Policy,
}

impl AuthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStatus::Pass => "pass",
            AuthStatus::Fail => "fail",
            AuthStatus::Softfail => "softfail",
            AuthStatus::Neutral => "neutral",
            AuthStatus::None => "none",
            AuthStatus::Temperror => "temperror",
            AuthStatus::Permerror => "permerror",
            AuthStatus::Policy => "policy",
        }
    }

    /// RFC 8601 spellings, plus the older `hardfail` and `softfail` variants some MTAs write.
    pub fn parse(s: &str) -> Option<AuthStatus> {
        Some(match s.to_ascii_lowercase().as_str() {
            "pass" => AuthStatus::Pass,
            "fail" | "hardfail" => AuthStatus::Fail,
            "softfail" => AuthStatus::Softfail,
            "neutral" => AuthStatus::Neutral,
            "none" => AuthStatus::None,
            "temperror" | "temperr" => AuthStatus::Temperror,
            "permerror" | "permerr" => AuthStatus::Permerror,
            "policy" => AuthStatus::Policy,
            _ => return None,
        })
    }

    /// Which of two results for the same method says more: a pass beats everything, a DNS
    /// failure beats a plain failure (it may pass on the next pass), anything beats `none`.
    fn rank(self) -> u8 {
        match self {
            AuthStatus::Pass => 7,
            AuthStatus::Temperror => 6,
            AuthStatus::Fail => 5,
            AuthStatus::Permerror => 4,
            AuthStatus::Softfail => 3,
            AuthStatus::Policy => 2,
            AuthStatus::Neutral => 1,
            AuthStatus::None => 0,
        }
    }
}

/// Where an [`AuthResult`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthSource {
    /// `Authentication-Results` of our own `authserv_id` (mode `trust-header`).
    Header,
    /// Verified by mailintake with DNS (mode `verify`).
    Verify,
    /// Verified by mailintake with the DNS answers of a file (`check --dns-file`).
    DnsFile,
}

impl AuthSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthSource::Header => "header",
            AuthSource::Verify => "verify",
            AuthSource::DnsFile => "dns_file",
        }
    }
}

/// `auth.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// No check: the From address is trusted as written (the behaviour before issue 9).
    #[default]
    Off,
    /// Read the `Authentication-Results` our MTA added; no DNS.
    TrustHeader,
    /// Verify DKIM, SPF and DMARC here, with DNS.
    Verify,
}

/// `auth.on_fail`: what happens to a mail whose sender is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFail {
    /// Filtered: no ticket, no reply (a reply would go to the person whose address was forged).
    #[default]
    Filter,
    /// Filtered as well, and listed one by one in the operators' digest until someone looks at
    /// it (`quarantine release ID --force-accept` if the sender turns out genuine).
    Quarantine,
    /// A ticket in «Обратная связь» whose reply asks the sender to confirm: for desks that
    /// prefer a possible forgery in the queue to a lost request. The reply goes to the From
    /// address — the real owner of a forged address learns of the forgery.
    Incomplete,
}

impl OnFail {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFail::Filter => "filter",
            OnFail::Quarantine => "quarantine",
            OnFail::Incomplete => "incomplete",
        }
    }
}

/// `auth.require`: what counts as authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Require {
    /// DMARC must pass (the From domain publishes a DMARC record, and DKIM or SPF passed aligned
    /// with it).
    #[default]
    Dmarc,
    /// A DKIM signature of the From domain (or its parent/subdomain) passed, or SPF passed for an
    /// envelope sender of that domain — DMARC's alignment without needing its record.
    DkimOrSpf,
}

impl Require {
    pub fn as_str(self) -> &'static str {
        match self {
            Require::Dmarc => "dmarc",
            Require::DkimOrSpf => "dkim-or-spf",
        }
    }
}

/// The authentication facts of one mail: the verdict JSON's `auth` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthResult {
    pub dkim: AuthStatus,
    pub spf: AuthStatus,
    pub dmarc: AuthStatus,
    pub source: AuthSource,
    /// The `d=` domain of every DKIM signature that passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dkim_domains: Vec<String>,
    /// The domain SPF was checked for (the envelope sender's, or the HELO name's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spf_domain: Option<String>,
    /// Set by the engine when the sender was not authenticated: what was done (`auth.on_fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_fail: Option<OnFail>,
    /// Set by the engine: the `auth.require` the mail was judged by, so that a replay or a
    /// quarantine release judges the stored result by the same policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<Require>,
}

impl AuthResult {
    /// Nothing known: every check `none` (a mail without any trusted result).
    pub fn none(source: AuthSource) -> AuthResult {
        AuthResult {
            dkim: AuthStatus::None,
            spf: AuthStatus::None,
            dmarc: AuthStatus::None,
            source,
            dkim_domains: Vec::new(),
            spf_domain: None,
            on_fail: None,
            require: None,
        }
    }

    /// Every check `temperror`: DNS did not answer within `auth.max_wait`.
    pub fn temperror(source: AuthSource) -> AuthResult {
        AuthResult {
            dkim: AuthStatus::Temperror,
            spf: AuthStatus::Temperror,
            dmarc: AuthStatus::Temperror,
            ..AuthResult::none(source)
        }
    }

    /// Some check could not be completed because DNS failed, and a later try may decide it.
    pub fn has_temperror(&self) -> bool {
        [self.dkim, self.spf, self.dmarc].contains(&AuthStatus::Temperror)
    }

    /// Whether a later try could change the outcome under `require`: a DNS failure in a check
    /// the policy still depends on. A mail DMARC already passed (or, for `dkim-or-spf`, that DKIM
    /// or SPF passed) is judged now even if another lookup failed.
    pub fn worth_waiting(&self, require: Require) -> bool {
        match require {
            Require::Dmarc => self.dmarc == AuthStatus::Temperror,
            Require::DkimOrSpf => {
                self.dkim != AuthStatus::Pass
                    && self.spf != AuthStatus::Pass
                    && (self.dkim == AuthStatus::Temperror || self.spf == AuthStatus::Temperror)
            }
        }
    }

    /// `dkim=pass spf=none dmarc=fail` — one line for digests and `ticket show`.
    pub fn summary(&self) -> String {
        format!(
            "DKIM {}, SPF {}, DMARC {} ({})",
            self.dkim.as_str(),
            self.spf.as_str(),
            self.dmarc.as_str(),
            match self.source {
                AuthSource::Header => "по заголовку Authentication-Results",
                AuthSource::Verify => "проверено mailintake",
                AuthSource::DnsFile => "проверено по файлу DNS",
            }
        )
    }
}

impl SenderAuth {
    /// The input a stored verdict was judged with (its `auth` object), for judging the stored
    /// mail again (replay, quarantine release): authenticity is a fact of the delivery and is
    /// not looked up again.
    pub fn from_stored(stored: &AuthResult) -> SenderAuth {
        let mut result = stored.clone();
        let policy = AuthPolicy {
            require: result.require.take().unwrap_or_default(),
            on_fail: result.on_fail.take().unwrap_or_default(),
        };
        SenderAuth { result, policy }
    }
}

/// What the engine needs besides the result: the desk's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthPolicy {
    pub require: Require,
    pub on_fail: OnFail,
}

/// The authentication input of one mail: its result and the policy to judge it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderAuth {
    pub result: AuthResult,
    pub policy: AuthPolicy,
}

/// Relaxed alignment (RFC 7489 §3.1) without the Public Suffix List: the two domains are equal
/// or one is a subdomain of the other, and the shorter one has at least two labels (so `ru`
/// never aligns with everything under it).
pub fn aligned(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    let (short, long) = if a.len() < b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    short.contains('.') && long.ends_with(&format!(".{short}"))
}

/// The policy: `None` when the sender counts as authenticated, else the reason, whose detail
/// names the check that failed (in Russian, for the operator reading quarantine).
pub fn judge(from: &str, result: &AuthResult, policy: &AuthPolicy) -> Option<Reason> {
    let from_domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
    let checks = format!(
        "DKIM: {}, SPF: {}, DMARC: {}",
        result.dkim.as_str(),
        result.spf.as_str(),
        result.dmarc.as_str()
    );
    let failed = match policy.require {
        Require::Dmarc => {
            if result.dmarc == AuthStatus::Pass {
                return None;
            }
            match result.dmarc {
                AuthStatus::Temperror => format!(
                    "проверка DMARC не завершена: DNS не ответил (temperror; {checks})"
                ),
                AuthStatus::None => format!(
                    "проверка DMARC: у домена {from_domain} нет записи DMARC или письмо не прошло ни DKIM, ни SPF ({checks})"
                ),
                other => format!("проверка DMARC — {} ({checks})", other.as_str()),
            }
        }
        Require::DkimOrSpf => {
            let dkim_ok = result.dkim == AuthStatus::Pass
                && result.dkim_domains.iter().any(|d| aligned(d, from_domain));
            let spf_ok = result.spf == AuthStatus::Pass
                && result
                    .spf_domain
                    .as_deref()
                    .is_some_and(|d| aligned(d, from_domain));
            if dkim_ok || spf_ok {
                return None;
            }
            if result.dkim == AuthStatus::Temperror || result.spf == AuthStatus::Temperror {
                format!("проверка DKIM и SPF не завершена: DNS не ответил (temperror; {checks})")
            } else if result.dkim == AuthStatus::Pass || result.spf == AuthStatus::Pass {
                format!(
                    "подпись DKIM или SPF прошли, но для другого домена, чем {from_domain} ({checks})"
                )
            } else {
                format!("ни подпись DKIM, ни SPF домена {from_domain} не подтверждены ({checks})")
            }
        }
    };
    let consequence = match policy.on_fail {
        OnFail::Filter => "Письмо могло быть отправлено от чужого имени: заявка не создана, ответ не отправлен.",
        OnFail::Quarantine => "Письмо могло быть отправлено от чужого имени: заявка не создана, ответ не отправлен; письмо ждёт проверки оператором (quarantine release --force-accept, если отправитель подлинный).",
        OnFail::Incomplete => "Если письмо отправили вы, подтвердите это ответом на письмо или по телефону СТП 8 (8692) 41-72-22; до подтверждения заявка не будет взята в работу.",
    };
    Some(Reason::new(
        Code::SenderUnauthenticated,
        format!("Не подтверждена подлинность отправителя {from}: {failed}. {consequence}"),
    ))
}

/// Limits on what is read of a header block, so a hostile mail costs bounded work.
const MAX_HEADER_BLOCK: usize = 1024 * 1024;
const MAX_HEADERS: usize = 2000;
const MAX_RESULTS_PER_HEADER: usize = 64;

/// The header block of a raw mail, unfolded, top to bottom: (lower-case name, value). At most
/// [`MAX_HEADERS`] headers from the first [`MAX_HEADER_BLOCK`] bytes.
pub fn header_lines(raw: &[u8]) -> Vec<(String, String)> {
    let block = &raw[..raw.len().min(MAX_HEADER_BLOCK)];
    let text = String::from_utf8_lossy(block);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break; // end of the header block
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                if v.len() < 64 * 1024 {
                    v.push(' ');
                    v.push_str(line.trim());
                }
            }
            continue;
        }
        if out.len() >= MAX_HEADERS {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    out
}

/// Remove RFC 5322 comments `( … )` (nested, with `\` escapes) outside quoted strings.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Split on `sep` outside quoted strings: a quoted property value (which a sender may partly
/// control, e.g. a DKIM `i=`) cannot add a result of its own.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The `by` host of a `Received` header, lower-case.
pub fn received_by(value: &str) -> Option<String> {
    let v = strip_comments(value);
    let mut words = v.split_whitespace();
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("by") {
            return words
                .next()
                .map(|h| h.trim_end_matches([';', '.']).to_ascii_lowercase());
        }
    }
    None
}

/// From a `Received` header written by an MTA like Postfix
/// (`from HELO (rdns [192.0.2.1]) by mx …`): the connecting IP and the HELO name.
pub fn received_from(value: &str) -> Option<(std::net::IpAddr, String)> {
    let lower = value.to_ascii_lowercase();
    let start = lower.find("from ")? + 5;
    let end = lower[start..]
        .find(" by ")
        .map(|i| start + i)
        .unwrap_or(lower.len());
    let clause = &value[start..end];
    let helo = clause
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_string();
    let mut rest = clause;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inner = &after[..close];
        let inner = inner
            .strip_prefix("IPv6:")
            .or_else(|| inner.strip_prefix("ipv6:"))
            .unwrap_or(inner);
        if let Ok(ip) = inner.parse() {
            return Some((ip, helo));
        }
        rest = &after[close + 1..];
    }
    None
}

/// The index of our MTA's `Received` header: the topmost one whose `by` host is `mta_host`.
pub fn our_received(headers: &[(String, String)], mta_host: &str) -> Option<usize> {
    headers.iter().position(|(n, v)| {
        n == "received" && received_by(v).is_some_and(|h| h.eq_ignore_ascii_case(mta_host))
    })
}

/// One `method=result` of an `Authentication-Results` header, with the properties we use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResInfo {
    method: String,
    result: AuthStatus,
    /// `header.d` (DKIM), `smtp.mailfrom` / `smtp.helo` (SPF), `header.from` (DMARC).
    domain: Option<String>,
}

/// Parse an `Authentication-Results` value: its authserv-id and its results.
fn parse_auth_results(value: &str) -> Option<(String, Vec<ResInfo>)> {
    let clean = strip_comments(value);
    let mut parts = split_unquoted(&clean, ';').into_iter();
    let id = parts
        .next()?
        .split_whitespace()
        .next()?
        .to_ascii_lowercase();
    let mut out = Vec::new();
    for part in parts.take(MAX_RESULTS_PER_HEADER) {
        let mut words = part.split_whitespace();
        let Some(first) = words.next() else { continue };
        let Some((method, result)) = first.split_once('=') else {
            continue;
        };
        let method = method.split('/').next().unwrap_or("").to_ascii_lowercase();
        let Some(result) = AuthStatus::parse(result) else {
            continue;
        };
        let mut domain = None;
        for w in words {
            let Some((prop, val)) = w.split_once('=') else {
                continue;
            };
            let val = val.trim_matches('"');
            let prop = prop.to_ascii_lowercase();
            let d = match (method.as_str(), prop.as_str()) {
                ("dkim", "header.d") => Some(val.to_string()),
                ("dkim", "header.i") if domain.is_none() => {
                    Some(val.rsplit_once('@').map(|(_, d)| d).unwrap_or(val).into())
                }
                ("spf", "smtp.mailfrom") => {
                    Some(val.rsplit_once('@').map(|(_, d)| d).unwrap_or(val).into())
                }
                ("spf", "smtp.helo") if domain.is_none() => Some(val.to_string()),
                ("dmarc", "header.from") => Some(val.to_string()),
                _ => None,
            };
            if let Some(d) = d {
                domain = Some(d.to_ascii_lowercase());
            }
        }
        out.push(ResInfo {
            method,
            result,
            domain,
        });
    }
    Some((id, out))
}

/// Mode `trust-header`: the results our own MTA wrote. Only `Authentication-Results` headers
/// whose authserv-id is `authserv_id` and that our MTA (or a later hop of ours) added — above
/// our MTA's `Received` line, since every hop puts its headers on top — are read: a header
/// below that line was in the mail when it reached us, i.e. written by the sender, and a
/// header with another authserv-id is someone else's claim. Without our `Received` line nothing
/// is trusted and every check is `none`.
pub fn trusted_results(raw: &[u8], authserv_id: &str, mta_host: &str) -> AuthResult {
    let headers = header_lines(raw);
    let mut result = AuthResult::none(AuthSource::Header);
    let Some(limit) = our_received(&headers, mta_host) else {
        return result;
    };
    for (name, value) in &headers[..limit] {
        if name != "authentication-results" {
            continue;
        }
        let Some((id, infos)) = parse_auth_results(value) else {
            continue;
        };
        if !id.eq_ignore_ascii_case(authserv_id) {
            continue;
        }
        for info in infos {
            let slot = match info.method.as_str() {
                "dkim" => &mut result.dkim,
                "spf" => &mut result.spf,
                "dmarc" => &mut result.dmarc,
                _ => continue,
            };
            if info.method == "dkim" && info.result == AuthStatus::Pass {
                if let Some(d) = &info.domain {
                    if !result.dkim_domains.contains(d) && result.dkim_domains.len() < 16 {
                        result.dkim_domains.push(d.clone());
                    }
                }
            }
            if info.result.rank() > slot.rank() {
                *slot = info.result;
                if info.method == "spf" {
                    result.spf_domain = info.domain.clone();
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "mx.sevmiac.ru";

    fn mail(headers: &str) -> Vec<u8> {
        format!("{headers}From: t.ivanova@sev.gov.ru\r\nSubject: x\r\n\r\nbody\r\n").into_bytes()
    }

    #[test]
    fn reads_our_results_above_our_received_line() {
        let raw = mail(
            "Authentication-Results: mx.sevmiac.ru;\r\n\tdkim=pass (2048-bit key) header.d=sev.gov.ru header.s=mail;\r\n\tspf=pass smtp.mailfrom=t.ivanova@sev.gov.ru;\r\n\tdmarc=pass header.from=sev.gov.ru\r\n\
             Received: from out.sev.gov.ru (out.sev.gov.ru [192.0.2.1])\r\n\tby mx.sevmiac.ru (Postfix) with ESMTPS id 1;\r\n",
        );
        let r = trusted_results(&raw, OURS, OURS);
        assert_eq!(
            (r.dkim, r.spf, r.dmarc),
            (AuthStatus::Pass, AuthStatus::Pass, AuthStatus::Pass)
        );
        assert_eq!(r.dkim_domains, vec!["sev.gov.ru"]);
        assert_eq!(r.spf_domain.as_deref(), Some("sev.gov.ru"));
        assert!(judge("t.ivanova@sev.gov.ru", &r, &AuthPolicy::default()).is_none());
    }

    #[test]
    fn forged_results_from_another_authserv_id_are_ignored() {
        let raw = mail(
            "Authentication-Results: evil.example; dkim=pass header.d=sev.gov.ru; spf=pass smtp.mailfrom=sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n\
             Received: from evil.example (evil.example [198.51.100.7]) by mx.sevmiac.ru (Postfix) with ESMTP id 2;\r\n",
        );
        let r = trusted_results(&raw, OURS, OURS);
        assert_eq!(r, AuthResult::none(AuthSource::Header));
        let reason = judge("t.ivanova@sev.gov.ru", &r, &AuthPolicy::default()).unwrap();
        assert_eq!(reason.code, Code::SenderUnauthenticated);
        assert!(reason.detail.contains("DMARC"), "{}", reason.detail);
    }

    #[test]
    fn our_authserv_id_below_our_received_line_is_forged() {
        // The attacker wrote our own authserv-id; our MTA's Received line is above it.
        let raw = mail(
            "Received: from evil.example (evil.example [198.51.100.7]) by mx.sevmiac.ru (Postfix) with ESMTP id 3;\r\n\
             Authentication-Results: mx.sevmiac.ru; dkim=pass header.d=sev.gov.ru; dmarc=pass header.from=sev.gov.ru\r\n",
        );
        let r = trusted_results(&raw, OURS, OURS);
        assert_eq!(r.dmarc, AuthStatus::None);
        assert!(r.dkim_domains.is_empty());
    }

    #[test]
    fn no_received_line_of_ours_trusts_nothing() {
        let raw =
            mail("Authentication-Results: mx.sevmiac.ru; dmarc=pass header.from=sev.gov.ru\r\n");
        assert_eq!(trusted_results(&raw, OURS, OURS).dmarc, AuthStatus::None);
    }

    #[test]
    fn comments_and_case_do_not_confuse_the_reader() {
        let raw = mail(
            "Authentication-Results: MX.SEVMIAC.RU (version; x=1) 1; DKIM=Pass (good; d=x) header.d=\"Sev.Gov.Ru\"; dmarc=fail (p=reject) header.from=sev.gov.ru\r\n\
             Received: by mx.sevmiac.ru (Postfix, from userid 0) id 4;\r\n",
        );
        let r = trusted_results(&raw, OURS, OURS);
        assert_eq!(r.dkim, AuthStatus::Pass);
        assert_eq!(r.dmarc, AuthStatus::Fail);
        assert_eq!(r.dkim_domains, vec!["sev.gov.ru"]);
    }

    #[test]
    fn a_quoted_value_cannot_add_a_result() {
        let raw = mail(
            "Authentication-Results: mx.sevmiac.ru; dkim=fail header.i=\"@x; dmarc=pass\" header.d=evil.example; dmarc=fail header.from=sev.gov.ru\r\n\
             Received: from evil.example (evil.example [198.51.100.7]) by mx.sevmiac.ru (Postfix) id 6;\r\n",
        );
        let r = trusted_results(&raw, OURS, OURS);
        assert_eq!(r.dmarc, AuthStatus::Fail);
        assert_eq!(r.dkim, AuthStatus::Fail);
    }

    #[test]
    fn dkim_or_spf_needs_alignment_with_the_from_domain() {
        let mut r = AuthResult::none(AuthSource::Verify);
        r.dkim = AuthStatus::Pass;
        r.dkim_domains = vec!["evil.example".into()];
        let p = AuthPolicy {
            require: Require::DkimOrSpf,
            on_fail: OnFail::Filter,
        };
        let reason = judge("t.ivanova@sev.gov.ru", &r, &p).unwrap();
        assert!(
            reason.detail.contains("другого домена"),
            "{}",
            reason.detail
        );
        r.dkim_domains = vec!["mail.sev.gov.ru".into()];
        assert!(judge("t.ivanova@sev.gov.ru", &r, &p).is_none());
        r.dkim = AuthStatus::Fail;
        r.spf = AuthStatus::Pass;
        r.spf_domain = Some("sev.gov.ru".into());
        assert!(judge("t.ivanova@sev.gov.ru", &r, &p).is_none());
    }

    #[test]
    fn alignment_is_relaxed_but_not_to_a_bare_tld() {
        assert!(aligned("sev.gov.ru", "SEV.GOV.RU."));
        assert!(aligned("mail.sev.gov.ru", "sev.gov.ru"));
        assert!(!aligned("ru", "sev.gov.ru"));
        assert!(!aligned("evilsev.gov.ru", "sev.gov.ru"));
        assert!(!aligned("", "sev.gov.ru"));
    }

    #[test]
    fn waiting_only_when_the_policy_depends_on_the_failed_lookup() {
        let mut r = AuthResult::none(AuthSource::Verify);
        r.dkim = AuthStatus::Temperror;
        r.spf = AuthStatus::Pass;
        r.dmarc = AuthStatus::Pass;
        assert!(!r.worth_waiting(Require::Dmarc));
        assert!(!r.worth_waiting(Require::DkimOrSpf));
        r.spf = AuthStatus::Fail;
        r.dmarc = AuthStatus::Temperror;
        assert!(r.worth_waiting(Require::Dmarc));
        assert!(r.worth_waiting(Require::DkimOrSpf));
        r.dmarc = AuthStatus::Fail;
        assert!(!r.worth_waiting(Require::Dmarc));
    }

    #[test]
    fn temperror_names_dns() {
        let r = AuthResult::temperror(AuthSource::Verify);
        assert!(r.has_temperror());
        let reason = judge("a@sev.gov.ru", &r, &AuthPolicy::default()).unwrap();
        assert!(reason.detail.contains("temperror"), "{}", reason.detail);
    }

    #[test]
    fn received_gives_ip_and_helo() {
        let v =
            "from localhost (localhost [127.0.0.1]) by mail.test.local (Postfix) with ESMTP id 5";
        assert_eq!(
            received_from(v),
            Some(("127.0.0.1".parse().unwrap(), "localhost".into()))
        );
        let v6 = "from out.sev.gov.ru (out.sev.gov.ru [IPv6:2001:db8::1]) by mx";
        assert_eq!(
            received_from(v6).unwrap().0,
            "2001:db8::1".parse::<std::net::IpAddr>().unwrap()
        );
        assert_eq!(
            received_from("by mx.sevmiac.ru (Postfix, from userid 0)"),
            None
        );
        assert_eq!(received_by(v).as_deref(), Some("mail.test.local"));
    }

    #[test]
    fn hostile_headers_are_bounded() {
        let mut raw = Vec::new();
        raw.extend_from_slice(b"Authentication-Results: mx.sevmiac.ru");
        for _ in 0..100_000 {
            raw.extend_from_slice(b"; dkim=pass header.d=((((");
        }
        raw.extend_from_slice(b"\r\nReceived: by mx.sevmiac.ru; x\r\n\r\n");
        let _ = trusted_results(&raw, OURS, OURS);
        let _ = header_lines(&[0xff; 10]);
        let _ = received_by("by");
        let _ = strip_comments(")))(((\\");
    }
}
