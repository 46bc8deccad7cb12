//! Command-line flags (plain `std::env::args`).

use std::time::Duration;

use crate::Error;

/// One benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Four chained steps.
    Linear,
    /// A fork of four branches, then a join.
    Fanout,
    /// A step, a wait for an event the bench sends, a step.
    Signal,
    /// The linear workload next to many workflows parked on a long delay.
    Giants,
    /// Idle latency: linear workflows one at a time (the next is submitted
    /// once the last step of the one before ran), workers polling every
    /// second: how fast a lone workflow moves on an idle fleet.
    Idle,
}

impl Workload {
    /// What `--workload all` runs (`idle` is asked for by name).
    pub const ALL: [Workload; 4] = [
        Workload::Linear,
        Workload::Fanout,
        Workload::Signal,
        Workload::Giants,
    ];

    /// Every workload, for parsing names.
    pub const NAMED: [Workload; 5] = [
        Workload::Linear,
        Workload::Fanout,
        Workload::Signal,
        Workload::Giants,
        Workload::Idle,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Linear => "linear",
            Workload::Fanout => "fanout",
            Workload::Signal => "signal",
            Workload::Giants => "giants",
            Workload::Idle => "idle",
        }
    }

    /// Steps (tasks the workers run) per measured workflow.
    pub fn steps(self) -> usize {
        match self {
            Workload::Linear | Workload::Giants | Workload::Idle => 4,
            Workload::Fanout => 5,
            Workload::Signal => 2,
        }
    }
}

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Args {
    pub workers: usize,
    pub batch: usize,
    pub poll: Duration,
    pub claim_ttl: Duration,
    pub workflows: usize,
    pub rounds: usize,
    pub workloads: Vec<Workload>,
    pub pool: usize,
    pub giants: usize,
    /// Workflows of the `idle` workload (one at a time).
    pub idle_workflows: usize,
    pub timeout: Duration,
    pub top: usize,
    /// Run only this backend (`diesel` or `postgres`).
    pub only: Option<&'static str>,
    /// `--scale`: the scale figures instead of the workloads.
    pub scale: Option<ScaleArgs>,
    /// `--replication`: synchronous vs asynchronous streaming replication
    /// (see replication.rs) instead of the workloads.
    pub replication: bool,
    /// `--durable`: the throwaway server commits durably (`fsync`,
    /// `synchronous_commit` and `full_page_writes` on, PostgreSQL's
    /// defaults) instead of the testkit's fsync-off settings.
    pub durable: bool,
}

/// Flags of `--scale`.
#[derive(Debug, Clone)]
pub struct ScaleArgs {
    /// Finished workflows in the largest state.
    pub max_finished: usize,
    /// Timed finder calls per state and statistics mode.
    pub calls: usize,
    /// Parked workflows for the maintenance figures.
    pub parked: usize,
    /// Delays that expire together for the dispatch figures.
    pub delays: usize,
    /// How long the dispatch workflow sleeps: its template parks first,
    /// then the copies are seeded and the worker processes started, all
    /// before the delay ends.
    pub delay: Duration,
    /// Worker processes to dispatch with, one run each.
    pub procs: Vec<usize>,
    /// PooledWorkers per worker process.
    pub proc_workers: usize,
    /// Which parts to run.
    pub parts: Vec<Part>,
}

/// A part of `--scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Finder latency as finished and queued workflows pile up.
    Finder,
    /// Finder and maintenance with many parked workflows.
    Parked,
    /// Many delays expiring at once, 1, 2, 4 worker processes.
    Dispatch,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Finder, Part::Parked, Part::Dispatch];

    pub fn name(self) -> &'static str {
        match self {
            Part::Finder => "finder",
            Part::Parked => "parked",
            Part::Dispatch => "dispatch",
        }
    }
}

impl Default for ScaleArgs {
    fn default() -> Self {
        ScaleArgs {
            max_finished: 1_000_000,
            calls: 200,
            parked: 100_000,
            delays: 10_000,
            delay: Duration::from_secs(20),
            procs: vec![1, 2, 4],
            proc_workers: 2,
            parts: Part::ALL.to_vec(),
        }
    }
}

pub const USAGE: &str = "\
usage: cargo run --release --example bench -- [flags]

  --workers N       in-process PooledWorkers per backend (default 4)
  --batch B         worker batch size (default 8)
  --poll-ms MS      worker poll interval (default 50)
  --claim-ttl-s S   claim TTL (default 60)
  --workflows W     measured workflows per run (default 1000)
  --rounds R        rounds; each round runs every backend once (default 3)
  --workload NAMES  linear, fanout, signal, giants, idle (comma-separated),
                    or all (every one but idle; default linear). idle:
                    linear workflows one at a time, workers polling every
                    second (idle latency)
  --idle-workflows N   workflows of the idle workload (default 20)
  --pool N          max pool connections, both backends (default 16)
  --giants N        parked workflows seeded for `giants` (default 10000)
  --timeout-s S     give up on a run after this long (default 600)
  --top N           print each backend's N most called statements in
                    round 1 (default 8, 0 = none)
  --only NAME       run one backend only: diesel | postgres
  --durable         the throwaway server commits durably: fsync=on,
                    synchronous_commit=on, full_page_writes=on (the
                    server's defaults); without it they are off, which
                    measures the backends' CPU and round trips but not
                    the cost of a commit reaching the disk

  --replication     our backend on a primary with a streaming standby,
                    synchronous vs asynchronous replication, alternating
                    (see replication.rs; needs pg_basebackup)
  --scale           scale figures instead of the workloads (see scale.rs):
                    finder latency as finished and queued workflows pile
                    up, finder and maintenance next to parked workflows,
                    many delays expiring at once
  --scale-max-finished N   finished workflows in the largest state
                    (default 1000000)
  --scale-calls N   timed finder calls per state (default 200)
  --scale-parked N  parked workflows for the maintenance figures
                    (default 100000)
  --scale-delays N  delays expiring together (default 10000)
  --scale-delay-s S the dispatch workflow's delay (default 20)
  --scale-procs L   worker processes per dispatch run, comma-separated
                    (default 1,2,4)
  --scale-proc-workers N   PooledWorkers per worker process (default 2)
  --scale-parts L   finder,parked,dispatch (default all)

DATABASE_URL names an existing server (databases are created and dropped
on it; pg_stat_statements figures need the extension preloaded). Without
it a throwaway server is started with pg_stat_statements (fsync off unless
--durable). With DATABASE_URL, --durable checks that the server commits
durably and refuses to run otherwise.";

impl Args {
    pub fn parse() -> Result<Args, Error> {
        Self::parse_from(std::env::args().skip(1).collect())
    }

    /// Parses `argv` (without the program name).
    pub fn parse_from(argv: Vec<String>) -> Result<Args, Error> {
        let mut a = Args {
            workers: 4,
            batch: 8,
            poll: Duration::from_millis(50),
            claim_ttl: Duration::from_secs(60),
            workflows: 1000,
            rounds: 3,
            workloads: vec![Workload::Linear],
            pool: 16,
            giants: 10_000,
            idle_workflows: 20,
            timeout: Duration::from_secs(600),
            top: 8,
            only: None,
            scale: None,
            replication: false,
            durable: false,
        };
        let mut scale = ScaleArgs::default();
        let mut it = argv.into_iter();
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
            }
            if flag == "--replication" {
                a.replication = true;
                continue;
            }
            if flag == "--durable" {
                a.durable = true;
                continue;
            }
            if flag == "--scale" {
                a.scale = Some(ScaleArgs::default());
                continue;
            }
            let value = it
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n\n{USAGE}"))?;
            let num = || -> Result<u64, Error> {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{flag} {value}: {e}").into())
            };
            match flag.as_str() {
                "--workers" => a.workers = positive(&flag, num()?)?,
                "--batch" => a.batch = positive(&flag, num()?)?,
                "--poll-ms" => a.poll = Duration::from_millis(num()?),
                "--claim-ttl-s" => a.claim_ttl = Duration::from_secs(num()?),
                "--workflows" => a.workflows = positive(&flag, num()?)?,
                "--rounds" => a.rounds = positive(&flag, num()?)?,
                "--pool" => a.pool = positive(&flag, num()?)?,
                "--giants" => a.giants = usize::try_from(num()?)?,
                "--idle-workflows" => a.idle_workflows = usize::try_from(num()?)?.max(1),
                "--timeout-s" => a.timeout = Duration::from_secs(num()?),
                "--top" => a.top = usize::try_from(num()?)?,
                "--only" => {
                    a.only = Some(match value.as_str() {
                        "diesel" => "diesel",
                        "postgres" => "postgres",
                        other => return Err(format!("--only {other}: diesel or postgres").into()),
                    });
                }
                "--scale-max-finished" => scale.max_finished = usize::try_from(num()?)?,
                "--scale-calls" => scale.calls = positive(&flag, num()?)?,
                "--scale-parked" => scale.parked = usize::try_from(num()?)?,
                "--scale-delays" => scale.delays = positive(&flag, num()?)?,
                "--scale-delay-s" => scale.delay = Duration::from_secs(num()?),
                "--scale-proc-workers" => scale.proc_workers = positive(&flag, num()?)?,
                "--scale-procs" => {
                    scale.procs = value
                        .split(',')
                        .map(|p| {
                            p.trim()
                                .parse::<u64>()
                                .map_err(|e| Error::from(format!("{flag} {value}: {e}")))
                                .and_then(|n| positive(&flag, n))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--scale-parts" => {
                    scale.parts = value
                        .split(',')
                        .map(|p| {
                            Part::ALL
                                .iter()
                                .copied()
                                .find(|x| x.name() == p.trim())
                                .ok_or_else(|| Error::from(format!("unknown part {p}\n\n{USAGE}")))
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--workload" => {
                    a.workloads = match value.as_str() {
                        "all" => Workload::ALL.to_vec(),
                        names => names
                            .split(',')
                            .map(|name| {
                                Workload::NAMED
                                    .iter()
                                    .find(|w| w.name() == name)
                                    .copied()
                                    .ok_or_else(|| format!("unknown workload {name}\n\n{USAGE}"))
                            })
                            .collect::<Result<_, _>>()?,
                    }
                }
                _ => return Err(format!("unknown flag {flag}\n\n{USAGE}").into()),
            }
        }
        if a.scale.is_some() {
            a.scale = Some(scale);
        }
        if a.durable && a.replication {
            return Err(
                "--durable is for the workloads and --scale; --replication runs its \
                        own pair of servers (fsync off)"
                    .into(),
            );
        }
        Ok(a)
    }

    /// Whether `backend` takes part (`--only`).
    pub fn runs(&self, backend: &str) -> bool {
        self.only.is_none_or(|o| o == backend)
    }
}

fn positive(flag: &str, n: u64) -> Result<usize, Error> {
    if n == 0 {
        return Err(format!("{flag} must be at least 1").into());
    }
    Ok(usize::try_from(n)?)
}
