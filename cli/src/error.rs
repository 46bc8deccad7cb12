//! The CLI's failures and their exit codes: 1 runtime or database error,
//! 2 usage error, 3 not found, 4 refused (clap itself exits with 2 on a bad
//! command line).

use std::process::ExitCode;

use sayiir_persistence::BackendError;

/// Why a command failed; [`CliError::exit_code`] tells the shell.
#[derive(Debug)]
pub enum CliError {
    /// The database or the connection failed, or stored data is unreadable.
    Failed(String),
    /// The arguments are valid for clap but cannot be used.
    Usage(String),
    /// The named workflow does not exist.
    NotFound(String),
    /// The workflow's state does not allow the action (cancel of a finished
    /// workflow, resume of one that is not paused…).
    Refused(String),
}

/// Exit code of a runtime or database error.
pub const EXIT_FAILED: u8 = 1;
/// Exit code of a usage error (the same as clap's).
pub const EXIT_USAGE: u8 = 2;
/// Exit code when the workflow does not exist.
pub const EXIT_NOT_FOUND: u8 = 3;
/// Exit code when the action is refused.
pub const EXIT_REFUSED: u8 = 4;

impl CliError {
    /// The process exit code for this failure.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Failed(_) => EXIT_FAILED,
            Self::Usage(_) => EXIT_USAGE,
            Self::NotFound(_) => EXIT_NOT_FOUND,
            Self::Refused(_) => EXIT_REFUSED,
        })
    }

    /// A workflow id that names nothing.
    #[must_use]
    pub fn no_workflow(id: &str) -> Self {
        Self::NotFound(format!("no workflow {id:?}"))
    }

    /// The failure of a command that writes (an action, `prune`,
    /// `migrate`), with what it means when the server or the role cannot
    /// write: the server's own words alone ("read-only transaction",
    /// "permission denied") do not say where to go instead.
    #[must_use]
    pub fn of_write(self) -> Self {
        match self {
            Self::Failed(m) if m.contains("read-only transaction") => Self::Failed(format!(
                "{m}: {NO_WRITES} (a standby, or default_transaction_read_only); {TO_PRIMARY}"
            )),
            Self::Failed(m) if m.contains("permission denied") => Self::Failed(format!(
                "{m}: the role in the URL may not write schema sayiir (a read-only role?); \
                 write commands need the application role"
            )),
            other => other,
        }
    }
}

/// How a server that cannot write is named in messages.
const NO_WRITES: &str = "the server accepts no writes";
/// Where write commands should go instead.
const TO_PRIMARY: &str = "write commands need the primary (read commands work here)";

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed(m) | Self::Usage(m) | Self::NotFound(m) | Self::Refused(m) => {
                f.write_str(m)
            }
        }
    }
}

impl From<sayiir_diesel::Error> for CliError {
    fn from(err: sayiir_diesel::Error) -> Self {
        use sayiir_diesel::Error as E;
        match err {
            E::NotFound(id) => Self::no_workflow(&id),
            E::CannotCancel { .. } | E::CannotPause { .. } | E::NotPaused { .. } => {
                Self::Refused(err.to_string())
            }
            E::InvalidInput { .. } => Self::Usage(err.to_string()),
            E::ReadOnlyServer { evidence, .. } => {
                Self::Failed(format!("{NO_WRITES} ({evidence}); {TO_PRIMARY}"))
            }
            E::Database { source, .. } => source.into(),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<BackendError> for CliError {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::NotFound(id) => Self::no_workflow(&id),
            BackendError::CannotCancel(status) => {
                Self::Refused(format!("cannot cancel a workflow that is {status}"))
            }
            BackendError::CannotPause(why) => Self::Refused(format!("cannot pause: {why}")),
            // The store's own text ("database: …"), without "Backend error: ".
            BackendError::Backend(text) => Self::Failed(text),
            other @ BackendError::Serialization(_) => Self::Failed(other.to_string()),
        }
    }
}

impl From<sayiir_diesel_dashboard::Error> for CliError {
    fn from(err: sayiir_diesel_dashboard::Error) -> Self {
        use sayiir_diesel_dashboard::Error as E;
        match err {
            E::Database(e) => e.into(),
            E::Connection(e) => e.into(),
            E::Store(e) => e.into(),
            E::Input(m) => Self::Usage(m),
        }
    }
}

impl From<diesel::result::Error> for CliError {
    fn from(err: diesel::result::Error) -> Self {
        let text = err.to_string();
        if text.contains("sayiir.") && text.contains("does not exist") {
            Self::Failed(format!(
                "database: {text} (is the schema migrated? run `sayiir-diesel migrate`)"
            ))
        } else {
            Self::Failed(format!("database: {text}"))
        }
    }
}

impl From<diesel::ConnectionError> for CliError {
    fn from(err: diesel::ConnectionError) -> Self {
        Self::Failed(format!("cannot connect to PostgreSQL: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_their_exit_codes() {
        let code = |e: CliError| e.exit_code();
        assert_eq!(
            code(BackendError::NotFound("x".into()).into()),
            ExitCode::from(EXIT_NOT_FOUND)
        );
        assert_eq!(
            code(BackendError::CannotCancel("Completed".into()).into()),
            ExitCode::from(EXIT_REFUSED)
        );
        assert_eq!(
            code(BackendError::Backend("boom".into()).into()),
            ExitCode::from(EXIT_FAILED)
        );
        assert_eq!(
            code(
                sayiir_diesel::Error::NotPaused {
                    status: sayiir_diesel::Status::InProgress
                }
                .into()
            ),
            ExitCode::from(EXIT_REFUSED)
        );
        let missing = diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(String::from("relation \"sayiir.workflows\" does not exist")),
        );
        assert!(
            CliError::from(missing)
                .to_string()
                .contains("sayiir-diesel migrate")
        );
    }

    #[test]
    fn write_failures_say_where_to_go() {
        let standby = CliError::from(sayiir_diesel::Error::ReadOnlyServer {
            what: "the pool",
            evidence: "it is a standby in recovery".into(),
        })
        .to_string();
        assert!(
            standby.contains("accepts no writes (it is a standby in recovery)")
                && standby.contains("need the primary")
                && !standby.contains("the pool"),
            "{standby}"
        );
        let raw =
            CliError::Failed("database: cannot execute DELETE in a read-only transaction".into())
                .of_write()
                .to_string();
        assert!(
            raw.contains("accepts no writes") && raw.contains("primary"),
            "{raw}"
        );
        let denied = CliError::from(BackendError::Backend(
            "database: permission denied for table workflows".into(),
        ))
        .of_write()
        .to_string();
        assert!(
            denied.starts_with("database: permission denied")
                && denied.contains("application role"),
            "{denied}"
        );
        assert_eq!(
            CliError::NotFound("x".into()).of_write().exit_code(),
            ExitCode::from(EXIT_NOT_FOUND)
        );
    }
}
