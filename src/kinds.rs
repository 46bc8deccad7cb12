//! The text columns that name a workflow status or a position, as Rust
//! enums: `sayiir.workflows.status` / `sayiir.history.status` ([`Status`]),
//! `sayiir.workflows.position_kind` / `sayiir.history.position_kind`
//! ([`Position`]) and `sayiir.tasks.position_kind` ([`QueuedPosition`]). Each
//! maps to and from the column's text, and a value the enum does not know
//! is a deserialization error, never a silent default.

use std::io::Write as _;

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Text;

/// Defines a public enum whose values are stored as their own names in a
/// text column: the enum, `as_str` / `parse`, `Display`,
/// `ALL`, and the Diesel `ToSql` / `FromSql` for `Text`. The variants are
/// named once.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $ty:ident {
            $( $(#[$vmeta:meta])* $variant:ident ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, AsExpression, FromSqlRow)]
        #[diesel(sql_type = Text)]
        pub enum $ty {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The column's text for this value.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                }
            }

            /// The value a column's text names, if any.
            #[must_use]
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $(stringify!($variant) => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ToSql<Text, Pg> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $ty {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                let text = std::str::from_utf8(bytes.as_bytes())?;
                Self::parse(text).ok_or_else(|| {
                    format!(concat!("unknown ", stringify!($ty), " {:?}"), text).into()
                })
            }
        }
    };
}

text_enum! {
    /// A workflow's status (the CHECK constraint of `sayiir.workflows.status`).
    pub enum Status {
        /// Running or parked.
        InProgress,
        /// Held until `unpause`.
        Paused,
        /// Finished with an output.
        Completed,
        /// Finished with an error.
        Failed,
        /// Finished by a cancel request.
        Cancelled,
    }
}

text_enum! {
    /// Where an instance in the dispatch queue (`sayiir.tasks`) stands.
    pub enum QueuedPosition {
        /// At a task to run.
        AtTask,
        /// Parked at a durable delay.
        AtDelay,
        /// Parked waiting for an external event.
        AtSignal,
    }
}

text_enum! {
    /// Where an InProgress or Paused workflow stands (the runtime's
    /// `ExecutionPosition` variant names).
    pub enum Position {
        /// Submitted, no task run yet.
        NotStarted,
        /// At a task to run.
        AtTask,
        /// At a fork whose branches run.
        AtFork,
        /// At the join after a fork.
        AtJoin,
        /// Parked at a durable delay.
        AtDelay,
        /// Parked waiting for an external event.
        AtSignal,
        /// Inside a loop.
        InLoop,
    }
}

impl Status {
    /// Completed, Failed or Cancelled: never written again.
    #[must_use]
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text() {
        assert_eq!(Status::ALL.len(), 5);
        assert_eq!(QueuedPosition::ALL.len(), 3);
        assert_eq!(Position::ALL.len(), 7);
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(*s));
        }
        for p in QueuedPosition::ALL {
            assert_eq!(QueuedPosition::parse(&p.to_string()), Some(*p));
        }
        for p in Position::ALL {
            assert_eq!(Position::parse(p.as_str()), Some(*p));
        }
        assert_eq!(Status::parse("Running"), None);
        assert_eq!(Position::parse("AtTask"), Some(Position::AtTask));
        assert!(Status::Cancelled.is_finished() && !Status::Paused.is_finished());
    }
}

#[cfg(test)]
mod runtime_names {
    use sayiir_core::TaskId;
    use sayiir_core::snapshot::ExecutionPosition as P;

    use super::Position;

    /// Every position the runtime can write parses back.
    #[test]
    fn every_runtime_position_has_a_value() {
        let t = TaskId::from("t");
        let at = chrono::DateTime::<chrono::Utc>::MIN_UTC;
        let all = [
            P::NotStarted,
            P::AtTask { task_id: t },
            P::AtFork {
                fork_id: t,
                completed_branches: std::collections::HashMap::new(),
                wake_at: at,
            },
            P::AtJoin {
                join_id: t,
                completed_branches: std::collections::HashMap::new(),
            },
            P::AtDelay {
                delay_id: t,
                entered_at: at,
                wake_at: at,
                next_task_id: None,
            },
            P::AtSignal {
                signal_id: t,
                signal_name: String::new(),
                wake_at: None,
                next_task_id: None,
            },
            P::InLoop {
                loop_id: t,
                iteration: 0,
                next_task_id: None,
            },
        ];
        for p in all {
            assert!(Position::parse(p.as_ref()).is_some(), "{}", p.as_ref());
        }
    }
}
