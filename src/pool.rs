//! The deadpool pool of `AsyncPgConnection`s and per-connection setup.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::Text;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;

use crate::error::{Error, Result};

/// The pool type the backend uses; pass your own to
/// [`DieselBackend::from_pool`](crate::DieselBackend::from_pool).
pub type PgPool = Pool<AsyncPgConnection>;

/// Opens one connection for a URL: the hook for TLS or other custom setup.
pub type ConnectFn =
    Arc<dyn Fn(&str) -> BoxFuture<'_, diesel::ConnectionResult<AsyncPgConnection>> + Send + Sync>;

/// The default connector: plain `AsyncPgConnection::establish` (no TLS).
#[must_use]
pub fn default_connector() -> ConnectFn {
    Arc::new(|url| AsyncPgConnection::establish(url).boxed())
}

/// Session settings applied to every new pooled connection (one round trip
/// per connection, never per query).
#[derive(Debug, Clone)]
struct SessionSettings {
    application_name: String,
    statement_timeout_ms: Option<u128>,
    idle_in_transaction_ms: Option<u128>,
}

async fn apply_settings(
    conn: &mut AsyncPgConnection,
    settings: &SessionSettings,
) -> diesel::QueryResult<()> {
    let ms = |d: Option<u128>| d.map_or_else(|| "0".to_owned(), |v| v.to_string());
    diesel::sql_query(
        "SELECT set_config('application_name', $1, false), \
                set_config('statement_timeout', $2, false), \
                set_config('idle_in_transaction_session_timeout', $3, false)",
    )
    .bind::<Text, _>(&settings.application_name)
    .bind::<Text, _>(ms(settings.statement_timeout_ms))
    .bind::<Text, _>(ms(settings.idle_in_transaction_ms))
    .execute(conn)
    .await
    .map(drop)
}

/// What a pool the backend builds itself is made of: the pool settings of
/// a [`Config`](crate::Config), for its URL or the read URL.
#[derive(Debug, Clone)]
pub(crate) struct Settings<'a> {
    pub(crate) url: &'a str,
    pub(crate) max_connections: usize,
    pub(crate) acquire_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) idle_in_transaction_timeout: Option<Duration>,
    pub(crate) application_name: &'a str,
}

/// Builds the pool `config` describes. Connections are opened lazily.
///
/// Recycling is `Fast` (no test query on checkout, which would cost a round
/// trip per operation); a connection that broke is reported by its first
/// statement and then discarded by the pool.
pub(crate) fn build(config: &Settings<'_>, connect: ConnectFn) -> Result<PgPool> {
    crate::input::check_text("application_name", config.application_name)?;
    let settings = SessionSettings {
        application_name: config.application_name.to_owned(),
        statement_timeout_ms: config.statement_timeout.map(|d| d.as_millis()),
        idle_in_transaction_ms: config.idle_in_transaction_timeout.map(|d| d.as_millis()),
    };
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let settings = settings.clone();
        let connect = Arc::clone(&connect);
        let url = url.to_owned();
        async move {
            let mut conn = connect(&url).await?;
            apply_settings(&mut conn, &settings)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(config.url, manager_config);
    Pool::builder(manager)
        .max_size(config.max_connections.max(1))
        .wait_timeout(Some(nonzero(config.acquire_timeout)))
        .create_timeout(Some(nonzero(config.connect_timeout)))
        .recycle_timeout(Some(nonzero(config.connect_timeout)))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| Error::PoolBuild(Box::new(e)))
}

fn nonzero(d: Duration) -> Duration {
    d.max(Duration::from_millis(1))
}
