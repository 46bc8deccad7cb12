//! Bulk cancel or pause of everything a filter matches: the count first,
//! then that count typed back, then one store call per workflow.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use sayiir_diesel::Status;
use serde::Deserialize;

use super::actions::{self, Action, Fields, ResultPage};
use super::frame::Frame;
use super::params::ListParams;
use super::reply::{Failure, Reply, page};
use super::{BULK_MAX, Inner};
use crate::act::{self, Outcome};
use crate::inspect::{self, ListFilter};

/// Workflows read per page while acting.
const BATCH: u32 = 500;

#[derive(Template)]
#[template(path = "bulk.html")]
struct BulkPage {
    frame: Frame,
    verb: &'static str,
    count: i64,
    max: i64,
    described: String,
    mismatch: Option<String>,
    post_to: String,
    fields: Vec<(&'static str, String)>,
    back: String,
}

/// The action and the filter it applies to, checked: a bulk action needs a
/// status filter it can apply to.
fn checked(action: &str, params: &ListParams) -> Result<(Action, ListFilter), Failure> {
    let action = match action {
        "cancel" => Action::Cancel,
        "pause" => Action::Pause,
        other => return Err(Failure::NotFound(format!("no bulk action {other:?}"))),
    };
    let mut filter = params.filter()?;
    filter.after = None;
    let fits = matches!(
        (action, filter.status),
        (Action::Pause, Some(Status::InProgress))
            | (Action::Cancel, Some(Status::InProgress | Status::Paused))
    );
    if !fits {
        return Err(Failure::Input(format!(
            "filter by status first: {} applies to {}",
            if action == Action::Pause {
                "pause"
            } else {
                "cancel"
            },
            if action == Action::Pause {
                "InProgress"
            } else {
                "InProgress or Paused"
            }
        )));
    }
    Ok((action, filter))
}

async fn form(
    state: &Inner,
    action: Action,
    name: &str,
    params: &ListParams,
    mismatch: Option<String>,
) -> Reply {
    let (_, filter) = checked(name, params)?;
    let mut conn = super::pages::read(state).await?;
    let count = act::count_matching(&mut conn, &filter).await?;
    let pairs = params.filter_pairs();
    let frame = Frame::new(
        state,
        format!("Bulk {name}"),
        "workflows",
        &format!("/bulk/{name}"),
        &pairs,
        0,
    );
    let described = pairs
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ");
    page(
        if mismatch.is_some() {
            StatusCode::CONFLICT
        } else {
            StatusCode::OK
        },
        &BulkPage {
            verb: if action == Action::Pause {
                "Pause"
            } else {
                "Cancel"
            },
            count,
            max: BULK_MAX,
            described,
            mismatch,
            post_to: format!("{}/bulk/{name}", state.prefix),
            back: frame.link("/workflows", &pairs),
            fields: pairs,
            frame,
        },
    )
}

/// `GET /bulk/{action}?filters`: how many match, and a form to type it back.
pub async fn confirm(
    State(state): State<Arc<Inner>>,
    Path(name): Path<String>,
    Query(params): Query<ListParams>,
) -> Reply {
    let (action, _) = checked(&name, &params)?;
    form(&state, action, &name, &params, None).await
}

/// The bulk form: the filters and the count typed back.
#[derive(Debug, Deserialize)]
pub struct BulkForm {
    #[serde(flatten)]
    params: ListParams,
    confirm: Option<String>,
}

/// `POST /bulk/{action}`: acts when the typed count is still the count.
pub async fn act(
    State(state): State<Arc<Inner>>,
    Path(name): Path<String>,
    Form(body): Form<BulkForm>,
) -> Reply {
    let (action, mut filter) = checked(&name, &body.params)?;
    let mut conn = super::pages::read(&state).await?;
    let count = act::count_matching(&mut conn, &filter).await?;
    drop(conn);
    let typed = body
        .confirm
        .as_deref()
        .map(str::trim)
        .and_then(|t| t.parse::<i64>().ok());
    if count >= BULK_MAX || typed != Some(count) {
        let why = format!(
            "the count typed ({}) is not the count of matching workflows now ({count}): nothing was done",
            body.confirm.as_deref().unwrap_or("nothing")
        );
        return form(&state, action, &name, &body.params, Some(why)).await;
    }
    let (mut done, mut refused, mut gone) = (0_u64, 0_u64, 0_u64);
    filter.limit = BATCH;
    loop {
        let mut conn = super::pages::read(&state).await?;
        let batch = inspect::list(&mut conn, &filter).await?;
        drop(conn);
        for w in &batch.workflows {
            match actions::run(&state, action, &w.instance_id, &Fields::default()).await? {
                Outcome::Done(_) | Outcome::Sent(_) => done += 1,
                Outcome::Refused(_) => refused += 1,
                Outcome::NotFound(_) => gone += 1,
            }
        }
        match batch.next_after {
            Some(after) => filter.after = Some(after),
            None => break,
        }
    }
    let pairs = body.params.filter_pairs();
    let frame = Frame::new(
        &state,
        format!("Bulk {name}"),
        "workflows",
        "/workflows",
        &pairs,
        0,
    );
    page(
        StatusCode::OK,
        &ResultPage {
            kind: "done",
            message: format!(
                "Done: {name} requested for {done}; refused for {refused} (their state changed); {gone} no longer exist."
            ),
            back: frame.link("/workflows", &pairs),
            back_label: "the list",
            frame,
        },
    )
}
