//! The two backends under test behind one trait: how each connects, which
//! tables it keeps its rows in, and what counters it reports after a run.

use std::future::Future;
use std::time::Duration;

use sayiir_diesel::DieselBackend;
use sayiir_persistence::{PersistentBackend, TaskClaimStore};
use sayiir_postgres::{PoolOptions, PostgresBackend};
use sayiir_runtime::serialization::JsonCodec;

use crate::Error;

/// A backend under test.
pub trait Backend: PersistentBackend + TaskClaimStore + Clone + Send + Sync + 'static {
    const NAME: &'static str;
    /// Its workflow table (with `status` and `position_kind` columns).
    const TABLE: &'static str;
    /// Every table holding rows of an instance, keyed by `instance_id`,
    /// the workflow table first and each table after those it references
    /// (the order `--scale` copies template rows in).
    const TABLES: &'static [&'static str];
    /// The table of task outputs (`--scale` copies finished workflows'
    /// outputs too, so the finder's output reads meet a realistic table).
    const OUTPUTS_TABLE: &'static str;
    /// The wake time of the earliest parked delay (`--scale` dispatch).
    const FIRST_WAKE_SQL: &'static str;
    /// A `LIKE` pattern matching its claim statement, and only that, in
    /// `pg_stat_statements` (claims attempted per step: the herd figure).
    const CLAIM_LIKE: &'static str;
    /// Connects with a pool of `pool` connections, migrating if needed.
    fn open(url: &str, pool: usize) -> impl Future<Output = Result<Self, Error>>;
    /// The instance `--scale` times the finder on: repeated calls by one
    /// worker must see the same queue (ours: no offer lease).
    fn open_finder(url: &str, pool: usize) -> impl Future<Output = Result<Self, Error>> {
        Self::open(url, pool)
    }
    /// Backend counters worth printing after a run.
    fn note(&self) -> String;
}

impl Backend for DieselBackend<JsonCodec> {
    const NAME: &'static str = "diesel";
    const TABLE: &'static str = "sayiir.workflows";
    const TABLES: &'static [&'static str] = &[
        "sayiir.workflows",
        "sayiir.task_outputs",
        "sayiir.history",
        "sayiir.tasks",
    ];
    const OUTPUTS_TABLE: &'static str = "sayiir.task_outputs";
    const FIRST_WAKE_SQL: &'static str =
        "SELECT min(wake_at) AS t FROM sayiir.tasks WHERE position_kind = 'AtDelay'";
    /// src/models/claims/claim.sql (the one statement that inserts a claim).
    const CLAIM_LIKE: &'static str = "%INSERT INTO sayiir.claims AS c%";

    async fn open(url: &str, pool: usize) -> Result<Self, Error> {
        Ok(DieselBackend::builder(url)
            .max_connections(pool)
            .build()
            .await?)
    }

    /// No offer lease: the timed calls (one worker id) find the same
    /// 8 picks every time, as sayiir-postgres's finder does (neither
    /// finder claims), and no pick is held back from anyone.
    async fn open_finder(url: &str, pool: usize) -> Result<Self, Error> {
        Ok(DieselBackend::builder(url)
            .max_connections(pool)
            .offer_lease(Duration::ZERO)
            .build()
            .await?)
    }

    fn note(&self) -> String {
        let m = self.metrics();
        format!(
            "advanced {} recovered {} retries {} wakeups {} dropped {} reconnects {}",
            m.advanced,
            m.recovered,
            m.retries,
            m.wakeups_delivered,
            m.wakeups_dropped,
            m.listener_reconnects
        )
    }
}

impl Backend for PostgresBackend<JsonCodec> {
    const NAME: &'static str = "postgres";
    const TABLE: &'static str = "sayiir_workflow_snapshots";
    const TABLES: &'static [&'static str] = &[
        "sayiir_workflow_snapshots",
        "sayiir_workflow_snapshot_history",
        "sayiir_workflow_tasks",
    ];
    const OUTPUTS_TABLE: &'static str = "sayiir_workflow_tasks";
    const FIRST_WAKE_SQL: &'static str = "SELECT min(delay_wake_at) AS t \
         FROM sayiir_workflow_snapshots WHERE position_kind = 'AtDelay'";
    /// `claim_task` in sayiir-postgres 1.0's task_claim_store.rs (its one
    /// insert into the claims table).
    const CLAIM_LIKE: &'static str = "%INSERT INTO sayiir\\_workflow\\_claims%";

    async fn open(url: &str, pool: usize) -> Result<Self, Error> {
        let options = PoolOptions {
            max_connections: Some(u32::try_from(pool)?),
            ..PoolOptions::default()
        };
        Ok(PostgresBackend::connect_with_options(url, options).await?)
    }

    fn note(&self) -> String {
        format!(
            "wakeup drops (process total) {}",
            sayiir_postgres::wakeup_drops_total()
        )
    }
}
