//! Responses shared by the handlers: pages, refusals and failures.

use askama::Template;
use axum::http::StatusCode;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

/// A plain-text refusal (auth, read-only, cross-site, bad input).
pub fn refused(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.to_owned(),
    )
        .into_response()
}

/// The fallback route.
pub async fn not_found() -> Response {
    refused(StatusCode::NOT_FOUND, "no such page")
}

/// Why a handler could not answer.
#[derive(Debug)]
pub enum Failure {
    /// A query parameter or form field is wrong (400).
    Input(String),
    /// The workflow (or page) asked for does not exist (404).
    NotFound(String),
    /// The database or a template failed (500, logged).
    Internal(String),
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::Input(why) => Self::Input(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for Failure {
    fn from(e: askama::Error) -> Self {
        Self::Internal(format!("template: {e}"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Self::Input(why) => refused(StatusCode::BAD_REQUEST, &why),
            Self::NotFound(why) => refused(StatusCode::NOT_FOUND, &why),
            Self::Internal(why) => {
                tracing::error!(error = %why, "dashboard request failed");
                refused(StatusCode::INTERNAL_SERVER_ERROR, &why)
            }
        }
    }
}

/// What handlers return.
pub type Reply = Result<Response, Failure>;

/// A rendered page with `status`.
pub fn page(status: StatusCode, template: &impl Template) -> Reply {
    Ok((status, Html(template.render()?)).into_response())
}
