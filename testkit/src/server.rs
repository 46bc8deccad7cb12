//! [`PgServer`]: the server the tests use, external (`DATABASE_URL`) or a
//! throwaway cluster this process starts and a shell supervisor removes.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::Error;

/// A PostgreSQL server for tests: external (`DATABASE_URL`) or throwaway.
pub struct PgServer {
    /// URL of the maintenance database (`postgres`, or the one in `DATABASE_URL`).
    pub(crate) admin_url: String,
    /// Keeps the supervisor's stdin open (closing it stops the server); its
    /// stdout answers a restart.
    supervisor: Option<Mutex<Supervisor>>,
    pub(crate) templates: Mutex<Vec<String>>,
    /// Pid of the throwaway server's postmaster (0: none); a restart changes it.
    pub(crate) postmaster_pid: AtomicU32,
    /// The throwaway cluster's data directory.
    pub(crate) data_dir: Option<PathBuf>,
    /// Whether this process swept the leftovers of crashed runs yet.
    pub(crate) swept: AtomicBool,
}

/// The supervisor process and its pipes.
struct Supervisor {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The supervisor: initdb, start postgres, report readiness, then stop and
/// clean up as soon as stdin closes (the test process exited). Arguments
/// after the first three are extra server settings, each passed as `-c`.
const SUPERVISOR: &str = r#"
set -eu
BIN="$1"; PORT="$2"; ISREADY="$3"; shift 3
n=$#; i=0
while [ "$i" -lt "$n" ]; do set -- "$@" -c "$1"; shift; i=$((i+1)); done
DIR=$(mktemp -d "${TMPDIR:-/tmp}/sayiir-pg-XXXXXX")
cleanup() { rm -rf "$DIR"; }
trap cleanup EXIT
"$BIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
  || { cat "$DIR/initdb.log" >&2; exit 1; }
start_pg() {
  "$BIN/postgres" -D "$DIR/data" -k "$DIR" -h 127.0.0.1 -p "$PORT" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=300 -c shared_buffers=128MB "$@" >>"$DIR/server.log" 2>&1 &
  PG=$!
  i=0
  until "$ISREADY" -q -h 127.0.0.1 -p "$PORT" -d postgres; do
    i=$((i+1))
    if [ "$i" -gt 300 ] || ! kill -0 "$PG" 2>/dev/null; then cat "$DIR/server.log" >&2; exit 1; fi
    sleep 0.1
  done
  echo "ready $PG $DIR"
}
start_pg "$@"
# One command per line until stdin closes: "restart" stops the server the
# way `pg_ctl stop -m fast` does (SIGINT: active sessions are terminated)
# and starts it again on the same port and data directory.
while read -r cmd; do
  case "$cmd" in
    restart)
      kill -INT "$PG" 2>/dev/null || true
      wait "$PG" 2>/dev/null || true
      start_pg "$@"
      ;;
  esac
done
kill -INT "$PG" 2>/dev/null || true
wait "$PG" 2>/dev/null || true
"#;

static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();

impl PgServer {
    /// The process-wide server, started on first use.
    ///
    /// # Errors
    /// When `DATABASE_URL` is unset and no throwaway server can be started.
    pub fn shared() -> Result<&'static PgServer, Error> {
        SHARED
            .get_or_init(|| Self::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| Error::from(e.clone()))
    }

    /// Starts a server (or adopts `DATABASE_URL`). Prefer [`PgServer::shared`].
    ///
    /// # Errors
    /// When no PostgreSQL binaries are found or the server does not come up.
    pub fn start() -> Result<PgServer, Error> {
        Self::start_with(&[])
    }

    /// Like [`PgServer::start`], with extra server settings for a throwaway
    /// server, each `name=value` as for `postgres -c` (for example
    /// `shared_preload_libraries=pg_stat_statements`). They are ignored when
    /// `DATABASE_URL` names the server: configure that one yourself.
    ///
    /// # Errors
    /// When no PostgreSQL binaries are found or the server does not come up
    /// (an invalid setting makes the server refuse to start).
    pub fn start_with(settings: &[&str]) -> Result<PgServer, Error> {
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            return Ok(PgServer {
                admin_url: url,
                supervisor: None,
                templates: Mutex::new(Vec::new()),
                postmaster_pid: AtomicU32::new(0),
                data_dir: None,
                swept: AtomicBool::new(false),
            });
        }
        let bin = find_bin_dir().ok_or(
            "DATABASE_URL is unset and no PostgreSQL binaries were found \
             (set PG_BIN, install postgresql, or set DATABASE_URL)",
        )?;
        let isready = find_pg_isready(&bin)
            .ok_or("pg_isready not found (install postgresql-client or put it beside initdb)")?;
        let port = free_port()?;
        let mut cmd = shell_script(SUPERVISOR);
        cmd.arg(&bin)
            .arg(port.to_string())
            .arg(&isready)
            .args(settings)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start the PostgreSQL supervisor: {e}"))?;
        let stdin = child.stdin.take().ok_or("supervisor has no stdin")?;
        let stdout = child.stdout.take().ok_or("supervisor has no stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let Some((pid, dir)) = line
            .trim_end()
            .strip_prefix("ready ")
            .and_then(|rest| rest.split_once(' '))
        else {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let _ = child.wait();
            return Err(format!(
                "throwaway PostgreSQL from {} failed to start: {err}",
                bin.display()
            )
            .into());
        };
        let postmaster_pid = AtomicU32::new(pid.parse().unwrap_or(0));
        let data_dir = Some(Path::new(dir).join("data"));
        Ok(PgServer {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            supervisor: Some(Mutex::new(Supervisor {
                _child: child,
                stdin,
                stdout,
            })),
            templates: Mutex::new(Vec::new()),
            postmaster_pid,
            data_dir,
            swept: AtomicBool::new(false),
        })
    }

    /// Pid of the throwaway server's postmaster (`None` for `DATABASE_URL`).
    #[must_use]
    pub fn postmaster_pid(&self) -> Option<u32> {
        match self.postmaster_pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Restarts the throwaway server as `pg_ctl restart -m fast` would:
    /// a fast shutdown (every session is terminated, open transactions
    /// roll back), then a start on the same port and data directory.
    /// Returns once it accepts connections again (the supervisor gives up
    /// after about 30 s, which is then an error).
    ///
    /// # Errors
    /// With `DATABASE_URL` (not our server), or when the server does not
    /// come back.
    pub fn restart(&self) -> Result<(), Error> {
        use std::io::Write;
        let sup = self
            .supervisor
            .as_ref()
            .ok_or("cannot restart: the server is DATABASE_URL's")?;
        let mut sup = sup.lock().map_err(|e| e.to_string())?;
        sup.stdin.write_all(b"restart\n")?;
        sup.stdin.flush()?;
        let mut line = String::new();
        sup.stdout.read_line(&mut line)?;
        let pid = line
            .trim_end()
            .strip_prefix("ready ")
            .and_then(|rest| rest.split_once(' '))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
            .ok_or("the restarted server did not come up (see its server.log)")?;
        self.postmaster_pid.store(pid, Ordering::SeqCst);
        Ok(())
    }

    /// Data directory of the throwaway server (`None` for `DATABASE_URL`).
    #[must_use]
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// Writes `name` into the throwaway server's data directory with
    /// permission bits `mode`, owned like the directory (the server's user):
    /// a TLS key and certificate, or a `pg_hba.conf` to reload. Returns the
    /// file's path.
    ///
    /// # Errors
    /// With `DATABASE_URL` (no data directory of ours), or on I/O errors.
    pub fn write_data_file(
        &self,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<PathBuf, Error> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dir = self
            .data_dir
            .as_deref()
            .ok_or("no data directory: the server is DATABASE_URL's")?;
        let owner = std::fs::metadata(dir)?;
        let path = dir.join(name);
        std::fs::write(&path, contents)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid()))?;
        Ok(path)
    }

    /// URL of the maintenance database.
    #[must_use]
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// URL of database `name` on this server.
    #[must_use]
    pub fn url_for(&self, name: &str) -> String {
        with_database(&self.admin_url, name)
    }
}

/// Replaces the database name in a `postgres://` URL.
#[must_use]
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `sh -c script sh`, the arguments still to add. PostgreSQL and PgBouncer
/// refuse to run as root: then it runs as the server's user `postgres`.
pub(crate) fn shell_script(script: &str) -> Command {
    let mut c = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh"]);
        c
    } else {
        Command::new("sh")
    };
    c.args(["-c", script, "sh"]);
    c
}

/// Whether this process runs as root, asked of `id -u` once per process.
pub(crate) fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

pub(crate) fn free_port() -> Result<u16, Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

pub(crate) fn has_server_bins(dir: &Path) -> bool {
    ["initdb", "postgres"].iter().all(|b| dir.join(b).is_file())
}

/// `pg_isready` beside the server binaries, else any on `PATH` or under
/// `/usr/lib/postgresql` (it speaks to every server version). Bundles such
/// as `@embedded-postgres` ship the server without it.
pub(crate) fn find_pg_isready(bin: &Path) -> Option<PathBuf> {
    let beside = bin.join("pg_isready");
    if beside.is_file() {
        return Some(beside);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("pg_isready"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin/pg_isready"))
            .find(|p| p.is_file())
    })
}

pub(crate) fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_server_bins(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_server_bins(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).find(|p| has_server_bins(p)))
}

#[cfg(test)]
mod tests {
    use super::{PgServer, with_database};

    #[test]
    fn a_throwaway_server_restarts_on_its_port() {
        use diesel_async::{AsyncConnection, AsyncPgConnection};
        if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
            return; // not ours to restart
        }
        let pg = PgServer::start().unwrap();
        let before = pg.postmaster_pid();
        pg.restart().unwrap();
        assert!(pg.postmaster_pid().is_some());
        assert_ne!(before, pg.postmaster_pid(), "a new postmaster");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            AsyncPgConnection::establish(pg.admin_url()).await.unwrap();
        });
    }

    #[test]
    fn replaces_database_name() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
