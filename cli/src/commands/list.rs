//! `list`: workflows by filter, a keyset page at a time (instance id order).

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sayiir_diesel::Status;
use sayiir_diesel::schema::sayiir::{tasks, workflows};
use serde::Serialize;

use super::{Out, before, server_now};
use crate::args::ListArgs;
use crate::error::CliError;
use crate::output::{Table, or_dash, time};

/// The columns `list` reads (never the snapshot blob).
type Row = (
    String,
    Status,
    Option<String>,
    Vec<u8>,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

/// One listed workflow.
#[derive(Debug, Serialize)]
struct Item {
    instance_id: String,
    status: &'static str,
    position: Option<String>,
    definition: String,
    revision: i64,
    created_at: String,
    updated_at: String,
}

/// The `list` answer.
#[derive(Debug, Serialize)]
struct Page {
    workflows: Vec<Item>,
    /// Pass as `--after` for the next page; `null` on the last one.
    next_after: Option<String>,
}

/// Runs `list`.
pub async fn run(out: &Out<'_>, args: &ListArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let now = server_now(&mut conn).await?;
    let mut query = workflows::table.into_boxed();
    if let Some(status) = args.status {
        query = query.filter(workflows::status.eq(status));
    }
    if let Some(age) = args.older_than {
        query = query.filter(workflows::created_at.lt(before(now, age)?));
    }
    if let Some(age) = args.newer_than {
        query = query.filter(workflows::created_at.ge(before(now, age)?));
    }
    if let Some(hash) = &args.definition {
        query = query.filter(workflows::definition_hash.eq(hash.0.clone()));
    }
    if let Some(tag) = &args.tag {
        query = query.filter(
            workflows::instance_id.eq_any(
                tasks::table
                    .filter(tasks::tags.contains(vec![tag.clone()]))
                    .select(tasks::instance_id),
            ),
        );
    }
    if let Some(after) = &args.after {
        query = query.filter(workflows::instance_id.gt(after.clone()));
    }
    let rows: Vec<Row> = query
        .select((
            workflows::instance_id,
            workflows::status,
            workflows::position_kind,
            workflows::definition_hash,
            workflows::revision,
            workflows::created_at,
            workflows::updated_at,
        ))
        .order(workflows::instance_id.asc())
        .limit(i64::from(args.limit) + 1)
        .load(&mut conn)
        .await?;
    let page = paginate(rows, args.limit);
    crate::output::emit(out.json, &page, render)
}

/// The first `limit` rows, and the cursor when one more row came back.
fn paginate(mut rows: Vec<Row>, limit: u32) -> Page {
    let more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let workflows: Vec<Item> = rows
        .into_iter()
        .map(
            |(instance_id, status, position, hash, revision, created, updated)| Item {
                instance_id,
                status: status.as_str(),
                position,
                definition: crate::hex::encode(&hash),
                revision,
                created_at: time(created),
                updated_at: time(updated),
            },
        )
        .collect();
    let next_after = if more {
        workflows.last().map(|w| w.instance_id.clone())
    } else {
        None
    };
    Page {
        workflows,
        next_after,
    }
}

fn render(page: &Page) -> String {
    let mut t = Table::new(&[
        "INSTANCE",
        "STATUS",
        "POSITION",
        "REV",
        "CREATED",
        "UPDATED",
        "DEFINITION",
    ]);
    for w in &page.workflows {
        t.row(vec![
            w.instance_id.clone(),
            w.status.to_owned(),
            or_dash(w.position.as_deref()),
            w.revision.to_string(),
            w.created_at.clone(),
            w.updated_at.clone(),
            w.definition.get(..12).unwrap_or(&w.definition).to_owned(),
        ]);
    }
    let mut text = if t.is_empty() {
        "no workflows\n".to_owned()
    } else {
        t.render()
    };
    if let Some(after) = &page.next_after {
        let _ = writeln!(text, "more: --after {after}");
    }
    text
}
