//! Faults on a seeded schedule, one at a time, each recorded with its
//! window (start to heal) for the figures of repeats and the recovery
//! figures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sayiir_diesel_testkit::PgServer;

use crate::fleet::Fleet;
use crate::tasklog::now_ms;
use crate::worker::{ACQUIRE_TIMEOUT, CLAIM_TTL, EXHAUST_HOLD, STATEMENT_TIMEOUT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `pg_terminate_backend` of random worker sessions, a LISTEN one included.
    Terminate,
    /// A worker's proxy holds every byte longer than the claim TTL.
    Blackhole,
    /// A worker's proxy closes every connection.
    Reset,
    /// SIGKILL of a worker process, restarted after a pause.
    Kill,
    /// SIGSTOP longer than the claim TTL, then SIGCONT (a stale writer).
    Stop,
    /// Fast shutdown and start of the server.
    Restart,
    /// `sayiir.tasks` locked longer than the workers' statement timeout.
    Lock,
    /// A worker process's pool held empty past the acquire timeout.
    Exhaust,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Terminate,
        Kind::Blackhole,
        Kind::Reset,
        Kind::Kill,
        Kind::Stop,
        Kind::Restart,
        Kind::Lock,
        Kind::Exhaust,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Terminate => "terminate",
            Kind::Blackhole => "blackhole",
            Kind::Reset => "reset",
            Kind::Kill => "sigkill",
            Kind::Stop => "sigstop",
            Kind::Restart => "restart",
            Kind::Lock => "stmt-timeout",
            Kind::Exhaust => "pool-exhaust",
        }
    }

    /// Whether it hits one worker process (else the server, for everyone).
    pub fn targets_process(self) -> bool {
        matches!(
            self,
            Kind::Blackhole | Kind::Reset | Kind::Kill | Kind::Stop | Kind::Exhaust
        )
    }
}

#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    pub process: Option<usize>,
    /// The pid of that process when the fault started.
    pub pid: Option<u32>,
    pub start_ms: u64,
    pub end_ms: u64,
    pub detail: String,
}

/// `count` faults between `from` and `until` seconds into the run: every
/// kind once per round, in a shuffled order, evenly spaced with jitter.
pub fn schedule(rng: &mut StdRng, from: f64, until: f64) -> Vec<(f64, Kind)> {
    let count = ((until - from) / 12.0).floor().max(Kind::ALL.len() as f64) as usize;
    let gap = (until - from) / count as f64;
    let mut kinds = Vec::new();
    while kinds.len() < count {
        let mut round = Kind::ALL.to_vec();
        round.shuffle(rng);
        kinds.extend(round);
    }
    kinds.truncate(count);
    kinds
        .into_iter()
        .enumerate()
        .map(|(i, k)| (from + gap * i as f64 + rng.random_range(0.0..gap * 0.3), k))
        .collect()
}

pub struct Injector {
    pub fleet: Arc<tokio::sync::Mutex<Fleet>>,
    pub server: Arc<PgServer>,
    pub db: String,
    pub records: Arc<Mutex<Vec<Record>>>,
}

impl Injector {
    /// Runs `plan` (offsets in seconds from `t0`), one fault at a time.
    pub async fn run(self, seed: u64, t0: tokio::time::Instant, plan: Vec<(f64, Kind)>) {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xfa17);
        for (at, kind) in plan {
            tokio::time::sleep_until(t0 + Duration::from_secs_f64(at)).await;
            let processes = self.fleet.lock().await.workers.len();
            let process = kind
                .targets_process()
                .then(|| rng.random_range(0..processes));
            let pid = match process {
                Some(p) => self.fleet.lock().await.pid(p),
                None => None,
            };
            let start_ms = now_ms();
            let detail = match self.inject(kind, process, &mut rng).await {
                Ok(d) => d,
                Err(e) => format!("fault failed: {e}"),
            };
            let rec = Record {
                kind,
                process,
                pid,
                start_ms,
                end_ms: now_ms(),
                detail,
            };
            println!(
                "  fault {:>12} {:>9} {:>6} ms  {}",
                kind.name(),
                process.map_or_else(|| "server".to_owned(), |p| format!("process {p}")),
                rec.end_ms - rec.start_ms,
                rec.detail
            );
            self.records
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(rec);
        }
    }

    async fn inject(
        &self,
        kind: Kind,
        process: Option<usize>,
        rng: &mut StdRng,
    ) -> Result<String, crate::Error> {
        let longer_than_ttl = CLAIM_TTL + Duration::from_millis(rng.random_range(1500..3500));
        match kind {
            Kind::Terminate => {
                let fraction = rng.random_range(0.3..0.7);
                let mut admin =
                    AsyncPgConnection::establish(&self.server.url_for(&self.db)).await?;
                // Every LISTEN session of the workers, and a random share
                // of the others.
                let sql = format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = '{}' AND application_name LIKE 'soak-w%' \
                       AND (query LIKE 'LISTEN%' OR random() < {fraction})",
                    self.db
                );
                let n = count(&mut admin, &sql).await?;
                Ok(format!("{n} sessions terminated (LISTEN ones included)"))
            }
            Kind::Blackhole => {
                let p = process.unwrap_or(0);
                self.fleet.lock().await.workers[p].proxy.blackhole();
                tokio::time::sleep(longer_than_ttl).await;
                self.fleet.lock().await.workers[p].proxy.pass();
                Ok(format!("held {:.1} s", longer_than_ttl.as_secs_f64()))
            }
            Kind::Reset => {
                let p = process.unwrap_or(0);
                let fleet = self.fleet.lock().await;
                let n = fleet.workers[p].proxy.connections();
                fleet.workers[p].proxy.reset();
                Ok(format!("{n} connections closed"))
            }
            Kind::Kill => {
                let p = process.unwrap_or(0);
                self.fleet.lock().await.kill(p);
                let pause = Duration::from_millis(rng.random_range(1000..4000));
                tokio::time::sleep(pause).await;
                self.fleet.lock().await.spawn(p)?;
                Ok(format!("restarted after {:.1} s", pause.as_secs_f64()))
            }
            Kind::Stop => {
                let p = process.unwrap_or(0);
                self.fleet.lock().await.signal(p, libc::SIGSTOP);
                tokio::time::sleep(longer_than_ttl).await;
                self.fleet.lock().await.signal(p, libc::SIGCONT);
                Ok(format!("stopped {:.1} s", longer_than_ttl.as_secs_f64()))
            }
            Kind::Exhaust => {
                let p = process.unwrap_or(0);
                self.fleet.lock().await.signal(p, libc::SIGUSR1);
                // The worker holds its pool for EXHAUST_HOLD; the window
                // ends when it lets go.
                tokio::time::sleep(EXHAUST_HOLD + Duration::from_millis(200)).await;
                Ok(format!(
                    "pool held {:.1} s (acquire timeout {:.1} s)",
                    EXHAUST_HOLD.as_secs_f64(),
                    ACQUIRE_TIMEOUT.as_secs_f64()
                ))
            }
            Kind::Restart => {
                let server = Arc::clone(&self.server);
                tokio::task::spawn_blocking(move || server.restart()).await??;
                Ok("fast shutdown and start".to_owned())
            }
            Kind::Lock => {
                // 2.1 to 4 s: past the statement timeout always, past the
                // 3 s claims about half the time (seed 4242 drew 2.9-3.9 s).
                let hold = STATEMENT_TIMEOUT + Duration::from_millis(rng.random_range(100..2000));
                let mut admin =
                    AsyncPgConnection::establish(&self.server.url_for(&self.db)).await?;
                admin
                    .batch_execute(
                        "SET lock_timeout = '5s'; BEGIN; \
                         LOCK TABLE sayiir.tasks IN ACCESS EXCLUSIVE MODE",
                    )
                    .await?;
                tokio::time::sleep(hold).await;
                admin.batch_execute("COMMIT").await?;
                Ok(format!("sayiir.tasks locked {:.1} s", hold.as_secs_f64()))
            }
        }
    }
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> Result<usize, crate::Error> {
    use diesel::sql_types::Bool;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct R {
        #[diesel(sql_type = Bool)]
        #[allow(dead_code)]
        pg_terminate_backend: bool,
    }
    let rows: Vec<R> = diesel::sql_query(sql).load(conn).await?;
    Ok(rows.len())
}
