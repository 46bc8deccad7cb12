//! The statements of [`list`](super::list) and of `count_matching`: the
//! index range of a filter (status, prefix, cursor), its window, its page
//! and its capped count.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz};
use sayiir_diesel::schema::sayiir::{tasks, workflows};

use super::{Cutoffs, ListFilter, WindowEnd};
use crate::inspect::COUNT_CAP;
use crate::sql::{CountOf, WindowOf, in_bytes};

/// The columns a page reads, as selected and as loaded.
/// The columns a page reads.
const ROW: (
    workflows::instance_id,
    workflows::status,
    workflows::position_kind,
    workflows::definition_hash,
    workflows::revision,
    workflows::created_at,
    workflows::updated_at,
) = (
    workflows::instance_id,
    workflows::status,
    workflows::position_kind,
    workflows::definition_hash,
    workflows::revision,
    workflows::created_at,
    workflows::updated_at,
);

pub(super) type RowSql = (
    Text,
    Text,
    Nullable<Text>,
    Bytea,
    BigInt,
    Timestamptz,
    Timestamptz,
);

type Boxed = workflows::BoxedQuery<'static, Pg>;

pub(super) fn needs_window(filter: &ListFilter) -> bool {
    filter.definition.is_some()
        || filter.tag.is_some()
        || filter.older_than.is_some()
        || filter.newer_than.is_some()
}

/// The workflows in the index range of `filter`: its status, prefix and
/// cursor, in byte order.
///
/// A status is a closed range (`BETWEEN s AND s`) ordered by (status,
/// id), not `status = s` ordered by id: with an equality the planner may
/// page through `workflows_instance_bytes_idx` and filter the status
/// instead, which reads every workflow of the other statuses first when
/// statuses follow id order (the newest ids are the running ones). No
/// other index gives (status, id) order, and the reads run without sorts.
fn ranged(filter: &ListFilter) -> Boxed {
    let mut query = match filter.status {
        Some(status) => workflows::table
            .filter(workflows::status.between(status, status))
            .order((
                workflows::status.asc(),
                in_bytes(workflows::instance_id).asc(),
            ))
            .into_boxed(),
        None => workflows::table
            .order(in_bytes(workflows::instance_id).asc())
            .into_boxed(),
    };
    if let Some(prefix) = filter.prefix.as_deref().filter(|p| !p.is_empty()) {
        query = query.filter(in_bytes(workflows::instance_id).ge(prefix.to_owned()));
        if let Some(end) = prefix_end(prefix) {
            query = query.filter(in_bytes(workflows::instance_id).lt(end));
        }
    }
    if let Some(after) = &filter.after {
        query = query.filter(in_bytes(workflows::instance_id).gt(after.clone()));
    }
    query
}

/// `SELECT count(*), max(id)` of the first [`COUNT_CAP`] ids of the range.
pub(super) fn window_query(
    filter: &ListFilter,
) -> WindowOf<workflows::BoxedQuery<'static, Pg, Text>> {
    WindowOf(
        ranged(filter)
            .select(in_bytes(workflows::instance_id))
            .limit(COUNT_CAP),
    )
}

/// `ranged` with every other condition of `filter`.
fn matching(filter: &ListFilter, cutoffs: &Cutoffs) -> Boxed {
    let mut query = ranged(filter);
    if let Some(hash) = &filter.definition {
        query = query.filter(workflows::definition_hash.eq(hash.clone()));
    }
    if let Some(at) = cutoffs.created_before {
        query = query.filter(workflows::created_at.lt(at));
    }
    if let Some(at) = cutoffs.created_since {
        query = query.filter(workflows::created_at.ge(at));
    }
    if let Some(tag) = &filter.tag {
        // A probe of the workflow's queue row per candidate, never a join
        // the planner could turn into a scan of the queue.
        query = query.filter(
            tasks::table
                .filter(tasks::instance_id.eq(workflows::instance_id))
                .select(tasks::tags)
                .single_value()
                .contains(vec![tag.clone()]),
        );
    }
    query
}

/// The page: `limit + 1` rows of the window (or of the range).
pub(super) fn page(
    filter: &ListFilter,
    cutoffs: &Cutoffs,
    window: Option<&WindowEnd>,
) -> workflows::BoxedQuery<'static, Pg, RowSql> {
    let mut query = matching(filter, cutoffs);
    if let Some(last) = window.and_then(|w| w.last.clone()) {
        query = query.filter(in_bytes(workflows::instance_id).le(last));
    }
    query.select(ROW).limit(i64::from(filter.limit) + 1)
}

/// `SELECT count(*)` of the first [`COUNT_CAP`] + 1 matching workflows.
pub(super) fn count_query(
    filter: &ListFilter,
    cutoffs: &Cutoffs,
) -> CountOf<workflows::BoxedQuery<'static, Pg, Text>> {
    CountOf(
        matching(filter, cutoffs)
            .select(in_bytes(workflows::instance_id))
            .limit(COUNT_CAP + 1),
    )
}

/// The smallest string above every string that starts with `prefix`, in
/// byte order (the last character that can be incremented, incremented);
/// `None` when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_ends_at_its_last_character_incremented() {
        assert_eq!(prefix_end("order-"), Some("order.".to_owned()));
        assert_eq!(prefix_end("a\u{D7FF}"), Some("a\u{E000}".to_owned()));
        assert_eq!(prefix_end("ab\u{10FFFF}"), Some("ac".to_owned()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }
}
