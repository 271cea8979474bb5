//! Starts `fleetwatch serve` on free ports and finds them through `--ready-file`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fleetwatch")
}

pub struct Server {
    pub child: Child,
    pub base: String,
    /// Base URL of the Schema Registry API.
    pub registry: String,
    pub dir: PathBuf,
}

impl Server {
    /// Starts the server on `data_dir` with extra `serve` arguments; waits for the ready file.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with(data_dir, &[], extra)
    }

    /// Starts the server with global options (before `serve`) too.
    pub fn start_with_global(data_dir: &Path, global: &[&str]) -> Server {
        Self::start_with(data_dir, global, &[])
    }

    fn start_with(data_dir: &Path, global: &[&str], extra: &[&str]) -> Server {
        let ready = data_dir.with_extension(format!("ready-{}", rand_suffix()));
        let _ = std::fs::remove_file(&ready);
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .arg("--log-level")
            .arg("warn")
            .args(global)
            .arg("serve")
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .arg("--schema-registry-listen")
            .arg("127.0.0.1:0")
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("starting fleetwatch serve");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                let _ = std::fs::remove_file(&ready);
                return Server {
                    child,
                    base: format!("http://{}", v["http"].as_str().unwrap()),
                    registry: format!("http://{}", v["schema_registry"].as_str().unwrap()),
                    dir: data_dir.to_path_buf(),
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    u64::from(std::process::id()) * 1000 + N.fetch_add(1, Ordering::Relaxed)
}

/// Runs the CLI with arguments and stdin; returns (exit success, stdout, stderr).
pub fn run_cli(data_dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--log-level")
        .arg("warn")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
