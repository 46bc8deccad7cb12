//! The worker processes: this binary re-run with `--worker <i>`, each
//! behind its own proxy; kill, stop, continue, restart, and RSS samples.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sayiir_diesel_testkit::Proxy;

use crate::Error;

/// One incarnation of a worker process.
pub struct Incarnation {
    pub pid: u32,
    pub started: Instant,
    /// VmRSS (KiB) once it had run a minute.
    pub rss_minute: Option<u64>,
    /// VmRSS and VmHWM (KiB) at the end (before the stop).
    pub rss_end: Option<u64>,
    pub hwm_end: Option<u64>,
    pub killed: bool,
}

pub struct Worker {
    pub index: usize,
    pub proxy: Proxy,
    child: Option<Child>,
    pub lives: Vec<Incarnation>,
}

pub struct Fleet {
    exe: PathBuf,
    db: String,
    dir: PathBuf,
    corrupt: Option<String>,
    pub workers: Vec<Worker>,
}

impl Fleet {
    pub fn new(
        exe: PathBuf,
        db_url_base: String,
        dir: &Path,
        corrupt: Option<String>,
        proxies: Vec<Proxy>,
    ) -> Fleet {
        Fleet {
            exe,
            db: db_url_base,
            dir: dir.to_owned(),
            corrupt,
            workers: proxies
                .into_iter()
                .enumerate()
                .map(|(index, proxy)| Worker {
                    index,
                    proxy,
                    child: None,
                    lives: Vec::new(),
                })
                .collect(),
        }
    }

    /// Starts (or restarts) worker `i`.
    pub fn spawn(&mut self, i: usize) -> Result<(), Error> {
        let w = &mut self.workers[i];
        // `postgres://user@127.0.0.1:<proxy port>/db?application_name=…`
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/{}?application_name=soak-w{i}",
            w.proxy.port(),
            self.db
        );
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("worker-{i}.out")))?;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("--worker")
            .arg(i.to_string())
            .arg("--url")
            .arg(url)
            .arg("--log")
            .arg(self.dir.join(format!("worker-{i}.log")))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        if let Some(c) = &self.corrupt {
            cmd.arg("--corrupt").arg(c);
        }
        let child = cmd.spawn()?;
        w.lives.push(Incarnation {
            pid: child.id(),
            started: Instant::now(),
            rss_minute: None,
            rss_end: None,
            hwm_end: None,
            killed: false,
        });
        w.child = Some(child);
        Ok(())
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.workers[i].child.as_ref().map(Child::id)
    }

    pub fn signal(&self, i: usize, sig: i32) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as i32, sig);
            }
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self, i: usize) {
        self.signal(i, libc::SIGKILL);
        let w = &mut self.workers[i];
        if let Some(mut c) = w.child.take() {
            let _ = c.wait();
        }
        if let Some(l) = w.lives.last_mut() {
            l.killed = true;
        }
    }

    /// Samples RSS of incarnations that have run a minute.
    pub fn sample_minute(&mut self) {
        for w in &mut self.workers {
            if let (Some(c), Some(l)) = (&w.child, w.lives.last_mut())
                && l.rss_minute.is_none()
                && l.started.elapsed() >= Duration::from_secs(60)
            {
                l.rss_minute = status_kib(c.id(), "VmRSS");
            }
        }
    }

    pub fn sample_end(&mut self) {
        for w in &mut self.workers {
            if let (Some(c), Some(l)) = (&w.child, w.lives.last_mut()) {
                l.rss_end = status_kib(c.id(), "VmRSS");
                l.hwm_end = status_kib(c.id(), "VmHWM");
            }
        }
    }

    /// SIGTERM everyone (SIGCONT first, in case one is stopped), wait up to
    /// 30 s, then SIGKILL what is left. Returns the indices that had to be
    /// killed or exited with an error.
    pub fn stop_all(&mut self) -> Vec<String> {
        let mut trouble = Vec::new();
        for i in 0..self.workers.len() {
            self.signal(i, libc::SIGCONT);
            self.signal(i, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for w in &mut self.workers {
            let Some(mut c) = w.child.take() else {
                continue;
            };
            loop {
                match c.try_wait() {
                    Ok(Some(st)) => {
                        if !st.success() {
                            trouble.push(format!("worker {} exited with {st}", w.index));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        let _ = c.kill();
                        let _ = c.wait();
                        trouble.push(format!("worker {} did not stop within 30 s", w.index));
                        break;
                    }
                }
            }
        }
        trouble
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for w in &mut self.workers {
            if let Some(mut c) = w.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// A `kB` field of `/proc/<pid>/status`.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
