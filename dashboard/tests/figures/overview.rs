//! `overview` and `finished_per_minute` against counts of the tables.

use sayiir_diesel::Status;
use sayiir_diesel_dashboard::inspect;

use crate::common::*;
use crate::time_of;

/// Runnable queue rows.
const RUNNABLE: &str =
    "FROM sayiir.tasks WHERE position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL";

#[tokio::test]
async fn the_overview_counts_what_the_tables_hold() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    finished(&mut conn, "", 200, SPAN).await;
    running(&mut conn, "", 200).await;
    parked(&mut conn, "", 30).await;
    let o = inspect::overview(&mut conn).await.unwrap();
    let mut c = async |sql: String| count(&mut conn, &sql).await;
    for status in Status::ALL {
        let want = c(format!(
            "SELECT count(*) AS n FROM sayiir.workflows WHERE status = '{status}'"
        ))
        .await;
        assert_eq!(o.workflows[status.as_str()], want, "{status}");
    }
    assert_eq!(o.workflows.len(), 5);
    assert_eq!(
        o.total,
        c("SELECT count(*) AS n FROM sayiir.workflows".into()).await
    );
    let q = &o.queue;
    assert_eq!(
        q.runnable,
        c(format!("SELECT count(*) AS n {RUNNABLE}")).await
    );
    let unclaimed = "(claimed_until IS NULL OR claimed_until <= now())";
    assert_eq!(
        q.waiting,
        c(format!("SELECT count(*) AS n {RUNNABLE} AND {unclaimed}")).await
    );
    assert_eq!(
        q.running,
        c(format!(
            "SELECT count(*) AS n {RUNNABLE} AND claimed_until > now()"
        ))
        .await
    );
    for (kind, got) in [
        ("AtDelay", q.parked_at_delay),
        ("AtSignal", q.parked_at_signal),
    ] {
        let want = c(format!(
            "SELECT count(*) AS n FROM sayiir.tasks WHERE position_kind = '{kind}'"
        ))
        .await;
        assert_eq!(got, want, "{kind}");
    }
    let tables = [
        (q.quarantined, "tasks WHERE quarantined IS NOT NULL"),
        (o.expired_claims, "claims WHERE expires_at <= now()"),
        (o.pending_requests, "signals"),
        (o.buffered_events, "events"),
    ];
    for (got, rows) in tables {
        assert_eq!(
            got,
            c(format!("SELECT count(*) AS n FROM sayiir.{rows}")).await,
            "{rows}"
        );
        assert!(got > 0, "{rows}: the data set has some");
    }
    assert!(q.running > 0 && q.waiting > q.running && q.parked_at_signal > 0);
    let oldest = time_of(
        &mut conn,
        &format!("SELECT min(queued_at) AS at {RUNNABLE} AND {unclaimed}"),
    )
    .await;
    assert_eq!(q.oldest_waiting_since, oldest);
    assert!(q.oldest_waiting_ms.unwrap() >= 190_000, "{q:?}");
    assert!(o.at_least.is_empty(), "{:?}", o.at_least);
}

#[tokio::test]
async fn an_empty_store_is_all_zeros() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    let o = inspect::overview(&mut conn).await.unwrap();
    assert_eq!(o.total, 0);
    assert!(o.workflows.values().all(|n| *n == 0) && o.workflows.len() == 5);
    assert_eq!(o.queue.oldest_waiting_since, None);
    assert_eq!(o.queue.oldest_waiting_ms, None);
    assert_eq!(
        inspect::finished_per_minute(&mut conn).await.unwrap().len(),
        61
    );
}

#[tokio::test]
async fn the_chart_counts_each_of_the_last_61_minutes() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    // Finished over the last 67 minutes: the oldest fall outside.
    finished(&mut conn, "", 400, SPAN).await;
    let minutes = inspect::finished_per_minute(&mut conn).await.unwrap();
    assert_eq!(minutes.len(), 61);
    let starts: Vec<chrono::DateTime<chrono::Utc>> =
        minutes.iter().map(|m| m.minute.parse().unwrap()).collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1] - w[0] == chrono::Duration::minutes(1))
    );
    let now = chrono::Utc::now();
    assert!(starts[60] <= now && now - starts[60] < chrono::Duration::minutes(2));
    let mut total = 0;
    for m in &minutes {
        for (status, got) in [
            ("Completed", m.completed),
            ("Failed", m.failed),
            ("Cancelled", m.cancelled),
        ] {
            let want = count(
                &mut conn,
                &format!(
                    "SELECT count(*) AS n FROM sayiir.workflows WHERE status = '{status}' \
                     AND finished_at >= '{0}'::timestamptz \
                     AND finished_at < '{0}'::timestamptz + interval '1 minute'",
                    m.minute
                ),
            )
            .await;
            assert_eq!(got, want, "{} {status}", m.minute);
            total += got;
        }
    }
    let in_window = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM sayiir.workflows WHERE finished_at >= '{}'::timestamptz",
            minutes[0].minute
        ),
    )
    .await;
    assert_eq!(total, in_window);
    assert!(total > 300 && total < 400, "{total}: some are older");
}
