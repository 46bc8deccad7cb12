//! Every read of `inspect` (and `act::count_matching`) reads through
//! indexes, on statistics of empty tables (a fresh deployment, a burst)
//! and again on fresh ones: with its values (run) and as a generic plan
//! (what a statement cached on a long-lived connection may get), no
//! sequential scan of workflows, history or tasks, no bitmap scan of them
//! (it reads every matching row before the `LIMIT`), no sort of what they
//! read (but a few rows), each statement's expected index, and scans that
//! read a page or a capped count per loop, not a table.

mod common;

use std::time::Duration;

use common::*;
use diesel_async::AsyncPgConnection;
use sayiir_diesel::Status;
use sayiir_diesel_dashboard::inspect::{COUNT_CAP, ListFilter, StuckFilter};
use sayiir_diesel_dashboard::plans::{self, Plan};
use sayiir_diesel_testkit::TestDatabase;

/// The tables whose scans must be bounded.
const BIG: [&str; 3] = ["workflows", "history", "tasks"];

/// The statements that sort: the rows of one instance, the 61 minutes of
/// the chart, the claims (as many as tasks are held).
const SORTED: [&str; 5] = [
    "show: outputs",
    "show: output previews",
    "show: requests",
    "finished per minute",
    "stuck: long-held claims",
];

/// 5000 finished workflows (15 000 history rows), 2000 queued, 500 parked
/// at a delay and 500 at a signal, loaded after the statistics were taken.
async fn loaded() -> (TestDatabase, AsyncPgConnection) {
    let db = test_db().await;
    let mut conn = connect(&db).await;
    stale_statistics(&mut conn).await;
    finished(&mut conn, "", 5000, SPAN).await;
    running(&mut conn, "", 2000).await;
    parked(&mut conn, "", 500).await;
    (db, conn)
}

/// What one statement may do: read at most `per_loop` rows of a big table
/// per loop (when run), and read `index` (when given).
struct Expect {
    per_loop: f64,
    index: Option<&'static str>,
}

fn expect(per_loop: i64, index: Option<&'static str>) -> Expect {
    #[allow(clippy::cast_precision_loss)]
    Expect {
        per_loop: per_loop as f64,
        index,
    }
}

/// Checks each plan against what `expected` says of its statement, and
/// prints a one-line summary of each.
fn assert_bounded(state: &str, plans: &[Plan], expected: impl Fn(&str) -> Expect) {
    assert!(!plans.is_empty());
    for plan in plans {
        let how = if plan.generic { "generic" } else { "custom" };
        let nodes = nodes(&plan.json);
        let pretty = || serde_json::to_string_pretty(&nodes).unwrap();
        let summary: Vec<String> = nodes
            .iter()
            .filter(|n| !text(n, "Relation Name").is_empty())
            .map(|n| {
                format!(
                    "{} {} {} ({} rows)",
                    text(n, "Node Type"),
                    text(n, "Relation Name"),
                    text(n, "Index Name"),
                    rows_read(n)
                )
            })
            .collect();
        eprintln!("{state}, {how}, {}: {}", plan.name, summary.join(" / "));
        let want = expected(plan.name);
        for node in &nodes {
            assert!(
                !text(node, "Node Type").contains("Sort") || SORTED.contains(&plan.name),
                "{state}, {how}, {} sorts:\n{}",
                plan.name,
                pretty()
            );
            let relation = text(node, "Relation Name");
            if !BIG.contains(&relation.as_str()) {
                continue;
            }
            let kind = text(node, "Node Type");
            assert!(
                kind != "Seq Scan" && kind != "Bitmap Heap Scan",
                "{state}, {how}, {}: {kind} of {relation}:\n{}",
                plan.name,
                pretty()
            );
            let loops = number(node, "Actual Loops").max(1.0);
            assert!(
                rows_read(node) / loops <= want.per_loop,
                "{state}, {how}, {}: {} rows of {relation} per loop (at most {}):\n{}",
                plan.name,
                rows_read(node) / loops,
                want.per_loop,
                pretty()
            );
        }
        if let Some(index) = want.index {
            assert!(
                nodes.iter().any(|n| text(n, "Index Name") == index),
                "{state}, {how}, {} reads {index}:\n{}",
                plan.name,
                pretty()
            );
        }
    }
}

/// Runs `check` on stale statistics, then again after `VACUUM ANALYZE`.
async fn on_stale_then_fresh_statistics(check: impl AsyncFn(&str, &mut AsyncPgConnection)) {
    let (_db, mut conn) = loaded().await;
    check("stale statistics", &mut conn).await;
    analyse(&mut conn).await;
    check("fresh statistics", &mut conn).await;
}

#[tokio::test]
async fn the_overview_counts_through_indexes() {
    on_stale_then_fresh_statistics(async |state, conn| {
        let plans = plans::overview_plans(conn).await.unwrap();
        assert_bounded(state, &plans, |_| {
            expect(COUNT_CAP + 1, Some("workflows_status_instance_idx"))
        });
        for index in ["tasks_runnable_idx", "tasks_parked_idx", "tasks_pkey"] {
            assert!(
                plans.iter().all(|p| p.json.contains(index)),
                "{state}: the overview reads {index}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn the_chart_counts_each_minute_through_the_status_index() {
    on_stale_then_fresh_statistics(async |state, conn| {
        let plans = plans::chart_plans(conn).await.unwrap();
        assert_bounded(state, &plans, |_| {
            expect(COUNT_CAP + 1, Some("workflows_status_updated_at_idx"))
        });
    })
    .await;
}

/// Filters that are an index range, and filters checked on a window.
fn list_filters() -> Vec<(ListFilter, i64, &'static str)> {
    let page = |f: ListFilter| (f, 51, "workflows_status_instance_idx");
    vec![
        page(ListFilter {
            status: Some(Status::Completed),
            ..ListFilter::default()
        }),
        page(ListFilter {
            status: Some(Status::Failed),
            after: Some("done-0002000".to_owned()),
            ..ListFilter::default()
        }),
        page(ListFilter {
            status: Some(Status::Completed),
            prefix: Some("done-00012".to_owned()),
            ..ListFilter::default()
        }),
        (
            ListFilter {
                prefix: Some("run-".to_owned()),
                ..ListFilter::default()
            },
            51,
            "workflows_instance_bytes_idx",
        ),
        (
            ListFilter {
                tag: Some("gpu".to_owned()),
                ..ListFilter::default()
            },
            COUNT_CAP,
            "workflows_instance_bytes_idx",
        ),
        (
            ListFilter {
                status: Some(Status::Completed),
                older_than: Some(Duration::from_secs(30 * 60)),
                definition: Some(vec![0; 32]),
                ..ListFilter::default()
            },
            COUNT_CAP,
            "workflows_status_instance_idx",
        ),
    ]
}

#[tokio::test]
async fn list_pages_read_a_page_or_a_window() {
    on_stale_then_fresh_statistics(async |state, conn| {
        for (filter, per_loop, index) in list_filters() {
            let plans = plans::list_plans(conn, &filter).await.unwrap();
            assert_bounded(&format!("{state}, {filter:?}"), &plans, |name| {
                // The tag's probes of the queue read one row each.
                expect(per_loop, (name != "list: window").then_some(index))
            });
        }
    })
    .await;
}

#[tokio::test]
async fn counting_a_filter_stops_at_the_cap() {
    on_stale_then_fresh_statistics(async |state, conn| {
        for (filter, _, index) in list_filters() {
            let plans = plans::count_matching_plans(conn, &filter).await.unwrap();
            assert_bounded(&format!("{state}, {filter:?}"), &plans, |_| {
                expect(COUNT_CAP + 1, Some(index))
            });
        }
    })
    .await;
}

#[tokio::test]
async fn show_reads_one_instance_by_key() {
    on_stale_then_fresh_statistics(async |state, conn| {
        for id in ["done-0000004", "run-0000020", "wait-0000003"] {
            let plans = plans::show_plans(conn, id).await.unwrap();
            assert_bounded(&format!("{state}, {id}"), &plans, |name| {
                let index = match name {
                    "show: workflow" => Some("workflows_pkey"),
                    "show: queue row" => Some("tasks_pkey"),
                    "show: history entries" | "show: history" => Some("history_pkey"),
                    "show: buffered events" => Some("events_queue_idx"),
                    _ => None,
                };
                expect(10, index)
            });
        }
    })
    .await;
}

#[tokio::test]
async fn stuck_walks_one_index_per_kind() {
    on_stale_then_fresh_statistics(async |state, conn| {
        let filter = StuckFilter {
            limit: 20,
            ..StuckFilter::default()
        };
        let plans = plans::stuck_plans(conn, &filter).await.unwrap();
        assert_bounded(state, &plans, |name| {
            let index = match name {
                "stuck: quarantined" => Some("tasks_quarantined_idx"),
                "stuck: output saved, not moving" => Some("tasks_recovery_idx"),
                "stuck: overdue parks" => Some("tasks_wake_at_idx"),
                "stuck: input not ready" => Some("tasks_input_not_ready_idx"),
                "stuck: repeatedly released" => Some("tasks_stalled_idx"),
                _ => None,
            };
            // The limit, and the rows a walk passes over (claimed, or
            // released fewer times than asked).
            expect(2 * 20, index)
        });
    })
    .await;
}

#[tokio::test]
async fn the_queue_lists_walk_their_indexes() {
    on_stale_then_fresh_statistics(async |state, conn| {
        let plans = plans::queue_plans(conn, 20).await.unwrap();
        assert_bounded(state, &plans, |name| {
            let index = if name == "queue: waiting" {
                "tasks_runnable_idx"
            } else {
                "tasks_parked_idx"
            };
            // Waiting rows: the limit and the running rows passed over.
            expect(2 * 20, Some(index))
        });
    })
    .await;
}
