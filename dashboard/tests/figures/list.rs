//! `list` and `count_matching` against the tables: every page, in byte
//! order, for each kind of filter.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use sayiir_diesel::Status;
use sayiir_diesel_dashboard::{act, inspect};

use crate::common::*;
use inspect::ListFilter;

/// The ids `filter` lists, page by page (7 a page).
async fn every_page(conn: &mut AsyncPgConnection, filter: &ListFilter) -> Vec<String> {
    let mut f = ListFilter {
        limit: 7,
        ..filter.clone()
    };
    let mut ids = Vec::new();
    loop {
        let page = inspect::list(conn, &f).await.unwrap();
        assert!(page.workflows.len() <= 7);
        ids.extend(page.workflows.into_iter().map(|w| w.instance_id));
        match page.next_after {
            Some(after) => f.after = Some(after),
            None => return ids,
        }
    }
}

/// Filters and the `WHERE` of the workflows each matches.
fn cases() -> Vec<(ListFilter, &'static str)> {
    let f = ListFilter::default;
    vec![
        (f(), "true"),
        (
            ListFilter {
                status: Some(Status::Failed),
                ..f()
            },
            "status = 'Failed'",
        ),
        (
            ListFilter {
                prefix: Some("run-00001".into()),
                ..f()
            },
            "instance_id LIKE 'run-00001%'",
        ),
        (
            ListFilter {
                status: Some(Status::InProgress),
                prefix: Some("wa".into()),
                ..f()
            },
            "status = 'InProgress' AND instance_id LIKE 'wa%'",
        ),
        (
            ListFilter {
                tag: Some("gpu".into()),
                ..f()
            },
            "instance_id IN (SELECT instance_id FROM sayiir.tasks WHERE tags @> ARRAY['gpu'])",
        ),
        (
            ListFilter {
                older_than: Some(Duration::from_secs(30 * 60)),
                ..f()
            },
            "created_at < now() - interval '30 minutes'",
        ),
        (
            ListFilter {
                newer_than: Some(Duration::from_secs(30 * 60)),
                status: Some(Status::Completed),
                ..f()
            },
            "created_at >= now() - interval '30 minutes' AND status = 'Completed'",
        ),
        (
            ListFilter {
                definition: Some(vec![0; 32]),
                ..f()
            },
            "false",
        ),
        (
            ListFilter {
                after: Some("nap-0000029".into()),
                ..f()
            },
            "instance_id COLLATE \"C\" > 'nap-0000029'",
        ),
    ]
}

#[tokio::test]
async fn pages_and_counts_hold_what_each_filter_matches() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    finished(&mut conn, "", 120, SPAN).await;
    running(&mut conn, "", 150).await;
    parked(&mut conn, "", 30).await;
    for (filter, matching) in cases() {
        let want = names(
            &mut conn,
            &format!(
                "SELECT instance_id AS name FROM sayiir.workflows WHERE {matching} \
                 ORDER BY instance_id COLLATE \"C\""
            ),
        )
        .await;
        assert_eq!(every_page(&mut conn, &filter).await, want, "{filter:?}");
        #[allow(clippy::cast_possible_wrap)]
        let counted = act::count_matching(&mut conn, &filter).await.unwrap();
        assert_eq!(counted, want.len() as i64, "{filter:?}");
    }
}

#[tokio::test]
async fn an_item_shows_the_columns() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    running(&mut conn, "", 3).await;
    let page = inspect::list(&mut conn, &ListFilter::default())
        .await
        .unwrap();
    assert_eq!(page.next_after, None);
    let first = &page.workflows[0];
    assert_eq!(first.instance_id, "run-0000001");
    assert_eq!(first.status, "InProgress");
    assert_eq!(first.position.as_deref(), Some("AtTask"));
    assert_eq!(
        first.definition,
        names(
            &mut conn,
            "SELECT encode(sha256('dashboard-test'::bytea), 'hex') AS name",
        )
        .await[0]
    );
    assert_eq!(first.revision, 1);
    assert!(first.created_at < first.updated_at, "{first:?}");
    let json = serde_json::to_value(&page).unwrap();
    assert_eq!(
        json["workflows"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [
            "created_at",
            "definition",
            "instance_id",
            "position",
            "revision",
            "status",
            "updated_at"
        ]
    );
}

#[tokio::test]
async fn bad_filters_are_input_errors() {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    for filter in [
        ListFilter {
            limit: 0,
            ..ListFilter::default()
        },
        ListFilter {
            limit: inspect::MAX_LIMIT + 1,
            ..ListFilter::default()
        },
        ListFilter {
            older_than: Some(Duration::MAX),
            ..ListFilter::default()
        },
    ] {
        let err = inspect::list(&mut conn, &filter).await.unwrap_err();
        assert!(
            matches!(err, sayiir_diesel_dashboard::Error::Input(_)),
            "{err}"
        );
    }
}
