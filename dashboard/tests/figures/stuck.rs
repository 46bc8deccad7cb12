//! `stuck`, `waiting` and `parked` against the queue and the claims.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use sayiir_diesel_dashboard::inspect::{self, StuckFilter};
use sayiir_diesel_testkit::TestDatabase;

use crate::common::*;

/// Runnable queue rows.
const RUNNABLE: &str = "position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL";

async fn queue() -> (TestDatabase, AsyncPgConnection) {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    running(&mut conn, "", 300).await;
    parked(&mut conn, "", 40).await;
    (db, conn)
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn stuck_lists_what_each_kind_selects() {
    let (_db, mut conn) = queue().await;
    let all = StuckFilter {
        held_longer_than: Duration::from_secs(3600),
        idle_for: Duration::from_secs(300),
        released_times: 3,
        limit: 1000,
    };
    let s = inspect::stuck(&mut conn, &all).await.unwrap();
    let kinds = [
        (&s.quarantined, "tasks WHERE quarantined IS NOT NULL"),
        (
            &s.output_saved_not_moving,
            "tasks WHERE position_kind = 'AtTask' AND completed \
             AND (claimed_until IS NULL OR claimed_until <= now()) \
             AND queued_at < now() - interval '5 minutes'",
        ),
        (
            &s.overdue_parks,
            "tasks WHERE position_kind IN ('AtDelay', 'AtSignal') \
             AND wake_at < now() - interval '5 minutes'",
        ),
        (
            &s.input_not_ready,
            &format!("tasks WHERE {RUNNABLE} AND NOT input_ready"),
        ),
        (
            &s.repeatedly_released,
            &format!("tasks WHERE {RUNNABLE} AND stalls >= 3"),
        ),
    ];
    for (items, rows) in kinds {
        let got = sorted(items.iter().map(|i| i.instance_id.clone()).collect());
        let want = names(
            &mut conn,
            &format!("SELECT instance_id AS name FROM sayiir.{rows}"),
        )
        .await;
        assert_eq!(got, sorted(want), "{rows}");
        assert!(!got.is_empty(), "{rows}: the data set has some");
    }
    for (items, rows) in [
        (&s.expired_claims, "expires_at <= now()"),
        (
            &s.long_held_claims,
            "claimed_at < now() - interval '1 hour' AND expires_at > now()",
        ),
    ] {
        let got = sorted(items.iter().map(|c| c.instance_id.clone()).collect());
        let want = names(
            &mut conn,
            &format!("SELECT instance_id AS name FROM sayiir.claims WHERE {rows}"),
        )
        .await;
        assert_eq!(got, sorted(want), "{rows}");
        assert!(!got.is_empty(), "{rows}: the data set has some");
    }
    assert!(s.repeatedly_released.iter().all(|t| t.stalls == 4));
    assert!(
        s.quarantined
            .iter()
            .all(|t| t.quarantined.as_deref() == Some("cannot decode"))
    );
    let overdue: Vec<&String> = s
        .overdue_parks
        .iter()
        .filter_map(|t| t.wake_at.as_ref())
        .collect();
    assert!(overdue.windows(2).all(|w| w[0] <= w[1]), "by wake-up time");

    let few = inspect::stuck(
        &mut conn,
        &StuckFilter {
            limit: 2,
            ..all.clone()
        },
    )
    .await
    .unwrap();
    assert_eq!(few.repeatedly_released.len(), 2);
    assert_eq!(few.expired_claims.len(), 2);
    let zero = StuckFilter {
        released_times: 0,
        ..all
    };
    assert!(matches!(
        inspect::stuck(&mut conn, &zero).await,
        Err(sayiir_diesel_dashboard::Error::Input(_))
    ));
}

#[tokio::test]
async fn waiting_rows_come_in_the_finders_order() {
    let (_db, mut conn) = queue().await;
    let want = names(
        &mut conn,
        &format!(
            "SELECT instance_id AS name FROM sayiir.tasks WHERE {RUNNABLE} \
             AND (claimed_until IS NULL OR claimed_until <= now()) ORDER BY priority, aged_from"
        ),
    )
    .await;
    let got: Vec<String> = inspect::waiting(&mut conn, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.instance_id)
        .collect();
    assert_eq!(got, want);
    let first = inspect::waiting(&mut conn, 5).await.unwrap();
    assert_eq!(first.len(), 5);
    assert_eq!(first[0].instance_id, want[0]);
    assert!(first.iter().all(|w| w.priority == 1 && w.waiting_ms >= 0));
    assert!(inspect::waiting(&mut conn, -1).await.is_err());
}

#[tokio::test]
async fn parked_rows_come_by_wake_up_time() {
    let (_db, mut conn) = queue().await;
    let want = names(
        &mut conn,
        "SELECT instance_id AS name FROM sayiir.tasks \
         WHERE position_kind IN ('AtDelay', 'AtSignal') \
         ORDER BY wake_at NULLS LAST, instance_id COLLATE \"C\"",
    )
    .await;
    let parked = inspect::parked(&mut conn, 1000).await.unwrap();
    let got: Vec<String> = parked.iter().map(|p| p.instance_id.clone()).collect();
    assert_eq!(got, want);
    assert!(
        parked
            .iter()
            .all(|p| (p.kind == "AtSignal") == p.signal_name.is_some())
    );
    let ten: Vec<String> = inspect::parked(&mut conn, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.instance_id)
        .collect();
    assert_eq!(ten, want[..10]);
}
