//! How the documents write times, ages and bytes, and how counts are
//! capped.

use chrono::{DateTime, Utc};

use crate::Error;

/// A timestamp as RFC 3339 in UTC with milliseconds
/// (`2026-01-02T03:04:05.678Z`).
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Lowercase hex of `bytes` (hashes and task ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `now - age`, or [`Error::Input`] when the age is beyond what a
/// timestamp holds.
pub(crate) fn before(now: DateTime<Utc>, age: std::time::Duration) -> Result<DateTime<Utc>, Error> {
    chrono::TimeDelta::from_std(age)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .ok_or_else(|| Error::Input(format!("age {age:?} is too large")))
}

/// Milliseconds from `then` to `now` (negative when `then` is later).
pub(crate) fn millis_since(now: DateTime<Utc>, then: DateTime<Utc>) -> i64 {
    (now - then).num_milliseconds()
}

/// A count read with `LIMIT cap + 1`: the count capped at `cap`, and
/// whether the cap was reached (the true count is at least `cap`).
pub(crate) fn capped(counted: i64, cap: i64) -> (i64, bool) {
    (counted.min(cap), counted > cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_ages() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(time(t), "2026-01-02T03:04:05.678Z");
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert!(before(t, std::time::Duration::from_mins(1)).unwrap() < t);
        assert!(matches!(
            before(t, std::time::Duration::MAX),
            Err(Error::Input(m)) if m.contains("too large")
        ));
        assert_eq!(millis_since(t, t - chrono::Duration::seconds(2)), 2000);
    }

    #[test]
    fn caps() {
        assert_eq!(capped(10_001, 10_000), (10_000, true));
        assert_eq!(capped(10_000, 10_000), (10_000, false));
        assert_eq!(capped(3, 10_000), (3, false));
    }
}
