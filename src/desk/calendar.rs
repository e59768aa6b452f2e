//! The support desk's working calendar (`rules/calendar.toml`): which days are working days, the
//! working hours of each, and working-time arithmetic on it — reg. 4.6: the 1st line accepts a
//! ticket within 8 *working* hours of its arrival; reg. 2.8: Monday to Friday, 08:00–17:00,
//! except weekends and public holidays.
//!
//! Pure: no I/O besides [`Calendar::load`], no clock. All date arithmetic and the time zone
//! conversion go through jiff with its bundled tz database.
//!
//! Working time is the union of the working periods `[day_start, day_end)` of working days (a
//! pre-holiday day ends `shortened_by_minutes` earlier), taken in the calendar's time zone. Time
//! outside them does not count: a mail that arrives after hours counts from the start of the
//! next working period. A deadline is the *earliest* instant by which the working time has
//! elapsed, so 8 hours from 09:00 on a full day are due at 17:00 the same day, not at 08:00 the
//! next morning.
//!
//! A year without a `[year.YYYY]` section is not covered ([`Calendar::covers`]): its days fall
//! back to `working_days` with no holidays (the daemon warns once).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};
use serde::Deserialize;

use crate::verdict::rules::{RuleError, RuleFile};

/// Reg. 4.6: a ticket is accepted within this much working time of its arrival.
pub const ACCEPT_WITHIN: SignedDuration = SignedDuration::from_hours(8);

/// No arithmetic scans more days than this (ten years), whatever the calendar says.
const MAX_SCAN_DAYS: usize = 3660;

/// Weekday names of `working_days`, Monday first.
const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

// ---- the file ----------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    time_zone: String,
    working_days: Vec<String>,
    day_start: String,
    day_end: String,
    shortened_by_minutes: u32,
    #[serde(default)]
    year: BTreeMap<String, RawYear>,
}

/// Dates are kept as TOML values so both `"2026-01-01"` and a bare TOML date are accepted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    #[serde(default)]
    holidays: Vec<toml::Value>,
    #[serde(default)]
    working_weekends: Vec<toml::Value>,
    #[serde(default)]
    shortened: Vec<toml::Value>,
}

/// One year's exceptions to the weekly pattern.
#[derive(Debug, Clone, Default)]
struct Year {
    holidays: BTreeSet<Date>,
    working_weekends: BTreeSet<Date>,
    shortened: BTreeSet<Date>,
}

/// The compiled, validated working calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    /// Indexed by `Weekday::to_monday_zero_offset`.
    working_days: [bool; 7],
    day_start: Time,
    day_end: Time,
    /// `day_end` of a pre-holiday day; always after `day_start`.
    shortened_end: Time,
    years: BTreeMap<i16, Year>,
}

impl Calendar {
    /// Read and validate `calendar.toml`; an error names the file, the line and the key.
    pub fn load(path: &Path) -> Result<Calendar, RuleError> {
        let file = RuleFile::read(path)?;
        Calendar::compile(&file)
    }

    /// Validate calendar text (for tests); the error is rendered as `load` would report it.
    pub fn from_toml(text: &str) -> Result<Calendar, String> {
        let file = RuleFile {
            path: PathBuf::from("calendar.toml"),
            text: text.to_string(),
        };
        Calendar::compile(&file).map_err(|e| e.to_string())
    }

    fn compile(file: &RuleFile) -> Result<Calendar, RuleError> {
        let raw = file.parse::<RawCalendar>()?;

        let name = raw.time_zone.trim();
        if name.is_empty() {
            return Err(file.error(
                "time_zone",
                "is empty; name an IANA time zone such as \"Europe/Simferopol\"",
            ));
        }
        let tz = TimeZone::get(name).map_err(|_| {
            file.error(
                "time_zone",
                format!(
                    "`{name}` is not in the bundled tz database; name an IANA time zone such as \"Europe/Simferopol\" (fixed offsets are not accepted)"
                ),
            )
        })?;

        let mut working_days = [false; 7];
        if raw.working_days.is_empty() {
            return Err(file.error("working_days", "is empty; list at least one weekday"));
        }
        for day in &raw.working_days {
            let key = day.trim().to_ascii_lowercase();
            let Some(i) = WEEKDAY_NAMES.iter().position(|n| *n == key) else {
                return Err(file.error(
                    "working_days",
                    format!(
                        "unknown weekday name `{day}`; use {}",
                        WEEKDAY_NAMES.join(", ")
                    ),
                ));
            };
            if working_days[i] {
                return Err(file.error("working_days", format!("`{day}` is listed twice")));
            }
            working_days[i] = true;
        }

        let day_start = parse_time(&raw.day_start).map_err(|m| file.error("day_start", m))?;
        let day_end = parse_time(&raw.day_end).map_err(|m| file.error("day_end", m))?;
        if day_end <= day_start {
            return Err(file.error(
                "day_end",
                format!(
                    "{} is not after day_start {}",
                    raw.day_end.trim(),
                    raw.day_start.trim()
                ),
            ));
        }
        let length = day_start.duration_until(day_end);
        let cut = SignedDuration::from_mins(i64::from(raw.shortened_by_minutes));
        if cut >= length {
            return Err(file.error(
                "shortened_by_minutes",
                format!(
                    "{} minutes would leave nothing of the {}-minute day {}–{}",
                    raw.shortened_by_minutes,
                    length.as_secs() / 60,
                    raw.day_start.trim(),
                    raw.day_end.trim()
                ),
            ));
        }
        let shortened_end = day_end.checked_sub(cut).map_err(|e| {
            file.error(
                "shortened_by_minutes",
                format!("cannot shorten {day_end}: {e}"),
            )
        })?;

        let mut years = BTreeMap::new();
        for (key, raw_year) in &raw.year {
            let year = parse_year(key).ok_or_else(|| {
                let mut err = file.error(
                    &format!("year.{key}"),
                    format!("`{key}` is not a year; name the section [year.YYYY]"),
                );
                err.line = section_line(&file.text, key).map(|i| i + 1).or(err.line);
                err
            })?;
            years.insert(
                year,
                compile_year(file, key, year, raw_year, &working_days)?,
            );
        }

        Ok(Calendar {
            tz,
            working_days,
            day_start,
            day_end,
            shortened_end,
            years,
        })
    }

    /// The zone the working hours are in; deadlines are rendered in it.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether the year of `d` has a `[year.YYYY]` section. Outside, days fall back to
    /// `working_days` without holidays.
    pub fn covers(&self, d: Date) -> bool {
        self.years.contains_key(&d.year())
    }

    /// A working day: a listed weekday that is not a holiday, or a transferred working weekend.
    pub fn is_working_day(&self, d: Date) -> bool {
        let weekly = self.working_days[weekday_index(d.weekday())];
        match self.years.get(&d.year()) {
            Some(y) if y.working_weekends.contains(&d) => true,
            Some(y) if y.holidays.contains(&d) => false,
            _ => weekly,
        }
    }

    /// Working hours of `d` as local times `(start, end)`; `None` on a day off. A pre-holiday
    /// day ends `shortened_by_minutes` earlier.
    pub fn hours_of(&self, d: Date) -> Option<(Time, Time)> {
        if !self.is_working_day(d) {
            return None;
        }
        let shortened = self
            .years
            .get(&d.year())
            .is_some_and(|y| y.shortened.contains(&d));
        let end = if shortened {
            self.shortened_end
        } else {
            self.day_end
        };
        Some((self.day_start, end))
    }

    /// `arrival` plus `working` working time, in the calendar's zone: the earliest instant by
    /// which that much working time has elapsed since `arrival`. Arrival outside working hours
    /// counts from the start of the next working period; a deadline that falls exactly at the
    /// end of a working day is that end, not the next morning. A zero or negative `working`
    /// gives `arrival` itself.
    pub fn add_working(&self, arrival: Timestamp, working: SignedDuration) -> Zoned {
        self.zoned(self.add_working_ts(arrival, working))
    }

    /// Working time elapsed between two instants (negative when `to` is before `from`). Spans
    /// longer than ten years count only their first ten years.
    pub fn working_between(&self, from: Timestamp, to: Timestamp) -> SignedDuration {
        if to < from {
            let forward = self.working_between(to, from);
            return forward.checked_neg().unwrap_or(SignedDuration::MIN);
        }
        let last = self.tz.to_datetime(to).date();
        let mut date = self.tz.to_datetime(from).date();
        let mut total = SignedDuration::ZERO;
        for _ in 0..MAX_SCAN_DAYS {
            if date > last {
                break;
            }
            if let Some((start, end)) = self.period(date) {
                let a = start.max(from);
                let b = end.min(to);
                if a < b {
                    total = total.saturating_add(a.duration_until(b));
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        total
    }

    /// Reg. 4.6: when a ticket that arrived at `arrival` must be accepted — 8 working hours on.
    pub fn accept_due(&self, arrival: Timestamp) -> Zoned {
        self.add_working(arrival, ACCEPT_WITHIN)
    }

    fn add_working_ts(&self, arrival: Timestamp, working: SignedDuration) -> Timestamp {
        if working <= SignedDuration::ZERO {
            return arrival;
        }
        let mut remaining = working;
        let mut date = self.tz.to_datetime(arrival).date();
        for _ in 0..MAX_SCAN_DAYS {
            if let Some((start, end)) = self.period(date) {
                if arrival < end {
                    let from = start.max(arrival);
                    let available = from.duration_until(end);
                    if remaining <= available {
                        return from.checked_add(remaining).unwrap_or(end);
                    }
                    remaining = remaining
                        .checked_sub(available)
                        .unwrap_or(SignedDuration::ZERO);
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        // Ten years without enough working time: only a calendar of nothing but holidays gets
        // here. Give the end of the scanned range rather than a made-up deadline.
        self.tz
            .to_ambiguous_timestamp(date.to_datetime(Time::midnight()))
            .compatible()
            .unwrap_or(arrival)
    }

    /// The working period of `d` as instants, if `d` is a working day.
    fn period(&self, d: Date) -> Option<(Timestamp, Timestamp)> {
        let (start, end) = self.hours_of(d)?;
        let start = self
            .tz
            .to_ambiguous_timestamp(d.to_datetime(start))
            .compatible()
            .ok()?;
        let end = self
            .tz
            .to_ambiguous_timestamp(d.to_datetime(end))
            .compatible()
            .ok()?;
        (start < end).then_some((start, end))
    }

    fn zoned(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.tz.clone())
    }
}

fn weekday_index(w: Weekday) -> usize {
    usize::try_from(w.to_monday_zero_offset()).unwrap_or(0)
}

fn weekday_name(w: Weekday) -> &'static str {
    WEEKDAY_NAMES[weekday_index(w) % 7]
}

/// `HH:MM` or `HH:MM:SS`.
fn parse_time(text: &str) -> Result<Time, String> {
    let t = text.trim();
    let shape_ok = matches!(t.len(), 5 | 8)
        && t.bytes().enumerate().all(|(i, b)| {
            if i % 3 == 2 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(format!("`{text}` is not a time of day HH:MM"));
    }
    t.parse::<Time>()
        .map_err(|e| format!("`{text}` is not a time of day HH:MM: {e}"))
}

/// A section name `YYYY`.
fn parse_year(key: &str) -> Option<i16> {
    if key.len() != 4 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<i16>().ok().filter(|y| *y >= 1000)
}

/// `YYYY-MM-DD`, quoted or a bare TOML local date.
fn parse_date(value: &toml::Value) -> Result<(Date, String), String> {
    let text = match value {
        toml::Value::String(s) => s.trim().to_string(),
        toml::Value::Datetime(dt) if dt.time.is_none() && dt.offset.is_none() => dt.to_string(),
        other => return Err(format!("`{other}` is not a date; write \"YYYY-MM-DD\"")),
    };
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return Err(format!("`{text}` is not a date; write \"YYYY-MM-DD\""));
    }
    let date = text
        .parse::<Date>()
        .map_err(|e| format!("`{text}` is not a valid date: {e}"))?;
    Ok((date, text))
}

fn compile_year(
    file: &RuleFile,
    section: &str,
    year: i16,
    raw: &RawYear,
    working_days: &[bool; 7],
) -> Result<Year, RuleError> {
    let lists: [(&str, &[toml::Value]); 3] = [
        ("holidays", &raw.holidays),
        ("working_weekends", &raw.working_weekends),
        ("shortened", &raw.shortened),
    ];
    let mut parsed: [Vec<(Date, String, usize)>; 3] = Default::default();
    for (slot, (list, values)) in parsed.iter_mut().zip(lists) {
        let err = |text: &str, nth: usize, message: String| {
            date_error(file, section, list, text, nth, message)
        };
        for value in values {
            let (date, text) = parse_date(value).map_err(|m| {
                let shown = match value {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                err(&shown, 0, m)
            })?;
            // Which occurrence of this text in the list, to point at the right line.
            let nth = slot.iter().filter(|(_, t, _)| *t == text).count();
            if date.year() != year {
                return Err(err(
                    &text,
                    nth,
                    format!("{text} is outside its section [year.{section}]"),
                ));
            }
            if slot.iter().any(|(d, _, _)| *d == date) {
                return Err(err(&text, nth, format!("{text} is listed twice")));
            }
            slot.push((date, text, nth));
        }
    }
    let [holidays, working_weekends, shortened] = parsed;
    let at = |list: &str, text: &str, nth: usize, message: String| {
        date_error(file, section, list, text, nth, message)
    };
    let is_holiday = |d: &Date| holidays.iter().any(|(h, _, _)| h == d);
    let is_working_weekend = |d: &Date| working_weekends.iter().any(|(w, _, _)| w == d);

    for (date, text, nth) in &working_weekends {
        if is_holiday(date) {
            return Err(at(
                "working_weekends",
                text,
                *nth,
                format!("{text} is also listed in holidays"),
            ));
        }
        if working_days[weekday_index(date.weekday())] {
            return Err(at(
                "working_weekends",
                text,
                *nth,
                format!(
                    "{text} ({}) is a working day anyway; list only weekends made working",
                    weekday_name(date.weekday())
                ),
            ));
        }
    }
    for (date, text, nth) in &shortened {
        if is_holiday(date) {
            return Err(at(
                "shortened",
                text,
                *nth,
                format!("{text} is also listed in holidays; a shortened day is a working day"),
            ));
        }
        if !working_days[weekday_index(date.weekday())] && !is_working_weekend(date) {
            return Err(at(
                "shortened",
                text,
                *nth,
                format!(
                    "{text} ({}) is not a working day; list it in working_weekends too if it is one",
                    weekday_name(date.weekday())
                ),
            ));
        }
    }

    let set = |v: &[(Date, String, usize)]| v.iter().map(|(d, _, _)| *d).collect();
    Ok(Year {
        holidays: set(&holidays),
        working_weekends: set(&working_weekends),
        shortened: set(&shortened),
    })
}

// ---- finding lines for error messages ----------------------------------------------------

/// An error about the `nth` occurrence of the date `text` in `list` of `[year.<section>]`.
fn date_error(
    file: &RuleFile,
    section: &str,
    list: &str,
    text: &str,
    nth: usize,
    message: String,
) -> RuleError {
    let mut e = file.error(&format!("year.{section}.{list}"), message);
    e.line = locate(&file.text, section, list, text, nth);
    e
}

/// The code part of a line: comments dropped (dates and keys never hold `#`).
fn code(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

/// Index of the line `[year.<section>]` (spaces and quotes around the parts allowed).
fn section_line(text: &str, section: &str) -> Option<usize> {
    text.lines().position(|l| {
        let c = code(l);
        if !c.starts_with('[') || c.starts_with("[[") || !c.ends_with(']') {
            return false;
        }
        let inner: String = c[1..c.len() - 1]
            .chars()
            .filter(|ch| !ch.is_whitespace() && *ch != '"' && *ch != '\'')
            .collect();
        inner == format!("year.{section}")
    })
}

/// Whether a code line assigns a key (`name = …`), and which.
fn key_of(code: &str) -> Option<&str> {
    let (k, _) = code.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(k)
}

/// The line (1-based) of the `nth` occurrence of `value` in `list` of `[year.<section>]`;
/// failing that the key's line, failing that the section's line.
fn locate(text: &str, section: &str, list: &str, value: &str, nth: usize) -> Option<usize> {
    let header = section_line(text, section)?;
    let mut key_line = None;
    let mut seen = 0;
    for (i, line) in text.lines().enumerate().skip(header + 1) {
        let c = code(line);
        if c.starts_with('[') && !c.contains('=') {
            break; // the next section
        }
        if let Some(k) = key_of(c) {
            if key_line.is_some() {
                break; // the next key
            }
            if k == list {
                key_line = Some(i);
            }
        }
        if key_line.is_some() && !value.is_empty() {
            let found = c.matches(value).count();
            if seen + found > nth {
                return Some(i + 1);
            }
            seen += found;
        }
    }
    Some(key_line.unwrap_or(header) + 1)
}
