//! `stuck`: what is not moving, kind by kind.

use std::fmt::Write as _;

use sayiir_diesel_dashboard::inspect::{self, Stuck, StuckFilter};

use super::Out;
use crate::args::StuckArgs;
use crate::duration::format_millis;
use crate::error::CliError;
use crate::hex;
use crate::output::{Table, or_dash};

/// Runs `stuck`.
pub async fn run(out: &Out<'_>, args: &StuckArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let filter = StuckFilter {
        held_longer_than: args.held_longer_than,
        idle_for: args.idle_for,
        released_times: args.released_times,
        limit: args.limit,
    };
    let report = inspect::stuck(&mut conn, &filter).await?;
    crate::output::emit(out.json, &report, render)
}
fn render(s: &Stuck) -> String {
    let mut text = String::new();
    for (title, items) in [
        ("expired claims", &s.expired_claims),
        ("claims held longer than the threshold", &s.long_held_claims),
    ] {
        let _ = writeln!(text, "{title}: {}", items.len());
        let mut t = Table::new(&["  INSTANCE", "TASK", "WORKER", "HELD", "EXPIRES"]);
        for c in items {
            t.row(vec![
                format!("  {}", c.instance_id),
                hex::short_text(&c.task).to_owned(),
                c.worker.clone(),
                format_millis(c.held_ms),
                or_dash(c.expires_at.as_deref()),
            ]);
        }
        if !t.is_empty() {
            text.push_str(&t.render());
        }
    }
    for (title, items) in [
        ("quarantined rows", &s.quarantined),
        ("output saved, not moving on", &s.output_saved_not_moving),
        ("parked past their wake-up time", &s.overdue_parks),
        ("input not ready", &s.input_not_ready),
        (
            "released repeatedly with nothing saved",
            &s.repeatedly_released,
        ),
    ] {
        let _ = writeln!(text, "{title}: {}", items.len());
        let mut t = Table::new(&[
            "  INSTANCE",
            "TASK",
            "IDLE",
            "RELEASES",
            "WAKE AT",
            "RETRY AT",
            "WHY",
        ]);
        for i in items {
            t.row(vec![
                format!("  {}", i.instance_id),
                i.task
                    .as_deref()
                    .map_or_else(|| "-".to_owned(), |h| hex::short_text(h).to_owned()),
                format_millis(i.idle_ms),
                i.stalls.to_string(),
                or_dash(i.wake_at.as_deref()),
                or_dash(i.retry_at.as_deref()),
                or_dash(i.quarantined.as_deref()),
            ]);
        }
        if !t.is_empty() {
            text.push_str(&t.render());
        }
    }
    text
}
