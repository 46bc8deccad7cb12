//! Test support: a migrated database per test (the library's throwaway
//! server, or `DATABASE_URL`), workflows saved through the store traits,
//! and the real `sayiir-diesel` binary run against it.
#![allow(dead_code)]

use std::hash::{Hash, Hasher};
use std::process::{Command, Output};

use bytes::Bytes;
use sayiir_core::snapshot::{ExecutionPosition, WorkflowSnapshot};
use sayiir_core::{DefinitionHash, TaskId};
use sayiir_diesel::DieselBackend;
use sayiir_diesel_testkit::{PgServer, TestDatabase};
use sayiir_runtime::serialization::JsonCodec;

pub type Backend = DieselBackend<JsonCodec>;

/// Names the template after the library's migrations.
fn template_key() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut files = Vec::new();
    walk(std::path::Path::new(dir), &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.file_name().hash(&mut h);
        std::fs::read(&f).unwrap().hash(&mut h);
    }
    format!("cli_{:016x}", h.finish())
}

fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A fresh, migrated database of its own.
pub async fn test_db() -> TestDatabase {
    let server = PgServer::shared().expect("a PostgreSQL server for tests");
    let template = server
        .template(&template_key(), |url| async move {
            sayiir_diesel::migrations::run(&url).await?;
            Ok(())
        })
        .await
        .expect("migrated template database");
    template.database().await.expect("test database")
}

/// A fresh database with nothing in it (not migrated).
pub async fn empty_db() -> TestDatabase {
    let server = PgServer::shared().expect("a PostgreSQL server for tests");
    let template = server
        .template("cli_empty", |_url| async { Ok(()) })
        .await
        .expect("empty template");
    template.database().await.expect("test database")
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

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The binary with no database configured.
pub fn bare() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sayiir-diesel"));
    cmd.env_remove("DATABASE_URL");
    cmd
}

/// Runs the binary on `db` (through `DATABASE_URL`) with `args`.
pub fn cli(db: &TestDatabase, args: &[&str]) -> Run {
    let mut cmd = bare();
    cmd.env("DATABASE_URL", db.url()).args(args);
    finish(cmd.output().expect("run sayiir-diesel"))
}

/// Runs a prepared command.
pub fn run(cmd: &mut Command) -> Run {
    finish(cmd.output().expect("run sayiir-diesel"))
}
