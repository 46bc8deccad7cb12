//! Embedded migrations, applied in one transaction under a transaction-level
//! advisory lock so that many processes booting at once are safe (and so
//! that they run through a transaction-pooling PgBouncer too: one
//! transaction keeps one server connection), with diesel's bookkeeping table
//! in schema `sayiir` (never `public.__diesel_schema_migrations`). Each
//! migration runs in a savepoint; a failing one rolls back every migration
//! of the run.
//!
//! The harness is synchronous: it runs on an `AsyncConnectionWrapper` inside
//! `spawn_blocking`, so it works on current-thread runtimes too
//! (`#[tokio::test]`), unlike `block_in_place`.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Integer, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{Error, Result};

/// The migrations of this crate, embedded at compile time.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Where the files of [`MIGRATIONS`] were when this crate was built: the
/// workspace's `migrations/`, or the copy inside the downloaded package
/// (the package ships them). `sayiir-diesel-testkit` keys its template
/// databases on their contents; nothing else should need it.
#[doc(hidden)]
pub const SOURCE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// The advisory lock key held while migrating ("sayiir" in ASCII, plus 1).
pub const MIGRATION_LOCK_KEY: i64 = 0x7361_7969_6972_0001;

/// Oldest supported server, as `server_version_num`.
pub const MIN_SERVER_VERSION_NUM: i32 = 130_000;

/// Applies every pending migration to the database at `url` and returns the
/// versions it applied (empty when up to date). Idempotent and safe to call
/// from many processes at once. Refuses servers older than PostgreSQL 13.
///
/// # Errors
/// [`Error::Connection`], [`Error::UnsupportedServer`] or [`Error::Migration`].
pub async fn run(url: &str) -> Result<Vec<String>> {
    let conn = AsyncPgConnection::establish(url).await?;
    run_on(conn).await
}

/// Reverts every migration of this crate: **drops all sayiir tables and
/// their data** (the empty schema `sayiir` and its bookkeeping table stay).
///
/// # Errors
/// [`Error::Connection`] or [`Error::Migration`].
pub async fn revert_all(url: &str) -> Result<Vec<String>> {
    let conn = AsyncPgConnection::establish(url).await?;
    locked(conn, false, |harness| {
        harness
            .revert_all_migrations(MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect())
    })
    .await
}

/// [`run`] on a connection you opened, for example through your TLS
/// connector (the one given to [`Builder::connector`]). Consumes it.
///
/// # Errors
/// [`Error::UnsupportedServer`] or [`Error::Migration`].
///
/// [`Builder::connector`]: crate::Builder::connector
pub async fn run_on(conn: AsyncPgConnection) -> Result<Vec<String>> {
    locked(conn, true, |harness| {
        harness
            .run_pending_migrations(MIGRATIONS)
            .map(|v| v.iter().map(ToString::to_string).collect())
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct ServerVersion {
    #[diesel(sql_type = Integer)]
    num: i32,
    #[diesel(sql_type = Text)]
    version: String,
}

/// Fails with [`Error::UnsupportedServer`] below PostgreSQL 13.
fn ensure_supported(num: i32, version: &str) -> Result<()> {
    if num < MIN_SERVER_VERSION_NUM {
        return Err(Error::UnsupportedServer {
            found: version.to_owned(),
        });
    }
    Ok(())
}

type Wrapper = AsyncConnectionWrapper<AsyncPgConnection>;
type HarnessResult<T> = diesel::migration::Result<T>;

/// Why a migration run failed: the server is too old, or the harness (or
/// the statements around it) failed.
enum Failure {
    Refused(Error),
    Harness(Box<dyn std::error::Error + Send + Sync>),
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Harness(Box::new(e))
    }
}

/// Runs `f` on a blocking thread in one transaction holding the migration
/// lock (`pg_advisory_xact_lock`, released by the commit or rollback), with
/// `search_path` set to `sayiir` for the transaction so the bookkeeping
/// table is ours. With `check_version`, refuses servers older than 13 first.
async fn locked<T, F>(conn: AsyncPgConnection, check_version: bool, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Wrapper) -> HarnessResult<T> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let mut wrapper = Wrapper::from(conn);
        let outcome =
            diesel::Connection::transaction(&mut wrapper, |w| -> std::result::Result<T, Failure> {
                if check_version {
                    let v: ServerVersion = diesel::RunQueryDsl::get_result(
                        diesel::sql_query(
                            "SELECT current_setting('server_version_num')::int4 AS num, \
                                current_setting('server_version') AS version",
                        ),
                        w,
                    )?;
                    ensure_supported(v.num, &v.version).map_err(Failure::Refused)?;
                }
                w.batch_execute(&format!(
                    "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY}); \
                 CREATE SCHEMA IF NOT EXISTS sayiir; \
                 SET LOCAL search_path TO sayiir"
                ))?;
                f(w).map_err(Failure::Harness)
            });
        outcome.map_err(|e| match e {
            Failure::Refused(e) => e,
            Failure::Harness(e) => Error::Migration(e),
        })
    })
    .await
    .map_err(|e| Error::Migration(format!("migration thread failed: {e}").into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_old_servers_naming_the_version() {
        let err = ensure_supported(120_015, "12.15").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("12.15") && text.contains("not supported"),
            "{text}"
        );
        assert!(ensure_supported(130_000, "13.0").is_ok());
    }
}
