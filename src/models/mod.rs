//! The data layer: one module per `sayiir` table, each with its row type
//! (`Queryable + Selectable`, checked against [`crate::schema`] at compile
//! time), the statements that act on that table, and their `.sql` files
//! beside it.
//!
//! The row types are public, for your own Diesel queries and reports
//! (see [`crate::reports`]). Hash columns (`definition_hash`, `task_id`, …)
//! hold the raw 32 bytes of the SHA-256 id; the snapshot blobs are framed
//! by `sayiir_core::snapshot_format` with outputs stripped. Write through
//! the store traits, not these rows: the backend keeps the columns, the
//! queue and the blobs consistent.
//!
//! | table | row | what acts on it |
//! |---|---|---|
//! | `sayiir.workflows` | [`Workflow`] | lock, load, the one write statement, delete |
//! | `sayiir.task_outputs` | [`TaskOutput`] | one output, a member's output |
//! | `sayiir.history` | [`HistoryEntry`] | the entries at a task (recovery) |
//! | `sayiir.tasks` | [`QueuedTask`] | the finders, due work, the queue sample, quarantine |
//! | `sayiir.claims` | [`Claim`] | claim, release, extend, is a claim live |
//! | `sayiir.signals` | [`Signal`], [`NewSignal`] | find, upsert, delete |
//! | `sayiir.events` | [`Event`], [`NewEvent`] | push, pop the oldest |

pub(crate) mod claims;
pub(crate) mod events;
pub(crate) mod history;
#[allow(
    clippy::ref_option_ref,
    reason = "AsChangeset on a borrowing row reads its optional fields as &Option<&str>"
)]
pub(crate) mod signals;
pub(crate) mod task_outputs;
pub(crate) mod tasks;
pub(crate) mod workflows;

pub use claims::{Claim, claim_is_live};
pub use events::{Event, NewEvent};
pub use history::HistoryEntry;
pub use signals::{NewSignal, Signal};
pub use task_outputs::TaskOutput;
pub use tasks::QueuedTask;
pub use workflows::Workflow;
