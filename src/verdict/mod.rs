//! The verdict: what the regulation decides about one mail.
//!
//! These types are the contract between the pure engine (`engine::evaluate`) and everything that
//! consumes it: the `check` command prints them as JSON Lines, the daemon stores them and picks the
//! reply from them. Field names and code strings are part of the public contract; change them only
//! together with the README and the fixtures.

pub mod attach;
pub mod auth;
pub mod engine;
pub mod form;
pub mod message;
pub mod rules;

use serde::{Deserialize, Serialize};

/// What happens to a mail, in the order the engine checks the groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// A ticket in status «Новая».
    Accept,
    /// A ticket in status «Обратная связь»; the reply lists what to add or fix.
    Incomplete,
    /// No ticket; the reply explains why.
    Reject,
    /// Sender outside the allowed domains: no ticket, no reply (reg. 3.3).
    Filter,
    /// Automatic mail (RFC 3834): no ticket, no reply.
    Ignore,
    /// Belongs to an existing ticket (reg. 4.2).
    Followup,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Incomplete => "incomplete",
            Decision::Reject => "reject",
            Decision::Filter => "filter",
            Decision::Ignore => "ignore",
            Decision::Followup => "followup",
        }
    }

    pub fn parse(s: &str) -> Option<Decision> {
        Some(match s {
            "accept" => Decision::Accept,
            "incomplete" => Decision::Incomplete,
            "reject" => Decision::Reject,
            "filter" => Decision::Filter,
            "ignore" => Decision::Ignore,
            "followup" => Decision::Followup,
            _ => return None,
        })
    }
}

/// Every reason and warning code the engine can emit. The string form is the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Code {
    // filter
    SenderDomain,
    /// DKIM/SPF/DMARC did not confirm the From address (issue 9); filter group, or incomplete
    /// with `auth.on_fail = "incomplete"`.
    SenderUnauthenticated,
    // ignore
    Automatic,
    // reject
    TooLarge,
    AttachmentDangerous,
    SupplementOnly,
    // incomplete
    SubjectMissing,
    FieldsMissing,
    TooManyImages,
    AttachmentType,
    ArchiveUnreadable,
    // warnings only
    FieldRecommended,
    ExtensionMismatch,
    PriorityLowered,
    /// The mail was cut at a structural limit (MIME depth or part count); what was read is judged.
    MimeLimit,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::SenderDomain => "sender_domain",
            Code::SenderUnauthenticated => "sender_unauthenticated",
            Code::Automatic => "automatic",
            Code::TooLarge => "too_large",
            Code::AttachmentDangerous => "attachment_dangerous",
            Code::SupplementOnly => "supplement_only",
            Code::SubjectMissing => "subject_missing",
            Code::FieldsMissing => "fields_missing",
            Code::TooManyImages => "too_many_images",
            Code::AttachmentType => "attachment_type",
            Code::ArchiveUnreadable => "archive_unreadable",
            Code::FieldRecommended => "field_recommended",
            Code::ExtensionMismatch => "extension_mismatch",
            Code::PriorityLowered => "priority_lowered",
            Code::MimeLimit => "mime_limit",
        }
    }

    /// The decision group a reason code belongs to (warnings-only codes belong to none).
    pub fn group(self) -> Option<Decision> {
        match self {
            Code::SenderDomain | Code::SenderUnauthenticated => Some(Decision::Filter),
            Code::Automatic => Some(Decision::Ignore),
            Code::TooLarge | Code::AttachmentDangerous | Code::SupplementOnly => {
                Some(Decision::Reject)
            }
            Code::SubjectMissing
            | Code::FieldsMissing
            | Code::TooManyImages
            | Code::AttachmentType
            | Code::ArchiveUnreadable => Some(Decision::Incomplete),
            Code::FieldRecommended
            | Code::ExtensionMismatch
            | Code::PriorityLowered
            | Code::MimeLimit => None,
        }
    }
}

/// One reason (or warning): a code to count and a sentence in Russian for a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: Code,
    pub detail: String,
}

impl Reason {
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        Reason {
            code,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Urgent,
    High,
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Urgent,
        Priority::High,
        Priority::Normal,
        Priority::Low,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Normal => "normal",
            Priority::Low => "low",
        }
    }
    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// The Russian name of reg. 4.10.
    pub fn russian(self) -> &'static str {
        match self {
            Priority::Urgent => "Неотложный",
            Priority::High => "Высокий",
            Priority::Normal => "Обычный",
            Priority::Low => "Низкий",
        }
    }
    /// 1 (urgent) … 4 (low), as in reg. 4.10; lower is more urgent.
    pub fn rank(self) -> u8 {
        match self {
            Priority::Urgent => 1,
            Priority::High => 2,
            Priority::Normal => 3,
            Priority::Low => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Impact {
    Feature,
    Typo,
    Setting,
    Minor,
    Major,
    Critical,
    Blocker,
}

impl Impact {
    pub const ALL: [Impact; 7] = [
        Impact::Feature,
        Impact::Typo,
        Impact::Setting,
        Impact::Minor,
        Impact::Major,
        Impact::Critical,
        Impact::Blocker,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Impact::Feature => "feature",
            Impact::Typo => "typo",
            Impact::Setting => "setting",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
            Impact::Blocker => "blocker",
        }
    }
    pub fn parse(s: &str) -> Option<Impact> {
        Impact::ALL.into_iter().find(|p| p.as_str() == s)
    }
    /// The Russian name of reg. 4.9.
    pub fn russian(self) -> &'static str {
        match self {
            Impact::Feature => "Нововведение",
            Impact::Typo => "Текст/опечатка",
            Impact::Setting => "Настройка",
            Impact::Minor => "Малое",
            Impact::Major => "Большое",
            Impact::Critical => "Критический",
            Impact::Blocker => "Блокирующий",
        }
    }
}

/// Данные о заявителе.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applicant {
    pub full_name: Option<String>,
    pub position: Option<String>,
    pub organization: Option<String>,
    /// Normalised to `+7XXXXXXXXXX` when it looks like a Russian number; as written otherwise.
    pub phone: Option<String>,
}

/// ФИО пользователя, логин.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub full_name: Option<String>,
    pub login: Option<String>,
}

/// Данные пациента. Patient data: never logged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub name: Option<String>,
    pub card: Option<String>,
}

/// The form of Приложение 1 as parsed from the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormFields {
    pub applicant: Applicant,
    pub user: User,
    pub patient: Patient,
    pub steps: Option<String>,
    pub error_text: Option<String>,
}

impl FormFields {
    /// The value of a field by its dotted name (`applicant.phone`, `steps`, …).
    pub fn get(&self, dotted: &str) -> Option<&str> {
        let v = match dotted {
            "applicant.full_name" => &self.applicant.full_name,
            "applicant.position" => &self.applicant.position,
            "applicant.organization" => &self.applicant.organization,
            "applicant.phone" => &self.applicant.phone,
            "user.full_name" => &self.user.full_name,
            "user.login" => &self.user.login,
            "patient.name" => &self.patient.name,
            "patient.card" => &self.patient.card,
            "steps" => &self.steps,
            "error_text" => &self.error_text,
            _ => return None,
        };
        v.as_deref()
    }

    /// Mutable access by dotted name; `None` for an unknown name.
    pub fn slot(&mut self, dotted: &str) -> Option<&mut Option<String>> {
        Some(match dotted {
            "applicant.full_name" => &mut self.applicant.full_name,
            "applicant.position" => &mut self.applicant.position,
            "applicant.organization" => &mut self.applicant.organization,
            "applicant.phone" => &mut self.applicant.phone,
            "user.full_name" => &mut self.user.full_name,
            "user.login" => &mut self.user.login,
            "patient.name" => &mut self.patient.name,
            "patient.card" => &mut self.patient.card,
            "steps" => &mut self.steps,
            "error_text" => &mut self.error_text,
            _ => return None,
        })
    }

    /// Every dotted field name, in form order.
    pub const NAMES: [&'static str; 10] = [
        "applicant.full_name",
        "applicant.position",
        "applicant.organization",
        "applicant.phone",
        "user.full_name",
        "user.login",
        "patient.name",
        "patient.card",
        "steps",
        "error_text",
    ];

    /// True when no field at all was found.
    pub fn is_empty(&self) -> bool {
        FormFields::NAMES.iter().all(|n| self.get(n).is_none())
    }

    /// Fill the fields that are empty here from `newer` (a follow-up completing a ticket),
    /// and let present fields of `newer` replace old ones.
    pub fn merge_from(&mut self, newer: &FormFields) {
        for name in FormFields::NAMES {
            if let Some(v) = newer.get(name) {
                if let Some(slot) = self.slot(name) {
                    *slot = Some(v.to_string());
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    /// JPG/GIF/PNG by content (reg. 3.5).
    Image,
    /// zip/7z/rar (reg. 3.5).
    Archive,
    /// doc/docx/video: an addition to a request, never a request on its own (reg. 3.1).
    Supplement,
    /// Other documents the desk accepts (xls, xlsx, pdf, txt, …).
    Document,
    /// Anything else: not accepted.
    Other,
}

/// One file inside an archive, as listed from the archive's headers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    pub name: String,
    /// Declared uncompressed size.
    pub bytes: u64,
    pub kind: AttachmentKind,
}

/// One attachment (inline parts included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    /// Decoded file name (RFC 2047/2231); a generated one (`image001.png`) for a nameless inline part.
    pub name: String,
    pub kind: AttachmentKind,
    /// Decoded size.
    pub bytes: u64,
    pub content_type: String,
    /// An inline part (pasted screenshot).
    pub inline: bool,
    /// Archive listing; empty for anything else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entries: Vec<ArchiveEntry>,
}

/// The engine's whole answer for one mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub decision: Decision,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Reason>,
    pub missing: Vec<String>,
    pub followup_of: Option<u64>,
    /// The From address, lower-cased; empty when it could not be read.
    pub sender: String,
    pub subject: String,
    pub message_id: Option<String>,
    pub priority: Priority,
    pub impact: Option<Impact>,
    pub fields: FormFields,
    pub attachments: Vec<AttachmentInfo>,
    /// Sender authenticity (DKIM, SPF, DMARC); `null` when `auth.mode` is off. Verdicts stored
    /// before issue 9 have none.
    #[serde(default)]
    pub auth: Option<auth::AuthResult>,
}

impl Verdict {
    pub fn has_reason(&self, code: Code) -> bool {
        self.reasons.iter().any(|r| r.code == code)
    }
    pub fn has_warning(&self, code: Code) -> bool {
        self.warnings.iter().any(|r| r.code == code)
    }
}
