//! The working calendar (reg. 2.8, 4.6): the shipped `rules/calendar.toml`, working-time
//! arithmetic at its boundaries, and validation errors that name the key and the line.

use std::path::{Path, PathBuf};

use jiff::civil::{date, time, Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use mailintake::desk::calendar::{Calendar, ACCEPT_WITHIN};

fn shipped_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/calendar.toml")
}

fn shipped() -> Calendar {
    match Calendar::load(&shipped_path()) {
        Ok(c) => c,
        Err(e) => panic!("shipped calendar does not load: {e}"),
    }
}

/// A local wall-clock time in Sevastopol as an instant.
fn at(local: &str) -> Timestamp {
    let dt: DateTime = local.parse().unwrap();
    dt.to_zoned(TimeZone::get("Europe/Simferopol").unwrap())
        .unwrap()
        .timestamp()
}

/// The accept deadline of a mail arriving at local time `arrival`, as local `YYYY-MM-DDTHH:MM:SS`.
fn due(c: &Calendar, arrival: &str) -> String {
    c.accept_due(at(arrival))
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

// ---- the shipped calendar ----------------------------------------------------------------

#[test]
fn shipped_calendar_loads_and_covers_2026_2027() {
    let c = shipped();
    assert_eq!(c.time_zone().iana_name(), Some("Europe/Simferopol"));
    assert!(c.covers(date(2026, 1, 1)));
    assert!(c.covers(date(2027, 12, 31)));
    assert!(!c.covers(date(2025, 12, 31)));
    assert!(!c.covers(date(2028, 1, 1)));
    assert_eq!(ACCEPT_WITHIN, hours(8));
}

fn working_days_in(c: &Calendar, year: i16) -> (usize, SignedDuration) {
    let mut d = date(year, 1, 1);
    let (mut days, mut total) = (0, SignedDuration::ZERO);
    while d.year() == year {
        if let Some((s, e)) = c.hours_of(d) {
            days += 1;
            total += s.duration_until(e);
        }
        d = d.tomorrow().unwrap();
    }
    (days, total)
}

#[test]
fn production_calendar_2026_totals() {
    // Official 2026: 247 working days; 4 pre-holiday days. Our day is 9 hours (08:00–17:00).
    let c = shipped();
    let (days, total) = working_days_in(&c, 2026);
    assert_eq!(days, 247);
    assert_eq!(total, hours(247 * 9 - 4));
    // The same through working_between over the whole year.
    assert_eq!(
        c.working_between(at("2026-01-01T00:00"), at("2027-01-01T00:00")),
        hours(247 * 9 - 4)
    );
}

#[test]
fn production_calendar_2027_totals_labour_code_only() {
    // Without the 2027 transfer decree: 249 working days, 5 pre-holiday days.
    let c = shipped();
    let (days, total) = working_days_in(&c, 2027);
    assert_eq!(days, 249);
    assert_eq!(total, hours(249 * 9 - 5));
}

#[test]
fn days_off_2026() {
    let c = shipped();
    for d in [
        date(2026, 1, 1),
        date(2026, 1, 8),
        date(2026, 1, 9),
        date(2026, 1, 11),
        date(2026, 2, 23),
        date(2026, 3, 9),
        date(2026, 5, 1),
        date(2026, 5, 11),
        date(2026, 6, 12),
        date(2026, 11, 4),
        date(2026, 12, 31),
    ] {
        assert!(!c.is_working_day(d), "{d} should be a day off");
        assert_eq!(c.hours_of(d), None, "{d}");
    }
    for d in [
        date(2026, 1, 12),
        date(2026, 2, 20),
        date(2026, 3, 6),
        date(2026, 5, 12),
        date(2026, 12, 30),
    ] {
        assert!(c.is_working_day(d), "{d} should be a working day");
        assert_eq!(
            c.hours_of(d),
            Some((time(8, 0, 0, 0), time(17, 0, 0, 0))),
            "{d}"
        );
    }
    for d in [
        date(2026, 4, 30),
        date(2026, 5, 8),
        date(2026, 6, 11),
        date(2026, 11, 3),
    ] {
        assert_eq!(
            c.hours_of(d),
            Some((time(8, 0, 0, 0), time(16, 0, 0, 0))),
            "{d} is shortened"
        );
    }
}

#[test]
fn days_off_2027() {
    let c = shipped();
    for d in [
        date(2027, 1, 1),
        date(2027, 1, 8),
        date(2027, 2, 23),
        date(2027, 3, 8),
        date(2027, 5, 3),
        date(2027, 5, 10),
        date(2027, 6, 14),
        date(2027, 11, 4),
    ] {
        assert!(!c.is_working_day(d), "{d} should be a day off");
    }
    assert!(c.is_working_day(date(2027, 1, 11)));
    assert!(c.is_working_day(date(2027, 12, 31)));
    assert_eq!(c.hours_of(date(2027, 12, 31)).unwrap().1, time(16, 0, 0, 0));
}

#[test]
fn weekends_are_days_off() {
    let c = shipped();
    assert!(!c.is_working_day(date(2026, 11, 28))); // Saturday
    assert!(!c.is_working_day(date(2026, 11, 29))); // Sunday
    assert!(c.is_working_day(date(2026, 11, 30))); // Monday
    assert!(c.is_working_day(date(2026, 11, 27))); // Friday
}

#[test]
fn year_without_section_falls_back_to_weekdays() {
    let c = shipped();
    let d = date(2030, 1, 1); // Tuesday, a holiday in reality, but 2030 has no section
    assert!(!c.covers(d));
    assert!(c.is_working_day(d));
    assert!(!c.is_working_day(date(2030, 1, 5))); // Saturday
    assert_eq!(due(&c, "2030-01-04T16:00"), "2030-01-07T15:00:00");
}

// ---- deadlines ---------------------------------------------------------------------------

#[test]
fn friday_afternoon_is_due_monday() {
    let c = shipped();
    assert_eq!(due(&c, "2026-11-27T16:00"), "2026-11-30T15:00:00");
}

#[test]
fn rfc3339_rendering() {
    let c = shipped();
    let z = c.accept_due(at("2026-11-27T16:00"));
    assert_eq!(
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "2026-11-30T15:00:00+03:00"
    );
    // The same instant given in UTC renders in the calendar's zone.
    let z = c.accept_due("2026-11-27T13:00:00Z".parse().unwrap());
    assert_eq!(
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "2026-11-30T15:00:00+03:00"
    );
}

#[test]
fn weekend_arrival_counts_from_monday_morning() {
    let c = shipped();
    assert_eq!(due(&c, "2026-11-28T10:00"), "2026-11-30T16:00:00");
    assert_eq!(due(&c, "2026-11-29T23:59:59"), "2026-11-30T16:00:00");
}

#[test]
fn holiday_run_over_new_year() {
    // Wed 30 Dec 2026 14:00: 3 h that day; 31 Dec (moved day off) and 1–8 Jan 2027 are off,
    // 9–10 Jan is a weekend; Mon 11 Jan 2027 is a working day (Labour Code only, no decree
    // known) → 08:00 + 5 h.
    let c = shipped();
    assert_eq!(due(&c, "2026-12-30T14:00"), "2027-01-11T13:00:00");
    // The 2026 New Year run: Wed 31 Dec 2025 (no 2025 section: a plain weekday) 16:00 → 1 h,
    // then 1–11 Jan 2026 off → Mon 12 Jan 08:00 + 7 h.
    assert_eq!(due(&c, "2025-12-31T16:00"), "2026-01-12T15:00:00");
}

#[test]
fn shortened_day_ends_an_hour_early() {
    let c = shipped();
    // Thu 30 Apr 2026 10:00: the day ends at 16:00 → 6 h; 1–3 May off; Mon 4 May 08:00 + 2 h.
    assert_eq!(due(&c, "2026-04-30T10:00"), "2026-05-04T10:00:00");
    // 08:00 on the shortened day: exactly its 8 hours.
    assert_eq!(due(&c, "2026-04-30T08:00"), "2026-04-30T16:00:00");
    // After 16:00 on a shortened day is after hours.
    assert_eq!(due(&c, "2026-04-30T16:00"), "2026-05-04T16:00:00");
    assert_eq!(due(&c, "2026-04-30T16:30"), "2026-05-04T16:00:00");
    // Fri 8 May 2026 (before Victory Day) 15:00: 1 h; 9–11 May off; Tue 12 May 08:00 + 7 h.
    assert_eq!(due(&c, "2026-05-08T15:00"), "2026-05-12T15:00:00");
}

#[test]
fn before_and_after_hours() {
    let c = shipped();
    assert_eq!(due(&c, "2026-11-30T06:00"), "2026-11-30T16:00:00");
    assert_eq!(due(&c, "2026-11-30T00:00"), "2026-11-30T16:00:00");
    assert_eq!(due(&c, "2026-11-30T17:30"), "2026-12-01T16:00:00");
    assert_eq!(due(&c, "2026-11-30T23:59:59"), "2026-12-01T16:00:00");
}

#[test]
fn exact_boundaries() {
    let c = shipped();
    // Start of day.
    assert_eq!(due(&c, "2026-11-30T08:00"), "2026-11-30T16:00:00");
    // Exactly at day end: nothing left today.
    assert_eq!(due(&c, "2026-11-30T17:00"), "2026-12-01T16:00:00");
    // One second before day end: 1 s today, 7:59:59 tomorrow.
    assert_eq!(due(&c, "2026-11-30T16:59:59"), "2026-12-01T15:59:59");
    // 09:00 + 8 h is due exactly at day end, 17:00 the same day — not 08:00 next morning.
    assert_eq!(due(&c, "2026-11-30T09:00"), "2026-11-30T17:00:00");
    // 09:00:01 spills one second into the next morning.
    assert_eq!(due(&c, "2026-11-30T09:00:01"), "2026-12-01T08:00:01");
    // Friday 09:00 is due at Friday's end, not Monday.
    assert_eq!(due(&c, "2026-11-27T09:00"), "2026-11-27T17:00:00");
    // Sub-second precision is kept.
    let a = at("2026-11-30T16:59:59.5");
    assert_eq!(
        c.add_working(a, hours(8)).timestamp(),
        at("2026-12-01T15:59:59.5")
    );
}

#[test]
fn zero_and_negative_durations_give_the_arrival() {
    let c = shipped();
    let a = at("2026-11-28T10:00");
    assert_eq!(c.add_working(a, SignedDuration::ZERO).timestamp(), a);
    assert_eq!(c.add_working(a, -hours(3)).timestamp(), a);
}

#[test]
fn long_durations_cross_many_days() {
    let c = shipped();
    // 45 working hours = one full week of 9-hour days: Mon 08:00 → Fri 17:00.
    let a = at("2026-11-30T08:00");
    assert_eq!(
        c.add_working(a, hours(45))
            .strftime("%Y-%m-%dT%H:%M:%S")
            .to_string(),
        "2026-12-04T17:00:00"
    );
    // Across the whole of 2026: all its working time, from New Year to New Year.
    let a = at("2026-01-01T00:00");
    let z = c.add_working(a, hours(247 * 9 - 4));
    // The last working moment of 2026 is Wed 30 Dec 17:00.
    assert_eq!(z.timestamp(), at("2026-12-30T17:00"));
}

// ---- working_between ---------------------------------------------------------------------

#[test]
fn working_between_basics() {
    let c = shipped();
    assert_eq!(
        c.working_between(at("2026-11-27T16:00"), at("2026-11-30T15:00")),
        hours(8)
    );
    // A weekend counts nothing.
    assert_eq!(
        c.working_between(at("2026-11-27T17:00"), at("2026-11-30T08:00")),
        SignedDuration::ZERO
    );
    // Reversed order is negative.
    assert_eq!(
        c.working_between(at("2026-11-30T15:00"), at("2026-11-27T16:00")),
        -hours(8)
    );
    // Same instant.
    let a = at("2026-11-30T10:00");
    assert_eq!(c.working_between(a, a), SignedDuration::ZERO);
    // Within one day.
    assert_eq!(
        c.working_between(at("2026-11-30T10:00"), at("2026-11-30T10:30")),
        SignedDuration::from_mins(30)
    );
}

/// A small deterministic generator (no `rand` in the crate).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn working_between_inverts_add_working() {
    let c = shipped();
    let start = at("2025-12-01T00:00");
    let mut rng = Lcg(0x5e7a_5701);
    for _ in 0..3000 {
        // Any instant from Dec 2025 to Jan 2028 (both covered and uncovered years), to the second;
        // one in four exactly on an hour so boundaries are hit often.
        let mut secs = rng.below(790 * 86_400) as i64;
        if rng.below(4) == 0 {
            secs -= secs % 3600;
        }
        let a = start.checked_add(SignedDuration::from_secs(secs)).unwrap();
        let d = match rng.below(3) {
            0 => ACCEPT_WITHIN,
            1 => SignedDuration::from_secs(rng.below(60 * 3600) as i64 + 1),
            _ => SignedDuration::from_mins(rng.below(20 * 60) as i64 + 1),
        };
        let due = c.add_working(a, d);
        assert_eq!(
            c.working_between(a, due.timestamp()),
            d,
            "arrival {a}, duration {d:?}, due {due}"
        );
        // The deadline is the earliest such instant: one nanosecond earlier is not enough.
        let before = due
            .timestamp()
            .checked_sub(SignedDuration::from_nanos(1))
            .unwrap();
        assert!(c.working_between(a, before) < d, "arrival {a}, due {due}");
        // And it lies in working hours (a deadline is never on a day off).
        let local = due.datetime();
        let (s, e) = c
            .hours_of(local.date())
            .unwrap_or_else(|| panic!("due {due} on a day off"));
        assert!(
            local.time() > s && local.time() <= e,
            "due {due} outside hours"
        );
    }
}

#[test]
fn working_between_is_additive() {
    let c = shipped();
    let mut rng = Lcg(42);
    let start = at("2026-01-01T00:00");
    for _ in 0..500 {
        let mut t: Vec<Timestamp> = (0..3)
            .map(|_| {
                start
                    .checked_add(SignedDuration::from_secs(rng.below(400 * 86_400) as i64))
                    .unwrap()
            })
            .collect();
        t.sort();
        assert_eq!(
            c.working_between(t[0], t[1]) + c.working_between(t[1], t[2]),
            c.working_between(t[0], t[2])
        );
    }
}

// ---- custom calendars --------------------------------------------------------------------

const BASE: &str = r#"
time_zone = "Europe/Simferopol"
working_days = ["mon", "tue", "wed", "thu", "fri"]
day_start = "08:00"
day_end = "17:00"
shortened_by_minutes = 60
"#;

fn custom(extra: &str) -> Calendar {
    let text = format!("{BASE}{extra}");
    match Calendar::from_toml(&text) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{text}"),
    }
}

#[test]
fn transferred_working_saturday() {
    // Sat 31 Oct 2026 made a working day, Mon 2 Nov off, Tue 3 Nov shortened.
    let c = custom(
        r#"
[year.2026]
holidays = ["2026-11-02", "2026-11-04"]
working_weekends = ["2026-10-31"]
shortened = ["2026-11-03"]
"#,
    );
    let sat = date(2026, 10, 31);
    assert!(c.is_working_day(sat));
    assert_eq!(c.hours_of(sat), Some((time(8, 0, 0, 0), time(17, 0, 0, 0))));
    assert!(!c.is_working_day(date(2026, 11, 1)));
    // Fri 16:00: 1 h Friday, 7 h on the working Saturday.
    assert_eq!(due(&c, "2026-10-30T16:00"), "2026-10-31T15:00:00");
    // Saturday 12:00: 5 h Saturday; Sun and Mon off; Tue (shortened, to 16:00) 08:00 + 3 h.
    assert_eq!(due(&c, "2026-10-31T12:00"), "2026-11-03T11:00:00");
    // Saturday 15:00: 2 h; Tue (to 16:00) 08:00 + 6 h.
    assert_eq!(due(&c, "2026-10-31T15:00"), "2026-11-03T14:00:00");
    // Tue 15:00: 1 h to 16:00; Wed 4 Nov off; Thu 08:00 + 7 h.
    assert_eq!(due(&c, "2026-11-03T15:00"), "2026-11-05T15:00:00");
}

#[test]
fn shortened_working_saturday_and_bare_toml_dates() {
    let c = custom(
        r#"
[year.2026]
holidays = [2026-11-02]
working_weekends = [2026-10-31]
shortened = [2026-10-31]
"#,
    );
    assert_eq!(
        c.hours_of(date(2026, 10, 31)),
        Some((time(8, 0, 0, 0), time(16, 0, 0, 0)))
    );
    assert!(!c.is_working_day(date(2026, 11, 2)));
}

#[test]
fn a_section_may_be_empty() {
    let c = custom("[year.2031]\n");
    assert!(c.covers(date(2031, 6, 1)));
    assert!(c.is_working_day(date(2031, 1, 1))); // Wednesday, nothing listed
}

#[test]
fn other_hours_and_week() {
    let text = r#"
time_zone = "Europe/Moscow"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat"]
day_start = "09:30"
day_end = "18:15:00"
shortened_by_minutes = 0
"#;
    let c = Calendar::from_toml(text).unwrap();
    let z = c.accept_due(at("2026-11-28T18:00")); // Saturday is a working day here
    assert_eq!(
        z.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        "2026-11-30T17:15:00"
    );
}

#[test]
fn daylight_saving_is_real_time() {
    // Europe/Berlin springs forward at 02:00 on Sun 29 Mar 2026: a 01:00–05:00 day is 3 real
    // hours long. Simferopol has no DST; this checks the arithmetic is done in real time.
    let text = r#"
time_zone = "Europe/Berlin"
working_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
day_start = "01:00"
day_end = "05:00"
shortened_by_minutes = 0
"#;
    let c = Calendar::from_toml(text).unwrap();
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let local = |s: &str| {
        s.parse::<DateTime>()
            .unwrap()
            .to_zoned(berlin.clone())
            .unwrap()
            .timestamp()
    };
    assert_eq!(
        c.working_between(local("2026-03-29T00:00"), local("2026-03-30T00:00")),
        hours(3)
    );
    assert_eq!(
        c.working_between(local("2026-10-25T00:00"), local("2026-10-26T00:00")),
        hours(5)
    );
    let z = c.add_working(local("2026-03-29T01:00"), hours(2));
    assert_eq!(
        z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "2026-03-29T04:00:00+02:00"
    );
}

// ---- validation --------------------------------------------------------------------------

/// The error of `text`, checked to name `key` and line `line`.
fn error_of(text: &str, key: &str, line: usize) -> String {
    let e = match Calendar::from_toml(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    };
    assert!(
        e.contains(&format!("key `{key}`")),
        "error does not name `{key}`: {e}"
    );
    assert!(
        e.starts_with(&format!("calendar.toml:{line}:")),
        "error not at line {line}: {e}"
    );
    e
}

#[test]
fn date_listed_twice() {
    let text = format!(
        "{BASE}[year.2026]\nholidays = [\n  \"2026-01-01\",\n  \"2026-01-02\",\n  \"2026-01-01\",\n]\n"
    );
    // BASE is 6 lines (a leading empty one); [year.2026] is line 7; the repeat is on line 11.
    let e = error_of(&text, "year.2026.holidays", 11);
    assert!(e.contains("listed twice"), "{e}");
}

#[test]
fn holiday_that_is_also_a_working_weekend() {
    let text = format!(
        "{BASE}[year.2026]\nholidays = [\"2026-10-31\"]\nworking_weekends = [\"2026-10-31\"]\n"
    );
    let e = error_of(&text, "year.2026.working_weekends", 9);
    assert!(e.contains("also listed in holidays"), "{e}");
}

#[test]
fn date_outside_its_section() {
    let text = format!(
        "{BASE}[year.2026]\nholidays = [\"2026-01-01\"]\n\n[year.2027]\nholidays = [\"2027-01-01\",\n  \"2026-05-01\"]\n"
    );
    let e = error_of(&text, "year.2027.holidays", 12);
    assert!(e.contains("outside its section"), "{e}");
}

#[test]
fn second_section_errors_point_into_that_section() {
    // The same list name exists in both sections; the line must be the 2027 one.
    let text = format!(
        "{BASE}[year.2026]\nshortened = [\"2026-04-30\"]\n[year.2027]\nshortened = [\"2027-05-01\"]\n"
    );
    let e = error_of(&text, "year.2027.shortened", 10);
    assert!(e.contains("not a working day"), "{e}");
}

#[test]
fn shortened_holiday_is_refused() {
    let text =
        format!("{BASE}[year.2026]\nholidays = [\"2026-05-01\"]\nshortened = [\"2026-05-01\"]\n");
    let e = error_of(&text, "year.2026.shortened", 9);
    assert!(e.contains("also listed in holidays"), "{e}");
}

#[test]
fn working_weekend_on_a_weekday_is_refused() {
    let text = format!("{BASE}[year.2026]\nworking_weekends = [\"2026-11-30\"]\n");
    let e = error_of(&text, "year.2026.working_weekends", 8);
    assert!(e.contains("working day anyway"), "{e}");
}

#[test]
fn invalid_dates_are_refused() {
    for bad in [
        "2026-02-30",
        "2026-1-5",
        "05.01.2026",
        "",
        "2026-01-01T08:00",
    ] {
        let text = format!("{BASE}[year.2026]\nholidays = [\"{bad}\"]\n");
        error_of(&text, "year.2026.holidays", 8);
    }
    let text = format!("{BASE}[year.2026]\nholidays = [5]\n");
    error_of(&text, "year.2026.holidays", 8);
}

#[test]
fn bad_section_name() {
    let text = format!("{BASE}[year.26]\nholidays = []\n");
    let e = error_of(&text, "year.26", 7);
    assert!(e.contains("not a year"), "{e}");
}

#[test]
fn unknown_weekday_name() {
    let text = BASE.replace("\"fri\"]", "\"fri\", \"sbt\"]");
    let e = error_of(&text, "working_days", 3);
    assert!(e.contains("sbt"), "{e}");
    let text = BASE.replace("\"fri\"]", "\"fri\", \"mon\"]");
    error_of(&text, "working_days", 3);
    let text = BASE.replace(r#"["mon", "tue", "wed", "thu", "fri"]"#, "[]");
    error_of(&text, "working_days", 3);
}

#[test]
fn day_end_not_after_day_start() {
    let text = BASE.replace("\"17:00\"", "\"08:00\"");
    let e = error_of(&text, "day_end", 5);
    assert!(e.contains("not after day_start"), "{e}");
    let text = BASE.replace("\"17:00\"", "\"07:00\"");
    error_of(&text, "day_end", 5);
    let text = BASE.replace("\"17:00\"", "\"25:00\"");
    error_of(&text, "day_end", 5);
    let text = BASE.replace("\"08:00\"", "\"8 am\"");
    error_of(&text, "day_start", 4);
}

#[test]
fn shortening_longer_than_the_day() {
    let text = BASE.replace("= 60", "= 540");
    error_of(&text, "shortened_by_minutes", 6);
}

#[test]
fn unknown_time_zone() {
    for tz in ["Europe/Sevastopol", "+03:00", "MSK+3", ""] {
        let text = BASE.replace("Europe/Simferopol", tz);
        let e = error_of(&text, "time_zone", 2);
        assert!(e.contains("time zone") || e.contains("empty"), "{e}");
    }
}

#[test]
fn unknown_and_missing_keys() {
    let text = format!("{BASE}lunch = \"12:00\"\n");
    let e = Calendar::from_toml(&text).unwrap_err();
    assert!(e.contains("lunch"), "{e}");
    let text = format!("{BASE}[year.2026]\nholiday = []\n");
    let e = Calendar::from_toml(&text).unwrap_err();
    assert!(e.contains("holiday"), "{e}");
    let text = BASE.replace("day_end = \"17:00\"\n", "");
    let e = Calendar::from_toml(&text).unwrap_err();
    assert!(e.contains("day_end"), "{e}");
}

#[test]
fn load_reports_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calendar.toml");
    let text = std::fs::read_to_string(shipped_path())
        .unwrap()
        .replace("\"2027-06-14\",", "\"2027-06-14\", \"2027-06-12\",");
    std::fs::write(&path, &text).unwrap();
    let e = Calendar::load(&path).unwrap_err();
    assert_eq!(e.file, path);
    assert_eq!(e.key.as_deref(), Some("year.2027.holidays"));
    let expected = text
        .lines()
        .position(|l| l.contains("\"2027-06-14\", \"2027-06-12\""))
        .map(|i| i + 1);
    assert_eq!(e.line, expected, "{e}");
    assert!(e.message.contains("listed twice"), "{e}");

    let missing = Calendar::load(&dir.path().join("nope.toml")).unwrap_err();
    assert!(missing.message.contains("cannot read"), "{missing}");
}

#[test]
fn dates_of_the_shipped_file_are_in_order() {
    // Not a rule, but keeps the file readable: each list is sorted.
    let text = std::fs::read_to_string(shipped_path()).unwrap();
    let mut last: Option<(String, Date)> = None;
    for line in text.lines() {
        let code = line.split('#').next().unwrap();
        if code.contains('=') || code.trim_start().starts_with('[') {
            last = None;
        }
        for part in code.split('"').skip(1).step_by(2) {
            if let Ok(d) = part.parse::<Date>() {
                if let Some((prev, p)) = &last {
                    assert!(d > *p, "{part} after {prev} in the shipped calendar");
                }
                last = Some((part.to_string(), d));
            }
        }
    }
}
