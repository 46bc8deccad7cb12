//! Checks `build` makes of the connections it will use, so that a wrong
//! setup fails at boot with a clear error instead of later at random:
//!
//! * the server must accept writes: a standby (`pg_is_in_recovery()`) or a
//!   session with `default_transaction_read_only` is refused with
//!   [`Error::ReadOnlyServer`] (the store's reads must see its own writes,
//!   so it never runs on a standby; reports may: see
//!   [`Builder::read_url`](crate::Builder::read_url));
//! * the connections must be sessions of their own, not a transaction
//!   pooler's ([`Error::TransactionPooler`]), as follows.
//!
//! diesel-async prepares every statement under a name on the session (and
//! runs it in a second message exchange), the wakeup listener relies on
//! `LISTEN` staying registered, and the pool sets `statement_timeout` and
//! friends per session. Behind PgBouncer in transaction or statement mode
//! none of that holds: statements fail at random with "prepared statement
//! does not exist", settings land on other clients' sessions and
//! notifications are lost. So [`DieselBackend::builder`]'s `build` checks
//! the connections it will use and fails with
//! [`Error::TransactionPooler`] instead. (PgBouncer 1.21 and newer can carry
//! named statements in transaction mode with `max_prepared_statements`, but
//! `LISTEN` and session settings still need a session: not supported.)
//!
//! The check takes two connections A and B: A opens a transaction, so its
//! server connection is busy; B runs a transaction and notes its server
//! process id; A commits; B runs another transaction. On a server, or
//! behind a session pooler, B's two transactions share one backend. Behind
//! a transaction pooler the second one is handed the server connection A
//! just released (PgBouncer reuses the most recently released one first),
//! or fails because B's prepared statement lives on another backend. Both
//! are reported. Cost: a few round trips at boot, on connections the pool
//! keeps.
//!
//! Migrations need none of this: they run in one transaction, which a
//! transaction pooler keeps on one server connection.
//!
//! [`DieselBackend::builder`]: crate::DieselBackend::builder

use std::time::Duration;

use diesel::sql_types::Integer;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::error::{Error, Result};

#[derive(diesel::QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(diesel::QueryableByName)]
struct Writable {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    in_recovery: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    read_only: bool,
}

/// Fails with [`Error::ReadOnlyServer`] when `conn` cannot write.
pub(crate) async fn check_writable(what: &'static str, conn: &mut AsyncPgConnection) -> Result<()> {
    let w: Writable = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS in_recovery, \
                current_setting('transaction_read_only') = 'on' AS read_only",
    )
    .get_result(conn)
    .await?;
    let evidence = match (w.in_recovery, w.read_only) {
        (true, _) => "it is a standby in recovery",
        (false, true) => "its sessions are read-only (default_transaction_read_only)",
        (false, false) => return Ok(()),
    };
    Err(Error::ReadOnlyServer {
        what,
        evidence: evidence.to_owned(),
    })
}

async fn backend_pid(conn: &mut AsyncPgConnection) -> diesel::QueryResult<i32> {
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(conn)
        .await
        .map(|p| p.pid)
}

/// `Some(evidence)` when B's session was not kept on one server connection.
async fn probe(a: &mut AsyncPgConnection, b: &mut AsyncPgConnection) -> Result<Option<String>> {
    a.batch_execute("BEGIN").await?;
    backend_pid(a).await?;
    b.batch_execute("BEGIN").await?;
    let first = backend_pid(b).await?;
    b.batch_execute("COMMIT").await?;
    a.batch_execute("COMMIT").await?;
    b.batch_execute("BEGIN").await?;
    let second = backend_pid(b).await;
    b.batch_execute("COMMIT").await?;
    match second {
        Ok(second) if second == first => Ok(None),
        Ok(second) => Ok(Some(format!(
            "one session's transactions ran on server processes {first} and {second}"
        ))),
        Err(diesel::result::Error::DatabaseError(_, info))
            if info.message().contains("prepared statement") =>
        {
            Ok(Some(format!(
                "a session lost its prepared statement: {}",
                info.message()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Checks that connections `a` and `b` (open at the same time) are sessions
/// of their own on the server, within `limit`.
///
/// # Errors
/// [`Error::TransactionPooler`] when they are not, or when the check does
/// not finish within `limit` (a pooler with a single server connection);
/// database errors otherwise.
pub(crate) async fn check_sessions(
    what: &'static str,
    a: &mut AsyncPgConnection,
    b: &mut AsyncPgConnection,
    limit: Duration,
) -> Result<()> {
    match tokio::time::timeout(limit, probe(a, b)).await {
        Ok(Ok(None)) => Ok(()),
        Ok(Ok(Some(evidence))) => Err(Error::TransactionPooler { what, evidence }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(Error::TransactionPooler {
            what,
            evidence: format!("two sessions could not each run a transaction within {limit:?}"),
        }),
    }
}

/// A failure that can only come from a transaction pooler: a statement
/// prepared on the session was gone at its next message (connection set-up
/// included: diesel-async prepares statements while establishing).
fn lost_statement(what: &'static str, e: Error) -> Error {
    let text = e.to_string();
    if text.contains("prepared statement") && text.contains("does not exist") {
        Error::TransactionPooler {
            what,
            evidence: format!("a session lost its prepared statement: {text}"),
        }
    } else {
        e
    }
}

/// Checks that `pool` writes, and two of its connections at once (skipped
/// when the pool holds fewer than two). A connection the check leaves in an unknown state is
/// taken out of the pool rather than returned to it.
pub(crate) async fn check_pool(pool: &crate::pool::PgPool, limit: Duration) -> Result<()> {
    check_pool_inner(pool, limit)
        .await
        .map_err(|e| lost_statement("the pool", e))
}

async fn check_pool_inner(pool: &crate::pool::PgPool, limit: Duration) -> Result<()> {
    let mut a = pool.get().await?;
    check_writable("the pool", &mut a).await?;
    if pool.status().max_size < 2 {
        return Ok(());
    }
    let mut b = pool.get().await?;
    let outcome = check_sessions("the pool", &mut a, &mut b, limit).await;
    if outcome.is_err() {
        drop(deadpool::managed::Object::take(a));
        drop(deadpool::managed::Object::take(b));
    }
    outcome
}

/// Checks that `url` (the listener's) writes, and two connections opened
/// by `connect` to it.
pub(crate) async fn check_url(
    connect: &crate::pool::ConnectFn,
    url: &str,
    limit: Duration,
) -> Result<()> {
    check_url_inner(connect, url, limit)
        .await
        .map_err(|e| lost_statement("the builder's URL", e))
}

async fn check_url_inner(
    connect: &crate::pool::ConnectFn,
    url: &str,
    limit: Duration,
) -> Result<()> {
    let mut a = connect(url).await?;
    check_writable("the builder's URL", &mut a).await?;
    let mut b = connect(url).await?;
    check_sessions("the builder's URL", &mut a, &mut b, limit).await
}
