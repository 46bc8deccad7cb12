//! Serving the dashboard on its own (the CLI's `sayiir-diesel dashboard`):
//! where it may listen, and the server itself.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::response::Redirect;
use axum::routing::get;
use tokio::net::TcpListener;

use super::{Dashboard, Token};
use crate::Error;

/// Whether the dashboard may listen on `addr`: a loopback address always;
/// any other address only with a token, since anyone who can reach it
/// could read (and with actions, steer) every workflow.
///
/// # Errors
/// [`Error::Input`] saying why, when `addr` is not loopback and there is no
/// token.
pub fn check_exposure(addr: SocketAddr, token: Option<&Token>) -> Result<(), Error> {
    if addr.ip().is_loopback() || token.is_some() {
        Ok(())
    } else {
        Err(Error::Input(format!(
            "refusing to listen on {addr} without a token: anyone who can reach it could read \
             every workflow. Pass --token-file PATH or set SAYIIR_DASHBOARD_TOKEN, or listen on \
             127.0.0.1"
        )))
    }
}

impl Dashboard {
    /// The router as served on its own: [`Dashboard::router`] nested at the
    /// prefix, and `/` sent to it.
    pub fn app(&self) -> Router {
        if self.prefix.is_empty() {
            return self.router();
        }
        let home = self.prefix.clone();
        Router::new()
            .nest(&self.prefix, self.router())
            .route("/", get(move || async move { Redirect::to(&home) }))
    }
}

/// Serves [`Dashboard::app`] on `listener` until `shutdown` completes.
///
/// # Errors
/// What the server failed with.
pub async fn serve(
    listener: TcpListener,
    dashboard: &Dashboard,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, dashboard.app())
        .with_graceful_shutdown(shutdown)
        .await
}
