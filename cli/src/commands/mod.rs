//! One module per subcommand, and what they share: connections and the
//! backend for actions.

mod actions;
mod dashboard;
mod list;
mod migrate;
mod prune;
mod send_event;
mod show;
mod status;
mod stuck;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::args::Command;
use crate::error::CliError;

/// The backend actions go through (the codec workers use).
pub type Backend = sayiir_diesel_dashboard::act::Backend;

/// Runs one subcommand against the database at `url`.
///
/// # Errors
/// What the command failed with; its exit code says which kind.
pub async fn run(command: Command, url: &str, json: bool) -> Result<(), CliError> {
    let out = Out { url, json };
    let writes = command.writes();
    let outcome = match command {
        Command::Migrate => migrate::run(&out).await,
        Command::Status => status::run(&out).await,
        Command::List(args) => list::run(&out, &args).await,
        Command::Show(args) => show::run(&out, &args).await,
        Command::Cancel(args) => actions::cancel(&out, &args).await,
        Command::Pause(args) => actions::pause(&out, &args).await,
        Command::Resume(args) => actions::resume(&out, &args.id).await,
        Command::SendEvent(args) => send_event::run(&out, &args).await,
        Command::Prune(args) => prune::run(&out, &args).await,
        Command::Stuck(args) => stuck::run(&out, &args).await,
        Command::Dashboard(args) => dashboard::run(url, &args).await,
    };
    if writes {
        outcome.map_err(CliError::of_write)
    } else {
        outcome
    }
}

/// Where a command reads from and how it answers.
pub struct Out<'a> {
    /// The database URL.
    pub url: &'a str,
    /// JSON instead of text.
    pub json: bool,
}

impl Out<'_> {
    /// One plain connection, for reads (a role with only `SELECT` works).
    pub async fn connect(&self) -> Result<AsyncPgConnection, CliError> {
        Ok(AsyncPgConnection::establish(self.url).await?)
    }

    /// The backend, for actions: a small pool, no migrations.
    pub async fn backend(&self) -> Result<Backend, CliError> {
        Ok(Backend::builder(self.url)
            .run_migrations(false)
            .max_connections(2)
            .application_name("sayiir-diesel-cli")
            .build()
            .await?)
    }
}
