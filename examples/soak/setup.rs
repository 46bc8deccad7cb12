//! What a run starts from: its log directory, a fresh database on the
//! server, and the server's address for the proxies; and the `leak-claim`
//! corruption, written after the run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sayiir_diesel_testkit::PgServer;

use crate::Error;

/// `dir`, or a temporary directory named after the seed and this process,
/// with the logs of an earlier run in it removed.
pub fn log_dir(dir: Option<&Path>, seed: u64) -> Result<PathBuf, Error> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::temp_dir().join(format!("sayiir-soak-{seed}-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let p = entry?.path();
        if p.extension().is_some_and(|e| e == "log" || e == "out") {
            std::fs::remove_file(p)?;
        }
    }
    Ok(dir)
}

/// Drops and creates database `db`, runs our migrations on it, and returns
/// its URL.
pub async fn fresh_database(server: &PgServer, db: &str) -> Result<String, Error> {
    let mut admin = AsyncPgConnection::establish(server.admin_url()).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let url = server.url_for(db);
    sayiir_diesel::migrations::run(&url).await?;
    Ok(url)
}

/// The server's socket address, read from the host and port of `url`.
pub async fn upstream_of(url: &str) -> Result<SocketAddr, Error> {
    let rest = url.split('@').nth(1).ok_or("no host in the server URL")?;
    let hostport = rest.split('/').next().ok_or("no host in the server URL")?;
    Ok(tokio::net::lookup_host(hostport)
        .await?
        .next()
        .ok_or("cannot resolve the server")?)
}

/// `--corrupt leak-claim`: a claim left on a Completed workflow, which the
/// checks must report.
pub async fn leak_a_claim(url: &str) -> Result<(), Error> {
    let mut c = AsyncPgConnection::establish(url).await?;
    c.batch_execute(
        "INSERT INTO sayiir.claims (instance_id, task_id, worker_id, claimed_at, expires_at) \
         SELECT instance_id, '\\x00', 'ghost', now(), now() FROM sayiir.workflows \
         WHERE status = 'Completed' LIMIT 1",
    )
    .await?;
    Ok(())
}
