//! A primary with a hot standby streaming from it, on two loopback ports,
//! for failover tests: promote the standby, stop the primary.
//!
//! The standby is made with `pg_basebackup -R`, so it needs that binary
//! beside the server's (Debian's packages have it; the `@embedded-postgres`
//! bundles do not: [`ReplicatedPair::available`] says so).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;

use crate::Error;
use crate::server::{find_bin_dir, find_pg_isready, free_port, is_root, shell_script};

/// Starts both servers, prints `ready <dir>`, then waits for stdin to close
/// and stops whatever still runs.
const PAIR: &str = r#"
set -eu
BIN="$1"; P1="$2"; P2="$3"; ISREADY="$4"
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sayiir-pair-XXXXXX")
cleanup() {
  "$BIN/pg_ctl" -D "$DIR/primary" -m immediate stop >/dev/null 2>&1 || true
  "$BIN/pg_ctl" -D "$DIR/standby" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
wait_ready() {
  i=0
  until "$ISREADY" -q -h 127.0.0.1 -p "$1" -d postgres; do
    i=$((i+1))
    if [ "$i" -gt 300 ]; then cat "$DIR"/*.log >&2; exit 1; fi
    sleep 0.1
  done
}
"$BIN/initdb" -D "$DIR/primary" -U postgres -A trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
cat >>"$DIR/primary/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
wal_level = replica
max_wal_senders = 10
hot_standby = on
wal_keep_size = '256MB'
max_connections = 200
fsync = off
full_page_writes = on
CONF
echo "host replication all 127.0.0.1/32 trust" >>"$DIR/primary/pg_hba.conf"
"$BIN/pg_ctl" -D "$DIR/primary" -o "-p $P1" -l "$DIR/primary.log" -w start >/dev/null
wait_ready "$P1"
"$BIN/pg_basebackup" -h 127.0.0.1 -p "$P1" -U postgres -D "$DIR/standby" -R -X stream \
  >"$DIR/basebackup.log" 2>&1 || { cat "$DIR/basebackup.log" >&2; exit 1; }
"$BIN/pg_ctl" -D "$DIR/standby" -o "-p $P2" -l "$DIR/standby.log" -w start >/dev/null
wait_ready "$P2"
echo "ready $DIR"
cat >/dev/null || true
"#;

/// A primary and a hot standby replicating from it; both stopped (and
/// their files removed) on drop.
pub struct ReplicatedPair {
    supervisor: Mutex<Option<(Child, ChildStdin)>>,
    bin: PathBuf,
    dir: PathBuf,
    primary_port: u16,
    standby_port: u16,
}

impl ReplicatedPair {
    /// Whether a pair can be started here (server binaries with
    /// `pg_basebackup` beside them), and `DATABASE_URL` is unset.
    #[must_use]
    pub fn available() -> bool {
        std::env::var("DATABASE_URL").map_or(true, |u| u.is_empty())
            && find_bin_dir()
                .is_some_and(|b| b.join("pg_basebackup").is_file() && b.join("pg_ctl").is_file())
    }

    /// Starts a primary, then a standby from a base backup of it. With
    /// `synchronous`, commits on the primary wait until the standby has
    /// applied them (`synchronous_commit = remote_apply`).
    ///
    /// # Errors
    /// When binaries are missing or a server does not come up.
    pub fn start(synchronous: bool) -> Result<ReplicatedPair, Error> {
        let bin = find_bin_dir().ok_or("no PostgreSQL binaries found")?;
        let isready = find_pg_isready(&bin).ok_or("pg_isready not found")?;
        let primary_port = free_port()?;
        let mut standby_port = free_port()?;
        while standby_port == primary_port {
            standby_port = free_port()?;
        }
        let mut cmd = shell_script(PAIR);
        let mut child = cmd
            .arg(&bin)
            .arg(primary_port.to_string())
            .arg(standby_port.to_string())
            .arg(&isready)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the replicated pair: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(dir) = line.trim_end().strip_prefix("ready ") else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            return Err(format!("replicated pair failed to start: {err}").into());
        };
        let pair = ReplicatedPair {
            supervisor: Mutex::new(Some((child, stdin))),
            bin,
            dir: PathBuf::from(dir),
            primary_port,
            standby_port,
        };
        if synchronous {
            for sql in [
                "ALTER SYSTEM SET synchronous_standby_names = '*'",
                "ALTER SYSTEM SET synchronous_commit = 'remote_apply'",
                "SELECT pg_reload_conf()",
            ] {
                pair.psql(primary_port, sql)?;
            }
        }
        Ok(pair)
    }

    /// A synchronous pair (`remote_apply`: a commit is visible on the
    /// standby when it returns, so reads there need no waiting) with
    /// database `db` created on the primary, and that database's URL on
    /// each server. `Ok(None)` (after saying so on stderr) when
    /// [`ReplicatedPair::available`] is false: the caller skips.
    ///
    /// # Errors
    /// As [`ReplicatedPair::start`], or when the database cannot be created.
    pub fn synchronous_with_database(db: &str) -> Result<Option<PairWithDatabase>, Error> {
        if !Self::available() {
            eprintln!("skipped: no pg_basebackup beside the server binaries (or DATABASE_URL set)");
            return Ok(None);
        }
        let pair = Self::start(true)?;
        pair.psql(pair.primary_port, &format!("CREATE DATABASE {db}"))?;
        Ok(Some(PairWithDatabase {
            primary: Self::url(pair.primary_port, db),
            standby: Self::url(pair.standby_port, db),
            pair,
        }))
    }

    /// The primary's port.
    #[must_use]
    pub fn primary_port(&self) -> u16 {
        self.primary_port
    }

    /// The standby's port.
    #[must_use]
    pub fn standby_port(&self) -> u16 {
        self.standby_port
    }

    /// URL of database `db` on the server at `port`.
    #[must_use]
    pub fn url(port: u16, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{db}")
    }

    /// A URL listing both servers that connects to whichever accepts writes
    /// (`target_session_attrs=read-write`): the one to give the backend.
    #[must_use]
    pub fn failover_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write",
            self.primary_port, self.standby_port
        )
    }

    /// Runs `sql` with `psql` on the server at `port` (database `postgres`).
    ///
    /// # Errors
    /// When `psql` is missing or fails.
    pub fn psql(&self, port: u16, sql: &str) -> Result<String, Error> {
        let psql = self.bin.join("psql");
        let out = self
            .as_server_user(&psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-Atqc", sql])
            .output()?;
        if !out.status.success() {
            return Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn as_server_user(&self, program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, node: &str, args: &[&str]) -> Result<(), Error> {
        let out = self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join(node))
            .args(args)
            .output()?;
        if !out.status.success() {
            return Err(
                format!("pg_ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        Ok(())
    }

    /// Stops the primary at once (`-m immediate`: no checkpoint, clients
    /// cut off), as a crash would.
    ///
    /// # Errors
    /// When `pg_ctl` fails.
    pub fn stop_primary(&self) -> Result<(), Error> {
        self.pg_ctl("primary", &["-m", "immediate", "stop"])
    }

    /// Promotes the standby and waits until it accepts writes.
    ///
    /// # Errors
    /// When `pg_ctl promote` fails.
    pub fn promote_standby(&self) -> Result<(), Error> {
        self.pg_ctl("standby", &["-w", "promote"])
    }

    /// The standby's replay lag behind the primary's current WAL position,
    /// in bytes (0 when caught up).
    ///
    /// # Errors
    /// When either server does not answer.
    pub fn replay_lag_bytes(&self) -> Result<i64, Error> {
        let lsn = self.psql(self.primary_port, "SELECT pg_current_wal_lsn()")?;
        let lag = self.psql(
            self.standby_port,
            &format!("SELECT pg_wal_lsn_diff('{lsn}', pg_last_wal_replay_lsn())::int8"),
        )?;
        Ok(lag.parse().unwrap_or(i64::MAX))
    }
}

/// What [`ReplicatedPair::synchronous_with_database`] starts.
pub struct PairWithDatabase {
    /// The servers (stopped and removed when dropped).
    pub pair: ReplicatedPair,
    /// The database's URL on the primary.
    pub primary: String,
    /// The database's URL on the standby.
    pub standby: String,
}

impl Drop for ReplicatedPair {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.supervisor.lock()
            && let Some((mut child, stdin)) = guard.take()
        {
            drop(stdin);
            let _ = child.wait();
        }
    }
}
