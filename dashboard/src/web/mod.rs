//! The web dashboard: server-rendered pages and JSON answers over
//! [`crate::inspect`], actions through [`crate::act`], every asset embedded.
//!
//! ```no_run
//! # async fn demo(backend: sayiir_diesel_dashboard::act::Backend) -> Result<(), Box<dyn std::error::Error>> {
//! use sayiir_diesel_dashboard::Dashboard;
//!
//! // Nested in your own app under a prefix of its own; auth is your app's
//! // middleware around it (see the README), or the dashboard's token.
//! let dashboard = Dashboard::new(backend).prefix("/ops/sayiir")?.actions(true);
//! let app: axum::Router = axum::Router::new().nest("/ops/sayiir", dashboard.router());
//! # let _ = app; Ok(()) }
//! ```

mod actions;
mod api;
mod assets;
mod bulk;
mod chart;
mod frame;
mod guard;
mod metrics;
mod pages;
mod params;
mod reply;
mod serve;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::act::Backend;

pub use guard::{CONTENT_SECURITY_POLICY, Token};
pub use params::encode as encode_segment;
pub use serve::{check_exposure, serve};

/// Most workflows a bulk action may touch at once (the count typed back
/// must be below it); narrow the filter for more.
pub const BULK_MAX: i64 = crate::inspect::COUNT_CAP;

/// A dashboard over one store: what it reads and writes through, where it
/// is mounted, and what it allows. Build it, then take its
/// [`router`](Dashboard::router).
#[derive(Clone)]
pub struct Dashboard {
    backend: Backend,
    prefix: String,
    actions: bool,
    token: Option<Token>,
    metrics: bool,
}

/// What every handler shares.
pub(crate) struct Inner {
    /// Reads go to its read pool (a standby with `Builder::read_url`),
    /// actions to the primary through its store calls.
    pub backend: Backend,
    /// The path the router is nested under ("" at the root).
    pub prefix: String,
    /// Whether actions are allowed (otherwise every non-GET is refused).
    pub actions: bool,
    /// Required on every request when set.
    pub token: Option<Token>,
    /// The `/metrics` sample, when served.
    pub metrics: Option<metrics::Sampler>,
}

impl Dashboard {
    /// A read-only dashboard at the root path, without a token.
    #[must_use]
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            prefix: String::new(),
            actions: false,
            token: None,
            metrics: false,
        }
    }

    /// The path the router is nested under, such as `/ops/sayiir`: every
    /// link, form and redirect starts with it. Nest the router at the same
    /// path (`Router::nest`), or have your proxy forward that path as is.
    ///
    /// # Errors
    /// [`crate::Error::Input`] unless it is `/` followed by path segments of
    /// letters, digits and `-._~`, without a trailing `/` (or empty).
    pub fn prefix(self, prefix: &str) -> Result<Self, crate::Error> {
        Ok(Self {
            prefix: params::check_prefix(prefix)?,
            ..self
        })
    }

    /// Allow actions (cancel, pause, resume, send an event, bulk cancel or
    /// pause). Off by default: every non-GET request is refused with 403
    /// and no action button is drawn.
    #[must_use]
    pub fn actions(self, yes: bool) -> Self {
        Self {
            actions: yes,
            ..self
        }
    }

    /// Require `token` on every request, GETs included: as a bearer token,
    /// or as the password of HTTP basic auth (any user name).
    #[must_use]
    pub fn token(self, token: Token) -> Self {
        Self {
            token: Some(token),
            ..self
        }
    }

    /// Serve `/metrics` (Prometheus text format): the store-wide figures of
    /// the overview, sampled at most once per [`metrics::SAMPLE_EVERY`]
    /// whatever the number of scrapes.
    #[must_use]
    pub fn metrics(self, yes: bool) -> Self {
        Self {
            metrics: yes,
            ..self
        }
    }

    /// The router: pages, `/api/…`, assets, and `/metrics` when enabled,
    /// behind the guard (token, read-only, cross-site checks, security
    /// headers). Nest it at [`Dashboard::prefix`]'s path.
    pub fn router(&self) -> Router {
        let inner = Arc::new(Inner {
            backend: self.backend.clone(),
            prefix: self.prefix.clone(),
            actions: self.actions,
            token: self.token.clone(),
            metrics: self.metrics.then(metrics::Sampler::new),
        });
        let mut router = Router::new()
            .route("/", get(pages::overview))
            .route("/workflows", get(pages::workflows))
            .route("/workflows/{id}", get(pages::workflow))
            .route("/stuck", get(pages::stuck))
            .route("/queue", get(pages::queue))
            .route("/confirm/{action}/{id}", get(actions::confirm))
            .route("/act/{action}/{id}", post(actions::act))
            .route("/bulk/{action}", get(bulk::confirm).post(bulk::act))
            .route("/api/status", get(api::status))
            .route("/api/workflows", get(api::workflows))
            .route("/api/workflows/{id}", get(api::workflow))
            .route("/api/stuck", get(api::stuck))
            .route("/assets/{name}", get(assets::serve));
        if self.metrics {
            router = router.route("/metrics", get(metrics::serve));
        }
        router
            .fallback(reply::not_found)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&inner),
                guard::guard,
            ))
            .with_state(inner)
    }
}

pub use metrics::SAMPLE_EVERY;
