//! The HTML pages: overview, workflows, one workflow, stuck, queue.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::Object;
use sayiir_diesel::Status;
use serde::Deserialize;

use super::Inner;
use super::chart;
use super::frame::Frame;
use super::params::{self, ListParams, encode};
use super::reply::{Failure, Reply, page};
use crate::inspect::{self, COUNT_CAP, Details, Page, Parked, Stuck, StuckFilter, Waiting};

/// How many history entries a workflow page shows.
pub const HISTORY_SHOWN: u32 = 100;
/// How many bytes of each output a workflow page shows.
pub const PREVIEW_BYTES: i32 = 2048;
/// How many rows the queue page lists per part.
pub const QUEUE_ROWS: i64 = 100;

/// A connection from the read pool.
pub async fn read(state: &Inner) -> Result<Object<AsyncPgConnection>, Failure> {
    state
        .backend
        .read_pool()
        .get()
        .await
        .map_err(|e| Failure::Internal(format!("no database connection: {e}")))
}

/// Only `refresh`, for the pages without filters.
#[derive(Debug, Default, Deserialize)]
pub struct RefreshOnly {
    refresh: Option<String>,
}

/// A count as shown: `10000+` when it reached the cap.
fn shown(overview_at_least: &[String], name: &str, n: i64) -> String {
    if overview_at_least.iter().any(|a| a == name) {
        format!("{n}+")
    } else {
        n.to_string()
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    frame: Frame,
    statuses: Vec<(&'static str, String, String)>,
    total: String,
    queue: Vec<(&'static str, String, String)>,
    oldest_waiting: String,
    capped: bool,
    cap: i64,
    chart: String,
    finished_last_hour: i64,
}

/// `/`: the store at a glance; every figure links to what it counts.
pub async fn overview(State(state): State<Arc<Inner>>, Query(q): Query<RefreshOnly>) -> Reply {
    let frame = Frame::new(
        &state,
        "Overview",
        "overview",
        "",
        &[],
        params::refresh(q.refresh.as_ref()),
    );
    let mut conn = read(&state).await?;
    let o = inspect::overview(&mut conn).await?;
    let minutes = inspect::finished_per_minute(&mut conn).await?;
    let statuses = Status::ALL
        .iter()
        .map(|s| {
            let n = o.workflows.get(s.as_str()).copied().unwrap_or(0);
            (
                s.as_str(),
                shown(&o.at_least, &format!("workflows.{}", s.as_str()), n),
                frame.list_link("status", s.as_str()),
            )
        })
        .collect();
    let q = &o.queue;
    let queue_link = frame.path("/queue");
    let stuck_link = frame.path("/stuck");
    let queue = [
        ("waiting", "queue.waiting", q.waiting, &queue_link),
        ("running", "queue.running", q.running, &queue_link),
        (
            "parked at a delay",
            "queue.parked_at_delay",
            q.parked_at_delay,
            &queue_link,
        ),
        (
            "parked at a signal",
            "queue.parked_at_signal",
            q.parked_at_signal,
            &queue_link,
        ),
        (
            "quarantined",
            "queue.quarantined",
            q.quarantined,
            &stuck_link,
        ),
        (
            "expired claims",
            "expired_claims",
            o.expired_claims,
            &stuck_link,
        ),
        (
            "pending requests",
            "pending_requests",
            o.pending_requests,
            &frame.list_link("status", "InProgress"),
        ),
        (
            "buffered events",
            "buffered_events",
            o.buffered_events,
            &queue_link,
        ),
    ]
    .into_iter()
    .map(|(label, name, n, href)| (label, shown(&o.at_least, name, n), href.clone()))
    .collect();
    let oldest_waiting = match (&q.oldest_waiting_since, q.oldest_waiting_ms) {
        (Some(since), Some(ms)) => {
            format!("{} (since {since})", crate::duration::format_millis(ms))
        }
        _ => "–".to_owned(),
    };
    page(
        StatusCode::OK,
        &OverviewPage {
            total: shown(&o.at_least, "total", o.total),
            capped: !o.at_least.is_empty(),
            cap: COUNT_CAP,
            chart: chart::svg(&minutes),
            finished_last_hour: minutes
                .iter()
                .map(|m| m.completed + m.failed + m.cancelled)
                .sum(),
            frame,
            statuses,
            queue,
            oldest_waiting,
        },
    )
}

#[derive(Template)]
#[template(path = "workflows.html")]
struct WorkflowsPage {
    frame: Frame,
    params: ListParams,
    statuses: Vec<&'static str>,
    status: String,
    page: Page,
    next_link: Option<String>,
    first_link: String,
    bulk_cancel: String,
    bulk_pause: String,
}

/// `/workflows`: filtered, a keyset page at a time; every filter in the URL.
pub async fn workflows(State(state): State<Arc<Inner>>, Query(p): Query<ListParams>) -> Reply {
    let filter = p.filter()?;
    let pairs = p.filter_pairs();
    let frame = Frame::new(
        &state,
        "Workflows",
        "workflows",
        "/workflows",
        &with_after(&pairs, p.after.as_ref()),
        params::refresh(p.refresh.as_ref()),
    );
    let mut conn = read(&state).await?;
    let page_rows = inspect::list(&mut conn, &filter).await?;
    let next_link = page_rows
        .next_after
        .as_ref()
        .map(|after| frame.link("/workflows", &with_after(&pairs, Some(after))));
    page(
        StatusCode::OK,
        &WorkflowsPage {
            first_link: frame.link("/workflows", &pairs),
            bulk_cancel: frame.link("/bulk/cancel", &pairs),
            bulk_pause: frame.link("/bulk/pause", &pairs),
            statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
            status: filter
                .status
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            next_link,
            page: page_rows,
            params: p,
            frame,
        },
    )
}

fn with_after(
    pairs: &[(&'static str, String)],
    after: Option<&String>,
) -> Vec<(&'static str, String)> {
    let mut all = pairs.to_vec();
    if let Some(a) = after {
        all.push(("after", a.clone()));
    }
    all
}

/// An output as the workflow page shows it.
pub struct OutputView {
    task: String,
    bytes: i32,
    recorded_at: String,
    preview: String,
}

#[derive(Template)]
#[template(path = "workflow.html")]
struct WorkflowPage {
    frame: Frame,
    d: Details,
    finished: bool,
    outputs: Vec<OutputView>,
    confirm_pause: String,
    confirm_resume: String,
    confirm_cancel: String,
    confirm_event: String,
}

/// `/workflows/{id}`: one workflow in full.
pub async fn workflow(
    State(state): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(q): Query<RefreshOnly>,
) -> Reply {
    let path = format!("/workflows/{}", encode(&id));
    let frame = Frame::new(
        &state,
        "Workflow",
        "workflows",
        &path,
        &[],
        params::refresh(q.refresh.as_ref()),
    );
    let mut conn = read(&state).await?;
    let Some(d) = inspect::show(&mut conn, &id, HISTORY_SHOWN).await? else {
        return Err(Failure::NotFound(format!("no workflow {id:?}")));
    };
    let previews = inspect::output_previews(&mut conn, &id, PREVIEW_BYTES).await?;
    let outputs = d
        .outputs
        .iter()
        .map(|o| OutputView {
            task: o.task.clone(),
            bytes: o.bytes,
            recorded_at: o.recorded_at.clone(),
            preview: previews
                .iter()
                .find(|(task, _)| *task == o.task)
                .map(|(_, bytes)| preview(bytes, o.bytes))
                .unwrap_or_default(),
        })
        .collect();
    let confirm = |action: &str| frame.path(&format!("/confirm/{action}/{}", encode(&id)));
    page(
        StatusCode::OK,
        &WorkflowPage {
            finished: params::parse_status(d.status).is_ok_and(Status::is_finished),
            confirm_pause: confirm("pause"),
            confirm_resume: confirm("resume"),
            confirm_cancel: confirm("cancel"),
            confirm_event: format!("{}/confirm/event/{}", state.prefix, encode(&id)),
            outputs,
            d,
            frame,
        },
    )
}

/// The first bytes of an output: pretty JSON when they are all of a JSON
/// document, else text when UTF-8, else hex; "…" when cut.
fn preview(bytes: &[u8], total: i32) -> String {
    let cut = usize::try_from(total).map_or(true, |t| t > bytes.len());
    let shown = if !cut && let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else if let Ok(text) = std::str::from_utf8(bytes) {
        text.to_owned()
    } else {
        bytes
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    if cut { format!("{shown}…") } else { shown }
}

#[derive(Template)]
#[template(path = "stuck.html")]
struct StuckPage {
    frame: Frame,
    held: String,
    idle: String,
    released: i32,
    limit: u32,
    claim_groups: Vec<(&'static str, Vec<inspect::ClaimItem>)>,
    task_groups: Vec<(&'static str, Vec<inspect::TaskItem>)>,
}

/// `/stuck`: what `sayiir-diesel stuck` finds, with its defaults.
pub async fn stuck(State(state): State<Arc<Inner>>, Query(q): Query<RefreshOnly>) -> Reply {
    let frame = Frame::new(
        &state,
        "Stuck",
        "stuck",
        "/stuck",
        &[],
        params::refresh(q.refresh.as_ref()),
    );
    let filter = StuckFilter::default();
    let mut conn = read(&state).await?;
    let s: Stuck = inspect::stuck(&mut conn, &filter).await?;
    page(
        StatusCode::OK,
        &StuckPage {
            held: crate::duration::format(filter.held_longer_than),
            idle: crate::duration::format(filter.idle_for),
            released: filter.released_times,
            limit: filter.limit,
            claim_groups: vec![
                ("Expired claims", s.expired_claims),
                ("Claims held long", s.long_held_claims),
            ],
            task_groups: vec![
                ("Quarantined", s.quarantined),
                ("Output saved, not moving", s.output_saved_not_moving),
                ("Overdue parks", s.overdue_parks),
                ("Input never ready", s.input_not_ready),
                ("Released repeatedly", s.repeatedly_released),
            ],
            frame,
        },
    )
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    frame: Frame,
    limit: i64,
    waiting: Vec<Waiting>,
    parked: Vec<Parked>,
}

/// `/queue`: waiting tasks by priority and age, parked workflows by wake time.
pub async fn queue(State(state): State<Arc<Inner>>, Query(q): Query<RefreshOnly>) -> Reply {
    let frame = Frame::new(
        &state,
        "Queue",
        "queue",
        "/queue",
        &[],
        params::refresh(q.refresh.as_ref()),
    );
    let mut conn = read(&state).await?;
    page(
        StatusCode::OK,
        &QueuePage {
            limit: QUEUE_ROWS,
            waiting: inspect::waiting(&mut conn, QUEUE_ROWS).await?,
            parked: inspect::parked(&mut conn, QUEUE_ROWS).await?,
            frame,
        },
    )
}
