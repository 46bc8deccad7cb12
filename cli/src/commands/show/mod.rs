//! `show <id>`: one workflow in full, from its columns (no blob decoded).

use sayiir_diesel_dashboard::inspect;

use super::Out;
use crate::args::ShowArgs;
use crate::error::CliError;

mod view;

/// Runs `show`.
pub async fn run(out: &Out<'_>, args: &ShowArgs) -> Result<(), CliError> {
    let mut conn = out.connect().await?;
    let Some(details) = inspect::show(&mut conn, &args.id, args.history).await? else {
        return Err(CliError::no_workflow(&args.id));
    };
    crate::output::emit(out.json, &details, view::render)
}
