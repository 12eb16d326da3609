//! A throwaway PostgreSQL server for tests and benchmarks (feature `pg-harness`, on
//! for this crate's own tests and benches through its self dev-dependency).
//!
//! [`PgServer::start`] runs `initdb` into a fresh temporary directory and starts the
//! server with `pg_ctl -w`, listening only on a Unix socket in that directory, so
//! parallel servers never clash over ports. Dropping it stops the server (`pg_ctl -m
//! immediate`) and deletes the directory; so does a watchdog shell once the process
//! is gone, if it died without dropping it (killed, or [`PgServer::shared`], which is
//! never dropped): no server outlives its tests. PostgreSQL refuses to run as root: as root
//! the server runs as the user `nobody` (the directory is handed to it); otherwise as
//! the current user. The binaries are found through `PAWL_PG_BIN` (a directory), then
//! `PATH`, then `/usr/lib/postgresql/*/bin` (newest version first); if there are none,
//! starting fails with a message saying so: callers should fail, never skip.
//!
//! ```no_run
//! # fn main() -> Result<(), pawl_relay::pg_harness::HarnessError> {
//! use pawl_relay::pg_harness::PgServer;
//! let server = PgServer::shared()?; // one server for every test of this process
//! let url = server.create_database()?; // an empty database of one's own
//! let store = pawl_relay::PgRelayStore::connect(&url);
//! # Ok(()) }
//! ```

use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Why a server could not be started or used.
pub struct HarnessError(pub String);

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Debug prints the message as is: `expect` in a test shows it readably.
impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

type H<T> = Result<T, HarnessError>;

fn err(msg: impl Into<String>) -> HarnessError {
    HarnessError(msg.into())
}

/// The superuser of every harness server (trust authentication, no password).
pub const SUPERUSER: &str = "pawl";

/// Settings [`PgServer::start`] uses: fast and not crash-safe (fine for a database
/// that is deleted afterwards). [`PgServer::start_with`] settings come after these
/// and win.
pub const TEST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "32MB"),
];

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
pub fn find_bin_dir() -> H<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    let mut searched = Vec::new();
    if let Some(dir) = std::env::var_os("PAWL_PG_BIN") {
        let dir = PathBuf::from(dir);
        if has_tools(&dir) {
            return Ok(dir);
        }
        return Err(err(format!(
            "PAWL_PG_BIN={} holds no initdb and pg_ctl",
            dir.display()
        )));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if !dir.join("initdb").is_file() {
                continue;
            }
            // /usr/local/bin/initdb may be a link into the real directory.
            if let Ok(real) = dir.join("initdb").canonicalize() {
                if let Some(real_dir) = real.parent() {
                    if has_tools(real_dir) {
                        return Ok(real_dir.to_path_buf());
                    }
                }
            }
            if has_tools(&dir) {
                return Ok(dir);
            }
        }
        searched.push("PATH".to_string());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort_by_key(|v| std::cmp::Reverse(v.0));
    searched.push("/usr/lib/postgresql/*/bin".to_string());
    for (_, dir) in versions {
        if has_tools(&dir) {
            return Ok(dir);
        }
    }
    Err(err(format!(
        "PostgreSQL server binaries (initdb, pg_ctl) not found in {}; install them \
         (Debian: apt-get install postgresql) or set PAWL_PG_BIN to their directory",
        searched.join(", ")
    )))
}

/// The (uid, gid) the server must run as: `nobody` when we are root, else ourselves.
fn server_user() -> H<Option<(u32, u32)>> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| err(format!("cannot run `id -u`: {e}")))?;
    if String::from_utf8_lossy(&out.stdout).trim() != "0" {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")
        .map_err(|e| err(format!("cannot read /etc/passwd: {e}")))?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() > 3 && f[0] == "nobody" {
            if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                return Ok(Some((uid, gid)));
            }
        }
    }
    Err(err(
        "running as root, and PostgreSQL refuses root: no user `nobody` in /etc/passwd to run it as",
    ))
}

/// A running PostgreSQL server in a temporary directory; stopped when dropped.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    next_db: AtomicU64,
    // Last: deleted after the server is stopped.
    dir: tempfile::TempDir,
}

static SHARED: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// Stops the server and deletes its directory once the process that started it is
/// gone, however it ended (a process killed, or a static that is never dropped, runs
/// no `Drop`). Ends by itself when the directory is deleted first (by `Drop`).
/// Arguments: pid, pg_ctl, data directory, temporary directory.
const WATCHDOG: &str = r#"while [ -d "/proc/$1" ] && [ -d "$3" ]; do sleep 1; done
if [ -d "$3" ]; then "$2" -D "$3" -m immediate -w stop; rm -rf "$4"; fi"#;

impl PgServer {
    /// Start a server with [`TEST_SETTINGS`].
    pub fn start() -> H<PgServer> {
        Self::start_with(&[])
    }

    /// Start a server with [`TEST_SETTINGS`] then `settings` (`postgresql.conf` names
    /// and values, e.g. `("fsync", "on")` for a benchmark that wants durable commits).
    pub fn start_with(settings: &[(&str, &str)]) -> H<PgServer> {
        let bin = find_bin_dir()?;
        let run_as = server_user()?;
        let dir = tempfile::Builder::new()
            .prefix("pawl-pg-")
            .tempdir()
            .map_err(|e| err(format!("cannot create a temporary directory: {e}")))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).map_err(|e| {
                err(format!(
                    "cannot hand {} to nobody: {e}",
                    dir.path().display()
                ))
            })?;
        }
        let socket_dir = dir.path().to_path_buf();
        // sun_path holds 108 bytes, and the server adds "/.s.PGSQL.5432".
        if socket_dir.as_os_str().len() + 15 > 107 {
            return Err(err(format!(
                "temporary directory {} is too long for a Unix socket path; set TMPDIR shorter",
                socket_dir.display()
            )));
        }
        let server = PgServer {
            data: dir.path().join("data"),
            bin,
            socket_dir,
            run_as,
            next_db: AtomicU64::new(1),
            dir,
        };
        let data = server.data.clone();
        server.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        let mut conf = String::from("\n# pawl_relay::pg_harness\nlisten_addresses = ''\n");
        conf.push_str(&format!(
            "unix_socket_directories = '{}'\n",
            server.socket_dir.display().to_string().replace('\'', "''")
        ));
        for (k, v) in TEST_SETTINGS.iter().chain(settings) {
            conf.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        let conf_path = data.join("postgresql.conf");
        let mut full = std::fs::read_to_string(&conf_path)
            .map_err(|e| err(format!("cannot read {}: {e}", conf_path.display())))?;
        full.push_str(&conf);
        std::fs::write(&conf_path, full)
            .map_err(|e| err(format!("cannot write {}: {e}", conf_path.display())))?;
        let log = server.log_path();
        // From here on, Drop stops whatever got started.
        let started = server.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "start".as_ref(),
            ],
        );
        if let Err(e) = started {
            return Err(err(format!("{e}\nserver log:\n{}", server.log())));
        }
        server.spawn_watchdog()?;
        Ok(server)
    }

    /// The server this whole process shares, started (with [`TEST_SETTINGS`]) on first
    /// use and stopped by its watchdog within about a second after the process exits.
    /// Give each test its own [`create_database`](Self::create_database). If it could
    /// not be started, every call returns that error.
    pub fn shared() -> H<&'static PgServer> {
        SHARED
            .get_or_init(|| PgServer::start().map_err(|e| e.0))
            .as_ref()
            .map_err(|e| err(e.clone()))
    }

    /// The URL of database `dbname` as [`SUPERUSER`] over the Unix socket.
    pub fn url_for(&self, dbname: &str) -> String {
        let host: String = self
            .socket_dir
            .display()
            .to_string()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgresql://{SUPERUSER}@{host}/{dbname}")
    }

    /// The URL of the `postgres` database (it always exists).
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// Create a new empty database (`pawl_1`, `pawl_2`, ...) and return its URL.
    pub fn create_database(&self) -> H<String> {
        let name = format!("pawl_{}", self.next_db.fetch_add(1, Ordering::Relaxed));
        let url = self.url();
        let sql = format!("CREATE DATABASE {name}");
        // The client blocks on a runtime of its own: keep it off the caller's thread,
        // which may be inside one.
        std::thread::scope(|s| {
            s.spawn(|| -> H<()> {
                let mut c = postgres::Client::connect(&url, postgres::NoTls)
                    .map_err(|e| err(format!("cannot connect to {url}: {e}")))?;
                c.batch_execute(&sql)
                    .map_err(|e| err(format!("{sql}: {}", crate::store::StoreFailure::from(e))))
            })
            .join()
            .map_err(|_| err("the CREATE DATABASE thread panicked"))?
        })?;
        Ok(self.url_for(&name))
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn_watchdog(&self) -> H<()> {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", WATCHDOG, "pawl-pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(self.bin.join("pg_ctl"))
            .arg(&self.data)
            .arg(self.dir.path())
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0); // a Ctrl-C to the tests must not stop the cleanup
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.spawn()
            .map_err(|e| err(format!("cannot start the watchdog (/bin/sh): {e}")))?;
        Ok(())
    }

    /// Run one of the PostgreSQL binaries as the server user, from the server's
    /// directory (the caller's may be closed to `nobody`).
    fn run(&self, tool: &str, args: &[&std::ffi::OsStr]) -> H<Output> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args).current_dir(self.dir.path());
        // Don't let the caller's PG* settings leak into the tools.
        for var in [
            "PGDATA",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
            "PGOPTIONS",
        ] {
            cmd.env_remove(var);
        }
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid); // std also drops supplementary groups
        }
        let out = cmd
            .output()
            .map_err(|e| err(format!("cannot run {}: {e}", self.bin.join(tool).display())))?;
        if !out.status.success() {
            return Err(err(format!(
                "{} {} failed ({}): {}{}",
                tool,
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data.clone();
        let _ = self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        );
    }
}
