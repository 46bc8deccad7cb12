//! CPU time and memory from `/proc` (Linux only; `None` elsewhere).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Highest `VmHWM` seen before a reset, in KiB.
static PEAK_KIB: AtomicU64 = AtomicU64::new(0);

/// Kernel clock ticks per second (`getconf CLK_TCK`, else 100).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// The fields of `/proc/<pid>/stat` we use.
struct Stat {
    ppid: u32,
    /// utime + stime of the process itself.
    own: u64,
    /// cutime + cstime: children it has waited for.
    children: u64,
}

fn read_stat(path: &str) -> Option<Stat> {
    let text = std::fs::read_to_string(path).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields after the name start at field 3 (state); ppid is field 4,
    // utime/stime 14/15, cutime/cstime 16/17 (man 5 proc).
    let field = |n: usize| fields.get(n - 3).copied();
    let num = |n: usize| field(n)?.parse::<i64>().ok();
    let ticks = |n: usize| num(n).map(|v| u64::try_from(v).unwrap_or(0));
    Some(Stat {
        ppid: u32::try_from(num(4)?).ok()?,
        own: ticks(14)? + ticks(15)?,
        children: ticks(16)? + ticks(17)?,
    })
}

/// CPU ticks this process has used (user + system).
pub fn self_cpu_ticks() -> Option<u64> {
    read_stat("/proc/self/stat").map(|s| s.own)
}

/// CPU ticks this process and its reaped children have used.
pub fn self_and_children_ticks() -> Option<u64> {
    read_stat("/proc/self/stat").map(|s| s.own + s.children)
}

/// The parent pid of `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    read_stat(&format!("/proc/{pid}/stat")).map(|s| s.ppid)
}

/// The executable name of `pid` (`/proc/<pid>/comm`).
pub fn comm_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// CPU ticks the whole machine spent busy (`/proc/stat`: user, nice,
/// system, irq, softirq, steal), to see what else ran during a run.
pub fn machine_busy_ticks() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    Some([0, 1, 2, 5, 6, 7].iter().filter_map(|i| v.get(*i)).sum())
}

/// CPU ticks of a PostgreSQL server: the postmaster and its live children,
/// plus the postmaster's cumulative time of children that have exited (so
/// backends that come and go between two samples are not lost).
pub fn server_cpu_ticks(postmaster: u32) -> Option<u64> {
    let pm = read_stat(&format!("/proc/{postmaster}/stat"))?;
    let mut total = pm.own + pm.children;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == postmaster {
            continue;
        }
        if let Some(s) = read_stat(&format!("/proc/{pid}/stat"))
            && s.ppid == postmaster
        {
            total += s.own;
        }
    }
    Some(total)
}

fn status_kib(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.trim_start_matches(field)
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A `kB` field of `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB.
pub fn status_mib(field: &str) -> Option<f64> {
    status_kib(field).map(|kb| kb as f64 / 1024.0)
}

/// Resets this process's peak RSS (`VmHWM`) so the next reading is the
/// peak since now (the peak so far is kept for [`process_peak_mib`]).
/// False when the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    if let Some(kb) = status_kib("VmHWM") {
        PEAK_KIB.fetch_max(kb, Relaxed);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak RSS of the whole process so far, across resets, in MiB.
pub fn process_peak_mib() -> Option<f64> {
    let now = status_kib("VmHWM")?;
    Some(now.max(PEAK_KIB.load(Relaxed)) as f64 / 1024.0)
}
