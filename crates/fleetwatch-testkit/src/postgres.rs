//! A fresh PostgreSQL database per test, dropped when its guard drops.
//!
//! The server is `FLEETWATCH_POSTGRES` (a `postgres://user@host:port` URL without a database),
//! by default `postgres://postgres@127.0.0.1:5432` with trust auth, as on these machines
//! (Debian package `postgresql`). Databases are created and dropped by running `psql` (Debian
//! package `postgresql-client`); no client library is linked.
//!
//! Names are `fwtest_<pid>_<n>`. A test process that dies without unwinding cannot drop its
//! databases, so the first [`database`] of a process also drops `fwtest_*` databases
//! whose process no longer exists.

use std::process::Command;
use std::sync::Once;

/// A database that exists until this guard drops.
#[derive(Debug)]
pub struct Database {
    name: String,
    url: String,
    server: String,
}

impl Database {
    /// Creates a fresh database on the test server (see the module doc).
    pub fn new() -> Database {
        let server = server_url();
        static SWEEP: Once = Once::new();
        SWEEP.call_once(|| sweep(&server));
        let name = format!("fwtest_{}", crate::unique_suffix().replace('-', "_"));
        if let Err(e) = psql(&server, "postgres", &format!("CREATE DATABASE \"{name}\"")) {
            panic!(
                "creating PostgreSQL database {name} on {server}: {e}\n(needs a PostgreSQL server \
                 with trust auth for that user — Debian package `postgresql` — and `psql`; set \
                 FLEETWATCH_POSTGRES to another postgres://user@host:port)"
            );
        }
        Database {
            url: format!("{server}/{name}"),
            name,
            server,
        }
    }

    /// `postgres://user@host:port/<name>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `sql` in this database with `psql -At` and returns its stdout, or psql's error.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        psql(&self.server, &self.name, sql)
    }
}

impl Default for Database {
    fn default() -> Self {
        Database::new()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = psql(
            &self.server,
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

/// A fresh database, dropped when the guard drops (see [`Database::new`]).
pub fn database() -> Database {
    Database::new()
}

/// The server URL without a database: `FLEETWATCH_POSTGRES` or
/// `postgres://postgres@127.0.0.1:5432`.
pub fn server_url() -> String {
    std::env::var("FLEETWATCH_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
        .trim_end_matches('/')
        .to_string()
}

fn psql(server: &str, db: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .arg(format!("{server}/{db}"))
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", "-c", sql])
        .output()
        .map_err(|e| format!("could not run psql (Debian package postgresql-client): {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Drops `fwtest_<pid>_*` databases of processes that are gone.
fn sweep(server: &str) {
    let Ok(list) = psql(
        server,
        "postgres",
        "SELECT datname FROM pg_database WHERE datname LIKE 'fwtest\\_%'",
    ) else {
        return;
    };
    for name in list.lines() {
        let pid = name.split('_').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = psql(
                server,
                "postgres",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            );
        }
    }
}
