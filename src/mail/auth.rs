//! Sender authentication with DNS: DKIM, SPF and DMARC verified by mail-auth (mode `verify`),
//! or read from our MTA's `Authentication-Results` (mode `trust-header`, no I/O).
//!
//! The result is a fact handed to the pure engine ([`crate::verdict::auth`]); nothing here
//! decides what happens to the mail. DNS answers come from a resolver (the system's or an
//! address in the config) or, offline, from a file of records ([`Zone`], `check --dns-file`),
//! in which case nothing touches the network. Lookups run on one thread of their own with its
//! own runtime, so the daemon and `check` call a plain function and one resolver (with its
//! cache) serves every mail. Never panics on a mail: mail-auth parses within its own limits,
//! and a mail it cannot parse gets `none` everywhere.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dkim::DomainKeyReport;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::spf::Spf;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, DnsError, MessageAuthenticator, Parameters,
    RecordSet, ResolverCache, SpfResult, Txt, MX,
};

use crate::verdict::auth::{
    header_lines, our_received, received_from, trusted_results, AuthMode, AuthPolicy, AuthResult,
    AuthSource, AuthStatus, SenderAuth,
};

/// Where DNS questions go in mode `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolverAddr {
    /// `/etc/resolv.conf`.
    System,
    /// One recursive resolver (UDP, then TCP).
    At(SocketAddr),
}

impl ResolverAddr {
    /// `"system"`, `"192.0.2.53"` or `"192.0.2.53:5353"` (`[::1]:53` for IPv6).
    pub fn parse(s: &str) -> Result<ResolverAddr, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("system") {
            return Ok(ResolverAddr::System);
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            return Ok(ResolverAddr::At(sa));
        }
        if let Ok(ip) = s.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(ResolverAddr::At(SocketAddr::new(ip, 53)));
        }
        Err(format!(
            "`{s}` is not a resolver address: write \"system\" (resolv.conf), an IP address, or IP:PORT"
        ))
    }
}

/// Everything the authenticator needs, taken from `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub mode: AuthMode,
    /// The authserv-id of our MTA's `Authentication-Results`.
    pub authserv_id: String,
    /// The `by` host of our MTA's `Received` line.
    pub mta_host: String,
    pub resolver: ResolverAddr,
    /// One DNS query.
    pub timeout: Duration,
    /// Static answers instead of the resolver (offline).
    pub zone: Option<Zone>,
}

/// DNS answers from a file, for `check --dns-file` and closed set-ups: one record a line,
/// `NAME TYPE VALUE`, `#` starts a comment:
///
/// ```text
/// sev.gov.ru                   TXT  "v=spf1 ip4:192.0.2.0/24 -all"
/// _dmarc.sev.gov.ru            TXT  "v=DMARC1; p=reject"
/// mail._domainkey.sev.gov.ru   TXT  "v=DKIM1; k=ed25519; p=11qY…"
/// out.sev.gov.ru               A    192.0.2.1
/// sev.gov.ru                   MX   10 out.sev.gov.ru
/// broken.example               SERVFAIL
/// ```
///
/// A TXT name not in the file does not exist (NXDOMAIN); an MX name has no records; an A/AAAA
/// name not in the file is a temporary error (the file must hold what SPF's `a`, `mx` and
/// `exists` need — `exists` could not tell "absent" from "empty" otherwise). `SERVFAIL` makes
/// TXT questions for that name fail temporarily, as a broken DNS server would.
#[derive(Clone, Default)]
pub struct Zone {
    txt: HashMap<Box<str>, Txt>,
    a: HashMap<Box<str>, RecordSet<Ipv4Addr>>,
    aaaa: HashMap<Box<str>, RecordSet<Ipv6Addr>>,
    mx: HashMap<Box<str>, RecordSet<MX>>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Zone({} TXT, {} A, {} AAAA, {} MX names)",
            self.txt.len(),
            self.a.len(),
            self.aaaa.len(),
            self.mx.len()
        )
    }
}

fn fqdn(name: &str) -> Box<str> {
    let mut n = name.trim().to_ascii_lowercase();
    if !n.ends_with('.') {
        n.push('.');
    }
    n.into_boxed_str()
}

/// `"a" "b"` → `ab`; an unquoted value is taken as written.
fn txt_value(s: &str) -> Result<Vec<u8>, String> {
    let s = s.trim();
    if !s.starts_with('"') {
        return Ok(s.as_bytes().to_vec());
    }
    let mut out = String::new();
    let mut chars = s.chars();
    loop {
        match chars.next() {
            None => return Ok(out.into_bytes()),
            Some(c) if c.is_whitespace() => continue,
            Some('"') => loop {
                match chars.next() {
                    None => return Err("unterminated quoted string".into()),
                    Some('"') => break,
                    Some('\\') => out.extend(chars.next()),
                    Some(c) => out.push(c),
                }
            },
            Some(_) => return Err("text outside the quoted strings".into()),
        }
    }
}

/// The typed answer mail-auth expects: the kind of TXT record follows from the name, as it
/// does for the questions mail-auth asks.
fn typed_txt(name: &str, record: &[u8]) -> Txt {
    if name.starts_with("_dmarc.") {
        Dmarc::parse(record).into()
    } else if name.starts_with("_report._domainkey.") {
        DomainKeyReport::parse(record).into()
    } else if name.contains("._domainkey.") {
        DomainKey::parse(record).into()
    } else {
        Spf::parse(record).into()
    }
}

fn set<T: Clone>(v: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(v),
        dnssec_status: Default::default(),
    }
}

impl Zone {
    /// Parse the text of a DNS file; errors name the line.
    pub fn parse(text: &str) -> Result<Zone, String> {
        let mut txt: HashMap<Box<str>, Vec<Vec<u8>>> = HashMap::new();
        let mut servfail: Vec<Box<str>> = Vec::new();
        let mut a: HashMap<Box<str>, Vec<Ipv4Addr>> = HashMap::new();
        let mut aaaa: HashMap<Box<str>, Vec<Ipv6Addr>> = HashMap::new();
        let mut mx: HashMap<Box<str>, Vec<(u16, Box<str>)>> = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let err = |m: String| format!("line {}: {m}", i + 1);
            let (name, rest) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| err("expected NAME TYPE VALUE".into()))?;
            let rest = rest.trim();
            let (kind, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let value = value.trim();
            let key = fqdn(name);
            match kind.to_ascii_uppercase().as_str() {
                "TXT" => txt
                    .entry(key)
                    .or_default()
                    .push(txt_value(value).map_err(err)?),
                "A" => a.entry(key).or_default().push(
                    value
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not an IPv4 address")))?,
                ),
                "AAAA" => aaaa.entry(key).or_default().push(
                    value
                        .parse()
                        .map_err(|_| err(format!("`{value}` is not an IPv6 address")))?,
                ),
                "MX" => {
                    let (pref, host) = value
                        .split_once(char::is_whitespace)
                        .ok_or_else(|| err("MX needs a preference and a host".into()))?;
                    let pref: u16 = pref
                        .parse()
                        .map_err(|_| err(format!("`{pref}` is not an MX preference")))?;
                    mx.entry(key).or_default().push((pref, fqdn(host)));
                }
                "SERVFAIL" => servfail.push(key),
                other => {
                    return Err(err(format!(
                        "unknown record type `{other}` (TXT, A, AAAA, MX or SERVFAIL)"
                    )))
                }
            }
        }
        let mut z = Zone::default();
        for (name, records) in txt {
            // Like a resolver: the first record of the expected kind wins.
            let mut answer = Txt::Error(mail_auth::Error::Dns(DnsError::InvalidRecordType));
            for r in &records {
                answer = typed_txt(&name, r);
                if !matches!(answer, Txt::Error(_)) {
                    break;
                }
            }
            z.txt.insert(name, answer);
        }
        for name in servfail {
            let e = DnsError::Resolver("SERVFAIL (DNS file)".into());
            z.txt.insert(name, Txt::Error(mail_auth::Error::Dns(e)));
        }
        z.a = a.into_iter().map(|(k, v)| (k, set(v))).collect();
        z.aaaa = aaaa.into_iter().map(|(k, v)| (k, set(v))).collect();
        for (name, mut hosts) in mx {
            hosts.sort_by_key(|h| h.0);
            let mut by_pref: Vec<MX> = Vec::new();
            for (pref, host) in hosts {
                match by_pref.last_mut() {
                    Some(m) if m.preference == pref => {
                        let mut v = m.exchanges.to_vec();
                        v.push(host);
                        m.exchanges = v.into_boxed_slice();
                    }
                    _ => by_pref.push(MX {
                        exchanges: vec![host].into_boxed_slice(),
                        preference: pref,
                    }),
                }
            }
            z.mx.insert(name, set(by_pref));
        }
        Ok(z)
    }

    pub fn load(path: &Path) -> Result<Zone, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Zone::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A read-only "cache" answering from the zone: how mail-auth is fed records without DNS.
/// `miss` is the answer for a name the zone does not hold (`None`: ask the resolver).
struct Fixed<'z, K, V> {
    map: &'z HashMap<K, V>,
    miss: Option<V>,
}

impl<K: std::hash::Hash + Eq, V: Clone> ResolverCache<K, V> for Fixed<'_, K, V> {
    fn get<Q>(&self, name: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.get(name).cloned().or_else(|| self.miss.clone())
    }
    fn remove<Q>(&self, _: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }
    fn insert(&self, _: K, _: V, _: std::time::Instant) {}
}

/// One mail to verify, sent to the lookup thread.
struct Job {
    raw: Vec<u8>,
    headers_only: bool,
    reply: mpsc::SyncSender<AuthResult>,
}

/// Computes the [`AuthResult`] of a mail per `auth.mode`.
pub struct Authenticator {
    settings: AuthSettings,
    jobs: Option<Mutex<mpsc::Sender<Job>>>,
}

impl Authenticator {
    /// For mode `verify` this starts the lookup thread and its resolver; a resolver that cannot
    /// be set up (unreadable resolv.conf) is an error here, at start, not on the first mail.
    pub fn new(settings: AuthSettings) -> Result<Authenticator, String> {
        let jobs = if settings.mode == AuthMode::Verify {
            Some(Mutex::new(start_worker(&settings)?))
        } else {
            None
        };
        Ok(Authenticator { settings, jobs })
    }

    pub fn mode(&self) -> AuthMode {
        self.settings.mode
    }

    /// The result for one mail; `None` in mode `off`. A DNS failure gives `temperror` in the
    /// checks it touched: the caller decides whether to wait (the daemon) or judge now.
    /// `headers_only`: the body was not downloaded, so DKIM cannot be checked (`none`).
    pub fn authenticate(&self, raw: &[u8], headers_only: bool) -> Option<AuthResult> {
        match self.settings.mode {
            AuthMode::Off => None,
            AuthMode::TrustHeader => Some(trusted_results(
                raw,
                &self.settings.authserv_id,
                &self.settings.mta_host,
            )),
            AuthMode::Verify => Some(self.verify_blocking(raw, headers_only)),
        }
    }

    fn source(&self) -> AuthSource {
        if self.settings.zone.is_some() {
            AuthSource::DnsFile
        } else {
            AuthSource::Verify
        }
    }

    fn verify_blocking(&self, raw: &[u8], headers_only: bool) -> AuthResult {
        let Some(jobs) = &self.jobs else {
            return AuthResult::temperror(self.source());
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let job = Job {
            raw: raw.to_vec(),
            headers_only,
            reply: tx,
        };
        if jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .is_err()
        {
            return AuthResult::temperror(self.source());
        }
        // The lookup thread keeps to the budget; this only guards against it being stuck.
        let cap = per_mail_budget(self.settings.timeout) + Duration::from_secs(5);
        let wait = || rx.recv_timeout(cap);
        let got = match tokio::runtime::Handle::try_current() {
            // Inside the daemon's runtime: let its other tasks run on another worker meanwhile.
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(wait)
            }
            _ => wait(),
        };
        got.unwrap_or_else(|_| AuthResult::temperror(self.source()))
    }
}

/// What the intake does with a mail, authentication-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthStep {
    /// Judge it now, with this input (`None`: mode off).
    Judge(Option<SenderAuth>),
    /// DNS failed and `auth.max_wait` has not passed since the mail arrived: leave it in the
    /// inbox and judge it again on the next pass — a DNS failure never loses mail.
    Later,
}

/// The authenticator with the desk's policy and patience, as the daemon uses it.
pub struct IntakeAuth {
    auth: Authenticator,
    policy: AuthPolicy,
    max_wait: Duration,
}

impl IntakeAuth {
    pub fn new(
        settings: AuthSettings,
        policy: AuthPolicy,
        max_wait: Duration,
    ) -> Result<IntakeAuth, String> {
        Ok(IntakeAuth {
            auth: Authenticator::new(settings)?,
            policy,
            max_wait,
        })
    }

    /// The authentication input for a mail that arrived at `arrived_at`: its result, or
    /// [`AuthStep::Later`] while a DNS failure the policy depends on may still clear. After
    /// `max_wait` a result with a `temperror` is judged as it is (the policy then treats the
    /// sender as unauthenticated).
    /// `sender_allowed`: the domain rule lets the From address through
    /// (`engine::sender_domain_allowed`); otherwise the domain rule decides alone and nothing is
    /// looked up (the verdict's `auth` is `null`).
    pub fn step(
        &self,
        raw: &[u8],
        headers_only: bool,
        sender_allowed: bool,
        arrived_at: jiff::Timestamp,
        now: jiff::Timestamp,
    ) -> AuthStep {
        if !sender_allowed {
            return AuthStep::Judge(None);
        }
        let Some(result) = self.auth.authenticate(raw, headers_only) else {
            return AuthStep::Judge(None);
        };
        let waited = now.duration_since(arrived_at);
        let patience =
            jiff::SignedDuration::try_from(self.max_wait).unwrap_or(jiff::SignedDuration::MAX);
        if result.worth_waiting(self.policy.require) && waited < patience {
            return AuthStep::Later;
        }
        AuthStep::Judge(Some(SenderAuth {
            result,
            policy: self.policy,
        }))
    }
}

/// How long the checks of one mail may take in all: DKIM, SPF and DMARC each get about two
/// query timeouts.
pub fn per_mail_budget(timeout: Duration) -> Duration {
    timeout * 6
}

fn resolver_for(settings: &AuthSettings) -> Result<MessageAuthenticator, String> {
    let mut opts = ResolverOpts::default();
    opts.timeout = settings.timeout;
    opts.attempts = 2;
    let (config, opts) = match (&settings.zone, &settings.resolver) {
        // Offline: every answer comes from the zone; a question it cannot answer goes to a
        // loopback port where nothing listens and fails at once (temperror), never outside.
        (Some(_), _) => {
            opts.attempts = 1;
            opts.timeout = Duration::from_millis(200);
            (nameserver(SocketAddr::from(([127, 0, 0, 1], 9))), opts)
        }
        (None, ResolverAddr::At(sa)) => (nameserver(*sa), opts),
        (None, ResolverAddr::System) => {
            let (config, mut sys) = mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("auth.resolver = \"system\": cannot read resolv.conf: {e}"))?;
            sys.timeout = settings.timeout;
            sys.attempts = 2;
            (config, sys)
        }
    };
    MessageAuthenticator::new(config, opts).map_err(|e| format!("auth.resolver: {e}"))
}

fn nameserver(sa: SocketAddr) -> ResolverConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = sa.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = sa.port();
    let mut ns = NameServerConfig::udp_and_tcp(sa.ip());
    ns.connections = vec![udp, tcp];
    ResolverConfig::from_name_servers(vec![ns])
}

/// Verification on the calling thread, with a runtime and a resolver of its own: what the
/// lookup thread runs, and what the fuzz target calls directly so that a panic shows. Must not
/// be called from inside an async runtime.
pub struct Verifier {
    rt: tokio::runtime::Runtime,
    resolver: MessageAuthenticator,
    settings: AuthSettings,
}

impl Verifier {
    fn source(&self) -> AuthSource {
        if self.settings.zone.is_some() {
            AuthSource::DnsFile
        } else {
            AuthSource::Verify
        }
    }

    pub fn new(settings: AuthSettings) -> Result<Verifier, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("auth: cannot start the DNS runtime: {e}"))?;
        let resolver = {
            let _guard = rt.enter();
            resolver_for(&settings)?
        };
        Ok(Verifier {
            rt,
            resolver,
            settings,
        })
    }

    /// All checks of one mail within [`per_mail_budget`]: past it (a resolver that does not
    /// answer at all) the mail is `temperror`, so a DNS outage costs each waiting mail a bounded
    /// time per pass instead of one timeout per lookup of every check.
    pub fn verify(&self, raw: &[u8], headers_only: bool) -> AuthResult {
        let budget = per_mail_budget(self.settings.timeout);
        self.rt
            .block_on(async {
                tokio::time::timeout(
                    budget,
                    verify(&self.resolver, &self.settings, raw, headers_only),
                )
                .await
            })
            .unwrap_or_else(|_| AuthResult::temperror(self.source()))
    }
}

fn start_worker(settings: &AuthSettings) -> Result<mpsc::Sender<Job>, String> {
    let verifier = Verifier::new(settings.clone())?;
    let source = verifier.source();
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("mailintake-auth".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                // A bug in the verifier must not stop the checks of every later mail: the mail
                // that caused it counts as a broken signature (permerror), and the thread goes on.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    verifier.verify(&job.raw, job.headers_only)
                }))
                .unwrap_or_else(|_| {
                    tracing::error!("sender verification failed on a mail; judged as permerror");
                    AuthResult {
                        dkim: AuthStatus::Permerror,
                        spf: AuthStatus::Permerror,
                        dmarc: AuthStatus::Permerror,
                        ..AuthResult::none(source)
                    }
                });
                let _ = job.reply.send(result);
            }
        })
        .map_err(|e| format!("auth: cannot start the DNS thread: {e}"))?;
    Ok(tx)
}

fn dkim_status(r: &DkimResult) -> AuthStatus {
    match r {
        DkimResult::Pass => AuthStatus::Pass,
        // mail-auth calls a body changed after signing "neutral"; RFC 8601 and every mail
        // administrator call a signature that does not verify "fail".
        DkimResult::Neutral(mail_auth::Error::Dkim(
            mail_auth::dkim::DkimError::FailedBodyHashMatch,
        )) => AuthStatus::Fail,
        DkimResult::Neutral(_) => AuthStatus::Neutral,
        DkimResult::Fail(_) => AuthStatus::Fail,
        DkimResult::PermError(_) => AuthStatus::Permerror,
        DkimResult::TempError(_) => AuthStatus::Temperror,
        DkimResult::None => AuthStatus::None,
    }
}

fn spf_status(r: SpfResult) -> AuthStatus {
    match r {
        SpfResult::Pass => AuthStatus::Pass,
        SpfResult::Fail => AuthStatus::Fail,
        SpfResult::SoftFail => AuthStatus::Softfail,
        SpfResult::Neutral => AuthStatus::Neutral,
        SpfResult::TempError => AuthStatus::Temperror,
        SpfResult::PermError => AuthStatus::Permerror,
        SpfResult::None => AuthStatus::None,
    }
}

fn dmarc_status(r: &DmarcResult) -> AuthStatus {
    match r {
        DmarcResult::Pass => AuthStatus::Pass,
        DmarcResult::Fail(_) => AuthStatus::Fail,
        DmarcResult::TempError(_) => AuthStatus::Temperror,
        DmarcResult::PermError(_) => AuthStatus::Permerror,
        DmarcResult::None => AuthStatus::None,
    }
}

/// The three checks, written once for both ways of building mail-auth's parameters (live DNS,
/// or answers from the zone): `$wrap` turns a check's parameters into `Parameters`.
macro_rules! checks {
    ($resolver:expr, $s:expr, $raw:expr, $msg:expr, $headers_only:expr, $result:expr, $wrap:expr) => {{
        let resolver: &MessageAuthenticator = $resolver;
        let s: &AuthSettings = $s;
        let msg: &AuthenticatedMessage<'_> = $msg;
        let result: &mut AuthResult = $result;
        // DKIM: without the body (oversized mail) the body hash cannot be checked: `none`.
        let dkim = if $headers_only {
            Vec::new()
        } else {
            resolver.verify_dkim($wrap(msg)).await
        };
        for out in &dkim {
            let st = dkim_status(out.result());
            if st == AuthStatus::Pass {
                if let Some(sig) = out.signature() {
                    let d = sig.d.to_ascii_lowercase();
                    if !result.dkim_domains.contains(&d) {
                        result.dkim_domains.push(d);
                    }
                }
            }
            if rank(st) > rank(result.dkim) {
                result.dkim = st;
            }
        }
        // SPF: only with the connecting IP our own MTA recorded.
        let headers = header_lines($raw);
        let hop = our_received(&headers, &s.mta_host).and_then(|i| received_from(&headers[i].1));
        let envelope = headers
            .iter()
            .find(|(n, _)| n == "return-path")
            .map(|(_, v)| {
                v.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let spf = match &hop {
            Some((ip, helo)) => {
                let p = if envelope.contains('@') {
                    SpfParameters::verify_mail_from(*ip, helo, &s.authserv_id, &envelope)
                } else {
                    SpfParameters::verify_ehlo(*ip, helo, &s.authserv_id)
                };
                Some(resolver.verify_spf($wrap(p)).await)
            }
            None => None,
        };
        if let Some(out) = &spf {
            result.spf = spf_status(out.result());
            result.spf_domain = Some(out.domain().to_ascii_lowercase());
        }
        // DMARC over both (mail-auth looks the record up for the From domain).
        let mail_from_domain = envelope
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .or_else(|| hop.as_ref().map(|h| h.1.clone()))
            .unwrap_or_default();
        let no_spf = mail_auth::SpfOutput::new(String::new());
        let dmarc = resolver
            .verify_dmarc($wrap(DmarcParameters::new(
                msg,
                &dkim,
                &mail_from_domain,
                spf.as_ref().unwrap_or(&no_spf),
            )))
            .await;
        result.dmarc = dmarc_status(&dmarc.result());
    }};
}

fn rank(s: AuthStatus) -> u8 {
    match s {
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

/// DKIM, then SPF (connecting IP and HELO from our MTA's `Received` line, the envelope sender
/// from `Return-Path`), then DMARC over both.
async fn verify(
    resolver: &MessageAuthenticator,
    s: &AuthSettings,
    raw: &[u8],
    headers_only: bool,
) -> AuthResult {
    let source = if s.zone.is_some() {
        AuthSource::DnsFile
    } else {
        AuthSource::Verify
    };
    let mut result = AuthResult::none(source);
    let Some(msg) = AuthenticatedMessage::parse(raw) else {
        return result;
    };
    match &s.zone {
        Some(zone) => {
            let nx = Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(
                ResponseCode::NXDomain,
            )));
            let txt = Fixed {
                map: &zone.txt,
                miss: Some(nx),
            };
            let a = Fixed {
                map: &zone.a,
                miss: None,
            };
            let aaaa = Fixed {
                map: &zone.aaaa,
                miss: None,
            };
            let mx = Fixed {
                map: &zone.mx,
                miss: Some(set(Vec::new())),
            };
            let no_ptr: HashMap<IpAddr, RecordSet<Box<str>>> = HashMap::new();
            let ptr = Fixed {
                map: &no_ptr,
                miss: Some(set(Vec::new())),
            };
            checks!(resolver, s, raw, &msg, headers_only, &mut result, |p| {
                Parameters::new(p)
                    .with_txt_cache(&txt)
                    .with_ipv4_cache(&a)
                    .with_ipv6_cache(&aaaa)
                    .with_mx_cache(&mx)
                    .with_ptr_cache(&ptr)
            });
        }
        None => {
            checks!(resolver, s, raw, &msg, headers_only, &mut result, |p| {
                Parameters::new(p)
            });
        }
    }
    result
}
