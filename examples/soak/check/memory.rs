//! Worker memory: each incarnation's RSS at the end stays within 20 % of
//! its RSS after the first minute.

use crate::fleet::Fleet;

/// Worker RSS, for the figures.
pub struct Rss {
    /// Highest VmHWM of any incarnation, KiB.
    pub peak: u64,
    /// One line per incarnation that ran a minute.
    pub lines: Vec<String>,
}

/// Checks every incarnation's growth; each violation is one line of `bad`.
pub fn check(fleet: &Fleet, bad: &mut Vec<String>) -> Rss {
    let mut peak = 0;
    let mut lines = Vec::new();
    for w in &fleet.workers {
        for l in &w.lives {
            peak = peak.max(l.hwm_end.unwrap_or(0));
            if let (Some(m), Some(e)) = (l.rss_minute, l.rss_end) {
                lines.push(format!(
                    "process {} pid {}: {} -> {} MiB",
                    w.index,
                    l.pid,
                    m / 1024,
                    e / 1024
                ));
                if e * 10 > m * 12 {
                    bad.push(format!(
                        "process {} (pid {}): RSS grew from {m} KiB after a minute to {e} KiB",
                        w.index, l.pid
                    ));
                }
            }
        }
    }
    Rss { peak, lines }
}
