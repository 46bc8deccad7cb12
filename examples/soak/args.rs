//! Command line.

use std::path::PathBuf;

use crate::Error;

pub const HELP: &str = "\
soak: a chaos soak of sayiir-diesel under PooledWorker processes

  --minutes N     run length before the drain (default 2; fractions allowed)
  --processes P   worker processes (default 3)
  --seed S        seed of every random choice (default: random, printed)
  --rate R        workflows submitted per second (default 4)
  --dir PATH      where the logs go (default: a new directory under /tmp)
  --corrupt KIND  break something on purpose, to prove a check fails:
                  drop-event, double-event, wrong-output, end-loop,
                  leak-claim, fake-repeat
";

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub minutes: f64,
    pub processes: usize,
    pub seed: Option<u64>,
    pub rate: f64,
    pub dir: Option<PathBuf>,
    pub corrupt: Option<String>,
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
            rate: 4.0,
            ..Args::default()
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            if flag == "--help" || flag == "-h" {
                print!("{HELP}");
                std::process::exit(0);
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--minutes" => a.minutes = value.parse()?,
                "--processes" => a.processes = value.parse()?,
                "--seed" => a.seed = Some(value.parse()?),
                "--rate" => a.rate = value.parse()?,
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
                "fake-repeat",
            ]
            .contains(&c.as_str())
        {
            return Err(format!("unknown --corrupt {c}").into());
        }
        Ok(a)
    }
}
