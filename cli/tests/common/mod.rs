//! Test support: a migrated database per test (the library's throwaway
//! server, or `DATABASE_URL`), workflows saved through the store traits,
//! and the real `sayiir-diesel` binary run against it.
#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_core::{DefinitionHash, TaskId};
use sayiir_diesel::DieselBackend;
use sayiir_diesel_testkit::TestDatabase;
use sayiir_runtime::serialization::JsonCodec;

pub type Backend = DieselBackend<JsonCodec>;

/// A fresh, migrated database of its own.
pub async fn test_db() -> TestDatabase {
    sayiir_diesel_testkit::sayiir_database()
        .await
        .expect("a migrated test database")
}

/// A fresh database with nothing in it (not migrated).
pub async fn empty_db() -> TestDatabase {
    sayiir_diesel_testkit::empty_database()
        .await
        .expect("an empty test database")
}

/// A backend on a fresh database; a short recovery grace so that requests
/// for workflows nobody picked up apply quickly.
pub async fn backend() -> (TestDatabase, Backend) {
    let db = test_db().await;
    let backend = Backend::builder(db.url())
        .recovery_grace(std::time::Duration::from_millis(200))
        .build()
        .await
        .expect("connect");
    (db, backend)
}

pub fn def_hash() -> DefinitionHash {
    DefinitionHash::sha256("cli-test-definition")
}

pub fn tid(name: &str) -> TaskId {
    TaskId::from(name)
}

/// A snapshot with input `b"in"` at `AtTask(task)`.
pub fn at_task(instance: &str, task: &str) -> WorkflowSnapshot {
    let mut s =
        WorkflowSnapshot::with_initial_input(instance, def_hash(), Bytes::from_static(b"in"));
    s.update_position(ExecutionPosition::AtTask { task_id: tid(task) });
    s
}

/// Lower-case hex of `bytes`, as the CLI prints ids and hashes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `id` saved at task `a`, then Completed with output `done`.
pub async fn completed(b: &Backend, id: &str) {
    use sayiir_persistence::SnapshotStore;
    let mut s = at_task(id, "a");
    b.save_snapshot(&mut s).await.unwrap();
    s.mark_completed(Bytes::from_static(b"done"));
    b.save_snapshot(&mut s).await.unwrap();
}

/// A direct connection for poking at tables.
pub async fn raw_conn(db: &TestDatabase) -> diesel_async::AsyncPgConnection {
    use diesel_async::AsyncConnection;
    diesel_async::AsyncPgConnection::establish(db.url())
        .await
        .unwrap()
}

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// From spawn to exit.
    pub elapsed: Duration,
}

impl Run {
    /// Stdout parsed as JSON; fails the test with both streams otherwise.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "exit {}: {}", self.code, self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts a successful run and returns its stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "exit {}: {}", self.code, self.stderr);
        &self.stdout
    }
}

/// How long one run of the binary may take before the test kills it and
/// fails: no command may hang.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// The binary with no database configured.
pub fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sayiir-diesel"));
    cmd.env_remove("DATABASE_URL");
    cmd
}

/// Runs the binary on `db` (through `DATABASE_URL`) with `args`.
pub fn cli(db: &TestDatabase, args: &[&str]) -> Run {
    cli_at(db.url(), args)
}

/// Runs the binary on the database at `url` with `args`.
pub fn cli_at(url: &str, args: &[&str]) -> Run {
    run(bare().env("DATABASE_URL", url).args(args))
}

/// Runs a prepared command (stdin empty), killing it and failing the test
/// when it has not exited within [`RUN_LIMIT`].
pub fn run(cmd: &mut Command) -> Run {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sayiir-diesel");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            pipe.read_to_end(&mut buf).unwrap();
            String::from_utf8(buf).unwrap()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{cmd:?} did not exit within {RUN_LIMIT:?}; stderr: {}",
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        elapsed,
    }
}

/// Seven workflows in the states the read commands report: `queued` (with
/// a buffered event `go`), `running` (claimed by `w1` for an hour),
/// `lapsed` (its claim expired), `requested` (a pause requested, not
/// applied), `paused`, `done` (completed) and `napping` (parked at a delay
/// an hour past its wake-up time).
pub async fn populate(b: &Backend) {
    use sayiir_core::snapshot::{SignalKind, SignalRequest};
    use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};

    for id in ["queued", "running", "lapsed", "requested", "paused"] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    }
    b.send_event("queued", "go", Bytes::from_static(b"1"))
        .await
        .unwrap();
    b.claim_task("running", &tid("a"), "w1", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    b.claim_task("lapsed", &tid("a"), "w2", Some(chrono::Duration::zero()))
        .await
        .unwrap()
        .unwrap();
    for id in ["requested", "paused"] {
        b.store_signal(
            id,
            SignalKind::Pause,
            SignalRequest::new(Some("deploy".into()), Some("ops".into())),
        )
        .await
        .unwrap();
    }
    assert!(b.check_and_pause("paused").await.unwrap());
    let mut done = at_task("done", "a");
    b.save_snapshot(&mut done).await.unwrap();
    done.mark_completed(Bytes::from_static(b"42"));
    b.save_snapshot(&mut done).await.unwrap();
    save_overdue_delay(b, "napping").await;
}

/// The instance ids [`populate`] creates, in `list` order.
pub const POPULATED: [&str; 7] = [
    "done",
    "lapsed",
    "napping",
    "paused",
    "queued",
    "requested",
    "running",
];

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(diesel::QueryableByName)]
struct Digest {
    #[diesel(sql_type = diesel::sql_types::Text)]
    digest: String,
}

/// Every table of schema `sayiir` (migrations' bookkeeping included) with
/// its row count and a digest of its rows: equal fingerprints, nothing
/// written.
pub async fn fingerprint(url: &str) -> Vec<(String, String)> {
    use diesel_async::{AsyncConnection, RunQueryDsl};
    let mut conn = diesel_async::AsyncPgConnection::establish(url)
        .await
        .unwrap();
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'sayiir' ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(tables.len() > 3, "schema sayiir is migrated");
    let mut out = Vec::new();
    for Name { name } in tables {
        let d: Digest = diesel::sql_query(format!(
            "SELECT count(*)::text || ' rows, md5 ' || \
                    md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS digest \
             FROM sayiir.\"{name}\" t"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        out.push((name, d.digest));
    }
    out
}

/// `v` without the keys ending in `_ms` (ages, measured at each run).
pub fn without_ages(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.ends_with("_ms"))
                .map(|(k, v)| (k.clone(), without_ages(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_ages).collect()),
        other => other.clone(),
    }
}

/// The `instance_id`s of a JSON list of workflows or rows.
pub fn ids(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| w["instance_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The read commands, in JSON, that the privilege and standby tests compare
/// between two places.
pub const READS: [&[&str]; 6] = [
    &["status", "--json"],
    &["list", "--json"],
    &["list", "--json", "--status", "paused"],
    &["show", "running", "--json"],
    &["show", "queued", "--json"],
    &["stuck", "--json", "--held-longer-than", "0s"],
];

/// Every one of [`READS`] gives at `url` what it gives at `reference`
/// (ages aside).
pub fn assert_reads_match(url: &str, reference: &str) {
    for args in READS {
        let here = cli_at(url, args).json();
        let there = cli_at(reference, args).json();
        assert_eq!(without_ages(&here), without_ages(&there), "{args:?}");
    }
}

/// The read commands at `url` show what [`populate`] wrote, in JSON and in
/// the human form, and a missing workflow is exit code 3.
pub fn assert_reads_show_populated(url: &str) {
    let status = cli_at(url, &["status", "--json"]).json();
    assert_eq!(status["total"], 7);
    assert_eq!(status["workflows"]["InProgress"], 5);
    assert_eq!(status["workflows"]["Paused"], 1);
    assert_eq!(status["workflows"]["Completed"], 1);
    assert_eq!(status["queue"]["running"], 1);
    assert_eq!(status["queue"]["parked_at_delay"], 1);
    assert_eq!(status["expired_claims"], 1);
    assert_eq!(status["pending_requests"], 1);
    assert_eq!(status["buffered_events"], 1);
    let list = cli_at(url, &["list", "--json"]).json();
    assert_eq!(ids(&list["workflows"]), POPULATED);
    let paused = cli_at(url, &["list", "--json", "--status", "paused"]).json();
    assert_eq!(ids(&paused["workflows"]), ["paused"]);
    let running = cli_at(url, &["show", "running", "--json"]).json();
    assert_eq!(running["status"], "InProgress");
    assert_eq!(running["claim"]["worker"], "w1");
    assert_eq!(running["claim"]["expired"], false);
    let queued = cli_at(url, &["show", "queued", "--json"]).json();
    assert_eq!(queued["buffered_events"][0]["signal_name"], "go");
    let stuck = cli_at(url, &["stuck", "--json"]).json();
    assert_eq!(ids(&stuck["expired_claims"]), ["lapsed"]);
    assert_eq!(ids(&stuck["overdue_parks"]), ["napping"]);
    for args in [&["status"][..], &["list"], &["show", "running"], &["stuck"]] {
        assert!(!cli_at(url, args).ok().is_empty(), "{args:?}");
    }
    let missing = cli_at(url, &["show", "nope"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
}

/// The command `args` at `url` fails at once (exit 1 within 5 s), prints
/// nothing on stdout and one line on stderr that names the binary and
/// contains every one of `says`.
pub fn assert_refused_at_once(url: &str, args: &[&str], says: &[&str]) {
    let r = cli_at(url, args);
    eprintln!(
        "{args:?}: exit {} in {:?}: {}",
        r.code,
        r.elapsed,
        r.stderr.trim_end()
    );
    assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
    assert!(
        r.elapsed < Duration::from_secs(5),
        "{args:?} took {:?}",
        r.elapsed
    );
    assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    assert!(r.stderr.starts_with("sayiir-diesel: "), "{}", r.stderr);
    for words in says {
        assert!(
            r.stderr.contains(words),
            "{args:?}: no {words:?} in {}",
            r.stderr
        );
    }
    assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
}

/// Saves workflow `id` parked at a delay (`nap`, then `b`) whose wake-up
/// time passed an hour ago.
pub async fn save_overdue_delay(b: &Backend, id: &str) {
    let mut nap = at_task(id, "a");
    nap.update_position(ExecutionPosition::AtDelay {
        delay_id: tid("nap"),
        entered_at: chrono::Utc::now() - chrono::Duration::hours(2),
        wake_at: chrono::Utc::now() - chrono::Duration::hours(1),
        next_task_id: Some(tid("b")),
    });
    sayiir_persistence::SnapshotStore::save_snapshot(b, &mut nap)
        .await
        .unwrap();
}
