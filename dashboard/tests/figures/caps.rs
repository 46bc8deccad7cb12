//! Counts over COUNT_CAP stop there, say so, and read no further.

use diesel_async::SimpleAsyncConnection;
use sayiir_diesel::Status;
use sayiir_diesel_dashboard::inspect::{self, COUNT_CAP, ListFilter};
use sayiir_diesel_dashboard::{act, plans};

use crate::common::*;

/// COUNT_CAP + 1 Completed workflows `cap-…` finished in one minute (two
/// minutes ago), with COUNT_CAP + 1 history rows and buffered `go` events
/// for the first.
const OVER_THE_CAP: &str = "
    INSERT INTO sayiir.workflows
        (instance_id, definition_hash, status, snapshot, revision, created_at, updated_at,
         finished_at)
    SELECT format('cap-%s', lpad(i::text, 6, '0')), sha256('d'::bytea), 'Completed',
           '\\x00', 1, m.at, m.at, m.at
    FROM generate_series(1, 10001) AS i,
         (SELECT date_trunc('minute', now()) - interval '2 minutes' AS at) AS m;
    INSERT INTO sayiir.history (instance_id, revision, status, snapshot)
    SELECT 'cap-000001', r, 'InProgress', '\\x00' FROM generate_series(1, 10001) AS r;
    INSERT INTO sayiir.events (instance_id, signal_name, payload)
    SELECT 'cap-000001', 'go', '\\x00' FROM generate_series(1, 10001);";

#[tokio::test]
async fn counts_over_the_cap_stop_there_and_say_so() {
    assert_eq!(COUNT_CAP, 10_000, "the data set is one over the cap");
    let db = test_db().await;
    let mut conn = connect(&db).await;
    conn.batch_execute(OVER_THE_CAP).await.unwrap();

    let o = inspect::overview(&mut conn).await.unwrap();
    assert_eq!(o.workflows["Completed"], COUNT_CAP);
    assert_eq!(o.total, COUNT_CAP);
    assert_eq!(o.buffered_events, COUNT_CAP);
    assert_eq!(
        o.at_least,
        ["workflows.Completed", "total", "buffered_events"],
        "{o:?}"
    );

    // The walk stops at COUNT_CAP + 1 entries.
    let plans = plans::overview_plans(&mut conn).await.unwrap();
    let most = plans
        .iter()
        .filter(|p| !p.generic)
        .flat_map(|p| nodes(&p.json))
        .filter(|n| text(n, "Relation Name") == "workflows")
        .map(|n| rows_read(&n))
        .fold(0.0, f64::max);
    #[allow(clippy::cast_precision_loss)]
    let stop = (COUNT_CAP + 1) as f64;
    assert!((most - stop).abs() < f64::EPSILON, "{most}");

    let minutes = inspect::finished_per_minute(&mut conn).await.unwrap();
    assert_eq!(minutes.iter().map(|m| m.completed).max(), Some(COUNT_CAP));

    let completed = ListFilter {
        status: Some(Status::Completed),
        ..ListFilter::default()
    };
    assert_eq!(
        act::count_matching(&mut conn, &completed).await.unwrap(),
        COUNT_CAP
    );

    let d = inspect::show(&mut conn, "cap-000001", 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.history_entries, COUNT_CAP);
    assert_eq!(d.buffered_events.len(), 1);
    assert_eq!(d.buffered_events[0].count, COUNT_CAP);
}

#[tokio::test]
async fn a_filtered_page_stops_at_the_end_of_its_window() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    conn.batch_execute(OVER_THE_CAP).await.unwrap();
    // No workflow has a queue row: the tag matches none of them.
    let tagged = ListFilter {
        tag: Some("gpu".into()),
        ..ListFilter::default()
    };
    let first = inspect::list(&mut conn, &tagged).await.unwrap();
    assert!(first.workflows.is_empty());
    assert_eq!(
        first.next_after.as_deref(),
        Some("cap-010000"),
        "the window's last id"
    );
    let second = inspect::list(
        &mut conn,
        &ListFilter {
            after: first.next_after,
            ..tagged
        },
    )
    .await
    .unwrap();
    assert!(second.workflows.is_empty());
    assert_eq!(second.next_after, None);
}
