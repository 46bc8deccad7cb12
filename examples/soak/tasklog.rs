//! Each worker process's execution log: one line per event, appended and
//! flushed line by line (one `write` each, the file opened `O_APPEND`), so
//! a SIGKILL loses at most the line being written.
//!
//! Lines are tab-separated: `<unix ms> <pid> <kind> <fields…>`:
//! * `start <instance> <task>`: a task body started;
//! * `run <instance> <task> <attempt> <ok|fail>`: a task body finished;
//! * `evidence <message> <name=value>…`: the backend's evidence event
//!   (`store call failed`, `claim taken over`), from which a repeated step
//!   is explained;
//! * `up <process id>`: the process started its workers;
//! * `loop-end <worker id> <result>`: a `PooledWorker` loop ended on its own;
//! * `stopped <worker id>`: a worker stopped because the driver asked.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

static LOG: OnceLock<Mutex<File>> = OnceLock::new();

pub fn open(path: &Path) -> std::io::Result<()> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let _ = LOG.set(Mutex::new(f));
    Ok(())
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn write(kind: &str, fields: &[&str]) {
    let Some(log) = LOG.get() else { return };
    let mut line = format!("{}\t{}\t{kind}", now_ms(), std::process::id());
    for f in fields {
        line.push('\t');
        line.push_str(f);
    }
    line.push('\n');
    let mut f = log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // A failed write is a lost line: the checker would report a missing run.
    let _ = f.write_all(line.as_bytes());
    let _ = f.flush();
}

pub fn run(instance: &str, task: &str, attempt: u32, ok: bool) {
    write(
        "run",
        &[
            instance,
            task,
            &attempt.to_string(),
            if ok { "ok" } else { "fail" },
        ],
    );
}

pub fn start(instance: &str, task: &str) {
    write("start", &[instance, task]);
}

pub fn evidence(e: &sayiir_diesel_testkit::Evidence) {
    write("evidence", &[&e.to_string()]);
}

pub fn up(process: usize) {
    write("up", &[&process.to_string()]);
}

pub fn loop_end(worker: &str, result: &str) {
    write("loop-end", &[worker, &result.replace(['\t', '\n'], " ")]);
}

pub fn stopped(worker: &str) {
    write("stopped", &[worker]);
}

/// One parsed line.
#[derive(Debug, Clone)]
pub struct Line {
    pub ms: u64,
    pub pid: u32,
    pub kind: String,
    pub fields: Vec<String>,
}

/// Every line of every log in `dir` (`worker-*.log`), in time order; the
/// process index is the file's.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<(usize, Line)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(idx) = name
            .strip_prefix("worker-")
            .and_then(|r| r.strip_suffix(".log"))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        for l in std::fs::read_to_string(&path)?.lines() {
            let mut parts = l.split('\t');
            let (Some(ms), Some(pid), Some(kind)) = (parts.next(), parts.next(), parts.next())
            else {
                continue; // a line cut by SIGKILL
            };
            let (Ok(ms), Ok(pid)) = (ms.parse(), pid.parse()) else {
                continue;
            };
            out.push((
                idx,
                Line {
                    ms,
                    pid,
                    kind: kind.to_owned(),
                    fields: parts.map(str::to_owned).collect(),
                },
            ));
        }
    }
    out.sort_by_key(|(_, l)| l.ms);
    Ok(out)
}
