//! The finished-per-minute chart: an inline SVG drawn from numbers only.

use std::fmt::Write as _;

use crate::inspect::Minute;

const WIDTH: i64 = 720;
const HEIGHT: i64 = 120;

/// Stacked bars, one per minute (completed, failed, cancelled), oldest on
/// the left, with the peak as the scale.
pub fn svg(minutes: &[Minute]) -> String {
    let peak = minutes
        .iter()
        .map(|m| m.completed + m.failed + m.cancelled)
        .max()
        .unwrap_or(0)
        .max(1);
    let slots = i64::try_from(minutes.len()).unwrap_or(1).max(1);
    let bar = (WIDTH / slots).max(1);
    let mut out = format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"workflows finished per minute\" \
         viewBox=\"0 0 {WIDTH} {}\" width=\"{WIDTH}\" height=\"{}\">",
        HEIGHT + 14,
        HEIGHT + 14
    );
    for (i, m) in (0_i64..).zip(minutes) {
        let x = i * bar;
        let mut base = HEIGHT;
        for (class, n) in [
            ("completed", m.completed),
            ("failed", m.failed),
            ("cancelled", m.cancelled),
        ] {
            if n == 0 {
                continue;
            }
            let h = (n * HEIGHT / peak).max(1);
            base -= h;
            let _ = write!(
                out,
                "<rect class=\"{class}\" x=\"{x}\" y=\"{base}\" width=\"{}\" height=\"{h}\"><title>{} {class} {n}</title></rect>",
                (bar - 1).max(1),
                time_of(&m.minute)
            );
        }
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"0\" y1=\"{HEIGHT}\" x2=\"{WIDTH}\" y2=\"{HEIGHT}\"/>\
         <text x=\"0\" y=\"{}\">-60 min</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">now · peak {peak}/min</text></svg>",
        HEIGHT + 12,
        WIDTH,
        HEIGHT + 12
    );
    out
}

/// `HH:MM` of an RFC 3339 time, digits and `:` only (nothing to escape).
fn time_of(rfc3339: &str) -> String {
    rfc3339
        .split('T')
        .nth(1)
        .unwrap_or_default()
        .chars()
        .take(5)
        .filter(|c| c.is_ascii_digit() || *c == ':')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_peak_and_carry_no_text_from_outside() {
        let m = |minute: &str, c, f| Minute {
            minute: minute.to_owned(),
            completed: c,
            failed: f,
            cancelled: 0,
        };
        let svg = svg(&[m("2026-12-07T10:00:00Z", 4, 0), m("<b>T10:01:00Z", 2, 2)]);
        assert!(svg.contains("height=\"120\"><title>10:00 completed 4"));
        assert!(svg.contains("height=\"60\"><title>10:01 completed 2"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("peak 4/min"));
    }
}
