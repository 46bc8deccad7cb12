//! The statements of [`show`](super::show) and
//! [`output_previews`](super::output_previews), shared by the reads and
//! their plans: each reads the rows of one instance by key.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{BigInt, Bytea, Text};
use sayiir_diesel::reports::{self, octet_length};
use sayiir_diesel::schema::sayiir::{claims, history, signals, task_outputs, tasks, workflows};

use super::{BUFFERED, ClaimSql, MAX_EVENT_NAMES, RequestSql, TaskSql, WorkflowSql};
use crate::inspect::COUNT_CAP;
use crate::sql::{CountOf, substr};

pub(super) fn workflow(id: &str) -> workflows::BoxedQuery<'_, Pg, WorkflowSql> {
    workflows::table
        .filter(workflows::instance_id.eq(id))
        .select((
            workflows::status,
            workflows::position_kind,
            workflows::current_task_id,
            workflows::definition_hash,
            workflows::revision,
            workflows::created_at,
            workflows::updated_at,
            workflows::finished_at,
            workflows::error,
            workflows::trace_parent,
            octet_length(workflows::snapshot),
        ))
        .into_boxed()
}

pub(super) fn queue_row(id: &str) -> tasks::BoxedQuery<'_, Pg, TaskSql> {
    tasks::table
        .filter(tasks::instance_id.eq(id))
        .select((
            tasks::position_kind,
            tasks::task_id,
            tasks::signal_name,
            tasks::wake_at,
            tasks::completed,
            tasks::input_ready,
            tasks::priority,
            tasks::tags,
            tasks::retry_at,
            tasks::failed_worker,
            tasks::stalls,
            tasks::quarantined,
            tasks::queued_at,
        ))
        .into_boxed()
}

pub(super) fn claim(id: &str) -> claims::BoxedQuery<'_, Pg, ClaimSql> {
    claims::table
        .filter(claims::instance_id.eq(id))
        .select((
            claims::task_id,
            claims::worker_id,
            claims::claimed_at,
            claims::expires_at,
        ))
        .into_boxed()
}

pub(super) fn requests(id: &str) -> signals::BoxedQuery<'_, Pg, RequestSql> {
    signals::table
        .filter(signals::instance_id.eq(id))
        .order(signals::requested_at.asc())
        .select((
            signals::kind,
            signals::reason,
            signals::requested_by,
            signals::requested_at,
        ))
        .into_boxed()
}

pub(super) fn buffered(id: &str) -> BoxedSqlQuery<'_, Pg, SqlQuery> {
    diesel::sql_query(BUFFERED)
        .into_boxed()
        .bind::<Text, _>(id)
        .bind::<BigInt, _>(COUNT_CAP + 1)
        .bind::<BigInt, _>(MAX_EVENT_NAMES)
}

pub(super) fn history_entries(id: &str) -> CountOf<history::BoxedQuery<'_, Pg, BigInt>> {
    CountOf(
        history::table
            .filter(history::instance_id.eq(id))
            .select(history::revision)
            .order(history::revision.asc())
            .limit(COUNT_CAP + 1)
            .into_boxed(),
    )
}

pub(super) fn history(
    id: &str,
    limit: u32,
) -> history::BoxedQuery<'_, Pg, reports::HistorySummaryRow> {
    reports::history_summary(id).limit(i64::from(limit))
}

pub(super) fn previews(id: &str, cap: i32) -> task_outputs::BoxedQuery<'_, Pg, (Bytea, Bytea)> {
    task_outputs::table
        .filter(task_outputs::instance_id.eq(id))
        .select((task_outputs::task_id, substr(task_outputs::output, 1, cap)))
        .order((
            octet_length(task_outputs::output).desc(),
            task_outputs::task_id.asc(),
        ))
        .into_boxed()
}
