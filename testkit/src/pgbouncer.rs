//! A throwaway PgBouncer in front of a [`PgServer`](crate::PgServer), on a
//! free loopback port, in the pool mode a test asks for.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Error;
use crate::server::{free_port, is_root, shell_script};

/// How PgBouncer hands server connections to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// One server connection per client connection, for its lifetime.
    Session,
    /// A server connection per transaction (or per statement outside one).
    Transaction,
}

/// A running PgBouncer; stopped (and its files removed) on drop.
pub struct PgBouncer {
    child: Child,
    dir: PathBuf,
    port: u16,
}

/// The PgBouncer binary: `PGBOUNCER`, else `pgbouncer` on `PATH` or in
/// `/usr/sbin`.
#[must_use]
pub fn pgbouncer_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PGBOUNCER")
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.is_file())
}

impl PgBouncer {
    /// Starts PgBouncer in `mode` in front of the server on `127.0.0.1:server_port`,
    /// trusting `users` (each must exist on the server), with at most
    /// `pool_size` server connections per database and user.
    ///
    /// # Errors
    /// When the binary is missing or PgBouncer does not accept connections
    /// within 10 s.
    pub fn start(
        server_port: u16,
        mode: PoolMode,
        users: &[&str],
        pool_size: u32,
    ) -> Result<PgBouncer, Error> {
        let bin = pgbouncer_bin()
            .ok_or("pgbouncer not found (apt-get install pgbouncer, or set PGBOUNCER)")?;
        let port = free_port()?;
        let dir =
            std::env::temp_dir().join(format!("sayiir-pgbouncer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let (ini, users_file) = write_config(&dir, port, server_port, mode, users, pool_size)?;
        let child = watched(&dir, &[&ini, &users_file])?
            .arg(&bin)
            .arg(&ini)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut bouncer = PgBouncer { child, dir, port };
        bouncer.wait_ready()?;
        Ok(bouncer)
    }

    /// Waits until PgBouncer accepts connections (10 s at most), failing
    /// with its log if it exits first.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log =
                    std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default();
                return Err(format!("pgbouncer exited ({status}): {log}").into());
            }
            if Instant::now() > deadline {
                return Err("pgbouncer did not accept connections within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The loopback port PgBouncer listens on.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `url` (a server URL) with its port replaced by PgBouncer's.
    #[must_use]
    pub fn url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
        let (user, hostpart) = rest.split_once('@').map_or(("", rest), |(u, h)| (u, h));
        let (hostport, path) = hostpart.split_once('/').unwrap_or((hostpart, ""));
        let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
        let at = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        format!("{scheme}://{at}{host}:{}/{path}", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        // Closing stdin stops PgBouncer; the shell waits for it to exit.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `pgbouncer.ini` and its users file into `dir`: listen on
/// loopback `port`, every database forwarded to the server on
/// `server_port`, trust authentication for `users`.
fn write_config(
    dir: &Path,
    port: u16,
    server_port: u16,
    mode: PoolMode,
    users: &[&str],
    pool_size: u32,
) -> Result<(PathBuf, PathBuf), Error> {
    let mode = match mode {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
    };
    let users_file = dir.join("users.txt");
    let mut f = std::fs::File::create(&users_file)?;
    for user in users {
        writeln!(f, "\"{user}\" \"\"")?;
    }
    let ini = dir.join("pgbouncer.ini");
    std::fs::write(
        &ini,
        format!(
            "[databases]\n\
             * = host=127.0.0.1 port={server_port}\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {users}\n\
             pool_mode = {mode}\n\
             default_pool_size = {pool_size}\n\
             max_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {log}\n",
            users = users_file.display(),
            log = dir.join("pgbouncer.log").display(),
        ),
    )?;
    Ok((ini, users_file))
}

/// The command that runs PgBouncer (its binary and config are the last two
/// arguments still to add). PgBouncer refuses to run as root: then it runs
/// as the server's user, and `dir` and `files` are made readable to it. A
/// shell runs it and stops it when our end of its stdin closes (on drop,
/// or when this process dies), so it never outlives the test.
fn watched(dir: &Path, files: &[&Path]) -> Result<Command, Error> {
    const WATCH: &str = "\"$1\" \"$2\" & PID=$!; cat >/dev/null || true; \
                         kill -TERM \"$PID\" 2>/dev/null || true; wait \"$PID\" 2>/dev/null || true";
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))?;
        for p in files {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644))?;
        }
    }
    Ok(shell_script(WATCH))
}
