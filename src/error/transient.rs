//! Which errors are transient (retrying can help): the one table
//! [`TRANSIENT`] and [`Error::is_transient`], which reads it.

use super::Error;

/// One transient condition: a condition of the server or the network, not
/// of the data or the statement, so retrying can help.
#[derive(Debug, Clone, Copy)]
pub struct Transient {
    /// The condition.
    pub condition: &'static str,
    /// Its SQLSTATE (class or code).
    pub sqlstate: &'static str,
    /// How it is recognised: the SQLSTATE where the driver keeps it (see
    /// [`Error::Database::code`](Error::Database)), else a phrase of the
    /// server's message.
    pub recognised_by: Recognised,
}

/// How [`Error::is_transient`] recognises a [`Transient`] condition.
#[derive(Debug, Clone, Copy)]
pub enum Recognised {
    /// The error's SQLSTATE.
    Code,
    /// The driver's error kind for a broken connection (it has no SQLSTATE).
    BrokenConnection,
    /// A phrase the server's message contains.
    Message(&'static str),
}

/// Every condition [`Error::is_transient`] calls transient, the one table
/// it reads. Pool timeouts, a closed pool, failed connects and a listener
/// not ready in time ([`Error::Pool`], [`Error::Connection`],
/// [`Error::ListenerTimeout`]) are transient too.
pub const TRANSIENT: &[Transient] = &[
    t(
        "connection lost, cannot send",
        "08xxx",
        Recognised::BrokenConnection,
    ),
    t("serialization failure", "40001", Recognised::Code),
    t(
        "read-only server (a standby, a failover in progress)",
        "25006",
        Recognised::Code,
    ),
    t(
        "read-only transaction",
        "25006",
        Recognised::Message("in a read-only transaction"),
    ),
    t(
        "deadlock",
        "40P01",
        Recognised::Message("deadlock detected"),
    ),
    t(
        "admin or crash shutdown",
        "57P01, 57P02",
        Recognised::Message("terminating connection"),
    ),
    t(
        "cannot connect now (starting, stopping, recovering)",
        "57P03",
        Recognised::Message("the database system is"),
    ),
    t(
        "statement timeout, cancel, conflict with recovery",
        "57014, 40001",
        Recognised::Message("canceling statement due to"),
    ),
    t(
        "too many connections",
        "53300",
        Recognised::Message("too many clients"),
    ),
    t(
        "too many connections (role or database limit)",
        "53300",
        Recognised::Message("too many connections"),
    ),
    t(
        "connection failure reported by the server",
        "08xxx",
        Recognised::Message("connection"),
    ),
    t(
        "disk full",
        "53100",
        Recognised::Message("could not extend"),
    ),
    t(
        "disk full (write)",
        "53100",
        Recognised::Message("No space left"),
    ),
    t(
        "out of memory",
        "53200",
        Recognised::Message("out of memory"),
    ),
];

const fn t(
    condition: &'static str,
    sqlstate: &'static str,
    recognised_by: Recognised,
) -> Transient {
    Transient {
        condition,
        sqlstate,
        recognised_by,
    }
}

impl Error {
    /// Whether retrying can help: one of the [`TRANSIENT`] conditions, a
    /// pool that gave no connection, a failed connect, or a listener not
    /// ready in time.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error as D};
        match self {
            Error::Pool(_) | Error::Connection(_) | Error::ListenerTimeout { .. } => true,
            Error::Database { code, source, .. } => TRANSIENT.iter().any(|t| match t.recognised_by {
                Recognised::Code => code.is_some_and(|c| c == t.sqlstate),
                Recognised::BrokenConnection => matches!(
                    source,
                    D::BrokenTransactionManager
                        | D::DatabaseError(
                            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
                            _
                        )
                ),
                Recognised::Message(needle) => {
                    matches!(source, D::DatabaseError(_, info) if info.message().contains(needle))
                }
            }),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_not_ready_in_time_is_transient_and_says_so() {
        let e = Error::ListenerTimeout {
            waited: std::time::Duration::from_secs(5),
        };
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "LISTEN connection not ready within 5s");
        assert!(matches!(
            sayiir_persistence::BackendError::from(e),
            sayiir_persistence::BackendError::Backend(m) if m.contains("LISTEN")
        ));
    }

    #[test]
    fn every_row_of_the_transient_table_is_recognised() {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        for row in TRANSIENT {
            let err = match row.recognised_by {
                Recognised::Code => Error::Database {
                    code: Some(row.sqlstate),
                    message: String::new(),
                    source: D::NotFound,
                },
                Recognised::BrokenConnection => Error::from(D::DatabaseError(
                    K::ClosedConnection,
                    Box::new(String::new()),
                )),
                Recognised::Message(needle) => Error::from(D::DatabaseError(
                    K::Unknown,
                    Box::new(format!("FATAL: {needle} now")),
                )),
            };
            assert!(err.is_transient(), "{row:?}");
        }
        let serialization = Error::from(D::DatabaseError(
            K::SerializationFailure,
            Box::new(String::from("could not serialize access")),
        ));
        assert!(serialization.is_transient());
        let syntax = Error::from(D::DatabaseError(
            K::Unknown,
            Box::new(String::from("syntax error at or near \"SELEC\"")),
        ));
        assert!(!syntax.is_transient());
    }
}
