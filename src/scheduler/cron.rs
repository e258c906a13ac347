//! Cron expressions as people write them, on top of the `cron` crate.
//!
//! Owns the translation: the standard 5-field form gets a `0` seconds field;
//! 6- and 7-field forms (with seconds, and a year) pass through. Numeric
//! weekdays keep their crontab meaning (0 or 7 = Sunday, 1 = Monday), while
//! the crate counts Sunday as 1, so numbers in the weekday field become
//! names. Times are computed on the schedule's own wall clock (an IANA zone,
//! UTC by default) and returned in UTC, so DST changes behave as cron does:
//! a wall time that does not exist that day is skipped, and one that occurs
//! twice fires once. Running tasks is not here.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    schedule: cron::Schedule,
    tz: Tz,
}

impl CronExpr {
    /// Parse `expr` (5, 6 or 7 fields) on the wall clock of `tz` (IANA name).
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<CronExpr, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let mut fields: Vec<String> = match fields.len() {
            5 => std::iter::once("0").chain(fields).map(str::to_string).collect(),
            6 | 7 => fields.into_iter().map(str::to_string).collect(),
            n => {
                return Err(format!(
                    "`{expr}` has {n} fields; cron takes 5 (min hour day month weekday), or 6-7 with seconds first"
                ))
            }
        };
        fields[5] = weekdays(&fields[5]).map_err(|e| format!("`{expr}`: weekday field: {e}"))?;
        let schedule = cron::Schedule::from_str(&fields.join(" ")).map_err(|e| format!("`{expr}`: {e}"))?;
        let tz = match tz {
            None => Tz::UTC,
            Some(name) => name
                .parse::<Tz>()
                .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Berlin)"))?,
        };
        Ok(CronExpr {
            text: expr.to_string(),
            schedule,
            tz,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The crate walks local wall times; a wall time that falls in a DST
        // gap has no instant and is skipped, an ambiguous one takes its first.
        let local = t.with_timezone(&self.tz);
        for cand in self.schedule.after(&local).take(1000) {
            let naive: NaiveDateTime = cand.naive_local();
            let at = match self.tz.from_local_datetime(&naive) {
                LocalResult::Single(x) => x,
                LocalResult::Ambiguous(first, second) => {
                    // The second occurrence of a repeated hour is the same
                    // wall time again: cron runs it once, at the first.
                    if cand == second && first.with_timezone(&Utc) <= t {
                        continue;
                    }
                    first
                }
                LocalResult::None => continue,
            };
            let at = at.with_timezone(&Utc);
            if at > t {
                return Some(at);
            }
        }
        None
    }
}

/// Weekday field with crontab numbers (0-7, Sunday = 0 or 7) as names.
fn weekdays(field: &str) -> Result<String, String> {
    let num = |s: &str| -> Result<Option<usize>, String> {
        if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
            let n: usize = s.parse().map_err(|_| format!("bad number `{s}`"))?;
            if n > 7 {
                return Err(format!("{n} is not a weekday (0-7, 0 and 7 are Sunday)"));
            }
            Ok(Some(n))
        } else {
            Ok(None)
        }
    };
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (
                r,
                Some(s.parse::<usize>().map_err(|_| format!("bad step in `{item}`"))?),
            ),
            None => (item, None),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (a, Some(b)),
            None => (range, None),
        };
        let numeric = match (num(lo)?, hi.map(num).transpose()?.flatten()) {
            (Some(a), Some(b)) => Some((a, b)),
            (Some(a), None) if hi.is_none() => Some((a, if step.is_some() { 6 } else { a })),
            _ if range == "*" && step.is_some() => Some((0, 6)),
            _ => None,
        };
        match numeric {
            Some((a, b)) => {
                if a > b {
                    return Err(format!("range `{range}` runs backwards"));
                }
                let mut names: Vec<&str> = (a..=b).step_by(step.unwrap_or(1).max(1)).map(|d| DAYS[d % 7]).collect();
                names.dedup();
                out.extend(names.into_iter().map(str::to_string));
            }
            // Names (MON-FRI), `*` and `?` mean the same to both.
            None => out.push(item.to_ascii_uppercase()),
        }
    }
    out.dedup();
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike, Weekday};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn runs(e: &CronExpr, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let mut t = utc(from);
        let mut out = Vec::new();
        for _ in 0..n {
            t = e.next_after(t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn five_and_six_field_forms() {
        let five = CronExpr::parse("*/15 * * * *", None).unwrap();
        assert_eq!(
            runs(&five, "2024-01-01T00:07:00Z", 2),
            vec![utc("2024-01-01T00:15:00Z"), utc("2024-01-01T00:30:00Z")]
        );
        let six = CronExpr::parse("*/10 * * * * *", None).unwrap();
        assert_eq!(
            runs(&six, "2024-01-01T00:00:05Z", 2),
            vec![utc("2024-01-01T00:00:10Z"), utc("2024-01-01T00:00:20Z")]
        );
        assert!(CronExpr::parse("* * *", None).unwrap_err().contains("3 fields"));
        assert!(CronExpr::parse("0 0 * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn weekday_numbers_keep_their_crontab_meaning() {
        // 2024-01-03 is a Wednesday.
        let mon = CronExpr::parse("0 9 * * 1", None).unwrap();
        assert_eq!(runs(&mon, "2024-01-03T00:00:00Z", 1)[0].weekday(), Weekday::Mon);
        for sunday in ["0 9 * * 0", "0 9 * * 7", "0 9 * * SUN"] {
            let e = CronExpr::parse(sunday, None).unwrap();
            assert_eq!(
                runs(&e, "2024-01-03T00:00:00Z", 1)[0].weekday(),
                Weekday::Sun,
                "{sunday}"
            );
        }
        let weekdays = CronExpr::parse("0 9 * * 1-5", None).unwrap();
        let days: Vec<Weekday> = runs(&weekdays, "2024-01-05T10:00:00Z", 5)
            .iter()
            .map(|d| d.weekday())
            .collect();
        assert_eq!(
            days,
            vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]
        );
        let weekend = CronExpr::parse("0 9 * * 6,0", None).unwrap();
        let days: Vec<Weekday> = runs(&weekend, "2024-01-03T00:00:00Z", 2)
            .iter()
            .map(|d| d.weekday())
            .collect();
        assert_eq!(days, vec![Weekday::Sat, Weekday::Sun]);
        assert!(CronExpr::parse("0 9 * * 8", None).is_err());
    }

    #[test]
    fn berlin_spring_forward_skips_the_missing_hour() {
        // 2024-03-31: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let e = CronExpr::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let r = runs(&e, "2024-03-30T12:00:00Z", 2);
        assert_eq!(
            r[0],
            utc("2024-04-01T00:30:00Z"),
            "02:30 on the 31st does not exist: {r:?}"
        );
        // An hourly schedule runs at 01:30 CET and then 03:30 CEST: one hour apart.
        let hourly = CronExpr::parse("30 * * * *", Some("Europe/Berlin")).unwrap();
        let r = runs(&hourly, "2024-03-31T00:00:00Z", 2);
        assert_eq!(r, vec![utc("2024-03-31T00:30:00Z"), utc("2024-03-31T01:30:00Z")]);
        assert_eq!(r[1].with_timezone(&e.tz).hour(), 3);
    }

    #[test]
    fn berlin_fall_back_runs_the_repeated_hour_once() {
        // 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let e = CronExpr::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let r = runs(&e, "2024-10-26T12:00:00Z", 2);
        assert_eq!(r[0], utc("2024-10-27T00:30:00Z"), "once, at the first 02:30 (CEST)");
        assert_eq!(r[1], utc("2024-10-28T01:30:00Z"), "next day 02:30 CET: {r:?}");
        // Every 30 minutes across the change: 01:30 CEST... each instant once, in order.
        let half = CronExpr::parse("0,30 * * * *", Some("Europe/Berlin")).unwrap();
        let r = runs(&half, "2024-10-26T23:45:00Z", 5);
        for w in r.windows(2) {
            assert!(w[0] < w[1], "{r:?}");
        }
        assert_eq!(r[0], utc("2024-10-27T00:00:00Z"));
    }
}
