//! `/metrics`: the overview's store-wide figures in the Prometheus text
//! format, sampled at most once per [`SAMPLE_EVERY`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tokio::sync::Mutex;

use super::Inner;
use super::reply::{Failure, Reply};
use crate::inspect::{self, Overview};

/// However often `/metrics` is scraped, the database is asked at most this
/// often; scrapes in between get the last sample.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// The last sample and when it was taken.
#[derive(Default)]
pub struct Sampler {
    last: Mutex<Option<(Instant, String)>>,
}

impl Sampler {
    /// No sample yet.
    pub fn new() -> Self {
        Self::default()
    }
}

/// `/metrics`.
pub async fn serve(State(state): State<Arc<Inner>>) -> Reply {
    let Some(sampler) = &state.metrics else {
        return Err(Failure::NotFound("metrics are off".to_owned()));
    };
    let mut last = sampler.last.lock().await;
    let fresh = last
        .as_ref()
        .filter(|(at, _)| at.elapsed() < SAMPLE_EVERY)
        .map(|(_, text)| text.clone());
    let text = if let Some(text) = fresh {
        text
    } else {
        let mut conn = super::pages::read(&state).await?;
        let text = render(&inspect::overview(&mut conn).await?);
        *last = Some((Instant::now(), text.clone()));
        text
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// The exposition text of one overview.
pub fn render(o: &Overview) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, rows: &[(Option<(&str, &str)>, i64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (label, v) in rows {
            match label {
                Some((k, l)) => {
                    let _ = writeln!(out, "{name}{{{k}=\"{l}\"}} {v}");
                }
                None => {
                    let _ = writeln!(out, "{name} {v}");
                }
            }
        }
    };
    let statuses: Vec<_> = o
        .workflows
        .iter()
        .map(|(s, n)| (Some(("status", *s)), *n))
        .collect();
    gauge(
        "sayiir_store_workflows",
        "Workflows per status (capped at the dashboard's count cap).",
        &statuses,
    );
    let q = &o.queue;
    gauge(
        "sayiir_store_queue",
        "Queue rows per state: waiting for a worker, running, parked, quarantined.",
        &[
            (Some(("state", "waiting")), q.waiting),
            (Some(("state", "running")), q.running),
            (Some(("state", "parked_at_delay")), q.parked_at_delay),
            (Some(("state", "parked_at_signal")), q.parked_at_signal),
            (Some(("state", "quarantined")), q.quarantined),
        ],
    );
    gauge(
        "sayiir_store_oldest_waiting_seconds",
        "Age of the oldest task waiting for a worker (0 when none).",
        &[(None, q.oldest_waiting_ms.unwrap_or(0) / 1000)],
    );
    gauge(
        "sayiir_store_expired_claims",
        "Claims whose lease ran out, not released.",
        &[(None, o.expired_claims)],
    );
    gauge(
        "sayiir_store_pending_requests",
        "Cancel and pause requests not applied yet.",
        &[(None, o.pending_requests)],
    );
    gauge(
        "sayiir_store_buffered_events",
        "External events buffered, not consumed yet.",
        &[(None, o.buffered_events)],
    );
    out
}
