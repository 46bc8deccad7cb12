//! The PostgreSQL server under test: databases and statistics. The bench's
//! own read-only queries on a run's database are in `monitor.rs`.
//!
//! Every statement of the bench's own carries the comment [`TAG`], so it is
//! left out of the statement counts.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use sayiir_diesel_testkit::PgServer;

use crate::{Error, procstat};

/// Marks the bench's own statements in `pg_stat_statements`.
pub const TAG: &str = "/* sayiir-bench monitor */";

/// One `bigint` column named `n`.
#[derive(QueryableByName)]
pub struct Num {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// One `text` column named `s`.
#[derive(QueryableByName)]
pub struct Str {
    #[diesel(sql_type = Text)]
    pub s: String,
}

/// Planning and execution of one statement (see [`Server::statement_times`]).
#[derive(QueryableByName)]
pub struct StatementTimes {
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = BigInt)]
    pub plans: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub plan_ms: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub exec_ms: f64,
    #[diesel(sql_type = Text)]
    pub query: String,
}

/// What auto_explain logs (see [`Server::auto_explain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Explain {
    Off,
    /// Every statement, with ANALYZE, BUFFERS and timing.
    Analyze,
    /// The plan of statements that take at least this many milliseconds,
    /// with ANALYZE (actual rows) and BUFFERS but without per-node timing,
    /// the costly part of the instrumentation every statement then pays.
    Slower(u32),
}

/// The settings that decide whether a commit reaches the disk before it
/// returns, as the server reports them.
pub struct Durability {
    pub fsync: String,
    pub synchronous_commit: String,
    pub full_page_writes: String,
    pub wal_sync_method: String,
}

impl Durability {
    /// The three settings at PostgreSQL's defaults: a commit returns once
    /// its WAL is flushed, and a crash cannot tear a page.
    pub fn durable(&self) -> bool {
        self.fsync == "on" && self.synchronous_commit == "on" && self.full_page_writes == "on"
    }

    /// For the header, e.g. `durable: fsync=on, synchronous_commit=on,
    /// full_page_writes=on, wal_sync_method=fdatasync`.
    pub fn describe(&self) -> String {
        format!(
            "{}: fsync={}, synchronous_commit={}, full_page_writes={}{}",
            if self.durable() {
                "durable"
            } else {
                "NOT durable"
            },
            self.fsync,
            self.synchronous_commit,
            self.full_page_writes,
            if self.fsync == "on" {
                format!(", wal_sync_method={}", self.wal_sync_method)
            } else {
                String::new()
            }
        )
    }
}

/// A server setting's current value.
async fn setting(conn: &mut AsyncPgConnection, name: &str) -> Result<String, Error> {
    Ok(diesel::sql_query("SELECT current_setting($1) AS s")
        .bind::<Text, _>(name)
        .get_result::<Str>(conn)
        .await?
        .s)
}

/// Settings that turn the testkit's fsync-off server back to PostgreSQL's
/// durable defaults (passed after the testkit's own `-c`s, so they win).
const DURABLE_SETTINGS: [&str; 3] = ["fsync=on", "synchronous_commit=on", "full_page_writes=on"];

/// The server, an admin connection to its maintenance database, and what
/// it offers (`pg_stat_statements`, a local postmaster to sample).
pub struct Server {
    pg: PgServer,
    admin: AsyncPgConnection,
    pub version: String,
    pub statements: bool,
    pub postmaster: Option<u32>,
    pub throwaway: bool,
    pub durability: Durability,
}

impl Server {
    /// `DATABASE_URL`'s server, or a throwaway one with `pg_stat_statements`.
    /// `track_planning`: also record planning time and the number of
    /// plans per statement (`--scale`; it costs a little on every
    /// statement, so the workload runs leave it off). `durable`: the
    /// throwaway server keeps PostgreSQL's durable defaults (fsync,
    /// synchronous_commit and full_page_writes on) instead of the
    /// testkit's fsync-off settings; with `DATABASE_URL`, an error unless
    /// that server already commits durably.
    pub async fn open(track_planning: bool, durable: bool) -> Result<Server, Error> {
        let external = std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty());
        let pg = tokio::task::spawn_blocking(move || {
            let mut settings = vec![
                // auto_explain stays off (log_min_duration -1) unless
                // `--scale` turns it on (see `Server::auto_explain`).
                "shared_preload_libraries=pg_stat_statements,auto_explain",
                "pg_stat_statements.track=top",
                "pg_stat_statements.max=10000",
            ];
            if track_planning {
                settings.push("pg_stat_statements.track_planning=on");
            }
            if durable {
                settings.extend(DURABLE_SETTINGS);
            }
            PgServer::start_with(&settings)
        })
        .await??;
        let mut admin = AsyncPgConnection::establish(pg.admin_url()).await?;
        let version = diesel::sql_query("SELECT current_setting('server_version') AS s")
            .get_result::<Str>(&mut admin)
            .await?
            .s;
        let durability = Durability {
            fsync: setting(&mut admin, "fsync").await?,
            synchronous_commit: setting(&mut admin, "synchronous_commit").await?,
            full_page_writes: setting(&mut admin, "full_page_writes").await?,
            wal_sync_method: setting(&mut admin, "wal_sync_method").await?,
        };
        if durable && !durability.durable() {
            return Err(format!("--durable, but the server is {}", durability.describe()).into());
        }
        // Needs the library preloaded; the view lives in the maintenance
        // database and covers every database (we filter by dbid).
        let statements = admin
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .is_ok()
            && diesel::sql_query("SELECT count(*) AS n FROM pg_stat_statements")
                .get_result::<Num>(&mut admin)
                .await
                .is_ok();
        let postmaster = match pg.postmaster_pid() {
            Some(pid) => Some(pid),
            // A local server: our admin backend's parent is the postmaster.
            None => {
                let me = diesel::sql_query("SELECT pg_backend_pid()::bigint AS n")
                    .get_result::<Num>(&mut admin)
                    .await?
                    .n;
                u32::try_from(me)
                    .ok()
                    .and_then(procstat::parent_of)
                    .filter(|pm| procstat::comm_of(*pm).is_some_and(|c| c.starts_with("postgres")))
            }
        };
        Ok(Server {
            pg,
            admin,
            version,
            statements,
            postmaster,
            throwaway: !external,
            durability,
        })
    }

    /// The throwaway server's log, where auto_explain writes its plans.
    pub fn log_path(&self) -> Option<std::path::PathBuf> {
        let path = self.pg.data_dir()?.parent()?.join("server.log");
        path.exists().then_some(path)
    }

    /// Sets auto_explain for every session of the server, the open ones
    /// included (`ALTER SYSTEM` and a configuration reload), so that it
    /// shows the plans a backend's pooled connections really use. Only on
    /// the throwaway server; false when it is not that or has not loaded
    /// auto_explain.
    pub async fn auto_explain(&mut self, mode: Explain) -> Result<bool, Error> {
        let loaded = diesel::sql_query(
            "SELECT coalesce(current_setting('auto_explain.log_min_duration', true), '') AS s",
        )
        .get_result::<Str>(&mut self.admin)
        .await?
        .s;
        if !self.throwaway || loaded.is_empty() {
            return Ok(false);
        }
        let settings: &[(&str, String)] = match mode {
            Explain::Off => &[],
            Explain::Analyze => &[
                ("log_min_duration", "0".to_owned()),
                ("log_analyze", "on".to_owned()),
                ("log_buffers", "on".to_owned()),
                ("log_timing", "on".to_owned()),
            ],
            Explain::Slower(ms) => &[
                ("log_min_duration", ms.to_string()),
                ("log_analyze", "on".to_owned()),
                ("log_buffers", "on".to_owned()),
                ("log_timing", "off".to_owned()),
            ],
        };
        for name in [
            "log_min_duration",
            "log_analyze",
            "log_buffers",
            "log_timing",
        ] {
            let sql = match settings.iter().find(|(n, _)| *n == name) {
                Some((_, value)) => format!("ALTER SYSTEM SET auto_explain.{name} = '{value}'"),
                None => format!("ALTER SYSTEM RESET auto_explain.{name}"),
            };
            self.admin.batch_execute(&sql).await?;
        }
        self.admin.batch_execute("SELECT pg_reload_conf()").await?;
        // Sessions reread the configuration before their next statement;
        // give the postmaster a moment to signal them.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(true)
    }

    /// Per statement of the database run at least `min_calls` times since
    /// the last reset (the bench's own left out): calls, times planned,
    /// mean planning and execution time in ms (plans and planning time
    /// are 0 without `track_planning`), and the statement's text.
    pub async fn statement_times(
        &mut self,
        oid: i64,
        min_calls: i64,
    ) -> Result<Vec<StatementTimes>, Error> {
        if !self.statements {
            return Ok(Vec::new());
        }
        Ok(diesel::sql_query(
            "SELECT calls::bigint AS calls, plans::bigint AS plans, \
                    mean_plan_time::float8 AS plan_ms, mean_exec_time::float8 AS exec_ms, \
                    query AS query \
             FROM pg_stat_statements \
             WHERE dbid::bigint = $1 AND calls >= $2 \
               AND query NOT LIKE '%sayiir-bench monitor%' \
             ORDER BY calls DESC",
        )
        .bind::<BigInt, _>(oid)
        .bind::<BigInt, _>(min_calls)
        .load::<StatementTimes>(&mut self.admin)
        .await?)
    }

    /// Rolled-back transactions of the database so far.
    pub async fn rollbacks(&mut self, oid: i64) -> Result<i64, Error> {
        Ok(diesel::sql_query(
            "SELECT xact_rollback::bigint AS n FROM pg_stat_database WHERE datid::bigint = $1",
        )
        .bind::<BigInt, _>(oid)
        .get_result::<Num>(&mut self.admin)
        .await?
        .n)
    }

    pub fn url_for(&self, db: &str) -> String {
        self.pg.url_for(db)
    }

    pub async fn create_database(&mut self, db: &str) -> Result<i64, Error> {
        self.admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await?;
        self.admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await?;
        let oid = diesel::sql_query("SELECT oid::bigint AS n FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(db)
            .get_result::<Num>(&mut self.admin)
            .await?
            .n;
        Ok(oid)
    }

    pub async fn drop_database(&mut self, db: &str) -> Result<(), Error> {
        self.admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .await?;
        Ok(())
    }

    /// Waits until no session is connected to `db`, so its statistics are
    /// flushed (a backend flushes them when it exits). After `limit`, ends
    /// the stragglers; returns how many had to be ended.
    pub async fn wait_no_sessions(&mut self, db: &str, limit: Duration) -> Result<i64, Error> {
        let deadline = Instant::now() + limit;
        loop {
            let n = diesel::sql_query(
                "SELECT count(*)::bigint AS n FROM pg_stat_activity WHERE datname = $1",
            )
            .bind::<Text, _>(db)
            .get_result::<Num>(&mut self.admin)
            .await?
            .n;
            if n == 0 {
                // Let the postmaster reap them (their CPU moves to its cutime).
                tokio::time::sleep(Duration::from_millis(100)).await;
                return Ok(0);
            }
            if Instant::now() > deadline {
                diesel::sql_query(
                    "SELECT count(pg_terminate_backend(pid))::bigint AS n \
                     FROM pg_stat_activity WHERE datname = $1",
                )
                .bind::<Text, _>(db)
                .get_result::<Num>(&mut self.admin)
                .await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                return Ok(n);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// WAL flushes of the whole server so far (`pg_stat_wal`, PostgreSQL
    /// 14 and later; `None` before). Backends report theirs when they go
    /// idle or exit, and the bench reads this once every session of the
    /// run has exited.
    pub async fn wal_syncs(&mut self) -> Result<Option<i64>, Error> {
        let n = diesel::sql_query("SELECT wal_sync::bigint AS n FROM pg_stat_wal")
            .get_result::<Num>(&mut self.admin)
            .await;
        Ok(n.ok().map(|n| n.n))
    }

    /// Committed plus rolled-back transactions of the database so far.
    pub async fn transactions(&mut self, oid: i64) -> Result<i64, Error> {
        Ok(diesel::sql_query(
            "SELECT (xact_commit + xact_rollback)::bigint AS n \
             FROM pg_stat_database WHERE datid::bigint = $1",
        )
        .bind::<BigInt, _>(oid)
        .get_result::<Num>(&mut self.admin)
        .await?
        .n)
    }

    pub async fn reset_statements(&mut self) -> Result<(), Error> {
        if self.statements {
            self.admin
                .batch_execute("SELECT pg_stat_statements_reset()")
                .await?;
        }
        Ok(())
    }

    /// Statements executed in the database since the last reset, the
    /// bench's own left out. `None` without `pg_stat_statements`.
    pub async fn statements(&mut self, oid: i64) -> Result<Option<i64>, Error> {
        if !self.statements {
            return Ok(None);
        }
        let n = diesel::sql_query(
            "SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_statements \
             WHERE dbid::bigint = $1 AND query NOT LIKE '%sayiir-bench monitor%'",
        )
        .bind::<BigInt, _>(oid)
        .get_result::<Num>(&mut self.admin)
        .await?
        .n;
        Ok(Some(n))
    }

    /// Calls since the last reset of the database's statements whose text
    /// matches the `LIKE` pattern `like`. `None` without
    /// `pg_stat_statements`.
    pub async fn calls_like(&mut self, oid: i64, like: &str) -> Result<Option<i64>, Error> {
        if !self.statements {
            return Ok(None);
        }
        let n = diesel::sql_query(
            "SELECT coalesce(sum(calls), 0)::bigint AS n FROM pg_stat_statements \
             WHERE dbid::bigint = $1 AND query LIKE $2 \
               AND query NOT LIKE '%sayiir-bench monitor%'",
        )
        .bind::<BigInt, _>(oid)
        .bind::<Text, _>(like)
        .get_result::<Num>(&mut self.admin)
        .await?
        .n;
        Ok(Some(n))
    }

    /// The most called statements of the database (for the record).
    pub async fn top_statements(
        &mut self,
        oid: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, Error> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            n: i64,
            #[diesel(sql_type = Text)]
            s: String,
        }
        if !self.statements {
            return Ok(Vec::new());
        }
        let rows = diesel::sql_query(
            "SELECT calls::bigint AS n, \
                    regexp_replace(left(query, 90), '\\s+', ' ', 'g') AS s \
             FROM pg_stat_statements \
             WHERE dbid::bigint = $1 AND query NOT LIKE '%sayiir-bench monitor%' \
             ORDER BY calls DESC LIMIT $2",
        )
        .bind::<BigInt, _>(oid)
        .bind::<BigInt, _>(limit)
        .load::<Row>(&mut self.admin)
        .await?;
        Ok(rows.into_iter().map(|r| (r.n, r.s)).collect())
    }
}
