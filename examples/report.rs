//! Your tables and ours in one typed Diesel query.
//!
//! `cargo run --example report` uses `DATABASE_URL` when it is set and
//! otherwise a throwaway local PostgreSQL.
//!
//! The application has an `orders` table of its own, created by its own
//! Diesel migration (`examples/report/migrations`), run next to sayiir's.
//! Each order is fulfilled by a workflow run by the real runtime; the report
//! joins `orders` with `sayiir.workflows` to show each order with the state
//! of its workflow. The application's side is `examples/report/app.rs`,
//! which `tests/report.rs` runs too.

#[path = "report/app.rs"]
mod app;

use app::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (url, _throwaway) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None),
        _ => {
            println!("DATABASE_URL is unset: starting a throwaway PostgreSQL…");
            let db = sayiir_diesel_testkit::empty_database().await?;
            (db.url().to_owned(), Some(db))
        }
    };

    // The application's boot: our migrations, then its own.
    sayiir_diesel::migrations::run(&url).await?;
    app::migrate(&url).await?;

    // A short recovery grace: a cancel for a parked workflow applies soon.
    let backend = app::Backend::builder(&url)
        .recovery_grace(std::time::Duration::from_millis(200))
        .build()
        .await?;
    app::run_orders(&backend).await?;

    let mut conn = backend.pool().get().await?;
    println!(
        "{:<4} {:<8} {:>8}  {:<10} {:<20} finished",
        "id", "customer", "cents", "workflow", "status"
    );
    for (order, state) in app::orders_with_workflow_state(&mut conn).await? {
        let (status, finished) = match &state {
            Some(s) => (
                s.position_kind
                    .as_deref()
                    .map_or_else(|| s.status.to_string(), |at| format!("{} {at}", s.status)),
                s.finished_at.map_or_else(String::new, |t| t.to_rfc3339()),
            ),
            None => ("(no workflow)".to_owned(), String::new()),
        };
        println!(
            "{:<4} {:<8} {:>8}  {:<10} {status:<20} {finished}",
            order.id, order.customer, order.amount_cents, order.workflow_instance_id
        );
    }
    Ok(())
}
