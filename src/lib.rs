//! # sayiir-diesel
//!
//! Durable [Sayiir](https://crates.io/crates/sayiir-runtime) workflows on
//! your own PostgreSQL, through Diesel: your pool, your migrations, your
//! typed queries. Everything lives in the Postgres schema `sayiir`.
//!
//! * [`DieselBackend`] implements the `sayiir-persistence` store traits, so
//!   the runtime's `PooledWorker`, `CheckpointingRunner` and
//!   `WorkflowClient` run on it unchanged. [`DieselBackend::connect`] is
//!   pool, migrations and wakeup listener in one line;
//!   [`DieselBackend::builder`] tunes them.
//! * [`migrations::run`] applies the schema from your own boot step.
//! * [`schema`] (generated, with every column documented) and [`models`]
//!   are our tables for your own typed queries; [`reports`] has ready-made
//!   fragments; [`retention`] prunes.
//!
//! ## Quick start
//!
//! The README's quick start, `cargo run --example quickstart`, is this
//! program (`examples/quickstart.rs`, compiled here as it stands): two
//! `PooledWorker`s run an order workflow with a fork, a join, a durable
//! delay and a wait for an external event, the `CheckpointingRunner` runs
//! one in-process, and a typed Diesel query reads our tables. It starts a
//! throwaway PostgreSQL server through the test kit when `DATABASE_URL` is
//! unset; in an application, connect to your own URL.
//!
#![doc = concat!("```no_run\n", include_str!("../examples/quickstart.rs"), "```")]
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

mod backend;
pub mod boot_check;
mod builder;
mod codec;
pub mod config;
mod dispatch;
pub mod error;
mod input;
pub mod kinds;
pub mod migrations;
pub mod models;
mod persist;
#[cfg(test)]
mod plan_tests;
pub mod pool;
mod queries;
pub mod reports;
pub mod retention;
#[allow(missing_docs, clippy::pedantic)]
pub mod schema;
mod session;
mod snapshots;
mod store;
pub mod telemetry;
mod wakeup;

pub use backend::{DieselBackend, Metrics};
pub use builder::Builder;
pub use config::Config;
pub use error::{Error, Result};
pub use input::MAX_KEY_BYTES;
pub use kinds::{Position, QueuedPosition, Status};
pub use pool::PgPool;
