//! Human units in the config: sizes (`256MiB`, `5GiB`, `10%`) and durations
//! (`90d`, `12h`, `30s`).
//!
//! Only parsing and display live here; what a size *limits* is decided by
//! the capability that reads it.

use std::fmt;
use std::str::FromStr;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A byte count written as `123`, `256MiB`, `5GiB`, `1.5GB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: &[(&str, u64)] = &[
    ("b", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
];

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (num, unit) = split_number(s)?;
        let unit_l = unit.to_ascii_lowercase();
        let mult = if unit_l.is_empty() {
            if num != 0.0 {
                return Err(format!("`{s}` needs a unit, e.g. `{s}MiB` or `{s}B`"));
            }
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(u, _)| *u == unit_l)
                .map(|(_, m)| *m)
                .ok_or_else(|| format!("unknown size unit `{unit}` in `{s}` (use B, KiB, MiB, GiB, TiB, KB, MB, GB)"))?
        };
        Ok(ByteSize((num * mult as f64).round() as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&human_bytes(self.0))
    }
}

/// `1536` → `1.5KiB`: for tables and logs, not for parsing back exactly.
pub fn human_bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.1}{}", U[i])
    }
}

/// A span of time written as `30s`, `15m`, `12h`, `90d`, `2w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span(pub std::time::Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (num, unit) = split_number(s)?;
        let secs = match unit.to_ascii_lowercase().as_str() {
            "" if num == 0.0 => 0.0,
            "" => return Err(format!("`{s}` needs a unit, e.g. `{s}s`, `{s}m`, `{s}h` or `{s}d`")),
            "ms" => num / 1000.0,
            "s" => num,
            "m" | "min" => num * 60.0,
            "h" => num * 3600.0,
            "d" => num * 86_400.0,
            "w" => num * 7.0 * 86_400.0,
            _ => return Err(format!("unknown duration unit `{unit}` in `{s}` (use s, m, h, d, w)")),
        };
        Ok(Span(std::time::Duration::from_secs_f64(secs)))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)] {
            if s >= n && s % n == 0 {
                return write!(f, "{}{unit}", s / n);
            }
        }
        write!(f, "{s}s")
    }
}

/// A limit that is either absolute or a share of a whole (`10%`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SizeOrPercent {
    Bytes(ByteSize),
    Percent(f64),
}

impl SizeOrPercent {
    pub fn resolve(&self, whole: u64) -> u64 {
        match self {
            SizeOrPercent::Bytes(b) => b.0,
            SizeOrPercent::Percent(p) => (whole as f64 * p / 100.0) as u64,
        }
    }
}

impl FromStr for SizeOrPercent {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().strip_suffix('%') {
            Some(p) => {
                let v: f64 = p.trim().parse().map_err(|_| format!("bad percentage `{s}`"))?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(format!("percentage `{s}` is outside 0..100"));
                }
                Ok(SizeOrPercent::Percent(v))
            }
            None => s.parse().map(SizeOrPercent::Bytes),
        }
    }
}

impl fmt::Display for SizeOrPercent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeOrPercent::Bytes(b) => b.fmt(f),
            SizeOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

fn split_number(s: &str) -> Result<(f64, &str), String> {
    let t = s.trim();
    let end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .unwrap_or(t.len());
    let num: f64 = t[..end]
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{s}` does not start with a number"))?;
    if num < 0.0 || !num.is_finite() {
        return Err(format!("`{s}` must be a non-negative number"));
    }
    Ok((num, t[end..].trim()))
}

// A bare integer reaches the same parser (and is refused unless 0): a unit
// is required, so `keep = 90` is not silently 90 seconds.
macro_rules! serde_via_str {
    ($t:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> de::Visitor<'de> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(E::custom)
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        v.to_string().parse().map_err(E::custom)
                    }
                }
                d.deserialize_any(V)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
serde_via_str!(ByteSize, "a size such as `256MiB` or `5GiB`");
serde_via_str!(Span, "a duration such as `90d`, `12h` or `30s`");
serde_via_str!(SizeOrPercent, "a size such as `5GiB` or a share such as `10%`");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("256MiB".parse::<ByteSize>().unwrap().0, 256 << 20);
        assert_eq!("5GiB".parse::<ByteSize>().unwrap().0, 5 << 30);
        assert_eq!("1.5 KB".parse::<ByteSize>().unwrap().0, 1500);
        assert!("42".parse::<ByteSize>().is_err(), "a size needs a unit");
        assert_eq!("0".parse::<ByteSize>().unwrap().0, 0);
        assert!("5 parsecs".parse::<ByteSize>().is_err());
        assert!("-1MiB".parse::<ByteSize>().is_err());
    }

    #[test]
    fn spans() {
        assert_eq!("90d".parse::<Span>().unwrap().0.as_secs(), 90 * 86_400);
        assert_eq!("12h".parse::<Span>().unwrap().0.as_secs(), 12 * 3600);
        assert_eq!("90d".parse::<Span>().unwrap().to_string(), "90d");
        assert!("3 fortnights".parse::<Span>().is_err());
        assert!("90".parse::<Span>().is_err(), "a duration needs a unit");
    }

    #[test]
    fn percent() {
        assert_eq!("10%".parse::<SizeOrPercent>().unwrap().resolve(1000), 100);
        assert_eq!("1KiB".parse::<SizeOrPercent>().unwrap().resolve(0), 1024);
        assert!("150%".parse::<SizeOrPercent>().is_err());
    }
}
