//! Durations as the CLI's flags and the dashboard's query parameters take
//! them (`30s`, `15m`, `2h`, `7d`, `1h30m`), and
//! their compact display.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses one or more `<number><unit>` parts, summed: units `ms`, `s`, `m`,
/// `h`, `d` and `w`. A bare `0` is zero.
///
/// # Errors
/// A message naming what is wrong, for clap to print as a usage error.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err("empty duration (e.g. 30s, 15m, 2h, 7d)".to_owned());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{text:?}: expected a number before {rest:?}"));
        }
        let (number, after) = rest.split_at(digits);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: {number} is too large"))?;
        let part = match unit {
            "ms" => Some(Duration::from_millis(value)),
            "s" => Some(Duration::from_secs(value)),
            "m" => value.checked_mul(60).map(Duration::from_secs),
            "h" => value.checked_mul(3600).map(Duration::from_secs),
            "d" => value.checked_mul(86_400).map(Duration::from_secs),
            "w" => value.checked_mul(604_800).map(Duration::from_secs),
            "" => {
                return Err(format!(
                    "{text:?}: {number} needs a unit (ms, s, m, h, d, w)"
                ));
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown unit {other:?} (ms, s, m, h, d, w)"
                ));
            }
        };
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = next;
    }
    Ok(total)
}

/// A compact display with at most two units: `850ms`, `42s`, `3m12s`,
/// `2h5m`, `4d3h`.
#[must_use]
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.subsec_millis());
    }
    let units = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    let mut out = String::new();
    let mut left = secs;
    let mut shown = 0;
    for (size, name) in units {
        let n = left / size;
        if n > 0 || shown > 0 {
            if n > 0 {
                let _ = write!(out, "{n}{name}");
            }
            left %= size;
            shown += 1;
            if shown == 2 {
                break;
            }
        }
    }
    out
}

/// [`format()`] of a signed number of milliseconds; negative is shown as `-`.
#[must_use]
pub fn format_millis(ms: i64) -> String {
    match u64::try_from(ms) {
        Ok(ms) => format(Duration::from_millis(ms)),
        Err(_) => format!("-{}", format(Duration::from_millis(ms.unsigned_abs()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit_and_sums_parts() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("15m"), Ok(Duration::from_mins(15)));
        assert_eq!(parse("2h"), Ok(Duration::from_hours(2)));
        assert_eq!(parse("7d"), Ok(Duration::from_hours(168)));
        assert_eq!(parse("1w"), Ok(Duration::from_hours(168)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "",
            "5",
            "m",
            "5x",
            "h5",
            "-5s",
            "1.5h",
            "5 m",
            "99999999999999999999s",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse("5x").unwrap_err().contains("unknown unit"));
        assert!(parse("5").unwrap_err().contains("needs a unit"));
        assert!(parse("99999999999999999d").is_err());
    }

    #[test]
    fn formats_with_two_units_at_most() {
        assert_eq!(format(Duration::from_millis(850)), "850ms");
        assert_eq!(format(Duration::from_secs(42)), "42s");
        assert_eq!(format(Duration::from_secs(192)), "3m12s");
        assert_eq!(format(Duration::from_mins(125)), "2h5m");
        assert_eq!(format(Duration::from_hours(1)), "1h");
        assert_eq!(format(Duration::from_secs(3601)), "1h");
        assert_eq!(
            format(Duration::from_secs(4 * 86_400 + 3 * 3600 + 59)),
            "4d3h"
        );
        assert_eq!(format_millis(-1500), "-1s");
        assert_eq!(format_millis(61_000), "1m1s");
    }
}
