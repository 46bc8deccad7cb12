//! Timing the finder: percentiles of timed calls, the server's view of
//! them, and the plans auto_explain logs meanwhile and after.

use std::time::{Duration, Instant};

use super::{Ctx, LIMIT, WORKER, aging};
use crate::backends::Backend;
use crate::server::Explain;
use crate::{Error, plans};

/// Figures of a run of timed finder calls.
pub(super) struct FinderTimes {
    pub(super) p50: f64,
    pub(super) p99: f64,
    min: usize,
    max: usize,
}

impl FinderTimes {
    pub(super) fn returned(&self) -> String {
        if self.min == self.max {
            format!("{} returned", self.min)
        } else {
            format!("{}..{} returned", self.min, self.max)
        }
    }
}

pub(super) fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

async fn time_finder<B: Backend>(backend: &B, calls: usize) -> Result<FinderTimes, Error> {
    for _ in 0..5 {
        backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await?;
    }
    let mut times = Vec::with_capacity(calls);
    let (mut min, mut max) = (usize::MAX, 0);
    for _ in 0..calls {
        let t = Instant::now();
        let found = backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        min = min.min(found.len());
        max = max.max(found.len());
    }
    times.sort_by(f64::total_cmp);
    Ok(FinderTimes {
        p50: pct(&times, 0.50),
        p99: pct(&times, 0.99),
        min,
        max,
    })
}

/// Minimum duration of a statement whose plan is logged during the timed
/// finder calls.
const SLOW_MS: u32 = 10;

/// Times the finder with auto_explain logging the plan (ANALYZE, BUFFERS,
/// no per-node timing) of every statement that takes [`SLOW_MS`] or more,
/// so a slow plan is caught as it happens (every statement pays the row
/// and buffer counting), then runs 12 more calls on the same backend with
/// auto_explain (ANALYZE, BUFFERS) on for every statement, so its
/// long-lived pooled connections show the plans they use (prepared
/// statements may have switched to a generic plan). Both logs go under
/// `target/bench-plans/`; per statement the distinct plans are printed
/// with their runs and median duration.
pub(super) async fn time_and_explain<B: Backend>(
    cx: &mut Ctx<'_>,
    backend: &B,
    oid: i64,
    tag: &str,
) -> Result<FinderTimes, Error> {
    let slug: String = format!("{} {tag}", B::NAME)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let log = cx.server.log_path();
    let offset = log.as_deref().map_or(0, plans::log_len);
    let slow_on = log.is_some() && cx.server.auto_explain(Explain::Slower(SLOW_MS)).await?;
    cx.server.reset_statements().await?;
    let timed = time_finder(backend, cx.sa.calls).await;
    let times = cx
        .server
        .statement_times(oid, i64::try_from(cx.sa.calls)?)
        .await;
    if slow_on {
        cx.server.auto_explain(Explain::Off).await?;
    }
    let t = timed?;
    for st in times? {
        println!(
            "{:<8}            timed calls, server side: {}: {} calls, planned {} times, \
             mean plan {:.3} ms + execution {:.3} ms",
            B::NAME,
            plans::label(&st.query),
            st.calls,
            st.plans,
            st.plan_ms,
            st.exec_ms
        );
    }
    let Some(log) = log.filter(|_| slow_on) else {
        return Ok(t);
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = plans::log_since(&log, offset);
    std::fs::write(cx.plans_dir.join(format!("{slug}-timed.log")), &text)?;
    let slow = plans::summary(&plans::records(&text), 1);
    if slow.is_empty() {
        println!(
            "{:<8}            timed calls: no statement took {SLOW_MS} ms or more",
            B::NAME
        );
    }
    for line in slow {
        println!(
            "{:<8}            timed calls, >= {SLOW_MS} ms: {line}",
            B::NAME
        );
    }

    let offset = plans::log_len(&log);
    cx.server.auto_explain(Explain::Analyze).await?;
    let mut calls = Ok(());
    for _ in 0..12 {
        if let Err(e) = backend
            .find_available_tasks(WORKER, LIMIT, aging(), &[])
            .await
        {
            calls = Err(e);
            break;
        }
    }
    cx.server.auto_explain(Explain::Off).await?;
    calls?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = plans::log_since(&log, offset);
    std::fs::write(cx.plans_dir.join(format!("{slug}-analyze.log")), &text)?;
    for line in plans::summary(&plans::records(&text), 10) {
        println!("{:<8}            EXPLAIN ANALYZE after: {line}", B::NAME);
    }
    Ok(t)
}
