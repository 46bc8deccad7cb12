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
}

impl Workload {
    pub const ALL: [Workload; 4] = [
        Workload::Linear,
        Workload::Fanout,
        Workload::Signal,
        Workload::Giants,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Linear => "linear",
            Workload::Fanout => "fanout",
            Workload::Signal => "signal",
            Workload::Giants => "giants",
        }
    }

    /// Steps (tasks the workers run) per measured workflow.
    pub fn steps(self) -> usize {
        match self {
            Workload::Linear | Workload::Giants => 4,
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
    pub timeout: Duration,
    pub top: usize,
}

pub const USAGE: &str = "\
usage: cargo run --release --example bench -- [flags]

  --workers N       in-process PooledWorkers per backend (default 4)
  --batch B         worker batch size (default 8)
  --poll-ms MS      worker poll interval (default 50)
  --claim-ttl-s S   claim TTL (default 60)
  --workflows W     measured workflows per run (default 1000)
  --rounds R        rounds; each round runs every backend once (default 3)
  --workload NAME   linear | fanout | signal | giants | all (default linear)
  --pool N          max pool connections, both backends (default 16)
  --giants N        parked workflows seeded for `giants` (default 10000)
  --timeout-s S     give up on a run after this long (default 600)
  --top N           print each backend's N most called statements in
                    round 1 (default 8, 0 = none)

DATABASE_URL names an existing server (databases are created and dropped
on it; pg_stat_statements figures need the extension preloaded). Without
it a throwaway server is started with pg_stat_statements.";

impl Args {
    pub fn parse() -> Result<Args, Error> {
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
            timeout: Duration::from_secs(600),
            top: 8,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "-h" || flag == "--help" {
                println!("{USAGE}");
                std::process::exit(0);
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
                "--timeout-s" => a.timeout = Duration::from_secs(num()?),
                "--top" => a.top = usize::try_from(num()?)?,
                "--workload" => {
                    a.workloads = match value.as_str() {
                        "all" => Workload::ALL.to_vec(),
                        name => vec![
                            *Workload::ALL
                                .iter()
                                .find(|w| w.name() == name)
                                .ok_or_else(|| format!("unknown workload {name}\n\n{USAGE}"))?,
                        ],
                    }
                }
                _ => return Err(format!("unknown flag {flag}\n\n{USAGE}").into()),
            }
        }
        Ok(a)
    }
}

fn positive(flag: &str, n: u64) -> Result<usize, Error> {
    if n == 0 {
        return Err(format!("{flag} must be at least 1").into());
    }
    Ok(usize::try_from(n)?)
}
