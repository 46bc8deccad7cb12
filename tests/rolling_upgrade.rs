//! A rolling upgrade: workers of the previous version (built from this
//! repository's own history, `tests/rolling_upgrade/from-commit`) and of
//! this version run side by side on one database migrated by this version.
//! Workflows submitted by both are finished by both, none is lost and no
//! step runs twice.
//!
//! Needs the repository's git history (a worktree of the older commit is
//! built with the same target directory, so only the workspace's own crates
//! compile again); skipped without it unless `SAYIIR_REQUIRE_UPGRADE_TEST`
//! is set (CI sets it).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PER_PROCESS: usize = 15;
const STEPS: usize = 4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds this version's worker (`examples/upgrade_worker.rs`) and copies
/// the binary to `to`.
fn build_newer(to: &Path) {
    run(Command::new(env!("CARGO"))
        .current_dir(root())
        .args(["build", "-q", "--example", "upgrade_worker"])
        .env("CARGO_TARGET_DIR", target_dir()));
    std::fs::copy(target_dir().join("debug/examples/upgrade_worker"), to).unwrap();
}

/// Builds the same worker program against the library of the worktree
/// `work/older`, as a package of its own (`work/older-worker`, with the
/// older version's lock file), into the same target directory, and copies
/// the binary to `to`. The library is reached through the path
/// `../older`, so its build artifacts never share a name with this
/// version's (Cargo names a path package's artifacts after its path from
/// the workspace root: built as a workspace of its own at `older`, both
/// versions would be the root package `sayiir-diesel 0.1.0`, and one would
/// be linked in place of the other).
fn build_older(work: &Path, to: &Path) {
    let work = &work.join("older-worker");
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(
        work.join("Cargo.toml"),
        "[package]\n\
         name = \"rolling-upgrade-older-worker\"\n\
         version = \"0.0.0\"\n\
         edition = \"2024\"\n\
         publish = false\n\
         \n\
         [[bin]]\n\
         name = \"upgrade_worker_older\"\n\
         path = \"upgrade_worker.rs\"\n\
         \n\
         [dependencies]\n\
         sayiir-diesel = { path = \"../older\" }\n\
         sayiir-core = \"1\"\n\
         sayiir-runtime = \"1\"\n\
         tokio = { version = \"1\", features = [\"full\"] }\n\
         \n\
         [workspace]\n",
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/upgrade_worker.rs"),
        work.join("upgrade_worker.rs"),
    )
    .unwrap();
    std::fs::copy(work.join("../older/Cargo.lock"), work.join("Cargo.lock")).unwrap();
    run(Command::new(env!("CARGO"))
        .current_dir(work)
        .args(["build", "-q", "--bin", "upgrade_worker_older"])
        .env("CARGO_TARGET_DIR", target_dir()));
    std::fs::copy(target_dir().join("debug/upgrade_worker_older"), to).unwrap();
}

/// The older commit checked out in a worktree at `at`.
fn older_worktree(commit: &str, at: &Path) {
    let _ = Command::new("git")
        .current_dir(root())
        .args(["worktree", "remove", "--force"])
        .arg(at)
        .output();
    let _ = std::fs::remove_dir_all(at);
    run(Command::new("git")
        .current_dir(root())
        .args(["worktree", "prune"]));
    run(Command::new("git")
        .current_dir(root())
        .args(["worktree", "add", "--detach"])
        .arg(at)
        .arg(commit));
}

struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_two_versions_share_one_database() {
    if !root().join(".git").exists() {
        assert!(
            std::env::var_os("SAYIIR_REQUIRE_UPGRADE_TEST").is_none(),
            "SAYIIR_REQUIRE_UPGRADE_TEST is set but there is no git history here"
        );
        eprintln!("skipped: no git history");
        return;
    }
    let from = std::fs::read_to_string(root().join("tests/rolling_upgrade/from-commit")).unwrap();
    let commit = from.lines().next().unwrap().trim().to_owned();
    let work = target_dir().join("rolling-upgrade");
    std::fs::create_dir_all(&work).unwrap();
    let old_src = work.join("older");
    older_worktree(&commit, &old_src);
    let (old_bin, new_bin) = (work.join("worker-older"), work.join("worker-newer"));
    build_newer(&new_bin);
    build_older(&work, &old_bin);

    // One database, migrated by this version.
    let (db, b) = backend().await;
    let stop = work.join("stop");
    let _ = std::fs::remove_file(&stop);
    let mut workers = Vec::new();
    let mut logs = Vec::new();
    for (bin, version) in [(&old_bin, "older"), (&new_bin, "newer")] {
        for p in 0..2 {
            let name = format!("{version}{p}");
            let log = work.join(format!("{name}.log"));
            let _ = std::fs::remove_file(&log);
            let child = Command::new(bin)
                .args([db.url(), &name])
                .arg(&log)
                .args([&format!("by-{name}"), &PER_PROCESS.to_string()])
                .arg(&stop)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap();
            workers.push(Worker(child));
            logs.push((version, log));
        }
    }

    // Every workflow of the four processes completes.
    let total = 4 * PER_PROCESS;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = completed_count(&b).await;
        if done == total {
            break;
        }
        assert!(Instant::now() < deadline, "{done} of {total} completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(&stop, b"").unwrap();
    for w in &mut workers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while w.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "a worker did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    // Each step ran exactly once, and each version ran steps of workflows
    // the other submitted.
    let mut runs: HashMap<(String, String), Vec<&str>> = HashMap::new();
    for (version, log) in &logs {
        for line in std::fs::read_to_string(log).unwrap().lines() {
            let parts: Vec<&str> = line.split(' ').collect();
            assert_eq!(parts.len(), 4, "{line}");
            runs.entry((parts[1].to_owned(), parts[2].to_owned()))
                .or_default()
                .push(version);
        }
    }
    assert_eq!(runs.len(), total * STEPS, "steps run");
    let twice: Vec<_> = runs.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(twice.is_empty(), "steps run twice: {twice:?}");
    for (runner, submitter) in [("older", "by-newer"), ("newer", "by-older")] {
        assert!(
            runs.iter()
                .any(|((instance, _), v)| instance.starts_with(submitter) && v[0] == runner),
            "the {runner} workers ran no step of a workflow {submitter}"
        );
    }
    let _ = Command::new("git")
        .current_dir(root())
        .args(["worktree", "remove", "--force"])
        .arg(&old_src)
        .output();
}

async fn completed_count(b: &Backend) -> usize {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use sayiir_diesel::Status;
    use sayiir_diesel::schema::sayiir::workflows;
    let mut conn = b.pool().get().await.unwrap();
    let n: i64 = workflows::table
        .filter(workflows::status.eq(Status::Completed))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    usize::try_from(n).unwrap()
}
