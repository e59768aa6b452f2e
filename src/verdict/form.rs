//! # The form of Приложение 1, read from the plain text of a mail
//!
//! Owns: cutting quoted history and signatures ([`strip_quoted`]), finding the labels of the form
//! and their values ([`parse_form`]), telling which fields are missing ([`missing_required`],
//! [`missing_recommended`]) and normalising phone numbers ([`normalize_phone`]). The words it
//! looks for live in `rules/form.toml` ([`RawFormRules`] → [`FormRules::compile`]).
//!
//! Must never: panic (whatever the text: binary-ish, huge, odd Unicode), do I/O, or take more than
//! linear time. Text beyond `max_input_bytes` is not read, each line is cut to `max_line_chars`,
//! and every pattern is a `regex` (finite automata, no backtracking blow-up).
//!
//! ## Output conventions (the engine and the fixtures depend on them)
//! * [`parse_form`] calls [`strip_quoted`] itself: pass it the whole body.
//! * The text is first cleaned: `\r\n`/`\r` → `\n`; NBSP and other Unicode spaces → ` `;
//!   zero-width and bidi marks and the soft hyphen removed; other control characters removed
//!   (tab kept); hyphen look-alikes (U+2010–2012, U+2212…) → `-`; decomposed `й`/`ё` composed.
//!   `ё` is kept in values; it equals `е` only when labels and keywords are matched.
//! * One-line values are trimmed, runs of spaces collapsed to one, and a trailing `,` `;` `:` is
//!   removed, and a trailing `.` too unless it ends an initial (`Иванова Т.А.` keeps its dot).
//! * Multi-line values (`steps`, `error_text`): the text after the label on its line plus the
//!   following lines up to the next recognised label, a closing or signature line («Спасибо»,
//!   «С уважением», see `values.closing_lines`, `values.signature_lines`) or the end — and, when
//!   the value begins on the label's own line, up to the first blank line (so "Видео во
//!   вложении." below the form is not part of the error text; a label alone on its line keeps
//!   blank lines inside its value). Lines are joined with `"\n"`, each line's trailing spaces
//!   removed (leading spaces kept), runs of blank lines collapsed to one blank line, and the
//!   whole value trimmed.
//! * Soft line breaks of `format=flowed` text (a line of more than 40 characters ending in one
//!   space) are undone in every value: the next line is joined with a space, unless it starts a
//!   list item ("2.", "-", "•"). One-line values also continue on a line that looks wrapped
//!   (see below). The message decoder should unflow `format=flowed` itself; this is the net.
//! * A value that is empty, made only of punctuation, or listed in `values.empty_values`
//!   (`нет`, `-`, `н/д`, the form's own hints…) is `None`.
//! * Phones: `+7XXXXXXXXXX` when the number can be read (11 digits from 7/8, 10 digits from 3–9,
//!   or a local number that makes 10 digits with `default_city_code`: `55-12-34` →
//!   `+78692551234`); an extension (`доб. 123`) or a note (`(моб.)`) is dropped; otherwise the
//!   text as written (trimmed); `None` when there is no digit at all. The first number wins.
//! * Logins: the first Latin token (`petrov_pp`, `p.petrov`, `SEV\petrov`, an address); else a
//!   single word as written (a Cyrillic login); else the whole value as written.
//! * Cards: the first token with a digit (letters, digits, `/`, `-`: `12/345`, `А-2026/15`);
//!   `None` when the value has no digit.
//! * Names (of the user and the patient) stop at the first digit ("Сидоров С.С., 1956 г.р." →
//!   "Сидоров С.С."). The applicant's name is the first comma-separated chunk of the applicant
//!   line (see [`parse_form`] for the split).
//! * When a field is given twice, the first value wins (the new text is above the old one).
//! * `labels_found` counts the labels of form fields (headings, sub-labels, steps, error), not
//!   `Влияние`, `Приоритет` or ignored labels (`Скриншоты`, `Тема`…). 0 means "no form".
//!
//! ## How labels are read
//! A label is recognised at the start of a line (after an optional bullet/number, a table `|`,
//! and `**bold**` markers, with an optional `(hint)`), followed by a separator (`:`, `—`, `–`,
//! `-` next to a space, tab, `│`, `|`) or by the end of the line; phone, login and card labels
//! also by a space when a phone / login / card follows. A label alone on its line takes its
//! value from the next line(s): a heading (`Данные о заявителе`, …) from the following
//! non-blank lines up to a blank line (at most 8), any other one-line field from the first
//! non-blank line (up to 3 blank lines below), `steps` and `error_text` from everything up to
//! the next label. A one-line value continues on the next line only when that line belongs to
//! the same table cell, or when its own line looks wrapped by the mail client (55–80
//! characters, ending in a letter, `,` or a dash). Tables drawn by html2text (`│` columns,
//! `─` borders, cells wrapped over several lines) are first put back together, one row per
//! line (`label │ value`).
//!
//! Sections: a heading alone on its line (`Данные о пользователе:`) makes the sub-labels below
//! it (`ФИО`, `Логин`…) belong to the user (or patient) until another heading, `steps` or
//! `error_text`; otherwise `ФИО`/`Должность`/`МО`/`Телефон` are the applicant's. In a user or
//! patient section `Должность`/`МО`/`Телефон` are ignored. Below a signature line
//! («С уважением») a lone sub-label is the signature, not the form, and is not read.

use std::collections::{BTreeMap, HashSet};

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;

use crate::verdict::{Applicant, FormFields};

/// Sevastopol: the code used for 6-digit local numbers when the rules do not say otherwise.
pub const DEFAULT_CITY_CODE: &str = "8692";

/// The rules shipped with the program (`rules/form.toml`).
pub const DEFAULT_RULES_TOML: &str = include_str!("../../rules/form.toml");

/// A line this long (in characters) may have been wrapped by the sender's mail client.
const WRAP_MIN_CHARS: usize = 55;
/// Mail clients wrap at 72–78 characters; a longer line was not wrapped.
const WRAP_MAX_CHARS: usize = 80;
/// How many lines a heading standing alone takes its value from.
const BLOCK_MAX_LINES: usize = 8;
/// How many blank lines may separate a label standing alone from its value.
const SKIP_BLANKS_MAX: usize = 3;
/// How far below an attribution line a `>` quote is looked for.
const ATTRIBUTION_LOOKAHEAD: usize = 5;
/// At most this many phone numbers are looked at in one applicant line.
const MAX_PHONES: usize = 8;

// ---------------------------------------------------------------------------------------------
// Raw rules (rules/form.toml)
// ---------------------------------------------------------------------------------------------

/// `rules/form.toml` as written; see the comments in that file for every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFormRules {
    pub required: Vec<String>,
    #[serde(default)]
    pub required_one_of: Vec<Vec<String>>,
    #[serde(default)]
    pub recommended: Vec<String>,
    pub default_city_code: String,
    #[serde(default = "default_max_input_bytes")]
    pub max_input_bytes: usize,
    #[serde(default = "default_max_line_chars")]
    pub max_line_chars: usize,
    pub descriptions: BTreeMap<String, String>,
    pub labels: BTreeMap<String, Vec<String>>,
    pub values: RawValueRules,
    pub quote: RawQuoteRules,
}

/// `[values]`: how values are judged and split.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawValueRules {
    pub empty_values: Vec<String>,
    #[serde(default)]
    pub same_as_applicant: Vec<String>,
    pub org_prefixes: Vec<String>,
    pub login_keywords: Vec<String>,
    pub card_keywords: Vec<String>,
    #[serde(default)]
    pub closing_lines: Vec<String>,
    #[serde(default)]
    pub signature_lines: Vec<String>,
}

/// `[quote]`: what [`strip_quoted`] cuts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuoteRules {
    #[serde(default)]
    pub cut_from: Vec<String>,
    #[serde(default)]
    pub attribution: Vec<String>,
    #[serde(default)]
    pub drop_lines: Vec<String>,
    #[serde(default)]
    pub header_blocks: Vec<RawHeaderBlock>,
}

/// `[[quote.header_blocks]]`: a `start` line followed within `within` lines by a `next` line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeaderBlock {
    pub start: String,
    pub next: String,
    pub within: usize,
}

fn default_max_input_bytes() -> usize {
    256 * 1024
}

fn default_max_line_chars() -> usize {
    4000
}

// ---------------------------------------------------------------------------------------------
// Compiled rules
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Applicant,
    User,
    Patient,
}

/// What a label stands for (the keys of `[labels]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Heading(Section),
    Name,
    Position,
    Organization,
    Phone,
    Login,
    Card,
    /// An explicit field: index into `FormFields::NAMES`.
    Field(usize),
    Impact,
    Priority,
    Ignore,
}

impl Kind {
    fn parse(key: &str) -> Option<Kind> {
        Some(match key {
            "applicant" => Kind::Heading(Section::Applicant),
            "user" => Kind::Heading(Section::User),
            "patient" => Kind::Heading(Section::Patient),
            "name" => Kind::Name,
            "position" => Kind::Position,
            "organization" => Kind::Organization,
            "phone" => Kind::Phone,
            "login" => Kind::Login,
            "card" => Kind::Card,
            "impact" => Kind::Impact,
            "priority" => Kind::Priority,
            "ignore" => Kind::Ignore,
            other => Kind::Field(field_index(other)?),
        })
    }

    /// Labels of these kinds also accept a plain space before a value that looks right.
    fn typed(self) -> Option<ValueType> {
        match self {
            Kind::Phone | Kind::Field(F_APP_PHONE) => Some(ValueType::Phone),
            Kind::Login | Kind::Field(F_USER_LOGIN) => Some(ValueType::Login),
            Kind::Card | Kind::Field(F_PAT_CARD) => Some(ValueType::Card),
            _ => None,
        }
    }

    /// Whether the label counts in `labels_found` (the fields of the form, not the extras).
    fn counts(self) -> bool {
        !matches!(self, Kind::Impact | Kind::Priority | Kind::Ignore)
    }
}

const F_APP_NAME: usize = 0;
const F_APP_POSITION: usize = 1;
const F_APP_ORG: usize = 2;
const F_APP_PHONE: usize = 3;
const F_USER_NAME: usize = 4;
const F_USER_LOGIN: usize = 5;
const F_PAT_NAME: usize = 6;
const F_PAT_CARD: usize = 7;
const F_STEPS: usize = 8;
const F_ERROR: usize = 9;

fn field_index(dotted: &str) -> Option<usize> {
    FormFields::NAMES.iter().position(|n| *n == dotted)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValueType {
    Text,
    Phone,
    Login,
    Card,
    Multi,
}

fn value_type(field: usize) -> ValueType {
    match field {
        F_APP_PHONE => ValueType::Phone,
        F_USER_LOGIN => ValueType::Login,
        F_PAT_CARD => ValueType::Card,
        F_STEPS | F_ERROR => ValueType::Multi,
        _ => ValueType::Text,
    }
}

#[derive(Debug, Clone)]
struct HeaderBlock {
    start: Regex,
    next: Regex,
    within: usize,
}

#[derive(Debug, Clone)]
struct QuoteRules {
    cut_from: RegexSet,
    attribution: RegexSet,
    drop_lines: RegexSet,
    header_blocks: Vec<HeaderBlock>,
}

/// Patterns that are part of the program, not of the rules.
#[derive(Debug, Clone)]
struct Fixed {
    /// A phone-number-like run of digits.
    phone: Regex,
    /// A dash or slash with spaces around it: separates items, never inside a phone number.
    spaced_sep: Regex,
    /// "тел.", "контактный телефон:", … right before a phone (anchored at the end).
    phone_prefix: Regex,
    /// "доб. 123", "(вн. 12)" right after a phone.
    phone_ext: Regex,
    /// A chunk that is a phone with its word: "тел. 12-34".
    phone_chunk: Regex,
    email: Regex,
    /// Leftovers of removed phones and e-mails: "тел.", "e-mail:".
    noise_chunk: Regex,
    /// A whole chunk that is a person's name.
    name: Regex,
    /// A name followed by a lowercase position: "Иванова Т.А. медсестра".
    name_prefix: Regex,
    /// A Latin token that can be a login.
    latin_token: Regex,
    /// A card number: a token with a digit.
    card_token: Regex,
    /// A bare card number in a patient line (a token with a digit: "123456", "ЦГБ-017734").
    bare_card: Regex,
}

impl Fixed {
    fn new() -> Result<Fixed, String> {
        let name_word = r"\p{Lu}\p{Ll}+(?:-\p{Lu}\p{Ll}+)?";
        let initials = r"\p{Lu}\.[ \t]?(?:\p{Lu}\.?)?";
        let name = format!(
            r"^(?:{w}(?:[ \t]+{w}){{1,2}}|{w}[ \t]+{i}|\p{{Lu}}\.[ \t]?(?:\p{{Lu}}\.)?[ \t]?{w})$",
            w = name_word,
            i = initials
        );
        let name_prefix = format!(
            r"^((?:{w}(?:[ \t]+{w}){{1,2}}|{w}[ \t]+{i}))[ \t]*(?:[-–—][ \t]*|[ \t])(\p{{Ll}}.*)$",
            w = name_word,
            i = initials
        );
        Ok(Fixed {
            phone: re(r"\+?\(?\d(?:[ \t\-–—().]{0,3}\d){4,16}\)?", "phone")?,
            spaced_sep: re(r"[ \t]+[-–—/][ \t]+", "spaced separator")?,
            phone_prefix: re(
                r"(?i)(?:\b(?:(?:контактный|конт\.?|рабочий|раб\.?|мобильный|моб\.?|сотовый|сот\.?|городской|гор\.?)[ \t]*)?(?:телефон|тел\.?|т\.|моб\.?)[ \t]*(?:№[ \t]*)?[:.]?[ \t]*)$",
                "phone prefix",
            )?,
            phone_ext: re(
                r"(?i)^(?:[ \t]*,?[ \t]*\(?[ \t]*(?:доб|доп|вн|внутр|ext)\.?[ \t]*[:.]?[ \t]*\d{1,6}[ \t]*\)?)?(?:[ \t]*\((?:моб|мобильный|сот|сотовый|раб|рабочий|гор|городской|служебный|личный)\.?\))?",
                "phone extension",
            )?,
            phone_chunk: re(
                r"(?i)^(?:(?:контактный|конт\.?|рабочий|мобильный|сотовый)[ \t]*)?(?:телефон|тел|моб)\.?[ \t]*[:.]?[ \t]*(.*\d.*)$",
                "phone chunk",
            )?,
            email: re(
                r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}",
                "email",
            )?,
            noise_chunk: re(
                r"(?i)^\(?(?:e-?mail|эл\.?[ \t]*почта|электронная[ \t]+почта|почта|телефон|тел|моб|мобильный|сот|сотовый|раб|рабочий|контактный[ \t]+телефон)\.?\)?[ \t]*:?$",
                "noise",
            )?,
            name: re(&name, "name")?,
            name_prefix: re(&name_prefix, "name prefix")?,
            latin_token: re(
                r"(?:^|[\s,;(/\[«])([A-Za-z][A-Za-z0-9._@\\\-]*)",
                "latin token",
            )?,
            card_token: re(
                r"(?:№[ \t]*)?([0-9A-Za-zА-Яа-яЁё][0-9A-Za-zА-Яа-яЁё/\-]*)",
                "card token",
            )?,
            bare_card: re(
                r"(?:^|[\s,;(])(?:№[ \t]*)?([0-9A-Za-zА-Яа-яЁё][0-9A-Za-zА-Яа-яЁё/\-]*)",
                "bare card",
            )?,
        })
    }
}

fn re(pattern: &str, what: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{what}: {e}"))
}

fn re_ci(pattern: &str, key: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(32 * 1024 * 1024)
        .build()
        .map_err(|e| format!("{key}: bad regex {pattern:?}: {e}"))
}

/// A list of case-insensitive patterns matched together; each is first built alone so that an
/// error names the item.
fn re_set(patterns: &[String], key: &str) -> Result<RegexSet, String> {
    for (i, p) in patterns.iter().enumerate() {
        re_ci(p, &format!("{key}: item {}", i + 1))?;
    }
    RegexSetBuilder::new(patterns)
        .case_insensitive(true)
        .size_limit(64 * 1024 * 1024)
        .build()
        .map_err(|e| format!("{key}: {e}"))
}

/// The rules of `rules/form.toml`, validated, with every regex built once.
#[derive(Debug, Clone)]
pub struct FormRules {
    required: Vec<String>,
    required_one_of: Vec<Vec<String>>,
    recommended: Vec<String>,
    descriptions: BTreeMap<String, String>,
    city_code: String,
    max_input_bytes: usize,
    max_line_chars: usize,
    /// All labels, a separator required.
    label_strict: Regex,
    strict_kinds: Vec<Kind>,
    /// Phone / login / card labels followed by a plain space.
    label_loose: Option<Regex>,
    loose_kinds: Vec<Kind>,
    empty_values: HashSet<String>,
    same_as_applicant: HashSet<String>,
    org_prefix: Option<Regex>,
    login_kw: Option<Regex>,
    card_kw: Option<Regex>,
    closing: RegexSet,
    signature: RegexSet,
    quote: QuoteRules,
    fixed: Fixed,
}

impl FormRules {
    /// Parse and compile a rules file (TOML text).
    pub fn from_toml(text: &str) -> Result<FormRules, String> {
        let raw: RawFormRules = toml::from_str(text).map_err(|e| e.to_string())?;
        FormRules::compile(raw)
    }

    /// The rules shipped with the program.
    pub fn builtin() -> Result<FormRules, String> {
        FormRules::from_toml(DEFAULT_RULES_TOML)
    }

    /// Validate the raw rules and build every regex. The error names the key at fault.
    pub fn compile(raw: RawFormRules) -> Result<FormRules, String> {
        let check_names = |names: &[String], key: &str| -> Result<(), String> {
            for (i, n) in names.iter().enumerate() {
                if field_index(n).is_none() {
                    return Err(format!("{key}: item {}: unknown field {n:?}", i + 1));
                }
            }
            Ok(())
        };
        check_names(&raw.required, "required")?;
        check_names(&raw.recommended, "recommended")?;
        for (i, group) in raw.required_one_of.iter().enumerate() {
            if group.is_empty() {
                return Err(format!("required_one_of: group {}: empty", i + 1));
            }
            check_names(group, &format!("required_one_of: group {}", i + 1))?;
        }
        for key in raw.descriptions.keys() {
            if field_index(key).is_none() {
                return Err(format!("descriptions: unknown field {key:?}"));
            }
        }
        for name in FormFields::NAMES {
            match raw.descriptions.get(name) {
                Some(d) if !d.trim().is_empty() => {}
                _ => return Err(format!("descriptions: no description for {name:?}")),
            }
        }
        let code = raw.default_city_code.trim().to_string();
        if code.is_empty() || code.len() > 5 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "default_city_code: {:?} is not 1 to 5 digits",
                raw.default_city_code
            ));
        }
        if raw.max_input_bytes < 1024 {
            return Err("max_input_bytes: must be at least 1024".to_string());
        }
        if raw.max_line_chars < 80 {
            return Err("max_line_chars: must be at least 80".to_string());
        }

        // Labels: one alternation, longest label first, one capture group per label.
        let mut all: Vec<(String, Kind)> = Vec::new();
        for (key, words) in &raw.labels {
            let kind = Kind::parse(key).ok_or_else(|| format!("labels: unknown key {key:?}"))?;
            for (i, w) in words.iter().enumerate() {
                if w.split_whitespace().next().is_none() {
                    return Err(format!("labels.{key}: item {}: empty label", i + 1));
                }
                all.push((fold(w.trim()), kind));
            }
        }
        if all.is_empty() {
            return Err("labels: no labels at all".to_string());
        }
        all.sort_by(|a, b| {
            b.0.chars()
                .count()
                .cmp(&a.0.chars().count())
                .then(a.0.cmp(&b.0))
        });
        all.dedup_by(|a, b| a.0.to_lowercase() == b.0.to_lowercase());
        let prefix = r"^[ \t]*(?:[|│┃][ \t]*)?(?:(?:\d{1,2}[.)]|#{1,4}|[-–—•·▪►‣◦●○■□✓✔➢*>])[ \t]*)?(?:\*{1,2}|__)?[ \t]*";
        let hint = r"(?:[ \t]*\([^()\n]*\))?";
        let alternation = |items: &[&(String, Kind)]| -> String {
            items
                .iter()
                .map(|(l, _)| format!("({})", label_pattern(l)))
                .collect::<Vec<_>>()
                .join("|")
        };
        let strict_items: Vec<&(String, Kind)> = all.iter().collect();
        // A hyphen-minus separates only with a space on one side: "Карта-схема" is a word.
        let strict = format!(
            r"{prefix}(?:{}){hint}(?:[ \t]*(?:\*{{1,2}}|__)?[ \t]*(?:[:：—–|│┃]|\t|$|-[ \t]|-$)|[ \t]+-)",
            alternation(&strict_items)
        );
        let label_strict = re_ci(&strict, "labels")?;
        let strict_kinds = strict_items.iter().map(|(_, k)| *k).collect();
        let loose_items: Vec<&(String, Kind)> =
            all.iter().filter(|(_, k)| k.typed().is_some()).collect();
        let (label_loose, loose_kinds) = if loose_items.is_empty() {
            (None, Vec::new())
        } else {
            let loose = format!(r"{prefix}(?:{})[ \t]+", alternation(&loose_items));
            (
                Some(re_ci(&loose, "labels")?),
                loose_items.iter().map(|(_, k)| *k).collect(),
            )
        };

        let v = &raw.values;
        let empty_values = v.empty_values.iter().map(|s| norm_value(s)).collect();
        let same_as_applicant = v.same_as_applicant.iter().map(|s| norm_value(s)).collect();
        let org_prefix = keyword_regex(&v.org_prefixes, "values.org_prefixes", |alts| {
            format!(r#"^(?:["«“„'‘]|(?:{alts})(?:[^\p{{L}}\p{{N}}]|$))"#)
        })?;
        let login_kw = keyword_regex(&v.login_keywords, "values.login_keywords", |alts| {
            format!(r#"(?:^|[^\p{{L}}\p{{N}}_])(?:{alts})([^\s,;()«»"]+)"#)
        })?;
        let card_kw = keyword_regex(&v.card_keywords, "values.card_keywords", |alts| {
            format!(
                r"(?:^|[^\p{{L}}\p{{N}}_])(?:{alts})(?:№[ \t]*)?([0-9A-Za-zА-Яа-яЁё][0-9A-Za-zА-Яа-яЁё/\-]*)"
            )
        })?;
        let closing = re_set(&v.closing_lines, "values.closing_lines")?;
        let signature = re_set(&v.signature_lines, "values.signature_lines")?;

        let q = &raw.quote;
        let mut header_blocks = Vec::new();
        for (i, b) in q.header_blocks.iter().enumerate() {
            if b.within == 0 || b.within > 20 {
                return Err(format!(
                    "quote.header_blocks: block {}: within: must be 1 to 20",
                    i + 1
                ));
            }
            header_blocks.push(HeaderBlock {
                start: re_ci(
                    &b.start,
                    &format!("quote.header_blocks: block {}: start", i + 1),
                )?,
                next: re_ci(
                    &b.next,
                    &format!("quote.header_blocks: block {}: next", i + 1),
                )?,
                within: b.within,
            });
        }
        let quote = QuoteRules {
            cut_from: re_set(&q.cut_from, "quote.cut_from")?,
            attribution: re_set(&q.attribution, "quote.attribution")?,
            drop_lines: re_set(&q.drop_lines, "quote.drop_lines")?,
            header_blocks,
        };

        Ok(FormRules {
            required: raw.required,
            required_one_of: raw.required_one_of,
            recommended: raw.recommended,
            descriptions: raw.descriptions,
            city_code: code,
            max_input_bytes: raw.max_input_bytes,
            max_line_chars: raw.max_line_chars,
            label_strict,
            strict_kinds,
            label_loose,
            loose_kinds,
            empty_values,
            same_as_applicant,
            org_prefix,
            login_kw,
            card_kw,
            closing,
            signature,
            quote,
            fixed: Fixed::new()?,
        })
    }

    /// Fields that must all be present (dotted names, as in the rules).
    pub fn required(&self) -> &[String] {
        &self.required
    }

    /// Groups of which at least one field must be present.
    pub fn required_one_of(&self) -> &[Vec<String>] {
        &self.required_one_of
    }

    /// Fields whose absence is only a warning.
    pub fn recommended(&self) -> &[String] {
        &self.recommended
    }

    /// The Russian words for a field ("контактный телефон заявителя"); the name itself when
    /// the field is unknown.
    pub fn describe<'a>(&'a self, dotted: &'a str) -> &'a str {
        self.descriptions
            .get(dotted)
            .map(String::as_str)
            .unwrap_or(dotted)
    }

    /// The city code given to 6-digit local numbers.
    pub fn city_code(&self) -> &str {
        &self.city_code
    }

    fn is_empty_value(&self, value: &str) -> bool {
        let n = norm_value(value);
        n.is_empty() || !n.chars().any(char::is_alphanumeric) || self.empty_values.contains(&n)
    }

    /// The label at the start of `line`, with the text after its separator.
    fn match_label(&self, line: &str) -> Option<(Kind, String)> {
        if line.trim().is_empty() {
            return None;
        }
        let folded = fold(line);
        if let Some(caps) = self.label_strict.captures(&folded) {
            let whole = caps.get(0)?;
            let group = (1..caps.len()).find(|&g| caps.get(g).is_some())?;
            let kind = *self.strict_kinds.get(group - 1)?;
            let value = clean_inline(line.get(whole.end()..).unwrap_or(""));
            return Some((kind, value));
        }
        let loose = self.label_loose.as_ref()?;
        let caps = loose.captures(&folded)?;
        let whole = caps.get(0)?;
        let group = (1..caps.len()).find(|&g| caps.get(g).is_some())?;
        let kind = *self.loose_kinds.get(group - 1)?;
        let value = clean_inline(line.get(whole.end()..).unwrap_or(""));
        let ok = match kind.typed()? {
            ValueType::Phone => looks_like_phone(&value),
            ValueType::Login => looks_like_login(&value),
            ValueType::Card => looks_like_card(&value),
            _ => false,
        };
        ok.then_some((kind, value))
    }
}

/// A regex from a list of literal keywords, longest first, ё folded, spaces flexible.
fn keyword_regex(
    words: &[String],
    key: &str,
    wrap: impl Fn(&str) -> String,
) -> Result<Option<Regex>, String> {
    let mut list: Vec<String> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let w = fold(w.trim());
        if w.is_empty() {
            return Err(format!("{key}: item {}: empty", i + 1));
        }
        list.push(w);
    }
    if list.is_empty() {
        return Ok(None);
    }
    list.sort_by(|a, b| b.chars().count().cmp(&a.chars().count()).then(a.cmp(b)));
    let alts = list
        .iter()
        .map(|w| {
            let mut p = label_pattern(w);
            // A keyword ending in a letter needs a separator before the value
            // ("уз petrov", not the "уз" of "узел").
            if w.chars().last().is_some_and(char::is_alphanumeric) {
                p.push_str(r"[ \t:\-–—=]+");
            } else {
                p.push_str(r"[ \t:\-–—=]*");
            }
            p
        })
        .collect::<Vec<_>>()
        .join("|");
    re_ci(&wrap(&alts), key).map(Some)
}

/// The regex for one label or keyword: any run of spaces matches any run of spaces (or none
/// after "." and "№"), commas are optional, any quote mark matches any quote mark.
fn label_pattern(label: &str) -> String {
    let words: Vec<&str> = label.split_whitespace().collect();
    let mut p = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            let prev = words[i - 1];
            if prev.ends_with(['.', '№', ',']) {
                p.push_str(r"[ \t]*");
            } else {
                p.push_str(r"[ \t]+");
            }
        }
        let n = w.chars().count();
        for (j, c) in w.chars().enumerate() {
            match c {
                ',' if j + 1 == n => p.push_str(",?"),
                '«' | '»' | '"' | '“' | '”' | '„' => p.push_str(r#"["«»“”„']?"#),
                c => p.push_str(&regex::escape(c.encode_utf8(&mut [0u8; 4]))),
            }
        }
    }
    p
}

// ---------------------------------------------------------------------------------------------
// Text cleaning
// ---------------------------------------------------------------------------------------------

/// Ё → Е for matching; keeps every byte offset (both are two bytes in UTF-8).
fn fold(s: &str) -> String {
    // Most text has no Ё at all: one scan and a copy instead of a char-by-char rebuild.
    if !s.contains(['ё', 'Ё']) {
        return s.to_owned();
    }
    s.replace('ё', "е").replace('Ё', "Е")
}

/// Lowercase, Ё → Е, spaces collapsed, surrounding spaces and a final `.`/`!`/`;`/`,` removed.
fn norm_value(s: &str) -> String {
    let mut out = collapse_spaces(&fold(&s.to_lowercase()));
    let end = out.trim_end_matches(['.', '!', ';', ',']).trim_end().len();
    out.truncate(end);
    out
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    let mut i = max.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Line endings, odd spaces, invisible characters, decomposed й/ё; the size limits.
fn clean_text(text: &str, max_bytes: usize, max_line_chars: usize) -> String {
    let src = &text[..floor_char_boundary(text, max_bytes)];
    let mut out = String::with_capacity(src.len());
    let mut line_chars = 0usize;
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        let next = chars.peek().copied();
        let c = match c {
            '\r' => {
                if next == Some('\n') {
                    continue;
                }
                '\n'
            }
            '\u{2028}' | '\u{2029}' | '\u{85}' | '\u{0B}' | '\u{0C}' => '\n',
            '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2043}' | '\u{2212}' | '\u{FE63}'
            | '\u{FF0D}' => '-',
            '\u{A0}'
            | '\u{2000}'..='\u{200A}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
            | '\u{1680}' => ' ',
            '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{AD}'
            | '\u{180E}' => continue,
            'и' | 'И' | 'е' | 'Е' if matches!(next, Some('\u{306}') | Some('\u{308}')) => {
                chars.next();
                match (c, next) {
                    ('и', Some('\u{306}')) => 'й',
                    ('И', Some('\u{306}')) => 'Й',
                    ('е', Some('\u{308}')) => 'ё',
                    ('Е', Some('\u{308}')) => 'Ё',
                    (c, _) => c,
                }
            }
            c if c.is_control() && c != '\t' && c != '\n' => continue,
            c => c,
        };
        if c == '\n' {
            line_chars = 0;
            out.push('\n');
            continue;
        }
        if line_chars >= max_line_chars {
            continue;
        }
        line_chars += 1;
        out.push(c);
    }
    out
}

/// A line as the quote patterns see it: trimmed, without `*` bold markers.
fn match_form(line: &str) -> String {
    let t = line.trim();
    if t.contains('*') {
        t.replace('*', "").trim().to_string()
    } else {
        t.to_string()
    }
}

/// The text after a label's separator: spaces, bold markers and leftover separators removed.
fn clean_inline(s: &str) -> String {
    s.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '*' | ':' | '：' | '│' | '|'))
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '*' | '│' | '|'))
        .to_string()
}

fn collapse_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Trailing `,` `;` `:` go; a trailing `.` goes too unless it ends an initial ("Т.А.").
fn trim_trailing_punct(s: &str) -> &str {
    let mut t = s.trim();
    loop {
        let before = t;
        t = t.trim_end_matches([',', ';', ':']).trim_end();
        if let Some(rest) = t.strip_suffix('.') {
            let initial = rest.chars().next_back().is_some_and(char::is_uppercase);
            if !initial && !rest.ends_with('.') {
                t = rest.trim_end();
            }
        }
        if t == before {
            return t;
        }
    }
}

fn is_box_char(c: char) -> bool {
    ('\u{2500}'..='\u{257F}').contains(&c)
}

/// A line drawn only with `─`, `-`, `=`, `_`… (table borders, rules): read as a blank line.
fn is_border(line: &str) -> bool {
    let t = line.trim();
    t.chars().count() >= 3
        && t.chars().all(|c| {
            is_box_char(c)
                || c.is_whitespace()
                || matches!(c, '-' | '—' | '–' | '=' | '_' | '+' | '|' | '~' | '*' | ':')
        })
        && t.chars()
            .any(|c| is_box_char(c) || matches!(c, '-' | '—' | '–' | '=' | '_' | '~'))
}

/// A border line of an html2text table (box characters other than `│` only).
fn is_box_border(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty()
        && t.chars().all(|c| is_box_char(c) || c == ' ')
        && t.chars().any(|c| is_box_char(c) && c != '│')
}

// ---------------------------------------------------------------------------------------------
// strip_quoted
// ---------------------------------------------------------------------------------------------

/// Cut quoted history and signature: returns only the new text of the mail, cleaned (see the
/// module docs). [`parse_form`] calls it itself; the engine may call it for other checks.
pub fn strip_quoted(text: &str, rules: &FormRules) -> String {
    let cleaned = clean_text(text, rules.max_input_bytes, rules.max_line_chars);
    let lines: Vec<&str> = cleaned.split('\n').collect();
    let forms: Vec<String> = lines.iter().map(|l| match_form(l)).collect();
    let q = &rules.quote;
    let is_quoted = |l: &str| l.trim_start().starts_with('>');
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut i = 0;
    'lines: while i < lines.len() {
        let line = lines[i];
        let m = &forms[i];
        if is_quoted(line) {
            i += 1;
            continue;
        }
        if m.is_empty() {
            out.push(line);
            i += 1;
            continue;
        }
        if q.cut_from.is_match(m) {
            break;
        }
        if q.attribution.is_match(m) {
            let next = (i + 1..lines.len().min(i + 1 + ATTRIBUTION_LOOKAHEAD))
                .find(|&k| !lines[k].trim().is_empty());
            if next.is_some_and(|k| is_quoted(lines[k])) {
                i += 1;
                continue;
            }
            break;
        }
        for b in &q.header_blocks {
            if b.start.is_match(m) {
                let end = lines.len().min(i + 1 + b.within);
                if (i + 1..end).any(|k| b.next.is_match(&forms[k])) {
                    break 'lines;
                }
            }
        }
        if q.drop_lines.is_match(m) {
            i += 1;
            continue;
        }
        out.push(line);
        i += 1;
    }
    let mut s = out.join("\n");
    s.truncate(s.trim_end().len());
    s
}

// ---------------------------------------------------------------------------------------------
// Lines and html2text tables
// ---------------------------------------------------------------------------------------------

/// One line of the new text; `cont` marks a further line of the same table cell. The label,
/// closing and signature tests are made once per line, in [`parse_form`].
#[derive(Debug, Clone, Default)]
struct Line {
    text: String,
    cont: bool,
    label: Option<(Kind, String)>,
    closing: bool,
    signature: bool,
}

impl Line {
    fn plain(text: &str) -> Line {
        Line {
            text: text.to_string(),
            ..Line::default()
        }
    }
}

fn prepare_lines(body: &str, is_label: &dyn Fn(&str) -> bool) -> Vec<Line> {
    let raw: Vec<&str> = body.split('\n').collect();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let in_table = |l: &str| l.contains('│') || is_box_border(l);
        if in_table(raw[i]) {
            let mut j = i;
            while j < raw.len() && in_table(raw[j]) {
                j += 1;
            }
            if raw[i..j].iter().any(|l| l.contains('│')) {
                reassemble_table(&raw[i..j], &mut out, is_label);
            } else {
                out.extend((i..j).map(|_| Line::plain("")));
            }
            i = j;
        } else if is_border(raw[i]) {
            out.push(Line::plain(""));
            i += 1;
        } else {
            out.push(Line::plain(raw[i]));
            i += 1;
        }
    }
    out
}

/// Put back together the rows of a table drawn by html2text: each cell's wrapped fragments are
/// joined (with a space where the text was wrapped, with `\n` where the cell had a line break),
/// and each row becomes `label │ first line of the value` plus the value's further lines.
fn reassemble_table(block: &[&str], out: &mut Vec<Line>, is_label: &dyn Fn(&str) -> bool) {
    let mut border: Option<&str> = None;
    let mut row: Vec<&str> = Vec::new();
    let flush = |row: &mut Vec<&str>, border: Option<&str>, out: &mut Vec<Line>| {
        if !row.is_empty() {
            emit_row(row, border, out, is_label);
            row.clear();
        }
    };
    for &line in block {
        if is_box_border(line) {
            flush(&mut row, border, out);
            border = Some(line);
            out.push(Line::plain(""));
        } else {
            row.push(line);
        }
    }
    flush(&mut row, border, out);
}

fn emit_row(
    row: &[&str],
    border: Option<&str>,
    out: &mut Vec<Line>,
    is_label: &dyn Fn(&str) -> bool,
) {
    let split: Vec<Vec<&str>> = row.iter().map(|l| l.split('│').collect()).collect();
    let ncols = split.iter().map(Vec::len).max().unwrap_or(0);
    if ncols == 0 {
        return;
    }
    // Column widths: from the border's junctions when they agree with the row, else the widest
    // fragment (html2text pads every cell to its column's width).
    let mut widths: Vec<usize> = (0..ncols)
        .map(|c| {
            split
                .iter()
                .filter_map(|cells| cells.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    if let Some(b) = border {
        let junctions: Vec<usize> = b
            .chars()
            .enumerate()
            .filter(|(_, c)| is_box_char(*c) && !matches!(c, '─' | '━' | '═' | '│'))
            .map(|(i, _)| i)
            .collect();
        if junctions.len() + 1 == ncols {
            let total = b.chars().count();
            let mut prev: Option<usize> = None;
            for (c, w) in widths.iter_mut().enumerate() {
                let end = junctions.get(c).copied().unwrap_or(total);
                let start = prev.map_or(0, |p| p + 1);
                *w = (*w).max(end.saturating_sub(start));
                prev = Some(end);
            }
        }
    }
    // Each cell twice: with words cut at the column's edge glued back, and without (a word
    // that exactly fills the column looks the same as a cut one); the label cell keeps the
    // variant that reads as a label.
    let column = |c: usize, glue: bool| {
        let frags: Vec<&str> = split
            .iter()
            .map(|cells| cells.get(c).copied().unwrap_or(""))
            .collect();
        join_cell(&frags, widths[c], c == 0 && ncols > 1, glue)
    };
    let mut cells: Vec<String> = (0..ncols).map(|c| column(c, true)).collect();
    let mut spaced: Vec<String> = (0..ncols).map(|c| column(c, false)).collect();
    // Leading cells that are empty or a row number.
    while cells.len() > 1 {
        let t = cells[0].trim();
        let number = !t.is_empty()
            && t.chars().count() <= 3
            && t.trim_end_matches(['.', ')'])
                .chars()
                .all(|c| c.is_ascii_digit());
        if t.is_empty() || number {
            cells.remove(0);
            spaced.remove(0);
        } else {
            break;
        }
    }
    if cells.len() >= 2 && cells[0] != spaced[0] && !is_label(&cells[0]) && is_label(&spaced[0]) {
        cells[0] = std::mem::take(&mut spaced[0]);
    }
    match cells.len() {
        0 => {}
        1 => {
            for l in cells[0].split('\n') {
                out.push(Line::plain(l));
            }
        }
        2 => {
            let label = cells[0].split('\n').next().unwrap_or("").trim();
            let mut value_lines = cells[1].split('\n');
            let first = value_lines.next().unwrap_or("").trim();
            out.push(Line::plain(&format!("{label} │ {first}")));
            for l in value_lines {
                out.push(Line {
                    text: l.to_string(),
                    cont: true,
                    ..Line::default()
                });
            }
        }
        _ => {
            let joined = cells
                .iter()
                .map(|c| collapse_spaces(c))
                .collect::<Vec<_>>()
                .join(" │ ");
            out.push(Line::plain(&joined));
        }
    }
    out.push(Line::plain(""));
}

/// Join the fragments of one cell. A fragment that, with the next word, would not have fitted
/// in the column was wrapped: joined with a space (or with nothing after a word cut at the
/// column's edge). Otherwise the cell had a line break there: `\n`.
fn join_cell(frags: &[&str], width: usize, label_col: bool, glue: bool) -> String {
    let mut s = String::new();
    let mut prev: Option<&str> = None;
    for f in frags {
        let f = f.trim_end();
        let text = f.trim_start();
        match prev {
            None => s.push_str(text),
            Some(p) => {
                if p.trim().is_empty() || text.is_empty() {
                    s.push(if label_col { ' ' } else { '\n' });
                    s.push_str(text);
                } else {
                    let plen = p.chars().count();
                    let first_word = text.split_whitespace().next().unwrap_or("");
                    let fw = first_word.chars().count();
                    // html2text cuts a word only when the word alone is wider than the column.
                    let mid_word = glue
                        && plen >= width
                        && !p.trim().contains(char::is_whitespace)
                        && p.chars().next_back().is_some_and(char::is_alphabetic)
                        && text.chars().next().is_some_and(char::is_lowercase);
                    if mid_word {
                        s.push_str(text);
                    } else if label_col || plen + 1 + fw > width {
                        s.push(' ');
                        s.push_str(text);
                    } else {
                        s.push('\n');
                        s.push_str(text);
                    }
                }
            }
        }
        prev = Some(f);
    }
    s.trim().to_string()
}

// ---------------------------------------------------------------------------------------------
// parse_form
// ---------------------------------------------------------------------------------------------

/// The form as read from a mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedForm {
    pub fields: FormFields,
    /// The value of a `Влияние:` line, as written (trimmed); the engine maps it.
    pub impact_raw: Option<String>,
    /// The value of a `Приоритет:` line, as written (trimmed).
    pub priority_raw: Option<String>,
    /// How many labels of form fields were recognised (headings and sub-labels, steps, error;
    /// not `Влияние`, `Приоритет` or the ignored ones). 0 means "no form at all".
    pub labels_found: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gather {
    /// Everything up to the next label.
    Multi,
    /// A heading: the following non-blank lines when it stands alone.
    Block,
    /// One line.
    Single,
}

/// Read the form from a mail's plain-text body. Calls [`strip_quoted`] first, so an old form
/// quoted below a reply fills nothing.
///
/// A one-line «Данные о заявителе» is split as follows: every phone number is found first
/// (anywhere, with its `тел.` word and `доб.` extension) and removed, as are e-mail addresses;
/// the rest is cut at `,` `;` (or, when there is none, at spaced dashes ` – `); the name is the
/// first chunk (or the leading name of "Иванова Т.А. медсестра"); the organisation starts at
/// the first later chunk beginning with a `values.org_prefixes` word or a quote mark (else one
/// containing `«`, `"` or `№`) and keeps everything after it joined with `, `; the chunks
/// between are the position. With no organisation found, two or more chunks after the name
/// are position + organisation, one chunk is the position. If the line starts with the
/// organisation, the last name-like chunk is the name.
pub fn parse_form(text: &str, rules: &FormRules) -> ParsedForm {
    let body = strip_quoted(text, rules);
    let mut lines = prepare_lines(&body, &|s: &str| rules.match_label(s).is_some());
    for l in lines.iter_mut().filter(|l| !l.text.trim().is_empty()) {
        l.label = rules.match_label(&l.text);
        let m = match_form(&l.text);
        l.signature = rules.signature.is_match(&m);
        l.closing = l.signature || rules.closing.is_match(&m);
    }
    let mut form = ParsedForm::default();
    let mut section = Section::Applicant;
    let mut pending: Option<String> = None;
    // Below «С уважением» a lone "Тел.: 55-12-34" is the signature, not the form: there,
    // sub-labels are read only after a heading.
    let mut in_signature = false;
    let mut heading_in_signature = false;
    let mut i = 0;
    while i < lines.len() {
        let (current, label) = match pending.take() {
            Some(p) => {
                let label = rules.match_label(&p);
                (p, label)
            }
            None => {
                if lines[i].signature {
                    in_signature = true;
                    heading_in_signature = false;
                    i += 1;
                    continue;
                }
                (lines[i].text.clone(), lines[i].label.clone())
            }
        };
        let Some((kind, inline)) = label else {
            i += 1;
            continue;
        };
        if in_signature {
            match kind {
                Kind::Heading(_) => heading_in_signature = true,
                Kind::Field(F_STEPS | F_ERROR) | Kind::Impact | Kind::Priority | Kind::Ignore => {}
                _ if !heading_in_signature => {
                    i += 1;
                    continue;
                }
                _ => {}
            }
        }
        if kind.counts() {
            form.labels_found += 1;
        }
        // "Данные о заявителе │ ФИО: Иванова" — a heading whose value is itself a label.
        if let Kind::Heading(s) = kind {
            if !rules.is_empty_value(&inline) && rules.match_label(&inline).is_some() {
                section = s;
                pending = Some(inline);
                continue;
            }
        }
        let gather = match kind {
            Kind::Heading(_) => Gather::Block,
            Kind::Field(F_STEPS) | Kind::Field(F_ERROR) => Gather::Multi,
            _ => Gather::Single,
        };
        let (parts, next) = gather_value(&lines, i, inline.clone(), &current, gather);
        i = next;
        match kind {
            Kind::Heading(s) => {
                section = if inline.is_empty() {
                    s
                } else {
                    Section::Applicant
                };
                let text = join_block(&parts);
                if !rules.is_empty_value(&text) {
                    match s {
                        Section::Applicant => fill_applicant(&mut form.fields, &text, rules),
                        Section::User => fill_user(&mut form.fields, &text, rules),
                        Section::Patient => fill_patient(&mut form.fields, &text, rules),
                    }
                }
            }
            Kind::Impact => set_first(
                &mut form.impact_raw,
                simple_value(&parts, rules).map(|v| v.to_string()),
            ),
            Kind::Priority => set_first(
                &mut form.priority_raw,
                simple_value(&parts, rules).map(|v| v.to_string()),
            ),
            Kind::Ignore => {}
            _ => {
                let field = match (kind, section) {
                    (Kind::Name, Section::Applicant) => Some(F_APP_NAME),
                    (Kind::Name, Section::User) => Some(F_USER_NAME),
                    (Kind::Name, Section::Patient) => Some(F_PAT_NAME),
                    (Kind::Position, Section::Applicant) => Some(F_APP_POSITION),
                    (Kind::Organization, Section::Applicant) => Some(F_APP_ORG),
                    (Kind::Phone, Section::Applicant) => Some(F_APP_PHONE),
                    (Kind::Login, _) => Some(F_USER_LOGIN),
                    (Kind::Card, _) => Some(F_PAT_CARD),
                    (Kind::Field(f), _) => Some(f),
                    _ => None,
                };
                if let Some(f) = field {
                    if matches!(f, F_STEPS | F_ERROR) {
                        section = Section::Applicant;
                    }
                    let value = field_value(f, &parts, rules);
                    if let Some(slot) = form.fields.slot(FormFields::NAMES[f]) {
                        set_first(slot, value);
                    }
                }
            }
        }
    }
    // "Пользователь: тот же" — the applicant is the user.
    if let Some(u) = &form.fields.user.full_name {
        if rules.same_as_applicant.contains(&norm_value(u)) {
            form.fields.user.full_name = form.fields.applicant.full_name.clone();
        }
    }
    form
}

fn set_first(slot: &mut Option<String>, value: Option<String>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// The value of the label on line `i`: `inline` plus the lines that belong to it.
/// Returns the parts and the index of the first line not consumed.
fn gather_value(
    lines: &[Line],
    i: usize,
    inline: String,
    line: &str,
    gather: Gather,
) -> (Vec<String>, usize) {
    let n = lines.len();
    let mut parts: Vec<String> = Vec::new();
    let inline_empty = inline.is_empty();
    if !inline_empty {
        parts.push(inline);
    }
    let stops = |k: usize| lines[k].label.is_some() || lines[k].closing;
    // A line after a soft break continues the part before it.
    let append = |parts: &mut Vec<String>, t: &str| match parts.last_mut() {
        Some(last) if !last.is_empty() => {
            last.push(' ');
            last.push_str(t);
        }
        _ => parts.push(t.to_string()),
    };
    let mut j = i + 1;
    let mut prev: &str = line;
    match gather {
        Gather::Multi => {
            while j < n && !stops(j) {
                let raw = lines[j].text.as_str();
                if raw.trim().is_empty() {
                    // A value begun on the label's line ends at a blank line (the remark below
                    // it is not the error text); a table cell's blank line does not end it.
                    if !inline_empty && !lines[j].cont {
                        break;
                    }
                    parts.push(String::new());
                } else if soft_break(prev) && !starts_list_item(raw) {
                    append(&mut parts, raw.trim());
                } else {
                    parts.push(raw.trim_end().to_string());
                }
                prev = raw;
                j += 1;
            }
        }
        Gather::Block | Gather::Single if inline_empty => {
            let mut k = j;
            let mut blanks = 0;
            while k < n && lines[k].text.trim().is_empty() && blanks < SKIP_BLANKS_MAX {
                k += 1;
                blanks += 1;
            }
            let max = if gather == Gather::Block {
                BLOCK_MAX_LINES
            } else {
                1
            };
            let mut taken = 0;
            prev = "";
            while k < n {
                let raw = lines[k].text.as_str();
                let t = raw.trim();
                if t.is_empty() || stops(k) {
                    break;
                }
                if soft_break(prev) {
                    append(&mut parts, t);
                } else if taken < max || lines[k].cont {
                    parts.push(t.to_string());
                    taken += 1;
                } else {
                    break;
                }
                prev = raw;
                k += 1;
            }
            if taken > 0 {
                j = k;
            }
        }
        Gather::Block | Gather::Single => {
            while j < n {
                let raw = lines[j].text.as_str();
                let t = raw.trim();
                if t.is_empty() || stops(j) {
                    break;
                }
                if lines[j].cont {
                    parts.push(t.to_string());
                } else if looks_wrapped(prev) || soft_break(prev) {
                    append(&mut parts, t);
                } else {
                    break;
                }
                prev = raw;
                j += 1;
            }
        }
    }
    (parts, j)
}

/// A line ending in one space: format=flowed (RFC 3676) marks a soft line break so, and the
/// text reaches us still flowed; long enough (over 40 characters) to have been wrapped.
fn soft_break(line: &str) -> bool {
    line.ends_with(' ') && !line.ends_with("  ") && line.chars().count() > 40
}

/// "2. …", "- …", "• …": a new item, never the continuation of the line above ("→ …" is).
fn starts_list_item(line: &str) -> bool {
    let t = line.trim_start();
    let digits = t.chars().take_while(char::is_ascii_digit).count();
    let rest = &t[digits..];
    if (1..=2).contains(&digits) {
        return rest.starts_with(['.', ')']);
    }
    digits == 0 && t.starts_with(['-', '–', '—', '•', '*', '·'])
}

/// Lines of a heading's value joined for splitting: a line ending in `,`/`;` or looking wrapped
/// continues with a space, otherwise each line is a chunk of its own (`, `).
fn join_block(parts: &[String]) -> String {
    let mut s = String::new();
    let mut last = "";
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        if !s.is_empty() {
            if s.ends_with([',', ';']) || looks_wrapped(last) {
                s.push(' ');
            } else {
                s.push_str(", ");
            }
        }
        s.push_str(p);
        last = p;
    }
    s
}

/// A line the sender's mail client may have wrapped: 55–80 characters (clients wrap at 72–78)
/// and not ending like a finished item (a digit, `.`, `!`, `»`…), but with a letter, a comma or
/// a dash. "…медицинская сестра," continues on the next line; "…, 55-12-34" does not.
fn looks_wrapped(line: &str) -> bool {
    let t = line.trim_end();
    (WRAP_MIN_CHARS..=WRAP_MAX_CHARS).contains(&t.chars().count())
        && t.chars()
            .next_back()
            .is_some_and(|c| c.is_alphabetic() || matches!(c, ',' | '-' | '–' | '—' | '«' | '('))
}

/// A one-line value: parts joined with spaces, spaces collapsed, trailing punctuation trimmed;
/// `None` for an empty value.
fn simple_value(parts: &[String], rules: &FormRules) -> Option<String> {
    let joined = collapse_spaces(&parts.join(" "));
    let t = trim_trailing_punct(&joined);
    (!rules.is_empty_value(t)).then(|| t.to_string())
}

fn multi_value(parts: &[String], rules: &FormRules) -> Option<String> {
    let mut lines: Vec<&str> = Vec::new();
    for p in parts {
        for l in p.split('\n') {
            let l = l.trim_end();
            if l.trim().is_empty() {
                if lines.last().is_some_and(|x| !x.is_empty()) {
                    lines.push("");
                }
            } else {
                lines.push(l);
            }
        }
    }
    let joined = lines.join("\n");
    let t = joined.trim();
    (!rules.is_empty_value(t)).then(|| t.to_string())
}

fn field_value(field: usize, parts: &[String], rules: &FormRules) -> Option<String> {
    match value_type(field) {
        ValueType::Multi => multi_value(parts, rules),
        ValueType::Text => simple_value(parts, rules),
        ValueType::Phone => {
            let v = simple_value(parts, rules)?;
            phone_value(&v, rules)
        }
        ValueType::Login => {
            let v = simple_value(parts, rules)?;
            login_field(&v, rules)
        }
        ValueType::Card => {
            let v = simple_value(parts, rules)?;
            card_value(&v, rules)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values: phones, logins, cards
// ---------------------------------------------------------------------------------------------

/// Normalise a Russian phone number to `+7XXXXXXXXXX`, with Sevastopol's code (8692) for a
/// 6-digit local number. `None` when `s` does not start (after any words) with a readable
/// number. An extension after the number (`доб. 123`) is ignored.
pub fn normalize_phone(s: &str) -> Option<String> {
    normalize_phone_in(s, DEFAULT_CITY_CODE)
}

/// [`normalize_phone`] with another city code for local numbers.
pub fn normalize_phone_in(s: &str, city_code: &str) -> Option<String> {
    let start = s.find(|c: char| c.is_ascii_digit() || c == '+')?;
    let run = &s[start..];
    let plus = run.starts_with('+');
    let mut digits = String::new();
    for (k, c) in run.chars().enumerate() {
        if c.is_ascii_digit() {
            digits.push(c);
            if digits.len() > 15 {
                return None;
            }
        } else if (c == '+' && k == 0)
            || matches!(
                c,
                ' ' | '\t' | '-' | '–' | '—' | '‐' | '‑' | '‒' | '(' | ')' | '.'
            )
        {
            continue;
        } else {
            break;
        }
    }
    let code: String = city_code.chars().filter(char::is_ascii_digit).collect();
    let d = digits.as_bytes();
    match d.len() {
        11 if d[0] == b'7' || (d[0] == b'8' && !plus) => Some(format!("+7{}", &digits[1..])),
        10 if !plus && (b'3'..=b'9').contains(&d[0]) => Some(format!("+7{digits}")),
        5..=7 if !plus && !code.is_empty() && d.len() + code.len() == 10 => {
            Some(format!("+7{code}{digits}"))
        }
        _ => None,
    }
}

fn digit_count(s: &str) -> usize {
    s.chars().filter(char::is_ascii_digit).count()
}

fn looks_like_phone(v: &str) -> bool {
    v.trim_start()
        .starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '(')
        && digit_count(v) >= 5
}

fn looks_like_login(v: &str) -> bool {
    let v = v.trim().trim_end_matches(['.', ',', ';']);
    !v.is_empty()
        && !v.contains(char::is_whitespace)
        && v.chars().any(|c| c.is_ascii_alphabetic())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-' | '\\'))
}

fn looks_like_card(v: &str) -> bool {
    let v = v.trim().trim_start_matches('№').trim();
    !v.is_empty()
        && !v.contains(char::is_whitespace)
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '-'))
}

/// A phone field: the first number found, normalised when possible, else the text as written;
/// `None` without any digit.
fn phone_value(v: &str, rules: &FormRules) -> Option<String> {
    if !v.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let candidate = phone_spans(&rules.fixed, v)
        .into_iter()
        .map(|(a, b)| &v[a..b])
        .find(|m| digit_count(m) >= 5);
    if let Some(c) = candidate {
        if let Some(p) = normalize_phone_in(c, &rules.city_code) {
            return Some(p);
        }
    }
    Some(v.trim().to_string())
}

/// A login field: the first word, without quotes and trailing punctuation.
fn login_value(v: &str) -> Option<String> {
    let token = v
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .find(|t| !t.is_empty())?;
    let t = token
        .trim_matches(|c: char| {
            matches!(
                c,
                '"' | '\'' | '«' | '»' | '“' | '”' | '(' | ')' | '[' | ']'
            )
        })
        .trim_end_matches(['.', ',', ';', ':']);
    (!t.is_empty()).then(|| t.to_string())
}

/// A login field: the first Latin token ("ivanova_ta", "SEV\\ivanova"); else a single word
/// as written (a Cyrillic login); else the whole value as written.
fn login_field(v: &str, rules: &FormRules) -> Option<String> {
    if let Some(m) = rules
        .fixed
        .latin_token
        .captures_iter(v)
        .filter_map(|c| c.get(1))
        .find(|m| m.as_str().trim_end_matches(['.', '-']).len() >= 2)
    {
        return login_value(m.as_str());
    }
    if v.split_whitespace().count() == 1 {
        return login_value(v);
    }
    Some(v.to_string())
}

/// A card field: the first token with a digit; `None` without one.
fn card_value(v: &str, rules: &FormRules) -> Option<String> {
    rules
        .fixed
        .card_token
        .captures_iter(v)
        .filter_map(|c| c.get(1))
        .map(|m| m.as_str().trim_end_matches(['-', '/']))
        .find(|t| t.chars().any(|c| c.is_ascii_digit()))
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// Splitting the heading lines
// ---------------------------------------------------------------------------------------------

/// Phone-like runs in `text` (byte ranges), at most `MAX_PHONES`. A dash with spaces on both
/// sides separates items ("медсестра – 55-12-34"), so a run is split there.
fn phone_spans(fx: &Fixed, text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut push = |from: usize, to: usize| {
        let piece = &text[from..to];
        let lead = piece.len()
            - piece
                .trim_start_matches([' ', '\t', '-', '–', '—', '.'])
                .len();
        let trimmed = piece.trim_end_matches([' ', '\t', '-', '–', '—', '.', '(']);
        if from + lead < from + trimmed.len()
            && trimmed[lead..].contains(|c: char| c.is_ascii_digit())
        {
            out.push((from + lead, from + trimmed.len()));
        }
    };
    for m in fx.phone.find_iter(text).take(MAX_PHONES) {
        let mut at = m.start();
        for sep in fx.spaced_sep.find_iter(m.as_str()) {
            push(at, m.start() + sep.start());
            at = m.start() + sep.end();
        }
        push(at, m.end());
    }
    out
}

/// Remove the byte ranges from `text`, putting a comma in each place (chunks stay apart).
fn cut_ranges(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    ranges.sort();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    for (a, b) in ranges {
        if a < pos || b > text.len() || a > b {
            continue;
        }
        out.push_str(text.get(pos..a).unwrap_or(""));
        out.push_str(", ");
        pos = b;
    }
    out.push_str(text.get(pos..).unwrap_or(""));
    out
}

fn chunks(text: &str) -> Vec<String> {
    text.split([',', ';', '\n'])
        .map(|c| trim_trailing_punct(&collapse_spaces(c)).to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

/// «Иванова Татьяна Александровна, медицинская сестра, ГБУЗС «Городская больница №1»,
/// +7 (8692) 55-12-34» → full name, position, organisation, phone. The phone is found first
/// (anywhere), then the name is the first chunk, the organisation starts at the first chunk with
/// a known prefix (or a quote, or "№"), and the chunks between are the position.
fn fill_applicant(fields: &mut FormFields, text: &str, rules: &FormRules) {
    let fx = &rules.fixed;
    let mut cut: Vec<(usize, usize)> = fx
        .email
        .find_iter(text)
        .map(|m| (m.start(), m.end()))
        .collect();
    let mut phone: Option<String> = None;
    for (start, end) in phone_spans(fx, text) {
        let number = &text[start..end];
        if !(6..=15).contains(&digit_count(number)) {
            continue;
        }
        let (mut start, mut end) = (start, end);
        let window = floor_char_boundary(text, start.saturating_sub(80));
        if let Some(p) = fx.phone_prefix.find(&text[window..start]) {
            start = window + p.start();
        }
        if let Some(x) = fx.phone_ext.find(&text[end..]) {
            end += x.end();
        }
        if phone.is_none() {
            phone = Some(
                normalize_phone_in(number, &rules.city_code)
                    .unwrap_or_else(|| number.trim().to_string()),
            );
        }
        cut.push((start, end));
    }
    let mut rest = cut_ranges(text, cut);
    // "Иванова Т.А. – медсестра – ГБУЗС ГБ №1 – 55-12-34": without commas, spaced dashes
    // (or slashes) separate the items.
    if !text.contains([',', ';', '\n']) {
        rest = fx.spaced_sep.replace_all(&rest, ", ").into_owned();
    }
    let mut parts: Vec<String> = Vec::new();
    for c in chunks(&rest) {
        if fx.noise_chunk.is_match(&c) {
            continue;
        }
        if let Some(caps) = fx.phone_chunk.captures(&c) {
            if phone.is_none() {
                let v = caps.get(1).map_or("", |m| m.as_str());
                phone = phone_value(v, rules);
            }
            continue;
        }
        parts.push(c);
    }

    let is_org = |c: &str| {
        rules
            .org_prefix
            .as_ref()
            .is_some_and(|r| r.is_match(&fold(c)))
    };
    let org_like = |c: &str| is_org(c) || c.contains(['«', '"', '“', '„', '№']);
    let (mut name, mut position, mut org) = (None, None, None);
    if parts.first().is_some_and(|c| is_org(c)) && parts.len() > 1 {
        // The organisation first: "ГБУЗС «…», медсестра, Иванова Т.А."
        match (1..parts.len())
            .rev()
            .find(|&k| fx.name.is_match(&parts[k]))
        {
            Some(n) => {
                name = Some(parts[n].clone());
                if n + 1 < parts.len() {
                    position = Some(parts[n + 1..].join(", "));
                    org = Some(parts[..n].join(", "));
                } else if n >= 2 {
                    position = Some(parts[n - 1].clone());
                    org = Some(parts[..n - 1].join(", "));
                } else {
                    org = Some(parts[0].clone());
                }
            }
            None => org = Some(parts.join(", ")),
        }
    } else if let Some(first) = parts.first() {
        let mut rest: Vec<String> = Vec::new();
        match fx.name_prefix.captures(first) {
            Some(c) if !fx.name.is_match(first) => {
                name = c.get(1).map(|m| m.as_str().trim().to_string());
                if let Some(p) = c.get(2) {
                    rest.push(p.as_str().trim().to_string());
                }
            }
            _ => name = Some(first.clone()),
        }
        rest.extend(parts[1..].iter().cloned());
        let org_at = rest
            .iter()
            .position(|c| is_org(c))
            .or_else(|| rest.iter().position(|c| org_like(c)));
        match org_at {
            Some(k) => {
                if k > 0 {
                    position = Some(rest[..k].join(", "));
                }
                org = Some(rest[k..].join(", "));
            }
            None if rest.len() >= 2 => {
                position = Some(rest[0].clone());
                org = Some(rest[1..].join(", "));
            }
            None => position = rest.first().cloned(),
        }
    }
    let keep = |v: Option<String>| v.filter(|s| !rules.is_empty_value(s));
    let a: &mut Applicant = &mut fields.applicant;
    set_first(&mut a.full_name, keep(name));
    set_first(&mut a.position, keep(position));
    set_first(&mut a.organization, keep(org));
    set_first(&mut a.phone, phone);
}

/// A person's name has no digits: "Сидоров С.С. 01.01.1950 г.р." → "Сидоров С.С. ".
fn before_digit(s: &str) -> &str {
    s.find(|c: char| c.is_ascii_digit()).map_or(s, |i| &s[..i])
}

/// «Петров П.П., логин petrov_pp» / «Петров Пётр Петрович, ppetrov» → full name, login.
fn fill_user(fields: &mut FormFields, text: &str, rules: &FormRules) {
    let folded = fold(text);
    let mut login: Option<String> = None;
    let mut rest = text.to_string();
    let by_keyword = rules.login_kw.as_ref().and_then(|r| r.captures(&folded));
    if let Some(c) = by_keyword {
        if let (Some(whole), Some(tok)) = (c.get(0), c.get(1)) {
            login = login_value(&text[tok.start()..tok.end()]);
            rest = cut_ranges(text, vec![(whole.start(), whole.end())]);
        }
    } else if let Some(m) = rules
        .fixed
        .latin_token
        .captures_iter(text)
        .filter_map(|c| c.get(1))
        .filter(|m| m.as_str().trim_end_matches(['.', '-']).len() >= 2)
        .last()
    {
        login = login_value(m.as_str());
        rest = cut_ranges(text, vec![(m.start(), m.end())]);
    }
    let name = rest
        .split([',', ';', '(', ')', '/', '\n'])
        .map(before_digit)
        .map(|c| {
            trim_trailing_punct(collapse_spaces(c).trim_matches(['-', '–', '—', ' ', '№', '#']))
                .to_string()
        })
        .find(|c| c.chars().any(char::is_alphabetic))
        .filter(|c| !rules.is_empty_value(c));
    set_first(&mut fields.user.full_name, name);
    set_first(&mut fields.user.login, login);
}

/// «Сидоров С.С., № карты 123456» → name, card.
fn fill_patient(fields: &mut FormFields, text: &str, rules: &FormRules) {
    let folded = fold(text);
    let mut card: Option<String> = None;
    let mut span: Option<(usize, usize)> = None;
    if let Some(r) = &rules.card_kw {
        for c in r.captures_iter(&folded) {
            if let (Some(whole), Some(tok)) = (c.get(0), c.get(1)) {
                let t = text[tok.start()..tok.end()].trim_end_matches(['-', '/']);
                if t.chars().any(|ch| ch.is_ascii_digit()) {
                    card = Some(t.to_string());
                    span = Some((whole.start(), whole.end()));
                    break;
                }
            }
        }
    }
    if card.is_none() {
        for c in rules.fixed.bare_card.captures_iter(text) {
            let (Some(whole), Some(tok)) = (c.get(0), c.get(1)) else {
                continue;
            };
            let t = tok.as_str().trim_end_matches(['-', '/']);
            let after = text[tok.end()..].trim_start();
            // "1956 г.р.", "2015г.р." are years of birth, not cards.
            let bare_year = t.trim_end_matches(['г', 'Г']);
            let year = after.starts_with(['г', 'Г'])
                || (bare_year.len() < t.len() && bare_year.chars().all(|c| c.is_ascii_digit()));
            let has_digit = t.chars().any(|c| c.is_ascii_digit());
            if has_digit && t.chars().count() >= 3 && !year {
                card = Some(t.to_string());
                span = Some((whole.start(), whole.end()));
                break;
            }
        }
    }
    let rest = match span {
        Some(s) => cut_ranges(text, vec![s]),
        None => text.to_string(),
    };
    let name = rest
        .split([',', ';', '(', ')', '\n'])
        .map(before_digit)
        .map(|c| {
            trim_trailing_punct(collapse_spaces(c).trim_matches(['-', '–', '—', ' ', '№', '#']))
                .to_string()
        })
        .find(|c| c.chars().any(char::is_alphabetic))
        .filter(|c| !rules.is_empty_value(c));
    set_first(&mut fields.patient.name, name);
    set_first(&mut fields.patient.card, card);
}

// ---------------------------------------------------------------------------------------------
// Missing fields
// ---------------------------------------------------------------------------------------------

/// Required fields absent, as dotted names in form order. A `required_one_of` group with no
/// member present contributes all its members (so neither steps nor error text → both listed).
pub fn missing_required(fields: &FormFields, rules: &FormRules) -> Vec<String> {
    let mut missing: HashSet<&str> = rules
        .required
        .iter()
        .map(String::as_str)
        .filter(|n| fields.get(n).is_none())
        .collect();
    for group in &rules.required_one_of {
        if group.iter().all(|n| fields.get(n).is_none()) {
            missing.extend(group.iter().map(String::as_str));
        }
    }
    in_form_order(&missing)
}

/// Recommended fields absent, as dotted names in form order.
pub fn missing_recommended(fields: &FormFields, rules: &FormRules) -> Vec<String> {
    let missing: HashSet<&str> = rules
        .recommended
        .iter()
        .map(String::as_str)
        .filter(|n| fields.get(n).is_none())
        .collect();
    in_form_order(&missing)
}

fn in_form_order(names: &HashSet<&str>) -> Vec<String> {
    FormFields::NAMES
        .iter()
        .filter(|n| names.contains(*n))
        .map(|n| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile() {
        FormRules::builtin().expect("rules/form.toml compiles");
    }

    #[test]
    fn label_pattern_is_flexible() {
        let p = label_pattern("№ амб. карты");
        let r = re_ci(&format!("^{p}$"), "t").unwrap();
        assert!(r.is_match("№амб.карты"));
        assert!(r.is_match("№ АМБ.  карты"));
    }

    #[test]
    fn trailing_punct_keeps_initials() {
        assert_eq!(trim_trailing_punct("Иванова Т.А."), "Иванова Т.А.");
        assert_eq!(trim_trailing_punct("медсестра.;"), "медсестра");
        assert_eq!(trim_trailing_punct("ГБУЗС «ГБ №1»."), "ГБУЗС «ГБ №1»");
    }

    #[test]
    fn join_cell_tells_wraps_from_breaks() {
        let frags = ["1. Регистратура   ", "2. Расписание     "];
        assert_eq!(
            join_cell(&frags, 18, false, true),
            "1. Регистратура\n2. Расписание"
        );
        let frags = ["Последовательнос", "ть выполняемых  ", "действий        "];
        assert_eq!(
            join_cell(&frags, 16, true, true),
            "Последовательность выполняемых действий"
        );
    }
}
