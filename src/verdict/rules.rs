//! The rule files in `rules/`: read raw (serde, unknown keys refused), then compiled once into a
//! validated [`RuleSet`] that the pure engine uses. Every error names the file, the line and the
//! key, so an admin can fix it without reading code.
//!
//! Files: `intake.toml` (senders, automatic mail, follow-up tags, MIME limits),
//! `attachments.toml` (file kinds and limits), `form.toml` (the form of Приложение 1),
//! `priority.toml` (impact/priority names and the matrix). `replies/` and `calendar.toml` belong to
//! the daemon and are loaded by their own modules.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::verdict::attach::AttachmentRules;
use crate::verdict::form::{FormRules, RawFormRules};
use crate::verdict::message::MimeLimits;
use crate::verdict::{Impact, Priority};

/// A rule file problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

/// One rule file's text, kept for locating keys in error messages.
pub struct RuleFile {
    pub path: PathBuf,
    pub text: String,
}

impl RuleFile {
    pub fn read(path: &Path) -> Result<RuleFile, RuleError> {
        let text = std::fs::read_to_string(path).map_err(|e| RuleError {
            file: path.to_path_buf(),
            line: None,
            key: None,
            message: format!("cannot read: {e}"),
        })?;
        Ok(RuleFile {
            path: path.to_path_buf(),
            text,
        })
    }

    /// Deserialize the whole file; a syntax error or an unknown key names its line.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, RuleError> {
        toml::from_str::<T>(&self.text).map_err(|e| {
            let line = e.span().map(|s| line_of(&self.text, s.start));
            let message = e.message().trim().to_string();
            let key = message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .map(str::to_string);
            RuleError {
                file: self.path.clone(),
                line,
                key,
                message,
            }
        })
    }

    /// An error about `key` (its last dotted component is searched for to find the line).
    pub fn error(&self, key: &str, message: impl Into<String>) -> RuleError {
        let leaf = key.rsplit('.').next().unwrap_or(key);
        RuleError {
            file: self.path.clone(),
            line: find_key_line(&self.text, leaf),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let l = l.trim_start_matches('"');
            l.starts_with(key)
                && l[key.len()..]
                    .trim_start_matches('"')
                    .trim_start()
                    .starts_with('=')
        })
        .map(|i| i + 1)
}

// ---- intake.toml -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntake {
    senders: RawSenders,
    automatic: RawAutomatic,
    followup: RawFollowup,
    mime: RawMime,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSenders {
    allowed_domains: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutomatic {
    auto_submitted_allowed: Vec<String>,
    precedence: Vec<String>,
    header_prefixes: Vec<String>,
    headers_present: Vec<String>,
    x_auto_response_suppress: Vec<String>,
    null_return_path: bool,
    sender_locals: Vec<String>,
    sender_local_prefixes: Vec<String>,
    sender_local_suffixes: Vec<String>,
    report_types: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFollowup {
    subject_patterns: Vec<String>,
    reply_message_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMime {
    max_depth: usize,
    max_parts: usize,
    max_body_text: usize,
    max_mail_bytes: u64,
}

/// Who may write in (reg. 3.3).
#[derive(Debug, Clone)]
pub struct SenderRules {
    /// Exact domains, lower-case, no trailing dot.
    pub exact: Vec<String>,
    /// Domains whose subdomains are allowed (from `*.domain`).
    pub subdomains_of: Vec<String>,
}

impl SenderRules {
    pub fn allows(&self, address: &str) -> bool {
        let Some((_, domain)) = address.rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.').to_lowercase();
        self.exact.contains(&domain)
            || self.subdomains_of.iter().any(|d| {
                domain.len() > d.len() + 1
                    && domain.ends_with(d.as_str())
                    && domain.as_bytes()[domain.len() - d.len() - 1] == b'.'
            })
    }
}

/// RFC 3834 and friends: what marks a mail as sent by a machine.
#[derive(Debug, Clone)]
pub struct AutomaticRules {
    pub auto_submitted_allowed: Vec<String>,
    pub precedence: Vec<String>,
    pub header_prefixes: Vec<String>,
    pub headers_present: Vec<String>,
    pub x_auto_response_suppress: Vec<String>,
    pub null_return_path: bool,
    pub sender_locals: Vec<String>,
    pub sender_local_prefixes: Vec<String>,
    pub sender_local_suffixes: Vec<String>,
    pub report_types: Vec<String>,
}

/// How a mail names the ticket it belongs to.
#[derive(Debug, Clone)]
pub struct FollowupRules {
    pub subject_patterns: Vec<Regex>,
    pub reply_message_id: Regex,
}

impl FollowupRules {
    /// The ticket number named in a subject, if any.
    pub fn ticket_in_subject(&self, subject: &str) -> Option<u64> {
        self.subject_patterns.iter().find_map(|re| {
            re.captures(subject)
                .and_then(|c| c.get(1))
                .and_then(|m| m.as_str().parse().ok())
        })
    }
    /// The ticket number encoded in one of our own reply Message-IDs.
    pub fn ticket_in_message_id(&self, id: &str) -> Option<u64> {
        let id = id.trim().trim_start_matches('<').trim_end_matches('>');
        self.reply_message_id
            .captures(id)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    }
}

// ---- priority.toml -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPriority {
    default: String,
    impact_names: BTreeMap<String, Vec<String>>,
    priority_names: BTreeMap<String, Vec<String>>,
    allowed: BTreeMap<String, Vec<String>>,
}

/// Reg. 4.9–4.10: names as senders write them, and which priorities each impact allows.
#[derive(Debug, Clone)]
pub struct PriorityRules {
    pub default: Priority,
    impact_names: Vec<(String, Impact)>,
    priority_names: Vec<(String, Priority)>,
    allowed: BTreeMap<Impact, Vec<Priority>>,
}

/// Lower-case, ё→е, trailing punctuation and spaces off: how names are compared.
pub fn name_key(s: &str) -> String {
    s.trim()
        .trim_end_matches(['.', ',', ';', '!'])
        .trim()
        .to_lowercase()
        .replace('ё', "е")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A name as written by a sender: an exact (normalised) name first, else the longest known name
/// it starts with ("Высокий, прошу срочно" → high). `names` is sorted longest first.
fn lookup_name<T: Copy>(names: &[(String, T)], s: &str) -> Option<T> {
    let k = name_key(s);
    names
        .iter()
        .find(|(n, _)| *n == k)
        .or_else(|| names.iter().find(|(n, _)| k.starts_with(n.as_str())))
        .map(|(_, v)| *v)
}

impl PriorityRules {
    pub fn impact_by_name(&self, s: &str) -> Option<Impact> {
        lookup_name(&self.impact_names, s)
    }
    pub fn priority_by_name(&self, s: &str) -> Option<Priority> {
        lookup_name(&self.priority_names, s)
    }
    /// Priorities the impact allows, most urgent first.
    pub fn allowed(&self, impact: Impact) -> &[Priority] {
        self.allowed.get(&impact).map(Vec::as_slice).unwrap_or(&[])
    }
}

// ---- the whole set ----------------------------------------------------------------------

/// Everything the engine needs, validated.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub dir: PathBuf,
    pub senders: SenderRules,
    pub automatic: AutomaticRules,
    pub followup: FollowupRules,
    pub mime: MimeLimits,
    /// A mail larger than this is judged from its headers only (`too_large`).
    pub max_mail_bytes: u64,
    pub attachments: AttachmentRules,
    pub form: FormRules,
    pub priority: PriorityRules,
}

impl RuleSet {
    /// Load and validate every engine rule file in `dir`; the first problem is returned.
    pub fn load(dir: &Path) -> Result<RuleSet, RuleError> {
        let errors = Self::check(dir);
        match errors {
            Ok(set) => Ok(set),
            Err(mut errs) => Err(errs.remove(0)),
        }
    }

    /// Load and validate, collecting the problems of every file (for `rules check`).
    pub fn check(dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let mut errors = Vec::new();
        let intake = load_intake(&dir.join("intake.toml")).map_err(|e| errors.push(e));
        let attachments =
            load_attachments(&dir.join("attachments.toml")).map_err(|e| errors.push(e));
        let form = load_form(&dir.join("form.toml")).map_err(|e| errors.push(e));
        let priority = load_priority(&dir.join("priority.toml")).map_err(|e| errors.push(e));
        match (intake, attachments, form, priority) {
            (
                Ok((senders, automatic, followup, mime, max_mail_bytes)),
                Ok(attachments),
                Ok(form),
                Ok(priority),
            ) => Ok(RuleSet {
                dir: dir.to_path_buf(),
                senders,
                automatic,
                followup,
                mime,
                max_mail_bytes,
                attachments,
                form,
                priority,
            }),
            _ => Err(errors),
        }
    }
}

type Intake = (SenderRules, AutomaticRules, FollowupRules, MimeLimits, u64);

fn lower_all(v: Vec<String>) -> Vec<String> {
    v.into_iter().map(|s| s.trim().to_lowercase()).collect()
}

fn load_intake(path: &Path) -> Result<Intake, RuleError> {
    let file = RuleFile::read(path)?;
    let raw: RawIntake = file.parse()?;
    let mut senders = SenderRules {
        exact: Vec::new(),
        subdomains_of: Vec::new(),
    };
    if raw.senders.allowed_domains.is_empty() {
        return Err(file.error(
            "senders.allowed_domains",
            "at least one domain is needed, or every mail would be filtered",
        ));
    }
    for d in raw.senders.allowed_domains {
        let d = d.trim().trim_end_matches('.').to_lowercase();
        let (bare, sub) = match d.strip_prefix("*.") {
            Some(rest) => (rest.to_string(), true),
            None => (d.clone(), false),
        };
        if bare.is_empty()
            || !bare.contains('.')
            || !bare
                .chars()
                .all(|c| c.is_alphanumeric() || c == '.' || c == '-')
        {
            return Err(file.error(
                "senders.allowed_domains",
                format!(
                    "`{d}` is not a domain (write `sev.gov.ru`, or `*.sev.gov.ru` for subdomains)"
                ),
            ));
        }
        if sub {
            senders.subdomains_of.push(bare);
        } else {
            senders.exact.push(bare);
        }
    }
    let a = raw.automatic;
    let automatic = AutomaticRules {
        auto_submitted_allowed: lower_all(a.auto_submitted_allowed),
        precedence: lower_all(a.precedence),
        header_prefixes: lower_all(a.header_prefixes),
        headers_present: lower_all(a.headers_present),
        x_auto_response_suppress: lower_all(a.x_auto_response_suppress),
        null_return_path: a.null_return_path,
        sender_locals: lower_all(a.sender_locals),
        sender_local_prefixes: lower_all(a.sender_local_prefixes),
        sender_local_suffixes: lower_all(a.sender_local_suffixes),
        report_types: lower_all(a.report_types),
    };
    let mut subject_patterns = Vec::new();
    for p in &raw.followup.subject_patterns {
        let re = Regex::new(p).map_err(|e| {
            file.error(
                "followup.subject_patterns",
                format!("bad regular expression: {e}"),
            )
        })?;
        if re.captures_len() < 2 {
            return Err(file.error(
                "followup.subject_patterns",
                format!("`{p}` needs a group `(\\d+)` capturing the ticket number"),
            ));
        }
        subject_patterns.push(re);
    }
    let reply_message_id = Regex::new(&raw.followup.reply_message_id).map_err(|e| {
        file.error(
            "followup.reply_message_id",
            format!("bad regular expression: {e}"),
        )
    })?;
    if reply_message_id.captures_len() < 2 {
        return Err(file.error(
            "followup.reply_message_id",
            "needs a group `(\\d+)` capturing the ticket number",
        ));
    }
    let m = raw.mime;
    for (key, v) in [
        ("mime.max_depth", m.max_depth),
        ("mime.max_parts", m.max_parts),
        ("mime.max_body_text", m.max_body_text),
    ] {
        if v == 0 {
            return Err(file.error(key, "must be greater than 0"));
        }
    }
    if m.max_mail_bytes == 0 {
        return Err(file.error("mime.max_mail_bytes", "must be greater than 0"));
    }
    Ok((
        senders,
        automatic,
        FollowupRules {
            subject_patterns,
            reply_message_id,
        },
        MimeLimits {
            max_depth: m.max_depth,
            max_parts: m.max_parts,
            max_body_text: m.max_body_text,
        },
        m.max_mail_bytes,
    ))
}

fn load_attachments(path: &Path) -> Result<AttachmentRules, RuleError> {
    let file = RuleFile::read(path)?;
    let rules: AttachmentRules = file.parse()?;
    rules.validate().map_err(|msg| {
        // validate() messages start with the key they are about, when they know it.
        let key = msg.split([':', ' ']).next().unwrap_or("").to_string();
        if find_key_line(&file.text, &key).is_some() {
            file.error(&key, msg)
        } else {
            RuleError {
                file: file.path.clone(),
                line: None,
                key: None,
                message: msg,
            }
        }
    })?;
    Ok(rules)
}

fn load_form(path: &Path) -> Result<FormRules, RuleError> {
    let file = RuleFile::read(path)?;
    let raw: RawFormRules = file.parse()?;
    FormRules::compile(raw).map_err(|msg| {
        let key = msg.split([':', ' ']).next().unwrap_or("").to_string();
        if !key.is_empty()
            && find_key_line(&file.text, key.rsplit('.').next().unwrap_or("")).is_some()
        {
            file.error(&key, msg)
        } else {
            RuleError {
                file: file.path.clone(),
                line: None,
                key: None,
                message: msg,
            }
        }
    })
}

fn load_priority(path: &Path) -> Result<PriorityRules, RuleError> {
    let file = RuleFile::read(path)?;
    let raw: RawPriority = file.parse()?;
    let default = Priority::parse(&raw.default).ok_or_else(|| {
        file.error(
            "default",
            format!(
                "`{}` is not a priority (urgent, high, normal, low)",
                raw.default
            ),
        )
    })?;
    let mut impact_names = Vec::new();
    for (k, names) in raw.impact_names {
        let imp = Impact::parse(&k).ok_or_else(|| {
            file.error(
                &format!("impact_names.{k}"),
                "not an impact (feature, typo, setting, minor, major, critical, blocker)",
            )
        })?;
        impact_names.push((name_key(imp.russian()), imp));
        impact_names.extend(names.iter().map(|n| (name_key(n), imp)));
    }
    let mut priority_names = Vec::new();
    for (k, names) in raw.priority_names {
        let p = Priority::parse(&k).ok_or_else(|| {
            file.error(
                &format!("priority_names.{k}"),
                "not a priority (urgent, high, normal, low)",
            )
        })?;
        priority_names.push((name_key(p.russian()), p));
        priority_names.extend(names.iter().map(|n| (name_key(n), p)));
    }
    // Longest names first, so that a prefix match prefers the most specific name.
    impact_names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    priority_names.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    let mut allowed = BTreeMap::new();
    for (k, list) in raw.allowed {
        let imp = Impact::parse(&k)
            .ok_or_else(|| file.error(&format!("allowed.{k}"), "not an impact"))?;
        let mut ps = Vec::new();
        for p in &list {
            ps.push(Priority::parse(p).ok_or_else(|| {
                file.error(&format!("allowed.{k}"), format!("`{p}` is not a priority"))
            })?);
        }
        if ps.is_empty() {
            return Err(file.error(
                &format!("allowed.{k}"),
                "an impact must allow at least one priority",
            ));
        }
        ps.sort_by_key(|p| p.rank());
        allowed.insert(imp, ps);
    }
    for imp in Impact::ALL {
        if !allowed.contains_key(&imp) {
            return Err(RuleError {
                file: file.path.clone(),
                line: None,
                key: Some(format!("allowed.{}", imp.as_str())),
                message: "missing: every impact needs its allowed priorities".into(),
            });
        }
    }
    Ok(PriorityRules {
        default,
        impact_names,
        priority_names,
        allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        RuleSet::load(&dir).unwrap();
    }

    #[test]
    fn domains_exact_and_lookalikes() {
        let s = SenderRules {
            exact: vec!["sev.gov.ru".into()],
            subdomains_of: vec![],
        };
        assert!(s.allows("a@SEV.gov.ru"));
        assert!(s.allows("a@sev.gov.ru."));
        assert!(!s.allows("a@mail.sev.gov.ru"));
        assert!(!s.allows("a@notsev.gov.ru"));
        assert!(!s.allows("a@sev.gov.ru.example.com"));
        let s = SenderRules {
            exact: vec![],
            subdomains_of: vec!["sev.gov.ru".into()],
        };
        assert!(s.allows("a@mail.sev.gov.ru"));
        assert!(!s.allows("a@notsev.gov.ru"));
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let f = RuleFile {
            path: "x.toml".into(),
            text: "default = \"normal\"\nbogus = 1\n".into(),
        };
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            default: String,
        }
        let e = f.parse::<T>().unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.key.as_deref(), Some("bogus"));
    }
}
