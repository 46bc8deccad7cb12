//! The reads and actions of sayiir-diesel's admin tools, written once for
//! the `sayiir-diesel` CLI and the web dashboard.
//!
//! * [`inspect`]: the read queries and the documents they answer with
//!   (overview, lists, one workflow, what is stuck, the queue, a chart of
//!   finished workflows). Every query reads through an index and is
//!   bounded whatever the size of the tables: counts stop at
//!   [`inspect::COUNT_CAP`] and say so, lists page by key.
//! * [`act`]: cancel, pause, resume and send an event through the store
//!   calls workers use, and count what a bulk action would touch.
//! * [`act`]: the actions (cancel, pause, resume, send an event), through
//!   the same store calls a `WorkflowClient` uses.
//! * [`web`]: the dashboard itself, an `axum` router of pages and JSON
//!   answers over [`inspect`] and [`act`] ([`Dashboard`]).
//! * [`error`]: what failed.
//!
//! Reads need one plain connection (a role with `SELECT` on schema
//! `sayiir` is enough; a hot standby works); actions also need an
//! [`act::Backend`] on the primary.
#![deny(missing_docs)]
#![deny(clippy::pedantic)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod act;
pub mod duration;
pub mod error;
mod format;
pub mod inspect;
#[doc(hidden)]
pub mod plans;
mod sql;
pub mod web;

pub use error::Error;
pub use web::Dashboard;
