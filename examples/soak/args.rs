//! Command line.

use std::path::PathBuf;

use crate::Error;

pub const HELP: &str = "\
soak: a chaos soak of sayiir-diesel under PooledWorker processes

  --minutes N     run length before the drain (default 2; fractions allowed)
  --processes P   worker processes (default 3)
  --seed S        seed of every random choice (default: random, printed)
  --rate R        workflows submitted per second (default 3)
  --burst B       workflows submitted at once every 15-25 s (default 30)
  --dir PATH      where the logs go (default: a new directory under /tmp)
  --no-faults     no fault at all (a baseline)
  --corrupt KIND  break something on purpose, to prove a check fails:
                  drop-event, double-event, wrong-output, end-loop,
                  leak-claim, keep-events (the exactly-once check: build with
                  the hidden feature break-claim-check, faults on or off)

A step run twice is a violation unless the workers' logs show that the
first run lost its claim: taken over after it expired, a failed save,
release or heartbeat of its process, or its process killed.
";

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub minutes: f64,
    pub processes: usize,
    pub seed: Option<u64>,
    pub rate: f64,
    pub burst: usize,
    pub dir: Option<PathBuf>,
    pub corrupt: Option<String>,
    pub no_faults: bool,
    /// Worker mode: this process's index.
    pub worker: Option<usize>,
    pub url: Option<String>,
    pub log: Option<PathBuf>,
}

impl Args {
    pub fn parse() -> Result<Args, Error> {
        let mut a = Args {
            minutes: 2.0,
            processes: 3,
            rate: 3.0,
            burst: 30,
            ..Args::default()
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                print!("{HELP}");
                std::process::exit(0);
            }
            if flag == "--no-faults" {
                a.no_faults = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--minutes" => a.minutes = value.parse()?,
                "--processes" => a.processes = value.parse()?,
                "--seed" => a.seed = Some(value.parse()?),
                "--rate" => a.rate = value.parse()?,
                "--burst" => a.burst = value.parse()?,
                "--dir" => a.dir = Some(value.into()),
                "--corrupt" => a.corrupt = Some(value),
                "--worker" => a.worker = Some(value.parse()?),
                "--url" => a.url = Some(value),
                "--log" => a.log = Some(value.into()),
                other => return Err(format!("unknown flag {other}\n{HELP}").into()),
            }
        }
        if a.processes == 0 || a.minutes <= 0.0 || a.rate <= 0.0 {
            return Err("--processes, --minutes and --rate must be positive".into());
        }
        if let Some(c) = &a.corrupt
            && ![
                "drop-event",
                "double-event",
                "wrong-output",
                "end-loop",
                "leak-claim",
                "keep-events",
            ]
            .contains(&c.as_str())
        {
            return Err(format!("unknown --corrupt {c}").into());
        }
        Ok(a)
    }
}
