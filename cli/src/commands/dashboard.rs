//! `dashboard`: serves the web dashboard on its own until Ctrl-C.

use sayiir_diesel_dashboard::Dashboard;
use sayiir_diesel_dashboard::web::{Token, check_exposure, serve};

use super::Backend;
use crate::args::DashboardArgs;
use crate::error::CliError;

/// The environment variable that may hold the token.
pub const TOKEN_VAR: &str = "SAYIIR_DASHBOARD_TOKEN";

/// Runs `dashboard`.
pub async fn run(url: &str, args: &DashboardArgs) -> Result<(), CliError> {
    let token = token(args)?;
    check_exposure(args.listen, token.as_ref()).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut backend = Backend::builder(url)
        .run_migrations(false)
        .max_connections(4)
        .application_name("sayiir-diesel-dashboard");
    if let Some(read_url) = &args.read_url {
        backend = backend.read_url(read_url.clone());
    }
    let mut dashboard = Dashboard::new(backend.build().await?)
        .prefix(&args.prefix)
        .map_err(|e| CliError::Usage(e.to_string()))?
        .actions(args.actions)
        .metrics(args.metrics);
    if let Some(token) = token {
        dashboard = dashboard.token(token);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::Failed(format!("cannot listen on {}: {e}", args.listen)))?;
    let at = listener
        .local_addr()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    eprintln!(
        "sayiir-diesel dashboard on http://{at}{}/ ({}{})",
        args.prefix.trim_end_matches('/'),
        if args.actions {
            "actions on"
        } else {
            "read-only"
        },
        if args.read_url.is_some() {
            ", reads from the standby"
        } else {
            ""
        }
    );
    serve(listener, &dashboard, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| CliError::Failed(format!("dashboard server: {e}")))
}

/// The token from `--token-file`, else from [`TOKEN_VAR`].
fn token(args: &DashboardArgs) -> Result<Option<Token>, CliError> {
    let text = match &args.token_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            CliError::Usage(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?),
        None => std::env::var(TOKEN_VAR)
            .ok()
            .filter(|t| !t.trim().is_empty()),
    };
    text.map(|t| Token::new(&t).map_err(|e| CliError::Usage(e.to_string())))
        .transpose()
}
