//! `migrate`: applies pending migrations (under the library's advisory
//! lock, so it is safe next to booting workers).

use serde::Serialize;

use super::Out;
use crate::error::CliError;

/// What `migrate` did.
#[derive(Debug, Serialize)]
struct Migrated {
    /// Versions applied by this run, oldest first (empty: up to date).
    applied: Vec<String>,
}

/// Runs `migrate`.
pub async fn run(out: &Out<'_>) -> Result<(), CliError> {
    let applied = sayiir_diesel::migrations::run(out.url).await?;
    crate::output::emit(out.json, &Migrated { applied }, |m| {
        if m.applied.is_empty() {
            "schema sayiir is up to date\n".to_owned()
        } else {
            let mut text = format!("applied {} migration(s):\n", m.applied.len());
            for v in &m.applied {
                text.push_str("  ");
                text.push_str(v);
                text.push('\n');
            }
            text
        }
    })
}
