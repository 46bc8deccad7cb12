//! Test support: a migrated database per test, a backend on it, and the
//! dashboard's router driven request by request (no socket).
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_core::{DefinitionHash, TaskId};
use sayiir_diesel_dashboard::Dashboard;
pub use sayiir_diesel_dashboard::act::Backend;
use sayiir_diesel_testkit::TestDatabase;
use tower::ServiceExt as _;

/// A backend on a fresh, migrated database of its own.
pub async fn backend() -> (TestDatabase, Backend) {
    let db = sayiir_diesel_testkit::sayiir_database()
        .await
        .expect("a migrated test database");
    let backend = Backend::builder(db.url())
        .recovery_grace(std::time::Duration::from_millis(200))
        .build()
        .await
        .expect("connect");
    (db, backend)
}

pub fn def_hash() -> DefinitionHash {
    DefinitionHash::sha256("dashboard-test-definition")
}

pub fn tid(name: &str) -> TaskId {
    TaskId::from(name)
}

/// A snapshot with input `b"in"` at `AtTask(task)`.
pub fn at_task(instance: &str, task: &str) -> WorkflowSnapshot {
    let mut s =
        WorkflowSnapshot::with_initial_input(instance, def_hash(), Bytes::from_static(b"in"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid(task) });
    s
}

/// One answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Every `href`, `action` and `src` attribute value of the page.
    pub fn urls(&self) -> Vec<String> {
        let mut out = Vec::new();
        for attr in ["href=\"", "action=\"", "src=\""] {
            let mut rest = self.body.as_str();
            while let Some(at) = rest.find(attr) {
                rest = &rest[at + attr.len()..];
                let end = rest.find('"').unwrap();
                out.push(rest[..end].replace("&#38;", "&").replace("&amp;", "&"));
                rest = &rest[end..];
            }
        }
        out
    }
}

/// The dashboard's router, nested at `prefix` as an app would.
pub fn app(dashboard: &Dashboard, prefix: &str) -> Router {
    if prefix.is_empty() {
        dashboard.router()
    } else {
        Router::new().nest(prefix, dashboard.router())
    }
}

pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// A same-origin form POST, as the dashboard's own pages send it.
pub async fn post_form(app: &Router, uri: &str, form: &str) -> Answer {
    send(
        app,
        Request::post(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "dash.example")
            .header("origin", "http://dash.example")
            .header("sec-fetch-site", "same-origin")
            .body(Body::from(form.to_owned()))
            .unwrap(),
    )
    .await
}
