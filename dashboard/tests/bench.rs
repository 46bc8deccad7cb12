//! Latency of every read at a million finished workflows (ignored: the
//! load takes minutes). Run it with
//!
//! ```sh
//! cargo test -p sayiir-diesel-dashboard --release --test bench -- --ignored --nocapture
//! ```
//!
//! A fresh database gets statistics of empty tables, then 1 M finished
//! workflows (finished over the last week; 3 M history rows, 1 M outputs),
//! 100 000 queued and 5 000 parked ones, written with `INSERT … SELECT
//! generate_series`. Each read runs 20 times on stale statistics, then 20
//! times after `VACUUM ANALYZE`; the table gives p50 and p95 in
//! milliseconds. The same for every page and `/api` answer through the
//! dashboard's whole router (guard, reads, templates; no socket). Last,
//! the chart's worst case: 300 000 more finished in
//! the last hour. The CLI's
//! statements before `inspect` (the `GROUP BY` of `status_counts` and
//! unbounded counts; the list ordered by the default collation) run beside
//! them for comparison.

mod common;
mod serving;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::schema::sayiir::{events, signals, tasks, workflows};
use sayiir_diesel::{QueuedPosition, Status, reports};
use sayiir_diesel_dashboard::inspect::{self, ListFilter, StuckFilter};
use sayiir_diesel_dashboard::{Dashboard, act};

const CALLS: usize = 20;

/// p50 and p95 (nearest rank) of `CALLS` runs of `read`, in milliseconds.
async fn time<T>(
    conn: &mut AsyncPgConnection,
    read: impl AsyncFn(&mut AsyncPgConnection) -> T,
) -> (f64, f64) {
    let mut took: Vec<Duration> = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        std::hint::black_box(read(conn).await);
        took.push(started.elapsed());
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(took[CALLS / 2 - 1]), ms(took[CALLS * 95 / 100 - 1]))
}

/// The CLI's `status` statements before `inspect`.
async fn old_status(conn: &mut AsyncPgConnection) -> i64 {
    let counts: Vec<(Status, i64)> = reports::status_counts().load(conn).await.unwrap();
    let mut n: i64 = counts.iter().map(|(_, c)| c).sum();
    for q in [
        reports::runnable_tasks(),
        reports::waiting_tasks(),
        reports::quarantined_tasks(),
    ] {
        n += q.count().get_result::<i64>(conn).await.unwrap();
    }
    let _: Option<chrono::DateTime<chrono::Utc>> = reports::waiting_tasks()
        .select(diesel::dsl::min(tasks::queued_at))
        .get_result(conn)
        .await
        .unwrap();
    for kind in [QueuedPosition::AtDelay, QueuedPosition::AtSignal] {
        n += tasks::table
            .filter(tasks::position_kind.eq(kind))
            .count()
            .get_result::<i64>(conn)
            .await
            .unwrap();
    }
    n += reports::expired_claims()
        .count()
        .get_result::<i64>(conn)
        .await
        .unwrap();
    n += signals::table
        .count()
        .get_result::<i64>(conn)
        .await
        .unwrap();
    n + events::table.count().get_result::<i64>(conn).await.unwrap()
}

/// The CLI's `list --status Completed --limit 50` statement before `inspect`.
async fn old_list(conn: &mut AsyncPgConnection) -> Vec<String> {
    workflows::table
        .filter(workflows::status.eq(Status::Completed))
        .select(workflows::instance_id)
        .order(workflows::instance_id.asc())
        .limit(51)
        .load(conn)
        .await
        .unwrap()
}

/// One table row per read: name, p50, p95.
async fn measure(conn: &mut AsyncPgConnection) -> Vec<(&'static str, (f64, f64))> {
    let completed = ListFilter {
        status: Some(Status::Completed),
        ..ListFilter::default()
    };
    let prefixed = ListFilter {
        prefix: Some("done-05".to_owned()),
        ..ListFilter::default()
    };
    let tagged = ListFilter {
        tag: Some("gpu".to_owned()),
        status: Some(Status::InProgress),
        ..ListFilter::default()
    };
    let aged = ListFilter {
        status: Some(Status::Failed),
        older_than: Some(Duration::from_mins(30)),
        ..ListFilter::default()
    };
    vec![
        (
            "overview (status)",
            time(conn, async |c| inspect::overview(c).await.unwrap()).await,
        ),
        (
            "finished_per_minute",
            time(conn, async |c| {
                inspect::finished_per_minute(c).await.unwrap()
            })
            .await,
        ),
        (
            "list --status Completed --limit 50",
            time(conn, async |c| inspect::list(c, &completed).await.unwrap()).await,
        ),
        (
            "list --prefix done-05",
            time(conn, async |c| inspect::list(c, &prefixed).await.unwrap()).await,
        ),
        (
            "list --status InProgress --tag gpu",
            time(conn, async |c| inspect::list(c, &tagged).await.unwrap()).await,
        ),
        (
            "list --status Failed --older-than 30m",
            time(conn, async |c| inspect::list(c, &aged).await.unwrap()).await,
        ),
        (
            "count_matching --status Completed",
            time(conn, async |c| {
                act::count_matching(c, &completed).await.unwrap()
            })
            .await,
        ),
        (
            "show done-0500000",
            time(conn, async |c| {
                inspect::show(c, "done-0500000", 10).await.unwrap()
            })
            .await,
        ),
        (
            "output_previews done-0500000",
            time(conn, async |c| {
                inspect::output_previews(c, "done-0500000", 64)
                    .await
                    .unwrap()
            })
            .await,
        ),
        (
            "stuck (defaults)",
            time(conn, async |c| {
                inspect::stuck(c, &StuckFilter::default()).await.unwrap()
            })
            .await,
        ),
        (
            "waiting 50",
            time(conn, async |c| inspect::waiting(c, 50).await.unwrap()).await,
        ),
        (
            "parked 50",
            time(conn, async |c| inspect::parked(c, 50).await.unwrap()).await,
        ),
        (
            "before: CLI status statements",
            time(conn, old_status).await,
        ),
        (
            "before: CLI list --status Completed",
            time(conn, old_list).await,
        ),
    ]
}

/// The pages and `/api` answers a person or a script asks for, through the
/// whole router (guard, reads, templates), as `(uri, p50, p95)`.
async fn pages(app: &axum::Router) -> Vec<(&'static str, (f64, f64))> {
    let mut out = Vec::new();
    for uri in [
        "/",
        "/workflows",
        "/workflows?status=Completed",
        "/workflows?status=Failed&older_than=30m",
        "/workflows?prefix=done-05",
        "/workflows/done-0500000",
        "/stuck",
        "/queue",
        "/api/status",
        "/api/workflows?status=Completed",
        "/api/workflows/done-0500000",
        "/api/stuck",
    ] {
        let mut took: Vec<Duration> = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let started = Instant::now();
            let answer = serving::get(app, uri).await;
            took.push(started.elapsed());
            assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.body);
        }
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        out.push((
            uri,
            (ms(took[CALLS / 2 - 1]), ms(took[CALLS * 95 / 100 - 1])),
        ));
    }
    out
}

fn table(stale: &[(&str, (f64, f64))], fresh: &[(&str, (f64, f64))]) {
    println!("| read | stale p50 | stale p95 | analysed p50 | analysed p95 |");
    println!("|---|---|---|---|---|");
    for ((name, (s50, s95)), (_, (f50, f95))) in stale.iter().zip(fresh) {
        println!("| {name} | {s50:.1} | {s95:.1} | {f50:.1} | {f95:.1} |");
    }
}

/// A week's retention.
const WEEK: i64 = 7 * 24 * 3600;

#[tokio::test]
#[ignore = "loads a million workflows: minutes"]
async fn reads_at_a_million_finished_workflows() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    stale_statistics(&mut conn).await;
    let started = Instant::now();
    finished(&mut conn, "", 1_000_000, WEEK).await;
    running(&mut conn, "", 100_000).await;
    parked(&mut conn, "", 5_000).await;
    eprintln!("loaded in {:?}", started.elapsed());
    let backend = act::Backend::builder(db.url())
        .run_migrations(false)
        .build()
        .await
        .unwrap();
    let app = serving::app(&Dashboard::new(backend), "");
    let stale = measure(&mut conn).await;
    let stale_pages = pages(&app).await;
    analyse(&mut conn).await;
    let fresh = measure(&mut conn).await;
    let fresh_pages = pages(&app).await;
    table(&stale, &fresh);
    println!();
    table(&stale_pages, &fresh_pages);
    // The chart's worst case: a burst of 300 000 finished in the last hour
    // (about 5000 a minute: 2500 Completed, 1250 Failed, 1250 Cancelled,
    // all read), before and after the next VACUUM ANALYZE.
    finished(&mut conn, "burst-", 300_000, 3600).await;
    let (b50, b95) = time(&mut conn, async |c| {
        inspect::finished_per_minute(c).await.unwrap()
    })
    .await;
    analyse(&mut conn).await;
    let (a50, a95) = time(&mut conn, async |c| {
        inspect::finished_per_minute(c).await.unwrap()
    })
    .await;
    println!(
        "| finished_per_minute, 300 000 in the last hour | {b50:.1} | {b95:.1} | {a50:.1} | {a95:.1} |"
    );
}
