//! Throwaway PostgreSQL for tests of Sayiir workflows on sayiir-diesel, and
//! for demos.
//!
//! # Testing your workflows
//!
//! Each test gets a database of its own, with sayiir-diesel's schema (and
//! yours, when you pass your migrations), on a server the process starts
//! for itself when `DATABASE_URL` is unset:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sayiir_diesel_testkit::Error> {
//! use sayiir_diesel::DieselBackend;
//! use sayiir_runtime::serialization::JsonCodec;
//!
//! let db = sayiir_diesel_testkit::sayiir_database().await?; // dropped with `db`
//! let backend = DieselBackend::<JsonCodec>::connect(db.url()).await?;
//! // submit with a `WorkflowClient`, run a `PooledWorker`, assert on the
//! // status and output (see `tests/testing_workflows.rs`).
//! # Ok(())
//! # }
//! ```
//!
//! [`sayiir_database_with`] adds your own migrations;
//! [`empty_database`] has nothing in it.
//!
//! # Servers and databases
//!
//! * [`PgServer::shared`] gives one server per process: the one named by
//!   `DATABASE_URL` when it is set, otherwise a private cluster started from
//!   the installed PostgreSQL binaries (`PG_BIN`, `/usr/lib/postgresql/*/bin`
//!   or `PATH`) on a free loopback port, with `fsync=off`. As root it runs as
//!   the `postgres` user. The cluster lives in a temporary directory and is
//!   stopped and removed when the process exits, however it exits: a small
//!   shell supervisor holds the server and watches a pipe from this process.
//! * [`PgServer::template`] prepares one template database once, under the
//!   advisory lock [`TEMPLATE_LOCK_KEY`] (named by a key, so a changed
//!   schema gets a new template: [`migrations_key`] derives one from
//!   migration files), and [`Template::database`] hands out a fresh
//!   `CREATE DATABASE … TEMPLATE` copy per test, dropped `WITH (FORCE)`
//!   when its handle is dropped.
//! * Copies that a crashed run left behind (on a `DATABASE_URL` server; a
//!   throwaway server goes with its process) are dropped by the first
//!   template call of a later run once they are [`LEFTOVER_AGE`] old and no
//!   session uses them ([`PgServer::sweep_leftovers`]).
//! * [`PgServer::start_with`] starts a server of its own with extra
//!   `-c name=value` settings (e.g. `shared_preload_libraries=pg_stat_statements`
//!   for a benchmark); [`PgServer::postmaster_pid`] and [`PgServer::data_dir`]
//!   tell where it runs, and [`PgServer::restart`] restarts it (fast
//!   shutdown, same port).
//! * [`Proxy`] is a loopback TCP proxy that can hold or cut a client's
//!   traffic (partitions and resets in fault tests); [`PgBouncer`] and
//!   [`ReplicatedPair`] start a pooler and a primary with a standby.
//!
//! Failures are loud: a server that cannot start is an error naming what
//! was tried, never a silently skipped test.

mod databases;
mod evidence;
mod pgbouncer;
pub mod proxy;
mod replica;
mod roles;
mod server;
mod template;
pub use databases::{empty_database, migrations_key, sayiir_database, sayiir_database_with};
pub use evidence::{Evidence, EvidenceSink};
pub use pgbouncer::{PgBouncer, PoolMode, pgbouncer_bin};
pub use proxy::Proxy;
pub use replica::{PairWithDatabase, ReplicatedPair};
pub use roles::{LeastPrivilege, as_user};
pub use server::{PgServer, with_database};
pub use template::{LEFTOVER_AGE, TEMPLATE_LOCK_KEY, TEST_DATABASE_PREFIX, Template, TestDatabase};

/// Errors from starting a server or creating databases.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
