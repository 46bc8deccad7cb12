//! The application side of `examples/report.rs`, shared with
//! `tests/report.rs`: an `orders` table of the application's own (its own
//! Diesel migration, in its own schema), a fulfilment workflow per order,
//! and one typed query that joins the orders with `sayiir.workflows`.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder, WorkflowStatus};
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_diesel::{DieselBackend, Status};
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Backend = DieselBackend<JsonCodec>;

/// The application's migrations (its bookkeeping stays in
/// `public.__diesel_schema_migrations`; sayiir's is in schema `sayiir`).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("examples/report/migrations");

/// Where [`MIGRATIONS`] come from, to key a test template by them.
#[allow(dead_code)] // the example does not use it, tests/report.rs does
pub const MIGRATIONS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/report/migrations");

diesel::table! {
    /// The application's orders (`examples/report/migrations`).
    orders (id) {
        id -> Int8,
        customer -> Text,
        amount_cents -> Int8,
        workflow_instance_id -> Text,
        placed_at -> Timestamptz,
    }
}

// The application's table points at ours: declared on the application's
// side, so `orders::table.left_join(workflows::table)` needs no `ON` clause.
diesel::joinable!(orders -> workflows (workflow_instance_id));

// What `allow_tables_to_appear_in_same_query!(orders, workflows)` would say.
// The macro cannot be used across crates: it also implements the trait for
// `Only<orders::table>` and `Tablesample<orders::table>` on our table, which
// the orphan rule forbids outside Diesel's crate or ours. These two are all
// a join needs.
impl diesel::query_source::TableNotEqual<orders::table> for workflows::table {}
impl diesel::query_source::TableNotEqual<workflows::table> for orders::table {}

/// Runs the application's pending migrations on the database at `url`.
///
/// # Errors
/// When the database cannot be reached or a migration fails.
pub async fn migrate(url: &str) -> Result<(), Error> {
    let conn = AsyncPgConnection::establish(url).await?;
    // The harness is synchronous: run it off the async threads.
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        conn.run_pending_migrations(MIGRATIONS).map(|_| ())
    })
    .await?
}

/// One order, as the application stores it.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct Order {
    pub id: i64,
    pub customer: String,
    pub amount_cents: i64,
    pub workflow_instance_id: String,
}

/// What the report shows of an order's workflow, read from `sayiir.workflows`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = workflows, check_for_backend(diesel::pg::Pg))]
pub struct WorkflowState {
    pub status: Status,
    /// Where an unfinished workflow stands (`AtTask`, `AtDelay`, `AtSignal`).
    pub position_kind: Option<String>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The report: every order with the state of its workflow (`None` when the
/// workflow is gone, for example pruned by retention), in order of id. One
/// statement: the application's `orders` left-joined with `sayiir.workflows`.
///
/// # Errors
/// Database errors.
pub async fn orders_with_workflow_state(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(Order, Option<WorkflowState>)>> {
    orders::table
        .left_join(workflows::table)
        .order(orders::id)
        .select((Order::as_select(), Option::<WorkflowState>::as_select()))
        .load(conn)
        .await
}

/// The fulfilment of an order: `charge` the amount, wait for the warehouse's
/// `shipped` event (its payload, the parcel number, is the next input:
/// an `i64` like the output it replaces),
/// then `notify` the customer.
pub fn fulfilment() -> Result<Workflow<JsonCodec, i64>, Error> {
    let ctx = WorkflowContext::new("fulfilment", Arc::new(JsonCodec), Arc::new(()));
    WorkflowBuilder::new(ctx)
        .then("charge", |cents: i64| async move { Ok(cents) })
        .wait_for_signal("shipped", "shipped", None)
        .then("notify", |parcel: i64| async move {
            Ok(format!("parcel {parcel} is on its way"))
        })
        .build()
        .map_err(|e| format!("{e:?}").into())
}

/// Places an order: the application's row, then its workflow, submitted
/// under the instance id the row names.
///
/// # Errors
/// Database errors, or the submission's.
pub async fn place_order(
    backend: &Backend,
    wf: &Workflow<JsonCodec, i64>,
    customer: &str,
    amount_cents: i64,
) -> Result<Order, Error> {
    let mut conn = backend.pool().get().await?;
    let instance = format!("order-{customer}");
    let order: Order = diesel::insert_into(orders::table)
        .values((
            orders::customer.eq(customer),
            orders::amount_cents.eq(amount_cents),
            orders::workflow_instance_id.eq(&instance),
        ))
        .returning(Order::as_returning())
        .get_result(&mut conn)
        .await?;
    WorkflowClient::new(backend.clone())
        .submit(wf, &instance, amount_cents)
        .await?;
    Ok(order)
}

/// Places three orders and runs them on two `PooledWorker`s until each is
/// settled: `ada`'s parcel ships (Completed), `bob` cancels while waiting
/// for his (Cancelled), `cyd`'s is still waiting (InProgress, `AtSignal`).
///
/// # Errors
/// Database or runtime errors, or a workflow that does not get there
/// within a minute.
pub async fn run_orders(backend: &Backend) -> Result<Vec<Order>, Error> {
    let wf = Arc::new(fulfilment()?);
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    let workers: Vec<_> = (0..2)
        .map(|i| {
            PooledWorker::new(format!("worker-{i}"), backend.clone(), TaskRegistry::new())
                .with_batch_size(NonZeroUsize::new(4).unwrap_or(NonZeroUsize::MIN))
                .spawn(Duration::from_millis(100), registry.clone())
        })
        .collect();
    let client = WorkflowClient::new(backend.clone());
    let mut placed = Vec::new();
    for (customer, cents) in [("ada", 4_200), ("bob", 1_999), ("cyd", 12_500)] {
        let order = place_order(backend, &wf, customer, cents).await?;
        wait_until(&client, &order.workflow_instance_id, |s| {
            matches!(s, WorkflowStatus::AwaitingSignal { .. })
        })
        .await?;
        placed.push(order);
    }
    let parcel = serde_json::to_vec(&7_001i64)?;
    client
        .send_event("order-ada", "shipped", Bytes::from(parcel))
        .await?;
    client
        .cancel(
            "order-bob",
            Some("changed my mind".into()),
            Some("bob".into()),
        )
        .await?;
    wait_until(&client, "order-ada", |s| {
        matches!(s, WorkflowStatus::Completed)
    })
    .await?;
    wait_until(&client, "order-bob", |s| {
        matches!(s, WorkflowStatus::Cancelled { .. })
    })
    .await?;
    for w in &workers {
        w.shutdown();
    }
    for w in workers {
        w.join().await?;
    }
    Ok(placed)
}

async fn wait_until(
    client: &WorkflowClient<Backend>,
    id: &str,
    done: impl Fn(&WorkflowStatus) -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = client.status(id).await?;
        if done(&status) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{id} is still {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
