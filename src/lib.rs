//! # sayiir-diesel
//!
//! Durable [Sayiir](https://crates.io/crates/sayiir-runtime) workflows on
//! your own PostgreSQL, through Diesel: your pool, your migrations, your
//! typed queries. Everything lives in the Postgres schema `sayiir`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sayiir_diesel::Error> {
//! use sayiir_diesel::DieselBackend;
//! use sayiir_runtime::serialization::JsonCodec;
//!
//! // Pool + embedded migrations (advisory-locked, safe at boot).
//! let backend = DieselBackend::<JsonCodec>::connect("postgres://localhost/app").await?;
//! # let _ = backend;
//! # Ok(())
//! # }
//! ```
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
mod codec;
pub mod config;
mod error;
pub mod kinds;
pub mod migrations;
pub mod models;
#[cfg(test)]
mod plan_tests;
pub mod pool;
mod queries;
pub mod reports;
pub mod retention;
#[allow(missing_docs, clippy::pedantic)]
pub mod schema;
mod store;
pub mod telemetry;
mod wakeup;

pub use backend::{Builder, DieselBackend, Metrics};
pub use config::Config;
pub use error::{Error, Result};
pub use kinds::{QueuedPosition, Status};
pub use pool::PgPool;
