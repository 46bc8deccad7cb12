//! The command line, as clap parses it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sayiir_diesel::Status;
use sayiir_diesel_dashboard::inspect;

/// Look at and act on Sayiir workflows stored by sayiir-diesel.
///
/// Exit codes: 0 ok, 1 runtime or database error, 2 usage error, 3 not
/// found, 4 refused (e.g. cancel of a finished workflow).
#[derive(Debug, Parser)]
#[command(name = "sayiir-diesel", version)]
pub struct Cli {
    /// PostgreSQL URL of the database holding schema `sayiir`.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Machine-readable JSON on stdout instead of text tables.
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations of schema `sayiir` and print their versions.
    Migrate,
    /// Workflows by status, queue depth, oldest waiting task, expired claims.
    Status,
    /// List workflows, filtered, in instance id (byte) order, a page at a
    /// time.
    List(ListArgs),
    /// Everything about one workflow: status, position, claim, requests,
    /// outputs by size, recent history.
    Show(ShowArgs),
    /// Request cancellation (applied at the workflow's next task boundary,
    /// or by the finder when no worker holds it).
    Cancel(RequestArgs),
    /// Request a pause (applied like a cancel; `resume` lifts it).
    Pause(RequestArgs),
    /// Resume a paused workflow, or withdraw a pause not applied yet.
    Resume(IdArgs),
    /// Send an external event to a workflow waiting for (or about to wait
    /// for) a signal.
    SendEvent(SendEventArgs),
    /// Remove old history, finished workflows and orphan events (bounded
    /// batches, safe next to running workers).
    Prune(PruneArgs),
    /// What is not moving: expired or long-held claims, quarantined rows,
    /// tasks that cannot progress.
    Stuck(StuckArgs),
    /// Serve the web dashboard (loopback, read-only unless --actions) until
    /// Ctrl-C.
    Dashboard(DashboardArgs),
}

impl Command {
    /// Whether the command writes (the actions, `prune`, `migrate`): those
    /// need the primary and a role that may write schema `sayiir`; the
    /// others only read.
    #[must_use]
    pub fn writes(&self) -> bool {
        match self {
            Self::Migrate
            | Self::Cancel(_)
            | Self::Pause(_)
            | Self::Resume(_)
            | Self::SendEvent(_)
            | Self::Prune(_) => true,
            Self::Status | Self::List(_) | Self::Show(_) | Self::Stuck(_) | Self::Dashboard(_) => {
                false
            }
        }
    }
}

/// `dashboard` arguments.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Where to listen. Any address but loopback needs a token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The path the dashboard is served under (behind a reverse proxy that
    /// forwards that path as is), e.g. /ops/sayiir.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Allow cancel, pause, resume and send-event from the browser (off:
    /// every non-GET request is refused and no action button is drawn).
    #[arg(long)]
    pub actions: bool,
    /// A file holding the token every request must carry (bearer, or the
    /// basic-auth password); else `$SAYIIR_DASHBOARD_TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Read pages from this server (a standby); actions still go to
    /// --database-url.
    #[arg(long, value_name = "URL")]
    pub read_url: Option<String>,
    /// Serve /metrics (Prometheus text), sampled at most every 10 s.
    #[arg(long)]
    pub metrics: bool,
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only workflows in this status (InProgress, Paused, Completed, Failed,
    /// Cancelled; case and dashes do not matter).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only workflows created longer ago than this (e.g. 7d).
    #[arg(long, value_parser = crate::duration::parse, value_name = "AGE")]
    pub older_than: Option<Duration>,
    /// Only workflows created within this (e.g. 15m).
    #[arg(long, value_parser = crate::duration::parse, value_name = "AGE")]
    pub newer_than: Option<Duration>,
    /// Only workflows of this definition (64 hex digits).
    #[arg(long, value_parser = crate::hex::parse_hash, value_name = "HASH")]
    pub definition: Option<crate::hex::Hash>,
    /// Only queued workflows whose task needs this worker tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only workflows whose instance id starts with this.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Page size (at most 1000).
    #[arg(
        long,
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(inspect::MAX_LIMIT))
    )]
    pub limit: u32,
    /// Start after this instance id (the previous page's `next_after`).
    #[arg(long, value_name = "INSTANCE_ID")]
    pub after: Option<String>,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Instance id.
    pub id: String,
    /// How many of the newest history entries to show.
    #[arg(long, default_value_t = 10)]
    pub history: u32,
}

/// `cancel` and `pause`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Instance id.
    pub id: String,
    /// Why (stored with the request and in the workflow's state).
    #[arg(long)]
    pub reason: Option<String>,
    /// Who asks (stored with the request).
    #[arg(long, default_value = "sayiir-diesel-cli")]
    pub by: String,
}

/// A command that takes only an instance id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// Instance id.
    pub id: String,
}

/// `send-event`.
#[derive(Debug, Args)]
pub struct SendEventArgs {
    /// Instance id.
    pub id: String,
    /// Signal name the workflow waits for.
    pub name: String,
    /// Payload bytes as given (workers with the JSON codec expect JSON, e.g.
    /// `42` or `'"yes"'`).
    #[arg(
        required_unless_present = "payload_file",
        conflicts_with = "payload_file"
    )]
    pub payload: Option<String>,
    /// Read the payload from this file instead (`-`: stdin).
    #[arg(long, value_name = "PATH")]
    pub payload_file: Option<PathBuf>,
    /// Buffer the event even when no such workflow exists yet (it is
    /// delivered once the workflow waits for it).
    #[arg(long)]
    pub allow_unknown: bool,
}

/// `prune`: each step is off unless its flag is given.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove history entries recorded longer ago than this.
    #[arg(long, value_parser = crate::duration::parse, value_name = "AGE")]
    pub history_older_than: Option<Duration>,
    /// Keep only the newest N history entries of each workflow.
    #[arg(long, value_name = "N")]
    pub history_keep_last: Option<u32>,
    /// Delete Completed, Failed and Cancelled workflows that finished longer
    /// ago than this, with their outputs, history and events.
    #[arg(long, value_parser = crate::duration::parse, value_name = "AGE")]
    pub finished_older_than: Option<Duration>,
    /// Delete buffered events older than this whose workflow does not exist
    /// or has finished.
    #[arg(long, value_parser = crate::duration::parse, value_name = "AGE")]
    pub orphan_events_older_than: Option<Duration>,
    /// Rows removed per statement.
    #[arg(long, default_value_t = sayiir_diesel::retention::DEFAULT_BATCH_SIZE)]
    pub batch_size: u32,
    /// Most batches per step (default: until nothing is left).
    #[arg(long, value_name = "N")]
    pub max_batches: Option<u32>,
}

/// `stuck`.
#[derive(Debug, Args)]
pub struct StuckArgs {
    /// Report live claims taken longer ago than this.
    #[arg(long, value_parser = crate::duration::parse, default_value = "1h", value_name = "AGE")]
    pub held_longer_than: Duration,
    /// Report tasks whose output is saved but whose workflow has not moved
    /// on for this long (keep it above the workers' recovery grace, 30 s by
    /// default), and parked workflows this far past their wake-up time.
    #[arg(long, value_parser = crate::duration::parse, default_value = "5m", value_name = "AGE")]
    pub idle_for: Duration,
    /// Report tasks released this many times in a row with nothing saved
    /// (at least 1).
    #[arg(
        long,
        default_value_t = 3,
        value_name = "N",
        value_parser = clap::value_parser!(i32).range(1..)
    )]
    pub released_times: i32,
    /// Most rows listed per kind.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
}

/// Parses a status name, ignoring case, `-` and `_`.
fn parse_status(text: &str) -> Result<Status, String> {
    let wanted: String = text
        .chars()
        .filter(|c| *c != '-' && *c != '_')
        .collect::<String>()
        .to_lowercase();
    [
        Status::InProgress,
        Status::Paused,
        Status::Completed,
        Status::Failed,
        Status::Cancelled,
    ]
    .into_iter()
    .find(|s| s.as_str().to_lowercase() == wanted)
    .ok_or_else(|| {
        format!("unknown status {text:?} (InProgress, Paused, Completed, Failed, Cancelled)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn statuses_parse_loosely() {
        assert_eq!(parse_status("in-progress"), Ok(Status::InProgress));
        assert_eq!(parse_status("CANCELLED"), Ok(Status::Cancelled));
        assert_eq!(parse_status("in_progress"), Ok(Status::InProgress));
        assert!(parse_status("running").is_err());
    }
}
