//! `/api/…`: the CLI's `--json` documents, its flags as query parameters.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use serde::Deserialize;

use super::Inner;
use super::pages::read;
use super::params::ListParams;
use super::reply::{Failure, Reply};
use crate::inspect::{self, StuckFilter};

/// `/api/status`: `sayiir-diesel status --json`.
pub async fn status(State(state): State<Arc<Inner>>) -> Reply {
    let mut conn = read(&state).await?;
    Ok(Json(inspect::overview(&mut conn).await?).into_response())
}

/// `/api/workflows`: `sayiir-diesel list --json`, with `status`, `limit`,
/// `after`, `definition`, `tag`, `older_than`, `newer_than`, `prefix`.
pub async fn workflows(State(state): State<Arc<Inner>>, Query(p): Query<ListParams>) -> Reply {
    let filter = p.filter()?;
    let mut conn = read(&state).await?;
    Ok(Json(inspect::list(&mut conn, &filter).await?).into_response())
}

/// The `show` flags.
#[derive(Debug, Deserialize)]
pub struct ShowParams {
    history: Option<u32>,
}

/// `/api/workflows/{id}`: `sayiir-diesel show --json` (`history`: how many
/// entries, default 20).
pub async fn workflow(
    State(state): State<Arc<Inner>>,
    Path(id): Path<String>,
    Query(p): Query<ShowParams>,
) -> Reply {
    let mut conn = read(&state).await?;
    let history = p
        .history
        .unwrap_or(20)
        .min(super::pages::HISTORY_SHOWN * 10);
    match inspect::show(&mut conn, &id, history).await? {
        Some(d) => Ok(Json(d).into_response()),
        None => Err(Failure::NotFound(format!("no workflow {id:?}"))),
    }
}

/// The `stuck` flags.
#[derive(Debug, Deserialize)]
pub struct StuckParams {
    held_longer_than: Option<String>,
    idle_for: Option<String>,
    released_times: Option<i32>,
    limit: Option<u32>,
}

/// `/api/stuck`: `sayiir-diesel stuck --json`.
pub async fn stuck(State(state): State<Arc<Inner>>, Query(p): Query<StuckParams>) -> Reply {
    let defaults = StuckFilter::default();
    let age = |name: &str, v: Option<&String>, d| match v {
        None => Ok(d),
        Some(t) => crate::duration::parse(t).map_err(|e| Failure::Input(format!("{name}: {e}"))),
    };
    let filter = StuckFilter {
        held_longer_than: age(
            "held_longer_than",
            p.held_longer_than.as_ref(),
            defaults.held_longer_than,
        )?,
        idle_for: age("idle_for", p.idle_for.as_ref(), defaults.idle_for)?,
        released_times: p.released_times.unwrap_or(defaults.released_times),
        limit: p
            .limit
            .unwrap_or(defaults.limit)
            .clamp(1, super::params::MAX_LIMIT),
    };
    let mut conn = read(&state).await?;
    Ok(Json(inspect::stuck(&mut conn, &filter).await?).into_response())
}
