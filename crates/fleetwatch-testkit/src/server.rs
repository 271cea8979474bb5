//! `fleetwatch serve` on free ports, found through `--ready-file`, and the CLI.
//!
//! The binary is a parameter ([`Server::start_bin`], [`run_cli_bin`]); the short forms
//! ([`Server::start`], [`run_cli`]) use [`bin()`]: `FLEETWATCH_BIN` if set, else
//! `CARGO_BIN_EXE_fleetwatch`, which cargo sets (at build and at run time) only for the
//! `fleetwatch` package's own integration tests, else `fleetwatch` beside the test executable's
//! `deps/` directory (a test binary run by hand).
//!
//! Every listener is bound to `127.0.0.1:0` and the addresses are read back from the ready
//! file: no port is guessed, so there is no free-port race here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `fleetwatch` binary used by [`Server::start`] and [`run_cli`] (see the module doc).
pub fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        for var in ["FLEETWATCH_BIN", "CARGO_BIN_EXE_fleetwatch"] {
            if let Some(p) = std::env::var_os(var) {
                return PathBuf::from(p);
            }
        }
        let beside = std::env::current_exe().ok().and_then(|exe| {
            let dir = exe.parent()?;
            let dir = if dir.ends_with("deps") {
                dir.parent()?
            } else {
                dir
            };
            Some(dir.join("fleetwatch"))
        });
        match beside {
            Some(p) if p.is_file() => p,
            _ => panic!(
                "the server fixture needs the fleetwatch binary: run the tests with \
                 `cargo test -p fleetwatch` (cargo sets CARGO_BIN_EXE_fleetwatch), set \
                 FLEETWATCH_BIN, or use Server::start_bin"
            ),
        }
    })
}

/// A running `fleetwatch serve`; killed (SIGKILL) when dropped.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// Base URL of the HTTP (REST Proxy) API: `http://127.0.0.1:PORT`.
    pub base: String,
    /// Base URL of the Schema Registry API.
    pub registry: String,
    /// The data directory it was started on.
    pub dir: PathBuf,
    /// Every listener in the ready file, by name (`http`, `schema_registry`, …).
    pub listeners: BTreeMap<String, SocketAddr>,
}

impl Server {
    /// Starts the server on `data_dir` with extra `serve` arguments; waits for the ready file.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_bin(bin(), data_dir, &[], extra)
    }

    /// Starts the server with global options (before `serve`) too.
    pub fn start_with_global(data_dir: &Path, global: &[&str]) -> Server {
        Self::start_bin(bin(), data_dir, global, &[])
    }

    /// Starts `bin --data-dir <data_dir> --log-level warn <global…> serve --http-listen
    /// 127.0.0.1:0 --schema-registry-listen 127.0.0.1:0 --mqtt-listen 127.0.0.1:0 --ksql-listen 127.0.0.1:0 --ready-file <file> <extra…>` and waits
    /// (up to 60 s) for the ready file; panics if the process exits first.
    pub fn start_bin(bin: &Path, data_dir: &Path, global: &[&str], extra: &[&str]) -> Server {
        let ready = data_dir.with_extension(format!("ready-{}", crate::unique_suffix()));
        let _ = std::fs::remove_file(&ready);
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log-level")
            .arg("warn")
            .args(global)
            .arg("serve")
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .arg("--schema-registry-listen")
            .arg("127.0.0.1:0")
            .arg("--mqtt-listen")
            .arg("127.0.0.1:0")
            .arg("--ksql-listen")
            .arg("127.0.0.1:0")
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} serve: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let _ = std::fs::remove_file(&ready);
                let listeners = parse_ready(&text);
                let url = |name: &str| match listeners.get(name) {
                    Some(a) => format!("http://{a}"),
                    None => panic!("the ready file has no {name:?} listener: {text}"),
                };
                return Server {
                    base: url("http"),
                    registry: url("schema_registry"),
                    child,
                    dir: data_dir.to_path_buf(),
                    listeners,
                };
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("fleetwatch serve exited with {status} before it was ready");
            }
            assert!(
                Instant::now() < deadline,
                "fleetwatch serve was not ready in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The address of the listener `name` from the ready file; panics naming the listeners
    /// there when it has none of that name.
    pub fn addr(&self, name: &str) -> SocketAddr {
        match self.listeners.get(name) {
            Some(a) => *a,
            None => panic!(
                "no {name:?} listener; the ready file names {:?}",
                self.listeners.keys().collect::<Vec<_>>()
            ),
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ready file: a JSON object of listener name → `host:port`.
fn parse_ready(text: &str) -> BTreeMap<String, SocketAddr> {
    let map: BTreeMap<String, String> = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the ready file is not a JSON object of strings ({e}): {text}"));
    map.into_iter()
        .map(|(k, v)| {
            let a = v
                .parse()
                .unwrap_or_else(|e| panic!("ready file: {k} = {v:?} is not an address: {e}"));
            (k, a)
        })
        .collect()
}

/// Runs the CLI with arguments and stdin; returns (exit success, stdout, stderr).
pub fn run_cli(data_dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    run_cli_bin(bin(), data_dir, args, stdin)
}

/// [`run_cli`] with the binary given.
pub fn run_cli_bin(
    bin: &Path,
    data_dir: &Path,
    args: &[&str],
    stdin: &str,
) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log-level")
        .arg("warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// GETs `url` and decodes the JSON body (panics on a transport or decoding error).
pub async fn get_json<T: serde::de::DeserializeOwned>(
    c: &reqwest::Client,
    url: impl reqwest::IntoUrl,
) -> T {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

#[cfg(test)]
mod tests {
    use super::parse_ready;

    #[test]
    fn ready_file_lists_every_listener() {
        let m = parse_ready(r#"{"http":"127.0.0.1:1","schema_registry":"127.0.0.1:2"}"#);
        assert_eq!(m.len(), 2);
        assert_eq!(m["schema_registry"].port(), 2);
    }
}
