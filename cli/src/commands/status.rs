//! `status`: an overview of the whole store.

use sayiir_diesel::Status;
use sayiir_diesel_dashboard::inspect::{self, Overview};

use super::Out;
use crate::duration::format_millis;
use crate::error::CliError;
use crate::output::Table;

/// Runs `status`.
pub async fn run(out: &Out<'_>) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let overview = inspect::overview(&mut conn).await?;
    crate::output::emit(out.json, &overview, render)
}

fn render(o: &Overview) -> String {
    // A count that reached the cap reads "10000+".
    let count = |name: &str, n: i64| {
        if o.at_least.iter().any(|a| a == name) {
            format!("{n}+")
        } else {
            n.to_string()
        }
    };
    let mut t = Table::new(&["WORKFLOWS", "COUNT"]);
    for s in Status::ALL {
        let n = o.workflows.get(s.as_str()).copied().unwrap_or(0);
        t.row(vec![
            s.as_str().to_owned(),
            count(&format!("workflows.{s}"), n),
        ]);
    }
    t.row(vec!["total".to_owned(), count("total", o.total)]);
    let q = &o.queue;
    let mut queue = Table::new(&["QUEUE", "COUNT"]);
    for (label, name, n) in [
        ("runnable", "queue.runnable", q.runnable),
        ("  waiting", "queue.waiting", q.waiting),
        ("  running", "queue.running", q.running),
        (
            "parked at delay",
            "queue.parked_at_delay",
            q.parked_at_delay,
        ),
        (
            "parked at signal",
            "queue.parked_at_signal",
            q.parked_at_signal,
        ),
        ("quarantined", "queue.quarantined", q.quarantined),
        ("expired claims", "expired_claims", o.expired_claims),
        ("pending requests", "pending_requests", o.pending_requests),
        ("buffered events", "buffered_events", o.buffered_events),
    ] {
        queue.row(vec![label.to_owned(), count(name, n)]);
    }
    let oldest = match (&q.oldest_waiting_since, q.oldest_waiting_ms) {
        (Some(since), Some(ms)) => format!("{} (since {since})", format_millis(ms)),
        _ => "-".to_owned(),
    };
    format!(
        "{}\n{}\noldest waiting task: {oldest}\n",
        t.render(),
        queue.render()
    )
}
