//! Template databases prepared once, the per-test copies made from them,
//! and the sweep of copies that crashed runs left behind.
//!
//! A copy is named `sayiir_test_<unix seconds>_<pid>_<counter>_<nanos>`:
//! the creation time in the name is what lets [`PgServer::sweep_leftovers`]
//! tell an abandoned copy from one a running test still uses.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::{Error, PgServer};

/// The session advisory lock held while a template database is built, so
/// that processes sharing a server build each template once. It differs
/// from `sayiir_diesel::migrations::MIGRATION_LOCK_KEY`, which the
/// migrations take inside the template while this lock is held.
pub const TEMPLATE_LOCK_KEY: i64 = 7_365_796_969_720_001;

/// Prefix of every per-test database.
pub const TEST_DATABASE_PREFIX: &str = "sayiir_test_";

/// How old a per-test database must be (by the time in its name) before
/// [`PgServer::sweep_leftovers`] may drop it. No test holds its database
/// that long; a copy this old is a crashed run's.
pub const LEFTOVER_AGE: Duration = Duration::from_secs(30 * 60);

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl PgServer {
    /// A template database named `sayiir_tpl_<key>`, created and prepared by
    /// `init(url)` once (across processes sharing a server, under the
    /// advisory lock [`TEMPLATE_LOCK_KEY`]). Change `key` when what `init`
    /// does changes: [`migrations_key`](crate::migrations_key) derives one
    /// from migration files. The first call of a process also sweeps the
    /// leftovers of crashed runs ([`PgServer::sweep_leftovers`]).
    ///
    /// # Errors
    /// Database errors, or whatever `init` returns.
    pub async fn template<F, Fut>(&'static self, key: &str, init: F) -> Result<Template, Error>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<(), Error>>,
    {
        if !self.swept.swap(true, Ordering::SeqCst) {
            // Best effort: a sweep that fails leaves leftovers, never a
            // failed test.
            let _ = self.sweep_leftovers().await;
        }
        let name = format!("sayiir_tpl_{key}");
        if self
            .templates
            .lock()
            .map_err(|e| e.to_string())?
            .contains(&name)
        {
            return Ok(Template { server: self, name });
        }
        let mut admin = AsyncPgConnection::establish(&self.admin_url).await?;
        admin
            .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
            .await?;
        let result = async {
            if !exists_database(&mut admin, &name).await? {
                let building = format!("{name}_building");
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                    .await?;
                admin
                    .batch_execute(&format!("CREATE DATABASE {building}"))
                    .await?;
                init(self.url_for(&building)).await?;
                admin
                    .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                    .await?;
            }
            Ok::<(), Error>(())
        }
        .await;
        admin
            .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
            .await?;
        result?;
        self.templates
            .lock()
            .map_err(|e| e.to_string())?
            .push(name.clone());
        Ok(Template { server: self, name })
    }

    /// Drops the per-test databases (`sayiir_test_…`) that crashed runs left
    /// on this server: those created more than [`LEFTOVER_AGE`] ago (by the
    /// time in their name) that no session is connected to. Each is dropped
    /// without `FORCE`, so one a test connects to meanwhile is kept (the
    /// drop fails and is skipped), as is one of another role. Returns the
    /// names dropped. [`PgServer::template`] runs it once per process.
    ///
    /// # Errors
    /// When the server cannot be reached or listed.
    pub async fn sweep_leftovers(&self) -> Result<Vec<String>, Error> {
        use diesel::sql_types::Text;
        use diesel_async::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let mut admin = AsyncPgConnection::establish(&self.admin_url).await?;
        let idle: Vec<Name> = diesel::sql_query(
            "SELECT d.datname::text AS name FROM pg_database d \
             WHERE starts_with(d.datname, $1) \
               AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)",
        )
        .bind::<Text, _>(TEST_DATABASE_PREFIX)
        .load(&mut admin)
        .await?;
        let now = unix_seconds();
        let mut dropped = Vec::new();
        for Name { name } in idle {
            let old = created_at(&name)
                .is_some_and(|created| now.saturating_sub(created) > LEFTOVER_AGE.as_secs());
            if old
                && admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
                    .await
                    .is_ok()
            {
                dropped.push(name);
            }
        }
        Ok(dropped)
    }
}

/// A prepared template database on a [`PgServer`].
pub struct Template {
    server: &'static PgServer,
    name: String,
}

impl Template {
    /// A fresh copy of the template for one test.
    ///
    /// # Errors
    /// Database errors.
    pub async fn database(&self) -> Result<TestDatabase, Error> {
        let name = test_database_name(
            unix_seconds(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        );
        let mut admin = AsyncPgConnection::establish(&self.server.admin_url).await?;
        // Several tests copying one template at once can briefly see each
        // other's copy in progress ("source database is being accessed").
        let started = Instant::now();
        loop {
            let sql = format!("CREATE DATABASE {name} TEMPLATE {}", self.name);
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e)
                    if started.elapsed() < Duration::from_secs(30)
                        && e.to_string().contains("being accessed by other users") =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(TestDatabase {
            url: self.server.url_for(&name),
            admin_url: self.server.admin_url.clone(),
            name,
        })
    }
}

/// One test's own database; dropped `WITH (FORCE)` with the handle.
pub struct TestDatabase {
    url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// Connection URL of this database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await: do it on a short-lived thread with its own runtime.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url).await {
                    let _ = admin.batch_execute(&sql).await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// The name of a per-test database created at `unix_secs` by process `pid`
/// as its `counter`-th; the sub-second part keeps names of processes on
/// different hosts apart.
fn test_database_name(unix_secs: u64, pid: u32, counter: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TEST_DATABASE_PREFIX}{unix_secs}_{pid}_{counter}_{nanos}")
}

/// The creation time (Unix seconds) in a per-test database's name; `None`
/// for any other name, including those of older testkit versions (no time
/// in them), which the sweep therefore leaves alone.
fn created_at(name: &str) -> Option<u64> {
    let parts: Vec<&str> = name
        .strip_prefix(TEST_DATABASE_PREFIX)?
        .split('_')
        .collect();
    match parts.as_slice() {
        [secs, pid, counter, nanos]
            if [pid, counter, nanos]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            secs.parse().ok()
        }
        _ => None,
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn exists_database(admin: &mut AsyncPgConnection, name: &str) -> Result<bool, Error> {
    use diesel::sql_types::{Bool, Text};
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        exists: bool,
    }
    let row: Row =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(admin)
            .await?;
    Ok(row.exists)
}

#[cfg(test)]
mod tests {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    use super::{LEFTOVER_AGE, created_at, test_database_name, unix_seconds};
    use crate::PgServer;

    #[tokio::test]
    async fn the_sweep_drops_only_old_databases_nobody_uses() {
        let server = PgServer::shared().unwrap();
        let mut admin = AsyncPgConnection::establish(server.admin_url())
            .await
            .unwrap();
        let long_ago = unix_seconds() - LEFTOVER_AGE.as_secs() - 60;
        let abandoned = test_database_name(long_ago, 1, 1);
        let in_use = test_database_name(long_ago, 1, 2);
        let recent = test_database_name(unix_seconds() - 60, 1, 3);
        for name in [&abandoned, &in_use, &recent] {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
        }
        let _user = AsyncPgConnection::establish(&server.url_for(&in_use))
            .await
            .unwrap();

        let dropped = server.sweep_leftovers().await.unwrap();

        // (Another process sharing a `DATABASE_URL` server may sweep the
        // abandoned one first: what counts is that it is gone.)
        assert!(!dropped.contains(&in_use), "{dropped:?}");
        assert!(!dropped.contains(&recent), "{dropped:?}");
        let left = existing(&mut admin, &[&abandoned, &in_use, &recent]).await;
        assert_eq!(left, [false, true, true]);
        for name in [&in_use, &recent] {
            admin
                .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .unwrap();
        }
    }

    async fn existing(admin: &mut AsyncPgConnection, names: &[&str]) -> Vec<bool> {
        let mut out = Vec::new();
        for name in names {
            out.push(super::exists_database(admin, name).await.unwrap());
        }
        out
    }

    #[test]
    fn the_creation_time_is_read_back_from_the_name() {
        let name = test_database_name(1_700_000_000, 4242, 7);
        assert!(name.starts_with("sayiir_test_1700000000_4242_7_"), "{name}");
        assert!(
            name.len() <= 63,
            "PostgreSQL truncates longer names: {name}"
        );
        assert_eq!(created_at(&name), Some(1_700_000_000));
    }

    #[test]
    fn names_without_a_creation_time_are_not_leftovers() {
        // The format before the time was added: pid, counter, nanos.
        assert_eq!(created_at("sayiir_test_4242_7_123456789"), None);
        assert_eq!(created_at("sayiir_tpl_0123456789abcdef"), None);
        assert_eq!(created_at("sayiir_test_1700000000_x_7_1"), None);
        assert_eq!(created_at("app"), None);
    }
}
