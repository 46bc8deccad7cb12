//! One workflow's actions: a confirmation page (GET), then the action
//! (POST) and its result: done, refused by the workflow's state, or not
//! found. They go through [`crate::act`], the CLI's store calls.

use std::sync::Arc;

use askama::Template;
use axum::Json;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Deserialize;

use super::Inner;
use super::frame::Frame;
use super::params::encode;
use super::reply::{Failure, Reply, page};
use crate::act::{self, Outcome};

/// Who the dashboard's requests say they are from.
pub const REQUESTED_BY: &str = "sayiir-diesel-dashboard";

/// The actions on one workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Request a cancel.
    Cancel,
    /// Request a pause.
    Pause,
    /// Unpause, or withdraw a pending pause.
    Resume,
    /// Send an external event.
    Event,
}

impl Action {
    fn parse(text: &str) -> Result<Self, Failure> {
        match text {
            "cancel" => Ok(Self::Cancel),
            "pause" => Ok(Self::Pause),
            "resume" => Ok(Self::Resume),
            "event" => Ok(Self::Event),
            _ => Err(Failure::NotFound(format!("no action {text:?}"))),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Event => "event",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Cancel => "Cancel",
            Self::Pause => "Pause",
            Self::Resume => "Resume",
            Self::Event => "Send",
        }
    }
}

/// The fields of an action: the event's name and payload, a reason.
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    name: Option<String>,
    payload: Option<String>,
    reason: Option<String>,
}

impl Fields {
    /// The event's name and its payload, checked to be JSON.
    fn event(&self) -> Result<(String, Bytes), Failure> {
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Failure::Input("an event needs a signal name".to_owned()))?;
        let payload = self.payload.as_deref().unwrap_or("null").trim();
        serde_json::from_str::<serde_json::Value>(payload)
            .map_err(|e| Failure::Input(format!("the payload is not JSON: {e}")))?;
        Ok((name.to_owned(), Bytes::copy_from_slice(payload.as_bytes())))
    }
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    frame: Frame,
    question: String,
    instance_id: String,
    payload: Option<String>,
    post_to: String,
    fields: Vec<(&'static str, String)>,
    verb: &'static str,
    back: String,
}

/// `GET /confirm/{action}/{id}`: asks before acting.
pub async fn confirm(
    State(state): State<Arc<Inner>>,
    Path((action, id)): Path<(String, String)>,
    Query(fields): Query<Fields>,
) -> Reply {
    let action = Action::parse(&action)?;
    let path = format!("/confirm/{}/{}", action.name(), encode(&id));
    let frame = Frame::new(
        &state,
        format!("{} workflow", action.verb()),
        "workflows",
        &path,
        &[],
        0,
    );
    let (question, payload, fields) = match action {
        Action::Event => {
            let (name, payload) = fields.event()?;
            (
                format!("Send the event {name:?} to this workflow?"),
                Some(String::from_utf8_lossy(&payload).into_owned()),
                vec![
                    ("name", name),
                    ("payload", String::from_utf8_lossy(&payload).into_owned()),
                ],
            )
        }
        other => (format!("{} this workflow?", other.verb()), None, vec![]),
    };
    page(
        StatusCode::OK,
        &ConfirmPage {
            question,
            payload,
            post_to: format!("{}/act/{}/{}", state.prefix, action.name(), encode(&id)),
            fields,
            verb: action.verb(),
            back: frame.workflow_link(&id),
            instance_id: id,
            frame,
        },
    )
}

#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage {
    pub frame: Frame,
    pub kind: &'static str,
    pub message: String,
    pub back: String,
    pub back_label: &'static str,
}

/// `POST /act/{action}/{id}`: acts, then answers with the outcome (JSON
/// when the request accepts it, else a page).
pub async fn act(
    State(state): State<Arc<Inner>>,
    Path((action, id)): Path<(String, String)>,
    headers: HeaderMap,
    Form(fields): Form<Fields>,
) -> Reply {
    let action = Action::parse(&action)?;
    let outcome = run(&state, action, &id, &fields).await?;
    let status = match &outcome {
        Outcome::Done(_) | Outcome::Sent(_) => StatusCode::OK,
        Outcome::Refused(_) => StatusCode::CONFLICT,
        Outcome::NotFound(_) => StatusCode::NOT_FOUND,
    };
    if wants_json(&headers) {
        return Ok((status, Json(outcome)).into_response());
    }
    let frame = Frame::new(
        &state,
        format!("{} workflow", action.verb()),
        "workflows",
        "/workflows",
        &[],
        0,
    );
    let (kind, message) = describe(&outcome);
    page(
        status,
        &ResultPage {
            back: frame.workflow_link(&id),
            back_label: "the workflow",
            kind,
            message,
            frame,
        },
    )
}

/// Runs one action through the store calls.
pub async fn run(
    state: &Inner,
    action: Action,
    id: &str,
    fields: &Fields,
) -> Result<Outcome, Failure> {
    let backend = &state.backend;
    let mut conn = backend
        .pool()
        .get()
        .await
        .map_err(|e| Failure::Internal(format!("no database connection: {e}")))?;
    let reason = fields.reason.clone().filter(|r| !r.trim().is_empty());
    Ok(match action {
        Action::Cancel => act::cancel(backend, &mut conn, id, reason, REQUESTED_BY).await?,
        Action::Pause => act::pause(backend, &mut conn, id, reason, REQUESTED_BY).await?,
        Action::Resume => act::resume(backend, &mut conn, id).await?,
        Action::Event => {
            let (name, payload) = fields.event()?;
            act::send_event(backend, &mut conn, id, &name, payload, false).await?
        }
    })
}

/// Whether the client asked for JSON.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"))
}

/// The result page's class and sentence for an outcome.
pub fn describe(outcome: &Outcome) -> (&'static str, String) {
    match outcome {
        Outcome::Done(d) => (
            "done",
            format!(
                "Done: {} {} ({}); the workflow is {}.",
                d.action,
                d.result.replace('_', " "),
                d.instance_id,
                d.status
            ),
        ),
        Outcome::Sent(s) => (
            "done",
            format!(
                "Done: event {:?} {} ({} bytes).",
                s.signal_name, s.delivery, s.bytes
            ),
        ),
        Outcome::Refused(why) => ("refused", format!("Refused: {why}")),
        Outcome::NotFound(why) => ("not-found", format!("Not found: {why}")),
    }
}
