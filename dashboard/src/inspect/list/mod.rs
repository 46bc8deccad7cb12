//! Workflows by filter, a keyset page at a time (the CLI's `list`), in
//! instance id byte order.
//!
//! The status, the id prefix and the cursor are a range of an index of
//! migration 13 (`workflows_status_instance_idx`, or
//! `workflows_instance_bytes_idx` without a status), read in its order, so
//! a page reads `limit + 1` entries. The other conditions (definition, tag,
//! ages) are checked on the rows of that range: to keep such a page
//! bounded too, it looks at a window of at most [`COUNT_CAP`] ids from the
//! cursor; when the window ends before the page is full, the page is
//! shorter and `next_after` is the window's last id (a page can then even
//! be empty with more to come).

mod query;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::Status;
use serde::Serialize;

use super::{COUNT_CAP, server_now};
use crate::Error;
use crate::format::{before, hex, time};
use crate::plans::Planner;
use crate::sql::steer;
use query::{count_query, needs_window, page, window_query};

/// The largest page [`list`] reads.
pub const MAX_LIMIT: u32 = 1000;

/// Which workflows [`list`] answers with, and the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListFilter {
    /// Only workflows in this status.
    #[serde(serialize_with = "status_name")]
    pub status: Option<Status>,
    /// Only workflows of this definition (the raw 32-byte hash).
    pub definition: Option<Vec<u8>>,
    /// Only queued workflows whose task needs this worker tag.
    pub tag: Option<String>,
    /// Only workflows created longer ago than this (server clock).
    pub older_than: Option<std::time::Duration>,
    /// Only workflows created within this (server clock).
    pub newer_than: Option<std::time::Duration>,
    /// Only instance ids starting with this (byte by byte).
    pub prefix: Option<String>,
    /// Start after this instance id: the previous page's
    /// [`Page::next_after`].
    pub after: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: u32,
}

impl Default for ListFilter {
    /// Every workflow, the first page of 50.
    fn default() -> Self {
        Self {
            status: None,
            definition: None,
            tag: None,
            older_than: None,
            newer_than: None,
            prefix: None,
            after: None,
            limit: 50,
        }
    }
}

/// A status as its name (`Status` itself is not `Serialize`).
#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)] // the signature serde calls
fn status_name<S: serde::Serializer>(status: &Option<Status>, out: S) -> Result<S::Ok, S::Error> {
    status.map(Status::as_str).serialize(out)
}

/// One page of [`list`].
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// The workflows, in instance id byte order.
    pub workflows: Vec<Item>,
    /// Pass as [`ListFilter::after`] for the next page; `None` on the last
    /// one.
    pub next_after: Option<String>,
}

/// One listed workflow (never its snapshot).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Instance id.
    pub instance_id: String,
    /// Its status.
    pub status: &'static str,
    /// Where it stands (`None` once finished).
    pub position: Option<String>,
    /// Its definition's hash, in hex.
    pub definition: String,
    /// Accepted writes so far.
    pub revision: i64,
    /// First write (RFC 3339, UTC).
    pub created_at: String,
    /// Latest write (RFC 3339, UTC).
    pub updated_at: String,
}

/// The columns a page loads.
type Row = (
    String,
    Status,
    Option<String>,
    Vec<u8>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// One page of workflows matching `filter`, in instance id byte order.
///
/// # Errors
/// [`Error::Input`] for a limit out of range, an age too large or a
/// prefix with a NUL; [`Error::Database`] when a statement fails.
pub async fn list(conn: &mut AsyncPgConnection, filter: &ListFilter) -> Result<Page, Error> {
    check(filter)?;
    conn.transaction(async |conn| {
        steer(conn).await?;
        let cutoffs = cutoffs(conn, filter).await?;
        let window = window(conn, filter).await?;
        if window.as_ref().is_some_and(|w| w.last.is_none()) {
            return Ok(Page {
                workflows: Vec::new(),
                next_after: None,
            });
        }
        let rows: Vec<Row> = page(filter, &cutoffs, window.as_ref()).load(conn).await?;
        Ok(paginate(rows, filter.limit, window))
    })
    .await
}

/// The plans of [`list`]'s statements for `filter`.
pub(crate) async fn explain(planner: &mut Planner<'_>, filter: &ListFilter) -> Result<(), Error> {
    check(filter)?;
    let cutoffs = cutoffs(planner.conn(), filter).await?;
    let window = window(planner.conn(), filter).await?;
    if needs_window(filter) {
        planner.plan("list: window", window_query(filter)).await?;
    }
    planner
        .plan("list: page", page(filter, &cutoffs, window.as_ref()))
        .await
}

/// How many workflows match `filter` (from its cursor, whatever its
/// limit), counted up to [`COUNT_CAP`] + 1.
pub(crate) async fn count(conn: &mut AsyncPgConnection, filter: &ListFilter) -> Result<i64, Error> {
    check(filter)?;
    conn.transaction(async |conn| {
        steer(conn).await?;
        let cutoffs = cutoffs(conn, filter).await?;
        Ok(count_query(filter, &cutoffs).get_result(conn).await?)
    })
    .await
}

/// The plan of [`count`]'s statement for `filter`.
pub(crate) async fn explain_count(
    planner: &mut Planner<'_>,
    filter: &ListFilter,
) -> Result<(), Error> {
    check(filter)?;
    let cutoffs = cutoffs(planner.conn(), filter).await?;
    planner
        .plan("count matching", count_query(filter, &cutoffs))
        .await
}

fn check(filter: &ListFilter) -> Result<(), Error> {
    if !(1..=MAX_LIMIT).contains(&filter.limit) {
        return Err(Error::Input(format!(
            "limit {} is out of range 1..={MAX_LIMIT}",
            filter.limit
        )));
    }
    if filter.prefix.as_deref().is_some_and(|p| p.contains('\0')) {
        return Err(Error::Input("an instance id prefix has no NUL".to_owned()));
    }
    Ok(())
}

/// The creation-time bounds of the age filters, on the server's clock.
#[derive(Debug, Default)]
struct Cutoffs {
    created_before: Option<DateTime<Utc>>,
    created_since: Option<DateTime<Utc>>,
}

async fn cutoffs(conn: &mut AsyncPgConnection, filter: &ListFilter) -> Result<Cutoffs, Error> {
    if filter.older_than.is_none() && filter.newer_than.is_none() {
        return Ok(Cutoffs::default());
    }
    let now = server_now(conn).await?;
    Ok(Cutoffs {
        created_before: filter.older_than.map(|a| before(now, a)).transpose()?,
        created_since: filter.newer_than.map(|a| before(now, a)).transpose()?,
    })
}

/// The window of `filter`, when it has conditions beyond the index range.
async fn window(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
) -> Result<Option<WindowEnd>, Error> {
    if !needs_window(filter) {
        return Ok(None);
    }
    let (ids, last): (i64, Option<String>) = window_query(filter).get_result(conn).await?;
    Ok(Some(WindowEnd { ids, last }))
}

/// The ids the conditions beyond the index range are checked on: what
/// [`window_query`] answered.
#[derive(Debug, Clone)]
struct WindowEnd {
    /// Ids in the window (at most [`COUNT_CAP`]).
    ids: i64,
    /// Its last id; `None` when the range is empty.
    last: Option<String>,
}

impl WindowEnd {
    fn is_full(&self) -> bool {
        self.ids >= COUNT_CAP
    }
}

/// The first `limit` rows; the cursor when one more row came back, or
/// when the window ended before the page did.
fn paginate(mut rows: Vec<Row>, limit: u32, window: Option<WindowEnd>) -> Page {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    let workflows: Vec<Item> = rows
        .into_iter()
        .map(
            |(instance_id, status, position, hash, revision, created, updated)| Item {
                instance_id,
                status: status.as_str(),
                position,
                definition: hex(&hash),
                revision,
                created_at: time(created),
                updated_at: time(updated),
            },
        )
        .collect();
    let next_after = if more {
        workflows.last().map(|w| w.instance_id.clone())
    } else {
        window.filter(WindowEnd::is_full).and_then(|w| w.last)
    };
    Page {
        workflows,
        next_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_prefixes_are_checked() {
        let with = |limit, prefix: Option<&str>| ListFilter {
            limit,
            prefix: prefix.map(str::to_owned),
            ..ListFilter::default()
        };
        assert!(check(&with(1, Some("a"))).is_ok());
        assert!(check(&with(MAX_LIMIT, None)).is_ok());
        for bad in [
            with(0, None),
            with(MAX_LIMIT + 1, None),
            with(5, Some("a\0")),
        ] {
            assert!(matches!(check(&bad), Err(Error::Input(_))), "{bad:?}");
        }
    }
}
