//! `examples/report.rs`'s query, on real workflows: the application's own
//! `orders` table (its own migration, beside ours) joined with
//! `sayiir.workflows` in one typed query shows each order with the state of
//! its workflow.

#[path = "../examples/report/app.rs"]
mod app;

use std::path::Path;

use app::{Order, WorkflowState};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::Status;

/// What the test looks at in a workflow's state: its status, where it
/// stands, and whether it has finished.
type Seen<'a> = (Status, Option<&'a str>, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_order_shows_the_state_of_its_workflow() {
    let db = sayiir_diesel_testkit::sayiir_database_with(
        Path::new(app::MIGRATIONS_DIR),
        |url| async move { app::migrate(&url).await },
    )
    .await
    .unwrap();
    let backend = app::Backend::builder(db.url())
        .recovery_grace(std::time::Duration::from_millis(200))
        .build()
        .await
        .unwrap();
    let placed = app::run_orders(&backend).await.unwrap();

    let mut conn = backend.pool().get().await.unwrap();
    let report = app::orders_with_workflow_state(&mut conn).await.unwrap();

    let orders: Vec<&Order> = report.iter().map(|(order, _)| order).collect();
    assert_eq!(
        orders,
        placed.iter().collect::<Vec<_>>(),
        "every order, by id"
    );
    let states: Vec<(&str, Option<Seen>)> = report
        .iter()
        .map(|(order, state)| {
            let state = state.as_ref().map(|s: &WorkflowState| {
                (
                    s.status,
                    s.position_kind.as_deref(),
                    s.finished_at.is_some(),
                )
            });
            (order.customer.as_str(), state)
        })
        .collect();
    assert_eq!(
        states,
        [
            ("ada", Some((Status::Completed, None, true))),
            ("bob", Some((Status::Cancelled, None, true))),
            ("cyd", Some((Status::InProgress, Some("AtSignal"), false))),
        ]
    );
}

#[tokio::test]
async fn an_order_whose_workflow_is_gone_still_shows() {
    let db = sayiir_diesel_testkit::sayiir_database_with(
        Path::new(app::MIGRATIONS_DIR),
        |url| async move { app::migrate(&url).await },
    )
    .await
    .unwrap();
    let backend = app::Backend::connect(db.url()).await.unwrap();
    let mut conn = backend.pool().get().await.unwrap();
    diesel::insert_into(app::orders::table)
        .values((
            app::orders::customer.eq("dee"),
            app::orders::amount_cents.eq(300),
            app::orders::workflow_instance_id.eq("order-dee"),
        ))
        .execute(&mut conn)
        .await
        .unwrap();

    let report = app::orders_with_workflow_state(&mut conn).await.unwrap();

    assert_eq!(report.len(), 1);
    assert_eq!(report[0].0.customer, "dee");
    assert_eq!(
        report[0].1, None,
        "no workflow row: a left join keeps the order"
    );
}
