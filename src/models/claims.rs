//! `sayiir.claims`: at most one claim per instance, the worker running its
//! current task. A claim is **live** while `expires_at` is null (never
//! expires) or in the future ([`claim_is_live`], the one definition); an
//! expired row is dead weight any claimer may replace. The queue row mirrors the expiry in `tasks.claimed_until` so
//! the finder never reads this table.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sayiir_core::TaskId;

use crate::error::Result;
use crate::kinds::Status;
use crate::queries::Raw;
use crate::schema::sayiir::{claims, workflows};

diesel::define_sql_function! {
    /// `sayiir.claim_is_live(expires_at)`: whether a claim with this expiry
    /// holds its instance now (it never expires, or expires in the future,
    /// on the database clock). The one definition of a live claim, a SQL
    /// function created by our migrations that every statement calls; use
    /// it in your own queries too, e.g.
    /// `claims::table.filter(claim_is_live(claims::expires_at))`.
    #[sql_name = "sayiir.claim_is_live"]
    fn claim_is_live(expires_at: Nullable<Timestamptz>) -> Bool;
}

/// Takes the claim: one statement that locks the workflow row, checks the
/// task is still runnable, and inserts or replaces an expired claim.
pub(crate) const CLAIM: &str = include_str!("claims/claim.sql");

/// The lines of [`CLAIM`] that refuse a task whose output is recorded or a
/// copy read at an older revision.
const CHECKS: &str = "               AND NOT ($2 = ANY (members))
               AND ($5::int8 IS NULL OR revision = $5::int8) AS runnable,";

/// [`CLAIM`] without its recorded-output and revision checks, built once.
/// Compiled in only with the hidden feature `break-claim-check`, for the
/// soak's proof that it catches the steps this lets run twice (see
/// `examples/soak`). Never enable it otherwise.
#[cfg_attr(not(feature = "break-claim-check"), allow(dead_code))]
fn unchecked_claim() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        CLAIM.replace(
            CHECKS,
            "               AND ($5::int8 IS NULL OR true) AS runnable,",
        )
    })
}

/// The claim statement this build runs.
fn claim_statement() -> &'static str {
    if cfg!(feature = "break-claim-check") {
        unchecked_claim()
    } else {
        CLAIM
    }
}
/// Deletes the worker's claim and backs a stalled task off.
pub(crate) const RELEASE: &str = include_str!("claims/release.sql");
/// Moves the worker's claim's expiry on.
pub(crate) const EXTEND: &str = include_str!("claims/extend.sql");

/// A task claim (`sayiir.claims`); `expires_at` `None` never expires.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = claims, check_for_backend(diesel::pg::Pg))]
pub struct Claim {
    /// Instance id (one live claim per instance).
    pub instance_id: String,
    /// Claimed task id.
    pub task_id: Vec<u8>,
    /// Worker holding it.
    pub worker_id: String,
    /// Server time of the claim.
    pub claimed_at: DateTime<Utc>,
    /// Server time it expires at.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What [`claim`] found and did.
#[derive(Debug, QueryableByName)]
pub(crate) struct ClaimOutcome {
    /// The workflow exists.
    #[diesel(sql_type = Bool)]
    pub found: bool,
    /// The workflow is at that task and may be claimed (a refusal then
    /// means another live claim holds it).
    #[diesel(sql_type = Bool)]
    pub runnable: bool,
    /// The worker whose expired claim was on record (a claim taken
    /// replaced it).
    #[diesel(sql_type = Nullable<Text>)]
    pub expired_holder: Option<String>,
    /// The task of that expired claim.
    #[diesel(sql_type = Nullable<Bytea>)]
    pub expired_task: Option<Vec<u8>>,
    /// Epoch seconds of the claim taken, `None` when refused.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub claimed_at: Option<i64>,
    /// Epoch seconds it expires at (`None`: never, or refused).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub expires_at: Option<i64>,
}

/// What [`release`] and [`extend`] matched.
#[derive(Debug, QueryableByName)]
pub(crate) struct ClaimChange {
    /// Claims of this worker on this task changed (0 or 1).
    #[diesel(sql_type = BigInt)]
    pub matched: i64,
    /// Wakeups the statement issued (`release` only).
    #[diesel(sql_type = BigInt)]
    pub woke: i64,
    /// The worker holding the instance's claim after the statement.
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
}

/// Claims `task_id` of the instance for `worker_id`, for `ttl_ms`
/// milliseconds (`None`: never expires), in one statement. Refused (no
/// `claimed_at`) when the workflow is not InProgress at that task, the
/// task's output is already recorded, `seen_revision` is set and the
/// workflow has moved past it, or another live claim holds the instance.
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
    worker_id: &str,
    ttl_ms: Option<i64>,
    seen_revision: Option<i64>,
) -> Result<ClaimOutcome> {
    Ok(Raw::new(claim_statement())
        .bind::<Text, _>(instance_id)
        .bind::<Bytea, _>(task_id.as_bytes().as_slice())
        .bind::<Text, _>(worker_id)
        .bind::<Nullable<BigInt>, _>(ttl_ms)
        .bind::<Nullable<BigInt>, _>(seen_revision)
        .get_result(conn)
        .await?)
}

/// Deletes the worker's claim on the task; when nothing was saved since the
/// claim, backs the task off and marks the worker so another is preferred;
/// wakes a worker when the task is runnable. One statement.
pub(crate) async fn release(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
    worker_id: &str,
) -> Result<ClaimChange> {
    Ok(Raw::new(RELEASE)
        .bind::<Text, _>(instance_id)
        .bind::<Bytea, _>(task_id.as_bytes().as_slice())
        .bind::<Text, _>(worker_id)
        .get_result(conn)
        .await?)
}

/// Adds `additional_ms` to the worker's claim's expiry (a claim that never
/// expires stays so). One statement.
pub(crate) async fn extend(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    task_id: TaskId,
    worker_id: &str,
    additional_ms: i64,
) -> Result<ClaimChange> {
    Ok(Raw::new(EXTEND)
        .bind::<Text, _>(instance_id)
        .bind::<Bytea, _>(task_id.as_bytes().as_slice())
        .bind::<Text, _>(worker_id)
        .bind::<BigInt, _>(additional_ms)
        .get_result(conn)
        .await?)
}

/// Whether `worker_id` still has a claim row on the instance, live or not
/// (a release whose commit is in doubt landed when it has none).
pub(crate) async fn held_by(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
    worker_id: &str,
) -> Result<bool> {
    let rows: i64 = claims::table
        .filter(claims::instance_id.eq(instance_id))
        .filter(claims::worker_id.eq(worker_id))
        .count()
        .get_result(conn)
        .await?;
    Ok(rows > 0)
}

/// The task and worker of the claim on the instance, live or not; `None`
/// when there is none. Read in a statement of its own after the workflow
/// row is locked, it sees every claim committed before (`store::retry`).
pub(crate) async fn holder(
    conn: &mut AsyncPgConnection,
    instance_id: &str,
) -> Result<Option<(TaskId, String)>> {
    let row: Option<(Vec<u8>, String)> = claims::table
        .find(instance_id)
        .select((claims::task_id, claims::worker_id))
        .first(conn)
        .await
        .optional()?;
    row.map(|(task, worker)| Ok((crate::codec::task_id(&task)?, worker)))
        .transpose()
}

/// Whether a live claim holds the instance.
pub(crate) async fn is_live(conn: &mut AsyncPgConnection, instance_id: &str) -> Result<bool> {
    let live: i64 = claims::table
        .filter(claims::instance_id.eq(instance_id))
        .filter(claim_is_live(claims::expires_at))
        .count()
        .get_result(conn)
        .await?;
    Ok(live > 0)
}

/// Deletes the expired claims of workflows that are not InProgress
/// (Paused, or finished): their holder died, or saved its last state and
/// then could not release (a lost connection, an exhausted pool). Nothing
/// else removes them: a claim is only taken, and an expired one replaced,
/// on a runnable workflow. One statement over the claims only (no
/// workflow row is locked); a claim a concurrent claimer revives is live
/// again when the delete re-checks it, and stays.
pub(crate) async fn delete_dead_of_stopped_workflows(
    conn: &mut AsyncPgConnection,
) -> Result<usize> {
    Ok(diesel::delete(
        claims::table
            .filter(diesel::dsl::not(claim_is_live(claims::expires_at)))
            .filter(diesel::dsl::exists(
                workflows::table
                    .filter(workflows::instance_id.eq(claims::instance_id))
                    .filter(workflows::status.ne(Status::InProgress)),
            )),
    )
    .execute(conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broken statement the soak must catch is the real one with
    /// exactly its two checks dropped.
    #[test]
    fn the_unchecked_claim_drops_exactly_the_checks() {
        assert!(CLAIM.contains(CHECKS));
        let broken = unchecked_claim();
        assert_ne!(broken, CLAIM);
        assert!(!broken.contains("ANY (members)") && !broken.contains("revision = $5"));
        assert_eq!(broken.lines().count() + 1, CLAIM.lines().count());
        assert_eq!(
            claim_statement() == CLAIM,
            !cfg!(feature = "break-claim-check")
        );
    }
}
